//! The root filesystem: `llmos_fs::ramfs::RamFs` behind one lock, filled
//! from the initrd at boot (files borrow the ramdisk's bytes, so nothing is
//! copied). Open files and descriptors are in `crate::fd`.
#![deny(unsafe_code)]

use kcore::errno::Errno;
use llmos_fs::cpio::{Kind, Reader};
use llmos_fs::ramfs::{ROOT, RamFs};
use spin::Mutex;

use crate::klog;

/// Without a `fs_capacity_mib` boot parameter, file data written at run
/// time may use this fraction (1/N) of the memory free at boot.
pub const DEFAULT_CAPACITY_DIVISOR: u64 = 4;

/// The capacity for `requested` MiB (or the default).
pub fn capacity(requested: Option<u64>) -> u64 {
    match requested {
        Some(mib) => mib.saturating_mul(1024 * 1024),
        None => crate::memory::frames::free_frames() * 4096 / DEFAULT_CAPACITY_DIVISOR,
    }
}

/// The filesystem.
pub static FS: Mutex<Option<RamFs>> = Mutex::new(None);

/// Device numbers of the special files.
pub mod dev {
    /// /dev/null.
    pub const NULL: (u32, u32) = (1, 3);
    /// /dev/zero.
    pub const ZERO: (u32, u32) = (1, 5);
    /// /dev/random: the same generator as /dev/urandom (it never blocks:
    /// the CSPRNG is seeded before the first process starts, as Linux's
    /// is once initialized).
    pub const RANDOM: (u32, u32) = (1, 8);
    /// /dev/urandom.
    pub const URANDOM: (u32, u32) = (1, 9);
    /// /dev/console.
    pub const CONSOLE: (u32, u32) = (5, 1);
}

/// Builds the root filesystem from the initrd.
pub fn init(initrd: Option<&'static [u8]>, capacity: u64) -> Result<(), llmos_fs::cpio::Error> {
    let now = crate::time::realtime_nanos();
    let mut fs = RamFs::new(capacity);
    let mut files = 0;
    let mut bytes = 0usize;
    if let Some(archive) = initrd {
        for e in Reader::new(archive) {
            let e = e?;
            if e.path.is_empty() {
                continue;
            }
            let path = alloc::format!("/{}", e.path);
            let r = match e.kind {
                Kind::Dir => fs.mkdir(ROOT, &path, e.perm, now).map(|_| ()),
                Kind::File => {
                    files += 1;
                    bytes += e.data.len();
                    fs.add_borrowed(ROOT, &path, e.data, e.perm, now)
                        .map(|_| ())
                }
                Kind::Symlink => match core::str::from_utf8(e.data) {
                    Ok(t) => fs.symlink(t, ROOT, &path, now).map(|_| ()),
                    Err(_) => Err(Errno::EINVAL),
                },
            };
            if let Err(err) = r
                && err != Errno::EEXIST
            {
                klog!("fs", "initrd entry {path}: {err}; skipped");
            }
        }
    }
    for d in ["/dev", "/tmp", "/var", "/var/tmp", "/proc"] {
        let _ = fs.mkdir(ROOT, d, 0o755, now);
    }
    let _ = fs.chmod(fs.lookup(ROOT, "/tmp", true).unwrap_or(ROOT), 0o1777, now);
    for (name, dev) in [
        ("null", dev::NULL),
        ("zero", dev::ZERO),
        ("random", dev::RANDOM),
        ("urandom", dev::URANDOM),
        ("console", dev::CONSOLE),
    ] {
        let _ = fs.mknod(ROOT, &alloc::format!("/dev/{name}"), dev, 0o666, now);
    }
    klog!(
        "fs",
        "root filesystem: {files} files ({} KiB) from the initrd, mapped in place (0 bytes copied); {} MiB for new data",
        bytes / 1024,
        capacity / (1024 * 1024)
    );
    *FS.lock() = Some(fs);
    Ok(())
}

/// Runs `f` on the filesystem.
pub fn with<R>(f: impl FnOnce(&mut RamFs) -> Result<R, Errno>) -> Result<R, Errno> {
    let mut g = FS.lock();
    let fs = g.as_mut().ok_or(Errno::ENOENT)?;
    f(fs)
}

/// Removes everything below directory `path` (it stays): how `/tmp` is
/// emptied when the program is restarted. Returns the entries removed.
pub fn empty_dir(path: &str) -> usize {
    let now = crate::time::realtime_nanos();
    with(|fs| {
        let dir = fs.lookup(ROOT, path, true)?;
        fs.remove_contents(dir, now)
    })
    .unwrap_or(0)
}
