//! The `register` step: IORING_REGISTER_ZCRX_IFQ from the default registration
//! (`kernel::zcrx::Registration`, shared with `bench`) with the case's overrides, read-back of
//! what the kernel wrote, and the registered instance kept for the data path.

use super::*;
use crate::kernel::uffd::{Trapped, WriteTrap};
use crate::kernel::zcrx::{Args, Readonly, RegionMem, Registration, Spec, Target};
use std::os::fd::OwnedFd;

/// How long a registration on a device queue waits for the previous owner's teardown.
pub(super) const QUEUE_RELEASE_WAIT_S: u64 = 5;

/// How long a registration waits for a device queue's previous owner to let go: a registration
/// on a device queue that is expected to succeed waits up to QUEUE_RELEASE_WAIT_S (the kernel
/// tears the previous instance down asynchronously); anything else does not wait.
pub(super) fn queue_wait(target: &Target, expect: Option<&Expect>) -> Option<Duration> {
    let expects_success = expect.is_none_or(|e| e.errno.is_none() && e.kernels.iter().all(|k| k.errno.is_none()));
    (matches!(target, Target::Netdev { .. }) && expects_success).then_some(Duration::from_secs(QUEUE_RELEASE_WAIT_S))
}

impl Ctx<'_> {
    /// The default registration of this case and topology, before any override.
    pub(super) fn default_registration(
        &self,
        r: &Register,
        import_fd: Option<RawFd>,
    ) -> Result<Registration, StepError> {
        let defs = &self.case.def.zcrx;
        // The region is sized from the requested entry count (rounded up like the kernel).
        let rq_entries = match r.ifq.get("rq_entries") {
            Some(v) => self.value(&v.value, Ns::Any)? as u32,
            None => defs.rq_entries,
        };
        let target = match import_fd {
            Some(fd) => Target::Import(fd),
            None if self.topo.nodev => Target::Nodev,
            None => Target::Netdev { if_idx: self.topo.if_idx, if_rxq: self.topo.if_rxq },
        };
        let region = match r.region_kind.unwrap_or(defs.region) {
            RegionKind::User => RegionMem::User,
            RegionKind::Kernel => RegionMem::Kernel,
        };
        let area_pages = r.area_pages.unwrap_or(defs.area_pages) as usize;
        let spec = Spec { target, rq_entries, area_pages, region };
        let mut reg = Registration::new(spec).map_err(|e| harness(format!("mmap: {e}")))?;
        if import_fd.is_none() {
            // Only the region size follows an rq_entries override; the ifq gets the override itself.
            reg.ifq.rq_entries = defs.rq_entries;
        }
        if let Some(b) = r.rq_fill {
            let m =
                reg.region_mem.as_ref().ok_or_else(|| harness("rq_fill needs a user-provided region".to_string()))?;
            if !m.write(0, &vec![b; m.len()]) {
                return Err(harness("rq_fill: the region could not be written".to_string()));
            }
        }
        if let Some(b) = r.region_fill {
            let no_region = || harness("region_fill needs a user-provided region".to_string());
            let m = reg.region_mem.as_ref().ok_or_else(no_region)?;
            let from = (reg.stats_auto as usize).min(m.len());
            if !m.write(from, &vec![b; m.len() - from]) {
                return Err(harness("region_fill: the region could not be written".to_string()));
            }
        }
        if r.area_huge {
            let m = crate::kernel::sys::Mem::huge(area_pages * page())
                .map_err(|e| StepError::Skip(format!("no 2 MiB huge pages for the area (vm.nr_hugepages): {e}")))?;
            reg.area.addr = m.addr();
            reg.area_mem = m;
        }
        match r.area_layout {
            Some(AreaLayout::SamePage) => {
                let m = crate::kernel::sys::Mem::same_page(area_pages * page())
                    .map_err(|e| harness(format!("same_page area: {e}")))?;
                reg.area.addr = m.addr();
                reg.area_mem = m;
            }
            None => {}
        }
        match r.area_prot {
            Some(AreaProt::Read) => reg.area_mem.protect(libc::PROT_READ).map_err(|e| harness(format!("{e}")))?,
            Some(AreaProt::TailNone) => {
                let last = (area_pages.max(1) - 1) * page();
                // SAFETY: the last page of our own mapping.
                if unsafe { libc::mprotect(reg.area_mem.as_ptr().add(last) as *mut _, page(), libc::PROT_NONE) } != 0 {
                    return Err(harness(format!("mprotect: {}", std::io::Error::last_os_error())));
                }
            }
            None => {}
        }
        Ok(reg)
    }

    /// A registration names a device by `if_idx` (unless it imports, where the field is an
    /// fd): only this topology's DUT (or its peer when it shares the namespace), a device the
    /// case created, any device of a namespace made for this case alone, or an index verified
    /// to name no device here (ENODEV cases). Anything else is a device the operator did not
    /// name: the case fails before the syscall.
    pub(super) fn device_allowed(&self, if_idx: u32) -> StepResult {
        let Some(name) = crate::kernel::netdev::ifname(if_idx).map_err(harness)? else { return Ok(()) };
        let t = self.topo;
        let peer_here = (t.peer_netns == t.netns).then_some(t.peer_dev.as_deref()).flatten();
        if self.own_netns
            || t.dut_dev.as_deref() == Some(name.as_str())
            || peer_here == Some(name.as_str())
            || self.made_devices.contains(&name)
        {
            return Ok(());
        }
        Err(StepError::from(format!(
            "if_idx {if_idx} names `{name}` in this network namespace, which is not a device of topology {} \
             (DUT {}, peer {}) nor one the case created: refused before the syscall (a case may name only its \
             topology's devices, or an index that names no device)",
            t.name,
            t.dut_dev.as_deref().unwrap_or("none"),
            t.peer_dev.as_deref().unwrap_or("none"),
        )))
    }

    /// Replaces the area's user memory by a udmabuf of the same size (see `Register::area_dmabuf`).
    fn dmabuf_area(&mut self, name: &str, reg: &mut Registration) -> StepResult {
        let len = reg.area.len as usize;
        let u = crate::kernel::sys::udmabuf(len).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => StepError::Skip("no /dev/udmabuf in this kernel (CONFIG_UDMABUF)".into()),
            _ => harness(format!("udmabuf of {len} bytes: {e}")),
        })?;
        reg.area.addr = 0;
        reg.area.flags |= IORING_ZCRX_AREA_DMABUF;
        reg.area.dmabuf_fd = u.dmabuf.as_raw_fd() as u32;
        reg.area_mem = u.mem;
        self.st.last.insert("area.dmabuf_fd".into(), u.dmabuf.as_raw_fd() as u64);
        self.st.last.insert("area.memfd".into(), u.memfd.as_raw_fd() as u64);
        let ino = nix::sys::stat::fstat(&u.dmabuf).map_err(|e| harness(format!("fstat of the dma-buf: {e}")))?.st_ino;
        self.st.last.insert(format!("{name}.dmabuf_ino"), ino);
        // Kept under names no reference can spell (a dot inside the key), closed with the case.
        self.st.fds.insert(format!("{name}.dmabuf"), u.dmabuf);
        self.st.fds.insert(format!("{name}.memfd"), u.memfd);
        self.note(format!(
            "  area: udmabuf of {len} bytes (dma-buf fd {}, memfd {})",
            reg.area.dmabuf_fd, self.st.last["area.memfd"]
        ));
        Ok(())
    }

    pub(super) fn register(&mut self, ring: &str, r: &Register, expect: Option<&Expect>) -> StepResult {
        let ring_fd = self.ring_fd(ring)?;
        let name = r.name.clone().unwrap_or_else(|| "z0".into());
        let import_fd = match &r.import {
            Some(f) => Some(self.st.fds.get(f).ok_or_else(|| format!("no exported fd named `{f}`"))?.as_raw_fd()),
            None => None,
        };
        let mut reg = self.default_registration(r, import_fd)?;
        if r.area_dmabuf {
            self.dmabuf_area(&name, &mut reg)?;
        }
        self.st.last.insert("area.addr".into(), reg.area_mem.addr());
        self.st.last.insert("area.len".into(), reg.area.len);
        self.st.last.insert("region.addr".into(), reg.region_mem.as_ref().map_or(0, |m| m.addr()));
        self.st.last.insert("region.size".into(), reg.region_size as u64);
        self.st.last.insert("stats.auto".into(), reg.stats_auto);

        self.apply(as_bytes_mut(&mut reg.area), &AREA_REG, &r.area)?;
        self.apply(as_bytes_mut(&mut reg.region), &REGION_DESC, &r.region)?;
        if let Some(ev) = &r.event {
            let mut ev = ev.clone();
            if let Some(v) = ev.get_mut("stats_offset") {
                if v.value == Value::Str("auto".into()) {
                    v.value = Value::UInt(reg.stats_auto);
                }
            }
            let mut event = ZcrxEventDesc::default();
            self.apply(as_bytes_mut(&mut event), &EVENT_DESC, &ev)?;
            reg.event = Some(event);
        }
        let ro = |s: &str| r.readonly.iter().any(|x| x == s);
        let ro = Readonly { ifq: ro("ifq"), area: ro("area"), region: ro("region"), event: ro("event") };
        let args = reg.place(ro).map_err(|e| harness(format!("mmap: {e}")))?;
        self.apply(as_bytes_mut(&mut reg.ifq), &IFQ_REG, &r.ifq)?;
        if reg.ifq.flags & ZCRX_REG_IMPORT == 0 {
            self.device_allowed(reg.ifq.if_idx)?;
        }

        self.note(format!("  arg {}", dump(&IFQ_REG, as_bytes(&reg.ifq))));
        if reg.ifq.area_ptr == args.area.addr() {
            self.note(format!("  area_ptr -> {}", dump(&AREA_REG, as_bytes(&reg.area))));
        }
        if reg.ifq.region_ptr == args.region.addr() {
            self.note(format!("  region_ptr -> {}", dump(&REGION_DESC, as_bytes(&reg.region))));
        }
        if let Some(ev) = reg.event.filter(|_| reg.ifq.event_desc == args.event.addr()) {
            self.note(format!("  event_desc -> {}", dump(&EVENT_DESC, as_bytes(&ev))));
        }
        // A queue's previous owner (the case before, in its own process) is torn down
        // asynchronously by the kernel: a registration expected to succeed on a device queue
        // waits for it (EEXIST/EBUSY, bounded) instead of failing.
        let retry = r.retry_ms.map(Duration::from_millis).or(queue_wait(&reg.spec.target, expect));
        let trap = match &r.traffic_before_copy_out {
            Some(t) => Some(self.copy_out_trap(t, &args)?),
            None => None,
        };
        let (got, tries) = reg.call(ring_fd, &args, r.nr_args, retry);
        if let Some(t) = trap {
            self.copy_out_trap_end(t)?;
        }
        if tries > 1 {
            self.note(format!("  registration tried {tries} times"));
        }
        let summary = overrides_summary(&[("ifq", &r.ifq), ("area", &r.area), ("region", &r.region)], r.event.as_ref());
        let kind = match reg.spec.target {
            Target::Import(_) => "import",
            Target::Nodev => "nodev",
            Target::Netdev { .. } => "netdev",
        };
        self.note(format!("IORING_REGISTER_ZCRX_IFQ({kind}{summary}) -> {}", describe(&got)));
        if let (Some(name), Err(en)) = (&r.unsupported, &got) {
            if sys::errno_by_name(name) == Some(*en) {
                return Err(StepError::Skip(format!(
                    "the device does not support this registration (kernel returned {name})"
                )));
            }
        }
        let event = reg.event.unwrap_or_default();
        let read = |k: &str| -> Option<u64> {
            let (p, f) = k.split_once('.')?;
            let (bytes, table) = match p {
                "ifq" => (as_bytes(&reg.ifq), &IFQ_REG),
                "area" => (as_bytes(&reg.area), &AREA_REG),
                "region" => (as_bytes(&reg.region), &REGION_DESC),
                "event" => (as_bytes(&event), &EVENT_DESC),
                _ => return None,
            };
            Some(uapi::read_field(bytes, table.get(f)?))
        };
        self.check_zero(&got, expect, &read)?;
        if got.is_err() {
            return Ok(());
        }
        self.keep_instance(ring, &name, r, reg)
    }

    /// Registered: keeps what the data path needs. An import is the same ifq: it shares the
    /// exporter's areas and RQ memory (this process holds both), which lets an importer's data
    /// be checked byte for byte.
    fn keep_instance(&mut self, ring: &str, name: &str, r: &Register, reg: Registration) -> StepResult {
        let ring_fd = self.ring_fd(ring)?;
        let mmap_at = reg.region.mmap_offset;
        let inst = reg.finish(ring_fd).map_err(|e| format!("mmap of the kernel RQ region at {mmap_at:#x}: {e}"))?;
        let exporter = r.import.as_ref().and_then(|f| self.st.exported_from.get(f)).and_then(|z| self.st.zcrx.get(z));
        let (mut rq_entries, mut buf_len) = (inst.rq_entries, inst.buf_len);
        let mut areas = BTreeMap::new();
        let (region, stats_offset) = match exporter {
            Some(z) => {
                areas = z.areas.clone();
                rq_entries = z.rq_entries;
                buf_len = 1 << z.buf_shift;
                (z.region.clone(), z.stats_offset)
            }
            None if r.import.is_some() => (None, None),
            None => {
                areas.insert(inst.area_token >> IORING_ZCRX_AREA_SHIFT, Rc::new(inst.area));
                (inst.rq.as_ref().map(|q| q.region().clone()), inst.stats_offset)
            }
        };
        self.note(format!(
            "  {name}: id={} rq_entries={rq_entries} offsets head={} tail={} rqes={} rx_buf_len={buf_len} token={:#x} mmap_offset={mmap_at:#x}",
            inst.id, inst.offsets.head, inst.offsets.tail, inst.offsets.rqes, inst.area_token,
        ));
        let z = Zcrx {
            ring: ring.to_string(),
            id: inst.id,
            region,
            region_size: inst.region_size as usize,
            mmap_offset: inst.mmap_offset,
            offsets: inst.offsets,
            rq_entries,
            buf_shift: buf_len.trailing_zeros(),
            areas,
            stats_offset,
            held: VecDeque::new(),
            returned: 0,
        };
        self.st.zcrx.insert(name.to_string(), z);
        Ok(())
    }

    pub(super) fn zcrx_mut(&mut self, name: Option<&str>) -> Result<&mut Zcrx, String> {
        let n = name.unwrap_or("z0");
        self.st.zcrx.get_mut(n).ok_or_else(|| format!("no registered zcrx instance `{n}`"))
    }
}

