//! The chat console: a conversation on stdin/stdout (the serial line in
//! the unikernel, the terminal in hosted mode), with commands.
//!
//! Each turn is a job on the console's own slot of the scheduler
//! ([`crate::queue`]), the same path as the API's requests; the slot keeps
//! the conversation's KV cache, so a turn only evaluates the new message,
//! and API load never makes a turn wait. When the conversation no longer
//! fits the context, the oldest exchanges are dropped and the console
//! says so. Ctrl-C cancels the turn's job within a token.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::engine::{Engine, Finish, Stats};
use crate::exec::{Exec, Language, last_code_block};
use crate::job::{Class, Collect, Defaults, Job, Piece};
use crate::queue::Queue;
use crate::sanitize::{Clean, visible, visible_bytes};
use crate::terminal::LineSource;

/// What a line of input asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A message to the model.
    Message(String),
    /// `/help`.
    Help,
    /// `/reset`: forget the conversation.
    Reset,
    /// `/system [TEXT]`: show or set the system prompt.
    System(Option<String>),
    /// `/params [KEY=VALUE…]`: show or set sampling.
    Params(Vec<(String, String)>),
    /// `/stats`: speed of the last reply.
    Stats,
    /// `/model`: what is loaded.
    Model,
    /// `/quit`.
    Quit,
    /// `/run [LANGUAGE]`: run code in the sandbox.
    Run(Option<String>),
    /// `/apps`: the installed apps.
    Apps,
    /// `/app NAME [ARGS…]`: run an app.
    App(Vec<String>),
    /// An unknown command.
    Unknown(String),
    /// Nothing.
    Empty,
}

/// Parses one (possibly multi-line) input.
pub fn parse(line: &str) -> Input {
    let t = line.trim();
    if t.is_empty() {
        return Input::Empty;
    }
    let Some(cmd) = t.strip_prefix('/') else {
        return Input::Message(t.to_owned());
    };
    let (name, rest) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
    let rest = rest.trim();
    match name {
        "help" | "?" => Input::Help,
        "reset" => Input::Reset,
        "system" if rest.is_empty() => Input::System(None),
        "system" => Input::System(Some(rest.to_owned())),
        "params" => Input::Params(
            rest.split_whitespace()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (kv.to_owned(), String::new()),
                })
                .collect(),
        ),
        "stats" => Input::Stats,
        "model" => Input::Model,
        "quit" | "exit" => Input::Quit,
        "run" if rest.is_empty() => Input::Run(None),
        "run" => Input::Run(Some(rest.to_owned())),
        "apps" => Input::Apps,
        "app" => Input::App(rest.split_whitespace().map(str::to_owned).collect()),
        _ => Input::Unknown(name.to_owned()),
    }
}

const HELP: &str = "\
Type a message and press Enter; end a line with \\ to continue on the next.
  /reset           forget the conversation
  /system [TEXT]   show or set the system prompt
  /params [K=V…]   show or set sampling: temperature top_k top_p min_p
                   repeat_penalty frequency_penalty presence_penalty seed max_tokens
  /stats           speed of the last reply
  /model           the loaded model
  /run python|js   run code in the sandbox: type it, end with a line of one dot
  /run             run the last reply's code block (shown first; asks for yes)
  /apps            the installed apps
  /app NAME [ARGS] run an app; end with << to type its input (a line of one dot ends it)
  /quit            leave (in llmos: power off)
";

/// Applies `key=value` to `g`; the new settings are checked as a whole.
pub fn set_param(g: &mut Defaults, key: &str, value: &str) -> Result<(), String> {
    let mut next = g.clone();
    let f = || {
        value
            .parse::<f32>()
            .map_err(|_| format!("{key}: {value:?} is not a number"))
    };
    let i = || {
        value
            .parse::<i64>()
            .map_err(|_| format!("{key}: {value:?} is not a whole number"))
    };
    match key {
        "temperature" => next.sampling.temperature = f()?,
        "top_k" => next.sampling.top_k = i32::try_from(i()?).map_err(|e| e.to_string())?,
        "top_p" => next.sampling.top_p = f()?,
        "min_p" => next.sampling.min_p = f()?,
        "repeat_penalty" => next.sampling.repeat_penalty = f()?,
        "frequency_penalty" => next.sampling.frequency_penalty = f()?,
        "presence_penalty" => next.sampling.presence_penalty = f()?,
        "seed" => next.sampling.seed = u32::try_from(i()?).map_err(|e| format!("seed: {e}"))?,
        "max_tokens" => {
            next.max_tokens = u32::try_from(i()?)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or("max_tokens must be at least 1")?
        }
        _ => return Err(format!("unknown parameter {key:?} (see /help)")),
    }
    next.sampling.validate()?;
    *g = next;
    Ok(())
}

