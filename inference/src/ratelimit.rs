//! Request rates: a token bucket per API key ([`Buckets`]), and a bound on
//! how often refusals are logged ([`LogBudget`]), so a flood of bad
//! requests cannot flood the console.
//!
//! Both take the time as an argument, so they are tested without sleeping.

use std::time::{Duration, Instant};

/// A request rate: `per_minute` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests a minute, on average; 0 means no limit.
    pub per_minute: u32,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One token bucket per key (by its index among the server's keys; one
/// more for requests without a key, when none is needed).
#[derive(Debug)]
pub struct Buckets {
    rate: Rate,
    buckets: Vec<Option<Bucket>>,
}

impl Buckets {
    /// Buckets for `keys` keys (and the keyless requests), full.
    pub fn new(rate: Rate, keys: usize) -> Self {
        Self {
            rate,
            buckets: vec![None; keys + 1],
        }
    }

    /// Takes one request of key `key` at `now`: `Ok`, or `Err(wait)` with
    /// the time until the next one will be allowed.
    pub fn take(&mut self, key: usize, now: Instant) -> Result<(), Duration> {
        let Rate { per_minute, burst } = self.rate;
        if per_minute == 0 {
            return Ok(());
        }
        let per_sec = f64::from(per_minute) / 60.0;
        let cap = f64::from(burst.max(1));
        let Some(slot) = self.buckets.get_mut(key) else {
            return Ok(());
        };
        let b = slot.get_or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * per_sec).min(cap);
        b.at = b.at.max(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
        }
    }
}

/// At most `lines` log lines per `window`; what is left out is counted and
/// reported with the first line of a later window.
#[derive(Debug)]
pub struct LogBudget {
    lines: u32,
    window: Duration,
    start: Option<Instant>,
    used: u32,
    dropped: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// Print it; `dropped` lines were left out before it.
    Print {
        /// Lines left out since the last printed one.
        dropped: u64,
    },
    /// Leave it out.
    Drop,
}

impl LogBudget {
    /// `lines` per `window`.
    pub fn new(lines: u32, window: Duration) -> Self {
        Self {
            lines,
            window,
            start: None,
            used: 0,
            dropped: 0,
        }
    }

    /// Whether a line at `now` is printed.
    pub fn line(&mut self, now: Instant) -> Log {
        let fresh = self
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= self.window);
        if fresh {
            self.start = Some(now);
            self.used = 0;
        }
        if self.used < self.lines {
            self.used += 1;
            let dropped = std::mem::take(&mut self.dropped);
            Log::Print { dropped }
        } else {
            self.dropped += 1;
            Log::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Buckets::new(
            Rate {
                per_minute: 60,
                burst: 3,
            },
            1,
        );
        for _ in 0..3 {
            assert_eq!(b.take(0, t0), Ok(()));
        }
        let wait = b.take(0, t0).unwrap_err();
        assert!((0.99..=1.01).contains(&wait.as_secs_f64()), "{wait:?}");
        // Another key has its own bucket.
        assert_eq!(b.take(1, t0), Ok(()));
        // One a second after that.
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(b.take(0, t1), Ok(()));
        assert!(b.take(0, t1).is_err());
        // A long pause fills it to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(b.take(0, t2), Ok(()));
        }
        assert!(b.take(0, t2).is_err());
        // A clock that goes back gives nothing.
        assert!(b.take(0, t0).is_err());
        // An unknown key and no limit at all.
        assert_eq!(b.take(9, t0), Ok(()));
        let mut off = Buckets::new(
            Rate {
                per_minute: 0,
                burst: 0,
            },
            0,
        );
        for _ in 0..1000 {
            assert_eq!(off.take(0, t0), Ok(()));
        }
    }

    #[test]
    fn logging_is_bounded_and_counts_what_it_left_out() {
        let t0 = Instant::now();
        let mut l = LogBudget::new(2, Duration::from_secs(10));
        assert_eq!(l.line(t0), Log::Print { dropped: 0 });
        assert_eq!(l.line(t0), Log::Print { dropped: 0 });
        for _ in 0..1000 {
            assert_eq!(l.line(t0 + Duration::from_secs(1)), Log::Drop);
        }
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.line(later), Log::Print { dropped: 1000 });
        assert_eq!(l.line(later), Log::Print { dropped: 0 });
        assert_eq!(l.line(later), Log::Drop);
    }
}
