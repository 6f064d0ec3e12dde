//! The PVH entry: how QEMU's `-kernel` (and other VMMs that load ELF kernels
//! directly) start llmos without firmware reading a disk image.
//!
//! QEMU finds the `XEN_ELFNOTE_PHYS32_ENTRY` note below, copies the kernel's
//! segments to their physical addresses (`linker.ld`: virtual minus
//! [`KERNEL_BASE`]) and the `-initrd` file into RAM, and jumps to
//! `llmos_pvh_start32` in 32-bit protected mode with paging off and EBX
//! pointing at an `hvm_start_info` (decoded by `kcore::pvh`).
//!
//! The 32-bit code builds the page tables the bootloader would have:
//! - the kernel image at its link address with 4 KiB pages: text read-only
//!   and executable, rodata read-only, data and bss writable, both
//!   no-execute;
//! - the first 4 GiB of physical memory at [`PHYS_OFFSET`] with 2 MiB pages,
//!   no-execute (RAM above that is added in [`llmos_pvh_main`]);
//! - a temporary identity map of the first 1 GiB for the switch itself,
//!   removed as soon as the code runs at its higher-half address.
//!
//! It then enables PAE, long mode and NX, turns paging on, jumps to 64-bit
//! code, moves to the higher half, and calls [`llmos_pvh_main`], which reads
//! the memory map, the initrd and the RSDP from the start info and enters
//! the common boot sequence (`init::start`).

use core::sync::atomic::{AtomicU64, Ordering};

use kcore::memmap::{self, Region, RegionKind};
use kcore::pvh::{self, StartInfo};

use crate::init::{Boot, Loader};

/// Where the kernel image's physical address 0 is mapped (`linker.ld`).
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
/// Where all physical memory is mapped (level-4 entry 256).
pub const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Memory-map entries the boot path can hold after carving.
const MAX_REGIONS: usize = 192;
const GIB: u64 = 1 << 30;

