//! The network card the kernel drives (at most one for now), behind the
//! `llmos_net::nic::Nic` trait so the stack never names a driver, and the
//! IP stack on it (`llmos_net::stack::Stack`, DHCPv4).
//!
//! The stack is polled from the timer tick (every 10 ms, on whichever CPU
//! takes the tick and finds the locks free) — nobody busy-waits for the
//! network. Configuration changes are logged (`net: DHCP: …`).
#![deny(unsafe_code)]

use alloc::boxed::Box;

use llmos_net::nic::Nic;
use llmos_net::socket::Ipv4Address;
use llmos_net::socket::Sockets;
use llmos_net::stack::{Event, Ipv4Cidr, Ipv4Settings, Mode, Stack};
use spin::Mutex;

use crate::klog;

/// The card, once probed.
pub static NIC: Mutex<Option<Box<dyn Nic>>> = Mutex::new(None);
/// The IP stack on it and the socket table. Lock order: STACK before NIC.
pub static STACK: Mutex<Option<Net>> = Mutex::new(None);

/// The stack and its sockets, under one lock.
pub struct Net {
    /// smoltcp interface and sockets.
    pub stack: Stack,
    /// BSD sockets of programs.
    pub socks: Sockets,
}

fn now_ms() -> u64 {
    crate::time::now_nanos() / 1_000_000
}

/// Probes the drivers in order, keeps the first card that comes up and
/// configures it (statically if the boot parameters say so, else by DHCP);
/// without a card the stack serves 127.0.0.1 only.
pub fn init(static_net: Option<&bootparams::StaticNet>) {
    let configured = static_net.map(|n| Ipv4Settings {
        address: Ipv4Cidr::new(Ipv4Address::from_octets(n.address), n.prefix),
        gateway: n.gateway.map(Ipv4Address::from_octets),
        dns: n.dns.iter().map(|d| Ipv4Address::from_octets(*d)).collect(),
    });
    let (mut nic, mode): (Box<dyn Nic>, Mode) = match crate::drivers::virtio_net::probe() {
        Some(n) => match configured {
            Some(s) => {
                klog!("net", "static: {s}");
                set_dns(&s.dns);
                write_resolv_conf();
                (Box::new(n), Mode::Static(s))
            }
            None => (Box::new(n), Mode::Dhcp),
        },
        None => {
            klog!("net", "no network card; only loopback (127.0.0.1) works");
            (Box::new(llmos_net::nic::NullNic), Mode::LoopbackOnly)
        }
    };
    let dhcp = mode == Mode::Dhcp;
    let stack = Stack::new(nic.as_mut(), mode, crate::random::u64(), now_ms());
    if dhcp {
        klog!("net", "DHCP: asking for an address");
    }
    // Socket buffers may take an eighth of memory (Linux's tcp_mem allows
    // about as much): a flood of connections gets small buffers, then
    // waits, instead of exhausting the kernel heap.
    let mut socks = Sockets::new();
    let budget = (crate::memory::frames::total_frames() * 4096 / 8).max(4 << 20);
    socks.set_memory_limit(budget as usize);
    klog!("net", "socket buffers: up to {} MiB", budget >> 20);
    *STACK.lock() = Some(Net { stack, socks });
    *NIC.lock() = Some(nic);
}

/// Socket counts (`/proc/net/sockstat`); zeros before the stack exists.
pub fn socket_stats() -> llmos_net::socket::Stats {
    STACK
        .lock()
        .as_ref()
        .map(|n| n.socks.stats())
        .unwrap_or_default()
}

/// Runs the stack once: received frames, timers, output; wakes threads
/// waiting for I/O if a socket changed. Returns false if the locks were
/// busy (someone else is polling).
pub fn poll() -> bool {
    let Some(mut sg) = STACK.try_lock() else {
        return false;
    };
    let Some(mut ng) = NIC.try_lock() else {
        return false;
    };
    let (Some(net), Some(nic)) = (sg.as_mut(), ng.as_mut()) else {
        return true;
    };
    let events = net
        .stack
        .poll_with(nic.as_mut(), now_ms(), &mut |st| net.socks.refill(st));
    net.socks.update(&mut net.stack);
    let changed = net.stack.take_changed();
    drop(ng);
    drop(sg);
    if changed {
        crate::fd::IO.wake_all();
    }
    for e in events {
        match e {
            Event::Configured(s) => {
                klog!("net", "DHCP: {s}");
                set_dns(&s.dns);
            }
            Event::Deconfigured => klog!("net", "DHCP: lease lost; no address"),
        }
    }
    write_resolv_conf();
    true
}

