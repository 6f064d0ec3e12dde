//! Helpers for the QEMU integration tests in `tests/tests/`.
//!
//! `cargo xtask test` builds the images and runs these tests with
//! `LLMOS_IMAGES` pointing at `target/images`. Each test boots one image
//! under TCG with a hard timeout, keeps the serial log in
//! `target/images/logs/<name>.log`, and attaches the log to any failure.

pub mod browser;
pub mod cases;
pub mod hosted;

use std::path::PathBuf;
use std::time::Duration;

use llmos_qemu::{Config, FirmwareKind, Machine, Outcome};
use regex::Regex;

/// Where the images are.
pub fn images_dir() -> PathBuf {
    match std::env::var_os("LLMOS_IMAGES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/images"),
    }
}

/// A build artifact: the path in environment variable `var` (set by
/// `cargo xtask test`), else `default` under the workspace's `target/`;
/// panics with `fix` if it is missing.
fn artifact(var: &str, default: &str, fix: &str) -> PathBuf {
    let p = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .join(default),
    };
    assert!(p.is_file(), "{} is missing; {fix}", p.display());
    p
}

/// The hosted runtime binary (`LLMOS_RUNTIME`).
pub fn runtime_bin() -> PathBuf {
    artifact(
        "LLMOS_RUNTIME",
        "runtime/x86_64-unknown-linux-gnu/release/llmos-runtime",
        "run these tests through `cargo xtask test`, which builds it",
    )
}

/// The default model (`LLMOS_MODEL`).
pub fn default_model() -> PathBuf {
    artifact(
        "LLMOS_MODEL",
        "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "`cargo xtask model` fetches it (`cargo xtask test` does too)",
    )
}

/// The tiny test model (`LLMOS_TINY_MODEL`).
pub fn tiny_model() -> PathBuf {
    artifact(
        "LLMOS_TINY_MODEL",
        "models/llmos-tiny.gguf",
        "`cargo xtask model --tiny` writes it (`cargo xtask test` does too)",
    )
}

/// The directory with the code interpreter's WASI runtimes
/// (`LLMOS_LANG_DIR`, else `target/lang`); panics with the fix if missing.
pub fn lang_dir() -> PathBuf {
    let d = match std::env::var_os("LLMOS_LANG_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/lang"),
    };
    assert!(
        d.join("python-3.12.0.wasm").is_file() && d.join("quickjs.wasm").is_file(),
        "{} lacks the WASI runtimes; `cargo xtask lang` fetches them (`cargo xtask test` does too)",
        d.display()
    );
    d
}

/// The packed first-party apps (`LLMOS_APPS_DIR`, else `target/apps`);
/// panics with the fix if missing.
pub fn apps_dir() -> PathBuf {
    let d = match std::env::var_os("LLMOS_APPS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/apps"),
    };
    assert!(
        d.join("text/manifest.toml").is_file() && d.join("files/manifest.toml").is_file(),
        "{} lacks the apps; `cargo xtask apps` builds them (`cargo xtask test` does too)",
        d.display()
    );
    d
}

/// An image under the images directory; panics with the fix if missing.
pub fn image(relative: &str) -> PathBuf {
    let p = images_dir().join(relative);
    assert!(
        p.is_file(),
        "image {} is missing; run the QEMU tests through `cargo xtask test`, which builds it",
        p.display()
    );
    p
}

/// A configuration that has QEMU load the normal kernel with the initrd
/// `<relative>.cpio` itself (PVH direct boot, `-kernel`/`-initrd`): what
/// `cargo xtask run` does by default, and much faster under TCG than the
/// firmware reading a disk image. The disk images have their own tests
/// (`boot.rs`).
pub fn direct(relative: &str) -> Config {
    Config::direct(image("kernel.elf"), image(&format!("{relative}.cpio")))
}

/// The result of one boot.
#[derive(Debug)]
pub struct Boot {
    /// How QEMU exited.
    pub outcome: Outcome,
    /// The complete serial log.
    pub serial: String,
}

impl Boot {
    /// Panics (with the log) unless the outcome is `want`.
    pub fn expect_outcome(&self, want: &Outcome) -> &Self {
        assert_eq!(
            &self.outcome,
            want,
            "unexpected QEMU outcome\n{}",
            self.log()
        );
        self
    }

    /// Panics (with the log) unless some line matches `pattern`; returns
    /// the first matching line (without its line ending).
    pub fn expect_line(&self, pattern: &str) -> String {
        let re = Regex::new(&format!("(?m)^{pattern}\r?$")).expect("test regex");
        match re.find(&self.serial) {
            Some(m) => m.as_str().trim_end().to_owned(),
            None => panic!("no serial line matches /^{pattern}$/\n{}", self.log()),
        }
    }

