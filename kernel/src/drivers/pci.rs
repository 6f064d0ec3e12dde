//! PCI configuration access and the boot-time bus scan.
//!
//! Configuration space is reached through ECAM (memory-mapped, from the
//! ACPI MCFG table) when the firmware describes it for segment 0, else
//! through the legacy ports 0xCF8/0xCFC. The scan itself is
//! `kcore::pci::scan`; the devices it finds are logged and kept for the
//! drivers.

use alloc::vec::Vec;

use kcore::pci::{Bdf, ConfigSpace, Ecam, Function};
use spin::{Mutex, Once};
use x86_64::instructions::port::Port;

use crate::klog;

/// Legacy configuration mechanism #1 (ports 0xCF8/0xCFC).
pub struct PortConfig {
    lock: Mutex<()>,
}

fn address(at: Bdf, offset: u16) -> u32 {
    0x8000_0000
        | (u32::from(at.bus) << 16)
        | (u32::from(at.dev & 31) << 11)
        | (u32::from(at.func & 7) << 8)
        | u32::from(offset & 0xfc)
}

impl ConfigSpace for PortConfig {
    fn read32(&self, at: Bdf, offset: u16) -> u32 {
        if offset >= 256 {
            return u32::MAX;
        }
        let _g = self.lock.lock();
        // SAFETY: 0xCF8/0xCFC are the PCI configuration ports; the lock
        // keeps the address/data pair atomic, and reading configuration
        // space has no side effects on memory.
        unsafe {
            Port::<u32>::new(0xcf8).write(address(at, offset));
            Port::<u32>::new(0xcfc).read()
        }
    }

    fn write32(&self, at: Bdf, offset: u16, value: u32) {
        if offset >= 256 {
            return;
        }
        let _g = self.lock.lock();
        // SAFETY: as for `read32`; callers write only registers whose
        // meaning they know (command, BARs while sizing them).
        unsafe {
            Port::<u32>::new(0xcf8).write(address(at, offset));
            Port::<u32>::new(0xcfc).write(value);
        }
    }
}

/// Memory-mapped configuration (ECAM) for one region.
pub struct EcamConfig {
    region: Ecam,
    virt: u64,
}

impl EcamConfig {
    fn at(&self, at: Bdf, offset: u16) -> Option<*mut u32> {
        if offset >= 4096 {
            return None;
        }
        let off = self.region.offset(at)?;
        Some((self.virt + off + u64::from(offset & !3)) as *mut u32)
    }
}

impl ConfigSpace for EcamConfig {
    fn read32(&self, at: Bdf, offset: u16) -> u32 {
        match self.at(at, offset) {
            // SAFETY: the pointer lies inside the region mapped uncached in
            // `init` (checked by `Ecam::offset` and the offset bound) and is
            // dword-aligned.
            Some(p) => unsafe { p.read_volatile() },
            None => u32::MAX,
        }
    }

    fn write32(&self, at: Bdf, offset: u16, value: u32) {
        if let Some(p) = self.at(at, offset) {
            // SAFETY: as for `read32`.
            unsafe { p.write_volatile(value) }
        }
    }
}

/// The configuration mechanism in use.
pub enum Config {
    /// Ports 0xCF8/0xCFC.
    Ports(PortConfig),
    /// ECAM.
    Ecam(EcamConfig),
}

impl ConfigSpace for Config {
    fn read32(&self, at: Bdf, offset: u16) -> u32 {
        match self {
            Config::Ports(p) => p.read32(at, offset),
            Config::Ecam(e) => e.read32(at, offset),
        }
    }

    fn write32(&self, at: Bdf, offset: u16, value: u32) {
        match self {
            Config::Ports(p) => p.write32(at, offset, value),
            Config::Ecam(e) => e.write32(at, offset, value),
        }
    }
}

static CONFIG: Once<Config> = Once::new();
static DEVICES: Once<Vec<Function>> = Once::new();

/// The configuration space (after [`init`]).
pub fn config() -> Option<&'static Config> {
    CONFIG.get()
}

/// The functions found at boot.
pub fn devices() -> &'static [Function] {
    DEVICES.get().map_or(&[], |d| d.as_slice())
}

/// Chooses the configuration mechanism, scans the bus and logs what is
/// there.
pub fn init(ecam: &[Ecam]) {
    let config = CONFIG.call_once(|| {
        if let Some(r) = ecam.iter().find(|r| r.segment == 0 && r.start_bus == 0) {
            match crate::memory::mmio::map(r.base, r.len()) {
                Ok(virt) => {
                    klog!(
                        "pci",
                        "ECAM at {:#x} for buses {:02x}-{:02x}",
                        r.base,
                        r.start_bus,
                        r.end_bus
                    );
                    return Config::Ecam(EcamConfig { region: *r, virt });
                }
                Err(e) => klog!("pci", "cannot map ECAM at {:#x}: {e}; using ports", r.base),
            }
        }
        Config::Ports(PortConfig {
            lock: Mutex::new(()),
        })
    });
    let found = DEVICES.call_once(|| kcore::pci::scan(config));
    for f in found {
        klog!("pci", "{f}");
    }
    if found.is_empty() {
        klog!("pci", "no devices");
    }
}
