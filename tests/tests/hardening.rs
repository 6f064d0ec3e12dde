//! The API against what a hostile web page, a slow or greedy client and a
//! flood of bad requests can do, in hosted mode (the same checks run in
//! llmos in `runtime.rs`): browser-shaped requests and DNS rebinding on
//! every route, the connection cap and timeouts, per-key request rates,
//! the queue timeout, and bounded logging of refusals.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use llmos_tests::browser::{EXEC, request, shapes_are_refused};
use llmos_tests::hosted::{Server, parse_reply, raw};
use llmos_tests::{apps_dir, default_model, lang_dir};

/// One server at a time: llama.cpp's threads spin while they wait.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn browser_shaped_requests_and_rebinding_hosts_are_refused_on_every_route() {
    let _serial = serial();
    let lang = lang_dir();
    let apps = apps_dir();
    let data = std::env::temp_dir().join(format!("llmos-hardening-{}", std::process::id()));
    let s = Server::start(
        &default_model(),
        &[
            "--lang-dir",
            lang.to_str().unwrap(),
            "--apps-dir",
            apps.to_str().unwrap(),
            "--app-data",
            data.to_str().unwrap(),
            "--allow-origin",
            "http://ui.example:3000",
        ],
    );
    let sent = shapes_are_refused(&s.addr, &s.addr, None);
    assert!(sent > 60, "{sent}");
    // Nothing ran.
    let log = s.stderr();
    for path in [
        "/v1/exec",
        "/v1/apps/text/run",
        "/v1/chat/completions",
        "/tokenize",
    ] {
        assert!(!log.contains(&format!("POST {path} 200")), "{log}");
    }
    // The real client's request is served, with the server's own origin
    // and an allowed one too.
    let r = s.curl("POST", "/v1/exec", &[], Some(EXEC));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"stdout\":\"42\\n\""), "{}", r.body);
    for origin in [
        format!("http://{}", s.addr),
        "http://ui.example:3000".into(),
    ] {
        let r = s.curl(
            "POST",
            "/v1/exec",
            &[&format!("Origin: {origin}")],
            Some(EXEC),
        );
        assert_eq!(r.status, 200, "{origin}: {}", r.body);
        // Still no CORS headers.
        assert!(
            r.headers
                .iter()
                .all(|(n, _)| !n.starts_with("access-control")),
            "{:?}",
            r.headers
        );
    }
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let port = s.addr.rsplit_once(':').unwrap().1;
        let r = raw(
            &s.addr,
            &request("GET", "/v1/models", &[format!("Host: {host}:{port}")], ""),
        );
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn allow_host_adds_a_name_and_bad_options_are_refused() {
    let _serial = serial();
    let s = Server::start(&default_model(), &["--allow-host", "llmos.lan"]);
    let r = raw(
        &s.addr,
        &request("GET", "/v1/models", &["Host: llmos.lan:8080".into()], ""),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    drop(s);
    let out = std::process::Command::new(llmos_tests::runtime_bin())
        .args([
            "serve",
            "--no-console",
            "--listen",
            "127.0.0.1:0",
            "--allow-origin",
            "llmos.lan",
        ])
        .arg("--model")
        .arg(default_model())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--allow-origin \"llmos.lan\": not an origin"),
        "{err}"
    );
}

