//! Kernel stacks with guard areas.
//!
//! Each stack gets its own 4 MiB slot in the stack window and is mapped at
//! the top of it; the rest of the slot below stays unmapped, so running off
//! the bottom faults instead of corrupting memory. The fault handlers ask
//! [`guard_owner`] whether a fault address lies in such a guard area, to
//! report a kernel stack overflow by name.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;
use x86_64::structures::paging::PageTableFlags;

use super::layout::{STACK_SLOT, STACK_SLOTS, STACKS_START};
use super::paging::{self, MapError};

static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);
/// Slots whose mapping failed half way, reused before new ones.
static FREE_SLOTS: Mutex<alloc::vec::Vec<u64>> = Mutex::new(alloc::vec::Vec::new());
/// Dropped stacks, still mapped: `(bottom, top)`.
static POOL: Mutex<alloc::vec::Vec<(u64, u64)>> = Mutex::new(alloc::vec::Vec::new());
/// Name and lowest mapped address of each live stack, by slot.
static NAMES: Mutex<alloc::collections::BTreeMap<u64, (&'static str, u64)>> =
    Mutex::new(alloc::collections::BTreeMap::new());

/// A mapped kernel stack.
#[derive(Debug)]
pub struct KernelStack {
    /// Its name in diagnostics.
    pub name: &'static str,
    /// Lowest mapped byte.
    pub bottom: u64,
    /// One past the highest byte: the initial stack pointer.
    pub top: u64,
}

/// Errors allocating a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// Larger than a slot allows (the slot also holds the guard).
    TooLarge(u64),
    /// All slots are used.
    NoSlots,
    /// Mapping failed.
    Map(MapError),
}

impl core::fmt::Display for StackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StackError::TooLarge(s) => write!(f, "stack of {s} bytes does not fit a slot"),
            StackError::NoSlots => f.write_str("no kernel stack slots left"),
            StackError::Map(e) => write!(f, "mapping the stack failed: {e}"),
        }
    }
}

/// Allocates a stack of `size` bytes (rounded up to pages) named `name`.
pub fn allocate(name: &'static str, size: u64) -> Result<KernelStack, StackError> {
    let size = size.div_ceil(4096) * 4096;
    if size == 0 || size > STACK_SLOT - 64 * 1024 {
        return Err(StackError::TooLarge(size));
    }
    let reused = {
        let mut pool = POOL.lock();
        pool.iter()
            .position(|&(b, t)| t - b == size)
            .map(|i| pool.swap_remove(i))
    };
    if let Some((bottom, top)) = reused {
        let slot = (top - STACKS_START) / STACK_SLOT - 1;
        NAMES.lock().insert(slot, (name, bottom));
        return Ok(KernelStack { name, bottom, top });
    }
    let slot = match FREE_SLOTS.lock().pop() {
        Some(s) => s,
        None => NEXT_SLOT.fetch_add(1, Ordering::Relaxed),
    };
    if slot >= STACK_SLOTS {
        return Err(StackError::NoSlots);
    }
    let top = STACKS_START + (slot + 1) * STACK_SLOT;
    let bottom = top - size;
    paging::map_fresh(
        bottom,
        size,
        PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE,
    )
    .map_err(|e| {
        paging::unmap_and_free(bottom, size);
        FREE_SLOTS.lock().push(slot);
        StackError::Map(e)
    })?;
    NAMES.lock().insert(slot, (name, bottom));
    Ok(KernelStack { name, bottom, top })
}

/// Switches to `stack` (consumed, so it is used by nothing else) and runs
/// `next` on it. The current stack is abandoned: `next` takes no
/// arguments, so nothing can borrow from it.
pub fn run_on(stack: KernelStack, next: extern "C" fn() -> !) -> ! {
    let top = stack.permanent();
    // SAFETY: `top` is the top of a stack mapped by `allocate` (writable,
    // page-aligned) that is never freed and that nothing else runs on;
    // `next` never returns and receives nothing from the old stack.
    unsafe { crate::arch::x86_64::switch_stack(top, next) }
}

impl KernelStack {
    /// Keeps the stack mapped for the rest of the kernel's life (IST and
    /// boot stacks) and returns its top.
    pub fn permanent(self) -> u64 {
        let top = self.top;
        core::mem::forget(self);
        top
    }
}

/// The name of the stack whose guard area contains `addr`, if any. Safe to
/// call from fault handlers: it never blocks.
pub fn guard_owner(addr: u64) -> Option<&'static str> {
    let rel = addr.checked_sub(STACKS_START)?;
    let slot = rel / STACK_SLOT;
    if slot >= STACK_SLOTS {
        return None;
    }
    let names = NAMES.try_lock()?;
    let (name, bottom) = *names.get(&slot)?;
    (addr < bottom).then_some(name)
}

impl Drop for KernelStack {
    /// Returns the stack, still mapped, to a pool for the next stack of the
    /// same size. Only stacks nothing runs on are dropped (a thread's stack
    /// is dropped after the switch away from it has completed). Keeping the
    /// mapping means no other CPU can hold a stale TLB entry for it.
    fn drop(&mut self) {
        POOL.lock().push((self.bottom, self.top));
    }
}
