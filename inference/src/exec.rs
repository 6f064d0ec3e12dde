//! The code interpreter: Python and JavaScript snippets run in the wasm
//! sandbox ([`llmos_sandbox`]) by the CPython 3.12 and QuickJS-NG WASI
//! builds found in a directory (`/apps/lang` in llmos, `target/lang` in
//! hosted mode). Each interpreter is compiled once, on first use, and
//! instantiated per run. The installed apps ([`crate::apps`]) run in the
//! same sandbox, so its caps on concurrent runs and their memory hold
//! for everything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use llmos_sandbox::{Caps, Limits, Origin, Outcome, Program, Run, Sandbox};

use crate::apps::{AppError, Apps};

/// A language the interpreter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// CPython 3.12.
    Python,
    /// QuickJS-NG.
    JavaScript,
}

impl Language {
    /// From a request's or a command's name.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "python" | "py" | "python3" => Some(Self::Python),
            "javascript" | "js" | "node" => Some(Self::JavaScript),
            _ => None,
        }
    }

    /// The module's file name.
    pub fn file(self) -> &'static str {
        match self {
            Self::Python => "python-3.12.0.wasm",
            Self::JavaScript => "quickjs.wasm",
        }
    }

    /// The name in results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::JavaScript => "javascript",
        }
    }
}

/// The most input files a run may get, and their total size.
pub const MAX_FILES: usize = 64;

/// The memory the sandbox may use on this machine, in bytes, if it can be
/// read: what is available now (call it after the model and its caches are
/// loaded), less what the RAM filesystem may still take when `/` lives in
/// memory (llmos), less a reserve for the runtime itself (an eighth of the
/// machine's memory, at least 64 MiB). See `Caps::for_memory`.
pub fn sandbox_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|k| k * 1024)
    };
    let (total, available) = (kb("MemTotal")?, kb("MemAvailable")?);
    let fs_free = rustix::fs::statfs("/")
        .ok()
        .filter(|st| st.f_type == TMPFS_MAGIC)
        .map_or(0, |st| st.f_bavail.saturating_mul(st.f_bsize as u64));
    let reserve = (total / 8).max(64 << 20);
    let left = available.saturating_sub(fs_free).saturating_sub(reserve);
    Some(left >> 20 << 20)
}

/// `statfs`'s type of a RAM filesystem (tmpfs; llmos's root).
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The interpreters and their sandbox.
pub struct Exec {
    sandbox: Sandbox,
    dir: Option<PathBuf>,
    apps: Option<Apps>,
    python: OnceLock<Result<Program, String>>,
    js: OnceLock<Result<Program, String>>,
}

impl Exec {
    /// Interpreters from `dir` and the apps in `apps` (a directory, and
    /// where data apps keep their data), run under `caps`.
    pub fn new(
        dir: Option<PathBuf>,
        apps: Option<crate::apps::AppsDir>,
        caps: Caps,
    ) -> Result<Self, String> {
        let sandbox = Sandbox::new(caps)?;
        let apps = match apps {
            Some(a) => Some(Apps::load(&sandbox, &a)?),
            None => None,
        };
        Ok(Self {
            sandbox,
            dir,
            apps,
            python: OnceLock::new(),
            js: OnceLock::new(),
        })
    }

    /// The installed apps (when the runtime was given an apps directory).
    pub fn apps(&self) -> Option<&Apps> {
        self.apps.as_ref()
    }

    /// Runs app `name` (see [`Apps::run`]).
    pub fn run_app(
        &self,
        name: &str,
        args: &[String],
        stdin: &[u8],
        files: &BTreeMap<String, String>,
        limits: &Limits,
    ) -> Result<Outcome, AppError> {
        let Some(apps) = &self.apps else {
            return Err(AppError::NotFound(format!(
                "no app named {name:?}: the runtime was started without --apps-dir"
            )));
        };
        let files = input_files(files).map_err(AppError::Bad)?;
        apps.run(&self.sandbox, name, args, stdin, files, limits)
    }

    /// The sandbox's caps.
    pub fn caps(&self) -> &Caps {
        &self.sandbox.caps
    }

    /// The compiled interpreter for `lang` (compiled on first use).
    fn program(&self, lang: Language) -> Result<&Program, String> {
        let cell = match lang {
            Language::Python => &self.python,
            Language::JavaScript => &self.js,
        };
        cell.get_or_init(|| {
            let Some(dir) = &self.dir else {
                return Err(format!(
                    "the {} interpreter is not installed: the runtime was started without --lang-dir",
                    lang.name()
                ));
            };
            let path = dir.join(lang.file());
            let wasm = std::fs::read(&path).map_err(|e| {
                format!(
                    "the {} interpreter is not installed ({}: {e}); `cargo xtask lang` fetches it",
                    lang.name(),
                    path.display()
                )
            })?;
            self.sandbox
                .compile(&wasm, Origin::Trusted)
                .map_err(|(_, m)| format!("{}: {m}", path.display()))
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    /// Runs `code` in `lang` with `stdin`, input `files` (in the scratch
    /// directory `/tmp`) and the request's `limits` (which only tighten
    /// the caps).
    pub fn run(
        &self,
        lang: Language,
        code: &str,
        stdin: &[u8],
        files: &BTreeMap<String, String>,
        limits: Limits,
    ) -> Result<Outcome, String> {
        let files = input_files(files)?;
        let program = self.program(lang)?;
        let args = match lang {
            Language::Python => vec!["python".into(), "-c".into(), code.into()],
            Language::JavaScript => vec!["qjs".into(), "--std".into(), "-e".into(), code.into()],
        };
        let run = Run {
            args,
            stdin: stdin.to_vec(),
            files,
            limits,
            ..Run::default()
        };
        Ok(self.sandbox.run(program, &run))
    }
}

/// A request's input files as the sandbox takes them: at most
/// [`MAX_FILES`], each with a plain name.
fn input_files(files: &BTreeMap<String, String>) -> Result<BTreeMap<String, Vec<u8>>, String> {
    if files.len() > MAX_FILES {
        return Err(format!(
            "at most {MAX_FILES} input files, not {}",
            files.len()
        ));
    }
    for name in files.keys() {
        if name.is_empty()
            || name.contains('/')
            || name == "."
            || name == ".."
            || name.contains('\0')
        {
            return Err(format!("the file name {name:?} is not a plain name"));
        }
    }
    Ok(files
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect())
}

/// The last fenced code block in `text` (```` ```python ```` …): its
/// language tag (if known) and code.
pub fn last_code_block(text: &str) -> Option<(Option<Language>, String)> {
    let mut found = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(tag) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let lang = Language::parse(tag.trim());
        let mut code = Vec::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            code.push(l);
        }
        found = Some((lang, code.join("\n")));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks() {
        let t = "Here:\n```python\nprint(1)\nprint(2)\n```\nand\n```js\nconsole.log(3)\n```\n";
        assert_eq!(
            last_code_block(t),
            Some((Some(Language::JavaScript), "console.log(3)".into()))
        );
        assert_eq!(
            last_code_block("```\nx = 1\n"),
            Some((None, "x = 1".into()))
        );
        assert_eq!(last_code_block("no code"), None);
        assert_eq!(Language::parse("Python"), Some(Language::Python));
        assert_eq!(Language::parse("ruby"), None);
    }
}
