//! The console's line discipline (a small subset of Linux's n_tty).
//!
//! Input bytes from the serial port go through [`Tty::input`], which
//! returns what to echo and whether a signal was generated; programs read
//! from [`Tty::read`]. In canonical mode (the default) input is edited a
//! line at a time — backspace/DEL erase a character, Ctrl-U the line,
//! Ctrl-W a word — and becomes readable on Enter; Ctrl-D at the start of a
//! line is end-of-file, elsewhere it hands over the partial line. With
//! ISIG, Ctrl-C raises SIGINT and Ctrl-\ SIGQUIT. Raw mode (ICANON off,
//! set through TCSETS) passes bytes straight through, honouring VMIN.
//! Output processing turns `\n` into `\r\n` when OPOST|ONLCR are set.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// `termios` flag bits (the Linux values).
#[allow(missing_docs)]
pub mod flags {
    pub const ICRNL: u32 = 0o400;
    pub const IXON: u32 = 0o2000;
    pub const OPOST: u32 = 0o1;
    pub const ONLCR: u32 = 0o4;
    pub const ISIG: u32 = 0o1;
    pub const ICANON: u32 = 0o2;
    pub const ECHO: u32 = 0o10;
    pub const ECHOE: u32 = 0o20;
    pub const ECHOK: u32 = 0o40;
    pub const ECHOCTL: u32 = 0o1000;
    pub const ECHOKE: u32 = 0o4000;
    pub const IEXTEN: u32 = 0o100000;
    pub const CS8: u32 = 0o60;
    pub const CREAD: u32 = 0o200;
    pub const B115200: u32 = 0o10002;
}

/// Indices into `c_cc`.
#[allow(missing_docs)]
pub mod cc {
    pub const VINTR: usize = 0;
    pub const VQUIT: usize = 1;
    pub const VERASE: usize = 2;
    pub const VKILL: usize = 3;
    pub const VEOF: usize = 4;
    pub const VTIME: usize = 5;
    pub const VMIN: usize = 6;
    pub const VWERASE: usize = 14;
}

/// The kernel's `struct termios` (36 bytes on x86_64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    /// Input modes.
    pub iflag: u32,
    /// Output modes.
    pub oflag: u32,
    /// Control modes.
    pub cflag: u32,
    /// Local modes.
    pub lflag: u32,
    /// Line discipline.
    pub line: u8,
    /// Control characters.
    pub cc: [u8; 19],
}

/// Size of the wire format.
pub const TERMIOS_SIZE: usize = 36;

impl Default for Termios {
    /// What Linux gives a serial console (`stty sane`).
    fn default() -> Self {
        use flags::*;
        let mut c = [0u8; 19];
        c[cc::VINTR] = 0x03;
        c[cc::VQUIT] = 0x1c;
        c[cc::VERASE] = 0x7f;
        c[cc::VKILL] = 0x15;
        c[cc::VEOF] = 0x04;
        c[cc::VMIN] = 1;
        c[cc::VWERASE] = 0x17;
        Self {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B115200 | CS8 | CREAD,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc: c,
        }
    }
}

impl Termios {
    /// Encodes as the kernel ABI struct.
    pub fn to_bytes(&self) -> [u8; TERMIOS_SIZE] {
        let mut b = [0u8; TERMIOS_SIZE];
        b[0..4].copy_from_slice(&self.iflag.to_le_bytes());
        b[4..8].copy_from_slice(&self.oflag.to_le_bytes());
        b[8..12].copy_from_slice(&self.cflag.to_le_bytes());
        b[12..16].copy_from_slice(&self.lflag.to_le_bytes());
        b[16] = self.line;
        b[17..36].copy_from_slice(&self.cc);
        b
    }

    /// Decodes the kernel ABI struct.
    pub fn from_bytes(b: &[u8; TERMIOS_SIZE]) -> Self {
        let w = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mut cc = [0u8; 19];
        cc.copy_from_slice(&b[17..36]);
        Self {
            iflag: w(0),
            oflag: w(4),
            cflag: w(8),
            lflag: w(12),
            line: b[16],
            cc,
        }
    }

    fn has_l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }
}

/// A signal the line discipline raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C.
    Int,
    /// Ctrl-\.
    Quit,
}

/// The result of reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Bytes for the program.
    Data(Vec<u8>),
    /// End of file (Ctrl-D at the start of a line): read returns 0.
    Eof,
    /// Nothing yet; the reader must wait.
    WouldBlock,
}

/// Most bytes in the edit buffer (Linux's N_TTY_BUF_SIZE is 4096).
pub const MAX_LINE: usize = 4095;

/// Terminal state.
#[derive(Debug, Clone, Default)]
pub struct Tty {
    /// Current settings.
    pub termios: Termios,
    /// Window size (rows, cols) for TIOCGWINSZ.
    pub winsize: (u16, u16),
    line: Vec<u8>,
    ready: VecDeque<u8>,
    eof: usize,
}

