//! The OpenAI-compatible request and response shapes, and their checks.
//!
//! Everything here is plain data: a request body is parsed, every value's
//! range is checked and unsupported fields are refused by name before
//! anything reaches llama.cpp; responses are built as JSON. The HTTP side
//! is in [`crate::server`].

use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::Sampling;

/// An error in OpenAI's shape: `{"error": {"message", "type", "param",
/// "code"}}` with an HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// What went wrong, for people.
    pub message: String,
    /// OpenAI's error type.
    pub kind: &'static str,
    /// The request field at fault.
    pub param: Option<String>,
    /// A machine-readable code.
    pub code: Option<&'static str>,
}

impl ApiError {
    /// 400 about `param`.
    pub fn bad(param: &str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param: (!param.is_empty()).then(|| param.to_owned()),
            code: None,
        }
    }

    /// Any status with a type and code.
    pub fn new(status: u16, kind: &'static str, code: &'static str, message: String) -> Self {
        Self {
            status,
            message,
            kind,
            param: None,
            code: Some(code),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({ "error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl From<crate::error::EngineError> for ApiError {
    /// The one place an engine error gets its HTTP status and OpenAI type:
    /// what the request asked for wrongly is a 400 naming the field; what
    /// the server (its model, template or llama.cpp) could not do is a 500.
    fn from(e: crate::error::EngineError) -> Self {
        use crate::error::EngineError as E;
        let message = e.to_string();
        match e {
            E::EmptyPrompt => ApiError::bad("prompt", message),
            E::DoesNotFit { .. } => ApiError {
                code: Some("context_length_exceeded"),
                ..ApiError::bad("max_tokens", message)
            },
            E::NoRoom { .. } => ApiError {
                code: Some("context_length_exceeded"),
                ..ApiError::bad("messages", message)
            },
            E::NotInVocabulary { field, .. } => ApiError::bad(field, message),
            E::Sampling(m) => {
                let param = m.split_whitespace().next().unwrap_or("").to_owned();
                ApiError::bad(&param, m)
            }
            E::Grammar(_) => ApiError::bad("response_format", message),
            E::Conflict { field, .. } => ApiError::bad(field, message),
            E::BadMessage(_) => ApiError::bad("messages", message),
            E::Template(_) => ApiError::new(500, "server_error", "template_failed", message),
            E::NothingAllowed | E::Decode(_) | E::Internal(_) => {
                ApiError::new(500, "server_error", "generation_failed", message)
            }
        }
    }
}

impl From<crate::error::QueueError> for ApiError {
    fn from(e: crate::error::QueueError) -> Self {
        use crate::error::QueueError as Q;
        let message = e.to_string();
        match e {
            Q::Full { .. } => ApiError::new(429, "rate_limit_error", "queue_full", message),
            Q::NoSlot | Q::Stopped => {
                ApiError::new(503, "server_error", "model_unavailable", message)
            }
        }
    }
}

/// The largest `stop` list.
pub const MAX_STOPS: usize = 16;
/// The longest stop string, in bytes.
pub const MAX_STOP_LEN: usize = 256;

/// Generation fields shared by both completion endpoints.
#[derive(Debug, Default, Deserialize)]
pub struct Common {
    /// Ignored beyond being a string: one model is loaded.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    max_tokens: Option<i64>,
    #[serde(default)]
    max_completion_tokens: Option<i64>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    top_k: Option<i32>,
    #[serde(default)]
    min_p: Option<f32>,
    #[serde(default)]
    presence_penalty: Option<f32>,
    #[serde(default)]
    frequency_penalty: Option<f32>,
    #[serde(default)]
    repeat_penalty: Option<f32>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Stop>,
    /// Stream the reply as server-sent events.
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    logit_bias: Option<std::collections::BTreeMap<String, f32>>,
    /// llama-server's extension: never stop at an end-of-generation token.
    #[serde(default)]
    ignore_eos: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The generation settings a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `max_tokens`/`max_completion_tokens`, if given.
    pub max_tokens: Option<u32>,
    /// Sampling, starting from the server's defaults.
    pub sampling: Sampling,
    /// Stop strings.
    pub stops: Vec<String>,
    /// Stream?
    pub stream: bool,
    /// Send a usage chunk at the end of a stream.
    pub include_usage: bool,
    /// Generate `max_tokens` whatever the model would say.
    pub ignore_eos: bool,
}

impl Common {
    /// The settings, over the server's `defaults`; every range checked.
    pub fn settings(&self, defaults: &Sampling) -> Result<Settings, ApiError> {
        let max_tokens = match (self.max_completion_tokens, self.max_tokens) {
            (Some(n), _) => Some(("max_completion_tokens", n)),
            (None, Some(n)) => Some(("max_tokens", n)),
            (None, None) => None,
        };
        let max_tokens = match max_tokens {
            Some((name, n)) if !(1..=1 << 20).contains(&n) => {
                return Err(ApiError::bad(
                    name,
                    format!("{name} must be between 1 and 1048576, not {n}"),
                ));
            }
            Some((_, n)) => Some(n as u32),
            None => None,
        };
        let mut s = defaults.clone();
        if let Some(v) = self.temperature {
            s.temperature = v;
        }
        if let Some(v) = self.top_p {
            s.top_p = v;
        }
        if let Some(v) = self.top_k {
            s.top_k = v;
        }
        if let Some(v) = self.min_p {
            s.min_p = v;
        }
        if let Some(v) = self.presence_penalty {
            s.presence_penalty = v;
        }
        if let Some(v) = self.frequency_penalty {
            s.frequency_penalty = v;
        }
        if let Some(v) = self.repeat_penalty {
            s.repeat_penalty = v;
        }
        if let Some(map) = &self.logit_bias {
            s.logit_bias = map
                .iter()
                .map(|(k, &b)| {
                    k.parse::<i32>().map(|t| (t, b)).map_err(|_| {
                        ApiError::bad("logit_bias", format!("logit_bias: {k:?} is not a token id"))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = self.seed {
            // Any 64-bit seed; llama.cpp takes 32 bits.
            s.seed = (v as u64 ^ (v as u64 >> 32)) as u32;
        }
        s.validate().map_err(|m| {
            let param = m.split_whitespace().next().unwrap_or("");
            ApiError::bad(param, m.clone())
        })?;
        let stops = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stops.len() > MAX_STOPS {
            return Err(ApiError::bad(
                "stop",
                format!("stop: at most {MAX_STOPS} strings, not {}", stops.len()),
            ));
        }
        if let Some(s) = stops.iter().find(|s| s.len() > MAX_STOP_LEN) {
            return Err(ApiError::bad(
                "stop",
                format!(
                    "stop: a string of {} bytes is longer than {MAX_STOP_LEN}",
                    s.len()
                ),
            ));
        }
        Ok(Settings {
            max_tokens,
            sampling: s,
            stops,
            stream: self.stream,
            include_usage: self
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
            ignore_eos: self.ignore_eos,
        })
    }
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<Message>,
    /// The shared fields (parsed on their own, see [`parse`]).
    #[serde(skip)]
    pub common: Common,
    #[serde(default)]
    response_format: Option<ResponseFormat>,
}

/// One message of a conversation.
#[derive(Debug, Deserialize)]
pub struct Message {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    json_schema: Option<JsonSchema>,
}

#[derive(Debug, Deserialize)]
struct JsonSchema {
    #[serde(default)]
    schema: Option<Value>,
}

/// What `response_format` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching this schema.
    JsonSchema(String),
}

impl Format {
    /// The JSON schema to turn into a grammar, if any.
    pub fn schema(&self) -> Option<String> {
        match self {
            Format::Text => None,
            Format::JsonObject => Some(r#"{"type":"object"}"#.to_owned()),
            Format::JsonSchema(s) => Some(s.clone()),
        }
    }
}

impl ChatRequest {
    /// The messages as (role, text), roles checked.
    pub fn conversation(&self) -> Result<Vec<(String, String)>, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::bad("messages", "messages must not be empty"));
        }
        let mut out = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.iter().enumerate() {
            let param = format!("messages[{i}]");
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(ApiError::bad(
                        &format!("{param}.role"),
                        format!(
                            "{param}.role: {other:?} is not supported (system, developer, user, assistant)"
                        ),
                    ));
                }
            };
            let text = match &m.content {
                None if role == "assistant" => String::new(),
                None => {
                    return Err(ApiError::bad(
                        &format!("{param}.content"),
                        format!("{param}.content is missing"),
                    ));
                }
                Some(Content::Text(t)) => t.clone(),
                Some(Content::Parts(parts)) => {
                    let mut t = String::new();
                    for (j, p) in parts.iter().enumerate() {
                        match (p.kind.as_str(), &p.text) {
                            ("text", Some(s)) => t.push_str(s),
                            _ => {
                                return Err(ApiError::bad(
                                    &format!("{param}.content[{j}]"),
                                    format!(
                                        "{param}.content[{j}]: only text parts are supported, not {:?}",
                                        p.kind
                                    ),
                                ));
                            }
                        }
                    }
                    t
                }
            };
            out.push((role.to_owned(), text));
        }
        Ok(out)
    }

    /// The output format asked for.
    pub fn format(&self) -> Result<Format, ApiError> {
        let Some(f) = &self.response_format else {
            return Ok(Format::Text);
        };
        match f.kind.as_str() {
            "text" => Ok(Format::Text),
            "json_object" => Ok(Format::JsonObject),
            "json_schema" => match f.json_schema.as_ref().and_then(|s| s.schema.as_ref()) {
                Some(schema) if schema.is_object() => Ok(Format::JsonSchema(schema.to_string())),
                _ => Err(ApiError::bad(
                    "response_format.json_schema.schema",
                    "response_format.json_schema.schema must be a JSON schema object",
                )),
            },
            other => Err(ApiError::bad(
                "response_format.type",
                format!(
                    "response_format.type: {other:?} is not supported (text, json_object, json_schema)"
                ),
            )),
        }
    }
}

/// `POST /v1/completions`.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    prompt: PromptInput,
    /// The shared fields (parsed on their own, see [`parse`]).
    #[serde(skip)]
    pub common: Common,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PromptInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<i64>),
    TokenLists(Vec<Vec<i64>>),
}

/// A completion prompt: text, or token ids.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Text, tokenized with the beginning-of-sequence token.
    Text(String),
    /// Token ids as given.
    Tokens(Vec<i32>),
}

