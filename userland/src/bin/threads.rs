//! Thread stress: 16 threads hammer a Mutex, a Condvar, a Barrier, an mpsc
//! channel and atomic counters for a fixed number of rounds; every total
//! is checked. Deterministic output (same on Linux).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;

const THREADS: u64 = 16;
const ROUNDS: u64 = 200;

fn main() {
    let counter = Arc::new(Mutex::new(0u64));
    let atomic = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let turn = Arc::new((Mutex::new(0u64), Condvar::new()));
    let (tx, rx) = mpsc::channel::<u64>();
    let mut handles = Vec::new();
    for id in 0..THREADS {
        let (counter, atomic, barrier, turn, tx) = (
            counter.clone(),
            atomic.clone(),
            barrier.clone(),
            turn.clone(),
            tx.clone(),
        );
        handles.push(thread::spawn(move || {
            let mut local = 0u64;
            for r in 0..ROUNDS {
                *counter.lock().unwrap() += 1;
                atomic.fetch_add(id + 1, Ordering::SeqCst);
                tx.send(id * 1000 + r).unwrap();
                local += r;
                if r % 50 == 0 {
                    barrier.wait();
                }
            }
            // Take turns in id order through the condition variable.
            let (lock, cv) = &*turn;
            let mut t = lock.lock().unwrap();
            while *t != id {
                t = cv.wait(t).unwrap();
            }
            *t += 1;
            cv.notify_all();
            local
        }));
    }
    drop(tx);
    let received: u64 = rx.iter().map(|_| 1).sum();
    let locals: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mutex_total = *counter.lock().unwrap();
    let atomic_total = atomic.load(Ordering::SeqCst);
    println!("threads: {THREADS} x {ROUNDS} rounds");
    println!("mutex counter: {mutex_total} (want {})", THREADS * ROUNDS);
    println!(
        "atomic sum: {atomic_total} (want {})",
        ROUNDS * THREADS * (THREADS + 1) / 2
    );
    println!("channel messages: {received} (want {})", THREADS * ROUNDS);
    println!(
        "thread-local sums: {locals} (want {})",
        THREADS * ROUNDS * (ROUNDS - 1) / 2
    );
    println!(
        "condvar turns: {} (want {THREADS})",
        *turn.0.lock().unwrap()
    );
    let ok = mutex_total == THREADS * ROUNDS
        && atomic_total == ROUNDS * THREADS * (THREADS + 1) / 2
        && received == THREADS * ROUNDS
        && locals == THREADS * ROUNDS * (ROUNDS - 1) / 2;
    println!(
        "{}",
        if ok {
            "all totals correct"
        } else {
            "WRONG TOTALS"
        }
    );
    std::process::exit(if ok { 0 } else { 1 });
}
