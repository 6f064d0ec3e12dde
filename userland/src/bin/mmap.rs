//! File-backed mmap: maps a large file the way llama.cpp maps a model
//! (read-only, MAP_SHARED), checksums it through the mapping and through
//! read(2), then checks copy-on-write of private mappings, shared mappings
//! of a RAM file in both directions, unlink while mapped, /dev/zero, and
//! the errors for bad requests.
//!
//! Usage: `mmap FILE` (FILE is expected in the initrd).
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;

use llmos_userland::{fnv1a, syscall6};

const MMAP: u64 = 9;
const MUNMAP: u64 = 11;
const MPROTECT: u64 = 10;
const MSYNC: u64 = 26;
const PREAD: u64 = 17;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const MAP_SHARED: u64 = 1;
const MAP_PRIVATE: u64 = 2;

fn mmap(len: usize, prot: u64, flags: u64, fd: i32, off: u64) -> Result<*mut u8, i64> {
    let r = syscall6(MMAP, [0, len as u64, prot, flags, fd as u64, off]);
    if r < 0 { Err(r) } else { Ok(r as *mut u8) }
}

/// `FilePmdMapped` from /proc/meminfo (0 where the line is missing).
fn file_pmd_kb() -> u64 {
    llmos_userland::meminfo_kb("FilePmdMapped").unwrap_or(0)
}

fn munmap(p: *mut u8, len: usize) {
    assert_eq!(syscall6(MUNMAP, [p as u64, len as u64, 0, 0, 0, 0]), 0);
}

