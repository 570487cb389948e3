//! Static validation of an expanded case: the checks serde cannot do.

use super::names as consts;
use super::rules::{check_cve, check_fix_id, check_fix_subject, check_id, check_timeout, is_version};
use super::yaml::{short, Node};
use super::{Action, Case, CqeExpect, ExpectNoCqe, LoadError, Overrides, Value, NOP_MARKER};
use crate::kernel::uapi::{self, FieldTable};

/// The node at a dotted path (`requires.topology.2`: numbers index lists).
fn find<'a>(doc: &'a Node, path: &str) -> Option<&'a Node> {
    path.split('.').try_fold(doc, |n, seg| match seg.parse::<usize>() {
        Ok(i) => n.item(i),
        Err(_) => n.get(seg),
    })
}

/// Static checks that serde cannot do: the id, the timeout, at least one assertion, `expect` only
/// where it applies, field names, constants, errno names, topology names, version strings. `doc` is
/// the file as read (with this case's matrix values), for the places of the errors.
/// A `tun:` step's name is one the kernel creates as it is (see `topology::check_ifname`):
/// otherwise the case would fail at run time instead of the file being refused.
fn check_tun_name(name: &str) -> Result<(), String> {
    crate::topology::check_ifname(name).map_err(|e| format!("tun.name: {e}"))
}

