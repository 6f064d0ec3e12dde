//! Hardware random numbers (RDSEED, RDRAND). Callers check CPUID first.

/// One 64-bit value from RDSEED, retrying while the entropy source is
/// momentarily exhausted (it reports so through CF = 0).
pub fn rdseed64() -> Option<u64> {
    for _ in 0..128 {
        let value: u64;
        let ok: u8;
        // SAFETY: the caller checked CPUID.7.0:EBX.RDSEED; RDSEED only
        // writes the named register and flags.
        unsafe {
            core::arch::asm!("rdseed {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack));
        }
        if ok == 1 {
            return Some(value);
        }
        core::hint::spin_loop();
    }
    None
}

/// One 64-bit value from RDRAND, with the retry count Intel recommends.
pub fn rdrand64() -> Option<u64> {
    for _ in 0..10 {
        let value: u64;
        let ok: u8;
        // SAFETY: the caller checked CPUID.1:ECX.RDRAND; RDRAND only writes
        // the named register and flags.
        unsafe {
            core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack));
        }
        if ok == 1 {
            return Some(value);
        }
    }
    None
}
