//! API keys: reading them, making one, and checking a request's key in
//! constant time.

use std::path::Path;

/// The shortest key accepted from a file.
pub const MIN_KEY_LEN: usize = 16;

/// The API keys in `text`: one per line; blank lines and lines starting
/// with `#` are skipped. Keys are printable ASCII without spaces, at least
/// [`MIN_KEY_LEN`] long.
pub fn parse_keys(text: &str, origin: &str) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let k = line.trim();
        if k.is_empty() || k.starts_with('#') {
            continue;
        }
        if !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{origin} line {}: a key must be printable ASCII without spaces",
                i + 1
            ));
        }
        if k.len() < MIN_KEY_LEN {
            return Err(format!(
                "{origin} line {}: a key must be at least {MIN_KEY_LEN} characters, not {}",
                i + 1,
                k.len()
            ));
        }
        keys.push(k.to_owned());
    }
    if keys.is_empty() {
        return Err(format!("{origin} holds no key (one key per line)"));
    }
    Ok(keys)
}

/// Reads the keys in the file at `path`.
pub fn read_keys(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--api-key-file {}: {e}", path.display()))?;
    parse_keys(&text, &format!("--api-key-file {}", path.display()))
}

/// A new key from the operating system's random generator: `llmos-` and
/// 32 hex digits (128 bits).
pub fn generate() -> Result<String, String> {
    Ok(format!(
        "llmos-{}",
        random_hex(16).map_err(|e| format!("no randomness for an API key: {e}"))?
    ))
}

/// Where llmos's kernel says which random sources seeded its generator.
pub const RANDOM_STATUS: &str = "/proc/llmos/random";

/// Whether the randomness behind `getrandom` comes from a healthy hardware
/// source: in llmos the kernel says so in [`RANDOM_STATUS`]; elsewhere
/// (hosted mode, no such file) the host's kernel is trusted.
pub fn hardware_randomness() -> Result<(), String> {
    match std::fs::read_to_string(RANDOM_STATUS) {
        Ok(text) => random_status(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{RANDOM_STATUS}: {e}")),
    }
}

/// Reads the kernel's `hardware:` line (`healthy`, or `none (REASON)`).
pub fn random_status(text: &str) -> Result<(), String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("hardware:"))
        .map(str::trim)
        .ok_or_else(|| format!("{RANDOM_STATUS} has no hardware: line"))?;
    if line == "healthy" {
        Ok(())
    } else {
        Err(format!(
            "the CPU has no healthy hardware random source ({line}), so no API key is made from weak randomness"
        ))
    }
}

/// Where llmos keeps the key it generated, so that a runtime the kernel
/// restarted after a crash keeps answering to the key shown at boot (the
/// RAM filesystem outlives the process, not the machine).
pub const BOOT_KEY: &str = "/run/llmos/api-key";

/// The key to use when none was given: in llmos, the one this boot already
/// made ([`BOOT_KEY`]) or a new one kept there; elsewhere a new one.
pub fn boot_key() -> Result<String, String> {
    let in_llmos = Path::new(RANDOM_STATUS).exists();
    if !in_llmos {
        return generate();
    }
    if let Ok(text) = std::fs::read_to_string(BOOT_KEY)
        && let Ok(mut keys) = parse_keys(&text, BOOT_KEY)
        && keys.len() == 1
    {
        return Ok(keys.remove(0));
    }
    let k = generate()?;
    let path = Path::new(BOOT_KEY);
    // Losing it only means a restarted runtime makes a new key.
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(path, format!("{k}\n"));
    Ok(k)
}

/// `n` random bytes from the operating system, in hex.
pub fn random_hex(n: usize) -> Result<String, getrandom::Error> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Whether `given` equals `key`, in time that depends only on their
/// lengths.
fn same(key: &[u8], given: &[u8]) -> bool {
    let mut diff = u8::from(key.len() != given.len());
    for (i, k) in key.iter().enumerate() {
        diff |= k ^ given.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// Whether `given` is one of `keys`; every key is compared, so the time
/// does not tell which matched or where a guess went wrong.
pub fn check(keys: &[String], given: &str) -> bool {
    which(keys, given).is_some()
}

/// Which of `keys` `given` is (its index), comparing every key, so the
/// time does not tell which matched or where a guess went wrong.
pub fn which(keys: &[String], given: &str) -> Option<usize> {
    let mut found = None;
    for (i, k) in keys.iter().enumerate() {
        if same(k.as_bytes(), given.as_bytes()) {
            found = Some(i);
        }
    }
    found
}

/// The key in an `Authorization: Bearer KEY` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, key) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        let keys = vec!["k".repeat(20), "another-key-000000".to_owned()];
        assert!(check(&keys, &"k".repeat(20)));
        assert!(check(&keys, "another-key-000000"));
        assert!(!check(&keys, &"k".repeat(19)));
        assert!(!check(&keys, &"k".repeat(21)));
        assert!(!check(&keys, ""));
        assert!(!check(&[], "anything"));
        assert_eq!(which(&keys, "another-key-000000"), Some(1));
        assert_eq!(which(&keys, "nope"), None);
    }

    #[test]
    fn key_files() {
        let k = parse_keys(
            "# comment\n\nabcdefghijklmnop\n  qrstuvwxyz0123456789  \n",
            "f",
        )
        .unwrap();
        assert_eq!(k, vec!["abcdefghijklmnop", "qrstuvwxyz0123456789"]);
        assert!(
            parse_keys("short\n", "f")
                .unwrap_err()
                .contains("at least 16")
        );
        assert!(parse_keys("# only\n", "f").unwrap_err().contains("no key"));
        assert!(parse_keys("abcdefgh ijklmnopq\n", "f").is_err());
    }

    #[test]
    fn generated_keys_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 6 + 32);
        assert!(parse_keys(&a, "g").is_ok());
    }

    #[test]
    fn keys_are_made_only_from_healthy_hardware_randomness() {
        assert_eq!(
            random_status("hardware: healthy\nsources: rdseed rdrand tsc\n"),
            Ok(())
        );
        let e = random_status("hardware: none (no RDRAND or RDSEED)\nsources: tsc\n").unwrap_err();
        assert!(
            e.contains("no RDRAND or RDSEED") && e.contains("no API key"),
            "{e}"
        );
        assert!(random_status("hardware: none (RDRAND returned all-ones)").is_err());
        assert!(random_status("sources: tsc\n").is_err());
        assert!(random_status("hardware: healthyish\n").is_err());
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
    }
}
