//! epoll (create, ctl, wait/pwait/pwait2) and eventfd, on top of the
//! descriptor layer's readiness (`io::poll_events`) and the I/O wait
//! queue. Interest-list logic is `kcore::epoll`.

use alloc::sync::Arc;

use kcore::epoll::{Interest, ev};
use kcore::errno::Errno;
use spin::Mutex;

use super::SysResult;
use super::io::poll_events;
use crate::fd::{self, IO, Object, OpenFile};
use crate::memory::uaccess::{self, UserSlice};

const O_CLOEXEC: u64 = 0o2000000;
const O_NONBLOCK: u64 = 0o4000;
const O_RDWR: u32 = 2;
const EFD_SEMAPHORE: u64 = 1;
/// Most events one epoll_wait returns (Linux: INT_MAX / 12).
const MAX_EVENTS: u64 = 0x0aaa_aaaa;

/// epoll_create1(2) (and epoll_create, whose size must be positive).
pub fn epoll_create1(flags: u64) -> SysResult {
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let obj = Object::Epoll(Arc::new(Mutex::new(Interest::new())));
    fd::install(OpenFile::new(obj, O_RDWR), flags != 0)
}

/// epoll_create(2).
pub fn epoll_create(size: u64) -> SysResult {
    if size as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    epoll_create1(0)
}

fn interest(epfd: u64) -> Result<Arc<Mutex<Interest<usize>>>, Errno> {
    match &fd::get(epfd)?.object {
        Object::Epoll(i) => Ok(i.clone()),
        _ => Err(Errno::EINVAL),
    }
}

/// epoll_ctl(2).
pub fn epoll_ctl(epfd: u64, op: u64, fd_: u64, event: u64) -> SysResult {
    let set = interest(epfd)?;
    let target = fd::get(fd_)?;
    if epfd as i32 == fd_ as i32 {
        return Err(Errno::EINVAL);
    }
    match target.object {
        // Regular files and directories are always ready: Linux refuses them.
        Object::File(_) | Object::Generated(..) | Object::Path(_) => return Err(Errno::EPERM),
        Object::Epoll(ref inner) if Arc::ptr_eq(inner, &set) => return Err(Errno::EINVAL),
        _ => {}
    }
    let op = op as u32;
    let (events, data) = if op == kcore::epoll::op::DEL {
        (0, 0)
    } else {
        let mut b = [0u8; 12];
        UserSlice::new(event, 12)?.read_into(&mut b)?;
        (
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u64::from_le_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]),
        )
    };
    let key = Arc::as_ptr(&target) as usize;
    drop(target);
    if op == kcore::epoll::op::ADD {
        // Each registration costs kernel memory; a program cannot make
        // the kernel spend what it cannot spare (Linux: ENOMEM).
        crate::memory::kalloc::headroom(256)?;
    }
    set.lock().ctl(op, fd_ as i32, key, events, data)?;
    Ok(0)
}

/// Readiness of descriptor `fd` if it still names the open file `key`.
fn readiness(fd_: i32, key: &usize) -> Option<u32> {
    let d = fd::get(fd_ as u64).ok()?;
    if Arc::as_ptr(&d) as usize != *key {
        return None;
    }
    drop(d);
    let r = u32::from(poll_events(fd_, (ev::IN | ev::OUT | ev::PRI) as u16));
    // POLLNVAL: closed in between.
    if r & 0x20 != 0 { None } else { Some(r) }
}

