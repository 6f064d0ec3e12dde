//! The one-shot commands: `info`, `generate`, `chat`, the hosted
//! `console` and `bench`. Each runs its generations on a scheduler of its
//! own ([`llmos_inference::queue`]), the same path as the API's requests.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use llmos_inference::console::{self, Parts};
use llmos_inference::engine::{Engine, Sampling, Stats};
use llmos_inference::job::{Class, Collect, Defaults, Job, MaxTokens, Piece, Request};
use llmos_inference::queue::{self, Queue};
use llmos_inference::{cpu, default_threads};

use super::opts::{ChatOpts, GenOpts, exec, exec_plan};

/// Loads the model of `opts` and starts a scheduler with one console slot
/// of its context.
fn load(opts: &GenOpts) -> Result<(&'static Engine, Arc<Queue>, Defaults), String> {
    let d = opts.defaults()?;
    let e: &'static Engine = Box::leak(Box::new(Engine::load(&opts.model)?));
    eprintln!("model: {}; {} thread(s)", e.info, opts.threads());
    let q = Queue::start(
        e,
        queue::Config {
            slots: 0,
            console: true,
            capacity: 0,
            context: opts.ctx,
            threads: opts.threads(),
        },
    )?;
    Ok((e, q, d))
}

/// Runs `request` on `q`'s console slot, passing its text to `text`.
fn once(
    e: &Engine,
    q: &Queue,
    request: Request,
    fresh: bool,
    text: &mut dyn FnMut(&str),
) -> Result<Stats, String> {
    let (sink, rx) = Collect::new();
    let mut job = Job::new(e, request, q.context, Box::new(sink), Class::Console)?;
    job.reuse = !fresh;
    q.submit(job)?;
    loop {
        match rx.recv() {
            Ok(Piece::Text(t)) => text(&t),
            Ok(Piece::Done(r)) => return r.map_err(String::from),
            Err(_) => return Err("the generation ended without a result".into()),
        }
    }
}

/// Prints text as it comes.
fn print(t: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(t.as_bytes());
    let _ = out.flush();
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

/// `info`.
pub fn info(model: &Path) -> Result<(), String> {
    let e = Engine::load(model)?;
    println!("model: {}", e.info);
    println!("built for: {}", cpu::built_for().join(" "));
    Ok(())
}

/// `generate`: a raw prompt, no template.
pub fn generate(opts: &GenOpts, prompt: &str) -> Result<(), String> {
    let (e, q, d) = load(opts)?;
    let st = once(
        e,
        &q,
        d.request(e.tokenize(prompt, true, false)),
        false,
        &mut print,
    )?;
    report(&st, opts.print_tokens);
    Ok(())
}

/// `chat`: one reply to one message (and a system prompt).
pub fn chat(opts: &GenOpts, chat: &ChatOpts, message: String) -> Result<(), String> {
    let (e, q, d) = load(opts)?;
    let mut messages = Vec::new();
    if let Some(s) = &chat.system {
        messages.push(("system".to_owned(), s.clone()));
    }
    messages.push(("user".to_owned(), message));
    let tokens = e.chat_tokens(&messages, chat.chat_template.as_deref())?;
    let st = once(e, &q, d.request(tokens), false, &mut print)?;
    report(&st, opts.print_tokens);
    Ok(())
}

/// The hosted `console`.
pub fn console(opts: &GenOpts, chat: ChatOpts) -> Result<(), String> {
    let plan = exec_plan(&chat)?;
    let (e, q, d) = load(opts)?;
    let banner = [
        format!("model: {}", e.info),
        format!(
            "context: {} tokens; {} thread(s); /help lists the commands",
            opts.ctx,
            opts.threads()
        ),
    ];
    let exec = exec(plan)?;
    let (mut input, raw) = super::serve::console_input(false);
    let parts = Parts {
        engine: e,
        queue: &q,
        template: chat.chat_template,
        exec: exec.as_deref(),
    };
    console::run(
        &parts,
        d,
        chat.system,
        &banner,
        &mut *input,
        &mut std::io::stdout(),
    )?;
    drop(raw);
    Ok(())
}

/// `bench`: `reps` runs (after a warm-up) of a `pp`-token prompt and `tg`
/// generated tokens, each printed as a JSON line. Every run starts from an
/// empty cache, as llama-bench's do.
pub fn bench(
    model: &Path,
    pp: u32,
    tg: u32,
    reps: u32,
    threads: Option<i32>,
) -> Result<(), String> {
    let threads = threads.unwrap_or_else(default_threads);
    let e: &'static Engine = Box::leak(Box::new(Engine::load(model)?));
    eprintln!("model: {}; {threads} thread(s)", e.info);
    // A fixed prompt of exactly `pp` tokens: ordinary text, repeated.
    let text = "The quick brown fox jumps over the lazy dog while the sun sets slowly. ";
    let mut prompt = e.tokenize(text, true, false);
    let body = e.tokenize(text, false, false);
    while prompt.len() < pp as usize {
        prompt.extend_from_slice(&body);
    }
    prompt.truncate(pp as usize);
    let q = Queue::start(
        e,
        queue::Config {
            slots: 0,
            console: true,
            capacity: 0,
            context: pp.max(tg) + 1,
            threads,
        },
    )?;
    let request = |tokens: Vec<_>, max_tokens: u32| Request {
        tokens,
        max_tokens: MaxTokens::Exactly(max_tokens),
        sampling: Sampling::default(),
        stops: Vec::new(),
        grammar: None,
        ignore_eos: true,
    };
    let rate = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
    for run in 0..=reps {
        // ppN: the prompt's decode (one token generated after it, not
        // timed).
        let p = once(e, &q, request(prompt.clone(), 1), true, &mut |_| {})?;
        // tgN from an empty context, as llama-bench measures it: one
        // prompt token, then N generated; a generation after the N-token
        // prompt would attend to N more positions at every step.
        let t = once(e, &q, request(prompt[..1].to_vec(), tg), true, &mut |_| {})?;
        if t.generated != tg as usize {
            return Err(format!("generated {} tokens, not {tg}", t.generated));
        }
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
