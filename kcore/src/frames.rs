//! Physical frame allocator bookkeeping.
//!
//! A bitmap with one bit per 4 KiB frame from physical address 0 up to the
//! end of the highest usable region: a set bit means "in use or not RAM".
//! Everything starts used; the kernel then frees the usable regions of the
//! bootloader's memory map. The bitmap storage is borrowed (`&mut [u64]`), so
//! the kernel can place it in physical memory before it has a heap, and host
//! tests can back it with a `Vec`.
//!
//! Design choices: a bitmap costs 32 KiB per GiB and makes double frees and
//! frees of never-allocated frames detectable, which a free list cannot do.
//! A rotating hint keeps single-frame allocation amortised O(1) on a
//! fragmented map.

/// The size of one physical frame.
pub const FRAME_SIZE: u64 = 4096;

/// Errors reported by [`FrameBitmap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not a multiple of [`FRAME_SIZE`].
    Misaligned(u64),
    /// The address lies beyond the frames the bitmap tracks.
    OutOfRange(u64),
    /// The frame was already free (double free, or never allocated).
    NotAllocated(u64),
    /// The storage slice is too small for the requested frame count.
    StorageTooSmall {
        /// Words needed.
        needed: usize,
        /// Words given.
        given: usize,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::Misaligned(a) => write!(f, "frame address {a:#x} is not 4 KiB aligned"),
            FrameError::OutOfRange(a) => {
                write!(f, "frame address {a:#x} is outside tracked memory")
            }
            FrameError::NotAllocated(a) => write!(f, "frame {a:#x} freed but not allocated"),
            FrameError::StorageTooSmall { needed, given } => {
                write!(f, "bitmap needs {needed} words, got {given}")
            }
        }
    }
}

/// Number of `u64` words needed to track `frames` frames.
pub const fn words_for(frames: u64) -> usize {
    frames.div_ceil(64) as usize
}

/// One bit per frame; see the module docs.
#[derive(Debug)]
pub struct FrameBitmap<'a> {
    bits: &'a mut [u64],
    frames: u64,
    free: u64,
    hint: u64,
    /// Where [`FrameBitmap::alloc_block`] looks first (a word index).
    block_hint: usize,
}

impl<'a> FrameBitmap<'a> {
    /// Tracks `frames` frames starting at physical address 0, all marked used.
    pub fn new(storage: &'a mut [u64], frames: u64) -> Result<Self, FrameError> {
        let needed = words_for(frames);
        if storage.len() < needed {
            return Err(FrameError::StorageTooSmall {
                needed,
                given: storage.len(),
            });
        }
        let bits = &mut storage[..needed];
        bits.fill(u64::MAX);
        Ok(Self {
            bits,
            frames,
            free: 0,
            hint: 0,
            block_hint: 0,
        })
    }

