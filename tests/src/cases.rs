//! The programs the QEMU tests run as init, in one table shared by `xtask`
//! (which builds an image per case) and the tests (which boot them and,
//! for deterministic programs, run the same binary on the host to compare
//! output byte for byte).

use std::path::{Path, PathBuf};

/// How a test program is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// A binary of the `userland` crate (Rust std, `+crt-static`).
    Rust,
    /// `userland/c/<name>.c` built with `gcc -static-pie`.
    C,
    /// The LLM runtime, `llmos-runtime` (inference/, built by xtask for
    /// the default CPU baseline).
    Runtime,
}

/// One test program run.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Initrd name: `target/images/prog/<name>.cpio` (booted directly with
    /// the normal kernel).
    pub name: &'static str,
    /// The program (binary name).
    pub program: &'static str,
    /// How it is built.
    pub lang: Lang,
    /// Arguments after argv[0].
    pub args: &'static [&'static str],
    /// Turn on syscall tracing.
    pub strace: bool,
    /// Extra files: (source relative to the workspace root, destination);
    /// `$IMAGES/`, `$MODELS/`, `$LANG/` and `$APPS/` start paths in the
    /// images directory, `target/models/`, `target/lang/` and
    /// `target/apps/`.
    pub add: &'static [(&'static str, &'static str)],
    /// The `fs_capacity_mib` boot parameter.
    pub fs_capacity_mib: Option<u64>,
    /// A static network configuration, `ADDRESS/PREFIX,GATEWAY[,DNS…]`.
    pub net: Option<&'static str>,
    /// The restart budget (`None`: the kernel's default).
    pub restart: Option<bootparams::Restart>,
    /// Boot the test-hooks kernel (`kernel-test-hooks.elf`) with this
    /// scenario named in the boot parameters, instead of the normal kernel.
    pub test_hook: Option<&'static str>,
}

/// A budget of no restarts: a program killed by a signal powers the
/// machine off at once (the cases whose tests look at one death).
pub const NO_RESTARTS: Option<bootparams::Restart> = Some(bootparams::Restart {
    max_restarts: 0,
    ..bootparams::Restart::DEFAULT
});

/// The port the restart cases bind.
pub const RESTART_PORT: &str = "7878";

const fn case(
    name: &'static str,
    program: &'static str,
    lang: Lang,
    args: &'static [&'static str],
) -> Case {
    Case {
        name,
        program,
        lang,
        args,
        strace: false,
        add: &[],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    }
}

