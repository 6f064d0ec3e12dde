//! What the fuzzer knows about individual syscalls: which it never makes,
//! which it makes only while the kernel returns ENOSYS for them, which
//! arguments are paths or descriptors, and how arguments are bent so that
//! no call can legitimately end or wedge the fuzzer itself:
//!
//! - exit, exit_group, clone, clone3, fork, vfork, execve(at), reboot and
//!   kexec are never made;
//! - calls that block with no timeout (pause, sigsuspend, wait4, …) or that
//!   would hand the kernel the fuzzer's own control flow (rt_sigreturn,
//!   rseq, seccomp, ptrace, …) are made only while the kernel's table says
//!   ENOSYS for them;
//! - every timeout is zero, 1 µs or 1 ms (never "forever"): poll, ppoll,
//!   select, pselect6, epoll_wait/pwait/pwait2, nanosleep, clock_nanosleep,
//!   futex waits;
//! - every descriptor the fuzzer can reach is non-blocking: set after each
//!   call that creates one, and F_SETFL/FIONBIO cannot clear it;
//! - kill/tkill/tgkill of itself carry signal 0, and SIGPIPE stays ignored;
//! - memory calls that change mappings (MAP_FIXED, munmap, mprotect,
//!   mremap, madvise, …) get addresses in the arena (or addresses the
//!   kernel must refuse), and brk never moves the break;
//! - the report descriptor is never closed or replaced;
//! - ARCH_SET_FS (the fuzzer's TLS) becomes ARCH_GET_FS, and
//!   RLIMIT_NOFILE is not lowered.

use crate::args::Gen;
use crate::out::OUT_FD;
use crate::world::{ARENA_LEN, PAGE, World};

/// How a number is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Never made.
    Skip,
    /// Made only while the kernel's table says ENOSYS (or does not list it).
    EnosysOnly,
    /// Made with random arguments (bent by [`bend`]).
    Normal,
}

