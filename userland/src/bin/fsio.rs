//! File and descriptor semantics, printed so that the QEMU test can
//! compare llmos with Linux byte for byte: std::fs and std::io::Seek in a
//! fresh directory under /tmp (relative paths after chdir), sparse files,
//! unlink while open, rename rules, links, symlink loops, name limits,
//! dup/dup2/dup3/F_DUPFD sharing offsets, fcntl flags, pipes (blocking
//! across threads, EOF, EPIPE), the lowest-free-descriptor rule, EMFILE,
//! /proc/self/exe and getcwd. Output never contains anything that differs
//! between runs or filesystems (no absolute temp names, inode numbers or
//! block counts).
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use llmos_userland::{fnv1a, syscall6};

fn sys(nr: u64, a: &[u64]) -> i64 {
    let mut args = [0u64; 6];
    args[..a.len()].copy_from_slice(a);
    syscall6(nr, args)
}

const DUP: u64 = 32;
const DUP2: u64 = 33;
const DUP3: u64 = 292;
const FCNTL: u64 = 72;
const PIPE2: u64 = 293;
const CLOSE: u64 = 3;
const LSEEK: u64 = 8;
const READ: u64 = 0;
const WRITE: u64 = 1;
const OPENAT: u64 = 257;
const UTIMENSAT: u64 = 280;
const SELECT: u64 = 23;
const POLL: u64 = 7;
const EPOLL_CREATE1: u64 = 291;
const EPOLL_CTL: u64 = 233;
const EPOLL_WAIT: u64 = 232;
const EVENTFD2: u64 = 290;

fn kind<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{:?} ({})", e.kind(), e.raw_os_error().unwrap_or(0)),
    }
}

fn pipe(flags: u64) -> (i32, i32) {
    let mut fds = [0i32; 2];
    let r = sys(PIPE2, &[fds.as_mut_ptr() as u64, flags]);
    assert_eq!(r, 0, "pipe2");
    (fds[0], fds[1])
}

