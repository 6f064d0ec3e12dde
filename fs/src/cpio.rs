//! cpio "newc" archives (the format Linux initramfs uses; `cpio -t` lists
//! them).
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex
//! fields), the NUL-terminated name padded to a multiple of 4, then the data
//! padded to a multiple of 4. The archive ends with an entry named
//! `TRAILER!!!`. The writer may put extra NULs after a name so that a large
//! file's data starts on a page boundary; readers take the name up to the
//! first NUL, as GNU cpio does.
//!
//! [`Reader`] borrows the archive and yields [`Entry`]s whose `data` is a
//! slice of it (no copying). Every field is checked: magic, hex digits,
//! sizes and offsets (with overflow checks), the name's terminator, paths
//! that would escape the root (`..`, empty components), and file types.
//! Corrupt input is an [`Error`] naming the offset, never a panic.

use core::fmt;

/// Header length.
pub const HEADER_LEN: usize = 110;
/// The newc magic (without CRC).
pub const MAGIC: &[u8; 6] = b"070701";
/// The name of the final entry.
pub const TRAILER: &str = "TRAILER!!!";
/// Longest accepted path.
pub const MAX_NAME: usize = 4096;

/// File type from the mode bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link; the data is the target.
    Symlink,
}

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Normalised path without a leading `/` or `./` (e.g. `bin/hello`).
    pub path: &'a str,
    /// Type.
    pub kind: Kind,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: u32,
    /// Contents (empty for directories).
    pub data: &'a [u8],
    /// Offset of `data` within the archive (for page-alignment checks).
    pub data_offset: usize,
}

/// What is wrong with an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The archive ends inside a header, name or data at this offset.
    Truncated(usize),
    /// No `070701` magic at this offset.
    BadMagic(usize),
    /// A header field is not 8 hex digits.
    BadField {
        /// Header offset.
        offset: usize,
        /// Field index (0 = c_ino).
        field: usize,
    },
    /// The name is empty, too long, not NUL-terminated or not UTF-8.
    BadName(usize),
    /// The path would leave the root (`..`) or has empty components.
    UnsafePath(usize),
    /// Device nodes, FIFOs and sockets are not accepted.
    UnsupportedType {
        /// Header offset.
        offset: usize,
        /// The mode field.
        mode: u32,
    },
    /// A directory with data.
    DirectoryWithData(usize),
    /// The archive has no trailer.
    MissingTrailer,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated(o) => write!(f, "archive truncated at offset {o}"),
            Error::BadMagic(o) => write!(f, "no cpio newc magic at offset {o}"),
            Error::BadField { offset, field } => {
                write!(
                    f,
                    "header at offset {offset}: field {field} is not hexadecimal"
                )
            }
            Error::BadName(o) => write!(f, "entry at offset {o} has an invalid name"),
            Error::UnsafePath(o) => write!(f, "entry at offset {o} has a path outside the root"),
            Error::UnsupportedType { offset, mode } => {
                write!(
                    f,
                    "entry at offset {offset} has unsupported file type (mode {mode:o})"
                )
            }
            Error::DirectoryWithData(o) => write!(f, "directory entry at offset {o} has data"),
            Error::MissingTrailer => f.write_str("archive has no TRAILER!!! entry"),
        }
    }
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

fn hex_field(header: &[u8], offset: usize, field: usize) -> Result<u32, Error> {
    let start = 6 + field * 8;
    let digits = &header[start..start + 8];
    let mut v = 0u32;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(Error::BadField { offset, field }),
        };
        v = (v << 4) | u32::from(n);
    }
    Ok(v)
}

/// Strips `/` and `./` prefixes and checks that no component is `..` or
/// empty. `.` alone (the root) becomes the empty path.
pub fn normalize(name: &str) -> Option<&str> {
    let mut p = name;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            break;
        }
    }
    let p = p.strip_suffix('/').unwrap_or(p);
    if p == "." || p.is_empty() {
        return Some("");
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return None;
    }
    Some(p)
}

