//! Linux programs as init: static-pie Rust and C programs run unmodified,
//! print the same bytes as on the host, get their exit status to QEMU,
//! are killed (not the kernel) when they fault (restarts: `restart.rs`),
//! and use the console, time, randomness and memory syscalls. Cases are
//! in `tests/src/cases.rs`.

use llmos_qemu::Outcome;
use llmos_tests::{boot_case, host_run};

/// Boots case `name`, checks it exited 0, and compares its output with the
/// same binary run on the host.
fn matches_host(name: &str) -> llmos_tests::Boot {
    let b = boot_case(name, None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] kernel: init exited with status 0");
    let (host, code) = host_run(name);
    assert_eq!(code, 0, "the host run failed:\n{host}");
    let guest = b.program_output();
    assert!(
        guest == host,
        "output differs from the host run\n--- host ---\n{host}\n--- llmos ---\n{guest}\n--- serial ---\n{}",
        b.serial
    );
    b
}

#[test]
fn rust_hello_prints_args_and_env_like_linux() {
    let b = matches_host("hello");
    assert!(b.program_output().contains("argv[2] = \"b c\""));
    b.expect_line(r"\[\d+\.\d{6}\] process: /bin/hello: static-pie at 0x[0-9a-f]+, entry 0x[0-9a-f]+, \d+ segments \(.*r-x.*\), stack top 0x[0-9a-f]+, brk 0x[0-9a-f]+");
}

#[test]
fn c_hello_built_with_gcc_static_pie_matches_linux() {
    matches_host("hello-c");
}

#[test]
fn heap_heavy_program_verifies_200_mib() {
    let b = matches_host("heap");
    assert!(b.program_output().contains("all contents verified"));
}

#[test]
fn memory_syscall_edge_cases_match_linux() {
    let b = matches_host("memory");
    assert!(b.program_output().contains("all memory checks passed"));
}

#[test]
fn copies_of_huge_lengths_stop_at_the_buffer_like_linux() {
    // An early kernel copied the whole pipe write into one allocation and
    // panicked: "memory allocation of 2147479552 bytes failed".
    let b = matches_host("big-copies");
    let out = b.program_output();
    assert!(
        out.contains("pipe write of 1 GiB from 8 KiB: 8192"),
        "{out}"
    );
    assert!(out.contains("still buffered: 57344"), "{out}");
    assert!(!b.serial.contains("kernel panic"), "{}", b.serial);
}

#[test]
fn unknown_syscalls_return_enosys_and_are_logged_once() {
    let b = matches_host("enosys");
    for nr in [900, 1000, 4095, 65535] {
        let line = format!("syscall: unknown syscall ({nr}) is not implemented, returning ENOSYS");
        assert_eq!(
            b.serial.matches(&line).count(),
            1,
            "{line} should be logged exactly once\n{}",
            b.serial
        );
    }
}

#[test]
fn exit_0_powers_off_with_33() {
    let b = boot_case("exit-0", None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] kernel: init exited with status 0");
}

#[test]
fn exit_3_powers_off_with_35_and_reports_the_status() {
    let b = boot_case("exit-3", None);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line("exiting with status 3");
    b.expect_line(r"\[\d+\.\d{6}\] kernel: init exited with status 3");
    assert!(!b.serial.contains("kernel panic"));
}

#[test]
fn write_to_read_only_page_kills_the_program_not_the_kernel() {
    let b = boot_case("memory-write-ro", None);
    b.expect_outcome(&Outcome::KernelFailure);
    b.expect_line("writing to a read-only page now");
    b.expect_line(
        r"\[\d+\.\d{6}\] kernel: init killed by SIGSEGV \(11\): segmentation fault: write to 0x[0-9a-f]+ \(the area is r--\) at RIP 0x[0-9a-f]+; areas near it:",
    );
    b.expect_line(r"\[\d+\.\d{6}\] kernel:   0x[0-9a-f]+-0x[0-9a-f]+ r-- \[anon\]  <- fault");
    // The case allows no restarts (restarts have their own tests).
    b.expect_line(
        r"\[\d+\.\d{6}\] kernel: init killed by signal 11 \(SIGSEGV\), fault at 0x[0-9a-f]+ \(write, RIP 0x[0-9a-f]+\); restart budget spent \(0 restarts in 600 s\), powering off",
    );
    assert!(!b.serial.contains("the write did not fault"));
    assert!(!b.serial.contains("kernel panic"));
}

