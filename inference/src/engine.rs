//! The model and generation on top of llama.cpp (through `llama-cpp-2`).

use std::io::Write;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;

use crate::utf8::Utf8Stream;

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
}

impl std::fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {:.1} M parameters, {}, context {}, {:.1} MiB of weights) loaded in {} ms",
            self.name,
            self.architecture,
            self.params as f64 / 1e6,
            self.quantization,
            self.context,
            self.size as f64 / (1 << 20) as f64,
            self.load_ms
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

/// Generation settings.
#[derive(Debug, Clone)]
pub struct Generate {
    /// Tokens to generate at most.
    pub max_tokens: u32,
    /// Context size.
    pub context: u32,
    /// Threads for generation and prompt processing.
    pub threads: i32,
}

/// Timing of one generation.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Time to process the prompt (ms).
    pub prompt_ms: f64,
    /// Generated tokens.
    pub generated: usize,
    /// Time to generate them (ms).
    pub generate_ms: f64,
    /// The generated token ids.
    pub tokens: Vec<i32>,
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
        };
        Ok(Self {
            backend,
            model,
            info,
        })
    }

    /// Greedy generation from a raw `prompt`, streaming text to `out`.
    pub fn generate(
        &self,
        prompt: &str,
        g: &Generate,
        out: &mut dyn Write,
    ) -> Result<Stats, String> {
        let vocab = self.model.vocab();
        let tokens = vocab.tokenize(prompt.as_bytes(), true, false);
        if tokens.is_empty() {
            return Err("the prompt is empty".into());
        }
        let needed = tokens.len() as u64 + u64::from(g.max_tokens);
        if needed > u64::from(g.context) {
            return Err(format!(
                "the prompt ({} tokens) plus max_tokens ({}) needs {needed} tokens, \
                 more than the context size ({})",
                tokens.len(),
                g.max_tokens,
                g.context
            ));
        }
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(g.context))
            .with_n_batch(g.context)
            .with_n_threads(g.threads)
            .with_n_threads_batch(g.threads);
        let mut ctx = self
            .model
            .new_context(&self.backend, params)
            .map_err(|e| format!("llama.cpp could not make a context: {e}"))?;
        let mut batch = LlamaBatch::new(g.context as usize, 1);
        let last = tokens.len() - 1;
        for (i, t) in tokens.iter().enumerate() {
            batch
                .add(*t, i as i32, &[0], i == last)
                .map_err(|e| e.to_string())?;
        }
        let start = Instant::now();
        ctx.decode(&mut batch).map_err(|e| format!("decode: {e}"))?;
        let mut stats = Stats {
            prompt_tokens: tokens.len(),
            prompt_ms: start.elapsed().as_secs_f64() * 1e3,
            ..Stats::default()
        };
        let mut sampler = LlamaSampler::greedy();
        let mut text = Utf8Stream::default();
        let first = tokens.len() as i32;
        let start = Instant::now();
        for pos in first..first + g.max_tokens as i32 {
            let t = sampler.sample(&ctx, batch.n_tokens() - 1);
            sampler.accept(t);
            if vocab.is_eog(t) {
                break;
            }
            stats.tokens.push(t.0);
            let piece = vocab.token_to_piece(t, false, None);
            let s = text.push(&piece);
            out.write_all(s.as_bytes()).map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
            batch.clear();
            batch.add(t, pos, &[0], true).map_err(|e| e.to_string())?;
            ctx.decode(&mut batch).map_err(|e| format!("decode: {e}"))?;
        }
        out.write_all(text.finish().as_bytes())
            .map_err(|e| e.to_string())?;
        stats.generated = stats.tokens.len();
        stats.generate_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_have_names() {
        assert_eq!(file_type(3), "Q4_1");
        assert_eq!(file_type(15), "Q4_K_M");
        assert_eq!(file_type(99), "file type 99");
    }
}
