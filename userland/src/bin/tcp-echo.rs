//! A TCP echo server: `tcp-echo PORT CONNECTIONS` listens on 0.0.0.0:PORT,
//! echoes every connection (one thread each) until the peer shuts down its
//! sending half, and exits after CONNECTIONS connections, reporting the
//! bytes it echoed.
use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: tcp-echo PORT CONNECTIONS");
    let conns: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: tcp-echo PORT CONNECTIONS");
    let l = TcpListener::bind(("0.0.0.0", port)).expect("bind");
    if let Ok(r) = std::fs::read_to_string("/etc/resolv.conf") {
        print!("resolv.conf: {r}");
    }
    println!("listening on {}", l.local_addr().unwrap());
    let mut workers = Vec::new();
    for _ in 0..conns {
        let (mut s, _peer) = l.accept().expect("accept");
        s.set_nodelay(true).unwrap();
        workers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            loop {
                let n = s.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).expect("write");
                total += n as u64;
            }
            s.shutdown(std::net::Shutdown::Write).unwrap();
            total
        }));
    }
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    println!("served {conns} connections, {total} bytes");
}
