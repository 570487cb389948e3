//! The `register` step: IORING_REGISTER_ZCRX_IFQ from the default registration with the
//! case's overrides, read-back of what the kernel wrote, and the registered instance kept for
//! the data path.

use super::*;

impl Ctx<'_> {
    pub(super) fn register(&mut self, ring: &str, r: &Register, expect: Option<&Expect>) -> StepResult {
        let ring_fd = self.ring_fd(ring)?;
        let defs = &self.case.def.zcrx;
        let name = r.name.clone().unwrap_or_else(|| "z0".into());
        let import_fd = match &r.import {
            Some(f) => Some(self.fds.get(f).ok_or_else(|| format!("no exported fd named `{f}`"))?.as_raw_fd()),
            None => None,
        };
        // Size the region from the requested entry count (rounded up like the kernel).
        let rq_req = match r.ifq.get("rq_entries") {
            Some(v) => self.value(&v.value, Ns::Any)? as u32,
            None => defs.rq_entries,
        };
        let (region_size, stats_auto) = region_layout(rq_req);
        let region_kind = r.region_kind.unwrap_or(defs.region);
        let pages = r.area_pages.unwrap_or(defs.area_pages) as usize;
        let area_mem = Mem::anon(pages.max(1) * PAGE).map_err(|e| harness(format!("area mmap: {e}")))?;
        match r.area_prot {
            Some(AreaProt::Read) => area_mem.protect(libc::PROT_READ).map_err(|e| harness(format!("{e}")))?,
            Some(AreaProt::TailNone) => {
                let last = (pages.max(1) - 1) * PAGE;
                // SAFETY: the last page of our own mapping.
                if unsafe { libc::mprotect(area_mem.as_ptr().add(last) as *mut _, PAGE, libc::PROT_NONE) } != 0 {
                    return Err(harness(format!("mprotect: {}", std::io::Error::last_os_error())));
                }
            }
            None => {}
        }
        let region_mem = match region_kind {
            RegionKind::User => Some(Mem::anon(region_size).map_err(|e| harness(format!("region mmap: {e}")))?),
            RegionKind::Kernel => None,
        };
        self.last.insert("area.addr".into(), area_mem.addr());
        self.last.insert("area.len".into(), (pages * PAGE) as u64);
        self.last.insert("region.addr".into(), region_mem.as_ref().map_or(0, |m| m.addr()));
        self.last.insert("region.size".into(), region_size as u64);
        self.last.insert("stats.auto".into(), stats_auto);

        let mut area = ZcrxAreaReg { addr: area_mem.addr(), len: (pages * PAGE) as u64, ..Default::default() };
        self.apply(as_bytes_mut(&mut area), &AREA_REG, &r.area)?;
        let mut region = match &region_mem {
            Some(m) => RegionDesc {
                user_addr: m.addr(),
                size: region_size as u64,
                flags: IORING_MEM_REGION_TYPE_USER,
                ..Default::default()
            },
            None => RegionDesc { size: region_size as u64, ..Default::default() },
        };
        self.apply(as_bytes_mut(&mut region), &REGION_DESC, &r.region)?;
        let mut event = ZcrxEventDesc::default();
        if let Some(ev) = &r.event {
            let mut ev = ev.clone();
            if let Some(v) = ev.get_mut("stats_offset") {
                if v.value == Value::Str("auto".into()) {
                    v.value = Value::UInt(stats_auto);
                }
            }
            self.apply(as_bytes_mut(&mut event), &EVENT_DESC, &ev)?;
        }
        let ro = |s: &str| r.readonly.iter().any(|x| x == s);
        let area_page = page_mem(ro("area"), as_bytes(&area))?;
        let region_page = page_mem(ro("region"), as_bytes(&region))?;
        let event_page = page_mem(ro("event"), as_bytes(&event))?;
        let mut ifq = match import_fd {
            Some(fd) => ZcrxIfqReg { if_idx: fd as u32, flags: ZCRX_REG_IMPORT, ..Default::default() },
            None => ZcrxIfqReg {
                if_idx: if self.topo.nodev { 0 } else { self.topo.if_idx },
                if_rxq: if self.topo.nodev { 0 } else { self.topo.if_rxq },
                rq_entries: defs.rq_entries,
                flags: if self.topo.nodev { ZCRX_REG_NODEV } else { 0 },
                area_ptr: area_page.addr(),
                region_ptr: region_page.addr(),
                event_desc: if r.event.is_some() { event_page.addr() } else { 0 },
                ..Default::default()
            },
        };
        self.apply(as_bytes_mut(&mut ifq), &IFQ_REG, &r.ifq)?;
        let ifq_page = page_mem(ro("ifq"), as_bytes(&ifq))?;

        self.note(format!("  arg {}", dump(&IFQ_REG, as_bytes(&ifq))));
        if ifq.area_ptr == area_page.addr() {
            self.note(format!("  area_ptr -> {}", dump(&AREA_REG, as_bytes(&area))));
        }
        if ifq.region_ptr == region_page.addr() {
            self.note(format!("  region_ptr -> {}", dump(&REGION_DESC, as_bytes(&region))));
        }
        if ifq.event_desc == event_page.addr() && ifq.event_desc != 0 {
            self.note(format!("  event_desc -> {}", dump(&EVENT_DESC, as_bytes(&event))));
        }
        let mut got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_IFQ, ifq_page.addr(), r.nr_args);
        if let Some(ms) = r.retry_ms {
            let until = Instant::now() + Duration::from_millis(ms);
            let mut tries = 1;
            while matches!(got, Err(libc::EEXIST) | Err(libc::EBUSY)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
                ifq_page.write(0, as_bytes(&ifq));
                got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_IFQ, ifq_page.addr(), r.nr_args);
                tries += 1;
            }
            if tries > 1 {
                self.note(format!("  registration tried {tries} times"));
            }
        }
        let summary = overrides_summary(&[("ifq", &r.ifq), ("area", &r.area), ("region", &r.region)], r.event.as_ref());
        self.note(format!(
            "IORING_REGISTER_ZCRX_IFQ({}{summary}) -> {}",
            if import_fd.is_some() {
                "import"
            } else if self.topo.nodev {
                "nodev"
            } else {
                "netdev"
            },
            describe(&got)
        ));
        let read = |k: &str| -> Option<u64> {
            let (p, f) = k.split_once('.')?;
            let (mem, table) = match p {
                "ifq" => (&ifq_page, &IFQ_REG),
                "area" => (&area_page, &AREA_REG),
                "region" => (&region_page, &REGION_DESC),
                "event" => (&event_page, &EVENT_DESC),
                _ => return None,
            };
            let field = table.get(f)?;
            Some(uapi::read_field(mem.slice(0, table.size)?, field))
        };
        self.check(&got, expect, &read)?;
        if got.is_err() {
            return Ok(());
        }
        // Registered: keep what the data path needs.
        let mut out = ZcrxIfqReg::default();
        as_bytes_mut(&mut out).copy_from_slice(ifq_page.slice(0, IFQ_REG.size).ok_or("short ifq page")?);
        let mut rd = RegionDesc::default();
        as_bytes_mut(&mut rd).copy_from_slice(region_page.slice(0, REGION_DESC.size).ok_or("short region page")?);
        let mut ar = ZcrxAreaReg::default();
        as_bytes_mut(&mut ar).copy_from_slice(area_page.slice(0, AREA_REG.size).ok_or("short area page")?);
        // An import is the same ifq: it shares the exporter's areas and RQ memory (this
        // process holds both), which lets an importer's data be checked byte for byte.
        let exporter = r.import.as_ref().and_then(|f| self.exported_from.get(f)).and_then(|z| self.zcrx.get(z));
        let region = match (region_mem, import_fd) {
            (_, Some(_)) => exporter.and_then(|z| z.region.clone()),
            (Some(m), None) => Some(Rc::new(m)),
            (None, None) => Some(Rc::new(
                Mem::map_fd(ring_fd, rd.size as usize, rd.mmap_offset)
                    .map_err(|e| format!("mmap of the kernel RQ region at {:#x}: {e}", rd.mmap_offset))?,
            )),
        };
        let mut areas = BTreeMap::new();
        if import_fd.is_none() {
            areas.insert(ar.rq_area_token >> IORING_ZCRX_AREA_SHIFT, Rc::new(area_mem));
        } else if let Some(z) = exporter {
            areas = z.areas.clone();
            out.rq_entries = z.rq_entries;
            out.rx_buf_len = 1 << z.buf_shift;
        }
        let stats_offset = match exporter {
            Some(z) => z.stats_offset,
            None => (event.flags & ZCRX_EVENT_DESC_FLAG_STATS != 0).then_some(event.stats_offset),
        };
        let buf_len = if out.rx_buf_len == 0 { PAGE as u32 } else { out.rx_buf_len };
        self.zcrx.insert(
            name.clone(),
            Zcrx {
                ring: ring.to_string(),
                id: out.zcrx_id,
                region,
                region_size: rd.size as usize,
                mmap_offset: if import_fd.is_some() {
                    IORING_MAP_OFF_ZCRX_REGION | ((out.zcrx_id as u64) << IORING_OFF_ZCRX_SHIFT)
                } else {
                    rd.mmap_offset
                },
                offsets: out.offsets,
                rq_entries: out.rq_entries,
                buf_shift: buf_len.trailing_zeros(),
                areas,
                stats_offset,
                held: VecDeque::new(),
                returned: 0,
            },
        );
        self.note(format!(
            "  {name}: id={} rq_entries={} offsets head={} tail={} rqes={} rx_buf_len={} token={:#x} mmap_offset={:#x}",
            out.zcrx_id,
            out.rq_entries,
            out.offsets.head,
            out.offsets.tail,
            out.offsets.rqes,
            out.rx_buf_len,
            ar.rq_area_token,
            rd.mmap_offset
        ));
        Ok(())
    }

    pub(super) fn zcrx_mut(&mut self, name: Option<&str>) -> Result<&mut Zcrx, String> {
        let n = name.unwrap_or("z0");
        self.zcrx.get_mut(n).ok_or_else(|| format!("no registered zcrx instance `{n}`"))
    }
}
