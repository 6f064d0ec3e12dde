//! Finding OVMF (UEFI firmware for QEMU).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// OVMF firmware files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ovmf {
    /// Split code (read-only) and variable-store template (copied per run).
    Split {
        /// The firmware code volume.
        code: PathBuf,
        /// The NVRAM template; each run gets a private copy.
        vars: PathBuf,
    },
    /// A single combined image passed with `-bios`.
    Combined(PathBuf),
}

/// Well-known locations, in order of preference (Debian/Ubuntu, Fedora,
/// Arch). Each entry is (code, vars).
const SPLIT_CANDIDATES: &[(&str, &str)] = &[
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
];
const COMBINED_CANDIDATES: &[&str] = &["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"];

/// Finds OVMF. `LLMOS_OVMF_CODE` + `LLMOS_OVMF_VARS` (or `LLMOS_OVMF` for
/// a combined image) override the search.
pub fn find() -> Result<Ovmf> {
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    find_in(
        env("LLMOS_OVMF_CODE"),
        env("LLMOS_OVMF_VARS"),
        env("LLMOS_OVMF"),
        SPLIT_CANDIDATES,
        COMBINED_CANDIDATES,
    )
}

fn find_in(
    code: Option<PathBuf>,
    vars: Option<PathBuf>,
    combined: Option<PathBuf>,
    split: &[(&str, &str)],
    combined_list: &[&str],
) -> Result<Ovmf> {
    match (code, vars) {
        (Some(c), Some(v)) => {
            for p in [&c, &v] {
                if !p.is_file() {
                    bail!(
                        "OVMF file {} (from LLMOS_OVMF_CODE/VARS) does not exist",
                        p.display()
                    );
                }
            }
            return Ok(Ovmf::Split { code: c, vars: v });
        }
        (Some(_), None) | (None, Some(_)) => {
            bail!("set both LLMOS_OVMF_CODE and LLMOS_OVMF_VARS, or neither")
        }
        (None, None) => {}
    }
    if let Some(c) = combined {
        if !c.is_file() {
            bail!(
                "OVMF image {} (from LLMOS_OVMF) does not exist",
                c.display()
            );
        }
        return Ok(Ovmf::Combined(c));
    }
    for (c, v) in split {
        if Path::new(c).is_file() && Path::new(v).is_file() {
            return Ok(Ovmf::Split {
                code: c.into(),
                vars: v.into(),
            });
        }
    }
    for c in combined_list {
        if Path::new(c).is_file() {
            return Ok(Ovmf::Combined(c.into()));
        }
    }
    bail!(
        "UEFI firmware (OVMF) not found; install it with `apt-get install ovmf` \
         (or run `bash scripts/setup.sh`), or point LLMOS_OVMF_CODE and LLMOS_OVMF_VARS at it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_split_then_combined() {
        let d = tempfile::tempdir().unwrap();
        let code = d.path().join("CODE.fd");
        let vars = d.path().join("VARS.fd");
        let comb = d.path().join("OVMF.fd");
        std::fs::write(&comb, b"x").unwrap();
        let (cs, vs, cb) = (
            code.to_str().unwrap(),
            vars.to_str().unwrap(),
            comb.to_str().unwrap(),
        );
        assert_eq!(
            find_in(None, None, None, &[(cs, vs)], &[cb]).unwrap(),
            Ovmf::Combined(comb.clone())
        );
        std::fs::write(&code, b"x").unwrap();
        std::fs::write(&vars, b"x").unwrap();
        assert_eq!(
            find_in(None, None, None, &[(cs, vs)], &[cb]).unwrap(),
            Ovmf::Split {
                code: code.clone(),
                vars: vars.clone()
            }
        );
    }

    #[test]
    fn overrides_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        let err =
            find_in(Some(missing.clone()), Some(missing.clone()), None, &[], &[]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = find_in(Some(missing), None, None, &[], &[]).unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
    }

    #[test]
    fn nothing_found_says_how_to_fix() {
        let err = find_in(None, None, None, &[], &[]).unwrap_err();
        assert!(err.to_string().contains("apt-get install ovmf"), "{err}");
    }
}
