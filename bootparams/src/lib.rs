//! The boot-parameter file.
//!
//! `cargo xtask image` writes one [`BootParams`] into the initrd at
//! [`PATH`]; the kernel reads it at boot to learn which program to start
//! (path, arguments, environment) and how (syscall tracing, test hooks).
//! The encoding is postcard behind a magic and a format version, so a
//! kernel never misreads a file written for another layout: it rejects it
//! with [`Error::Version`].
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

/// Where the file lives in the initrd.
pub const PATH: &str = "boot/params";

/// Leading bytes of the file.
pub const MAGIC: [u8; 8] = *b"LLMOSBP\0";

/// The layout version this crate reads and writes.
pub const VERSION: u32 = 4;

/// Largest file the kernel accepts.
pub const MAX_SIZE: usize = 64 * 1024;

/// The program the kernel starts first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Init {
    /// Absolute path in the root filesystem, e.g. `/bin/hello`.
    pub path: String,
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    /// Environment as `KEY=value` strings.
    pub env: Vec<String>,
}

/// The environment `cargo xtask` gives every init program.
pub fn default_env() -> Vec<String> {
    ["PATH=/bin", "HOME=/", "TERM=xterm-256color"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// Everything the kernel is told at boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootParams {
    /// The first process; `None` boots to `kernel: ready` and powers off.
    pub init: Option<Init>,
    /// Log every syscall with decoded arguments and result (strace-like).
    pub trace_syscalls: bool,
    /// A test-hooks scenario (only honoured by kernels built with the
    /// `test-hooks` feature).
    pub test_hook: Option<String>,
    /// How much file data (MiB) programs may write to the RAM filesystem
    /// before ENOSPC; `None`: a quarter of the memory free at boot (see
    /// docs/filesystem.md). Initrd files do not count.
    pub fs_capacity_mib: Option<u64>,
    /// A static IPv4 configuration instead of DHCP.
    pub net: Option<StaticNet>,
    /// How a first process killed by a signal is restarted; `None`: the
    /// kernel's default (5 restarts in any 10 minutes, 100 ms back-off
    /// doubling up to 5 s).
    pub restart: Option<Restart>,
}

/// The restart budget of the first process (see the kernel's
/// `supervisor` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    /// Restarts allowed in any window; 0 powers off at the first death.
    pub max_restarts: u32,
    /// The window, in seconds.
    pub window_secs: u32,
    /// Delay before the first restart in a window, in milliseconds; it
    /// doubles for each further restart in the window.
    pub backoff_ms: u32,
    /// Longest delay, in milliseconds.
    pub max_backoff_ms: u32,
}

impl Restart {
    /// The kernel's default budget.
    pub const DEFAULT: Restart = Restart {
        max_restarts: 5,
        window_secs: 600,
        backoff_ms: 100,
        max_backoff_ms: 5000,
    };
}

/// A static IPv4 configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticNet {
    /// The interface's address.
    pub address: [u8; 4],
    /// Prefix length (0–32).
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Option<[u8; 4]>,
    /// DNS servers (written to /etc/resolv.conf).
    pub dns: Vec<[u8; 4]>,
}

/// Decoding errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Larger than [`MAX_SIZE`].
    TooLarge(usize),
    /// The magic is missing: not a boot-parameter file.
    BadMagic,
    /// Written for another layout version.
    Version {
        /// Version in the file.
        found: u32,
    },
    /// The postcard body is malformed.
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge(n) => write!(f, "boot parameters are {n} bytes, more than {MAX_SIZE}"),
            Error::BadMagic => f.write_str("not a boot-parameter file (bad magic)"),
            Error::Version { found } => write!(
                f,
                "boot parameters have layout version {found}, this kernel reads {VERSION}; rebuild the image with the matching xtask"
            ),
            Error::Malformed => f.write_str("boot parameters are malformed"),
        }
    }
}

impl BootParams {
    /// Encodes with magic and version.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::from(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        // Serialising plain owned data into a Vec cannot fail.
        let body = postcard::to_allocvec(self).unwrap_or_default();
        out.extend_from_slice(&body);
        out
    }

    /// Decodes and validates.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_SIZE {
            return Err(Error::TooLarge(bytes.len()));
        }
        let rest = bytes.strip_prefix(&MAGIC).ok_or(Error::BadMagic)?;
        let (version, body) = rest.split_at_checked(4).ok_or(Error::Malformed)?;
        let found = u32::from_le_bytes([version[0], version[1], version[2], version[3]]);
        if found != VERSION {
            return Err(Error::Version { found });
        }
        match postcard::take_from_bytes::<BootParams>(body) {
            Ok((p, [])) => Ok(p),
            _ => Err(Error::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> BootParams {
        BootParams {
            init: Some(Init {
                path: "/bin/hello".into(),
                args: vec!["hello".into(), "a b".into()],
                env: vec!["PATH=/bin".into(), "HOME=/".into()],
            }),
            trace_syscalls: true,
            test_hook: None,
            fs_capacity_mib: Some(64),
            net: Some(StaticNet {
                address: [10, 0, 2, 15],
                prefix: 24,
                gateway: Some([10, 0, 2, 2]),
                dns: vec![[10, 0, 2, 3]],
            }),
            restart: Some(Restart {
                max_restarts: 3,
                ..Restart::DEFAULT
            }),
        }
    }

    #[test]
    fn roundtrip() {
        let p = sample();
        assert_eq!(BootParams::decode(&p.encode()), Ok(p));
        let d = BootParams::default();
        assert_eq!(BootParams::decode(&d.encode()), Ok(d));
    }

    #[test]
    fn rejects_foreign_and_corrupt_input() {
        let good = sample().encode();
        assert_eq!(BootParams::decode(b"hello"), Err(Error::BadMagic));
        let mut other = good.clone();
        other[8] = (VERSION + 1) as u8;
        assert_eq!(
            BootParams::decode(&other),
            Err(Error::Version { found: VERSION + 1 })
        );
        assert_eq!(
            BootParams::decode(&good[..good.len() - 1]),
            Err(Error::Malformed)
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(BootParams::decode(&trailing), Err(Error::Malformed));
        assert_eq!(BootParams::decode(&good[..10]), Err(Error::Malformed));
        assert_eq!(
            BootParams::decode(&vec![0; MAX_SIZE + 1]),
            Err(Error::TooLarge(MAX_SIZE + 1))
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut b = Vec::from(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        for i in 0..=255u8 {
            let mut x = b.clone();
            x.extend(core::iter::repeat_n(i, (i % 17) as usize));
            let _ = BootParams::decode(&x);
        }
    }
}
