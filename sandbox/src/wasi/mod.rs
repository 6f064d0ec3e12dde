//! WASI preview1 (`wasi_snapshot_preview1`) for one run: arguments,
//! environment, stdin from a buffer, stdout/stderr captured up to a cap,
//! real clocks and randomness, and files from the run's [`Vfs`]. Sockets
//! are not supported (`NOTSUP`). Every pointer the guest passes is checked
//! against its linear memory (`FAULT`).
//!
//! The host memory a call uses is the run's: data moves between linear
//! memory and the files or the capture without a copy in between, paths
//! longer than [`MAX_PATH`](crate::vfs::MAX_PATH) are refused before they
//! are copied, and a capture's allocation never exceeds its cap.
//!
//! This module holds a run's state ([`Ctx`], its descriptor table) and
//! the public surface; [`add_to_linker`] defines the functions group by
//! group:
//!
//! | file | functions |
//! |---|---|
//! | `memory.rs` | none: the bounds-checked guest-memory access every group uses |
//! | `args.rs` | `args_*`, `environ_*` |
//! | `clock.rs` | `clock_*`, `random_get` |
//! | `fd.rs` | `fd_*` |
//! | `path.rs` | `path_*` |
//! | `poll.rs` | `poll_oneoff` |
//! | `proc.rs` | `proc_exit`, `proc_raise`, `sched_yield` |
//! | `sock.rs` | `sock_*` (all refused) |

mod args;
mod clock;
mod fd;
mod memory;
mod path;
mod poll;
mod proc;
mod sock;

use std::time::Instant;

use wasmi::errors::LinkerError;
use wasmi::{Caller, Linker};

use crate::Limit;
use crate::errno::{self, Errno};
use crate::vfs::{Ino, Vfs};

pub use clock::now_ns;

/// The import module name.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// Captured output with a cap.
#[derive(Debug, Default, Clone)]
pub struct Capture {
    /// What was written (up to the cap).
    pub data: Vec<u8>,
    /// The cap in bytes.
    pub cap: usize,
    /// More was written than kept.
    pub truncated: bool,
}

/// What a descriptor refers to.
#[derive(Debug, Clone)]
enum Fd {
    Stdin,
    Stdout,
    Stderr,
    Dir {
        ino: Ino,
        root: Ino,
        preopen: Option<String>,
    },
    File {
        ino: Ino,
        pos: u64,
        append: bool,
        read: bool,
        write: bool,
    },
}

/// Why a run was stopped from inside a host function.
#[derive(Debug, Clone, Copy)]
pub struct Stop(pub Limit);

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} limit reached", self.0.as_str())
    }
}

impl wasmi::errors::HostError for Stop {}

/// The state of one run.
pub struct Ctx {
    /// Its files.
    pub vfs: Vfs,
    fds: Vec<Option<Fd>>,
    max_fds: usize,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    stdin: Vec<u8>,
    stdin_pos: usize,
    /// Standard output.
    pub stdout: Capture,
    /// Standard error.
    pub stderr: Capture,
    /// Memory and table caps.
    pub limits: crate::Limiter,
    /// When the run must end.
    pub deadline: Instant,
    started: Instant,
}

impl Ctx {
    /// A run's state: `preopens` are (guest path, root node) in fd order
    /// from 3.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vfs: Vfs,
        preopens: Vec<(String, Ino)>,
        args: &[String],
        env: &[(String, String)],
        stdin: Vec<u8>,
        output_cap: usize,
        max_fds: usize,
        limits: crate::Limiter,
        deadline: Instant,
    ) -> Self {
        let mut fds = vec![Some(Fd::Stdin), Some(Fd::Stdout), Some(Fd::Stderr)];
        for (path, ino) in preopens {
            fds.push(Some(Fd::Dir {
                ino,
                root: ino,
                preopen: Some(path),
            }));
        }
        Self {
            vfs,
            fds,
            max_fds,
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            env: env
                .iter()
                .map(|(k, v)| format!("{k}={v}").into_bytes())
                .collect(),
            stdin,
            stdin_pos: 0,
            stdout: Capture {
                cap: output_cap,
                ..Capture::default()
            },
            stderr: Capture {
                cap: output_cap,
                ..Capture::default()
            },
            limits,
            deadline,
            started: Instant::now(),
        }
    }

    fn fd(&self, fd: i32) -> Result<&Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(Option::as_ref)
            .ok_or(errno::BADF)
    }

    fn fd_mut(&mut self, fd: i32) -> Result<&mut Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(errno::BADF)
    }

    fn dir(&self, fd: i32) -> Result<(Ino, Ino), Errno> {
        match self.fd(fd)? {
            Fd::Dir { ino, root, .. } => Ok((*ino, *root)),
            _ => Err(errno::NOTDIR),
        }
    }

    fn add_fd(&mut self, f: Fd) -> Result<u32, Errno> {
        let open = self.fds.iter().filter(|f| f.is_some()).count();
        if open >= self.max_fds {
            return Err(errno::MFILE);
        }
        if let Some(i) = self.fds.iter().position(Option::is_none) {
            self.fds[i] = Some(f);
            return Ok(i as u32);
        }
        self.fds.push(Some(f));
        Ok((self.fds.len() - 1) as u32)
    }

    fn now(&self) -> u64 {
        now_ns()
    }
}