/// The bytes of a live mapping.
fn view<'a>(p: *mut u8, len: usize) -> &'a mut [u8] {
    // SAFETY: `p` is a mapping of at least `len` bytes this program just
    // created and does not unmap while the slice is in use.
    unsafe { std::slice::from_raw_parts_mut(p, len) }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: mmap FILE");
    let f = fs::File::open(&path).expect("opening the file");
    let len = f.metadata().unwrap().len() as usize;
    let data = fs::read(&path).unwrap();
    let by_read = fnv1a(&data);
    println!("{path}: {len} bytes, read(2) fnv1a {by_read:016x}");

    // Like llama.cpp's loader.
    let p = mmap(len, PROT_READ, MAP_SHARED, f.as_raw_fd(), 0).expect("mmap");
    println!("shared mapping fnv1a {:016x}", fnv1a(view(p, len)));
    let maps = fs::read_to_string("/proc/self/maps").unwrap();
    println!(
        "/proc/self/maps names it: {}",
        maps.lines()
            .any(|l| l.ends_with(&path) && l.contains(" r--s "))
    );
    // The kernel maps whole 2 MiB runs of initrd data with 2 MiB pages.
    let pmd = file_pmd_kb();
    println!("2 MiB pages while mapped: {pmd} kB");
    // Unmapping one page inside a 2 MiB page splits it; the rest must
    // still read the file's bytes.
    let hole = 3 * 1024 * 1024 + 4096;
    if len > hole + 8192 {
        munmap(p.wrapping_add(hole), 4096);
        let m = view(p, len);
        let intact = m[..hole] == data[..hole] && m[hole + 4096..] == data[hole + 4096..];
        println!(
            "after a 4 KiB munmap inside it: data intact {intact}, 2 MiB pages {} kB fewer",
            pmd - file_pmd_kb()
        );
        munmap(p, hole);
        munmap(p.wrapping_add(hole + 4096), len - hole - 4096);
    } else {
        munmap(p, len);
    }
    println!("after munmap: 2 MiB pages {} kB", file_pmd_kb());
    drop(data);

    // A private writable mapping at an offset: writes stay private.
    let p = mmap(
        8192,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE,
        f.as_raw_fd(),
        4096,
    )
    .unwrap();
    let m = view(p, 8192);
    let before = m[0];
    m[0] = before.wrapping_add(1);
    m[5000] = 0xaa;
    let mut b = [0u8; 1];
    syscall6(
        PREAD,
        [f.as_raw_fd() as u64, b.as_mut_ptr() as u64, 1, 4096, 0, 0],
    );
    println!(
        "private write: mapping changed {}, file unchanged {}",
        m[0] == before.wrapping_add(1),
        b[0] == before
    );
    munmap(p, 8192);

    // Errors.
    let wo = fs::OpenOptions::new()
        .write(true)
        .open("/tmp/wo")
        .or_else(|_| {
            fs::write("/tmp/wo", b"x")
                .and_then(|_| fs::OpenOptions::new().write(true).open("/tmp/wo"))
        });
    let wo = wo.unwrap();
    println!(
        "map a write-only fd: {:?}",
        mmap(4096, PROT_READ, MAP_SHARED, wo.as_raw_fd(), 0).err()
    );
    println!(
        "shared writable map of a read-only fd: {:?}",
        mmap(4096, PROT_READ | PROT_WRITE, MAP_SHARED, f.as_raw_fd(), 0).err()
    );
    let p = mmap(4096, PROT_READ, MAP_SHARED, f.as_raw_fd(), 0).unwrap();
    println!(
        "mprotect it writable: {}",
        syscall6(MPROTECT, [p as u64, 4096, PROT_READ | PROT_WRITE, 0, 0, 0])
    );
    munmap(p, 4096);
    let dir = fs::File::open("/tmp").unwrap();
    println!(
        "map a directory: {:?}",
        mmap(4096, PROT_READ, MAP_PRIVATE, dir.as_raw_fd(), 0).err()
    );
    println!(
        "unaligned offset: {:?}",
        mmap(4096, PROT_READ, MAP_PRIVATE, f.as_raw_fd(), 100).err()
    );
    println!(
        "bad fd: {:?}",
        mmap(4096, PROT_READ, MAP_PRIVATE, 999, 0).err()
    );
    let zero = fs::File::open("/dev/zero").unwrap();
    let p = mmap(
        8192,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE,
        zero.as_raw_fd(),
        0,
    )
    .unwrap();
    println!(
        "/dev/zero mapping is zero: {}",
        view(p, 8192).iter().all(|&x| x == 0)
    );
    munmap(p, 8192);

    // A RAM file shared both ways.
    let mut rf = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open("/tmp/shared")
        .unwrap();
    rf.write_all(&[1u8; 10_000]).unwrap();
    let p = mmap(
        12_288,
        PROT_READ | PROT_WRITE,
        MAP_SHARED,
        rf.as_raw_fd(),
        0,
    )
    .unwrap();
    let m = view(p, 12_288);
    m[100] = 42;
    println!(
        "write through the mapping, read(2) sees: {}",
        fs::read("/tmp/shared").unwrap()[100]
    );
    let mut w = fs::OpenOptions::new()
        .write(true)
        .open("/tmp/shared")
        .unwrap();
    std::io::Seek::seek(&mut w, std::io::SeekFrom::Start(200)).unwrap();
    w.write_all(&[77]).unwrap();
    println!("write(2), the mapping sees: {}", m[200]);
    println!("msync: {}", syscall6(MSYNC, [p as u64, 12_288, 4, 0, 0, 0]));
    fs::remove_file("/tmp/shared").unwrap();
    m[300] = 9;
    println!(
        "unlinked while mapped, still usable: {}",
        m[100] == 42 && m[300] == 9
    );
    munmap(p, 12_288);
    let p2 = mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, rf.as_raw_fd(), 0).unwrap();
    let m2 = view(p2, 4096);
    m2[100] = 1;
    let mut b = [0u8; 1];
    syscall6(
        PREAD,
        [rf.as_raw_fd() as u64, b.as_mut_ptr() as u64, 1, 100, 0, 0],
    );
    println!("private map of a RAM file: file keeps {}", b[0]);
    munmap(p2, 4096);
    println!("mmap ok");
}
