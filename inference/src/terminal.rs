//! Console input: lines from a pipe, or a line editor on a terminal.
//!
//! On a terminal (the serial line in llmos, a tty in hosted mode) the
//! console switches it to raw mode (no echo, no line discipline, no
//! signals) and edits lines itself: cursor movement, deletion, history
//! with the arrow keys. Ctrl-C clears the line being typed, and while a
//! reply is being generated it stops the reply instead of ending the
//! program (llmos delivers no signal handlers, and a runtime killed by
//! SIGINT would power the machine off). The terminal's settings are put
//! back when the console ends.

use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use rustix::termios::{self, LocalModes, OptionalActions, Termios};

/// Where console lines come from.
pub trait LineSource {
    /// The next line (without its end), after showing `prompt`; `None`
    /// at the end of input.
    fn read_line(&mut self, prompt: &str, out: &mut dyn Write) -> Option<String>;

    /// Set by Ctrl-C while a reply is generated (never set for a pipe).
    fn interrupt(&self) -> Arc<AtomicBool>;

    /// Whether a reply is being generated (Ctrl-C then stops it).
    fn generating(&self, on: bool);
}

/// Lines from any reader (a pipe, a file).
pub struct Lines<R> {
    input: R,
    flag: Arc<AtomicBool>,
}

impl<R: BufRead> Lines<R> {
    /// Reads lines from `input`.
    pub fn new(input: R) -> Self {
        Self {
            input,
            flag: Arc::default(),
        }
    }
}

impl<R: BufRead> LineSource for Lines<R> {
    fn read_line(&mut self, prompt: &str, out: &mut dyn Write) -> Option<String> {
        let _ = write!(out, "{prompt}");
        let _ = out.flush();
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_owned()),
        }
    }

    fn interrupt(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    fn generating(&self, _: bool) {}
}

const CTRL_A: u8 = 1;
const CTRL_B: u8 = 2;
const CTRL_C: u8 = 3;
const CTRL_D: u8 = 4;
const CTRL_E: u8 = 5;
const CTRL_F: u8 = 6;
const CTRL_K: u8 = 11;
const CTRL_U: u8 = 21;
const CTRL_W: u8 = 23;
const ESC: u8 = 27;
const BACKSPACE: u8 = 127;
const CTRL_H: u8 = 8;

/// The most lines kept in the history.
pub const HISTORY: usize = 200;

/// A line editor over a stream of input bytes (a thread reads the
/// terminal and sends them; Ctrl-C during generation never reaches it).
pub struct Editor {
    bytes: Receiver<u8>,
    history: Vec<String>,
    flag: Arc<AtomicBool>,
    busy: Arc<AtomicBool>,
    /// The last byte was `\r` (so a following `\n` is not a second Enter).
    after_cr: bool,
    /// A byte read ahead that is not part of the key before it.
    pending: Option<u8>,
}

/// What a key does.
enum Key {
    Char(char),
    Enter,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    Backspace,
    Delete,
    KillLine,
    KillEnd,
    KillWord,
    Cancel,
    Eof,
    Ignore,
}

impl Editor {
    /// An editor reading bytes from `bytes`; `flag` is set (instead of a
    /// byte sent) for Ctrl-C while `busy` is set.
    pub fn new(bytes: Receiver<u8>, flag: Arc<AtomicBool>, busy: Arc<AtomicBool>) -> Self {
        Self {
            bytes,
            history: Vec::new(),
            flag,
            busy,
            after_cr: false,
            pending: None,
        }
    }

