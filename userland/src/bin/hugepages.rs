//! 2 MiB pages for anonymous memory: a large anonymous mapping gets them on
//! first touch (zeroed), keeps its data through munmap/mprotect/madvise of
//! part of a 2 MiB page (which splits it) and through mremap, keeps them
//! through mprotect of whole 2 MiB pages, and gives them back on munmap. A
//! thread's stack (MAP_STACK) never gets one. Prints one line per check;
//! the test compares the numbers.
use llmos_userland::syscall6;

const MMAP: u64 = 9;
const MPROTECT: u64 = 10;
const MUNMAP: u64 = 11;
const MREMAP: u64 = 25;
const MADVISE: u64 = 28;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const MAP_PRIVATE: u64 = 0x02;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED: u64 = 0x10;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MADV_DONTNEED: u64 = 4;
const PAGE: usize = 4096;
const HUGE: usize = 2 << 20;
const LEN: usize = 8 << 20;

/// `AnonHugePages` from /proc/meminfo, in KiB.
fn anon_huge_kb() -> u64 {
    llmos_userland::meminfo_kb("AnonHugePages").expect("an AnonHugePages line")
}

/// A fresh private anonymous mapping of `len` bytes.
fn anon(len: usize, prot: u64) -> usize {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    ok(
        syscall6(MMAP, [0, len as u64, prot, flags, u64::MAX, 0]),
        "mmap",
    ) as usize
}

/// A counter from /proc/vmstat.
fn vmstat(name: &str) -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .expect("the counter in /proc/vmstat")
}

fn ok(r: i64, what: &str) -> i64 {
    assert!(r >= 0, "{what}: {r}");
    r
}

/// The byte the program writes at offset `i` of the mapping.
fn pattern(i: usize) -> u8 {
    (i as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(17) as u8
}

/// The mapping's bytes.
fn view<'a>(p: usize, len: usize) -> &'a mut [u8] {
    // SAFETY: `p..p + len` is a live read-write mapping this program made
    // and does not unmap while the slice is in use.
    unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len) }
}

/// Whether every byte of `m` outside the `holes` (offset, length) pairs
/// still holds the pattern (and the holes read as zero where `zeroed`).
fn intact(m: &[u8], holes: &[(usize, usize)], zeroed: bool) -> bool {
    m.iter().enumerate().all(|(i, &b)| {
        match holes.iter().find(|&&(o, l)| (o..o + l).contains(&i)) {
            Some(_) => !zeroed || b == 0,
            None => b == pattern(i),
        }
    })
}

/// Writes the pattern back into the 4 KiB page at offset `at`.
fn refill(m: &mut [u8], at: usize) {
    for (i, b) in m[at..at + PAGE].iter_mut().enumerate() {
        *b = pattern(at + i);
    }
}

