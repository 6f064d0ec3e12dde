//! Memory syscalls: mmap, munmap, mprotect, brk, mremap, madvise.
//!
//! The VMA map decides what is legal; page tables follow. Anonymous memory
//! is demand-paged (zeroed on first touch), except with MAP_POPULATE.
//! File mappings are demand-paged from the file (`crate::filemap`): initrd
//! pages are mapped in place without copying.

use kcore::elf::{PAGE, USER_END};
use kcore::errno::Errno;
use kcore::vma::{FileMap, Kind, Prot, Vma, VmaError};

use super::SysResult;
use crate::process::{MM, MMAP_MIN, Mm, STACK_GUARD_GAP};

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_POPULATE: u64 = 0x8000;
const MAP_STACK: u64 = 0x20000;
const MAP_HUGETLB: u64 = 0x40000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

fn page_up(len: u64) -> Result<u64, Errno> {
    len.checked_add(PAGE - 1)
        .map(|v| v & !(PAGE - 1))
        .ok_or(Errno::ENOMEM)
}

/// Runs `f` on the address space, then — with the lock released — flushes
/// other CPUs' TLBs and frees unmapped frames if `f` removed or downgraded
/// mappings.
fn with_mm<R>(f: impl FnOnce(&mut Mm) -> Result<R, Errno>) -> Result<R, Errno> {
    let (result, stale, files) = {
        let mut g = MM.lock();
        let mm = g.as_mut().ok_or(Errno::ENOMEM)?;
        let r = f(mm);
        (
            r,
            mm.aspace.take_stale(),
            core::mem::take(&mut mm.file_releases),
        )
    };
    stale.finish();
    for (ino, pages) in files {
        crate::filemap::release(ino, pages);
    }
    result
}

/// Removes `[start, end)` from the address space: areas, pages, and (after
/// the TLB shootdown, see [`with_mm`]) the files they mapped.
fn remove(mm: &mut Mm, start: u64, end: u64) -> Result<(), Errno> {
    // A 2 MiB page sticking out of the range is split first; without memory
    // for that, nothing changes.
    mm.aspace
        .split_edges(start, end)
        .map_err(|_| Errno::ENOMEM)?;
    for v in mm.aspace.vmas.unmap(start, end).map_err(|e| match e {
        VmaError::TooMany => Errno::ENOMEM,
        _ => Errno::EINVAL,
    })? {
        mm.aspace.unmap_pages(v.start, v.end);
        if let Kind::File(f) = v.kind {
            mm.file_releases.push((f.ino, (v.end - v.start) / PAGE));
        }
    }
    Ok(())
}

fn prot_arg(bits: u64) -> Result<Prot, Errno> {
    // PROT_GROWSDOWN/GROWSUP (0x0100_0000/0x0200_0000) are accepted and
    // ignored, as for a non-growing area.
    let prot = Prot::from_bits(bits & !0x0300_0000).ok_or(Errno::EINVAL)?;
    if prot.write && prot.exec {
        // Policy: no page is ever writable and executable.
        return Err(Errno::EACCES);
    }
    Ok(prot)
}

fn user_range(addr: u64, len: u64) -> Result<u64, Errno> {
    let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
    if end > USER_END {
        return Err(Errno::ENOMEM);
    }
    Ok(end)
}

/// Places `len` bytes: the hint if it is free, else the highest free range
/// (with `phase`: the highest address in it whose remainder modulo 2 MiB is
/// `phase`, so a file whose data lies physically at that remainder can be
/// mapped with 2 MiB pages).
fn place(mm: &Mm, hint: u64, len: u64, phase: Option<u64>) -> Result<u64, Errno> {
    if hint != 0 {
        let hint = hint & !(PAGE - 1);
        if hint >= MMAP_MIN
            && let Some(end) = hint.checked_add(len)
            && end <= mm.mmap_top
            && mm.aspace.vmas.is_free(hint, end)
        {
            return Ok(hint);
        }
    }
    let huge = crate::memory::user::HUGE;
    if let Some(phase) = phase
        && let Some(padded) = len.checked_add(huge)
        && let Some(low) = mm.aspace.vmas.find_free(padded, MMAP_MIN, mm.mmap_top)
    {
        return Ok(low + (phase.wrapping_sub(low) & (huge - 1)));
    }
    mm.aspace
        .vmas
        .find_free(len, MMAP_MIN, mm.mmap_top)
        .ok_or(Errno::ENOMEM)
}

