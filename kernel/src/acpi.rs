//! Reads the firmware's ACPI tables at boot: CPU count from the MADT and the
//! power-off registers from the FADT/DSDT. Parsing is `kcore::acpi`; this
//! module logs and records the results.
#![deny(unsafe_code)]

use kcore::acpi::{Acpi, Fadt, Madt, s5_sleep_type};

use crate::klog;
use crate::memory::phys::PhysWindow;
use crate::power::{self, AcpiPowerOff};

/// What the rest of the kernel learns from ACPI.
#[derive(Debug, Clone, Default)]
pub struct AcpiFacts {
    /// Usable processors in the MADT (0 if unknown).
    pub cpus: usize,
    /// The local APIC's physical address from the MADT, if given.
    pub lapic_addr: Option<u64>,
    /// RTC century register index, if the FADT names one.
    pub century: Option<u8>,
    /// APIC IDs of the usable processors.
    pub apic_ids: alloc::vec::Vec<u32>,
    /// PCI ECAM regions from the MCFG table.
    pub ecam: alloc::vec::Vec<kcore::pci::Ecam>,
}

/// Parses the tables found from the RSDP at `rsdp` (physical).
pub fn init(rsdp: Option<u64>) -> AcpiFacts {
    let mut facts = AcpiFacts::default();
    let Some(rsdp) = rsdp else {
        klog!(
            "acpi",
            "no RSDP from the bootloader; ACPI power-off unavailable"
        );
        return facts;
    };
    let mem = PhysWindow;
    let acpi = match Acpi::new(&mem, rsdp) {
        Ok(a) => a,
        Err(e) => {
            klog!("acpi", "ignoring ACPI tables: {e}");
            return facts;
        }
    };
    klog!("acpi", "RSDP at {rsdp:#x}, revision {}", acpi.revision);

    if let Some(t) = acpi.find(b"MCFG") {
        facts.ecam = kcore::pci::parse_mcfg(t);
    }
    match acpi.find(b"APIC").map(Madt::parse) {
        Some(Ok(madt)) => {
            facts.cpus = madt.apic_ids().len();
            facts.apic_ids = madt.apic_ids().to_vec();
            facts.lapic_addr = Some(madt.lapic_addr);
            klog!(
                "acpi",
                "MADT: {} CPU(s), APIC IDs {:?}, local APIC at {:#x}",
                facts.cpus,
                madt.apic_ids(),
                madt.lapic_addr
            );
        }
        Some(Err(e)) => klog!("acpi", "MADT unusable: {e}"),
        None => klog!("acpi", "no MADT"),
    }

    let fadt = match acpi.find(b"FACP").map(Fadt::parse) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            klog!("acpi", "FADT unusable: {e}; ACPI power-off unavailable");
            return facts;
        }
        None => {
            klog!("acpi", "no FADT; ACPI power-off unavailable");
            return facts;
        }
    };
    facts.century = (fadt.century != 0).then_some(fadt.century);
    let s5 = acpi.dsdt(&fadt).ok().and_then(s5_sleep_type);
    let port = |p: u32| u16::try_from(p).ok().filter(|&p| p != 0);
    match (s5, port(fadt.pm1a_cnt)) {
        (Some((a, b)), Some(pm1a_cnt)) => {
            power::set_acpi(AcpiPowerOff {
                pm1a_cnt,
                pm1b_cnt: fadt.pm1b_cnt.and_then(port),
                slp_typ_a: a,
                slp_typ_b: b,
                acpi_enable: port(fadt.smi_cmd)
                    .filter(|_| fadt.acpi_enable != 0)
                    .map(|p| (p, fadt.acpi_enable)),
            });
            klog!("acpi", "power-off via PM1a_CNT {pm1a_cnt:#x}, S5 type {a}");
        }
        _ => klog!(
            "acpi",
            "no usable \\_S5 or PM1a_CNT; ACPI power-off unavailable"
        ),
    }
    facts
}
