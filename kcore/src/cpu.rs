//! CPUID decoding.
//!
//! [`CpuInfo::read`] queries a [`CpuidSource`] (the real `cpuid` instruction
//! in the kernel, a table in tests) and decodes vendor, brand string,
//! family/model/stepping, a table-driven feature set, and the XSAVE state
//! components the CPU supports. [`xcr0_for`] picks which extended-state
//! components the kernel enables: llama.cpp needs AVX2/FMA/F16C and uses
//! AVX-512 where present, so the kernel turns on what the CPU offers.

use core::fmt;

/// Something that can execute `cpuid`.
pub trait CpuidSource {
    /// Returns `[eax, ebx, ecx, edx]` for `leaf`/`subleaf`.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
}

/// A CPUID output register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reg {
    Ebx = 1,
    Ecx = 2,
    Edx = 3,
}

macro_rules! features {
    ($($variant:ident => $name:literal, $leaf:literal, $sub:literal, $reg:ident, $bit:literal;)*) => {
        /// A CPU feature the kernel reports or relies on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Feature { $($variant,)* }

        impl Feature {
            /// Every feature, in the order the boot log prints them.
            pub const ALL: &'static [Feature] = &[$(Feature::$variant,)*];

            /// The name Linux uses in /proc/cpuinfo.
            pub const fn name(self) -> &'static str {
                match self { $(Feature::$variant => $name,)* }
            }

            const fn location(self) -> (u32, u32, Reg, u8) {
                match self { $(Feature::$variant => ($leaf, $sub, Reg::$reg, $bit),)* }
            }
        }
    };
}

features! {
    Fpu => "fpu", 1, 0, Edx, 0;
    Tsc => "tsc", 1, 0, Edx, 4;
    Msr => "msr", 1, 0, Edx, 5;
    Apic => "apic", 1, 0, Edx, 9;
    Pge => "pge", 1, 0, Edx, 13;
    Fxsr => "fxsr", 1, 0, Edx, 24;
    Sse => "sse", 1, 0, Edx, 25;
    Sse2 => "sse2", 1, 0, Edx, 26;
    Sse3 => "pni", 1, 0, Ecx, 0;
    Pclmulqdq => "pclmulqdq", 1, 0, Ecx, 1;
    Ssse3 => "ssse3", 1, 0, Ecx, 9;
    Fma => "fma", 1, 0, Ecx, 12;
    Cx16 => "cx16", 1, 0, Ecx, 13;
    Sse4_1 => "sse4_1", 1, 0, Ecx, 19;
    Sse4_2 => "sse4_2", 1, 0, Ecx, 20;
    X2apic => "x2apic", 1, 0, Ecx, 21;
    Movbe => "movbe", 1, 0, Ecx, 22;
    Popcnt => "popcnt", 1, 0, Ecx, 23;
    TscDeadline => "tsc_deadline_timer", 1, 0, Ecx, 24;
    Aes => "aes", 1, 0, Ecx, 25;
    Xsave => "xsave", 1, 0, Ecx, 26;
    Avx => "avx", 1, 0, Ecx, 28;
    F16c => "f16c", 1, 0, Ecx, 29;
    Rdrand => "rdrand", 1, 0, Ecx, 30;
    Hypervisor => "hypervisor", 1, 0, Ecx, 31;
    Fsgsbase => "fsgsbase", 7, 0, Ebx, 0;
    Bmi1 => "bmi1", 7, 0, Ebx, 3;
    Avx2 => "avx2", 7, 0, Ebx, 5;
    Smep => "smep", 7, 0, Ebx, 7;
    Bmi2 => "bmi2", 7, 0, Ebx, 8;
    Erms => "erms", 7, 0, Ebx, 9;
    Avx512f => "avx512f", 7, 0, Ebx, 16;
    Avx512dq => "avx512dq", 7, 0, Ebx, 17;
    Rdseed => "rdseed", 7, 0, Ebx, 18;
    Adx => "adx", 7, 0, Ebx, 19;
    Smap => "smap", 7, 0, Ebx, 20;
    Avx512cd => "avx512cd", 7, 0, Ebx, 28;
    Avx512bw => "avx512bw", 7, 0, Ebx, 30;
    Avx512vl => "avx512vl", 7, 0, Ebx, 31;
    Avx512vbmi => "avx512vbmi", 7, 0, Ecx, 1;
    Umip => "umip", 7, 0, Ecx, 2;
    Pku => "pku", 7, 0, Ecx, 3;
    Avx512vnni => "avx512_vnni", 7, 0, Ecx, 11;
    La57 => "la57", 7, 0, Ecx, 16;
    Avx512fp16 => "avx512_fp16", 7, 0, Edx, 23;
    Syscall => "syscall", 0x8000_0001, 0, Edx, 11;
    Nx => "nx", 0x8000_0001, 0, Edx, 20;
    Pdpe1gb => "pdpe1gb", 0x8000_0001, 0, Edx, 26;
    Rdtscp => "rdtscp", 0x8000_0001, 0, Edx, 27;
    Lm => "lm", 0x8000_0001, 0, Edx, 29;
    Lzcnt => "abm", 0x8000_0001, 0, Ecx, 5;
    InvariantTsc => "constant_tsc", 0x8000_0007, 0, Edx, 8;
}

