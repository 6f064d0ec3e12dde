//! The driver side of a virtio split virtqueue (virtio 1.x, section 2.7),
//! over any [`Dma`] memory, so it is tested on the host against a fake
//! device and fuzzed against a hostile one.
//!
//! The driver keeps its own record of every chain it handed out; it never
//! reads descriptors back from shared memory. From the device it reads only
//! the used ring, and checks every entry: the ring index may not run ahead
//! by more than the queue size, an id must name a chain that is in flight,
//! and a length may not exceed the chain's device-writable bytes. A device
//! that breaks these rules gets its entry refused with [`Error`] (the
//! caller resets the device); it can never make the driver hand the same
//! buffer out twice or read outside a buffer.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Memory shared with the device, addressed by device (physical) address.
pub trait Dma {
    /// Reads a little-endian u16.
    fn read_u16(&self, addr: u64) -> u16;
    /// Writes a little-endian u16.
    fn write_u16(&mut self, addr: u64, v: u16);
    /// Reads a little-endian u32.
    fn read_u32(&self, addr: u64) -> u32;
    /// Writes a little-endian u32.
    fn write_u32(&mut self, addr: u64, v: u32);
    /// Writes a little-endian u64.
    fn write_u64(&mut self, addr: u64, v: u64);
    /// Orders the writes before it against the ones after it, as seen by
    /// the device.
    fn fence(&self);
}

/// Where the three parts of a queue live (device addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Entries (a power of two, at most 32768).
    pub size: u16,
    /// Descriptor table: 16 bytes per entry, 16-byte aligned.
    pub desc: u64,
    /// Available ring: 6 + 2 × size bytes, 2-byte aligned.
    pub avail: u64,
    /// Used ring: 6 + 8 × size bytes, 4-byte aligned.
    pub used: u64,
}

impl Layout {
    /// Bytes of the descriptor table.
    pub fn desc_bytes(size: u16) -> u64 {
        16 * u64::from(size)
    }
    /// Bytes of the available ring.
    pub fn avail_bytes(size: u16) -> u64 {
        6 + 2 * u64::from(size)
    }
    /// Bytes of the used ring.
    pub fn used_bytes(size: u16) -> u64 {
        6 + 8 * u64::from(size)
    }
}

/// One buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buf {
    /// Device address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// The device writes it (receive buffers) rather than reads it.
    pub device_writes: bool,
}

/// Errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The size is not a power of two in 1..=32768, or a part is
    /// misaligned.
    BadLayout,
    /// Not enough free descriptors for the chain.
    Full,
    /// An empty chain, or a zero-length buffer.
    Empty,
    /// The device's used index ran ahead of what is in flight.
    UsedIndex {
        /// The index the device wrote.
        device: u16,
        /// The last index consumed.
        consumed: u16,
    },
    /// The device returned an id that is not the head of a chain in
    /// flight.
    BadId(u32),
    /// The device claims to have written more than the chain holds.
    BadLen {
        /// Chain head.
        id: u16,
        /// Claimed length.
        len: u32,
        /// Device-writable bytes of the chain.
        max: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadLayout => f.write_str("bad queue layout"),
            Error::Full => f.write_str("queue full"),
            Error::Empty => f.write_str("empty buffer chain"),
            Error::UsedIndex { device, consumed } => write!(
                f,
                "device used index {device} is more than a queue ahead of {consumed}"
            ),
            Error::BadId(id) => write!(f, "device returned id {id}, which is not in flight"),
            Error::BadLen { id, len, max } => write!(
                f,
                "device wrote {len} bytes into chain {id}, which holds {max}"
            ),
        }
    }
}

/// A chain the device has finished with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// The chain's head descriptor (as returned by [`SplitQueue::add`]).
    pub head: u16,
    /// Bytes the device wrote into the chain's writable buffers.
    pub len: u32,
    /// The caller's token given to [`SplitQueue::add`].
    pub token: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// Descriptors in the chain (head first).
    count: u16,
    /// Device-writable bytes.
    writable: u32,
    token: u64,
}

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const AVAIL_F_NO_INTERRUPT: u16 = 1;
const USED_F_NO_NOTIFY: u16 = 1;

