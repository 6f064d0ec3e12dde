//! A seeded random-syscall fuzzer for the llmos kernel.
//!
//! `syscall-fuzz [SEED] [COUNT] [verbose]` makes COUNT calls (default
//! 50,000) chosen by a xorshift generator seeded with SEED (default 1):
//! every number in Linux's x86_64 table and the kernel's own table
//! (`kcore::syscalls`, its implemented ones more often) and numbers beyond
//! them, with random and edge-case arguments (see `args`). A second thread
//! on the other CPU keeps faulting, discarding and refaulting its own pages
//! meanwhile, so TLB shootdowns and locks are contended. The kernel must
//! answer every call; at the end the program checks the kernel still
//! serves ordinary calls, prints a summary (calls per number, errno
//! histogram) and exits 0. `verbose` prints every call before making it
//! (to find the one that does not return).
//!
//! The QEMU test `the_syscall_fuzzer_cannot_break_the_kernel` runs it at
//! -smp 2; `docs/development.md` records seed sweeps run by hand. The
//! rules that keep the fuzzer from ending or wedging itself are in `shape`,
//! the memory it hands the kernel in `world`. It refuses to run on any
//! kernel but llmos: random kill(2) and unlink(2) calls have no business on
//! a development machine.

mod args;
mod out;
mod shape;
mod world;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kcore::syscalls::{self, Status, names::NAMES};
use llmos_userland::syscall6;

use args::Gen;
use out::{Line, OUT_FD};
use shape::Class;
use world::World;

/// Calls made when no count is given (16 s under TCG at -smp 2 for seed 1
/// on our 2-core machines: the QEMU test runs this).
const DEFAULT_COUNT: u64 = 50_000;
/// Numbers beyond Linux's table (and its x32 range).
const BEYOND: &[u64] = &[
    451,
    452,
    460,
    470,
    511,
    512,
    547,
    548,
    999,
    1000,
    4095,
    4096,
    0x4000_03e8,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    (1 << 32) | 1000,
    (1 << 63) | 1000,
    u64::MAX,
];

const O_RDONLY: u64 = 0;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_NONBLOCK: u64 = 0o4000;
const O_DIRECTORY: u64 = 0o200000;
const AT_FDCWD: u64 = -100i64 as u64;
const F_SETFL: u64 = 4;

/// Mappings made outside the arena (mmap without MAP_FIXED, mremap that
/// moved) the fuzzer keeps before unmapping them again, so memory use
/// builds up to exhaustion now and then.
const STRAYS: usize = 8;

/// Stops the helper thread.
static STOP: AtomicBool = AtomicBool::new(false);
/// Rounds the helper thread finished.
static HELPER_ROUNDS: AtomicU64 = AtomicU64::new(0);

fn sys(nr: u64, a: [u64; 6]) -> i64 {
    syscall6(nr, a)
}

fn cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).expect("no NUL in setup paths")
}

/// Whether the kernel is llmos (its `uname` release says so).
fn on_llmos() -> bool {
    let mut u = [0u8; 6 * 65];
    if sys(63, [u.as_mut_ptr() as u64, 0, 0, 0, 0, 0]) != 0 {
        return false;
    }
    u[2 * 65..3 * 65].windows(5).any(|w| w == b"llmos")
}

/// The numbers to call and how often each is picked.
struct Numbers {
    /// Every number (Linux's, the kernel table's, beyond).
    all: Vec<u64>,
    /// The ones the kernel implements (picked more often).
    implemented: Vec<u64>,
}

impl Numbers {
    fn new() -> Self {
        let mut all: Vec<u64> = NAMES.iter().map(|(nr, _)| *nr).collect();
        all.extend(syscalls::TABLE.iter().map(|i| i.nr));
        all.extend_from_slice(BEYOND);
        all.sort_unstable();
        all.dedup();
        all.retain(|&nr| shape::class(nr) != Class::Skip);
        all.retain(|&nr| {
            shape::class(nr) != Class::EnosysOnly
                || syscalls::info(nr).is_none_or(|i| i.status == Status::Enosys)
        });
        let implemented = all
            .iter()
            .copied()
            .filter(|&nr| syscalls::info(nr).is_some_and(|i| i.status != Status::Enosys))
            .collect();
        Self { all, implemented }
    }

