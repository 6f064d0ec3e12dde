//! `llmos-runtime`: see the crate documentation.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use llmos_inference::engine::{Engine, Generate, Sampling, Stats};
use llmos_inference::{cpu, default_threads};

#[derive(Parser)]
#[command(name = "llmos-runtime", version, about = "The llmos LLM runtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by the generating commands.
#[derive(Args)]
struct GenOpts {
    /// The GGUF model.
    #[arg(long, value_name = "GGUF")]
    model: PathBuf,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_tokens: u32,
    /// Context size in tokens.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(16..=1 << 20))]
    ctx: u32,
    /// Threads (default: the CPUs this process may use).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=256))]
    threads: Option<i32>,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    temperature: f32,
    /// Top-k (0: off).
    #[arg(long, default_value_t = 40, allow_negative_numbers = true)]
    top_k: i32,
    /// Top-p (1: off).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Min-p (0: off).
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Repetition penalty (1: off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Frequency penalty (0: off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    frequency_penalty: f32,
    /// Presence penalty (0: off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    presence_penalty: f32,
    /// Seed for sampling with a temperature.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Stop before this text (repeatable).
    #[arg(long = "stop", value_name = "TEXT")]
    stops: Vec<String>,
    /// Also print the generated token ids and why generation ended.
    #[arg(long)]
    print_tokens: bool,
}

impl GenOpts {
    fn generate(&self) -> Generate {
        Generate {
            max_tokens: self.max_tokens,
            context: self.ctx,
            threads: self.threads.unwrap_or_else(default_threads),
            sampling: Sampling {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                frequency_penalty: self.frequency_penalty,
                presence_penalty: self.presence_penalty,
                penalty_last_n: 64,
                seed: self.seed,
            },
            stops: self.stops.clone(),
        }
    }
}

/// Options of the chat commands.
#[derive(Args)]
struct ChatOpts {
    /// A system message.
    #[arg(long)]
    system: Option<String>,
    /// A chat template instead of the model's: a llama.cpp name (chatml,
    /// llama3, gemma, …) or a template.
    #[arg(long)]
    chat_template: Option<String>,
}

#[derive(Subcommand)]
enum Command {
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

fn report(st: &Stats, print_tokens: bool) {
    println!();
    if print_tokens {
        let ids: Vec<String> = st.tokens.iter().map(i32::to_string).collect();
        println!("tokens: {}", ids.join(" "));
        println!("finish: {}", st.finish.as_str());
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
}

fn load(opts: &GenOpts) -> Result<(Engine, Generate), String> {
    let g = opts.generate();
    g.sampling.validate()?;
    let e = Engine::load(&opts.model)?;
    eprintln!("model: {}; {} thread(s)", e.info, g.threads);
    Ok((e, g))
}

fn run(cmd: Command) -> Result<(), String> {
    let mut out = std::io::stdout();
    match cmd {
        Command::Info { model } => {
            let e = Engine::load(&model)?;
            println!("model: {}", e.info);
            println!("built for: {}", cpu::built_for().join(" "));
        }
        Command::Generate { opts, prompt } => {
            let (e, g) = load(&opts)?;
            let st = e.generate(&prompt, &g, &mut out)?;
            report(&st, opts.print_tokens);
        }
        Command::Console {
            opts,
            chat: ChatOpts {
                system,
                chat_template,
            },
        } => {
            let (e, g) = load(&opts)?;
            let stdin = std::io::stdin();
            llmos_inference::console::run(
                &e,
                g,
                chat_template,
                system,
                &mut stdin.lock(),
                &mut out,
            )?;
        }
        Command::Chat {
            opts,
            chat: ChatOpts {
                system,
                chat_template,
            },
            message,
        } => {
            let (e, g) = load(&opts)?;
            let mut messages = Vec::new();
            if let Some(s) = system {
                messages.push(("system".to_owned(), s));
            }
            messages.push(("user".to_owned(), message));
            let st = e.chat(&messages, chat_template.as_deref(), &g, &mut out)?;
            report(&st, opts.print_tokens);
        }
    }
    Ok(())
}
