//! A first process killed by a signal is restarted by the kernel, within
//! its budget; a normal exit still powers off. The `restart` program
//! (`userland/src/bin/restart.rs`) aborts in its first run and faults in
//! its second, each time with threads blocked in a futex, a pipe read and
//! accept, sleeping and spinning on the other CPU, a listening socket and
//! 64 MiB of memory; its third run checks what the kernel left it.

use llmos_qemu::Outcome;
use llmos_tests::{Boot, boot_case, boot_case_smp};

const LOG: &str = r"\[\d+\.\d{6}\] ";
const RIP: &str = r"0x[0-9a-f]+";

/// Where the first line matching `pattern` starts in the serial log.
fn at(b: &Boot, pattern: &str) -> usize {
    let line = b.expect_line(pattern);
    b.serial
        .find(&line)
        .expect("the matched line is in the log")
}

/// The `MemFree` value run `run` printed, in kB.
fn mem_free(b: &Boot, run: u32) -> u64 {
    let line = b.expect_line(&format!(r"run {run}: MemFree \d+ kB at start"));
    line.split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

#[test]
fn a_killed_init_is_restarted_with_the_cause_and_a_clean_slate() {
    let b = boot_case_smp("restart", 2, None);
    b.expect_outcome(&Outcome::Success);
    // Run 1: abort() with five busy threads and a listener on the port.
    b.expect_line("run 1: LLMOS_RESTARTS=unset, LLMOS_LAST_EXIT=unset");
    b.expect_line("run 1: bound 0.0.0.0:7878");
    let abort = at(&b, "run 1: aborting");
    let first = at(
        &b,
        &format!(
            r"{LOG}kernel: init killed by signal 6 \(SIGABRT\); restarting \(restart 1 of 5\) in 100 ms"
        ),
    );
    // Run 2 sees the cause, binds the same port again, and faults.
    let second_run = at(
        &b,
        r"run 2: LLMOS_RESTARTS=1, LLMOS_LAST_EXIT=killed by signal 6 \(SIGABRT\)",
    );
    b.expect_line("run 2: bound 0.0.0.0:7878");
    b.expect_line(&format!(
        r"{LOG}kernel: init killed by SIGSEGV \(11\): segmentation fault: write to 0x[0-9a-f]+ \(the area is r--\) at RIP {RIP}; areas near it:"
    ));
    let second = at(
        &b,
        &format!(
            r"{LOG}kernel: init killed by signal 11 \(SIGSEGV\), fault at 0x[0-9a-f]+ \(write, RIP {RIP}\); restarting \(restart 2 of 5\) in 200 ms"
        ),
    );
    // Run 3: the cause of the second death, the port, files and memory.
    let third_run = at(
        &b,
        &format!(
            r"run 3: LLMOS_RESTARTS=2, LLMOS_LAST_EXIT=killed by signal 11 \(SIGSEGV\), fault at 0x[0-9a-f]+ \(write, RIP {RIP}\)"
        ),
    );
    assert!(
        abort < first && first < second_run && second_run < second && second < third_run,
        "events out of order\n{}",
        b.serial
    );
    b.expect_line("run 3: bound 0.0.0.0:7878");
    b.expect_line("run 3: the listener accepted and echoed: true");
    b.expect_line(r"run 3: /tmp entries: \[\]");
    b.expect_line(r#"run 3: /data entries: \["run-1", "run-2"\]"#);
    b.expect_line("run 3: done");
    b.expect_line(&format!(r"{LOG}kernel: init exited with status 0"));
    b.expect_line(&format!(
        r"{LOG}process: /bin/restart torn down: \d+ KiB of memory and \d+ descriptor\(s\) released, 1 file\(s\) removed from /tmp"
    ));
    assert_eq!(
        b.serial.matches("kernel: starting /bin/restart").count(),
        3,
        "{}",
        b.serial
    );
    assert_eq!(
        b.serial.matches("; restarting (").count(),
        2,
        "{}",
        b.serial
    );
    // No blocked thread ever came back to user mode.
    assert!(!b.serial.contains("?!"), "a thread ran on\n{}", b.serial);
    // The 64 MiB each dead run touched (and its page tables) came back.
    let (one, three) = (mem_free(&b, 1), mem_free(&b, 3));
    assert!(
        three + 16 * 1024 >= one,
        "MemFree {one} kB in run 1, {three} kB in run 3\n{}",
        b.serial
    );
    assert!(!b.serial.contains("kernel panic"), "{}", b.serial);
}

#[test]
fn an_init_that_always_dies_spends_its_budget_and_powers_off_with_failure() {
    // The case's budget: 3 restarts in 10 minutes, 10 ms doubling.
    let b = boot_case_smp("restart-always", 2, None);
    b.expect_outcome(&Outcome::KernelFailure);
    for (k, ms) in [(1, 10), (2, 20), (3, 40)] {
        b.expect_line(&format!(
            r"{LOG}kernel: init killed by signal 6 \(SIGABRT\); restarting \(restart {k} of 3\) in {ms} ms"
        ));
        b.expect_line(&format!(
            r"run {}: LLMOS_RESTARTS={k}, LLMOS_LAST_EXIT=killed by signal 6 \(SIGABRT\)",
            k + 1
        ));
        b.expect_line(&format!("run {}: bound 0.0.0.0:7878", k + 1));
    }
    b.expect_line(&format!(
        r"{LOG}kernel: init killed by signal 6 \(SIGABRT\); restart budget spent \(3 restarts in 600 s\), powering off"
    ));
    // abort() in a second thread (tgkill to that thread) kills the
    // process just the same.
    assert_eq!(
        b.serial.matches("run 4: aborting in a thread").count(),
        1,
        "{}",
        b.serial
    );
    assert!(!b.serial.contains("?!"), "a thread ran on\n{}", b.serial);
    assert!(!b.serial.contains("run 5:"), "{}", b.serial);
    assert!(!b.serial.contains("kernel panic"), "{}", b.serial);
}

#[test]
fn a_normal_exit_with_status_3_powers_off_without_a_restart() {
    let b = boot_case("exit-3", None);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line(&format!(r"{LOG}kernel: init exited with status 3"));
    assert_eq!(
        b.serial.matches("kernel: starting ").count(),
        1,
        "{}",
        b.serial
    );
    assert!(!b.serial.contains("restarting ("), "{}", b.serial);
}
