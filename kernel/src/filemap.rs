//! File-backed memory mappings: where a faulting page of a mapped file
//! comes from, and which files are mapped.
//!
//! - Initrd files (borrowed bytes): whole, page-aligned pages are mapped
//!   in place, read-only, with no copy — for MAP_SHARED and MAP_PRIVATE
//!   alike; a private mapping copies a page on its first write. Partial
//!   last pages and unaligned small files are copied (the bytes after the
//!   end of the file must read as zeros).
//! - RAM files: MAP_SHARED maps the file's own pages (writes reach the
//!   file, and `write(2)` shows up in the mapping); MAP_PRIVATE copies a
//!   page when it is first touched.
//! - Past the end of the file: SIGBUS, as on Linux.
//!
//! While any area maps a file, the file is pinned (`RamFs::pin`): it
//! survives unlink and truncation cannot free a page that is still mapped.
//! The last unmap logs how much of a large file was mapped in place and
//! how many bytes were copied.
#![deny(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::string::String;

use kcore::elf::PAGE;
use kcore::errno::Errno;
use kcore::vma::FileMap;
use llmos_fs::ramfs::Ino;
use spin::Mutex;

use crate::klog;
use crate::memory::user::{FaultOutcome, FilePage, Pager};
use crate::vfs;

/// Mappings of one file.
struct Mapped {
    /// Pages of areas mapping it.
    pages: u64,
    /// Its path when first mapped (for /proc/self/maps and the log).
    path: String,
    /// Bytes mapped in place, without a copy.
    in_place: u64,
    /// Bytes copied into private pages.
    copied: u64,
}

static MAPPED: Mutex<BTreeMap<Ino, Mapped>> = Mutex::new(BTreeMap::new());

/// Files at least this large get a log line when mapped and unmapped.
const LOG_SIZE: u64 = 1 << 20;

/// Records `pages` more mapped pages of `ino` (pinning it on the first).
pub fn acquire(ino: Ino, pages: u64, path: &str) -> Result<(), Errno> {
    let first = !MAPPED.lock().contains_key(&ino);
    if first {
        vfs::with(|fs| fs.pin(ino))?;
    }
    let mut m = MAPPED.lock();
    let e = m.entry(ino).or_insert_with(|| Mapped {
        pages: 0,
        path: String::from(path),
        in_place: 0,
        copied: 0,
    });
    e.pages += pages;
    Ok(())
}

/// Releases `pages` mapped pages of `ino`; the last one unpins the file.
/// Call only after the pages are gone from every CPU's TLB.
pub fn release(ino: Ino, pages: u64) {
    let done = {
        let mut m = MAPPED.lock();
        let Some(e) = m.get_mut(&ino) else { return };
        e.pages = e.pages.saturating_sub(pages);
        if e.pages == 0 { m.remove(&ino) } else { None }
    };
    if let Some(e) = done {
        if e.in_place + e.copied >= LOG_SIZE {
            klog!(
                "fs",
                "{} unmapped: {} KiB were mapped in place, {} bytes copied",
                e.path,
                e.in_place / 1024,
                e.copied
            );
        }
        let _ = vfs::with(|fs| {
            fs.unpin(ino);
            Ok(())
        });
    }
}

/// Where in a 2 MiB page the initrd data of `ino` at file offset `offset`
/// lies physically, if the file is initrd data with at least 2 MiB from
/// there: mapping that offset at a user address with the same remainder
/// lets every whole 2 MiB run of it use a 2 MiB page.
pub fn huge_phase(ino: Ino, offset: u64) -> Option<u64> {
    let huge = crate::memory::user::HUGE;
    phys(initrd_run(ino, offset)?).ok().map(|p| p % huge)
}

/// The kernel address of `ino`'s initrd data at `offset`, if the file is
/// initrd data with a whole 2 MiB from there.
fn initrd_run(ino: Ino, offset: u64) -> Option<usize> {
    let huge = crate::memory::user::HUGE as usize;
    let start = usize::try_from(offset).ok()?;
    vfs::with(|fs| {
        let b = fs.borrowed_bytes(ino).ok_or(Errno::EINVAL)?;
        if start.checked_add(huge).is_none_or(|end| end > b.len()) {
            return Err(Errno::EINVAL);
        }
        Ok(b.as_ptr() as usize + start)
    })
    .ok()
}

