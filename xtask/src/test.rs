//! `cargo xtask test`: the whole suite, in the order CI runs it.
//!
//! 1. `cargo fmt --check`
//! 2. clippy with `-D warnings` on every crate (host crates, the kernel, and
//!    the kernel with its test hooks)
//! 3. host unit tests (`cargo test --workspace`, minus the QEMU tests,
//!    and the apps' tests)
//! 4. images: the contract images and the test-hook images
//! 5. QEMU boot tests (`tests/`), under TCG

use anyhow::Result;
use clap::Args;

use crate::build::cargo;
use crate::deps::{self, Need};
use crate::progress::Totals;
use crate::{image, paths, progress};

/// Options of `cargo xtask test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Skip formatting and clippy.
    #[arg(long)]
    no_lint: bool,
    /// Only host unit tests: no images, no QEMU.
    #[arg(long, conflicts_with = "qemu_only")]
    host_only: bool,
    /// Only the QEMU tests (builds the images they need).
    #[arg(long)]
    qemu_only: bool,
    /// Only QEMU tests whose names contain this text (cargo test's
    /// filter; repeat for several), for example `--qemu-only --filter
    /// tcp_echo`.
    #[arg(long, value_name = "TEXT")]
    filter: Vec<String>,
}

/// `cargo xtask test`.
pub fn test(args: &TestArgs) -> Result<()> {
    let mut totals = Totals::default();
    if !args.no_lint && !args.qemu_only {
        progress::header("formatting (cargo fmt --check)");
        progress::run(cargo().args(["fmt", "--all", "--check"]))?;
        // The apps are a workspace of their own.
        progress::run(apps_cargo().args(["fmt", "--all", "--check"]))?;
        progress::header("clippy (-D warnings)");
        // The kernel is linted on its own: with `--all-targets`, host
        // dev-dependencies would turn on `std` features of crates it shares.
        let clippy = |extra: &[&str]| {
            progress::run(
                cargo()
                    .arg("clippy")
                    .args(extra)
                    .args(["--", "-D", "warnings"]),
            )
        };
        clippy(&[
            "--workspace",
            "--exclude",
            "kernel",
            "--exclude",
            "llmos-inference",
            "--all-targets",
        ])?;
        // The runtime with the flags and target directory of its real
        // build, so llama.cpp is compiled once.
        progress::run(
            crate::runtime::cargo_for(crate::runtime::DEFAULT_CPU, "clippy").args([
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
        progress::run(
            apps_cargo()
                .args(["clippy", "--target", crate::apps::TARGET, "--target-dir"])
                .arg(paths::target().join("apps-build"))
                .args(["--all-targets", "--", "-D", "warnings"]),
        )?;
        clippy(&["--package", "kernel"])?;
        clippy(&["--package", "kernel", "--features", "test-hooks"])?;
    }
    if !args.qemu_only {
        progress::header("host unit tests");
        let host = [
            "--workspace",
            "--exclude",
            "kernel",
            "--exclude",
            "llmos-tests",
            "--exclude",
            "llmos-inference",
        ];
        // The sandbox's tests run the real Python and JavaScript runtimes.
        let (python, quickjs) = crate::lang::runtimes()?;
        totals.add(&progress::run_tee(
            cargo()
                .env("LLMOS_PYTHON_WASM", &python)
                .env("LLMOS_QUICKJS_WASM", &quickjs)
                .arg("test")
                .args(host),
        )?);
        // The apps' own logic, on the host.
        totals.add(&progress::run_tee(
            apps_cargo()
                .args([
                    "test",
                    "--target",
                    "x86_64-unknown-linux-gnu",
                    "--target-dir",
                ])
                .arg(paths::target().join("apps-host")),
        )?);
        totals.add(&progress::run_tee(&mut crate::runtime::cargo_for(
            crate::runtime::DEFAULT_CPU,
            "test",
        ))?);
        // The sandbox's tests again, with the sandbox as the runtime
        // builds it (release, tail-call dispatch; its target directory).
        totals.add(&progress::run_tee(
            crate::runtime::cargo_in_runtime_dir(crate::runtime::DEFAULT_CPU, "test")
                .env("LLMOS_PYTHON_WASM", &python)
                .env("LLMOS_QUICKJS_WASM", &quickjs)
                .args([
                    "--package",
                    "llmos-sandbox",
                    "--no-default-features",
                    "--test",
                    "hostile",
                    "--test",
                    "languages",
                ]),
        )?);
    }
    if args.host_only {
        return finish(totals);
    }
    deps::ensure(&[Need::Qemu, Need::Ovmf], "QEMU tests")?;
    // The contract images without the runtime: the boot tests check the
    // kernel alone (the runtime has its own images, see the cases).
    image::build_images(&image::ContentArgs {
        no_model: true,
        ..image::ContentArgs::default()
    })?;
    image::build_test_images()?;
    let runtime = crate::runtime::build(crate::runtime::DEFAULT_CPU)?;
    let model = crate::model::default_model()?;
    let tiny = crate::model::tiny_model()?;
    crate::lang::runtimes()?;
    let apps = crate::apps::build()?;
    image::build_program_images(&runtime)?;
    progress::header("QEMU boot tests (TCG) and hosted runtime tests");
    let qemu_tests = [
        "test",
        "--package",
        "llmos-tests",
        "--",
        "--test-threads",
        "2",
    ];
    totals.add(&progress::run_tee(
        cargo()
            .env("LLMOS_IMAGES", paths::images())
            .env("LLMOS_RUNTIME", &runtime)
            .env("LLMOS_MODEL", &model)
            .env("LLMOS_TINY_MODEL", &tiny)
            .env("LLMOS_LANG_DIR", paths::target().join("lang"))
            .env("LLMOS_APPS_DIR", &apps)
            .args(qemu_tests)
            .args(&args.filter),
    )?);
    finish(totals)
}

/// cargo in the apps' workspace.
fn apps_cargo() -> std::process::Command {
    let mut c = cargo();
    c.current_dir(paths::root().join("apps"));
    c
}

/// Prints the overall count as the last line (`N passed, N failed`).
fn finish(t: Totals) -> Result<()> {
    println!(
        "summary: {} passed, {} failed, {} skipped",
        t.passed, t.failed, t.ignored
    );
    if t.passed == 0 {
        anyhow::bail!("no test ran");
    }
    Ok(())
}
