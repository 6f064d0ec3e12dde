//! Futexes: `kcore::futex::FutexTable` behind one lock, plus blocking.
//!
//! No lost wakeups: FUTEX_WAIT reads the futex word and enqueues the caller
//! while holding the table lock; FUTEX_WAKE dequeues under the same lock.
//! A waker that changed the word before waking either finds the waiter in
//! the queue or the waiter saw the new value and returned EAGAIN. Between
//! enqueueing and blocking a wakeup is not lost either: `sched::wake` on a
//! thread that has not blocked yet makes its `block` return at once.
#![deny(unsafe_code)]

use kcore::errno::Errno;
use kcore::futex::FutexTable;
use spin::Mutex;

use crate::memory::uaccess::UserSlice;
use crate::sched;

static TABLE: Mutex<FutexTable> = Mutex::new(FutexTable::EMPTY);

fn read_u32(addr: u64) -> Result<u32, Errno> {
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 4];
    UserSlice::new(addr, 4)?.read_into(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Empties the table (a dead process's waiters are gone).
pub fn clear() {
    *TABLE.lock() = FutexTable::EMPTY;
}

/// FUTEX_WAIT(_BITSET): sleeps while `*addr == val`, until a matching wake
/// or the monotonic `deadline`.
pub fn wait(addr: u64, val: u32, bitset: u32, deadline: Option<u64>) -> Result<u64, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let tid = sched::current_tid();
    {
        let mut t = TABLE.lock();
        if read_u32(addr)? != val {
            return Err(Errno::EAGAIN);
        }
        t.enqueue(addr, tid, bitset);
    }
    let timed_out = match deadline {
        Some(d) => sched::sleep_until(d),
        None => {
            sched::block();
            false
        }
    };
    let still_queued = TABLE.lock().remove(tid);
    if !still_queued {
        return Ok(0);
    }
    if timed_out {
        return Err(Errno::ETIMEDOUT);
    }
    // Woken by something other than FUTEX_WAKE (a signal): EINTR.
    Err(Errno::EINTR)
}

/// FUTEX_WAKE(_BITSET): wakes up to `n` waiters.
pub fn wake(addr: u64, n: u32, bitset: u32) -> Result<u64, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let woken = TABLE.lock().wake(addr, n as usize, bitset);
    for tid in &woken {
        sched::wake_tid(*tid);
    }
    Ok(woken.len() as u64)
}

/// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE (`expected` for the latter).
pub fn requeue(
    addr: u64,
    n_wake: u32,
    n_move: u32,
    addr2: u64,
    expected: Option<u32>,
) -> Result<u64, Errno> {
    let (woken, moved) = {
        let mut t = TABLE.lock();
        if let Some(e) = expected
            && read_u32(addr)? != e
        {
            return Err(Errno::EAGAIN);
        }
        t.requeue(addr, addr2, n_wake as usize, n_move as usize)
    };
    for tid in &woken {
        sched::wake_tid(*tid);
    }
    Ok((woken.len() + moved) as u64)
}

/// FUTEX_WAKE_OP.
pub fn wake_op(addr: u64, n: u32, n2: u32, addr2: u64, op: u32) -> Result<u64, Errno> {
    let woken = {
        let mut t = TABLE.lock();
        let old = read_u32(addr2)?;
        let (new, cond) = kcore::futex::wake_op(op, old).ok_or(Errno::ENOSYS)?;
        // One CPU with interrupts off: the read-modify-write is atomic with
        // respect to every other thread.
        UserSlice::new(addr2, 4)?.write(&new.to_le_bytes())?;
        let mut w = t.wake(addr, n as usize, kcore::futex::MATCH_ANY);
        if cond {
            w.extend(t.wake(addr2, n2 as usize, kcore::futex::MATCH_ANY));
        }
        w
    };
    for tid in &woken {
        sched::wake_tid(*tid);
    }
    Ok(woken.len() as u64)
}
