//! Writing the initrd: a cpio "newc" archive (`cpio -t` lists it).
//!
//! Entries are written in path order with their parent directories first,
//! with mtime 0 and owner root, so the same inputs give the same bytes. The
//! data of files of [`ALIGN_THRESHOLD`] bytes or more starts on a 4 KiB
//! boundary of the archive (the name field is padded with NULs), so the
//! kernel can map those pages in place instead of copying them. The reader
//! is `llmos_fs::cpio`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Files at least this large are page-aligned in the archive.
pub const ALIGN_THRESHOLD: u64 = 64 * 1024;
const PAGE: u64 = 4096;
const HEADER_LEN: u64 = 110;

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
enum Node {
    Dir,
    File { source: Source, perm: u32 },
}

#[derive(Debug, Clone)]
enum Source {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

/// Builds an initrd.
#[derive(Debug, Default, Clone)]
pub struct Initrd {
    nodes: BTreeMap<String, Node>,
}

/// Checks and normalises an archive path: relative, `/`-separated, no
/// empty, `.` or `..` components.
fn clean(path: &str) -> Result<String> {
    let p = path.trim_start_matches('/');
    if p.is_empty() || p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        bail!(
            "invalid initrd path {path:?}: use a path like /bin/name, without `.`/`..` or empty parts"
        );
    }
    if p.len() > 4096 {
        bail!("initrd path {path:?} is longer than 4096 bytes");
    }
    Ok(p.to_owned())
}

impl Initrd {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, path: &str, node: Node) -> Result<()> {
        let p = clean(path)?;
        let mut parent = String::new();
        for comp in p
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, init)| init.to_vec())
            .unwrap_or_default()
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            match self.nodes.get(&parent) {
                Some(Node::File { .. }) => {
                    bail!("initrd path {path:?}: {parent:?} is a file, not a directory")
                }
                Some(Node::Dir) => {}
                None => {
                    self.nodes.insert(parent.clone(), Node::Dir);
                }
            }
        }
        match (self.nodes.get(&p), &node) {
            (Some(Node::File { .. }), _) => bail!("initrd path {path:?} is added twice"),
            (Some(Node::Dir), Node::File { .. }) => {
                bail!("initrd path {path:?} is already a directory")
            }
            _ => {}
        }
        self.nodes.insert(p, node);
        Ok(())
    }

    /// Adds a directory (parents are created implicitly).
    pub fn add_dir(&mut self, path: &str) -> Result<()> {
        self.insert(path, Node::Dir)
    }

    /// Adds a file with the given bytes and permission bits.
    pub fn add_bytes(&mut self, path: &str, bytes: Vec<u8>, perm: u32) -> Result<()> {
        self.insert(
            path,
            Node::File {
                source: Source::Bytes(bytes),
                perm: perm & 0o7777,
            },
        )
    }

    /// Adds a file copied from the host when the archive is written.
    pub fn add_file(&mut self, path: &str, source: &Path, perm: u32) -> Result<()> {
        let meta =
            std::fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
        if !meta.is_file() {
            bail!("{} is not a regular file", source.display());
        }
        if meta.len() > u64::from(u32::MAX) {
            bail!(
                "{} is larger than 4 GiB, the cpio newc limit",
                source.display()
            );
        }
        self.insert(
            path,
            Node::File {
                source: Source::Path(source.to_owned()),
                perm: perm & 0o7777,
            },
        )
    }

    /// Writes the archive to `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let mut w = Counting {
            inner: BufWriter::new(file),
            pos: 0,
        };
        let mut ino = 1u32;
        for (path, node) in &self.nodes {
            ino += 1;
            match node {
                Node::Dir => write_entry(&mut w, ino, path, 0o040755, 0, 0, &mut std::io::empty())?,
                Node::File { source, perm } => {
                    let (len, mut reader): (u64, Box<dyn Read>) = match source {
                        Source::Bytes(b) => (b.len() as u64, Box::new(b.as_slice())),
                        Source::Path(p) => {
                            let f = File::open(p)
                                .with_context(|| format!("opening {}", p.display()))?;
                            (f.metadata()?.len(), Box::new(f))
                        }
                    };
                    let align = len >= ALIGN_THRESHOLD;
                    write_entry(
                        &mut w,
                        ino,
                        path,
                        0o100000 | perm,
                        len,
                        u32::from(align),
                        &mut reader,
                    )
                    .with_context(|| format!("writing {path} into the initrd"))?;
                }
            }
        }
        write_entry(&mut w, 0, "TRAILER!!!", 0, 0, 0, &mut std::io::empty())?;
        w.inner.flush()?;
        Ok(())
    }
}

