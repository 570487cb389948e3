//! The mutant set (`vm/mutants/`: a `series` file and one patch per mutant, whose header says
//! what it breaks) and the campaign's results file: one JSON line per mutant, appended as each
//! finishes, so a campaign stopped anywhere resumes where it was.

use std::collections::BTreeMap;

use super::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Status;

/// One mutant as its patch header describes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Mutant {
    /// The patch file name (`NN-area-name.patch`).
    pub file: String,
    pub name: String,
    /// provider, rq-parse, drain, events, import-export, registration, recv, query.
    pub area: String,
    /// logic, validation, boundary or errno (an errno swap).
    pub kind: String,
    pub breaks: String,
    /// Why a surviving mutant is equivalent (or cannot be observed here), when it is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub equivalent: String,
}

/// Reads the header lines (`Key: value` up to `---`) of a mutant patch.
pub fn parse_header(file: &str, text: &str) -> Result<Mutant, Error> {
    let mut m = Mutant { file: file.to_string(), ..Default::default() };
    for line in text.lines() {
        if line == "---" {
            break;
        }
        let Some((k, v)) = line.split_once(": ") else { continue };
        let v = v.trim().to_string();
        match k {
            "Mutant" => m.name = v,
            "Area" => m.area = v,
            "Kind" => m.kind = v,
            "Breaks" => m.breaks = v,
            "Equivalent" => m.equivalent = v,
            _ => {}
        }
    }
    if m.name.is_empty() || m.area.is_empty() || m.kind.is_empty() || m.breaks.is_empty() {
        return Err(Error::Input(format!(
            "{file}: a mutant needs Mutant:, Area:, Kind: and Breaks: lines before `---`"
        )));
    }
    if !text.contains("\n--- a/") || !text.contains("\n+++ b/") {
        return Err(Error::Input(format!("{file}: no unified diff after the header")));
    }
    Ok(m)
}

/// The mutants of `dir`, in `series` order.
pub fn load(dir: &Path) -> Result<Vec<(Mutant, PathBuf)>, Error> {
    let series = std::fs::read_to_string(dir.join("series"))
        .map_err(|e| Error::Input(format!("{}/series: {e}", dir.display())))?;
    let mut out = Vec::new();
    for f in series.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if f.contains('/') {
            return Err(Error::Input(format!("{}/series: `{f}` is not a file name in that directory", dir.display())));
        }
        let p = dir.join(f);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::Input(format!("{}: {e}", p.display())))?;
        out.push((parse_header(f, &text)?, p));
    }
    Ok(out)
}

/// The set in campaign order: one mutant of each area in turn (areas in order of first
/// appearance), so a campaign stopped early has sampled every area rather than the first few.
pub fn round_robin(set: &[(Mutant, PathBuf)]) -> Vec<&(Mutant, PathBuf)> {
    let mut areas: Vec<(&str, std::collections::VecDeque<&(Mutant, PathBuf)>)> = Vec::new();
    for e in set {
        match areas.iter_mut().find(|(a, _)| *a == e.0.area) {
            Some((_, q)) => q.push_back(e),
            None => areas.push((&e.0.area, [e].into())),
        }
    }
    let mut out = Vec::with_capacity(set.len());
    while out.len() < set.len() {
        for (_, q) in areas.iter_mut() {
            if let Some(e) = q.pop_front() {
                out.push(e);
            }
        }
    }
    out
}

/// What a mutant's run showed.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The unmutated kernel: what every mutant is compared with.
    Baseline,
    /// At least one case that passed on the baseline did not.
    Killed,
    /// The guest crashed or hung (panic, oops that stopped it, or over the time cap).
    KilledByCrash,
    Survived,
    /// The mutant did not compile (a defect of the mutant set, not counted).
    BuildFailed,
}

/// How a killed-by-crash guest ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Crash {
    /// It ran past the boot cap and was killed.
    Hang,
    /// The guest command exited unsuccessfully (a panic that powered the guest off, or the
    /// runner itself killed by a signal).
    Exited,
}

