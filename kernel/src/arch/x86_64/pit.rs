//! The 8254 programmable interval timer, used only as a reference clock to
//! calibrate the TSC and the local APIC timer. Channel 2 counts down a
//! window with its gate controlled through port 0x61 (as Linux's
//! `pit_calibrate_tsc` does), and the OUT2 bit tells when it has elapsed.

use ::x86_64::instructions::port::Port;
use kcore::time::{hz_from, pit_count_for, pit_window_ns};

use super::tsc;

const PIT_CH2: u16 = 0x42;
const PIT_CMD: u16 = 0x43;
const NMI_SC: u16 = 0x61;
const OUT2: u8 = 1 << 5;

/// Calibration window per sample.
const WINDOW_NS: u64 = 10_000_000;
/// Polls of port 0x61 before declaring the PIT absent.
const POLL_LIMIT: u32 = 20_000_000;

/// Plausible TSC frequencies (100 MHz – 20 GHz); anything else means the
/// PIT is not really there.
const PLAUSIBLE_HZ: core::ops::RangeInclusive<u64> = 100_000_000..=20_000_000_000;

fn outb(port: u16, v: u8) {
    // SAFETY: ports 0x42, 0x43 and 0x61 are the PIT and the NMI status /
    // control register on every PC; only boot-time calibration uses them.
    unsafe { Port::<u8>::new(port).write(v) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as in `outb`.
    unsafe { Port::<u8>::new(port).read() }
}

/// Runs `during` while channel 2 counts down `count` ticks; returns the
/// value `during` computed from the readings it took at the start and when
/// the window closed, or `None` if OUT2 never rose.
pub fn time_window<T>(
    count: u16,
    mut at_start: impl FnMut() -> T,
    at_end: impl FnOnce(T) -> u64,
) -> Option<u64> {
    let saved = inb(NMI_SC);
    // Gate on, speaker off.
    outb(NMI_SC, (saved & !0x02) | 0x01);
    // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
    outb(PIT_CMD, 0b1011_0000);
    outb(PIT_CH2, count as u8);
    outb(PIT_CH2, (count >> 8) as u8);
    let start = at_start();
    let mut polls = 0;
    let mut ok = true;
    while inb(NMI_SC) & OUT2 == 0 {
        polls += 1;
        if polls > POLL_LIMIT {
            ok = false;
            break;
        }
    }
    let result = at_end(start);
    outb(NMI_SC, saved);
    ok.then_some(result)
}

/// Measures the TSC frequency: the median of three 10 ms windows.
pub fn measure_tsc_hz() -> Option<u64> {
    let count = pit_count_for(WINDOW_NS)?;
    let window = pit_window_ns(count);
    let mut samples = [0u64; 3];
    for s in &mut samples {
        let ticks = time_window(count, tsc::read, |t0| tsc::read().wrapping_sub(t0))?;
        *s = hz_from(ticks, window)?;
    }
    samples.sort_unstable();
    let hz = samples[1];
    PLAUSIBLE_HZ.contains(&hz).then_some(hz)
}

/// The window length used by [`time_window`] callers that want 10 ms.
pub fn ten_ms() -> Option<(u16, u64)> {
    let count = pit_count_for(WINDOW_NS)?;
    Some((count, pit_window_ns(count)))
}
