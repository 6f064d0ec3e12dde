//! The panic handler and the shared fatal-error path.
//!
//! A panic prints one line `kernel panic: <message> at <file>:<line>` and
//! powers off with failure (QEMU exit 35). The path formats straight to the
//! serial port without allocating or taking the console lock, so a panic
//! while the heap or console lock is held still prints. A panic inside the
//! panic path is caught by a flag and ends the machine at once instead of
//! recursing.
#![deny(unsafe_code)]

use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::drivers::serial;
use crate::power::{self, Status};

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let location = info.location();
    fatal(format_args!(
        "{}{}{}",
        info.message(),
        if location.is_some() { " at " } else { "" },
        LocationDisplay(location)
    ))
}

struct LocationDisplay<'a>(Option<&'a core::panic::Location<'a>>);

impl fmt::Display for LocationDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, "{}:{}", l.file(), l.line()),
            None => Ok(()),
        }
    }
}

/// Prints `kernel panic: <message>` and powers off with failure. Used by the
/// panic handler and by fatal CPU exceptions.
pub fn fatal(message: fmt::Arguments<'_>) -> ! {
    crate::arch::x86_64::power::disable_interrupts();
    let mut out = serial::emergency_writer();
    if PANICKING.swap(true, Ordering::SeqCst) {
        let _ = out.write_str("kernel panic: recursive failure while handling a panic\n");
        power::power_off(Status::Failure);
    }
    let _ = writeln!(out, "kernel panic: {message}");
    power::power_off(Status::Failure)
}