fn show_params(g: &Defaults) -> String {
    let s = &g.sampling;
    format!(
        "temperature={} top_k={} top_p={} min_p={} repeat_penalty={} frequency_penalty={} presence_penalty={} seed={} max_tokens={}",
        s.temperature,
        s.top_k,
        s.top_p,
        s.min_p,
        s.repeat_penalty,
        s.frequency_penalty,
        s.presence_penalty,
        s.seed,
        g.max_tokens
    )
}

/// One line about a reply's speed.
pub fn describe(st: &Stats) -> String {
    let rate = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
    let evaluated = st.prompt_tokens - st.reused_tokens;
    format!(
        "prompt: {} tokens ({} from the cache, {} evaluated in {:.1} ms, {:.1} tok/s); reply: {} tokens in {:.1} ms ({:.1} tok/s); finish: {}",
        st.prompt_tokens,
        st.reused_tokens,
        evaluated,
        st.prompt_ms,
        rate(evaluated, st.prompt_ms),
        st.generated,
        st.generate_ms,
        rate(st.generated, st.generate_ms),
        st.finish.as_str()
    )
}

/// Reads one input; a line ending in `\\` continues. `None` at the end.
fn read_input(input: &mut dyn LineSource, out: &mut dyn Write) -> Option<String> {
    let mut text = String::new();
    let mut prompt = "> ";
    loop {
        let Some(line) = input.read_line(prompt, out) else {
            return (!text.is_empty()).then_some(text);
        };
        match line.strip_suffix('\\') {
            Some(part) => {
                text.push_str(part);
                text.push('\n');
                prompt = "… ";
            }
            None => {
                text.push_str(&line);
                return Some(text);
            }
        }
    }
}

/// Prints a line and flushes it. Control characters in it are shown, not
/// sent (see [`crate::sanitize`]): the line may quote a reply, a program's
/// output or an app's manifest.
fn say(out: &mut dyn Write, s: &str) {
    let _ = writeln!(out, "{}", visible(s));
    let _ = out.flush();
}

/// `/run`: code typed after the command, or the last reply's code block
/// after an explicit yes; the result is printed.
fn run_code(
    exec: Option<&Exec>,
    lang: Option<&str>,
    last_reply: Option<&str>,
    input: &mut dyn LineSource,
    out: &mut dyn Write,
) {
    let Some(exec) = exec else {
        say(
            out,
            "the code interpreter is not available here (no --lang-dir)",
        );
        return;
    };
    let (language, code) = match lang {
        Some(name) => {
            let Some(l) = Language::parse(name) else {
                say(out, &format!("unknown language {name:?}: python or js"));
                return;
            };
            say(out, "(type the code; a line with a single . runs it)");
            let mut code = Vec::new();
            loop {
                match input.read_line("… ", out) {
                    Some(line) if line.trim() == "." => break,
                    Some(line) => code.push(line),
                    None => return,
                }
            }
            (l, code.join("\n"))
        }
        None => {
            let Some((tag, code)) = last_reply.and_then(last_code_block) else {
                say(
                    out,
                    "the last reply has no code block; use /run python or /run js to type code",
                );
                return;
            };
            let Some(l) = tag else {
                say(
                    out,
                    "the code block names no language; use /run python or /run js",
                );
                return;
            };
            say(out, &format!("--- {} ---\n{code}\n---", l.name()));
            let answer = input.read_line(&format!("run this {} code? [y/N] ", l.name()), out);
            if !matches!(
                answer.as_deref().map(str::trim),
                Some("y" | "yes" | "Y" | "YES")
            ) {
                say(out, "(not run)");
                return;
            }
            (l, code)
        }
    };
    print_outcome(
        exec.run(
            language,
            &code,
            b"",
            &Default::default(),
            Default::default(),
        ),
        out,
    );
}

/// `/apps`: the installed apps, one per line.
fn list_apps(exec: Option<&Exec>, out: &mut dyn Write) {
    let Some(apps) = exec.and_then(Exec::apps) else {
        let _ = writeln!(
            out,
            "no apps here (the runtime was started without --apps-dir)"
        );
        return;
    };
    for a in apps.list() {
        let m = &a.manifest;
        say(
            out,
            &format!(
                "  {:<10} {:<8} {}{} [{}]",
                m.name,
                m.version,
                m.description,
                if m.capabilities.data {
                    " [keeps data]"
                } else {
                    ""
                },
                a.signature
            ),
        );
    }
    if apps.list().next().is_none() {
        let _ = writeln!(out, "no apps are installed");
    }
    for p in &apps.problems {
        say(out, &format!("  left out: {p}"));
    }
}

