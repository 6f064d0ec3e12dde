//! virtio-net over the modern (virtio 1.x) PCI transport, with the legacy
//! (0.9.5, I/O port) transport as a fallback for devices without the
//! virtio 1.x capabilities.
//!
//! Modern: the device's configuration structures are found through its
//! vendor capabilities and mapped uncached; features VERSION_1, MAC and
//! STATUS are negotiated. Legacy: registers in I/O BAR 0, MAC and STATUS,
//! each queue one physically contiguous block. Either way: no offloads, no
//! mergeable buffers (every receive buffer is a page, more than a 1514-byte
//! frame plus the 12- or 10-byte header). Queue 0
//! receives, queue 1 transmits; both use `llmos_net::virtq::SplitQueue`,
//! which refuses anything a misbehaving device returns. A device that
//! breaks the protocol is logged and left alone; it cannot crash the
//! kernel. With MSI-X, both queues signal one vector
//! (`idt::NET_VECTOR`) aimed at the boot CPU, and the interrupt runs the
//! stack; without it the stack is polled from the timer tick.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use kcore::pci::{Bar, ConfigSpace, Function, cap};
use llmos_net::nic::{Mac, Nic, TxError};
use llmos_net::virtq::{Buf, Layout, SplitQueue};

use crate::klog;
use crate::memory::dma::{DmaPage, DmaRegion, PhysDma};
use x86_64::instructions::port::Port;

const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const NET_F_MAC: u64 = 1 << 5;
const NET_F_STATUS: u64 = 1 << 16;

const STATUS_ACK: u8 = 1;
const STATUS_DRIVER: u8 = 2;
const STATUS_DRIVER_OK: u8 = 4;
const STATUS_FEATURES_OK: u8 = 8;
const STATUS_FAILED: u8 = 0x80;

/// Bytes of `struct virtio_net_hdr` with VERSION_1.
const HDR: usize = 12;
/// Bytes of the legacy header (no VERSION_1, no MRG_RXBUF).
const LEGACY_HDR: usize = 10;

// Legacy registers (offsets in I/O BAR 0).
const L_HOST_FEATURES: u16 = 0x00;
const L_GUEST_FEATURES: u16 = 0x04;
const L_QUEUE_PFN: u16 = 0x08;
const L_QUEUE_NUM: u16 = 0x0c;
const L_QUEUE_SEL: u16 = 0x0e;
const L_QUEUE_NOTIFY: u16 = 0x10;
const L_STATUS: u16 = 0x12;
const L_CONFIG_VECTOR: u16 = 0x14;
const L_QUEUE_VECTOR: u16 = 0x16;

/// The legacy register block in I/O space.
#[derive(Debug, Clone, Copy)]
struct LegacyIo {
    base: u16,
    /// Device configuration offset (0x14, or 0x18 with MSI-X on).
    cfg: u16,
}

impl LegacyIo {
    fn r8(&self, off: u16) -> u8 {
        // SAFETY: the port lies in the device's I/O BAR, which `new_legacy`
        // checked is large enough; reads have no memory side effects.
        unsafe { Port::<u8>::new(self.base + off).read() }
    }
    fn w8(&self, off: u16, v: u8) {
        // SAFETY: as for `r8`.
        unsafe { Port::<u8>::new(self.base + off).write(v) }
    }
    fn r16(&self, off: u16) -> u16 {
        // SAFETY: as for `r8`.
        unsafe { Port::<u16>::new(self.base + off).read() }
    }
    fn w16(&self, off: u16, v: u16) {
        // SAFETY: as for `r8`.
        unsafe { Port::<u16>::new(self.base + off).write(v) }
    }
    fn r32(&self, off: u16) -> u32 {
        // SAFETY: as for `r8`.
        unsafe { Port::<u32>::new(self.base + off).read() }
    }
    fn w32(&self, off: u16, v: u32) {
        // SAFETY: as for `r8`.
        unsafe { Port::<u32>::new(self.base + off).write(v) }
    }
}

