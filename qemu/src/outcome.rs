//! Decoding QEMU's exit status.

use std::fmt;
use std::process::ExitStatus;

/// The isa-debug-exit value the kernel writes on success (QEMU exits 33).
pub const DEBUG_EXIT_SUCCESS: u8 = 0x10;
/// The isa-debug-exit value the kernel writes on failure (QEMU exits 35).
pub const DEBUG_EXIT_FAILURE: u8 = 0x11;

/// QEMU's exit code for a debug-exit value: `(value << 1) | 1`.
pub const fn qemu_code(debug_exit_value: u8) -> i32 {
    ((debug_exit_value as i32) << 1) | 1
}

/// What a QEMU exit means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel powered off with success (exit 33).
    Success,
    /// The kernel reported failure: panic, fatal exception, or a non-zero
    /// init status (exit 35).
    KernelFailure,
    /// Anything else: QEMU itself failed, was killed, or the guest
    /// reset/powered off without the debug-exit device.
    Infrastructure(String),
}

impl Outcome {
    /// Decodes an exit status.
    pub fn from_status(status: ExitStatus) -> Self {
        match status.code() {
            Some(c) => Self::from_code(c),
            None => Outcome::Infrastructure(format!("QEMU was terminated by a signal ({status})")),
        }
    }

    /// Decodes an exit code.
    pub fn from_code(code: i32) -> Self {
        match code {
            c if c == qemu_code(DEBUG_EXIT_SUCCESS) => Outcome::Success,
            c if c == qemu_code(DEBUG_EXIT_FAILURE) => Outcome::KernelFailure,
            0 => Outcome::Infrastructure(
                "QEMU exited 0: the guest powered off or reset without isa-debug-exit \
                 (a triple fault with -no-reboot looks like this)"
                    .into(),
            ),
            1 => {
                Outcome::Infrastructure("QEMU exited 1: QEMU itself failed (see its stderr)".into())
            }
            c => Outcome::Infrastructure(format!("QEMU exited with unexpected code {c}")),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => f.write_str("kernel success (QEMU exit 33)"),
            Outcome::KernelFailure => f.write_str("kernel failure (QEMU exit 35)"),
            Outcome::Infrastructure(why) => write!(f, "infrastructure error: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_codes() {
        assert_eq!(qemu_code(DEBUG_EXIT_SUCCESS), 33);
        assert_eq!(qemu_code(DEBUG_EXIT_FAILURE), 35);
        assert_eq!(Outcome::from_code(33), Outcome::Success);
        assert_eq!(Outcome::from_code(35), Outcome::KernelFailure);
        for c in [0, 1, 2, 34, 255] {
            assert!(
                matches!(Outcome::from_code(c), Outcome::Infrastructure(_)),
                "{c}"
            );
        }
        assert!(
            Outcome::from_code(1)
                .to_string()
                .contains("QEMU itself failed")
        );
    }

    #[test]
    fn signals_are_infrastructure() {
        use std::os::unix::process::ExitStatusExt;
        let s = ExitStatus::from_raw(9); // killed by SIGKILL
        assert!(matches!(
            Outcome::from_status(s),
            Outcome::Infrastructure(_)
        ));
        assert_eq!(
            Outcome::from_status(ExitStatus::from_raw(33 << 8)),
            Outcome::Success
        );
    }
}
