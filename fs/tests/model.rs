//! Model-based test of [`RamFs`]: proptest generates random operation
//! sequences on a small namespace (names `a b c x y` under `/`, `/x` and
//! `/x/y`, reached through `.`, `..`, repeated and trailing slashes,
//! symbolic links and open directory handles), runs each step on the real
//! filesystem and on [`Model`], a deliberately naive reference that spells
//! out the Linux tmpfs rules, and compares every result and errno. After
//! each step it checks the invariants: type, size and link count of every
//! live inode, that freed inodes are gone (nothing leaks), every directory
//! listing (sorted, `.` and `..` first, resumable after any name), file
//! contents, and that `used()` is what the owned files' pages hold (the
//! crate charges whole pages; holes and borrowed initrd bytes are free)
//! and never exceeds the capacity.
//!
//! The model's rules were checked against Linux tmpfs by running the same
//! sequences with real syscalls, and no step is skipped: every result and
//! errno must be Linux's. The corner cases where `RamFs` once differed
//! have deterministic tests in `edge_cases.rs`.

use std::collections::{BTreeMap, BTreeSet};

use kcore::errno::Errno;
use llmos_fs::ramfs::{Ino, PAGE_SIZE, ROOT, RamFs, mode};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// A model inode number. Real inode numbers are learnt as inodes are
/// created (a bijection), so the model assumes nothing about allocation.
pub(crate) type Id = usize;
/// The model's root directory.
pub(crate) const ROOT_ID: Id = 0;
/// Symbolic links one resolution may follow (Linux `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;
/// Bytes per page: capacity is charged in whole pages, as in tmpfs.
const PAGE: u64 = PAGE_SIZE as u64;
/// Five pages, so that ENOSPC is common.
const CAPACITY: u64 = 5 * PAGE;
/// Contents of `/c`, a borrowed (initrd) file every run starts with.
pub(crate) static INITRD: &[u8] = b"borrowed from the initrd";
/// Directories every run starts with (model ids 2 and 3), so that deeper
/// paths resolve from the first step.
pub(crate) const START_DIRS: [&str; 2] = ["x", "x/y"];

/// Where a relative path starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum At {
    /// The root directory.
    Root,
    /// An open handle (index modulo the number open; the root if none).
    Handle(u8),
}

/// One filesystem call. Path operations resolve like the `*at` syscalls;
/// `H*` operations act on an open handle (EBADF if none is open).
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// `open(O_CREAT [| O_EXCL])`: the inode it would open.
    Create {
        at: At,
        path: String,
        excl: bool,
    },
    /// Resolve (following links), then write `len` copies of `byte`.
    Write {
        at: At,
        path: String,
        off: u64,
        len: usize,
        byte: u8,
    },
    /// Resolve, then read.
    Read {
        at: At,
        path: String,
        off: u64,
        len: usize,
    },
    /// Resolve, then truncate.
    Truncate {
        at: At,
        path: String,
        len: u64,
    },
    Mkdir {
        at: At,
        path: String,
    },
    Rmdir {
        at: At,
        path: String,
    },
    Unlink {
        at: At,
        path: String,
    },
    Rename {
        at: At,
        old: String,
        new_at: At,
        new: String,
        noreplace: bool,
    },
    /// `linkat` without `AT_SYMLINK_FOLLOW`.
    Link {
        at: At,
        old: String,
        new_at: At,
        new: String,
    },
    Symlink {
        target: String,
        at: At,
        path: String,
    },
    Readlink {
        at: At,
        path: String,
    },
    Lookup {
        at: At,
        path: String,
        follow: bool,
    },
    /// Resolve (following links), then list the directory.
    Readdir {
        at: At,
        path: String,
    },
    /// Resolve, then open: the inode survives unlink until closed.
    Open {
        at: At,
        path: String,
        follow: bool,
    },
    Close {
        h: u8,
    },
    HWrite {
        h: u8,
        off: u64,
        len: usize,
        byte: u8,
    },
    HRead {
        h: u8,
        off: u64,
        len: usize,
    },
    HTruncate {
        h: u8,
        len: u64,
    },
}

/// A successful result. `N` is an inode reference: [`Id`] in the model,
/// the real inode number in the filesystem under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Val<N> {
    Unit,
    Node(N),
    Count(usize),
    Bytes(Vec<u8>),
    Text(String),
    /// Directory entries without `.` and `..`, in name order.
    Listing(Vec<(String, N, Type)>),
}

/// File types the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    File,
    Dir,
    Symlink,
}

impl Type {
    /// The type of an `st_mode`.
    pub(crate) fn of_mode(m: u32) -> Option<Type> {
        match m & 0o170000 {
            mode::S_IFREG => Some(Type::File),
            mode::S_IFDIR => Some(Type::Dir),
            mode::S_IFLNK => Some(Type::Symlink),
            _ => None,
        }
    }
}

/// What an inode holds.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// `data` is the logical contents (holes read as zeros); `pages` the
    /// page indices that hold memory (writes allocate the pages they touch;
    /// growing by truncate makes a hole).
    File {
        data: Vec<u8>,
        pages: BTreeSet<u64>,
        borrowed: bool,
    },
    Dir {
        entries: BTreeMap<String, Id>,
        parent: Id,
        removed: bool,
    },
    Symlink(String),
}

/// A live inode.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) open: u32,
}

/// The last component of a path, as Linux classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last<'p> {
    /// The path is only slashes.
    Root,
    Dot,
    DotDot,
    Name(&'p str),
}

/// A path split into its (resolved) directory and last component.
struct Parent<'p> {
    dir: Id,
    last: Last<'p>,
    trailing_slash: bool,
}

/// The reference model. Link counts and sizes are derived from the tree
/// on demand rather than maintained, so they cannot drift.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    /// Live inodes (linked, open, or the parent of a live removed
    /// directory).
    pub(crate) nodes: BTreeMap<Id, Node>,
    /// The next id; ids are never reused.
    pub(crate) next: Id,
    capacity: u64,
    /// Open handles, in opening order.
    pub(crate) handles: Vec<Id>,
}