/// Every case.
pub const CASES: &[Case] = &[
    case("hello", "hello", Lang::Rust, &["a", "b c"]),
    case("hello-c", "hello-c", Lang::C, &["x", "y z"]),
    case("exit-0", "exit-with", Lang::Rust, &["0"]),
    case("exit-3", "exit-with", Lang::Rust, &["3"]),
    case("heap", "heap", Lang::Rust, &[]),
    case("memory", "memory", Lang::Rust, &[]),
    Case {
        restart: NO_RESTARTS,
        ..case("memory-write-ro", "memory", Lang::Rust, &["write-ro"])
    },
    case("clocks", "clocks", Lang::Rust, &[]),
    case("random", "random", Lang::Rust, &[]),
    case("enosys", "enosys", Lang::Rust, &[]),
    Case {
        restart: NO_RESTARTS,
        ..case("echo-lines", "echo-lines", Lang::Rust, &[])
    },
    case("regs", "regs", Lang::Rust, &[]),
    case("threads", "threads", Lang::Rust, &[]),
    case("join-storm", "join-storm", Lang::Rust, &[]),
    case("vectors", "vectors", Lang::Rust, &[]),
    case("futex-timeout", "futex-timeout", Lang::Rust, &[]),
    case("exit-group", "exit-group", Lang::Rust, &[]),
    case("cpus", "cpus", Lang::Rust, &[]),
    Case {
        restart: NO_RESTARTS,
        ..case("shootdown", "shootdown", Lang::Rust, &[])
    },
    case("restart", "restart", Lang::Rust, &[RESTART_PORT]),
    Case {
        restart: Some(bootparams::Restart {
            max_restarts: 3,
            window_secs: 600,
            backoff_ms: 10,
            max_backoff_ms: 1000,
        }),
        ..case(
            "restart-always",
            "restart",
            Lang::Rust,
            &[RESTART_PORT, "always"],
        )
    },
    case("affinity", "affinity", Lang::Rust, &[]),
    case("ticks", "ticks", Lang::Rust, &[]),
    case("spread", "spread", Lang::Rust, &[]),
    case("hugepages", "hugepages", Lang::Rust, &[]),
    case("syscall-fuzz", "syscall-fuzz", Lang::Rust, &[]),
    case("big-copies", "big-copies", Lang::Rust, &[]),
    // Its last step dies of a page fault with no memory left: no
    // restarts, so the test sees that one death.
    Case {
        restart: NO_RESTARTS,
        ..case("oom", "oom", Lang::Rust, &[])
    },
    case("affinity-move", "affinity-move", Lang::Rust, &[]),
    Case {
        name: "ac-flag",
        program: "ac-flag",
        lang: Lang::Rust,
        args: &[],
        strace: false,
        add: &[],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: Some("ac-leak"),
    },
    Case {
        name: "hello-strace",
        program: "hello",
        lang: Lang::Rust,
        args: &[],
        strace: true,
        add: &[],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    },
    Case {
        name: "files",
        program: "files",
        lang: Lang::Rust,
        args: &[],
        strace: false,
        add: &[("userland/c/hello.c", "/data/hello.c")],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    },
    case("fsio", "fsio", Lang::Rust, &[]),
    Case {
        name: "enospc",
        program: "enospc",
        lang: Lang::Rust,
        args: &[],
        strace: false,
        add: &[],
        fs_capacity_mib: Some(2),
        net: None,
        restart: None,
        test_hook: None,
    },
    Case {
        name: "tcp-echo",
        program: "tcp-echo",
        lang: Lang::Rust,
        args: &["7777", "8"],
        strace: false,
        add: &[],
        fs_capacity_mib: None,
        net: Some("10.0.2.15/24,10.0.2.2,10.0.2.3"),
        restart: None,
        test_hook: None,
    },
    Case {
        name: "tokio-http",
        program: "tokio-http",
        lang: Lang::Rust,
        args: &["8080", "66"],
        strace: false,
        add: &[],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    },
    Case {
        name: "net-stress",
        program: "net-stress",
        lang: Lang::Rust,
        args: &["8080"],
        strace: false,
        add: &[],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    },
    Case {
        name: "dns-check",
        program: "dns-check",
        lang: Lang::Rust,
        args: &["host.llmos.test", "missing.llmos.test", "api.llmos.test"],
        strace: false,
        add: &[],
        fs_capacity_mib: None,
        // The program's own DNS server (on 127.0.0.1) is the resolver.
        net: Some("10.0.2.15/24,10.0.2.2,127.0.0.1"),
        restart: None,
        test_hook: None,
    },
    Case {
        name: "runtime-tiny",
        program: "llmos-runtime",
        lang: Lang::Runtime,
        args: &[
            "generate",
            "--model",
            "/models/llmos-tiny.gguf",
            "--max-tokens",
            "32",
            "--print-tokens",
            PARITY_PROMPT,
        ],
        strace: false,
        add: &[("$MODELS/llmos-tiny.gguf", "/models/llmos-tiny.gguf")],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    },
    Case {
        name: "runtime-serve",
        program: "llmos-runtime",
        lang: Lang::Runtime,
        args: &[
            "serve",
            "--model",
            "/models/llmos-tiny.gguf",
            "--max-tokens",
            "6",
            "--ctx",
            "256",
            "--listen",
            "0.0.0.0:8080",
            "--lang-dir",
            "/apps/lang",
            // CPython starts in about 5 s under TCG (8 s the first time).
            "--exec-timeout-ms",
            "60000",
            "--apps-dir",
            "/apps",
            "--app-data",
            "/var/lib/llmos/apps",
        ],
        strace: false,
        add: &[
            ("$MODELS/llmos-tiny.gguf", "/models/llmos-tiny.gguf"),
            ("$LANG/quickjs.wasm", "/apps/lang/quickjs.wasm"),
            ("$LANG/python-3.12.0.wasm", "/apps/lang/python-3.12.0.wasm"),
            ("$APPS/text/manifest.toml", "/apps/text/manifest.toml"),
            ("$APPS/text/text.wasm", "/apps/text/text.wasm"),
            ("$APPS/files/manifest.toml", "/apps/files/manifest.toml"),
            ("$APPS/files/files.wasm", "/apps/files/files.wasm"),
        ],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    },
    Case {
        name: "http-get",
        program: "http-get",
        lang: Lang::Rust,
        args: &["10.0.2.100:80", "/blob"],
        strace: false,
        add: &[],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    },
    Case {
        name: "mmap",
        program: "mmap",
        lang: Lang::Rust,
        args: &["/data/big.bin"],
        strace: false,
        add: &[(MMAP_DATA, "/data/big.bin")],
        fs_capacity_mib: None,
        net: None,
        restart: None,
        test_hook: None,
    },
];

