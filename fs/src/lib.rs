//! The llmos filesystem layer.
//!
//! - [`cpio`]: a validating reader for cpio "newc" archives (what
//!   `cargo xtask image` packs and the kernel unpacks at boot).
//! - [`ramfs`]: the inode-based RAM filesystem with tmpfs-like POSIX
//!   semantics, path resolution for the `*at` syscalls and a capacity
//!   limit; read-only files can borrow ramdisk memory so the model file is
//!   never copied. (Not wired into the kernel's syscalls yet.)
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cpio;
pub mod ramfs;
