//! Kernel randomness: a ChaCha20 CSPRNG seeded at boot from every source
//! the CPU has.
//!
//! RDSEED and RDRAND are each sampled ([`kcore::entropy::SAMPLES`] words)
//! and health-tested (`kcore::entropy::health_test`); a source that fails
//! is dropped with a log line saying why. The healthy sources' words and
//! TSC jitter (always) are mixed by `kcore::entropy::Pool` into the seed.
//! The boot log names the sources; `/proc/llmos/random` tells programs
//! whether a healthy hardware source was among them ([`proc_text`]).
#![deny(unsafe_code)]

use kcore::entropy::{self, Assessment, Pool, SAMPLES, Source};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use spin::{Mutex, Once};

use crate::arch::x86_64::{rand as hw, tsc};
use crate::klog;

static RNG: Mutex<Option<ChaCha20Rng>> = Mutex::new(None);
static ASSESSMENT: Once<Assessment> = Once::new();

/// Words of TSC jitter mixed into the seed (each from 64 pairs of reads).
const JITTER_WORDS: usize = 64;

fn jitter_word() -> u64 {
    let mut acc = 0u64;
    for _ in 0..64 {
        let a = tsc::read();
        core::hint::black_box(acc.rotate_left(7));
        let b = tsc::read();
        acc = acc.rotate_left(5) ^ b.wrapping_sub(a) ^ b;
    }
    acc
}

/// Samples one hardware source (if the CPU has it), health-tests it and,
/// if it passes, mixes its words into `pool`.
fn sample(
    pool: &mut Pool,
    present: bool,
    name: &'static str,
    label: &str,
    read: fn() -> Option<u64>,
) -> Source {
    if !present {
        return Source::Absent;
    }
    let mut samples = [None; SAMPLES];
    for s in &mut samples {
        *s = read();
    }
    match entropy::health_test(&samples) {
        Ok(words) => {
            pool.absorb_words(label, &words);
            Source::Healthy
        }
        Err(f) => {
            klog!("random", "{name} failed its health test ({f}); not used");
            Source::Failed(f)
        }
    }
}

/// Seeds the generator from every available source and records which
/// ones were used.
pub fn init(has_rdseed: bool, has_rdrand: bool) -> Assessment {
    let mut pool = Pool::new();
    let assessment = Assessment {
        rdseed: sample(&mut pool, has_rdseed, "RDSEED", "rdseed", hw::rdseed64),
        rdrand: sample(&mut pool, has_rdrand, "RDRAND", "rdrand", hw::rdrand64),
    };
    let mut jitter = [0u64; JITTER_WORDS];
    for w in &mut jitter {
        *w = jitter_word();
    }
    pool.absorb_words("tsc", &jitter);
    *RNG.lock() = Some(ChaCha20Rng::from_seed(pool.finish()));
    let sources = assessment.sources().join(" ");
    match assessment.reason() {
        None => klog!("random", "ChaCha20 CSPRNG seeded from {sources}"),
        Some(why) => klog!(
            "random",
            "WARNING: no healthy hardware random source ({why}); CSPRNG seeded from timing jitter only ({sources}), not enough for secrets"
        ),
    }
    *ASSESSMENT.call_once(|| assessment)
}

/// The text of `/proc/llmos/random` (empty before [`init`]).
pub fn proc_text() -> alloc::string::String {
    ASSESSMENT.get().map(|a| a.proc_text()).unwrap_or_default()
}

/// Fills `buf` with random bytes. Panics if called before [`init`], which
/// is a kernel bug, not something input can cause.
pub fn fill(buf: &mut [u8]) {
    RNG.lock()
        .as_mut()
        .expect("random::fill before random::init")
        .fill_bytes(buf);
}

/// A random `u64`.
pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}
