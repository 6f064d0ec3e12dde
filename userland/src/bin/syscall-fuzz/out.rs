//! Output that allocates nothing: lines are formatted into a buffer on the
//! stack and written with one raw `write(2)` to the report descriptor.
//! (The heap is off limits while fuzzing: a large allocation would be
//! mmapped, possibly into a hole of the arena that random calls unmap.)

use core::fmt;

use llmos_userland::syscall6;

/// The descriptor reports go to: a duplicate of the console made before
/// fds 0–2 are closed, far above the numbers the fuzzer picks.
pub const OUT_FD: u64 = 1000;

/// One line of at most 1 KiB (longer text is cut).
pub struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl Line {
    /// An empty line.
    pub fn new() -> Self {
        Self {
            buf: [0; 1024],
            len: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Writes the line and a newline to `fd`.
    pub fn emit_to(mut self, fd: u64) {
        if self.len == self.buf.len() {
            self.len -= 1;
        }
        self.buf[self.len] = b'\n';
        self.len += 1;
        let mut done = 0;
        while done < self.len {
            let r = syscall6(
                1,
                [
                    fd,
                    self.buf[done..].as_ptr() as u64,
                    (self.len - done) as u64,
                    0,
                    0,
                    0,
                ],
            );
            if r <= 0 {
                return;
            }
            done += r as usize;
        }
    }

    /// Writes the line to the report descriptor.
    pub fn emit(self) {
        self.emit_to(OUT_FD);
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Formats and emits one report line.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut l = $crate::out::Line::new();
        let _ = core::fmt::Write::write_fmt(&mut l, format_args!($($arg)*));
        l.emit();
    }};
}
