//! The `fd_*` functions: reading and writing (stdin from its buffer,
//! stdout and stderr into their capped captures, files in the [`Vfs`]
//! with the run's room for files counted there), seeking, directory
//! listings, descriptor state and the descriptor table itself, and the
//! `filestat` encoding `path.rs` shares.
//!
//! Data moves between linear memory and the files or the capture without
//! a copy in between, and one call moves at most [`MAX_IO`] bytes.

use wasmi::errors::LinkerError;
use wasmi::{Error, Linker};

use super::memory::{Mem, ok, with};
use super::{C, Capture, Ctx, Fd, MODULE, Stop};
use crate::Limit;
use crate::errno::{self, Errno};
use crate::vfs::{Ino, Node, Vfs};

/// The most bytes one read or write call moves (a longer request is
/// answered short, which callers handle by looping).
const MAX_IO: u32 = 16 << 20;

const FILETYPE_CHAR: u8 = 2;
const FILETYPE_DIR: u8 = 3;
const FILETYPE_FILE: u8 = 4;
/// Every right: descriptors are limited by what they are, not by rights.
const RIGHTS_ALL: u64 = (1 << 30) - 1;

fn filetype(vfs: &Vfs, ino: Ino) -> u8 {
    match vfs.node(ino) {
        Ok(Node::Dir(_)) => FILETYPE_DIR,
        _ => FILETYPE_FILE,
    }
}