    /// The lines entered so far, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    fn next_byte(&mut self, wait: Option<Duration>) -> Option<u8> {
        if let Some(b) = self.pending.take() {
            return Some(b);
        }
        match wait {
            None => self.bytes.recv().ok(),
            Some(d) => self.bytes.recv_timeout(d).ok(),
        }
    }

    /// The next key; `None` at the end of input.
    fn key(&mut self) -> Option<Key> {
        let b = self.next_byte(None)?;
        let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
        Some(match b {
            b'\r' => Key::Enter,
            b'\n' if after_cr => Key::Ignore,
            b'\n' => Key::Enter,
            CTRL_A => Key::Home,
            CTRL_E => Key::End,
            CTRL_B => Key::Left,
            CTRL_F => Key::Right,
            CTRL_C => Key::Cancel,
            CTRL_D => Key::Eof,
            CTRL_K => Key::KillEnd,
            CTRL_U => Key::KillLine,
            CTRL_W => Key::KillWord,
            BACKSPACE | CTRL_H => Key::Backspace,
            ESC => self.escape(),
            b if b < 0x20 => Key::Ignore,
            b if b < 0x80 => Key::Char(b as char),
            lead => {
                // A UTF-8 sequence.
                let len = match lead {
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf7 => 4,
                    _ => return Some(Key::Ignore),
                };
                let mut buf = vec![lead];
                for _ in 1..len {
                    match self.next_byte(Some(Duration::from_millis(100))) {
                        Some(c) if c & 0xc0 == 0x80 => buf.push(c),
                        // Not a continuation: it is the next key.
                        Some(c) => {
                            self.pending = Some(c);
                            return Some(Key::Ignore);
                        }
                        None => return Some(Key::Ignore),
                    }
                }
                match std::str::from_utf8(&buf)
                    .ok()
                    .and_then(|s| s.chars().next())
                {
                    Some(c) => Key::Char(c),
                    None => Key::Ignore,
                }
            }
        })
    }

    /// After ESC: `[A`-style and `OA`-style sequences (a lone ESC is
    /// ignored).
    fn escape(&mut self) -> Key {
        let wait = Some(Duration::from_millis(50));
        let Some(kind) = self.next_byte(wait) else {
            return Key::Ignore;
        };
        if kind != b'[' && kind != b'O' {
            return Key::Ignore;
        }
        let mut params = Vec::new();
        loop {
            let Some(b) = self.next_byte(wait) else {
                return Key::Ignore;
            };
            if (b.is_ascii_digit() || b == b';') && params.len() < 16 {
                params.push(b);
                continue;
            }
            return match (b, params.as_slice()) {
                (b'A', _) => Key::Up,
                (b'B', _) => Key::Down,
                (b'C', _) => Key::Right,
                (b'D', _) => Key::Left,
                (b'H', _) => Key::Home,
                (b'F', _) => Key::End,
                (b'~', b"1" | b"7") => Key::Home,
                (b'~', b"4" | b"8") => Key::End,
                (b'~', b"3") => Key::Delete,
                _ => Key::Ignore,
            };
        }
    }

    fn redraw(out: &mut dyn Write, prompt: &str, line: &[char], cursor: usize) {
        let text: String = line.iter().collect();
        let _ = write!(out, "\r{prompt}{text}\x1b[K");
        let back = line.len() - cursor;
        if back > 0 {
            let _ = write!(out, "\x1b[{back}D");
        }
        let _ = out.flush();
    }
}

impl LineSource for Editor {
    fn read_line(&mut self, prompt: &str, out: &mut dyn Write) -> Option<String> {
        let mut line: Vec<char> = Vec::new();
        let mut cursor = 0;
        // Position in the history while browsing it (len: the new line).
        let mut browsing = self.history.len();
        let mut draft: Vec<char> = Vec::new();
        Self::redraw(out, prompt, &line, cursor);
        loop {
            let Some(key) = self.key() else {
                let _ = write!(out, "\r\n");
                return None;
            };
            match key {
                Key::Enter => {
                    let _ = write!(out, "\r\n");
                    let _ = out.flush();
                    let text: String = line.iter().collect();
                    if !text.trim().is_empty() && self.history.last() != Some(&text) {
                        self.history.push(text.clone());
                        if self.history.len() > HISTORY {
                            self.history.remove(0);
                        }
                    }
                    return Some(text);
                }
                Key::Char(c) => {
                    line.insert(cursor, c);
                    cursor += 1;
                }
                Key::Left => cursor = cursor.saturating_sub(1),
                Key::Right => cursor = (cursor + 1).min(line.len()),
                Key::Home => cursor = 0,
                Key::End => cursor = line.len(),
                Key::Backspace if cursor > 0 => {
                    cursor -= 1;
                    line.remove(cursor);
                }
                Key::Delete if cursor < line.len() => {
                    line.remove(cursor);
                }
                Key::Backspace | Key::Delete | Key::Ignore => {}
                Key::KillLine => {
                    line.drain(..cursor);
                    cursor = 0;
                }
                Key::KillEnd => line.truncate(cursor),
                Key::KillWord => {
                    let mut start = cursor;
                    while start > 0 && line[start - 1] == ' ' {
                        start -= 1;
                    }
                    while start > 0 && line[start - 1] != ' ' {
                        start -= 1;
                    }
                    line.drain(start..cursor);
                    cursor = start;
                }
                Key::Up | Key::Down => {
                    let next = match key {
                        Key::Up if browsing > 0 => browsing - 1,
                        Key::Down if browsing < self.history.len() => browsing + 1,
                        _ => continue,
                    };
                    if browsing == self.history.len() {
                        draft = line.clone();
                    }
                    browsing = next;
                    line = match self.history.get(browsing) {
                        Some(h) => h.chars().collect(),
                        None => draft.clone(),
                    };
                    cursor = line.len();
                }
                Key::Cancel => {
                    // Like a shell: abandon the line.
                    let _ = write!(out, "^C\r\n");
                    line.clear();
                    cursor = 0;
                    browsing = self.history.len();
                }
                Key::Eof if line.is_empty() => {
                    let _ = write!(out, "\r\n");
                    return None;
                }
                Key::Eof => {}
            }
            Self::redraw(out, prompt, &line, cursor);
        }
    }