/// A set of [`Feature`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features(u128);

impl Features {
    /// Whether `f` is present.
    pub fn has(self, f: Feature) -> bool {
        self.0 & (1 << f as u32) != 0
    }

    /// Adds `f`.
    pub fn insert(&mut self, f: Feature) {
        self.0 |= 1 << f as u32;
    }

    /// The present features, in table order.
    pub fn iter(self) -> impl Iterator<Item = Feature> {
        Feature::ALL.iter().copied().filter(move |f| self.has(*f))
    }
}

/// Space-separated feature names, as in /proc/cpuinfo's `flags` line.
impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, feat) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(feat.name())?;
        }
        Ok(())
    }
}

/// XSAVE state-component bits of XCR0.
pub mod xstate {
    /// x87 FPU state (must always be set).
    pub const X87: u64 = 1 << 0;
    /// SSE (XMM registers, MXCSR).
    pub const SSE: u64 = 1 << 1;
    /// AVX (upper halves of YMM registers).
    pub const AVX: u64 = 1 << 2;
    /// AVX-512 opmask registers k0–k7.
    pub const OPMASK: u64 = 1 << 5;
    /// Upper halves of ZMM0–ZMM15.
    pub const ZMM_HI256: u64 = 1 << 6;
    /// ZMM16–ZMM31.
    pub const HI16_ZMM: u64 = 1 << 7;
    /// All three AVX-512 components; they must be enabled together.
    pub const AVX512: u64 = OPMASK | ZMM_HI256 | HI16_ZMM;
}

/// Chooses the XCR0 value to program given the components the CPU supports
/// (CPUID leaf 0xD, subleaf 0, EDX:EAX). Enables x87, SSE, AVX and AVX-512
/// where supported, honouring the architectural dependencies (AVX needs SSE;
/// AVX-512 needs AVX and all three of its components). Leaves out MPX, PKRU
/// and AMX, which userspace must opt into on Linux.
pub fn xcr0_for(supported: u64) -> u64 {
    let mut x = xstate::X87;
    if supported & xstate::SSE != 0 {
        x |= xstate::SSE;
        if supported & xstate::AVX != 0 {
            x |= xstate::AVX;
            if supported & xstate::AVX512 == xstate::AVX512 {
                x |= xstate::AVX512;
            }
        }
    }
    x
}

/// Decoded CPUID information.
#[derive(Debug, Clone)]
pub struct CpuInfo {
    /// Vendor string, e.g. `GenuineIntel`.
    pub vendor: [u8; 12],
    /// Brand string (48 bytes, NUL padded), empty if not reported.
    pub brand: [u8; 48],
    /// Display family (base + extended).
    pub family: u32,
    /// Display model (base + extended).
    pub model: u32,
    /// Stepping.
    pub stepping: u32,
    /// Feature flags.
    pub features: Features,
    /// XCR0 components the CPU supports (leaf 0xD), 0 without XSAVE.
    pub xsave_supported: u64,
    /// Hypervisor vendor signature (leaf 0x4000_0000), if any.
    pub hypervisor: Option<[u8; 12]>,
}

