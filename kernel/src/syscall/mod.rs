//! The Linux syscall layer: decoding, dispatch, tracing.
//!
//! `arch::x86_64::syscall` saves the registers and calls [`entry`]. The
//! number selects a handler (the set matches `kcore::syscalls::TABLE`,
//! which documents each one); handlers take raw `u64` arguments, decode and
//! check them, touch user memory only through `memory::uaccess`, and return
//! `Result<u64, Errno>`. Unknown numbers are logged once per process and
//! return ENOSYS. With `trace_syscalls` in the boot parameters every call
//! is logged as `strace: name(args) = result`.
#![deny(unsafe_code)]

mod epoll;
mod file;
mod info;
mod io;
mod mm;
mod net;
mod signal;
mod thread;
mod time;

use kcore::errno::Errno;
use kcore::syscalls::{self, nr};

use crate::arch::x86_64::syscall::{MAX_CPUS, SyscallFrame, cpu_id};
use crate::klog;
use crate::process::{self, PROCESS};

/// Closes a socket whose last descriptor went away.
pub fn release_socket(id: llmos_net::socket::Id) {
    net::release(id);
}

/// A handler's result.
pub type SysResult = Result<u64, Errno>;

/// The registers of the syscall in progress on each CPU (clone copies them
/// for the new thread).
static CURRENT_FRAME: [spin::Mutex<SyscallFrame>; MAX_CPUS] =
    [const { spin::Mutex::new(SyscallFrame::ZERO) }; MAX_CPUS];

/// The saved user registers of the syscall being handled on this CPU.
pub fn current_frame() -> SyscallFrame {
    *CURRENT_FRAME[cpu_id()].lock()
}

/// Handles one syscall; called by the entry code with the saved registers.
/// A thread of a killed process leaves instead of running it, and after
/// it (having released what the call held).
pub fn entry(frame: &mut SyscallFrame) {
    if crate::supervisor::killed() {
        crate::supervisor::leave_killed()
    }
    let n = frame.rax;
    let a = frame.args();
    *CURRENT_FRAME[cpu_id()].lock() = *frame;
    let result = dispatch(n, a);
    let ret = match result {
        Ok(v) => v,
        Err(e) => e.to_ret(),
    };
    let trace = PROCESS.lock().as_ref().is_some_and(|p| p.trace);
    if trace {
        trace_call(n, &a, result);
    }
    frame.rax = ret;
    after_syscall();
    crate::sched::syscall_exit();
    #[cfg(feature = "test-hooks")]
    crate::arch::x86_64::usercopy::assert_ac_clear("the syscall return path");
    if crate::supervisor::killed() {
        crate::supervisor::leave_killed()
    }
}

/// Applies a terminal signal noticed by the timer interrupt while user code
/// ran.
pub fn deliver_signal_from_interrupt(sig: kcore::tty::Signal) -> SysResult {
    signal::deliver_tty_signal(sig)
}

/// Work due before returning to user mode: a pending Ctrl-C ends the
/// process (signal delivery to handlers comes later).
fn after_syscall() {
    if let Some(s) = crate::console::take_signal() {
        let _ = signal::deliver_tty_signal(s);
    }
}

fn trace_call(n: u64, a: &[u64; 6], r: SysResult) {
    use kcore::syscalls::{Arg, arg_kinds, escape};
    let (name, nargs) = match syscalls::info(n) {
        Some(i) => (i.name, usize::from(i.args)),
        None => (syscalls::name(n).unwrap_or("unknown"), 6),
    };
    let kinds = arg_kinds(n);
    let mut args = alloc::string::String::new();
    for (i, (&v, kind)) in a.iter().zip(kinds).take(nargs).enumerate() {
        if i > 0 {
            args.push_str(", ");
        }
        let decoded = match kind {
            Arg::Int => Some(alloc::format!("{}", v as i64)),
            Arg::Path => crate::memory::uaccess::read_cstr(v, 256)
                .ok()
                .map(|p| escape(&p, 256)),
            Arg::Buf(len_arg) => {
                // For reads the interesting bytes are the ones returned.
                let len = match (n, r) {
                    (nr::READ | nr::PREAD64, Ok(got)) => got,
                    (nr::READ | nr::PREAD64, Err(_)) => 0,
                    _ => a[usize::from(len_arg)],
                };
                let shown = len.min(33) as usize;
                crate::memory::uaccess::UserSlice::new(v, shown)
                    .and_then(|s| s.read_vec())
                    .ok()
                    .map(|b| escape(&b, 32))
            }
            Arg::Hex => None,
        };
        match decoded {
            Some(d) => args.push_str(&d),
            None => {
                let _ = core::fmt::write(&mut args, format_args!("{v:#x}"));
            }
        }
    }
    match r {
        Ok(v) if matches!(kinds[0], Arg::Int) || v < 4096 => {
            klog!("strace", "{name}({args}) = {}", v as i64)
        }
        Ok(v) => klog!("strace", "{name}({args}) = {v:#x}"),
        Err(e) => klog!("strace", "{name}({args}) = -1 {} ({})", e.name(), e.text()),
    }
}

