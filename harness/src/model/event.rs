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
    /// A case started, with the seconds it may run (its own `timeout` or the run's): the host
    /// watching a VM waits that long (plus a margin) before it calls the guest unresponsive.
    Start {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_s: Option<f64>,
    },
    /// A case ended.
    Result { case: Box<CaseReport> },
    /// A case ended with a kernel splat while another case ran beside it: it runs again alone
    /// at the end of the run and its result waits for that. A watcher learns now that it ended,
    /// and with a splat (a guest that then hangs whole has still said so).
    Suspect { id: String },
    /// A case child's outcome (child -> runner only).
    Outcome { outcome: Box<Outcome> },
    /// kmemleak is scanning after `cases` case run(s) (minutes under TCG: the guest is busy).
    LeakScan { cases: usize },
    /// A scan found objects case `id` leaked: its result, already reported, becomes a leak.
    Leaked { id: String, objects: Vec<super::LeakedObject> },
    /// The run's last events on a kernel with gcov on io_uring/zcrx.c (a debug or campaign
    /// tree): the bytes of its `zcrx.gcda` after the run, hex, in `parts` lines of at most
    /// [`GCOV_PART`] characters (a console line that long may be cut by kernel messages; a
    /// missing part drops the whole file).
    Gcov { part: usize, parts: usize, hex: String },
}

/// Hex characters in one [`Event::Gcov`] line.
pub const GCOV_PART: usize = 4096;

/// Marks a line as an encoded event; chosen so that no kernel or console line starts with it.
const FRAME: &str = "\u{1e}zcrx-event ";

impl Event {
    /// `bytes` as [`Event::Gcov`] parts.
    pub fn gcov_parts(bytes: &[u8]) -> Vec<Event> {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let chunks: Vec<&str> =
            hex.as_bytes().chunks(GCOV_PART).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        let parts = chunks.len();
        chunks.into_iter().enumerate().map(|(part, h)| Event::Gcov { part, parts, hex: h.to_string() }).collect()
    }

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
        let e = Event::Start { id: "query.opcodes".into(), timeout_s: Some(240.0) };
        let line = e.encode();
        assert!(
            matches!(Event::decode(&line), Some(Event::Start { id, timeout_s: Some(t) }) if id == "query.opcodes" && t == 240.0)
        );
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

    #[test]
    fn gcov_in_parts() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(GCOV_PART + 7).collect();
        let parts = Event::gcov_parts(&bytes);
        assert_eq!(parts.len(), 3);
        let mut hex = String::new();
        for (i, p) in parts.iter().enumerate() {
            match Event::decode(&p.encode()) {
                Some(Event::Gcov { part, parts: 3, hex: h }) if part == i => hex.push_str(&h),
                other => panic!("part {i}: {other:?}"),
            }
        }
        let whole: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, whole);
        assert!(hex.starts_with("000102"));
        assert!(Event::gcov_parts(&[]).is_empty());
    }
}
