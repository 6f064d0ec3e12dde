//! The kernel's monotonic clock.
//!
//! Time is the TSC converted to nanoseconds since the calibration reading
//! (`kcore::time::TickClock`). The TSC frequency is measured against the PIT
//! at boot ([`calibrate`]); before that, [`now_nanos`] reads 0. With an
//! invariant TSC this is a stable monotonic clock; without one the kernel
//! says so in the boot log, since frequency changes would then skew it.
#![deny(unsafe_code)]

use kcore::time::TickClock;
use spin::Once;

use crate::arch::x86_64::{pit, tsc};
use crate::klog;

static CLOCK: Once<TickClock> = Once::new();

/// How the TSC frequency was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Measured against the PIT.
    Pit,
    /// The PIT did not respond; taken from CPUID leaf 0x15/0x16.
    Cpuid,
    /// Nothing worked; an assumed frequency (the log says so).
    Assumed,
}

/// The TSC frequency assumed when neither the PIT nor CPUID gives one.
const ASSUMED_TSC_HZ: u64 = 2_000_000_000;

/// Measures the TSC frequency and starts the clock. Idempotent.
pub fn calibrate() -> (u64, Source) {
    let (hz, source) = match pit::measure_tsc_hz() {
        Some(hz) => (hz, Source::Pit),
        None => match tsc::cpuid_frequency() {
            Some(hz) => (hz, Source::Cpuid),
            None => (ASSUMED_TSC_HZ, Source::Assumed),
        },
    };
    let clock = CLOCK.call_once(|| {
        TickClock::new(hz, tsc::read()).unwrap_or_else(|| {
            TickClock::new(ASSUMED_TSC_HZ, tsc::read()).expect("non-zero constant")
        })
    });
    (clock.hz(), source)
}

/// Logs what [`calibrate`] found.
pub fn report(hz: u64, source: Source, invariant: bool) {
    let how = match source {
        Source::Pit => "measured against the PIT",
        Source::Cpuid => "from CPUID (PIT did not respond)",
        Source::Assumed => "ASSUMED: no PIT and no CPUID frequency; timestamps may be off",
    };
    klog!(
        "time",
        "TSC {}.{:03} MHz, {how}{}",
        hz / 1_000_000,
        (hz / 1_000) % 1_000,
        if invariant {
            ", invariant"
        } else {
            "; not invariant: the clock may drift if the CPU changes frequency"
        }
    );
}

/// The TSC frequency in Hz (0 before calibration).
pub fn tsc_hz() -> u64 {
    CLOCK.get().map_or(0, |c| c.hz())
}

/// Nanoseconds since calibration (0 before it).
pub fn now_nanos() -> u64 {
    match CLOCK.get() {
        Some(c) => c.nanos_at(tsc::read()),
        None => 0,
    }
}

static BOOT_UNIX_NANOS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Sets the wall-clock time that corresponds to monotonic time zero.
pub fn set_realtime_at_boot(unix_secs: u64) {
    let boot = (unix_secs * 1_000_000_000).saturating_sub(now_nanos());
    BOOT_UNIX_NANOS.store(boot, core::sync::atomic::Ordering::Relaxed);
}

/// Nanoseconds since the Unix epoch (RTC at boot + monotonic time).
pub fn realtime_nanos() -> u64 {
    BOOT_UNIX_NANOS.load(core::sync::atomic::Ordering::Relaxed) + now_nanos()
}

/// Busy-waits for `nanos` (boot-time use only, before the scheduler).
pub fn spin_for(nanos: u64) {
    let end = now_nanos().saturating_add(nanos);
    while now_nanos() < end {
        core::hint::spin_loop();
    }
}
