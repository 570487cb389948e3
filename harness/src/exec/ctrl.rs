//! Control-plane steps: IORING_REGISTER_ZCRX_CTRL (flush, export, arm, add area),
//! IORING_REGISTER_QUERY, raw register calls, extra rings and mmap of the RQ region.

use super::*;

impl Ctx<'_> {
    pub(super) fn register_raw(&mut self, ring: &str, r: &RegisterRaw, expect: Option<&Expect>) -> StepResult {
        let op = self.value(&r.opcode, Ns::RegisterOp)? as u32;
        let arg = match &r.arg {
            Some(v) => self.value(v, Ns::Any)?,
            None => 0,
        };
        let fd = match &r.fd {
            Some(v) => self.value(v, Ns::Any)? as i64 as RawFd,
            None => self.ring_fd(ring)?,
        };
        let got = sys::io_uring_register(fd, op, arg, r.nr_args);
        self.note(format!("io_uring_register(op {op}, arg {arg:#x}, nr_args {}) -> {}", r.nr_args, describe(&got)));
        self.check(&got, expect, &|_| None)
    }

    pub(super) fn open_ring(&mut self, o: &OpenRing, expect: Option<&Expect>) -> StepResult {
        let flags = setup_flags(&o.spec.flags)?;
        let got = match Ring::new(o.spec.entries, flags, o.spec.cq_entries) {
            Ok(r) => {
                self.st.rings.insert(o.name.clone(), r);
                Ok(0)
            }
            Err(RingError::Kernel(e)) => Err(e),
            Err(e) => return Err(e.to_string().into()),
        };
        self.note(format!("io_uring_setup(flags {flags:#x}) as {} -> {}", o.name, describe(&got)));
        self.check(&got, expect, &|_| None)
    }

    pub(super) fn ctrl_call(&mut self, ring: &str, c: &Ctrl, expect: Option<&Expect>) -> Result<SysResult, StepError> {
        let ring_fd = self.ring_fd(ring)?;
        let op = self.value(&c.op, Ns::CtrlOp)? as u32;
        let zname = c.zcrx.clone().unwrap_or_else(|| "z0".into());
        let mut ctrl = ZcrxCtrl { zcrx_id: self.st.zcrx.get(&zname).map_or(0, |z| z.id), op, ..Default::default() };
        let mut new_area = None;
        if op == ZCRX_CTRL_ADD_AREA {
            let pages = c.area_pages.unwrap_or(self.case.def.zcrx.area_pages) as usize;
            let mem = Mem::anon(pages.max(1) * page()).map_err(|e| harness(format!("mmap: {e}")))?;
            self.st.last.insert("new_area.addr".into(), mem.addr());
            let mut a = ZcrxAreaReg { addr: mem.addr(), len: (pages * page()) as u64, ..Default::default() };
            self.apply(as_bytes_mut(&mut a), &AREA_REG, &c.area)?;
            let page = page_mem(c.area_readonly, as_bytes(&a))?;
            ctrl.body[0] = page.addr();
            if c.area_readonly {
                self.note(format!("  area_reg at {:#x} on a read-only page", page.addr()));
            }
            new_area = Some((mem, page));
        }
        self.apply(as_bytes_mut(&mut ctrl), &CTRL, &c.set)?;
        let page = page_mem(c.readonly, as_bytes(&ctrl))?;
        let arg = match &c.arg {
            Some(v) => self.value(v, Ns::Any)?,
            None => page.addr(),
        };
        self.note(format!("  arg {}", dump(&CTRL, as_bytes(&ctrl))));
        let got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_CTRL, arg, c.nr_args);
        self.note(format!(
            "IORING_REGISTER_ZCRX_CTRL(op {op}, zcrx_id {}{}) -> {}",
            ctrl.zcrx_id,
            overrides_summary(&[("set", &c.set), ("area", &c.area)], None),
            describe(&got)
        ));
        let read = |k: &str| -> Option<u64> {
            let (p, f) = k.split_once('.')?;
            match p {
                "ctrl" => Some(uapi::read_field(page.slice(0, CTRL.size)?, CTRL.get(f)?)),
                // EXPORT: whether the returned fd has FD_CLOEXEC (1) or not (0).
                "export" if f == "cloexec" && got.is_ok() => {
                    let fd = uapi::read_field(page.slice(0, CTRL.size)?, CTRL.get("zc_export.zcrx_fd")?) as RawFd;
                    sys::cloexec(fd).map(u64::from)
                }
                "area" => {
                    let (_, ap) = new_area.as_ref()?;
                    Some(uapi::read_field(ap.slice(0, AREA_REG.size)?, AREA_REG.get(f)?))
                }
                _ => None,
            }
        };
        self.check_zero(&got, expect, &read)?;
        if got.is_ok() {
            match op {
                ZCRX_CTRL_EXPORT => {
                    let fd = read("ctrl.zc_export.zcrx_fd").ok_or("cannot read zcrx_fd")? as RawFd;
                    if !sys::fd_is_open(fd) {
                        return Err(format!("EXPORT returned fd {fd}, which is not open").into());
                    }
                    // SAFETY: the kernel just installed this fd for us.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    let name = c.save_fd.clone().unwrap_or_else(|| "box".into());
                    self.note(format!("  exported fd {fd} saved as ${name} (cloexec={:?})", sys::cloexec(fd)));
                    self.st.last.insert(format!("{name}.cloexec"), sys::cloexec(fd).unwrap_or(false) as u64);
                    self.st.exported_from.insert(name.clone(), zname.clone());
                    self.st.fds.insert(name, owned);
                }
                ZCRX_CTRL_ADD_AREA => {
                    let token = read("area.rq_area_token").ok_or("cannot read the new token")?;
                    if let (Some((mem, _)), Some(z)) = (new_area, self.st.zcrx.get_mut(&zname)) {
                        z.areas.insert(token >> IORING_ZCRX_AREA_SHIFT, Rc::new(mem));
                    }
                    self.note(format!("  new area token {token:#x}"));
                }
                _ => {}
            }
        }
        Ok(got)
    }

    pub(super) fn ctrl(&mut self, ring: &str, c: &Ctrl, expect: Option<&Expect>) -> StepResult {
        for _ in 0..c.repeat.unwrap_or(1).max(1) {
            self.ctrl_call(ring, c, expect).map(drop)?;
        }
        Ok(())
    }

    /// FLUSH_RQ as the data loops recycle (`recycle: flush`, a re-arm after -ENOMEM): one call,
    /// whose success is a set-up assertion like that of any call a step expects nothing of, but
    /// with the struct in the harness's memory (no page mapped and unmapped per call) and no log
    /// line or observed value per call: a 1 MiB transfer makes hundreds, and they cost more than
    /// the transfer under TCG. The loops note how many they made ([`Objects::flushes`]); a failure
    /// is logged. A `ctrl: { op: FLUSH_RQ }` step goes through [`ctrl_call`](Self::ctrl_call),
    /// with its dumps, overrides and read-backs.
    pub(super) fn flush(&mut self, zname: &str) -> StepResult {
        let z = self.st.zcrx.get(zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let (id, ring) = (z.id, z.ring.clone());
        let ring_fd = self.ring_fd(&ring)?;
        let ctrl = ZcrxCtrl { zcrx_id: id, op: ZCRX_CTRL_FLUSH_RQ, ..Default::default() };
        let got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_CTRL, std::ptr::from_ref(&ctrl) as u64, 0);
        self.st.flushes += 1;
        if got.is_err() {
            self.note(format!("IORING_REGISTER_ZCRX_CTRL(FLUSH_RQ, zcrx_id {id}) -> {}", describe(&got)));
        }
        self.must_return_zero(&got)
    }

    pub(super) fn query(&mut self, ring: &str, q: &Query, expect: Option<&Expect>) -> StepResult {
        let op = self.value(&q.op, Ns::QueryOp)? as u32;
        let data_table = match op {
            IO_URING_QUERY_OPCODES => Some(&QUERY_OPCODES),
            IO_URING_QUERY_ZCRX => Some(&QUERY_ZCRX),
            IO_URING_QUERY_ZCRX_EVENT => Some(&QUERY_ZCRX_EVENT),
            _ => None,
        };
        let n = q.chain.unwrap_or(1).max(1) as usize;
        let hdrs = Mem::anon(n * QUERY_HDR.size).map_err(|e| harness(format!("{e}")))?;
        let data = Mem::anon(page()).map_err(|e| harness(format!("{e}")))?;
        for i in 0..n {
            let mut h = QueryHdr {
                next_entry: if i + 1 < n { hdrs.addr() + ((i + 1) * QUERY_HDR.size) as u64 } else { 0 },
                query_data: data.addr(),
                query_op: op,
                size: data_table.map_or(64, |t| t.size as u32),
                ..Default::default()
            };
            self.apply(as_bytes_mut(&mut h), &QUERY_HDR, &q.hdr)?;
            hdrs.write(i * QUERY_HDR.size, as_bytes(&h));
        }
        let fd = if q.on_ring { self.ring_fd(ring)? } else { -1 };
        let got = sys::io_uring_register(fd, IORING_REGISTER_QUERY, hdrs.addr(), q.nr_args);
        let read = |k: &str| -> Option<u64> {
            let (p, f) = k.split_once('.')?;
            match p {
                "hdr" => {
                    let v = uapi::read_field(hdrs.slice(0, QUERY_HDR.size)?, QUERY_HDR.get(f)?);
                    // result is an s32: compare as a sign-extended value.
                    Some(if f == "result" { v as u32 as i32 as i64 as u64 } else { v })
                }
                "data" => {
                    let t = data_table?;
                    Some(uapi::read_field(data.slice(0, t.size)?, t.get(f)?))
                }
                _ => None,
            }
        };
        let result = read("hdr.result").unwrap_or(0) as i64;
        self.note(format!(
            "IORING_REGISTER_QUERY(fd {fd}, op {op}, chain {n}, nr_args {}) -> {} hdr.result={}",
            q.nr_args,
            describe(&got),
            sys::res_name(result)
        ));
        self.check_zero(&got, expect, &read)
    }

    pub(super) fn mmap_region(&mut self, ring: &str, x: &MmapRegion, expect: Option<&Expect>) -> StepResult {
        let ring_fd = self.ring_fd(ring)?;
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let (def_off, size) = match self.st.zcrx.get(&zname) {
            Some(z) => (z.mmap_offset, z.region_size.max(page())),
            None => (IORING_MAP_OFF_ZCRX_REGION, page()),
        };
        let off = match &x.offset {
            Some(v) => self.value(v, Ns::Any)?,
            None => def_off,
        };
        let (got, mem) = match Mem::map_fd(ring_fd, size, off) {
            Ok(m) => (Ok(0), Some(m)),
            Err(e) => (Err(e.raw_os_error().unwrap_or(libc::EIO)), None),
        };
        self.note(format!("mmap(ring, offset {off:#x}, {size}) -> {}", describe(&got)));
        self.check(&got, expect, &|_| None)?;
        if let (Some(m), Some(z)) = (mem, self.st.zcrx.get_mut(&zname)) {
            if z.region.is_none() {
                z.region = Some(Rc::new(m));
            }
        }
        Ok(())
    }
}
