//! A running QEMU with its serial console captured.
//!
//! QEMU's stdout (the serial port in [`SerialMode::Captured`]) is read by a
//! thread into a shared buffer and, optionally, a log file. Waits are always
//! bounded; dropping a [`Machine`] kills QEMU so a failed test never leaves
//! a guest running.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use regex::Regex;

use crate::config::{Config, FirmwareKind, SerialMode};
use crate::firmware::{self, Ovmf};
use crate::outcome::Outcome;

/// The QEMU binary: `LLMOS_QEMU` or `qemu-system-x86_64` on PATH.
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("LLMOS_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    closed: bool,
}

/// Shared capture buffer with a condition variable for waiters.
#[derive(Default)]
struct Capture {
    state: Mutex<Captured>,
    changed: Condvar,
}

impl Capture {
    fn text(&self) -> String {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&st.bytes).into_owned()
    }
}

/// Why a wait failed; carries the serial log so a test failure shows it.
#[derive(Debug)]
pub struct WaitError {
    /// What happened.
    pub reason: String,
    /// Everything the guest printed so far.
    pub serial: String,
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n----- serial log -----\n{}\n----- end of serial log -----",
            self.reason, self.serial
        )
    }
}

impl std::error::Error for WaitError {}

/// A running QEMU.
pub struct Machine {
    child: Child,
    serial: Arc<Capture>,
    stderr: Arc<Capture>,
    readers: Vec<JoinHandle<()>>,
    command_line: String,
    // Keeps the per-run OVMF variable store alive while QEMU runs.
    _vars: Option<tempfile::NamedTempFile>,
}

fn pump(
    mut from: impl Read + Send + 'static,
    into: Arc<Capture>,
    mut log: Option<File>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(f) = log.as_mut() {
                let _ = f.write_all(&buf[..n]);
            }
            let mut st = into.state.lock().unwrap_or_else(|e| e.into_inner());
            st.bytes.extend_from_slice(&buf[..n]);
            into.changed.notify_all();
        }
        let mut st = into.state.lock().unwrap_or_else(|e| e.into_inner());
        st.closed = true;
        into.changed.notify_all();
    })
}

impl Machine {
    /// Starts QEMU for `cfg` with serial captured (the config's serial mode
    /// must be [`SerialMode::Captured`]); the serial output is also written
    /// to `serial_log` if given.
    pub fn spawn(cfg: &Config, serial_log: Option<&Path>) -> Result<Self> {
        Self::spawn_with_input(cfg, serial_log, None)
    }

    /// Like [`Machine::spawn`], and types `input.1` on the serial console
    /// once the serial output contains `input.0` (bytes sent before the
    /// guest sets up its UART would be lost, as on real hardware).
    pub fn spawn_with_input(
        cfg: &Config,
        serial_log: Option<&Path>,
        input: Option<(String, Vec<u8>)>,
    ) -> Result<Self> {
        anyhow::ensure!(
            cfg.serial == SerialMode::Captured,
            "Machine::spawn needs captured serial"
        );
        let (ovmf, vars) = uefi_files(cfg)?;
        let args = cfg
            .args(ovmf.as_ref(), vars.as_ref().map(|v| v.path()))
            .map_err(anyhow::Error::msg)?;
        let mut cmd = Command::new(qemu_binary());
        cmd.args(&args);
        let mut m = Self::spawn_command_with_input(cmd, serial_log, input)?;
        m._vars = vars;
        Ok(m)
    }

    /// Runs any command whose stdout is treated as the serial console (the
    /// harness's own tests use a shell here).
    pub fn spawn_command(cmd: Command, serial_log: Option<&Path>) -> Result<Self> {
        Self::spawn_command_with_input(cmd, serial_log, None)
    }

