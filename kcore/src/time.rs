//! Clock arithmetic.
//!
//! The kernel measures how many TSC ticks and local-APIC-timer ticks pass
//! while the PIT (a fixed 1.193182 MHz reference) counts down a known
//! window, then converts between ticks and nanoseconds with 128-bit
//! intermediates so nothing overflows for centuries of uptime.

/// The PIT's input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The PIT reload value that makes a one-shot countdown last at least
/// `window_ns`; `None` if the window does not fit in the 16-bit counter
/// (about 54.9 ms) or is zero.
pub fn pit_count_for(window_ns: u64) -> Option<u16> {
    if window_ns == 0 {
        return None;
    }
    let count = (u128::from(window_ns) * u128::from(PIT_HZ)).div_ceil(u128::from(NANOS_PER_SEC));
    u16::try_from(count).ok()
}

/// The exact duration in nanoseconds of a PIT countdown of `count` ticks.
pub fn pit_window_ns(count: u16) -> u64 {
    (u128::from(count) * u128::from(NANOS_PER_SEC) / u128::from(PIT_HZ)) as u64
}

/// The frequency of a counter that advanced `ticks` during `window_ns`.
pub fn hz_from(ticks: u64, window_ns: u64) -> Option<u64> {
    if window_ns == 0 {
        return None;
    }
    u64::try_from(u128::from(ticks) * u128::from(NANOS_PER_SEC) / u128::from(window_ns)).ok()
}

/// A free-running counter of known frequency, turned into nanoseconds since
/// a base reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickClock {
    hz: u64,
    base: u64,
}

impl TickClock {
    /// A clock ticking at `hz` (non-zero) whose zero is the reading `base`.
    pub fn new(hz: u64, base: u64) -> Option<Self> {
        (hz != 0).then_some(Self { hz, base })
    }

    /// The frequency.
    pub fn hz(&self) -> u64 {
        self.hz
    }

    /// Nanoseconds from the base to the reading `ticks` (0 for readings
    /// before the base, so the clock never goes backwards past zero).
    pub fn nanos_at(&self, ticks: u64) -> u64 {
        let delta = ticks.saturating_sub(self.base);
        let n = u128::from(delta) * u128::from(NANOS_PER_SEC) / u128::from(self.hz);
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Ticks that correspond to `nanos`.
    pub fn ticks_for(&self, nanos: u64) -> u64 {
        let t = u128::from(nanos) * u128::from(self.hz) / u128::from(NANOS_PER_SEC);
        u64::try_from(t).unwrap_or(u64::MAX)
    }
}

/// The local APIC timer's divide configuration values (Intel SDM 11.5.4),
/// indexed by log2 of the divisor (1, 2, 4, …, 128).
pub const APIC_DIVIDE_CONFIG: [u32; 8] = [
    0b1011, 0b0000, 0b0001, 0b0010, 0b0011, 0b1000, 0b1001, 0b1010,
];

/// The initial count that makes the APIC timer fire every `period_ns`, given
/// its frequency `hz` at the chosen divisor. `None` if it would be 0 or
/// does not fit the 32-bit register.
pub fn apic_initial_count(hz: u64, period_ns: u64) -> Option<u32> {
    let count = u128::from(hz) * u128::from(period_ns) / u128::from(NANOS_PER_SEC);
    match u32::try_from(count) {
        Ok(0) | Err(_) => None,
        Ok(c) => Some(c),
    }
}

/// Seconds since 1970-01-01 00:00:00 UTC for a civil date and time (the
/// proleptic Gregorian calendar; Howard Hinnant's days-from-civil method).
/// `None` for out-of-range fields.
pub fn unix_time(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Option<u64> {
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
    u64::try_from(secs).ok()
}

/// The civil date and time `(year, month, day, hour, min, sec)` of a Unix
/// time (inverse of [`unix_time`]).
pub fn civil(unix: u64) -> (u64, u32, u32, u32, u32, u32) {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        ((rem / 60) % 60) as u32,
        (rem % 60) as u32,
    )
}

/// Decodes a BCD byte (as the CMOS RTC reports by default).
pub fn from_bcd(b: u8) -> u32 {
    u32::from(b & 0x0f) + u32::from(b >> 4) * 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pit_counts() {
        assert_eq!(pit_count_for(10_000_000), Some(11_932));
        assert_eq!(pit_count_for(54_000_000), Some(64_432));
        assert_eq!(pit_count_for(60_000_000), None);
        assert_eq!(pit_count_for(0), None);
        let w = pit_window_ns(11_932);
        assert!((9_999_000..=10_001_000).contains(&w), "{w}");
    }

    #[test]
    fn frequency_from_window() {
        assert_eq!(hz_from(30_000_000, 10_000_000), Some(3_000_000_000));
        assert_eq!(hz_from(1, 0), None);
        assert_eq!(hz_from(u64::MAX, 1), None);
    }

    #[test]
    fn tick_clock_converts_both_ways() {
        let c = TickClock::new(2_500_000_000, 1_000).unwrap();
        assert_eq!(c.nanos_at(1_000), 0);
        assert_eq!(c.nanos_at(500), 0, "readings before the base clamp to zero");
        assert_eq!(c.nanos_at(1_000 + 2_500_000_000), NANOS_PER_SEC);
        assert_eq!(c.ticks_for(NANOS_PER_SEC), 2_500_000_000);
        // A century of uptime at 5 GHz does not overflow.
        let century = 100 * 365 * 24 * 3600 * 5_000_000_000u64;
        let c = TickClock::new(5_000_000_000, 0).unwrap();
        assert_eq!(c.nanos_at(century), century / 5);
        assert!(TickClock::new(0, 0).is_none());
    }

    #[test]
    fn monotonic_for_increasing_readings() {
        let c = TickClock::new(3_333_333_333, 7).unwrap();
        let mut last = 0;
        for t in (7..10_000_000).step_by(9_973) {
            let n = c.nanos_at(t);
            assert!(n >= last);
            last = n;
        }
    }

    #[test]
    fn civil_to_unix() {
        assert_eq!(unix_time(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_time(2000, 3, 1, 0, 0, 0), Some(951_868_800));
        assert_eq!(unix_time(2026, 11, 26, 8, 30, 5), Some(1_795_681_805));
        assert_eq!(unix_time(2024, 2, 29, 23, 59, 59), Some(1_709_251_199));
        assert_eq!(unix_time(1969, 12, 31, 0, 0, 0), None);
        assert_eq!(unix_time(2026, 13, 1, 0, 0, 0), None);
        assert_eq!(civil(1_795_681_805), (2026, 11, 26, 8, 30, 5));
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_709_251_199), (2024, 2, 29, 23, 59, 59));
        assert_eq!(from_bcd(0x59), 59);
        assert_eq!(from_bcd(0x12), 12);
    }

    #[test]
    fn apic_counts() {
        assert_eq!(apic_initial_count(62_500_000, 1_000_000), Some(62_500));
        assert_eq!(apic_initial_count(1_000, 1), None);
        assert_eq!(apic_initial_count(u64::MAX, NANOS_PER_SEC), None);
        assert_eq!(APIC_DIVIDE_CONFIG[4], 0b0011, "divide by 16");
    }
}
