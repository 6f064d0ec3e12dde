//! `llmos-runtime`: see the crate documentation. This file parses the
//! command line and calls the command ([`cmd`]).

#![forbid(unsafe_code)]

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cmd::opts::{ChatOpts, GenOpts, ServeOpts};

#[derive(Parser)]
#[command(name = "llmos-runtime", version, about = "The llmos LLM runtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The HTTP API and the chat console: what llmos runs at boot.
    Serve {
        #[command(flatten)]
        opts: GenOpts,
        #[command(flatten)]
        chat: ChatOpts,
        #[command(flatten)]
        serve: ServeOpts,
    },
    /// Load a model and describe it.
    Info {
        /// The GGUF model.
        #[arg(long, value_name = "GGUF")]
        model: PathBuf,
    },
    /// Complete a raw prompt (no chat template).
    Generate {
        #[command(flatten)]
        opts: GenOpts,
        /// The prompt.
        prompt: String,
    },
    /// The chat console on stdin/stdout: a conversation with commands
    /// (/help lists them).
    Console {
        #[command(flatten)]
        opts: GenOpts,
        #[command(flatten)]
        chat: ChatOpts,
    },
    /// Prompt-processing and generation speed through the engine's own
    /// path (a fresh context each time, greedy, end-of-turn ignored), as
    /// one JSON line per run: what `cargo xtask bench` compares with
    /// llama.cpp's llama-bench. As there, ppN is one N-token prompt and tgN
    /// is N tokens generated from an empty context (after one prompt token).
    Bench {
        /// The GGUF model.
        #[arg(long, value_name = "GGUF")]
        model: PathBuf,
        /// Prompt tokens.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
        pp: u32,
        /// Generated tokens.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
        tg: u32,
        /// Measured runs (after one warm-up run).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
        reps: u32,
        /// Threads (default: the CPUs this process may use).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..=256))]
        threads: Option<i32>,
    },
    /// One assistant reply, formatted with the model's chat template.
    Chat {
        #[command(flatten)]
        opts: GenOpts,
        #[command(flatten)]
        chat: ChatOpts,
        /// The user's message.
        message: String,
    },
}

fn main() -> ExitCode {
    // The CPU was checked before main (see `cpu`).
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llmos-runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve { opts, chat, serve } => cmd::serve::serve(opts, chat, serve),
        Command::Bench {
            model,
            pp,
            tg,
            reps,
            threads,
        } => cmd::once::bench(&model, pp, tg, reps, threads),
        Command::Info { model } => cmd::once::info(&model),
        Command::Generate { opts, prompt } => cmd::once::generate(&opts, &prompt),
        Command::Console { opts, chat } => cmd::once::console(&opts, chat),
        Command::Chat {
            opts,
            chat,
            message,
        } => cmd::once::chat(&opts, &chat, message),
    }
}