    fn spawn_command_with_input(
        mut cmd: Command,
        serial_log: Option<&Path>,
        input: Option<(String, Vec<u8>)>,
    ) -> Result<Self> {
        let command_line = format!("{cmd:?}");
        let stdin = if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "starting {command_line} (is QEMU installed? `bash scripts/setup.sh` installs it)"
            )
        })?;
        let log = match serial_log {
            Some(p) => Some(File::create(p).with_context(|| format!("creating {}", p.display()))?),
            None => None,
        };
        let serial = Arc::new(Capture::default());
        let stderr = Arc::new(Capture::default());
        let out = child.stdout.take().context("child stdout")?;
        let err = child.stderr.take().context("child stderr")?;
        let readers = vec![
            pump(out, serial.clone(), log),
            pump(err, stderr.clone(), None),
        ];
        if let (Some((trigger, bytes)), Some(mut pipe)) = (input, child.stdin.take()) {
            // From a thread, so neither the wait nor a full pipe blocks the
            // caller; the pipe closes (EOF for QEMU) after the bytes.
            let serial = serial.clone();
            std::thread::spawn(move || {
                let mut st = serial.state.lock().unwrap_or_else(|e| e.into_inner());
                while !String::from_utf8_lossy(&st.bytes).contains(&trigger) {
                    if st.closed {
                        return;
                    }
                    st = serial.changed.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                drop(st);
                let _ = pipe.write_all(&bytes);
            });
        }
        Ok(Self {
            child,
            serial,
            stderr,
            readers,
            command_line,
            _vars: None,
        })
    }

    /// The command that was started.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Everything on the serial console so far.
    pub fn serial(&self) -> String {
        self.serial.text()
    }

    /// Everything QEMU printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    fn error(&self, reason: String) -> WaitError {
        let stderr = self.stderr();
        let reason = if stderr.trim().is_empty() {
            reason
        } else {
            format!("{reason}\nQEMU stderr:\n{}", stderr.trim_end())
        };
        WaitError {
            reason,
            serial: self.serial(),
        }
    }

    /// Waits until the serial output matches `re`, for at most `timeout`.
    /// Returns the matched text.
    pub fn wait_for(&mut self, re: &Regex, timeout: Duration) -> Result<String, WaitError> {
        let deadline = Instant::now() + timeout;
        let mut st = self.serial.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(m) = re.find(&String::from_utf8_lossy(&st.bytes)) {
                return Ok(m.as_str().to_owned());
            }
            if st.closed {
                drop(st);
                let status = self.child.wait().ok().map(Outcome::from_status);
                // QEMU has exited: let the readers finish so stderr is
                // complete in the report.
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return Err(self.error(format!(
                    "QEMU exited before the serial log matched /{re}/ ({})",
                    status.map_or("unknown status".into(), |s| s.to_string())
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                self.kill();
                return Err(self.error(format!("timed out after {timeout:?} waiting for /{re}/")));
            }
            st = self
                .serial
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for QEMU to exit, for at most `timeout` (then kills it and
    /// reports a timeout). The serial log is complete when this returns.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Outcome, WaitError> {
        self.wait_exit_or(timeout, true)
    }

    /// The outcome if QEMU exited within `timeout`; otherwise `None`, and
    /// it keeps running.
    pub fn exited_within(&mut self, timeout: Duration) -> Option<Outcome> {
        self.wait_exit_or(timeout, false).ok()
    }

    fn wait_exit_or(&mut self, timeout: Duration, kill: bool) -> Result<Outcome, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    for r in self.readers.drain(..) {
                        let _ = r.join();
                    }
                    return Ok(Outcome::from_status(status));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    if kill {
                        self.kill();
                    }
                    return Err(self.error(format!("QEMU did not exit within {timeout:?}")));
                }
                Err(e) => return Err(self.error(format!("waiting for QEMU failed: {e}"))),
            }
        }
    }

    /// Kills QEMU (idempotent).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Finds OVMF and makes a private copy of its variable store for UEFI runs.
pub fn uefi_files(cfg: &Config) -> Result<(Option<Ovmf>, Option<tempfile::NamedTempFile>)> {
    if cfg.firmware != FirmwareKind::Uefi {
        return Ok((None, None));
    }
    let ovmf = firmware::find()?;
    let vars = match &ovmf {
        Ovmf::Split { vars, .. } => {
            let copy = tempfile::Builder::new()
                .prefix("llmos-ovmf-vars-")
                .tempfile()
                .context("creating a temporary OVMF variable store")?;
            std::fs::copy(vars, copy.path())
                .with_context(|| format!("copying {}", vars.display()))?;
            Some(copy)
        }
        Ovmf::Combined(_) => None,
    };
    Ok((Some(ovmf), vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Machine {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        Machine::spawn_command(c, None).unwrap()
    }

    #[test]
    fn waits_for_a_pattern_and_exit_code() {
        let mut m =
            sh("echo '[0.1] kernel: booting'; sleep 0.2; echo '[0.3] kernel: ready'; exit 33");
        let got = m
            .wait_for(
                &Regex::new(r"kernel: ready").unwrap(),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(got, "kernel: ready");
        assert_eq!(
            m.wait_exit(Duration::from_secs(10)).unwrap(),
            Outcome::Success
        );
        assert!(m.serial().contains("booting"));
    }

    #[test]
    fn timeout_kills_and_attaches_the_log() {
        let mut m = sh("echo 'still booting'; sleep 30");
        let t0 = Instant::now();
        let err = m
            .wait_for(&Regex::new("never").unwrap(), Duration::from_millis(300))
            .unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(err.reason.contains("timed out"), "{err}");
        assert!(err.serial.contains("still booting"));
        assert!(err.to_string().contains("----- serial log -----"));
    }

    #[test]
    fn early_exit_is_reported_with_status_and_stderr() {
        let mut m = sh("echo 'boom' >&2; exit 35");
        let err = m
            .wait_for(&Regex::new("ready").unwrap(), Duration::from_secs(10))
            .unwrap_err();
        assert!(err.reason.contains("exited before"), "{err}");
        assert!(err.reason.contains("exit 35"), "{err}");
        assert!(err.reason.contains("boom"), "{err}");
    }

    #[test]
    fn wait_exit_times_out() {
        let mut m = sh("sleep 30");
        let err = m.wait_exit(Duration::from_millis(200)).unwrap_err();
        assert!(err.reason.contains("did not exit"), "{err}");
    }

    #[test]
    fn input_reaches_the_child() {
        let mut c = Command::new("sh");
        c.arg("-c").arg("echo ready; read line; echo \"got $line\"");
        let input = Some(("ready".to_owned(), b"typed\n".to_vec()));
        let mut m = Machine::spawn_command_with_input(c, None, input).unwrap();
        m.wait_exit(Duration::from_secs(10)).unwrap();
        assert_eq!(m.serial(), "ready\ngot typed\n");
    }

    #[test]
    fn serial_log_file_gets_a_copy() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("serial.log");
        let mut c = Command::new("sh");
        c.arg("-c").arg("printf 'hello\\n'; exit 0");
        let mut m = Machine::spawn_command(c, Some(&log)).unwrap();
        m.wait_exit(Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello\n");
    }
}
