//! The restart budget of the first process: whether a program killed by a
//! signal is started again, and after how long.
//!
//! At most [`Policy::max_restarts`] restarts happen in any window of
//! [`Policy::window_ns`]; the `k`-th restart in the window waits
//! [`Policy::first_backoff_ns`] doubled `k - 1` times, at most
//! [`Policy::max_backoff_ns`]. A program that stays up longer than the
//! window gets its whole budget, and the short delay, back. Once the
//! budget is spent the kernel powers off. Times are monotonic nanoseconds
//! from the caller's clock, so the host tests drive a fake one.

use alloc::collections::VecDeque;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;

/// How often and how fast a crashed init program is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Restarts allowed in any window (0: never restart).
    pub max_restarts: u32,
    /// The window's length.
    pub window_ns: u64,
    /// Delay before the first restart in a window.
    pub first_backoff_ns: u64,
    /// Longest delay.
    pub max_backoff_ns: u64,
}

impl Policy {
    /// 5 restarts in any 10 minutes, waiting 100 ms, 200 ms, 400 ms,
    /// 800 ms and 1.6 s (doubling up to 5 s with a larger budget).
    pub const DEFAULT: Policy = Policy {
        max_restarts: 5,
        window_ns: 600 * SEC,
        first_backoff_ns: 100 * MS,
        max_backoff_ns: 5 * SEC,
    };

    /// The delay before the `k`-th restart of a window (`k` ≥ 1).
    pub fn backoff(&self, k: u32) -> u64 {
        let doublings = k.saturating_sub(1);
        let d = 1u64
            .checked_shl(doublings)
            .and_then(|f| self.first_backoff_ns.checked_mul(f))
            .unwrap_or(u64::MAX);
        d.min(self.max_backoff_ns.max(self.first_backoff_ns))
    }
}

/// What to do about a death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start the program again after `delay_ns`.
    Restart {
        /// This restart's number in the window (1 for the first).
        in_window: u32,
        /// Restarts since boot, this one included.
        total: u32,
        /// How long to wait first.
        delay_ns: u64,
    },
    /// The budget is spent: power off.
    Spent {
        /// Restarts in the window that spent it.
        in_window: u32,
    },
}

/// The restarts made so far.
#[derive(Debug, Clone)]
pub struct Budget {
    policy: Policy,
    /// When each restart in the current window was decided, oldest first.
    recent: VecDeque<u64>,
    total: u32,
}

impl Budget {
    /// No restarts yet.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            recent: VecDeque::new(),
            total: 0,
        }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Restarts since boot.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// The program died at `now`: restart it (after a delay) or give up.
    pub fn on_death(&mut self, now: u64) -> Decision {
        let window = self.policy.window_ns;
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= window)
        {
            self.recent.pop_front();
        }
        let used = self.recent.len() as u32;
        if used >= self.policy.max_restarts {
            return Decision::Spent { in_window: used };
        }
        self.recent.push_back(now);
        self.total = self.total.saturating_add(1);
        Decision::Restart {
            in_window: used + 1,
            total: self.total,
            delay_ns: self.policy.backoff(used + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake monotonic clock.
    struct Clock(u64);

    impl Clock {
        fn advance(&mut self, ns: u64) -> u64 {
            self.0 += ns;
            self.0
        }
    }

    fn delay(d: Decision) -> u64 {
        match d {
            Decision::Restart { delay_ns, .. } => delay_ns,
            Decision::Spent { .. } => panic!("budget spent: {d:?}"),
        }
    }

    #[test]
    fn the_default_budget_backs_off_then_is_spent() {
        let mut b = Budget::new(Policy::DEFAULT);
        let mut clock = Clock(1_000 * SEC);
        let mut delays = Vec::new();
        for k in 1..=5 {
            let d = b.on_death(clock.advance(2 * SEC));
            assert!(
                matches!(d, Decision::Restart { in_window, total, .. } if in_window == k && total == k),
                "{d:?}"
            );
            delays.push(delay(d) / MS);
        }
        assert_eq!(delays, [100, 200, 400, 800, 1600]);
        assert_eq!(
            b.on_death(clock.advance(2 * SEC)),
            Decision::Spent { in_window: 5 }
        );
        // Dying again does not count as a restart.
        assert_eq!(
            b.on_death(clock.advance(SEC)),
            Decision::Spent { in_window: 5 }
        );
        assert_eq!(b.total(), 5);
    }

    #[test]
    fn restarts_older_than_the_window_give_the_budget_back() {
        let mut b = Budget::new(Policy::DEFAULT);
        let mut clock = Clock(0);
        for _ in 0..5 {
            delay(b.on_death(clock.advance(SEC)));
        }
        // 10 minutes after the first restart, one slot is free again, and
        // its delay is the fifth's (four restarts still in the window).
        clock.0 = 600 * SEC + SEC;
        let d = b.on_death(clock.0);
        assert_eq!(
            d,
            Decision::Restart {
                in_window: 5,
                total: 6,
                delay_ns: 1600 * MS
            }
        );
        // A program that stayed up for a whole window starts over with
        // the shortest delay.
        let d = b.on_death(clock.advance(700 * SEC));
        assert_eq!(
            d,
            Decision::Restart {
                in_window: 1,
                total: 7,
                delay_ns: 100 * MS
            }
        );
    }

    #[test]
    fn delays_stop_at_the_maximum_and_never_overflow() {
        let p = Policy {
            max_restarts: 100,
            ..Policy::DEFAULT
        };
        assert_eq!(p.backoff(6), 3200 * MS);
        assert_eq!(p.backoff(7), 5 * SEC);
        assert_eq!(p.backoff(64), 5 * SEC);
        assert_eq!(p.backoff(u32::MAX), 5 * SEC);
        assert_eq!(p.backoff(0), 100 * MS);
        // A first delay above the maximum is used as is.
        let slow = Policy {
            first_backoff_ns: 10 * SEC,
            ..p
        };
        assert_eq!(slow.backoff(3), 10 * SEC);
    }

    #[test]
    fn a_zero_budget_never_restarts() {
        let mut b = Budget::new(Policy {
            max_restarts: 0,
            ..Policy::DEFAULT
        });
        assert_eq!(b.on_death(5), Decision::Spent { in_window: 0 });
        assert_eq!(b.total(), 0);
    }

    #[test]
    fn a_clock_that_stands_still_still_counts() {
        let mut b = Budget::new(Policy {
            max_restarts: 2,
            window_ns: SEC,
            first_backoff_ns: 10 * MS,
            max_backoff_ns: SEC,
        });
        assert_eq!(delay(b.on_death(0)), 10 * MS);
        assert_eq!(delay(b.on_death(0)), 20 * MS);
        assert_eq!(b.on_death(0), Decision::Spent { in_window: 2 });
        assert_eq!(delay(b.on_death(SEC)), 10 * MS);
    }
}
