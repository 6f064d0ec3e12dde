//! The syscall table: every Linux syscall the kernel knows, with its status.
//!
//! This is the single source of truth for what llmos implements. The
//! kernel's dispatcher handles exactly the numbers listed here with a
//! status other than [`Status::Enosys`] (a boot-time check enforces it), and
//! `docs/syscalls.md` is generated from it by `cargo xtask docs` (a host
//! test fails if the file is stale). Syscalls not listed return ENOSYS and
//! are logged once per process by name (see [`names`]).

pub mod names;

use alloc::string::String;
use core::fmt::Write;

/// How completely a syscall is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Linux semantics for every argument a program can pass.
    Implemented,
    /// Works for the common cases; the note says what is missing.
    Partial,
    /// Accepts the call and returns a fixed or recorded value.
    Stub,
    /// Deliberately returns ENOSYS (the note says why).
    Enosys,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Implemented => "implemented",
            Status::Partial => "partial",
            Status::Stub => "stub",
            Status::Enosys => "ENOSYS",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// The x86_64 syscall number.
    pub nr: u64,
    /// Its name.
    pub name: &'static str,
    /// Number of arguments (for tracing).
    pub args: u8,
    /// Status.
    pub status: Status,
    /// What works, what does not.
    pub note: &'static str,
}

/// Syscall numbers the kernel dispatches on.
#[allow(missing_docs)]
pub mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const POLL: u64 = 7;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const PWRITE64: u64 = 18;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const SCHED_YIELD: u64 = 24;
    pub const MREMAP: u64 = 25;
    pub const MADVISE: u64 = 28;
    pub const NANOSLEEP: u64 = 35;
    pub const GETPID: u64 = 39;
    pub const CLONE: u64 = 56;
    pub const FORK: u64 = 57;
    pub const VFORK: u64 = 58;
    pub const EXECVE: u64 = 59;
    pub const EXIT: u64 = 60;
    pub const KILL: u64 = 62;
    pub const UNAME: u64 = 63;
    pub const FCNTL: u64 = 72;
    pub const GETCWD: u64 = 79;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const CREAT: u64 = 85;
    pub const UNLINK: u64 = 87;
    pub const READLINK: u64 = 89;
    pub const GETTIMEOFDAY: u64 = 96;
    pub const GETRLIMIT: u64 = 97;
    pub const SYSINFO: u64 = 99;
    pub const GETUID: u64 = 102;
    pub const GETGID: u64 = 104;
    pub const GETEUID: u64 = 107;
    pub const GETEGID: u64 = 108;
    pub const GETPPID: u64 = 110;
    pub const SCHED_GETPARAM: u64 = 143;
    pub const SCHED_GETSCHEDULER: u64 = 145;
    pub const SCHED_GET_PRIORITY_MAX: u64 = 146;
    pub const SCHED_GET_PRIORITY_MIN: u64 = 147;
    pub const SIGALTSTACK: u64 = 131;
    pub const ARCH_PRCTL: u64 = 158;
    pub const SETRLIMIT: u64 = 160;
    pub const GETTID: u64 = 186;
    pub const TIME: u64 = 201;
    pub const GETDENTS64: u64 = 217;
    pub const FUTEX: u64 = 202;
    pub const SCHED_SETAFFINITY: u64 = 203;
    pub const SCHED_GETAFFINITY: u64 = 204;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const CLOCK_GETRES: u64 = 229;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const EXIT_GROUP: u64 = 231;
    pub const TGKILL: u64 = 234;
    pub const OPENAT: u64 = 257;
    pub const MKDIRAT: u64 = 258;
    pub const NEWFSTATAT: u64 = 262;
    pub const UNLINKAT: u64 = 263;
    pub const READLINKAT: u64 = 267;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const PRLIMIT64: u64 = 302;
    pub const GETCPU: u64 = 309;
    pub const GETRANDOM: u64 = 318;
    pub const RSEQ: u64 = 334;
    pub const FSYNC: u64 = 74;
    pub const FDATASYNC: u64 = 75;
    pub const TRUNCATE: u64 = 76;
    pub const FTRUNCATE: u64 = 77;
    pub const RENAME: u64 = 82;
    pub const LINK: u64 = 86;
    pub const SYMLINK: u64 = 88;
    pub const CHMOD: u64 = 90;
    pub const FCHMOD: u64 = 91;
    pub const ACCESS: u64 = 21;
    pub const RENAMEAT: u64 = 264;
    pub const LINKAT: u64 = 265;
    pub const SYMLINKAT: u64 = 266;
    pub const FCHMODAT: u64 = 268;
    pub const FACCESSAT: u64 = 269;
    pub const RENAMEAT2: u64 = 316;
    pub const FACCESSAT2: u64 = 439;
    pub const CLONE3: u64 = 435;
    pub const SELECT: u64 = 23;
    pub const PSELECT6: u64 = 270;
    pub const EPOLL_CREATE: u64 = 213;
    pub const EPOLL_WAIT: u64 = 232;
    pub const EPOLL_CTL: u64 = 233;
    pub const EPOLL_PWAIT: u64 = 281;
    pub const EVENTFD: u64 = 284;
    pub const EVENTFD2: u64 = 290;
    pub const EPOLL_CREATE1: u64 = 291;
    pub const EPOLL_PWAIT2: u64 = 441;
    pub const SOCKET: u64 = 41;
    pub const CONNECT: u64 = 42;
    pub const ACCEPT: u64 = 43;
    pub const SENDTO: u64 = 44;
    pub const RECVFROM: u64 = 45;
    pub const SENDMSG: u64 = 46;
    pub const RECVMSG: u64 = 47;
    pub const SHUTDOWN: u64 = 48;
    pub const BIND: u64 = 49;
    pub const LISTEN: u64 = 50;
    pub const GETSOCKNAME: u64 = 51;
    pub const GETPEERNAME: u64 = 52;
    pub const SETSOCKOPT: u64 = 54;
    pub const GETSOCKOPT: u64 = 55;
    pub const ACCEPT4: u64 = 288;
    pub const RECVMMSG: u64 = 299;
    pub const SENDMMSG: u64 = 307;
    pub const MSYNC: u64 = 26;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const PIPE: u64 = 22;
    pub const PIPE2: u64 = 293;
    pub const DUP3: u64 = 292;
    pub const CHDIR: u64 = 80;
    pub const FCHDIR: u64 = 81;
    pub const STATFS: u64 = 137;
    pub const FSTATFS: u64 = 138;
    pub const STATX: u64 = 332;
    pub const UTIMENSAT: u64 = 280;
    pub const CHOWN: u64 = 92;
    pub const FCHOWN: u64 = 93;
    pub const LCHOWN: u64 = 94;
    pub const FCHOWNAT: u64 = 260;
    pub const PREADV: u64 = 295;
    pub const PWRITEV: u64 = 296;
    pub const PREADV2: u64 = 327;
    pub const PWRITEV2: u64 = 328;
    pub const PPOLL: u64 = 271;
    pub const FLOCK: u64 = 73;
    pub const CLOSE_RANGE: u64 = 436;
    pub const SYNCFS: u64 = 306;
}

