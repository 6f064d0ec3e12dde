//! Prints what std sees as the available parallelism (the CPU count the
//! kernel reports through sched_getaffinity).
fn main() {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("available_parallelism = {n}");
}
