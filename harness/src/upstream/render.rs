//! An [`UpstreamRun`] as our reports: a [`RunReport`] (one case per subtest, `upstream.<test>.
//! <subtest>`, and liburing's zcrx.t as `liburing.zcrx.t`) that `merge` joins with the
//! catalogue's report of the same kernel, and the Markdown of reports/upstream-selftests.md.

use super::{FileOutcome, Lack, UpstreamRun, Verdict, ZeroCopy, HW_DIR};
use crate::model::{Answer, CaseReport, CaseResult, Failure, Mismatch, Probe, RunReport, SkipReason};

/// The topology the tests ran on, as reports name it.
const TOPOLOGY: &str = "netdevsim-zcrx";

fn stem(file: &str) -> &str {
    file.strip_suffix(".py").unwrap_or(file)
}

/// The case result a verdict stands for.
fn case_result(v: &Verdict, exception: &[String]) -> CaseResult {
    match v {
        Verdict::Passed { .. } => CaseResult::Pass,
        Verdict::PassedWithoutZeroCopy { zero_copy } => {
            let why = "passed by its KTAP line, but the payload did not go through the memory provider only";
            CaseResult::Failed(match *zero_copy {
                ZeroCopy::Copied { fallback, .. } => Failure::mismatch(
                    Mismatch {
                        what: "hds/fallback".into(),
                        expected: Answer::Value(0),
                        observed: Answer::Value(fallback),
                    },
                    format!("{why}: hds/fallback {fallback}"),
                ),
                ZeroCopy::NoPayload => Failure::mismatch(
                    Mismatch {
                        what: "hds/split".into(),
                        expected: Answer::Text("> 0".into()),
                        observed: Answer::Value(0),
                    },
                    format!("{why}: hds/split 0"),
                ),
                ZeroCopy::Unknown | ZeroCopy::Proven { .. } => {
                    Failure::new(format!("{why}: the module has no hds/split and hds/fallback counters"))
                }
            })
        }
        Verdict::Failed => CaseResult::Failed(Failure::new(format!(
            "not ok: {}",
            exception.iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim()).unwrap_or("(no exception printed)")
        ))),
        Verdict::Skipped { reason, lacks } => CaseResult::Skipped {
            reason: match lacks {
                Some(l) => SkipReason::Requirement(format!("{reason} (the simulator lacks {})", l.describe())),
                None => SkipReason::Environment(reason.clone()),
            },
        },
        Verdict::Xfail { reason } => CaseResult::Xfail {
            deviation: "the test's own XFAIL".into(),
            link: None,
            result: Box::new(CaseResult::Failed(Failure::new(reason.clone()))),
        },
        Verdict::NoResult { exit } => CaseResult::Crashed { how: format!("exit {exit} without a KTAP result line") },
    }
}