macro_rules! row {
    ($nr:expr, $args:literal, $status:ident, $note:literal) => {
        Info {
            nr: $nr,
            name: name_const($nr),
            args: $args,
            status: Status::$status,
            note: $note,
        }
    };
}

const fn name_const(nr: u64) -> &'static str {
    let mut i = 0;
    while i < names::NAMES.len() {
        if names::NAMES[i].0 == nr {
            return names::NAMES[i].1;
        }
        i += 1;
    }
    "?"
}

/// The table, in number order.
pub const TABLE: &[Info] = &[
    row!(
        nr::READ,
        3,
        Implemented,
        "any descriptor: console (tty line discipline), RAM-filesystem files, /dev/null, /dev/zero, /dev/urandom, /dev/console, pipes (blocking, O_NONBLOCK → EAGAIN), generated /proc files; moved in steps of at most 64 KiB, a buffer that becomes inaccessible part-way gives a short count (as on Linux)"
    ),
    row!(
        nr::WRITE,
        3,
        Implemented,
        "any descriptor: console (ONLCR output processing), files (O_APPEND honoured, ENOSPC at the capacity limit, ENOMEM when the kernel cannot spare the memory), pipes (atomic up to PIPE_BUF, EPIPE + SIGPIPE without readers); moved in steps of at most 64 KiB, a buffer that becomes inaccessible part-way gives a short count (as on Linux)"
    ),
    row!(nr::OPEN, 3, Implemented, "as openat(AT_FDCWD, …)"),
    row!(
        nr::CLOSE,
        1,
        Implemented,
        "any descriptor; a file is released when its last descriptor closes, an unlinked one is then freed"
    ),
    row!(nr::STAT, 2, Implemented, "as newfstatat(AT_FDCWD, …)"),
    row!(
        nr::FSTAT,
        2,
        Implemented,
        "files, directories, devices, the console (character device), pipes (FIFO)"
    ),
    row!(
        nr::LSTAT,
        2,
        Implemented,
        "as newfstatat(AT_FDCWD, …, AT_SYMLINK_NOFOLLOW)"
    ),
    row!(
        nr::POLL,
        3,
        Implemented,
        "any mix of consoles, pipes, sockets, eventfds and files (always ready); sleeps until an event or the timeout"
    ),
    row!(
        nr::LSEEK,
        3,
        Implemented,
        "SEEK_SET/CUR/END/DATA/HOLE (one data extent, hole at the end); ESPIPE on the console and pipes"
    ),
    row!(
        nr::MMAP,
        6,
        Implemented,
        "anonymous and file mappings, private and shared, MAP_FIXED(_NOREPLACE), hints, PROT_NONE, MAP_NORESERVE/STACK/POPULATE (a populate that runs out of memory fails with ENOMEM and maps nothing; Linux returns the mapping unpopulated); at most 65,530 areas (vm.max_map_count; ENOMEM); anonymous areas get 2 MiB pages where they cover whole 2 MiB ranges (not MAP_STACK/MAP_GROWSDOWN ones), read-only initrd files where their data is physically aligned; initrd files are mapped in place without copying (private: copy on write), RAM files MAP_SHARED map the file's pages; SIGBUS past the end of the file; /dev/zero maps anonymous memory"
    ),
    row!(
        nr::MPROTECT,
        3,
        Implemented,
        "W+X refused with EACCES; PROT_WRITE on a shared mapping of a file not opened for writing: EACCES"
    ),
    row!(nr::MUNMAP, 2, Implemented, "partial ranges and holes"),
    row!(nr::BRK, 1, Implemented, "randomised start after the image"),
    row!(
        nr::RT_SIGACTION,
        4,
        Stub,
        "recorded; signals other than default-terminate are not delivered yet"
    ),
    row!(nr::RT_SIGPROCMASK, 4, Stub, "recorded"),
    row!(
        nr::IOCTL,
        3,
        Partial,
        "console: TCGETS, TCSETS/TCSETSW/TCSETSF, TIOCGWINSZ, TIOCSWINSZ, TIOCGPGRP/TIOCSPGRP, FIONREAD; FIONREAD on pipes and files; FIONBIO/FIOCLEX/FIONCLEX on any descriptor; ENOTTY otherwise"
    ),
    row!(
        nr::PREAD64,
        4,
        Implemented,
        "files and generated files; ESPIPE on the console and pipes"
    ),
    row!(
        nr::PWRITE64,
        4,
        Implemented,
        "files; ESPIPE on the console and pipes"
    ),
    row!(
        nr::READV,
        3,
        Implemented,
        "as read, buffer by buffer; stops at a short read"
    ),
    row!(nr::WRITEV, 3, Implemented, "as write, buffer by buffer"),
    row!(
        nr::ACCESS,
        2,
        Implemented,
        "as faccessat(AT_FDCWD, …): existence; X needs an execute bit"
    ),
    row!(nr::PIPE, 1, Implemented, "as pipe2(fds, 0)"),
    row!(
        nr::SELECT,
        5,
        Implemented,
        "any mix of descriptors; sleeps until one is ready or the timeout; the timeval is updated with the time left"
    ),
    row!(
        nr::SCHED_YIELD,
        0,
        Implemented,
        "puts the caller at the back of the run queue"
    ),
    row!(
        nr::MREMAP,
        5,
        Implemented,
        "shrink, grow in place, MREMAP_MAYMOVE (pages move without copying), MREMAP_FIXED"
    ),
    row!(
        nr::MSYNC,
        3,
        Implemented,
        "nothing to write back (shared file mappings are the file's own pages); ENOMEM for unmapped ranges"
    ),
    row!(
        nr::MADVISE,
        3,
        Implemented,
        "MADV_DONTNEED/FREE zero the range (splitting a 2 MiB page it covers only partly; ENOMEM if no memory for that); other advice accepted (MADV_HUGEPAGE/NOHUGEPAGE change nothing)"
    ),
    row!(
        nr::DUP,
        1,
        Implemented,
        "lowest free descriptor, sharing offset and status flags"
    ),
    row!(
        nr::DUP2,
        2,
        Implemented,
        "closes the target first; same descriptor: checks it"
    ),
    row!(
        nr::NANOSLEEP,
        2,
        Implemented,
        "the thread sleeps, others run (timer-tick resolution, 10 ms)"
    ),
    row!(nr::GETPID, 0, Implemented, "1"),
    row!(
        nr::SOCKET,
        3,
        Partial,
        "AF_INET SOCK_STREAM/SOCK_DGRAM with SOCK_NONBLOCK/SOCK_CLOEXEC; AF_INET6 and AF_UNIX are EAFNOSUPPORT; ENETDOWN without a network card"
    ),
    row!(
        nr::CONNECT,
        3,
        Implemented,
        "TCP: blocks until established (ECONNREFUSED, ETIMEDOUT after SO_SNDTIMEO), EINPROGRESS/EALREADY/EISCONN when non-blocking; UDP: sets the default destination and receives only from it"
    ),
    row!(nr::ACCEPT, 3, Implemented, "as accept4(…, 0)"),
    row!(
        nr::SENDTO,
        6,
        Implemented,
        "TCP (address ignored; sent in steps of at most 64 KiB) and UDP (to the address or the connected peer; EMSGSIZE beyond 65,507 bytes); blocks for room unless non-blocking or MSG_DONTWAIT; EPIPE + SIGPIPE after shutdown (no signal with MSG_NOSIGNAL)"
    ),
    row!(
        nr::RECVFROM,
        6,
        Partial,
        "TCP and UDP (datagrams truncated to the buffer); MSG_DONTWAIT; MSG_PEEK is ENOTSUP; ECONNRESET after a reset"
    ),
    row!(
        nr::SENDMSG,
        3,
        Partial,
        "iovecs sent in order as one stream write (TCP) or one datagram (UDP, msg_name or the connected peer); ancillary data ignored"
    ),
    row!(
        nr::RECVMSG,
        3,
        Partial,
        "iovecs filled in order, sender address for UDP; no ancillary data"
    ),
    row!(
        nr::SHUTDOWN,
        2,
        Implemented,
        "SHUT_RD, SHUT_WR (FIN), SHUT_RDWR"
    ),
    row!(
        nr::BIND,
        3,
        Implemented,
        "0.0.0.0, the interface address or 127.0.0.1; port 0 picks an ephemeral port; EADDRINUSE, EADDRNOTAVAIL"
    ),
    row!(
        nr::LISTEN,
        2,
        Implemented,
        "backlog 1–128 connections handshaking or waiting for accept; more are refused"
    ),
    row!(
        nr::GETSOCKNAME,
        3,
        Implemented,
        "sockaddr_in, truncated to the caller's length"
    ),
    row!(nr::GETPEERNAME, 3, Implemented, "ENOTCONN until connected"),
    row!(
        nr::SETSOCKOPT,
        5,
        Partial,
        "SO_REUSEADDR, SO_KEEPALIVE, SO_RCVTIMEO, SO_SNDTIMEO, TCP_NODELAY take effect; SO_SNDBUF/RCVBUF/LINGER/REUSEPORT/BROADCAST and IPPROTO_IP/TCP options accepted; others ENOPROTOOPT"
    ),
    row!(
        nr::GETSOCKOPT,
        5,
        Partial,
        "SO_ERROR, SO_TYPE, SO_REUSEADDR, SO_KEEPALIVE, SO_SNDBUF/RCVBUF, SO_RCVTIMEO/SNDTIMEO, SO_ACCEPTCONN, TCP_NODELAY; others ENOPROTOOPT"
    ),
    row!(
        nr::CLONE,
        5,
        Partial,
        "threads (the pthread flag set, SETTLS, PARENT_SETTID, CHILD_SETTID/CLEARTID); new processes ENOSYS, namespaces/pidfd/ptrace EINVAL, both logged"
    ),
    row!(nr::FORK, 0, Enosys, "llmos runs one process"),
    row!(nr::VFORK, 0, Enosys, "llmos runs one process"),
    row!(nr::EXECVE, 3, Enosys, "llmos runs one process"),
    row!(
        nr::EXIT,
        1,
        Implemented,
        "ends the thread (clears and futex-wakes its CLEARTID word); the last thread ends the process"
    ),
    row!(
        nr::KILL,
        2,
        Partial,
        "to itself: default-terminate signals end the process, SIG_IGN ignores; ESRCH for other pids"
    ),
    row!(
        nr::UNAME,
        1,
        Implemented,
        "sysname Linux, release 6.1.0-llmos"
    ),
    row!(
        nr::FCNTL,
        3,
        Implemented,
        "F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD/SETFD, F_GETFL/SETFL (O_APPEND, O_NONBLOCK), F_GETPIPE_SZ/SETPIPE_SZ (64 KiB, fixed); advisory locks (F_GETLK/SETLK/SETLKW and OFD variants) are always granted: one process owns every file"
    ),
    row!(
        nr::FLOCK,
        2,
        Implemented,
        "always granted (one process owns every file)"
    ),
    row!(nr::FSYNC, 1, Implemented, "nothing to flush in RAM"),
    row!(nr::FDATASYNC, 1, Implemented, "nothing to flush in RAM"),
    row!(nr::TRUNCATE, 2, Implemented, "RAM filesystem"),
    row!(
        nr::FTRUNCATE,
        2,
        Implemented,
        "RAM filesystem (needs a writable descriptor)"
    ),
    row!(
        nr::GETCWD,
        2,
        Implemented,
        "the working directory's path; ENOENT once it was removed; ERANGE if the buffer is short"
    ),
    row!(nr::CHDIR, 1, Implemented, "RAM filesystem directories"),
    row!(
        nr::FCHDIR,
        1,
        Implemented,
        "directory and O_PATH descriptors"
    ),
    row!(nr::RENAME, 2, Implemented, "as renameat2(AT_FDCWD, …, 0)"),
    row!(nr::MKDIR, 2, Implemented, "as mkdirat(AT_FDCWD, …)"),
    row!(
        nr::RMDIR,
        1,
        Implemented,
        "as unlinkat(AT_FDCWD, …, AT_REMOVEDIR)"
    ),
    row!(
        nr::CREAT,
        2,
        Partial,
        "as open(path, O_CREAT|O_WRONLY|O_TRUNC)"
    ),
    row!(nr::LINK, 2, Implemented, "as linkat(AT_FDCWD, …)"),
    row!(nr::UNLINK, 1, Implemented, "as unlinkat(AT_FDCWD, …)"),
    row!(nr::SYMLINK, 2, Implemented, "as symlinkat(…, AT_FDCWD, …)"),
    row!(
        nr::READLINK,
        3,
        Implemented,
        "symlinks in the RAM filesystem, including /proc/self/exe"
    ),
    row!(nr::CHMOD, 2, Implemented, "permission bits"),
    row!(nr::FCHMOD, 2, Implemented, "permission bits"),
    row!(
        nr::CHOWN,
        3,
        Stub,
        "accepted, not recorded: every file belongs to root"
    ),
    row!(
        nr::FCHOWN,
        3,
        Stub,
        "accepted, not recorded: every file belongs to root"
    ),
    row!(
        nr::LCHOWN,
        3,
        Stub,
        "accepted, not recorded: every file belongs to root"
    ),
    row!(nr::GETTIMEOFDAY, 2, Implemented, "realtime clock"),
    row!(nr::GETRLIMIT, 2, Implemented, "as prlimit64"),
    row!(
        nr::SYSINFO,
        1,
        Implemented,
        "uptime, total and free RAM, 1 process"
    ),
    row!(nr::GETUID, 0, Implemented, "0 (root)"),
    row!(nr::GETGID, 0, Implemented, "0"),
    row!(nr::GETEUID, 0, Implemented, "0"),
    row!(nr::GETEGID, 0, Implemented, "0"),
    row!(nr::GETPPID, 0, Implemented, "0 (init has no parent)"),
    row!(nr::SIGALTSTACK, 2, Stub, "recorded and reported back"),
    row!(
        nr::STATFS,
        2,
        Implemented,
        "tmpfs magic; blocks from the capacity limit and the bytes in use"
    ),
    row!(nr::FSTATFS, 2, Implemented, "as statfs"),
    row!(
        nr::SCHED_GETPARAM,
        2,
        Stub,
        "priority 0 (every thread is SCHED_OTHER)"
    ),
    row!(nr::SCHED_GETSCHEDULER, 1, Stub, "SCHED_OTHER"),
    row!(
        nr::SCHED_GET_PRIORITY_MAX,
        1,
        Implemented,
        "Linux's values per policy"
    ),
    row!(
        nr::SCHED_GET_PRIORITY_MIN,
        1,
        Implemented,
        "Linux's values per policy"
    ),
    row!(
        nr::ARCH_PRCTL,
        2,
        Implemented,
        "ARCH_SET_FS/GET_FS/SET_GS/GET_GS; EINVAL for other codes"
    ),
    row!(nr::SETRLIMIT, 2, Implemented, "as prlimit64"),
    row!(
        nr::GETTID,
        0,
        Implemented,
        "the thread id (1 for the main thread)"
    ),
    row!(nr::TIME, 1, Implemented, "realtime clock"),
    row!(
        nr::FUTEX,
        6,
        Implemented,
        "WAIT, WAKE, WAIT_BITSET, WAKE_BITSET, REQUEUE, CMP_REQUEUE, WAKE_OP, PRIVATE variants; relative and absolute timeouts on MONOTONIC/REALTIME"
    ),
    row!(
        nr::SCHED_SETAFFINITY,
        3,
        Implemented,
        "pins the thread to the online CPUs in the mask (EINVAL if none); it moves at once if needed"
    ),
    row!(
        nr::SCHED_GETAFFINITY,
        3,
        Implemented,
        "the thread's allowed CPUs (all online CPUs unless restricted)"
    ),
    row!(
        nr::EPOLL_CREATE,
        1,
        Implemented,
        "as epoll_create1(0); size must be positive"
    ),
    row!(
        nr::GETDENTS64,
        3,
        Implemented,
        "name order with . and .. first; resumes by name, so concurrent creation never repeats entries"
    ),
    row!(
        nr::SET_TID_ADDRESS,
        1,
        Implemented,
        "per thread; cleared and futex-woken at thread exit; returns the tid"
    ),
    row!(
        nr::CLOCK_GETTIME,
        2,
        Implemented,
        "REALTIME (CMOS RTC at boot + monotonic), MONOTONIC, BOOTTIME, RAW/COARSE variants, process/thread CPU time"
    ),
    row!(
        nr::CLOCK_GETRES,
        2,
        Implemented,
        "1 ns (coarse clocks: 10 ms)"
    ),
    row!(
        nr::CLOCK_NANOSLEEP,
        4,
        Implemented,
        "relative and TIMER_ABSTIME on MONOTONIC/REALTIME/BOOTTIME"
    ),
    row!(
        nr::EXIT_GROUP,
        1,
        Implemented,
        "ends the process; init's status becomes the machine's"
    ),
    row!(
        nr::EPOLL_WAIT,
        4,
        Implemented,
        "level- and edge-triggered (an edge is a readiness bit rising or new I/O while ready); sleeps until I/O or the timeout; entries of closed descriptors are dropped"
    ),
    row!(
        nr::EPOLL_CTL,
        4,
        Implemented,
        "ADD/MOD/DEL on consoles, pipes, sockets, eventfds; regular files EPERM; EPOLLET, EPOLLONESHOT; EPOLLEXCLUSIVE accepted"
    ),
    row!(nr::TGKILL, 3, Partial, "as kill, to the calling thread"),
    row!(
        nr::OPENAT,
        4,
        Implemented,
        "RAM filesystem: O_CREAT/EXCL/TRUNC/APPEND/DIRECTORY/NOFOLLOW/CLOEXEC/PATH/NONBLOCK, lowest free descriptor (EMFILE at RLIMIT_NOFILE, 1024); O_TMPFILE is EOPNOTSUPP; generated /proc files are read-only"
    ),
    row!(nr::MKDIRAT, 3, Implemented, "RAM filesystem"),
    row!(
        nr::FCHOWNAT,
        5,
        Stub,
        "accepted, not recorded: every file belongs to root"
    ),
    row!(
        nr::NEWFSTATAT,
        4,
        Implemented,
        "paths on the RAM filesystem, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW"
    ),
    row!(
        nr::UNLINKAT,
        3,
        Implemented,
        "files and, with AT_REMOVEDIR, empty directories"
    ),
    row!(nr::RENAMEAT, 4, Implemented, "as renameat2(…, 0)"),
    row!(
        nr::LINKAT,
        5,
        Implemented,
        "AT_SYMLINK_FOLLOW, AT_EMPTY_PATH"
    ),
    row!(nr::SYMLINKAT, 3, Implemented, "RAM filesystem"),
    row!(
        nr::READLINKAT,
        4,
        Implemented,
        "as readlink, relative to a directory descriptor"
    ),
    row!(nr::FCHMODAT, 3, Implemented, "permission bits"),
    row!(
        nr::FACCESSAT,
        3,
        Implemented,
        "existence; X needs an execute bit (root)"
    ),
    row!(
        nr::PSELECT6,
        6,
        Partial,
        "as select with a timespec; the signal mask is ignored"
    ),
    row!(
        nr::PPOLL,
        4,
        Partial,
        "as poll with a timespec timeout; the signal mask is ignored"
    ),
    row!(
        nr::SET_ROBUST_LIST,
        2,
        Stub,
        "recorded per thread; robust futexes are not released at thread death yet"
    ),
    row!(
        nr::UTIMENSAT,
        4,
        Implemented,
        "UTIME_NOW, UTIME_OMIT, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, NULL path (futimens)"
    ),
    row!(
        nr::EPOLL_PWAIT,
        6,
        Partial,
        "as epoll_wait; the signal mask is ignored"
    ),
    row!(nr::EVENTFD, 1, Implemented, "as eventfd2(initval, 0)"),
    row!(
        nr::ACCEPT4,
        4,
        Implemented,
        "SOCK_NONBLOCK/SOCK_CLOEXEC; blocks until a connection (SO_RCVTIMEO bounds it)"
    ),
    row!(
        nr::EVENTFD2,
        2,
        Implemented,
        "counter and semaphore mode, EFD_NONBLOCK, EFD_CLOEXEC; blocking read and write"
    ),
    row!(nr::EPOLL_CREATE1, 1, Implemented, "EPOLL_CLOEXEC"),
    row!(
        nr::DUP3,
        3,
        Implemented,
        "O_CLOEXEC; EINVAL when both descriptors are equal"
    ),
    row!(
        nr::PIPE2,
        2,
        Implemented,
        "in-kernel 64 KiB pipe with blocking reads and writes; O_CLOEXEC, O_NONBLOCK"
    ),
    row!(nr::PREADV, 4, Implemented, "as readv at an offset"),
    row!(nr::PWRITEV, 4, Implemented, "as writev at an offset"),
    row!(
        nr::RECVMMSG,
        5,
        Partial,
        "recvmsg for each message (blocking for the first only, MSG_WAITFORONE implied); the timeout is ignored"
    ),
    row!(
        nr::PRLIMIT64,
        4,
        Implemented,
        "own process; limits are recorded, RLIMIT_STACK is 8 MiB"
    ),
    row!(nr::SYNCFS, 1, Implemented, "nothing to flush in RAM"),
    row!(
        nr::SENDMMSG,
        4,
        Implemented,
        "sendmsg for each message; stops at the first error (returned if nothing was sent)"
    ),
    row!(
        nr::GETCPU,
        3,
        Implemented,
        "the CPU the thread runs on, node 0"
    ),
    row!(
        nr::RENAMEAT2,
        5,
        Partial,
        "RENAME_NOREPLACE; RENAME_EXCHANGE/WHITEOUT are EINVAL"
    ),
    row!(
        nr::GETRANDOM,
        3,
        Implemented,
        "ChaCha20 CSPRNG seeded from RDSEED, RDRAND and TSC jitter; GRND_NONBLOCK/RANDOM/INSECURE"
    ),
    row!(
        nr::PREADV2,
        5,
        Partial,
        "as preadv; offset -1 uses the file position; flags ignored"
    ),
    row!(
        nr::PWRITEV2,
        5,
        Partial,
        "as pwritev; offset -1 uses the file position; flags ignored"
    ),
    row!(
        nr::STATX,
        5,
        Implemented,
        "STATX_BASIC_STATS and the mount id; no birth time"
    ),
    row!(nr::RSEQ, 4, Enosys, "glibc falls back without it"),
    row!(
        nr::CLONE3,
        2,
        Enosys,
        "glibc and Rust std fall back to clone"
    ),
    row!(
        nr::CLOSE_RANGE,
        3,
        Implemented,
        "CLOSE_RANGE_CLOEXEC; CLOSE_RANGE_UNSHARE accepted"
    ),
    row!(nr::FACCESSAT2, 4, Implemented, "as faccessat"),
    row!(
        nr::EPOLL_PWAIT2,
        6,
        Partial,
        "as epoll_wait with a timespec timeout; the signal mask is ignored"
    ),
];

