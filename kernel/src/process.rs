//! The process: loading the init program, its state, and how it ends.
//!
//! llmos runs one Linux process, the init program named in the boot
//! parameters (the LLM runtime, or any static program given with
//! `cargo xtask run --init`). [`load`] validates and loads its ELF into a
//! fresh address space and builds the initial stack; [`start`] then enters
//! ring 3 on the boot CPU, [`restart`] starts it as a new thread after the
//! previous run was torn down. When it exits, the kernel prints
//! `kernel: init exited with status S` and powers off with that status
//! ([`exit`]); when a fault or a signal kills it ([`kill`]), the
//! supervisor (`crate::supervisor`) restarts it within its budget.
#![deny(unsafe_code)]

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use bootparams::Init;
use kcore::elf::{self, Kind as ElfKind, PAGE, USER_END};
use kcore::userstack::{self, at};
use kcore::vma::{Kind, Prot, Vma};
use spin::Mutex;

use crate::arch::x86_64::gdt::Selectors;
use crate::klog;
use crate::memory::user::{AddressSpace, FaultOutcome};
use crate::power::{self, Status};

/// The documented default stack size (RLIMIT_STACK).
pub const STACK_SIZE: u64 = 8 * 1024 * 1024;
/// Gap kept free below the stack so a mapping never abuts it (Linux's
/// stack_guard_gap).
pub const STACK_GUARD_GAP: u64 = 1024 * 1024;
/// Lowest address `mmap` hands out (the first 64 KiB stay unmapped).
pub const MMAP_MIN: u64 = elf::MIN_ADDR;
/// Where static-pie images are loaded, plus a random page offset.
pub const PIE_BASE: u64 = 0x5555_0000_0000;
/// Random bits (in pages) of the static-pie base: up to 1 TiB.
pub const PIE_RANDOM_PAGES: u64 = 1 << 28;
/// Random bits (in pages) of the stack top: up to 1 GiB below USER_END.
pub const STACK_RANDOM_PAGES: u64 = 1 << 18;
/// Random bits (in pages) of the brk start: up to 32 MiB after the image.
pub const BRK_RANDOM_PAGES: u64 = 1 << 13;

/// Memory-management state of the process.
pub struct Mm {
    /// Page tables and areas.
    pub aspace: AddressSpace,
    /// Where the brk heap starts.
    pub brk_start: u64,
    /// The current break.
    pub brk: u64,
    /// mmap hands out addresses in `[MMAP_MIN, mmap_top)`.
    pub mmap_top: u64,
    /// The stack area.
    pub stack: (u64, u64),
    /// Pages of mapped files unmapped since the lock was taken: released
    /// (`filemap::release`) once other CPUs flushed their TLBs.
    pub file_releases: Vec<(u64, u64)>,
}

/// A resource limit pair.
pub type Rlimit = (u64, u64);

/// Everything else about the process.
pub struct Process {
    /// The path it was started as.
    pub exe: String,
    /// Log every syscall.
    pub trace: bool,
    /// Syscalls already reported as unknown (logged once each).
    pub warned: BTreeSet<u64>,
    /// Raw `struct sigaction` per signal (handler, flags, restorer, mask).
    pub sigactions: [[u64; 4]; 65],
    /// Blocked signals.
    pub sigmask: u64,
    /// sigaltstack (sp, flags, size).
    pub altstack: (u64, u32, u64),
    /// Resource limits by RLIMIT_* number.
    pub rlimits: [Rlimit; 16],
    /// Monotonic time when it started.
    pub started: u64,
}

/// The memory state; separate from [`PROCESS`] so the page-fault handler
/// can take it while a syscall holds the other.
pub static MM: Mutex<Option<Mm>> = Mutex::new(None);
/// The process state.
pub static PROCESS: Mutex<Option<Process>> = Mutex::new(None);

static SELECTORS: spin::Once<(Selectors, bool)> = spin::Once::new();
static MAIN_KSTACK: Mutex<Option<crate::memory::stacks::KernelStack>> = Mutex::new(None);

/// Why the init program could not be started.
#[derive(Debug)]
pub enum StartError {
    /// No such file in the initrd.
    NotFound(String),
    /// The ELF is unusable.
    Elf(elf::ElfError),
    /// Arguments or environment are unusable.
    Stack(userstack::StackError),
    /// Out of memory while loading.
    Memory(crate::memory::paging::MapError),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::NotFound(p) => write!(f, "{p} is not in the initrd"),
            StartError::Elf(e) => write!(f, "{e}"),
            StartError::Stack(e) => write!(f, "{e}"),
            StartError::Memory(e) => write!(f, "loading failed: {e}"),
        }
    }
}

