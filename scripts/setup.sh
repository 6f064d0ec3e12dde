#!/usr/bin/env bash
# One-time (idempotent) setup for building and testing llmos:
#  1. the pinned Rust toolchain from rust-toolchain.toml, with its
#     components and targets (machines here set RUSTUP_AUTO_INSTALL=0, so
#     rustup will not install it by itself);
#  2. the Debian packages in scripts/debian-packages.txt;
#  3. the Python packages in scripts/python-requirements.txt (pip).
# Safe to run again: it only installs what is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
toolchain="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$root/rust-toolchain.toml")"

say() { printf '==> %s\n' "$*" >&2; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

if ! command -v rustup >/dev/null 2>&1; then
    echo "error: rustup is not installed; install rustup first, then run this script again" >&2
    exit 1
fi

say "Rust toolchain $toolchain"
# `rustup toolchain install` is a no-op for what is already there and adds
# missing components/targets.
run rustup toolchain install "$toolchain" --profile minimal \
    --component rust-src,llvm-tools-preview,clippy,rustfmt \
    --target x86_64-unknown-none,x86_64-unknown-linux-gnu,wasm32-wasip1

say "Debian packages"
mapfile -t wanted < <(grep -v '^\s*#' "$root/scripts/debian-packages.txt" | sed '/^\s*$/d')
missing=()
for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    say "all present: ${wanted[*]}"
else
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "error: missing packages ${missing[*]}; as root run:" >&2
            echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
            exit 1
        fi
    fi
    run "${sudo[@]}" apt-get update -qq
    run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
say "Python packages"
# pip skips what is already installed. PIP_BREAK_SYSTEM_PACKAGES lets it
# install next to a Debian-managed Python (older pips ignore it).
run env PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    -r "$root/scripts/python-requirements.txt"
say "setup complete"
