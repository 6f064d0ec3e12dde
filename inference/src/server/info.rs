//! What the server tells about itself and its model: `/health`,
//! `/v1/models`, `/props`, `/metrics` (Prometheus text, built from one
//! table of metrics), and the tokenizer (`/tokenize`, `/detokenize`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiJson, ModelState, Shared, blocking, unix_now};
use crate::api::ApiError;
use crate::conn::Timeout;

pub(super) async fn health(State(s): State<Arc<Shared>>) -> Response {
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

pub(super) async fn models(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
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

pub(super) async fn props(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
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

/// One metric: name, kind, help, and its values by label set.
struct Metric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    values: Vec<(String, String)>,
}

/// A metric with one unlabelled value.
fn one(name: &'static str, kind: &'static str, help: &'static str, v: impl ToString) -> Metric {
    Metric {
        name,
        kind,
        help,
        values: vec![(String::new(), v.to_string())],
    }
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// `n` per second over `us` microseconds.
fn rate(n: u64, us: u64) -> String {
    let r = if us == 0 {
        0.0
    } else {
        n as f64 * 1e6 / us as f64
    };
    format!("{r:.3}")
}

/// The server's and the connections' metrics.
fn server_metrics(s: &Shared) -> Vec<Metric> {
    const C: &str = "counter";
    const G: &str = "gauge";
    let requests = s
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
    let cc = &s.conns.counters;
    vec![
        Metric {
            name: "llmos_http_requests_total",
            kind: C,
            help: "HTTP requests by route and status.",
            values: requests,
        },
        one(
            "llmos_uptime_seconds",
            G,
            "Seconds since the server started.",
            format!("{:.3}", s.started.elapsed().as_secs_f64()),
        ),
        one(
            "llmos_http_connections_open",
            G,
            "Connections open now.",
            s.conns.open(),
        ),
        one(
            "llmos_http_connections_max",
            G,
            "Connections allowed open at once.",
            s.conns.limits.max,
        ),
        one(
            "llmos_http_connections_total",
            C,
            "Connections accepted.",
            get(&cc.accepted),
        ),
        one(
            "llmos_http_connections_refused_total",
            C,
            "Connections answered 503 and closed at once: the cap was reached and every open connection was serving.",
            get(&cc.refused),
        ),
        one(
            "llmos_http_connections_evicted_total",
            C,
            "Connections closed at the cap to make room for a new one (one that sent least).",
            get(&cc.evicted),
        ),
        one(
            "llmos_http_connections_shed_total",
            C,
            "Stalled connections closed because unread replies held more than the server's budget.",
            get(&cc.shed),
        ),
        one(
            "llmos_http_pending_reply_bytes",
            G,
            "Reply bytes handed to connections and not yet written to their sockets.",
            s.conns.pending(),
        ),
        Metric {
            name: "llmos_http_connections_timed_out_total",
            kind: C,
            help: "Connections closed because headers, the next request or a body did not come in time, or the client read nothing of the reply.",
            values: Timeout::ALL
                .iter()
                .map(|t| {
                    (
                        format!("{{reason=\"{}\"}}", t.as_str()),
                        get(&cc.timed_out[*t as usize]).to_string(),
                    )
                })
                .collect(),
        },
        one(
            "llmos_requests_key_busy_total",
            C,
            "Requests refused with 429 because their key had as many requests in service as one key may.",
            get(&s.busy_keys),
        ),
        one(
            "llmos_requests_rate_limited_total",
            C,
            "Requests refused with 429 because their key went over its request rate.",
            get(&s.rate_limited),
        ),
        one(
            "llmos_runtime_restarts_total",
            C,
            "Times the kernel restarted the runtime after it died (since the machine booted).",
            s.restarts,
        ),
        one(
            "llmos_requests_queue_timeouts_total",
            C,
            "Requests answered 503 after waiting longer than the queue timeout for a slot.",
            get(&s.queue_timeouts),
        ),
        one(
            "llmos_model_loaded",
            G,
            "1 when the model is loaded and serving.",
            u8::from(matches!(s.model.get(), Some(ModelState::Ready(..)))),
        ),
    ]
}

/// The scheduler's metrics.
fn queue_metrics(q: &crate::queue::Queue) -> Vec<Metric> {
    const C: &str = "counter";
    const G: &str = "gauge";
    let c = &q.counters;
    let (waiting, busy) = q.load();
    let (pp, pp_us, cached) = (
        get(&c.prompt_tokens),
        get(&c.prompt_us),
        get(&c.cached_tokens),
    );
    let (generated, gen_us) = (get(&c.generated_tokens), get(&c.generate_us));
    vec![
        one(
            "llmos_generations_total",
            C,
            "Generations that ended normally.",
            get(&c.completed),
        ),
        one(
            "llmos_generations_failed_total",
            C,
            "Generations that failed.",
            get(&c.failed),
        ),
        one(
            "llmos_generations_cancelled_total",
            C,
            "Generations stopped because the client left.",
            get(&c.cancelled),
        ),
        one(
            "llmos_requests_rejected_total",
            C,
            "Requests refused with 429 because the queue was full.",
            get(&c.rejected),
        ),
        one(
            "llmos_prompt_tokens_total",
            C,
            "Prompt tokens of finished generations.",
            pp,
        ),
        one(
            "llmos_prompt_tokens_cached_total",
            C,
            "Prompt tokens taken from a slot's KV cache instead of evaluated.",
            cached,
        ),
        one(
            "llmos_prompt_cache_hits_total",
            C,
            "Generations whose prompt began with tokens already in a slot's KV cache.",
            get(&c.cache_hits),
        ),
        one(
            "llmos_prompt_cache_copies_total",
            C,
            "Of those, generations whose cached prefix was copied from another slot.",
            get(&c.cache_copies),
        ),
        one(
            "llmos_decode_steps_total",
            C,
            "Decode steps: one batch each, with the next token of every generating slot and prompt chunks.",
            get(&c.steps),
        ),
        one(
            "llmos_decode_step_tokens_total",
            C,
            "Tokens decoded in those steps (divided by the steps: the mean batch).",
            get(&c.step_tokens),
        ),
        one(
            "llmos_generated_tokens_total",
            C,
            "Generated tokens.",
            generated,
        ),
        one(
            "llmos_prompt_seconds_total",
            C,
            "Time spent evaluating prompts.",
            format!("{:.6}", pp_us as f64 / 1e6),
        ),
        one(
            "llmos_generate_seconds_total",
            C,
            "Time spent generating.",
            format!("{:.6}", gen_us as f64 / 1e6),
        ),
        one(
            "llmos_prompt_tokens_per_second",
            G,
            "Prompt tokens per second over all generations.",
            rate(pp.saturating_sub(cached), pp_us),
        ),
        one(
            "llmos_generate_tokens_per_second",
            G,
            "Generated tokens per second over all generations.",
            rate(generated, gen_us),
        ),
        one(
            "llmos_queue_depth",
            G,
            "Requests waiting for a slot.",
            waiting,
        ),
        one(
            "llmos_queue_capacity",
            G,
            "Requests allowed to wait.",
            q.capacity,
        ),
        one("llmos_slots_busy", G, "Slots generating.", busy),
        one("llmos_slots_total", G, "Sequence slots.", q.slots),
    ]
}

pub(super) async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    use std::fmt::Write;
    let mut table = server_metrics(&s);
    if let Some(ModelState::Ready(_, q)) = s.model.get() {
        table.extend(queue_metrics(q));
    }
    let mut m = String::new();
    for Metric {
        name,
        kind,
        help,
        values,
    } in table
    {
        let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in values {
            let _ = writeln!(m, "{name}{labels} {v}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m).into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct TokenizeRequest {
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

crate::plain_body!(TokenizeRequest, DetokenizeRequest);

/// The most tokens `/tokenize` shows with their pieces.
const MAX_PIECES: usize = 65_536;

pub(super) async fn tokenize(
    State(s): State<Arc<Shared>>,
    ApiJson(r): ApiJson<TokenizeRequest>,
) -> Result<Response, ApiError> {
    let (e, _) = s.ready()?;
    blocking(move || {
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
pub(super) struct DetokenizeRequest {
    tokens: Vec<i64>,
}

pub(super) async fn detokenize(
    State(s): State<Arc<Shared>>,
    ApiJson(r): ApiJson<DetokenizeRequest>,
) -> Result<Response, ApiError> {
    let (e, _) = s.ready()?;
    blocking(move || {
        let n_vocab = e.n_vocab();
        let ids = r
            .tokens
            .iter()
            .map(|&t| {
                i32::try_from(t).map_err(|_| crate::error::EngineError::NotInVocabulary {
                    field: "tokens",
                    token: t,
                    n_vocab,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let text = e.detokenize(&ids)?;
        Ok(Json(json!({ "content": text })).into_response())
    })
    .await
}