fn regs_to_bytes(regs: [u32; 3]) -> [u8; 12] {
    let mut out = [0; 12];
    for (i, r) in regs.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&r.to_le_bytes());
    }
    out
}

fn trim_ascii(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    match core::str::from_utf8(&bytes[..end]) {
        Ok(s) => s.trim(),
        Err(_) => "?",
    }
}

impl CpuInfo {
    /// Reads and decodes CPUID, querying only leaves the CPU reports.
    pub fn read(src: &impl CpuidSource) -> Self {
        let [max_basic, b, c, d] = src.cpuid(0, 0);
        let vendor = regs_to_bytes([b, d, c]);
        let [max_ext, ..] = src.cpuid(0x8000_0000, 0);
        let available = |leaf: u32| {
            if leaf >= 0x8000_0000 {
                leaf <= max_ext && max_ext >= 0x8000_0000
            } else {
                leaf <= max_basic
            }
        };

        let mut features = Features::default();
        for &f in Feature::ALL {
            let (leaf, sub, reg, bit) = f.location();
            if available(leaf) && src.cpuid(leaf, sub)[reg as usize] & (1 << bit) != 0 {
                features.insert(f);
            }
        }

        let (mut family, mut model, mut stepping) = (0, 0, 0);
        if available(1) {
            let eax = src.cpuid(1, 0)[0];
            stepping = eax & 0xf;
            let base_family = (eax >> 8) & 0xf;
            let base_model = (eax >> 4) & 0xf;
            family = base_family;
            model = base_model;
            if base_family == 0xf {
                family += (eax >> 20) & 0xff;
            }
            if base_family == 0x6 || base_family == 0xf {
                model |= ((eax >> 16) & 0xf) << 4;
            }
        }

        let mut brand = [0u8; 48];
        if available(0x8000_0004) {
            for (i, leaf) in (0x8000_0002u32..=0x8000_0004).enumerate() {
                for (j, r) in src.cpuid(leaf, 0).iter().enumerate() {
                    let at = i * 16 + j * 4;
                    brand[at..at + 4].copy_from_slice(&r.to_le_bytes());
                }
            }
        }

        let xsave_supported = if features.has(Feature::Xsave) && available(0xd) {
            let [eax, _, _, edx] = src.cpuid(0xd, 0);
            u64::from(eax) | (u64::from(edx) << 32)
        } else {
            0
        };

        let hypervisor = features.has(Feature::Hypervisor).then(|| {
            let [_, b, c, d] = src.cpuid(0x4000_0000, 0);
            regs_to_bytes([b, c, d])
        });

        CpuInfo {
            vendor,
            brand,
            family,
            model,
            stepping,
            features,
            xsave_supported,
            hypervisor,
        }
    }

    /// The vendor string.
    pub fn vendor_str(&self) -> &str {
        trim_ascii(&self.vendor)
    }

    /// The brand string, or the vendor if the CPU has none.
    pub fn brand_str(&self) -> &str {
        match trim_ascii(&self.brand) {
            "" => self.vendor_str(),
            s => s,
        }
    }

    /// The hypervisor signature, e.g. `TCGTCGTCGTCG` or `KVMKVMKVM`.
    pub fn hypervisor_str(&self) -> Option<&str> {
        self.hypervisor.as_ref().map(|h| trim_ascii(h))
    }