impl Model {
    /// The root directory, the borrowed file `/c` and [`START_DIRS`].
    pub(crate) fn new(capacity: u64) -> Self {
        let mut m = Model {
            nodes: BTreeMap::new(),
            next: ROOT_ID,
            capacity,
            handles: Vec::new(),
        };
        m.alloc(Kind::Dir {
            entries: BTreeMap::new(),
            parent: ROOT_ID,
            removed: false,
        });
        let c = m.alloc(Kind::File {
            data: INITRD.to_vec(),
            pages: BTreeSet::new(),
            borrowed: true,
        });
        m.entries_mut(ROOT_ID).insert("c".into(), c);
        for path in START_DIRS {
            m.mkdir(ROOT_ID, path).expect("fresh model");
        }
        m
    }

    fn alloc(&mut self, kind: Kind) -> Id {
        let id = self.next;
        self.next += 1;
        self.nodes.insert(id, Node { kind, open: 0 });
        id
    }

    pub(crate) fn kind(&self, id: Id) -> &Kind {
        &self.nodes[&id].kind
    }

    pub(crate) fn ty(&self, id: Id) -> Type {
        match self.kind(id) {
            Kind::File { .. } => Type::File,
            Kind::Dir { .. } => Type::Dir,
            Kind::Symlink(_) => Type::Symlink,
        }
    }

    fn is_dir(&self, id: Id) -> bool {
        self.ty(id) == Type::Dir
    }

    pub(crate) fn entries(&self, dir: Id) -> &BTreeMap<String, Id> {
        match self.kind(dir) {
            Kind::Dir { entries, .. } => entries,
            k => panic!("model bug: {k:?} is not a directory"),
        }
    }

    fn entries_mut(&mut self, dir: Id) -> &mut BTreeMap<String, Id> {
        match &mut self.nodes.get_mut(&dir).expect("live").kind {
            Kind::Dir { entries, .. } => entries,
            k => panic!("model bug: {k:?} is not a directory"),
        }
    }

    pub(crate) fn parent(&self, dir: Id) -> Id {
        match self.kind(dir) {
            Kind::Dir { parent, .. } => *parent,
            k => panic!("model bug: {k:?} is not a directory"),
        }
    }

    pub(crate) fn removed(&self, dir: Id) -> bool {
        matches!(self.kind(dir), Kind::Dir { removed: true, .. })
    }

    /// Directory entries naming `id`, over all directories.
    fn names_of(&self, id: Id) -> usize {
        self.nodes
            .values()
            .filter_map(|n| match &n.kind {
                Kind::Dir { entries, .. } => Some(entries.values().filter(|c| **c == id).count()),
                _ => None,
            })
            .sum()
    }

    /// `st_nlink`: names for non-directories; 2 plus subdirectories for a
    /// directory, 0 once removed.
    pub(crate) fn nlink(&self, id: Id) -> u32 {
        let n = match self.kind(id) {
            Kind::Dir { removed: true, .. } => 0,
            Kind::Dir { entries, .. } => 2 + entries.values().filter(|c| self.is_dir(**c)).count(),
            _ => self.names_of(id),
        };
        u32::try_from(n).expect("small")
    }

    /// `st_size`: tmpfs counts 20 bytes per directory entry, `.` and `..`
    /// included.
    pub(crate) fn size(&self, id: Id) -> u64 {
        let n = match self.kind(id) {
            Kind::File { data, .. } => data.len(),
            Kind::Dir { entries, .. } => 20 * (entries.len() + 2),
            Kind::Symlink(t) => t.len(),
        };
        n as u64
    }

