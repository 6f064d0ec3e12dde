//! The first-party apps (`apps/`) through the HTTP API of a hosted
//! `llmos-runtime serve`: listing, running, each app's private data
//! directory, and the checks that keep a bad app out.

use std::path::{Path, PathBuf};

use llmos_tests::hosted::Server;
use llmos_tests::{apps_dir, tiny_model};
use serde_json::{Value, json};

/// A fresh directory under the target dir, removed first if it exists.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("llmos-apps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn serve(apps: &Path, data: Option<&Path>) -> Server {
    let mut args = vec!["--apps-dir", apps.to_str().unwrap()];
    if let Some(d) = data {
        args.extend(["--app-data", d.to_str().unwrap()]);
    }
    Server::start(&tiny_model(), &args)
}

fn run(s: &Server, app: &str, body: Value) -> Value {
    let (status, v) = s.post(&format!("/v1/apps/{app}/run"), &[], &body);
    assert_eq!(status, 200, "{app} {body}: {v}");
    v
}

#[test]
fn apps_are_listed_with_their_capabilities_and_run() {
    let data = scratch("list");
    let s = serve(&apps_dir(), Some(&data));
    assert!(
        s.banner.contains("apps: files 0.1.0, text 0.1.0"),
        "{}",
        s.banner
    );
    let (status, v) = s.get_json("/v1/apps", &[]);
    assert_eq!(status, 200, "{v}");
    let apps = v["data"].as_array().unwrap();
    let names: Vec<&str> = apps.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["files", "text"], "{v}");
    let (files, text) = (&apps[0], &apps[1]);
    assert_eq!(files["capabilities"]["data"], true);
    assert_eq!(files["capabilities"]["data_dir"], "/data");
    assert_eq!(text["capabilities"]["data"], false);
    assert!(text["capabilities"]["data_dir"].is_null());
    let wasi = |a: &Value| -> Vec<String> {
        a["capabilities"]["wasi"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(wasi(files).contains(&"path_create_directory".to_owned()));
    assert!(!wasi(text).contains(&"path_create_directory".to_owned()));
    assert!(!wasi(text).iter().any(|f| f.starts_with("sock_")));
    assert_eq!(text["capabilities"]["network"], false);
    // The manifest's limits, within the server's caps.
    assert_eq!(text["limits"]["fuel"], 5_000_000_000u64, "{text}");
    assert_eq!(text["limits"]["timeout_ms"], 5000, "{text}");
    assert_eq!(text["limits"]["memory_bytes"], 64u64 << 20, "{text}");
    assert_eq!(text["sha256"].as_str().unwrap().len(), 64);

    let v = run(
        &s,
        "text",
        json!({"args": ["wc"], "stdin": "one two\nthree\n"}),
    );
    assert_eq!(
        v["stdout"], "2 lines, 3 words, 14 characters, 14 bytes\n",
        "{v}"
    );
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["app"], "text");
    let v = run(
        &s,
        "text",
        json!({"args": ["grep", "-n", "-i", "PEAR", "a.txt", "b.txt"],
               "files": {"a.txt": "apple\npear\n", "b.txt": "Pear tree\nplum\n"}}),
    );
    assert_eq!(v["stdout"], "2:pear\n3:Pear tree\n", "{v}");
    let v = run(
        &s,
        "text",
        json!({"args": ["sort", "-n", "-r"], "stdin": "10\n9\n100\n"}),
    );
    assert_eq!(v["stdout"], "100\n10\n9\n", "{v}");
    // Usage errors are the app's own: exit status 2 and a message.
    let v = run(&s, "text", json!({"args": ["frobnicate"]}));
    assert_eq!(v["exit_code"], 2, "{v}");
    assert!(
        v["stderr"].as_str().unwrap().contains("unknown command"),
        "{v}"
    );
    // A request's limits tighten the app's.
    let v = run(
        &s,
        "text",
        json!({"args": ["wc"], "stdin": "x", "limits": {"fuel": 1000}}),
    );
    assert_eq!(v["limit"], "fuel", "{v}");
    assert_eq!(v["fuel_used"], 1000, "{v}");

    // Bad requests.
    let cases = [
        ("nope", json!({}), 404, "app_not_found"),
        ("text", json!({"args": [1]}), 400, "args[0]"),
        (
            "text",
            json!({"args": ["wc"], "files": {"../x": "y"}}),
            400,
            "files",
        ),
        ("text", json!({"argv": []}), 400, "argv"),
        ("text", json!({"args": ["a\u{0}b"]}), 400, "args"),
        ("text", json!({"args": vec!["x"; 257]}), 400, "args"),
    ];
    for (app, body, status, what) in cases {
        let (got, v) = s.post(&format!("/v1/apps/{app}/run"), &[], &body);
        assert_eq!(got, status, "{app} {body}: {v}");
        let err = &v["error"];
        assert!(
            err["code"].as_str() == Some(what) || err["param"].as_str().unwrap_or("") == what,
            "{app} {body}: {v}"
        );
    }
    let r = s.curl("GET", "/v1/apps/text/run", &[], None);
    assert_eq!(r.status, 405, "{}", r.body);
}