/// The `filestat` of a file or directory.
pub(super) fn filestat(vfs: &Vfs, ino: Ino) -> [u8; 64] {
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

/// Appends `data` to `c` up to its cap; past it, the run stops.
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

/// Which way a call moves data.
#[derive(Clone, Copy)]
enum Io {
    Read,
    Write,
}

impl Ctx {
    /// Reads or writes `fd` through the iovecs at `iovs`, at offset `at`
    /// or the descriptor's position: the bytes moved, an errno, or a stop.
    fn io(
        &mut self,
        io: Io,
        m: &mut Mem<'_>,
        fd: i32,
        iovs: i32,
        n: i32,
        at: Option<u64>,
    ) -> Result<Result<u32, Errno>, Error> {
        match io {
            Io::Read => Ok(self.read(m, fd, iovs, n, at)),
            Io::Write => self.write(m, fd, iovs, n, at),
        }
    }

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

    fn seek(&mut self, fd: i32, delta: i64, whence: i32) -> Result<u64, Errno> {
        let size = match self.fd(fd)? {
            Fd::File { ino, .. } => self.vfs.size(*ino),
            Fd::Dir { .. } => return Err(errno::ISDIR),
            _ => return Err(errno::SPIPE),
        };
        let Ok(Fd::File { pos, .. }) = self.fd_mut(fd) else {
            return Err(errno::BADF);
        };
        let base = match whence {
            0 => 0,
            1 => *pos as i64,
            2 => size as i64,
            _ => return Err(errno::INVAL),
        };
        let Some(new) = base.checked_add(delta).filter(|n| *n >= 0) else {
            return Err(errno::INVAL);
        };
        *pos = new as u64;
        Ok(new as u64)
    }

    fn allocate(&mut self, fd: i32, off: i64, len: i64) -> Result<(), Errno> {
        let now = self.now();
        match self.fd(fd)? {
            Fd::File {
                ino, write: true, ..
            } => {
                let ino = *ino;
                let end = (off as u64).saturating_add(len as u64);
                if end > self.vfs.size(ino) {
                    self.vfs.truncate(ino, end, now)
                } else {
                    Ok(())
                }
            }
            _ => Err(errno::BADF),
        }
    }

    fn set_size(&mut self, fd: i32, size: i64) -> Result<(), Errno> {
        let now = self.now();
        match self.fd(fd)? {
            Fd::File {
                ino, write: true, ..
            } => self.vfs.truncate(*ino, size as u64, now),
            _ => Err(errno::BADF),
        }
    }

    /// Writes the `fdstat` of descriptor `fd` at `out`.
    fn put_fdstat(&self, m: &mut Mem<'_>, fd: i32, out: i32) -> Result<(), Errno> {
        let (ft, flags) = match self.fd(fd)? {
            Fd::Stdin | Fd::Stdout | Fd::Stderr => (FILETYPE_CHAR, 0u16),
            Fd::Dir { .. } => (FILETYPE_DIR, 0),
            Fd::File { append, .. } => (FILETYPE_FILE, u16::from(*append)),
        };
        let mut b = [0u8; 24];
        b[0] = ft;
        b[2..4].copy_from_slice(&flags.to_le_bytes());
        b[8..16].copy_from_slice(&RIGHTS_ALL.to_le_bytes());
        b[16..24].copy_from_slice(&RIGHTS_ALL.to_le_bytes());
        m.put(out, &b)
    }

    /// Writes the `filestat` of descriptor `fd` at `out`.
    fn put_filestat(&self, m: &mut Mem<'_>, fd: i32, out: i32) -> Result<(), Errno> {
        let b = match self.fd(fd)? {
            Fd::Dir { ino, .. } | Fd::File { ino, .. } => filestat(&self.vfs, *ino),
            _ => {
                let mut b = [0u8; 64];
                b[16] = FILETYPE_CHAR;
                b
            }
        };
        m.put(out, &b)
    }

    /// Writes the `prestat` of preopened directory `fd` at `out`.
    fn put_prestat(&self, m: &mut Mem<'_>, fd: i32, out: i32) -> Result<(), Errno> {
        let p = self.preopen(fd)?;
        let mut b = [0u8; 8];
        b[4..8].copy_from_slice(&(p.len() as u32).to_le_bytes());
        m.put(out, &b)
    }

    /// Writes the position of file `fd` at `out`.
    fn put_tell(&self, m: &mut Mem<'_>, fd: i32, out: i32) -> Result<(), Errno> {
        match self.fd(fd)? {
            Fd::File { pos, .. } => m.put_u64(out, *pos),
            _ => Err(errno::SPIPE),
        }
    }

    /// The guest path of a preopened directory.
    fn preopen(&self, fd: i32) -> Result<&str, Errno> {
        match self.fd(fd) {
            Ok(Fd::Dir {
                preopen: Some(p), ..
            }) => Ok(p),
            _ => Err(errno::BADF),
        }
    }

    fn close(&mut self, fd: i32) -> Result<(), Errno> {
        self.fd(fd)?;
        self.fds[fd as usize] = None;
        Ok(())
    }

    fn renumber(&mut self, from: i32, to: i32) -> Result<(), Errno> {
        self.fd(from).and_then(|_| self.fd(to))?;
        let f = self.fds[from as usize].take();
        self.fds[to as usize] = f;
        Ok(())
    }
}

/// A descriptor query that writes its answer at a pointer: (`fd`, `out`).
type Query = fn(&Ctx, &mut Mem<'_>, i32, i32) -> Result<(), Errno>;

const QUERIES: [(&str, Query); 4] = [
    ("fd_fdstat_get", Ctx::put_fdstat),
    ("fd_filestat_get", Ctx::put_filestat),
    ("fd_prestat_get", Ctx::put_prestat),
    ("fd_tell", Ctx::put_tell),
];

/// Defines the `fd_*` functions.
pub(super) fn add(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    for (name, query) in QUERIES {
        l.func_wrap(MODULE, name, move |mut c: C<'_>, fd: i32, out: i32| {
            with(&mut c, |m, cx| ok(query(cx, m, fd, out)))
        })?;
    }
    add_io(l)?;
    add_state(l)?;
    add_table(l)
}

/// Reading, writing, seeking and listing.
fn add_io(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    for (name, at_name, io) in [
        ("fd_read", "fd_pread", Io::Read),
        ("fd_write", "fd_pwrite", Io::Write),
    ] {
        l.func_wrap(
            MODULE,
            name,
            move |mut c: C<'_>, fd: i32, iovs: i32, n: i32, out: i32| {
                with(&mut c, |m, cx| {
                    ok(cx
                        .io(io, m, fd, iovs, n, None)?
                        .and_then(|k| m.put_u32(out, k)))
                })
            },
        )?;
        l.func_wrap(
            MODULE,
            at_name,
            move |mut c: C<'_>, fd: i32, iovs: i32, n: i32, off: i64, out: i32| {
                with(&mut c, |m, cx| {
                    ok(cx
                        .io(io, m, fd, iovs, n, Some(off as u64))?
                        .and_then(|k| m.put_u32(out, k)))
                })
            },
        )?;
    }
    l.func_wrap(
        MODULE,
        "fd_seek",
        |mut c: C<'_>, fd: i32, delta: i64, whence: i32, out: i32| {
            with(&mut c, |m, cx| {
                ok(cx.seek(fd, delta, whence).and_then(|p| m.put_u64(out, p)))
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "fd_readdir",
        |mut c: C<'_>, fd: i32, buf: i32, len: i32, cookie: i64, used: i32| {
            with(&mut c, |m, cx| {
                ok(cx.readdir(m, fd, buf, len, cookie as u64, used))
            })
        },
    )?;
    Ok(())
}

