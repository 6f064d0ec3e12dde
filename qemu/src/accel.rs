//! Accelerator choice: TCG everywhere, KVM only where it really works.
//!
//! `/dev/kvm` existing proves little: on our CI machines it is `kvm-pvm`,
//! software nested virtualisation under which a trivial kernel takes 20 s to
//! boot and OVMF fails. [`kvm_static_check`] rules out the cases that can
//! be seen without running anything; [`probe_kvm`] then boots a real image
//! under KVM with a short deadline.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::{Config, Machine};

/// A QEMU accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: works everywhere, slow for heavy compute.
    Tcg,
    /// Hardware virtualisation.
    Kvm,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        })
    }
}

/// Why KVM cannot be used, judged without running a guest; `None` if it
/// might work.
pub fn kvm_static_check() -> Option<String> {
    kvm_static_check_at(Path::new("/dev/kvm"), Path::new("/sys/module"))
}

fn kvm_static_check_at(dev: &Path, modules: &Path) -> Option<String> {
    if !dev.exists() {
        return Some(format!("{} does not exist", dev.display()));
    }
    if let Err(e) = OpenOptions::new().read(true).write(true).open(dev) {
        return Some(format!("cannot open {}: {e}", dev.display()));
    }
    if modules.join("kvm_pvm").exists() {
        return Some(format!(
            "{} is kvm-pvm (software nested virtualisation), which is slower than TCG here",
            dev.display()
        ));
    }
    None
}

/// Boots `image` under KVM and waits up to `deadline` for `kernel: ready`.
/// Returns the time it took, or why KVM is unusable.
pub fn probe_kvm(image: &Path, deadline: Duration) -> Result<Duration, String> {
    let mut cfg = Config::new(image);
    cfg.accel = Accel::Kvm;
    cfg.memory_mib = 256;
    let start = Instant::now();
    let mut m =
        Machine::spawn(&cfg, None).map_err(|e| format!("QEMU with KVM failed to start: {e:#}"))?;
    let ready = Regex::new(r"kernel: ready").expect("static regex");
    let result = m.wait_for(&ready, deadline);
    m.kill();
    match result {
        Ok(_) => Ok(start.elapsed()),
        Err(e) => Err(format!(
            "a KVM probe boot did not reach `kernel: ready` in {deadline:?} ({})",
            e.reason
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device() {
        let d = tempfile::tempdir().unwrap();
        let why = kvm_static_check_at(&d.path().join("kvm"), d.path()).unwrap();
        assert!(why.contains("does not exist"), "{why}");
    }

    #[test]
    fn pvm_is_rejected() {
        let d = tempfile::tempdir().unwrap();
        let dev = d.path().join("kvm");
        std::fs::write(&dev, b"").unwrap();
        assert_eq!(kvm_static_check_at(&dev, d.path()), None);
        std::fs::create_dir(d.path().join("kvm_pvm")).unwrap();
        let why = kvm_static_check_at(&dev, d.path()).unwrap();
        assert!(why.contains("kvm-pvm"), "{why}");
    }
}
