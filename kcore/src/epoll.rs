//! The bookkeeping of an epoll instance: the interest list and which
//! registrations to report, level- or edge-triggered. The kernel supplies
//! the current readiness of each descriptor and a global I/O generation
//! counter (bumped whenever anything that can change readiness happens).
//!
//! Edge-triggered entries are reported when a readiness bit rises, or when
//! they are ready and the generation moved since they were last reported
//! (new data on an already-readable socket is an edge too). That can report
//! an edge twice for one change, never miss one, which is what runtimes
//! like mio need: they read until EAGAIN and then wait for the next edge.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::errno::Errno;

/// Event bits.
pub mod ev {
    /// Readable.
    pub const IN: u32 = 0x001;
    /// Urgent data.
    pub const PRI: u32 = 0x002;
    /// Writable.
    pub const OUT: u32 = 0x004;
    /// Error (always reported).
    pub const ERR: u32 = 0x008;
    /// Hang-up (always reported).
    pub const HUP: u32 = 0x010;
    /// Peer closed its writing half.
    pub const RDHUP: u32 = 0x2000;
    /// Wake one waiter only (accepted, meaningless with one process).
    pub const EXCLUSIVE: u32 = 1 << 28;
    /// Keep the wakeup source (accepted).
    pub const WAKEUP: u32 = 1 << 29;
    /// Disable after one report until re-armed with EPOLL_CTL_MOD.
    pub const ONESHOT: u32 = 1 << 30;
    /// Edge-triggered.
    pub const ET: u32 = 1 << 31;
}

/// `epoll_ctl` operations.
pub mod op {
    /// EPOLL_CTL_ADD.
    pub const ADD: u32 = 1;
    /// EPOLL_CTL_DEL.
    pub const DEL: u32 = 2;
    /// EPOLL_CTL_MOD.
    pub const MOD: u32 = 3;
}

/// One registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<K> {
    /// Identity of the open file it was registered for (the kernel checks
    /// the descriptor still names it).
    pub key: K,
    /// Requested events and flags.
    pub events: u32,
    /// The caller's data, returned with each event.
    pub data: u64,
    /// Readiness at the last report (edge detection).
    last: u32,
    /// Generation at the last report.
    seen_gen: u64,
    /// ONESHOT entry already reported.
    disarmed: bool,
}

/// An epoll instance's interest list, by descriptor number.
#[derive(Debug, Clone)]
pub struct Interest<K> {
    entries: BTreeMap<i32, Entry<K>>,
}

impl<K> Default for Interest<K> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
        }
    }
}

const VALID: u32 = ev::IN
    | ev::PRI
    | ev::OUT
    | ev::ERR
    | ev::HUP
    | ev::RDHUP
    | ev::EXCLUSIVE
    | ev::WAKEUP
    | ev::ONESHOT
    | ev::ET
    // EPOLLRDNORM, EPOLLRDBAND, EPOLLWRNORM, EPOLLWRBAND, EPOLLMSG.
    | 0x040
    | 0x080
    | 0x100
    | 0x200
    | 0x400;

