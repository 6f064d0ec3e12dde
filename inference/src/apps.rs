//! Installed apps: wasm modules with a manifest ([`llmos_sandbox::manifest`])
//! in `<apps dir>/<name>/` (`/apps` in llmos, `target/apps` in hosted
//! mode). Each is checked (manifest, SHA-256, imports against its
//! capabilities) and compiled as untrusted code when the runtime starts;
//! one that fails is left out with the reason, and the others still run.
//!
//! An app whose manifest asks for `data` gets `<data dir>/<name>/` as
//! `/data`: loaded into its run, and the changes written back after it
//! (files replaced whole through a temporary file and a rename). Runs of
//! one such app take turns, so two runs can't lose each other's writes.
//! No app sees another's directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use llmos_sandbox::manifest::{DATA_DIR, Manifest};
use llmos_sandbox::vfs::Item;
use llmos_sandbox::{DataDir, Limits, Origin, Outcome, Program, Run, Sandbox};

/// One installed app.
pub struct App {
    /// Its manifest.
    pub manifest: Manifest,
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
    /// The apps in `dir` (each subdirectory with a `manifest.toml`);
    /// `data` is where data apps keep their directories.
    pub fn load(sandbox: &Sandbox, dir: &Path, data: Option<PathBuf>) -> Result<Self, String> {
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
            match load_one(sandbox, &d) {
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
        std::fs::create_dir_all(&dir)
            .map_err(|e| AppError::Unavailable(format!("{}: {e}", dir.display())))?;
        let before = read_tree(&dir, sandbox.caps.scratch)
            .map_err(|e| AppError::Unavailable(format!("{name}'s data: {e}")))?;
        run.data = Some(DataDir {
            guest: DATA_DIR.into(),
            items: before.clone(),
        });
        let mut out = sandbox.run(&app.program, &run);
        if let Some(after) = &out.data
            && let Err(e) = write_tree(&dir, &before, after)
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

fn load_one(sandbox: &Sandbox, dir: &Path) -> Result<App, String> {
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
        manifest,
        size: wasm.len(),
        program,
        turn: Mutex::new(()),
    })
}

/// Everything under `dir`, parents before children; symbolic links and
/// other special files are left out. At most `cap` bytes of file data.
fn read_tree(dir: &Path, cap: u64) -> std::io::Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let path = format!("{prefix}{name}");
            let t = e.file_type()?;
            if t.is_dir() {
                out.push((path.clone(), None));
                subdirs.push((e.path(), format!("{path}/")));
            } else if t.is_file() {
                let data = std::fs::read(e.path())?;
                total += data.len() as u64;
                if total > cap {
                    return Err(std::io::Error::other(format!(
                        "holds more than the sandbox's {cap}-byte capacity"
                    )));
                }
                out.push((path, Some(data)));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

/// Makes `dir` hold `after`, given that it held `before`: paths gone (or
/// changed between file and directory) are removed, deepest first; then
/// directories are made and changed files replaced whole.
fn write_tree(dir: &Path, before: &[Item], after: &[Item]) -> std::io::Result<()> {
    let old: BTreeMap<&str, &Option<Vec<u8>>> =
        before.iter().map(|(p, d)| (p.as_str(), d)).collect();
    let new: BTreeMap<&str, &Option<Vec<u8>>> =
        after.iter().map(|(p, d)| (p.as_str(), d)).collect();
    let kind = |d: &Option<Vec<u8>>| d.is_some();
    let gone: BTreeSet<&str> = old
        .iter()
        .filter(|(p, d)| new.get(*p).is_none_or(|n| kind(n) != kind(d)))
        .map(|(p, _)| *p)
        .collect();
    // Reverse order puts `a/b` before `a`.
    for p in gone.iter().rev() {
        let path = dir.join(p);
        if kind(old[p]) {
            std::fs::remove_file(&path)?;
        } else {
            std::fs::remove_dir(&path)?;
        }
    }
    for (p, d) in &new {
        let path = dir.join(p);
        match d {
            None => {
                if !path.is_dir() {
                    std::fs::create_dir(&path)?;
                }
            }
            Some(bytes) => {
                if !gone.contains(p) && old.get(p).is_some_and(|o| o.as_ref() == Some(bytes)) {
                    continue;
                }
                // Written next to the app's directory, not inside it.
                let tmp = dir.with_file_name(format!(
                    ".{}.saving",
                    dir.file_name().unwrap_or_default().to_string_lossy()
                ));
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, &path)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_round_trip_through_the_disk() {
        let dir = std::env::temp_dir().join(format!("llmos-apps-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = |p: &str, d: &str| (p.to_owned(), Some(d.as_bytes().to_vec()));
        let d = |p: &str| (p.to_owned(), None);
        let one = vec![d("a"), f("a/x", "1"), f("b", "2"), d("c")];
        let sorted = |mut v: Vec<Item>| {
            v.sort();
            v
        };
        write_tree(&dir, &[], &one).unwrap();
        assert_eq!(sorted(read_tree(&dir, 100).unwrap()), one);
        // b becomes a directory, a/ goes, c gets a file.
        let two = vec![d("b"), f("b/y", "3"), d("c"), f("c/z", "4")];
        write_tree(&dir, &one, &two).unwrap();
        assert_eq!(sorted(read_tree(&dir, 100).unwrap()), two);
        assert!(read_tree(&dir, 1).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
