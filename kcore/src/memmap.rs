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

/// Why [`carve`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarveError {
    /// The output has no room for all the pieces.
    TooManyRegions,
}

impl core::fmt::Display for CarveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CarveError::TooManyRegions => f.write_str("the memory map has too many regions"),
        }
    }
}

/// Writes `regions` to `out` with every range in `holes` (`[start, end)`,
/// any order, may overlap) cut out of the usable regions and marked
/// [`RegionKind::Bootloader`]: what a boot protocol that loads the kernel
/// and its ramdisk into plain RAM (PVH) reports as usable but is in use.
/// Other regions pass through unchanged. Returns how many regions it wrote.
pub fn carve(
    regions: impl IntoIterator<Item = Region>,
    holes: &[(u64, u64)],
    out: &mut [Region],
) -> Result<usize, CarveError> {
    let mut n = 0;
    let mut push = |r: Region| {
        if r.is_empty() {
            return Ok(());
        }
        let slot = out.get_mut(n).ok_or(CarveError::TooManyRegions)?;
        *slot = r;
        n += 1;
        Ok(())
    };
    for r in regions {
        if r.kind != RegionKind::Usable {
            push(r)?;
            continue;
        }
        let mut cursor = r.start;
        while cursor < r.end {
            // The hole that starts first in what is left of the region.
            let next = holes
                .iter()
                .filter(|&&(s, e)| e > cursor && s < r.end && s < e)
                .map(|&(s, e)| (s.max(cursor), e.min(r.end)))
                .min_by_key(|&(s, _)| s);
            let Some((hs, he)) = next else {
                push(Region {
                    start: cursor,
                    end: r.end,
                    kind: RegionKind::Usable,
                })?;
                break;
            };
            push(Region {
                start: cursor,
                end: hs,
                kind: RegionKind::Usable,
            })?;
            push(Region {
                start: hs,
                end: he,
                kind: RegionKind::Bootloader,
            })?;
            cursor = he;
        }
    }
    Ok(n)
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

    fn usable(start: u64, end: u64) -> Region {
        Region {
            start,
            end,
            kind: RegionKind::Usable,
        }
    }

    fn held(start: u64, end: u64) -> Region {
        Region {
            start,
            end,
            kind: RegionKind::Bootloader,
        }
    }

    #[test]
    fn carve_cuts_holes_out_of_usable_ram_only() {
        let reserved = Region {
            start: 0xf0000,
            end: 0x100000,
            kind: RegionKind::Reserved,
        };
        let map = [usable(0, 0x9f000), reserved, usable(0x100000, 64 * MIB)];
        // Kernel at 2 MiB, ramdisk at the top, a hole over the reserved
        // area (ignored there) and one overlapping the kernel's.
        let holes = [
            (60 * MIB, 64 * MIB),
            (2 * MIB, 3 * MIB),
            (0xf0000, 0x100000),
            (0x280000, 0x300000 + 0x1000),
        ];
        let mut out = [usable(0, 0); 16];
        let n = carve(map, &holes, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &[
                usable(0, 0x9f000),
                reserved,
                usable(0x100000, 2 * MIB),
                held(2 * MIB, 3 * MIB),
                held(3 * MIB, 0x301000),
                usable(0x301000, 60 * MIB),
                held(60 * MIB, 64 * MIB),
            ]
        );
        let s = summarize(out[..n].iter().copied());
        assert_eq!(s.usable + s.bootloader, 0x9f000 + 63 * MIB);
        assert_eq!(s.bootloader, 4 * MIB + 0x101000);
    }

    #[test]
    fn carve_without_holes_copies_and_reports_overflow() {
        let map = [usable(0x1000, 0x2000), usable(MIB, 2 * MIB)];
        let mut out = [usable(0, 0); 2];
        assert_eq!(carve(map, &[], &mut out), Ok(2));
        assert_eq!(out, map);
        let mut small = [usable(0, 0); 2];
        assert_eq!(
            carve(map, &[(0x1800, 0x1900)], &mut small),
            Err(CarveError::TooManyRegions)
        );
        // A hole covering a whole region leaves only the held piece.
        let mut out = [usable(0, 0); 4];
        let n = carve([usable(MIB, 2 * MIB)], &[(0, 4 * MIB)], &mut out).unwrap();
        assert_eq!(&out[..n], &[held(MIB, 2 * MIB)]);
    }
}
