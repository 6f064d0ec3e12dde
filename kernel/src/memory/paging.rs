//! Page-table management over the physical-memory mapping
//! (`x86_64::OffsetPageTable` on the active CR3).
//!
//! The lock is taken with interrupts off: an interrupt handler that
//! allocates can grow the heap, which maps pages.

use core::fmt;

use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::mapper::{MapToError, TranslateResult};
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size2MiB, Size4KiB,
    Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::{self, GlobalFrames};

static MAPPER: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);
static PHYS_OFFSET: spin::Once<u64> = spin::Once::new();
/// The kernel's own level-4 table (the one active at boot).
static KERNEL_L4: spin::Once<PhysFrame> = spin::Once::new();

/// Errors from mapping calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// No free physical frames (for data or page tables).
    OutOfFrames,
    /// The page is already mapped.
    AlreadyMapped(u64),
    /// A huge page covers the address.
    HugePage(u64),
    /// Paging is not initialised yet.
    NotReady,
    /// The range wraps around or is not canonical.
    BadRange,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::OutOfFrames => f.write_str("out of physical memory"),
            MapError::AlreadyMapped(a) => write!(f, "page {a:#x} is already mapped"),
            MapError::HugePage(a) => write!(f, "address {a:#x} lies in a huge page"),
            MapError::NotReady => f.write_str("paging is not initialised"),
            MapError::BadRange => f.write_str("invalid address range"),
        }
    }
}

fn map_err(page: Page, e: MapToError<Size4KiB>) -> MapError {
    match e {
        MapToError::FrameAllocationFailed => MapError::OutOfFrames,
        MapToError::PageAlreadyMapped(_) => MapError::AlreadyMapped(page.start_address().as_u64()),
        MapToError::ParentEntryHugePage => MapError::HugePage(page.start_address().as_u64()),
    }
}

/// Takes over the active page tables.
pub fn init(phys_offset: u64) {
    PHYS_OFFSET.call_once(|| phys_offset);
    let (l4_frame, _) = Cr3::read();
    KERNEL_L4.call_once(|| l4_frame);
    let l4_virt = phys_offset + l4_frame.start_address().as_u64();
    // SAFETY: the bootloader maps all physical memory at `phys_offset`, so
    // `l4_virt` is the active level-4 table; this is the only reference to
    // it, kept behind MAPPER's lock for the kernel's lifetime.
    let mapper = unsafe {
        let l4: &'static mut PageTable = &mut *(l4_virt as *mut PageTable);
        OffsetPageTable::new(l4, VirtAddr::new(phys_offset))
    };
    *MAPPER.lock() = Some(mapper);
}

/// The kernel's own level-4 table: no user half, the kernel half every
/// process table shares.
pub fn kernel_l4() -> Option<PhysFrame> {
    KERNEL_L4.get().copied()
}

/// Where physical address 0 is mapped.
pub fn phys_offset() -> u64 {
    PHYS_OFFSET.get().copied().unwrap_or(0)
}

fn pages(start: u64, len: u64) -> Result<impl Iterator<Item = Page>, MapError> {
    let end = start.checked_add(len).ok_or(MapError::BadRange)?;
    let first = VirtAddr::try_new(start).map_err(|_| MapError::BadRange)?;
    let last = VirtAddr::try_new(end.saturating_sub(1)).map_err(|_| MapError::BadRange)?;
    Ok(Page::<Size4KiB>::range_inclusive(
        Page::containing_address(first),
        Page::containing_address(last),
    ))
}

/// Maps `[start, start + len)` to fresh zeroed frames with `flags`.
/// On failure (no frame left, or the range is not free) the pages this
/// call mapped are unmapped and their frames freed again: a failed heap
/// growth or stack allocation leaves nothing behind but the page tables
/// it created, which later mappings of the range reuse.
pub fn map_fresh(start: u64, len: u64, flags: PageTableFlags) -> Result<(), MapError> {
    without_interrupts(|| map_fresh_locked(start, len, flags))
}

