//! Building `llmos-runtime` (inference/): a static-pie x86_64 Linux
//! program with llama.cpp inside, for a fixed CPU baseline.
//!
//! llama-cpp-sys-2 maps rustc's `-C target-cpu` onto ggml's options
//! (`native` turns GGML_NATIVE on; otherwise GGML_NATIVE is off and the
//! compiler flags follow the target). Each CPU baseline gets its own target
//! directory (`target/runtime` for the default, `target/runtime-<cpu>`),
//! so switching does not rebuild llama.cpp, and an unchanged tree rebuilds
//! nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::build::cargo;
use crate::{paths, progress};

/// The default CPU baseline: AVX2/FMA/F16C, which most x86 machines and
/// QEMU's TCG (`-cpu max`) have.
pub const DEFAULT_CPU: &str = "x86-64-v3";

/// Checks a `--cpu` value.
pub fn check_cpu(cpu: &str) -> Result<()> {
    if cpu.is_empty()
        || !cpu
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("--cpu {cpu:?}: expected a rustc target-cpu name such as x86-64-v3 or native");
    }
    Ok(())
}

/// `cargo SUBCOMMAND` for the runtime crate, built static-pie for `cpu` in
/// that CPU's own target directory (`build`, `clippy` and `test` share one
/// llama.cpp build).
pub fn cargo_for(cpu: &str, subcommand: &str) -> std::process::Command {
    let mut cmd = cargo_in_runtime_dir(cpu, subcommand);
    cmd.args(["--package", "llmos-inference"]);
    cmd
}

/// `cargo SUBCOMMAND --release` with the runtime's flags, target and
/// target directory, for the packages the caller names.
pub fn cargo_in_runtime_dir(cpu: &str, subcommand: &str) -> std::process::Command {
    let mut cmd = cargo();
    cmd.env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env(
            "RUSTFLAGS",
            format!("-C target-feature=+crt-static -C target-cpu={cpu}"),
        )
        .args([subcommand, "--release"])
        .args(["--target", "x86_64-unknown-linux-gnu", "--target-dir"])
        .arg(target_dir(cpu));
    cmd
}

/// The runtime's target directory for `cpu`: `target/runtime` for the
/// default, `target/runtime-<cpu>` for others.
pub fn target_dir(cpu: &str) -> PathBuf {
    if cpu == DEFAULT_CPU {
        paths::target().join("runtime")
    } else {
        paths::target().join(format!("runtime-{cpu}"))
    }
}

/// Builds the runtime for `cpu`; returns the binary.
pub fn build(cpu: &str) -> Result<PathBuf> {
    check_cpu(cpu)?;
    let target_dir = target_dir(cpu);
    progress::header(&format!(
        "building llmos-runtime for {cpu} (static-pie; the first build compiles llama.cpp and takes minutes)"
    ));
    progress::run(&mut cargo_for(cpu, "build"))?;
    let bin = target_dir.join("x86_64-unknown-linux-gnu/release/llmos-runtime");
    if !bin.exists() {
        bail!("the build left no {}", bin.display());
    }
    match ggml_options(&target_dir) {
        Ok(opts) if !opts.is_empty() => println!("llama.cpp SIMD options: {}", opts.join(" ")),
        Ok(_) => println!("llama.cpp SIMD options: none found in the CMake cache"),
        Err(e) => println!("llama.cpp SIMD options: unknown ({e:#})"),
    }
    Ok(bin)
}

/// The GGML_* CPU options in llama.cpp's CMake cache (the newest one, if
/// the build directory holds several).
fn ggml_options(target_dir: &Path) -> Result<Vec<String>> {
    let build = target_dir.join("x86_64-unknown-linux-gnu/release/build");
    // `build/llama-cpp-sys-2-<hash>/out` or `build/llama-cpp-sys-2/<hash>/out`.
    let mut caches = Vec::new();
    for e in std::fs::read_dir(&build).with_context(|| format!("reading {}", build.display()))? {
        let dir = e?.path();
        if !dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("llama-cpp-sys-2"))
        {
            continue;
        }
        let mut candidates = vec![dir.join("out/build/CMakeCache.txt")];
        if let Ok(sub) = std::fs::read_dir(&dir) {
            for s in sub.flatten() {
                candidates.push(s.path().join("out/build/CMakeCache.txt"));
            }
        }
        caches.extend(candidates.into_iter().filter(|c| c.is_file()));
    }
    let newest = caches
        .into_iter()
        .max_by_key(|c| std::fs::metadata(c).and_then(|m| m.modified()).ok());
    let Some(cache) = newest else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for line in std::fs::read_to_string(&cache)?.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let name = key.split(':').next().unwrap_or("");
        let simd = [
            "GGML_NATIVE",
            "GGML_SSE42",
            "GGML_AVX",
            "GGML_AVX2",
            "GGML_AVX_VNNI",
            "GGML_FMA",
            "GGML_F16C",
            "GGML_BMI2",
            "GGML_AVX512",
        ];
        if simd.contains(&name) || name.starts_with("GGML_AVX512_") {
            found.push(format!("{name}={value}"));
        }
    }
    found.sort();
    Ok(found)
}

