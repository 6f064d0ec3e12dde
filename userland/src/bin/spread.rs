//! A new busy thread goes to the idle CPU, not into the queue of its busy
//! creator's CPU for good.
//!
//! The main thread runs on CPU 0 after a sleep (the boot CPU's tick wakes
//! it, so it comes back through the idle thread's interrupt path), then
//! starts a thread whose home is CPU 0 too (thread ids are spread over the
//! CPUs: the first new thread, id 2, belongs to CPU 0). Both spin. CPU 1 is
//! idle and, being an application processor, has no tick: it must be sent
//! the work, or the two threads take turns on CPU 0 for good (which once
//! made one boot in ten of the runtime generate three times slower). Each
//! thread reads getcpu at the end; they must differ.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use llmos_userland::syscall6;

fn set_mask(m: u64) {
    assert_eq!(syscall6(203, [0, 8, &m as *const u64 as u64, 0, 0, 0]), 0);
}

fn getcpu() -> u32 {
    let mut cpu = 0u32;
    assert_eq!(
        syscall6(309, [&mut cpu as *mut u32 as u64, 0, 0, 0, 0, 0]),
        0
    );
    cpu
}

fn main() {
    let mut all = 0u64;
    assert_eq!(
        syscall6(204, [0, 8, &mut all as *mut u64 as u64, 0, 0, 0]),
        8
    );
    assert!(all.count_ones() >= 2, "needs at least 2 CPUs");
    // Run on CPU 0, sleep (CPU 0 idles; its tick wakes us), then allow
    // every CPU again without moving.
    set_mask(1);
    std::thread::sleep(Duration::from_millis(30));
    set_mask(all);
    let before = getcpu();

    let stop = Arc::new(AtomicBool::new(false));
    let theirs = Arc::new(AtomicU64::new(0));
    let their_cpu = Arc::new(AtomicU64::new(u64::MAX));
    let other = {
        let (stop, theirs, their_cpu) = (stop.clone(), theirs.clone(), their_cpu.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..1000 {
                    std::hint::black_box(theirs.fetch_add(1, Ordering::Relaxed));
                }
            }
            their_cpu.store(u64::from(getcpu()), Ordering::SeqCst);
        })
    };
    let mine = AtomicU64::new(0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(700) {
        for _ in 0..1000 {
            std::hint::black_box(mine.fetch_add(1, Ordering::Relaxed));
        }
    }
    let my_cpu = getcpu();
    stop.store(true, Ordering::SeqCst);
    other.join().expect("join");
    let their_cpu = their_cpu.load(Ordering::SeqCst);
    let both = mine.load(Ordering::Relaxed) > 0 && theirs.load(Ordering::Relaxed) > 0;
    println!("main thread on CPU {before} before starting the other");
    println!(
        "after 700 ms: main thread on CPU {my_cpu}, other thread on CPU {their_cpu}, both progressed: {both}"
    );
    let ok = both && u64::from(my_cpu) != their_cpu;
    println!("{}", if ok { "spread ok" } else { "SPREAD WRONG" });
    std::process::exit(if ok { 0 } else { 1 });
}
