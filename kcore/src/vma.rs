//! Virtual memory areas of a user address space.
//!
//! [`VmaMap`] is the one bookkeeping structure for what a process may touch:
//! non-overlapping, page-aligned `[start, end)` ranges with protections and
//! a kind (for reports such as `/proc/self/maps` and fault messages). The
//! kernel consults it on every page fault (demand paging) and updates it on
//! `mmap`, `munmap`, `mprotect`, `brk` and `mremap`; page tables follow it.
//! Splitting on partial unmaps/protects and hole handling follow Linux.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use crate::elf::PAGE;

/// Access rights (`PROT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prot {
    /// PROT_READ.
    pub read: bool,
    /// PROT_WRITE.
    pub write: bool,
    /// PROT_EXEC.
    pub exec: bool,
}

impl Prot {
    /// PROT_NONE.
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
        exec: false,
    };
    /// Read-only.
    pub const R: Prot = Prot {
        read: true,
        write: false,
        exec: false,
    };
    /// Read-write.
    pub const RW: Prot = Prot {
        read: true,
        write: true,
        exec: false,
    };
    /// Read-execute.
    pub const RX: Prot = Prot {
        read: true,
        write: false,
        exec: true,
    };

    /// From the `PROT_*` bits of mmap/mprotect; `None` if unknown bits
    /// are set.
    pub fn from_bits(bits: u64) -> Option<Self> {
        if bits & !0x7 != 0 {
            return None;
        }
        Some(Self {
            read: bits & 1 != 0,
            write: bits & 2 != 0,
            exec: bits & 4 != 0,
        })
    }

    /// Whether an access is allowed.
    pub fn allows(self, write: bool, exec: bool) -> bool {
        if exec {
            self.exec
        } else if write {
            self.write
        } else {
            self.read || self.write || self.exec
        }
    }
}

/// How a faulting access is named in reports: "instruction fetch from",
/// "write to" or "read from" (an address follows).
pub fn access_name(write: bool, exec: bool) -> &'static str {
    if exec {
        "instruction fetch from"
    } else if write {
        "write to"
    } else {
        "read from"
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |b: bool, ch: char| if b { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.exec, 'x')
        )
    }
}

/// What an area is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A segment of the executable.
    Image,
    /// The `brk` heap.
    Heap,
    /// The main thread's stack.
    Stack,
    /// An anonymous `mmap`.
    Anon,
    /// An anonymous `mmap` made with MAP_STACK or MAP_GROWSDOWN (a thread's
    /// stack): never given 2 MiB pages, which would spend 2 MiB on a stack
    /// that touches a few KiB (Linux decided the same in 6.7).
    AnonStack,
    /// A file `mmap`.
    File(FileMap),
}

/// Which file an area maps, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMap {
    /// The file's inode.
    pub ino: u64,
    /// File offset minus virtual address (wrapping): the byte at address
    /// `a` is file byte `a + delta`. Splitting an area keeps it valid.
    pub delta: u64,
    /// MAP_SHARED (writes reach the file) rather than MAP_PRIVATE.
    pub shared: bool,
    /// Whether the area may ever be made writable (for MAP_SHARED: the
    /// file was opened for writing; mprotect refuses PROT_WRITE otherwise).
    pub may_write: bool,
}

impl FileMap {
    /// The file offset of address `addr`.
    pub fn offset_of(&self, addr: u64) -> u64 {
        addr.wrapping_add(self.delta)
    }

    /// The same mapping moved to start at `to` instead of `from`.
    pub fn moved(self, from: u64, to: u64) -> Self {
        Self {
            delta: self.delta.wrapping_add(from).wrapping_sub(to),
            ..self
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Image => "[image]",
            Kind::Heap => "[heap]",
            Kind::Stack => "[stack]",
            Kind::Anon => "[anon]",
            Kind::AnonStack => "[anon stack]",
            Kind::File(_) => "[file]",
        })
    }
}

/// One area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vma {
    /// First byte (page-aligned).
    pub start: u64,
    /// One past the last byte (page-aligned).
    pub end: u64,
    /// Access rights.
    pub prot: Prot,
    /// Purpose.
    pub kind: Kind,
}

