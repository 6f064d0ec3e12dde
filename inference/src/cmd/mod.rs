//! The runtime's commands (the `llmos-runtime` binary): their options
//! ([`opts`]), `serve` ([`serve`]) and the one-shot ones ([`once`]).
//! `main.rs` only parses the command line and calls one of them.

pub mod once;
pub mod opts;
pub mod serve;
