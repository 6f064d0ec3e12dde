//! Execution contexts and switching between them.
//!
//! A [`Task`] is what the CPU needs to resume a thread: its kernel stack
//! pointer (callee-saved registers live on that stack), its FS/GS bases and
//! its x87/SSE/AVX state (an XSAVE area; FXSAVE without XSAVE). The kernel
//! itself never uses vector registers, so saving them at a switch captures
//! exactly the user's state.
//!
//! [`switch_to`] is a safe API: it switches from the task that is current
//! on this CPU to `next` (callee-saved registers and RFLAGS on each task's
//! own stack, so no flag a kernel path leaves set can follow another
//! thread), and refuses a `next` that is already running
//! somewhere (its `on_cpu` flag). The previous task's flag is cleared only
//! after the switch, by the code that runs on the next task's stack
//! ([`finish_switch`]), so no CPU can resume a task whose stack another CPU
//! is still using.
//!
//! A new user thread starts at `thread_entry`, which finishes the switch and
//! returns to user mode through the same register frame a syscall uses.

use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ::x86_64::VirtAddr;
use ::x86_64::registers::model_specific::{FsBase, KernelGsBase};
use spin::Mutex;

use super::syscall::{MAX_CPUS, SyscallFrame, cpu_id};
use crate::memory::stacks::KernelStack;

core::arch::global_asm!(
    ".global llmos_switch_context",
    // rdi: where to store the old stack pointer; rsi: the new one.
    // Returns (in the resumed context) nothing; state lives on the stacks.
    // RFLAGS are saved and restored per thread: whatever one thread's
    // kernel path left in AC, DF or TF stays with that thread.
    "llmos_switch_context:",
    "    push rbp",
    "    push rbx",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    pushfq",
    "    mov [rdi], rsp",
    "    mov rsp, rsi",
    "    popfq",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbx",
    "    pop rbp",
    "    ret",
    ".global llmos_thread_entry",
    // A new thread's first instruction in the kernel: rsp points at its
    // SyscallFrame. Finish the switch (and leave at once if the process
    // was killed meanwhile), then return to user mode exactly as the
    // syscall path does.
    "llmos_thread_entry:",
    "    call {start}",
    "    cli",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbp",
    "    pop rbx",
    "    pop r9",
    "    pop r8",
    "    pop r10",
    "    pop rdx",
    "    pop rsi",
    "    pop rdi",
    "    pop rax",
    "    pop rcx",
    "    pop r11",
    "    pop rsp",
    "    swapgs",
    "    sysretq",
    start = sym user_thread_start_c,
);

core::arch::global_asm!(
    ".global llmos_kthread_entry",
    // A new kernel thread: rsp points at the function to run.
    "llmos_kthread_entry:",
    "    call {finish}",
    "    pop rax",
    "    and rsp, -16",
    "    call rax",
    "    ud2",
    finish = sym finish_switch_c,
);

unsafe extern "C" {
    fn llmos_switch_context(old_rsp: *mut u64, new_rsp: u64);
    fn llmos_thread_entry();
    fn llmos_kthread_entry();
}

/// RFLAGS a new thread starts its kernel life with: interrupts off (as
/// every switch happens), AC and DF clear, only the reserved bit 1 set.
const INITIAL_RFLAGS: u64 = 0x2;

/// Bytes of the extended-state area (set at boot from CPUID 0xD).
static XSAVE_SIZE: AtomicU64 = AtomicU64::new(512);
static XSAVE_MASK: AtomicU64 = AtomicU64::new(0);

static XSAVEOPT: AtomicBool = AtomicBool::new(false);

/// Records the extended-state layout (`xcr0` 0 means FXSAVE only) and
/// whether XSAVEOPT (which skips unmodified components) is available.
pub fn set_xsave_layout(xcr0: u64, size: u32) {
    XSAVE_MASK.store(xcr0, Ordering::Relaxed);
    XSAVE_SIZE.store(u64::from(size.max(512)), Ordering::Relaxed);
    if xcr0 != 0 {
        let opt = core::arch::x86_64::__cpuid_count(0xd, 1).eax & 1 != 0;
        XSAVEOPT.store(opt, Ordering::Relaxed);
    }
}

/// A 64-byte-aligned buffer for XSAVE/FXSAVE.
struct XsaveArea {
    ptr: *mut u8,
    layout: core::alloc::Layout,
}

