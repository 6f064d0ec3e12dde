//! The request queue and continuous batching: a bounded line of waiting
//! generations in front of a fixed number of sequence slots that share one
//! llama.cpp context.
//!
//! One scheduler thread owns the context. Every step it builds one batch
//! with the next token of every generating slot and then as much of the
//! newly admitted prompts as fits, decodes it once, and samples each slot's
//! next token from its own logits with its own sampler. A request joins
//! between two steps, without waiting for the others to finish; one that
//! ends (end of turn, stop string, max_tokens, cancellation, an error of
//! its own) leaves its slot at once and nothing else changes for the rest.
//!
//! Each slot is a sequence with its own KV cache that outlives the request,
//! so a next request sharing a prefix (a system prompt, an earlier turn)
//! does not evaluate it again: a new request goes to the free slot whose
//! cache shares the longest prefix with its prompt, and when another slot
//! (busy or not) shares a clearly longer one, that slot's cache is copied
//! first. Hits are counted for `/metrics`.
//!
//! A full queue refuses new work at once ([`Full`], which the API answers
//! with 429). A request whose client went away is skipped if it is still
//! waiting and stopped within one step if it is running.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedSender;

use crate::engine::{Engine, Finish, Generate, Output, Stats, check_fit};

/// What a running generation reports.
#[derive(Debug)]
pub enum Event {
    /// The next piece of text.
    Text(String),
    /// It ended.
    Done(Stats),
    /// It failed.
    Error(String),
}

/// One generation to run.
pub struct Job {
    /// The prompt.
    pub tokens: Vec<LlamaToken>,
    /// How.
    pub generate: Generate,
    /// Where the text and the end go; dropping the receiver cancels.
    pub events: UnboundedSender<Event>,
    /// Set to stop the generation (within one token).
    pub cancel: Arc<AtomicBool>,
    /// Told when the job leaves the queue for a slot (dropped unsent if it
    /// never does).
    pub admitted: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Job {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }
}

/// The queue was full.
#[derive(Debug, Clone, Copy)]
pub struct Full;

/// Counters of the queue (read by `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Generations finished.
    pub completed: AtomicU64,
    /// Generations stopped because the client left.
    pub cancelled: AtomicU64,
    /// Generations that failed.
    pub failed: AtomicU64,
    /// Requests refused because the queue was full.
    pub rejected: AtomicU64,
    /// Prompt tokens, all told.
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens taken from a slot's cache.
    pub cached_tokens: AtomicU64,
    /// Generations whose prompt began with tokens already cached.
    pub cache_hits: AtomicU64,
    /// Of which, with a prefix copied from another slot's cache.
    pub cache_copies: AtomicU64,
    /// Decode steps (one batch each).
    pub steps: AtomicU64,
    /// Tokens decoded in those steps.
    pub step_tokens: AtomicU64,
    /// Generated tokens.
    pub generated_tokens: AtomicU64,
    /// Microseconds spent on prompts.
    pub prompt_us: AtomicU64,
    /// Microseconds spent generating.
    pub generate_us: AtomicU64,
}

struct State {
    waiting: VecDeque<Job>,
    busy: usize,
}

/// The queue and its slots.
pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    /// Waiting requests allowed at most.
    pub capacity: usize,
    /// Sequence slots.
    pub slots: usize,
    /// What happened so far.
    pub counters: Counters,
}

/// A prefix another slot holds is copied only when it saves at least this
/// many tokens of prompt evaluation (the copy moves the whole sequence's
/// cache buffer).
const COPY_GAIN: usize = 32;

