//! Typed QEMU configuration and the command line built from it.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::accel::Accel;
use crate::firmware::Ovmf;

/// Which firmware boots the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirmwareKind {
    /// SeaBIOS, QEMU's default.
    Bios,
    /// OVMF.
    Uefi,
}

/// Where the serial console goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialMode {
    /// The terminal, multiplexed with the QEMU monitor (Ctrl-A X quits,
    /// Ctrl-A C toggles the monitor), for people.
    Interactive,
    /// QEMU's stdout, read by [`crate::Machine`], for tests.
    Captured,
}

/// Whether a display window opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// No window (the default: llmos talks over serial and network).
    None,
    /// QEMU's default display (shows the bootloader's framebuffer log).
    Window,
}

/// A host port forwarded to a guest TCP port (user-mode networking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortForward {
    /// Port on 127.0.0.1 of the host.
    pub host: u16,
    /// Port inside the guest.
    pub guest: u16,
}

/// A guest address whose TCP connections QEMU forwards to a port on the
/// host's 127.0.0.1 (user-mode networking's `guestfwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestForward {
    /// Address inside the guest network (e.g. 10.0.2.100).
    pub guest_addr: [u8; 4],
    /// Port at that address.
    pub guest_port: u16,
    /// Port on 127.0.0.1 of the host.
    pub host_port: u16,
}

/// Everything about one QEMU run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The raw disk image.
    pub image: PathBuf,
    /// BIOS or UEFI.
    pub firmware: FirmwareKind,
    /// TCG or KVM.
    pub accel: Accel,
    /// CPU model; `None` picks `max` under TCG and `host` under KVM.
    pub cpu: Option<String>,
    /// Virtual CPUs.
    pub smp: u32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// Serial routing.
    pub serial: SerialMode,
    /// Display.
    pub display: Display,
    /// Add the isa-debug-exit device so the kernel's exit status becomes
    /// QEMU's exit code.
    pub debug_exit: bool,
    /// Start a gdb server on this TCP port; `gdb_wait` freezes the CPU at
    /// start until gdb continues (`-S`).
    pub gdb_port: Option<u16>,
    /// See `gdb_port`.
    pub gdb_wait: bool,
    /// User-mode networking with these inbound forwards (`restrict=on`).
    /// `None` means no network device at all.
    pub network: Option<Vec<PortForward>>,
    /// Guest addresses forwarded to the host (with `network`).
    pub guest_forwards: Vec<GuestForward>,
    /// Host UDP ports on 127.0.0.1 forwarded to guest UDP ports (with
    /// `network`). With `restrict=on` QEMU delivers the host's datagrams
    /// but drops the guest's answers; see `capture`.
    pub udp_forwards: Vec<PortForward>,
    /// Write every frame through the card to this pcap file (QEMU's
    /// `filter-dump`; with `network`).
    pub capture: Option<PathBuf>,
    /// Offer only virtio's legacy (0.9.5) PCI interface on the card.
    pub legacy_nic: bool,
    /// Boot a Linux kernel directly (`-kernel`, `-initrd`, `-append`)
    /// instead of the disk image (the bench's Linux guest).
    pub direct_kernel: Option<DirectKernel>,
}

/// A kernel QEMU loads itself, with its initramfs and command line.
#[derive(Debug, Clone)]
pub struct DirectKernel {
    /// The kernel (a bzImage).
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The kernel's command line.
    pub append: String,
}

impl Config {
    /// Defaults for booting `image`: BIOS, TCG, 1 CPU, 1 GiB, captured
    /// serial, no display, debug-exit on, no network.
    pub fn new(image: impl Into<PathBuf>) -> Self {
        Self {
            image: image.into(),
            firmware: FirmwareKind::Bios,
            accel: Accel::Tcg,
            cpu: None,
            smp: 1,
            memory_mib: 1024,
            serial: SerialMode::Captured,
            display: Display::None,
            debug_exit: true,
            gdb_port: None,
            gdb_wait: false,
            network: None,
            guest_forwards: Vec::new(),
            udp_forwards: Vec::new(),
            capture: None,
            legacy_nic: false,
            direct_kernel: None,
        }
    }

    /// Defaults as [`Config::new`], with QEMU loading `kernel` and `initrd`
    /// itself (`-kernel`/`-initrd`, no command line): llmos's PVH direct
    /// boot.
    pub fn direct(kernel: impl Into<PathBuf>, initrd: impl Into<PathBuf>) -> Self {
        let kernel = kernel.into();
        let mut cfg = Self::new(&kernel);
        cfg.direct_kernel = Some(DirectKernel {
            kernel,
            initrd: initrd.into(),
            append: String::new(),
        });
        cfg
    }

