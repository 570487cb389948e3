//! A step of a case: [`Step`] (`ring`, one [`Action`], `expect`). The kinds of step are listed
//! once, in the [`step_kinds!`] table below: each row is a variant of [`Action`] with its body
//! type (`steps.rs`, `nic_steps.rs`), its YAML key and its facts ([`StepKind`]). Reading a step
//! (one key -> one variant), validation, the runner's planning, the JSON Schema and the step
//! reference in docs/case-format.md all follow from that table; `exec` runs a step with one `match` on
//! [`Action`].

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::ctrl_steps::{Ctrl, OpenRing, Query, RegisterRaw};
use super::nic_steps::{AfXdp, LinkOp, NsimDevice, Ntuple, PagePools, Process, Qstats, QueueGet, Rss, XdpStep};
use super::proc_steps::{Dmabuf, ExpectPinned, Limit};
use super::steps::{
    Acked, Close, Connect, DrainData, ExpectCqes, ExpectData, ExpectNoCqe, ExpectRq, ExpectStats, FaultSweep, Importer,
    MmapRegion, Netns, Nsim, RecvZc, Register, ReturnBuffers, RqPush, RqSet, Send, Shutdown, Tun,
};
use super::stress::Stress;
use super::Expect;
use crate::topology::Settings;

/// One step: exactly one action, the ring it runs on and what the kernel must answer.
#[derive(Clone, Debug)]
pub struct Step {
    /// Which ring (default: main).
    pub ring: Option<String>,
    pub action: Action,
    /// What the kernel must answer (only on kinds whose [`StepKind::expect`] is set).
    pub expect: Option<Expect>,
}

impl Step {
    /// The ring the step runs on.
    pub fn ring(&self) -> &str {
        self.ring.as_deref().unwrap_or("main")
    }

    /// Whether the step checks something the kernel does (an assertion that can fail): its
    /// action does ([`Action::checks`]) or it carries an `expect`.
    pub fn asserts(&self) -> bool {
        self.action.checks() || self.expect.is_some()
    }

    /// Whether the step changes the device under test (the runner restores its settings
    /// after the case and reads them back).
    pub fn changes_device(&self) -> bool {
        self.action.kind().device
    }
}

/// What a kind of step is.
#[derive(Clone, Copy, Debug)]
pub struct StepKind {
    /// Its key in a case file.
    pub key: &'static str,
    /// What it does (the variant's doc comment): the JSON Schema's description and README's
    /// step table.
    pub doc: &'static str,
    /// A step of this kind may carry an `expect` (its exec method checks the answer with it).
    pub expect: bool,
    /// A call checked for success when it has no `expect`: that check is set-up, not the
    /// point of a case.
    pub call: bool,
    /// It is an assertion by itself (a call checked for success, an `expect_*` step). Kinds
    /// that assert only with some values say so in [`Action::checks`].
    pub checks: bool,
    /// It changes the device under test.
    pub device: bool,
}

impl StepKind {
    const NONE: StepKind = StepKind { key: "", doc: "", expect: false, call: false, checks: false, device: false };

