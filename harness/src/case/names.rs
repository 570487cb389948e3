//! Symbolic names for the values a case file writes, and a tiny expression evaluator
//! (`NAME`, `0x10`, `-EINVAL`, `$area.addr+1`, `[DEFER_TASKRUN, CQE32]`).

use crate::case::Value;
use crate::kernel::uapi::*;

/// Which names a value may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    Any,
    Setup,
    RegFlags,
    AreaFlags,
    RegionFlags,
    /// Event type names become bits (1 << type).
    EventMask,
    EventFlags,
    EventType,
    CtrlOp,
    QueryOp,
    RegisterOp,
    Ioprio,
    CqeFlags,
    /// CQE results: numbers and -ERRNO.
    Res,
}

const SETUP: &[(&str, u64)] = &[
    ("IOPOLL", IORING_SETUP_IOPOLL as u64),
    ("SQPOLL", IORING_SETUP_SQPOLL as u64),
    ("CQSIZE", IORING_SETUP_CQSIZE as u64),
    ("CLAMP", IORING_SETUP_CLAMP as u64),
    ("SUBMIT_ALL", IORING_SETUP_SUBMIT_ALL as u64),
    ("COOP_TASKRUN", IORING_SETUP_COOP_TASKRUN as u64),
    ("TASKRUN_FLAG", IORING_SETUP_TASKRUN_FLAG as u64),
    ("SQE128", IORING_SETUP_SQE128 as u64),
    ("CQE32", IORING_SETUP_CQE32 as u64),
    ("SINGLE_ISSUER", IORING_SETUP_SINGLE_ISSUER as u64),
    ("DEFER_TASKRUN", IORING_SETUP_DEFER_TASKRUN as u64),
    ("NO_SQARRAY", IORING_SETUP_NO_SQARRAY as u64),
    ("CQE_MIXED", IORING_SETUP_CQE_MIXED as u64),
];
const REG_FLAGS: &[(&str, u64)] = &[("IMPORT", ZCRX_REG_IMPORT as u64), ("NODEV", ZCRX_REG_NODEV as u64)];
const AREA_FLAGS: &[(&str, u64)] = &[("DMABUF", IORING_ZCRX_AREA_DMABUF as u64)];
const REGION_FLAGS: &[(&str, u64)] = &[("TYPE_USER", IORING_MEM_REGION_TYPE_USER as u64)];
const EVENT_TYPES: &[(&str, u64)] = &[("ALLOC_FAIL", ZCRX_EVENT_ALLOC_FAIL as u64), ("COPY", ZCRX_EVENT_COPY as u64)];
const EVENT_FLAGS: &[(&str, u64)] = &[("STATS", ZCRX_EVENT_DESC_FLAG_STATS as u64)];
const CTRL_OPS: &[(&str, u64)] = &[
    ("FLUSH_RQ", ZCRX_CTRL_FLUSH_RQ as u64),
    ("EXPORT", ZCRX_CTRL_EXPORT as u64),
    ("ARM_EVENT", ZCRX_CTRL_ARM_EVENT as u64),
    ("ADD_AREA", ZCRX_CTRL_ADD_AREA as u64),
];
const QUERY_OPS: &[(&str, u64)] = &[
    ("OPCODES", IO_URING_QUERY_OPCODES as u64),
    ("ZCRX", IO_URING_QUERY_ZCRX as u64),
    ("SCQ", IO_URING_QUERY_SCQ as u64),
    ("ZCRX_EVENT", IO_URING_QUERY_ZCRX_EVENT as u64),
];
const REGISTER_OPS: &[(&str, u64)] = &[
    ("PROBE", IORING_REGISTER_PROBE as u64),
    ("ZCRX_IFQ", IORING_REGISTER_ZCRX_IFQ as u64),
    ("MEM_REGION", IORING_REGISTER_MEM_REGION as u64),
    ("QUERY", IORING_REGISTER_QUERY as u64),
    ("ZCRX_CTRL", IORING_REGISTER_ZCRX_CTRL as u64),
];
const IOPRIO: &[(&str, u64)] =
    &[("POLL_FIRST", IORING_RECVSEND_POLL_FIRST as u64), ("MULTISHOT", IORING_RECV_MULTISHOT as u64)];
