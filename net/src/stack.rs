//! The IP stack: a smoltcp `Interface` and `SocketSet` over any
//! [`Nic`], configured by DHCPv4 or statically, driven by whoever owns it
//! with the current time (the kernel from its timer; tests with a mock
//! clock).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::nic::Nic;

/// How the interface gets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// DHCPv4 (the default).
    Dhcp,
    /// A fixed address.
    Static(Ipv4Settings),
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

/// smoltcp's view of a [`Nic`].
struct NicDevice<'a> {
    nic: &'a mut dyn Nic,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut dyn Nic);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        // A full queue drops the frame; TCP retransmits, UDP is best effort.
        let _ = self.0.transmit(&buf);
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
        let frame = self.nic.receive()?;
        Some((Rx(frame), Tx(self.nic)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        Some(Tx(self.nic))
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
        let iface = Interface::new(config, &mut NicDevice { nic }, instant(now_ms));
        let mut s = Self {
            iface,
            sockets: SocketSet::new(Vec::new()),
            dhcp: None,
            settings: None,
        };
        match mode {
            Mode::Dhcp => {
                let h = s.sockets.add(dhcpv4::Socket::new());
                s.dhcp = Some(h);
            }
            Mode::Static(st) => s.apply(Some(st)),
        }
        s
    }

    /// smoltcp's interface context (for `tcp::Socket::connect`).
    pub fn iface_context(&mut self) -> &mut smoltcp::iface::Context {
        self.iface.context()
    }

    /// The current configuration.
    pub fn settings(&self) -> Option<&Ipv4Settings> {
        self.settings.as_ref()
    }

    fn apply(&mut self, st: Option<Ipv4Settings>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some(s) = &st {
                let _ = addrs.push(IpCidr::Ipv4(s.address));
            }
        });
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
        let now = instant(now_ms);
        self.iface
            .poll(now, &mut NicDevice { nic }, &mut self.sockets);
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
    use alloc::collections::VecDeque;
    use alloc::string::ToString;
    use smoltcp::socket::tcp;
    use std::sync::{Arc, Mutex};

    type Wire = Arc<Mutex<VecDeque<Vec<u8>>>>;

    /// One end of an in-memory Ethernet cable.
    struct WireNic {
        mac: [u8; 6],
        tx: Wire,
        rx: Wire,
    }

    impl Nic for WireNic {
        fn mac(&self) -> [u8; 6] {
            self.mac
        }
        fn link_up(&self) -> bool {
            true
        }
        fn transmit(&mut self, frame: &[u8]) -> Result<(), crate::nic::TxError> {
            self.tx.lock().unwrap().push_back(frame.to_vec());
            Ok(())
        }
        fn receive(&mut self) -> Option<Vec<u8>> {
            self.rx.lock().unwrap().pop_front()
        }
        fn reclaim(&mut self) -> usize {
            0
        }
        fn describe(&self) -> alloc::string::String {
            alloc::string::String::from("wire")
        }
    }

    fn pair() -> (WireNic, WireNic) {
        let a: Wire = Arc::default();
        let b: Wire = Arc::default();
        (
            WireNic {
                mac: [2, 0, 0, 0, 0, 1],
                tx: a.clone(),
                rx: b.clone(),
            },
            WireNic {
                mac: [2, 0, 0, 0, 0, 2],
                tx: b,
                rx: a,
            },
        )
    }

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
