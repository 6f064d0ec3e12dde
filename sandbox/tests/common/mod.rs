//! What the test files that run the real interpreters share.

use std::path::PathBuf;

/// The WASI runtime named by `var`, or `file` in `target/lang/`
/// (`cargo xtask test` passes `LLMOS_PYTHON_WASM` and `LLMOS_QUICKJS_WASM`;
/// `cargo xtask lang` fetches them for a plain `cargo test`).
pub fn runtime(var: &str, file: &str) -> Vec<u8> {
    let p = std::env::var_os(var).map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/lang")
                .join(file)
        },
        PathBuf::from,
    );
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; `cargo xtask lang` fetches it (`cargo xtask test` does too)",
            p.display()
        )
    })
}