struct Counting<W: Write> {
    inner: W,
    pos: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn pad4<W: Write>(w: &mut Counting<W>) -> std::io::Result<()> {
    let n = (4 - w.pos % 4) % 4;
    w.write_all(&[0u8; 3][..n as usize])
}

/// Writes one entry; with `page_align` the name is NUL-padded so the data
/// starts on a page boundary.
fn write_entry<W: Write>(
    w: &mut Counting<W>,
    ino: u32,
    name: &str,
    mode: u32,
    len: u64,
    page_align: u32,
    data: &mut dyn Read,
) -> Result<()> {
    let base = w.pos + HEADER_LEN + name.len() as u64 + 1;
    let namesize = if page_align != 0 {
        let target = base.div_ceil(PAGE) * PAGE;
        name.len() as u64 + 1 + (target - base)
    } else {
        name.len() as u64 + 1
    };
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{len:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
        0, 0, 1, 0, 0, 0, 0, 0, 0
    );
    w.write_all(header.as_bytes())?;
    w.write_all(name.as_bytes())?;
    let nuls = namesize - name.len() as u64;
    std::io::copy(&mut std::io::repeat(0).take(nuls), w)?;
    pad4(w)?;
    let copied = std::io::copy(&mut data.take(len), w)?;
    if copied != len {
        bail!("source shrank while being written ({copied} of {len} bytes)");
    }
    pad4(w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmos_fs::cpio::{Kind, Reader};

    #[test]
    fn roundtrip_with_parents_and_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.bin");
        let big_data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&big, &big_data).unwrap();
        let mut rd = Initrd::new();
        rd.add_bytes("/boot/params", b"PARAMS".to_vec(), 0o644)
            .unwrap();
        rd.add_file("/models/big.gguf", &big, 0o644).unwrap();
        rd.add_bytes("/bin/hello", b"\x7fELF".to_vec(), 0o755)
            .unwrap();
        let out = dir.path().join("initrd.cpio");
        rd.write(&out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let entries: Vec<_> = Reader::new(&bytes).map(Result::unwrap).collect();
        let paths: Vec<&str> = entries.iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "bin",
                "bin/hello",
                "boot",
                "boot/params",
                "models",
                "models/big.gguf"
            ]
        );
        let big_entry = &entries[5];
        assert_eq!(big_entry.kind, Kind::File);
        assert_eq!(big_entry.data, big_data.as_slice());
        assert_eq!(
            big_entry.data_offset % 4096,
            0,
            "large files are page-aligned"
        );
        assert_eq!(entries[1].perm, 0o755);
        assert_eq!(entries[0].kind, Kind::Dir);
    }

    #[test]
    fn gnu_cpio_lists_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut rd = Initrd::new();
        rd.add_bytes("/a/b/c", vec![1; 70_000], 0o600).unwrap();
        rd.add_bytes("/x", b"y".to_vec(), 0o644).unwrap();
        let out = dir.path().join("i.cpio");
        rd.write(&out).unwrap();
        let o = std::process::Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(File::open(&out).unwrap())
            .output()
            .expect("cpio is needed (scripts/setup.sh installs it)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "a\na/b\na/b/c\nx\n");
    }

    #[test]
    fn bad_paths_and_conflicts_are_errors() {
        let mut rd = Initrd::new();
        for bad in ["", "/", "a/../b", "a//b", "./a"] {
            assert!(rd.add_bytes(bad, vec![], 0o644).is_err(), "{bad:?}");
        }
        rd.add_bytes("/f", vec![], 0o644).unwrap();
        assert!(
            rd.add_bytes("/f", vec![], 0o644)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(
            rd.add_bytes("/f/g", vec![], 0o644)
                .unwrap_err()
                .to_string()
                .contains("is a file")
        );
        rd.add_dir("/d").unwrap();
        assert!(
            rd.add_bytes("/d", vec![], 0o644)
                .unwrap_err()
                .to_string()
                .contains("directory")
        );
        let missing = rd
            .add_file("/m", Path::new("/nonexistent/file"), 0o644)
            .unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/file"),
            "{missing}"
        );
    }
}