impl XsaveArea {
    /// An area for a CPU's boot or idle context (boot time: failing is a
    /// kernel bug).
    fn new() -> Self {
        match Self::try_new() {
            Some(a) => a,
            None => alloc::alloc::handle_alloc_error(Self::layout()),
        }
    }

    fn layout() -> core::alloc::Layout {
        let size = XSAVE_SIZE.load(Ordering::Relaxed) as usize + 64;
        core::alloc::Layout::from_size_align(size, 64).expect("valid xsave layout")
    }

    /// An area, or `None` if the heap cannot provide it (a new thread then
    /// fails with ENOMEM instead of panicking).
    fn try_new() -> Option<Self> {
        let layout = Self::layout();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // Default x87 control word and MXCSR, as after FNINIT/reset: XRSTOR
        // loads MXCSR from the area even for components in their init state.
        // SAFETY: offsets 0 and 24 lie inside the (≥ 512-byte) area.
        unsafe {
            ptr.cast::<u16>().write(0x037f);
            ptr.add(24).cast::<u32>().write(0x1f80);
        }
        Some(Self { ptr, layout })
    }

    fn save(&self) {
        let mask = XSAVE_MASK.load(Ordering::Relaxed);
        // SAFETY: the area is 64-byte aligned and at least as large as CPUID
        // says XSAVE needs for the enabled components (or 512 for FXSAVE).
        unsafe {
            if mask != 0 && XSAVEOPT.load(Ordering::Relaxed) {
                core::arch::asm!("xsaveopt64 [{p}]", p = in(reg) self.ptr, in("eax") mask as u32, in("edx") (mask >> 32) as u32, options(nostack));
            } else if mask != 0 {
                core::arch::asm!("xsave64 [{p}]", p = in(reg) self.ptr, in("eax") mask as u32, in("edx") (mask >> 32) as u32, options(nostack));
            } else {
                core::arch::asm!("fxsave64 [{p}]", p = in(reg) self.ptr, options(nostack));
            }
        }
    }

    fn restore(&self) {
        let mask = XSAVE_MASK.load(Ordering::Relaxed);
        // SAFETY: the area holds a state saved by `save` or the valid
        // initial image written by `new` (zero header = init state).
        unsafe {
            if mask != 0 {
                core::arch::asm!("xrstor64 [{p}]", p = in(reg) self.ptr, in("eax") mask as u32, in("edx") (mask >> 32) as u32, options(nostack));
            } else {
                core::arch::asm!("fxrstor64 [{p}]", p = in(reg) self.ptr, options(nostack));
            }
        }
    }
}

impl Drop for XsaveArea {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// A resumable execution context.
pub struct Task {
    /// Physical address of the level-4 table (CR3) a user thread runs in;
    /// 0 for kernel threads, which run in whatever is loaded, and for the
    /// last thread of a dead process once its tables are gone
    /// ([`detach_from_user_tables`]).
    cr3: AtomicU64,
    rsp: UnsafeCell<u64>,
    on_cpu: AtomicBool,
    fs_base: UnsafeCell<u64>,
    gs_base: UnsafeCell<u64>,
    xsave: XsaveArea,
    stack: Option<KernelStack>,
}

// SAFETY: the cells are only touched by the CPU that runs the task (in
// `switch_to`, with interrupts off) while `on_cpu` guarantees no other CPU
// resumes it; the XSAVE buffer likewise.
unsafe impl Sync for Task {}
// SAFETY: as above; a Task moves between CPUs only while not running.
unsafe impl Send for Task {}

impl Task {
    /// Wraps the context that is running right now on this CPU (boot, idle).
    pub fn current_context() -> Arc<Task> {
        Arc::new(Task {
            cr3: AtomicU64::new(0),
            rsp: UnsafeCell::new(0),
            on_cpu: AtomicBool::new(true),
            fs_base: UnsafeCell::new(0),
            gs_base: UnsafeCell::new(0),
            xsave: XsaveArea::new(),
            stack: None,
        })
    }

    /// The context running now, which takes its kernel entries (syscalls,
    /// interrupts from user mode) on `stack`: the first user thread.
    pub fn current_with_stack(stack: KernelStack) -> Arc<Task> {
        Arc::new(Task {
            cr3: AtomicU64::new(
                ::x86_64::registers::control::Cr3::read()
                    .0
                    .start_address()
                    .as_u64(),
            ),
            rsp: UnsafeCell::new(0),
            on_cpu: AtomicBool::new(true),
            fs_base: UnsafeCell::new(0),
            gs_base: UnsafeCell::new(0),
            xsave: XsaveArea::new(),
            stack: Some(stack),
        })
    }

