//! WASI preview1 (`wasi_snapshot_preview1`) for one run: arguments,
//! environment, stdin from a buffer, stdout/stderr captured up to a cap,
//! real clocks and randomness, and files from the run's [`Vfs`]. Sockets
//! are not supported (`NOTSUP`). Every pointer the guest passes is checked
//! against its linear memory (`FAULT`).
//!
//! The host memory a call uses is the run's: data moves between linear
//! memory and the files or the capture without a copy in between, paths
//! longer than [`MAX_PATH`] are refused before they are copied, and a
//! capture's allocation never exceeds its cap.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmi::{Caller, Error, Extern, Linker};

use crate::Limit;
use crate::errno::{self, Errno};
use crate::vfs::{Ino, MAX_PATH, Node, Vfs};

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

/// The real time in nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Linear memory with checked access.
struct Mem<'a>(&'a mut [u8]);

impl Mem<'_> {
    fn slice(&self, ptr: i32, len: u32) -> Result<&[u8], Errno> {
        let start = ptr as u32 as usize;
        self.0
            .get(start..start.checked_add(len as usize).ok_or(errno::FAULT)?)
            .ok_or(errno::FAULT)
    }

    fn slice_mut(&mut self, ptr: i32, len: u32) -> Result<&mut [u8], Errno> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len as usize).ok_or(errno::FAULT)?;
        self.0.get_mut(start..end).ok_or(errno::FAULT)
    }

    fn u32(&self, ptr: i32) -> Result<u32, Errno> {
        let b = self.slice(ptr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn put(&mut self, ptr: i32, data: &[u8]) -> Result<(), Errno> {
        self.slice_mut(ptr, data.len() as u32)?
            .copy_from_slice(data);
        Ok(())
    }

    fn put_u32(&mut self, ptr: i32, v: u32) -> Result<(), Errno> {
        self.put(ptr, &v.to_le_bytes())
    }

    fn put_u64(&mut self, ptr: i32, v: u64) -> Result<(), Errno> {
        self.put(ptr, &v.to_le_bytes())
    }

    /// A path (at most [`MAX_PATH`] bytes).
    fn str(&self, ptr: i32, len: i32) -> Result<String, Errno> {
        if len as u32 as usize > MAX_PATH {
            return Err(errno::NAMETOOLONG);
        }
        let b = self.slice(ptr, len as u32)?;
        String::from_utf8(b.to_vec()).map_err(|_| errno::INVAL)
    }

    /// The (pointer, length) pairs of an iovec array.
    fn iovs(&self, iovs: i32, n: i32) -> Result<Vec<(i32, u32)>, Errno> {
        if !(0..=1024).contains(&n) {
            return Err(errno::INVAL);
        }
        (0..n)
            .map(|i| {
                let at = (iovs as u32)
                    .checked_add(8 * i as u32)
                    .ok_or(errno::FAULT)? as i32;
                Ok((self.u32(at)? as i32, self.u32(at + 4)?))
            })
            .collect()
    }
}

/// The most bytes one read or write call moves (a longer request is
/// answered short, which callers handle by looping).
const MAX_IO: u32 = 16 << 20;

/// The result of a host function body: an errno, or a stop.
type Ret = Result<Errno, Error>;

/// Runs `f` with the guest's memory and the run's state.
fn with(
    caller: &mut Caller<'_, Ctx>,
    f: impl FnOnce(&mut Mem<'_>, &mut Ctx) -> Ret,
) -> Result<i32, Error> {
    // Host calls use almost no fuel; the deadline is checked here too.
    if Instant::now() >= caller.data().deadline {
        return Err(Error::host(Stop(Limit::WallClock)));
    }
    let mem = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| Error::new("the module exports no memory named \"memory\""))?;
    let (data, ctx) = mem.data_and_store_mut(caller);
    f(&mut Mem(data), ctx).map(i32::from)
}

fn ok(r: Result<(), Errno>) -> Ret {
    Ok(r.err().unwrap_or(errno::SUCCESS))
}

const FILETYPE_CHAR: u8 = 2;
const FILETYPE_DIR: u8 = 3;
const FILETYPE_FILE: u8 = 4;
const RIGHTS_ALL: u64 = (1 << 30) - 1;
const FD_READ: u64 = 1 << 1;
const FD_WRITE: u64 = 1 << 6;

fn filetype(vfs: &Vfs, ino: Ino) -> u8 {
    match vfs.node(ino) {
        Ok(Node::Dir(_)) => FILETYPE_DIR,
        _ => FILETYPE_FILE,
    }
}

fn filestat(vfs: &Vfs, ino: Ino) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[8..16].copy_from_slice(&(ino as u64).to_le_bytes());
    b[16] = filetype(vfs, ino);
    b[24..32].copy_from_slice(&1u64.to_le_bytes());
    b[32..40].copy_from_slice(&vfs.size(ino).to_le_bytes());
    let t = vfs.mtime(ino).to_le_bytes();
    b[40..48].copy_from_slice(&t);
    b[48..56].copy_from_slice(&t);
    b[56..64].copy_from_slice(&t);
    b
}

