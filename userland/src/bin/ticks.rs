//! Timer ticks stay off a compute thread that has its CPU to itself, and
//! come back when two threads share a CPU (they must take turns).
//!
//! Pins itself to the last CPU, spins there alone for a second and counts
//! that CPU's timer interrupts in /proc/interrupts (LOC); then two threads
//! pinned to the same CPU spin together and both must make progress.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use llmos_userland::syscall6;

fn pin(cpu: u32) {
    let m: u64 = 1 << cpu;
    assert_eq!(syscall6(203, [0, 8, &m as *const u64 as u64, 0, 0, 0]), 0);
}

/// This CPU's column of the LOC row.
fn ticks(cpu: usize) -> u64 {
    let text = std::fs::read_to_string("/proc/interrupts").expect("/proc/interrupts");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("LOC:"))
        .expect("a LOC row");
    row.split_whitespace()
        .nth(1 + cpu)
        .and_then(|n| n.parse().ok())
        .expect("a count for the CPU")
}

fn spin_for(d: Duration, progress: &AtomicU64, stop: &AtomicBool) {
    let start = Instant::now();
    while start.elapsed() < d && !stop.load(Ordering::Relaxed) {
        for _ in 0..1000 {
            std::hint::black_box(progress.fetch_add(1, Ordering::Relaxed));
        }
    }
}

fn main() {
    let mut mask = 0u64;
    assert_eq!(
        syscall6(204, [0, 8, &mut mask as *mut u64 as u64, 0, 0, 0]),
        8
    );
    let cpus = mask.count_ones();
    assert!(cpus >= 2, "needs at least 2 CPUs");
    let cpu = cpus - 1;
    pin(cpu);
    let stop = Arc::new(AtomicBool::new(false));

    let mine = AtomicU64::new(0);
    let before = ticks(cpu as usize);
    spin_for(Duration::from_secs(1), &mine, &stop);
    let alone = ticks(cpu as usize) - before;
    println!("CPU {cpu} alone: {alone} timer ticks in 1 s");

    let theirs = Arc::new(AtomicU64::new(0));
    let (t, s) = (theirs.clone(), stop.clone());
    let other = std::thread::spawn(move || {
        pin(cpu);
        spin_for(Duration::from_secs(2), &t, &s);
    });
    // Let the other thread start, then spin together for a second.
    std::thread::sleep(Duration::from_millis(100));
    let (m0, t0) = (mine.load(Ordering::Relaxed), theirs.load(Ordering::Relaxed));
    let before = ticks(cpu as usize);
    spin_for(Duration::from_secs(1), &mine, &stop);
    let shared = ticks(cpu as usize) - before;
    let (m1, t1) = (mine.load(Ordering::Relaxed), theirs.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    other.join().expect("join");
    let both = m1 > m0 && t1 > t0;
    println!(
        "CPU {cpu} shared by two threads: {shared} timer ticks in 1 s, both progressed: {both}"
    );
    let ok = alone <= 10 && shared >= 20 && both;
    println!("{}", if ok { "ticks ok" } else { "TICKS WRONG" });
    std::process::exit(if ok { 0 } else { 1 });
}
