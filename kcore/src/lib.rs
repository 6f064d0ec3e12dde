//! Pure kernel logic for llmos, tested on the host.
//!
//! Everything here works on plain values and byte slices: no port I/O, no
//! page tables, no `unsafe`. The kernel (`kernel/`) feeds it what it reads
//! from hardware; host unit tests feed it fakes. Modules:
//!
//! - [`bootlog`]: the serial boot-log line format `[secs.micros] subsystem: message`.
//! - [`frames`]: the physical frame allocator's bitmap bookkeeping.
//! - [`memmap`]: memory-map summaries and placement of early allocations.
//! - [`cpu`]: CPUID decoding (vendor, brand, features, XSAVE state components).
//! - [`time`]: clock arithmetic (TSC and APIC timer calibration against the PIT).
//! - [`elf`]: validating static and static-pie x86_64 executables.
//! - [`errno`]: Linux error numbers.
//! - [`vma`]: the virtual-memory-area map of a user address space.
//! - [`userstack`]: the initial user stack (argv, envp, auxv) as Linux builds it.
//! - [`syscalls`]: the syscall table (status of every syscall; source of docs/syscalls.md).
//! - [`tty`]: the console line discipline (canonical/raw mode, echo, signals).
//! - [`futex`]: futex wait queues (wake, bitsets, requeue, wake-op).
//! - [`epoll`]: epoll interest lists, level- and edge-triggered reporting.
//! - [`fdtable`]: a process's file-descriptor table (lowest free number, dup, limits).
//! - [`pipe`]: the bounded byte queue behind pipe(2).
//! - [`entropy`]: health tests of the CPU's random instructions, the seed extractor, `/proc/llmos/random`.
//! - [`restart`]: the restart budget and back-off of the first process.
//! - [`procfs`]: the text of the generated `/proc` files.
//! - [`pvh`]: the PVH boot protocol's start info (memory map, modules, RSDP).
//! - [`pci`]: PCI enumeration, BAR sizing, capability lists, MCFG (ECAM).
//! - [`acpi`]: parsing of the ACPI tables the kernel needs (RSDP, XSDT/RSDT,
//!   FADT, MADT, the DSDT's `\_S5` sleep type) with bounds checks on every read.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod bootlog;
pub mod cpu;
pub mod elf;
pub mod entropy;
pub mod epoll;
pub mod errno;
pub mod fdtable;
pub mod frames;
pub mod futex;
pub mod memmap;
pub mod pci;
pub mod pipe;
pub mod procfs;
pub mod pvh;
pub mod restart;
pub mod syscalls;
pub mod time;
pub mod tty;
pub mod userstack;
pub mod vma;