fn main() {
    let exe = fs::read("/proc/self/exe").expect("reading /proc/self/exe");
    println!(
        "/proc/self/exe: {} bytes, fnv1a {:016x}",
        exe.len(),
        fnv1a(&exe)
    );
    let link = fs::read_link("/proc/self/exe").unwrap();
    println!("exe link names a file: {}", fs::metadata(&link).is_ok());

    // A private working directory.
    let base = format!("/tmp/fsio-{}", std::process::id());
    fs::create_dir(&base).unwrap();
    std::env::set_current_dir(&base).unwrap();
    let cwd = std::env::current_dir().unwrap();
    println!(
        "getcwd is the new directory: {}",
        cwd.to_str() == Some(&base)
    );

    // Sparse files, seek, set_len.
    let mut f = fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open("sparse")
        .unwrap();
    f.seek(SeekFrom::Start(10_000)).unwrap();
    f.write_all(b"tail").unwrap();
    println!("sparse len: {}", f.metadata().unwrap().len());
    f.seek(SeekFrom::Start(9_998)).unwrap();
    let mut b = [9u8; 6];
    f.read_exact(&mut b).unwrap();
    println!("hole then data: {b:?}");
    println!("seek end-2: {}", f.seek(SeekFrom::End(-2)).unwrap());
    println!("seek cur+1: {}", f.seek(SeekFrom::Current(1)).unwrap());
    f.rewind().unwrap();
    println!("seek before 0: {}", kind(f.seek(SeekFrom::Current(-1))));
    f.set_len(3).unwrap();
    let mut s = Vec::new();
    f.rewind().unwrap();
    f.read_to_end(&mut s).unwrap();
    println!("after set_len(3): {s:?}");
    f.set_len(5000).unwrap();
    println!(
        "grown by set_len: {} zeros",
        fs::read("sparse").unwrap()[3..]
            .iter()
            .filter(|&&x| x == 0)
            .count()
    );
    println!(
        "create_new on existing: {}",
        kind(
            fs::File::options()
                .write(true)
                .create_new(true)
                .open("sparse")
        )
    );

    // Unlink while open: the data lives until the last close.
    fs::write("gone", b"still here").unwrap();
    let mut g = fs::File::open("gone").unwrap();
    fs::remove_file("gone").unwrap();
    let mut s = String::new();
    g.read_to_string(&mut s).unwrap();
    println!(
        "read after unlink: {s:?}, exists: {}, nlink {}",
        fs::metadata("gone").is_ok(),
        g.metadata().unwrap().nlink()
    );
    drop(g);

    // Rename rules.
    fs::write("a", b"A").unwrap();
    fs::write("b", b"B").unwrap();
    fs::rename("a", "b").unwrap();
    println!(
        "rename over a file: b={:?} a exists={}",
        fs::read_to_string("b").unwrap(),
        fs::metadata("a").is_ok()
    );
    fs::create_dir("d1").unwrap();
    fs::create_dir("d2").unwrap();
    fs::write("d2/x", b"x").unwrap();
    println!("dir over non-empty dir: {}", kind(fs::rename("d1", "d2")));
    println!("file over dir: {}", kind(fs::rename("b", "d1")));
    println!("dir over file: {}", kind(fs::rename("d1", "b")));
    println!("dir into itself: {}", kind(fs::rename("d2", "d2/sub")));
    fs::create_dir("d3").unwrap();
    println!("dir over empty dir: {}", kind(fs::rename("d1", "d3")));
    println!("rmdir non-empty: {}", kind(fs::remove_dir("d2")));
    println!("unlink a dir: {}", kind(fs::remove_file("d3")));
    println!("rmdir a file: {}", kind(fs::remove_dir("b")));

    // Links.
    fs::hard_link("b", "b2").unwrap();
    println!("nlink after link: {}", fs::metadata("b").unwrap().nlink());
    println!("link to a dir: {}", kind(fs::hard_link("d3", "d4")));
    std::os::unix::fs::symlink("loop1", "loop2").unwrap();
    std::os::unix::fs::symlink("loop2", "loop1").unwrap();
    println!("symlink loop: {}", kind(fs::read("loop1")));
    std::os::unix::fs::symlink("b", "lb").unwrap();
    println!(
        "symlink_metadata: symlink {} len {}",
        fs::symlink_metadata("lb").unwrap().file_type().is_symlink(),
        fs::symlink_metadata("lb").unwrap().len()
    );
    println!("trailing slash on a file: {}", kind(fs::metadata("b/")));
    println!("dot-dot path: {}", kind(fs::read("d2/../b")));
    println!("double slash: {}", kind(fs::read("d2//x")));
    let long = "n".repeat(256);
    println!("256-byte name: {}", kind(fs::write(&long, b"")));
    println!("255-byte name: {}", kind(fs::write("n".repeat(255), b"")));
    let deep = "d/".repeat(2100);
    println!("4200-byte path: {}", kind(fs::metadata(&deep)));

    // Permissions and times.
    fs::set_permissions("b", fs::Permissions::from_mode(0o640)).unwrap();
    println!(
        "mode: {:o}",
        fs::metadata("b").unwrap().permissions().mode() & 0o7777
    );
    let path = std::ffi::CString::new("b").unwrap();
    let times: [i64; 4] = [1_000_000_000, 5, 1_500_000_000, (1 << 30) - 2];
    let before_mtime = fs::metadata("b").unwrap().mtime();
    let r = sys(
        UTIMENSAT,
        &[
            -100i64 as u64,
            path.as_ptr() as u64,
            times.as_ptr() as u64,
            0,
        ],
    );
    let m = fs::metadata("b").unwrap();
    println!(
        "utimensat: {r}, atime {} {}, mtime kept: {}",
        m.atime(),
        m.atime_nsec(),
        m.mtime() == before_mtime
    );

    // Descriptors: lowest free number, dup family, shared offsets.
    let f = fs::File::open("sparse").unwrap();
    let fd = f.as_raw_fd() as u64;
    let d = sys(DUP, &[fd]);
    println!("dup gives the next number: {}", d == fd as i64 + 1);
    sys(LSEEK, &[fd, 2, 0]);
    let mut one = [0u8; 1];
    sys(READ, &[d as u64, one.as_mut_ptr() as u64, 1]);
    println!("dup shares the offset: now {}", sys(LSEEK, &[fd, 0, 1]));
    println!("dup2 to 100: {}", sys(DUP2, &[fd, 100]));
    println!("dup2 to itself: {}", sys(DUP2, &[fd, fd]));
    println!("dup3 to itself: {}", sys(DUP3, &[fd, fd, 0]));
    println!("dup3 with O_CLOEXEC: {}", sys(DUP3, &[fd, 101, 0o2000000]));
    println!("FD_CLOEXEC on 101: {}", sys(FCNTL, &[101, 1]));
    println!("FD_CLOEXEC on 100: {}", sys(FCNTL, &[100, 1]));
    println!("F_DUPFD from 50: {}", sys(FCNTL, &[fd, 0, 50]));
    println!("F_DUPFD_CLOEXEC from 50: {}", sys(FCNTL, &[fd, 1030, 50]));
    println!("F_GETFL: {:o}", sys(FCNTL, &[fd, 3]));
    sys(FCNTL, &[fd, 4, 0o4000 | 0o2000]);
    println!("F_GETFL after SETFL: {:o}", sys(FCNTL, &[d as u64, 3]));
    println!("dup of a bad fd: {}", sys(DUP, &[999]));
    println!("dup2 to -1: {}", sys(DUP2, &[fd, -1i64 as u64]));
    for n in [d as u64, 100, 101, 50, 51] {
        sys(CLOSE, &[n]);
    }
    println!("close twice: {}", sys(CLOSE, &[100]));
    sys(CLOSE, &[0]);
    let reopened = sys(OPENAT, &[-100i64 as u64, path.as_ptr() as u64, 0, 0]);
    println!("after closing stdin, open returns: {reopened}");
    sys(CLOSE, &[reopened as u64]);
    drop(f);

    // EMFILE at RLIMIT_NOFILE (lowered to 64 so the run does not depend
    // on the limit it inherited).
    let mut lim = [0u64; 2];
    sys(97, &[7, lim.as_mut_ptr() as u64]);
    lim[0] = 64;
    println!("setrlimit: {}", sys(160, &[7, lim.as_ptr() as u64]));
    let mut opened = Vec::new();
    let err = loop {
        let r = sys(OPENAT, &[-100i64 as u64, path.as_ptr() as u64, 0, 0]);
        if r < 0 {
            break r;
        }
        opened.push(r);
    };
    println!(
        "soft limit {}: opened until {err}, highest fd {}",
        lim[0],
        opened.last().copied().unwrap_or(-1)
    );
    for n in opened {
        sys(CLOSE, &[n as u64]);
    }

    // Pipes.
    let (r, w) = pipe(0o2000000);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let data = vec![7u8; 200_000];
        let mut done = 0;
        while done < data.len() {
            let n = sys(
                WRITE,
                &[
                    w as u64,
                    data[done..].as_ptr() as u64,
                    (data.len() - done) as u64,
                ],
            );
            assert!(n > 0, "pipe write: {n}");
            done += n as usize;
        }
        sys(CLOSE, &[w as u64]);
        done
    });
    // SAFETY: `r` is a pipe read end this program owns from here on.
    let mut rf = unsafe { fs::File::from_raw_fd(r) };
    let mut got = Vec::new();
    rf.read_to_end(&mut got).unwrap();
    println!(
        "pipe across threads: wrote {}, read {} bytes, all 7: {}",
        writer.join().unwrap(),
        got.len(),
        got.iter().all(|&x| x == 7)
    );
    drop(rf);
    let (r, w) = pipe(0o4000);
    let mut byte = [0u8; 1];
    println!(
        "empty non-blocking pipe: {}",
        sys(READ, &[r as u64, byte.as_mut_ptr() as u64, 1])
    );
    let chunk = [1u8; 4096];
    let mut total = 0;
    loop {
        let n = sys(WRITE, &[w as u64, chunk.as_ptr() as u64, 4096]);
        if n < 0 {
            println!("full pipe after {total} bytes: {n}");
            break;
        }
        total += n;
    }
    sys(CLOSE, &[r as u64]);
    println!(
        "write without readers: {}",
        sys(WRITE, &[w as u64, chunk.as_ptr() as u64, 1])
    );
    sys(CLOSE, &[w as u64]);
    let (pr, pw) = std::io::pipe().unwrap();
    drop(pr);
    let mut pw = pw;
    println!("std pipe without readers: {}", kind(pw.write_all(b"x")));

    // Bad arguments are refused with Linux's errors.
    let f = fs::File::open("b").unwrap();
    let fd = f.as_raw_fd() as u64;
    let (r, w) = pipe(0);
    let bad: [(&str, u64, &[u64]); 12] = [
        ("read into NULL", READ, &[fd, 0, 10]),
        ("write from NULL", WRITE, &[w as u64, 0, 10]),
        ("pipe2 to NULL", PIPE2, &[0, 0]),
        (
            "pipe2 with O_DIRECT|O_ASYNC",
            PIPE2,
            &[0, 0o20000 | 0o40000],
        ),
        ("open a NULL path", OPENAT, &[-100i64 as u64, 0, 0, 0]),
        ("fstat into NULL", 5, &[fd, 0]),
        ("getdents64 on a file", 217, &[fd, 0x1000, 4096]),
        ("lseek on a pipe", LSEEK, &[r as u64, 0, 0]),
        ("lseek whence 9", LSEEK, &[fd, 0, 9]),
        ("dup3 with bad flags", DUP3, &[fd, 200, 1]),
        ("fcntl command 9999", FCNTL, &[fd, 9999, 0]),
        ("read from a write end", READ, &[w as u64, 0x1000, 1]),
    ];
    for (what, nr, args) in bad {
        println!("{what}: {}", sys(nr, args));
    }
    for n in [r, w] {
        sys(CLOSE, &[n as u64]);
    }
    drop(f);

    // Readiness: select, poll, epoll (level and edge), eventfd.
    let (r, w) = pipe(0);
    let set = |fd: i32| -> [u64; 16] {
        let mut s = [0u64; 16];
        s[fd as usize / 64] |= 1 << (fd as usize % 64);
        s
    };
    let zero = [0i64; 2];
    let mut rs = set(r);
    println!(
        "select on an empty pipe: {}",
        sys(
            SELECT,
            &[
                r as u64 + 1,
                rs.as_mut_ptr() as u64,
                0,
                0,
                zero.as_ptr() as u64
            ]
        )
    );
    let mut ws = set(w);
    println!(
        "select for writing: {} (bit kept: {})",
        sys(
            SELECT,
            &[
                w as u64 + 1,
                0,
                ws.as_mut_ptr() as u64,
                0,
                zero.as_ptr() as u64
            ]
        ),
        ws == set(w)
    );
    sys(WRITE, &[w as u64, b"x".as_ptr() as u64, 1]);
    let mut rs = set(r);
    println!(
        "select after a write: {}",
        sys(
            SELECT,
            &[
                r as u64 + 1,
                rs.as_mut_ptr() as u64,
                0,
                0,
                zero.as_ptr() as u64
            ]
        )
    );
    let mut pfd = [r as u32 as u64 | (1 << 32)];
    println!(
        "poll: {} revents {:#x}",
        sys(POLL, &[pfd.as_mut_ptr() as u64, 1, 0]),
        pfd[0] >> 48
    );
    let ep = sys(EPOLL_CREATE1, &[0o2000000]);
    let ev = |events: u32, data: u64| {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&events.to_le_bytes());
        b[4..].copy_from_slice(&data.to_le_bytes());
        b
    };
    let e = ev(1 | (1 << 31), 42);
    println!(
        "epoll_ctl add (edge): {}",
        sys(EPOLL_CTL, &[ep as u64, 1, r as u64, e.as_ptr() as u64])
    );
    println!(
        "epoll_ctl add again: {}",
        sys(EPOLL_CTL, &[ep as u64, 1, r as u64, e.as_ptr() as u64])
    );
    let file = fs::File::open("b").unwrap();
    println!(
        "epoll_ctl a regular file: {}",
        sys(
            EPOLL_CTL,
            &[ep as u64, 1, file.as_raw_fd() as u64, e.as_ptr() as u64]
        )
    );
    println!(
        "epoll_ctl del unknown: {}",
        sys(EPOLL_CTL, &[ep as u64, 2, w as u64, 0])
    );
    let mut out = [0u8; 12 * 4];
    let wait = |out: &mut [u8; 48]| sys(EPOLL_WAIT, &[ep as u64, out.as_mut_ptr() as u64, 4, 0]);
    let n = wait(&mut out);
    println!(
        "epoll_wait: {n}, events {:#x}, data {}",
        u32::from_le_bytes(out[..4].try_into().unwrap()),
        u64::from_le_bytes(out[4..12].try_into().unwrap())
    );
    println!("epoll_wait again (no new edge): {}", wait(&mut out));
    sys(WRITE, &[w as u64, b"y".as_ptr() as u64, 1]);
    println!("epoll_wait after more data: {}", wait(&mut out));
    let lt = ev(4, 7);
    sys(EPOLL_CTL, &[ep as u64, 1, w as u64, lt.as_ptr() as u64]);
    println!(
        "level-triggered writable, twice: {} {}",
        wait(&mut out),
        wait(&mut out)
    );
    for fd in [r as u64, w as u64, ep as u64] {
        sys(CLOSE, &[fd]);
    }
    drop(file);
    let efd = sys(EVENTFD2, &[3, 0o4000]);
    let mut v = [0u8; 8];
    println!(
        "eventfd read: {} value {}",
        sys(READ, &[efd as u64, v.as_mut_ptr() as u64, 8]),
        u64::from_le_bytes(v)
    );
    println!(
        "eventfd empty: {}",
        sys(READ, &[efd as u64, v.as_mut_ptr() as u64, 8])
    );
    println!(
        "eventfd short read: {}",
        sys(READ, &[efd as u64, v.as_mut_ptr() as u64, 4])
    );
    sys(CLOSE, &[efd as u64]);
    let sem = sys(EVENTFD2, &[0, 0o4000 | 1]);
    let two = 2u64.to_le_bytes();
    sys(WRITE, &[sem as u64, two.as_ptr() as u64, 8]);
    sys(READ, &[sem as u64, v.as_mut_ptr() as u64, 8]);
    println!("semaphore eventfd gives {}", u64::from_le_bytes(v));
    sys(CLOSE, &[sem as u64]);

    // Loopback: a program talks to itself over TCP and UDP on 127.0.0.1.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    let (mut a, peer) = l.accept().unwrap();
    c.write_all(b"ping").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    a.read_to_string(&mut got).unwrap();
    println!(
        "loopback tcp: {got:?} from {}, local port is ephemeral: {}",
        peer.ip(),
        addr.port() > 1024
    );
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(b"datagram", u.local_addr().unwrap()).unwrap();
    let mut b = [0u8; 16];
    let (k, from) = u.recv_from(&mut b).unwrap();
    println!(
        "loopback udp: {:?} from self: {}",
        std::str::from_utf8(&b[..k]).unwrap(),
        from == u.local_addr().unwrap()
    );
    // Timeouts and non-blocking mode on a quiet connection.
    let c2 = std::net::TcpStream::connect(addr);
    let mut quiet = l.accept().unwrap().0;
    quiet
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let mut one = [0u8; 1];
    println!("read with SO_RCVTIMEO: {}", kind(quiet.read(&mut one)));
    quiet.set_nonblocking(true).unwrap();
    println!("non-blocking read: {}", kind(quiet.read(&mut one)));
    l.set_nonblocking(true).unwrap();
    println!("non-blocking accept: {}", kind(l.accept()));
    drop((c2, quiet));
    println!(
        "connect to a closed port: {}",
        kind(std::net::TcpStream::connect((
            "127.0.0.1",
            addr.port().wrapping_add(1).max(1025)
        )))
    );
    drop((l, c, a, u));

    // Directory listing order is not specified; sorted it must match.
    let mut names: Vec<String> = fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.len() < 100)
        .collect();
    names.sort();
    println!("listing: {names:?}");

    std::env::set_current_dir("/").unwrap();
    fs::remove_dir_all(&base).unwrap();
    println!("cleaned up: {}", fs::metadata(&base).is_err());
    println!("fsio ok");
}