core::arch::global_asm!(
    // The entry note QEMU looks for: name "Xen", type 18, the 32-bit
    // physical entry address.
    ".pushsection .note.Xen, \"a\", @note",
    ".balign 4",
    ".long 4",
    ".long 4",
    ".long 18",
    ".asciz \"Xen\"",
    ".balign 4",
    ".long llmos_pvh_start32 - 0xffffffff80000000",
    ".balign 4",
    ".popsection",
    //
    ".pushsection .text.pvh32, \"ax\"",
    ".code32",
    ".global llmos_pvh_start32",
    "llmos_pvh_start32:",
    "    cli",
    "    cld",
    "    movl %ebx, %esi",
    // Long mode is required; NX is used when present (EBP holds the
    // no-execute bit of an entry's high half, or 0).
    "    movl $0x80000000, %eax",
    "    cpuid",
    "    cmpl $0x80000001, %eax",
    "    jb .Lpvh_no_lm",
    "    movl $0x80000001, %eax",
    "    cpuid",
    "    btl $29, %edx",
    "    jnc .Lpvh_no_lm",
    "    xorl %ebp, %ebp",
    "    btl $20, %edx",
    "    jnc 1f",
    "    movl $0x80000000, %ebp",
    "1:",
    // Level 4: identity (0), physical map (256), kernel (511).
    "    movl $(llmos_pvh_pdpt_ident - 0xffffffff80000000 + 3), %eax",
    "    movl %eax, (llmos_pvh_pml4 - 0xffffffff80000000)",
    "    movl $(llmos_pvh_pdpt_phys - 0xffffffff80000000 + 3), %eax",
    "    movl %eax, (llmos_pvh_pml4 - 0xffffffff80000000 + 256 * 8)",
    "    movl $(llmos_pvh_pdpt_kernel - 0xffffffff80000000 + 3), %eax",
    "    movl %eax, (llmos_pvh_pml4 - 0xffffffff80000000 + 511 * 8)",
    // Identity map of the first 1 GiB, 2 MiB pages, executable.
    "    movl $(llmos_pvh_pd_ident - 0xffffffff80000000 + 3), %eax",
    "    movl %eax, (llmos_pvh_pdpt_ident - 0xffffffff80000000)",
    "    movl $(llmos_pvh_pd_ident - 0xffffffff80000000), %edi",
    "    movl $0x83, %eax",
    "    movl $512, %ecx",
    "2:",
    "    movl %eax, (%edi)",
    "    addl $0x200000, %eax",
    "    addl $8, %edi",
    "    loop 2b",
    // Physical map of the first 4 GiB, 2 MiB pages, no-execute.
    "    movl $(llmos_pvh_pd_phys - 0xffffffff80000000 + 3), %eax",
    "    movl $(llmos_pvh_pdpt_phys - 0xffffffff80000000), %edi",
    "    movl $4, %ecx",
    "3:",
    "    movl %eax, (%edi)",
    "    addl $4096, %eax",
    "    addl $8, %edi",
    "    loop 3b",
    "    movl $(llmos_pvh_pd_phys - 0xffffffff80000000), %edi",
    "    movl $0x83, %eax",
    "    movl $2048, %ecx",
    "4:",
    "    movl %eax, (%edi)",
    "    movl %ebp, 4(%edi)",
    "    addl $0x200000, %eax",
    "    addl $8, %edi",
    "    loop 4b",
    // The kernel image: PD entry i covers physical [i * 2 MiB, +2 MiB),
    // so the page tables form one flat array indexed by physical page.
    "    movl $(llmos_pvh_pd_kernel - 0xffffffff80000000 + 3), %eax",
    "    movl %eax, (llmos_pvh_pdpt_kernel - 0xffffffff80000000 + 510 * 8)",
    "    movl $(llmos_pvh_pt_kernel - 0xffffffff80000000 + 3), %eax",
    "    movl $(llmos_pvh_pd_kernel - 0xffffffff80000000), %edi",
    "    movl $8, %ecx",
    "5:",
    "    movl %eax, (%edi)",
    "    addl $4096, %eax",
    "    addl $8, %edi",
    "    loop 5b",
    "    movl $(__kernel_start - 0xffffffff80000000), %eax",
    "6:",
    "    cmpl $(__kernel_end - 0xffffffff80000000), %eax",
    "    jae 9f",
    "    movl %eax, %edi",
    "    shrl $12, %edi",
    "    leal (llmos_pvh_pt_kernel - 0xffffffff80000000)(,%edi,8), %edi",
    "    movl %eax, %edx",
    "    orl $1, %edx",
    "    movl %ebp, %ecx",
    "    cmpl $(__text_end - 0xffffffff80000000), %eax",
    "    jae 7f",
    "    xorl %ecx, %ecx",
    "    jmp 8f",
    "7:",
    "    cmpl $(__rodata_end - 0xffffffff80000000), %eax",
    "    jb 8f",
    "    orl $2, %edx",
    "8:",
    "    movl %edx, (%edi)",
    "    movl %ecx, 4(%edi)",
    "    addl $4096, %eax",
    "    jmp 6b",
    "9:",
    // PAE, long mode (+NX), paging with write protection, 64-bit code.
    "    movl $(llmos_pvh_pml4 - 0xffffffff80000000), %eax",
    "    movl %eax, %cr3",
    "    movl %cr4, %eax",
    "    orl $0x20, %eax",
    "    movl %eax, %cr4",
    "    movl $0xc0000080, %ecx",
    "    rdmsr",
    "    orl $0x100, %eax",
    "    testl %ebp, %ebp",
    "    jz 1f",
    "    orl $0x800, %eax",
    "1:",
    "    wrmsr",
    "    lgdtl (llmos_pvh_gdtr32 - 0xffffffff80000000)",
    "    movl %cr0, %eax",
    "    orl $0x80010001, %eax",
    "    movl %eax, %cr0",
    "    ljmpl $0x08, $(llmos_pvh_start64 - 0xffffffff80000000)",
    // No long mode: say so on COM1 and stop.
    ".Lpvh_no_lm:",
    "    movl $(llmos_pvh_no_lm - 0xffffffff80000000), %esi",
    "    movw $0x3f8, %dx",
    "1:",
    "    movb (%esi), %al",
    "    testb %al, %al",
    "    jz 2f",
    "    outb %al, %dx",
    "    incl %esi",
    "    jmp 1b",
    "2:",
    "    hlt",
    "    jmp 2b",
    ".code64",
    "llmos_pvh_start64:",
    "    xorl %eax, %eax",
    "    movw %ax, %ds",
    "    movw %ax, %es",
    "    movw %ax, %ss",
    "    movw %ax, %fs",
    "    movw %ax, %gs",
    "    movabsq $llmos_pvh_high, %rax",
    "    jmpq *%rax",
    "llmos_pvh_high:",
    "    lgdtq llmos_pvh_gdtr64(%rip)",
    "    leaq llmos_pvh_stack_top(%rip), %rsp",
    "    movq $0, llmos_pvh_pml4(%rip)",
    "    movq %cr3, %rax",
    "    movq %rax, %cr3",
    "    movl %esi, %edi",
    "    xorl %ebp, %ebp",
    "    callq llmos_pvh_main",
    "    ud2",
    ".popsection",
    //
    ".pushsection .rodata.llmos_pvh, \"a\"",
    ".balign 8",
    "llmos_pvh_gdt:",
    "    .quad 0",
    "    .quad 0x00af9a000000ffff",
    "    .quad 0x00cf92000000ffff",
    "llmos_pvh_gdtr32:",
    "    .word 23",
    "    .long llmos_pvh_gdt - 0xffffffff80000000",
    "llmos_pvh_gdtr64:",
    "    .word 23",
    "    .quad llmos_pvh_gdt",
    "llmos_pvh_no_lm:",
    "    .asciz \"llmos: this CPU has no 64-bit mode; llmos runs on x86_64 only\\r\\n\"",
    ".popsection",
    //
    ".pushsection .bss.llmos_pvh, \"aw\", @nobits",
    ".balign 4096",
    ".global llmos_pvh_pdpt_phys",
    "llmos_pvh_pml4: .skip 4096",
    "llmos_pvh_pdpt_ident: .skip 4096",
    "llmos_pvh_pd_ident: .skip 4096",
    "llmos_pvh_pdpt_phys: .skip 4096",
    "llmos_pvh_pd_phys: .skip 4 * 4096",
    "llmos_pvh_pdpt_kernel: .skip 4096",
    "llmos_pvh_pd_kernel: .skip 4096",
    "llmos_pvh_pt_kernel: .skip 8 * 4096",
    "llmos_pvh_stack: .skip 65536",
    "llmos_pvh_stack_top:",
    ".popsection",
    options(att_syntax)
);

