//! Reads lines from the console until end of file and prints each one in
//! upper case; then reports how many it read.
use std::io::BufRead;

fn main() {
    let stdin = std::io::stdin();
    let mut n = 0;
    for line in stdin.lock().lines() {
        let line = line.expect("reading stdin");
        n += 1;
        println!("got: {}", line.to_uppercase());
    }
    println!("eof after {n} lines");
}
