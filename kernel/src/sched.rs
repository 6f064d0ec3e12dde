//! Threads and the scheduler.
//!
//! Every thread of the process is a [`Thread`]: a tid, an arch [`Task`]
//! (kernel stack, saved registers, FPU state) and a scheduling state.
//!
//! Policy: each CPU has a FIFO run queue and runs its threads round-robin
//! with a 10 ms slice (the APIC timer tick). A CPU whose queue is empty
//! steals the oldest-queued thread from the longest other queue before it
//! idles, so work spreads over all CPUs. A thread woken by another CPU goes
//! back to the queue of the CPU it last ran on; if some CPU is idle, it is
//! sent a reschedule IPI so it wakes and takes (or steals) the work. So is
//! an idle CPU whenever a switch leaves threads waiting in a queue (a
//! preempted thread): two busy threads never take turns on one CPU while
//! another idles. Each CPU's `is_idle` says whether it runs its idle
//! thread, whichever way it got there. The
//! kernel is not preemptible: a tick that interrupts user code preempts it
//! at once; a tick that lands in a syscall sets the CPU's `need_resched`,
//! honoured at the syscall's end. Idle CPUs halt (`sti; hlt`).
//!
//! Ticks stay off the compute threads: an application processor whose
//! thread has the machine's work to itself (nothing queued that it may
//! run) stops its tick until work is queued, which sends it a reschedule
//! IPI that re-arms the tick ([`settle_tick`]; preemption then waits for
//! the next tick, as before); idle application processors stop theirs
//! too. The boot CPU always ticks, and only it polls the console and the
//! network stack from the tick.
//!
//! Blocking follows one protocol that cannot lose a wakeup, on one CPU or
//! several: a thread first makes itself findable (the futex table, the
//! sleeper list, the console waiters), then calls [`block`]; a waker calls
//! [`wake`]. Both take the thread's state lock; `wake` on a thread that has
//! not blocked yet leaves `woken` set, which makes its `block` return at
//! once. A thread woken while it is still switching away is queued
//! immediately; whoever picks it waits for the switch to finish
//! (`context::switch_to`).
//!
//! Killing the process (`crate::supervisor`): [`stop_all`] wakes every
//! thread and interrupts every other CPU; while the process is killed
//! `block` never blocks and [`spawn_user`] refuses; each thread takes
//! itself off the table ([`leave_process`], which tells the last one) and
//! ends ([`end_current`]). [`spawn_main`] starts the next run's thread 1.
#![deny(unsafe_code)]

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

use crate::arch::x86_64::context::{self, Task};
use crate::arch::x86_64::syscall::{MAX_CPUS, cpu_id};
use crate::memory::stacks;

/// Kernel stack of each user thread.
pub const THREAD_KSTACK: u64 = 128 * 1024;

/// Scheduling state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// On a CPU.
    Running,
    /// In a run queue.
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
    /// Thread id (1 is the main thread; idle threads use 0).
    pub tid: u32,
    task: Arc<Task>,
    sched: Mutex<Sched>,
    /// The CPU it last ran on (its home run queue).
    last_cpu: AtomicUsize,
    /// CPUs it may run on (bit n = CPU n).
    affinity: AtomicU64,
    /// CLONE_CHILD_CLEARTID / set_tid_address: cleared and futex-woken at exit.
    pub clear_child_tid: AtomicU64,
    /// set_robust_list head.
    pub robust_list: AtomicU64,
    /// Monotonic deadline for a timed sleep (u64::MAX: none).
    pub deadline: AtomicU64,
    /// Whether the last block ended by its deadline.
    pub timed_out: AtomicBool,
}

struct Cpu {
    queue: Mutex<VecDeque<Arc<Thread>>>,
    current: Mutex<Option<Arc<Thread>>>,
    idle: Mutex<Option<Arc<Thread>>>,
    need_resched: AtomicBool,
    is_idle: AtomicBool,
    /// The CPU runs a thread with its tick stopped (see [`settle_tick`]).
    tick_off: AtomicBool,
}

static CPUS: [Cpu; MAX_CPUS] = [const {
    Cpu {
        queue: Mutex::new(VecDeque::new()),
        current: Mutex::new(None),
        idle: Mutex::new(None),
        need_resched: AtomicBool::new(false),
        is_idle: AtomicBool::new(false),
        tick_off: AtomicBool::new(false),
    }
}; MAX_CPUS];

