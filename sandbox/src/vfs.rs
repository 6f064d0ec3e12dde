//! The in-memory filesystem a sandboxed run sees.
//!
//! Each run gets a tree of nodes: a private, empty scratch directory (the
//! only writable place) and the read-only mounts its grant names. Paths are
//! resolved component by component from a directory the run holds a
//! descriptor for; an absolute path, or `..` above that directory's
//! preopen root, is refused with `NOTCAPABLE`, and there are no symbolic
//! links to follow. Nothing outside the tree exists for the run.
//!
//! # What a tree holds
//!
//! Every byte of host memory the tree keeps counts against its capacity,
//! and is counted before it is allocated: each file's allocation (the
//! capacity of its `Vec`, not its length) and, for every file and
//! directory, [`NODE_BYTES`] plus its name. A change that would not fit
//! is refused with `NOSPC` and allocates nothing, a write far past the end
//! of a file included (its zeros would be allocated). Cutting a file
//! shrinks its allocation; removing a file, or renaming another over it,
//! gives back all of its bytes at once. A file whose allocation must move
//! gets a quarter more than it needs (within the room left), so a file
//! written in small pieces is copied a bounded number of times; before
//! anything is refused, that spare room is given back by every file.
//!
//! Node numbers are never reused: a descriptor left on a removed file
//! finds nothing (`NOENT`) rather than a newer file, and the removed
//! file's bytes are not kept for it.

use std::collections::BTreeMap;

use crate::errno::{self, Errno};

/// A node number, never reused within a tree.
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

/// The host bytes counted for every file and directory besides its name
/// and its contents. Nodes and directory entries live in std's B-trees,
/// whose nodes hold 5 to 11 entries: at worst a fifth of a node of the
/// node table (11 entries of 56 bytes) and a whole node of its directory
/// (11 names and numbers, 368 bytes) when it is the only entry there.
/// `tests/memory.rs` checks the total against a counting allocator (a
/// chain of directories, the worst shape, held 495 bytes a node).
pub const NODE_BYTES: u64 = 576;

/// A tree of files for one run.
#[derive(Debug, Clone)]
pub struct Vfs {
    nodes: BTreeMap<Ino, Entry>,
    /// The number the next node gets.
    next: Ino,
    /// The host bytes counted (see the module's header).
    held: u64,
    /// The most bytes the tree may hold.
    capacity: u64,
    /// Whether some file may have an allocation larger than its length.
    spare: bool,
    /// Whether a change was refused for want of room.
    refused: bool,
}

impl Vfs {
    /// An empty tree that may hold `capacity` bytes of host memory.
    pub fn new(capacity: u64) -> Self {
        Self {
            nodes: BTreeMap::new(),
            next: 0,
            held: 0,
            capacity,
            spare: false,
            refused: false,
        }
    }

    /// A new directory with no parent (a preopen root). Its bytes are
    /// counted even past the capacity: roots are the sandbox's own, a
    /// few per run.
    pub fn root(&mut self, writable: bool) -> Ino {
        let i = self.next;
        self.next += 1;
        self.held = self.held.saturating_add(NODE_BYTES);
        self.nodes.insert(
            i,
            Entry {
                node: Node::Dir(BTreeMap::new()),
                writable,
                parent: i,
                mtime: 0,
            },
        );
        i
    }

    fn entry(&self, ino: Ino) -> Result<&Entry, Errno> {
        self.nodes.get(&ino).ok_or(errno::NOENT)
    }

    fn entry_mut(&mut self, ino: Ino) -> Result<&mut Entry, Errno> {
        self.nodes.get_mut(&ino).ok_or(errno::NOENT)
    }

    /// The room left.
    fn room(&self) -> u64 {
        self.capacity.saturating_sub(self.held)
    }

