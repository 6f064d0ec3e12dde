//! Uncached mappings of device registers in the MMIO window.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::structures::paging::PageTableFlags;

use super::layout::{MMIO_END, MMIO_START};
use super::paging::{self, MapError};

static NEXT: AtomicU64 = AtomicU64::new(MMIO_START);

/// Maps `len` bytes of device registers at physical `phys` and returns the
/// virtual address of `phys` itself.
pub fn map(phys: u64, len: u64) -> Result<u64, MapError> {
    let page_off = phys % 4096;
    let span = (page_off + len).div_ceil(4096) * 4096;
    let virt = NEXT.fetch_add(span, Ordering::Relaxed);
    if virt.checked_add(span).is_none_or(|end| end > MMIO_END) {
        return Err(MapError::BadRange);
    }
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_CACHE
        | PageTableFlags::WRITE_THROUGH
        | PageTableFlags::NO_EXECUTE;
    // SAFETY: callers pass device register ranges (APIC, later PCI BARs),
    // which are not RAM the frame allocator manages; the mapping is
    // uncached as device memory requires, at fresh addresses of the window.
    unsafe { paging::map_phys(virt, phys - page_off, span, flags)? };
    Ok(virt + page_off)
}
