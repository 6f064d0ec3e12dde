//! Requests as a hostile web page makes a browser send them: the shapes
//! that need no CORS preflight, foreign origins and rebinding `Host`
//! names, against every route of the API (hosted mode and llmos).

use crate::hosted::{raw, routes};

/// A request that runs code and changes app data when it gets through.
pub const EXEC: &str = r#"{"language":"python","code":"print(6*7)"}"#;

/// A plausible body for each route.
fn body_for(path: &str) -> &'static str {
    match path {
        "/v1/exec" => EXEC,
        "/v1/chat/completions" => r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}"#,
        "/v1/completions" => r#"{"prompt":"hi","max_tokens":1}"#,
        "/tokenize" => r#"{"content":"hi"}"#,
        "/detokenize" => r#"{"tokens":[1]}"#,
        _ => r#"{"args":["upper"],"stdin":"x"}"#,
    }
}

/// A whole HTTP/1.1 request with `Connection: close` (and a
/// `Content-Length` for POST).
pub fn request(method: &str, path: &str, headers: &[String], body: &str) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    if method == "POST" {
        r.push_str(body);
    }
    r.into_bytes()
}

/// The content types a page may send cross-origin without a preflight,
/// and none at all.
const SIMPLE: &[Option<&str>] = &[
    Some("text/plain"),
    Some("text/plain;charset=UTF-8"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=----x"),
    None,
];

/// Checks every route of the server at `addr` (reached as `host`) against
/// the requests a browser may send without a preflight and against a
/// rebinding `Host`. `auth` is an Authorization header line, if keys are
/// in use. Returns how many requests were sent.
pub fn shapes_are_refused(addr: &str, host: &str, auth: Option<&str>) -> usize {
    let mut sent = 0;
    let with = |extra: &[String]| {
        let mut h = extra.to_vec();
        if let Some(a) = auth {
            h.push(a.to_owned());
        }
        h
    };
    for (method, pattern, path) in routes() {
        let body = body_for(&path);
        let json = "Content-Type: application/json".to_owned();
        let host_ok = format!("Host: {host}");
        if method == "POST" {
            for ct in SIMPLE {
                let mut h = vec![host_ok.clone()];
                if let Some(ct) = ct {
                    h.push(format!("Content-Type: {ct}"));
                }
                let r = raw(addr, &request(&method, &path, &with(&h), body));
                sent += 1;
                assert_eq!(r.status, 415, "{method} {pattern} with {ct:?}: {}", r.body);
                assert!(r.body.contains("unsupported_media_type"), "{}", r.body);
                assert!(r.body.contains("application/json"), "{}", r.body);
            }
        }
        // A page elsewhere: its Origin, or only Sec-Fetch-Site.
        for h in [
            vec![
                host_ok.clone(),
                json.clone(),
                "Origin: http://evil.example".into(),
            ],
            vec![host_ok.clone(), json.clone(), "Origin: null".into()],
            vec![
                host_ok.clone(),
                "Content-Type: text/plain".into(),
                "Origin: http://evil.example".into(),
            ],
            vec![
                host_ok.clone(),
                json.clone(),
                "Sec-Fetch-Site: cross-site".into(),
            ],
        ] {
            let r = raw(addr, &request(&method, &path, &with(&h), body));
            sent += 1;
            assert_eq!(r.status, 403, "{method} {pattern} with {h:?}: {}", r.body);
            assert!(r.body.contains("origin_not_allowed"), "{}", r.body);
        }
        // DNS rebinding: a name the attacker points at this machine.
        let port = host.rsplit_once(':').map_or("80", |(_, p)| p);
        for bad in [
            format!("evil.example:{port}"),
            format!("localhost.evil.example:{port}"),
        ] {
            let h = vec![format!("Host: {bad}"), json.clone()];
            let r = raw(addr, &request(&method, &path, &with(&h), body));
            sent += 1;
            assert_eq!(r.status, 421, "{method} {pattern} as {bad}: {}", r.body);
            assert!(r.body.contains("host_not_allowed"), "{}", r.body);
            assert!(r.body.contains("--allow-host"), "{}", r.body);
        }
    }
    sent
}
