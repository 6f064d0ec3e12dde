//! Parsing and validating x86_64 Linux executables before they are loaded.
//!
//! [`parse`] accepts static executables (`ET_EXEC`) and static-pie ones
//! (`ET_DYN` without `PT_INTERP`) and returns a [`Program`]: the loadable
//! segments with their exact permissions, the entry point, and what the
//! loader and the initial stack need (`PT_PHDR`/program-header location,
//! `PT_TLS`, `PT_GNU_RELRO`). Everything is checked against the file's
//! length and against overflow; anything malformed or unsupported is an
//! [`ElfError`] with a message a person can act on (a dynamic executable's
//! error names its interpreter), never a panic.
//!
//! Policy, stricter than Linux where Linux is lax: no segment may be both
//! writable and executable, the stack may not be executable, `PT_LOAD`s
//! must be in ascending order without overlapping pages, and a fixed-address
//! executable may not map anything in the first 64 KiB.

use alloc::vec::Vec;
use core::fmt;

/// Page size the loader works in.
pub const PAGE: u64 = 4096;
/// Lowest address a segment may use (NULL-pointer guard).
pub const MIN_ADDR: u64 = 0x10000;
/// One past the highest user address (the top page stays unmapped).
pub const USER_END: u64 = 0x0000_7fff_ffff_f000;
/// Most program headers accepted.
pub const MAX_PHDRS: usize = 128;
/// Largest span a position-independent image may cover.
pub const MAX_PIE_SPAN: u64 = 1 << 40;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_RELRO: u32 = 0x6474_e552;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Why a file cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than the ELF header.
    TooShort,
    /// No `\x7fELF` magic.
    NotElf,
    /// 32-bit or big-endian.
    WrongClass,
    /// Not x86_64.
    WrongMachine(u16),
    /// Not an executable (a relocatable object, a core file…).
    WrongType(u16),
    /// An OS ABI other than System V / GNU.
    WrongAbi(u8),
    /// A field of the header is inconsistent.
    BadHeader(&'static str),
    /// The program-header table lies outside the file or is too large.
    BadPhdrTable,
    /// A dynamically linked executable; carries the interpreter path.
    Dynamic(alloc::string::String),
    /// A segment is malformed; the index and what is wrong.
    BadSegment(usize, &'static str),
    /// A segment asks to be writable and executable.
    WritableAndExecutable(usize),
    /// `PT_GNU_STACK` asks for an executable stack.
    ExecutableStack,
    /// Two loadable segments share pages or are out of order.
    Overlap(usize),
    /// No loadable segment.
    NoSegments,
    /// The entry point is not in an executable segment.
    BadEntry(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::TooShort => f.write_str("file is too short to be an ELF executable"),
            ElfError::NotElf => f.write_str("not an ELF file (no \\x7fELF magic)"),
            ElfError::WrongClass => f.write_str("not a 64-bit little-endian ELF file"),
            ElfError::WrongMachine(m) => write!(f, "built for machine {m}, not x86_64 (62)"),
            ElfError::WrongType(t) => write!(
                f,
                "ELF type {t} is not an executable (need ET_EXEC or static-pie ET_DYN)"
            ),
            ElfError::WrongAbi(a) => write!(f, "OS ABI {a} is not System V/Linux"),
            ElfError::BadHeader(w) => write!(f, "malformed ELF header: {w}"),
            ElfError::BadPhdrTable => {
                f.write_str("program header table is outside the file or too large")
            }
            ElfError::Dynamic(interp) => write!(
                f,
                "dynamically linked (interpreter {interp}); llmos runs static executables only: \
                 rebuild with `-C target-feature=+crt-static` (Rust) or `-static-pie` (C)"
            ),
            ElfError::BadSegment(i, w) => write!(f, "program header {i}: {w}"),
            ElfError::WritableAndExecutable(i) => {
                write!(
                    f,
                    "program header {i} is writable and executable; llmos never maps W+X"
                )
            }
            ElfError::ExecutableStack => f.write_str(
                "the program asks for an executable stack (PT_GNU_STACK with PF_X); not supported",
            ),
            ElfError::Overlap(i) => write!(
                f,
                "loadable segment {i} overlaps or precedes the one before it"
            ),
            ElfError::NoSegments => f.write_str("no loadable segments"),
            ElfError::BadEntry(e) => {
                write!(f, "entry point {e:#x} is not in an executable segment")
            }
        }
    }
}

