//! Installed apps: wasm modules with a manifest ([`llmos_sandbox::manifest`])
//! in `<apps dir>/<name>/` (`/apps` in llmos, `target/apps` in hosted
//! mode). Each is checked (manifest, SHA-256, imports against its
//! capabilities) and compiled as untrusted code when the runtime starts;
//! one that fails is left out with the reason, and the others still run.
//!
//! An app whose manifest asks for `data` gets `<data dir>/<name>/` as
//! `/data`: loaded into its run, and its new tree saved after it, whole or
//! not at all ([`crate::appdata`]). Runs of one such app take turns, so two
//! runs can't lose each other's writes.
//! No app sees another's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use llmos_sandbox::manifest::{DATA_DIR, Manifest};
use llmos_sandbox::{DataDir, Limits, Origin, Outcome, Program, Run, Sandbox};

use crate::appdata::{RealDisk, read_tree, recover, save};
use crate::signature::{Status, TrustedKey};

/// Where the apps are, where they keep data, and the publisher keys
/// their signatures are checked against.
#[derive(Debug, Clone, Default)]
pub struct AppsDir {
    /// One directory per app.
    pub dir: PathBuf,
    /// Where data apps keep their directories.
    pub data: Option<PathBuf>,
    /// The publisher keys the owner trusts (`--trust-key`).
    pub trusted: Vec<TrustedKey>,
}

/// One installed app.
pub struct App {
    /// Its manifest.
    pub manifest: Manifest,
    /// What its signature is worth ([`crate::signature`]).
    pub signature: Status,
    /// The module's size in bytes.
    pub size: usize,
    program: Program,
    /// Held across a data app's load, run and save.
    turn: Mutex<()>,
}

/// The installed apps.
pub struct Apps {
    apps: BTreeMap<String, App>,
    data: Option<PathBuf>,
    /// Apps left out, with the reason.
    pub problems: Vec<String>,
}

/// Why an app didn't run.
#[derive(Debug, PartialEq)]
pub enum AppError {
    /// No app of that name.
    NotFound(String),
    /// The request is wrong (the message says how).
    Bad(String),
    /// The runtime can't run it (no data directory, I/O).
    Unavailable(String),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(m) | Self::Bad(m) | Self::Unavailable(m) => f.write_str(m),
        }
    }
}

impl Apps {
    /// The apps in `at.dir` (each subdirectory with a `manifest.toml`),
    /// their signatures checked against `at.trusted`; `at.data` is where
    /// data apps keep their directories.
    pub fn load(sandbox: &Sandbox, at: &AppsDir) -> Result<Self, String> {
        let (dir, data) = (&at.dir, at.data.clone());
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("--apps-dir {}: {e}", dir.display()))?;
        let mut apps = BTreeMap::new();
        let mut problems = Vec::new();
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("manifest.toml").is_file())
            .collect();
        dirs.sort();
        for d in dirs {
            match load_one(sandbox, &d, &at.trusted) {
                Ok(app) => {
                    apps.insert(app.manifest.name.clone(), app);
                }
                Err(e) => problems.push(format!("{}: {e}", d.display())),
            }
        }
        Ok(Self {
            apps,
            data,
            problems,
        })
    }

    /// The apps, by name.
    pub fn list(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    /// Runs app `name` with `args` (after its name), `stdin`, input `files`
    /// in its scratch directory `/tmp`, and `limits`, which only tighten
    /// the app's own limits (which only tighten the server's caps).
    pub fn run(
        &self,
        sandbox: &Sandbox,
        name: &str,
        args: &[String],
        stdin: &[u8],
        files: BTreeMap<String, Vec<u8>>,
        limits: &Limits,
    ) -> Result<Outcome, AppError> {
        let app = self.apps.get(name).ok_or_else(|| {
            AppError::NotFound(format!(
                "no app named {name:?}; installed: {}",
                if self.apps.is_empty() {
                    "none".to_owned()
                } else {
                    self.apps.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ))
        })?;
        let m = &app.manifest;
        let mut argv = vec![m.name.clone()];
        argv.extend(args.iter().cloned());
        let mut run = Run {
            args: argv,
            stdin: stdin.to_vec(),
            files,
            grant: m.grant(),
            limits: m.limits.tighten(limits),
            ..Run::default()
        };
        if !m.capabilities.data {
            return Ok(sandbox.run(&app.program, &run));
        }
        let Some(root) = &self.data else {
            return Err(AppError::Unavailable(format!(
                "{name} keeps data, and the runtime was started without --app-data"
            )));
        };
        let dir = root.join(&m.name);
        let _turn = app.turn.lock().unwrap_or_else(|p| p.into_inner());
        recover(&dir, &mut RealDisk)
            .and_then(|()| std::fs::create_dir_all(&dir))
            .map_err(|e| AppError::Unavailable(format!("{}: {e}", dir.display())))?;
        let before = read_tree(&dir, sandbox.caps.scratch)
            .map_err(|e| AppError::Unavailable(format!("{name}'s data: {e}")))?;
        run.data = Some(DataDir {
            guest: DATA_DIR.into(),
            items: before.clone(),
        });
        let mut out = sandbox.run(&app.program, &run);
        if let Some(after) = &out.data
            && *after != before
            && let Err(e) = save(&dir, after, &mut RealDisk)
        {
            let msg = format!("{name}'s data could not be saved: {e}");
            out.error = Some(match out.error.take() {
                Some(prev) => format!("{prev}; {msg}"),
                None => msg,
            });
        }
        Ok(out)
    }
}

fn load_one(sandbox: &Sandbox, dir: &Path, trusted: &[TrustedKey]) -> Result<App, String> {
    let text = std::fs::read_to_string(dir.join("manifest.toml"))
        .map_err(|e| format!("manifest.toml: {e}"))?;
    let manifest = Manifest::parse(&text).map_err(|e| format!("manifest.toml: {e}"))?;
    let folder = dir.file_name().unwrap_or_default().to_string_lossy();
    if manifest.name != folder {
        return Err(format!(
            "the manifest names the app {:?}, and its directory is {folder:?}",
            manifest.name
        ));
    }
    if manifest.sha256.is_none() {
        return Err("the manifest names no sha256 for its module".into());
    }
    let wasm =
        std::fs::read(dir.join(&manifest.entry)).map_err(|e| format!("{}: {e}", manifest.entry))?;
    let program = sandbox
        .compile(&wasm, Origin::Untrusted)
        .map_err(|(_, e)| format!("{}: {e}", manifest.entry))?;
    manifest.check_module(&wasm, &program.imports())?;
    Ok(App {
        signature: crate::signature::check(&manifest, trusted),
        manifest,
        size: wasm.len(),
        program,
        turn: Mutex::new(()),
    })
}
