//! std::fs on llmos's RAM filesystem: reads a file from the initrd, then
//! creates, writes, appends, seeks, lists and removes files and
//! directories in /tmp, checking every result.
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};

fn main() {
    let src = fs::read("/data/hello.c").expect("reading /data/hello.c");
    let sum = llmos_userland::fnv1a(&src);
    println!("/data/hello.c: {} bytes, fnv1a {sum:016x}", src.len());
    let meta = fs::metadata("/data/hello.c").unwrap();
    println!(
        "metadata: len {} file {} dir {}",
        meta.len(),
        meta.is_file(),
        meta.is_dir()
    );

    fs::create_dir("/tmp/work").unwrap();
    fs::write("/tmp/work/a.txt", b"hello").unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open("/tmp/work/a.txt")
        .unwrap();
    f.write_all(b", world").unwrap();
    drop(f);
    println!(
        "a.txt: {:?}",
        fs::read_to_string("/tmp/work/a.txt").unwrap()
    );
    let mut f = fs::File::open("/tmp/work/a.txt").unwrap();
    f.seek(SeekFrom::Start(7)).unwrap();
    let mut rest = String::new();
    f.read_to_string(&mut rest).unwrap();
    println!("after seeking to 7: {rest:?}");
    for name in ["c", "b"] {
        fs::write(format!("/tmp/work/{name}"), name).unwrap();
    }
    let mut names: Vec<String> = fs::read_dir("/tmp/work")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    println!("listing: {names:?}");
    println!(
        "create_dir again: {:?}",
        fs::create_dir("/tmp/work").map_err(|e| e.kind())
    );
    fs::rename("/tmp/work/c", "/tmp/work/d").unwrap();
    fs::hard_link("/tmp/work/d", "/tmp/work/c").unwrap();
    std::os::unix::fs::symlink("d", "/tmp/work/link").unwrap();
    println!("readlink: {:?}", fs::read_link("/tmp/work/link").unwrap());
    println!(
        "through the link: {:?}",
        fs::read_to_string("/tmp/work/link").unwrap()
    );
    let f = fs::OpenOptions::new()
        .write(true)
        .open("/tmp/work/d")
        .unwrap();
    f.set_len(0).unwrap();
    f.sync_all().unwrap();
    println!(
        "hard link sees the truncation: {}",
        fs::metadata("/tmp/work/c").unwrap().len()
    );
    let mut perms = fs::metadata("/tmp/work/d").unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    fs::set_permissions("/tmp/work/d", perms).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata("/tmp/work/d").unwrap().permissions(),
    );
    println!("mode: {:o}", mode & 0o777);
    for n in ["d", "link"] {
        fs::remove_file(format!("/tmp/work/{n}")).unwrap();
    }
    println!(
        "remove non-empty dir: {}",
        fs::remove_dir("/tmp/work").is_err()
    );
    for n in ["a.txt", "b", "c"] {
        fs::remove_file(format!("/tmp/work/{n}")).unwrap();
    }
    fs::remove_dir("/tmp/work").unwrap();
    println!(
        "after cleanup: {:?}",
        fs::metadata("/tmp/work").map_err(|e| e.kind()).map(|_| ())
    );
    let mut zero = [1u8; 8];
    fs::File::open("/dev/zero")
        .unwrap()
        .read_exact(&mut zero)
        .unwrap();
    println!("/dev/zero: {zero:?}");
    println!("files ok");
}
