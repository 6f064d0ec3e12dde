//! `cargo xtask run`: build the image and boot it in QEMU, serial console
//! on this terminal (Ctrl-A X quits, as in QEMU).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use llmos_qemu::machine::{qemu_binary, uefi_files};
use llmos_qemu::{Accel, Config, Display, FirmwareKind, Outcome, SerialMode, accel};

use crate::deps::{self, Need};
use crate::image::{self, ContentArgs};
use crate::{paths, progress};

/// `--accel` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelArg {
    /// Software emulation.
    Tcg,
    /// KVM (fails if it does not work here).
    Kvm,
    /// KVM if it really works here, else TCG.
    Auto,
}

/// Options of `cargo xtask run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    content: ContentArgs,
    /// Accelerator.
    #[arg(long, value_enum, default_value = "auto")]
    accel: AccelArg,
    /// Boot the BIOS disk image, as a USB stick boots on a PC (slower
    /// under TCG: the firmware reads the image sector by sector). By
    /// default QEMU loads the kernel and initrd itself (PVH direct boot).
    #[arg(long, conflicts_with = "uefi")]
    bios: bool,
    /// Boot the UEFI disk image with OVMF.
    #[arg(long)]
    uefi: bool,
    /// Virtual CPUs (default: as many as this machine has, up to 8).
    #[arg(long)]
    smp: Option<u32>,
    /// Guest memory, e.g. 512M, 2G.
    #[arg(long, default_value = "1G", value_parser = parse_mem)]
    mem: u64,
    /// The host port (on 127.0.0.1) forwarded to the guest's API port
    /// 8080; 0 forwards none.
    #[arg(long, value_name = "HOST_PORT", default_value_t = 8080)]
    port: u16,
    /// Start QEMU's gdb server on localhost:1234 and wait for gdb to attach
    /// (QEMU's -s -S); see docs/development.md.
    #[arg(long)]
    gdb: bool,
    /// Open QEMU's display window (with --bios or --uefi it shows the
    /// bootloader's framebuffer log; llmos itself talks over serial).
    #[arg(long)]
    display: bool,
}

/// Parses a memory size (`512M`, `2G`, `1024` = MiB) into MiB.
pub fn parse_mem(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'G' | 'g')) => (&s[..i], 1024),
        Some((i, 'M' | 'm')) => (&s[..i], 1),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 512M or 2G"))?;
    let mib = n
        .checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if mib < 128 {
        return Err(format!("{mib} MiB is too small; llmos needs at least 128M"));
    }
    Ok(mib)
}

/// Turns `--accel` into a concrete accelerator, probing KVM for `auto`.
fn resolve_accel(choice: AccelArg, probe_image: &Path) -> Result<Accel> {
    match choice {
        AccelArg::Tcg => Ok(Accel::Tcg),
        AccelArg::Kvm => {
            if let Some(why) = accel::kvm_static_check() {
                bail!("--accel kvm: KVM is not usable: {why}; use --accel tcg");
            }
            Ok(Accel::Kvm)
        }
        AccelArg::Auto => {
            if let Some(why) = accel::kvm_static_check() {
                eprintln!("note: using TCG because {why}");
                return Ok(Accel::Tcg);
            }
            // Cache the verdict per host boot: probing costs seconds.
            let boot_id =
                std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
            let cache = paths::target().join("kvm-probe");
            if let Ok(c) = std::fs::read_to_string(&cache)
                && let Some((id, verdict)) = c.split_once('\n')
                && id == boot_id.trim()
            {
                return Ok(if verdict.trim() == "kvm" {
                    Accel::Kvm
                } else {
                    Accel::Tcg
                });
            }
            let verdict = progress::spin("probing whether KVM works here", || {
                Ok(accel::probe_kvm(probe_image, Duration::from_secs(10)))
            })?;
            let accel = match verdict {
                Ok(t) => {
                    eprintln!("note: KVM works (probe boot took {:.1}s)", t.as_secs_f64());
                    Accel::Kvm
                }
                Err(why) => {
                    eprintln!("note: using TCG because {why}");
                    Accel::Tcg
                }
            };
            let _ = std::fs::write(&cache, format!("{}\n{accel}\n", boot_id.trim()));
            Ok(accel)
        }
    }
}

