//! TLB shootdown check: a thread keeps reading a page (on another CPU when
//! there is one) while the main thread makes the page PROT_NONE. The
//! reader must fault right away (SIGSEGV ends the process); a stale TLB
//! entry on the reader's CPU would let it read on.
use llmos_userland::syscall6;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static READS: AtomicU64 = AtomicU64::new(0);

fn main() {
    let page = syscall6(9, [0, 4096, 3, 0x22, u64::MAX, 0]) as u64; // RW, private anonymous
    // SAFETY: a fresh RW page.
    unsafe { (page as *mut u64).write_volatile(42) };
    let reader = std::thread::spawn(move || {
        loop {
            // SAFETY: the page is mapped until the main thread revokes it;
            // then this read must fault.
            let v = unsafe { (page as *const u64).read_volatile() };
            assert_eq!(v, 42);
            READS.fetch_add(1, Ordering::Relaxed);
        }
    });
    while READS.load(Ordering::Relaxed) < 1000 {
        std::thread::yield_now();
    }
    println!("reader is running; revoking the page");
    let r = syscall6(10, [page, 4096, 0, 0, 0, 0]);
    println!("mprotect(PROT_NONE) = {r}");
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "the reader still reads after 2 s?! ({} reads)",
        READS.load(Ordering::Relaxed)
    );
    drop(reader);
}
