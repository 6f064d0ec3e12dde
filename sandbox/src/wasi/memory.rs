//! Guest memory for host functions, all access bounds-checked in one
//! place: [`with`] hands a function body the caller's linear memory as a
//! [`Mem`] (after the wall-clock check every call makes), and [`Mem`]
//! reads and writes pointers, integers, paths, iovec arrays and the
//! `args`/`environ` lists. A pointer outside linear memory is `FAULT`.

use std::time::Instant;

use wasmi::{Caller, Error, Extern};

use super::{Ctx, Stop};
use crate::Limit;
use crate::errno::{self, Errno};
use crate::vfs::MAX_PATH;

/// Linear memory with checked access.
pub(super) struct Mem<'a>(&'a mut [u8]);

/// The most iovecs one call may pass.
const MAX_IOVS: i32 = 1024;

impl Mem<'_> {
    /// `len` bytes at `ptr`.
    pub(super) fn slice(&self, ptr: i32, len: u32) -> Result<&[u8], Errno> {
        let start = ptr as u32 as usize;
        self.0
            .get(start..start.checked_add(len as usize).ok_or(errno::FAULT)?)
            .ok_or(errno::FAULT)
    }

    /// `len` writable bytes at `ptr`.
    pub(super) fn slice_mut(&mut self, ptr: i32, len: u32) -> Result<&mut [u8], Errno> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len as usize).ok_or(errno::FAULT)?;
        self.0.get_mut(start..end).ok_or(errno::FAULT)
    }

    /// A little-endian `u32` at `ptr`.
    pub(super) fn u32(&self, ptr: i32) -> Result<u32, Errno> {
        let b = self.slice(ptr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Writes `data` at `ptr`.
    pub(super) fn put(&mut self, ptr: i32, data: &[u8]) -> Result<(), Errno> {
        self.slice_mut(ptr, data.len() as u32)?
            .copy_from_slice(data);
        Ok(())
    }

    /// Writes a little-endian `u32` at `ptr`.
    pub(super) fn put_u32(&mut self, ptr: i32, v: u32) -> Result<(), Errno> {
        self.put(ptr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u64` at `ptr`.
    pub(super) fn put_u64(&mut self, ptr: i32, v: u64) -> Result<(), Errno> {
        self.put(ptr, &v.to_le_bytes())
    }

    /// A path (at most [`MAX_PATH`] bytes, refused before it is copied).
    pub(super) fn str(&self, ptr: i32, len: i32) -> Result<String, Errno> {
        if len as u32 as usize > MAX_PATH {
            return Err(errno::NAMETOOLONG);
        }
        let b = self.slice(ptr, len as u32)?;
        String::from_utf8(b.to_vec()).map_err(|_| errno::INVAL)
    }

    /// The (pointer, length) pairs of an iovec array.
    pub(super) fn iovs(&self, iovs: i32, n: i32) -> Result<Vec<(i32, u32)>, Errno> {
        if !(0..=MAX_IOVS).contains(&n) {
            return Err(errno::INVAL);
        }
        (0..n)
            .map(|i| {
                let at = (iovs as u32)
                    .checked_add(8 * i as u32)
                    .ok_or(errno::FAULT)? as i32;
                Ok((self.u32(at)? as i32, self.u32(at + 4)?))
            })
            .collect()
    }

    /// The count of `list` at `n` and the bytes its strings take with
    /// their NULs at `size` (`args_sizes_get`, `environ_sizes_get`).
    pub(super) fn put_sizes(&mut self, list: &[Vec<u8>], n: i32, size: i32) -> Result<(), Errno> {
        self.put_u32(n, list.len() as u32)?;
        self.put_u32(size, list.iter().map(|a| a.len() as u32 + 1).sum())
    }

    /// `list` as NUL-terminated strings from `buf`, with a pointer to each
    /// in the array at `ptrs` (`args_get`, `environ_get`).
    pub(super) fn put_list(&mut self, list: &[Vec<u8>], ptrs: i32, buf: i32) -> Result<(), Errno> {
        let mut at = buf as u32;
        for (i, a) in list.iter().enumerate() {
            self.put_u32((ptrs as u32).wrapping_add(4 * i as u32) as i32, at)?;
            self.put(at as i32, a)?;
            self.put(at.wrapping_add(a.len() as u32) as i32, &[0])?;
            at += a.len() as u32 + 1;
        }
        Ok(())
    }
}

/// The result of a host function body: an errno, or a stop.
pub(super) type Ret = Result<Errno, Error>;

/// Runs `f` with the guest's memory and the run's state.
pub(super) fn with(
    caller: &mut Caller<'_, Ctx>,
    f: impl FnOnce(&mut Mem<'_>, &mut Ctx) -> Ret,
) -> Result<i32, Error> {
    // Host calls use almost no fuel; the deadline is checked here too.
    if Instant::now() >= caller.data().deadline {
        return Err(Error::host(Stop(Limit::WallClock)));
    }
    let mem = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| Error::new("the module exports no memory named \"memory\""))?;
    let (data, ctx) = mem.data_and_store_mut(caller);
    f(&mut Mem(data), ctx).map(i32::from)
}

/// A body's `Result` as its errno.
pub(super) fn ok(r: Result<(), Errno>) -> Ret {
    Ok(r.err().unwrap_or(errno::SUCCESS))
}
