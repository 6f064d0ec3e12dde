//! Threads and the scheduler: std threads with every synchronisation
//! primitive, thousands of short threads, vector state across switches,
//! futex timeouts, exit_group with blocked threads, and the CPU count
//! programs see.

use llmos_qemu::Outcome;
use llmos_tests::{boot_case, boot_case_smp, host_run};

#[test]
fn sixteen_threads_mutex_condvar_barrier_mpsc_atomics() {
    let b = boot_case("threads", None);
    b.expect_outcome(&Outcome::Success);
    let (host, code) = host_run("threads");
    assert_eq!(code, 0);
    assert_eq!(
        b.program_output(),
        host,
        "differs from the host\n{}",
        b.serial
    );
    b.expect_line("all totals correct");
}

#[test]
fn join_storm_of_2000_threads() {
    let b = boot_case("join-storm", None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"joined 2000 threads, sum of their results 1999000 \(want 1999000\)");
}

#[test]
fn vector_state_is_per_thread() {
    let b = boot_case("vectors", None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line("results identical to the single-threaded reference: yes");
}

#[test]
fn futex_wait_times_out_between_50_and_100_ms() {
    let b = boot_case("futex-timeout", None);
    b.expect_outcome(&Outcome::Success);
    let line = b.expect_line(r"futex wait with a 50 ms timeout: ETIMEDOUT after \d+ ms");
    let ms: u64 = line
        .split_whitespace()
        .nth(9)
        .and_then(|s| s.parse().ok())
        .expect("ms");
    assert!((50..=100).contains(&ms), "{line}");
    b.expect_line("futex wait on a changed value: EAGAIN");
}

#[test]
fn exit_group_from_a_thread_ends_blocked_threads_too() {
    let b = boot_case("exit-group", None);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line("secondary thread calls exit_group\\(7\\)");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: init exited with status 7");
    assert!(
        !b.serial.contains("?!"),
        "a blocked thread ran on\n{}",
        b.serial
    );
}

#[test]
fn available_parallelism_is_the_cpu_count() {
    for smp in [1, 2, 4] {
        let b = boot_case_smp("cpus", smp, None);
        b.expect_outcome(&Outcome::Success);
        b.expect_line(&format!("available_parallelism = {smp}"));
        b.expect_line(&format!(
            r"\[\d+\.\d{{6}}\] smp: {smp} of {smp} CPU\(s\) online"
        ));
    }
}

#[test]
fn stress_on_2_and_4_cpus_matches_host() {
    let (host, code) = host_run("threads");
    assert_eq!(code, 0);
    for smp in [2, 4] {
        let b = boot_case_smp("threads", smp, None);
        b.expect_outcome(&Outcome::Success);
        assert_eq!(
            b.program_output(),
            host,
            "differs from the host with -smp {smp}\n{}",
            b.serial
        );
    }
}

#[test]
fn join_storm_on_4_cpus() {
    let b = boot_case_smp("join-storm", 4, None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"joined 2000 threads, sum of their results 1999000 \(want 1999000\)");
}

#[test]
fn vector_state_on_2_and_4_cpus() {
    for smp in [2, 4] {
        let b = boot_case_smp("vectors", smp, None);
        b.expect_outcome(&Outcome::Success);
        b.expect_line("results identical to the single-threaded reference: yes");
    }
}

#[test]
fn futex_timeout_and_exit_group_on_4_cpus() {
    let b = boot_case_smp("futex-timeout", 4, None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line("futex wait on a changed value: EAGAIN");
    let b = boot_case_smp("exit-group", 4, None);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(r"\[\d+\.\d{6}\] kernel: init exited with status 7");
    assert!(
        !b.serial.contains("?!"),
        "a blocked thread ran on\n{}",
        b.serial
    );
}

#[test]
fn revoked_page_faults_on_other_cpus_at_once() {
    for smp in [1, 2] {
        let b = boot_case_smp("shootdown", smp, None);
        b.expect_outcome(&Outcome::KernelFailure);
        // The reader may fault before the main thread prints the result of
        // mprotect; the kill report is what matters.
        b.expect_line("reader is running; revoking the page");
        b.expect_line(
            r"\[\d+\.\d{6}\] kernel: init killed by SIGSEGV \(11\): segmentation fault: read from 0x[0-9a-f]+ \(the area is ---\).*",
        );
        assert!(
            !b.serial.contains("still reads"),
            "stale TLB entry with -smp {smp}\n{}",
            b.serial
        );
    }
}

#[test]
fn a_thread_alone_on_its_cpu_runs_without_timer_ticks() {
    // A compute thread with a CPU to itself takes (next to) no timer
    // interrupts; two threads on one CPU get the tick back and take turns.
    // The bounds are far apart (about 100 ticks a second when ticking).
    let b = boot_case_smp("ticks", 2, None);
    b.expect_outcome(&Outcome::Success);
    let alone = b.expect_line(r"CPU 1 alone: \d+ timer ticks in 1 s");
    let shared = b
        .expect_line(r"CPU 1 shared by two threads: \d+ timer ticks in 1 s, both progressed: true");
    assert!(
        b.serial.contains("ticks ok"),
        "{alone}\n{shared}\n{}",
        b.serial
    );
}

#[test]
fn a_new_busy_thread_goes_to_the_idle_cpu() {
    // The main thread, back on CPU 0 from a sleep, starts a spinning thread
    // whose home is CPU 0: the idle CPU 1 (no tick while idle) must be sent
    // one of them. Before the fix they took turns on CPU 0 for good, which
    // made one boot in ten of the runtime generate three times slower.
    let b = boot_case_smp("spread", 2, None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line("main thread on CPU 0 before starting the other");
    let moved = b.expect_line(
        r"after 700 ms: main thread on CPU \d, other thread on CPU \d, both progressed: true",
    );
    assert!(b.serial.contains("spread ok"), "{moved}\n{}", b.serial);
}

#[test]
fn sched_setaffinity_pins_threads_to_cpus() {
    for smp in [1, 4] {
        let b = boot_case_smp("affinity", smp, None);
        b.expect_outcome(&Outcome::Success);
        for c in 0..smp {
            b.expect_line(&format!(
                r"pinned to CPU {c}: running on CPU {c}, affinity mask {:#x}",
                1u64 << c
            ));
        }
        b.expect_line("empty mask: EINVAL");
        b.expect_line("affinity works");
    }
}

#[test]
fn a_thread_restricted_away_from_its_cpu_moves_and_shootdowns_still_return() {
    // An early kernel hung here: CPU 1's idle loop spun with interrupts off
    // over a thread it could not run, and the munmap's TLB shootdown waited
    // for it.
    let b = boot_case_smp("affinity-move", 2, None);
    b.expect_outcome(&Outcome::Success);
    let (host, code) = host_run("affinity-move");
    assert_eq!(code, 0, "{host}");
    assert_eq!(
        b.program_output(),
        host,
        "differs from the host\n{}",
        b.serial
    );
    b.expect_line("T ends on CPU 0");
}
