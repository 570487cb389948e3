//! Static validation of an expanded case: the checks serde cannot do.

use super::names as consts;
use super::{Case, CqeExpect, LoadError, Overrides, Value};
use crate::kernel::uapi::{self, FieldTable};

/// Static checks that serde cannot do: one action per step, field names, constants,
/// errno names, topology names, version strings.
pub fn validate(case: &Case) -> Vec<LoadError> {
    let mut errs = Vec::new();
    let file = &case.file;
    let push = |errs: &mut Vec<LoadError>, line: u64, column: u64, msg: String| {
        errs.push(LoadError { file: file.clone(), line, column, msg });
    };
    let check = |errs: &mut Vec<LoadError>, table: &FieldTable, ov: &Overrides| {
        for (k, v) in ov {
            if k == "stats_offset" && v.value == Value::Str("auto".into()) {
                continue;
            }
            match table.get(k) {
                None => push(
                    errs,
                    v.line,
                    v.column,
                    format!(
                        "unknown field `{k}` of {} (fields: {})",
                        table.name,
                        table.names().collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(_) => {
                    if let Err(e) = consts::resolve_static(&v.value, consts::field_ns(table, k)) {
                        push(errs, v.line, v.column, format!("{}.{k}: {e}", table.name));
                    }
                }
            }
        }
    };
    let d = &case.def;
    for t in &d.requires.topology {
        if !crate::topology::KNOWN.contains(&t.as_str()) {
            let msg =
                format!("requires.topology: unknown topology `{t}` (known: {})", crate::topology::KNOWN.join(", "));
            push(&mut errs, 1, 1, msg);
        }
    }
    if let Some(k) = &d.requires.kernel {
        for v in [&k.min, &k.max].into_iter().flatten() {
            if crate::kernel::sys::parse_version(v).is_none() {
                push(&mut errs, 1, 1, format!("requires.kernel: `{v}` is not a version"));
            }
        }
    }
    if let Err(e) = consts::resolve_static(&d.ring.flags, consts::Ns::Setup) {
        push(&mut errs, 1, 1, format!("ring.flags: {e}"));
    }
    for step in &d.steps {
        let (l, c) = (step.line, step.column);
        let s = &step.value;
        let acts = s.actions();
        if acts.len() != 1 {
            push(&mut errs, l, c, format!("a step needs exactly one action, found {}: {:?}", acts.len(), acts));
            continue;
        }
        if let Some(r) = &s.register {
            check(&mut errs, &uapi::IFQ_REG, &r.ifq);
            check(&mut errs, &uapi::AREA_REG, &r.area);
            check(&mut errs, &uapi::REGION_DESC, &r.region);
            if let Some(ev) = &r.event {
                check(&mut errs, &uapi::EVENT_DESC, ev);
            }
            for ro in &r.readonly {
                if !["ifq", "area", "region", "event"].contains(&ro.as_str()) {
                    push(&mut errs, l, c, format!("register.readonly: `{ro}` is not one of ifq, area, region, event"));
                }
            }
        }
        if let Some(x) = &s.ctrl {
            if let Err(e) = consts::resolve_static(&x.op, consts::Ns::CtrlOp) {
                push(&mut errs, l, c, format!("ctrl.op: {e}"));
            }
            check(&mut errs, &uapi::CTRL, &x.set);
            check(&mut errs, &uapi::AREA_REG, &x.area);
        }
        if let Some(q) = &s.query {
            if let Err(e) = consts::resolve_static(&q.op, consts::Ns::QueryOp) {
                push(&mut errs, l, c, format!("query.op: {e}"));
            }
            check(&mut errs, &uapi::QUERY_HDR, &q.hdr);
        }
        if let Some(r) = &s.register_raw {
            if let Err(e) = consts::resolve_static(&r.opcode, consts::Ns::RegisterOp) {
                push(&mut errs, l, c, format!("register_raw.opcode: {e}"));
            }
        }
        if let Some(o) = &s.open_ring {
            if let Err(e) = consts::resolve_static(&o.spec.flags, consts::Ns::Setup) {
                push(&mut errs, l, c, format!("open_ring.flags: {e}"));
            }
        }
        if let Some(r) = &s.recv_zc {
            check(&mut errs, &uapi::SQE, &r.sqe);
        }
        let mut cqes: Vec<&CqeExpect> = Vec::new();
        if let Some(e) = &s.expect_cqes {
            cqes.extend(e.cqes.iter());
        }
        if let Some(e) = &s.expect_data {
            cqes.extend(e.final_cqe.iter());
        }
        if let Some(e) = &s.drain_data {
            cqes.extend(e.final_cqe.iter());
        }
        for cq in cqes {
            if let Err(e) = consts::resolve_static(&cq.res, consts::Ns::Res) {
                push(&mut errs, l, c, format!("res: {e}"));
            }
            for f in &cq.flags {
                if consts::lookup(consts::Ns::CqeFlags, f).is_none() {
                    let msg = format!("unknown CQE flag `{f}` (known: {})", consts::names(consts::Ns::CqeFlags));
                    push(&mut errs, l, c, msg);
                }
            }
        }
        if let Some(e) = &s.expect {
            let errnos = e.errno.iter().chain(e.kernels.iter().filter_map(|k| k.errno.as_ref()));
            for en in errnos {
                if crate::kernel::sys::errno_by_name(en).is_none() {
                    push(&mut errs, l, c, format!("expect.errno: unknown errno `{en}`"));
                }
            }
            for v in e.kernels.iter().flat_map(|k| [&k.min, &k.max]).flatten() {
                if crate::kernel::sys::parse_version(v).is_none() {
                    push(&mut errs, l, c, format!("expect.kernels: `{v}` is not a version"));
                }
            }
            for (k, v) in e.out.iter().chain(e.kernels.iter().flat_map(|k| k.out.iter())) {
                if let Err(msg) = check_out_key(k) {
                    push(&mut errs, v.line, v.column, msg);
                }
                if let Err(msg) = consts::resolve_static(&v.value, consts::Ns::Any) {
                    push(&mut errs, v.line, v.column, format!("expect.out.{k}: {msg}"));
                }
            }
            if !matches!(acts[0], "register" | "ctrl" | "query" | "register_raw" | "open_ring" | "mmap_region") {
                push(&mut errs, l, c, format!("`expect` does not apply to a {} step", acts[0]));
            }
        }
    }
    errs.extend(super::vacuous::check(case));
    errs
}

/// `out` keys are `<struct>.<field>`: ifq, area, region, event, ctrl, hdr, data.
pub fn check_out_key(k: &str) -> Result<(), String> {
    let (prefix, field) = k
        .split_once('.')
        .ok_or_else(|| format!("expect.out: `{k}` needs a prefix (ifq., area., region., ctrl., hdr., data.)"))?;
    let table: &FieldTable = match prefix {
        "ifq" => &uapi::IFQ_REG,
        "area" => &uapi::AREA_REG,
        "region" => &uapi::REGION_DESC,
        "event" => &uapi::EVENT_DESC,
        "ctrl" => &uapi::CTRL,
        "export" => {
            return if field == "cloexec" {
                Ok(())
            } else {
                Err(format!("expect.out: `export.{field}`: only export.cloexec (1 when the EXPORT fd has FD_CLOEXEC)"))
            }
        }
        "hdr" => &uapi::QUERY_HDR,
        "data" => {
            return if [&uapi::QUERY_OPCODES, &uapi::QUERY_ZCRX, &uapi::QUERY_ZCRX_EVENT]
                .iter()
                .any(|t| t.get(field).is_some())
            {
                Ok(())
            } else {
                Err(format!("expect.out: `{field}` is no field of a query result"))
            }
        }
        _ => return Err(format!("expect.out: unknown prefix `{prefix}` (ifq, area, region, event, ctrl, hdr, data)")),
    };
    table.get(field).map(|_| ()).ok_or_else(|| format!("expect.out: unknown field `{field}` of {}", table.name))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::case::{load_str, Case, LoadError};

    fn load(text: &str) -> Result<Vec<Case>, Vec<LoadError>> {
        load_str(Path::new("t.yaml"), text)
    }

    #[test]
    fn unknown_struct_field_is_located() {
        let e = load("id: a.b\narea: reserved\nabout: x\nsteps:\n  - register:\n      ifq: { nope: 1 }\n")
            .expect_err("fails");
        assert_eq!((e[0].line, e[0].column > 0), (6, true), "{}", e[0]);
        assert!(e[0].msg.contains("unknown field `nope`"), "{}", e[0]);
    }

    #[test]
    fn unknown_errno_is_an_error() {
        let e = load("id: a.b\narea: registration\nabout: x\nsteps:\n  - register: {}\n    expect: { errno: EWHAT }\n")
            .expect_err("fails");
        assert!(e[0].msg.contains("EWHAT"), "{}", e[0]);
        assert_eq!(e[0].line, 5);
    }

    #[test]
    fn two_actions_in_one_step_is_an_error() {
        let e = load("id: a\narea: rq\nabout: x\nsteps:\n  - { register: {}, connect: {} }\n").expect_err("fails");
        assert!(e[0].msg.contains("exactly one action"), "{}", e[0]);
    }
}