    /// The doc comment as one paragraph.
    pub fn summary(&self) -> String {
        self.doc.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The table of step kinds: `Variant(Body) = "key" [facts]`, the facts being fields of
/// [`StepKind`] that are true.
macro_rules! step_kinds {
    ($( $(#[doc = $doc:literal])* $variant:ident($body:ty) = $key:literal [$($fact:ident),*] ),* $(,)?) => {
        /// What a step does: exactly one of these, written as its key (`register: {...}`).
        #[derive(Clone, Debug)]
        pub enum Action {
            $( $(#[doc = $doc])* $variant($body), )*
        }

        /// Every kind of step, in the order of the table.
        pub const STEP_KINDS: &[StepKind] = &[
            $( StepKind { key: $key, doc: concat!($($doc, "\n"),*), $($fact: true,)* ..StepKind::NONE }, )*
        ];

        /// The keys a step may have.
        const KEYS: &[&str] = &["ring", $($key,)* "expect"];

        impl Action {
            /// What kind of step this is.
            pub fn kind(&self) -> &'static StepKind {
                enum Ix { $($variant,)* }
                match self { $( Action::$variant(_) => &STEP_KINDS[Ix::$variant as usize], )* }
            }

            /// Reads the body of the action under `key` (the map's next value).
            fn read<'de, A: MapAccess<'de>>(key: &str, map: &mut A) -> Result<Action, A::Error> {
                match key {
                    $( $key => map.next_value().map(Action::$variant), )*
                    _ => Err(de::Error::unknown_field(key, KEYS)),
                }
            }

            /// The body's schema, by key.
            fn schemas(g: &mut SchemaGenerator) -> Vec<(&'static str, Schema)> {
                vec![$( ($key, g.subschema_for::<$body>()), )*]
            }
        }
    };
}

step_kinds! {
    /// `IORING_REGISTER_ZCRX_IFQ` with a valid default registration for the topology; overrides
    /// for `ifq`, `area`, `region`, `event` (present = `event_desc` set; `type_mask: [COPY]`,
    /// `stats_offset: auto`), `area_pages`, `region_kind`, `import: FD_NAME`, `readonly: [ifq,
    /// area, region, event]`, `nr_args`, `name`; `area_huge` (2 MiB pages), `area_dmabuf` (a
    /// udmabuf over a sealed memfd, `$area.memfd`, `$area.dmabuf_fd`), `area_layout: same_page`
    /// (every page of the area maps one page: DMA segments of one page), `area_prot`,
    /// `region_fill: 0xff` (the user region past the RQ entries holds other bytes), `rq_fill:
    /// 0xff` (all of it, the RQ head/tail header included),
    /// `unsupported: ERRNO` (the answer that means the device lacks the feature: the case skips),
    /// `retry_ms`, `traffic_before_copy_out: { bytes, conn }` (the area struct's copy-out held
    /// by userfaultfd until that traffic sits in the socket in the opened queue's buffers, then
    /// refused: EFAULT with buffers in flight)
    Register(Register) = "register" [expect, call, checks],
    /// `IORING_REGISTER_ZCRX_CTRL`: `op`, `set` (zcrx_ctrl fields), `area`/`area_pages`/
    /// `area_readonly` (ADD_AREA), `save_fd` (EXPORT), `readonly`, `arg`, `nr_args`, `repeat: N` (N calls, each
    /// checked); success is a return of 0, as for `register` and `query`
    Ctrl(Ctrl) = "ctrl" [expect, call, checks],
    /// `IORING_REGISTER_QUERY`: `op`, `hdr` overrides, `chain: N`, `on_ring`, `nr_args`
    Query(Query) = "query" [expect, call, checks],
    /// `io_uring_register(fd, opcode, arg, nr_args)` with any values (`fd` default: the ring's)
    RegisterRaw(RegisterRaw) = "register_raw" [expect, call, checks],
    /// a second ring: `name`, `spec: {flags, entries, cq_entries}`
    OpenRing(OpenRing) = "open_ring" [expect, call, checks],
    /// a connection (`name`, default `c0`): `kind: tcp` (loopback, or between the topology's
    /// endpoints; `ipv6: true`), `tcp_unconnected` (a TCP socket never connected), `udp`, `unix`,
    /// `pipe`; TCP `rcvbuf` sets SO_RCVBUF on the listener
    Connect(Connect) = "connect" [],
    /// the peer writes `bytes` of the pattern (continuing across sends), `chunk` bytes a write
    Send(Send) = "send" [],
    /// the peer's sends are done and its TCP has nothing unacknowledged (`timeout_ms`, default
    /// 5000): no retransmission of them can reach the device after this step, e.g. in the
    /// window of a queue restart
    Acked(Acked) = "acked" [],
    /// `shutdown(SHUT_WR)` of the peer, or `close: true`, or `reset: true` (close with
    /// SO_LINGER 0: an RST)
    Shutdown(Shutdown) = "shutdown" [],
    /// submit `IORING_OP_RECV_ZC` (multishot): `len`, `user_data`, `sqe` overrides
    RecvZc(RecvZc) = "recv_zc" [],
    /// the next CQEs with `user_data`: exact `res` and `flags`, `data: true` checks the payload
    ExpectCqes(ExpectCqes) = "expect_cqes" [checks],
    /// exactly `bytes` of the pattern as data CQEs (res > 0, `F_MORE`, area, bounds, no buffer
    /// crossing, byte-exact), `recycle: none/flush/rq`, `rearm`, then an optional `final` CQE
    ExpectData(ExpectData) = "expect_data" [checks],
    /// whatever a request delivers until it ends or nothing comes for `idle_ms` (byte-exact,
    /// for amounts that depend on buffer caching): `min_bytes`, `recycle`, an optional `final` CQE
    DrainData(DrainData) = "drain_data" [checks],
    /// nothing with `user_data` (default: any) before a marker the kernel must post after it:
    /// `until: { send: N, request: UD }` (N more bytes the request must receive first) or
    /// `until: { nop: true }`; only where nothing orders the absence, a fixed `wait_ms` with
    /// the reason in `unordered`
    ExpectNoCqe(ExpectNoCqe) = "expect_no_cqe" [checks],
    /// held buffers back through the RQ (`count`, oldest first), optionally `flush`
    ReturnBuffers(ReturnBuffers) = "return_buffers" [],
    /// raw RQEs (`off`, `held: N`, `area`+`index`, `len`, `pad`, `repeat`) then advance the
    /// tail, optionally `flush`
    RqPush(RqPush) = "rq_push" [],
    /// write the head or tail directly
    RqSet(RqSet) = "rq_set" [],
    /// RQ `head`, `head_at_least`, `tail`, `held`
    ExpectRq(ExpectRq) = "expect_rq" [checks],
    /// `copy_count`, `copy_bytes` of the STATS block
    ExpectStats(ExpectStats) = "expect_stats" [checks],
    /// the case process's pinned, accounted memory (VmPin, where io_uring accounts the zcrx
    /// areas of a ring without CAP_IPC_LOCK): exactly `kib`, polled up to `wait_ms`
    ExpectPinned(ExpectPinned) = "expect_pinned" [checks],
    /// the dma-buf of an instance's `area_dmabuf` area as the kernel lists it (debugfs
    /// dma_buf/bufinfo, by inode): `close: true` closes the case's descriptor of it first,
    /// `listed: true` or `false`, the latter polled up to `wait_ms`
    Dmabuf(Dmabuf) = "dmabuf" [checks],
    /// `mmap` the kernel RQ region (`offset` override)
    MmapRegion(MmapRegion) = "mmap_region" [expect, call, checks],
    /// a ring, an fd or a connection
    Close(Close) = "close" [],
    /// a TUN netdev (no DMA device) in the case's network namespace: `name`, `$NAME.ifindex`
    Tun(Tun) = "tun" [],
    /// `new: true` moves the case into a fresh network namespace (devices made before stay behind)
    Netns(Netns) = "netns" [],
    /// DUT settings the topology file allows: `tcp_data_split`, `hds_thresh`, `combined`,
    /// `rx_ring`, `mtu` (restored after the case)
    Ethtool(Settings) = "ethtool" [expect, device],
    /// the simulated NIC's debugfs knobs `netmem_budget`, `on_empty`, `pp_fail_next`,
    /// `pp_fail_interval` (put back after the case), `reset`, and its counters `split`,
    /// `fallback`, `dropped`, `split_at_least`, `dropped_at_least`
    Nsim(Nsim) = "nsim" [],
    /// the DUT's link: `state: up` or `down`, `move_netns: true`, `delete: true` (destructive:
    /// only on a topology that allows it, else the case skips)
    Link(LinkOp) = "link" [expect, device],
    /// a minimal XDP_PASS program on the DUT (`bpf(BPF_PROG_LOAD)`, rtnetlink IFLA_XDP):
    /// `attach: true` or `false`, `mode: drv` or `skb`, `frags`
    Xdp(XdpStep) = "xdp" [expect, device],
    /// an AF_XDP socket bound to a DUT queue: `queue`, `zerocopy`
    AfXdp(AfXdp) = "af_xdp" [expect],
    /// an rxnfc rule: TCP to connection `conn` goes to `queue` or RSS `context` (`name`,
    /// default `r0`); `delete: true` removes it
    Ntuple(Ntuple) = "ntuple" [expect, device],
    /// `exclude: [q]` spreads the default RSS context over the other queues, or `context: NAME`
    /// with `queues: [..]` creates one
    Rss(Rss) = "rss" [expect, device],
    /// the netdev family's view of a queue's memory provider: `queue`, `io_uring: true` or
    /// `false`, `rx_buf_len`, polled up to `wait_ms`
    QueueGet(QueueGet) = "queue_get" [checks],
    /// page pools with the io_uring provider (`io_uring: N`) and buffers still held by destroyed
    /// pools (`detached_inflight`), polled up to `wait_ms` (each second the receive softirq is
    /// run on every CPU, which frees skbs deferred to it); statistics logged
    PagePools(PagePools) = "page_pools" [checks],
    /// `start: P` forks a process that registers on the topology's queue and holds the
    /// instance; `exit: P` lets it exit without closing anything (teardown from the exit path)
    Process(Process) = "process" [expect, call, checks],
    /// another process receiving through the instance: `start: P, fd: BOX, conn: c1` forks it and
    /// passes it the exported file and the socket over SCM_RIGHTS (it imports on a ring of its
    /// own and arms RECV_ZC), `receive: P, bytes: N` checks its data CQEs byte for byte in the
    /// exporter's area, `exit: P` lets it exit without closing anything, `kill: P` SIGKILLs it
    Importer(Importer) = "importer" [checks],
    /// `create: NAME` makes a netdevsim device of the case's own, set up for zcrx
    /// (`$NAME.ifindex`); `delete: NAME` deletes it (a device left is deleted when the case ends)
    NsimDevice(NsimDevice) = "nsim_device" [expect, call],
    /// the driver's counters from the netdev family's qstats-get: `save: NAME`, then `since:
    /// NAME` with `rx_alloc_fail` or `rx_alloc_fail_at_least`
    Qstats(Qstats) = "qstats" [],
    /// limits of the case's own process: `nofile_used: true` (the next descriptor is EMFILE),
    /// `memlock: BYTES` (rings opened afterwards account pinned memory), `drop_caps: [IPC_LOCK]`,
    /// `keep_caps: [NET_ADMIN]` (every other capability dropped from the effective set),
    /// `fresh_uid: true` (a user id no process has, capabilities kept), `close_stdin: true` (the
    /// next descriptor is 0)
    Limit(Limit) = "limit" [],
    /// systematic fault injection on a debug kernel: `call` (one step: `register`, `ctrl`,
    /// `query`, `register_raw`, or `recv_zc`, whose submitting io_uring_enter is swept) runs
    /// once per round with the N-th fault point of its io_uring syscall failed (fail-nth; failslab and
    /// fail_page_alloc including sleeping and order-0 allocations, fail_usercopy), N = 1, 2, ...
    /// until it reaches no N-th point and succeeds; each round from fresh state (a new main
    /// ring, then `setup`), `after` when the call succeeded; `accept` (default ENOMEM, EFAULT),
    /// `max_rounds` (400), `min_rounds` (2). Skips on a kernel without fault injection
    FaultSweep(FaultSweep) = "fault_sweep" [checks],
    /// a race repeated in rounds from fresh state (ring, registration, connections with sender
    /// threads, multishot RECV_ZC, `async`: IOSQE_ASYNC): `race` (`flush_rq`, `add_area`,
    /// `close_ring`, `close_export`, `importer`), bounded by `rounds` and `seconds`;
    /// `connections`, `bytes`, `at_ms` (the window of the random points); every CQE, errno and
    /// byte checked, each round's streams complete unless the ring was closed
    Stress(Stress) = "stress" [checks],
}

impl Action {
    /// Whether the action checks something the kernel does by itself ([`StepKind::checks`]),
    /// or, for the kinds that do only with some values, with these values.
    pub fn checks(&self) -> bool {
        match self {
            Action::Nsim(n) => n.checks(),
            Action::Qstats(q) => q.rx_alloc_fail.is_some() || q.rx_alloc_fail_at_least.is_some(),
            Action::ReturnBuffers(r) => r.flush,
            Action::RqPush(r) => r.flush,
            Action::NsimDevice(d) => matches!(d, NsimDevice::Delete(_)),
            _ => self.kind().checks,
        }
    }
}

/// A key of a step: checked as it is read, so an unknown one is reported at its place.
struct Key(&'static str);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                KEYS.iter().copied().find(|k| *k == v).map(Key).ok_or_else(|| E::unknown_field(v, KEYS))
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Step, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Step;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step (a mapping with one action key)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                let (mut ring, mut expect, mut action) = (None, None, None);
                let mut keys: Vec<&str> = Vec::new();
                while let Some(Key(k)) = map.next_key()? {
                    match k {
                        "ring" => ring = map.next_value()?,
                        "expect" => expect = map.next_value()?,
                        _ if action.is_none() => {
                            action = Some(Action::read(k, &mut map)?);
                            keys.push(k);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            keys.push(k);
                        }
                    }
                }
                match action {
                    Some(action) if keys.len() == 1 => Ok(Step { ring, action, expect }),
                    Some(_) => Err(de::Error::custom(format!(
                        "a step needs exactly one action, found {}: {}",
                        keys.len(),
                        keys.join(", ")
                    ))),
                    None => Err(de::Error::custom(format!(
                        "a step needs exactly one action, found 0 (actions: {})",
                        STEP_KINDS.iter().map(|k| k.key).collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
        }
        d.deserialize_map(V)
    }
}

/// A step's schema: an object with `ring`, `expect` and the action keys, of which exactly one
/// is present; `expect` only on the kinds that take it.
impl JsonSchema for Step {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Step").into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        use serde_json::{json, Map, Value};
        let mut props = Map::new();
        props.insert("ring".into(), json!({ "description": "Which ring (default: main).", "type": "string" }));
        let mut expect = g.subschema_for::<Expect>().to_value();
        if let Some(o) = expect.as_object_mut() {
            o.insert("description".into(), "What the kernel must answer (absent: the call must succeed).".into());
        }
        props.insert("expect".into(), expect);
        let mut one_of = Vec::new();
        for ((key, body), kind) in Action::schemas(g).into_iter().zip(STEP_KINDS) {
            let mut body = body.to_value();
            if let Some(o) = body.as_object_mut() {
                o.insert("description".into(), Value::String(kind.summary()));
            }
            props.insert(key.into(), body);
            let mut only = json!({ "required": [key] });
            if !kind.expect {
                only["not"] = json!({ "required": ["expect"] });
            }
            one_of.push(only);
        }
        let mut s = Map::new();
        s.insert("description".into(), "One step: exactly one action key, `ring` and `expect`.".into());
        s.insert("type".into(), "object".into());
        s.insert("properties".into(), Value::Object(props));
        s.insert("additionalProperties".into(), false.into());
        s.insert("oneOf".into(), Value::Array(one_of));
        Schema::from(s)
    }
}

/// README's table of step kinds (Markdown), from [`STEP_KINDS`].
pub fn step_reference() -> String {
    let mut out = String::from("| step | `expect` | what it does |\n|---|---|---|\n");
    for k in STEP_KINDS {
        out.push_str(&format!("| `{}` | {} | {} |\n", k.key, if k.expect { "yes" } else { "" }, k.summary()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        let mut keys: Vec<&str> = STEP_KINDS.iter().map(|k| k.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), STEP_KINDS.len(), "a key is used twice");
        for k in STEP_KINDS {
            assert!(!k.key.is_empty() && !k.summary().is_empty(), "{k:?}");
            assert!(!k.summary().contains('|'), "`{}`: a `|` breaks README's table", k.key);
            assert!(!k.call || k.expect, "`{}`: a call's answer is what `expect` describes", k.key);
            assert!(!k.device || k.expect, "`{}`", k.key);
        }
    }

    fn first_error(steps: &str) -> (u64, u64, String) {
        let text = format!("id: a.b\narea: rq\nabout: x\nsteps:\n{steps}");
        let e = crate::case::load_str(std::path::Path::new("t.yaml"), &text).expect_err("fails");
        assert_eq!(e.len(), 1, "one error: {e:?}");
        (e[0].line, e[0].column, e[0].msg.clone())
    }

    #[test]
    fn a_step_is_read_into_its_variant() {
        let text = "id: a.b\narea: rq\nabout: x\nsteps:\n  - register: { name: z1 }\n    ring: r2\n    expect: { errno: EINVAL }\n  - expect_rq: { head: 0 }\n";
        let c = crate::case::load_str(std::path::Path::new("t.yaml"), text).expect("loads");
        let s = &c[0].def.steps[0].value;
        assert!(matches!(&s.action, Action::Register(r) if r.name.as_deref() == Some("z1")), "{s:?}");
        assert_eq!((s.ring(), s.expect.as_ref().and_then(|e| e.errno.as_deref())), ("r2", Some("EINVAL")));
        assert_eq!(c[0].def.steps[1].value.ring(), "main");
    }

    #[test]
    fn two_actions_are_one_located_error() {
        let (l, c, m) = first_error("  - register: {}\n  - { register: {}, connect: {}, send: { bytes: 1 } }\n");
        assert_eq!((l, c), (6, 5), "{m}");
        assert_eq!(m, "a step needs exactly one action, found 3: register, connect, send");
        let (l, c, m) = first_error("  - register: {}\n    expect_rq: { head: 0 }\n");
        assert_eq!((l, c), (5, 5), "{m}");
        assert!(m.contains("found 2: register, expect_rq"), "{m}");
    }

    #[test]
    fn no_action_is_one_located_error() {
        let (l, c, m) = first_error("  - register: {}\n  - ring: main\n    expect: { errno: EINVAL }\n");
        assert_eq!((l, c), (6, 5), "{m}");
        assert!(m.starts_with("a step needs exactly one action, found 0 (actions: register, ctrl,"), "{m}");
        let (l, c, m) = first_error("  - {}\n");
        assert_eq!((l, c), (5, 5), "{m}");
        assert!(m.contains("found 0"), "{m}");
    }

    #[test]
    fn unknown_keys_and_bad_bodies_are_located() {
        let (l, c, m) = first_error("  - { register: {}, registr: {} }\n");
        assert_eq!((l, c), (5, 21), "{m}");
        assert!(m.starts_with("unknown field `registr` (known: ring, register,"), "{m}");
        let (l, c, m) = first_error("  - register: {}\n  - tun:\n");
        assert_eq!((l, c), (6, 8), "{m}");
        assert!(m.contains("expected a mapping, found nothing"), "{m}");
        let (l, c, m) = first_error("  - register:\n      nr_args: many\n");
        assert_eq!((l, c), (6, 16), "{m}");
        assert!(m.contains("expected an integer"), "{m}");
    }

    #[test]
    fn expect_goes_only_where_the_kind_takes_it() {
        let (l, c, m) = first_error("  - register: {}\n  - connect: {}\n    expect: { errno: EINVAL }\n");
        assert_eq!((l, c), (6, 5), "{m}");
        assert_eq!(m, "`expect` does not apply to a connect step");
        // `process` checks its registration's answer with `expect` (exec passes it on).
        let text = "id: a.b\narea: nic\nabout: x\nsteps:\n  - process: { start: p }\n    expect: { errno: EPERM }\n";
        crate::case::load_str(std::path::Path::new("t.yaml"), text).expect("loads");
    }

    #[test]
    fn the_schema_has_one_action_per_step() {
        let s = crate::case::schema();
        let step = &s["$defs"]["Step"];
        let one_of = step["oneOf"].as_array().expect("oneOf");
        assert_eq!(one_of.len(), STEP_KINDS.len());
        assert_eq!(step["properties"].as_object().map(|p| p.len()), Some(STEP_KINDS.len() + 2));
        assert_eq!(step["properties"]["ethtool"]["$ref"], "#/$defs/Settings");
        assert_eq!(one_of[5], serde_json::json!({ "required": ["connect"], "not": { "required": ["expect"] } }));
    }

    #[test]
    fn kinds_follow_the_variants() {
        let a = Action::Limit(Limit::default());
        assert_eq!(a.kind().key, "limit");
        let a = Action::Register(Register::default());
        assert_eq!(a.kind().key, "register");
        assert!(a.kind().call && a.checks());
        assert!(!Action::RqPush(RqPush::default()).checks());
        assert!(Action::RqPush(RqPush { flush: true, ..Default::default() }).checks());
        assert!(Action::Ethtool(Settings::default()).kind().device);
    }
}
