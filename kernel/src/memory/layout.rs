//! The kernel's virtual address layout.
//!
//! ```text
//! 0x0000_0000_0000_0000 ..                       lower half: user space (later)
//! 0xffff_8000_0000_0000 .. 0xffff_bfff_ffff_ffff physical-memory map (PVH:
//!                                                all RAM from the start); under
//!                                                the bootloader crate its
//!                                                dynamic range: boot stack,
//!                                                boot info, physical-memory
//!                                                map, ramdisk, framebuffer
//! 0xffff_c000_0000_0000 .. +1 TiB                kernel heap (grows upward)
//! 0xffff_c800_0000_0000 .. +16 GiB               kernel stacks, one 4 MiB slot
//!                                                each, unmapped below the stack
//! 0xffff_d000_0000_0000 .. +1 TiB                MMIO mappings (uncached)
//! 0xffff_e000_dead_0000                          never mapped (test hooks)
//! 0xffff_ffff_8020_0000 ..                       the kernel image (linker.ld)
//! ```

/// First byte of the kernel heap.
pub const HEAP_START: u64 = 0xffff_c000_0000_0000;
/// Most the heap may grow to.
pub const HEAP_MAX: u64 = 1 << 40;
/// First stack slot.
pub const STACKS_START: u64 = 0xffff_c800_0000_0000;
/// Bytes per stack slot; everything in a slot below its stack is unmapped
/// and acts as the guard area.
pub const STACK_SLOT: u64 = 4 * 1024 * 1024;
/// Number of stack slots.
pub const STACK_SLOTS: u64 = 4096;
/// First MMIO mapping.
pub const MMIO_START: u64 = 0xffff_d000_0000_0000;
/// End of the MMIO window.
pub const MMIO_END: u64 = MMIO_START + (1 << 40);
/// An address that is never mapped.
pub const NEVER_MAPPED: u64 = 0xffff_e000_dead_0000;
