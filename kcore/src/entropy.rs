//! Seeding the kernel's CSPRNG: health tests for the CPU's random-number
//! instructions, the extractor that mixes every source into one seed, and
//! the text of `/proc/llmos/random`.
//!
//! The kernel samples each hardware source ([`SAMPLES`] words of RDSEED
//! and of RDRAND) and hands the samples to [`health_test`]. A source whose
//! samples look broken is dropped: all-ones words (some AMD CPUs return
//! `0xffff_ffff_ffff_ffff` with the success flag set after a suspend), all
//! zeros, a word equal to the one before it, a bit that never changes
//! across the samples, or an instruction that mostly reports failure. A
//! real 64-bit source trips one of the per-word tests with probability
//! about 2^-58 per boot and the stuck-bit test with about 2^-57.
//!
//! Every source that passes, and TSC jitter always, is absorbed into a
//! [`Pool`], a ChaCha20-based extractor: each 32-byte block is XORed into
//! the 256-bit state, which is then replaced by the first 32 bytes of the
//! ChaCha20 keystream under that key (stream = block number); the output
//! is a final keystream block after padding. Entropy in any block carries
//! into the state, and the output reveals nothing about the inputs without
//! breaking ChaCha20. (Not SHA-256: its x86 code uses vector registers,
//! which the kernel never touches; ChaCha20 is already the kernel's
//! generator.)
//!
//! [`Assessment`] records what each hardware source did; it gives the boot
//! log's wording and `/proc/llmos/random`, which the runtime reads to
//! decide whether it may generate secrets such as an API key.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Words sampled from each hardware source for its health test (and then
/// mixed into the seed).
pub const SAMPLES: usize = 64;

/// Why a hardware source failed its health test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The instruction reported failure (carry clear) after its retries for
    /// more than half of the requests.
    NoOutput {
        /// Requests without a value.
        failed: usize,
        /// Requests made.
        of: usize,
    },
    /// Words with every bit set.
    AllOnes(usize),
    /// Words with no bit set.
    AllZeros(usize),
    /// Words equal to the word before them.
    Repeats(usize),
    /// A bit had the same value in every sample.
    StuckBit {
        /// The bit (0 = least significant).
        bit: u32,
        /// Its value.
        value: u8,
        /// Samples looked at.
        samples: usize,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Failure::NoOutput { failed, of } => {
                write!(f, "delivered no value for {failed} of {of} requests")
            }
            Failure::AllOnes(n) => write!(f, "returned all-ones {n} times"),
            Failure::AllZeros(n) => write!(f, "returned all-zeros {n} times"),
            Failure::Repeats(n) => write!(f, "repeated the previous word {n} times"),
            Failure::StuckBit {
                bit,
                value,
                samples,
            } => write!(f, "bit {bit} was {value} in all {samples} samples"),
        }
    }
}

/// Checks the samples of one hardware source (`None`: the instruction gave
/// no value). Returns the good words, in order, or why the source must not
/// be used.
pub fn health_test(samples: &[Option<u64>]) -> Result<Vec<u64>, Failure> {
    let words: Vec<u64> = samples.iter().flatten().copied().collect();
    let failed = samples.len() - words.len();
    if words.is_empty() || failed * 2 > samples.len() {
        return Err(Failure::NoOutput {
            failed,
            of: samples.len(),
        });
    }
    let ones = words.iter().filter(|&&w| w == u64::MAX).count();
    if ones > 0 {
        return Err(Failure::AllOnes(ones));
    }
    let zeros = words.iter().filter(|&&w| w == 0).count();
    if zeros > 0 {
        return Err(Failure::AllZeros(zeros));
    }
    let repeats = words.windows(2).filter(|p| p[0] == p[1]).count();
    if repeats > 0 {
        return Err(Failure::Repeats(repeats));
    }
    // A stuck bit is only meaningful over enough samples: with 32 or more,
    // a healthy source keeps one of its 64 bits constant with probability
    // below 2^-25.
    if words.len() >= 32 {
        let all_set = words.iter().fold(u64::MAX, |a, &w| a & w);
        let any_set = words.iter().fold(0, |a, &w| a | w);
        let stuck = all_set | !any_set;
        if stuck != 0 {
            let bit = stuck.trailing_zeros();
            return Err(Failure::StuckBit {
                bit,
                value: ((all_set >> bit) & 1) as u8,
                samples: words.len(),
            });
        }
    }
    Ok(words)
}

/// What one hardware source did at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The CPU does not have the instruction.
    Absent,
    /// Its samples failed the health test; it was not used.
    Failed(Failure),
    /// It passed and was mixed into the seed.
    Healthy,
}

/// The hardware sources' outcome at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// RDSEED (a true entropy source).
    pub rdseed: Source,
    /// RDRAND (a DRBG reseeded from the same entropy source).
    pub rdrand: Source,
}

impl Assessment {
    /// Whether at least one hardware source was healthy.
    pub fn hardware_healthy(&self) -> bool {
        self.rdseed == Source::Healthy || self.rdrand == Source::Healthy
    }

