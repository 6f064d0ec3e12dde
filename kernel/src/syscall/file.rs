//! File syscalls on the RAM filesystem (descriptors 3 and up; 0–2 are the
//! console): openat, read/write and their positioned forms, lseek, close,
//! fstat/newfstatat, getdents64, mkdirat, unlinkat, fcntl.

use alloc::vec::Vec;

use kcore::errno::Errno;
use llmos_fs::ramfs::{Ino, ROOT, Stat, mode};

use super::SysResult;
use crate::memory::uaccess::{self, UserSlice};
use crate::vfs::{self, FILES, MAX_FDS, OpenFile};

const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_DIRECTORY: u32 = 0o200000;
const O_NOFOLLOW: u32 = 0o400000;
const O_CLOEXEC: u32 = 0o2000000;
const AT_FDCWD: i64 = -100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;

fn now() -> u64 {
    crate::time::realtime_nanos()
}

/// The directory a path is resolved against.
fn base_dir(dirfd: u64, path: &str) -> Result<Ino, Errno> {
    // The descriptor is a C int: only the low 32 bits count.
    if path.starts_with('/') || i64::from(dirfd as i32) == AT_FDCWD {
        return Ok(ROOT);
    }
    let fd = dirfd as i32;
    let ino = FILES.lock().get(&fd).map(|f| f.ino).ok_or(Errno::EBADF)?;
    Ok(ino)
}

fn read_path(addr: u64) -> Result<alloc::string::String, Errno> {
    let bytes = uaccess::read_cstr(addr, llmos_fs::ramfs::PATH_MAX)?;
    alloc::string::String::from_utf8(bytes).map_err(|_| Errno::ENOENT)
}

/// Whether the path at `addr` is empty (fstatat(fd, "", AT_EMPTY_PATH)
/// on a console descriptor).
pub fn path_is_empty(addr: u64) -> bool {
    let Ok(p) = uaccess::read_cstr(addr, 1) else {
        return false;
    };
    p.is_empty()
}

/// Whether `fd` names an open file (not the console).
pub fn is_file(fd: u64) -> bool {
    FILES.lock().contains_key(&(fd as i32))
}

fn lowest_free_fd(files: &alloc::collections::BTreeMap<i32, OpenFile>) -> Result<i32, Errno> {
    (3..MAX_FDS)
        .find(|n| !files.contains_key(n))
        .ok_or(Errno::EMFILE)
}

/// openat(2).
pub fn openat(dirfd: u64, path: u64, flags: u64, perm: u64) -> SysResult {
    let p = read_path(path)?;
    let flags = flags as u32;
    let base = base_dir(dirfd, &p)?;
    let now = now();
    let ino = vfs::with(|fs| {
        let ino = if flags & O_CREAT != 0 {
            fs.create(base, &p, perm as u32, flags & O_EXCL != 0, now)?
        } else {
            fs.lookup(base, &p, flags & O_NOFOLLOW == 0)?
        };
        let st = fs.stat(ino)?;
        let kind = st.mode & 0o170000;
        if kind == mode::S_IFLNK {
            return Err(Errno::ELOOP);
        }
        if flags & O_DIRECTORY != 0 && kind != mode::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let writing = flags & O_ACCMODE == O_WRONLY || flags & O_ACCMODE == O_RDWR;
        if kind == mode::S_IFDIR && (writing || flags & O_CREAT != 0) {
            return Err(Errno::EISDIR);
        }
        if flags & O_TRUNC != 0 && writing && kind == mode::S_IFREG {
            fs.truncate(ino, 0, now)?;
        }
        fs.open(ino)?;
        Ok(ino)
    })?;
    let mut files = FILES.lock();
    let fd = match lowest_free_fd(&files) {
        Ok(fd) => fd,
        Err(e) => {
            drop(files);
            let _ = vfs::with(|fs| {
                fs.close(ino);
                Ok(())
            });
            return Err(e);
        }
    };
    files.insert(
        fd,
        OpenFile {
            ino,
            offset: 0,
            flags: flags & !(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC),
            cloexec: flags & O_CLOEXEC != 0,
            dir_cursor: None,
            dir_done: false,
        },
    );
    Ok(fd as u64)
}

fn with_file<R>(fd: u64, f: impl FnOnce(&mut OpenFile) -> Result<R, Errno>) -> Result<R, Errno> {
    let mut files = FILES.lock();
    let of = files.get_mut(&(fd as i32)).ok_or(Errno::EBADF)?;
    f(of)
}

