//! The HTTP API: OpenAI-compatible completions plus llama-server-style
//! endpoints, on axum and tokio (one tokio thread; generation runs on the
//! queue's slot threads, see [`crate::queue`]).
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

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path as UrlPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::{self, ApiError, Format, Prompt, Settings};
use crate::apps::AppError;
use crate::browser::Policy;
use crate::conn::{Conn, Conns, Guarded, OnBody, Timeout};
use crate::engine::{Engine, Generate, Sampling, Stats, json_grammar};
use crate::exec::{Exec, Language};
use crate::queue::{Event, Job, Queue};
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
        get(health),
        get(models),
        post(chat_completions),
        post(completions),
        post(tokenize),
        post(detokenize),
        get(props),
        get(metrics),
        post(exec_code),
        get(list_apps),
        post(run_app),
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

fn body(b: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                413,
                "invalid_request_error",
                "request_too_large",
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        } else {
            ApiError::bad("", format!("the request body could not be read: {e}"))
        }
    })
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    let (status, mut v) = match s.model.get() {
        Some(ModelState::Ready(..)) => (StatusCode::OK, json!({"status": "ok"})),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "loading"}),
        ),
        Some(ModelState::Failed(why)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "error", "error": why}),
        ),
    };
    // The kernel restarts the runtime when it dies (llmos only).
    v["restarts"] = json!(s.restarts);
    v["last_exit"] = json!(s.last_exit);
    (status, Json(v)).into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn models(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    s.ready()?;
    let created = unix_now();
    let entry =
        |id: &str| json!({"id": id, "object": "model", "created": created, "owned_by": "llmos"});
    Ok(Json(json!({
        "object": "list",
        "data": [entry(&s.config.model_id), entry("default")],
    }))
    .into_response())
}

async fn props(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let (e, q) = s.ready()?;
    let c = &s.config;
    let g = &c.sampling;
    Ok(Json(json!({
        "model": c.model_id,
        "model_name": e.info.name,
        "architecture": e.info.architecture,
        "parameters": e.info.params,
        "quantization": e.info.quantization,
        "n_ctx_train": e.info.context,
        "n_ctx": c.context,
        "threads": c.threads,
        "slots": q.slots,
        "queue_capacity": q.capacity,
        "body_limit": c.body_limit,
        "auth": !c.keys.is_empty(),
        "built_for": crate::cpu::built_for(),
        "default_generation_settings": {
            "max_tokens": c.max_tokens,
            "temperature": short(g.temperature),
            "top_k": g.top_k,
            "top_p": short(g.top_p),
            "min_p": short(g.min_p),
            "repeat_penalty": short(g.repeat_penalty),
            "frequency_penalty": short(g.frequency_penalty),
            "presence_penalty": short(g.presence_penalty),
            "seed": g.seed,
        },
    }))
    .into_response())
}