fn capture(c: &mut Capture, data: &[u8]) -> Result<(), Error> {
    let room = c.cap.saturating_sub(c.data.len());
    let keep = &data[..data.len().min(room)];
    // Doubling as a Vec does, but never past the cap.
    let need = c.data.len() + keep.len();
    if need > c.data.capacity() {
        let target = need.max(c.data.capacity().saturating_mul(2)).min(c.cap);
        c.data.reserve_exact(target - c.data.len());
    }
    c.data.extend_from_slice(keep);
    if data.len() > room {
        c.truncated = true;
        return Err(Error::host(Stop(Limit::Output)));
    }
    Ok(())
}

impl Ctx {
    fn write(
        &mut self,
        m: &mut Mem<'_>,
        fd: i32,
        iovs: i32,
        n: i32,
        at: Option<u64>,
    ) -> Result<Result<u32, Errno>, Error> {
        let iovs = match m.iovs(iovs, n) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let mut total = 0u32;
        let now = self.now();
        for (p, len) in iovs {
            if total >= MAX_IO {
                // A short write, as POSIX allows: the caller loops.
                break;
            }
            let len = len.min(MAX_IO - total);
            let data = match m.slice(p, len) {
                Ok(d) => d,
                Err(e) => return Ok(Err(e)),
            };
            match self.fd_mut(fd) {
                Ok(Fd::Stdout) if at.is_none() => capture(&mut self.stdout, data)?,
                Ok(Fd::Stderr) if at.is_none() => capture(&mut self.stderr, data)?,
                Ok(Fd::Stdout | Fd::Stderr) => return Ok(Err(errno::SPIPE)),
                Ok(Fd::File {
                    ino,
                    pos,
                    append,
                    write: true,
                    ..
                }) => {
                    let (ino, append, cur) = (*ino, *append, *pos);
                    let off = match at {
                        // Each buffer follows the previous one.
                        Some(o) => match o.checked_add(u64::from(total)) {
                            Some(o) => o,
                            None => return Ok(Err(errno::FBIG)),
                        },
                        None if append => self.vfs.size(ino),
                        None => cur,
                    };
                    if let Err(e) = self.vfs.write(ino, off, data, now) {
                        return Ok(if total > 0 { Ok(total) } else { Err(e) });
                    }
                    if at.is_none()
                        && let Ok(Fd::File { pos, .. }) = self.fd_mut(fd)
                    {
                        *pos = off + data.len() as u64;
                    }
                }
                Ok(Fd::Dir { .. }) => return Ok(Err(errno::ISDIR)),
                Ok(_) => return Ok(Err(errno::BADF)),
                Err(e) => return Ok(Err(e)),
            }
            total += len;
        }
        Ok(Ok(total))
    }

