//! Running out of memory, on purpose (llmos only: the numbers depend on
//! the kernel's reserve, see `docs/linux-abi.md`).
//!
//! 1. mmap with MAP_POPULATE of twice the machine's memory fails with
//!    ENOMEM, and everything it had populated is free again.
//! 2. munmap and mprotect of an unpopulated 16 TiB area return at once.
//! 3. A 2 GiB read from /dev/zero into an area as large as the machine
//!    (in 64 MiB reads) fills user memory up to the kernel's reserve; then
//!    a read fails with EFAULT.
//!    While memory is full the kernel keeps serving files, pipes, sockets
//!    and directory listings, and a 32 MiB file write is short or refused
//!    (ENOMEM). Unmapping gives the memory back; then the same write
//!    succeeds whole.
//! 4. Touching pages until none is left ends the program with SIGKILL,
//!    as Linux's OOM killer does (the test checks the kernel's line).
use llmos_userland::{meminfo_kb, syscall6};

const READ: u64 = 0;
const WRITE: u64 = 1;
const CLOSE: u64 = 3;
const MMAP: u64 = 9;
const MPROTECT: u64 = 10;
const MUNMAP: u64 = 11;
const SOCKET: u64 = 41;
const GETDENTS64: u64 = 217;
const OPENAT: u64 = 257;
const PIPE2: u64 = 293;
const SYSINFO: u64 = 99;
const PROT_RW: u64 = 3;
const ANON: u64 = 0x22;
const MAP_NORESERVE: u64 = 0x4000;
const MAP_POPULATE: u64 = 0x8000;
const MIB: u64 = 1 << 20;

fn open(path: &std::ffi::CStr, flags: u64) -> i64 {
    syscall6(
        OPENAT,
        [-100i64 as u64, path.as_ptr() as u64, flags, 0o600, 0, 0],
    )
}

fn free_mib() -> u64 {
    meminfo_kb("MemFree").expect("a MemFree line") / 1024
}

fn errno(r: i64) -> String {
    if r < 0 {
        format!("errno {}", -r)
    } else {
        String::from("success")
    }
}

/// The kernel's ordinary services, while user memory is full; a large
/// file write last (it may use up what the kernel spares for programs).
fn still_serving(area: u64) {
    let fd = open(c"/tmp/oom-file", 0o102);
    println!("open while full: {}", errno(fd));
    let mut fds = [0i32; 2];
    let r = syscall6(PIPE2, [fds.as_mut_ptr() as u64, 0, 0, 0, 0, 0]);
    println!("pipe while full: {}", errno(r));
    if r == 0 {
        let msg = *b"hello";
        let w = syscall6(WRITE, [fds[1] as u64, msg.as_ptr() as u64, 5, 0, 0, 0]);
        let mut back = [0u8; 5];
        let r = syscall6(READ, [fds[0] as u64, back.as_mut_ptr() as u64, 5, 0, 0, 0]);
        println!(
            "pipe round trip while full: {}",
            w == 5 && r == 5 && back == msg
        );
        syscall6(CLOSE, [fds[0] as u64, 0, 0, 0, 0, 0]);
        syscall6(CLOSE, [fds[1] as u64, 0, 0, 0, 0, 0]);
    }
    let s = syscall6(SOCKET, [2, 1, 0, 0, 0, 0]);
    println!("socket while full: {}", errno(s));
    syscall6(CLOSE, [s as u64, 0, 0, 0, 0, 0]);
    let dir = open(c"/", 0o200000);
    let mut buf = [0u8; 2048];
    let n = syscall6(
        GETDENTS64,
        [dir as u64, buf.as_mut_ptr() as u64, 2048, 0, 0, 0],
    );
    println!("listing / while full: {}", n > 0);
    syscall6(CLOSE, [dir as u64, 0, 0, 0, 0, 0]);
    if fd >= 0 {
        let r = syscall6(WRITE, [fd as u64, area, 32 * MIB, 0, 0, 0]);
        let ok = r == -12 || r == -28 || (0..32 * MIB as i64).contains(&r);
        println!("32 MiB file write while full: short or refused: {ok}");
        syscall6(CLOSE, [fd as u64, 0, 0, 0, 0, 0]);
    }
}

