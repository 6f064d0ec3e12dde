//! A process's file-descriptor table: small integers naming shared open
//! file descriptions, with the close-on-exec flag per descriptor.
//!
//! The table is generic over the description type `D` (the kernel uses an
//! `Arc` of its open-file object, so `dup` shares the offset and status
//! flags exactly as on Linux). New descriptors take the lowest free
//! number at or above a floor, and the table never holds more than its
//! limit (RLIMIT_NOFILE): beyond it `EMFILE`, and `dup2`/`dup3` to a
//! number at or above the limit is `EBADF`.

use alloc::collections::BTreeMap;

use crate::errno::Errno;

/// One descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot<D> {
    /// The open file description.
    pub desc: D,
    /// FD_CLOEXEC.
    pub cloexec: bool,
}

/// The table.
#[derive(Debug, Clone)]
pub struct FdTable<D> {
    slots: BTreeMap<i32, Slot<D>>,
    limit: i32,
}

impl<D: Clone> FdTable<D> {
    /// An empty table allowing descriptors `0..limit`.
    pub fn new(limit: i32) -> Self {
        Self {
            slots: BTreeMap::new(),
            limit: limit.max(1),
        }
    }

    /// The limit (one more than the largest descriptor allowed).
    pub fn limit(&self) -> i32 {
        self.limit
    }

    /// Changes the limit (setrlimit). Open descriptors above it stay.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = i32::try_from(limit).unwrap_or(i32::MAX).max(1);
    }

    /// Number of open descriptors.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no descriptor is open.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The lowest free descriptor at or above `floor`.
    fn lowest_free(&self, floor: i32) -> Result<i32, Errno> {
        if floor < 0 {
            return Err(Errno::EINVAL);
        }
        let mut n = floor;
        for (&fd, _) in self.slots.range(floor..) {
            if fd != n {
                break;
            }
            n += 1;
        }
        if n >= self.limit {
            return Err(Errno::EMFILE);
        }
        Ok(n)
    }

    /// Installs `desc` at the lowest free descriptor.
    pub fn insert(&mut self, desc: D, cloexec: bool) -> Result<i32, Errno> {
        self.insert_from(0, desc, cloexec)
    }

    /// Installs `desc` at the lowest free descriptor ≥ `floor` (F_DUPFD).
    pub fn insert_from(&mut self, floor: i32, desc: D, cloexec: bool) -> Result<i32, Errno> {
        if floor >= self.limit {
            return Err(Errno::EINVAL);
        }
        let fd = self.lowest_free(floor)?;
        self.slots.insert(fd, Slot { desc, cloexec });
        Ok(fd)
    }

    /// The descriptor's slot, or EBADF.
    pub fn get(&self, fd: i32) -> Result<&Slot<D>, Errno> {
        self.slots.get(&fd).ok_or(Errno::EBADF)
    }

    /// The descriptor's description (cloned), or EBADF.
    pub fn desc(&self, fd: i32) -> Result<D, Errno> {
        self.get(fd).map(|s| s.desc.clone())
    }

    /// Sets FD_CLOEXEC.
    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> Result<(), Errno> {
        self.slots.get_mut(&fd).ok_or(Errno::EBADF)?.cloexec = on;
        Ok(())
    }

    /// Closes `fd`, returning its description (the caller drops it outside
    /// any lock, since the last drop may release the file).
    pub fn remove(&mut self, fd: i32) -> Result<D, Errno> {
        self.slots.remove(&fd).map(|s| s.desc).ok_or(Errno::EBADF)
    }

    /// dup(2): the same description at the lowest free number, without
    /// FD_CLOEXEC.
    pub fn dup(&mut self, fd: i32) -> Result<i32, Errno> {
        let d = self.desc(fd)?;
        self.insert(d, false)
    }

    /// dup3(2) (and dup2 when `old != new`): makes `new` refer to `old`'s
    /// description, closing what `new` held (returned for dropping).
    pub fn dup_to(&mut self, old: i32, new: i32, cloexec: bool) -> Result<Option<D>, Errno> {
        let d = self.desc(old)?;
        if new < 0 || new >= self.limit {
            return Err(Errno::EBADF);
        }
        if old == new {
            return Err(Errno::EINVAL);
        }
        Ok(self
            .slots
            .insert(new, Slot { desc: d, cloexec })
            .map(|s| s.desc))
    }

    /// Closes every descriptor in `[first, last]` (close_range), returning
    /// the descriptions.
    pub fn remove_range(&mut self, first: i32, last: i32) -> alloc::vec::Vec<D> {
        let keys: alloc::vec::Vec<i32> = self.slots.range(first..=last).map(|(k, _)| *k).collect();
        keys.into_iter()
            .filter_map(|k| self.slots.remove(&k).map(|s| s.desc))
            .collect()
    }

    /// Sets FD_CLOEXEC on every descriptor in `[first, last]`.
    pub fn cloexec_range(&mut self, first: i32, last: i32) {
        for (_, s) in self.slots.range_mut(first..=last) {
            s.cloexec = true;
        }
    }

    /// Every open descriptor in order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &Slot<D>)> {
        self.slots.iter().map(|(k, v)| (*k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_and_limit() {
        let mut t = FdTable::new(4);
        assert_eq!(t.insert('a', false), Ok(0));
        assert_eq!(t.insert('b', false), Ok(1));
        assert_eq!(t.insert('c', true), Ok(2));
        assert_eq!(t.remove(1), Ok('b'));
        assert_eq!(t.insert('d', false), Ok(1));
        assert_eq!(t.insert('e', false), Ok(3));
        assert_eq!(t.insert('f', false), Err(Errno::EMFILE));
        assert_eq!(t.remove(7), Err(Errno::EBADF));
        assert!(t.get(2).unwrap().cloexec);
    }

    #[test]
    fn dup_family() {
        let mut t = FdTable::new(16);
        t.insert('x', true).unwrap();
        assert_eq!(t.dup(0), Ok(1));
        assert!(!t.get(1).unwrap().cloexec);
        assert_eq!(t.dup_to(0, 9, true), Ok(None));
        assert_eq!(t.get(9).unwrap().desc, 'x');
        t.insert('y', false).unwrap();
        assert_eq!(t.dup_to(2, 9, false), Ok(Some('x')));
        assert_eq!(t.dup_to(0, 0, false), Err(Errno::EINVAL));
        assert_eq!(t.dup_to(0, 16, false), Err(Errno::EBADF));
        assert_eq!(t.dup_to(0, -1, false), Err(Errno::EBADF));
        assert_eq!(t.dup_to(5, 6, false), Err(Errno::EBADF));
        assert_eq!(t.insert_from(5, 'z', true), Ok(5));
        assert_eq!(t.insert_from(9, 'z', true), Ok(10));
        assert_eq!(t.insert_from(16, 'z', true), Err(Errno::EINVAL));
    }

    #[test]
    fn ranges() {
        let mut t = FdTable::new(16);
        for c in ['a', 'b', 'c', 'd', 'e'] {
            t.insert(c, false).unwrap();
        }
        t.cloexec_range(3, i32::MAX);
        assert!(t.get(4).unwrap().cloexec && !t.get(2).unwrap().cloexec);
        assert_eq!(t.remove_range(1, 3), ['b', 'c', 'd']);
        assert_eq!(t.len(), 2);
        t.set_limit(1);
        assert_eq!(t.insert('q', false), Err(Errno::EMFILE));
    }
}