    /// Counts `bytes` more, giving back the files' spare room first if
    /// they don't fit; refuses (`NOSPC`) if they still don't.
    fn charge(&mut self, bytes: u64) -> Result<(), Errno> {
        if bytes > self.room() {
            self.give_back_spare();
        }
        if bytes > self.room() {
            self.refused = true;
            return Err(errno::NOSPC);
        }
        self.held += bytes;
        Ok(())
    }

    /// Counts `bytes` fewer (they have been freed).
    fn release(&mut self, bytes: u64) {
        debug_assert!(bytes <= self.held, "releasing {bytes} of {}", self.held);
        self.held = self.held.saturating_sub(bytes);
    }

    /// Shrinks every file's allocation to its length.
    fn give_back_spare(&mut self) {
        if !std::mem::take(&mut self.spare) {
            return;
        }
        let mut freed = 0u64;
        for e in self.nodes.values_mut() {
            if let Node::File(d) = &mut e.node {
                let before = d.capacity();
                d.shrink_to_fit();
                freed += (before - d.capacity()) as u64;
            }
        }
        self.release(freed);
    }

    /// A file's allocation in bytes (`ISDIR` for a directory).
    fn allocation(&self, ino: Ino) -> Result<u64, Errno> {
        match &self.entry(ino)?.node {
            Node::File(d) => Ok(d.capacity() as u64),
            Node::Dir(_) => Err(errno::ISDIR),
        }
    }

    /// Makes file `ino`'s allocation at least `want` bytes, counted, or
    /// refuses before allocating. With `headroom`, an allocation that must
    /// move gets a quarter more (within the room).
    fn make_room(&mut self, ino: Ino, want: u64, headroom: bool) -> Result<(), Errno> {
        if want <= self.allocation(ino)? {
            return Ok(());
        }
        if want - self.allocation(ino)? > self.room() {
            self.give_back_spare();
        }
        let cap = self.allocation(ino)?;
        let room = self.room();
        if want - cap > room {
            self.refused = true;
            return Err(errno::NOSPC);
        }
        let target = if headroom {
            want.max(cap.saturating_add(cap / 4))
                .min(cap.saturating_add(room))
        } else {
            want
        };
        let target = usize::try_from(target).map_err(|_| errno::FBIG)?;
        let Node::File(d) = &mut self.entry_mut(ino)?.node else {
            return Err(errno::ISDIR);
        };
        // The host's own allocator may still refuse.
        if d.try_reserve_exact(target - d.len()).is_err() {
            self.refused = true;
            return Err(errno::NOSPC);
        }
        let now = d.capacity() as u64;
        self.held = self.held.saturating_add(now - cap);
        self.spare |= now > want;
        Ok(())
    }

