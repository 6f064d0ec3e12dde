//! Building the kernel ELF.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use clap::Args;

use crate::{paths, progress};

/// Options of `cargo xtask build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build the kernel with its test hooks (deliberate faults for the QEMU
    /// tests). Never use such a kernel for anything else.
    #[arg(long)]
    pub test_hooks: bool,
}

/// Which kernel to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The kernel people run.
    Normal,
    /// With `--features test-hooks`.
    TestHooks,
}

impl Variant {
    fn file_name(self) -> &'static str {
        match self {
            Variant::Normal => "kernel.elf",
            Variant::TestHooks => "kernel-test-hooks.elf",
        }
    }
}

/// The cargo that runs us (so the pinned toolchain builds the kernel too).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(paths::root());
    c
}

/// Builds the kernel and copies it to `target/images/<variant>.elf`, so the
/// normal and test kernels can coexist. Returns that path.
pub fn build_kernel(variant: Variant) -> Result<PathBuf> {
    progress::header(match variant {
        Variant::Normal => "building the kernel",
        Variant::TestHooks => "building the kernel with test hooks",
    });
    let mut cmd = cargo();
    cmd.args(["build", "--package", "kernel", "--release"]);
    if variant == Variant::TestHooks {
        cmd.args(["--features", "test-hooks"]);
    }
    progress::run(&mut cmd)?;
    let built = paths::target().join("x86_64-unknown-none/release/kernel");
    let out = paths::images().join(variant.file_name());
    std::fs::create_dir_all(paths::images())?;
    // The image's kernel without debug sections; the debug copy stays at
    // target/x86_64-unknown-none/release/kernel.
    let stripped = crate::image::strip_debug(&built)?;
    std::fs::copy(&stripped, &out)
        .with_context(|| format!("copying {} to {}", stripped.display(), out.display()))?;
    Ok(out)
}

/// `cargo xtask build`.
pub fn build(args: &BuildArgs) -> Result<PathBuf> {
    let path = build_kernel(if args.test_hooks {
        Variant::TestHooks
    } else {
        Variant::Normal
    })?;
    eprintln!("kernel: {}", path.display());
    Ok(path)
}
