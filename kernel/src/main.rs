//! The llmos kernel binary: the bootloader's entry point and nothing else
//! (the PVH entry for direct boot lives in `arch/x86_64/pvh.rs`).
//! Everything it calls lives in the `kernel` library (see `lib.rs`).
#![no_std]
#![no_main]

bootloader_api::entry_point!(kernel_main, config = &kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
    kernel::init::start_from_bootloader(boot_info)
}