    /// The names of the sources mixed into the seed, in mixing order; TSC
    /// jitter is always mixed in.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.rdseed == Source::Healthy {
            v.push("rdseed");
        }
        if self.rdrand == Source::Healthy {
            v.push("rdrand");
        }
        v.push("tsc");
        v
    }

    /// Why no hardware source is usable (`None` if one is).
    pub fn reason(&self) -> Option<String> {
        if self.hardware_healthy() {
            return None;
        }
        if self.rdseed == Source::Absent && self.rdrand == Source::Absent {
            return Some(String::from("the CPU has neither RDSEED nor RDRAND"));
        }
        let mut parts = Vec::new();
        for (name, s) in [("RDSEED", self.rdseed), ("RDRAND", self.rdrand)] {
            parts.push(match s {
                Source::Absent => alloc::format!("the CPU has no {name}"),
                Source::Failed(f) => alloc::format!("{name} failed its health test ({f})"),
                Source::Healthy => continue,
            });
        }
        Some(parts.join("; "))
    }

    /// The contents of `/proc/llmos/random`: exactly two lines,
    /// `hardware: healthy` or `hardware: none (<reason>)`, then
    /// `sources: <names>`.
    pub fn proc_text(&self) -> String {
        let hardware = match self.reason() {
            None => String::from("healthy"),
            Some(r) => alloc::format!("none ({r})"),
        };
        alloc::format!(
            "hardware: {hardware}\nsources: {}\n",
            self.sources().join(" ")
        )
    }
}

