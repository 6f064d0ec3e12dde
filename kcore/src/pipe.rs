//! The buffer behind pipe(2): a bounded byte queue with reader and writer
//! counts and Linux's rules.
//!
//! - A read returns what is buffered (up to the request); on an empty
//!   pipe it returns end-of-file (0) once no writer is left, and otherwise
//!   would block.
//! - A write with no reader left fails with EPIPE (the caller raises
//!   SIGPIPE). Writes of at most [`PIPE_BUF`] bytes are atomic: they wait
//!   until all of them fit. Larger writes take what fits and would block
//!   for the rest.
//!
//! Blocking itself belongs to the kernel; these calls report
//! [`Io::WouldBlock`] instead.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::errno::Errno;

/// Bytes a pipe holds (Linux's default: 16 pages).
pub const CAPACITY: usize = 64 * 1024;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;

/// A non-blocking step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io<T> {
    /// Done.
    Ready(T),
    /// Nothing can happen yet: wait for the other end.
    WouldBlock,
}

/// The pipe's state.
#[derive(Debug, Clone)]
pub struct Pipe {
    buf: VecDeque<u8>,
    /// Open read ends.
    pub readers: u32,
    /// Open write ends.
    pub writers: u32,
}

impl Default for Pipe {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipe {
    /// A pipe with one reader and one writer.
    pub fn new() -> Self {
        Self {
            buf: VecDeque::new(),
            readers: 1,
            writers: 1,
        }
    }

    /// Bytes buffered (FIONREAD).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether a read would not block (data, or end-of-file).
    pub fn readable(&self) -> bool {
        !self.buf.is_empty() || self.writers == 0
    }

    /// Whether a write would not block (room for an atomic write, or no
    /// reader so it fails at once).
    pub fn writable(&self) -> bool {
        self.readers == 0 || CAPACITY - self.buf.len() >= PIPE_BUF
    }

    /// Takes up to `max` bytes.
    pub fn read(&mut self, max: usize) -> Io<Vec<u8>> {
        if self.buf.is_empty() {
            if self.writers == 0 || max == 0 {
                return Io::Ready(Vec::new());
            }
            return Io::WouldBlock;
        }
        let n = max.min(self.buf.len());
        Io::Ready(self.buf.drain(..n).collect())
    }

    /// Appends what fits of `data`; `Ok(Ready(n))` with `n` bytes taken.
    pub fn write(&mut self, data: &[u8]) -> Result<Io<usize>, Errno> {
        if self.readers == 0 {
            return Err(Errno::EPIPE);
        }
        if data.is_empty() {
            return Ok(Io::Ready(0));
        }
        let room = CAPACITY - self.buf.len();
        if (data.len() <= PIPE_BUF && room < data.len()) || room == 0 {
            return Ok(Io::WouldBlock);
        }
        let n = room.min(data.len());
        self.buf.extend(&data[..n]);
        Ok(Io::Ready(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_eof() {
        let mut p = Pipe::new();
        assert_eq!(p.read(10), Io::WouldBlock);
        assert_eq!(p.write(b"hello"), Ok(Io::Ready(5)));
        assert!(p.readable());
        assert_eq!(p.read(3), Io::Ready(b"hel".to_vec()));
        assert_eq!(p.read(10), Io::Ready(b"lo".to_vec()));
        p.writers = 0;
        assert_eq!(p.read(10), Io::Ready(Vec::new()));
    }

    #[test]
    fn epipe_without_readers() {
        let mut p = Pipe::new();
        p.readers = 0;
        assert_eq!(p.write(b"x"), Err(Errno::EPIPE));
        assert!(p.writable());
    }

    #[test]
    fn atomic_small_writes_and_partial_large_ones() {
        let mut p = Pipe::new();
        let big = alloc::vec![7u8; CAPACITY - 100];
        assert_eq!(p.write(&big), Ok(Io::Ready(CAPACITY - 100)));
        assert!(!p.writable());
        // 200 bytes do not fit atomically.
        assert_eq!(p.write(&[1; 200]), Ok(Io::WouldBlock));
        // A large write takes what fits.
        assert_eq!(p.write(&[1; 10_000]), Ok(Io::Ready(100)));
        assert_eq!(p.write(&[1; 10_000]), Ok(Io::WouldBlock));
        assert_eq!(p.len(), CAPACITY);
        let Io::Ready(d) = p.read(usize::MAX) else {
            panic!("readable")
        };
        assert_eq!(d.len(), CAPACITY);
        assert!(p.is_empty() && p.writable());
    }
}
