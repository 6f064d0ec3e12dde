//! Deterministic edge cases of [`RamFs`] that its own unit tests leave out:
//! rename rules, unlink while open, path resolution and its limits, and
//! capacity accounting. Expected values are Linux tmpfs behaviour, checked
//! on a real tmpfs.
//!
//! The tests at the end pin corner cases where ramfs once differed from
//! Linux (found by the model test in `model.rs`); each states the Linux
//! result.
//!
//! The cargo-fuzz corpus of the `ramfs` target is replayed here too (the
//! target's code is included from `fuzz/fuzz_targets/ramfs.rs`).

use kcore::errno::Errno;
use llmos_fs::ramfs::{Ino, MAX_SYMLINKS, NAME_MAX, PAGE_SIZE, PATH_MAX, ROOT, RamFs, mode};

#[path = "../../fuzz/fuzz_targets/ramfs.rs"]
mod fuzz_ramfs;

const PAGE: u64 = PAGE_SIZE as u64;

fn fs() -> RamFs {
    RamFs::new(1 << 20)
}

/// Creates `path` holding `data`.
fn file(f: &mut RamFs, path: &str, data: &[u8]) -> Ino {
    let ino = f.create(ROOT, path, 0o644, true, 0).expect("create");
    assert_eq!(f.write(ino, 0, data, 0), Ok(data.len()));
    ino
}

fn dir(f: &mut RamFs, path: &str) -> Ino {
    f.mkdir(ROOT, path, 0o755, 0).expect("mkdir")
}

/// Entry names of a directory, without `.` and `..`.
fn names(f: &RamFs, dir: Ino) -> Vec<String> {
    let list = f.readdir(dir, None).expect("readdir");
    assert_eq!(list[0].name, ".");
    assert_eq!(list[1].name, "..");
    list.into_iter().skip(2).map(|e| e.name).collect()
}

fn nlink(f: &RamFs, ino: Ino) -> u32 {
    f.stat(ino).expect("stat").nlink
}

fn contents(f: &mut RamFs, ino: Ino) -> Vec<u8> {
    let size = f.stat(ino).expect("stat").size;
    let mut buf = vec![0; usize::try_from(size).expect("small") + 1];
    let n = f.read(ino, 0, &mut buf, 0).expect("read");
    buf.truncate(n);
    buf
}

fn rename(f: &mut RamFs, old: &str, new: &str) -> Result<(), Errno> {
    f.rename(ROOT, old, ROOT, new, false, 0)
}

fn rename_noreplace(f: &mut RamFs, old: &str, new: &str) -> Result<(), Errno> {
    f.rename(ROOT, old, ROOT, new, true, 0)
}

// ---- rename ----

#[test]
fn rename_over_an_open_file_keeps_it_until_closed() {
    let mut f = fs();
    let a = file(&mut f, "a", b"new");
    let b = file(&mut f, "b", &[7; PAGE_SIZE + 1]);
    f.open(b).unwrap();
    assert_eq!(f.used(), 3 * PAGE);
    rename(&mut f, "a", "b").unwrap();
    assert_eq!(f.lookup(ROOT, "b", true), Ok(a));
    assert_eq!(names(&f, ROOT), ["b"]);
    assert_eq!(nlink(&f, b), 0, "the replaced file has no names");
    assert_eq!(contents(&mut f, b), [7; PAGE_SIZE + 1], "but is readable");
    assert_eq!(f.used(), 3 * PAGE, "and still holds its pages");
    f.close(b);
    assert_eq!(f.stat(b), Err(Errno::ENOENT));
    assert_eq!(f.used(), PAGE);
}

#[test]
fn rename_between_hard_links_of_one_inode_does_nothing() {
    let mut f = fs();
    let a = file(&mut f, "a", b"x");
    f.link(ROOT, "a", ROOT, "b", 0).unwrap();
    rename(&mut f, "a", "b").unwrap();
    assert_eq!(names(&f, ROOT), ["a", "b"], "both names stay (POSIX)");
    assert_eq!(nlink(&f, a), 2);
    rename(&mut f, "a", "a").unwrap();
    let d = dir(&mut f, "d");
    rename(&mut f, "d/", "d").unwrap();
    assert_eq!(f.lookup(ROOT, "d", true), Ok(d));
    assert_eq!(names(&f, ROOT), ["a", "b", "d"]);
    assert_eq!(nlink(&f, ROOT), 3);
}

