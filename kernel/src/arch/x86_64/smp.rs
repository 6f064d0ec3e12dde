//! Starting application processors: the real-mode trampoline and the
//! INIT-SIPI-SIPI sequence.
//!
//! The trampoline is copied to physical [`TRAMPOLINE`] (below 1 MiB, which
//! the frame allocator never hands out) and identity-mapped in the kernel's
//! page tables. An AP starts there in real mode, loads a temporary GDT,
//! enters protected mode, turns on PAE, loads the kernel's CR3 (which must
//! lie below 4 GiB for the 32-bit `mov cr3`), enables long mode and NX,
//! enables paging and jumps to 64-bit code, which loads its stack and calls
//! the kernel entry with the CPU's index. The parameters live in the last
//! bytes of the trampoline page and are filled in for each AP in turn.

use core::sync::atomic::{AtomicBool, Ordering};

use ::x86_64::registers::control::Cr3;
use ::x86_64::structures::paging::PageTableFlags;

use super::apic;
use crate::memory::paging;

/// Physical (and identity-mapped virtual) address of the trampoline.
pub const TRAMPOLINE: u64 = 0x8000;

core::arch::global_asm!(
    ".global llmos_ap_trampoline_start",
    ".global llmos_ap_trampoline_end",
    ".code16",
    "llmos_ap_trampoline_start:",
    "    cli",
    "    cld",
    "    xorw %ax, %ax",
    "    movw %ax, %ds",
    "    movw $(0x8000 + (.Ltramp_gdtp - llmos_ap_trampoline_start)), %bx",
    "    lgdtl (%bx)",
    "    movl %cr0, %eax",
    "    orl $1, %eax",
    "    movl %eax, %cr0",
    "    ljmpl $0x08, $(0x8000 + (.Ltramp32 - llmos_ap_trampoline_start))",
    ".code32",
    ".Ltramp32:",
    "    movw $0x10, %ax",
    "    movw %ax, %ds",
    "    movw %ax, %es",
    "    movw %ax, %ss",
    "    movl %cr4, %eax",
    "    orl $0x20, %eax",
    "    movl %eax, %cr4",
    "    movl $(0x8000 + (.Ltramp_cr3 - llmos_ap_trampoline_start)), %ebx",
    "    movl (%ebx), %eax",
    "    movl %eax, %cr3",
    "    movl $0xc0000080, %ecx",
    "    rdmsr",
    "    orl $0x900, %eax",
    "    wrmsr",
    "    movl %cr0, %eax",
    "    orl $0x80010001, %eax",
    "    movl %eax, %cr0",
    "    ljmpl $0x18, $(0x8000 + (.Ltramp64 - llmos_ap_trampoline_start))",
    ".code64",
    ".Ltramp64:",
    "    movl $(0x8000 + (.Ltramp_stack - llmos_ap_trampoline_start)), %ebx",
    "    movq (%rbx), %rsp",
    "    movq 16(%rbx), %rdi",
    "    movq 8(%rbx), %rax",
    "    callq *%rax",
    "    ud2",
    ".balign 8",
    ".Ltramp_gdt:",
    "    .quad 0",
    "    .quad 0x00cf9a000000ffff",
    "    .quad 0x00cf92000000ffff",
    "    .quad 0x00af9a000000ffff",
    ".Ltramp_gdtp:",
    "    .word 31",
    "    .long 0x8000 + (.Ltramp_gdt - llmos_ap_trampoline_start)",
    ".balign 8",
    ".Ltramp_cr3:",
    "    .quad 0",
    ".Ltramp_stack:",
    "    .quad 0",
    "    .quad 0",
    "    .quad 0",
    "llmos_ap_trampoline_end:",
    ".code64",
    options(att_syntax)
);

unsafe extern "C" {
    static llmos_ap_trampoline_start: u8;
    static llmos_ap_trampoline_end: u8;
}

/// Offsets of the parameter words from the end of the trampoline.
const PARAM_CR3: usize = 32;
const PARAM_STACK: usize = 24;
const PARAM_ENTRY: usize = 16;
const PARAM_ARG: usize = 8;

/// Why APs cannot be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmpError {
    /// The kernel's page tables lie above 4 GiB.
    HighCr3(u64),
    /// The trampoline page could not be mapped.
    Map,
}

/// Set by an AP once it runs kernel code.
pub static AP_STARTED: AtomicBool = AtomicBool::new(false);

fn trampoline_bytes() -> &'static [u8] {
    let start = core::ptr::addr_of!(llmos_ap_trampoline_start);
    let end = core::ptr::addr_of!(llmos_ap_trampoline_end);
    // SAFETY: both symbols delimit the trampoline in the kernel's text,
    // which is mapped and never written.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// Copies the trampoline to low memory and identity-maps its page.
pub fn prepare() -> Result<(), SmpError> {
    let (l4, _) = Cr3::read();
    let cr3 = l4.start_address().as_u64();
    if cr3 >= 1 << 32 {
        return Err(SmpError::HighCr3(cr3));
    }
    if paging::translate(TRAMPOLINE) != Some(TRAMPOLINE) {
        // SAFETY: the page below 1 MiB is never handed out by the frame
        // allocator; mapping it at its own address (executable, for the
        // AP's switch to long mode) aliases nothing the kernel uses.
        unsafe {
            paging::map_phys(
                TRAMPOLINE,
                TRAMPOLINE,
                4096,
                PageTableFlags::PRESENT | PageTableFlags::WRITABLE,
            )
            .map_err(|_| SmpError::Map)?;
        }
    }
    let code = trampoline_bytes();
    let dst = (paging::phys_offset() + TRAMPOLINE) as *mut u8;
    // SAFETY: the destination page is reserved low memory reached through
    // the physical-memory mapping; the trampoline is smaller than a page.
    unsafe {
        core::ptr::copy_nonoverlapping(code.as_ptr(), dst, code.len());
        dst.add(code.len() - PARAM_CR3)
            .cast::<u64>()
            .write_unaligned(cr3);
    }
    Ok(())
}

/// Starts the AP with APIC ID `apic_id` as CPU number `cpu`, running
/// `entry(cpu)` on the stack whose top is `stack_top`. Returns whether it
/// reported in within about a second.
pub fn start_ap(apic_id: u32, cpu: usize, stack_top: u64, entry: extern "C" fn(u64) -> !) -> bool {
    let len = trampoline_bytes().len();
    let base = (paging::phys_offset() + TRAMPOLINE) as *mut u8;
    // SAFETY: the parameter words lie inside the copied trampoline.
    unsafe {
        base.add(len - PARAM_STACK)
            .cast::<u64>()
            .write_unaligned(stack_top);
        base.add(len - PARAM_ENTRY)
            .cast::<u64>()
            .write_unaligned(entry as *const () as u64);
        base.add(len - PARAM_ARG)
            .cast::<u64>()
            .write_unaligned(cpu as u64);
    }
    AP_STARTED.store(false, Ordering::SeqCst);
    apic::send_init(apic_id);
    crate::time::spin_for(10_000_000);
    for _ in 0..2 {
        apic::send_startup(apic_id, (TRAMPOLINE >> 12) as u8);
        crate::time::spin_for(200_000);
        if AP_STARTED.load(Ordering::SeqCst) {
            break;
        }
    }
    let deadline = crate::time::now_nanos() + 1_000_000_000;
    while crate::time::now_nanos() < deadline {
        if AP_STARTED.load(Ordering::SeqCst) {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}
