//! The llmos LLM runtime, `llmos-runtime`: a static-pie Linux program that
//! runs a quantized GGUF model through llama.cpp (via `llama-cpp-2`), both
//! as the unikernel's first process and as an ordinary program on a Linux
//! host ("hosted mode").
//!
//! What exists so far: loading a model with a clear error for a missing,
//! truncated or foreign file ([`gguf`], [`engine`]); raw completion and
//! single-turn chat through the model's chat template; a sampling chain
//! (greedy, or temperature with top-k/top-p/min-p and a seed; repetition,
//! frequency and presence penalties) with ranges checked in Rust; stop
//! strings ([`stop`]); text streamed as it is produced with characters
//! kept whole across tokens ([`utf8`]); the thread count from
//! `sched_getaffinity`; and the start-up check that the CPU has the
//! features the build assumes ([`cpu`]). The chat console, the HTTP API and
//! the default image integration are still to come (issue 7 lists them).

pub mod api;
pub mod auth;
pub mod console;
pub mod cpu;
pub mod engine;
pub mod gguf;
pub mod queue;
pub mod server;
pub mod stop;
pub mod terminal;
pub mod utf8;

/// Threads to use: the CPUs this process may run on (`sched_getaffinity`,
/// which `available_parallelism` reads on Linux).
pub fn default_threads() -> i32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(256) as i32)
}
