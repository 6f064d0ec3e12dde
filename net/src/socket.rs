//! BSD socket semantics on top of smoltcp sockets, for the kernel's socket
//! syscalls: TCP listen with a backlog, accept, connect, send/recv with
//! would-block, half-close, resets; UDP bind/sendto/recvfrom. Blocking and
//! descriptors belong to the kernel; every call here returns at once,
//! `Err(WouldBlock)` when it would have to wait.
//!
//! A listening socket keeps a few spare smoltcp sockets ([`SPARES`])
//! listening on its port; each one that takes a SYN is replaced at once
//! (after every received frame, see [`Stack::poll_with`]) and moves to the
//! accept queue when its handshake completes, so up to `backlog`
//! connections can be handshaking or waiting for `accept`. With the
//! backlog full (or the buffer budget spent) new SYNs are dropped and the
//! client retries, as with Linux. A
//! closed connected socket is handed to smoltcp to finish its FIN exchange
//! and reaped once it is closed (or aborted after [`ORPHAN_TIMEOUT_MS`]).
//!
//! Socket buffers come from a budget ([`Sockets::set_memory_limit`]): new
//! sockets get full-size buffers while less than half of it is used, small
//! ones beyond that, and none (ENOBUFS, or a refused connection) once it is
//! spent, so a flood of connections cannot exhaust the kernel heap.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
pub use smoltcp::wire::Ipv4Address;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use crate::stack::Stack;

/// A socket's id in the [`Sockets`] table.
pub type Id = u32;

/// An IPv4 endpoint.
pub type Addr = (Ipv4Address, u16);

/// Socket errors (the kernel maps them to errno values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Try again later (EAGAIN / EINPROGRESS for connect).
    WouldBlock,
    /// The address or port is in use (EADDRINUSE).
    AddrInUse,
    /// Not connected (ENOTCONN).
    NotConnected,
    /// Already connected (EISCONN).
    IsConnected,
    /// Refused (ECONNREFUSED).
    Refused,
    /// Reset by the peer (ECONNRESET).
    Reset,
    /// The sending half is closed (EPIPE).
    Pipe,
    /// Operation not valid in this state (EINVAL).
    Invalid,
    /// No route or unusable address (ENETUNREACH / EADDRNOTAVAIL).
    Unreachable,
    /// Operation not supported by this kind of socket (EOPNOTSUPP).
    NotSupported,
    /// No such socket (EBADF).
    BadId,
    /// No free ports or sockets (ENOBUFS).
    NoBuffers,
    /// The peer did not answer in time (ETIMEDOUT).
    TimedOut,
}

/// Kind of socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SOCK_STREAM.
    Tcp,
    /// SOCK_DGRAM.
    Udp,
}

#[derive(Debug)]
enum State {
    /// Created, maybe bound.
    Fresh,
    /// Listening: smoltcp sockets waiting for handshakes, and connections
    /// ready for accept.
    Listening {
        waiting: Vec<SocketHandle>,
        ready: Vec<SocketHandle>,
        backlog: usize,
    },
    /// Connecting or connected.
    Stream(SocketHandle),
    /// A UDP socket.
    Datagram(SocketHandle),
}

/// Options recorded per socket (the ones with an effect are applied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// SO_REUSEADDR.
    pub reuse_addr: bool,
    /// TCP_NODELAY (Nagle off).
    pub no_delay: bool,
    /// SO_KEEPALIVE.
    pub keepalive: bool,
    /// SO_RCVTIMEO in nanoseconds (0: wait forever).
    pub recv_timeout: u64,
    /// SO_SNDTIMEO in nanoseconds (0: wait forever).
    pub send_timeout: u64,
}

#[derive(Debug)]
struct Sock {
    kind: Kind,
    state: State,
    bound: Option<Addr>,
    opts: Options,
    /// The receiving half was shut down.
    rd_shut: bool,
    /// When `connect` started (stack time, ms), for telling a timeout from
    /// a refusal.
    connect_started: Option<u64>,
    /// A UDP socket's connected peer: the default destination, and the
    /// only source it receives from.
    peer: Option<Addr>,
}

/// Readiness, for poll/epoll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready {
    /// Data, a connection to accept, or end of file.
    pub read: bool,
    /// Room to send.
    pub write: bool,
    /// The connection is finished (both directions).
    pub hangup: bool,
    /// A pending error (reset, refused).
    pub error: bool,
}

/// Bytes of each receive and send buffer of an outgoing TCP connection
/// (downloads want a large window).
pub const TCP_BUFFER: usize = 256 * 1024;
/// Bytes of each buffer of an accepted TCP connection.
pub const ACCEPT_BUFFER: usize = 64 * 1024;
/// Bytes of each buffer of a TCP socket made while the budget is under
/// pressure (more than half used).
pub const SMALL_BUFFER: usize = 16 * 1024;
/// Idle listening sockets kept ready per listening socket.
pub const SPARES: usize = 4;
/// The largest listen backlog (Linux's default `somaxconn`).
pub const MAX_BACKLOG: usize = 4096;
/// The socket buffer budget until [`Sockets::set_memory_limit`] changes it.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
/// A closed connection whose peer never finishes the close is aborted
/// after this long (Linux's tcp_fin_timeout is 60 s).
pub const ORPHAN_TIMEOUT_MS: u64 = 60_000;
/// Datagrams and bytes a UDP socket buffers.
const UDP_PACKETS: usize = 64;
const UDP_BYTES: usize = 64 * 1024;
/// Bytes charged for a UDP socket's buffers.
const UDP_MEMORY: usize =
    2 * (UDP_BYTES + UDP_PACKETS * core::mem::size_of::<udp::PacketMetadata>());
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;
/// A connection attempt without an answer, or a connection whose peer
/// stops acknowledging queued data, is given up after this long (Linux
/// gives up a connect after about 127 s with its default SYN retries).
pub const TCP_TIMEOUT_MS: u64 = 127_000;

/// Counts for `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Open sockets (descriptors' view).
    pub sockets: usize,
    /// TCP sockets open by programs (listening, connecting, connected).
    pub tcp_in_use: usize,
    /// Closed connections still finishing their close.
    pub tcp_orphans: usize,
    /// smoltcp TCP sockets in all (also listeners' spare sockets).
    pub tcp_allocated: usize,
    /// UDP sockets with buffers.
    pub udp_in_use: usize,
    /// Bytes of socket buffers in use.
    pub memory: usize,
    /// Of which UDP buffers.
    pub udp_memory: usize,
    /// The buffer budget.
    pub memory_limit: usize,
}

/// The socket table.
#[derive(Debug)]
pub struct Sockets {
    socks: BTreeMap<Id, Sock>,
    next_id: Id,
    next_port: u16,
    /// Closed connections finishing their FIN exchange, with the time they
    /// were closed.
    closing: Vec<(SocketHandle, u64)>,
    /// Listening sockets.
    listening: Vec<Id>,
    /// Buffer bytes charged to each smoltcp socket.
    charged: BTreeMap<SocketHandle, usize>,
    memory: usize,
    memory_limit: usize,
}

