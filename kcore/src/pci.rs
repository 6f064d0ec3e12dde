//! PCI: enumeration over an abstract configuration space, BAR sizing,
//! capability lists, and the ACPI MCFG table (ECAM regions).
//!
//! The kernel supplies a [`ConfigSpace`] (legacy ports 0xCF8/0xCFC, or
//! memory-mapped ECAM); everything here is plain logic, tested against a
//! fake bus. A hostile or broken device cannot make the scan loop: bridges
//! are followed once per bus number and capability lists are walked at most
//! [`MAX_CAPS`] steps inside the configuration header.

use alloc::vec::Vec;
use core::fmt;

/// Bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bdf {
    /// Bus (0–255).
    pub bus: u8,
    /// Device (0–31).
    pub dev: u8,
    /// Function (0–7).
    pub func: u8,
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.dev, self.func)
    }
}

/// Access to configuration space (dword-aligned offsets below 256 for
/// legacy access, below 4096 for ECAM).
pub trait ConfigSpace {
    /// Reads the dword at `offset`.
    fn read32(&self, at: Bdf, offset: u16) -> u32;
    /// Writes the dword at `offset`.
    fn write32(&self, at: Bdf, offset: u16, value: u32);

    /// Reads a byte.
    fn read8(&self, at: Bdf, offset: u16) -> u8 {
        (self.read32(at, offset & !3) >> ((offset & 3) * 8)) as u8
    }
    /// Reads a 16-bit word.
    fn read16(&self, at: Bdf, offset: u16) -> u16 {
        (self.read32(at, offset & !3) >> ((offset & 2) * 8)) as u16
    }
}

/// A decoded base address register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented (or the upper half of a 64-bit BAR).
    None,
    /// I/O ports.
    Io {
        /// First port.
        port: u32,
        /// Number of ports.
        size: u32,
    },
    /// Memory.
    Mem {
        /// Physical address.
        addr: u64,
        /// Bytes.
        size: u64,
        /// Prefetchable.
        prefetch: bool,
        /// A 64-bit BAR (it used the next slot too).
        wide: bool,
    },
}

/// Longest capability list walked.
pub const MAX_CAPS: usize = 48;

/// Capability IDs.
pub mod cap {
    /// MSI.
    pub const MSI: u8 = 0x05;
    /// Vendor-specific (virtio's configuration structures).
    pub const VENDOR: u8 = 0x09;
    /// PCI Express.
    pub const PCIE: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// One function on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Where it is.
    pub bdf: Bdf,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Revision.
    pub revision: u8,
    /// Header type (0: device, 1: PCI-to-PCI bridge), without the
    /// multi-function bit.
    pub header_type: u8,
    /// Subsystem ID (header type 0).
    pub subsystem: u16,
    /// BARs (header type 0: six, bridges: two).
    pub bars: [Bar; 6],
    /// Capabilities as (id, offset).
    pub caps: Vec<(u8, u8)>,
    /// Legacy interrupt line and pin (0: none).
    pub irq: (u8, u8),
}

impl Function {
    /// A human-readable kind, from the class code (and vendor for virtio).
    pub fn kind(&self) -> &'static str {
        if self.vendor == 0x1af4 {
            return match self.device {
                0x1000 | 0x1041 => "virtio network",
                0x1001 | 0x1042 => "virtio block",
                0x1003 | 0x1043 => "virtio console",
                0x1005 | 0x1044 => "virtio entropy",
                0x1002 | 0x1045 => "virtio balloon",
                _ => "virtio device",
            };
        }
        match (self.class, self.subclass) {
            (0x01, 0x01) => "IDE controller",
            (0x01, 0x06) => "SATA controller",
            (0x01, 0x08) => "NVMe controller",
            (0x01, _) => "storage controller",
            (0x02, 0x00) => "Ethernet controller",
            (0x02, _) => "network controller",
            (0x03, _) => "display controller",
            (0x04, _) => "multimedia controller",
            (0x06, 0x00) => "host bridge",
            (0x06, 0x01) => "ISA bridge",
            (0x06, 0x04) => "PCI bridge",
            (0x06, 0x80) => "bridge",
            (0x06, _) => "bridge",
            (0x0c, 0x03) => "USB controller",
            (0x0c, 0x05) => "SMBus controller",
            (0x0c, _) => "serial bus controller",
            (0x08, _) => "system peripheral",
            _ => "device",
        }
    }

    /// The offset of the first capability with `id`.
    pub fn find_cap(&self, id: u8) -> Option<u8> {
        self.caps.iter().find(|c| c.0 == id).map(|c| c.1)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04x}:{:04x} {}",
            self.bdf,
            self.vendor,
            self.device,
            self.kind()
        )
    }
}