fn main() {
    let base_kb = anon_huge_kb();
    let p = anon(LEN, PROT_READ | PROT_WRITE);
    let m = view(p, LEN);
    let (faults, allocs) = (vmstat("pgfault"), vmstat("thp_fault_alloc"));
    println!("fresh memory reads zero: {}", m.iter().all(|&b| b == 0));
    for (i, b) in m.iter_mut().enumerate() {
        *b = pattern(i);
    }
    let (faults, allocs) = (
        vmstat("pgfault") - faults,
        vmstat("thp_fault_alloc") - allocs,
    );
    let whole = (p.next_multiple_of(HUGE)..p + LEN)
        .step_by(HUGE)
        .filter(|a| a + HUGE <= p + LEN)
        .count();
    let kb = anon_huge_kb() - base_kb;
    println!(
        "8 MiB touched: {kb} kB in 2 MiB pages, {} kB possible",
        whole * 2048
    );
    println!("data intact: {}", intact(m, &[], false));
    println!(
        "page faults: {faults} ({allocs} for 2 MiB pages; 4 KiB pages would take {})",
        LEN / PAGE
    );

    // First whole 2 MiB page: offset `a` into the mapping.
    let a = p.next_multiple_of(HUGE) - p;
    // Unmap one 4 KiB page inside the first 2 MiB page.
    let hole = a + HUGE / 2;
    ok(
        syscall6(MUNMAP, [(p + hole) as u64, PAGE as u64, 0, 0, 0, 0]),
        "munmap",
    );
    let after = anon_huge_kb() - base_kb;
    // (Only the bytes around the hole are read.)
    let around = m[..hole]
        .iter()
        .chain(&m[hole + PAGE..])
        .zip((0..hole).chain(hole + PAGE..LEN))
        .all(|(&b, i)| b == pattern(i));
    println!(
        "4 KiB munmap inside a 2 MiB page: {} kB fewer, data intact {around}",
        kb - after
    );
    ok(
        syscall6(
            MMAP,
            [
                (p + hole) as u64,
                PAGE as u64,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                u64::MAX,
                0,
            ],
        ),
        "refill the hole",
    );
    refill(m, hole);

    // mprotect of the whole second 2 MiB page keeps it whole.
    let second = a + HUGE;
    let kb = anon_huge_kb() - base_kb;
    ok(
        syscall6(
            MPROTECT,
            [(p + second) as u64, HUGE as u64, PROT_READ, 0, 0, 0],
        ),
        "mprotect",
    );
    let ro_kb = anon_huge_kb() - base_kb;
    let readable = intact(m, &[], false);
    ok(
        syscall6(
            MPROTECT,
            [
                (p + second) as u64,
                HUGE as u64,
                PROT_READ | PROT_WRITE,
                0,
                0,
                0,
            ],
        ),
        "mprotect back",
    );
    m[second + 5] = pattern(second + 5);
    println!(
        "mprotect of a whole 2 MiB page: {} kB fewer, readable {readable}, writable again true",
        kb - ro_kb
    );

    // mprotect of part of the third splits it.
    let third = a + 2 * HUGE;
    let kb = anon_huge_kb() - base_kb;
    ok(
        syscall6(
            MPROTECT,
            [(p + third + PAGE) as u64, PAGE as u64, PROT_READ, 0, 0, 0],
        ),
        "mprotect part",
    );
    println!(
        "mprotect of 4 KiB of a 2 MiB page: {} kB fewer, data intact {}",
        kb - (anon_huge_kb() - base_kb),
        intact(m, &[], false)
    );
    ok(
        syscall6(
            MPROTECT,
            [
                (p + third + PAGE) as u64,
                PAGE as u64,
                PROT_READ | PROT_WRITE,
                0,
                0,
                0,
            ],
        ),
        "mprotect part back",
    );

    // MADV_DONTNEED on 4 KiB of the second (still whole) page.
    let kb = anon_huge_kb() - base_kb;
    let gone = second + 3 * PAGE;
    ok(
        syscall6(
            MADVISE,
            [(p + gone) as u64, PAGE as u64, MADV_DONTNEED, 0, 0, 0],
        ),
        "madvise",
    );
    println!(
        "MADV_DONTNEED of 4 KiB of a 2 MiB page: {} kB fewer, that page zero and the rest intact {}",
        kb - (anon_huge_kb() - base_kb),
        intact(m, &[(gone, PAGE)], true)
    );
    refill(m, gone);

    // mremap of a whole mapping to another place moves its data.
    let r = anon(LEN, PROT_READ | PROT_WRITE);
    for (i, b) in view(r, LEN).iter_mut().enumerate() {
        *b = pattern(i);
    }
    let dest = anon(LEN + HUGE, PROT_READ) as u64;
    let q = ok(
        syscall6(
            MREMAP,
            [
                r as u64,
                LEN as u64,
                (LEN + HUGE) as u64,
                MREMAP_MAYMOVE | MREMAP_FIXED,
                dest,
                0,
            ],
        ),
        "mremap",
    ) as usize;
    assert_eq!(q as u64, dest);
    println!(
        "after mremap: data intact {}",
        intact(view(q, LEN), &[], false)
    );

    // A thread's stack (glibc maps it with MAP_STACK) stays in 4 KiB pages.
    let kb = anon_huge_kb();
    let t = std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let buf = std::hint::black_box([7u8; 64 * 1024]);
            (buf[100] as u64, anon_huge_kb())
        })
        .unwrap();
    let (_, in_thread) = t.join().unwrap();
    println!(
        "a 16 MiB thread stack in use: {} kB more in 2 MiB pages",
        in_thread - kb
    );

    ok(
        syscall6(MUNMAP, [q as u64, (LEN + HUGE) as u64, 0, 0, 0, 0]),
        "munmap all",
    );
    println!(
        "after munmap: {} kB in 2 MiB pages",
        anon_huge_kb() - base_kb
    );
    println!("hugepages ok");
}
