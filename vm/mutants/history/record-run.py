#!/usr/bin/env python3
"""Records a debug-kernel proof boot in the results file: record-run.py KIND ... >> RESULTS

  record-run.py baseline REPORT FILTER
  record-run.py mutant PATCH REPORT BASELINE_REPORT FILTER

REPORT is the report.json of `zcrx-conform run --kernel tree+debug:TREE --filter FILTER` on the
tree with PATCH applied (mutant) or with none (baseline); FILTER is that run's comma-separated
filter. Prints one JSON line in the format of `mutate`'s results file (harness/src/campaign/
mutants.rs `Record`, kernel "debug"): the verdict is `killed` when a case that passed (or
xfailed) in BASELINE_REPORT has another status in REPORT, as `mutate` decides it; a case REPORT
ran that BASELINE_REPORT did not is named in the message and never counts.

Why not `mutate --kernel tree+debug:TREE --filter ...`: it boots a baseline before the first
mutant, and a debug boot plus the rebuild it needs costs 15-20 min here (TCG, a loaded machine);
these proofs booted each mutant's build first and the unmutated kernel last, and one run per boot
is what this script reads. Run by hand, not by the harness."""
import json, sys, datetime


def die(msg):
    sys.exit(f"record-run.py: {msg}")


def header(path):
    h = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line == "---":
                break
            if ": " in line:
                k, v = line.split(": ", 1)
                h[k] = v.strip()
    for k in ("Mutant", "Area", "Kind", "Breaks"):
        if k not in h:
            die(f"{path}: no {k}: line in the header")
    m = {"file": path.rsplit("/", 1)[-1], "name": h["Mutant"], "area": h["Area"], "kind": h["Kind"], "breaks": h["Breaks"]}
    if h.get("Equivalent"):
        m["equivalent"] = h["Equivalent"]
    return m


def load(path):
    with open(path) as f:
        r = json.load(f)
    runs = r.get("runs") or die(f"{path}: no runs")
    if len(runs) != 1:
        die(f"{path}: {len(runs)} runs, want 1 (one kernel)")
    run = runs[0]
    if run.get("aborted"):
        die(f"{path}: the run was aborted: {run.get('aborted')}")
    probe = run.get("probe") or {}
    if not (probe.get("kmemleak") and probe.get("fault_injection")):
        die(f"{path}: not a debug-kernel run (the probe found no kmemleak or no fault injection)")
    cases = {c["id"]: c["status"] for c in run["cases"]}
    msgs = {c["id"]: (c.get("message") or "").split("\n", 1)[0] for c in run["cases"]}
    release = (run.get("probe") or {}).get("kernel_release", "")
    return run, cases, msgs, release


def record(mutant, verdict, flt, run, cases, release, killed_by=(), message="", with_cases=False):
    r = {
        "mutant": mutant,
        "verdict": verdict,
        "kernel": "debug",
        "filter": flt,
        "killed_by": list(killed_by),
        "liburing_killed": None,
        "liburing_exit": None,
        "executed": sum(1 for s in cases.values() if s != "skip"),
        "duration_s": round(float(run.get("duration_s") or 0.0), 1),
        "when": run.get("finished") or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kernel_release": release,
    }
    if message:
        r["message"] = message
    if with_cases:
        r["cases"] = dict(sorted(cases.items()))
    return r


def main(a):
    if len(a) == 3 and a[0] == "baseline":
        run, cases, msgs, release = load(a[1])
        flt = [f for f in a[2].split(",") if f]
        failing = [f"{i}: {msgs[i]}" for i, s in sorted(cases.items()) if s in ("fail", "xpass")]
        m = {"file": "", "name": "baseline", "area": "-", "kind": "", "breaks": ""}
        print(json.dumps(record(m, "baseline", flt, run, cases, release, message="\n".join(failing[:20]), with_cases=True)))
    elif len(a) == 5 and a[0] == "mutant":
        mutant = header(a[1])
        run, cases, msgs, release = load(a[2])
        _, base, _, _ = load(a[3])
        flt = [f for f in a[4].split(",") if f]
        killed = [i for i, s in sorted(base.items()) if s in ("pass", "xfail") and i in cases and cases[i] != s]
        unbaselined = [i for i in sorted(cases) if i not in base]
        lines = [f"{i}: {msgs.get(i, '')}" for i in killed[:20]]
        if unbaselined:
            lines.append("not compared (not in the baseline): " + " ".join(unbaselined))
        verdict = "killed" if killed else "survived"
        print(json.dumps(record(mutant, verdict, flt, run, cases, release, killed, "\n".join(lines))))
    else:
        die("usage: record-run.py baseline REPORT FILTER | mutant PATCH REPORT BASELINE_REPORT FILTER")


main(sys.argv[1:])
