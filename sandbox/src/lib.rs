//! The llmos userland: WebAssembly modules run by the `wasmi` interpreter
//! with WASI preview1 over a capability-scoped in-memory filesystem
//! ([`vfs`], [`wasi`]), under hard limits.
//!
//! A [`Sandbox`] holds the engine and the server's caps. [`Sandbox::compile`]
//! checks and translates a module once (lazily, function by function, as
//! they are first called); [`Sandbox::run`] instantiates it for one run
//! with its own store, files and limits, and returns a structured
//! [`Outcome`]. Every limit is enforced by a mechanism:
//!
//! | limit | mechanism |
//! |---|---|
//! | instructions | wasmi fuel |
//! | wall clock | fuel slices with a deadline check between them; `poll_oneoff` never sleeps past it |
//! | memory, table | a resource limiter on every grow (and the initial sizes), counting what is allocated |
//! | module size | checked before parsing; wasmi's strict limits on function count and shape |
//! | output | stdout/stderr capture stops the run at the cap (`truncated`) |
//! | files | open descriptors; the host bytes of files, directories and names, counted by the filesystem |
//! | recursion | wasmi's call-depth and value-stack limits |
//! | concurrency | a global count of runs and of the memory they may hold |
//!
//! The memory parts add up to a run's budget ([`Effective::budget`]),
//! which the admission reserves whole, so the runs at once together stay
//! within the server's total. A request's limits can only tighten the
//! server's caps ([`Limits`]).

#![forbid(unsafe_code)]

mod caps;
pub mod errno;
pub mod manifest;
pub mod vfs;
pub mod wasi;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmi::{CompilationMode, Config, EnforcedLimits, Engine, Linker, Module, Store, TrapCode};
use wasmi_core::LimiterError;

pub use caps::{Caps, Effective, INTERPRETER_BYTES, Limits, TooLittleMemory};

/// Which limit ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The instruction budget.
    Fuel,
    /// The wall-clock time.
    WallClock,
    /// Linear memory and tables (also: a run that needs more memory than
    /// the whole sandbox has).
    Memory,
    /// Table elements.
    Table,
    /// Call depth or value stack.
    Stack,
    /// Captured output.
    Output,
    /// The room for files: the run got `NOSPC` and then failed.
    Files,
    /// The module is too large or too complex.
    Module,
    /// Too many runs at once, or too much memory promised to them.
    Concurrency,
}

impl Limit {
    /// Its name in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Fuel => "fuel",
            Limit::WallClock => "wall_clock",
            Limit::Memory => "memory",
            Limit::Table => "table",
            Limit::Stack => "stack",
            Limit::Output => "output",
            Limit::Files => "files",
            Limit::Module => "module",
            Limit::Concurrency => "concurrency",
        }
    }
}

/// What a run may import.
#[derive(Debug, Clone)]
pub enum Grant {
    /// Every WASI preview1 function.
    Wasi,
    /// Only these WASI functions.
    Only(Vec<String>),
}

impl Grant {
    fn allows(&self, module: &str, name: &str) -> bool {
        module == wasi::MODULE
            && match self {
                Grant::Wasi => wasi::FUNCTIONS.contains(&name),
                Grant::Only(v) => v.iter().any(|n| n == name),
            }
    }
}

/// A read-only directory a run can see: files by relative path.
#[derive(Debug, Clone, Default)]
pub struct Mount {
    /// Where the guest sees it (a preopen name such as `/lib`).
    pub guest: String,
    /// Relative path → contents.
    pub files: Arc<BTreeMap<String, Arc<Vec<u8>>>>,
}

/// A writable directory kept between runs by the caller. Its bytes count
/// against the same capacity as the scratch directory.
#[derive(Debug, Clone, Default)]
pub struct DataDir {
    /// Where the guest sees it (a preopen name such as `/data`).
    pub guest: String,
    /// What it holds when the run starts.
    pub items: Vec<vfs::Item>,
}

