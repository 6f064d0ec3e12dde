//! The kernel heap: `linked_list_allocator` over a virtual range that grows
//! on demand.
//!
//! It starts at [`INITIAL_SIZE`] and, when an allocation does not fit,
//! maps more fresh pages right after the current end and retries: half
//! the current size (geometric growth) while memory is plentiful, only
//! the request plus slack once free frames come near the reserve
//! (`frames::reserve`), so a large step never pushes the machine into it
//! for a small allocation. A growth that cannot be mapped whole is undone
//! (`paging::map_fresh` unmaps what it mapped). Growth stops at
//! `layout::HEAP_MAX` or when physical memory runs out; the allocation
//! then fails. Syscall paths allocate what a program asks for through
//! `memory::kalloc`, which checks first and fails with ENOMEM; an
//! infallible allocation that still fails reaches Rust's alloc-error path,
//! which panics with the size: a kernel bug (an unbounded allocation or a
//! reserve too small), never a program's doing.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;
use spin::Mutex;
use x86_64::structures::paging::PageTableFlags;

use super::layout::{HEAP_MAX, HEAP_START};
use super::paging::{self, MapError};

/// Heap mapped at boot.
pub const INITIAL_SIZE: u64 = 4 * 1024 * 1024;
/// Growth granularity.
const GROW_ALIGN: u64 = 2 * 1024 * 1024;

struct State {
    heap: Heap,
    mapped: u64,
    grows: u64,
}

/// The global allocator.
pub struct KernelHeap {
    state: Mutex<State>,
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap {
    state: Mutex::new(State {
        heap: Heap::empty(),
        mapped: 0,
        grows: 0,
    }),
};

fn flags() -> PageTableFlags {
    PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE
}

/// Maps the initial heap. Call once, after paging and frames are up.
pub fn init() -> Result<(), MapError> {
    paging::map_fresh(HEAP_START, INITIAL_SIZE, flags())?;
    let mut st = HEAP.state.lock();
    // SAFETY: `[HEAP_START, HEAP_START + INITIAL_SIZE)` was just mapped to
    // fresh frames and is used by nothing but this heap.
    unsafe { st.heap.init(HEAP_START as *mut u8, INITIAL_SIZE as usize) };
    st.mapped = INITIAL_SIZE;
    Ok(())
}

impl State {
    /// Maps enough extra pages for `layout` and extends the heap.
    fn grow(&mut self, layout: Layout) -> bool {
        let need = (layout.size() as u64)
            .saturating_add(layout.align() as u64)
            .saturating_add(4096);
        let small = need.div_ceil(GROW_ALIGN).saturating_mul(GROW_ALIGN);
        let geometric = need
            .max(self.mapped / 2)
            .div_ceil(GROW_ALIGN)
            .saturating_mul(GROW_ALIGN);
        let plenty = super::frames::free_frames()
            >= (geometric / 4096).saturating_add(2 * super::frames::reserve());
        if plenty && geometric > small && self.extend_by(geometric) {
            return true;
        }
        self.extend_by(small)
    }

    /// Maps `by` bytes after the heap's end and hands them to it.
    fn extend_by(&mut self, by: u64) -> bool {
        let Some(new_mapped) = self.mapped.checked_add(by).filter(|&m| m <= HEAP_MAX) else {
            return false;
        };
        // On failure nothing stays mapped.
        if paging::map_fresh(HEAP_START + self.mapped, by, flags()).is_err() {
            return false;
        }
        // SAFETY: the `by` bytes right after the heap's current top were
        // just mapped to fresh frames and belong to nobody else.
        unsafe { self.heap.extend(by as usize) };
        self.mapped = new_mapped;
        self.grows += 1;
        true
    }
}

// SAFETY: allocations come from `linked_list_allocator`, which returns
// properly aligned, non-overlapping blocks inside memory this heap owns;
// the lock serialises all access, and interrupts are off while it is held
// so an interrupt handler cannot deadlock on it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        x86_64::instructions::interrupts::without_interrupts(|| {
            let mut st = self.state.lock();
            loop {
                if let Ok(p) = st.heap.allocate_first_fit(layout) {
                    return p.as_ptr();
                }
                if !st.grow(layout) {
                    return ptr::null_mut();
                }
            }
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        x86_64::instructions::interrupts::without_interrupts(|| {
            if let Some(p) = NonNull::new(ptr) {
                // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc`
                // with this `layout` and is not used afterwards.
                unsafe { self.state.lock().heap.deallocate(p, layout) }
            }
        })
    }
}

/// Heap statistics.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Bytes mapped for the heap.
    pub mapped: u64,
    /// Bytes in use.
    pub used: u64,
    /// Times the heap grew.
    pub grows: u64,
}

/// Current statistics.
pub fn stats() -> Stats {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let st = HEAP.state.lock();
        Stats {
            mapped: st.mapped,
            used: st.heap.used() as u64,
            grows: st.grows,
        }
    })
}

/// Runs `f` while holding the heap lock (test hooks only: proves the panic
/// path prints without allocating).
#[cfg(feature = "test-hooks")]
pub fn with_lock_held<R>(f: impl FnOnce() -> R) -> R {
    let _guard = HEAP.state.lock();
    f()
}
