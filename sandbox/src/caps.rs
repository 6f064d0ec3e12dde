//! The server's caps on every run ([`Caps`]), the limits a request asks
//! for ([`Limits`]), which only tighten them, and what one run gets
//! ([`Effective`]).
//!
//! [`Caps::for_memory`] derives the caps from the memory the machine can
//! give the sandbox, so that no combination of runs at once can take more;
//! a [`Caps`] displays as the one line the runtime's status block prints.
//!
//! A run's memory is one budget ([`Effective::budget`]): its linear memory
//! and tables as allocated (`memory`), its files' host bytes (`scratch`),
//! both captured streams (`output` each) and the interpreter's own
//! ([`INTERPRETER_BYTES`]). Each part is held to its cap while the run
//! goes, and the admission reserves the whole budget, so the runs at
//! once never hold more than `total_memory` together.

use std::fmt;
use std::time::Duration;

/// The host bytes wasmi holds for a run beyond its memories and tables:
/// the value stack (at most 1 MB, which may be allocated twice over as it
/// grows), the call stack (10,000 frames), the store and the instance.
/// Reserved for every run. Compiled code is not in it: a module's is
/// translated once, for all its runs.
pub const INTERPRETER_BYTES: u64 = 4 << 20;

/// The most runs at once [`Caps::for_memory`] sets.
const MAX_RUNS: u64 = 4;
/// [`Caps::for_memory`] sets one run more for each this much memory.
const RUN_SHARE: u64 = 128 << 20;
/// The least memory cap [`Caps::for_memory`] sets. CPython 3.12 starts in
/// its initial 10 MiB of linear memory (160 pages; `print(1)` and
/// importing json, re, collections and datetime never grow it, measured
/// here), and its first growth moves it to a 20 MiB allocation; 32 MiB
/// lets it have those 20 MiB.
const MIN_MEMORY: u64 = 32 << 20;
/// The least files cap it sets.
const MIN_SCRATCH: u64 = 4 << 20;
/// The room for each run's input (standard input, arguments and
/// environment, which the admission reserves besides the budget) in the
/// total of [`Caps::default`] and [`Caps::for_memory`].
const INPUT_BYTES: u64 = 1 << 20;

/// The server's caps: no request can go beyond them.
#[derive(Debug, Clone)]
pub struct Caps {
    /// Instructions (fuel) per run.
    pub fuel: u64,
    /// Wall-clock time per run.
    pub wall: Duration,
    /// Host bytes of linear memory and tables per run, as allocated (a
    /// memory that must move is allocated twice its size, so a module gets
    /// at least half of this as linear memory, all of it when it grows in
    /// large steps).
    pub memory: u64,
    /// Table elements per table.
    pub table: u32,
    /// Module size in bytes.
    pub module_bytes: usize,
    /// Captured bytes of stdout, and of stderr.
    pub output: usize,
    /// Open descriptors (including stdio and preopens).
    pub files: usize,
    /// Host bytes a run's files may hold (scratch, data directory and
    /// mounts together), as the filesystem counts them ([`crate::vfs`]).
    pub scratch: u64,
    /// Runs at once.
    pub concurrent: usize,
    /// Host bytes all running runs may hold together: each run reserves
    /// its budget ([`Effective::budget`]) and its input when admitted.
    pub total_memory: u64,
}

impl Default for Caps {
    /// Four runs of 256 MiB memory, 64 MiB files and 1 MiB output, and
    /// the total memory they need (with 1 MiB of input each).
    fn default() -> Self {
        let mut caps = Self {
            // About 16 s of CPython's busiest loop in the release build
            // here: the wall clock binds first.
            fuel: 2_000_000_000_000,
            wall: Duration::from_secs(10),
            memory: 256 << 20,
            table: 100_000,
            module_bytes: 40 << 20,
            output: 1 << 20,
            files: 64,
            scratch: 64 << 20,
            concurrent: 4,
            total_memory: 0,
        };
        caps.total_memory =
            (caps.run_budget() + INPUT_BYTES).saturating_mul(caps.concurrent as u64);
        caps
    }
}

