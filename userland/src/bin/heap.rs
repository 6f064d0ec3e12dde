//! Allocates and frees 200 MiB in blocks of many sizes (peak about 48
//! MiB live), checking every block's contents before freeing it. Prints a
//! deterministic summary; exits 1 on corruption.
use llmos_userland::{Rng, fnv1a};

fn main() {
    const TOTAL: usize = 200 * 1024 * 1024;
    const LIVE_CAP: usize = 48 * 1024 * 1024;
    let mut rng = Rng::new(42);
    let mut live: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut live_bytes = 0usize;
    let mut allocated = 0usize;
    let mut blocks = 0usize;
    let mut checksum = 0u64;
    let mut peak = 0usize;
    while allocated < TOTAL {
        // Sizes from 1 byte to 4 MiB, skewed small.
        let shift = rng.next_u64() % 23;
        let size = 1 + (rng.next_u64() as usize % (1usize << shift));
        let seed = rng.next_u64();
        let mut block = vec![0u8; size];
        let mut fill = Rng::new(seed);
        for chunk in block.chunks_mut(8) {
            let v = fill.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let sum = fnv1a(&block);
        live_bytes += size;
        allocated += size;
        blocks += 1;
        live.push((block, sum));
        peak = peak.max(live_bytes);
        while live_bytes > LIVE_CAP || (allocated >= TOTAL && !live.is_empty()) {
            let idx = rng.next_u64() as usize % live.len();
            let (b, sum) = live.swap_remove(idx);
            if fnv1a(&b) != sum {
                println!("CORRUPTION in a block of {} bytes", b.len());
                std::process::exit(1);
            }
            checksum ^= sum;
            live_bytes -= b.len();
        }
    }
    println!(
        "heap: {blocks} blocks, {} MiB allocated and freed, peak {} MiB live",
        allocated >> 20,
        peak >> 20
    );
    println!("heap: all contents verified, checksum {checksum:016x}");
}