/// The kind of kernel a record was measured on: which detectors could see a mutant.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KernelKind {
    /// `tree:PATH`, built `--gcov`: the production configuration, no sanitizers (the records
    /// written before kernel kinds were recorded are of this kind).
    #[default]
    Production,
    /// `tree+debug:PATH`, built `--debug`: KASAN, kmemleak, lockdep, fault injection
    /// (reports/debug-kernel.md). A splat or a leak fails the running case.
    Debug,
}

/// One line of the results file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub mutant: Mutant,
    pub verdict: Verdict,
    /// The kernel kind of the boot; mutants are compared with a baseline of the same kind.
    #[serde(default)]
    pub kernel: KernelKind,
    /// The boot's case selection (`mutate --filter`; empty: the whole catalogue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<String>,
    /// Cases whose status differs from the baseline's (baseline pass/xfail only).
    #[serde(default)]
    pub killed_by: Vec<String>,
    /// Whether liburing's zcrx.t failed where it passed on the baseline (None: not run).
    pub liburing_killed: Option<bool>,
    pub liburing_exit: Option<i32>,
    /// Cases executed (not skipped).
    pub executed: usize,
    pub duration_s: f64,
    /// UTC, RFC 3339.
    pub when: String,
    pub kernel_release: String,
    /// For a killed-by-crash record: a hang or an exit (absent in records written before the
    /// field, which named their case only for hangs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<Crash>,
    /// Why it crashed, or the build error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The baseline's case statuses and gcov data (baseline record only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cases: BTreeMap<String, Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcda_suite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcda_liburing: Option<String>,
}

/// The records of a results file (none when it does not exist). A torn last line (the
/// machine stopped while it was written) is ignored; any other bad line is an error.
pub fn read_results(p: &Path) -> Result<Vec<Record>, Error> {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::Input(format!("{}: {e}", p.display()))),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        match serde_json::from_str::<Record>(l) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(Error::Input(format!("{}:{}: {e}", p.display(), i + 1))),
        }
    }
    Ok(out)
}

/// Appends one record and syncs it to disk.
pub fn append(p: &Path, r: &Record) -> Result<(), Error> {
    let line = serde_json::to_string(r).map_err(|e| Error::Run(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags_nofollow()
        .open(p)
        .map_err(|e| Error::Run(format!("{}: {e}", p.display())))?;
    writeln!(f, "{line}").and_then(|_| f.sync_all()).map_err(|e| Error::Run(format!("{}: {e}", p.display())))
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOFOLLOW)
    }
}

/// The cases whose status changed from the baseline's, among those that passed or xfailed there.
pub fn changed(baseline: &BTreeMap<String, Status>, now: &BTreeMap<String, Status>) -> Vec<String> {
    baseline
        .iter()
        .filter(|(_, s)| matches!(s, Status::Pass | Status::Xfail))
        .filter(|(id, s)| now.get(*id) != Some(*s))
        .map(|(id, _)| id.clone())
        .collect()
}