/// Whether the image is loaded at its link addresses or anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ET_EXEC`: fixed addresses.
    Exec,
    /// `ET_DYN` without an interpreter: static-pie, loaded at a random base.
    StaticPie,
}

/// Segment permissions: the same access rights a mapping has.
pub use crate::vma::Prot as Perms;

/// A `PT_LOAD` segment, addresses relative to the load bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of the first byte.
    pub vaddr: u64,
    /// Bytes in memory (the tail beyond `filesz` is zero).
    pub memsz: u64,
    /// Offset of the file bytes.
    pub offset: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// Permissions.
    pub perms: Perms,
}

impl Segment {
    /// First page (rounded down).
    pub fn page_start(&self) -> u64 {
        self.vaddr & !(PAGE - 1)
    }

    /// End, rounded up to a page.
    pub fn page_end(&self) -> u64 {
        (self.vaddr + self.memsz).div_ceil(PAGE) * PAGE
    }
}

/// The thread-local storage template (`PT_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls {
    /// Address of the initialisation image.
    pub vaddr: u64,
    /// Bytes of initialised data.
    pub filesz: u64,
    /// Total size.
    pub memsz: u64,
    /// Alignment.
    pub align: u64,
}

/// A validated executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Fixed or position-independent.
    pub kind: Kind,
    /// Entry point (relative to the load bias for static-pie).
    pub entry: u64,
    /// Loadable segments in ascending address order.
    pub segments: Vec<Segment>,
    /// Where the program headers are in memory (for `AT_PHDR`).
    pub phdr_vaddr: u64,
    /// Program-header entry size (`AT_PHENT`).
    pub phent: u64,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: u64,
    /// `PT_TLS`, if any.
    pub tls: Option<Tls>,
    /// `PT_GNU_RELRO` range (vaddr, size), if any.
    pub relro: Option<(u64, u64)>,
}

impl Program {
    /// Lowest page-aligned address any segment uses.
    pub fn span_start(&self) -> u64 {
        self.segments.first().map_or(0, Segment::page_start)
    }

