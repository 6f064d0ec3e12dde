//! Clocks and sleeping: clock_gettime/getres/nanosleep, gettimeofday,
//! time, nanosleep, and the single-threaded futex.

use kcore::errno::Errno;

use super::SysResult;
use crate::memory::uaccess::{self, UserSlice};
use crate::process::PROCESS;
use crate::time::{now_nanos, realtime_nanos};

const NS: u64 = 1_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Clock {
    Realtime,
    Monotonic,
    Coarse(bool),
    Cpu,
}

fn clock(id: u64) -> Result<Clock, Errno> {
    Ok(match id as i64 {
        0 | 8 | 11 => Clock::Realtime,
        1 | 4 | 7 | 9 => Clock::Monotonic,
        5 => Clock::Coarse(true),
        6 => Clock::Coarse(false),
        2 | 3 => Clock::Cpu,
        _ => return Err(Errno::EINVAL),
    })
}

fn read_clock(c: Clock) -> u64 {
    match c {
        Clock::Realtime => realtime_nanos(),
        Clock::Monotonic => now_nanos(),
        Clock::Coarse(real) => {
            let t = if real { realtime_nanos() } else { now_nanos() };
            t - t % 10_000_000
        }
        // One process on one CPU: its CPU time is the time since it
        // started (the kernel's own share is not subtracted).
        Clock::Cpu => {
            let started = PROCESS.lock().as_ref().map_or(0, |p| p.started);
            now_nanos().saturating_sub(started)
        }
    }
}

fn write_timespec(addr: u64, nanos: u64) -> Result<(), Errno> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(nanos / NS).to_le_bytes());
    b[8..].copy_from_slice(&(nanos % NS).to_le_bytes());
    UserSlice::new(addr, 16)?.write(&b)
}

/// Reads a `struct timespec`; EINVAL for negative or out-of-range fields.
fn read_timespec(addr: u64) -> Result<u64, Errno> {
    let sec = uaccess::read_u64(addr)? as i64;
    let nsec = uaccess::read_u64(addr + 8)? as i64;
    if sec < 0 || !(0..NS as i64).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64).saturating_mul(NS).saturating_add(nsec as u64))
}

/// clock_gettime(2).
pub fn clock_gettime(id: u64, tp: u64) -> SysResult {
    let c = clock(id)?;
    write_timespec(tp, read_clock(c))?;
    Ok(0)
}

/// clock_getres(2).
pub fn clock_getres(id: u64, res: u64) -> SysResult {
    let c = clock(id)?;
    if res != 0 {
        write_timespec(
            res,
            if matches!(c, Clock::Coarse(_)) {
                10_000_000
            } else {
                1
            },
        )?;
    }
    Ok(0)
}

/// gettimeofday(2).
pub fn gettimeofday(tv: u64) -> SysResult {
    if tv != 0 {
        let now = realtime_nanos();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(now / NS).to_le_bytes());
        b[8..].copy_from_slice(&((now % NS) / 1000).to_le_bytes());
        UserSlice::new(tv, 16)?.write(&b)?;
    }
    Ok(0)
}

/// time(2).
pub fn time(t: u64) -> SysResult {
    let now = realtime_nanos() / NS;
    if t != 0 {
        uaccess::write_u64(t, now)?;
    }
    Ok(now)
}

/// Sleeps until monotonic `deadline` (other threads run meanwhile); a
/// Ctrl-C delivers SIGINT; a killed process's thread stops sleeping.
fn sleep_to(deadline: u64) {
    while !crate::sched::sleep_until(deadline) {
        if super::signal::pending().is_err() && crate::supervisor::killed() {
            return;
        }
    }
}

/// nanosleep(2).
pub fn nanosleep(req: u64, _rem: u64) -> SysResult {
    let d = read_timespec(req)?;
    sleep_to(now_nanos().saturating_add(d));
    Ok(0)
}

const TIMER_ABSTIME: u64 = 1;

/// clock_nanosleep(2) (returns the error number, not -1/errno).
pub fn clock_nanosleep(id: u64, flags: u64, req: u64, _rem: u64) -> SysResult {
    let c = clock(id)?;
    if c == Clock::Cpu {
        return Err(Errno::ENOTSUP);
    }
    let d = read_timespec(req)?;
    let deadline = if flags & TIMER_ABSTIME != 0 {
        let now_c = read_clock(c);
        now_nanos().saturating_add(d.saturating_sub(now_c))
    } else {
        now_nanos().saturating_add(d)
    };
    sleep_to(deadline);
    Ok(0)
}

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// futex(2): WAIT, WAKE, their BITSET forms, REQUEUE, CMP_REQUEUE and
/// WAKE_OP, private or not (one process), with relative (WAIT) or absolute
/// (WAIT_BITSET, on MONOTONIC or REALTIME) timeouts.
pub fn futex(uaddr: u64, op: u64, val: u64, timeout: u64, uaddr2: u64, val3: u64) -> SysResult {
    let cmd = op & 0x7f;
    if op & !(0x7f | 128 | FUTEX_CLOCK_REALTIME) != 0 {
        return Err(Errno::ENOSYS);
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if op & FUTEX_CLOCK_REALTIME != 0 && cmd == FUTEX_WAIT {
                return Err(Errno::ENOSYS);
            }
            let deadline = if timeout == 0 {
                None
            } else {
                let t = read_timespec(timeout)?;
                Some(if cmd == FUTEX_WAIT_BITSET {
                    let now_c = if op & FUTEX_CLOCK_REALTIME != 0 {
                        realtime_nanos()
                    } else {
                        now_nanos()
                    };
                    now_nanos().saturating_add(t.saturating_sub(now_c))
                } else {
                    now_nanos().saturating_add(t)
                })
            };
            let bitset = if cmd == FUTEX_WAIT {
                u32::MAX
            } else {
                val3 as u32
            };
            crate::futex::wait(uaddr, val as u32, bitset, deadline)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                u32::MAX
            } else {
                val3 as u32
            };
            crate::futex::wake(uaddr, val as u32, bitset)
        }
        FUTEX_REQUEUE => crate::futex::requeue(uaddr, val as u32, timeout as u32, uaddr2, None),
        FUTEX_CMP_REQUEUE => {
            crate::futex::requeue(uaddr, val as u32, timeout as u32, uaddr2, Some(val3 as u32))
        }
        FUTEX_WAKE_OP => {
            crate::futex::wake_op(uaddr, val as u32, timeout as u32, uaddr2, val3 as u32)
        }
        _ => Err(Errno::ENOSYS),
    }
}