#[test]
fn monotonic_time_and_sleep() {
    let b = boot_case("clocks", None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line("monotonic: 100000 reads, 0 went backwards");
    let line = b.expect_line(r"sleep\(100 ms\) took \d+ ms");
    let ms: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .expect("ms");
    assert!((100..=150).contains(&ms), "sleep(100 ms) took {ms} ms");
    b.expect_line(r"wall clock: \d+ s since the epoch \(after 2020\)");
}

#[test]
fn getrandom_differs_between_boots() {
    let first = boot_case("random", None);
    let second = boot_case("random", None);
    let pick = |b: &llmos_tests::Boot| {
        b.expect_outcome(&Outcome::Success);
        b.expect_line("getrandom with unknown flags: EINVAL");
        b.expect_line("random: [0-9a-f]{64}")
    };
    let (a, c) = (pick(&first), pick(&second));
    assert_ne!(a, c, "two boots produced the same random bytes");
    assert_ne!(a, format!("random: {}", "0".repeat(64)));
    // QEMU's `max` CPU has RDRAND (and RDSEED in newer QEMUs): what it
    // has passes the health tests and is mixed in with TSC jitter.
    first.expect_line(r"\[\d+\.\d{6}\] random: ChaCha20 CSPRNG seeded from (rdseed )?rdrand tsc");
    first.expect_line("/proc/llmos/random: hardware: healthy");
    first.expect_line("/proc/llmos/random: sources: (rdseed )?rdrand tsc");
    assert!(!first.serial.contains("health test"), "{}", first.serial);
}

#[test]
fn without_rdrand_or_rdseed_proc_says_hardware_none_and_getrandom_still_works() {
    // qemu64 has neither instruction: the seed is TSC jitter alone, the
    // boot log warns, and /proc/llmos/random says so (the runtime then
    // refuses to generate an API key).
    let mut cfg = llmos_tests::direct("prog/random");
    cfg.cpu = Some("qemu64".into());
    cfg.memory_mib = 512;
    let b = llmos_tests::boot_with(
        "prog-random-qemu64",
        &cfg,
        std::time::Duration::from_secs(120),
    );
    b.expect_outcome(&Outcome::Success);
    b.expect_line(
        r"\[\d+\.\d{6}\] random: WARNING: no healthy hardware random source \(the CPU has neither RDSEED nor RDRAND\); CSPRNG seeded from timing jitter only \(tsc\), not enough for secrets",
    );
    b.expect_line(r"/proc/llmos/random: hardware: none \(the CPU has neither RDSEED nor RDRAND\)");
    b.expect_line("/proc/llmos/random: sources: tsc");
    let bytes = b.expect_line("random: [0-9a-f]{64}");
    assert_ne!(bytes, format!("random: {}", "0".repeat(64)));
    b.expect_line("getrandom with unknown flags: EINVAL");
}

#[test]
fn console_line_editing_and_eof() {
    // "second" with one DEL becomes "secon", then "ND" is typed; Ctrl-D at
    // the start of a line is end of file.
    let b = boot_case("echo-lines", Some(b"first line\rsecond\x7fND\r\x04"));
    b.expect_outcome(&Outcome::Success);
    b.expect_line("got: FIRST LINE");
    b.expect_line("got: SECONND");
    b.expect_line("eof after 2 lines");
}

#[test]
fn ctrl_c_terminates_the_program_with_sigint() {
    let b = boot_case("echo-lines", Some(b"partial\x03"));
    b.expect_outcome(&Outcome::KernelFailure);
    // The case allows no restarts: a killed program powers off.
    b.expect_line(
        r"\[\d+\.\d{6}\] kernel: init killed by signal 2 \(SIGINT\); restart budget spent \(0 restarts in 600 s\), powering off",
    );
}

#[test]
fn strace_logs_decoded_syscalls() {
    let b = boot_case("hello-strace", None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] strace: arch_prctl\(0x1002, 0x[0-9a-f]+\) = 0");
    b.expect_line(r#"\[\d+\.\d{6}\] strace: write\(1, "hello from llmos userland\\n", 26\) = 26"#);
    b.expect_line(r#"\[\d+\.\d{6}\] strace: readlink\("/proc/self/exe", 0x[0-9a-f]+, 4096\) = 10"#);
    b.expect_line(r"\[\d+\.\d{6}\] strace: rseq\(.*\) = -1 ENOSYS \(Function not implemented\)");
}

#[test]
fn registers_survive_syscalls_and_interrupts() {
    let b = matches_host("regs");
    assert!(
        b.program_output()
            .contains("vector registers 8-15 preserved: yes")
    );
    assert!(b.program_output().contains("r12-r15 preserved: yes"));
}

#[test]
fn std_fs_on_the_ram_filesystem() {
    let b = boot_case("files", None);
    b.expect_outcome(&Outcome::Success);
    let src = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../userland/c/hello.c"
    ))
    .unwrap();
    let sum = llmos_tests::fnv1a(&src);
    b.expect_line(&format!(
        "/data/hello.c: {} bytes, fnv1a {sum:016x}",
        src.len()
    ));
    b.expect_line(&format!("metadata: len {} file true dir false", src.len()));
    b.expect_line(r#"a.txt: "hello, world""#);
    b.expect_line(r#"after seeking to 7: "world""#);
    b.expect_line(r#"listing: \["a.txt", "b", "c"\]"#);
    b.expect_line(r"create_dir again: Err\(AlreadyExists\)");
    b.expect_line("remove non-empty dir: true");
    b.expect_line(r#"readlink: "d""#);
    b.expect_line(r#"through the link: "c""#);
    b.expect_line("hard link sees the truncation: 0");
    b.expect_line("mode: 600");
    b.expect_line(r"after cleanup: Err\(NotFound\)");
    b.expect_line(r"/dev/zero: \[0, 0, 0, 0, 0, 0, 0, 0\]");
    b.expect_line("files ok");
    b.expect_line(r"\[\d+\.\d{6}\] fs: root filesystem: \d+ files \(\d+ KiB\) from the initrd, mapped in place \(0 bytes copied\).*");
}

#[test]
fn file_and_descriptor_semantics_match_linux() {
    let b = matches_host("fsio");
    b.expect_line("fsio ok");
}

#[test]
fn large_anonymous_mappings_get_2_mib_pages_and_keep_their_data() {
    let b = boot_case("hugepages", None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line("fresh memory reads zero: true");
    // An 8 MiB mapping covers 3 or 4 whole 2 MiB ranges; every one of them
    // gets a 2 MiB page.
    let line = b.expect_line(r"8 MiB touched: \d+ kB in 2 MiB pages, \d+ kB possible");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 4, "{line}");
    assert!(nums[1] >= 3 * 2048 && nums[1] == nums[3], "{line}");
    let touched_kb = nums[1];
    b.expect_line("data intact: true");
    // One fault per 2 MiB page, plus the 4 KiB pages at the ends (2 MiB in
    // all) and the few that reading /proc/vmstat takes.
    let line =
        b.expect_line(r"page faults: \d+ \(\d+ for 2 MiB pages; 4 KiB pages would take 2048\)");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums[1] * 2048, touched_kb, "{line}");
    assert!(nums[0] <= 512 + nums[1] + 64, "{line}");
    b.expect_line("4 KiB munmap inside a 2 MiB page: 2048 kB fewer, data intact true");
    b.expect_line("mprotect of a whole 2 MiB page: 0 kB fewer, readable true, writable again true");
    b.expect_line("mprotect of 4 KiB of a 2 MiB page: 2048 kB fewer, data intact true");
    b.expect_line(
        "MADV_DONTNEED of 4 KiB of a 2 MiB page: 2048 kB fewer, that page zero and the rest intact true",
    );
    b.expect_line("after mremap: data intact true");
    b.expect_line("a 16 MiB thread stack in use: 0 kB more in 2 MiB pages");
    b.expect_line("after munmap: 0 kB in 2 MiB pages");
    b.expect_line("hugepages ok");
}

#[test]
fn mmap_of_a_64_mib_initrd_file_copies_nothing() {
    let b = boot_case("mmap", None);
    b.expect_outcome(&Outcome::Success);
    let data = llmos_tests::cases::mmap_data();
    let sum = llmos_tests::fnv1a(&data);
    b.expect_line(&format!(
        "/data/big.bin: {} bytes, read\\(2\\) fnv1a {sum:016x}",
        data.len()
    ));
    b.expect_line(&format!("shared mapping fnv1a {sum:016x}"));
    b.expect_line("/proc/self/maps names it: true");
    // 64 MiB of initrd data: at least 31 whole 2 MiB runs whatever the
    // data's physical offset.
    let pmd = b.expect_line(r"2 MiB pages while mapped: \d+ kB");
    let kb: u64 = pmd
        .split(": ")
        .nth(1)
        .and_then(|v| v.trim_end_matches(" kB").parse().ok())
        .expect("a number");
    assert!(kb >= 31 * 2048, "{pmd}");
    b.expect_line("after a 4 KiB munmap inside it: data intact true, 2 MiB pages 2048 kB fewer");
    b.expect_line("after munmap: 2 MiB pages 0 kB");
    b.expect_line("private write: mapping changed true, file unchanged true");
    b.expect_line(r"map a write-only fd: Some\(-13\)");
    b.expect_line(r"shared writable map of a read-only fd: Some\(-13\)");
    b.expect_line("mprotect it writable: -13");
    b.expect_line(r"map a directory: Some\(-19\)");
    b.expect_line(r"unaligned offset: Some\(-22\)");
    b.expect_line(r"bad fd: Some\(-9\)");
    b.expect_line("/dev/zero mapping is zero: true");
    b.expect_line("write through the mapping, read\\(2\\) sees: 42");
    b.expect_line("write\\(2\\), the mapping sees: 77");
    b.expect_line("msync: 0");
    b.expect_line("unlinked while mapped, still usable: true");
    b.expect_line("private map of a RAM file: file keeps 42");
    b.expect_line("mmap ok");
    // The whole file came from the initrd in place.
    b.expect_line(r"\[\d+\.\d{6}\] fs: /data/big.bin mapped \(65536 KiB of 65536 KiB, shared\): pages come from the initrd in place, nothing is copied");
    b.expect_line(r"\[\d+\.\d{6}\] fs: /data/big.bin unmapped: 65536 KiB were mapped in place, 0 bytes copied");
}

#[test]
fn runaway_writer_gets_enospc_at_the_boot_parameter_limit() {
    let b = boot_case("enospc", None);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] fs: root filesystem: .*; 2 MiB for new data");
    b.expect_line(r"wrote 2048 KiB, then StorageFull \(28\)");
    b.expect_line("file length matches what was written: true");
    b.expect_line("contents intact: true");
    b.expect_line(r"a small new file now: StorageFull");
    b.expect_line(r"sparse growth to 1 GiB: Ok\(\(\)\)");
    b.expect_line("after unlinking, the space is back: true");
    b.expect_line("enospc ok");
}
