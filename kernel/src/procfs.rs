//! The generated `/proc` files.
//!
//! `/proc` lives in the RAM filesystem: at process start it gets
//! `/proc/1/` with `exe` (a symlink to the program) and `maps`, a
//! `/proc/self` symlink to `1`, `/proc/cpuinfo`, `/proc/meminfo`,
//! `/proc/interrupts` (timer ticks and reschedule IPIs per CPU),
//! `/proc/vmstat` (page faults and 2 MiB page events),
//! `/proc/net/sockstat` and `/proc/llmos/random` (which sources seeded the
//! kernel's CSPRNG, and whether a healthy hardware one was among them).
//! The generated files are empty, read-only inodes (size 0, as on Linux);
//! opening one snapshots its text (`kcore::procfs`) into the description,
//! so reads see one consistent version.
#![deny(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use llmos_fs::ramfs::{Ino, ROOT};
use spin::Mutex;

use crate::vfs;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gen {
    CpuInfo,
    MemInfo,
    Maps,
    SockStat,
    Interrupts,
    VmStat,
    Random,
}

static FILES: Mutex<Vec<(Ino, Gen)>> = Mutex::new(Vec::new());

/// Creates `/proc` for the process started from `exe`. Called again when
/// a restarted program starts: what exists already is kept.
pub fn init(exe: &str) {
    let now = crate::time::realtime_nanos();
    let mut files = Vec::new();
    let r = vfs::with(|fs| {
        for dir in ["/proc", "/proc/1", "/proc/net", "/proc/llmos"] {
            let _ = fs.mkdir(ROOT, dir, 0o555, now);
        }
        let _ = fs.symlink("1", ROOT, "/proc/self", now);
        if fs.readlink(ROOT, "/proc/1/exe") != Ok(exe) {
            let _ = fs.unlink(ROOT, "/proc/1/exe", now);
            let _ = fs.symlink(exe, ROOT, "/proc/1/exe", now);
        }
        for (path, g) in [
            ("/proc/cpuinfo", Gen::CpuInfo),
            ("/proc/meminfo", Gen::MemInfo),
            ("/proc/1/maps", Gen::Maps),
            ("/proc/net/sockstat", Gen::SockStat),
            ("/proc/interrupts", Gen::Interrupts),
            ("/proc/vmstat", Gen::VmStat),
            ("/proc/llmos/random", Gen::Random),
        ] {
            let ino = match fs.lookup(ROOT, path, false) {
                Ok(ino) => ino,
                Err(_) => fs.create(ROOT, path, 0o444, false, now)?,
            };
            files.push((ino, g));
        }
        Ok(())
    });
    if let Err(e) = r {
        crate::klog!("fs", "cannot create /proc: {e}");
    }
    *FILES.lock() = files;
}

fn kind(ino: Ino) -> Option<Gen> {
    FILES
        .lock()
        .iter()
        .find(|(i, _)| *i == ino)
        .map(|(_, g)| *g)
}

/// Whether `ino` is a generated file (read-only whatever its mode says).
pub fn is_generated(ino: Ino) -> bool {
    kind(ino).is_some()
}

/// The current text of generated file `ino`, or `None` for other inodes.
pub fn generate(ino: Ino) -> Option<Vec<u8>> {
    let text = match kind(ino)? {
        Gen::CpuInfo => cpuinfo(),
        Gen::MemInfo => meminfo(),
        Gen::Maps => maps(),
        Gen::SockStat => sockstat(),
        Gen::Interrupts => interrupts(),
        Gen::VmStat => vmstat(),
        Gen::Random => crate::random::proc_text(),
    };
    Some(text.into_bytes())
}

fn cpuinfo() -> String {
    let ids: Vec<u32> = (0..crate::smp::online())
        .map(|i| crate::smp::apic_id_of(i).unwrap_or(i as u32))
        .collect();
    match crate::smp::cpu_info() {
        Some(info) => kcore::procfs::cpuinfo(info, &ids, crate::time::tsc_hz() / 1000),
        None => String::new(),
    }
}