    /// Frames tracked.
    pub fn total_frames(&self) -> u64 {
        self.frames
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    fn is_used(&self, frame: u64) -> bool {
        self.bits[(frame / 64) as usize] & (1 << (frame % 64)) != 0
    }

    fn set(&mut self, frame: u64, used: bool) {
        let word = &mut self.bits[(frame / 64) as usize];
        let bit = 1u64 << (frame % 64);
        if used {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Marks the whole frames inside `[start, end)` free. Partial frames at
    /// either end stay used. Frames beyond the tracked range are ignored.
    pub fn add_free_range(&mut self, start: u64, end: u64) {
        let first = start.div_ceil(FRAME_SIZE);
        let last = (end / FRAME_SIZE).min(self.frames);
        for frame in first..last {
            if self.is_used(frame) {
                self.set(frame, false);
                self.free += 1;
            }
        }
    }

    /// Marks every frame touching `[start, end)` used (for example the
    /// bitmap's own storage). Returns how many frames changed state.
    pub fn reserve_range(&mut self, start: u64, end: u64) -> u64 {
        let first = start / FRAME_SIZE;
        let last = end.div_ceil(FRAME_SIZE).min(self.frames);
        let mut changed = 0;
        for frame in first..last {
            if !self.is_used(frame) {
                self.set(frame, true);
                self.free -= 1;
                changed += 1;
            }
        }
        changed
    }

    /// Allocates one frame and returns its physical address.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        let words = self.bits.len();
        let start = (self.hint / 64) as usize;
        for i in 0..words {
            let w = (start + i) % words;
            let word = self.bits[w];
            if word != u64::MAX {
                let bit = (!word).trailing_zeros() as u64;
                let frame = w as u64 * 64 + bit;
                if frame >= self.frames {
                    continue;
                }
                self.set(frame, true);
                self.free -= 1;
                self.hint = frame;
                return Some(frame * FRAME_SIZE);
            }
        }
        None
    }

    /// Allocates `count` physically contiguous frames whose first frame is
    /// aligned to `align` bytes (a power of two, at least [`FRAME_SIZE`]).
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || count > self.free || !align.is_power_of_two() || align < FRAME_SIZE {
            return None;
        }
        let step = align / FRAME_SIZE;
        let mut first = 0u64;
        while first.checked_add(count)? <= self.frames {
            match (first..first + count).find(|&f| self.is_used(f)) {
                None => {
                    for f in first..first + count {
                        self.set(f, true);
                    }
                    self.free -= count;
                    return Some(first * FRAME_SIZE);
                }
                Some(used) => first = (used + 1).div_ceil(step) * step,
            }
        }
        None
    }

    /// Allocates `words * 64` contiguous frames aligned to their own size
    /// (8 words: a 2 MiB block) by looking at whole bitmap words, starting
    /// where the last block was found: cheap enough for the page-fault path,
    /// unlike [`FrameBitmap::alloc_contiguous`]'s frame-by-frame scan.
    pub fn alloc_block(&mut self, words: usize) -> Option<u64> {
        let frames = words as u64 * 64;
        if words == 0 || frames > self.free {
            return None;
        }
        let blocks = self.bits.len() / words;
        if blocks == 0 {
            return None;
        }
        let start = (self.block_hint / words) % blocks;
        for i in 0..blocks {
            let b = (start + i) % blocks;
            let span = &mut self.bits[b * words..(b + 1) * words];
            if span.iter().all(|&w| w == 0) {
                span.fill(u64::MAX);
                self.free -= frames;
                self.block_hint = b * words;
                return Some(b as u64 * frames * FRAME_SIZE);
            }
        }
        None
    }

    /// Returns one frame to the pool.
    pub fn free(&mut self, addr: u64) -> Result<(), FrameError> {
        if !addr.is_multiple_of(FRAME_SIZE) {
            return Err(FrameError::Misaligned(addr));
        }
        let frame = addr / FRAME_SIZE;
        if frame >= self.frames {
            return Err(FrameError::OutOfRange(addr));
        }
        if !self.is_used(frame) {
            return Err(FrameError::NotAllocated(addr));
        }
        self.set(frame, false);
        self.free += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn bitmap(storage: &mut Vec<u64>, frames: u64) -> FrameBitmap<'_> {
        storage.resize(words_for(frames), 0);
        FrameBitmap::new(storage, frames).unwrap()
    }

    #[test]
    fn starts_all_used() {
        let mut s = Vec::new();
        let mut b = bitmap(&mut s, 100);
        assert_eq!(b.free_frames(), 0);
        assert_eq!(b.alloc(), None);
    }

    #[test]
    fn storage_too_small_is_an_error() {
        let mut s = [0u64; 1];
        assert_eq!(
            FrameBitmap::new(&mut s, 65).unwrap_err(),
            FrameError::StorageTooSmall {
                needed: 2,
                given: 1
            }
        );
    }

    #[test]
    fn free_range_rounds_inward() {
        let mut s = Vec::new();
        let mut b = bitmap(&mut s, 16);
        b.add_free_range(0x1001, 0x5fff); // frames 2,3,4
        assert_eq!(b.free_frames(), 3);
        let got: BTreeSet<u64> = std::iter::from_fn(|| b.alloc()).collect();
        assert_eq!(got, [0x2000, 0x3000, 0x4000].into());
    }

    #[test]
    fn ranges_beyond_tracking_are_clamped() {
        let mut s = Vec::new();
        let mut b = bitmap(&mut s, 10);
        b.add_free_range(0, 100 * FRAME_SIZE);
        assert_eq!(b.free_frames(), 10);
        assert_eq!(b.reserve_range(8 * FRAME_SIZE, u64::MAX / 2), 2);
        assert_eq!(b.free_frames(), 8);
    }

    #[test]
    fn double_free_and_bad_addresses_are_rejected() {
        let mut s = Vec::new();
        let mut b = bitmap(&mut s, 64);
        b.add_free_range(0, 64 * FRAME_SIZE);
        let a = b.alloc().unwrap();
        assert_eq!(b.free(a), Ok(()));
        assert_eq!(b.free(a), Err(FrameError::NotAllocated(a)));
        assert_eq!(b.free(a + 1), Err(FrameError::Misaligned(a + 1)));
        assert_eq!(
            b.free(64 * FRAME_SIZE),
            Err(FrameError::OutOfRange(64 * FRAME_SIZE))
        );
    }

    #[test]
    fn contiguous_respects_alignment_and_holes() {
        let mut s = Vec::new();
        let mut b = bitmap(&mut s, 1024);
        b.add_free_range(0, 1024 * FRAME_SIZE);
        b.reserve_range(0x3000, 0x4000);
        let a = b.alloc_contiguous(16, 0x10000).unwrap();
        assert_eq!(a % 0x10000, 0);
        assert_eq!(a, 0x10000);
        let c = b.alloc_contiguous(3, FRAME_SIZE).unwrap();
        assert_eq!(c, 0);
        assert_eq!(b.free_frames(), 1024 - 1 - 16 - 3);
        assert_eq!(b.alloc_contiguous(2000, FRAME_SIZE), None);
        assert_eq!(b.alloc_contiguous(1, 3000), None);
    }

    proptest! {
        /// Random alloc/free sequences never hand out a frame twice, never
        /// hand out a reserved frame, and keep the free count exact.
        #[test]
        fn alloc_free_model(ops in proptest::collection::vec(any::<(bool, u8)>(), 1..400),
                            frames in 1u64..300,
                            reserved in 0u64..300) {
            let mut s = Vec::new();
            let mut b = bitmap(&mut s, frames);
            b.add_free_range(0, frames * FRAME_SIZE);
            let r = reserved % frames;
            b.reserve_range(r * FRAME_SIZE, (r + 1) * FRAME_SIZE);
            let mut live: Vec<u64> = Vec::new();
            for (is_alloc, pick) in ops {
                if is_alloc || live.is_empty() {
                    match b.alloc() {
                        Some(a) => {
                            prop_assert!(!live.contains(&a));
                            prop_assert_ne!(a, r * FRAME_SIZE);
                            live.push(a);
                        }
                        None => prop_assert_eq!(live.len() as u64, frames - 1),
                    }
                } else {
                    let a = live.swap_remove(pick as usize % live.len());
                    prop_assert_eq!(b.free(a), Ok(()));
                }
                prop_assert_eq!(b.free_frames(), frames - 1 - live.len() as u64);
            }
        }
    }

    #[test]
    fn blocks_are_aligned_free_runs_and_skip_used_frames() {
        // 4 blocks of 512 frames; frame 5 (block 0) and 1500 (block 2) used.
        let mut storage = vec![0u64; words_for(2048)];
        let mut b = FrameBitmap::new(&mut storage, 2048).unwrap();
        b.add_free_range(0, 2048 * FRAME_SIZE);
        b.reserve_range(5 * FRAME_SIZE, 6 * FRAME_SIZE);
        b.reserve_range(1500 * FRAME_SIZE, 1501 * FRAME_SIZE);
        let free = b.free_frames();
        let a = b.alloc_block(8).unwrap();
        assert_eq!(a, 512 * FRAME_SIZE);
        assert_eq!(b.free_frames(), free - 512);
        let c = b.alloc_block(8).unwrap();
        assert_eq!(c, 1536 * FRAME_SIZE);
        assert_eq!(b.alloc_block(8), None, "blocks 0 and 2 hold a used frame");
        // Every frame of a block is really allocated: each frees once.
        for f in 0..512 {
            b.free(a + f * FRAME_SIZE).unwrap();
        }
        assert!(b.free(a).is_err());
        assert_eq!(b.alloc_block(8), Some(a));
        // Single frames never come from an allocated block.
        while let Some(x) = b.alloc() {
            assert!(!(a..a + 512 * FRAME_SIZE).contains(&x));
            assert!(!(c..c + 512 * FRAME_SIZE).contains(&x));
        }
        assert_eq!(b.alloc_block(0), None);
    }
}