/// An f32 as the decimal people wrote (0.05, not 0.05000000074505806).
fn short(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    use std::fmt::Write;
    let mut m = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
        let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in lines {
            let _ = writeln!(m, "{name}{labels} {v}");
        }
    };
    let requests: Vec<(String, String)> = s
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((path, status), n)| {
            (
                format!("{{path=\"{path}\",status=\"{status}\"}}"),
                n.to_string(),
            )
        })
        .collect();
    metric(
        "llmos_http_requests_total",
        "counter",
        "HTTP requests by route and status.",
        requests,
    );
    metric(
        "llmos_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        vec![(
            String::new(),
            format!("{:.3}", s.started.elapsed().as_secs_f64()),
        )],
    );
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let cc = &s.conns.counters;
    for (name, kind, help, v) in [
        (
            "llmos_http_connections_open",
            "gauge",
            "Connections open now.",
            s.conns.open() as u64,
        ),
        (
            "llmos_http_connections_max",
            "gauge",
            "Connections allowed open at once.",
            s.conns.limits.max as u64,
        ),
        (
            "llmos_http_connections_total",
            "counter",
            "Connections accepted.",
            get(&cc.accepted),
        ),
        (
            "llmos_http_connections_refused_total",
            "counter",
            "Connections answered 503 and closed at once: the cap was reached and every open connection was serving.",
            get(&cc.refused),
        ),
        (
            "llmos_http_connections_evicted_total",
            "counter",
            "Connections closed at the cap to make room for a new one (the oldest that was not serving).",
            get(&cc.evicted),
        ),
        (
            "llmos_http_connections_shed_total",
            "counter",
            "Stalled connections closed because unread replies held more than the server's budget.",
            get(&cc.shed),
        ),
        (
            "llmos_http_pending_reply_bytes",
            "gauge",
            "Reply bytes handed to connections and not yet written to their sockets.",
            s.conns.pending(),
        ),
        (
            "llmos_requests_key_busy_total",
            "counter",
            "Requests refused with 429 because their key had as many requests in service as one key may.",
            get(&s.busy_keys),
        ),
        (
            "llmos_requests_rate_limited_total",
            "counter",
            "Requests refused with 429 because their key went over its request rate.",
            get(&s.rate_limited),
        ),
        (
            "llmos_runtime_restarts_total",
            "counter",
            "Times the kernel restarted the runtime after it died (since the machine booted).",
            s.restarts,
        ),
        (
            "llmos_requests_queue_timeouts_total",
            "counter",
            "Requests answered 503 after waiting longer than the queue timeout for a slot.",
            get(&s.queue_timeouts),
        ),
    ] {
        metric(name, kind, help, vec![(String::new(), v.to_string())]);
    }
    metric(
        "llmos_http_connections_timed_out_total",
        "counter",
        "Connections closed because headers, the next request or a body did not come in time, or the client read nothing of the reply.",
        Timeout::ALL
            .iter()
            .map(|t| {
                (
                    format!("{{reason=\"{}\"}}", t.as_str()),
                    get(&cc.timed_out[*t as usize]).to_string(),
                )
            })
            .collect(),
    );
    if let Some(ModelState::Ready(_, q)) = s.model.get() {
        let c = &q.counters;
        let one = |v: String| vec![(String::new(), v)];
        let (waiting, busy) = q.load();
        let (generated, gen_us) = (get(&c.generated_tokens), get(&c.generate_us));
        let (pp, pp_us, cached) = (
            get(&c.prompt_tokens),
            get(&c.prompt_us),
            get(&c.cached_tokens),
        );
        let rate = |n: u64, us: u64| {
            if us == 0 {
                0.0
            } else {
                n as f64 * 1e6 / us as f64
            }
        };
        metric(
            "llmos_generations_total",
            "counter",
            "Generations that ended normally.",
            one(get(&c.completed).to_string()),
        );
        metric(
            "llmos_generations_failed_total",
            "counter",
            "Generations that failed.",
            one(get(&c.failed).to_string()),
        );
        metric(
            "llmos_generations_cancelled_total",
            "counter",
            "Generations stopped because the client left.",
            one(get(&c.cancelled).to_string()),
        );
        metric(
            "llmos_requests_rejected_total",
            "counter",
            "Requests refused with 429 because the queue was full.",
            one(get(&c.rejected).to_string()),
        );
        metric(
            "llmos_prompt_tokens_total",
            "counter",
            "Prompt tokens of finished generations.",
            one(pp.to_string()),
        );
        metric(
            "llmos_prompt_tokens_cached_total",
            "counter",
            "Prompt tokens taken from a slot's KV cache instead of evaluated.",
            one(cached.to_string()),
        );
        metric(
            "llmos_prompt_cache_hits_total",
            "counter",
            "Generations whose prompt began with tokens already in a slot's KV cache.",
            one(get(&c.cache_hits).to_string()),
        );
        metric(
            "llmos_prompt_cache_copies_total",
            "counter",
            "Of those, generations whose cached prefix was copied from another slot.",
            one(get(&c.cache_copies).to_string()),
        );
        metric(
            "llmos_decode_steps_total",
            "counter",
            "Decode steps: one batch each, with the next token of every generating slot and prompt chunks.",
            one(get(&c.steps).to_string()),
        );
        metric(
            "llmos_decode_step_tokens_total",
            "counter",
            "Tokens decoded in those steps (divided by the steps: the mean batch).",
            one(get(&c.step_tokens).to_string()),
        );
        metric(
            "llmos_generated_tokens_total",
            "counter",
            "Generated tokens.",
            one(generated.to_string()),
        );
        metric(
            "llmos_prompt_seconds_total",
            "counter",
            "Time spent evaluating prompts.",
            one(format!("{:.6}", pp_us as f64 / 1e6)),
        );
        metric(
            "llmos_generate_seconds_total",
            "counter",
            "Time spent generating.",
            one(format!("{:.6}", gen_us as f64 / 1e6)),
        );
        metric(
            "llmos_prompt_tokens_per_second",
            "gauge",
            "Prompt tokens per second over all generations.",
            one(format!("{:.3}", rate(pp.saturating_sub(cached), pp_us))),
        );
        metric(
            "llmos_generate_tokens_per_second",
            "gauge",
            "Generated tokens per second over all generations.",
            one(format!("{:.3}", rate(generated, gen_us))),
        );
        metric(
            "llmos_queue_depth",
            "gauge",
            "Requests waiting for a slot.",
            one(waiting.to_string()),
        );
        metric(
            "llmos_queue_capacity",
            "gauge",
            "Requests allowed to wait.",
            one(q.capacity.to_string()),
        );
        metric(
            "llmos_slots_busy",
            "gauge",
            "Slots generating.",
            one(busy.to_string()),
        );
        metric(
            "llmos_slots_total",
            "gauge",
            "Sequence slots.",
            one(q.slots.to_string()),
        );
    }
    metric(
        "llmos_model_loaded",
        "gauge",
        "1 when the model is loaded and serving.",
        vec![(
            String::new(),
            u8::from(matches!(s.model.get(), Some(ModelState::Ready(..)))).to_string(),
        )],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m).into_response()
}