impl CompletionRequest {
    /// The one prompt (several prompts in one request are refused).
    pub fn prompt(&self) -> Result<Prompt, ApiError> {
        let several = || {
            ApiError::bad(
                "prompt",
                "prompt: one prompt per request is supported, not a list of several",
            )
        };
        let tokens = |v: &[i64]| -> Result<Prompt, ApiError> {
            v.iter()
                .map(|&t| {
                    i32::try_from(t).map_err(|_| {
                        ApiError::bad("prompt", format!("prompt: token {t} is out of range"))
                    })
                })
                .collect::<Result<_, _>>()
                .map(Prompt::Tokens)
        };
        match &self.prompt {
            PromptInput::Text(s) => Ok(Prompt::Text(s.clone())),
            PromptInput::Texts(v) if v.len() == 1 => Ok(Prompt::Text(v[0].clone())),
            PromptInput::Texts(_) => Err(several()),
            PromptInput::Tokens(v) => tokens(v),
            PromptInput::TokenLists(v) if v.len() == 1 => tokens(&v[0]),
            PromptInput::TokenLists(_) => Err(several()),
        }
    }
}

/// Fields that would change what a reply means and that llmos does not
/// do: a request that uses one is refused with a 400 naming it rather than
/// answered as if it were absent.
pub fn refuse_unsupported(body: &Value, chat: bool) -> Result<(), ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad("", "the request body must be a JSON object"));
    };
    let present = |k: &str| obj.get(k).filter(|v| !v.is_null());
    if let Some(n) = present("n")
        && n.as_u64() != Some(1)
    {
        return Err(ApiError::bad(
            "n",
            "n: only one choice per request is supported (n = 1)",
        ));
    }
    for k in ["tools", "functions"] {
        if let Some(v) = present(k)
            && v.as_array().is_none_or(|a| !a.is_empty())
        {
            return Err(ApiError::bad(
                k,
                format!("{k}: tool calling is not supported"),
            ));
        }
    }
    for k in ["tool_choice", "function_call"] {
        if let Some(v) = present(k)
            && v.as_str() != Some("none")
        {
            return Err(ApiError::bad(
                k,
                format!("{k}: tool calling is not supported"),
            ));
        }
    }
    if let Some(v) = present("logprobs")
        && v.as_bool() != Some(false)
    {
        return Err(ApiError::bad(
            "logprobs",
            "logprobs: log probabilities are not supported",
        ));
    }
    if present("top_logprobs").is_some() {
        return Err(ApiError::bad(
            "top_logprobs",
            "top_logprobs: log probabilities are not supported",
        ));
    }
    if !chat {
        if let Some(v) = present("echo")
            && v.as_bool() != Some(false)
        {
            return Err(ApiError::bad("echo", "echo is not supported"));
        }
        if let Some(v) = present("suffix")
            && v.as_str().is_none_or(|s| !s.is_empty())
        {
            return Err(ApiError::bad(
                "suffix",
                "suffix (fill-in-the-middle) is not supported",
            ));
        }
        if let Some(v) = present("best_of")
            && v.as_u64() != Some(1)
        {
            return Err(ApiError::bad("best_of", "best_of: only 1 is supported"));
        }
    }
    Ok(())
}

