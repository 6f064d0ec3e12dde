//! The llmos LLM runtime, `llmos-runtime`: a static-pie Linux program that
//! runs a quantized GGUF model through llama.cpp (via `llama-cpp-2`), both
//! as the unikernel's first process and as an ordinary program on a Linux
//! host ("hosted mode").
//!
//! A generation's path, one way for every client:
//!
//! ```text
//! HTTP (server: middleware, generate)   console turn   command (generate, chat, bench)
//!          │ Request (tokens, sampling, stops, grammar)
//!          ▼
//!       job::Job::new ── checked once: prompt, fit, vocabulary, sampling, grammar
//!          │ Job (with a Sink and a cancel flag)
//!          ▼
//!       queue::Queue ── API slots in turn, the console's own slot
//!          │ one batch per step over all slots (continuous batching)
//!          ▼
//!       engine (llama.cpp): decode; Picker::sample, the per-token step
//!          │ token → job::Output (whole characters, stop strings)
//!          ▼
//!       Sink::piece → ControlFlow ── back to the client (SSE, JSON, terminal)
//! ```
//!
//! The parts: the engine ([`engine`]: loading with clear errors for a
//! missing, truncated or foreign file ([`gguf`]), chat templates with
//! special tokens only from the template, sampling checked in Rust,
//! grammars for JSON output checked before llama.cpp sees them
//! ([`schema`])); jobs and their sinks ([`job`], with stop strings
//! ([`stop`]) and whole characters across tokens ([`utf8`])); the scheduler
//! with continuous batching and prefix caching over sequence slots
//! ([`queue`]); typed errors ([`error`]); the OpenAI-compatible HTTP API
//! ([`server`], [`api`], [`auth`]) with its connection limits ([`conn`]),
//! browser checks ([`browser`]) and rates ([`ratelimit`]); the chat console
//! ([`console`]) with its line editor ([`terminal`]) and control
//! characters made visible ([`sanitize`]); the code interpreter and apps
//! ([`exec`], [`apps`], [`appdata`], [`signature`]); and the start-up check
//! that the CPU has the features the build assumes ([`cpu`], the one
//! place with `unsafe`). `llmos-runtime serve` runs the API and the
//! console; it is llmos's first process.

#![deny(unsafe_code)]

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