#[derive(serde::Deserialize)]
struct TokenizeRequest {
    content: String,
    #[serde(default)]
    add_special: bool,
    #[serde(default = "yes")]
    parse_special: bool,
    #[serde(default)]
    with_pieces: bool,
}

fn yes() -> bool {
    true
}

/// The most tokens `/tokenize` shows with their pieces.
const MAX_PIECES: usize = 65_536;

async fn tokenize(
    State(s): State<Arc<Shared>>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body(b, s.config.body_limit)?;
    let (e, _) = s.ready()?;
    blocking(move || {
        let r: TokenizeRequest = api::parse_plain(&b)?;
        let tokens = e.tokenize(&r.content, r.add_special, r.parse_special);
        // Serialized straight from these, not through a JSON tree: a
        // megabyte of text is half a million tokens.
        #[derive(serde::Serialize)]
        struct Piece {
            id: i32,
            piece: String,
        }
        #[derive(serde::Serialize)]
        struct Out<T> {
            tokens: Vec<T>,
        }
        if !r.with_pieces {
            let tokens = tokens.iter().map(|t| t.0).collect();
            return Ok(Json(Out::<i32> { tokens }).into_response());
        }
        if tokens.len() > MAX_PIECES {
            return Err(ApiError::bad(
                "with_pieces",
                format!(
                    "with_pieces answers for at most {MAX_PIECES} tokens, and the content has {}; tokenize it in parts",
                    tokens.len()
                ),
            ));
        }
        let tokens = tokens
            .iter()
            .map(|t| Piece {
                id: t.0,
                piece: e.detokenize(&[t.0]).unwrap_or_default(),
            })
            .collect();
        Ok(Json(Out::<Piece> { tokens }).into_response())
    })
    .await
}

#[derive(serde::Deserialize)]
struct DetokenizeRequest {
    tokens: Vec<i64>,
}

async fn detokenize(
    State(s): State<Arc<Shared>>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body(b, s.config.body_limit)?;
    let (e, _) = s.ready()?;
    blocking(move || {
        let r: DetokenizeRequest = api::parse_plain(&b)?;
        let ids = r
            .tokens
            .iter()
            .map(|&t| i32::try_from(t).map_err(|_| format!("token {t} is not in the vocabulary")))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|ids| e.detokenize(&ids))
            .map_err(|m| ApiError::bad("tokens", format!("tokens: {m}")))?;
        Ok(Json(json!({ "content": ids })).into_response())
    })
    .await
}