/// Errors from the map's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmaError {
    /// Not page-aligned, empty, or wrapping.
    BadRange,
    /// The range overlaps an existing area.
    Overlap,
    /// Part of the range is not mapped (mprotect's ENOMEM).
    Hole,
    /// The change would make more than [`MAX_AREAS`] areas (ENOMEM).
    TooMany,
}

/// Most areas one address space may have: Linux's default
/// `vm.max_map_count`. Each costs the kernel memory a program cannot
/// otherwise bound (alternating protections split one area per page).
pub const MAX_AREAS: usize = 65_530;

/// The areas of one address space.
#[derive(Debug, Clone, Default)]
pub struct VmaMap {
    areas: BTreeMap<u64, Vma>,
}

fn check(start: u64, end: u64) -> Result<(), VmaError> {
    if start >= end || !start.is_multiple_of(PAGE) || !end.is_multiple_of(PAGE) {
        return Err(VmaError::BadRange);
    }
    Ok(())
}

impl VmaMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The area containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.areas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    /// All areas in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.areas.values()
    }

    /// Areas intersecting `[start, end)`.
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        let first = self
            .areas
            .range(..start)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.end > start);
        first
            .into_iter()
            .chain(self.areas.range(start..end).map(|(_, v)| v))
    }

    /// Whether `[start, end)` is entirely unmapped.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).next().is_none()
    }

    /// Number of areas.
    pub fn len(&self) -> usize {
        self.areas.len()
    }

    /// Whether there are no areas.
    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }

    /// Fails with [`VmaError::TooMany`] unless `more` areas can be added.
    fn room_for(&self, more: usize) -> Result<(), VmaError> {
        if self.areas.len() + more > MAX_AREAS {
            return Err(VmaError::TooMany);
        }
        Ok(())
    }

    /// Adds an area; fails if it overlaps one or the map is full.
    pub fn insert(&mut self, vma: Vma) -> Result<(), VmaError> {
        check(vma.start, vma.end)?;
        if !self.is_free(vma.start, vma.end) {
            return Err(VmaError::Overlap);
        }
        self.room_for(1)?;
        self.areas.insert(vma.start, vma);
        Ok(())
    }

    /// How many areas splitting at `start` and `end` would add.
    fn splits(&self, start: u64, end: u64) -> usize {
        [start, end]
            .iter()
            .filter(|&&at| self.find(at).is_some_and(|v| v.start != at))
            .count()
    }

    /// Splits areas so that `at` is a boundary.
    fn split_at(&mut self, at: u64) {
        let Some(v) = self.find(at).copied() else {
            return;
        };
        if v.start == at {
            return;
        }
        self.areas.insert(v.start, Vma { end: at, ..v });
        self.areas.insert(at, Vma { start: at, ..v });
    }

    /// Removes `[start, end)` (holes are fine, as for munmap). Returns the
    /// pieces that were mapped, so their pages and files can be released.
    pub fn unmap(&mut self, start: u64, end: u64) -> Result<Vec<Vma>, VmaError> {
        check(start, end)?;
        self.room_for(self.splits(start, end))?;
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.areas.range(start..end).map(|(k, _)| *k).collect();
        let mut removed = Vec::new();
        for k in keys {
            if let Some(v) = self.areas.remove(&k) {
                removed.push(v);
            }
        }
        Ok(removed)
    }

    /// Changes the protection of `[start, end)`, which must be fully
    /// mapped. Returns the sub-ranges changed with their old protection.
    pub fn protect(
        &mut self,
        start: u64,
        end: u64,
        prot: Prot,
    ) -> Result<Vec<(u64, u64, Prot)>, VmaError> {
        check(start, end)?;
        let mut cursor = start;
        for v in self.overlapping(start, end) {
            if v.start > cursor {
                return Err(VmaError::Hole);
            }
            cursor = v.end;
        }
        if cursor < end {
            return Err(VmaError::Hole);
        }
        self.room_for(self.splits(start, end))?;
        self.split_at(start);
        self.split_at(end);
        let mut changed = Vec::new();
        for v in self.areas.range_mut(start..end).map(|(_, v)| v) {
            changed.push((v.start, v.end, v.prot));
            v.prot = prot;
        }
        self.merge_around(start, end);
        Ok(changed)
    }

    /// Merges neighbours with identical protection and kind around
    /// `[start, end)` so repeated mprotects do not fragment the map.
    fn merge_around(&mut self, start: u64, end: u64) {
        let first = self
            .areas
            .range(..start)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(start);
        let keys: Vec<u64> = self.areas.range(first..=end).map(|(k, _)| *k).collect();
        let mut prev: Option<u64> = None;
        for k in keys {
            let Some(cur) = self.areas.get(&k).copied() else {
                continue;
            };
            if let Some(pk) = prev
                && let Some(p) = self.areas.get(&pk).copied()
                && p.end == cur.start
                && p.prot == cur.prot
                && p.kind == cur.kind
            {
                self.areas.remove(&k);
                self.areas.insert(pk, Vma { end: cur.end, ..p });
                continue;
            }
            prev = Some(k);
        }
    }

    /// The highest free, page-aligned range of `len` bytes inside
    /// `[low, high)` (mmap's top-down placement).
    pub fn find_free(&self, len: u64, low: u64, high: u64) -> Option<u64> {
        if len == 0 || !len.is_multiple_of(PAGE) || high <= low {
            return None;
        }
        let mut top = high & !(PAGE - 1);
        for v in self.areas.range(..top).rev().map(|(_, v)| v) {
            if v.end <= top && top - v.end >= len && top - len >= low {
                return Some(top - len);
            }
            top = top.min(v.start);
            if top < low.saturating_add(len) {
                return None;
            }
        }
        (top >= low.checked_add(len)?).then(|| top - len)
    }

    /// Extends the area ending at `old_end` to `new_end` if the space after
    /// it is free (brk and mremap growth).
    pub fn grow(&mut self, old_end: u64, new_end: u64) -> Result<(), VmaError> {
        check(old_end, new_end)?;
        let v = self
            .find(old_end - 1)
            .copied()
            .filter(|v| v.end == old_end)
            .ok_or(VmaError::Hole)?;
        if !self.is_free(old_end, new_end) {
            return Err(VmaError::Overlap);
        }
        self.areas.insert(v.start, Vma { end: new_end, ..v });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: u64 = PAGE;

    fn anon(start: u64, end: u64) -> Vma {
        Vma {
            start,
            end,
            prot: Prot::RW,
            kind: Kind::Anon,
        }
    }

    #[test]
    fn access_names() {
        assert_eq!(access_name(false, true), "instruction fetch from");
        assert_eq!(access_name(true, false), "write to");
        assert_eq!(access_name(false, false), "read from");
    }

    #[test]
    fn the_number_of_areas_is_bounded() {
        let mut m = VmaMap::new();
        // Areas of one page with a page of gap: they never merge.
        for i in 0..MAX_AREAS as u64 {
            m.insert(anon((2 * i + 16) * P, (2 * i + 17) * P)).unwrap();
        }
        assert_eq!(m.len(), MAX_AREAS);
        let past = (2 * MAX_AREAS as u64 + 16) * P;
        assert_eq!(m.insert(anon(past, past + P)), Err(VmaError::TooMany));
        // Unmapping whole areas is always possible; then there is room.
        assert_eq!(m.unmap(16 * P, 17 * P).map(|v| v.len()), Ok(1));
        m.insert(anon(past, past + 4 * P)).unwrap();
        // Splitting the big one in the middle would need two more areas.
        assert_eq!(
            m.protect(past + P, past + 2 * P, Prot::R),
            Err(VmaError::TooMany)
        );
        assert_eq!(m.unmap(past + P, past + 2 * P), Err(VmaError::TooMany));
        // Changing it whole needs none.
        assert!(m.protect(past, past + 4 * P, Prot::R).is_ok());
        assert_eq!(m.len(), MAX_AREAS);
    }

    #[test]
    fn insert_find_and_overlap() {
        let mut m = VmaMap::new();
        m.insert(anon(0x10 * P, 0x20 * P)).unwrap();
        assert_eq!(m.insert(anon(0x1f * P, 0x30 * P)), Err(VmaError::Overlap));
        assert_eq!(m.insert(anon(0x5 * P, 0x11 * P)), Err(VmaError::Overlap));
        assert_eq!(m.insert(anon(0x5 * P, 0x5 * P)), Err(VmaError::BadRange));
        assert_eq!(
            m.insert(anon(0x5 * P + 1, 0x6 * P)),
            Err(VmaError::BadRange)
        );
        m.insert(anon(0x20 * P, 0x21 * P)).unwrap();
        assert_eq!(m.find(0x10 * P).unwrap().start, 0x10 * P);
        assert_eq!(m.find(0x20 * P - 1).unwrap().start, 0x10 * P);
        assert_eq!(m.find(0x20 * P).unwrap().start, 0x20 * P);
        assert!(m.find(0x21 * P).is_none());
        assert!(m.find(0).is_none());
    }

    #[test]
    fn unmap_splits_and_tolerates_holes() {
        let mut m = VmaMap::new();
        m.insert(anon(0x10 * P, 0x20 * P)).unwrap();
        m.insert(anon(0x30 * P, 0x40 * P)).unwrap();
        let removed: Vec<(u64, u64)> = m
            .unmap(0x18 * P, 0x38 * P)
            .unwrap()
            .iter()
            .map(|v| (v.start, v.end))
            .collect();
        assert_eq!(removed, [(0x18 * P, 0x20 * P), (0x30 * P, 0x38 * P)]);
        let left: Vec<(u64, u64)> = m.iter().map(|v| (v.start, v.end)).collect();
        assert_eq!(left, [(0x10 * P, 0x18 * P), (0x38 * P, 0x40 * P)]);
        // A hole in the middle of one area.
        m.unmap(0x12 * P, 0x13 * P).unwrap();
        assert_eq!(m.iter().count(), 3);
        assert_eq!(m.unmap(0, 0x1000 * P).unwrap().len(), 3);
        assert_eq!(m.iter().count(), 0);
    }

    #[test]
    fn file_areas_keep_their_offsets_when_split_and_moved() {
        let mut m = VmaMap::new();
        let f = FileMap {
            ino: 7,
            delta: (0x100 * P).wrapping_sub(0x10 * P),
            shared: false,
            may_write: true,
        };
        m.insert(Vma {
            start: 0x10 * P,
            end: 0x20 * P,
            prot: Prot::R,
            kind: Kind::File(f),
        })
        .unwrap();
        m.unmap(0x14 * P, 0x15 * P).unwrap();
        let Kind::File(right) = m.find(0x18 * P).unwrap().kind else {
            panic!("file area")
        };
        assert_eq!(right.offset_of(0x18 * P), 0x108 * P);
        let moved = right.moved(0x18 * P, 0x50 * P);
        assert_eq!(moved.offset_of(0x50 * P), 0x108 * P);
        assert_eq!(Kind::File(f).to_string(), "[file]");
    }

    #[test]
    fn protect_requires_full_coverage_and_merges() {
        let mut m = VmaMap::new();
        m.insert(anon(0x10 * P, 0x20 * P)).unwrap();
        assert_eq!(m.protect(0x18 * P, 0x28 * P, Prot::R), Err(VmaError::Hole));
        let changed = m.protect(0x12 * P, 0x14 * P, Prot::R).unwrap();
        assert_eq!(changed, [(0x12 * P, 0x14 * P, Prot::RW)]);
        assert_eq!(m.iter().count(), 3);
        assert_eq!(m.find(0x13 * P).unwrap().prot, Prot::R);
        m.protect(0x12 * P, 0x14 * P, Prot::RW).unwrap();
        assert_eq!(m.iter().count(), 1, "restoring the protection merges back");
    }

    #[test]
    fn find_free_is_top_down() {
        let mut m = VmaMap::new();
        assert_eq!(m.find_free(2 * P, 0x10 * P, 0x100 * P), Some(0xfe * P));
        m.insert(anon(0xf0 * P, 0x100 * P)).unwrap();
        assert_eq!(m.find_free(2 * P, 0x10 * P, 0x100 * P), Some(0xee * P));
        m.insert(anon(0x11 * P, 0xf0 * P)).unwrap();
        assert_eq!(m.find_free(2 * P, 0x10 * P, 0x100 * P), None);
        assert_eq!(m.find_free(P, 0x10 * P, 0x100 * P), Some(0x10 * P));
        assert_eq!(m.find_free(0, 0, 0x100 * P), None);
    }

    #[test]
    fn grow_in_place() {
        let mut m = VmaMap::new();
        m.insert(Vma {
            start: 0x10 * P,
            end: 0x11 * P,
            prot: Prot::RW,
            kind: Kind::Heap,
        })
        .unwrap();
        m.insert(anon(0x20 * P, 0x21 * P)).unwrap();
        m.grow(0x11 * P, 0x18 * P).unwrap();
        assert_eq!(m.find(0x17 * P).unwrap().kind, Kind::Heap);
        assert_eq!(m.grow(0x18 * P, 0x22 * P), Err(VmaError::Overlap));
        assert_eq!(m.grow(0x30 * P, 0x31 * P), Err(VmaError::Hole));
    }

    #[test]
    fn prot_bits() {
        assert_eq!(Prot::from_bits(3), Some(Prot::RW));
        assert_eq!(Prot::from_bits(8), None);
        assert!(Prot::R.allows(false, false));
        assert!(!Prot::R.allows(true, false));
        assert!(!Prot::RW.allows(false, true));
        assert!(!Prot::NONE.allows(false, false));
        assert_eq!(Prot::RX.to_string(), "r-x");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Map(u64, u64, u8),
        Unmap(u64, u64),
        Protect(u64, u64, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        let range = (0u64..64, 1u64..16);
        prop_oneof![
            (range.clone(), 0u8..8).prop_map(|((s, l), p)| Op::Map(s, l, p)),
            range.clone().prop_map(|(s, l)| Op::Unmap(s, l)),
            (range, 0u8..8).prop_map(|((s, l), p)| Op::Protect(s, l, p)),
        ]
    }

    proptest! {
        /// The map agrees with a page-by-page model after any sequence of
        /// operations, and its areas never overlap.
        #[test]
        fn matches_a_page_model(ops in proptest::collection::vec(op(), 1..60)) {
            let mut m = VmaMap::new();
            let mut model: [Option<u8>; 80] = [None; 80];
            for op in ops {
                match op {
                    Op::Map(s, l, p) => {
                        let prot = Prot::from_bits(u64::from(p)).unwrap();
                        let free = (s..s + l).all(|i| model[i as usize].is_none());
                        let r = m.insert(Vma { start: s * P, end: (s + l) * P, prot, kind: Kind::Anon });
                        prop_assert_eq!(r.is_ok(), free);
                        if free { for i in s..s + l { model[i as usize] = Some(p); } }
                    }
                    Op::Unmap(s, l) => {
                        m.unmap(s * P, (s + l) * P).unwrap();
                        for i in s..s + l { model[i as usize] = None; }
                    }
                    Op::Protect(s, l, p) => {
                        let prot = Prot::from_bits(u64::from(p)).unwrap();
                        let full = (s..s + l).all(|i| model[i as usize].is_some());
                        let r = m.protect(s * P, (s + l) * P, prot);
                        prop_assert_eq!(r.is_ok(), full);
                        if full { for i in s..s + l { model[i as usize] = Some(p); } }
                    }
                }
                for (i, want) in model.iter().enumerate() {
                    let got = m.find(i as u64 * P).map(|v| {
                        (v.prot.read as u8) | ((v.prot.write as u8) << 1) | ((v.prot.exec as u8) << 2)
                    });
                    prop_assert_eq!(got, *want, "page {}", i);
                }
                let mut last_end = 0;
                for v in m.iter() {
                    prop_assert!(v.start >= last_end && v.start < v.end);
                    last_end = v.end;
                }
            }
        }
    }
}