pub(super) fn validate(case: &Case, doc: &Node) -> Vec<LoadError> {
    let mut errs = Vec::new();
    let file = &case.file;
    let push = |errs: &mut Vec<LoadError>, line: u64, column: u64, msg: String| {
        errs.push(LoadError { file: file.clone(), line, column, msg });
    };
    let at = |path: &str, or: (u64, u64)| find(doc, path).map_or(or, |n| (n.line, n.column));
    let top = (doc.line, doc.column);
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
                        "unknown field `{}` of {} (fields: {})",
                        short(k),
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
    if let Err(msg) = check_id(&d.id) {
        let (l, c) = at("id", top);
        push(&mut errs, l, c, msg);
    } else if let Err(msg) = check_id(&case.id) {
        let (l, c) = doc.entry("matrix").map_or(at("id", top), |(k, _)| (k.line, k.column));
        push(&mut errs, l, c, format!("with the matrix values: {msg}"));
    }
    if let Some(t) = d.timeout {
        if let Err(msg) = check_timeout(t) {
            let (l, c) = at("timeout", top);
            push(&mut errs, l, c, msg);
        }
    }
    let steps_at = doc.entry("steps").map_or(top, |(k, _)| (k.line, k.column));
    if d.steps.is_empty() {
        push(&mut errs, steps_at.0, steps_at.1, "steps: a case needs at least one step".into());
    } else if !d.steps.iter().any(|s| s.value.asserts()) {
        let msg = "steps: no step checks anything (add an `expect`, an expect_* step or a call such as `register`)";
        push(&mut errs, steps_at.0, steps_at.1, msg.into());
    }
    for (i, t) in d.requires.topology.iter().enumerate() {
        if crate::topology::Kind::named(t).is_none() {
            let msg = format!(
                "requires.topology: unknown topology `{}` (known: {})",
                short(t),
                crate::topology::Kind::names()
            );
            let (l, c) = at(&format!("requires.topology.{i}"), at("requires", top));
            push(&mut errs, l, c, msg);
        }
    }
    if let Some(k) = &d.requires.kernel {
        for (name, v) in [("min", &k.min), ("max", &k.max)] {
            if let Some(v) = v.as_ref().filter(|v| !is_version(v)) {
                let (l, c) = at(&format!("requires.kernel.{name}"), at("requires", top));
                push(&mut errs, l, c, format!("requires.kernel.{name}: `{}` is not a kernel version", short(v)));
            }
        }
    }
    for (i, k) in d.known_deviation.iter().enumerate() {
        for (name, v) in [("min", &k.min), ("max", &k.max)] {
            if let Some(v) = v.as_ref().filter(|v| !is_version(v)) {
                let (l, c) = at(&format!("known_deviation.{i}.{name}"), at("known_deviation", top));
                push(&mut errs, l, c, format!("known_deviation.{name}: `{}` is not a kernel version", short(v)));
            }
        }
        if let Some(e) = k.observed.as_deref().and_then(|o| crate::model::DeviationPattern::parse(o).err()) {
            let (l, c) = at(&format!("known_deviation.{i}.observed"), at("known_deviation", top));
            push(&mut errs, l, c, format!("known_deviation.observed: {e}"));
        }
    }
    for (i, f) in d.fixes.iter().enumerate() {
        let entry = at(&format!("fixes.{i}"), at("fixes", top));
        if let Err(msg) = check_fix_id(&f.id) {
            let (l, c) = at(&format!("fixes.{i}.id"), entry);
            push(&mut errs, l, c, msg);
        } else if let Some(j) = d.fixes[..i].iter().position(|g| g.id.starts_with(&f.id) || f.id.starts_with(&g.id)) {
            let (l, c) = at(&format!("fixes.{i}.id"), entry);
            push(&mut errs, l, c, format!("fixes.id: `{}` names the same commit as fixes entry {}", f.id, j + 1));
        }
        if let Err(msg) = check_fix_subject(&f.subject) {
            let (l, c) = at(&format!("fixes.{i}.subject"), entry);
            push(&mut errs, l, c, msg);
        }
    }
    for (i, cve) in d.cve.iter().enumerate() {
        let (l, c) = at(&format!("cve.{i}"), at("cve", top));
        if let Err(msg) = check_cve(cve) {
            push(&mut errs, l, c, msg);
        } else if d.cve[..i].contains(cve) {
            push(&mut errs, l, c, format!("cve: `{cve}` is listed twice"));
        }
    }
    if !d.cve.is_empty() && d.fixes.is_empty() {
        let (l, c) = doc.entry("cve").map_or(top, |(k, _)| (k.line, k.column));
        push(&mut errs, l, c, "cve: a CVE tag needs the `fixes:` entry of the commit that fixed it".into());
    }
    if let Err(e) = consts::resolve_static(&d.ring.flags, consts::Ns::Setup) {
        let (l, c) = at("ring.flags", at("ring", top));
        push(&mut errs, l, c, format!("ring.flags: {e}"));
    }
    for (i, step) in d.steps.iter().enumerate() {
        let (l, c) = (step.line, step.column);
        let s = &step.value;
        let mut cqes: Vec<&CqeExpect> = Vec::new();
        if let Action::Tun(t) = &s.action {
            if let Err(msg) = check_tun_name(&t.name) {
                let (l, c) = at(&format!("steps.{i}.tun.name"), (l, c));
                push(&mut errs, l, c, msg);
            }
        }
        match &s.action {
            Action::Register(r) => {
                check(&mut errs, &uapi::IFQ_REG, &r.ifq);
                check(&mut errs, &uapi::AREA_REG, &r.area);
                check(&mut errs, &uapi::REGION_DESC, &r.region);
                if let Some(ev) = &r.event {
                    check(&mut errs, &uapi::EVENT_DESC, ev);
                }
                for ro in &r.readonly {
                    if !["ifq", "area", "region", "event"].contains(&ro.as_str()) {
                        push(
                            &mut errs,
                            l,
                            c,
                            format!("register.readonly: `{ro}` is not one of ifq, area, region, event"),
                        );
                    }
                }
                if let Some(t) = &r.traffic_before_copy_out {
                    if !(1..=65536).contains(&t.bytes) {
                        push(&mut errs, l, c, "register.traffic_before_copy_out.bytes: 1 to 65536".to_string());
                    }
                    if r.readonly.iter().any(|x| x == "area") || r.import.is_some() {
                        push(
                            &mut errs,
                            l,
                            c,
                            "register.traffic_before_copy_out needs the area struct writable and a registration that is not an import"
                                .to_string(),
                        );
                    }
                }
                if let Some(u) = r.unsupported.as_ref().filter(|u| crate::kernel::sys::errno_by_name(u).is_none()) {
                    push(&mut errs, l, c, format!("register.unsupported: unknown errno `{}`", short(u)));
                }
            }
            Action::Ctrl(x) => {
                let op = consts::resolve_static(&x.op, consts::Ns::CtrlOp);
                if let Err(e) = &op {
                    push(&mut errs, l, c, format!("ctrl.op: {e}"));
                }
                check(&mut errs, &uapi::CTRL, &x.set);
                check(&mut errs, &uapi::AREA_REG, &x.area);
                let add_area = op.ok() == Some(u64::from(uapi::ZCRX_CTRL_ADD_AREA));
                if !add_area && (x.area_readonly || x.area_pages.is_some() || !x.area.is_empty()) {
                    push(
                        &mut errs,
                        l,
                        c,
                        "ctrl: `area`, `area_pages` and `area_readonly` describe the new area of ADD_AREA only"
                            .to_string(),
                    );
                }
            }
            Action::Query(q) => {
                if let Err(e) = consts::resolve_static(&q.op, consts::Ns::QueryOp) {
                    push(&mut errs, l, c, format!("query.op: {e}"));
                }
                check(&mut errs, &uapi::QUERY_HDR, &q.hdr);
            }
            Action::RegisterRaw(r) => {
                if let Err(e) = consts::resolve_static(&r.opcode, consts::Ns::RegisterOp) {
                    push(&mut errs, l, c, format!("register_raw.opcode: {e}"));
                }
            }
            Action::OpenRing(o) => {
                if let Err(e) = consts::resolve_static(&o.spec.flags, consts::Ns::Setup) {
                    push(&mut errs, l, c, format!("open_ring.flags: {e}"));
                }
            }
            Action::RecvZc(r) => {
                check(&mut errs, &uapi::SQE, &r.sqe);
                if r.user_data == Some(NOP_MARKER) {
                    push(&mut errs, l, c, format!("recv_zc.user_data: {NOP_MARKER:#x} is the NOP marker's"));
                }
            }
            Action::Limit(x) => {
                let named = x.drop_caps.iter().chain(x.keep_caps.iter().flatten());
                for cap in named.filter(|cap| crate::kernel::creds::cap_by_name(cap).is_none()) {
                    let msg = format!(
                        "limit: unknown capability `{}` (IPC_LOCK, NET_ADMIN, SYS_ADMIN, SYS_RESOURCE)",
                        short(cap)
                    );
                    push(&mut errs, l, c, msg);
                }
            }
            Action::Importer(x) => {
                let named = [&x.start, &x.receive, &x.exit, &x.kill].iter().filter(|n| n.is_some()).count();
                if named != 1 {
                    push(&mut errs, l, c, "importer: exactly one of start, receive, exit, kill".to_string());
                }
                if x.start.is_some() && x.fd.is_none() {
                    push(&mut errs, l, c, "importer: start needs `fd` (an exported file's name)".to_string());
                }
                if x.receive.is_some() && x.bytes.is_none() {
                    push(&mut errs, l, c, "importer: receive needs `bytes`".to_string());
                }
            }
            Action::FaultSweep(x) => {
                // The fault window is the call's first io_uring_register: a kind that makes
                // none would end every round as a harness error.
                if !matches!(
                    x.call.action,
                    Action::Register(_)
                        | Action::Ctrl(_)
                        | Action::Query(_)
                        | Action::RegisterRaw(_)
                        | Action::RecvZc(_)
                ) {
                    let key = x.call.action.kind().key;
                    let (l, c) = at(&format!("steps.{i}.fault_sweep.call"), (l, c));
                    push(
                        &mut errs,
                        l,
                        c,
                        format!(
                            "fault_sweep.call: `{key}` makes no io_uring syscall a sweep can arm (register, ctrl, \
                             query, register_raw: io_uring_register; recv_zc: its submission's io_uring_enter)"
                        ),
                    );
                }
                if let Some(e) = x.accept.iter().flatten().find(|e| crate::kernel::sys::errno_by_name(e).is_none()) {
                    push(&mut errs, l, c, format!("fault_sweep.accept: unknown errno `{}`", short(e)));
                }
            }
            Action::Stress(x) => {
                for (field, msg) in x.problems() {
                    let (l, c) = at(&format!("steps.{i}.stress.{field}"), (l, c));
                    push(&mut errs, l, c, msg);
                }
            }
            Action::ExpectNoCqe(x) => {
                if let Err(msg) = check_absence(x, &d.steps[..i]) {
                    push(&mut errs, l, c, format!("expect_no_cqe: {msg}"));
                }
            }
            Action::ExpectCqes(e) => cqes.extend(e.cqes.iter()),
            Action::ExpectData(e) => cqes.extend(e.final_cqe.iter()),
            Action::DrainData(e) => cqes.extend(e.final_cqe.iter()),
            _ => {}
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
            let errnos = e.errno.iter().map(|en| (format!("steps.{i}.expect.errno"), en)).chain(
                e.kernels.iter().enumerate().filter_map(|(j, k)| {
                    k.errno.as_ref().map(|en| (format!("steps.{i}.expect.kernels.{j}.errno"), en))
                }),
            );
            for (path, en) in errnos {
                if crate::kernel::sys::errno_by_name(en).is_none() {
                    let (l, c) = at(&path, (l, c));
                    push(&mut errs, l, c, format!("expect.errno: unknown errno `{}`", short(en)));
                }
            }
            for (j, k) in e.kernels.iter().enumerate() {
                if let Some(p) = k.page.filter(|p| !p.is_power_of_two() || !(4096..=65536).contains(p)) {
                    let (l, c) = at(&format!("steps.{i}.expect.kernels.{j}.page"), (l, c));
                    push(&mut errs, l, c, format!("expect.kernels: page {p} is not a page size (4096 to 65536)"));
                }
                for (name, v) in [("min", &k.min), ("max", &k.max)] {
                    if let Some(v) = v.as_ref().filter(|v| !is_version(v)) {
                        let (l, c) = at(&format!("steps.{i}.expect.kernels.{j}.{name}"), (l, c));
                        push(&mut errs, l, c, format!("expect.kernels: `{}` is not a kernel version", short(v)));
                    }
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
            let kind = s.action.kind();
            if !kind.expect {
                push(&mut errs, l, c, format!("`expect` does not apply to a {} step", kind.key));
            }
        }
    }
    errs.extend(super::vacuous::check(case, &at, steps_at));
    errs
}

/// An absence check ends at a marker (`until`) or, where nothing orders it, after a fixed
/// `wait_ms` whose `unordered` says why; a data marker goes through an earlier RECV_ZC.
fn check_absence(x: &ExpectNoCqe, before: &[super::Sp<super::Step>]) -> Result<(), String> {
    match (&x.until, x.wait_ms, &x.unordered) {
        (Some(_), Some(_), _) | (None, None, _) => {
            return Err("exactly one of `until` (a marker the kernel posts after anything forbidden) and `wait_ms` \
                        (a fixed wait, only where nothing orders the absence)"
                .into())
        }
        (Some(_), None, Some(_)) => return Err("`unordered` goes with `wait_ms` only".into()),
        (None, Some(0), _) => return Err("wait_ms: 0 waits for nothing".into()),
        (None, Some(_), u) if u.as_deref().is_none_or(|u| u.trim().is_empty()) => {
            return Err("a fixed `wait_ms` needs `unordered: REASON` (why no later CQE orders this absence); \
                        prefer `until`"
                .into())
        }
        _ => {}
    }
    if x.user_data == Some(NOP_MARKER) {
        return Err(format!("user_data {NOP_MARKER:#x} is the NOP marker's"));
    }
    let Some(u) = &x.until else { return Ok(()) };
    match (u.send, u.nop) {
        (Some(0), false) => Err("until.send: 0 bytes is no marker".into()),
        (Some(_), false) => {
            let req = u.request.unwrap_or(1);
            let armed =
                before.iter().any(|s| matches!(&s.value.action, Action::RecvZc(r) if r.user_data.unwrap_or(1) == req));
            if armed {
                Ok(())
            } else {
                Err(format!("until.send: no earlier recv_zc with user_data {req} receives the marker"))
            }
        }
        (None, true) if u.request.is_none() => Ok(()),
        (None, true) => Err("until.request goes with `send` only".into()),
        _ => Err("until: exactly one of `send: BYTES` and `nop: true`".into()),
    }
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

    fn first(text: &str) -> (u64, u64, String) {
        let e = load(text).expect_err("fails");
        (e[0].line, e[0].column, e[0].msg.clone())
    }

    const HEAD: &str = "id: a.b\narea: registration\nabout: x\n";

    #[test]
    fn a_fault_sweep_sweeps_a_register_call() {
        let text = "id: a.b\narea: registration\nabout: x\nspec: [R4]\nsteps:\n  - fault_sweep:\n      call: { connect: {} }\n      accept: [ENOMEM, ENOTANERRNO]\n";
        let e = crate::case::load_str(std::path::Path::new("t.yaml"), text).expect_err("refused");
        assert!(
            e.iter().any(|e| e.line == 7 && e.msg.contains("`connect` makes no io_uring syscall a sweep can arm")),
            "{e:?}"
        );
        assert!(e.iter().any(|e| e.msg.contains("unknown errno `ENOTANERRNO`")), "{e:?}");
        let ok = "id: a.b\narea: registration\nabout: x\nspec: [R4]\nsteps:\n  - fault_sweep:\n      call: { register: {} }\n";
        assert!(crate::case::load_str(std::path::Path::new("t.yaml"), ok).is_ok());
    }

    #[test]
    fn fixes_and_cve_tags_are_checked_where_they_stand() {
        let steps = "steps:\n  - register: {}\n    expect: { errno: EINVAL }\n";
        let ok = format!(
            "{HEAD}fixes:\n  - {{ id: 003049b1c4fb, subject: \"io_uring/zcrx: fix user_ref race\" }}\ncve: [CVE-2026-43121]\n{steps}"
        );
        let c = load(&ok).expect("loads");
        assert_eq!(
            (c[0].def.fixes[0].id.as_str(), c[0].def.cve.as_slice()),
            ("003049b1c4fb", ["CVE-2026-43121".to_string()].as_slice())
        );
        let (l, c, m) = first(&format!("{HEAD}fixes:\n  - {{ id: 003049b1, subject: s }}\n{steps}"));
        assert_eq!(
            (l, c, m.as_str()),
            (5, 11, "fixes.id: `003049b1` is not a commit id (12 to 40 lower-case hex digits)")
        );
        let (l, c, m) = first(&format!("{HEAD}fixes:\n  - id: 003049b1c4fb\n    subject: \"\"\n{steps}"));
        assert_eq!((l, c, m.as_str()), (6, 14, "fixes.subject: empty (give the commit's subject line)"));
        let (l, c, m) = first(&format!(
            "{HEAD}fixes:\n  - {{ id: 003049b1c4fb, subject: s }}\n  - {{ id: 003049b1c4fb00, subject: t }}\n{steps}"
        ));
        assert_eq!((l, c, m.as_str()), (6, 11, "fixes.id: `003049b1c4fb00` names the same commit as fixes entry 1"));
        let (l, c, m) =
            first(&format!("{HEAD}fixes:\n  - {{ id: 003049b1c4fb, subject: s }}\ncve: [CVE-2026-431]\n{steps}"));
        assert_eq!(
            (l, c, m.as_str()),
            (6, 7, "cve: `CVE-2026-431` is not a CVE id (CVE-YYYY-NNNN, e.g. CVE-2025-40046)")
        );
        let (l, c, m) = first(&format!("{HEAD}cve: [CVE-2026-43121]\n{steps}"));
        assert_eq!((l, c, m.as_str()), (4, 1, "cve: a CVE tag needs the `fixes:` entry of the commit that fixed it"));
        let (l, c, m) = first(&format!("{HEAD}fixes:\n  - {{ id: 003049b1c4fb }}\n{steps}"));
        assert_eq!((l, c), (5, 5), "{m}");
        assert!(m.contains("subject"), "{m}");
    }

    #[test]
    fn errors_point_at_the_value() {
        let (l, c, m) = first(&format!("{HEAD}requires: {{ topology: [host, mars] }}\nsteps:\n  - register: {{}}\n"));
        assert_eq!((l, c), (4, 30), "{m}");
        let (l, c, m) = first(&format!("{HEAD}requires:\n  kernel: {{ min: \"7.x\" }}\nsteps:\n  - register: {{}}\n"));
        assert_eq!((l, c), (5, 18), "{m}");
        let (l, c, m) = first(&format!("{HEAD}steps:\n  - register: {{}}\n    expect: {{ errno: EWHAT }}\n"));
        assert_eq!((l, c), (6, 22), "{m}");
        let (l, c, m) = first(&format!("{HEAD}timeout: 0\nsteps:\n  - register: {{}}\n"));
        assert_eq!((l, c), (4, 10), "{m}");
        let (l, c, m) = first(&format!("{HEAD}steps: []\n"));
        assert_eq!((l, c), (4, 1), "{m}");
        let (l, c, m) = first(&format!("{HEAD}steps:\n  - connect: {{}}\n  - send: {{ bytes: 1 }}\n"));
        assert_eq!((l, c), (4, 1), "{m}");
        assert!(m.contains("no step checks"), "{m}");
        let (l, c, m) = first("id: \"a'b\"\narea: rq\nabout: x\nsteps:\n  - register: {}\n");
        assert_eq!((l, c), (1, 5), "{m}");
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
        assert_eq!(e[0].line, 6);
    }

    #[test]
    fn an_absence_check_needs_a_marker_or_a_reason() {
        let case = |step: &str| {
            format!("id: a.b\narea: drain\nabout: x\nsteps:\n  - register: {{}}\n  - connect: {{}}\n  - recv_zc: {{}}\n  - expect_no_cqe: {step}\n")
        };
        for (step, why) in [
            ("{ wait_ms: 100 }", "needs `unordered"),
            ("{ wait_ms: 100, unordered: \" \" }", "needs `unordered"),
            ("{}", "exactly one of `until`"),
            ("{ wait_ms: 5, until: { nop: true } }", "exactly one of `until`"),
            ("{ wait_ms: 0, unordered: r }", "waits for nothing"),
            ("{ until: { nop: true }, unordered: r }", "with `wait_ms` only"),
            ("{ until: { send: 1, nop: true } }", "exactly one of `send"),
            ("{ until: { send: 0 } }", "no marker"),
            ("{ until: { send: 1, request: 2 } }", "no earlier recv_zc with user_data 2"),
            ("{ until: { nop: true, request: 1 } }", "with `send` only"),
            ("{ user_data: 0x6e6f705f6d61726b, until: { nop: true } }", "NOP marker"),
        ] {
            let (l, c, m) = first(&case(step));
            assert_eq!((l, c), (8, 5), "{step}: {m}");
            assert!(m.contains(why), "{step}: {m}");
        }
        for ok in ["{ until: { send: 1 } }", "{ until: { nop: true } }", "{ wait_ms: 100, unordered: r }"] {
            assert!(load(&case(ok)).is_ok(), "{ok}: {:?}", load(&case(ok)).err());
        }
    }

    #[test]
    fn two_actions_in_one_step_is_an_error() {
        let e = load("id: a\narea: rq\nabout: x\nsteps:\n  - { register: {}, connect: {} }\n").expect_err("fails");
        assert!(e[0].msg.contains("exactly one action"), "{}", e[0]);
    }
}
