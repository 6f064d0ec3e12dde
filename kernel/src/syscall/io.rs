//! I/O syscalls on file descriptors. Today the only files are the console
//! on fds 0–2; the RAM filesystem will add the rest.

use alloc::vec::Vec;

use kcore::errno::Errno;
use kcore::tty::{Read, TERMIOS_SIZE, Termios};

use super::SysResult;
use crate::console;
use crate::memory::uaccess::{self, UserSlice};
use crate::process::PROCESS;

const O_NONBLOCK: u32 = 0o4000;
const O_APPEND: u32 = 0o2000;
const FD_CLOEXEC: u32 = 1;
/// Largest single transfer (Linux caps at 0x7ffff000).
const MAX_RW: u64 = 0x7fff_f000;
const UIO_MAXIOV: u64 = 1024;

/// The console fd's (fd flags, status flags), or EBADF.
fn console_fd(fd: u64) -> Result<(usize, u32, u32), Errno> {
    let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
    let g = PROCESS.lock();
    let p = g.as_ref().ok_or(Errno::EBADF)?;
    match p.console_fds.get(i).copied().flatten() {
        Some((fdf, sf)) => Ok((i, fdf, sf)),
        None => Err(Errno::EBADF),
    }
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
    let dst = UserSlice::new(buf, count.min(MAX_RW) as usize)?;
    if count == 0 {
        return Ok(0);
    }
    match console::read(dst.len().min(64 * 1024), status & O_NONBLOCK != 0) {
        Ok(Read::Data(d)) => {
            dst.write(&d)?;
            Ok(d.len() as u64)
        }
        Ok(Read::Eof) => Ok(0),
        Ok(Read::WouldBlock) => Err(Errno::EAGAIN),
        Err(sig) => super::signal::deliver_tty_signal(sig),
    }
}

/// write(2).
pub fn write(fd: u64, buf: u64, count: u64) -> SysResult {
    console_fd(fd)?;
    write_console(buf, count)
}

/// read(2).
pub fn read(fd: u64, buf: u64, count: u64) -> SysResult {
    let (_, _, status) = console_fd(fd)?;
    read_console(status, buf, count)
}

