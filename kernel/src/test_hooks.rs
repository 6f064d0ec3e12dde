//! Test hooks (feature `test-hooks`): a test image's boot parameters name a
//! scenario (`test_hook`) and the kernel acts it out during boot, so QEMU
//! tests can check the diagnostics of failures that a correct kernel never
//! has. Normal builds do not contain this module.
#![deny(unsafe_code)]

use alloc::vec::Vec;

use crate::klog;

/// Recurses until the kernel stack's guard page stops it; the 512-byte
/// frame and `black_box` keep the compiler from turning it into a loop.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    frame[0] + recurse(core::hint::black_box(depth + 1))
}

/// Runs `name`. Scenarios that fail on purpose never return.
pub fn run(name: &str) {
    klog!("test", "running scenario `{name}`");
    match name {
        "panic" => panic!("deliberate test panic"),
        "page-fault" => {
            let v = crate::memory::test_support::read_unmapped();
            klog!("test", "read {v} from an unmapped page?!");
        }
        "stack-overflow" => {
            let v = recurse(0);
            klog!("test", "recursion returned {v}?!");
        }
        "heap-growth" => heap_growth(),
        "heap-growth-failure" => heap_growth_failure(),
        "panic-with-locks-held" => crate::drivers::serial::with_console(|_| {
            crate::memory::heap::with_lock_held(|| {
                panic!("deliberate panic with the console and heap locks held")
            })
        }),
        "recursive-panic" => panic!("outer panic: {}", PanicsWhenFormatted),
        "net-link" => net_link(),
        "ac-leak" => {
            AC_LEAK.store(true, core::sync::atomic::Ordering::Relaxed);
            klog!(
                "test",
                "the first thread's sched_yield switches away with RFLAGS.AC set"
            );
        }
        other => klog!("test", "unknown scenario `{other}`, ignoring"),
    }
}

static AC_LEAK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether the `ac-leak` scenario is armed: the first thread's
/// sched_yield then switches away with RFLAGS.AC set, and every syscall
/// return checks AC is clear (the checks at kernel entries are always on
/// in test-hooks builds). A program case (`ac-flag`) runs under it.
pub fn ac_leak() -> bool {
    AC_LEAK.load(core::sync::atomic::Ordering::Relaxed)
}

/// A value whose `Display` panics, to make the panic path recurse.
struct PanicsWhenFormatted;

impl core::fmt::Display for PanicsWhenFormatted {
    fn fmt(&self, _: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        panic!("inner panic while formatting the outer one")
    }
}

/// Allocates 64 MiB in blocks of many sizes, far beyond the initial heap,
/// checks every byte, frees it all and reports the growth.
fn heap_growth() {
    let before = crate::memory::heap::stats();
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    let mut size = 1usize;
    while total < 64 * 1024 * 1024 {
        let fill = (blocks.len() % 251) as u8;
        blocks.push(alloc::vec![fill; size]);
        total += size;
        size = if size >= 4 * 1024 * 1024 {
            1
        } else {
            size * 3 + 1
        };
    }
    let ok = blocks
        .iter()
        .enumerate()
        .all(|(i, b)| b.iter().all(|&x| x == (i % 251) as u8));
    let count = blocks.len();
    drop(blocks);
    let after = crate::memory::heap::stats();
    klog!(
        "test",
        "heap-growth: {count} blocks, {} MiB, contents {}, heap {} -> {} MiB mapped in {} grows, {} bytes in use after free",
        total / (1024 * 1024),
        if ok { "intact" } else { "CORRUPT" },
        before.mapped / (1024 * 1024),
        after.mapped / (1024 * 1024),
        after.grows,
        after.used
    );
}

/// Takes all but 64 free frames, asks the heap for 16 MiB (a growth that
/// cannot be mapped whole), reports the free frames before and after the
/// failed attempt, and gives the frames back. A failed growth must leave
/// nothing mapped (the page tables it made may stay for the next one).
fn heap_growth_failure() {
    use crate::memory::frames;
    let mut hoard = Vec::with_capacity(frames::free_frames() as usize);
    while frames::free_frames() > 64 {
        match frames::alloc() {
            Some(f) => hoard.push(f),
            None => break,
        }
    }
    let before = frames::free_frames();
    let mut big: Vec<u8> = Vec::new();
    let r = big.try_reserve_exact(16 << 20);
    let after = frames::free_frames();
    drop(big);
    let hoarded = hoard.len();
    for f in hoard {
        frames::free(f);
    }
    klog!(
        "test",
        "heap-growth-failure: a 16 MiB allocation with {before} frames free {}; {after} frames free after it ({hoarded} frames were held meanwhile)",
        if r.is_ok() { "succeeded" } else { "failed" }
    );
}

/// Waits up to 20 s for DHCP, then checks the card with a raw ARP
/// exchange (the stack is paused meanwhile; it has nothing in flight once
/// configured).
fn net_link() {
    if crate::netdev::NIC
        .lock()
        .as_ref()
        .is_none_or(|n| !n.link_up())
    {
        klog!("test", "no network card");
        return;
    }
    let deadline = crate::time::now_nanos() + 20_000_000_000;
    loop {
        if let Some(s) = crate::netdev::address() {
            klog!("test", "configured: {s}");
            break;
        }
        if crate::time::now_nanos() >= deadline {
            klog!("test", "no DHCP answer within 20 s");
            break;
        }
        crate::netdev::poll();
        core::hint::spin_loop();
    }
    {
        let _stack = crate::netdev::STACK.lock();
        if let Some(nic) = crate::netdev::NIC.lock().as_mut() {
            crate::drivers::virtio_net::link_check(nic.as_mut(), 2_000_000_000);
        }
    }
    klog!(
        "test",
        "{} network interrupt(s)",
        crate::interrupts::NET_IRQS.load(core::sync::atomic::Ordering::Relaxed)
    );
}
