//! A data app's directory on the disk, loaded into its run and saved after
//! it, whole or not at all.
//!
//! [`save`] never touches the live directory `NAME` until the new tree is
//! complete: it writes the whole tree to `.NAME.new` beside it (each file
//! synced), then renames `NAME` to `.NAME.old`, `.NAME.new` to `NAME`, and
//! removes `.NAME.old`. A failure while writing leaves `NAME` as it was;
//! [`recover`], run before every load, finishes or undoes a save that
//! stopped half-way (a crash): with `NAME` gone and `.NAME.new` there, the
//! new tree was complete and takes its place; an `.NAME.new` beside a live
//! `NAME` was not, and goes; an `.NAME.old` goes (or comes back if `NAME`
//! is missing and there is no new tree).
//!
//! The file operations go through [`Disk`], so the tests can make any one
//! of them fail or stop.

use std::path::{Path, PathBuf};

use llmos_sandbox::vfs::Item;

/// The file operations a save makes.
pub trait Disk {
    /// Makes a directory.
    fn create_dir(&mut self, p: &Path) -> std::io::Result<()>;
    /// Writes a new file whole and syncs it.
    fn write(&mut self, p: &Path, data: &[u8]) -> std::io::Result<()>;
    /// Renames a file or directory.
    fn rename(&mut self, from: &Path, to: &Path) -> std::io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_all(&mut self, p: &Path) -> std::io::Result<()>;
    /// Syncs a directory's entries.
    fn sync_dir(&mut self, p: &Path) -> std::io::Result<()>;
}

/// The real filesystem.
pub struct RealDisk;

impl Disk for RealDisk {
    fn create_dir(&mut self, p: &Path) -> std::io::Result<()> {
        std::fs::create_dir(p)
    }
    fn write(&mut self, p: &Path, data: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create_new(p)?;
        f.write_all(data)?;
        f.sync_all()
    }
    fn rename(&mut self, from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_all(&mut self, p: &Path) -> std::io::Result<()> {
        std::fs::remove_dir_all(p)
    }
    fn sync_dir(&mut self, p: &Path) -> std::io::Result<()> {
        // Directories can't be opened for writing; a read-only handle is
        // enough for fsync. A filesystem without it (a RAM disk) has
        // nothing to sync.
        match std::fs::File::open(p).and_then(|f| f.sync_all()) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Unsupported | std::io::ErrorKind::InvalidInput
                ) =>
            {
                Ok(())
            }
            r => r,
        }
    }
}

/// `dir`'s sibling `.NAME.<what>`.
fn sibling(dir: &Path, what: &str) -> PathBuf {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    dir.with_file_name(format!(".{name}.{what}"))
}

/// Finishes or undoes a [`save`] that stopped half-way (see the module).
pub fn recover(dir: &Path, disk: &mut dyn Disk) -> std::io::Result<()> {
    let (new, old) = (sibling(dir, "new"), sibling(dir, "old"));
    let there = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if there(&new) {
        if there(dir) {
            disk.remove_all(&new)?;
        } else {
            disk.rename(&new, dir)?;
        }
    }
    if there(&old) {
        if there(dir) {
            disk.remove_all(&old)?;
        } else {
            disk.rename(&old, dir)?;
        }
    }
    Ok(())
}

/// Makes `dir` hold exactly `after`, whole or not at all (see the module).
pub fn save(dir: &Path, after: &[Item], disk: &mut dyn Disk) -> std::io::Result<()> {
    let (new, old) = (sibling(dir, "new"), sibling(dir, "old"));
    disk.create_dir(&new)?;
    // `after` lists parents before children.
    for (path, data) in after {
        let p = new.join(path);
        match data {
            None => disk.create_dir(&p)?,
            Some(bytes) => disk.write(&p, bytes)?,
        }
    }
    disk.sync_dir(&new)?;
    disk.rename(dir, &old)?;
    disk.rename(&new, dir)?;
    if let Some(parent) = dir.parent() {
        disk.sync_dir(parent)?;
    }
    disk.remove_all(&old)
}

