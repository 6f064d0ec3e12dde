//! What happens when the first process ends: it exits, or it is killed
//! and started again.
//!
//! - **Exit** (exit or exit_group, any status): [`crate::process::exit`]
//!   closes the descriptors, lets connections drain, prints
//!   `kernel: init exited with status S` and powers off (isa-debug-exit
//!   0x10 for S = 0, 0x11 otherwise). `/quit` in the runtime is such an
//!   exit.
//! - **Killed** by a signal (abort(), a fault the kernel turns into
//!   SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP, any other signal whose default
//!   action is to terminate): [`begin_kill`] marks the process killed and
//!   makes every thread leave ([`crate::sched::stop_all`]); the last one
//!   out ([`leave_killed`]) asks the restart budget (`kcore::restart`),
//!   prints `kernel: init killed by signal N (NAME)…; restarting (restart
//!   K of BUDGET) in T ms`, tears the process down ([`teardown`]), waits,
//!   and starts the same program from the initrd with the same argv and
//!   environment plus `LLMOS_RESTARTS` and `LLMOS_LAST_EXIT`. When the
//!   budget is spent it prints `…; restart budget spent (N restarts in W
//!   s), powering off` and powers off with failure.
//!
//! How every thread leaves, wherever it is: a thread in user mode is
//! interrupted by a reschedule IPI and leaves from the interrupt; a
//! thread in the kernel finishes its syscall (no wait blocks while the
//! process is killed: `sched::block` returns at once and every waiting
//! loop returns EINTR) and leaves at the syscall's end, having released
//! what it held on the way out; a thread that was never run leaves at its
//! first instruction. Nothing is torn down while a thread could still use
//! it: the teardown runs only once the thread table is empty.
#![deny(unsafe_code)]

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

use bootparams::Init;
use kcore::restart::{Budget, Decision, Policy};
use spin::{Mutex, Once};

use crate::klog;
use crate::power::{self, Status};
use crate::process::{self, sig};

const RUNNING: u8 = 0;
const EXITING: u8 = 1;
const KILLED: u8 = 2;

/// The process's fate: running, exiting (powering off), or killed (its
/// threads are leaving).
static STATE: AtomicU8 = AtomicU8::new(RUNNING);
/// Why it was killed (the first cause wins).
static CAUSE: Mutex<Option<Cause>> = Mutex::new(None);
/// What to start again.
static PROGRAM: Once<Program> = Once::new();
/// Restarts so far.
static BUDGET: Mutex<Option<Budget>> = Mutex::new(None);

/// Environment variable with the number of restarts since boot (set from
/// the first restart on).
pub const ENV_RESTARTS: &str = "LLMOS_RESTARTS";
/// Environment variable with the previous run's cause of death, e.g.
/// `killed by signal 6 (SIGABRT)`.
pub const ENV_LAST_EXIT: &str = "LLMOS_LAST_EXIT";

/// The first process as the boot parameters describe it.
pub struct Program {
    /// Path, argv and environment.
    pub init: Init,
    /// Its ELF file (initrd bytes).
    pub file: &'static [u8],
    /// Trace its syscalls.
    pub trace: bool,
    /// AT_HWCAP.
    pub hwcap: u64,
}

/// Records the program to restart and the restart budget (at the first
/// start).
pub fn set_program(program: Program, policy: Policy) {
    PROGRAM.call_once(|| program);
    *BUDGET.lock() = Some(Budget::new(policy));
}

/// Why the process was killed.
#[derive(Debug, Clone)]
pub struct Cause {
    /// The signal.
    pub signal: i32,
    /// For faults: where (`fault at 0x0 (write, RIP 0x…)`).
    pub fault: Option<String>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "killed by signal {} ({})",
            self.signal,
            sig::name(self.signal)
        )?;
        if let Some(at) = &self.fault {
            write!(f, ", {at}")?;
        }
        Ok(())
    }
}

/// Whether the process has been killed and its threads are leaving.
pub fn killed() -> bool {
    STATE.load(Ordering::SeqCst) == KILLED
}

/// Marks the process as exiting (exit_group). `false` if it was killed
/// first: then the caller leaves like every other thread.
pub fn begin_exit() -> bool {
    match STATE.compare_exchange(RUNNING, EXITING, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => true,
        Err(s) => s == EXITING,
    }
}

