//! Memory management: physical frames, page tables, the kernel heap,
//! guarded kernel stacks, MMIO mappings and access to physical memory.
//!
//! Lock order (outer first): heap → page tables → frames. Nothing takes
//! them the other way round, and the panic path takes none of them.

pub mod dma;
pub mod frames;
pub mod heap;
pub mod kalloc;
pub mod layout;
pub mod mmio;
pub mod paging;
pub mod phys;
pub mod stacks;
#[cfg(feature = "test-hooks")]
pub mod test_support;
pub mod uaccess;
pub mod user;

use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use kcore::memmap::{Region, RegionKind};

/// Converts a bootloader memory region.
pub fn region(r: &MemoryRegion) -> Region {
    Region {
        start: r.start,
        end: r.end,
        kind: match r.kind {
            MemoryRegionKind::Usable => RegionKind::Usable,
            MemoryRegionKind::Bootloader => RegionKind::Bootloader,
            _ => RegionKind::Reserved,
        },
    }
}

/// The ramdisk the bootloader loaded, as a byte slice.
pub fn ramdisk(addr: Option<u64>, len: u64) -> Option<&'static [u8]> {
    let addr = addr?;
    let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
    // SAFETY: the bootloader mapped `len` bytes of ramdisk at `addr` (its
    // BootInfo contract); the kernel never maps anything over that range or
    // writes to it, so a shared 'static slice is sound.
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
}
