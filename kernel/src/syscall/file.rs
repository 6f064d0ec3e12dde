//! Path syscalls on the RAM filesystem: openat (with O_PATH and the
//! generated `/proc` files), stat family and statx, getdents64, mkdirat,
//! unlinkat, renameat2, linkat, symlinkat, readlinkat, faccessat, chmod,
//! chown, utimensat, truncate, fsync, chdir/fchdir/getcwd, statfs.

use alloc::string::String;
use alloc::vec::Vec;

use kcore::errno::Errno;
use llmos_fs::ramfs::{Ino, ROOT, mode};

use super::SysResult;
use super::io::{RAMFS_DEV, stat_bytes, stat_desc};
use crate::fd::{self, Object, OpenFile};
use crate::memory::kalloc;
use crate::memory::uaccess::{self, UserSlice};
use crate::vfs;

const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_NOCTTY: u32 = 0o400;
const O_TRUNC: u32 = 0o1000;
const O_DIRECTORY: u32 = 0o200000;
const O_NOFOLLOW: u32 = 0o400000;
const O_CLOEXEC: u32 = 0o2000000;
const O_PATH: u32 = 0o10000000;
const O_LARGEFILE: u32 = 0o100000;
const O_TMPFILE: u32 = 0o20000000;
const AT_FDCWD: i64 = -100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_NO_AUTOMOUNT: u64 = 0x800;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;

fn now() -> u64 {
    crate::time::realtime_nanos()
}

/// The working directory (an inode held open so it survives rmdir).
static CWD: spin::Mutex<Ino> = spin::Mutex::new(ROOT);

/// The directory a path is resolved against.
fn base_dir(dirfd: u64, path: &str) -> Result<Ino, Errno> {
    if path.starts_with('/') {
        return Ok(ROOT);
    }
    // The descriptor is a C int: only the low 32 bits count.
    if i64::from(dirfd as i32) == AT_FDCWD {
        return Ok(*CWD.lock());
    }
    let d = fd::get(dirfd)?;
    match d.object {
        Object::File(i) | Object::Path(i) => Ok(i),
        _ => Err(Errno::ENOTDIR),
    }
}

/// `path` made absolute against directory `base` (best effort, for logs
/// and /proc/self/maps).
fn absolute(base: Ino, path: &str) -> String {
    if path.starts_with('/') {
        return String::from(path);
    }
    let dir = vfs::with(|fs| fs.dir_path(base)).unwrap_or_default();
    alloc::format!("{}/{path}", dir.trim_end_matches('/'))
}

/// Reads a NUL-terminated path from user memory. `PATH_MAX` counts the
/// NUL (as Linux's `getname` does), so a path may have at most
/// `PATH_MAX - 1` bytes: 4096 without the NUL is ENAMETOOLONG.
fn read_path(addr: u64) -> Result<String, Errno> {
    let bytes = uaccess::read_cstr(addr, llmos_fs::ramfs::PATH_MAX - 1)?;
    String::from_utf8(bytes).map_err(|_| Errno::ENOENT)
}