static THREADS: Mutex<BTreeMap<u32, Arc<Thread>>> = Mutex::new(BTreeMap::new());
static SLEEPERS: Mutex<Vec<Arc<Thread>>> = Mutex::new(Vec::new());
static NEXT_TID: AtomicU32 = AtomicU32::new(2);
static STARTED: AtomicBool = AtomicBool::new(false);
/// Threads created since boot (statistics).
pub static CREATED: AtomicU64 = AtomicU64::new(0);

fn new_thread(tid: u32, task: Arc<Task>, state: State, cpu: usize) -> Arc<Thread> {
    Arc::new(Thread {
        tid,
        task,
        sched: Mutex::new(Sched {
            state,
            woken: false,
        }),
        last_cpu: AtomicUsize::new(cpu),
        affinity: AtomicU64::new(u64::MAX),
        clear_child_tid: AtomicU64::new(0),
        robust_list: AtomicU64::new(0),
        deadline: AtomicU64::new(u64::MAX),
        timed_out: AtomicBool::new(false),
    })
}

fn this_cpu() -> &'static Cpu {
    &CPUS[cpu_id()]
}

extern "C" fn idle_loop() -> ! {
    let cpu = cpu_id();
    loop {
        this_cpu().is_idle.store(true, Ordering::SeqCst);
        // Application processors stop their tick while idle (tickless
        // idle): work arrives with a reschedule IPI, which `enqueue` sends
        // to idle CPUs. Re-check after announcing idleness so work queued
        // just before is not missed.
        let tickless = cpu != 0;
        if tickless {
            crate::arch::x86_64::apic::set_timer_masked(true);
        }
        if !has_work(cpu) {
            crate::arch::x86_64::halt_until_interrupt();
        }
        if tickless {
            crate::arch::x86_64::apic::set_timer_masked(false);
        }
        this_cpu().is_idle.store(false, Ordering::SeqCst);
        if has_work(cpu) {
            switch_away(false);
        }
    }
}

/// Sets up scheduling on the boot CPU with the running context as thread 1
/// (taking its kernel entries on `kstack`), plus the boot CPU's idle thread.
pub fn init(kstack: stacks::KernelStack) -> Result<(), stacks::StackError> {
    let main_task = Task::current_with_stack(kstack);
    context::set_current(main_task.clone());
    let main = new_thread(1, main_task, State::Running, 0);
    THREADS.lock().insert(1, main.clone());
    *CPUS[0].current.lock() = Some(main);
    let idle_stack = stacks::allocate("idle", 32 * 1024)?;
    let idle = new_thread(
        0,
        Task::new_kernel_thread(idle_stack, idle_loop),
        State::Runnable,
        0,
    );
    *CPUS[0].idle.lock() = Some(idle);
    STARTED.store(true, Ordering::Release);
    Ok(())
}

/// Turns the calling application processor's boot context into its idle
/// thread and runs the idle loop (picking up threads as they appear).
pub fn run_idle_on_this_cpu(cpu: usize) -> ! {
    let task = Task::current_context();
    context::set_current(task.clone());
    let idle = new_thread(0, task, State::Running, cpu);
    *CPUS[cpu].idle.lock() = Some(idle.clone());
    *CPUS[cpu].current.lock() = Some(idle);
    idle_loop()
}

/// The calling thread.
pub fn current() -> Option<Arc<Thread>> {
    this_cpu().current.lock().clone()
}

/// The calling thread's id (1 before scheduling starts).
pub fn current_tid() -> u32 {
    current().map_or(1, |t| t.tid)
}

/// Whether a thread with id `tid` exists.
pub fn exists(tid: u32) -> bool {
    THREADS.lock().contains_key(&tid)
}

/// Whether CPU `cpu` has a thread to run: one in its own queue, or one in
/// another queue that its affinity lets it take. (Counting threads it may
/// not take kept an idle CPU spinning through its idle loop while another
/// CPU's queue held a thread pinned elsewhere.)
fn has_work(cpu: usize) -> bool {
    // Only threads this CPU may run count, in its own queue too: one that
    // sat there after its affinity changed made the idle loop spin with
    // interrupts off for good, and a TLB shootdown waiting for this CPU
    // then hung the machine (found by the syscall fuzzer).
    (0..crate::smp::online()).any(|c| CPUS[c].queue.lock().iter().any(|t| allowed(t, cpu)))
}

