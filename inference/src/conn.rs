//! The HTTP server's connections: a cap on how many are open, timeouts for
//! the ones that send or read nothing useful, a bound on the replies they
//! leave unread, and the accept loop that enforces all of it ([`serve`]).
//!
//! Each connection is tracked in [`Conns`] with what it is doing: waiting
//! for a request (since it opened, or since its last response ended),
//! receiving one's headers (since its first byte came), or serving
//! requests (from the moment a request's headers are complete until its
//! response body has been handed on or dropped). Every quarter of a second
//! a sweep closes the connections that have waited too long:
//!
//! | state | limit | counted as |
//! |---|---|---|
//! | opened, no complete request yet | `header` from the open | `header` |
//! | idle after a response | `idle` | `idle` |
//! | a request's first bytes came, headers not complete | `header` from the first byte | `header` |
//! | serving | none here (bodies have their own timeout, generation the queue's) | — |
//! | any state, while the client reads nothing of what was sent to it | `write` from when its socket stopped taking bytes | `write` |
//!
//! A connection is idle only once its reply has left for the socket: a
//! slow reader of a large reply is not cut off by the idle timeout, only
//! one that stops reading for `write`. Replies the clients have not read
//! yet are counted (body bytes handed to the connection less bytes
//! written); over `max_pending` in all, the stalled connections holding the
//! most are closed first (`shed`).
//!
//! At the cap a new connection takes the place of one that is not serving
//! a request (it is closed and counted as `evicted`): first one that has
//! sent nothing of a next request (the oldest first), then the one still
//! sending headers that has sent the fewest bytes, so a flood of cheap
//! connections evicts itself before a client in the middle of its
//! request. When every open connection is serving, the new one gets a 503
//! at once and is closed (`refused`): never a hang. Connections being
//! refused are few and short-lived (at most 32 at once, each at most a
//! quarter of a second); beyond that a new connection is closed at once.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// A client that reads nothing of what was sent to it.
    pub write: Duration,
    /// Bytes of replies handed to the connections and not yet written to
    /// their sockets, in all.
    pub max_pending: u64,
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
    /// The client read nothing for too long.
    Write,
}

impl Timeout {
    /// Every kind, in the order of [`Counters::timed_out`].
    pub const ALL: [Timeout; 4] = [
        Timeout::Header,
        Timeout::Idle,
        Timeout::Body,
        Timeout::Write,
    ];

    /// Its label in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Timeout::Header => "header",
            Timeout::Idle => "idle",
            Timeout::Body => "body",
            Timeout::Write => "write",
        }
    }
}

/// What one connection is doing.
#[derive(Debug, Clone, Copy)]
pub struct State {
    /// When it opened.
    pub opened: Instant,
    /// Requests being served (their responses not yet handed on).
    pub serving: u32,
    /// Whether a request was ever served on it.
    pub served: bool,
    /// When its last response ended (or it opened).
    pub idle_since: Instant,
    /// When the first byte of the next request came, if one did.
    pub first_byte: Option<Instant>,
    /// Bytes of that request received so far.
    pub head_bytes: u64,
    /// Since when its socket has taken none of the bytes waiting to be
    /// written, if it stopped.
    pub write_blocked: Option<Instant>,
    /// Bytes of reply bodies handed to it.
    pub body_out: u64,
    /// Bytes written to its socket.
    pub written: u64,
}

impl State {
    fn new(now: Instant) -> Self {
        Self {
            opened: now,
            serving: 0,
            served: false,
            idle_since: now,
            first_byte: None,
            head_bytes: 0,
            write_blocked: None,
            body_out: 0,
            written: 0,
        }
    }

    /// Reply bytes handed over and not yet written (response heads make
    /// this a slight underestimate).
    pub fn pending(&self) -> u64 {
        self.body_out.saturating_sub(self.written)
    }