#[test]
fn rename_directory_over_empty_directory_elsewhere() {
    let mut f = fs();
    let p = dir(&mut f, "p");
    let q = dir(&mut f, "q");
    let d = dir(&mut f, "p/d");
    let inner = file(&mut f, "p/d/f", b"f");
    let e = dir(&mut f, "q/e");
    f.open(e).unwrap();
    rename(&mut f, "p/d", "q/e/").unwrap();
    assert_eq!(f.lookup(ROOT, "q/e/f", true), Ok(inner));
    assert_eq!(f.lookup(ROOT, "q/e", true), Ok(d));
    assert_eq!(
        f.lookup(d, "..", true),
        Ok(q),
        "the moved directory's parent"
    );
    assert_eq!(f.readdir(d, None).unwrap()[1].ino, q, "and its .. entry");
    assert_eq!((nlink(&f, p), nlink(&f, q), nlink(&f, ROOT)), (2, 3, 4));
    assert_eq!(nlink(&f, e), 0, "the replaced directory is removed");
    assert_eq!(f.lookup(e, ".", true), Ok(e), "but alive while open");
    f.close(e);
    assert_eq!(f.stat(e), Err(Errno::ENOENT));
}

#[test]
fn rename_into_its_own_subtree_is_einval() {
    let mut f = fs();
    dir(&mut f, "a");
    dir(&mut f, "a/b");
    dir(&mut f, "a/b/c");
    f.symlink("a/b", ROOT, "l", 0).unwrap();
    for new in ["a/x", "a/b/c/x", "l/x", "a/b/c/../x"] {
        assert_eq!(rename(&mut f, "a", new), Err(Errno::EINVAL), "a -> {new}");
    }
    assert_eq!(rename(&mut f, "a/b", "a/b/c/x"), Err(Errno::EINVAL));
    assert_eq!(
        rename(&mut f, "a", "a/b"),
        Err(Errno::EINVAL),
        "over its own child"
    );
    assert_eq!(
        rename(&mut f, "a/b/c", "a"),
        Err(Errno::ENOTEMPTY),
        "over its ancestor"
    );
    assert_eq!(names(&f, ROOT), ["a", "l"], "nothing moved");
    rename(&mut f, "a/b/c", "a/c").unwrap();
    assert_eq!(nlink(&f, f.lookup(ROOT, "a", true).unwrap()), 4);
}

#[test]
fn rename_of_dot_or_dotdot_is_ebusy() {
    let mut f = fs();
    dir(&mut f, "a");
    dir(&mut f, "b");
    assert_eq!(rename(&mut f, "a/.", "z"), Err(Errno::EBUSY));
    assert_eq!(rename(&mut f, "a/..", "z"), Err(Errno::EBUSY));
    assert_eq!(rename(&mut f, "a", "b/.."), Err(Errno::EBUSY));
    assert_eq!(rename(&mut f, "a", "."), Err(Errno::EBUSY));
    assert_eq!(names(&f, ROOT), ["a", "b"]);
}

#[test]
fn rename_noreplace_refuses_any_existing_name() {
    let mut f = fs();
    let a = file(&mut f, "a", b"a");
    dir(&mut f, "d");
    f.symlink("nowhere", ROOT, "dangling", 0).unwrap();
    for target in ["d", "dangling", "d/"] {
        assert_eq!(
            rename_noreplace(&mut f, "a", target),
            Err(Errno::EEXIST),
            "{target}"
        );
    }
    rename_noreplace(&mut f, "a", "d/a").unwrap();
    assert_eq!(f.lookup(ROOT, "d/a", true), Ok(a));
    assert_eq!(names(&f, ROOT), ["d", "dangling"]);
}

#[test]
fn rename_over_a_symlink_replaces_the_link_not_its_target() {
    let mut f = fs();
    let a = file(&mut f, "a", b"a");
    let b = file(&mut f, "b", b"b");
    let d = dir(&mut f, "d");
    f.symlink("b", ROOT, "lb", 0).unwrap();
    f.symlink("d", ROOT, "ld", 0).unwrap();
    rename(&mut f, "a", "lb").unwrap();
    assert_eq!(f.lookup(ROOT, "lb", false), Ok(a));
    assert_eq!(f.lookup(ROOT, "b", true), Ok(b), "the target is untouched");
    assert_eq!(rename(&mut f, "d", "b"), Err(Errno::ENOTDIR));
    rename(&mut f, "b", "ld").unwrap();
    assert_eq!(
        f.lookup(ROOT, "ld", false),
        Ok(b),
        "a link to a directory is not a directory"
    );
    assert_eq!(f.lookup(ROOT, "d", true), Ok(d));
}

#[test]
fn rename_with_missing_or_bad_parents() {
    let mut f = fs();
    file(&mut f, "a", b"a");
    dir(&mut f, "d");
    assert_eq!(rename(&mut f, "missing/a", "z"), Err(Errno::ENOENT));
    assert_eq!(rename(&mut f, "a", "missing/z"), Err(Errno::ENOENT));
    assert_eq!(rename(&mut f, "a/x", "z"), Err(Errno::ENOTDIR));
    assert_eq!(rename(&mut f, "d", "a/z"), Err(Errno::ENOTDIR));
    assert_eq!(rename(&mut f, "d/missing", "z"), Err(Errno::ENOENT));
    assert_eq!(names(&f, ROOT), ["a", "d"]);
}

// ---- unlink while open ----

