//! Helpers for the QEMU integration tests in `tests/tests/`.
//!
//! `cargo xtask test` builds the images and runs these tests with
//! `LLMOS_IMAGES` pointing at `target/images`. Each test boots one image
//! under TCG with a hard timeout, keeps the serial log in
//! `target/images/logs/<name>.log`, and attaches the log to any failure.

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

/// Boots `image` with `firmware` under TCG and waits for QEMU to exit.
pub fn boot(name: &str, image: PathBuf, firmware: FirmwareKind, timeout: Duration) -> Boot {
    let mut cfg = Config::new(image);
    cfg.firmware = firmware;
    cfg.memory_mib = 512;
    boot_with(name, &cfg, timeout)
}

/// Boots with a custom configuration and waits for QEMU to exit.
pub fn boot_with(name: &str, cfg: &Config, timeout: Duration) -> Boot {
    let logs = images_dir().join("logs");
    std::fs::create_dir_all(&logs).expect("creating the log directory");
    let mut m = Machine::spawn(cfg, Some(&logs.join(format!("{name}.log"))))
        .unwrap_or_else(|e| panic!("starting QEMU: {e:#}"));
    match m.wait_exit(timeout) {
        Ok(outcome) => Boot {
            outcome,
            serial: m.serial(),
        },
        Err(e) => panic!("{e}"),
    }
}
