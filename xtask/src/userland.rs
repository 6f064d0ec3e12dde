//! Building the test programs: static-pie Rust binaries from `userland/`
//! and C programs from `userland/c/` (gcc `-static-pie`), collected in
//! `target/userland/bin/`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use llmos_tests::cases::{C_PROGRAMS, RUST_PROGRAMS, userland_bin_dir};

use crate::build::cargo;
use crate::{paths, progress};

/// Builds every test program; returns the directory that holds them.
pub fn build() -> Result<PathBuf> {
    progress::header("building the test programs (static-pie)");
    let target_dir = paths::target().join("userland");
    let mut cmd = cargo();
    cmd.env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C strip=debuginfo",
        )
        .args(["build", "--package", "llmos-userland", "--release"])
        .args(["--target", "x86_64-unknown-linux-gnu", "--target-dir"])
        .arg(&target_dir);
    progress::run(&mut cmd)?;
    let bin = userland_bin_dir(&paths::target());
    std::fs::create_dir_all(&bin)?;
    for p in RUST_PROGRAMS {
        let from = target_dir.join("x86_64-unknown-linux-gnu/release").join(p);
        std::fs::copy(&from, bin.join(p)).with_context(|| format!("copying {}", from.display()))?;
    }
    for p in C_PROGRAMS {
        let source = paths::root()
            .join("userland/c")
            .join(format!("{}.c", p.trim_end_matches("-c")));
        progress::run(
            Command::new("gcc")
                .args(["-static-pie", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
                .arg(bin.join(p))
                .arg(&source),
        )?;
    }
    Ok(bin)
}
