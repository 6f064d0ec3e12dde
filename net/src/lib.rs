//! llmos networking: host-testable pieces of the network path.
//!
//! - [`virtq`]: the driver side of a virtio split virtqueue over any
//!   [`virtq::Dma`] memory, defensive against a hostile device (the kernel's
//!   virtio-net driver uses it; tests use a fake device, and `fuzz/` a
//!   hostile one).
//!
//! - [`nic`]: the [`nic::Nic`] trait every network card driver implements.
//! - [`stack`]: smoltcp's `Interface` + `SocketSet` over a `Nic`, DHCPv4 or
//!   static configuration, driven by the owner's clock.
//! - [`socket`]: BSD socket semantics (listen backlog, accept, connect,
//!   half-close, resets, UDP) over the stack's smoltcp sockets.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod nic;
pub mod socket;
pub mod stack;
pub mod virtq;
#[cfg(test)]
mod wire;
