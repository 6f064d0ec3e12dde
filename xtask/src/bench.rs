//! `cargo xtask bench`: our figures against their anchors, measured side
//! by side in one run, repeated, as medians and ratios. Everything goes to
//! `target/bench/results.json` with the machine's facts. The bench
//! reports; it never passes or fails on a number.
//!
//! Sections: 1 inference against llama-bench and 2 serving against
//! llama-server (both hosted, in [`crate::bench_llama`], anchors from
//! [`crate::anchor`]), 3 the unikernel against a Linux VM (boot time,
//! generation speed, smallest memory, image size), 4 the code interpreter.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{image, paths, progress};

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Fewer repeats and smaller workloads (under 10 minutes here).
    #[arg(long)]
    quick: bool,
    /// The QEMU accelerator for the unikernel's figures.
    #[arg(long, value_enum, default_value = "tcg")]
    accel: Accel,
    /// Only these sections (1-4; repeatable). Default: all.
    #[arg(long = "section", value_name = "N", value_parser = clap::value_parser!(u8).range(1..=4))]
    sections: Vec<u8>,
}

/// An accelerator the bench can ask for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    fn qemu(self) -> llmos_qemu::Accel {
        match self {
            Self::Tcg => llmos_qemu::Accel::Tcg,
            Self::Kvm => llmos_qemu::Accel::Kvm,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Tcg => "tcg",
            Self::Kvm => "kvm",
        }
    }
}

/// `cargo xtask bench`.
pub fn bench(a: &BenchArgs) -> Result<()> {
    let started = Instant::now();
    let facts = machine_facts(a.accel)?;
    println!("machine: {}", facts);
    let mut sections = serde_json::Map::new();
    let mut anchored = None;
    for n in 1..=4u8 {
        if !a.sections.is_empty() && !a.sections.contains(&n) {
            continue;
        }
        let (key, value) = match n {
            1 | 2 => {
                // Built (or found built) once for both sections.
                if anchored.is_none() {
                    let cpu = crate::runtime::DEFAULT_CPU;
                    let runtime = crate::runtime::build(cpu)?;
                    let anchors = crate::anchor::build(cpu, &crate::runtime::target_dir(cpu))?;
                    anchored = Some((runtime, anchors));
                }
                let (runtime, anchors) = anchored.as_ref().context("no anchors")?;
                if n == 1 {
                    let v = crate::bench_llama::inference(a.quick, runtime, anchors)?;
                    ("inference", v)
                } else {
                    let v = crate::bench_llama::serving(a.quick, runtime, anchors)?;
                    ("serving", v)
                }
            }
            3 => ("unikernel_vs_linux", unikernel_vs_linux(a)?),
            _ => ("code_interpreter", code_interpreter(a)?),
        };
        sections.insert(key.to_owned(), value);
    }
    let out = paths::target().join("bench");
    std::fs::create_dir_all(&out)?;
    let file = out.join("results.json");
    let all = json!({
        "machine": facts,
        "mode": if a.quick { "quick" } else { "full" },
        "seconds": started.elapsed().as_secs_f64(),
        "sections": sections,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&all)? + "\n")?;
    println!(
        "\nwrote {} ({:.0} s)",
        file.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// CPU model, cores, QEMU version, accelerator, commit and date.
fn machine_facts(accel: Accel) -> Result<Value> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let qemu = Command::new(llmos_qemu::machine::qemu_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "not found".to_owned());
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(paths::root())
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    Ok(json!({
        "cpu": cpu,
        "cores": cores,
        "qemu": qemu,
        "accel": accel.name(),
        "commit": format!("{}{}", git(&["rev-parse", "--short", "HEAD"]), if dirty { "-dirty" } else { "" }),
        "date": git(&["log", "-1", "--format=%cI"]),
    }))
}

/// A free port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The median of the per-round ratios `a[i] / b[i]` of two series measured
/// in alternating rounds: the machine's speed drifts over a run (other
/// tenants), and each round's pair saw about the same machine, so this is
/// steadier than the ratio of the two medians.
pub fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    let r: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, y)| **y > 0.0)
        .map(|(x, y)| x / y)
        .collect();
    if r.is_empty() { f64::NAN } else { median(&r) }
}

/// The median of `v` (which must not be empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// One snippet the code interpreter runs.
struct Snippet {
    name: &'static str,
    language: &'static str,
    code: &'static str,
    /// What it prints.
    expect: &'static str,
}

