//! The local APIC (xAPIC, memory-mapped) and its timer; masking the legacy
//! 8259 PICs.
//!
//! The timer is calibrated against the PIT (ticks at divide-by-16 during a
//! 10 ms window) and then runs periodically at [`TICK_HZ`]. The tick only
//! counts for now; the scheduler will hang off it.

use ::x86_64::instructions::port::Port;
use ::x86_64::registers::model_specific::Msr;
use kcore::time::{APIC_DIVIDE_CONFIG, apic_initial_count, hz_from};
use spin::Once;

use super::idt::{SPURIOUS_VECTOR, TIMER_VECTOR};
use super::pit;
use crate::memory::mmio;

/// Periodic timer frequency.
pub const TICK_HZ: u64 = 100;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;

const REG_ID: usize = 0x20;
const REG_TPR: usize = 0x80;
const REG_EOI: usize = 0xb0;
const REG_SVR: usize = 0xf0;
const REG_ICR_LOW: usize = 0x300;
const REG_ICR_HIGH: usize = 0x310;
const REG_LVT_TIMER: usize = 0x320;
const REG_TIMER_INITIAL: usize = 0x380;
const REG_TIMER_CURRENT: usize = 0x390;
const REG_TIMER_DIVIDE: usize = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const SVR_ENABLE: u32 = 1 << 8;

/// A mapped local APIC.
#[derive(Debug)]
pub struct LocalApic {
    base: *mut u32,
}

// SAFETY: the register window is per-CPU hardware; the pointer is only used
// for volatile MMIO accesses, which are valid from any context on the CPU
// that owns it (one CPU for now).
unsafe impl Send for LocalApic {}
// SAFETY: as above; register accesses are single volatile loads/stores.
unsafe impl Sync for LocalApic {}

impl LocalApic {
    fn read(&self, reg: usize) -> u32 {
        // SAFETY: `base` maps the 4 KiB APIC register page uncached and
        // `reg` is one of the 16-byte-aligned register offsets above.
        unsafe { self.base.byte_add(reg).read_volatile() }
    }

    fn write(&self, reg: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { self.base.byte_add(reg).write_volatile(value) }
    }

    /// This CPU's APIC ID.
    pub fn id(&self) -> u32 {
        self.read(REG_ID) >> 24
    }
}

static LAPIC: Once<LocalApic> = Once::new();
static TIMER: Once<TimerInfo> = Once::new();

/// Result of bringing up the APIC timer.
#[derive(Debug, Clone, Copy)]
pub struct TimerInfo {
    /// Physical address of the APIC registers.
    pub phys: u64,
    /// This CPU's APIC ID.
    pub id: u32,
    /// Timer frequency at divide-by-16, in Hz.
    pub hz: u64,
    /// Initial count programmed for one tick.
    pub initial_count: u32,
}

/// Errors bringing up the APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicError {
    /// The register page could not be mapped.
    Map,
    /// The PIT did not respond during timer calibration.
    NoPit,
    /// The measured frequency gives no usable tick count.
    BadFrequency(u64),
}

impl core::fmt::Display for ApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ApicError::Map => f.write_str("could not map the local APIC registers"),
            ApicError::NoPit => f.write_str("the PIT did not respond during timer calibration"),
            ApicError::BadFrequency(hz) => write!(f, "implausible APIC timer frequency {hz} Hz"),
        }
    }
}

/// Remaps the 8259 PICs to vectors 0x20–0x2f (so a stray IRQ cannot look
/// like a CPU exception) and masks every line.
fn mask_legacy_pics() {
    let w = |port: u16, v: u8| {
        // SAFETY: 0x20/0x21/0xa0/0xa1 are the 8259 PICs on every PC; the
        // ICW sequence below is the standard initialisation.
        unsafe { Port::<u8>::new(port).write(v) }
    };
    w(0x20, 0x11);
    w(0xa0, 0x11);
    w(0x21, 0x20);
    w(0xa1, 0x28);
    w(0x21, 0x04);
    w(0xa1, 0x02);
    w(0x21, 0x01);
    w(0xa1, 0x01);
    w(0x21, 0xff);
    w(0xa1, 0xff);
}

