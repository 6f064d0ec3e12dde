//! Architecture support. llmos targets x86_64 only; the module split keeps
//! hardware access in one place (one of the three modules where `unsafe` is
//! allowed, with `memory` and `drivers`).

pub mod x86_64;