    fn read(
        &mut self,
        m: &mut Mem<'_>,
        fd: i32,
        iovs: i32,
        n: i32,
        at: Option<u64>,
    ) -> Result<u32, Errno> {
        let iovs = m.iovs(iovs, n)?;
        let mut total = 0u32;
        for (p, len) in iovs {
            if total >= MAX_IO {
                break;
            }
            let len = len.min(MAX_IO - total);
            let buf = m.slice_mut(p, len)?;
            let file = match self.fd(fd)? {
                Fd::Stdin if at.is_none() => None,
                Fd::Stdin => return Err(errno::SPIPE),
                Fd::File {
                    ino,
                    pos,
                    read: true,
                    ..
                } => Some((*ino, *pos)),
                Fd::Dir { .. } => return Err(errno::ISDIR),
                _ => return Err(errno::BADF),
            };
            let got = match file {
                None => {
                    let rest = &self.stdin[self.stdin_pos..];
                    let k = rest.len().min(buf.len());
                    buf[..k].copy_from_slice(&rest[..k]);
                    self.stdin_pos += k;
                    k
                }
                Some((ino, pos)) => {
                    // Each buffer follows the previous one.
                    let off = at.map_or(pos, |a| a.saturating_add(u64::from(total)));
                    let k = self.vfs.read(ino, off, buf)?;
                    if at.is_none()
                        && let Ok(Fd::File { pos, .. }) = self.fd_mut(fd)
                    {
                        *pos = off + k as u64;
                    }
                    k
                }
            };
            total += got as u32;
            if got < len as usize {
                break;
            }
        }
        Ok(total)
    }

    fn path_open(
        &mut self,
        dirfd: i32,
        path: &str,
        oflags: i32,
        rights: u64,
        fdflags: i32,
    ) -> Result<u32, Errno> {
        let (dir, root) = self.dir(dirfd)?;
        let (parent, name) = self.vfs.resolve_parent(root, dir, path)?;
        let (creat, directory, excl, trunc) = (
            oflags & 1 != 0,
            oflags & 2 != 0,
            oflags & 4 != 0,
            oflags & 8 != 0,
        );
        let write = rights & FD_WRITE != 0 || trunc;
        let read = rights & FD_READ != 0 || !write;
        let now = self.now();
        let existing = match name {
            None => Some(parent),
            Some(n) => match self.vfs.resolve(root, parent, n) {
                Ok(i) => Some(i),
                Err(errno::NOENT) => None,
                Err(e) => return Err(e),
            },
        };
        let ino = match existing {
            Some(_) if creat && excl => return Err(errno::EXIST),
            Some(i) => i,
            None if creat && !directory => {
                let n = name.ok_or(errno::INVAL)?;
                self.vfs.create(parent, n, false, now)?
            }
            None => return Err(errno::NOENT),
        };
        let is_dir = matches!(self.vfs.node(ino)?, Node::Dir(_));
        if is_dir {
            if write {
                return Err(errno::ISDIR);
            }
            return self.add_fd(Fd::Dir {
                ino,
                root,
                preopen: None,
            });
        }
        if directory {
            return Err(errno::NOTDIR);
        }
        if write && !self.vfs.writable(ino) {
            return Err(errno::ROFS);
        }
        if trunc {
            self.vfs.truncate(ino, 0, now)?;
        }
        self.add_fd(Fd::File {
            ino,
            pos: 0,
            append: fdflags & 1 != 0,
            read,
            write,
        })
    }

