//! Networking: the virtio-net driver comes up on QEMU's user network
//! (`restrict=on`) and exchanges frames with it.

use std::time::Duration;

use llmos_qemu::{Config, Outcome};
use llmos_tests::{boot_with, image};

const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn virtio_net_comes_up_exchanges_arp_and_gets_a_dhcp_lease() {
    let mut cfg = Config::new(image("test/net-link-bios.img"));
    cfg.network = Some(Vec::new());
    cfg.memory_mib = 256;
    let b = boot_with("net-link", &cfg, TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(
        r"\[\d+\.\d{6}\] net: virtio-net at [0-9a-f:.]+: MAC 52:54:00:12:34:56, link up, \d+-entry queues, MSI-X interrupts",
    );
    b.expect_line(r"\[\d+\.\d{6}\] test: [1-9]\d* network interrupt\(s\)");
    b.expect_line(
        r"\[\d+\.\d{6}\] net: link check: 10\.0\.2\.2 is at 52:55:0a:00:02:02 \(ARP reply after \d+ frame\(s\)\); 1 transmission\(s\) reclaimed",
    );
    b.expect_line(r"\[\d+\.\d{6}\] net: DHCP: asking for an address");
    // With `restrict=on` QEMU's DHCP server offers no router and no DNS.
    b.expect_line(r"\[\d+\.\d{6}\] net: DHCP: 10\.0\.2\.15/24, no gateway, no DNS server");
    b.expect_line(r"\[\d+\.\d{6}\] test: configured: 10\.0\.2\.15/24, no gateway, no DNS server");
}

#[test]
fn a_legacy_only_virtio_card_works_too() {
    let mut cfg = Config::new(image("test/net-link-bios.img"));
    cfg.network = Some(Vec::new());
    cfg.legacy_nic = true;
    cfg.memory_mib = 256;
    let b = boot_with("net-link-legacy", &cfg, TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(
        r"\[\d+\.\d{6}\] net: virtio-net \(legacy\) at [0-9a-f:.]+: MAC 52:54:00:12:34:56, link up, \d+-entry queues, MSI-X interrupts",
    );
    b.expect_line(r"\[\d+\.\d{6}\] test: configured: 10\.0\.2\.15/24, no gateway, no DNS server");
    b.expect_line(
        r"\[\d+\.\d{6}\] net: link check: 10\.0\.2\.2 is at 52:55:0a:00:02:02 \(ARP reply after \d+ frame\(s\)\); 1 transmission\(s\) reclaimed",
    );
    b.expect_line(r"\[\d+\.\d{6}\] test: [1-9]\d* network interrupt\(s\)");
}

#[test]
fn without_a_card_only_loopback_works() {
    let mut cfg = Config::new(image("test/net-link-bios.img"));
    cfg.memory_mib = 256;
    let b = boot_with("net-none", &cfg, TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    b.expect_line(r"\[\d+\.\d{6}\] net: no network card; only loopback \(127\.0\.0\.1\) works");
    b.expect_line(r"\[\d+\.\d{6}\] test: no network card");
}

/// A free TCP port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn std_tcp_echo_server_returns_16_mib_over_8_connections() {
    use std::io::{Read, Write};
    let host_port = free_port();
    let mut cfg = Config::new(image("prog/tcp-echo-bios.img"));
    cfg.memory_mib = 512;
    cfg.smp = 2;
    cfg.network = Some(vec![llmos_qemu::PortForward {
        host: host_port,
        guest: 7777,
    }]);
    let log = llmos_tests::log_path("net-tcp-echo");
    let mut m = llmos_qemu::Machine::spawn(&cfg, Some(&log)).expect("start QEMU");
    let ready = regex::Regex::new(r"listening on 0\.0\.0\.0:7777").unwrap();
    if let Err(e) = m.wait_for(&ready, TIMEOUT) {
        m.kill();
        panic!("the echo server did not start: {e}\n{}", m.serial());
    }
    // 8 connections × 2 MiB of pseudo-random bytes, in parallel.
    let clients: Vec<_> = (0..8u64)
        .map(|c| {
            std::thread::spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ c;
                let data: Vec<u8> = (0..2 << 20)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                let mut s =
                    std::net::TcpStream::connect(("127.0.0.1", host_port)).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                let mut w = s.try_clone().unwrap();
                let send = data.clone();
                let writer = std::thread::spawn(move || {
                    w.write_all(&send).expect("send");
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut back = Vec::new();
                s.read_to_end(&mut back).expect("receive");
                writer.join().unwrap();
                (back.len(), back == data)
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let (len, same) = c.join().unwrap();
        assert_eq!(
            len,
            2 << 20,
            "connection {i} got {len} bytes back\n{}",
            m.serial()
        );
        assert!(same, "connection {i} got different bytes back");
    }
    let outcome = m.wait_exit(TIMEOUT).expect("the server exits");
    assert_eq!(outcome, Outcome::Success, "{}", m.serial());
    let serial = m.serial();
    assert!(
        serial.contains("served 8 connections, 16777216 bytes"),
        "{serial}"
    );
    // The image configures the network statically, with a DNS server.
    assert!(
        serial.contains("net: static: 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3"),
        "{serial}"
    );
    assert!(
        serial.contains("resolv.conf: nameserver 10.0.2.3"),
        "{serial}"
    );
}

fn curl(port: u16, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("running curl (is it installed? scripts/debian-packages.txt lists it)");
    assert!(
        out.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tokio_http_server_answers_curl_sequentially_and_concurrently() {
    let host_port = free_port();
    let mut cfg = Config::new(image("prog/tokio-http-bios.img"));
    cfg.memory_mib = 512;
    cfg.smp = 2;
    cfg.network = Some(vec![llmos_qemu::PortForward {
        host: host_port,
        guest: 8080,
    }]);
    let log = llmos_tests::log_path("net-tokio-http");
    let mut m = llmos_qemu::Machine::spawn(&cfg, Some(&log)).expect("start QEMU");
    let ready = regex::Regex::new(r"listening on 0\.0\.0\.0:8080").unwrap();
    if let Err(e) = m.wait_for(&ready, TIMEOUT) {
        m.kill();
        panic!("the server did not start: {e}\n{}", m.serial());
    }
    let answer = regex::Regex::new(r"^hello (\d+) (\S+)\n$").unwrap();
    let mut numbers = Vec::new();
    for i in 0..50 {
        let path = format!("/seq/{i}");
        let body = curl(host_port, &path);
        let c = answer
            .captures(&body)
            .unwrap_or_else(|| panic!("bad answer {body:?}"));
        assert_eq!(&c[2], path);
        numbers.push(c[1].parse::<usize>().unwrap());
    }
    let concurrent: Vec<_> = (0..16)
        .map(|i| std::thread::spawn(move || (i, curl(host_port, &format!("/par/{i}")))))
        .collect();
    for t in concurrent {
        let (i, body) = t.join().unwrap();
        let c = answer
            .captures(&body)
            .unwrap_or_else(|| panic!("bad answer {body:?}"));
        assert_eq!(&c[2], format!("/par/{i}"));
        numbers.push(c[1].parse::<usize>().unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=66).collect::<Vec<_>>(),
        "each request answered once"
    );
    let outcome = m.wait_exit(TIMEOUT).expect("the server exits");
    assert_eq!(outcome, Outcome::Success, "{}", m.serial());
    assert!(m.serial().contains("served 66 requests"), "{}", m.serial());
}

#[test]
fn guest_client_downloads_4_mib_through_guestfwd_with_the_right_sha256() {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};
    // A one-shot HTTP server on the host's 127.0.0.1.
    let data: Vec<u8> = {
        let mut x = 0x1234_5678_9abc_def0u64;
        (0..4 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let expected: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = server.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut s, _) = server.accept().expect("the guest connects");
        let mut req = Vec::new();
        let mut b = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut b).unwrap();
            assert!(n > 0, "request cut short");
            req.extend_from_slice(&b[..n]);
        }
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            data.len()
        )
        .unwrap();
        s.write_all(&data).unwrap();
        String::from_utf8_lossy(&req).into_owned()
    });
    let mut cfg = Config::new(image("prog/http-get-bios.img"));
    cfg.memory_mib = 512;
    cfg.network = Some(Vec::new());
    cfg.guest_forwards.push(llmos_qemu::GuestForward {
        guest_addr: [10, 0, 2, 100],
        guest_port: 80,
        host_port,
    });
    let b = boot_with("net-http-get", &cfg, TIMEOUT);
    b.expect_outcome(&Outcome::Success);
    let req = serve.join().unwrap();
    assert!(req.starts_with("GET /blob HTTP/1.1\r\n"), "{req}");
    b.expect_line(&format!(
        "HTTP/1.1 200 OK: 4194304 bytes \\(content-length Some\\(4194304\\)\\), sha256 {expected}"
    ));
}
