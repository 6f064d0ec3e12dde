//! The memory the fuzzer hands to the kernel, set up once before the run.
//!
//! One reservation holds, each between PROT_NONE guards (64 KiB):
//!
//! - `consts`: one read-only page of fixed structures (zero timeouts, the
//!   int 1, a SIG_IGN sigaction), so a call that must not block or change
//!   the fuzzer's own state reads them and the kernel cannot change them;
//! - `paths`: read-only NUL-terminated path strings, the last one running
//!   into the guard without a NUL;
//! - `scratch`: 64 KiB the kernel may write anything into; structures a
//!   call reads (iovecs, msghdrs, pollfds, sockaddrs…) are filled with
//!   random words before the call;
//! - `arena`: 8 MiB (2 MiB-aligned) that memory calls (mmap MAP_FIXED,
//!   munmap, mprotect, mremap, madvise…) may change at will.
//!
//! Every pointer the generator produces points into one of these, into the
//! program's own read-only text and rodata, or somewhere the kernel must
//! refuse (guards, kernel half, non-canonical, page zero); never at the
//! fuzzer's stack, heap or data. The fuzzer itself never touches the arena.

use llmos_userland::syscall6;

pub const PAGE: u64 = 4096;
const GUARD: u64 = 64 * 1024;
pub const SCRATCH_LEN: u64 = 64 * 1024;
pub const ARENA_LEN: u64 = 8 << 20;
const PATHS_LEN: u64 = 64 * 1024;
const HUGE: u64 = 2 << 20;

/// Offsets of the fixed structures in the `consts` page.
pub mod konst {
    /// `struct timespec {0, 0}` (also a zero `timeval`).
    pub const TS_ZERO: u64 = 0;
    /// `struct timespec {0, 1000}` (1 µs).
    pub const TS_MICRO: u64 = 16;
    /// `struct timespec {0, 1_000_000}` (1 ms).
    pub const TS_MILLI: u64 = 32;
    /// The int 1 (FIONBIO: non-blocking on).
    pub const ONE: u64 = 48;
    /// A `struct sigaction` with SIG_IGN.
    pub const SIG_IGN: u64 = 64;
}

/// Path strings handed to path arguments (relative ones resolve against
/// the working directory, `/tmp/fuzz` at the start). Nothing here names
/// the fuzzer's own executable or the console.
const PATHS: &[&[u8]] = &[
    b"/tmp/fuzz/a",
    b"/tmp/fuzz/b",
    b"/tmp/fuzz/d",
    b"/tmp/fuzz/d/x",
    b"/tmp/fuzz/lnk",
    b"/tmp/fuzz/missing/x",
    b"/tmp/fuzz/a/",
    b"//tmp//fuzz//b",
    b"/tmp/fuzz/d/../a",
    b"a",
    b"b",
    b"d/x",
    b"../fuzz/a",
    b"/dev/null",
    b"/dev/zero",
    b"/dev/urandom",
    b"/proc/self/maps",
    b"/proc/meminfo",
    b"/proc/1",
    b"/proc/self",
    b"/",
    b".",
    b"..",
    b"",
    b"/tmp",
    b"\xff\xfe\x80",
];

/// The regions (addresses in the fuzzer's own address space).
pub struct World {
    pub consts: u64,
    pub paths: Vec<u64>,
    pub scratch: u64,
    pub arena: u64,
    /// An address inside a guard (PROT_NONE).
    pub guard: u64,
    /// An address in the program's text.
    pub text: u64,
    /// An address in its read-only data.
    pub rodata: u64,
}

static RODATA: [u8; 64] = [0x5a; 64];

fn mmap(addr: u64, len: u64, prot: u64, flags: u64) -> u64 {
    let r = syscall6(9, [addr, len, prot, flags, u64::MAX, 0]);
    assert!(r > 0, "setup mmap failed: {r}");
    r as u64
}

fn mprotect(addr: u64, len: u64, prot: u64) {
    let r = syscall6(10, [addr, len, prot, 0, 0, 0]);
    assert!(r == 0, "setup mprotect failed: {r}");
}

/// Copies `data` to `addr` (inside a region just made writable).
fn put(addr: u64, data: &[u8]) {
    // SAFETY: `addr..addr + data.len()` lies in a region of the
    // reservation this module just made read-write; nothing else uses it.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) }
}