/// Bit mask of the online CPUs.
pub fn online_mask() -> u64 {
    let n = crate::smp::online().clamp(1, 64);
    if n == 64 { u64::MAX } else { (1u64 << n) - 1 }
}

fn allowed(t: &Thread, cpu: usize) -> bool {
    t.affinity.load(Ordering::Relaxed) & (1u64 << cpu) != 0
}

/// The CPUs thread `tid` (0: the caller) may run on.
pub fn affinity(tid: u32) -> Option<u64> {
    let t = if tid == 0 {
        current()?
    } else {
        THREADS.lock().get(&tid).cloned()?
    };
    Some(t.affinity.load(Ordering::Relaxed) & online_mask())
}

/// Restricts thread `tid` (0: the caller) to the CPUs in `mask` (already
/// checked to include an online CPU). If the caller may no longer run
/// where it is, it moves at once.
pub fn set_affinity(tid: u32, mask: u64) -> bool {
    let t = if tid == 0 {
        current()
    } else {
        THREADS.lock().get(&tid).cloned()
    };
    let Some(t) = t else { return false };
    let was_on = t.last_cpu.load(Ordering::Relaxed);
    t.affinity.store(mask, Ordering::Relaxed);
    if !allowed(&t, was_on) {
        t.last_cpu
            .store(mask.trailing_zeros() as usize, Ordering::Relaxed);
    }
    let is_me = current().is_some_and(|c| Arc::ptr_eq(&c, &t));
    if !is_me {
        // Waiting in the queue of a CPU it may no longer use: move it to
        // one it may (else it waits there until an allowed CPU has nothing
        // else to do and steals it).
        for c in (0..crate::smp::online()).filter(|&c| !allowed(&t, c)) {
            let moved = {
                let mut q = CPUS[c].queue.lock();
                q.iter()
                    .position(|x| Arc::ptr_eq(x, &t))
                    .and_then(|i| q.remove(i))
            };
            if let Some(m) = moved {
                enqueue(m);
                break;
            }
        }
        // Running on a CPU it may no longer use: that CPU's next tick
        // preempts it (the kick turns a stopped tick back on), and the
        // requeue sends it to an allowed one.
        if !allowed(&t, was_on) && t.sched.lock().state == State::Running {
            kick(was_on);
        }
    }
    if is_me && !allowed(&t, cpu_id()) {
        // Queue ourselves on an allowed CPU (kicking it if idle) and step
        // off this one.
        t.sched.lock().state = State::Runnable;
        enqueue(t.clone());
        drop(t);
        switch_away(false);
    }
    true
}

/// Sends CPU `c` a reschedule IPI.
fn kick(c: usize) {
    if let Some(id) = crate::smp::apic_id_of(c) {
        crate::arch::x86_64::apic::send_ipi(id, crate::arch::x86_64::idt::RESCHED_VECTOR);
    }
}

/// An idle CPU other than `me` among those in `mask`, if any.
fn idle_cpu_besides(me: usize, mask: u64) -> Option<usize> {
    (0..crate::smp::online())
        .find(|&c| c != me && mask & (1 << c) != 0 && CPUS[c].is_idle.load(Ordering::Acquire))
}

/// Queues `t` on its home CPU and kicks an idle CPU if there is one.
fn enqueue(t: Arc<Thread>) {
    let online = crate::smp::online();
    let mut home = t.last_cpu.load(Ordering::Relaxed).min(online - 1);
    if !allowed(&t, home) {
        let m = t.affinity.load(Ordering::Relaxed) & online_mask();
        home = if m == 0 {
            0
        } else {
            m.trailing_zeros() as usize
        };
        t.last_cpu.store(home, Ordering::Relaxed);
    }
    let t_mask = t.affinity.load(Ordering::Relaxed);
    CPUS[home].queue.lock().push_back(t);
    let me = cpu_id();
    let target = if CPUS[home].is_idle.load(Ordering::Acquire) {
        Some(home)
    } else {
        idle_cpu_besides(me, t_mask)
    };
    if let Some(c) = target
        && c != me
    {
        kick(c);
    }
    // CPUs running without their tick must learn that there is work to
    // share now (pairs with the fence in `settle_tick`).
    core::sync::atomic::fence(Ordering::SeqCst);
    tick_on(me);
    for c in (0..online).filter(|&c| c != me && Some(c) != target) {
        if CPUS[c].tick_off.load(Ordering::SeqCst) {
            kick(c);
        }
    }
}

