//! User address spaces: page tables for the lower half, backed by the VMA
//! map (`kcore::vma`).
//!
//! Each address space has its own level-4 table whose upper half is shared
//! with the kernel and whose lower half starts empty (nothing the
//! bootloader identity-mapped is visible to user code). Pages are
//! allocated lazily: a VMA only promises memory, and the page-fault handler
//! maps a zeroed frame on first touch ([`AddressSpace::fault`]). Anonymous
//! frames are owned by exactly one page-table entry and freed when it is
//! unmapped. File mappings may instead map frames the process does not own
//! (initrd pages, pages of a RAM-filesystem file): their entries carry
//! [`NOT_OWNED`] and are never freed here, and private ones also carry
//! [`COW`]: read-only until the first write copies them.
//!
//! 2 MiB pages: one fault and one TLB entry instead of 512.
//! - Read-only file mappings of initrd data get them where a whole,
//!   physically aligned 2 MiB run of the file falls on a 2 MiB-aligned user
//!   range (`mmap` picks addresses so that it does, see
//!   `filemap::huge_phase`): the model's weights.
//! - Anonymous `mmap` areas get a fresh, zeroed 2 MiB block on the first
//!   touch of any 2 MiB-aligned range they cover whole, if no 4 KiB page of
//!   that range is mapped yet and free memory stays above
//!   [`HUGE_ANON_RESERVE`]: the KV cache and llama.cpp's compute buffers.
//!   Thread stacks (MAP_STACK), the brk heap and the main stack keep 4 KiB
//!   pages.
//!
//! munmap and mprotect of whole 2 MiB pages act on the 2 MiB entry; a
//! change to part of one first splits it into 512 4 KiB entries for the same
//! frames ([`AddressSpace::split_edges`], which callers run before changing
//! any area, so running out of memory for the page table fails the call
//! cleanly instead of losing data). mremap splits what it moves, and a
//! change of rights on file data splits it (copy-on-write works per 4 KiB
//! page).

use kcore::elf::PAGE;
use kcore::vma::{Kind, Prot, VmaMap};
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::mapper::{TranslateResult, UnmapError};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size2MiB, Size4KiB,
    Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::{self, GlobalFrames, UserFrames};
use super::paging::{self, MapError};

/// What a fault on a user address means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOutcome {
    /// A page was mapped; retry the access.
    Resolved,
    /// The address is in no area.
    Unmapped,
    /// The area forbids this access (e.g. a write to read-only memory).
    Denied(Prot),
    /// No memory left for the page.
    OutOfMemory,
    /// The address is past the end of the mapped file (SIGBUS).
    BeyondEof,
}

/// PTE bit: the frame belongs to someone else (do not free it).
pub const NOT_OWNED: PageTableFlags = PageTableFlags::BIT_9;
/// PTE bit: a private mapping of a shared frame; copy before writing.
pub const COW: PageTableFlags = PageTableFlags::BIT_10;

/// Where a file-backed page comes from.
pub enum FilePage {
    /// Map this physical frame in place (not owned); `cow` for private
    /// mappings (read-only until written).
    Frame {
        /// Physical address of the page.
        phys: u64,
        /// Copy on write.
        cow: bool,
    },
    /// Copy the first this many bytes of the buffer the pager was given
    /// (the rest of the page is zero) into a fresh private frame.
    Copy(usize),
}

/// Supplies file pages on faults.
pub trait Pager {
    /// The page of `map` at file offset `offset` (page-aligned), for a
    /// `write` access or not; bytes to copy go into `buf`.
    fn page(
        &mut self,
        map: kcore::vma::FileMap,
        offset: u64,
        write: bool,
        buf: &mut [u8; PAGE as usize],
    ) -> Result<FilePage, FaultOutcome>;
    /// Counts bytes of `map`'s file copied into private frames, or (with
    /// `in_place`) mapped without copying (for the log).
    fn account(&mut self, map: kcore::vma::FileMap, bytes: u64, in_place: bool);
    /// The physical address of a 2 MiB-aligned, physically contiguous run
    /// of `map`'s file at `offset` (2 MiB of file data, mapped in place
    /// read-only), if there is one.
    fn huge_page(&mut self, _map: kcore::vma::FileMap, _offset: u64) -> Option<u64> {
        None
    }
}

/// Bytes in a 2 MiB page.
pub const HUGE: u64 = 2 * 1024 * 1024;