/// Linux x86_64 syscall numbers the rules below name.
mod n {
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const POLL: u64 = 7;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGRETURN: u64 = 15;
    pub const IOCTL: u64 = 16;
    pub const PIPE: u64 = 22;
    pub const SELECT: u64 = 23;
    pub const MREMAP: u64 = 25;
    pub const MSYNC: u64 = 26;
    pub const MINCORE: u64 = 27;
    pub const MADVISE: u64 = 28;
    pub const SHMAT: u64 = 30;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const PAUSE: u64 = 34;
    pub const NANOSLEEP: u64 = 35;
    pub const SOCKET: u64 = 41;
    pub const ACCEPT: u64 = 43;
    pub const SOCKETPAIR: u64 = 53;
    pub const CLONE: u64 = 56;
    pub const FORK: u64 = 57;
    pub const VFORK: u64 = 58;
    pub const EXECVE: u64 = 59;
    pub const EXIT: u64 = 60;
    pub const WAIT4: u64 = 61;
    pub const KILL: u64 = 62;
    pub const SEMOP: u64 = 65;
    pub const SHMDT: u64 = 67;
    pub const MSGRCV: u64 = 70;
    pub const FCNTL: u64 = 72;
    pub const CREAT: u64 = 85;
    pub const PTRACE: u64 = 101;
    pub const RT_SIGTIMEDWAIT: u64 = 128;
    pub const RT_SIGQUEUEINFO: u64 = 129;
    pub const RT_SIGSUSPEND: u64 = 130;
    pub const MLOCK: u64 = 149;
    pub const MUNLOCK: u64 = 150;
    pub const MODIFY_LDT: u64 = 154;
    pub const ARCH_PRCTL: u64 = 158;
    pub const SETRLIMIT: u64 = 160;
    pub const REBOOT: u64 = 169;
    pub const IOPL: u64 = 172;
    pub const IOPERM: u64 = 173;
    pub const TKILL: u64 = 200;
    pub const FUTEX: u64 = 202;
    pub const IO_GETEVENTS: u64 = 208;
    pub const EPOLL_CREATE: u64 = 213;
    pub const REMAP_FILE_PAGES: u64 = 216;
    pub const RESTART_SYSCALL: u64 = 219;
    pub const SEMTIMEDOP: u64 = 220;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const EXIT_GROUP: u64 = 231;
    pub const EPOLL_WAIT: u64 = 232;
    pub const TGKILL: u64 = 234;
    pub const MBIND: u64 = 237;
    pub const MQ_TIMEDSEND: u64 = 242;
    pub const MQ_TIMEDRECEIVE: u64 = 243;
    pub const KEXEC_LOAD: u64 = 246;
    pub const WAITID: u64 = 247;
    pub const INOTIFY_INIT: u64 = 253;
    pub const OPENAT: u64 = 257;
    pub const PSELECT6: u64 = 270;
    pub const PPOLL: u64 = 271;
    pub const UNSHARE: u64 = 272;
    pub const EPOLL_PWAIT: u64 = 281;
    pub const SIGNALFD: u64 = 282;
    pub const TIMERFD_CREATE: u64 = 283;
    pub const EVENTFD: u64 = 284;
    pub const ACCEPT4: u64 = 288;
    pub const SIGNALFD4: u64 = 289;
    pub const EVENTFD2: u64 = 290;
    pub const EPOLL_CREATE1: u64 = 291;
    pub const DUP3: u64 = 292;
    pub const PIPE2: u64 = 293;
    pub const INOTIFY_INIT1: u64 = 294;
    pub const RT_TGSIGQUEUEINFO: u64 = 297;
    pub const PERF_EVENT_OPEN: u64 = 298;
    pub const RECVMMSG: u64 = 299;
    pub const FANOTIFY_INIT: u64 = 300;
    pub const PRLIMIT64: u64 = 302;
    pub const OPEN_BY_HANDLE_AT: u64 = 304;
    pub const SETNS: u64 = 308;
    pub const PROCESS_VM_WRITEV: u64 = 311;
    pub const SECCOMP: u64 = 317;
    pub const MEMFD_CREATE: u64 = 319;
    pub const KEXEC_FILE_LOAD: u64 = 320;
    pub const BPF: u64 = 321;
    pub const EXECVEAT: u64 = 322;
    pub const USERFAULTFD: u64 = 323;
    pub const MLOCK2: u64 = 325;
    pub const PKEY_MPROTECT: u64 = 329;
    pub const IO_PGETEVENTS: u64 = 333;
    pub const RSEQ: u64 = 334;
    pub const PIDFD_SEND_SIGNAL: u64 = 424;
    pub const IO_URING_SETUP: u64 = 425;
    pub const OPEN_TREE: u64 = 428;
    pub const FSOPEN: u64 = 430;
    pub const FSMOUNT: u64 = 432;
    pub const PIDFD_OPEN: u64 = 434;
    pub const CLONE3: u64 = 435;
    pub const CLOSE_RANGE: u64 = 436;
    pub const OPENAT2: u64 = 437;
    pub const PIDFD_GETFD: u64 = 438;
    pub const PROCESS_MADVISE: u64 = 440;
    pub const EPOLL_PWAIT2: u64 = 441;
    pub const FUTEX_WAITV: u64 = 449;
}

/// The class of syscall `nr`.
pub fn class(nr: u64) -> Class {
    use n::*;
    match nr {
        EXIT | EXIT_GROUP | CLONE | CLONE3 | FORK | VFORK | EXECVE | EXECVEAT | REBOOT
        | KEXEC_LOAD | KEXEC_FILE_LOAD => Class::Skip,
        PAUSE | RT_SIGSUSPEND | WAIT4 | WAITID | MSGRCV | SEMOP | SEMTIMEDOP | IO_GETEVENTS
        | IO_PGETEVENTS | MQ_TIMEDSEND | MQ_TIMEDRECEIVE | RT_SIGRETURN | RESTART_SYSCALL
        | RSEQ | SECCOMP | PTRACE | SHMAT | SHMDT | RT_SIGQUEUEINFO | RT_TGSIGQUEUEINFO
        | PIDFD_SEND_SIGNAL | PROCESS_VM_WRITEV | PROCESS_MADVISE | IOPL | IOPERM | MODIFY_LDT
        | UNSHARE | SETNS => Class::EnosysOnly,
        _ => Class::Normal,
    }
}

