//! What device interrupts do beyond acknowledging the hardware.
#![deny(unsafe_code)]

/// The APIC timer tick (100 Hz): on the boot CPU pull console input and
/// run the network stack (whose own interrupts go there too); on every CPU
/// wake sleepers and preempt; a Ctrl-C typed while user code ran takes
/// effect now.
pub fn timer_tick(from_user: bool) {
    if crate::arch::x86_64::syscall::cpu_id() == 0 {
        crate::console::poll_input();
        crate::netdev::poll();
    }
    if from_user && let Some(sig) = crate::console::take_signal() {
        let _ = crate::syscall::deliver_signal_from_interrupt(sig);
    }
    crate::sched::on_tick(from_user);
    leave_if_killed(from_user);
}

/// A thread of a killed process interrupted in user mode (or resumed
/// there after a switch) leaves instead of going back to it.
fn leave_if_killed(from_user: bool) {
    if from_user && crate::supervisor::killed() {
        crate::supervisor::leave_killed()
    }
}

/// Interrupts from the network card (MSI-X).
pub static NET_IRQS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The network card signalled (a frame arrived or a transmission ended):
/// run the stack, which wakes any thread whose socket changed.
pub fn network() {
    NET_IRQS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    crate::netdev::poll();
}

/// The reschedule IPI: another CPU queued a thread for this one.
/// The kill of a process reaches its threads on other CPUs this way too.
pub fn reschedule(from_user: bool) {
    crate::sched::on_resched_ipi(from_user);
    leave_if_killed(from_user);
}
