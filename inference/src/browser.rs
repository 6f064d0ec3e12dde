//! What a web page in the owner's browser can make the API do: nothing,
//! unless the owner allowed that page.
//!
//! A browser sends requests to any address a page names, including
//! `127.0.0.1` and names an attacker points at it (DNS rebinding, the class
//! of Ollama's CVE-2024-28224). Three checks close that, before
//! authentication, on every route ([`Policy::check`]):
//!
//! 1. **Host.** The `Host` header (and the authority of an absolute-form
//!    request target) must name this server: `localhost`, a loopback
//!    address, the listen address, the machine's own address, or a name
//!    given with `--allow-host`. A rebound name (`evil.example` resolving
//!    to 127.0.0.1) is refused with 421, so the page can never read an
//!    answer. The port is not compared: QEMU's port forwarding and proxies
//!    change it.
//! 2. **Origin.** A request that carries an `Origin` other than the
//!    server's own (`http://` + the request's `Host`) or one given with
//!    `--allow-origin` is refused with 403, and so is one that a browser
//!    marks `Sec-Fetch-Site: cross-site` or `same-site` without such an
//!    origin. No CORS headers are ever sent, so a page elsewhere can't read
//!    a response either.
//! 3. **Content type.** A request with a body method (anything but GET,
//!    HEAD and OPTIONS) must say `Content-Type: application/json`; anything
//!    else, or no content type, is 415. Browsers send `text/plain`,
//!    form-encoded and multipart bodies cross-origin without asking (a
//!    "simple request", no preflight); JSON needs a preflight, which fails
//!    without CORS headers.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, Method, Uri, Version, header};

/// Why a request was refused, and the status to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 421: the `Host` names another server.
    Host(String),
    /// 403: a page of another origin sent it.
    Origin(String),
    /// 415: the body is not declared JSON.
    ContentType(String),
}

impl Refusal {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Host(_) => 421,
            Refusal::Origin(_) => 403,
            Refusal::ContentType(_) => 415,
        }
    }

    /// The machine-readable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Host(_) => "host_not_allowed",
            Refusal::Origin(_) => "origin_not_allowed",
            Refusal::ContentType(_) => "unsupported_media_type",
        }
    }

    /// What went wrong, for people.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Host(m) | Refusal::Origin(m) | Refusal::ContentType(m) => m,
        }
    }
}

/// The names and origins the server answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Host names (lower case, without a trailing dot).
    names: Vec<String>,
    /// Addresses besides every loopback one.
    addrs: Vec<IpAddr>,
    /// Allowed origins besides the server's own, normalised.
    origins: Vec<String>,
}

/// At most this much of a header is quoted back in an error.
const QUOTE: usize = 100;

fn quote(s: &str) -> String {
    s.chars().take(QUOTE).collect()
}

/// A host as written in a `Host` header or an origin: `name`, `name:port`,
/// `[v6]` or `[v6]:port`. Returns the host without the port, lower case,
/// without a trailing dot; `None` if it is not well-formed.
fn host_part(authority: &str) -> Option<String> {
    let a = authority.trim();
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        if !after.is_empty() && !after.starts_with(':') {
            return None;
        }
        (inside, after.strip_prefix(':'))
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err())
    {
        return None;
    }
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !a.starts_with('[') && !name_ok {
        return None;
    }
    let h = host.to_ascii_lowercase();
    Some(h.strip_suffix('.').map(str::to_owned).unwrap_or(h))
}

