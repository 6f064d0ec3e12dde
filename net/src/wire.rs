//! Test support: an in-memory Ethernet cable between two [`Nic`]s.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use std::sync::{Arc, Mutex};

use crate::nic::{Nic, TxError};

/// Frames in flight in one direction.
pub type Wire = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// One end of the cable.
pub struct WireNic {
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Frames it sends.
    pub tx: Wire,
    /// Frames it receives.
    pub rx: Wire,
}

impl Nic for WireNic {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn link_up(&self) -> bool {
        true
    }
    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
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

/// Both ends of a new cable (MACs 02:00:00:00:00:01 and …:02).
pub fn pair() -> (WireNic, WireNic) {
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
