//! The physical frame allocator: `kcore::frames::FrameBitmap` over storage
//! carved out of usable RAM at boot, behind a spin lock.
//!
//! Frames below 1 MiB stay reserved: the SMP trampoline will need real-mode
//! memory there, and firmware areas live there.
//!
//! The last [`reserve`] free frames belong to the kernel: user memory
//! ([`alloc_user`], [`alloc_huge_user`] and [`UserFrames`] for the page
//! tables of user space) is refused once taking a frame would leave fewer
//! free, so the kernel heap, kernel stacks and device buffers can still be
//! served when a program has used up everything else. Kernel allocations
//! a syscall makes on a program's behalf stop earlier still
//! (`memory::kalloc`).

use kcore::frames::{FRAME_SIZE, FrameBitmap, words_for};
use kcore::memmap::{Region, RegionKind, Summary, place_frame_bitmap, summarize};
use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::structures::paging::{FrameAllocator, FrameDeallocator, PhysFrame, Size2MiB, Size4KiB};

/// Low memory kept out of the pool.
pub const LOW_RESERVED: u64 = 1024 * 1024;

static FRAMES: Mutex<Option<FrameBitmap<'static>>> = Mutex::new(None);

/// Frames held back from user memory (set at boot, see [`reserve_for`]).
static RESERVE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The reserve for `usable` frames of RAM: 1/32 of it, at least 8 MiB
/// (2,048 frames) and at most 64 MiB (16,384 frames). 16 MiB of a 512 MiB
/// guest, 32 MiB of the default 1 GiB: room for the kernel heap to grow
/// by its 2 MiB steps many times over, for every thread's 128 KiB kernel
/// stack the CPUs' run queues can hold, and for the network card's
/// buffers.
pub fn reserve_for(usable: u64) -> u64 {
    (usable / 32).clamp(2048, 16384)
}

/// Frames user memory may not take (the kernel's reserve).
pub fn reserve() -> u64 {
    RESERVE.load(core::sync::atomic::Ordering::Relaxed)
}

/// Errors setting up the allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// No usable region can hold the bitmap.
    NoRoomForBitmap,
    /// The bitmap could not be created.
    Bitmap(kcore::frames::FrameError),
}

/// What [`init`] found.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Memory-map totals.
    pub summary: Summary,
    /// Where the bitmap lives (physical) and its size in bytes.
    pub bitmap: (u64, u64),
    /// Frames free after set-up.
    pub free_frames: u64,
}

/// Builds the allocator from the boot path's memory map.
pub fn init(regions: &[Region], phys_offset: u64) -> Result<Report, InitError> {
    let summary = summarize(regions.iter().copied());
    let (at, bytes) = place_frame_bitmap(regions.iter().copied(), summary.ram_end, LOW_RESERVED)
        .ok_or(InitError::NoRoomForBitmap)?;
    let frames = summary.ram_end.div_ceil(FRAME_SIZE);
    let words = words_for(frames);
    // SAFETY: `place_frame_bitmap` chose `bytes` (≥ words * 8) bytes of
    // usable RAM at `at`, which the bootloader maps at `phys_offset + at`
    // and which nothing else uses; the range is reserved in the bitmap
    // itself below, so it is never handed out as a frame. u64 alignment
    // holds because `at` is frame-aligned.
    let storage: &'static mut [u64] =
        unsafe { core::slice::from_raw_parts_mut((phys_offset + at) as *mut u64, words) };
    let mut bitmap = FrameBitmap::new(storage, frames).map_err(InitError::Bitmap)?;
    for r in regions.iter().copied() {
        if r.kind == RegionKind::Usable {
            bitmap.add_free_range(r.start, r.end);
        }
    }
    bitmap.reserve_range(0, LOW_RESERVED);
    bitmap.reserve_range(at, at + bytes);
    let free_frames = bitmap.free_frames();
    RESERVE.store(
        reserve_for(free_frames),
        core::sync::atomic::Ordering::Relaxed,
    );
    TOTAL_USABLE.store(
        (summary.usable + summary.bootloader) / FRAME_SIZE,
        core::sync::atomic::Ordering::Relaxed,
    );
    with_frames(|b| *b = Some(bitmap));
    Ok(Report {
        summary,
        bitmap: (at, bytes),
        free_frames,
    })
}

