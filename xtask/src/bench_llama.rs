//! `cargo xtask bench` sections 1 and 2, hosted: our engine against
//! llama.cpp's `llama-bench`, and our server against `llama-server`, both
//! built from the same llama.cpp (see [`crate::anchor`]), on the same
//! model with the same threads, alternating, as medians.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::bench::{free_port, median, paired_ratio};
use crate::progress;

/// Threads for both sides: every core.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Section 1: prompt processing and generation, our engine's path
/// (`llmos-runtime bench`) against `llama-bench`.
pub fn inference(quick: bool, runtime: &Path, anchor: &crate::anchor::Anchors) -> Result<Value> {
    progress::header("section 1: inference against llama-bench");
    let model = crate::model::default_model()?;
    let rounds = if quick { 3 } else { 5 };
    let sizes: &[(u32, u32)] = if quick {
        &[(64, 64)]
    } else {
        &[(64, 64), (512, 128)]
    };
    let t = threads().to_string();
    let mut rows = Vec::new();
    println!(
        "\n{:<10} {:>14} {:>14} {:>8}",
        "test (t/s)", "llmos", "llama-bench", "ratio"
    );
    for &(pp, tg) in sizes {
        let (mut ours_pp, mut ours_tg, mut theirs_pp, mut theirs_tg) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            // Ours: one warm-up run, then one measured.
            let out = output(
                Command::new(runtime)
                    .arg("bench")
                    .arg("--model")
                    .arg(&model)
                    .args(["--pp", &pp.to_string(), "--tg", &tg.to_string()])
                    .args(["--reps", "1", "--threads", &t]),
            )?;
            let run: Value = out
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["warmup"] == false)
                .context("llmos-runtime bench printed no measured run")?;
            ours_pp.push(run["pp_ts"].as_f64().context("no pp_ts")?);
            ours_tg.push(run["tg_ts"].as_f64().context("no tg_ts")?);
            // llama-bench: its own warm-up, then one repetition of each.
            let out = output(
                Command::new(&anchor.bench)
                    .arg("-m")
                    .arg(&model)
                    .args(["-p", &pp.to_string(), "-n", &tg.to_string()])
                    .args(["-r", "1", "-t", &t, "-o", "json"]),
            )?;
            let tests: Value = serde_json::from_str(&out).context("llama-bench's JSON")?;
            for test in tests.as_array().context("llama-bench printed no tests")? {
                let ts = test["avg_ts"].as_f64().context("no avg_ts")?;
                match (test["n_prompt"].as_u64(), test["n_gen"].as_u64()) {
                    (Some(p), Some(0)) if p == u64::from(pp) => theirs_pp.push(ts),
                    (Some(0), Some(g)) if g == u64::from(tg) => theirs_tg.push(ts),
                    _ => {}
                }
            }
        }
        if theirs_pp.len() != rounds || theirs_tg.len() != rounds {
            bail!("llama-bench did not report pp{pp} and tg{tg} every round");
        }
        for (name, ours, theirs) in [
            (format!("pp{pp}"), &ours_pp, &theirs_pp),
            (format!("tg{tg}"), &ours_tg, &theirs_tg),
        ] {
            let (o, a) = (median(ours), median(theirs));
            let ratio = paired_ratio(ours, theirs);
            println!("{name:<10} {o:>14.1} {a:>14.1} {ratio:>8.3}");
            rows.push(json!({
                "test": name,
                "llmos_ts": {"median": o, "samples": ours},
                "llama_bench_ts": {"median": a, "samples": theirs},
                "ratio": ratio,
                "ratio_of_medians": o / a,
            }));
        }
    }
    println!(
        "(tokens/s, medians of {rounds} alternating rounds; {t} threads; ratio = median of the \
         rounds' llmos / llama-bench, higher is better, goal >= 0.98)"
    );
    Ok(json!({
        "what": "prompt processing (ppN) and generation (tgN) tokens/s: llmos-runtime bench (the engine's own path: a fresh context, greedy sampling included) against llama-bench",
        "model": model.file_name().map(|n| n.to_string_lossy().into_owned()),
        "threads": threads(),
        "rounds": rounds,
        "anchor": anchor.source,
        "rows": rows,
    }))
}

/// Runs `cmd` to the end; its stdout, or an error with its stderr.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running {}", progress::render(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            progress::render(cmd),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The prompts of section 2, one per stream (the same for both servers).
const PROMPTS: [&str; 8] = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a compiler turns source code into machine code, step by step.",
    "Describe a walk through a busy market in the early morning.",
    "List the things a traveller should pack for a week in the mountains and why.",
    "Tell the history of the bicycle as if you were a very old bicycle.",
    "Explain to a child why the sky is blue and sunsets are red.",
    "Write a letter from a cat to the dog next door about the garden fence.",
    "Describe how bread is made, from the field of wheat to the bakery shelf.",
];

/// Context per slot in section 2.
const SLOT_CTX: u32 = 512;
/// Slots (`--parallel` for llama-server) in section 2.
const SLOTS: usize = 8;

