//! Memory shared with devices: zeroed physical pages and access to them by
//! physical address (what the device sees), for virtqueues and packet
//! buffers. RAM is identity-coherent on x86, so a compiler fence plus the
//! CPU's ordering (stores are not reordered with other stores) is enough;
//! `fence` issues a full one anyway.

use core::sync::atomic::{Ordering, fence};

use super::{frames, paging};

/// One zeroed physical page owned by a driver.
#[derive(Debug)]
pub struct DmaPage {
    phys: u64,
}

impl DmaPage {
    /// Allocates a zeroed page.
    pub fn new() -> Option<Self> {
        let f = frames::alloc()?;
        let phys = f.start_address().as_u64();
        // SAFETY: the frame was just allocated, so nothing else uses it;
        // it is reached through the physical-memory mapping.
        unsafe { core::ptr::write_bytes((paging::phys_offset() + phys) as *mut u8, 0, 4096) };
        Some(Self { phys })
    }

    /// Its physical address.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Copies `data` into the page at `offset` (clipped to the page).
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        let off = offset.min(4096);
        let n = data.len().min(4096 - off);
        // SAFETY: the page is owned by `self`; the copy stays inside it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (paging::phys_offset() + self.phys + off as u64) as *mut u8,
                n,
            )
        };
    }

    /// Copies `len` bytes at `offset` out of the page (clipped to it).
    pub fn read(&self, offset: usize, len: usize) -> alloc::vec::Vec<u8> {
        let off = offset.min(4096);
        let n = len.min(4096 - off);
        let mut v = alloc::vec![0u8; n];
        // SAFETY: as for `write`; the device may be writing the page only
        // while the driver has it on a queue, and drivers read it after the
        // device returned it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (paging::phys_offset() + self.phys + off as u64) as *const u8,
                v.as_mut_ptr(),
                n,
            )
        };
        v
    }
}

impl Drop for DmaPage {
    fn drop(&mut self) {
        frames::free(x86_64::structures::paging::PhysFrame::containing_address(
            x86_64::PhysAddr::new(self.phys),
        ));
    }
}

/// Physically contiguous zeroed pages owned by a driver (legacy virtio
/// queues must be one block).
#[derive(Debug)]
pub struct DmaRegion {
    phys: u64,
    pages: u64,
}

impl DmaRegion {
    /// Allocates `pages` zeroed, contiguous pages.
    pub fn new(pages: u64) -> Option<Self> {
        let phys = frames::alloc_contiguous(pages)?;
        // SAFETY: the frames were just allocated, so nothing else uses
        // them; they are reached through the physical-memory mapping.
        unsafe {
            core::ptr::write_bytes(
                (paging::phys_offset() + phys) as *mut u8,
                0,
                (pages * 4096) as usize,
            )
        };
        Some(Self { phys, pages })
    }

    /// Physical address of the first page.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Physical addresses of every page.
    pub fn page_addrs(&self) -> alloc::vec::Vec<u64> {
        (0..self.pages).map(|i| self.phys + i * 4096).collect()
    }
}

impl Drop for DmaRegion {
    fn drop(&mut self) {
        for a in self.page_addrs() {
            frames::free(x86_64::structures::paging::PhysFrame::containing_address(
                x86_64::PhysAddr::new(a),
            ));
        }
    }
}

/// Access by physical address to pages a driver owns (its queues).
pub struct PhysDma {
    /// The pages this accessor may touch (physical addresses).
    ranges: alloc::vec::Vec<u64>,
}

impl PhysDma {
    /// An accessor for the given pages (physical addresses).
    pub fn new(pages: alloc::vec::Vec<u64>) -> Self {
        Self { ranges: pages }
    }

    fn ptr(&self, addr: u64, n: u64) -> Option<*mut u8> {
        let page = addr & !0xfff;
        if (addr & 0xfff) + n > 4096 || !addr.is_multiple_of(n) || !self.ranges.contains(&page) {
            return None;
        }
        Some((paging::phys_offset() + addr) as *mut u8)
    }
}

impl llmos_net::virtq::Dma for PhysDma {
    fn read_u16(&self, addr: u64) -> u16 {
        // SAFETY: `ptr` only yields addresses inside pages this driver
        // owns, fully inside one page; volatile because the device writes
        // them.
        self.ptr(addr, 2)
            .map_or(0, |p| unsafe { (p as *const u16).read_volatile() })
    }
    fn write_u16(&mut self, addr: u64, v: u16) {
        if let Some(p) = self.ptr(addr, 2) {
            // SAFETY: as for `read_u16`.
            unsafe { (p as *mut u16).write_volatile(v) }
        }
    }
    fn read_u32(&self, addr: u64) -> u32 {
        // SAFETY: as for `read_u16`.
        self.ptr(addr, 4)
            .map_or(0, |p| unsafe { (p as *const u32).read_volatile() })
    }
    fn write_u32(&mut self, addr: u64, v: u32) {
        if let Some(p) = self.ptr(addr, 4) {
            // SAFETY: as for `read_u16`.
            unsafe { (p as *mut u32).write_volatile(v) }
        }
    }
    fn write_u64(&mut self, addr: u64, v: u64) {
        if let Some(p) = self.ptr(addr, 8) {
            // SAFETY: as for `read_u16`.
            unsafe { (p as *mut u64).write_volatile(v) }
        }
    }
    fn fence(&self) {
        fence(Ordering::SeqCst);
    }
}
