//! A tokio (multi-threaded runtime, epoll) HTTP/1.1 server:
//! `tokio-http PORT REQUESTS` answers `GET /<anything>` with
//! `hello <n> <path>` and exits after REQUESTS responses.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: tokio-http PORT REQUESTS");
    let total: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: tokio-http PORT REQUESTS");
    let rt = llmos_userland::tokio_runtime();
    rt.block_on(async move {
        let l = TcpListener::bind(("0.0.0.0", port)).await.expect("bind");
        println!("listening on {}", l.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(tokio::sync::Notify::new());
        loop {
            tokio::select! {
                r = l.accept() => {
                    let (mut s, _) = r.expect("accept");
                    let served = served.clone();
                    let done = done.clone();
                    tokio::spawn(async move {
                        let mut req = Vec::new();
                        let mut buf = [0u8; 1024];
                        // Read the request head.
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => req.extend_from_slice(&buf[..n]),
                            }
                        }
                        let line = String::from_utf8_lossy(&req);
                        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                        let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                        let body = format!("hello {n} {path}\n");
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = s.write_all(resp.as_bytes()).await;
                        let _ = s.shutdown().await;
                        if n == total {
                            done.notify_one();
                        }
                    });
                }
                _ = done.notified() => break,
            }
        }
        println!("served {} requests", served.load(Ordering::SeqCst));
    });
}
