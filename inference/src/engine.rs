//! The model on top of llama.cpp (through `llama-cpp-2`): loading with
//! clear errors ([`Engine::load`]), chat templates with special tokens only
//! from the template ([`Engine::chat_tokens`]), tokens, the batched
//! context the scheduler runs on ([`crate::queue`]), sampling settings
//! checked in Rust ([`Sampling`]) and the per-token choice ([`Picker`]:
//! greedy in place, llama.cpp's chain, or a grammar's masked chain that
//! never lets llama.cpp accept a forbidden token). Generation itself is
//! the scheduler's; a job's checks are [`crate::job`]'s.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;

use crate::error::EngineError;

/// What the runtime says about a loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// `general.name`, or the file name.
    pub name: String,
    /// `general.architecture`.
    pub architecture: String,
    /// Parameters.
    pub params: u64,
    /// Weight type, from `general.file_type`.
    pub quantization: String,
    /// Context length it was trained with.
    pub context: u32,
    /// Bytes of tensors.
    pub size: u64,
    /// Load time in milliseconds.
    pub load_ms: u128,
    /// Whether the weights are mapped from the file (no bytes copied).
    pub mapped: bool,
}

impl std::fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {:.1} M parameters, {}, context {}, {:.1} MiB of weights) loaded in {} ms; {}",
            self.name,
            self.architecture,
            self.params as f64 / 1e6,
            self.quantization,
            self.context,
            self.size as f64 / (1 << 20) as f64,
            self.load_ms,
            if self.mapped {
                "mapped from the file, 0 bytes copied (llama.cpp may still repack some weight types)".to_owned()
            } else {
                format!("{} bytes copied", self.size)
            }
        )
    }
}

/// llama.cpp's `llama_ftype` names (`general.file_type`).
fn file_type(t: u32) -> String {
    let name = match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return format!("file type {t}"),
    };
    name.to_owned()
}

/// A loaded model.
pub struct Engine {
    backend: LlamaBackend,
    model: LlamaModel,
    /// What was loaded.
    pub info: ModelInfo,
}

/// Sampling settings; ranges are checked by [`Sampling::validate`] before
/// anything reaches llama.cpp.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 means greedy (the most likely token every time).
    pub temperature: f32,
    /// Keep the k most likely tokens (0: all).
    pub top_k: i32,
    /// Nucleus sampling (1: off).
    pub top_p: f32,
    /// Drop tokens below this fraction of the best one (0: off).
    pub min_p: f32,
    /// Repetition penalty (1: off).
    pub repeat_penalty: f32,
    /// OpenAI-style frequency penalty (0: off).
    pub frequency_penalty: f32,
    /// OpenAI-style presence penalty (0: off).
    pub presence_penalty: f32,
    /// Tokens the penalties look back over.
    pub penalty_last_n: i32,
    /// Seed of the random choice (with temperature > 0).
    pub seed: u32,
    /// Added to the logits of these tokens (OpenAI's `logit_bias`).
    pub logit_bias: Vec<(i32, f32)>,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
            logit_bias: Vec::new(),
        }
    }
}