/// Runs `f` on the allocator with interrupts off: the network interrupt
/// allocates and frees frames (virtio buffers), so an interrupt arriving
/// while this CPU held the lock would spin on it forever (a boot hung so
/// right after DHCP started, while the boot path read the free count).
fn with_frames<R>(f: impl FnOnce(&mut Option<FrameBitmap<'static>>) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut FRAMES.lock()))
}

/// Allocates one frame (contents undefined).
pub fn alloc() -> Option<PhysFrame> {
    let addr = with_frames(|b| b.as_mut()?.alloc())?;
    Some(PhysFrame::containing_address(PhysAddr::new(addr)))
}

/// Allocates one frame for user memory (contents undefined), unless that
/// would leave fewer than [`reserve`] frames free.
pub fn alloc_user() -> Option<PhysFrame> {
    let floor = reserve();
    let addr = with_frames(|b| {
        let b = b.as_mut()?;
        if b.free_frames() <= floor {
            return None;
        }
        b.alloc()
    })?;
    Some(PhysFrame::containing_address(PhysAddr::new(addr)))
}

/// A 2 MiB-aligned run of 512 frames for user memory, if at least
/// `spare` frames stay free besides the reserve afterwards.
pub fn alloc_huge_user(spare: u64) -> Option<PhysFrame<Size2MiB>> {
    let floor = reserve() + spare + 512;
    let addr = with_frames(|b| {
        let b = b.as_mut()?;
        if b.free_frames() < floor {
            return None;
        }
        b.alloc_block(8)
    })?;
    PhysFrame::from_start_address(PhysAddr::new(addr)).ok()
}

/// Allocates `count` physically contiguous frames (contents undefined);
/// returns the first one's physical address.
pub fn alloc_contiguous(count: u64) -> Option<u64> {
    with_frames(|b| b.as_mut()?.alloc_contiguous(count, 4096))
}

/// Returns a 2 MiB block from [`alloc_huge_user`] to the pool.
pub fn free_huge(block: PhysFrame<Size2MiB>) {
    let start = block.start_address().as_u64();
    let r = with_frames(|b| match b.as_mut() {
        Some(b) => (0..512).try_for_each(|i| b.free(start + i * FRAME_SIZE)),
        None => Ok(()),
    });
    if let Err(e) = r {
        panic!("frame allocator: {e}");
    }
}

/// Returns a frame to the pool. Freeing a frame that is not allocated is a
/// kernel bug and panics with the address.
pub fn free(frame: PhysFrame) {
    let r = with_frames(|b| match b.as_mut() {
        Some(b) => b.free(frame.start_address().as_u64()),
        None => Ok(()),
    });
    if let Err(e) = r {
        panic!("frame allocator: {e}");
    }
}

/// Usable frames tracked (free or allocated), excluding what firmware
/// reserves.
pub fn total_frames() -> u64 {
    TOTAL_USABLE.load(core::sync::atomic::Ordering::Relaxed)
}

static TOTAL_USABLE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Free frames right now.
pub fn free_frames() -> u64 {
    with_frames(|b| b.as_ref().map_or(0, FrameBitmap::free_frames))
}

/// Frames for the page tables of user space, under the same reserve as
/// user pages ([`alloc_user`]).
#[derive(Debug, Clone, Copy)]
pub struct UserFrames;

// SAFETY: as for `GlobalFrames`: each frame comes from the bitmap once.
unsafe impl FrameAllocator<Size4KiB> for UserFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        alloc_user()
    }
}

/// The global allocator as the `x86_64` crate's frame-allocator traits.
#[derive(Debug, Clone, Copy)]
pub struct GlobalFrames;

// SAFETY: `alloc` hands out each frame at most once until it is freed (the
// bitmap's invariant), and only frames of usable RAM.
unsafe impl FrameAllocator<Size4KiB> for GlobalFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        alloc()
    }
}

impl FrameDeallocator<Size4KiB> for GlobalFrames {
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
        free(frame);
    }
}