/// The extractor: absorbs any number of bytes, gives a 32-byte seed.
pub struct Pool {
    state: [u8; 32],
    block: [u8; 32],
    filled: usize,
    blocks: u64,
    len: u64,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Self {
            state: [0; 32],
            block: [0; 32],
            filled: 0,
            blocks: 0,
            len: 0,
        }
    }

    /// Absorbs `bytes`.
    pub fn absorb(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.block[self.filled] = b;
            self.filled += 1;
            if self.filled == self.block.len() {
                self.compress();
            }
        }
        self.len = self.len.wrapping_add(bytes.len() as u64);
    }

    /// Absorbs a labelled group of words (the label keeps sources apart:
    /// the same words under two labels give different seeds).
    pub fn absorb_words(&mut self, label: &str, words: &[u64]) {
        self.absorb(&(label.len() as u64).to_le_bytes());
        self.absorb(label.as_bytes());
        self.absorb(&(words.len() as u64).to_le_bytes());
        for w in words {
            self.absorb(&w.to_le_bytes());
        }
    }

    fn compress(&mut self) {
        let mut key = self.state;
        for (k, b) in key.iter_mut().zip(self.block) {
            *k ^= b;
        }
        let mut rng = ChaCha20Rng::from_seed(key);
        rng.set_stream(self.blocks);
        rng.fill_bytes(&mut self.state);
        self.blocks = self.blocks.wrapping_add(1);
        self.block = [0; 32];
        self.filled = 0;
    }

    /// The seed: pads (a one byte, zeros, the total length) and squeezes a
    /// keystream block on a stream no absorbed block used.
    pub fn finish(mut self) -> [u8; 32] {
        let len = self.len;
        self.absorb(&[0x80]);
        while self.filled != 24 {
            self.absorb(&[0]);
        }
        self.absorb(&len.to_le_bytes());
        let mut rng = ChaCha20Rng::from_seed(self.state);
        rng.set_stream(u64::MAX);
        let mut out = [0u8; 32];
        rng.fill_bytes(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake hardware source: a xorshift generator.
    fn good(n: usize, seed: u64) -> Vec<Option<u64>> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                Some(x)
            })
            .collect()
    }

    #[test]
    fn good_data_passes_and_is_kept_in_order() {
        let s = good(SAMPLES, 0x1234_5678_9abc_def1);
        let words = health_test(&s).expect("healthy");
        assert_eq!(words.len(), SAMPLES);
        assert_eq!(Some(words[0]), s[0]);
    }

    #[test]
    fn the_amd_all_ones_bug_is_caught() {
        let s = vec![Some(u64::MAX); SAMPLES];
        let e = health_test(&s).unwrap_err();
        assert_eq!(e, Failure::AllOnes(SAMPLES));
        assert_eq!(e.to_string(), "returned all-ones 64 times");
        // Even a few all-ones words among good ones.
        let mut s = good(SAMPLES, 7);
        for i in [3, 9, 20, 41] {
            s[i] = Some(u64::MAX);
        }
        assert_eq!(health_test(&s), Err(Failure::AllOnes(4)));
    }

    #[test]
    fn zeros_repeats_and_stuck_bits_are_caught() {
        let mut s = good(SAMPLES, 99);
        s[5] = Some(0);
        assert_eq!(health_test(&s), Err(Failure::AllZeros(1)));

        let mut s = good(SAMPLES, 99);
        s[10] = s[9];
        s[30] = s[29];
        let e = health_test(&s).unwrap_err();
        assert_eq!(e, Failure::Repeats(2));
        assert_eq!(e.to_string(), "repeated the previous word 2 times");

        // Bit 63 always set, bit 0 always clear: the lowest stuck bit is
        // reported, with its value.
        let s: Vec<Option<u64>> = good(SAMPLES, 5)
            .into_iter()
            .map(|w| w.map(|w| (w | 1 << 63) & !1))
            .collect();
        let e = health_test(&s).unwrap_err();
        assert_eq!(
            e,
            Failure::StuckBit {
                bit: 0,
                value: 0,
                samples: SAMPLES
            }
        );
        assert_eq!(e.to_string(), "bit 0 was 0 in all 64 samples");
        let s: Vec<Option<u64>> = good(SAMPLES, 5)
            .into_iter()
            .map(|w| w.map(|w| w | 1 << 40))
            .collect();
        assert!(matches!(
            health_test(&s),
            Err(Failure::StuckBit {
                bit: 40,
                value: 1,
                ..
            })
        ));
    }

    #[test]
    fn an_instruction_that_mostly_fails_is_dropped_one_that_rarely_fails_is_not() {
        let none = vec![None; SAMPLES];
        assert_eq!(
            health_test(&none),
            Err(Failure::NoOutput { failed: 64, of: 64 })
        );
        let mut s = good(SAMPLES, 3);
        for w in s.iter_mut().take(40) {
            *w = None;
        }
        assert_eq!(
            health_test(&s).unwrap_err().to_string(),
            "delivered no value for 40 of 64 requests"
        );
        let mut s = good(SAMPLES, 3);
        s[0] = None;
        s[1] = None;
        assert_eq!(health_test(&s).map(|w| w.len()), Ok(62));
    }

    #[test]
    fn reasons_and_the_proc_file() {
        let ok = Assessment {
            rdseed: Source::Healthy,
            rdrand: Source::Healthy,
        };
        assert!(ok.hardware_healthy());
        assert_eq!(
            ok.proc_text(),
            "hardware: healthy\nsources: rdseed rdrand tsc\n"
        );
        let one = Assessment {
            rdseed: Source::Absent,
            rdrand: Source::Healthy,
        };
        assert_eq!(one.proc_text(), "hardware: healthy\nsources: rdrand tsc\n");
        let none = Assessment {
            rdseed: Source::Absent,
            rdrand: Source::Absent,
        };
        assert_eq!(
            none.proc_text(),
            "hardware: none (the CPU has neither RDSEED nor RDRAND)\nsources: tsc\n"
        );
        let amd = Assessment {
            rdseed: Source::Failed(Failure::AllOnes(64)),
            rdrand: Source::Failed(Failure::AllOnes(64)),
        };
        assert_eq!(
            amd.proc_text(),
            "hardware: none (RDSEED failed its health test (returned all-ones 64 times); \
             RDRAND failed its health test (returned all-ones 64 times))\nsources: tsc\n"
        );
        let mixed = Assessment {
            rdseed: Source::Absent,
            rdrand: Source::Failed(Failure::Repeats(63)),
        };
        assert_eq!(
            mixed.reason().as_deref(),
            Some(
                "the CPU has no RDSEED; RDRAND failed its health test (repeated the previous word 63 times)"
            )
        );
    }

    fn seed_of(parts: &[(&str, &[u64])]) -> [u8; 32] {
        let mut p = Pool::new();
        for (label, words) in parts {
            p.absorb_words(label, words);
        }
        p.finish()
    }

    #[test]
    fn the_seed_depends_on_every_input_bit_and_on_labels() {
        let a: Vec<u64> = (1..=64).collect();
        let base = seed_of(&[("rdseed", &a), ("tsc", &[5, 6, 7])]);
        assert_eq!(base, seed_of(&[("rdseed", &a), ("tsc", &[5, 6, 7])]));
        // One bit of the first word, one bit of the last.
        let mut b = a.clone();
        b[0] ^= 1;
        assert_ne!(base, seed_of(&[("rdseed", &b), ("tsc", &[5, 6, 7])]));
        assert_ne!(
            base,
            seed_of(&[("rdseed", &a), ("tsc", &[5, 6, 7 ^ 1 << 63])])
        );
        // The same words from another source, or split differently.
        assert_ne!(base, seed_of(&[("rdrand", &a), ("tsc", &[5, 6, 7])]));
        assert_ne!(
            base,
            seed_of(&[("rdseed", &a[..63]), ("tsc", &[64, 5, 6, 7])])
        );
        // No input at all still gives a fixed, non-trivial output.
        let empty = Pool::new().finish();
        assert_ne!(empty, [0; 32]);
        assert_ne!(empty, base);
    }

    #[test]
    fn trailing_zeros_are_not_lost_in_the_padding() {
        let mut p = Pool::new();
        p.absorb(&[1, 2, 3]);
        let mut q = Pool::new();
        q.absorb(&[1, 2, 3, 0]);
        assert_ne!(p.finish(), q.finish());
    }
}
