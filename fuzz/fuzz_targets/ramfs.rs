//! Any sequence of filesystem calls leaves `RamFs` consistent and never
//! panics. The input bytes decode into up to [`MAX_OPS`] operations on a
//! small namespace (names `a b c x y` under `/`, `/x`, `/x/y`, with `.`,
//! `..`, repeated and trailing slashes, over-long names, symlinks and open
//! handles) on a filesystem of a few pages. After every operation:
//! `used()` is page-granular, within the capacity and no more than the
//! files could hold; every directory lists `.` and `..` first, then unique
//! names in order, with the right types and link counts; `..` of every
//! open directory, removed or not, names a live inode, and a removed one
//! cannot be listed. At the end everything is closed and removed: then no
//! space and no inode may be left.
//!
//! `fs/tests/edge_cases.rs` includes this file to replay `corpus/ramfs`
//! under `cargo test`, hence `cfg(test)` around the libFuzzer parts.
#![cfg_attr(not(test), no_main)]

use std::collections::{BTreeMap, BTreeSet};

use kcore::errno::Errno;
use llmos_fs::ramfs::{Ino, MAX_FILE_SIZE, PAGE_SIZE, ROOT, RamFs, mode};

#[cfg(not(test))]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// Operations decoded from one input at most (keeps runs fast).
pub const MAX_OPS: usize = 300;
const PAGE: u64 = PAGE_SIZE as u64;
const CAPACITY: u64 = 8 * PAGE;
static INITRD: &[u8] = b"initrd bytes, borrowed until written";

const DIRS: [&str; 12] = [
    "", "", "", "/", "x/", "x/y/", "/x/y/", "a/", "../", "./", "x/../", "//x//",
];
const NAMES: [&str; 5] = ["a", "b", "c", "x", "y"];
const SUFFIXES: [&str; 8] = ["", "", "", "", "/", "/.", "/..", "//"];
const TARGETS: [&str; 10] = [
    "a", "x", "x/y", "/x", "..", ".", "nowhere", "../a", "/", "c/",
];

/// Reads the input a byte at a time; `None` once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }

    fn path(&mut self) -> Option<String> {
        let (d, n) = (self.byte()?, self.byte()?);
        if d == 0xff {
            // A component one byte over NAME_MAX, or a path over PATH_MAX.
            return Some(if n % 2 == 0 {
                "n".repeat(256)
            } else {
                "x/".repeat(2100)
            });
        }
        let dir = DIRS[usize::from(d) % DIRS.len()];
        let name = NAMES[usize::from(n) % NAMES.len()];
        let suffix = SUFFIXES[usize::from(n) / NAMES.len() % SUFFIXES.len()];
        Some(format!("{dir}{name}{suffix}"))
    }

    fn target(&mut self) -> Option<String> {
        let t = self.byte()?;
        match TARGETS.get(usize::from(t)) {
            Some(t) => Some((*t).to_string()),
            None => self.path(),
        }
    }

    /// Mostly within the first pages; now and then at the size limit.
    fn offset(&mut self) -> Option<u64> {
        let v = u64::from(self.u16()?);
        Some(if v >= 0xfff0 {
            MAX_FILE_SIZE - (v - 0xfff0)
        } else {
            v / 2
        })
    }
}

/// The filesystem and the handles the input opened.
struct State {
    fs: RamFs,
    handles: Vec<Ino>,
    /// Highest inode number ever seen.
    max_ino: Ino,
}

impl State {
    fn at(&self, b: u8) -> Ino {
        match usize::from(b).checked_sub(200) {
            Some(i) if !self.handles.is_empty() => self.handles[i % self.handles.len()],
            _ => ROOT,
        }
    }

    fn handle(&self, b: u8) -> Option<Ino> {
        (!self.handles.is_empty()).then(|| self.handles[usize::from(b) % self.handles.len()])
    }

    fn seen(&mut self, r: Result<Ino, Errno>) {
        if let Ok(ino) = r {
            self.max_ino = self.max_ino.max(ino);
        }
    }