#[test]
fn each_app_keeps_its_own_data_and_nothing_is_lost() {
    let data = scratch("data");
    let s = serve(&apps_dir(), Some(&data));
    let v = run(&s, "files", json!({"args": ["ls"]}));
    assert_eq!(v["stdout"], "(empty)\n", "{v}");
    let v = run(
        &s,
        "files",
        json!({"args": ["write", "notes/todo.txt"], "stdin": "buy milk\n"}),
    );
    assert_eq!(v["stdout"], "notes/todo.txt: 9 bytes\n", "{v}");
    // The next run sees it, and it is on the disk in the app's directory.
    let v = run(&s, "files", json!({"args": ["cat", "notes/todo.txt"]}));
    assert_eq!(v["stdout"], "buy milk\n", "{v}");
    assert_eq!(
        std::fs::read_to_string(data.join("files/notes/todo.txt")).unwrap(),
        "buy milk\n"
    );
    // Runs at once take turns: every append survives.
    std::thread::scope(|t| {
        for i in 0..8 {
            let s = &s;
            t.spawn(move || {
                run(
                    s,
                    "files",
                    json!({"args": ["append", "log.txt"], "stdin": format!("line {i}\n")}),
                )
            });
        }
    });
    let v = run(&s, "files", json!({"args": ["cat", "log.txt"]}));
    let mut lines: Vec<&str> = v["stdout"].as_str().unwrap().lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        (0..8).map(|i| format!("line {i}")).collect::<Vec<_>>(),
        "{v}"
    );
    // Removing and renaming reach the disk too.
    run(
        &s,
        "files",
        json!({"args": ["mv", "notes/todo.txt", "done.txt"]}),
    );
    run(&s, "files", json!({"args": ["rm", "notes"]}));
    assert!(!data.join("files/notes").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("files/done.txt")).unwrap(),
        "buy milk\n"
    );
    // Paths can't leave the data directory, whatever the app is told.
    for path in ["../text", "/etc/passwd", "../../x"] {
        let v = run(&s, "files", json!({"args": ["cat", path]}));
        assert_eq!(v["exit_code"], 1, "{path}: {v}");
    }
    // Another app doesn't see it: `text` has no /data at all.
    let v = run(&s, "text", json!({"args": ["wc", "/data/done.txt"]}));
    assert_eq!(v["exit_code"], 1, "{v}");
    assert!(v["stdout"].as_str().unwrap().is_empty(), "{v}");
    // Data outlives the server.
    drop(s);
    let s = serve(&apps_dir(), Some(&data));
    let v = run(&s, "files", json!({"args": ["du"]}));
    assert_eq!(v["stdout"], "2 files, 0 directories, 65 bytes\n", "{v}");
    // Without --app-data, an app that keeps data can't run; others can.
    let bare = serve(&apps_dir(), None);
    let (status, v) = bare.post("/v1/apps/files/run", &[], &json!({"args": ["ls"]}));
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "app_unavailable", "{v}");
    run(&bare, "text", json!({"args": ["wc"]}));
}

