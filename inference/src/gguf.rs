//! A first look at a GGUF file before llama.cpp parses it, so that a
//! missing, truncated or foreign file gets a clear error instead of a
//! generic load failure.

use std::io::Read;
use std::path::Path;

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Number of tensors.
    pub tensors: u64,
    /// Number of metadata entries.
    pub metadata: u64,
    /// File size in bytes.
    pub size: u64,
}

/// Checks the first 24 bytes of a GGUF file of `size` bytes.
pub fn check_header(head: &[u8], size: u64) -> Result<Header, String> {
    if head.len() < 24 || size < 24 {
        return Err(format!(
            "the file is {size} bytes: too short to be a GGUF model (truncated?)"
        ));
    }
    if &head[..4] != b"GGUF" {
        return Err(format!(
            "not a GGUF model: it starts with {:02x?} instead of \"GGUF\"",
            &head[..4]
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let u64_at = |i: usize| u64::from(u32_at(i)) | (u64::from(u32_at(i + 4)) << 32);
    let version = u32_at(4);
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (llama.cpp reads versions 2 and 3)"
        ));
    }
    let tensors = u64_at(8);
    let metadata = u64_at(16);
    // Every tensor needs at least a name, dims and an offset; every
    // metadata entry at least a key and a type.
    if tensors
        .saturating_mul(24)
        .saturating_add(metadata.saturating_mul(12))
        > size
    {
        return Err(format!(
            "the header claims {tensors} tensors and {metadata} metadata entries, \
             more than a {size}-byte file can hold (truncated or corrupt)"
        ));
    }
    Ok(Header {
        version,
        tensors,
        metadata,
        size,
    })
}

/// Checks the GGUF file at `path`.
pub fn check_file(path: &Path) -> Result<Header, String> {
    let mut f = std::fs::File::open(path).map_err(|e| {
        format!(
            "cannot open the model {}: {e}. Give a GGUF file with --model PATH",
            path.display()
        )
    })?;
    let size = f
        .metadata()
        .map_err(|e| format!("cannot stat the model {}: {e}", path.display()))?
        .len();
    let mut head = [0u8; 24];
    let n = f
        .read(&mut head)
        .map_err(|e| format!("cannot read the model {}: {e}", path.display()))?;
    check_header(&head[..n], size).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u32, tensors: u64, metadata: u64) -> Vec<u8> {
        let mut h = b"GGUF".to_vec();
        h.extend_from_slice(&version.to_le_bytes());
        h.extend_from_slice(&tensors.to_le_bytes());
        h.extend_from_slice(&metadata.to_le_bytes());
        h
    }

    #[test]
    fn a_plausible_header_passes() {
        let h = check_header(&header(3, 10, 20), 1 << 20).unwrap();
        assert_eq!((h.version, h.tensors, h.metadata), (3, 10, 20));
    }

    #[test]
    fn bad_files_get_reasons() {
        let e = check_header(b"GGU", 3).unwrap_err();
        assert!(e.contains("too short"), "{e}");
        let e = check_header(&[0x7f; 24], 100).unwrap_err();
        assert!(e.contains("not a GGUF model"), "{e}");
        let e = check_header(&header(9, 1, 1), 1000).unwrap_err();
        assert!(e.contains("version 9"), "{e}");
        let e = check_header(&header(3, u64::MAX, 5), 1000).unwrap_err();
        assert!(e.contains("truncated or corrupt"), "{e}");
    }

    #[test]
    fn a_missing_file_says_how_to_fix_it() {
        let e = check_file(Path::new("/nonexistent/model.gguf")).unwrap_err();
        assert!(e.contains("--model PATH"), "{e}");
    }
}