impl Tty {
    /// A terminal with default settings and a 24x80 window.
    pub fn new() -> Self {
        Self {
            winsize: (24, 80),
            ..Self::default()
        }
    }

    /// Bytes a read could take now (FIONREAD, poll).
    pub fn readable(&self) -> usize {
        self.ready.len()
    }

    /// Whether a read would return without waiting.
    pub fn can_read(&self) -> bool {
        !self.ready.is_empty()
            || self.eof > 0
            || (!self.termios.has_l(flags::ICANON) && self.termios.cc[cc::VMIN] == 0)
    }

    fn echo_char(&self, b: u8, echo: &mut Vec<u8>) {
        if !self.termios.has_l(flags::ECHO) {
            return;
        }
        if b < 0x20 && b != b'\n' && b != b'\t' && self.termios.has_l(flags::ECHOCTL) {
            echo.extend_from_slice(&[b'^', b + 0x40]);
        } else if b == 0x7f && self.termios.has_l(flags::ECHOCTL) {
            echo.extend_from_slice(b"^?");
        } else {
            echo.push(b);
        }
    }

    fn erase_one(&mut self, echo: &mut Vec<u8>) -> bool {
        match self.line.pop() {
            Some(b) => {
                if self.termios.has_l(flags::ECHO) && self.termios.has_l(flags::ECHOE) {
                    let width = if b < 0x20 && self.termios.has_l(flags::ECHOCTL) {
                        2
                    } else {
                        1
                    };
                    for _ in 0..width {
                        echo.extend_from_slice(b"\x08 \x08");
                    }
                }
                true
            }
            None => false,
        }
    }

    /// Feeds one input byte. Returns the bytes to echo and a signal, if
    /// the byte generated one.
    pub fn input(&mut self, mut b: u8) -> (Vec<u8>, Option<Signal>) {
        let t = self.termios;
        let mut echo = Vec::new();
        if b == b'\r' && t.iflag & flags::ICRNL != 0 {
            b = b'\n';
        }
        if t.has_l(flags::ISIG) {
            let sig = if b == t.cc[cc::VINTR] {
                Some(Signal::Int)
            } else if b == t.cc[cc::VQUIT] {
                Some(Signal::Quit)
            } else {
                None
            };
            if let Some(s) = sig {
                self.echo_char(b, &mut echo);
                if t.has_l(flags::ECHO) {
                    echo.push(b'\n');
                }
                self.line.clear();
                self.ready.clear();
                return (echo, Some(s));
            }
        }
        if !t.has_l(flags::ICANON) {
            self.ready.push_back(b);
            self.echo_char(b, &mut echo);
            return (echo, None);
        }
        if b == t.cc[cc::VERASE] || b == 0x08 {
            self.erase_one(&mut echo);
        } else if b == t.cc[cc::VKILL] {
            while self.erase_one(&mut echo) {}
        } else if b == t.cc[cc::VWERASE] && t.has_l(flags::IEXTEN) {
            while self.line.last() == Some(&b' ') && self.erase_one(&mut echo) {}
            while self.line.last().is_some_and(|&c| c != b' ') && self.erase_one(&mut echo) {}
        } else if b == t.cc[cc::VEOF] {
            if self.line.is_empty() {
                self.eof += 1;
            } else {
                self.ready.extend(self.line.drain(..));
            }
        } else if b == b'\n' {
            self.line.push(b'\n');
            self.ready.extend(self.line.drain(..));
            self.echo_char(b'\n', &mut echo);
        } else if self.line.len() < MAX_LINE {
            self.line.push(b);
            self.echo_char(b, &mut echo);
        } else {
            echo.push(0x07); // bell: line full
        }
        (echo, None)
    }

    /// Takes up to `max` bytes for a program. In canonical mode a read
    /// returns at most one line.
    pub fn read(&mut self, max: usize) -> Read {
        if max == 0 {
            return Read::Data(Vec::new());
        }
        if self.ready.is_empty() {
            if self.eof > 0 {
                self.eof -= 1;
                return Read::Eof;
            }
            if !self.termios.has_l(flags::ICANON) && self.termios.cc[cc::VMIN] == 0 {
                return Read::Data(Vec::new());
            }
            return Read::WouldBlock;
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(b) = self.ready.pop_front() else {
                break;
            };
            out.push(b);
            if b == b'\n' && self.termios.has_l(flags::ICANON) {
                break;
            }
        }
        Read::Data(out)
    }

