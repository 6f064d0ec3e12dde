//! Socket syscalls over `llmos_net::socket` (IPv4 TCP and UDP): socket,
//! bind, listen, accept/accept4, connect, getsockname, getpeername,
//! sendto/recvfrom, sendmsg/recvmsg (data and address; no ancillary data),
//! shutdown, setsockopt/getsockopt. Read, write, close, poll and fstat on
//! socket descriptors go through the generic descriptor code.
//!
//! Blocking calls sleep on the I/O wait queue, which the network poll
//! wakes when a socket changes; `O_NONBLOCK` gives EAGAIN (EINPROGRESS for
//! connect), and SO_RCVTIMEO/SO_SNDTIMEO bound the wait (EAGAIN).

use alloc::vec::Vec;

use kcore::errno::Errno;
use llmos_net::socket::{Addr, Error as SockError, Id, Ipv4Address, Kind};

use super::SysResult;
use crate::fd::{self, IO, Object, OpenFile};
use crate::memory::kalloc;
use crate::memory::uaccess::{self, UserSlice};
use crate::netdev;

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const SOCK_NONBLOCK: u64 = 0o4000;
const SOCK_CLOEXEC: u64 = 0o2000000;
const O_RDWR: u32 = 2;
const O_NONBLOCK: u32 = 0o4000;
const MSG_DONTWAIT: u64 = 0x40;
const MSG_PEEK: u64 = 0x2;
const MSG_NOSIGNAL: u64 = 0x4000;
const SOL_SOCKET: u64 = 1;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_IP: u64 = 0;

/// Maps a socket-layer error to its errno.
fn errno(e: SockError) -> Errno {
    match e {
        SockError::WouldBlock => Errno::EAGAIN,
        SockError::AddrInUse => Errno::EADDRINUSE,
        SockError::NotConnected => Errno::ENOTCONN,
        SockError::IsConnected => Errno::EISCONN,
        SockError::Refused => Errno::ECONNREFUSED,
        SockError::Reset => Errno::ECONNRESET,
        SockError::Pipe => Errno::EPIPE,
        SockError::Invalid => Errno::EINVAL,
        SockError::Unreachable => Errno::ENETUNREACH,
        SockError::NotSupported => Errno::ENOTSUP,
        SockError::BadId => Errno::EBADF,
        SockError::NoBuffers => Errno::ENOBUFS,
        SockError::TimedOut => Errno::ETIMEDOUT,
    }
}

/// The socket behind `fd` and whether it is non-blocking.
fn sock(fd: u64) -> Result<(Id, bool, alloc::sync::Arc<OpenFile>), Errno> {
    let d = fd::get(fd)?;
    match d.object {
        Object::Socket(id) => Ok((id, d.flags() & O_NONBLOCK != 0, d)),
        _ => Err(Errno::ENOTSOCK),
    }
}

/// Reads a `sockaddr_in`.
fn read_addr(addr: u64, len: u64) -> Result<Addr, Errno> {
    if len < 2 {
        return Err(Errno::EINVAL);
    }
    let mut fam = [0u8; 2];
    UserSlice::new(addr, 2)?.read_into(&mut fam)?;
    match u64::from(u16::from_le_bytes(fam)) {
        AF_INET => {}
        AF_INET6 | AF_UNIX => return Err(Errno::EAFNOSUPPORT),
        _ => return Err(Errno::EAFNOSUPPORT),
    }
    if len < 16 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 8];
    UserSlice::new(addr, 8)?.read_into(&mut b)?;
    Ok((
        Ipv4Address::new(b[4], b[5], b[6], b[7]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}

/// Writes a `sockaddr_in` to `addr` with the length at `lenp`
/// (truncated to the caller's length, which is then set to 16).
fn write_addr(addr: u64, lenp: u64, a: Addr) -> Result<(), Errno> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    let mut l = [0u8; 4];
    UserSlice::new(lenp, 4)?.read_into(&mut l)?;
    let cap = i32::from_le_bytes(l);
    if cap < 0 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&(AF_INET as u16).to_le_bytes());
    b[2..4].copy_from_slice(&a.1.to_be_bytes());
    b[4..8].copy_from_slice(&a.0.octets());
    let n = (cap as usize).min(16);
    UserSlice::new(addr, n)?.write(&b[..n])?;
    uaccess::write_u32(lenp, 16)?;
    Ok(())
}

