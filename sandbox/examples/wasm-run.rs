//! Runs a WASI module in the sandbox and prints the outcome:
//! `cargo run -p llmos-sandbox --example wasm-run -- MODULE.wasm [ARGS…]`
//! (stdin is passed through; the module is treated as trusted).

use std::io::Read;

use llmos_sandbox::{Caps, Origin, Run, Sandbox};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: wasm-run MODULE.wasm [ARGS…]");
        std::process::exit(2);
    };
    let wasm = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2)
    });
    let s = Sandbox::new(Caps::default()).expect("sandbox");
    let t = std::time::Instant::now();
    let p = s.compile(&wasm, Origin::Trusted).unwrap_or_else(|e| {
        eprintln!("{path}: {}", e.1);
        std::process::exit(2)
    });
    let compiled = t.elapsed();
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let run = Run {
        args: std::iter::once(path.clone()).chain(args).collect(),
        stdin,
        ..Run::default()
    };
    for round in 1..=2 {
        let o = s.run(&p, &run);
        print!("{}", String::from_utf8_lossy(&o.stdout));
        eprint!("{}", String::from_utf8_lossy(&o.stderr));
        eprintln!(
            "run {round}: exit {:?}, trap {:?}, limit {:?}, error {:?}, fuel {}, {:?} (compile {compiled:?})",
            o.exit_code, o.trap, o.limit, o.error, o.fuel_used, o.duration
        );
    }
}
