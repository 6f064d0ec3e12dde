//! The first-party apps (`apps/`): built for `wasm32-wasip1` and packed,
//! each with its checked manifest, into `target/apps/<name>/` (and from
//! there into the image's `/apps/<name>/`).
//!
//! A source manifest (`apps/<crate>/app.toml`) names no `sha256`; the
//! packed `manifest.toml` gets the module's. Each module is compiled by the
//! sandbox as an untrusted one (strict limits) and its imports are checked
//! against the manifest's `capabilities.wasi` here, so a build never packs
//! an app the runtime would refuse.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use llmos_sandbox::manifest::{Manifest, sha256_hex};
use llmos_sandbox::{Caps, Origin, Sandbox};

use crate::build::cargo;
use crate::{paths, progress};

/// The target the apps are built for.
pub const TARGET: &str = "wasm32-wasip1";

/// `target/apps`: one directory per packed app.
pub fn dir() -> PathBuf {
    paths::target().join("apps")
}

/// The source manifests: `apps/*/app.toml`, in name order.
fn sources() -> Result<Vec<PathBuf>> {
    let root = paths::root().join("apps");
    let mut v = Vec::new();
    for e in std::fs::read_dir(&root).with_context(|| format!("{}", root.display()))? {
        let p = e?.path().join("app.toml");
        if p.is_file() {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

/// Builds every app and packs it; returns `target/apps`.
pub fn build() -> Result<PathBuf> {
    progress::header("building the apps (wasm32-wasip1)");
    let build_dir = paths::target().join("apps-build");
    progress::run(
        cargo()
            .current_dir(paths::root().join("apps"))
            .args(["build", "--release", "--target", TARGET, "--target-dir"])
            .arg(&build_dir),
    )
    .with_context(|| {
        format!("building the apps; `rustup target add {TARGET}` (bash scripts/setup.sh) installs the target")
    })?;
    let out = dir();
    // Apps removed from the source leave no stale copy behind.
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let sandbox = Sandbox::new(Caps::default()).map_err(anyhow::Error::msg)?;
    for src in sources()? {
        let text = std::fs::read_to_string(&src)?;
        let m = Manifest::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", src.display()))?;
        if m.sha256.is_some() {
            bail!(
                "{}: a source manifest names no sha256 (the build adds it)",
                src.display()
            );
        }
        let module_path = build_dir.join(TARGET).join("release").join(&m.entry);
        let module = std::fs::read(&module_path).with_context(|| {
            format!(
                "{}: entry {} was not built (is the crate's binary named {}?)",
                src.display(),
                module_path.display(),
                m.entry.trim_end_matches(".wasm")
            )
        })?;
        let program = sandbox
            .compile(&module, Origin::Untrusted)
            .map_err(|(_, e)| anyhow::anyhow!("{}: {e}", module_path.display()))?;
        let imports = program.imports();
        m.check_module(&module, &imports)
            .map_err(|e| anyhow::anyhow!("{}: {e}", src.display()))?;
        let packed = pack_manifest(&text, &sha256_hex(&module));
        let back = Manifest::parse(&packed).map_err(anyhow::Error::msg)?;
        debug_assert_eq!(back.sha256.as_deref(), Some(sha256_hex(&module).as_str()));
        let dest = out.join(&m.name);
        std::fs::create_dir_all(&dest)?;
        std::fs::write(dest.join(&m.entry), &module)?;
        std::fs::write(dest.join("manifest.toml"), packed)?;
        eprintln!(
            "    {} {} ({} KiB, imports {})",
            m.name,
            m.version,
            module.len() / 1024,
            imports.len()
        );
    }
    Ok(out)
}

/// The source manifest with `sha256 = "<hash>"` added among the top-level
/// keys: after `entry`, or else before the first table.
fn pack_manifest(text: &str, hash: &str) -> String {
    let line = format!("sha256 = \"{hash}\"\n");
    let mut out = String::with_capacity(text.len() + line.len());
    let mut added = false;
    for l in text.split_inclusive('\n') {
        if !added && l.trim_start().starts_with('[') {
            out.push_str(&line);
            added = true;
        }
        out.push_str(l);
        let key = l.split('=').next().unwrap_or("").trim();
        if !added && key == "entry" {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&line);
            added = true;
        }
    }
    if !added {
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&line);
    }
    out
}

/// The packed apps, as (name, directory), for the image.
pub fn packed(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.join("manifest.toml").is_file() {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            v.push((name, p));
        }
    }
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_goes_before_the_tables() {
        let text = "name = \"a\"\n\n[capabilities]\nwasi = []\n";
        assert_eq!(
            pack_manifest(text, "ab"),
            "name = \"a\"\n\nsha256 = \"ab\"\n[capabilities]\nwasi = []\n"
        );
        assert_eq!(
            pack_manifest("name = \"a\"", "ab"),
            "name = \"a\"\nsha256 = \"ab\"\n"
        );
        assert_eq!(
            pack_manifest("entry = \"a.wasm\"\nname = \"a\"\n[x]\n", "ab"),
            "entry = \"a.wasm\"\nsha256 = \"ab\"\nname = \"a\"\n[x]\n"
        );
    }
}
