//! Read-only access to physical memory through the bootloader's
//! physical-memory mapping (for firmware tables).

use kcore::acpi::PhysMemory;
use x86_64::structures::paging::PageTableFlags;

use super::paging;

/// Firmware tables in physical memory, for `kcore::acpi`.
#[derive(Debug, Clone, Copy)]
pub struct PhysWindow;

impl PhysMemory for PhysWindow {
    fn bytes(&self, phys: u64, len: usize) -> Option<&[u8]> {
        let offset = paging::phys_offset();
        let end = phys.checked_add(len as u64)?;
        let virt = offset.checked_add(phys)?;
        // Make sure every page is mapped; the bootloader's map may stop
        // short of firmware areas at the top of the address space.
        let mut page = phys & !0xfff;
        while page < end {
            match paging::translate(offset + page) {
                Some(p) if p == page => {}
                Some(_) => return None,
                None => {
                    // SAFETY: this maps firmware-reserved memory read-only at
                    // its place in the physical-memory window, where it would
                    // be had the bootloader mapped it; nothing writes through
                    // it.
                    unsafe {
                        paging::map_phys(
                            offset + page,
                            page,
                            4096,
                            PageTableFlags::PRESENT | PageTableFlags::NO_EXECUTE,
                        )
                        .ok()?;
                    }
                }
            }
            page += 4096;
        }
        // SAFETY: every page of the range is mapped (checked above) to the
        // physical range asked for; firmware tables are not written while
        // the kernel reads them, so a shared slice is sound for `&self`'s
        // lifetime.
        Some(unsafe { core::slice::from_raw_parts(virt as *const u8, len) })
    }
}
