//! The zcrx registration fixture and RQ publisher shared by the executor and `bench`.
//!
//! One default registration per [`Spec`] (liburing `test/zcrx.c`'s `default_reg()`): the
//! structs are public fields, so a check overrides just its field (e.g. through the uapi
//! field tables on `as_bytes_mut(&mut reg.ifq)`). [`Registration::place`] puts area, region
//! and event in their own pages and points `ifq` at them (then `ifq` overrides, pointers
//! included), [`Registration::call`] registers and reads the kernel's answers back,
//! [`Registration::register`] does both; [`Registration::finish`] yields an [`Instance`].

use super::Error;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::kernel::sys::{self, Mem, SysResult};
use crate::kernel::uapi::*;

/// What the registration binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// ZCRX_REG_NODEV: no device; received data is copied into the area.
    Nodev,
    /// A hardware (or netdevsim) rx queue.
    Netdev { if_idx: u32, if_rxq: u32 },
    /// ZCRX_REG_IMPORT of an exported zcrx fd: the ifq carries no area, region or event.
    Import(RawFd),
}

/// Who allocates the RQ region: the fixture (IORING_MEM_REGION_TYPE_USER) or the kernel
/// (then mmapped from the ring at `region.mmap_offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionMem {
    User,
    Kernel,
}

/// The few knobs of a default registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub target: Target,
    /// Requested RQ entries (the kernel rounds up to a power of two); sizes the region.
    pub rq_entries: u32,
    pub area_pages: usize,
    pub region: RegionMem,
}

/// Which of the four structs [`Registration::place`] leaves read-only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readonly {
    pub ifq: bool,
    pub area: bool,
    pub region: bool,
    pub event: bool,
}

/// Area, region and event descriptors in their own pages, where the kernel reads and writes.
pub struct Args {
    pub area: Mem,
    pub region: Mem,
    pub event: Mem,
    /// Whether [`Registration::call`] leaves the ifq page read-only.
    pub ifq_readonly: bool,
}

/// One zcrx registration: its memory and the four uapi structs, defaults filled in.
pub struct Registration {
    pub spec: Spec,
    /// What `area.addr` and (user regions only) `region.user_addr` point at.
    pub area_mem: Mem,
    pub region_mem: Option<Mem>,
    /// Bytes of the region: the RQ header and entries, then room for `zcrx_stats`.
    pub region_size: usize,
    /// Where `zcrx_stats` goes by default (`stats_offset: auto`): right after the entries.
    pub stats_auto: u64,
    pub ifq: ZcrxIfqReg,
    pub area: ZcrxAreaReg,
    pub region: RegionDesc,
    /// The event descriptor; `ifq.event_desc` points at it only when it is Some.
    pub event: Option<ZcrxEventDesc>,
}

/// Region bytes and default stats offset for `rq_entries`: a header of at most 256 bytes, the
/// entries rounded up like the kernel (power of two, at most 65536), then `zcrx_stats`.
pub fn region_layout(rq_entries: u32) -> (usize, u64) {
    let entries = (rq_entries.max(1) as u64).next_power_of_two().min(65536) as usize;
    let stats_auto = 256 + 16 * entries;
    (sys::page_align(stats_auto + std::mem::size_of::<ZcrxStats>()), stats_auto as u64)
}

impl Registration {
    /// Allocates the memory and fills the defaults; ifq pointers stay 0 until [`Self::place`].
    pub fn new(spec: Spec) -> io::Result<Registration> {
        let (region_size, stats_auto) = region_layout(spec.rq_entries);
        let area_mem = Mem::anon(spec.area_pages.max(1) * sys::page_size())?;
        let region_mem = match spec.region {
            RegionMem::User => Some(Mem::anon(region_size)?),
            RegionMem::Kernel => None,
        };
        let len = (spec.area_pages * sys::page_size()) as u64;
        let area = ZcrxAreaReg { addr: area_mem.addr(), len, ..Default::default() };
        let region = match &region_mem {
            Some(m) => RegionDesc {
                user_addr: m.addr(),
                size: region_size as u64,
                flags: IORING_MEM_REGION_TYPE_USER,
                ..Default::default()
            },
            None => RegionDesc { size: region_size as u64, ..Default::default() },
        };
        let ifq = match spec.target {
            Target::Nodev => ZcrxIfqReg { rq_entries: spec.rq_entries, flags: ZCRX_REG_NODEV, ..Default::default() },
            Target::Netdev { if_idx, if_rxq } => {
                ZcrxIfqReg { if_idx, if_rxq, rq_entries: spec.rq_entries, ..Default::default() }
            }
            Target::Import(fd) => ZcrxIfqReg { if_idx: fd as u32, flags: ZCRX_REG_IMPORT, ..Default::default() },
        };
        Ok(Registration { spec, area_mem, region_mem, region_size, stats_auto, ifq, area, region, event: None })
    }

