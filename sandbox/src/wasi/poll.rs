//! `poll_oneoff`: clock subscriptions sleep (never past the run's
//! deadline, which ends the run), descriptor subscriptions are ready at
//! once (stdin reports what is left of it; files and the rest, nothing
//! to wait for).

use std::time::{Duration, Instant};

use wasmi::errors::LinkerError;
use wasmi::{Error, Linker};

use super::memory::{Mem, ok, with};
use super::{C, Ctx, Fd, MODULE, Stop};
use crate::Limit;
use crate::errno::{self, Errno};

/// The most subscriptions one call may pass.
const MAX_SUBSCRIPTIONS: i32 = 64;
/// The size of a subscription in guest memory.
const SUBSCRIPTION_BYTES: u32 = 48;
/// The size of an event in guest memory.
const EVENT_BYTES: u32 = 32;

/// An event: its userdata, error, type and the bytes available.
type Event = (u64, Errno, u8, u64);

/// What one subscription asks for.
enum Sub {
    /// A clock: its userdata and how many nanoseconds from now it fires.
    Clock(u64, u64),
    /// A descriptor, ready now.
    Ready(Event),
}

impl Ctx {
    fn poll(
        &mut self,
        m: &mut Mem<'_>,
        subs: i32,
        events: i32,
        n: i32,
        nevents: i32,
    ) -> Result<Result<(), Errno>, Error> {
        if !(1..=MAX_SUBSCRIPTIONS).contains(&n) {
            return Ok(Err(errno::INVAL));
        }
        let mut ready = Vec::new();
        let mut clocks = Vec::new();
        for i in 0..n {
            let at = (subs as u32).wrapping_add(SUBSCRIPTION_BYTES * i as u32) as i32;
            match m
                .slice(at, SUBSCRIPTION_BYTES)
                .and_then(|s| self.subscription(s))
            {
                Ok(Sub::Clock(userdata, wait)) => clocks.push((userdata, wait)),
                Ok(Sub::Ready(event)) => ready.push(event),
                Err(e) => return Ok(Err(e)),
            }
        }
        if ready.is_empty() {
            ready = self.sleep(&clocks)?;
        }
        Ok(put_events(m, events, &ready).and_then(|()| m.put_u32(nevents, ready.len() as u32)))
    }

    /// Decodes one subscription.
    fn subscription(&self, sub: &[u8]) -> Result<Sub, Errno> {
        let userdata = u64::from_le_bytes(sub[0..8].try_into().unwrap_or_default());
        match sub[8] {
            0 => {
                let id = u32::from_le_bytes(sub[16..20].try_into().unwrap_or_default());
                let timeout = u64::from_le_bytes(sub[24..32].try_into().unwrap_or_default());
                let abs = u16::from_le_bytes(sub[40..42].try_into().unwrap_or_default()) & 1 != 0;
                let wait = if abs {
                    let now = if id == 0 {
                        self.now()
                    } else {
                        self.started.elapsed().as_nanos() as u64
                    };
                    timeout.saturating_sub(now)
                } else {
                    timeout
                };
                Ok(Sub::Clock(userdata, wait))
            }
            kind @ (1 | 2) => {
                let fd = i32::from_le_bytes(sub[16..20].try_into().unwrap_or_default());
                let (err, nbytes) = match self.fd(fd) {
                    Ok(Fd::Stdin) => (0, (self.stdin.len() - self.stdin_pos) as u64),
                    Ok(_) => (0, 0),
                    Err(e) => (e, 0),
                };
                Ok(Sub::Ready((userdata, err, kind, nbytes)))
            }
            _ => Err(errno::INVAL),
        }
    }

    /// Sleeps for the nearest clock, never past the deadline, and returns
    /// the clocks that fired.
    fn sleep(&self, clocks: &[(u64, u64)]) -> Result<Vec<Event>, Error> {
        let wait = clocks.iter().map(|c| c.1).min().unwrap_or(0);
        let until = Instant::now() + Duration::from_nanos(wait);
        if until > self.deadline {
            std::thread::sleep(self.deadline.saturating_duration_since(Instant::now()));
            return Err(Error::host(Stop(Limit::WallClock)));
        }
        std::thread::sleep(Duration::from_nanos(wait));
        Ok(clocks
            .iter()
            .filter(|(_, w)| *w <= wait)
            .map(|(u, _)| (*u, 0, 0, 0))
            .collect())
    }
}

/// Writes `ready` as the event array at `events`.
fn put_events(m: &mut Mem<'_>, events: i32, ready: &[Event]) -> Result<(), Errno> {
    for (k, (userdata, err, kind, nbytes)) in ready.iter().enumerate() {
        let mut e = [0u8; EVENT_BYTES as usize];
        e[0..8].copy_from_slice(&userdata.to_le_bytes());
        e[8..10].copy_from_slice(&err.to_le_bytes());
        e[10] = *kind;
        e[16..24].copy_from_slice(&nbytes.to_le_bytes());
        m.put(
            (events as u32).wrapping_add(EVENT_BYTES * k as u32) as i32,
            &e,
        )?;
    }
    Ok(())
}

/// Defines `poll_oneoff`.
pub(super) fn add(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    l.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut c: C<'_>, subs: i32, events: i32, n: i32, nevents: i32| {
            with(&mut c, |m, cx| ok(cx.poll(m, subs, events, n, nevents)?))
        },
    )?;
    Ok(())
}
