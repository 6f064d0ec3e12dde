//! `files`: lists, reads and writes the app's own data directory, `/data`,
//! which llmos keeps between runs and shows to no other app. Paths are
//! relative to `/data`.

#![forbid(unsafe_code)]

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: files COMMAND [PATH...]
Works in this app's private data directory; paths are relative to it.
commands:
  ls [DIR]          what DIR (or the top) holds: sizes, directories end in /
  tree              every file and directory, with sizes
  cat PATH...       the files' contents
  write PATH        standard input into PATH (replacing it; directories made as needed)
  append PATH       standard input added at the end of PATH
  mkdir PATH        a directory (and its parents)
  rm PATH...        files or empty directories
  mv FROM TO        a file or directory renamed
  du                how many files and bytes the directory holds
  help              this text";

/// The data directory.
const ROOT: &str = "/data";

/// An error: the message and the exit code.
#[derive(Debug)]
struct Fail(String, u8);

fn usage(msg: &str) -> Fail {
    Fail(format!("files: {msg}\n{USAGE}"), 2)
}

/// `path` inside `root`, refusing anything that would leave it.
fn inside(root: &Path, path: &str) -> Result<PathBuf, Fail> {
    let mut p = root.to_path_buf();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::CurDir => {}
            _ => {
                return Err(Fail(
                    format!("files: {path}: paths stay inside the data directory (no /, no ..)"),
                    1,
                ));
            }
        }
    }
    Ok(p)
}

fn io(path: &str) -> impl Fn(std::io::Error) -> Fail + '_ {
    move |e| Fail(format!("files: {path}: {e}"), 1)
}

/// Every file and directory under `dir` (depth first, in name order).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Option<u64>)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.file_type()?.is_dir() {
            out.push((format!("{name}/"), None));
            walk(&e.path(), &format!("{name}/"), out)?;
        } else {
            out.push((name, Some(e.metadata()?.len())));
        }
    }
    Ok(())
}

