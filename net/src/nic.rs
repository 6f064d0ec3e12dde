//! The interface every network card driver offers (virtio-net today, e1000
//! for real hardware later), so the stack never names a concrete driver.

use alloc::vec::Vec;
use core::fmt;

/// Why a frame could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxError {
    /// The transmit queue is full; retry after the device catches up.
    Busy,
    /// Larger than the MTU allows.
    TooLarge(usize),
    /// The device failed (it broke the protocol or reported an error).
    Device,
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::Busy => f.write_str("transmit queue full"),
            TxError::TooLarge(n) => write!(f, "frame of {n} bytes exceeds the MTU"),
            TxError::Device => f.write_str("device error"),
        }
    }
}

/// A network card.
pub trait Nic: Send {
    /// Its MAC address.
    fn mac(&self) -> [u8; 6];
    /// Whether the link is up (devices that cannot tell say yes).
    fn link_up(&self) -> bool;
    /// Largest Ethernet frame (without FCS) it sends and receives.
    fn max_frame(&self) -> usize {
        1514
    }
    /// Queues one Ethernet frame.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError>;
    /// Takes one received frame, if any (and recycles its buffer).
    fn receive(&mut self) -> Option<Vec<u8>>;
    /// Reclaims finished transmissions; returns how many.
    fn reclaim(&mut self) -> usize;
    /// A short description for the log.
    fn describe(&self) -> alloc::string::String;
}

/// A card that is not there: sends nothing anywhere and receives nothing
/// (the stack still serves 127.0.0.1).
pub struct NullNic;

impl Nic for NullNic {
    fn mac(&self) -> [u8; 6] {
        [0x02, 0, 0, 0, 0, 0x01]
    }
    fn link_up(&self) -> bool {
        false
    }
    fn transmit(&mut self, _frame: &[u8]) -> Result<(), TxError> {
        Ok(())
    }
    fn receive(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn reclaim(&mut self) -> usize {
        0
    }
    fn describe(&self) -> alloc::string::String {
        alloc::string::String::from("no card")
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An ARP request ("who has `target`? tell `sender_ip`") from `mac`, as a
/// broadcast Ethernet frame (the boot-time link check).
pub fn arp_request(mac: [u8; 6], sender_ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&sender_ip);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

/// If `frame` is an ARP reply from `ip` addressed to `mac`, the sender's
/// MAC address.
pub fn arp_reply_from(frame: &[u8], mac: [u8; 6], ip: [u8; 4]) -> Option<[u8; 6]> {
    if frame.len() < 42 || frame[12..14] != [0x08, 0x06] || frame[20..22] != [0, 2] {
        return None;
    }
    if frame[0..6] != mac || frame[28..32] != ip {
        return None;
    }
    frame[22..28].try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn arp_round_trip() {
        let me = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let req = arp_request(me, [10, 0, 2, 15], [10, 0, 2, 2]);
        assert_eq!(req.len(), 42);
        assert_eq!(Mac(me).to_string(), "52:54:00:12:34:56");
        // Build the reply a router would send.
        let gw = [0x52, 0x55, 10, 0, 2, 2];
        let mut rep = Vec::new();
        rep.extend_from_slice(&me);
        rep.extend_from_slice(&gw);
        rep.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        rep.extend_from_slice(&gw);
        rep.extend_from_slice(&[10, 0, 2, 2]);
        rep.extend_from_slice(&me);
        rep.extend_from_slice(&[10, 0, 2, 15]);
        assert_eq!(arp_reply_from(&rep, me, [10, 0, 2, 2]), Some(gw));
        assert_eq!(arp_reply_from(&rep, me, [10, 0, 2, 3]), None);
        assert_eq!(arp_reply_from(&req, me, [10, 0, 2, 2]), None);
        assert_eq!(arp_reply_from(&rep[..41], me, [10, 0, 2, 2]), None);
    }
}