/// Iterates over an archive's entries (the trailer ends the iteration).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    /// Reads `data` as a newc archive.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            done: false,
        }
    }

    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, Error> {
        let offset = self.pos;
        if offset >= self.data.len() {
            return Err(Error::MissingTrailer);
        }
        let header = self
            .data
            .get(
                offset
                    ..offset
                        .checked_add(HEADER_LEN)
                        .ok_or(Error::Truncated(offset))?,
            )
            .ok_or(Error::Truncated(offset))?;
        if &header[..6] != MAGIC {
            return Err(Error::BadMagic(offset));
        }
        let mode = hex_field(header, offset, 1)?;
        let mtime = hex_field(header, offset, 5)?;
        let filesize = hex_field(header, offset, 6)? as usize;
        let namesize = hex_field(header, offset, 11)? as usize;
        for field in [0, 2, 3, 4, 7, 8, 9, 10, 12] {
            hex_field(header, offset, field)?;
        }
        if namesize == 0 || namesize > MAX_NAME + 64 * 1024 {
            return Err(Error::BadName(offset));
        }
        let name_start = offset + HEADER_LEN;
        let name_end = name_start
            .checked_add(namesize)
            .ok_or(Error::Truncated(offset))?;
        let raw_name = self
            .data
            .get(name_start..name_end)
            .ok_or(Error::Truncated(name_start))?;
        let nul = raw_name
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::BadName(offset))?;
        if nul == 0 || nul > MAX_NAME {
            return Err(Error::BadName(offset));
        }
        let name = core::str::from_utf8(&raw_name[..nul]).map_err(|_| Error::BadName(offset))?;
        let data_start = align4(name_end).ok_or(Error::Truncated(offset))?;
        let data_end = data_start
            .checked_add(filesize)
            .ok_or(Error::Truncated(offset))?;
        let data = self
            .data
            .get(data_start..data_end)
            .ok_or(Error::Truncated(data_start))?;
        self.pos = align4(data_end).ok_or(Error::Truncated(offset))?;
        if name == TRAILER {
            self.done = true;
            return Ok(None);
        }
        let path = normalize(name).ok_or(Error::UnsafePath(offset))?;
        let kind = match mode & 0o170000 {
            0o100000 => Kind::File,
            0o040000 => Kind::Dir,
            0o120000 => Kind::Symlink,
            _ => return Err(Error::UnsupportedType { offset, mode }),
        };
        if kind == Kind::Dir && filesize != 0 {
            return Err(Error::DirectoryWithData(offset));
        }
        Ok(Some(Entry {
            path,
            kind,
            perm: mode & 0o7777,
            mtime,
            data,
            data_offset: data_start,
        }))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Entry<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Finds the regular file at `path` (normalised as in [`normalize`]),