/// Options of `cargo xtask hosted`.
#[derive(Debug, clap::Args)]
pub struct HostedArgs {
    /// CPU baseline to build for (a rustc target-cpu: x86-64-v3, native, …).
    #[arg(long, default_value = DEFAULT_CPU)]
    cpu: String,
    /// The GGUF model (default: SmolLM2-135M-Instruct Q4_1, fetched once).
    #[arg(long, value_name = "GGUF")]
    model: Option<PathBuf>,
    /// Where the API listens (`serve` only; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The runtime's command and its options (default: `serve`, the API
    /// and the chat console), for example `generate --max-tokens 64 "Once
    /// upon a time"`; `--model` is added.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// The runtime's command: the first of the trailing arguments, `serve`
/// without any.
fn command(a: &HostedArgs) -> &str {
    a.args.first().map_or("serve", String::as_str)
}

/// The runtime's arguments before the ones xtask adds (`--model` and, for
/// `serve` and `console`, the code interpreter and the apps). Every option
/// of xtask's own reaches the runtime whatever the order it was given in,
/// or is refused with the reason: nothing is dropped.
fn runtime_args(a: &HostedArgs) -> Result<Vec<String>> {
    let mut args = if a.args.is_empty() {
        vec!["serve".to_owned()]
    } else {
        a.args.clone()
    };
    let given = |flag: &str| {
        args.iter()
            .any(|x| x == flag || x.starts_with(&format!("{flag}=")))
    };
    if a.model.is_some() && given("--model") {
        bail!("--model is given twice: before the command (for xtask) and after it; give it once");
    }
    if a.model.is_none() && given("--model") {
        bail!(
            "give --model before the command (cargo xtask hosted --model GGUF {}), so that xtask does not add the default model as well",
            command(a)
        );
    }
    if let Some(listen) = &a.listen {
        if command(a) != "serve" {
            bail!(
                "--listen {listen}: only `serve` listens, and the command is `{}`",
                command(a)
            );
        }
        if given("--listen") {
            bail!("--listen is given twice: before the command and after it; give it once");
        }
        args.extend(["--listen".to_owned(), listen.clone()]);
    } else if command(a) == "serve" && !given("--listen") {
        args.extend(["--listen".to_owned(), "127.0.0.1:8080".to_owned()]);
    }
    Ok(args)
}

/// `cargo xtask hosted`: builds the runtime and runs it on this machine.
pub fn hosted(a: &HostedArgs) -> Result<()> {
    let bin = build(&a.cpu)?;
    let model = match &a.model {
        Some(m) => m.clone(),
        None => crate::model::default_model()?,
    };
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(runtime_args(a)?);
    // The code interpreter for the commands that have one.
    if matches!(command(a), "serve" | "console") {
        let (python, _) = crate::lang::runtimes()?;
        if let Some(dir) = python.parent() {
            cmd.arg("--lang-dir").arg(dir);
        }
        // The apps, with their data kept in target/app-data.
        cmd.arg("--apps-dir").arg(crate::apps::build()?);
        cmd.arg("--app-data")
            .arg(crate::paths::target().join("app-data"));
    }
    cmd.arg("--model").arg(&model);
    println!("$ {}", progress::render(&cmd));
    let status = cmd
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        bail!("llmos-runtime exited with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosted(args: &[&str]) -> Result<Vec<String>> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: HostedArgs,
        }
        let cli = Cli::try_parse_from(std::iter::once("hosted").chain(args.iter().copied()))?;
        runtime_args(&cli.a)
    }

    #[test]
    fn hosted_options_reach_the_runtime_in_any_order() {
        let listen = |v: &[String]| {
            v.iter()
                .position(|x| x == "--listen")
                .map(|i| v[i + 1].clone())
        };
        // The option before an explicit command was dropped (issue 20).
        let a = hosted(&["--listen", "127.0.0.1:18555", "serve"]).unwrap();
        assert_eq!(a[0], "serve");
        assert_eq!(listen(&a).as_deref(), Some("127.0.0.1:18555"));
        let a = hosted(&["serve", "--listen", "127.0.0.1:18556"]).unwrap();
        assert_eq!(listen(&a).as_deref(), Some("127.0.0.1:18556"));
        assert_eq!(a.iter().filter(|x| *x == "--listen").count(), 1);
        let a = hosted(&["--listen", "127.0.0.1:18557"]).unwrap();
        assert_eq!(
            (a[0].as_str(), listen(&a).as_deref()),
            ("serve", Some("127.0.0.1:18557"))
        );
        assert_eq!(
            listen(&hosted(&[]).unwrap()).as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(listen(&hosted(&["info"]).unwrap()), None);
        // Refused with a reason instead of dropped.
        let e = hosted(&["--listen", "127.0.0.1:1", "info"]).unwrap_err();
        assert!(e.to_string().contains("only `serve` listens"), "{e}");
        let e = hosted(&[
            "--listen",
            "127.0.0.1:1",
            "serve",
            "--listen",
            "127.0.0.1:2",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = hosted(&["--model", "a.gguf", "info", "--model", "b.gguf"]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = hosted(&["info", "--model", "b.gguf"]).unwrap_err();
        assert!(e.to_string().contains("before the command"), "{e}");
        let a = hosted(&["--cpu", "native", "generate", "--max-tokens", "4", "hi"]).unwrap();
        assert_eq!(a, ["generate", "--max-tokens", "4", "hi"]);
    }

    #[test]
    fn cpu_names_are_checked() {
        check_cpu("x86-64-v3").unwrap();
        check_cpu("native").unwrap();
        assert!(check_cpu("").is_err());
        assert!(check_cpu("v3 -C evil").is_err());
    }
}
