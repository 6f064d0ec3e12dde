//! `cargo xtask docs`: regenerate documentation that is derived from code.

use anyhow::{Context, Result};

use crate::paths;

/// Writes `docs/syscalls.md` from the kernel's syscall table.
pub fn docs() -> Result<()> {
    let path = paths::root().join("docs/syscalls.md");
    std::fs::write(&path, kcore::syscalls::markdown())
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
