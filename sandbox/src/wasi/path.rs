//! The `path_*` functions: paths resolved component by component from a
//! directory descriptor the run holds, never above its preopen's root
//! (`NOTCAPABLE`). Opening, creating, removing and renaming go to the
//! [`Vfs`], which counts what they hold against the run's room for files;
//! there are no links (`path_link` and `path_symlink` are `NOTSUP`, and
//! `path_readlink` finds none).

use wasmi::Linker;
use wasmi::errors::LinkerError;

use super::fd::filestat;
use super::memory::{Mem, ok, with};
use super::{C, Ctx, Fd, MODULE};
use crate::errno::{self, Errno};
use crate::vfs::{Ino, Node, Vfs};

/// The `fd_read` right.
const FD_READ: u64 = 1 << 1;
/// The `fd_write` right.
const FD_WRITE: u64 = 1 << 6;

impl Ctx {
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

    /// What the path at (`path`, `len`) from directory `fd` names.
    fn lookup(&self, m: &Mem<'_>, fd: i32, path: i32, len: i32) -> Result<Ino, Errno> {
        let p = m.str(path, len)?;
        let (dir, root) = self.dir(fd)?;
        self.vfs.resolve(root, dir, &p)
    }

    /// Runs `f` on the files with the parent directory of the path at
    /// (`path`, `len`) from directory `fd`, its last name and the time.
    fn in_parent<T>(
        &mut self,
        m: &Mem<'_>,
        fd: i32,
        path: i32,
        len: i32,
        f: impl FnOnce(&mut Vfs, Ino, Option<&str>, u64) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let p = m.str(path, len)?;
        let (dir, root) = self.dir(fd)?;
        let (parent, name) = self.vfs.resolve_parent(root, dir, &p)?;
        let now = self.now();
        f(&mut self.vfs, parent, name, now)
    }

    fn path_rename(
        &mut self,
        m: &Mem<'_>,
        (fd, op, ol): (i32, i32, i32),
        (nfd, np, nl): (i32, i32, i32),
    ) -> Result<(), Errno> {
        let (from, to) = (m.str(op, ol)?, m.str(np, nl)?);
        let (d1, r1) = self.dir(fd)?;
        let (d2, r2) = self.dir(nfd)?;
        let (p1, n1) = self.vfs.resolve_parent(r1, d1, &from)?;
        let (p2, n2) = self.vfs.resolve_parent(r2, d2, &to)?;
        let now = self.now();
        self.vfs.rename(
            p1,
            n1.ok_or(errno::INVAL)?,
            p2,
            n2.ok_or(errno::INVAL)?,
            now,
        )
    }
}

/// Defines the `path_*` functions.
pub(super) fn add(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    add_changes(l)?;
    add_queries(l)
}

/// The functions that open or change files.
fn add_changes(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    l.func_wrap(
        MODULE,
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
        MODULE,
        "path_create_directory",
        |mut c: C<'_>, fd: i32, path: i32, len: i32| {
            with(&mut c, |m, cx| {
                ok(cx.in_parent(m, fd, path, len, |vfs, parent, name, now| {
                    vfs.create(parent, name.ok_or(errno::EXIST)?, true, now)
                        .map(|_| ())
                }))
            })
        },
    )?;
    for (name, want_dir) in [("path_remove_directory", true), ("path_unlink_file", false)] {
        l.func_wrap(
            MODULE,
            name,
            move |mut c: C<'_>, fd: i32, path: i32, len: i32| {
                with(&mut c, |m, cx| {
                    ok(cx.in_parent(m, fd, path, len, |vfs, parent, name, now| {
                        vfs.remove(parent, name.ok_or(errno::INVAL)?, want_dir, now)
                    }))
                })
            },
        )?;
    }
    l.func_wrap(
        MODULE,
        "path_rename",
        |mut c: C<'_>, fd: i32, op: i32, ol: i32, nfd: i32, np: i32, nl: i32| {
            with(&mut c, |m, cx| {
                ok(cx.path_rename(m, (fd, op, ol), (nfd, np, nl)))
            })
        },
    )?;
    Ok(())
}

/// The functions that look at files, and the refused links.
fn add_queries(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    l.func_wrap(
        MODULE,
        "path_filestat_get",
        |mut c: C<'_>, fd: i32, _flags: i32, path: i32, len: i32, out: i32| {
            with(&mut c, |m, cx| {
                ok(cx
                    .lookup(m, fd, path, len)
                    .and_then(|ino| m.put(out, &filestat(&cx.vfs, ino))))
            })
        },
    )?;
    // Times are accepted and change nothing.
    l.func_wrap(
        MODULE,
        "path_filestat_set_times",
        |mut c: C<'_>, fd: i32, _flags: i32, path: i32, len: i32, _a: i64, _m: i64, _f: i32| {
            with(&mut c, |m, cx| ok(cx.lookup(m, fd, path, len).map(|_| ())))
        },
    )?;
    l.func_wrap(
        MODULE,
        "path_readlink",
        |mut c: C<'_>, fd: i32, path: i32, len: i32, _buf: i32, _blen: i32, _used: i32| {
            // There are no symbolic links: whatever exists is not one.
            with(&mut c, |m, cx| {
                ok(cx.lookup(m, fd, path, len).and(Err(errno::INVAL)))
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "path_link",
        |mut c: C<'_>, fd: i32, _f: i32, _op: i32, _ol: i32, _nfd: i32, _np: i32, _nl: i32| {
            with(&mut c, |_, cx| ok(cx.dir(fd).and(Err(errno::NOTSUP))))
        },
    )?;
    l.func_wrap(
        MODULE,
        "path_symlink",
        |mut c: C<'_>, _op: i32, _ol: i32, fd: i32, _np: i32, _nl: i32| {
            // Symbolic links are not supported: none can point outside.
            with(&mut c, |_, cx| ok(cx.dir(fd).and(Err(errno::NOTSUP))))
        },
    )?;
    Ok(())
}
