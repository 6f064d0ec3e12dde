//! Progress display and external commands.
//!
//! Every external command is printed (`$ cmd args`) before it runs. Steps
//! that do their work in-process show a spinner with the step's name;
//! steps that run a command let the command show its own progress (cargo
//! has a progress bar) and report the elapsed time at the end.

use std::ffi::OsStr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

/// Prints a step header.
pub fn header(name: &str) {
    eprintln!("==> {name}");
}

/// Runs `f` under a spinner named `name`, then prints the elapsed time.
pub fn spin<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(name.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    let result = f();
    bar.finish_and_clear();
    match &result {
        Ok(_) => eprintln!("    {name}: done in {:.1}s", start.elapsed().as_secs_f64()),
        Err(_) => eprintln!(
            "    {name}: FAILED after {:.1}s",
            start.elapsed().as_secs_f64()
        ),
    }
    result
}

/// Renders a command the way a person would type it.
pub fn render(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), quote(v)));
        }
    }
    s.push_str(&quote(cmd.get_program()));
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Prints and runs `cmd` with inherited stdio; fails if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = render(cmd);
    eprintln!("$ {line}");
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    if start.elapsed() > Duration::from_secs(5) {
        eprintln!("    done in {:.1}s", start.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Like [`run`], but also returns what the command wrote to stdout (which
/// is still shown as it arrives).
pub fn run_tee(cmd: &mut Command) -> Result<String> {
    use std::io::{BufRead, BufReader, Write};
    let line = render(cmd);
    eprintln!("$ {line}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let mut captured = String::new();
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout().lock();
        for l in BufReader::new(out).lines() {
            let l = l.unwrap_or_default();
            let _ = writeln!(stdout, "{l}");
            captured.push_str(&l);
            captured.push('\n');
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(captured)
}

/// Pass/fail counts summed over `cargo test` output.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests ignored.
    pub ignored: u64,
}

impl Totals {
    /// Adds every `test result:` line of `output`.
    pub fn add(&mut self, output: &str) {
        for l in output
            .lines()
            .filter_map(|l| l.trim().strip_prefix("test result: "))
        {
            let count = |what: &str| {
                l.split(';')
                    .find_map(|part| {
                        part.trim()
                            .trim_start_matches("ok. ")
                            .trim_start_matches("FAILED. ")
                            .strip_suffix(what)
                    })
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            self.passed += count(" passed");
            self.failed += count(" failed");
            self.ignored += count(" ignored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_commands_readably() {
        let mut c = Command::new("cargo");
        c.args(["build", "-p", "kernel", "--features", "a b"]);
        assert_eq!(render(&c), "cargo build -p kernel --features 'a b'");
        let mut c = Command::new("echo");
        c.env("FOO", "x y").arg("it's");
        assert_eq!(render(&c), r"FOO='x y' echo 'it'\''s'");
    }

    #[test]
    fn totals_sum_cargo_test_lines() {
        let mut t = Totals::default();
        t.add("running 2 tests\ntest a ... ok\n\ntest result: ok. 33 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.05s\n");
        t.add("test result: FAILED. 4 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\nnoise\n");
        assert_eq!(
            t,
            Totals {
                passed: 37,
                failed: 2,
                ignored: 1
            }
        );
    }

    #[test]
    fn tee_captures_stdout() {
        let out = run_tee(Command::new("sh").args(["-c", "echo one; echo two"])).unwrap();
        assert_eq!(out, "one\ntwo\n");
        assert!(run_tee(Command::new("sh").args(["-c", "exit 3"])).is_err());
    }

    #[test]
    fn failing_command_names_itself() {
        let err = run(Command::new("false").arg("--flag")).unwrap_err();
        assert!(err.to_string().contains("`false --flag` failed"), "{err}");
        let err = run(&mut Command::new("/nonexistent/tool")).unwrap_err();
        assert!(err.to_string().contains("could not start"), "{err}");
    }
}