    fn readdir(
        &self,
        m: &mut Mem<'_>,
        fd: i32,
        buf: i32,
        len: i32,
        cookie: u64,
        used: i32,
    ) -> Result<(), Errno> {
        let (ino, _) = self.dir(fd)?;
        // Entries go straight into the buffer, the last one cut at its end.
        let len = len as u32;
        let mut n = 0u32;
        for (i, (name, child)) in self.vfs.entries(ino)?.enumerate().skip(cookie as usize) {
            if n >= len {
                break;
            }
            let mut head = [0u8; 24];
            head[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            head[8..16].copy_from_slice(&(child as u64).to_le_bytes());
            head[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            head[20] = filetype(&self.vfs, child);
            for part in [&head[..], name.as_bytes()] {
                let k = (part.len() as u32).min(len - n);
                let at = (buf as u32).checked_add(n).ok_or(errno::FAULT)?;
                m.put(at as i32, &part[..k as usize])?;
                n += k;
            }
        }
        m.put_u32(used, n)
    }

    fn poll(
        &mut self,
        m: &mut Mem<'_>,
        subs: i32,
        events: i32,
        n: i32,
        nevents: i32,
    ) -> Result<Result<(), Errno>, Error> {
        if !(1..=64).contains(&n) {
            return Ok(Err(errno::INVAL));
        }
        let mut ready = Vec::new();
        let mut clocks = Vec::new();
        for i in 0..n {
            let at = (subs as u32).wrapping_add(48 * i as u32) as i32;
            let sub = match m.slice(at, 48) {
                Ok(s) => s.to_vec(),
                Err(e) => return Ok(Err(e)),
            };
            let userdata = u64::from_le_bytes(sub[0..8].try_into().unwrap_or_default());
            match sub[8] {
                0 => {
                    let id = u32::from_le_bytes(sub[16..20].try_into().unwrap_or_default());
                    let timeout = u64::from_le_bytes(sub[24..32].try_into().unwrap_or_default());
                    let abs =
                        u16::from_le_bytes(sub[40..42].try_into().unwrap_or_default()) & 1 != 0;
                    let wait = if abs {
                        let now = if id == 0 {
                            self.now()
                        } else {
                            self.started.elapsed().as_nanos() as u64
                        };
                        timeout.saturating_sub(now)
                    } else {
                        timeout
                    };
                    clocks.push((userdata, wait, 0u8));
                }
                kind @ (1 | 2) => {
                    let fd = i32::from_le_bytes(sub[16..20].try_into().unwrap_or_default());
                    let (err, nbytes) = match self.fd(fd) {
                        Ok(Fd::Stdin) => (0, (self.stdin.len() - self.stdin_pos) as u64),
                        Ok(_) => (0, 0),
                        Err(e) => (e, 0),
                    };
                    ready.push((userdata, err, kind, nbytes));
                }
                _ => return Ok(Err(errno::INVAL)),
            }
        }
        if ready.is_empty() {
            // Sleep for the nearest clock, never past the deadline.
            let wait = clocks.iter().map(|c| c.1).min().unwrap_or(0);
            let until = Instant::now() + Duration::from_nanos(wait);
            if until > self.deadline {
                std::thread::sleep(self.deadline.saturating_duration_since(Instant::now()));
                return Err(Error::host(Stop(Limit::WallClock)));
            }
            std::thread::sleep(Duration::from_nanos(wait));
            for (u, w, _) in &clocks {
                if *w <= wait {
                    ready.push((*u, 0, 0, 0));
                }
            }
        }
        for (k, (userdata, err, kind, nbytes)) in ready.iter().enumerate() {
            let mut e = [0u8; 32];
            e[0..8].copy_from_slice(&userdata.to_le_bytes());
            e[8..10].copy_from_slice(&err.to_le_bytes());
            e[10] = *kind;
            e[16..24].copy_from_slice(&nbytes.to_le_bytes());
            if let Err(x) = m.put((events as u32).wrapping_add(32 * k as u32) as i32, &e) {
                return Ok(Err(x));
            }
        }
        Ok(m.put_u32(nevents, ready.len() as u32))
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

type C<'a> = Caller<'a, Ctx>;

/// Defines every preview1 function in `linker`.
pub fn add_to_linker(l: &mut Linker<Ctx>) -> Result<(), wasmi::errors::LinkerError> {
    let m = MODULE;
    l.func_wrap(m, "args_get", |mut c: C<'_>, argv: i32, buf: i32| {
        with(&mut c, |m, cx| ok(put_list(m, &cx.args, argv, buf)))
    })?;
    l.func_wrap(m, "args_sizes_get", |mut c: C<'_>, n: i32, size: i32| {
        with(&mut c, |m, cx| ok(put_sizes(m, &cx.args, n, size)))
    })?;
    l.func_wrap(m, "environ_get", |mut c: C<'_>, env: i32, buf: i32| {
        with(&mut c, |m, cx| ok(put_list(m, &cx.env, env, buf)))
    })?;
    l.func_wrap(m, "environ_sizes_get", |mut c: C<'_>, n: i32, size: i32| {
        with(&mut c, |m, cx| ok(put_sizes(m, &cx.env, n, size)))
    })?;
    l.func_wrap(m, "clock_res_get", |mut c: C<'_>, id: i32, res: i32| {
        with(&mut c, |m, _| {
            ok(if (0..4).contains(&id) {
                m.put_u64(res, 1000)
            } else {
                Err(errno::INVAL)
            })
        })
    })?;
    l.func_wrap(
        m,
        "clock_time_get",
        |mut c: C<'_>, id: i32, _precision: i64, out: i32| {
            with(&mut c, |m, cx| {
                let t = match id {
                    0 => cx.now(),
                    1..=3 => cx.started.elapsed().as_nanos() as u64,
                    _ => return Ok(errno::INVAL),
                };
                ok(m.put_u64(out, t))
            })
        },
    )?;
    // Advice and times are accepted and change nothing.
    for name in ["fd_advise", "fd_filestat_set_times"] {
        l.func_wrap(m, name, |mut c: C<'_>, fd: i32, _: i64, _: i64, _: i32| {
            with(&mut c, |_, cx| ok(cx.fd(fd).map(|_| ())))
        })?;
    }
    l.func_wrap(
        m,
        "fd_allocate",
        |mut c: C<'_>, fd: i32, off: i64, len: i64| {
            with(&mut c, |_, cx| {
                let now = cx.now();
                ok(match cx.fd(fd) {
                    Ok(Fd::File {
                        ino, write: true, ..
                    }) => {
                        let ino = *ino;
                        let end = (off as u64).saturating_add(len as u64);
                        if end > cx.vfs.size(ino) {
                            cx.vfs.truncate(ino, end, now)
                        } else {
                            Ok(())
                        }
                    }
                    Ok(_) => Err(errno::BADF),
                    Err(e) => Err(e),
                })
            })
        },
    )?;
    l.func_wrap(m, "fd_close", |mut c: C<'_>, fd: i32| {
        with(&mut c, |_, cx| {
            if let Err(e) = cx.fd(fd) {
                return Ok(e);
            }
            cx.fds[fd as usize] = None;
            Ok(errno::SUCCESS)
        })
    })?;
    for name in ["fd_datasync", "fd_sync"] {
        l.func_wrap(m, name, |mut c: C<'_>, fd: i32| {
            with(&mut c, |_, cx| ok(cx.fd(fd).map(|_| ())))
        })?;
    }
    l.func_wrap(m, "fd_fdstat_get", |mut c: C<'_>, fd: i32, out: i32| {
        with(&mut c, |m, cx| {
            let (ft, flags) = match cx.fd(fd) {
                Ok(Fd::Stdin | Fd::Stdout | Fd::Stderr) => (FILETYPE_CHAR, 0u16),
                Ok(Fd::Dir { .. }) => (FILETYPE_DIR, 0),
                Ok(Fd::File { append, .. }) => (FILETYPE_FILE, u16::from(*append)),
                Err(e) => return Ok(e),
            };
            let mut b = [0u8; 24];
            b[0] = ft;
            b[2..4].copy_from_slice(&flags.to_le_bytes());
            b[8..16].copy_from_slice(&RIGHTS_ALL.to_le_bytes());
            b[16..24].copy_from_slice(&RIGHTS_ALL.to_le_bytes());
            ok(m.put(out, &b))
        })
    })?;
    l.func_wrap(
        m,
        "fd_fdstat_set_flags",
        |mut c: C<'_>, fd: i32, flags: i32| {
            with(&mut c, |_, cx| {
                ok(match cx.fd_mut(fd) {
                    Ok(Fd::File { append, .. }) => {
                        *append = flags & 1 != 0;
                        Ok(())
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                })
            })
        },
    )?;
    l.func_wrap(
        m,
        "fd_fdstat_set_rights",
        |mut c: C<'_>, fd: i32, _b: i64, _i: i64| with(&mut c, |_, cx| ok(cx.fd(fd).map(|_| ()))),
    )?;
    l.func_wrap(m, "fd_filestat_get", |mut c: C<'_>, fd: i32, out: i32| {
        with(&mut c, |m, cx| {
            let b = match cx.fd(fd) {
                Ok(Fd::Dir { ino, .. } | Fd::File { ino, .. }) => filestat(&cx.vfs, *ino),
                Ok(_) => {
                    let mut b = [0u8; 64];
                    b[16] = FILETYPE_CHAR;
                    b
                }
                Err(e) => return Ok(e),
            };
            ok(m.put(out, &b))
        })
    })?;
    l.func_wrap(
        m,
        "fd_filestat_set_size",
        |mut c: C<'_>, fd: i32, size: i64| {
            with(&mut c, |_, cx| {
                let now = cx.now();
                ok(match cx.fd(fd) {
                    Ok(Fd::File {
                        ino, write: true, ..
                    }) => cx.vfs.truncate(*ino, size as u64, now),
                    Ok(_) => Err(errno::BADF),
                    Err(e) => Err(e),
                })
            })
        },
    )?;
    l.func_wrap(
        m,
        "fd_pread",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, off: i64, out: i32| {
            with(&mut c, |m, cx| {
                ok(cx
                    .read(m, fd, iovs, n, Some(off as u64))
                    .and_then(|k| m.put_u32(out, k)))
            })
        },
    )?;
    l.func_wrap(
        m,
        "fd_pwrite",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, off: i64, out: i32| {
            with(&mut c, |m, cx| {
                ok(cx
                    .write(m, fd, iovs, n, Some(off as u64))?
                    .and_then(|k| m.put_u32(out, k)))
            })
        },
    )?;
    l.func_wrap(
        m,
        "fd_read",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, out: i32| {
            with(&mut c, |m, cx| {
                ok(cx
                    .read(m, fd, iovs, n, None)
                    .and_then(|k| m.put_u32(out, k)))
            })
        },
    )?;
    l.func_wrap(
        m,
        "fd_write",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, out: i32| {
            with(&mut c, |m, cx| {
                ok(cx
                    .write(m, fd, iovs, n, None)?
                    .and_then(|k| m.put_u32(out, k)))
            })
        },
    )?;
    l.func_wrap(m, "fd_prestat_get", |mut c: C<'_>, fd: i32, out: i32| {
        with(&mut c, |m, cx| match cx.fd(fd) {
            Ok(Fd::Dir {
                preopen: Some(p), ..
            }) => {
                let mut b = [0u8; 8];
                b[4..8].copy_from_slice(&(p.len() as u32).to_le_bytes());
                ok(m.put(out, &b))
            }
            _ => Ok(errno::BADF),
        })
    })?;
    l.func_wrap(
        m,
        "fd_prestat_dir_name",
        |mut c: C<'_>, fd: i32, path: i32, len: i32| {
            with(&mut c, |m, cx| match cx.fd(fd) {
                Ok(Fd::Dir {
                    preopen: Some(p), ..
                }) => {
                    let n = p.len().min(len as u32 as usize);
                    ok(m.put(path, &p.as_bytes()[..n]))
                }
                _ => Ok(errno::BADF),
            })
        },
    )?;
    l.func_wrap(
        m,
        "fd_readdir",
        |mut c: C<'_>, fd: i32, buf: i32, len: i32, cookie: i64, used: i32| {
            with(&mut c, |m, cx| {
                ok(cx.readdir(m, fd, buf, len, cookie as u64, used))
            })
        },
    )?;
    l.func_wrap(m, "fd_renumber", |mut c: C<'_>, from: i32, to: i32| {
        with(&mut c, |_, cx| {
            if let Err(e) = cx.fd(from).and_then(|_| cx.fd(to)) {
                return Ok(e);
            }
            let f = cx.fds[from as usize].take();
            cx.fds[to as usize] = f;
            Ok(errno::SUCCESS)
        })
    })?;
    l.func_wrap(
        m,
        "fd_seek",
        |mut c: C<'_>, fd: i32, delta: i64, whence: i32, out: i32| {
            with(&mut c, |m, cx| {
                let size = match cx.fd(fd) {
                    Ok(Fd::File { ino, .. }) => cx.vfs.size(*ino),
                    Ok(Fd::Dir { .. }) => return Ok(errno::ISDIR),
                    Ok(_) => return Ok(errno::SPIPE),
                    Err(e) => return Ok(e),
                };
                let Ok(Fd::File { pos, .. }) = cx.fd_mut(fd) else {
                    return Ok(errno::BADF);
                };
                let base = match whence {
                    0 => 0,
                    1 => *pos as i64,
                    2 => size as i64,
                    _ => return Ok(errno::INVAL),
                };
                let Some(new) = base.checked_add(delta).filter(|n| *n >= 0) else {
                    return Ok(errno::INVAL);
                };
                *pos = new as u64;
                ok(m.put_u64(out, new as u64))
            })
        },
    )?;
    l.func_wrap(m, "fd_tell", |mut c: C<'_>, fd: i32, out: i32| {
        with(&mut c, |m, cx| match cx.fd(fd) {
            Ok(Fd::File { pos, .. }) => {
                let p = *pos;
                ok(m.put_u64(out, p))
            }
            Ok(_) => Ok(errno::SPIPE),
            Err(e) => Ok(e),
        })
    })?;
    l.func_wrap(
        m,
        "path_create_directory",
        |mut c: C<'_>, fd: i32, path: i32, len: i32| {
            with(&mut c, |m, cx| {
                ok((|| {
                    let p = m.str(path, len)?;
                    let (dir, root) = cx.dir(fd)?;
                    let (parent, name) = cx.vfs.resolve_parent(root, dir, &p)?;
                    let now = cx.now();
                    cx.vfs
                        .create(parent, name.ok_or(errno::EXIST)?, true, now)
                        .map(|_| ())
                })())
            })
        },
    )?;
    l.func_wrap(
        m,
        "path_filestat_get",
        |mut c: C<'_>, fd: i32, _flags: i32, path: i32, len: i32, out: i32| {
            with(&mut c, |m, cx| {
                ok((|| {
                    let p = m.str(path, len)?;
                    let (dir, root) = cx.dir(fd)?;
                    let ino = cx.vfs.resolve(root, dir, &p)?;
                    m.put(out, &filestat(&cx.vfs, ino))
                })())
            })
        },
    )?;
    l.func_wrap(
        m,
        "path_filestat_set_times",
        |mut c: C<'_>, fd: i32, _flags: i32, path: i32, len: i32, _a: i64, _m: i64, _f: i32| {
            with(&mut c, |m, cx| {
                ok((|| {
                    let p = m.str(path, len)?;
                    let (dir, root) = cx.dir(fd)?;
                    cx.vfs.resolve(root, dir, &p).map(|_| ())
                })())
            })
        },
    )?;
    l.func_wrap(
        m,
        "path_link",
        |mut c: C<'_>, fd: i32, _f: i32, _op: i32, _ol: i32, _nfd: i32, _np: i32, _nl: i32| {
            with(&mut c, |_, cx| ok(cx.dir(fd).and(Err(errno::NOTSUP))))
        },
    )?;
    l.func_wrap(
        m,
        "path_open",
        |mut c: C<'_>,
         fd: i32,
         _lookup: i32,
         path: i32,
         len: i32,
         oflags: i32,
         rights: i64,
         _inh: i64,
         fdflags: i32,
         out: i32| {
            with(&mut c, |m, cx| {
                ok((|| {
                    let p = m.str(path, len)?;
                    let new = cx.path_open(fd, &p, oflags, rights as u64, fdflags)?;
                    m.put_u32(out, new)
                })())
            })
        },
    )?;
    l.func_wrap(
        m,
        "path_readlink",
        |mut c: C<'_>, fd: i32, path: i32, len: i32, _buf: i32, _blen: i32, _used: i32| {
            with(&mut c, |m, cx| {
                ok((|| {
                    let p = m.str(path, len)?;
                    let (dir, root) = cx.dir(fd)?;
                    // There are no symbolic links: whatever exists is not one.
                    cx.vfs.resolve(root, dir, &p)?;
                    Err(errno::INVAL)
                })())
            })
        },
    )?;
    for (name, want_dir) in [("path_remove_directory", true), ("path_unlink_file", false)] {
        l.func_wrap(
            m,
            name,
            move |mut c: C<'_>, fd: i32, path: i32, len: i32| {
                with(&mut c, |m, cx| {
                    ok((|| {
                        let p = m.str(path, len)?;
                        let (dir, root) = cx.dir(fd)?;
                        let (parent, name) = cx.vfs.resolve_parent(root, dir, &p)?;
                        let now = cx.now();
                        cx.vfs
                            .remove(parent, name.ok_or(errno::INVAL)?, want_dir, now)
                    })())
                })
            },
        )?;
    }
    l.func_wrap(
        m,
        "path_rename",
        |mut c: C<'_>, fd: i32, op: i32, ol: i32, nfd: i32, np: i32, nl: i32| {
            with(&mut c, |m, cx| {
                ok((|| {
                    let (from, to) = (m.str(op, ol)?, m.str(np, nl)?);
                    let (d1, r1) = cx.dir(fd)?;
                    let (d2, r2) = cx.dir(nfd)?;
                    let (p1, n1) = cx.vfs.resolve_parent(r1, d1, &from)?;
                    let (p2, n2) = cx.vfs.resolve_parent(r2, d2, &to)?;
                    let now = cx.now();
                    cx.vfs.rename(
                        p1,
                        n1.ok_or(errno::INVAL)?,
                        p2,
                        n2.ok_or(errno::INVAL)?,
                        now,
                    )
                })())
            })
        },
    )?;
    l.func_wrap(
        m,
        "path_symlink",
        |mut c: C<'_>, _op: i32, _ol: i32, fd: i32, _np: i32, _nl: i32| {
            // Symbolic links are not supported: none can point outside.
            with(&mut c, |_, cx| ok(cx.dir(fd).and(Err(errno::NOTSUP))))
        },
    )?;
    l.func_wrap(
        m,
        "poll_oneoff",
        |mut c: C<'_>, subs: i32, events: i32, n: i32, nevents: i32| {
            with(&mut c, |m, cx| ok(cx.poll(m, subs, events, n, nevents)?))
        },
    )?;
    l.func_wrap(m, "proc_exit", |_: C<'_>, code: i32| -> Result<(), Error> {
        Err(Error::i32_exit(code))
    })?;
    l.func_wrap(m, "proc_raise", |_: C<'_>, _sig: i32| -> i32 {
        errno::NOTSUP.into()
    })?;
    l.func_wrap(m, "sched_yield", |_: C<'_>| -> i32 { 0 })?;
    l.func_wrap(m, "random_get", |mut c: C<'_>, buf: i32, len: i32| {
        with(&mut c, |m, _| {
            ok((|| {
                let b = m.slice_mut(buf, len as u32)?;
                // In pieces, so the deadline is the only bound that matters.
                b.chunks_mut(1 << 20)
                    .try_for_each(getrandom::fill)
                    .map_err(|_| errno::IO)
            })())
        })
    })?;
    // No network: every socket call is refused.
    l.func_wrap(
        m,
        "sock_accept",
        |_: C<'_>, _fd: i32, _f: i32, _o: i32| -> i32 { errno::NOTSUP.into() },
    )?;
    l.func_wrap(
        m,
        "sock_recv",
        |_: C<'_>, _fd: i32, _i: i32, _n: i32, _f: i32, _o: i32, _r: i32| -> i32 {
            errno::NOTSUP.into()
        },
    )?;
    l.func_wrap(
        m,
        "sock_send",
        |_: C<'_>, _fd: i32, _i: i32, _n: i32, _f: i32, _o: i32| -> i32 { errno::NOTSUP.into() },
    )?;
    l.func_wrap(m, "sock_shutdown", |_: C<'_>, _fd: i32, _h: i32| -> i32 {
        errno::NOTSUP.into()
    })?;
    Ok(())
}

fn put_sizes(m: &mut Mem<'_>, list: &[Vec<u8>], n: i32, size: i32) -> Result<(), Errno> {
    m.put_u32(n, list.len() as u32)?;
    m.put_u32(size, list.iter().map(|a| a.len() as u32 + 1).sum())
}

fn put_list(m: &mut Mem<'_>, list: &[Vec<u8>], ptrs: i32, buf: i32) -> Result<(), Errno> {
    let mut at = buf as u32;
    for (i, a) in list.iter().enumerate() {
        m.put_u32((ptrs as u32).wrapping_add(4 * i as u32) as i32, at)?;
        m.put(at as i32, a)?;
        m.put(at.wrapping_add(a.len() as u32) as i32, &[0])?;
        at += a.len() as u32 + 1;
    }
    Ok(())
}