/// What one completion request turned into.
struct Plan {
    tokens: Vec<llama_cpp_2::token::LlamaToken>,
    generate: Generate,
    settings: Settings,
}

fn plan(
    s: &Shared,
    e: &Engine,
    tokens: Vec<llama_cpp_2::token::LlamaToken>,
    settings: Settings,
    format: &Format,
) -> Result<Plan, ApiError> {
    let c = &s.config;
    if tokens.is_empty() {
        return Err(ApiError::bad("prompt", "the prompt is empty"));
    }
    let n = tokens.len() as u64;
    let ctx = u64::from(c.context);
    let max_tokens = match settings.max_tokens {
        Some(m) if n + u64::from(m) > ctx => {
            return Err(ApiError {
                code: Some("context_length_exceeded"),
                ..ApiError::bad(
                    "max_tokens",
                    format!(
                        "the prompt ({n} tokens) plus max_tokens ({m}) needs {} tokens, more than the context size ({ctx})",
                        n + u64::from(m)
                    ),
                )
            });
        }
        Some(m) => m,
        None if n >= ctx => {
            return Err(ApiError {
                code: Some("context_length_exceeded"),
                ..ApiError::bad(
                    "messages",
                    format!(
                        "the prompt ({n} tokens) does not fit the context size ({ctx}) with room for a reply"
                    ),
                )
            });
        }
        None => (ctx - n).min(u64::from(c.max_tokens)) as u32,
    };
    if settings.ignore_eos && format.schema().is_some() {
        // The grammar ends in an end-of-generation token, which ignore_eos
        // forbids: nothing could be sampled.
        return Err(ApiError::bad(
            "ignore_eos",
            "ignore_eos cannot be combined with a JSON response_format",
        ));
    }
    let n_vocab = e.n_vocab();
    if let Some((t, _)) = settings
        .sampling
        .logit_bias
        .iter()
        .find(|(t, _)| !(0..n_vocab).contains(t))
    {
        return Err(ApiError::bad(
            "logit_bias",
            format!("logit_bias: token {t} is not in the vocabulary (0..{n_vocab})"),
        ));
    }
    let grammar = match format.schema() {
        Some(schema) => {
            Some(json_grammar(&schema).map_err(|m| ApiError::bad("response_format", m))?)
        }
        None => None,
    };
    if let Some(t) = tokens.iter().find(|t| !(0..n_vocab).contains(&t.0)) {
        return Err(ApiError::bad(
            "prompt",
            format!(
                "prompt: token {} is not in the vocabulary (0..{n_vocab})",
                t.0
            ),
        ));
    }
    Ok(Plan {
        tokens,
        generate: Generate {
            max_tokens,
            context: c.context,
            threads: c.threads,
            sampling: settings.sampling.clone(),
            stops: settings.stops.clone(),
            grammar,
            ignore_eos: settings.ignore_eos,
        },
        settings,
    })
}

/// Stops the generation when the response (or the handler) is dropped:
/// the client went away.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn request_id(prefix: &str) -> String {
    // An id need not be secret: zeros if the OS has no randomness.
    let hex = crate::auth::random_hex(12).unwrap_or_else(|_| "0".repeat(24));
    format!("{prefix}-{hex}")
}

async fn chat_completions(
    State(s): State<Arc<Shared>>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body(b, s.config.body_limit)?;
    let (e, q) = s.ready()?;
    let s2 = s.clone();
    let p = blocking(move || {
        let r: api::ChatRequest = api::parse(&b, true)?;
        let messages = r.conversation()?;
        let format = r.format()?;
        let settings = r.common.settings(&s2.config.sampling)?;
        let tokens = e
            .chat_tokens(&messages, s2.config.chat_template.as_deref())
            .map_err(|m| ApiError::bad("messages", m))?;
        plan(&s2, e, tokens, settings, &format)
    })
    .await?;
    run(&s, q, p, true).await
}

