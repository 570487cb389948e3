//! The refill queue: returning held buffers (recycling), raw RQEs, RQ head/tail checks.

use super::*;

impl Ctx<'_> {
    pub(super) fn rq_set(&mut self, x: &RqSet) -> StepResult {
        let z = self.zcrx_mut(x.zcrx.as_deref())?;
        let q = rq_of(z)?;
        let (head, tail) = (q.head()?, q.tail()?);
        if let Some(t) = x.tail {
            tail.store(t, Ordering::Release);
        }
        if let Some(h) = x.head {
            head.store(h, Ordering::Release);
        }
        self.note(format!("rq_set head={:?} tail={:?}", x.head, x.tail));
        Ok(())
    }

    pub(super) fn expect_rq(&mut self, x: &ExpectRq) -> StepResult {
        let want_head = x.head.as_ref().map(|v| self.value(v, Ns::Any)).transpose()?;
        let want_tail = x.tail.as_ref().map(|v| self.value(v, Ns::Any)).transpose()?;
        let head_min = x.head_at_least.as_ref().map(|v| self.value(v, Ns::Any)).transpose()?;
        let z = self.zcrx_mut(x.zcrx.as_deref())?;
        let q = rq_of(z)?;
        let (head, tail) = (q.head()?, q.tail()?);
        let (h, t, held) = (head.load(Ordering::Acquire), tail.load(Ordering::Acquire), z.held.len());
        self.note(format!("rq head={h} tail={t} held={held}"));
        for (what, want, have) in [
            ("RQ head", want_head.map(|v| v as u32 as u64), h as u64),
            ("RQ tail", want_tail.map(|v| v as u32 as u64), t as u64),
            ("held buffers", x.held.map(|v| v as u64), held as u64),
        ] {
            if want.is_some() {
                self.verdict(what, exact(what, want, have))?;
            }
        }
        if let Some(min) = head_min {
            self.verdict("RQ head at least", exact_min("RQ head", min as u32 as u64, h as u64))?;
        }
        Ok(())
    }

    pub(super) fn expect_stats(&mut self, x: &ExpectStats) -> StepResult {
        let z = self.zcrx_mut(x.zcrx.as_deref())?;
        let off = z.stats_offset.ok_or("this zcrx instance was registered without STATS")? as usize;
        let region = z.region.as_ref().ok_or("no RQ region mapped")?;
        let b = region.slice(off, 16).ok_or("stats_offset outside the region")?;
        let count = u64::from_ne_bytes(b[0..8].try_into().map_err(|_| "short")?);
        let bytes = u64::from_ne_bytes(b[8..16].try_into().map_err(|_| "short")?);
        self.note(format!("stats copy_count={count} copy_bytes={bytes}"));
        for (what, want, have) in [("copy_count", x.copy_count, count), ("copy_bytes", x.copy_bytes, bytes)] {
            if want.is_some() {
                self.verdict(what, exact(what, want, have))?;
            }
        }
        Ok(())
    }

    /// Hands a just-received buffer back as the step's recycling mode says.
    pub(super) fn recycle(&mut self, zname: &str, mode: Recycle) -> StepResult {
        if mode == Recycle::None {
            return Ok(());
        }
        self.recycle_held(zname)?;
        if mode == Recycle::Flush {
            self.flush(zname)?;
        }
        Ok(())
    }

    /// Writes RQEs for the oldest `n` held buffers and publishes the tail.
    pub(super) fn return_held(&mut self, zname: &str, n: usize) -> StepResult {
        let z = self.st.zcrx.get_mut(zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let back: Vec<Held> = (0..n.min(z.held.len())).filter_map(|_| z.held.pop_front()).collect();
        self.give_back(zname, &back)
    }

    /// Hands `back` to the kernel: first checks that their bytes are still what was received
    /// (nothing wrote into a buffer user space owned), then publishes an RQE for each.
    fn give_back(&mut self, zname: &str, back: &[Held]) -> StepResult {
        if back.is_empty() {
            return Ok(());
        }
        let z = self.st.zcrx.get(zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let r = intact(z, back);
        self.verdict("returned buffers intact", r)?;
        let z = self.st.zcrx.get_mut(zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let buf = 1u32 << z.buf_shift;
        let rqes: Vec<ZcrxRqe> = back.iter().map(|h| ZcrxRqe { off: h.off, len: buf, pad: 0 }).collect();
        push_rqes(z, &rqes)
    }

    /// Recycling: returns as many held buffers as the RQ has room for (tail - head <
    /// rq_entries), oldest first; the rest stay held until the kernel consumed entries.
    /// Writing past a full RQ would overwrite entries the kernel has not read yet.
    pub(super) fn recycle_held(&mut self, zname: &str) -> StepResult {
        let z = self.st.zcrx.get_mut(zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let room = rq_of(z)?.room()? as usize;
        let n = room.min(z.held.len());
        let back: Vec<Held> = (0..n).filter_map(|_| z.held.pop_front()).collect();
        self.give_back(zname, &back)
    }

    pub(super) fn return_buffers(&mut self, x: &ReturnBuffers) -> StepResult {
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let held = self.st.zcrx.get(&zname).map(|z| z.held.len()).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let n = x.count.unwrap_or(held);
        if n > held {
            return Err(format!("asked to return {n} buffers, only {held} held").into());
        }
        self.return_held(&zname, n)?;
        self.note(format!("returned {n} buffers to the RQ of {zname}"));
        if x.flush {
            self.flush(&zname)?;
            self.note(format!("FLUSH_RQ on {zname} -> 0"));
        }
        Ok(())
    }

    pub(super) fn rq_push(&mut self, x: &RqPush) -> StepResult {
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let mut rqes = Vec::new();
        {
            let z = self.st.zcrx.get(&zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
            for e in &x.entries {
                let off = if let Some(h) = e.held {
                    z.held.get(h).ok_or_else(|| format!("no held buffer #{h} (holding {})", z.held.len()))?.off
                } else if let Some(v) = &e.off {
                    self.value(v, Ns::Any)?
                } else {
                    (e.area.unwrap_or(0) << IORING_ZCRX_AREA_SHIFT) | (e.index.unwrap_or(0) << z.buf_shift)
                };
                for _ in 0..e.repeat.unwrap_or(1) {
                    rqes.push(ZcrxRqe { off, len: e.len, pad: e.pad });
                }
            }
        }
        // Entries naming held buffers hand them back (their bytes checked first).
        let named: Vec<Held> = {
            let z = self.st.zcrx.get(&zname).ok_or("no zcrx")?;
            x.entries.iter().filter_map(|e| e.held).filter_map(|h| z.held.get(h).copied()).collect()
        };
        if !named.is_empty() {
            let z = self.st.zcrx.get(&zname).ok_or("no zcrx")?;
            let r = intact(z, &named);
            self.verdict("returned buffers intact", r)?;
        }
        let z = self.st.zcrx.get_mut(&zname).ok_or("no zcrx")?;
        for n in &named {
            if let Some(p) = z.held.iter().position(|o| o.off == n.off) {
                z.held.remove(p);
            }
        }
        push_rqes(z, &rqes)?;
        self.note(format!(
            "rq_push {} entries: {:?}",
            rqes.len(),
            rqes.iter().map(|r| (r.off, r.pad)).collect::<Vec<_>>()
        ));
        if x.flush {
            self.flush(&zname)?;
            self.note(format!("FLUSH_RQ on {zname} -> 0"));
        }
        Ok(())
    }
}

/// The RQ publisher (kernel::zcrx::Rq) over this instance's region.
pub(super) fn rq_of(z: &Zcrx) -> Result<Rq, String> {
    let region = z.region.clone().ok_or("no RQ region mapped for this zcrx instance")?;
    Ok(Rq::new(region, z.offsets, z.rq_entries))
}

/// Whether each buffer still holds the stream bytes it was received with.
fn intact(z: &Zcrx, back: &[Held]) -> StepResult {
    for h in back {
        let area = h.off >> IORING_ZCRX_AREA_SHIFT;
        let mem = z.areas.get(&area).ok_or_else(|| format!("held buffer {:#x} names unknown area {area}", h.off))?;
        let at = (h.off & !IORING_ZCRX_AREA_MASK) as usize;
        let got =
            mem.slice(at, h.len as usize).ok_or_else(|| format!("held buffer {:#x} is outside the area", h.off))?;
        let want = pattern(h.pos, h.len as usize);
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            return Err(format!(
                "buffer {:#x} changed while user space held it: stream byte {} is {:#04x}, was {:#04x}",
                h.off,
                h.pos + i as u64,
                got[i],
                want[i]
            )
            .into());
        }
    }
    Ok(())
}

pub(super) fn push_rqes(z: &mut Zcrx, rqes: &[ZcrxRqe]) -> StepResult {
    if rqes.is_empty() {
        return Ok(());
    }
    rq_of(z)?.push(rqes)?;
    z.returned += rqes.len() as u64;
    Ok(())
}
