//! The in-memory filesystem: inodes, directories, regular files, symbolic
//! links and hard links with the POSIX semantics of Linux tmpfs.
//!
//! [`RamFs`] is plain data behind `&mut self`; the kernel wraps it in one
//! lock (a whole-filesystem lock keeps rename and link atomic without lock
//! ordering between directories). Everything a syscall can ask for is here
//! and host-tested: path resolution relative to a directory inode with `.`,
//! `..`, repeated and trailing slashes, symlinks with loop detection
//! (ELOOP after [`MAX_SYMLINKS`]), name and path limits (ENAMETOOLONG),
//! create/exclusive/truncate, sparse files, unlink while open (the inode
//! lives until the last [`RamFs::close`]), rename over existing targets
//! with the directory rules, and capacity accounting (ENOSPC).
//!
//! Errors follow Linux tmpfs, including which check wins when several
//! apply: the namespace operations resolve the parent directory first and
//! then judge the last component (`.`, `..`, `/`, a trailing slash) the
//! way `filename_parentat` and its callers do. A removed directory that is
//! still open has no entries, refuses new ones and listing (ENOENT), and
//! keeps its old parent reachable through `..` until it is freed.
//!
//! Files may borrow `'static` bytes (the initrd) instead of owning a copy;
//! the first write turns them into owned data.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use kcore::errno::Errno;

/// An inode number.
pub type Ino = u64;

/// Longest name of a directory entry.
pub const NAME_MAX: usize = 255;
/// Linux `PATH_MAX`: the size of a path buffer, NUL included, so the
/// longest path (and symlink target) is one byte shorter.
pub const PATH_MAX: usize = 4096;
/// Largest file size (EFBIG beyond), as for tmpfs on x86_64.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Symbolic links followed in one resolution before ELOOP.
pub const MAX_SYMLINKS: usize = 40;

/// File type bits of `st_mode`.
pub mod mode {
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
}

/// Bytes per page of file data.
pub const PAGE_SIZE: usize = 4096;

/// One page of file data, page-aligned so the kernel can map it into a
/// process (MAP_SHARED) without copying.
#[derive(Clone)]
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl core::fmt::Debug for Page {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Page")
    }
}

/// A regular file's data: pages by index (holes are absent and read as
/// zeros) and the size.
#[derive(Debug, Clone, Default)]
struct Pages {
    map: BTreeMap<u64, Box<Page>>,
    size: u64,
}