/// A registration's copy-out held while traffic arrives (`register.traffic_before_copy_out`):
/// the helper thread and how to tell it the call has returned.
pub(super) struct CopyOutTrap {
    conn: String,
    bytes: u64,
    stop: OwnedFd,
    helper: std::thread::JoinHandle<Result<Trapped, String>>,
}

impl Ctx<'_> {
    /// Arms the write trap on the area struct's page and starts the thread that, once the
    /// kernel's write stops there, sends the bytes, waits until the receiving socket queued
    /// them and makes the write fail.
    fn copy_out_trap(&mut self, t: &CopyOutTraffic, args: &Args) -> Result<CopyOutTrap, StepError> {
        let conn = t.conn.clone().unwrap_or_else(|| "c0".into());
        let c =
            self.st.conns.get(&conn).ok_or_else(|| format!("no connection `{conn}` (connect before registering)"))?;
        let Some(PeerEnd::Local(peer)) = &c.peer else {
            return Err(StepError::Skip("traffic_before_copy_out needs a local sending end".into()));
        };
        let (peer, recv) = (
            peer.try_clone().map_err(|e| harness(format!("dup: {e}")))?,
            c.recv.try_clone().map_err(|e| harness(format!("dup: {e}")))?,
        );
        let data = pattern(c.base + c.sent, t.bytes as usize);
        let trap = WriteTrap::arm(args.area.addr(), args.area.len() as u64).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOSYS) => StepError::Skip(
                "this kernel has no userfaultfd (CONFIG_USERFAULTFD): the registration's copy-out cannot be held"
                    .into(),
            ),
            _ => harness(format!("userfaultfd on the area struct's page: {e}")),
        })?;
        let (stop_rx, stop) = nix::unistd::pipe().map_err(|e| harness(format!("pipe: {e}")))?;
        let want = t.bytes;
        let helper = std::thread::spawn(move || -> Result<Trapped, String> {
            let got = trap.wait(&stop_rx, Duration::from_secs(10)).map_err(|e| format!("userfaultfd: {e}"))?;
            if !matches!(got, Trapped::Write(_)) {
                return Ok(got);
            }
            nix::unistd::write(&peer, &data).map_err(|e| format!("send: {e}"))?;
            let until = Instant::now() + Duration::from_secs(5);
            let queued = loop {
                let mut n: libc::c_int = 0;
                // SAFETY: FIONREAD writes one int.
                if unsafe { libc::ioctl(recv.as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
                    break Err(format!("FIONREAD: {}", std::io::Error::last_os_error()));
                }
                if n as u64 >= want {
                    break Ok(());
                }
                if Instant::now() >= until {
                    break Err(format!("{n} of {want} bytes queued in the receiving socket after 5 s"));
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            // The write is let go on in any case (dropping the trap would too).
            trap.refuse().map_err(|e| format!("letting the trapped write fail: {e}"))?;
            queued.map(|()| got)
        });
        Ok(CopyOutTrap { conn, bytes: t.bytes, stop, helper })
    }

    /// After the registration returned: stops and joins the helper and says what it did.
    fn copy_out_trap_end(&mut self, t: CopyOutTrap) -> StepResult {
        let _ = nix::unistd::write(&t.stop, &[1u8]);
        let got = t.helper.join().map_err(|_| harness("the copy-out helper thread panicked"))?;
        match got.map_err(harness)? {
            Trapped::Write(at) => {
                if let Some(c) = self.st.conns.get_mut(&t.conn) {
                    c.sent += t.bytes;
                }
                self.note(format!(
                    "  the kernel's write to {at:#x} (the area struct) was held until {} bytes on {} were queued in the receiving socket, then refused",
                    t.bytes, t.conn
                ));
            }
            other => self.note(format!("  the area struct was not written during the call ({other:?})")),
        }
        Ok(())
    }
}
