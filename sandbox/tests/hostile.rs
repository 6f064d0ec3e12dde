//! Hostile and ordinary modules against the sandbox's limits.

use std::time::Duration;

use llmos_sandbox::{Caps, Grant, Limit, Limits, Origin, Outcome, Run, Sandbox};

/// A module that writes `text` to stdout with fd_write, then runs `body`.
fn program(body: &str, extra: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $fd_allocate (param i32 i64 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello\n")
  (data (i32.const 200) "../etc/passwd")
  (data (i32.const 300) "/etc/passwd")
  (data (i32.const 400) "in.txt")
  (table $t 1 funcref)
  ;; print 6 bytes at 100
  (func $hello
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  {extra}
  (func (export "_start") {body}))"#
    ))
    .unwrap()
}

/// One test at a time: the time limits are checked against the clock,
/// and tests running side by side on two cores would slow each other.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn sandbox() -> Sandbox {
    Sandbox::new(Caps::default()).unwrap()
}

fn run_with(s: &Sandbox, wasm: &[u8], run: &Run) -> Outcome {
    let p = s
        .compile(wasm, Origin::Untrusted)
        .unwrap_or_else(|e| panic!("{e:?}"));
    s.run(&p, run)
}

/// After anything, an ordinary run still works.
fn still_serves(s: &Sandbox) {
    let o = run_with(s, &program("(call $hello)", ""), &Run::default());
    assert_eq!(o.stdout, b"hello\n", "{o:?}");
    assert_eq!(o.exit_code, Some(0));
}

fn fast(limit: Duration) -> Run {
    Run {
        limits: Limits {
            wall_ms: Some(limit.as_millis() as u64),
            ..Limits::default()
        },
        ..Run::default()
    }
}

#[test]
fn hello_and_exit_codes() {
    let _serial = serial();
    let s = sandbox();
    still_serves(&s);
    let o = run_with(
        &s,
        &program("(call $hello) (call $exit (i32.const 7))", ""),
        &Run::default(),
    );
    assert_eq!(
        (o.stdout.as_slice(), o.exit_code),
        (&b"hello\n"[..], Some(7))
    );
    assert!(
        o.fuel_used > 0 && o.trap.is_none() && o.limit.is_none(),
        "{o:?}"
    );
    let o = run_with(&s, &program("unreachable", ""), &Run::default());
    assert_eq!(
        o.trap.as_ref().map(|t| t.kind.as_str()),
        Some("unreachable"),
        "{o:?}"
    );
    assert_eq!(o.limit, None);
}

#[test]
fn an_infinite_loop_ends_at_the_wall_clock_limit() {
    let _serial = serial();
    let s = sandbox();
    let o = run_with(
        &s,
        &program("(loop $l (br $l))", ""),
        &fast(Duration::from_millis(300)),
    );
    assert_eq!(o.limit, Some(Limit::WallClock), "{o:?}");
    // Within the limit plus 100 ms.
    assert!(o.duration < Duration::from_millis(400), "{:?}", o.duration);
    // And at the fuel limit when that comes first.
    let run = Run {
        limits: Limits {
            fuel: Some(5_000_000),
            ..Limits::default()
        },
        ..Run::default()
    };
    let o = run_with(&s, &program("(loop $l (br $l))", ""), &run);
    assert_eq!(o.limit, Some(Limit::Fuel), "{o:?}");
    assert!(o.fuel_used <= 5_000_000, "{o:?}");
    still_serves(&s);
}

#[test]
fn requests_cannot_loosen_the_caps() {
    let _serial = serial();
    let s = Sandbox::new(Caps {
        wall: Duration::from_millis(200),
        ..Caps::default()
    })
    .unwrap();
    let o = run_with(
        &s,
        &program("(loop $l (br $l))", ""),
        &fast(Duration::from_secs(60)),
    );
    assert_eq!(o.limit, Some(Limit::WallClock));
    assert!(o.duration < Duration::from_millis(300), "{:?}", o.duration);
}

