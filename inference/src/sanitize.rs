//! Text from a model, a sandbox run or an app, made safe to show on a
//! terminal.
//!
//! A terminal obeys the control characters it is sent: a reply or a
//! program's output could move the cursor, erase lines, rewrite the title
//! or hide text, above all in the code the console shows before "run it?
//! [y/N]". Everything such a source prints passes through here: C0 controls
//! (but newline and tab) and DEL are shown in caret notation (`^[`, `^M`,
//! `^?`), C1 controls and the Unicode bidirectional controls (the "Trojan
//! Source" characters) as `<U+009B>`, and bytes that are not UTF-8 as
//! `\xNN`. The person at the console sees every character there is.

use std::borrow::Cow;
use std::io::Write;

/// Whether `c` must not reach a terminal as it is.
fn hidden(c: char) -> bool {
    let u = c as u32;
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(u, 0x061c | 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069)
}

fn push_visible(out: &mut String, c: char) {
    let u = c as u32;
    match u {
        0x00..=0x1f => {
            out.push('^');
            out.push(char::from(b'@' + u as u8));
        }
        0x7f => out.push_str("^?"),
        _ => out.push_str(&format!("<U+{u:04X}>")),
    }
}

/// `s` with every control character made visible (see the module).
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Bytes as visible text: valid UTF-8 through [`visible`], other bytes as
/// `\xNN`.
pub fn visible_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(&visible(chunk.valid()));
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02X}"));
        }
    }
    out
}

/// A writer that shows what passes through it visibly. A character split
/// across writes is held until it is whole; what is left unfinished at
/// the end is shown as bytes when the writer is dropped.
pub struct Clean<'a> {
    out: &'a mut dyn Write,
    tail: Vec<u8>,
}

impl<'a> Clean<'a> {
    /// Writes to `out`.
    pub fn new(out: &'a mut dyn Write) -> Self {
        Self {
            out,
            tail: Vec::new(),
        }
    }
}

/// How many bytes at the end of `b` may begin an unfinished UTF-8
/// character.
fn unfinished(b: &[u8]) -> usize {
    for n in 1..=3.min(b.len()) {
        let x = b[b.len() - n];
        let need = match x {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            0x80..=0xbf => continue,
            _ => return 0,
        };
        return if need > n { n } else { 0 };
    }
    0
}

impl Write for Clean<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.tail.extend_from_slice(b);
        let keep = unfinished(&self.tail);
        let ready = self.tail.len() - keep;
        let text = visible_bytes(&self.tail[..ready]);
        self.tail.drain(..ready);
        self.out.write_all(text.as_bytes())?;
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Drop for Clean<'_> {
    fn drop(&mut self) {
        if !self.tail.is_empty() {
            let text = visible_bytes(&self.tail);
            let _ = self.out.write_all(text.as_bytes());
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No byte a terminal would act on, but newline and tab.
    fn inert(s: &str) -> bool {
        !s.chars().any(hidden)
    }

    #[test]
    fn controls_are_shown_not_obeyed() {
        assert_eq!(visible("plain\ttext\n"), "plain\ttext\n");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(visible("a\x1b[2Kb"), "a^[[2Kb");
        assert_eq!(visible("line\rover"), "line^Mover");
        assert_eq!(visible("\x00\x07\x08\x7f"), "^@^G^H^?");
        assert_eq!(visible("\u{9b}31m"), "<U+009B>31m");
        assert_eq!(visible("x\u{202e}y\u{2066}"), "x<U+202E>y<U+2066>");
        assert_eq!(visible("é ☃ 𝄞"), "é ☃ 𝄞");
        assert_eq!(visible_bytes(b"ok\xff\x9b\x1b"), "ok\\xFF\\x9B^[");
    }

    #[test]
    fn a_stream_split_anywhere_comes_out_the_same() {
        let text = "red \x1b[31mhidden\x1b[0m\r\u{9b}2J é😀\u{202e}end\n".as_bytes();
        let whole = visible_bytes(text);
        assert!(inert(&whole), "{whole:?}");
        for size in 1..6 {
            let mut out = Vec::new();
            {
                let mut c = Clean::new(&mut out);
                for part in text.chunks(size) {
                    c.write_all(part).unwrap();
                }
            }
            assert_eq!(String::from_utf8(out).unwrap(), whole, "chunks of {size}");
        }
        // An unfinished character at the end is shown as its bytes.
        let mut out = Vec::new();
        drop({
            let mut c = Clean::new(&mut out);
            c.write_all(b"x\xe2\x82").unwrap();
            c
        });
        assert_eq!(String::from_utf8(out).unwrap(), "x\\xE2\\x82");
    }
}
