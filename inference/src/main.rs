//! `llmos-runtime`: see the crate documentation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use llmos_inference::console::Ended;
use llmos_inference::engine::{Engine, Generate, Sampling, Stats};
use llmos_inference::exec::Exec;
use llmos_inference::server::{self, Config, ModelState, Shared};
use llmos_inference::terminal::LineSource;
use llmos_inference::{auth, cpu, default_threads};

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
    /// Constrain the output with this GBNF grammar (root rule `root`).
    #[arg(long, value_name = "FILE")]
    grammar_file: Option<PathBuf>,
}

impl GenOpts {
    fn generate(&self) -> Result<Generate, String> {
        let grammar = match &self.grammar_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| format!("--grammar-file {}: {e}", f.display()))?,
            ),
            None => None,
        };
        Ok(Generate {
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
                logit_bias: Vec::new(),
            },
            stops: self.stops.clone(),
            grammar,
            ignore_eos: false,
        })
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
    /// Where the code interpreter's WASI runtimes are
    /// (python-3.12.0.wasm, quickjs.wasm); without it, no /run and no
    /// /v1/exec.
    #[arg(long, value_name = "DIR")]
    lang_dir: Option<PathBuf>,
    /// The code interpreter's wall-clock cap per run in milliseconds
    /// (requests may ask for less, never more).
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    exec_timeout_ms: u64,
    /// A sandbox cap for code and apps, KEY=VALUE (repeatable): fuel,
    /// wall_ms, memory_mib, table, module_mib, output_kib, files,
    /// scratch_mib, runs, total_memory_mib (docs/sandbox.md has the
    /// defaults). Requests and manifests can only ask for less.
    #[arg(long = "sandbox-cap", value_name = "KEY=VALUE")]
    sandbox_caps: Vec<String>,
    /// Where the installed apps are (one directory per app, with its
    /// manifest.toml and module); without it, no apps.
    #[arg(long, value_name = "DIR")]
    apps_dir: Option<PathBuf>,
    /// Where apps that keep data get their private directories (made if
    /// missing); without it, such apps can't run.
    #[arg(long, value_name = "DIR", requires = "apps_dir")]
    app_data: Option<PathBuf>,
    /// A publisher's ed25519 public key (64 hex digits in a file) that app
    /// signatures are checked against (repeatable). A key inside an app's
    /// own manifest proves nothing.
    #[arg(long = "trust-key", value_name = "FILE", requires = "apps_dir")]
    trust_keys: Vec<PathBuf>,
}

/// What `--lang-dir`, `--apps-dir` and the sandbox options ask for,
/// checked: the directories exist, the caps and keys parse.
struct ExecPlan {
    lang_dir: Option<PathBuf>,
    apps: Option<llmos_inference::apps::AppsDir>,
    /// The caps set on the command line, applied over the derived ones.
    caps: Vec<String>,
    wall: std::time::Duration,
}