/// DNS servers waiting to be written to /etc/resolv.conf.
static PENDING_DNS: Mutex<Option<alloc::vec::Vec<Ipv4Address>>> = Mutex::new(None);

fn set_dns(dns: &[Ipv4Address]) {
    if !dns.is_empty() {
        *PENDING_DNS.lock() = Some(dns.to_vec());
    }
}

/// Writes pending DNS servers to /etc/resolv.conf (musl's and Rust's
/// resolvers read it). Runs from the timer tick, so it only tries the
/// filesystem lock and retries on the next tick if it is busy.
fn write_resolv_conf() {
    let Some(mut pending) = PENDING_DNS.try_lock() else {
        return;
    };
    let Some(dns) = pending.as_ref() else { return };
    let Some(mut g) = crate::vfs::FS.try_lock() else {
        return;
    };
    let Some(fs) = g.as_mut() else { return };
    let mut text = alloc::string::String::new();
    for d in dns {
        text.push_str(&alloc::format!("nameserver {d}\n"));
    }
    let now = crate::time::realtime_nanos();
    let _ = fs.mkdir(llmos_fs::ramfs::ROOT, "/etc", 0o755, now);
    let r = fs
        .create(llmos_fs::ramfs::ROOT, "/etc/resolv.conf", 0o644, false, now)
        .and_then(|ino| {
            fs.truncate(ino, 0, now)?;
            fs.write(ino, 0, text.as_bytes(), now)
        });
    drop(g);
    match r {
        Ok(_) => klog!("net", "wrote /etc/resolv.conf ({} server(s))", dns.len()),
        Err(e) => klog!("net", "cannot write /etc/resolv.conf: {e}"),
    }
    *pending = None;
}

/// The interface's address, if it has one.
pub fn address() -> Option<llmos_net::stack::Ipv4Settings> {
    STACK
        .lock()
        .as_ref()
        .and_then(|n| n.stack.settings().cloned())
}

/// Waits up to `timeout_ns` for an address when DHCP is running (before
/// the first program starts); returns at once without a card or with a
/// static address.
pub fn wait_configured(timeout_ns: u64) {
    let dhcp = with(|n| n.stack.is_dhcp() && n.stack.settings().is_none()).unwrap_or(false);
    if !dhcp {
        return;
    }
    let deadline = crate::time::now_nanos() + timeout_ns;
    while crate::time::now_nanos() < deadline {
        poll();
        if address().is_some() {
            return;
        }
        core::hint::spin_loop();
    }
    klog!(
        "net",
        "no DHCP answer within {} s; starting anyway (DHCP keeps asking)",
        timeout_ns / 1_000_000_000
    );
}

/// Lets connections deliver what they hold and finish closing, for at most
/// `timeout_ns` (at process exit, before the machine powers off).
pub fn drain(timeout_ns: u64) {
    let deadline = crate::time::now_nanos() + timeout_ns;
    loop {
        poll();
        let left = with(|n| n.socks.unfinished(&n.stack)).unwrap_or(0);
        if left == 0 {
            return;
        }
        if crate::time::now_nanos() >= deadline {
            klog!("net", "{left} connection(s) still sending at exit; dropped");
            return;
        }
        crate::fd::IO.wait(Some(crate::time::now_nanos() + 5_000_000), || false);
    }
}

/// Runs `f` on the stack and sockets (ENETDOWN without a network).
pub fn with<R>(f: impl FnOnce(&mut Net) -> R) -> Result<R, kcore::errno::Errno> {
    let mut g = STACK.lock();
    let n = g.as_mut().ok_or(kcore::errno::Errno::ENETDOWN)?;
    Ok(f(n))
}
