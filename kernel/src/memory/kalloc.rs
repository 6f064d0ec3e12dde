//! Allocations the kernel makes on a program's behalf: fallible, and kept
//! out of the frame reserve.
//!
//! A syscall must never make the kernel allocate an amount a program chose
//! before it is checked, and must never reach the global allocator's
//! failure path (a panic): buffers sized by a program, pipe buffers, file
//! data, descriptors and threads go through [`headroom`] first and
//! through `try_reserve` after it, so running out of memory is ENOMEM.
//!
//! [`headroom`] refuses what the heap cannot serve from its free space
//! unless the frames left afterwards stay above half the reserve
//! (`frames::reserve`): user pages stop at the whole reserve, allocations
//! for programs at half of it, and the other half is for what the kernel
//! needs to keep going (its own bookkeeping, kernel stacks, page tables,
//! network buffers). The check and the allocation are not one atomic step,
//! so concurrent calls may overshoot the line by what they allocate, which
//! the callers bound (a bounce buffer is at most [`CHUNK`]).

use alloc::vec::Vec;

use kcore::errno::Errno;

use super::{frames, heap};

/// The largest step in which a syscall moves data between user memory and
/// the kernel (and the largest bounce buffer it allocates).
pub const CHUNK: usize = 64 * 1024;

/// Kept free in the heap on top of a request before it counts as served
/// from free space (fragmentation).
const SLACK: u64 = 256 * 1024;

/// Whether the kernel may allocate `bytes` more for a program: ENOMEM if
/// that would take frames from the lower half of the reserve.
pub fn headroom(bytes: usize) -> Result<(), Errno> {
    let bytes = bytes as u64;
    let h = heap::stats();
    if h.mapped.saturating_sub(h.used) >= bytes.saturating_add(SLACK) {
        return Ok(());
    }
    let pages = bytes.div_ceil(4096) + 512;
    if frames::free_frames() >= frames::reserve() / 2 + pages {
        Ok(())
    } else {
        Err(Errno::ENOMEM)
    }
}

/// A zeroed buffer of `len` bytes, or ENOMEM.
pub fn zeroed(len: usize) -> Result<Vec<u8>, Errno> {
    let mut v = with_capacity(len)?;
    v.resize(len, 0);
    Ok(v)
}

/// An empty vector with room for `n` elements, or ENOMEM.
pub fn with_capacity<T>(n: usize) -> Result<Vec<T>, Errno> {
    let mut v = Vec::new();
    reserve(&mut v, n)?;
    Ok(v)
}

/// Makes room in `v` for `more` elements, or ENOMEM.
pub fn reserve<T>(v: &mut Vec<T>, more: usize) -> Result<(), Errno> {
    let bytes = more
        .checked_mul(core::mem::size_of::<T>())
        .ok_or(Errno::ENOMEM)?;
    if v.capacity() - v.len() < more {
        headroom(bytes)?;
    }
    v.try_reserve_exact(more).map_err(|_| Errno::ENOMEM)
}

/// Appends `x` to `v`, or ENOMEM.
pub fn push<T>(v: &mut Vec<T>, x: T) -> Result<(), Errno> {
    if v.len() == v.capacity() {
        let more = v.capacity().max(4);
        reserve(v, more)?;
    }
    v.push(x);
    Ok(())
}

/// Appends `data` to `v`, or ENOMEM.
pub fn extend(v: &mut Vec<u8>, data: &[u8]) -> Result<(), Errno> {
    reserve(v, data.len())?;
    v.extend_from_slice(data);
    Ok(())
}

/// A bounce buffer for moving `len` bytes in steps: `min(len, CHUNK)`
/// bytes (at least one), zeroed, or ENOMEM.
pub fn bounce(len: usize) -> Result<Vec<u8>, Errno> {
    zeroed(len.clamp(1, CHUNK))
}