    /// Whether we run under QEMU (TCG or KVM), where the isa-debug-exit
    /// device may be present.
    pub fn is_qemu_like(&self) -> bool {
        matches!(self.hypervisor_str(), Some("TCGTCGTCGTCG" | "KVMKVMKVM"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A CPUID table; unknown leaves read as zero like on real CPUs.
    struct Table(HashMap<(u32, u32), [u32; 4]>);

    impl CpuidSource for Table {
        fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
            self.0.get(&(leaf, subleaf)).copied().unwrap_or([0; 4])
        }
    }

    fn le(s: &[u8]) -> u32 {
        u32::from_le_bytes(s.try_into().unwrap())
    }

    /// Roughly what QEMU TCG's `-cpu max` reports.
    fn qemu_like() -> Table {
        let mut t = HashMap::new();
        t.insert((0, 0), [0xd, le(b"Genu"), le(b"ntel"), le(b"ineI")]);
        // family 6, model 0x55 (ext model 5, base 5), stepping 4
        t.insert(
            (1, 0),
            [
                0x0005_0654,
                0,
                (1 << 28) | (1 << 26) | (1 << 12) | (1 << 31) | (1 << 30),
                (1 << 25) | (1 << 26) | 1,
            ],
        );
        t.insert((7, 0), [0, (1 << 5) | (1 << 7) | (1 << 18), 0, 0]);
        t.insert((0xd, 0), [0x7, 0, 0, 0]);
        t.insert((0x4000_0000, 0), [0, le(b"TCGT"), le(b"CGTC"), le(b"GTCG")]);
        t.insert((0x8000_0000, 0), [0x8000_0008, 0, 0, 0]);
        t.insert((0x8000_0001, 0), [0, 0, 0, (1 << 20) | (1 << 29)]);
        let brand = *b"QEMU TCG CPU version 2.5+\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        for i in 0..3u32 {
            let chunk = &brand[i as usize * 16..];
            t.insert(
                (0x8000_0002 + i, 0),
                [
                    le(&chunk[0..4]),
                    le(&chunk[4..8]),
                    le(&chunk[8..12]),
                    le(&chunk[12..16]),
                ],
            );
        }
        Table(t)
    }

    #[test]
    fn decodes_identity() {
        let info = CpuInfo::read(&qemu_like());
        assert_eq!(info.vendor_str(), "GenuineIntel");
        assert_eq!(info.brand_str(), "QEMU TCG CPU version 2.5+");
        assert_eq!((info.family, info.model, info.stepping), (6, 0x55, 4));
        assert_eq!(info.hypervisor_str(), Some("TCGTCGTCGTCG"));
        assert!(info.is_qemu_like());
    }

    #[test]
    fn decodes_features() {
        let info = CpuInfo::read(&qemu_like());
        let f = info.features;
        for want in [
            Feature::Avx,
            Feature::Avx2,
            Feature::Fma,
            Feature::Xsave,
            Feature::Rdrand,
            Feature::Rdseed,
            Feature::Smep,
            Feature::Nx,
            Feature::Lm,
            Feature::Sse,
            Feature::Sse2,
            Feature::Fpu,
        ] {
            assert!(f.has(want), "{want:?}");
        }
        assert!(!f.has(Feature::Avx512f));
        assert!(
            !f.has(Feature::InvariantTsc),
            "leaf 0x80000007 reads as zero"
        );
        assert_eq!(info.xsave_supported, 0x7);
        assert_eq!(
            f.to_string(),
            "fpu sse sse2 fma xsave avx rdrand hypervisor avx2 smep rdseed nx lm"
        );
    }

    #[test]
    fn leaves_above_the_maximum_are_not_trusted() {
        let mut t = qemu_like();
        // Garbage in leaf 7 while max_basic says 1: must be ignored.
        t.0.insert((0, 0), [1, le(b"Genu"), le(b"ntel"), le(b"ineI")]);
        let info = CpuInfo::read(&t);
        assert!(!info.features.has(Feature::Avx2));
        assert_eq!(info.xsave_supported, 0);
    }

    #[test]
    fn no_brand_falls_back_to_vendor() {
        let mut t = qemu_like();
        t.0.insert((0x8000_0000, 0), [0x8000_0001, 0, 0, 0]);
        assert_eq!(CpuInfo::read(&t).brand_str(), "GenuineIntel");
    }

    #[test]
    fn xcr0_selection() {
        use xstate::*;
        assert_eq!(xcr0_for(0), X87);
        assert_eq!(xcr0_for(X87 | SSE), X87 | SSE);
        assert_eq!(xcr0_for(X87 | AVX), X87, "AVX without SSE is not enabled");
        assert_eq!(xcr0_for(0x7), 0x7);
        assert_eq!(xcr0_for(0x7 | OPMASK | ZMM_HI256), 0x7, "partial AVX-512");
        assert_eq!(xcr0_for(0xe7), 0xe7);
        assert_eq!(xcr0_for(0xe7 | (1 << 9) | (1 << 17) | (1 << 18)), 0xe7);
        assert_eq!(xcr0_for(0x3 | AVX512), 0x3, "AVX-512 needs AVX");
    }
}