const COMMAND: u16 = 0x04;
/// Command register: I/O space, memory space, bus master.
pub const CMD_IO: u16 = 1;
/// Memory space enable.
pub const CMD_MEM: u16 = 2;
/// Bus master enable.
pub const CMD_MASTER: u16 = 4;
/// Interrupt disable (legacy INTx off).
pub const CMD_INTX_OFF: u16 = 1 << 10;

/// Sets `bits` in the command register.
pub fn enable(cs: &impl ConfigSpace, at: Bdf, bits: u16) {
    let v = cs.read32(at, COMMAND);
    cs.write32(at, COMMAND, v | u32::from(bits));
}

/// Sizes BAR `i` by writing all ones and reading back (decoding is
/// switched off meanwhile, and the original value restored).
fn read_bar(cs: &impl ConfigSpace, at: Bdf, i: usize) -> (Bar, bool) {
    let off = 0x10 + 4 * i as u16;
    let orig = cs.read32(at, off);
    let cmd = cs.read32(at, COMMAND);
    cs.write32(at, COMMAND, cmd & !u32::from(CMD_IO | CMD_MEM));
    cs.write32(at, off, u32::MAX);
    let mask = cs.read32(at, off);
    cs.write32(at, off, orig);
    let mut wide = false;
    let bar = if orig & 1 == 1 {
        let m = mask & !3;
        if m == 0 {
            Bar::None
        } else {
            Bar::Io {
                port: orig & !3,
                size: (!m).wrapping_add(1) & 0xffff,
            }
        }
    } else {
        wide = (orig >> 1) & 3 == 2 && i < 5;
        let prefetch = orig & 8 != 0;
        let (addr, mask64) = if wide {
            let hi_off = off + 4;
            let hi = cs.read32(at, hi_off);
            cs.write32(at, hi_off, u32::MAX);
            let hi_mask = cs.read32(at, hi_off);
            cs.write32(at, hi_off, hi);
            (
                (u64::from(hi) << 32) | u64::from(orig & !0xf),
                (u64::from(hi_mask) << 32) | u64::from(mask & !0xf),
            )
        } else {
            (
                u64::from(orig & !0xf),
                u64::from(mask & !0xf) | 0xffff_ffff_0000_0000,
            )
        };
        if mask & !0xf == 0 && !wide {
            Bar::None
        } else {
            let size = (!mask64).wrapping_add(1);
            if size == 0 {
                Bar::None
            } else {
                Bar::Mem {
                    addr,
                    size,
                    prefetch,
                    wide,
                }
            }
        }
    };
    cs.write32(at, COMMAND, cmd);
    (bar, wide)
}

fn read_caps(cs: &impl ConfigSpace, at: Bdf) -> Vec<(u8, u8)> {
    let mut caps = Vec::new();
    let status = cs.read16(at, 0x06);
    if status & 0x10 == 0 {
        return caps;
    }
    let mut ptr = cs.read8(at, 0x34) & 0xfc;
    while ptr >= 0x40 && caps.len() < MAX_CAPS {
        let id = cs.read8(at, u16::from(ptr));
        caps.push((id, ptr));
        ptr = cs.read8(at, u16::from(ptr) + 1) & 0xfc;
    }
    caps
}

fn read_function(cs: &impl ConfigSpace, at: Bdf) -> Option<Function> {
    let id = cs.read32(at, 0);
    let vendor = id as u16;
    if vendor == 0xffff || vendor == 0 {
        return None;
    }
    let class = cs.read32(at, 0x08);
    let header_type = cs.read8(at, 0x0e) & 0x7f;
    let nbars = match header_type {
        0 => 6,
        1 => 2,
        _ => 0,
    };
    let mut bars = [Bar::None; 6];
    let mut i = 0;
    while i < nbars {
        let (bar, wide) = read_bar(cs, at, i);
        bars[i] = bar;
        i += if wide { 2 } else { 1 };
    }
    let intr = cs.read32(at, 0x3c);
    Some(Function {
        bdf: at,
        vendor,
        device: (id >> 16) as u16,
        class: (class >> 24) as u8,
        subclass: (class >> 16) as u8,
        prog_if: (class >> 8) as u8,
        revision: class as u8,
        header_type,
        subsystem: if header_type == 0 {
            cs.read16(at, 0x2e)
        } else {
            0
        },
        bars,
        caps: read_caps(cs, at),
        irq: (intr as u8, (intr >> 8) as u8),
    })
}

