//! The one event stream of a run and its codec. A case child sends its [`Outcome`] to the
//! runner over a pipe; a runner inside a VM streams probe, total, start and result events to
//! the host over the console. Both use [`Event::encode`] / [`Event::decode`]: one JSON object a
//! line behind a frame marker, so lines that are not events (console noise) are told apart.

use serde::{Deserialize, Serialize};

use super::{CaseReport, Outcome, Probe};

/// What a runner (or a case child) tells whoever reads it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The kernel was probed (the first event of a run).
    Probe { probe: Box<Probe> },
    /// How many cases the run selected.
    Total { total: usize },
    /// A case started.
    Start { id: String },
    /// A case ended.
    Result { case: Box<CaseReport> },
    /// A case child's outcome (child -> runner only).
    Outcome { outcome: Box<Outcome> },
    /// kmemleak is scanning after `cases` case run(s) (minutes under TCG: the guest is busy).
    LeakScan { cases: usize },
    /// A scan found objects case `id` leaked: its result, already reported, becomes a leak.
    Leaked { id: String, objects: Vec<super::LeakedObject> },
}

/// Marks a line as an encoded event; chosen so that no kernel or console line starts with it.
const FRAME: &str = "\u{1e}zcrx-event ";

impl Event {
    /// One line, without the newline.
    pub fn encode(&self) -> String {
        // Serialising these plain data types cannot fail; an empty object decodes to None.
        format!("{FRAME}{}", serde_json::to_string(self).unwrap_or_else(|_| "{}".into()))
    }

    /// The event a line carries; None for any other line.
    pub fn decode(line: &str) -> Option<Event> {
        let json = line.trim_end_matches(['\r', '\n']).split_once(FRAME)?.1;
        serde_json::from_str(json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_noise() {
        let e = Event::Start { id: "query.opcodes".into() };
        let line = e.encode();
        assert!(matches!(Event::decode(&line), Some(Event::Start { id }) if id == "query.opcodes"));
        // A console may prefix a line (e.g. with a carriage return); the frame still finds it.
        assert!(matches!(Event::decode(&format!("\r{line}\r\n")), Some(Event::Start { .. })));
        assert!(Event::decode("[    1.234] virtio_net virtio0: link up").is_none());
        assert!(Event::decode(&format!("{FRAME}{{not json")).is_none());
        let o = super::super::LeakedObject {
            pid: 104,
            backtrace: vec!["io_register_zcrx+0x1/0x2".into()],
            ..Default::default()
        };
        let line = Event::Leaked { id: "region.checks".into(), objects: vec![o.clone()] }.encode();
        assert!(
            matches!(Event::decode(&line), Some(Event::Leaked { id, objects }) if id == "region.checks" && objects == [o])
        );
    }
}