async fn completions(
    State(s): State<Arc<Shared>>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body(b, s.config.body_limit)?;
    let (e, q) = s.ready()?;
    let s2 = s.clone();
    let p = blocking(move || {
        let r: api::CompletionRequest = api::parse(&b, false)?;
        let settings = r.common.settings(&s2.config.sampling)?;
        let tokens = match r.prompt()? {
            Prompt::Text(t) => e.tokenize(&t, true, false),
            Prompt::Tokens(ids) => ids
                .into_iter()
                .map(llama_cpp_2::token::LlamaToken)
                .collect(),
        };
        plan(&s2, e, tokens, settings, &Format::Text)
    })
    .await?;
    run(&s, q, p, false).await
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

/// Queues the generation and answers, streaming or not.
async fn run(s: &Arc<Shared>, q: &Arc<Queue>, p: Plan, chat: bool) -> Result<Response, ApiError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let guard = CancelOnDrop(cancel.clone());
    let (admitted_tx, admitted) = tokio::sync::oneshot::channel();
    let job = Job {
        tokens: p.tokens,
        generate: p.generate,
        events: tx,
        cancel,
        admitted: Some(admitted_tx),
    };
    q.submit(job).map_err(|_| {
        ApiError::new(
            429,
            "rate_limit_error",
            "queue_full",
            format!(
                "the server is busy: all {} slot(s) are generating and the queue of {} is full; retry after a second",
                q.slots, q.capacity
            ),
        )
    })?;
    // A request waits for a slot only so long; then it leaves the queue
    // (the guard cancels it) and the client hears why.
    let wait = s.config.queue_timeout;
    if tokio::time::timeout(wait, admitted).await.is_err() {
        s.queue_timeouts.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::new(
            503,
            "server_error",
            "queue_timeout",
            format!(
                "the server is busy: the request waited {} s for one of the {} slot(s) and was dropped from the queue; retry later",
                wait.as_secs_f64(),
                q.slots
            ),
        ));
    }
    let reply = Reply {
        id: request_id(if chat { "chatcmpl" } else { "cmpl" }),
        created: unix_now(),
        model: s.config.model_id.clone(),
        chat,
    };
    if p.settings.stream {
        Ok(stream(
            reply,
            rx,
            guard,
            p.settings.include_usage,
            s.config.log_requests,
        ))
    } else {
        whole(reply, rx, guard).await
    }
}

struct Reply {
    id: String,
    created: u64,
    model: String,
    chat: bool,
}

impl Reply {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.chat, chunk) {
            (true, false) => "chat.completion",
            (true, true) => "chat.completion.chunk",
            (false, _) => "text_completion",
        }
    }

    /// A whole reply or a streamed chunk: `text` and `finish` (or null).
    fn choice(&self, text: Option<&str>, finish: Option<&str>, chunk: bool, first: bool) -> Value {
        if !self.chat {
            return json!({"index": 0, "text": text.unwrap_or(""), "finish_reason": finish, "logprobs": null});
        }
        if !chunk {
            return json!({
                "index": 0,
                "message": {"role": "assistant", "content": text.unwrap_or("")},
                "finish_reason": finish,
                "logprobs": null,
            });
        }
        let mut delta = serde_json::Map::new();
        if first {
            delta.insert("role".into(), json!("assistant"));
        }
        if let Some(t) = text {
            delta.insert("content".into(), json!(t));
        }
        json!({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null})
    }

    fn wrap(&self, choices: Value, chunk: bool) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }
}

async fn whole(
    reply: Reply,
    mut rx: mpsc::UnboundedReceiver<Event>,
    _guard: CancelOnDrop,
) -> Result<Response, ApiError> {
    let mut text = String::new();
    let stats: Stats = loop {
        match rx.recv().await {
            Some(Event::Text(t)) => text.push_str(&t),
            Some(Event::Done(st)) => break st,
            Some(Event::Error(m)) => {
                return Err(ApiError::new(500, "server_error", "generation_failed", m));
            }
            None => {
                return Err(ApiError::new(
                    500,
                    "server_error",
                    "generation_failed",
                    "the generation ended without a result".into(),
                ));
            }
        }
    };
    let mut v = reply.wrap(
        json!([reply.choice(Some(&text), Some(stats.finish.as_str()), false, false)]),
        false,
    );
    v["usage"] = api::usage(stats.prompt_tokens, stats.generated);
    let mut r = Json(v).into_response();
    r.extensions_mut()
        .insert(Tokens(stats.prompt_tokens, stats.generated));
    Ok(r)
}

