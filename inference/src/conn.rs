//! The HTTP server's connections: a cap on how many are open, timeouts for
//! the ones that send nothing useful, and the accept loop that enforces
//! both ([`serve`]).
//!
//! Each connection is tracked in [`Conns`] with what it is doing: waiting
//! for a request (since it opened, or since its last response ended),
//! receiving one's headers (since its first byte came), or serving
//! requests (from the moment a request's headers are complete until its
//! response body has been sent or dropped). Every quarter of a second a
//! sweep closes the connections that have waited too long:
//!
//! | state | limit | counted as |
//! |---|---|---|
//! | opened, no complete request yet | `header_timeout` from the open | `header` |
//! | idle after a response | `idle_timeout` | `idle` |
//! | a request's first bytes came, headers not complete | `header_timeout` from the first byte | `header` |
//! | serving | none here (bodies have their own timeout, generation the queue's) | — |
//!
//! At the cap a new connection takes the place of the oldest one that is
//! not serving a request (it is closed and counted as `evicted`): idle and
//! half-sent connections can't keep a client out. When every open
//! connection is serving, the new one gets a 503 at once and is closed
//! (`refused`): never a hang.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::Request;
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The limits on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub max: usize,
    /// From a connection's open (or a request's first byte) to its
    /// complete headers.
    pub header: Duration,
    /// A keep-alive connection waiting for its next request.
    pub idle: Duration,
    /// From a request's headers to the end of its body.
    pub body: Duration,
}

/// The default connection cap for a process that may hold `nofile`
/// descriptors: a quarter of them, between 8 and 1024, so the model, the
/// apps and the sandbox keep theirs.
pub fn default_max(nofile: u64) -> usize {
    (nofile / 4).clamp(8, 1024) as usize
}

/// The soft limit on open descriptors (`RLIMIT_NOFILE`).
pub fn nofile_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
}

/// Why a connection was closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// Its headers did not come in time.
    Header,
    /// It was idle too long between requests.
    Idle,
    /// A request's body did not come in time.
    Body,
}

impl Timeout {
    /// Its label in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Timeout::Header => "header",
            Timeout::Idle => "idle",
            Timeout::Body => "body",
        }
    }
}

/// What one connection is doing.
#[derive(Debug, Clone, Copy)]
pub struct State {
    /// When it opened.
    pub opened: Instant,
    /// Requests being served (their responses not yet sent).
    pub serving: u32,
    /// Whether a request was ever served on it.
    pub served: bool,
    /// When its last response ended (or it opened).
    pub idle_since: Instant,
    /// When the first byte of the next request came, if one did.
    pub first_byte: Option<Instant>,
}

impl State {
    fn new(now: Instant) -> Self {
        Self {
            opened: now,
            serving: 0,
            served: false,
            idle_since: now,
            first_byte: None,
        }
    }

    /// Whether, at `now`, the connection has waited too long.
    pub fn overdue(&self, now: Instant, l: &Limits) -> Option<Timeout> {
        if self.serving > 0 {
            return None;
        }
        let since = |t: Instant| now.saturating_duration_since(t);
        match self.first_byte {
            Some(t) if since(t) >= l.header => Some(Timeout::Header),
            Some(_) => None,
            None if !self.served && since(self.opened) >= l.header => Some(Timeout::Header),
            None if self.served && since(self.idle_since) >= l.idle => Some(Timeout::Idle),
            None => None,
        }
    }
}

/// One open connection.
pub struct Conn {
    id: u64,
    state: Mutex<State>,
    close: Notify,
}

impl Conn {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn saw_bytes(&self) {
        let mut st = self.state();
        if st.serving == 0 && st.first_byte.is_none() {
            st.first_byte = Some(Instant::now());
        }
    }

    /// A request's headers are complete: it is being served until the
    /// returned guard is dropped (with its response body).
    pub fn begin(self: &Arc<Self>) -> Serving {
        let mut st = self.state();
        st.serving += 1;
        st.served = true;
        st.first_byte = None;
        Serving(self.clone())
    }
}

