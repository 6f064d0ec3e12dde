//! The sandbox's real host memory, measured by a counting allocator: the
//! in-memory files never hold more than their cap (plus a fixed slack)
//! whatever is done to them, and what they count is what they hold; a
//! run's linear memory is counted as allocated; the admission reserves
//! each run's whole budget; and a run that runs out of room ends with a
//! limit, never an abort.
//!
//! The allocator counts per thread, so tests running side by side don't
//! see each other's bytes; everything measured runs on the test's thread.
//! A `realloc` counts as its new size replacing the old one: the copy a
//! moving `realloc` makes for a moment is not counted (large blocks are
//! remapped, not copied, by the C allocators).

use llmos_sandbox::vfs::{Ino, MAX_NAME, Vfs};
use llmos_sandbox::{Caps, Limits, Origin, Outcome, Run, Sandbox};
use proptest::prelude::*;

mod common;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

/// [`System`], counting the bytes each thread holds and their high-water
/// mark.
struct Counting;

thread_local! {
    // No destructors and constant initializers: reading them never
    // allocates, so the allocator can use them.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: each method hands its arguments unchanged to `System`, whose
// implementation upholds `GlobalAlloc`'s contract for every caller that
// upholds it; the counting only updates thread-local cells, which neither
// allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller meets `alloc`'s contract (a non-zero size).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: our caller passes a block this allocator (that is,
        // `System`) gave out, with its layout.
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: our caller passes a block `System` gave out, its layout,
        // and a valid non-zero new size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The bytes this thread holds now.
fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Runs `f`, and returns its result and the most bytes this thread held
/// during it above what it held before.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let base = live();
    PEAK.with(|p| p.set(base));
    let r = f();
    (r, (PEAK.with(Cell::get) - base).max(0) as u64)
}

// ---------------------------------------------------------------------
// The filesystem on its own.

/// The cap of the trees under test.
const CAP: u64 = 1 << 20;

/// What a tree may hold beyond its cap: the first node of its tables and
/// the short-lived buffers of path resolution.
const SLACK: u64 = 8 << 10;

/// Bytes written by the operations (a static, so it is not on the heap).
static DATA: [u8; 256 << 10] = [0x5a; 256 << 10];

/// The names operations use, made before anything is measured: short
/// ones, and long ones up to the longest name accepted.
fn names() -> Vec<String> {
    let mut v: Vec<String> = (0..8).map(|i| format!("f{i}")).collect();
    v.extend((0..8).map(|i| format!("{i}{}", "n".repeat(MAX_NAME - 1 - i * 17))));
    v
}

/// Names for many small files.
fn small_names() -> Vec<String> {
    (0..4096).map(|i| format!("s{i}")).collect()
}

/// One thing a run can do to its files.
#[derive(Debug, Clone)]
enum Op {
    /// Write `len` bytes at `at` (past the end leaves zeros between).
    Write {
        dir: usize,
        name: usize,
        at: u64,
        len: usize,
    },
    /// Write at an offset far beyond any cap.
    WriteFar { dir: usize, name: usize, at: u64 },
    /// Set the size (up and down).
    Truncate { dir: usize, name: usize, size: u64 },
    /// Rename, replacing what is there.
    Rename {
        from: (usize, usize),
        to: (usize, usize),
    },
    /// Remove a file.
    Unlink { dir: usize, name: usize },
    /// Make a directory below the root.
    Mkdir { dir: usize },
    /// Remove one (when empty).
    Rmdir { dir: usize },
    /// Make `n` empty files in a directory.
    Many { dir: usize, n: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let file = (0usize..4, 0usize..16);
    prop_oneof![
        4 => (file.clone(), 0u64..2 * CAP, 0usize..DATA.len())
            .prop_map(|((dir, name), at, len)| Op::Write { dir, name, at, len }),
        1 => (file.clone(), 2 * CAP..u64::MAX)
            .prop_map(|((dir, name), at)| Op::WriteFar { dir, name, at }),
        3 => (file.clone(), prop_oneof![0u64..1024, 0u64..2 * CAP, Just(u64::MAX)])
            .prop_map(|((dir, name), size)| Op::Truncate { dir, name, size }),
        2 => (file.clone(), file.clone()).prop_map(|(from, to)| Op::Rename { from, to }),
        2 => file.prop_map(|(dir, name)| Op::Unlink { dir, name }),
        1 => (1usize..4).prop_map(|dir| Op::Mkdir { dir }),
        1 => (1usize..4).prop_map(|dir| Op::Rmdir { dir }),
        1 => (0usize..4, 1usize..4096).prop_map(|(dir, n)| Op::Many { dir, n }),
    ]
}

/// A tree and the names its operations use.
struct Tree<'a> {
    fs: Vfs,
    root: Ino,
    names: &'a [String],
    small: &'a [String],
}

