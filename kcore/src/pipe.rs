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
//!
//! Memory: reads copy into the caller's buffer (nothing is allocated), the
//! buffer is reserved in one fallible step on the first write after the
//! pipe was empty (ENOMEM when the allocator refuses; the kernel checks
//! its headroom first, see [`Pipe::needs_buffer`]) and released when a
//! read empties the pipe, so an idle pipe holds no memory.

use alloc::collections::VecDeque;

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

    /// Moves up to `out.len()` bytes into `out`; `Ready(n)` with the count
    /// (0 at end of file or for an empty `out`).
    pub fn read(&mut self, out: &mut [u8]) -> Io<usize> {
        if self.buf.is_empty() {
            if self.writers == 0 || out.is_empty() {
                return Io::Ready(0);
            }
            return Io::WouldBlock;
        }
        let n = out.len().min(self.buf.len());
        for (o, b) in out.iter_mut().zip(self.buf.drain(..n)) {
            *o = b;
        }
        if self.buf.is_empty() {
            self.buf = VecDeque::new();
        }
        Io::Ready(n)
    }

    /// Whether the next write must first reserve the pipe's buffer
    /// ([`CAPACITY`] bytes).
    pub fn needs_buffer(&self) -> bool {
        self.buf.capacity() < CAPACITY
    }

    /// Appends what fits of `data`; `Ok(Ready(n))` with `n` bytes taken.
    /// ENOMEM if the buffer cannot be reserved.
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
        if self.needs_buffer() {
            self.buf
                .try_reserve_exact(CAPACITY - self.buf.len())
                .map_err(|_| Errno::ENOMEM)?;
        }
        let n = room.min(data.len());
        self.buf.extend(&data[..n]);
        Ok(Io::Ready(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads up to `max` bytes into a new vector (test helper).
    fn take(p: &mut Pipe, max: usize) -> Io<alloc::vec::Vec<u8>> {
        let mut out = alloc::vec![0; max];
        match p.read(&mut out) {
            Io::Ready(n) => {
                out.truncate(n);
                Io::Ready(out)
            }
            Io::WouldBlock => Io::WouldBlock,
        }
    }

    #[test]
    fn read_write_eof() {
        let mut p = Pipe::new();
        assert_eq!(take(&mut p, 10), Io::WouldBlock);
        assert!(p.needs_buffer());
        assert_eq!(p.write(b"hello"), Ok(Io::Ready(5)));
        assert!(!p.needs_buffer());
        assert!(p.readable());
        assert_eq!(take(&mut p, 3), Io::Ready(b"hel".to_vec()));
        assert_eq!(take(&mut p, 10), Io::Ready(b"lo".to_vec()));
        // Emptied: the buffer is given back.
        assert!(p.needs_buffer());
        p.writers = 0;
        assert_eq!(take(&mut p, 10), Io::Ready(alloc::vec::Vec::new()));
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
        let Io::Ready(d) = take(&mut p, CAPACITY + 1) else {
            panic!("readable")
        };
        assert_eq!(d.len(), CAPACITY);
        assert!(p.is_empty() && p.writable());
    }
}