    /// Bytes of the pages owned (not borrowed) files of live inodes hold.
    pub(crate) fn used(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.kind {
                Kind::File {
                    pages,
                    borrowed: false,
                    ..
                } => pages.len() as u64 * PAGE,
                _ => 0,
            })
            .sum()
    }

    /// Whether a live removed directory has `id` as its parent: its `..`
    /// still leads there, so (as a Linux dentry holds its `d_parent`) that
    /// keeps `id` alive.
    fn holds_parent(&self, id: Id) -> bool {
        self.nodes
            .values()
            .any(|n| matches!(&n.kind, Kind::Dir { parent, removed: true, .. } if *parent == id))
    }

    /// Frees inodes with neither names nor open handles nor a removed
    /// subdirectory that still leads to them (repeatedly: freeing one
    /// removed directory can free its parent); returns them.
    pub(crate) fn collect(&mut self) -> Vec<Id> {
        let mut all = Vec::new();
        loop {
            let dead: Vec<Id> = self
                .nodes
                .iter()
                .filter(|(id, n)| {
                    **id != ROOT_ID
                        && n.open == 0
                        && self.nlink(**id) == 0
                        && !self.holds_parent(**id)
                })
                .map(|(id, _)| *id)
                .collect();
            if dead.is_empty() {
                return all;
            }
            for id in &dead {
                self.nodes.remove(id);
            }
            all.extend(dead);
        }
    }

    /// The directory a relative path in `at` starts from.
    pub(crate) fn base(&self, at: At) -> Id {
        match at {
            At::Handle(h) if !self.handles.is_empty() => {
                self.handles[usize::from(h) % self.handles.len()]
            }
            _ => ROOT_ID,
        }
    }

    /// The inode behind handle `h`, if any handle is open.
    pub(crate) fn handle(&self, h: u8) -> Option<Id> {
        (!self.handles.is_empty()).then(|| self.handles[usize::from(h) % self.handles.len()])
    }

    fn is_ancestor_or_self(&self, anc: Id, mut id: Id) -> bool {
        loop {
            if id == anc {
                return true;
            }
            if id == ROOT_ID || !self.nodes.contains_key(&id) || !self.is_dir(id) {
                return false;
            }
            id = self.parent(id);
        }
    }

    /// `..` of a directory: its parent, which stays alive while it does.
    fn dotdot(&self, dir: Id) -> Id {
        let p = self.parent(dir);
        assert!(self.nodes.contains_key(&p), "model bug: freed parent {p}");
        p
    }

    /// Path resolution: every component but the last must be a directory;
    /// symlinks are followed in the middle always, and at the end with
    /// `follow` or a trailing slash (which also demands a directory).
    fn resolve(
        &mut self,
        start: Id,
        path: &str,
        follow: bool,
        budget: &mut usize,
    ) -> Result<Id, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut cur = if path.starts_with('/') {
            ROOT_ID
        } else {
            start
        };
        if !self.is_dir(cur) {
            return Err(Errno::ENOTDIR);
        }
        let trailing_slash = path.ends_with('/');
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for (i, comp) in comps.iter().enumerate() {
            if !self.is_dir(cur) {
                return Err(Errno::ENOTDIR);
            }
            let next = match *comp {
                "." => cur,
                ".." => self.dotdot(cur),
                name => *self.entries(cur).get(name).ok_or(Errno::ENOENT)?,
            };
            let last = i + 1 == comps.len();
            if let Kind::Symlink(target) = self.kind(next)
                && (!last || follow || trailing_slash)
            {
                if *budget == 0 {
                    return Err(Errno::ELOOP);
                }
                *budget -= 1;
                let target = target.clone();
                cur = self.resolve(cur, &target, true, budget)?;
            } else {
                cur = next;
            }
        }
        if trailing_slash && !self.is_dir(cur) {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    fn lookup(&mut self, start: Id, path: &str, follow: bool) -> Result<Id, Errno> {
        let mut budget = MAX_SYMLINKS;
        self.resolve(start, path, follow, &mut budget)
    }

    /// Resolves all but the last component (Linux `filename_parentat`).
    fn parent_at<'p>(
        &mut self,
        start: Id,
        path: &'p str,
        budget: &mut usize,
    ) -> Result<Parent<'p>, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(Parent {
                dir: ROOT_ID,
                last: Last::Root,
                trailing_slash: false,
            });
        }
        let (dir_part, name) = match trimmed.rfind('/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        let dir = if dir_part.is_empty() {
            start
        } else {
            self.resolve(start, dir_part, true, budget)?
        };
        if !self.is_dir(dir) {
            return Err(Errno::ENOTDIR);
        }
        let last = match name {
            "." => Last::Dot,
            ".." => Last::DotDot,
            n => Last::Name(n),
        };
        Ok(Parent {
            dir,
            last,
            trailing_slash: trimmed.len() < path.len(),
        })
    }

    fn parent_of<'p>(&mut self, start: Id, path: &'p str) -> Result<Parent<'p>, Errno> {
        let mut budget = MAX_SYMLINKS;
        self.parent_at(start, path, &mut budget)
    }

    /// Adds a new inode under `name` in `dir`, unless `dir` was removed.
    fn insert_new(&mut self, dir: Id, name: &str, kind: Kind) -> Result<Id, Errno> {
        if self.removed(dir) {
            return Err(Errno::ENOENT);
        }
        let id = self.alloc(kind);
        self.entries_mut(dir).insert(name.into(), id);
        Ok(id)
    }

    /// `open(O_CREAT [| O_EXCL])` (Linux `open_last_lookups` + `do_open`);
    /// a trailing symlink is followed with the same `budget`, and a
    /// dangling one creates its target.
    fn create(
        &mut self,
        start: Id,
        path: &str,
        excl: bool,
        budget: &mut usize,
    ) -> Result<Id, Errno> {
        let p = self.parent_at(start, path, budget)?;
        let Last::Name(name) = p.last else {
            // `.`, `..` or `/`: an existing directory.
            return Err(if excl { Errno::EEXIST } else { Errno::EISDIR });
        };
        if p.trailing_slash {
            return Err(Errno::EISDIR);
        }
        let existing = self.entries(p.dir).get(name).copied();
        match existing {
            Some(_) if excl => Err(Errno::EEXIST),
            Some(id) => match self.kind(id) {
                Kind::File { .. } => Ok(id),
                Kind::Dir { .. } => Err(Errno::EISDIR),
                Kind::Symlink(target) => {
                    if *budget == 0 {
                        return Err(Errno::ELOOP);
                    }
                    *budget -= 1;
                    let target = target.clone();
                    self.create(p.dir, &target, false, budget)
                }
            },
            None => {
                let file = Kind::File {
                    data: Vec::new(),
                    pages: BTreeSet::new(),
                    borrowed: false,
                };
                self.insert_new(p.dir, name, file)
            }
        }
    }

    fn mkdir(&mut self, start: Id, path: &str) -> Result<Id, Errno> {
        let p = self.parent_of(start, path)?;
        let Last::Name(name) = p.last else {
            return Err(Errno::EEXIST);
        };
        if self.entries(p.dir).contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let dir = Kind::Dir {
            entries: BTreeMap::new(),
            parent: p.dir,
            removed: false,
        };
        self.insert_new(p.dir, name, dir)
    }

    fn symlink(&mut self, target: &str, start: Id, path: &str) -> Result<Id, Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let p = self.parent_of(start, path)?;
        let Last::Name(name) = p.last else {
            return Err(Errno::EEXIST);
        };
        if self.entries(p.dir).contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if p.trailing_slash {
            return Err(Errno::ENOENT);
        }
        self.insert_new(p.dir, name, Kind::Symlink(target.into()))
    }

    fn link(&mut self, start: Id, old: &str, new_start: Id, new: &str) -> Result<(), Errno> {
        let src = self.lookup(start, old, false)?;
        self.link_to(src, new_start, new)
    }

    fn link_to(&mut self, src: Id, new_start: Id, new: &str) -> Result<(), Errno> {
        let p = self.parent_of(new_start, new)?;
        let Last::Name(name) = p.last else {
            return Err(Errno::EEXIST);
        };
        if self.entries(p.dir).contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if p.trailing_slash {
            return Err(Errno::ENOENT);
        }
        if self.removed(p.dir) {
            return Err(Errno::ENOENT);
        }
        if self.is_dir(src) {
            return Err(Errno::EPERM);
        }
        self.entries_mut(p.dir).insert(name.into(), src);
        Ok(())
    }

    fn unlink(&mut self, start: Id, path: &str) -> Result<(), Errno> {
        let p = self.parent_of(start, path)?;
        let Last::Name(name) = p.last else {
            // `.`, `..` and `/` name directories.
            return Err(Errno::EISDIR);
        };
        let id = *self.entries(p.dir).get(name).ok_or(Errno::ENOENT)?;
        if self.is_dir(id) {
            return Err(Errno::EISDIR);
        }
        if p.trailing_slash {
            return Err(Errno::ENOTDIR);
        }
        self.entries_mut(p.dir).remove(name);
        Ok(())
    }

    fn rmdir(&mut self, start: Id, path: &str) -> Result<(), Errno> {
        let p = self.parent_of(start, path)?;
        let name = match p.last {
            Last::Name(n) => n,
            Last::Root => return Err(Errno::EBUSY),
            Last::Dot => return Err(Errno::EINVAL),
            Last::DotDot => return Err(Errno::ENOTEMPTY),
        };
        let id = *self.entries(p.dir).get(name).ok_or(Errno::ENOENT)?;
        if !self.is_dir(id) {
            return Err(Errno::ENOTDIR);
        }
        if !self.entries(id).is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.entries_mut(p.dir).remove(name);
        self.mark_removed(id);
        Ok(())
    }

    fn mark_removed(&mut self, dir: Id) {
        if let Kind::Dir { removed, .. } = &mut self.nodes.get_mut(&dir).expect("live").kind {
            *removed = true;
        }
    }

    /// `renameat2` (Linux `do_renameat2` + `vfs_rename`, checks in that
    /// order).
    fn rename(
        &mut self,
        start: Id,
        old: &str,
        new_start: Id,
        new: &str,
        noreplace: bool,
    ) -> Result<(), Errno> {
        let po = self.parent_of(start, old)?;
        let pn = self.parent_of(new_start, new)?;
        let oname = match po.last {
            Last::Name(n) => n,
            _ => return Err(Errno::EBUSY),
        };
        let nname = match pn.last {
            Last::Name(n) => n,
            _ if noreplace => return Err(Errno::EEXIST),
            _ => return Err(Errno::EBUSY),
        };
        let src = *self.entries(po.dir).get(oname).ok_or(Errno::ENOENT)?;
        if self.removed(pn.dir) {
            return Err(Errno::ENOENT);
        }
        let dst = self.entries(pn.dir).get(nname).copied();
        let src_is_dir = self.is_dir(src);
        // The source may not become its own descendant.
        let into_itself = src_is_dir && self.is_ancestor_or_self(src, pn.dir);
        // Even when both names are the same inode.
        if noreplace && dst.is_some() {
            return Err(Errno::EEXIST);
        }
        if !src_is_dir && (po.trailing_slash || pn.trailing_slash) {
            return Err(Errno::ENOTDIR);
        }
        if into_itself {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = dst {
            // The target is an ancestor of the source (so not empty), even
            // for a non-directory source.
            if self.is_ancestor_or_self(d, po.dir) {
                return Err(Errno::ENOTEMPTY);
            }
            if d == src {
                return Ok(());
            }
            match (src_is_dir, self.is_dir(d)) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.entries(d).is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            self.entries_mut(pn.dir).remove(nname);
            if self.is_dir(d) {
                self.mark_removed(d);
            }
        }
        self.entries_mut(po.dir).remove(oname);
        self.entries_mut(pn.dir).insert(nname.into(), src);
        if let Kind::Dir { parent, .. } = &mut self.nodes.get_mut(&src).expect("live").kind {
            *parent = pn.dir;
        }
        Ok(())
    }

    fn readlink(&mut self, start: Id, path: &str) -> Result<String, Errno> {
        let id = self.lookup(start, path, false)?;
        match self.kind(id) {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Entries of a directory (a removed one has none).
    pub(crate) fn listing(&self, dir: Id) -> Vec<(String, Id, Type)> {
        self.entries(dir)
            .iter()
            .map(|(n, id)| (n.clone(), *id, self.ty(*id)))
            .collect()
    }

    fn read(&self, id: Id, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
        match self.kind(id) {
            Kind::Dir { .. } => Err(Errno::EISDIR),
            Kind::Symlink(_) => Err(Errno::EINVAL),
            Kind::File { data, .. } => {
                let start = usize::try_from(off).unwrap_or(usize::MAX).min(data.len());
                let end = start.saturating_add(len).min(data.len());
                Ok(data[start..end].to_vec())
            }
        }
    }

    /// The first change to a borrowed file copies it into pages (charged
    /// in full).
    fn make_owned(&mut self, id: Id) -> Result<(), Errno> {
        let used = self.used();
        let capacity = self.capacity;
        if let Kind::File {
            data,
            pages,
            borrowed,
        } = self.file_mut(id)
            && *borrowed
        {
            let n = (data.len() as u64).div_ceil(PAGE);
            if used + n * PAGE > capacity {
                return Err(Errno::ENOSPC);
            }
            *pages = (0..n).collect();
            *borrowed = false;
        }
        Ok(())
    }

    fn file_mut(&mut self, id: Id) -> &mut Kind {
        &mut self.nodes.get_mut(&id).expect("live").kind
    }

    /// Writes all of `bytes` or nothing (ENOSPC if the pages it touches
    /// that hold no memory yet do not fit).
    fn write(&mut self, id: Id, off: u64, bytes: &[u8]) -> Result<usize, Errno> {
        match self.kind(id) {
            Kind::Dir { .. } => return Err(Errno::EISDIR),
            Kind::Symlink(_) => return Err(Errno::EINVAL),
            Kind::File { .. } => {}
        }
        self.make_owned(id)?;
        if bytes.is_empty() {
            return Ok(0);
        }
        let end = off + bytes.len() as u64;
        let touched: BTreeSet<u64> = (off / PAGE..=(end - 1) / PAGE).collect();
        let used = self.used();
        let capacity = self.capacity;
        if let Kind::File { data, pages, .. } = self.file_mut(id) {
            if used + touched.difference(pages).count() as u64 * PAGE > capacity {
                return Err(Errno::ENOSPC);
            }
            pages.extend(touched);
            let (off, end) = (off as usize, end as usize);
            if data.len() < end {
                data.resize(end, 0);
            }
            data[off..end].copy_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    /// Shrinking frees the pages wholly past the end; growing makes a hole.
    fn truncate(&mut self, id: Id, len: u64) -> Result<(), Errno> {
        match self.kind(id) {
            Kind::Dir { .. } => return Err(Errno::EISDIR),
            Kind::Symlink(_) => return Err(Errno::EINVAL),
            Kind::File { .. } => {}
        }
        self.make_owned(id)?;
        if let Kind::File { data, pages, .. } = self.file_mut(id) {
            data.resize(len as usize, 0);
            pages.retain(|p| *p < len.div_ceil(PAGE));
        }
        Ok(())
    }

    /// Runs one operation. Afterwards [`Model::collect`] frees what it
    /// orphaned.
    pub(crate) fn apply(&mut self, op: &Op) -> Result<Val<Id>, Errno> {
        let node = |r: Result<Id, Errno>| r.map(Val::Node);
        let unit = |r: Result<(), Errno>| r.map(|()| Val::Unit);
        match op {
            Op::Create { at, path, excl } => {
                let mut budget = MAX_SYMLINKS;
                node(self.create(self.base(*at), path, *excl, &mut budget))
            }
            Op::Write {
                at,
                path,
                off,
                len,
                byte,
            } => {
                let id = self.lookup(self.base(*at), path, true)?;
                self.write(id, *off, &vec![*byte; *len]).map(Val::Count)
            }
            Op::Read { at, path, off, len } => {
                let id = self.lookup(self.base(*at), path, true)?;
                self.read(id, *off, *len).map(Val::Bytes)
            }
            Op::Truncate { at, path, len } => {
                let id = self.lookup(self.base(*at), path, true)?;
                unit(self.truncate(id, *len))
            }
            Op::Mkdir { at, path } => node(self.mkdir(self.base(*at), path)),
            Op::Rmdir { at, path } => unit(self.rmdir(self.base(*at), path)),
            Op::Unlink { at, path } => unit(self.unlink(self.base(*at), path)),
            Op::Rename {
                at,
                old,
                new_at,
                new,
                noreplace,
            } => unit(self.rename(self.base(*at), old, self.base(*new_at), new, *noreplace)),
            Op::Link {
                at,
                old,
                new_at,
                new,
            } => unit(self.link(self.base(*at), old, self.base(*new_at), new)),
            Op::Symlink { target, at, path } => node(self.symlink(target, self.base(*at), path)),
            Op::Readlink { at, path } => self.readlink(self.base(*at), path).map(Val::Text),
            Op::Lookup { at, path, follow } => node(self.lookup(self.base(*at), path, *follow)),
            Op::Readdir { at, path } => {
                let id = self.lookup(self.base(*at), path, true)?;
                if !self.is_dir(id) {
                    return Err(Errno::ENOTDIR);
                }
                if self.removed(id) {
                    return Err(Errno::ENOENT);
                }
                Ok(Val::Listing(self.listing(id)))
            }
            Op::Open { at, path, follow } => {
                let id = self.lookup(self.base(*at), path, *follow)?;
                self.nodes.get_mut(&id).expect("live").open += 1;
                self.handles.push(id);
                Ok(Val::Node(id))
            }
            Op::Close { h } => {
                if let Some(id) = self.handle(*h) {
                    let i = usize::from(*h) % self.handles.len();
                    self.handles.remove(i);
                    self.nodes.get_mut(&id).expect("live").open -= 1;
                }
                Ok(Val::Unit)
            }
            Op::HWrite { h, off, len, byte } => {
                let id = self.handle(*h).ok_or(Errno::EBADF)?;
                self.write(id, *off, &vec![*byte; *len]).map(Val::Count)
            }
            Op::HRead { h, off, len } => {
                let id = self.handle(*h).ok_or(Errno::EBADF)?;
                self.read(id, *off, *len).map(Val::Bytes)
            }
            Op::HTruncate { h, len } => {
                let id = self.handle(*h).ok_or(Errno::EBADF)?;
                unit(self.truncate(id, *len))
            }
        }
    }
}

/// Checks that a real answer matches the model's, binding the real inode
/// number of every model inode created in this step (ids `>= first_new`)
/// and requiring the binding to stay a bijection.
pub(crate) fn compare<N: Copy + Ord + std::fmt::Debug>(
    map: &mut BTreeMap<Id, N>,
    first_new: Id,
    want: &Result<Val<Id>, Errno>,
    got: &Result<Val<N>, Errno>,
) -> Result<(), String> {
    let mut bind = |id: Id, real: N| -> Result<(), String> {
        if id >= first_new && !map.contains_key(&id) {
            if let Some((other, _)) = map.iter().find(|(_, r)| **r == real) {
                return Err(format!("new inode {real:?} is already model inode {other}"));
            }
            map.insert(id, real);
        }
        match map.get(&id) {
            Some(r) if *r == real => Ok(()),
            r => Err(format!("model inode {id} is {r:?}, got {real:?}")),
        }
    };
    let mismatch = || Err(format!("model says {want:?}, got {got:?}"));
    match (want, got) {
        (Err(w), Err(g)) if w == g => Ok(()),
        (Ok(Val::Node(w)), Ok(Val::Node(g))) => bind(*w, *g),
        (Ok(Val::Listing(w)), Ok(Val::Listing(g))) => {
            if w.len() != g.len() {
                return mismatch();
            }
            for ((wn, wi, wt), (gn, gi, gt)) in w.iter().zip(g) {
                if wn != gn || wt != gt {
                    return mismatch();
                }
                bind(*wi, *gi)?;
            }
            Ok(())
        }
        (Ok(Val::Unit), Ok(Val::Unit)) => Ok(()),
        (Ok(Val::Count(w)), Ok(Val::Count(g))) if w == g => Ok(()),
        (Ok(Val::Bytes(w)), Ok(Val::Bytes(g))) if w == g => Ok(()),
        (Ok(Val::Text(w)), Ok(Val::Text(g))) if w == g => Ok(()),
        _ => mismatch(),
    }
}

/// A `RamFs` driven in step with the model.
struct Harness {
    fs: RamFs,
    model: Model,
    inos: BTreeMap<Id, Ino>,
    /// Highest inode number seen: every other number up to it must be free.
    max_ino: Ino,
}

impl Harness {
    fn new() -> Self {
        let mut fs = RamFs::new(CAPACITY);
        let mut inos = BTreeMap::from([(ROOT_ID, ROOT)]);
        let c = fs
            .add_borrowed(ROOT, "c", INITRD, 0o644, 0)
            .expect("fresh fs");
        inos.insert(ROOT_ID + 1, c);
        for (i, path) in START_DIRS.iter().enumerate() {
            let d = fs.mkdir(ROOT, path, 0o755, 0).expect("fresh fs");
            inos.insert(ROOT_ID + 2 + i, d);
        }
        let max_ino = inos.values().copied().max().unwrap_or(ROOT);
        Harness {
            fs,
            model: Model::new(CAPACITY),
            inos,
            max_ino,
        }
    }

    /// Runs `op` on both sides, compares the results and checks the
    /// invariants.
    fn step(&mut self, op: &Op, now: u64) -> Result<(), String> {
        let pre = self.model.clone();
        let want = self.model.apply(op);
        let got = run(&mut self.fs, &pre, &self.inos, op, now);
        compare(&mut self.inos, pre.next, &want, &got)?;
        for id in self.model.collect() {
            self.inos.remove(&id);
        }
        self.max_ino = self
            .max_ino
            .max(self.inos.values().copied().max().unwrap_or(ROOT));
        self.check_invariants()
    }

    fn ino(&self, id: Id) -> Ino {
        self.inos[&id]
    }

    fn check_invariants(&mut self) -> Result<(), String> {
        let m = &self.model;
        for (&id, node) in &m.nodes {
            let ino = self.ino(id);
            let st = self
                .fs
                .stat(ino)
                .map_err(|e| format!("stat of live inode {ino}: {e}"))?;
            let want = (Some(m.ty(id)), m.nlink(id), m.size(id));
            let got = (Type::of_mode(st.mode), st.nlink, st.size);
            if want != got {
                return Err(format!(
                    "inode {ino} (type, nlink, size): want {want:?}, got {got:?}"
                ));
            }
            match &node.kind {
                Kind::File { data, .. } => {
                    let mut buf = vec![0; data.len() + 1];
                    let n = self
                        .fs
                        .read(ino, 0, &mut buf, 0)
                        .map_err(|e| format!("read {ino}: {e}"))?;
                    if buf[..n] != data[..] {
                        let at = buf[..n].iter().zip(data).position(|(a, b)| a != b);
                        return Err(format!(
                            "contents of {ino}: {} bytes, want {}; first difference at {at:?}",
                            n,
                            data.len()
                        ));
                    }
                }
                Kind::Dir { removed: false, .. } => {
                    let parent = self.ino(m.parent(id));
                    let want: Vec<(String, Ino)> =
                        [(".".to_string(), ino), ("..".to_string(), parent)]
                            .into_iter()
                            .chain(m.listing(id).into_iter().map(|(n, c, _)| (n, self.ino(c))))
                            .collect();
                    check_listing(&self.fs, ino, &want)?;
                }
                _ => {}
            }
        }
        let live: Vec<Ino> = self.inos.values().copied().collect();
        for ino in ROOT..=self.max_ino {
            if !live.contains(&ino) && self.fs.stat(ino) != Err(Errno::ENOENT) {
                return Err(format!(
                    "inode {ino} should be free: {:?}",
                    self.fs.stat(ino)
                ));
            }
        }
        if self.fs.used() != m.used() || self.fs.used() > self.fs.capacity() {
            return Err(format!(
                "used {} (model {}), capacity {}",
                self.fs.used(),
                m.used(),
                self.fs.capacity()
            ));
        }
        Ok(())
    }
}

/// A directory's listing is exactly `want` (names in order, `.` and `..`
/// first, then strictly increasing), with the right types, and resuming
/// after any name yields exactly the entries after it.
fn check_listing(fs: &RamFs, dir: Ino, want: &[(String, Ino)]) -> Result<(), String> {
    let got = fs
        .readdir(dir, None)
        .map_err(|e| format!("readdir {dir}: {e}"))?;
    let names: Vec<(String, Ino)> = got.iter().map(|e| (e.name.clone(), e.ino)).collect();
    if names != want {
        return Err(format!("listing of {dir}: want {want:?}, got {names:?}"));
    }
    if !names[2..].windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(format!("listing of {dir} is not sorted: {names:?}"));
    }
    for e in &got {
        let st = fs
            .stat(e.ino)
            .map_err(|err| format!("entry {e:?}: {err}"))?;
        if e.kind != st.mode & 0o170000 {
            return Err(format!("entry {e:?} has type {:o}", st.mode));
        }
    }
    for (i, (name, _)) in want.iter().enumerate() {
        let from = if i < 2 { 2 } else { i + 1 };
        let rest: Vec<(String, Ino)> = fs
            .readdir(dir, Some(name))
            .map_err(|e| format!("readdir {dir} after {name}: {e}"))?
            .into_iter()
            .map(|e| (e.name, e.ino))
            .collect();
        if rest != want[from..] {
            return Err(format!(
                "listing of {dir} after {name:?}: want {:?}, got {rest:?}",
                &want[from..]
            ));
        }
    }
    Ok(())
}

/// Runs `op` on the filesystem; `pre` is the model before the step (for
/// handles and bases), `inos` maps its ids to inode numbers.
fn run(
    fs: &mut RamFs,
    pre: &Model,
    inos: &BTreeMap<Id, Ino>,
    op: &Op,
    now: u64,
) -> Result<Val<Ino>, Errno> {
    let base = |at: &At| inos[&pre.base(*at)];
    let handle = |h: &u8| pre.handle(*h).map(|id| inos[&id]).ok_or(Errno::EBADF);
    let unit = |r: Result<(), Errno>| r.map(|()| Val::Unit);
    match op {
        Op::Create { at, path, excl } => {
            let ino = fs.create(base(at), path, 0o644, *excl, now)?;
            // The syscall layer refuses directories (EISDIR) itself.
            if fs.stat(ino)?.mode & 0o170000 == mode::S_IFDIR {
                return Err(Errno::EISDIR);
            }
            Ok(Val::Node(ino))
        }
        Op::Write {
            at,
            path,
            off,
            len,
            byte,
        } => {
            let ino = fs.lookup(base(at), path, true)?;
            fs.write(ino, *off, &vec![*byte; *len], now).map(Val::Count)
        }
        Op::Read { at, path, off, len } => {
            let ino = fs.lookup(base(at), path, true)?;
            read(fs, ino, *off, *len, now)
        }
        Op::Truncate { at, path, len } => {
            let ino = fs.lookup(base(at), path, true)?;
            unit(fs.truncate(ino, *len, now))
        }
        Op::Mkdir { at, path } => fs.mkdir(base(at), path, 0o755, now).map(Val::Node),
        Op::Rmdir { at, path } => unit(fs.rmdir(base(at), path, now)),
        Op::Unlink { at, path } => unit(fs.unlink(base(at), path, now)),
        Op::Rename {
            at,
            old,
            new_at,
            new,
            noreplace,
        } => unit(fs.rename(base(at), old, base(new_at), new, *noreplace, now)),
        Op::Link {
            at,
            old,
            new_at,
            new,
        } => unit(fs.link(base(at), old, base(new_at), new, now)),
        Op::Symlink { target, at, path } => fs.symlink(target, base(at), path, now).map(Val::Node),
        Op::Readlink { at, path } => fs.readlink(base(at), path).map(|t| Val::Text(t.into())),
        Op::Lookup { at, path, follow } => fs.lookup(base(at), path, *follow).map(Val::Node),
        Op::Readdir { at, path } => {
            let ino = fs.lookup(base(at), path, true)?;
            let all = fs.readdir(ino, None)?;
            let dots: Vec<&str> = all.iter().take(2).map(|e| e.name.as_str()).collect();
            assert_eq!(dots, [".", ".."], "listings start with . and ..");
            let mut entries = Vec::new();
            for e in all.into_iter().skip(2) {
                let ty = Type::of_mode(e.kind).expect("file, directory or symlink");
                entries.push((e.name, e.ino, ty));
            }
            Ok(Val::Listing(entries))
        }
        Op::Open { at, path, follow } => {
            let ino = fs.lookup(base(at), path, *follow)?;
            fs.open(ino)?;
            Ok(Val::Node(ino))
        }
        Op::Close { h } => {
            if let Ok(ino) = handle(h) {
                fs.close(ino);
            }
            Ok(Val::Unit)
        }
        Op::HWrite { h, off, len, byte } => fs
            .write(handle(h)?, *off, &vec![*byte; *len], now)
            .map(Val::Count),
        Op::HRead { h, off, len } => read(fs, handle(h)?, *off, *len, now),
        Op::HTruncate { h, len } => unit(fs.truncate(handle(h)?, *len, now)),
    }
}

fn read(fs: &mut RamFs, ino: Ino, off: u64, len: usize, now: u64) -> Result<Val<Ino>, Errno> {
    let mut buf = vec![0; len];
    let n = fs.read(ino, off, &mut buf, now)?;
    buf.truncate(n);
    Ok(Val::Bytes(buf))
}

/// Paths over the small namespace, with the odd `.`, `..`, doubled or
/// trailing slash.
pub(crate) fn path() -> impl Strategy<Value = String> {
    let dir = prop::sample::select(
        &[
            "", "", "", "", "", "/", "x/", "x/y/", "/x/y/", "a/", "x/../", "//x//", "../", "./",
        ][..],
    );
    let name = prop::sample::select(&["a", "b", "c", "x", "y"][..]);
    let suffix = prop_oneof![
        24 => Just(""),
        1 => Just("/"),
        1 => Just("/."),
        1 => Just("/.."),
        1 => Just("//"),
    ];
    let special = prop::sample::select(&[".", "..", "/", "", "x/.", "/x/y/..", "x//y/"][..]);
    prop_oneof![
        20 => (dir, name, suffix).prop_map(|(d, n, s)| format!("{d}{n}{s}")),
        1 => special.prop_map(String::from),
    ]
}

/// Symlink targets: existing or soon-existing names, dangling ones, loops.
pub(crate) fn target() -> impl Strategy<Value = String> {
    prop::sample::select(
        &[
            "a", "b", "x", "x/y", "/x", "/x/y/a", "..", ".", "nowhere", "x/a", "../a", "/", "c/",
            "y/b", "b/a",
        ][..],
    )
    .prop_map(String::from)
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![5 => Just(At::Root), 1 => any::<u8>().prop_map(At::Handle)]
}

/// Offsets near the start and around the second to fifth pages, so that
/// writes share, straddle and skip pages.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0..200u64,
        1 => PAGE - 40..PAGE + 40,
        1 => 2 * PAGE - 40..2 * PAGE + 200,
        1 => 4 * PAGE - 100..4 * PAGE + 40,
    ]
}

fn len() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 6 => 1..100usize]
}

