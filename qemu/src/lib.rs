//! One place for QEMU: typed argument lists, firmware and accelerator
//! discovery, serial capture, bounded waits, exit-code mapping.
//!
//! Used by `xtask` (to run images for people) and by the integration tests
//! in `tests/` (to boot images and assert on the serial log). Key types:
//!
//! - [`Config`] → [`Config::args`]: the full QEMU command line, built from
//!   typed options rather than strings.
//! - [`Machine`]: a running QEMU with serial captured to memory (and a file);
//!   [`Machine::wait_for`] waits for a regex with a timeout,
//!   [`Machine::wait_exit`] for the exit with a timeout; dropping it kills
//!   QEMU.
//! - [`Outcome`]: QEMU's exit status decoded — 33 is the kernel's success
//!   (isa-debug-exit 0x10), 35 its failure (0x11), anything else an
//!   infrastructure error.
//! - [`accel`]: whether KVM really works here (it does not on `kvm-pvm`).

pub mod accel;
pub mod config;
pub mod firmware;
pub mod machine;
pub mod outcome;

pub use accel::Accel;
pub use config::{
    Config, DirectKernel, Display, FirmwareKind, GuestForward, PortForward, SerialMode,
};
pub use firmware::Ovmf;
pub use machine::{Machine, WaitError};
pub use outcome::Outcome;
