//! A tokio HTTP server for the bad-input network test: `net-stress PORT`.
//!
//! On PORT + 1 it greets every connection with `ready\n` and then waits
//! for it to close (whatever it sends is ignored): the host opens idle
//! connections there and knows from the greeting that each one really
//! reached the server. On PORT it speaks HTTP:
//!
//! - `GET /stats`: the kernel heap in use (`Slab` from /proc/meminfo),
//!   /proc/net/sockstat, and this server's counters;
//! - `GET /big/N`: N MiB of bytes (the host resets it midway);
//! - `POST /upload` with a Content-Length: reads the body (the host resets
//!   it midway);
//! - `GET /quit`: answers, then the server exits;
//! - anything else: `hello`.
//!
//! Connections that never send anything just wait; they count as open.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Counters {
    accepted: AtomicUsize,
    open: AtomicUsize,
    idle_open: AtomicUsize,
    requests: AtomicUsize,
    downloads_cut: AtomicUsize,
    uploads_cut: AtomicUsize,
}

fn slab_kb() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("Slab:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into())
}

async fn respond(s: &mut TcpStream, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    s.shutdown().await
}

/// Serves one connection; returns true if the server should exit.
async fn serve(mut s: TcpStream, c: &Counters) -> bool {
    let mut req = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    };
    c.requests.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&req[..head_end]).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let path = words.next().unwrap_or("/").to_owned();
    if method == "POST" && path == "/upload" {
        let want: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut got = req.len() - head_end;
        while got < want {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    c.uploads_cut.fetch_add(1, Ordering::SeqCst);
                    return false;
                }
                Ok(n) => got += n,
            }
        }
        let _ = respond(&mut s, &format!("got {got}\n")).await;
        return false;
    }
    if let Some(mib) = path.strip_prefix("/big/") {
        let total = mib.parse::<usize>().unwrap_or(1) << 20;
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\nconnection: close\r\n\r\n");
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        let mut ok = s.write_all(head.as_bytes()).await.is_ok();
        while ok && sent < total {
            ok = s.write_all(&chunk).await.is_ok();
            sent += chunk.len();
        }
        if !ok {
            c.downloads_cut.fetch_add(1, Ordering::SeqCst);
        }
        return false;
    }
    let body = match path.as_str() {
        "/stats" => {
            let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
            format!(
                "slab_kb {}\naccepted {}\nopen {}\nidle_open {}\nrequests {}\ndownloads_cut {}\nuploads_cut {}\n{sockstat}",
                slab_kb(),
                c.accepted.load(Ordering::SeqCst),
                c.open.load(Ordering::SeqCst),
                c.idle_open.load(Ordering::SeqCst),
                c.requests.load(Ordering::SeqCst),
                c.downloads_cut.load(Ordering::SeqCst),
                c.uploads_cut.load(Ordering::SeqCst),
            )
        }
        "/quit" => "bye\n".to_owned(),
        _ => "hello\n".to_owned(),
    };
    let _ = respond(&mut s, &body).await;
    path == "/quit"
}

/// The stream from an accept, counted; an error (out of sockets) is
/// reported and the server keeps serving.
fn accepted(
    r: std::io::Result<(TcpStream, std::net::SocketAddr)>,
    c: &Counters,
) -> Option<TcpStream> {
    match r {
        Ok((s, _)) => {
            c.accepted.fetch_add(1, Ordering::SeqCst);
            Some(s)
        }
        Err(e) => {
            println!("accept: {e}");
            None
        }
    }
}

/// An idle connection: greet, then wait for the end.
async fn idle(mut s: TcpStream) {
    if s.write_all(b"ready\n").await.is_err() {
        return;
    }
    let mut buf = [0u8; 512];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: net-stress PORT");
    let rt = llmos_userland::tokio_runtime();
    rt.block_on(async move {
        let l = TcpListener::bind(("0.0.0.0", port)).await.expect("bind");
        let idle_l = TcpListener::bind(("0.0.0.0", port + 1)).await.expect("bind");
        println!("kernel heap before: {} kB (Slab)", slab_kb());
        println!("listening on {}", l.local_addr().unwrap());
        let c = Arc::new(Counters::default());
        let quit = Arc::new(tokio::sync::Notify::new());
        loop {
            tokio::select! {
                r = l.accept() => {
                    let Some(s) = accepted(r, &c) else { continue };
                    c.open.fetch_add(1, Ordering::SeqCst);
                    let c = c.clone();
                    let quit = quit.clone();
                    tokio::spawn(async move {
                        let stop = serve(s, &c).await;
                        c.open.fetch_sub(1, Ordering::SeqCst);
                        if stop {
                            quit.notify_one();
                        }
                    });
                }
                r = idle_l.accept() => {
                    let Some(s) = accepted(r, &c) else { continue };
                    c.idle_open.fetch_add(1, Ordering::SeqCst);
                    let c = c.clone();
                    tokio::spawn(async move {
                        idle(s).await;
                        c.idle_open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                _ = quit.notified() => break,
            }
        }
        println!(
            "kernel heap after: {} kB (Slab); {} connections, {} requests, {} downloads and {} uploads cut short",
            slab_kb(),
            c.accepted.load(Ordering::SeqCst),
            c.requests.load(Ordering::SeqCst),
            c.downloads_cut.load(Ordering::SeqCst),
            c.uploads_cut.load(Ordering::SeqCst),
        );
    });
}
