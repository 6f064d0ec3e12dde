//! llmos RAM filesystem — not built yet.
//!
//! This `no_std` + `alloc` crate will hold the inode-based RAM filesystem
//! (files, directories, symlinks, hard links, device nodes, tmpfs-like POSIX
//! semantics, capacity limits), path resolution for the `*at` syscalls, and
//! the cpio newc initrd reader. Read-only files can borrow ramdisk memory so
//! the model file is never copied.
//!
//! It is intentionally empty until the filesystem issue lands.
#![no_std]
#![forbid(unsafe_code)]