#[test]
fn memory_and_table_grow_bombs_hit_their_limits() {
    let _serial = serial();
    let s = sandbox();
    let o = run_with(
        &s,
        &program("(loop $l (drop (memory.grow (i32.const 16))) (br $l))", ""),
        &Run::default(),
    );
    assert_eq!(o.limit, Some(Limit::Memory), "{o:?}");
    let o = run_with(
        &s,
        &program(
            "(loop $l (drop (table.grow $t (ref.null func) (i32.const 1000))) (br $l))",
            "",
        ),
        &Run::default(),
    );
    assert_eq!(o.limit, Some(Limit::Table), "{o:?}");
    // A request may lower the memory cap: 1 page initial, 2 MiB allowed.
    let run = Run {
        limits: Limits {
            memory: Some(2 << 20),
            ..Limits::default()
        },
        ..Run::default()
    };
    let o = run_with(
        &s,
        &program("(drop (memory.grow (i32.const 64)))", ""),
        &run,
    );
    assert_eq!(o.limit, Some(Limit::Memory), "{o:?}");
    still_serves(&s);
}

#[test]
fn deep_recursion_hits_the_stack_limit() {
    let _serial = serial();
    let s = sandbox();
    let o = run_with(
        &s,
        &program("(call $deep)", "(func $deep (call $deep))"),
        &Run::default(),
    );
    assert_eq!(o.limit, Some(Limit::Stack), "{o:?}");
    assert_eq!(
        o.trap.as_ref().map(|t| t.kind.as_str()),
        Some("stack_overflow")
    );
    still_serves(&s);
}

#[test]
fn huge_and_many_function_modules_are_refused() {
    let _serial = serial();
    let s = sandbox();
    // 50 MB: a custom section of zeros.
    let mut big = program("(call $hello)", "");
    let payload = vec![0u8; 50 << 20];
    big.push(0); // custom section id
    let mut len = Vec::new();
    let mut n = payload.len() + 2;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        len.push(if n == 0 { b } else { b | 0x80 });
        if n == 0 {
            break;
        }
    }
    big.extend_from_slice(&len);
    big.extend_from_slice(&[1, b'x']);
    big.extend_from_slice(&payload);
    let t = std::time::Instant::now();
    let e = s
        .compile(&big, Origin::Untrusted)
        .err()
        .expect("a 50 MB module was accepted");
    assert_eq!(e.0, Limit::Module);
    assert!(e.1.contains("bytes"), "{}", e.1);
    assert!(t.elapsed() < Duration::from_millis(100));
    // 100k tiny functions.
    let funcs: String = (0..100_000).map(|_| "(func)").collect();
    let many = wat::parse_str(format!("(module {funcs})")).unwrap();
    let e = s
        .compile(&many, Origin::Untrusted)
        .err()
        .expect("100k functions were accepted");
    assert_eq!(e.0, Limit::Module);
    assert!(e.1.contains("too complex"), "{}", e.1);
    // Not wasm at all.
    let e = s
        .compile(b"\0asm garbage", Origin::Untrusted)
        .err()
        .unwrap();
    assert!(e.1.contains("not a valid WebAssembly module"), "{}", e.1);
    still_serves(&s);
}

#[test]
fn an_output_flood_is_cut_at_the_cap() {
    let _serial = serial();
    let s = sandbox();
    let run = Run {
        limits: Limits {
            output: Some(1000),
            ..Limits::default()
        },
        ..Run::default()
    };
    let o = run_with(&s, &program("(loop $l (call $hello) (br $l))", ""), &run);
    assert_eq!(o.limit, Some(Limit::Output), "{o:?}");
    assert!(o.stdout_truncated);
    assert_eq!(o.stdout.len(), 1000);
    still_serves(&s);
}

/// Opens the path at `ptr`/`len` from the scratch preopen (fd 3) and
/// exits with the errno.
fn open_and_exit(ptr: u32, len: u32) -> Vec<u8> {
    program(
        &format!(
            "(call $exit (call $path_open (i32.const 3) (i32.const 0) (i32.const {ptr}) (i32.const {len}) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 500)))"
        ),
        "",
    )
}

