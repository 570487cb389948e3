#!/usr/bin/env python3
"""check.py: the compile check of a generated sample (issue 26).

    check.py TREE SAMPLE [--jobs N]

Takes SAMPLE's candidates (1 or 2) in draw order (generate.py's draw) and compiles each patched
file with the built TREE's own kbuild command line for that object, until the sample has its size
of mutants that build and differ from the original:

  does-not-build  the compiler (the tree's flags: gcov for zcrx.o, -Werror from CONFIG_WERROR)
                  refuses it; replaced by the next candidate, counted
  equivalent      compiled without the gcov flags, its object is byte-identical to the
                  original's (both stripped of debug info and .comment); replaced, counted apart
  builds          in the sample

Writes sample-N/check.tsv (every candidate taken, in draw order) and sample-N/series (the final
sample, in draw order). Resumes from check.tsv. N compiles run at a time (default 4); results
are still taken strictly in draw order.
"""

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

import generate as g


def saved_cmd(tree, obj):
    """The compiler command of io_uring/<obj>.o from the tree's kbuild .cmd file."""
    p = os.path.join(tree, "io_uring", ".%s.o.cmd" % obj)
    try:
        with open(p) as f:
            text = f.read()
    except OSError as e:
        g.die("%s: %s (build the tree first)" % (p, e))
    m = re.search(r"^(?:saved)?cmd_io_uring/%s\.o := (.*)$" % obj, text, re.M)
    if not m:
        g.die("%s: no cmd_ line" % p)
    return m.group(1)


def compile_cmd(tree, obj, work, gcov):
    """The tree's own command for io_uring/<obj>.o, compiling work/<obj>.c into work/ instead.
    The source path is mapped to io_uring/ in __FILE__ and debug info, so objects made in
    different scratch directories compare; the local headers come from io_uring/ (-iquote).
    Without gcov: kbuild's CFLAGS_GCOV removed (for the equivalence comparison)."""
    src, out = os.path.join(work, obj + ".c"), os.path.join(work, obj + ".o")
    cmd = saved_cmd(tree, obj).split(";")[0]  # what follows `;` (objtool, ...) is not the compiler
    cmd = cmd.replace("-Wp,-MMD,io_uring/.%s.o.d" % obj, "-Wp,-MMD,%s.d" % out)
    cmd = re.sub(r"-o io_uring/%s\.o(?=\s)" % obj, "-o " + out, cmd)
    cmd = re.sub(r"(?<=\s)io_uring/%s\.c(?=\s|$)" % obj, src, cmd)
    if out not in cmd or src not in cmd:
        g.die("unexpected kbuild command for %s.o: %s" % (obj, cmd[:300]))
    cmd += " -iquote io_uring -ffile-prefix-map=%s/=io_uring/" % work
    if not gcov:
        cmd = re.sub(r"\s-f(profile-arcs|test-coverage|no-tree-loop-im|profile-update=\S+)(?=\s|$)", "", cmd)
    return cmd, src, out


def build(tree, obj, text, gcov):
    """(ok, error text, stripped object bytes or None) of compiling text as io_uring/<obj>.c."""
    work = tempfile.mkdtemp(prefix="mutgen-check-")
    try:
        cmd, src, out = compile_cmd(tree, obj, work, gcov)
        with open(src, "w") as f:
            f.write(text)
        r = subprocess.run(["sh", "-c", cmd], cwd=tree, capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(out):
            return False, (r.stderr or r.stdout)[-3000:], None
        if gcov:
            return True, "", None
        subprocess.run(["objcopy", "--strip-debug", "--remove-section=.comment", out, out + ".s"], check=True)
        with open(out + ".s", "rb") as f:
            return True, "", f.read()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def judge(tree, m, originals):
    """(result, detail) of one mutant."""
    obj = os.path.basename(m["file"])[:-2]
    ok, err, _ = build(tree, obj, m["new"], True)
    if not ok:
        first = [x for x in err.splitlines() if "error" in x][:1]
        # the scratch directory stands for io_uring/ (no path of this machine in the record)
        detail = re.sub(r"\S*mutgen-check-[^/\s]+/", "io_uring/", g.show(first[0] if first else err))
        return "does-not-build", detail[:300]
    ok, err, data = build(tree, obj, m["new"], False)
    if not ok:  # builds with gcov, not without: report, do not guess
        return "builds", "does not build without the gcov flags: " + re.sub(
            r"\S*mutgen-check-[^/\s]+/", "io_uring/", g.show(err))[:200]
    if data == originals[obj]:
        return "equivalent", "object identical to the original's (no debug info, no gcov)"
    return "builds", ""


def main(argv):
    jobs = 4
    args = argv[1:]
    if "--jobs" in args:
        i = args.index("--jobs")
        jobs = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2 or args[1] not in ("1", "2") or jobs < 1:
        sys.stderr.write(__doc__)
        return 2
    tree, sample = os.path.abspath(args[0]), int(args[1])
    mutants, _ = g.enumerate_all(tree)
    by_id = {m["id"]: m for m in mutants}
    order = g.draw(list(by_id))[sample]
    outdir = os.path.join(g.HERE, "sample-%d" % sample)
    results_p = os.path.join(outdir, "check.tsv")
    done = {}
    if os.path.exists(results_p):
        with open(results_p) as f:
            for line in f.read().splitlines()[1:]:
                cols = line.split("\t")
                done[cols[1]] = (cols[2], cols[3] if len(cols) > 3 else "")
    originals = {}
    for path, _ in g.TARGETS:
        obj = os.path.basename(path)[:-2]
        src = next(m["src"] for m in mutants if m["file"] == path)
        ok, err, data = build(tree, obj, src, False)
        if not ok:
            g.die("the unmutated %s does not build: %s" % (path, err))
        ok2, _, data2 = build(tree, obj, src, False)
        if data != data2:
            g.die("%s: two compiles of the same source differ; the comparison would mean nothing" % path)
        originals[obj] = data
    rows = ["position\tid\tresult\tdetail"]
    series = []
    pos = 0
    size = g.SAMPLES[sample]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        while len(series) < size and pos < len(order):
            # the next window: no more than could still be needed
            window = order[pos:pos + min(jobs, size - len(series))]
            futs = {mid: pool.submit(judge, tree, by_id[mid], originals) for mid in window if mid not in done}
            for mid in window:
                pos += 1
                result, detail = done[mid] if mid in done else futs[mid].result()
                if mid not in done:
                    sys.stderr.write("check: %d %s %s\n" % (pos, mid, result))
                rows.append("%d\t%s\t%s\t%s" % (pos, mid, result, detail))
                if result == "builds":
                    series.append("%03d-%s.patch" % (pos, mid))
            g.write(results_p, "\n".join(rows) + "\n")
    if len(series) < size:
        g.die("sample %d: only %d of %d build and differ; the reserve is spent" % (sample, len(series), size))
    g.write(os.path.join(outdir, "series"), "\n".join(series) + "\n")
    print("check.py: sample %d: %d in series (%d taken)" % (sample, len(series), pos))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