/// Bit i set: argument i is a path.
fn path_args(nr: u64) -> u8 {
    match nr {
        // open stat lstat access mkdir rmdir creat unlink readlink chdir
        // chmod chown lchown truncate statfs mknod chroot acct swapon
        // swapoff utime utimes umount2 uselib
        2 | 4 | 6 | 21 | 83 | 84 | 85 | 87 | 89 | 80 | 90 | 92 | 94 | 76 | 137 | 133 | 161
        | 163 | 167 | 168 | 132 | 235 | 166 | 134 => 0b1,
        // rename link symlink pivot_root
        82 | 86 | 88 | 155 => 0b11,
        // openat mkdirat fchownat futimesat newfstatat unlinkat readlinkat
        // fchmodat faccessat utimensat mknodat statx openat2 faccessat2
        // name_to_handle_at inotify_add_watch
        257 | 258 | 260 | 261 | 262 | 263 | 267 | 268 | 269 | 280 | 259 | 332 | 437 | 439 | 303
        | 254 => 0b10,
        // renameat linkat renameat2
        264 | 265 | 316 => 0b1010,
        // symlinkat
        266 => 0b101,
        // mount
        165 => 0b11,
        _ => 0,
    }
}

/// Bit i set: argument i is a descriptor.
fn fd_args(nr: u64) -> u8 {
    match nr {
        // read write close fstat lseek ioctl pread pwrite readv writev
        // connect accept sendto recvfrom sendmsg recvmsg shutdown bind
        // listen getsockname getpeername setsockopt getsockopt fcntl flock
        // fsync fdatasync ftruncate getdents fchdir fchmod fchown fstatfs
        // getdents64 fadvise64 epoll_wait epoll_pwait epoll_pwait2 syncfs
        // dup accept4 recvmmsg sendmmsg preadv pwritev preadv2 pwritev2
        // readahead sync_file_range fallocate
        0 | 1 | 3 | 5 | 8 | 16 | 17 | 18 | 19 | 20 | 42 | 43 | 44 | 45 | 46 | 47 | 48 | 49 | 50
        | 51 | 52 | 54 | 55 | 72 | 73 | 74 | 75 | 77 | 78 | 81 | 91 | 93 | 138 | 217 | 221
        | 232 | 281 | 441 | 306 | 32 | 288 | 299 | 307 | 295 | 296 | 327 | 328 | 187 | 277
        | 285 => 0b1,
        // dup2 dup3 sendfile copy_file_range(0,2) splice(0,2) tee
        33 | 292 | 40 | 276 => 0b11,
        326 | 275 => 0b101,
        // epoll_ctl
        233 => 0b101,
        // mmap (fd is argument 4)
        9 => 0b1_0000,
        // *at calls: the directory descriptor
        257 | 258 | 259 | 260 | 261 | 262 | 263 | 266 | 267 | 268 | 269 | 280 | 332 | 437 | 439
        | 322 => 0b1,
        264 | 265 | 316 => 0b101,
        _ => 0,
    }
}

/// Random arguments for `nr`.
pub fn args(nr: u64, g: &mut Gen, w: &World) -> [u64; 6] {
    let (paths, fds) = (path_args(nr), fd_args(nr));
    let mut a = [0u64; 6];
    for (i, v) in a.iter_mut().enumerate() {
        *v = if paths & (1 << i) != 0 {
            g.path(w)
        } else if fds & (1 << i) != 0 && g.chance(4, 5) {
            g.fd()
        } else {
            g.any(w)
        };
    }
    if g.chance(1, 2) {
        structured(nr, &mut a, g, w);
    }
    if nr == n::IOCTL && g.chance(1, 2) {
        // Requests the kernel knows (console, FIONREAD, FIONBIO, FIOCLEX…).
        const REQ: &[u64] = &[
            0x5401, 0x5402, 0x5403, 0x5404, 0x540f, 0x5410, 0x5413, 0x5414, 0x541b, 0x5421, 0x5450,
            0x5451,
        ];
        a[1] = REQ[g.below(REQ.len() as u64) as usize];
    }
    if nr == n::FCNTL && g.chance(2, 3) {
        const CMD: &[u64] = &[0, 1, 2, 3, 4, 5, 6, 7, 36, 37, 38, 1030, 1031, 1032, 1024];
        a[1] = CMD[g.below(CMD.len() as u64) as usize];
    }
    bend(nr, &mut a, g, w);
    a
}