/// Every function reachable from bus 0 (and through bridges), in bus
/// order. Each bus is scanned at most once.
pub fn scan(cs: &impl ConfigSpace) -> Vec<Function> {
    let mut found = Vec::new();
    let mut seen = [false; 256];
    let mut pending = Vec::from([0u8]);
    while let Some(bus) = pending.pop() {
        if core::mem::replace(&mut seen[usize::from(bus)], true) {
            continue;
        }
        for dev in 0..32 {
            let f0 = Bdf { bus, dev, func: 0 };
            if cs.read16(f0, 0) == 0xffff {
                continue;
            }
            let multi = cs.read8(f0, 0x0e) & 0x80 != 0;
            for func in 0..if multi { 8 } else { 1 } {
                let at = Bdf { bus, dev, func };
                if let Some(f) = read_function(cs, at) {
                    if f.header_type == 1 {
                        let secondary = cs.read8(at, 0x19);
                        if secondary != 0 {
                            pending.push(secondary);
                        }
                    }
                    found.push(f);
                }
            }
        }
    }
    found.sort_by_key(|f| f.bdf);
    found
}

/// One ECAM region from the ACPI MCFG table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ecam {
    /// Physical base (bus `start_bus`, device 0, function 0).
    pub base: u64,
    /// PCI segment group.
    pub segment: u16,
    /// First bus decoded.
    pub start_bus: u8,
    /// Last bus decoded.
    pub end_bus: u8,
}

impl Ecam {
    /// Byte offset of a function's configuration space in the region.
    pub fn offset(&self, at: Bdf) -> Option<u64> {
        if at.bus < self.start_bus || at.bus > self.end_bus || at.dev > 31 || at.func > 7 {
            return None;
        }
        Some(
            (u64::from(at.bus - self.start_bus) << 20)
                | (u64::from(at.dev) << 15)
                | (u64::from(at.func) << 12),
        )
    }

    /// Bytes the region spans.
    pub fn len(&self) -> u64 {
        (u64::from(self.end_bus.saturating_sub(self.start_bus)) + 1) << 20
    }