#[test]
fn unlinked_file_lives_until_the_last_close() {
    let mut f = fs();
    let ino = file(&mut f, "f", &[1; PAGE_SIZE]);
    f.open(ino).unwrap();
    f.open(ino).unwrap();
    f.unlink(ROOT, "f", 0).unwrap();
    assert_eq!(f.lookup(ROOT, "f", true), Err(Errno::ENOENT));
    assert!(names(&f, ROOT).is_empty());
    assert_eq!(nlink(&f, ino), 0);
    // Still a working file: it can grow (and is charged for it).
    assert_eq!(f.write(ino, PAGE, b"more", 0), Ok(4));
    assert_eq!(f.used(), 2 * PAGE);
    assert_eq!(contents(&mut f, ino).len(), PAGE_SIZE + 4);
    let other = file(&mut f, "f", b"new");
    assert_ne!(other, ino, "a new file under the old name is a new inode");
    f.close(ino);
    assert_eq!(f.used(), 3 * PAGE, "one handle is still open");
    assert_eq!(contents(&mut f, ino)[..4], [1; 4]);
    f.close(ino);
    assert_eq!(f.stat(ino), Err(Errno::ENOENT));
    assert_eq!(f.used(), PAGE, "freed at the last close");
    assert_eq!(contents(&mut f, other), b"new");
}

#[test]
fn unlinked_open_file_can_be_truncated() {
    let mut f = fs();
    let ino = file(&mut f, "f", &[1; 3 * PAGE_SIZE]);
    f.open(ino).unwrap();
    f.unlink(ROOT, "f", 0).unwrap();
    f.truncate(ino, 1, 0).unwrap();
    assert_eq!(
        f.used(),
        PAGE,
        "truncation frees pages without waiting for close"
    );
    f.close(ino);
    assert_eq!(f.used(), 0);
}

#[test]
fn hard_links_keep_the_data_alive() {
    let mut f = fs();
    dir(&mut f, "d");
    let ino = file(&mut f, "a", &[2; 10]);
    f.link(ROOT, "a", ROOT, "d/b", 0).unwrap();
    f.unlink(ROOT, "a", 0).unwrap();
    assert_eq!((nlink(&f, ino), f.used()), (1, PAGE));
    f.open(ino).unwrap();
    f.unlink(ROOT, "d/b", 0).unwrap();
    assert_eq!((nlink(&f, ino), f.used()), (0, PAGE));
    f.close(ino);
    assert_eq!(f.used(), 0);
}

#[test]
fn removed_open_directory_stays_until_closed() {
    let mut f = fs();
    let p = dir(&mut f, "p");
    let d = dir(&mut f, "p/d");
    f.open(d).unwrap();
    f.rmdir(ROOT, "p/d", 0).unwrap();
    assert_eq!(f.lookup(ROOT, "p/d", true), Err(Errno::ENOENT));
    assert_eq!(nlink(&f, d), 0);
    assert_eq!(nlink(&f, p), 2);
    assert_eq!(f.lookup(d, ".", true), Ok(d));
    assert_eq!(
        f.lookup(d, "..", true),
        Ok(p),
        ".. still leads to the old parent"
    );
    assert_eq!(f.lookup(d, "x", true), Err(Errno::ENOENT));
    assert_eq!(f.rmdir(d, ".", 0), Err(Errno::EINVAL));
    f.close(d);
    assert_eq!(f.stat(d), Err(Errno::ENOENT));
}

// ---- path resolution ----

#[test]
fn dot_and_dotdot_stop_at_the_root() {
    let mut f = fs();
    let x = dir(&mut f, "x");
    for path in [
        "/",
        "/..",
        "/../..",
        "..",
        "../../.",
        "/./././",
        ".",
        "x/..",
        "x/../../..",
    ] {
        assert_eq!(f.lookup(ROOT, path, true), Ok(ROOT), "{path}");
    }
    assert_eq!(f.lookup(ROOT, "../../x", true), Ok(x));
    assert_eq!(f.lookup(x, "../../../x/.", true), Ok(x));
}

#[test]
fn repeated_slashes_are_one() {
    let mut f = fs();
    dir(&mut f, "x");
    let y = dir(&mut f, "x/y");
    for path in ["//x//y//", "x////y", "///x/y", "x/y//"] {
        assert_eq!(f.lookup(ROOT, path, true), Ok(y), "{path}");
    }
    assert_eq!(f.lookup(ROOT, "///", true), Ok(ROOT));
    let g = f.mkdir(ROOT, "x//g//", 0o755, 0).unwrap();
    assert_eq!(f.lookup(ROOT, "/x/g", true), Ok(g));
}

