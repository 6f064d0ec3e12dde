//! The GDT and TSS.
//!
//! Layout (fixed, because SYSCALL/SYSRET derive selectors from STAR):
//! null, kernel code 0x08, kernel data 0x10, user data 0x18, user code
//! 0x20, TSS 0x28 (two slots). The TSS holds the IST stacks: double fault,
//! NMI and machine check each get their own guarded stack, so those
//! exceptions are handled even when the kernel stack is exhausted.

use ::x86_64::VirtAddr;
use ::x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use ::x86_64::instructions::tables::load_tss;
use ::x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use ::x86_64::structures::tss::TaskStateSegment;
use spin::Once;

/// IST slot (0-based, as the TSS indexes it) of the double-fault stack.
pub const DOUBLE_FAULT_IST: u16 = 0;
/// IST slot of the NMI stack.
pub const NMI_IST: u16 = 1;
/// IST slot of the machine-check stack.
pub const MACHINE_CHECK_IST: u16 = 2;

/// Segment selectors.
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

/// The TSS lives in a cell because RSP0 (the stack for interrupts from
/// user mode) changes after the GDT references it.
struct TssCell(core::cell::UnsafeCell<TaskStateSegment>);

// SAFETY: written only on the boot CPU (set-up and `set_kernel_stack`, with
// no concurrent reader but the CPU itself, which reads RSP0 on ring
// transitions).
unsafe impl Sync for TssCell {}

static TSS: Once<TssCell> = Once::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// Builds and loads the GDT and TSS with the given IST stack tops
/// (double fault, NMI, machine check). Call once, on the boot CPU.
pub fn init(ist_tops: [u64; 3]) -> Selectors {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST)] = VirtAddr::new(ist_tops[0]);
        tss.interrupt_stack_table[usize::from(NMI_IST)] = VirtAddr::new(ist_tops[1]);
        tss.interrupt_stack_table[usize::from(MACHINE_CHECK_IST)] = VirtAddr::new(ist_tops[2]);
        TssCell(core::cell::UnsafeCell::new(tss))
    });
    let tss_ptr: *const TaskStateSegment = tss.0.get();
    let (gdt, selectors) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        // SAFETY: the TSS lives in a static for the rest of the kernel's
        // life and has no I/O permission bitmap.
        let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss_ptr) });
        (
            gdt,
            Selectors {
                kernel_code,
                kernel_data,
                user_data,
                user_code,
                tss,
            },
        )
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors
    // are valid 64-bit code/data segments and an available TSS that lives
    // in a static for the rest of the kernel's life.
    unsafe {
        CS::set_reg(selectors.kernel_code);
        SS::set_reg(selectors.kernel_data);
        DS::set_reg(selectors.kernel_data);
        ES::set_reg(selectors.kernel_data);
        load_tss(selectors.tss);
    }
    *selectors
}

/// Sets RSP0: the stack the CPU switches to on an interrupt or exception
/// from ring 3.
pub fn set_kernel_stack(top: u64) {
    if let Some(cell) = TSS.get() {
        // SAFETY: a single aligned 8-byte store into the 'static TSS on the
        // boot CPU; the CPU reads it only on the next ring transition.
        unsafe { (*cell.0.get()).privilege_stack_table[0] = VirtAddr::new(top) };
    }
}