/// Reads from `c` until the server closes it (or `limit` passes);
/// whatever it sent.
fn until_closed(c: &mut TcpStream, limit: Duration) -> Option<String> {
    c.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&got).into_owned());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn idle_and_slow_connections_cannot_shut_clients_out() {
    let _serial = serial();
    let s = Server::start(
        &default_model(),
        &[
            "--max-connections",
            "4",
            "--header-timeout",
            "1",
            "--idle-timeout",
            "1",
            "--body-timeout",
            "1",
            "--max-requests-per-key",
            "4",
        ],
    );
    let metric = |name: &str| s.metric(name, &[]);
    // Four connections that send nothing fill the cap; a client still gets
    // served at once: the oldest idle one makes room.
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let r = s.curl("GET", "/health", &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(metric("llmos_http_connections_evicted_total") >= 1.0);
    // The rest are closed once the header timeout passes.
    for c in &mut idle {
        assert!(
            until_closed(c, Duration::from_secs(5)).is_some(),
            "an idle connection stayed open"
        );
    }
    // Slowloris: a header a byte at a time is cut off after the timeout.
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    let start = Instant::now();
    let mut cut = false;
    for b in
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        cut || until_closed(&mut slow, Duration::from_secs(3)).is_some(),
        "a slow header was never cut off"
    );
    assert!(start.elapsed() < Duration::from_secs(6));
    assert!(
        s.metric(
            "llmos_http_connections_timed_out_total{reason=\"header\"}",
            &[]
        ) >= 4.0,
        "{}",
        s.curl("GET", "/metrics", &[], None).body
    );
    // An idle keep-alive connection after a response is closed too.
    let mut ka = TcpStream::connect(&s.addr).unwrap();
    ka.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let answer = until_closed(&mut ka, Duration::from_secs(5)).expect("keep-alive never closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        s.metric(
            "llmos_http_connections_timed_out_total{reason=\"idle\"}",
            &[]
        ) >= 1.0
    );
    // Four requests whose bodies never finish are serving: a fifth
    // connection gets 503 at once, never a hang.
    let mut senders: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            c.write_all(b"POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"content\"")
                .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let full = raw(
        &s.addr,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(full.status, 503, "{}", full.body);
    assert!(full.body.contains("too_many_connections"), "{}", full.body);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Their bodies time out with 408 and the connections close.
    for c in &mut senders {
        let got = until_closed(c, Duration::from_secs(5)).expect("a slow body was never cut off");
        let reply = parse_reply(&got).unwrap_or_else(|| panic!("{got}"));
        assert_eq!(reply.status, 408, "{got}");
    }
    let m = s.curl("GET", "/metrics", &[], None).body;
    assert!(metric("llmos_http_connections_refused_total") >= 1.0, "{m}");
    assert_eq!(
        s.metric(
            "llmos_http_connections_timed_out_total{reason=\"body\"}",
            &[]
        ),
        4.0,
        "{m}"
    );
    assert_eq!(metric("llmos_http_connections_max"), 4.0);
    // And the server serves as before.
    let (status, v) = s.post("/tokenize", &[], &serde_json::json!({"content": "hello"}));
    assert_eq!(status, 200, "{v}");
}

#[test]
fn each_key_has_its_own_request_rate_and_refusals_are_logged_at_a_bounded_rate() {
    let _serial = serial();
    let keys = std::env::temp_dir().join(format!("llmos-rate-keys-{}", std::process::id()));
    std::fs::write(&keys, "key-aaaaaaaaaaaaaaaa\nkey-bbbbbbbbbbbbbbbb\n").unwrap();
    let s = Server::start(
        &default_model(),
        &[
            "--api-key-file",
            keys.to_str().unwrap(),
            "--rate-limit",
            "60",
            "--rate-burst",
            "3",
        ],
    );
    let a = "Authorization: Bearer key-aaaaaaaaaaaaaaaa";
    let b = "Authorization: Bearer key-bbbbbbbbbbbbbbbb";
    for _ in 0..3 {
        assert_eq!(s.curl("GET", "/v1/models", &[a], None).status, 200);
    }
    let r = s.curl("GET", "/v1/models", &[a], None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("rate_limit_exceeded"), "{}", r.body);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // The other key is not held back, and /health never is.
    assert_eq!(s.curl("GET", "/v1/models", &[b], None).status, 200);
    assert_eq!(s.curl("GET", "/health", &[], None).status, 200);
    std::thread::sleep(Duration::from_millis(1100 * wait));
    assert_eq!(s.curl("GET", "/v1/models", &[a], None).status, 200);
    assert!(s.metric("llmos_requests_rate_limited_total", &[b]) >= 1.0);
    // Fifty requests with a wrong key: all refused, at most ten logged.
    for _ in 0..50 {
        let r = s.curl(
            "GET",
            "/v1/models",
            &["Authorization: Bearer wrong-key-000000000"],
            None,
        );
        assert_eq!(r.status, 401);
    }
    std::thread::sleep(Duration::from_millis(200));
    let logged = s.stderr().matches("/v1/models 401").count();
    assert!(
        (1..=10).contains(&logged),
        "{logged} lines:\n{}",
        s.stderr()
    );
    let _ = std::fs::remove_file(&keys);
}

