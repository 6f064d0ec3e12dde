//! Open file descriptions and the process's descriptor table.
//!
//! A descriptor names an [`OpenFile`] through an `Arc`, so `dup`, `dup2`,
//! `fcntl(F_DUPFD)` share the offset and status flags as on Linux; the
//! object behind it is the console, a RAM-filesystem inode, an `O_PATH`
//! reference, a generated `/proc` file, or one end of a pipe. When the
//! last descriptor for a description closes, the description releases its
//! object (the inode's open count, or the pipe end).
//!
//! Lock order: the table lock is never held while a description's lock or
//! the filesystem lock is taken; callers clone the `Arc` out first. The
//! last `Arc` is dropped with no lock held.
#![deny(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use kcore::errno::Errno;
use kcore::fdtable::FdTable;
use kcore::pipe::Pipe;
use llmos_fs::ramfs::Ino;
use spin::Mutex;

use crate::sched::Thread;

/// What a description refers to.
#[derive(Debug)]
pub enum Object {
    /// The serial console (fds 0–2 at start).
    Console,
    /// A RAM-filesystem inode (file, directory or device node).
    File(Ino),
    /// An `O_PATH` reference: usable as a directory fd and for fstat only.
    Path(Ino),
    /// A `/proc` file generated when it was opened (its inode for fstat).
    Generated(Ino, Vec<u8>),
    /// The read end of a pipe.
    PipeRead(Arc<Mutex<Pipe>>),
    /// The write end of a pipe.
    PipeWrite(Arc<Mutex<Pipe>>),
    /// A network socket (`llmos_net::socket`).
    Socket(llmos_net::socket::Id),
    /// An epoll instance; entries are keyed by the address of the open
    /// file they were registered for.
    Epoll(Arc<Mutex<kcore::epoll::Interest<usize>>>),
    /// An eventfd: its counter and whether it is in semaphore mode.
    EventFd(Arc<Mutex<(u64, bool)>>),
}

/// Mutable state of a description.
#[derive(Debug, Default)]
pub struct State {
    /// File position.
    pub offset: u64,
    /// Status flags (access mode, O_APPEND, O_NONBLOCK…).
    pub flags: u32,
    /// Where getdents64 resumes (the last name returned).
    pub dir_cursor: Option<String>,
    /// Whether getdents64 has returned everything.
    pub dir_done: bool,
}

/// An open file description.
#[derive(Debug)]
pub struct OpenFile {
    /// The object.
    pub object: Object,
    /// Offset and flags, shared by every descriptor that names it.
    pub state: Mutex<State>,
    /// The path it was opened by (for /proc/self/maps and logs; empty for
    /// pipes and the console).
    pub path: String,
}

impl OpenFile {
    /// A description of `object` with status `flags`.
    pub fn new(object: Object, flags: u32) -> Arc<Self> {
        Self::named(object, flags, String::new())
    }

    /// A description opened by `path`.
    pub fn named(object: Object, flags: u32, path: String) -> Arc<Self> {
        Arc::new(Self {
            object,
            state: Mutex::new(State {
                flags,
                ..State::default()
            }),
            path,
        })
    }

    /// The inode behind it, if any.
    pub fn ino(&self) -> Option<Ino> {
        match self.object {
            Object::File(i) | Object::Path(i) | Object::Generated(i, _) => Some(i),
            _ => None,
        }
    }

    /// Status flags.
    pub fn flags(&self) -> u32 {
        self.state.lock().flags
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        match &self.object {
            Object::File(ino) | Object::Path(ino) => {
                let ino = *ino;
                let _ = crate::vfs::with(|fs| {
                    fs.close(ino);
                    Ok(())
                });
            }
            Object::PipeRead(p) => {
                p.lock().readers -= 1;
                IO.wake_all();
            }
            Object::PipeWrite(p) => {
                p.lock().writers -= 1;
                IO.wake_all();
            }
            Object::Socket(id) => crate::syscall::release_socket(*id),
            Object::Console | Object::Generated(..) | Object::Epoll(_) | Object::EventFd(_) => {}
        }
    }
}

/// A shared description.
pub type Desc = Arc<OpenFile>;

/// The process's descriptors (one process at a time for now).
pub static TABLE: Mutex<Option<FdTable<Desc>>> = Mutex::new(None);

