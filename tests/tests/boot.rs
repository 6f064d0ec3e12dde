//! Boot tests: the contract images reach `kernel: ready` and power off
//! cleanly under BIOS and UEFI, and so does the kernel QEMU loads directly
//! (PVH), and they print the boot facts people rely on.

use std::time::Duration;

use llmos_qemu::{Config, FirmwareKind, Outcome};
use llmos_tests::{boot, boot_with, direct, image};

const BIOS_TIMEOUT: Duration = Duration::from_secs(90);
const UEFI_TIMEOUT: Duration = Duration::from_secs(180);

fn check_normal_boot(b: &llmos_tests::Boot) {
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] kernel: llmos \S+ starting .*");
    b.expect_line(r"\[\d+\.\d{6}\] mem: \d+ MiB usable.*");
    b.expect_line(r"\[\d+\.\d{6}\] cpu: .*\(.*family .* model .* stepping .*\).*");
    b.expect_line(r"\[\d+\.\d{6}\] cpu: features: .*\bsse2\b.*");
    b.expect_line(r"\[\d+\.\d{6}\] cpu: extended state: XCR0 0x[0-9a-f]+ .*NX on, WP on");
    b.expect_line(r"\[\d+\.\d{6}\] apic: .*tick 100 Hz");
    b.expect_line(r"\[\d+\.\d{6}\] apic: [1-9]\d* timer ticks in the first \d+ ms");
    b.expect_line(r"\[\d+\.\d{6}\] random: ChaCha20 CSPRNG seeded from .*");
    b.expect_line(r"\[\d+\.\d{6}\] initrd: \d+ bytes: \d+ files \(\d+ KiB\), \d+ directories");
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

#[test]
fn direct_boot_reaches_ready_and_powers_off() {
    let mut cfg = direct("initrd");
    cfg.memory_mib = 512;
    let b = boot_with("direct", &cfg, BIOS_TIMEOUT);
    check_normal_boot(&b);
    b.expect_line(
        r"\[\d+\.\d{6}\] kernel: llmos \S+ starting \(PVH direct boot, start info version 1\)",
    );
    b.expect_line(r"\[\d+\.\d{6}\] acpi: MADT: 1 CPU\(s\).*");
}

/// The memory map's "RAM ends at" address and the usable MiB.
fn ram(b: &llmos_tests::Boot) -> (u64, u64) {
    let line = b.expect_line(r"\[\d+\.\d{6}\] mem: \d+ MiB usable, .*; RAM ends at 0x[0-9a-f]+");
    let usable = line
        .split("mem: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("usable MiB");
    let end = line
        .rsplit("0x")
        .next()
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .expect("RAM end");
    (end, usable)
}

#[test]
fn direct_boot_uses_ram_above_4_gib() {
    // q35 puts RAM beyond 2 GiB above the 4 GiB line; the PVH entry maps
    // the first 4 GiB and the kernel adds the rest with 1 GiB pages.
    let mut cfg = direct("initrd");
    cfg.memory_mib = 6 * 1024;
    cfg.smp = 2;
    let b = boot_with("direct-6g", &cfg, BIOS_TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    let (end, usable) = ram(&b);
    assert!(
        end > 4 << 30,
        "RAM should end above 4 GiB, got {end:#x}\n{}",
        b.serial
    );
    assert!(usable > 5 * 1024, "only {usable} MiB usable\n{}", b.serial);
    b.expect_line(r"\[\d+\.\d{6}\] smp: 2 of 2 CPU\(s\) online");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: ready");
    assert!(!b.serial.contains("is not used"), "{}", b.serial);
}

#[test]
fn direct_boot_without_1_gib_pages_keeps_to_the_first_4_gib() {
    // qemu64 lacks 1 GiB pages: RAM above 4 GiB is left alone, with a
    // warning, and the kernel still boots.
    let mut cfg = direct("initrd");
    cfg.memory_mib = 6 * 1024;
    cfg.cpu = Some("qemu64".into());
    let b = boot_with("direct-6g-qemu64", &cfg, BIOS_TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(
        r"\[\d+\.\d{6}\] mem: WARNING: RAM from 0x100000000 up is not used \(the CPU has no 1 GiB pages to map it\)",
    );
    let (end, _) = ram(&b);
    assert!(
        end <= 4 << 30,
        "RAM end {end:#x} beyond the mapped 4 GiB\n{}",
        b.serial
    );
    b.expect_line(r"\[\d+\.\d{6}\] kernel: ready");
}

#[test]
fn powers_off_through_acpi_without_the_debug_exit_device() {
    // Without isa-debug-exit the kernel falls back to ACPI S5: QEMU must
    // exit (code 0) instead of the guest halting forever.
    let mut cfg = Config::new(image("llmos-bios.img"));
    cfg.memory_mib = 512;
    cfg.debug_exit = false;
    let b = boot_with("acpi-poweroff", &cfg, BIOS_TIMEOUT);
    assert!(
        matches!(&b.outcome, Outcome::Infrastructure(why) if why.contains("exited 0")),
        "expected a plain power-off (exit 0), got {:?}\n{}",
        b.outcome,
        b.serial
    );
    b.expect_line(r"\[\d+\.\d{6}\] acpi: power-off via PM1a_CNT 0x[0-9a-f]+, S5 type \d+");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: no init program, powering off");
}

#[test]
fn boots_on_a_cpu_without_avx_xsave_or_rdrand() {
    // qemu64 has SSE2 but no XSAVE, AVX or RDRAND: the kernel must adapt
    // and say so rather than fault.
    let mut cfg = Config::new(image("llmos-bios.img"));
    cfg.memory_mib = 512;
    cfg.cpu = Some("qemu64".into());
    let b = boot_with("qemu64", &cfg, BIOS_TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] cpu: extended state: XCR0 0x0 \(no xsave\).*");
    b.expect_line(
        r"\[\d+\.\d{6}\] random: WARNING: no healthy hardware random source \(the CPU has neither RDSEED nor RDRAND\); CSPRNG seeded from timing jitter only \(tsc\), not enough for secrets",
    );
    b.expect_line(r"\[\d+\.\d{6}\] kernel: ready");
}

#[test]
fn pci_scan_finds_the_virtio_nic_through_ecam() {
    let mut cfg = Config::new(image("llmos-bios.img"));
    cfg.network = Some(Vec::new());
    cfg.memory_mib = 256;
    let b = boot_with("pci", &cfg, BIOS_TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] pci: ECAM at 0x[0-9a-f]+ for buses 00-[0-9a-f]{2}");
    b.expect_line(r"\[\d+\.\d{6}\] pci: 00:00\.0 8086:29c0 host bridge");
    b.expect_line(r"\[\d+\.\d{6}\] pci: [0-9a-f]{2}:[0-9a-f]{2}\.\d 1af4:1000 virtio network");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: ready");
}
