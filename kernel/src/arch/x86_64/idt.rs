//! The interrupt descriptor table: a handler for every CPU exception, the
//! local APIC timer, and the APIC's spurious vector.
//!
//! The kernel cannot recover from an exception in ring 0, so every handler
//! prints a diagnostic — vector, name, error code (decoded for page faults),
//! RIP, CS, RFLAGS, RSP and CR2 — and ends in `panic::fatal`, which prints
//! the `kernel panic:` line and powers off with failure. A double fault
//! whose CR2 lies in a kernel stack's guard area is reported as a kernel
//! stack overflow. Double fault, NMI and machine check run on IST stacks.
//!
//! An early IDT without IST stacks is loaded first thing at boot, before the
//! TSS exists, so even faults during memory set-up are reported.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use ::x86_64::registers::control::Cr2;
use ::x86_64::structures::idt::{
    InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode,
};
use kcore::bootlog::{Timestamp, write_event};
use spin::Lazy;

use super::gdt::{DOUBLE_FAULT_IST, MACHINE_CHECK_IST, NMI_IST};
use super::usercopy::clac_on_entry;
use crate::drivers::serial;

/// The local APIC timer's vector.
pub const TIMER_VECTOR: u8 = 0x20;
/// The local APIC's spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Timer interrupts taken since boot.
pub static TIMER_TICKS: AtomicU64 = AtomicU64::new(0);
/// Timer interrupts per CPU (`/proc/interrupts`, LOC).
pub static TIMER_TICKS_PER_CPU: [AtomicU64; super::syscall::MAX_CPUS] =
    [const { AtomicU64::new(0) }; super::syscall::MAX_CPUS];
/// Reschedule IPIs per CPU (`/proc/interrupts`, RES).
pub static RESCHED_IPIS_PER_CPU: [AtomicU64; super::syscall::MAX_CPUS] =
    [const { AtomicU64::new(0) }; super::syscall::MAX_CPUS];

static EARLY_IDT: Lazy<InterruptDescriptorTable> = Lazy::new(|| build(false));
static IDT: Lazy<InterruptDescriptorTable> = Lazy::new(|| build(true));

/// Loads the early IDT (no IST stacks). Call first thing at boot.
pub fn init_early() {
    EARLY_IDT.load();
}

/// Loads the final IDT. Call after `gdt::init` has loaded the TSS.
pub fn init() {
    IDT.load();
}

macro_rules! plain {
    ($fn_name:ident, $vector:expr, $name:expr) => {
        extern "x86-interrupt" fn $fn_name(frame: InterruptStackFrame) {
            clac_on_entry();
            die($vector, $name, None, &frame, format_args!(""));
        }
    };
}

macro_rules! with_code {
    ($fn_name:ident, $vector:expr, $name:expr) => {
        extern "x86-interrupt" fn $fn_name(frame: InterruptStackFrame, code: u64) {
            clac_on_entry();
            die($vector, $name, Some(code), &frame, format_args!(""));
        }
    };
}

plain!(divide_error, 0, "divide error (#DE)");
plain!(debug, 1, "debug exception (#DB)");
plain!(breakpoint, 3, "breakpoint (#BP)");
plain!(overflow, 4, "overflow (#OF)");
plain!(bound_range, 5, "BOUND range exceeded (#BR)");
plain!(invalid_opcode, 6, "invalid opcode (#UD)");
plain!(device_not_available, 7, "device not available (#NM)");
with_code!(invalid_tss, 10, "invalid TSS (#TS)");
with_code!(segment_not_present, 11, "segment not present (#NP)");
with_code!(stack_segment, 12, "stack-segment fault (#SS)");
with_code!(general_protection, 13, "general protection fault (#GP)");
plain!(x87_floating_point, 16, "x87 floating-point exception (#MF)");
with_code!(alignment_check, 17, "alignment check (#AC)");
plain!(
    simd_floating_point,
    19,
    "SIMD floating-point exception (#XM)"
);
plain!(virtualization, 20, "virtualization exception (#VE)");
with_code!(control_protection, 21, "control protection exception (#CP)");
plain!(hv_injection, 28, "hypervisor injection exception (#HV)");
with_code!(vmm_communication, 29, "VMM communication exception (#VC)");
with_code!(security, 30, "security exception (#SX)");