impl Tree<'_> {
    /// Directory `d`: the root for 0, else the root's entry of that name.
    fn dir(&self, d: usize) -> Option<Ino> {
        match d {
            0 => Some(self.root),
            _ => self.fs.resolve(self.root, self.root, &self.names[d]).ok(),
        }
    }

    /// The file `name` in `dir`, made if it isn't there.
    fn file(&mut self, dir: usize, name: usize) -> Option<Ino> {
        let d = self.dir(dir)?;
        let n = &self.names[name];
        match self.fs.resolve(self.root, d, n) {
            Ok(i) => Some(i),
            Err(_) => self.fs.create(d, n, false, 1).ok(),
        }
    }

    /// Does `op`: errors are the filesystem's answers (a panic fails).
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write { dir, name, at, len } => {
                if let Some(f) = self.file(dir, name) {
                    let _ = self.fs.write(f, at, &DATA[..len], 1);
                }
            }
            Op::WriteFar { dir, name, at } => {
                if let Some(f) = self.file(dir, name) {
                    assert!(self.fs.write(f, at, &DATA[..16], 1).is_err());
                }
            }
            Op::Truncate { dir, name, size } => {
                if let Some(f) = self.file(dir, name) {
                    let _ = self.fs.truncate(f, size, 1);
                }
            }
            Op::Rename { from, to } => {
                if let (Some(a), Some(b)) = (self.dir(from.0), self.dir(to.0)) {
                    let (x, y) = (&self.names[from.1], &self.names[to.1]);
                    let _ = self.fs.rename(a, x, b, y, 1);
                }
            }
            Op::Unlink { dir, name } => {
                if let Some(d) = self.dir(dir) {
                    let _ = self.fs.remove(d, &self.names[name], false, 1);
                }
            }
            Op::Mkdir { dir } => {
                let _ = self.fs.create(self.root, &self.names[dir], true, 1);
            }
            Op::Rmdir { dir } => {
                let _ = self.fs.remove(self.root, &self.names[dir], true, 1);
            }
            Op::Many { dir, n } => {
                if let Some(d) = self.dir(dir) {
                    for s in &self.small[..n] {
                        if self.fs.create(d, s, false, 1).is_err() {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Runs `ops` on a fresh tree with a cap of [`CAP`], checking after each
/// that the bytes it holds stay within the cap plus [`SLACK`], and within
/// what it says it holds plus the slack; at the end the tree is dropped
/// and every byte must have come back.
fn check_ops(ops: &[Op], names: &[String], small: &[String]) -> Result<(), TestCaseError> {
    let base = live();
    let (steps, peak) = peak_during(|| -> Result<(), TestCaseError> {
        let mut fs = Vfs::new(CAP);
        let root = fs.root(true);
        let mut t = Tree {
            fs,
            root,
            names,
            small,
        };
        for (i, op) in ops.iter().enumerate() {
            t.apply(op);
            let held = (live() - base) as u64;
            let (counted, cap) = t.fs.usage();
            prop_assert!(
                counted <= cap,
                "step {i} {op:?}: counted {counted} > cap {cap}"
            );
            prop_assert!(
                held <= CAP + SLACK,
                "step {i} {op:?}: the tree holds {held} bytes, more than its cap {CAP} + {SLACK}"
            );
            prop_assert!(
                held <= counted + SLACK,
                "step {i} {op:?}: the tree holds {held} bytes and counts {counted}"
            );
        }
        Ok(())
    });
    steps?;
    prop_assert!(
        peak <= CAP + SLACK,
        "at its peak the tree held {peak} bytes, more than {CAP} + {SLACK}"
    );
    prop_assert_eq!(live(), base, "bytes left behind after the tree was dropped");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_tree_never_holds_more_than_its_cap(ops in proptest::collection::vec(op(), 1..48)) {
        let (names, small) = (names(), small_names());
        check_ops(&ops, &names, &small)?;
    }
}

#[test]
fn writes_and_truncations_give_their_bytes_back() {
    let (names, small) = (names(), small_names());
    // 16 files of 128 KiB, each cut back to nothing: 2 MiB written through
    // a 1 MiB cap.
    let ops: Vec<Op> = (0..16)
        .flat_map(|name| {
            [
                Op::Write {
                    dir: 0,
                    name,
                    at: 0,
                    len: 128 << 10,
                },
                Op::Truncate {
                    dir: 0,
                    name,
                    size: 0,
                },
            ]
        })
        .collect();
    check_ops(&ops, &names, &small).unwrap();
}

#[test]
fn names_and_nodes_count_against_the_cap() {
    let (names, small) = (names(), small_names());
    // Empty files and directories with long names until the tree is full.
    let mut fs = Vfs::new(64 << 10);
    let root = fs.root(true);
    let base = live();
    let mut made = 0;
    let refused = loop {
        let name = format!("{made:08}{}", "x".repeat(MAX_NAME - 8));
        match fs.create(root, &name, made % 2 == 0, 1) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
        assert!(made < 100_000, "64 KiB took 100,000 empty files");
    };
    assert_eq!(refused, llmos_sandbox::errno::NOSPC);
    assert!(
        (live() - base) as u64 <= (64 << 10) + SLACK,
        "{made} empty files hold {} bytes",
        live() - base
    );
    drop(fs);
    // A chain of directories, each the only entry of the one above: the
    // most a node costs (about 500 bytes here).
    let base = live();
    let mut fs = Vfs::new(256 << 10);
    let mut dir = fs.root(true);
    while let Ok(d) = fs.create(dir, "d", true, 1) {
        dir = d;
    }
    let (held, counted) = ((live() - base) as u64, fs.usage().0);
    assert!(
        held <= counted + SLACK,
        "the chain holds {held} bytes and counts {counted}"
    );
    drop(fs);
    // And many small files in the property's tree.
    let ops = [Op::Many { dir: 0, n: 4000 }, Op::Many { dir: 0, n: 4000 }];
    check_ops(&ops, &names, &small).unwrap();
}

// ---------------------------------------------------------------------
// Runs.

/// The interpreter's own bytes for a tiny module: its stacks, the store
/// and the instance (bounded in the sandbox by a fixed reservation).
const INTERPRETER: u64 = 2 << 20;

fn compile(s: &Sandbox, wat: &str) -> llmos_sandbox::Program {
    let wasm = wat::parse_str(wat).unwrap();
    s.compile(&wasm, Origin::Untrusted)
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Fails unless a run's `peak` is at most `bound`.
fn held_within(peak: u64, bound: u64) {
    assert!(
        peak <= bound,
        "the run held {peak} bytes at its peak, more than {bound}"
    );
}

/// After anything, an ordinary run still works.
fn still_serves(s: &Sandbox) {
    let p = compile(
        s,
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "ok\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    );
    let o = s.run(&p, &Run::default());
    assert_eq!(o.stdout, b"ok\n", "{o:?}");
}

/// A module that churns through files until a call fails, then exits
/// with its errno: each round makes a file with a 200-byte name, writes
/// 64 KiB, tries a write at 2^40 (which must fail), allocates it to
/// 128 KiB, cuts it to nothing and closes it; every second round renames
/// it over the one before; and each round makes a directory with a
/// 200-byte name. At most 1,000 rounds, then exit 0.
fn churn() -> String {
    let pad = "a".repeat(192);
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func $setsize (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  ;; 0: an iovec of the second page; 16: results; 1024, 2048, 3072: names
  (data (i32.const 0) "\00\00\01\00\00\00\01\00")
  (data (i32.const 1024) "{pad}")
  (data (i32.const 2048) "{pad}")
  (data (i32.const 3072) "d{pad}")
  ;; Writes the 8 letters for `i` after the 192-byte prefix at `at`.
  (func $name (param $at i32) (param $i i32)
    (local $k i32)
    (loop $l
      (i32.store8
        (i32.add (i32.add (local.get $at) (i32.const 192)) (local.get $k))
        (i32.add (i32.const 97)
          (i32.and (i32.shr_u (local.get $i) (i32.mul (local.get $k) (i32.const 4))) (i32.const 15))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $k) (i32.const 8)))))
  ;; Exits with `e` unless it is 0.
  (func $check (param $e i32)
    (if (local.get $e) (then (call $exit (local.get $e)))))
  (func (export "_start")
    (local $i i32) (local $fd i32)
    (loop $round
      (call $name (i32.const 1024) (local.get $i))
      (call $name (i32.const 2048) (i32.sub (local.get $i) (i32.const 1)))
      (call $name (i32.const 3072) (local.get $i))
      (call $check (call $open (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const 200)
        (i32.const 1) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 16)))
      (local.set $fd (i32.load (i32.const 16)))
      (call $check (call $write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 20)))
      (if (i32.eqz (call $pwrite (local.get $fd) (i32.const 0) (i32.const 1) (i64.const 0x10000000000) (i32.const 20)))
        (then (call $exit (i32.const 100))))
      (call $check (call $allocate (local.get $fd) (i64.const 0) (i64.const 131072)))
      (call $check (call $setsize (local.get $fd) (i64.const 0)))
      (call $check (call $close (local.get $fd)))
      (if (i32.and (local.get $i) (i32.const 1))
        (then (call $check (call $rename (i32.const 3) (i32.const 1024) (i32.const 200)
          (i32.const 3) (i32.const 2048) (i32.const 200)))))
      (call $check (call $mkdir (i32.const 3) (i32.const 3072) (i32.const 200)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $i) (i32.const 1000))))))"#
    )
}

#[test]
fn file_churn_in_a_run_ends_at_the_files_limit() {
    const SCRATCH: u64 = 256 << 10;
    let s = Sandbox::new(Caps {
        scratch: SCRATCH,
        ..Caps::default()
    })
    .unwrap();
    let p = compile(&s, &churn());
    let (o, peak): (Outcome, u64) = peak_during(|| s.run(&p, &Run::default()));
    const NOSPC: i32 = 51;
    assert_eq!(o.exit_code, Some(NOSPC), "{o:?}");
    assert_eq!(o.limit.map(|l| l.as_str()), Some("files"), "{o:?}");
    // Two pages of linear memory, the files, and the interpreter.
    let bound = (128 << 10) + SCRATCH + INTERPRETER;
    held_within(peak, bound);
    still_serves(&s);
}

#[test]
fn linear_memory_counts_as_allocated() {
    // Three pages, grown one page at a time until refused: wasmi's memory
    // is a Vec whose allocation doubles when it moves (192 KiB, 384 KiB,
    // … 12 MiB, 24 MiB), so its length alone would let it hold 24 MiB
    // under a 16 MiB limit.
    const MEMORY: u64 = 16 << 20;
    let s = Sandbox::new(Caps::default()).unwrap();
    let p = compile(
        &s,
        r#"(module (memory (export "memory") 3)
  (func (export "_start") (loop $l (drop (memory.grow (i32.const 1))) (br $l))))"#,
    );
    let run = Run {
        limits: Limits {
            memory: Some(MEMORY),
            ..Limits::default()
        },
        ..Run::default()
    };
    let (o, peak) = peak_during(|| s.run(&p, &run));
    assert_eq!(o.limit, Some(llmos_sandbox::Limit::Memory), "{o:?}");
    let bound = MEMORY + INTERPRETER;
    held_within(peak, bound);
    still_serves(&s);
}

