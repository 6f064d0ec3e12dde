//! The PVH boot protocol's start-of-day structure (`hvm_start_info`, as Xen's
//! `arch-x86/hvm/start_info.h` defines it and QEMU's `-kernel` fills it in for
//! an ELF kernel with a `XEN_ELFNOTE_PHYS32_ENTRY` note).
//!
//! The kernel's 32-bit entry gets the structure's physical address in EBX;
//! the kernel reads the bytes through its physical-memory map and hands them
//! to this module, which checks and decodes them.

use crate::memmap::{Region, RegionKind};

/// `hvm_start_info.magic`: "xEn3" with the top bit of the last byte flipped.
pub const MAGIC: u32 = 0x336e_c578;
/// Bytes of `hvm_start_info` (version 1).
pub const START_INFO_LEN: usize = 56;
/// Bytes of one `hvm_modlist_entry`.
pub const MODULE_LEN: usize = 32;
/// Bytes of one `hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_LEN: usize = 24;
/// The ELF note type of the 32-bit physical entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// Why a start-info structure was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvhError {
    /// Fewer bytes than the structure needs.
    Truncated,
    /// The magic number is wrong.
    BadMagic(u32),
}

impl core::fmt::Display for PvhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PvhError::Truncated => f.write_str("PVH start info is truncated"),
            PvhError::BadMagic(m) => write!(
                f,
                "PVH start info has magic {m:#x}, expected {MAGIC:#x} (not booted through PVH?)"
            ),
        }
    }
}

/// The decoded `hvm_start_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version (0 has no memory map, 1 has).
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Number of modules (QEMU passes `-initrd` as the first).
    pub nr_modules: u32,
    /// Physical address of the module list.
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line (0: none).
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP (0: not given).
    pub rsdp_paddr: u64,
    /// Physical address of the memory map (version ≥ 1; 0: none).
    pub memmap_paddr: u64,
    /// Entries in the memory map.
    pub memmap_entries: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl StartInfo {
    /// Decodes the structure from its first [`START_INFO_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Result<Self, PvhError> {
        if b.len() < 8 {
            return Err(PvhError::Truncated);
        }
        let magic = u32_at(b, 0);
        if magic != MAGIC {
            return Err(PvhError::BadMagic(magic));
        }
        let version = u32_at(b, 4);
        // Version 0 ends before the memory-map fields.
        let need = if version == 0 { 40 } else { START_INFO_LEN };
        if b.len() < need {
            return Err(PvhError::Truncated);
        }
        let (memmap_paddr, memmap_entries) = if version == 0 {
            (0, 0)
        } else {
            (u64_at(b, 40), u32_at(b, 48))
        };
        Ok(Self {
            version,
            flags: u32_at(b, 8),
            nr_modules: u32_at(b, 12),
            modlist_paddr: u64_at(b, 16),
            cmdline_paddr: u64_at(b, 24),
            rsdp_paddr: u64_at(b, 32),
            memmap_paddr,
            memmap_entries,
        })
    }

    /// The RSDP's address, if the loader gave one.
    pub fn rsdp(&self) -> Option<u64> {
        (self.rsdp_paddr != 0).then_some(self.rsdp_paddr)
    }
}

/// A module (`hvm_modlist_entry`): physical address and size.
pub fn parse_module(b: &[u8]) -> Result<(u64, u64), PvhError> {
    if b.len() < MODULE_LEN {
        return Err(PvhError::Truncated);
    }
    Ok((u64_at(b, 0), u64_at(b, 8)))
}

/// A memory-map entry (`hvm_memmap_table_entry`, E820 types): RAM (type 1)
/// is usable, everything else (reserved, ACPI tables and NVS, unusable,
/// persistent memory) is reserved.
pub fn parse_memmap_entry(b: &[u8]) -> Result<Region, PvhError> {
    if b.len() < MEMMAP_ENTRY_LEN {
        return Err(PvhError::Truncated);
    }
    let start = u64_at(b, 0);
    let size = u64_at(b, 8);
    Ok(Region {
        start,
        end: start.saturating_add(size),
        kind: if u32_at(b, 16) == 1 {
            RegionKind::Usable
        } else {
            RegionKind::Reserved
        },
    })
}