/// How the driver reaches the device.
enum Transport {
    /// virtio 1.x: mapped configuration structures.
    Modern {
        common: Region,
        device: Region,
        notify: Region,
        notify_mul: u32,
    },
    /// virtio 0.9.5: I/O ports.
    Legacy(LegacyIo),
}

impl Transport {
    fn set_status(&self, v: u8) {
        match self {
            Transport::Modern { common, .. } => common.w8(DEVICE_STATUS, v),
            Transport::Legacy(io) => io.w8(L_STATUS, v),
        }
    }
    fn cfg_r8(&self, off: u16) -> u8 {
        match self {
            Transport::Modern { device, .. } => device.r8(u64::from(off)),
            Transport::Legacy(io) => io.r8(io.cfg + off),
        }
    }
    /// The device's MAC address if it has one (`VIRTIO_NET_F_MAC`), else a
    /// locally administered one from the CSPRNG.
    fn mac(&self, has_mac: bool) -> [u8; 6] {
        let mut mac = [0u8; 6];
        if has_mac {
            for (i, b) in mac.iter_mut().enumerate() {
                *b = self.cfg_r8(i as u16);
            }
        } else {
            let r = crate::random::u64().to_le_bytes();
            mac.copy_from_slice(&r[..6]);
            mac[0] = (mac[0] & 0xfe) | 0x02;
        }
        mac
    }

    fn cfg_r16(&self, off: u16) -> u16 {
        match self {
            Transport::Modern { device, .. } => device.r16(u64::from(off)),
            Transport::Legacy(io) => io.r16(io.cfg + off),
        }
    }
    fn notify(&self, queue: u16, notify_off: u64) {
        match self {
            Transport::Modern {
                notify, notify_mul, ..
            } => notify.w16(notify_off * u64::from(*notify_mul), queue),
            Transport::Legacy(io) => io.w16(L_QUEUE_NOTIFY, queue),
        }
    }
}