/// openat(2).
pub fn openat(dirfd: u64, path: u64, flags: u64, perm: u64) -> SysResult {
    let p = read_path(path)?;
    let flags = flags as u32;
    if flags & O_TMPFILE == O_TMPFILE {
        return Err(Errno::ENOTSUP);
    }
    let base = base_dir(dirfd, &p)?;
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    let now = now();
    if flags & O_PATH != 0 {
        let ino = vfs::with(|fs| {
            let ino = fs.lookup(base, &p, flags & O_NOFOLLOW == 0)?;
            if flags & O_DIRECTORY != 0 && fs.stat(ino)?.mode & 0o170000 != mode::S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            fs.open(ino)?;
            Ok(ino)
        })?;
        let d = OpenFile::new(Object::Path(ino), O_PATH | (flags & O_DIRECTORY));
        return fd::install(d, flags & O_CLOEXEC != 0);
    }
    let ino = vfs::with(|fs| {
        let ino = if flags & O_CREAT != 0 {
            fs.create(base, &p, perm as u32 & 0o7777, flags & O_EXCL != 0, now)?
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
        if writing && crate::procfs::is_generated(ino) {
            return Err(Errno::EACCES);
        }
        if flags & O_TRUNC != 0 && writing && kind == mode::S_IFREG {
            owned_copy_room(fs, ino)?;
            fs.truncate(ino, 0, now)?;
        }
        fs.open(ino)?;
        Ok(ino)
    })?;
    // Linux forces O_LARGEFILE on 64-bit (F_GETFL shows it).
    let status = (flags & !(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOCTTY)) | O_LARGEFILE;
    // A generated file is produced whole at open (bounded: the longest,
    // /proc/self/maps, by the number of areas).
    if crate::procfs::is_generated(ino) {
        kalloc::headroom(kalloc::CHUNK)?;
    }
    let d = match crate::procfs::generate(ino) {
        Some(bytes) => {
            vfs::with(|fs| {
                fs.close(ino);
                Ok(())
            })?;
            OpenFile::new(Object::Generated(ino, bytes), status)
        }
        None => OpenFile::named(Object::File(ino), status, absolute(base, &p)),
    };
    fd::install(d, flags & O_CLOEXEC != 0)
}

fn stat_path(dirfd: u64, path: u64, flags: u64) -> Result<(llmos_fs::ramfs::Stat, u64), Errno> {
    let p = read_path(path)?;
    if p.is_empty() {
        if flags & AT_EMPTY_PATH != 0 {
            if i64::from(dirfd as i32) == AT_FDCWD {
                let cwd = *CWD.lock();
                return Ok((vfs::with(|fs| fs.stat(cwd))?, RAMFS_DEV));
            }
            return stat_desc(&fd::get(dirfd)?);
        }
        return Err(Errno::ENOENT);
    }
    let base = base_dir(dirfd, &p)?;
    let st = vfs::with(|fs| {
        let ino = fs.lookup(base, &p, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        fs.stat(ino)
    })?;
    Ok((st, RAMFS_DEV))
}

/// newfstatat(2) (and stat/lstat).
pub fn newfstatat(dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (st, dev) = stat_path(dirfd, path, flags)?;
    UserSlice::new(buf, 144)?.write(&stat_bytes(&st, dev))?;
    Ok(0)
}

/// statx(2): every basic field is filled (STATX_BASIC_STATS), plus the
/// mount id; the birth time is not recorded.
pub fn statx(dirfd: u64, path: u64, flags: u64, _mask: u64, buf: u64) -> SysResult {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
    {
        return Err(Errno::EINVAL);
    }
    let (st, dev) = stat_path(dirfd, path, flags)?;
    const STATX_BASIC_STATS: u32 = 0x7ff;
    const STATX_MNT_ID: u32 = 0x1000;
    let mut b = [0u8; 256];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &(STATX_BASIC_STATS | STATX_MNT_ID).to_le_bytes()); // stx_mask
    put(4, &4096u32.to_le_bytes()); // stx_blksize
    put(16, &st.nlink.to_le_bytes());
    put(28, &(st.mode as u16).to_le_bytes());
    put(32, &st.ino.to_le_bytes());
    put(40, &st.size.to_le_bytes());
    put(48, &st.size.div_ceil(512).to_le_bytes());
    for (off, t) in [(64, st.atime), (96, st.ctime), (112, st.mtime)] {
        put(off, &(t / 1_000_000_000).to_le_bytes());
        put(off + 8, &((t % 1_000_000_000) as u32).to_le_bytes());
    }
    put(128, &st.rdev.0.to_le_bytes());
    put(132, &st.rdev.1.to_le_bytes());
    put(136, &((dev >> 8) as u32).to_le_bytes());
    put(140, &((dev & 0xff) as u32).to_le_bytes());
    put(144, &1u64.to_le_bytes()); // stx_mnt_id
    UserSlice::new(buf, 256)?.write(&b)?;
    Ok(0)
}

/// getdents64(2).
pub fn getdents64(fd: u64, buf: u64, count: u64) -> SysResult {
    let d = fd::get(fd)?;
    let ino = match d.object {
        Object::File(i) => i,
        Object::Path(_) => return Err(Errno::EBADF),
        _ => return Err(Errno::ENOTDIR),
    };
    let (cursor, done) = {
        let s = d.state.lock();
        (s.dir_cursor.clone(), s.dir_done)
    };
    if done {
        return Ok(0);
    }
    // At most what a bounce buffer holds, and only the entries that can
    // fit (each record takes at least 24 bytes).
    let count = count.min(kalloc::CHUNK as u64) as usize;
    kalloc::headroom(count)?;
    let max = count / 24 + 2;
    let entries = vfs::with(|fs| fs.readdir_some(ino, cursor.as_deref(), max))?;
    let mut out: Vec<u8> = kalloc::with_capacity(count)?;
    let mut last = cursor;
    // Fewer than asked for: the listing ends here.
    let mut finished = entries.len() < max;
    for e in &entries {
        let reclen = (19 + e.name.len() + 1).div_ceil(8) * 8;
        if out.len() + reclen > count {
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
    let mut s = d.state.lock();
    s.dir_cursor = last;
    s.dir_done = finished;
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

/// linkat(2) (and link). AT_SYMLINK_FOLLOW is accepted; the link is made
/// to the named inode itself either way unless it is a symlink to follow.
pub fn linkat(olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let o = read_path(old)?;
    let n = read_path(new)?;
    let nb = base_dir(newdir, &n)?;
    if o.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        let ino = fd_inode(olddir)?;
        return vfs::with(|fs| fs.link_inode(ino, nb, &n, now()).map(|_| 0));
    }
    let ob = base_dir(olddir, &o)?;
    vfs::with(|fs| {
        let ino = fs.lookup(ob, &o, flags & AT_SYMLINK_FOLLOW != 0)?;
        fs.link_inode(ino, nb, &n, now()).map(|_| 0)
    })
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
    let target = vfs::with(|fs| fs.readlink(base, p).map(String::from))?;
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

/// The inode behind `fd` for calls that act on the file itself
/// (fchmod, fchown, futimens); O_PATH descriptors are EBADF.
fn fd_inode(fd: u64) -> Result<Ino, Errno> {
    let d = fd::get(fd)?;
    match d.object {
        Object::File(i) | Object::Generated(i, _) => Ok(i),
        Object::Path(_) => Err(Errno::EBADF),
        // Pipes and the console: nothing to change.
        _ => Err(Errno::EPERM),
    }
}

/// fchmod(2).
pub fn fchmod(fd: u64, perm: u64) -> SysResult {
    let ino = fd_inode(fd)?;
    vfs::with(|fs| fs.chmod(ino, perm as u32, now()).map(|_| 0))
}

/// ftruncate(2).
pub fn ftruncate(fd: u64, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let d = fd::get(fd)?;
    let Object::File(ino) = d.object else {
        return Err(Errno::EINVAL);
    };
    if d.flags() & O_ACCMODE == 0 {
        return Err(Errno::EINVAL);
    }
    vfs::with(|fs| {
        owned_copy_room(fs, ino)?;
        fs.truncate(ino, len, now()).map(|_| 0)
    })
}

/// ENOMEM unless the kernel can spare a private copy of `ino` (changing
/// an initrd file copies all of it into the filesystem's own pages).
fn owned_copy_room(fs: &llmos_fs::ramfs::RamFs, ino: Ino) -> Result<(), Errno> {
    kalloc::headroom(fs.borrowed_bytes(ino).map_or(0, <[u8]>::len))
}

/// truncate(2).
pub fn truncate(path: u64, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(path)?;
    let base = base_dir(AT_FDCWD as u64, &p)?;
    vfs::with(|fs| {
        let ino = fs.lookup(base, &p, true)?;
        if fs.stat(ino)?.mode & 0o170000 == mode::S_IFDIR {
            return Err(Errno::EISDIR);
        }
        owned_copy_room(fs, ino)?;
        fs.truncate(ino, len, now()).map(|_| 0)
    })
}

/// fsync(2)/fdatasync(2)/syncfs(2): the RAM filesystem has nothing to
/// flush.
pub fn fsync(fd: u64) -> SysResult {
    fd::get(fd).map(|_| 0)
}

/// fchownat(2) (and chown/lchown): every file belongs to root; changing
/// the owner to root (or -1, "unchanged") is accepted, anything else EPERM
/// would be wrong for a root process, so it is accepted too and not
/// recorded (documented).
pub fn fchownat(dir: u64, path: u64, _uid: u64, _gid: u64, flags: u64) -> SysResult {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    stat_path(dir, path, flags).map(|_| 0)
}

/// fchown(2).
pub fn fchown(fd: u64) -> SysResult {
    fd::get(fd).map(|_| 0)
}

const UTIME_NOW: u64 = (1 << 30) - 1;
const UTIME_OMIT: u64 = (1 << 30) - 2;

/// utimensat(2) (and futimens via a NULL path).
pub fn utimensat(dir: u64, path: u64, times: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let now = now();
    let (atime, mtime) = if times == 0 {
        (Some(now), Some(now))
    } else {
        let mut out = [None, None];
        for (i, o) in out.iter_mut().enumerate() {
            let sec = uaccess::read_u64(times + 16 * i as u64)?;
            let nsec = uaccess::read_u64(times + 16 * i as u64 + 8)?;
            *o = match nsec {
                UTIME_NOW => Some(now),
                UTIME_OMIT => None,
                n if n < 1_000_000_000 && (sec as i64) >= 0 => {
                    Some(sec.saturating_mul(1_000_000_000).saturating_add(n))
                }
                _ => return Err(Errno::EINVAL),
            };
        }
        (out[0], out[1])
    };
    let ino = if path == 0 {
        fd_inode(dir)?
    } else {
        let p = read_path(path)?;
        if p.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return Err(Errno::ENOENT);
            }
            fd_inode(dir)?
        } else {
            let base = base_dir(dir, &p)?;
            vfs::with(|fs| fs.lookup(base, &p, flags & AT_SYMLINK_NOFOLLOW == 0))?
        }
    };
    if atime.is_none() && mtime.is_none() {
        return Ok(0);
    }
    vfs::with(|fs| fs.set_times(ino, atime, mtime, now).map(|_| 0))
}

/// Makes `ino` the working directory.
fn set_cwd(ino: Ino) -> SysResult {
    vfs::with(|fs| {
        if fs.stat(ino)?.mode & 0o170000 != mode::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        fs.open(ino)
    })?;
    let old = core::mem::replace(&mut *CWD.lock(), ino);
    vfs::with(|fs| {
        fs.close(old);
        Ok(0)
    })
}

/// chdir(2).
pub fn chdir(path: u64) -> SysResult {
    let p = read_path(path)?;
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    let base = base_dir(AT_FDCWD as u64, &p)?;
    let ino = vfs::with(|fs| fs.lookup(base, &p, true))?;
    set_cwd(ino)
}

/// fchdir(2).
pub fn fchdir(fd: u64) -> SysResult {
    let d = fd::get(fd)?;
    match d.object {
        Object::File(i) | Object::Path(i) => set_cwd(i),
        _ => Err(Errno::ENOTDIR),
    }
}

/// getcwd(2).
pub fn getcwd(buf: u64, size: u64) -> SysResult {
    let cwd = *CWD.lock();
    let path = vfs::with(|fs| fs.dir_path(cwd))?;
    let n = path.len() + 1;
    if (size as usize) < n {
        return Err(Errno::ERANGE);
    }
    let mut b = path.into_bytes();
    b.push(0);
    UserSlice::new(buf, n)?.write(&b)?;
    Ok(n as u64)
}

/// TMPFS_MAGIC.
const TMPFS_MAGIC: u64 = 0x0102_1994;

fn statfs_bytes() -> Result<[u8; 120], Errno> {
    let (cap, used, inodes) = vfs::with(|fs| Ok((fs.capacity(), fs.used(), fs.inode_count())))?;
    let mut b = [0u8; 120];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    let blocks = cap / 4096;
    let free = cap.saturating_sub(used) / 4096;
    put(0, TMPFS_MAGIC); // f_type
    put(8, 4096); // f_bsize
    put(16, blocks);
    put(24, free); // f_bfree
    put(32, free); // f_bavail
    let files = inodes.max(1 << 20);
    put(40, files);
    put(48, files - inodes);
    put(56, 0); // f_fsid
    put(64, llmos_fs::ramfs::NAME_MAX as u64); // f_namelen
    put(72, 4096); // f_frsize
    put(80, 0x20 | 0x1000); // f_flags: ST_VALID | ST_RELATIME
    Ok(b)
}

/// statfs(2).
pub fn statfs(path: u64, buf: u64) -> SysResult {
    let p = read_path(path)?;
    let base = base_dir(AT_FDCWD as u64, &p)?;
    vfs::with(|fs| fs.lookup(base, &p, true))?;
    UserSlice::new(buf, 120)?.write(&statfs_bytes()?)?;
    Ok(0)
}

/// fstatfs(2).
pub fn fstatfs(fd: u64, buf: u64) -> SysResult {
    fd::get(fd)?;
    UserSlice::new(buf, 120)?.write(&statfs_bytes()?)?;
    Ok(0)
}
