//! Contents of the generated `/proc` files, in the formats Linux uses
//! (programs parse them: glibc's `get_nprocs` fallback, llama.cpp's CPU
//! detection, allocators reading `/proc/self/maps`).

use alloc::string::String;
use core::fmt::Write;

use crate::cpu::CpuInfo;
use crate::vma::Prot;

/// `/proc/cpuinfo` for `cpus` CPUs (their APIC IDs), all described by
/// `info`, with the TSC frequency `khz`.
pub fn cpuinfo(info: &CpuInfo, apic_ids: &[u32], khz: u64) -> String {
    let mut flags = String::new();
    for f in info.features.iter() {
        if !flags.is_empty() {
            flags.push(' ');
        }
        flags.push_str(f.name());
    }
    let mut out = String::new();
    for (i, apic) in apic_ids.iter().enumerate() {
        let _ = write!(
            out,
            "processor\t: {i}\n\
             vendor_id\t: {}\n\
             cpu family\t: {}\n\
             model\t\t: {}\n\
             model name\t: {}\n\
             stepping\t: {}\n\
             cpu MHz\t\t: {}.{:03}\n\
             physical id\t: 0\n\
             siblings\t: {n}\n\
             core id\t\t: {i}\n\
             cpu cores\t: {n}\n\
             apicid\t\t: {apic}\n\
             initial apicid\t: {apic}\n\
             fpu\t\t: yes\n\
             fpu_exception\t: yes\n\
             wp\t\t: yes\n\
             flags\t\t: {flags}\n\
             bogomips\t: {}.{:02}\n\
             clflush size\t: 64\n\
             cache_alignment\t: 64\n\
             address sizes\t: 48 bits physical, 48 bits virtual\n\
             power management:\n\n",
            info.vendor_str(),
            info.family,
            info.model,
            info.brand_str(),
            info.stepping,
            khz / 1000,
            khz % 1000,
            khz * 2 / 1000,
            (khz * 2 % 1000) / 10,
            n = apic_ids.len(),
        );
    }
    out
}

/// Memory mapped with 2 MiB pages, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct HugeKb {
    /// Anonymous memory.
    pub anon: u64,
    /// File data.
    pub file: u64,
}

/// `/proc/meminfo` from sizes in KiB: total and free physical memory, the
/// RAM filesystem's file data (reported as `Shmem` and `Cached`, as Linux
/// reports tmpfs), the kernel heap in use (`Slab`, all unreclaimable),
/// anonymous memory mapped with 2 MiB pages (`AnonHugePages`) and file data
/// mapped with 2 MiB pages (`FilePmdMapped`).
pub fn meminfo(total_kb: u64, free_kb: u64, files_kb: u64, heap_kb: u64, huge: HugeKb) -> String {
    let mut out = String::new();
    let available = free_kb;
    for (name, v) in [
        ("MemTotal", total_kb),
        ("MemFree", free_kb),
        ("MemAvailable", available),
        ("Buffers", 0),
        ("Cached", files_kb),
        ("SwapCached", 0),
        ("Active", 0),
        ("Inactive", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Shmem", files_kb),
        ("Slab", heap_kb),
        ("SReclaimable", 0),
        ("SUnreclaim", heap_kb),
        ("AnonHugePages", huge.anon),
        ("FilePmdMapped", huge.file),
        ("HugePages_Total", 0),
    ] {
        if name == "HugePages_Total" {
            let _ = writeln!(out, "{:<16}{v:>8}", alloc::format!("{name}:"));
        } else {
            let _ = writeln!(out, "{:<16}{v:>8} kB", alloc::format!("{name}:"));
        }
    }
    let _ = writeln!(out, "{:<16}{:>8} kB", "Hugepagesize:", 2048);
    out
}

/// Socket counts for `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SockStat {
    /// Open sockets.
    pub sockets: usize,
    /// TCP sockets open by programs.
    pub tcp_in_use: usize,
    /// Closed TCP connections still finishing their close.
    pub tcp_orphans: usize,
    /// TCP sockets with buffers (also listeners' spares).
    pub tcp_allocated: usize,
    /// Bytes of TCP buffers.
    pub tcp_bytes: usize,
    /// UDP sockets.
    pub udp_in_use: usize,
    /// Bytes of UDP buffers.
    pub udp_bytes: usize,
}

/// `/proc/net/sockstat` in Linux's format (`mem` in pages of reserved
/// buffers).
pub fn sockstat(s: &SockStat) -> String {
    let pages = |b: usize| b.div_ceil(4096);
    alloc::format!(
        "sockets: used {}\nTCP: inuse {} orphan {} tw 0 alloc {} mem {}\nUDP: inuse {} mem {}\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n",
        s.sockets,
        s.tcp_in_use,
        s.tcp_orphans,
        s.tcp_allocated,
        pages(s.tcp_bytes),
        s.udp_in_use,
        pages(s.udp_bytes),
    )
}

/// One `/proc/self/maps` line: `start-end perms offset dev inode   name`.
#[allow(clippy::too_many_arguments)]
pub fn maps_line(
    out: &mut String,
    start: u64,
    end: u64,
    prot: Prot,
    shared: bool,
    offset: u64,
    dev: (u32, u32),
    ino: u64,
    name: &str,
) {
    let c = |on: bool, ch: char| if on { ch } else { '-' };
    let before = out.len();
    let _ = write!(
        out,
        "{start:08x}-{end:08x} {}{}{}{} {offset:08x} {:02x}:{:02x} {ino} ",
        c(prot.read, 'r'),
        c(prot.write, 'w'),
        c(prot.exec, 'x'),
        if shared { 's' } else { 'p' },
        dev.0,
        dev.1,
    );
    if !name.is_empty() {
        // Linux pads so that names start at column 73.
        while out.len() - before < 73 {
            out.push(' ');
        }
        out.push_str(name);
    }
    out.push('\n');
}