/// A copy of the first-party app `name` under `dir`, as `as_name`.
fn copy_app(dir: &Path, name: &str, as_name: &str) -> PathBuf {
    let d = dir.join(as_name);
    std::fs::create_dir_all(&d).unwrap();
    for e in std::fs::read_dir(apps_dir().join(name)).unwrap() {
        let p = e.unwrap().path();
        let file = p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(name, as_name);
        std::fs::copy(&p, d.join(file)).unwrap();
    }
    let m = d.join("manifest.toml");
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace(
            &format!("name = \"{name}\""),
            &format!("name = \"{as_name}\""),
        )
        .replace(
            &format!("entry = \"{name}.wasm\""),
            &format!("entry = \"{as_name}.wasm\""),
        );
    std::fs::write(&m, text).unwrap();
    d
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Signs the app in `dir` with `key`, naming `named` as the signer.
fn sign(dir: &Path, key: &ed25519_dalek::SigningKey, named: &ed25519_dalek::VerifyingKey) {
    use ed25519_dalek::Signer;
    let path = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let m = llmos_sandbox::manifest::Manifest::parse(&text).unwrap();
    let sig = key.sign(m.signing_payload().as_bytes());
    std::fs::write(
        &path,
        format!(
            "{text}\n[signature]\nalgorithm = \"ed25519\"\npublic_key = \"{}\"\nvalue = \"{}\"\n",
            hex(named.as_bytes()),
            hex(&sig.to_bytes())
        ),
    )
    .unwrap();
}

#[test]
fn signatures_count_only_from_keys_the_owner_trusts() {
    let dir = scratch("signed");
    let publisher = ed25519_dalek::SigningKey::from_bytes(&[11; 32]);
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[12; 32]);
    sign(
        &copy_app(&dir, "text", "good"),
        &publisher,
        &publisher.verifying_key(),
    );
    // Signed with the package's own key: proves nothing.
    sign(
        &copy_app(&dir, "text", "selfsigned"),
        &stranger,
        &stranger.verifying_key(),
    );
    // Signed by the publisher, then changed.
    let changed = copy_app(&dir, "text", "changed");
    sign(&changed, &publisher, &publisher.verifying_key());
    let m = changed.join("manifest.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replacen("description = \"", "description = \"Now better: ", 1),
    )
    .unwrap();
    copy_app(&dir, "text", "plain");
    let key_file = dir.join("publisher.pub");
    std::fs::write(
        &key_file,
        format!(
            "# our publisher\n{}\n",
            hex(publisher.verifying_key().as_bytes())
        ),
    )
    .unwrap();
    let s = Server::start(
        &tiny_model(),
        &[
            "--apps-dir",
            dir.to_str().unwrap(),
            "--trust-key",
            key_file.to_str().unwrap(),
        ],
    );
    let (status, v) = s.get_json("/v1/apps", &[]);
    assert_eq!(status, 200, "{v}");
    let app = |n: &str| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap_or_else(|| panic!("no {n}: {v}"))
            .clone()
    };
    assert_eq!(app("good")["signature"], "verified", "{v}");
    assert_eq!(
        app("good")["signature_detail"]["key"],
        hex(publisher.verifying_key().as_bytes())
    );
    for (name, why) in [("selfsigned", "not trusted"), ("changed", "does not match")] {
        let a = app(name);
        assert_eq!(a["signature"], "invalid", "{v}");
        let reason = a["signature_detail"]["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{name}: {reason}");
    }
    assert_eq!(app("plain")["signature"], "unsigned", "{v}");
    assert!(app("plain").get("signed").is_none(), "{v}");
    drop(s);
    // Without any trusted key nothing verifies.
    let s = serve(&dir, None);
    let (_, v) = s.get_json("/v1/apps", &[]);
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["signature"] != "verified"),
        "{v}"
    );
    drop(s);
    // A bad key file is refused with the reason.
    std::fs::write(&key_file, "not a key\n").unwrap();
    let out = std::process::Command::new(llmos_tests::runtime_bin())
        .args([
            "serve",
            "--no-console",
            "--listen",
            "127.0.0.1:0",
            "--apps-dir",
        ])
        .arg(&dir)
        .arg("--trust-key")
        .arg(&key_file)
        .arg("--model")
        .arg(tiny_model())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an ed25519 public key"), "{err}");
}

