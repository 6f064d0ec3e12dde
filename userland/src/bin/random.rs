//! Prints 32 bytes from getrandom as hex (differs on every run).
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
}
