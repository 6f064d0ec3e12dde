//! The anchors of `cargo xtask bench` sections 1 and 2: llama.cpp's own
//! `llama-bench` and `llama-server`, built from the llama.cpp source the
//! `llama-cpp-sys-2` crate vendors (the library our runtime links, at the
//! version `Cargo.lock` resolves) with the runtime's CPU flags and
//! optimisation level.
//!
//! That crate ships llama.cpp without the tools' own sources (only their
//! READMEs), so those come from the llama.cpp tree inside the
//! `llama-cpp-python` source package, fetched by name and pinned by
//! SHA-256: its `tools/llama-bench`, `tools/server` and `tools/ui`, and the
//! helper libraries that server version is written against (`common`,
//! `tools/mtmd`), are laid over a copy of the crate's tree, with a
//! `tools/CMakeLists.txt` of our own that builds just those. What runs the
//! model, ggml and libllama, is the crate's. Built once into `target/bench/anchor/`; a stamp of the
//! inputs decides when to build again.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{model, paths, progress};

/// The source package whose llama.cpp tree has the tools' sources.
const TOOLS_PACKAGE: &str = "llama-cpp-python==0.3.36";
/// Its file and SHA-256.
const TOOLS_SDIST: &str = "llama_cpp_python-0.3.36.tar.gz";
const TOOLS_SHA256: &str = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e";
/// What is taken from it: the tools, and the helper libraries the server
/// is written against (`common`: argument parsing, chat templates and
/// other helpers; `mtmd`: multimodal input, unused by text models).
const OVERLAY: [&str; 6] = [
    "tools/llama-bench",
    "tools/server",
    "tools/ui",
    "tools/mtmd",
    "common",
    "scripts/ui-assets.cmake",
];

/// The built anchors.
pub struct Anchors {
    /// `llama-bench`.
    pub bench: PathBuf,
    /// `llama-server`.
    pub server: PathBuf,
    /// Where they come from, for the results.
    pub source: String,
}

/// The llama.cpp tree of the `llama-cpp-sys-2` crate the runtime builds
/// with, and the crate's version.
fn crate_tree() -> Result<(PathBuf, String)> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(paths::root().join("inference/Cargo.toml"))
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let pkg = v["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "llama-cpp-sys-2"))
        .context("llama-cpp-sys-2 is not among the runtime's dependencies")?;
    let manifest = pkg["manifest_path"].as_str().context("no manifest path")?;
    let tree = Path::new(manifest)
        .parent()
        .context("no crate directory")?
        .join("llama.cpp");
    if !tree.join("CMakeLists.txt").exists() {
        bail!(
            "{} has no llama.cpp source (run `cargo fetch` first)",
            tree.display()
        );
    }
    Ok((tree, pkg["version"].as_str().unwrap_or("?").to_owned()))
}

/// The tools' source package, downloaded once and checked.
fn tools_sdist(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(TOOLS_SDIST);
    if path.exists() && model::sha256_file(&path)? == TOOLS_SHA256 {
        return Ok(path);
    }
    progress::header(&format!(
        "fetching the llama.cpp tools' sources ({TOOLS_PACKAGE}, 77 MB)"
    ));
    let work = dir.join("download");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    // pip reads the package's metadata with its build backend, fetched
    // into pip's own build environment.
    progress::run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .args(["--no-binary", ":all:", TOOLS_PACKAGE, "-d"])
            .arg(&work),
    )
    .with_context(|| format!("pip could not download {TOOLS_PACKAGE}"))?;
    let got = work.join(TOOLS_SDIST);
    let sum = model::sha256_file(&got).with_context(|| format!("pip left no {TOOLS_SDIST}"))?;
    if sum != TOOLS_SHA256 {
        bail!("{TOOLS_SDIST} has SHA-256 {sum}, expected {TOOLS_SHA256}: refusing to use it");
    }
    std::fs::rename(&got, &path)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(path)
}

/// What the runtime's own llama.cpp build was configured with: its build
/// type and the ggml options it turned on, CPU features and OpenMP (read
/// from its CMake cache under `runtime_dir`, the newest if there are
/// several).
fn runtime_config(runtime_dir: &Path) -> Result<(String, Vec<String>)> {
    let build = runtime_dir.join("x86_64-unknown-linux-gnu/release/build");
    let cache = std::fs::read_dir(&build)
        .with_context(|| format!("reading {}", build.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("llama-cpp-sys-2"))
        })
        .flat_map(|p| {
            // Cargo's layout: <pkg>-<hash>/out or <pkg>/<hash>/out.
            let mut found = vec![p.join("out/build/CMakeCache.txt")];
            if let Ok(rd) = std::fs::read_dir(&p) {
                found.extend(
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.path().join("out/build/CMakeCache.txt")),
                );
            }
            found
        })
        .filter(|c| c.exists())
        .max_by_key(|c| c.metadata().and_then(|m| m.modified()).ok())
        .context("the runtime's llama.cpp build has no CMake cache (build the runtime first)")?;
    let text = std::fs::read_to_string(&cache)?;
    let mut build_type = None;
    let mut features = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("CMAKE_BUILD_TYPE:STRING=") {
            build_type = Some(t.to_owned());
        }
        let Some((key, value)) = line.split_once(":BOOL=") else {
            continue;
        };
        let cpu_feature = [
            "AVX", "AVX2", "AVX_VNNI", "BMI2", "F16C", "FMA", "SSE42", "OPENMP",
        ]
        .iter()
        .any(|f| key == format!("GGML_{f}"))
            || key.starts_with("GGML_AVX512")
            || key.starts_with("GGML_AMX_");
        if cpu_feature && value == "ON" {
            features.push(key.to_owned());
        }
    }
    let build_type =
        build_type.with_context(|| format!("no CMAKE_BUILD_TYPE in {}", cache.display()))?;
    Ok((build_type, features))
}

