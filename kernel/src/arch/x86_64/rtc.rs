//! The CMOS real-time clock, read once at boot for the wall-clock time.

use ::x86_64::instructions::port::Port;
use kcore::time::{from_bcd, unix_time};

fn cmos(reg: u8) -> u8 {
    // SAFETY: ports 0x70/0x71 are the CMOS index/data pair on every PC;
    // bit 7 of the index keeps NMIs enabled as they were (we leave it 0),
    // and only the boot CPU reads the RTC.
    unsafe {
        Port::<u8>::new(0x70).write(reg);
        Port::<u8>::new(0x71).read()
    }
}

fn update_in_progress() -> bool {
    cmos(0x0a) & 0x80 != 0
}

fn snapshot(century_reg: Option<u8>) -> [u8; 7] {
    let mut spins = 0;
    while update_in_progress() && spins < 1_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    [
        cmos(0x00),
        cmos(0x02),
        cmos(0x04),
        cmos(0x07),
        cmos(0x08),
        cmos(0x09),
        century_reg.map_or(0, cmos),
    ]
}

/// Seconds since the Unix epoch, from the RTC (assumed to run in UTC, as
/// QEMU's and servers' do). `None` if the RTC returns nonsense.
pub fn read_unix_time(century_reg: Option<u8>) -> Option<u64> {
    // Read until two consecutive snapshots agree (an update can land
    // between register reads).
    let mut prev = snapshot(century_reg);
    let mut cur = snapshot(century_reg);
    for _ in 0..5 {
        if prev == cur {
            break;
        }
        prev = cur;
        cur = snapshot(century_reg);
    }
    let status_b = cmos(0x0b);
    let bcd = status_b & 0x04 == 0;
    let h24 = status_b & 0x02 != 0;
    let dec = |v: u8| if bcd { from_bcd(v) } else { u32::from(v) };
    let [s, m, h, d, mo, y, c] = cur;
    let pm = h & 0x80 != 0;
    let mut hour = dec(h & 0x7f);
    if !h24 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = if c != 0 { dec(c) } else { 20 };
    unix_time(
        century * 100 + dec(y),
        dec(mo),
        dec(d),
        hour,
        dec(m),
        dec(s),
    )
}
