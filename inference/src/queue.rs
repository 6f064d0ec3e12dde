//! The scheduler: every generation of the runtime (API requests, console
//! turns, the command-line's replies, the bench) runs here, on sequence
//! slots of one llama.cpp context, with continuous batching.
//!
//! A [`Job`] (checked once, [`crate::job`]) is submitted to the [`Queue`]:
//! the API's jobs wait in a bounded line for one of the API slots, the
//! console's take its own slot (so a console turn never waits behind API
//! load, and its conversation stays cached there). One scheduler thread
//! owns the context. Every step it builds one batch with the next token of
//! every generating slot and then as much of the newly admitted prompts as
//! fits, decodes it once, and takes each slot's next token from its own
//! logits ([`Scheduler::next_token`], the one per-token step), whose text
//! goes to the job's [`Sink`](crate::job::Sink). A job joins between two
//! steps; one that ends (end of turn, stop string, `max_tokens`,
//! cancellation, an error of its own) leaves its slot at once and nothing
//! else changes for the rest.
//!
//! Each slot is a sequence with its own KV cache that outlives the job,
//! so a next job sharing a prefix (a system prompt, an earlier turn) does
//! not evaluate it again: a new job goes to the free slot of its class
//! whose cache shares the longest prefix with its prompt, and when another
//! slot (busy or not) shares a clearly longer one, that slot's cache is
//! copied first ([`Scheduler::reuse`], the one prefix-reuse function).
//! Hits are counted for `/metrics`.
//!
//! A full queue refuses new work at once ([`QueueError::Full`], which the
//! API answers with 429). A job whose client went away is skipped if it is
//! still waiting and stopped within one step if it is running.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::engine::{Engine, Finish, Picker, Stats};
use crate::error::{EngineError, QueueError};
use crate::job::{Class, Job, Output};

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

/// How the scheduler is set up.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Slots for the API's jobs.
    pub slots: usize,
    /// Whether there is a console slot.
    pub console: bool,
    /// API jobs that may wait for a slot.
    pub capacity: usize,
    /// Tokens of context per slot.
    pub context: u32,
    /// Threads for decoding.
    pub threads: i32,
}

struct State {
    waiting: VecDeque<Job>,
    /// The console's next turn.
    console: Option<Job>,
    /// API slots generating.
    busy: usize,
}

/// The queue and its slots.
pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    /// API jobs allowed to wait at most.
    pub capacity: usize,
    /// API slots.
    pub slots: usize,
    /// Whether the console has a slot.
    pub console: bool,
    /// Tokens of context per slot.
    pub context: u32,
    /// What happened so far.
    pub counters: Counters,
}

/// A prefix another slot holds is copied only when it saves at least this
/// many tokens of prompt evaluation (the copy moves the whole sequence's
/// cache buffer).
const COPY_GAIN: usize = 32;