    /// Copies area, region and event into their own pages and points `ifq.area_ptr`,
    /// `ifq.region_ptr` and (with an event) `ifq.event_desc` at them; imports get no pointers.
    /// Overrides of those `ifq` fields go after this.
    pub fn place(&mut self, ro: Readonly) -> io::Result<Args> {
        let event = self.event.unwrap_or_default();
        let args = Args {
            area: page(as_bytes(&self.area), ro.area)?,
            region: page(as_bytes(&self.region), ro.region)?,
            event: page(as_bytes(&event), ro.event)?,
            ifq_readonly: ro.ifq,
        };
        if !matches!(self.spec.target, Target::Import(_)) {
            self.ifq.area_ptr = args.area.addr();
            self.ifq.region_ptr = args.region.addr();
            self.ifq.event_desc = if self.event.is_some() { args.event.addr() } else { 0 };
        }
        Ok(args)
    }

    /// IORING_REGISTER_ZCRX_IFQ with `ifq` in its own page; while `retry` lasts, EEXIST and
    /// EBUSY (a queue a previous instance still holds) are retried every 20 ms. Whatever the
    /// outcome, the structs are read back from their pages. Returns the result and attempts.
    pub fn call(&mut self, ring_fd: RawFd, args: &Args, nr_args: u32, retry: Option<Duration>) -> (SysResult, u32) {
        let ifq_page = match page(as_bytes(&self.ifq), args.ifq_readonly) {
            Ok(p) => p,
            Err(e) => return (Err(e.raw_os_error().unwrap_or(libc::ENOMEM)), 0),
        };
        let mut got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_IFQ, ifq_page.addr(), nr_args);
        let mut tries = 1;
        if let Some(d) = retry {
            let until = Instant::now() + d;
            while matches!(got, Err(libc::EEXIST) | Err(libc::EBUSY)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
                // A read-only page cannot have been written, so it needs no rewrite.
                if !args.ifq_readonly {
                    ifq_page.write(0, as_bytes(&self.ifq));
                }
                got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_IFQ, ifq_page.addr(), nr_args);
                tries += 1;
            }
        }
        read_back(&mut self.ifq, &ifq_page);
        read_back(&mut self.area, &args.area);
        read_back(&mut self.region, &args.region);
        if let Some(ev) = &mut self.event {
            read_back(ev, &args.event);
        }
        (got, tries)
    }

    /// [`Self::place`] (all writable) and [`Self::call`] with one argument and no retry.
    pub fn register(&mut self, ring_fd: RawFd) -> SysResult {
        let args = self.place(Readonly::default()).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))?;
        self.call(ring_fd, &args, 1, None).0
    }

    /// After a successful call: the data path's view, with the kernel's region mmapped; an
    /// import gets no [`Rq`] (it shares the exporter's memory, which only the caller knows).
    pub fn finish(self, ring_fd: RawFd) -> io::Result<Instance> {
        let import = matches!(self.spec.target, Target::Import(_));
        let id = self.ifq.zcrx_id;
        let region = match (import, self.region_mem) {
            (true, _) => None,
            (false, Some(m)) => Some(m),
            (false, None) => Some(Mem::map_fd(ring_fd, self.region.size as usize, self.region.mmap_offset)?),
        };
        let mmap_offset = if import {
            IORING_MAP_OFF_ZCRX_REGION | ((id as u64) << IORING_OFF_ZCRX_SHIFT)
        } else {
            self.region.mmap_offset
        };
        let stats_offset = self.event.filter(|ev| ev.flags & ZCRX_EVENT_DESC_FLAG_STATS != 0).map(|ev| ev.stats_offset);
        Ok(Instance {
            id,
            offsets: self.ifq.offsets,
            rq_entries: self.ifq.rq_entries,
            area: self.area_mem,
            area_token: self.area.rq_area_token,
            rq: region.map(|m| Rq::new(Rc::new(m), self.ifq.offsets, self.ifq.rq_entries)),
            region_size: self.region.size,
            mmap_offset,
            buf_len: if self.ifq.rx_buf_len == 0 { sys::page_size() as u32 } else { self.ifq.rx_buf_len },
            stats_offset,
        })
    }
}

