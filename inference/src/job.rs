//! One generation, from what was asked to where its text goes.
//!
//! A [`Request`] is what a client (the API, the console, a command) asks
//! for; [`Job::new`] checks it once against the engine and the context
//! (an empty prompt, the fit, token ids against the vocabulary, sampling
//! ranges, the grammar), so the scheduler ([`crate::queue`]) only runs
//! jobs that can run. The text goes out through a [`Sink`], piece by
//! piece, whole characters only and with stop strings held back
//! ([`Output`]); the sink answers each piece with [`ControlFlow`]: go on,
//! or stop (the client left, Ctrl-C).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use llama_cpp_2::token::LlamaToken;

use crate::engine::{Engine, Finish, Sampling, Stats};
use crate::error::EngineError;
use crate::stop::StopFilter;
use crate::utf8::Utf8Stream;

/// How many tokens a reply may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokens {
    /// Exactly this cap; a prompt that leaves less room is refused.
    Exactly(u32),
    /// At most this, or what the context leaves if that is less.
    UpTo(u32),
}

/// What a client asks for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The prompt.
    pub tokens: Vec<LlamaToken>,
    /// The reply's length.
    pub max_tokens: MaxTokens,
    /// How the next token is chosen.
    pub sampling: Sampling,
    /// Generation ends before the first of these (not included).
    pub stops: Vec<String>,
    /// A GBNF grammar (root rule `root`) the output must follow.
    pub grammar: Option<String>,
    /// Never end with an end-of-generation token: always `max_tokens`.
    pub ignore_eos: bool,
}

/// Generation settings a client holds between requests (the command
/// line's, the console's `/params`).
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Tokens to generate at most.
    pub max_tokens: u32,
    /// How the next token is chosen.
    pub sampling: Sampling,
    /// Generation ends before the first of these (not included).
    pub stops: Vec<String>,
    /// A GBNF grammar (root rule `root`) the output must follow.
    pub grammar: Option<String>,
    /// Never end with an end-of-generation token.
    pub ignore_eos: bool,
}

impl Defaults {
    /// A request for `tokens` with these settings and exactly
    /// `max_tokens`.
    pub fn request(&self, tokens: Vec<LlamaToken>) -> Request {
        Request {
            tokens,
            max_tokens: MaxTokens::Exactly(self.max_tokens),
            sampling: self.sampling.clone(),
            stops: self.stops.clone(),
            grammar: self.grammar.clone(),
            ignore_eos: self.ignore_eos,
        }
    }
}

/// Where a generation's text goes.
pub trait Sink: Send {
    /// The next piece of text (whole characters). `Break` stops the
    /// generation: its finish is [`Finish::Cancelled`].
    fn piece(&mut self, text: &str) -> ControlFlow<()>;

    /// The generation ended, or failed.
    fn done(&mut self, result: Result<Stats, EngineError>);
}

/// Which slots may run a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The API's: any of the queue's API slots, in turn.
    Api,
    /// The console's: its own slot, so it stays responsive under API load
    /// (and its conversation stays cached there).
    Console,
}

/// A checked request on its way to a slot.
pub struct Job {
    /// The prompt (not empty, in the vocabulary).
    pub tokens: Vec<LlamaToken>,
    /// The reply's cap (the prompt plus this fit the context).
    pub max_tokens: u32,
    /// Checked sampling settings.
    pub sampling: Sampling,
    /// Stop strings.
    pub stops: Vec<String>,
    /// A checked grammar.
    pub grammar: Option<String>,
    /// See [`Request::ignore_eos`].
    pub ignore_eos: bool,
    /// Where the text goes.
    pub sink: Box<dyn Sink>,
    /// Set to stop the generation within one token (and skip it if it is
    /// still waiting).
    pub cancel: Arc<AtomicBool>,
    /// Told when the job leaves the queue for a slot (dropped unsent if it
    /// never does).
    pub admitted: Option<tokio::sync::oneshot::Sender<()>>,
    /// Its slots.
    pub class: Class,
    /// Whether a slot's cached prefix may serve it (off: it starts from an
    /// empty cache, as a benchmark's runs must).
    pub reuse: bool,
}

impl Job {
    /// Checks `r` for a context of `context` tokens per slot.
    pub fn new(
        engine: &Engine,
        r: Request,
        context: u32,
        sink: Box<dyn Sink>,
        class: Class,
    ) -> Result<Self, EngineError> {
        let n = r.tokens.len();
        if n == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        let max_tokens = match r.max_tokens {
            MaxTokens::Exactly(m) => {
                if n as u64 + u64::from(m) > u64::from(context) {
                    return Err(EngineError::DoesNotFit {
                        prompt: n,
                        max_tokens: m,
                        context,
                    });
                }
                m
            }
            MaxTokens::UpTo(m) => {
                if n as u64 >= u64::from(context) {
                    return Err(EngineError::NoRoom { prompt: n, context });
                }
                (u64::from(context) - n as u64).min(u64::from(m)) as u32
            }
        };
        r.sampling.validate().map_err(EngineError::Sampling)?;
        let n_vocab = engine.n_vocab();
        if let Some((t, _)) = r
            .sampling
            .logit_bias
            .iter()
            .find(|(t, _)| !(0..n_vocab).contains(t))
        {
            return Err(EngineError::NotInVocabulary {
                field: "logit_bias",
                token: i64::from(*t),
                n_vocab,
            });
        }
        if let Some(t) = r.tokens.iter().find(|t| !(0..n_vocab).contains(&t.0)) {
            return Err(EngineError::NotInVocabulary {
                field: "prompt",
                token: i64::from(t.0),
                n_vocab,
            });
        }
        if let Some(g) = &r.grammar {
            if r.ignore_eos {
                // A grammar ends in an end-of-generation token, which
                // ignore_eos forbids: nothing could be sampled.
                return Err(EngineError::Conflict {
                    field: "ignore_eos",
                    message: "ignore_eos cannot be combined with an output grammar (a JSON response_format)".into(),
                });
            }
            crate::schema::check_gbnf(g).map_err(EngineError::Grammar)?;
        }
        Ok(Self {
            tokens: r.tokens,
            max_tokens,
            sampling: r.sampling,
            stops: r.stops,
            grammar: r.grammar,
            ignore_eos: r.ignore_eos,
            sink,
            cancel: Arc::new(AtomicBool::new(false)),
            admitted: None,
            class,
            reuse: true,
        })
    }

