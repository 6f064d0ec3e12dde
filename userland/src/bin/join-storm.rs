//! Creates and joins 2,000 short threads, a few at a time.
use std::thread;

fn main() {
    let mut total = 0u64;
    for batch in 0..250u64 {
        let hs: Vec<_> = (0..8u64)
            .map(|i| thread::spawn(move || batch * 8 + i))
            .collect();
        total += hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
    }
    println!(
        "joined 2000 threads, sum of their results {total} (want {})",
        1999 * 2000 / 2
    );
    std::process::exit(if total == 1999 * 2000 / 2 { 0 } else { 1 });
}