fn sse(v: &Value) -> String {
    format!("data: {v}\n\n")
}

struct Streaming {
    reply: Reply,
    rx: mpsc::UnboundedReceiver<Event>,
    _guard: CancelOnDrop,
    include_usage: bool,
    log: bool,
    first: bool,
    done: bool,
    started: Instant,
}

fn stream(
    reply: Reply,
    rx: mpsc::UnboundedReceiver<Event>,
    guard: CancelOnDrop,
    include_usage: bool,
    log: bool,
) -> Response {
    let st = Streaming {
        reply,
        rx,
        _guard: guard,
        include_usage,
        log,
        first: true,
        done: false,
        started: Instant::now(),
    };
    let body = futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        let mut out = String::new();
        if st.first && st.reply.chat {
            // OpenAI's first chunk names the role.
            out += &sse(&st
                .reply
                .wrap(json!([st.reply.choice(Some(""), None, true, true)]), true));
            st.first = false;
        }
        match st.rx.recv().await {
            Some(Event::Text(t)) => {
                out += &sse(&st
                    .reply
                    .wrap(json!([st.reply.choice(Some(&t), None, true, false)]), true));
            }
            Some(Event::Done(stats)) => {
                let end = st
                    .reply
                    .choice(None, Some(stats.finish.as_str()), true, false);
                out += &sse(&st.reply.wrap(json!([end]), true));
                if st.include_usage {
                    let mut u = st.reply.wrap(json!([]), true);
                    u["usage"] = api::usage(stats.prompt_tokens, stats.generated);
                    out += &sse(&u);
                }
                out += "data: [DONE]\n\n";
                st.done = true;
                if st.log {
                    eprintln!(
                        "api: stream {} ended after {} ms: {}+{} tokens, {}",
                        st.reply.id,
                        st.started.elapsed().as_millis(),
                        stats.prompt_tokens,
                        stats.generated,
                        stats.finish.as_str()
                    );
                }
            }
            Some(Event::Error(m)) => {
                out += &sse(&ApiError::new(500, "server_error", "generation_failed", m).body());
                out += "data: [DONE]\n\n";
                st.done = true;
            }
            None => {
                st.done = true;
            }
        }
        Some((Ok::<_, Infallible>(Bytes::from(out)), st))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecRequest {
    language: String,
    code: String,
    #[serde(default)]
    stdin: String,
    #[serde(default)]
    files: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    limits: ExecLimits,
}

/// Limits a request may ask for; each only tightens the server's cap.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExecLimits {
    fuel: Option<u64>,
    timeout_ms: Option<u64>,
    memory_bytes: Option<u64>,
    output_bytes: Option<usize>,
}

async fn exec_code(
    State(s): State<Arc<Shared>>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body(b, s.config.body_limit)?;
    let Some(exec) = s.exec()? else {
        return Err(ApiError::new(
            503,
            "server_error",
            "exec_unavailable",
            "the code interpreter is off (the runtime was started without --lang-dir)".into(),
        ));
    };
    let r: ExecRequest = api::parse_plain(&b)?;
    let lang = Language::parse(&r.language).ok_or_else(|| {
        ApiError::bad(
            "language",
            format!(
                "language: {:?} is not supported (python, javascript)",
                r.language
            ),
        )
    })?;
    let limits = r.limits.limits();
    let outcome = tokio::task::spawn_blocking(move || {
        exec.run(lang, &r.code, r.stdin.as_bytes(), &r.files, limits)
    })
    .await
    .map_err(|e| ApiError::new(500, "server_error", "exec_failed", e.to_string()))?
    .map_err(|m| {
        if m.contains("not installed") {
            ApiError::new(503, "server_error", "exec_unavailable", m)
        } else {
            ApiError::bad("files", m)
        }
    })?;
    let mut v = outcome_json(&outcome);
    v["language"] = json!(lang.name());
    Ok(Json(v).into_response())
}