unsafe extern "C" {
    static mut llmos_pvh_pdpt_phys: [u64; 512];
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// End of the physical range mapped at [`PHYS_OFFSET`] so far.
static MAPPED: AtomicU64 = AtomicU64::new(4 * GIB);

/// Why the PVH start info could not be used.
#[derive(Debug, Clone, Copy)]
pub enum PvhBootError {
    /// The start info itself.
    StartInfo(pvh::PvhError),
    /// The memory map has more entries than the kernel holds.
    Regions(memmap::CarveError),
    /// A structure lies outside the mapped physical memory.
    Unmapped(&'static str, u64),
    /// No memory map (start info version 0).
    NoMemoryMap,
}

impl core::fmt::Display for PvhBootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PvhBootError::StartInfo(e) => write!(f, "{e}"),
            PvhBootError::Regions(e) => write!(f, "{e}"),
            PvhBootError::Unmapped(what, at) => {
                write!(f, "the {what} at {at:#x} lies outside mapped memory")
            }
            PvhBootError::NoMemoryMap => {
                f.write_str("the PVH start info (version 0) carries no memory map")
            }
        }
    }
}

/// `len` bytes of physical memory at `addr`, if mapped.
fn phys_bytes(addr: u64, len: usize) -> Option<&'static [u8]> {
    let end = addr.checked_add(len as u64)?;
    if end > MAPPED.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: `[addr, end)` lies in the physical-memory map built by the
    // entry code (or extended by `map_high_ram`); the boot structures read
    // through it are not written while the kernel reads them.
    Some(unsafe { core::slice::from_raw_parts((PHYS_OFFSET + addr) as *const u8, len) })
}

/// Maps RAM above 4 GiB at [`PHYS_OFFSET`] with 1 GiB pages (the entry
/// code's 2 MiB tables cover only the first 4 GiB). Returns the new end of
/// the mapping.
fn map_high_ram(ram_end: u64) -> u64 {
    use core::arch::x86_64::__cpuid;
    let gib_pages =
        __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).edx & (1 << 26) != 0;
    if ram_end <= 4 * GIB || !gib_pages {
        return MAPPED.load(Ordering::Relaxed);
    }
    let nx = if ::x86_64::registers::model_specific::Efer::read()
        .contains(::x86_64::registers::model_specific::EferFlags::NO_EXECUTE_ENABLE)
    {
        1u64 << 63
    } else {
        0
    };
    let end = ram_end.div_ceil(GIB).min(512);
    for gib in 4..end {
        // SAFETY: the level-3 table of the physical map is the entry code's
        // static, used by nothing else yet (one CPU, no allocator); a
        // present, writable, 1 GiB entry maps RAM the memory map reports.
        unsafe {
            (*core::ptr::addr_of_mut!(llmos_pvh_pdpt_phys))[gib as usize] = (gib * GIB) | 0x83 | nx;
        }
    }
    ::x86_64::instructions::tlb::flush_all();
    MAPPED.store(end * GIB, Ordering::Relaxed);
    // Touch the top of RAM now, so a mapping mistake shows here (as a page
    // fault at boot) rather than when the allocator first hands it out.
    let top = ram_end.min(end * GIB) - 8;
    // SAFETY: `top` lies in RAM just mapped at PHYS_OFFSET; a read has no
    // effect on it.
    let _ = unsafe { core::ptr::read_volatile((PHYS_OFFSET + top) as *const u64) };
    end * GIB
}

