//! Prints its arguments and a few environment variables, then exits 0.
fn main() {
    println!("hello from llmos userland");
    for (i, a) in std::env::args().enumerate() {
        println!("argv[{i}] = {a:?}");
    }
    for k in ["PATH", "HOME", "TERM"] {
        println!("env {k} = {:?}", std::env::var(k).ok());
    }
    let v: Vec<u64> = (1..=100_000).collect();
    println!("sum = {}", v.iter().sum::<u64>());
}
