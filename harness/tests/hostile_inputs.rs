//! Hostile inputs other than case files (issue 27): reports, baselines and topology files named
//! on the command line, through the real binary. Each test names the item of the issue it pins
//! down.

mod hostile_support;

use std::time::Duration;

use hostile_support::*;

/// Every command that reads a file other than a case file, with `F` for that file.
fn readers(f: &str, case_file: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        v(&["validate", f]),
        v(&["run", "--list", f]),
        v(&["run", "--list", "--topology", f, case_file]),
        v(&["merge", f]),
        v(&["html", f, "--out", "/dev/null/never.html"]),
        v(&["catalogue", "--from", f, case_file]),
        v(&["run", "--filter", "no-such-case", "--baseline", f]),
        v(&["report-bug", "query.opcodes", "--from", f]),
    ]
}

/// Item 7: a FIFO, /dev/zero and a file over the size cap given where a report, a baseline, a
/// topology or a case file is read: each refused at once (exit 2, saying what it is), none
/// waited on or read to the end of memory.
#[test]
fn fifos_devices_and_giants_are_refused_as_inputs() {
    let d = temp_dir("inputs");
    let fifo = d.join("fifo.json");
    mkfifo(&fifo);
    let giant = d.join("giant.json");
    std::fs::File::create(&giant).and_then(|f| f.set_len(300 << 20)).expect("sparse giant");
    let case_file = d.join("c.yaml");
    std::fs::write(
        &case_file,
        "id: t.ok\narea: query\nabout: x\nsteps:\n  - query: { op: OPCODES }\n    expect: { out: { hdr.result: 0 } }\n",
    )
    .expect("case");
    let mut failures = Vec::new();
    for (f, says) in [(s(&fifo), "FIFO"), ("/dev/zero", "character device"), (s(&giant), "too large")] {
        for args in readers(f, s(&case_file)) {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = wait(command(&a, None).spawn().expect("spawn"), Duration::from_secs(10));
            if !r.exited(2) || !r.stderr.contains(says) {
                failures.push(format!("{a:?}: expected exit 2 saying `{says}`: {r:?}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&d);
    assert!(failures.is_empty(), "{} refusals missing:\n{}", failures.len(), failures.join("\n"));
}

/// Item 2: `--shard K/N` takes N up to 4096; a report that says it is shard 1 of 4294967295 (or
/// of a million) is refused by `merge` at once with a short message, not by building one string
/// naming every missing shard; a long `--shard` value is not echoed whole.
#[test]
fn shard_counts_are_capped_and_messages_bounded() {
    for (shard, code) in [("1/4096", 0), ("4096/4096", 0), ("1/4097", 2), ("1/4294967295", 2)] {
        let r = run(&["run", "--list", "--allow-empty", "--shard", shard]);
        assert!(r.exited(code), "--shard {shard}: {r:?}");
        if code == 2 {
            assert!(r.stderr.contains("4096"), "--shard {shard}: {}", r.stderr);
        }
    }
    let long = format!("1/{}", "9".repeat(100_000));
    let r = run(&["run", "--list", "--shard", &long]);
    assert!(
        r.exited(2) && r.stderr.len() < 1000,
        "a {} byte message: {:?}",
        r.stderr.len(),
        &r.stderr[..r.stderr.len().min(300)]
    );

    let d = temp_dir("shards");
    for n in [4_294_967_295u32, 1_000_000, 5000] {
        let mut one = host_run("6.18", vec![case("a", zcrx_conform::model::Status::Pass)]);
        one.shard = Some(zcrx_conform::model::Shard { k: 1, n });
        let p = d.join(format!("{n}/report.json"));
        write_report(&p, &[one]);
        let r = wait(command(&["merge", s(&p)], None).spawn().expect("spawn"), Duration::from_secs(20));
        assert!(r.exited(2), "1/{n}: {:?}", (r.code, r.signal, r.hung, &r.stderr[..r.stderr.len().min(300)]));
        assert!(
            r.stderr.len() < 1000 && r.stderr.contains("4096"),
            "1/{n}: {} bytes: {:.300}",
            r.stderr.len(),
            r.stderr
        );
    }
    // Within the cap, a gap names its first missing shards and how many more.
    let mut one = host_run("6.18", vec![case("a", zcrx_conform::model::Status::Pass)]);
    one.shard = Some(zcrx_conform::model::Shard { k: 1, n: 4096 });
    let p = d.join("4096/report.json");
    write_report(&p, &[one]);
    let r = run(&["merge", s(&p)]);
    assert!(r.exited(2) && r.stderr.len() < 1000 && r.stderr.contains("2/4096"), "{:.500}", r.stderr);
    let _ = std::fs::remove_dir_all(&d);
}

/// Item 3: `merge` of two reports of one target where a case differs kept whichever came first
/// (`merge A B` passed, `merge B A` failed); a case twice in one report and a shard given twice
/// were taken without a word. Each is refused (exit 2) naming the case or shard and both inputs;
/// one kernel's runs on two topologies (one executes what the other skips) still join.
#[test]
fn merge_refuses_conflicts_duplicates_and_repeated_shards() {
    use zcrx_conform::model::{Shard, Status};
    let d = temp_dir("conflicts");
    let put = |name: &str, runs: &[zcrx_conform::model::RunReport]| {
        let p = d.join(name).join("report.json");
        write_report(&p, runs);
        p
    };
    let a = put("a", &[host_run("6.18", vec![case("q.x", Status::Pass), case("q.y", Status::Pass)])]);
    let b = put("b", &[host_run("6.18", vec![case("q.x", Status::Fail)])]);
    for (first, second) in [(&a, &b), (&b, &a)] {
        let r = run(&["merge", s(first), s(second)]);
        assert!(r.exited(2), "merge {} {}: {r:?}", first.display(), second.display());
        for says in ["q.x", s(first), s(second)] {
            assert!(r.stderr.contains(says), "does not name {says}: {}", r.stderr);
        }
    }
    let dup = put("dup", &[host_run("6.18", vec![case("q.x", Status::Pass), case("q.x", Status::Pass)])]);
    let r = run(&["merge", s(&dup)]);
    assert!(r.exited(2) && r.stderr.contains("q.x") && r.stderr.contains(s(&dup)), "{r:?}");

    let shard = |name: &str, k: u32, id: &str| {
        let mut r = host_run("6.18", vec![case(id, Status::Pass)]);
        r.shard = Some(Shard { k, n: 2 });
        put(name, &[r])
    };
    let (s1, s1again, s2) = (shard("s1", 1, "q.a"), shard("s1again", 1, "q.a"), shard("s2", 2, "q.b"));
    let r = run(&["merge", s(&s1), s(&s1again), s(&s2)]);
    assert!(r.exited(2), "{r:?}");
    for says in ["1/2", s(&s1), s(&s1again)] {
        assert!(r.stderr.contains(says), "does not name {says}: {}", r.stderr);
    }
    assert!(run(&["merge", s(&s1), s(&s2)]).exited(0));

    let topo = |name: &str, t: &str, x: Status, y: Status| {
        let mut r = host_run("6.18", vec![case("q.x", x), case("q.y", y)]);
        r.topologies = vec![t.to_string()];
        put(name, &[r])
    };
    let host = topo("host", "host", Status::Pass, Status::Skip);
    let nodev = topo("nodev", "nodev", Status::Skip, Status::Pass);
    let r = run(&["merge", s(&host), s(&nodev)]);
    assert!(r.exited(0), "{r:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Item 8: `catalogue --from` printed a report's target and kernel release raw: escape
/// sequences and newlines reached the terminal and broke the Markdown table. Now they are
/// escaped as `merge` and `html` escape them, and a `|` cannot add a column.
#[test]
fn catalogue_escapes_what_a_report_says() {
    use zcrx_conform::model::Status;
    let d = temp_dir("catalogue");
    let mut r = host_run("6.18\x1b]0;title\x07|x", vec![case("query.opcodes", Status::Pass)]);
    r.target = "evil\x1b[2J\n| injected | row |\r".into();
    let p = d.join("r/report.json");
    write_report(&p, &[r]);
    let out = run(&["catalogue", "--from", s(&p)]);
    assert!(out.exited(0), "{out:?}");
    assert!(!out.stdout.chars().any(|c| c.is_control() && c != '\n'), "control characters: {:?}", out.stdout);
    let columns = |l: &str| l.replace("\\|", "").matches('|').count();
    // The cases table (the first one; the regression-tags table after it has its own columns).
    let lines: Vec<&str> =
        out.stdout.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect();
    assert!(lines.len() > 3, "{}", out.stdout);
    assert!(lines.iter().all(|l| columns(l) == columns(lines[1])), "a row with other columns:\n{}", out.stdout);
    assert!(!out.stdout.lines().any(|l| l.starts_with("| injected")), "{}", out.stdout);
    let _ = std::fs::remove_dir_all(&d);
}

/// Item 9 and issue 27's merge half: `html` and `merge` looked cases up with a linear search per
/// case. Their scaling is measured by `bench --reports` (a ratio against a tenth of the cases in
/// the same run; CI runs it), not timed here. This checks that the bench measures those writers
/// and says which side is which.
#[test]
fn the_report_writers_scaling_is_a_bench_not_a_timed_test() {
    let out = run(&["bench", "--reports"]);
    // Its verdict (0, or 1 for a writer over 50x) is the bench's, not this test's.
    assert!(out.exited(0) || out.exited(1), "{out:?}");
    for what in ["html, 1 run", "html, 2 runs", "merge, 2 targets"] {
        assert!(out.stdout.contains(what), "{what}: {}", out.stdout);
    }
    assert!(out.stdout.contains("30000 cases against 3000"), "{}", out.stdout);
}

/// Item 13: a failure that is not the user's input (a VM that cannot be provisioned: here no
/// program can be found at all) exits 4, the environment's code, not 2, "bad input". Boots
/// nothing and fetches nothing: provisioning fails before either.
#[test]
fn an_unprovisionable_vm_exits_4() {
    let d = temp_dir("provision");
    let mut c = command(&["run", "--kernel", "debian:7.3.4", "--filter", "query.opcodes", "-q"], None);
    c.env("PATH", "").env("ZCRX_CACHE", s(&d));
    let r = wait(c.spawn().expect("spawn"), Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&d);
    assert!(r.exited(4), "{r:?}");
}
