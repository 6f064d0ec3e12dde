//! Low-level power control: QEMU's isa-debug-exit, ACPI S5, halt.

use ::x86_64::instructions::port::Port;
use kcore::acpi::{PM1_SCI_EN, PM1_SLP_EN, pm1_sleep_value};

use crate::power::AcpiPowerOff;

/// The isa-debug-exit I/O port QEMU is started with (`iobase=0xf4`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Disables maskable interrupts on this CPU.
pub fn disable_interrupts() {
    ::x86_64::instructions::interrupts::disable();
}

/// Writes `code` to isa-debug-exit; QEMU then exits with `(code << 1) | 1`.
/// Returns if the device is absent.
pub fn qemu_debug_exit(code: u8) {
    // SAFETY: only called when CPUID reports QEMU, where port 0xf4 is the
    // debug-exit device or unassigned (writes to it are then ignored).
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(u32::from(code)) }
}

fn inw(port: u16) -> u16 {
    // SAFETY: `port` is a PM1 control register the FADT named.
    unsafe { Port::<u16>::new(port).read() }
}

fn outw(port: u16, v: u16) {
    // SAFETY: as in `inw`; writing SLP_TYP|SLP_EN is the documented way to
    // enter a sleep state.
    unsafe { Port::<u16>::new(port).write(v) }
}

/// Enters ACPI S5 (soft off). Returns only if the machine did not power off.
pub fn acpi_s5(p: &AcpiPowerOff) {
    if let Some((smi, value)) = p.acpi_enable
        && inw(p.pm1a_cnt) & PM1_SCI_EN == 0
    {
        // SAFETY: the FADT names this SMI command port and the value that
        // hands the chipset to the OS (ACPI mode).
        unsafe { Port::<u8>::new(smi).write(value) };
        for _ in 0..1_000_000 {
            if inw(p.pm1a_cnt) & PM1_SCI_EN != 0 {
                break;
            }
            core::hint::spin_loop();
        }
    }
    let keep = !(0x7 << 10 | PM1_SLP_EN);
    outw(
        p.pm1a_cnt,
        (inw(p.pm1a_cnt) & keep) | pm1_sleep_value(p.slp_typ_a),
    );
    if let Some(b) = p.pm1b_cnt {
        outw(b, (inw(b) & keep) | pm1_sleep_value(p.slp_typ_b));
    }
    for _ in 0..10_000_000 {
        core::hint::spin_loop();
    }
}

/// Halts this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        ::x86_64::instructions::interrupts::disable();
        ::x86_64::instructions::hlt();
    }
}