/// Logs an unknown syscall the first time a process makes it.
fn unknown(n: u64) -> SysResult {
    let first = PROCESS.lock().as_mut().is_some_and(|p| p.warned.insert(n));
    if first {
        match syscalls::info(n) {
            Some(i) => klog!(
                "syscall",
                "{} ({n}) is not supported: {}; returning ENOSYS",
                i.name,
                i.note
            ),
            None => klog!(
                "syscall",
                "{} ({n}) is not implemented, returning ENOSYS",
                syscalls::name(n).unwrap_or("unknown syscall")
            ),
        }
    }
    Err(Errno::ENOSYS)
}

type Handler = fn([u64; 6]) -> SysResult;

/// AT_FDCWD as a raw argument.
const AT_FDCWD: u64 = -100i64 as u64;

/// The handler for syscall `n`, if the kernel implements it.
fn handler(n: u64) -> Option<Handler> {
    Some(match n {
        nr::READ => |a| io::read(a[0], a[1], a[2]),
        nr::WRITE => |a| io::write(a[0], a[1], a[2]),
        nr::CLOSE => |a| io::close(a[0]),
        nr::FSTAT => |a| io::fstat(a[0], a[1]),
        nr::POLL => |a| io::poll(a[0], a[1], a[2]),
        nr::LSEEK => |a| io::lseek(a[0], a[1], a[2]),
        nr::MMAP => |a| mm::mmap(a[0], a[1], a[2], a[3], a[4], a[5]),
        nr::MPROTECT => |a| mm::mprotect(a[0], a[1], a[2]),
        nr::MUNMAP => |a| mm::munmap(a[0], a[1]),
        nr::BRK => |a| mm::brk(a[0]),
        nr::RT_SIGACTION => |a| signal::rt_sigaction(a[0], a[1], a[2], a[3]),
        nr::RT_SIGPROCMASK => |a| signal::rt_sigprocmask(a[0], a[1], a[2], a[3]),
        nr::IOCTL => |a| io::ioctl(a[0], a[1], a[2]),
        nr::PREAD64 => |a| io::pread64(a[0], a[1], a[2], a[3]),
        nr::PWRITE64 => |a| io::pwrite64(a[0], a[1], a[2], a[3]),
        nr::READV => |a| io::readv(a[0], a[1], a[2]),
        nr::WRITEV => |a| io::writev(a[0], a[1], a[2]),
        nr::SCHED_YIELD => |_| thread::sched_yield(),
        nr::MREMAP => |a| mm::mremap(a[0], a[1], a[2], a[3], a[4]),
        nr::MADVISE => |a| mm::madvise(a[0], a[1], a[2]),
        nr::MSYNC => |a| mm::msync(a[0], a[1], a[2]),
        nr::NANOSLEEP => |a| time::nanosleep(a[0], a[1]),
        nr::GETPID => |_| Ok(1),
        nr::GETTID => |_| thread::gettid(),
        nr::CLONE => |a| thread::clone(a[0], a[1], a[2], a[3], a[4]),
        nr::EXIT => |a| thread::exit(a[0]),
        nr::EXIT_GROUP => |a| process::exit(a[0] as i32),
        nr::KILL => |a| signal::kill(a[0], a[1]),
        nr::TGKILL => |a| signal::tgkill(a[0], a[1], a[2]),
        nr::UNAME => |a| info::uname(a[0]),
        nr::FCNTL => |a| io::fcntl(a[0], a[1], a[2]),
        nr::GETCWD => |a| file::getcwd(a[0], a[1]),
        nr::READLINK => |a| info::readlink(a[0], a[1], a[2]),
        nr::READLINKAT => |a| info::readlinkat(a[0], a[1], a[2], a[3]),
        nr::GETTIMEOFDAY => |a| time::gettimeofday(a[0]),
        nr::GETRLIMIT => |a| info::prlimit64(0, a[0], 0, a[1]),
        nr::SETRLIMIT => |a| info::prlimit64(0, a[0], a[1], 0),
        nr::PRLIMIT64 => |a| info::prlimit64(a[0], a[1], a[2], a[3]),
        nr::SYSINFO => |a| info::sysinfo(a[0]),
        nr::GETUID | nr::GETGID | nr::GETEUID | nr::GETEGID | nr::GETPPID => |_| Ok(0),
        nr::SIGALTSTACK => |a| signal::sigaltstack(a[0], a[1]),
        nr::ARCH_PRCTL => |a| info::arch_prctl(a[0], a[1]),
        nr::TIME => |a| time::time(a[0]),
        nr::FUTEX => |a| time::futex(a[0], a[1], a[2], a[3], a[4], a[5]),
        nr::SCHED_SETAFFINITY => |a| thread::sched_setaffinity(a[0], a[1], a[2]),
        nr::GETCPU => |a| thread::getcpu(a[0], a[1]),
        nr::SCHED_GETSCHEDULER => |a| thread::sched_getscheduler(a[0]),
        nr::SCHED_GETPARAM => |a| thread::sched_getparam(a[0], a[1]),
        nr::SCHED_GET_PRIORITY_MAX => |a| thread::sched_priority(a[0], true),
        nr::SCHED_GET_PRIORITY_MIN => |a| thread::sched_priority(a[0], false),
        nr::SCHED_GETAFFINITY => |a| info::sched_getaffinity(a[0], a[1], a[2]),
        nr::SET_TID_ADDRESS => |a| thread::set_tid_address(a[0]),
        nr::CLOCK_GETTIME => |a| time::clock_gettime(a[0], a[1]),
        nr::CLOCK_GETRES => |a| time::clock_getres(a[0], a[1]),
        nr::CLOCK_NANOSLEEP => |a| time::clock_nanosleep(a[0], a[1], a[2], a[3]),
        nr::OPENAT => |a| file::openat(a[0], a[1], a[2], a[3]),
        nr::OPEN => |a| file::openat(AT_FDCWD, a[0], a[1], a[2]),
        nr::CREAT => |a| file::openat(AT_FDCWD, a[0], 0o1101, a[1]),
        nr::STAT => |a| file::newfstatat(AT_FDCWD, a[0], a[1], 0),
        nr::LSTAT => |a| file::newfstatat(AT_FDCWD, a[0], a[1], 0x100),
        nr::MKDIR => |a| file::mkdirat(AT_FDCWD, a[0], a[1]),
        nr::RMDIR => |a| file::unlinkat(AT_FDCWD, a[0], 0x200),
        nr::UNLINK => |a| file::unlinkat(AT_FDCWD, a[0], 0),
        nr::ACCESS => |a| file::faccessat(AT_FDCWD, a[0], a[1], 0),
        nr::FACCESSAT => |a| file::faccessat(a[0], a[1], a[2], 0),
        nr::FACCESSAT2 => |a| file::faccessat(a[0], a[1], a[2], a[3]),
        nr::FSYNC | nr::FDATASYNC => |a| file::fsync(a[0]),
        nr::TRUNCATE => |a| file::truncate(a[0], a[1]),
        nr::FTRUNCATE => |a| file::ftruncate(a[0], a[1]),
        nr::RENAME => |a| file::renameat2(AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
        nr::RENAMEAT => |a| file::renameat2(a[0], a[1], a[2], a[3], 0),
        nr::RENAMEAT2 => |a| file::renameat2(a[0], a[1], a[2], a[3], a[4]),
        nr::LINK => |a| file::linkat(AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
        nr::LINKAT => |a| file::linkat(a[0], a[1], a[2], a[3], a[4]),
        nr::SYMLINK => |a| file::symlinkat(a[0], AT_FDCWD, a[1]),
        nr::SYMLINKAT => |a| file::symlinkat(a[0], a[1], a[2]),
        nr::CHMOD => |a| file::fchmodat(AT_FDCWD, a[0], a[1]),
        nr::FCHMODAT => |a| file::fchmodat(a[0], a[1], a[2]),
        nr::FCHMOD => |a| file::fchmod(a[0], a[1]),
        nr::GETDENTS64 => |a| file::getdents64(a[0], a[1], a[2]),
        nr::MKDIRAT => |a| file::mkdirat(a[0], a[1], a[2]),
        nr::UNLINKAT => |a| file::unlinkat(a[0], a[1], a[2]),
        nr::NEWFSTATAT => |a| file::newfstatat(a[0], a[1], a[2], a[3]),
        nr::SET_ROBUST_LIST => |a| thread::set_robust_list(a[0], a[1]),
        nr::GETRANDOM => |a| info::getrandom(a[0], a[1], a[2]),
        nr::SOCKET => |a| net::socket(a[0], a[1], a[2]),
        nr::BIND => |a| net::bind(a[0], a[1], a[2]),
        nr::LISTEN => |a| net::listen(a[0], a[1]),
        nr::ACCEPT => |a| net::accept4(a[0], a[1], a[2], 0),
        nr::ACCEPT4 => |a| net::accept4(a[0], a[1], a[2], a[3]),
        nr::CONNECT => |a| net::connect(a[0], a[1], a[2]),
        nr::GETSOCKNAME => |a| net::getsockname(a[0], a[1], a[2]),
        nr::GETPEERNAME => |a| net::getpeername(a[0], a[1], a[2]),
        nr::SENDTO => |a| net::sendto(a[0], a[1], a[2], a[3], a[4], a[5]),
        nr::RECVFROM => |a| net::recvfrom(a[0], a[1], a[2], a[3], a[4], a[5]),
        nr::SENDMSG => |a| net::sendmsg(a[0], a[1], a[2]),
        nr::RECVMSG => |a| net::recvmsg(a[0], a[1], a[2]),
        nr::SENDMMSG => |a| net::sendmmsg(a[0], a[1], a[2], a[3]),
        nr::RECVMMSG => |a| net::recvmmsg(a[0], a[1], a[2], a[3]),
        nr::SHUTDOWN => |a| net::shutdown(a[0], a[1]),
        nr::SETSOCKOPT => |a| net::setsockopt(a[0], a[1], a[2], a[3], a[4]),
        nr::GETSOCKOPT => |a| net::getsockopt(a[0], a[1], a[2], a[3], a[4]),
        nr::EPOLL_CREATE => |a| epoll::epoll_create(a[0]),
        nr::EPOLL_CREATE1 => |a| epoll::epoll_create1(a[0]),
        nr::EPOLL_CTL => |a| epoll::epoll_ctl(a[0], a[1], a[2], a[3]),
        nr::EPOLL_WAIT => |a| epoll::epoll_wait(a[0], a[1], a[2], a[3]),
        nr::EPOLL_PWAIT => |a| epoll::epoll_pwait(a[0], a[1], a[2], a[3]),
        nr::EPOLL_PWAIT2 => |a| epoll::epoll_pwait2(a[0], a[1], a[2], a[3]),
        nr::EVENTFD => |a| epoll::eventfd2(a[0], 0),
        nr::EVENTFD2 => |a| epoll::eventfd2(a[0], a[1]),
        nr::SELECT => |a| io::select(a[0], a[1], a[2], a[3], a[4]),
        nr::PSELECT6 => |a| io::pselect6(a[0], a[1], a[2], a[3], a[4]),
        nr::PIPE => |a| io::pipe2(a[0], 0),
        nr::PIPE2 => |a| io::pipe2(a[0], a[1]),
        nr::DUP => |a| io::dup(a[0]),
        nr::DUP2 => |a| io::dup2(a[0], a[1]),
        nr::DUP3 => |a| io::dup3(a[0], a[1], a[2]),
        nr::FLOCK => |a| io::flock(a[0], a[1]),
        nr::CLOSE_RANGE => |a| io::close_range(a[0], a[1], a[2]),
        nr::PPOLL => |a| io::ppoll(a[0], a[1], a[2], a[3]),
        nr::PREADV | nr::PREADV2 => |a| io::preadv(a[0], a[1], a[2], a[3]),
        nr::PWRITEV | nr::PWRITEV2 => |a| io::pwritev(a[0], a[1], a[2], a[3]),
        nr::CHDIR => |a| file::chdir(a[0]),
        nr::FCHDIR => |a| file::fchdir(a[0]),
        nr::CHOWN => |a| file::fchownat(AT_FDCWD, a[0], a[1], a[2], 0),
        nr::LCHOWN => |a| file::fchownat(AT_FDCWD, a[0], a[1], a[2], 0x100),
        nr::FCHOWNAT => |a| file::fchownat(a[0], a[1], a[2], a[3], a[4]),
        nr::FCHOWN => |a| file::fchown(a[0]),
        nr::STATFS => |a| file::statfs(a[0], a[1]),
        nr::FSTATFS => |a| file::fstatfs(a[0], a[1]),
        nr::STATX => |a| file::statx(a[0], a[1], a[2], a[3], a[4]),
        nr::UTIMENSAT => |a| file::utimensat(a[0], a[1], a[2], a[3]),
        nr::SYNCFS => |a| file::fsync(a[0]),
        _ => return None,
    })
}

fn dispatch(n: u64, a: [u64; 6]) -> SysResult {
    match handler(n) {
        Some(h) => h(a),
        None => unknown(n),
    }
}

/// Checks that the documented table and the dispatcher agree; logs any
/// difference (a kernel bug the QEMU tests catch).
pub fn check_table() -> bool {
    let mut ok = true;
    for i in syscalls::TABLE {
        let documented = i.status != syscalls::Status::Enosys;
        let handles = handler(i.nr).is_some();
        if documented != handles {
            klog!(
                "syscall",
                "table mismatch: {} ({}) is documented as {:?} but the dispatcher {}",
                i.name,
                i.nr,
                i.status,
                if handles { "handles it" } else { "does not" }
            );
            ok = false;
        }
    }
    ok
}
