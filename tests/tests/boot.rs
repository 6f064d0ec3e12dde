//! Boot tests: the contract images reach `kernel: ready` and power off
//! cleanly under BIOS and UEFI, and print the boot facts people rely on.

use std::time::Duration;

use llmos_qemu::{FirmwareKind, Outcome};
use llmos_tests::{boot, image};

const BIOS_TIMEOUT: Duration = Duration::from_secs(90);
const UEFI_TIMEOUT: Duration = Duration::from_secs(180);

fn check_normal_boot(b: &llmos_tests::Boot) {
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] kernel: llmos \S+ starting .*");
    b.expect_line(r"\[\d+\.\d{6}\] mem: \d+ MiB usable.*");
    b.expect_line(r"\[\d+\.\d{6}\] cpu: .*\(.*family .* model .* stepping .*\).*");
    b.expect_line(r"\[\d+\.\d{6}\] cpu: features: .*\bsse2\b.*");
    b.expect_line(r"\[\d+\.\d{6}\] cpu: extended state: XCR0 0x[0-9a-f]+ .*NX on, WP on");
    b.expect_line(r"\[\d+\.\d{6}\] apic: .*tick 100 Hz; [1-9]\d* ticks in 50 ms");
    b.expect_line(r"\[\d+\.\d{6}\] random: ChaCha20 CSPRNG seeded from .*");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: ready");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: no init program, powering off");

    // Every line the kernel printed is in the boot-log format, timestamps
    // never go backwards, and `kernel: ready` comes before the power-off.
    let lines = b.kernel_lines();
    assert!(!lines.is_empty());
    let mut last = 0;
    let mut ready_at = None;
    for (i, line) in lines.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
        let p = kcore::bootlog::parse_line(line).unwrap_or_else(|| {
            panic!(
                "line {i} is not in the boot-log format: {line:?}\n{}",
                b.serial
            )
        });
        assert!(p.nanos >= last, "timestamp went backwards at {line:?}");
        last = p.nanos;
        if p.subsystem == "kernel" && p.message == "ready" {
            ready_at = Some(i);
        }
    }
    let ready_at = ready_at.expect("kernel: ready");
    assert!(
        lines[ready_at + 1..]
            .iter()
            .any(|l| l.ends_with("kernel: no init program, powering off"))
    );
}

#[test]
fn bios_image_boots_to_ready_and_powers_off() {
    let b = boot(
        "bios",
        image("llmos-bios.img"),
        FirmwareKind::Bios,
        BIOS_TIMEOUT,
    );
    check_normal_boot(&b);
}

#[test]
fn uefi_image_boots_to_ready_and_powers_off() {
    let b = boot(
        "uefi",
        image("llmos-uefi.img"),
        FirmwareKind::Uefi,
        UEFI_TIMEOUT,
    );
    check_normal_boot(&b);
}
