//! The CPU check at start-up: the runtime (and the llama.cpp inside it) is
//! compiled for a fixed set of x86 features (x86-64-v3 by default). On a
//! CPU without one of them the first vector instruction would die with
//! SIGILL; instead the runtime names what is missing and how to rebuild.
//!
//! The check has to run before anything compiled for the baseline: C++
//! static constructors in llama.cpp already use AVX. So it sits in
//! `.preinit_array` (run by the C library before `.init_array`, i.e. before
//! those constructors and before Rust's `main`), and it is written with
//! scalar integer code only, so the compiler has no reason to use vector
//! instructions in it (the QEMU test on a `qemu64` CPU checks that).

use std::io::Write;

/// The features that may be compiled in, by rustc/CPUID name.
pub const FEATURES: [&str; 17] = [
    "sse3",
    "ssse3",
    "sse4.1",
    "sse4.2",
    "popcnt",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "bmi1",
    "bmi2",
    "lzcnt",
    "movbe",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512vnni",
];

/// Whether feature `i` of [`FEATURES`] is compiled in.
#[inline(never)]
fn built(i: usize) -> bool {
    match i {
        0 => cfg!(target_feature = "sse3"),
        1 => cfg!(target_feature = "ssse3"),
        2 => cfg!(target_feature = "sse4.1"),
        3 => cfg!(target_feature = "sse4.2"),
        4 => cfg!(target_feature = "popcnt"),
        5 => cfg!(target_feature = "avx"),
        6 => cfg!(target_feature = "avx2"),
        7 => cfg!(target_feature = "fma"),
        8 => cfg!(target_feature = "f16c"),
        9 => cfg!(target_feature = "bmi1"),
        10 => cfg!(target_feature = "bmi2"),
        11 => cfg!(target_feature = "lzcnt"),
        12 => cfg!(target_feature = "movbe"),
        13 => cfg!(target_feature = "avx512f"),
        14 => cfg!(target_feature = "avx512bw"),
        15 => cfg!(target_feature = "avx512vl"),
        16 => cfg!(target_feature = "avx512vnni"),
        _ => false,
    }
}

/// Whether the CPU has feature `i` of [`FEATURES`], from CPUID itself
/// (`is_x86_feature_detected!` answers "yes" for anything compiled in,
/// which is exactly what must not be trusted here). AVX-family features
/// also need OSXSAVE, i.e. an OS that saves the vector registers.
#[inline(never)]
fn present(i: usize) -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    let max = __cpuid(0).eax;
    let l1 = __cpuid(1);
    let (b7, c7) = if max >= 7 {
        let r = __cpuid_count(7, 0);
        (r.ebx, r.ecx)
    } else {
        (0, 0)
    };
    let ext = if __cpuid(0x8000_0000).eax >= 0x8000_0001 {
        __cpuid(0x8000_0001).ecx
    } else {
        0
    };
    let bit = |r: u32, b: u32| r & (1 << b) != 0;
    let os_avx = bit(l1.ecx, 27);
    match i {
        0 => bit(l1.ecx, 0),
        1 => bit(l1.ecx, 9),
        2 => bit(l1.ecx, 19),
        3 => bit(l1.ecx, 20),
        4 => bit(l1.ecx, 23),
        5 => os_avx && bit(l1.ecx, 28),
        6 => os_avx && bit(b7, 5),
        7 => os_avx && bit(l1.ecx, 12),
        8 => os_avx && bit(l1.ecx, 29),
        9 => bit(b7, 3),
        10 => bit(b7, 8),
        11 => bit(ext, 5),
        12 => bit(l1.ecx, 22),
        13 => os_avx && bit(b7, 16),
        14 => os_avx && bit(b7, 30),
        15 => os_avx && bit(b7, 31),
        16 => os_avx && bit(c7, 11),
        _ => false,
    }
}

/// The features this build needs that the CPU lacks.
pub fn missing() -> Vec<&'static str> {
    (0..FEATURES.len())
        .filter(|&i| built(i) && !present(i))
        .map(|i| FEATURES[i])
        .collect()
}

/// The features this build was compiled for.
pub fn built_for() -> Vec<&'static str> {
    (0..FEATURES.len())
        .filter(|&i| built(i))
        .map(|i| FEATURES[i])
        .collect()
}

/// How to fix it.
const FIX: &str = ".\nRebuild it for this machine with `--cpu native` (for example \
                   `cargo xtask hosted --cpu native`), or for an older baseline with \
                   `--cpu x86-64-v2`.\n";

/// The message for a CPU that lacks `missing`.
pub fn explain(missing: &[&str]) -> String {
    format!(
        "llmos-runtime: this CPU lacks {} which llmos-runtime was built for{FIX}",
        missing.join(", ")
    )
}

/// Checks the CPU before any other code of this program runs; on a CPU
/// that lacks a compiled-in feature, says which and exits with status 3.
/// Scalar code only: no allocation, no formatting.
#[inline(never)]
extern "C" fn check_before_init() {
    let mut first = true;
    let mut err = std::io::stderr();
    for (i, name) in FEATURES.iter().enumerate() {
        if built(i) && !present(i) {
            let _ = err.write_all(if first {
                b"llmos-runtime: this CPU lacks "
            } else {
                b", "
            });
            let _ = err.write_all(name.as_bytes());
            first = false;
        }
    }
    if !first {
        let _ = err.write_all(b" which llmos-runtime was built for");
        let _ = err.write_all(FIX.as_bytes());
        std::process::exit(3);
    }
}

/// Run by the C library before static constructors and `main`.
// SAFETY: `.preinit_array` holds pointers to `extern "C" fn()` that the C
// library calls once, in order, before anything else runs; this is one
// such pointer, to a function that takes no arguments, touches no state
// that needs initialising and either returns or exits.
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".preinit_array")]
static CHECK_BEFORE_INIT: extern "C" fn() = check_before_init;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_agrees_with_std_on_this_machine() {
        let std_says = [
            std::is_x86_feature_detected!("sse3"),
            std::is_x86_feature_detected!("ssse3"),
            std::is_x86_feature_detected!("sse4.1"),
            std::is_x86_feature_detected!("sse4.2"),
            std::is_x86_feature_detected!("popcnt"),
            std::is_x86_feature_detected!("avx"),
            std::is_x86_feature_detected!("avx2"),
            std::is_x86_feature_detected!("fma"),
            std::is_x86_feature_detected!("f16c"),
            std::is_x86_feature_detected!("bmi1"),
            std::is_x86_feature_detected!("bmi2"),
            std::is_x86_feature_detected!("lzcnt"),
            std::is_x86_feature_detected!("movbe"),
            std::is_x86_feature_detected!("avx512f"),
            std::is_x86_feature_detected!("avx512bw"),
            std::is_x86_feature_detected!("avx512vl"),
            std::is_x86_feature_detected!("avx512vnni"),
        ];
        for (i, name) in FEATURES.iter().enumerate() {
            // std trusts compiled-in features; CPUID must agree where
            // std really asked the CPU, and on this machine both are there.
            assert_eq!(present(i), std_says[i], "{name}");
        }
    }

    #[test]
    fn this_machine_runs_this_build() {
        // The test binary is built with the same flags as it runs with.
        assert!(missing().is_empty(), "{}", explain(&missing()));
        assert!(built_for().contains(&"avx2"), "{:?}", built_for());
    }

    #[test]
    fn the_message_names_the_feature_and_the_fix() {
        let m = explain(&["avx2", "fma"]);
        assert!(m.contains("lacks avx2, fma which"), "{m}");
        assert!(m.contains("--cpu native"), "{m}");
    }
}