#[test]
fn paths_cannot_escape_the_preopens() {
    let _serial = serial();
    let s = sandbox();
    let run = Run {
        files: [("in.txt".to_owned(), b"data".to_vec())].into(),
        ..Run::default()
    };
    const NOTCAPABLE: i32 = 76;
    const NOTSUP: i32 = 58;
    assert_eq!(
        run_with(&s, &open_and_exit(400, 6), &run).exit_code,
        Some(0)
    );
    assert_eq!(
        run_with(&s, &open_and_exit(200, 13), &run).exit_code,
        Some(NOTCAPABLE)
    );
    assert_eq!(
        run_with(&s, &open_and_exit(300, 11), &run).exit_code,
        Some(NOTCAPABLE)
    );
    let symlink = program(
        "(call $exit (call $path_symlink (i32.const 300) (i32.const 11) (i32.const 3) (i32.const 400) (i32.const 6)))",
        "",
    );
    assert_eq!(run_with(&s, &symlink, &run).exit_code, Some(NOTSUP));
}

#[test]
fn imports_that_are_not_granted_are_listed() {
    let _serial = serial();
    let s = sandbox();
    let wasm = wat::parse_str(
        r#"(module (import "env" "steal" (func)) (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
           (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let o = run_with(&s, &wasm, &Run::default());
    let e = o.error.expect("refused");
    assert!(
        e.contains("env::steal") && !e.contains("sock_accept"),
        "{e}"
    );
    // A narrower grant refuses WASI functions too.
    let run = Run {
        grant: Grant::Only(vec!["fd_write".into()]),
        ..Run::default()
    };
    let o = run_with(&s, &program("(call $hello)", ""), &run);
    let e = o.error.expect("refused");
    assert!(
        e.contains("path_open") && e.contains("proc_exit") && !e.contains("fd_write"),
        "{e}"
    );
}

#[test]
fn concurrent_runs_above_the_cap_are_refused_cleanly() {
    let _serial = serial();
    let s = std::sync::Arc::new(
        Sandbox::new(Caps {
            concurrent: 4,
            ..Caps::default()
        })
        .unwrap(),
    );
    let p = s
        .compile(
            &program("(call $hello) (loop $l (br $l))", ""),
            Origin::Untrusted,
        )
        .unwrap();
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (s, p) = (s.clone(), p.clone());
            std::thread::spawn(move || s.run(&p, &fast(Duration::from_millis(300))))
        })
        .collect();
    let outcomes: Vec<Outcome> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let refused = outcomes
        .iter()
        .filter(|o| o.limit == Some(Limit::Concurrency))
        .count();
    let ran = outcomes
        .iter()
        .filter(|o| o.limit == Some(Limit::WallClock))
        .count();
    assert_eq!(refused + ran, 64);
    assert!(ran >= 1 && refused >= 1, "ran {ran}, refused {refused}");
    assert!(
        outcomes
            .iter()
            .filter(|o| o.limit == Some(Limit::Concurrency))
            .all(|o| o.error.as_deref().is_some_and(|e| e.contains("busy")))
    );
    still_serves(&s);
}

#[test]
fn stdin_args_and_env_are_what_the_caller_gave() {
    let _serial = serial();
    let s = sandbox();
    // Echo stdin to stdout.
    let echo = program(
        "(i32.store (i32.const 0) (i32.const 1000)) (i32.store (i32.const 4) (i32.const 100))
         (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
         (i32.store (i32.const 4) (i32.load (i32.const 8)))
         (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))",
        "",
    );
    let run = Run {
        stdin: b"from stdin".to_vec(),
        ..Run::default()
    };
    assert_eq!(run_with(&s, &echo, &run).stdout, b"from stdin");
}

#[test]
fn huge_file_sizes_are_refused_not_wrapped() {
    let _serial = serial();
    let s = sandbox();
    let run = Run {
        files: [("in.txt".to_owned(), b"data".to_vec())].into(),
        ..Run::default()
    };
    // Open in.txt for writing (rights FD_READ|FD_WRITE), then ask for an
    // allocation of 2^63-1 bytes at offset 2^63-1.
    let wasm = program(
        "(drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 400) (i32.const 6) (i32.const 0) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 500)))
         (call $exit (call $fd_allocate (i32.load (i32.const 500)) (i64.const 0x7fffffffffffffff) (i64.const 0x7fffffffffffffff)))",
        "",
    );
    const NOSPC: i32 = 51;
    assert_eq!(run_with(&s, &wasm, &run).exit_code, Some(NOSPC));
    still_serves(&s);
}