/// Well-formed arguments for the memory calls (random ones are mostly
/// refused before anything happens): real protections, flag sets and
/// page-multiple lengths from a page to far more than the machine has.
fn structured(nr: u64, a: &mut [u64; 6], g: &mut Gen, w: &World) {
    use n::*;
    const LENGTHS: &[u64] = &[
        PAGE,
        2 * PAGE,
        16 * PAGE,
        2 << 20,
        (2 << 20) + PAGE,
        8 << 20,
        64 << 20,
        256 << 20,
        1 << 30,
        1 << 40,
    ];
    const PROTS: &[u64] = &[0, 1, 3, 4, 5, 7];
    // MAP_FIXED, MAP_POPULATE, MAP_NORESERVE, MAP_STACK, MAP_GROWSDOWN,
    // MAP_FIXED_NOREPLACE.
    const EXTRA: &[u64] = &[0x10, 0x8000, 0x4000, 0x2_0000, 0x100, 0x10_0000];
    let mut pick = |from: &[u64]| from[g.below(from.len() as u64) as usize];
    let len = pick(LENGTHS);
    let prot = pick(PROTS);
    match nr {
        MMAP => {
            let file = g.chance(1, 4);
            let mut flags = if g.chance(3, 4) { 0x02 } else { 0x01 };
            if !file {
                flags |= 0x20;
            }
            for &e in EXTRA {
                if g.chance(1, 5) {
                    flags |= e;
                }
            }
            *a = [
                if g.chance(1, 2) { 0 } else { g.arena_addr(w) },
                len,
                prot,
                flags,
                if file { g.fd() } else { u64::MAX },
                if g.chance(3, 4) {
                    0
                } else {
                    g.below(64) * PAGE
                },
            ];
        }
        MPROTECT => {
            a[1] = len;
            a[2] = prot;
        }
        MUNMAP | MADVISE | MSYNC | MLOCK | MUNLOCK => {
            a[1] = len;
            if nr == MADVISE {
                // NORMAL … WILLNEED, DONTNEED, FREE, REMOVE, DONTFORK,
                // HUGEPAGE, NOHUGEPAGE, COLD, PAGEOUT, POPULATE_READ/WRITE.
                const ADVICE: &[u64] = &[0, 1, 2, 3, 4, 8, 9, 10, 14, 15, 20, 21, 22, 23];
                a[2] = ADVICE[g.below(ADVICE.len() as u64) as usize];
            }
        }
        MREMAP => {
            a[1] = len;
            a[2] = LENGTHS[g.below(LENGTHS.len() as u64) as usize];
            a[3] = g.below(4);
        }
        _ => {}
    }
}

/// Keeps `addr`'s length inside the arena when the address is there.
fn clamp_to_arena(w: &World, addr: u64, len: u64) -> u64 {
    if w.in_arena(addr) {
        len.min(w.arena + ARENA_LEN - addr)
    } else {
        len
    }
}

/// An address for a call that changes mappings: in the arena, or one the
/// kernel must refuse (kernel half, non-canonical, page zero).
fn mapping_addr(g: &mut Gen, w: &World) -> u64 {
    if g.chance(7, 8) {
        g.arena_addr(w)
    } else {
        // (Not 0: munmap(0, 1 << 47) is legal and takes everything.)
        const REFUSED: &[u64] = &[
            0xfff,
            0x7fff_ffff_f001,
            0x0000_8000_0000_0000,
            0xffff_8000_0000_0000,
            0xffff_ffff_8020_0000,
            !(PAGE - 1),
        ];
        REFUSED[g.below(REFUSED.len() as u64) as usize]
    }
}