extern "x86-interrupt" fn nmi(frame: InterruptStackFrame) {
    clac_on_entry();
    die(
        2,
        "non-maskable interrupt (NMI)",
        None,
        &frame,
        format_args!(""),
    );
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    clac_on_entry();
    let cr2 = Cr2::read_raw();
    if let Some(stack) = crate::memory::stacks::guard_owner(cr2) {
        die(
            8,
            "double fault (#DF)",
            Some(code),
            &frame,
            format_args!(
                ": kernel stack overflow, guard page of the `{stack}` stack hit at {cr2:#x}"
            ),
        )
    }
    die(
        8,
        "double fault (#DF)",
        Some(code),
        &frame,
        format_args!(""),
    )
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    clac_on_entry();
    die(18, "machine check (#MC)", None, &frame, format_args!(""))
}

extern "x86-interrupt" fn page_fault(mut frame: InterruptStackFrame, code: PageFaultErrorCode) {
    // A fault inside the copy routine (AC set by STAC) resolves with AC
    // clear; IRETQ sets it again for the rest of the copy.
    clac_on_entry();
    #[cfg(feature = "test-hooks")]
    super::usercopy::assert_ac_clear("the page-fault handler");
    let cr2 = Cr2::read_raw();
    let write = code.contains(PageFaultErrorCode::CAUSED_BY_WRITE);
    let exec = code.contains(PageFaultErrorCode::INSTRUCTION_FETCH);
    let from_user = frame.code_segment.rpl() as u8 == 3;
    let rip = frame.instruction_pointer.as_u64();
    let in_copy = !from_user && rip == super::usercopy::copy_insn_ip();
    if cr2 < kcore::elf::USER_END && (from_user || in_copy) {
        let outcome = crate::process::handle_user_fault(cr2, write, exec);
        if outcome == crate::memory::user::FaultOutcome::Resolved {
            return;
        }
        if from_user {
            super::syscall::kernel_gs_after_user_exception();
            crate::process::kill_for_fault(cr2, rip, write, exec, outcome);
        }
        // A kernel copy touched memory the process does not have: resume
        // at the copy routine's fixup, which reports EFAULT.
        // SAFETY: the fixup label belongs to the same routine, expects the
        // same stack and registers, and returns the bytes left in RCX.
        unsafe {
            frame.as_mut().update(|f| {
                f.instruction_pointer = ::x86_64::VirtAddr::new(super::usercopy::fixup_ip())
            });
        }
        return;
    }
    let access = kcore::vma::access_name(write, exec);
    let why = if code.contains(PageFaultErrorCode::PROTECTION_VIOLATION) {
        "protection violation"
    } else {
        "page not present"
    };
    if let Some(stack) = crate::memory::stacks::guard_owner(cr2) {
        die(
            14,
            "page fault (#PF)",
            Some(code.bits()),
            &frame,
            format_args!(
                ": kernel stack overflow, guard page of the `{stack}` stack hit at {cr2:#x}"
            ),
        )
    }
    die(
        14,
        "page fault (#PF)",
        Some(code.bits()),
        &frame,
        format_args!(": {access} {cr2:#x} ({why})"),
    )
}