impl Queue {
    /// Starts the scheduler on `engine` with `slots` sequence slots, each
    /// with a context of `context` tokens, decoding with `threads` threads,
    /// taking at most `capacity` waiting requests.
    pub fn start(
        engine: &'static Engine,
        slots: usize,
        capacity: usize,
        context: u32,
        threads: i32,
    ) -> Result<Arc<Self>, String> {
        let q = Arc::new(Self {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                busy: 0,
            }),
            ready: Condvar::new(),
            capacity,
            slots,
            counters: Counters::default(),
        });
        let n = u32::try_from(slots).map_err(|_| "too many slots")?;
        // A batch holds one slot's whole prompt, or at least 512 tokens.
        let batch = context.max(512);
        // The context stays on the thread that made it; a failure to make
        // it is reported here.
        let (made, result) = std::sync::mpsc::channel();
        let q2 = q.clone();
        std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(
                move || match engine.batched_context(context, n, batch, threads) {
                    Ok(ctx) => {
                        let _ = made.send(Ok(()));
                        Scheduler::new(&q2, engine, ctx, context, batch).serve();
                    }
                    Err(e) => {
                        let _ = made.send(Err(e));
                    }
                },
            )
            .map_err(|e| format!("starting the scheduler: {e}"))?;
        result
            .recv()
            .map_err(|_| "the scheduler ended at start".to_owned())??;
        Ok(q)
    }

    /// Queues `job`, or refuses it when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), Full> {
        let mut st = self.lock();
        // Requests whose clients left no longer count.
        let before = st.waiting.len();
        st.waiting.retain(|j| !j.cancelled());
        let gone = before - st.waiting.len();
        self.counters
            .cancelled
            .fetch_add(gone as u64, Ordering::Relaxed);
        // A free slot takes the job at once; otherwise it waits, if there
        // is room.
        let free = self.slots.saturating_sub(st.busy);
        if st.waiting.len() >= self.capacity + free {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(Full);
        }
        st.waiting.push_back(job);
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    /// Requests waiting and slots busy.
    pub fn load(&self) -> (usize, usize) {
        let st = self.lock();
        (st.waiting.len(), st.busy)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The scheduler never panics while holding the lock, but a poisoned
        // lock must not take the API down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the end of a generation and tells its client.
    fn finished(&self, job: &Job, result: Result<Stats, String>, started: Instant) {
        let c = &self.counters;
        match result {
            Ok(stats) if stats.finish == Finish::Cancelled => {
                c.cancelled.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "llmos-runtime: a request was cancelled after {} ms and {} tokens (client gone); its slot is free",
                    started.elapsed().as_millis(),
                    stats.generated
                );
            }
            Ok(stats) => {
                c.completed.fetch_add(1, Ordering::Relaxed);
                c.prompt_tokens
                    .fetch_add(stats.prompt_tokens as u64, Ordering::Relaxed);
                c.cached_tokens
                    .fetch_add(stats.reused_tokens as u64, Ordering::Relaxed);
                c.generated_tokens
                    .fetch_add(stats.generated as u64, Ordering::Relaxed);
                c.prompt_us
                    .fetch_add((stats.prompt_ms * 1e3) as u64, Ordering::Relaxed);
                c.generate_us
                    .fetch_add((stats.generate_ms * 1e3) as u64, Ordering::Relaxed);
                let _ = job.events.send(Event::Done(stats));
            }
            Err(_) if job.cancelled() => {
                c.cancelled.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "llmos-runtime: a request was cancelled after {} ms (client gone); its slot is free",
                    started.elapsed().as_millis()
                );
            }
            Err(e) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                let _ = job.events.send(Event::Error(e));
            }
        }
    }
}

/// One sequence of the shared context.
struct Slot {
    /// Its sequence id.
    seq: i32,
    /// The tokens whose keys and values are in its cache, in order (the
    /// next token fed goes at position `cached.len()`).
    cached: Vec<LlamaToken>,
    /// When it last took a request (the least recently used free slot is
    /// given away first among equals).
    used: u64,
    /// The generation it runs.
    run: Option<Running>,
}

/// A generation in a slot.
struct Running {
    job: Job,
    /// Prompt tokens fed so far (the rest go in with the next steps).
    fed: usize,
    sampler: crate::engine::Picker,
    output: Output,
    stats: Stats,
    /// The last sampled token, fed with the next step.
    pending: Option<LlamaToken>,
    /// The sampled token in the batch being decoded.
    feeding: Option<LlamaToken>,
    /// Where its logits are in the batch being decoded.
    logits: Option<i32>,
    /// Tokens this slot put in the batch being decoded.
    in_batch: usize,
    admitted: Instant,
    generating: Option<Instant>,
}