/// One random operation; writes reach the small capacity quickly.
pub(crate) fn op() -> impl Strategy<Value = Op> {
    let flag = any::<bool>;
    let h = any::<u8>;
    prop_oneof![
        4 => (at(), path(), flag())
            .prop_map(|(at, path, excl)| Op::Create { at, path, excl }),
        3 => (at(), path(), offset(), len(), any::<u8>())
            .prop_map(|(at, path, off, len, byte)| Op::Write { at, path, off, len, byte }),
        1 => (at(), path(), offset(), len())
            .prop_map(|(at, path, off, len)| Op::Read { at, path, off, len }),
        1 => (at(), path(), offset())
            .prop_map(|(at, path, len)| Op::Truncate { at, path, len }),
        3 => (at(), path()).prop_map(|(at, path)| Op::Mkdir { at, path }),
        2 => (at(), path()).prop_map(|(at, path)| Op::Rmdir { at, path }),
        2 => (at(), path()).prop_map(|(at, path)| Op::Unlink { at, path }),
        3 => (at(), path(), at(), path(), flag()).prop_map(|(at, old, new_at, new, noreplace)| {
            Op::Rename { at, old, new_at, new, noreplace }
        }),
        2 => (at(), path(), at(), path())
            .prop_map(|(at, old, new_at, new)| Op::Link { at, old, new_at, new }),
        2 => (target(), at(), path())
            .prop_map(|(target, at, path)| Op::Symlink { target, at, path }),
        1 => (at(), path()).prop_map(|(at, path)| Op::Readlink { at, path }),
        1 => (at(), path(), flag())
            .prop_map(|(at, path, follow)| Op::Lookup { at, path, follow }),
        1 => (at(), path()).prop_map(|(at, path)| Op::Readdir { at, path }),
        3 => (at(), path(), flag())
            .prop_map(|(at, path, follow)| Op::Open { at, path, follow }),
        2 => h().prop_map(|h| Op::Close { h }),
        2 => (h(), offset(), len(), any::<u8>())
            .prop_map(|(h, off, len, byte)| Op::HWrite { h, off, len, byte }),
        1 => (h(), offset(), len()).prop_map(|(h, off, len)| Op::HRead { h, off, len }),
        1 => (h(), offset()).prop_map(|(h, len)| Op::HTruncate { h, len }),
    ]
}

