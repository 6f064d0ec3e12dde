//! Bringing up the other CPUs.
//!
//! The boot CPU starts each application processor listed in the MADT in
//! turn (INIT-SIPI-SIPI through `arch::x86_64::smp`). Each AP gets its own
//! boot stack, IST stacks, GDT and TSS, per-CPU block (GS), the same
//! CR0/CR4/XCR0/EFER feature state as the boot CPU, its SYSCALL MSRs and its
//! local APIC timer, reports in, and then runs the scheduler's idle loop.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicUsize, Ordering};

use kcore::cpu::CpuInfo;
use spin::Once;

use crate::arch::x86_64::{apic, cpu, gdt, idt, smp, syscall as arch_syscall};
use crate::klog;
use crate::memory::stacks;

/// CPUs running (the boot CPU counts).
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// APIC ID of each CPU index (u32::MAX: none).
static APIC_IDS: [core::sync::atomic::AtomicU32; arch_syscall::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU32::new(u32::MAX) }; arch_syscall::MAX_CPUS];

/// The APIC ID of CPU `cpu`, if it is online.
pub fn apic_id_of(cpu: usize) -> Option<u32> {
    APIC_IDS
        .get(cpu)
        .map(|a| a.load(Ordering::Acquire))
        .filter(|&id| id != u32::MAX)
}
static CPU_INFO: Once<CpuInfo> = Once::new();

/// What CPUID reported on the boot CPU (after SMP start-up).
pub fn cpu_info() -> Option<&'static CpuInfo> {
    CPU_INFO.get()
}

/// Number of CPUs running kernel code.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

extern "C" fn ap_entry(cpu_index: u64) -> ! {
    let cpu_index = cpu_index as usize;
    idt::init();
    let mut ist = [0u64; 3];
    for (top, name) in ist.iter_mut().zip(["double-fault", "nmi", "machine-check"]) {
        match stacks::allocate(name, crate::init::IST_STACK) {
            Ok(s) => *top = s.permanent(),
            Err(_) => crate::arch::x86_64::power::halt_forever(),
        }
    }
    let (selectors, tss) = gdt::init(ist);
    if let Some(info) = CPU_INFO.get() {
        cpu::enable(info);
    }
    let kstack = match stacks::allocate("ap-syscall", crate::init::SYSCALL_STACK) {
        Ok(s) => s.permanent(),
        Err(_) => crate::arch::x86_64::power::halt_forever(),
    };
    arch_syscall::init(&selectors, tss, cpu_index, kstack);
    let apic_id = apic::init_ap().unwrap_or(u32::MAX);
    APIC_IDS[cpu_index].store(apic_id, Ordering::Release);
    klog!("smp", "CPU {cpu_index} (APIC ID {apic_id}) online");
    ONLINE.fetch_add(1, Ordering::AcqRel);
    smp::AP_STARTED.store(true, Ordering::SeqCst);
    crate::sched::run_idle_on_this_cpu(cpu_index)
}

/// Starts every AP in `apic_ids` (the boot CPU's own ID is skipped).
/// Returns the number of CPUs online afterwards.
pub fn start_all(apic_ids: &[u32], info: &CpuInfo, max_cpus: usize) -> usize {
    CPU_INFO.call_once(|| info.clone());
    let bsp = apic::current_id();
    APIC_IDS[0].store(bsp, Ordering::Release);
    let others: alloc::vec::Vec<u32> = apic_ids.iter().copied().filter(|&id| id != bsp).collect();
    if others.is_empty() {
        return online();
    }
    if let Err(e) = smp::prepare() {
        klog!("smp", "cannot start other CPUs: {e:?}; running on one CPU");
        return online();
    }
    for (i, id) in others.iter().enumerate() {
        let cpu_index = i + 1;
        if cpu_index >= max_cpus {
            klog!(
                "smp",
                "{} more CPU(s) ignored (limit {max_cpus})",
                others.len() - i
            );
            break;
        }
        let stack = match stacks::allocate("ap-boot", 64 * 1024) {
            Ok(s) => s.permanent(),
            Err(e) => {
                klog!("smp", "no stack for CPU {cpu_index}: {e}");
                break;
            }
        };
        if !smp::start_ap(*id, cpu_index, stack, ap_entry) {
            klog!(
                "smp",
                "CPU with APIC ID {id} did not start; continuing without it"
            );
        }
    }
    online()
}