/// Restarts CPU `cpu`'s tick if [`settle_tick`] stopped it (call on that
/// CPU); returns whether it had.
fn tick_on(cpu: usize) -> bool {
    let was_off = CPUS[cpu].tick_off.swap(false, Ordering::SeqCst);
    if was_off {
        crate::arch::x86_64::apic::set_timer_masked(false);
    }
    was_off
}

/// Stops an application processor's tick while the thread it is about to
/// run (`next_idle`: the idle thread, which manages its own tick) has the
/// machine's work to itself: nothing is queued that this CPU may run, so
/// a tick could only interrupt it to find nothing to do. The tick comes
/// back as soon as anything is queued ([`enqueue`] sends such CPUs a
/// reschedule IPI). The
/// boot CPU always ticks: it runs the sleepers, console input and the
/// network stack's timers.
fn settle_tick(cpu: usize, next_idle: bool) {
    let here = &CPUS[cpu];
    if cpu == 0 || next_idle {
        tick_on(cpu);
        return;
    }
    // Announce first, then look (pairs with the fence in `enqueue`): either
    // this CPU sees the queued work or the enqueuer sees `tick_off`.
    here.tick_off.store(true, Ordering::SeqCst);
    core::sync::atomic::fence(Ordering::SeqCst);
    if has_work(cpu) {
        here.tick_off.store(false, Ordering::SeqCst);
        crate::arch::x86_64::apic::set_timer_masked(false);
    } else {
        crate::arch::x86_64::apic::set_timer_masked(true);
    }
}

/// Why a thread could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// No kernel stack for it.
    Stack(stacks::StackError),
    /// The process is being killed.
    Killed,
}

/// Creates a user thread that will resume user mode with `frame`; it runs
/// once [`start`] is called.
pub fn spawn_user(
    frame: &crate::arch::x86_64::syscall::SyscallFrame,
    fs_base: u64,
) -> Result<Arc<Thread>, SpawnError> {
    let tid = NEXT_TID.fetch_add(1, Ordering::Relaxed);
    let stack = stacks::allocate("thread", THREAD_KSTACK).map_err(SpawnError::Stack)?;
    let task = Task::new_user_thread(stack, frame, fs_base).ok_or(SpawnError::Stack(
        stacks::StackError::Map(crate::memory::paging::MapError::OutOfFrames),
    ))?;
    // Spread new threads over the CPUs.
    let cpu = (tid as usize) % crate::smp::online().max(1);
    let t = new_thread(tid, task, State::Runnable, cpu);
    {
        // Checked under the table lock that `stop_all` takes after the
        // process is marked killed: either the new thread is in the table
        // it walks, or the kill is seen here.
        let mut threads = THREADS.lock();
        if crate::supervisor::killed() {
            return Err(SpawnError::Killed);
        }
        threads.insert(tid, t.clone());
    }
    CREATED.fetch_add(1, Ordering::Relaxed);
    Ok(t)
}

/// Creates and starts thread 1 of a new process (a restarted program),
/// whose address space is the active one: it enters user mode at `rip`
/// with stack pointer `rsp` and every other register zero, as after
/// execve. Thread ids start over at 2 for its later threads.
pub fn spawn_main(rip: u64, rsp: u64) -> Result<(), stacks::StackError> {
    let stack = stacks::allocate("syscall", crate::init::SYSCALL_STACK)?;
    let frame = crate::arch::x86_64::syscall::SyscallFrame {
        rip,
        rsp,
        // IF and the reserved bit 1.
        rflags: 0x202,
        ..crate::arch::x86_64::syscall::SyscallFrame::ZERO
    };
    let task = Task::new_process_thread(stack, &frame).ok_or(stacks::StackError::Map(
        crate::memory::paging::MapError::OutOfFrames,
    ))?;
    let t = new_thread(1, task, State::Runnable, 0);
    NEXT_TID.store(2, Ordering::Relaxed);
    THREADS.lock().insert(1, t.clone());
    CREATED.fetch_add(1, Ordering::Relaxed);
    enqueue(t);
    Ok(())
}