#[test]
fn trailing_slash_demands_a_directory() {
    let mut f = fs();
    let d = dir(&mut f, "d");
    let file_ino = file(&mut f, "f", b"");
    let ld = f.symlink("d", ROOT, "ld", 0).unwrap();
    f.symlink("f", ROOT, "lf", 0).unwrap();
    f.symlink("nowhere", ROOT, "dangling", 0).unwrap();
    for follow in [true, false] {
        assert_eq!(f.lookup(ROOT, "f/", follow), Err(Errno::ENOTDIR));
        assert_eq!(f.lookup(ROOT, "lf/", follow), Err(Errno::ENOTDIR));
        assert_eq!(
            f.lookup(ROOT, "ld/", follow),
            Ok(d),
            "a trailing slash follows"
        );
        assert_eq!(f.lookup(ROOT, "dangling/", follow), Err(Errno::ENOENT));
        assert_eq!(f.lookup(ROOT, "f/.", follow), Err(Errno::ENOTDIR));
        assert_eq!(f.lookup(ROOT, "f/..", follow), Err(Errno::ENOTDIR));
    }
    assert_eq!(f.lookup(ROOT, "ld", false), Ok(ld));
    assert_eq!(f.lookup(ROOT, "lf", true), Ok(file_ino));
    assert_eq!(f.readlink(ROOT, "lf/"), Err(Errno::ENOTDIR));
    assert_eq!(
        f.readlink(ROOT, "ld/"),
        Err(Errno::EINVAL),
        "followed, so not a link"
    );
    assert_eq!(f.create(ROOT, "new/", 0o644, false, 0), Err(Errno::EISDIR));
    assert_eq!(f.rmdir(ROOT, "f/", 0), Err(Errno::ENOTDIR));
    assert_eq!(
        f.rmdir(ROOT, "ld/", 0),
        Err(Errno::ENOTDIR),
        "rmdir does not follow"
    );
    f.rmdir(ROOT, "d//", 0).unwrap();
}

#[test]
fn symlink_loops_are_eloop() {
    let mut f = fs();
    dir(&mut f, "x");
    let s = f.symlink("s", ROOT, "s", 0).unwrap();
    f.symlink("../x/loop", ROOT, "x/loop", 0).unwrap();
    assert_eq!(f.lookup(ROOT, "s", true), Err(Errno::ELOOP));
    assert_eq!(f.lookup(ROOT, "s", false), Ok(s), "not followed at the end");
    assert_eq!(
        f.lookup(ROOT, "s/", false),
        Err(Errno::ELOOP),
        "a trailing slash follows"
    );
    assert_eq!(
        f.lookup(ROOT, "s/x", false),
        Err(Errno::ELOOP),
        "always followed midway"
    );
    assert_eq!(f.lookup(ROOT, "x/loop/y", true), Err(Errno::ELOOP));
    assert_eq!(f.readlink(ROOT, "s"), Ok("s"));
    assert_eq!(f.create(ROOT, "s", 0o644, false, 0), Err(Errno::ELOOP));
    assert_eq!(f.create(ROOT, "s", 0o644, true, 0), Err(Errno::EEXIST));
    assert_eq!(f.mkdir(ROOT, "s/d", 0o755, 0), Err(Errno::ELOOP));
    assert_eq!(f.unlink(ROOT, "s", 0), Ok(()), "the link itself can go");
}

#[test]
fn forty_symlinks_resolve_and_forty_one_do_not() {
    let mut f = fs();
    let target = file(&mut f, "f", b"");
    // l1 -> l2 -> ... -> l41 -> f
    for i in 1..=MAX_SYMLINKS + 1 {
        let next = if i == MAX_SYMLINKS + 1 {
            "f".to_string()
        } else {
            format!("l{}", i + 1)
        };
        f.symlink(&next, ROOT, &format!("l{i}"), 0).unwrap();
    }
    assert_eq!(f.lookup(ROOT, "l2", true), Ok(target), "40 links");
    assert_eq!(f.lookup(ROOT, "l1", true), Err(Errno::ELOOP), "41 links");
    assert_eq!(f.lookup(ROOT, "l1", false).map(|_| ()), Ok(()));
}

#[test]
fn relative_symlinks_resolve_from_their_own_directory() {
    let mut f = fs();
    dir(&mut f, "x");
    let y = dir(&mut f, "x/y");
    let top = file(&mut f, "a", b"");
    f.symlink("../../a", ROOT, "x/y/up", 0).unwrap();
    f.symlink("/x/y", ROOT, "x/abs", 0).unwrap();
    f.symlink(".", ROOT, "x/y/self", 0).unwrap();
    assert_eq!(f.lookup(ROOT, "x/y/up", true), Ok(top));
    assert_eq!(f.lookup(y, "up", true), Ok(top));
    assert_eq!(f.lookup(ROOT, "x/abs/self/self/up", true), Ok(top));
    assert_eq!(
        f.lookup(ROOT, "x/abs/..", true),
        Ok(f.lookup(ROOT, "x", true).unwrap()),
        ".. of the target"
    );
}