/// A request with the shared generation fields.
pub trait WithCommon {
    /// Where they go.
    fn common_mut(&mut self) -> &mut Common;
}

impl WithCommon for ChatRequest {
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl WithCommon for CompletionRequest {
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

/// Deserializes `value` into `T`, naming the failing field.
fn typed<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let param = if path == "." { String::new() } else { path };
        let inner = e.into_inner();
        let message = if param.is_empty() {
            format!("the request is not valid: {inner}")
        } else {
            format!("{param}: {inner}")
        };
        ApiError::bad(&param, message)
    })
}

/// Parses a JSON body that is not a completion request.
pub fn parse_plain<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    typed(json_value(body)?)
}

fn json_value(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("", format!("the request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad("", "the request body must be a JSON object"));
    }
    Ok(value)
}

/// Parses a completion request body: unsupported fields refused by name,
/// then the request and its shared fields, each failure naming the field.
pub fn parse<T: for<'de> Deserialize<'de> + WithCommon>(
    body: &[u8],
    chat: bool,
) -> Result<T, ApiError> {
    let value = json_value(body)?;
    refuse_unsupported(&value, chat)?;
    let common: Common = typed(value.clone())?;
    let mut r: T = typed(value)?;
    *r.common_mut() = common;
    Ok(r)
}

/// A request body: how it is parsed, with its fields' checks.
pub trait Body: Sized {
    /// Parses `body` (JSON), refusing unknown or unsupported fields by
    /// name.
    fn from_json(body: &[u8]) -> Result<Self, ApiError>;
}

impl Body for ChatRequest {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        parse(body, true)
    }
}