/// The names of every preview1 function, for grants.
pub const FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The caller every host function gets.
type C<'a> = Caller<'a, Ctx>;

/// Defines every preview1 function in `linker`.
pub fn add_to_linker(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    args::add(l)?;
    clock::add(l)?;
    fd::add(l)?;
    path::add(l)?;
    poll::add(l)?;
    proc::add(l)?;
    sock::add(l)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wasmi::{Engine, Module, Store};

    use super::*;

    /// Every preview1 function with its signature: (name, params, results).
    const SIGNATURES: &[(&str, &str, &str)] = &[
        ("args_get", "i32 i32", "i32"),
        ("args_sizes_get", "i32 i32", "i32"),
        ("environ_get", "i32 i32", "i32"),
        ("environ_sizes_get", "i32 i32", "i32"),
        ("clock_res_get", "i32 i32", "i32"),
        ("clock_time_get", "i32 i64 i32", "i32"),
        ("fd_advise", "i32 i64 i64 i32", "i32"),
        ("fd_allocate", "i32 i64 i64", "i32"),
        ("fd_close", "i32", "i32"),
        ("fd_datasync", "i32", "i32"),
        ("fd_fdstat_get", "i32 i32", "i32"),
        ("fd_fdstat_set_flags", "i32 i32", "i32"),
        ("fd_fdstat_set_rights", "i32 i64 i64", "i32"),
        ("fd_filestat_get", "i32 i32", "i32"),
        ("fd_filestat_set_size", "i32 i64", "i32"),
        ("fd_filestat_set_times", "i32 i64 i64 i32", "i32"),
        ("fd_pread", "i32 i32 i32 i64 i32", "i32"),
        ("fd_prestat_get", "i32 i32", "i32"),
        ("fd_prestat_dir_name", "i32 i32 i32", "i32"),
        ("fd_pwrite", "i32 i32 i32 i64 i32", "i32"),
        ("fd_read", "i32 i32 i32 i32", "i32"),
        ("fd_readdir", "i32 i32 i32 i64 i32", "i32"),
        ("fd_renumber", "i32 i32", "i32"),
        ("fd_seek", "i32 i64 i32 i32", "i32"),
        ("fd_sync", "i32", "i32"),
        ("fd_tell", "i32 i32", "i32"),
        ("fd_write", "i32 i32 i32 i32", "i32"),
        ("path_create_directory", "i32 i32 i32", "i32"),
        ("path_filestat_get", "i32 i32 i32 i32 i32", "i32"),
        (
            "path_filestat_set_times",
            "i32 i32 i32 i32 i64 i64 i32",
            "i32",
        ),
        ("path_link", "i32 i32 i32 i32 i32 i32 i32", "i32"),
        ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32", "i32"),
        ("path_readlink", "i32 i32 i32 i32 i32 i32", "i32"),
        ("path_remove_directory", "i32 i32 i32", "i32"),
        ("path_rename", "i32 i32 i32 i32 i32 i32", "i32"),
        ("path_symlink", "i32 i32 i32 i32 i32", "i32"),
        ("path_unlink_file", "i32 i32 i32", "i32"),
        ("poll_oneoff", "i32 i32 i32 i32", "i32"),
        ("proc_exit", "i32", ""),
        ("proc_raise", "i32", "i32"),
        ("sched_yield", "", "i32"),
        ("random_get", "i32 i32", "i32"),
        ("sock_accept", "i32 i32 i32", "i32"),
        ("sock_recv", "i32 i32 i32 i32 i32 i32", "i32"),
        ("sock_send", "i32 i32 i32 i32 i32", "i32"),
        ("sock_shutdown", "i32 i32", "i32"),
    ];

    #[test]
    fn every_function_is_defined_with_its_preview1_signature() {
        let mut names: Vec<_> = SIGNATURES.iter().map(|s| s.0).collect();
        let mut listed = FUNCTIONS.to_vec();
        names.sort_unstable();
        listed.sort_unstable();
        assert_eq!(names, listed, "FUNCTIONS and the signatures differ");

        let imports: String = SIGNATURES
            .iter()
            .map(|(name, params, results)| {
                format!(
                    "(import \"{MODULE}\" \"{name}\" (func (param {params}) (result {results})))\n"
                )
            })
            .collect();
        let wasm = wat::parse_str(format!("(module {imports})")).unwrap();
        let engine = Engine::default();
        let module = Module::new(&engine, &wasm[..]).unwrap();
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).unwrap();
        let ctx = Ctx::new(
            Vfs::new(0),
            Vec::new(),
            &[],
            &[],
            Vec::new(),
            0,
            3,
            crate::Limiter::new(0, 0),
            Instant::now() + Duration::from_secs(1),
        );
        let mut store = Store::new(&engine, ctx);
        // Instantiation fails on an import that is missing or mistyped.
        linker.instantiate_and_start(&mut store, &module).unwrap();
    }
}
