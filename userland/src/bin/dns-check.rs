//! DNS from a program: `dns-check NAME...`.
//!
//! Serves the zone `llmos.test` on UDP port 53 (a thread), resolves each
//! NAME with the standard library (glibc's getaddrinfo: /etc/resolv.conf,
//! then UDP/53 queries over a connected socket) and prints the answers.
//! Then it keeps answering queries, also from outside the guest (the host,
//! through a UDP port forward), until one asks for `quit.llmos.test`.
use std::net::{ToSocketAddrs, UdpSocket};

const ZONE: &[(&str, [u8; 4])] = &[
    ("host.llmos.test", [10, 0, 2, 100]),
    ("api.llmos.test", [10, 0, 2, 15]),
    ("quit.llmos.test", [127, 0, 0, 1]),
];

/// The question's name, type and length (header included).
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    // A query (QR clear) with one question.
    if q.len() < 12 || q[2] & 0x80 != 0 || q[4..6] != [0, 1] {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let l = usize::from(*q.get(i)?);
        i += 1;
        if l == 0 {
            break;
        }
        if l > 63 {
            return None;
        }
        labels.push(
            std::str::from_utf8(q.get(i..i + l)?)
                .ok()?
                .to_ascii_lowercase(),
        );
        i += l;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    q.get(i + 3)?;
    Some((labels.join("."), qtype, i + 4))
}

/// The answer to query `q`: an A record for names in the zone, no records
/// for other types of those names, NXDOMAIN for other names.
fn answer(q: &[u8]) -> Option<(Vec<u8>, String)> {
    let (name, qtype, end) = question(q)?;
    let hit = ZONE.iter().find(|(n, _)| *n == name);
    let mut r = q[..end].to_vec();
    r[2] = 0x84 | (q[2] & 0x01); // QR, AA; RD copied
    r[3] = 0x80 | if hit.is_none() { 3 } else { 0 }; // RA; NXDOMAIN
    r[6..12].fill(0);
    if let (Some((_, ip)), 1) = (hit, qtype) {
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(ip);
    }
    Some((r, name))
}

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(r) = std::fs::read_to_string("/etc/resolv.conf") {
        print!("resolv.conf: {r}");
    }
    let sock = UdpSocket::bind("0.0.0.0:53").expect("bind UDP port 53");
    let server = std::thread::spawn(move || {
        let (mut local, mut outside) = (0, 0);
        let mut buf = [0u8; 512];
        loop {
            let (n, from) = sock.recv_from(&mut buf).expect("receive a query");
            let Some((reply, name)) = answer(&buf[..n]) else {
                println!("ignored a malformed query from {from}");
                continue;
            };
            sock.send_to(&reply, from).expect("send the answer");
            if from.ip().is_loopback() {
                local += 1;
            } else {
                outside += 1;
            }
            if name == "quit.llmos.test" {
                return (local, outside);
            }
        }
    });
    for name in &names {
        match (name.as_str(), 80).to_socket_addrs() {
            Ok(addrs) => {
                let ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                println!("resolve {name}: {}", ips.join(" "));
            }
            Err(e) => println!("resolve {name}: error: {e}"),
        }
    }
    println!("resolver done; answering queries until quit.llmos.test");
    let (local, outside) = server.join().unwrap();
    println!("answered {local} local and {outside} outside queries");
}