fn iovecs(iov: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let raw = UserSlice::new(iov, (cnt * 16) as usize)?.read_vec()?;
    let mut v = Vec::with_capacity(cnt as usize);
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

/// writev(2).
pub fn writev(fd: u64, iov: u64, cnt: u64) -> SysResult {
    console_fd(fd)?;
    let mut total = 0;
    for (base, len) in iovecs(iov, cnt)? {
        match write_console(base, len) {
            Ok(n) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// readv(2): fills the first buffer with what one read returns (the
/// console delivers a line at a time), then the next ones while more is
/// ready.
pub fn readv(fd: u64, iov: u64, cnt: u64) -> SysResult {
    let (_, _, status) = console_fd(fd)?;
    let mut total = 0;
    for (i, (base, len)) in iovecs(iov, cnt)?.into_iter().enumerate() {
        if len == 0 {
            continue;
        }
        if i > 0 && !console::readable() {
            break;
        }
        let n = read_console(if i > 0 { status | O_NONBLOCK } else { status }, base, len);
        match n {
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

/// pread64(2): the console is not seekable.
pub fn pread64(fd: u64) -> SysResult {
    console_fd(fd)?;
    Err(Errno::ESPIPE)
}

/// lseek(2).
pub fn lseek(fd: u64) -> SysResult {
    console_fd(fd)?;
    Err(Errno::ESPIPE)
}

/// close(2).
pub fn close(fd: u64) -> SysResult {
    let (i, _, _) = console_fd(fd)?;
    if let Some(p) = PROCESS.lock().as_mut() {
        p.console_fds[i] = None;
    }
    Ok(0)
}

fn stat_console(buf: u64) -> SysResult {
    let mut st = [0u8; 144];
    let put = |st: &mut [u8; 144], off: usize, v: &[u8]| st[off..off + v.len()].copy_from_slice(v);
    put(&mut st, 0, &0x16u64.to_le_bytes()); // st_dev (devtmpfs-like)
    put(&mut st, 8, &5u64.to_le_bytes()); // st_ino
    put(&mut st, 16, &1u64.to_le_bytes()); // st_nlink
    put(&mut st, 24, &(0o020000u32 | 0o620).to_le_bytes()); // S_IFCHR | rw--w----
    put(&mut st, 40, &((4u64 << 8) | 64).to_le_bytes()); // st_rdev: ttyS0 (4, 64)
    put(&mut st, 56, &1024u64.to_le_bytes()); // st_blksize
    let now = crate::time::realtime_nanos();
    for off in [72, 88, 104] {
        put(&mut st, off, &(now / 1_000_000_000).to_le_bytes());
        put(&mut st, off + 8, &(now % 1_000_000_000).to_le_bytes());
    }
    UserSlice::new(buf, 144)?.write(&st)?;
    Ok(0)
}

/// fstat(2).
pub fn fstat(fd: u64, buf: u64) -> SysResult {
    console_fd(fd)?;
    stat_console(buf)
}

const AT_EMPTY_PATH: u64 = 0x1000;

/// newfstatat(2).
pub fn newfstatat(dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let p = uaccess::read_cstr(path, 4096)?;
    if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        return fstat(dirfd, buf);
    }
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    Err(Errno::ENOENT)
}

const POLLIN: u16 = 0x1;
const POLLOUT: u16 = 0x4;
const POLLNVAL: u16 = 0x20;

/// poll(2).
pub fn poll(fds: u64, nfds: u64, timeout_ms: u64) -> SysResult {
    if nfds > 1024 {
        return Err(Errno::EINVAL);
    }
    let slice = UserSlice::new(fds, (nfds * 8) as usize)?;
    let mut raw = slice.read_vec()?;
    let timeout = timeout_ms as i32;
    let deadline = (timeout > 0).then(|| crate::time::now_nanos() + timeout as u64 * 1_000_000);
    loop {
        let readable = console::readable();
        let mut ready = 0u64;
        for c in raw.as_chunks_mut::<8>().0 {
            let fd = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let events = u16::from_le_bytes([c[4], c[5]]);
            let revents = if fd < 0 {
                0
            } else if console_fd(fd as u64).is_err() {
                POLLNVAL
            } else {
                let mut r = 0;
                if events & POLLIN != 0 && readable {
                    r |= POLLIN;
                }
                if events & POLLOUT != 0 {
                    r |= POLLOUT;
                }
                r
            };
            c[6..8].copy_from_slice(&revents.to_le_bytes());
            if revents != 0 {
                ready += 1;
            }
        }
        let expired = match (timeout, deadline) {
            (0, _) => true,
            (_, Some(d)) => crate::time::now_nanos() >= d,
            _ => false,
        };
        if ready > 0 || expired {
            slice.write(&raw)?;
            return Ok(ready);
        }
        if let Some(sig) = console::take_signal() {
            let _ = super::signal::deliver_tty_signal(sig);
        }
        console::wait_for_input(deadline);
    }
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

/// ioctl(2) on the console.
pub fn ioctl(fd: u64, req: u64, arg: u64) -> SysResult {
    console_fd(fd)?;
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

const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;

/// fcntl(2).
pub fn fcntl(fd: u64, cmd: u64, arg: u64) -> SysResult {
    let (i, fdf, sf) = console_fd(fd)?;
    let mut g = PROCESS.lock();
    let p = g.as_mut().ok_or(Errno::EBADF)?;
    match cmd {
        F_GETFD => Ok(u64::from(fdf)),
        F_SETFD => {
            p.console_fds[i] = Some(((arg as u32) & FD_CLOEXEC, sf));
            Ok(0)
        }
        F_GETFL => Ok(u64::from(sf)),
        F_SETFL => {
            let changeable = O_NONBLOCK | O_APPEND;
            let new = (sf & !changeable) | (arg as u32 & changeable);
            p.console_fds[i] = Some((fdf, new));
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
