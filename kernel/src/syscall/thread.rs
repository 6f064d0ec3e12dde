//! Threads: clone (the pthread flag set), thread exit with
//! CLONE_CHILD_CLEARTID, tids, robust lists, yielding, affinity.

use core::sync::atomic::Ordering;

use kcore::errno::Errno;

use super::SysResult;
use crate::klog;
use crate::memory::uaccess;
use crate::sched;

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_PTRACE: u64 = 0x2000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x1_0000;
const CLONE_SYSVSEM: u64 = 0x4_0000;
const CLONE_SETTLS: u64 = 0x8_0000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_DETACHED: u64 = 0x40_0000;
const CLONE_UNTRACED: u64 = 0x80_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
/// CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, IO.
const NAMESPACES: u64 = 0x2_0000
    | 0x200_0000
    | 0x400_0000
    | 0x800_0000
    | 0x1000_0000
    | 0x2000_0000
    | 0x4000_0000
    | 0x8000_0000;

/// The flags this kernel understands for a new thread.
const THREAD_FLAGS: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_CHILD_SETTID
    | CLONE_DETACHED
    | CLONE_UNTRACED;

/// clone(2) with the pthread flag set. Anything that would create a new
/// process (no CLONE_VM/CLONE_THREAD, CLONE_VFORK) or needs namespaces,
/// pidfds or ptrace is refused with a log line, never half done.
pub fn clone(flags: u64, newsp: u64, parent_tid: u64, child_tid: u64, tls: u64) -> SysResult {
    let exit_signal = flags & 0xff;
    let flags = flags & !0xff;
    if flags & (CLONE_THREAD | CLONE_VM) != (CLONE_THREAD | CLONE_VM) || flags & CLONE_VFORK != 0 {
        klog!(
            "syscall",
            "clone: creating processes (fork/vfork) is not supported; returning ENOSYS"
        );
        return Err(Errno::ENOSYS);
    }
    if flags & (NAMESPACES | CLONE_PIDFD | CLONE_PTRACE | CLONE_PARENT) != 0
        || flags & !THREAD_FLAGS != 0
    {
        klog!(
            "syscall",
            "clone: unsupported flags {:#x}; returning EINVAL",
            flags & !THREAD_FLAGS
        );
        return Err(Errno::EINVAL);
    }
    // Linux's rules: a thread shares signal handlers, which share the VM;
    // threads carry no exit signal.
    if flags & CLONE_SIGHAND == 0 || exit_signal != 0 {
        return Err(Errno::EINVAL);
    }
    let mut frame = super::current_frame();
    frame.rax = 0;
    if newsp != 0 {
        frame.rsp = newsp;
    }
    let fs_base = if flags & CLONE_SETTLS != 0 {
        if tls >= kcore::elf::USER_END {
            return Err(Errno::EPERM);
        }
        tls
    } else {
        crate::arch::x86_64::syscall::fs_base()
    };
    // A kernel stack, an extended-state area and the bookkeeping: ENOMEM
    // if the kernel cannot spare them (Linux: the same for a failed stack).
    crate::memory::kalloc::headroom(sched::THREAD_KSTACK as usize + 16 * 1024)?;
    let child = sched::spawn_user(&frame, fs_base).map_err(|e| match e {
        sched::SpawnError::Stack(crate::memory::stacks::StackError::Map(_)) => Errno::ENOMEM,
        sched::SpawnError::Stack(_) => Errno::EAGAIN,
        sched::SpawnError::Killed => Errno::EAGAIN,
    })?;
    let tid = u64::from(child.tid);
    if flags & CLONE_CHILD_CLEARTID != 0 {
        child.clear_child_tid.store(child_tid, Ordering::Relaxed);
    }
    // The child has not been started yet, so it sees these before its
    // first instruction, as Linux guarantees. As in Linux, a bad address
    // does not stop the thread (it is in the thread table already: it
    // must run, if only to leave).
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = uaccess::write_u32(parent_tid, tid as u32);
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = uaccess::write_u32(child_tid, tid as u32);
    }
    sched::start(&child);
    Ok(tid)
}

