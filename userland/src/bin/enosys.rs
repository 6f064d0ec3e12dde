//! Syscalls outside the Linux table return ENOSYS (-38), repeatedly, and
//! the program keeps running. Same output on Linux.
use llmos_userland::syscall6;

fn main() {
    // Far above the highest Linux syscall (about 470 in 2026).
    for nr in [900u64, 1000, 4095, 0xffff] {
        let r1 = syscall6(nr, [1, 2, 3, 4, 5, 6]);
        let r2 = syscall6(nr, [0; 6]);
        println!("syscall {nr}: {r1} then {r2}");
    }
    println!("still running");
}
