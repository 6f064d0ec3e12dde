//! App signatures, checked against the publisher keys the owner trusts.
//!
//! A manifest's `[signature]` names a public key and an ed25519 signature
//! over [`Manifest::signing_payload`] (which covers the module through its
//! SHA-256). The key inside the manifest proves nothing: anyone can sign
//! with a key of their own. So the signature is verified against every key
//! the owner trusts (`--trust-key FILE`, packed into images by `cargo
//! xtask image --trust-key`), never against the key the package brings,
//! and an app is reported [`Status::Verified`] only when one of those
//! keys signed exactly this manifest.

use std::path::Path;

use ed25519_dalek::{Signature, VerifyingKey};
use llmos_sandbox::manifest::Manifest;

/// A publisher key the owner trusts.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    key: VerifyingKey,
    /// Where it came from (the file), for messages.
    pub origin: String,
}

impl TrustedKey {
    /// The key from its text: 64 hex digits (32 bytes) on one line; blank
    /// lines and `#` comments around it are skipped.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let [hex] = lines.as_slice() else {
            return Err(format!(
                "{origin}: a key file holds one ed25519 public key as 64 hex digits, found {} lines",
                lines.len()
            ));
        };
        let bytes: [u8; 32] = decode_hex(hex)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{origin}: not an ed25519 public key (64 hex digits)"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| format!("{origin}: not a valid ed25519 public key"))?;
        if key.is_weak() {
            return Err(format!(
                "{origin}: a weak (small-order) ed25519 key can't be trusted"
            ));
        }
        Ok(Self {
            key,
            origin: origin.to_owned(),
        })
    }

    /// Reads `--trust-key FILE`.
    pub fn read(path: &Path) -> Result<Self, String> {
        let origin = format!("--trust-key {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| format!("{origin}: {e}"))?;
        Self::parse(&text, &origin)
    }

    /// The key in lowercase hex.
    pub fn hex(&self) -> String {
        hex(self.key.as_bytes())
    }
}

/// What a manifest's signature is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Signed by a trusted key (in hex).
    Verified(String),
    /// No signature.
    Unsigned,
    /// A signature that proves nothing, and why.
    Invalid(String),
}

impl Status {
    /// `verified`, `unsigned` or `invalid`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Verified(_) => "verified",
            Status::Unsigned => "unsigned",
            Status::Invalid(_) => "invalid",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Verified(k) => write!(f, "verified (key {})", short(k)),
            Status::Unsigned => f.write_str("unsigned"),
            Status::Invalid(why) => write!(f, "invalid ({why})"),
        }
    }
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The worth of `m`'s signature given the `trusted` keys.
pub fn check(m: &Manifest, trusted: &[TrustedKey]) -> Status {
    let Some(sig) = &m.signature else {
        return Status::Unsigned;
    };
    let Some(value) = decode_hex(&sig.value)
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
    else {
        return Status::Invalid("the signature is not 64 bytes of hex".into());
    };
    let payload = m.signing_payload();
    if let Some(k) = trusted
        .iter()
        .find(|k| k.key.verify_strict(payload.as_bytes(), &value).is_ok())
    {
        return Status::Verified(k.hex());
    }
    let named = sig.public_key.to_ascii_lowercase();
    if trusted.is_empty() {
        return Status::Invalid(format!(
            "signed by key {}, and no publisher key is trusted (--trust-key)",
            short(&named)
        ));
    }
    if trusted.iter().any(|k| k.hex() == named) {
        return Status::Invalid(format!(
            "the signature by trusted key {} does not match this manifest (changed after signing?)",
            short(&named)
        ));
    }
    Status::Invalid(format!(
        "signed by key {}, which is not trusted",
        short(&named)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const MANIFEST: &str = "name = \"demo\"\nversion = \"1.0.0\"\ndescription = \"a demo\"\nentry = \"demo.wasm\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n[capabilities]\nwasi = [\"fd_write\"]\n";

    fn signed(text: &str, key: &SigningKey, named: &VerifyingKey) -> Manifest {
        let m = Manifest::parse(text).unwrap();
        let sig = key.sign(m.signing_payload().as_bytes());
        Manifest::parse(&format!(
            "{text}[signature]\nalgorithm = \"ed25519\"\npublic_key = \"{}\"\nvalue = \"{}\"\n",
            hex(named.as_bytes()),
            hex(&sig.to_bytes())
        ))
        .unwrap()
    }

    fn trusted(key: &SigningKey) -> TrustedKey {
        TrustedKey::parse(
            &format!("# publisher\n{}\n", hex(key.verifying_key().as_bytes())),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn only_a_trusted_key_verifies() {
        let publisher = SigningKey::from_bytes(&[7; 32]);
        let attacker = SigningKey::from_bytes(&[9; 32]);
        let ok = signed(MANIFEST, &publisher, &publisher.verifying_key());
        let t = [trusted(&publisher)];
        assert_eq!(
            check(&ok, &t),
            Status::Verified(hex(publisher.verifying_key().as_bytes()))
        );
        // The package's own key counts for nothing.
        let own = signed(MANIFEST, &attacker, &attacker.verifying_key());
        let s = check(&own, &t);
        assert!(
            matches!(&s, Status::Invalid(w) if w.contains("not trusted")),
            "{s}"
        );
        // Naming the trusted key does not help a signature by another.
        let forged = signed(MANIFEST, &attacker, &publisher.verifying_key());
        let s = check(&forged, &t);
        assert!(
            matches!(&s, Status::Invalid(w) if w.contains("does not match")),
            "{s}"
        );
        // A manifest changed after signing (more capabilities).
        let mut changed = ok.clone();
        changed.capabilities.wasi.push("path_open".into());
        assert!(matches!(check(&changed, &t), Status::Invalid(_)));
        // No trusted keys at all.
        let s = check(&ok, &[]);
        assert!(
            matches!(&s, Status::Invalid(w) if w.contains("--trust-key")),
            "{s}"
        );
        assert_eq!(
            check(&Manifest::parse(MANIFEST).unwrap(), &t),
            Status::Unsigned
        );
        assert_eq!(s.as_str(), "invalid");
    }

    #[test]
    fn key_files_are_checked() {
        assert!(TrustedKey::parse("", "f").unwrap_err().contains("0 lines"));
        assert!(TrustedKey::parse("abcd\n", "f").is_err());
        assert!(TrustedKey::parse(&"g".repeat(64), "f").is_err());
        assert!(
            TrustedKey::parse(&format!("{}\n{}\n", "a".repeat(64), "b".repeat(64)), "f").is_err()
        );
        // The identity point is a weak key.
        let mut id = [0u8; 32];
        id[0] = 1;
        let e = TrustedKey::parse(&hex(&id), "f").unwrap_err();
        assert!(e.contains("weak") || e.contains("valid"), "{e}");
    }
}