impl Default for Sockets {
    fn default() -> Self {
        Self::new()
    }
}

fn tcp_socket(buffer: usize) -> tcp::Socket<'static> {
    let mut t = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; buffer]),
        tcp::SocketBuffer::new(vec![0; buffer]),
    );
    t.set_timeout(Some(smoltcp::time::Duration::from_millis(TCP_TIMEOUT_MS)));
    t
}

fn v4(ep: IpEndpoint) -> Addr {
    match ep.addr {
        IpAddress::Ipv4(a) => (a, ep.port),
    }
}

impl Sockets {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            socks: BTreeMap::new(),
            next_id: 0,
            next_port: *EPHEMERAL.start(),
            closing: Vec::new(),
            listening: Vec::new(),
            charged: BTreeMap::new(),
            memory: 0,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }

    /// Sets the budget for socket buffers (sockets that already have
    /// buffers keep them).
    pub fn set_memory_limit(&mut self, bytes: usize) {
        self.memory_limit = bytes;
    }

    /// Counts for `/proc/net/sockstat`.
    pub fn stats(&self) -> Stats {
        let mut st = Stats {
            sockets: self.socks.len(),
            tcp_orphans: self.closing.len(),
            memory: self.memory,
            memory_limit: self.memory_limit,
            ..Stats::default()
        };
        for s in self.socks.values() {
            match s.state {
                State::Datagram(_) => st.udp_in_use += 1,
                _ if s.kind == Kind::Tcp => st.tcp_in_use += 1,
                _ => {}
            }
        }
        st.tcp_allocated = self.charged.len() - st.udp_in_use;
        st.udp_memory = st.udp_in_use * UDP_MEMORY;
        st
    }

    /// The buffer size for a new TCP socket that would like `want` bytes
    /// per direction: `want` while less than half the budget is used,
    /// [`SMALL_BUFFER`] while it fits, else none.
    fn tcp_buffer(&self, want: usize) -> Result<usize, Error> {
        if self.memory + 2 * want <= self.memory_limit / 2 {
            Ok(want)
        } else if self.memory + 2 * SMALL_BUFFER <= self.memory_limit {
            Ok(SMALL_BUFFER.min(want))
        } else {
            Err(Error::NoBuffers)
        }
    }

    /// Adds a socket to the stack, charging `bytes` of buffers to it.
    fn add<S: smoltcp::socket::AnySocket<'static>>(
        &mut self,
        stack: &mut Stack,
        socket: S,
        bytes: usize,
    ) -> SocketHandle {
        let h = stack.sockets.add(socket);
        self.charged.insert(h, bytes);
        self.memory += bytes;
        h
    }

    /// Removes a socket from the stack and releases its buffers.
    fn remove(&mut self, stack: &mut Stack, h: SocketHandle) {
        stack.sockets.remove(h);
        if let Some(b) = self.charged.remove(&h) {
            self.memory -= b;
        }
    }

    /// A spare socket listening on `port`, if the budget allows.
    fn listener(&mut self, stack: &mut Stack, port: u16) -> Result<SocketHandle, Error> {
        let size = self.tcp_buffer(ACCEPT_BUFFER)?;
        let mut t = tcp_socket(size);
        t.listen(IpListenEndpoint { addr: None, port })
            .map_err(|_| Error::Invalid)?;
        Ok(self.add(stack, t, 2 * size))
    }

    fn sock(&mut self, id: Id) -> Result<&mut Sock, Error> {
        self.socks.get_mut(&id).ok_or(Error::BadId)
    }

    /// A new socket.
    pub fn create(&mut self, kind: Kind) -> Id {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.socks.insert(
            id,
            Sock {
                kind,
                state: State::Fresh,
                bound: None,
                opts: Options::default(),
                rd_shut: false,
                connect_started: None,
                peer: None,
            },
        );
        id
    }

    /// Whether socket `id` is listening.
    pub fn is_listening(&self, id: Id) -> bool {
        self.socks
            .get(&id)
            .is_some_and(|s| matches!(s.state, State::Listening { .. }))
    }

    /// Kind of socket `id`.
    pub fn kind(&self, id: Id) -> Result<Kind, Error> {
        self.socks.get(&id).map(|s| s.kind).ok_or(Error::BadId)
    }

    /// Options of socket `id`.
    pub fn options(&mut self, id: Id) -> Result<&mut Options, Error> {
        Ok(&mut self.sock(id)?.opts)
    }

    /// Applies TCP_NODELAY to a connected socket.
    pub fn apply_options(&mut self, stack: &mut Stack, id: Id) -> Result<(), Error> {
        let s = self.sock(id)?;
        let nodelay = s.opts.no_delay;
        if let State::Stream(h) = s.state {
            stack
                .sockets
                .get_mut::<tcp::Socket>(h)
                .set_nagle_enabled(!nodelay);
        }
        Ok(())
    }

    fn port_in_use(&self, stack: &Stack, port: u16, kind: Kind, except: Id) -> bool {
        self.socks.iter().any(|(&i, s)| {
            i != except
                && s.kind == kind
                && s.bound.is_some_and(|b| b.1 == port)
                && match &s.state {
                    State::Listening { .. } | State::Datagram(_) => true,
                    State::Stream(h) => {
                        kind == Kind::Tcp
                            && stack.sockets.get::<tcp::Socket>(*h).state() != tcp::State::TimeWait
                    }
                    State::Fresh => true,
                }
        })
    }

    fn ephemeral(&mut self, stack: &Stack, kind: Kind) -> Result<u16, Error> {
        let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p == *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                p + 1
            };
            if !self.port_in_use(stack, p, kind, 0) {
                return Ok(p);
            }
        }
        Err(Error::NoBuffers)
    }

    /// bind(2). Port 0 picks an ephemeral port. Only the unspecified
    /// address or the interface's own may be bound.
    pub fn bind(&mut self, stack: &Stack, id: Id, addr: Addr) -> Result<(), Error> {
        let kind = self.kind(id)?;
        if self.sock(id)?.bound.is_some() {
            return Err(Error::Invalid);
        }
        let ours = stack.settings().map(|s| s.address.address());
        if !addr.0.is_unspecified()
            && Some(addr.0) != ours
            && addr.0 != Ipv4Address::new(127, 0, 0, 1)
        {
            return Err(Error::Unreachable);
        }
        let port = if addr.1 == 0 {
            self.ephemeral(stack, kind)?
        } else {
            if self.port_in_use(stack, addr.1, kind, id) {
                return Err(Error::AddrInUse);
            }
            addr.1
        };
        self.sock(id)?.bound = Some((addr.0, port));
        Ok(())
    }

    /// The bound (or connected) local address.
    pub fn local_addr(&mut self, stack: &Stack, id: Id) -> Result<Addr, Error> {
        let s = self.sock(id)?;
        if let State::Stream(h) = s.state
            && let Some(ep) = stack.sockets.get::<tcp::Socket>(h).local_endpoint()
        {
            return Ok(v4(ep));
        }
        let bound = s.bound.unwrap_or((Ipv4Address::UNSPECIFIED, 0));
        // A connected UDP socket reports the source address its datagrams
        // carry.
        if let Some(peer) = s.peer
            && bound.0.is_unspecified()
        {
            let ip = if peer.0.is_loopback() {
                Ipv4Address::new(127, 0, 0, 1)
            } else {
                stack
                    .settings()
                    .map_or(Ipv4Address::UNSPECIFIED, |st| st.address.address())
            };
            return Ok((ip, bound.1));
        }
        Ok(bound)
    }

    /// The peer's address.
    pub fn peer_addr(&mut self, stack: &Stack, id: Id) -> Result<Addr, Error> {
        match self.sock(id)?.state {
            State::Stream(h) => {
                let t = stack.sockets.get::<tcp::Socket>(h);
                match t.remote_endpoint() {
                    Some(ep) if t.state() != tcp::State::SynSent => Ok(v4(ep)),
                    _ => Err(Error::NotConnected),
                }
            }
            _ => self.sock(id)?.peer.ok_or(Error::NotConnected),
        }
    }

    /// A UDP socket's connected peer.
    pub fn udp_peer(&self, id: Id) -> Option<Addr> {
        self.socks.get(&id).and_then(|s| s.peer)
    }

    /// listen(2). The backlog (1 to [`MAX_BACKLOG`]) bounds the connections that are
    /// handshaking or waiting for accept; beyond it new connections are
    /// refused (Linux would drop their SYN and let the client retry).
    pub fn listen(&mut self, stack: &mut Stack, id: Id, backlog: usize) -> Result<(), Error> {
        if self.kind(id)? != Kind::Tcp {
            return Err(Error::NotSupported);
        }
        if self.sock(id)?.bound.is_none() {
            self.bind(stack, id, (Ipv4Address::UNSPECIFIED, 0))?;
        }
        let backlog = backlog.clamp(1, MAX_BACKLOG);
        let s = self.sock(id)?;
        let port = s.bound.map_or(0, |b| b.1);
        match &mut s.state {
            State::Fresh => {}
            // listen() again only changes the backlog.
            State::Listening { backlog: b, .. } => {
                *b = backlog;
                return Ok(());
            }
            _ => return Err(Error::Invalid),
        }
        // At least one listener, or ENOBUFS; more as the budget allows
        // (`refill` keeps trying).
        let mut waiting = vec![self.listener(stack, port)?];
        while waiting.len() < SPARES.min(backlog) {
            match self.listener(stack, port) {
                Ok(h) => waiting.push(h),
                Err(_) => break,
            }
        }
        self.sock(id)?.state = State::Listening {
            waiting,
            ready: Vec::new(),
            backlog,
        };
        self.listening.push(id);
        Ok(())
    }

    /// Moves handshaken connections of listening sockets to their accept
    /// queues, replaces them, and reaps finished closes (call after every
    /// poll).
    pub fn update(&mut self, stack: &mut Stack) {
        self.refill(stack);
        self.reap(stack);
    }

    /// Moves handshaken connections of listening sockets to their accept
    /// queues and replaces them (cheap enough to call after every frame:
    /// see [`Stack::poll_with`]).
    pub fn refill(&mut self, stack: &mut Stack) {
        let mut full = Vec::new();
        for i in 0..self.listening.len() {
            let id = self.listening[i];
            let Some(s) = self.socks.get_mut(&id) else {
                continue;
            };
            let port = s.bound.map_or(0, |b| b.1);
            let State::Listening {
                waiting,
                ready,
                backlog,
            } = &mut s.state
            else {
                continue;
            };
            let mut j = 0;
            let mut spares = 0;
            while j < waiting.len() {
                let st = stack.sockets.get::<tcp::Socket>(waiting[j]).state();
                match st {
                    tcp::State::Listen => {
                        spares += 1;
                        j += 1;
                    }
                    tcp::State::SynReceived => j += 1,
                    tcp::State::Closed => {
                        // Aborted during the handshake: listen again.
                        let h = waiting[j];
                        if stack
                            .sockets
                            .get_mut::<tcp::Socket>(h)
                            .listen(IpListenEndpoint { addr: None, port })
                            .is_ok()
                        {
                            spares += 1;
                        }
                        j += 1;
                    }
                    _ => {
                        let h = waiting.swap_remove(j);
                        ready.push(h);
                    }
                }
            }
            // A few spares, and at most `backlog` connections pending:
            // handshaking or waiting for accept.
            let missing = SPARES
                .saturating_sub(spares)
                .min(backlog.saturating_sub(waiting.len() + ready.len()));
            let mut made = Vec::new();
            for _ in 0..missing {
                match self.listener(stack, port) {
                    Ok(h) => made.push(h),
                    Err(_) => break,
                }
            }
            let made_count = made.len();
            let Some(State::Listening { waiting, .. }) =
                self.socks.get_mut(&id).map(|s| &mut s.state)
            else {
                continue;
            };
            waiting.extend(made);
            // Without a spare a SYN is dropped, so the client retries
            // later (as Linux does with a full accept queue), instead of
            // being refused.
            if spares + made_count == 0 {
                full.push(port);
            }
        }
        stack.set_full_ports(full);
    }

    /// Reaps closed connections; aborts orphans whose peer does not finish
    /// the close.
    fn reap(&mut self, stack: &mut Stack) {
        let now = stack.now_ms();
        let mut i = 0;
        while i < self.closing.len() {
            let (h, since) = self.closing[i];
            let t = stack.sockets.get_mut::<tcp::Socket>(h);
            if now.saturating_sub(since) >= ORPHAN_TIMEOUT_MS && t.state() != tcp::State::Closed {
                t.abort();
            }
            if matches!(t.state(), tcp::State::Closed | tcp::State::TimeWait) {
                self.closing.swap_remove(i);
                self.remove(stack, h);
            } else {
                i += 1;
            }
        }
    }

    /// accept(2): a new connected socket and its peer.
    pub fn accept(&mut self, stack: &mut Stack, id: Id) -> Result<(Id, Addr), Error> {
        self.update(stack);
        let s = self.sock(id)?;
        let State::Listening { ready, .. } = &mut s.state else {
            return Err(Error::Invalid);
        };
        if ready.is_empty() {
            return Err(Error::WouldBlock);
        }
        let h = ready.remove(0);
        let nodelay = s.opts.no_delay;
        let t = stack.sockets.get_mut::<tcp::Socket>(h);
        t.set_nagle_enabled(!nodelay);
        let peer = t
            .remote_endpoint()
            .map(v4)
            .unwrap_or((Ipv4Address::UNSPECIFIED, 0));
        let local = t.local_endpoint().map(v4);
        let new = self.create(Kind::Tcp);
        let n = self.sock(new)?;
        n.state = State::Stream(h);
        n.bound = local;
        self.update(stack);
        Ok((new, peer))
    }

    /// connect(2) for TCP: starts the handshake (`Err(WouldBlock)` means in
    /// progress: wait for writability, then [`Sockets::connect_result`]).
    /// For UDP it sets the default destination.
    pub fn connect(&mut self, stack: &mut Stack, id: Id, to: Addr) -> Result<(), Error> {
        if to.1 == 0 || to.0.is_unspecified() {
            return Err(Error::Unreachable);
        }
        match self.kind(id)? {
            Kind::Udp => {
                if stack.settings().is_none() && !to.0.is_loopback() {
                    return Err(Error::Unreachable);
                }
                self.udp_handle(stack, id)?;
                self.sock(id)?.peer = Some(to);
                Ok(())
            }
            Kind::Tcp => {
                match self.sock(id)?.state {
                    State::Fresh => {}
                    State::Stream(_) => return Err(Error::IsConnected),
                    _ => return Err(Error::Invalid),
                }
                if stack.settings().is_none() && !to.0.is_loopback() {
                    return Err(Error::Unreachable);
                }
                let local_port = match self.sock(id)?.bound {
                    Some((_, p)) => p,
                    None => {
                        let p = self.ephemeral(stack, Kind::Tcp)?;
                        self.sock(id)?.bound = Some((Ipv4Address::UNSPECIFIED, p));
                        p
                    }
                };
                let size = self.tcp_buffer(TCP_BUFFER)?;
                let mut t = tcp_socket(size);
                let nodelay = self.sock(id)?.opts.no_delay;
                t.set_nagle_enabled(!nodelay);
                let cx = stack.iface_context();
                t.connect(cx, (IpAddress::Ipv4(to.0), to.1), local_port)
                    .map_err(|_| Error::Unreachable)?;
                let h = self.add(stack, t, 2 * size);
                let now = stack.now_ms();
                let s = self.sock(id)?;
                s.state = State::Stream(h);
                s.connect_started = Some(now);
                Err(Error::WouldBlock)
            }
        }
    }

    /// The outcome of a connect in progress: Ok once established,
    /// `WouldBlock` while the handshake runs, `Refused` if the peer reset
    /// it, `TimedOut` if nobody answered for [`TCP_TIMEOUT_MS`].
    pub fn connect_result(&mut self, stack: &Stack, id: Id) -> Result<(), Error> {
        let s = self.sock(id)?;
        let started = s.connect_started;
        match s.state {
            State::Stream(h) => match stack.sockets.get::<tcp::Socket>(h).state() {
                tcp::State::SynSent | tcp::State::SynReceived => Err(Error::WouldBlock),
                tcp::State::Closed
                    if started
                        .is_some_and(|t| stack.now_ms().saturating_sub(t) >= TCP_TIMEOUT_MS) =>
                {
                    Err(Error::TimedOut)
                }
                tcp::State::Closed => Err(Error::Refused),
                _ => Ok(()),
            },
            _ => Err(Error::NotConnected),
        }
    }

    /// send(2) on a connected TCP socket: bytes queued.
    pub fn send(&mut self, stack: &mut Stack, id: Id, data: &[u8]) -> Result<usize, Error> {
        let State::Stream(h) = self.sock(id)?.state else {
            return Err(Error::NotConnected);
        };
        let t = stack.sockets.get_mut::<tcp::Socket>(h);
        match t.state() {
            tcp::State::SynSent | tcp::State::SynReceived => return Err(Error::WouldBlock),
            tcp::State::Closed => return Err(Error::Reset),
            _ => {}
        }
        if !t.may_send() {
            return Err(Error::Pipe);
        }
        if data.is_empty() {
            return Ok(0);
        }
        match t.send_slice(data) {
            Ok(0) => Err(Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(_) => Err(Error::Pipe),
        }
    }

    /// recv(2) on a connected TCP socket: bytes read, 0 at end of file.
    pub fn recv(&mut self, stack: &mut Stack, id: Id, buf: &mut [u8]) -> Result<usize, Error> {
        let s = self.sock(id)?;
        let rd_shut = s.rd_shut;
        let State::Stream(h) = s.state else {
            return Err(Error::NotConnected);
        };
        if rd_shut {
            return Ok(0);
        }
        let t = stack.sockets.get_mut::<tcp::Socket>(h);
        match t.recv_slice(buf) {
            Ok(0) if !buf.is_empty() => Err(Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(tcp::RecvError::Finished) => Ok(0),
            Err(tcp::RecvError::InvalidState) => match t.state() {
                tcp::State::SynSent | tcp::State::SynReceived => Err(Error::WouldBlock),
                tcp::State::Closed => Err(Error::Reset),
                _ => Ok(0),
            },
        }
    }

    /// shutdown(2): `read` and/or `write` halves.
    pub fn shutdown(
        &mut self,
        stack: &mut Stack,
        id: Id,
        read: bool,
        write: bool,
    ) -> Result<(), Error> {
        let s = self.sock(id)?;
        let State::Stream(h) = s.state else {
            return Err(Error::NotConnected);
        };
        if read {
            s.rd_shut = true;
        }
        if write {
            stack.sockets.get_mut::<tcp::Socket>(h).close();
        }
        Ok(())
    }

    /// close(2): the connection finishes gracefully in the background.
    pub fn close(&mut self, stack: &mut Stack, id: Id) {
        let Some(s) = self.socks.remove(&id) else {
            return;
        };
        let now = stack.now_ms();
        match s.state {
            State::Fresh => {}
            State::Listening { waiting, ready, .. } => {
                self.listening.retain(|&l| l != id);
                for h in waiting.into_iter().chain(ready) {
                    stack.sockets.get_mut::<tcp::Socket>(h).abort();
                    self.closing.push((h, now));
                }
            }
            State::Stream(h) => {
                let t = stack.sockets.get_mut::<tcp::Socket>(h);
                if s.rd_shut && t.can_recv() {
                    // Unread data: reset, as Linux does.
                    t.abort();
                } else {
                    t.close();
                }
                self.closing.push((h, now));
            }
            State::Datagram(h) => self.remove(stack, h),
        }
    }

    fn udp_handle(&mut self, stack: &mut Stack, id: Id) -> Result<SocketHandle, Error> {
        if let State::Datagram(h) = self.sock(id)?.state {
            return Ok(h);
        }
        if self.sock(id)?.bound.is_none() {
            self.bind(stack, id, (Ipv4Address::UNSPECIFIED, 0))?;
        }
        let port = self.sock(id)?.bound.map_or(0, |b| b.1);
        if self.memory + UDP_MEMORY > self.memory_limit {
            return Err(Error::NoBuffers);
        }
        let mut u = udp::Socket::new(
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BYTES],
            ),
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BYTES],
            ),
        );
        u.bind(port).map_err(|_| Error::AddrInUse)?;
        let h = self.add(stack, u, UDP_MEMORY);
        self.sock(id)?.state = State::Datagram(h);
        Ok(h)
    }

    /// sendto(2) on a UDP socket.
    pub fn send_to(
        &mut self,
        stack: &mut Stack,
        id: Id,
        data: &[u8],
        to: Addr,
    ) -> Result<usize, Error> {
        if self.kind(id)? != Kind::Udp {
            return Err(Error::IsConnected);
        }
        if data.len() > UDP_BYTES {
            return Err(Error::NoBuffers);
        }
        let h = self.udp_handle(stack, id)?;
        let u = stack.sockets.get_mut::<udp::Socket>(h);
        match u.send_slice(data, (IpAddress::Ipv4(to.0), to.1)) {
            Ok(()) => Ok(data.len()),
            Err(udp::SendError::BufferFull) => Err(Error::WouldBlock),
            Err(udp::SendError::Unaddressable) => Err(Error::Unreachable),
        }
    }

    /// recvfrom(2) on a UDP socket: bytes copied (the rest of the datagram
    /// is dropped, as Linux does) and the sender.
    pub fn recv_from(
        &mut self,
        stack: &mut Stack,
        id: Id,
        buf: &mut [u8],
    ) -> Result<(usize, Addr), Error> {
        let h = self.udp_handle(stack, id)?;
        let peer = self.sock(id)?.peer;
        let u = stack.sockets.get_mut::<udp::Socket>(h);
        loop {
            match u.recv() {
                Ok((data, meta)) => {
                    let from = v4(meta.endpoint);
                    // A connected socket hears only its peer.
                    if peer.is_some_and(|p| p != from) {
                        continue;
                    }
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    return Ok((n, from));
                }
                Err(_) => return Err(Error::WouldBlock),
            }
        }
    }

    /// What socket `id` is ready for.
    pub fn ready(&mut self, stack: &Stack, id: Id) -> Ready {
        let Some(s) = self.socks.get(&id) else {
            return Ready::default();
        };
        match &s.state {
            State::Fresh => Ready {
                write: s.kind == Kind::Udp,
                hangup: s.kind == Kind::Tcp,
                ..Ready::default()
            },
            State::Listening { ready, .. } => Ready {
                read: !ready.is_empty(),
                ..Ready::default()
            },
            State::Stream(h) => {
                let t = stack.sockets.get::<tcp::Socket>(*h);
                let st = t.state();
                let connecting = matches!(st, tcp::State::SynSent | tcp::State::SynReceived);
                let closed = st == tcp::State::Closed;
                Ready {
                    read: !connecting && (t.can_recv() || !t.may_recv() || s.rd_shut),
                    write: !connecting && (t.can_send() || !t.may_send()),
                    hangup: closed || (!t.may_send() && !t.may_recv()),
                    error: closed && !t.can_recv(),
                }
            }
            State::Datagram(h) => {
                let u = stack.sockets.get::<udp::Socket>(*h);
                Ready {
                    read: u.can_recv(),
                    write: u.can_send(),
                    ..Ready::default()
                }
            }
        }
    }

    /// Connections that still have data to deliver or a close to finish
    /// (the kernel lets them finish before powering off).
    pub fn unfinished(&self, stack: &Stack) -> usize {
        let open = self.socks.values().filter(|s| match s.state {
            State::Stream(h) => stack.sockets.get::<tcp::Socket>(h).send_queue() > 0,
            _ => false,
        });
        let closing = self.closing.iter().filter(|&&(h, _)| {
            !matches!(
                stack.sockets.get::<tcp::Socket>(h).state(),
                tcp::State::Closed | tcp::State::TimeWait
            )
        });
        open.count() + closing.count()
    }

    /// Bytes waiting to be read (FIONREAD): for TCP all of them, for UDP
    /// the size of the next datagram (as Linux; glibc's resolver sizes its
    /// answer buffer with it).
    pub fn pending(&mut self, stack: &mut Stack, id: Id) -> usize {
        match self.socks.get(&id).map(|s| (&s.state, s.peer)) {
            Some((State::Stream(h), _)) => stack.sockets.get::<tcp::Socket>(*h).recv_queue(),
            Some((State::Datagram(h), peer)) => {
                let u = stack.sockets.get_mut::<udp::Socket>(*h);
                // Datagrams a connected socket would not accept are
                // dropped here, as `recv_from` would.
                loop {
                    match u.peek() {
                        Ok((_, meta)) if peer.is_some_and(|p| p != v4(meta.endpoint)) => {
                            let _ = u.recv();
                        }
                        Ok((data, _)) => return data.len(),
                        Err(_) => return 0,
                    }
                }
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{Ipv4Settings, Mode};
    use smoltcp::wire::Ipv4Cidr;

    use crate::wire::{WireNic, pair};

    /// Two hosts on a cable, each with a stack and a socket table, and a
    /// mock clock.
    struct Net {
        nics: [WireNic; 2],
        stacks: [Stack; 2],
        socks: [Sockets; 2],
        now: u64,
    }

    const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    impl Net {
        fn new() -> Self {
            let (w0, w1) = pair();
            let mut nics = [w0, w1];
            let st = |ip| {
                Mode::Static(Ipv4Settings {
                    address: Ipv4Cidr::new(ip, 24),
                    gateway: None,
                    dns: Vec::new(),
                })
            };
            let (n0, n1) = nics.split_at_mut(1);
            let stacks = [
                Stack::new(&mut n0[0], st(A), 1, 0),
                Stack::new(&mut n1[0], st(B), 2, 0),
            ];
            Self {
                nics,
                stacks,
                socks: [Sockets::new(), Sockets::new()],
                now: 0,
            }
        }

        fn step(&mut self) {
            for i in 0..2 {
                let socks = &mut self.socks[i];
                self.stacks[i].poll_with(&mut self.nics[i], self.now, &mut |st| socks.refill(st));
                self.socks[i].update(&mut self.stacks[i]);
            }
            self.now += 1;
        }

        /// Steps until `f` returns Some, at most 10 simulated seconds.
        fn until<T>(&mut self, mut f: impl FnMut(&mut Self) -> Option<T>) -> T {
            for _ in 0..10_000 {
                if let Some(v) = f(self) {
                    return v;
                }
                self.step();
            }
            panic!("condition not reached by t={} ms", self.now)
        }

        fn listen(&mut self, host: usize, port: u16, backlog: usize) -> Id {
            let s = self.socks[host].create(Kind::Tcp);
            self.socks[host]
                .bind(&self.stacks[host], s, (Ipv4Address::UNSPECIFIED, port))
                .unwrap();
            self.socks[host]
                .listen(&mut self.stacks[host], s, backlog)
                .unwrap();
            s
        }

        fn connect(&mut self, host: usize, to: Addr) -> Id {
            let c = self.socks[host].create(Kind::Tcp);
            assert_eq!(
                self.socks[host].connect(&mut self.stacks[host], c, to),
                Err(Error::WouldBlock)
            );
            c
        }

        fn accept(&mut self, host: usize, l: Id) -> (Id, Addr) {
            self.until(|n| n.socks[host].accept(&mut n.stacks[host], l).ok())
        }
    }

    #[test]
    fn accept_connect_and_ten_megabytes_both_ways() {
        let mut n = Net::new();
        let l = n.listen(1, 80, 4);
        let c = n.connect(0, (B, 80));
        let (s, peer) = n.accept(1, l);
        assert_eq!(peer.0, A);
        n.until(|n| n.socks[0].connect_result(&n.stacks[0], c).ok());
        assert_eq!(n.socks[0].peer_addr(&n.stacks[0], c), Ok((B, 80)));
        assert_eq!(n.socks[1].local_addr(&n.stacks[1], s), Ok((B, 80)));
        let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 253) as u8).collect();
        for (from, to, fid, tid) in [(0, 1, c, s), (1, 0, s, c)] {
            let (mut sent, mut got) = (0, Vec::new());
            let mut buf = vec![0u8; 65536];
            while got.len() < data.len() {
                if sent < data.len()
                    && let Ok(k) = n.socks[from].send(&mut n.stacks[from], fid, &data[sent..])
                {
                    sent += k;
                }
                match n.socks[to].recv(&mut n.stacks[to], tid, &mut buf) {
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                    Err(Error::WouldBlock) => n.step(),
                    Err(e) => panic!("recv: {e:?}"),
                }
                assert!(n.now < 200_000, "too slow");
            }
            assert!(got == data);
        }
    }

    #[test]
    fn half_close_then_eof_and_reset_on_unread_close() {
        let mut n = Net::new();
        let l = n.listen(1, 7, 1);
        let c = n.connect(0, (B, 7));
        let (s, _) = n.accept(1, l);
        n.socks[0].send(&mut n.stacks[0], c, b"hello").unwrap();
        n.socks[0]
            .shutdown(&mut n.stacks[0], c, false, true)
            .unwrap();
        assert_eq!(n.socks[0].send(&mut n.stacks[0], c, b"x"), Err(Error::Pipe));
        let mut buf = [0u8; 16];
        let got = n.until(|n| n.socks[1].recv(&mut n.stacks[1], s, &mut buf).ok());
        assert_eq!(&buf[..got], b"hello");
        // Then end of file, and the server may still answer.
        assert_eq!(
            n.until(|n| n.socks[1].recv(&mut n.stacks[1], s, &mut buf).ok()),
            0
        );
        assert!(n.socks[1].ready(&n.stacks[1], s).read);
        n.socks[1].send(&mut n.stacks[1], s, b"bye").unwrap();
        let got = n.until(|n| n.socks[0].recv(&mut n.stacks[0], c, &mut buf).ok());
        assert_eq!(&buf[..got], b"bye");
        // A reset: the server aborts; the client sees ECONNRESET.
        let c2 = n.connect(0, (B, 7));
        let (s2, _) = n.accept(1, l);
        n.socks[0].send(&mut n.stacks[0], c2, b"unread").unwrap();
        n.until(|n| (n.socks[1].pending(&mut n.stacks[1], s2) > 0).then_some(()));
        n.socks[1]
            .shutdown(&mut n.stacks[1], s2, true, false)
            .unwrap();
        n.socks[1].close(&mut n.stacks[1], s2);
        let e = n.until(|n| match n.socks[0].recv(&mut n.stacks[0], c2, &mut buf) {
            Err(Error::WouldBlock) => None,
            r => Some(r),
        });
        assert_eq!(e, Err(Error::Reset));
        assert!(n.socks[0].ready(&n.stacks[0], c2).error);
    }

    #[test]
    fn refused_connect_and_address_in_use() {
        let mut n = Net::new();
        let c = n.connect(0, (B, 9));
        let r = n.until(|n| match n.socks[0].connect_result(&n.stacks[0], c) {
            Err(Error::WouldBlock) => None,
            r => Some(r),
        });
        assert_eq!(r, Err(Error::Refused));
        let _l = n.listen(1, 80, 1);
        let other = n.socks[1].create(Kind::Tcp);
        assert_eq!(
            n.socks[1].bind(&n.stacks[1], other, (Ipv4Address::UNSPECIFIED, 80)),
            Err(Error::AddrInUse)
        );
        assert_eq!(
            n.socks[1].bind(&n.stacks[1], other, (Ipv4Address::new(1, 2, 3, 4), 81)),
            Err(Error::Unreachable)
        );
    }

    #[test]
    fn backlog_holds_pending_connections_and_many_connections_work() {
        let mut n = Net::new();
        let l = n.listen(1, 80, 4);
        let clients: Vec<Id> = (0..4).map(|_| n.connect(0, (B, 80))).collect();
        // All four complete their handshake before anyone accepts.
        n.until(|n| {
            clients
                .iter()
                .all(|&c| n.socks[0].connect_result(&n.stacks[0], c).is_ok())
                .then_some(())
        });
        // The queue is full: one more is not refused; its SYN is dropped
        // and retried (as Linux does), so it waits.
        let extra = n.connect(0, (B, 80));
        for _ in 0..500 {
            n.step();
        }
        assert_eq!(
            n.socks[0].connect_result(&n.stacks[0], extra),
            Err(Error::WouldBlock)
        );
        assert!(n.stacks[1].syn_drops() > 0);
        // Accepting one makes room: the retried SYN gets through.
        let mut servers = vec![n.accept(1, l).0];
        n.until(|n| n.socks[0].connect_result(&n.stacks[0], extra).ok());
        for _ in 0..4 {
            servers.push(n.accept(1, l).0);
        }
        // Then 32 more, four at a time, each sending a message.
        let mut more = Vec::new();
        for _ in 0..8 {
            let batch: Vec<Id> = (0..4).map(|_| n.connect(0, (B, 80))).collect();
            for _ in 0..4 {
                servers.push(n.accept(1, l).0);
            }
            more.extend(batch);
        }
        for (i, &c) in clients.iter().chain([&extra]).chain(&more).enumerate() {
            let msg = alloc::format!("client {i}");
            n.until(|n| n.socks[0].send(&mut n.stacks[0], c, msg.as_bytes()).ok());
        }
        let mut seen = Vec::new();
        for &s in &servers {
            let mut buf = [0u8; 64];
            let k = n.until(|n| n.socks[1].recv(&mut n.stacks[1], s, &mut buf).ok());
            seen.push(alloc::string::String::from_utf8(buf[..k].to_vec()).unwrap());
        }
        seen.sort();
        assert_eq!(seen.len(), 37);
        seen.dedup();
        assert_eq!(seen.len(), 37, "every connection is distinct");
    }

    #[test]
    fn a_burst_of_syns_all_find_listeners_up_to_the_backlog() {
        let mut n = Net::new();
        let l = n.listen(1, 80, 1024);
        // 300 SYNs arrive in one poll; nobody accepts meanwhile.
        let clients: Vec<Id> = (0..300).map(|_| n.connect(0, (B, 80))).collect();
        n.until(|n| {
            clients
                .iter()
                .all(|&c| n.socks[0].connect_result(&n.stacks[0], c).is_ok())
                .then_some(())
        });
        assert_eq!(n.stacks[1].syn_drops(), 0);
        for _ in 0..300 {
            n.accept(1, l);
        }
        // Spares are few: the accepted 300 and SPARES listeners.
        assert_eq!(n.socks[1].stats().tcp_allocated, 300 + SPARES);
    }

    #[test]
    fn a_buffer_budget_shrinks_then_refuses_new_sockets_and_is_returned() {
        let mut n = Net::new();
        let limit = 2 << 20;
        n.socks[1].set_memory_limit(limit);
        let l = n.listen(1, 80, 8);
        // The listener's spare sockets have full-size buffers.
        assert_eq!(n.socks[1].stats().memory, SPARES * 2 * ACCEPT_BUFFER);
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        // Connections keep coming; the server takes them all.
        for _ in 0..200 {
            let c = n.connect(0, (B, 80));
            let accepted = n.until(|n| {
                if let Ok((s, _)) = n.socks[1].accept(&mut n.stacks[1], l) {
                    return Some(Some(s));
                }
                // A full budget leaves the client waiting.
                (n.socks[1].stats().memory + 2 * SMALL_BUFFER > limit && n.now > 3000)
                    .then_some(None)
            });
            clients.push(c);
            match accepted {
                Some(s) => servers.push(s),
                None => break,
            }
            let st = n.socks[1].stats();
            assert!(st.memory <= limit, "{st:?}");
        }
        let st = n.socks[1].stats();
        assert!(
            servers.len() > 8 && servers.len() < 200,
            "{} accepted, {st:?}",
            servers.len()
        );
        assert!(st.memory + 2 * SMALL_BUFFER > limit, "{st:?}");
        // New sockets beyond the budget: ENOBUFS.
        let u = n.socks[1].create(Kind::Udp);
        assert_eq!(
            n.socks[1].send_to(&mut n.stacks[1], u, b"x", (A, 9)),
            Err(Error::NoBuffers)
        );
        // Every accepted connection works.
        for (i, &s) in servers.iter().enumerate() {
            let msg = alloc::format!("{i}");
            n.until(|n| n.socks[1].send(&mut n.stacks[1], s, msg.as_bytes()).ok());
            let mut buf = [0u8; 8];
            let k = n.until(|n| n.socks[0].recv(&mut n.stacks[0], clients[i], &mut buf).ok());
            assert_eq!(&buf[..k], msg.as_bytes());
        }
        // Everything closed: the budget is whole again.
        for &c in &clients {
            n.socks[0].close(&mut n.stacks[0], c);
        }
        for &s in &servers {
            n.socks[1].close(&mut n.stacks[1], s);
        }
        n.socks[1].close(&mut n.stacks[1], l);
        n.socks[1].close(&mut n.stacks[1], u);
        n.until(|n| (n.socks[1].stats().memory == 0).then_some(()));
        let st = n.socks[1].stats();
        assert_eq!((st.sockets, st.tcp_orphans, st.tcp_allocated), (0, 0, 0));
    }

    #[test]
    fn an_orphan_whose_peer_never_closes_is_aborted_after_a_minute() {
        let mut n = Net::new();
        let l = n.listen(1, 80, 1);
        let c = n.connect(0, (B, 80));
        let (s, _) = n.accept(1, l);
        n.until(|n| n.socks[0].connect_result(&n.stacks[0], c).ok());
        n.socks[1].close(&mut n.stacks[1], l);
        // The server closes; the client acknowledges but never closes.
        n.socks[1].close(&mut n.stacks[1], s);
        for _ in 0..1000 {
            n.step();
        }
        assert_eq!(n.socks[1].stats().tcp_orphans, 1);
        let start = n.now;
        while n.socks[1].stats().tcp_orphans > 0 {
            n.step();
            assert!(n.now - start < ORPHAN_TIMEOUT_MS + 1000, "never aborted");
        }
        assert!(n.now - start >= ORPHAN_TIMEOUT_MS - 1000);
        assert_eq!(n.socks[1].stats().memory, 0);
    }

    #[test]
    fn a_program_can_connect_to_its_own_listener() {
        let mut n = Net::new();
        for to in [Ipv4Address::new(127, 0, 0, 1), A] {
            let l = n.listen(0, 5000, 2);
            let c = n.connect(0, (to, 5000));
            let (s, peer) = n.accept(0, l);
            assert_eq!(peer.0, to, "the peer is the address we dialled from");
            n.until(|n| n.socks[0].connect_result(&n.stacks[0], c).ok());
            n.socks[0].send(&mut n.stacks[0], c, b"ping").unwrap();
            let mut buf = [0u8; 8];
            let k = n.until(|n| n.socks[0].recv(&mut n.stacks[0], s, &mut buf).ok());
            assert_eq!(&buf[..k], b"ping");
            // Nothing went out on the cable.
            assert!(
                n.nics[1]
                    .rx
                    .lock()
                    .unwrap()
                    .iter()
                    .all(|f| f[12..14] != [0x08, 0x00])
            );
            for id in [c, s, l] {
                n.socks[0].close(&mut n.stacks[0], id);
            }
            n.until(|n| (n.socks[0].unfinished(&n.stacks[0]) == 0).then_some(()));
        }
    }

    #[test]
    fn loopback_works_without_a_card_or_address() {
        let mut nic = crate::nic::NullNic;
        let mut stack = Stack::new(&mut nic, Mode::LoopbackOnly, 9, 0);
        let mut socks = Sockets::new();
        let l = socks.create(Kind::Tcp);
        socks
            .bind(&stack, l, (Ipv4Address::new(127, 0, 0, 1), 80))
            .unwrap();
        socks.listen(&mut stack, l, 1).unwrap();
        let c = socks.create(Kind::Tcp);
        let lo = Ipv4Address::new(127, 0, 0, 1);
        assert_eq!(
            socks.connect(&mut stack, c, (lo, 80)),
            Err(Error::WouldBlock)
        );
        let d = socks.create(Kind::Tcp);
        assert_eq!(
            socks.connect(&mut stack, d, (B, 80)),
            Err(Error::Unreachable),
            "nothing but loopback is reachable"
        );
        let mut accepted = None;
        for now in 0..1000 {
            stack.poll(&mut nic, now);
            socks.update(&mut stack);
            if let Ok((s, _)) = socks.accept(&mut stack, l) {
                accepted = Some(s);
                break;
            }
        }
        assert!(accepted.is_some(), "loopback connection accepted");
    }

    #[test]
    fn connect_to_a_silent_address_times_out() {
        let mut n = Net::new();
        // Nobody owns 10.0.0.3: ARP goes unanswered, the SYN never leaves.
        let c = n.connect(0, (Ipv4Address::new(10, 0, 0, 3), 80));
        let mut r = Err(Error::WouldBlock);
        while r == Err(Error::WouldBlock) && n.now < 2 * TCP_TIMEOUT_MS {
            n.now += 499;
            n.step();
            r = n.socks[0].connect_result(&n.stacks[0], c);
        }
        assert_eq!(r, Err(Error::TimedOut));
        assert!(
            n.now >= TCP_TIMEOUT_MS && n.now < TCP_TIMEOUT_MS + 5_000,
            "gave up at {} ms",
            n.now
        );
    }

    #[test]
    fn garbage_and_truncated_frames_leave_the_stack_working() {
        let mut n = Net::new();
        let l = n.listen(1, 80, 4);
        // A real connection, whose frames are then replayed truncated.
        let c = n.connect(0, (B, 80));
        let (s, _) = n.accept(1, l);
        n.socks[0].send(&mut n.stacks[0], c, &[7; 3000]).unwrap();
        let mut seen = Vec::new();
        for _ in 0..20 {
            seen.extend(n.nics[1].rx.lock().unwrap().iter().cloned());
            n.step();
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let frame: Vec<u8> = if i % 2 == 0 && !seen.is_empty() {
                // A real frame cut short, or with a flipped byte.
                let f = &seen[(rnd() as usize) % seen.len()];
                let mut g = f[..(rnd() as usize) % (f.len() + 1)].to_vec();
                if !g.is_empty() && i % 4 == 0 {
                    let k = (rnd() as usize) % g.len();
                    g[k] ^= 0xff;
                }
                g
            } else {
                // Random bytes, sometimes with a plausible Ethernet header.
                let len = (rnd() as usize) % 1600;
                let mut g: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
                if len >= 14 && i % 3 == 0 {
                    g[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
                    g[12..14].copy_from_slice(if i % 6 == 0 {
                        &[0x08, 0x00]
                    } else {
                        &[0x08, 0x06]
                    });
                }
                g
            };
            n.nics[0].tx.lock().unwrap().push_back(frame);
            if i % 100 == 0 {
                n.step();
            }
        }
        n.step();
        // The connection still carries data both ways, and new ones work.
        let mut buf = vec![0u8; 8192];
        let mut got = 0;
        while got < 3000 {
            match n.socks[1].recv(&mut n.stacks[1], s, &mut buf) {
                Ok(k) => got += k,
                Err(Error::WouldBlock) => n.step(),
                Err(e) => panic!("recv after garbage: {e:?}"),
            }
            assert!(n.now < 60_000, "stalled");
        }
        n.socks[1].send(&mut n.stacks[1], s, b"still here").unwrap();
        let k = n.until(|n| n.socks[0].recv(&mut n.stacks[0], c, &mut buf).ok());
        assert_eq!(&buf[..k], b"still here");
        let c2 = n.connect(0, (B, 80));
        n.accept(1, l);
        n.until(|n| n.socks[0].connect_result(&n.stacks[0], c2).ok());
    }

    #[test]
    fn udp_datagrams() {
        let mut n = Net::new();
        let a = n.socks[0].create(Kind::Udp);
        let b = n.socks[1].create(Kind::Udp);
        n.socks[1]
            .bind(&n.stacks[1], b, (Ipv4Address::UNSPECIFIED, 53))
            .unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            n.socks[1].recv_from(&mut n.stacks[1], b, &mut buf),
            Err(Error::WouldBlock)
        );
        n.socks[0]
            .send_to(&mut n.stacks[0], a, b"query", (B, 53))
            .unwrap();
        let (k, from) = n.until(|n| n.socks[1].recv_from(&mut n.stacks[1], b, &mut buf).ok());
        assert_eq!((k, &buf[..k]), (4, &b"quer"[..]), "truncated to the buffer");
        assert_eq!(from.0, A);
        n.socks[1]
            .send_to(&mut n.stacks[1], b, b"answer", from)
            .unwrap();
        let mut big = [0u8; 64];
        let (k, from2) = n.until(|n| n.socks[0].recv_from(&mut n.stacks[0], a, &mut big).ok());
        assert_eq!((&big[..k], from2), (&b"answer"[..], (B, 53)));
    }

    #[test]
    fn a_connected_udp_socket_hears_only_its_peer() {
        // Like glibc's resolver: connect, send without an address, receive.
        let mut n = Net::new();
        let server = n.socks[1].create(Kind::Udp);
        let other = n.socks[1].create(Kind::Udp);
        n.socks[1]
            .bind(&n.stacks[1], server, (Ipv4Address::UNSPECIFIED, 53))
            .unwrap();
        let c = n.socks[0].create(Kind::Udp);
        assert_eq!(
            n.socks[0].peer_addr(&n.stacks[0], c),
            Err(Error::NotConnected)
        );
        n.socks[0].connect(&mut n.stacks[0], c, (B, 53)).unwrap();
        assert_eq!(n.socks[0].peer_addr(&n.stacks[0], c), Ok((B, 53)));
        assert_eq!(n.socks[0].udp_peer(c), Some((B, 53)));
        let local = n.socks[0].local_addr(&n.stacks[0], c).unwrap();
        assert_eq!(local.0, A);
        assert_ne!(local.1, 0);
        let peer = n.socks[0].udp_peer(c).unwrap();
        n.socks[0].send_to(&mut n.stacks[0], c, b"q", peer).unwrap();
        let mut buf = [0u8; 16];
        let (_, from) = n.until(|n| {
            n.socks[1]
                .recv_from(&mut n.stacks[1], server, &mut buf)
                .ok()
        });
        assert_eq!(from, local);
        // A datagram from another port is not for it; the peer's is.
        n.socks[1]
            .send_to(&mut n.stacks[1], other, b"spoof", from)
            .unwrap();
        n.socks[1]
            .send_to(&mut n.stacks[1], server, b"real", from)
            .unwrap();
        n.until(|n| (n.socks[0].pending(&mut n.stacks[0], c) > 0).then_some(()));
        assert_eq!(
            n.socks[0].pending(&mut n.stacks[0], c),
            4,
            "the size of \"real\""
        );
        let (k, src) = n.until(|n| n.socks[0].recv_from(&mut n.stacks[0], c, &mut buf).ok());
        assert_eq!((&buf[..k], src), (&b"real"[..], (B, 53)));
        for _ in 0..10 {
            n.step();
        }
        assert_eq!(
            n.socks[0].recv_from(&mut n.stacks[0], c, &mut buf),
            Err(Error::WouldBlock)
        );
    }
}