    /// Whether it should stop (or not start).
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// A generation's text on its way to its sink: whole characters only, and
/// text that might begin a stop string held back until it is clear.
pub struct Output {
    text: Utf8Stream,
    stop: StopFilter,
}

impl Output {
    /// For a generation with these stop strings.
    pub fn new(stops: &[String]) -> Self {
        Self {
            text: Utf8Stream::default(),
            stop: StopFilter::new(stops),
        }
    }

    /// Passes on what `piece` (a token's bytes) lets through; `Break`
    /// with why generation must end: a stop string came, or the sink
    /// asked to stop.
    pub fn piece(&mut self, sink: &mut dyn Sink, piece: &[u8]) -> ControlFlow<Finish> {
        let (shown, stopped) = self.stop.push(&self.text.push(piece));
        emit(sink, &shown)?;
        if stopped {
            ControlFlow::Break(Finish::Stop)
        } else {
            ControlFlow::Continue(())
        }
    }

    /// At the end of a generation that did not stop on its own output:
    /// passes on whatever was held back (an incomplete character, text
    /// that might have begun a stop string); `Break` overrides the reason.
    pub fn end(&mut self, sink: &mut dyn Sink) -> ControlFlow<Finish> {
        let (rest, stopped) = self.stop.push(&self.text.finish());
        emit(sink, &rest)?;
        if stopped {
            return ControlFlow::Break(Finish::Stop);
        }
        emit(sink, &self.stop.finish())
    }
}

fn emit(sink: &mut dyn Sink, s: &str) -> ControlFlow<Finish> {
    if s.is_empty() {
        return ControlFlow::Continue(());
    }
    match sink.piece(s) {
        ControlFlow::Continue(()) => ControlFlow::Continue(()),
        ControlFlow::Break(()) => ControlFlow::Break(Finish::Cancelled),
    }
}

/// A sink that keeps the text and the result, for callers that wait for
/// the whole reply on another thread.
pub struct Collect {
    tx: std::sync::mpsc::Sender<Piece>,
}

/// What a [`Collect`] sink passes on.
pub enum Piece {
    /// Text.
    Text(String),
    /// The end.
    Done(Result<Stats, EngineError>),
}

impl Collect {
    /// A sink and the receiving end of what it gets.
    pub fn new() -> (Self, std::sync::mpsc::Receiver<Piece>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (Self { tx }, rx)
    }
}

impl Sink for Collect {
    fn piece(&mut self, text: &str) -> ControlFlow<()> {
        match self.tx.send(Piece::Text(text.to_owned())) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    fn done(&mut self, result: Result<Stats, EngineError>) {
        let _ = self.tx.send(Piece::Done(result));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Keep(String, usize);

    impl Sink for Keep {
        fn piece(&mut self, text: &str) -> ControlFlow<()> {
            self.0.push_str(text);
            self.1 += 1;
            if self.0.len() > 20 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn done(&mut self, _: Result<Stats, EngineError>) {}
    }

    #[test]
    fn output_keeps_characters_whole_and_stops_before_a_stop_string() {
        let mut sink = Keep(String::new(), 0);
        let mut out = Output::new(&["END".to_owned()]);
        // "é" split across two tokens, then a stop string split too.
        for p in [&b"caf"[..], b"\xc3", b"\xa9 E", b"N"] {
            assert_eq!(out.piece(&mut sink, p), ControlFlow::Continue(()));
        }
        assert_eq!(
            out.piece(&mut sink, b"D more"),
            ControlFlow::Break(Finish::Stop)
        );
        assert_eq!(sink.0, "café ");
        // A sink that says stop ends with Cancelled.
        let mut out = Output::new(&[]);
        let r = out.piece(&mut sink, b"0123456789abcdefghij");
        assert_eq!(r, ControlFlow::Break(Finish::Cancelled));
        // Held-back text comes out at the end.
        let mut sink = Keep(String::new(), 0);
        let mut out = Output::new(&["xyz".to_owned()]);
        assert_eq!(out.piece(&mut sink, b"ab x"), ControlFlow::Continue(()));
        assert_eq!(sink.0, "ab ");
        assert_eq!(out.end(&mut sink), ControlFlow::Continue(()));
        assert_eq!(sink.0, "ab x");
    }
}
