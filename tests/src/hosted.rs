//! `llmos-runtime serve` as a hosted process, and curl as its client.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// A running `llmos-runtime serve`; killed when dropped.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT` (or the wildcard address it listens on).
    pub addr: String,
    /// Everything it printed on stdout up to `llmos: ready` (or
    /// `llmos: degraded`).
    pub banner: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `serve --model MODEL --no-console` with `extra` arguments
    /// (and `--listen 127.0.0.1:0` unless they name one), and waits for
    /// the ready (or degraded) line.
    pub fn start(model: &Path, extra: &[&str]) -> Self {
        Self::start_full(model, extra, None, &[])
    }

    /// [`Server::start`] with its address space limited to `kib` KiB
    /// (`ulimit -v`; for tests whose failure could otherwise take the
    /// machine's memory) and extra environment variables.
    pub fn start_full(
        model: &Path,
        extra: &[&str],
        kib: Option<u64>,
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = match kib {
            None => Command::new(crate::runtime_bin()),
            Some(k) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -v {k} && exec \"$0\" \"$@\"")])
                    .arg(crate::runtime_bin());
                c
            }
        };
        cmd.envs(env.iter().copied());
        cmd.args(["serve", "--no-console", "--model"]).arg(model);
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting llmos-runtime serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err_pipe, err_copy) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = err_copy.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut banner = String::new();
            let mut lines = BufReader::new(out).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                banner.push_str(&line);
                banner.push('\n');
                if line.starts_with("llmos: ready") || line.starts_with("llmos: degraded") {
                    break;
                }
            }
            let _ = tx.send(banner);
            // Keep draining so the process never blocks on a full pipe.
            for _ in lines {}
        });
        let banner = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not get ready in 60 s"));
        if !banner.contains("llmos: ") {
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "serve ended before it was ready:\n{banner}{}",
                stderr.lock().unwrap()
            );
        }
        let addr = regex::Regex::new(r"listening on ([0-9.]+:\d+)")
            .unwrap()
            .captures(&banner)
            .unwrap_or_else(|| panic!("no address in the banner:\n{banner}"))[1]
            .replace("0.0.0.0", "127.0.0.1");
        Self {
            child,
            addr,
            banner,
            stderr,
        }
    }

    /// `http://ADDR`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What it printed on stderr so far (the request log).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// A request through curl.
    pub fn curl(&self, method: &str, path: &str, headers: &[&str], body: Option<&str>) -> Reply {
        curl(method, &self.url(path), headers, body)
    }

    /// POST a JSON body; the reply must be JSON.
    pub fn post(&self, path: &str, headers: &[&str], body: &Value) -> (u16, Value) {
        let r = self.curl("POST", path, headers, Some(&body.to_string()));
        let v = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", r.body));
        (r.status, v)
    }

    /// GET, parsing a JSON reply.
    pub fn get_json(&self, path: &str, headers: &[&str]) -> (u16, Value) {
        let r = self.curl("GET", path, headers, None);
        let v = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", r.body));
        (r.status, v)
    }

    /// One value from `/metrics` (a line `NAME VALUE`).
    pub fn metric(&self, name: &str, headers: &[&str]) -> f64 {
        let r = self.curl("GET", "/metrics", headers, None);
        r.body
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in:\n{}", r.body))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What curl got.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `data:` events of a server-sent-event body.
    pub fn events(&self) -> Vec<String> {
        self.body
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(str::to_owned)
            .collect()
    }
}

/// Runs curl; the body is sent from stdin so any size works.
pub fn curl(method: &str, url: &str, headers: &[&str], body: Option<&str>) -> Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-N", "--max-time", "300", "-D", "-", "-X", method]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if body.is_some() {
        cmd.args([
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@-",
        ]);
    }
    cmd.arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("running curl (scripts/setup.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let data = body.unwrap_or("").to_owned();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        // curl may stop reading early (413); that is not an error here.
        let _ = stdin.write_all(data.as_bytes());
    });
    let mut raw = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut raw)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    parse_reply(&raw).unwrap_or_else(|| {
        panic!(
            "curl {url}: no response: {raw}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Sends `request` (a whole HTTP/1.1 request, which should say
/// `Connection: close`) on a new connection to `addr` and reads the answer
/// to the end.
pub fn raw(addr: &str, request: &[u8]) -> Reply {
    use std::io::Write;
    let mut c = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // The server may answer (415, 421) before reading a body.
    let _ = c.write_all(request);
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    parse_reply(&String::from_utf8_lossy(&got)).unwrap_or_else(|| {
        panic!(
            "no HTTP answer from {addr}: {:?}",
            String::from_utf8_lossy(&got)
        )
    })
}

/// An HTTP response's status, headers and body, if `text` starts with one.
pub fn parse_reply(text: &str) -> Option<Reply> {
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Every route of the API as (method, pattern, a path that matches it),
/// read from the runtime's own table (`ROUTES` in inference/src/server/mod.rs),
/// so a new route is covered by the tests that go through them all.
pub fn routes() -> Vec<(String, String, String)> {
    let src = include_str!("../../inference/src/server/mod.rs");
    let table = src
        .split_once("pub const ROUTES")
        .and_then(|(_, rest)| rest.split_once("];"))
        .map(|(t, _)| t)
        .expect("ROUTES in inference/src/server/mod.rs");
    let re = regex::Regex::new(r#"\("([A-Z]+)", "([^"]+)", "([^"]+)"\)"#).unwrap();
    let v: Vec<_> = re
        .captures_iter(table)
        .map(|c| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()))
        .collect();
    assert!(v.len() >= 10, "only {} routes read from ROUTES", v.len());
    v
}