    /// End of the highest segment, page-aligned.
    pub fn span_end(&self) -> u64 {
        self.segments.last().map_or(0, Segment::page_end)
    }
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// Validates `data` as an x86_64 Linux executable.
pub fn parse(data: &[u8]) -> Result<Program, ElfError> {
    if data.len() < 64 {
        return Err(if data.starts_with(b"\x7fELF") || data.len() < 4 {
            ElfError::TooShort
        } else {
            ElfError::NotElf
        });
    }
    if &data[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    if data[4] != 2 || data[5] != 1 {
        return Err(ElfError::WrongClass);
    }
    if data[6] != 1 {
        return Err(ElfError::BadHeader("EI_VERSION is not 1"));
    }
    if data[7] != 0 && data[7] != 3 {
        return Err(ElfError::WrongAbi(data[7]));
    }
    let e_type = u16_at(data, 16);
    let machine = u16_at(data, 18);
    if machine != 62 {
        return Err(ElfError::WrongMachine(machine));
    }
    let kind = match e_type {
        2 => Kind::Exec,
        3 => Kind::StaticPie,
        t => return Err(ElfError::WrongType(t)),
    };
    if u32_at(data, 20) != 1 {
        return Err(ElfError::BadHeader("e_version is not 1"));
    }
    let entry = u64_at(data, 24);
    let phoff = u64_at(data, 32);
    if u16_at(data, 52) != 64 {
        return Err(ElfError::BadHeader("e_ehsize is not 64"));
    }
    let phentsize = u16_at(data, 54);
    let phnum = u16_at(data, 56) as usize;
    if phentsize != 56 {
        return Err(ElfError::BadHeader("e_phentsize is not 56"));
    }
    if phnum == 0 || phnum > MAX_PHDRS {
        return Err(ElfError::BadPhdrTable);
    }
    let table_len = phnum * 56;
    let table_start = usize::try_from(phoff).map_err(|_| ElfError::BadPhdrTable)?;
    let table_end = table_start
        .checked_add(table_len)
        .ok_or(ElfError::BadPhdrTable)?;
    let table = data
        .get(table_start..table_end)
        .ok_or(ElfError::BadPhdrTable)?;

    let phdrs = table.as_chunks::<56>().0.iter().map(|p| Phdr {
        kind: u32_at(p, 0),
        flags: u32_at(p, 4),
        offset: u64_at(p, 8),
        vaddr: u64_at(p, 16),
        filesz: u64_at(p, 32),
        memsz: u64_at(p, 40),
        align: u64_at(p, 48),
    });

    let mut segments: Vec<Segment> = Vec::new();
    let mut tls = None;
    let mut relro = None;
    let mut phdr_vaddr = None;
    let limit = match kind {
        Kind::Exec => USER_END,
        Kind::StaticPie => MAX_PIE_SPAN,
    };
    for (i, ph) in phdrs.enumerate() {
        let in_file = |off: u64, len: u64| {
            off.checked_add(len)
                .is_some_and(|end| end <= data.len() as u64)
        };
        let in_space = |addr: u64, len: u64| addr.checked_add(len).is_some_and(|end| end <= limit);
        match ph.kind {
            PT_LOAD => {
                if ph.memsz == 0 {
                    continue;
                }
                if ph.filesz > ph.memsz {
                    return Err(ElfError::BadSegment(i, "file size exceeds memory size"));
                }
                if !in_file(ph.offset, ph.filesz) {
                    return Err(ElfError::BadSegment(i, "file bytes lie outside the file"));
                }
                if !in_space(ph.vaddr, ph.memsz) {
                    return Err(ElfError::BadSegment(i, "addresses lie outside user space"));
                }
                if ph.align > 1 && !ph.align.is_power_of_two() {
                    return Err(ElfError::BadSegment(i, "alignment is not a power of two"));
                }
                if ph.vaddr % PAGE != ph.offset % PAGE {
                    return Err(ElfError::BadSegment(
                        i,
                        "address and file offset differ modulo the page size",
                    ));
                }
                let perms = Perms {
                    read: ph.flags & PF_R != 0,
                    write: ph.flags & PF_W != 0,
                    exec: ph.flags & PF_X != 0,
                };
                if perms.write && perms.exec {
                    return Err(ElfError::WritableAndExecutable(i));
                }
                let seg = Segment {
                    vaddr: ph.vaddr,
                    memsz: ph.memsz,
                    offset: ph.offset,
                    filesz: ph.filesz,
                    perms,
                };
                if let Some(prev) = segments.last()
                    && seg.page_start() < prev.page_end()
                {
                    return Err(ElfError::Overlap(i));
                }
                if kind == Kind::Exec && seg.page_start() < MIN_ADDR {
                    return Err(ElfError::BadSegment(
                        i,
                        "maps the first 64 KiB (NULL guard)",
                    ));
                }
                segments.push(seg);
            }
            PT_INTERP => {
                let start = usize::try_from(ph.offset).ok();
                let len = usize::try_from(ph.filesz).ok();
                let interp = start
                    .zip(len)
                    .and_then(|(s, l)| data.get(s..s.checked_add(l.min(4096))?))
                    .map(|b| {
                        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                        alloc::string::String::from_utf8_lossy(&b[..end]).into_owned()
                    })
                    .unwrap_or_else(|| alloc::string::String::from("<unreadable>"));
                return Err(ElfError::Dynamic(interp));
            }
            PT_PHDR => phdr_vaddr = Some(ph.vaddr),
            PT_TLS => {
                if ph.filesz > ph.memsz
                    || !in_file(ph.offset, ph.filesz)
                    || !in_space(ph.vaddr, ph.memsz)
                {
                    return Err(ElfError::BadSegment(i, "malformed PT_TLS"));
                }
                if ph.align > 1 && !ph.align.is_power_of_two() {
                    return Err(ElfError::BadSegment(
                        i,
                        "PT_TLS alignment is not a power of two",
                    ));
                }
                tls = Some(Tls {
                    vaddr: ph.vaddr,
                    filesz: ph.filesz,
                    memsz: ph.memsz,
                    align: ph.align.max(1),
                });
            }
            PT_GNU_STACK => {
                if ph.flags & PF_X != 0 {
                    return Err(ElfError::ExecutableStack);
                }
            }
            PT_GNU_RELRO => {
                if !in_space(ph.vaddr, ph.memsz) {
                    return Err(ElfError::BadSegment(i, "malformed PT_GNU_RELRO"));
                }
                relro = Some((ph.vaddr, ph.memsz));
            }
            PT_DYNAMIC => {}
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(ElfError::NoSegments);
    }
    let in_exec = segments
        .iter()
        .any(|s| s.perms.exec && entry >= s.vaddr && entry < s.vaddr + s.memsz);
    if !in_exec {
        return Err(ElfError::BadEntry(entry));
    }
    let covered = |addr: u64, len: u64| {
        segments.iter().any(|s| {
            addr >= s.vaddr
                && addr
                    .checked_add(len)
                    .is_some_and(|e| e <= s.vaddr + s.memsz)
        })
    };
    if let Some(t) = tls
        && t.memsz > 0
        && !covered(t.vaddr, t.filesz)
    {
        return Err(ElfError::BadSegment(
            0,
            "PT_TLS image is not inside a loadable segment",
        ));
    }
    // AT_PHDR: PT_PHDR if present, else the loaded copy of the table.
    let phdr_vaddr = match phdr_vaddr {
        Some(v) => v,
        None => segments
            .iter()
            .find(|s| phoff >= s.offset && phoff + table_len as u64 <= s.offset + s.filesz)
            .map(|s| s.vaddr + (phoff - s.offset))
            .unwrap_or(0),
    };
    Ok(Program {
        kind,
        entry,
        segments,
        phdr_vaddr,
        phent: 56,
        phnum: phnum as u64,
        tls,
        relro,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Builds a minimal ELF: header + program headers, then `body` bytes.
    fn build(e_type: u16, entry: u64, phdrs: &[(u32, u32, u64, u64, u64, u64)]) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&e_type.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for &(kind, flags, offset, vaddr, filesz, memsz) in phdrs {
            let mut p = vec![0u8; 56];
            p[0..4].copy_from_slice(&kind.to_le_bytes());
            p[4..8].copy_from_slice(&flags.to_le_bytes());
            p[8..16].copy_from_slice(&offset.to_le_bytes());
            p[16..24].copy_from_slice(&vaddr.to_le_bytes());
            p[24..32].copy_from_slice(&vaddr.to_le_bytes());
            p[32..40].copy_from_slice(&filesz.to_le_bytes());
            p[40..48].copy_from_slice(&memsz.to_le_bytes());
            p[48..56].copy_from_slice(&PAGE.to_le_bytes());
            f.extend_from_slice(&p);
        }
        f.resize(0x3000, 0xcc);
        f
    }

    fn pie() -> Vec<u8> {
        build(
            3,
            0x1010,
            &[
                (PT_PHDR, PF_R, 64, 64, 56 * 4, 56 * 4),
                (PT_LOAD, PF_R, 0, 0, 0x1000, 0x1000),
                (PT_LOAD, PF_R | PF_X, 0x1000, 0x1000, 0x1000, 0x1000),
                (PT_LOAD, PF_R | PF_W, 0x2000, 0x2000, 0x800, 0x5000),
            ],
        )
    }

    #[test]
    fn parses_a_static_pie() {
        let p = parse(&pie()).unwrap();
        assert_eq!(p.kind, Kind::StaticPie);
        assert_eq!(p.entry, 0x1010);
        assert_eq!(p.segments.len(), 3);
        assert_eq!(p.segments[1].perms.to_string(), "r-x");
        assert_eq!(p.segments[2].perms.to_string(), "rw-");
        assert_eq!(p.segments[2].page_end(), 0x7000);
        assert_eq!((p.span_start(), p.span_end()), (0, 0x7000));
        assert_eq!(p.phdr_vaddr, 64);
        assert_eq!(p.phnum, 4);
    }

    #[test]
    fn fixed_executables_keep_the_null_guard() {
        let bad = build(
            2,
            0x1000,
            &[(PT_LOAD, PF_R | PF_X, 0, 0x1000, 0x100, 0x100)],
        );
        assert_eq!(
            parse(&bad),
            Err(ElfError::BadSegment(
                0,
                "maps the first 64 KiB (NULL guard)"
            ))
        );
        let good = build(
            2,
            0x401000,
            &[(PT_LOAD, PF_R | PF_X, 0, 0x400000, 0x2000, 0x2000)],
        );
        let p = parse(&good).unwrap();
        assert_eq!(p.kind, Kind::Exec);
        assert_eq!(
            p.phdr_vaddr, 0x400040,
            "AT_PHDR from the segment that holds the table"
        );
    }

    #[test]
    fn dynamic_executables_name_their_interpreter() {
        let mut f = build(
            3,
            0x1010,
            &[
                (PT_INTERP, PF_R, 0x200, 0x200, 28, 28),
                (PT_LOAD, PF_R | PF_X, 0, 0, 0x2000, 0x2000),
            ],
        );
        f[0x200..0x200 + 28].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        let e = parse(&f).unwrap_err();
        assert_eq!(e, ElfError::Dynamic("/lib64/ld-linux-x86-64.so.2".into()));
        assert!(e.to_string().contains("crt-static"));
    }

    #[test]
    fn rejects_wx_exec_stack_overlap_and_bad_entry() {
        let wx = build(3, 0, &[(PT_LOAD, PF_R | PF_W | PF_X, 0, 0, 0x100, 0x100)]);
        assert_eq!(parse(&wx), Err(ElfError::WritableAndExecutable(0)));
        let stack = build(
            3,
            0,
            &[
                (PT_LOAD, PF_R | PF_X, 0, 0, 0x100, 0x100),
                (PT_GNU_STACK, PF_R | PF_W | PF_X, 0, 0, 0, 0),
            ],
        );
        assert_eq!(parse(&stack), Err(ElfError::ExecutableStack));
        let overlap = build(
            3,
            0,
            &[
                (PT_LOAD, PF_R | PF_X, 0, 0, 0x1800, 0x1800),
                (PT_LOAD, PF_R | PF_W, 0x1800, 0x1800, 0x100, 0x100),
            ],
        );
        assert_eq!(parse(&overlap), Err(ElfError::Overlap(1)));
        let entry = build(3, 0x5000, &[(PT_LOAD, PF_R | PF_X, 0, 0, 0x100, 0x100)]);
        assert_eq!(parse(&entry), Err(ElfError::BadEntry(0x5000)));
        let none = build(3, 0, &[(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0)]);
        assert_eq!(parse(&none), Err(ElfError::NoSegments));
    }

    #[test]
    fn rejects_out_of_file_and_overflowing_segments() {
        let past = build(3, 0, &[(PT_LOAD, PF_R | PF_X, 0x2000, 0, 0x2000, 0x2000)]);
        assert_eq!(
            parse(&past),
            Err(ElfError::BadSegment(0, "file bytes lie outside the file"))
        );
        let wrap = build(
            3,
            0,
            &[(PT_LOAD, PF_R | PF_X, 0, u64::MAX - 10, 0x10, 0x100)],
        );
        assert!(matches!(parse(&wrap), Err(ElfError::BadSegment(0, _))));
        let kernel_half = build(
            2,
            0xffff_8000_0000_0000,
            &[(PT_LOAD, PF_R | PF_X, 0, 0xffff_8000_0000_0000, 0x10, 0x10)],
        );
        assert_eq!(
            parse(&kernel_half),
            Err(ElfError::BadSegment(0, "addresses lie outside user space"))
        );
        let big = build(
            3,
            0,
            &[
                (PT_LOAD, PF_R | PF_X, 0, 0, 0x10, 0x100),
                (PT_LOAD, PF_R, 0x1000, 0x1000, 0x10, 0x20),
            ],
        );
        let mut bad_size = big.clone();
        bad_size[64 + 56 + 32..64 + 56 + 40].copy_from_slice(&0x30u64.to_le_bytes());
        assert_eq!(
            parse(&bad_size),
            Err(ElfError::BadSegment(1, "file size exceeds memory size"))
        );
        let congruence = build(3, 0, &[(PT_LOAD, PF_R | PF_X, 0x10, 0, 0x10, 0x10)]);
        assert!(matches!(
            parse(&congruence),
            Err(ElfError::BadSegment(0, _))
        ));
    }

    #[test]
    fn header_checks() {
        assert_eq!(parse(b""), Err(ElfError::TooShort));
        assert_eq!(parse(b"\x7fELF"), Err(ElfError::TooShort));
        assert_eq!(parse(&[0u8; 100]), Err(ElfError::NotElf));
        assert_eq!(parse(b"#!/bin/sh\necho hi\n"), Err(ElfError::NotElf));
        let mut f = pie();
        f[4] = 1;
        assert_eq!(parse(&f), Err(ElfError::WrongClass));
        let mut f = pie();
        f[18] = 3;
        assert_eq!(parse(&f), Err(ElfError::WrongMachine(3)));
        let mut f = pie();
        f[16] = 1;
        assert_eq!(parse(&f), Err(ElfError::WrongType(1)));
        let mut f = pie();
        f[54] = 32;
        assert!(matches!(parse(&f), Err(ElfError::BadHeader(_))));
        let mut f = pie();
        f[56] = 0;
        assert_eq!(parse(&f), Err(ElfError::BadPhdrTable));
        let mut f = pie();
        f[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse(&f), Err(ElfError::BadPhdrTable));
        let mut f = pie();
        f[7] = 9;
        assert_eq!(parse(&f), Err(ElfError::WrongAbi(9)));
    }

    /// Replays the cargo-fuzz corpus (`fuzz/corpus/elf`), so every input
    /// the fuzzer found interesting stays covered by `cargo test`.
    #[test]
    fn fuzz_corpus_replays_cleanly() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/elf");
        let mut n = 0;
        let mut accepted = 0;
        for entry in std::fs::read_dir(dir).expect("fuzz/corpus/elf exists") {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(p) = parse(&data) {
                accepted += 1;
                assert!(p.segments.iter().all(|s| !(s.perms.write && s.perms.exec)));
            }
            n += 1;
        }
        assert!(n >= 4, "corpus has only {n} files");
        assert!(accepted >= 2, "the seeds include valid executables");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_mutations(pos in 0usize..400, val in proptest::num::u8::ANY, pos2 in 0usize..400, val2 in proptest::num::u8::ANY) {
            let mut f = pie();
            f[pos] = val;
            f[pos2] = val2;
            let _ = parse(&f);
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..700)) {
            let mut b = bytes;
            if b.len() >= 4 { b[..4].copy_from_slice(b"\x7fELF"); }
            let _ = parse(&b);
        }
    }
}