/// A server under test.
struct Server {
    name: &'static str,
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn ours(runtime: &Path, model: &Path) -> Result<Self> {
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(runtime)
            .args(["serve", "--no-console", "--quiet", "--listen", &addr])
            .arg("--model")
            .arg(model)
            .args([
                "--slots",
                &SLOTS.to_string(),
                "--ctx",
                &SLOT_CTX.to_string(),
            ])
            .args(["--threads", &threads().to_string(), "--queue", "64"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", runtime.display()))?;
        Self::ready("llmos", child, addr)
    }

    fn llama_server(server: &Path, model: &Path) -> Result<Self> {
        let port = free_port()?;
        let child = Command::new(server)
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &(SLOT_CTX as usize * SLOTS).to_string()])
            .args(["--parallel", &SLOTS.to_string()])
            .args(["-t", &threads().to_string(), "-tb", &threads().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        Self::ready("llama-server", child, format!("127.0.0.1:{port}"))
    }

    /// Waits until `/health` answers 200.
    fn ready(name: &'static str, mut child: Child, addr: String) -> Result<Self> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited at start ({status})");
            }
            if let Ok(mut s) = TcpStream::connect(&addr) {
                let _ = write!(
                    s,
                    "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                );
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                if reply.starts_with("HTTP/1.1 200") {
                    return Ok(Self { name, child, addr });
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{name} was not ready within 120 s")
    }
}

/// What one streamed request saw.
struct Stream {
    /// Seconds from the request to the first text.
    ttft: f64,
    /// Seconds from the request to the end.
    total: f64,
    /// Text events received.
    events: usize,
}

/// One streaming completion of `max_tokens` tokens (end of turn ignored).
fn stream(addr: &str, prompt: &str, max_tokens: u32) -> Result<Stream> {
    let body = json!({
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": true,
        "stream": true,
    })
    .to_string();
    let start = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    if !line.starts_with("HTTP/1.1 200") {
        bail!("{}", line.trim());
    }
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        let l = line.to_ascii_lowercase();
        chunked |= l.starts_with("transfer-encoding:") && l.contains("chunked");
    }
    let mut body = Body {
        r,
        chunked,
        left: 0,
        done: false,
    };
    let mut ttft = None;
    let mut events = 0;
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(at) = pending.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = pending.drain(..=at).collect();
            let l = String::from_utf8_lossy(&l);
            let Some(data) = l.trim().strip_prefix("data:") else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            let text = v["choices"][0]["text"].as_str().unwrap_or("");
            if !text.is_empty() {
                events += 1;
                ttft.get_or_insert(start.elapsed().as_secs_f64());
            }
        }
    }
    let total = start.elapsed().as_secs_f64();
    Ok(Stream {
        ttft: ttft.context("the stream carried no text")?,
        total,
        events,
    })
}

/// An HTTP body, chunked or not.
struct Body<R> {
    r: R,
    chunked: bool,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.chunked {
            return self.r.read(buf);
        }
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut size = String::new();
            // The CRLF that ends the previous chunk, then the size line.
            while size.trim().is_empty() {
                size.clear();
                if self.r.read_line(&mut size)? == 0 {
                    self.done = true;
                    return Ok(0);
                }
            }
            let hex = size.trim().split(';').next().unwrap_or("0");
            self.left = usize::from_str_radix(hex, 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {hex:?}")))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let n = self.r.read(&mut buf[..n])?;
        self.left -= n;
        Ok(n)
    }
}

/// Figures of `c` concurrent streams, all started together.
struct Round {
    /// Tokens per second over all streams: tokens / (last end − start).
    aggregate: f64,
    /// Median time to first token, seconds.
    ttft: f64,
    /// Median tokens per second of one stream after its first token.
    per_stream: f64,
}

fn round(server: &Server, c: usize, max_tokens: u32) -> Result<Round> {
    let start = Instant::now();
    let results: Vec<Result<Stream>> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..c)
            .map(|i| {
                scope.spawn(move || stream(&server.addr, PROMPTS[i % PROMPTS.len()], max_tokens))
            })
            .collect();
        runs.into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a stream panicked")))
            })
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    let mut ttft = Vec::new();
    let mut rate = Vec::new();
    for r in results {
        let s = r.with_context(|| format!("{}: a stream failed", server.name))?;
        if s.events < 2 {
            bail!("{}: a stream carried {} text events", server.name, s.events);
        }
        ttft.push(s.ttft);
        rate.push(f64::from(max_tokens - 1) / (s.total - s.ttft).max(1e-9));
    }
    Ok(Round {
        aggregate: c as f64 * f64::from(max_tokens) / wall,
        ttft: median(&ttft),
        per_stream: median(&rate),
    })
}