/// Makes every thread of the (killed) process leave: wakes each one, so
/// none stays blocked (`block` no longer blocks), and interrupts every
/// other CPU, so a thread running user code there leaves from the
/// interrupt. The caller marked the process killed first.
pub fn stop_all() {
    let all: Vec<Arc<Thread>> = THREADS.lock().values().cloned().collect();
    for t in &all {
        wake(t);
    }
    let me = cpu_id();
    for c in (0..crate::smp::online()).filter(|&c| c != me) {
        kick(c);
    }
}

/// A new user thread's first step: it leaves at once if the process was
/// killed before it ever ran.
pub fn on_user_thread_start() {
    if crate::supervisor::killed() {
        crate::supervisor::leave_killed()
    }
}

/// Lets a thread made by [`spawn_user`] run (after the caller has set
/// everything it must see before its first instruction).
pub fn start(t: &Arc<Thread>) {
    enqueue(t.clone());
}

/// The next thread for CPU `cpu`: its own queue first, then the longest
/// other queue (stealing the oldest thread there).
fn pick(cpu: usize) -> Option<Arc<Thread>> {
    let take = |c: usize| {
        let mut q = CPUS[c].queue.lock();
        let i = q.iter().position(|t| allowed(t, cpu))?;
        q.remove(i)
    };
    loop {
        // One queue lock at a time, so two CPUs stealing from each other
        // cannot deadlock. Threads whose affinity excludes this CPU stay
        // where they are.
        let t = match take(cpu) {
            Some(t) => t,
            None => {
                let online = crate::smp::online();
                let mut victims: Vec<(usize, usize)> = (0..online)
                    .filter(|&c| c != cpu)
                    .map(|c| (c, CPUS[c].queue.lock().len()))
                    .filter(|&(_, n)| n > 0)
                    .collect();
                victims.sort_by_key(|&(_, n)| core::cmp::Reverse(n));
                victims.into_iter().find_map(|(c, _)| take(c))?
            }
        };
        if t.sched.lock().state == State::Dead {
            continue;
        }
        return Some(t);
    }
}

