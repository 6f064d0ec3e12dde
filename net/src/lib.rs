//! llmos networking — not built yet.
//!
//! This `no_std` crate will hold the host-testable network stack glue: a
//! smoltcp `Interface` + `SocketSet` driven by an injected clock, DHCPv4 and
//! static configuration, and a socket layer with BSD semantics (listen/accept
//! backlogs, non-blocking I/O, timeouts, loopback) that the kernel exposes
//! through the Linux socket syscalls.
//!
//! It is intentionally empty until the networking issue lands.
#![no_std]
#![forbid(unsafe_code)]
