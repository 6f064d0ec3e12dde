//! The initrd reader (and the boot-parameter decoder inside it) must
//! return errors, never panic, and every entry it yields must lie inside
//! the archive with a safe path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmos_fs::cpio::Reader;

fuzz_target!(|data: &[u8]| {
    for e in Reader::new(data) {
        let Ok(e) = e else { break };
        assert!(e.data_offset + e.data.len() <= data.len());
        assert!(!e.path.split('/').any(|c| c == ".." || c == "."));
        assert!(!e.path.starts_with('/'));
        if e.path == bootparams::PATH {
            let _ = bootparams::BootParams::decode(e.data);
        }
    }
});