/// Picks the next thread and switches to it. `requeue` puts the current
/// thread back on the run queue (preemption, yield). Interrupts must be off.
///
/// The current thread's state is settled *before* anything is picked and
/// never touched afterwards: once it is in a queue another CPU may pick it
/// (and wait in `context::switch_to` until this switch is done), and that
/// CPU owns its state from then on.
fn switch_away(requeue: bool) {
    let cpu = cpu_id();
    let here = &CPUS[cpu];
    let Some(cur) = here.current.lock().clone() else {
        return;
    };
    if requeue && cur.tid != 0 {
        let mut s = cur.sched.lock();
        if s.state == State::Running {
            s.state = State::Runnable;
            if allowed(&cur, cpu) {
                here.queue.lock().push_back(cur.clone());
            } else {
                // Its affinity changed while it ran here: to a CPU it may
                // use.
                drop(s);
                enqueue(cur.clone());
            }
        }
    }
    // Every caller but the idle loop has given `cur` up by now (requeued
    // it, blocked it, ended it or queued it elsewhere), so another CPU may
    // already have picked it and marked it Running: its state says nothing
    // about whether this CPU may keep running it. Only the idle thread,
    // which is never queued, stays when nothing else can run.
    let keep = cur.tid == 0;
    let next = match pick(cpu) {
        Some(n) if Arc::ptr_eq(&n, &cur) => {
            // Picked ourselves back (requeued, or woken while deciding to
            // block): keep running.
            n.sched.lock().state = State::Running;
            settle_tick(cpu, n.tid == 0);
            return;
        }
        Some(n) => n,
        None => {
            if keep {
                return;
            }
            match here.idle.lock().clone() {
                Some(i) if !Arc::ptr_eq(&i, &cur) => i,
                _ => return,
            }
        }
    };
    next.sched.lock().state = State::Running;
    next.last_cpu.store(cpu, Ordering::Relaxed);
    // `is_idle` says what this CPU runs from now on, however it got here:
    // the idle thread also leaves it from the reschedule IPI or the tick
    // (interrupting its `hlt`), without passing the idle loop's own store.
    // A stale `true` made `enqueue` queue work here without kicking the
    // CPU that really was idle.
    here.is_idle.store(next.tid == 0, Ordering::SeqCst);
    // Threads still waiting here (a preempted one, say) belong on an idle
    // CPU if there is one: an idle application processor has no tick and
    // looks for work only when kicked.
    if next.tid != 0 {
        let waiting = here
            .queue
            .lock()
            .iter()
            .fold(0u64, |m, t| m | t.affinity.load(Ordering::Relaxed));
        if let Some(c) = idle_cpu_besides(cpu, waiting) {
            kick(c);
        }
    }
    settle_tick(cpu, next.tid == 0);
    *here.current.lock() = Some(next.clone());
    let task = next.task.clone();
    drop(next);
    drop(cur);
    context::switch_to(task);
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
        // A killed process's threads never block: they are on their way
        // out (`stop_all` wakes those that blocked before the kill; the
        // check is under the lock its wakeup takes).
        if s.woken || crate::supervisor::killed() {
            s.woken = false;
            return;
        }
        s.state = State::Blocked;
    }
    loop {
        switch_away(false);
        let mut s = cur.sched.lock();
        if s.state == State::Running {
            s.woken = false;
            return;
        }
        drop(s);
        // Nothing else could run and we are not runnable yet: wait for an
        // interrupt (a wakeup from another CPU or a tick).
        crate::arch::x86_64::halt_until_interrupt();
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
            drop(s);
            enqueue(t.clone());
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

/// The timer tick on this CPU: wakes sleepers whose deadline passed and
/// preempts the current thread if it was in user mode and others wait.
pub fn on_tick(from_user: bool) {
    if !STARTED.load(Ordering::Acquire) {
        return;
    }
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
    preempt_if_needed(from_user);
}

fn preempt_if_needed(from_user: bool) {
    let cpu = cpu_id();
    let idle_now = CPUS[cpu]
        .current
        .lock()
        .as_ref()
        .is_some_and(|t| t.tid == 0);
    if !has_work(cpu) {
        // Alone with its thread: no need for the next tick either.
        if !idle_now {
            settle_tick(cpu, false);
        }
        return;
    }
    tick_on(cpu);
    if from_user || idle_now {
        switch_away(true);
    } else {
        CPUS[cpu].need_resched.store(true, Ordering::Relaxed);
    }
}

/// The reschedule IPI: work was queued for this CPU.
pub fn on_resched_ipi(from_user: bool) {
    if !STARTED.load(Ordering::Acquire) {
        return;
    }
    if tick_on(cpu_id()) {
        // Work was queued while this CPU ran its thread without a tick:
        // the tick comes back and preempts at its next beat, as if it had
        // never stopped (an idle CPU, by contrast, takes the work now).
        return;
    }
    preempt_if_needed(from_user);
}

/// Called at the end of each syscall: yields if a tick asked for it.
pub fn syscall_exit() {
    if this_cpu().need_resched.swap(false, Ordering::Relaxed) {
        switch_away(true);
    }
}

/// Takes the calling thread off the process's thread table; returns
/// whether it was the last one there. The thread keeps running (in the
/// kernel) until [`end_current`].
pub fn leave_process() -> bool {
    let Some(cur) = current() else { return false };
    let mut threads = THREADS.lock();
    let mine = threads.get(&cur.tid).is_some_and(|t| Arc::ptr_eq(t, &cur));
    if mine {
        threads.remove(&cur.tid);
    }
    mine && threads.is_empty()
}

/// Ends the calling thread for good (after [`leave_process`]). Its kernel
/// stack is freed once another thread runs on this CPU.
pub fn end_current() -> ! {
    if let Some(cur) = current() {
        cur.sched.lock().state = State::Dead;
    }
    loop {
        switch_away(false);
        // Only reached if nothing else could run, which cannot happen: the
        // idle thread always can.
        crate::arch::x86_64::halt_until_interrupt();
    }
}