#[test]
fn admission_reserves_each_runs_whole_budget() {
    // Memory, files and output of one run need 34 MiB, and the
    // interpreter's own too; two runs cannot fit in 40 MiB together.
    let s = std::sync::Arc::new(
        Sandbox::new(Caps {
            memory: 16 << 20,
            scratch: 16 << 20,
            output: 1 << 20,
            total_memory: 40 << 20,
            concurrent: 4,
            ..Caps::default()
        })
        .unwrap(),
    );
    let spin =
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;
    let p = compile(&s, spin);
    let timed = |ms| Run {
        limits: Limits {
            wall_ms: Some(ms),
            ..Limits::default()
        },
        ..Run::default()
    };
    let first = {
        let (s, p, run) = (s.clone(), p.clone(), timed(3000));
        std::thread::spawn(move || s.run(&p, &run))
    };
    std::thread::sleep(Duration::from_millis(300));
    let second = s.run(&p, &timed(100));
    assert_eq!(
        second.limit,
        Some(llmos_sandbox::Limit::Concurrency),
        "{second:?}"
    );
    let first = first.join().unwrap();
    assert_eq!(first.limit, Some(llmos_sandbox::Limit::WallClock));
    still_serves(&s);
}

#[test]
fn cpython_stays_within_its_budget() {
    // Tight caps, so that each program below fills its part.
    let caps = Caps {
        memory: 24 << 20,
        scratch: 4 << 20,
        output: 64 << 10,
        ..Caps::default()
    };
    let budget = caps.run_budget();
    let s = Sandbox::new(caps).unwrap();
    let p = s
        .compile(
            &common::runtime("LLMOS_PYTHON_WASM", "python-3.12.0.wasm"),
            Origin::Trusted,
        )
        .unwrap();
    use llmos_sandbox::Limit;
    for (code, limit) in [
        ("print(1)", None),
        (
            "x = []\nwhile True: x.append(bytearray(1 << 20))",
            Some(Limit::Memory),
        ),
        (
            "i = 0\nwhile True:\n    open(f'/tmp/{i:0>200}', 'w').write('x' * 4096); i += 1",
            Some(Limit::Files),
        ),
        ("while True: print('x' * 1000)", Some(Limit::Output)),
        ("def f(n): return f(n + 1)\nf(0)", None),
    ] {
        let run = Run {
            args: vec!["python".into(), "-c".into(), code.into()],
            ..Run::default()
        };
        // The first run translates the functions it calls: compiled code
        // is the module's, kept for all its runs, so the second is
        // measured.
        s.run(&p, &run);
        let (o, peak) = peak_during(|| s.run(&p, &run));
        assert_eq!(o.limit, limit, "{code}: {o:?}");
        assert!(
            peak <= budget,
            "{code}: the run held {peak} bytes at its peak, more than its budget of {budget}"
        );
    }
}

