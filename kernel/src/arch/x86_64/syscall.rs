//! Entering and leaving ring 3: the SYSCALL entry point, the first jump to
//! user mode, per-CPU data behind GS, and the FS base for user TLS.
//!
//! On SYSCALL the CPU loads CS/SS from STAR and RIP from LSTAR, saves the
//! user RIP in RCX and RFLAGS in R11, and masks RFLAGS with SFMASK (so
//! interrupts are off on entry). [`syscall_entry`] then `swapgs`es to reach
//! the per-CPU block, switches to the kernel stack it names, saves every
//! register into a [`SyscallFrame`], calls [`dispatch_hook`]'s target, and
//! returns with SYSRET. All general registers but RAX (the result), RCX and
//! R11 (clobbered by the architecture) come back unchanged; the kernel is
//! built soft-float and never touches x87/SSE/AVX state, so the user's
//! extended state survives syscalls and interrupts untouched.

use ::x86_64::VirtAddr;
use ::x86_64::registers::model_specific::{
    Efer, EferFlags, FsBase, GsBase, KernelGsBase, LStar, SFMask, Star,
};
use ::x86_64::registers::rflags::RFlags;

use super::gdt::Selectors;

/// Per-CPU data reached through GS in kernel mode. The layout is used by
/// the entry assembly: keep the offsets in step.
#[repr(C)]
pub struct PerCpu {
    /// Offset 0: this block's own address.
    self_ptr: u64,
    /// Offset 8: top of the kernel stack for entries from user mode.
    kernel_rsp: u64,
    /// Offset 16: scratch slot for the user RSP during entry.
    user_rsp: u64,
    /// Offset 24: this CPU's index (0 = the boot CPU).
    cpu: u64,
    /// This CPU's TSS (for RSP0).
    tss: &'static super::gdt::TssCell,
}

/// The most CPUs llmos drives.
pub const MAX_CPUS: usize = 64;

/// Registers saved on entry, lowest address first (the push order in
/// [`syscall_entry`] reversed).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct SyscallFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r9: u64,
    pub r8: u64,
    pub r10: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// The syscall number on entry; the return value on exit.
    pub rax: u64,
    /// User RIP (from RCX).
    pub rip: u64,
    /// User RFLAGS (from R11).
    pub rflags: u64,
    /// User RSP.
    pub rsp: u64,
}

impl SyscallFrame {
    /// All registers zero.
    pub const ZERO: SyscallFrame = SyscallFrame {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        rbp: 0,
        rbx: 0,
        r9: 0,
        r8: 0,
        r10: 0,
        rdx: 0,
        rsi: 0,
        rdi: 0,
        rax: 0,
        rip: 0,
        rflags: 0,
        rsp: 0,
    };

    /// The six argument registers in ABI order.
    pub fn args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }
}

/// The Rust side of the syscall path: hands the saved registers to
/// `crate::syscall::entry`.
extern "C" fn syscall_rust(frame: *mut SyscallFrame) {
    // SAFETY: `syscall_entry` passes a pointer to the frame it just pushed
    // on this CPU's kernel stack; it stays valid and unaliased until this
    // function returns.
    let frame = unsafe { &mut *frame };
    crate::syscall::entry(frame);
}

/// The SYSCALL entry point (LSTAR).
#[unsafe(naked)]
extern "C" fn syscall_entry() {
    core::arch::naked_asm!(
        "swapgs",
        "mov gs:[16], rsp",
        "mov rsp, gs:[8]",
        "push qword ptr gs:[16]",
        "push r11",
        "push rcx",
        "push rax",
        "push rdi",
        "push rsi",
        "push rdx",
        "push r10",
        "push r8",
        "push r9",
        "push rbx",
        "push rbp",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov rdi, rsp",
        "cld",
        "call {rust}",
        "cli",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbp",
        "pop rbx",
        "pop r9",
        "pop r8",
        "pop r10",
        "pop rdx",
        "pop rsi",
        "pop rdi",
        "pop rax",
        "pop rcx",
        "pop r11",
        "pop rsp",
        "swapgs",
        "sysretq",
        rust = sym syscall_rust,
    )
}

/// Programs the SYSCALL MSRs and this CPU's per-CPU block (GS base).
/// `kernel_stack_top` is the stack for entries from user mode until the
/// scheduler switches threads.
pub fn init(
    selectors: &Selectors,
    tss: &'static super::gdt::TssCell,
    cpu: usize,
    kernel_stack_top: u64,
) {
    let block: &'static mut PerCpu = alloc::boxed::Box::leak(alloc::boxed::Box::new(PerCpu {
        self_ptr: 0,
        kernel_rsp: kernel_stack_top,
        user_rsp: 0,
        cpu: cpu as u64,
        tss,
    }));
    let p: *mut PerCpu = block;
    // SAFETY: `p` is the leaked block, used by this CPU only.
    unsafe { (*p).self_ptr = p as u64 };
    GsBase::write(VirtAddr::new(p as u64));
    KernelGsBase::write(VirtAddr::new(0));
    set_kernel_stack(kernel_stack_top);
    // SAFETY: the selectors come from our GDT, laid out as STAR requires
    // (kernel code, kernel data; user data, user code at +8/+16 of the
    // base), and `syscall_entry` is a valid entry point; SCE turns on the
    // SYSCALL instruction itself.
    unsafe {
        Star::write(
            selectors.user_code,
            selectors.user_data,
            selectors.kernel_code,
            selectors.kernel_data,
        )
        .expect("GDT layout matches STAR");
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::ALIGNMENT_CHECK
                | RFlags::NESTED_TASK
                | RFlags::IOPL_HIGH
                | RFlags::IOPL_LOW,
        );
        Efer::update(|e| e.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
    }
}

