//! The console device behind file descriptors 0–2: the serial port with
//! the `kcore::tty` line discipline.
//!
//! Input is pulled from the UART when a reader looks and on every timer
//! tick, so Ctrl-C reaches a program that is busy computing. A reader with
//! nothing to read blocks (other threads, or the idle loop, run) and is
//! woken by the tick that brings input.
#![deny(unsafe_code)]

use alloc::vec::Vec;

use kcore::tty::{Read, Signal, Tty};
use spin::Mutex;

use crate::drivers::serial;

static TTY: Mutex<Option<Tty>> = Mutex::new(None);
static WAITERS: Mutex<Vec<alloc::sync::Arc<crate::sched::Thread>>> = Mutex::new(Vec::new());

/// Runs `f` on the console's waiters with their lock held and interrupts
/// off (the timer tick wakes them from an interrupt handler).
fn waiters<R>(f: impl FnOnce(&mut Vec<alloc::sync::Arc<crate::sched::Thread>>) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut WAITERS.lock()))
}
static PENDING_SIGNAL: Mutex<Option<Signal>> = Mutex::new(None);

/// Sets up a fresh terminal state (called when the program starts, and
/// again when it is restarted: a new run starts in canonical mode with
/// echo, as after boot).
pub fn init() {
    *TTY.lock() = Some(Tty::new());
    *PENDING_SIGNAL.lock() = None;
}

/// Forgets the terminal state of a dead process (input typed for it is
/// dropped; until the next [`init`] input waits in the UART).
pub fn reset() {
    *TTY.lock() = None;
    *PENDING_SIGNAL.lock() = None;
    waiters(core::mem::take);
}

/// Runs `f` on the terminal state.
pub fn with_tty<R>(f: impl FnOnce(&mut Tty) -> R) -> Option<R> {
    TTY.lock().as_mut().map(f)
}

/// Moves received bytes from the UART into the line discipline and echoes
/// them. Safe to call from the timer interrupt: it gives up if the
/// terminal is busy.
pub fn poll_input() {
    let Some(mut guard) = TTY.try_lock() else {
        return;
    };
    let Some(tty) = guard.as_mut() else { return };
    let mut echo = Vec::new();
    let mut signal = None;
    while let Some(b) = serial::with_console(|u| u.try_read_byte()) {
        let (e, s) = tty.input(b);
        let mut out = Vec::new();
        tty.output(&e, &mut out);
        echo.extend(out);
        if s.is_some() {
            signal = s;
        }
    }
    let arrived = !echo.is_empty() || signal.is_some() || tty.readable() > 0;
    drop(guard);
    if arrived {
        let waiters = waiters(core::mem::take);
        for t in &waiters {
            crate::sched::wake(t);
        }
        crate::fd::IO.wake_all();
    }
    if !echo.is_empty() {
        serial::with_console(|u| {
            let _ = embedded_io::Write::write_all(u, &echo);
        });
    }
    if let Some(s) = signal {
        *PENDING_SIGNAL.lock() = Some(s);
        // Sleepers must notice the signal too.
        crate::sched::wake_all_blocked();
    }
}

/// Whether a signal is waiting to be delivered.
pub fn signal_pending() -> bool {
    PENDING_SIGNAL.lock().is_some()
}

/// Blocks the calling thread until console input or a signal arrives, or
/// until the monotonic `deadline`.
pub fn wait_for_input(deadline: Option<u64>) {
    let Some(me) = crate::sched::current() else {
        return;
    };
    waiters(|w| w.push(me.clone()));
    if !readable_now() && !signal_pending() {
        match deadline {
            Some(d) => {
                crate::sched::sleep_until(d);
            }
            None => crate::sched::block(),
        }
    }
    waiters(|w| w.retain(|t| t.tid != me.tid));
}

fn readable_now() -> bool {
    TTY.lock().as_ref().is_some_and(|t| t.can_read())
}

/// A signal Ctrl-C/Ctrl-\ raised, if any (taking it).
pub fn take_signal() -> Option<Signal> {
    PENDING_SIGNAL.try_lock().and_then(|mut s| s.take())
}

/// Writes program output through the terminal's output processing.
pub fn write(data: &[u8]) {
    let mut out = Vec::with_capacity(data.len() + 16);
    if with_tty(|t| t.output(data, &mut out)).is_none() {
        out.extend_from_slice(data);
    }
    serial::with_console(|u| {
        let _ = embedded_io::Write::write_all(u, &out);
    });
}

/// Why a console read ended without data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// The terminal raised a signal (Ctrl-C, Ctrl-\).
    Signal(Signal),
    /// The process is being killed.
    Killed,
}

/// Reads for a program, waiting for input.
pub fn read(max: usize, nonblocking: bool) -> Result<Read, Interrupted> {
    loop {
        poll_input();
        if let Some(s) = take_signal() {
            return Err(Interrupted::Signal(s));
        }
        if crate::supervisor::killed() {
            return Err(Interrupted::Killed);
        }
        match with_tty(|t| t.read(max)).unwrap_or(Read::Eof) {
            Read::WouldBlock if !nonblocking => wait_for_input(None),
            r => return Ok(r),
        }
    }
}

/// Whether a read would return at once.
pub fn readable() -> bool {
    poll_input();
    with_tty(|t| t.can_read()).unwrap_or(true)
}