/// The run as our report: one case per subtest, per test file that did not run, and zcrx.t.
pub fn run_report(u: &UpstreamRun) -> RunReport {
    let probe = Probe { kernel_release: u.kernel_release.clone(), ..Default::default() };
    let mut r = RunReport::new(&u.target, probe, &[TOPOLOGY.to_string()]);
    for f in &u.files {
        let about = |what: &str| {
            format!("{what} of the kernel's own {HW_DIR}/{}, sha256 {}", f.name, f.sha256.as_deref().unwrap_or("?"))
        };
        let base = |id: String| CaseReport {
            file: format!("{HW_DIR}/{}", f.name),
            area: "upstream".into(),
            topology: Some(TOPOLOGY.into()),
            ..CaseReport::new(&id)
        };
        match &f.outcome {
            FileOutcome::Ran { subtests } => {
                for s in subtests {
                    let mut c = base(format!("upstream.{}.{}", stem(&f.name), s.name));
                    c.about = about(&format!("subtest {}", s.name));
                    c.duration_s = s.duration_s;
                    c.log = s.output.clone();
                    c.observed = vec![format!(
                        "hds/split={} hds/fallback={} hds/dropped={}",
                        opt(s.counters.split),
                        opt(s.counters.fallback),
                        opt(s.counters.dropped)
                    )];
                    let exception = match &s.result {
                        super::SubtestResult::Failed { exception } => exception.as_slice(),
                        _ => &[],
                    };
                    c.set_result(case_result(&s.verdict(&f.name, &u.simulator_lacks), exception));
                    r.cases.push(c);
                }
            }
            FileOutcome::NotInSource => {
                let mut c = base(format!("upstream.{}", stem(&f.name)));
                c.about = format!("the kernel's own {HW_DIR}/{}", f.name);
                c.set_result(CaseResult::Skipped {
                    reason: SkipReason::Requirement(format!("this kernel's source has no {HW_DIR}/{}", f.name)),
                });
                r.cases.push(c);
            }
            FileOutcome::ListFailed { exit, output } => {
                let mut c = base(format!("upstream.{}", stem(&f.name)));
                c.about = about("the environment set-up and subtest list");
                c.log = output.clone();
                let last = output.iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim()).unwrap_or("");
                c.set_result(match super::env_skip(output) {
                    Some(reason) => CaseResult::Skipped {
                        reason: SkipReason::Environment(format!("its environment skipped: {reason}")),
                    },
                    None => CaseResult::Failed(Failure::new(format!(
                        "its environment could not be set up (`-l` exit {exit}): {last}"
                    ))),
                });
                r.cases.push(c);
            }
        }
    }
    if let Some(z) = &u.liburing {
        let mut c = CaseReport {
            file: u.liburing_path.clone(),
            area: "liburing".into(),
            about: "liburing's own test/zcrx.t, in the same boot".into(),
            duration_s: z.duration_s,
            log: z.output.clone(),
            ..CaseReport::new("liburing.zcrx.t")
        };
        c.set_result(match z.exit {
            0 => CaseResult::Pass,
            77 => CaseResult::Skipped { reason: SkipReason::Environment("zcrx.t exited 77 (T_EXIT_SKIP)".into()) },
            e => CaseResult::Failed(Failure::mismatch(
                Mismatch {
                    what: "exit code".into(),
                    expected: Answer::Value(0),
                    observed: Answer::Text(e.to_string()),
                },
                format!("zcrx.t exited {e}"),
            )),
        });
        r.cases.push(c);
    }
    r.duration_s = u.vm_wall_s;
    r.timings.total_s = Some(u.vm_wall_s + u.prepare_s);
    r
}

fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Passed { zero_copy: Some(ZeroCopy::Proven { .. }) } => "pass, zero copy".into(),
        Verdict::Passed { .. } => "pass".into(),
        Verdict::PassedWithoutZeroCopy { zero_copy } => format!("**FAIL**: passed without zero copy ({zero_copy:?})"),
        Verdict::Failed => "**FAIL**".into(),
        Verdict::Skipped { reason, lacks: Some(l) } => format!("skip: {reason} (simulator lacks {})", l.describe()),
        Verdict::Skipped { reason, lacks: None } => format!("skip: {reason}"),
        Verdict::Xfail { reason } => format!("xfail: {reason}"),
        Verdict::NoResult { exit } => format!("**FAIL**: no result (exit {exit})"),
    }
}