/// Builds (or finds built) `llama-bench` and `llama-server` with the flags
/// of the runtime built for `cpu` in `runtime_dir`.
pub fn build(cpu: &str, runtime_dir: &Path) -> Result<Anchors> {
    let dir = paths::target().join("bench").join("anchor");
    std::fs::create_dir_all(&dir)?;
    let (tree, version) = crate_tree()?;
    let (profile, features) = runtime_config(runtime_dir)?;
    let flags = format!("-march={cpu}");
    let source = format!(
        "ggml and libllama from llama-cpp-sys-2 {version}; tools, common and mtmd from {TOOLS_PACKAGE}; \
         CMAKE_BUILD_TYPE={profile}, {flags}, {}, static (as the runtime)",
        features.join(" ")
    );
    let bin = dir.join("build").join("bin");
    let anchors = Anchors {
        bench: bin.join("llama-bench"),
        server: bin.join("llama-server"),
        source: source.clone(),
    };
    let stamp = dir.join("stamp");
    let built = std::fs::read_to_string(&stamp).ok();
    if built.as_deref() == Some(source.as_str())
        && anchors.bench.exists()
        && anchors.server.exists()
    {
        return Ok(anchors);
    }
    let sdist = tools_sdist(&dir)?;
    progress::header("building llama-bench and llama-server (once; about 10 minutes on 2 cores)");
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_file(&stamp);
    progress::run(Command::new("cp").arg("-r").arg(&tree).arg(&src))?;
    progress::run(Command::new("chmod").args(["-R", "u+w"]).arg(&src))?;
    let top = TOOLS_SDIST.trim_end_matches(".tar.gz");
    let unpacked = dir.join("unpacked");
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(&unpacked)?;
    let inside = |p: &str| format!("{top}/vendor/llama.cpp/{p}");
    let members: Vec<String> = OVERLAY.iter().map(|p| inside(p)).collect();
    progress::run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&sdist)
            .arg("-C")
            .arg(&unpacked)
            .args(&members),
    )?;
    let from = unpacked.join(top).join("vendor/llama.cpp");
    for p in OVERLAY {
        let to = src.join(p);
        let _ = std::fs::remove_dir_all(&to);
        let _ = std::fs::remove_file(&to);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(from.join(p), &to)?;
    }
    let _ = std::fs::remove_dir_all(&unpacked);
    // Only the tools the bench runs (the crate's tree lacks the others).
    std::fs::write(
        src.join("tools/CMakeLists.txt"),
        "# Written by cargo xtask bench: the anchors only.\n\
         find_package(Threads REQUIRED)\n\
         llama_add_compile_flags()\n\
         add_subdirectory(mtmd)\n\
         add_subdirectory(llama-bench)\n\
         add_subdirectory(ui)\n\
         add_subdirectory(server)\n",
    )?;
    let build = dir.join("build");
    let _ = std::fs::remove_dir_all(&build);
    let on = |k: &str| format!("-D{k}=ON");
    let off = |k: &str| format!("-D{k}=OFF");
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_BUILD_TYPE={profile}"))
        .arg(format!("-DCMAKE_C_FLAGS={flags}"))
        .arg(format!("-DCMAKE_CXX_FLAGS={flags}"))
        .args(["BUILD_SHARED_LIBS", "GGML_NATIVE"].map(off))
        .args(
            [
                "LLAMA_BUILD_TESTS",
                "LLAMA_BUILD_EXAMPLES",
                "LLAMA_BUILD_APP",
            ]
            .map(off),
        )
        .args(
            [
                "LLAMA_BUILD_UI",
                "LLAMA_USE_PREBUILT_UI",
                "LLAMA_OPENSSL",
                "LLAMA_CURL",
            ]
            .map(off),
        )
        .args(["LLAMA_BUILD_TOOLS", "LLAMA_BUILD_SERVER"].map(on));
    // The ggml options the runtime's build turned on; OpenMP off unless
    // it was.
    if !features.iter().any(|f| f == "GGML_OPENMP") {
        configure.arg(off("GGML_OPENMP"));
    }
    configure.args(features.iter().map(|k| on(k)));
    progress::run(&mut configure)?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    progress::run(Command::new("cmake").arg("--build").arg(&build).args([
        "-j",
        &jobs.to_string(),
        "--target",
        "llama-bench",
        "llama-server",
    ]))?;
    if !anchors.bench.exists() || !anchors.server.exists() {
        bail!(
            "the build left no llama-bench or llama-server in {}",
            bin.display()
        );
    }
    std::fs::write(&stamp, &source)?;
    Ok(anchors)
}
