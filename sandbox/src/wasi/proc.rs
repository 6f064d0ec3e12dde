//! `proc_exit`, `proc_raise` and `sched_yield`: the process functions.
//! An exit ends the run with its code; signals are not supported; a
//! yield returns at once (a run has one thread).

use wasmi::errors::LinkerError;
use wasmi::{Error, Linker};

use super::{C, Ctx, MODULE};
use crate::errno;

/// Defines the process functions.
pub(super) fn add(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    l.func_wrap(
        MODULE,
        "proc_exit",
        |_: C<'_>, code: i32| -> Result<(), Error> { Err(Error::i32_exit(code)) },
    )?;
    l.func_wrap(MODULE, "proc_raise", |_: C<'_>, _sig: i32| -> i32 {
        errno::NOTSUP.into()
    })?;
    l.func_wrap(MODULE, "sched_yield", |_: C<'_>| -> i32 { 0 })?;
    Ok(())
}