fn device(ino: Ino) -> Result<Option<(u32, u32)>, Errno> {
    let st = vfs::with(|fs| fs.stat(ino))?;
    Ok((st.mode & 0o170000 == mode::S_IFCHR).then_some(st.rdev))
}

/// Reads up to `count` bytes at `at` (or the file position) into `buf`.
fn read_impl(fd: u64, buf: u64, count: u64, at: Option<u64>) -> SysResult {
    let (ino, pos, flags) = with_file(fd, |f| Ok((f.ino, f.offset, f.flags)))?;
    if flags & O_ACCMODE == O_WRONLY {
        return Err(Errno::EBADF);
    }
    let n = count.min(1 << 20) as usize;
    let dst = UserSlice::new(buf, n)?;
    let mut data = alloc::vec![0u8; n];
    let got = match device(ino)? {
        Some(vfs::dev::NULL) => 0,
        Some(vfs::dev::ZERO) => n,
        Some(vfs::dev::URANDOM) => {
            crate::random::fill(&mut data);
            n
        }
        Some(_) => return Err(Errno::EINVAL),
        None => vfs::with(|fs| fs.read(ino, at.unwrap_or(pos), &mut data, now()))?,
    };
    dst.write(&data[..got])?;
    if at.is_none() {
        with_file(fd, |f| {
            f.offset = pos + got as u64;
            Ok(())
        })?;
    }
    Ok(got as u64)
}

/// Writes `count` bytes from `buf` at `at` (or the file position).
fn write_impl(fd: u64, buf: u64, count: u64, at: Option<u64>) -> SysResult {
    let (ino, pos, flags) = with_file(fd, |f| Ok((f.ino, f.offset, f.flags)))?;
    if flags & O_ACCMODE == 0 {
        return Err(Errno::EBADF);
    }
    let n = count.min(1 << 20) as usize;
    let data = UserSlice::new(buf, n)?.read_vec()?;
    if let Some(dev) = device(ino)? {
        return match dev {
            vfs::dev::NULL | vfs::dev::ZERO | vfs::dev::URANDOM => Ok(n as u64),
            _ => Err(Errno::EINVAL),
        };
    }
    let offset = match at {
        Some(o) => o,
        None if flags & O_APPEND != 0 => vfs::with(|fs| fs.stat(ino))?.size,
        None => pos,
    };
    let wrote = vfs::with(|fs| fs.write(ino, offset, &data, now()))?;
    if at.is_none() {
        with_file(fd, |f| {
            f.offset = offset + wrote as u64;
            Ok(())
        })?;
    }
    Ok(wrote as u64)
}

/// read(2) on a file.
pub fn read(fd: u64, buf: u64, count: u64) -> SysResult {
    read_impl(fd, buf, count, None)
}

/// write(2) on a file.
pub fn write(fd: u64, buf: u64, count: u64) -> SysResult {
    write_impl(fd, buf, count, None)
}

