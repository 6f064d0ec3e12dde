//! Host-side disk image builder for llmos.
//!
//! Wraps the `bootloader` crate's [`bootloader::DiskImageBuilder`]: given the
//! kernel ELF (built for `x86_64-unknown-none`) and an optional ramdisk (the
//! initrd), it writes a BIOS (MBR) and a UEFI (GPT) disk image. Image paths
//! follow the contract in `docs/architecture.md`: `target/images/llmos-bios.img`
//! and `target/images/llmos-uefi.img`.
//!
//! The bootloader's own log is kept off the serial port so that the serial
//! boot log has exactly one format (`[secs.micros] subsystem: message`); it
//! still logs to the framebuffer, which is what a person at a screen sees.

pub mod initrd;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bootloader::{BootConfig, DiskImageBuilder};

/// Which firmware an image targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// Legacy BIOS: MBR partition table, the bootloader's 16/32-bit stages.
    Bios,
    /// UEFI: GPT with an EFI system partition.
    Uefi,
}

impl Firmware {
    /// The image file name the contract uses for this firmware.
    pub fn image_name(self) -> &'static str {
        match self {
            Firmware::Bios => "llmos-bios.img",
            Firmware::Uefi => "llmos-uefi.img",
        }
    }
}

/// What goes into a disk image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The kernel ELF.
    pub kernel: PathBuf,
    /// The initrd, loaded by the bootloader into memory and handed to the
    /// kernel as the "ramdisk".
    pub ramdisk: Option<PathBuf>,
}

/// Builds one image of `spec` for `firmware` at `out`.
///
/// The image is written to a temporary file next to `out` and renamed into
/// place, so an interrupted build never leaves a half-written image behind
/// under the final name.
pub fn build_image(spec: &ImageSpec, firmware: Firmware, out: &Path) -> Result<()> {
    if !spec.kernel.is_file() {
        bail!("kernel ELF not found at {}", spec.kernel.display());
    }
    if let Some(rd) = &spec.ramdisk
        && !rd.is_file()
    {
        bail!("ramdisk not found at {}", rd.display());
    }
    let dir = out
        .parent()
        .with_context(|| format!("image path {} has no parent directory", out.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut builder = DiskImageBuilder::new(spec.kernel.clone());
    if let Some(rd) = &spec.ramdisk {
        builder.set_ramdisk(rd.clone());
    }
    builder.set_boot_config(&boot_config());

    let tmp = out.with_extension("img.partial");
    let result = match firmware {
        Firmware::Bios => builder.create_bios_image(&tmp),
        Firmware::Uefi => builder.create_uefi_image(&tmp),
    };
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e.context(format!("building the {firmware:?} image")));
    }
    fs::rename(&tmp, out)
        .with_context(|| format!("moving {} to {}", tmp.display(), out.display()))?;
    Ok(())
}

/// The bootloader's run-time configuration: quiet on serial, framebuffer
/// logging on so a screen shows progress on real hardware.
pub fn boot_config() -> BootConfig {
    let mut cfg = BootConfig::default();
    cfg.serial_logging = false;
    cfg.frame_buffer_logging = true;
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_follow_the_contract() {
        assert_eq!(Firmware::Bios.image_name(), "llmos-bios.img");
        assert_eq!(Firmware::Uefi.image_name(), "llmos-uefi.img");
    }

    #[test]
    fn bootloader_stays_off_the_serial_port() {
        let cfg = boot_config();
        assert!(!cfg.serial_logging);
        assert!(cfg.frame_buffer_logging);
    }

    #[test]
    fn missing_kernel_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ImageSpec {
            kernel: dir.path().join("nope"),
            ramdisk: None,
        };
        let err = build_image(&spec, Firmware::Bios, &dir.path().join("x.img")).unwrap_err();
        assert!(err.to_string().contains("kernel ELF not found"), "{err}");
    }
}