/// One run.
#[derive(Debug, Clone)]
pub struct Run {
    /// `argv` (the first is the program name).
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Standard input.
    pub stdin: Vec<u8>,
    /// Files put into the scratch directory first (name → contents).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Where the scratch directory is seen.
    pub scratch: String,
    /// Read-only mounts.
    pub mounts: Vec<Mount>,
    /// A writable directory that outlives the run (an app's data): its
    /// contents go in before the run and come back in [`Outcome::data`].
    pub data: Option<DataDir>,
    /// What it may import.
    pub grant: Grant,
    /// Requested limits.
    pub limits: Limits,
}

impl Default for Run {
    fn default() -> Self {
        Self {
            args: vec!["main".into()],
            env: Vec::new(),
            stdin: Vec::new(),
            files: BTreeMap::new(),
            scratch: "/tmp".into(),
            mounts: Vec::new(),
            data: None,
            grant: Grant::Wasi,
            limits: Limits::default(),
        }
    }
}

/// A trap: its kind and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Trap {
    /// A short name (`unreachable`, `memory_out_of_bounds`, …).
    pub kind: String,
    /// What wasmi said.
    pub message: String,
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the cap.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the cap.
    pub stderr_truncated: bool,
    /// The exit code (0 when `_start` returned).
    pub exit_code: Option<i32>,
    /// The trap, if it trapped.
    pub trap: Option<Trap>,
    /// The limit that ended it, if one did. `Files` when the program got
    /// `NOSPC` and then failed (exited non-zero or trapped), or the files
    /// given to the run did not fit.
    pub limit: Option<Limit>,
    /// An error before it started (a refused import, a bad module).
    pub error: Option<String>,
    /// Instructions used.
    pub fuel_used: u64,
    /// How long it took.
    pub duration: Duration,
    /// The data directory as the run left it (when the run had one and
    /// got as far as starting).
    pub data: Option<Vec<vfs::Item>>,
}

/// Grow checks for one run; records which limit refused.
///
/// wasmi keeps a linear memory and a table each in a `Vec`, grown with
/// `try_reserve`: when one must move, its allocation becomes at least
/// twice what it was (std's amortized growth). The limiter counts that
/// allocation, not the size the module sees, against the memory cap. The
/// one memory is followed exactly; tables (which the limiter can't tell
/// apart) are counted at their bound, twice their elements of 4 bytes.
#[derive(Debug)]
pub struct Limiter {
    memory: u64,
    table: u32,
    hit: Option<Limit>,
    /// The linear memory's allocation in bytes.
    linear: u64,
    /// Elements of all tables together.
    elements: u64,
    /// `linear` and `elements` before the last grow allowed, put back if
    /// it then fails.
    before: (u64, u64),
}

/// What a table element is counted as: 4 bytes, allocated twice over.
const ELEMENT_BYTES: u64 = 8;

impl Limiter {
    fn new(memory: u64, table: u32) -> Self {
        Self {
            memory,
            table,
            hit: None,
            linear: 0,
            elements: 0,
            before: (0, 0),
        }
    }

    /// The host bytes of memory and tables.
    pub fn held(&self) -> u64 {
        self.linear
            .saturating_add(self.elements.saturating_mul(ELEMENT_BYTES))
    }

    /// Allows growing to `linear` bytes of memory and `elements` table
    /// elements if they fit in the memory cap.
    fn grow(&mut self, linear: u64, elements: u64) -> Result<bool, LimiterError> {
        let before = (self.linear, self.elements);
        (self.linear, self.elements) = (linear, elements);
        if self.held() > self.memory {
            (self.linear, self.elements) = before;
            self.hit = Some(Limit::Memory);
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        self.before = before;
        Ok(true)
    }

    fn grow_failed(&mut self) {
        (self.linear, self.elements) = self.before;
    }
}

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        let desired = desired as u64;
        let linear = if desired <= self.linear {
            self.linear
        } else {
            desired.max(self.linear.saturating_mul(2))
        };
        self.grow(linear, self.elements)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if desired as u64 > u64::from(self.table) {
            self.hit = Some(Limit::Table);
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        let more = (desired as u64).saturating_sub(current as u64);
        self.grow(self.linear, self.elements.saturating_add(more))
    }