const SNIPPETS: [Snippet; 4] = [
    Snippet {
        name: "python print(1)",
        language: "python",
        code: "print(1)",
        expect: "1\n",
    },
    Snippet {
        name: "python compute",
        language: "python",
        code: "print(sum(i * i for i in range(100000)))",
        expect: "333328333350000\n",
    },
    Snippet {
        name: "javascript print",
        language: "javascript",
        code: "console.log(1)",
        expect: "1\n",
    },
    Snippet {
        name: "javascript compute",
        language: "javascript",
        code: "let s = 0; for (let i = 0; i < 1000000; i++) s += i % 7; console.log(s)",
        expect: "2999997\n",
    },
];

/// Section 4: request-to-output time of `/v1/exec` hosted and in llmos,
/// and the same modules run by wasmtime (a JIT, from its Python package)
/// for reference. Alternating per repeat; the first request of each kind
/// (which compiles the module) is a warm-up, reported on its own.
fn code_interpreter(a: &BenchArgs) -> Result<Value> {
    progress::header("section 4: the code interpreter");
    let repeats = if a.quick { 3 } else { 7 };
    let runtime = crate::runtime::build(crate::runtime::DEFAULT_CPU)?;
    let tiny = crate::model::tiny_model()?;
    let (python, quickjs) = crate::lang::runtimes()?;
    let lang_dir = python.parent().context("no lang dir")?.to_owned();

    // The unikernel: the tiny model and both interpreters.
    let vm = Guest::boot(a, &runtime, &tiny)?;
    let hosted = Hosted::start(&runtime, &tiny, &lang_dir)?;
    let mut wasmtime = Wasmtime::start()?;
    let module = |lang: &str| if lang == "python" { &python } else { &quickjs };
    let argv = |s: &Snippet| -> Vec<String> {
        if s.language == "python" {
            vec!["python".into(), "-c".into(), s.code.into()]
        } else {
            vec!["qjs".into(), "--std".into(), "-e".into(), s.code.into()]
        }
    };

    let mut rows = Vec::new();
    println!(
        "\n{:<20} {:>12} {:>12} {:>8} {:>14} {:>10}",
        "snippet (ms)", "llmos hosted", "wasmtime", "ratio", "llmos in QEMU", "vs hosted"
    );
    for s in &SNIPPETS {
        let body =
            json!({"language": s.language, "code": s.code, "limits": {"timeout_ms": 600000}})
                .to_string();
        // Warm-up: the first request compiles the module.
        let first_hosted = hosted.exec(&body, s.expect)?;
        let first_wasmtime = wasmtime.run(module(s.language), &argv(s), s.expect)?;
        let first_vm = vm.exec(&body, s.expect)?;
        let (mut h, mut w, mut g) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            h.push(hosted.exec(&body, s.expect)?);
            w.push(wasmtime.run(module(s.language), &argv(s), s.expect)?);
            g.push(vm.exec(&body, s.expect)?);
        }
        let (mh, mw, mg) = (median(&h), median(&w), median(&g));
        println!(
            "{:<20} {:>12.1} {:>12.1} {:>8.2} {:>14.1} {:>10.2}",
            s.name,
            mh,
            mw,
            mh / mw,
            mg,
            mg / mh
        );
        rows.push(json!({
            "snippet": s.name,
            "language": s.language,
            "code": s.code,
            "hosted_ms": {"median": mh, "samples": h, "first": first_hosted},
            "wasmtime_ms": {"median": mw, "samples": w, "first": first_wasmtime},
            "unikernel_ms": {"median": mg, "samples": g, "first": first_vm},
            "ratio_hosted_to_wasmtime": mh / mw,
            "ratio_unikernel_to_hosted": mg / mh,
        }));
    }
    println!(
        "(medians of {repeats}; ratio = llmos hosted / wasmtime, lower is faster; the first \
         request of each, which compiles the module, is in results.json)"
    );
    Ok(json!({
        "what": "request-to-output ms of POST /v1/exec (hosted and in llmos) against wasmtime-py running the same module",
        "repeats": repeats,
        "guest": {"accel": a.accel.name(), "smp": GUEST_SMP, "memory_mib": GUEST_MIB},
        "rows": rows,
    }))
}

/// One HTTP/1.1 POST with `Connection: close`; the time until the whole
/// reply is read, in ms, and the body.
fn post(addr: &str, path: &str, key: Option<&str>, body: &str) -> Result<(f64, String)> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(900)))?;
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{path}: {}", head.lines().next().unwrap_or("no reply"));
    }
    Ok((ms, body.to_owned()))
}

