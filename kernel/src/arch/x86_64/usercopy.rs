//! Copying between kernel and user memory with faults turned into errors.
//!
//! One assembly routine, `llmos_copy_user`, does every copy with `rep
//! movsb`. If that instruction faults on a user address the page-fault
//! handler first tries demand paging (and lets the copy resume); if the
//! address is not part of the process it moves RIP to the routine's fixup
//! label, which returns the number of bytes left, and the caller turns that
//! into EFAULT. With SMAP on, the routine runs between STAC and CLAC, so the
//! kernel can touch user pages here and nowhere else.

use core::sync::atomic::{AtomicBool, Ordering};

core::arch::global_asm!(
    ".global llmos_copy_user",
    ".global llmos_copy_user_insn",
    ".global llmos_copy_user_fixup",
    "llmos_copy_user:",
    "    mov rcx, rdx",
    "llmos_copy_user_insn:",
    "    rep movsb",
    "    xor eax, eax",
    "    ret",
    "llmos_copy_user_fixup:",
    "    mov rax, rcx",
    "    ret",
);

unsafe extern "C" {
    fn llmos_copy_user(dst: *mut u8, src: *const u8, len: usize) -> usize;
    static llmos_copy_user_insn: u8;
    static llmos_copy_user_fixup: u8;
}

/// CR4.SMAP is on (read by the interrupt entry stubs, `idt.rs`).
pub(super) static SMAP: AtomicBool = AtomicBool::new(false);

/// Records that CR4.SMAP is on, so copies must bracket themselves with
/// STAC/CLAC.
pub fn set_smap(on: bool) {
    SMAP.store(on, Ordering::Relaxed);
}

/// Clears RFLAGS.AC, turning SMAP back on, at a kernel entry. Interrupt
/// and exception delivery keep the interrupted context's AC: ring 3 may
/// set it at will (`popf`), and the copy routine runs with it set, so every
/// handler clears it first (Linux's `ASM_CLAC`), and IRETQ brings the
/// interrupted value back. The SYSCALL entry needs none: SFMASK clears AC.
#[inline(always)]
pub fn clac_on_entry() {
    if SMAP.load(Ordering::Relaxed) {
        // SAFETY: CLAC exists when SMAP does; it only clears RFLAGS.AC.
        unsafe { core::arch::asm!("clac", options(nomem, nostack)) };
    }
}

/// Test hooks: panics if RFLAGS.AC is set (SMAP disabled) in kernel mode
/// at `place`, where the kernel must never run with it.
#[cfg(feature = "test-hooks")]
pub fn assert_ac_clear(place: &str) {
    let ac = ::x86_64::registers::rflags::read()
        .contains(::x86_64::registers::rflags::RFlags::ALIGNMENT_CHECK);
    if ac && SMAP.load(Ordering::Relaxed) {
        panic!("RFLAGS.AC is set in kernel mode in {place}: SMAP is off there");
    }
}

/// Test hooks: sets RFLAGS.AC (what a kernel path that forgot its CLAC
/// would leave behind), so a test can show it does not leak to another
/// thread.
#[cfg(feature = "test-hooks")]
pub fn set_ac_for_test() {
    if SMAP.load(Ordering::Relaxed) {
        // SAFETY: STAC exists when SMAP does; it only sets RFLAGS.AC, and
        // the caller clears it again with `clac_on_entry`.
        unsafe { core::arch::asm!("stac", options(nomem, nostack)) };
    }
}

/// The address of the faulting instruction inside the copy routine.
pub fn copy_insn_ip() -> u64 {
    core::ptr::addr_of!(llmos_copy_user_insn) as u64
}

/// Where a failed copy resumes.
pub fn fixup_ip() -> u64 {
    core::ptr::addr_of!(llmos_copy_user_fixup) as u64
}

/// A copy touched an address the process has not mapped (or could not get
/// memory for); the bytes before it were copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Bytes copied before the fault.
    pub copied: usize,
}

fn copy(dst: *mut u8, src: *const u8, len: usize) -> Result<(), Fault> {
    if len == 0 {
        return Ok(());
    }
    let smap = SMAP.load(Ordering::Relaxed);
    // SAFETY: callers pass one kernel buffer they own for `len` bytes and
    // one user range they checked lies entirely below the user-space limit;
    // faults on the user side are recovered by the page-fault handler
    // (demand paging or the fixup), so the routine always returns. STAC and
    // CLAC are only executed when the CPU has SMAP.
    let left = unsafe {
        if smap {
            core::arch::asm!("stac", options(nomem, nostack));
        }
        let left = llmos_copy_user(dst, src, len);
        if smap {
            core::arch::asm!("clac", options(nomem, nostack));
        }
        left
    };
    if left == 0 {
        Ok(())
    } else {
        Err(Fault {
            copied: len.saturating_sub(left),
        })
    }
}

/// Copies `dst.len()` bytes from user address `src`.
///
/// The caller must have checked that `src..src + dst.len()` is a user
/// range (see `memory::uaccess`).
pub fn copy_from_user(dst: &mut [u8], src: u64) -> Result<(), Fault> {
    copy(dst.as_mut_ptr(), src as *const u8, dst.len())
}

/// Copies `src` to user address `dst` (checked by the caller as above).
pub fn copy_to_user(dst: u64, src: &[u8]) -> Result<(), Fault> {
    copy(dst as *mut u8, src.as_ptr(), src.len())
}
