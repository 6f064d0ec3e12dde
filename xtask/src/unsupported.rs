//! Options that belong to later parts of llmos. They are accepted by the
//! parser so the command line is already the final one, but using them
//! fails loudly instead of silently doing nothing.

use anyhow::{Result, bail};

/// Fails with `not yet supported: <what> (<why>)`.
pub fn not_yet(what: &str, why: &str) -> Result<()> {
    bail!("not yet supported: {what} ({why})")
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_starts_with_the_contract_phrase() {
        let e = super::not_yet("--port", "needs networking").unwrap_err();
        assert_eq!(
            e.to_string(),
            "not yet supported: --port (needs networking)"
        );
    }
}