/// Default RLIMIT_NOFILE: at most this many descriptors (EMFILE beyond).
pub const DEFAULT_LIMIT: i32 = 1024;
/// The highest RLIMIT_NOFILE a program may set (Linux's fs.nr_open is
/// larger; this bounds the kernel memory one process can pin).
pub const MAX_LIMIT: u64 = 65536;

/// Sets up the table of a new process: the console on 0, 1 and 2.
pub fn init_process() {
    let mut t = FdTable::new(DEFAULT_LIMIT);
    let console = OpenFile::new(Object::Console, 0o2);
    for _ in 0..3 {
        let _ = t.insert(console.clone(), false);
    }
    let old = TABLE.lock().replace(t);
    drop(old);
}

/// Runs `f` on the table. `f` must not drop the last reference to a
/// description (return it instead).
pub fn with_table<R>(f: impl FnOnce(&mut FdTable<Desc>) -> Result<R, Errno>) -> Result<R, Errno> {
    let mut g = TABLE.lock();
    let t = g.as_mut().ok_or(Errno::EBADF)?;
    f(t)
}

/// The description behind `fd` (a C int: only the low 32 bits count).
pub fn get(fd: u64) -> Result<Desc, Errno> {
    with_table(|t| t.desc(fd as i32))
}

/// Installs a description at the lowest free descriptor (ENOMEM when the
/// kernel cannot spare the memory a descriptor costs, see
/// `memory::kalloc::headroom`).
pub fn install(desc: Desc, cloexec: bool) -> Result<u64, Errno> {
    crate::memory::kalloc::headroom(1024)?;
    let r = with_table(|t| t.insert(desc.clone(), cloexec));
    // On EMFILE `desc` is dropped here, with no lock held.
    drop(desc);
    r.map(|fd| fd as u64)
}

/// Closes `fd`.
pub fn close(fd: u64) -> Result<u64, Errno> {
    let d = with_table(|t| t.remove(fd as i32))?;
    drop(d);
    Ok(0)
}

/// A queue of threads waiting for I/O readiness.
///
/// Interrupt handlers wake it too (the timer tick and the network card run
/// the network stack), so its lock is only taken with interrupts off: an
/// interrupt arriving on a CPU that holds it would otherwise spin on it
/// forever (this hung a boot right after DHCP, once in dozens).
pub struct WaitQueue(Mutex<Vec<Arc<Thread>>>);

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    /// Sleeps until `ready()` holds after a [`WaitQueue::wake_all`], a
    /// signal, or the monotonic `deadline`. Returns at once if `ready()`
    /// already holds. Callers re-check their condition afterwards.
    pub fn wait(&self, deadline: Option<u64>, ready: impl Fn() -> bool) {
        let Some(me) = crate::sched::current() else {
            return;
        };
        self.locked(|w| w.push(me.clone()));
        if !ready() && !crate::console::signal_pending() {
            match deadline {
                Some(d) => {
                    crate::sched::sleep_until(d);
                }
                None => crate::sched::block(),
            }
        }
        self.locked(|w| w.retain(|t| t.tid != me.tid));
    }

    /// Runs `f` on the waiters with the lock held and interrupts off.
    fn locked<R>(&self, f: impl FnOnce(&mut Vec<Arc<Thread>>) -> R) -> R {
        x86_64::instructions::interrupts::without_interrupts(|| f(&mut self.0.lock()))
    }

    /// Wakes every waiter (and moves the I/O generation on).
    pub fn wake_all(&self) {
        IO_GENERATION.fetch_add(1, core::sync::atomic::Ordering::AcqRel);
        let waiters = self.locked(core::mem::take);
        for t in &waiters {
            crate::sched::wake(t);
        }
    }
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts [`WaitQueue::wake_all`] calls: anything that may have changed a
/// descriptor's readiness moves it (edge-triggered epoll uses it).
static IO_GENERATION: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The current I/O generation.
pub fn io_generation() -> u64 {
    IO_GENERATION.load(core::sync::atomic::Ordering::Acquire)
}

/// Everyone waiting on pipes or in poll: woken by pipe activity and by
/// console input.
pub static IO: WaitQueue = WaitQueue::new();