fn percpu() -> *mut PerCpu {
    let p: u64;
    // SAFETY: in kernel mode GS always holds this CPU's block (entry code
    // keeps the invariant), whose first word is its own address.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags))
    };
    p as *mut PerCpu
}

/// This CPU's index (0 on the boot CPU, also before SMP start-up).
pub fn cpu_id() -> usize {
    let p = percpu();
    if p.is_null() {
        return 0;
    }
    // SAFETY: `p` is this CPU's live block.
    unsafe { (*p).cpu as usize }
}

/// Sets the stack for entries from user mode: the SYSCALL path's per-CPU
/// slot and TSS.RSP0 (interrupts). Called on every switch to a thread.
pub fn set_kernel_stack(top: u64) {
    let p = percpu();
    if p.is_null() {
        return;
    }
    // SAFETY: this CPU's block, written with interrupts off (context
    // switch); the entry code reads it only on the next entry from user
    // mode.
    unsafe {
        (*p).kernel_rsp = top;
        super::gdt::set_kernel_stack((*p).tss, top);
    }
}

/// Loads the kernel's GS base in an exception handler entered from user
/// mode that will not return there (the process is being killed). Unlike
/// the syscall and interrupt entries, the exception entries do not SWAPGS,
/// so GS still holds the user's base; the kill path needs the per-CPU
/// block (the scheduler, `cpu_id`). Call once, only on that path.
pub fn kernel_gs_after_user_exception() {
    // SAFETY: on entry from ring 3, GS_BASE holds the user's value and
    // KERNEL_GS_BASE this CPU's block (every kernel exit to user mode
    // swaps them that way); swapping once makes GS the kernel's, as in a
    // syscall. The handler never returns to user mode, so nothing swaps
    // back.
    unsafe { core::arch::asm!("swapgs", options(nomem, nostack, preserves_flags)) };
}

/// Sets the user FS base (TLS pointer).
pub fn set_fs_base(base: u64) {
    FsBase::write(VirtAddr::new_truncate(base));
}

/// Reads the user FS base.
pub fn fs_base() -> u64 {
    FsBase::read().as_u64()
}

/// Sets the user GS base (kept in KERNEL_GS_BASE while in the kernel,
/// swapped in on return to user mode).
pub fn set_user_gs_base(base: u64) {
    KernelGsBase::write(VirtAddr::new_truncate(base));
}

/// Reads the user GS base.
pub fn user_gs_base() -> u64 {
    KernelGsBase::read().as_u64()
}

/// Resets the x87/SSE/AVX state to its initial values so nothing from boot
/// reaches user mode.
fn reset_extended_state(avx: bool) {
    // SAFETY: FNINIT and LDMXCSR only change FPU/SSE control state, which
    // belongs to no one yet; VZEROALL is only used when AVX is enabled.
    unsafe {
        let mxcsr: u32 = 0x1f80;
        core::arch::asm!("fninit", "ldmxcsr [{m}]", m = in(reg) &mxcsr, options(nostack));
        if avx {
            core::arch::asm!("vzeroall", options(nomem, nostack));
        } else {
            core::arch::asm!(
                "pxor xmm0, xmm0",
                "pxor xmm1, xmm1",
                "pxor xmm2, xmm2",
                "pxor xmm3, xmm3",
                "pxor xmm4, xmm4",
                "pxor xmm5, xmm5",
                "pxor xmm6, xmm6",
                "pxor xmm7, xmm7",
                "pxor xmm8, xmm8",
                "pxor xmm9, xmm9",
                "pxor xmm10, xmm10",
                "pxor xmm11, xmm11",
                "pxor xmm12, xmm12",
                "pxor xmm13, xmm13",
                "pxor xmm14, xmm14",
                "pxor xmm15, xmm15",
                options(nomem, nostack)
            );
        }
    }
}

/// Enters ring 3 at `entry` with stack pointer `sp` and all general
/// registers zero (as Linux's execve leaves them; RDX = 0 means "no
/// exit handler" to the C runtime).
///
/// This is safe for the kernel whatever `entry` and `sp` are: ring 3 cannot
/// touch kernel memory, and a bad address only faults the process. [`init`]
/// must have run (the caller's boot order guarantees it).
pub fn enter_user(entry: u64, sp: u64, selectors: &Selectors, avx: bool) -> ! {
    reset_extended_state(avx);
    let cs = u64::from(selectors.user_code.0);
    let ss = u64::from(selectors.user_data.0);
    // SAFETY: the IRETQ frame is SS, RSP, RFLAGS (IF set, reserved bit 1),
    // CS, RIP with ring-3 selectors from our GDT, so the CPU drops to ring 3
    // where only user pages are accessible. SWAPGS leaves the kernel's GS
    // base in KERNEL_GS_BASE for the next entry.
    unsafe {
        core::arch::asm!(
            "push {ss}",
            "push {sp}",
            "push 0x202",
            "push {cs}",
            "push {entry}",
            "swapgs",
            "xor eax, eax",
            "xor ebx, ebx",
            "xor ecx, ecx",
            "xor edx, edx",
            "xor esi, esi",
            "xor edi, edi",
            "xor ebp, ebp",
            "xor r8d, r8d",
            "xor r9d, r9d",
            "xor r10d, r10d",
            "xor r11d, r11d",
            "xor r12d, r12d",
            "xor r13d, r13d",
            "xor r14d, r14d",
            "xor r15d, r15d",
            "iretq",
            ss = in(reg) ss,
            sp = in(reg) sp,
            cs = in(reg) cs,
            entry = in(reg) entry,
            options(noreturn)
        )
    }
}