/// mmap(2).
pub fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: u64, off: u64) -> SysResult {
    if len == 0 || !off.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len)?;
    if len > USER_END {
        return Err(Errno::ENOMEM);
    }
    match flags & MAP_TYPE {
        MAP_SHARED | MAP_PRIVATE | 0x03 => {}
        _ => return Err(Errno::EINVAL),
    }
    if flags & MAP_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    let prot = prot_arg(prot)?;
    let file = if flags & MAP_ANONYMOUS == 0 {
        file_source(fd, off, len, flags & MAP_TYPE == MAP_SHARED, prot)?
    } else {
        None
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    // Large initrd files mapped read-only (the model's weights) get an
    // address that lets whole 2 MiB runs use 2 MiB pages.
    let phase = match &file {
        Some((map, _, _, true)) if !prot.write && len >= crate::memory::user::HUGE => {
            crate::filemap::huge_phase(map.ino, off)
        }
        _ => None,
    };
    // The area's bookkeeping (at most `vma::MAX_AREAS` of them).
    crate::memory::kalloc::headroom(4096)?;
    with_mm(|mm| {
        let start = if fixed {
            if !addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            if addr < MMAP_MIN {
                return Err(Errno::EPERM);
            }
            let end = user_range(addr, len)?;
            if !mm.aspace.vmas.is_free(addr, end) {
                if flags & MAP_FIXED_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                remove(mm, addr, end)?;
            }
            addr
        } else {
            place(mm, addr, len, phase)?
        };
        let kind = match &file {
            Some((map, path, ..)) => {
                crate::filemap::acquire(map.ino, len / PAGE, path)?;
                Kind::File(FileMap {
                    delta: off.wrapping_sub(start),
                    ..*map
                })
            }
            None if flags & (MAP_STACK | MAP_GROWSDOWN) != 0 => Kind::AnonStack,
            None => Kind::Anon,
        };
        if mm
            .aspace
            .vmas
            .insert(Vma {
                start,
                end: start + len,
                prot,
                kind,
            })
            .is_err()
        {
            if let Kind::File(f) = kind {
                mm.file_releases.push((f.ino, len / PAGE));
            }
            return Err(Errno::ENOMEM);
        }
        if let (Some((_, path, size, initrd)), Kind::File(f)) = (&file, kind) {
            crate::filemap::log_map(path, len, f, *size, *initrd);
        }
        if flags & MAP_POPULATE != 0 && prot != Prot::NONE {
            populate(mm, start, start + len)?;
        }
        Ok(start)
    })
}

/// MAP_POPULATE: faults in `[start, end)` of the area just made. Stops at
/// the end of a mapped file (the rest is SIGBUS when touched, as on
/// Linux). At the first page that finds no memory it removes the whole
/// new mapping and fails with ENOMEM: Linux instead returns the mapping
/// unpopulated and leaves the shortage to the first touch (its OOM
/// killer), but a program here can do something about ENOMEM and nothing
/// about being killed (`docs/linux-abi.md`).
fn populate(mm: &mut Mm, start: u64, end: u64) -> Result<(), Errno> {
    use crate::memory::user::FaultOutcome;
    let mut p = start;
    while p < end {
        match mm
            .aspace
            .fault(p, false, false, &mut crate::filemap::FilePager)
        {
            FaultOutcome::Resolved => p += PAGE,
            FaultOutcome::OutOfMemory => {
                remove(mm, start, end)?;
                return Err(Errno::ENOMEM);
            }
            _ => break,
        }
    }
    Ok(())
}

