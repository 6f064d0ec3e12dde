//! mmap/munmap/mprotect/mremap/madvise/brk edge cases through raw
//! syscalls, printing one line per check. The same lines appear on Linux.
//! With the argument `write-ro` it finally writes to a read-only page,
//! which must kill it with SIGSEGV.
use llmos_userland::syscall6;

const MMAP: u64 = 9;
const MPROTECT: u64 = 10;
const MUNMAP: u64 = 11;
const BRK: u64 = 12;
const MREMAP: u64 = 25;
const MADVISE: u64 = 28;

const PROT_NONE: u64 = 0;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const PAGE: u64 = 4096;

fn mmap(addr: u64, len: u64, prot: u64, flags: u64) -> i64 {
    syscall6(MMAP, [addr, len, prot, flags, u64::MAX, 0])
}

fn check(name: &str, ok: bool) {
    println!("{} {name}", if ok { "ok" } else { "FAIL" });
    if !ok {
        std::process::exit(1);
    }
}

fn errno(r: i64) -> i64 {
    if r < 0 { -r } else { 0 }
}

fn main() {
    let anon = MAP_PRIVATE | MAP_ANONYMOUS;
    let a = mmap(0, 3 * PAGE, PROT_READ | PROT_WRITE, anon);
    check("mmap anonymous", a > 0 && (a as u64).is_multiple_of(PAGE));
    let a = a as u64;
    let p = a as *mut u8;
    // SAFETY: `a` is a fresh 3-page RW mapping.
    unsafe {
        check(
            "fresh pages are zero",
            *p == 0 && *p.add(3 * PAGE as usize - 1) == 0,
        );
        *p = 7;
        *p.add(2 * PAGE as usize) = 9;
    }
    check(
        "munmap the middle page",
        syscall6(MUNMAP, [a + PAGE, PAGE, 0, 0, 0, 0]) == 0,
    );
    let hole = mmap(a + PAGE, PAGE, PROT_READ, anon | MAP_FIXED_NOREPLACE);
    check("the hole is free again", hole == (a + PAGE) as i64);
    check(
        "MAP_FIXED_NOREPLACE over a mapping is EEXIST",
        errno(mmap(a, PAGE, PROT_READ, anon | MAP_FIXED_NOREPLACE)) == 17,
    );
    // SAFETY: the outer pages are still mapped.
    unsafe {
        check(
            "outer pages keep their data",
            *p == 7 && *p.add(2 * PAGE as usize) == 9,
        );
    }
    check(
        "mmap with length 0 is EINVAL",
        errno(mmap(0, 0, PROT_READ, anon)) == 22,
    );
    check(
        "unaligned MAP_FIXED is EINVAL",
        errno(mmap(a + 1, PAGE, PROT_READ, anon | MAP_FIXED)) == 22,
    );
    check(
        "mmap without a mapping type is EINVAL",
        errno(mmap(0, PAGE, PROT_READ, MAP_ANONYMOUS)) == 22,
    );
    check(
        "unaligned munmap is EINVAL",
        errno(syscall6(MUNMAP, [a + 1, PAGE, 0, 0, 0, 0])) == 22,
    );
    check(
        "munmap of length 0 is EINVAL",
        errno(syscall6(MUNMAP, [a, 0, 0, 0, 0, 0])) == 22,
    );
    check("munmap of an unmapped range succeeds", {
        // A range known to be free: map it, unmap it, unmap it again.
        let t = mmap(0, PAGE, PROT_READ, anon) as u64;
        syscall6(MUNMAP, [t, PAGE, 0, 0, 0, 0]) == 0 && syscall6(MUNMAP, [t, PAGE, 0, 0, 0, 0]) == 0
    });
    check(
        "mprotect of a hole is ENOMEM",
        errno(syscall6(
            MPROTECT,
            [a + 1024 * PAGE * 16, PAGE, PROT_READ, 0, 0, 0],
        )) == 12,
    );
    check(
        "mprotect with unknown bits is EINVAL",
        errno(syscall6(MPROTECT, [a, PAGE, 0x80, 0, 0, 0])) == 22,
    );

    // PROT_NONE and back keeps the data.
    check(
        "mprotect PROT_NONE",
        syscall6(MPROTECT, [a, PAGE, PROT_NONE, 0, 0, 0]) == 0,
    );
    check(
        "mprotect back to RW",
        syscall6(MPROTECT, [a, PAGE, PROT_READ | PROT_WRITE, 0, 0, 0]) == 0,
    );
    // SAFETY: page 0 is RW again.
    unsafe { check("data survives PROT_NONE", *p == 7) };

    // mremap: grow with MAYMOVE keeps the contents.
    let b = mmap(0, PAGE, PROT_READ | PROT_WRITE, anon) as u64;
    // SAFETY: fresh RW page.
    unsafe { (b as *mut u64).write(0x1234_5678_9abc_def0) };
    let blocker = mmap(b + PAGE, PAGE, PROT_READ, anon | MAP_FIXED_NOREPLACE);
    let c = syscall6(MREMAP, [b, PAGE, 64 * PAGE, 1, 0, 0]);
    check("mremap grows (moving if needed)", c > 0);
    // SAFETY: mremap returned a 64-page RW mapping holding the old page.
    unsafe {
        check(
            "mremap keeps the contents",
            (c as u64 as *const u64).read() == 0x1234_5678_9abc_def0,
        );
        check(
            "mremap's new tail is zero",
            *((c as u64 + 63 * PAGE) as *const u8) == 0,
        );
    }
    if blocker > 0 {
        syscall6(MUNMAP, [blocker as u64, PAGE, 0, 0, 0, 0]);
    }
    check("mremap without MAYMOVE into an occupied range fails", {
        let d = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, anon) as u64;
        let e = mmap(d + 2 * PAGE, PAGE, PROT_READ, anon | MAP_FIXED_NOREPLACE);
        let r = syscall6(MREMAP, [d, 2 * PAGE, 3 * PAGE, 0, 0, 0]);
        e < 0 || errno(r) == 12
    });

    // madvise(DONTNEED) zeroes.
    // SAFETY: page 2 of `a` is RW.
    unsafe { *p.add(2 * PAGE as usize) = 5 };
    check(
        "madvise DONTNEED",
        syscall6(MADVISE, [a + 2 * PAGE, PAGE, 4, 0, 0, 0]) == 0,
    );
    // SAFETY: the page is still mapped (and now zero).
    unsafe {
        check(
            "DONTNEED pages read back as zero",
            *p.add(2 * PAGE as usize) == 0,
        )
    };
    check(
        "madvise with unknown advice is EINVAL",
        errno(syscall6(MADVISE, [a, PAGE, 9999, 0, 0, 0])) == 22,
    );

    // brk grows and shrinks.
    let cur = syscall6(BRK, [0; 6]) as u64;
    let grown = syscall6(BRK, [cur + 10 * PAGE, 0, 0, 0, 0, 0]) as u64;
    check("brk grows", grown == cur + 10 * PAGE);
    // SAFETY: the break was just moved up by 10 pages.
    unsafe {
        ((cur + 9 * PAGE) as *mut u8).write(1);
    }
    check(
        "brk shrinks",
        syscall6(BRK, [cur, 0, 0, 0, 0, 0]) as u64 == cur,
    );

    // The kernel refuses to write into memory the program may not write.
    let none = mmap(0, PAGE, PROT_NONE, anon) as u64;
    check(
        "getrandom into PROT_NONE memory is EFAULT",
        errno(syscall6(318, [none, 8, 0, 0, 0, 0])) == 14,
    );
    check(
        "getrandom into unmapped memory is EFAULT",
        errno(syscall6(318, [8, 8, 0, 0, 0, 0])) == 14,
    );
    check(
        "mprotect read-only",
        syscall6(MPROTECT, [a, PAGE, PROT_READ, 0, 0, 0]) == 0,
    );
    check(
        "clock_gettime into read-only memory is EFAULT",
        errno(syscall6(228, [1, a, 0, 0, 0, 0])) == 14,
    );
    // SAFETY: reading a read-only page is allowed.
    unsafe { check("read-only page is readable", *p == 7) };
    println!("all memory checks passed");
    if std::env::args().nth(1).as_deref() == Some("write-ro") {
        println!("writing to a read-only page now");
        // SAFETY: deliberately not: this write must kill the process.
        unsafe { p.write_volatile(1) };
        println!("the write did not fault!");
    }
}