    fn memory_grow_failed(
        &mut self,
        _error: &wasmi::errors::MemoryError,
    ) -> Result<(), LimiterError> {
        self.grow_failed();
        Ok(())
    }

    fn table_grow_failed(
        &mut self,
        _error: &wasmi::errors::TableError,
    ) -> Result<(), LimiterError> {
        self.grow_failed();
        Ok(())
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        1
    }
}

/// A checked, translated module, ready to run many times.
#[derive(Clone)]
pub struct Program {
    module: Module,
    origin: Origin,
}

impl Program {
    /// The module's imports as `module::name`.
    pub fn imports(&self) -> Vec<String> {
        self.module
            .imports()
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect()
    }
}

/// Instructions per slice between deadline checks (a few milliseconds of
/// interpretation).
const SLICE: u64 = 250_000;

/// Where a module comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Shipped with llmos and checked by its SHA-256 (the Python and
    /// JavaScript interpreters, first-party apps): wasmi's default
    /// structural limits (CPython has 11,448 functions).
    Trusted,
    /// Anything else (code a person or the model supplies): also wasmi's
    /// strict limits on functions, globals, tables, segments and function
    /// shape.
    Untrusted,
}

/// The engine, the WASI functions and the caps.
pub struct Sandbox {
    /// (engine, linker) for trusted and for untrusted modules.
    trusted: (Engine, Linker<wasi::Ctx>),
    untrusted: (Engine, Linker<wasi::Ctx>),
    /// The server's caps.
    pub caps: Caps,
    active: Mutex<(usize, u64)>,
}

impl Sandbox {
    /// A sandbox with these caps.
    pub fn new(caps: Caps) -> Result<Self, String> {
        if caps.total_memory < caps.run_budget() {
            return Err(format!(
                "the sandbox's total memory ({} MiB) is less than one run's budget ({} MiB: memory, files, output and the interpreter): no run could start",
                caps.total_memory >> 20,
                caps.run_budget().div_ceil(1 << 20)
            ));
        }
        let make = |strict: bool| -> Result<(Engine, Linker<wasi::Ctx>), String> {
            let mut config = Config::default();
            config
                .consume_fuel(true)
                .compilation_mode(CompilationMode::LazyTranslation)
                .set_max_recursion_depth(10_000)
                .allow_start_fn(false)
                // Lazy translation charges no fuel: in wasmi 2.0.0 running
                // out of fuel while translating a function mid-run is not
                // resumable. Translation is bounded by the module size and
                // (untrusted) the strict limits on function shape.
                .fuel_cost(wasmi::CustomFuelCosts {
                    bytes_copied_per_fuel: 64,
                    fuel_per_bytes_translated: 0,
                    fuel_per_bytes_validated: 0,
                });
            if strict {
                config.enforced_limits(EnforcedLimits::strict());
            }
            let engine = Engine::new(&config);
            let mut linker = Linker::new(&engine);
            wasi::add_to_linker(&mut linker).map_err(|e| format!("defining WASI: {e}"))?;
            Ok((engine, linker))
        };
        Ok(Self {
            trusted: make(false)?,
            untrusted: make(true)?,
            caps,
            active: Mutex::new((0, 0)),
        })
    }

    /// The engine and linker for modules from `origin`.
    fn for_origin(&self, origin: Origin) -> &(Engine, Linker<wasi::Ctx>) {
        match origin {
            Origin::Trusted => &self.trusted,
            Origin::Untrusted => &self.untrusted,
        }
    }

