//! A minimal HTTP/1.1 client: `http-get HOST:PORT PATH` fetches the path
//! over std's TcpStream, reads the body (Content-Length bytes, or until the
//! server closes), and prints its size and SHA-256.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use sha2::{Digest, Sha256};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: http-get HOST:PORT PATH");
        std::process::exit(2);
    };
    let mut s = TcpStream::connect(&addr).unwrap_or_else(|e| {
        eprintln!("connect {addr}: {e}");
        std::process::exit(1)
    });
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::with_capacity(256 * 1024, s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut length = None;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    // With a Content-Length, read exactly that much (the connection may
    // stay open); otherwise until the server closes it.
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).unwrap();
        }
        None => {
            r.read_to_end(&mut body).unwrap();
        }
    }
    let digest = Sha256::digest(&body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!(
        "{}: {} bytes (content-length {:?}), sha256 {hex}",
        status.trim_end(),
        body.len(),
        length
    );
}
