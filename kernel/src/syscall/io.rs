//! I/O syscalls on file descriptors, whatever is behind them (console,
//! RAM-filesystem file, generated `/proc` file, pipe): read/write and their
//! vectored and positioned forms, lseek, close, fstat, poll/ppoll, ioctl,
//! fcntl, dup/dup2/dup3, pipe/pipe2, close_range.

use alloc::vec::Vec;

use kcore::errno::Errno;
use kcore::pipe::Io;
use kcore::tty::{Read, TERMIOS_SIZE, Termios};
use llmos_fs::ramfs::{Stat, mode};

use super::SysResult;
use crate::console;
use crate::fd::{self, Desc, IO, Object, OpenFile};
use crate::memory::kalloc;
use crate::memory::uaccess::{self, UserSlice};
use crate::vfs;

const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_NONBLOCK: u32 = 0o4000;
const O_APPEND: u32 = 0o2000;
const O_CLOEXEC: u64 = 0o2000000;
const FD_CLOEXEC: u64 = 1;
/// Largest single transfer (Linux caps at 0x7ffff000).
const MAX_RW: u64 = 0x7fff_f000;
const UIO_MAXIOV: u64 = 1024;
const SIGPIPE: u64 = 13;

fn now() -> u64 {
    crate::time::realtime_nanos()
}

fn write_console(buf: u64, count: u64) -> SysResult {
    let count = count.min(MAX_RW);
    let mut done = 0u64;
    let mut chunk = [0u8; 4096];
    while done < count {
        let n = (count - done).min(chunk.len() as u64) as usize;
        let s = UserSlice::new(buf + done, n)?;
        if let Err(e) = s.read_into(&mut chunk[..n]) {
            return if done == 0 { Err(e) } else { Ok(done) };
        }
        console::write(&chunk[..n]);
        done += n as u64;
    }
    Ok(done)
}

fn read_console(status: u32, buf: u64, count: u64) -> SysResult {
    let dst = UserSlice::new(buf, count.min(64 * 1024) as usize)?.writable_prefix()?;
    if count == 0 {
        return Ok(0);
    }
    match console::read(dst.len(), status & O_NONBLOCK != 0) {
        Ok(Read::Data(d)) => {
            dst.write(&d)?;
            Ok(d.len() as u64)
        }
        Ok(Read::Eof) => Ok(0),
        Ok(Read::WouldBlock) => Err(Errno::EAGAIN),
        Err(console::Interrupted::Signal(sig)) => super::signal::deliver_tty_signal(sig),
        Err(console::Interrupted::Killed) => Err(Errno::EINTR),
    }
}

/// Waits for the pipe condition `ready`, or fails with EAGAIN
/// (non-blocking) or EINTR (a terminal signal the program ignores).
fn wait_pipe(nonblocking: bool, ready: impl Fn() -> bool) -> Result<(), Errno> {
    if nonblocking {
        return Err(Errno::EAGAIN);
    }
    super::signal::pending()?;
    IO.wait(None, ready);
    Ok(())
}

fn read_pipe(p: &spin::Mutex<kcore::pipe::Pipe>, status: u32, buf: u64, count: u64) -> SysResult {
    let dst =
        UserSlice::new(buf, count.min(kcore::pipe::CAPACITY as u64) as usize)?.writable_prefix()?;
    let mut bounce = kalloc::bounce(dst.len())?;
    loop {
        let r = p.lock().read(&mut bounce[..dst.len()]);
        match r {
            Io::Ready(n) => {
                IO.wake_all();
                dst.write(&bounce[..n])?;
                return Ok(n as u64);
            }
            Io::WouldBlock => wait_pipe(status & O_NONBLOCK != 0, || p.lock().readable())?,
        }
    }
}

/// Writes `data` into the pipe, waiting for room unless non-blocking;
/// returns how much went in (less than all only if waiting was refused).
fn pipe_write_all(p: &spin::Mutex<kcore::pipe::Pipe>, status: u32, data: &[u8]) -> SysResult {
    let mut done = 0usize;
    loop {
        let r = {
            let mut pipe = p.lock();
            if pipe.needs_buffer() {
                kalloc::headroom(kcore::pipe::CAPACITY)?;
            }
            pipe.write(&data[done..])
        };
        match r {
            Err(e) => return if done > 0 { Ok(done as u64) } else { Err(e) },
            Ok(Io::Ready(n)) => {
                done += n;
                IO.wake_all();
                if done == data.len() {
                    return Ok(done as u64);
                }
            }
            Ok(Io::WouldBlock) => {
                if let Err(e) = wait_pipe(status & O_NONBLOCK != 0, || p.lock().writable()) {
                    return if done > 0 { Ok(done as u64) } else { Err(e) };
                }
            }
        }
    }
}