    /// Checks and translates `wasm` (a binary module) from `origin`.
    pub fn compile(&self, wasm: &[u8], origin: Origin) -> Result<Program, (Limit, String)> {
        if wasm.len() > self.caps.module_bytes {
            return Err((
                Limit::Module,
                format!(
                    "the module is {} bytes, more than the limit of {}",
                    wasm.len(),
                    self.caps.module_bytes
                ),
            ));
        }
        let engine = &self.for_origin(origin).0;
        let module = Module::new(engine, wasm).map_err(|e| {
            let limit = matches!(e.kind(), wasmi::errors::ErrorKind::UserLimits(_));
            (
                Limit::Module,
                if limit {
                    format!("the module is too complex for the sandbox: {e}")
                } else {
                    format!("not a valid WebAssembly module: {e}")
                },
            )
        })?;
        Ok(Program { module, origin })
    }

    /// Runs `program` once.
    pub fn run(&self, program: &Program, run: &Run) -> Outcome {
        let start = Instant::now();
        let lim = self.caps.apply(&run.limits);
        let mut out = Outcome::default();
        // Admission: a run slot, and its budget and the copy of its input
        // promised.
        let reserve = lim.budget().saturating_add(input_bytes(run));
        if reserve > self.caps.total_memory {
            out.limit = Some(Limit::Memory);
            out.error = Some(format!(
                "the run needs {} MiB (its budget and input), more than the sandbox's {} MiB in all",
                reserve.div_ceil(1 << 20),
                self.caps.total_memory >> 20
            ));
            out.duration = start.elapsed();
            return out;
        }
        {
            let mut a = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if a.0 >= self.caps.concurrent || a.1.saturating_add(reserve) > self.caps.total_memory {
                out.limit = Some(Limit::Concurrency);
                out.error = Some(format!(
                    "the sandbox is busy: {} run(s) at once holding {} MiB, at most {} and {} MiB; this one needs {} MiB; try again",
                    a.0,
                    a.1.div_ceil(1 << 20),
                    self.caps.concurrent,
                    self.caps.total_memory >> 20,
                    reserve.div_ceil(1 << 20)
                ));
                return out;
            }
            a.0 += 1;
            a.1 += reserve;
        }
        // Given back however the run ends, a panic included.
        struct Admitted<'a>(&'a Mutex<(usize, u64)>, u64);
        impl Drop for Admitted<'_> {
            fn drop(&mut self) {
                let mut a = self.0.lock().unwrap_or_else(|p| p.into_inner());
                a.0 -= 1;
                a.1 -= self.1;
            }
        }
        let _admitted = Admitted(&self.active, reserve);
        self.run_admitted(program, run, &lim, &mut out);
        out.duration = start.elapsed();
        out
    }

    fn run_admitted(&self, program: &Program, run: &Run, lim: &Effective, out: &mut Outcome) {
        let refused: Vec<String> = program
            .module
            .imports()
            .filter(|i| {
                !(matches!(i.ty(), wasmi::ExternType::Func(_))
                    && run.grant.allows(i.module(), i.name()))
            })
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect();
        if !refused.is_empty() {
            out.error = Some(format!("imports not granted: {}", refused.join(", ")));
            return;
        }
        let deadline = Instant::now() + lim.wall;
        // The files: scratch first, then the mounts, in fd order from 3.
        let mut fs = vfs::Vfs::new(self.caps.scratch);
        let scratch = fs.root(true);
        let mut preopens = vec![(run.scratch.clone(), scratch)];
        let data = match &run.data {
            Some(d) => {
                let root = fs.root(true);
                if let Err(e) = fs.import(root, &d.items, wasi::now_ns()) {
                    out.limit = (e == errno::NOSPC).then_some(Limit::Files);
                    out.error = Some(format!(
                        "the data directory could not be loaded (WASI errno {e}: {})",
                        if e == errno::NOSPC {
                            "larger than the scratch capacity"
                        } else {
                            "a bad path"
                        }
                    ));
                    return;
                }
                preopens.push((d.guest.clone(), root));
                Some(root)
            }
            None => None,
        };
        for (name, data) in &run.files {
            let r = fs
                .create(scratch, name, false, 0)
                .and_then(|ino| fs.write(ino, 0, data, 0));
            if let Err(e) = r {
                out.limit = (e == errno::NOSPC).then_some(Limit::Files);
                out.error = Some(format!(
                    "the input file {name:?} could not be written (WASI errno {e})"
                ));
                return;
            }
        }
        for m in &run.mounts {
            let root = fs.root(false);
            for (path, data) in m.files.iter() {
                if let Err(e) = fs.mount_file(root, path, data.to_vec()) {
                    out.limit = (e == errno::NOSPC).then_some(Limit::Files);
                    out.error = Some(format!(
                        "the mounted file {path:?} is not valid (WASI errno {e})"
                    ));
                    return;
                }
            }
            preopens.push((m.guest.clone(), root));
        }
        let limiter = Limiter::new(lim.memory, self.caps.table);
        let ctx = wasi::Ctx::new(
            fs,
            preopens,
            &run.args,
            &run.env,
            run.stdin.clone(),
            lim.output,
            self.caps.files,
            limiter,
            deadline,
        );
        let (engine, linker) = self.for_origin(program.origin);
        let mut store = Store::new(engine, ctx);
        store.limiter(|c| &mut c.limits);
        let mut given = lim.fuel.min(SLICE);
        let mut used = 0u64;
        let result = (|| -> Result<Option<i32>, wasmi::Error> {
            store.set_fuel(given)?;
            let instance = linker.instantiate_and_start(&mut store, &program.module)?;
            let entry = instance.get_typed_func::<(), ()>(&store, "_start")?;
            let mut step = entry.call_resumable(&mut store, ())?;
            loop {
                match step {
                    wasmi::TypedResumableCall::Finished(()) => return Ok(Some(0)),
                    wasmi::TypedResumableCall::OutOfFuel(paused) => {
                        let left = store.get_fuel()?;
                        used += given - left;
                        // Counted: the final tally adds nothing more.
                        given = left;
                        if used >= lim.fuel {
                            return Err(wasmi::Error::host(wasi::Stop(Limit::Fuel)));
                        }
                        if Instant::now() >= deadline {
                            return Err(wasmi::Error::host(wasi::Stop(Limit::WallClock)));
                        }
                        given = SLICE.min(lim.fuel - used).max(paused.required_fuel());
                        store.set_fuel(given)?;
                        step = paused.resume(&mut store)?;
                    }
                    wasmi::TypedResumableCall::HostTrap(paused) => {
                        let e = paused.host_error();
                        if let Some(code) = e.i32_exit_status() {
                            return Ok(Some(code));
                        }
                        if let Some(stop) = e.downcast_ref::<wasi::Stop>() {
                            return Err(wasmi::Error::host(*stop));
                        }
                        return Err(wasmi::Error::new(e.to_string()));
                    }
                }
            }
        })();
        used += given.saturating_sub(store.get_fuel().unwrap_or(0));
        out.fuel_used = used.min(lim.fuel);
        let ctx = store.data_mut();
        match result {
            Ok(code) => out.exit_code = code,
            Err(e) => {
                if let Some(code) = e.i32_exit_status() {
                    out.exit_code = Some(code);
                } else if let Some(stop) = e.downcast_ref::<wasi::Stop>() {
                    out.limit = Some(stop.0);
                    out.trap = Some(Trap {
                        kind: "limit".into(),
                        message: stop.to_string(),
                    });
                } else {
                    let code = e.as_trap_code();
                    out.limit = match code {
                        Some(TrapCode::OutOfFuel) => Some(Limit::Fuel),
                        Some(TrapCode::StackOverflow) => Some(Limit::Stack),
                        Some(TrapCode::GrowthOperationLimited) | None => ctx.limits.hit,
                        _ => None,
                    };
                    out.trap = Some(Trap {
                        kind: code.map_or("error", trap_name).into(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if out.limit.is_none() {
            out.limit = ctx.limits.hit.filter(|_| out.trap.is_some());
        }
        // A program that got NOSPC and then failed ran out of room for
        // its files (one that coped and exited 0 did not end at a limit).
        if out.limit.is_none() && ctx.vfs.refused() && out.exit_code != Some(0) {
            out.limit = Some(Limit::Files);
        }
        out.data = data.map(|root| ctx.vfs.take(root));
        out.stdout = std::mem::take(&mut ctx.stdout.data);
        out.stderr = std::mem::take(&mut ctx.stderr.data);
        out.stdout_truncated = ctx.stdout.truncated;
        out.stderr_truncated = ctx.stderr.truncated;
    }
}

/// The bytes a run's state copies from `run`: standard input, arguments
/// and environment (files are counted by the filesystem).
fn input_bytes(run: &Run) -> u64 {
    let strings = run.args.iter().map(|a| a.len() + 1);
    let env = run.env.iter().map(|(k, v)| k.len() + v.len() + 2);
    strings
        .chain(env)
        .fold(run.stdin.len() as u64, |n, b| n.saturating_add(b as u64))
}

fn trap_name(c: TrapCode) -> &'static str {
    match c {
        TrapCode::UnreachableCodeReached => "unreachable",
        TrapCode::MemoryOutOfBounds => "memory_out_of_bounds",
        TrapCode::TableOutOfBounds => "table_out_of_bounds",
        TrapCode::IndirectCallToNull => "indirect_call_to_null",
        TrapCode::IntegerDivisionByZero => "integer_division_by_zero",
        TrapCode::IntegerOverflow => "integer_overflow",
        TrapCode::BadConversionToInteger => "bad_conversion_to_integer",
        TrapCode::StackOverflow => "stack_overflow",
        TrapCode::BadSignature => "bad_signature",
        TrapCode::OutOfFuel => "out_of_fuel",
        TrapCode::GrowthOperationLimited => "growth_limited",
        TrapCode::OutOfSystemMemory => "out_of_system_memory",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmi::ResourceLimiter;
    use wasmi::errors::MemoryError;

    const PAGE: usize = 64 << 10;

    #[test]
    fn the_limiter_counts_what_wasmi_allocates() {
        let mut l = Limiter::new(16 << 20, 1000);
        let grow = |l: &mut Limiter, from: usize, to: usize| l.memory_growing(from, to, None);
        assert!(grow(&mut l, 0, 3 * PAGE).unwrap());
        assert_eq!(l.held(), 3 * PAGE as u64);
        // Growing past the allocation moves it to twice its size …
        grow(&mut l, 3 * PAGE, 4 * PAGE).unwrap();
        assert_eq!(l.held(), 6 * PAGE as u64);
        // … which then holds growth up to it.
        grow(&mut l, 4 * PAGE, 6 * PAGE).unwrap();
        assert_eq!(l.held(), 6 * PAGE as u64);
        // A grow that fails after it was allowed is given back.
        grow(&mut l, 6 * PAGE, 7 * PAGE).unwrap();
        assert_eq!(l.held(), 12 * PAGE as u64);
        l.memory_grow_failed(&MemoryError::OutOfSystemMemory)
            .unwrap();
        assert_eq!(l.held(), 6 * PAGE as u64);
        // 12 MiB fits under 16 MiB; moving to 24 MiB does not.
        grow(&mut l, 6 * PAGE, 192 * PAGE).unwrap();
        assert_eq!(l.held(), 12 << 20);
        assert!(grow(&mut l, 192 * PAGE, 193 * PAGE).is_err());
        assert_eq!((l.held(), l.hit), (12 << 20, Some(Limit::Memory)));
        // Table elements count 8 bytes each, against the same cap.
        l.hit = None;
        assert!(l.table_growing(0, 1000, None).unwrap());
        assert_eq!(l.held(), (12 << 20) + 8000);
        assert!(l.table_growing(1000, 1001, None).is_err());
        assert_eq!(l.hit, Some(Limit::Table));
        let mut small = Limiter::new(4000, 1000);
        assert!(small.table_growing(0, 600, None).is_err());
        assert_eq!(small.hit, Some(Limit::Memory));
    }
}