    /// Decodes and runs one operation; `None` when the input is used up.
    fn step(&mut self, input: &mut Input<'_>) -> Option<()> {
        let op = input.byte()?;
        let now = 0;
        match op % 20 {
            0 => {
                let (at, path, excl) = (
                    self.at(input.byte()?),
                    input.path()?,
                    input.byte()? % 2 == 0,
                );
                let r = self.fs.create(at, &path, 0o644, excl, now);
                self.seen(r);
            }
            1 | 2 => {
                let (at, path, off, len, b) = (
                    self.at(input.byte()?),
                    input.path()?,
                    input.offset()?,
                    input.byte()?,
                    input.byte()?,
                );
                if let Ok(ino) = self.fs.lookup(at, &path, true) {
                    let r = self.fs.write(ino, off, &vec![b; usize::from(len) * 3], now);
                    if let Ok(n) = r {
                        assert_eq!(n, usize::from(len) * 3, "writes are whole or fail");
                    }
                }
            }
            3 => {
                let (at, path, len) = (self.at(input.byte()?), input.path()?, input.offset()?);
                if let Ok(ino) = self.fs.lookup(at, &path, true) {
                    let _ = self.fs.truncate(ino, len, now);
                }
            }
            4 => {
                let (at, path) = (self.at(input.byte()?), input.path()?);
                let r = self.fs.mkdir(at, &path, 0o755, now);
                self.seen(r);
            }
            5 => {
                let (at, path) = (self.at(input.byte()?), input.path()?);
                let _ = self.fs.rmdir(at, &path, now);
            }
            6 => {
                let (at, path) = (self.at(input.byte()?), input.path()?);
                let _ = self.fs.unlink(at, &path, now);
            }
            7 => {
                let (at, old, new_at, new) = (
                    self.at(input.byte()?),
                    input.path()?,
                    self.at(input.byte()?),
                    input.path()?,
                );
                let noreplace = input.byte()? % 2 == 0;
                let _ = self.fs.rename(at, &old, new_at, &new, noreplace, now);
            }
            8 => {
                let (at, old, new_at, new) = (
                    self.at(input.byte()?),
                    input.path()?,
                    self.at(input.byte()?),
                    input.path()?,
                );
                let _ = self.fs.link(at, &old, new_at, &new, now);
            }
            9 => {
                let (target, at, path) = (input.target()?, self.at(input.byte()?), input.path()?);
                let r = self.fs.symlink(&target, at, &path, now);
                self.seen(r);
            }
            10 => {
                let (at, path) = (self.at(input.byte()?), input.path()?);
                if let Ok(t) = self.fs.readlink(at, &path) {
                    assert!(!t.is_empty());
                }
            }
            11 => {
                let (at, path, follow) = (
                    self.at(input.byte()?),
                    input.path()?,
                    input.byte()? % 2 == 0,
                );
                let r = self.fs.lookup(at, &path, follow);
                if let Ok(ino) = r
                    && ino > self.max_ino
                {
                    // Lookups only find inodes that were created.
                    panic!("lookup found unknown inode {ino}");
                }
            }
            12 => {
                let (at, path) = (self.at(input.byte()?), input.path()?);
                if let Ok(ino) = self.fs.lookup(at, &path, true)
                    && let Ok(list) = self.fs.readdir(ino, None)
                {
                    check_sorted(&list.iter().map(|e| e.name.as_str()).collect::<Vec<_>>());
                }
            }
            13 | 14 => {
                let (at, path, follow) = (
                    self.at(input.byte()?),
                    input.path()?,
                    input.byte()? % 2 == 0,
                );
                if let Ok(ino) = self.fs.lookup(at, &path, follow)
                    && self.fs.open(ino).is_ok()
                {
                    self.handles.push(ino);
                }
            }
            15 => {
                let h = input.byte()?;
                if let Some(ino) = self.handle(h) {
                    let i = usize::from(h) % self.handles.len();
                    self.handles.remove(i);
                    self.fs.close(ino);
                }
            }
            16 => {
                let (h, off, len, b) =
                    (input.byte()?, input.offset()?, input.byte()?, input.byte()?);
                if let Some(ino) = self.handle(h) {
                    let _ = self.fs.write(ino, off, &vec![b; usize::from(len) * 3], now);
                }
            }
            17 => {
                let (h, off, len) = (input.byte()?, input.offset()?, input.byte()?);
                if let Some(ino) = self.handle(h) {
                    let mut buf = vec![0; usize::from(len) * 3];
                    if let Ok(n) = self.fs.read(ino, off, &mut buf, now) {
                        let size = self.fs.stat(ino).map(|s| s.size).unwrap_or(0);
                        assert!(n == 0 || (n <= buf.len() && off + n as u64 <= size));
                    }
                }
            }
            18 => {
                let (h, len) = (input.byte()?, input.offset()?);
                if let Some(ino) = self.handle(h) {
                    let _ = self.fs.truncate(ino, len, now);
                }
            }
            _ => {
                let (at, path) = (self.at(input.byte()?), input.path()?);
                let r = self.fs.mknod(at, &path, (1, 3), 0o666, now);
                self.seen(r);
            }
        }
        Some(())
    }