/// Checks the code interpreter's and the apps' options before anything
/// starts; `None` when neither `--lang-dir` nor `--apps-dir` was given.
fn exec_plan(chat: &ChatOpts) -> Result<Option<ExecPlan>, String> {
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
fn exec(plan: Option<ExecPlan>) -> Result<Option<std::sync::Arc<Exec>>, String> {
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
struct ServeOpts {
    /// Address and port of the HTTP API. Anything but loopback needs an
    /// API key (one is generated and shown on the console if none is
    /// given).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A file of API keys, one per line (repeatable).
    #[arg(long, value_name = "FILE")]
    api_key_file: Vec<PathBuf>,
    /// Sequence slots: requests generated at the same time, each with its
    /// own context of --ctx tokens.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    slots: u32,
    /// Requests that may wait for a slot; more are refused with 429.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(0..=4096))]
    queue: u32,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    body_limit: u64,
    /// No chat console on stdin/stdout: serve the API only.
    #[arg(long)]
    no_console: bool,
    /// Do not log each request on stderr.
    #[arg(long)]
    quiet: bool,
    /// Another host name (or address) the API answers to, besides
    /// localhost, the loopback addresses, the listen address and the
    /// machine's own address (repeatable). Requests naming any other
    /// `Host` get 421: that stops DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// A web page origin (scheme://host[:port]) allowed to send requests
    /// (repeatable); requests from any other page's origin get 403.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Connections open at once (default: a quarter of the descriptor
    /// limit, between 8 and 1024). At the cap the oldest connection that
    /// is not serving a request makes room; if all are serving, 503.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_connections: Option<u32>,
    /// Seconds a client has to send a request's headers (from the
    /// connection's start or the request's first byte).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Seconds a keep-alive connection may wait for its next request.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout: u64,
    /// Seconds a client has to send a request's body after its headers.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout: u64,
    /// Seconds a client may read nothing of a reply being sent to it;
    /// then its connection closes.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    write_timeout: u64,
    /// MiB of replies the clients have not read yet, in all; beyond it the
    /// stalled connections holding the most are closed (default: a
    /// sixteenth of the machine's memory, 16 to 256 MiB).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    max_pending_mib: Option<u64>,
    /// Requests one key may have in service at once (all keyless
    /// requests together count as one key); default: half the connection
    /// cap. Over it: 429.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_requests_per_key: Option<u32>,
    /// Seconds a completion may wait in the queue for a slot; then it gets
    /// 503.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
    queue_timeout: u64,
    /// Requests a minute per API key (all keyless requests share one
    /// budget); 0 turns the limit off. Over it: 429 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 1200)]
    rate_limit: u32,
    /// Requests a key may make at once after a quiet spell.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate_burst: u32,
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

/// `bench`: `reps` runs (after a warm-up) of a `pp`-token prompt and `tg`
/// generated tokens, each printed as a JSON line.
fn bench(model: &Path, pp: u32, tg: u32, reps: u32, threads: i32) -> Result<(), String> {
    let e = Engine::load(model)?;
    eprintln!("model: {}; {threads} thread(s)", e.info);
    // A fixed prompt of exactly `pp` tokens: ordinary text, repeated.
    let text = "The quick brown fox jumps over the lazy dog while the sun sets slowly. ";
    let mut prompt = e.tokenize(text, true, false);
    let body = e.tokenize(text, false, false);
    while prompt.len() < pp as usize {
        prompt.extend_from_slice(&body);
    }
    prompt.truncate(pp as usize);
    let g = |max_tokens: u32, context: u32| Generate {
        max_tokens,
        context,
        threads,
        sampling: Sampling::default(),
        stops: Vec::new(),
        grammar: None,
        ignore_eos: true,
    };
    // ppN: the prompt's decode (one token generated after it, not timed).
    let gp = g(1, pp + 1);
    // tgN from an empty context, as llama-bench measures it: one prompt
    // token, then N generated; a generation after the N-token prompt would
    // attend to N more positions at every step.
    let gt = g(tg, tg + 1);
    for run in 0..=reps {
        let p =
            e.session(gp.context, threads)?
                .complete(prompt.clone(), &gp, &mut std::io::sink())?;
        let t = e.session(gt.context, threads)?.complete(
            prompt[..1].to_vec(),
            &gt,
            &mut std::io::sink(),
        )?;
        if t.generated != tg as usize {
            return Err(format!("generated {} tokens, not {tg}", t.generated));
        }
        let rate = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
        println!(
            "{{\"warmup\":{},\"threads\":{threads},\"pp\":{pp},\"pp_ms\":{:.3},\"pp_ts\":{:.3},\"tg\":{tg},\"tg_ms\":{:.3},\"tg_ts\":{:.3}}}",
            run == 0,
            p.prompt_ms,
            rate(p.prompt_tokens, p.prompt_ms),
            t.generate_ms,
            rate(t.generated, t.generate_ms),
        );
    }
    Ok(())
}

fn load(opts: &GenOpts) -> Result<(Engine, Generate), String> {
    let g = opts.generate()?;
    g.sampling.validate()?;
    let e = Engine::load(&opts.model)?;
    eprintln!("model: {}; {} thread(s)", e.info, g.threads);
    Ok((e, g))
}

/// The model's id in the API: its file name without `.gguf`.
fn model_id(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    name.strip_suffix(".gguf").unwrap_or(&name).to_owned()
}

/// Unread replies allowed in all when `--max-pending-mib` is not given: a
/// sixteenth of the machine's memory, 16 to 256 MiB.
fn default_pending() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(1 << 30, |kb| kb * 1024);
    (total / 16).clamp(16 << 20, 256 << 20)
}

fn serve(opts: GenOpts, chat: ChatOpts, so: ServeOpts) -> Result<(), String> {
    let g = opts.generate()?;
    g.sampling.validate()?;
    let mut keys = Vec::new();
    for f in &so.api_key_file {
        keys.extend(auth::read_keys(f)?);
    }
    // Off loopback, a key is always needed; without one, make one, but
    // only from healthy hardware randomness. Without that the API stays
    // off (the console works) and says why.
    let (generated, api_off) = if keys.is_empty() && !so.listen.ip().is_loopback() {
        match auth::hardware_randomness().and_then(|()| auth::boot_key()) {
            Ok(k) => {
                keys.push(k.clone());
                (Some(k), None)
            }
            Err(why) => (None, Some(why)),
        }
    } else {
        (None, None)
    };
    // Blocking work (sandbox runs, templates, tokenizing) gets a few
    // threads of its own, not tokio's default of 512.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .map_err(|e| format!("starting the HTTP runtime: {e}"))?;
    let listener = match api_off {
        Some(_) => None,
        None => {
            let l = std::net::TcpListener::bind(so.listen)
                .map_err(|e| format!("--listen {}: {e}", so.listen))?;
            l.set_nonblocking(true)
                .map_err(|e| format!("--listen {}: {e}", so.listen))?;
            Some(l)
        }
    };
    let addr = match &listener {
        Some(l) => l.local_addr().map_err(|e| e.to_string())?,
        None => so.listen,
    };
    let own: Vec<std::net::IpAddr> = server::outward_ip().into_iter().collect();
    let policy =
        llmos_inference::browser::Policy::new(addr, &own, &so.allow_hosts, &so.allow_origins)?;
    let secs = std::time::Duration::from_secs;
    let connections = llmos_inference::conn::Limits {
        max: so.max_connections.map_or_else(
            || llmos_inference::conn::default_max(llmos_inference::conn::nofile_limit()),
            |n| n as usize,
        ),
        header: secs(so.header_timeout),
        idle: secs(so.idle_timeout),
        body: secs(so.body_timeout),
        write: secs(so.write_timeout),
        max_pending: so.max_pending_mib.map_or_else(default_pending, |m| m << 20),
    };
    let config = Config {
        keys: keys.clone(),
        model_id: model_id(&opts.model),
        context: g.context,
        threads: g.threads,
        max_tokens: g.max_tokens,
        sampling: g.sampling.clone(),
        chat_template: chat.chat_template.clone(),
        slots: so.slots as usize,
        queue: so.queue as usize,
        body_limit: so.body_limit as usize,
        log_requests: !so.quiet,
        policy,
        connections,
        rate: llmos_inference::ratelimit::Rate {
            per_minute: so.rate_limit,
            burst: so.rate_burst,
        },
        queue_timeout: secs(so.queue_timeout),
        per_key: so
            .max_requests_per_key
            .map_or((connections.max / 2).max(1), |n| n as usize),
    };
    let plan = exec_plan(&chat)?;
    let shared = Shared::new(config);
    let s2 = shared.clone();
    if let Some(listener) = listener {
        std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                let r = rt.block_on(async move {
                    let l = tokio::net::TcpListener::from_std(listener)?;
                    server::serve(l, s2).await
                });
                if let Err(e) = r {
                    eprintln!("llmos-runtime: the HTTP API stopped: {e}");
                }
            })
            .map_err(|e| format!("starting the HTTP thread: {e}"))?;
    }

    // The API answers 503 until this is done.
    let state = match Engine::load(&opts.model) {
        Err(e) => ModelState::Failed(e),
        Ok(e) => {
            let e: &'static Engine = Box::leak(Box::new(e));
            let check = e.format_chat(
                &[("user".into(), "hi".into())],
                chat.chat_template.as_deref(),
            );
            match check.and_then(|_| {
                llmos_inference::queue::Queue::start(
                    e,
                    so.slots as usize,
                    so.queue as usize,
                    g.context,
                    g.threads,
                )
            }) {
                Ok(q) => ModelState::Ready(e, q),
                Err(why) => ModelState::Failed(why),
            }
        }
    };
    // The sandbox gets what is left now that the model and its caches are
    // in memory.
    let exec = exec(plan)?;
    let _ = shared.exec.set(exec.clone());
    let mut banner = Vec::new();
    let engine = match &state {
        ModelState::Ready(e, _) => {
            banner.push(format!("model: {}", e.info));
            Some(*e)
        }
        ModelState::Failed(why) => {
            banner.push(format!("model: failed to load: {why}"));
            None
        }
    };
    let failed = match &state {
        ModelState::Failed(why) => Some(why.clone()),
        ModelState::Ready(..) => None,
    };
    let _ = shared.model.set(state);
    banner.push(format!(
        "context: {} tokens; {} thread(s); {} slot(s), queue {}",
        g.context, g.threads, so.slots, so.queue
    ));
    if let Some(x) = exec.as_deref() {
        banner.push(format!("sandbox: {}", x.caps()));
    }
    if let Some(apps) = exec.as_deref().and_then(Exec::apps) {
        let names: Vec<String> = apps
            .list()
            .map(|a| format!("{} {}", a.manifest.name, a.manifest.version))
            .collect();
        banner.push(format!(
            "apps: {}{}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            },
            if apps.problems.is_empty() {
                String::new()
            } else {
                format!(" ({} left out, see above)", apps.problems.len())
            }
        ));
    }
    if let Some(why) = &api_off {
        banner.push(format!(
            "API: off: {why}; the API needs keys from --api-key-file (cargo xtask run --api-key-file FILE)"
        ));
    } else {
        banner.push(format!(
            "API: {} (listening on {addr}; docs/api.md)",
            server::reachable(addr)
        ));
    }
    if shared.restarts > 0 {
        banner.push(format!(
            "restarted: {} time(s); the last run ended: {}",
            shared.restarts,
            shared.last_exit.as_deref().unwrap_or("?")
        ));
    }
    banner.push(format!(
        "connections: at most {}; headers within {} s, idle {} s, bodies {} s, unread replies {} s and {} MiB in all; requests {} a minute per key{}",
        connections.max,
        so.header_timeout,
        so.idle_timeout,
        so.body_timeout,
        so.write_timeout,
        connections.max_pending >> 20,
        so.rate_limit,
        if so.rate_limit == 0 { " (no limit)" } else { "" }
    ));
    banner.push(match (&generated, keys.len()) {
        (Some(k), _) => format!("API key (generated at boot, shown only here): {k}"),
        (None, 0) if api_off.is_some() => "auth: no key".to_owned(),
        (None, 0) => "auth: none (loopback only)".to_owned(),
        (None, n) => format!("auth: {n} key(s) from --api-key-file"),
    });
    if api_off.is_none() && (generated.is_some() || !keys.is_empty()) {
        banner.push("  send it as the header 'Authorization: Bearer KEY'".to_owned());
    }
    let mut out = std::io::stdout();
    let (mut input, raw) = console_input(so.no_console);
    let ended = match (engine, so.no_console) {
        (Some(e), false) => {
            banner.push("console: /help lists the commands".to_owned());
            llmos_inference::console::run(
                e,
                g,
                chat.chat_template,
                chat.system,
                exec.as_deref(),
                &banner,
                &mut *input,
                &mut out,
            )?
        }
        (None, false) => {
            print_banner(&banner);
            println!("llmos: degraded (no model); the API answers 503; /quit to leave");
            llmos_inference::console::degraded(
                failed.as_deref().unwrap_or("?"),
                &mut *input,
                &mut out,
            )
        }
        (Some(_), true) => {
            print_banner(&banner);
            println!("llmos: ready");
            Ended::Eof
        }
        (None, true) => {
            print_banner(&banner);
            println!("llmos: degraded (no model); the API answers 503");
            Ended::Eof
        }
    };
    // The terminal's own settings come back.
    drop(raw);
    if ended == Ended::Quit {
        return Ok(());
    }
    if !so.no_console {
        println!("(the console input ended; the API keeps serving)");
    }
    loop {
        std::thread::park();
    }
}

