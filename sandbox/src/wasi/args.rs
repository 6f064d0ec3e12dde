//! `args_get`, `args_sizes_get`, `environ_get` and `environ_sizes_get`:
//! the run's arguments and environment (`KEY=VALUE`), exactly as its
//! caller gave them.

use wasmi::Linker;
use wasmi::errors::LinkerError;

use super::memory::{ok, with};
use super::{C, Ctx, MODULE};

/// A list the guest can read: the functions that read it (the strings,
/// their sizes) and where it is kept.
type List = (&'static str, &'static str, fn(&Ctx) -> &[Vec<u8>]);

const LISTS: [List; 2] = [
    ("args_get", "args_sizes_get", |cx| &cx.args),
    ("environ_get", "environ_sizes_get", |cx| &cx.env),
];

/// Defines the argument and environment functions.
pub(super) fn add(l: &mut Linker<Ctx>) -> Result<(), LinkerError> {
    for (get, sizes_get, list) in LISTS {
        l.func_wrap(MODULE, get, move |mut c: C<'_>, ptrs: i32, buf: i32| {
            with(&mut c, |m, cx| ok(m.put_list(list(cx), ptrs, buf)))
        })?;
        l.func_wrap(MODULE, sizes_get, move |mut c: C<'_>, n: i32, size: i32| {
            with(&mut c, |m, cx| ok(m.put_sizes(list(cx), n, size)))
        })?;
    }
    Ok(())
}
