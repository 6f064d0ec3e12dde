//! CPU identification and feature enabling.
//!
//! llama.cpp runs SSE/AVX/AVX2 (and AVX-512 where present) code, so the
//! kernel turns on the extended-state machinery the CPU offers: CR0.MP with
//! CR0.EM clear, CR4.OSFXSR/OSXMMEXCPT, CR4.OSXSAVE and XCR0 via XSETBV.
//! It also sets EFER.NXE (no-execute pages) and CR0.WP (write protection
//! applies to ring 0). The kernel itself is built soft-float and never
//! touches vector registers except to verify they work.

use ::x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use ::x86_64::registers::model_specific::{Efer, EferFlags};
use kcore::cpu::{CpuInfo, CpuidSource, Feature, xcr0_for, xstate};

/// The `cpuid` instruction.
#[derive(Debug, Clone, Copy)]
pub struct Cpuid;

impl CpuidSource for Cpuid {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    }
}

/// Reads and decodes CPUID on this CPU.
pub fn detect() -> CpuInfo {
    CpuInfo::read(&Cpuid)
}

/// What [`enable`] turned on.
#[derive(Debug, Clone, Copy)]
pub struct Enabled {
    /// The XCR0 value now in effect (x87|SSE at least; 0 without XSAVE).
    pub xcr0: u64,
    /// Bytes an XSAVE area needs for the enabled components.
    pub xsave_area: u32,
    /// Whether EFER.NXE is on.
    pub nx: bool,
    /// Whether an AVX instruction executed after enabling.
    pub avx_verified: bool,
    /// Supervisor-mode execution prevention is on.
    pub smep: bool,
    /// Supervisor-mode access prevention is on.
    pub smap: bool,
}

/// Enables FPU/SSE/AVX/AVX-512 state, NX and write protection.
pub fn enable(info: &CpuInfo) -> Enabled {
    let f = info.features;
    // SAFETY: setting MP/WP and clearing EM/TS is the architectural set-up
    // for x87/SSE use and kernel write protection; the kernel's own page
    // tables map nothing writable that it must write through a read-only
    // mapping.
    unsafe {
        Cr0::update(|cr0| {
            cr0.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            cr0.insert(Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::WRITE_PROTECT);
        });
    }
    let mut cr4_set = Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE;
    if f.has(Feature::Xsave) {
        cr4_set |= Cr4Flags::OSXSAVE;
    }
    // The kernel never executes user pages, and touches them only inside
    // the STAC/CLAC-bracketed copy routine (`usercopy`).
    let smep = f.has(Feature::Smep);
    let smap = f.has(Feature::Smap);
    if smep {
        cr4_set |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if smap {
        cr4_set |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    super::usercopy::set_smap(smap);
    // SAFETY: OSFXSR/OSXMMEXCPT require SSE (every x86_64 CPU has it);
    // OSXSAVE, SMEP and SMAP are only set when CPUID reports them, and no
    // user pages exist yet.
    unsafe { Cr4::update(|cr4| cr4.insert(cr4_set)) };

    let mut xcr0 = 0;
    let mut xsave_area = 0;
    if f.has(Feature::Xsave) {
        xcr0 = xcr0_for(info.xsave_supported);
        // SAFETY: CR4.OSXSAVE is set, and `xcr0_for` only selects
        // components the CPU reports in a valid combination (x87 always,
        // AVX only with SSE, the AVX-512 triple together).
        unsafe { xsetbv(0, xcr0) };
        xcr0 = xgetbv(0);
        xsave_area = Cpuid.cpuid(0xd, 0)[1];
    }

    let nx = f.has(Feature::Nx);
    if nx {
        // SAFETY: NXE is supported (CPUID 0x8000_0001:EDX.NX) and only
        // makes the NX bit in page tables meaningful.
        unsafe { Efer::update(|e| e.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }

    let avx_verified = xcr0 & xstate::AVX != 0
        && f.has(Feature::Avx)
        && {
            // SAFETY: AVX state is enabled in XCR0 and CPUID reports AVX, so the
            // instruction is valid; it clobbers only ymm0, which holds no
            // kernel or user state yet (declared as clobbered).
            unsafe {
                core::arch::asm!("vpxor xmm0, xmm0, xmm0", "vxorps ymm0, ymm0, ymm0", out("xmm0") _, options(nomem, nostack))
            };
            true
        };

    Enabled {
        xcr0,
        xsave_area,
        nx,
        avx_verified,
        smep,
        smap,
    }
}

/// Writes an extended control register.
///
/// # Safety
///
/// CR4.OSXSAVE must be set and `value` must be a combination the CPU
/// accepts for register `xcr`, or the instruction faults.
unsafe fn xsetbv(xcr: u32, value: u64) {
    // SAFETY: upheld by the caller.
    unsafe {
        core::arch::asm!("xsetbv", in("ecx") xcr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nomem, nostack));
    }
}

/// Reads an extended control register (requires CR4.OSXSAVE).
fn xgetbv(xcr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: only called after CR4.OSXSAVE was set, when XGETBV is valid.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") xcr, out("eax") lo, out("edx") hi, options(nomem, nostack));
    }
    u64::from(lo) | (u64::from(hi) << 32)
}