/// Runs a sequence from a fresh filesystem.
fn run_sequence(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    for (i, op) in ops.iter().enumerate() {
        h.step(op, i as u64)
            .map_err(|e| TestCaseError::fail(format!("step {i}: {op:?}: {e}")))?;
    }
    Ok(())
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Keep failures in the report, not in files next to the sources.
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(768))]

    /// Every result, errno and invariant matches the model (Linux tmpfs);
    /// no step is skipped.
    #[test]
    fn ramfs_matches_model(ops in prop::collection::vec(op(), 1..64)) {
        run_sequence(&ops)?;
    }
}

/// The same over fixed-seed sequences, so that a run does not depend on
/// proptest's random seed.
#[test]
fn fixed_seed_sequences_match() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

    let mut runner = TestRunner::new_with_rng(
        config(1),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    for _ in 0..64 {
        let ops = prop::collection::vec(op(), 64)
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        if let Err(e) = run_sequence(&ops) {
            panic!("{e}");
        }
    }
}

/// The model itself: a few hand-checked Linux answers.
#[test]
fn model_follows_linux() {
    let mut m = Model::new(CAPACITY);
    let mk = |path: &str| Op::Mkdir {
        at: At::Root,
        path: path.into(),
    };
    assert!(matches!(m.apply(&mk("z/")), Ok(Val::Node(_))));
    assert_eq!(m.apply(&mk("x/.")), Err(Errno::EEXIST));
    let rename = |old: &str, new: &str| Op::Rename {
        at: At::Root,
        old: old.into(),
        new_at: At::Root,
        new: new.into(),
        noreplace: false,
    };
    assert_eq!(m.apply(&rename("x", "x/y/z")), Err(Errno::EINVAL));
    assert_eq!(m.apply(&rename("x/y", "x")), Err(Errno::ENOTEMPTY));
    assert_eq!(m.apply(&rename("c", "x")), Err(Errno::EISDIR));
    assert_eq!(m.apply(&rename("x", "c")), Err(Errno::ENOTDIR));
    assert_eq!(m.nlink(ROOT_ID), 4, "x and z");
    assert_eq!(m.size(ROOT_ID), 100, "20 bytes for each of . .. c x z");
    let create = |path: &str, excl| Op::Create {
        at: At::Root,
        path: path.into(),
        excl,
    };
    assert_eq!(m.apply(&create("x", false)), Err(Errno::EISDIR));
    assert_eq!(m.apply(&create("x", true)), Err(Errno::EEXIST));
    assert_eq!(m.apply(&create("new/", false)), Err(Errno::EISDIR));
    assert_eq!(m.used(), 0, "/c is borrowed");
    // A removed but open directory keeps its removed parent reachable.
    let y = match m.apply(&Op::Open {
        at: At::Root,
        path: "x/y".into(),
        follow: true,
    }) {
        Ok(Val::Node(y)) => y,
        r => panic!("open x/y: {r:?}"),
    };
    let rmdir = |path: &str| Op::Rmdir {
        at: At::Root,
        path: path.into(),
    };
    assert_eq!(m.apply(&rmdir("x/y")), Ok(Val::Unit));
    assert_eq!(m.apply(&rmdir("x")), Ok(Val::Unit));
    assert!(m.collect().is_empty(), "x is held by y's ..");
    let in_y = |path: &str| Op::Lookup {
        at: At::Handle(0),
        path: path.into(),
        follow: true,
    };
    let x = match m.apply(&in_y("..")) {
        Ok(Val::Node(x)) => x,
        r => panic!("y/..: {r:?}"),
    };
    assert_eq!((m.nlink(y), m.nlink(x)), (0, 0));
    let list = Op::Readdir {
        at: At::Handle(0),
        path: ".".into(),
    };
    assert_eq!(m.apply(&list), Err(Errno::ENOENT));
    let mk_in_y = |path: &str| Op::Mkdir {
        at: At::Handle(0),
        path: path.into(),
    };
    assert_eq!(m.apply(&mk_in_y("..")), Err(Errno::EEXIST));
    assert_eq!(m.apply(&mk_in_y("new")), Err(Errno::ENOENT));
    assert_eq!(m.apply(&mk("x/new")), Err(Errno::ENOENT), "x has no name");
    assert_eq!(m.apply(&Op::Close { h: 0 }), Ok(Val::Unit));
    assert_eq!(m.collect(), [y, x], "both go with the last close, y first");
}