#[test]
fn a_request_waits_for_a_slot_only_until_the_queue_timeout() {
    let _serial = serial();
    let s = Server::start(
        &default_model(),
        &["--slots", "1", "--queue", "4", "--queue-timeout", "1"],
    );
    // Keep the one slot busy with a long streamed generation.
    let body = r#"{"prompt":"Once upon a time","max_tokens":1500,"ignore_eos":true,"stream":true,"temperature":0}"#;
    let mut long = TcpStream::connect(&s.addr).unwrap();
    write!(
        long,
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut first = [0u8; 64];
    long.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert!(long.read(&mut first).unwrap() > 0);
    let t = Instant::now();
    let r = s.curl(
        "POST",
        "/v1/completions",
        &[],
        Some(r#"{"prompt":"Hi","max_tokens":2}"#),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("queue_timeout"), "{}", r.body);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(s.metric("llmos_requests_queue_timeouts_total", &[]), 1.0);
    drop(long);
}

/// A chat completion whose reply must match `schema`.
fn with_schema(schema: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "messages": [{"role": "user", "content": "Give me a number."}],
        "max_tokens": 8,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    })
}

#[test]
fn schemas_that_admit_nothing_or_blow_up_are_refused_and_the_server_lives() {
    use serde_json::json;
    let _serial = serial();
    // Limited to 6 GiB: before the check, the first schema made llama.cpp
    // allocate until the host's OOM killer ended the process (24 GB).
    let s = Server::start_full(&default_model(), &[], Some(6 << 20), &[]);
    for (schema, says) in [
        (
            json!({"type": "string", "minLength": 2, "maxLength": 1}),
            "minLength 2 is above maxLength 1",
        ),
        (json!({"type": "string", "pattern": "^a{3,1}$"}), "{3,1}"),
        // Admits no JSON text: llama.cpp's sampler aborted the process.
        (
            json!({"type": "integer", "minimum": 5, "maximum": 3}),
            "no number",
        ),
        (
            json!({"type": "object", "properties": {"n": {"enum": []}}, "required": ["n"]}),
            "enum is empty",
        ),
        (
            json!({"allOf": [{"type": "string"}, {"type": "boolean"}]}),
            "every type",
        ),
        (
            json!({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}),
            "go round",
        ),
        (json!({"type": "string", "pattern": "^[z-a]$"}), "range z-a"),
    ] {
        let (status, v) = s.post("/v1/chat/completions", &[], &with_schema(&schema));
        assert_eq!(status, 400, "{schema}: {v}");
        assert_eq!(v["error"]["param"], "response_format", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{schema}: {msg}");
    }
    // Still serving, schemas and all.
    let ok = json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["n"]});
    let (status, v) = s.post("/v1/chat/completions", &[], &with_schema(&ok));
    assert_eq!(status, 200, "{v}");
    assert_eq!(s.curl("GET", "/health", &[], None).status, 200);
}

