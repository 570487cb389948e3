//! Upstream zcrx fixes as regression history (issue 25): the list (vm/mutants/history/fixes.tsv),
//! its history mutants (vm/mutants/history/series), the report generated from both and from the
//! proof campaign's results (reports/history.md and reports/history.json; `BLESS=1 cargo test
//! --test history` writes them), and the rule that a case's `fixes:` tag counts only once that
//! fix's history mutant was shown to fail the case: every tag in cases/ must be backed by a
//! record of reports/history-mutation.jsonl (`mutate --mutants vm/mutants/history --results
//! reports/history-mutation.jsonl`) whose `killed_by` names the case, or by the point-release
//! sweep (reports/point-releases.json, `python3 vm/point-releases.py render`): the case failed on
//! a release of the fix's line older than the first one with the fix, and passed on one with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zcrx_conform::case::{check_cve, check_fix_id, load_all, Case};

const COLUMNS: [&str; 14] = [
    "id",
    "subject",
    "release",
    "stable",
    "cve",
    "kind",
    "area",
    "in_7_3_4",
    "evidence_7_3_4",
    "source",
    "mutant",
    "cases",
    "observable",
    "notes",
];
const KINDS: [&str; 7] = ["uaf", "race", "leak", "locking", "logic", "uapi", "validation"];
const IN_7_3_4: [&str; 4] = ["yes", "no", "unknown", "n/a"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One row of fixes.tsv, by column name.
type Row = BTreeMap<&'static str, String>;

fn rows(text: &str) -> Vec<Row> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(COLUMNS.join("\t").as_str()), "fixes.tsv: the header row");
    lines
        .enumerate()
        .map(|(i, l)| {
            let cells: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                cells.len(),
                COLUMNS.len(),
                "fixes.tsv:{}: {} columns, want {}",
                i + 2,
                cells.len(),
                COLUMNS.len()
            );
            COLUMNS.iter().zip(cells).map(|(k, v)| (*k, v.to_string())).collect()
        })
        .collect()
}

