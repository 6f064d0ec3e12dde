//! The futex wait-queue table.
//!
//! Waiters are kept per futex word (its user address; one process, so the
//! address is the key) in FIFO order with the bitset they wait for.
//! [`FutexTable`] only does the bookkeeping: which threads to wake or move.
//! The kernel holds one lock around the table *and* the check of the futex
//! word's value, which is what makes FUTEX_WAIT free of lost wakeups: a
//! waker changes the word, then takes the lock to wake; a waiter takes the
//! lock, re-reads the word, and enqueues itself only if it still has the
//! expected value — so either the waiter sees the new value (EAGAIN) or it
//! is already queued when the waker looks.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// A thread id.
pub type Tid = u32;

/// FUTEX_BITSET_MATCH_ANY.
pub const MATCH_ANY: u32 = u32::MAX;

/// Waiters by futex address.
#[derive(Debug, Default, Clone)]
pub struct FutexTable {
    queues: BTreeMap<u64, VecDeque<(Tid, u32)>>,
}

impl FutexTable {
    /// An empty table, usable in statics.
    pub const EMPTY: FutexTable = FutexTable {
        queues: BTreeMap::new(),
    };

    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `tid` on `addr`, woken by wakes whose bitset intersects
    /// `bitset` (must be non-zero).
    pub fn enqueue(&mut self, addr: u64, tid: Tid, bitset: u32) {
        self.queues
            .entry(addr)
            .or_default()
            .push_back((tid, bitset));
    }

    /// Removes `tid` from whatever queue it is in (timeout, signal, exit).
    /// Returns whether it was queued.
    pub fn remove(&mut self, tid: Tid) -> bool {
        let mut found = None;
        for (addr, q) in self.queues.iter_mut() {
            if let Some(pos) = q.iter().position(|(t, _)| *t == tid) {
                q.remove(pos);
                found = Some(*addr);
                break;
            }
        }
        if let Some(a) = found
            && self.queues.get(&a).is_some_and(VecDeque::is_empty)
        {
            self.queues.remove(&a);
        }
        found.is_some()
    }

    /// Dequeues up to `n` waiters on `addr` whose bitset matches, oldest
    /// first, and returns them.
    pub fn wake(&mut self, addr: u64, n: usize, bitset: u32) -> Vec<Tid> {
        let mut woken = Vec::new();
        if let Some(q) = self.queues.get_mut(&addr) {
            let mut i = 0;
            while i < q.len() && woken.len() < n {
                if q[i].1 & bitset != 0 {
                    if let Some((t, _)) = q.remove(i) {
                        woken.push(t);
                    }
                } else {
                    i += 1;
                }
            }
            if q.is_empty() {
                self.queues.remove(&addr);
            }
        }
        woken
    }

    /// FUTEX_REQUEUE: wakes up to `n_wake` waiters on `from` and moves up
    /// to `n_move` of the rest to `to`. Returns the woken threads and how
    /// many moved.
    pub fn requeue(
        &mut self,
        from: u64,
        to: u64,
        n_wake: usize,
        n_move: usize,
    ) -> (Vec<Tid>, usize) {
        let woken = self.wake(from, n_wake, MATCH_ANY);
        let mut moved = 0;
        if from != to {
            let mut taken = VecDeque::new();
            if let Some(q) = self.queues.get_mut(&from) {
                while moved < n_move {
                    match q.pop_front() {
                        Some(w) => {
                            taken.push_back(w);
                            moved += 1;
                        }
                        None => break,
                    }
                }
                if q.is_empty() {
                    self.queues.remove(&from);
                }
            }
            if !taken.is_empty() {
                self.queues.entry(to).or_default().extend(taken);
            }
        }
        (woken, moved)
    }

    /// Waiters queued on `addr`.
    pub fn waiters(&self, addr: u64) -> usize {
        self.queues.get(&addr).map_or(0, VecDeque::len)
    }
}

/// Decodes FUTEX_WAKE_OP's `val3`: applies the operation to `old` (the
/// value at the second address) and returns `(new value, condition met)`.
/// `None` for an unknown operation or comparison.
pub fn wake_op(encoded: u32, old: u32) -> Option<(u32, bool)> {
    let op = (encoded >> 28) & 0x7;
    let shift_arg = (encoded >> 28) & 0x8 != 0;
    let cmp = (encoded >> 24) & 0xf;
    let mut oparg = (encoded >> 12) & 0xfff;
    let cmparg = encoded & 0xfff;
    if shift_arg {
        oparg = 1u32.checked_shl(oparg)?;
    }
    let new = match op {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return None,
    };
    let (o, c) = (old as i32, cmparg as i32);
    let met = match cmp {
        0 => o == c,
        1 => o != c,
        2 => o < c,
        3 => o <= c,
        4 => o > c,
        5 => o >= c,
        _ => return None,
    };
    Some((new, met))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_wake_with_counts() {
        let mut t = FutexTable::new();
        for tid in 1..=5 {
            t.enqueue(0x1000, tid, MATCH_ANY);
        }
        assert_eq!(t.wake(0x1000, 2, MATCH_ANY), [1, 2]);
        assert_eq!(t.waiters(0x1000), 3);
        assert_eq!(t.wake(0x1000, usize::MAX, MATCH_ANY), [3, 4, 5]);
        assert_eq!(t.waiters(0x1000), 0);
        assert!(t.wake(0x2000, 1, MATCH_ANY).is_empty());
    }

    #[test]
    fn bitsets_select_waiters() {
        let mut t = FutexTable::new();
        t.enqueue(8, 1, 0b01);
        t.enqueue(8, 2, 0b10);
        t.enqueue(8, 3, 0b11);
        assert_eq!(t.wake(8, 10, 0b10), [2, 3]);
        assert_eq!(t.wake(8, 10, 0b10), Vec::<Tid>::new());
        assert_eq!(t.wake(8, 10, MATCH_ANY), [1]);
    }

    #[test]
    fn remove_on_timeout() {
        let mut t = FutexTable::new();
        t.enqueue(8, 1, MATCH_ANY);
        t.enqueue(8, 2, MATCH_ANY);
        assert!(t.remove(1));
        assert!(!t.remove(1), "a woken or timed-out waiter is gone");
        assert_eq!(t.wake(8, 10, MATCH_ANY), [2]);
    }

    #[test]
    fn requeue_moves_the_rest() {
        let mut t = FutexTable::new();
        for tid in 1..=4 {
            t.enqueue(0x10, tid, MATCH_ANY);
        }
        let (woken, moved) = t.requeue(0x10, 0x20, 1, 2);
        assert_eq!((woken, moved), (vec![1], 2));
        assert_eq!(t.waiters(0x10), 1);
        assert_eq!(t.waiters(0x20), 2);
        assert_eq!(t.wake(0x20, 10, MATCH_ANY), [2, 3]);
        let (woken, moved) = t.requeue(0x10, 0x10, 0, 5);
        assert_eq!((woken.len(), moved), (0, 0));
    }

    #[test]
    fn wake_op_decoding() {
        // FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_GT, 0): old + 1, wake2 if old > 0
        let enc = (1 << 28) | (4 << 24) | (1 << 12);
        assert_eq!(wake_op(enc, 5), Some((6, true)));
        assert_eq!(wake_op(enc, 0), Some((1, false)));
        // FUTEX_OP_SET with OPARG_SHIFT: 1 << 3
        let enc = (8 << 28) | (3 << 12);
        assert_eq!(wake_op(enc, 0), Some((8, true)));
        assert_eq!(wake_op(7 << 28, 0), None);
        assert_eq!(wake_op(9 << 24, 0), None);
    }
}
