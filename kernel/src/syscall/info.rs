//! Process and system information: uname, ids, limits, affinity, sysinfo,
//! arch_prctl, readlink, getrandom.

use kcore::errno::Errno;

use super::SysResult;
use crate::memory::uaccess::{self, UserSlice};
use crate::process::PROCESS;

/// uname(2).
pub fn uname(buf: u64) -> SysResult {
    let mut u = [0u8; 6 * 65];
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"llmos",
        b"6.1.0-llmos",
        concat!("#1 SMP llmos ", env!("CARGO_PKG_VERSION")).as_bytes(),
        b"x86_64",
        b"(none)",
    ];
    for (i, f) in fields.iter().enumerate() {
        u[i * 65..i * 65 + f.len()].copy_from_slice(f);
    }
    UserSlice::new(buf, u.len())?.write(&u)?;
    Ok(0)
}

fn readlink_path(dir: u64, path: &[u8], buf: u64, size: u64) -> SysResult {
    if size == 0 || size > i32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    super::file::readlink_fs(dir, path, buf, size)
}

/// readlink(2).
pub fn readlink(path: u64, buf: u64, size: u64) -> SysResult {
    let p = uaccess::read_cstr(path, 4096)?;
    readlink_path(AT_FDCWD_RAW, &p, buf, size)
}

const AT_FDCWD_RAW: u64 = -100i64 as u64;

/// readlinkat(2).
pub fn readlinkat(dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    let p = uaccess::read_cstr(path, 4096)?;
    readlink_path(dirfd, &p, buf, size)
}

const RLIMIT_NOFILE: usize = 7;

/// prlimit64(2) for the calling process (pid 0 or 1).
pub fn prlimit64(pid: u64, resource: u64, new: u64, old: u64) -> SysResult {
    if pid != 0 && pid != 1 {
        return Err(Errno::ESRCH);
    }
    let r = usize::try_from(resource)
        .ok()
        .filter(|&r| r < 16)
        .ok_or(Errno::EINVAL)?;
    let new_limit = if new != 0 {
        let cur = uaccess::read_u64(new)?;
        let max = uaccess::read_u64(new + 8)?;
        if cur > max {
            return Err(Errno::EINVAL);
        }
        if r == RLIMIT_NOFILE && max > crate::fd::MAX_LIMIT {
            // Linux's fs.nr_open: EPERM even for root.
            return Err(Errno::EPERM);
        }
        Some((cur, max))
    } else {
        None
    };
    let previous = {
        let mut g = PROCESS.lock();
        let p = g.as_mut().ok_or(Errno::ESRCH)?;
        let prev = p.rlimits[r];
        if let Some((cur, max)) = new_limit {
            if max > prev.1 {
                // Raising the hard limit needs CAP_SYS_RESOURCE; we are
                // root, so allow it as Linux would.
            }
            p.rlimits[r] = (cur, max);
            if r == RLIMIT_NOFILE {
                crate::fd::with_table(|t| {
                    t.set_limit(cur);
                    Ok(())
                })?;
            }
        }
        prev
    };
    if old != 0 {
        uaccess::write_u64(old, previous.0)?;
        uaccess::write_u64(old + 8, previous.1)?;
    }
    Ok(0)
}

/// sysinfo(2).
pub fn sysinfo(buf: u64) -> SysResult {
    let mut s = [0u8; 112];
    let uptime = crate::time::now_nanos() / 1_000_000_000;
    let total = crate::memory::frames::total_frames() * 4096;
    let free = crate::memory::frames::free_frames() * 4096;
    s[0..8].copy_from_slice(&uptime.to_le_bytes());
    s[32..40].copy_from_slice(&total.to_le_bytes());
    s[40..48].copy_from_slice(&free.to_le_bytes());
    s[80..82].copy_from_slice(&1u16.to_le_bytes()); // procs
    s[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    UserSlice::new(buf, s.len())?.write(&s)?;
    Ok(0)
}

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;

/// arch_prctl(2).
pub fn arch_prctl(code: u64, addr: u64) -> SysResult {
    use crate::arch::x86_64::syscall as a;
    let canonical = |v: u64| v < kcore::elf::USER_END;
    match code {
        ARCH_SET_FS => {
            if !canonical(addr) {
                return Err(Errno::EPERM);
            }
            a::set_fs_base(addr);
            Ok(0)
        }
        ARCH_GET_FS => {
            uaccess::write_u64(addr, a::fs_base())?;
            Ok(0)
        }
        ARCH_SET_GS => {
            if !canonical(addr) {
                return Err(Errno::EPERM);
            }
            a::set_user_gs_base(addr);
            Ok(0)
        }
        ARCH_GET_GS => {
            uaccess::write_u64(addr, a::user_gs_base())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// sched_getaffinity(2): the CPUs the kernel runs on.
pub fn sched_getaffinity(pid: u64, size: u64, mask: u64) -> SysResult {
    // The kernel's mask is 8 bytes (up to 64 CPUs); Linux requires the
    // user buffer to hold the kernel's cpumask and a multiple of 8.
    if size < 8 || size % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let tid = if pid == 1 && crate::sched::current_tid() == 1 {
        0
    } else {
        pid as u32
    };
    let bits = crate::sched::affinity(tid).ok_or(Errno::ESRCH)?;
    uaccess::write_u64(mask, bits)?;
    Ok(8)
}

const GRND_NONBLOCK: u64 = 1;
const GRND_RANDOM: u64 = 2;
const GRND_INSECURE: u64 = 4;

/// getrandom(2).
pub fn getrandom(buf: u64, len: u64, flags: u64) -> SysResult {
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    let len = len.min(32 * 1024 * 1024);
    let mut done = 0u64;
    let mut chunk = [0u8; 256];
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        crate::random::fill(&mut chunk[..n]);
        if let Err(e) = UserSlice::new(buf + done, n)?.write(&chunk[..n]) {
            return if done == 0 { Err(e) } else { Ok(done) };
        }
        done += n as u64;
    }
    Ok(done)
}
