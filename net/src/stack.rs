//! The IP stack: a smoltcp `Interface` and `SocketSet` over any
//! [`Nic`], configured by DHCPv4 or statically, driven by whoever owns it
//! with the current time (the kernel from its timer; tests with a mock
//! clock).

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};

use crate::nic::Nic;

pub use smoltcp::wire::Ipv4Cidr;

/// How the interface gets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// DHCPv4 (the default).
    Dhcp,
    /// A fixed address.
    Static(Ipv4Settings),
    /// No address but 127.0.0.1 (no network card).
    LoopbackOnly,
}

/// An IPv4 configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Settings {
    /// Address and prefix length.
    pub address: Ipv4Cidr,
    /// Default gateway.
    pub gateway: Option<Ipv4Address>,
    /// DNS servers.
    pub dns: Vec<Ipv4Address>,
}

impl fmt::Display for Ipv4Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.address)?;
        match self.gateway {
            Some(g) => write!(f, ", gateway {g}")?,
            None => f.write_str(", no gateway")?,
        }
        if self.dns.is_empty() {
            f.write_str(", no DNS server")
        } else {
            f.write_str(", DNS")?;
            for d in &self.dns {
                write!(f, " {d}")?;
            }
            Ok(())
        }
    }
}

/// A change the owner should hear about (and log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// DHCP (or the static configuration) gave the interface an address.
    Configured(Ipv4Settings),
    /// The DHCP lease was lost.
    Deconfigured,
}

/// Frames for our own addresses: they never reach the card.
#[derive(Debug, Default)]
struct Loop {
    /// Frames waiting to be received.
    queue: VecDeque<Vec<u8>>,
    /// Our MAC and IPv4 addresses (127.0.0.1 and the interface's).
    mac: [u8; 6],
    ours: Vec<[u8; 4]>,
}

impl Loop {
    /// Whether `frame` is for one of our own addresses; if so, queues it
    /// (or, for an ARP request about one of them, our reply) for receipt.
    fn take(&mut self, frame: &[u8]) -> bool {
        if frame.len() < 34 {
            return false;
        }
        match [frame[12], frame[13]] {
            // ARP request for one of our addresses: answer it ourselves.
            [0x08, 0x06] if frame.len() >= 42 && frame[20..22] == [0, 1] => {
                let target: [u8; 4] = [frame[38], frame[39], frame[40], frame[41]];
                if !self.ours.contains(&target) {
                    return false;
                }
                let mut r = Vec::with_capacity(42);
                r.extend_from_slice(&frame[6..12]);
                r.extend_from_slice(&self.mac);
                r.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
                r.extend_from_slice(&self.mac);
                r.extend_from_slice(&target);
                r.extend_from_slice(&frame[22..32]);
                self.queue.push_back(r);
                true
            }
            [0x08, 0x00] => {
                let dst: [u8; 4] = [frame[30], frame[31], frame[32], frame[33]];
                if !self.ours.contains(&dst) {
                    return false;
                }
                let mut f = frame.to_vec();
                f[0..6].copy_from_slice(&self.mac);
                self.queue.push_back(f);
                true
            }
            _ => false,
        }
    }
}

/// The destination port of `frame` if it is an IPv4 TCP SYN without ACK
/// (a new connection).
fn syn_port(frame: &[u8]) -> Option<u16> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[23] != 6 {
        return None;
    }
    let tcp = 14 + usize::from(frame[14] & 0x0f) * 4;
    let flags = *frame.get(tcp + 13)?;
    if flags & 0x12 != 0x02 {
        return None;
    }
    Some(u16::from_be_bytes([frame[tcp + 2], frame[tcp + 3]]))
}

/// smoltcp's view of a [`Nic`], with frames for our own addresses looped
/// back in memory.
struct NicDevice<'a> {
    nic: &'a mut dyn Nic,
    lo: &'a mut Loop,
    /// Ports whose listeners are all busy: SYNs for them are dropped.
    full: &'a [u16],
    dropped: &'a mut u64,
}

struct Rx(Vec<u8>);
struct Tx<'a> {
    nic: &'a mut dyn Nic,
    lo: &'a mut Loop,
}

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        if !self.lo.take(&buf) {
            // A full queue drops the frame; TCP retransmits, UDP is best
            // effort.
            let _ = self.nic.transmit(&buf);
        }
        r
    }
}