/// Section 2: serving, our server against `llama-server`.
pub fn serving(quick: bool, runtime: &Path, anchor: &crate::anchor::Anchors) -> Result<Value> {
    progress::header("section 2: serving against llama-server");
    let model = crate::model::default_model()?;
    let rounds = if quick { 3 } else { 5 };
    let max_tokens: u32 = if quick { 64 } else { 128 };
    let ours = Server::ours(runtime, &model)?;
    let theirs = Server::llama_server(&anchor.server, &model)?;
    // Warm-up: one stream each.
    round(&ours, 1, 8)?;
    round(&theirs, 1, 8)?;
    println!(
        "\n{:<8} {:>22} {:>22} {:>22}",
        "streams", "aggregate t/s", "TTFT ms", "per-stream t/s"
    );
    println!(
        "{:<8} {:>22} {:>22} {:>22}",
        "", "llmos / llama / ratio", "llmos / llama / ratio", "llmos / llama / ratio"
    );
    let mut rows = Vec::new();
    for c in [1usize, 4, 8] {
        let (mut o, mut t) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            o.push(round(&ours, c, max_tokens)?);
            t.push(round(&theirs, c, max_tokens)?);
        }
        let col = |v: &[Round], f: fn(&Round) -> f64| v.iter().map(f).collect::<Vec<_>>();
        let m = |v: &[Round], f: fn(&Round) -> f64| median(&col(v, f));
        let r = |f: fn(&Round) -> f64| paired_ratio(&col(&o, f), &col(&t, f));
        let (oa, ta) = (m(&o, |r| r.aggregate), m(&t, |r| r.aggregate));
        let (ot, tt) = (m(&o, |r| r.ttft), m(&t, |r| r.ttft));
        let (os, ts) = (m(&o, |r| r.per_stream), m(&t, |r| r.per_stream));
        let (ra, rt, rs) = (r(|r| r.aggregate), r(|r| r.ttft), r(|r| r.per_stream));
        println!(
            "{c:<8} {:>22} {:>22} {:>22}",
            format!("{oa:.1} / {ta:.1} / {ra:.2}"),
            format!("{:.0} / {:.0} / {rt:.2}", ot * 1e3, tt * 1e3),
            format!("{os:.1} / {ts:.1} / {rs:.2}"),
        );
        let samples = |v: &[Round]| {
            v.iter()
                .map(|r| json!({"aggregate_ts": r.aggregate, "ttft_s": r.ttft, "per_stream_ts": r.per_stream}))
                .collect::<Vec<_>>()
        };
        rows.push(json!({
            "streams": c,
            "llmos": {"aggregate_ts": oa, "ttft_s": ot, "per_stream_ts": os, "samples": samples(&o)},
            "llama_server": {"aggregate_ts": ta, "ttft_s": tt, "per_stream_ts": ts, "samples": samples(&t)},
            "ratio_aggregate": ra,
            "ratio_ttft": rt,
            "ratio_per_stream": rs,
            "ratio_aggregate_of_medians": oa / ta,
            "ratio_ttft_of_medians": ot / tt,
        }));
    }
    println!(
        "(medians of {rounds} alternating rounds, ratios = median of the rounds' ratios; {max_tokens} tokens per stream over streaming \
         /v1/completions; {SLOTS} slots of {SLOT_CTX} tokens each, {} threads; goals: aggregate ratio >= 1, \
         TTFT ratio <= 1)",
        threads()
    );
    Ok(json!({
        "what": "streaming /v1/completions, fixed prompts, max_tokens fixed with end of turn ignored; aggregate tokens/s of N concurrent streams, time to first token, tokens/s of one stream",
        "model": model.file_name().map(|n| n.to_string_lossy().into_owned()),
        "slots": SLOTS,
        "slot_context": SLOT_CTX,
        "threads": threads(),
        "max_tokens": max_tokens,
        "rounds": rounds,
        "anchor": anchor.source,
        "rows": rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_ratios_follow_each_round() {
        // The machine slows down over the run; each round's pair agrees.
        let ours = [100.0, 80.0, 60.0];
        let theirs = [98.0, 82.0, 61.0];
        let r = paired_ratio(&ours, &theirs);
        assert!((r - 60.0 / 61.0).abs() < 1e-12, "{r}");
        assert!(paired_ratio(&[], &[]).is_nan());
        assert!((paired_ratio(&[1.0, 2.0], &[0.0, 1.0]) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn chunked_bodies_are_decoded_across_chunk_boundaries() {
        let raw = "5\r\ndata:\r\n7; ext=1\r\n {}\nend\r\n0\r\n\r\n";
        let mut body = Body {
            r: BufReader::new(raw.as_bytes()),
            chunked: true,
            left: 0,
            done: false,
        };
        let mut out = String::new();
        body.read_to_string(&mut out).unwrap();
        assert_eq!(out, "data: {}\nend");
        let mut plain = Body {
            r: BufReader::new("as is".as_bytes()),
            chunked: false,
            left: 0,
            done: false,
        };
        out.clear();
        plain.read_to_string(&mut out).unwrap();
        assert_eq!(out, "as is");
    }
}
