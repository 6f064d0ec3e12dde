//! FUTEX_WAIT with a 50 ms timeout returns ETIMEDOUT after 50–100 ms;
//! a wait on a changed value returns EAGAIN at once.
use llmos_userland::syscall6;
use std::time::Instant;

fn main() {
    let word: u32 = 7;
    let addr = &word as *const u32 as u64;
    let ts: [i64; 2] = [0, 50_000_000];
    let start = Instant::now();
    let r = syscall6(202, [addr, 0x80, 7, ts.as_ptr() as u64, 0, 0]); // FUTEX_WAIT_PRIVATE
    let ms = start.elapsed().as_millis();
    println!(
        "futex wait with a 50 ms timeout: {} after {ms} ms",
        if r == -110 { "ETIMEDOUT" } else { "UNEXPECTED" }
    );
    let r2 = syscall6(202, [addr, 0x80, 8, ts.as_ptr() as u64, 0, 0]);
    println!(
        "futex wait on a changed value: {}",
        if r2 == -11 { "EAGAIN" } else { "UNEXPECTED" }
    );
    let ok = r == -110 && (50..=100).contains(&ms) && r2 == -11;
    std::process::exit(if ok { 0 } else { 1 });
}