/// When argument `when.0` of syscall `nr` is `when.1`, argument `set.0`
/// becomes `set.1`.
struct Rule {
    nr: u64,
    when: (usize, u64),
    set: (usize, u64),
}

const RULES: &[Rule] = &[
    // SIGPIPE stays ignored (a write to a pipe without readers raises it);
    // other handlers are only recorded.
    Rule {
        nr: n::RT_SIGACTION,
        when: (0, 13),
        set: (1, 0),
    },
    // ARCH_SET_FS (the fuzzer's own TLS) becomes ARCH_GET_FS.
    Rule {
        nr: n::ARCH_PRCTL,
        when: (0, 0x1002),
        set: (0, 0x1003),
    },
    // RLIMIT_NOFILE is only read.
    Rule {
        nr: n::SETRLIMIT,
        when: (0, 7),
        set: (1, 0),
    },
    Rule {
        nr: n::PRLIMIT64,
        when: (1, 7),
        set: (2, 0),
    },
];

/// Bends arguments so the call cannot end or wedge the fuzzer (see the
/// module header).
fn bend(nr: u64, a: &mut [u64; 6], g: &mut Gen, w: &World) {
    use n::*;
    const MAP_FIXED: u64 = 0x10;
    const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
    const MREMAP_FIXED: u64 = 2;
    const O_NONBLOCK: u64 = 0o4000;
    match nr {
        MMAP => {
            if a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
                a[0] = mapping_addr(g, w);
                a[1] = clamp_to_arena(w, a[0], a[1]);
            }
        }
        MUNMAP | MPROTECT | MADVISE | MSYNC | MINCORE | MLOCK | MUNLOCK | MLOCK2
        | PKEY_MPROTECT | REMAP_FILE_PAGES | MBIND => {
            a[0] = mapping_addr(g, w);
            a[1] = clamp_to_arena(w, a[0], a[1]);
        }
        MREMAP => {
            a[0] = mapping_addr(g, w);
            a[1] = clamp_to_arena(w, a[0], a[1]);
            if g.chance(1, 2) {
                a[3] = g.below(8);
            }
            if a[3] & MREMAP_FIXED != 0 {
                a[4] = mapping_addr(g, w);
                a[2] = clamp_to_arena(w, a[4], a[2]);
            }
        }
        BRK => {
            // Never between the start of the heap and far above it.
            const STILL: &[u64] = &[0, 1, 4096, u64::MAX, 0xffff_8000_0000_0000, 1 << 47];
            a[0] = STILL[g.below(STILL.len() as u64) as usize];
        }
        POLL => a[2] = g.below(2) * g.below(2),
        EPOLL_WAIT | EPOLL_PWAIT => a[3] = g.below(2) * g.below(2),
        PPOLL => a[2] = g.timespec(w),
        SELECT | PSELECT6 => a[4] = g.timespec(w),
        EPOLL_PWAIT2 | FUTEX_WAITV => a[3] = g.timespec(w),
        NANOSLEEP => a[0] = g.timespec(w),
        CLOCK_NANOSLEEP => a[2] = g.timespec(w),
        RT_SIGTIMEDWAIT => a[2] = g.timespec(w),
        RECVMMSG => a[4] = g.timespec(w),
        FUTEX => {
            if g.chance(2, 3) {
                // WAIT, WAKE, FD, REQUEUE, CMP_REQUEUE, WAKE_OP, LOCK_PI,
                // UNLOCK_PI, TRYLOCK_PI, WAIT_BITSET, WAKE_BITSET, …
                a[1] = g.below(14) | (g.below(2) * 128) | (g.below(2) * 256);
            }
            // Every form that may sleep gets a timeout.
            if matches!(a[1] & 0x7f, 0 | 6 | 9 | 11 | 13) {
                a[3] = g.timespec(w);
            }
        }
        KILL => {
            if matches!(a[0] as i64, -1..=1) {
                a[1] = 0;
            }
        }
        TKILL => a[1] = 0,
        TGKILL => {
            if matches!(a[0] as i64, -1..=1) {
                a[2] = 0;
            }
        }
        FCNTL if a[1] == 4 => a[2] |= O_NONBLOCK,
        IOCTL if a[1] == 0x5421 => a[2] = w.consts + crate::world::konst::ONE,
        PIPE | PIPE2 | SOCKETPAIR => {
            // The new descriptors are read back from scratch (to make them
            // non-blocking), so they must land there (or nowhere).
            let slot = if nr == SOCKETPAIR { 3 } else { 0 };
            a[slot] = if g.chance(7, 8) {
                w.scratch + g.below(64) * 8
            } else {
                w.rodata
            };
        }
        CLOSE_RANGE => {
            let (first, last) = (a[0].min(i32::MAX as u64), a[1].min(i32::MAX as u64));
            if first <= OUT_FD && OUT_FD <= last {
                a[1] = OUT_FD - 1;
            }
        }
        _ => {}
    }
    for r in RULES {
        if r.nr == nr && a[r.when.0] == r.when.1 {
            a[r.set.0] = r.set.1;
        }
    }
    for v in a.iter_mut() {
        // Only the low 32 bits of a descriptor count.
        if *v & 0xffff_ffff == OUT_FD {
            *v ^= 1;
        }
    }
}