/// The memory behind a queue's rings.
enum Rings {
    /// Modern: three separate pages.
    Pages(#[allow(dead_code)] [DmaPage; 3]),
    /// Legacy: one contiguous block.
    Region(#[allow(dead_code)] DmaRegion),
}
/// Queue entries we use (at most what the device offers).
const QUEUE_SIZE: u16 = 128;

/// A mapped configuration structure: its virtual address and length.
#[derive(Debug, Clone, Copy)]
struct Region {
    virt: u64,
    len: u64,
}

impl Region {
    fn ok(&self, off: u64, n: u64) -> bool {
        off.checked_add(n).is_some_and(|e| e <= self.len) && off.is_multiple_of(n)
    }
    fn r8(&self, off: u64) -> u8 {
        if !self.ok(off, 1) {
            return 0;
        }
        // SAFETY: inside the structure mapped uncached by `map_cap`.
        unsafe { ((self.virt + off) as *const u8).read_volatile() }
    }
    fn w8(&self, off: u64, v: u8) {
        if self.ok(off, 1) {
            // SAFETY: as for `r8`.
            unsafe { ((self.virt + off) as *mut u8).write_volatile(v) }
        }
    }
    fn r16(&self, off: u64) -> u16 {
        if !self.ok(off, 2) {
            return 0;
        }
        // SAFETY: as for `r8`, and naturally aligned (checked).
        unsafe { ((self.virt + off) as *const u16).read_volatile() }
    }
    fn w16(&self, off: u64, v: u16) {
        if self.ok(off, 2) {
            // SAFETY: as for `r16`.
            unsafe { ((self.virt + off) as *mut u16).write_volatile(v) }
        }
    }
    fn r32(&self, off: u64) -> u32 {
        if !self.ok(off, 4) {
            return 0;
        }
        // SAFETY: as for `r16`.
        unsafe { ((self.virt + off) as *const u32).read_volatile() }
    }
    fn w32(&self, off: u64, v: u32) {
        if self.ok(off, 4) {
            // SAFETY: as for `r16`.
            unsafe { ((self.virt + off) as *mut u32).write_volatile(v) }
        }
    }
    fn w64(&self, off: u64, v: u64) {
        // The spec allows two 32-bit writes, low half first.
        self.w32(off, v as u32);
        self.w32(off + 4, (v >> 32) as u32);
    }
}

// Common configuration registers.
const DEV_FEATURE_SEL: u64 = 0x00;
const DEV_FEATURE: u64 = 0x04;
const DRV_FEATURE_SEL: u64 = 0x08;
const DRV_FEATURE: u64 = 0x0c;
const MSIX_CONFIG: u64 = 0x10;
const NUM_QUEUES: u64 = 0x12;
const DEVICE_STATUS: u64 = 0x14;
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_SIZE_REG: u64 = 0x18;
const QUEUE_MSIX: u64 = 0x1a;
const QUEUE_ENABLE: u64 = 0x1c;
const QUEUE_NOTIFY_OFF: u64 = 0x1e;
const QUEUE_DESC: u64 = 0x20;
const QUEUE_DRIVER: u64 = 0x28;
const QUEUE_DEVICE: u64 = 0x30;
const NO_VECTOR: u16 = 0xffff;

struct Queue {
    q: SplitQueue,
    mem: PhysDma,
    /// The memory holding the rings (kept alive).
    _rings: Rings,
    notify: u64,
    /// Buffers in flight by head descriptor.
    bufs: BTreeMap<u16, DmaPage>,
    /// The queue signals MSI-X entry 0.
    msix: bool,
}

/// A virtio-net device.
pub struct VirtioNet {
    name: String,
    transport: Transport,
    /// Bytes of the header before each frame.
    hdr: usize,
    mac: [u8; 6],
    has_status: bool,
    rx: Queue,
    tx: Queue,
    /// Set once the device broke the protocol; it is left alone then.
    failed: bool,
    /// Whether the queues interrupt through MSI-X.
    msix: bool,
}

/// Why the device could not be brought up.
#[derive(Debug)]
pub struct InitError(String);

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(s: impl Into<String>) -> InitError {
    InitError(s.into())
}

/// Maps the configuration structure described by the vendor capability
/// at `off`.
fn map_cap(cs: &impl ConfigSpace, f: &Function, off: u8) -> Result<(u8, Region, u32), InitError> {
    let at = f.bdf;
    let o = u16::from(off);
    let cfg_type = cs.read8(at, o + 3);
    let bar = usize::from(cs.read8(at, o + 4));
    let offset = u64::from(cs.read32(at, o + 8));
    let length = u64::from(cs.read32(at, o + 12));
    let mul = if cfg_type == 2 {
        cs.read32(at, o + 16)
    } else {
        0
    };
    let Some(Bar::Mem { addr, size, .. }) = f.bars.get(bar).copied() else {
        return Err(err(format!(
            "capability type {cfg_type} points at BAR {bar}, which is not memory"
        )));
    };
    if offset.checked_add(length).is_none_or(|e| e > size) || length == 0 {
        return Err(err(format!(
            "capability type {cfg_type} lies outside BAR {bar}"
        )));
    }
    let virt = crate::memory::mmio::map(addr + offset, length)
        .map_err(|e| err(format!("cannot map BAR {bar}: {e}")))?;
    Ok((cfg_type, Region { virt, len: length }, mul))
}

impl VirtioNet {
    /// Brings up the device at `f`.
    pub fn new(cs: &impl ConfigSpace, f: &Function) -> Result<Self, InitError> {
        let mut common = None;
        let mut device = None;
        let mut notify = None;
        for &(id, off) in &f.caps {
            if id != cap::VENDOR {
                continue;
            }
            let t = cs.read8(f.bdf, u16::from(off) + 3);
            if !matches!(t, 1 | 2 | 4) {
                continue;
            }
            let (t, r, mul) = map_cap(cs, f, off)?;
            match t {
                1 if common.is_none() => common = Some(r),
                2 if notify.is_none() => notify = Some((r, mul)),
                4 if device.is_none() => device = Some(r),
                _ => {}
            }
        }
        let (Some(common), Some(device), Some((notify, notify_mul))) = (common, device, notify)
        else {
            return Self::new_legacy(cs, f);
        };
        kcore::pci::enable(cs, f.bdf, kcore::pci::CMD_MEM | kcore::pci::CMD_MASTER);

        // Reset, then acknowledge.
        common.w8(DEVICE_STATUS, 0);
        let mut spins = 0;
        while common.r8(DEVICE_STATUS) != 0 && spins < 1_000_000 {
            core::hint::spin_loop();
            spins += 1;
        }
        common.w8(DEVICE_STATUS, STATUS_ACK);
        common.w8(DEVICE_STATUS, STATUS_ACK | STATUS_DRIVER);
        let mut offered = 0u64;
        for sel in 0..2u32 {
            common.w32(DEV_FEATURE_SEL, sel);
            offered |= u64::from(common.r32(DEV_FEATURE)) << (32 * sel);
        }
        if offered & VIRTIO_F_VERSION_1 == 0 {
            common.w8(DEVICE_STATUS, STATUS_FAILED);
            return Err(err("the device does not offer VIRTIO_F_VERSION_1"));
        }
        let wanted = VIRTIO_F_VERSION_1 | NET_F_MAC | NET_F_STATUS;
        let chosen = offered & wanted;
        for sel in 0..2u32 {
            common.w32(DRV_FEATURE_SEL, sel);
            common.w32(DRV_FEATURE, (chosen >> (32 * sel)) as u32);
        }
        common.w8(
            DEVICE_STATUS,
            STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        if common.r8(DEVICE_STATUS) & STATUS_FEATURES_OK == 0 {
            common.w8(DEVICE_STATUS, STATUS_FAILED);
            return Err(err("the device refused our features"));
        }
        if common.r16(NUM_QUEUES) < 2 {
            common.w8(DEVICE_STATUS, STATUS_FAILED);
            return Err(err("the device has fewer than 2 queues"));
        }
        common.w16(MSIX_CONFIG, NO_VECTOR);
        let vector = enable_msix(cs, f);
        let rx = Self::setup_queue(&common, 0, vector)?;
        let tx = Self::setup_queue(&common, 1, vector)?;
        let msix = vector.is_some() && rx.msix && tx.msix;
        let transport = Transport::Modern {
            common,
            device,
            notify,
            notify_mul,
        };
        Ok(Self::finish(
            format!("virtio-net at {}", f.bdf),
            transport,
            HDR,
            chosen,
            (rx, tx),
            msix,
            STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        ))
    }

    /// The driver for a device whose queues are set up: reads the MAC,
    /// fills the receive queue, then sets `status` (DRIVER_OK last).
    fn finish(
        name: String,
        transport: Transport,
        hdr: usize,
        chosen: u64,
        (rx, tx): (Queue, Queue),
        msix: bool,
        status: u8,
    ) -> Self {
        let mac = transport.mac(chosen & NET_F_MAC != 0);
        let mut nic = Self {
            name,
            transport,
            hdr,
            mac,
            has_status: chosen & NET_F_STATUS != 0,
            rx,
            tx,
            failed: false,
            msix,
        };
        nic.refill();
        nic.transport.set_status(status);
        nic
    }

    /// Brings up a legacy-only device through I/O BAR 0.
    fn new_legacy(cs: &impl ConfigSpace, f: &Function) -> Result<Self, InitError> {
        let Some(Bar::Io { port, size }) = f.bars.first().copied() else {
            return Err(err(
                "neither virtio 1.x capabilities nor a legacy I/O BAR 0",
            ));
        };
        let base = u16::try_from(port).map_err(|_| err("legacy I/O BAR beyond 64 KiB"))?;
        if size < 0x20 || u32::from(base) + size > 0x1_0000 {
            return Err(err("legacy I/O BAR too small"));
        }
        kcore::pci::enable(cs, f.bdf, kcore::pci::CMD_IO | kcore::pci::CMD_MASTER);
        let mut io = LegacyIo { base, cfg: 0x14 };
        io.w8(L_STATUS, 0);
        io.w8(L_STATUS, STATUS_ACK);
        io.w8(L_STATUS, STATUS_ACK | STATUS_DRIVER);
        let offered = u64::from(io.r32(L_HOST_FEATURES));
        let chosen = offered & (NET_F_MAC | NET_F_STATUS);
        io.w32(L_GUEST_FEATURES, chosen as u32);
        let vector = enable_msix(cs, f);
        if vector.is_some() {
            // With MSI-X on, the vector registers come first.
            io.cfg = 0x18;
            io.w16(L_CONFIG_VECTOR, NO_VECTOR);
        }
        let rx = Self::setup_legacy_queue(&io, 0, vector)?;
        let tx = Self::setup_legacy_queue(&io, 1, vector)?;
        let msix = vector.is_some() && rx.msix && tx.msix;
        let transport = Transport::Legacy(io);
        Ok(Self::finish(
            format!("virtio-net (legacy) at {}", f.bdf),
            transport,
            LEGACY_HDR,
            chosen,
            (rx, tx),
            msix,
            STATUS_ACK | STATUS_DRIVER | STATUS_DRIVER_OK,
        ))
    }

    /// A legacy queue: the device's fixed size, one contiguous block with
    /// the used ring on its own page boundary.
    fn setup_legacy_queue(
        io: &LegacyIo,
        index: u16,
        vector: Option<u16>,
    ) -> Result<Queue, InitError> {
        io.w16(L_QUEUE_SEL, index);
        let size = io.r16(L_QUEUE_NUM);
        if size == 0 || !size.is_power_of_two() {
            return Err(err(format!("queue {index} is not available (size {size})")));
        }
        let first = (Layout::desc_bytes(size) + Layout::avail_bytes(size)).div_ceil(4096);
        let pages = first + Layout::used_bytes(size).div_ceil(4096);
        let region = DmaRegion::new(pages).ok_or_else(|| err("out of memory for virtqueues"))?;
        let layout = Layout {
            size,
            desc: region.phys(),
            avail: region.phys() + Layout::desc_bytes(size),
            used: region.phys() + first * 4096,
        };
        let q = SplitQueue::new(layout).map_err(|e| err(format!("queue {index}: {e}")))?;
        let mut mem = PhysDma::new(region.page_addrs());
        q.init(&mut mem);
        let msix = match vector {
            Some(v) => {
                io.w16(L_QUEUE_VECTOR, v);
                io.r16(L_QUEUE_VECTOR) == v
            }
            None => false,
        };
        io.w32(L_QUEUE_PFN, (region.phys() >> 12) as u32);
        Ok(Queue {
            q,
            mem,
            _rings: Rings::Region(region),
            notify: 0,
            bufs: BTreeMap::new(),
            msix,
        })
    }

    fn setup_queue(common: &Region, index: u16, vector: Option<u16>) -> Result<Queue, InitError> {
        common.w16(QUEUE_SELECT, index);
        let max = common.r16(QUEUE_SIZE_REG);
        if max == 0 {
            return Err(err(format!("queue {index} is not available")));
        }
        // The largest power of two the device accepts, up to ours.
        let mut size = QUEUE_SIZE.min(max);
        while !size.is_power_of_two() {
            size &= size - 1;
        }
        common.w16(QUEUE_SIZE_REG, size);
        let page = || DmaPage::new().ok_or_else(|| err("out of memory for virtqueues"));
        let rings = [page()?, page()?, page()?];
        let layout = Layout {
            size,
            desc: rings[0].phys(),
            avail: rings[1].phys(),
            used: rings[2].phys(),
        };
        let q = SplitQueue::new(layout).map_err(|e| err(format!("queue {index}: {e}")))?;
        let mut mem = PhysDma::new(rings.iter().map(DmaPage::phys).collect());
        q.init(&mut mem);
        // The device reads back NO_VECTOR if it cannot use the entry.
        common.w16(QUEUE_MSIX, vector.unwrap_or(NO_VECTOR));
        let msix = vector.is_some() && common.r16(QUEUE_MSIX) == vector.unwrap_or(NO_VECTOR);
        common.w64(QUEUE_DESC, layout.desc);
        common.w64(QUEUE_DRIVER, layout.avail);
        common.w64(QUEUE_DEVICE, layout.used);
        let notify = u64::from(common.r16(QUEUE_NOTIFY_OFF));
        common.w16(QUEUE_ENABLE, 1);
        Ok(Queue {
            q,
            mem,
            _rings: Rings::Pages(rings),
            notify,
            bufs: BTreeMap::new(),
            msix,
        })
    }

    fn kick(&self, queue: u16, q: &Queue) {
        if q.q.should_notify(&q.mem) {
            self.transport.notify(queue, q.notify);
        }
    }

    /// Keeps the receive queue full of page-sized buffers.
    fn refill(&mut self) {
        let mut added = false;
        while self.rx.q.free_descriptors() > 0 {
            let Some(page) = DmaPage::new() else { break };
            let buf = Buf {
                addr: page.phys(),
                len: 4096,
                device_writes: true,
            };
            match self.rx.q.add(&mut self.rx.mem, &[buf], 0) {
                Ok(head) => {
                    self.rx.bufs.insert(head, page);
                    added = true;
                }
                Err(_) => break,
            }
        }
        if added {
            self.kick(0, &self.rx);
        }
    }

    fn fail(&mut self, what: &str, e: llmos_net::virtq::Error) {
        if !self.failed {
            klog!("net", "{}: {what}: {e}; the device is disabled", self.name);
            self.transport.set_status(STATUS_FAILED);
        }
        self.failed = true;
    }
}

impl Nic for VirtioNet {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn link_up(&self) -> bool {
        !self.failed && (!self.has_status || self.transport.cfg_r16(6) & 1 != 0)
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
        if self.failed {
            return Err(TxError::Device);
        }
        if frame.len() > self.max_frame() {
            return Err(TxError::TooLarge(frame.len()));
        }
        self.reclaim();
        let mut page = DmaPage::new().ok_or(TxError::Busy)?;
        // The header stays zero: no checksum offload, no GSO.
        page.write(self.hdr, frame);
        let buf = Buf {
            addr: page.phys(),
            len: (self.hdr + frame.len()) as u32,
            device_writes: false,
        };
        let head = self
            .tx
            .q
            .add(&mut self.tx.mem, &[buf], 0)
            .map_err(|_| TxError::Busy)?;
        self.tx.bufs.insert(head, page);
        self.kick(1, &self.tx);
        Ok(())
    }

    fn receive(&mut self) -> Option<Vec<u8>> {
        if self.failed {
            return None;
        }
        let out = match self.rx.q.pop_used(&mut self.rx.mem)? {
            Ok(u) => {
                let page = self.rx.bufs.remove(&u.head)?;
                let len = (u.len as usize).saturating_sub(self.hdr);
                Some(page.read(self.hdr, len))
            }
            Err(e) => {
                self.fail("receive queue", e);
                return None;
            }
        };
        self.refill();
        out
    }

    fn reclaim(&mut self) -> usize {
        let mut n = 0;
        while let Some(r) = self.tx.q.pop_used(&mut self.tx.mem) {
            match r {
                Ok(u) => {
                    self.tx.bufs.remove(&u.head);
                    n += 1;
                }
                Err(e) => {
                    self.fail("transmit queue", e);
                    break;
                }
            }
        }
        n
    }

    fn describe(&self) -> String {
        format!(
            "{}: MAC {}, link {}, {}-entry queues, {}",
            self.name,
            Mac(self.mac),
            if self.link_up() { "up" } else { "down" },
            self.rx.q.layout().size,
            if self.msix {
                "MSI-X interrupts"
            } else {
                "polled (no MSI-X)"
            }
        )
    }
}

/// Points MSI-X table entry 0 of `f` at the boot CPU's `NET_VECTOR` and
/// enables MSI-X; returns the entry number to give the queues, or `None`
/// (the stack is then polled).
fn enable_msix(cs: &impl ConfigSpace, f: &Function) -> Option<u16> {
    let cap_off = u16::from(f.find_cap(cap::MSIX)?);
    let control = cs.read16(f.bdf, cap_off + 2);
    let table = cs.read32(f.bdf, cap_off + 4);
    let bir = (table & 7) as usize;
    let offset = u64::from(table & !7);
    let entries = u64::from(control & 0x7ff) + 1;
    let Some(Bar::Mem { addr, size, .. }) = f.bars.get(bir).copied() else {
        return None;
    };
    if offset.checked_add(16 * entries).is_none_or(|e| e > size) {
        return None;
    }
    let virt = crate::memory::mmio::map(addr + offset, 16 * entries).ok()?;
    let t = Region {
        virt,
        len: 16 * entries,
    };
    let apic = u64::from(crate::smp::apic_id_of(0).unwrap_or(0));
    // Mask everything, program entry 0, then enable with the function
    // unmasked.
    for i in 0..entries {
        t.w32(16 * i + 12, 1);
    }
    t.w32(0, (0xfee0_0000 | (apic << 12)) as u32);
    t.w32(4, 0);
    t.w32(8, u32::from(crate::arch::x86_64::idt::NET_VECTOR));
    t.w32(12, 0);
    let v = cs.read32(f.bdf, cap_off);
    cs.write32(f.bdf, cap_off, (v | (1 << 31)) & !(1 << 30));
    Some(0)
}

/// Finds the first virtio-net function and brings it up.
pub fn probe() -> Option<VirtioNet> {
    let cs = super::pci::config()?;
    let f = super::pci::devices()
        .iter()
        .find(|f| f.vendor == 0x1af4 && matches!(f.device, 0x1000 | 0x1041))?;
    match VirtioNet::new(cs, f) {
        Ok(n) => {
            klog!("net", "{}", n.describe());
            Some(n)
        }
        Err(e) => {
            klog!("net", "virtio-net at {}: {e}", f.bdf);
            None
        }
    }
}

/// Link check (a test-hooks scenario): ARP for the gateway QEMU's user
/// network puts at 10.0.2.2 and report whether it answered within
/// `timeout_ns`.
pub fn link_check(nic: &mut dyn Nic, timeout_ns: u64) {
    let me = [10, 0, 2, 15];
    let gw = [10, 0, 2, 2];
    if let Err(e) = nic.transmit(&llmos_net::nic::arp_request(nic.mac(), me, gw)) {
        klog!("net", "link check: cannot send: {e}");
        return;
    }
    let deadline = crate::time::now_nanos() + timeout_ns;
    let mut frames = 0;
    while crate::time::now_nanos() < deadline {
        while let Some(f) = nic.receive() {
            frames += 1;
            if let Some(mac) = llmos_net::nic::arp_reply_from(&f, nic.mac(), gw) {
                klog!(
                    "net",
                    "link check: 10.0.2.2 is at {} (ARP reply after {frames} frame(s)); {} transmission(s) reclaimed",
                    Mac(mac),
                    nic.reclaim()
                );
                return;
            }
        }
        core::hint::spin_loop();
    }
    klog!(
        "net",
        "link check: no ARP reply from 10.0.2.2 ({frames} frame(s) received)"
    );
}
