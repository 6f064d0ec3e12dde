//! Threads and the scheduler.
//!
//! Every thread of the process is a [`Thread`]: a tid, an arch [`Task`]
//! (kernel stack, saved registers, FPU state) and a scheduling state. The
//! policy is round-robin over one FIFO run queue with a 10 ms time slice
//! (the APIC timer tick): a thread interrupted in user mode is preempted
//! when another is runnable; the kernel itself is not preemptible, so a
//! tick that lands in a syscall only sets `need_resched`, which the syscall
//! exit path honours. When nothing is runnable the CPU runs its idle
//! thread, which halts (`sti; hlt`) until the next interrupt.
//!
//! Blocking follows one protocol that cannot lose a wakeup: a thread first
//! makes itself findable (in the futex table, the sleeper list, the console
//! waiters), then calls [`block`]; a waker calls [`wake`]. Both take the
//! thread's state lock, and `wake` on a thread that has not blocked yet
//! just leaves `woken` set, which makes the following `block` return at
//! once.
#![deny(unsafe_code)]

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

use crate::arch::x86_64::context::{self, Task};
use crate::memory::stacks;

/// Kernel stack of each user thread.
pub const THREAD_KSTACK: u64 = 128 * 1024;

/// Scheduling state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// On a CPU.
    Running,
    /// In the run queue.
    Runnable,
    /// Waiting for a wakeup.
    Blocked,
    /// Exited; never runs again.
    Dead,
}

struct Sched {
    state: State,
    woken: bool,
}

/// A thread of the process.
pub struct Thread {
    /// Thread id (1 is the main thread; 0 the idle thread).
    pub tid: u32,
    task: Arc<Task>,
    sched: Mutex<Sched>,
    /// CLONE_CHILD_CLEARTID / set_tid_address: cleared and futex-woken at exit.
    pub clear_child_tid: AtomicU64,
    /// set_robust_list head.
    pub robust_list: AtomicU64,
    /// Monotonic deadline for a timed sleep (u64::MAX: none).
    pub deadline: AtomicU64,
    /// Whether the last block ended by its deadline.
    pub timed_out: AtomicBool,
}

static THREADS: Mutex<BTreeMap<u32, Arc<Thread>>> = Mutex::new(BTreeMap::new());
static RUN_QUEUE: Mutex<VecDeque<Arc<Thread>>> = Mutex::new(VecDeque::new());
static CURRENT: Mutex<Option<Arc<Thread>>> = Mutex::new(None);
static IDLE: spin::Once<Arc<Thread>> = spin::Once::new();
static SLEEPERS: Mutex<Vec<Arc<Thread>>> = Mutex::new(Vec::new());
static NEED_RESCHED: AtomicBool = AtomicBool::new(false);
static NEXT_TID: AtomicU32 = AtomicU32::new(2);
/// Threads created since boot (statistics).
pub static CREATED: AtomicU64 = AtomicU64::new(0);

fn new_thread(tid: u32, task: Arc<Task>, state: State) -> Arc<Thread> {
    Arc::new(Thread {
        tid,
        task,
        sched: Mutex::new(Sched {
            state,
            woken: false,
        }),
        clear_child_tid: AtomicU64::new(0),
        robust_list: AtomicU64::new(0),
        deadline: AtomicU64::new(u64::MAX),
        timed_out: AtomicBool::new(false),
    })
}

extern "C" fn idle_loop() -> ! {
    loop {
        crate::arch::x86_64::halt_until_interrupt();
        schedule_from_idle();
    }
}

/// Sets up scheduling with the running context as thread 1 (taking its
/// kernel entries on `kstack`), plus this CPU's idle thread.
pub fn init(kstack: stacks::KernelStack) -> Result<(), stacks::StackError> {
    let main_task = Task::current_with_stack(kstack);
    context::set_current(main_task.clone());
    let main = new_thread(1, main_task, State::Running);
    THREADS.lock().insert(1, main.clone());
    *CURRENT.lock() = Some(main);
    let idle_stack = stacks::allocate("idle", 32 * 1024)?;
    let idle = new_thread(
        0,
        Task::new_kernel_thread(idle_stack, idle_loop),
        State::Runnable,
    );
    IDLE.call_once(|| idle);
    Ok(())
}

/// Runs the idle loop on an application processor. Until SMP scheduling
/// is enabled the AP only takes its timer interrupts and halts.
pub fn run_idle_on_this_cpu(_cpu: usize) -> ! {
    loop {
        crate::arch::x86_64::halt_until_interrupt();
    }
}

/// The calling thread.
pub fn current() -> Option<Arc<Thread>> {
    CURRENT.lock().clone()
}

/// The calling thread's id (1 before scheduling starts).
pub fn current_tid() -> u32 {
    CURRENT.lock().as_ref().map_or(1, |t| t.tid)
}

/// Whether a thread with id `tid` exists.
pub fn exists(tid: u32) -> bool {
    THREADS.lock().contains_key(&tid)
}

/// Number of live threads.
pub fn thread_count() -> usize {
    THREADS.lock().len()
}

/// Creates a runnable user thread that resumes user mode with `frame`.
pub fn spawn_user(
    frame: &crate::arch::x86_64::syscall::SyscallFrame,
    fs_base: u64,
) -> Result<Arc<Thread>, stacks::StackError> {
    let tid = NEXT_TID.fetch_add(1, Ordering::Relaxed);
    let stack = stacks::allocate("thread", THREAD_KSTACK)?;
    let task = Task::new_user_thread(stack, frame, fs_base);
    let t = new_thread(tid, task, State::Runnable);
    THREADS.lock().insert(tid, t.clone());
    CREATED.fetch_add(1, Ordering::Relaxed);
    RUN_QUEUE.lock().push_back(t.clone());
    Ok(t)
}

