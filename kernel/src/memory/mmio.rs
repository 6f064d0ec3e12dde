//! Uncached mappings of device registers in the MMIO window.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::structures::paging::PageTableFlags;

use super::layout::{MMIO_END, MMIO_START};
use super::paging::{self, MapError};

static NEXT: AtomicU64 = AtomicU64::new(MMIO_START);

/// Maps `len` bytes of device registers at physical `phys` and returns the
/// virtual address of `phys` itself.
pub fn map(phys: u64, len: u64) -> Result<u64, MapError> {
    use super::user::HUGE;
    let page_off = phys % 4096;
    let span = (page_off + len).div_ceil(4096) * 4096;
    // Ranges of 2 MiB or more get an address congruent to theirs modulo
    // 2 MiB, so the aligned part maps with 2 MiB pages.
    let phase = if span >= HUGE {
        (phys - page_off) % HUGE
    } else {
        0
    };
    let align = if span >= HUGE { HUGE } else { 4096 };
    let mut next = NEXT.load(Ordering::Relaxed);
    let virt = loop {
        let Some((virt, end)) = next
            .checked_next_multiple_of(align)
            .and_then(|a| a.checked_add(phase))
            .and_then(|v| Some((v, v.checked_add(span)?)))
            .filter(|&(_, end)| end <= MMIO_END)
        else {
            return Err(MapError::BadRange);
        };
        match NEXT.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break virt,
            Err(now) => next = now,
        }
    };
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