    fn interrupt(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    fn generating(&self, on: bool) {
        self.flag.store(false, Ordering::Relaxed);
        self.busy.store(on, Ordering::Relaxed);
    }
}

/// Raw mode on standard input while it lives; the old settings come back
/// when it is dropped.
pub struct RawMode {
    saved: Termios,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// If standard input is a terminal: raw mode on it, and an editor fed by
/// a thread that reads it (Ctrl-C while generating sets the interrupt
/// flag instead of reaching the editor). `None` for a pipe or a file.
pub fn terminal() -> Option<(Editor, RawMode)> {
    let stdin = std::io::stdin();
    if !termios::isatty(&stdin) {
        return None;
    }
    let saved = termios::tcgetattr(&stdin).ok()?;
    let mut raw = saved.clone();
    // No line discipline, echo or signals; output processing (\n to
    // \r\n) stays on.
    raw.local_modes &=
        !(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG | LocalModes::IEXTEN);
    raw.input_modes &= !(termios::InputModes::ICRNL | termios::InputModes::IXON);
    raw.special_codes[termios::SpecialCodeIndex::VMIN] = 1;
    raw.special_codes[termios::SpecialCodeIndex::VTIME] = 0;
    termios::tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
    let guard = RawMode { saved };
    let flag = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel();
    let (f, b) = (flag.clone(), busy.clone());
    std::thread::Builder::new()
        .name("console-input".into())
        .spawn(move || pump(std::io::stdin(), &tx, &f, &b))
        .ok()?;
    Some((Editor::new(rx, flag, busy), guard))
}

/// Forwards bytes from `input` to `tx`; Ctrl-C while `busy` sets `flag`.
pub fn pump(mut input: impl Read, tx: &Sender<u8>, flag: &AtomicBool, busy: &AtomicBool) {
    let mut buf = [0u8; 256];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        for &b in &buf[..n] {
            if b == CTRL_C && busy.load(Ordering::Relaxed) {
                flag.store(true, Ordering::Relaxed);
                continue;
            }
            if tx.send(b).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An editor over `typed`, and what it printed for each line.
    fn edit(typed: &[u8], lines: usize) -> (Vec<Option<String>>, Editor) {
        let (tx, rx) = channel();
        let flag = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicBool::new(false));
        pump(typed, &tx, &flag, &busy);
        drop(tx);
        let mut e = Editor::new(rx, flag, busy);
        let mut out = Vec::new();
        let got = (0..lines).map(|_| e.read_line("> ", &mut out)).collect();
        (got, e)
    }

    #[test]
    fn editing_keys() {
        let (got, _) = edit(b"helo\x1b[Dl\x1b[F!\r", 1);
        assert_eq!(got, [Some("hello!".to_owned())]);
        let (got, _) = edit(b"world\x01hello \r", 1);
        assert_eq!(got, [Some("hello world".to_owned())]);
        let (got, _) = edit(b"abc\x7f\x7fz\r", 1);
        assert_eq!(got, [Some("az".to_owned())]);
        let (got, _) = edit(b"one two\x17three\r", 1);
        assert_eq!(got, [Some("one three".to_owned())]);
        let (got, _) = edit(b"junk\x15kept\r", 1);
        assert_eq!(got, [Some("kept".to_owned())]);
        let (got, _) = edit(b"abcd\x1b[D\x1b[D\x0b\r", 1);
        assert_eq!(got, [Some("ab".to_owned())]);
        let (got, _) = edit(b"ab\x1b[D\x1b[3~\r", 1);
        assert_eq!(got, [Some("a".to_owned())]);
        let (got, _) = edit("héllo ✓\r".as_bytes(), 1);
        assert_eq!(got, [Some("héllo ✓".to_owned())]);
        // A stray lead byte does not eat the Enter after it.
        let (got, _) = edit(b"ab\xc3\r", 1);
        assert_eq!(got, [Some("ab".to_owned())]);
    }

    #[test]
    fn enter_is_cr_lf_or_both() {
        let (got, _) = edit(b"a\r\nb\nc\r", 3);
        assert_eq!(got, [Some("a".into()), Some("b".into()), Some("c".into())]);
    }

    #[test]
    fn history_with_arrows() {
        let (got, e) = edit(
            b"first\rsecond\r\x1b[A\x1b[A\rdraft\x1b[A\x1b[B\r\x1b[Ax\r",
            5,
        );
        assert_eq!(
            got,
            [
                Some("first".into()),
                Some("second".into()),
                // Up twice: the line before the last.
                Some("first".into()),
                // Up then down: back to what was being typed.
                Some("draft".into()),
                // Up recalls the last line, which can be edited.
                Some("draftx".into()),
            ]
        );
        assert_eq!(e.history(), ["first", "second", "first", "draft", "draftx"]);
    }

    #[test]
    fn ctrl_c_clears_the_line_and_ctrl_d_ends() {
        let (got, _) = edit(b"oops\x03fine\r\x04", 2);
        assert_eq!(got, [Some("fine".into()), None]);
        // Ctrl-D inside a line does nothing.
        let (got, _) = edit(b"ab\x04c\r", 1);
        assert_eq!(got, [Some("abc".into())]);
    }

    #[test]
    fn ctrl_c_while_generating_sets_the_flag_only() {
        let (tx, rx) = channel();
        let flag = AtomicBool::new(false);
        let busy = AtomicBool::new(true);
        pump(&b"x\x03y"[..], &tx, &flag, &busy);
        drop(tx);
        assert!(flag.load(Ordering::Relaxed));
        assert_eq!(rx.iter().collect::<Vec<u8>>(), b"xy");
    }
}