impl Queue {
    /// Starts the scheduler on `engine` (see [`Config`]).
    pub fn start(engine: &'static Engine, cfg: Config) -> Result<Arc<Self>, EngineError> {
        let q = Arc::new(Self {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                console: None,
                busy: 0,
            }),
            ready: Condvar::new(),
            capacity: cfg.capacity,
            slots: cfg.slots,
            console: cfg.console,
            context: cfg.context,
            counters: Counters::default(),
        });
        let total = cfg.slots + usize::from(cfg.console);
        if total == 0 {
            return Err(EngineError::Internal("a queue needs a slot".into()));
        }
        let n = u32::try_from(total).map_err(|_| EngineError::Internal("too many slots".into()))?;
        // A batch holds one slot's whole prompt, or at least 512 tokens.
        let batch = cfg.context.max(512);
        // The context stays on the thread that made it; a failure to make
        // it is reported here.
        let (made, result) = std::sync::mpsc::channel();
        let q2 = q.clone();
        std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(
                move || match engine.batched_context(cfg.context, n, batch, cfg.threads) {
                    Ok(ctx) => {
                        let _ = made.send(Ok(()));
                        Scheduler::new(&q2, engine, ctx, batch).serve();
                    }
                    Err(e) => {
                        let _ = made.send(Err(e));
                    }
                },
            )
            .map_err(|e| EngineError::Internal(format!("starting the scheduler: {e}")))?;
        result
            .recv()
            .map_err(|_| EngineError::Internal("the scheduler ended at start".into()))??;
        Ok(q)
    }

    /// Queues `job`, or refuses it: a full queue (API jobs), no slot of
    /// its class, a console turn while another waits.
    pub fn submit(&self, job: Job) -> Result<(), QueueError> {
        let mut st = self.lock();
        match job.class {
            Class::Console => {
                if !self.console {
                    return Err(QueueError::NoSlot);
                }
                if st.console.is_some() {
                    return Err(QueueError::Full {
                        slots: 1,
                        capacity: 0,
                    });
                }
                st.console = Some(job);
            }
            Class::Api => {
                if self.slots == 0 {
                    return Err(QueueError::NoSlot);
                }
                // Requests whose clients left no longer count.
                let before = st.waiting.len();
                st.waiting.retain(|j| !j.cancelled());
                let gone = before - st.waiting.len();
                self.counters
                    .cancelled
                    .fetch_add(gone as u64, Ordering::Relaxed);
                // A free slot takes the job at once; otherwise it waits,
                // if there is room.
                let free = self.slots.saturating_sub(st.busy);
                if st.waiting.len() >= self.capacity + free {
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(QueueError::Full {
                        slots: self.slots,
                        capacity: self.capacity,
                    });
                }
                st.waiting.push_back(job);
            }
        }
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    /// API jobs waiting and API slots busy.
    pub fn load(&self) -> (usize, usize) {
        let st = self.lock();
        (st.waiting.len(), st.busy)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The scheduler never panics while holding the lock, but a poisoned
        // lock must not take the API down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the end of a generation; the sink hears it.
    fn finished(&self, job: &mut Job, result: Result<Stats, EngineError>, started: Instant) {
        let c = &self.counters;
        match &result {
            Ok(stats) if stats.finish == Finish::Cancelled => {
                c.cancelled.fetch_add(1, Ordering::Relaxed);
                if job.class == Class::Api {
                    eprintln!(
                        "llmos-runtime: a request was cancelled after {} ms and {} tokens (client gone); its slot is free",
                        started.elapsed().as_millis(),
                        stats.generated
                    );
                }
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
            }
            Err(_) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        job.sink.done(result);
    }
}

/// How much of `tokens` a cache holding `cached` already has, leaving at
/// least the last token to be evaluated again (for its logits).
fn shared_prefix(cached: &[LlamaToken], tokens: &[LlamaToken]) -> usize {
    let common = cached
        .iter()
        .zip(tokens)
        .take_while(|(a, b)| a == b)
        .count();
    common.min(tokens.len().saturating_sub(1))
}

/// One sequence of the shared context.
struct Slot {
    /// Its sequence id.
    seq: i32,
    /// Whose jobs it runs.
    class: Class,
    /// The tokens whose keys and values are in its cache, in order (the
    /// next token fed goes at position `cached.len()`).
    cached: Vec<LlamaToken>,
    /// When it last took a job (the least recently used free slot is
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
    picker: Picker,
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
    clock: u64,
}

impl<'a> Scheduler<'a> {
    fn new(
        queue: &'a Queue,
        engine: &'static Engine,
        ctx: LlamaContext<'static>,
        batch: u32,
    ) -> Self {
        let mut slots: Vec<Slot> = (0..queue.slots)
            .map(|i| Slot {
                seq: i as i32,
                class: Class::Api,
                cached: Vec::new(),
                used: 0,
                run: None,
            })
            .collect();
        if queue.console {
            slots.push(Slot {
                seq: queue.slots as i32,
                class: Class::Console,
                cached: Vec::new(),
                used: 0,
                run: None,
            });
        }
        Self {
            queue,
            engine,
            ctx,
            slots,
            batch: LlamaBatch::new(batch as usize, 1),
            batch_size: batch as usize,
            clock: 0,
        }
    }

    fn serve(mut self) {
        loop {
            self.admit();
            if self.slots.iter().all(|s| s.run.is_none()) {
                let st = self.queue.lock();
                if st.waiting.is_empty() && st.console.is_none() {
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
                    self.end(
                        i,
                        Err(EngineError::Internal(
                            "internal error in the generation step".into(),
                        )),
                    );
                }
            }
        }
    }

    /// The next waiting job a free slot of its class can take.
    fn next_job(&self) -> Option<Job> {
        let free = |c: Class| self.slots.iter().any(|s| s.class == c && s.run.is_none());
        let mut st = self.queue.lock();
        if free(Class::Console)
            && let Some(j) = st.console.take()
        {
            return Some(j);
        }
        if !free(Class::Api) {
            return None;
        }
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
                    return Some(j);
                }
                None => return None,
            }
        }
    }

    /// Gives free slots to waiting jobs.
    fn admit(&mut self) {
        while let Some(job) = self.next_job() {
            self.start(job);
        }
    }

    /// Slot `i`'s cache made to hold the longest prefix of `tokens` it can
    /// get (its own, or a clearly longer one copied from another slot);
    /// returns (tokens reused, whether copied).
    fn reuse(&mut self, i: usize, tokens: &[LlamaToken], allowed: bool) -> (usize, bool) {
        if !allowed {
            let seq = self.slots[i].seq as u32;
            let _ = self.ctx.clear_kv_cache_seq(Some(seq), None, None);
            self.slots[i].cached.clear();
            return (0, false);
        }
        let shared = |s: &Slot| shared_prefix(&s.cached, tokens);
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
        (prefix, copied)
    }

    /// Puts `job` in the free slot of its class that serves it best, or
    /// fails it.
    fn start(&mut self, mut job: Job) {
        let started = Instant::now();
        if let Some(told) = job.admitted.take() {
            let _ = told.send(());
        }
        let picker =
            match job
                .sampling
                .sampler(self.engine.model(), job.grammar.as_deref(), job.ignore_eos)
            {
                Ok(p) => p,
                Err(e) => return self.fail_unplaced(job, e, started),
            };
        let shared = |s: &Slot| shared_prefix(&s.cached, &job.tokens);
        let Some(i) = (0..self.slots.len())
            .filter(|&i| self.slots[i].run.is_none() && self.slots[i].class == job.class)
            .max_by_key(|&i| {
                (
                    shared(&self.slots[i]),
                    std::cmp::Reverse(self.slots[i].used),
                )
            })
        else {
            // `admit` only takes a job with a slot free; never a lost job.
            let e = EngineError::Internal("internal error: no free slot".into());
            return self.fail_unplaced(job, e, started);
        };
        let (prefix, copied) = self.reuse(i, &job.tokens, job.reuse);
        let c = &self.queue.counters;
        if prefix > 0 {
            c.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        if copied {
            c.cache_copies.fetch_add(1, Ordering::Relaxed);
        }
        self.clock += 1;
        let slot = &mut self.slots[i];
        slot.used = self.clock;
        slot.run = Some(Running {
            fed: prefix,
            picker,
            output: Output::new(&job.stops),
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

    /// Fails a job that never got a slot.
    fn fail_unplaced(&mut self, mut job: Job, e: EngineError, started: Instant) {
        let class = job.class;
        self.queue.finished(&mut job, Err(e), started);
        if class == Class::Api {
            self.queue.lock().busy -= 1;
        }
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
            // Not a job's fault (each was checked to fit): the generations
            // in this batch fail and their caches go.
            for i in 0..self.slots.len() {
                let in_batch = self.slots[i].run.as_ref().is_some_and(|r| r.in_batch > 0);
                if in_batch {
                    let seq = self.slots[i].seq as u32;
                    let _ = self.ctx.clear_kv_cache_seq(Some(seq), None, None);
                    self.slots[i].cached.clear();
                    self.end(i, Err(EngineError::Decode(e.to_string())));
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
                self.next_token(i, idx);
            }
        }
    }

    /// The one per-token step: slot `i`'s next token from the logits at
    /// `idx`, its text to the sink, and whether the generation goes on.
    fn next_token(&mut self, i: usize, idx: i32) {
        let vocab = self.engine.model().vocab();
        let Some(run) = self.slots[i].run.as_mut() else {
            return;
        };
        let now = Instant::now();
        if run.generating.is_none() {
            run.stats.prompt_ms = (now - run.admitted).as_secs_f64() * 1e3;
            run.generating = Some(now);
        }
        if run.stats.tokens.len() >= run.job.max_tokens as usize {
            // max_tokens 0: the prompt alone.
            return self.finish(i, Finish::Length);
        }
        let t = match run.picker.sample(&self.ctx, idx) {
            Ok(t) => t,
            Err(e) => return self.end(i, Err(e)),
        };
        if vocab.is_eog(t) {
            return self.finish(i, Finish::Stop);
        }
        run.stats.tokens.push(t.0);
        let piece = vocab.token_to_piece(t, false, None);
        match run.output.piece(&mut *run.job.sink, &piece) {
            ControlFlow::Break(finish) => {
                run.stats.finish = finish;
                self.end_ok(i);
            }
            ControlFlow::Continue(()) if run.stats.tokens.len() >= run.job.max_tokens as usize => {
                self.finish(i, Finish::Length);
            }
            ControlFlow::Continue(()) => run.pending = Some(t),
        }
    }

    /// Ends slot `i`'s generation for `why`, passing on what its output
    /// held back.
    fn finish(&mut self, i: usize, why: Finish) {
        let Some(run) = self.slots[i].run.as_mut() else {
            return;
        };
        run.stats.finish = why;
        if why != Finish::Cancelled
            && let ControlFlow::Break(f) = run.output.end(&mut *run.job.sink)
        {
            run.stats.finish = f;
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
    fn end(&mut self, i: usize, result: Result<Stats, EngineError>) {
        if let Some(mut run) = self.slots[i].run.take() {
            let class = run.job.class;
            self.queue.finished(&mut run.job, result, run.admitted);
            if class == Class::Api {
                self.queue.lock().busy -= 1;
            }
        }
    }
}