/// The scheduler thread's state.
struct Scheduler<'a> {
    queue: &'a Queue,
    engine: &'static Engine,
    ctx: LlamaContext<'static>,
    slots: Vec<Slot>,
    batch: LlamaBatch<'static>,
    /// Tokens a batch may hold.
    batch_size: usize,
    /// Tokens per sequence.
    context: u32,
    clock: u64,
}

impl<'a> Scheduler<'a> {
    fn new(
        queue: &'a Queue,
        engine: &'static Engine,
        ctx: LlamaContext<'static>,
        context: u32,
        batch: u32,
    ) -> Self {
        let slots = (0..queue.slots)
            .map(|i| Slot {
                seq: i as i32,
                cached: Vec::new(),
                used: 0,
                run: None,
            })
            .collect();
        Self {
            queue,
            engine,
            ctx,
            slots,
            batch: LlamaBatch::new(batch as usize, 1),
            batch_size: batch as usize,
            context,
            clock: 0,
        }
    }

    fn serve(mut self) {
        loop {
            self.admit();
            if self.slots.iter().all(|s| s.run.is_none()) {
                let st = self.queue.lock();
                if st.waiting.is_empty() {
                    drop(self.queue.ready.wait(st));
                }
                continue;
            }
            // A panic in a step (a bug, never expected) must not take the
            // scheduler with it: the generations in flight fail and every
            // cache is dropped.
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step()));
            if step.is_err() {
                eprintln!(
                    "llmos-runtime: a decode step panicked; its generations failed and the caches were reset"
                );
                self.ctx.clear_kv_cache();
                for i in 0..self.slots.len() {
                    self.slots[i].cached.clear();
                    self.end(i, Err("internal error in the generation step".into()));
                }
            }
        }
    }

    /// Gives free slots to waiting requests.
    fn admit(&mut self) {
        loop {
            if self.slots.iter().all(|s| s.run.is_some()) {
                return;
            }
            let job = {
                let mut st = self.queue.lock();
                loop {
                    match st.waiting.pop_front() {
                        Some(j) if j.cancelled() => {
                            self.queue
                                .counters
                                .cancelled
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Some(j) => {
                            st.busy += 1;
                            break j;
                        }
                        None => return,
                    }
                }
            };
            self.start(job);
        }
    }

    /// Puts `job` in the free slot that serves it best, or fails it.
    fn start(&mut self, mut job: Job) {
        let started = Instant::now();
        if let Some(told) = job.admitted.take() {
            let _ = told.send(());
        }
        let g = &job.generate;
        let checked = g
            .sampling
            .validate()
            .and_then(|()| {
                if job.tokens.is_empty() {
                    Err("the prompt is empty".into())
                } else {
                    check_fit(job.tokens.len(), g.max_tokens, self.context)
                }
            })
            .and_then(|()| {
                g.sampling
                    .sampler(self.engine.model(), g.grammar.as_deref(), g.ignore_eos)
            });
        let sampler = match checked {
            Ok(s) => s,
            Err(e) => {
                self.queue.finished(&job, Err(e), started);
                self.queue.lock().busy -= 1;
                return;
            }
        };
        let tokens = &job.tokens;
        // At least the last prompt token is evaluated again, for its logits.
        let limit = tokens.len() - 1;
        let shared = |s: &Slot| {
            s.cached
                .iter()
                .zip(tokens)
                .take_while(|(a, b)| a == b)
                .count()
                .min(limit)
        };
        let Some(i) = (0..self.slots.len())
            .filter(|&i| self.slots[i].run.is_none())
            .max_by_key(|&i| {
                (
                    shared(&self.slots[i]),
                    std::cmp::Reverse(self.slots[i].used),
                )
            })
        else {
            // `admit` only calls this with a slot free; never a lost job.
            let e = "internal error: no free slot".to_owned();
            self.queue.finished(&job, Err(e), started);
            self.queue.lock().busy -= 1;
            return;
        };
        let mut prefix = shared(&self.slots[i]);
        let (best, from) = (0..self.slots.len())
            .map(|j| (shared(&self.slots[j]), j))
            .max()
            .unwrap_or((0, i));
        let seq = self.slots[i].seq;
        let mut copied = false;
        if best >= prefix + COPY_GAIN {
            let src = self.slots[from].seq;
            let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
            if self.ctx.copy_kv_cache_seq(src, seq, None, None).is_ok() {
                self.slots[i].cached = self.slots[from].cached[..best].to_vec();
                prefix = best;
                copied = true;
            } else {
                self.slots[i].cached.clear();
                prefix = 0;
            }
        }
        let slot = &mut self.slots[i];
        if prefix < slot.cached.len() || copied {
            let ok = self
                .ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(prefix as u32), None)
                .unwrap_or(false);
            if !ok {
                let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                prefix = 0;
                copied = false;
            }
            slot.cached.truncate(prefix);
        }
        let c = &self.queue.counters;
        if prefix > 0 {
            c.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        if copied {
            c.cache_copies.fetch_add(1, Ordering::Relaxed);
        }
        self.clock += 1;
        slot.used = self.clock;
        slot.run = Some(Running {
            fed: prefix,
            sampler,
            output: Output::new(&job.generate.stops),
            stats: Stats {
                prompt_tokens: job.tokens.len(),
                reused_tokens: prefix,
                finish: Finish::Length,
                ..Stats::default()
            },
            pending: None,
            feeding: None,
            logits: None,
            in_batch: 0,
            admitted: started,
            generating: None,
            job,
        });
    }

    /// One batch: every generating slot's next token, then prompt chunks.
    fn step(&mut self) {
        // Generations whose clients left end before the batch is built.
        for i in 0..self.slots.len() {
            if self.slots[i]
                .run
                .as_ref()
                .is_some_and(|r| r.job.cancelled())
            {
                self.finish(i, Finish::Cancelled);
            }
        }
        self.batch.clear();
        let mut room = self.batch_size;
        for slot in &mut self.slots {
            let Some(run) = slot.run.as_mut() else {
                continue;
            };
            run.logits = None;
            run.in_batch = 0;
            if let Some(t) = run.pending
                && room > 0
            {
                let pos = slot.cached.len() as i32;
                if self.batch.add(t, pos, &[slot.seq], true).is_ok() {
                    run.pending = None;
                    run.feeding = Some(t);
                    run.logits = Some(self.batch.n_tokens() - 1);
                    run.in_batch = 1;
                    room -= 1;
                }
            }
        }
        for slot in &mut self.slots {
            let Some(run) = slot.run.as_mut() else {
                continue;
            };
            let prompt = &run.job.tokens;
            if run.fed >= prompt.len() || room == 0 {
                continue;
            }
            let n = (prompt.len() - run.fed).min(room);
            let last = prompt.len() - 1;
            for (k, &t) in prompt.iter().enumerate().skip(run.fed).take(n) {
                if self.batch.add(t, k as i32, &[slot.seq], k == last).is_err() {
                    break;
                }
                run.in_batch += 1;
                if k == last {
                    run.logits = Some(self.batch.n_tokens() - 1);
                }
            }
            room -= run.in_batch;
        }
        if self.batch.n_tokens() == 0 {
            return;
        }
        let c = &self.queue.counters;
        c.steps.fetch_add(1, Ordering::Relaxed);
        c.step_tokens
            .fetch_add(self.batch.n_tokens() as u64, Ordering::Relaxed);
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            // Not a request's fault (each was checked to fit): the
            // generations in this batch fail and their caches go.
            for i in 0..self.slots.len() {
                let in_batch = self.slots[i].run.as_ref().is_some_and(|r| r.in_batch > 0);
                if in_batch {
                    let seq = self.slots[i].seq as u32;
                    let _ = self.ctx.clear_kv_cache_seq(Some(seq), None, None);
                    self.slots[i].cached.clear();
                    self.end(i, Err(format!("decode: {e}")));
                }
            }
            return;
        }
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(run) = slot.run.as_mut() else {
                continue;
            };
            if let Some(t) = run.feeding.take() {
                slot.cached.push(t);
            } else if run.in_batch > 0 {
                let from = run.fed;
                run.fed += run.in_batch;
                slot.cached
                    .extend_from_slice(&run.job.tokens[from..run.fed]);
            }
            if let Some(idx) = run.logits {
                self.sample(i, idx);
            }
        }
    }

    /// Takes slot `i`'s next token from the logits at `idx`.
    fn sample(&mut self, i: usize, idx: i32) {
        let vocab = self.engine.model().vocab();
        let Some(run) = self.slots[i].run.as_mut() else {
            return;
        };
        let now = Instant::now();
        if run.generating.is_none() {
            run.stats.prompt_ms = (now - run.admitted).as_secs_f64() * 1e3;
            run.generating = Some(now);
        }
        if run.stats.tokens.len() >= run.job.generate.max_tokens as usize {
            // max_tokens 0: the prompt alone.
            return self.finish(i, Finish::Length);
        }
        let t = match run.sampler.sample(&self.ctx, idx) {
            Ok(t) => t,
            Err(e) => return self.end(i, Err(e)),
        };
        if vocab.is_eog(t) {
            return self.finish(i, Finish::Stop);
        }
        run.stats.tokens.push(t.0);
        let piece = vocab.token_to_piece(t, false, None);
        let mut out = Sink {
            events: &run.job.events,
            cancel: &run.job.cancel,
        };
        match run.output.piece(&mut out, &piece) {
            Err(e) => self.end(i, Err(e)),
            Ok(Some(finish)) => {
                run.stats.finish = finish;
                self.end_ok(i);
            }
            Ok(None) if run.stats.tokens.len() >= run.job.generate.max_tokens as usize => {
                self.finish(i, Finish::Length);
            }
            Ok(None) => run.pending = Some(t),
        }
    }

    /// Ends slot `i`'s generation for `why`, writing out what its output
    /// held back.
    fn finish(&mut self, i: usize, why: Finish) {
        let Some(run) = self.slots[i].run.as_mut() else {
            return;
        };
        run.stats.finish = why;
        if why != Finish::Cancelled {
            let mut out = Sink {
                events: &run.job.events,
                cancel: &run.job.cancel,
            };
            match run.output.end(&mut out) {
                Ok(Some(f)) => run.stats.finish = f,
                Ok(None) => {}
                Err(e) => return self.end(i, Err(e)),
            }
        }
        self.end_ok(i);
    }

    fn end_ok(&mut self, i: usize) {
        let Some(run) = self.slots[i].run.as_mut() else {
            return;
        };
        let stats = &mut run.stats;
        stats.generated = stats.tokens.len();
        stats.generate_ms = run
            .generating
            .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1e3);
        if run.generating.is_none() {
            stats.prompt_ms = run.admitted.elapsed().as_secs_f64() * 1e3;
        }
        let stats = std::mem::take(stats);
        self.end(i, Ok(stats));
    }

    /// Frees slot `i` and reports `result`.
    fn end(&mut self, i: usize, result: Result<Stats, String>) {
        if let Some(run) = self.slots[i].run.take() {
            self.queue.finished(&run.job, result, run.admitted);
            self.queue.lock().busy -= 1;
        }
    }
}

/// The generation's output: text goes to the client; a cancelled job
/// fails the next write, which ends generation within one token.
struct Sink<'a> {
    events: &'a UnboundedSender<Event>,
    cancel: &'a AtomicBool,
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        if !buf.is_empty() {
            // The engine writes whole characters.
            let text = String::from_utf8_lossy(buf).into_owned();
            self.events
                .send(Event::Text(text))
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::Interrupted))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.events.is_closed() {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        Ok(())
    }
}