    /// Output processing: appends `data` to `out` as the terminal shows it.
    pub fn output(&self, data: &[u8], out: &mut Vec<u8>) {
        let t = self.termios;
        if t.oflag & flags::OPOST != 0 && t.oflag & flags::ONLCR != 0 {
            for &b in data {
                if b == b'\n' {
                    out.extend_from_slice(b"\r\n");
                } else {
                    out.push(b);
                }
            }
        } else {
            out.extend_from_slice(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut Tty, s: &[u8]) -> (Vec<u8>, Vec<Signal>) {
        let mut echo = Vec::new();
        let mut sigs = Vec::new();
        for &b in s {
            let (e, sig) = t.input(b);
            echo.extend(e);
            sigs.extend(sig);
        }
        (echo, sigs)
    }

    fn data(r: Read) -> Vec<u8> {
        match r {
            Read::Data(d) => d,
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn canonical_line_with_echo_and_cr() {
        let mut t = Tty::new();
        let (echo, _) = feed(&mut t, b"hi");
        assert_eq!(echo, b"hi");
        assert_eq!(t.read(100), Read::WouldBlock, "no line yet");
        let (echo, _) = feed(&mut t, b"\r");
        assert_eq!(echo, b"\n");
        assert_eq!(data(t.read(100)), b"hi\n");
        assert_eq!(t.read(100), Read::WouldBlock);
    }

    #[test]
    fn editing_keys() {
        let mut t = Tty::new();
        let (echo, _) = feed(&mut t, b"hexy\x7f\x7fllo");
        assert_eq!(echo, b"hexy\x08 \x08\x08 \x08llo");
        feed(&mut t, b"\n");
        assert_eq!(data(t.read(100)), b"hello\n");
        feed(&mut t, b"junk\x15ok\n");
        assert_eq!(data(t.read(100)), b"ok\n", "Ctrl-U kills the line");
        feed(&mut t, b"one two\x17three\n");
        assert_eq!(data(t.read(100)), b"one three\n", "Ctrl-W erases a word");
        let (echo, _) = feed(&mut t, b"\x7f");
        assert_eq!(echo, b"", "erasing an empty line echoes nothing");
    }

    #[test]
    fn reads_stop_at_line_ends_and_respect_max() {
        let mut t = Tty::new();
        feed(&mut t, b"ab\ncd\n");
        assert_eq!(data(t.read(1)), b"a");
        assert_eq!(data(t.read(100)), b"b\n");
        assert_eq!(data(t.read(100)), b"cd\n");
    }

    #[test]
    fn ctrl_d_is_eof_at_line_start_and_flush_elsewhere() {
        let mut t = Tty::new();
        feed(&mut t, b"\x04");
        assert_eq!(t.read(10), Read::Eof);
        assert_eq!(t.read(10), Read::WouldBlock);
        feed(&mut t, b"abc\x04");
        assert_eq!(data(t.read(10)), b"abc");
    }

    #[test]
    fn ctrl_c_raises_sigint_and_discards_input() {
        let mut t = Tty::new();
        let (echo, sigs) = feed(&mut t, b"partial\x03");
        assert_eq!(sigs, [Signal::Int]);
        assert!(echo.ends_with(b"^C\n"));
        assert_eq!(t.read(10), Read::WouldBlock);
        let (_, sigs) = feed(&mut t, b"\x1c");
        assert_eq!(sigs, [Signal::Quit]);
    }

    #[test]
    fn raw_mode_passes_bytes_through() {
        let mut t = Tty::new();
        t.termios.lflag &= !(flags::ICANON | flags::ISIG | flags::ECHO);
        let (echo, sigs) = feed(&mut t, b"a\x03\x7f");
        assert!(echo.is_empty() && sigs.is_empty());
        assert_eq!(data(t.read(10)), b"a\x03\x7f");
        assert_eq!(t.read(10), Read::WouldBlock, "VMIN=1 waits");
        t.termios.cc[cc::VMIN] = 0;
        assert_eq!(data(t.read(10)), b"", "VMIN=0 returns at once");
    }

    #[test]
    fn output_processing() {
        let mut t = Tty::new();
        let mut out = Vec::new();
        t.output(b"a\nb", &mut out);
        assert_eq!(out, b"a\r\nb");
        t.termios.oflag = 0;
        out.clear();
        t.output(b"a\nb", &mut out);
        assert_eq!(out, b"a\nb");
    }

    #[test]
    fn termios_roundtrip_and_defaults() {
        let t = Termios::default();
        assert_eq!(Termios::from_bytes(&t.to_bytes()), t);
        assert_eq!(t.to_bytes().len(), 36);
        assert_eq!(t.lflag & flags::ICANON, flags::ICANON);
    }

    #[test]
    fn line_length_is_bounded() {
        let mut t = Tty::new();
        let long = alloc::vec![b'x'; MAX_LINE + 10];
        let (echo, _) = feed(&mut t, &long);
        assert_eq!(echo.iter().filter(|&&b| b == 0x07).count(), 10);
        feed(&mut t, b"\n");
        assert_eq!(data(t.read(10_000)).len(), MAX_LINE + 1);
    }
}
