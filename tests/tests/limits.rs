//! What a program cannot do to the kernel's own resources: thousands of
//! random syscalls at -smp 2 (`syscall-fuzz`), memory exhaustion (`oom`),
//! and RFLAGS.AC set in ring 3 (`ac-flag`, on the test-hooks kernel).
//! Cases are in `tests/src/cases.rs`.

use llmos_qemu::Outcome;
use llmos_tests::boot_case_smp;

/// Calls the fuzzer makes by default (`userland/src/bin/syscall-fuzz`).
const FUZZ_CALLS: u64 = 50_000;

#[test]
fn the_syscall_fuzzer_cannot_break_the_kernel() {
    let b = boot_case_smp("syscall-fuzz", 2, None);
    assert!(!b.serial.contains("kernel panic"), "{}", b.serial);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] smp: 2 of 2 CPU\(s\) online");
    let line = b.expect_line(
        r"fuzz: summary: seed 1, \d+ calls, \d+ of \d+ numbers called, \d+ succeeded, \d+ failed, helper \d+ rounds",
    );
    let numbers = llmos_tests::numbers_in(&line);
    // seed, calls, called, numbers, succeeded, failed, rounds
    assert_eq!(numbers[1], FUZZ_CALLS, "{line}");
    assert_eq!(numbers[2], numbers[3], "every number was called: {line}");
    assert_eq!(numbers[4] + numbers[5], FUZZ_CALLS, "{line}");
    assert!(numbers[6] > 0, "the helper thread ran: {line}");
    b.expect_line("fuzz: errors: .*EFAULT=.*");
    b.expect_line("fuzz: the kernel still works; done");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: init exited with status 0");
}

/// The number in `line` right after `after`.
fn number_after(line: &str, after: &str) -> u64 {
    let rest = &line[line
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in {line:?}"))
        + after.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("a number after {after:?} in {line:?}"))
}

#[test]
fn a_program_that_exhausts_memory_cannot_take_the_kernels_reserve() {
    let b = boot_case_smp("oom", 1, None);
    assert!(!b.serial.contains("kernel panic"), "{}", b.serial);
    let reserve = number_after(
        &b.expect_line(
            r"\[\d+\.\d{6}\] mem: frame bitmap .*, the last \d+ MiB of it for the kernel alone",
        ),
        "the last ",
    );
    let before = number_after(
        &b.expect_line(r"\d+ MiB of memory, free before: \d+ MiB"),
        "before: ",
    );
    // MAP_POPULATE stops at the first page it cannot have and gives all
    // back: ENOMEM (an early kernel populated on past it and returned the
    // mapping, the rest of the machine's memory gone).
    b.expect_line("populate of twice the memory: errno 12");
    let after = number_after(
        &b.expect_line(r"free after the populate: \d+ MiB"),
        "populate: ",
    );
    assert!(
        after + 4 >= before,
        "{after} MiB free after the populate, {before} before\n{}",
        b.serial
    );
    // Walks over areas skip what holds nothing (an early kernel visited
    // each of the 2^32 pages).
    b.expect_line("mprotect and munmap of an unpopulated 16 TiB area: 0 0");
    b.expect_line(r"the reads stopped short of the area: true \(errno 14\)");
    let full = number_after(&b.expect_line(r"free while full: \d+ MiB"), "full: ");
    assert!(
        full <= reserve + 4 && full + 4 >= reserve,
        "user memory stops at the {reserve} MiB reserve, {full} MiB were free\n{}",
        b.serial
    );
    for line in [
        "open while full: success",
        "pipe while full: success",
        "pipe round trip while full: true",
        "socket while full: success",
        "listing / while full: true",
        "32 MiB file write while full: short or refused: true",
    ] {
        b.expect_line(line);
    }
    let back = number_after(&b.expect_line(r"free after munmap: \d+ MiB"), "munmap: ");
    // The kernel heap keeps what it grew by for the file (at most half the
    // reserve).
    assert!(
        back + reserve / 2 + 4 >= before,
        "{back} MiB free after munmap, {before} before\n{}",
        b.serial
    );
    b.expect_line("32 MiB file write afterwards: 33554432");
    // A page fault with nothing left: SIGKILL, as Linux's OOM killer.
    b.expect_line(r"\[\d+\.\d{6}\] kernel: init killed by SIGKILL \(9\): out of memory: write to 0x[0-9a-f]+ at RIP 0x[0-9a-f]+ needed a page, and the \d+ KiB still free are the kernel's reserve");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: init killed by signal 9 \(SIGKILL\), fault at 0x[0-9a-f]+ \(write, RIP 0x[0-9a-f]+\); restart budget spent \(0 restarts in 600 s\), powering off");
    b.expect_outcome(&Outcome::KernelFailure);
}

#[test]
fn rflags_ac_from_ring_3_never_reaches_the_kernel_or_another_thread() {
    // On the test-hooks kernel, whose every interrupt and exception entry
    // and syscall return panics if AC is set (SMAP off): an early kernel
    // ran its timer and page-fault handlers with the user's AC, and
    // switched threads without saving RFLAGS.
    let b = boot_case_smp("ac-flag", 2, None);
    assert!(!b.serial.contains("kernel panic"), "{}", b.serial);
    b.expect_line(
        r"\[\d+\.\d{6}\] test: the first thread's sched_yield switches away with RFLAGS.AC set",
    );
    b.expect_line("AC stayed set across 200000 of 200000 syscalls and 64 page faults: true");
    b.expect_line("AC clear again: true");
    b.expect_line("200 yields done");
    b.expect_line("another thread saw AC set: 0 times");
    b.expect_outcome(&Outcome::Success);
}
