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
use llmos_net::stack::{Event, Mode, Stack};
use spin::Mutex;

use crate::klog;

/// The card, once probed.
pub static NIC: Mutex<Option<Box<dyn Nic>>> = Mutex::new(None);
/// The IP stack on it. Lock order: STACK before NIC.
pub static STACK: Mutex<Option<Stack>> = Mutex::new(None);

fn now_ms() -> u64 {
    crate::time::now_nanos() / 1_000_000
}

/// Probes the drivers in order, keeps the first card that comes up and
/// starts DHCP on it.
pub fn init() {
    let Some(n) = crate::drivers::virtio_net::probe() else {
        klog!("net", "no network card; networking is off");
        return;
    };
    let mut nic: Box<dyn Nic> = Box::new(n);
    let stack = Stack::new(nic.as_mut(), Mode::Dhcp, crate::random::u64(), now_ms());
    klog!("net", "DHCP: asking for an address");
    *STACK.lock() = Some(stack);
    *NIC.lock() = Some(nic);
}

/// Runs the stack once: received frames, timers, output. Returns false if
/// the locks were busy (someone else is polling).
pub fn poll() -> bool {
    let Some(mut sg) = STACK.try_lock() else {
        return false;
    };
    let Some(mut ng) = NIC.try_lock() else {
        return false;
    };
    let (Some(stack), Some(nic)) = (sg.as_mut(), ng.as_mut()) else {
        return true;
    };
    let events = stack.poll(nic.as_mut(), now_ms());
    drop(ng);
    drop(sg);
    for e in events {
        match e {
            Event::Configured(s) => klog!("net", "DHCP: {s}"),
            Event::Deconfigured => klog!("net", "DHCP: lease lost; no address"),
        }
    }
    true
}

/// The interface's address, if it has one.
pub fn address() -> Option<llmos_net::stack::Ipv4Settings> {
    STACK.lock().as_ref().and_then(|s| s.settings().cloned())
}
