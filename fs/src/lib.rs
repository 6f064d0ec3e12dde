//! The llmos filesystem layer.
//!
//! Today this crate holds the initrd format: [`cpio`], a validating reader
//! for cpio "newc" archives (what `cargo xtask image` packs and the kernel
//! unpacks at boot). The inode-based RAM filesystem with tmpfs-like POSIX
//! semantics, path resolution for the `*at` syscalls and capacity limits
//! arrives with the filesystem issue; read-only files will borrow ramdisk
//! memory so the model file is never copied.
#![no_std]
#![forbid(unsafe_code)]

pub mod cpio;
