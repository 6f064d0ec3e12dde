//! Time: the monotonic clock never goes backwards, sleeping 100 ms takes
//! 100–150 ms of monotonic time, and the wall clock is after 2020.
//! Prints measurements (not byte-compared with the host).
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let mut last = Instant::now();
    let mut backwards = 0;
    for _ in 0..100_000 {
        let now = Instant::now();
        if now < last {
            backwards += 1;
        }
        last = now;
    }
    println!("monotonic: 100000 reads, {backwards} went backwards");
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    let slept = start.elapsed();
    println!("sleep(100 ms) took {} ms", slept.as_millis());
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!(
        "wall clock: {wall} s since the epoch ({})",
        if wall > 1_577_836_800 {
            "after 2020"
        } else {
            "WRONG"
        }
    );
    let ok = backwards == 0 && (100..=150).contains(&slept.as_millis()) && wall > 1_577_836_800;
    std::process::exit(if ok { 0 } else { 1 });
}