/// validating every entry before it.
pub fn find<'a>(archive: &'a [u8], path: &str) -> Result<Option<Entry<'a>>, Error> {
    let want = normalize(path).unwrap_or(path);
    for e in Reader::new(archive) {
        let e = e?;
        if e.path == want {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::vec::Vec;

    /// A minimal writer for tests (the real one is `llmos_boot::initrd`).
    fn entry(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
        let namesize = name.len() + 1;
        out.extend_from_slice(
            format!(
                "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                1, mode, 0, 0, 1, 0x5f5e100, data.len(), 0, 0, 0, 0, namesize, 0
            )
            .as_bytes(),
        );
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    fn archive(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, m, d) in entries {
            entry(&mut out, n, *m, d);
        }
        entry(&mut out, TRAILER, 0, b"");
        out
    }

    #[test]
    fn reads_files_dirs_and_symlinks() {
        let a = archive(&[
            ("bin", 0o040755, b""),
            ("bin/hello", 0o100755, b"\x7fELF..."),
            ("./etc/motd", 0o100644, b"hi\n"),
            ("bin/sh", 0o120777, b"hello"),
        ]);
        let all: Vec<Entry<'_>> = Reader::new(&a).map(Result::unwrap).collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].kind, Kind::Dir);
        assert_eq!(all[1].path, "bin/hello");
        assert_eq!(all[1].perm, 0o755);
        assert_eq!(all[1].data, b"\x7fELF...");
        assert_eq!(
            &a[all[1].data_offset..all[1].data_offset + 7],
            b"\x7fELF..."
        );
        assert_eq!(all[2].path, "etc/motd");
        assert_eq!(all[3].kind, Kind::Symlink);
        assert_eq!(all[3].data, b"hello");
        assert_eq!(find(&a, "/etc/motd").unwrap().unwrap().data, b"hi\n");
        assert_eq!(find(&a, "etc/nope").unwrap(), None);
    }

    #[test]
    fn gnu_cpio_style_root_and_extra_nuls() {
        let mut a = Vec::new();
        entry(&mut a, ".", 0o040755, b"");
        // Extra NULs after the name (page-alignment padding).
        let name = "big\0\0\0\0\0\0\0";
        entry(&mut a, name, 0o100644, b"data");
        entry(&mut a, TRAILER, 0, b"");
        let all: Vec<Entry<'_>> = Reader::new(&a).map(Result::unwrap).collect();
        assert_eq!(all[0].path, "");
        assert_eq!(all[1].path, "big");
        assert_eq!(all[1].data, b"data");
    }

    #[test]
    fn rejects_bad_archives() {
        let good = archive(&[("a", 0o100644, b"xyz")]);
        let first = |a: &[u8]| Reader::new(a).next().unwrap().unwrap_err();
        let mut bad = good.clone();
        bad[0] = b'1';
        assert_eq!(first(&bad), Error::BadMagic(0));
        let mut bad = good.clone();
        bad[6 + 8] = b'g';
        assert_eq!(
            first(&bad),
            Error::BadField {
                offset: 0,
                field: 1
            }
        );
        assert_eq!(first(&good[..50]), Error::Truncated(0));
        assert!(matches!(first(&good[..113]), Error::Truncated(_)));
        // filesize larger than the archive
        let mut bad = good.clone();
        bad[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"7fffffff");
        assert!(matches!(first(&bad), Error::Truncated(_)));
        // no trailer
        let mut no_trailer = Vec::new();
        entry(&mut no_trailer, "a", 0o100644, b"x");
        let r: Vec<_> = Reader::new(&no_trailer).collect();
        assert_eq!(
            r.last().unwrap().as_ref().unwrap_err(),
            &Error::MissingTrailer
        );
        assert_eq!(
            first(&archive(&[("../etc/passwd", 0o100644, b"")])),
            Error::UnsafePath(0)
        );
        assert_eq!(
            first(&archive(&[("a//b", 0o100644, b"")])),
            Error::UnsafePath(0)
        );
        assert_eq!(
            first(&archive(&[("a/./b", 0o100644, b"")])),
            Error::UnsafePath(0)
        );
        assert_eq!(
            first(&archive(&[("dev/null", 0o020666, b"")])),
            Error::UnsupportedType {
                offset: 0,
                mode: 0o020666
            }
        );
        assert_eq!(
            first(&archive(&[("d", 0o040755, b"x")])),
            Error::DirectoryWithData(0)
        );
        // name without NUL within namesize
        let mut bad = good.clone();
        bad[HEADER_LEN + 1] = b'x'; // overwrite the NUL of "a\0"
        assert_eq!(first(&bad), Error::BadName(0));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("/bin/x"), Some("bin/x"));
        assert_eq!(normalize("././bin/"), Some("bin"));
        assert_eq!(normalize("."), Some(""));
        assert_eq!(normalize("/"), Some(""));
        assert_eq!(normalize("a/../b"), None);
        assert_eq!(normalize(".."), None);
    }

    /// Replays the cargo-fuzz corpus (`fuzz/corpus/cpio`).
    #[test]
    fn fuzz_corpus_replays_cleanly() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/cpio");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("fuzz/corpus/cpio exists") {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            for e in Reader::new(&data) {
                match e {
                    Ok(e) => assert!(e.data_offset + e.data.len() <= data.len()),
                    Err(_) => break,
                }
            }
            n += 1;
        }
        assert!(n >= 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            for e in Reader::new(&bytes) {
                if e.is_err() { break; }
            }
        }

        #[test]
        fn never_panics_on_mutated_archives(pos in 0usize..400, val in proptest::num::u8::ANY) {
            let mut a = archive(&[("bin", 0o040755, b""), ("bin/x", 0o100755, b"hello world"), ("l", 0o120777, b"bin/x")]);
            let p = pos % a.len();
            a[p] = val;
            let _ = Reader::new(&a).collect::<Vec<_>>();
        }
    }
}