/// A request in service; dropping it ends that.
pub struct Serving(Arc<Conn>);

impl Drop for Serving {
    fn drop(&mut self) {
        let mut st = self.0.state();
        st.serving = st.serving.saturating_sub(1);
        if st.serving == 0 {
            st.idle_since = Instant::now();
            st.first_byte = None;
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Refused with 503: every open connection was serving.
    pub refused: AtomicU64,
    /// Closed to make room for a new one.
    pub evicted: AtomicU64,
    /// Closed for taking too long, by [`Timeout`].
    pub timed_out: [AtomicU64; 3],
}

/// Every open connection.
pub struct Conns {
    /// The limits.
    pub limits: Limits,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next: AtomicU64,
    /// What happened so far.
    pub counters: Counters,
}

/// What [`Conns::admit`] decided.
enum Admit {
    Open(Arc<Conn>),
    Full,
}

impl Conns {
    /// No connections yet.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
            counters: Counters::default(),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table().len()
    }

    /// Counts a connection closed for taking too long.
    pub fn count_timeout(&self, t: Timeout) {
        self.counters.timed_out[t as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn admit(&self) -> Admit {
        let mut open = self.table();
        if open.len() >= self.limits.max {
            // The oldest connection that is not serving makes room (ids
            // grow with time).
            let victim = open
                .iter()
                .find(|(_, c)| c.state().serving == 0)
                .map(|(id, _)| *id);
            match victim.and_then(|id| open.remove(&id)) {
                Some(c) => {
                    c.close.notify_one();
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    return Admit::Full;
                }
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(Conn {
            id,
            state: Mutex::new(State::new(Instant::now())),
            close: Notify::new(),
        });
        open.insert(id, c.clone());
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        Admit::Open(c)
    }

    fn forget(&self, id: u64) {
        self.table().remove(&id);
    }

    /// Closes every connection that waited too long.
    fn sweep(&self) {
        let now = Instant::now();
        let mut open = self.table();
        let overdue: Vec<(u64, Timeout)> = open
            .iter()
            .filter_map(|(id, c)| c.state().overdue(now, &self.limits).map(|t| (*id, t)))
            .collect();
        for (id, t) in overdue {
            if let Some(c) = open.remove(&id) {
                c.close.notify_one();
                self.count_timeout(t);
            }
        }
    }
}

/// A connection's socket, noting when bytes come.
struct Watched {
    tcp: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.saw_bytes();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A response body that ends its request's service when it is dropped
/// (sent whole, or abandoned because the client left).
pub struct Tracked {
    inner: Body,
    _serving: Serving,
}

impl Tracked {
    /// `inner`, ending `serving` when dropped.
    pub fn new(inner: Body, serving: Serving) -> Self {
        Self {
            inner,
            _serving: serving,
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The largest request head (request line and headers) read, in bytes.
pub const MAX_HEAD: usize = 64 << 10;

/// The 503 a connection gets when every open one is serving.
fn full() -> Vec<u8> {
    let body = r#"{"error":{"message":"too many connections: every open connection is serving a request; retry after a second","type":"server_error","param":null,"code":"too_many_connections"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection over the cap with [`full`] and closes it, within a
/// second whatever the client does.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(&full()).await?;
        tcp.shutdown().await?;
        // Read what the client sent, so closing does not reset the
        // connection before it has read the answer.
        let mut sink = [0u8; 4096];
        loop {
            match tokio::io::AsyncReadExt::read(&mut tcp, &mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// Serves `router` on `listener` with the connection limits of `conns`,
/// until the process ends.
///
/// Connections get `TCP_NODELAY`: a streamed token is a small write right
/// after the headers or the previous token, and Nagle's algorithm would
/// hold it until the client's (delayed) acknowledgement came.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    conns: Arc<Conns>,
) -> std::io::Result<()> {
    let sweeper = conns.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            sweeper.sweep();
        }
    });
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors or memory: the ones in use free up.
                eprintln!("llmos-runtime: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Only latency is at stake if this fails.
        let _ = tcp.set_nodelay(true);
        match conns.admit() {
            Admit::Full => {
                tokio::spawn(refuse(tcp));
            }
            Admit::Open(conn) => {
                tokio::spawn(connection(tcp, conn, router.clone(), conns.clone()));
            }
        }
    }
}

/// One connection, until it or the server closes it.
async fn connection(tcp: TcpStream, conn: Arc<Conn>, router: Router, conns: Arc<Conns>) {
    use tower::ServiceExt;
    let io = hyper_util::rt::TokioIo::new(Watched {
        tcp,
        conn: conn.clone(),
    });
    let c = conn.clone();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(c.clone());
        let r = router.clone();
        async move { Ok::<Response, Infallible>(r.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_buf_size(MAX_HEAD).keep_alive(true);
    let serving = http.serve_connection(io, service);
    tokio::select! {
        _ = serving => {}
        () = conn.close.notified() => {}
    }
    conns.forget(conn.id);
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max: 2,
        header: Duration::from_secs(10),
        idle: Duration::from_secs(30),
        body: Duration::from_secs(30),
    };

    #[test]
    fn the_timeouts_of_each_state() {
        let t0 = Instant::now();
        let s = |x: u64| t0 + Duration::from_secs(x);
        let mut st = State::new(t0);
        // A new connection has `header` to send a whole request head.
        assert_eq!(st.overdue(s(9), &L), None);
        assert_eq!(st.overdue(s(10), &L), Some(Timeout::Header));
        // Serving: never here.
        st.serving = 1;
        st.served = true;
        assert_eq!(st.overdue(s(1000), &L), None);
        // Idle after a response: `idle`.
        st.serving = 0;
        st.idle_since = s(100);
        assert_eq!(st.overdue(s(129), &L), None);
        assert_eq!(st.overdue(s(130), &L), Some(Timeout::Idle));
        // The next request's first byte: `header` from then.
        st.first_byte = Some(s(120));
        assert_eq!(st.overdue(s(129), &L), None);
        assert_eq!(st.overdue(s(130), &L), Some(Timeout::Header));
        // A clock that went back is not a timeout.
        assert_eq!(State::new(s(5)).overdue(t0, &L), None);
    }

    #[test]
    fn at_the_cap_an_idle_connection_makes_room_and_a_serving_one_does_not() {
        let conns = Conns::new(L);
        let Admit::Open(a) = conns.admit() else {
            panic!()
        };
        let Admit::Open(b) = conns.admit() else {
            panic!()
        };
        let _serving = b.begin();
        // a (idle, oldest) is evicted for c.
        let Admit::Open(c) = conns.admit() else {
            panic!()
        };
        assert_eq!(conns.open(), 2);
        assert_eq!(conns.counters.evicted.load(Ordering::Relaxed), 1);
        assert!(!conns.table().contains_key(&a.id));
        // Both serving: refused.
        let _also = c.begin();
        assert!(matches!(conns.admit(), Admit::Full));
        assert_eq!(conns.counters.refused.load(Ordering::Relaxed), 1);
        drop(_also);
        assert!(matches!(conns.admit(), Admit::Open(_)));
    }

    #[test]
    fn a_request_in_service_ends_with_its_body() {
        let conns = Conns::new(L);
        let Admit::Open(a) = conns.admit() else {
            panic!()
        };
        a.saw_bytes();
        assert!(a.state().first_byte.is_some());
        let body = Tracked::new(Body::empty(), a.begin());
        assert_eq!(a.state().serving, 1);
        assert!(a.state().first_byte.is_none());
        // Bytes of the same request's body are not a next request.
        a.saw_bytes();
        assert!(a.state().first_byte.is_none());
        drop(body);
        let st = *a.state();
        assert_eq!((st.serving, st.served), (0, true));
    }

    #[test]
    fn the_refusal_is_whole_json() {
        let full = full();
        let text = std::str::from_utf8(&full).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections");
        assert_eq!(default_max(1024), 256);
        assert_eq!(default_max(16), 8);
        assert_eq!(default_max(1 << 20), 1024);
    }
}