/// Repeats `op` until it stops saying would-block, sleeping on the I/O
/// queue in between (unless non-blocking), for at most `timeout` ns
/// (0: forever). The stack is polled before every try so output leaves at
/// once.
fn blocking<T>(
    nonblocking: bool,
    timeout: u64,
    mut op: impl FnMut(&mut netdev::Net) -> Result<T, SockError>,
) -> Result<T, Errno> {
    let deadline = (timeout > 0).then(|| crate::time::now_nanos().saturating_add(timeout));
    loop {
        // A wakeup between the try and the sleep moves the generation, so
        // it is never lost.
        let generation = fd::io_generation();
        let r = netdev::with(&mut op)?;
        netdev::poll();
        match r {
            Err(SockError::WouldBlock) => {}
            r => return r.map_err(errno),
        }
        if nonblocking {
            return Err(Errno::EAGAIN);
        }
        if deadline.is_some_and(|d| crate::time::now_nanos() >= d) {
            return Err(Errno::EAGAIN);
        }
        super::signal::pending()?;
        // Wake at the next tick at the latest: the stack's timers run then.
        let tick = crate::time::now_nanos() + 10_000_000;
        IO.wait(Some(deadline.map_or(tick, |d| d.min(tick))), || {
            fd::io_generation() != generation
        });
    }
}