impl Sampling {
    /// Checks every value's range; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_owned()) };
        check(
            self.temperature.is_finite() && (0.0..=5.0).contains(&self.temperature),
            "temperature must be between 0 and 5",
        )?;
        check(self.top_k >= 0, "top_k must be 0 (off) or more")?;
        check(
            self.top_p > 0.0 && self.top_p <= 1.0,
            "top_p must be above 0 and at most 1",
        )?;
        check(
            (0.0..=1.0).contains(&self.min_p),
            "min_p must be between 0 and 1",
        )?;
        check(
            self.repeat_penalty > 0.0 && self.repeat_penalty <= 10.0,
            "repeat_penalty must be above 0 and at most 10",
        )?;
        check(
            (-2.0..=2.0).contains(&self.frequency_penalty),
            "frequency_penalty must be between -2 and 2",
        )?;
        check(
            (-2.0..=2.0).contains(&self.presence_penalty),
            "presence_penalty must be between -2 and 2",
        )?;
        check(
            (-1..=1 << 20).contains(&self.penalty_last_n),
            "penalty_last_n must be between -1 (the whole context) and 1048576",
        )?;
        check(
            self.logit_bias
                .iter()
                .all(|(t, b)| *t >= 0 && (b.is_finite() && (-100.0..=100.0).contains(b))),
            "logit_bias must map token ids to biases between -100 and 100",
        )
    }

    /// What picks each next token for these settings, constrained by
    /// `grammar` (GBNF, root rule `root`) when given: plain greedy decoding
    /// (temperature 0; no logit bias, grammar or penalty of the caller's)
    /// reads the logits in place, anything else runs llama.cpp's sampler
    /// chain.
    pub(crate) fn sampler(
        &self,
        model: &LlamaModel,
        grammar: Option<&str>,
        ignore_eos: bool,
    ) -> Result<Picker, EngineError> {
        if self.temperature == 0.0
            && self.logit_bias.is_empty()
            && grammar.is_none()
            && !self.penalties()
        {
            let vocab = model.vocab();
            let banned = if ignore_eos {
                (0..model.n_vocab())
                    .filter(|&t| vocab.is_eog(LlamaToken(t)))
                    .collect()
            } else {
                Vec::new()
            };
            return Ok(Picker::Greedy { banned });
        }
        self.chain(model, grammar, ignore_eos)
    }

    /// Whether any repetition penalty is on.
    fn penalties(&self) -> bool {
        self.repeat_penalty != 1.0 || self.frequency_penalty != 0.0 || self.presence_penalty != 0.0
    }

    /// The llama.cpp sampler chain for these settings; with a grammar, in
    /// two parts (see [`Picker::Grammar`]).
    fn chain(
        &self,
        model: &LlamaModel,
        grammar: Option<&str>,
        ignore_eos: bool,
    ) -> Result<Picker, EngineError> {
        let mut chain = Vec::new();
        let n_vocab = model.n_vocab();
        let mut biases = Vec::new();
        for &(t, b) in &self.logit_bias {
            if t >= n_vocab {
                return Err(EngineError::NotInVocabulary {
                    field: "logit_bias",
                    token: i64::from(t),
                    n_vocab,
                });
            }
            biases.push(LlamaLogitBias::new(LlamaToken(t), b));
        }
        if ignore_eos {
            let vocab = model.vocab();
            for t in 0..n_vocab {
                if vocab.is_eog(LlamaToken(t)) {
                    biases.push(LlamaLogitBias::new(LlamaToken(t), f32::NEG_INFINITY));
                }
            }
        }
        if !biases.is_empty() {
            chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
        }
        let mut mask = None;
        if let Some(g) = grammar {
            crate::schema::check_gbnf(g).map_err(EngineError::Grammar)?;
            chain.push(
                LlamaSampler::grammar(model, g, "root")
                    .map_err(|e| EngineError::Grammar(format!("the grammar was rejected: {e}")))?,
            );
            mask = Some(LlamaSampler::chain_simple(std::mem::take(&mut chain)));
        }
        if self.penalties() {
            chain.push(LlamaSampler::penalties(
                n_vocab,
                self.penalty_last_n,
                self.repeat_penalty,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if self.temperature == 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if self.top_k > 0 {
                chain.push(LlamaSampler::top_k(self.top_k));
            }
            chain.push(LlamaSampler::top_p(self.top_p, 1));
            chain.push(LlamaSampler::min_p(self.min_p, 1));
            chain.push(LlamaSampler::temp(self.temperature));
            chain.push(LlamaSampler::dist(self.seed));
        }
        let pick = LlamaSampler::chain_simple(chain);
        Ok(match mask {
            None => Picker::Chain(pick),
            Some(mask) => Picker::Grammar {
                mask,
                pick,
                candidates: LlamaTokenDataArray::new(Vec::new(), false),
            },
        })
    }
}

/// Picks the next token from a context's logits.
pub(crate) enum Picker {
    /// Greedy decoding without llama.cpp's chain, which copies all n_vocab
    /// logits into a candidate array at every token (about 1 % of a
    /// generation step for a 49 k vocabulary): the first token with the
    /// highest logit, `banned` ones (sorted; the end-of-generation tokens
    /// under `ignore_eos`) biased by -inf first. The same token as the
    /// chain `logit_bias` + `greedy` gives, ties and NaN included.
    Greedy {
        /// Token ids whose logit gets -inf.
        banned: Vec<i32>,
    },
    /// llama.cpp's sampler chain.
    Chain(LlamaSampler),
    /// A grammar's chain, in two parts, so that llama.cpp never aborts:
    /// `mask` (logit bias and the grammar) rules tokens out, and only when
    /// some token is left does `pick` (penalties, then greedy or the random
    /// draw) choose one, which both then accept (llama.cpp's grammar aborts
    /// the process when it is made to accept a token it does not allow,
    /// which happens when a grammar allows nothing at all).
    Grammar {
        /// Logit bias and the grammar.
        mask: LlamaSampler,
        /// Penalties and the choice.
        pick: LlamaSampler,
        /// The candidates, kept between tokens.
        candidates: LlamaTokenDataArray,
    },
}

impl Picker {
    /// The next token from the logits of batch entry `idx`, or why none
    /// can follow.
    pub(crate) fn sample(
        &mut self,
        ctx: &LlamaContext<'_>,
        idx: i32,
    ) -> Result<LlamaToken, EngineError> {
        match self {
            Self::Chain(s) => Ok(s.sample(ctx, idx)),
            Self::Greedy { banned } => Ok(LlamaToken(greedy(ctx.get_logits_ith(idx), banned))),
            Self::Grammar {
                mask,
                pick,
                candidates,
            } => {
                let c = candidates;
                c.data.clear();
                c.data.extend(
                    ctx.get_logits_ith(idx)
                        .iter()
                        .enumerate()
                        .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
                );
                c.selected = None;
                c.sorted = false;
                c.apply_sampler(mask);
                if !c.data.iter().any(|d| d.logit() > f32::NEG_INFINITY) {
                    return Err(EngineError::NothingAllowed);
                }
                c.apply_sampler(pick);
                let t = c
                    .selected_token()
                    .filter(|t| allowed(c, *t))
                    .ok_or(EngineError::NothingAllowed)?;
                mask.try_accept(t)
                    .and_then(|()| pick.try_accept(t))
                    .map_err(|e| {
                        EngineError::Internal(format!(
                            "the grammar did not take the sampled token: {e}"
                        ))
                    })?;
                Ok(t)
            }
        }
    }
}

/// Whether `t` survived the mask in `c` (a finite logit).
fn allowed(c: &LlamaTokenDataArray, t: LlamaToken) -> bool {
    c.data
        .iter()
        .find(|d| d.id() == t)
        .is_some_and(|d| d.logit() > f32::NEG_INFINITY)
}

/// The index of the first greatest of `logits` after adding -inf to the
/// `banned` (sorted) ones, compared as llama.cpp's greedy sampler does
/// (strictly greater replaces, starting from index 0).
fn greedy(logits: &[f32], banned: &[i32]) -> i32 {
    let mut next_banned = banned.iter().copied().peekable();
    let mut value = |i: usize, l: f32| {
        while next_banned.next_if(|&b| (b as usize) < i).is_some() {}
        if next_banned.peek() == Some(&(i as i32)) {
            l + f32::NEG_INFINITY
        } else {
            l
        }
    };
    let Some(&first) = logits.first() else {
        return 0;
    };
    let (mut best, mut best_value) = (0usize, value(0, first));
    for (i, &l) in logits.iter().enumerate().skip(1) {
        let v = value(i, l);
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best as i32
}

/// A grammar for output matching a JSON schema (`{"type":"object"}` for
/// any object), made by llama.cpp's converter.
pub fn json_grammar(schema: &str) -> Result<String, EngineError> {
    let v: serde_json::Value = serde_json::from_str(schema)
        .map_err(|e| EngineError::Grammar(format!("the JSON schema is not JSON: {e}")))?;
    crate::schema::check(&v).map_err(EngineError::Grammar)?;
    let g = llama_cpp_2::json_schema_to_grammar(schema).map_err(|e| {
        EngineError::Grammar(format!(
            "the JSON schema could not be turned into a grammar ({e}); check that it is valid"
        ))
    })?;
    crate::schema::check_gbnf(&g).map_err(EngineError::Grammar)?;
    Ok(g)
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Finish {
    /// The model ended its turn, or a stop string came.
    #[default]
    Stop,
    /// `max_tokens` were generated.
    Length,
    /// The sink refused more text, or the job was cancelled (Ctrl-C on
    /// the console, a client that left).
    Cancelled,
}

impl Finish {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::Cancelled => "cancelled",
        }
    }
}

/// Timing of one generation.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Of which taken from the cache (not evaluated again).
    pub reused_tokens: usize,
    /// Time to process the prompt (ms).
    pub prompt_ms: f64,
    /// Generated tokens.
    pub generated: usize,
    /// Time to generate them (ms).
    pub generate_ms: f64,
    /// The generated token ids.
    pub tokens: Vec<i32>,
    /// Why it ended.
    pub finish: Finish,
}