impl World {
    /// Maps and fills the regions.
    pub fn new() -> Self {
        const RW: u64 = 3;
        const R: u64 = 1;
        let total = GUARD + PAGE + GUARD + PATHS_LEN + GUARD + SCRATCH_LEN + GUARD;
        let total = total + HUGE + ARENA_LEN + GUARD;
        // PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE.
        let base = mmap(0, total, 0, 0x22 | 0x4000);
        let consts = base + GUARD;
        let paths_at = consts + PAGE + GUARD;
        let scratch = paths_at + PATHS_LEN + GUARD;
        let arena = (scratch + SCRATCH_LEN + GUARD).next_multiple_of(HUGE);

        mprotect(consts, PAGE, RW);
        put(consts + konst::TS_MICRO + 8, &1000u64.to_le_bytes());
        put(consts + konst::TS_MILLI + 8, &1_000_000u64.to_le_bytes());
        put(consts + konst::ONE, &1u32.to_le_bytes());
        put(consts + konst::SIG_IGN, &1u64.to_le_bytes());
        mprotect(consts, PAGE, R);

        mprotect(paths_at, PATHS_LEN, RW);
        let mut paths = Vec::new();
        let mut at = paths_at;
        for p in PATHS {
            add_path(&mut paths, &mut at, p, true);
        }
        // A name of NAME_MAX bytes and one a byte longer.
        let mut long = b"/tmp/fuzz/".to_vec();
        long.extend(std::iter::repeat_n(b'n', 255));
        add_path(&mut paths, &mut at, &long, true);
        long.push(b'n');
        add_path(&mut paths, &mut at, &long, true);
        // A path of PATH_MAX - 1 bytes and one far beyond.
        add_path(&mut paths, &mut at, &b"a/".repeat(2048)[..4095], true);
        add_path(&mut paths, &mut at, &[b'a'; 5000], true);
        // A string that runs into the guard without a NUL.
        let mut tail = paths_at + PATHS_LEN - 64;
        add_path(&mut paths, &mut tail, &[b'z'; 64], false);
        mprotect(paths_at, PATHS_LEN, R);

        mprotect(scratch, SCRATCH_LEN, RW);
        mprotect(arena, ARENA_LEN, RW);
        World {
            consts,
            paths,
            scratch,
            arena,
            guard: scratch + SCRATCH_LEN + PAGE,
            text: main_text(),
            rodata: RODATA.as_ptr() as u64,
        }
    }

    /// Whether `addr` lies in the arena.
    pub fn in_arena(&self, addr: u64) -> bool {
        addr >= self.arena && addr < self.arena + ARENA_LEN
    }

    /// Whether `[addr, addr + len)` lies in the scratch area.
    pub fn in_scratch(&self, addr: u64, len: u64) -> bool {
        addr >= self.scratch
            && addr
                .checked_add(len)
                .is_some_and(|e| e <= self.scratch + SCRATCH_LEN)
    }

    /// Writes `words` at `addr` inside the scratch area (clipped to it).
    pub fn fill_scratch(&self, addr: u64, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            let at = addr + 8 * i as u64;
            if !self.in_scratch(at, 8) {
                break;
            }
            // SAFETY: `at..at + 8` lies in the scratch area, which stays
            // mapped read-write for the whole run (memory calls are kept to
            // the arena); the kernel may write there too, but only during a
            // syscall, never concurrently with this (the helper thread does
            // not use it).
            unsafe { (at as *mut u64).write_unaligned(*w) }
        }
    }

    /// Reads a `u32` from the scratch area.
    pub fn scratch_u32(&self, addr: u64) -> Option<u32> {
        if !self.in_scratch(addr, 4) {
            return None;
        }
        // SAFETY: as in `fill_scratch`: mapped for the whole run.
        Some(unsafe { (addr as *const u32).read_unaligned() })
    }
}

/// Stores `bytes` (and a NUL with `nul`) at `*at`, records its address and
/// moves `*at` past it.
fn add_path(paths: &mut Vec<u64>, at: &mut u64, bytes: &[u8], nul: bool) {
    paths.push(*at);
    put(*at, bytes);
    *at += bytes.len() as u64;
    if nul {
        put(*at, &[0]);
        *at += 1;
    }
}

fn main_text() -> u64 {
    main_text as *const () as u64
}