    /// A kernel thread that runs `entry` on `stack` (e.g. a CPU's idle
    /// loop).
    pub fn new_kernel_thread(stack: KernelStack, entry: extern "C" fn() -> !) -> Arc<Task> {
        let top = stack.top;
        let rsp = top - 16 - 8 - 7 * 8;
        // SAFETY: a fresh, exclusively owned stack; the writes stay in its
        // top page: the first RFLAGS, six zero callee-saved slots, the
        // entry trampoline, and the function it calls.
        unsafe {
            (rsp as *mut u64).write(INITIAL_RFLAGS);
            for i in 1..7 {
                ((rsp + i * 8) as *mut u64).write(0);
            }
            ((rsp + 56) as *mut u64).write(llmos_kthread_entry as *const () as u64);
            ((rsp + 64) as *mut u64).write(entry as *const () as u64);
        }
        Arc::new(Task {
            cr3: AtomicU64::new(0),
            rsp: UnsafeCell::new(rsp),
            on_cpu: AtomicBool::new(false),
            fs_base: UnsafeCell::new(0),
            gs_base: UnsafeCell::new(0),
            xsave: XsaveArea::new(),
            stack: Some(stack),
        })
    }

    /// A new user thread that will return to user mode with `frame`'s
    /// registers, running on `stack`. Its FPU state is a copy of the
    /// current (calling) thread's, its FS base `fs_base`. `None` if the
    /// heap cannot hold its extended-state area.
    pub fn new_user_thread(
        stack: KernelStack,
        frame: &SyscallFrame,
        fs_base: u64,
    ) -> Option<Arc<Task>> {
        let xsave = XsaveArea::try_new()?;
        xsave.save();
        Some(Self::user_task(
            stack,
            frame,
            fs_base,
            KernelGsBase::read().as_u64(),
            xsave,
        ))
    }

    /// The first thread of a new process, whose address space is the
    /// active one: it will enter user mode with `frame`'s registers, the
    /// initial x87/SSE/AVX state and no FS or GS base (nothing of the
    /// thread that creates it, the last one of the previous run). `None`
    /// if the heap cannot hold its extended-state area.
    pub fn new_process_thread(stack: KernelStack, frame: &SyscallFrame) -> Option<Arc<Task>> {
        Some(Self::user_task(stack, frame, 0, 0, XsaveArea::try_new()?))
    }

    fn user_task(
        stack: KernelStack,
        frame: &SyscallFrame,
        fs_base: u64,
        gs_base: u64,
        xsave: XsaveArea,
    ) -> Arc<Task> {
        let top = stack.top;
        let frame_words = core::mem::size_of::<SyscallFrame>() / 8;
        // Layout from the top: the SyscallFrame, then the return address
        // (thread entry), six zeros for the callee-saved registers and the
        // first RFLAGS that `llmos_switch_context` pops.
        let frame_at = top - (frame_words as u64) * 8;
        let rsp = frame_at - 8 - 7 * 8;
        // SAFETY: `stack` is a freshly mapped, exclusively owned kernel stack
        // and these writes stay inside its top page(s).
        unsafe {
            (frame_at as *mut SyscallFrame).write(*frame);
            ((frame_at - 8) as *mut u64).write(llmos_thread_entry as *const () as u64);
            (rsp as *mut u64).write(INITIAL_RFLAGS);
            for i in 1..7 {
                ((rsp + i * 8) as *mut u64).write(0);
            }
        }
        Arc::new(Task {
            cr3: AtomicU64::new(
                ::x86_64::registers::control::Cr3::read()
                    .0
                    .start_address()
                    .as_u64(),
            ),
            rsp: UnsafeCell::new(rsp),
            on_cpu: AtomicBool::new(false),
            fs_base: UnsafeCell::new(fs_base),
            gs_base: UnsafeCell::new(gs_base),
            xsave,
            stack: Some(stack),
        })
    }

    /// Whether the task is running (or being switched away from).
    pub fn is_on_cpu(&self) -> bool {
        self.on_cpu.load(Ordering::Relaxed)
    }