/// [`changed`] for a boot that ran a selection (`mutate --filter`): only the cases it ran are
/// compared (the baseline may have run more), and the ones it ran that the baseline did not
/// are returned second: they cannot count as kills (no baseline to compare with).
pub fn changed_in_selection(
    baseline: &BTreeMap<String, Status>,
    now: &BTreeMap<String, Status>,
) -> (Vec<String>, Vec<String>) {
    let base: BTreeMap<String, Status> =
        baseline.iter().filter(|(id, _)| now.contains_key(*id)).map(|(k, v)| (k.clone(), *v)).collect();
    let unbaselined = now.keys().filter(|id| !baseline.contains_key(*id)).cloned().collect();
    (changed(&base, now), unbaselined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_order_takes_one_area_at_a_time() {
        let m = |f: &str, a: &str| (Mutant { file: f.into(), area: a.into(), ..Default::default() }, PathBuf::from(f));
        let set = vec![m("1", "p"), m("2", "p"), m("3", "p"), m("4", "q"), m("5", "r"), m("6", "r")];
        let order: Vec<&str> = round_robin(&set).iter().map(|e| e.0.file.as_str()).collect();
        assert_eq!(order, ["1", "4", "5", "2", "6", "3"]);
    }

    const PATCH: &str = "Mutant: m\nArea: events\nKind: logic\nBreaks: b\n---\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";

    #[test]
    fn header() {
        let m = parse_header("01-x.patch", PATCH).expect("parses");
        assert_eq!((m.name.as_str(), m.area.as_str(), m.kind.as_str()), ("m", "events", "logic"));
        assert!(parse_header("x", "Mutant: m\n---\n--- a/x\n+++ b/x\n").is_err());
        assert!(parse_header("x", "Mutant: m\nArea: a\nKind: k\nBreaks: b\n---\n").is_err());
    }

    #[test]
    fn planted_bugs_load() {
        // vm/mutants/planted: the debug kernel's detectors are proven with these (issue 24).
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vm/mutants/planted");
        let set = load(&dir).expect("the planted series loads");
        let kinds: Vec<&str> = set.iter().map(|(m, _)| m.kind.as_str()).collect();
        assert_eq!(kinds, ["leak", "use-after-free"]);
    }

    #[test]
    fn changed_counts_only_what_passed() {
        let b: BTreeMap<String, Status> =
            [("a", Status::Pass), ("b", Status::Skip), ("c", Status::Xfail), ("d", Status::Pass)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let mut n = b.clone();
        n.insert("a".into(), Status::Fail);
        n.insert("b".into(), Status::Fail);
        n.remove("d");
        assert_eq!(changed(&b, &n), vec!["a".to_string(), "d".to_string()]);
    }

    #[test]
    fn a_selection_compares_only_what_it_ran() {
        let m =
            |v: &[(&str, Status)]| -> BTreeMap<String, Status> { v.iter().map(|(k, s)| (k.to_string(), *s)).collect() };
        let base = m(&[("a", Status::Pass), ("b", Status::Pass), ("c", Status::Pass)]);
        let now = m(&[("a", Status::Fail), ("c", Status::Pass), ("n", Status::Fail)]);
        let (killed, unbaselined) = changed_in_selection(&base, &now);
        assert_eq!(killed, vec!["a".to_string()], "b was not selected: not a kill");
        assert_eq!(unbaselined, vec!["n".to_string()]);
    }

    #[test]
    fn torn_last_line_is_ignored() {
        let d = std::env::temp_dir().join(format!("zcrx-mut-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("tmp");
        let p = d.join("r.jsonl");
        let r = Record {
            mutant: parse_header("01-x.patch", PATCH).expect("parses"),
            verdict: Verdict::Killed,
            kernel: KernelKind::Debug,
            filter: vec!["rq.flush".into()],
            killed_by: vec!["a".into()],
            liburing_killed: Some(false),
            liburing_exit: Some(0),
            executed: 3,
            duration_s: 1.0,
            when: "2026-11-30T00:00:00Z".into(),
            kernel_release: "7.3.4".into(),
            crash: None,
            message: String::new(),
            cases: BTreeMap::new(),
            gcda_suite: None,
            gcda_liburing: None,
        };
        append(&p, &r).expect("append");
        std::fs::OpenOptions::new().append(true).open(&p).and_then(|mut f| f.write_all(b"{\"mutant\":")).expect("torn");
        let back = read_results(&p).expect("reads");
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].kernel, back[0].filter.as_slice()),
            (KernelKind::Debug, ["rq.flush".to_string()].as_slice())
        );
        // A record written before kernel kinds were recorded is a production one.
        let old = serde_json::to_string(&r).expect("json").replace(",\"kernel\":\"debug\"", "");
        assert!(!old.contains("\"kernel\""), "{old}");
        let old: Record = serde_json::from_str(&old).expect("an old record reads");
        assert_eq!(old.kernel, KernelKind::Production);
        std::fs::write(&p, "nonsense\n{}\n").expect("w");
        assert!(read_results(&p).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
