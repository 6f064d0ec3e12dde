//! The GDT and TSS, one pair per CPU.
//!
//! Layout (fixed, because SYSCALL/SYSRET derive selectors from STAR):
//! null, kernel code 0x08, kernel data 0x10, user data 0x18, user code
//! 0x20, TSS 0x28 (two slots). Each TSS holds that CPU's IST stacks —
//! double fault, NMI and machine check each get their own guarded stack, so
//! those exceptions are handled even when the kernel stack is exhausted —
//! and RSP0, the stack for interrupts from user mode, which changes on
//! every thread switch. The tables are allocated once per CPU and live
//! forever.

use alloc::boxed::Box;
use core::cell::UnsafeCell;

use ::x86_64::VirtAddr;
use ::x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use ::x86_64::instructions::tables::load_tss;
use ::x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use ::x86_64::structures::tss::TaskStateSegment;

/// IST slot (0-based, as the TSS indexes it) of the double-fault stack.
pub const DOUBLE_FAULT_IST: u16 = 0;
/// IST slot of the NMI stack.
pub const NMI_IST: u16 = 1;
/// IST slot of the machine-check stack.
pub const MACHINE_CHECK_IST: u16 = 2;

/// Segment selectors (identical on every CPU).
#[derive(Debug, Clone, Copy)]
pub struct Selectors {
    /// Ring-0 code.
    pub kernel_code: SegmentSelector,
    /// Ring-0 data/stack.
    pub kernel_data: SegmentSelector,
    /// Ring-3 data/stack.
    pub user_data: SegmentSelector,
    /// Ring-3 64-bit code.
    pub user_code: SegmentSelector,
    /// The TSS.
    pub tss: SegmentSelector,
}

/// A CPU's TSS; in a cell because RSP0 changes after the GDT references it.
pub struct TssCell(UnsafeCell<TaskStateSegment>);

// SAFETY: each TSS is written only by the CPU that owns it (set-up and
// `set_kernel_stack` with interrupts off); the CPU itself reads RSP0 and
// the IST entries on ring transitions.
unsafe impl Sync for TssCell {}

/// Builds and loads a GDT and TSS for the calling CPU with the given IST
/// stack tops (double fault, NMI, machine check). Returns the selectors
/// and the TSS, whose RSP0 [`set_kernel_stack`] updates.
pub fn init(ist_tops: [u64; 3]) -> (Selectors, &'static TssCell) {
    let mut tss = TaskStateSegment::new();
    tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST)] = VirtAddr::new(ist_tops[0]);
    tss.interrupt_stack_table[usize::from(NMI_IST)] = VirtAddr::new(ist_tops[1]);
    tss.interrupt_stack_table[usize::from(MACHINE_CHECK_IST)] = VirtAddr::new(ist_tops[2]);
    let tss: &'static TssCell = Box::leak(Box::new(TssCell(UnsafeCell::new(tss))));
    let gdt: &'static mut GlobalDescriptorTable = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let kernel_code = gdt.append(Descriptor::kernel_code_segment());
    let kernel_data = gdt.append(Descriptor::kernel_data_segment());
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    // SAFETY: the TSS is leaked ('static) and has no I/O permission bitmap.
    let tss_sel = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss.0.get()) });
    let selectors = Selectors {
        kernel_code,
        kernel_data,
        user_data,
        user_code,
        tss: tss_sel,
    };
    let gdt: &'static GlobalDescriptorTable = gdt;
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors
    // are valid 64-bit code/data segments and an available TSS that lives
    // for the rest of the kernel's life.
    unsafe {
        CS::set_reg(selectors.kernel_code);
        SS::set_reg(selectors.kernel_data);
        DS::set_reg(selectors.kernel_data);
        ES::set_reg(selectors.kernel_data);
        load_tss(selectors.tss);
    }
    (selectors, tss)
}

/// Sets RSP0 of `tss`: the stack the CPU switches to on an interrupt or
/// exception from ring 3.
pub fn set_kernel_stack(tss: &TssCell, top: u64) {
    // SAFETY: a single aligned 8-byte store into this CPU's own TSS with
    // interrupts off; the CPU reads it only on the next ring transition.
    unsafe { (*tss.0.get()).privilege_stack_table[0] = VirtAddr::new(top) };
}