/// Defines an interrupt entry point that may switch threads. Unlike the
/// exception handlers it keeps the kernel's GS invariant itself: SWAPGS on
/// entry from and exit to user mode, so GS always holds the per-CPU block
/// in the kernel. It clears RFLAGS.AC first, as every handler does. All general registers are saved on the thread's kernel
/// stack; the Rust handler gets the interrupted ring (0 or 3).
macro_rules! irq_entry {
    ($name:ident, $rust:ident) => {
        #[unsafe(naked)]
        extern "C" fn $name() {
            core::arch::naked_asm!(
                // CLAC first when SMAP is on (see `clac_on_entry`); the
                // interrupted RFLAGS are in the frame.
                "test byte ptr [rip + {smap}], 1",
                "jz 4f",
                "clac",
                "4:",
                "test byte ptr [rsp + 8], 3",
                "jz 2f",
                "swapgs",
                "2:",
                "push rax",
                "push rcx",
                "push rdx",
                "push rsi",
                "push rdi",
                "push r8",
                "push r9",
                "push r10",
                "push r11",
                "push rbx",
                "push rbp",
                "push r12",
                "push r13",
                "push r14",
                "push r15",
                "mov edi, [rsp + 15 * 8 + 8]",
                "and edi, 3",
                "cld",
                "call {rust}",
                "pop r15",
                "pop r14",
                "pop r13",
                "pop r12",
                "pop rbp",
                "pop rbx",
                "pop r11",
                "pop r10",
                "pop r9",
                "pop r8",
                "pop rdi",
                "pop rsi",
                "pop rdx",
                "pop rcx",
                "pop rax",
                "test byte ptr [rsp + 8], 3",
                "jz 3f",
                "swapgs",
                "3:",
                "iretq",
                rust = sym $rust,
                smap = sym super::usercopy::SMAP,
            )
        }
    };
}

irq_entry!(timer_entry, timer_rust);
irq_entry!(resched_entry, resched_rust);
irq_entry!(net_entry, net_rust);

/// The network card's MSI-X vector.
pub const NET_VECTOR: u8 = 0x30;

extern "C" fn net_rust(_ring: u32) {
    #[cfg(feature = "test-hooks")]
    super::usercopy::assert_ac_clear("the network interrupt");
    super::apic::end_of_interrupt();
    crate::interrupts::network();
}
irq_entry!(shootdown_entry, shootdown_rust);

/// The reschedule IPI vector (another CPU queued work for this one).
pub const RESCHED_VECTOR: u8 = 0xf0;

extern "C" fn timer_rust(ring: u32) {
    #[cfg(feature = "test-hooks")]
    super::usercopy::assert_ac_clear("the timer interrupt");
    TIMER_TICKS.fetch_add(1, Ordering::Relaxed);
    TIMER_TICKS_PER_CPU[super::syscall::cpu_id()].fetch_add(1, Ordering::Relaxed);
    super::apic::end_of_interrupt();
    crate::interrupts::timer_tick(ring == 3);
}

extern "C" fn resched_rust(ring: u32) {
    #[cfg(feature = "test-hooks")]
    super::usercopy::assert_ac_clear("the reschedule IPI");
    RESCHED_IPIS_PER_CPU[super::syscall::cpu_id()].fetch_add(1, Ordering::Relaxed);
    super::apic::end_of_interrupt();
    crate::interrupts::reschedule(ring == 3);
}

extern "C" fn shootdown_rust(_ring: u32) {
    #[cfg(feature = "test-hooks")]
    super::usercopy::assert_ac_clear("the TLB shootdown IPI");
    super::tlb::serve();
    super::apic::end_of_interrupt();
}

extern "x86-interrupt" fn spurious(_frame: InterruptStackFrame) {
    clac_on_entry();
    // Spurious APIC interrupts must not be acknowledged with an EOI.
}