/// socket(2).
pub fn socket(domain: u64, ty: u64, proto: u64) -> SysResult {
    if domain != AF_INET {
        return Err(Errno::EAFNOSUPPORT);
    }
    if ty & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let kind = match (ty & 0xf, proto) {
        (SOCK_STREAM, 0 | 6) => Kind::Tcp,
        (SOCK_DGRAM, 0 | 17) => Kind::Udp,
        (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    // Its buffers come later, from the network stack's own budget; the
    // kernel must be able to spare them now.
    kalloc::headroom(2 * llmos_net::socket::TCP_BUFFER)?;
    let id = netdev::with(|n| n.socks.create(kind))?;
    let flags = O_RDWR
        | if ty & SOCK_NONBLOCK != 0 {
            O_NONBLOCK
        } else {
            0
        };
    fd::install(
        OpenFile::new(Object::Socket(id), flags),
        ty & SOCK_CLOEXEC != 0,
    )
}

/// Closes socket `id` (the last descriptor for it went away).
pub fn release(id: Id) {
    let _ = netdev::with(|n| n.socks.close(&mut n.stack, id));
    netdev::poll();
}

/// bind(2).
pub fn bind(fd: u64, addr: u64, len: u64) -> SysResult {
    let (id, _, _) = sock(fd)?;
    let a = read_addr(addr, len)?;
    netdev::with(|n| n.socks.bind(&n.stack, id, a))?
        .map(|_| 0)
        .map_err(|e| match e {
            SockError::Unreachable => Errno::EADDRNOTAVAIL,
            e => errno(e),
        })
}

/// listen(2).
pub fn listen(fd: u64, backlog: u64) -> SysResult {
    let (id, _, _) = sock(fd)?;
    kalloc::headroom(2 * llmos_net::socket::TCP_BUFFER)?;
    let backlog = (backlog as i32).max(1) as usize;
    netdev::with(|n| n.socks.listen(&mut n.stack, id, backlog))?
        .map(|_| 0)
        .map_err(|e| match e {
            SockError::NotSupported => Errno::ENOTSUP,
            e => errno(e),
        })
}

/// accept4(2) (and accept).
pub fn accept4(fd: u64, addr: u64, lenp: u64, flags: u64) -> SysResult {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (id, nb, _) = sock(fd)?;
    let timeout = netdev::with(|n| n.socks.options(id).map(|o| o.recv_timeout))?.map_err(errno)?;
    let (new, peer) = blocking(nb, timeout, |n| n.socks.accept(&mut n.stack, id))?;
    let nflags = O_RDWR
        | if flags & SOCK_NONBLOCK != 0 {
            O_NONBLOCK
        } else {
            0
        };
    let nfd = fd::install(
        OpenFile::new(Object::Socket(new), nflags),
        flags & SOCK_CLOEXEC != 0,
    )?;
    if let Err(e) = write_addr(addr, lenp, peer) {
        let _ = fd::close(nfd);
        return Err(e);
    }
    Ok(nfd)
}

/// connect(2).
pub fn connect(fd: u64, addr: u64, len: u64) -> SysResult {
    let (id, nb, _) = sock(fd)?;
    let a = read_addr(addr, len)?;
    kalloc::headroom(2 * llmos_net::socket::TCP_BUFFER)?;
    match netdev::with(|n| n.socks.connect(&mut n.stack, id, a))? {
        Ok(()) => return Ok(0),
        Err(SockError::WouldBlock) => {}
        Err(SockError::IsConnected) => {
            // A second connect on a non-blocking socket in progress.
            return match netdev::with(|n| n.socks.connect_result(&n.stack, id))? {
                Ok(()) => Err(Errno::EISCONN),
                Err(SockError::WouldBlock) => Err(Errno::EALREADY),
                Err(e) => Err(errno(e)),
            };
        }
        Err(e) => return Err(errno(e)),
    }
    netdev::poll();
    if nb {
        return Err(Errno::EINPROGRESS);
    }
    let timeout = netdev::with(|n| n.socks.options(id).map(|o| o.send_timeout))?.map_err(errno)?;
    match blocking(false, timeout, |n| n.socks.connect_result(&n.stack, id)) {
        Err(Errno::EAGAIN) => Err(Errno::ETIMEDOUT),
        r => r.map(|_| 0),
    }
}

/// getsockname(2).
pub fn getsockname(fd: u64, addr: u64, lenp: u64) -> SysResult {
    let (id, _, _) = sock(fd)?;
    let a = netdev::with(|n| n.socks.local_addr(&n.stack, id))?.map_err(errno)?;
    write_addr(addr, lenp, a).map(|_| 0)
}

/// getpeername(2).
pub fn getpeername(fd: u64, addr: u64, lenp: u64) -> SysResult {
    let (id, _, _) = sock(fd)?;
    let a = netdev::with(|n| n.socks.peer_addr(&n.stack, id))?.map_err(errno)?;
    write_addr(addr, lenp, a).map(|_| 0)
}

/// Largest single receive through a socket call (one bounce buffer; a
/// stream read may return less than asked, and a datagram is smaller).
const MAX_IO: usize = kalloc::CHUNK;
/// Largest UDP payload over IPv4 (65,535 − 20 − 8).
const MAX_DATAGRAM: usize = 65_507;

/// Sends `data` on socket `id` once (blocking unless `nb`): TCP takes what
/// fits, UDP the whole datagram.
fn send_once(
    id: Id,
    kind: Kind,
    nb: bool,
    timeout: u64,
    data: &[u8],
    to: Option<Addr>,
) -> SysResult {
    let r = match (kind, to) {
        (Kind::Udp, Some(to)) => {
            blocking(nb, timeout, |n| n.socks.send_to(&mut n.stack, id, data, to))
        }
        (Kind::Udp, None) => {
            let peer = netdev::with(|n| n.socks.udp_peer(id))?;
            match peer {
                Some(to) => blocking(nb, timeout, |n| n.socks.send_to(&mut n.stack, id, data, to)),
                None => Err(Errno::EDESTADDRREQ),
            }
        }
        (Kind::Tcp, _) => blocking(nb, timeout, |n| n.socks.send(&mut n.stack, id, data)),
    };
    r.map(|n| n as u64)
}

/// Sends `total` bytes that `fill(offset, buf)` copies from user memory
/// (all of `buf`, or an error): a stream in steps of one bounce buffer
/// until a step goes out only in part, a datagram whole (EMSGSIZE beyond
/// [`MAX_DATAGRAM`]). Returns the bytes sent; an error only if none were,
/// and EPIPE then raises SIGPIPE unless `flags` has MSG_NOSIGNAL.
fn send_from(
    id: Id,
    nb: bool,
    total: usize,
    to: Option<Addr>,
    flags: u64,
    mut fill: impl FnMut(usize, &mut [u8]) -> Result<(), Errno>,
) -> SysResult {
    let (kind, timeout) = netdev::with(|n| {
        Ok::<_, SockError>((n.socks.kind(id)?, n.socks.options(id)?.send_timeout))
    })?
    .map_err(errno)?;
    if kind == Kind::Udp && total > MAX_DATAGRAM {
        return Err(Errno::EMSGSIZE);
    }
    let mut buf = kalloc::bounce(total)?;
    let mut sent = 0usize;
    let result = loop {
        let want = (total - sent).min(buf.len());
        let step = fill(sent, &mut buf[..want])
            .and_then(|_| send_once(id, kind, nb, timeout, &buf[..want], to));
        match step {
            Ok(n) => {
                sent += n as usize;
                if (n as usize) < want || sent >= total || kind == Kind::Udp {
                    break Ok(sent as u64);
                }
            }
            Err(e) if sent == 0 => break Err(e),
            Err(_) => break Ok(sent as u64),
        }
    };
    match result {
        Err(Errno::EPIPE) if flags & MSG_NOSIGNAL == 0 => {
            super::signal::raise(13)?;
            Err(Errno::EPIPE)
        }
        r => r,
    }
}

/// Sends the user bytes `[buf, buf + len)` (see [`send_from`]).
fn send_user(id: Id, nb: bool, buf: u64, len: u64, to: Option<Addr>, flags: u64) -> SysResult {
    let src = UserSlice::new(buf, len.min(MAX_RW) as usize)?;
    send_from(id, nb, src.len(), to, flags, |off, out| {
        src.sub(off, out.len()).read_into(out)
    })
}

/// Largest single transfer (Linux caps at 0x7ffff000).
const MAX_RW: u64 = 0x7fff_f000;

/// Receives into a kernel buffer of `len` bytes from socket `id`.
fn recv_data(id: Id, nb: bool, len: usize) -> Result<(Vec<u8>, Option<Addr>), Errno> {
    let (kind, timeout) = netdev::with(|n| {
        Ok::<_, SockError>((n.socks.kind(id)?, n.socks.options(id)?.recv_timeout))
    })?
    .map_err(errno)?;
    let mut buf = kalloc::zeroed(len.min(MAX_IO))?;
    match kind {
        Kind::Tcp => {
            let k = blocking(nb, timeout, |n| n.socks.recv(&mut n.stack, id, &mut buf))?;
            buf.truncate(k);
            Ok((buf, None))
        }
        Kind::Udp => {
            let (k, from) = blocking(nb, timeout, |n| {
                n.socks.recv_from(&mut n.stack, id, &mut buf)
            })?;
            buf.truncate(k);
            Ok((buf, Some(from)))
        }
    }
}

/// sendto(2) (and send).
pub fn sendto(fd: u64, buf: u64, len: u64, flags: u64, addr: u64, alen: u64) -> SysResult {
    let (id, nb, _) = sock(fd)?;
    let to = if addr != 0 {
        Some(read_addr(addr, alen)?)
    } else {
        None
    };
    send_user(id, nb || flags & MSG_DONTWAIT != 0, buf, len, to, flags)
}

/// recvfrom(2) (and recv).
pub fn recvfrom(fd: u64, buf: u64, len: u64, flags: u64, addr: u64, lenp: u64) -> SysResult {
    if flags & MSG_PEEK != 0 {
        return Err(Errno::ENOTSUP);
    }
    let (id, nb, _) = sock(fd)?;
    let dst = UserSlice::new(buf, len.min(MAX_IO as u64) as usize)?.writable_prefix()?;
    let (data, from) = recv_data(id, nb || flags & MSG_DONTWAIT != 0, dst.len())?;
    UserSlice::new(buf, data.len())?.write(&data)?;
    if let Some(f) = from {
        write_addr(addr, lenp, f)?;
    }
    Ok(data.len() as u64)
}

/// The fields of a `struct msghdr` we use.
struct MsgHdr {
    /// msg_name and msg_namelen.
    name: u64,
    namelen: u64,
    /// (base, len) of each iovec.
    iov: Vec<(u64, u64)>,
}

fn read_msghdr(msg: u64) -> Result<MsgHdr, Errno> {
    let raw = UserSlice::new(msg, 56)?.read_vec()?;
    let word = |i: usize| {
        u64::from_le_bytes([
            raw[i],
            raw[i + 1],
            raw[i + 2],
            raw[i + 3],
            raw[i + 4],
            raw[i + 5],
            raw[i + 6],
            raw[i + 7],
        ])
    };
    let (name, namelen, iov, iovlen) = (word(0), word(8) & 0xffff_ffff, word(16), word(24));
    if iovlen > 1024 {
        return Err(Errno::EMSGSIZE);
    }
    let raw_iov = UserSlice::new(iov, (iovlen * 16) as usize)?.read_vec()?;
    let mut v = kalloc::with_capacity(iovlen as usize)?;
    for c in raw_iov.as_chunks::<16>().0 {
        let base = u64::from_le_bytes(c[..8].try_into().map_err(|_| Errno::EFAULT)?);
        let len = u64::from_le_bytes(c[8..].try_into().map_err(|_| Errno::EFAULT)?);
        v.push((base, len));
    }
    Ok(MsgHdr {
        name,
        namelen,
        iov: v,
    })
}

/// Copies the bytes of `iov` from byte `skip` on into `out` (all of it, or
/// EFAULT).
fn gather(iov: &[(u64, u64)], mut skip: usize, out: &mut [u8]) -> Result<(), Errno> {
    let mut filled = 0usize;
    for &(base, len) in iov {
        if filled == out.len() {
            break;
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = (len - skip).min(out.len() - filled);
        let at = base.checked_add(skip as u64).ok_or(Errno::EFAULT)?;
        UserSlice::new(at, n)?.read_into(&mut out[filled..filled + n])?;
        filled += n;
        skip = 0;
    }
    if filled < out.len() {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// sendmsg(2): the iovecs are sent in order as one stream write (TCP, in
/// bounce-buffer steps) or one datagram (UDP); ancillary data is ignored.
pub fn sendmsg(fd: u64, msg: u64, flags: u64) -> SysResult {
    let (id, nb, _) = sock(fd)?;
    let MsgHdr { name, namelen, iov } = read_msghdr(msg)?;
    let mut total = 0u64;
    for &(_, len) in &iov {
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
    }
    if total > i64::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let to = if name != 0 {
        Some(read_addr(name, namelen)?)
    } else {
        None
    };
    let total = total.min(MAX_RW) as usize;
    send_from(
        id,
        nb || flags & MSG_DONTWAIT != 0,
        total,
        to,
        flags,
        |off, out| gather(&iov, off, out),
    )
}

/// recvmsg(2): fills the iovecs in order; writes the sender's address for
/// UDP; no ancillary data (msg_controllen becomes 0).
pub fn recvmsg(fd: u64, msg: u64, flags: u64) -> SysResult {
    if flags & MSG_PEEK != 0 {
        return Err(Errno::ENOTSUP);
    }
    let (id, nb, _) = sock(fd)?;
    let MsgHdr { name, iov, .. } = read_msghdr(msg)?;
    let total = iov.iter().fold(0u64, |t, v| t.saturating_add(v.1));
    let (data, from) = recv_data(id, nb || flags & MSG_DONTWAIT != 0, total as usize)?;
    let mut off = 0usize;
    for (base, len) in iov {
        if off >= data.len() {
            break;
        }
        let n = (len as usize).min(data.len() - off);
        UserSlice::new(base, n)?.write(&data[off..off + n])?;
        off += n;
    }
    if let Some(f) = from
        && name != 0
    {
        write_addr(name, msg + 8, f)?;
    }
    // msg_controllen = 0, msg_flags = 0.
    UserSlice::new(msg + 40, 8)?.write(&[0; 8])?;
    UserSlice::new(msg + 48, 4)?.write(&[0; 4])?;
    Ok(data.len() as u64)
}

/// Size of `struct mmsghdr`: a msghdr and the `msg_len` the kernel fills
/// in (padded).
const MMSGHDR: u64 = 64;
/// Most messages one sendmmsg/recvmmsg handles (Linux's UIO_MAXIOV).
const MAX_MMSG: u64 = 1024;

/// sendmmsg(2): sendmsg for each message; stops at the first error, which
/// is returned only if nothing was sent.
pub fn sendmmsg(fd: u64, vec: u64, vlen: u64, flags: u64) -> SysResult {
    let mut sent = 0;
    for i in 0..vlen.min(MAX_MMSG) {
        let m = vec.checked_add(i * MMSGHDR).ok_or(Errno::EFAULT)?;
        match sendmsg(fd, m, flags) {
            Ok(n) => {
                UserSlice::new(m + 56, 4)?.write(&(n as u32).to_le_bytes())?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// recvmmsg(2): recvmsg for each message; only the first may block (as
/// with MSG_WAITFORONE); the timeout argument is ignored.
pub fn recvmmsg(fd: u64, vec: u64, vlen: u64, flags: u64) -> SysResult {
    let mut got = 0;
    for i in 0..vlen.min(MAX_MMSG) {
        let m = vec.checked_add(i * MMSGHDR).ok_or(Errno::EFAULT)?;
        let f = if got == 0 {
            flags
        } else {
            flags | MSG_DONTWAIT
        };
        match recvmsg(fd, m, f) {
            Ok(n) => {
                UserSlice::new(m + 56, 4)?.write(&(n as u32).to_le_bytes())?;
                got += 1;
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(got)
}

/// shutdown(2).
pub fn shutdown(fd: u64, how: u64) -> SysResult {
    let (id, _, _) = sock(fd)?;
    let (rd, wr) = match how {
        0 => (true, false),
        1 => (false, true),
        2 => (true, true),
        _ => return Err(Errno::EINVAL),
    };
    let r = netdev::with(|n| n.socks.shutdown(&mut n.stack, id, rd, wr))?;
    netdev::poll();
    r.map(|_| 0).map_err(errno)
}

fn read_int(optval: u64, optlen: u64) -> Result<u32, Errno> {
    if (optlen as u32) < 4 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 4];
    UserSlice::new(optval, 4)?.read_into(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_timeval(optval: u64, optlen: u64) -> Result<u64, Errno> {
    if (optlen as u32) < 16 {
        return Err(Errno::EINVAL);
    }
    let secs = uaccess::read_u64(optval)?;
    let usecs = uaccess::read_u64(optval + 8)?;
    if usecs >= 1_000_000 {
        return Err(Errno::EDOM);
    }
    Ok(secs
        .saturating_mul(1_000_000_000)
        .saturating_add(usecs * 1000))
}

/// setsockopt(2): SO_REUSEADDR, SO_KEEPALIVE, SO_RCVTIMEO, SO_SNDTIMEO,
/// TCP_NODELAY take effect; SO_RCVBUF/SO_SNDBUF, SO_LINGER, SO_REUSEPORT,
/// SO_BROADCAST and other IPPROTO_IP/IPPROTO_TCP options are accepted;
/// unknown ones are ENOPROTOOPT.
pub fn setsockopt(fd: u64, level: u64, name: u64, optval: u64, optlen: u64) -> SysResult {
    let (id, _, _) = sock(fd)?;
    let set = |f: &mut dyn FnMut(&mut llmos_net::socket::Options)| {
        netdev::with(|n| {
            let r = n.socks.options(id).map(&mut *f);
            n.socks.apply_options(&mut n.stack, id).and(r)
        })?
        .map_err(errno)
    };
    match (level, name) {
        (SOL_SOCKET, 2) => {
            let v = read_int(optval, optlen)? != 0;
            set(&mut |o| o.reuse_addr = v)?;
        }
        (SOL_SOCKET, 9) => {
            let v = read_int(optval, optlen)? != 0;
            set(&mut |o| o.keepalive = v)?;
        }
        (SOL_SOCKET, 20) => {
            let t = read_timeval(optval, optlen)?;
            set(&mut |o| o.recv_timeout = t)?;
        }
        (SOL_SOCKET, 21) => {
            let t = read_timeval(optval, optlen)?;
            set(&mut |o| o.send_timeout = t)?;
        }
        (IPPROTO_TCP, 1) => {
            let v = read_int(optval, optlen)? != 0;
            set(&mut |o| o.no_delay = v)?;
        }
        // SO_BROADCAST, SO_SNDBUF, SO_RCVBUF, SO_LINGER, SO_REUSEPORT.
        (SOL_SOCKET, 6 | 7 | 8 | 13 | 15) | (IPPROTO_TCP, _) | (IPPROTO_IP, _) => {}
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}

/// getsockopt(2): SO_ERROR, SO_TYPE, SO_REUSEADDR, SO_KEEPALIVE,
/// SO_RCVBUF/SO_SNDBUF, SO_RCVTIMEO/SO_SNDTIMEO, SO_ACCEPTCONN,
/// TCP_NODELAY.
pub fn getsockopt(fd: u64, level: u64, name: u64, optval: u64, optlenp: u64) -> SysResult {
    let (id, _, _) = sock(fd)?;
    let mut l = [0u8; 4];
    UserSlice::new(optlenp, 4)?.read_into(&mut l)?;
    let cap = i32::from_le_bytes(l);
    if cap < 0 {
        return Err(Errno::EINVAL);
    }
    let (kind, opts, pending_err) = netdev::with(|n| {
        let kind = n.socks.kind(id)?;
        let opts = *n.socks.options(id)?;
        let err = match n.socks.connect_result(&n.stack, id) {
            Err(SockError::Refused) => 111,
            Err(SockError::TimedOut) => 110,
            _ => 0,
        };
        Ok::<_, SockError>((kind, opts, err))
    })?
    .map_err(errno)?;
    let int = |v: u32| v.to_le_bytes().to_vec();
    let tv = |ns: u64| {
        let mut b = (ns / 1_000_000_000).to_le_bytes().to_vec();
        b.extend_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
        b
    };
    let val = match (level, name) {
        (SOL_SOCKET, 4) => int(pending_err),
        (SOL_SOCKET, 3) => int(if kind == Kind::Tcp { 1 } else { 2 }),
        (SOL_SOCKET, 2) => int(u32::from(opts.reuse_addr)),
        (SOL_SOCKET, 9) => int(u32::from(opts.keepalive)),
        (SOL_SOCKET, 7 | 8) => int(llmos_net::socket::TCP_BUFFER as u32),
        (SOL_SOCKET, 20) => tv(opts.recv_timeout),
        (SOL_SOCKET, 21) => tv(opts.send_timeout),
        (SOL_SOCKET, 30) => int(u32::from(
            netdev::with(|n| n.socks.is_listening(id)).unwrap_or(false),
        )),
        (IPPROTO_TCP, 1) => int(u32::from(opts.no_delay)),
        _ => return Err(Errno::ENOPROTOOPT),
    };
    let n = (cap as usize).min(val.len());
    UserSlice::new(optval, n)?.write(&val[..n])?;
    uaccess::write_u32(optlenp, n as u32)?;
    Ok(0)
}

/// read(2)/write(2) on a socket descriptor.
pub fn read_socket(id: Id, nb: bool, buf: u64, count: u64) -> SysResult {
    let dst = UserSlice::new(buf, count.min(MAX_IO as u64) as usize)?.writable_prefix()?;
    let (data, _) = recv_data(id, nb, dst.len())?;
    UserSlice::new(buf, data.len())?.write(&data)?;
    Ok(data.len() as u64)
}

/// write(2) on a socket descriptor.
pub fn write_socket(id: Id, nb: bool, buf: u64, count: u64) -> SysResult {
    send_user(id, nb, buf, count, None, 0)
}

/// poll(2) events of a socket.
pub fn ready(id: Id) -> llmos_net::socket::Ready {
    netdev::with(|n| n.socks.ready(&n.stack, id)).unwrap_or_default()
}

/// FIONREAD on a socket.
pub fn pending(id: Id) -> usize {
    netdev::with(|n| n.socks.pending(&mut n.stack, id)).unwrap_or(0)
}
