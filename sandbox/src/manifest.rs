//! App manifests: the `manifest.toml` next to each app's module.
//!
//! ```toml
//! name = "text"                    # [a-z][a-z0-9-]*, at most 32 bytes
//! version = "0.1.0"                # MAJOR.MINOR.PATCH
//! description = "Counts, searches and slices text"
//! entry = "text.wasm"              # the module, next to the manifest
//! sha256 = "…"                     # of the module; checked before it runs
//!
//! [capabilities]
//! wasi = ["fd_read", "fd_write", "proc_exit"]  # the WASI functions it may import
//! data = false                     # a private persistent directory at /data
//!
//! [limits]                         # only tighten the server's caps
//! fuel = 2_000_000_000
//! wall_ms = 5000
//! memory_mib = 64
//! output_kib = 1024
//!
//! [signature]                      # optional; verified by network installs
//! algorithm = "ed25519"
//! public_key = "…"                 # 32 bytes, hex
//! value = "…"                      # 64 bytes, hex, over Manifest::signing_payload
//! ```
//!
//! Unknown fields are refused, so a manifest can't ask for something this
//! version would silently ignore.

use std::fmt::Write as _;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Grant, Limits, wasi};

/// The longest app name.
pub const MAX_NAME: usize = 32;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 300;
/// Where an app's data directory is seen.
pub const DATA_DIR: &str = "/data";

/// A checked manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The app's name (also its URL segment and its data directory's name).
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it does, in one line.
    pub description: String,
    /// The module's file name.
    pub entry: String,
    /// The module's SHA-256 (lowercase hex).
    pub sha256: Option<String>,
    /// What it may do.
    pub capabilities: Capabilities,
    /// Its own limits.
    pub limits: Limits,
    /// A signature, when it carries one.
    pub signature: Option<Signature>,
}

/// What an app asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Capabilities {
    /// The WASI preview1 functions it may import (sorted).
    pub wasi: Vec<String>,
    /// A private directory at [`DATA_DIR`] kept between runs.
    pub data: bool,
}

/// A manifest's signature.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Only `ed25519`.
    pub algorithm: String,
    /// The signer's public key (hex).
    pub public_key: String,
    /// The signature of [`Manifest::signing_payload`] (hex).
    pub value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    version: String,
    description: String,
    entry: String,
    sha256: Option<String>,
    capabilities: RawCaps,
    #[serde(default)]
    limits: RawLimits,
    signature: Option<Signature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaps {
    wasi: Vec<String>,
    #[serde(default)]
    data: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    fuel: Option<u64>,
    wall_ms: Option<u64>,
    memory_mib: Option<u64>,
    output_kib: Option<usize>,
}