/// The `Key: value` header lines of a mutant patch (up to `---`).
fn header(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .take_while(|l| *l != "---")
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn series(dir: &Path) -> Vec<String> {
    let s = std::fs::read_to_string(dir.join("series")).expect("vm/mutants/history/series");
    s.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

/// The proof campaign's records, by mutant file: (verdict, killed_by, liburing_killed). The
/// verdict names the kernel kind when a debug-kernel record decided it (`killed (debug
/// kernel)`); it starts with `killed` whenever the fix is caught.
type Proof = BTreeMap<String, (String, Vec<String>, Option<bool>)>;

/// One mutant's latest record of each kernel kind: (production, debug).
type Latest = (Option<(String, Vec<String>, Option<bool>)>, Option<(String, Vec<String>, Option<bool>)>);

/// Both kinds' records of a mutant made one: a kill on either kernel catches the fix (the
/// production kernel's first: it needs no detector); zcrx.t runs only in production boots.
fn fold((prod, debug): Latest) -> Option<(String, Vec<String>, Option<bool>)> {
    let lib = prod.as_ref().and_then(|p| p.2);
    match (prod, debug) {
        (Some(p), _) if p.0.starts_with("killed") => Some(p),
        (p, Some(d)) if d.0.starts_with("killed") => Some((
            match &p {
                Some(p) => format!("{} (debug kernel; production kernel: {})", d.0, p.0),
                None => format!("{} (debug kernel)", d.0),
            },
            d.1,
            lib,
        )),
        (Some(p), Some(d)) => Some((format!("{} (debug kernel: {})", p.0, d.0), vec![], lib)),
        (Some(p), None) => Some(p),
        (None, Some(d)) => Some((format!("{} (debug kernel)", d.0), vec![], None)),
        (None, None) => None,
    }
}

fn proof(path: &Path) -> Proof {
    let Ok(text) = std::fs::read_to_string(path) else { return Proof::new() };
    let mut latest: BTreeMap<String, Latest> = BTreeMap::new();
    for (i, l) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        let file = v["mutant"]["file"].as_str().unwrap_or_default().to_string();
        if file.is_empty() {
            continue; // the baseline
        }
        let killed_by: Vec<String> = v["killed_by"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let verdict = v["verdict"].as_str().unwrap_or_default().to_string();
        // A record found wrong afterwards (its only killer was a flaky case) keeps its line and
        // says why it no longer counts: `void`.
        let (verdict, killed_by) = match v["void"].as_str() {
            Some(why) => (format!("void ({verdict} by {}: {why})", killed_by.join(" ")), Vec::new()),
            None => (verdict, killed_by),
        };
        let rec = Some((verdict, killed_by, v["liburing_killed"].as_bool()));
        // A mutant run again on the same kind of kernel (a later line) replaces the earlier
        // result; records written before kinds were recorded are production ones.
        let slot = latest.entry(file).or_default();
        match v["kernel"].as_str().unwrap_or("production") {
            "production" => slot.0 = rec,
            "debug" => slot.1 = rec,
            other => panic!("{}:{}: kernel `{other}` (production or debug)", path.display(), i + 1),
        }
    }
    latest.into_iter().filter_map(|(f, l)| fold(l).map(|p| (f, p))).collect()
}

/// Whether a killer named in a record (an expanded id, `case[values]`) is this case file's.
fn is_of(killer: &str, case_id: &str) -> bool {
    killer == case_id || killer.strip_prefix(case_id).is_some_and(|r| r.starts_with('['))
}

fn render(rows: &[Row], proof: &Proof, points: &Points, cases: &[Case]) -> (String, serde_json::Value) {
    let tagged = |id: &str| -> Vec<String> {
        let mut v: Vec<String> = cases
            .iter()
            .filter(|c| id != "-" && c.def.fixes.iter().any(|f| f.id.starts_with(id) || id.starts_with(&f.id)))
            .map(|c| c.def.id.clone())
            .collect();
        v.dedup();
        v
    };
    let mut md = String::from(
        "# Upstream zcrx fixes: the regression history\n\n\
         Generated by `BLESS=1 cargo test --test history` from vm/mutants/history/fixes.tsv (the list), \
         vm/mutants/history/series (one mutant per fix: the bug re-created on 7.3.4) and \
         reports/history-mutation.jsonl (the proof campaign: `zcrx-conform mutate --kernel tree:TREE \
         --mutants vm/mutants/history --results reports/history-mutation.jsonl --report-dir /tmp/h`). \
         A fix is *caught* when its mutant was killed: a case that passes on 7.3.4 failed on it (or, \
         `Direction: apply`, a case pinned as a known deviation on 7.3.4 passed with the fix). \
         Mutants a production kernel cannot show were proven on the debug kernel (KASAN, kmemleak, \
         lockdep, fault injection: reports/debug-kernel.md), one boot per mutant running its expected \
         killers, compared with a boot of the unmutated debug kernel running the same cases \
         (`run --kernel tree+debug:TREE --filter ...`, recorded by vm/mutants/history/record-run.py; \
         the record's `kernel` is `debug`); the caught column then says `(debug kernel)`. \
                  Only then may the case carry the `fixes:` tag (the test refuses it otherwise), or when the \
         point-release sweep (reports/point-releases.json) saw the case fail on a release of the fix's \
         line older than the first with the fix and pass on one with it (such a fix counts as caught: \
         `caught (point releases)`, the cases in the killed-by column).\n\n",
    );
    // The point-release cases of a fix (failed before it on its line, passed with it), if any.
    let by_points = |id: &str| points.get(id).filter(|c| !c.is_empty());
    let caught = rows
        .iter()
        .filter(|r| proof.get(&r["mutant"]).is_some_and(|p| p.0.starts_with("killed")) || by_points(&r["id"]).is_some())
        .count();
    let with_mutant = rows.iter().filter(|r| r["mutant"] != "-").count();
    md.push_str(&format!(
        "{} fixes listed, {with_mutant} with a history mutant, {caught} caught so far, {} in the proof file.\n\n",
        rows.len(),
        proof.len()
    ));
    md.push_str("| commit | subject | cve | kind | in 7.3.4 | mutant | expected killers | caught | killed by | liburing zcrx.t | tagged cases | observable | notes |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let cell = |s: &str| s.replace('|', "\\|");
    let mut json = Vec::new();
    for r in rows {
        let p = proof.get(&r["mutant"]);
        let (caught, killers, liburing) = match (r["mutant"].as_str(), p) {
            ("-", _) => match by_points(&r["id"]) {
                Some(c) => ("caught (point releases)".to_string(), c.join(" "), String::new()),
                None => ("no mutant".to_string(), String::new(), String::new()),
            },
            (_, None) => ("not run".to_string(), String::new(), String::new()),
            (_, Some((verdict, k, lib))) => (
                verdict.clone(),
                k.join(" "),
                match lib {
                    Some(true) => "fails".into(),
                    Some(false) => "passes".into(),
                    None => "not run".into(),
                },
            ),
        };
        let tags = tagged(&r["id"]);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {caught} | {} | {liburing} | {} | {} | {} |\n",
            cell(&r["id"]),
            cell(&r["subject"]),
            cell(&r["cve"]),
            cell(&r["kind"]),
            cell(&r["in_7_3_4"]),
            cell(&r["mutant"]),
            cell(&r["cases"]),
            cell(&killers),
            tags.join(" "),
            cell(&r["observable"]),
            cell(&r["notes"]),
        ));
        let mut o: serde_json::Map<String, serde_json::Value> =
            r.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
        o.insert("caught".into(), caught.into());
        let killed_by = p.map(|p| p.1.clone()).or_else(|| by_points(&r["id"]).cloned()).unwrap_or_default();
        o.insert("killed_by".into(), killed_by.into());
        o.insert("liburing_killed".into(), p.and_then(|p| p.2).into());
        o.insert("tagged_cases".into(), tags.into());
        json.push(serde_json::Value::Object(o));
    }
    md.push_str(
        "\nWhere each row's facts come from is its `source` column in fixes.tsv (many ids and subjects \
         are from issue 25 and were not checked against a git history here); `release`/`stable` are \
         filled where found.\n",
    );
    (md, serde_json::json!({ "fixes": json }))
}

#[test]
fn the_list_is_well_formed_and_its_mutants_name_their_fix() {
    let dir = root().join("vm/mutants/history");
    let text = std::fs::read_to_string(dir.join("fixes.tsv")).expect("vm/mutants/history/fixes.tsv");
    let rows = rows(&text);
    let series = series(&dir);
    for (i, r) in rows.iter().enumerate() {
        let at = format!("fixes.tsv:{}", i + 2);
        assert!(r["id"] == "-" || check_fix_id(&r["id"]).is_ok(), "{at}: id `{}`", r["id"]);
        assert!(r["cve"] == "-" || check_cve(&r["cve"]).is_ok(), "{at}: cve `{}`", r["cve"]);
        assert!(KINDS.contains(&r["kind"].as_str()), "{at}: kind `{}` (one of {KINDS:?})", r["kind"]);
        assert!(IN_7_3_4.contains(&r["in_7_3_4"].as_str()), "{at}: in_7_3_4 `{}`", r["in_7_3_4"]);
        assert!(!r["subject"].is_empty() && !r["source"].is_empty(), "{at}: subject and source");
        assert!(r["mutant"] == "-" || series.contains(&r["mutant"]), "{at}: mutant `{}` is not in series", r["mutant"]);
    }
    for f in &series {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let h = header(&text);
        for k in ["Mutant", "Area", "Kind", "Breaks", "Commit", "Subject", "CVE", "Direction", "How"] {
            assert!(h.get(k).is_some_and(|v| !v.is_empty()), "{f}: no `{k}:` header line");
        }
        assert!(["revert", "apply"].contains(&h["Direction"].as_str()), "{f}: Direction: revert | apply");
        assert!(text.contains("\n--- a/") && text.contains("\n+++ b/"), "{f}: no unified diff");
        let row = rows.iter().find(|r| r["mutant"] == *f).unwrap_or_else(|| panic!("{f}: no fixes.tsv row names it"));
        assert_eq!(h["Commit"], row["id"], "{f}: Commit: differs from its fixes.tsv row");
        assert_eq!(h["CVE"], row["cve"], "{f}: CVE: differs from its fixes.tsv row");
        assert_eq!(h["Kind"], row["kind"], "{f}: Kind: differs from its fixes.tsv row");
    }
}

#[test]
fn history_report_is_the_generated_one() {
    let dir = root().join("vm/mutants/history");
    let rows = rows(&std::fs::read_to_string(dir.join("fixes.tsv")).expect("fixes.tsv"));
    let proof = proof(&root().join("reports/history-mutation.jsonl"));
    let cases = load_all(&[root().join("cases")]).expect("cases load");
    let points = points(&root().join("reports/point-releases.json"));
    let (md, json) = render(&rows, &proof, &points, &cases);
    let json = format!("{}\n", serde_json::to_string_pretty(&json).expect("json"));
    let (md_path, json_path) = (root().join("reports/history.md"), root().join("reports/history.json"));
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&md_path, &md).expect("write reports/history.md");
        std::fs::write(&json_path, &json).expect("write reports/history.json");
        return;
    }
    let stale = "stale: regenerate with BLESS=1 cargo test --test history";
    assert_eq!(std::fs::read_to_string(&md_path).unwrap_or_default(), md, "reports/history.md is {stale}");
    assert_eq!(std::fs::read_to_string(&json_path).unwrap_or_default(), json, "reports/history.json is {stale}");
}

