//! The runtime's errors as values, one enum per layer: [`EngineError`] for
//! what a generation can run into (a request that can't be served as
//! asked, or llama.cpp failing), [`QueueError`] for getting a job to a
//! slot. The HTTP layer maps both to statuses and OpenAI error types in one
//! place (`impl From<…> for ApiError` in [`crate::api`]).

use std::fmt;

/// Why a generation could not start or did not finish.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineError {
    /// The prompt has no tokens.
    EmptyPrompt,
    /// The prompt plus `max_tokens` exceed the context.
    DoesNotFit {
        /// Prompt tokens.
        prompt: usize,
        /// Tokens asked for.
        max_tokens: u32,
        /// The context size.
        context: u32,
    },
    /// The prompt leaves no room in the context for a reply.
    NoRoom {
        /// Prompt tokens.
        prompt: usize,
        /// The context size.
        context: u32,
    },
    /// A token id outside the vocabulary, in `field`.
    NotInVocabulary {
        /// The request field (`prompt`, `logit_bias`, `tokens`).
        field: &'static str,
        /// The id.
        token: i64,
        /// The vocabulary's size.
        n_vocab: i32,
    },
    /// A sampling value out of range; the message starts with its name.
    Sampling(String),
    /// The grammar or the JSON schema it came from is refused.
    Grammar(String),
    /// Settings that can't go together.
    Conflict {
        /// The field at fault.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A message the template can't take (a NUL byte in it).
    BadMessage(String),
    /// The chat template can't be applied (the model's or `--chat-template`).
    Template(String),
    /// The grammar allows no token at some point of the generation.
    NothingAllowed,
    /// llama.cpp failed to decode a batch.
    Decode(String),
    /// llama.cpp could not make what the runtime asked for (a context, a
    /// sampler); or a bug.
    Internal(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::EmptyPrompt => f.write_str("the prompt is empty"),
            EngineError::DoesNotFit {
                prompt,
                max_tokens,
                context,
            } => write!(
                f,
                "the prompt ({prompt} tokens) plus max_tokens ({max_tokens}) needs {} tokens, more than the context size ({context})",
                *prompt as u64 + u64::from(*max_tokens)
            ),
            EngineError::NoRoom { prompt, context } => write!(
                f,
                "the prompt ({prompt} tokens) does not fit the context size ({context}) with room for a reply"
            ),
            EngineError::NotInVocabulary {
                field,
                token,
                n_vocab,
            } => write!(
                f,
                "{field}: token {token} is not in the vocabulary (0..{n_vocab})"
            ),
            EngineError::Sampling(m)
            | EngineError::Grammar(m)
            | EngineError::BadMessage(m)
            | EngineError::Template(m)
            | EngineError::Internal(m) => f.write_str(m),
            EngineError::Conflict { message, .. } => f.write_str(message),
            EngineError::NothingAllowed => f.write_str(
                "the output's grammar (from response_format or --grammar-file) allows no token here: nothing it admits can be completed",
            ),
            EngineError::Decode(m) => write!(f, "decode: {m}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// Why a job did not reach a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// Every slot is busy and the queue is full.
    Full {
        /// Slots.
        slots: usize,
        /// Waiting places.
        capacity: usize,
    },
    /// The queue takes no jobs of this kind (no slot for it).
    NoSlot,
    /// The scheduler is gone (a bug; it never ends by itself).
    Stopped,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Full { slots, capacity } => write!(
                f,
                "the server is busy: all {slots} slot(s) are generating and the queue of {capacity} is full; retry after a second"
            ),
            QueueError::NoSlot => f.write_str("no slot takes this kind of job"),
            QueueError::Stopped => f.write_str("the scheduler has stopped"),
        }
    }
}

impl std::error::Error for QueueError {}

impl From<EngineError> for String {
    fn from(e: EngineError) -> String {
        e.to_string()
    }
}

impl From<QueueError> for String {
    fn from(e: QueueError) -> String {
        e.to_string()
    }
}