fn build(use_ist: bool) -> InterruptDescriptorTable {
    let mut idt = InterruptDescriptorTable::new();
    idt.divide_error.set_handler_fn(divide_error);
    idt.debug.set_handler_fn(debug);
    idt.breakpoint.set_handler_fn(breakpoint);
    idt.overflow.set_handler_fn(overflow);
    idt.bound_range_exceeded.set_handler_fn(bound_range);
    idt.invalid_opcode.set_handler_fn(invalid_opcode);
    idt.device_not_available
        .set_handler_fn(device_not_available);
    idt.invalid_tss.set_handler_fn(invalid_tss);
    idt.segment_not_present.set_handler_fn(segment_not_present);
    idt.stack_segment_fault.set_handler_fn(stack_segment);
    idt.general_protection_fault
        .set_handler_fn(general_protection);
    idt.page_fault.set_handler_fn(page_fault);
    idt.x87_floating_point.set_handler_fn(x87_floating_point);
    idt.alignment_check.set_handler_fn(alignment_check);
    idt.simd_floating_point.set_handler_fn(simd_floating_point);
    idt.virtualization.set_handler_fn(virtualization);
    idt.cp_protection_exception
        .set_handler_fn(control_protection);
    idt.hv_injection_exception.set_handler_fn(hv_injection);
    idt.vmm_communication_exception
        .set_handler_fn(vmm_communication);
    idt.security_exception.set_handler_fn(security);
    let df = idt.double_fault.set_handler_fn(double_fault);
    let nmi_entry = idt.non_maskable_interrupt.set_handler_fn(nmi);
    let mc = idt.machine_check.set_handler_fn(machine_check);
    if use_ist {
        // SAFETY: the IST indices name stacks `gdt::init` installed in the
        // TSS before this IDT is loaded; each is used by one vector only.
        unsafe {
            df.set_stack_index(DOUBLE_FAULT_IST);
            nmi_entry.set_stack_index(NMI_IST);
            mc.set_stack_index(MACHINE_CHECK_IST);
        }
    }
    // SAFETY: the `irq_entry!` entry points save and restore every
    // register, keep the stack aligned, keep the GS invariant and end in
    // IRETQ.
    unsafe {
        idt[TIMER_VECTOR]
            .set_handler_addr(::x86_64::VirtAddr::new(timer_entry as *const () as u64));
        idt[RESCHED_VECTOR]
            .set_handler_addr(::x86_64::VirtAddr::new(resched_entry as *const () as u64));
        idt[NET_VECTOR].set_handler_addr(::x86_64::VirtAddr::new(net_entry as *const () as u64));
        idt[super::tlb::SHOOTDOWN_VECTOR]
            .set_handler_addr(::x86_64::VirtAddr::new(shootdown_entry as *const () as u64));
    }
    idt[SPURIOUS_VECTOR].set_handler_fn(spurious);
    idt
}

/// Prints the diagnostic for a fatal exception and powers off.
fn die(
    vector: u8,
    name: &str,
    code: Option<u64>,
    frame: &InterruptStackFrame,
    detail: fmt::Arguments<'_>,
) -> ! {
    if frame.code_segment.rpl() as u8 == 3 {
        // A user program's exception ends the program, never the kernel.
        super::syscall::kernel_gs_after_user_exception();
        use crate::process::sig;
        let signal = match vector {
            0 | 16 | 19 => sig::FPE,
            1 | 3 => sig::TRAP,
            6 => sig::ILL,
            17 => sig::BUS,
            _ => sig::SEGV,
        };
        let rip = frame.instruction_pointer.as_u64();
        crate::process::kill(
            signal,
            Some(alloc::format!("fault at RIP {rip:#x} ({name})")),
            format_args!("{name} at RIP {rip:#x}, error code {}", ErrorCode(code)),
        )
    }
    let mode = if frame.code_segment.rpl() as u8 == 0 {
        "kernel"
    } else {
        "user"
    };
    let rip = frame.instruction_pointer.as_u64();
    let cr2 = Cr2::read_raw();
    let mut out = serial::emergency_writer();
    let ts = Timestamp::from_nanos(crate::time::now_nanos());
    let _ = write_event(
        &mut out,
        ts,
        "exception",
        format_args!(
            "{name}, vector {vector}, in {mode} mode{detail}\n\
             error code {code}, RIP {rip:#018x}, CS {cs:#x}, RFLAGS {rflags:#x}\n\
             RSP {rsp:#018x}, SS {ss:#x}, CR2 {cr2:#018x}",
            code = ErrorCode(code),
            cs = frame.code_segment.0,
            rflags = frame.cpu_flags.bits(),
            rsp = frame.stack_pointer.as_u64(),
            ss = frame.stack_segment.0,
        ),
    );
    crate::panic::fatal(format_args!(
        "{name} in {mode} mode at RIP {rip:#x}{detail}"
    ))
}

struct ErrorCode(Option<u64>);

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, "{c:#x}"),
            None => f.write_str("none"),
        }
    }
}