#[test]
fn a_grammar_that_allows_nothing_ends_the_generation_not_the_process() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("llmos-grammar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |grammar: &str| {
        let f = dir.join("g.gbnf");
        std::fs::write(&f, grammar).unwrap();
        std::process::Command::new(llmos_tests::runtime_bin())
            .args(["generate", "--max-tokens", "4", "--grammar-file"])
            .arg(&f)
            .arg("--model")
            .arg(llmos_tests::tiny_model())
            .arg("hello")
            .output()
            .unwrap()
    };
    // An empty character range: no first character can be chosen. llama.cpp
    // alone would accept a token its grammar forbids and abort.
    let out = run("root ::= [b-a]\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("allows no token here"), "{err}");
    // An inverted repetition is refused before llama.cpp parses it.
    let out = run("root ::= [a-c]{2,1}\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("{2,1}"), "{err}");
    // A grammar that allows something is followed.
    let out = run("root ::= \"yes\" | \"no\"\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim() == "yes" || text.trim() == "no", "{text:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn health_and_metrics_report_the_kernels_restarts() {
    let _serial = serial();
    let s = Server::start(&llmos_tests::tiny_model(), &[]);
    let (_, v) = s.get_json("/health", &[]);
    assert_eq!(v["restarts"], 0, "{v}");
    assert!(v["last_exit"].is_null(), "{v}");
    drop(s);
    // What llmos's kernel passes to a runtime it restarted.
    let s = Server::start_full(
        &llmos_tests::tiny_model(),
        &[],
        None,
        &[
            ("LLMOS_RESTARTS", "2"),
            ("LLMOS_LAST_EXIT", "killed by signal 6 (SIGABRT)"),
        ],
    );
    let (status, v) = s.get_json("/health", &[]);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["restarts"], 2, "{v}");
    assert_eq!(v["last_exit"], "killed by signal 6 (SIGABRT)", "{v}");
    assert_eq!(s.metric("llmos_runtime_restarts_total", &[]), 2.0);
    assert!(
        s.banner
            .contains("restarted: 2 time(s); the last run ended: killed by signal 6 (SIGABRT)"),
        "{}",
        s.banner
    );
}

/// A connection that asks for `request` and then reads nothing, with a
/// small receive buffer.
fn stalled(addr: &str, request: &[u8]) -> socket2::Socket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    let a: std::net::SocketAddr = addr.parse().unwrap();
    s.connect(&a.into()).unwrap();
    let mut t: TcpStream = s.try_clone().unwrap().into();
    t.write_all(request).unwrap();
    s
}

#[test]
fn clients_that_read_nothing_are_cut_off_and_their_replies_do_not_pile_up() {
    let _serial = serial();
    let s = Server::start(
        &llmos_tests::tiny_model(),
        &[
            "--body-limit",
            "8388608",
            "--write-timeout",
            "2",
            "--idle-timeout",
            "1",
            "--max-pending-mib",
            "8",
            "--rate-limit",
            "0",
        ],
    );
    // About 14 MB of token ids per reply, far more than socket buffers.
    let content = "a b ".repeat(1 << 20);
    let body = serde_json::json!({ "content": content }).to_string();
    let req = format!(
        "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let held: Vec<_> = (0..3).map(|_| stalled(&s.addr, req.as_bytes())).collect();
    std::thread::sleep(Duration::from_millis(1500));
    // Three unread replies are more than the 8 MiB allowed: the stalled
    // ones holding most are closed at once, the rest after the write
    // timeout, and nothing stays pinned.
    let t = Instant::now();
    while s.metric(
        "llmos_http_connections_timed_out_total{reason=\"write\"}",
        &[],
    ) + s.metric("llmos_http_connections_shed_total", &[])
        < 3.0
    {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{}",
            s.curl("GET", "/metrics", &[], None).body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s.metric("llmos_http_connections_shed_total", &[]) >= 1.0);
    assert!(s.metric("llmos_http_pending_reply_bytes", &[]) < (8 << 20) as f64);
    drop(held);
    let (status, v) = s.post("/tokenize", &[], &serde_json::json!({"content": "hi"}));
    assert_eq!(status, 200, "{v}");
    // A slow reader that keeps reading gets the whole reply, however long
    // it takes past the idle timeout.
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    slow.write_all(req.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    loop {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        }
        if got.ends_with(b"]}") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        start.elapsed() > Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let text = String::from_utf8_lossy(&got);
    let reply = parse_reply(&text).unwrap();
    assert_eq!(reply.status, 200);
    let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert!(v["tokens"].as_array().unwrap().len() > 1 << 20);
}

#[test]
fn one_key_cannot_take_every_connection_and_cheap_connections_go_first() {
    let _serial = serial();
    let s = Server::start(
        &llmos_tests::tiny_model(),
        &[
            "--max-connections",
            "6",
            "--max-requests-per-key",
            "2",
            "--body-timeout",
            "5",
        ],
    );
    // Two requests of the (keyless) key whose bodies trickle in.
    let slow_body = b"POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"con";
    let mut pinned: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            c.write_all(slow_body).unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = s.curl("GET", "/v1/models", &[], None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.body.contains("too_many_requests_in_service"),
        "{}",
        r.body
    );
    pinned.clear();
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.metric("llmos_requests_key_busy_total", &[]) >= 1.0);
    // A client halfway through its headers outlasts a flood of
    // connections that send nothing.
    let mut half = TcpStream::connect(&s.addr).unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let flood: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    half.write_all(b"yes\r\nConnection: close\r\n\r\n").unwrap();
    half.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = String::new();
    let _ = half.read_to_string(&mut got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
    assert!(s.metric("llmos_http_connections_evicted_total", &[]) >= 14.0);
    drop(flood);
}

#[test]
fn tokenize_with_pieces_is_bounded() {
    let _serial = serial();
    let s = Server::start(&llmos_tests::tiny_model(), &[]);
    let big = serde_json::json!({"content": "a b ".repeat(40_000), "with_pieces": true});
    let (status, v) = s.post("/tokenize", &[], &big);
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 65536 tokens"),
        "{v}"
    );
    let (status, v) = s.post(
        "/tokenize",
        &[],
        &serde_json::json!({"content": "hi there", "with_pieces": true}),
    );
    assert_eq!(status, 200, "{v}");
    assert!(v["tokens"][0]["piece"].is_string(), "{v}");
}