/// reports/upstream-selftests.md: generated from upstream.json by this function (a test
/// compares the committed pair).
pub fn markdown(u: &UpstreamRun, command: &str) -> String {
    let mut s = String::from("# Upstream's zcrx selftests on netdevsim-zcrx\n\n");
    s.push_str(&format!(
        "Generated from `upstream.json` by `zcrx-conform upstream` (do not edit). Command:\n\n```sh\n{command}\n```\n\n"
    ));
    s.push_str(&format!(
        "Kernel `{}` (`{}`); NETIF a netdevsim-zcrx port with 4 queues in the init namespace, the peer a second \
         port in namespace `nsim-peer`, linked, `REMOTE_TYPE=netns`. Each subtest runs alone (`-t NAME`); the \
         port's `hds/` counters are zeroed before it and read after it. VM {:.0} s (boot, tests, power-off); \
         fetching and building before it {:.0} s.\n\n",
        u.target, u.kernel_release, u.vm_wall_s, u.prepare_s
    ));
    s.push_str("| test file (unmodified) | sha256 | outcome |\n|---|---|---|\n");
    for f in &u.files {
        let outcome = match &f.outcome {
            FileOutcome::NotInSource => "not in this kernel's source".to_string(),
            FileOutcome::ListFailed { output, .. } if super::env_skip(output).is_some() => {
                format!("skip: its environment refused: {}", super::env_skip(output).unwrap_or_default())
            }
            FileOutcome::ListFailed { exit, output } => format!(
                "environment not set up (`-l` exit {exit}): {}",
                output.iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim()).unwrap_or("").replace('|', "\\|")
            ),
            FileOutcome::Ran { subtests } => {
                let passed = subtests
                    .iter()
                    .filter(|x| matches!(x.verdict(&f.name, &u.simulator_lacks), Verdict::Passed { .. }))
                    .count();
                format!("{passed} of {} passed", subtests.len())
            }
        };
        s.push_str(&format!("| `{}` | `{}` | {outcome} |\n", f.name, f.sha256.as_deref().unwrap_or("?")));
    }
    s.push_str("\n| subtest | result | hds/split | hds/fallback | hds/dropped | s |\n|---|---|---|---|---|---|\n");
    for f in &u.files {
        let FileOutcome::Ran { subtests } = &f.outcome else { continue };
        for x in subtests {
            s.push_str(&format!(
                "| `{}.{}` | {} | {} | {} | {} | {:.1} |\n",
                stem(&f.name),
                x.name,
                verdict_text(&x.verdict(&f.name, &u.simulator_lacks)).replace('|', "\\|"),
                opt(x.counters.split),
                opt(x.counters.fallback),
                opt(x.counters.dropped),
                x.duration_s
            ));
        }
    }
    if let Some(z) = &u.liburing {
        s.push_str(&format!("| liburing `zcrx.t` | exit {} | | | | {:.1} |\n", z.exit, z.duration_s));
    }
    let lacks: Vec<Lack> = u
        .files
        .iter()
        .flat_map(|f| match &f.outcome {
            FileOutcome::Ran { subtests } => subtests.iter().map(|x| x.verdict(&f.name, &u.simulator_lacks)).collect(),
            _ => vec![],
        })
        .filter_map(|v| match v {
            Verdict::Skipped { lacks, .. } => lacks,
            _ => None,
        })
        .collect();
    if !lacks.is_empty() {
        s.push_str("\nWhat the simulator lacks for the skipped subtests:\n\n");
        let mut seen = Vec::new();
        for l in lacks.into_iter().filter(|l| {
            !seen.contains(l) && {
                seen.push(*l);
                true
            }
        }) {
            s.push_str(&format!("- {}\n", l.describe()));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::upstream::{Counters, Subtest, SubtestResult, TestFile, ZcrxT};

    fn sub(name: &str, result: SubtestResult, split: u64, fallback: u64) -> Subtest {
        Subtest {
            name: name.into(),
            result,
            exit: 0,
            duration_s: 2.0,
            counters: Counters { split: Some(split), fallback: Some(fallback), dropped: Some(0) },
            output: vec![],
        }
    }

    fn sample() -> UpstreamRun {
        UpstreamRun {
            target: "debian:7.3.4".into(),
            kernel_release: "7.3.4+deb13-amd64".into(),
            source: String::new(),
            netdevsim: String::new(),
            // as the module built for 6.19 (no patch 0009)
            simulator_lacks: vec![Lack::LargeRxBuffers],
            ethtool: String::new(),
            files: vec![
                TestFile {
                    name: "iou-zcrx.py".into(),
                    sha256: Some("ab".into()),
                    outcome: FileOutcome::Ran {
                        subtests: vec![
                            sub("test_zcrx.single", SubtestResult::Passed, 40, 0),
                            sub("test_zcrx.rss", SubtestResult::Passed, 40, 3),
                            sub(
                                "test_zcrx_large_chunks",
                                SubtestResult::Skipped { reason: "rx_buf_len 8192".into() },
                                0,
                                0,
                            ),
                        ],
                    },
                },
                TestFile {
                    name: "nk_qlease.py".into(),
                    sha256: Some("cd".into()),
                    outcome: FileOutcome::ListFailed {
                        exit: 1,
                        output: vec!["net.lib.py.ksft.KsftSkipEx: BPF prog nk_forward.bpf.o not found".into()],
                    },
                },
            ],
            liburing: Some(ZcrxT { exit: 1, duration_s: 3.0, output: vec![] }),
            liburing_path: "/c/liburing/test/zcrx.t".into(),
            vm_wall_s: 100.0,
            prepare_s: 20.0,
        }
    }

    #[test]
    fn each_subtest_is_a_case_with_its_typed_result() {
        let r = run_report(&sample());
        let got: Vec<(&str, Status)> = r.cases.iter().map(|c| (c.id.as_str(), c.status)).collect();
        assert_eq!(
            got,
            vec![
                ("upstream.iou-zcrx.test_zcrx.single", Status::Pass),
                ("upstream.iou-zcrx.test_zcrx.rss", Status::Fail),
                ("upstream.iou-zcrx.test_zcrx_large_chunks", Status::Skip),
                ("upstream.nk_qlease", Status::Skip),
                ("liburing.zcrx.t", Status::Fail),
            ]
        );
        assert_eq!(r.probe.kernel_release, "7.3.4+deb13-amd64");
        let CaseResult::Failed(f) = &r.cases[1].result else { panic!("{:?}", r.cases[1].result) };
        let m = f.mismatch.as_deref().expect("a compared counter");
        assert_eq!((m.what.as_str(), &m.expected, &m.observed), ("hds/fallback", &Answer::Value(0), &Answer::Value(3)));
        assert!(
            r.cases[2].message.contains("rx_buf_len 8192 (the simulator lacks rx buffers larger"),
            "{}",
            r.cases[2].message
        );
        assert!(r.cases[3].message.contains("BPF prog nk_forward.bpf.o not found"), "{}", r.cases[3].message);
    }

    #[test]
    fn the_markdown_names_hashes_counters_and_lacks() {
        let md = markdown(&sample(), "zcrx-conform upstream --kernel debian:7.3.4");
        assert!(md.contains("| `iou-zcrx.py` | `ab` | 1 of 3 passed |"), "{md}");
        assert!(md.contains("| `iou-zcrx.test_zcrx.single` | pass, zero copy | 40 | 0 | 0 | 2.0 |"), "{md}");
        assert!(md.contains("passed without zero copy"), "{md}");
        assert!(md.contains("- rx buffers larger than a page"), "{md}");
    }

    /// reports/upstream-selftests.md is what `markdown` makes of the committed upstream.json
    /// (with the command the md names): neither is edited by hand or left stale.
    #[test]
    fn the_committed_report_is_generated_from_its_json() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports");
        let (Ok(json), Ok(md)) = (
            std::fs::read_to_string(dir.join("upstream-selftests.json")),
            std::fs::read_to_string(dir.join("upstream-selftests.md")),
        ) else {
            panic!("reports/upstream-selftests.json and .md are committed together");
        };
        let run: UpstreamRun = serde_json::from_str(&json).expect("upstream-selftests.json parses");
        let command =
            md.split("```sh\n").nth(1).and_then(|r| r.split("\n```").next()).expect("the md names its command");
        assert_eq!(markdown(&run, command), md, "regenerate reports/upstream-selftests.md from its .json");
        for name in ["iou-zcrx.py", "nk_qlease.py"] {
            let passed = run
                .files
                .iter()
                .filter(|f| f.name == name)
                .flat_map(|f| match &f.outcome {
                    FileOutcome::Ran { subtests } => {
                        subtests.iter().map(|x| x.verdict(&f.name, &run.simulator_lacks)).collect()
                    }
                    _ => Vec::new(),
                })
                .filter(|v| matches!(v, Verdict::Passed { .. }))
                .count();
            assert_eq!(passed, 5, "{name}: 5 of 5 passed (with zero copy where data moves) in the committed run");
        }
    }
}
