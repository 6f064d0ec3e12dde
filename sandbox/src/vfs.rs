//! The in-memory filesystem a sandboxed run sees.
//!
//! Each run gets a tree of nodes: a private, empty scratch directory (the
//! only writable place) and the read-only mounts its grant names. Paths are
//! resolved component by component from a directory the run holds a
//! descriptor for; an absolute path, or `..` above that directory's
//! preopen root, is refused with `NOTCAPABLE`, and there are no symbolic
//! links to follow. Nothing outside the tree exists for the run.

use std::collections::BTreeMap;

use crate::errno::{self, Errno};

/// A node index.
pub type Ino = usize;

/// A file or a directory.
#[derive(Debug, Clone)]
pub enum Node {
    /// A directory: names to nodes.
    Dir(BTreeMap<String, Ino>),
    /// A file's bytes.
    File(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Entry {
    node: Node,
    writable: bool,
    parent: Ino,
    mtime: u64,
}

/// The longest path accepted, in bytes.
pub const MAX_PATH: usize = 4096;
/// The longest name accepted, in bytes.
pub const MAX_NAME: usize = 255;

/// A tree of files for one run.
#[derive(Debug, Clone)]
pub struct Vfs {
    nodes: Vec<Option<Entry>>,
    /// Bytes of file data written so far in writable places.
    used: u64,
    /// The most bytes writable places may hold.
    capacity: u64,
}

impl Vfs {
    /// An empty tree whose writable files may hold `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Self {
            nodes: Vec::new(),
            used: 0,
            capacity,
        }
    }

    /// A new directory with no parent (a preopen root).
    pub fn root(&mut self, writable: bool) -> Ino {
        let i = self.nodes.len();
        self.nodes.push(Some(Entry {
            node: Node::Dir(BTreeMap::new()),
            writable,
            parent: i,
            mtime: 0,
        }));
        i
    }

    fn entry(&self, ino: Ino) -> Result<&Entry, Errno> {
        self.nodes
            .get(ino)
            .and_then(Option::as_ref)
            .ok_or(errno::NOENT)
    }

    fn entry_mut(&mut self, ino: Ino) -> Result<&mut Entry, Errno> {
        self.nodes
            .get_mut(ino)
            .and_then(Option::as_mut)
            .ok_or(errno::NOENT)
    }