/// From the point-release sweep: per fix id, the cases that failed on a release of its line
/// before `first_release` (fail, or xfail as the known deviation) and passed on one from it on.
type Points = BTreeMap<String, Vec<String>>;

fn version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

fn points(path: &Path) -> Points {
    let Ok(text) = std::fs::read_to_string(path) else { return Points::new() };
    let v: serde_json::Value = serde_json::from_str(&text).expect("reports/point-releases.json parses");
    // (release, case, status) from the sweep's runs and from the repeated runs.
    let mut seen: Vec<((u32, u32, u32), String, String)> = Vec::new();
    for r in v["runs"].as_array().into_iter().flatten() {
        let Some(rel) = r["release"].as_str().and_then(version) else { continue };
        for (case, status) in r["watched"].as_object().into_iter().flatten() {
            seen.push((rel, case.clone(), status.as_str().unwrap_or_default().to_string()));
        }
    }
    for r in v["repeats"].as_array().into_iter().flatten() {
        let (Some(rel), Some(case)) = (r["release"].as_str().and_then(version), r["case"].as_str()) else { continue };
        for status in ["pass", "fail", "xfail"] {
            if r[status].as_u64().unwrap_or(0) > 0 {
                seen.push((rel, case.to_string(), status.to_string()));
            }
        }
    }
    let mut out = Points::new();
    for (id, f) in v["fixes"].as_object().into_iter().flatten() {
        let (Some(first), Some(line)) =
            (f["first_release"].as_str().and_then(version), f["line"].as_str().and_then(version))
        else {
            continue;
        };
        let on_line = |r: &(u32, u32, u32)| (r.0, r.1) == (line.0, line.1);
        let failed =
            |c: &str| seen.iter().any(|(r, k, s)| on_line(r) && *r < first && k == c && (s == "fail" || s == "xfail"));
        let passed = |c: &str| seen.iter().any(|(r, k, s)| on_line(r) && *r >= first && k == c && s == "pass");
        let mut cases: Vec<String> =
            seen.iter().map(|(_, k, _)| k.clone()).filter(|k| failed(k) && passed(k)).collect();
        cases.sort();
        cases.dedup();
        out.insert(id.clone(), cases);
    }
    out
}