    /// The arguments after the QEMU binary. `ovmf` is required for UEFI;
    /// `vars_copy` is the per-run writable copy of the OVMF variable store.
    pub fn args(
        &self,
        ovmf: Option<&Ovmf>,
        vars_copy: Option<&std::path::Path>,
    ) -> Result<Vec<OsString>, String> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |parts: &[&str]| a.extend(parts.iter().map(OsString::from));
        push(&["-machine", "q35"]);
        let (accel, default_cpu) = match self.accel {
            Accel::Tcg => ("tcg", "max"),
            Accel::Kvm => ("kvm", "host"),
        };
        push(&[
            "-accel",
            accel,
            "-cpu",
            self.cpu.as_deref().unwrap_or(default_cpu),
        ]);
        if self.smp == 0 {
            return Err("--smp must be at least 1".into());
        }
        // The floor is low so that the bench can find the smallest memory
        // a guest runs in; `cargo xtask run` asks for 128 MiB itself.
        if self.memory_mib < 32 {
            return Err(format!(
                "--mem {} MiB is too small; a guest needs at least 32 MiB",
                self.memory_mib
            ));
        }
        push(&[
            "-smp",
            &self.smp.to_string(),
            "-m",
            &format!("{}M", self.memory_mib),
        ]);
        push(&["-no-reboot"]);
        match self.display {
            Display::None => push(&["-display", "none"]),
            Display::Window => {}
        }
        match self.serial {
            SerialMode::Interactive => push(&["-serial", "mon:stdio"]),
            SerialMode::Captured => push(&["-serial", "stdio", "-monitor", "none"]),
        }
        if self.debug_exit {
            push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        }
        if self.firmware == FirmwareKind::Uefi {
            match ovmf {
                Some(Ovmf::Split { code, .. }) => {
                    let vars =
                        vars_copy.ok_or("UEFI with split OVMF needs a writable VARS copy")?;
                    let mut c = OsString::from("if=pflash,format=raw,unit=0,readonly=on,file=");
                    c.push(code);
                    let mut v = OsString::from("if=pflash,format=raw,unit=1,file=");
                    v.push(vars);
                    a.extend([OsString::from("-drive"), c, OsString::from("-drive"), v]);
                }
                Some(Ovmf::Combined(p)) => {
                    a.push("-bios".into());
                    a.push(p.into());
                }
                None => return Err("UEFI boot needs OVMF".into()),
            }
        }
        if let Some(k) = &self.direct_kernel {
            a.extend([
                OsString::from("-kernel"),
                k.kernel.clone().into(),
                OsString::from("-initrd"),
                k.initrd.clone().into(),
                OsString::from("-append"),
                OsString::from(&k.append),
            ]);
        } else {
            let mut drive = OsString::from("format=raw,snapshot=on,file=");
            drive.push(&self.image);
            a.push("-drive".into());
            a.push(drive);
        }
        match &self.network {
            None => {
                a.push("-nic".into());
                a.push("none".into());
            }
            Some(fwds) => {
                // `-netdev` + `-device` rather than `-nic`: QEMU 7.2 gives a
                // `-nic`-created virtio-net no MSI-X vectors.
                let mut nic = String::from("user,id=net0,restrict=on");
                for f in fwds {
                    nic.push_str(&format!(",hostfwd=tcp:127.0.0.1:{}-:{}", f.host, f.guest));
                }
                for f in &self.udp_forwards {
                    nic.push_str(&format!(",hostfwd=udp:127.0.0.1:{}-:{}", f.host, f.guest));
                }
                for g in &self.guest_forwards {
                    let [a, b, c, d] = g.guest_addr;
                    nic.push_str(&format!(
                        ",guestfwd=tcp:{a}.{b}.{c}.{d}:{}-tcp:127.0.0.1:{}",
                        g.guest_port, g.host_port
                    ));
                }
                a.push("-netdev".into());
                a.push(nic.into());
                if let Some(file) = &self.capture {
                    let mut o = OsString::from("filter-dump,id=dump0,netdev=net0,file=");
                    o.push(file);
                    a.push("-object".into());
                    a.push(o);
                }
                a.push("-device".into());
                a.push(if self.legacy_nic {
                    "virtio-net-pci,netdev=net0,vectors=3,disable-modern=on,disable-legacy=off"
                        .into()
                } else {
                    "virtio-net-pci,netdev=net0,vectors=3".into()
                });
            }
        }
        if let Some(port) = self.gdb_port {
            a.push("-gdb".into());
            a.push(format!("tcp:127.0.0.1:{port}").into());
            if self.gdb_wait {
                a.push("-S".into());
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(a: &[OsString]) -> Vec<String> {
        a.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn has_pair(a: &[String], k: &str, v: &str) -> bool {
        a.windows(2).any(|w| w[0] == k && w[1] == v)
    }

    #[test]
    fn default_bios_tcg_capture() {
        let a = strs(&Config::new("/x/llmos-bios.img").args(None, None).unwrap());
        assert!(has_pair(&a, "-accel", "tcg"));
        assert!(has_pair(&a, "-cpu", "max"));
        assert!(has_pair(&a, "-smp", "1"));
        assert!(has_pair(&a, "-m", "1024M"));
        assert!(has_pair(&a, "-serial", "stdio"));
        assert!(has_pair(&a, "-monitor", "none"));
        assert!(has_pair(&a, "-display", "none"));
        assert!(has_pair(
            &a,
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04"
        ));
        assert!(has_pair(
            &a,
            "-drive",
            "format=raw,snapshot=on,file=/x/llmos-bios.img"
        ));
        assert!(has_pair(&a, "-nic", "none"));
        assert!(a.contains(&"-no-reboot".to_string()));
        assert!(
            !a.iter()
                .any(|s| s.contains("pflash") || s == "-bios" || s == "-gdb")
        );
    }

    #[test]
    fn kvm_interactive_uefi_split() {
        let mut c = Config::new("/img");
        c.accel = Accel::Kvm;
        c.serial = SerialMode::Interactive;
        c.firmware = FirmwareKind::Uefi;
        c.smp = 4;
        c.memory_mib = 2048;
        let ovmf = Ovmf::Split {
            code: "/fw/CODE.fd".into(),
            vars: "/fw/VARS.fd".into(),
        };
        let a = strs(
            &c.args(Some(&ovmf), Some(std::path::Path::new("/tmp/vars")))
                .unwrap(),
        );
        assert!(has_pair(&a, "-accel", "kvm"));
        assert!(has_pair(&a, "-cpu", "host"));
        assert!(has_pair(&a, "-serial", "mon:stdio"));
        assert!(!a.contains(&"-monitor".to_string()));
        assert!(has_pair(&a, "-smp", "4"));
        assert!(has_pair(
            &a,
            "-drive",
            "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd"
        ));
        assert!(has_pair(
            &a,
            "-drive",
            "if=pflash,format=raw,unit=1,file=/tmp/vars"
        ));
        // Firmware comes before the boot disk.
        let fw = a.iter().position(|s| s.contains("pflash")).unwrap();
        let disk = a.iter().position(|s| s.contains("snapshot=on")).unwrap();
        assert!(fw < disk);
    }

    #[test]
    fn uefi_combined_and_missing() {
        let mut c = Config::new("/img");
        c.firmware = FirmwareKind::Uefi;
        let a = strs(
            &c.args(Some(&Ovmf::Combined("/fw/OVMF.fd".into())), None)
                .unwrap(),
        );
        assert!(has_pair(&a, "-bios", "/fw/OVMF.fd"));
        assert!(c.args(None, None).is_err());
        let split = Ovmf::Split {
            code: "/c".into(),
            vars: "/v".into(),
        };
        assert!(
            c.args(Some(&split), None).is_err(),
            "split OVMF needs a VARS copy"
        );
    }

    #[test]
    fn network_and_gdb() {
        let mut c = Config::new("/img");
        c.network = Some(vec![PortForward {
            host: 18080,
            guest: 8080,
        }]);
        c.gdb_port = Some(1234);
        c.gdb_wait = true;
        let a = strs(&c.args(None, None).unwrap());
        assert!(has_pair(
            &a,
            "-netdev",
            "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:8080"
        ));
        assert!(has_pair(
            &a,
            "-device",
            "virtio-net-pci,netdev=net0,vectors=3"
        ));
        c.guest_forwards.push(GuestForward {
            guest_addr: [10, 0, 2, 100],
            guest_port: 80,
            host_port: 18081,
        });
        let a = strs(&c.args(None, None).unwrap());
        assert!(has_pair(
            &a,
            "-netdev",
            "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:8080,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:18081"
        ));
        c.udp_forwards.push(PortForward {
            host: 15353,
            guest: 53,
        });
        let a = strs(&c.args(None, None).unwrap());
        assert!(has_pair(
            &a,
            "-netdev",
            "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=udp:127.0.0.1:15353-:53,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:18081"
        ));
        c.capture = Some("/tmp/n.pcap".into());
        let a = strs(&c.args(None, None).unwrap());
        assert!(has_pair(
            &a,
            "-object",
            "filter-dump,id=dump0,netdev=net0,file=/tmp/n.pcap"
        ));
        assert!(has_pair(&a, "-gdb", "tcp:127.0.0.1:1234"));
        c.cpu = Some("qemu64".into());
        let a = strs(&c.args(None, None).unwrap());
        assert!(has_pair(&a, "-cpu", "qemu64"));
        assert!(a.contains(&"-S".to_string()));
    }

    #[test]
    fn bad_sizes_are_rejected_with_reasons() {
        let mut c = Config::new("/img");
        c.smp = 0;
        assert!(c.args(None, None).unwrap_err().contains("--smp"));
        c.smp = 1;
        c.memory_mib = 16;
        assert!(c.args(None, None).unwrap_err().contains("32 MiB"));
    }
}
