//! `serve`: the API and the console on one model, what llmos runs at
//! boot. Wires the parts together: keys, the HTTP server on its own
//! thread, the model and the scheduler, the sandbox, the status block and
//! the console.

use std::path::Path;

use llmos_inference::auth;
use llmos_inference::console::{Ended, Parts};
use llmos_inference::engine::Engine;
use llmos_inference::exec::Exec;
use llmos_inference::queue::{self, Queue};
use llmos_inference::server::{self, Config, ModelState, Shared};
use llmos_inference::terminal::LineSource;

use super::opts::{ChatOpts, GenOpts, ServeOpts, exec, exec_plan};

/// The model's id in the API: its file name without `.gguf`.
pub fn model_id(path: &Path) -> String {
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

pub fn serve(opts: GenOpts, chat: ChatOpts, so: ServeOpts) -> Result<(), String> {
    let g = opts.defaults()?;
    let (context, threads) = (opts.ctx, opts.threads());
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
        context,
        threads,
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
            let started = check.and_then(|_| {
                Queue::start(
                    e,
                    queue::Config {
                        slots: so.slots as usize,
                        console: !so.no_console,
                        capacity: so.queue as usize,
                        context,
                        threads,
                    },
                )
            });
            match started {
                Ok(q) => ModelState::Ready(e, q),
                Err(why) => ModelState::Failed(why.to_string()),
            }
        }
    };
    // The sandbox gets what is left now that the model and its caches are
    // in memory.
    let exec = exec(plan)?;
    let _ = shared.exec.set(exec.clone());
    let mut banner = Vec::new();
    let engine = match &state {
        ModelState::Ready(e, q) => {
            banner.push(format!("model: {}", e.info));
            Some((*e, q.clone()))
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
        context, threads, so.slots, so.queue
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
        (Some((e, q)), false) => {
            banner.push("console: /help lists the commands".to_owned());
            let parts = Parts {
                engine: e,
                queue: &q,
                template: chat.chat_template,
                exec: exec.as_deref(),
            };
            llmos_inference::console::run(&parts, g, chat.system, &banner, &mut *input, &mut out)?
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
pub fn console_input(
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