/// How the tracer shows an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Hexadecimal (pointers, flags).
    Hex,
    /// Signed decimal (counts, file descriptors, statuses).
    Int,
    /// A NUL-terminated path in user memory.
    Path,
    /// A buffer whose length is the argument with this index (for reads,
    /// the result); shown as an escaped string.
    Buf(u8),
}

/// How the tracer decodes syscall `nr`'s arguments.
pub fn arg_kinds(nr: u64) -> [Arg; 6] {
    use Arg::*;
    match nr {
        nr::READ | nr::WRITE | nr::PREAD64 => [Int, Buf(2), Int, Int, Hex, Hex],
        nr::OPENAT => [Int, Path, Hex, Hex, Hex, Hex],
        nr::NEWFSTATAT => [Int, Path, Hex, Hex, Hex, Hex],
        nr::READLINK => [Path, Hex, Int, Hex, Hex, Hex],
        nr::READLINKAT => [Int, Path, Hex, Int, Hex, Hex],
        nr::CLOSE | nr::FSTAT | nr::IOCTL | nr::FCNTL | nr::LSEEK | nr::READV | nr::WRITEV => {
            [Int, Hex, Hex, Hex, Hex, Hex]
        }
        nr::MMAP => [Hex, Int, Hex, Hex, Int, Hex],
        nr::MUNMAP | nr::MPROTECT | nr::MADVISE => [Hex, Int, Hex, Hex, Hex, Hex],
        nr::EXIT | nr::EXIT_GROUP => [Int, Hex, Hex, Hex, Hex, Hex],
        nr::KILL | nr::TGKILL => [Int, Int, Int, Hex, Hex, Hex],
        nr::GETRANDOM => [Hex, Int, Hex, Hex, Hex, Hex],
        _ => [Hex; 6],
    }
}

