//! TLB shootdowns: after a user mapping is removed or downgraded, every
//! other CPU drops its cached translations before the change is relied on
//! (frames are freed only afterwards).
//!
//! The initiator sets a request flag per target CPU and sends each an IPI;
//! a target flushes (reloads CR3) and clears its flag, in the IPI handler
//! or — if it is itself spinning for the shootdown lock with interrupts off
//! — in that spin loop, so two CPUs shooting down at once cannot deadlock.
//! The initiator holds no other lock while it waits.
//!
//! The same requests retire a dead process's level-4 table ([`retire`]):
//! a CPU that still has it loaded (an idle CPU keeps the last process's
//! CR3) switches to the kernel's own table, so the old one can be freed.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ::x86_64::PhysAddr;
use ::x86_64::registers::control::Cr3;
use ::x86_64::structures::paging::PhysFrame;
use spin::Mutex;

use super::syscall::{MAX_CPUS, cpu_id};

/// The shootdown IPI vector.
pub const SHOOTDOWN_VECTOR: u8 = 0xf1;

static REQUESTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static LOCK: Mutex<()> = Mutex::new(());
/// Physical address of a level-4 table being retired (0: none), and the
/// table to load instead.
static RETIRING: AtomicU64 = AtomicU64::new(0);
static REPLACEMENT: AtomicU64 = AtomicU64::new(0);

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
        let retiring = RETIRING.load(Ordering::Acquire);
        let (current, flags) = Cr3::read();
        if retiring != 0 && current.start_address().as_u64() == retiring {
            let next =
                PhysFrame::containing_address(PhysAddr::new(REPLACEMENT.load(Ordering::Acquire)));
            // SAFETY: the replacement is the kernel's own level-4 table,
            // which maps the kernel half exactly as every process table
            // does; nothing of the retired process runs on this CPU (its
            // threads are gone), so losing its user half is harmless.
            unsafe { Cr3::write(next, flags) };
        } else {
            flush_local();
        }
        REQUESTED[me].store(false, Ordering::Release);
    }
}

/// Makes every other online CPU flush its TLB and waits until all did.
pub fn shootdown() {
    if crate::smp::online() <= 1 {
        return;
    }
    let _guard = lock();
    send_and_wait();
}

/// Makes every other online CPU that has level-4 table `old` loaded
/// switch to `replacement` (the others flush) and waits until all did:
/// afterwards no CPU but the caller can walk `old`. The caller must not
/// have `old` loaded itself.
pub fn retire(old: PhysFrame, replacement: PhysFrame) {
    let _guard = lock();
    RETIRING.store(old.start_address().as_u64(), Ordering::Release);
    REPLACEMENT.store(replacement.start_address().as_u64(), Ordering::Release);
    send_and_wait();
    RETIRING.store(0, Ordering::Release);
}

/// Takes the initiator lock, serving requests while waiting for it.
fn lock() -> spin::MutexGuard<'static, ()> {
    loop {
        if let Some(g) = LOCK.try_lock() {
            return g;
        }
        serve();
        core::hint::spin_loop();
    }
}

/// Requests a flush from every other online CPU and waits for all (the
/// caller holds the initiator lock).
fn send_and_wait() {
    let cpus = crate::smp::online();
    if cpus <= 1 {
        return;
    }
    let me = cpu_id();
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
