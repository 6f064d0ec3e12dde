//! The boot sequence.
//!
//! 1. Serial console and an early IDT, so everything after can report.
//! 2. TSC calibration: from here on log lines carry real timestamps.
//! 3. CPU identification; enable FPU/SSE/AVX(-512) state, NX, WP.
//! 4. Frames, page tables, heap; then switch to a guarded kernel stack.
//! 5. GDT/TSS with IST stacks, the final IDT.
//! 6. ACPI (CPU count, power-off), randomness, local APIC timer.
//! 7. `kernel: ready`; record the restart budget and start the init
//!    program (`crate::supervisor` restarts it if a signal kills it);
//!    without one, power off.
#![deny(unsafe_code)]

use bootloader_api::BootInfo;
use bootparams::BootParams;
use kcore::cpu::{CpuInfo, Feature};
use spin::Once;

use crate::arch::x86_64::syscall as arch_syscall;
use crate::arch::x86_64::{apic, cpu, gdt, idt, rtc};
use crate::initrd::Initrd;
use crate::memory::{self, frames, heap, paging, stacks};
use crate::power::{self, Status};
use crate::{acpi, klog, process, random, time};

/// Size of the main kernel stack.
pub const MAIN_STACK: u64 = 1024 * 1024;
/// Size of each IST stack (double fault, NMI, machine check).
pub const IST_STACK: u64 = 64 * 1024;
/// Size of the stack syscalls and interrupts from user mode run on.
pub const SYSCALL_STACK: u64 = 256 * 1024;

/// What survives the switch to the kernel's own stack.
struct BootFacts {
    rsdp: Option<u64>,
    ramdisk: Option<&'static [u8]>,
    cpu: CpuInfo,
    avx: bool,
}

static FACTS: Once<BootFacts> = Once::new();

/// Reports the timer interrupts counted since the APIC timer started
/// (`ticks` then, at `since` ns), waiting until one has arrived or 50 ms
/// have passed since the start (the boot usually took longer than that).
fn check_ticks(ticks: u64, since: u64) {
    let count = || idt::TIMER_TICKS.load(core::sync::atomic::Ordering::Relaxed) - ticks;
    while count() == 0 && time::now_nanos().saturating_sub(since) < 50_000_000 {
        core::hint::spin_loop();
    }
    let ms = time::now_nanos().saturating_sub(since) / 1_000_000;
    match count() {
        0 => klog!("apic", "WARNING: no timer interrupts arrived in {ms} ms"),
        n => klog!("apic", "{n} timer ticks in the first {ms} ms"),
    }
}

fn fail(what: &str, err: &dyn core::fmt::Display) -> ! {
    klog!("kernel", "{what}: {err}");
    power::power_off(Status::Failure)
}

/// Who loaded the kernel.
#[derive(Debug, Clone, Copy)]
pub enum Loader {
    /// The `bootloader` crate (BIOS or UEFI disk image), with its API
    /// version.
    Bootloader(u16, u16, u16),
    /// A VMM's PVH direct boot (QEMU `-kernel`), with the start info's
    /// version and where RAM the kernel could not map begins, if any.
    Pvh {
        /// `hvm_start_info` version.
        version: u32,
        /// RAM from here up is unused (the CPU lacks 1 GiB pages).
        unmapped_from: Option<u64>,
    },
}

/// What a boot path hands the common boot sequence.
pub struct Boot<'a> {
    /// Who loaded us.
    pub loader: Loader,
    /// Where all physical memory is mapped.
    pub phys_offset: u64,
    /// The memory map, with the kernel image, ramdisk and boot structures
    /// marked [`RegionKind::Bootloader`](kcore::memmap::RegionKind).
    pub regions: &'a [kcore::memmap::Region],
    /// The ACPI RSDP, if known.
    pub rsdp: Option<u64>,
    /// The initrd.
    pub ramdisk: Option<&'static [u8]>,
}