impl Body for CompletionRequest {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        parse(body, false)
    }
}

/// `Body` for types that [`parse_plain`] takes.
#[macro_export]
macro_rules! plain_body {
    ($($t:ty),* $(,)?) => {
        $(impl $crate::api::Body for $t {
            fn from_json(body: &[u8]) -> Result<Self, $crate::api::ApiError> {
                $crate::api::parse_plain(body)
            }
        })*
    };
}

/// `usage`.
pub fn usage(prompt: usize, completion: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<ChatRequest, ApiError> {
        parse(body.as_bytes(), true)
    }

    #[test]
    fn a_plain_chat_request_parses() {
        let r = chat(
            r#"{"model":"x","messages":[{"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"hi"}]}],
                "max_tokens":5,"temperature":0,"stop":"\n","seed":7,"n":1,"logprobs":false}"#,
        )
        .unwrap();
        assert_eq!(
            r.conversation().unwrap(),
            vec![
                ("system".into(), "be brief".into()),
                ("user".into(), "hi".into())
            ]
        );
        let s = r.common.settings(&Sampling::default()).unwrap();
        assert_eq!(s.max_tokens, Some(5));
        assert_eq!(s.stops, vec!["\n".to_owned()]);
        assert_eq!(s.sampling.seed, 7);
        assert!(!s.stream);
        assert_eq!(r.format().unwrap(), Format::Text);
    }

    #[test]
    fn bad_values_are_400s_that_name_the_field() {
        let cases = [
            (r#"{"messages":[]}"#, "messages"),
            (
                r#"{"messages":[{"role":"tool","content":"x"}]}"#,
                "messages[0].role",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"temperature":9}"#,
                "temperature",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"top_p":0}"#,
                "top_p",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
                "max_tokens",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}"#,
                "max_tokens",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
                "temperature",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"logit_bias":{"a":1}}"#,
                "logit_bias",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"logit_bias":{"5":1000}}"#,
                "logit_bias",
            ),
            (r#"{"messages":[{"role":"user","content":"x"}],"n":2}"#, "n"),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}"#,
                "tools",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"logprobs":true}"#,
                "logprobs",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}}"#,
                "response_format.type",
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
                "messages[0].content[0]",
            ),
        ];
        for (body, param) in cases {
            let err = chat(body)
                .and_then(|r| {
                    r.conversation()?;
                    r.format()?;
                    r.common.settings(&Sampling::default())
                })
                .expect_err(body);
            assert_eq!(err.status, 400, "{body}");
            assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
            assert!(err.message.contains(param), "{body}: {}", err.message);
        }
        let err = chat("{not json").unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        let err = chat("[1]").unwrap_err();
        assert!(err.message.contains("JSON object"), "{}", err.message);
    }

    #[test]
    fn response_formats() {
        let r = chat(r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#).unwrap();
        assert_eq!(r.format().unwrap(), Format::JsonObject);
        let r = chat(
            r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema",
               "json_schema":{"name":"p","schema":{"type":"object","properties":{"a":{"type":"integer"}}}}}}"#,
        )
        .unwrap();
        let Format::JsonSchema(s) = r.format().unwrap() else {
            panic!()
        };
        assert!(s.contains("integer"));
    }

    #[test]
    fn completion_prompts() {
        let p = |b: &str| parse::<CompletionRequest>(b.as_bytes(), false).and_then(|r| r.prompt());
        assert_eq!(p(r#"{"prompt":"hi"}"#).unwrap(), Prompt::Text("hi".into()));
        assert_eq!(
            p(r#"{"prompt":["hi"]}"#).unwrap(),
            Prompt::Text("hi".into())
        );
        assert_eq!(
            p(r#"{"prompt":[1,2]}"#).unwrap(),
            Prompt::Tokens(vec![1, 2])
        );
        assert_eq!(p(r#"{"prompt":[[3]]}"#).unwrap(), Prompt::Tokens(vec![3]));
        assert!(p(r#"{"prompt":["a","b"]}"#).is_err());
        assert!(p(r#"{"prompt":[99999999999]}"#).is_err());
        assert_eq!(
            p(r#"{"prompt":"x","echo":true}"#)
                .unwrap_err()
                .param
                .as_deref(),
            Some("echo")
        );
        assert!(p(r#"{}"#).is_err());
    }

    #[test]
    fn error_shape() {
        let b = ApiError::bad("top_p", "top_p: no").body();
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert_eq!(b["error"]["param"], "top_p");
        assert_eq!(b["error"]["message"], "top_p: no");
    }
}