/// What a file mapping maps: the file (offset 0 at address 0 for now),
/// its path, its size, and whether it lives in the initrd. `None`: map
/// anonymous memory (/dev/zero).
fn file_source(
    fd: u64,
    off: u64,
    len: u64,
    shared: bool,
    prot: Prot,
) -> Result<Option<(FileMap, alloc::string::String, u64, bool)>, Errno> {
    use crate::fd::Object;
    const O_ACCMODE: u32 = 3;
    const O_WRONLY: u32 = 1;
    const O_RDWR: u32 = 2;
    let d = crate::fd::get(fd)?;
    let ino = match d.object {
        Object::File(ino) => ino,
        Object::Path(_) => return Err(Errno::EBADF),
        _ => return Err(Errno::ENODEV),
    };
    let acc = d.flags() & O_ACCMODE;
    let (st, initrd) =
        crate::vfs::with(|fs| Ok((fs.stat(ino)?, fs.borrowed_bytes(ino).is_some())))?;
    match st.mode & 0o170000 {
        llmos_fs::ramfs::mode::S_IFREG => {}
        llmos_fs::ramfs::mode::S_IFCHR if st.rdev == crate::vfs::dev::ZERO => return Ok(None),
        _ => return Err(Errno::ENODEV),
    }
    if acc == O_WRONLY {
        return Err(Errno::EACCES);
    }
    if shared && prot.write && acc != O_RDWR {
        return Err(Errno::EACCES);
    }
    if off.checked_add(len).is_none_or(|e| e > i64::MAX as u64) {
        return Err(Errno::EOVERFLOW);
    }
    let map = FileMap {
        ino,
        delta: 0,
        shared,
        may_write: !shared || acc == O_RDWR,
    };
    Ok(Some((map, d.path.clone(), st.size, initrd)))
}

/// munmap(2).
pub fn munmap(addr: u64, len: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len)?;
    let end = user_range(addr, len).map_err(|_| Errno::EINVAL)?;
    with_mm(|mm| remove(mm, addr, end).map(|_| 0))
}

/// mprotect(2).
pub fn mprotect(addr: u64, len: u64, prot: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let prot = prot_arg(prot)?;
    if len == 0 {
        return Ok(0);
    }
    let len = page_up(len)?;
    let end = user_range(addr, len)?;
    with_mm(|mm| {
        if prot.write {
            let mut p = addr;
            while p < end {
                let Some(v) = mm.aspace.vmas.find(p) else {
                    break;
                };
                if let Kind::File(f) = v.kind
                    && f.shared
                    && !f.may_write
                {
                    // The file was not opened for writing.
                    return Err(Errno::EACCES);
                }
                p = v.end;
            }
        }
        mm.aspace
            .split_edges(addr, end)
            .map_err(|_| Errno::ENOMEM)?;
        match mm.aspace.vmas.protect(addr, end, prot) {
            Ok(_) => {}
            Err(VmaError::Hole | VmaError::TooMany) => return Err(Errno::ENOMEM),
            Err(_) => return Err(Errno::EINVAL),
        }
        mm.aspace.reprotect(addr, end, prot);
        Ok(0)
    })
}

/// brk(2): returns the new break, or the old one if it cannot move.
pub fn brk(addr: u64) -> SysResult {
    with_mm(|mm| {
        if addr < mm.brk_start {
            return Ok(mm.brk);
        }
        let old_end = page_up(mm.brk)?;
        let new_end = page_up(addr)?;
        if new_end > old_end {
            if new_end > mm.stack.0.saturating_sub(STACK_GUARD_GAP) {
                return Ok(mm.brk);
            }
            let ok = if old_end == mm.brk_start {
                mm.aspace
                    .vmas
                    .insert(Vma {
                        start: old_end,
                        end: new_end,
                        prot: Prot::RW,
                        kind: Kind::Heap,
                    })
                    .is_ok()
            } else {
                mm.aspace.vmas.grow(old_end, new_end).is_ok()
            };
            if !ok {
                return Ok(mm.brk);
            }
        } else if new_end < old_end {
            remove(mm, new_end, old_end)?;
        }
        mm.brk = addr;
        Ok(addr)
    })
}