/// A run's result as JSON (the shape /v1/exec and app runs share).
fn outcome_json(outcome: &llmos_sandbox::Outcome) -> Value {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    json!({
        "stdout": text(&outcome.stdout),
        "stderr": text(&outcome.stderr),
        "stdout_truncated": outcome.stdout_truncated,
        "stderr_truncated": outcome.stderr_truncated,
        "exit_code": outcome.exit_code,
        "trap": outcome.trap.as_ref().map(|t| json!({"kind": t.kind, "message": t.message})),
        "limit": outcome.limit.map(|l| l.as_str()),
        "error": outcome.error,
        "fuel_used": outcome.fuel_used,
        "duration_ms": outcome.duration.as_secs_f64() * 1e3,
    })
}

impl ExecLimits {
    fn limits(&self) -> llmos_sandbox::Limits {
        llmos_sandbox::Limits {
            fuel: self.fuel,
            wall_ms: self.timeout_ms,
            memory: self.memory_bytes,
            output: self.output_bytes,
        }
    }
}

/// The most arguments an app run may get.
const MAX_APP_ARGS: usize = 256;

async fn list_apps(State(s): State<Arc<Shared>>) -> Json<Value> {
    let mut data = Vec::new();
    if let Some(Some(exec)) = s.exec.get()
        && let Some(apps) = exec.apps()
    {
        for a in apps.list() {
            let m = &a.manifest;
            // What a run gets: the app's limits within the server's caps.
            let eff = exec.caps().apply(&m.limits);
            data.push(json!({
                "name": m.name,
                "version": m.version,
                "description": m.description,
                "entry": m.entry,
                "sha256": m.sha256,
                "size_bytes": a.size,
                "capabilities": {
                    "wasi": m.capabilities.wasi,
                    "data": m.capabilities.data,
                    "data_dir": m.capabilities.data.then_some(llmos_sandbox::manifest::DATA_DIR),
                    "scratch_dir": "/tmp",
                    "network": false,
                },
                "limits": {
                    "fuel": eff.fuel,
                    "timeout_ms": eff.wall.as_millis() as u64,
                    "memory_bytes": eff.memory,
                    "output_bytes": eff.output,
                },
                "signature": a.signature.as_str(),
                "signature_detail": match &a.signature {
                    crate::signature::Status::Verified(k) => json!({"key": k}),
                    crate::signature::Status::Unsigned => Value::Null,
                    crate::signature::Status::Invalid(why) => json!({"reason": why}),
                },
            }));
        }
    }
    Json(json!({ "object": "list", "data": data }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AppRunRequest {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    stdin: String,
    #[serde(default)]
    files: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    limits: ExecLimits,
}

async fn run_app(
    State(s): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body(b, s.config.body_limit)?;
    // An empty body runs the app with no arguments.
    let r: AppRunRequest = if b.iter().all(u8::is_ascii_whitespace) {
        api::parse_plain(b"{}")?
    } else {
        api::parse_plain(&b)?
    };
    if r.args.len() > MAX_APP_ARGS {
        return Err(ApiError::bad(
            "args",
            format!("at most {MAX_APP_ARGS} arguments, not {}", r.args.len()),
        ));
    }
    if r.args.iter().any(|a| a.contains('\0')) {
        return Err(ApiError::bad(
            "args",
            "an argument contains a NUL character",
        ));
    }
    let Some(exec) = s.exec()? else {
        return Err(ApiError::new(
            404,
            "invalid_request_error",
            "app_not_found",
            format!("no app named {name:?}: the runtime was started without --apps-dir"),
        ));
    };
    let limits = r.limits.limits();
    let app = name.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        exec.run_app(&app, &r.args, r.stdin.as_bytes(), &r.files, &limits)
    })
    .await
    .map_err(|e| ApiError::new(500, "server_error", "exec_failed", e.to_string()))?
    .map_err(|e| match e {
        AppError::NotFound(m) => ApiError::new(404, "invalid_request_error", "app_not_found", m),
        AppError::Bad(m) => ApiError::bad("files", m),
        AppError::Unavailable(m) => ApiError::new(503, "server_error", "app_unavailable", m),
    })?;
    let mut v = outcome_json(&outcome);
    v["app"] = json!(name);
    Ok(Json(v).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
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
            .oneshot(b.body(Body::from("{}")).unwrap())
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
