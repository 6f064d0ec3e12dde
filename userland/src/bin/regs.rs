//! Register preservation: the kernel must return every register a program
//! relies on unchanged across syscalls and timer interrupts — the
//! callee-saved general registers and the whole SSE/AVX state. One asm
//! block fills r12–r15 and xmm/ymm8–15 with patterns, makes 2,000 syscalls
//! with busy loops in between (so timer interrupts land in user mode), and
//! stores the registers back for comparison. Same output on Linux.
use std::arch::asm;

const ROUNDS: u64 = 2000;

fn main() {
    let avx = std::arch::is_x86_feature_detected!("avx");
    let mut pattern = [0u8; 8 * 32];
    for (i, b) in pattern.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    let mut vec_out = [0u8; 8 * 32];
    let mut gpr_out = [0u64; 4];
    let gpr_in: [u64; 4] = [
        0x1212_3434_5656_7878,
        0x9a9a_bcbc_dede_f0f0,
        0x0102_0304_0506_0708,
        0xfeed_face_cafe_beef,
    ];
    // SAFETY: the asm only reads `pattern`/`gpr_in` and writes
    // `vec_out`/`gpr_out` through the given pointers; every register it
    // changes is declared as clobbered; AVX instructions run only when the
    // CPU has AVX.
    unsafe {
        if avx {
            asm!(
                "vmovdqu ymm8, [{p}]", "vmovdqu ymm9, [{p} + 32]", "vmovdqu ymm10, [{p} + 64]",
                "vmovdqu ymm11, [{p} + 96]", "vmovdqu ymm12, [{p} + 128]", "vmovdqu ymm13, [{p} + 160]",
                "vmovdqu ymm14, [{p} + 192]", "vmovdqu ymm15, [{p} + 224]",
                "mov r12, [{g}]", "mov r13, [{g} + 8]", "mov r14, [{g} + 16]", "mov r15, [{g} + 24]",
                "2:",
                "mov eax, 39", "syscall",
                "mov ecx, 20000", "3:", "dec ecx", "jnz 3b",
                "dec {n}", "jnz 2b",
                "vmovdqu [{o}], ymm8", "vmovdqu [{o} + 32], ymm9", "vmovdqu [{o} + 64], ymm10",
                "vmovdqu [{o} + 96], ymm11", "vmovdqu [{o} + 128], ymm12", "vmovdqu [{o} + 160], ymm13",
                "vmovdqu [{o} + 192], ymm14", "vmovdqu [{o} + 224], ymm15",
                "mov [{go}], r12", "mov [{go} + 8], r13", "mov [{go} + 16], r14", "mov [{go} + 24], r15",
                p = in(reg) pattern.as_ptr(), g = in(reg) gpr_in.as_ptr(),
                o = in(reg) vec_out.as_mut_ptr(), go = in(reg) gpr_out.as_mut_ptr(),
                n = inout(reg) ROUNDS => _,
                out("rax") _, out("rcx") _, out("r11") _, out("r12") _, out("r13") _, out("r14") _, out("r15") _,
                out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
                out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
                options(nostack)
            );
        } else {
            asm!(
                "movdqu xmm8, [{p}]", "movdqu xmm9, [{p} + 32]", "movdqu xmm10, [{p} + 64]",
                "movdqu xmm11, [{p} + 96]", "movdqu xmm12, [{p} + 128]", "movdqu xmm13, [{p} + 160]",
                "movdqu xmm14, [{p} + 192]", "movdqu xmm15, [{p} + 224]",
                "mov r12, [{g}]", "mov r13, [{g} + 8]", "mov r14, [{g} + 16]", "mov r15, [{g} + 24]",
                "2:",
                "mov eax, 39", "syscall",
                "mov ecx, 20000", "3:", "dec ecx", "jnz 3b",
                "dec {n}", "jnz 2b",
                "movdqu [{o}], xmm8", "movdqu [{o} + 32], xmm9", "movdqu [{o} + 64], xmm10",
                "movdqu [{o} + 96], xmm11", "movdqu [{o} + 128], xmm12", "movdqu [{o} + 160], xmm13",
                "movdqu [{o} + 192], xmm14", "movdqu [{o} + 224], xmm15",
                "mov [{go}], r12", "mov [{go} + 8], r13", "mov [{go} + 16], r14", "mov [{go} + 24], r15",
                p = in(reg) pattern.as_ptr(), g = in(reg) gpr_in.as_ptr(),
                o = in(reg) vec_out.as_mut_ptr(), go = in(reg) gpr_out.as_mut_ptr(),
                n = inout(reg) ROUNDS => _,
                out("rax") _, out("rcx") _, out("r11") _, out("r12") _, out("r13") _, out("r14") _, out("r15") _,
                out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                options(nostack)
            );
        }
    }
    let width = if avx { 32 } else { 16 };
    let vec_ok = (0..8).all(|r| vec_out[r * 32..r * 32 + width] == pattern[r * 32..r * 32 + width]);
    let gpr_ok = gpr_out == gpr_in;
    println!("{ROUNDS} syscalls with busy loops between them");
    println!("r12-r15 preserved: {}", if gpr_ok { "yes" } else { "NO" });
    println!(
        "vector registers 8-15 preserved: {}",
        if vec_ok { "yes" } else { "NO" }
    );
    std::process::exit(if gpr_ok && vec_ok { 0 } else { 1 });
}
