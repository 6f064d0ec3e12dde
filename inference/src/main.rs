//! `llmos-runtime`: see the crate documentation.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llmos_inference::engine::{Engine, Generate};
use llmos_inference::{cpu, default_threads};

#[derive(Parser)]
#[command(name = "llmos-runtime", version, about = "The llmos LLM runtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a model and describe it.
    Info {
        /// The GGUF model.
        #[arg(long, value_name = "GGUF")]
        model: PathBuf,
    },
    /// Greedy generation from a raw prompt (no chat template).
    Generate {
        /// The GGUF model.
        #[arg(long, value_name = "GGUF")]
        model: PathBuf,
        /// Tokens to generate at most.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
        max_tokens: u32,
        /// Context size in tokens.
        #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(16..=1 << 20))]
        ctx: u32,
        /// Threads (default: the CPUs this process may use).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..=256))]
        threads: Option<i32>,
        /// Also print the generated token ids.
        #[arg(long)]
        print_tokens: bool,
        /// The prompt.
        prompt: String,
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

fn run(cmd: Command) -> Result<(), String> {
    match cmd {
        Command::Info { model } => {
            let e = Engine::load(&model)?;
            println!("model: {}", e.info);
            println!("built for: {}", cpu::built_for().join(" "));
            Ok(())
        }
        Command::Generate {
            model,
            max_tokens,
            ctx,
            threads,
            print_tokens,
            prompt,
        } => {
            let e = Engine::load(&model)?;
            let threads = threads.unwrap_or_else(default_threads);
            eprintln!("model: {}; {threads} thread(s)", e.info);
            let g = Generate {
                max_tokens,
                context: ctx,
                threads,
            };
            let mut out = std::io::stdout();
            let st = e.generate(&prompt, &g, &mut out)?;
            println!();
            if print_tokens {
                let ids: Vec<String> = st.tokens.iter().map(i32::to_string).collect();
                println!("tokens: {}", ids.join(" "));
            }
            let rate = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
            eprintln!(
                "prompt: {} tokens in {:.1} ms ({:.1} tok/s); generated {} tokens in {:.1} ms ({:.1} tok/s)",
                st.prompt_tokens,
                st.prompt_ms,
                rate(st.prompt_tokens, st.prompt_ms),
                st.generated,
                st.generate_ms,
                rate(st.generated, st.generate_ms)
            );
            Ok(())
        }
    }
}
