//! x86_64: CPU feature set-up, descriptor tables, exceptions and interrupts,
//! timers (TSC, PIT, local APIC), hardware randomness and power control.

pub mod apic;
pub mod context;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod pit;
pub mod power;
pub mod pvh;
pub mod rand;
pub mod rtc;
pub mod smp;
pub mod syscall;
pub mod tlb;
pub mod tsc;
pub mod usercopy;

/// Enables interrupts and halts until the next one arrives, then disables
/// interrupts again (the caller's state on entry to a syscall).
pub fn halt_until_interrupt() {
    ::x86_64::instructions::interrupts::enable_and_hlt();
    ::x86_64::instructions::interrupts::disable();
}

/// Drops to ring 3 at `entry` with stack `sp` (see `syscall::enter_user`).
pub fn enter_user_mode(entry: u64, sp: u64, selectors: &gdt::Selectors, avx: bool) -> ! {
    syscall::enter_user(entry, sp, selectors, avx)
}

/// Continues execution on a new stack: sets RSP to `top` and calls `next`,
/// which must never return.
///
/// # Safety
///
/// `top` must be the 16-byte-aligned top of a mapped, writable stack that
/// nothing else uses, large enough for everything `next` does. Nothing on
/// the current stack may be used afterwards (it is abandoned, not freed).
pub unsafe fn switch_stack(top: u64, next: extern "C" fn() -> !) -> ! {
    // SAFETY: the caller guarantees `top` is a valid, exclusive stack; the
    // call pushes a return address so `next` starts with the ABI's
    // alignment; `ud2` marks the unreachable return.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {next}",
            "ud2",
            top = in(reg) top,
            next = in(reg) next,
            options(noreturn)
        )
    }
}