/// Waits until events are ready or the monotonic `deadline` passes.
fn wait_impl(epfd: u64, events: u64, max: u64, deadline: Option<u64>) -> SysResult {
    if max == 0 || max > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let set = interest(epfd)?;
    let out = UserSlice::new(events, (max * 12) as usize)?;
    loop {
        let generation = fd::io_generation();
        let ready = set.lock().collect(generation, max as usize, readiness);
        let expired = deadline.is_some_and(|d| crate::time::now_nanos() >= d);
        if !ready.is_empty() || expired {
            let mut b = crate::memory::kalloc::with_capacity(ready.len() * 12)?;
            for (e, data) in &ready {
                b.extend_from_slice(&e.to_le_bytes());
                b.extend_from_slice(&data.to_le_bytes());
            }
            UserSlice::new(out.addr(), b.len())?.write(&b)?;
            return Ok(ready.len() as u64);
        }
        super::signal::pending()?;
        IO.wait(deadline, || fd::io_generation() != generation);
    }
}

fn deadline_ms(timeout_ms: u64) -> Option<u64> {
    let t = timeout_ms as i32;
    (t >= 0).then(|| crate::time::now_nanos() + t as u64 * 1_000_000)
}

/// epoll_wait(2).
pub fn epoll_wait(epfd: u64, events: u64, max: u64, timeout_ms: u64) -> SysResult {
    wait_impl(epfd, events, max, deadline_ms(timeout_ms))
}

/// epoll_pwait(2): the signal mask is ignored (no handlers run yet).
pub fn epoll_pwait(epfd: u64, events: u64, max: u64, timeout_ms: u64) -> SysResult {
    epoll_wait(epfd, events, max, timeout_ms)
}

/// epoll_pwait2(2): a timespec timeout (NULL: forever).
pub fn epoll_pwait2(epfd: u64, events: u64, max: u64, ts: u64) -> SysResult {
    let deadline = super::io::deadline_after(ts, 1)?;
    wait_impl(epfd, events, max, deadline)
}

/// eventfd2(2) (and eventfd).
pub fn eventfd2(initval: u64, flags: u64) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let obj = Object::EventFd(Arc::new(Mutex::new((
        u64::from(initval as u32),
        flags & EFD_SEMAPHORE != 0,
    ))));
    let status = O_RDWR | (flags & O_NONBLOCK) as u32;
    fd::install(OpenFile::new(obj, status), flags & O_CLOEXEC != 0)
}

fn wait_eventfd(nonblocking: bool, ready: impl Fn() -> bool) -> Result<(), Errno> {
    if nonblocking {
        return Err(Errno::EAGAIN);
    }
    super::signal::pending()?;
    IO.wait(None, ready);
    Ok(())
}

/// read(2) on an eventfd: the counter (or 1 in semaphore mode).
pub fn read_eventfd(c: &Mutex<(u64, bool)>, nonblocking: bool, buf: u64, count: u64) -> SysResult {
    if count < 8 {
        return Err(Errno::EINVAL);
    }
    let out = UserSlice::new(buf, 8)?;
    loop {
        let got = {
            let mut g = c.lock();
            match (g.0, g.1) {
                (0, _) => None,
                (_, true) => {
                    g.0 -= 1;
                    Some(1)
                }
                (v, false) => {
                    g.0 = 0;
                    Some(v)
                }
            }
        };
        if let Some(v) = got {
            IO.wake_all();
            out.write(&v.to_le_bytes())?;
            return Ok(8);
        }
        wait_eventfd(nonblocking, || c.lock().0 > 0)?;
    }
}

/// write(2) on an eventfd: adds to the counter, waiting while it would
/// exceed 2^64 − 2.
pub fn write_eventfd(c: &Mutex<(u64, bool)>, nonblocking: bool, buf: u64, count: u64) -> SysResult {
    if count < 8 {
        return Err(Errno::EINVAL);
    }
    let v = uaccess::read_u64(buf)?;
    if v == u64::MAX {
        return Err(Errno::EINVAL);
    }
    loop {
        let done = {
            let mut g = c.lock();
            if u64::MAX - 1 - g.0 >= v {
                g.0 += v;
                true
            } else {
                false
            }
        };
        if done {
            IO.wake_all();
            return Ok(8);
        }
        wait_eventfd(nonblocking, || u64::MAX - 1 - c.lock().0 >= v)?;
    }
}
