//! ACPI table parsing: just what the kernel needs, with every read checked.
//!
//! The kernel hands in a [`PhysMemory`] that turns physical ranges into byte
//! slices (through its physical-memory mapping); tests hand in a fake. From
//! the RSDP address the bootloader reports, [`Acpi::new`] validates the RSDP
//! and the XSDT (or RSDT), and [`Acpi::find`] returns a checksummed table by
//! signature. On top of that:
//!
//! - [`Fadt`]: the PM1 control ports, the SMI command port, the DSDT address
//!   and the RTC century register, for ACPI power-off and the wall clock;
//! - [`Madt`]: the local APIC address and the processors' APIC IDs (SMP);
//! - [`s5_sleep_type`]: the `\_S5` package from the DSDT's AML, the value
//!   written to PM1x_CNT.SLP_TYP to power off.
//!
//! Firmware tables are input like any other: a bad checksum, a length that
//! runs past the table, or a truncated entry is an [`AcpiError`], never a
//! panic or an endless loop.

use core::fmt;

/// Access to physical memory as byte slices.
pub trait PhysMemory {
    /// The `len` bytes at physical address `phys`, or `None` if the range
    /// is not readable.
    fn bytes(&self, phys: u64, len: usize) -> Option<&[u8]>;
}

/// What went wrong reading the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// A physical range could not be read.
    Unreadable(u64),
    /// The RSDP signature is not `RSD PTR `.
    BadRsdpSignature,
    /// A checksum did not sum to zero; the signature says which structure.
    BadChecksum([u8; 4]),
    /// A table's length is smaller than its header or its fixed fields.
    BadLength([u8; 4]),
    /// A table had an unexpected signature.
    WrongSignature {
        /// What was asked for.
        expected: [u8; 4],
        /// What was found.
        found: [u8; 4],
    },
    /// A MADT entry is shorter than 2 bytes or runs past the table.
    BadMadtEntry(usize),
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn sig(s: &[u8; 4]) -> &str {
            core::str::from_utf8(s).unwrap_or("????")
        }
        match self {
            AcpiError::Unreadable(a) => write!(f, "physical memory at {a:#x} is not readable"),
            AcpiError::BadRsdpSignature => f.write_str("RSDP signature mismatch"),
            AcpiError::BadChecksum(s) => write!(f, "{} checksum mismatch", sig(s)),
            AcpiError::BadLength(s) => write!(f, "{} has an invalid length", sig(s)),
            AcpiError::WrongSignature { expected, found } => {
                write!(f, "expected table {}, found {}", sig(expected), sig(found))
            }
            AcpiError::BadMadtEntry(off) => write!(f, "malformed MADT entry at offset {off}"),
        }
    }
}

const HEADER_LEN: usize = 36;

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Reads and checksums the whole table at `phys`.
fn table_at<M: PhysMemory>(mem: &M, phys: u64) -> Result<&[u8], AcpiError> {
    let header = mem
        .bytes(phys, HEADER_LEN)
        .ok_or(AcpiError::Unreadable(phys))?;
    let mut sig = [0u8; 4];
    sig.copy_from_slice(&header[..4]);
    let len = u32_at(header, 4).ok_or(AcpiError::BadLength(sig))? as usize;
    if len < HEADER_LEN {
        return Err(AcpiError::BadLength(sig));
    }
    let table = mem.bytes(phys, len).ok_or(AcpiError::Unreadable(phys))?;
    if !checksum_ok(table) {
        return Err(AcpiError::BadChecksum(sig));
    }
    Ok(table)
}

/// The validated root of the ACPI tables.
pub struct Acpi<'m, M: PhysMemory> {
    mem: &'m M,
    root: &'m [u8],
    entry_size: usize,
    /// The ACPI revision from the RSDP (0 = ACPI 1.0).
    pub revision: u8,
}

impl<M: PhysMemory> fmt::Debug for Acpi<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acpi")
            .field("revision", &self.revision)
            .field(
                "tables",
                &(self.root.len().saturating_sub(HEADER_LEN) / self.entry_size),
            )
            .finish()
    }
}