    /// The node.
    pub fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        Ok(&self.entry(ino)?.node)
    }

    /// Whether the node may be changed.
    pub fn writable(&self, ino: Ino) -> bool {
        self.entry(ino).is_ok_and(|e| e.writable)
    }

    /// Modification time (ns since the epoch; 0 for mounted files).
    pub fn mtime(&self, ino: Ino) -> u64 {
        self.entry(ino).map_or(0, |e| e.mtime)
    }

    /// Bytes written so far, and the capacity.
    pub fn usage(&self) -> (u64, u64) {
        (self.used, self.capacity)
    }

    /// Adds a read-only file at `path` (relative, `/`-separated) under
    /// `root`, making directories as needed (for mounts).
    pub fn mount_file(&mut self, root: Ino, path: &str, data: Vec<u8>) -> Result<(), Errno> {
        let mut dir = root;
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((name, dirs)) = parts.split_last() else {
            return Err(errno::INVAL);
        };
        for d in dirs {
            dir = match self.lookup(dir, d)? {
                Some(i) => i,
                None => self.insert(dir, d, Node::Dir(BTreeMap::new()), false, 0)?,
            };
        }
        self.insert(dir, name, Node::File(data), false, 0)?;
        Ok(())
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Option<Ino>, Errno> {
        match &self.entry(dir)?.node {
            Node::Dir(m) => Ok(m.get(name).copied()),
            Node::File(_) => Err(errno::NOTDIR),
        }
    }

    fn insert(
        &mut self,
        dir: Ino,
        name: &str,
        node: Node,
        writable: bool,
        now: u64,
    ) -> Result<Ino, Errno> {
        check_name(name)?;
        let i = self.nodes.len();
        match &mut self.entry_mut(dir)?.node {
            Node::Dir(m) if m.contains_key(name) => return Err(errno::EXIST),
            Node::Dir(m) => {
                m.insert(name.to_owned(), i);
            }
            Node::File(_) => return Err(errno::NOTDIR),
        }
        self.nodes.push(Some(Entry {
            node,
            writable,
            parent: dir,
            mtime: now,
        }));
        Ok(i)
    }

    /// Resolves `path` from directory `dir`, whose preopen root is `root`:
    /// returns the parent directory and the last name (`None` for the
    /// directory itself, as for `.`).
    pub fn resolve_parent<'p>(
        &self,
        root: Ino,
        dir: Ino,
        path: &'p str,
    ) -> Result<(Ino, Option<&'p str>), Errno> {
        if path.len() > MAX_PATH {
            return Err(errno::NAMETOOLONG);
        }
        if path.starts_with('/') {
            // No ambient root: only paths below a held directory exist.
            return Err(errno::NOTCAPABLE);
        }
        if path.contains('\0') {
            return Err(errno::INVAL);
        }
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        // The chain of directories from the preopen root to `dir`.
        let mut chain = self.chain(root, dir)?;
        let Some((last, walk)) = parts.split_last() else {
            return Ok((*chain.last().unwrap_or(&root), None));
        };
        for p in walk {
            if *p == ".." {
                if chain.len() == 1 {
                    return Err(errno::NOTCAPABLE);
                }
                chain.pop();
                continue;
            }
            let cur = *chain.last().unwrap_or(&root);
            match self.lookup(cur, p)? {
                Some(i) if matches!(self.entry(i)?.node, Node::Dir(_)) => chain.push(i),
                Some(_) => return Err(errno::NOTDIR),
                None => return Err(errno::NOENT),
            }
        }
        let cur = *chain.last().unwrap_or(&root);
        if *last == ".." {
            if chain.len() == 1 {
                return Err(errno::NOTCAPABLE);
            }
            return Ok((chain[chain.len() - 2], None));
        }
        check_name(last)?;
        Ok((cur, Some(last)))
    }

    /// The directories from `root` down to `dir`.
    fn chain(&self, root: Ino, dir: Ino) -> Result<Vec<Ino>, Errno> {
        let mut chain = vec![dir];
        let mut cur = dir;
        while cur != root {
            let p = self.entry(cur)?.parent;
            if p == cur {
                // Reached another root: `dir` is not below `root`.
                return Err(errno::NOTCAPABLE);
            }
            chain.push(p);
            cur = p;
        }
        chain.reverse();
        Ok(chain)
    }

    /// Resolves `path` to an existing node.
    pub fn resolve(&self, root: Ino, dir: Ino, path: &str) -> Result<Ino, Errno> {
        match self.resolve_parent(root, dir, path)? {
            (d, None) => Ok(d),
            (d, Some(name)) => self.lookup(d, name)?.ok_or(errno::NOENT),
        }
    }

    /// Makes an empty file or directory `name` in `dir`.
    pub fn create(&mut self, dir: Ino, name: &str, is_dir: bool, now: u64) -> Result<Ino, Errno> {
        if !self.writable(dir) {
            return Err(errno::ROFS);
        }
        let node = if is_dir {
            Node::Dir(BTreeMap::new())
        } else {
            Node::File(Vec::new())
        };
        let i = self.insert(dir, name, node, true, now)?;
        self.entry_mut(dir)?.mtime = now;
        Ok(i)
    }

    /// Removes `name` from `dir`: a file, or an empty directory if `dir_only`.
    pub fn remove(&mut self, dir: Ino, name: &str, want_dir: bool, now: u64) -> Result<(), Errno> {
        if !self.writable(dir) {
            return Err(errno::ROFS);
        }
        let ino = self.lookup(dir, name)?.ok_or(errno::NOENT)?;
        match (&self.entry(ino)?.node, want_dir) {
            (Node::Dir(m), true) if !m.is_empty() => return Err(errno::NOTEMPTY),
            (Node::Dir(_), false) => return Err(errno::ISDIR),
            (Node::File(_), true) => return Err(errno::NOTDIR),
            _ => {}
        }
        if let Node::File(d) = &self.entry(ino)?.node {
            self.used -= d.len() as u64;
        }
        if let Node::Dir(m) = &mut self.entry_mut(dir)?.node {
            m.remove(name);
        }
        self.entry_mut(dir)?.mtime = now;
        self.nodes[ino] = None;
        Ok(())
    }

    /// Moves `from_name` in `from` to `to_name` in `to` (replacing a file
    /// there).
    pub fn rename(
        &mut self,
        from: Ino,
        from_name: &str,
        to: Ino,
        to_name: &str,
        now: u64,
    ) -> Result<(), Errno> {
        if !self.writable(from) || !self.writable(to) {
            return Err(errno::ROFS);
        }
        check_name(to_name)?;
        let ino = self.lookup(from, from_name)?.ok_or(errno::NOENT)?;
        // A directory cannot move below itself.
        if matches!(self.entry(ino)?.node, Node::Dir(_)) {
            let mut cur = to;
            loop {
                if cur == ino {
                    return Err(errno::INVAL);
                }
                let p = self.entry(cur)?.parent;
                if p == cur {
                    break;
                }
                cur = p;
            }
        }
        if let Some(old) = self.lookup(to, to_name)? {
            if old == ino {
                return Ok(());
            }
            match (&self.entry(old)?.node, &self.entry(ino)?.node) {
                (Node::File(_), Node::File(_)) => self.remove(to, to_name, false, now)?,
                (Node::Dir(m), Node::Dir(_)) if m.is_empty() => {
                    self.remove(to, to_name, true, now)?
                }
                (Node::Dir(_), Node::Dir(_)) => return Err(errno::NOTEMPTY),
                (Node::Dir(_), _) => return Err(errno::ISDIR),
                (_, Node::Dir(_)) => return Err(errno::NOTDIR),
            }
        }
        if let Node::Dir(m) = &mut self.entry_mut(from)?.node {
            m.remove(from_name);
        }
        if let Node::Dir(m) = &mut self.entry_mut(to)?.node {
            m.insert(to_name.to_owned(), ino);
        }
        let e = self.entry_mut(ino)?;
        e.parent = to;
        e.mtime = now;
        Ok(())
    }

    /// Reads up to `buf.len()` bytes at `at`.
    pub fn read(&self, ino: Ino, at: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match &self.entry(ino)?.node {
            Node::File(d) => {
                let start = (at.min(d.len() as u64)) as usize;
                let n = buf.len().min(d.len() - start);
                buf[..n].copy_from_slice(&d[start..start + n]);
                Ok(n)
            }
            Node::Dir(_) => Err(errno::ISDIR),
        }
    }

    /// Writes `data` at `at`, growing the file; the scratch capacity is
    /// enforced.
    pub fn write(&mut self, ino: Ino, at: u64, data: &[u8], now: u64) -> Result<usize, Errno> {
        if !self.writable(ino) {
            return Err(errno::ROFS);
        }
        let len = match &self.entry(ino)?.node {
            Node::File(d) => d.len() as u64,
            Node::Dir(_) => return Err(errno::ISDIR),
        };
        let end = at.checked_add(data.len() as u64).ok_or(errno::FBIG)?;
        let growth = end.saturating_sub(len);
        if growth > self.capacity.saturating_sub(self.used) {
            return Err(errno::NOSPC);
        }
        self.used += growth;
        let e = self.entry_mut(ino)?;
        e.mtime = now;
        if let Node::File(d) = &mut e.node {
            if d.len() < end as usize {
                d.resize(end as usize, 0);
            }
            d[at as usize..end as usize].copy_from_slice(data);
        }
        Ok(data.len())
    }

    /// Sets a file's size.
    pub fn truncate(&mut self, ino: Ino, size: u64, now: u64) -> Result<(), Errno> {
        if !self.writable(ino) {
            return Err(errno::ROFS);
        }
        let len = match &self.entry(ino)?.node {
            Node::File(d) => d.len() as u64,
            Node::Dir(_) => return Err(errno::ISDIR),
        };
        if size > len && size - len > self.capacity.saturating_sub(self.used) {
            return Err(errno::NOSPC);
        }
        self.used = self.used + size.saturating_sub(len) - len.saturating_sub(size);
        let e = self.entry_mut(ino)?;
        e.mtime = now;
        if let Node::File(d) = &mut e.node {
            d.resize(size as usize, 0);
        }
        Ok(())
    }

    /// A file's size, or the entry count of a directory.
    pub fn size(&self, ino: Ino) -> u64 {
        match self.entry(ino).map(|e| &e.node) {
            Ok(Node::File(d)) => d.len() as u64,
            Ok(Node::Dir(m)) => m.len() as u64,
            Err(_) => 0,
        }
    }

    /// A directory's entries: `.`, `..` (only within the preopen) and the
    /// names, with their nodes.
    pub fn list(&self, ino: Ino) -> Result<Vec<(String, Ino)>, Errno> {
        match &self.entry(ino)?.node {
            Node::Dir(m) => {
                let mut v = vec![(".".to_owned(), ino)];
                v.push(("..".to_owned(), self.entry(ino)?.parent));
                v.extend(m.iter().map(|(k, &i)| (k.clone(), i)));
                Ok(v)
            }
            Node::File(_) => Err(errno::NOTDIR),
        }
    }
}

