//! The llmos LLM runtime, `llmos-runtime`: a static-pie Linux program that
//! runs a quantized GGUF model through llama.cpp (via `llama-cpp-2`), both
//! as the unikernel's first process and as an ordinary program on a Linux
//! host ("hosted mode").
//!
//! The parts: the engine ([`engine`]: loading with clear errors for a
//! missing, truncated or foreign file ([`gguf`]), completion and chat
//! through the model's template with special tokens only from the template,
//! a sampling chain checked in Rust, grammars for JSON output, stop strings
//! ([`stop`]), whole characters across tokens ([`utf8`]), KV-cache reuse
//! between requests); the request queue and continuous batching over sequence slots ([`queue`]);
//! the OpenAI-compatible HTTP API ([`server`], [`api`], [`auth`]); the chat
//! console ([`console`]) with its line editor ([`terminal`]); and the
//! start-up check that the CPU has the features the build assumes
//! ([`cpu`]). `llmos-runtime serve` runs the API and the console; it is
//! llmos's first process.

pub mod api;
pub mod appdata;
pub mod apps;
pub mod auth;
pub mod browser;
pub mod conn;
pub mod console;
pub mod cpu;
pub mod engine;
pub mod error;
pub mod exec;
pub mod gguf;
pub mod job;
pub mod queue;
pub mod ratelimit;
pub mod sanitize;
pub mod schema;
pub mod server;
pub mod signature;
pub mod stop;
pub mod terminal;
pub mod utf8;

/// Threads to use: the CPUs this process may run on (`sched_getaffinity`,
/// which `available_parallelism` reads on Linux).
pub fn default_threads() -> i32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(256) as i32)
}
