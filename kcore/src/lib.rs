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
//! - [`acpi`]: parsing of the ACPI tables the kernel needs (RSDP, XSDT/RSDT,
//!   FADT, MADT, the DSDT's `\_S5` sleep type) with bounds checks on every read.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod acpi;
pub mod bootlog;
pub mod cpu;
pub mod frames;
pub mod memmap;
pub mod time;