/// Bytes of file data currently mapped with 2 MiB pages (`/proc/meminfo`
/// `FilePmdMapped`).
pub static HUGE_MAPPED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Bytes of anonymous memory currently mapped with 2 MiB pages
/// (`/proc/meminfo` `AnonHugePages`).
pub static ANON_HUGE_MAPPED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Page-fault and 2 MiB page events (`/proc/vmstat`, Linux's names).
pub mod events {
    use core::sync::atomic::AtomicU64;
    /// Faults on user addresses (resolved or not).
    pub static PGFAULT: AtomicU64 = AtomicU64::new(0);
    /// Anonymous 2 MiB pages mapped on a fault.
    pub static THP_FAULT_ALLOC: AtomicU64 = AtomicU64::new(0);
    /// Faults that could have used an anonymous 2 MiB page but found no
    /// free 2 MiB block (or too little free memory).
    pub static THP_FAULT_FALLBACK: AtomicU64 = AtomicU64::new(0);
    /// File data mapped with 2 MiB pages.
    pub static THP_FILE_MAPPED: AtomicU64 = AtomicU64::new(0);
    /// 2 MiB pages split into 4 KiB entries.
    pub static THP_SPLIT_PMD: AtomicU64 = AtomicU64::new(0);
}

fn count(c: &core::sync::atomic::AtomicU64) {
    c.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

/// The byte counter a 2 MiB entry with `flags` belongs to: file data
/// (`NOT_OWNED`) or anonymous memory.
fn huge_counter(flags: PageTableFlags) -> &'static core::sync::atomic::AtomicU64 {
    if flags.contains(NOT_OWNED) {
        &HUGE_MAPPED
    } else {
        &ANON_HUGE_MAPPED
    }
}

/// Anonymous memory gets a 2 MiB page only while at least this many frames
/// (16 MiB) stay free besides the kernel's reserve: a partly used 2 MiB
/// page must not be what runs a small machine out of memory.
pub const HUGE_ANON_RESERVE: u64 = 4096;

const FRAMES_PER_HUGE: u64 = HUGE / PAGE;

/// A user address space.
pub struct AddressSpace {
    l4: PhysFrame,
    /// The areas the process may touch.
    pub vmas: VmaMap,
    /// Frames currently mapped.
    pub resident_pages: u64,
    /// Frames unmapped since the last [`AddressSpace::take_stale`]: they
    /// may still be in other CPUs' TLBs, so they are freed only after a
    /// shootdown. (The heap holds 8 bytes per 4 KiB page unmapped in one
    /// call and per 2 MiB page: 1/512 of the memory given back at most,
    /// within the kernel's reserve for any machine up to 32 GiB.)
    stale_frames: alloc::vec::Vec<StaleFrame>,
    /// Whether a mapping was removed or downgraded since the last
    /// [`AddressSpace::take_stale`].
    needs_flush: bool,
}

/// A frame, or a 2 MiB block of them, to free after the shootdown.
#[derive(Debug, Clone, Copy)]
enum StaleFrame {
    Small(PhysFrame),
    Huge(PhysFrame<Size2MiB>),
}

/// Work to finish after the address-space lock is released: flush other
/// CPUs' TLBs, then free the frames.
#[must_use]
pub struct Stale {
    frames: alloc::vec::Vec<StaleFrame>,
    flush: bool,
}

impl Stale {
    /// Shoots down other CPUs' TLB entries (if anything was unmapped or
    /// downgraded) and frees the unmapped frames.
    pub fn finish(self) {
        if self.flush {
            crate::arch::x86_64::tlb::shootdown();
        }
        for f in self.frames {
            match f {
                StaleFrame::Small(f) => frames::free(f),
                StaleFrame::Huge(b) => frames::free_huge(b),
            }
        }
    }
}

fn pte_flags(prot: Prot) -> PageTableFlags {
    if prot == Prot::NONE {
        // Keep the frame (its contents survive mprotect back), but deny
        // every user access.
        return PageTableFlags::PRESENT | PageTableFlags::NO_EXECUTE;
    }
    let mut f = PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE;
    if prot.write {
        f |= PageTableFlags::WRITABLE;
    }
    if !prot.exec {
        f |= PageTableFlags::NO_EXECUTE;
    }
    f
}

fn table_flags() -> PageTableFlags {
    PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::USER_ACCESSIBLE
}

impl AddressSpace {
    /// A new address space: kernel half shared, user half empty.
    pub fn new() -> Result<Self, MapError> {
        let frame = frames::alloc().ok_or(MapError::OutOfFrames)?;
        let offset = paging::phys_offset();
        let (current, _) = Cr3::read();
        // SAFETY: both tables are reached through the physical-memory
        // mapping; `frame` is freshly allocated (no other user), and the
        // current level-4 table is only read.
        unsafe {
            let new = &mut *((offset + frame.start_address().as_u64()) as *mut PageTable);
            let cur = &*((offset + current.start_address().as_u64()) as *const PageTable);
            new.zero();
            for i in 256..512 {
                new[i] = cur[i].clone();
            }
        }
        Ok(Self {
            l4: frame,
            vmas: VmaMap::new(),
            resident_pages: 0,
            stale_frames: alloc::vec::Vec::new(),
            needs_flush: false,
        })
    }

    fn table(&mut self) -> OffsetPageTable<'_> {
        let offset = paging::phys_offset();
        // SAFETY: `l4` is this address space's level-4 table, reached
        // through the physical-memory mapping, and `&mut self` makes this
        // the only reference to it.
        unsafe {
            let l4 = &mut *((offset + self.l4.start_address().as_u64()) as *mut PageTable);
            OffsetPageTable::new(l4, VirtAddr::new(offset))
        }
    }

    /// The page-directory entry covering user address `addr`, if the
    /// tables above it exist.
    fn pde(&mut self, addr: u64) -> Option<&mut PageTableEntry> {
        let va = VirtAddr::new(addr);
        let offset = paging::phys_offset();
        let table = |e: &PageTableEntry| {
            let f = e.flags();
            (f.contains(PageTableFlags::PRESENT) && !f.contains(PageTableFlags::HUGE_PAGE))
                .then(|| (offset + e.addr().as_u64()) as *mut PageTable)
        };
        // SAFETY: `self.l4` is this address space's level-4 table and every
        // present, non-huge entry below it points at a page table this
        // address space owns; all are reached through the physical-memory
        // mapping, and `&mut self` keeps other users of these tables out
        // (the caller holds the address-space lock).
        unsafe {
            let l4 = &mut *((offset + self.l4.start_address().as_u64()) as *mut PageTable);
            let l3 = &mut *table(&l4[va.p4_index()])?;
            let l2 = &mut *table(&l3[va.p3_index()])?;
            Some(&mut l2[va.p2_index()])
        }
    }

    /// The first address at or after `addr` that a page table covers: `addr`
    /// itself if a level-1 table (or a 2 MiB page) is there, else the start
    /// of the next 2 MiB, 1 GiB or 512 GiB region whose table is missing
    /// here. Everything in between is certainly unmapped, so walks over a
    /// range skip it instead of looking at every page (munmap of an
    /// unpopulated 1 TiB area would otherwise take 2^28 steps).
    fn next_covered(&mut self, addr: u64) -> u64 {
        let va = VirtAddr::new(addr);
        let offset = paging::phys_offset();
        let next = |size: u64| (addr | (size - 1)).saturating_add(1);
        let present = |e: &PageTableEntry| e.flags().contains(PageTableFlags::PRESENT);
        // SAFETY: as in `pde`: this address space's own tables, reached
        // through the physical-memory mapping, only read here.
        unsafe {
            let l4 = &*((offset + self.l4.start_address().as_u64()) as *const PageTable);
            let e4 = &l4[va.p4_index()];
            if !present(e4) {
                return next(512 << 30);
            }
            let l3 = &*((offset + e4.addr().as_u64()) as *const PageTable);
            let e3 = &l3[va.p3_index()];
            if !present(e3) {
                return next(1 << 30);
            }
            if e3.flags().contains(PageTableFlags::HUGE_PAGE) {
                return addr;
            }
            let l2 = &*((offset + e3.addr().as_u64()) as *const PageTable);
            if !present(&l2[va.p2_index()]) {
                return next(HUGE);
            }
        }
        addr
    }

    /// The 2 MiB page mapped at `base` (2 MiB-aligned): its first frame and
    /// flags.
    fn huge_at(&mut self, base: u64) -> Option<(PhysAddr, PageTableFlags)> {
        let e = self.pde(base)?;
        let f = e.flags();
        (f.contains(PageTableFlags::PRESENT) && f.contains(PageTableFlags::HUGE_PAGE))
            .then(|| (e.addr(), f))
    }

    /// Takes the 2 MiB page at `base` out of the tables; its frames (if
    /// this address space owns them) are freed after the TLB shootdown.
    fn drop_huge(&mut self, base: u64) {
        let Some((phys, flags)) = self.huge_at(base) else {
            return;
        };
        if let Some(e) = self.pde(base) {
            e.set_unused();
        }
        x86_64::instructions::tlb::flush(VirtAddr::new(base));
        self.needs_flush = true;
        self.resident_pages -= FRAMES_PER_HUGE;
        huge_counter(flags).fetch_sub(HUGE, core::sync::atomic::Ordering::Relaxed);
        if !flags.contains(NOT_OWNED) {
            self.stale_frames
                .push(StaleFrame::Huge(PhysFrame::containing_address(phys)));
        }
    }

    /// Frees the whole user half of a dead process: every frame this
    /// address space owns (2 MiB blocks included; file pages mapped in
    /// place are not its own), every page table below its level-4 table,
    /// and the level-4 table. First this CPU loads the kernel's own table
    /// and every other CPU that still has this one loaded (an idle CPU
    /// keeps the last CR3) is made to switch too, so nothing can walk the
    /// tables while they are freed. Call only once no thread of the
    /// process runs anywhere.
    pub fn destroy(mut self) {
        let Some(kernel) = paging::kernel_l4() else {
            return;
        };
        let (_, flags) = Cr3::read();
        // SAFETY: the kernel's table maps the kernel half as every process
        // table does, so the kernel keeps running; no thread of this
        // process runs here any more.
        unsafe { Cr3::write(kernel, flags) };
        crate::arch::x86_64::context::detach_from_user_tables();
        crate::arch::x86_64::tlb::retire(self.l4, kernel);
        for f in core::mem::take(&mut self.stale_frames) {
            match f {
                StaleFrame::Small(f) => frames::free(f),
                StaleFrame::Huge(b) => frames::free_huge(b),
            }
        }
        let offset = paging::phys_offset();
        let table = |e: &PageTableEntry| -> Option<&'static PageTable> {
            let f = e.flags();
            // SAFETY: a present, non-huge entry of this address space's
            // tables points at a page table it owns, reached through the
            // physical-memory mapping; no CPU walks these tables any more
            // (see above) and nothing writes them until they are freed.
            (f.contains(PageTableFlags::PRESENT) && !f.contains(PageTableFlags::HUGE_PAGE))
                .then(|| unsafe { &*((offset + e.addr().as_u64()) as *const PageTable) })
        };
        let free_addr = |a: PhysAddr| frames::free(PhysFrame::containing_address(a));
        // SAFETY: as above, for the level-4 table itself.
        let l4 = unsafe { &*((offset + self.l4.start_address().as_u64()) as *const PageTable) };
        for e4 in l4.iter().take(256) {
            let Some(l3) = table(e4) else { continue };
            for e3 in l3.iter() {
                let Some(l2) = table(e3) else { continue };
                for e2 in l2.iter() {
                    let f = e2.flags();
                    if !f.contains(PageTableFlags::PRESENT) {
                        continue;
                    }
                    if f.contains(PageTableFlags::HUGE_PAGE) {
                        huge_counter(f).fetch_sub(HUGE, core::sync::atomic::Ordering::Relaxed);
                        if !f.contains(NOT_OWNED) {
                            for i in 0..FRAMES_PER_HUGE {
                                free_addr(e2.addr() + i * PAGE);
                            }
                        }
                        continue;
                    }
                    if let Some(l1) = table(e2) {
                        for e1 in l1.iter() {
                            let f = e1.flags();
                            if f.contains(PageTableFlags::PRESENT) && !f.contains(NOT_OWNED) {
                                free_addr(e1.addr());
                            }
                        }
                    }
                    free_addr(e2.addr());
                }
                free_addr(e3.addr());
            }
            free_addr(e4.addr());
        }
        frames::free(self.l4);
    }

    /// Makes this the active address space (loads CR3).
    pub fn activate(&self) {
        let (_, flags) = Cr3::read();
        // SAFETY: the table maps the kernel half exactly like the current
        // one, so the kernel keeps running; the user half is this process's.
        unsafe { Cr3::write(self.l4, flags) };
    }

    /// Maps a zeroed frame at `page` with `prot` and returns it.
    fn map_zeroed(&mut self, page: u64, prot: Prot) -> Result<PhysFrame, MapError> {
        self.map_filled(page, prot, &[])
    }

    /// Maps a fresh frame holding `data` (zero-filled after it) at `page`
    /// (user memory: not from the kernel's reserve).
    fn map_filled(&mut self, page: u64, prot: Prot, data: &[u8]) -> Result<PhysFrame, MapError> {
        let frame = frames::alloc_user().ok_or(MapError::OutOfFrames)?;
        let offset = paging::phys_offset();
        let n = data.len().min(PAGE as usize);
        let dst = (offset + frame.start_address().as_u64()) as *mut u8;
        // SAFETY: `frame` was just allocated and is reached through the
        // physical-memory mapping; nothing else refers to it, and both
        // writes stay inside its 4 KiB.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), dst, n);
            core::ptr::write_bytes(dst.add(n), 0, PAGE as usize - n);
        };
        if let Err(e) = self.map_frame(page, frame, pte_flags(prot)) {
            frames::free(frame);
            return Err(e);
        }
        Ok(frame)
    }

    /// Enters `frame` at user page `page` with `flags`.
    fn map_frame(
        &mut self,
        page: u64,
        frame: PhysFrame,
        flags: PageTableFlags,
    ) -> Result<(), MapError> {
        let p = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
        // SAFETY: the page is a user address that is not mapped yet
        // (callers check); the frame is either fresh (owned by this entry)
        // or a file page marked NOT_OWNED, which user code may only write
        // when it is a shared, writable file mapping.
        match unsafe {
            self.table()
                .map_to_with_table_flags(p, frame, flags, table_flags(), &mut UserFrames)
        } {
            Ok(flush) => {
                flush.flush();
                self.resident_pages += 1;
                Ok(())
            }
            Err(e) => Err(match e {
                x86_64::structures::paging::mapper::MapToError::FrameAllocationFailed => {
                    MapError::OutOfFrames
                }
                x86_64::structures::paging::mapper::MapToError::PageAlreadyMapped(_) => {
                    MapError::AlreadyMapped(page)
                }
                x86_64::structures::paging::mapper::MapToError::ParentEntryHugePage => {
                    MapError::HugePage(page)
                }
            }),
        }
    }

    /// The frame mapped at `page`, if any.
    fn frame_at(&mut self, page: u64) -> Option<PhysFrame> {
        self.entry_at(page).map(|(f, _)| f)
    }

    /// The frame mapped at `page` and the entry's flags.
    fn entry_at(&mut self, page: u64) -> Option<(PhysFrame, PageTableFlags)> {
        match self.table().translate(VirtAddr::new(page)) {
            TranslateResult::Mapped {
                frame,
                offset,
                flags,
            } => Some((
                PhysFrame::containing_address(frame.start_address() + offset),
                flags,
            )),
            _ => None,
        }
    }

    /// Writes `data` at user address `addr`, mapping pages of the area
    /// that contains it as needed (used by the loader, before the process
    /// runs; writes go through the physical mapping, so read-only and
    /// executable pages can be filled).
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MapError> {
        let offset = paging::phys_offset();
        let mut done = 0usize;
        while done < data.len() {
            let at = addr + done as u64;
            let page = at & !(PAGE - 1);
            let frame = match self.frame_at(page) {
                Some(f) => f,
                None => {
                    let prot = self
                        .vmas
                        .find(page)
                        .map(|v| v.prot)
                        .ok_or(MapError::BadRange)?;
                    self.map_zeroed(page, prot)?
                }
            };
            let in_page = (at - page) as usize;
            let n = (PAGE as usize - in_page).min(data.len() - done);
            // SAFETY: `frame` is this address space's private frame for
            // `page`; the copy stays inside it.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data[done..].as_ptr(),
                    (offset + frame.start_address().as_u64() + in_page as u64) as *mut u8,
                    n,
                );
            }
            done += n;
        }
        Ok(())
    }

    /// Resolves a fault at `addr` (a user address); file pages come from
    /// `pager`.
    pub fn fault(
        &mut self,
        addr: u64,
        write: bool,
        exec: bool,
        pager: &mut dyn Pager,
    ) -> FaultOutcome {
        count(&events::PGFAULT);
        let Some(vma) = self.vmas.find(addr).copied() else {
            return FaultOutcome::Unmapped;
        };
        if !vma.prot.allows(write, exec) {
            return FaultOutcome::Denied(vma.prot);
        }
        let page = addr & !(PAGE - 1);
        if let Some((frame, flags)) = self.entry_at(page) {
            if flags.contains(PageTableFlags::HUGE_PAGE) {
                // File data in 2 MiB pages is read-only (a change of rights
                // splits it) and anonymous 2 MiB entries get their new
                // rights from `reprotect`: the fault came from a stale TLB
                // entry, and retrying finds the current one.
                return FaultOutcome::Resolved;
            }
            if write
                && flags.contains(COW)
                && let Kind::File(map) = vma.kind
            {
                pager.account(map, PAGE, false);
                return self.break_cow(page, frame, vma.prot);
            }
            // Present with the right VMA rights but still faulting: the PTE
            // is stale after an mprotect; refresh it.
            self.reprotect(page, page + PAGE, vma.prot);
            return FaultOutcome::Resolved;
        }
        let Kind::File(map) = vma.kind else {
            if let Some(r) = self.try_huge_anon(addr, vma) {
                return r;
            }
            return match self.map_zeroed(page, vma.prot) {
                Ok(_) => FaultOutcome::Resolved,
                Err(_) => FaultOutcome::OutOfMemory,
            };
        };
        if let Some(r) = self.try_huge(addr, vma, map, pager) {
            return r;
        }
        let mut buf = [0u8; PAGE as usize];
        let r = match pager.page(map, map.offset_of(page), write, &mut buf) {
            Err(o) => return o,
            Ok(FilePage::Copy(n)) => {
                let n = n.min(buf.len());
                pager.account(map, n as u64, false);
                self.map_filled(page, vma.prot, &buf[..n]).map(|_| ())
            }
            Ok(FilePage::Frame { phys, cow }) => {
                pager.account(map, PAGE, true);
                let mut flags = pte_flags(vma.prot) | NOT_OWNED;
                if cow {
                    flags = (flags | COW) & !PageTableFlags::WRITABLE;
                }
                let frame = PhysFrame::containing_address(PhysAddr::new(phys));
                self.map_frame(page, frame, flags)
            }
        };
        match r {
            Ok(()) => FaultOutcome::Resolved,
            Err(_) => FaultOutcome::OutOfMemory,
        }
    }

    /// Maps the 2 MiB page around `addr` of read-only file area `vma` in one
    /// go, if the area covers it and the pager has the file data for it
    /// physically aligned. `None`: use 4 KiB pages.
    fn try_huge(
        &mut self,
        addr: u64,
        vma: kcore::vma::Vma,
        map: kcore::vma::FileMap,
        pager: &mut dyn Pager,
    ) -> Option<FaultOutcome> {
        let base = addr & !(HUGE - 1);
        if vma.prot.write || vma.prot == Prot::NONE || base < vma.start || base + HUGE > vma.end {
            return None;
        }
        let phys = pager.huge_page(map, map.offset_of(base))?;
        let frame = PhysFrame::<Size2MiB>::from_start_address(PhysAddr::new(phys)).ok()?;
        // SAFETY: `base..base + 2 MiB` lies in a read-only file area; the
        // frame is file data in the initrd, pinned while mapped and marked
        // NOT_OWNED, so it is never freed through this entry.
        if !unsafe { self.map_huge(base, frame, pte_flags(vma.prot) | NOT_OWNED | COW) } {
            return None;
        }
        count(&events::THP_FILE_MAPPED);
        pager.account(map, HUGE, true);
        Some(FaultOutcome::Resolved)
    }

    /// Enters the 2 MiB page `frame` at `base` with `flags`, if nothing of
    /// that range is mapped yet (a 4 KiB table there makes it fail), and
    /// counts it.
    ///
    /// # Safety
    ///
    /// `base..base + 2 MiB` must lie in one area whose rights `flags`
    /// carry, and `frame` must be either owned by this entry from now on or
    /// marked `NOT_OWNED` and stay allocated while mapped.
    unsafe fn map_huge(
        &mut self,
        base: u64,
        frame: PhysFrame<Size2MiB>,
        flags: PageTableFlags,
    ) -> bool {
        let page = Page::<Size2MiB>::containing_address(VirtAddr::new(base));
        // SAFETY: upheld by the caller; the mapper refuses a range that is
        // already (partly) mapped.
        let r = unsafe {
            self.table()
                .map_to_with_table_flags(page, frame, flags, table_flags(), &mut UserFrames)
        };
        match r {
            Ok(flush) => {
                flush.flush();
                self.resident_pages += FRAMES_PER_HUGE;
                huge_counter(flags).fetch_add(HUGE, core::sync::atomic::Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Maps a fresh, zeroed 2 MiB page around `addr` in anonymous area
    /// `vma` if the area covers the whole aligned range, nothing of it is
    /// mapped yet, and memory is plentiful. `None`: use a 4 KiB page.
    fn try_huge_anon(&mut self, addr: u64, vma: kcore::vma::Vma) -> Option<FaultOutcome> {
        let base = addr & !(HUGE - 1);
        if vma.kind != Kind::Anon
            || vma.prot == Prot::NONE
            || base < vma.start
            || base + HUGE > vma.end
            || self.pde(base).is_some_and(|e| !e.is_unused())
        {
            return None;
        }
        let block = frames::alloc_huge_user(HUGE_ANON_RESERVE);
        let Some(frame) = block else {
            count(&events::THP_FAULT_FALLBACK);
            return None;
        };
        let virt = paging::phys_offset() + frame.start_address().as_u64();
        // SAFETY: the 2 MiB block was just allocated for this entry and is
        // reached through the physical-memory mapping; nothing else refers
        // to it.
        unsafe { core::ptr::write_bytes(virt as *mut u8, 0, HUGE as usize) };
        // SAFETY: `base..base + 2 MiB` lies inside an anonymous area with
        // these rights; the block is fresh and owned by this entry.
        if !unsafe { self.map_huge(base, frame, pte_flags(vma.prot)) } {
            frames::free_huge(frame);
            return None;
        }
        count(&events::THP_FAULT_ALLOC);
        Some(FaultOutcome::Resolved)
    }

    /// Splits every 2 MiB page overlapping `[start, end)` into 512 4 KiB
    /// entries with the same frames and rights. On `Err` (no frame left for
    /// a page table) the pages not yet split are unchanged.
    pub fn split_huge(&mut self, start: u64, end: u64) -> Result<(), MapError> {
        let mut base = start & !(HUGE - 1);
        while base < end {
            let covered = self.next_covered(base);
            if covered > base {
                base = covered;
                continue;
            }
            self.split_one(base)?;
            base += HUGE;
        }
        Ok(())
    }

    /// Splits the 2 MiB pages that `[start, end)` covers only partly (the
    /// ones at its ends), so that an operation on the range can treat every
    /// 2 MiB page in it as a whole. Run it before changing any area: on
    /// `Err` nothing is lost.
    pub fn split_edges(&mut self, start: u64, end: u64) -> Result<(), MapError> {
        if !start.is_multiple_of(HUGE) {
            self.split_one(start & !(HUGE - 1))?;
        }
        if !end.is_multiple_of(HUGE) && end > start {
            self.split_one(end & !(HUGE - 1))?;
        }
        Ok(())
    }

    /// Replaces the 2 MiB page at `base`, if there is one, by a page table
    /// of 512 4 KiB entries for the same frames and rights (and ownership:
    /// each entry of an anonymous page then owns its frame).
    fn split_one(&mut self, base: u64) -> Result<(), MapError> {
        let Some((phys, flags)) = self.huge_at(base) else {
            return Ok(());
        };
        // The kernel's allocator, reserve included: splitting is how munmap,
        // mprotect and MADV_DONTNEED act on part of a 2 MiB page, and a
        // program out of memory must still be able to give memory back.
        let table = frames::alloc().ok_or(MapError::OutOfFrames)?;
        let small = flags & !PageTableFlags::HUGE_PAGE;
        let offset = paging::phys_offset();
        // SAFETY: `table` was just allocated and is reached through the
        // physical-memory mapping; nothing else refers to it yet.
        let t = unsafe { &mut *((offset + table.start_address().as_u64()) as *mut PageTable) };
        for (i, e) in t.iter_mut().enumerate() {
            e.set_addr(phys + i as u64 * PAGE, small);
        }
        if let Some(e) = self.pde(base) {
            // The same translations, now through a 4 KiB table.
            e.set_addr(table.start_address(), table_flags());
        }
        x86_64::instructions::tlb::flush(VirtAddr::new(base));
        self.needs_flush = true;
        huge_counter(flags).fetch_sub(HUGE, core::sync::atomic::Ordering::Relaxed);
        count(&events::THP_SPLIT_PMD);
        Ok(())
    }

    /// A write to a private copy-on-write page: copies it into a fresh
    /// frame of its own (user memory: refused near the reserve, and then
    /// the shared page stays mapped).
    fn break_cow(&mut self, page: u64, shared: PhysFrame, prot: Prot) -> FaultOutcome {
        let Some(frame) = frames::alloc_user() else {
            return FaultOutcome::OutOfMemory;
        };
        let offset = paging::phys_offset();
        // SAFETY: `shared` is a file page mapped here read-only; it stays
        // allocated while mapped (the file is pinned). `frame` was just
        // allocated and nothing else refers to it. Both are reached through
        // the physical-memory mapping and the copy is exactly 4 KiB.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (offset + shared.start_address().as_u64()) as *const u8,
                (offset + frame.start_address().as_u64()) as *mut u8,
                PAGE as usize,
            )
        };
        let p = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
        if let Ok((_, flush)) = self.table().unmap(p) {
            flush.flush();
            self.needs_flush = true;
            self.resident_pages -= 1;
        }
        match self.map_frame(page, frame, pte_flags(prot)) {
            Ok(()) => FaultOutcome::Resolved,
            Err(_) => {
                frames::free(frame);
                FaultOutcome::OutOfMemory
            }
        }
    }

    /// What must happen once the lock on this address space is dropped
    /// (see [`Stale::finish`]).
    pub fn take_stale(&mut self) -> Stale {
        let flush = core::mem::take(&mut self.needs_flush);
        Stale {
            frames: core::mem::take(&mut self.stale_frames),
            flush,
        }
    }

    /// Unmaps every page in `[start, end)`; their frames are freed by
    /// [`Stale::finish`] after other CPUs have dropped them from their TLBs.
    pub fn unmap_pages(&mut self, start: u64, end: u64) {
        // Callers split the edges before changing areas; should that have
        // failed, a 2 MiB page sticking out of the range goes whole (file
        // data faults back in).
        let _ = self.split_edges(start, end);
        let mut page = start;
        while page < end {
            let covered = self.next_covered(page);
            if covered > page {
                page = covered;
                continue;
            }
            // A 2 MiB page can only begin at the range's start (an edge
            // that could not be split) or at a 2 MiB boundary.
            let base = page & !(HUGE - 1);
            let edge = page == start || page == base;
            if let Some((_, flags)) = edge.then(|| self.huge_at(base)).flatten() {
                if (base < start || base + HUGE > end) && !flags.contains(NOT_OWNED) {
                    crate::klog!(
                        "mm",
                        "no memory to split the 2 MiB page at {base:#x}: all of it is unmapped"
                    );
                }
                self.drop_huge(base);
                page = base + HUGE;
                continue;
            }
            let p = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
            let owned = self
                .entry_at(page)
                .is_some_and(|(_, f)| !f.contains(NOT_OWNED));
            match self.table().unmap(p) {
                Ok((frame, flush)) => {
                    flush.flush();
                    if owned {
                        self.stale_frames.push(StaleFrame::Small(frame));
                    }
                    self.needs_flush = true;
                    self.resident_pages -= 1;
                }
                Err(UnmapError::PageNotMapped)
                | Err(UnmapError::ParentEntryHugePage)
                | Err(UnmapError::InvalidFrameAddress(_)) => {}
            }
            page += PAGE;
        }
    }

    /// Applies `prot` to the pages mapped in `[start, end)`.
    pub fn reprotect(&mut self, start: u64, end: u64, prot: Prot) {
        let _ = self.split_edges(start, end);
        let mut page = start;
        while page < end {
            let covered = self.next_covered(page);
            if covered > page {
                page = covered;
                continue;
            }
            let base = page & !(HUGE - 1);
            let edge = page == start || page == base;
            if let Some((_, old)) = edge.then(|| self.huge_at(base)).flatten() {
                let whole = base >= start && base + HUGE <= end;
                if whole && !old.contains(NOT_OWNED) {
                    // Anonymous: the 2 MiB entry takes the new rights.
                    let p = Page::<Size2MiB>::containing_address(VirtAddr::new(base));
                    // SAFETY: only the rights of this address space's own
                    // anonymous 2 MiB page change.
                    if let Ok(flush) = unsafe { self.table().update_flags(p, pte_flags(prot)) } {
                        flush.flush();
                        self.needs_flush = true;
                    }
                    page = base + HUGE;
                    continue;
                }
                if old.contains(NOT_OWNED) {
                    // File data is split (copy-on-write works per 4 KiB
                    // page); without memory for that it goes and faults
                    // back in with the new rights.
                    if self.split_one(base).is_err() {
                        self.drop_huge(base);
                        page = base + HUGE;
                        continue;
                    }
                } else {
                    // Part of an anonymous 2 MiB page that could not be
                    // split: mprotect splits the edges before changing the
                    // areas and fails with ENOMEM, so this is not reached.
                    page = base + HUGE;
                    continue;
                }
            }
            let p = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
            if let Some((_, old)) = self.entry_at(page) {
                let mut flags = pte_flags(prot) | (old & (NOT_OWNED | COW));
                if old.contains(COW) {
                    flags.remove(PageTableFlags::WRITABLE);
                }
                // SAFETY: only the flags of an existing user mapping change;
                // the frame keeps its owner, and copy-on-write pages stay
                // read-only.
                if let Ok(flush) = unsafe { self.table().update_flags(p, flags) } {
                    flush.flush();
                    self.needs_flush = true;
                }
            }
            page += PAGE;
        }
    }

    /// Moves the pages mapped in `[from, from + len)` to `to` (mremap),
    /// without copying their contents.
    pub fn move_pages(&mut self, from: u64, len: u64, to: u64, prot: Prot) -> Result<(), MapError> {
        self.split_huge(from, from + len)?;
        let mut off = 0;
        while off < len {
            let covered = self.next_covered(from + off) - from;
            if covered > off {
                off = covered;
                continue;
            }
            let src = Page::<Size4KiB>::containing_address(VirtAddr::new(from + off));
            let keep = self
                .entry_at(from + off)
                .map_or(PageTableFlags::empty(), |(_, f)| f & (NOT_OWNED | COW));
            let mut flags = pte_flags(prot) | keep;
            if keep.contains(COW) {
                flags.remove(PageTableFlags::WRITABLE);
            }
            if let Ok((frame, flush)) = self.table().unmap(src) {
                flush.flush();
                self.needs_flush = true;
                let dst = Page::<Size4KiB>::containing_address(VirtAddr::new(to + off));
                // SAFETY: the frame was just unmapped from `src`, so this
                // entry takes over its ownership (or its NOT_OWNED/COW
                // marking); `dst` is free (the VMA map checked the
                // destination range).
                match unsafe {
                    self.table().map_to_with_table_flags(
                        dst,
                        frame,
                        flags,
                        table_flags(),
                        &mut GlobalFrames,
                    )
                } {
                    Ok(f) => f.flush(),
                    Err(_) => {
                        if !keep.contains(NOT_OWNED) {
                            frames::free(frame);
                        }
                        self.resident_pages -= 1;
                        return Err(MapError::OutOfFrames);
                    }
                }
            }
            off += PAGE;
        }
        Ok(())
    }
}