const CQE_FLAGS: &[(&str, u64)] = &[
    ("BUFFER", IORING_CQE_F_BUFFER as u64),
    ("MORE", IORING_CQE_F_MORE as u64),
    ("SOCK_NONEMPTY", IORING_CQE_F_SOCK_NONEMPTY as u64),
    ("NOTIF", IORING_CQE_F_NOTIF as u64),
    ("SKIP", IORING_CQE_F_SKIP as u64),
    ("F_32", IORING_CQE_F_32 as u64),
];
const MISC: &[(&str, u64)] = &[
    ("AREA_SHIFT", IORING_ZCRX_AREA_SHIFT as u64),
    ("AREA_MASK", IORING_ZCRX_AREA_MASK),
    ("U32_MAX", u32::MAX as u64),
    ("U64_MAX", u64::MAX),
];

fn tables(ns: Ns) -> Vec<&'static [(&'static str, u64)]> {
    match ns {
        Ns::Setup => vec![SETUP],
        Ns::RegFlags => vec![REG_FLAGS],
        Ns::AreaFlags => vec![AREA_FLAGS],
        Ns::RegionFlags => vec![REGION_FLAGS],
        Ns::EventMask | Ns::EventType => vec![EVENT_TYPES],
        Ns::EventFlags => vec![EVENT_FLAGS],
        Ns::CtrlOp => vec![CTRL_OPS],
        Ns::QueryOp => vec![QUERY_OPS],
        Ns::RegisterOp => vec![REGISTER_OPS],
        Ns::Ioprio => vec![IOPRIO],
        Ns::CqeFlags => vec![CQE_FLAGS],
        Ns::Res => vec![EVENT_TYPES, MISC],
        Ns::Any => vec![SETUP, REG_FLAGS, AREA_FLAGS, REGION_FLAGS, EVENT_TYPES, EVENT_FLAGS, CTRL_OPS, IOPRIO, MISC],
    }
}

/// The names a field of a uapi struct takes (its flags, ops or event types); `Any` otherwise.
pub fn field_ns(table: &crate::kernel::uapi::FieldTable, field: &str) -> Ns {
    match (table.name, field) {
        ("io_uring_zcrx_ifq_reg", "flags") => Ns::RegFlags,
        ("io_uring_zcrx_area_reg", "flags") => Ns::AreaFlags,
        ("io_uring_region_desc", "flags") => Ns::RegionFlags,
        ("zcrx_event_desc", "type_mask") => Ns::EventMask,
        ("zcrx_event_desc", "flags") => Ns::EventFlags,
        ("zcrx_ctrl", "zc_arm_event.event_type") => Ns::EventType,
        ("zcrx_ctrl", "op") => Ns::CtrlOp,
        ("io_uring_query_hdr", "query_op") => Ns::QueryOp,
        ("io_uring_sqe", "ioprio") => Ns::Ioprio,
        _ => Ns::Any,
    }
}

/// Looks a name up in a namespace; errno names are valid everywhere as positive numbers.
pub fn lookup(ns: Ns, name: &str) -> Option<u64> {
    for t in tables(ns) {
        if let Some((_, v)) = t.iter().find(|(n, _)| *n == name) {
            return Some(if ns == Ns::EventMask { 1u64 << v } else { *v });
        }
    }
    if matches!(ns, Ns::Any | Ns::Res) {
        return crate::kernel::sys::errno_by_name(name).map(|e| e as u64);
    }
    None
}

/// A value of a case file that names nothing or does not evaluate (the case's input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

impl crate::error::Classify for NameError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::BadInput
    }
}

/// For callers that carry errors as text (a step's message, a load error).
impl From<NameError> for String {
    fn from(e: NameError) -> String {
        e.0
    }
}

pub fn names(ns: Ns) -> String {
    tables(ns).iter().flat_map(|t| t.iter().map(|(n, _)| *n)).collect::<Vec<_>>().join(", ")
}

/// Resolves a value. `refs` answers `$name.attr` references (None = unknown).
pub fn resolve(v: &Value, ns: Ns, refs: &dyn Fn(&str) -> Option<u64>) -> Result<u64, NameError> {
    match v {
        Value::Int(i) => Ok(*i as u64),
        Value::UInt(u) => Ok(*u),
        Value::Bool(b) => Ok(*b as u64),
        Value::Str(s) => eval(s, ns, refs),
        Value::List(items) => {
            let mut acc = 0u64;
            for i in items {
                acc |= resolve(i, ns, refs)?;
            }
            Ok(acc)
        }
    }
}

/// Checks a value without runtime references (any `$ref` counts as valid syntax).
pub fn resolve_static(v: &Value, ns: Ns) -> Result<u64, NameError> {
    resolve(v, ns, &|_| Some(0))
}

