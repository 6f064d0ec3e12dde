//! `text`: counts, searches, sorts and slices text, like `wc`, `grep`,
//! `head`, `tail`, `sort` and `uniq` in one program. It reads the files it
//! is given (in the run's scratch directory `/tmp`, where a request's input
//! files are put) or standard input, and writes to standard output.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: text COMMAND [OPTIONS] [ARGS] [FILE...]
Reads the FILEs (names in /tmp, where a request's files are put) or standard input.
commands:
  wc                              lines, words, characters and bytes
  grep [-i] [-v] [-n] [-c] TEXT   lines that contain TEXT (-i any case, -v that don't,
                                  -n with line numbers, -c only the count)
  head [-n N]                     the first N lines (10)
  tail [-n N]                     the last N lines (10)
  sort [-r] [-n] [-u]             lines in order (-r reversed, -n by number, -u unique)
  uniq [-c]                       repeated adjacent lines once (-c with counts)
  freq [-n N]                     the N most frequent words (10), with counts
  replace FROM TO                 every FROM replaced by TO
  upper | lower                   letters in upper or lower case
  help                            this text";

/// A command line that can't be run: the message and the exit code.
#[derive(Debug, PartialEq)]
struct Fail(String, u8);

fn usage(msg: impl Into<String>) -> Fail {
    Fail(format!("{}\n{USAGE}", msg.into()), 2)
}

/// Options and operands, split.
struct Parsed {
    flags: Vec<char>,
    n: Option<usize>,
    rest: Vec<String>,
}

fn parse(args: &[String], allowed: &str, takes_n: bool) -> Result<Parsed, Fail> {
    let mut p = Parsed {
        flags: Vec::new(),
        n: None,
        rest: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            p.rest.extend(args[i + 1..].iter().cloned());
            break;
        }
        if a.len() > 1 && a.starts_with('-') {
            let opts: Vec<char> = a[1..].chars().collect();
            for (k, &c) in opts.iter().enumerate() {
                if c == 'n' && takes_n {
                    // `-n 5` or `-n5`.
                    let value = if k + 1 < opts.len() {
                        opts[k + 1..].iter().collect::<String>()
                    } else {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| usage("-n needs a number"))?
                    };
                    p.n = Some(
                        value
                            .parse()
                            .map_err(|_| usage(format!("-n {value}: not a number")))?,
                    );
                    break;
                }
                if !allowed.contains(c) {
                    return Err(usage(format!("unknown option -{c}")));
                }
                p.flags.push(c);
            }
        } else {
            p.rest.push(a.clone());
        }
        i += 1;
    }
    Ok(p)
}

