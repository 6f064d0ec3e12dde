//! `sock_accept`, `sock_recv`, `sock_send` and `sock_shutdown`: a run
//! has no network, so every socket call is refused with `NOTSUP` (and a
//! manifest that asks for one is refused before it runs).

use wasmi::Linker;
use wasmi::errors::LinkerError;

use super::{C, Ctx, MODULE};
use crate::errno;

/// Defines the socket functions, each refused.
pub(super) fn add(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    l.func_wrap(
        MODULE,
        "sock_accept",
        |_: C<'_>, _fd: i32, _f: i32, _o: i32| -> i32 { errno::NOTSUP.into() },
    )?;
    l.func_wrap(
        MODULE,
        "sock_recv",
        |_: C<'_>, _fd: i32, _i: i32, _n: i32, _f: i32, _o: i32, _r: i32| -> i32 {
            errno::NOTSUP.into()
        },
    )?;
    l.func_wrap(
        MODULE,
        "sock_send",
        |_: C<'_>, _fd: i32, _i: i32, _n: i32, _f: i32, _o: i32| -> i32 { errno::NOTSUP.into() },
    )?;
    l.func_wrap(
        MODULE,
        "sock_shutdown",
        |_: C<'_>, _fd: i32, _h: i32| -> i32 { errno::NOTSUP.into() },
    )?;
    Ok(())
}