impl Pages {
    fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.size {
            return 0;
        }
        let k = (buf.len() as u64).min(self.size - offset) as usize;
        let mut done = 0;
        while done < k {
            let at = offset + done as u64;
            let (idx, within) = (at / PAGE_SIZE as u64, (at % PAGE_SIZE as u64) as usize);
            let n = (PAGE_SIZE - within).min(k - done);
            match self.map.get(&idx) {
                Some(p) => buf[done..done + n].copy_from_slice(&p.0[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        k
    }

    /// Pages that writing `[offset, end)` would allocate.
    fn new_pages(&self, offset: u64, end: u64) -> u64 {
        if end <= offset {
            return 0;
        }
        let (first, last) = (offset / PAGE_SIZE as u64, (end - 1) / PAGE_SIZE as u64);
        (first..=last).filter(|i| !self.map.contains_key(i)).count() as u64
    }

    /// Writes; returns the number of pages allocated. An empty write
    /// changes nothing (not even the size).
    fn write(&mut self, offset: u64, data: &[u8]) -> u64 {
        if data.is_empty() {
            return 0;
        }
        let mut added = 0;
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (idx, within) = (at / PAGE_SIZE as u64, (at % PAGE_SIZE as u64) as usize);
            let n = (PAGE_SIZE - within).min(data.len() - done);
            let page = self.map.entry(idx).or_insert_with(|| {
                added += 1;
                Box::new(Page([0; PAGE_SIZE]))
            });
            page.0[within..within + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        self.size = self.size.max(offset + data.len() as u64);
        added
    }

    /// Sets the size; with `keep_pages` (the file is mapped) pages past
    /// the end are zeroed but stay allocated. Returns pages freed.
    fn truncate(&mut self, len: u64, keep_pages: bool) -> u64 {
        if len < self.size {
            let within = (len % PAGE_SIZE as u64) as usize;
            if within != 0
                && let Some(p) = self.map.get_mut(&(len / PAGE_SIZE as u64))
            {
                p.0[within..].fill(0);
            }
        }
        self.size = len;
        if keep_pages {
            for (_, p) in self.map.range_mut(len.div_ceil(PAGE_SIZE as u64)..) {
                p.0.fill(0);
            }
            return 0;
        }
        self.trim()
    }

    /// Frees pages wholly past the end; returns how many.
    fn trim(&mut self) -> u64 {
        let tail = self.map.split_off(&self.size.div_ceil(PAGE_SIZE as u64));
        tail.len() as u64
    }

    fn bytes(&self) -> u64 {
        self.map.len() as u64 * PAGE_SIZE as u64
    }
}

/// What an inode holds.
#[derive(Debug, Clone)]
enum Data {
    /// File contents owned by the filesystem, in pages.
    Owned(Pages),
    /// Read-only bytes borrowed from the initrd (never copied unless
    /// written).
    Borrowed(&'static [u8]),
    /// A directory: names to inodes, kept sorted (stable `getdents`).
    Dir(BTreeMap<String, Ino>),
    /// A symbolic link's target.
    Symlink(String),
    /// A device node (major, minor).
    Device(u32, u32),
}

#[derive(Debug, Clone)]
struct Inode {
    data: Data,
    perm: u32,
    nlink: u32,
    open: u32,
    /// Areas of a process that map this file's pages (MAP_SHARED).
    mapped: u32,
    /// Removed but still open subdirectories: their `..` leads here, so
    /// this inode lives (even once removed itself) until they are freed.
    held: u32,
    /// A directory's parent (what `..` names); for other inodes, the
    /// directory they were created in (unused).
    parent: Ino,
    atime: u64,
    mtime: u64,
    ctime: u64,
}

/// `stat` information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Inode number.
    pub ino: Ino,
    /// Type and permission bits.
    pub mode: u32,
    /// Hard links.
    pub nlink: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device numbers for device nodes.
    pub rdev: (u32, u32),
    /// Access, modification and change times (ns since the epoch).
    pub atime: u64,
    /// Modification time.
    pub mtime: u64,
    /// Change time.
    pub ctime: u64,
}

/// A directory entry as `getdents64` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Name.
    pub name: String,
    /// Inode.
    pub ino: Ino,
    /// Type bits (`mode::S_IF*`).
    pub kind: u32,
}

/// The filesystem.
#[derive(Debug, Clone)]
pub struct RamFs {
    inodes: BTreeMap<Ino, Inode>,
    next: Ino,
    capacity: u64,
    used: u64,
}

/// The root directory's inode.
pub const ROOT: Ino = 1;

fn check_name(name: &str) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Refuses paths of [`PATH_MAX`] bytes or more: Linux counts the NUL.
fn check_path(path: &str) -> Result<(), Errno> {
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// The last component of a path, classified as Linux does
/// (`LAST_NORM`, `LAST_DOT`, `LAST_DOTDOT`, `LAST_ROOT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last<'p> {
    /// The path is only slashes.
    Root,
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// A name that can be looked up, created or removed.
    Name(&'p str),
}

/// A path split into its resolved directory and its last component (what
/// Linux's `filename_parentat` hands the namespace operations).
#[derive(Debug, Clone, Copy)]
struct Parent<'p> {
    dir: Ino,
    last: Last<'p>,
    /// The path ended in `/`: only a directory may be named.
    trailing_slash: bool,
}

impl RamFs {
    /// An empty filesystem whose owned file data may use at most
    /// `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        let mut inodes = BTreeMap::new();
        inodes.insert(
            ROOT,
            Inode {
                data: Data::Dir(BTreeMap::new()),
                perm: 0o755,
                nlink: 2,
                open: 0,
                mapped: 0,
                held: 0,
                parent: ROOT,
                atime: 0,
                mtime: 0,
                ctime: 0,
            },
        );
        Self {
            inodes,
            next: ROOT + 1,
            capacity,
            used: 0,
        }
    }

    /// Bytes of owned file data in use.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The capacity limit.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn node(&self, ino: Ino) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&BTreeMap<String, Ino>, Errno> {
        match &self.node(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut BTreeMap<String, Ino>, Errno> {
        match &mut self.node_mut(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(self.inodes.get(&ino).map(|n| &n.data), Some(Data::Dir(_)))
    }

    /// A directory that was removed (rmdir, or replaced by rename) but is
    /// still open: it has no entries and nothing can be created in it.
    fn is_removed_dir(&self, ino: Ino) -> bool {
        self.inodes
            .get(&ino)
            .is_some_and(|n| matches!(n.data, Data::Dir(_)) && n.nlink == 0)
    }

    /// Looks `name` up in directory `dir` (Linux `lookup_one_qstr_excl`):
    /// ENOENT in a removed directory, ENAMETOOLONG for an over-long name,
    /// `None` if there is no such entry.
    fn child(&self, dir: Ino, name: &str) -> Result<Option<Ino>, Errno> {
        if self.is_removed_dir(dir) {
            return Err(Errno::ENOENT);
        }
        check_name(name)?;
        Ok(self.dir(dir)?.get(name).copied())
    }

    /// Resolves `path` relative to directory `at`. With `follow`, a
    /// symlink in the last component is followed too. A trailing slash
    /// requires a directory.
    pub fn lookup(&self, at: Ino, path: &str, follow: bool) -> Result<Ino, Errno> {
        let mut budget = MAX_SYMLINKS;
        self.walk(at, path, follow, &mut budget)
    }

    fn walk(&self, at: Ino, path: &str, follow: bool, budget: &mut usize) -> Result<Ino, Errno> {
        check_path(path)?;
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut cur = if path.starts_with('/') { ROOT } else { at };
        let trailing_slash = path.ends_with('/');
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        if !self.is_dir(cur) {
            return Err(Errno::ENOTDIR);
        }
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            if !self.is_dir(cur) {
                return Err(Errno::ENOTDIR);
            }
            let next = match *comp {
                "." => cur,
                // A removed directory keeps its parent alive (see `held`).
                ".." => self.node(cur)?.parent,
                name => self.child(cur, name)?.ok_or(Errno::ENOENT)?,
            };
            if let Data::Symlink(target) = &self.node(next)?.data
                && (!last || follow || trailing_slash)
            {
                if *budget == 0 {
                    return Err(Errno::ELOOP);
                }
                *budget -= 1;
                cur = self.walk(cur, target, true, budget)?;
                continue;
            }
            cur = next;
        }
        if trailing_slash && !self.is_dir(cur) {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    /// Resolves all but the last component of `path` (following links)
    /// and classifies the last one (Linux `filename_parentat`). The last
    /// component itself is neither looked up nor length-checked here.
    fn parent_at<'p>(
        &self,
        at: Ino,
        path: &'p str,
        budget: &mut usize,
    ) -> Result<Parent<'p>, Errno> {
        check_path(path)?;
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(Parent {
                dir: ROOT,
                last: Last::Root,
                trailing_slash: false,
            });
        }
        let (dir_part, name) = match trimmed.rfind('/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        let dir = if dir_part.is_empty() {
            at
        } else {
            self.walk(at, dir_part, true, budget)?
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

    /// Splits `path` into the directory that should contain it and its last
    /// component. A path whose last component is `.` or `..`, or that is
    /// only slashes, has no name to create: EEXIST.
    pub fn parent_of<'p>(&self, at: Ino, path: &'p str) -> Result<(Ino, &'p str), Errno> {
        let mut budget = MAX_SYMLINKS;
        let p = self.parent_at(at, path, &mut budget)?;
        match p.last {
            Last::Name(name) => {
                check_name(name)?;
                Ok((p.dir, name))
            }
            _ => Err(Errno::EEXIST),
        }
    }

    /// Where a new non-directory named by `path` goes (Linux
    /// `filename_create` without `LOOKUP_DIRECTORY`): EEXIST for `.`, `..`,
    /// `/` or an existing name, ENOENT for a trailing slash or a removed
    /// directory.
    fn new_name<'p>(&self, at: Ino, path: &'p str) -> Result<(Ino, &'p str), Errno> {
        let (dir, name, trailing_slash) = self.new_entry(at, path)?;
        if trailing_slash {
            // Asking for a directory that does not exist.
            return Err(Errno::ENOENT);
        }
        Ok((dir, name))
    }

    /// [`RamFs::new_name`] allowing a trailing slash (mkdir); returns it.
    fn new_entry<'p>(&self, at: Ino, path: &'p str) -> Result<(Ino, &'p str, bool), Errno> {
        let mut budget = MAX_SYMLINKS;
        let p = self.parent_at(at, path, &mut budget)?;
        let Last::Name(name) = p.last else {
            return Err(Errno::EEXIST);
        };
        if self.child(p.dir, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        Ok((p.dir, name, p.trailing_slash))
    }

    fn alloc(&mut self, data: Data, perm: u32, parent: Ino, now: u64) -> Ino {
        let ino = self.next;
        self.next += 1;
        let nlink = if matches!(data, Data::Dir(_)) { 2 } else { 1 };
        self.inodes.insert(
            ino,
            Inode {
                data,
                perm: perm & 0o7777,
                nlink,
                open: 0,
                mapped: 0,
                held: 0,
                parent,
                atime: now,
                mtime: now,
                ctime: now,
            },
        );
        ino
    }

    fn link_into(&mut self, dir: Ino, name: &str, ino: Ino, now: u64) -> Result<(), Errno> {
        let d = self.dir_mut(dir)?;
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        d.insert(String::from(name), ino);
        let n = self.node_mut(dir)?;
        n.mtime = now;
        n.ctime = now;
        Ok(())
    }

    /// Allocates an inode holding `data` and names it `name` in `dir`
    /// (which [`RamFs::new_name`] or [`RamFs::new_entry`] checked).
    fn add(&mut self, dir: Ino, name: &str, data: Data, perm: u32, now: u64) -> Result<Ino, Errno> {
        let ino = self.alloc(data, perm, dir, now);
        if let Err(e) = self.link_into(dir, name, ino, now) {
            self.inodes.remove(&ino);
            return Err(e);
        }
        Ok(ino)
    }

    /// Opens or creates a regular file (`open` with `O_CREAT`, Linux
    /// `open_last_lookups`). With `exclusive` (`O_EXCL`) any existing name,
    /// a symlink included, is EEXIST; otherwise an existing file (or device)
    /// is returned, a symlink is followed (a dangling one creates its
    /// target), and a directory is EISDIR. A trailing slash is EISDIR.
    pub fn create(
        &mut self,
        at: Ino,
        path: &str,
        perm: u32,
        exclusive: bool,
        now: u64,
    ) -> Result<Ino, Errno> {
        let mut budget = MAX_SYMLINKS;
        let mut base = at;
        let mut target: String;
        let mut path = path;
        loop {
            let p = self.parent_at(base, path, &mut budget)?;
            let Last::Name(name) = p.last else {
                // `.`, `..` or `/`: an existing directory.
                return Err(if exclusive {
                    Errno::EEXIST
                } else {
                    Errno::EISDIR
                });
            };
            if p.trailing_slash {
                return Err(Errno::EISDIR);
            }
            let Some(ino) = self.child(p.dir, name)? else {
                return self.add(p.dir, name, Data::Owned(Pages::default()), perm, now);
            };
            if exclusive {
                return Err(Errno::EEXIST);
            }
            match &self.node(ino)?.data {
                Data::Dir(_) => return Err(Errno::EISDIR),
                Data::Symlink(t) => {
                    if budget == 0 {
                        return Err(Errno::ELOOP);
                    }
                    budget -= 1;
                    // Resolve (or create) the target from the link's directory.
                    base = p.dir;
                    target = t.clone();
                    path = &target;
                }
                _ => return Ok(ino),
            }
        }
    }

    /// Adds a read-only file whose bytes are borrowed (initrd contents).
    pub fn add_borrowed(
        &mut self,
        at: Ino,
        path: &str,
        bytes: &'static [u8],
        perm: u32,
        now: u64,
    ) -> Result<Ino, Errno> {
        let (dir, name) = self.new_name(at, path)?;
        self.add(dir, name, Data::Borrowed(bytes), perm, now)
    }

    /// Creates a device node.
    pub fn mknod(
        &mut self,
        at: Ino,
        path: &str,
        dev: (u32, u32),
        perm: u32,
        now: u64,
    ) -> Result<Ino, Errno> {
        let (dir, name) = self.new_name(at, path)?;
        self.add(dir, name, Data::Device(dev.0, dev.1), perm, now)
    }

    /// mkdir (a trailing slash is allowed).
    pub fn mkdir(&mut self, at: Ino, path: &str, perm: u32, now: u64) -> Result<Ino, Errno> {
        let (dir, name, _) = self.new_entry(at, path)?;
        let ino = self.add(dir, name, Data::Dir(BTreeMap::new()), perm, now)?;
        self.node_mut(dir)?.nlink += 1;
        Ok(ino)
    }

    /// symlink: creates `path` pointing at `target` (stored verbatim).
    pub fn symlink(&mut self, target: &str, at: Ino, path: &str, now: u64) -> Result<Ino, Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        check_path(target)?;
        let (dir, name) = self.new_name(at, path)?;
        self.add(dir, name, Data::Symlink(String::from(target)), 0o777, now)
    }

    /// readlink.
    pub fn readlink(&self, at: Ino, path: &str) -> Result<&str, Errno> {
        let ino = self.lookup(at, path, false)?;
        match &self.node(ino)?.data {
            Data::Symlink(t) => Ok(t),
            _ => Err(Errno::EINVAL),
        }
    }

    /// link: a new name for an existing non-directory.
    pub fn link(
        &mut self,
        at: Ino,
        old: &str,
        new_at: Ino,
        new: &str,
        now: u64,
    ) -> Result<(), Errno> {
        let ino = self.lookup(at, old, false)?;
        self.link_inode(ino, new_at, new, now)
    }

    /// Adds a hard link named `new` to inode `ino` (linkat with
    /// AT_SYMLINK_FOLLOW or AT_EMPTY_PATH). As in Linux, problems with
    /// `new` come first (EEXIST, ENOENT, ...); then directories cannot be
    /// linked (EPERM), and an inode with no links left cannot get one
    /// (ENOENT).
    pub fn link_inode(&mut self, ino: Ino, new_at: Ino, new: &str, now: u64) -> Result<(), Errno> {
        self.node(ino)?;
        let (dir, name) = self.new_name(new_at, new)?;
        if self.is_dir(ino) {
            return Err(Errno::EPERM);
        }
        if self.node(ino)?.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        self.link_into(dir, name, ino, now)?;
        let n = self.node_mut(ino)?;
        n.nlink += 1;
        n.ctime = now;
        Ok(())
    }

    fn drop_link(&mut self, ino: Ino, now: u64) {
        if let Some(n) = self.inodes.get_mut(&ino) {
            n.nlink = n.nlink.saturating_sub(1);
            n.ctime = now;
        }
        self.reap(ino);
    }

    /// Frees `ino` once nothing holds it: no names, no open references and
    /// no removed subdirectory whose `..` leads to it. A freed removed
    /// directory lets go of its parent, which may go in turn.
    fn reap(&mut self, mut ino: Ino) {
        while let Some(n) = self.inodes.get(&ino) {
            if n.nlink > 0 || n.open > 0 || n.held > 0 {
                return;
            }
            let (parent, was_dir) = (n.parent, matches!(n.data, Data::Dir(_)));
            self.free(ino);
            // Only a directory that outlived its removal gets here (see
            // `remove_dir`), and such a directory holds its parent.
            if !was_dir {
                return;
            }
            match self.inodes.get_mut(&parent) {
                Some(p) => p.held = p.held.saturating_sub(1),
                None => return,
            }
            ino = parent;
        }
    }

    fn free(&mut self, ino: Ino) {
        if let Some(n) = self.inodes.remove(&ino)
            && let Data::Owned(v) = n.data
        {
            self.used -= v.bytes();
        }
    }

    /// Marks directory `ino`, already unlinked from its parent, removed:
    /// it is freed now, or, if it is still open (or holds a removed
    /// subdirectory), when the last reference goes. Until then its `..`
    /// still leads to its old parent, so it holds that parent alive, as
    /// a Linux dentry holds its `d_parent`.
    fn remove_dir(&mut self, ino: Ino, now: u64) -> Result<(), Errno> {
        let n = self.node_mut(ino)?;
        n.nlink = 0;
        n.ctime = now;
        if n.open == 0 && n.held == 0 {
            self.inodes.remove(&ino);
        } else {
            let parent = n.parent;
            self.node_mut(parent)?.held += 1;
        }
        Ok(())
    }

    /// unlink (not for directories: EISDIR; `.`, `..` and `/` are
    /// directories too). A trailing slash on a non-directory is ENOTDIR.
    pub fn unlink(&mut self, at: Ino, path: &str, now: u64) -> Result<(), Errno> {
        let mut budget = MAX_SYMLINKS;
        let p = self.parent_at(at, path, &mut budget)?;
        let Last::Name(name) = p.last else {
            return Err(Errno::EISDIR);
        };
        let ino = self.child(p.dir, name)?.ok_or(Errno::ENOENT)?;
        if self.is_dir(ino) {
            return Err(Errno::EISDIR);
        }
        if p.trailing_slash {
            return Err(Errno::ENOTDIR);
        }
        self.dir_mut(p.dir)?.remove(name);
        let d = self.node_mut(p.dir)?;
        d.mtime = now;
        d.ctime = now;
        self.drop_link(ino, now);
        Ok(())
    }

    /// rmdir: the directory must be empty (ENOTEMPTY). After the parent
    /// resolves, a last component `.` is EINVAL, `..` ENOTEMPTY and `/`
    /// EBUSY.
    pub fn rmdir(&mut self, at: Ino, path: &str, now: u64) -> Result<(), Errno> {
        let mut budget = MAX_SYMLINKS;
        let p = self.parent_at(at, path, &mut budget)?;
        let name = match p.last {
            Last::Name(name) => name,
            Last::Dot => return Err(Errno::EINVAL),
            Last::DotDot => return Err(Errno::ENOTEMPTY),
            Last::Root => return Err(Errno::EBUSY),
        };
        let ino = self.child(p.dir, name)?.ok_or(Errno::ENOENT)?;
        if ino == ROOT {
            return Err(Errno::EBUSY);
        }
        if !self.dir(ino)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.dir_mut(p.dir)?.remove(name);
        let d = self.node_mut(p.dir)?;
        d.nlink -= 1;
        d.mtime = now;
        d.ctime = now;
        self.remove_dir(ino, now)
    }

    /// Removes everything below directory `dir`, which stays (empty), as
    /// `rm -rf dir/*` would: names of files and links go (their data when
    /// nothing holds them any more), subdirectories are emptied and
    /// removed bottom-up. Iterative, so any depth is fine. Returns how many
    /// entries were removed.
    pub fn remove_contents(&mut self, dir: Ino, now: u64) -> Result<usize, Errno> {
        self.dir(dir)?;
        let mut removed = 0;
        let mut path = alloc::vec![dir];
        while let Some(&cur) = path.last() {
            let Some((name, child)) = self.dir(cur)?.iter().next().map(|(n, &i)| (n.clone(), i))
            else {
                path.pop();
                continue;
            };
            if self.is_dir(child) && !self.dir(child)?.is_empty() {
                path.push(child);
                continue;
            }
            self.dir_mut(cur)?.remove(&name);
            let d = self.node_mut(cur)?;
            d.mtime = now;
            d.ctime = now;
            if self.is_dir(child) {
                self.node_mut(cur)?.nlink -= 1;
                self.remove_dir(child, now)?;
            } else {
                self.drop_link(child, now);
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Whether `anc` is `ino` or one of its ancestors.
    fn is_ancestor(&self, anc: Ino, mut ino: Ino) -> bool {
        loop {
            if ino == anc {
                return true;
            }
            if ino == ROOT {
                return false;
            }
            match self.inodes.get(&ino) {
                Some(n) => ino = n.parent,
                None => return false,
            }
        }
    }

    /// rename (atomic; replaces an existing target unless `noreplace`).
    /// The checks come in Linux's order (`do_renameat2`, then
    /// `vfs_rename`): both parents resolve; `.`, `..` or `/` as the old
    /// name is EBUSY, as the new one EBUSY (EEXIST with `noreplace`); the
    /// old name must exist and the new directory must not be removed
    /// (ENOENT); an existing target with `noreplace` is EEXIST, even the
    /// same inode; a trailing slash on a non-directory source is ENOTDIR;
    /// a directory cannot move into itself (EINVAL) nor over its own
    /// ancestor (ENOTEMPTY); renaming a name to the same inode does
    /// nothing; then the type rules (ENOTDIR, EISDIR, ENOTEMPTY).
    pub fn rename(
        &mut self,
        at: Ino,
        old: &str,
        new_at: Ino,
        new: &str,
        noreplace: bool,
        now: u64,
    ) -> Result<(), Errno> {
        let mut budget = MAX_SYMLINKS;
        let po = self.parent_at(at, old, &mut budget)?;
        let mut budget = MAX_SYMLINKS;
        let pn = self.parent_at(new_at, new, &mut budget)?;
        let Last::Name(oname) = po.last else {
            return Err(Errno::EBUSY);
        };
        let Last::Name(nname) = pn.last else {
            return Err(if noreplace {
                Errno::EEXIST
            } else {
                Errno::EBUSY
            });
        };
        let (odir, ndir) = (po.dir, pn.dir);
        let ino = self.child(odir, oname)?.ok_or(Errno::ENOENT)?;
        let existing = self.child(ndir, nname)?;
        if noreplace && existing.is_some() {
            return Err(Errno::EEXIST);
        }
        let moving_dir = self.is_dir(ino);
        if !moving_dir && (po.trailing_slash || pn.trailing_slash) {
            return Err(Errno::ENOTDIR);
        }
        if moving_dir && self.is_ancestor(ino, ndir) {
            return Err(Errno::EINVAL);
        }
        if let Some(target) = existing {
            if self.is_ancestor(target, odir) {
                // The target contains the source.
                return Err(Errno::ENOTEMPTY);
            }
            if target == ino {
                return Ok(());
            }
            match (moving_dir, self.is_dir(target)) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.dir(target)?.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            self.dir_mut(ndir)?.remove(nname);
            if self.is_dir(target) {
                self.node_mut(ndir)?.nlink -= 1;
                self.remove_dir(target, now)?;
            } else {
                self.drop_link(target, now);
            }
        }
        self.dir_mut(odir)?.remove(oname);
        self.dir_mut(ndir)?.insert(String::from(nname), ino);
        if moving_dir && odir != ndir {
            self.node_mut(odir)?.nlink -= 1;
            self.node_mut(ndir)?.nlink += 1;
            self.node_mut(ino)?.parent = ndir;
        }
        for d in [odir, ndir] {
            let n = self.node_mut(d)?;
            n.mtime = now;
            n.ctime = now;
        }
        self.node_mut(ino)?.ctime = now;
        Ok(())
    }

    /// Marks an inode open (it survives unlink until [`RamFs::close`]).
    pub fn open(&mut self, ino: Ino) -> Result<(), Errno> {
        self.node_mut(ino)?.open += 1;
        Ok(())
    }

    /// Releases an open reference; frees the inode if it has no links left.
    pub fn close(&mut self, ino: Ino) {
        if let Some(n) = self.inodes.get_mut(&ino) {
            n.open = n.open.saturating_sub(1);
        }
        self.reap(ino);
    }

    /// Reads at `offset`; returns the bytes copied (0 at or past the end).
    pub fn read(
        &mut self,
        ino: Ino,
        offset: u64,
        buf: &mut [u8],
        now: u64,
    ) -> Result<usize, Errno> {
        let n = self.node_mut(ino)?;
        let k = match &n.data {
            Data::Owned(v) => v.read(offset, buf),
            Data::Borrowed(bytes) => {
                let Ok(off) = usize::try_from(offset) else {
                    return Ok(0);
                };
                if off >= bytes.len() {
                    return Ok(0);
                }
                let k = buf.len().min(bytes.len() - off);
                buf[..k].copy_from_slice(&bytes[off..off + k]);
                k
            }
            Data::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        n.atime = now;
        Ok(k)
    }

    /// Turns a borrowed file into an owned copy (before its first change).
    fn make_owned(&mut self, ino: Ino) -> Result<(), Errno> {
        let borrowed = match self.node(ino)?.data {
            Data::Borrowed(b) => b,
            _ => return Ok(()),
        };
        let mut pages = Pages::default();
        if self.used + pages.new_pages(0, borrowed.len() as u64) * PAGE_SIZE as u64 > self.capacity
        {
            return Err(Errno::ENOSPC);
        }
        pages.write(0, borrowed);
        self.used += pages.bytes();
        self.node_mut(ino)?.data = Data::Owned(pages);
        Ok(())
    }

    /// Writes at `offset`, growing the file (the gap reads as zeros).
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8], now: u64) -> Result<usize, Errno> {
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        self.make_owned(ino)?;
        let (cap, used) = (self.capacity, self.used);
        let n = self.node_mut(ino)?;
        let grown = match &mut n.data {
            Data::Dir(_) => return Err(Errno::EISDIR),
            Data::Symlink(_) | Data::Device(..) | Data::Borrowed(_) => return Err(Errno::EINVAL),
            Data::Owned(v) => {
                let g = v.new_pages(offset, end) * PAGE_SIZE as u64;
                if used + g > cap {
                    return Err(Errno::ENOSPC);
                }
                v.write(offset, data) * PAGE_SIZE as u64
            }
        };
        n.mtime = now;
        n.ctime = now;
        self.used += grown;
        Ok(data.len())
    }

    /// truncate/ftruncate.
    pub fn truncate(&mut self, ino: Ino, len: u64, now: u64) -> Result<(), Errno> {
        if len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        self.make_owned(ino)?;
        let n = self.node_mut(ino)?;
        let keep = n.mapped > 0;
        let freed = match &mut n.data {
            Data::Dir(_) => return Err(Errno::EISDIR),
            Data::Symlink(_) | Data::Device(..) | Data::Borrowed(_) => return Err(Errno::EINVAL),
            // Growing adds a hole: no pages, no capacity.
            Data::Owned(v) => v.truncate(len, keep),
        };
        n.mtime = now;
        n.ctime = now;
        self.used -= freed * PAGE_SIZE as u64;
        Ok(())
    }

    /// stat of an inode.
    pub fn stat(&self, ino: Ino) -> Result<Stat, Errno> {
        let n = self.node(ino)?;
        let (kind, size, rdev) = match &n.data {
            Data::Owned(v) => (mode::S_IFREG, v.size, (0, 0)),
            Data::Borrowed(b) => (mode::S_IFREG, b.len() as u64, (0, 0)),
            Data::Dir(d) => (mode::S_IFDIR, (d.len() as u64 + 2) * 20, (0, 0)),
            Data::Symlink(t) => (mode::S_IFLNK, t.len() as u64, (0, 0)),
            Data::Device(a, b) => (mode::S_IFCHR, 0, (*a, *b)),
        };
        Ok(Stat {
            ino,
            mode: kind | n.perm,
            nlink: n.nlink,
            size,
            rdev,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
        })
    }

    /// Changes permission bits (chmod).
    pub fn chmod(&mut self, ino: Ino, perm: u32, now: u64) -> Result<(), Errno> {
        let n = self.node_mut(ino)?;
        n.perm = perm & 0o7777;
        n.ctime = now;
        Ok(())
    }

    /// Sets access and/or modification times (utimensat); the change time
    /// becomes `now`.
    pub fn set_times(
        &mut self,
        ino: Ino,
        atime: Option<u64>,
        mtime: Option<u64>,
        now: u64,
    ) -> Result<(), Errno> {
        let n = self.node_mut(ino)?;
        if let Some(a) = atime {
            n.atime = a;
        }
        if let Some(m) = mtime {
            n.mtime = m;
        }
        n.ctime = now;
        Ok(())
    }

    /// The absolute path of directory `ino` (getcwd). ENOENT if it was
    /// removed, ENOTDIR if it is not a directory.
    pub fn dir_path(&self, ino: Ino) -> Result<String, Errno> {
        self.dir(ino)?;
        let mut parts: Vec<&str> = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let parent = self.node(cur)?.parent;
            let name = self
                .dir(parent)?
                .iter()
                .find(|(_, c)| **c == cur)
                .map(|(n, _)| n.as_str())
                .ok_or(Errno::ENOENT)?;
            parts.push(name);
            if parts.len() > PATH_MAX / 2 {
                return Err(Errno::ENAMETOOLONG);
            }
            cur = parent;
        }
        let mut out = String::new();
        for p in parts.iter().rev() {
            out.push('/');
            out.push_str(p);
        }
        if out.is_empty() {
            out.push('/');
        }
        Ok(out)
    }

    /// Number of inodes in use (statfs).
    pub fn inode_count(&self) -> u64 {
        self.inodes.len() as u64
    }

    /// Directory entries after `after` (a name; `None` from the start),
    /// in name order, with `.` and `..` first. Resuming by name keeps the
    /// listing stable while entries are created: nothing is repeated, and
    /// entries that existed when the listing started are not skipped.
    /// A removed directory cannot be listed (ENOENT), as in Linux.
    pub fn readdir(&self, ino: Ino, after: Option<&str>) -> Result<Vec<DirEntry>, Errno> {
        self.readdir_some(ino, after, usize::MAX)
    }

    /// [`RamFs::readdir`], but at most `max` entries (getdents64 asks for
    /// what fits the caller's buffer, so a huge directory is not copied
    /// whole for every call).
    pub fn readdir_some(
        &self,
        ino: Ino,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<DirEntry>, Errno> {
        let d = self.dir(ino)?;
        if self.is_removed_dir(ino) {
            return Err(Errno::ENOENT);
        }
        let mut out = Vec::new();
        if after.is_none() {
            out.push(DirEntry {
                name: String::from("."),
                ino,
                kind: mode::S_IFDIR,
            });
            out.push(DirEntry {
                name: String::from(".."),
                ino: self.node(ino)?.parent,
                kind: mode::S_IFDIR,
            });
        }
        let range: alloc::boxed::Box<dyn Iterator<Item = (&String, &Ino)>> = match after {
            None | Some(".") | Some("..") => alloc::boxed::Box::new(d.iter()),
            Some(a) => alloc::boxed::Box::new(
                d.range::<str, _>((core::ops::Bound::Excluded(a), core::ops::Bound::Unbounded)),
            ),
        };
        out.truncate(max);
        for (name, &child) in range.take(max.saturating_sub(out.len())) {
            let kind = self
                .stat(child)
                .map(|s| s.mode & 0o170000)
                .unwrap_or(mode::S_IFREG);
            out.push(DirEntry {
                name: name.clone(),
                ino: child,
                kind,
            });
        }
        Ok(out)
    }

    /// Marks a regular file as mapped shared by one more area: it stays
    /// alive, and truncation zeroes its pages instead of freeing them, until
    /// the matching [`RamFs::unpin`].
    pub fn pin(&mut self, ino: Ino) -> Result<(), Errno> {
        let n = self.node_mut(ino)?;
        if !matches!(n.data, Data::Owned(_) | Data::Borrowed(_)) {
            return Err(Errno::ENODEV);
        }
        n.open += 1;
        n.mapped += 1;
        Ok(())
    }

    /// Undoes one [`RamFs::pin`]: frees pages past the end once nothing
    /// maps the file, and the inode if nothing else holds it.
    pub fn unpin(&mut self, ino: Ino) {
        let freed = match self.inodes.get_mut(&ino) {
            Some(n) => {
                n.mapped = n.mapped.saturating_sub(1);
                match &mut n.data {
                    Data::Owned(v) if n.mapped == 0 => v.trim(),
                    _ => 0,
                }
            }
            None => return,
        };
        self.used -= freed * PAGE_SIZE as u64;
        self.close(ino);
    }

    /// The page at `index` of a file for a shared mapping: a borrowed file
    /// becomes owned first, and a hole gets a zeroed page (counted against
    /// the capacity: ENOSPC). EFAULT past the end of the file (SIGBUS).
    pub fn shared_page(&mut self, ino: Ino, index: u64) -> Result<&Page, Errno> {
        let size = self.stat(ino)?.size;
        if index >= size.div_ceil(PAGE_SIZE as u64) {
            return Err(Errno::EFAULT);
        }
        self.make_owned(ino)?;
        let (cap, used) = (self.capacity, self.used);
        let n = self.node_mut(ino)?;
        let Data::Owned(v) = &mut n.data else {
            return Err(Errno::ENODEV);
        };
        let added = match v.map.entry(index) {
            alloc::collections::btree_map::Entry::Occupied(_) => 0,
            alloc::collections::btree_map::Entry::Vacant(e) => {
                if used + PAGE_SIZE as u64 > cap {
                    return Err(Errno::ENOSPC);
                }
                e.insert(Box::new(Page([0; PAGE_SIZE])));
                PAGE_SIZE as u64
            }
        };
        self.used += added;
        match &self.node(ino)?.data {
            Data::Owned(v) => v.map.get(&index).map(|p| &**p).ok_or(Errno::EFAULT),
            _ => Err(Errno::ENODEV),
        }
    }

    /// The contents of a file without copying, if it is borrowed (for
    /// zero-copy mmap of initrd files).
    pub fn borrowed_bytes(&self, ino: Ino) -> Option<&'static [u8]> {
        match self.inodes.get(&ino)?.data {
            Data::Borrowed(b) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> RamFs {
        RamFs::new(1 << 20)
    }

    #[test]
    fn create_write_read_stat() {
        let mut f = fs();
        let d = f.mkdir(ROOT, "/tmp", 0o755, 1).unwrap();
        let ino = f.create(ROOT, "/tmp/a.txt", 0o644, true, 2).unwrap();
        assert_eq!(
            f.create(ROOT, "/tmp/a.txt", 0o644, true, 3),
            Err(Errno::EEXIST)
        );
        assert_eq!(f.create(d, "a.txt", 0o644, false, 3), Ok(ino));
        assert_eq!(f.write(ino, 0, b"hello", 4), Ok(5));
        let mut b = [0u8; 16];
        assert_eq!(f.read(ino, 1, &mut b, 5), Ok(4));
        assert_eq!(&b[..4], b"ello");
        let s = f.stat(ino).unwrap();
        assert_eq!(
            (s.size, s.mode, s.nlink, s.mtime),
            (5, mode::S_IFREG | 0o644, 1, 4)
        );
        assert_eq!(f.stat(d).unwrap().nlink, 2);
        assert_eq!(f.stat(ROOT).unwrap().nlink, 3);
    }

    #[test]
    fn sparse_writes_and_truncate() {
        let mut f = fs();
        let ino = f.create(ROOT, "s", 0o644, true, 0).unwrap();
        f.write(ino, 10, b"x", 0).unwrap();
        let mut b = [9u8; 11];
        assert_eq!(f.read(ino, 0, &mut b, 0), Ok(11));
        assert_eq!(&b[..10], &[0; 10]);
        f.truncate(ino, 3, 0).unwrap();
        assert_eq!(f.stat(ino).unwrap().size, 3);
        assert_eq!(f.used(), PAGE_SIZE as u64, "one page holds the data");
        // Growing makes a hole: no memory is used for it.
        f.truncate(ino, 1 << 30, 0).unwrap();
        assert_eq!(f.used(), PAGE_SIZE as u64);
        let mut b = [9u8; 4];
        assert_eq!(f.read(ino, (1 << 30) - 2, &mut b, 0), Ok(2));
        assert_eq!(&b[..2], &[0, 0]);
        // A write far out allocates one page, not the gap.
        f.write(ino, 1 << 40, b"y", 0).unwrap();
        assert_eq!(f.used(), 2 * PAGE_SIZE as u64);
        assert_eq!(f.stat(ino).unwrap().size, (1 << 40) + 1);
        assert_eq!(f.truncate(ino, 1 << 63, 0), Err(Errno::EFBIG));
        assert_eq!(f.write(ino, i64::MAX as u64, b"z", 0), Err(Errno::EFBIG));
        f.truncate(ino, 0, 0).unwrap();
        assert_eq!(f.used(), 0);
        // An empty write past the end does not extend the file.
        assert_eq!(f.write(ino, 500, b"", 0), Ok(0));
        assert_eq!(f.stat(ino).unwrap().size, 0);
    }

    #[test]
    fn shared_pages_survive_truncate_while_mapped() {
        let mut f = fs();
        let ino = f.create(ROOT, "m", 0o644, true, 0).unwrap();
        f.write(ino, 0, &[5; 3 * PAGE_SIZE], 0).unwrap();
        f.pin(ino).unwrap();
        let addr = core::ptr::from_ref(f.shared_page(ino, 2).unwrap()) as usize;
        assert_eq!(addr % PAGE_SIZE, 0, "pages are page-aligned");
        assert_eq!(f.shared_page(ino, 3).map(|_| ()), Err(Errno::EFAULT));
        f.truncate(ino, 10, 0).unwrap();
        // Still allocated (a mapping may point at them), but zeroed.
        assert_eq!(f.used(), 3 * PAGE_SIZE as u64);
        // Growing again shows zeros where the old data was.
        f.truncate(ino, 3 * PAGE_SIZE as u64, 0).unwrap();
        let mut b = [9u8; 3];
        f.read(ino, 9, &mut b, 0).unwrap();
        assert_eq!(b, [5, 0, 0]);
        f.unlink(ROOT, "m", 0).unwrap();
        assert!(f.stat(ino).is_ok(), "a mapped file outlives its name");
        f.unpin(ino);
        assert_eq!(f.used(), 0);
        assert_eq!(f.stat(ino).map(|_| ()), Err(Errno::ENOENT));
    }

    #[test]
    fn holes_in_shared_mappings_take_capacity() {
        let mut f = RamFs::new(PAGE_SIZE as u64);
        let ino = f.create(ROOT, "h", 0o644, true, 0).unwrap();
        f.truncate(ino, 3 * PAGE_SIZE as u64, 0).unwrap();
        f.pin(ino).unwrap();
        assert!(f.shared_page(ino, 1).is_ok());
        assert_eq!(f.shared_page(ino, 2).map(|_| ()), Err(Errno::ENOSPC));
        f.unpin(ino);
        assert_eq!(f.used(), PAGE_SIZE as u64);
    }

    #[test]
    fn capacity_is_enforced() {
        // Capacity is counted in pages, as tmpfs does.
        let mut f = RamFs::new(2 * PAGE_SIZE as u64);
        let ino = f.create(ROOT, "big", 0o644, true, 0).unwrap();
        assert_eq!(f.write(ino, 0, &[1; 2 * PAGE_SIZE], 0), Ok(2 * PAGE_SIZE));
        assert_eq!(
            f.write(ino, 2 * PAGE_SIZE as u64, &[1], 0),
            Err(Errno::ENOSPC)
        );
        // Rewriting allocated pages needs no new space.
        assert_eq!(f.write(ino, 100, &[2; 100], 0), Ok(100));
        f.unlink(ROOT, "big", 0).unwrap();
        assert_eq!(f.used(), 0, "unlinked data is released");
    }

    #[test]
    fn paths_dots_slashes_and_limits() {
        let mut f = fs();
        let a = f.mkdir(ROOT, "a", 0o755, 0).unwrap();
        let b = f.mkdir(a, "b", 0o755, 0).unwrap();
        assert_eq!(f.lookup(ROOT, "//a///b/", true), Ok(b));
        assert_eq!(f.lookup(b, "../b/./..", true), Ok(a));
        assert_eq!(f.lookup(ROOT, "/..", true), Ok(ROOT));
        let file = f.create(a, "file", 0o644, true, 0).unwrap();
        assert_eq!(f.lookup(ROOT, "a/file/", true), Err(Errno::ENOTDIR));
        assert_eq!(f.lookup(ROOT, "a/file/x", true), Err(Errno::ENOTDIR));
        assert_eq!(f.lookup(ROOT, "a/missing", true), Err(Errno::ENOENT));
        assert_eq!(f.lookup(file, "x", true), Err(Errno::ENOTDIR));
        let long = "n".repeat(NAME_MAX + 1);
        assert_eq!(f.lookup(ROOT, &long, true), Err(Errno::ENAMETOOLONG));
        assert_eq!(
            f.create(ROOT, &long, 0o644, true, 0),
            Err(Errno::ENAMETOOLONG)
        );
        let very_long = "a/".repeat(PATH_MAX);
        assert_eq!(f.lookup(ROOT, &very_long, true), Err(Errno::ENAMETOOLONG));
        assert_eq!(f.lookup(ROOT, "", true), Err(Errno::ENOENT));
    }

    #[test]
    fn symlinks_and_loops() {
        let mut f = fs();
        let d = f.mkdir(ROOT, "d", 0o755, 0).unwrap();
        let file = f.create(d, "f", 0o644, true, 0).unwrap();
        let l = f.symlink("/d/f", ROOT, "l", 0).unwrap();
        f.symlink("d", ROOT, "dl", 0).unwrap();
        assert_eq!(f.lookup(ROOT, "l", true), Ok(file));
        assert_eq!(f.lookup(ROOT, "l", false), Ok(l));
        assert_eq!(
            f.lookup(ROOT, "dl/f", false),
            Ok(file),
            "intermediate links are always followed"
        );
        assert_eq!(f.readlink(ROOT, "l"), Ok("/d/f"));
        assert_eq!(f.readlink(ROOT, "d/f"), Err(Errno::EINVAL));
        f.symlink("loop2", ROOT, "loop1", 0).unwrap();
        f.symlink("loop1", ROOT, "loop2", 0).unwrap();
        assert_eq!(f.lookup(ROOT, "loop1", true), Err(Errno::ELOOP));
        f.symlink("nowhere", ROOT, "dangling", 0).unwrap();
        assert_eq!(f.lookup(ROOT, "dangling", true), Err(Errno::ENOENT));
        assert_eq!(
            f.create(ROOT, "dangling", 0o644, true, 0),
            Err(Errno::EEXIST)
        );
    }

    #[test]
    fn remove_contents_empties_a_deep_tree_and_frees_its_data() {
        let mut f = fs();
        let tmp = f.mkdir(ROOT, "tmp", 0o1777, 0).unwrap();
        let keep = f.create(ROOT, "keep", 0o644, true, 0).unwrap();
        f.write(keep, 0, b"stays", 0).unwrap();
        let mut path = String::from("tmp");
        for i in 0..300 {
            path.push_str(&alloc::format!("/d{i}"));
            f.mkdir(ROOT, &path, 0o755, 0).unwrap();
        }
        let deep = f
            .create(ROOT, &alloc::format!("{path}/f"), 0o644, true, 0)
            .unwrap();
        f.write(deep, 0, &[7u8; 10_000], 0).unwrap();
        let a = f.create(ROOT, "tmp/a", 0o644, true, 0).unwrap();
        f.write(a, 0, b"scratch", 0).unwrap();
        f.symlink("a", ROOT, "tmp/l", 0).unwrap();
        // A hard link from outside keeps its inode alive.
        f.link(ROOT, "tmp/a", ROOT, "outside", 0).unwrap();
        let used = f.used();
        assert_eq!(f.remove_contents(tmp, 5), Ok(300 + 1 + 2));
        assert_eq!(f.readdir(tmp, None).unwrap().len(), 2, ". and .. only");
        assert_eq!(f.stat(tmp).unwrap().nlink, 2);
        assert!(f.used() < used, "the deep file's pages were freed");
        let mut b = [0u8; 7];
        assert_eq!(
            f.read(f.lookup(ROOT, "outside", true).unwrap(), 0, &mut b, 0),
            Ok(7)
        );
        assert_eq!(&b, b"scratch");
        assert_eq!(f.lookup(ROOT, "keep", true), Ok(keep));
        assert_eq!(f.remove_contents(tmp, 6), Ok(0));
        assert_eq!(f.remove_contents(keep, 6), Err(Errno::ENOTDIR));
    }

    #[test]
    fn unlink_while_open_keeps_data() {
        let mut f = fs();
        let ino = f.create(ROOT, "x", 0o644, true, 0).unwrap();
        f.write(ino, 0, b"data", 0).unwrap();
        f.open(ino).unwrap();
        f.unlink(ROOT, "x", 0).unwrap();
        assert_eq!(f.lookup(ROOT, "x", true), Err(Errno::ENOENT));
        let mut b = [0u8; 4];
        assert_eq!(f.read(ino, 0, &mut b, 0), Ok(4));
        assert_eq!(f.stat(ino).unwrap().nlink, 0);
        f.close(ino);
        assert_eq!(f.stat(ino), Err(Errno::ENOENT));
        assert_eq!(f.used(), 0);
    }

    #[test]
    fn hard_links() {
        let mut f = fs();
        let ino = f.create(ROOT, "a", 0o644, true, 0).unwrap();
        f.link(ROOT, "a", ROOT, "b", 1).unwrap();
        assert_eq!(f.stat(ino).unwrap().nlink, 2);
        f.unlink(ROOT, "a", 2).unwrap();
        assert_eq!(f.lookup(ROOT, "b", true), Ok(ino));
        assert_eq!(f.link(ROOT, "b", ROOT, "b", 3), Err(Errno::EEXIST));
        f.mkdir(ROOT, "d", 0o755, 0).unwrap();
        assert_eq!(f.link(ROOT, "d", ROOT, "d2", 3), Err(Errno::EPERM));
    }

    #[test]
    fn mkdir_rmdir_rules() {
        let mut f = fs();
        let d = f.mkdir(ROOT, "d", 0o755, 0).unwrap();
        assert_eq!(f.mkdir(ROOT, "d", 0o755, 0), Err(Errno::EEXIST));
        f.create(d, "f", 0o644, true, 0).unwrap();
        assert_eq!(f.rmdir(ROOT, "d", 0), Err(Errno::ENOTEMPTY));
        assert_eq!(f.unlink(ROOT, "d", 0), Err(Errno::EISDIR));
        assert_eq!(f.rmdir(ROOT, "d/f", 0), Err(Errno::ENOTDIR));
        f.unlink(ROOT, "d/f", 0).unwrap();
        assert_eq!(f.rmdir(ROOT, "d/.", 0), Err(Errno::EINVAL));
        f.rmdir(ROOT, "d/", 0).unwrap();
        assert_eq!(f.stat(ROOT).unwrap().nlink, 2);
        assert_eq!(f.rmdir(ROOT, "/", 0), Err(Errno::EBUSY));
        assert_eq!(f.mkdir(ROOT, "/", 0o755, 0), Err(Errno::EEXIST));
    }

    #[test]
    fn rename_rules() {
        let mut f = fs();
        let a = f.create(ROOT, "a", 0o644, true, 0).unwrap();
        let b = f.create(ROOT, "b", 0o644, true, 0).unwrap();
        f.write(b, 0, b"bbbb", 0).unwrap();
        assert_eq!(f.rename(ROOT, "a", ROOT, "b", true, 1), Err(Errno::EEXIST));
        f.rename(ROOT, "a", ROOT, "b", false, 1).unwrap();
        assert_eq!(f.lookup(ROOT, "b", true), Ok(a));
        assert_eq!(f.lookup(ROOT, "a", true), Err(Errno::ENOENT));
        assert_eq!(f.used(), 0, "the replaced file is freed");
        let d = f.mkdir(ROOT, "d", 0o755, 0).unwrap();
        let e = f.mkdir(d, "e", 0o755, 0).unwrap();
        assert_eq!(
            f.rename(ROOT, "d", ROOT, "d/e/x", false, 2),
            Err(Errno::EINVAL),
            "into itself"
        );
        assert_eq!(f.rename(ROOT, "b", ROOT, "d", false, 2), Err(Errno::EISDIR));
        assert_eq!(
            f.rename(ROOT, "d", ROOT, "b", false, 2),
            Err(Errno::ENOTDIR)
        );
        f.create(e, "x", 0o644, true, 0).unwrap();
        let g = f.mkdir(ROOT, "g", 0o755, 0).unwrap();
        assert_eq!(
            f.rename(ROOT, "g", ROOT, "d", false, 2),
            Err(Errno::ENOTEMPTY)
        );
        f.rename(ROOT, "d/e", ROOT, "g", false, 3).unwrap();
        assert!(f.lookup(ROOT, "g/x", true).is_ok());
        assert_eq!(
            f.lookup(ROOT, "g", true),
            Ok(e),
            "the moved directory took the name"
        );
        assert_eq!(
            f.lookup(ROOT, "g/..", true),
            Ok(ROOT),
            "and its parent changed"
        );
        assert_eq!(
            f.stat(g),
            Err(Errno::ENOENT),
            "the replaced empty directory is gone"
        );
        assert_eq!(f.stat(d).unwrap().nlink, 2);
        assert_eq!(
            f.rename(ROOT, "missing", ROOT, "z", false, 3),
            Err(Errno::ENOENT)
        );
    }

    #[test]
    fn borrowed_files_copy_on_write() {
        static MODEL: [u8; 8] = *b"GGUFdata";
        let mut f = fs();
        let ino = f
            .add_borrowed(ROOT, "model.gguf", &MODEL, 0o444, 0)
            .unwrap();
        assert_eq!(f.used(), 0, "borrowed bytes are not copied");
        assert_eq!(
            f.borrowed_bytes(ino).map(|b| b.as_ptr()),
            Some(MODEL.as_ptr())
        );
        let mut b = [0u8; 4];
        f.read(ino, 0, &mut b, 0).unwrap();
        assert_eq!(&b, b"GGUF");
        f.write(ino, 0, b"gguf", 1).unwrap();
        assert_eq!(f.borrowed_bytes(ino), None);
        f.read(ino, 0, &mut b, 0).unwrap();
        assert_eq!(&b, b"gguf");
        assert_eq!(MODEL[0], b'G', "the borrowed source is untouched");
    }

    #[test]
    fn readdir_is_sorted_and_resumable() {
        let mut f = fs();
        for n in ["c", "a", "b"] {
            f.create(ROOT, n, 0o644, true, 0).unwrap();
        }
        let all: Vec<String> = f
            .readdir(ROOT, None)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(all, [".", "..", "a", "b", "c"]);
        let some: Vec<String> = f
            .readdir_some(ROOT, None, 3)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(some, [".", "..", "a"]);
        let next = f.readdir_some(ROOT, Some("a"), 1).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].name, "b");
        f.create(ROOT, "aa", 0o644, true, 0).unwrap();
        let rest: Vec<String> = f
            .readdir(ROOT, Some("b"))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            rest,
            ["c"],
            "resuming after b neither repeats nor skips old entries"
        );
    }

    proptest::proptest! {
        /// Random operation sequences never panic, and capacity accounting
        /// always equals the sum of owned file sizes.
        #[test]
        fn accounting_matches_contents(ops in proptest::collection::vec((0u8..8, 0u8..6, 0u16..300), 1..80)) {
            let mut f = RamFs::new(4000);
            let names = ["a", "b", "d/a", "d/b", "d", "e"];
            for (op, n, k) in ops {
                let p = names[n as usize];
                let _ = match op {
                    0 => f.create(ROOT, p, 0o644, false, 0).map(|_| ()),
                    1 => f.lookup(ROOT, p, true).and_then(|i| f.write(i, u64::from(k), &[7; 50], 0)).map(|_| ()),
                    2 => f.lookup(ROOT, p, true).and_then(|i| f.truncate(i, u64::from(k), 0)),
                    3 => f.unlink(ROOT, p, 0),
                    4 => f.mkdir(ROOT, p, 0o755, 0).map(|_| ()),
                    5 => f.rmdir(ROOT, p, 0),
                    6 => f.rename(ROOT, p, ROOT, names[(k % 6) as usize], k % 2 == 0, 0),
                    _ => f.link(ROOT, p, ROOT, names[(k % 6) as usize], 0),
                };
                let sum: u64 = f.inodes.values().map(|n| match &n.data { Data::Owned(v) => v.bytes(), _ => 0 }).sum();
                proptest::prop_assert_eq!(sum, f.used());
                proptest::prop_assert!(f.used() <= f.capacity());
            }
        }
    }
    #[test]
    fn dir_path_and_times() {
        let mut fs = RamFs::new(1 << 20);
        let a = fs.mkdir(ROOT, "/a", 0o755, 1).unwrap();
        let b = fs.mkdir(ROOT, "/a/b", 0o755, 1).unwrap();
        assert_eq!(fs.dir_path(ROOT).unwrap(), "/");
        assert_eq!(fs.dir_path(b).unwrap(), "/a/b");
        fs.rename(ROOT, "/a", ROOT, "/c", false, 2).unwrap();
        assert_eq!(fs.dir_path(b).unwrap(), "/c/b");
        assert_eq!(fs.dir_path(a).unwrap(), "/c");
        fs.rmdir(ROOT, "/c/b", 3).unwrap();
        assert_eq!(fs.dir_path(b), Err(Errno::ENOENT));
        let f = fs.create(ROOT, "/f", 0o644, false, 4).unwrap();
        assert_eq!(fs.dir_path(f), Err(Errno::ENOTDIR));
        fs.set_times(f, Some(10), None, 20).unwrap();
        let st = fs.stat(f).unwrap();
        assert_eq!((st.atime, st.mtime, st.ctime), (10, 4, 20));
    }
}