/// `/app NAME [ARGS…] [<<]`: runs an app, with typed input after `<<`.
fn run_app(exec: Option<&Exec>, words: &[String], input: &mut dyn LineSource, out: &mut dyn Write) {
    let Some((name, args)) = words.split_first() else {
        list_apps(exec, out);
        let _ = writeln!(out, "usage: /app NAME [ARGS…] [<<]");
        return;
    };
    let Some(exec) = exec else {
        let _ = writeln!(
            out,
            "no apps here (the runtime was started without --apps-dir)"
        );
        return;
    };
    let (args, stdin) = match args.split_last() {
        Some((last, rest)) if last == "<<" => {
            let _ = writeln!(out, "(type the input; a line with a single . ends it)");
            let mut lines = Vec::new();
            loop {
                match input.read_line("… ", out) {
                    Some(line) if line.trim() == "." => break,
                    Some(line) => lines.push(line + "\n"),
                    None => return,
                }
            }
            (rest, lines.concat())
        }
        _ => (args, String::new()),
    };
    print_outcome(
        exec.run_app(
            name,
            args,
            stdin.as_bytes(),
            &Default::default(),
            &Default::default(),
        )
        .map_err(|e| e.to_string()),
        out,
    );
}

/// A run's output and how it ended.
fn print_outcome(r: Result<llmos_sandbox::Outcome, String>, out: &mut dyn Write) {
    match r {
        Err(e) => say(out, &format!("error: {e}")),
        Ok(o) => {
            let _ = out.write_all(visible_bytes(&o.stdout).as_bytes());
            let _ = out.write_all(visible_bytes(&o.stderr).as_bytes());
            if !o.stdout.ends_with(b"\n") && !o.stdout.is_empty() {
                let _ = writeln!(out);
            }
            let how = match (&o.limit, &o.trap, &o.error, o.exit_code) {
                (Some(l), _, _, _) => format!("stopped: {} limit", l.as_str()),
                (_, Some(t), _, _) => format!("trap: {}", t.kind),
                (_, _, Some(e), _) => format!("error: {e}"),
                (_, _, _, Some(c)) => format!("exit {c}"),
                _ => "ended".into(),
            };
            say(out, &format!("({how}; {} ms)", o.duration.as_millis()));
        }
    }
}

/// How the console ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `/quit`.
    Quit,
    /// The input ended.
    Eof,
}

/// What the console runs on: the engine (templates, tokens), the
/// scheduler with a console slot, and the code interpreter and apps.
pub struct Parts<'a> {
    /// The model.
    pub engine: &'static Engine,
    /// The scheduler; it must have a console slot.
    pub queue: &'a Queue,
    /// A chat template instead of the model's.
    pub template: Option<String>,
    /// The code interpreter and apps, if any.
    pub exec: Option<&'a Exec>,
}

/// The console until `/quit` or the end of input. `banner` is printed
/// before the `llmos: ready` line.
pub fn run(
    parts: &Parts<'_>,
    mut g: Defaults,
    mut system: Option<String>,
    banner: &[String],
    input: &mut dyn LineSource,
    out: &mut dyn Write,
) -> Result<Ended, String> {
    let (engine, exec) = (parts.engine, parts.exec);
    // Check the template once, before the first message.
    engine.format_chat(&[("user".into(), "hi".into())], parts.template.as_deref())?;
    let w = say;
    for line in banner {
        w(out, line);
    }
    w(out, "llmos: ready");
    let mut ended = Ended::Eof;
    let mut history: Vec<(String, String)> = Vec::new();
    let mut last: Option<Stats> = None;
    while let Some(text) = read_input(input, out) {
        match parse(&text) {
            Input::Empty => {}
            Input::Help => {
                let _ = write!(out, "{HELP}");
            }
            Input::Quit => {
                ended = Ended::Quit;
                break;
            }
            Input::Reset => {
                history.clear();
                last = None;
                w(out, "(conversation cleared)");
            }
            Input::System(None) => match &system {
                Some(s) => w(out, &format!("system prompt: {s}")),
                None => w(out, "(no system prompt)"),
            },
            Input::System(Some(s)) => {
                system = Some(s);
                w(out, "(system prompt set)");
            }
            Input::Params(kv) if kv.is_empty() => w(out, &show_params(&g)),
            Input::Params(kv) => {
                for (k, v) in kv {
                    if let Err(e) = set_param(&mut g, &k, &v) {
                        w(out, &format!("params: {e}"));
                    }
                }
                w(out, &show_params(&g));
            }
            Input::Stats => match &last {
                Some(st) => w(out, &describe(st)),
                None => w(out, "(no reply yet)"),
            },
            Input::Model => w(out, &format!("model: {}", engine.info)),
            Input::Unknown(c) => w(out, &format!("unknown command /{c}; /help lists them")),
            Input::Run(lang) => {
                let last = history
                    .iter()
                    .rev()
                    .find(|(r, _)| r == "assistant")
                    .map(|(_, t)| t.as_str());
                run_code(exec, lang.as_deref(), last, input, out);
            }
            Input::Apps => list_apps(exec, out),
            Input::App(words) => run_app(exec, &words, input, out),
            Input::Message(m) => {
                history.push(("user".into(), m));
                match turn(parts, &g, system.as_deref(), &mut history, input, out) {
                    Ok(st) => last = Some(st),
                    Err(e) => {
                        history.pop();
                        w(out, &format!("error: {e}"));
                    }
                }
            }
        }
    }
    if ended == Ended::Quit {
        w(out, "bye");
    }
    Ok(ended)
}

