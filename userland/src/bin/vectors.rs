//! Vector-state integrity across threads: several threads run different
//! floating-point reductions in SSE/AVX registers, yielding and sleeping
//! in between, and each result must equal the single-threaded reference
//! bit for bit. A thread switch that lost or mixed up vector registers
//! would change the results.
use std::arch::x86_64::*;
use std::time::Duration;

fn reduce(seed: u32, yield_every: usize) -> [u32; 8] {
    let avx =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    let mut x = seed as f32 * 0.001 + 1.0;
    let mut out = [0u32; 8];
    if avx {
        // SAFETY: AVX2 and FMA are present (checked above).
        unsafe {
            let mut acc = _mm256_set1_ps(x);
            let step = _mm256_setr_ps(
                1.0001, 0.9999, 1.0002, 0.9998, 1.0003, 0.9997, 1.0004, 0.9996,
            );
            for i in 0..20_000 {
                acc = _mm256_fmadd_ps(acc, step, _mm256_set1_ps(0.5 / (i as f32 + 1.0)));
                if i % yield_every == 0 {
                    std::thread::yield_now();
                }
                if i % 5_000 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let mut f = [0f32; 8];
            _mm256_storeu_ps(f.as_mut_ptr(), acc);
            for (o, v) in out.iter_mut().zip(f) {
                *o = v.to_bits();
            }
        }
    } else {
        for i in 0..20_000 {
            x = x * 1.0001 + 0.5 / (i as f32 + 1.0);
            if i % yield_every == 0 {
                std::thread::yield_now();
            }
        }
        out = [x.to_bits(); 8];
    }
    out
}

fn main() {
    let seeds: Vec<u32> = (1..=6).collect();
    let reference: Vec<[u32; 8]> = seeds.iter().map(|&s| reduce(s, usize::MAX)).collect();
    let handles: Vec<_> = seeds
        .iter()
        .map(|&s| std::thread::spawn(move || reduce(s, 97 + s as usize)))
        .collect();
    let results: Vec<[u32; 8]> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let same = results == reference;
    println!("6 threads of 20000 fused multiply-adds each, interleaved with yields and sleeps");
    println!(
        "results identical to the single-threaded reference: {}",
        if same { "yes" } else { "NO" }
    );
    std::process::exit(if same { 0 } else { 1 });
}
