//! The HTTP API: OpenAI-compatible completions plus llama-server-style
//! endpoints, on axum and tokio (one tokio thread for the connections,
//! blocking threads for templates, tokenizing and sandbox runs; generation
//! runs on the scheduler's thread, see [`crate::queue`]).
//!
//! This module holds the routing and the middleware; the endpoints are in
//! [`generate`] (completions), [`info`] (health, models, props, metrics,
//! tokenizer) and [`exec`] (the code interpreter and the apps).
//!
//! Every request passes, in this order: the connection limits
//! ([`crate::conn`]: a cap, header and idle timeouts), the browser checks
//! ([`crate::browser`]: `Host`, `Origin`, a JSON content type), the key
//! (every endpoint but `/health` needs one when keys are configured:
//! `Authorization: Bearer KEY`) and the key's request rate
//! ([`crate::ratelimit`]), and the body's size and time limits. Errors use
//! OpenAI's JSON shape. No CORS headers are sent. Each request is logged
//! with method, path, status, duration and tokens, never with the key or
//! the prompt; refusals (401, 403, 421, 429) at a bounded rate.

mod exec;
mod generate;
mod info;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::{self, ApiError};
use crate::browser::Policy;
use crate::conn::{Conn, Conns, Guarded, OnBody, Timeout};
use crate::engine::{Engine, Sampling};
use crate::exec::Exec;
use crate::queue::Queue;
use crate::ratelimit::{Buckets, Log, LogBudget, Rate};

/// How the server was configured.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted API keys; empty means none needed.
    pub keys: Vec<String>,
    /// The model's id in the API (its file name without `.gguf`).
    pub model_id: String,
    /// Context per slot.
    pub context: u32,
    /// Threads per slot.
    pub threads: i32,
    /// `max_tokens` when a request gives none (cut to what fits).
    pub max_tokens: u32,
    /// Sampling when a request gives none.
    pub sampling: Sampling,
    /// A chat template instead of the model's.
    pub chat_template: Option<String>,
    /// Sequence slots.
    pub slots: usize,
    /// Waiting requests allowed.
    pub queue: usize,
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// Log each request on stderr.
    pub log_requests: bool,
    /// The hosts and origins the server answers to.
    pub policy: Policy,
    /// Connections: the cap and the timeouts.
    pub connections: crate::conn::Limits,
    /// Requests per key.
    pub rate: Rate,
    /// Requests one key may have in service at once.
    pub per_key: usize,
    /// How long a request may wait in the queue for a slot.
    pub queue_timeout: std::time::Duration,
}

/// Whether the model is there.
pub enum ModelState {
    /// Loaded, with its queue.
    Ready(&'static Engine, Arc<Queue>),
    /// Failed to load (or the slots failed to start); the reason.
    Failed(String),
}

/// What the handlers share.
pub struct Shared {
    config: Config,
    /// The code interpreter and the apps (`None` inside when the runtime
    /// has neither), set once the model is loaded: the sandbox's caps
    /// come from the memory left then.
    pub exec: OnceLock<Option<Arc<Exec>>>,
    /// Set once loading ends.
    pub model: OnceLock<ModelState>,
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    started: Instant,
    /// The open connections.
    pub conns: Arc<Conns>,
    buckets: Mutex<Buckets>,
    /// Requests in service per key (the last for requests without one).
    in_service: Vec<std::sync::atomic::AtomicUsize>,
    /// Requests refused because their key had `per_key` in service.
    busy_keys: std::sync::atomic::AtomicU64,
    refusals: Mutex<LogBudget>,
    /// Requests refused with 429 for their key's rate.
    rate_limited: std::sync::atomic::AtomicU64,
    /// Requests that waited longer than the queue timeout.
    queue_timeouts: std::sync::atomic::AtomicU64,
    /// How often the kernel restarted the runtime after it died
    /// (`LLMOS_RESTARTS`), and how its last run ended (`LLMOS_LAST_EXIT`).
    pub restarts: u64,
    /// See `restarts`.
    pub last_exit: Option<String>,
}

impl Shared {
    /// A server that is still loading its model.
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            conns: Conns::new(config.connections),
            buckets: Mutex::new(Buckets::new(config.rate, config.keys.len())),
            in_service: (0..=config.keys.len())
                .map(|_| Default::default())
                .collect(),
            busy_keys: Default::default(),
            refusals: Mutex::new(LogBudget::new(10, std::time::Duration::from_secs(60))),
            rate_limited: Default::default(),
            queue_timeouts: Default::default(),
            restarts: std::env::var("LLMOS_RESTARTS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            last_exit: std::env::var("LLMOS_LAST_EXIT")
                .ok()
                .map(|v| v.chars().take(200).collect()),
            config,
            exec: OnceLock::new(),
            model: OnceLock::new(),
            requests: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        })
    }

    /// The code interpreter and apps, if the runtime has them; 503 while
    /// the runtime is still starting.
    fn exec(&self) -> Result<Option<Arc<Exec>>, ApiError> {
        self.exec.get().cloned().ok_or_else(|| {
            ApiError::new(
                503,
                "server_error",
                "starting",
                "the runtime is still starting (loading the model); try again shortly".into(),
            )
        })
    }

    fn ready(&self) -> Result<(&'static Engine, &Arc<Queue>), ApiError> {
        match self.model.get() {
            None => Err(ApiError::new(
                503,
                "server_error",
                "model_loading",
                "the model is still loading; try again shortly".into(),
            )),
            Some(ModelState::Failed(why)) => Err(ApiError::new(
                503,
                "server_error",
                "model_unavailable",
                format!("no model is loaded: {why}"),
            )),
            Some(ModelState::Ready(e, q)) => Ok((e, q)),
        }
    }
}