/// One turn: the reply to the conversation in `history` (whose last
/// entry is the new message), streamed to `out`; the reply joins
/// `history`.
fn turn(
    parts: &Parts<'_>,
    g: &Defaults,
    system: Option<&str>,
    history: &mut Vec<(String, String)>,
    input: &mut dyn LineSource,
    out: &mut dyn Write,
) -> Result<Stats, String> {
    let context = parts.queue.context;
    let messages = |h: &[(String, String)]| {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(s) = system {
            v.push(("system".into(), s.to_owned()));
        }
        v.extend_from_slice(h);
        v
    };
    // Make room: drop the oldest exchanges, visibly.
    let mut dropped = 0;
    let tokens = loop {
        let tokens = parts
            .engine
            .chat_tokens(&messages(history), parts.template.as_deref())?;
        if tokens.len() as u64 + u64::from(g.max_tokens) <= u64::from(context) {
            break tokens;
        }
        if history.len() < 3 {
            return Err(format!(
                "this message plus max_tokens ({}) does not fit the context of {context} tokens; shorten it or lower max_tokens with /params",
                g.max_tokens
            ));
        }
        history.drain(..2);
        dropped += 1;
    };
    if dropped > 0 {
        say(
            out,
            &format!(
                "(dropped the {dropped} oldest exchange(s) to fit the context of {context} tokens)"
            ),
        );
    }
    let (sink, rx) = Collect::new();
    let job = Job::new(
        parts.engine,
        g.request(tokens),
        context,
        Box::new(sink),
        Class::Console,
    )?;
    let cancel = job.cancel.clone();
    parts.queue.submit(job)?;
    let stop = input.interrupt();
    input.generating(true);
    let mut reply = String::new();
    let result = {
        let mut shown = Clean::new(&mut *out);
        loop {
            if stop.load(Ordering::Relaxed) {
                cancel.store(true, Ordering::Relaxed);
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Piece::Text(t)) => {
                    reply.push_str(&t);
                    let _ = shown.write_all(t.as_bytes());
                    let _ = shown.flush();
                }
                Ok(Piece::Done(r)) => break r.map_err(String::from),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    break Err("the generation ended without a result".to_owned());
                }
            }
        }
    };
    input.generating(false);
    say(out, "");
    let st = result?;
    if st.finish == Finish::Cancelled {
        // The partial reply stays in the conversation.
        say(out, "(stopped)");
    }
    history.push(("assistant".into(), reply));
    Ok(st)
}