/// A descriptor's flags and its file's size; what changes nothing here
/// (advice, times, rights, syncs) only checks the descriptor.
fn add_state(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    for name in ["fd_advise", "fd_filestat_set_times"] {
        l.func_wrap(
            MODULE,
            name,
            |mut c: C<'_>, fd: i32, _: i64, _: i64, _: i32| {
                with(&mut c, |_, cx| ok(cx.fd(fd).map(|_| ())))
            },
        )?;
    }
    l.func_wrap(
        MODULE,
        "fd_fdstat_set_rights",
        |mut c: C<'_>, fd: i32, _b: i64, _i: i64| with(&mut c, |_, cx| ok(cx.fd(fd).map(|_| ()))),
    )?;
    for name in ["fd_datasync", "fd_sync"] {
        l.func_wrap(MODULE, name, |mut c: C<'_>, fd: i32| {
            with(&mut c, |_, cx| ok(cx.fd(fd).map(|_| ())))
        })?;
    }
    l.func_wrap(
        MODULE,
        "fd_fdstat_set_flags",
        |mut c: C<'_>, fd: i32, flags: i32| {
            with(&mut c, |_, cx| {
                ok(cx.fd_mut(fd).map(|f| {
                    if let Fd::File { append, .. } = f {
                        *append = flags & 1 != 0;
                    }
                }))
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "fd_allocate",
        |mut c: C<'_>, fd: i32, off: i64, len: i64| {
            with(&mut c, |_, cx| ok(cx.allocate(fd, off, len)))
        },
    )?;
    l.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |mut c: C<'_>, fd: i32, size: i64| with(&mut c, |_, cx| ok(cx.set_size(fd, size))),
    )?;
    Ok(())
}

/// Closing, renumbering and the names of the preopened directories.
fn add_table(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    l.func_wrap(MODULE, "fd_close", |mut c: C<'_>, fd: i32| {
        with(&mut c, |_, cx| ok(cx.close(fd)))
    })?;
    l.func_wrap(MODULE, "fd_renumber", |mut c: C<'_>, from: i32, to: i32| {
        with(&mut c, |_, cx| ok(cx.renumber(from, to)))
    })?;
    l.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |mut c: C<'_>, fd: i32, path: i32, len: i32| {
            with(&mut c, |m, cx| {
                ok(cx.preopen(fd).and_then(|p| {
                    let n = p.len().min(len as u32 as usize);
                    m.put(path, &p.as_bytes()[..n])
                }))
            })
        },
    )?;
    Ok(())
}