/// Every route: method, path pattern, and a path that matches it (the
/// browser tests call each).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/health", "/health"),
    ("GET", "/v1/models", "/v1/models"),
    ("POST", "/v1/chat/completions", "/v1/chat/completions"),
    ("POST", "/v1/completions", "/v1/completions"),
    ("POST", "/tokenize", "/tokenize"),
    ("POST", "/detokenize", "/detokenize"),
    ("GET", "/props", "/props"),
    ("GET", "/metrics", "/metrics"),
    ("POST", "/v1/exec", "/v1/exec"),
    ("GET", "/v1/apps", "/v1/apps"),
    ("POST", "/v1/apps/{name}/run", "/v1/apps/text/run"),
];

/// The router with every endpoint.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.body_limit;
    let handlers: [axum::routing::MethodRouter<Arc<Shared>>; 11] = [
        get(info::health),
        get(info::models),
        post(generate::chat_completions),
        post(generate::completions),
        post(info::tokenize),
        post(info::detokenize),
        get(info::props),
        get(info::metrics),
        post(exec::exec_code),
        get(exec::list_apps),
        post(exec::run_app),
    ];
    let mut r = Router::new();
    for ((_, path, _), h) in ROUTES.iter().zip(handlers) {
        r = r.route(path, h);
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(shared.clone(), read_body))
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            browser_checks,
        ))
        .layer(middleware::from_fn(track))
        .layer(middleware::from_fn_with_state(shared.clone(), log))
        .with_state(shared)
}

/// Serves the API on `listener` until the process ends, within the
/// connection limits ([`crate::conn`]).
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    let conns = shared.conns.clone();
    crate::conn::serve(listener, router(shared), conns).await
}

/// Marks the connection as serving from here until the response body is
/// sent or dropped (see [`crate::conn`]).
async fn track(req: Request, next: Next) -> Response {
    let Some(conn) = req.extensions().get::<Arc<Conn>>().cloned() else {
        return next.run(req).await;
    };
    let serving = conn.begin();
    let resp = next.run(req).await;
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, Body::new(Guarded::new(body, serving)))
}

/// The browser checks ([`crate::browser`]), before anything else looks at
/// the request.
async fn browser_checks(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match s
        .config
        .policy
        .check(req.method(), req.version(), req.uri(), req.headers())
    {
        Ok(()) => next.run(req).await,
        Err(r) => {
            let kind = if r.status() == 415 {
                "invalid_request_error"
            } else {
                "permission_error"
            };
            ApiError::new(r.status(), kind, r.code(), r.message().to_owned()).into_response()
        }
    }
}

