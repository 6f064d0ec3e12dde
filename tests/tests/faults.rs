//! Failure diagnostics: a panic, a kernel page fault and a kernel stack
//! overflow each print the right line and end with QEMU exit 35 (not a hang
//! or a triple fault, which would be exit 0 with -no-reboot). Also: the
//! heap grows far past its initial size, and a growth that cannot be
//! mapped leaves nothing behind. These use the test-hooks kernel,
//! whose ramdisk names the scenario.

use std::time::Duration;

use llmos_qemu::{FirmwareKind, Outcome};
use llmos_tests::{Boot, boot, image};

const TIMEOUT: Duration = Duration::from_secs(120);

fn scenario(name: &str, firmware: FirmwareKind) -> Boot {
    let suffix = match firmware {
        FirmwareKind::Bios => "bios",
        FirmwareKind::Uefi => "uefi",
    };
    boot(
        &format!("{name}-{suffix}"),
        image(&format!("test/{name}-{suffix}.img")),
        firmware,
        TIMEOUT,
    )
}

#[test]
fn panic_prints_message_and_location_then_exits_35() {
    let b = scenario("panic", FirmwareKind::Bios);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(r"\[\d+\.\d{6}\] test: running scenario `panic`");
    b.expect_line(r"kernel panic: deliberate test panic at kernel/src/test_hooks\.rs:\d+");
    assert!(
        !b.serial.contains("kernel: ready"),
        "the panic happens before ready"
    );
}

#[test]
fn panic_under_uefi_exits_35() {
    let b = scenario("panic", FirmwareKind::Uefi);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(r"kernel panic: deliberate test panic at kernel/src/test_hooks\.rs:\d+");
}

#[test]
fn page_fault_reports_address_rip_and_error_code() {
    let b = scenario("page-fault", FirmwareKind::Bios);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(
        r"\[\d+\.\d{6}\] exception: page fault \(#PF\), vector 14, in kernel mode: read from 0xffffe000dead0000 \(page not present\)",
    );
    b.expect_line(r"\[\d+\.\d{6}\] exception: error code 0x0, RIP 0xffff[0-9a-f]{12}, CS 0x8, RFLAGS 0x[0-9a-f]+");
    b.expect_line(
        r"\[\d+\.\d{6}\] exception: RSP 0x[0-9a-f]{16}, SS 0x[0-9a-f]+, CR2 0xffffe000dead0000",
    );
    b.expect_line(r"kernel panic: page fault \(#PF\) in kernel mode at RIP 0xffff[0-9a-f]{12}: read from 0xffffe000dead0000 \(page not present\)");
}

#[test]
fn stack_overflow_is_named_not_a_triple_fault() {
    let b = scenario("stack-overflow", FirmwareKind::Bios);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(
        r"kernel panic: (double|page) fault \(#(DF|PF)\) in kernel mode at RIP 0x[0-9a-f]+: kernel stack overflow, guard page of the `main` stack hit at 0x[0-9a-f]+",
    );
}

#[test]
fn a_heap_growth_that_cannot_be_mapped_gives_its_frames_back() {
    // An early kernel left the pages of a failed growth mapped: with 64
    // frames free, none were free after the attempt.
    let b = scenario("heap-growth-failure", FirmwareKind::Bios);
    b.expect_outcome(&Outcome::Success);
    let line = b.expect_line(
        r"\[\d+\.\d{6}\] test: heap-growth-failure: a 16 MiB allocation with \d+ frames free failed; \d+ frames free after it \(\d+ frames were held meanwhile\)",
    );
    let numbers = llmos_tests::numbers_in(&line);
    // timestamp (2), 16, before, after, held
    let (before, after) = (numbers[3], numbers[4]);
    assert!(
        before >= 60 && after + 2 >= before,
        "the failed growth kept {} frames ({before} before, {after} after): {line}",
        before.saturating_sub(after)
    );
    b.expect_line(r"\[\d+\.\d{6}\] kernel: ready");
}

#[test]
fn heap_grows_on_demand() {
    let b = scenario("heap-growth", FirmwareKind::Bios);
    b.expect_outcome(&Outcome::Success);
    let line = b.expect_line(
        r"\[\d+\.\d{6}\] test: heap-growth: \d+ blocks, 6[4-9] MiB, contents intact, heap 4 -> \d+ MiB mapped in [1-9]\d* grows, \d+ bytes in use after free",
    );
    let mapped: u64 = line
        .split(" -> ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("mapped MiB");
    assert!(
        mapped >= 64,
        "heap mapped only {mapped} MiB for 64 MiB of blocks"
    );
    b.expect_line(r"\[\d+\.\d{6}\] kernel: ready");
}

#[test]
fn panic_with_console_and_heap_locks_held_still_prints() {
    let b = scenario("panic-with-locks-held", FirmwareKind::Bios);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(
        r"kernel panic: deliberate panic with the console and heap locks held at kernel/src/test_hooks\.rs:\d+",
    );
}

#[test]
fn recursive_panic_ends_without_recursing() {
    let b = scenario("recursive-panic", FirmwareKind::Bios);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(r"kernel panic: recursive failure while handling a panic");
}

#[test]
fn corrupt_initrd_is_refused_with_a_reason() {
    let b = boot(
        "corrupt-initrd",
        image("test/corrupt-initrd-bios.img"),
        FirmwareKind::Bios,
        TIMEOUT,
    );
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(
        r"\[\d+\.\d{6}\] kernel: cannot boot: initrd is corrupt: header at offset \d+: field 0 is not hexadecimal",
    );
    assert!(
        !b.serial.contains("kernel panic"),
        "a corrupt initrd must not panic the kernel"
    );
}
