//! Assertions: every checked value goes through [`Ctx::verdict`], which counts it and, in
//! self-check mode, inverts it; syscall results, read-back fields and CQEs are compared
//! exactly. Also the renderers the step log uses (struct dumps, CQE flag names).

use super::*;
use crate::model::{Answer, Failure, Mismatch};

impl Ctx<'_> {
    /// One assertion: counts it, records its site (the running step and `what`), and in
    /// self-check mode inverts the verdict of the one site being checked.
    pub(super) fn verdict(&self, what: &str, r: StepResult) -> StepResult {
        self.assertion(what, false, r)
    }

    fn assertion(&self, what: &str, setup: bool, r: StepResult) -> StepResult {
        self.asserts.set(self.asserts.get() + 1);
        let site = {
            let mut sites = self.sites.borrow_mut();
            match sites.iter().position(|a| a.at == self.at && a.what == what) {
                Some(i) => i + 1,
                None => {
                    sites.push(Assertion { at: self.at.clone(), what: what.to_string(), setup });
                    sites.len()
                }
            }
        };
        match (self.invert == Some(site), r) {
            (true, Ok(())) => Err(StepError::InvertedHeld { n: site, what: what.to_string() }),
            (_, Err(StepError::Fail(f))) => Err(StepError::Fail(Failure { assertion: Some(site), ..f })),
            (_, r) => r,
        }
    }

    /// A call a step makes without an expectation of its own (FLUSH_RQ in a data loop) must
    /// return 0: the set-up assertion [`check_zero`](Self::check_zero) makes without an
    /// expectation, without recording the answer as observed.
    pub(super) fn must_return_zero(&self, got: &SysResult) -> StepResult {
        self.assertion("must succeed", true, check_result(got, None, Some(0)))
    }

    /// [`check`](Self::check) for a call whose success the uapi defines as a return of 0
    /// (IORING_REGISTER_ZCRX_IFQ, IORING_REGISTER_ZCRX_CTRL, IORING_REGISTER_QUERY): an
    /// expectation of success that names no return value means 0, not any value.
    pub(super) fn check_zero(
        &self,
        got: &SysResult,
        expect: Option<&Expect>,
        read: &dyn Fn(&str) -> Option<u64>,
    ) -> StepResult {
        self.check_as(got, expect, read, Some(0))
    }

    /// Compares a syscall result and each read-back value with the expectation: the errno or
    /// result is one assertion (a set-up assertion when the step expects nothing), each `out`
    /// field another.
    pub(super) fn check(
        &self,
        got: &SysResult,
        expect: Option<&Expect>,
        read: &dyn Fn(&str) -> Option<u64>,
    ) -> StepResult {
        self.check_as(got, expect, read, None)
    }

    fn check_as(
        &self,
        got: &SysResult,
        expect: Option<&Expect>,
        read: &dyn Fn(&str) -> Option<u64>,
        success: Option<i64>,
    ) -> StepResult {
        let default = Expect::default();
        let e = expect.unwrap_or(&default);
        let (errno, ret, out) = self.expectation_for_kernel(e);
        let ret = if errno.is_none() { ret.or(success) } else { ret };
        self.observe(describe(got));
        let r = check_result(got, errno.as_deref(), ret);
        match expect {
            None => self.assertion("must succeed", true, r)?,
            Some(_) => self.verdict("errno/result", r)?,
        }
        for (k, v) in out {
            let want = self.value(&v.value, Ns::Any)?;
            let have = read(k).ok_or_else(|| format!("cannot read back `{k}` here"))?;
            self.observe(format!("{k}={have:#x}"));
            let r = if want != have {
                let m = Mismatch { what: k.clone(), expected: Answer::Value(want), observed: Answer::Value(have) };
                Err(StepError::mismatch(
                    m,
                    format!("{k}: expected {want:#x} ({want}), kernel wrote {have:#x} ({have})"),
                ))
            } else {
                Ok(())
            };
            self.verdict(&format!("out {k}"), r)?;
        }
        Ok(())
    }

    /// Records what the kernel answered at the running step, whatever was expected.
    pub(super) fn observe(&self, what: impl std::fmt::Display) {
        self.observed.borrow_mut().push(format!("{}: {what}", self.at));
    }

    /// The errno, result and outputs expected on the running kernel (a kernel-specific
    /// expectation wins and is noted).
    fn expectation_for_kernel<'e>(&self, e: &'e Expect) -> (Option<String>, Option<i64>, &'e Overrides) {
        let page = crate::kernel::sys::page_size() as u64;
        for k in &e.kernels {
            let on_page = k.page.is_none_or(|p| p == page) && k.page_over.is_none_or(|p| page > p);
            if self.probe.version_in(k.min.as_deref(), k.max.as_deref()) && on_page {
                let mut range = format!("{}..{}", k.min.as_deref().unwrap_or(""), k.max.as_deref().unwrap_or(""));
                if k.page.is_some() || k.page_over.is_some() {
                    range.push_str(&format!(", page {page}"));
                }
                self.notes.borrow_mut().push(format!("[{range}] {}", k.why));
                return (k.errno.clone(), k.ret, &k.out);
            }
        }
        (e.errno.clone(), e.ret, &e.out)
    }

    /// Compares one CQE: its res and its flags are one assertion each; F_32 on mixed rings is
    /// checked separately.
    pub(super) fn check_cqe(&self, ring: &str, c: &Cqe, e: &CqeExpect, what: &str) -> StepResult {
        let want_res = self.value(&e.res, Ns::Res)? as i64 as i32;
        let mut want_flags = 0u32;
        for f in &e.flags {
            want_flags |= consts::lookup(Ns::CqeFlags, f).ok_or_else(|| format!("unknown flag {f}"))? as u32;
        }
        let mut flags = c.flags;
        if self.ring_mixed(ring) && c.big.is_some() {
            flags &= !IORING_CQE_F_32;
        }
        let posted = format!(
            "kernel posted res={} flags={} (user_data {:#x})",
            sys::res_name(c.res as i64),
            flag_names(flags),
            c.user_data
        );
        self.observe(format!("{what}: res={} flags={}", sys::res_name(c.res as i64), flag_names(flags)));
        let r = if c.res != want_res {
            let m =
                Mismatch { what: format!("{what} res"), expected: res_answer(want_res), observed: res_answer(c.res) };
            Err(StepError::mismatch(m, format!("{what}: expected res={}, {posted}", sys::res_name(want_res as i64))))
        } else {
            Ok(())
        };
        self.verdict(&format!("{what} res"), r)?;
        let r = if flags != want_flags {
            let (expected, observed) = (Answer::Text(flag_names(want_flags)), Answer::Text(flag_names(flags)));
            let m = Mismatch { what: format!("{what} flags"), expected, observed };
            Err(StepError::mismatch(m, format!("{what}: expected flags={}, {posted}", flag_names(want_flags))))
        } else {
            Ok(())
        };
        self.verdict(&format!("{what} flags"), r)
    }
}