/// Entry from the `bootloader` crate: converts its boot info and runs the
/// boot sequence.
pub fn start_from_bootloader(boot_info: &'static mut BootInfo) -> ! {
    const MAX_REGIONS: usize = 512;
    let mut regions = [kcore::memmap::Region {
        start: 0,
        end: 0,
        kind: kcore::memmap::RegionKind::Reserved,
    }; MAX_REGIONS];
    let api = boot_info.api_version;
    let boot = match boot_info.physical_memory_offset.into_option() {
        None => Err("the bootloader did not map physical memory"),
        Some(phys_offset) => kcore::memmap::carve(
            boot_info.memory_regions.iter().map(memory::region),
            &[],
            &mut regions,
        )
        .map(|n| Boot {
            loader: Loader::Bootloader(
                api.version_major(),
                api.version_minor(),
                api.version_patch(),
            ),
            phys_offset,
            regions: &regions[..n],
            rsdp: boot_info.rsdp_addr.into_option(),
            ramdisk: memory::ramdisk(boot_info.ramdisk_addr.into_option(), boot_info.ramdisk_len),
        })
        .map_err(|_| "the bootloader's memory map has too many regions"),
    };
    start(boot)
}

/// Runs the boot sequence. Called by the entry points (`bootloader` crate
/// or PVH) once they have described the machine.
pub fn start<E: core::fmt::Display>(boot: Result<Boot<'_>, E>) -> ! {
    crate::drivers::serial::init();
    idt::init_early();
    let cpu = cpu::detect();
    power::set_under_qemu(cpu.is_qemu_like());
    let (tsc_hz, source) = time::calibrate();

    let boot = match boot {
        Ok(b) => b,
        Err(e) => fail("cannot boot", &e),
    };
    match boot.loader {
        Loader::Bootloader(major, minor, patch) => klog!(
            "kernel",
            "llmos {} starting (bootloader API {major}.{minor}.{patch})",
            env!("CARGO_PKG_VERSION"),
        ),
        Loader::Pvh { version, .. } => klog!(
            "kernel",
            "llmos {} starting (PVH direct boot, start info version {version})",
            env!("CARGO_PKG_VERSION"),
        ),
    }
    if let Loader::Pvh {
        unmapped_from: Some(at),
        ..
    } = boot.loader
    {
        klog!(
            "mem",
            "WARNING: RAM from {at:#x} up is not used (the CPU has no 1 GiB pages to map it)"
        );
    }
    time::report(tsc_hz, source, cpu.features.has(Feature::InvariantTsc));
    report_cpu(&cpu);

    let enabled = cpu::enable(&cpu);
    klog!(
        "cpu",
        "extended state: XCR0 {:#x} ({}), XSAVE area {} bytes{}; NX {}, WP on",
        enabled.xcr0,
        xstate_names(enabled.xcr0),
        enabled.xsave_area,
        if enabled.avx_verified {
            ", AVX verified"
        } else {
            ""
        },
        if enabled.nx { "on" } else { "unavailable" }
    );

    crate::arch::x86_64::context::set_xsave_layout(enabled.xcr0, enabled.xsave_area);

    let phys_offset = boot.phys_offset;
    let report = match frames::init(boot.regions, phys_offset) {
        Ok(r) => r,
        Err(e) => fail("memory", &DebugAsDisplay(e)),
    };
    paging::init(phys_offset);
    let s = report.summary;
    klog!(
        "mem",
        "{} MiB usable, {} MiB bootloader-held, {} MiB reserved in {} regions; RAM ends at {:#x}",
        s.usable_mib(),
        s.bootloader / (1024 * 1024),
        s.reserved / (1024 * 1024),
        s.regions,
        s.ram_end
    );
    klog!(
        "mem",
        "frame bitmap {} KiB at {:#x}; {} MiB free, the last {} MiB of it for the kernel alone",
        report.bitmap.1 / 1024,
        report.bitmap.0,
        report.free_frames * 4096 / (1024 * 1024),
        crate::memory::frames::reserve() * 4096 / (1024 * 1024)
    );
    if let Err(e) = heap::init() {
        fail("heap", &e);
    }
    klog!(
        "mem",
        "heap {} MiB at {:#x}, grows on demand",
        heap::INITIAL_SIZE / (1024 * 1024),
        memory::layout::HEAP_START
    );

    FACTS.call_once(|| BootFacts {
        rsdp: boot.rsdp,
        ramdisk: boot.ramdisk,
        cpu,
        avx: enabled.xcr0 & kcore::cpu::xstate::AVX != 0,
    });

    let main = match stacks::allocate("main", MAIN_STACK) {
        Ok(s) => s,
        Err(e) => fail("stacks", &e),
    };
    klog!(
        "mem",
        "kernel stack {} KiB at {:#x}, guard below",
        MAIN_STACK / 1024,
        main.bottom
    );
    // The boot stack is abandoned; everything needed later is in FACTS.
    stacks::run_on(main, continue_on_main_stack)
}

