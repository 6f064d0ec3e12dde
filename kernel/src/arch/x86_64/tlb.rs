//! TLB shootdowns: after a user mapping is removed or downgraded, every
//! other CPU drops its cached translations before the change is relied on
//! (frames are freed only afterwards).
//!
//! The initiator sets a request flag per target CPU and sends each an IPI;
//! a target flushes (reloads CR3) and clears its flag, in the IPI handler
//! or — if it is itself spinning for the shootdown lock with interrupts off
//! — in that spin loop, so two CPUs shooting down at once cannot deadlock.
//! The initiator holds no other lock while it waits.

use core::sync::atomic::{AtomicBool, Ordering};

use ::x86_64::registers::control::Cr3;
use spin::Mutex;

use super::syscall::{MAX_CPUS, cpu_id};

/// The shootdown IPI vector.
pub const SHOOTDOWN_VECTOR: u8 = 0xf1;

static REQUESTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static LOCK: Mutex<()> = Mutex::new(());

/// Flushes this CPU's non-global TLB entries.
pub fn flush_local() {
    let (frame, flags) = Cr3::read();
    // SAFETY: reloading the current CR3 value only drops cached
    // translations.
    unsafe { Cr3::write(frame, flags) };
}

/// Serves a pending request for this CPU, if any.
pub fn serve() {
    let me = cpu_id();
    if REQUESTED[me].load(Ordering::Acquire) {
        flush_local();
        REQUESTED[me].store(false, Ordering::Release);
    }
}

/// Makes every other online CPU flush its TLB and waits until all did.
pub fn shootdown() {
    let cpus = crate::smp::online();
    if cpus <= 1 {
        return;
    }
    let me = cpu_id();
    let _guard = loop {
        if let Some(g) = LOCK.try_lock() {
            break g;
        }
        serve();
        core::hint::spin_loop();
    };
    for cpu in (0..cpus).filter(|&c| c != me) {
        REQUESTED[cpu].store(true, Ordering::Release);
        if let Some(apic_id) = crate::smp::apic_id_of(cpu) {
            super::apic::send_ipi(apic_id, SHOOTDOWN_VECTOR);
        }
    }
    for cpu in (0..cpus).filter(|&c| c != me) {
        while REQUESTED[cpu].load(Ordering::Acquire) {
            serve();
            core::hint::spin_loop();
        }
    }
}