fn random_pages(range: u64) -> u64 {
    (crate::random::u64() % range) * PAGE
}

/// Default resource limits.
fn default_rlimits() -> [Rlimit; 16] {
    const INF: u64 = u64::MAX;
    let mut r = [(INF, INF); 16];
    r[3] = (STACK_SIZE, INF); // RLIMIT_STACK
    r[4] = (0, INF); // RLIMIT_CORE
    r[7] = (1024, 4096); // RLIMIT_NOFILE
    r[8] = (8 * 1024 * 1024, 8 * 1024 * 1024); // RLIMIT_MEMLOCK
    r
}

/// Records what entering user mode needs (from boot): the selectors,
/// whether AVX is on, and the kernel stack of the first thread.
pub fn set_cpu_state(
    selectors: Selectors,
    avx: bool,
    main_kstack: crate::memory::stacks::KernelStack,
) {
    SELECTORS.call_once(|| (selectors, avx));
    *MAIN_KSTACK.lock() = Some(main_kstack);
}

/// Where a loaded program starts.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The entry point.
    pub rip: u64,
    /// The initial stack pointer (argc, argv, envp, auxv above it).
    pub rsp: u64,
}

/// Loads `init` from `file` and runs it on this CPU as thread 1. Returns
/// only on failure.
pub fn start(init: &Init, file: &[u8], trace: bool, hwcap: u64) -> Result<(), StartError> {
    let entry = load(init, file, trace, hwcap)?;
    let (Some((selectors, avx)), Some(kstack)) = (SELECTORS.get(), MAIN_KSTACK.lock().take())
    else {
        return Err(StartError::Memory(
            crate::memory::paging::MapError::NotReady,
        ));
    };
    crate::sched::init(kstack)
        .map_err(|_| StartError::Memory(crate::memory::paging::MapError::OutOfFrames))?;
    log_start(init);
    crate::arch::x86_64::enter_user_mode(entry.rip, entry.rsp, selectors, *avx)
}

/// Loads `init` again after the previous run was torn down and starts it
/// as a new thread 1.
pub fn restart(init: &Init, file: &[u8], trace: bool, hwcap: u64) -> Result<(), StartError> {
    let entry = load(init, file, trace, hwcap)?;
    log_start(init);
    crate::sched::spawn_main(entry.rip, entry.rsp)
        .map_err(|_| StartError::Memory(crate::memory::paging::MapError::OutOfFrames))
}

fn log_start(init: &Init) {
    klog!(
        "kernel",
        "starting {} with {} argument(s)",
        init.path,
        init.args.len()
    );
}