/// write(2) on a pipe: the user's bytes go through a bounce buffer of at
/// most `kalloc::CHUNK`, step by step (atomic up to PIPE_BUF, which fits
/// one step); EPIPE raises SIGPIPE if nothing was written.
fn write_pipe(p: &spin::Mutex<kcore::pipe::Pipe>, status: u32, buf: u64, count: u64) -> SysResult {
    let src = UserSlice::new(buf, count.min(MAX_RW) as usize)?;
    let mut bounce = kalloc::bounce(src.len())?;
    let r = src.read_chunks(&mut bounce, |chunk| {
        pipe_write_all(p, status, chunk).map(|n| n as usize)
    });
    match r {
        Err(Errno::EPIPE) => {
            super::signal::raise(SIGPIPE)?;
            Err(Errno::EPIPE)
        }
        r => r.map(|n| n as u64),
    }
}

/// Reads from a RAM-filesystem inode (or device node) at `at`, through a
/// bounce buffer of at most `kalloc::CHUNK` bytes a step.
fn read_inode(ino: u64, status: u32, buf: u64, count: u64, at: u64) -> SysResult {
    let dst = UserSlice::new(buf, count.min(MAX_RW) as usize)?;
    let dev = device(ino)?;
    match dev {
        Some(vfs::dev::NULL) => return Ok(0),
        Some(vfs::dev::CONSOLE) => return read_console(status, buf, count),
        Some(vfs::dev::ZERO | vfs::dev::URANDOM | vfs::dev::RANDOM) | None => {}
        Some(_) => return Err(Errno::ENXIO),
    }
    if dst.is_empty() {
        return Ok(0);
    }
    let mut bounce = kalloc::bounce(dst.len())?;
    let mut pos = at;
    let got = dst.write_chunks(&mut bounce, |chunk| {
        let n = match dev {
            Some(vfs::dev::ZERO) => {
                chunk.fill(0);
                chunk.len()
            }
            Some(_) => {
                crate::random::fill(chunk);
                chunk.len()
            }
            None => vfs::with(|fs| fs.read(ino, pos, chunk, now()))?,
        };
        pos += n as u64;
        Ok(n)
    })?;
    Ok(got as u64)
}

fn device(ino: u64) -> Result<Option<(u32, u32)>, Errno> {
    let st = vfs::with(|fs| fs.stat(ino))?;
    Ok((st.mode & 0o170000 == mode::S_IFCHR).then_some(st.rdev))
}

/// Reads through a description: at `at`, or at (and advancing) its offset.
pub fn read_desc(d: &OpenFile, buf: u64, count: u64, at: Option<u64>) -> SysResult {
    let status = d.flags();
    if status & O_ACCMODE == O_WRONLY {
        return Err(Errno::EBADF);
    }
    // As Linux's access_ok: the whole range must be user space, before the
    // count is clamped to MAX_RW.
    UserSlice::new(buf, count as usize)?;
    match &d.object {
        Object::Console if at.is_none() => read_console(status, buf, count),
        Object::Socket(id) if at.is_none() => {
            super::net::read_socket(*id, status & O_NONBLOCK != 0, buf, count)
        }
        Object::EventFd(c) if at.is_none() => {
            super::epoll::read_eventfd(c, status & O_NONBLOCK != 0, buf, count)
        }
        Object::EventFd(_) => Err(Errno::ESPIPE),
        Object::Epoll(_) => Err(Errno::EINVAL),
        Object::Socket(_) => Err(Errno::ESPIPE),
        Object::PipeRead(p) if at.is_none() => read_pipe(p, status, buf, count),
        Object::Console | Object::PipeRead(_) => Err(Errno::ESPIPE),
        Object::PipeWrite(_) | Object::Path(_) => Err(Errno::EBADF),
        Object::File(ino) => {
            let pos = at.unwrap_or_else(|| d.state.lock().offset);
            if vfs::with(|fs| fs.stat(*ino))?.mode & 0o170000 == mode::S_IFDIR {
                return Err(Errno::EISDIR);
            }
            let got = read_inode(*ino, status, buf, count, pos)?;
            if at.is_none() {
                d.state.lock().offset = pos + got;
            }
            Ok(got)
        }
        Object::Generated(_, bytes) => {
            let pos = at.unwrap_or_else(|| d.state.lock().offset);
            let start = (pos.min(bytes.len() as u64)) as usize;
            let n = (bytes.len() - start).min(count.min(MAX_RW) as usize);
            let n = if n == 0 {
                0
            } else {
                UserSlice::new(buf, n)?.write_prefix(&bytes[start..start + n])?
            };
            if at.is_none() {
                d.state.lock().offset = pos + n as u64;
            }
            Ok(n as u64)
        }
    }
}