fn main() {
    let mut info = [0u64; 14];
    assert_eq!(
        syscall6(SYSINFO, [info.as_mut_ptr() as u64, 0, 0, 0, 0, 0]),
        0
    );
    let total = info[4];
    let before = free_mib();
    println!("{} MiB of memory, free before: {before} MiB", total / MIB);

    // 1. Populating more than there is.
    let r = syscall6(
        MMAP,
        [0, 2 * total, PROT_RW, ANON | MAP_POPULATE, u64::MAX, 0],
    );
    println!("populate of twice the memory: {}", errno(r));
    if r > 0 {
        syscall6(MUNMAP, [r as u64, 2 * total, 0, 0, 0, 0]);
    }
    println!("free after the populate: {} MiB", free_mib());

    // 2. Huge areas that hold nothing.
    let huge = 16u64 << 40;
    let r = syscall6(MMAP, [0, huge, 0, ANON | MAP_NORESERVE, u64::MAX, 0]);
    assert!(r > 0, "16 TiB PROT_NONE mapping: {r}");
    let p = syscall6(MPROTECT, [r as u64, huge, PROT_RW, 0, 0, 0]);
    let u = syscall6(MUNMAP, [r as u64, huge, 0, 0, 0, 0]);
    println!("mprotect and munmap of an unpopulated 16 TiB area: {p} {u}");

    // 3. Full memory, then the kernel still serves.
    let area = syscall6(MMAP, [0, total, PROT_RW, ANON | MAP_NORESERVE, u64::MAX, 0]);
    assert!(area > 0, "mmap of the area: {area}");
    let area = area as u64;
    let zero = open(c"/dev/zero", 0) as u64;
    // Until the kernel cannot deliver a single byte (a read that runs out
    // on the way returns what it delivered, the next one EFAULT).
    let mut filled = 0u64;
    let mut last = 0;
    while filled < total {
        last = syscall6(READ, [zero, area + filled, 64 * MIB, 0, 0, 0]);
        if last <= 0 {
            break;
        }
        filled += last as u64;
    }
    println!(
        "the reads stopped short of the area: {} ({})",
        filled < total,
        errno(last)
    );
    println!("free while full: {} MiB", free_mib());
    still_serving(area);
    syscall6(MUNMAP, [area, total, 0, 0, 0, 0]);
    let _ = std::fs::remove_file("/tmp/oom-file");
    println!("free after munmap: {} MiB", free_mib());
    let fd = open(c"/tmp/oom-file", 0o102);
    let big = syscall6(MMAP, [0, 32 * MIB, PROT_RW, ANON, u64::MAX, 0]) as u64;
    let r = syscall6(WRITE, [fd as u64, big, 32 * MIB, 0, 0, 0]);
    println!("32 MiB file write afterwards: {r}");
    syscall6(CLOSE, [fd as u64, 0, 0, 0, 0, 0]);
    syscall6(MUNMAP, [big, 32 * MIB, 0, 0, 0, 0]);
    let _ = std::fs::remove_file("/tmp/oom-file");

    // 4. A page fault with nothing left.
    let area = syscall6(
        MMAP,
        [0, 2 * total, PROT_RW, ANON | MAP_NORESERVE, u64::MAX, 0],
    );
    assert!(area > 0, "mmap: {area}");
    println!("touching pages until memory runs out");
    let mut at = area as u64;
    loop {
        // SAFETY: inside a fresh read-write anonymous mapping of twice the
        // machine's memory; the kernel ends the program before the end.
        unsafe { (at as *mut u8).write_volatile(1) };
        at += 4096;
    }
}