/// `/proc/vmstat` as Linux prints it: one `name value` line per counter.
pub fn vmstat(counters: &[(&str, u64)]) -> String {
    let mut out = String::new();
    for (name, v) in counters {
        let _ = writeln!(out, "{name} {v}");
    }
    out
}

/// `/proc/interrupts` as Linux prints it: a header of CPU columns, then one
/// row per interrupt source with a count per CPU and a description. Each
/// row is `(name, per-CPU counts, description)`.
pub fn interrupts(rows: &[(&str, &[u64], &str)]) -> String {
    let cpus = rows.iter().map(|(_, c, _)| c.len()).max().unwrap_or(0);
    let mut out = String::from("    ");
    for i in 0..cpus {
        let _ = write!(out, " {:>10}", alloc::format!("CPU{i}"));
    }
    out.push('\n');
    for (name, counts, what) in rows {
        let _ = write!(out, "{:>4}", alloc::format!("{name}:"));
        for i in 0..cpus {
            let _ = write!(out, " {:>10}", counts.get(i).copied().unwrap_or(0));
        }
        let _ = writeln!(out, "   {what}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_match_linux_layout() {
        let mut s = String::new();
        maps_line(
            &mut s,
            0x40_0000,
            0x45_2000,
            Prot::RX,
            false,
            0,
            (0, 0x1e),
            12,
            "/init",
        );
        maps_line(
            &mut s,
            0x7fff_0000_0000,
            0x7fff_0002_1000,
            Prot::RW,
            false,
            0,
            (0, 0),
            0,
            "",
        );
        let lines: alloc::vec::Vec<&str> = s.lines().collect();
        assert_eq!(
            &lines[0][..43],
            "00400000-00452000 r-xp 00000000 00:1e 12   "
        );
        assert_eq!(lines[0].find("/init"), Some(73));
        assert_eq!(lines[1], "7fff00000000-7fff00021000 rw-p 00000000 00:00 0 ");
    }

    #[test]
    fn sockstat_format() {
        let s = sockstat(&SockStat {
            sockets: 3,
            tcp_in_use: 2,
            tcp_orphans: 1,
            tcp_allocated: 5,
            tcp_bytes: 4097,
            udp_in_use: 1,
            udp_bytes: 0,
        });
        assert_eq!(
            s,
            "sockets: used 3\nTCP: inuse 2 orphan 1 tw 0 alloc 5 mem 2\nUDP: inuse 1 mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n"
        );
    }

    #[test]
    fn interrupts_table() {
        let t = interrupts(&[
            ("LOC", &[1234, 5], "Local timer interrupts"),
            ("RES", &[0, 17], "Rescheduling interrupts"),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "           CPU0       CPU1");
        assert_eq!(
            lines[1],
            "LOC:       1234          5   Local timer interrupts"
        );
        assert_eq!(
            lines[2],
            "RES:          0         17   Rescheduling interrupts"
        );
        // Parsable the way tools read it: the name, then one count per CPU.
        let cols: Vec<u64> = lines[1]
            .split_whitespace()
            .skip(1)
            .take(2)
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(cols, [1234, 5]);
    }

    #[test]
    fn vmstat_lines() {
        let v = vmstat(&[("pgfault", 12), ("thp_fault_alloc", 3)]);
        assert_eq!(v, "pgfault 12\nthp_fault_alloc 3\n");
    }

    #[test]
    fn meminfo_fields() {
        let huge = HugeKb {
            anon: 6144,
            file: 4096,
        };
        let m = meminfo(1024 * 1024, 512 * 1024, 100, 2048, huge);
        assert!(m.contains("\nAnonHugePages:      6144 kB\n"));
        assert!(m.starts_with("MemTotal:        1048576 kB\n"));
        assert!(m.contains("\nMemAvailable:     524288 kB\n"));
        assert!(m.contains("\nShmem:               100 kB\n"));
        assert!(m.contains("\nHugePages_Total:       0\n"));
        assert!(m.contains("\nFilePmdMapped:      4096 kB\n"));
        assert!(m.contains("\nSlab:               2048 kB\n"));
    }

    #[test]
    fn cpuinfo_per_cpu() {
        let mut brand = [0u8; 48];
        brand[..8].copy_from_slice(b"Test CPU");
        let mut features = crate::cpu::Features::default();
        features.insert(crate::cpu::Feature::Fpu);
        features.insert(crate::cpu::Feature::Avx2);
        let info = CpuInfo {
            vendor: *b"GenuineIntel",
            brand,
            family: 6,
            model: 85,
            stepping: 4,
            features,
            xsave_supported: 0,
            hypervisor: None,
        };
        let s = cpuinfo(&info, &[0, 1], 2_500_000);
        assert_eq!(s.matches("processor\t: ").count(), 2);
        assert!(s.contains("processor\t: 1\n"));
        assert!(s.contains("cpu MHz\t\t: 2500.000\n"));
        assert!(s.contains("siblings\t: 2\n"));
        assert!(s.contains("\nflags\t\t: fpu avx2\n"));
        assert!(s.contains("\nmodel name\t: Test CPU\n"));
        assert!(s.ends_with("power management:\n\n"));
    }
}