/// The console's input: a line editor in raw mode on a terminal (with the
/// guard that restores it), else lines from standard input.
fn console_input(
    none: bool,
) -> (
    Box<dyn LineSource>,
    Option<llmos_inference::terminal::RawMode>,
) {
    use llmos_inference::terminal::{Lines, terminal};
    if !none && let Some((editor, raw)) = terminal() {
        return (Box::new(editor), Some(raw));
    }
    (Box::new(Lines::new(std::io::stdin().lock())), None)
}

fn print_banner(lines: &[String]) {
    for l in lines {
        println!("{l}");
    }
}

fn run(cmd: Command) -> Result<(), String> {
    let mut out = std::io::stdout();
    match cmd {
        Command::Serve {
            opts,
            chat,
            serve: so,
        } => serve(opts, chat, so)?,
        Command::Bench {
            model,
            pp,
            tg,
            reps,
            threads,
        } => bench(
            &model,
            pp,
            tg,
            reps,
            threads.unwrap_or_else(default_threads),
        )?,
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
            chat:
                ChatOpts {
                    system,
                    chat_template,
                    lang_dir,
                    exec_timeout_ms,
                    apps_dir,
                    app_data,
                    sandbox_caps,
                    trust_keys,
                },
        } => {
            let g = opts.generate()?;
            g.sampling.validate()?;
            let e = Engine::load(&opts.model)?;
            let banner = [
                format!("model: {}", e.info),
                format!(
                    "context: {} tokens; {} thread(s); /help lists the commands",
                    g.context, g.threads
                ),
            ];
            let exec = exec(exec_plan(&ChatOpts {
                system: None,
                chat_template: None,
                lang_dir,
                exec_timeout_ms,
                apps_dir,
                app_data,
                sandbox_caps,
                trust_keys,
            })?)?;
            let (mut input, raw) = console_input(false);
            llmos_inference::console::run(
                &e,
                g,
                chat_template,
                system,
                exec.as_deref(),
                &banner,
                &mut *input,
                &mut out,
            )?;
            drop(raw);
        }
        Command::Chat {
            opts,
            chat:
                ChatOpts {
                    system,
                    chat_template,
                    ..
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