extern "C" fn continue_on_main_stack() -> ! {
    let Some(facts) = FACTS.get() else {
        fail("kernel", &"boot facts missing after stack switch");
    };

    let mut ist = [0u64; 3];
    for (top, name) in ist.iter_mut().zip(["double-fault", "nmi", "machine-check"]) {
        match stacks::allocate(name, IST_STACK) {
            Ok(s) => *top = s.permanent(),
            Err(e) => fail("stacks", &e),
        }
    }
    let (selectors, tss) = gdt::init(ist);
    idt::init();
    let entry_stack = match stacks::allocate("syscall", SYSCALL_STACK) {
        Ok(s) => s,
        Err(e) => fail("stacks", &e),
    };
    arch_syscall::init(&selectors, tss, 0, entry_stack.top);
    process::set_cpu_state(selectors, facts.avx, entry_stack);
    klog!(
        "cpu",
        "GDT, TSS with IST stacks, IDT and SYSCALL entry loaded"
    );

    let acpi = acpi::init(facts.rsdp);
    match rtc::read_unix_time(acpi.century) {
        Some(t) => {
            time::set_realtime_at_boot(t);
            let (y, mo, d, h, mi, se) = kcore::time::civil(t);
            klog!(
                "time",
                "wall clock {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{se:02} UTC (CMOS RTC)"
            );
        }
        None => klog!(
            "time",
            "the CMOS RTC gave no valid time; wall clock starts at 1970-01-01"
        ),
    }

    random::init(
        facts.cpu.features.has(Feature::Rdseed),
        facts.cpu.features.has(Feature::Rdrand),
    );

    // When the timer started: whether its interrupts arrive is checked
    // once the rest of the boot has given them time (`check_ticks`).
    let timer_start = match apic::init() {
        Ok(t) => {
            ::x86_64::instructions::interrupts::enable();
            klog!(
                "apic",
                "local APIC {} at {:#x}; timer {}.{:03} MHz (divide by 16), tick {} Hz",
                t.id,
                t.phys,
                t.hz / 1_000_000,
                (t.hz / 1_000) % 1_000,
                apic::TICK_HZ,
            );
            Some((
                idt::TIMER_TICKS.load(core::sync::atomic::Ordering::Relaxed),
                time::now_nanos(),
            ))
        }
        Err(e) => {
            klog!("apic", "timer unavailable: {e}");
            None
        }
    };
    let online = crate::smp::start_all(&acpi.apic_ids, &facts.cpu, arch_syscall::MAX_CPUS);
    klog!("smp", "{online} of {} CPU(s) online", acpi.cpus.max(1));
    crate::drivers::pci::init(&acpi.ecam);

    let (initrd, params) = match facts.ramdisk {
        Some(rd) => match Initrd::open(rd).and_then(|i| Ok((i, i.params()?))) {
            Ok((i, p)) => (Some(i), p),
            Err(e) => fail("cannot boot", &e),
        },
        None => {
            klog!("initrd", "none");
            (None, BootParams::default())
        }
    };

    let capacity = crate::vfs::capacity(params.fs_capacity_mib);
    if let Err(e) = crate::vfs::init(facts.ramdisk.filter(|_| initrd.is_some()), capacity) {
        fail("cannot boot", &e);
    }
    crate::netdev::init(params.net.as_ref());

    #[cfg(feature = "test-hooks")]
    if let Some(name) = &params.test_hook {
        crate::test_hooks::run(name);
    }

    let h = heap::stats();
    klog!(
        "mem",
        "{} MiB free, heap {} KiB used of {} MiB",
        frames::free_frames() * 4096 / (1024 * 1024),
        h.used / 1024,
        h.mapped / (1024 * 1024)
    );
    if !crate::syscall::check_table() {
        fail("syscall", &"the syscall table and the dispatcher disagree");
    }
    if let Some((ticks, since)) = timer_start {
        check_ticks(ticks, since);
    }
    klog!("kernel", "ready");
    let Some(init) = &params.init else {
        klog!("kernel", "no init program, powering off");
        power::power_off(Status::Success)
    };
    let file = initrd.and_then(|i| i.file(&init.path));
    let Some(file) = file else {
        fail(
            "cannot start init",
            &format_args!("{} is not in the initrd", init.path),
        );
    };
    let hwcap = u64::from(core::arch::x86_64::__cpuid(1).edx);
    // Like waiting for the network to be online: programs expect an
    // address when they start. DHCP keeps trying after the timeout.
    crate::netdev::wait_configured(3_000_000_000);
    let policy = restart_policy(params.restart);
    match policy.max_restarts {
        0 => klog!("kernel", "restarts: off (a killed init powers off)"),
        n => klog!(
            "kernel",
            "restarts: a killed init restarts up to {n} times in {} s, after {} ms doubling to {} ms",
            policy.window_ns / 1_000_000_000,
            policy.first_backoff_ns / 1_000_000,
            policy.max_backoff_ns / 1_000_000
        ),
    }
    crate::supervisor::set_program(
        crate::supervisor::Program {
            init: init.clone(),
            file,
            trace: params.trace_syscalls,
            hwcap,
        },
        policy,
    );
    if let Err(e) = process::start(init, file, params.trace_syscalls, hwcap) {
        fail("cannot start init", &format_args!("{}: {e}", init.path));
    }
    power::power_off(Status::Failure)
}