impl<'m, M: PhysMemory> Acpi<'m, M> {
    /// Validates the RSDP at `rsdp_phys` and its XSDT (revision ≥ 2) or RSDT.
    pub fn new(mem: &'m M, rsdp_phys: u64) -> Result<Self, AcpiError> {
        let v1 = mem
            .bytes(rsdp_phys, 20)
            .ok_or(AcpiError::Unreadable(rsdp_phys))?;
        if &v1[..8] != b"RSD PTR " {
            return Err(AcpiError::BadRsdpSignature);
        }
        if !checksum_ok(v1) {
            return Err(AcpiError::BadChecksum(*b"RSDP"));
        }
        let revision = v1[15];
        let (root_phys, entry_size, expected) = if revision >= 2 {
            let v2 = mem
                .bytes(rsdp_phys, 36)
                .ok_or(AcpiError::Unreadable(rsdp_phys))?;
            if !checksum_ok(v2) {
                return Err(AcpiError::BadChecksum(*b"RSDP"));
            }
            (u64_at(v2, 24).unwrap_or(0), 8, *b"XSDT")
        } else {
            (u64::from(u32_at(v1, 16).unwrap_or(0)), 4, *b"RSDT")
        };
        let root = table_at(mem, root_phys)?;
        let found: [u8; 4] = root[..4].try_into().unwrap_or([0; 4]);
        if found != expected {
            return Err(AcpiError::WrongSignature { expected, found });
        }
        Ok(Self {
            mem,
            root,
            entry_size,
            revision,
        })
    }

    /// Physical addresses of all tables the root lists.
    pub fn table_addresses(&self) -> impl Iterator<Item = u64> + '_ {
        self.root[HEADER_LEN..]
            .chunks_exact(self.entry_size)
            .map(|c| match c.len() {
                8 => u64_at(c, 0).unwrap_or(0),
                _ => u64::from(u32_at(c, 0).unwrap_or(0)),
            })
    }

    /// The first table with signature `sig`, checksummed. Tables that fail
    /// validation are skipped, so one corrupt table does not hide another.
    pub fn find(&self, sig: &[u8; 4]) -> Option<&'m [u8]> {
        self.table_addresses().find_map(|phys| {
            let head = self.mem.bytes(phys, 4)?;
            if head != sig {
                return None;
            }
            table_at(self.mem, phys).ok()
        })
    }

    /// Reads the DSDT the FADT points to.
    pub fn dsdt(&self, fadt: &Fadt) -> Result<&'m [u8], AcpiError> {
        let t = table_at(self.mem, fadt.dsdt)?;
        if &t[..4] != b"DSDT" {
            return Err(AcpiError::WrongSignature {
                expected: *b"DSDT",
                found: t[..4].try_into().unwrap_or([0; 4]),
            });
        }
        Ok(t)
    }
}

/// The fields of the FADT (signature `FACP`) the kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fadt {
    /// Physical address of the DSDT (X_DSDT when present).
    pub dsdt: u64,
    /// The SMI command port used to switch to ACPI mode (0 = already in it).
    pub smi_cmd: u32,
    /// Value to write to `smi_cmd` to enable ACPI mode.
    pub acpi_enable: u8,
    /// The PM1a control register's I/O port.
    pub pm1a_cnt: u32,
    /// The PM1b control register's I/O port, if any.
    pub pm1b_cnt: Option<u32>,
    /// CMOS index of the RTC century register (0 = none).
    pub century: u8,
}

/// PM1 control register: SCI_EN (ACPI mode is on).
pub const PM1_SCI_EN: u16 = 1 << 0;
/// PM1 control register: SLP_EN (enter the sleep state in SLP_TYP).
pub const PM1_SLP_EN: u16 = 1 << 13;

/// The PM1 control value that enters a sleep state of type `slp_typ`.
pub fn pm1_sleep_value(slp_typ: u8) -> u16 {
    (u16::from(slp_typ & 0x7) << 10) | PM1_SLP_EN
}

impl Fadt {
    /// Parses a checksummed FADT.
    pub fn parse(t: &[u8]) -> Result<Self, AcpiError> {
        if t.get(..4) != Some(b"FACP") {
            return Err(AcpiError::WrongSignature {
                expected: *b"FACP",
                found: t.get(..4).and_then(|s| s.try_into().ok()).unwrap_or([0; 4]),
            });
        }
        let bad = AcpiError::BadLength(*b"FACP");
        let dsdt32 = u32_at(t, 40).ok_or(bad)?;
        let smi_cmd = u32_at(t, 48).ok_or(bad)?;
        let acpi_enable = *t.get(52).ok_or(bad)?;
        let pm1a_cnt32 = u32_at(t, 64).ok_or(bad)?;
        let pm1b_cnt32 = u32_at(t, 68).ok_or(bad)?;
        let century = t.get(108).copied().unwrap_or(0);
        // ACPI 2.0+ 64-bit fields, used when present and non-zero.
        let x_dsdt = u64_at(t, 140).filter(|&a| a != 0);
        // Generic address structures: space id 1 = system I/O.
        let gas_io = |off: usize| {
            let space = *t.get(off)?;
            let addr = u64_at(t, off + 4)?;
            (space == 1 && addr != 0 && addr <= 0xffff).then_some(addr as u32)
        };
        let pm1a_cnt = gas_io(172).unwrap_or(pm1a_cnt32);
        let pm1b_cnt = gas_io(184).or((pm1b_cnt32 != 0).then_some(pm1b_cnt32));
        Ok(Self {
            dsdt: x_dsdt.unwrap_or(u64::from(dsdt32)),
            smi_cmd,
            acpi_enable,
            pm1a_cnt,
            pm1b_cnt,
            century,
        })
    }
}

