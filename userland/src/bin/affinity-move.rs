//! Moving another thread off a CPU with sched_setaffinity: thread T shares
//! CPU 1 with thread U (so it waits in CPU 1's run queue part of the
//! time), the main thread on CPU 0 restricts T to CPU 0 and lets U end,
//! so CPU 1 has nothing it may run; then it unmaps memory, which makes
//! every other CPU flush its TLB. An early kernel left T in CPU 1's queue:
//! CPU 1's idle loop saw work it could not take and spun with interrupts
//! off, and the flush waited for it forever (the syscall fuzzer hung so).
//! T must end up running on CPU 0. Same output on Linux.
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use llmos_userland::syscall6;

static STOP_U: AtomicBool = AtomicBool::new(false);
static U_DONE: AtomicBool = AtomicBool::new(false);
static T_TID: AtomicU32 = AtomicU32::new(0);

fn pin(tid: u32, cpu: u32) -> i64 {
    let mask: u64 = 1 << cpu;
    syscall6(
        203,
        [u64::from(tid), 8, &mask as *const u64 as u64, 0, 0, 0],
    )
}

fn getcpu() -> u32 {
    let mut cpu = 0u32;
    syscall6(309, [&mut cpu as *mut u32 as u64, 0, 0, 0, 0, 0]);
    cpu
}

fn spin(n: u64) {
    let mut x = 0u64;
    for i in 0..n {
        x = x.wrapping_add(i);
    }
    std::hint::black_box(x);
}

fn main() {
    pin(0, 0);
    let u = std::thread::spawn(|| {
        pin(0, 1);
        while !STOP_U.load(Ordering::Relaxed) {
            spin(10_000);
        }
        U_DONE.store(true, Ordering::Relaxed);
    });
    let t = std::thread::spawn(|| {
        T_TID.store(syscall6(186, [0; 6]) as u32, Ordering::Relaxed);
        pin(0, 1);
        // Spin until moved to CPU 0.
        while getcpu() != 0 {
            spin(10_000);
        }
        getcpu()
    });
    while T_TID.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    // Let T and U take turns on CPU 1 for a while.
    std::thread::sleep(std::time::Duration::from_millis(100));
    println!(
        "restricting T to CPU 0: {}",
        pin(T_TID.load(Ordering::Relaxed), 0)
    );
    STOP_U.store(true, Ordering::Relaxed);
    // From here on CPU 0 never blocks (it would steal T when idle): wait
    // for U by spinning, and stay busy while CPU 1's tick preempts T.
    while !U_DONE.load(Ordering::Relaxed) {
        spin(10_000);
    }
    let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
    while std::time::Instant::now() < until {
        spin(10_000);
    }
    // A TLB shootdown: every other CPU must answer.
    let p = syscall6(9, [0, 1 << 20, 3, 0x22, u64::MAX, 0]) as u64;
    // SAFETY: a fresh read-write mapping.
    unsafe { (p as *mut u8).write_volatile(1) };
    println!("munmap: {}", syscall6(11, [p, 1 << 20, 0, 0, 0, 0]));
    println!("T ends on CPU {}", t.join().expect("T"));
    u.join().expect("U");
}
