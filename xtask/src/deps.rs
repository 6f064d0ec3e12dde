//! System packages: checking for them and installing them.
//!
//! The list lives in `scripts/debian-packages.txt` (shared with
//! `scripts/setup.sh`). Each command checks only what it needs; a missing
//! piece is installed automatically when we are root and have apt-get,
//! otherwise the error names the exact command to run.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};
use clap::Args;

use crate::{paths, progress};

/// Options of `cargo xtask setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Only report what is missing; install nothing.
    #[arg(long)]
    check: bool,
}

/// Something the host must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// qemu-system-x86_64.
    Qemu,
    /// OVMF firmware for UEFI boots.
    Ovmf,
}

impl Need {
    fn package(self) -> &'static str {
        match self {
            Need::Qemu => "qemu-system-x86",
            Need::Ovmf => "ovmf",
        }
    }

    fn present(self) -> bool {
        match self {
            Need::Qemu => on_path("qemu-system-x86_64") || std::env::var_os("LLMOS_QEMU").is_some(),
            Need::Ovmf => llmos_qemu::firmware::find().is_ok(),
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Packages from `scripts/debian-packages.txt`.
pub fn listed_packages(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn install_command(pkgs: &[String]) -> String {
    format!(
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends {}",
        pkgs.join(" ")
    )
}

/// Installs `pkgs` with apt-get if we are root; otherwise fails with the
/// command to run.
fn install(pkgs: &[String], why: &str) -> Result<()> {
    if pkgs.is_empty() {
        return Ok(());
    }
    if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        bail!(
            "{why}: missing {}; install with:\n  {}\n(or run `bash scripts/setup.sh`)",
            pkgs.join(", "),
            install_command(pkgs)
        );
    }
    progress::header(&format!("installing {}", pkgs.join(" ")));
    progress::run(Command::new("apt-get").args(["update", "-qq"]))?;
    progress::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(pkgs),
    )
}

/// Makes sure `needs` are present, installing them if possible.
pub fn ensure(needs: &[Need], why: &str) -> Result<()> {
    let missing: Vec<String> = needs
        .iter()
        .filter(|n| !n.present())
        .map(|n| n.package().to_owned())
        .collect();
    install(&missing, why)?;
    for n in needs {
        if !n.present() {
            bail!(
                "{why}: {} is still missing after installing it",
                n.package()
            );
        }
    }
    Ok(())
}

/// `cargo xtask setup`.
pub fn setup(args: &SetupArgs) -> Result<()> {
    let list = std::fs::read_to_string(paths::root().join("scripts/debian-packages.txt"))?;
    let wanted = listed_packages(&list);
    let missing: Vec<String> = wanted
        .iter()
        .filter(|p| !dpkg_installed(p))
        .cloned()
        .collect();
    if missing.is_empty() {
        eprintln!("all system packages present: {}", wanted.join(" "));
        return Ok(());
    }
    if args.check {
        bail!(
            "missing: {}; install with:\n  {}",
            missing.join(" "),
            install_command(&missing)
        );
    }
    install(&missing, "setup")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_list_parsing_skips_comments_and_blanks() {
        let text = "# header\nqemu-system-x86\n\n  ovmf  \n# cmake\n";
        assert_eq!(listed_packages(text), ["qemu-system-x86", "ovmf"]);
    }

    #[test]
    fn the_real_list_has_what_the_kernel_tests_need() {
        let text =
            std::fs::read_to_string(paths::root().join("scripts/debian-packages.txt")).unwrap();
        let list = listed_packages(&text);
        for p in [
            "qemu-system-x86",
            "ovmf",
            "cmake",
            "clang",
            "libclang-dev",
            "cpio",
            "python3-pip",
        ] {
            assert!(
                list.iter().any(|x| x == p),
                "{p} missing from debian-packages.txt"
            );
        }
    }

    #[test]
    fn install_hint_is_a_real_command() {
        let cmd = install_command(&["a".into(), "b".into()]);
        assert_eq!(
            cmd,
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends a b"
        );
    }
}