/// A registered zcrx instance.
pub struct Instance {
    pub id: u32,
    /// What registration wrote to `ifq.offsets` and `ifq.rq_entries` (an import's Rq is
    /// built over the exporter's region with them).
    pub offsets: ZcrxOffsets,
    pub rq_entries: u32,
    pub area: Mem,
    pub area_token: u64,
    pub rq: Option<Rq>,
    pub region_size: u64,
    /// Where the region is mmapped from the ring (computed from the id for imports).
    pub mmap_offset: u64,
    /// `rx_buf_len`, or a page when the kernel left it 0.
    pub buf_len: u32,
    /// Where `zcrx_stats` is, when the event descriptor asked for them.
    pub stats_offset: Option<u64>,
}

/// Publishes buffers back to the kernel through the refill queue in the region.
#[derive(Clone)]
pub struct Rq {
    region: Rc<Mem>,
    offsets: ZcrxOffsets,
    entries: u32,
}

impl Rq {
    /// Over `region` with the offsets and entry count registration returned. Nothing is
    /// checked here: a bad offset is reported by the call that uses it.
    pub fn new(region: Rc<Mem>, offsets: ZcrxOffsets, entries: u32) -> Rq {
        Rq { region, offsets, entries }
    }

    pub fn region(&self) -> &Rc<Mem> {
        &self.region
    }

    pub fn head(&self) -> Result<&AtomicU32, Error> {
        self.region
            .atomic_u32(self.offsets.head as usize)
            .ok_or_else(|| Error::Invalid("RQ head offset outside the region".into()))
    }

    pub fn tail(&self) -> Result<&AtomicU32, Error> {
        self.region
            .atomic_u32(self.offsets.tail as usize)
            .ok_or_else(|| Error::Invalid("RQ tail offset outside the region".into()))
    }

    /// Entries that fit without overwriting unread ones: `entries - (tail - head)`.
    pub fn room(&self) -> Result<u32, Error> {
        let used = self.tail()?.load(Ordering::Relaxed).wrapping_sub(self.head()?.load(Ordering::Acquire));
        Ok(self.entries.saturating_sub(used))
    }

    /// Writes `rqes` at `tail & (entries - 1)` onwards and publishes the new tail (release).
    /// It does not check [`room`](Self::room): a case may overfill the RQ on purpose.
    pub fn push(&self, rqes: &[ZcrxRqe]) -> Result<(), Error> {
        if rqes.is_empty() {
            return Ok(());
        }
        let tail = self.tail()?;
        let mask = self.entries.checked_sub(1).ok_or(Error::Invalid("rq_entries is 0".into()))?;
        let mut t = tail.load(Ordering::Relaxed);
        for r in rqes {
            let slot = self.offsets.rqes as usize + (t & mask) as usize * std::mem::size_of::<ZcrxRqe>();
            if !self.region.write(slot, as_bytes(r)) {
                return Err(Error::Invalid("RQE slot outside the region".into()));
            }
            t = t.wrapping_add(1);
        }
        tail.store(t, Ordering::Release);
        Ok(())
    }

    /// The RQE returning the `buf_len`-byte (power of two) buffer holding CQE offset `off`.
    pub fn rqe(off: u64, buf_len: u32) -> ZcrxRqe {
        ZcrxRqe { off: off & !(buf_len.max(1) as u64 - 1), len: buf_len, pad: 0 }
    }
}

/// A writable page (or more) holding `bytes`, then read-only if asked.
fn page(bytes: &[u8], readonly: bool) -> io::Result<Mem> {
    let m = Mem::anon(sys::page_size().max(bytes.len()))?;
    m.write(0, bytes);
    if readonly {
        m.protect(libc::PROT_READ)?;
    }
    Ok(m)
}

