//! Kernel randomness: a ChaCha20 CSPRNG seeded from the CPU's hardware
//! entropy (RDSEED, else RDRAND). Without either, the seed is TSC jitter and
//! the boot log warns that randomness is weak.
#![deny(unsafe_code)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use spin::Mutex;

use crate::arch::x86_64::{rand as hw, tsc};
use crate::klog;

static RNG: Mutex<Option<ChaCha20Rng>> = Mutex::new(None);

/// Where the seed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedSource {
    /// The RDSEED instruction (a true entropy source).
    Rdseed,
    /// The RDRAND instruction (a DRBG reseeded by hardware entropy).
    Rdrand,
    /// Timing jitter only: not suitable for secrets.
    Jitter,
}

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

/// Seeds the generator. Returns where the seed came from.
pub fn init(has_rdseed: bool, has_rdrand: bool) -> SeedSource {
    let mut seed = [0u8; 32];
    let mut source = SeedSource::Jitter;
    for chunk in seed.as_chunks_mut::<8>().0 {
        let word = if has_rdseed && let Some(w) = hw::rdseed64() {
            source = SeedSource::Rdseed;
            w
        } else if has_rdrand && let Some(w) = hw::rdrand64() {
            if source == SeedSource::Jitter {
                source = SeedSource::Rdrand;
            }
            w
        } else {
            jitter_word()
        };
        *chunk = word.to_le_bytes();
    }
    *RNG.lock() = Some(ChaCha20Rng::from_seed(seed));
    match source {
        SeedSource::Rdseed => klog!("random", "ChaCha20 CSPRNG seeded from RDSEED"),
        SeedSource::Rdrand => klog!("random", "ChaCha20 CSPRNG seeded from RDRAND"),
        SeedSource::Jitter => klog!(
            "random",
            "WARNING: no RDSEED/RDRAND; CSPRNG seeded from timing jitter only"
        ),
    }
    source
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