/// The most processors the kernel records.
pub const MAX_CPUS: usize = 256;

/// The fields of the MADT (signature `APIC`) the kernel uses.
#[derive(Debug, Clone)]
pub struct Madt {
    /// Physical address of the local APIC registers.
    pub lapic_addr: u64,
    /// Whether legacy 8259 PICs are present (PCAT_COMPAT).
    pub has_8259: bool,
    apic_ids: [u32; MAX_CPUS],
    cpus: usize,
    /// Processors listed beyond [`MAX_CPUS`] (ignored).
    pub ignored_cpus: usize,
}

impl Madt {
    /// Parses a checksummed MADT.
    pub fn parse(t: &[u8]) -> Result<Self, AcpiError> {
        let bad = AcpiError::BadLength(*b"APIC");
        if t.get(..4) != Some(b"APIC") {
            return Err(AcpiError::WrongSignature {
                expected: *b"APIC",
                found: t.get(..4).and_then(|s| s.try_into().ok()).unwrap_or([0; 4]),
            });
        }
        let mut madt = Madt {
            lapic_addr: u64::from(u32_at(t, 36).ok_or(bad)?),
            has_8259: u32_at(t, 40).ok_or(bad)? & 1 != 0,
            apic_ids: [0; MAX_CPUS],
            cpus: 0,
            ignored_cpus: 0,
        };
        let mut off = 44;
        while off < t.len() {
            let kind = t[off];
            let len = *t.get(off + 1).ok_or(AcpiError::BadMadtEntry(off))? as usize;
            if len < 2 || off + len > t.len() {
                return Err(AcpiError::BadMadtEntry(off));
            }
            let e = &t[off..off + len];
            match kind {
                0 if len >= 8 => {
                    let flags = u32_at(e, 4).unwrap_or(0);
                    if flags & 0b11 != 0 {
                        madt.push_cpu(u32::from(e[3]));
                    }
                }
                5 if len >= 12 => madt.lapic_addr = u64_at(e, 4).unwrap_or(madt.lapic_addr),
                9 if len >= 16 => {
                    let flags = u32_at(e, 8).unwrap_or(0);
                    if flags & 0b11 != 0 {
                        madt.push_cpu(u32_at(e, 4).unwrap_or(0));
                    }
                }
                _ => {}
            }
            off += len;
        }
        Ok(madt)
    }

    fn push_cpu(&mut self, id: u32) {
        if self.apic_ids[..self.cpus].contains(&id) {
            return;
        }
        if self.cpus < MAX_CPUS {
            self.apic_ids[self.cpus] = id;
            self.cpus += 1;
        } else {
            self.ignored_cpus += 1;
        }
    }

    /// APIC IDs of the usable processors, in table order.
    pub fn apic_ids(&self) -> &[u32] {
        &self.apic_ids[..self.cpus]
    }
}

