//! The boot log: `[secs.micros] subsystem: message` lines on the serial
//! console (format in `kcore::bootlog`). Use [`klog!`](crate::klog).
#![deny(unsafe_code)]

use core::fmt;

use kcore::bootlog::{CrlfWriter, Timestamp, write_event};

use crate::drivers::serial;

/// Writes one event to the console.
pub fn event(subsystem: &str, args: fmt::Arguments<'_>) {
    let ts = Timestamp::from_nanos(crate::time::now_nanos());
    serial::with_console(|uart| {
        // A console write error has nowhere to be reported; drop it.
        let _ = write_event(&mut CrlfWriter::new(uart), ts, subsystem, args);
    });
}

/// Logs one event: `klog!("mem", "{} MiB usable", n)`.
#[macro_export]
macro_rules! klog {
    ($subsystem:expr, $($arg:tt)*) => {
        $crate::log::event($subsystem, format_args!($($arg)*))
    };
}