impl<K: Clone + PartialEq> Interest<K> {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registrations.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// epoll_ctl: ADD (EEXIST if present), MOD (ENOENT if absent), DEL.
    pub fn ctl(&mut self, op: u32, fd: i32, key: K, events: u32, data: u64) -> Result<(), Errno> {
        if op != op::DEL && events & !VALID != 0 {
            return Err(Errno::EINVAL);
        }
        match op {
            op::ADD => {
                if self.entries.contains_key(&fd) {
                    return Err(Errno::EEXIST);
                }
                self.entries.insert(
                    fd,
                    Entry {
                        key,
                        events,
                        data,
                        last: 0,
                        seen_gen: u64::MAX,
                        disarmed: false,
                    },
                );
                Ok(())
            }
            op::MOD => {
                let e = self.entries.get_mut(&fd).ok_or(Errno::ENOENT)?;
                if e.events & ev::EXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                e.events = events;
                e.data = data;
                e.last = 0;
                e.seen_gen = u64::MAX;
                e.disarmed = false;
                Ok(())
            }
            op::DEL => self.entries.remove(&fd).map(|_| ()).ok_or(Errno::ENOENT),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The events to report now, at most `max`: `ready(fd, key)` gives a
    /// descriptor's current readiness, or `None` if the descriptor no
    /// longer names the registered file (the entry is then dropped, as
    /// Linux drops it when the file is closed).
    pub fn collect(
        &mut self,
        generation: u64,
        max: usize,
        mut ready: impl FnMut(i32, &K) -> Option<u32>,
    ) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (&fd, e) in self.entries.iter_mut() {
            if out.len() >= max {
                break;
            }
            if e.disarmed {
                continue;
            }
            let Some(now) = ready(fd, &e.key) else {
                gone.push(fd);
                continue;
            };
            let wanted = (e.events | ev::ERR | ev::HUP) & 0xffff;
            let hit = now & wanted;
            let report = if e.events & ev::ET != 0 {
                let rising = hit & !e.last != 0;
                let fresh = hit != 0 && generation != e.seen_gen;
                e.last = hit;
                rising || fresh
            } else {
                hit != 0
            };
            if report {
                e.seen_gen = generation;
                if e.events & ev::ONESHOT != 0 {
                    e.disarmed = true;
                }
                out.push((hit, e.data));
            }
        }
        for fd in gone {
            self.entries.remove(&fd);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_rules() {
        let mut i = Interest::new();
        assert_eq!(i.ctl(op::ADD, 3, 'a', ev::IN, 7), Ok(()));
        assert_eq!(i.ctl(op::ADD, 3, 'a', ev::IN, 7), Err(Errno::EEXIST));
        assert_eq!(i.ctl(op::MOD, 4, 'b', ev::IN, 7), Err(Errno::ENOENT));
        assert_eq!(i.ctl(op::DEL, 4, 'b', 0, 0), Err(Errno::ENOENT));
        assert_eq!(i.ctl(op::ADD, 5, 'c', 1 << 20, 0), Err(Errno::EINVAL));
        assert_eq!(i.ctl(9, 5, 'c', ev::IN, 0), Err(Errno::EINVAL));
        assert_eq!(i.ctl(op::DEL, 3, 'a', 0, 0), Ok(()));
        assert!(i.is_empty());
    }

    #[test]
    fn level_edge_oneshot_and_closed_descriptors() {
        let mut i = Interest::new();
        i.ctl(op::ADD, 3, 'l', ev::IN | ev::OUT, 30).unwrap();
        i.ctl(op::ADD, 4, 'e', ev::IN | ev::ET, 40).unwrap();
        i.ctl(op::ADD, 5, 'o', ev::IN | ev::ONESHOT, 50).unwrap();
        let readable = |_: i32, _: &char| Some(ev::IN);
        // Everything readable: all three report.
        assert_eq!(
            i.collect(1, 10, readable),
            [(ev::IN, 30), (ev::IN, 40), (ev::IN, 50)]
        );
        // Nothing changed: level reports again, edge and oneshot do not.
        assert_eq!(i.collect(1, 10, readable), [(ev::IN, 30)]);
        // New activity (the generation moved) while still readable: the
        // edge-triggered entry reports once more.
        assert_eq!(i.collect(2, 10, readable), [(ev::IN, 30), (ev::IN, 40)]);
        // Not readable, then readable again at the same generation: a
        // rising edge.
        assert_eq!(i.collect(2, 10, |_, _| Some(0)), []);
        assert_eq!(i.collect(2, 10, readable), [(ev::IN, 30), (ev::IN, 40)]);
        // Re-arming the oneshot entry.
        i.ctl(op::MOD, 5, 'o', ev::IN | ev::ONESHOT, 51).unwrap();
        assert_eq!(i.collect(2, 1, readable), [(ev::IN, 30)], "max respected");
        assert!(i.collect(2, 10, readable).contains(&(ev::IN, 51)));
        // Errors and hang-ups are reported even if not asked for.
        assert_eq!(
            i.collect(3, 10, |fd, _| Some(if fd == 3 { ev::HUP } else { 0 })),
            [(ev::HUP, 30)]
        );
        // A descriptor that no longer names the file is dropped.
        assert_eq!(i.collect(3, 10, |fd, _| (fd != 3).then_some(0)), []);
        assert_eq!(i.len(), 2);
    }
}