/// Descriptors a successful call `nr` with arguments `a` returning `ret`
/// may have created (to be made non-blocking).
pub fn new_fds(nr: u64, a: &[u64; 6], ret: i64, w: &World) -> [Option<u64>; 2] {
    use n::*;
    if ret < 0 {
        return [None, None];
    }
    let r = Some(ret as u64);
    match nr {
        OPEN | CREAT | OPENAT | OPENAT2 | DUP | DUP2 | DUP3 | SOCKET | ACCEPT | ACCEPT4
        | EPOLL_CREATE | EPOLL_CREATE1 | EVENTFD | EVENTFD2 | MEMFD_CREATE | SIGNALFD
        | SIGNALFD4 | TIMERFD_CREATE | INOTIFY_INIT | INOTIFY_INIT1 | FANOTIFY_INIT
        | USERFAULTFD | PERF_EVENT_OPEN | BPF | PIDFD_OPEN | OPEN_BY_HANDLE_AT | FSOPEN
        | FSMOUNT | OPEN_TREE | PIDFD_GETFD | IO_URING_SETUP => [r, None],
        FCNTL if matches!(a[1], 0 | 1030) => [r, None],
        PIPE | PIPE2 | SOCKETPAIR => {
            let at = if nr == SOCKETPAIR { a[3] } else { a[0] };
            [
                w.scratch_u32(at).map(u64::from),
                w.scratch_u32(at + 4).map(u64::from),
            ]
        }
        _ => [None, None],
    }
}

/// Whether the call may have created a mapping outside the arena that the
/// fuzzer must remove again: `Some((addr, len))`.
pub fn stray_mapping(nr: u64, a: &[u64; 6], ret: i64, w: &World) -> Option<(u64, u64)> {
    if ret <= 0 || ret as u64 >= 0x8000_0000_0000 || w.in_arena(ret as u64) {
        return None;
    }
    let len = match nr {
        n::MMAP => a[1],
        n::MREMAP => a[2],
        _ => return None,
    };
    Some((ret as u64, len.checked_next_multiple_of(PAGE)?))
}

/// Whether `nr` closes descriptors: the range it closes.
pub fn closed_fds(nr: u64, a: &[u64; 6], ret: i64) -> Option<(u64, u64)> {
    if ret != 0 {
        return None;
    }
    match nr {
        n::CLOSE => Some((a[0] & 0xffff_ffff, a[0] & 0xffff_ffff)),
        n::CLOSE_RANGE if a[2] & 4 == 0 => Some((a[0], a[1])),
        _ => None,
    }
}
