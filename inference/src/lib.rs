//! The llmos LLM runtime — not built yet.
//!
//! This crate will hold `llmos-runtime`: a static-pie Linux program that runs
//! a quantized GGUF model through llama.cpp (via `llama-cpp-2`), serves a chat
//! console on the serial port and an OpenAI-compatible HTTP API, hosts the
//! wasm sandbox, and runs both as the unikernel's first process and as an
//! ordinary program on a Linux host ("hosted mode").
//!
//! It is intentionally empty until the runtime issue lands; nothing here
//! pretends to work.