/// A `fixes:` tag must be earned: the proof campaign killed that fix's mutant with this case, or
/// the point-release sweep saw the case fail before the fix and pass with it.
fn unbacked(cases: &[Case], rows: &[Row], proof: &Proof, points: &Points) -> Vec<String> {
    let mut bad = Vec::new();
    for c in cases.iter().filter(|c| c.index == 0) {
        for f in &c.def.fixes {
            let mutants: Vec<&str> = rows
                .iter()
                .filter(|r| r["id"] != "-" && (r["id"].starts_with(&f.id) || f.id.starts_with(&r["id"])))
                .map(|r| r["mutant"].as_str())
                .filter(|m| *m != "-")
                .collect();
            let backed = mutants.iter().any(|m| {
                proof.get(*m).is_some_and(|(v, k, _)| v.starts_with("killed") && k.iter().any(|k| is_of(k, &c.def.id)))
            }) || points.iter().any(|(id, caught)| {
                (id.starts_with(&f.id) || f.id.starts_with(id.as_str())) && caught.iter().any(|k| is_of(k, &c.def.id))
            });
            if !backed {
                bad.push(format!(
                    "{}: fixes {} has no proof (mutants {mutants:?}: none killed by this case in reports/history-mutation.jsonl; \
                     no failing-then-passing pair of point releases in reports/point-releases.json)",
                    c.file.display(),
                    f.id
                ));
            }
        }
    }
    bad
}

