//! The time-stamp counter.

use kcore::cpu::CpuidSource;

use super::cpu::Cpuid;

/// Reads the TSC.
pub fn read() -> u64 {
    // SAFETY: RDTSC has no memory effects; CR4.TSD is clear in ring 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The TSC frequency from CPUID leaf 0x15 (crystal ratio) or 0x16 (base
/// frequency), where the CPU reports them.
pub fn cpuid_frequency() -> Option<u64> {
    let max = Cpuid.cpuid(0, 0)[0];
    if max >= 0x15 {
        let [den, num, crystal, _] = Cpuid.cpuid(0x15, 0);
        if den != 0 && num != 0 && crystal != 0 {
            return Some(u64::from(crystal) * u64::from(num) / u64::from(den));
        }
    }
    if max >= 0x16 {
        let base_mhz = Cpuid.cpuid(0x16, 0)[0] & 0xffff;
        if base_mhz != 0 {
            return Some(u64::from(base_mhz) * 1_000_000);
        }
    }
    None
}