/// Kills the process for `cause`: from now on no thread blocks or is
/// created, and every thread leaves at its next exit from the kernel.
/// Returns `false` (and does nothing) if the process is already exiting
/// or killed: the first cause stands.
pub fn begin_kill(cause: Cause) -> bool {
    if STATE
        .compare_exchange(RUNNING, KILLED, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return false;
    }
    *CAUSE.lock() = Some(cause);
    crate::sched::stop_all();
    true
}

/// Ends the calling thread of a killed process. The last thread out
/// restarts the program (or powers off). Call only where the thread holds
/// nothing: at the end of a syscall, in an interrupt or exception from user
/// mode, before a new thread's first instruction.
pub fn leave_killed() -> ! {
    leave(None)
}

/// exit(2) of the calling thread: the last one ends the process with
/// `status`.
pub fn thread_exit(status: i32) -> ! {
    leave(Some(status))
}

fn leave(status: Option<i32>) -> ! {
    if crate::sched::leave_process() {
        match (STATE.load(Ordering::SeqCst), status) {
            (KILLED, _) => reap(),
            (RUNNING, Some(s)) => process::exit(s),
            // Exiting: the thread that called exit_group powers off.
            _ => {}
        }
    }
    crate::sched::end_current()
}

/// The last thread of a killed process is gone (the caller is its last
/// thread, off the thread table): decide, tear down, wait, start again.
fn reap() {
    let cause = CAUSE.lock().take().unwrap_or(Cause {
        signal: sig::KILL,
        fault: None,
    });
    let now = crate::time::now_nanos();
    let (decision, policy) = match BUDGET.lock().as_mut() {
        Some(b) => (b.on_death(now), b.policy()),
        None => (Decision::Spent { in_window: 0 }, Policy::DEFAULT),
    };
    let delay_ns = match decision {
        Decision::Spent { in_window } => {
            klog!(
                "kernel",
                "init {cause}; restart budget spent ({in_window} restarts in {} s), powering off",
                policy.window_ns / 1_000_000_000
            );
            power::power_off(Status::Failure)
        }
        Decision::Restart {
            in_window,
            delay_ns,
            ..
        } => {
            klog!(
                "kernel",
                "init {cause}; restarting (restart {in_window} of {}) in {} ms",
                policy.max_restarts,
                delay_ns / 1_000_000
            );
            delay_ns
        }
    };
    teardown();
    // Nothing of the old process is left; the new one may block and
    // start threads.
    STATE.store(RUNNING, Ordering::SeqCst);
    let deadline = now.saturating_add(delay_ns);
    while !crate::sched::sleep_until(deadline) {}
    let total = BUDGET.lock().as_ref().map_or(1, Budget::total);
    if let Err(e) = restart(total, &cause) {
        klog!("kernel", "cannot restart init: {e}");
        power::power_off(Status::Failure)
    }
}

/// Frees everything the dead process held: descriptors (files, pipes,
/// sockets, epoll and eventfd objects), its memory and page tables, pins
/// on mapped files, futex queues, the console's state, and `/tmp`'s
/// contents. Files elsewhere in the RAM filesystem stay.
fn teardown() {
    // The descriptions are dropped with no lock held (`fd`'s rule).
    let table = crate::fd::TABLE.lock().take();
    let closed = table.as_ref().map_or(0, |t| t.len());
    drop(table);
    // Closing a listening socket frees its port at once; connections
    // finish (or reset) in the background.
    crate::netdev::poll();
    let mm = process::MM.lock().take();
    let exe = process::PROCESS
        .lock()
        .take()
        .map(|p| p.exe)
        .unwrap_or_default();
    let freed = mm.map_or(0, process::release_memory);
    crate::futex::clear();
    crate::console::reset();
    let tmp = crate::vfs::empty_dir("/tmp");
    klog!(
        "process",
        "{exe} torn down: {} KiB of memory and {closed} descriptor(s) released, {tmp} file(s) removed from /tmp",
        freed / 1024
    );
}

/// Starts the program again (restart number `total` since boot).
fn restart(total: u32, cause: &Cause) -> Result<(), process::StartError> {
    let Some(p) = PROGRAM.get() else {
        return Err(process::StartError::NotFound(String::from("init")));
    };
    let mut init = p.init.clone();
    let ours = |e: &String| {
        e.split_once('=')
            .is_some_and(|(k, _)| k == ENV_RESTARTS || k == ENV_LAST_EXIT)
    };
    init.env.retain(|e| !ours(e));
    init.env.push(format!("{ENV_RESTARTS}={total}"));
    init.env.push(format!("{ENV_LAST_EXIT}={cause}"));
    process::restart(&init, p.file, p.trace, p.hwcap)
}
