//! Random arguments: integers with their edge cases, lengths, flags,
//! descriptors and pointers (see `world` for where pointers may point).

use llmos_userland::Rng;

use crate::world::{ARENA_LEN, PAGE, SCRATCH_LEN, World, konst};

/// Integers programs get wrong: zero, signs, powers of two and their
/// neighbours, the 32-bit boundaries, AT_FDCWD.
const EDGES: &[u64] = &[
    0,
    1,
    2,
    3,
    7,
    8,
    16,
    64,
    255,
    4095,
    4096,
    4097,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    0x7fff_f000,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
    u64::MAX - 1,
    -100i64 as u64,
    -4096i64 as u64,
];

/// Lengths far beyond any buffer.
const HUGE_LENGTHS: &[u64] = &[
    1 << 20,
    16 << 20,
    1 << 30,
    1 << 31,
    1 << 40,
    1 << 47,
    u64::MAX / 2,
    u64::MAX,
];

/// Addresses the kernel must refuse: its own half (the physical-memory
/// map, the heap, the image), non-canonical ones, the top of user space,
/// page zero.
const BAD_POINTERS: &[u64] = &[
    0,
    1,
    8,
    0xfff,
    0x1_0000,
    0x7fff_ffff_f000,
    0x7fff_ffff_ffff,
    0x0000_8000_0000_0000,
    0x8000_0000_0000_0000,
    0xffff_8000_0000_0000,
    0xffff_8000_0010_0000,
    0xffff_c000_0000_0000,
    0xffff_ffff_8020_0000,
    0xffff_ffff_8020_1003,
    0xffff_ffff_ffff_f000,
    u64::MAX,
];

/// Descriptor values that are never open.
const BAD_FDS: &[u64] = &[
    -1i64 as u64,
    -100i64 as u64,
    255,
    1023,
    1024,
    65535,
    65536,
    0x7fff_ffff,
    0x8000_0000,
    (1 << 32) | 3,
];

/// The generator.
pub struct Gen {
    pub rng: Rng,
    /// Descriptors believed open (bit n = fd n), below 256.
    pub open: [u64; 4],
}

impl Gen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            open: [0; 4],
        }
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    fn pick(&mut self, from: &[u64]) -> u64 {
        from[self.below(from.len() as u64) as usize]
    }

    /// Records that `fd` is open (or closed).
    pub fn mark(&mut self, fd: u64, open: bool) {
        if fd < 256 {
            let (w, b) = ((fd / 64) as usize, fd % 64);
            if open {
                self.open[w] |= 1 << b;
            } else {
                self.open[w] &= !(1 << b);
            }
        }
    }

    /// A descriptor: usually one believed open, else a small number or one
    /// that is never open. Draws the same random numbers whatever is open,
    /// so results never change which calls a seed makes.
    pub fn fd(&mut self) -> u64 {
        let (kind, start, small, bad) = (
            self.below(10),
            self.below(256),
            self.below(32),
            self.pick(BAD_FDS),
        );
        match kind {
            0..=6 => (0..256)
                .map(|i| (start + i) % 256)
                .find(|&fd| self.open[(fd / 64) as usize] & (1 << (fd % 64)) != 0)
                .unwrap_or(small),
            7 | 8 => small,
            _ => bad,
        }
    }

    /// A path argument: one of the world's strings, or any pointer.
    pub fn path(&mut self, w: &World) -> u64 {
        if self.chance(4, 5) {
            w.paths[self.below(w.paths.len() as u64) as usize]
        } else {
            self.pointer(w)
        }
    }

    /// A page-aligned (sometimes unaligned) address inside the arena.
    pub fn arena_addr(&mut self, w: &World) -> u64 {
        let page = w.arena + self.below(ARENA_LEN / PAGE) * PAGE;
        if self.chance(1, 8) {
            page + 1 + self.below(PAGE - 1)
        } else {
            page
        }
    }

    /// One of the fixed read-only structures.
    pub fn konst(&mut self, w: &World) -> u64 {
        let off = self.pick(&[
            konst::TS_ZERO,
            konst::TS_MICRO,
            konst::TS_MILLI,
            konst::ONE,
            konst::SIG_IGN,
        ]);
        w.consts + off
    }

    /// A timeout the kernel reads: zero, 1 µs or 1 ms (never none).
    pub fn timespec(&mut self, w: &World) -> u64 {
        let off = match self.below(10) {
            0..=6 => konst::TS_ZERO,
            7 | 8 => konst::TS_MICRO,
            _ => konst::TS_MILLI,
        };
        w.consts + off
    }

    /// A pointer: into scratch (after filling the words there with random
    /// values, so structures the kernel reads are random too), the arena,
    /// a guard, the read-only constants, paths, text or rodata, or an
    /// address the kernel must refuse.
    pub fn pointer(&mut self, w: &World) -> u64 {
        match self.below(16) {
            0..=5 => {
                let off = if self.chance(1, 2) {
                    self.below(SCRATCH_LEN / 8) * 8
                } else {
                    self.below(SCRATCH_LEN)
                };
                let p = w.scratch + off;
                let mut words = [0u64; 32];
                for x in &mut words {
                    *x = self.word(w);
                }
                w.fill_scratch(p, &words);
                p
            }
            6 => w.scratch + SCRATCH_LEN - 1 - self.below(16),
            7 | 8 => self.arena_addr(w),
            9 => w.guard + self.below(PAGE),
            10 => self.konst(w),
            11 => w.paths[self.below(w.paths.len() as u64) as usize],
            12 => w.text + self.below(64),
            13 => w.rodata + self.below(64),
            _ => self.pick(BAD_POINTERS),
        }
    }

    /// A value stored inside a structure in scratch: a pointer (not into
    /// scratch, to keep filling shallow), a length, a small number, an edge.
    fn word(&mut self, w: &World) -> u64 {
        match self.below(8) {
            0 | 1 => match self.below(6) {
                0 => w.scratch + self.below(SCRATCH_LEN),
                1 => self.arena_addr(w),
                2 => w.guard,
                3 => w.rodata,
                4 => self.konst(w),
                _ => self.pick(BAD_POINTERS),
            },
            2 => self.pick(HUGE_LENGTHS),
            3 | 4 => self.below(64),
            5 => self.below(8192),
            6 => self.pick(EDGES),
            _ => self.rng.next_u64(),
        }
    }

    /// Some bits set, clustered in the low bits like real flags.
    pub fn flags(&mut self) -> u64 {
        let width = self.below(64) + 1;
        let mask = if width == 64 {
            u64::MAX
        } else {
            (1 << width) - 1
        };
        self.rng.next_u64() & self.rng.next_u64() & mask
    }

    /// A length: small, around a page, or huge.
    pub fn length(&mut self) -> u64 {
        match self.below(6) {
            0 | 1 => self.below(64),
            2 => self.below(3 * PAGE),
            3 => self.below(1 << 20),
            4 => self.pick(HUGE_LENGTHS),
            _ => self.pick(EDGES),
        }
    }

    /// Any argument.
    pub fn any(&mut self, w: &World) -> u64 {
        match self.below(12) {
            0 | 1 => self.below(16),
            2 | 3 => self.pick(EDGES),
            4 => self.flags(),
            5 | 6 => self.length(),
            7..=9 => self.pointer(w),
            10 => self.fd(),
            _ => self.rng.next_u64(),
        }
    }
}