#[test]
fn names_longer_than_name_max_are_refused() {
    let mut f = fs();
    let ok = "n".repeat(NAME_MAX);
    let long = "n".repeat(NAME_MAX + 1);
    let ino = f.create(ROOT, &ok, 0o644, true, 0).unwrap();
    assert_eq!(f.lookup(ROOT, &ok, true), Ok(ino));
    f.link(ROOT, &ok, ROOT, "short", 0).unwrap();
    dir(&mut f, "d");
    assert_eq!(
        f.create(ROOT, &long, 0o644, false, 0),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(
        f.mkdir(ROOT, &format!("d/{long}"), 0o755, 0),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(f.symlink("short", ROOT, &long, 0), Err(Errno::ENAMETOOLONG));
    assert_eq!(
        f.link(ROOT, "short", ROOT, &long, 0),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(rename(&mut f, "short", &long), Err(Errno::ENAMETOOLONG));
    assert_eq!(f.unlink(ROOT, &long, 0), Err(Errno::ENAMETOOLONG));
    assert_eq!(f.rmdir(ROOT, &long, 0), Err(Errno::ENAMETOOLONG));
    assert_eq!(
        f.lookup(ROOT, &format!("{long}/x"), true),
        Err(Errno::ENAMETOOLONG),
        "midway too"
    );
    assert_eq!(names(&f, ROOT), ["d", ok.as_str(), "short"]);
}

#[test]
fn paths_longer_than_path_max_are_refused() {
    let mut f = fs();
    dir(&mut f, "x");
    let long = "x/".repeat(PATH_MAX / 2) + "x";
    assert!(long.len() > PATH_MAX);
    assert_eq!(f.lookup(ROOT, &long, true), Err(Errno::ENAMETOOLONG));
    assert_eq!(
        f.create(ROOT, &long, 0o644, false, 0),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(f.mkdir(ROOT, &long, 0o755, 0), Err(Errno::ENAMETOOLONG));
    assert_eq!(f.unlink(ROOT, &long, 0), Err(Errno::ENAMETOOLONG));
    assert_eq!(rename(&mut f, "x", &long), Err(Errno::ENAMETOOLONG));
    assert_eq!(rename(&mut f, &long, "y"), Err(Errno::ENAMETOOLONG));
    assert_eq!(
        f.symlink(&long, ROOT, "l", 0),
        Err(Errno::ENAMETOOLONG),
        "target"
    );
    // Just under the limit, `./` repeated still resolves.
    let fine = "./".repeat((PATH_MAX - 2) / 2) + "x";
    assert!(fine.len() < PATH_MAX);
    assert_eq!(f.lookup(ROOT, &fine, true), f.lookup(ROOT, "x", true));
}

#[test]
fn empty_paths_and_non_directory_bases() {
    let mut f = fs();
    let file_ino = file(&mut f, "f", b"");
    assert_eq!(f.create(ROOT, "", 0o644, false, 0), Err(Errno::ENOENT));
    assert_eq!(f.mkdir(ROOT, "", 0o755, 0), Err(Errno::ENOENT));
    assert_eq!(f.unlink(ROOT, "", 0), Err(Errno::ENOENT));
    assert_eq!(f.rmdir(ROOT, "", 0), Err(Errno::ENOENT));
    assert_eq!(rename(&mut f, "", "g"), Err(Errno::ENOENT));
    assert_eq!(rename(&mut f, "f", ""), Err(Errno::ENOENT));
    assert_eq!(f.symlink("", ROOT, "l", 0), Err(Errno::ENOENT));
    assert_eq!(f.symlink("f", ROOT, "", 0), Err(Errno::ENOENT));
    assert_eq!(
        f.create(file_ino, "x", 0o644, false, 0),
        Err(Errno::ENOTDIR)
    );
    assert_eq!(f.mkdir(file_ino, "x", 0o755, 0), Err(Errno::ENOTDIR));
    assert_eq!(f.lookup(file_ino, ".", true), Err(Errno::ENOTDIR));
    assert_eq!(
        f.lookup(file_ino, "/f", true),
        Ok(file_ino),
        "absolute paths ignore the base"
    );
    assert_eq!(names(&f, ROOT), ["f"]);
}

// ---- capacity ----

#[test]
fn enospc_writes_nothing() {
    let mut f = RamFs::new(2 * PAGE);
    let a = file(&mut f, "a", b"first page");
    // Needs two new pages, only one is left: all or nothing.
    assert_eq!(
        f.write(a, PAGE - 1, &[9; PAGE_SIZE + 2], 0),
        Err(Errno::ENOSPC)
    );
    assert_eq!(f.stat(a).unwrap().size, 10, "size unchanged");
    assert_eq!(contents(&mut f, a), b"first page");
    assert_eq!(f.used(), PAGE);
    let b = f.create(ROOT, "b", 0o644, true, 0).unwrap();
    assert_eq!(
        f.write(b, 0, &[1; PAGE_SIZE], 0),
        Ok(PAGE_SIZE),
        "exactly full"
    );
    assert_eq!(f.used(), f.capacity());
    assert_eq!(f.write(b, PAGE, &[1], 0), Err(Errno::ENOSPC));
    assert_eq!(
        f.write(a, 100, &[2; 100], 0),
        Ok(100),
        "allocated pages need no space"
    );
    let c = f.create(ROOT, "c", 0o644, true, 0).unwrap();
    assert_eq!(f.write(c, 0, &[], 0), Ok(0), "empty files need no space");
    assert_eq!(f.truncate(c, 10 * PAGE, 0), Ok(()), "nor holes");
    assert_eq!(f.write(c, 0, b"x", 0), Err(Errno::ENOSPC));
}

#[test]
fn space_comes_back_from_truncate_unlink_rename_and_close() {
    let mut f = RamFs::new(4 * PAGE);
    let a = file(&mut f, "a", &[1; 2 * PAGE_SIZE]);
    let b = file(&mut f, "b", &[1; 2 * PAGE_SIZE]);
    let c = f.create(ROOT, "c", 0o644, true, 0).unwrap();
    assert_eq!(f.write(c, 0, b"c", 0), Err(Errno::ENOSPC));
    f.truncate(a, PAGE + 1, 0).unwrap();
    assert_eq!(f.used(), 4 * PAGE, "the page holding the new end stays");
    f.truncate(a, PAGE, 0).unwrap();
    assert_eq!(f.used(), 3 * PAGE);
    assert_eq!(f.write(c, 0, b"c", 0), Ok(1));
    assert_eq!(f.write(c, PAGE, b"c", 0), Err(Errno::ENOSPC));
    rename(&mut f, "c", "b").unwrap();
    assert_eq!(f.used(), 2 * PAGE, "the replaced file's pages are freed");
    f.open(a).unwrap();
    f.unlink(ROOT, "a", 0).unwrap();
    assert_eq!(f.used(), 2 * PAGE, "not while it is open");
    f.close(a);
    assert_eq!(f.used(), PAGE);
    assert_eq!(f.stat(b), Err(Errno::ENOENT));
    f.unlink(ROOT, "b", 0).unwrap();
    assert_eq!(f.used(), 0);
}

#[test]
fn copying_a_borrowed_file_needs_space() {
    static BYTES: [u8; PAGE_SIZE + 1] = [3; PAGE_SIZE + 1];
    let mut f = RamFs::new(2 * PAGE);
    let ino = f.add_borrowed(ROOT, "initrd", &BYTES, 0o644, 0).unwrap();
    let other = file(&mut f, "other", b"o");
    assert_eq!(f.used(), PAGE, "borrowed bytes cost nothing");
    assert_eq!(
        f.write(ino, 0, b"w", 0),
        Err(Errno::ENOSPC),
        "the copy needs two pages"
    );
    assert!(f.borrowed_bytes(ino).is_some(), "still borrowed");
    assert_eq!(contents(&mut f, ino), BYTES);
    f.unlink(ROOT, "other", 0).unwrap();
    assert_eq!(f.stat(other), Err(Errno::ENOENT));
    assert_eq!(f.write(ino, 0, b"w", 0), Ok(1));
    assert!(f.borrowed_bytes(ino).is_none());
    assert_eq!(f.used(), 2 * PAGE);
    assert_eq!(contents(&mut f, ino)[..2], [b'w', 3]);
    assert_eq!(BYTES[0], 3, "the borrowed source is untouched");
    f.unlink(ROOT, "initrd", 0).unwrap();
    assert_eq!(f.used(), 0);
    // A borrowed file that was never written frees nothing.
    let mut g = RamFs::new(PAGE);
    g.add_borrowed(ROOT, "b", &BYTES, 0o644, 0).unwrap();
    g.unlink(ROOT, "b", 0).unwrap();
    assert_eq!(g.used(), 0);
}

#[test]
fn empty_write_past_the_end_changes_nothing() {
    let mut f = RamFs::new(PAGE);
    let ino = file(&mut f, "f", b"abc");
    assert_eq!(f.write(ino, 100, &[], 0), Ok(0));
    assert_eq!(f.write(ino, 10 * PAGE, &[], 0), Ok(0));
    assert_eq!(f.stat(ino).unwrap().size, 3);
    assert_eq!(f.used(), PAGE);
}

#[test]
fn directories_and_symlinks_take_no_capacity() {
    let mut f = RamFs::new(0);
    let d = dir(&mut f, "d");
    f.symlink(&"t".repeat(1000), ROOT, "d/l", 0).unwrap();
    f.create(d, "empty", 0o644, true, 0).unwrap();
    assert_eq!(f.used(), 0);
    assert_eq!(
        f.stat(f.lookup(ROOT, "d/l", false).unwrap()).unwrap().size,
        1000
    );
    assert_eq!(f.stat(d).unwrap().mode & 0o170000, mode::S_IFDIR);
}

// ---- the fuzz corpus ----

/// Replays the cargo-fuzz corpus (`fuzz/corpus/ramfs`): every input the
/// fuzzer kept stays a regression test.
#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/ramfs");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("fuzz/corpus/ramfs exists") {
        let data = std::fs::read(entry.expect("entry").path()).expect("readable");
        fuzz_ramfs::run(&data);
        n += 1;
    }
    assert!(n >= 4, "corpus has only {n} files");
}

// ---- corner cases ramfs once got wrong (Linux results) ----

#[test]
fn unlink_with_a_trailing_slash_on_a_file_is_enotdir() {
    let mut f = fs();
    file(&mut f, "f", b"keep me");
    f.symlink("f", ROOT, "l", 0).unwrap();
    assert_eq!(f.unlink(ROOT, "f/", 0), Err(Errno::ENOTDIR));
    assert_eq!(f.unlink(ROOT, "l/", 0), Err(Errno::ENOTDIR));
    assert_eq!(names(&f, ROOT), ["f", "l"]);
}

#[test]
fn unlink_of_dot_or_dotdot_is_eisdir() {
    let mut f = fs();
    dir(&mut f, "d");
    for path in [".", "..", "d/.", "d/.."] {
        assert_eq!(f.unlink(ROOT, path, 0), Err(Errno::EISDIR), "{path}");
    }
}

#[test]
fn slash_alone_in_unlink_rmdir_and_rename() {
    let mut f = fs();
    assert_eq!(f.unlink(ROOT, "/", 0), Err(Errno::EISDIR));
    assert_eq!(f.rmdir(ROOT, "/", 0), Err(Errno::EBUSY));
    assert_eq!(rename(&mut f, "/", "x"), Err(Errno::EBUSY));
    assert_eq!(
        rename(&mut f, "/", "missing/x"),
        Err(Errno::ENOENT),
        "both parents resolve first"
    );
}

#[test]
fn rename_to_itself_with_noreplace_is_eexist() {
    let mut f = fs();
    file(&mut f, "a", b"");
    f.link(ROOT, "a", ROOT, "b", 0).unwrap();
    assert_eq!(rename_noreplace(&mut f, "a", "a"), Err(Errno::EEXIST));
    assert_eq!(rename_noreplace(&mut f, "a", "b"), Err(Errno::EEXIST));
}

#[test]
fn rename_with_a_trailing_slash_on_a_file_is_enotdir() {
    let mut f = fs();
    file(&mut f, "f", b"");
    dir(&mut f, "d");
    f.symlink("d", ROOT, "ld", 0).unwrap();
    assert_eq!(rename(&mut f, "f/", "g"), Err(Errno::ENOTDIR));
    assert_eq!(rename(&mut f, "f", "g/"), Err(Errno::ENOTDIR));
    assert_eq!(rename(&mut f, "f", "d/"), Err(Errno::ENOTDIR), "not EISDIR");
    assert_eq!(
        rename(&mut f, "ld/", "g"),
        Err(Errno::ENOTDIR),
        "the link is not a directory"
    );
    assert_eq!(names(&f, ROOT), ["d", "f", "ld"]);
}

#[test]
fn rename_onto_dot_with_noreplace_is_eexist() {
    let mut f = fs();
    file(&mut f, "f", b"");
    dir(&mut f, "d");
    assert_eq!(rename_noreplace(&mut f, "f", "d/."), Err(Errno::EEXIST));
    assert_eq!(rename_noreplace(&mut f, "f", "d/.."), Err(Errno::EEXIST));
}

#[test]
fn rename_errno_precedence() {
    let mut f = fs();
    dir(&mut f, "p");
    dir(&mut f, "p/q");
    file(&mut f, "p/q/g", b"");
    assert_eq!(
        rename_noreplace(&mut f, "p", "p/q"),
        Err(Errno::EEXIST),
        "not EINVAL"
    );
    assert_eq!(
        rename(&mut f, "p/q/g", "p"),
        Err(Errno::ENOTEMPTY),
        "over an ancestor, not EISDIR"
    );
}

#[test]
fn link_to_dot_is_eexist_and_leaves_the_directory_alone() {
    let mut f = fs();
    let ino = file(&mut f, "f", b"");
    let d = dir(&mut f, "d");
    assert_eq!(f.link(ROOT, "f", ROOT, "d/.", 0), Err(Errno::EEXIST));
    assert_eq!(f.link(ROOT, "f", ROOT, "d/..", 0), Err(Errno::EEXIST));
    assert!(names(&f, d).is_empty(), "{:?}", f.readdir(d, None));
    assert_eq!(nlink(&f, ino), 1);
    f.rmdir(ROOT, "d", 0).unwrap();
}

#[test]
fn link_to_a_name_with_a_trailing_slash_is_enoent() {
    let mut f = fs();
    file(&mut f, "f", b"");
    assert_eq!(f.link(ROOT, "f", ROOT, "g/", 0), Err(Errno::ENOENT));
    assert_eq!(names(&f, ROOT), ["f"]);
}

#[test]
fn link_of_a_directory_reports_the_new_name_first() {
    let mut f = fs();
    dir(&mut f, "d");
    file(&mut f, "f", b"");
    assert_eq!(f.link(ROOT, "d", ROOT, "f", 0), Err(Errno::EEXIST));
    assert_eq!(f.link(ROOT, "d", ROOT, "missing/x", 0), Err(Errno::ENOENT));
}

#[test]
fn symlink_or_mknod_to_a_name_with_a_trailing_slash_is_enoent() {
    let mut f = fs();
    assert_eq!(f.symlink("t", ROOT, "g/", 0), Err(Errno::ENOENT));
    assert_eq!(f.mknod(ROOT, "h/", (1, 3), 0o666, 0), Err(Errno::ENOENT));
    assert!(names(&f, ROOT).is_empty());
}

#[test]
fn mknod_named_dot_is_eexist() {
    let mut f = fs();
    let d = dir(&mut f, "d");
    assert_eq!(f.mknod(ROOT, "d/.", (1, 3), 0o666, 0), Err(Errno::EEXIST));
    assert!(names(&f, d).is_empty());
}

#[test]
fn create_with_a_trailing_slash_is_eisdir() {
    let mut f = fs();
    file(&mut f, "f", b"");
    dir(&mut f, "d");
    assert_eq!(
        f.create(ROOT, "f/", 0o644, false, 0),
        Err(Errno::EISDIR),
        "not ENOTDIR"
    );
    assert_eq!(f.create(ROOT, "f/", 0o644, true, 0), Err(Errno::EISDIR));
    assert_eq!(
        f.create(ROOT, "d/", 0o644, true, 0),
        Err(Errno::EISDIR),
        "not EEXIST"
    );
}

#[test]
fn create_through_a_dangling_symlink_creates_the_target() {
    let mut f = fs();
    dir(&mut f, "d");
    f.symlink("d/target", ROOT, "l", 0).unwrap();
    f.symlink("missing/target", ROOT, "m", 0).unwrap();
    let ino = f
        .create(ROOT, "l", 0o644, false, 0)
        .expect("creates d/target");
    assert_eq!(f.lookup(ROOT, "d/target", true), Ok(ino));
    assert_eq!(f.create(ROOT, "m", 0o644, false, 0), Err(Errno::ENOENT));
}

#[test]
fn rmdir_of_dot_in_a_bad_directory_reports_the_directory() {
    let mut f = fs();
    file(&mut f, "f", b"");
    assert_eq!(f.rmdir(ROOT, "missing/.", 0), Err(Errno::ENOENT));
    assert_eq!(f.rmdir(ROOT, "missing/..", 0), Err(Errno::ENOENT));
    assert_eq!(f.rmdir(ROOT, "f/.", 0), Err(Errno::ENOTDIR));
}

#[test]
fn creating_in_a_removed_directory_is_enoent() {
    let mut f = fs();
    file(&mut f, "f", b"");
    let d = dir(&mut f, "d");
    f.open(d).unwrap();
    f.rmdir(ROOT, "d", 0).unwrap();
    let created = f.create(d, "x", 0o644, false, 0);
    if let Ok(x) = created {
        f.write(x, 0, b"leaked", 0).unwrap();
        f.close(d);
        assert_eq!(f.used(), PAGE, "the file in the freed directory leaked");
        assert!(f.stat(x).is_ok(), "and so did its inode");
    }
    assert_eq!(created, Err(Errno::ENOENT));
    assert_eq!(f.mkdir(d, "x", 0o755, 0), Err(Errno::ENOENT));
    assert_eq!(f.symlink("t", d, "x", 0), Err(Errno::ENOENT));
    assert_eq!(f.link(ROOT, "f", d, "x", 0), Err(Errno::ENOENT));
    assert_eq!(f.rename(ROOT, "f", d, "x", false, 0), Err(Errno::ENOENT));
}

#[test]
fn dotdot_of_a_removed_directory_outlives_its_parent() {
    let mut f = fs();
    dir(&mut f, "p");
    let d = dir(&mut f, "p/d");
    f.open(d).unwrap();
    f.rmdir(ROOT, "p/d", 0).unwrap();
    f.rmdir(ROOT, "p", 0).unwrap();
    let parent = f
        .lookup(d, "..", true)
        .expect("Linux keeps the dead parent");
    assert_eq!(f.stat(parent).map(|s| s.nlink), Ok(0));
}

#[test]
fn listing_a_removed_directory_is_enoent() {
    let mut f = fs();
    let d = dir(&mut f, "d");
    f.open(d).unwrap();
    f.rmdir(ROOT, "d", 0).unwrap();
    assert_eq!(f.readdir(d, None).map(|l| l.len()), Err(Errno::ENOENT));
}

#[test]
fn paths_of_exactly_path_max_bytes_are_too_long() {
    let mut f = fs();
    let path = "/".repeat(PATH_MAX);
    assert_eq!(f.lookup(ROOT, &path, true), Err(Errno::ENAMETOOLONG));
    assert_eq!(
        f.symlink(&"t".repeat(PATH_MAX), ROOT, "l", 0),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(
        f.lookup(ROOT, &path[1..], true),
        Ok(ROOT),
        "4095 bytes are fine"
    );
}
