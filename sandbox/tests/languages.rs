//! The real interpreters in the sandbox: CPython 3.12 and QuickJS-NG
//! (WASI builds that `cargo xtask test` fetches and passes in
//! `LLMOS_PYTHON_WASM` and `LLMOS_QUICKJS_WASM`; `cargo xtask lang`
//! fetches them for a plain `cargo test`).

use std::sync::OnceLock;

use llmos_sandbox::{Caps, Origin, Outcome, Program, Run, Sandbox};

mod common;

struct Langs {
    sandbox: Sandbox,
    python: Program,
    js: Program,
}

/// One sandbox with both interpreters compiled once (as the runtime does).
fn langs() -> &'static Langs {
    static L: OnceLock<Langs> = OnceLock::new();
    L.get_or_init(|| {
        let sandbox = Sandbox::new(Caps::default()).unwrap();
        let (python, js) = compile(&sandbox);
        Langs {
            sandbox,
            python,
            js,
        }
    })
}

/// CPython and QuickJS, compiled for `sandbox`.
fn compile(sandbox: &Sandbox) -> (Program, Program) {
    let python = sandbox
        .compile(
            &common::runtime("LLMOS_PYTHON_WASM", "python-3.12.0.wasm"),
            Origin::Trusted,
        )
        .unwrap();
    let js = sandbox
        .compile(
            &common::runtime("LLMOS_QUICKJS_WASM", "quickjs.wasm"),
            Origin::Trusted,
        )
        .unwrap();
    (python, js)
}

fn python(code: &str, run: Run) -> Outcome {
    let l = langs();
    let mut args = vec!["python".to_owned(), "-c".to_owned(), code.to_owned()];
    args.extend(run.args.iter().cloned());
    l.sandbox.run(&l.python, &Run { args, ..run })
}

/// QuickJS with `std` and `os` available, evaluating `code`.
fn js(code: &str, run: Run) -> Outcome {
    let l = langs();
    let mut args = vec![
        "qjs".to_owned(),
        "--std".to_owned(),
        "-e".to_owned(),
        code.to_owned(),
    ];
    args.extend(run.args.iter().cloned());
    l.sandbox.run(&l.js, &Run { args, ..run })
}

fn text(o: &Outcome) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn python_prints_and_computes() {
    let o = python("print(1)", Run::default());
    assert_eq!(o.stdout, b"1\n", "{o:?}");
    assert_eq!(o.exit_code, Some(0));
    let o = python("print(sum(range(10)))", Run::default());
    assert_eq!(o.stdout, b"45\n", "{}", text(&o));
    let o = python("raise SystemExit(3)", Run::default());
    assert_eq!(o.exit_code, Some(3));
    let o = python("1/0", Run::default());
    assert_eq!(o.exit_code, Some(1));
    assert!(text(&o).contains("ZeroDivisionError"), "{}", text(&o));
}

#[test]
fn python_files_stdin_args_env_time_and_random_behave() {
    let run = Run {
        stdin: b"line one\nline two\n".to_vec(),
        env: vec![("GREETING".into(), "hej".into())],
        files: [("input.txt".to_owned(), b"from the caller".to_vec())].into(),
        args: vec!["extra".into()],
        ..Run::default()
    };
    let code = r#"
import os, sys, time, random, json
lines = sys.stdin.read().splitlines()
with open('/tmp/out.txt', 'w') as f:
    f.write(open('/tmp/input.txt').read().upper())
os.mkdir('/tmp/d'); os.rename('/tmp/out.txt', '/tmp/d/out.txt')
print(json.dumps({
  'stdin': lines, 'argv': sys.argv[1:], 'env': os.environ.get('GREETING'),
  'files': sorted(os.listdir('/tmp')), 'moved': open('/tmp/d/out.txt').read(),
  'time': time.time() > 1.7e9, 'mono': time.monotonic() >= 0,
  'random': len({random.random() for _ in range(5)}), 'urandom': len(os.urandom(16)),
}, sort_keys=True))
"#;
    let o = python(code, run);
    assert_eq!(o.exit_code, Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        r#""argv": ["extra"]"#,
        r#""env": "hej""#,
        r#""files": ["d", "input.txt"]"#,
        r#""moved": "FROM THE CALLER""#,
        r#""random": 5"#,
        r#""stdin": ["line one", "line two"]"#,
        r#""time": true"#,
        r#""urandom": 16"#,
    ] {
        assert!(out.contains(want), "no {want} in {out}");
    }
}