    /// A number: 2 in 3 from the implemented ones.
    fn pick(&self, g: &mut Gen) -> u64 {
        if g.chance(2, 3) {
            self.implemented[g.below(self.implemented.len() as u64) as usize]
        } else {
            self.all[g.below(self.all.len() as u64) as usize]
        }
    }

    fn index(&self, nr: u64) -> usize {
        self.all.binary_search(&nr).unwrap_or(0)
    }
}

/// Calls and results.
struct Stats {
    /// Calls per entry of `Numbers::all`.
    calls: Vec<u64>,
    ok: u64,
    /// Errors by errno (index = errno, 0..4096).
    errnos: Vec<u64>,
}

impl Stats {
    fn record(&mut self, idx: usize, ret: i64) {
        self.calls[idx] += 1;
        if (-4095..0).contains(&ret) {
            self.errnos[(-ret) as usize] += 1;
        } else {
            self.ok += 1;
        }
    }
}

/// Opens the descriptors the run starts with (all non-blocking) and makes
/// `/tmp/fuzz` the working directory.
fn setup_files(g: &mut Gen, w: &World) {
    for d in ["/tmp/fuzz", "/tmp/fuzz/d"] {
        sys(83, [cstr(d).as_ptr() as u64, 0o755, 0, 0, 0, 0]);
    }
    let data = [0x42u8; 8192];
    for f in ["/tmp/fuzz/a", "/tmp/fuzz/b"] {
        let fd = sys(
            257,
            [
                AT_FDCWD,
                cstr(f).as_ptr() as u64,
                O_RDWR | O_CREAT,
                0o644,
                0,
                0,
            ],
        );
        if fd >= 0 {
            sys(
                1,
                [fd as u64, data.as_ptr() as u64, data.len() as u64, 0, 0, 0],
            );
            sys(3, [fd as u64, 0, 0, 0, 0, 0]);
        }
    }
    sys(
        88,
        [
            cstr("a").as_ptr() as u64,
            cstr("/tmp/fuzz/lnk").as_ptr() as u64,
            0,
            0,
            0,
            0,
        ],
    );
    sys(80, [cstr("/tmp/fuzz").as_ptr() as u64, 0, 0, 0, 0, 0]);
    let opens = [
        ("/tmp/fuzz/a", O_RDWR),
        ("/tmp/fuzz/b", O_RDONLY),
        ("/tmp/fuzz", O_DIRECTORY),
        ("/", O_DIRECTORY),
        ("/dev/null", O_RDWR),
        ("/dev/zero", O_RDWR),
        ("/dev/urandom", O_RDONLY),
        ("/proc/self/maps", O_RDONLY),
        ("/proc/meminfo", O_RDONLY),
    ];
    for (p, flags) in opens {
        let fd = sys(
            257,
            [
                AT_FDCWD,
                cstr(p).as_ptr() as u64,
                flags | O_NONBLOCK,
                0,
                0,
                0,
            ],
        );
        if fd >= 0 {
            g.mark(fd as u64, true);
        }
    }
    let fds = w.scratch;
    if sys(293, [fds, O_NONBLOCK, 0, 0, 0, 0]) == 0 {
        for at in [fds, fds + 4] {
            if let Some(fd) = w.scratch_u32(at) {
                g.mark(u64::from(fd), true);
            }
        }
    }
    let extra = [
        sys(290, [0, O_NONBLOCK, 0, 0, 0, 0]),    // eventfd2
        sys(291, [0, 0, 0, 0, 0, 0]),             // epoll_create1
        sys(41, [2, 1 | O_NONBLOCK, 0, 0, 0, 0]), // TCP socket
        sys(41, [2, 2 | O_NONBLOCK, 0, 0, 0, 0]), // UDP socket
    ];
    for fd in extra {
        if fd >= 0 {
            nonblocking(fd as u64);
            g.mark(fd as u64, true);
        }
    }
}

fn nonblocking(fd: u64) {
    sys(72, [fd, F_SETFL, O_NONBLOCK, 0, 0, 0]);
}