/// A CQE's res as an answer: a negative one is an errno.
fn res_answer(res: i32) -> Answer {
    match u64::try_from(res) {
        Ok(v) => Answer::Value(v),
        Err(_) => Answer::Errno(sys::errno_name(-res)),
    }
}

/// A syscall result against the expected errno (by name) or return value.
fn check_result(got: &SysResult, errno: Option<&str>, ret: Option<i64>) -> StepResult {
    let observed = match got {
        Ok(v) => Answer::Success(Some(*v)),
        Err(en) => Answer::Errno(sys::errno_name(*en)),
    };
    let mismatch = |expected: Answer, message: String| {
        Err(StepError::mismatch(
            Mismatch { what: "errno/result".into(), expected, observed: observed.clone() },
            message,
        ))
    };
    match (errno, got) {
        (Some(name), Err(en)) => {
            let want = sys::errno_by_name(name).ok_or_else(|| format!("unknown errno {name}"))?;
            if want != *en {
                return mismatch(
                    Answer::Errno(name.into()),
                    format!("expected {name}, kernel returned {}", sys::errno_name(*en)),
                );
            }
        }
        (Some(name), Ok(v)) => {
            return mismatch(Answer::Errno(name.into()), format!("expected {name}, kernel returned success ({v})"))
        }
        (None, Err(en)) => {
            return mismatch(
                Answer::Success(None),
                format!("expected success, kernel returned {}", sys::errno_name(*en)),
            )
        }
        (None, Ok(v)) => {
            if let Some(r) = ret.filter(|r| r != v) {
                return mismatch(Answer::Success(Some(r)), format!("expected return {r}, kernel returned {v}"));
            }
        }
    }
    Ok(())
}

fn value_mismatch(what: &str, expected: u64, have: u64, message: String) -> StepResult {
    Err(StepError::mismatch(
        Mismatch { what: what.to_string(), expected: Answer::Value(expected), observed: Answer::Value(have) },
        message,
    ))
}

pub(super) fn exact_min(what: &str, min: u64, have: u64) -> StepResult {
    if have < min {
        return value_mismatch(what, min, have, format!("{what}: expected at least {min}, found {have}"));
    }
    Ok(())
}

pub(super) fn exact(what: &str, want: Option<u64>, have: u64) -> StepResult {
    match want {
        Some(w) if w != have => value_mismatch(what, w, have, format!("{what}: expected {w}, found {have}")),
        _ => Ok(()),
    }
}

pub(super) fn describe(got: &SysResult) -> String {
    match got {
        Ok(v) => format!("ok ({v})"),
        Err(e) => sys::errno_name(*e),
    }
}

/// `struct{field=value, ...}` with the nonzero fields (the union of zcrx_ctrl shown as words).
pub fn dump(t: &FieldTable, bytes: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut covered = vec![false; t.size];
    for f in t.fields {
        if covered[f.offset..f.offset + f.size].iter().any(|c| *c) {
            continue;
        }
        let v = uapi::read_field(bytes, f);
        if v != 0 {
            parts.push(format!("{}={v:#x}", f.name));
            covered[f.offset..f.offset + f.size].iter_mut().for_each(|c| *c = true);
        }
    }
    format!("{}{{{}}}", t.name, parts.join(", "))
}

pub fn flag_names(flags: u32) -> String {
    if flags == 0 {
        return "[]".into();
    }
    let mut v = Vec::new();
    let mut rest = flags;
    for (n, bit) in [
        ("BUFFER", IORING_CQE_F_BUFFER),
        ("MORE", IORING_CQE_F_MORE),
        ("SOCK_NONEMPTY", IORING_CQE_F_SOCK_NONEMPTY),
        ("NOTIF", IORING_CQE_F_NOTIF),
        ("SKIP", IORING_CQE_F_SKIP),
        ("F_32", IORING_CQE_F_32),
    ] {
        if flags & bit != 0 {
            v.push(n.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    format!("[{}]", v.join(","))
}

pub(super) fn overrides_summary(groups: &[(&str, &Overrides)], event: Option<&Overrides>) -> String {
    let mut parts = Vec::new();
    for (g, ov) in groups {
        for (k, v) in ov.iter() {
            parts.push(format!("{g}.{k}={}", v.value));
        }
    }
    if let Some(ev) = event {
        parts.push("event_desc".into());
        for (k, v) in ev {
            parts.push(format!("event.{k}={}", v.value));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}