    /// Walks the tree from the root checking listings and link counts,
    /// checks open directories' `..`, and bounds `used()` by the pages the
    /// files' sizes allow.
    fn check(&self) {
        let fs = &self.fs;
        assert!(fs.used() <= fs.capacity(), "used {} > capacity", fs.used());
        assert_eq!(fs.used() % PAGE, 0, "capacity is charged in pages");
        let mut names: BTreeMap<Ino, u32> = BTreeMap::new();
        let mut dirs = vec![(ROOT, ROOT)];
        let mut visited = BTreeSet::new();
        while let Some((dir, parent)) = dirs.pop() {
            assert!(visited.insert(dir), "directory {dir} reached twice");
            let list = fs.readdir(dir, None).expect("a listed directory lists");
            assert!(list.len() >= 2 && list[0].name == "." && list[1].name == "..");
            assert_eq!(
                (list[0].ino, list[1].ino),
                (dir, parent),
                ". and .. of {dir}"
            );
            check_sorted(&list.iter().map(|e| e.name.as_str()).collect::<Vec<_>>());
            let mut subdirs = 0;
            for e in &list[2..] {
                assert!(!e.name.is_empty() && !e.name.contains('/') && e.name.len() <= 255);
                let st = fs.stat(e.ino).expect("a listed inode exists");
                assert_eq!(e.kind, st.mode & 0o170000, "type of {}", e.name);
                if e.kind == mode::S_IFDIR {
                    subdirs += 1;
                    dirs.push((e.ino, dir));
                } else {
                    *names.entry(e.ino).or_default() += 1;
                }
            }
            assert_eq!(
                fs.stat(dir).map(|s| s.nlink),
                Ok(2 + subdirs),
                "nlink of {dir}"
            );
        }
        for (&ino, &n) in &names {
            assert_eq!(fs.stat(ino).map(|s| s.nlink), Ok(n), "nlink of {ino}");
        }
        for &ino in &self.handles {
            let st = fs.stat(ino).expect("an open inode exists");
            if st.mode & 0o170000 == mode::S_IFDIR {
                // Even a removed directory's `..` names a live inode.
                let parent = fs.lookup(ino, "..", false).expect(".. resolves");
                assert!(fs.stat(parent).is_ok(), ".. of {ino} is freed");
                if st.nlink == 0 {
                    assert_eq!(fs.readdir(ino, None), Err(Errno::ENOENT), "removed {ino}");
                }
            }
        }
        let mut files: BTreeSet<Ino> = names.keys().copied().collect();
        for &ino in &self.handles {
            let st = fs.stat(ino).expect("an open inode exists");
            if !names.contains_key(&ino) && !visited.contains(&ino) {
                assert_eq!(st.nlink, 0, "open inode {ino} has no names");
            }
            files.insert(ino);
        }
        let max: u64 = files
            .iter()
            .filter(|&&ino| fs.borrowed_bytes(ino).is_none())
            .filter_map(|&ino| fs.stat(ino).ok())
            .filter(|s| s.mode & 0o170000 == mode::S_IFREG)
            .map(|s| s.size.div_ceil(PAGE) * PAGE)
            .sum();
        assert!(
            fs.used() <= max,
            "used {} but files hold at most {max}",
            fs.used()
        );
    }

    /// Closes and removes everything; nothing may be left.
    fn teardown(mut self) {
        for ino in std::mem::take(&mut self.handles) {
            self.fs.close(ino);
        }
        remove_all(&mut self.fs, ROOT);
        let list = self.fs.readdir(ROOT, None).expect("root");
        assert_eq!(list.len(), 2, "everything removed: {list:?}");
        assert_eq!(self.fs.used(), 0, "space left after removing everything");
        for ino in ROOT + 1..=self.max_ino {
            assert_eq!(
                self.fs.stat(ino).map(|_| ()),
                Err(Errno::ENOENT),
                "inode {ino} leaked"
            );
        }
    }
}

/// Names strictly increasing after `.` and `..` (sorted and unique).
fn check_sorted(names: &[&str]) {
    assert!(names.len() >= 2 && names[..2] == [".", ".."], "{names:?}");
    assert!(names[2..].windows(2).all(|w| w[0] < w[1]), "{names:?}");
    assert!(
        !names[2..].iter().any(|n| *n == "." || *n == ".."),
        "{names:?}"
    );
}

fn remove_all(fs: &mut RamFs, dir: Ino) {
    let list = fs.readdir(dir, None).expect("directory");
    for e in &list[2..] {
        if e.kind == mode::S_IFDIR {
            remove_all(fs, e.ino);
            fs.rmdir(dir, &e.name, 0).expect("emptied directory");
        } else {
            fs.unlink(dir, &e.name, 0).expect("non-directory");
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut fs = RamFs::new(CAPACITY);
    let c = fs.add_borrowed(ROOT, "c", INITRD, 0o644, 0).expect("fresh");
    fs.mkdir(ROOT, "x", 0o755, 0).expect("fresh");
    let y = fs.mkdir(ROOT, "x/y", 0o755, 0).expect("fresh");
    let mut state = State {
        fs,
        handles: Vec::new(),
        max_ino: c.max(y),
    };
    let mut input = Input(data);
    for _ in 0..MAX_OPS {
        if state.step(&mut input).is_none() {
            break;
        }
        state.check();
    }
    state.teardown();
}
