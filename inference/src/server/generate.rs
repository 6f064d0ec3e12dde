//! `POST /v1/chat/completions` and `POST /v1/completions`: a request
//! becomes a [`Job`] (parsed and templated off the HTTP thread, checked
//! once), goes to the scheduler, and its text comes back through a
//! [`ChannelSink`] as one JSON reply or as server-sent events.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{ApiJson, Shared, Tokens, blocking, unix_now};
use crate::api::{self, ApiError, Format, Prompt, Settings};
use crate::engine::{Engine, Stats, json_grammar};
use crate::error::EngineError;
use crate::job::{Class, Job, MaxTokens, Request, Sink};
use crate::queue::Queue;

/// What the scheduler tells a request's handler.
enum Event {
    /// The next piece of text.
    Text(String),
    /// The end.
    Done(Result<Stats, EngineError>),
}

/// A job's sink for the API: pieces go over a channel to the handler; a
/// handler that is gone (the client left) stops the generation.
struct ChannelSink(mpsc::UnboundedSender<Event>);

impl Sink for ChannelSink {
    fn piece(&mut self, text: &str) -> ControlFlow<()> {
        match self.0.send(Event::Text(text.to_owned())) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    fn done(&mut self, result: Result<Stats, EngineError>) {
        let _ = self.0.send(Event::Done(result));
    }
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

/// A job for `tokens` as `settings` and `format` ask, and where its text
/// will come.
fn job(
    s: &Shared,
    e: &Engine,
    tokens: Vec<llama_cpp_2::token::LlamaToken>,
    settings: &Settings,
    format: &Format,
) -> Result<(Job, mpsc::UnboundedReceiver<Event>), ApiError> {
    let grammar = format.schema().map(|g| json_grammar(&g)).transpose()?;
    let request = Request {
        tokens,
        max_tokens: match settings.max_tokens {
            Some(m) => MaxTokens::Exactly(m),
            None => MaxTokens::UpTo(s.config.max_tokens),
        },
        sampling: settings.sampling.clone(),
        stops: settings.stops.clone(),
        grammar,
        ignore_eos: settings.ignore_eos,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let job = Job::new(
        e,
        request,
        s.config.context,
        Box::new(ChannelSink(tx)),
        Class::Api,
    )?;
    Ok((job, rx))
}

pub(super) async fn chat_completions(
    State(s): State<Arc<Shared>>,
    ApiJson(r): ApiJson<api::ChatRequest>,
) -> Result<Response, ApiError> {
    let (e, q) = s.ready()?;
    let s2 = s.clone();
    let (j, rx, settings) = blocking(move || {
        let messages = r.conversation()?;
        let format = r.format()?;
        let settings = r.common.settings(&s2.config.sampling)?;
        let tokens = e.chat_tokens(&messages, s2.config.chat_template.as_deref())?;
        let (j, rx) = job(&s2, e, tokens, &settings, &format)?;
        Ok((j, rx, settings))
    })
    .await?;
    run(&s, q, j, rx, settings, true).await
}

pub(super) async fn completions(
    State(s): State<Arc<Shared>>,
    ApiJson(r): ApiJson<api::CompletionRequest>,
) -> Result<Response, ApiError> {
    let (e, q) = s.ready()?;
    let s2 = s.clone();
    let (j, rx, settings) = blocking(move || {
        let settings = r.common.settings(&s2.config.sampling)?;
        let tokens = match r.prompt()? {
            Prompt::Text(t) => e.tokenize(&t, true, false),
            Prompt::Tokens(ids) => ids
                .into_iter()
                .map(llama_cpp_2::token::LlamaToken)
                .collect(),
        };
        let (j, rx) = job(&s2, e, tokens, &settings, &Format::Text)?;
        Ok((j, rx, settings))
    })
    .await?;
    run(&s, q, j, rx, settings, false).await
}

/// Queues the job and answers, streaming or not.
async fn run(
    s: &Arc<Shared>,
    q: &Arc<Queue>,
    mut job: Job,
    rx: mpsc::UnboundedReceiver<Event>,
    settings: Settings,
    chat: bool,
) -> Result<Response, ApiError> {
    let guard = CancelOnDrop(job.cancel.clone());
    let (admitted_tx, admitted) = tokio::sync::oneshot::channel();
    job.admitted = Some(admitted_tx);
    q.submit(job)?;
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
    if settings.stream {
        Ok(stream(
            reply,
            rx,
            guard,
            settings.include_usage,
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

/// The generation's end, or the error it ended with.
fn ended(e: Option<Event>) -> Result<Stats, ApiError> {
    match e {
        Some(Event::Done(Ok(st))) => Ok(st),
        Some(Event::Done(Err(e))) => Err(e.into()),
        Some(Event::Text(_)) | None => Err(ApiError::new(
            500,
            "server_error",
            "generation_failed",
            "the generation ended without a result".into(),
        )),
    }
}

async fn whole(
    reply: Reply,
    mut rx: mpsc::UnboundedReceiver<Event>,
    _guard: CancelOnDrop,
) -> Result<Response, ApiError> {
    let mut text = String::new();
    let stats = loop {
        match rx.recv().await {
            Some(Event::Text(t)) => text.push_str(&t),
            other => break ended(other)?,
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

fn event(v: &Value) -> SseEvent {
    SseEvent::default().data(v.to_string())
}

impl Streaming {
    /// The events for what the generation did next (`None` at the end).
    async fn next(&mut self) -> Option<Vec<SseEvent>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if self.first && self.reply.chat {
            // OpenAI's first chunk names the role.
            let c = self.reply.choice(Some(""), None, true, true);
            out.push(event(&self.reply.wrap(json!([c]), true)));
        }
        self.first = false;
        match self.rx.recv().await {
            Some(Event::Text(t)) => {
                let c = self.reply.choice(Some(&t), None, true, false);
                out.push(event(&self.reply.wrap(json!([c]), true)));
            }
            other => {
                self.done = true;
                match ended(other) {
                    Ok(stats) => self.end(&stats, &mut out),
                    Err(e) => out.push(event(&e.body())),
                }
                out.push(SseEvent::default().data("[DONE]"));
            }
        }
        Some(out)
    }

    fn end(&self, stats: &Stats, out: &mut Vec<SseEvent>) {
        let end = self
            .reply
            .choice(None, Some(stats.finish.as_str()), true, false);
        out.push(event(&self.reply.wrap(json!([end]), true)));
        if self.include_usage {
            let mut u = self.reply.wrap(json!([]), true);
            u["usage"] = api::usage(stats.prompt_tokens, stats.generated);
            out.push(event(&u));
        }
        if self.log {
            eprintln!(
                "api: stream {} ended after {} ms: {}+{} tokens, {}",
                self.reply.id,
                self.started.elapsed().as_millis(),
                stats.prompt_tokens,
                stats.generated,
                stats.finish.as_str()
            );
        }
    }
}

/// Server-sent events, with a keep-alive comment when the generation is
/// quiet (a long prompt under TCG), so proxies keep the connection.
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
    let events =
        futures_util::stream::unfold(
            st,
            |mut st| async move { st.next().await.map(|evs| (evs, st)) },
        )
        .flat_map(futures_util::stream::iter)
        .map(Ok::<_, std::convert::Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