    /// The node.
    pub fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        Ok(&self.entry(ino)?.node)
    }

    /// Whether the node may be changed.
    pub fn writable(&self, ino: Ino) -> bool {
        self.entry(ino).is_ok_and(|e| e.writable)
    }

    /// `NOENT` if the node is gone, `ROFS` if it may not be changed.
    fn changeable(&self, ino: Ino) -> Result<(), Errno> {
        match self.entry(ino)?.writable {
            true => Ok(()),
            false => Err(errno::ROFS),
        }
    }

    /// Modification time (ns since the epoch; 0 for mounted files).
    pub fn mtime(&self, ino: Ino) -> u64 {
        self.entry(ino).map_or(0, |e| e.mtime)
    }

    /// The host bytes the tree holds (as counted: see the module's
    /// header), and its capacity.
    pub fn usage(&self) -> (u64, u64) {
        (self.held, self.capacity)
    }

    /// Whether a change was refused for want of room (`NOSPC`).
    pub fn refused(&self) -> bool {
        self.refused
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
        match self.lookup(dir, name)? {
            Some(_) => return Err(errno::EXIST),
            None => self.charge(NODE_BYTES + name.len() as u64 + allocation(&node))?,
        }
        let i = self.next;
        self.next += 1;
        if let Node::Dir(m) = &mut self.entry_mut(dir)?.node {
            m.insert(name.to_owned(), i);
        }
        self.nodes.insert(
            i,
            Entry {
                node,
                writable,
                parent: dir,
                mtime: now,
            },
        );
        Ok(i)
    }

    /// Takes `name` out of directory `dir` (freeing the directory's table
    /// when it empties).
    fn unlink(&mut self, dir: Ino, name: &str) -> Result<(), Errno> {
        if let Node::Dir(m) = &mut self.entry_mut(dir)?.node {
            m.remove(name);
            if m.is_empty() {
                *m = BTreeMap::new();
            }
        }
        Ok(())
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
        self.unlink(dir, name)?;
        self.entry_mut(dir)?.mtime = now;
        if let Some(e) = self.nodes.remove(&ino) {
            self.release(NODE_BYTES + name.len() as u64 + allocation(&e.node));
        }
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
        // A longer name is counted before anything changes; when a node
        // is replaced, what its removal gives back (its name is `to_name`)
        // covers it.
        let longer = (to_name.len() as u64).saturating_sub(from_name.len() as u64);
        match self.lookup(to, to_name)? {
            Some(old) if old == ino => return Ok(()),
            Some(old) => match (&self.entry(old)?.node, &self.entry(ino)?.node) {
                (Node::File(_), Node::File(_)) => self.remove(to, to_name, false, now)?,
                (Node::Dir(m), Node::Dir(_)) if m.is_empty() => {
                    self.remove(to, to_name, true, now)?
                }
                (Node::Dir(_), Node::Dir(_)) => return Err(errno::NOTEMPTY),
                (Node::Dir(_), _) => return Err(errno::ISDIR),
                (_, Node::Dir(_)) => return Err(errno::NOTDIR),
            },
            None => {}
        }
        self.charge(longer)?;
        self.release((from_name.len() as u64).saturating_sub(to_name.len() as u64));
        self.unlink(from, from_name)?;
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

    /// Writes `data` at `at`, growing the file (with zeros up to `at`);
    /// refused (`NOSPC`) before anything is allocated if it doesn't fit.
    pub fn write(&mut self, ino: Ino, at: u64, data: &[u8], now: u64) -> Result<usize, Errno> {
        self.changeable(ino)?;
        let end = at.checked_add(data.len() as u64).ok_or(errno::FBIG)?;
        self.make_room(ino, end, true)?;
        let e = self.entry_mut(ino)?;
        e.mtime = now;
        if let Node::File(d) = &mut e.node {
            // Both fit in the allocation just made, so in a usize.
            let (at, end) = (at as usize, end as usize);
            if d.len() < end {
                d.resize(end, 0);
            }
            d[at..end].copy_from_slice(data);
        }
        Ok(data.len())
    }

    /// Sets a file's size: zeros are added (refused before they are
    /// allocated if they don't fit), or the allocation shrinks.
    pub fn truncate(&mut self, ino: Ino, size: u64, now: u64) -> Result<(), Errno> {
        self.changeable(ino)?;
        self.make_room(ino, size, false)?;
        let e = self.entry_mut(ino)?;
        e.mtime = now;
        let mut freed = 0;
        if let Node::File(d) = &mut e.node {
            // At most the allocation, so a usize.
            let size = size as usize;
            if size >= d.len() {
                d.resize(size, 0);
            } else {
                let before = d.capacity();
                d.truncate(size);
                d.shrink_to_fit();
                freed = (before - d.capacity()) as u64;
            }
        }
        self.release(freed);
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
        Ok(self
            .entries(ino)?
            .map(|(name, i)| (name.to_owned(), i))
            .collect())
    }

    /// [`Vfs::list`] without copying the names.
    pub fn entries(&self, ino: Ino) -> Result<impl Iterator<Item = (&str, Ino)>, Errno> {
        let e = self.entry(ino)?;
        match &e.node {
            Node::Dir(m) => Ok([(".", ino), ("..", e.parent)]
                .into_iter()
                .chain(m.iter().map(|(k, &i)| (k.as_str(), i)))),
            Node::File(_) => Err(errno::NOTDIR),
        }
    }
}