/// Reads a request's whole body within the size limit and the body
/// timeout, so a slow sender holds a connection for a bounded time and a
/// handler never waits on the network.
async fn read_body(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let limit = s.config.body_limit;
    let too_large = || {
        ApiError::new(
            413,
            "invalid_request_error",
            "request_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .into_response()
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return with_close(too_large());
    }
    let (parts, body) = req.into_parts();
    let timeout = s.config.connections.body;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => {
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            let mut is_limit = false;
            while let Some(err) = source {
                is_limit |= err.is::<http_body_util::LengthLimitError>();
                source = err.source();
            }
            if is_limit {
                with_close(too_large())
            } else {
                with_close(
                    ApiError::bad("", format!("the request body could not be read: {e}"))
                        .into_response(),
                )
            }
        }
        Err(_) => {
            s.conns.count_timeout(Timeout::Body);
            with_close(
                ApiError::new(
                    408,
                    "invalid_request_error",
                    "request_timeout",
                    format!(
                        "the request body did not arrive within {} s",
                        timeout.as_secs_f64()
                    ),
                )
                .into_response(),
            )
        }
    }
}

/// The connection closes after this response (the rest of its request was
/// not read).
fn with_close(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, Json(self.body())).into_response();
        if self.status == 429 {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == 401 {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Tokens a response used, for the request log.
#[derive(Clone, Copy)]
struct Tokens(usize, usize);

/// A JSON body, parsed with its type's field checks ([`api::Body`]:
/// unknown fields and wrong types are refused with the field's name).
/// The body's size and time limits were enforced before ([`read_body`]).
struct ApiJson<T>(T);

impl<S: Send + Sync, T: api::Body> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let b = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    413,
                    "invalid_request_error",
                    "request_too_large",
                    "the request body is larger than the limit".into(),
                )
            } else {
                ApiError::bad("", format!("the request body could not be read: {e}"))
            }
        })?;
        T::from_json(&b).map(ApiJson)
    }
}

async fn log(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // The route's pattern, so arbitrary paths cannot grow the metrics.
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| p.as_str())
        .to_owned();
    let shown = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    *s.requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry((path, status))
        .or_default() += 1;
    let refusal = matches!(status, 401 | 403 | 421 | 429 | 415 | 408 | 413);
    let print = if refusal {
        match s
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .line(Instant::now())
        {
            Log::Print { dropped: 0 } => true,
            Log::Print { dropped } => {
                eprintln!("api: {dropped} more refused requests were not logged");
                true
            }
            Log::Drop => false,
        }
    } else {
        true
    };
    if s.config.log_requests && print {
        let tokens = resp
            .extensions()
            .get::<Tokens>()
            .map(|t| format!(" {}+{} tokens", t.0, t.1))
            .unwrap_or_default();
        // The path only: a query string could carry anything.
        eprintln!(
            "api: {method} {} {status} {} ms{tokens}",
            shown.chars().take(100).collect::<String>(),
            start.elapsed().as_millis()
        );
    }
    resp
}

async fn authenticate(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/health" {
        return next.run(req).await;
    }
    if s.config.keys.is_empty() {
        // Without keys, every request shares the last bucket.
        return admit_key(&s, s.config.keys.len(), req, next).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer);
    match given.map(|k| crate::auth::which(&s.config.keys, k)) {
        Some(Some(i)) => admit_key(&s, i, req, next).await,
        Some(None) => ApiError::new(
            401,
            "invalid_request_error",
            "invalid_api_key",
            "the API key is not valid".into(),
        )
        .into_response(),
        None => ApiError::new(
            401,
            "invalid_request_error",
            "missing_api_key",
            "an API key is needed: send the header 'Authorization: Bearer KEY' (the key is shown on the llmos console)".into(),
        )
        .into_response(),
    }
}

/// A key's place among its requests in service; freed with the response.
struct KeySlot(Arc<Shared>, usize);

