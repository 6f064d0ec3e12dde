//! Checked access to user memory.
//!
//! Every pointer a user program passes is a plain number until it goes
//! through here: [`UserSlice::new`] rejects ranges that wrap or reach into
//! kernel space (EFAULT), and the copies use `arch::usercopy`, which turns
//! unmapped or forbidden pages into EFAULT instead of a kernel fault. No
//! other kernel code dereferences user addresses.

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

    /// Copies the range into a new vector.
    pub fn read_vec(&self) -> Result<Vec<u8>, Errno> {
        let mut v = alloc::vec![0u8; self.len];
        self.read_into(&mut v)?;
        Ok(v)
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
        if let Some(nul) = buf[..chunk].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..nul]);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            return Ok(out);
        }
        out.extend_from_slice(&buf[..chunk]);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        at += chunk as u64;
    }
}