impl Device for NicDevice<'_> {
    type RxToken<'a>
        = Rx
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = loop {
            let f = match self.lo.queue.pop_front() {
                Some(f) => f,
                None => self.nic.receive()?,
            };
            if self.full.is_empty() || !syn_port(&f).is_some_and(|p| self.full.contains(&p)) {
                break f;
            }
            *self.dropped += 1;
        };
        Some((
            Rx(frame),
            Tx {
                nic: self.nic,
                lo: self.lo,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        Some(Tx {
            nic: self.nic,
            lo: self.lo,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = self.nic.max_frame();
        c
    }
}

/// The stack.
pub struct Stack {
    iface: Interface,
    /// All sockets (the socket layer adds its own).
    pub sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    settings: Option<Ipv4Settings>,
    changed: bool,
    lo: Loop,
    /// The time of the last poll (ms).
    now_ms: u64,
    /// Ports whose accept queues are full.
    full_ports: Vec<u16>,
    /// SYNs dropped because of that.
    syn_drops: u64,
}

fn instant(ms: u64) -> Instant {
    Instant::from_millis(ms as i64)
}

impl Stack {
    /// A stack on `nic` at time `now_ms`; `seed` randomises ports and
    /// sequence numbers (pass fresh randomness every boot).
    pub fn new(nic: &mut dyn Nic, mode: Mode, seed: u64, now_ms: u64) -> Self {
        let mac = EthernetAddress(nic.mac());
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = seed;
        let mut lo = Loop {
            mac: nic.mac(),
            ..Loop::default()
        };
        let mut dropped = 0;
        let iface = Interface::new(
            config,
            &mut NicDevice {
                nic,
                lo: &mut lo,
                full: &[],
                dropped: &mut dropped,
            },
            instant(now_ms),
        );
        let mut s = Self {
            iface,
            sockets: SocketSet::new(Vec::new()),
            dhcp: None,
            settings: None,
            changed: false,
            lo,
            now_ms,
            full_ports: Vec::new(),
            syn_drops: 0,
        };
        s.apply(None);
        match mode {
            Mode::Dhcp => {
                let h = s.sockets.add(dhcpv4::Socket::new());
                s.dhcp = Some(h);
            }
            Mode::Static(st) => s.apply(Some(st)),
            Mode::LoopbackOnly => {}
        }
        s
    }

    /// smoltcp's interface context (for `tcp::Socket::connect`).
    pub fn iface_context(&mut self) -> &mut smoltcp::iface::Context {
        self.iface.context()
    }

    /// The time of the last poll (ms).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Whether the address comes from DHCP.
    pub fn is_dhcp(&self) -> bool {
        self.dhcp.is_some()
    }

    /// The current configuration.
    pub fn settings(&self) -> Option<&Ipv4Settings> {
        self.settings.as_ref()
    }

    fn apply(&mut self, st: Option<Ipv4Settings>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(
                Ipv4Address::new(127, 0, 0, 1),
                8,
            )));
            if let Some(s) = &st {
                let _ = addrs.push(IpCidr::Ipv4(s.address));
            }
        });
        self.lo.ours.clear();
        self.lo.ours.push([127, 0, 0, 1]);
        if let Some(s) = &st {
            self.lo.ours.push(s.address.address().octets());
        }
        let routes = self.iface.routes_mut();
        routes.remove_default_ipv4_route();
        if let Some(g) = st.as_ref().and_then(|s| s.gateway) {
            let _ = routes.add_default_ipv4_route(g);
        }
        self.settings = st;
    }

    /// Processes received frames, timers and queued output at `now_ms`;
    /// returns configuration changes.
    pub fn poll(&mut self, nic: &mut dyn Nic, now_ms: u64) -> Vec<Event> {
        self.poll_with(nic, now_ms, &mut |_| {})
    }

    /// Runs `f` on the interface, smoltcp's view of `nic` and the sockets.
    fn on_device<R>(
        &mut self,
        nic: &mut dyn Nic,
        f: impl FnOnce(&mut Interface, &mut NicDevice<'_>, &mut SocketSet<'static>) -> R,
    ) -> R {
        let full = core::mem::take(&mut self.full_ports);
        let r = f(
            &mut self.iface,
            &mut NicDevice {
                nic,
                lo: &mut self.lo,
                full: &full,
                dropped: &mut self.syn_drops,
            },
            &mut self.sockets,
        );
        self.full_ports = full;
        r
    }

    /// Sets the ports whose listeners are all busy: new connections to
    /// them are dropped (the peer retries) instead of refused.
    pub fn set_full_ports(&mut self, ports: Vec<u16>) {
        self.full_ports = ports;
    }

    /// SYNs dropped because the port's accept queue was full.
    pub fn syn_drops(&self) -> u64 {
        self.syn_drops
    }

    /// Like [`Stack::poll`], calling `after` after every received frame
    /// that changed a socket (the socket layer refills its listeners
    /// there, so a burst of connections finds them).
    pub fn poll_with(
        &mut self,
        nic: &mut dyn Nic,
        now_ms: u64,
        after: &mut dyn FnMut(&mut Stack),
    ) -> Vec<Event> {
        self.now_ms = self.now_ms.max(now_ms);
        let now = instant(now_ms);
        self.iface.poll_maintenance(now);
        loop {
            let r = self.on_device(nic, |i, d, s| i.poll_ingress_single(now, d, s));
            match r {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => {}
                PollIngressSingleResult::SocketStateChanged => {
                    self.changed = true;
                    after(self);
                }
            }
        }
        while self.on_device(nic, |i, d, s| i.poll_egress(now, d, s)) != PollResult::None {
            self.changed = true;
        }
        nic.reclaim();
        let mut events = Vec::new();
        if let Some(h) = self.dhcp {
            let ev = match self.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
                Some(dhcpv4::Event::Configured(c)) => Some(Some(Ipv4Settings {
                    address: c.address,
                    gateway: c.router,
                    dns: c.dns_servers.iter().copied().collect(),
                })),
                Some(dhcpv4::Event::Deconfigured) => Some(None),
                None => None,
            };
            match ev {
                Some(Some(st)) => {
                    self.apply(Some(st.clone()));
                    events.push(Event::Configured(st));
                }
                Some(None) if self.settings.is_some() => {
                    self.apply(None);
                    events.push(Event::Deconfigured);
                }
                _ => {}
            }
        }
        events
    }

    /// Whether a poll since the last call may have changed a socket's
    /// state (data, connections, closes): waiters should look again.
    pub fn take_changed(&mut self) -> bool {
        core::mem::take(&mut self.changed)
    }

    /// How long until the stack next needs a poll (if nothing arrives
    /// before), in milliseconds.
    pub fn poll_delay(&mut self, now_ms: u64) -> Option<u64> {
        self.iface
            .poll_delay(instant(now_ms), &self.sockets)
            .map(|d| d.total_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use smoltcp::socket::tcp;

    #[test]
    fn syn_port_reads_new_connections_and_survives_any_bytes() {
        // Ethernet + IPv4 (IHL 5) + TCP SYN to port 8080.
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 6;
        f[36..38].copy_from_slice(&8080u16.to_be_bytes());
        f[47] = 0x02;
        assert_eq!(syn_port(&f), Some(8080));
        f[47] = 0x12; // SYN-ACK: not a new connection
        assert_eq!(syn_port(&f), None);
        // Short, odd-IHL and random frames never panic.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..120 {
            for _ in 0..200 {
                let g: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                let mut h = g.clone();
                if h.len() >= 24 {
                    h[12..14].copy_from_slice(&[0x08, 0x00]);
                    h[23] = 6;
                }
                let _ = syn_port(&g);
                let _ = syn_port(&h);
            }
        }
    }

    use crate::wire::pair;

    fn settings(last: u8) -> Ipv4Settings {
        Ipv4Settings {
            address: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, last), 24),
            gateway: None,
            dns: Vec::new(),
        }
    }

    #[test]
    fn static_stacks_exchange_a_tcp_stream() {
        let (mut na, mut nb) = pair();
        let mut a = Stack::new(&mut na, Mode::Static(settings(1)), 1, 0);
        let mut b = Stack::new(&mut nb, Mode::Static(settings(2)), 2, 0);
        assert_eq!(
            a.settings().unwrap().to_string(),
            "10.0.0.1/24, no gateway, no DNS server"
        );
        let sock = || {
            tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 65536]),
                tcp::SocketBuffer::new(vec![0; 65536]),
            )
        };
        let server = b.sockets.add(sock());
        b.sockets.get_mut::<tcp::Socket>(server).listen(7).unwrap();
        let client = a.sockets.add(sock());
        let cx = a.iface.context();
        a.sockets
            .get_mut::<tcp::Socket>(client)
            .connect(cx, (Ipv4Address::new(10, 0, 0, 2), 7), 49152)
            .unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        let mut now = 0;
        while got.len() < data.len() && now < 600_000 {
            a.poll(&mut na, now);
            b.poll(&mut nb, now);
            let c = a.sockets.get_mut::<tcp::Socket>(client);
            if c.can_send() && sent < data.len() {
                sent += c.send_slice(&data[sent..]).unwrap();
            }
            let s = b.sockets.get_mut::<tcp::Socket>(server);
            if s.can_recv() {
                s.recv(|buf| {
                    got.extend_from_slice(buf);
                    (buf.len(), ())
                })
                .unwrap();
            }
            now += 1;
        }
        assert_eq!(got.len(), data.len(), "transfer incomplete after {now} ms");
        assert!(got == data);
    }

    #[test]
    fn dhcp_mode_starts_unconfigured_and_asks() {
        let (mut na, nb) = pair();
        let mut a = Stack::new(&mut na, Mode::Dhcp, 3, 0);
        assert!(a.settings().is_none());
        assert!(a.poll(&mut na, 0).is_empty());
        // A DHCPDISCOVER went out: a broadcast UDP frame from port 68.
        let frame = nb.rx.lock().unwrap().pop_front().expect("a DHCP discover");
        assert_eq!(&frame[..6], &[0xff; 6]);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        assert_eq!(&frame[34..36], &68u16.to_be_bytes());
        assert!(a.poll_delay(0).is_some());
    }
}