impl Caps {
    /// Caps for a sandbox that may use `available` bytes of host memory
    /// (in llmos: what is left after the model, the KV cache and a
    /// reserve). All of it is the total; there is one run at once for
    /// each 128 MiB, from 1 to 4; each run gets an equal share (at most
    /// the default run's), split into 1 MiB of each output stream, the
    /// interpreter's 4 MiB, 1 MiB for its input, a fifth of the rest for
    /// files (4 to 64 MiB) and the rest for memory (32 to 256 MiB), in
    /// whole MiB. The runs at once together, with up to 1 MiB of input
    /// each, never need more than `available`. The other caps are the
    /// defaults.
    pub fn for_memory(available: u64) -> Result<Caps, TooLittleMemory> {
        const MIB: u64 = 1 << 20;
        let base = Caps::default();
        let fixed = 2 * base.output as u64 + INTERPRETER_BYTES + INPUT_BYTES;
        let needed = MIN_MEMORY + MIN_SCRATCH + fixed;
        if available < needed {
            return Err(TooLittleMemory { available, needed });
        }
        let runs = (available / RUN_SHARE).clamp(1, MAX_RUNS);
        let share = (available / runs).min(base.run_budget() + INPUT_BYTES) / MIB * MIB;
        // At least `needed`, so at least MIN_MEMORY + MIN_SCRATCH.
        let rest = share - fixed;
        let scratch = (rest / 5 / MIB * MIB).clamp(MIN_SCRATCH, base.scratch);
        let memory = (rest - scratch).clamp(MIN_MEMORY, base.memory);
        Ok(Caps {
            memory,
            scratch: scratch.min(rest - memory),
            concurrent: runs as usize,
            total_memory: available,
            ..base
        })
    }

    /// The names [`Caps::set`] takes, with their units.
    pub const KEYS: &'static str = "fuel, wall_ms, memory_mib, table, module_mib, output_kib, files, scratch_mib, runs, total_memory_mib";

    /// Sets one cap from `key=value` (for a command line). Values are
    /// whole numbers (`_` allowed) within sane bounds.
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let (key, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: use KEY=VALUE; keys: {}", Self::KEYS))?;
        let n: u64 = value
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{key}: {value:?} is not a whole number"))?;
        let within = |lo: u64, hi: u64| {
            if (lo..=hi).contains(&n) {
                Ok(n)
            } else {
                Err(format!("{key}: {n} is not between {lo} and {hi}"))
            }
        };
        match key.trim() {
            "fuel" => self.fuel = within(1_000_000, u64::MAX / 2)?,
            "wall_ms" => self.wall = Duration::from_millis(within(100, 3_600_000)?),
            // A wasm32 memory can't exceed 4 GiB.
            "memory_mib" => self.memory = within(1, 4096)? << 20,
            "table" => self.table = within(1, 10_000_000)? as u32,
            "module_mib" => self.module_bytes = (within(1, 1024)? << 20) as usize,
            "output_kib" => self.output = (within(1, 1 << 20)? << 10) as usize,
            "files" => self.files = within(8, 4096)? as usize,
            "scratch_mib" => self.scratch = within(1, 65536)? << 20,
            "runs" => self.concurrent = within(1, 1024)? as usize,
            "total_memory_mib" => self.total_memory = within(1, 1 << 20)? << 20,
            other => {
                return Err(format!(
                    "unknown sandbox cap {other:?}; keys: {}",
                    Self::KEYS
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Caps {
    /// One line: `4 runs at once, each 200 MiB memory + 50 MiB files +
    /// 1 MiB stdout + 1 MiB stderr + 4 MiB interpreter, 1024 MiB in all`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let output = Bytes(self.output as u64);
        write!(
            f,
            "{} run{} at once, each {} memory + {} files + {output} stdout + {output} stderr + {} interpreter, {} in all",
            self.concurrent,
            if self.concurrent == 1 { "" } else { "s" },
            Bytes(self.memory),
            Bytes(self.scratch),
            Bytes(INTERPRETER_BYTES),
            Bytes(self.total_memory),
        )
    }
}

/// A size in the largest of MiB, KiB or bytes that it is a whole number of.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n > 0 && n % (1 << 20) == 0 => write!(f, "{} MiB", n >> 20),
            n if n > 0 && n % (1 << 10) == 0 => write!(f, "{} KiB", n >> 10),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// The memory given to [`Caps::for_memory`] is too little for one run
/// that can start CPython and do some work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLittleMemory {
    /// The bytes it was given.
    pub available: u64,
    /// The bytes one such run needs.
    pub needed: u64,
}

impl fmt::Display for TooLittleMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the sandbox would have {}, less than the {} one run needs ({} memory, {} files, output, input and the interpreter's own): no run could start",
            Bytes(self.available),
            Bytes(self.needed),
            Bytes(MIN_MEMORY),
            Bytes(MIN_SCRATCH),
        )
    }
}

impl std::error::Error for TooLittleMemory {}

/// Limits a request asks for; each only tightens the matching cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Instructions.
    pub fuel: Option<u64>,
    /// Wall-clock milliseconds.
    pub wall_ms: Option<u64>,
    /// Memory bytes.
    pub memory: Option<u64>,
    /// Output bytes per stream.
    pub output: Option<usize>,
}

impl Limits {
    /// Each limit the smaller of the two (a missing one doesn't loosen).
    pub fn tighten(&self, other: &Limits) -> Limits {
        fn min<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Limits {
            fuel: min(self.fuel, other.fuel),
            wall_ms: min(self.wall_ms, other.wall_ms),
            memory: min(self.memory, other.memory),
            output: min(self.output, other.output),
        }
    }
}

/// The limits of one run: the caps, tightened by the request.
#[derive(Debug, Clone)]
pub struct Effective {
    /// Instructions.
    pub fuel: u64,
    /// Wall-clock time.
    pub wall: Duration,
    /// Memory bytes (linear memory and tables, as allocated).
    pub memory: u64,
    /// Output bytes per stream.
    pub output: usize,
    /// Host bytes of the run's files.
    pub scratch: u64,
}

impl Effective {
    /// The most host bytes the run may hold: memory, files, both output
    /// streams and the interpreter's own.
    pub fn budget(&self) -> u64 {
        self.memory
            .saturating_add(self.scratch)
            .saturating_add((self.output as u64).saturating_mul(2))
            .saturating_add(INTERPRETER_BYTES)
    }
}

impl Caps {
    /// The budget of a run that asks for no lower limits.
    pub fn run_budget(&self) -> u64 {
        self.apply(&Limits::default()).budget()
    }