fn read_back<T: Copy>(v: &mut T, m: &Mem) {
    if let Some(b) = m.slice(0, std::mem::size_of::<T>()) {
        as_bytes_mut(v).copy_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(target: Target, region: RegionMem) -> Registration {
        Registration::new(Spec { target, rq_entries: 1024, area_pages: 16, region }).expect("new")
    }

    /// An RQ over plain memory: head at 0, tail at 64, entries from 256.
    fn rq(entries: u32) -> Rq {
        let offsets = ZcrxOffsets { head: 0, tail: 64, rqes: 256, ..Default::default() };
        Rq::new(Rc::new(Mem::anon(4096).expect("mmap")), offsets, entries)
    }

    #[test]
    fn region_layout_is_the_executors() {
        assert_eq!(sys::page_size(), 4096);
        assert_eq!(region_layout(1024), (20480, 256 + 16 * 1024));
        assert_eq!(region_layout(1000), region_layout(1024));
        assert_eq!(region_layout(0), (4096, 256 + 16));
        assert_eq!(region_layout(u32::MAX), (sys::page_align(256 + 16 * 65536 + 16), 256 + 16 * 65536));
        // Bench sized its regions without the stats tail; for its entry counts that is the same.
        for n in [1024usize, 8192] {
            assert_eq!(region_layout(n as u32).0, sys::page_align(256 + 16 * n));
        }
    }

    #[test]
    fn defaults_place_and_call() {
        let mut r = reg(Target::Nodev, RegionMem::User);
        assert_eq!((r.ifq.flags, r.ifq.rq_entries, r.ifq.area_ptr, r.event), (ZCRX_REG_NODEV, 1024, 0, None));
        assert_eq!((r.area.addr, r.area.len, r.stats_auto), (r.area_mem.addr(), 16 * 4096, 256 + 16 * 1024));
        let user = r.region_mem.as_ref().map(|m| m.addr()).expect("user region");
        assert_eq!((r.region.user_addr, r.region.size, r.region.flags), (user, 20480, IORING_MEM_REGION_TYPE_USER));
        r.event = Some(ZcrxEventDesc { flags: ZCRX_EVENT_DESC_FLAG_STATS, stats_offset: 99, ..Default::default() });
        let args = r.place(Readonly { ifq: true, event: true, ..Default::default() }).expect("place");
        let ptrs = (args.area.addr(), args.region.addr(), args.event.addr());
        assert_eq!((r.ifq.area_ptr, r.ifq.region_ptr, r.ifq.event_desc), ptrs);
        assert_eq!(args.region.slice(0, 64), Some(as_bytes(&r.region)));
        // -1 is no ring (never EEXIST/EBUSY): one try, and nothing was written back.
        let ifq = r.ifq;
        let (got, tries) = r.call(-1, &args, 1, Some(Duration::from_millis(100)));
        assert!(got.is_err() && tries == 1 && r.ifq == ifq, "{got:?} after {tries}");
        let z = r.finish(-1).expect("finish");
        assert_eq!(z.rq.as_ref().map(|q| q.region().addr()), Some(user));
        assert_eq!((z.buf_len, z.stats_offset, z.region_size), (4096, Some(99), 20480));

        let r = reg(Target::Netdev { if_idx: 7, if_rxq: 3 }, RegionMem::Kernel);
        assert_eq!((r.ifq.if_idx, r.ifq.if_rxq, r.ifq.flags, r.region_mem.is_none()), (7, 3, 0, true));
        assert_eq!(r.region, RegionDesc { size: 20480, ..Default::default() });
        let mut r = reg(Target::Import(9), RegionMem::User);
        r.place(Readonly::default()).expect("place");
        assert_eq!(r.ifq, ZcrxIfqReg { if_idx: 9, flags: ZCRX_REG_IMPORT, ..Default::default() });
        assert!(r.register(-1).is_err());
    }

    #[test]
    fn push_wraps_and_publishes() {
        let q = rq(4);
        q.tail().expect("tail").store(u32::MAX - 1, Ordering::Relaxed);
        q.head().expect("head").store(u32::MAX - 1, Ordering::Relaxed);
        assert_eq!(q.room().ok(), Some(4));
        let rqes: Vec<ZcrxRqe> = (0..3).map(|i| Rq::rqe(i << 12, 4096)).collect();
        q.push(&rqes).expect("push");
        assert_eq!(q.tail().expect("tail").load(Ordering::Acquire), 1);
        // (u32::MAX - 1) & 3 = 2: slots 2, 3, then 0.
        for (slot, want) in [2, 3, 0].into_iter().zip(&rqes) {
            assert_eq!(q.region().slice(256 + slot * 16, 16), Some(as_bytes(want)));
        }
        assert_eq!(q.room().ok(), Some(1));
        q.push(&rqes).expect("overfilling is the caller's choice");
        assert_eq!(q.room().ok(), Some(0));
    }

    #[test]
    fn push_reports_bad_offsets_and_entries() {
        assert_eq!(rq(0).push(&[ZcrxRqe::default()]).map_err(|e| e.to_string()), Err("rq_entries is 0".into()));
        let q = rq(512);
        q.tail().expect("tail").store(300, Ordering::Relaxed);
        assert_eq!(q.push(&[ZcrxRqe::default()]).map_err(|e| e.to_string()), Err("RQE slot outside the region".into()));
        let q = Rq::new(q.region().clone(), ZcrxOffsets { head: 4096, tail: 2, ..Default::default() }, 4);
        assert!(q.head().is_err() && q.tail().is_err() && q.room().is_err());
    }

    #[test]
    fn rqe_rounds_down_to_the_buffer() {
        let off = (2u64 << IORING_ZCRX_AREA_SHIFT) | 0x3123;
        assert_eq!(Rq::rqe(off, 4096), ZcrxRqe { off: (2 << IORING_ZCRX_AREA_SHIFT) | 0x3000, len: 4096, pad: 0 });
        assert_eq!(Rq::rqe(0x3123, 16384).off, 0);
    }
}
