//! The body of the `stress` step: racing operations repeated in rounds by several threads,
//! bounded by a round count and a wall-clock time (issue 25 item 3).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An operation that races the data path in every round of a `stress` step. The ring's own
/// thread always receives on every connection and returns each buffer through the RQ as it
/// checks it; sender threads keep the page pool refilling from that RQ (softirq, on the other
/// CPU). These operations race with that.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RaceOp {
    /// ZCRX_CTRL_FLUSH_RQ after every batch of returned buffers (the ring's thread: a
    /// DEFER_TASKRUN ring has one issuer), against the page pool's refill from the same RQ.
    FlushRq,
    /// ZCRX_CTRL_ADD_AREA once, at a random point of the round, while data flows; the new
    /// area's buffers are checked like the first's.
    AddArea,
    /// Close the ring at a random point of the round while data flows and buffers sit in the
    /// RQ (ring exit: termination, queue close and scrub against refill and RECV_ZC in io-wq).
    CloseRing,
    /// Close the exported file (ZCRX_CTRL_EXPORT made at the start of the round) at a random
    /// point while the ring and any importers receive.
    CloseExport,
    /// A thread imports the instance on a ring of its own (ZCRX_REG_IMPORT of the exported
    /// file), receives on a connection of its own, returns its buffers through the shared RQ,
    /// and closes its ring at a random point while data still flows.
    Importer,
}

impl RaceOp {
    /// Whether the round needs the exported file.
    pub fn needs_export(self) -> bool {
        matches!(self, RaceOp::CloseExport | RaceOp::Importer)
    }

    /// Whether the operation ends a receive before all bytes arrived (a round with one has no
    /// "every byte arrived" check for the streams it cuts).
    pub fn cuts(self) -> bool {
        matches!(self, RaceOp::CloseRing)
    }
}

/// Repeats a race in rounds, each from fresh state: a ring (the case's ring flags), a
/// registration on the topology's queue (NODEV or the device's), `connections` TCP
/// connections, each with a sender thread writing `bytes` of the pattern then shutting down
/// and a multishot RECV_ZC (with IOSQE_ASYNC when `async`: through io-wq); then the `race`
/// operations. Every data CQE is checked byte for byte and returned through the RQ at once; a
/// round without `close_ring` must end with every connection's `bytes` received and a final
/// CQE of res 0 (EOF). Anything else fails the step: an unexpected CQE or errno, a payload
/// mismatch, a stall; a splat or leak fails the case. Rounds stop at `rounds` or after
/// `seconds` (at least one round runs).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stress {
    /// The racing operations (at least one; each at most once).
    pub race: Vec<RaceOp>,
    /// At most this many rounds (1 to 100000).
    pub rounds: u32,
    /// And at most this many seconds of rounds (1 to 3600; the case's timeout must leave room).
    pub seconds: u32,
    /// TCP connections received on the ring (1 to 8, default 2).
    pub connections: Option<u32>,
    /// Bytes each sender writes per round (1 to 64 MiB, default 262144).
    pub bytes: Option<u64>,
    /// RECV_ZC with IOSQE_ASYNC: the receive runs in io-wq.
    #[serde(default, rename = "async")]
    pub async_recv: bool,
    /// The window, in milliseconds from the round's start, in which the random point of
    /// `close_ring`, `close_export`, `add_area` and the importers' close falls (default
    /// [1, 50]).
    pub at_ms: Option<[u32; 2]>,
}

impl Stress {
    pub const DEFAULT_CONNECTIONS: u32 = 2;
    pub const DEFAULT_BYTES: u64 = 262_144;
    pub const DEFAULT_AT_MS: [u32; 2] = [1, 50];

    pub fn connections(&self) -> u32 {
        self.connections.unwrap_or(Self::DEFAULT_CONNECTIONS)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.unwrap_or(Self::DEFAULT_BYTES)
    }

    pub fn at_ms(&self) -> [u32; 2] {
        self.at_ms.unwrap_or(Self::DEFAULT_AT_MS)
    }

    pub fn has(&self, op: RaceOp) -> bool {
        self.race.contains(&op)
    }

    /// What is wrong with the values, as (field, message): checked when the case is loaded.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.race.is_empty() {
            out.push(("race", "stress.race: name at least one operation".to_string()));
        }
        let mut sorted = self.race.clone();
        sorted.sort();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            out.push(("race", "stress.race: an operation is named twice".to_string()));
        }
        if self.has(RaceOp::AddArea) && self.has(RaceOp::Importer) {
            out.push((
                "race",
                "stress.race: add_area and importer together (an importer knows the first area only)".to_string(),
            ));
        }
        if !(1..=100_000).contains(&self.rounds) {
            out.push(("rounds", format!("stress.rounds: {} is not 1 to 100000", self.rounds)));
        }
        if !(1..=3600).contains(&self.seconds) {
            out.push(("seconds", format!("stress.seconds: {} is not 1 to 3600", self.seconds)));
        }
        if !(1..=8).contains(&self.connections()) {
            out.push(("connections", format!("stress.connections: {} is not 1 to 8", self.connections())));
        }
        if !(1..=64 << 20).contains(&self.bytes()) {
            out.push(("bytes", format!("stress.bytes: {} is not 1 to 67108864", self.bytes())));
        }
        let [lo, hi] = self.at_ms();
        if lo > hi || hi > 60_000 {
            out.push(("at_ms", format!("stress.at_ms: [{lo}, {hi}] is not a window within 0 to 60000")));
        }
        out
    }
}