/// The helper thread: pinned to CPU 1, it writes its own 16 pages, makes
/// them read-only and writable again (each downgrade is a TLB shootdown
/// to the other CPU), yields and reads the clock until told to stop. It
/// needs no new memory after its first round: the fuzzer exhausts memory
/// now and then, and a page fault then would end the program.
fn helper(region: u64) {
    prefault_stack();
    let mask: u64 = 0b10;
    sys(203, [0, 8, &mask as *const u64 as u64, 0, 0, 0]);
    let mut ts = [0u64; 2];
    let mut round = 0u64;
    while !STOP.load(Ordering::Relaxed) {
        for p in 0..16 {
            // SAFETY: `region` is this thread's own 64 KiB read-write
            // mapping (made before the run, outside the arena, so no fuzzed
            // call changes it; only this thread changes its protection).
            unsafe { ((region + p * 4096) as *mut u64).write_volatile(round) };
        }
        sys(10, [region, 16 * 4096, 1, 0, 0, 0]);
        sys(10, [region, 16 * 4096, 3, 0, 0, 0]);
        sys(24, [0; 6]);
        sys(228, [1, ts.as_mut_ptr() as u64, 0, 0, 0, 0]);
        round += 1;
        HELPER_ROUNDS.store(round, Ordering::Relaxed);
    }
}

/// Touches the next 32 KiB of the stack, so the run never faults in a
/// stack page (while memory is exhausted that would end the program).
#[inline(never)]
fn prefault_stack() {
    let mut pad = [0u8; 32 * 1024];
    for b in pad.iter_mut().step_by(4096) {
        // SAFETY: a byte of a local array.
        unsafe { core::ptr::write_volatile(b, 1) };
    }
    std::hint::black_box(&pad);
}

/// Writes every element of `v` (fresh zeroed memory may not be mapped
/// yet).
fn touch(v: &mut [u64]) {
    for x in v.iter_mut() {
        // SAFETY: an element of a live slice.
        unsafe { core::ptr::write_volatile(x, 0) };
    }
}

/// After the run: ordinary calls still work (a pipe round trip, 4 MiB of
/// anonymous memory, listing `/`, the clock). Returns what failed.
fn kernel_still_works() -> Result<(), &'static str> {
    // Descriptors and memory the run left behind do not count.
    sys(436, [0, OUT_FD - 1, 0, 0, 0, 0]);
    let mut fds = [0i32; 2];
    if sys(293, [fds.as_mut_ptr() as u64, 0, 0, 0, 0, 0]) != 0 {
        return Err("pipe2");
    }
    let msg = *b"still alive";
    if sys(1, [fds[1] as u64, msg.as_ptr() as u64, 11, 0, 0, 0]) != 11 {
        return Err("write to a pipe");
    }
    let mut back = [0u8; 11];
    if sys(0, [fds[0] as u64, back.as_mut_ptr() as u64, 11, 0, 0, 0]) != 11 || back != msg {
        return Err("read from a pipe");
    }
    let len = 4 << 20;
    let p = sys(9, [0, len, 3, 0x22, u64::MAX, 0]);
    if p <= 0 {
        return Err("mmap");
    }
    for off in (0..len).step_by(4096) {
        // SAFETY: `p` is a fresh 4 MiB read-write anonymous mapping.
        unsafe { ((p as u64 + off) as *mut u8).write_volatile(1) };
    }
    if sys(11, [p as u64, len, 0, 0, 0, 0]) != 0 {
        return Err("munmap");
    }
    // The root directory cannot be removed: it still lists.
    let mut buf = [0u8; 4096];
    let fd = sys(257, [AT_FDCWD, c"/".as_ptr() as u64, O_DIRECTORY, 0, 0, 0]);
    if fd < 0 || sys(217, [fd as u64, buf.as_mut_ptr() as u64, 4096, 0, 0, 0]) <= 0 {
        return Err("listing /");
    }
    let mut ts = [0u64; 2];
    if sys(228, [1, ts.as_mut_ptr() as u64, 0, 0, 0, 0]) != 0 {
        return Err("clock_gettime");
    }
    Ok(())
}

fn errno_name(e: usize) -> &'static str {
    kcore::errno::Errno::from_raw(e as i32).map_or("E?", |e| e.name())
}