fn is_hex(s: &str, bytes: usize) -> bool {
    s.len() == bytes * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Manifest {
    /// Parses and checks a manifest's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim_end().to_owned();
            match e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            {
                Some(line) => format!("line {line}: {msg}"),
                None => msg,
            }
        })?;
        let name = raw.name;
        if name.is_empty()
            || name.len() > MAX_NAME
            || !name.starts_with(|c: char| c.is_ascii_lowercase())
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "name {name:?}: use 1 to {MAX_NAME} of a-z, 0-9 and -, starting with a letter"
            ));
        }
        let parts: Vec<&str> = raw.version.split('.').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "version {:?}: use MAJOR.MINOR.PATCH, for example 0.1.0",
                raw.version
            ));
        }
        let description = raw.description.trim().to_owned();
        if description.is_empty()
            || description.len() > MAX_DESCRIPTION
            || description.contains(['\n', '\r'])
        {
            return Err(format!(
                "description: one line of 1 to {MAX_DESCRIPTION} bytes"
            ));
        }
        let entry = raw.entry;
        if !entry.ends_with(".wasm")
            || entry.contains(['/', '\\', '\0'])
            || entry.starts_with('.')
            || entry.len() > 64
        {
            return Err(format!(
                "entry {entry:?}: the module's plain file name, ending in .wasm"
            ));
        }
        if let Some(h) = &raw.sha256
            && !is_hex(h, 32)
        {
            return Err("sha256: 64 lowercase hex digits".into());
        }
        let mut wasi_fns = raw.capabilities.wasi;
        wasi_fns.sort();
        wasi_fns.dedup();
        for f in &wasi_fns {
            if f.starts_with("sock_") {
                return Err(format!(
                    "capabilities.wasi: {f:?}: network access is not a capability apps can have yet"
                ));
            }
            if !wasi::FUNCTIONS.contains(&f.as_str()) {
                return Err(format!(
                    "capabilities.wasi: {f:?} is not a WASI preview1 function"
                ));
            }
        }
        let l = raw.limits;
        let mib = |m: u64| m.checked_mul(1 << 20).ok_or("limits.memory_mib: too large");
        let limits = Limits {
            fuel: l.fuel,
            wall_ms: l.wall_ms,
            memory: l.memory_mib.map(mib).transpose()?,
            output: l
                .output_kib
                .map(|k| k.checked_mul(1024).ok_or("limits.output_kib: too large"))
                .transpose()?,
        };
        if limits.fuel == Some(0) || limits.wall_ms == Some(0) || limits.memory == Some(0) {
            return Err("limits: fuel, wall_ms and memory_mib must be above 0".into());
        }
        if let Some(s) = &raw.signature {
            if s.algorithm != "ed25519" {
                return Err(format!(
                    "signature.algorithm {:?}: only \"ed25519\"",
                    s.algorithm
                ));
            }
            if !is_hex(&s.public_key, 32) || !is_hex(&s.value, 64) {
                return Err(
                    "signature: public_key is 32 bytes and value 64 bytes, in lowercase hex".into(),
                );
            }
            if raw.sha256.is_none() {
                return Err("signature: a signed manifest names its module's sha256".into());
            }
        }
        Ok(Self {
            name,
            version: raw.version,
            description,
            entry,
            sha256: raw.sha256,
            capabilities: Capabilities {
                wasi: wasi_fns,
                data: raw.capabilities.data,
            },
            limits,
            signature: raw.signature,
        })
    }

    /// The grant its runs get.
    pub fn grant(&self) -> Grant {
        Grant::Only(self.capabilities.wasi.clone())
    }

    /// Checks `module` against the manifest: its SHA-256 (when the
    /// manifest names one) and that it imports only granted functions.
    pub fn check_module(&self, module: &[u8], imports: &[String]) -> Result<(), String> {
        if let Some(want) = &self.sha256 {
            let got = sha256_hex(module);
            if &got != want {
                return Err(format!(
                    "{}: SHA-256 {got} is not the manifest's {want}",
                    self.entry
                ));
            }
        }
        let extra: Vec<&str> = imports
            .iter()
            .filter(|i| {
                !i.strip_prefix(wasi::MODULE)
                    .and_then(|r| r.strip_prefix("::"))
                    .is_some_and(|f| self.capabilities.wasi.iter().any(|w| w == f))
            })
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            return Err(format!(
                "{} imports what its manifest does not ask for: {}",
                self.entry,
                extra.join(", ")
            ));
        }
        Ok(())
    }

    /// The bytes a signature covers: every field but the signature, one
    /// per line in a fixed order, so the TOML's layout doesn't matter.
    pub fn signing_payload(&self) -> String {
        let mut s = String::from("llmos-app-manifest-v1\n");
        let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        let _ = writeln!(s, "name={}", self.name);
        let _ = writeln!(s, "version={}", self.version);
        let _ = writeln!(s, "description={}", self.description);
        let _ = writeln!(s, "entry={}", self.entry);
        let _ = writeln!(s, "sha256={}", self.sha256.as_deref().unwrap_or(""));
        let _ = writeln!(s, "capabilities.wasi={}", self.capabilities.wasi.join(","));
        let _ = writeln!(s, "capabilities.data={}", self.capabilities.data);
        let _ = writeln!(s, "limits.fuel={}", opt(self.limits.fuel));
        let _ = writeln!(s, "limits.wall_ms={}", opt(self.limits.wall_ms));
        let _ = writeln!(s, "limits.memory={}", opt(self.limits.memory));
        let _ = writeln!(
            s,
            "limits.output={}",
            opt(self.limits.output.map(|o| o as u64))
        );
        s
    }
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "text"
version = "0.1.0"
description = "Counts and searches text"
entry = "text.wasm"