/// Writes through a description.
pub fn write_desc(d: &OpenFile, buf: u64, count: u64, at: Option<u64>) -> SysResult {
    let status = d.flags();
    if status & O_ACCMODE == 0 {
        return Err(Errno::EBADF);
    }
    UserSlice::new(buf, count as usize)?;
    match &d.object {
        Object::Console if at.is_none() => write_console(buf, count),
        Object::Socket(id) if at.is_none() => {
            super::net::write_socket(*id, status & O_NONBLOCK != 0, buf, count)
        }
        Object::EventFd(c) if at.is_none() => {
            super::epoll::write_eventfd(c, status & O_NONBLOCK != 0, buf, count)
        }
        Object::EventFd(_) => Err(Errno::ESPIPE),
        Object::Epoll(_) => Err(Errno::EINVAL),
        Object::Socket(_) => Err(Errno::ESPIPE),
        Object::PipeWrite(p) if at.is_none() => write_pipe(p, status, buf, count),
        Object::Console | Object::PipeWrite(_) => Err(Errno::ESPIPE),
        Object::PipeRead(_) | Object::Path(_) | Object::Generated(..) => Err(Errno::EBADF),
        Object::File(ino) => {
            let ino = *ino;
            if let Some(dev) = device(ino)? {
                return match dev {
                    vfs::dev::NULL | vfs::dev::ZERO | vfs::dev::URANDOM | vfs::dev::RANDOM => {
                        UserSlice::new(buf, count.min(MAX_RW) as usize)?;
                        Ok(count.min(MAX_RW))
                    }
                    vfs::dev::CONSOLE => write_console(buf, count),
                    _ => Err(Errno::ENXIO),
                };
            }
            // A first write to an initrd file copies all of it.
            let copy = vfs::with(|fs| Ok(fs.borrowed_bytes(ino).map_or(0, <[u8]>::len)))?;
            let src = UserSlice::new(buf, count.min(MAX_RW) as usize)?;
            let mut bounce = kalloc::bounce(src.len())?;
            let mut total = 0u64;
            let r = src.read_chunks(&mut bounce, |data| {
                kalloc::headroom(data.len() + if total == 0 { copy } else { 0 })?;
                let offset = match at {
                    Some(o) => o + total,
                    None if status & O_APPEND != 0 => vfs::with(|fs| fs.stat(ino))?.size,
                    None => d.state.lock().offset,
                };
                let wrote = vfs::with(|fs| fs.write(ino, offset, data, now()))?;
                if at.is_none() {
                    d.state.lock().offset = offset + wrote as u64;
                }
                total += wrote as u64;
                Ok(wrote)
            });
            r.map(|n| n as u64)
        }
    }
}

/// read(2).
pub fn read(fd: u64, buf: u64, count: u64) -> SysResult {
    read_desc(&*fd::get(fd)?, buf, count, None)
}

/// write(2).
pub fn write(fd: u64, buf: u64, count: u64) -> SysResult {
    write_desc(&*fd::get(fd)?, buf, count, None)
}

