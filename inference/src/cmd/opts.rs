//! The command line's options: what the generating commands share
//! ([`GenOpts`]), the chat commands' code interpreter and apps
//! ([`ChatOpts`], checked into an [`ExecPlan`] and built into the sandbox
//! once the model is loaded), and `serve`'s ([`ServeOpts`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use llmos_inference::exec::Exec;
use llmos_inference::job::Defaults;

/// Options shared by the generating commands.
#[derive(Args)]
pub struct GenOpts {
    /// The GGUF model.
    #[arg(long, value_name = "GGUF")]
    pub model: PathBuf,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_tokens: u32,
    /// Context size in tokens.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(16..=1 << 20))]
    pub ctx: u32,
    /// Threads (default: the CPUs this process may use).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=256))]
    pub threads: Option<i32>,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Top-k (0: off).
    #[arg(long, default_value_t = 40, allow_negative_numbers = true)]
    pub top_k: i32,
    /// Top-p (1: off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p (0: off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Repetition penalty (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Frequency penalty (0: off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub frequency_penalty: f32,
    /// Presence penalty (0: off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub presence_penalty: f32,
    /// Seed for sampling with a temperature.
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Stop before this text (repeatable).
    #[arg(long = "stop", value_name = "TEXT")]
    pub stops: Vec<String>,
    /// Also print the generated token ids and why generation ended.
    #[arg(long)]
    pub print_tokens: bool,
    /// Constrain the output with this GBNF grammar (root rule `root`).
    #[arg(long, value_name = "FILE")]
    pub grammar_file: Option<PathBuf>,
}

impl GenOpts {
    /// The generation settings these options ask for, checked.
    pub fn defaults(&self) -> Result<Defaults, String> {
        let grammar = match &self.grammar_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| format!("--grammar-file {}: {e}", f.display()))?,
            ),
            None => None,
        };
        let d = Defaults {
            max_tokens: self.max_tokens,
            sampling: llmos_inference::engine::Sampling {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                frequency_penalty: self.frequency_penalty,
                presence_penalty: self.presence_penalty,
                penalty_last_n: 64,
                seed: self.seed,
                logit_bias: Vec::new(),
            },
            stops: self.stops.clone(),
            grammar,
            ignore_eos: false,
        };
        d.sampling.validate()?;
        Ok(d)
    }

    /// Threads to decode with.
    pub fn threads(&self) -> i32 {
        self.threads
            .unwrap_or_else(llmos_inference::default_threads)
    }
}

/// Options of the chat commands.
#[derive(Args)]
pub struct ChatOpts {
    /// A system message.
    #[arg(long)]
    pub system: Option<String>,
    /// A chat template instead of the model's: a llama.cpp name (chatml,
    /// llama3, gemma, …) or a template.
    #[arg(long)]
    pub chat_template: Option<String>,
    /// Where the code interpreter's WASI runtimes are
    /// (python-3.12.0.wasm, quickjs.wasm); without it, no /run and no
    /// /v1/exec.
    #[arg(long, value_name = "DIR")]
    pub lang_dir: Option<PathBuf>,
    /// The code interpreter's wall-clock cap per run in milliseconds
    /// (requests may ask for less, never more).
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub exec_timeout_ms: u64,
    /// A sandbox cap for code and apps, KEY=VALUE (repeatable): fuel,
    /// wall_ms, memory_mib, table, module_mib, output_kib, files,
    /// scratch_mib, runs, total_memory_mib (docs/sandbox.md has the
    /// defaults). Requests and manifests can only ask for less.
    #[arg(long = "sandbox-cap", value_name = "KEY=VALUE")]
    pub sandbox_caps: Vec<String>,
    /// Where the installed apps are (one directory per app, with its
    /// manifest.toml and module); without it, no apps.
    #[arg(long, value_name = "DIR")]
    pub apps_dir: Option<PathBuf>,
    /// Where apps that keep data get their private directories (made if
    /// missing); without it, such apps can't run.
    #[arg(long, value_name = "DIR", requires = "apps_dir")]
    pub app_data: Option<PathBuf>,
    /// A publisher's ed25519 public key (64 hex digits in a file) that app
    /// signatures are checked against (repeatable). A key inside an app's
    /// own manifest proves nothing.
    #[arg(long = "trust-key", value_name = "FILE", requires = "apps_dir")]
    pub trust_keys: Vec<PathBuf>,
}

/// What `--lang-dir`, `--apps-dir` and the sandbox options ask for,
/// checked: the directories exist, the caps and keys parse.
pub struct ExecPlan {
    pub lang_dir: Option<PathBuf>,
    pub apps: Option<llmos_inference::apps::AppsDir>,
    /// The caps set on the command line, applied over the derived ones.
    pub caps: Vec<String>,
    pub wall: std::time::Duration,
}