/// The path `ino` was mapped under.
pub fn path(ino: Ino) -> Option<String> {
    MAPPED.lock().get(&ino).map(|m| m.path.clone())
}

/// Logs a new mapping of a large file.
pub fn log_map(path: &str, len: u64, map: FileMap, size: u64, in_initrd: bool) {
    if len < LOG_SIZE {
        return;
    }
    klog!(
        "fs",
        "{path} mapped ({} KiB of {} KiB, {}): {}",
        len / 1024,
        size / 1024,
        if map.shared { "shared" } else { "private" },
        if in_initrd {
            "pages come from the initrd in place, nothing is copied"
        } else {
            "pages of the RAM file"
        }
    );
}

/// The physical address of kernel virtual address `virt`.
fn phys(virt: usize) -> Result<u64, FaultOutcome> {
    crate::memory::paging::translate(virt as u64).ok_or(FaultOutcome::OutOfMemory)
}

/// The pager the fault handler uses.
pub struct FilePager;

impl Pager for FilePager {
    fn page(
        &mut self,
        map: FileMap,
        offset: u64,
        _write: bool,
        buf: &mut [u8; PAGE as usize],
    ) -> Result<FilePage, FaultOutcome> {
        let r = vfs::with(|fs| {
            let size = fs.stat(map.ino)?.size;
            if offset >= size.div_ceil(PAGE) * PAGE {
                return Ok(Err(FaultOutcome::BeyondEof));
            }
            let borrowed = fs.borrowed_bytes(map.ino);
            if let Some(b) = borrowed
                && !(map.shared && map.may_write)
            {
                // Read-only data in the initrd: in place if the whole page
                // is file data.
                let start = offset as usize;
                let addr = b.as_ptr() as usize + start;
                if start + PAGE as usize <= b.len() && addr.is_multiple_of(PAGE as usize) {
                    return Ok(phys(addr).map(|p| FilePage::Frame { phys: p, cow: true }));
                }
                let end = b.len().min(start + PAGE as usize);
                buf[..end - start].copy_from_slice(&b[start..end]);
                return Ok(Ok(FilePage::Copy(end - start)));
            }
            if map.shared {
                // The first writable shared page of an initrd file copies
                // the whole file into the filesystem's own pages.
                let copy = borrowed.map_or(0, <[u8]>::len);
                if crate::memory::kalloc::headroom(copy + PAGE as usize).is_err() {
                    return Ok(Err(FaultOutcome::OutOfMemory));
                }
                let page = fs.shared_page(map.ino, offset / PAGE)?;
                let addr = core::ptr::from_ref(page) as usize;
                return Ok(phys(addr).map(|p| FilePage::Frame {
                    phys: p,
                    cow: false,
                }));
            }
            let n = fs.read(map.ino, offset, buf, crate::time::realtime_nanos())?;
            Ok(Ok(FilePage::Copy(n)))
        });
        match r {
            Ok(r) => r,
            Err(Errno::ENOSPC) => Err(FaultOutcome::OutOfMemory),
            Err(_) => Err(FaultOutcome::BeyondEof),
        }
    }

    fn huge_page(&mut self, map: FileMap, offset: u64) -> Option<u64> {
        if map.shared && map.may_write {
            return None;
        }
        let huge = crate::memory::user::HUGE as usize;
        let addr = initrd_run(map.ino, offset)?;
        let first = phys(addr).ok()?;
        if !first.is_multiple_of(huge as u64) {
            return None;
        }
        // The initrd is one physical run under PVH; check rather than
        // assume (a bootloader may have placed it otherwise).
        (1..huge / PAGE as usize)
            .all(|i| phys(addr + i * PAGE as usize).ok() == Some(first + (i as u64) * PAGE))
            .then_some(first)
    }

    fn account(&mut self, map: FileMap, bytes: u64, in_place: bool) {
        if let Some(e) = MAPPED.lock().get_mut(&map.ino) {
            if in_place {
                e.in_place += bytes;
            } else {
                e.copied += bytes;
            }
        }
    }
}