    /// Whether, at `now`, the connection has waited too long.
    pub fn overdue(&self, now: Instant, l: &Limits) -> Option<Timeout> {
        let since = |t: Instant| now.saturating_duration_since(t);
        if let Some(t) = self.write_blocked {
            // Not idle while output waits; only a reader that stopped.
            return (since(t) >= l.write).then_some(Timeout::Write);
        }
        if self.serving > 0 {
            return None;
        }
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

    fn saw_bytes(&self, n: usize) {
        let mut st = self.state();
        if st.serving == 0 {
            if st.first_byte.is_none() {
                st.first_byte = Some(Instant::now());
            }
            st.head_bytes += n as u64;
        }
    }

    /// The socket took `n` bytes, or (`None`) none.
    fn wrote(&self, n: Option<usize>) {
        let mut st = self.state();
        match n {
            Some(n) => {
                st.written += n as u64;
                st.write_blocked = None;
            }
            None => {
                st.write_blocked.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Which connections make room first at the cap (smaller first), or
    /// `None` for one that is serving.
    fn eviction_order(&self) -> Option<(u8, u64, u64)> {
        let st = self.state();
        if st.serving > 0 {
            return None;
        }
        Some(match st.first_byte {
            None => (0, 0, self.id),
            Some(_) => (1, st.head_bytes, self.id),
        })
    }

    /// A request's headers are complete: it is being served until the
    /// returned guard is dropped (with its response body).
    pub fn begin(self: &Arc<Self>) -> Serving {
        let mut st = self.state();
        st.serving += 1;
        st.served = true;
        st.first_byte = None;
        st.head_bytes = 0;
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
            st.head_bytes = 0;
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
    /// Closed for taking too long, by [`Timeout`] (in [`Timeout::ALL`]'s
    /// order).
    pub timed_out: [AtomicU64; 4],
    /// Stalled connections closed because unread replies held more than
    /// `max_pending`.
    pub shed: AtomicU64,
}

/// Every open connection.
pub struct Conns {
    /// The limits.
    pub limits: Limits,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next: AtomicU64,
    /// Connections being answered 503 now.
    refusing: AtomicUsize,
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
            refusing: AtomicUsize::new(0),
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

    /// Reply bytes the clients have not read yet, in all.
    pub fn pending(&self) -> u64 {
        self.table().values().map(|c| c.state().pending()).sum()
    }

    /// Counts a connection closed for taking too long.
    pub fn count_timeout(&self, t: Timeout) {
        self.counters.timed_out[t as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn admit(&self) -> Admit {
        let mut open = self.table();
        if open.len() >= self.limits.max {
            // One that is not serving makes room (see the module).
            let victim = open
                .values()
                .filter_map(|c| c.eviction_order())
                .min()
                .map(|(_, _, id)| id);
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

    /// Closes every connection that waited too long, then, while unread
    /// replies hold more than `max_pending`, the stalled ones holding the
    /// most.
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
        let mut held: Vec<(u64, bool, u64)> = open
            .iter()
            .map(|(id, c)| {
                let st = c.state();
                (st.pending(), st.write_blocked.is_some(), *id)
            })
            .collect();
        let mut total: u64 = held.iter().map(|h| h.0).sum();
        held.sort_unstable_by(|a, b| b.cmp(a));
        for (pending, stalled, id) in held {
            if total <= self.limits.max_pending {
                break;
            }
            if stalled && let Some(c) = open.remove(&id) {
                c.close.notify_one();
                self.counters.shed.fetch_add(1, Ordering::Relaxed);
                total -= pending;
            }
        }
    }
}

/// A connection's socket, noting when bytes come and go.
struct Watched {
    tcp: TcpStream,
    conn: Arc<Conn>,
}

impl Watched {
    fn note(&self, r: &Poll<std::io::Result<usize>>) {
        match r {
            Poll::Ready(Ok(n)) => self.conn.wrote(Some(*n)),
            Poll::Pending => self.conn.wrote(None),
            Poll::Ready(Err(_)) => {}
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if matches!(r, Poll::Ready(Ok(()))) && n > 0 {
            self.conn.saw_bytes(n);
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
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.note(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.note(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// What a [`Guarded`] body tells as it goes; its `Drop` runs when the body
/// is done.
pub trait OnBody: Send + Unpin + 'static {
    /// `n` bytes of the body were handed on.
    fn data(&self, _n: usize) {}
}

impl OnBody for Serving {
    fn data(&self, n: usize) {
        self.0.state().body_out += n as u64;
    }
}

/// A response body with a guard that lives as long as it does (until it
/// is handed on whole, or abandoned because the client left): the
/// connection's [`Serving`], a key's place ([`crate::server`]).
pub struct Guarded<G: OnBody> {
    inner: Body,
    guard: G,
}

impl<G: OnBody> Guarded<G> {
    /// `inner`, holding `guard` until dropped.
    pub fn new(inner: Body, guard: G) -> Self {
        Self { inner, guard }
    }
}

impl<G: OnBody> http_body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r
            && let Some(d) = f.data_ref()
        {
            self.guard.data(d.len());
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The read buffer of a connection: a request head (request line and
/// headers) that does not fit is refused with 431.
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
/// quarter of a second whatever the client does.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_millis(250), async {
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

/// Connections answered 503 at once at most; beyond, closed unanswered.
const MAX_REFUSING: usize = 32;

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
            Admit::Full if conns.refusing.fetch_add(1, Ordering::Relaxed) < MAX_REFUSING => {
                let c = conns.clone();
                tokio::spawn(async move {
                    refuse(tcp).await;
                    c.refusing.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Admit::Full => {
                conns.refusing.fetch_sub(1, Ordering::Relaxed);
                drop(tcp);
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
        write: Duration::from_secs(20),
        max_pending: 1000,
    };

    fn open(conns: &Conns) -> Arc<Conn> {
        match conns.admit() {
            Admit::Open(c) => c,
            Admit::Full => panic!("refused"),
        }
    }

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
        // A reader that stopped is not idle, and is cut off after `write`,
        // serving or not.
        st.first_byte = None;
        st.write_blocked = Some(s(200));
        assert_eq!(st.overdue(s(219), &L), None);
        assert_eq!(st.overdue(s(220), &L), Some(Timeout::Write));
        st.serving = 1;
        assert_eq!(st.overdue(s(220), &L), Some(Timeout::Write));
        st.write_blocked = None;
        assert_eq!(st.overdue(s(10_000), &L), None);
    }

    #[test]
    fn at_the_cap_the_cheapest_connection_makes_room_and_a_serving_one_does_not() {
        let conns = Conns::new(Limits { max: 3, ..L });
        let a = open(&conns);
        let b = open(&conns);
        let c = open(&conns);
        let _serving = b.begin();
        // a has sent 500 bytes of a head, c only 10: c goes first.
        a.saw_bytes(500);
        c.saw_bytes(10);
        let d = open(&conns);
        assert!(!conns.table().contains_key(&c.id));
        // d has sent nothing: it goes before a, mid-headers.
        let _e = open(&conns);
        assert!(!conns.table().contains_key(&d.id));
        assert!(conns.table().contains_key(&a.id));
        assert_eq!(conns.counters.evicted.load(Ordering::Relaxed), 2);
        // All serving: refused.
        let _x = a.begin();
        let _y = _e.begin();
        assert!(matches!(conns.admit(), Admit::Full));
        assert_eq!(conns.counters.refused.load(Ordering::Relaxed), 1);
        drop(_y);
        open(&conns);
    }

    #[test]
    fn a_request_in_service_ends_with_its_body() {
        let conns = Conns::new(L);
        let a = open(&conns);
        a.saw_bytes(3);
        assert!(a.state().first_byte.is_some());
        let body = Guarded::new(Body::empty(), a.begin());
        assert_eq!(a.state().serving, 1);
        assert!(a.state().first_byte.is_none());
        // Bytes of the same request's body are not a next request.
        a.saw_bytes(3);
        assert!(a.state().first_byte.is_none());
        drop(body);
        let st = *a.state();
        assert_eq!((st.serving, st.served), (0, true));
    }

    #[test]
    fn unread_replies_beyond_the_budget_shed_the_stalled_connections_that_hold_most() {
        let conns = Conns::new(Limits { max: 8, ..L });
        let (a, b, c) = (open(&conns), open(&conns), open(&conns));
        for (conn, out, stalled) in [(&a, 600, true), (&b, 100, true), (&c, 900, false)] {
            let mut st = conn.state();
            st.served = true;
            st.body_out = out;
            if stalled {
                st.write_blocked = Some(Instant::now());
            }
        }
        assert_eq!(conns.pending(), 1600);
        // c holds most but is still reading; a is the largest stalled one.
        conns.sweep();
        assert!(!conns.table().contains_key(&a.id));
        assert!(conns.table().contains_key(&b.id));
        assert!(conns.table().contains_key(&c.id));
        assert_eq!(conns.counters.shed.load(Ordering::Relaxed), 1);
        // Written bytes count off.
        c.wrote(Some(900));
        conns.sweep();
        assert!(conns.table().contains_key(&b.id));
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