/// A file or directory in a tree copied in or out of a run (see
/// [`Vfs::import`], [`Vfs::export`]): a path relative to the tree's root,
/// `/`-separated, and the file's bytes (`None` for a directory).
pub type Item = (String, Option<Vec<u8>>);

impl Vfs {
    /// Adds writable files and directories under `root` (a writable
    /// preopen), parents first; file bytes count against the capacity.
    pub fn import(&mut self, root: Ino, items: &[Item], now: u64) -> Result<(), Errno> {
        for (path, data) in items {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let Some((name, dirs)) = parts.split_last() else {
                return Err(errno::INVAL);
            };
            let mut dir = root;
            for d in dirs {
                dir = match self.lookup(dir, d)? {
                    Some(i) => i,
                    None => self.create(dir, d, true, now)?,
                };
            }
            match data {
                None => {
                    if self.lookup(dir, name)?.is_none() {
                        self.create(dir, name, true, now)?;
                    }
                }
                Some(bytes) => {
                    let ino = self.create(dir, name, false, now)?;
                    self.write(ino, 0, bytes, now)?;
                }
            }
        }
        Ok(())
    }

    /// Everything under `root`, directories before what they hold, in
    /// name order.
    pub fn export(&self, root: Ino) -> Vec<Item> {
        let mut out = Vec::new();
        let mut stack = vec![(String::new(), root)];
        while let Some((prefix, dir)) = stack.pop() {
            let Ok(Node::Dir(m)) = self.node(dir) else {
                continue;
            };
            // Reversed onto the stack so directories come out in order.
            let mut subdirs = Vec::new();
            for (name, &ino) in m {
                let path = format!("{prefix}{name}");
                match self.node(ino) {
                    Ok(Node::Dir(_)) => {
                        out.push((path.clone(), None));
                        subdirs.push((format!("{path}/"), ino));
                    }
                    Ok(Node::File(data)) => out.push((path, Some(data.clone()))),
                    Err(_) => {}
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        out
    }
}

fn check_name(name: &str) -> Result<(), Errno> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(errno::INVAL);
    }
    if name.len() > MAX_NAME {
        return Err(errno::NAMETOOLONG);
    }
    if name.contains('/') || name.contains('\0') {
        return Err(errno::INVAL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (Vfs, Ino, Ino) {
        let mut v = Vfs::new(100);
        let scratch = v.root(true);
        let data = v.root(false);
        v.mount_file(data, "lib/a.txt", b"mounted".to_vec())
            .unwrap();
        (v, scratch, data)
    }

    #[test]
    fn paths_cannot_leave_their_preopen() {
        let (mut v, scratch, data) = tree();
        let sub = v.create(scratch, "sub", true, 1).unwrap();
        assert_eq!(
            v.resolve(scratch, scratch, "/etc/passwd"),
            Err(errno::NOTCAPABLE)
        );
        assert_eq!(v.resolve(scratch, scratch, ".."), Err(errno::NOTCAPABLE));
        assert_eq!(v.resolve(scratch, scratch, "../x"), Err(errno::NOTCAPABLE));
        assert_eq!(v.resolve(scratch, sub, "../../x"), Err(errno::NOTCAPABLE));
        assert_eq!(v.resolve(scratch, sub, ".."), Ok(scratch));
        assert_eq!(v.resolve(scratch, sub, "../sub/./"), Ok(sub));
        // Another preopen's nodes are not reachable by walking.
        assert_eq!(v.resolve(scratch, scratch, "lib/a.txt"), Err(errno::NOENT));
        assert!(v.resolve(data, data, "lib/a.txt").is_ok());
        // A directory of one preopen used with another's root.
        assert_eq!(v.resolve(data, sub, "x"), Err(errno::NOTCAPABLE));
        assert_eq!(v.resolve(scratch, scratch, "a\0b"), Err(errno::INVAL));
    }

    #[test]
    fn mounts_are_read_only_and_scratch_has_a_capacity() {
        let (mut v, scratch, data) = tree();
        let lib = v.resolve(data, data, "lib").unwrap();
        let a = v.resolve(data, data, "lib/a.txt").unwrap();
        assert_eq!(v.create(lib, "new", false, 1), Err(errno::ROFS));
        assert_eq!(v.write(a, 0, b"x", 1), Err(errno::ROFS));
        assert_eq!(v.remove(lib, "a.txt", false, 1), Err(errno::ROFS));
        let f = v.create(scratch, "f", false, 1).unwrap();
        assert_eq!(v.write(f, 0, &[1; 60], 1), Ok(60));
        assert_eq!(v.write(f, 90, &[1; 20], 1), Err(errno::NOSPC));
        assert_eq!(v.write(f, 60, &[1; 40], 1), Ok(40));
        // Huge offsets and sizes are refused, never wrapped.
        assert_eq!(v.write(f, u64::MAX - 2, &[1; 4], 1), Err(errno::FBIG));
        assert_eq!(v.write(f, u64::MAX - 8, &[1; 4], 1), Err(errno::NOSPC));
        assert_eq!(v.truncate(f, u64::MAX - 1, 1), Err(errno::NOSPC));
        assert_eq!(v.usage(), (100, 100));
        v.remove(scratch, "f", false, 2).unwrap();
        assert_eq!(v.usage(), (0, 100));
        let mut buf = [0u8; 16];
        assert_eq!(v.read(a, 2, &mut buf), Ok(5));
        assert_eq!(&buf[..5], b"unted");
    }

    #[test]
    fn rename_and_remove() {
        let (mut v, s, _) = tree();
        let d = v.create(s, "d", true, 1).unwrap();
        let f = v.create(d, "f", false, 1).unwrap();
        assert_eq!(v.remove(s, "d", true, 1), Err(errno::NOTEMPTY));
        assert_eq!(v.rename(s, "d", d, "inside", 1), Err(errno::INVAL));
        v.rename(d, "f", s, "g", 1).unwrap();
        assert_eq!(v.resolve(s, s, "g"), Ok(f));
        v.remove(s, "d", true, 1).unwrap();
        assert_eq!(v.resolve(s, s, "d"), Err(errno::NOENT));
        assert_eq!(v.create(s, "..", false, 1), Err(errno::INVAL));
    }

    #[test]
    fn import_and_export_round_trip() {
        let mut v = Vfs::new(10);
        let d = v.root(true);
        let items: Vec<Item> = vec![
            ("a".into(), Some(b"12345".to_vec())),
            ("e".into(), None),
            ("sub/b".into(), Some(b"xy".to_vec())),
        ];
        v.import(d, &items, 1).unwrap();
        // `sub` was made on the way; directories come before their files.
        let mut want = items.clone();
        want.insert(2, ("sub".into(), None));
        assert_eq!(v.export(d), want);
        assert_eq!(v.usage().0, 7);
        // Over the capacity, and paths that leave the tree.
        let mut w = Vfs::new(4);
        let r = w.root(true);
        assert_eq!(w.import(r, &items, 1), Err(errno::NOSPC));
        let mut x = Vfs::new(10);
        let r = x.root(true);
        assert_eq!(x.import(r, &[("../a".into(), None)], 1), Err(errno::INVAL));
        assert_eq!(x.import(r, &[("".into(), None)], 1), Err(errno::INVAL));
    }
}
