//! Deliberate faults for the QEMU tests (feature `test-hooks` only).

use super::layout::NEVER_MAPPED;

/// Reads from an address that is never mapped: a kernel page fault.
pub fn read_unmapped() -> u8 {
    // SAFETY: this is meant to fault; the page-fault handler reports it and
    // powers off, so the read never returns a value.
    unsafe { core::ptr::read_volatile(NEVER_MAPPED as *const u8) }
}
