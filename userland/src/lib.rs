//! Shared helpers for the test programs in `src/bin/`: raw syscalls (for
//! behaviour `std` does not expose) and a deterministic PRNG.
//!
//! These programs are built as static-pie Linux executables by
//! `cargo xtask` and run both on the host and as llmos's init process; the
//! QEMU tests compare the two outputs byte for byte.

use std::arch::asm;

/// A raw Linux syscall with up to six arguments; returns RAX.
pub fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the syscall instruction with the Linux register convention;
    // callers only pass arguments that are valid for the syscall (or
    // deliberately invalid ones the kernel must reject without touching
    // our memory).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

/// xorshift64*: a small deterministic generator for test data.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The value of `field` (e.g. `AnonHugePages`) in /proc/meminfo, in kB.
pub fn meminfo_kb(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// FNV-1a over bytes.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The multi-threaded tokio runtime the network test servers use (two
/// workers, I/O and timers on).
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