/// Escapes bytes for a trace line the way strace does: printable ASCII as
/// is, `\n`, `\t`, `\r`, `\\`, `\"`, other bytes as `\xHH`; at most
/// `max` bytes, then `...`.
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut s = String::from("\"");
    for &b in bytes.iter().take(max) {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    if bytes.len() > max {
        s.push_str("...");
    }
    s
}

/// The table row for `nr`.
pub fn info(nr: u64) -> Option<&'static Info> {
    TABLE.iter().find(|i| i.nr == nr)
}

/// The Linux name of syscall `nr`, known or not to the kernel.
pub fn name(nr: u64) -> Option<&'static str> {
    names::NAMES
        .binary_search_by_key(&nr, |(n, _)| *n)
        .ok()
        .map(|i| names::NAMES[i].1)
}

/// Renders `docs/syscalls.md`.
pub fn markdown() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Linux syscalls in llmos\n");
    let _ = writeln!(
        s,
        "Generated from `kcore/src/syscalls/mod.rs` by `cargo xtask docs`; do not edit by hand.\n"
    );
    let _ = writeln!(
        s,
        "Status: **implemented** (Linux semantics), **partial** (the note says what is missing), \
         **stub** (accepted, fixed or recorded result), **ENOSYS** (refused on purpose). Any other \
         syscall returns ENOSYS and is logged once per process as \
         `syscall: <name> (<number>) is not implemented, returning ENOSYS`.\n"
    );
    let _ = writeln!(s, "| nr | name | status | notes |");
    let _ = writeln!(s, "|---:|---|---|---|");
    for i in TABLE {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} |",
            i.nr,
            i.name,
            i.status.label(),
            i.note
        );
    }
    let counts = |st: Status| TABLE.iter().filter(|i| i.status == st).count();
    let _ = writeln!(
        s,
        "\n{} syscalls listed: {} implemented, {} partial, {} stubs, {} ENOSYS on purpose.",
        TABLE.len(),
        counts(Status::Implemented),
        counts(Status::Partial),
        counts(Status::Stub),
        counts(Status::Enosys)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_named() {
        for w in TABLE.windows(2) {
            assert!(w[0].nr < w[1].nr, "{} before {}", w[0].name, w[1].name);
        }
        for i in TABLE {
            assert_ne!(i.name, "?", "syscall {} has no Linux name", i.nr);
            assert_eq!(name(i.nr), Some(i.name));
            assert!(i.args <= 6);
        }
    }

    #[test]
    fn escaping_like_strace() {
        assert_eq!(escape(b"hi\n", 32), "\"hi\\n\"");
        assert_eq!(escape(b"a\"b\\c\x01", 32), "\"a\\\"b\\\\c\\x01\"");
        assert_eq!(escape(b"abcdef", 3), "\"abc\"...");
        assert_eq!(escape(b"", 3), "\"\"");
    }

    #[test]
    fn arg_kinds_for_io() {
        assert_eq!(arg_kinds(nr::WRITE)[1], Arg::Buf(2));
        assert_eq!(arg_kinds(nr::OPENAT)[1], Arg::Path);
        assert_eq!(arg_kinds(9999), [Arg::Hex; 6]);
    }

    #[test]
    fn names_cover_linux() {
        assert_eq!(name(0), Some("read"));
        assert_eq!(name(231), Some("exit_group"));
        assert_eq!(name(435), Some("clone3"));
        assert_eq!(name(9999), None);
        assert!(names::NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn docs_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/syscalls.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == markdown(),
            "docs/syscalls.md is out of date: run `cargo xtask docs`"
        );
    }
}