/// Everything under `dir`, parents before children; symbolic links and
/// other special files are left out. At most `cap` bytes of file data.
pub fn read_tree(dir: &Path, cap: u64) -> std::io::Result<Vec<Item>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The real disk, until operation `fail_at`: that one fails, and with
    /// `crash` every later one does too (the machine stopped).
    struct Faulty {
        ops: usize,
        fail_at: usize,
        crash: bool,
    }

    impl Faulty {
        fn step(&mut self) -> std::io::Result<()> {
            let n = self.ops;
            self.ops += 1;
            if n == self.fail_at || (self.crash && n > self.fail_at) {
                Err(std::io::Error::other(format!("injected failure at op {n}")))
            } else {
                Ok(())
            }
        }
    }

    impl Disk for Faulty {
        fn create_dir(&mut self, p: &Path) -> std::io::Result<()> {
            self.step()?;
            RealDisk.create_dir(p)
        }
        fn write(&mut self, p: &Path, data: &[u8]) -> std::io::Result<()> {
            self.step()?;
            // A failed write may leave part of the file behind.
            RealDisk.write(p, data)
        }
        fn rename(&mut self, from: &Path, to: &Path) -> std::io::Result<()> {
            self.step()?;
            RealDisk.rename(from, to)
        }
        fn remove_all(&mut self, p: &Path) -> std::io::Result<()> {
            self.step()?;
            RealDisk.remove_all(p)
        }
        fn sync_dir(&mut self, p: &Path) -> std::io::Result<()> {
            self.step()?;
            RealDisk.sync_dir(p)
        }
    }

    fn f(p: &str, d: &str) -> Item {
        (p.to_owned(), Some(d.as_bytes().to_vec()))
    }

    fn d(p: &str) -> Item {
        (p.to_owned(), None)
    }

    fn sorted(mut v: Vec<Item>) -> Vec<Item> {
        v.sort();
        v
    }

    fn fresh(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("llmos-appdata-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root.join("app")
    }

    /// The tree before and after a run: files changed, removed, added; a
    /// file that becomes a directory and a directory that becomes a file.
    fn trees() -> (Vec<Item>, Vec<Item>) {
        let before = vec![
            d("a"),
            f("a/x", "1"),
            f("b", "2"),
            d("c"),
            f("c/k", "keep"),
            f("e", "old"),
        ];
        let after = vec![
            d("b"),
            f("b/y", "3"),
            d("c"),
            f("c/k", "keep"),
            f("c/z", "4"),
            f("a", "now a file"),
            f("e", "new"),
        ];
        (before, after)
    }

    /// A way to save: (directory, before, after, disk).
    type SaveFn = dyn Fn(&Path, &[Item], &[Item], &mut dyn Disk) -> std::io::Result<()>;

    /// Runs `save_fn` with a failure (or a crash) at every operation in
    /// turn, and checks that what a later load sees is `before` or
    /// `after`, never anything else. Returns the number of operations a
    /// save makes.
    fn whole_or_nothing(name: &str, save_fn: &SaveFn) -> Result<usize, String> {
        let (before, after) = trees();
        let mut total = None;
        for crash in [false, true] {
            for fail_at in 0..64 {
                let dir = fresh(&format!("{name}-{crash}-{fail_at}"));
                std::fs::create_dir(&dir).unwrap();
                save(&dir, &before, &mut RealDisk).map_err(|e| e.to_string())?;
                let mut disk = Faulty {
                    ops: 0,
                    fail_at,
                    crash,
                };
                let r = save_fn(&dir, &before, &after, &mut disk);
                recover(&dir, &mut RealDisk).map_err(|e| e.to_string())?;
                let seen = sorted(read_tree(&dir, 1 << 20).map_err(|e| e.to_string())?);
                let _ = std::fs::remove_dir_all(dir.parent().unwrap());
                if seen != sorted(before.clone()) && seen != sorted(after.clone()) {
                    return Err(format!(
                        "failure at op {fail_at} (crash: {crash}) left {seen:?}"
                    ));
                }
                if r.is_ok() {
                    if seen != sorted(after.clone()) {
                        return Err(format!("a save that succeeded left {seen:?}"));
                    }
                    total = Some(disk.ops);
                    break;
                }
            }
        }
        total.ok_or_else(|| "the save never succeeded".to_owned())
    }

    #[test]
    fn a_save_lands_whole_or_not_at_all_whatever_fails() {
        let ops = whole_or_nothing("new", &|dir, _, after, disk| save(dir, after, disk)).unwrap();
        assert!(ops > 8, "{ops}");
    }

    /// The order used before (issue 20): remove what is gone, then write
    /// the changes in place. The same faults lose data with it, which is
    /// what the test above would catch.
    fn in_place(
        dir: &Path,
        before: &[Item],
        after: &[Item],
        disk: &mut dyn Disk,
    ) -> std::io::Result<()> {
        let new: Vec<&str> = after.iter().map(|(p, _)| p.as_str()).collect();
        for (p, data) in before.iter().rev() {
            let changed_kind = after
                .iter()
                .find(|(q, _)| q == p)
                .is_some_and(|(_, e)| e.is_some() != data.is_some());
            if !new.contains(&p.as_str()) || changed_kind {
                disk.remove_all(&dir.join(p))
                    .or_else(|_| std::fs::remove_file(dir.join(p)))?;
            }
        }
        for (p, data) in after {
            let path = dir.join(p);
            match data {
                None if path.is_dir() => {}
                None => disk.create_dir(&path)?,
                Some(bytes) => {
                    let tmp = sibling(dir, "saving");
                    let _ = std::fs::remove_file(&tmp);
                    disk.write(&tmp, bytes)?;
                    disk.rename(&tmp, &path)?;
                }
            }
        }
        Ok(())
    }

    #[test]
    fn the_old_in_place_order_fails_the_same_check() {
        let e = whole_or_nothing("old", &in_place).unwrap_err();
        assert!(e.contains("left"), "{e}");
    }

    #[test]
    fn trees_round_trip_through_the_disk() {
        let dir = fresh("round");
        std::fs::create_dir(&dir).unwrap();
        let (one, two) = trees();
        save(&dir, &one, &mut RealDisk).unwrap();
        assert_eq!(sorted(read_tree(&dir, 100).unwrap()), sorted(one));
        save(&dir, &two, &mut RealDisk).unwrap();
        assert_eq!(sorted(read_tree(&dir, 100).unwrap()), sorted(two));
        assert!(read_tree(&dir, 1).is_err());
        // Nothing is left beside it.
        let left: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["app"]);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
