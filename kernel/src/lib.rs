//! The llmos kernel (ring 0).
//!
//! Boots directly under a VMM (PVH, `arch/x86_64/pvh.rs`) or through the
//! `bootloader` crate (BIOS or UEFI disk images), brings up the CPU,
//! memory, interrupts and clocks, and loads the LLM runtime (or any static
//! program) as a Linux static-pie program in ring 3, restarting it when a
//! signal kills it (`supervisor`). See `docs/architecture.md` for the
//! boot flow and the process lifecycle.
//!
//! Layout: `arch/x86_64` (CPU tables, interrupts, timers, port I/O),
//! `memory` (frames, page tables, heap, guarded stacks) and `drivers`
//! (serial) are the only modules allowed to use `unsafe`; every other
//! module denies it. Pure logic lives in the host-tested `kcore` crate.
#![no_std]
#![feature(abi_x86_interrupt)]

extern crate alloc;

pub mod arch;
pub mod drivers;
pub mod memory;

pub mod acpi;
pub mod console;
pub mod fd;
pub mod filemap;
pub mod futex;
pub mod init;
pub mod initrd;
pub mod interrupts;
pub mod log;
pub mod netdev;
pub mod panic;
pub mod power;
pub mod process;
pub mod procfs;
pub mod random;
pub mod sched;
pub mod smp;
pub mod supervisor;
pub mod syscall;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
pub mod time;
pub mod vfs;

/// CPUs the kernel runs threads on.
pub fn cpus_in_use() -> usize {
    smp::online()
}

use bootloader_api::BootloaderConfig;
use bootloader_api::config::Mapping;

/// Start of the higher-half range the bootloader may place things in (the
/// kernel image, its boot stack, boot info, the physical-memory map, the
/// ramdisk and the framebuffer).
pub const BOOTLOADER_DYNAMIC_START: u64 = 0xffff_8000_0000_0000;
/// End (inclusive) of that range; everything above belongs to the kernel's
/// own regions (`memory::layout`).
pub const BOOTLOADER_DYNAMIC_END: u64 = 0xffff_bfff_ffff_ffff;

/// What the kernel asks of the bootloader.
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.mappings.dynamic_range_start = Some(BOOTLOADER_DYNAMIC_START);
    config.mappings.dynamic_range_end = Some(BOOTLOADER_DYNAMIC_END);
    // The boot stack only has to last until the kernel switches to its own
    // guarded stack (memory::stacks), but leave room for early work.
    config.kernel_stack_size = 256 * 1024;
    config
};
