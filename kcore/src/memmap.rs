//! Memory-map summaries and early placement decisions.
//!
//! The kernel converts the bootloader's memory regions into [`Region`]s; this
//! module computes what the boot log reports and where the frame bitmap can
//! live before any allocator exists.

use crate::frames::{FRAME_SIZE, words_for};

/// What a physical memory range holds, as far as the kernel cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// Free RAM the kernel may allocate.
    Usable,
    /// RAM the bootloader used for the kernel image, page tables, boot info
    /// and ramdisk; it stays allocated.
    Bootloader,
    /// Anything else: firmware, ACPI, MMIO holes.
    Reserved,
}

/// A physical range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// What it holds.
    pub kind: RegionKind,
}

impl Region {
    /// Length in bytes (0 for an inverted range).
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Totals for the boot log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Bytes of usable RAM.
    pub usable: u64,
    /// Bytes held by the bootloader (kernel, page tables, ramdisk…).
    pub bootloader: u64,
    /// Bytes reserved by firmware or hardware.
    pub reserved: u64,
    /// End of the highest usable or bootloader RAM: the frames to track.
    pub ram_end: u64,
    /// Number of regions.
    pub regions: usize,
}

impl Summary {
    /// Usable RAM in whole MiB.
    pub fn usable_mib(&self) -> u64 {
        self.usable / (1024 * 1024)
    }
}

/// Summarises a memory map.
pub fn summarize(regions: impl IntoIterator<Item = Region>) -> Summary {
    let mut s = Summary::default();
    for r in regions {
        s.regions += 1;
        match r.kind {
            RegionKind::Usable => s.usable = s.usable.saturating_add(r.len()),
            RegionKind::Bootloader => s.bootloader = s.bootloader.saturating_add(r.len()),
            RegionKind::Reserved => s.reserved = s.reserved.saturating_add(r.len()),
        }
        if r.kind != RegionKind::Reserved && !r.is_empty() {
            s.ram_end = s.ram_end.max(r.end);
        }
    }
    s
}

/// Finds room for the frame bitmap that tracks `[0, ram_end)`: the first
/// usable region that holds it, at a frame-aligned address above
/// `min_addr`. Returns the physical start and the byte length.
pub fn place_frame_bitmap(
    regions: impl IntoIterator<Item = Region>,
    ram_end: u64,
    min_addr: u64,
) -> Option<(u64, u64)> {
    let frames = ram_end.div_ceil(FRAME_SIZE);
    let bytes = (words_for(frames) as u64)
        .checked_mul(8)?
        .div_ceil(FRAME_SIZE)
        .checked_mul(FRAME_SIZE)?;
    regions
        .into_iter()
        .filter(|r| r.kind == RegionKind::Usable)
        .find_map(|r| {
            let start = r.start.max(min_addr).div_ceil(FRAME_SIZE) * FRAME_SIZE;
            (start.checked_add(bytes)? <= r.end).then_some((start, bytes))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn map() -> Vec<Region> {
        vec![
            Region {
                start: 0,
                end: 0x1000,
                kind: RegionKind::Reserved,
            },
            Region {
                start: 0x1000,
                end: 0x9f000,
                kind: RegionKind::Usable,
            },
            Region {
                start: 0x100000,
                end: 0x400000,
                kind: RegionKind::Bootloader,
            },
            Region {
                start: 0x400000,
                end: 512 * MIB,
                kind: RegionKind::Usable,
            },
            Region {
                start: 0xfee0_0000,
                end: 0xfee0_1000,
                kind: RegionKind::Reserved,
            },
        ]
    }

    #[test]
    fn summary_counts_kinds() {
        let s = summarize(map());
        assert_eq!(s.regions, 5);
        assert_eq!(s.usable, (0x9f000 - 0x1000) + (512 * MIB - 0x400000));
        assert_eq!(s.bootloader, 0x300000);
        assert_eq!(s.reserved, 0x2000);
        assert_eq!(s.ram_end, 512 * MIB, "MMIO above RAM is not tracked");
        assert_eq!(s.usable_mib(), 508);
    }

    #[test]
    fn bitmap_lands_in_a_usable_region_that_fits() {
        let s = summarize(map());
        // 512 MiB = 131072 frames = 16 KiB of bitmap: fits in low memory.
        let (at, len) = place_frame_bitmap(map(), s.ram_end, 0x1000).unwrap();
        assert_eq!((at, len), (0x1000, 16 * 1024));
        // Above 1 MiB it goes to the big region.
        let (at, _) = place_frame_bitmap(map(), s.ram_end, MIB).unwrap();
        assert_eq!(at, 0x400000);
    }

    #[test]
    fn no_room_is_none() {
        let tiny = [Region {
            start: 0x1000,
            end: 0x2000,
            kind: RegionKind::Usable,
        }];
        assert_eq!(place_frame_bitmap(tiny, 64 * 1024 * MIB, 0), None);
        assert_eq!(place_frame_bitmap([], MIB, 0), None);
    }
}