#[test]
fn every_fixes_tag_is_backed_by_its_history_mutant() {
    let rows = rows(&std::fs::read_to_string(root().join("vm/mutants/history/fixes.tsv")).expect("fixes.tsv"));
    let proof = proof(&root().join("reports/history-mutation.jsonl"));
    let cases = load_all(&[root().join("cases")]).expect("cases load");
    let bad = unbacked(&cases, &rows, &proof, &points(&root().join("reports/point-releases.json")));
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The rule itself can fail: a tag without a record, or with a record another case killed, is
/// refused; a record naming the case (or one of its expansions) backs it.
#[test]
fn the_backing_rule_refuses_an_unproven_tag() {
    let text = "id: drain.len_cap\narea: drain\nabout: x\nmatrix: { n: [1, 2] }\n\
                fixes: [{ id: 09cfd3c52ea7, subject: \"io_uring/zcrx: fix overshooting recv limit\" }]\n\
                steps:\n  - register: {}\n    expect: { errno: EINVAL }\n";
    let cases = zcrx_conform::case::load_str(Path::new("cases/drain/len_cap.yaml"), text).expect("loads");
    let rows = rows(&format!(
        "{}\n09cfd3c52ea7\ts\t-\t-\tCVE-2025-40046\tlogic\trecv\tyes\t-\t-\t01-recv.patch\t-\tuser\t-\n",
        COLUMNS.join("\t")
    ));
    let rec = |v: &str, k: &[&str]| -> Proof {
        [("01-recv.patch".to_string(), (v.to_string(), k.iter().map(|s| s.to_string()).collect(), None))].into()
    };
    let none = Points::new();
    assert_eq!(unbacked(&cases, &rows, &Proof::new(), &none).len(), 1, "no record");
    assert_eq!(unbacked(&cases, &rows, &rec("survived", &[]), &none).len(), 1, "survived");
    assert_eq!(
        unbacked(&cases, &rows, &rec("killed", &["drain.len_capx[1]", "drain.eof"]), &none).len(),
        1,
        "other cases"
    );
    assert!(unbacked(&cases, &rows, &rec("killed", &["drain.len_cap[2]"]), &none).is_empty(), "an expansion killed it");
    assert!(unbacked(&cases, &rows, &rec("killed-by-crash", &["drain.len_cap"]), &none).is_empty());
}

/// A point-release proof needs both ends on the fix's line: a failing release older than the
/// first one with the fix, and a passing one from it on.
#[test]
fn the_point_release_rule_needs_a_failing_and_a_passing_release() {
    let text = "id: drain.len_cap\narea: drain\nabout: x\n\
                fixes: [{ id: 09cfd3c52ea7, subject: \"io_uring/zcrx: fix overshooting recv limit\" }]\n\
                steps:\n  - register: {}\n    expect: { errno: EINVAL }\n";
    let cases = zcrx_conform::case::load_str(Path::new("cases/drain/len_cap.yaml"), text).expect("loads");
    let rows =
        rows(&format!("{}\n09cfd3c52ea7\ts\t-\t-\t-\tlogic\trecv\tyes\t-\t-\t-\t-\tuser\t-\n", COLUMNS.join("\t")));
    let dir = std::env::temp_dir().join(format!("points-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let proof_of = |runs: &str| {
        let p = dir.join("p.json");
        let doc = format!(
            r#"{{"fixes": {{"09cfd3c52ea7": {{"line": "7.2", "first_release": "7.2.10"}}}}, "runs": [{runs}], "repeats": []}}"#
        );
        std::fs::write(&p, doc).expect("write");
        points(&p)
    };
    let run =
        |rel: &str, status: &str| format!(r#"{{"release": "{rel}", "watched": {{"drain.len_cap": "{status}"}}}}"#);
    let check = |runs: &[String]| unbacked(&cases, &rows, &Proof::new(), &proof_of(&runs.join(","))).len();
    assert_eq!(check(&[run("7.2.6", "fail")]), 1, "no passing release");
    assert_eq!(check(&[run("7.2.13", "pass")]), 1, "no failing release");
    assert_eq!(check(&[run("7.2.10", "fail"), run("7.2.13", "pass")]), 1, "failed only with the fix");
    assert_eq!(check(&[run("7.1.3", "fail"), run("7.2.13", "pass")]), 1, "failed on another line");
    assert_eq!(check(&[run("7.2.6", "skip"), run("7.2.13", "pass")]), 1, "skipped is no failure");
    assert_eq!(check(&[run("7.2.6", "fail"), run("7.2.13", "pass")]), 0, "both ends");
    assert_eq!(check(&[run("7.2.9", "xfail"), run("7.2.10", "pass")]), 0, "xfail as the deviation, then pass");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A debug-kernel kill catches a fix its production record missed, and says so; a debug
/// survival does not undo a production kill.
#[test]
fn a_debug_kernel_record_is_folded_with_the_production_one() {
    let r =
        |v: &str, k: &[&str], lib: Option<bool>| Some((v.to_string(), k.iter().map(|s| s.to_string()).collect(), lib));
    let (v, k, lib) = fold((r("survived", &[], Some(false)), r("killed", &["rq.flush_returns"], None))).expect("some");
    assert_eq!(v, "killed (debug kernel; production kernel: survived)");
    assert_eq!((k, lib), (vec!["rq.flush_returns".to_string()], Some(false)));
    let (v, k, _) = fold((r("killed", &["drain.len_cap"], Some(false)), r("survived", &[], None))).expect("some");
    assert_eq!((v.as_str(), k.len()), ("killed", 1));
    let (v, k, _) = fold((r("survived", &[], Some(false)), r("survived", &[], None))).expect("some");
    assert_eq!((v.as_str(), k.len()), ("survived (debug kernel: survived)", 0));
    let (v, _, lib) = fold((None, r("killed", &["area.checks"], None))).expect("some");
    assert_eq!((v.as_str(), lib), ("killed (debug kernel)", None));
    assert!(fold((None, None)).is_none());
}