#[test]
fn python_escape_attempts_are_ordinary_exceptions() {
    let code = r#"
import os
def attempt(name, f):
    try:
        f(); print(name, 'ALLOWED')
    except Exception as e:
        print(name, type(e).__name__)
attempt('passwd', lambda: open('/etc/passwd'))
attempt('root', lambda: os.listdir('/'))
attempt('dotdot', lambda: open('/tmp/../etc/passwd'))
attempt('socket', lambda: __import__('socket').socket())
attempt('system', lambda: os.system('ls'))
attempt('symlink', lambda: os.symlink('/etc/passwd', '/tmp/link'))
"#;
    let o = python(code, Run::default());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.exit_code, Some(0), "{}", text(&o));
    assert!(!out.contains("ALLOWED"), "{out}");
    for line in [
        "passwd FileNotFoundError",
        "root FileNotFoundError",
        // `..` above the preopen is NOTCAPABLE, which Python reports as
        // a permission error.
        "dotdot PermissionError",
        "socket OSError",
        "system AttributeError",
        "symlink OSError",
    ] {
        assert!(out.contains(line), "no {line:?} in {out}");
    }
}

#[test]
fn python_runs_again_after_limits_without_recompiling() {
    let tight = Run {
        limits: llmos_sandbox::Limits {
            wall_ms: Some(1000),
            ..Default::default()
        },
        ..Run::default()
    };
    let o = python("while True: pass", tight);
    assert_eq!(o.limit, Some(llmos_sandbox::Limit::WallClock), "{o:?}");
    let o = python("x = bytearray(512 * 1024 * 1024)", Run::default());
    assert_eq!(o.limit, Some(llmos_sandbox::Limit::Memory), "{}", text(&o));
    let o = python("print('still here')", Run::default());
    assert_eq!(o.stdout, b"still here\n");
}

#[test]
fn javascript_runs_with_the_same_capabilities() {
    let o = js("console.log(1 + 1)", Run::default());
    assert_eq!(o.stdout, b"2\n", "{}", text(&o));
    let o = js(
        "let s = 0; for (let i = 0; i < 10; i++) s += i; console.log(s)",
        Run::default(),
    );
    assert_eq!(o.stdout, b"45\n");
    let o = js("throw new Error('boom')", Run::default());
    assert_ne!(o.exit_code, Some(0));
    assert!(text(&o).contains("boom"), "{}", text(&o));
    let o = js(
        r#"const f = std.open('/etc/passwd', 'r'); console.log(f === null ? 'refused' : 'ALLOWED');
           const g = std.open('/tmp/x.txt', 'w'); g.puts('js was here'); g.close();
           console.log(std.loadFile('/tmp/x.txt'));
           console.log(std.getenv('GREETING'), scriptArgs.join(','));"#,
        Run {
            env: vec![("GREETING".into(), "hej".into())],
            args: vec!["a".into(), "b".into()],
            ..Run::default()
        },
    );
    let out = text(&o);
    assert!(
        out.contains("refused") && out.contains("js was here"),
        "{out}"
    );
    assert!(out.contains("hej a,b"), "{out}");
}

#[test]
fn both_interpreters_run_in_the_least_memory_the_caps_allow() {
    let least = Caps::for_memory(0).unwrap_err().needed;
    // Memory is what is tested: time enough even on a busy machine.
    let caps = Caps {
        wall: std::time::Duration::from_secs(120),
        ..Caps::for_memory(least).unwrap()
    };
    let sandbox = Sandbox::new(caps).unwrap();
    let (python, js) = compile(&sandbox);
    let code = "import json, re, collections\nopen('/tmp/a', 'w').write('x' * 100000)\nx = [i * i for i in range(200000)]\nprint(json.dumps(len(x)))";
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    let o = sandbox.run(
        &python,
        &Run {
            args: args(&["python", "-c", code]),
            ..Run::default()
        },
    );
    assert_eq!(o.stdout, b"200000\n", "{}{o:?}", text(&o));
    let o = sandbox.run(
        &js,
        &Run {
            args: args(&[
                "qjs",
                "--std",
                "-e",
                "console.log([1, 2, 3].map(x => x * 2).join())",
            ]),
            ..Run::default()
        },
    );
    assert_eq!(o.stdout, b"2,4,6\n", "{}{o:?}", text(&o));
}