/// Runs `args` (without the program name) over `input`, which gives the
/// text of the named files or of standard input.
fn run(
    args: &[String],
    input: &mut dyn FnMut(&[String]) -> Result<String, Fail>,
) -> Result<String, Fail> {
    let Some((cmd, args)) = args.split_first() else {
        return Err(usage("no command"));
    };
    let mut out = String::new();
    let lines = |t: &str| t.lines().map(str::to_owned).collect::<Vec<_>>();
    match cmd.as_str() {
        "help" | "-h" | "--help" => out = format!("{USAGE}\n"),
        "wc" => {
            let p = parse(args, "", false)?;
            let t = input(&p.rest)?;
            out = format!(
                "{} lines, {} words, {} characters, {} bytes\n",
                t.lines().count(),
                t.split_whitespace().count(),
                t.chars().count(),
                t.len()
            );
        }
        "grep" => {
            let p = parse(args, "ivnc", false)?;
            let Some((pattern, files)) = p.rest.split_first() else {
                return Err(usage("grep needs the text to look for"));
            };
            let any_case = p.flags.contains(&'i');
            let needle = if any_case {
                pattern.to_lowercase()
            } else {
                pattern.clone()
            };
            let t = input(files)?;
            let mut count = 0;
            for (no, line) in t.lines().enumerate() {
                let hay = if any_case {
                    line.to_lowercase()
                } else {
                    line.to_owned()
                };
                if hay.contains(&needle) != p.flags.contains(&'v') {
                    count += 1;
                    if !p.flags.contains(&'c') {
                        if p.flags.contains(&'n') {
                            out.push_str(&format!("{}:", no + 1));
                        }
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
            if p.flags.contains(&'c') {
                out = format!("{count}\n");
            }
            if count == 0 {
                // Like grep: nothing found is exit status 1, not an error message.
                return Err(Fail(out, 1));
            }
        }
        "head" | "tail" => {
            let p = parse(args, "", true)?;
            let n = p.n.unwrap_or(10);
            let all = lines(&input(&p.rest)?);
            let pick = if cmd == "head" {
                &all[..n.min(all.len())]
            } else {
                &all[all.len().saturating_sub(n)..]
            };
            for l in pick {
                out.push_str(l);
                out.push('\n');
            }
        }
        "sort" => {
            let p = parse(args, "rnu", false)?;
            let mut all = lines(&input(&p.rest)?);
            if p.flags.contains(&'n') {
                // Numbers first, in value order; other lines after, in text order.
                let key = |l: &String| l.trim().parse::<f64>().ok();
                all.sort_by(|a, b| match (key(a), key(b)) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => a.cmp(b),
                });
            } else {
                all.sort();
            }
            if p.flags.contains(&'u') {
                all.dedup();
            }
            if p.flags.contains(&'r') {
                all.reverse();
            }
            for l in all {
                out.push_str(&l);
                out.push('\n');
            }
        }
        "uniq" => {
            let p = parse(args, "c", false)?;
            let mut runs: Vec<(usize, String)> = Vec::new();
            for l in lines(&input(&p.rest)?) {
                match runs.last_mut() {
                    Some((n, last)) if *last == l => *n += 1,
                    _ => runs.push((1, l)),
                }
            }
            for (n, l) in runs {
                if p.flags.contains(&'c') {
                    out.push_str(&format!("{n:>7} "));
                }
                out.push_str(&l);
                out.push('\n');
            }
        }
        "freq" => {
            let p = parse(args, "", true)?;
            let t = input(&p.rest)?.to_lowercase();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for w in t
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .map(|w| w.trim_matches('\''))
                .filter(|w| !w.is_empty())
            {
                *counts.entry(w).or_default() += 1;
            }
            let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            for (w, n) in v.into_iter().take(p.n.unwrap_or(10)) {
                out.push_str(&format!("{n:>7} {w}\n"));
            }
        }
        "replace" => {
            let p = parse(args, "", false)?;
            let [from, to, files @ ..] = p.rest.as_slice() else {
                return Err(usage("replace needs FROM and TO"));
            };
            if from.is_empty() {
                return Err(usage("replace: FROM is empty"));
            }
            out = input(files)?.replace(from.as_str(), to);
        }
        "upper" | "lower" => {
            let p = parse(args, "", false)?;
            let t = input(&p.rest)?;
            out = if cmd == "upper" {
                t.to_uppercase()
            } else {
                t.to_lowercase()
            };
        }
        other => return Err(usage(format!("unknown command {other:?}"))),
    }
    Ok(out)
}

/// The text of `files` (relative names are in /tmp), or of standard input.
fn read_input(files: &[String]) -> Result<String, Fail> {
    let mut bytes = Vec::new();
    if files.is_empty() {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Fail(format!("text: standard input: {e}"), 1))?;
    }
    for f in files {
        let path = if f.starts_with('/') {
            f.clone()
        } else {
            format!("/tmp/{f}")
        };
        let data = std::fs::read(&path).map_err(|e| Fail(format!("text: {f}: {e}"), 1))?;
        bytes.extend_from_slice(&data);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, code) = match run(&args, &mut read_input) {
        Ok(out) => (out, 0),
        Err(Fail(msg, 1)) if !msg.starts_with("text: ") => (msg, 1),
        Err(Fail(msg, code)) => {
            eprintln!("{msg}");
            (String::new(), code)
        }
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &str, input: &str) -> Result<String, Fail> {
        let args: Vec<String> = args.split(' ').map(str::to_owned).collect();
        run(&args, &mut |files| {
            assert!(files.is_empty() || files == ["f"]);
            Ok(input.to_owned())
        })
    }

    #[test]
    fn commands() {
        assert_eq!(
            text("wc", "a b\nc\n").unwrap(),
            "2 lines, 3 words, 6 characters, 6 bytes\n"
        );
        assert_eq!(text("grep -n b", "a\nb\nab\n").unwrap(), "2:b\n3:ab\n");
        assert_eq!(text("grep -i -c A f", "a\nB\nA\n").unwrap(), "2\n");
        assert_eq!(text("grep -v a", "a\nb\n").unwrap(), "b\n");
        assert_eq!(text("grep z", "a\n"), Err(Fail(String::new(), 1)));
        assert_eq!(text("head -n 2", "1\n2\n3\n").unwrap(), "1\n2\n");
        assert_eq!(text("tail -n1", "1\n2\n3\n").unwrap(), "3\n");
        assert_eq!(text("tail -n 9", "1\n2\n").unwrap(), "1\n2\n");
        assert_eq!(text("sort -n", "10\nx\n9\n").unwrap(), "9\n10\nx\n");
        assert_eq!(text("sort -r -u", "a\nb\na\n").unwrap(), "b\na\n");
        assert_eq!(
            text("uniq -c", "a\na\nb\n").unwrap(),
            "      2 a\n      1 b\n"
        );
        assert_eq!(
            text("freq -n 2", "The cat, the dog; the CAT.").unwrap(),
            "      3 the\n      2 cat\n"
        );
        assert_eq!(text("replace cat dog", "cat cat").unwrap(), "dog dog");
        assert_eq!(text("upper", "aé").unwrap(), "AÉ");
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for args in [
            "nope",
            "grep",
            "head -n x",
            "sort -z",
            "replace a",
            "head -n",
        ] {
            let e = text(args, "").unwrap_err();
            assert_eq!(e.1, 2, "{args}");
            assert!(e.0.contains("usage: text"), "{args}: {}", e.0);
        }
        assert!(text("", "").unwrap_err().0.contains("unknown command"));
    }
}