/// Picks the next thread and switches to it. `requeue` puts the current
/// thread back on the run queue (preemption, yield). Interrupts must be off.
fn switch_away(requeue: bool) {
    let Some(cur) = current() else { return };
    let next = loop {
        let candidate = RUN_QUEUE.lock().pop_front();
        match candidate {
            Some(t) if t.sched.lock().state == State::Dead => continue,
            Some(t) => break Some(t),
            None => break None,
        }
    };
    let next = match next {
        Some(n) => n,
        None => {
            let runnable = cur.sched.lock().state == State::Running;
            if runnable || cur.tid == 0 {
                return; // keep running the current thread
            }
            match IDLE.get() {
                Some(i) => i.clone(),
                None => return,
            }
        }
    };
    {
        let mut s = cur.sched.lock();
        if s.state == State::Running {
            s.state = State::Runnable;
            if requeue && cur.tid != 0 {
                RUN_QUEUE.lock().push_back(cur.clone());
            }
        }
    }
    next.sched.lock().state = State::Running;
    *CURRENT.lock() = Some(next.clone());
    let task = next.task.clone();
    drop(next);
    drop(cur);
    if !context::switch_to(task) {
        // The chosen thread is still finishing a switch on another CPU
        // (cannot happen with one CPU); try again on the next tick.
        NEED_RESCHED.store(true, Ordering::Relaxed);
    }
}

fn schedule_from_idle() {
    // Interrupts are off here (halt_until_interrupt disables them).
    if !RUN_QUEUE.lock().is_empty() {
        switch_away(false);
    }
}

/// Gives up the CPU if another thread is runnable (sched_yield).
pub fn yield_now() {
    switch_away(true);
}

/// Blocks the calling thread until [`wake`] (or its deadline, if it set
/// one with [`sleep_until`]). Returns at once if a wakeup already arrived.
pub fn block() {
    let Some(cur) = current() else { return };
    {
        let mut s = cur.sched.lock();
        if s.woken {
            s.woken = false;
            return;
        }
        s.state = State::Blocked;
    }
    drop(cur);
    loop {
        switch_away(false);
        let Some(cur) = current() else { return };
        let mut s = cur.sched.lock();
        if s.state == State::Running {
            s.woken = false;
            return;
        }
    }
}

/// Makes `t` runnable if it is blocked; otherwise records the wakeup so
/// its next [`block`] returns at once.
pub fn wake(t: &Arc<Thread>) {
    let mut s = t.sched.lock();
    match s.state {
        State::Blocked => {
            s.state = State::Runnable;
            s.woken = false;
            RUN_QUEUE.lock().push_back(t.clone());
        }
        State::Dead => {}
        State::Running | State::Runnable => s.woken = true,
    }
}

/// Wakes the thread with id `tid`, if it exists.
pub fn wake_tid(tid: u32) {
    let t = THREADS.lock().get(&tid).cloned();
    if let Some(t) = t {
        wake(&t);
    }
}

/// Wakes every blocked thread (a signal arrived: each re-checks why it
/// waits).
pub fn wake_all_blocked() {
    let all: Vec<Arc<Thread>> = THREADS.lock().values().cloned().collect();
    for t in &all {
        let blocked = t.sched.lock().state == State::Blocked;
        if blocked {
            wake(t);
        }
    }
}

/// Sleeps until monotonic time `deadline` or an earlier [`wake`]. Returns
/// `true` if the deadline passed.
pub fn sleep_until(deadline: u64) -> bool {
    let Some(cur) = current() else { return true };
    if crate::time::now_nanos() >= deadline {
        return true;
    }
    cur.timed_out.store(false, Ordering::Relaxed);
    cur.deadline.store(deadline, Ordering::Relaxed);
    SLEEPERS.lock().push(cur.clone());
    block();
    cur.deadline.store(u64::MAX, Ordering::Relaxed);
    SLEEPERS.lock().retain(|t| t.tid != cur.tid);
    cur.timed_out.load(Ordering::Relaxed) || crate::time::now_nanos() >= deadline
}

/// The timer tick: wakes sleepers whose deadline passed and preempts the
/// current thread if it was in user mode and others are waiting.
pub fn on_tick(from_user: bool) {
    let now = crate::time::now_nanos();
    let due: Vec<Arc<Thread>> = {
        let mut s = SLEEPERS.lock();
        let (due, rest): (Vec<_>, Vec<_>) = s
            .drain(..)
            .partition(|t| t.deadline.load(Ordering::Relaxed) <= now);
        *s = rest;
        due
    };
    for t in &due {
        t.timed_out.store(true, Ordering::Relaxed);
        wake(t);
    }
    let others = !RUN_QUEUE.lock().is_empty();
    if others {
        if from_user {
            switch_away(true);
        } else {
            NEED_RESCHED.store(true, Ordering::Relaxed);
        }
    }
}

/// Called at the end of each syscall: yields if a tick asked for it.
pub fn syscall_exit() {
    if NEED_RESCHED.swap(false, Ordering::Relaxed) {
        switch_away(true);
    }
}

/// Ends the calling thread (the process goes on). Never returns.
pub fn exit_current() -> ! {
    if let Some(cur) = current() {
        cur.sched.lock().state = State::Dead;
        THREADS.lock().remove(&cur.tid);
    }
    loop {
        switch_away(false);
        // Only reached if nothing else could run, which cannot happen: the
        // idle thread always can.
        crate::arch::x86_64::halt_until_interrupt();
    }
}
