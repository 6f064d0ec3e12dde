//! Signals, recorded but not yet delivered to handlers: rt_sigaction,
//! rt_sigprocmask and sigaltstack remember what the program set; kill and
//! tgkill to itself (any of its threads), Ctrl-C and Ctrl-\ apply the
//! default action (terminate) unless the signal is ignored. A signal with a
//! handler also terminates the process, with a message saying handlers are
//! not run yet. Terminating means the process is killed: the syscall
//! returns EINTR, every thread leaves, and the supervisor restarts the
//! program (`crate::supervisor`).

use kcore::errno::Errno;
use kcore::tty::Signal;

use super::SysResult;
use crate::memory::uaccess::UserSlice;
use crate::process::{self, PROCESS, sig};

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const SIGSTOP: u64 = 19;
const SIGKILL: u64 = 9;

fn valid(signum: u64) -> Result<usize, Errno> {
    if (1..=64).contains(&signum) {
        Ok(signum as usize)
    } else {
        Err(Errno::EINVAL)
    }
}

/// rt_sigaction(2).
pub fn rt_sigaction(signum: u64, act: u64, oact: u64, sigsetsize: u64) -> SysResult {
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let s = valid(signum)?;
    let new = if act != 0 {
        if signum == SIGKILL || signum == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; 32];
        UserSlice::new(act, 32)?.read_into(&mut b)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some([w(0), w(1), w(2), w(3)])
    } else {
        None
    };
    let old = {
        let mut g = PROCESS.lock();
        let p = g.as_mut().ok_or(Errno::ESRCH)?;
        let old = p.sigactions[s];
        if let Some(n) = new {
            p.sigactions[s] = n;
        }
        old
    };
    if oact != 0 {
        let mut b = [0u8; 32];
        for (i, w) in old.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        UserSlice::new(oact, 32)?.write(&b)?;
    }
    Ok(0)
}

/// rt_sigprocmask(2).
pub fn rt_sigprocmask(how: u64, set: u64, oset: u64, sigsetsize: u64) -> SysResult {
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let new = if set != 0 {
        Some(crate::memory::uaccess::read_u64(set)?)
    } else {
        None
    };
    let unblockable = (1u64 << (SIGKILL - 1)) | (1u64 << (SIGSTOP - 1));
    let old = {
        let mut g = PROCESS.lock();
        let p = g.as_mut().ok_or(Errno::ESRCH)?;
        let old = p.sigmask;
        if let Some(n) = new {
            p.sigmask = match how {
                0 => old | n,
                1 => old & !n,
                2 => n,
                _ => return Err(Errno::EINVAL),
            } & !unblockable;
        }
        old
    };
    if oset != 0 {
        crate::memory::uaccess::write_u64(oset, old)?;
    }
    Ok(0)
}

const SS_ONSTACK: u32 = 1;
const SS_DISABLE: u32 = 2;
const MINSIGSTKSZ: u64 = 2048;

/// sigaltstack(2).
pub fn sigaltstack(ss: u64, old: u64) -> SysResult {
    let new = if ss != 0 {
        let mut b = [0u8; 24];
        UserSlice::new(ss, 24)?.read_into(&mut b)?;
        let sp = u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8]));
        let flags = u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4]));
        let size = u64::from_le_bytes(b[16..24].try_into().unwrap_or([0; 8]));
        if flags & !(SS_DISABLE | (1 << 31)) != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & SS_DISABLE == 0 && size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        Some((sp, flags, size))
    } else {
        None
    };
    let prev = {
        let mut g = PROCESS.lock();
        let p = g.as_mut().ok_or(Errno::ESRCH)?;
        let prev = p.altstack;
        if let Some(n) = new {
            p.altstack = if n.1 & SS_DISABLE != 0 {
                (0, SS_DISABLE, 0)
            } else {
                n
            };
        }
        prev
    };
    if old != 0 {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&prev.0.to_le_bytes());
        b[8..12].copy_from_slice(&(prev.1 & !SS_ONSTACK).to_le_bytes());
        b[16..24].copy_from_slice(&prev.2.to_le_bytes());
        UserSlice::new(old, 24)?.write(&b)?;
    }
    Ok(0)
}

/// Applies signal `s` to the process: ignored, or the process ends.
pub(super) fn raise(s: u64) -> SysResult {
    let handler = PROCESS
        .lock()
        .as_ref()
        .map_or(SIG_DFL, |p| p.sigactions[s as usize][0]);
    // Default action "ignore": SIGCHLD, SIGCONT, SIGURG, SIGWINCH; the stop
    // signals cannot stop the only process, so they are ignored too.
    let default_ignored = matches!(s, 17 | 18 | 20 | 21 | 22 | 23 | 28);
    if s != SIGKILL && (handler == SIG_IGN || (handler == SIG_DFL && default_ignored)) {
        return Ok(0);
    }
    let note = (handler != SIG_DFL && s != SIGKILL).then_some(
        "the program installed a handler for it, but llmos does not run signal handlers yet",
    );
    Err(process::kill_from_syscall(s as i32, note))
}

/// What a waiting loop checks on each round: EINTR if the process is
/// being killed (its threads must not wait) or if a terminal signal
/// arrived (which kills it, or is ignored and interrupts the wait).
pub(super) fn pending() -> Result<(), Errno> {
    if crate::supervisor::killed() {
        return Err(Errno::EINTR);
    }
    if let Some(sig) = crate::console::take_signal() {
        deliver_tty_signal(sig)?;
    }
    Ok(())
}

/// kill(2): only the process itself (pid 1, 0 or -1) exists.
pub fn kill(pid: u64, signum: u64) -> SysResult {
    let pid = pid as i64;
    if !matches!(pid, -1..=1) {
        return Err(Errno::ESRCH);
    }
    if signum == 0 {
        return Ok(0);
    }
    valid(signum)?;
    raise(signum)
}

/// tgkill(2): to any thread of the process (abort() in a thread other
/// than the main one sends it to itself); the default action ends the
/// whole process, as on Linux.
pub fn tgkill(tgid: u64, tid: u64, signum: u64) -> SysResult {
    if tgid != 1 || !u32::try_from(tid).is_ok_and(crate::sched::exists) {
        return Err(Errno::ESRCH);
    }
    if signum == 0 {
        return Ok(0);
    }
    valid(signum)?;
    raise(signum)
}

/// Applies a signal the terminal raised (Ctrl-C, Ctrl-\). Returns EINTR if
/// the program ignores it.
pub fn deliver_tty_signal(s: Signal) -> SysResult {
    let n = match s {
        Signal::Int => sig::INT,
        Signal::Quit => sig::QUIT,
    } as u64;
    raise(n)?;
    Err(Errno::EINTR)
}
