//! Pins itself to each CPU in turn with sched_setaffinity and checks with
//! getcpu that it really runs there; then restores the full mask.
use llmos_userland::syscall6;

fn getcpu() -> u32 {
    let mut cpu = 0u32;
    let r = syscall6(309, [&mut cpu as *mut u32 as u64, 0, 0, 0, 0, 0]);
    assert_eq!(r, 0);
    cpu
}

fn main() {
    let mut mask = 0u64;
    assert_eq!(
        syscall6(204, [0, 8, &mut mask as *mut u64 as u64, 0, 0, 0]),
        8
    );
    let cpus = mask.count_ones();
    let mut ok = true;
    for c in 0..cpus {
        let m: u64 = 1 << c;
        assert_eq!(syscall6(203, [0, 8, &m as *const u64 as u64, 0, 0, 0]), 0);
        let mut spin = 0u64;
        for i in 0..2_000_000u64 {
            spin = spin.wrapping_add(i);
        }
        std::hint::black_box(spin);
        let now = getcpu();
        let mut got = 0u64;
        syscall6(204, [0, 8, &mut got as *mut u64 as u64, 0, 0, 0]);
        println!("pinned to CPU {c}: running on CPU {now}, affinity mask {got:#x}");
        ok &= now == c && got == m;
    }
    let empty = 0u64;
    let r = syscall6(203, [0, 8, &empty as *const u64 as u64, 0, 0, 0]);
    println!(
        "empty mask: {}",
        if r == -22 { "EINVAL" } else { "accepted?!" }
    );
    assert_eq!(
        syscall6(203, [0, 8, &mask as *const u64 as u64, 0, 0, 0]),
        0
    );
    println!(
        "{}",
        if ok && r == -22 {
            "affinity works"
        } else {
            "AFFINITY BROKEN"
        }
    );
    std::process::exit(if ok && r == -22 { 0 } else { 1 });
}
