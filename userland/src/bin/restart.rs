//! A program that dies and is restarted by the kernel (`restart PORT`).
//!
//! Every run prints what the kernel told it (`LLMOS_RESTARTS`,
//! `LLMOS_LAST_EXIT`) and the free memory, binds a TCP listener on
//! 0.0.0.0:PORT, and starts threads that are busy when it dies: one
//! blocked on a futex (a mutex the main thread holds), one in a read on a
//! pipe, one in accept on the listener, one sleeping, one spinning. Then,
//! by run: run 1 touches 64 MiB, writes `/data/run-1` and `/tmp/scratch-1`
//! and aborts; run 2 does the same and writes to a read-only page
//! (SIGSEGV); run 3 checks that the port could be bound again, that the
//! listener accepts a connection, that `/tmp` is empty and the `/data`
//! files are there, and exits 0. With a second argument `always`, every
//! run aborts, from a thread other than the main one.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llmos_userland::{meminfo_kb, syscall6};

const SYS_READ: u64 = 0;
const SYS_MMAP: u64 = 9;
const SYS_PIPE2: u64 = 293;
const PROT_READ: u64 = 1;
const MAP_PRIVATE_ANON: u64 = 0x22;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| String::from("unset"))
}

/// Starts the threads that must be stopped wherever they are when the
/// process dies (the futex waiter waits for `lock`, which the caller
/// holds).
fn busy_threads(listener: Option<TcpListener>, lock: &Arc<Mutex<()>>) {
    let l = lock.clone();
    std::thread::spawn(move || {
        let _g = l.lock();
        println!("the futex waiter got the lock?!");
    });
    let mut fds = [0i32; 2];
    let r = syscall6(SYS_PIPE2, [fds.as_mut_ptr() as u64, 0, 0, 0, 0, 0]);
    assert_eq!(r, 0, "pipe2");
    let reader = fds[0] as u64;
    std::thread::spawn(move || {
        let mut b = [0u8; 8];
        let n = syscall6(SYS_READ, [reader, b.as_mut_ptr() as u64, 8, 0, 0, 0]);
        println!("the pipe reader returned {n}?!");
    });
    if let Some(l) = listener {
        std::thread::spawn(move || {
            let r = l.accept();
            println!("the acceptor returned {:?}?!", r.map(|(_, a)| a));
        });
    }
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(3600));
        println!("the sleeper woke up?!");
    });
    std::thread::spawn(|| {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    });
}

/// Touches `mib` MiB so a run that dies leaves memory behind unless the
/// kernel frees it.
fn touch(mib: usize) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    v
}

fn leave_traces(run: u32) {
    let _ = std::fs::create_dir_all("/data");
    std::fs::write(format!("/data/run-{run}"), format!("run {run}\n")).expect("/data");
    std::fs::write(format!("/tmp/scratch-{run}"), [0u8; 8192]).expect("/tmp");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: restart PORT [always]");
    let always = args.next().as_deref() == Some("always");
    let run = std::env::var("LLMOS_RESTARTS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(1, |k| k + 1);
    println!(
        "run {run}: LLMOS_RESTARTS={}, LLMOS_LAST_EXIT={}",
        env("LLMOS_RESTARTS"),
        env("LLMOS_LAST_EXIT")
    );
    println!(
        "run {run}: MemFree {} kB at start",
        meminfo_kb("MemFree").unwrap_or(0)
    );
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => {
            println!("run {run}: bound 0.0.0.0:{port}");
            Some(l)
        }
        Err(e) => {
            println!("run {run}: bind 0.0.0.0:{port} failed: {e}");
            None
        }
    };
    if run >= 3 && !always {
        let Some(l) = listener else {
            std::process::exit(1);
        };
        check_and_exit(run, port, l);
    }
    let acceptor = listener.as_ref().and_then(|l| l.try_clone().ok());
    let lock = Arc::new(Mutex::new(()));
    let _held = lock.lock().unwrap();
    busy_threads(acceptor, &lock);
    let _memory = touch(64);
    leave_traces(run);
    // Let the threads reach their waits (and the spinner the other CPU).
    std::thread::sleep(Duration::from_millis(300));
    println!("run {run}: 5 threads busy");
    if run == 2 && !always {
        println!("run {run}: writing to a read-only page");
        let page = syscall6(
            SYS_MMAP,
            [0, 4096, PROT_READ, MAP_PRIVATE_ANON, u64::MAX, 0],
        );
        assert!(page > 0, "mmap");
        // SAFETY: the page is mapped (read-only): the write is a valid
        // access as far as the compiler knows; the kernel refuses it.
        unsafe { std::ptr::write_volatile(page as *mut u8, 1) };
        println!("run {run}: the write did not fault?!");
        std::process::exit(1);
    }
    if always {
        // abort() in a thread other than the main one: glibc sends
        // SIGABRT to that thread (tgkill), as llama.cpp's asserts in
        // worker threads do.
        println!("run {run}: aborting in a thread");
        let _ = std::thread::spawn(|| std::process::abort()).join();
        println!("run {run}: the aborting thread returned?!");
        std::process::exit(1);
    }
    println!("run {run}: aborting");
    std::process::abort();
}

/// The third run: what the dead runs left behind, and what they did not.
fn check_and_exit(run: u32, port: u16, listener: TcpListener) -> ! {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("accept");
        let mut b = [0u8; 5];
        c.read_exact(&mut b).expect("read");
        c.write_all(&b).expect("write");
        s.store(true, Ordering::Relaxed);
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(b"hello").expect("send");
    let mut b = [0u8; 5];
    c.read_exact(&mut b).expect("receive");
    let _ = server.join();
    println!(
        "run {run}: the listener accepted and echoed: {}",
        &b == b"hello" && stop.load(Ordering::Relaxed)
    );
    println!("run {run}: /tmp entries: {:?}", entries("/tmp"));
    println!("run {run}: /data entries: {:?}", entries("/data"));
    println!("run {run}: done");
    std::process::exit(0)
}

/// The names in directory `dir`, sorted.
fn entries(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
