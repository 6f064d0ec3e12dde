//! The initrd at boot: validate the cpio archive the bootloader loaded and
//! read the boot parameters from it.
//!
//! A corrupt archive or parameter file is reported with the reason and
//! stops the boot with a failure status; it never panics the kernel.
#![deny(unsafe_code)]

use bootparams::BootParams;
use llmos_fs::cpio::{self, Kind, Reader};

use crate::klog;

/// What the initrd holds, as far as boot is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Initrd {
    /// The whole archive.
    pub archive: &'static [u8],
}

/// Why the initrd cannot be used.
#[derive(Debug)]
pub enum InitrdError {
    /// The archive is malformed.
    Archive(cpio::Error),
    /// Two entries have the same path.
    Duplicate(&'static str),
    /// The boot-parameter file is malformed.
    Params(bootparams::Error),
}

impl core::fmt::Display for InitrdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitrdError::Archive(e) => write!(f, "initrd is corrupt: {e}"),
            InitrdError::Duplicate(p) => write!(f, "initrd is corrupt: {p:?} appears twice"),
            InitrdError::Params(e) => write!(f, "/{}: {e}", bootparams::PATH),
        }
    }
}

impl Initrd {
    /// Validates every entry of `archive` (headers, paths, duplicates) and
    /// logs a summary.
    pub fn open(archive: &'static [u8]) -> Result<Self, InitrdError> {
        let mut files = 0usize;
        let mut dirs = 0usize;
        let mut bytes = 0usize;
        let mut seen: alloc::collections::BTreeSet<&'static str> =
            alloc::collections::BTreeSet::new();
        for e in Reader::new(archive) {
            let e = e.map_err(InitrdError::Archive)?;
            if !seen.insert(e.path) {
                return Err(InitrdError::Duplicate(e.path));
            }
            match e.kind {
                Kind::Dir => dirs += 1,
                Kind::File | Kind::Symlink => {
                    files += 1;
                    bytes += e.data.len();
                }
            }
        }
        klog!(
            "initrd",
            "{} bytes: {files} files ({} KiB), {dirs} directories",
            archive.len(),
            bytes / 1024
        );
        Ok(Self { archive })
    }

    /// The regular file at `path`, if present.
    pub fn file(&self, path: &str) -> Option<&'static [u8]> {
        match cpio::find(self.archive, path) {
            Ok(Some(e)) if e.kind == Kind::File => Some(e.data),
            _ => None,
        }
    }

    /// The boot parameters (defaults if the file is absent).
    pub fn params(&self) -> Result<BootParams, InitrdError> {
        match self.file(bootparams::PATH) {
            Some(bytes) => BootParams::decode(bytes).map_err(InitrdError::Params),
            None => {
                klog!("initrd", "no /{}; using defaults", bootparams::PATH);
                Ok(BootParams::default())
            }
        }
    }
}