/// Checks an exec reply's stdout.
fn check(body: &str, expect: &str) -> Result<()> {
    let v: Value = serde_json::from_str(body).context("the exec reply is not JSON")?;
    if v["stdout"] != expect {
        bail!("expected stdout {expect:?}, got {v}");
    }
    Ok(())
}

/// The hosted runtime.
struct Hosted {
    child: Child,
    addr: String,
}

impl Hosted {
    fn start(runtime: &Path, model: &Path, lang_dir: &Path) -> Result<Self> {
        let mut child = Command::new(runtime)
            .args([
                "serve",
                "--no-console",
                "--quiet",
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--model")
            .arg(model)
            .arg("--lang-dir")
            .arg(lang_dir)
            .args(["--exec-timeout-ms", "600000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", runtime.display()))?;
        let out = child.stdout.take().context("no stdout")?;
        let mut addr = None;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = rest.split([';', ')']).next().map(str::to_owned);
            }
            if line.starts_with("llmos: ") {
                break;
            }
        }
        let addr = addr.context("the hosted runtime printed no address")?;
        Ok(Self { child, addr })
    }

    fn exec(&self, body: &str, expect: &str) -> Result<f64> {
        let (ms, reply) = post(&self.addr, "/v1/exec", None, body)?;
        check(&reply, expect)?;
        Ok(ms)
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const GUEST_SMP: u32 = 2;
const GUEST_MIB: u64 = 1024;

/// llmos in QEMU, serving the API on a forwarded port.
struct Guest {
    machine: llmos_qemu::Machine,
    addr: String,
    key: String,
}

impl Guest {
    fn boot(a: &BenchArgs, runtime: &Path, model: &Path) -> Result<Self> {
        let dir = paths::target().join("bench");
        std::fs::create_dir_all(&dir)?;
        let kernel = crate::build::build_kernel(crate::build::Variant::Normal)?;
        let content = image::ContentArgs {
            model: Some(model.to_owned()),
            ..image::ContentArgs::default()
        };
        let (init, extra) = content.resolve()?;
        let mut init = init.context("no first process")?;
        // As images carry it: without debug sections.
        init.source = image::strip_debug(runtime)?;
        init.args
            .extend(["--exec-timeout-ms".to_owned(), "600000".to_owned()]);
        let initrd = dir.join("initrd.cpio");
        image::write_initrd_with(
            &bootparams::BootParams::default(),
            Some(&init),
            &extra,
            &initrd,
        )?;
        progress::header("booting llmos for the bench");
        let (guest, _) = Self::start(
            a,
            llmos_qemu::Config::direct(&kernel, &initrd),
            GUEST_MIB,
            &dir.join("serial.log"),
            Duration::from_secs(900),
        )?;
        Ok(guest)
    }

    /// Starts `cfg` with the bench's machine settings, `mib` MiB of memory
    /// and the API port forwarded, and waits (at most `timeout`) for the
    /// runtime to be ready; returns the guest and the seconds from QEMU's
    /// start to `llmos: ready`.
    fn start(
        a: &BenchArgs,
        mut cfg: llmos_qemu::Config,
        mib: u64,
        log: &Path,
        timeout: Duration,
    ) -> Result<(Self, f64)> {
        let port = free_port()?;
        cfg.accel = a.accel.qemu();
        cfg.smp = GUEST_SMP;
        cfg.memory_mib = mib;
        cfg.network = Some(vec![llmos_qemu::PortForward {
            host: port,
            guest: image::API_PORT,
        }]);
        let start = Instant::now();
        let mut machine = llmos_qemu::Machine::spawn(&cfg, Some(log))?;
        let ready = regex::Regex::new("llmos: (ready|degraded)")?;
        machine
            .wait_for(&ready, timeout)
            .map_err(|e| anyhow::anyhow!("{} (see {})", e.reason, log.display()))?;
        let secs = start.elapsed().as_secs_f64();
        let key = regex::Regex::new(r"API key \(generated at boot, shown only here\): (\S+)")?
            .captures(&machine.serial())
            .map(|c| c[1].to_owned())
            .context("no API key on the guest's console")?;
        let guest = Self {
            machine,
            addr: format!("127.0.0.1:{port}"),
            key,
        };
        Ok((guest, secs))
    }

    fn post(&self, path: &str, body: &str) -> Result<(f64, String)> {
        post(&self.addr, path, Some(&self.key), body)
    }

    fn exec(&self, body: &str, expect: &str) -> Result<f64> {
        let (ms, reply) = self.post("/v1/exec", body)?;
        check(&reply, expect)?;
        Ok(ms)
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.machine.kill();
    }
}

/// wasmtime-py running modules on request (`scripts/bench/wasmtime-run.py
/// --serve`): each module compiled once, then instantiated per run.
struct Wasmtime {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Wasmtime {
    fn start() -> Result<Self> {
        let script = paths::root().join("scripts/bench/wasmtime-run.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", script.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn run(&mut self, module: &PathBuf, argv: &[String], expect: &str) -> Result<f64> {
        let req = json!({"module": module, "argv": argv});
        writeln!(self.stdin, "{req}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let v: Value = serde_json::from_str(&line).with_context(|| {
            format!("wasmtime-run.py: {line:?} (is the wasmtime package installed? bash scripts/setup.sh)")
        })?;
        if let Some(e) = v["error"].as_str() {
            bail!("wasmtime: {e}");
        }
        if v["stdout"] != expect {
            bail!("wasmtime: expected {expect:?}, got {v}");
        }
        // The first run of a module includes its compilation.
        Ok(v["run_ms"].as_f64().unwrap_or(0.0) + v["compile_ms"].as_f64().unwrap_or(0.0))
    }
}

impl Drop for Wasmtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The runtime's command line in both guests: the same binary, model and
/// options.
const GUEST_ARGS: [&str; 9] = [
    "serve",
    "--model",
    "/models/llmos-tiny.gguf",
    "--listen",
    "0.0.0.0:8080",
    "--ctx",
    "256",
    "--no-console",
    "--quiet",
];

/// Tokens each generation-speed request asks for.
const GEN_TOKENS: u32 = 32;

/// Section 3: llmos against a Linux VM (Debian's cloud kernel, an
/// initramfs with busybox and the virtio modules) running the same
/// runtime binary with the same model, under the same QEMU settings.
fn unikernel_vs_linux(a: &BenchArgs) -> Result<Value> {
    progress::header("section 3: the unikernel against a Linux VM");
    let repeats = if a.quick { 3 } else { 5 };
    let runtime = crate::runtime::build(crate::runtime::DEFAULT_CPU)?;
    let tiny = crate::model::tiny_model()?;
    let dir = paths::target().join("bench");
    std::fs::create_dir_all(&dir)?;
    // Both guests get the runtime as images carry it: without debug
    // sections.
    let stripped = image::strip_debug(&runtime)?;
    let linux = LinuxGuest::prepare(&dir.join("linux"), &stripped, &tiny)?;

    // llmos: the same runtime, arguments and model, nothing else.
    let kernel = crate::build::build_kernel(crate::build::Variant::Normal)?;
    let init = image::InitProgram {
        source: stripped,
        args: GUEST_ARGS.iter().map(|s| (*s).to_owned()).collect(),
    };
    let params = bootparams::BootParams::default();
    let model_entry = (tiny.clone(), "/models/llmos-tiny.gguf".to_owned());
    let initrd = dir.join("vs-linux.cpio");
    image::write_initrd_with(&params, Some(&init), &[model_entry], &initrd)?;
    let initrd_bare = dir.join("vs-linux-no-model.cpio");
    image::write_initrd_with(&params, Some(&init), &[], &initrd_bare)?;
    // Both kernels are loaded by QEMU itself (-kernel/-initrd): llmos through
    // its PVH entry, Linux through its bzImage boot protocol.
    let config = |linux_turn: bool| {
        let mut cfg = llmos_qemu::Config::direct(&kernel, &initrd);
        if linux_turn {
            cfg.direct_kernel = Some(llmos_qemu::DirectKernel {
                kernel: linux.kernel.clone(),
                initrd: linux.initramfs.clone(),
                append: "console=ttyS0 panic=-1 quiet".into(),
            });
            cfg.debug_exit = false;
        }
        cfg
    };
    let mut boot = (Vec::new(), Vec::new());
    let mut speed = (Vec::new(), Vec::new());
    let body = json!({"prompt": "Once upon a time", "max_tokens": GEN_TOKENS,
                      "temperature": 0, "ignore_eos": true})
    .to_string();
    for r in 0..repeats {
        for linux_turn in [false, true] {
            let cfg = config(linux_turn);
            let who = if linux_turn { "linux" } else { "llmos" };
            let log = dir.join(format!("vs-{who}-{r}.log"));
            let (guest, secs) = Guest::start(a, cfg, GUEST_MIB, &log, Duration::from_secs(900))
                .with_context(|| format!("booting {who}"))?;
            let (ms, reply) = guest.post("/v1/completions", &body)?;
            drop(guest);
            let v: Value = serde_json::from_str(&reply)?;
            let tokens = v["usage"]["completion_tokens"].as_f64().unwrap_or(0.0);
            let tps = tokens / (ms / 1e3);
            println!(
                "    {who} boot {}: ready in {secs:.1} s, {tps:.2} tok/s",
                r + 1
            );
            if linux_turn {
                boot.1.push(secs);
                speed.1.push(tps);
            } else {
                boot.0.push(secs);
                speed.0.push(tps);
            }
        }
    }
    // (c): bisection of -m between 0 and GUEST_MIB, which served above
    // (32 MiB is QEMU's floor here); "serves" means ready within 4 minutes
    // and one completion answered. 8 MiB steps in both modes: with both
    // kernels loaded directly a boot takes seconds.
    let step = 8;
    let mut smallest = [0u64; 2];
    for (i, linux_turn) in [false, true].into_iter().enumerate() {
        let who = if linux_turn { "linux" } else { "llmos" };
        let (mut bad, mut good) = (0u64, GUEST_MIB);
        while good - bad > step {
            let mid = (bad + good) / 2 / step * step;
            let mid = mid.max(32);
            if mid >= good {
                break;
            }
            let log = dir.join(format!("vs-{who}-{mid}M.log"));
            let served = Guest::start(a, config(linux_turn), mid, &log, Duration::from_secs(240))
                .and_then(|(guest, _)| {
                    let short =
                        json!({"prompt": "Hi", "max_tokens": 2, "temperature": 0}).to_string();
                    guest.post("/v1/completions", &short)
                })
                .is_ok();
            println!(
                "    {who} with -m {mid}M: {}",
                if served { "serves" } else { "does not" }
            );
            if served {
                good = mid;
            } else {
                bad = mid;
            }
        }
        smallest[i] = good;
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let ours = size(&kernel) + size(&initrd_bare);
    let theirs = size(&linux.kernel) + size(&linux.initramfs_bare);
    let (b0, b1) = (median(&boot.0), median(&boot.1));
    let (s0, s1) = (median(&speed.0), median(&speed.1));
    let (rb, rs) = (
        paired_ratio(&boot.0, &boot.1),
        paired_ratio(&speed.0, &speed.1),
    );
    println!(
        "\n{:<40} {:>12} {:>12} {:>8} {:>6}",
        "", "llmos", "Linux VM", "ratio", "goal"
    );
    println!(
        "{:<40} {:>12.1} {:>12.1} {:>8.2} {:>6}",
        "(a) QEMU start to `llmos: ready` (s)", b0, b1, rb, "<=0.25"
    );
    println!(
        "{:<40} {:>12.2} {:>12.2} {:>8.2} {:>6}",
        "(b) generation, tiny model (tok/s)", s0, s1, rs, ">=1.0"
    );
    println!(
        "{:<40} {:>12} {:>12} {:>8.2} {:>6}",
        "(c) smallest -m that serves (MiB)",
        smallest[0],
        smallest[1],
        smallest[0] as f64 / smallest[1] as f64,
        "<=0.5"
    );
    println!(
        "{:<40} {:>12.1} {:>12.1} {:>8.2} {:>6}",
        "(d) kernel + initrd without model (MiB)",
        ours as f64 / 1048576.0,
        theirs as f64 / 1048576.0,
        ours as f64 / theirs as f64,
        "<=0.5"
    );
    println!(
        "(medians of {repeats}, (a) and (b) ratios = median of the rounds' ratios; QEMU {} -smp {GUEST_SMP} -m {GUEST_MIB}M; (b) is {GEN_TOKENS} tokens over /v1/completions, \
         prompt included; (c) by bisection to {step} MiB; Linux: {})",
        a.accel.name(),
        linux.version
    );
    Ok(json!({
        "guest": {"accel": a.accel.name(), "smp": GUEST_SMP, "memory_mib": GUEST_MIB, "args": GUEST_ARGS},
        "linux": {"kernel_package": linux.version, "append": "console=ttyS0 panic=-1 quiet"},
        "boot_seconds": {"llmos": {"median": b0, "samples": boot.0}, "linux": {"median": b1, "samples": boot.1}, "ratio": rb, "ratio_of_medians": b0 / b1},
        "generation_tokens_per_second": {"llmos": {"median": s0, "samples": speed.0}, "linux": {"median": s1, "samples": speed.1}, "ratio": rs, "ratio_of_medians": s0 / s1, "tokens": GEN_TOKENS},
        "smallest_memory_mib": {"llmos": smallest[0], "linux": smallest[1], "ratio": smallest[0] as f64 / smallest[1] as f64, "step_mib": step},
        "image_bytes_without_model": {"llmos": {"kernel": size(&kernel), "initrd": size(&initrd_bare)},
                                      "linux": {"kernel": size(&linux.kernel), "initramfs": size(&linux.initramfs_bare)},
                                      "ratio": ours as f64 / theirs as f64},
    }))
}

/// The Linux guest's files.
struct LinuxGuest {
    kernel: PathBuf,
    initramfs: PathBuf,
    initramfs_bare: PathBuf,
    version: String,
}

/// The virtio network modules, in load order (each after what it needs).
const LINUX_MODULES: [&str; 8] = [
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

impl LinuxGuest {
    /// Debian's cloud kernel and busybox-static, downloaded by package
    /// name (`apt-get download`, checked by apt against the archive's
    /// signed index) and unpacked with `dpkg -x`, never installed; an
    /// initramfs whose /init loads the virtio modules, configures the
    /// network as QEMU's user network expects and starts the runtime.
    fn prepare(dir: &Path, runtime: &Path, model: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let depends = Command::new("apt-cache")
            .args(["depends", "linux-image-cloud-amd64"])
            .output()
            .context("apt-cache (the Linux guest comes from Debian's packages)")?;
        let package = String::from_utf8_lossy(&depends.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("Depends: "))
            .map(str::to_owned)
            .context(
                "apt-cache names no kernel for linux-image-cloud-amd64 (run apt-get update)",
            )?;
        let root = dir.join("root");
        for pkg in [package.as_str(), "busybox-static"] {
            let deb = fetch_deb(dir, pkg)?;
            progress::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
        }
        let version = package.trim_start_matches("linux-image-").to_owned();
        let kernel = root.join("boot").join(format!("vmlinuz-{version}"));
        let modules = root.join("lib/modules").join(&version).join("kernel");
        let init = format!(
            "#!/bin/busybox sh\n\
             /bin/busybox mount -t devtmpfs dev /dev\n\
             /bin/busybox mount -t proc proc /proc\n\
             {}\
             /bin/busybox ip link set lo up\n\
             /bin/busybox ip link set eth0 up\n\
             /bin/busybox ip addr add 10.0.2.15/24 dev eth0\n\
             /bin/busybox ip route add default via 10.0.2.2\n\
             exec /bin/llmos-runtime {}\n",
            LINUX_MODULES
                .iter()
                .map(|m| format!(
                    "/bin/busybox insmod /lib/modules/{}\n",
                    m.rsplit('/').next().unwrap_or(m)
                ))
                .collect::<String>(),
            GUEST_ARGS.join(" ")
        );
        let write = |with_model: bool, out: &Path| -> Result<()> {
            let mut rd = llmos_boot::initrd::Initrd::new();
            rd.add_bytes("/init", init.clone().into_bytes(), 0o755)?;
            rd.add_file("/bin/busybox", &root.join("bin/busybox"), 0o755)?;
            rd.add_file("/bin/llmos-runtime", runtime, 0o755)?;
            for m in LINUX_MODULES {
                let name = m.rsplit('/').next().unwrap_or(m);
                rd.add_file(&format!("/lib/modules/{name}"), &modules.join(m), 0o644)?;
            }
            for d in ["/dev", "/proc", "/tmp"] {
                rd.add_dir(d)?;
            }
            if with_model {
                rd.add_file("/models/llmos-tiny.gguf", model, 0o644)?;
            }
            rd.write(out)
        };
        let initramfs = dir.join("initramfs.cpio");
        let initramfs_bare = dir.join("initramfs-no-model.cpio");
        write(true, &initramfs)?;
        write(false, &initramfs_bare)?;
        Ok(Self {
            kernel,
            initramfs,
            initramfs_bare,
            version: package,
        })
    }
}

/// `pkg`'s .deb in `dir`, downloaded with `apt-get download` unless it is
/// there already.
fn fetch_deb(dir: &Path, pkg: &str) -> Result<PathBuf> {
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb"))
            })
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    progress::run(
        Command::new("apt-get")
            .args(["download", pkg])
            .current_dir(dir),
    )
    .with_context(|| format!("apt-get download {pkg}"))?;
    find().with_context(|| format!("apt-get download {pkg} left no .deb in {}", dir.display()))
}