    /// Lines the kernel printed: from its first boot-log line on (firmware
    /// may print before it), without line endings.
    pub fn kernel_lines(&self) -> Vec<&str> {
        let lines: Vec<&str> = self
            .serial
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .collect();
        let first = lines
            .iter()
            .position(|l| kcore::bootlog::parse_line(l).is_some_and(|p| p.subsystem == "kernel"))
            .unwrap_or(lines.len());
        lines[first..].to_vec()
    }

    fn log(&self) -> String {
        format!(
            "----- serial log -----\n{}\n----- end of serial log -----",
            self.serial
        )
    }
}

/// Where the serial log of run `name` goes: `<images>/logs/<name>.log`.
pub fn log_path(name: &str) -> PathBuf {
    let logs = images_dir().join("logs");
    std::fs::create_dir_all(&logs).expect("creating the log directory");
    logs.join(format!("{name}.log"))
}

/// Boots `image` with `firmware` under TCG and waits for QEMU to exit.
pub fn boot(name: &str, image: PathBuf, firmware: FirmwareKind, timeout: Duration) -> Boot {
    let mut cfg = Config::new(image);
    cfg.firmware = firmware;
    cfg.memory_mib = 512;
    boot_with(name, &cfg, timeout)
}

/// Boots with a custom configuration and waits for QEMU to exit.
pub fn boot_with(name: &str, cfg: &Config, timeout: Duration) -> Boot {
    boot_with_input(name, cfg, timeout, None)
}

/// Boots test-program case `name` (see [`cases`]) directly ([`direct`];
/// with the test-hooks kernel if the case names a scenario), typing
/// `input` once the program has started. The serial log goes to
/// `logs/prog-<name>.log` (with a hash of the input when there is one).
pub fn boot_case(name: &str, input: Option<&[u8]>) -> Boot {
    boot_case_smp(name, 1, input)
}

/// Like [`boot_case`] with `smp` virtual CPUs.
pub fn boot_case_smp(name: &str, smp: u32, input: Option<&[u8]>) -> Boot {
    let case = cases::find(name);
    let mut cfg = direct(&format!("prog/{name}"));
    if case.test_hook.is_some() {
        cfg = Config::direct(
            image("kernel-test-hooks.elf"),
            image(&format!("prog/{name}.cpio")),
        );
    }
    cfg.memory_mib = 512;
    cfg.smp = smp;
    let log = match input {
        None if smp > 1 => format!("prog-{name}-smp{smp}"),
        None => format!("prog-{name}"),
        Some(i) => {
            let h = i.iter().fold(0x811c_9dc5u32, |h, &b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            format!("prog-{name}-{h:08x}")
        }
    };
    let input = input.map(|i| ("kernel: starting".to_owned(), i.to_vec()));
    boot_with_input(&log, &cfg, Duration::from_secs(180), input)
}

/// Boots with input typed on the serial console.
pub fn boot_with_input(
    name: &str,
    cfg: &Config,
    timeout: Duration,
    input: Option<(String, Vec<u8>)>,
) -> Boot {
    let mut m = Machine::spawn_with_input(cfg, Some(&log_path(name)), input)
        .unwrap_or_else(|e| panic!("starting QEMU: {e:#}"));
    match m.wait_exit(timeout) {
        Ok(outcome) => Boot {
            outcome,
            serial: m.serial(),
        },
        Err(e) => panic!("{e}"),
    }
}

impl Boot {
    /// What the init program printed: the serial lines between
    /// `kernel: starting …` and `kernel: init exited …`, without the
    /// kernel's own log lines and with the console's CRs removed.
    pub fn program_output(&self) -> String {
        let mut out = String::new();
        let mut inside = false;
        for line in self.serial.split_inclusive('\n') {
            let bare = line.trim_end_matches(['\n', '\r']);
            if let Some(p) = kcore::bootlog::parse_line(bare) {
                if p.subsystem == "kernel" && p.message.starts_with("starting ") {
                    inside = true;
                } else if p.subsystem == "kernel"
                    && (p.message.starts_with("init exited")
                        || p.message.starts_with("init killed"))
                {
                    inside = false;
                }
                continue;
            }
            if inside {
                out.push_str(&line.replace("\r\n", "\n"));
            }
        }
        out
    }
}

/// Runs case `name`'s program on the host with the same argv and
/// environment as in the image, and returns its stdout and exit code.
pub fn host_run(name: &str) -> (String, i32) {
    use std::os::unix::process::CommandExt;
    let case = cases::find(name);
    let dir = match std::env::var_os("LLMOS_USERLAND") {
        Some(d) => PathBuf::from(d),
        None => {
            cases::userland_bin_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        }
    };
    let exe = dir.join(case.program);
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg0(format!("/bin/{}", case.program))
        .args(case.args)
        .env_clear()
        .stdin(std::process::Stdio::null());
    for kv in bootparams::default_env() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "running {} on the host: {e} (build it with `cargo xtask test`)",
            exe.display()
        )
    });
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// The unsigned numbers in `line`, in order (a timestamp counts as two).
pub fn numbers_in(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// FNV-1a, as the test programs print it.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}