/// An origin (`scheme://host[:port]`) in a comparable form.
fn normal_origin(o: &str) -> Option<String> {
    let o = o.trim().trim_end_matches('/');
    let (scheme, rest) = o.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https") || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    host_part(rest)?;
    Some(format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

impl Policy {
    /// The policy of a server listening on `listen`, on a machine whose own
    /// addresses are `own`, with the owner's extra host names and origins.
    pub fn new(
        listen: SocketAddr,
        own: &[IpAddr],
        allow_hosts: &[String],
        allow_origins: &[String],
    ) -> Result<Self, String> {
        let mut names = vec!["localhost".to_owned()];
        let mut addrs: Vec<IpAddr> = own.to_vec();
        for h in allow_hosts {
            let n = host_part(h)
                .filter(|n| !n.contains(':') || h.starts_with('['))
                .ok_or_else(|| {
                    format!("--allow-host {h:?}: not a host name or address (for example llmos.lan or 192.168.1.20)")
                })?;
            match n.parse::<IpAddr>() {
                Ok(ip) => addrs.push(ip),
                Err(_) => names.push(n),
            }
        }
        if !listen.ip().is_unspecified() {
            addrs.push(listen.ip());
        }
        let mut origins = Vec::new();
        for o in allow_origins {
            origins.push(normal_origin(o).ok_or_else(|| {
                format!(
                    "--allow-origin {o:?}: not an origin (scheme://host[:port], for example http://llmos.lan:8080)"
                )
            })?);
        }
        names.dedup();
        addrs.dedup();
        Ok(Self {
            names,
            addrs,
            origins,
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            // Only a page served from a loopback address itself can send
            // such a Host, so every loopback address is the machine.
            return ip.is_loopback() || self.addrs.contains(&ip);
        }
        self.names.iter().any(|n| n == host)
    }

    /// Checks one request's method, version, target and headers.
    pub fn check(
        &self,
        method: &Method,
        version: Version,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        let hosts: Vec<&str> = headers
            .get_all(header::HOST)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
            .collect();
        if hosts.len() > 1 {
            return Err(Refusal::Host(
                "the request has more than one Host header".into(),
            ));
        }
        if hosts.is_empty() && version >= Version::HTTP_11 {
            return Err(Refusal::Host(
                "an HTTP/1.1 request needs a Host header".into(),
            ));
        }
        let mut authorities: Vec<&str> = hosts.clone();
        if let Some(a) = uri.authority() {
            authorities.push(a.as_str());
        }
        for a in &authorities {
            let ok = host_part(a).is_some_and(|h| self.host_allowed(&h));
            if !ok {
                let shown = quote(a);
                // The names it does answer to are not listed: a rebinding
                // page can read this answer.
                let hint = host_part(a).map_or_else(
                    || " (it is not a well-formed host)".to_owned(),
                    |h| format!("; to allow it, start the runtime with --allow-host {h}"),
                );
                return Err(Refusal::Host(format!(
                    "this server does not answer to the host {shown:?}{hint} (docs/api.md)"
                )));
            }
        }
        self.check_origin(hosts.first().copied(), headers)?;
        check_content_type(method, headers)
    }

    fn check_origin(&self, host: Option<&str>, headers: &HeaderMap) -> Result<(), Refusal> {
        let origins: Vec<&str> = headers
            .get_all(header::ORIGIN)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
            .collect();
        let own = host.map(|h| {
            let h = h.trim().to_ascii_lowercase();
            [format!("http://{h}"), format!("https://{h}")]
        });
        let allowed = |o: &str| {
            normal_origin(o).is_some_and(|n| {
                self.origins.contains(&n) || own.as_ref().is_some_and(|own| own.contains(&n))
            })
        };
        if origins.len() > 1 {
            return Err(Refusal::Origin(
                "the request has more than one Origin header".into(),
            ));
        }
        if let Some(o) = origins.first() {
            if !allowed(o) {
                return Err(Refusal::Origin(format!(
                    "requests from the web page origin {:?} are not allowed{}",
                    quote(o),
                    if o.trim() == "null" {
                        String::new()
                    } else {
                        "; to allow that page, start the runtime with --allow-origin ORIGIN".into()
                    }
                )));
            }
            return Ok(());
        }
        // A browser that sends no Origin (a GET from an <img> or a link)
        // still says where the request came from.
        // Every value of every such header counts.
        for v in headers.get_all("sec-fetch-site") {
            let text = v.to_str().unwrap_or("cross-site").to_ascii_lowercase();
            if let Some(s) = text
                .split(',')
                .map(str::trim)
                .find(|s| *s == "cross-site" || *s == "same-site")
            {
                return Err(Refusal::Origin(format!(
                    "requests from web pages of other sites are not allowed (Sec-Fetch-Site: {s})"
                )));
            }
        }
        Ok(())
    }
}

/// A POST, and a request of another method that carries a body, needs
/// `Content-Type: application/json`. (Only GET, HEAD and POST can come
/// from another site without a preflight; a bodiless DELETE is fine.)
fn check_content_type(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().map_or(true, |v| v.trim() != "0"));
    let has_body = headers.contains_key(header::TRANSFER_ENCODING) || length == Some(true);
    if *method != Method::POST && !has_body {
        return Ok(());
    }
    let types: Vec<_> = headers.get_all(header::CONTENT_TYPE).iter().collect();
    let media = match types.as_slice() {
        [one] => one.to_str().ok().map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        }),
        _ => None,
    };
    if media.as_deref() == Some("application/json") {
        return Ok(());
    }
    let given = match types.as_slice() {
        [] => "no Content-Type".to_owned(),
        [one] => format!(
            "Content-Type {:?}",
            quote(one.to_str().unwrap_or("\u{fffd}"))
        ),
        _ => "more than one Content-Type header".to_owned(),
    };
    Err(Refusal::ContentType(format!(
        "{method} bodies must be JSON, sent with the header 'Content-Type: application/json' (the request has {given}; with curl add -H 'Content-Type: application/json')"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn policy() -> Policy {
        Policy::new(
            "0.0.0.0:8080".parse().unwrap(),
            &["10.0.2.15".parse().unwrap()],
            &["llmos.lan".into()],
            &["http://ui.example:3000".into()],
        )
        .unwrap()
    }

    fn req(method: Method, pairs: &[(&str, &str)]) -> Result<(), Refusal> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        policy().check(
            &method,
            Version::HTTP_11,
            &Uri::from_static("/v1/models"),
            &h,
        )
    }

    #[test]
    fn hosts_the_server_answers_to() {
        for h in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:1",
            "127.0.0.1:18555",
            "127.8.9.10",
            "[::1]:8080",
            "10.0.2.15:8080",
            "llmos.lan",
            "llmos.lan:80",
        ] {
            assert_eq!(req(Method::GET, &[("host", h)]), Ok(()), "{h}");
        }
        // No Host at all: fine for HTTP/1.0 tools, not in HTTP/1.1.
        let p = policy();
        let none = HeaderMap::new();
        let uri = Uri::from_static("/");
        assert_eq!(p.check(&Method::GET, Version::HTTP_10, &uri, &none), Ok(()));
        assert!(
            p.check(&Method::GET, Version::HTTP_11, &uri, &none)
                .is_err()
        );
    }

    #[test]
    fn rebinding_and_foreign_hosts_are_refused() {
        for h in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "10.0.2.16:8080",
            "[::2]:8080",
            "2130706433",
            "local host",
            "",
            "[::1",
            "localhost:80x",
            "localhost:99999",
            "[::1]evil.example",
            "[::1]:8080evil",
        ] {
            let r = req(Method::GET, &[("host", h)]);
            assert!(matches!(r, Err(Refusal::Host(_))), "{h}: {r:?}");
            assert_eq!(r.unwrap_err().status(), 421);
        }
        let two = req(
            Method::GET,
            &[("host", "localhost"), ("host", "evil.example")],
        );
        assert!(matches!(two, Err(Refusal::Host(_))));
        let e = req(Method::GET, &[("host", "evil.example:8080")]).unwrap_err();
        assert!(e.message().contains("--allow-host evil.example"), "{e:?}");
        // An absolute-form target naming another host.
        let p = policy();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("localhost"));
        let uri: Uri = "http://evil.example/v1/models".parse().unwrap();
        assert!(matches!(
            p.check(&Method::GET, Version::HTTP_11, &uri, &h),
            Err(Refusal::Host(_))
        ));
    }

    #[test]
    fn foreign_origins_are_refused() {
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(
            req(Method::GET, &[host, ("origin", "http://127.0.0.1:8080")]),
            Ok(())
        );
        assert_eq!(
            req(Method::GET, &[host, ("origin", "http://ui.example:3000/")]),
            Ok(())
        );
        for o in [
            "http://evil.example",
            "http://127.0.0.1:3000",
            "http://localhost:8080",
            "null",
            "file://",
            "http://127.0.0.1:8080@evil.example",
        ] {
            let r = req(Method::GET, &[host, ("origin", o)]);
            assert!(matches!(r, Err(Refusal::Origin(_))), "{o}: {r:?}");
        }
        for s in ["cross-site", "same-site", "Cross-Site", "none, cross-site"] {
            let r = req(Method::GET, &[host, ("sec-fetch-site", s)]);
            assert!(matches!(r, Err(Refusal::Origin(_))), "{s}: {r:?}");
        }
        for s in ["same-origin", "none"] {
            assert_eq!(req(Method::GET, &[host, ("sec-fetch-site", s)]), Ok(()));
        }
    }

    #[test]
    fn bodies_must_be_declared_json() {
        let host = ("host", "localhost");
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/json;charset=UTF-8",
        ] {
            assert_eq!(req(Method::POST, &[host, ("content-type", ok)]), Ok(()));
        }
        for bad in [
            "text/plain",
            "text/plain; charset=application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "",
        ] {
            let r = req(Method::POST, &[host, ("content-type", bad)]);
            assert!(matches!(r, Err(Refusal::ContentType(_))), "{bad}: {r:?}");
        }
        let none = req(Method::POST, &[host]).unwrap_err();
        assert_eq!(none.status(), 415);
        assert!(none.message().contains("no Content-Type"), "{none:?}");
        let two = req(
            Method::POST,
            &[
                host,
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ],
        );
        assert!(matches!(two, Err(Refusal::ContentType(_))));
        for m in [Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(req(m.clone(), &[host, ("content-length", "2")]).is_err());
            assert!(req(m.clone(), &[host, ("transfer-encoding", "chunked")]).is_err());
            assert_eq!(req(m.clone(), &[host]), Ok(()));
            assert_eq!(req(m, &[host, ("content-length", "0")]), Ok(()));
        }
        // A POST needs it even without a body: a page can send one.
        assert!(req(Method::POST, &[host, ("content-length", "0")]).is_err());
        assert_eq!(req(Method::GET, &[host]), Ok(()));
    }

    #[test]
    fn bad_options_are_refused_with_the_reason() {
        let l: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let e = Policy::new(l, &[], &["evil example".into()], &[]).unwrap_err();
        assert!(e.contains("--allow-host"), "{e}");
        let e = Policy::new(l, &[], &[], &["ui.example".into()]).unwrap_err();
        assert!(e.contains("--allow-origin"), "{e}");
        let e = Policy::new(l, &[], &[], &["http://ui.example/path".into()]).unwrap_err();
        assert!(e.contains("--allow-origin"), "{e}");
        let p = Policy::new(l, &[], &["[fd00::1]".into(), "192.168.1.2".into()], &[]).unwrap();
        let mut h = HeaderMap::new();
        for ok in ["[fd00::1]:8080", "192.168.1.2:8080", "127.0.0.1"] {
            h.insert(header::HOST, HeaderValue::from_str(ok).unwrap());
            assert_eq!(
                p.check(&Method::GET, Version::HTTP_11, &Uri::from_static("/"), &h),
                Ok(()),
                "{ok}"
            );
        }
        h.insert(header::HOST, HeaderValue::from_static("10.0.2.15"));
        assert!(
            p.check(&Method::GET, Version::HTTP_11, &Uri::from_static("/"), &h)
                .is_err()
        );
    }
}
