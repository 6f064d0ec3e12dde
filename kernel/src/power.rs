//! Powering off.
//!
//! Order of attempts: QEMU's `isa-debug-exit` device (only when CPUID says
//! we run under QEMU; it turns the status into QEMU's exit code), then ACPI
//! S5 through the PM1 control registers found at boot, then halting with
//! interrupts off. This path never allocates or takes a lock, so panics and
//! fatal exceptions can use it.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

use spin::Once;

use crate::arch::x86_64::power as hw;

/// How the kernel ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Normal shutdown (isa-debug-exit code 0x10: QEMU exits 33).
    Success,
    /// Panic, fatal exception or failed init (code 0x11: QEMU exits 35).
    Failure,
}

impl Status {
    /// The value written to the isa-debug-exit port.
    pub const fn debug_exit_code(self) -> u8 {
        match self {
            Status::Success => 0x10,
            Status::Failure => 0x11,
        }
    }
}

/// What ACPI power-off needs, captured at boot.
#[derive(Debug, Clone, Copy)]
pub struct AcpiPowerOff {
    /// PM1a control port.
    pub pm1a_cnt: u16,
    /// PM1b control port, if the machine has one.
    pub pm1b_cnt: Option<u16>,
    /// `\_S5` SLP_TYPa.
    pub slp_typ_a: u8,
    /// `\_S5` SLP_TYPb.
    pub slp_typ_b: u8,
    /// SMI command port and value that switch the chipset to ACPI mode.
    pub acpi_enable: Option<(u16, u8)>,
}

static ACPI: Once<AcpiPowerOff> = Once::new();
static UNDER_QEMU: AtomicBool = AtomicBool::new(false);

/// Records how to power off through ACPI.
pub fn set_acpi(p: AcpiPowerOff) {
    ACPI.call_once(|| p);
}

/// Records whether the hypervisor is QEMU (so isa-debug-exit may exist).
pub fn set_under_qemu(yes: bool) {
    UNDER_QEMU.store(yes, Ordering::Relaxed);
}

/// Ends the machine with `status`. Never returns.
pub fn power_off(status: Status) -> ! {
    hw::disable_interrupts();
    if UNDER_QEMU.load(Ordering::Relaxed) {
        hw::qemu_debug_exit(status.debug_exit_code());
    }
    if let Some(p) = ACPI.get() {
        hw::acpi_s5(p);
    }
    hw::halt_forever()
}