fn summary(seed: u64, count: u64, numbers: &Numbers, stats: &Stats) {
    let called = stats.calls.iter().filter(|&&c| c > 0).count();
    let errors: u64 = stats.errnos.iter().sum();
    say!(
        "fuzz: summary: seed {seed}, {count} calls, {called} of {} numbers called, {} succeeded, {errors} failed, helper {} rounds",
        numbers.all.len(),
        stats.ok,
        HELPER_ROUNDS.load(Ordering::Relaxed)
    );
    let mut line = Line::new();
    let _ = core::fmt::Write::write_str(&mut line, "fuzz: calls per number:");
    for (i, &c) in stats.calls.iter().enumerate() {
        if line.len() > 900 {
            line.emit();
            line = Line::new();
            let _ = core::fmt::Write::write_str(&mut line, "fuzz: calls per number:");
        }
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {}={c}", numbers.all[i]));
    }
    line.emit();
    let mut line = Line::new();
    let _ = core::fmt::Write::write_str(&mut line, "fuzz: errors:");
    for (e, &c) in stats.errnos.iter().enumerate() {
        if c > 0 {
            let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {}={c}", errno_name(e)));
        }
    }
    line.emit();
}

fn main() {
    if !on_llmos() {
        eprintln!("syscall-fuzz: this is not llmos; refusing to make random syscalls here");
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let count: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_COUNT);
    let verbose = args.iter().any(|a| a == "verbose");

    // The report descriptor, then nothing on 0–2: the fuzzer never writes
    // through std (a descriptor it opened may take number 1).
    if sys(72, [1, 0, OUT_FD, 0, 0, 0]) != OUT_FD as i64 {
        eprintln!("syscall-fuzz: cannot duplicate stdout to fd {OUT_FD}");
        std::process::exit(1);
    }
    let region = sys(9, [0, 16 * 4096, 3, 0x22, u64::MAX, 0]);
    assert!(region > 0, "helper region");
    let helper = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || helper(region as u64))
        .expect("helper thread");
    let numbers = Numbers::new();
    let mut stats = Stats {
        calls: vec![0; numbers.all.len()],
        ok: 0,
        errnos: vec![0; 4096],
    };
    touch(&mut stats.calls);
    touch(&mut stats.errnos);
    prefault_stack();
    let w = World::new();
    let mut g = Gen::new(seed);
    // A write to a pipe or socket without readers raises SIGPIPE.
    sys(13, [13, w.consts + world::konst::SIG_IGN, 0, 8, 0, 0]);
    for fd in 0..3 {
        sys(3, [fd, 0, 0, 0, 0, 0]);
    }
    setup_files(&mut g, &w);
    say!(
        "fuzz: seed {seed}, {count} calls over {} numbers ({} implemented), a helper thread on CPU 1",
        numbers.all.len(),
        numbers.implemented.len()
    );

    let mut strays = [None; STRAYS];
    let mut kept = 0usize;
    for i in 0..count {
        let nr = numbers.pick(&mut g);
        let a = shape::args(nr, &mut g, &w);
        if verbose {
            say!(
                "fuzz: call {i}: {nr}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x})",
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5]
            );
        }
        let r = sys(nr, a);
        if verbose {
            say!("fuzz: = {r}");
        }
        stats.record(numbers.index(nr), r);
        for fd in shape::new_fds(nr, &a, r, &w).into_iter().flatten() {
            nonblocking(fd);
            g.mark(fd, true);
        }
        if let Some((first, last)) = shape::closed_fds(nr, &a, r) {
            for fd in first..=last.min(first + 256).min(255) {
                g.mark(fd, false);
            }
        }
        if let Some(m) = shape::stray_mapping(nr, &a, r, &w) {
            // Kept a while (memory pressure builds up), then unmapped.
            kept += 1;
            let slot = &mut strays[kept % STRAYS];
            if let Some((addr, len)) = slot.replace(m) {
                sys(11, [addr, len, 0, 0, 0, 0]);
            }
        }
        if (i + 1) % 2000 == 0 {
            say!("fuzz: {} of {count} calls", i + 1);
        }
    }

    for (addr, len) in strays.into_iter().flatten() {
        sys(11, [addr, len, 0, 0, 0, 0]);
    }
    STOP.store(true, Ordering::Relaxed);
    let _ = helper.join();
    summary(seed, count, &numbers, &stats);
    match kernel_still_works() {
        Ok(()) => say!("fuzz: the kernel still works; done"),
        Err(what) => {
            say!("fuzz: after the run, {what} failed");
            std::process::exit(1);
        }
    }
}