/// Finds `\_S5` in DSDT AML and returns `(SLP_TYPa, SLP_TYPb)`.
///
/// This reads the one `Name(_S5, Package(){a, b, …})` object rather than
/// interpreting AML; firmware that computes `_S5` in a method is not
/// supported and yields `None` (the kernel then halts instead).
pub fn s5_sleep_type(dsdt: &[u8]) -> Option<(u8, u8)> {
    let aml = dsdt.get(HEADER_LEN..)?;
    let mut from = 0;
    while let Some(pos) = aml.get(from..)?.windows(4).position(|w| w == b"_S5_") {
        let at = from + pos;
        from = at + 1;
        // NameOp, optionally followed by the root prefix '\'.
        let named = (at >= 1 && aml[at - 1] == 0x08)
            || (at >= 2 && aml[at - 1] == b'\\' && aml[at - 2] == 0x08);
        if !named {
            continue;
        }
        let mut p = at + 4;
        if *aml.get(p)? != 0x12 {
            continue; // not a Package
        }
        p += 1;
        let pkg_len_bytes = (*aml.get(p)? >> 6) as usize;
        p += 1 + pkg_len_bytes;
        let _num_elements = *aml.get(p)?;
        p += 1;
        let mut values = [0u8; 2];
        for v in &mut values {
            let (val, used) = match *aml.get(p)? {
                0x00 => (0, 1),                // ZeroOp
                0x01 => (1, 1),                // OneOp
                0x0a => (*aml.get(p + 1)?, 2), // BytePrefix
                0x0b => (*aml.get(p + 1)?, 3), // WordPrefix (low byte)
                0x0c => (*aml.get(p + 1)?, 5), // DWordPrefix (low byte)
                b if b < 0x08 => (b, 1),
                _ => return None,
            };
            *v = val;
            p += used;
        }
        return Some((values[0], values[1]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Fake physical memory: a few buffers at chosen addresses.
    #[derive(Default)]
    struct Mem(BTreeMap<u64, Vec<u8>>);

    impl PhysMemory for Mem {
        fn bytes(&self, phys: u64, len: usize) -> Option<&[u8]> {
            let (base, buf) = self.0.range(..=phys).next_back()?;
            let off = usize::try_from(phys - base).ok()?;
            buf.get(off..off.checked_add(len)?)
        }
    }

    fn fix_checksum(t: &mut [u8], at: usize) {
        t[at] = 0;
        let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        t[at] = 0u8.wrapping_sub(sum);
    }

    fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; HEADER_LEN];
        t[..4].copy_from_slice(sig);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        fix_checksum(&mut t, 9);
        t
    }

    fn rsdp_v2(xsdt: u64) -> Vec<u8> {
        let mut r = vec![0u8; 36];
        r[..8].copy_from_slice(b"RSD PTR ");
        r[15] = 2;
        r[20..24].copy_from_slice(&36u32.to_le_bytes());
        r[24..32].copy_from_slice(&xsdt.to_le_bytes());
        fix_checksum(&mut r[..20], 8);
        fix_checksum(&mut r, 32);
        r
    }

    fn fadt_body(dsdt: u32) -> Vec<u8> {
        let mut b = vec![0u8; 276 - HEADER_LEN];
        let put32 = |b: &mut Vec<u8>, off: usize, v: u32| {
            b[off - HEADER_LEN..off - HEADER_LEN + 4].copy_from_slice(&v.to_le_bytes())
        };
        put32(&mut b, 40, dsdt);
        put32(&mut b, 48, 0xb2);
        b[52 - HEADER_LEN] = 0xf1;
        put32(&mut b, 64, 0x604);
        b[108 - HEADER_LEN] = 0x32;
        b
    }

    fn dsdt_with_s5(aml: &[u8]) -> Vec<u8> {
        table(b"DSDT", aml)
    }

    /// A machine like QEMU's: RSDP → XSDT → {FACP → DSDT, APIC}.
    fn machine() -> Mem {
        let mut m = Mem::default();
        let mut madt = vec![0u8; 8];
        madt[..4].copy_from_slice(&0xfee0_0000u32.to_le_bytes());
        madt[4] = 1; // PCAT_COMPAT
        for (id, flags) in [(0u8, 1u32), (1, 1), (2, 0), (3, 2)] {
            madt.extend_from_slice(&[0, 8, id, id]);
            madt.extend_from_slice(&flags.to_le_bytes());
        }
        madt.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]); // IO APIC
        m.0.insert(0x1000, rsdp_v2(0x2000));
        let mut xsdt_body = Vec::new();
        for a in [0x3000u64, 0x4000] {
            xsdt_body.extend_from_slice(&a.to_le_bytes());
        }
        m.0.insert(0x2000, table(b"XSDT", &xsdt_body));
        m.0.insert(0x3000, table(b"FACP", &fadt_body(0x5000)));
        m.0.insert(0x4000, table(b"APIC", &madt));
        // Name(\_S5, Package(0x04){ 0x05, Zero, Zero, Zero })
        let aml = [
            0x10, 0x05, b'\\', 0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0a, 0x05,
            0x00, 0x00, 0x00,
        ];
        m.0.insert(0x5000, dsdt_with_s5(&aml));
        m
    }

    #[test]
    fn walks_a_qemu_like_machine() {
        let m = machine();
        let acpi = Acpi::new(&m, 0x1000).unwrap();
        assert_eq!(acpi.revision, 2);
        let fadt = Fadt::parse(acpi.find(b"FACP").unwrap()).unwrap();
        assert_eq!(fadt.pm1a_cnt, 0x604);
        assert_eq!(fadt.pm1b_cnt, None);
        assert_eq!(fadt.smi_cmd, 0xb2);
        assert_eq!(fadt.acpi_enable, 0xf1);
        assert_eq!(fadt.century, 0x32);
        assert_eq!(fadt.dsdt, 0x5000);
        let dsdt = acpi.dsdt(&fadt).unwrap();
        assert_eq!(s5_sleep_type(dsdt), Some((5, 0)));
        assert_eq!(pm1_sleep_value(5), 0x3400);
        let madt = Madt::parse(acpi.find(b"APIC").unwrap()).unwrap();
        assert_eq!(madt.lapic_addr, 0xfee0_0000);
        assert!(madt.has_8259);
        assert_eq!(madt.apic_ids(), &[0, 1, 3], "disabled CPU 2 is skipped");
        assert!(acpi.find(b"HPET").is_none());
    }

    #[test]
    fn rejects_bad_rsdp() {
        let mut m = machine();
        m.0.get_mut(&0x1000).unwrap()[0] = b'X';
        assert_eq!(
            Acpi::new(&m, 0x1000).unwrap_err(),
            AcpiError::BadRsdpSignature
        );
        let mut m = machine();
        m.0.get_mut(&0x1000).unwrap()[30] ^= 1;
        assert_eq!(
            Acpi::new(&m, 0x1000).unwrap_err(),
            AcpiError::BadChecksum(*b"RSDP")
        );
        assert_eq!(
            Acpi::new(&m, 0x9_0000).unwrap_err(),
            AcpiError::Unreadable(0x9_0000)
        );
    }

    #[test]
    fn corrupt_table_is_skipped_not_trusted() {
        let mut m = machine();
        m.0.get_mut(&0x4000).unwrap()[50] ^= 0xff;
        let acpi = Acpi::new(&m, 0x1000).unwrap();
        assert!(acpi.find(b"APIC").is_none());
        assert!(acpi.find(b"FACP").is_some());
    }

    #[test]
    fn table_length_past_memory_is_unreadable() {
        let mut m = machine();
        let x = m.0.get_mut(&0x2000).unwrap();
        x[4..8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert_eq!(
            Acpi::new(&m, 0x1000).unwrap_err(),
            AcpiError::Unreadable(0x2000)
        );
        let x = m.0.get_mut(&0x2000).unwrap();
        x[4..8].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(
            Acpi::new(&m, 0x1000).unwrap_err(),
            AcpiError::BadLength(*b"XSDT")
        );
    }

    #[test]
    fn malformed_madt_entries_are_errors() {
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&[0, 0]); // zero-length entry would loop forever
        assert_eq!(
            Madt::parse(&table(b"APIC", &body)).unwrap_err(),
            AcpiError::BadMadtEntry(44)
        );
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&[0, 8, 0]); // runs past the end
        assert_eq!(
            Madt::parse(&table(b"APIC", &body)).unwrap_err(),
            AcpiError::BadMadtEntry(44)
        );
        assert!(matches!(Madt::parse(b"APIC"), Err(AcpiError::BadLength(_))));
        assert!(matches!(Fadt::parse(b"FACP"), Err(AcpiError::BadLength(_))));
    }

    #[test]
    fn s5_variants() {
        let with = |aml: &[u8]| s5_sleep_type(&table(b"DSDT", aml));
        // Without the root prefix, with One/Zero ops.
        assert_eq!(
            with(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x01, 0x00]),
            Some((1, 0))
        );
        // Raw small integers as some firmware emits.
        assert_eq!(
            with(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x07, 0x07]),
            Some((7, 7))
        );
        // A reference to _S5_ that is not a Name declaration is skipped.
        assert_eq!(with(&[0x70, b'_', b'S', b'5', b'_']), None);
        // Truncated package.
        assert_eq!(with(&[0x08, b'_', b'S', b'5', b'_', 0x12]), None);
        // A method-computed _S5 is unsupported.
        assert_eq!(with(&[0x08, b'_', b'S', b'5', b'_', 0x14, 0x00]), None);
        assert_eq!(s5_sleep_type(&[0; 10]), None);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = Madt::parse(&bytes);
            let _ = Fadt::parse(&bytes);
            let _ = s5_sleep_type(&bytes);
            let mut m = Mem::default();
            m.0.insert(0, bytes);
            let _ = Acpi::new(&m, 0).map(|a| a.find(b"APIC"));
        }
    }
}