fn offset_arg(off: u64) -> Result<u64, Errno> {
    if (off as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(off)
}

/// pread64(2).
pub fn pread64(fd: u64, buf: u64, count: u64, off: u64) -> SysResult {
    let d = fd::get(fd)?;
    read_desc(&d, buf, count, Some(offset_arg(off)?))
}

/// pwrite64(2).
pub fn pwrite64(fd: u64, buf: u64, count: u64, off: u64) -> SysResult {
    let d = fd::get(fd)?;
    write_desc(&d, buf, count, Some(offset_arg(off)?))
}

fn iovecs(iov: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let raw = UserSlice::new(iov, (cnt * 16) as usize)?.read_vec()?;
    let mut v = kalloc::with_capacity(cnt as usize)?;
    let mut total = 0u64;
    for c in raw.as_chunks::<16>().0 {
        let base = u64::from_le_bytes(c[..8].try_into().map_err(|_| Errno::EFAULT)?);
        let len = u64::from_le_bytes(c[8..].try_into().map_err(|_| Errno::EFAULT)?);
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        if len > i64::MAX as u64 || total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push((base, len));
    }
    Ok(v)
}

/// Whether more can be read from `d` without blocking (readv goes on to
/// the next buffer only then).
fn more_ready(d: &OpenFile) -> bool {
    match &d.object {
        Object::Console => console::readable(),
        Object::PipeRead(p) => !p.lock().is_empty(),
        _ => true,
    }
}

/// readv(2)/preadv(2) (`read`) and writev(2)/pwritev(2): buffers in
/// order, stopping at a short transfer; a readv goes on to the next
/// buffer only if more is ready.
fn vectored(fd: u64, iov: u64, cnt: u64, at: Option<u64>, read: bool) -> SysResult {
    let d = fd::get(fd)?;
    let mut total = 0;
    for (i, (base, len)) in iovecs(iov, cnt)?.into_iter().enumerate() {
        if read && len == 0 {
            continue;
        }
        if read && i > 0 && !more_ready(&d) {
            break;
        }
        let pos = at.map(|o| o + total);
        let r = if read {
            read_desc(&d, base, len, pos)
        } else {
            write_desc(&d, base, len, pos)
        };
        match r {
            Ok(n) => {
                total += n;
                if n < len {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

fn readv_impl(fd: u64, iov: u64, cnt: u64, at: Option<u64>) -> SysResult {
    vectored(fd, iov, cnt, at, true)
}

fn writev_impl(fd: u64, iov: u64, cnt: u64, at: Option<u64>) -> SysResult {
    vectored(fd, iov, cnt, at, false)
}

/// readv(2).
pub fn readv(fd: u64, iov: u64, cnt: u64) -> SysResult {
    readv_impl(fd, iov, cnt, None)
}

/// writev(2).
pub fn writev(fd: u64, iov: u64, cnt: u64) -> SysResult {
    writev_impl(fd, iov, cnt, None)
}

/// preadv(2)/preadv2 (offset -1 on preadv2 means the file position).
pub fn preadv(fd: u64, iov: u64, cnt: u64, off: u64) -> SysResult {
    if off as i64 == -1 {
        return readv_impl(fd, iov, cnt, None);
    }
    readv_impl(fd, iov, cnt, Some(offset_arg(off)?))
}

/// pwritev(2)/pwritev2.
pub fn pwritev(fd: u64, iov: u64, cnt: u64, off: u64) -> SysResult {
    if off as i64 == -1 {
        return writev_impl(fd, iov, cnt, None);
    }
    writev_impl(fd, iov, cnt, Some(offset_arg(off)?))
}

const SEEK_SET: u64 = 0;
const SEEK_CUR: u64 = 1;
const SEEK_END: u64 = 2;
const SEEK_DATA: u64 = 3;
const SEEK_HOLE: u64 = 4;

/// lseek(2), with SEEK_DATA/SEEK_HOLE (a file is one data extent followed
/// by the hole at its end, as tmpfs reports for files without holes).
pub fn lseek(fd: u64, off: u64, whence: u64) -> SysResult {
    let d = fd::get(fd)?;
    let size = match &d.object {
        Object::Console
        | Object::PipeRead(_)
        | Object::PipeWrite(_)
        | Object::Socket(_)
        | Object::Epoll(_)
        | Object::EventFd(_) => {
            return Err(Errno::ESPIPE);
        }
        Object::Path(_) => return Err(Errno::EBADF),
        Object::Generated(_, b) => b.len() as i64,
        Object::File(ino) => {
            let st = vfs::with(|fs| fs.stat(*ino))?;
            if st.mode & 0o170000 == mode::S_IFCHR {
                // Devices: the position is accepted and meaningless.
                return Ok(0);
            }
            st.size as i64
        }
    };
    let mut s = d.state.lock();
    let off = off as i64;
    let new = match whence {
        SEEK_SET => off,
        SEEK_CUR => (s.offset as i64).checked_add(off).ok_or(Errno::EOVERFLOW)?,
        SEEK_END => size.checked_add(off).ok_or(Errno::EOVERFLOW)?,
        SEEK_DATA | SEEK_HOLE => {
            if off < 0 || off >= size {
                return Err(Errno::ENXIO);
            }
            if whence == SEEK_DATA { off } else { size }
        }
        _ => return Err(Errno::EINVAL),
    };
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    s.offset = new as u64;
    if new == 0 {
        s.dir_cursor = None;
        s.dir_done = false;
    }
    Ok(new as u64)
}

/// close(2).
pub fn close(fd: u64) -> SysResult {
    fd::close(fd)
}

/// close_range(2): CLOSE_RANGE_CLOEXEC (4) marks instead of closing;
/// CLOSE_RANGE_UNSHARE (2) is accepted (the table is never shared).
pub fn close_range(first: u64, last: u64, flags: u64) -> SysResult {
    if flags & !6 != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let (first, last) = (
        first.min(i32::MAX as u64) as i32,
        last.min(i32::MAX as u64) as i32,
    );
    if flags & 4 != 0 {
        fd::with_table(|t| {
            t.cloexec_range(first, last);
            Ok(0)
        })
    } else {
        let closed = fd::with_table(|t| Ok(t.remove_range(first, last)))?;
        drop(closed);
        Ok(0)
    }
}

/// Device number of pipes (pipefs).
const PIPE_DEV: u64 = 0xc;
/// Device number of anonymous inodes (epoll, eventfd).
const ANON_DEV: u64 = 0xe;
/// Device number of sockets (sockfs).
const SOCK_DEV: u64 = 0x8;
/// Device number of the console's filesystem (devtmpfs).
const CONSOLE_DEV: u64 = 0x16;
/// Device number of the RAM filesystem.
pub const RAMFS_DEV: u64 = 0x1e;

/// `stat` of whatever a description refers to, and its device number.
pub fn stat_desc(d: &Desc) -> Result<(Stat, u64), Errno> {
    let synthetic = |ino: u64, mode: u32, rdev: (u32, u32)| {
        let t = now();
        Stat {
            ino,
            mode,
            nlink: 1,
            size: 0,
            rdev,
            atime: t,
            mtime: t,
            ctime: t,
        }
    };
    match &d.object {
        Object::Console => Ok((synthetic(5, mode::S_IFCHR | 0o620, (4, 64)), CONSOLE_DEV)),
        Object::Socket(id) => Ok((
            synthetic(u64::from(*id), 0o140000 | 0o777, (0, 0)),
            SOCK_DEV,
        )),
        // Anonymous inodes (anon_inodefs), mode 0600 and no file type, as
        // on Linux.
        Object::Epoll(e) => Ok((
            synthetic(alloc::sync::Arc::as_ptr(e) as u64 >> 4, 0o600, (0, 0)),
            ANON_DEV,
        )),
        Object::EventFd(e) => Ok((
            synthetic(alloc::sync::Arc::as_ptr(e) as u64 >> 4, 0o600, (0, 0)),
            ANON_DEV,
        )),
        Object::PipeRead(p) | Object::PipeWrite(p) => {
            // A stable number per pipe: its buffer's address.
            let ino = alloc::sync::Arc::as_ptr(p) as u64 >> 4;
            Ok((synthetic(ino, 0o010000 | 0o600, (0, 0)), PIPE_DEV))
        }
        Object::File(ino) | Object::Path(ino) | Object::Generated(ino, _) => {
            Ok((vfs::with(|fs| fs.stat(*ino))?, RAMFS_DEV))
        }
    }
}

/// Fills a `struct stat`.
pub fn stat_bytes(st: &Stat, dev: u64) -> [u8; 144] {
    let mut b = [0u8; 144];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &dev.to_le_bytes());
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

/// fstat(2).
pub fn fstat(fd: u64, buf: u64) -> SysResult {
    let (st, dev) = stat_desc(&fd::get(fd)?)?;
    UserSlice::new(buf, 144)?.write(&stat_bytes(&st, dev))?;
    Ok(0)
}

const POLLIN: u16 = 0x1;
const POLLOUT: u16 = 0x4;
const POLLERR: u16 = 0x8;
const POLLHUP: u16 = 0x10;
const POLLNVAL: u16 = 0x20;
const POLLRDNORM: u16 = 0x40;
const POLLWRNORM: u16 = 0x100;

/// The poll events ready on `fd` now (POLLNVAL if it is not open).
pub fn poll_events(fd: i32, events: u16) -> u16 {
    let Ok(d) = fd::get(fd as u64) else {
        return POLLNVAL;
    };
    let inp = events & (POLLIN | POLLRDNORM);
    let out = events & (POLLOUT | POLLWRNORM);
    match &d.object {
        Object::Console => (if console::readable() { inp } else { 0 }) | out,
        Object::PipeRead(p) => {
            let p = p.lock();
            let mut r = if p.is_empty() { 0 } else { inp };
            if p.writers == 0 {
                r |= POLLHUP;
            }
            r
        }
        Object::PipeWrite(p) => {
            let p = p.lock();
            if p.readers == 0 {
                POLLERR
            } else if p.writable() {
                out
            } else {
                0
            }
        }
        Object::Path(_) => POLLNVAL,
        Object::EventFd(c) => {
            let v = c.lock().0;
            (if v > 0 { inp } else { 0 }) | (if v < u64::MAX - 1 { out } else { 0 })
        }
        // Nested epoll readiness is not tracked: never ready.
        Object::Epoll(_) => 0,
        Object::Socket(id) => {
            let r = super::net::ready(*id);
            let mut ev = 0;
            if r.read {
                ev |= inp;
            }
            if r.write {
                ev |= out;
            }
            if r.hangup {
                ev |= POLLHUP;
            }
            if r.error {
                ev |= POLLERR;
            }
            ev
        }
        Object::File(_) | Object::Generated(..) => inp | out,
    }
}

/// Polls `fds` until one is ready or the monotonic `deadline` (`None`:
/// forever) passes; returns how many are ready.
fn poll_until(fds: u64, nfds: u64, deadline: Option<u64>) -> SysResult {
    if nfds > fd::DEFAULT_LIMIT as u64 * 16 {
        return Err(Errno::EINVAL);
    }
    let slice = UserSlice::new(fds, (nfds * 8) as usize)?;
    let mut raw = slice.read_vec()?;
    // The wait's own copy, so a wakeup check does not touch `raw`.
    let mut probe = kalloc::zeroed(raw.len())?;
    let scan = |raw: &mut [u8]| {
        let mut ready = 0u64;
        for c in raw.as_chunks_mut::<8>().0 {
            let fd = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let events = u16::from_le_bytes([c[4], c[5]]);
            let revents = if fd < 0 { 0 } else { poll_events(fd, events) };
            c[6..8].copy_from_slice(&revents.to_le_bytes());
            if revents != 0 {
                ready += 1;
            }
        }
        ready
    };
    loop {
        let ready = scan(&mut raw);
        let expired = deadline.is_some_and(|d| crate::time::now_nanos() >= d);
        if ready > 0 || expired {
            slice.write(&raw)?;
            return Ok(ready);
        }
        super::signal::pending()?;
        probe.copy_from_slice(&raw);
        let probe = spin::Mutex::new(&mut probe[..]);
        IO.wait(deadline, || scan(&mut probe.lock()) > 0);
    }
}

/// The monotonic deadline a user `timespec` (`unit_ns` = 1) or `timeval`
/// (`unit_ns` = 1000) at `addr` describes from now; `None` for a NULL
/// pointer (wait forever). Negative or out-of-range fields are EINVAL.
pub fn deadline_after(addr: u64, unit_ns: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let secs = uaccess::read_u64(addr)?;
    let sub = uaccess::read_u64(addr + 8)?;
    if (secs as i64) < 0 || sub.saturating_mul(unit_ns) >= 1_000_000_000 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(
        crate::time::now_nanos()
            .saturating_add(secs.saturating_mul(1_000_000_000))
            .saturating_add(sub * unit_ns),
    ))
}

/// poll(2).
pub fn poll(fds: u64, nfds: u64, timeout_ms: u64) -> SysResult {
    let timeout = timeout_ms as i32;
    let deadline = match timeout {
        t if t < 0 => None,
        t => Some(crate::time::now_nanos() + t as u64 * 1_000_000),
    };
    poll_until(fds, nfds, deadline)
}

/// ppoll(2) (the signal mask is ignored: no handlers run yet).
pub fn ppoll(fds: u64, nfds: u64, tsp: u64, _sigmask: u64) -> SysResult {
    let deadline = deadline_after(tsp, 1)?;
    poll_until(fds, nfds, deadline)
}

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const FIONBIO: u64 = 0x5421;
const FIOCLEX: u64 = 0x5451;
const FIONCLEX: u64 = 0x5450;

/// ioctl(2): terminal requests on the console, FIONREAD on pipes and
/// files, FIONBIO/FIOCLEX/FIONCLEX on anything.
pub fn ioctl(fd: u64, req: u64, arg: u64) -> SysResult {
    let d = fd::get(fd)?;
    match req {
        FIONBIO => {
            let mut b = [0u8; 4];
            UserSlice::new(arg, 4)?.read_into(&mut b)?;
            let on = u32::from_le_bytes(b) != 0;
            let mut s = d.state.lock();
            s.flags = if on {
                s.flags | O_NONBLOCK
            } else {
                s.flags & !O_NONBLOCK
            };
            return Ok(0);
        }
        FIOCLEX | FIONCLEX => {
            fd::with_table(|t| t.set_cloexec(fd as i32, req == FIOCLEX))?;
            return Ok(0);
        }
        _ => {}
    }
    match &d.object {
        Object::Console => console_ioctl(req, arg),
        Object::PipeRead(p) if req == FIONREAD => {
            let n = p.lock().len() as u32;
            uaccess::write_u32(arg, n)?;
            Ok(0)
        }
        Object::Socket(id) if req == FIONREAD => {
            uaccess::write_u32(arg, super::net::pending(*id).min(u32::MAX as usize) as u32)?;
            Ok(0)
        }
        Object::File(ino) if req == FIONREAD => {
            let size = vfs::with(|fs| fs.stat(*ino))?.size;
            let pos = d.state.lock().offset;
            uaccess::write_u32(arg, size.saturating_sub(pos).min(u32::MAX as u64) as u32)?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

fn console_ioctl(req: u64, arg: u64) -> SysResult {
    match req {
        TCGETS => {
            let t = console::with_tty(|t| t.termios).unwrap_or_default();
            UserSlice::new(arg, TERMIOS_SIZE)?.write(&t.to_bytes())?;
            Ok(0)
        }
        TCSETS | TCSETSW | TCSETSF => {
            let mut b = [0u8; TERMIOS_SIZE];
            UserSlice::new(arg, TERMIOS_SIZE)?.read_into(&mut b)?;
            let t = Termios::from_bytes(&b);
            console::with_tty(|tty| {
                tty.termios = t;
                if req == TCSETSF {
                    while let Read::Data(d) = tty.read(4096) {
                        if d.is_empty() {
                            break;
                        }
                    }
                }
            });
            Ok(0)
        }
        TIOCGWINSZ => {
            let (rows, cols) = console::with_tty(|t| t.winsize).unwrap_or((24, 80));
            let mut b = [0u8; 8];
            b[0..2].copy_from_slice(&rows.to_le_bytes());
            b[2..4].copy_from_slice(&cols.to_le_bytes());
            UserSlice::new(arg, 8)?.write(&b)?;
            Ok(0)
        }
        TIOCSWINSZ => {
            let mut b = [0u8; 8];
            UserSlice::new(arg, 8)?.read_into(&mut b)?;
            let ws = (
                u16::from_le_bytes([b[0], b[1]]),
                u16::from_le_bytes([b[2], b[3]]),
            );
            console::with_tty(|t| t.winsize = ws);
            Ok(0)
        }
        FIONREAD => {
            let n = console::with_tty(|t| t.readable()).unwrap_or(0) as u32;
            uaccess::write_u32(arg, n)?;
            Ok(0)
        }
        TIOCGPGRP => {
            uaccess::write_u32(arg, 1)?;
            Ok(0)
        }
        TIOCSPGRP => Ok(0),
        _ => Err(Errno::ENOTTY),
    }
}

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
const F_GETLK: u64 = 5;
const F_SETLK: u64 = 6;
const F_SETLKW: u64 = 7;
const F_OFD_GETLK: u64 = 36;
const F_OFD_SETLK: u64 = 37;
const F_OFD_SETLKW: u64 = 38;
const F_DUPFD_CLOEXEC: u64 = 1030;
const F_SETPIPE_SZ: u64 = 1031;
const F_GETPIPE_SZ: u64 = 1032;
const F_UNLCK: u16 = 2;

/// fcntl(2). Advisory record locks are always granted: one process owns
/// every file, so no lock can conflict (F_GETLK reports F_UNLCK).
pub fn fcntl(fd: u64, cmd: u64, arg: u64) -> SysResult {
    let d = fd::get(fd)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let floor = i32::try_from(arg).map_err(|_| Errno::EINVAL)?;
            let r = fd::with_table(|t| t.insert_from(floor, d.clone(), cmd == F_DUPFD_CLOEXEC));
            drop(d);
            r.map(|n| n as u64)
        }
        F_GETFD => fd::with_table(|t| Ok(u64::from(t.get(fd as i32)?.cloexec))),
        F_SETFD => fd::with_table(|t| t.set_cloexec(fd as i32, arg & FD_CLOEXEC != 0)).map(|_| 0),
        F_GETFL => Ok(u64::from(d.flags())),
        F_SETFL => {
            let changeable = O_NONBLOCK | O_APPEND;
            let mut s = d.state.lock();
            s.flags = (s.flags & !changeable) | (arg as u32 & changeable);
            Ok(0)
        }
        F_GETLK | F_OFD_GETLK => {
            if matches!(d.object, Object::Path(_)) {
                return Err(Errno::EBADF);
            }
            // struct flock starts with the 16-bit l_type.
            let mut b = [0u8; 2];
            UserSlice::new(arg, 2)?.read_into(&mut b)?;
            UserSlice::new(arg, 2)?.write(&F_UNLCK.to_le_bytes())?;
            Ok(0)
        }
        F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            if matches!(d.object, Object::Path(_)) {
                return Err(Errno::EBADF);
            }
            let mut b = [0u8; 2];
            UserSlice::new(arg, 2)?.read_into(&mut b)?;
            if u16::from_le_bytes(b) > 2 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        F_GETPIPE_SZ | F_SETPIPE_SZ => match d.object {
            Object::PipeRead(_) | Object::PipeWrite(_) => Ok(kcore::pipe::CAPACITY as u64),
            _ => Err(Errno::EBADF),
        },
        _ => Err(Errno::EINVAL),
    }
}

/// flock(2): always granted (see [`fcntl`]).
pub fn flock(fd: u64, op: u64) -> SysResult {
    fd::get(fd)?;
    // LOCK_SH 1, LOCK_EX 2, LOCK_UN 8, optionally | LOCK_NB 4.
    match op & !4 {
        1 | 2 | 8 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// dup(2).
pub fn dup(fd: u64) -> SysResult {
    fd::with_table(|t| t.dup(fd as i32)).map(|n| n as u64)
}

/// dup2(2): `old == new` only checks `old`.
pub fn dup2(old: u64, new: u64) -> SysResult {
    if old as i32 == new as i32 {
        fd::get(old)?;
        return Ok(new as i32 as u64);
    }
    dup3(old, new, 0)
}

/// dup3(2).
pub fn dup3(old: u64, new: u64, flags: u64) -> SysResult {
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let replaced = fd::with_table(|t| t.dup_to(old as i32, new as i32, flags != 0))?;
    drop(replaced);
    Ok(new as i32 as u64)
}

/// pipe2(2) (and pipe): O_CLOEXEC and O_NONBLOCK; O_DIRECT is EINVAL.
pub fn pipe2(fds: u64, flags: u64) -> SysResult {
    if flags & !(O_CLOEXEC | u64::from(O_NONBLOCK)) != 0 {
        return Err(Errno::EINVAL);
    }
    let out = UserSlice::new(fds, 8)?;
    let p = alloc::sync::Arc::new(spin::Mutex::new(kcore::pipe::Pipe::new()));
    let nb = flags as u32 & O_NONBLOCK;
    let cloexec = flags & O_CLOEXEC != 0;
    let r = OpenFile::new(Object::PipeRead(p.clone()), nb);
    let w = OpenFile::new(Object::PipeWrite(p), O_WRONLY | nb);
    let rfd = fd::install(r, cloexec)?;
    let wfd = match fd::install(w, cloexec) {
        Ok(n) => n,
        Err(e) => {
            let _ = fd::close(rfd);
            return Err(e);
        }
    };
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&(rfd as i32).to_le_bytes());
    b[4..].copy_from_slice(&(wfd as i32).to_le_bytes());
    if let Err(e) = out.write(&b) {
        let _ = fd::close(rfd);
        let _ = fd::close(wfd);
        return Err(e);
    }
    Ok(0)
}

/// Reads an `fd_set` of `nfds` bits (none if `addr` is 0).
fn read_fdset(addr: u64, nfds: usize) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let bytes = nfds.div_ceil(64) * 8;
    Ok(Some(UserSlice::new(addr, bytes)?.read_vec()?))
}

fn bit(set: &Option<Vec<u8>>, fd: usize) -> bool {
    set.as_ref()
        .is_some_and(|s| s[fd / 8] & (1 << (fd % 8)) != 0)
}

/// select(2)/pselect6(2) core: waits until a descriptor in the sets is
/// ready or `deadline` passes; rewrites the sets with the ready ones.
fn select_until(nfds: u64, rp: u64, wp: u64, ep: u64, deadline: Option<u64>) -> SysResult {
    let limit = fd::with_table(|t| Ok(t.limit()))? as u64;
    if (nfds as i32) < 0 || nfds > limit.max(1024) {
        return Err(Errno::EINVAL);
    }
    let n = nfds as usize;
    let (r, w, e) = (read_fdset(rp, n)?, read_fdset(wp, n)?, read_fdset(ep, n)?);
    loop {
        let generation = fd::io_generation();
        let bytes = n.div_ceil(64) * 8;
        let (mut ro, mut wo, mut eo) = (
            kalloc::zeroed(bytes)?,
            kalloc::zeroed(bytes)?,
            kalloc::zeroed(bytes)?,
        );
        let mut count = 0u64;
        for fd in 0..n {
            let (want_r, want_w, want_e) = (bit(&r, fd), bit(&w, fd), bit(&e, fd));
            if !(want_r || want_w || want_e) {
                continue;
            }
            let ev = poll_events(fd as i32, POLLIN | POLLOUT | 0x2);
            if ev & POLLNVAL != 0 {
                return Err(Errno::EBADF);
            }
            let mark = |set: &mut Vec<u8>, count: &mut u64| {
                set[fd / 8] |= 1 << (fd % 8);
                *count += 1;
            };
            if want_r && ev & (POLLIN | POLLHUP | POLLERR) != 0 {
                mark(&mut ro, &mut count);
            }
            if want_w && ev & (POLLOUT | POLLERR) != 0 {
                mark(&mut wo, &mut count);
            }
            if want_e && ev & 0x2 != 0 {
                mark(&mut eo, &mut count);
            }
        }
        let expired = deadline.is_some_and(|d| crate::time::now_nanos() >= d);
        if count > 0 || expired {
            for (addr, set) in [(rp, &ro), (wp, &wo), (ep, &eo)] {
                if addr != 0 {
                    UserSlice::new(addr, set.len())?.write(set)?;
                }
            }
            return Ok(count);
        }
        super::signal::pending()?;
        IO.wait(deadline, || fd::io_generation() != generation);
    }
}

/// select(2): a `timeval` timeout (NULL: forever), updated with the time
/// left as Linux does.
pub fn select(nfds: u64, rp: u64, wp: u64, ep: u64, tvp: u64) -> SysResult {
    let deadline = deadline_after(tvp, 1000)?;
    let r = select_until(nfds, rp, wp, ep, deadline);
    if let Some(d) = deadline {
        let left = d.saturating_sub(crate::time::now_nanos());
        let _ = uaccess::write_u64(tvp, left / 1_000_000_000);
        let _ = uaccess::write_u64(tvp + 8, (left % 1_000_000_000) / 1000);
    }
    r
}

/// pselect6(2): a `timespec` timeout; the signal mask is ignored.
pub fn pselect6(nfds: u64, rp: u64, wp: u64, ep: u64, tsp: u64) -> SysResult {
    let deadline = deadline_after(tsp, 1)?;
    select_until(nfds, rp, wp, ep, deadline)
}