    /// Whether it decodes no bus (never: a region has at least one).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The ECAM regions of an MCFG table (checksummed by the caller). Entries
/// with the end bus before the start bus are skipped.
pub fn parse_mcfg(t: &[u8]) -> Vec<Ecam> {
    let mut out = Vec::new();
    if t.get(..4) != Some(b"MCFG") {
        return out;
    }
    let len = t
        .get(4..8)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .min(t.len());
    let mut off = 44;
    while off + 16 <= len {
        let e = &t[off..off + 16];
        let base = u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
        let r = Ecam {
            base,
            segment: u16::from_le_bytes([e[8], e[9]]),
            start_bus: e[10],
            end_bus: e[11],
        };
        if r.end_bus >= r.start_bus && base != 0 {
            out.push(r);
        }
        off += 16;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use std::collections::BTreeMap;

    /// A fake bus: config spaces by function, with BAR size masks.
    #[derive(Default)]
    struct FakeBus {
        space: RefCell<BTreeMap<Bdf, [u32; 64]>>,
        /// Writable-bit masks per (function, BAR dword offset).
        masks: BTreeMap<(Bdf, u16), u32>,
    }

    impl ConfigSpace for FakeBus {
        fn read32(&self, at: Bdf, offset: u16) -> u32 {
            self.space
                .borrow()
                .get(&at)
                .map_or(u32::MAX, |s| s[usize::from(offset / 4) % 64])
        }
        fn write32(&self, at: Bdf, offset: u16, value: u32) {
            if let Some(s) = self.space.borrow_mut().get_mut(&at) {
                let i = usize::from(offset / 4) % 64;
                s[i] = match self.masks.get(&(at, offset)) {
                    Some(m) if value == u32::MAX => m | (s[i] & !m & 0xf),
                    _ => value,
                };
            }
        }
    }

    fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf { bus, dev, func }
    }

    fn add(bus: &mut FakeBus, at: Bdf, vendor: u16, device: u16, class: u32, header: u8) {
        let mut s = [0u32; 64];
        s[0] = u32::from(vendor) | (u32::from(device) << 16);
        s[2] = class << 8;
        s[3] = u32::from(header) << 16;
        bus.space.borrow_mut().insert(at, s);
    }

    #[test]
    fn scans_functions_bridges_bars_and_caps() {
        let mut bus = FakeBus::default();
        add(&mut bus, bdf(0, 0, 0), 0x8086, 0x1237, 0x060000, 0);
        // A multi-function device with two functions.
        add(&mut bus, bdf(0, 1, 0), 0x8086, 0x7000, 0x060100, 0x80);
        add(&mut bus, bdf(0, 1, 1), 0x8086, 0x7010, 0x010180, 0);
        // virtio-net with an I/O BAR, a 64-bit memory BAR and caps.
        let net = bdf(0, 3, 0);
        add(&mut bus, net, 0x1af4, 0x1000, 0x020000, 0);
        {
            let mut sp = bus.space.borrow_mut();
            let s = sp.get_mut(&net).unwrap();
            s[4] = 0xc041; // BAR0: I/O at 0xc040
            s[8] = 0xfe00_000c; // BAR4: 64-bit prefetchable memory
            s[9] = 0;
            s[1] = 0x0010 << 16; // status: capability list
            s[13] = 0x40; // capabilities pointer
            s[16] = 0x5009 | (0x10 << 24); // vendor cap at 0x40 → 0x50
            s[20] = 0x0011; // MSI-X cap at 0x50, end
            s[15] = 0x0100 | 11; // INTA, line 11
        }
        bus.masks.insert((net, 0x10), 0xffff_ffe1);
        bus.masks.insert((net, 0x20), 0xffff_c00c);
        bus.masks.insert((net, 0x24), 0xffff_ffff);
        // A bridge to bus 1 with one device behind it, and a bridge that
        // points back to bus 0 (must not loop).
        let br = bdf(0, 4, 0);
        add(&mut bus, br, 0x8086, 0x1111, 0x060400, 1);
        bus.space.borrow_mut().get_mut(&br).unwrap()[6] = 0x0001_0100;
        add(&mut bus, bdf(1, 0, 0), 0x1234, 0x0001, 0x020000, 0);
        let back = bdf(1, 1, 0);
        add(&mut bus, back, 0x8086, 0x2222, 0x060400, 1);

        let found = scan(&bus);
        let bdfs: Vec<String> = found.iter().map(|f| f.bdf.to_string()).collect();
        assert_eq!(
            bdfs,
            [
                "00:00.0", "00:01.0", "00:01.1", "00:03.0", "00:04.0", "01:00.0", "01:01.0"
            ]
        );
        let n = found.iter().find(|f| f.bdf == net).unwrap();
        assert_eq!(n.to_string(), "00:03.0 1af4:1000 virtio network");
        assert_eq!(
            n.bars[0],
            Bar::Io {
                port: 0xc040,
                size: 32
            }
        );
        assert_eq!(
            n.bars[4],
            Bar::Mem {
                addr: 0xfe00_0000,
                size: 0x4000,
                prefetch: true,
                wide: true
            }
        );
        assert_eq!(n.bars[5], Bar::None);
        assert_eq!(n.caps, [(cap::VENDOR, 0x40), (cap::MSIX, 0x50)]);
        assert_eq!(n.find_cap(cap::MSIX), Some(0x50));
        assert_eq!(n.irq, (11, 1));
        // BAR sizing restored the original values.
        assert_eq!(bus.read32(net, 0x20), 0xfe00_000c);
        assert_eq!(found[1].kind(), "ISA bridge");
        assert_eq!(found[2].kind(), "IDE controller");
    }

    #[test]
    fn capability_loops_are_cut() {
        let mut bus = FakeBus::default();
        let at = bdf(0, 0, 0);
        add(&mut bus, at, 0x1af4, 0x1041, 0x020000, 0);
        {
            let mut sp = bus.space.borrow_mut();
            let s = sp.get_mut(&at).unwrap();
            s[1] = 0x0010 << 16;
            s[13] = 0x40;
            s[16] = 0x4009; // points at itself
        }
        let f = &scan(&bus)[0];
        assert_eq!(f.caps.len(), MAX_CAPS);
    }

    #[test]
    fn mcfg_regions() {
        let mut t = alloc::vec![0u8; 44 + 32];
        t[..4].copy_from_slice(b"MCFG");
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t[44..52].copy_from_slice(&0xb000_0000u64.to_le_bytes());
        t[54] = 0;
        t[55] = 0xff;
        // A bad entry (end before start) is skipped.
        t[60..68].copy_from_slice(&0xc000_0000u64.to_le_bytes());
        t[70] = 5;
        t[71] = 1;
        let r = parse_mcfg(&t);
        assert_eq!(
            r,
            [Ecam {
                base: 0xb000_0000,
                segment: 0,
                start_bus: 0,
                end_bus: 0xff
            }]
        );
        assert_eq!(r[0].len(), 256 << 20);
        assert_eq!(
            r[0].offset(bdf(1, 2, 3)),
            Some((1 << 20) | (2 << 15) | (3 << 12))
        );
        assert_eq!(r[0].offset(bdf(0, 32, 0)), None);
        assert!(parse_mcfg(b"MCFG").is_empty());
        assert!(parse_mcfg(b"APIC").is_empty());
    }
}