/// pread64(2).
pub fn pread64(fd: u64, buf: u64, count: u64, off: u64) -> SysResult {
    if (off as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    read_impl(fd, buf, count, Some(off))
}

/// pwrite64(2).
pub fn pwrite64(fd: u64, buf: u64, count: u64, off: u64) -> SysResult {
    if (off as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    write_impl(fd, buf, count, Some(off))
}

/// lseek(2).
pub fn lseek(fd: u64, off: u64, whence: u64) -> SysResult {
    let ino = with_file(fd, |f| Ok(f.ino))?;
    let size = vfs::with(|fs| fs.stat(ino))?.size as i64;
    with_file(fd, |f| {
        let base = match whence {
            0 => 0,
            1 => f.offset as i64,
            2 => size,
            _ => return Err(Errno::EINVAL),
        };
        let new = base.checked_add(off as i64).ok_or(Errno::EOVERFLOW)?;
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        f.offset = new as u64;
        if new == 0 {
            f.dir_cursor = None;
            f.dir_done = false;
        }
        Ok(new as u64)
    })
}

/// close(2) on a file.
pub fn close(fd: u64) -> SysResult {
    let of = FILES.lock().remove(&(fd as i32)).ok_or(Errno::EBADF)?;
    vfs::with(|fs| {
        fs.close(of.ino);
        Ok(0)
    })
}

/// Fills a `struct stat`.
pub fn stat_bytes(st: &Stat) -> [u8; 144] {
    let mut b = [0u8; 144];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &0x1eu64.to_le_bytes()); // st_dev: the RAM filesystem
    put(8, &st.ino.to_le_bytes());
    put(16, &u64::from(st.nlink).to_le_bytes());
    put(24, &st.mode.to_le_bytes());
    put(
        40,
        &((u64::from(st.rdev.0) << 8) | u64::from(st.rdev.1)).to_le_bytes(),
    );
    put(48, &st.size.to_le_bytes());
    put(56, &4096u64.to_le_bytes());
    put(64, &st.size.div_ceil(512).to_le_bytes());
    for (off, t) in [(72, st.atime), (88, st.mtime), (104, st.ctime)] {
        put(off, &(t / 1_000_000_000).to_le_bytes());
        put(off + 8, &(t % 1_000_000_000).to_le_bytes());
    }
    b
}

/// fstat(2) on a file.
pub fn fstat(fd: u64, buf: u64) -> SysResult {
    let ino = with_file(fd, |f| Ok(f.ino))?;
    let st = vfs::with(|fs| fs.stat(ino))?;
    UserSlice::new(buf, 144)?.write(&stat_bytes(&st))?;
    Ok(0)
}

/// newfstatat(2) for paths (and AT_EMPTY_PATH on files).
pub fn newfstatat(dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let p = read_path(path)?;
    if p.is_empty() {
        if flags & AT_EMPTY_PATH != 0 {
            return fstat(dirfd, buf);
        }
        return Err(Errno::ENOENT);
    }
    let base = base_dir(dirfd, &p)?;
    let st = vfs::with(|fs| {
        let ino = fs.lookup(base, &p, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        fs.stat(ino)
    })?;
    UserSlice::new(buf, 144)?.write(&stat_bytes(&st))?;
    Ok(0)
}

/// getdents64(2).
pub fn getdents64(fd: u64, buf: u64, count: u64) -> SysResult {
    let (ino, cursor, done) = with_file(fd, |f| Ok((f.ino, f.dir_cursor.clone(), f.dir_done)))?;
    if done {
        return Ok(0);
    }
    let entries = vfs::with(|fs| fs.readdir(ino, cursor.as_deref()))?;
    let mut out: Vec<u8> = Vec::new();
    let mut last = cursor;
    let mut finished = true;
    for e in &entries {
        let reclen = (19 + e.name.len() + 1).div_ceil(8) * 8;
        if out.len() + reclen > count as usize {
            finished = false;
            break;
        }
        let start = out.len();
        out.resize(start + reclen, 0);
        out[start..start + 8].copy_from_slice(&e.ino.to_le_bytes());
        out[start + 8..start + 16].copy_from_slice(&((start + reclen) as u64).to_le_bytes());
        out[start + 16..start + 18].copy_from_slice(&(reclen as u16).to_le_bytes());
        out[start + 18] = match e.kind {
            mode::S_IFDIR => 4,
            mode::S_IFLNK => 10,
            mode::S_IFCHR => 2,
            _ => 8,
        };
        out[start + 19..start + 19 + e.name.len()].copy_from_slice(e.name.as_bytes());
        last = Some(e.name.clone());
    }
    if out.is_empty() && !finished {
        return Err(Errno::EINVAL);
    }
    UserSlice::new(buf, out.len())?.write(&out)?;
    with_file(fd, |f| {
        f.dir_cursor = last;
        f.dir_done = finished;
        Ok(())
    })?;
    Ok(out.len() as u64)
}

/// mkdirat(2).
pub fn mkdirat(dirfd: u64, path: u64, perm: u64) -> SysResult {
    let p = read_path(path)?;
    let base = base_dir(dirfd, &p)?;
    vfs::with(|fs| fs.mkdir(base, &p, perm as u32, now()).map(|_| 0))
}

/// unlinkat(2).
pub fn unlinkat(dirfd: u64, path: u64, flags: u64) -> SysResult {
    let p = read_path(path)?;
    let base = base_dir(dirfd, &p)?;
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    vfs::with(|fs| {
        if flags & AT_REMOVEDIR != 0 {
            fs.rmdir(base, &p, now()).map(|_| 0)
        } else {
            fs.unlink(base, &p, now()).map(|_| 0)
        }
    })
}

/// fcntl(2) on a file.
pub fn fcntl(fd: u64, cmd: u64, arg: u64) -> SysResult {
    with_file(fd, |f| match cmd {
        1 => Ok(u64::from(f.cloexec)),
        2 => {
            f.cloexec = arg & 1 != 0;
            Ok(0)
        }
        3 => Ok(u64::from(f.flags)),
        4 => {
            let changeable = O_APPEND | 0o4000;
            f.flags = (f.flags & !changeable) | (arg as u32 & changeable);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    })
}

/// renameat2(2) (and rename/renameat): RENAME_NOREPLACE is honoured;
/// RENAME_EXCHANGE and RENAME_WHITEOUT are EINVAL.
pub fn renameat2(olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> SysResult {
    const RENAME_NOREPLACE: u64 = 1;
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(Errno::EINVAL);
    }
    let o = read_path(old)?;
    let n = read_path(new)?;
    let ob = base_dir(olddir, &o)?;
    let nb = base_dir(newdir, &n)?;
    vfs::with(|fs| {
        fs.rename(ob, &o, nb, &n, flags & RENAME_NOREPLACE != 0, now())
            .map(|_| 0)
    })
}

/// linkat(2) (and link).
pub fn linkat(olddir: u64, old: u64, newdir: u64, new: u64) -> SysResult {
    let o = read_path(old)?;
    let n = read_path(new)?;
    let ob = base_dir(olddir, &o)?;
    let nb = base_dir(newdir, &n)?;
    vfs::with(|fs| fs.link(ob, &o, nb, &n, now()).map(|_| 0))
}

/// symlinkat(2) (and symlink).
pub fn symlinkat(target: u64, dir: u64, path: u64) -> SysResult {
    let t = read_path(target)?;
    let p = read_path(path)?;
    let base = base_dir(dir, &p)?;
    vfs::with(|fs| fs.symlink(&t, base, &p, now()).map(|_| 0))
}

/// readlinkat for paths in the RAM filesystem.
pub fn readlink_fs(dir: u64, path: &[u8], buf: u64, size: u64) -> SysResult {
    let p = core::str::from_utf8(path).map_err(|_| Errno::ENOENT)?;
    let base = base_dir(dir, p)?;
    let target = vfs::with(|fs| fs.readlink(base, p).map(alloc::string::String::from))?;
    let n = target.len().min(size as usize);
    UserSlice::new(buf, n)?.write(&target.as_bytes()[..n])?;
    Ok(n as u64)
}

/// faccessat(2)/faccessat2 (and access): root may do anything except
/// execute a file without any execute bit.
pub fn faccessat(dir: u64, path: u64, amode: u64, _flags: u64) -> SysResult {
    if amode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(path)?;
    let base = base_dir(dir, &p)?;
    let st = vfs::with(|fs| {
        let ino = fs.lookup(base, &p, true)?;
        fs.stat(ino)
    })?;
    if amode & 1 != 0 && st.mode & 0o111 == 0 && st.mode & 0o170000 != mode::S_IFDIR {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

/// fchmodat(2) (and chmod).
pub fn fchmodat(dir: u64, path: u64, perm: u64) -> SysResult {
    let p = read_path(path)?;
    let base = base_dir(dir, &p)?;
    vfs::with(|fs| {
        let ino = fs.lookup(base, &p, true)?;
        fs.chmod(ino, perm as u32, now()).map(|_| 0)
    })
}

/// fchmod(2).
pub fn fchmod(fd: u64, perm: u64) -> SysResult {
    let ino = with_file(fd, |f| Ok(f.ino))?;
    vfs::with(|fs| fs.chmod(ino, perm as u32, now()).map(|_| 0))
}

/// ftruncate(2).
pub fn ftruncate(fd: u64, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let (ino, flags) = with_file(fd, |f| Ok((f.ino, f.flags)))?;
    if flags & O_ACCMODE == 0 {
        return Err(Errno::EINVAL);
    }
    vfs::with(|fs| fs.truncate(ino, len, now()).map(|_| 0))
}

/// truncate(2).
pub fn truncate(path: u64, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(path)?;
    vfs::with(|fs| {
        let ino = fs.lookup(ROOT, &p, true)?;
        fs.truncate(ino, len, now()).map(|_| 0)
    })
}

/// fsync(2)/fdatasync(2): the RAM filesystem has nothing to flush.
pub fn fsync(fd: u64) -> SysResult {
    if is_file(fd) || fd <= 2 {
        Ok(0)
    } else {
        Err(Errno::EBADF)
    }
}