fn page_down(a: u64) -> u64 {
    a & !0xfff
}

fn page_up(a: u64) -> u64 {
    a.saturating_add(0xfff) & !0xfff
}

fn read(info_addr: u64, out: &mut [Region]) -> Result<Boot<'_>, PvhBootError> {
    let bytes = phys_bytes(info_addr, pvh::START_INFO_LEN)
        .ok_or(PvhBootError::Unmapped("start info", info_addr))?;
    let info = StartInfo::parse(bytes).map_err(PvhBootError::StartInfo)?;
    if info.memmap_paddr == 0 || info.memmap_entries == 0 {
        return Err(PvhBootError::NoMemoryMap);
    }
    let entries = info.memmap_entries as usize;
    let table = phys_bytes(info.memmap_paddr, entries * pvh::MEMMAP_ENTRY_LEN)
        .ok_or(PvhBootError::Unmapped("memory map", info.memmap_paddr))?;

    let mut ramdisk = None;
    let mut modules = (0, 0);
    if info.nr_modules > 0 {
        let m = phys_bytes(info.modlist_paddr, pvh::MODULE_LEN)
            .ok_or(PvhBootError::Unmapped("module list", info.modlist_paddr))?;
        let (at, len) = pvh::parse_module(m).map_err(PvhBootError::StartInfo)?;
        modules = (
            info.modlist_paddr,
            info.nr_modules as u64 * pvh::MODULE_LEN as u64,
        );
        if len > 0 {
            ramdisk = Some((at, len));
        }
    }

    let ram = table
        .as_chunks::<{ pvh::MEMMAP_ENTRY_LEN }>()
        .0
        .iter()
        .filter_map(|e| pvh::parse_memmap_entry(e).ok());
    let ram_end = ram
        .clone()
        .filter(|r| r.kind == RegionKind::Usable)
        .map(|r| r.end)
        .max()
        .unwrap_or(0);
    let mapped = map_high_ram(ram_end);

    // Linker symbols: only their addresses are used.
    let kstart = core::ptr::addr_of!(__kernel_start) as u64 - KERNEL_BASE;
    let kend = core::ptr::addr_of!(__kernel_end) as u64 - KERNEL_BASE;
    let mut holes = [
        (kstart, kend),
        (info_addr, info_addr + pvh::START_INFO_LEN as u64),
        (
            info.memmap_paddr,
            info.memmap_paddr + (entries * pvh::MEMMAP_ENTRY_LEN) as u64,
        ),
        (modules.0, modules.0 + modules.1),
        ramdisk.map_or((0, 0), |(at, len)| (at, at.saturating_add(len))),
        // RAM the physical map does not reach (no 1 GiB pages, or beyond
        // 512 GiB) cannot be used.
        (mapped, u64::MAX),
    ];
    for h in &mut holes {
        *h = (page_down(h.0), page_up(h.1));
    }
    let n = memmap::carve(ram, &holes, out).map_err(PvhBootError::Regions)?;
    // The unreachable tail is not RAM the kernel holds: report it reserved.
    for r in out[..n].iter_mut() {
        if r.start >= mapped {
            r.kind = RegionKind::Reserved;
        }
    }

    let ramdisk = match ramdisk {
        Some((at, len)) => {
            let len = usize::try_from(len).map_err(|_| PvhBootError::Unmapped("initrd", at))?;
            Some(phys_bytes(at, len).ok_or(PvhBootError::Unmapped("initrd", at))?)
        }
        None => None,
    };
    let rsdp = info
        .rsdp()
        .or_else(|| phys_bytes(0xe0000, 0x20000).and_then(|a| pvh::find_rsdp(a, 0xe0000)));
    Ok(Boot {
        loader: Loader::Pvh {
            version: info.version,
            unmapped_from: (ram_end > mapped).then_some(mapped),
        },
        phys_offset: PHYS_OFFSET,
        regions: &out[..n],
        rsdp,
        ramdisk,
    })
}

/// Called by the entry code on the boot stack with the start info's
/// physical address; never returns.
#[unsafe(no_mangle)]
extern "C" fn llmos_pvh_main(info_addr: u64) -> ! {
    let mut regions = [Region {
        start: 0,
        end: 0,
        kind: RegionKind::Reserved,
    }; MAX_REGIONS];
    let boot = read(info_addr, &mut regions);
    crate::init::start(boot)
}