    /// Top of the task's kernel stack, if it owns one.
    pub fn stack_top(&self) -> Option<u64> {
        self.stack.as_ref().map(|s| s.top)
    }
}

/// Per-CPU switching state.
struct CpuSlot {
    current: Mutex<Option<Arc<Task>>>,
    prev: Mutex<Option<Arc<Task>>>,
}

static SLOTS: [CpuSlot; MAX_CPUS] = [const {
    CpuSlot {
        current: Mutex::new(None),
        prev: Mutex::new(None),
    }
}; MAX_CPUS];

fn slot() -> &'static CpuSlot {
    &SLOTS[cpu_id()]
}

/// Makes `task` (from [`Task::current_context`]) this CPU's current task.
pub fn set_current(task: Arc<Task>) {
    *slot().current.lock() = Some(task);
}

/// The task running on this CPU.
pub fn current() -> Option<Arc<Task>> {
    slot().current.lock().clone()
}

/// Makes the running task one that runs in whatever tables are loaded
/// (like a kernel thread): for the last thread of a dead process, which
/// goes on in the kernel (tearing the process down, starting the next
/// run) after its own tables were freed. Switching back to it must not
/// load them.
pub fn detach_from_user_tables() {
    if let Some(t) = current() {
        t.cr3.store(0, Ordering::Relaxed);
    }
}

/// Switches from this CPU's current task to `next`. Returns `false`
/// without switching if `next` is the current task; waits while `next` is
/// still being switched away from on another CPU. Interrupts must be off (the caller holds no locks the
/// next task might need). Returns `true` once this task runs again.
pub fn switch_to(next: Arc<Task>) -> bool {
    if slot()
        .current
        .lock()
        .as_ref()
        .is_some_and(|c| Arc::ptr_eq(c, &next))
    {
        return false;
    }
    // `next` may still be finishing its switch away on another CPU; that
    // takes a few instructions and needs nothing from this CPU.
    while next.on_cpu.swap(true, Ordering::AcqRel) {
        core::hint::spin_loop();
    }
    let Some(prev) = slot().current.lock().replace(next.clone()) else {
        next.on_cpu.store(false, Ordering::Release);
        return false;
    };
    // Save the user-visible state of `prev`, load `next`'s.
    prev.xsave.save();
    // SAFETY: `prev` is running on this CPU (it is current), so no other
    // CPU touches its cells; `next` is not running (its flag was clear).
    unsafe {
        *prev.fs_base.get() = FsBase::read().as_u64();
        *prev.gs_base.get() = KernelGsBase::read().as_u64();
        FsBase::write(VirtAddr::new_truncate(*next.fs_base.get()));
        KernelGsBase::write(VirtAddr::new_truncate(*next.gs_base.get()));
    }
    next.xsave.restore();
    let cr3 = next.cr3.load(Ordering::Relaxed);
    if cr3 != 0 {
        let cr3 = ::x86_64::structures::paging::PhysFrame::containing_address(
            ::x86_64::PhysAddr::new(cr3),
        );
        let (cur, flags) = ::x86_64::registers::control::Cr3::read();
        if cur != cr3 {
            // SAFETY: `cr3` is the level-4 table of the process the thread
            // belongs to; it maps the kernel half like every other table.
            unsafe { ::x86_64::registers::control::Cr3::write(cr3, flags) };
        }
    }
    if let Some(top) = next.stack_top() {
        super::syscall::set_kernel_stack(top);
    }
    let old_rsp = prev.rsp.get();
    // SAFETY: as above for the cells.
    let new_rsp = unsafe { *next.rsp.get() };
    *slot().prev.lock() = Some(prev.clone());
    drop(prev);
    drop(next);
    // SAFETY: `old_rsp` points into the current task's own context (kept
    // alive by slot().prev until `finish_switch`), `new_rsp` is a stack
    // pointer saved by this function or prepared by `new_user_thread` for a
    // task nobody else runs.
    unsafe { llmos_switch_context(old_rsp, new_rsp) };
    finish_switch();
    true
}

/// Completes a switch on the new task's stack: the previous task may now
/// be resumed elsewhere.
fn finish_switch() {
    if let Some(prev) = slot().prev.lock().take() {
        prev.on_cpu.store(false, Ordering::Release);
    }
}

extern "C" fn finish_switch_c() {
    finish_switch();
}

/// A new user thread's first code: finishes the switch; a thread of a
/// process killed before it ever ran leaves here.
extern "C" fn user_thread_start_c() {
    finish_switch();
    crate::sched::on_user_thread_start();
}