/// Masks the PICs, enables the local APIC, calibrates its timer and starts
/// the periodic tick. Interrupts stay disabled; the caller enables them.
pub fn init() -> Result<TimerInfo, ApicError> {
    mask_legacy_pics();
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC (CPUID.1:EDX
    // .APIC is checked by the caller); setting the global-enable bit keeps
    // the base address.
    let base = unsafe {
        let v = msr.read();
        if v & APIC_BASE_ENABLE == 0 {
            msr.write(v | APIC_BASE_ENABLE);
        }
        v & 0x000f_ffff_ffff_f000
    };
    let virt = mmio::map(base, 4096).map_err(|_| ApicError::Map)?;
    let lapic = LAPIC.call_once(|| LocalApic {
        base: virt as *mut u32,
    });

    lapic.write(REG_TPR, 0);
    lapic.write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));

    // Calibrate: count down from the maximum at divide-by-16 for 10 ms.
    lapic.write(REG_TIMER_DIVIDE, APIC_DIVIDE_CONFIG[4]);
    lapic.write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    let (count, window_ns) = pit::ten_ms().ok_or(ApicError::NoPit)?;
    let elapsed = pit::time_window(
        count,
        || lapic.write(REG_TIMER_INITIAL, u32::MAX),
        |()| u64::from(u32::MAX - lapic.read(REG_TIMER_CURRENT)),
    )
    .ok_or(ApicError::NoPit)?;
    lapic.write(REG_TIMER_INITIAL, 0);
    let hz = hz_from(elapsed, window_ns).unwrap_or(0);
    let initial_count =
        apic_initial_count(hz, 1_000_000_000 / TICK_HZ).ok_or(ApicError::BadFrequency(hz))?;

    lapic.write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    lapic.write(REG_TIMER_INITIAL, initial_count);

    let info = TimerInfo {
        phys: base,
        id: lapic.id(),
        hz,
        initial_count,
    };
    TIMER.call_once(|| info);
    Ok(info)
}

/// Brings up the calling application processor's local APIC with the
/// boot CPU's timer calibration (all local APIC timers run off the same
/// bus clock). Returns this CPU's APIC ID.
pub fn init_ap() -> Option<u32> {
    let lapic = LAPIC.get()?;
    let timer = TIMER.get()?;
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: as in `init`: only the global-enable bit is set.
    unsafe {
        let v = msr.read();
        if v & APIC_BASE_ENABLE == 0 {
            msr.write(v | APIC_BASE_ENABLE);
        }
    }
    lapic.write(REG_TPR, 0);
    lapic.write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
    lapic.write(REG_TIMER_DIVIDE, APIC_DIVIDE_CONFIG[4]);
    lapic.write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    lapic.write(REG_TIMER_INITIAL, timer.initial_count);
    Some(lapic.id())
}

/// Stops (`true`) or restarts this CPU's periodic timer. An idle
/// application processor stops it and waits for an IPI instead, so idle
/// CPUs cost nothing; the boot CPU keeps ticking for sleepers and console
/// input.
pub fn set_timer_masked(masked: bool) {
    let Some(l) = LAPIC.get() else { return };
    let lvt = LVT_PERIODIC | u32::from(TIMER_VECTOR) | if masked { LVT_MASKED } else { 0 };
    l.write(REG_LVT_TIMER, lvt);
}

/// This CPU's APIC ID (0 before the APIC is set up).
pub fn current_id() -> u32 {
    LAPIC.get().map_or(0, LocalApic::id)
}

fn send_icr(apic_id: u32, low: u32) {
    let Some(l) = LAPIC.get() else { return };
    for _ in 0..1_000_000 {
        if l.read(REG_ICR_LOW) & (1 << 12) == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    l.write(REG_ICR_HIGH, apic_id << 24);
    l.write(REG_ICR_LOW, low);
    for _ in 0..1_000_000 {
        if l.read(REG_ICR_LOW) & (1 << 12) == 0 {
            break;
        }
        core::hint::spin_loop();
    }
}

/// Sends an INIT IPI (level assert) to `apic_id`.
pub fn send_init(apic_id: u32) {
    send_icr(apic_id, 0x4500);
}

/// Sends a STARTUP IPI: the AP starts in real mode at `page << 12`.
pub fn send_startup(apic_id: u32, page: u8) {
    send_icr(apic_id, 0x4600 | u32::from(page));
}

/// Sends a fixed interrupt with `vector` to `apic_id`.
pub fn send_ipi(apic_id: u32, vector: u8) {
    send_icr(apic_id, 0x4000 | u32::from(vector));
}

/// Signals end-of-interrupt to the local APIC (from interrupt handlers).
pub fn end_of_interrupt() {
    if let Some(l) = LAPIC.get() {
        l.write(REG_EOI, 0);
    }
}