/// Loads `init` from `file` into a new address space (made the active one
/// on this CPU) and sets up the process state: memory, descriptors 0-2 on
/// the console, `/proc`.
pub fn load(init: &Init, file: &[u8], trace: bool, hwcap: u64) -> Result<Entry, StartError> {
    let prog = elf::parse(file).map_err(StartError::Elf)?;
    let bias = match prog.kind {
        ElfKind::Exec => 0,
        ElfKind::StaticPie => PIE_BASE + random_pages(PIE_RANDOM_PAGES),
    };
    let mut aspace = AddressSpace::new().map_err(StartError::Memory)?;

    // Read-only segments (text, rodata) map the program file's own pages,
    // demand-paged like a private file mapping: from an initrd file that is
    // page-aligned they come in place, without a copy, so the program's
    // code costs no RAM of its own. Writable segments are copied.
    let ino = crate::vfs::with(|fs| fs.lookup(llmos_fs::ramfs::ROOT, &init.path, true)).ok();
    let mut in_place = 0;
    for seg in &prog.segments {
        let start = bias + seg.page_start();
        let end = bias + seg.page_end();
        // (If the file cannot be pinned, the segment is copied instead.)
        let in_file = ino
            .filter(|_| {
                !seg.perms.write && seg.filesz == seg.memsz && seg.offset % PAGE == seg.vaddr % PAGE
            })
            .filter(|&ino| crate::filemap::acquire(ino, (end - start) / PAGE, &init.path).is_ok());
        let kind = match in_file {
            Some(ino) => Kind::File(kcore::vma::FileMap {
                ino,
                delta: (seg.offset - seg.offset % PAGE).wrapping_sub(start),
                shared: false,
                may_write: true,
            }),
            None => Kind::Image,
        };
        aspace
            .vmas
            .insert(Vma {
                start,
                end,
                prot: seg.perms,
                kind,
            })
            .map_err(|_| StartError::Elf(elf::ElfError::Overlap(0)))?;
        if in_file.is_some() {
            in_place += end - start;
            continue;
        }
        let from = seg.offset as usize;
        let bytes = &file[from..from + seg.filesz as usize];
        aspace
            .write(bias + seg.vaddr, bytes)
            .map_err(StartError::Memory)?;
        // Map the zero-filled tail too, so .bss exists before the program
        // runs (it would be demand-paged anyway; this makes `brk` checks
        // exact).
        let _ = start;
    }
    let image_end = bias + prog.span_end();

    // Stack: 8 MiB area at a random top, demand-paged.
    let stack_top = (USER_END - PAGE - random_pages(STACK_RANDOM_PAGES)) & !0xf;
    let stack_top = stack_top & !(PAGE - 1);
    let stack_bottom = stack_top - STACK_SIZE;
    aspace
        .vmas
        .insert(Vma {
            start: stack_bottom,
            end: stack_top,
            prot: Prot::RW,
            kind: Kind::Stack,
        })
        .map_err(|_| StartError::Memory(crate::memory::paging::MapError::BadRange))?;

    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    let args: Vec<&[u8]> = init.args.iter().map(|s| s.as_bytes()).collect();
    let env: Vec<&[u8]> = init.env.iter().map(|s| s.as_bytes()).collect();
    let aux = [
        (at::PHDR, bias + prog.phdr_vaddr),
        (at::PHENT, prog.phent),
        (at::PHNUM, prog.phnum),
        (at::PAGESZ, PAGE),
        (at::BASE, 0),
        (at::FLAGS, 0),
        (at::ENTRY, bias + prog.entry),
        (at::UID, 0),
        (at::EUID, 0),
        (at::GID, 0),
        (at::EGID, 0),
        (at::SECURE, 0),
        (at::HWCAP, hwcap),
        (at::HWCAP2, 0),
        (at::CLKTCK, 100),
        (at::MINSIGSTKSZ, 2048),
    ];
    let built = userstack::build(
        stack_top,
        &userstack::Spec {
            args: &args,
            env: &env,
            aux: &aux,
            random,
            platform: b"x86_64",
            execfn: init.path.as_bytes(),
        },
    )
    .map_err(StartError::Stack)?;
    aspace
        .write(built.sp, &built.bytes)
        .map_err(StartError::Memory)?;

    let brk_start = image_end + random_pages(BRK_RANDOM_PAGES);
    let entry = bias + prog.entry;
    klog!(
        "process",
        "{}: {} at {:#x}, entry {:#x}, {} segments ({}), stack top {:#x}, brk {:#x}",
        init.path,
        match prog.kind {
            ElfKind::Exec => "static executable",
            ElfKind::StaticPie => "static-pie",
        },
        bias,
        entry,
        prog.segments.len(),
        SegList(&prog.segments),
        stack_top,
        brk_start
    );
    if in_place > 0 {
        klog!(
            "process",
            "{}: {} KiB of read-only segments mapped from the file, not copied",
            init.path,
            in_place / 1024
        );
    }
    aspace.activate();
    *MM.lock() = Some(Mm {
        aspace,
        brk_start,
        brk: brk_start,
        mmap_top: stack_bottom - STACK_GUARD_GAP,
        stack: (stack_bottom, stack_top),
        file_releases: Vec::new(),
    });
    *PROCESS.lock() = Some(Process {
        exe: init.path.clone(),
        trace,
        warned: BTreeSet::new(),
        sigactions: [[0; 4]; 65],
        sigmask: 0,
        altstack: (0, 2, 0), // SS_DISABLE
        rlimits: default_rlimits(),
        started: crate::time::now_nanos(),
    });
    crate::console::init();
    crate::fd::init_process();
    crate::procfs::init(&init.path);
    Ok(Entry {
        rip: entry,
        rsp: built.sp,
    })
}

struct SegList<'a>(&'a [elf::Segment]);

impl core::fmt::Display for SegList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", s.perms)?;
        }
        Ok(())
    }
}

