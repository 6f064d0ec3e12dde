//! Disk images: `target/images/llmos-bios.img` and `llmos-uefi.img`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use llmos_boot::{Firmware, ImageSpec, build_image};

use crate::build::{Variant, build_kernel};
use crate::unsupported::not_yet;
use crate::{paths, progress};

/// What goes into the image (shared by `image` and `run`).
#[derive(Debug, Clone, Default, Args)]
pub struct ContentArgs {
    /// A static Linux ELF to run as the first process instead of the runtime.
    #[arg(long, value_name = "ELF")]
    pub init: Option<PathBuf>,
    /// Arguments for the --init program (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub init_args: Vec<String>,
    /// Extra file for the initrd, as SRC:DEST (repeatable).
    #[arg(long = "add", value_name = "SRC:DEST")]
    pub add: Vec<String>,
    /// A GGUF model to put in the image instead of the default one.
    #[arg(long, value_name = "GGUF", conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Build the image without a model.
    #[arg(long)]
    pub no_model: bool,
}

impl ContentArgs {
    /// Rejects options whose machinery has not landed yet.
    pub fn check_supported(&self) -> Result<()> {
        if self.init.is_some() || !self.init_args.is_empty() {
            return not_yet(
                "--init",
                "running Linux programs arrives with the Linux ABI work",
            );
        }
        if !self.add.is_empty() {
            return not_yet(
                "--add",
                "the initrd filesystem arrives with the RAM filesystem work",
            );
        }
        if self.model.is_some() {
            return not_yet("--model", "models arrive with the LLM runtime");
        }
        // --no-model is what images contain today: there is no runtime yet,
        // so no model is packed either way.
        Ok(())
    }
}

/// Options of `cargo xtask image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(flatten)]
    content: ContentArgs,
}

/// Paths of one image pair.
#[derive(Debug, Clone)]
pub struct Images {
    /// BIOS image.
    pub bios: PathBuf,
    /// UEFI image.
    pub uefi: PathBuf,
}

/// Writes a BIOS and a UEFI image for `kernel` (+ optional ramdisk) into
/// `dir`, named `<prefix>bios.img` / `<prefix>uefi.img`.
pub fn write_pair(
    kernel: &Path,
    ramdisk: Option<&Path>,
    dir: &Path,
    prefix: &str,
) -> Result<Images> {
    let spec = ImageSpec {
        kernel: kernel.to_owned(),
        ramdisk: ramdisk.map(Path::to_owned),
    };
    let bios = dir.join(format!("{prefix}bios.img"));
    let uefi = dir.join(format!("{prefix}uefi.img"));
    progress::spin(&format!("writing {}", bios.display()), || {
        build_image(&spec, Firmware::Bios, &bios)
    })?;
    progress::spin(&format!("writing {}", uefi.display()), || {
        build_image(&spec, Firmware::Uefi, &uefi)
    })?;
    Ok(Images { bios, uefi })
}

/// Builds the kernel and the contract images.
pub fn build_images(content: &ContentArgs) -> Result<Images> {
    content.check_supported()?;
    let kernel = build_kernel(Variant::Normal)?;
    progress::header("writing disk images");
    write_pair(&kernel, None, &paths::images(), "llmos-")
}

/// Test scenarios the test-hooks kernel understands (see
/// `kernel/src/test_hooks.rs`).
pub const TEST_SCENARIOS: &[&str] = &[
    "panic",
    "page-fault",
    "stack-overflow",
    "heap-growth",
    "panic-with-locks-held",
    "recursive-panic",
];

/// Builds the test-hooks kernel and one image pair per scenario in
/// `target/images/test/`: `<scenario>-bios.img`, `<scenario>-uefi.img`.
pub fn build_test_images() -> Result<()> {
    let kernel = build_kernel(Variant::TestHooks)?;
    let dir = paths::images().join("test");
    std::fs::create_dir_all(&dir)?;
    progress::header("writing test images");
    for scenario in TEST_SCENARIOS {
        if !scenario
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        {
            bail!("bad scenario name {scenario:?}");
        }
        let ramdisk = dir.join(format!("{scenario}.ramdisk"));
        std::fs::write(&ramdisk, format!("llmos-test:{scenario}\n"))?;
        write_pair(&kernel, Some(&ramdisk), &dir, &format!("{scenario}-"))?;
    }
    Ok(())
}

/// `cargo xtask image`.
pub fn image(args: &ImageArgs) -> Result<Images> {
    let images = build_images(&args.content)?;
    eprintln!(
        "BIOS image: {}\nUEFI image: {}",
        images.bios.display(),
        images.uefi.display()
    );
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_options_are_refused_loudly() {
        let c = ContentArgs {
            init: Some("/bin/true".into()),
            ..Default::default()
        };
        assert!(
            c.check_supported()
                .unwrap_err()
                .to_string()
                .starts_with("not yet supported: --init")
        );
        let c = ContentArgs {
            add: vec!["a:b".into()],
            ..Default::default()
        };
        assert!(
            c.check_supported()
                .unwrap_err()
                .to_string()
                .starts_with("not yet supported: --add")
        );
        let c = ContentArgs {
            model: Some("m.gguf".into()),
            ..Default::default()
        };
        assert!(
            c.check_supported()
                .unwrap_err()
                .to_string()
                .starts_with("not yet supported: --model")
        );
        let c = ContentArgs {
            no_model: true,
            ..Default::default()
        };
        assert!(c.check_supported().is_ok());
    }
}
