//! The boot-log line format.
//!
//! Every event on the serial console is one line:
//! `[secs.micros] subsystem: message`, for example
//! `[0.012345] mem: 1022 MiB usable`. Tests and people parse these lines, so
//! a message that contains a newline is split into several lines that each
//! carry the same timestamp and subsystem; a line can never start without a
//! prefix. Carriage returns in messages are dropped (the serial driver adds
//! its own CR before each LF).

use core::fmt::{self, Write};

/// A point on the monotonic clock, printed as `[secs.micros]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    nanos: u64,
}

impl Timestamp {
    /// A timestamp `nanos` nanoseconds after boot.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    /// Whole seconds.
    pub const fn secs(self) -> u64 {
        self.nanos / 1_000_000_000
    }

    /// Microseconds within the second (0..1_000_000).
    pub const fn micros(self) -> u32 {
        ((self.nanos % 1_000_000_000) / 1_000) as u32
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}.{:06}]", self.secs(), self.micros())
    }
}

/// Writes one event as one or more complete log lines (each ending in `\n`).
pub fn write_event<W: Write>(
    out: &mut W,
    ts: Timestamp,
    subsystem: &str,
    message: fmt::Arguments<'_>,
) -> fmt::Result {
    write!(out, "{ts} {subsystem}: ")?;
    let mut lines = LineSplitter { out, ts, subsystem };
    lines.write_fmt(message)?;
    lines.out.write_char('\n')
}

/// Re-prefixes every continuation line of a multi-line message.
struct LineSplitter<'a, W: Write> {
    out: &'a mut W,
    ts: Timestamp,
    subsystem: &'a str,
}

impl<W: Write> Write for LineSplitter<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(pos) = rest.find(['\n', '\r']) {
            self.out.write_str(&rest[..pos])?;
            if rest.as_bytes()[pos] == b'\n' {
                write!(self.out, "\n{} {}: ", self.ts, self.subsystem)?;
            }
            rest = &rest[pos + 1..];
        }
        self.out.write_str(rest)
    }
}

/// Adapts an [`embedded_io::Write`] byte sink (the serial port) into a
/// [`fmt::Write`] for the formatter, turning each `\n` into `\r\n` so
/// terminals in raw mode (QEMU's `-nographic`) show proper lines.
pub struct CrlfWriter<'a, W: embedded_io::Write> {
    inner: &'a mut W,
}

impl<'a, W: embedded_io::Write> CrlfWriter<'a, W> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut W) -> Self {
        Self { inner }
    }
}

impl<W: embedded_io::Write> Write for CrlfWriter<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.inner.write_all(b"\r\n").map_err(|_| fmt::Error)?;
            }
            self.inner
                .write_all(part.as_bytes())
                .map_err(|_| fmt::Error)?;
        }
        Ok(())
    }
}

/// A parsed boot-log line, for tests and tools that read serial output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    /// Nanoseconds since boot, at microsecond resolution.
    pub nanos: u64,
    /// The subsystem name before the colon.
    pub subsystem: &'a str,
    /// Everything after `": "`.
    pub message: &'a str,
}

/// Parses one line in the boot-log format; `None` if it is not one.
pub fn parse_line(line: &str) -> Option<ParsedLine<'_>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let rest = line.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] ")?;
    let (secs, micros) = stamp.split_once('.')?;
    if micros.len() != 6 || secs.is_empty() {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let micros: u64 = micros.parse().ok()?;
    let (subsystem, message) = rest.split_once(": ")?;
    if subsystem.is_empty() || subsystem.contains(' ') {
        return None;
    }
    Some(ParsedLine {
        nanos: secs
            .checked_mul(1_000_000_000)?
            .checked_add(micros * 1_000)?,
        subsystem,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(nanos: u64, sub: &str, msg: fmt::Arguments<'_>) -> String {
        let mut s = String::new();
        write_event(&mut s, Timestamp::from_nanos(nanos), sub, msg).unwrap();
        s
    }

    #[test]
    fn timestamp_has_six_digit_micros() {
        assert_eq!(Timestamp::from_nanos(0).to_string(), "[0.000000]");
        assert_eq!(Timestamp::from_nanos(1_500).to_string(), "[0.000001]");
        assert_eq!(
            Timestamp::from_nanos(12_345_678_912).to_string(),
            "[12.345678]"
        );
        assert_eq!(
            Timestamp::from_nanos(u64::MAX).to_string(),
            "[18446744073.709551]"
        );
    }

    #[test]
    fn single_line_event() {
        assert_eq!(
            event(2_000_001_000, "mem", format_args!("{} MiB usable", 1022)),
            "[2.000001] mem: 1022 MiB usable\n"
        );
    }

    #[test]
    fn multi_line_message_is_prefixed_on_every_line() {
        let s = event(1_000, "exc", format_args!("a\nb\r\nc"));
        assert_eq!(
            s,
            "[0.000001] exc: a\n[0.000001] exc: b\n[0.000001] exc: c\n"
        );
        for line in s.lines() {
            assert!(parse_line(line).is_some(), "{line:?}");
        }
    }

    /// A byte sink that records what it was given.
    struct Sink(Vec<u8>);

    impl embedded_io::ErrorType for Sink {
        type Error = core::convert::Infallible;
    }

    impl embedded_io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn crlf_writer_translates_newlines() {
        let mut sink = Sink(Vec::new());
        let mut w = CrlfWriter::new(&mut sink);
        write_event(&mut w, Timestamp::from_nanos(0), "k", format_args!("a\nb")).unwrap();
        assert_eq!(sink.0, b"[0.000000] k: a\r\n[0.000000] k: b\r\n");
    }

    #[test]
    fn parse_roundtrip() {
        let s = event(3_141_592_000, "kernel", format_args!("ready"));
        let p = parse_line(s.trim_end()).unwrap();
        assert_eq!(p.nanos, 3_141_592_000);
        assert_eq!(p.subsystem, "kernel");
        assert_eq!(p.message, "ready");
    }

    #[test]
    fn parse_rejects_other_text() {
        for bad in [
            "",
            "kernel: ready",
            "[1.23] kernel: ready",
            "[x.000000] kernel: ready",
            "[1.000000]kernel: ready",
            "[1.000000] kernel ready",
            "[1.000000] two words: x",
        ] {
            assert!(parse_line(bad).is_none(), "{bad:?}");
        }
        assert!(parse_line("[1.000000] kernel: ready\r").is_some());
    }
}