fn run(root: &Path, args: &[String], stdin: &mut dyn Read) -> Result<Vec<u8>, Fail> {
    let Some((cmd, args)) = args.split_first() else {
        return Err(usage("no command"));
    };
    let one = |what: &str| -> Result<&String, Fail> {
        match args {
            [p] => Ok(p),
            _ => Err(usage(&format!("{cmd} takes one {what}"))),
        }
    };
    let mut out = Vec::new();
    match cmd.as_str() {
        "help" | "-h" | "--help" => out.extend_from_slice(format!("{USAGE}\n").as_bytes()),
        "ls" => {
            let dir = match args {
                [] => ".",
                [d] => d.as_str(),
                _ => return Err(usage("ls takes at most one directory")),
            };
            let path = inside(root, dir)?;
            let mut entries: Vec<_> = fs::read_dir(&path)
                .map_err(io(dir))?
                .collect::<Result<_, _>>()
                .map_err(io(dir))?;
            entries.sort_by_key(|e| e.file_name());
            if entries.is_empty() && dir == "." {
                out.extend_from_slice(b"(empty)\n");
            }
            for e in entries {
                let name = e.file_name().to_string_lossy().into_owned();
                let line = if e.file_type().map_err(io(dir))?.is_dir() {
                    format!("{:>10}  {name}/\n", "-")
                } else {
                    format!("{:>10}  {name}\n", e.metadata().map_err(io(dir))?.len())
                };
                out.extend_from_slice(line.as_bytes());
            }
        }
        "tree" | "du" => {
            if !args.is_empty() {
                return Err(usage(&format!("{cmd} takes no arguments")));
            }
            let mut all = Vec::new();
            walk(root, "", &mut all).map_err(io("."))?;
            if cmd == "tree" {
                for (name, size) in &all {
                    let size = size.map_or("-".to_owned(), |s| s.to_string());
                    out.extend_from_slice(format!("{size:>10}  {name}\n").as_bytes());
                }
            } else {
                let files = all.iter().filter(|(_, s)| s.is_some()).count();
                let bytes: u64 = all.iter().filter_map(|(_, s)| *s).sum();
                let dirs = all.len() - files;
                out.extend_from_slice(
                    format!("{files} files, {dirs} directories, {bytes} bytes\n").as_bytes(),
                );
            }
        }
        "cat" => {
            if args.is_empty() {
                return Err(usage("cat needs a path"));
            }
            for p in args {
                out.extend(fs::read(inside(root, p)?).map_err(io(p))?);
            }
        }
        "write" | "append" => {
            let p = one("path")?;
            let path = inside(root, p)?;
            let mut data = Vec::new();
            stdin.read_to_end(&mut data).map_err(io("standard input"))?;
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io(p))?;
            }
            let mut f = fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(cmd == "append")
                .truncate(cmd == "write")
                .open(&path)
                .map_err(io(p))?;
            f.write_all(&data).map_err(io(p))?;
            let size = f.metadata().map_err(io(p))?.len();
            out.extend_from_slice(format!("{p}: {size} bytes\n").as_bytes());
        }
        "mkdir" => {
            let p = one("path")?;
            fs::create_dir_all(inside(root, p)?).map_err(io(p))?;
        }
        "rm" => {
            if args.is_empty() {
                return Err(usage("rm needs a path"));
            }
            for p in args {
                let path = inside(root, p)?;
                if path == root {
                    return Err(Fail("files: the data directory itself stays".into(), 1));
                }
                let meta = fs::metadata(&path).map_err(io(p))?;
                if meta.is_dir() {
                    fs::remove_dir(&path).map_err(io(p))?;
                } else {
                    fs::remove_file(&path).map_err(io(p))?;
                }
            }
        }
        "mv" => {
            let [from, to] = args else {
                return Err(usage("mv takes FROM and TO"));
            };
            let (a, b) = (inside(root, from)?, inside(root, to)?);
            if let Some(parent) = b.parent() {
                fs::create_dir_all(parent).map_err(io(to))?;
            }
            fs::rename(&a, &b).map_err(io(from))?;
        }
        other => return Err(usage(&format!("unknown command {other:?}"))),
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(Path::new(ROOT), &args, &mut std::io::stdin()) {
        Ok(out) => {
            let _ = std::io::stdout().write_all(&out);
            ExitCode::SUCCESS
        }
        Err(Fail(msg, code)) => {
            eprintln!("{msg}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(root: &Path, args: &str, stdin: &str) -> Result<String, Fail> {
        let args: Vec<String> = args.split(' ').map(str::to_owned).collect();
        run(root, &args, &mut stdin.as_bytes()).map(|o| String::from_utf8(o).unwrap())
    }

    #[test]
    fn works_inside_its_directory() {
        let dir = std::env::temp_dir().join(format!("files-app-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let r = dir.as_path();
        assert_eq!(files(r, "ls", "").unwrap(), "(empty)\n");
        assert_eq!(
            files(r, "write notes/a.txt", "hello").unwrap(),
            "notes/a.txt: 5 bytes\n"
        );
        assert_eq!(
            files(r, "append notes/a.txt", "!").unwrap(),
            "notes/a.txt: 6 bytes\n"
        );
        assert_eq!(files(r, "cat notes/a.txt", "").unwrap(), "hello!");
        assert_eq!(files(r, "ls", "").unwrap(), "         -  notes/\n");
        assert_eq!(files(r, "ls notes", "").unwrap(), "         6  a.txt\n");
        files(r, "mv notes/a.txt b.txt", "").unwrap();
        assert_eq!(
            files(r, "tree", "").unwrap(),
            "         6  b.txt\n         -  notes/\n"
        );
        assert_eq!(
            files(r, "du", "").unwrap(),
            "1 files, 1 directories, 6 bytes\n"
        );
        files(r, "rm b.txt notes", "").unwrap();
        assert_eq!(files(r, "ls", "").unwrap(), "(empty)\n");
        for bad in ["cat ../x", "cat /etc/passwd", "write ../../x", "ls .."] {
            let e = files(r, bad, "").unwrap_err();
            assert!(e.0.contains("stay inside"), "{bad}: {}", e.0);
        }
        assert!(
            files(r, "cat missing", "")
                .unwrap_err()
                .0
                .contains("missing")
        );
        assert_eq!(files(r, "frobnicate", "").unwrap_err().1, 2);
        assert_eq!(files(r, "mv a", "").unwrap_err().1, 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
