//! The sandbox's real host memory, measured by a counting allocator: the
//! in-memory files never hold more than their cap (plus a fixed slack)
//! whatever is done to them, and what they count is what they hold.
//!
//! The allocator counts per thread, so tests running side by side don't
//! see each other's bytes; everything measured runs on the test's thread.
//! A `realloc` counts as its new size replacing the old one: the copy a
//! moving `realloc` makes for a moment is not counted (large blocks are
//! remapped, not copied, by the C allocators).

use llmos_sandbox::vfs::{Ino, MAX_NAME, Vfs};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

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
