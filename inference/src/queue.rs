//! The request queue: a bounded line of waiting generations in front of a
//! fixed number of sequence slots.
//!
//! Each slot is a thread with its own llama.cpp context ([`Session`]), so
//! a slot keeps the KV cache of its last request and a next request that
//! shares a prefix (a system prompt, an earlier turn) does not evaluate it
//! again. A full queue refuses new work at once ([`Full`], which the API
//! answers with 429). A request whose client went away is skipped if it is
//! still waiting and stopped within one token if it is running, which frees
//! its slot for the next one.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedSender;

use crate::engine::{Engine, Finish, Generate, Session, Stats};

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

impl Queue {
    /// Starts `slots` slot threads on `engine`, each with a context of
    /// `context` tokens and `threads` threads, taking at most `capacity`
    /// waiting requests.
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
        for i in 0..slots {
            // A context stays on the thread that made it; the first failure
            // to make one is reported here.
            let (made, result) = std::sync::mpsc::channel();
            let q2 = q.clone();
            std::thread::Builder::new()
                .name(format!("slot{i}"))
                .spawn(move || match engine.session(context, threads) {
                    Ok(session) => {
                        let _ = made.send(Ok(()));
                        q2.serve(session);
                    }
                    Err(e) => {
                        let _ = made.send(Err(e));
                    }
                })
                .map_err(|e| format!("starting slot {i}: {e}"))?;
            result
                .recv()
                .map_err(|_| format!("slot {i} ended at start"))?
                .map_err(|e| format!("slot {i}: {e}"))?;
        }
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
        // A slot thread never panics while holding the lock, but a poisoned
        // lock must not take the API down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, mut session: Session<'static>) {
        loop {
            let job = {
                let mut st = self.lock();
                loop {
                    match st.waiting.pop_front() {
                        Some(j) if j.cancelled() => {
                            self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(j) => {
                            st.busy += 1;
                            break j;
                        }
                        None => {
                            st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
                        }
                    }
                }
            };
            // A panic in one generation (a bug, never expected) must not
            // take the slot or the busy count with it.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run(&mut session, job)
            }));
            if run.is_err() {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("llmos-runtime: a generation panicked; its slot was reset");
                session.reset();
            }
            self.lock().busy -= 1;
        }
    }

    fn run(&self, session: &mut Session<'static>, job: Job) {
        let mut out = Sink {
            events: &job.events,
            cancel: &job.cancel,
        };
        let started = Instant::now();
        let result = session.complete(job.tokens.clone(), &job.generate, &mut out);
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