/// Ends the process with `status` (exit/exit_group) and powers off. If
/// the process was killed first, the caller leaves like its other threads
/// (and the program restarts).
pub fn exit(status: i32) -> ! {
    if !crate::supervisor::begin_exit() {
        crate::supervisor::leave_killed()
    }
    let status = status & 0xff;
    // As Linux closes every descriptor of an exiting process: sockets send
    // what they hold and close. Give that up to 5 s before powering off.
    let table = crate::fd::TABLE.lock().take();
    drop(table);
    crate::netdev::drain(5_000_000_000);
    klog!("kernel", "init exited with status {status}");
    power::power_off(if status == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}

/// Signal numbers used in reports.
pub mod sig {
    /// SIGINT.
    pub const INT: i32 = 2;
    /// SIGQUIT.
    pub const QUIT: i32 = 3;
    /// SIGILL.
    pub const ILL: i32 = 4;
    /// SIGTRAP.
    pub const TRAP: i32 = 5;
    /// SIGABRT.
    pub const ABRT: i32 = 6;
    /// SIGBUS.
    pub const BUS: i32 = 7;
    /// SIGFPE.
    pub const FPE: i32 = 8;
    /// SIGKILL.
    pub const KILL: i32 = 9;
    /// SIGSEGV.
    pub const SEGV: i32 = 11;

    /// The name of a signal.
    pub fn name(s: i32) -> &'static str {
        match s {
            1 => "SIGHUP",
            INT => "SIGINT",
            QUIT => "SIGQUIT",
            ILL => "SIGILL",
            TRAP => "SIGTRAP",
            ABRT => "SIGABRT",
            BUS => "SIGBUS",
            FPE => "SIGFPE",
            KILL => "SIGKILL",
            10 => "SIGUSR1",
            SEGV => "SIGSEGV",
            12 => "SIGUSR2",
            13 => "SIGPIPE",
            14 => "SIGALRM",
            15 => "SIGTERM",
            16 => "SIGSTKFLT",
            24 => "SIGXCPU",
            25 => "SIGXFSZ",
            26 => "SIGVTALRM",
            27 => "SIGPROF",
            29 => "SIGIO",
            30 => "SIGPWR",
            31 => "SIGSYS",
            34..=64 => "SIGRT",
            _ => "signal",
        }
    }
}

/// Kills the process for a fault or exception in user mode: prints `why`
/// (the detailed report), records `signal` and `fault` (where, for the
/// one-line cause) and ends the calling thread; the supervisor restarts
/// the program. A thread of a process that is already going away just
/// ends.
pub fn kill(signal: i32, fault: Option<String>, why: core::fmt::Arguments<'_>) -> ! {
    if !crate::supervisor::killed() {
        klog!(
            "kernel",
            "init killed by {} ({signal}): {why}",
            sig::name(signal)
        );
        crate::supervisor::begin_kill(crate::supervisor::Cause { signal, fault });
    }
    crate::supervisor::leave_killed()
}

/// Kills the process for a signal raised in a syscall (kill, tgkill, a
/// broken pipe, Ctrl-C): prints `note` if there is one, records the
/// cause, and returns the EINTR the syscall ends with; the thread leaves
/// at the syscall's end.
pub fn kill_from_syscall(signal: i32, note: Option<&str>) -> kcore::errno::Errno {
    if let Some(n) = note
        && !crate::supervisor::killed()
    {
        klog!(
            "kernel",
            "init killed by {} ({signal}): {n}",
            sig::name(signal)
        );
    }
    crate::supervisor::begin_kill(crate::supervisor::Cause {
        signal,
        fault: None,
    });
    kcore::errno::Errno::EINTR
}

/// Frees the memory of a process whose threads are all gone: its frames
/// and page tables (once no CPU uses them) and its pins on mapped files.
/// Returns the bytes of memory that were mapped.
pub fn release_memory(mm: Mm) -> u64 {
    let Mm {
        aspace,
        mut file_releases,
        ..
    } = mm;
    for v in aspace.vmas.iter() {
        if let Kind::File(f) = v.kind {
            file_releases.push((f.ino, (v.end - v.start) / PAGE));
        }
    }
    let bytes = aspace.resident_pages * PAGE;
    aspace.destroy();
    for (ino, pages) in file_releases {
        crate::filemap::release(ino, pages);
    }
    bytes
}