fn term(t: &str, ns: Ns, refs: &dyn Fn(&str) -> Option<u64>) -> Result<u64, NameError> {
    let t = t.trim();
    if t.is_empty() {
        return Err(NameError("empty term".into()));
    }
    if let Some(r) = t.strip_prefix('$') {
        return refs(r).ok_or_else(|| NameError(format!("unknown reference `${r}`")));
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(&h.replace('_', ""), 16).map_err(|_| NameError(format!("bad hex number `{t}`")));
    }
    if t.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return t.replace('_', "").parse::<u64>().map_err(|_| NameError(format!("bad number `{t}`")));
    }
    lookup(ns, t).ok_or_else(|| NameError(format!("unknown name `{t}` (known here: {})", names(ns))))
}

/// Evaluates `a + b - c | d << n * m / k` left to right; a leading `-` negates (two's
/// complement); a division must be exact (`4194304/$page`: a count of pages, never rounded).
pub fn eval(s: &str, ns: Ns, refs: &dyn Fn(&str) -> Option<u64>) -> Result<u64, NameError> {
    let s = s.trim();
    // "[A, B]" written as a string (e.g. through a matrix placeholder) is a flag list.
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let mut acc = 0u64;
        for part in inner.split(',').filter(|p| !p.trim().is_empty()) {
            acc |= eval(part, ns, refs)?;
        }
        return Ok(acc);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut acc: Option<u64> = None;
    let mut op = '+';
    let mut cur = String::new();
    let mut chars = body.chars().peekable();
    let apply = |acc: Option<u64>, op: char, cur: &str| -> Result<u64, NameError> {
        let v = term(cur, ns, refs)?;
        let a = acc.unwrap_or(0);
        Ok(match op {
            '+' => a.wrapping_add(v),
            '-' => a.wrapping_sub(v),
            '|' => a | v,
            '<' => a.checked_shl(v as u32).ok_or_else(|| NameError(format!("shift by {v}")))?,
            '*' => a.wrapping_mul(v),
            '/' if v != 0 && a.is_multiple_of(v) => a / v,
            '/' => return Err(NameError(format!("{a} is not a multiple of {v}"))),
            _ => unreachable!("operator set is closed"),
        })
    };
    while let Some(c) = chars.next() {
        let next_op = match c {
            '+' | '|' | '*' | '/' => Some(c),
            '-' if !cur.trim().is_empty() => Some('-'),
            '<' if chars.peek() == Some(&'<') => {
                chars.next();
                Some('<')
            }
            _ => None,
        };
        match next_op {
            Some(o) => {
                acc = Some(apply(acc, op, &cur)?);
                cur.clear();
                op = o;
            }
            None => cur.push(c),
        }
    }
    let v = apply(acc, op, &cur)?;
    Ok(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str, ns: Ns) -> Result<u64, NameError> {
        eval(s, ns, &|r| (r == "area.addr").then_some(0x1000))
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(ev("NODEV", Ns::RegFlags), Ok(2));
        assert_eq!(ev("0x30000000", Ns::Any), Ok(0x3000_0000));
        assert_eq!(ev("-EINVAL", Ns::Res), Ok((-(libc::EINVAL as i64)) as u64));
        assert_eq!(ev("-1", Ns::Any), Ok(u64::MAX));
        assert_eq!(ev("$area.addr+1", Ns::Any), Ok(0x1001));
        assert_eq!(ev("1<<48 | 5", Ns::Any), Ok((1 << 48) | 5));
        assert_eq!(ev("4194304/4096-64", Ns::Any), Ok(960));
        assert_eq!(ev("2*$area.addr", Ns::Any), Ok(0x2000));
        assert!(ev("4097/4096", Ns::Any).is_err(), "a division is exact");
        assert!(ev("1/0", Ns::Any).is_err());
        assert_eq!(ev("COPY", Ns::EventMask), Ok(2));
        assert_eq!(ev("COPY", Ns::EventType), Ok(1));
        assert!(ev("$nope", Ns::Any).is_err());
        assert!(ev("NODEVV", Ns::RegFlags).is_err());
    }

    #[test]
    fn lists_or_together() {
        let v = Value::List(vec![Value::Str("DEFER_TASKRUN".into()), Value::Str("CQE32".into())]);
        assert_eq!(resolve_static(&v, Ns::Setup), Ok((1 << 13) | (1 << 11)));
    }
}
