//! The code interpreter and the apps over HTTP: `POST /v1/exec`,
//! `GET /v1/apps`, `POST /v1/apps/{name}/run`. Runs happen on blocking
//! threads, within the sandbox's caps ([`crate::exec`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiJson, Shared};
use crate::api::{self, ApiError};
use crate::apps::AppError;
use crate::exec::Language;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecRequest {
    language: String,
    code: String,
    #[serde(default)]
    stdin: String,
    #[serde(default)]
    files: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    limits: ExecLimits,
}

crate::plain_body!(ExecRequest);

/// Limits a request may ask for; each only tightens the server's cap.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExecLimits {
    fuel: Option<u64>,
    timeout_ms: Option<u64>,
    memory_bytes: Option<u64>,
    output_bytes: Option<usize>,
}

pub(super) async fn exec_code(
    State(s): State<Arc<Shared>>,
    ApiJson(r): ApiJson<ExecRequest>,
) -> Result<Response, ApiError> {
    let Some(exec) = s.exec()? else {
        return Err(ApiError::new(
            503,
            "server_error",
            "exec_unavailable",
            "the code interpreter is off (the runtime was started without --lang-dir)".into(),
        ));
    };
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

pub(super) async fn list_apps(State(s): State<Arc<Shared>>) -> Json<Value> {
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

pub(super) async fn run_app(
    State(s): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
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