/// The driver's view of one split virtqueue.
#[derive(Debug)]
pub struct SplitQueue {
    layout: Layout,
    /// Free descriptor indices (a stack).
    free: Vec<u16>,
    /// Chains in flight by head index; the other descriptors of a chain
    /// are recorded in `links`.
    in_flight: Vec<Option<InFlight>>,
    /// For each descriptor of a chain in flight, the next one.
    links: Vec<u16>,
    avail_idx: u16,
    last_used: u16,
}

impl SplitQueue {
    /// A queue over `layout`; call [`SplitQueue::init`] before giving the
    /// addresses to the device.
    pub fn new(layout: Layout) -> Result<Self, Error> {
        let n = layout.size;
        if n == 0 || !n.is_power_of_two() || n > 32768 {
            return Err(Error::BadLayout);
        }
        if !layout.desc.is_multiple_of(16)
            || !layout.avail.is_multiple_of(2)
            || !layout.used.is_multiple_of(4)
        {
            return Err(Error::BadLayout);
        }
        Ok(Self {
            layout,
            free: (0..n).rev().collect(),
            in_flight: vec![None; usize::from(n)],
            links: vec![0; usize::from(n)],
            avail_idx: 0,
            last_used: 0,
        })
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Zeroes the rings.
    pub fn init(&self, mem: &mut impl Dma) {
        let n = u64::from(self.layout.size);
        for i in 0..n * 8 {
            mem.write_u16(self.layout.desc + 2 * i, 0);
        }
        for i in 0..3 + n {
            mem.write_u16(self.layout.avail + 2 * i, 0);
        }
        for i in 0..3 + 4 * n {
            mem.write_u16(self.layout.used + 2 * i, 0);
        }
        mem.fence();
    }

    /// Free descriptors.
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    /// Chains in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().filter(|c| c.is_some()).count()
    }

    /// Puts a chain of buffers on the available ring and returns its head.
    /// The device sees it after [`SplitQueue::add`] returns (the caller
    /// then notifies the device if [`SplitQueue::should_notify`]).
    pub fn add(&mut self, mem: &mut impl Dma, bufs: &[Buf], token: u64) -> Result<u16, Error> {
        if bufs.is_empty() || bufs.iter().any(|b| b.len == 0) {
            return Err(Error::Empty);
        }
        if bufs.len() > self.free.len() {
            return Err(Error::Full);
        }
        let ids: Vec<u16> = (0..bufs.len()).filter_map(|_| self.free.pop()).collect();
        let mut writable = 0u32;
        for (i, (b, &id)) in bufs.iter().zip(&ids).enumerate() {
            let d = self.layout.desc + 16 * u64::from(id);
            let mut flags = 0;
            if b.device_writes {
                flags |= DESC_F_WRITE;
                writable = writable.saturating_add(b.len);
            }
            let next = ids.get(i + 1).copied();
            if let Some(n) = next {
                flags |= DESC_F_NEXT;
                self.links[usize::from(id)] = n;
            }
            mem.write_u64(d, b.addr);
            mem.write_u32(d + 8, b.len);
            mem.write_u16(d + 12, flags);
            mem.write_u16(d + 14, next.unwrap_or(0));
        }
        let head = ids[0];
        self.in_flight[usize::from(head)] = Some(InFlight {
            count: ids.len() as u16,
            writable,
            token,
        });
        let slot = self.avail_idx % self.layout.size;
        mem.write_u16(self.layout.avail + 4 + 2 * u64::from(slot), head);
        // The entry must be visible before the index that publishes it.
        mem.fence();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_u16(self.layout.avail + 2, self.avail_idx);
        mem.fence();
        Ok(head)
    }

    /// Whether the device asked to be notified of new buffers.
    pub fn should_notify(&self, mem: &impl Dma) -> bool {
        mem.read_u16(self.layout.used) & USED_F_NO_NOTIFY == 0
    }

    /// Asks the device not to interrupt (`true`) or to interrupt again.
    pub fn suppress_interrupts(&self, mem: &mut impl Dma, off: bool) {
        mem.write_u16(
            self.layout.avail,
            if off { AVAIL_F_NO_INTERRUPT } else { 0 },
        );
        mem.fence();
    }