/// exit(2): ends the calling thread; the last one ends the process.
pub fn exit(status: u64) -> SysResult {
    if let Some(me) = sched::current() {
        let ctid = me.clear_child_tid.load(Ordering::Relaxed);
        if ctid != 0 {
            // CLONE_CHILD_CLEARTID: clear the tid word and wake a joiner.
            if uaccess::write_u32(ctid, 0).is_ok() {
                let _ = crate::futex::wake(ctid, 1, u32::MAX);
            }
        }
    }
    crate::supervisor::thread_exit(status as i32)
}

/// gettid(2).
pub fn gettid() -> SysResult {
    Ok(u64::from(sched::current_tid()))
}

/// set_tid_address(2).
pub fn set_tid_address(addr: u64) -> SysResult {
    if let Some(me) = sched::current() {
        me.clear_child_tid.store(addr, Ordering::Relaxed);
    }
    gettid()
}

/// set_robust_list(2).
pub fn set_robust_list(head: u64, len: u64) -> SysResult {
    if len != 24 {
        return Err(Errno::EINVAL);
    }
    if let Some(me) = sched::current() {
        me.robust_list.store(head, Ordering::Relaxed);
    }
    Ok(0)
}

/// sched_yield(2).
pub fn sched_yield() -> SysResult {
    #[cfg(feature = "test-hooks")]
    if crate::test_hooks::ac_leak() && sched::current_tid() == 1 {
        // A kernel path that switches away with AC set (a forgotten CLAC):
        // the thread that runs next must not inherit it.
        crate::arch::x86_64::usercopy::set_ac_for_test();
        sched::yield_now();
        crate::arch::x86_64::usercopy::clac_on_entry();
        return Ok(0);
    }
    sched::yield_now();
    Ok(0)
}

fn valid_thread(pid: u64) -> Result<(), Errno> {
    if pid == 0 || pid == 1 || sched::exists(pid as u32) {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// sched_setaffinity(2): restricts a thread to the online CPUs in `mask`.
pub fn sched_setaffinity(pid: u64, size: u64, mask: u64) -> SysResult {
    valid_thread(pid)?;
    if size == 0 {
        return Err(Errno::EINVAL);
    }
    let n = (size as usize).min(8);
    let mut b = [0u8; 8];
    uaccess::UserSlice::new(mask, n)?.read_into(&mut b[..n])?;
    let wanted = u64::from_le_bytes(b) & sched::online_mask();
    if wanted == 0 {
        return Err(Errno::EINVAL);
    }
    let tid = if pid == 1 && sched::current_tid() == 1 {
        0
    } else {
        pid as u32
    };
    if sched::set_affinity(tid, wanted) {
        Ok(0)
    } else {
        Err(Errno::ESRCH)
    }
}

/// getcpu(2).
pub fn getcpu(cpu: u64, node: u64) -> SysResult {
    if cpu != 0 {
        uaccess::write_u32(cpu, crate::arch::x86_64::syscall::cpu_id() as u32)?;
    }
    if node != 0 {
        uaccess::write_u32(node, 0)?;
    }
    Ok(0)
}

/// sched_getscheduler(2): every thread runs SCHED_OTHER.
pub fn sched_getscheduler(pid: u64) -> SysResult {
    valid_thread(pid)?;
    Ok(0)
}

/// sched_getparam(2): priority 0.
pub fn sched_getparam(pid: u64, param: u64) -> SysResult {
    valid_thread(pid)?;
    uaccess::write_u32(param, 0)?;
    Ok(0)
}

/// sched_get_priority_max/min(2): 0 for SCHED_OTHER/BATCH/IDLE, 1..99 for
/// the real-time policies.
pub fn sched_priority(policy: u64, max: bool) -> SysResult {
    match policy {
        0 | 3 | 5 => Ok(0),
        1 | 2 => Ok(if max { 99 } else { 1 }),
        _ => Err(Errno::EINVAL),
    }
}