[capabilities]
wasi = ["fd_write", "proc_exit", "fd_read", "fd_write"]

[limits]
fuel = 1000
memory_mib = 16
"#;

    #[test]
    fn parses_and_checks() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.name, "text");
        assert_eq!(m.capabilities.wasi, ["fd_read", "fd_write", "proc_exit"]);
        assert!(!m.capabilities.data);
        assert_eq!(m.limits.memory, Some(16 << 20));
        assert_eq!(m.limits.fuel, Some(1000));
        assert_eq!(m.limits.wall_ms, None);
        let ok = ["wasi_snapshot_preview1::fd_write".to_owned()];
        m.check_module(b"x", &ok).unwrap();
        let bad = [
            "wasi_snapshot_preview1::path_open".to_owned(),
            "env::f".to_owned(),
        ];
        let e = m.check_module(b"x", &bad).unwrap_err();
        assert!(
            e.contains("wasi_snapshot_preview1::path_open, env::f"),
            "{e}"
        );
    }

    #[test]
    fn refuses_bad_manifests() {
        let cases = [
            (GOOD.replace("\"text\"", "\"../x\""), "name"),
            (GOOD.replace("\"text\"", "\"Text\""), "name"),
            (GOOD.replace("0.1.0", "1.0"), "version"),
            (GOOD.replace("text.wasm", "../x.wasm"), "entry"),
            (GOOD.replace("text.wasm", "text.exe"), "entry"),
            (GOOD.replace("\"proc_exit\"", "\"sock_open\""), "network"),
            (GOOD.replace("\"proc_exit\"", "\"nope\""), "not a WASI"),
            (GOOD.replace("fuel = 1000", "fuel = 0"), "above 0"),
            (GOOD.replace("fuel = 1000", "fuel = -1"), "line"),
            (
                GOOD.replace("fuel = 1000", "network = true"),
                "unknown field",
            ),
            (
                GOOD.replace("[capabilities]\nwasi", "[capabilities]\nx"),
                "",
            ),
            (GOOD.replace("entry = \"text.wasm\"\n", ""), "entry"),
            ("not toml at all [".to_owned(), "line"),
            (
                format!(
                    "{GOOD}\n[signature]\nalgorithm = \"rsa\"\npublic_key = \"00\"\nvalue = \"00\"\n"
                ),
                "only \"ed25519\"",
            ),
            (
                format!(
                    "{GOOD}\n[signature]\nalgorithm = \"ed25519\"\npublic_key = \"{}\"\nvalue = \"{}\"\n",
                    "ab".repeat(32),
                    "cd".repeat(64)
                ),
                "sha256",
            ),
        ];
        for (text, want) in cases {
            let e = Manifest::parse(&text).unwrap_err();
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
    }

    #[test]
    fn checks_the_module_hash_and_signs_a_fixed_payload() {
        let module = b"\0asm\x01\0\0\0";
        let h = sha256_hex(module);
        // sha256 is a top-level key: it goes before the tables.
        let text = GOOD.replace(
            "entry = \"text.wasm\"\n",
            &format!("entry = \"text.wasm\"\nsha256 = \"{h}\"\n"),
        ) + &format!(
            "\n[signature]\nalgorithm = \"ed25519\"\npublic_key = \"{}\"\nvalue = \"{}\"\n",
            "ab".repeat(32),
            "cd".repeat(64)
        );
        let m = Manifest::parse(&text).unwrap();
        m.check_module(module, &[]).unwrap();
        let e = m.check_module(b"other", &[]).unwrap_err();
        assert!(e.contains("is not the manifest's"), "{e}");
        let p = m.signing_payload();
        assert!(p.starts_with("llmos-app-manifest-v1\nname=text\n"), "{p}");
        assert!(p.contains(&format!("sha256={h}\n")), "{p}");
        assert!(
            p.contains("capabilities.wasi=fd_read,fd_write,proc_exit\n"),
            "{p}"
        );
        // The layout of the TOML doesn't change what is signed.
        let reordered = text.replace(
            "name = \"text\"\nversion = \"0.1.0\"",
            "version = \"0.1.0\"\nname = \"text\"",
        );
        assert_eq!(Manifest::parse(&reordered).unwrap().signing_payload(), p);
    }
}