/// Finds the ACPI RSDP signature in a copy of the BIOS read-only area
/// (`area` starts at physical `base`): the fallback when the loader gives no
/// address. Checks the signature and the ACPI 1.0 checksum.
pub fn find_rsdp(area: &[u8], base: u64) -> Option<u64> {
    (0..area.len().saturating_sub(20))
        .step_by(16)
        .find(|&i| {
            &area[i..i + 8] == b"RSD PTR "
                && area[i..i + 20].iter().fold(0u8, |s, &b| s.wrapping_add(b)) == 0
        })
        .map(|i| base + i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(MAGIC.to_le_bytes());
        b.extend(version.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(0x1000u64.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(0xf59e0u64.to_le_bytes());
        b.extend(0x2000u64.to_le_bytes());
        b.extend(7u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b
    }

    #[test]
    fn parses_version_1() {
        let s = StartInfo::parse(&info(1)).unwrap();
        assert_eq!(s.version, 1);
        assert_eq!(s.nr_modules, 1);
        assert_eq!(s.modlist_paddr, 0x1000);
        assert_eq!(s.rsdp(), Some(0xf59e0));
        assert_eq!((s.memmap_paddr, s.memmap_entries), (0x2000, 7));
    }

    #[test]
    fn version_0_has_no_memory_map() {
        let b = info(0);
        let s = StartInfo::parse(&b[..40]).unwrap();
        assert_eq!((s.memmap_paddr, s.memmap_entries), (0, 0));
        assert_eq!(StartInfo::parse(&info(1)[..40]), Err(PvhError::Truncated));
    }

    #[test]
    fn rejects_bad_magic_and_short_input() {
        let mut b = info(1);
        b[0] ^= 1;
        assert!(matches!(StartInfo::parse(&b), Err(PvhError::BadMagic(_))));
        assert_eq!(StartInfo::parse(&[0; 4]), Err(PvhError::Truncated));
        assert!(
            StartInfo::parse(&b)
                .unwrap_err()
                .to_string()
                .contains("not booted through PVH")
        );
    }

    #[test]
    fn modules_and_memory_map() {
        let mut m = Vec::new();
        m.extend(0x3f00_0000u64.to_le_bytes());
        m.extend(0x10_0000u64.to_le_bytes());
        m.extend([0u8; 16]);
        assert_eq!(parse_module(&m), Ok((0x3f00_0000, 0x10_0000)));
        assert_eq!(parse_module(&m[..31]), Err(PvhError::Truncated));

        let entry = |start: u64, size: u64, ty: u32| {
            let mut e = Vec::new();
            e.extend(start.to_le_bytes());
            e.extend(size.to_le_bytes());
            e.extend(ty.to_le_bytes());
            e.extend(0u32.to_le_bytes());
            e
        };
        let r = parse_memmap_entry(&entry(0x10_0000, 0x1000_0000, 1)).unwrap();
        assert_eq!(
            (r.start, r.end, r.kind),
            (0x10_0000, 0x1010_0000, RegionKind::Usable)
        );
        let r = parse_memmap_entry(&entry(0xfeff_c000, 0x4000, 2)).unwrap();
        assert_eq!(r.kind, RegionKind::Reserved);
        let r = parse_memmap_entry(&entry(u64::MAX - 1, 16, 1)).unwrap();
        assert_eq!(r.end, u64::MAX, "no overflow");
    }

    #[test]
    fn finds_the_rsdp_by_signature_and_checksum() {
        let mut area = vec![0u8; 0x200];
        // A signature with a bad checksum first, then a good one.
        area[0x40..0x48].copy_from_slice(b"RSD PTR ");
        area[0x48] = 1;
        area[0x100..0x108].copy_from_slice(b"RSD PTR ");
        let sum = area[0x100..0x114]
            .iter()
            .fold(0u8, |s, &b| s.wrapping_add(b));
        area[0x108] = 0u8.wrapping_sub(sum);
        assert_eq!(find_rsdp(&area, 0xe0000), Some(0xe0100));
        assert_eq!(find_rsdp(&area[..0x100], 0xe0000), None);
    }
}