/// Whether every byte of `[addr, addr + len)` lies in areas that allow the
/// access (reads, or writes with `write`). User copies check this first,
/// so a `PROT_NONE` or unmapped range is EFAULT as on Linux, even where a
/// page is still present for the kernel.
pub fn range_allows(addr: u64, len: u64, write: bool) -> bool {
    allowed_prefix(addr, len, write) == len
}

/// How many bytes from `addr` on (at most `len`) lie in areas that allow
/// the access: where a partial copy must stop.
pub fn allowed_prefix(addr: u64, len: u64, write: bool) -> u64 {
    let Some(end) = addr.checked_add(len) else {
        return 0;
    };
    if len == 0 {
        return 0;
    }
    let g = MM.lock();
    let Some(mm) = g.as_ref() else { return 0 };
    let mut at = addr;
    while at < end {
        match mm.aspace.vmas.find(at) {
            Some(v) if v.prot.allows(write, false) => at = v.end,
            _ => break,
        }
    }
    at.min(end) - addr
}

/// Resolves a page fault on a user address (from user mode, or from a
/// kernel copy routine).
pub fn handle_user_fault(addr: u64, write: bool, exec: bool) -> FaultOutcome {
    // Another CPU may hold the lock briefly (it never waits for this CPU
    // while holding it: TLB shootdowns happen after it is released), and
    // kernel code never touches user memory while holding it, so waiting
    // cannot deadlock.
    let mut g = MM.lock();
    match g.as_mut() {
        Some(mm) => mm
            .aspace
            .fault(addr, write, exec, &mut crate::filemap::FilePager),
        None => FaultOutcome::Unmapped,
    }
}

/// Kills the process for a fault it cannot survive, with a report of the
/// areas around the address.
pub fn kill_for_fault(addr: u64, rip: u64, write: bool, exec: bool, outcome: FaultOutcome) -> ! {
    let access = kcore::vma::access_name(write, exec);
    let why = match outcome {
        FaultOutcome::Denied(p) => {
            let mut s = String::new();
            let _ = write!(s, "the area is {p}");
            s
        }
        FaultOutcome::OutOfMemory => {
            // As Linux's OOM killer: SIGKILL, and the process is the only
            // one to choose.
            kill(
                sig::KILL,
                Some(fault_at(addr, write, exec, rip)),
                format_args!(
                    "out of memory: {access} {addr:#x} at RIP {rip:#x} needed a page, and the {} KiB still free are the kernel's reserve",
                    crate::memory::frames::free_frames() * 4
                ),
            );
        }
        FaultOutcome::BeyondEof => {
            kill(
                sig::BUS,
                Some(fault_at(addr, write, exec, rip)),
                format_args!(
                    "bus error: {access} {addr:#x}, past the end of the mapped file, at RIP {rip:#x}"
                ),
            );
        }
        _ => String::from("no mapping there"),
    };
    let mut map = String::new();
    // Called from the fault handler, which released the lock; another CPU
    // holds it only briefly.
    if let Some(mm) = MM.lock().as_ref() {
        let areas: Vec<&Vma> = mm.aspace.vmas.iter().collect();
        let idx = areas
            .iter()
            .position(|v| v.end > addr)
            .unwrap_or(areas.len());
        let lo = idx.saturating_sub(2);
        let hi = (idx + 2).min(areas.len());
        for v in &areas[lo..hi] {
            let _ = write!(
                map,
                "\n  {:#014x}-{:#014x} {} {}",
                v.start, v.end, v.prot, v.kind
            );
            if addr >= v.start && addr < v.end {
                map.push_str("  <- fault");
            }
        }
        if mm.stack.0 > addr && mm.stack.0 - addr <= STACK_GUARD_GAP {
            map.push_str("\n  (just below the stack: stack overflow?)");
        }
    }
    kill(
        sig::SEGV,
        Some(fault_at(addr, write, exec, rip)),
        format_args!(
            "segmentation fault: {access} {addr:#x} ({why}) at RIP {rip:#x}; areas near it:{map}"
        ),
    )
}

/// The short form of a page fault for the cause of death:
/// `fault at 0x0 (write, RIP 0x…)`.
fn fault_at(addr: u64, write: bool, exec: bool, rip: u64) -> String {
    let access = match (write, exec) {
        (_, true) => "instruction fetch",
        (true, false) => "write",
        (false, false) => "read",
    };
    let mut s = String::new();
    let _ = write!(s, "fault at {addr:#x} ({access}, RIP {rip:#x})");
    s
}