/// The prompt of the hosted/unikernel parity test.
pub const PARITY_PROMPT: &str = "The quick brown fox jumps over the lazy dog. Once upon a time";

/// A generated file (see [`mmap_data`]), written next to the images;
/// sources starting with `$IMAGES/` are relative to the images directory.
pub const MMAP_DATA: &str = "$IMAGES/mmap-64m.bin";

/// Size of the mmap test's file.
pub const MMAP_DATA_LEN: usize = 64 << 20;

/// The mmap test's file: 64 MiB of deterministic pseudo-random bytes
/// (xorshift64*).
pub fn mmap_data() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(MMAP_DATA_LEN);
    while out.len() < MMAP_DATA_LEN {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out
}

/// Rust test programs.
pub const RUST_PROGRAMS: &[&str] = &[
    "hello",
    "exit-with",
    "heap",
    "memory",
    "clocks",
    "random",
    "enosys",
    "echo-lines",
    "regs",
    "threads",
    "join-storm",
    "vectors",
    "futex-timeout",
    "exit-group",
    "cpus",
    "shootdown",
    "restart",
    "affinity",
    "ticks",
    "spread",
    "hugepages",
    "files",
    "fsio",
    "mmap",
    "enospc",
    "tcp-echo",
    "tokio-http",
    "net-stress",
    "dns-check",
    "http-get",
    "syscall-fuzz",
    "big-copies",
    "oom",
    "ac-flag",
    "affinity-move",
];
/// C test programs (`userland/c/<name minus -c>.c`).
pub const C_PROGRAMS: &[&str] = &["hello-c"];

/// Where the built programs are: `<target>/userland/bin`.
pub fn userland_bin_dir(target: &Path) -> PathBuf {
    target.join("userland").join("bin")
}

/// The case called `name`.
pub fn find(name: &str) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no test case {name:?} in tests/src/cases.rs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_programs_known() {
        for (i, c) in CASES.iter().enumerate() {
            assert!(
                CASES[i + 1..].iter().all(|d| d.name != c.name),
                "{} twice",
                c.name
            );
            let list = match c.lang {
                Lang::Rust => RUST_PROGRAMS,
                Lang::C => C_PROGRAMS,
                Lang::Runtime => &["llmos-runtime"],
            };
            assert!(list.contains(&c.program), "{} is not built", c.program);
        }
    }
}