/// mremap(2).
pub fn mremap(old: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> SysResult {
    if !old.is_multiple_of(PAGE)
        || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | 4) != 0
        || new_len == 0
    {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & 4 != 0 {
        // MREMAP_DONTUNMAP
        return Err(Errno::EINVAL);
    }
    let old_len = page_up(old_len)?;
    let new_len = page_up(new_len)?;
    if old_len == 0 {
        return Err(Errno::EINVAL);
    }
    let old_end = user_range(old, old_len).map_err(|_| Errno::EFAULT)?;
    with_mm(|mm| {
        let vma = *mm.aspace.vmas.find(old).ok_or(Errno::EFAULT)?;
        if old_end > vma.end {
            return Err(Errno::EFAULT);
        }
        if new_len <= old_len && flags & MREMAP_FIXED == 0 {
            if new_len < old_len {
                remove(mm, old + new_len, old_end)?;
            }
            return Ok(old);
        }
        let new_end_in_place = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if flags & MREMAP_FIXED == 0
            && old_end == vma.end
            && new_end_in_place <= mm.mmap_top.max(vma.end)
            && mm.aspace.vmas.grow(old_end, new_end_in_place).is_ok()
        {
            if let Kind::File(f) = vma.kind
                && let Err(e) = crate::filemap::acquire(f.ino, (new_len - old_len) / PAGE, "")
            {
                remove(mm, old_end, new_end_in_place)?;
                return Err(e);
            }
            return Ok(old);
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        // What moves goes as 4 KiB pages: split it before changing areas.
        let moved = old_len.min(new_len);
        mm.aspace
            .split_huge(old, old + moved)
            .map_err(|_| Errno::ENOMEM)?;
        let dest = if flags & MREMAP_FIXED != 0 {
            if !new_addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            let dest_end = user_range(new_addr, new_len)?;
            if new_addr < old_end && old < dest_end {
                return Err(Errno::EINVAL);
            }
            remove(mm, new_addr, dest_end)?;
            new_addr
        } else {
            place(mm, 0, new_len, None)?
        };
        let kind = match vma.kind {
            Kind::File(f) => {
                crate::filemap::acquire(f.ino, new_len / PAGE, "")?;
                Kind::File(f.moved(old, dest))
            }
            k => k,
        };
        mm.aspace
            .vmas
            .insert(Vma {
                start: dest,
                end: dest + new_len,
                prot: vma.prot,
                kind,
            })
            .map_err(|_| Errno::ENOMEM)?;
        mm.aspace
            .move_pages(old, moved, dest, vma.prot)
            .map_err(|_| Errno::ENOMEM)?;
        remove(mm, old, old_end)?;
        Ok(dest)
    })
}

/// madvise(2).
pub fn madvise(addr: u64, len: u64, advice: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len)?;
    let end = user_range(addr, len).map_err(|_| Errno::EINVAL)?;
    const KNOWN: &[u64] = &[
        0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    ];
    if !KNOWN.contains(&advice) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    with_mm(|mm| {
        let mut p = addr;
        while p < end {
            let v = mm.aspace.vmas.find(p).ok_or(Errno::ENOMEM)?;
            p = v.end;
        }
        // MADV_DONTNEED (4) and MADV_FREE (8): the next touch sees zeros.
        if advice == 4 || advice == 8 {
            mm.aspace
                .split_edges(addr, end)
                .map_err(|_| Errno::ENOMEM)?;
            mm.aspace.unmap_pages(addr, end);
        }
        Ok(0)
    })
}

/// msync(2): file pages are the file's own memory (or initrd pages that
/// cannot change), so there is nothing to write back; the range must be
/// mapped.
pub fn msync(addr: u64, len: u64, flags: u64) -> SysResult {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    if !addr.is_multiple_of(PAGE)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
    {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len)?;
    let end = user_range(addr, len)?;
    with_mm(|mm| {
        let mut p = addr;
        while p < end {
            let v = mm.aspace.vmas.find(p).ok_or(Errno::ENOMEM)?;
            p = v.end;
        }
        Ok(0)
    })
}
