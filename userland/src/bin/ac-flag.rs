//! RFLAGS.AC set in ring 3 (`popf` may set it at any privilege level;
//! with SMAP it is also the switch that lets the kernel touch user pages).
//!
//! The main thread, pinned to CPU 0, sets AC and then faults in 64 fresh
//! pages and makes 200,000 syscalls with it set, while timer interrupts
//! come in: AC must still be set after every syscall (the kernel gives the
//! user's flags back), and must never show in another thread, one on the
//! same CPU and one on CPU 1. Then it yields 200 times while the other
//! thread on CPU 0 yields too. Run under the test-hooks kernel's `ac-leak`
//! scenario, the kernel checks at every interrupt and exception entry and
//! every syscall return that it runs with AC clear (SMAP on), and the main
//! thread's yields switch away with AC set on purpose: the thread that
//! runs next must not inherit it.
use std::arch::asm;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use llmos_userland::syscall6;

const AC: u64 = 1 << 18;
const PAGES: u64 = 64;
const SYSCALLS: u64 = 200_000;

static STOP: AtomicBool = AtomicBool::new(false);
static SEEN: AtomicU64 = AtomicU64::new(0);

fn rflags() -> u64 {
    let f: u64;
    // SAFETY: reads RFLAGS through the stack.
    unsafe { asm!("pushfq", "pop {}", out(reg) f) };
    f
}

fn pin(cpu: u32) {
    let mask: u64 = 1 << cpu;
    syscall6(203, [0, 8, &mask as *const u64 as u64, 0, 0, 0]);
}

/// Sets AC, writes one byte to each of `PAGES` pages at `area` and makes
/// `SYSCALLS` getpid calls, clears AC. Returns how many syscalls came back
/// with AC still set, and whether it was still set at the end.
fn with_ac(area: u64) -> (u64, bool) {
    let kept: u64;
    let flags: u64;
    // SAFETY: `area` is a fresh read-write mapping of `PAGES` pages; the
    // syscall clobbers rcx and r11 (declared); rax/rdi carry getpid's
    // number. AC only enables alignment checks in ring 3 where the kernel
    // sets CR0.AM, and every access here is a byte or an aligned word.
    unsafe {
        asm!(
            "pushfq",
            "or qword ptr [rsp], {ac}",
            "popfq",
            "xor {i}, {i}",
            "2:",
            "mov byte ptr [{area} + {i}], 1",
            "add {i}, 4096",
            "cmp {i}, {end}",
            "jb 2b",
            "xor {kept}, {kept}",
            "mov {n}, {count}",
            "3:",
            "mov eax, 39",
            "syscall",
            "pushfq",
            "pop {f}",
            "test {f}, {ac}",
            "jz 4f",
            "inc {kept}",
            "4:",
            "dec {n}",
            "jnz 3b",
            "pushfq",
            "pop {f}",
            "pushfq",
            "and qword ptr [rsp], {noac}",
            "popfq",
            area = in(reg) area,
            end = in(reg) PAGES * 4096,
            count = in(reg) SYSCALLS,
            ac = in(reg) AC,
            noac = in(reg) !AC,
            i = out(reg) _,
            n = out(reg) _,
            kept = out(reg) kept,
            f = out(reg) flags,
            out("rax") _,
            out("rcx") _,
            out("r11") _,
        );
    }
    (kept, flags & AC != 0)
}

/// Another thread: reads its own RFLAGS (and yields, if `yields`) until
/// told to stop; counts the times AC was set.
fn watch(cpu: u32, yields: bool) {
    pin(cpu);
    while !STOP.load(Ordering::Relaxed) {
        if rflags() & AC != 0 {
            SEEN.fetch_add(1, Ordering::Relaxed);
        }
        if yields {
            syscall6(24, [0; 6]);
        }
    }
}

fn main() {
    pin(0);
    let same = std::thread::spawn(|| watch(0, true));
    let other = std::thread::spawn(|| watch(1, false));
    let area = syscall6(9, [0, PAGES * 4096, 3, 0x22, u64::MAX, 0]);
    assert!(area > 0, "mmap: {area}");
    let (kept, at_end) = with_ac(area as u64);
    println!(
        "AC stayed set across {kept} of {SYSCALLS} syscalls and {PAGES} page faults: {}",
        kept == SYSCALLS && at_end
    );
    println!("AC clear again: {}", rflags() & AC == 0);
    for _ in 0..200 {
        syscall6(24, [0; 6]);
    }
    println!("200 yields done");
    STOP.store(true, Ordering::Relaxed);
    let _ = same.join();
    let _ = other.join();
    println!(
        "another thread saw AC set: {} times",
        SEEN.load(Ordering::Relaxed)
    );
}