/// `cargo xtask run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let firmware = if args.uefi {
        FirmwareKind::Uefi
    } else {
        FirmwareKind::Bios
    };
    let mut needs = vec![Need::Qemu];
    if firmware == FirmwareKind::Uefi {
        needs.push(Need::Ovmf);
    }
    deps::ensure(&needs, "cargo xtask run")?;
    if args.port != 0 {
        // QEMU's own message for a taken port is cryptic; check first.
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", args.port)) {
            bail!(
                "host port {} is not free ({e}); is another llmos running? Choose another with --port, or --port 0 for none",
                args.port
            );
        }
    }
    let built = image::build_images(&args.content)?;
    let (mut cfg, what) = if args.uefi {
        (
            Config::new(&built.images.uefi),
            built.images.uefi.display().to_string(),
        )
    } else if args.bios {
        (
            Config::new(&built.images.bios),
            built.images.bios.display().to_string(),
        )
    } else {
        (
            built.direct_config(),
            format!(
                "{} with {} (direct boot)",
                built.kernel.display(),
                built.initrd.display()
            ),
        )
    };
    let accel = resolve_accel(args.accel, &built.images.bios)?;

    cfg.firmware = firmware;
    cfg.accel = accel;
    cfg.smp = args.smp.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8) as u32)
    });
    cfg.memory_mib = args.mem;
    // A virtio-net card on QEMU's user network (restricted: the guest
    // reaches only what is forwarded), with --port forwarded to 8080.
    cfg.network = Some(
        (args.port != 0)
            .then_some(llmos_qemu::PortForward {
                host: args.port,
                guest: image::API_PORT,
            })
            .into_iter()
            .collect(),
    );
    if args.port != 0 {
        eprintln!(
            "note: the API is at http://127.0.0.1:{}/v1 from this machine; the key is shown on the console",
            args.port
        );
    }
    cfg.serial = SerialMode::Interactive;
    cfg.display = if args.display {
        Display::Window
    } else {
        Display::None
    };
    if args.gdb {
        cfg.gdb_port = Some(1234);
        cfg.gdb_wait = true;
        eprintln!("note: QEMU waits for gdb on localhost:1234 (see docs/development.md)");
    }
    let (ovmf, vars) = uefi_files(&cfg)?;
    let qemu_args = cfg
        .args(ovmf.as_ref(), vars.as_ref().map(|v| v.path()))
        .map_err(anyhow::Error::msg)?;
    let mut cmd = Command::new(qemu_binary());
    cmd.args(&qemu_args);
    progress::header(&format!("booting {what} under {accel} (Ctrl-A X quits)"));
    eprintln!("$ {}", progress::render(&cmd));
    let status = cmd.status().context("starting QEMU")?;
    match Outcome::from_status(status) {
        Outcome::Success => Ok(()),
        Outcome::KernelFailure => {
            bail!("the kernel reported a failure (QEMU exit 35); see the log above")
        }
        Outcome::Infrastructure(_) if status.code() == Some(0) => {
            eprintln!("QEMU exited (quit from the console, or the guest reset)");
            Ok(())
        }
        Outcome::Infrastructure(why) => bail!("{why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_mem("1G"), Ok(1024));
        assert_eq!(parse_mem("512M"), Ok(512));
        assert_eq!(parse_mem("2g"), Ok(2048));
        assert_eq!(parse_mem("256"), Ok(256));
        assert!(parse_mem("64M").unwrap_err().contains("too small"));
        assert!(parse_mem("lots").unwrap_err().contains("not a size"));
        assert!(parse_mem("").is_err());
        assert!(parse_mem("99999999999999999999G").is_err());
    }
}