/// The restart budget the boot parameters ask for (the default without).
fn restart_policy(r: Option<bootparams::Restart>) -> kcore::restart::Policy {
    let r = r.unwrap_or(bootparams::Restart::DEFAULT);
    kcore::restart::Policy {
        max_restarts: r.max_restarts,
        window_ns: u64::from(r.window_secs) * 1_000_000_000,
        first_backoff_ns: u64::from(r.backoff_ms) * 1_000_000,
        max_backoff_ns: u64::from(r.max_backoff_ms) * 1_000_000,
    }
}

fn report_cpu(cpu: &CpuInfo) {
    klog!(
        "cpu",
        "{} ({}, family {:#x} model {:#x} stepping {}){}{}",
        cpu.brand_str(),
        cpu.vendor_str(),
        cpu.family,
        cpu.model,
        cpu.stepping,
        if cpu.hypervisor.is_some() {
            ", hypervisor "
        } else {
            ""
        },
        cpu.hypervisor_str().unwrap_or("")
    );
    klog!("cpu", "features: {}", cpu.features);
}

fn xstate_names(xcr0: u64) -> &'static str {
    use kcore::cpu::xstate::*;
    if xcr0 & AVX512 == AVX512 {
        "x87 sse avx avx512"
    } else if xcr0 & AVX != 0 {
        "x87 sse avx"
    } else if xcr0 & SSE != 0 {
        "x87 sse"
    } else if xcr0 == 0 {
        "no xsave"
    } else {
        "x87"
    }
}

struct DebugAsDisplay<T>(T);

impl<T: core::fmt::Debug> core::fmt::Display for DebugAsDisplay<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