/// Checks the code interpreter's and the apps' options before anything
/// starts; `None` when neither `--lang-dir` nor `--apps-dir` was given.
pub fn exec_plan(chat: &ChatOpts) -> Result<Option<ExecPlan>, String> {
    if chat.lang_dir.is_none() && chat.apps_dir.is_none() {
        return Ok(None);
    }
    for (flag, d) in [
        ("--lang-dir", &chat.lang_dir),
        ("--apps-dir", &chat.apps_dir),
    ] {
        if let Some(d) = d
            && !d.is_dir()
        {
            return Err(format!("{flag} {}: not a directory", d.display()));
        }
    }
    if let Some(d) = &chat.app_data {
        std::fs::create_dir_all(d).map_err(|e| format!("--app-data {}: {e}", d.display()))?;
    }
    let mut check = llmos_sandbox::Caps::default();
    for c in &chat.sandbox_caps {
        check.set(c).map_err(|e| format!("--sandbox-cap {e}"))?;
    }
    let apps = match &chat.apps_dir {
        Some(dir) => Some(llmos_inference::apps::AppsDir {
            dir: dir.clone(),
            data: chat.app_data.clone(),
            trusted: chat
                .trust_keys
                .iter()
                .map(|f| llmos_inference::signature::TrustedKey::read(f))
                .collect::<Result<_, _>>()?,
        }),
        None => None,
    };
    Ok(Some(ExecPlan {
        lang_dir: chat.lang_dir.clone(),
        apps,
        caps: chat.sandbox_caps.clone(),
        wall: std::time::Duration::from_millis(chat.exec_timeout_ms),
    }))
}

/// The code interpreter and the apps, with caps derived from the memory
/// left now ([`llmos_inference::exec::sandbox_memory`]: call it once the
/// model and its caches are loaded), then the command line's `--sandbox-cap`
/// and `--exec-timeout-ms`. Apps that can't be loaded are named on stderr.
pub fn exec(plan: Option<ExecPlan>) -> Result<Option<std::sync::Arc<Exec>>, String> {
    let Some(plan) = plan else {
        return Ok(None);
    };
    let available = llmos_inference::exec::sandbox_memory();
    let mut caps = match available {
        Some(n) => llmos_sandbox::Caps::for_memory(n).map_err(|e| {
            format!(
                "{e}; give the machine more memory, or set the sandbox's caps with --sandbox-cap"
            )
        })?,
        None => llmos_sandbox::Caps::default(),
    };
    caps.wall = plan.wall;
    for c in &plan.caps {
        caps.set(c).map_err(|e| format!("--sandbox-cap {e}"))?;
    }
    let exec = Exec::new(plan.lang_dir, plan.apps, caps)?;
    if let Some(apps) = exec.apps() {
        for p in &apps.problems {
            eprintln!("llmos-runtime: app left out: {p}");
        }
    }
    Ok(Some(std::sync::Arc::new(exec)))
}

/// Options of `serve`.
#[derive(Args)]
pub struct ServeOpts {
    /// Address and port of the HTTP API. Anything but loopback needs an
    /// API key (one is generated and shown on the console if none is
    /// given).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A file of API keys, one per line (repeatable).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Vec<PathBuf>,
    /// Sequence slots: requests generated at the same time, each with its
    /// own context of --ctx tokens.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub slots: u32,
    /// Requests that may wait for a slot; more are refused with 429.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub queue: u32,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    pub body_limit: u64,
    /// No chat console on stdin/stdout: serve the API only.
    #[arg(long)]
    pub no_console: bool,
    /// Do not log each request on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Another host name (or address) the API answers to, besides
    /// localhost, the loopback addresses, the listen address and the
    /// machine's own address (repeatable). Requests naming any other
    /// `Host` get 421: that stops DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// A web page origin (scheme://host[:port]) allowed to send requests
    /// (repeatable); requests from any other page's origin get 403.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Connections open at once (default: a quarter of the descriptor
    /// limit, between 8 and 1024). At the cap the oldest connection that
    /// is not serving a request makes room; if all are serving, 503.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: Option<u32>,
    /// Seconds a client has to send a request's headers (from the
    /// connection's start or the request's first byte).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// Seconds a keep-alive connection may wait for its next request.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,
    /// Seconds a client has to send a request's body after its headers.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: u64,
    /// Seconds a client may read nothing of a reply being sent to it;
    /// then its connection closes.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_timeout: u64,
    /// MiB of replies the clients have not read yet, in all; beyond it the
    /// stalled connections holding the most are closed (default: a
    /// sixteenth of the machine's memory, 16 to 256 MiB).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_pending_mib: Option<u64>,
    /// Requests one key may have in service at once (all keyless
    /// requests together count as one key); default: half the connection
    /// cap. Over it: 429.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_requests_per_key: Option<u32>,
    /// Seconds a completion may wait in the queue for a slot; then it gets
    /// 503.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub queue_timeout: u64,
    /// Requests a minute per API key (all keyless requests share one
    /// budget); 0 turns the limit off. Over it: 429 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 1200)]
    pub rate_limit: u32,
    /// Requests a key may make at once after a quiet spell.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_burst: u32,
}