fn map_fresh_locked(start: u64, len: u64, flags: PageTableFlags) -> Result<(), MapError> {
    let mut guard = MAPPER.lock();
    let mapper = guard.as_mut().ok_or(MapError::NotReady)?;
    let offset = phys_offset();
    let mut mapped = 0u64;
    let mut failed = None;
    for page in pages(start, len)? {
        let Some(frame) = frames::alloc() else {
            failed = Some(MapError::OutOfFrames);
            break;
        };
        // SAFETY: `frame` was just allocated, so nothing else uses it; it is
        // reachable through the physical-memory mapping at `offset`.
        unsafe {
            core::ptr::write_bytes(
                (offset + frame.start_address().as_u64()) as *mut u8,
                0,
                4096,
            )
        };
        // SAFETY: mapping a fresh, zeroed frame at an unused kernel address
        // cannot alias other memory; the flush makes it visible.
        match unsafe { mapper.map_to(page, frame, flags, &mut GlobalFrames) } {
            Ok(flush) => flush.flush(),
            Err(e) => {
                frames::free(frame);
                failed = Some(map_err(page, e));
                break;
            }
        }
        mapped += 1;
    }
    let Some(e) = failed else {
        return Ok(());
    };
    for page in pages(start, mapped * 4096)?.take(mapped as usize) {
        if let Ok((frame, flush)) = mapper.unmap(page) {
            flush.flush();
            frames::free(frame);
        }
    }
    Err(e)
}

/// Maps `[virt, virt + len)` onto the physical range starting at `phys`,
/// with 2 MiB pages wherever both addresses are 2 MiB-aligned and 2 MiB or
/// more remain (PCI's 256 MiB configuration window would otherwise take
/// 65,536 entries and 128 page tables).
///
/// # Safety
///
/// The physical range must be device memory or memory nobody else owns in a
/// way the new mapping could violate (for example RAM a frame allocator may
/// hand out); the caller picks `flags` that suit it (uncached for MMIO).
pub unsafe fn map_phys(
    virt: u64,
    phys: u64,
    len: u64,
    flags: PageTableFlags,
) -> Result<(), MapError> {
    without_interrupts(|| {
        let mut guard = MAPPER.lock();
        let mapper = guard.as_mut().ok_or(MapError::NotReady)?;
        // SAFETY: the caller upholds `map_phys`'s contract, which is
        // `map_phys_with`'s.
        unsafe { map_phys_with(mapper, virt, phys, len, flags) }
    })
}

/// [`map_phys`] with the page tables already locked.
///
/// # Safety
///
/// As for [`map_phys`].
unsafe fn map_phys_with(
    mapper: &mut OffsetPageTable<'static>,
    virt: u64,
    phys: u64,
    len: u64,
    flags: PageTableFlags,
) -> Result<(), MapError> {
    use super::user::HUGE;
    let end = virt.checked_add(len).ok_or(MapError::BadRange)?;
    // (Validates both ends as canonical addresses.)
    let _checked = pages(virt, len)?;
    let mut off = 0;
    while virt + off < end {
        let (v, p) = (virt + off, phys + off);
        if v.is_multiple_of(HUGE) && p.is_multiple_of(HUGE) && end - v >= HUGE {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(v));
            let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(p));
            // SAFETY: upheld by the caller.
            match unsafe { mapper.map_to(page, frame, flags, &mut GlobalFrames) } {
                Ok(flush) => flush.flush(),
                Err(MapToError::FrameAllocationFailed) => return Err(MapError::OutOfFrames),
                Err(MapToError::PageAlreadyMapped(_)) => return Err(MapError::AlreadyMapped(v)),
                Err(MapToError::ParentEntryHugePage) => return Err(MapError::HugePage(v)),
            }
            off += HUGE;
            continue;
        }
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(v));
        let frame = PhysFrame::containing_address(PhysAddr::new(p));
        // SAFETY: upheld by the caller.
        match unsafe { mapper.map_to(page, frame, flags, &mut GlobalFrames) } {
            Ok(flush) => flush.flush(),
            Err(e) => return Err(map_err(page, e)),
        }
        off += 4096;
    }
    Ok(())
}

/// Unmaps `[start, start + len)` and returns each page's frame to the
/// allocator. Pages that are not mapped are skipped.
pub fn unmap_and_free(start: u64, len: u64) {
    without_interrupts(|| unmap_and_free_locked(start, len));
}

fn unmap_and_free_locked(start: u64, len: u64) {
    let mut guard = MAPPER.lock();
    let Some(mapper) = guard.as_mut() else { return };
    let Ok(range) = pages(start, len) else { return };
    for page in range {
        if let Ok((frame, flush)) = mapper.unmap(page) {
            flush.flush();
            frames::free(frame);
        }
    }
}

/// The physical address `virt` maps to, if any.
pub fn translate(virt: u64) -> Option<u64> {
    without_interrupts(|| translate_locked(virt))
}

fn translate_locked(virt: u64) -> Option<u64> {
    let guard = MAPPER.lock();
    let mapper = guard.as_ref()?;
    let v = VirtAddr::try_new(virt).ok()?;
    match mapper.translate(v) {
        TranslateResult::Mapped { frame, offset, .. } => {
            Some(frame.start_address().as_u64() + offset)
        }
        _ => None,
    }
}