impl Drop for KeySlot {
    fn drop(&mut self) {
        self.0.in_service[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

impl OnBody for KeySlot {}

/// Runs a request of key `key` within its request rate and its share of
/// requests in service.
async fn admit_key(s: &Arc<Shared>, key: usize, req: Request, next: Next) -> Response {
    if let Err(r) = rate_check(s, key) {
        return r;
    }
    let n = s.in_service[key].fetch_add(1, Ordering::Relaxed);
    let slot = KeySlot(s.clone(), key);
    if n >= s.config.per_key {
        s.busy_keys.fetch_add(1, Ordering::Relaxed);
        let mut resp = ApiError::new(
            429,
            "rate_limit_error",
            "too_many_requests_in_service",
            format!(
                "this key already has {} requests in service, the most one key may have; retry when one ends",
                s.config.per_key
            ),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    }
    let resp = next.run(req).await;
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, Body::new(Guarded::new(body, slot)))
}

/// Takes one request from key `key`'s bucket, or answers 429 with the
/// time to wait.
#[allow(clippy::result_large_err)]
fn rate_check(s: &Shared, key: usize) -> Result<(), Response> {
    let r = s
        .buckets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take(key, Instant::now());
    let Err(wait) = r else {
        return Ok(());
    };
    s.rate_limited.fetch_add(1, Ordering::Relaxed);
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let rate = s.config.rate;
    let mut resp = ApiError::new(
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        format!(
            "too many requests for this key: the limit is {} a minute (bursts of {}); retry after {secs} s",
            rate.per_minute, rate.burst
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Err(resp)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        404,
        "invalid_request_error",
        "not_found",
        format!(
            "no endpoint {} {} (see docs/api.md)",
            req.method(),
            req.uri().path().chars().take(100).collect::<String>()
        ),
    )
}

async fn method_not_allowed(method: Method, req: Request) -> ApiError {
    ApiError::new(
        405,
        "invalid_request_error",
        "method_not_allowed",
        format!(
            "{} does not take {method}",
            req.uri().path().chars().take(100).collect::<String>()
        ),
    )
}

/// Runs `f` on a blocking thread: templates, tokenizing and grammar
/// building can take seconds for a large request, and the HTTP thread
/// serves everyone.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(500, "server_error", "internal_error", e.to_string()))?
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The machine's address on its route outward (in llmos, the guest's
/// address), if it has one; nothing is sent.
pub fn outward_ip() -> Option<std::net::IpAddr> {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|u| {
            u.connect("192.0.2.1:9")?;
            u.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
}

/// Where the API can be reached, for the status block: the address a
/// client would use (the machine's address for a wildcard bind).
pub fn reachable(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        outward_ip().unwrap_or(addr.ip())
    } else {
        addr.ip()
    };
    format!("http://{}/v1", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use tower::ServiceExt;

    fn config(keys: &[&str]) -> Config {
        Config {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            model_id: "m".into(),
            context: 64,
            threads: 1,
            max_tokens: 8,
            sampling: Sampling::default(),
            chat_template: None,
            slots: 1,
            queue: 1,
            body_limit: 1 << 16,
            log_requests: false,
            policy: Policy::new("127.0.0.1:8080".parse().unwrap(), &[], &[], &[]).unwrap(),
            connections: crate::conn::Limits {
                max: 8,
                header: std::time::Duration::from_secs(1),
                idle: std::time::Duration::from_secs(1),
                body: std::time::Duration::from_secs(1),
                write: std::time::Duration::from_secs(1),
                max_pending: 1 << 20,
            },
            per_key: 4,
            rate: Rate {
                per_minute: 0,
                burst: 1,
            },
            queue_timeout: std::time::Duration::from_secs(1),
        }
    }

    async fn send(r: &Router, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = r
            .clone()
            .oneshot(b.body(Body::from(body_for(path))).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A body each endpoint parses.
    fn body_for(path: &str) -> &'static str {
        match path {
            "/v1/exec" => r#"{"language":"python","code":"1"}"#,
            "/v1/chat/completions" => r#"{"messages":[{"role":"user","content":"hi"}]}"#,
            "/v1/completions" => r#"{"prompt":"hi"}"#,
            "/tokenize" => r#"{"content":"hi"}"#,
            "/detokenize" => r#"{"tokens":[1]}"#,
            _ => "{}",
        }
    }

    #[test]
    fn without_a_model_every_route_answers_in_openais_shape() {
        block_on(async {
            let shared = Shared::new(config(&[]));
            let r = router(shared.clone());
            let host = ("host", "localhost");
            let json = ("content-type", "application/json");
            // While the model loads: 503 with a reason, /health says so.
            for (method, _, path) in ROUTES {
                let (st, v) = send(&r, method, path, &[host, json]).await;
                if *path == "/health" {
                    assert_eq!((st, v["status"].as_str()), (503, Some("loading")), "{v}");
                } else if ["/metrics", "/v1/apps"].contains(path) {
                    assert_eq!(st, 200, "{path}");
                } else {
                    assert_eq!(st, 503, "{path}: {v}");
                    let code = v["error"]["code"].as_str().unwrap();
                    assert!(["model_loading", "starting"].contains(&code), "{path}: {v}");
                    assert_eq!(v["error"]["type"], "server_error");
                }
            }
            let _ = shared
                .model
                .set(ModelState::Failed("the file is not a GGUF".into()));
            let (st, v) = send(&r, "POST", "/v1/completions", &[host, json]).await;
            assert_eq!(st, 503);
            assert_eq!(v["error"]["code"], "model_unavailable");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("not a GGUF")
            );
            let (st, v) = send(&r, "GET", "/nowhere", &[host]).await;
            assert_eq!((st, v["error"]["code"].as_str()), (404, Some("not_found")));
            let (st, v) = send(&r, "DELETE", "/v1/models", &[host]).await;
            assert_eq!(
                (st, v["error"]["code"].as_str()),
                (405, Some("method_not_allowed"))
            );
            // Larger than the body limit: 413 before the endpoint.
            let big = Request::builder()
                .method("POST")
                .uri("/tokenize")
                .header("host", "localhost")
                .header("content-type", "application/json")
                .header("content-length", (1 << 17).to_string())
                .body(Body::from(vec![b' '; 1 << 17]))
                .unwrap();
            let resp = r.clone().oneshot(big).await.unwrap();
            assert_eq!(resp.status(), 413);
            // Every error has OpenAI's fields.
            let (_, v) = send(&r, "GET", "/nowhere", &[host]).await;
            for field in ["message", "type", "param", "code"] {
                assert!(v["error"].get(field).is_some(), "{field}: {v}");
            }
        });
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn every_route_refuses_what_a_browser_sends_without_a_preflight() {
        block_on(async {
            // Without keys (loopback), where nothing else would stop a page.
            let r = router(Shared::new(config(&[])));
            let host = ("host", "127.0.0.1:8080");
            for (method, pattern, path) in ROUTES {
                if *method == "POST" {
                    for ct in [
                        Some("text/plain"),
                        Some("application/x-www-form-urlencoded"),
                        Some("multipart/form-data; boundary=x"),
                        None,
                    ] {
                        let mut h = vec![host];
                        if let Some(ct) = ct {
                            h.push(("content-type", ct));
                        }
                        let (st, v) = send(&r, method, path, &h).await;
                        assert_eq!(st, 415, "{pattern} {ct:?}: {v}");
                        assert_eq!(v["error"]["code"], "unsupported_media_type");
                    }
                }
                let json = ("content-type", "application/json");
                let (st, v) = send(&r, method, path, &[("host", "evil.example:8080"), json]).await;
                assert_eq!(st, 421, "{pattern}: {v}");
                assert_eq!(v["error"]["code"], "host_not_allowed");
                let (st, v) = send(
                    &r,
                    method,
                    path,
                    &[host, json, ("origin", "http://evil.example")],
                )
                .await;
                assert_eq!(st, 403, "{pattern}: {v}");
                assert_eq!(v["error"]["code"], "origin_not_allowed");
                // The same request as a real client sends it gets through
                // to the endpoint (503 without a model or an interpreter).
                let (st, v) = send(&r, method, path, &[host, json]).await;
                assert!(![415, 421, 403].contains(&st), "{pattern}: {st} {v}");
            }
        });
    }

    #[test]
    fn browser_checks_come_before_the_key_and_the_key_before_the_body() {
        block_on(async {
            let shared = Shared::new(config(&["k".repeat(20).as_str()]));
            let _ = shared.exec.set(None);
            let r = router(shared);
            let (st, _) = send(&r, "POST", "/v1/exec", &[("host", "evil.example")]).await;
            assert_eq!(st, 421);
            let (st, _) = send(&r, "POST", "/v1/exec", &[("host", "localhost")]).await;
            assert_eq!(st, 415);
            let json = ("content-type", "application/json");
            let (st, _) = send(&r, "POST", "/v1/exec", &[("host", "localhost"), json]).await;
            assert_eq!(st, 401);
            let key = format!("Bearer {}", "k".repeat(20));
            let (st, v) = send(
                &r,
                "POST",
                "/v1/exec",
                &[("host", "localhost"), json, ("authorization", &key)],
            )
            .await;
            assert_eq!(st, 503, "{v}");
            assert_eq!(v["error"]["code"], "exec_unavailable");
        });
    }
}
