//! Device drivers. Like `arch` and `memory`, this is a module where
//! `unsafe` (port and MMIO access) is allowed; each driver wraps it in a
//! safe type that owns its device.

pub mod pci;
pub mod serial;
pub mod virtio_net;
