//! Prints 32 bytes from getrandom as hex (differs on every run), checks
//! that unknown flags are refused, and prints `/proc/llmos/random` (which
//! sources seeded the kernel's generator), if it exists.
use llmos_userland::syscall6;

fn main() {
    let mut buf = [0u8; 32];
    let n = syscall6(318, [buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0]);
    assert_eq!(n, 32, "getrandom returned {n}");
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    println!("random: {hex}");
    let bad = syscall6(318, [buf.as_mut_ptr() as u64, 8, 0x100, 0, 0, 0]);
    println!(
        "getrandom with unknown flags: {}",
        if bad == -22 { "EINVAL" } else { "accepted?!" }
    );
    match std::fs::read_to_string("/proc/llmos/random") {
        Ok(text) => {
            for line in text.lines() {
                println!("/proc/llmos/random: {line}");
            }
        }
        Err(e) => println!("/proc/llmos/random: {e}"),
    }
}
