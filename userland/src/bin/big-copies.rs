//! Copies a program sizes itself: `write`, `writev`, `read` and `sendto`
//! with lengths of 1 GiB and more from or into an 8 KiB buffer that is
//! followed by an inaccessible page. The kernel must move what the buffer
//! holds and stop at the inaccessible byte (a short count, as Linux
//! returns), never first allocate what the program asked for (an early
//! llmos copied a pipe write whole into one kernel allocation and panicked
//! on 2 GiB). Same output on Linux.
use llmos_userland::syscall6;

const READ: u64 = 0;
const WRITE: u64 = 1;
const CLOSE: u64 = 3;
const MMAP: u64 = 9;
const MPROTECT: u64 = 10;
const IOCTL: u64 = 16;
const WRITEV: u64 = 20;
const SOCKET: u64 = 41;
const SENDTO: u64 = 44;
const FCNTL: u64 = 72;
const OPENAT: u64 = 257;
const PIPE2: u64 = 293;
const FIONREAD: u64 = 0x541b;
const F_SETFL: u64 = 4;
const O_NONBLOCK: u64 = 0o4000;
const GIB: u64 = 1 << 30;
const BUF: u64 = 8192;

/// Where the buffers go: low enough that 1 GiB past them is still user
/// space on both kernels (their default placement differs), so a copy
/// stops because of the inaccessible page, not because the range leaves
/// user space.
const AT: u64 = 0x1000_0000_0000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// An 8 KiB read-write buffer (filled with `fill`) followed by a PROT_NONE
/// page, at `AT + slot` MiB.
fn buffer(slot: u64, fill: u8) -> u64 {
    let flags = 0x22 | MAP_FIXED_NOREPLACE;
    let p = syscall6(MMAP, [AT + (slot << 20), BUF + 4096, 3, flags, u64::MAX, 0]);
    assert!(p > 0, "mmap: {p}");
    let p = p as u64;
    assert_eq!(syscall6(MPROTECT, [p + BUF, 4096, 0, 0, 0, 0]), 0);
    // SAFETY: the first 8 KiB of the fresh mapping are read-write.
    unsafe { core::ptr::write_bytes(p as *mut u8, fill, BUF as usize) };
    p
}

fn pipe(flags: u64) -> (u64, u64) {
    let mut fds = [0i32; 2];
    assert_eq!(
        syscall6(PIPE2, [fds.as_mut_ptr() as u64, flags, 0, 0, 0, 0]),
        0
    );
    (fds[0] as u64, fds[1] as u64)
}

fn show(what: &str, r: i64) {
    if r < 0 {
        println!("{what}: errno {}", -r);
    } else {
        println!("{what}: {r}");
    }
}

fn main() {
    let buf = buffer(0, 0x61);
    let big = syscall6(
        MMAP,
        [
            AT + (2 << 20),
            128 << 10,
            3,
            0x22 | MAP_FIXED_NOREPLACE,
            u64::MAX,
            0,
        ],
    ) as u64;

    let (r, w) = pipe(0);
    show(
        "pipe write of 1 GiB from 8 KiB",
        syscall6(WRITE, [w, buf, GIB, 0, 0, 0]),
    );
    let sink = buffer(1, 0);
    show(
        "pipe read of 1 GiB into 8 KiB",
        syscall6(READ, [r, sink, GIB, 0, 0, 0]),
    );
    syscall6(CLOSE, [r, 0, 0, 0, 0, 0]);
    syscall6(CLOSE, [w, 0, 0, 0, 0, 0]);

    let (r, w) = pipe(O_NONBLOCK);
    show(
        "non-blocking pipe write of 1 GiB from 128 KiB",
        syscall6(WRITE, [w, big, GIB, 0, 0, 0]),
    );
    show(
        "pipe read of 1 GiB into 8 KiB (64 KiB buffered)",
        syscall6(READ, [r, sink, GIB, 0, 0, 0]),
    );
    let mut left = 0i32;
    syscall6(IOCTL, [r, FIONREAD, &mut left as *mut i32 as u64, 0, 0, 0]);
    println!("still buffered: {left}");
    let mut iov = [[buf, GIB]; 1024];
    iov[1] = [buf, 16];
    syscall6(FCNTL, [w, F_SETFL, 0, 0, 0, 0]);
    // Empty it, then gather 1024 buffers of 1 GiB each.
    while syscall6(READ, [r, big, 128 << 10, 0, 0, 0]) == 128 << 10 {}
    show(
        "writev of 1024 buffers of 1 GiB from 8 KiB",
        syscall6(WRITEV, [w, iov.as_ptr() as u64, 1024, 0, 0, 0]),
    );
    show(
        "writev of 1025 buffers",
        syscall6(WRITEV, [w, iov.as_ptr() as u64, 1025, 0, 0, 0]),
    );
    syscall6(CLOSE, [r, 0, 0, 0, 0, 0]);
    syscall6(CLOSE, [w, 0, 0, 0, 0, 0]);

    let path = format!("/tmp/big-copies-{}\0", std::process::id());
    let fd = syscall6(
        OPENAT,
        [-100i64 as u64, path.as_ptr() as u64, 0o102, 0o600, 0, 0],
    );
    assert!(fd >= 0, "open: {fd}");
    let fd = fd as u64;
    show(
        "file write of 1 GiB from 8 KiB",
        syscall6(WRITE, [fd, buf, GIB, 0, 0, 0]),
    );
    show(
        "file write of 128 KiB",
        syscall6(WRITE, [fd, big, 128 << 10, 0, 0, 0]),
    );
    show(
        "file read at 0 of 1 GiB into 8 KiB",
        syscall6(17, [fd, sink, GIB, 0, 0, 0]),
    );
    syscall6(CLOSE, [fd, 0, 0, 0, 0, 0]);
    let _ = std::fs::remove_file(path.trim_end_matches('\0'));

    let zero = syscall6(
        OPENAT,
        [-100i64 as u64, c"/dev/zero".as_ptr() as u64, 0, 0, 0, 0],
    ) as u64;
    show(
        "/dev/zero read of 1 GiB into 8 KiB",
        syscall6(READ, [zero, sink, GIB, 0, 0, 0]),
    );
    show(
        "/dev/zero read of u64::MAX into 8 KiB",
        syscall6(READ, [zero, sink, u64::MAX, 0, 0, 0]),
    );

    let udp = syscall6(SOCKET, [2, 2, 0, 0, 0, 0]) as u64;
    // sockaddr_in 127.0.0.1:9 (discard).
    let addr: [u8; 16] = [2, 0, 0, 9, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    show(
        "UDP sendto of 1 GiB",
        syscall6(SENDTO, [udp, buf, GIB, 0, addr.as_ptr() as u64, 16]),
    );
    show(
        "UDP sendto of 128 KiB",
        syscall6(SENDTO, [udp, big, 128 << 10, 0, addr.as_ptr() as u64, 16]),
    );
    println!("the kernel is still here");
}