impl Engine {
    /// Loads the GGUF at `path` (checked first, so a bad file gets a clear
    /// reason).
    pub fn load(path: &Path) -> Result<Self, String> {
        crate::gguf::check_file(path)?;
        let mut backend = LlamaBackend::init().map_err(|e| format!("llama.cpp: {e}"))?;
        if std::env::var_os("LLMOS_LLAMA_LOG").is_none() {
            backend.void_logs();
        }
        let start = Instant::now();
        let model = LlamaModel::load_from_file(&backend, path, &LlamaModelParams::default())
            .map_err(|e| {
                format!(
                    "llama.cpp could not load {}: {e} (unsupported architecture or a corrupt \
                     file; set LLMOS_LLAMA_LOG=1 to see llama.cpp's log)",
                    path.display()
                )
            })?;
        let load_ms = start.elapsed().as_millis();
        let meta = |k: &str| model.meta_val_str(k).ok();
        let info = ModelInfo {
            name: meta("general.name").unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }),
            architecture: meta("general.architecture").unwrap_or_else(|| "?".into()),
            params: model.n_params(),
            quantization: meta("general.file_type")
                .and_then(|t| t.parse().ok())
                .map_or_else(|| "?".into(), file_type),
            context: model.n_ctx_train(),
            size: model.size(),
            load_ms,
            // llama.cpp maps the file when the platform can (the default).
            mapped: llama_cpp_2::mmap_supported(),
        };
        Ok(Self {
            backend,
            model,
            info,
        })
    }

    /// One context shared by `slots` sequences (ids `0..slots`), each with
    /// its own `context` tokens of KV cache (llama.cpp's per-sequence
    /// streams, as llama-server's `--parallel` uses), decoding batches of
    /// up to `batch` tokens with `threads` threads.
    pub(crate) fn batched_context(
        &self,
        context: u32,
        slots: u32,
        batch: u32,
        threads: i32,
    ) -> Result<LlamaContext<'_>, EngineError> {
        let total = context.checked_mul(slots).ok_or_else(|| {
            EngineError::Internal("the context times the slots is too large".into())
        })?;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(total))
            .with_n_seq_max(slots)
            .with_kv_unified(false)
            .with_n_batch(batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        self.model
            .new_context(&self.backend, params)
            .map_err(|e| EngineError::Internal(format!("llama.cpp could not make a context: {e}")))
    }

    /// The model.
    pub(crate) fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// The prompt text for `messages`.
    pub fn format_chat(
        &self,
        messages: &[(String, String)],
        template: Option<&str>,
    ) -> Result<String, EngineError> {
        let tmpl = match template {
            Some(t) => LlamaChatTemplate::new(t)
                .map_err(|e| EngineError::Template(format!("--chat-template: {e}")))?,
            None => self.model.chat_template(None).map_err(|_| {
                EngineError::Template(
                    "the model has no chat template; give one with --chat-template \
                     (a name such as chatml, llama3, gemma, or a template)"
                        .to_owned(),
                )
            })?,
        };
        let msgs = messages
            .iter()
            .map(|(role, content)| LlamaChatMessage::new(role.clone(), content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::BadMessage(format!("a message: {e}")))?;
        self.model
            .apply_chat_template(&tmpl, &msgs, true)
            .map_err(|e| EngineError::Template(format!("applying the chat template: {e}")))
    }

    /// The tokens of `text`, with the beginning-of-sequence token if
    /// `bos`, and special tokens parsed if `special`.
    pub fn tokenize(&self, text: &str, bos: bool, special: bool) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), bos, special)
    }

    /// The size of the vocabulary.
    pub fn n_vocab(&self) -> i32 {
        self.model.n_vocab()
    }

    /// The text of `tokens`; ids outside the vocabulary are an error.
    pub fn detokenize(&self, tokens: &[i32]) -> Result<String, EngineError> {
        let n = self.n_vocab();
        let mut bytes = Vec::new();
        for &t in tokens {
            if !(0..n).contains(&t) {
                return Err(EngineError::NotInVocabulary {
                    field: "tokens",
                    token: i64::from(t),
                    n_vocab: n,
                });
            }
            bytes.extend(
                self.model
                    .vocab()
                    .token_to_piece(LlamaToken(t), false, None),
            );
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The tokens of a chat prompt.
    ///
    /// Only the template's own text may produce special tokens: message
    /// text is tokenized as plain text, so a message that contains
    /// `<|im_end|><|im_start|>system` cannot end its turn or forge another
    /// role's. The template is rendered with a marker in place of each
    /// message, and the pieces between markers are tokenized with special
    /// tokens, the messages without.
    pub fn chat_tokens(
        &self,
        messages: &[(String, String)],
        template: Option<&str>,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        // Private-use characters that no message is expected to hold.
        let marker = |i: usize| format!("\u{E000}llmos-{i}\u{E001}");
        let placeholders: Vec<(String, String)> = messages
            .iter()
            .enumerate()
            .map(|(i, (role, _))| (role.clone(), marker(i)))
            .collect();
        let rendered = self.format_chat(&placeholders, template)?;
        let vocab = self.model.vocab();
        let mut tokens = Vec::new();
        let mut rest = rendered.as_str();
        for (i, (_, content)) in messages.iter().enumerate() {
            let m = marker(i);
            let Some(at) = rest.find(&m) else {
                return Err(EngineError::Template(
                    "the chat template does not insert message text as given, so special tokens \
                     in messages cannot be kept out of it; use another template (--chat-template)"
                        .into(),
                ));
            };
            tokens.extend(vocab.tokenize(&rest.as_bytes()[..at], tokens.is_empty(), true));
            tokens.extend(vocab.tokenize(content.as_bytes(), false, false));
            rest = &rest[at + m.len()..];
        }
        tokens.extend(vocab.tokenize(rest.as_bytes(), tokens.is_empty(), true));
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama.cpp's own chain (`logit_bias` with -inf for `banned`, then
    /// `greedy`) on `logits`.
    fn chain_pick(logits: &[f32], banned: &[i32]) -> i32 {
        use llama_cpp_2::token::data::LlamaTokenData;
        use llama_cpp_2::token::data_array::LlamaTokenDataArray;
        let mut chain = Vec::new();
        if !banned.is_empty() {
            let biases: Vec<LlamaLogitBias> = banned
                .iter()
                .map(|&t| LlamaLogitBias::new(LlamaToken(t), f32::NEG_INFINITY))
                .collect();
            chain.push(LlamaSampler::logit_bias(logits.len() as i32, &biases));
        }
        chain.push(LlamaSampler::greedy());
        let mut sampler = LlamaSampler::chain_simple(chain);
        let mut data = LlamaTokenDataArray::from_iter(
            logits
                .iter()
                .enumerate()
                .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
            false,
        );
        sampler.apply(&mut data);
        data.selected_token().expect("greedy selects a token").0
    }

    #[test]
    fn the_fast_greedy_pick_is_llama_cpps_greedy_pick() {
        // Seeded pseudo-random logits (xorshift) with ties, infinities and
        // NaN mixed in, with and without banned tokens.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..200 {
            let n = 1 + (next() % 300) as usize;
            let mut logits: Vec<f32> = (0..n)
                .map(|_| ((next() % 2000) as f32 - 1000.0) / 64.0)
                .collect();
            match case % 5 {
                1 => logits[(next() as usize) % n] = f32::INFINITY,
                2 => logits[(next() as usize) % n] = f32::NAN,
                3 => {
                    let m = logits.iter().copied().fold(f32::MIN, f32::max);
                    logits[(next() as usize) % n] = m; // a tie for the top
                }
                _ => {}
            }
            let mut banned: Vec<i32> = (0..(next() % 6))
                .map(|_| (next() % n as u64) as i32)
                .collect();
            if case % 7 == 0 {
                // Ban the best ones, even all of them.
                banned.extend(0..n.min(3) as i32);
            }
            banned.sort_unstable();
            banned.dedup();
            assert_eq!(
                greedy(&logits, &banned),
                chain_pick(&logits, &banned),
                "case {case}: {logits:?} banned {banned:?}"
            );
            assert_eq!(
                greedy(&logits, &[]),
                chain_pick(&logits, &[]),
                "case {case}"
            );
        }
        assert_eq!(greedy(&[], &[]), 0);
    }

    #[test]
    fn sampling_ranges_are_checked_before_llama_cpp() {
        Sampling::default().validate().unwrap();
        let bad = [
            Sampling {
                temperature: -1.0,
                ..Sampling::default()
            },
            Sampling {
                temperature: f32::NAN,
                ..Sampling::default()
            },
            Sampling {
                top_p: 0.0,
                ..Sampling::default()
            },
            Sampling {
                min_p: 1.5,
                ..Sampling::default()
            },
            Sampling {
                repeat_penalty: 0.0,
                ..Sampling::default()
            },
            Sampling {
                presence_penalty: 3.0,
                ..Sampling::default()
            },
            Sampling {
                top_k: -2,
                ..Sampling::default()
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
    }

    #[test]
    fn file_types_have_names() {
        assert_eq!(file_type(3), "Q4_1");
        assert_eq!(file_type(15), "Q4_K_M");
        assert_eq!(file_type(99), "file type 99");
    }
}