/// The bytes a node's contents hold (a file's allocation).
fn allocation(node: &Node) -> u64 {
    match node {
        Node::File(d) => d.capacity() as u64,
        Node::Dir(_) => 0,
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
        self.walk(root)
            .into_iter()
            .map(|(path, ino)| match self.node(ino) {
                Ok(Node::File(data)) => (path, Some(data.clone())),
                _ => (path, None),
            })
            .collect()
    }

    /// [`Vfs::export`], moving the files' bytes out instead of copying
    /// them (the files are left empty).
    pub fn take(&mut self, root: Ino) -> Vec<Item> {
        let mut out = Vec::new();
        for (path, ino) in self.walk(root) {
            let data = match self.nodes.get_mut(&ino).map(|e| &mut e.node) {
                Some(Node::File(d)) => Some(std::mem::take(d)),
                _ => None,
            };
            self.release(data.as_ref().map_or(0, |d| d.capacity() as u64));
            out.push((path, data));
        }
        out
    }

    /// The paths under `root` and their nodes, directories before what
    /// they hold, in name order.
    fn walk(&self, root: Ino) -> Vec<(String, Ino)> {
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
                if let Ok(Node::Dir(_)) = self.node(ino) {
                    subdirs.push((format!("{path}/"), ino));
                }
                out.push((path, ino));
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

    /// What [`tree`] holds: two roots, `lib` and `a.txt` with 7 bytes.
    const TREE: u64 = 4 * NODE_BYTES + 3 + 5 + 7;

    /// A tree with room for `room` bytes beyond [`TREE`].
    fn tree_with(room: u64) -> (Vfs, Ino, Ino) {
        let mut v = Vfs::new(TREE + room);
        let scratch = v.root(true);
        let data = v.root(false);
        v.mount_file(data, "lib/a.txt", b"mounted".to_vec())
            .unwrap();
        assert_eq!(v.usage().0, TREE);
        (v, scratch, data)
    }

    fn tree() -> (Vfs, Ino, Ino) {
        tree_with(1 << 20)
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
        // Room for `f` and 100 bytes in it.
        let (mut v, scratch, data) = tree_with(NODE_BYTES + 1 + 100);
        let full = TREE + NODE_BYTES + 1 + 100;
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
        assert_eq!(v.usage(), (full, full));
        assert!(v.refused());
        v.remove(scratch, "f", false, 2).unwrap();
        assert_eq!(v.usage(), (TREE, full));
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
        // A root, `a`, `e`, `sub` and `sub/b`: their names and 7 bytes.
        let needs = 5 * NODE_BYTES + 1 + 1 + 3 + 1 + 7;
        let mut v = Vfs::new(needs);
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
        assert_eq!(v.usage(), (needs, needs));
        // Taken out, the bytes are given back.
        assert_eq!(v.take(d), want);
        assert_eq!(v.usage().0, needs - 7);
        // Over the capacity, and paths that leave the tree.
        let mut w = Vfs::new(needs - 1);
        let r = w.root(true);
        assert_eq!(w.import(r, &items, 1), Err(errno::NOSPC));
        let mut x = Vfs::new(needs);
        let r = x.root(true);
        assert_eq!(x.import(r, &[("../a".into(), None)], 1), Err(errno::INVAL));
        assert_eq!(x.import(r, &[("".into(), None)], 1), Err(errno::INVAL));
    }

    #[test]
    fn cutting_removing_and_replacing_give_bytes_back() {
        let (mut v, s, _) = tree();
        let f = v.create(s, "f", false, 1).unwrap();
        let g = v.create(s, "g", false, 1).unwrap();
        let base = v.usage().0;
        v.write(f, 0, &[1; 1000], 1).unwrap();
        assert_eq!(v.usage().0, base + 1000);
        v.truncate(f, 10, 1).unwrap();
        assert_eq!(v.usage().0, base + 10);
        v.truncate(f, 0, 1).unwrap();
        assert_eq!(v.usage().0, base);
        // Renaming `g` over `f` gives back `f` and its bytes.
        v.write(f, 0, &[1; 500], 1).unwrap();
        v.rename(s, "g", s, "f", 1).unwrap();
        assert_eq!(v.usage().0, base - NODE_BYTES - 1);
        assert_eq!(v.resolve(s, s, "f"), Ok(g));
        // The replaced file's number is not given to a new one: a
        // descriptor left on it finds nothing.
        let h = v.create(s, "h", false, 1).unwrap();
        assert!(h != f && h != g);
        assert_eq!(v.write(f, 0, b"x", 1), Err(errno::NOENT));
        v.remove(s, "h", false, 1).unwrap();
        v.remove(s, "f", false, 1).unwrap();
        assert_eq!(v.usage().0, TREE);
    }

    #[test]
    fn a_full_tree_refuses_before_allocating() {
        let (mut v, s, _) = tree_with(NODE_BYTES + 1 + 100);
        let f = v.create(s, "f", false, 1).unwrap();
        v.write(f, 0, &[1; 90], 1).unwrap();
        // A longer name no longer fits, nor does a new file; nothing
        // changes.
        let before = v.usage().0;
        assert_eq!(v.rename(s, "f", s, &"n".repeat(20), 1), Err(errno::NOSPC));
        assert_eq!(v.resolve(s, s, "f"), Ok(f));
        assert_eq!(v.create(s, "g", false, 1), Err(errno::NOSPC));
        // A write or a size far past the end.
        assert_eq!(v.write(f, 1 << 40, b"x", 1), Err(errno::NOSPC));
        assert_eq!(v.truncate(f, 1 << 40, 1), Err(errno::NOSPC));
        assert_eq!(v.usage().0, before);
        assert_eq!(v.size(f), 90);
        // Cutting the file makes room for another.
        v.remove(s, "f", false, 1).unwrap();
        let g = v.create(s, "g", false, 1).unwrap();
        v.write(g, 0, &[2; 100], 1).unwrap();
    }

    #[test]
    fn spare_room_is_given_back_before_refusing() {
        let (mut v, s, _) = tree_with(2 * NODE_BYTES + 2 + 1000);
        let f = v.create(s, "f", false, 1).unwrap();
        let g = v.create(s, "g", false, 1).unwrap();
        // Written in pieces, `f` grows by a quarter when it moves.
        for i in 0..40 {
            v.write(f, i * 10, &[1; 10], 1).unwrap();
        }
        assert!(v.usage().0 > TREE + 2 * NODE_BYTES + 2 + 400);
        // `g` can still have every byte `f` doesn't use.
        v.write(g, 0, &[2; 600], 1).unwrap();
        assert_eq!(v.usage().0, v.usage().1);
        assert_eq!(v.write(g, 600, b"x", 1), Err(errno::NOSPC));
        let mut buf = [0; 400];
        assert_eq!(v.read(f, 0, &mut buf), Ok(400));
        assert!(buf.iter().all(|&b| b == 1));
    }

    #[test]
    fn a_directory_lists_its_entries() {
        let (mut v, s, _) = tree();
        let d = v.create(s, "d", true, 1).unwrap();
        let f = v.create(d, "f", false, 1).unwrap();
        let names: Vec<(&str, Ino)> = v.entries(d).unwrap().collect();
        assert_eq!(names, [(".", d), ("..", s), ("f", f)]);
        assert_eq!(v.list(d).unwrap()[2], ("f".to_owned(), f));
        assert!(v.entries(f).is_err());
    }
}