fn vmstat() -> String {
    use crate::memory::user::events::*;
    use core::sync::atomic::Ordering::Relaxed;
    kcore::procfs::vmstat(&[
        ("pgfault", PGFAULT.load(Relaxed)),
        ("thp_fault_alloc", THP_FAULT_ALLOC.load(Relaxed)),
        ("thp_fault_fallback", THP_FAULT_FALLBACK.load(Relaxed)),
        ("thp_file_mapped", THP_FILE_MAPPED.load(Relaxed)),
        ("thp_split_pmd", THP_SPLIT_PMD.load(Relaxed)),
    ])
}

fn interrupts() -> String {
    use crate::arch::x86_64::idt::{RESCHED_IPIS_PER_CPU, TIMER_TICKS_PER_CPU};
    use core::sync::atomic::Ordering::Relaxed;
    let n = crate::smp::online().max(1);
    let loc: Vec<u64> = TIMER_TICKS_PER_CPU[..n]
        .iter()
        .map(|c| c.load(Relaxed))
        .collect();
    let res: Vec<u64> = RESCHED_IPIS_PER_CPU[..n]
        .iter()
        .map(|c| c.load(Relaxed))
        .collect();
    kcore::procfs::interrupts(&[
        ("LOC", &loc, "Local timer interrupts"),
        ("RES", &res, "Rescheduling interrupts"),
    ])
}

fn meminfo() -> String {
    let total = crate::memory::frames::total_frames() * 4;
    let free = crate::memory::frames::free_frames() * 4;
    let files = vfs::with(|fs| Ok(fs.used() / 1024)).unwrap_or(0);
    let heap = crate::memory::heap::stats().used / 1024;
    let huge = kcore::procfs::HugeKb {
        anon: crate::memory::user::ANON_HUGE_MAPPED.load(core::sync::atomic::Ordering::Relaxed)
            / 1024,
        file: crate::memory::user::HUGE_MAPPED.load(core::sync::atomic::Ordering::Relaxed) / 1024,
    };
    kcore::procfs::meminfo(total, free, files, heap, huge)
}

fn sockstat() -> String {
    let st = crate::netdev::socket_stats();
    kcore::procfs::sockstat(&kcore::procfs::SockStat {
        sockets: st.sockets,
        tcp_in_use: st.tcp_in_use,
        tcp_orphans: st.tcp_orphans,
        tcp_allocated: st.tcp_allocated,
        tcp_bytes: st.memory - st.udp_memory,
        udp_in_use: st.udp_in_use,
        udp_bytes: st.udp_memory,
    })
}

fn maps() -> String {
    let exe = crate::process::PROCESS
        .lock()
        .as_ref()
        .map(|p| p.exe.clone())
        .unwrap_or_default();
    let mut out = String::new();
    let g = crate::process::MM.lock();
    let Some(mm) = g.as_ref() else {
        return out;
    };
    for v in mm.aspace.vmas.iter() {
        let (shared, offset, dev, ino, name) = match v.kind {
            kcore::vma::Kind::Image => (false, 0, (0, 0x1e), 0, exe.clone()),
            kcore::vma::Kind::Heap => (false, 0, (0, 0), 0, String::from("[heap]")),
            kcore::vma::Kind::Stack => (false, 0, (0, 0), 0, String::from("[stack]")),
            kcore::vma::Kind::Anon | kcore::vma::Kind::AnonStack => {
                (false, 0, (0, 0), 0, String::new())
            }
            kcore::vma::Kind::File(f) => (
                f.shared,
                f.offset_of(v.start),
                (0, 0x1e),
                f.ino,
                crate::filemap::path(f.ino).unwrap_or_default(),
            ),
        };
        kcore::procfs::maps_line(
            &mut out, v.start, v.end, v.prot, shared, offset, dev, ino, &name,
        );
    }
    out
}
