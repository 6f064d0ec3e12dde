//! Checked access to user memory.
//!
//! Every pointer a user program passes is a plain number until it goes
//! through here: [`UserSlice::new`] rejects ranges that wrap or reach into
//! kernel space (EFAULT), and the copies use `arch::usercopy`, which turns
//! unmapped or forbidden pages into EFAULT instead of a kernel fault. No
//! other kernel code dereferences user addresses.
//!
//! A program chooses how much it asks the kernel to move, so nothing here
//! copies a whole user range into one kernel allocation:
//! [`UserSlice::read_chunks`] and [`UserSlice::write_chunks`] move a range
//! through a bounce buffer of at most `kalloc::CHUNK` bytes, step by step,
//! and stop at the first fault with what was done so far (a short count,
//! as Linux returns). [`UserSlice::read_vec`] is for small, bounded
//! structures (iovec arrays, pollfds) and fails with ENOMEM rather than
//! allocating what the heap cannot spare.

use alloc::vec::Vec;

use kcore::elf::USER_END;
use kcore::errno::Errno;

use crate::arch::x86_64::usercopy::{copy_from_user, copy_to_user};

/// A validated user range `[addr, addr + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSlice {
    addr: u64,
    len: usize,
}

impl UserSlice {
    /// Checks that the range lies in user space; EFAULT otherwise.
    pub fn new(addr: u64, len: usize) -> Result<Self, Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if end > USER_END {
            return Err(Errno::EFAULT);
        }
        Ok(Self { addr, len })
    }

    /// The start address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the whole range into `buf` (whose length must match).
    pub fn read_into(&self, buf: &mut [u8]) -> Result<(), Errno> {
        debug_assert_eq!(buf.len(), self.len);
        let n = self.len.min(buf.len());
        if !crate::process::range_allows(self.addr, n as u64, false) {
            return Err(Errno::EFAULT);
        }
        copy_from_user(&mut buf[..n], self.addr).map_err(|_| Errno::EFAULT)
    }

    /// Copies the range into a new vector (for bounded structures; the
    /// allocation is fallible: ENOMEM).
    pub fn read_vec(&self) -> Result<Vec<u8>, Errno> {
        let mut v = super::kalloc::zeroed(self.len)?;
        self.read_into(&mut v)?;
        Ok(v)
    }

    /// The part `[off, off + len)` of the range (clipped to it).
    pub fn sub(&self, off: usize, len: usize) -> UserSlice {
        let off = off.min(self.len);
        UserSlice {
            addr: self.addr + off as u64,
            len: len.min(self.len - off),
        }
    }

    /// Runs `step(offset, len)` over the range in steps of at most `chunk`
    /// bytes while each returns `(moved, true)`; returns the bytes moved,
    /// or the error if the first step failed.
    fn in_steps(
        &self,
        chunk: usize,
        mut step: impl FnMut(usize, usize) -> Result<(usize, bool), Errno>,
    ) -> Result<usize, Errno> {
        let mut done = 0usize;
        while done < self.len {
            let n = (self.len - done).min(chunk);
            match step(done, n) {
                Ok((moved, more)) => {
                    done += moved;
                    if !more {
                        break;
                    }
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// Copies the range into the kernel step by step through `buf` (at
    /// most `buf.len()` bytes a step), handing each step's bytes to
    /// `consume`, which returns how many it took. Stops when `consume`
    /// takes fewer than it was given or fails, and after the last bytes
    /// before the first one the program cannot read (a partial step);
    /// returns the bytes taken, or the error if there were none (EFAULT if
    /// not even the first byte could be read).
    pub fn read_chunks(
        &self,
        buf: &mut [u8],
        mut consume: impl FnMut(&[u8]) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        self.in_steps(buf.len(), |done, n| {
            let got = self.sub(done, n).read_prefix(&mut buf[..n])?;
            let took = consume(&buf[..got])?.min(got);
            Ok((took, took == n))
        })
    }

    /// Fills the range from the kernel step by step: `produce` writes up
    /// to `buf.len()` bytes into the buffer and returns how many (fewer
    /// than asked, or 0, ends the copy), and they are copied out up to the
    /// first byte the program cannot write. Returns the bytes copied, or
    /// the error if there were none (EFAULT if not even the first byte
    /// could be written). Bytes produced past such a byte are lost (as
    /// in a Linux read that faults).
    pub fn write_chunks(
        &self,
        buf: &mut [u8],
        mut produce: impl FnMut(&mut [u8]) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        self.in_steps(buf.len(), |done, n| {
            let got = produce(&mut buf[..n])?.min(n);
            if got == 0 {
                return Ok((0, false));
            }
            let put = self.sub(done, got).write_prefix(&buf[..got])?;
            Ok((put, put == n))
        })
    }

    /// The start of the range the program may write, up to its first byte
    /// that it may not: EFAULT if that is the first (and the range is not
    /// empty). A read from a pipe or socket takes only what fits there,
    /// so nothing is consumed that cannot be delivered.
    pub fn writable_prefix(&self) -> Result<UserSlice, Errno> {
        let n = crate::process::allowed_prefix(self.addr, self.len as u64, true) as usize;
        if n == 0 && self.len > 0 {
            return Err(Errno::EFAULT);
        }
        Ok(self.sub(0, n))
    }

    /// Copies as much of the range into `buf` (at most its length) as the
    /// program's memory allows, up to the first byte it cannot read:
    /// returns the bytes copied, EFAULT if none.
    pub fn read_prefix(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = crate::process::allowed_prefix(self.addr, self.len.min(buf.len()) as u64, false);
        let n = n as usize;
        let copied = match copy_from_user(&mut buf[..n], self.addr) {
            Ok(()) => n,
            Err(f) => f.copied,
        };
        if copied == 0 && self.len > 0 && !buf.is_empty() {
            return Err(Errno::EFAULT);
        }
        Ok(copied)
    }

    /// Writes as much of `data` (at most the range's length) to the start
    /// of the range as the program's memory allows: returns the bytes
    /// written, EFAULT if none.
    pub fn write_prefix(&self, data: &[u8]) -> Result<usize, Errno> {
        let want = data.len().min(self.len);
        let n = crate::process::allowed_prefix(self.addr, want as u64, true) as usize;
        let copied = match copy_to_user(self.addr, &data[..n]) {
            Ok(()) => n,
            Err(f) => f.copied,
        };
        if copied == 0 && want > 0 {
            return Err(Errno::EFAULT);
        }
        Ok(copied)
    }

    /// Writes `data` (at most the range's length) to the start of the range.
    pub fn write(&self, data: &[u8]) -> Result<(), Errno> {
        let n = data.len().min(self.len);
        if !crate::process::range_allows(self.addr, n as u64, true) {
            return Err(Errno::EFAULT);
        }
        copy_to_user(self.addr, &data[..n]).map_err(|_| Errno::EFAULT)
    }
}

/// Reads a `u64` from user memory.
pub fn read_u64(addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    UserSlice::new(addr, 8)?.read_into(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Writes a `u64` to user memory.
pub fn write_u64(addr: u64, v: u64) -> Result<(), Errno> {
    UserSlice::new(addr, 8)?.write(&v.to_le_bytes())
}

/// Writes a `u32`/`i32` to user memory.
pub fn write_u32(addr: u64, v: u32) -> Result<(), Errno> {
    UserSlice::new(addr, 4)?.write(&v.to_le_bytes())
}

/// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
/// ENAMETOOLONG if no NUL comes within `max` bytes.
pub fn read_cstr(addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut at = addr;
    loop {
        // Copy up to the end of the page, so an unmapped next page only
        // matters if the string really continues there.
        let chunk = (4096 - (at % 4096)) as usize;
        let mut buf = [0u8; 4096];
        let s = UserSlice::new(at, chunk)?;
        s.read_into(&mut buf[..chunk])?;
        let (part, ends) = match buf[..chunk].iter().position(|&b| b == 0) {
            Some(nul) => (&buf[..nul], true),
            None => (&buf[..chunk], false),
        };
        if out.len() + part.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        super::kalloc::extend(&mut out, part)?;
        if ends {
            return Ok(out);
        }
        at += chunk as u64;
    }
}
