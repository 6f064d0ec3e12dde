//! The CPU check at start-up: the runtime (and the llama.cpp inside it) is
//! compiled for a fixed set of x86 features (x86-64-v3 by default). On a
//! CPU without one of them the first vector instruction would die with
//! SIGILL; instead the runtime names what is missing and how to rebuild.

/// Features the build relies on, as (rustc/CPUID name, compiled in, present).
pub fn features() -> Vec<(&'static str, bool, bool)> {
    macro_rules! f {
        ($($name:tt),*) => {
            vec![$(($name, cfg!(target_feature = $name), std::is_x86_feature_detected!($name))),*]
        };
    }
    f!(
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
        "avx512vnni"
    )
}

/// The features this build needs that the CPU lacks.
pub fn missing() -> Vec<&'static str> {
    features()
        .into_iter()
        .filter(|(_, built, present)| *built && !*present)
        .map(|(n, _, _)| n)
        .collect()
}

/// The features this build was compiled for.
pub fn built_for() -> Vec<&'static str> {
    features()
        .into_iter()
        .filter(|(_, built, _)| *built)
        .map(|(n, _, _)| n)
        .collect()
}

/// The message for a CPU that lacks `missing`.
pub fn explain(missing: &[&str]) -> String {
    format!(
        "this CPU lacks {} which llmos-runtime was built for ({}).\n\
         Rebuild for this machine with `cargo xtask image --cpu native` (or \
         `cargo xtask hosted --cpu native`), or for an older baseline with \
         `--cpu x86-64-v2`.",
        missing.join(", "),
        built_for().join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_runs_this_build() {
        // The test binary is built with the same flags as it runs with.
        assert!(missing().is_empty(), "{}", explain(&missing()));
    }

    #[test]
    fn the_message_names_the_feature_and_the_fix() {
        let m = explain(&["avx2", "fma"]);
        assert!(m.contains("lacks avx2, fma"), "{m}");
        assert!(m.contains("--cpu native"), "{m}");
    }
}