    /// Whether the device has returned chains not yet taken.
    pub fn has_used(&self, mem: &impl Dma) -> bool {
        mem.read_u16(self.layout.used + 2) != self.last_used
    }

    /// Takes the next chain the device finished with, if any. An `Err`
    /// means the device broke the protocol (reset it); the queue's own
    /// state stays consistent.
    pub fn pop_used(&mut self, mem: &mut impl Dma) -> Option<Result<Used, Error>> {
        let device = mem.read_u16(self.layout.used + 2);
        if device == self.last_used {
            return None;
        }
        let ahead = device.wrapping_sub(self.last_used);
        if usize::from(ahead) > self.in_flight() {
            return Some(Err(Error::UsedIndex {
                device,
                consumed: self.last_used,
            }));
        }
        // Read the entry only after seeing the index.
        mem.fence();
        let slot = self.last_used % self.layout.size;
        let e = self.layout.used + 4 + 8 * u64::from(slot);
        let id = mem.read_u32(e);
        let len = mem.read_u32(e + 4);
        let Some(head) = u16::try_from(id).ok().filter(|&h| h < self.layout.size) else {
            return Some(Err(Error::BadId(id)));
        };
        let Some(chain) = self.in_flight[usize::from(head)] else {
            return Some(Err(Error::BadId(id)));
        };
        if len > chain.writable {
            return Some(Err(Error::BadLen {
                id: head,
                len,
                max: chain.writable,
            }));
        }
        self.last_used = self.last_used.wrapping_add(1);
        self.in_flight[usize::from(head)] = None;
        let mut d = head;
        for i in 0..chain.count {
            self.free.push(d);
            if i + 1 < chain.count {
                d = self.links[usize::from(d)];
            }
        }
        Some(Ok(Used {
            head,
            len,
            token: chain.token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Byte-addressed fake memory.
    #[derive(Default)]
    pub struct Mem(BTreeMap<u64, u8>);

    impl Mem {
        fn get(&self, a: u64) -> u8 {
            self.0.get(&a).copied().unwrap_or(0)
        }
        fn set(&mut self, a: u64, v: &[u8]) {
            for (i, b) in v.iter().enumerate() {
                self.0.insert(a + i as u64, *b);
            }
        }
    }

    impl Dma for Mem {
        fn read_u16(&self, a: u64) -> u16 {
            u16::from_le_bytes([self.get(a), self.get(a + 1)])
        }
        fn write_u16(&mut self, a: u64, v: u16) {
            self.set(a, &v.to_le_bytes());
        }
        fn read_u32(&self, a: u64) -> u32 {
            u32::from_le_bytes([
                self.get(a),
                self.get(a + 1),
                self.get(a + 2),
                self.get(a + 3),
            ])
        }
        fn write_u32(&mut self, a: u64, v: u32) {
            self.set(a, &v.to_le_bytes());
        }
        fn write_u64(&mut self, a: u64, v: u64) {
            self.set(a, &v.to_le_bytes());
        }
        fn fence(&self) {}
    }

    const L: Layout = Layout {
        size: 4,
        desc: 0x1000,
        avail: 0x2000,
        used: 0x3000,
    };

    /// A descriptor as the device reads it: address, length, flags.
    type Desc = (u64, u32, u16);

    /// The device side: takes the next available chain, walking the
    /// descriptors the driver wrote.
    fn device_take(m: &Mem, seen: &mut u16) -> Option<(u16, Vec<Desc>)> {
        if m.read_u16(L.avail + 2) == *seen {
            return None;
        }
        let head = m.read_u16(L.avail + 4 + 2 * u64::from(*seen % L.size));
        *seen = seen.wrapping_add(1);
        let mut out = Vec::new();
        let mut d = head;
        loop {
            let a = L.desc + 16 * u64::from(d);
            let addr = u64::from(m.read_u32(a)) | (u64::from(m.read_u32(a + 4)) << 32);
            let flags = m.read_u16(a + 12);
            out.push((addr, m.read_u32(a + 8), flags));
            if flags & DESC_F_NEXT == 0 {
                break;
            }
            d = m.read_u16(a + 14);
        }
        Some((head, out))
    }

    fn device_return(m: &mut Mem, used_idx: &mut u16, id: u32, len: u32) {
        let e = L.used + 4 + 8 * u64::from(*used_idx % L.size);
        m.write_u32(e, id);
        m.write_u32(e + 4, len);
        *used_idx = used_idx.wrapping_add(1);
        m.write_u16(L.used + 2, *used_idx);
    }

    #[test]
    fn chains_go_round_trip_and_descriptors_are_reused() {
        let mut m = Mem::default();
        let mut q = SplitQueue::new(L).unwrap();
        q.init(&mut m);
        let (mut seen, mut used) = (0u16, 0u16);
        for round in 0..10u64 {
            let h = q
                .add(
                    &mut m,
                    &[
                        Buf {
                            addr: 0x10_000,
                            len: 12,
                            device_writes: false,
                        },
                        Buf {
                            addr: 0x20_000 + round,
                            len: 1500,
                            device_writes: true,
                        },
                    ],
                    round,
                )
                .unwrap();
            assert_eq!(q.free_descriptors(), 2);
            let (head, descs) = device_take(&m, &mut seen).unwrap();
            assert_eq!(head, h);
            assert_eq!(descs[0], (0x10_000, 12, DESC_F_NEXT));
            assert_eq!(descs[1], (0x20_000 + round, 1500, DESC_F_WRITE));
            assert!(q.pop_used(&mut m).is_none());
            device_return(&mut m, &mut used, u32::from(h), 700);
            assert_eq!(
                q.pop_used(&mut m),
                Some(Ok(Used {
                    head: h,
                    len: 700,
                    token: round
                }))
            );
            assert_eq!(q.free_descriptors(), 4);
        }
        assert!(q.should_notify(&m));
    }

    #[test]
    fn full_and_empty() {
        let mut m = Mem::default();
        let mut q = SplitQueue::new(L).unwrap();
        let b = Buf {
            addr: 1,
            len: 1,
            device_writes: true,
        };
        assert_eq!(q.add(&mut m, &[b; 5], 0), Err(Error::Full));
        assert_eq!(q.add(&mut m, &[], 0), Err(Error::Empty));
        assert_eq!(q.add(&mut m, &[Buf { len: 0, ..b }], 0), Err(Error::Empty));
        for i in 0..4 {
            q.add(&mut m, &[b], i).unwrap();
        }
        assert_eq!(q.add(&mut m, &[b], 9), Err(Error::Full));
        assert!(SplitQueue::new(Layout { size: 3, ..L }).is_err());
        assert!(SplitQueue::new(Layout { desc: 8, ..L }).is_err());
    }

    #[test]
    fn hostile_device_entries_are_refused() {
        let mut m = Mem::default();
        let mut q = SplitQueue::new(L).unwrap();
        q.init(&mut m);
        let h = q
            .add(
                &mut m,
                &[Buf {
                    addr: 5,
                    len: 100,
                    device_writes: true,
                }],
                7,
            )
            .unwrap();
        let mut used = 0u16;
        // Index far ahead of what is in flight.
        m.write_u16(L.used + 2, 3);
        assert!(matches!(
            q.pop_used(&mut m),
            Some(Err(Error::UsedIndex { .. }))
        ));
        m.write_u16(L.used + 2, 0);
        // An id that was never handed out, then one out of range.
        device_return(&mut m, &mut used, u32::from(h) + 1, 10);
        assert_eq!(
            q.pop_used(&mut m),
            Some(Err(Error::BadId(u32::from(h) + 1)))
        );
        used = 0;
        device_return(&mut m, &mut used, 70_000, 10);
        assert_eq!(q.pop_used(&mut m), Some(Err(Error::BadId(70_000))));
        // Too long.
        used = 0;
        device_return(&mut m, &mut used, u32::from(h), 101);
        assert!(matches!(
            q.pop_used(&mut m),
            Some(Err(Error::BadLen { .. }))
        ));
        // The honest answer still works, once.
        used = 0;
        device_return(&mut m, &mut used, u32::from(h), 100);
        assert_eq!(q.pop_used(&mut m).unwrap().unwrap().token, 7);
        device_return(&mut m, &mut used, u32::from(h), 100);
        assert!(matches!(q.pop_used(&mut m), Some(Err(_))));
        assert_eq!(q.free_descriptors(), 4);
    }
}

/// A hostile-device exercise shared by the fuzz target (`fuzz/`, feature
/// `fuzzing`) and the corpus replay test: the input alternates driver
/// operations with arbitrary device writes to the rings; the driver must
/// never panic, never return a chain that is not in flight, and never
/// lose a descriptor.
#[cfg(any(test, feature = "fuzzing"))]
pub mod hostile {
    use super::*;

    /// Flat memory holding one queue of 8 entries at 0..0x400.
    pub struct FlatMem(pub Vec<u8>);

    impl FlatMem {
        fn at(&self, a: u64, n: usize) -> &[u8] {
            let a = a as usize % (self.0.len() - n);
            &self.0[a..a + n]
        }
        fn put(&mut self, a: u64, v: &[u8]) {
            let a = a as usize % (self.0.len() - v.len());
            self.0[a..a + v.len()].copy_from_slice(v);
        }
    }

    impl Dma for FlatMem {
        fn read_u16(&self, a: u64) -> u16 {
            let b = self.at(a, 2);
            u16::from_le_bytes([b[0], b[1]])
        }
        fn write_u16(&mut self, a: u64, v: u16) {
            self.put(a, &v.to_le_bytes());
        }
        fn read_u32(&self, a: u64) -> u32 {
            let b = self.at(a, 4);
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
        fn write_u32(&mut self, a: u64, v: u32) {
            self.put(a, &v.to_le_bytes());
        }
        fn write_u64(&mut self, a: u64, v: u64) {
            self.put(a, &v.to_le_bytes());
        }
        fn fence(&self) {}
    }

    /// Runs the exercise on `data`.
    pub fn run(data: &[u8]) {
        const SIZE: u16 = 8;
        let layout = Layout {
            size: SIZE,
            desc: 0,
            avail: 0x100,
            used: 0x200,
        };
        let mut mem = FlatMem(vec![0; 0x400]);
        let Ok(mut q) = SplitQueue::new(layout) else {
            return;
        };
        q.init(&mut mem);
        let mut live: Vec<u64> = Vec::new();
        let mut token = 0u64;
        let mut it = data.iter().copied();
        while let Some(op) = it.next() {
            match op % 4 {
                0 => {
                    let n = usize::from(op / 4 % 4) + 1;
                    let len = u32::from(it.next().unwrap_or(1)) + 1;
                    let bufs: Vec<Buf> = (0..n)
                        .map(|i| Buf {
                            addr: 0x1_0000 * (i as u64 + 1),
                            len,
                            device_writes: i > 0,
                        })
                        .collect();
                    token += 1;
                    if q.add(&mut mem, &bufs, token).is_ok() {
                        live.push(token);
                    }
                }
                1 => {
                    if let Some(Ok(u)) = q.pop_used(&mut mem) {
                        let pos = live.iter().position(|&t| t == u.token);
                        assert!(pos.is_some(), "returned a chain that is not in flight");
                        if let Some(p) = pos {
                            live.swap_remove(p);
                        }
                    }
                }
                _ => {
                    // The device scribbles on the used ring.
                    let off = u64::from(it.next().unwrap_or(0)) % (6 + 8 * u64::from(SIZE));
                    let v = u32::from_le_bytes([
                        it.next().unwrap_or(0),
                        it.next().unwrap_or(0),
                        it.next().unwrap_or(0),
                        it.next().unwrap_or(0),
                    ]);
                    mem.write_u32(layout.used + (off & !1), v);
                }
            }
            assert_eq!(q.in_flight(), live.len());
            assert!(q.free_descriptors() <= usize::from(SIZE));
        }
    }
}

#[cfg(test)]
mod hostile_tests {
    #[test]
    fn fuzz_corpus_replays_cleanly() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/virtq");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("fuzz/corpus/virtq exists") {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            super::hostile::run(&data);
            n += 1;
        }
        assert!(n >= 1);
    }

    proptest::proptest! {
        #[test]
        fn hostile_device_never_breaks_the_driver(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)
        ) {
            super::hostile::run(&bytes);
        }
    }
}