#[test]
fn output_is_held_within_its_cap() {
    let s = Sandbox::new(Caps::default()).unwrap();
    let p = compile(
        &s,
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 7))
    (loop $l (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))))"#,
    );
    let run = Run {
        limits: Limits {
            output: Some(1000),
            ..Limits::default()
        },
        ..Run::default()
    };
    let o = s.run(&p, &run);
    assert_eq!(o.limit, Some(llmos_sandbox::Limit::Output), "{o:?}");
    assert_eq!(o.stdout.len(), 1000);
    // Grown by doubling, it would have allocated 1024.
    assert!(o.stdout.capacity() <= 1000, "{}", o.stdout.capacity());
}

#[test]
fn a_long_path_is_refused_before_it_is_copied() {
    // A path of all 20 MiB of linear memory.
    const MEMORY: u64 = 20 << 20;
    let s = Sandbox::new(Caps::default()).unwrap();
    let p = compile(
        &s,
        &format!(
            r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") {})
  (func (export "_start")
    (call $exit (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const {MEMORY})
      (i32.const 1) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 0)))))"#,
            MEMORY >> 16
        ),
    );
    let (o, peak) = peak_during(|| s.run(&p, &Run::default()));
    const NAMETOOLONG: i32 = 37;
    assert_eq!(o.exit_code, Some(NAMETOOLONG), "{o:?}");
    let bound = MEMORY + INTERPRETER;
    held_within(peak, bound);
}
