//! `clock_res_get`, `clock_time_get` and `random_get`: the real clocks
//! (realtime from the OS, the monotonic and CPU-time clocks from the
//! run's start) and real randomness from `getrandom`.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmi::Linker;
use wasmi::errors::LinkerError;

use super::memory::{ok, with};
use super::{C, Ctx, MODULE};
use crate::errno;

/// The real time in nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Defines the clock and randomness functions.
pub(super) fn add(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    l.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: C<'_>, id: i32, res: i32| {
            with(&mut c, |m, _| {
                ok(if (0..4).contains(&id) {
                    m.put_u64(res, 1000)
                } else {
                    Err(errno::INVAL)
                })
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: C<'_>, id: i32, _precision: i64, out: i32| {
            with(&mut c, |m, cx| {
                let t = match id {
                    0 => cx.now(),
                    1..=3 => cx.started.elapsed().as_nanos() as u64,
                    _ => return Ok(errno::INVAL),
                };
                ok(m.put_u64(out, t))
            })
        },
    )?;
    l.func_wrap(MODULE, "random_get", |mut c: C<'_>, buf: i32, len: i32| {
        with(&mut c, |m, _| {
            ok((|| {
                let b = m.slice_mut(buf, len as u32)?;
                // In pieces, so the deadline is the only bound that matters.
                b.chunks_mut(1 << 20)
                    .try_for_each(getrandom::fill)
                    .map_err(|_| errno::IO)
            })())
        })
    })?;
    Ok(())
}
