//! The ELF validator must return a result, never panic, for any input; and
//! what it accepts must satisfy the invariants the loader relies on.
#![no_main]

use kcore::elf::{self, PAGE, USER_END};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = elf::parse(data) else { return };
    let mut last_end = 0;
    for s in &p.segments {
        assert!(s.filesz <= s.memsz);
        assert!(s.offset + s.filesz <= data.len() as u64);
        assert!(!(s.perms.write && s.perms.exec), "W+X accepted");
        assert!(s.page_start() >= last_end, "overlap accepted");
        assert_eq!(s.vaddr % PAGE, s.offset % PAGE);
        last_end = s.page_end();
        if p.kind == elf::Kind::Exec {
            assert!(s.vaddr + s.memsz <= USER_END);
            assert!(s.page_start() >= elf::MIN_ADDR);
        }
    }
    assert!(p.segments.iter().any(|s| s.perms.exec && p.entry >= s.vaddr && p.entry < s.vaddr + s.memsz));
});