/// The console when no model could be loaded: it says why and takes
/// `/quit` (and `/help`, `/model`).
pub fn degraded(why: &str, input: &mut dyn LineSource, out: &mut dyn Write) -> Ended {
    loop {
        let Some(text) = read_input(input, out) else {
            return Ended::Eof;
        };
        let msg = match parse(&text) {
            Input::Quit => return Ended::Quit,
            Input::Empty => continue,
            Input::Help => "only /model and /quit work without a model".to_owned(),
            _ => format!("no model is loaded: {why}"),
        };
        let _ = writeln!(out, "{msg}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Sampling;

    #[test]
    fn inputs_parse() {
        assert_eq!(
            parse("  hello there "),
            Input::Message("hello there".into())
        );
        assert_eq!(parse(""), Input::Empty);
        assert_eq!(parse("/reset"), Input::Reset);
        assert_eq!(parse("/system"), Input::System(None));
        assert_eq!(
            parse("/system be brief"),
            Input::System(Some("be brief".into()))
        );
        assert_eq!(
            parse("/params temperature=0.5 seed=3"),
            Input::Params(vec![
                ("temperature".into(), "0.5".into()),
                ("seed".into(), "3".into())
            ])
        );
        assert_eq!(parse("/stats"), Input::Stats);
        assert_eq!(parse("/apps"), Input::Apps);
        assert_eq!(
            parse("/app text  wc <<"),
            Input::App(vec!["text".into(), "wc".into(), "<<".into()])
        );
        assert_eq!(parse("/quit"), Input::Quit);
        assert_eq!(parse("/frobnicate x"), Input::Unknown("frobnicate".into()));
    }

    #[test]
    fn params_are_checked_and_bad_ones_change_nothing() {
        let mut g = Defaults {
            max_tokens: 10,
            sampling: Sampling::default(),
            stops: Vec::new(),
            grammar: None,
            ignore_eos: false,
        };
        set_param(&mut g, "temperature", "0.7").unwrap();
        set_param(&mut g, "max_tokens", "20").unwrap();
        assert_eq!((g.sampling.temperature, g.max_tokens), (0.7, 20));
        let before = g.clone();
        assert!(set_param(&mut g, "temperature", "9").is_err());
        assert!(set_param(&mut g, "top_k", "x").is_err());
        assert!(set_param(&mut g, "max_tokens", "0").is_err());
        assert!(set_param(&mut g, "colour", "1").is_err());
        assert_eq!(g.sampling, before.sampling);
        assert_eq!(g.max_tokens, before.max_tokens);
    }

    /// Whether `b` holds a byte or character a terminal acts on (other than
    /// newline and tab).
    fn obeyed(b: &[u8]) -> bool {
        String::from_utf8_lossy(b)
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}')
    }

    #[test]
    fn code_shown_for_approval_cannot_hide_lines() {
        let exec = Exec::new(None, None, llmos_sandbox::Caps::default()).unwrap();
        // A reply whose code block erases the line before it and returns
        // the cursor, so the person sees only the harmless line.
        let reply = "Here:\n```python\nimport os; os.remove('data')\x1b[1A\x1b[2K\rx = 1\nprint('hi')\u{202e}\n```\n";
        let mut input = crate::terminal::Lines::new(&b"n\n"[..]);
        let mut out = Vec::new();
        run_code(Some(&exec), None, Some(reply), &mut input, &mut out);
        assert!(!obeyed(&out), "{:?}", String::from_utf8_lossy(&out));
        let shown = String::from_utf8_lossy(&out);
        assert!(
            shown.contains("os.remove('data')^[[1A^[[2K^Mx = 1"),
            "{shown}"
        );
        assert!(shown.contains("print('hi')<U+202E>"), "{shown}");
        assert!(shown.contains("(not run)"), "{shown}");
    }

    #[test]
    fn program_output_and_app_text_are_shown_not_obeyed() {
        let o = llmos_sandbox::Outcome {
            stdout: b"ok\x1b]0;owned\x07\x1b[2J\rgone\xc2\x9b".to_vec(),
            stderr: b"\x1b[8mhidden".to_vec(),
            exit_code: Some(0),
            ..Default::default()
        };
        let mut out = Vec::new();
        print_outcome(Ok(o), &mut out);
        assert!(!obeyed(&out), "{:?}", String::from_utf8_lossy(&out));
        assert!(String::from_utf8_lossy(&out).contains("ok^[]0;owned^G^[[2J^Mgone<U+009B>"));
        let mut out = Vec::new();
        print_outcome(Err("app \x1b[31mred".into()), &mut out);
        assert!(!obeyed(&out), "{:?}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn help_shows_one_backslash_and_no_stray_line() {
        let first = HELP.lines().next().unwrap();
        assert!(first.starts_with("Type a message"), "{first:?}");
        assert!(HELP.contains("end a line with \\ to continue"), "{HELP}");
        assert!(!HELP.contains("\\\\"), "{HELP}");
    }

    #[test]
    fn multi_line_input_continues_after_a_backslash() {
        let mut input = crate::terminal::Lines::new(&b"first \\\nsecond\nthird\n"[..]);
        let mut out = Vec::new();
        assert_eq!(
            read_input(&mut input, &mut out).as_deref(),
            Some("first \nsecond")
        );
        assert_eq!(read_input(&mut input, &mut out).as_deref(), Some("third"));
        assert_eq!(read_input(&mut input, &mut out), None);
    }
}