#[test]
fn a_tampered_or_overreaching_app_is_left_out_and_the_rest_run() {
    let dir = scratch("bad");
    let copy = |name: &str| copy_app(&dir, name, name);
    copy("text");
    // A module that is not the one its manifest names.
    let files = copy("files");
    let mut wasm = std::fs::read(files.join("files.wasm")).unwrap();
    let n = wasm.len();
    wasm[n - 1] ^= 1;
    std::fs::write(files.join("files.wasm"), wasm).unwrap();
    // A manifest that asks for less than its module imports (hash fixed up).
    let greedy = dir.join("greedy");
    std::fs::create_dir_all(&greedy).unwrap();
    let module = std::fs::read(apps_dir().join("text/text.wasm")).unwrap();
    std::fs::write(greedy.join("greedy.wasm"), &module).unwrap();
    let manifest = std::fs::read_to_string(apps_dir().join("text/manifest.toml"))
        .unwrap()
        .replace("name = \"text\"", "name = \"greedy\"")
        .replace("entry = \"text.wasm\"", "entry = \"greedy.wasm\"")
        .replace("\"path_open\", ", "");
    std::fs::write(greedy.join("manifest.toml"), manifest).unwrap();
    // A manifest that doesn't parse.
    let broken = dir.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("manifest.toml"),
        "name = \"broken\"\nversion = 1\n",
    )
    .unwrap();

    let s = serve(&dir, None);
    assert!(
        s.banner
            .contains("apps: text 0.1.0 (3 left out, see above)"),
        "{}",
        s.banner
    );
    let err = s.stderr();
    assert!(err.contains("is not the manifest's"), "{err}");
    assert!(
        err.contains(
            "imports what its manifest does not ask for: wasi_snapshot_preview1::path_open"
        ),
        "{err}"
    );
    assert!(err.contains("broken: manifest.toml"), "{err}");
    let (_, v) = s.get_json("/v1/apps", &[]);
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    let (status, _) = s.post("/v1/apps/files/run", &[], &json!({}));
    assert_eq!(status, 404);
    let v = run(
        &s,
        "text",
        json!({"args": ["upper"], "stdin": "still here"}),
    );
    assert_eq!(v["stdout"], "STILL HERE", "{v}");
}

#[test]
fn the_servers_sandbox_caps_bind_apps_and_bad_ones_are_refused() {
    let apps = apps_dir();
    let s = Server::start(
        &tiny_model(),
        &[
            "--apps-dir",
            apps.to_str().unwrap(),
            "--sandbox-cap",
            "memory_mib=32",
            "--sandbox-cap",
            "fuel=1_000_000",
        ],
    );
    let (_, v) = s.get_json("/v1/apps", &[]);
    let text = &v["data"][1];
    assert_eq!(text["name"], "text");
    // The manifest asks for 64 MiB and 5e9 fuel; the server allows less.
    assert_eq!(text["limits"]["memory_bytes"], 32u64 << 20, "{text}");
    assert_eq!(text["limits"]["fuel"], 1_000_000, "{text}");
    let v = run(
        &s,
        "text",
        json!({"args": ["wc"], "stdin": "x\n".repeat(100_000)}),
    );
    assert_eq!(v["limit"], "fuel", "{v}");
    for (cap, why) in [
        ("memory_mib=0", "between 1 and 4096"),
        ("speed=1", "unknown sandbox cap"),
        ("total_memory_mib=16", "no run could start"),
    ] {
        let out = std::process::Command::new(llmos_tests::runtime_bin())
            .args([
                "serve",
                "--no-console",
                "--listen",
                "127.0.0.1:0",
                "--model",
            ])
            .arg(tiny_model())
            .args(["--apps-dir", apps.to_str().unwrap(), "--sandbox-cap", cap])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cap}");
        assert!(err.contains(why), "{cap}: {err}");
    }
}