    /// `req` within these caps.
    pub fn apply(&self, req: &Limits) -> Effective {
        Effective {
            scratch: self.scratch,
            fuel: req.fuel.map_or(self.fuel, |f| f.min(self.fuel)),
            wall: req
                .wall_ms
                .map_or(self.wall, |ms| Duration::from_millis(ms).min(self.wall)),
            memory: req.memory.map_or(self.memory, |m| m.min(self.memory)),
            output: req.output.map_or(self.output, |o| o.min(self.output)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sandbox;

    #[test]
    fn caps_are_set_by_name_within_bounds() {
        let mut c = Caps::default();
        c.set("fuel=5_000_000").unwrap();
        c.set("wall_ms = 2500").unwrap();
        c.set("memory_mib=128").unwrap();
        c.set("runs=2").unwrap();
        assert_eq!(c.fuel, 5_000_000);
        assert_eq!(c.wall, Duration::from_millis(2500));
        assert_eq!(c.memory, 128 << 20);
        assert_eq!(c.concurrent, 2);
        for (bad, why) in [
            ("fuel", "KEY=VALUE"),
            ("speed=1", "unknown sandbox cap"),
            ("memory_mib=0", "between 1 and 4096"),
            ("memory_mib=5000", "between 1 and 4096"),
            ("wall_ms=ten", "not a whole number"),
            ("runs=-1", "not a whole number"),
        ] {
            let e = c.set(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // 128 MiB memory, 64 MiB files, 2 MiB output and the interpreter's.
        assert_eq!(c.run_budget(), (128 + 64 + 2 + 4) << 20);
        c.set("total_memory_mib=197").unwrap();
        let e = Sandbox::new(c.clone()).err().unwrap();
        assert!(e.contains("no run could start"), "{e}");
        c.set("total_memory_mib=198").unwrap();
        assert!(Sandbox::new(c).is_ok());
    }

    #[test]
    fn caps_from_memory_fit_in_it() {
        const MIB: u64 = 1 << 20;
        // Enough for the default runs: the defaults.
        let d = Caps::default();
        let c = Caps::for_memory(d.total_memory).unwrap();
        assert_eq!(
            (c.concurrent, c.memory, c.scratch, c.output, c.total_memory),
            (d.concurrent, d.memory, d.scratch, d.output, d.total_memory)
        );
        assert_eq!(
            c.to_string(),
            "4 runs at once, each 256 MiB memory + 64 MiB files + 1 MiB stdout + 1 MiB stderr + 4 MiB interpreter, 1308 MiB in all"
        );
        for (available, runs, memory, scratch) in [
            (1024, 4, 200, 49),
            (400, 3, 101, 25),
            (200, 1, 155, 38),
            (43, 1, 32, 4),
            (64 << 10, 4, 256, 64),
        ] {
            let c = Caps::for_memory(available * MIB).unwrap();
            assert_eq!(
                (c.concurrent, c.memory / MIB, c.scratch / MIB),
                (runs, memory, scratch),
                "{available} MiB: {c}"
            );
        }
        let e = Caps::for_memory(42 * MIB).unwrap_err();
        assert_eq!(e.needed, 43 * MIB);
        assert!(e.to_string().contains("no run could start"), "{e}");
        // Whatever there is, the runs at once and their input fit in it,
        // each with at least the least memory and files.
        for available in (43 * MIB..70_000 * MIB).step_by(7 * MIB as usize + 12_345) {
            let c = Caps::for_memory(available).unwrap();
            assert!(
                c.concurrent as u64 * (c.run_budget() + INPUT_BYTES) <= available,
                "{available}: {c}"
            );
            assert!(c.memory >= MIN_MEMORY && c.scratch >= MIN_SCRATCH, "{c}");
            assert!(Sandbox::new(c).is_ok());
        }
    }
}
