#!/usr/bin/env python3
"""generate.py: one-edit mutants of io_uring/zcrx.c and the zcrx functions of net.c and query.c,
made by rule (operators.md), and the seeded samples drawn from them (issue 26).

    generate.py enumerate TREE            all mutants -> all.tsv, counts.md
    generate.py draw TREE                 the draw order of both samples -> draw.tsv, and a patch
                                          for every candidate under sample-1/ and sample-2/

The compile check of a sample is check.py.

TREE is the unmutated Debian linux 7.3.4 source (the campaign copy `mutate` builds). Needs universalmutator (requirements.txt) for
the line-local operators; the structural ones (check-dropped, condition-negated, store-deleted)
are made here, because they need a statement's extent, which spans lines. Output is written next
to this script. Everything is deterministic: the same TREE gives byte-identical files.
"""

import difflib
import hashlib
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "zcrx.rules")
OPERATORS = ["check-dropped", "condition-negated", "relational-boundary", "errno-replaced",
             "store-deleted", "constant-nudged"]
# (file, functions or None for the whole file)
TARGETS = [("io_uring/zcrx.c", None),
           ("io_uring/net.c", ["io_recvzc_prep", "io_recvzc"]),
           ("io_uring/query.c", ["io_query_zcrx", "io_query_zcrx_notif"])]
SAMPLES = {1: 150, 2: 100}
RESERVE = 100  # candidates drawn after a sample's own, in order, to replace what does not count
STORE_CALLS = ["copy_to_user", "WRITE_ONCE", "smp_store_release", "memset", "zcrx_stat_add"]


def die(msg):
    sys.stderr.write("generate.py: ERROR: %s\n" % msg)
    sys.exit(1)


# --- source views ---------------------------------------------------------------------------

def blank(src):
    """src with comments, string and char literals and preprocessor lines replaced by spaces
    (newlines kept), so offsets and line numbers are the source's."""
    out = list(src)
    i, n = 0, len(src)
    bol = True
    while i < n:
        c = src[i]
        if bol and src[i:].lstrip(" \t").startswith("#"):
            # a preprocessor line, with its continuations
            while i < n:
                if src[i] == "\n" and (i == 0 or src[i - 1] != "\\"):
                    break
                if src[i] != "\n":
                    out[i] = " "
                i += 1
            continue
        if c == "\n":
            bol = True
            i += 1
            continue
        bol = False
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if src[k] != "\n":
                    out[k] = " "
            i = j
        elif src.startswith("//", i):
            while i < n and src[i] != "\n":
                out[i] = " "
                i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                out[k] = " "
            i = j + 1
        else:
            i += 1
    return "".join(out)


def functions(lines):
    """[(name, first line, last line)] (1-based) of the function definitions: a `{` alone at
    column 0 opens a body, the next line starting with `}` closes it; the signature is the run
    of lines above up to a blank line or the end of a statement, comment or directive."""
    out = []
    i = 0
    while i < len(lines):
        if lines[i].rstrip("\n") != "{":
            i += 1
            continue
        s = i - 1
        while s > 0:
            prev = lines[s - 1].rstrip()
            if not prev or prev.endswith((";", "}", "*/")) or prev.startswith("#"):
                break
            s -= 1
        m = re.search(r"(\w+)\s*\(", "".join(lines[s:i]))
        e = i + 1
        while e < len(lines) and not lines[e].startswith("}"):
            e += 1
        if m:
            out.append((m.group(1), s + 1, e + 1))
        i = e + 1
    return out


def function_at(funcs, line):
    for name, a, b in funcs:
        if a <= line <= b:
            return name
    return "(file scope)"


def line_of(src, off):
    return src.count("\n", 0, off) + 1


def match_close(b, i, open_c, close_c):
    """Index after the bracket matching the one at b[i]."""
    depth = 0
    for j in range(i, len(b)):
        if b[j] == open_c:
            depth += 1
        elif b[j] == close_c:
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def prev_token(b, i):
    """The non-blank text just before i: a punctuation character or the word there."""
    j = i - 1
    while j >= 0 and b[j].isspace():
        j -= 1
    if j < 0:
        return ";"
    if b[j].isalnum() or b[j] == "_":
        k = j
        while k >= 0 and (b[k].isalnum() or b[k] == "_"):
            k -= 1
        return b[k + 1:j + 1]
    return b[j]


def skip_ws(b, i):
    while i < len(b) and b[i].isspace():
        i += 1
    return i


def newlines_of(text):
    return "\n" * text.count("\n")


# --- structural operators (here) --------------------------------------------------------------

def statement_end(b, i):
    """End (after `;` or `}`) of the statement that starts at i, or -1 for a compound
    statement other than a block (if/for/while/switch/do as a body)."""
    if b[i] == "{":
        return match_close(b, i, "{", "}")
    if re.match(r"(if|for|while|switch|do)\b", b[i:]):
        return -1
    depth = 0
    for j in range(i, len(b)):
        if b[j] in "([{":
            depth += 1
        elif b[j] in ")]}":
            depth -= 1
        elif b[j] == ";" and depth == 0:
            return j + 1
    return -1


ERRNO_EXIT = re.compile(r"return\b[^;]*-E[A-Z][A-Z0-9]*\b")
ERRNO_SET = re.compile(r"=\s*-E[A-Z][A-Z0-9]*\b")


def leaves_with_errno(body):
    """Whether a statement (blanked text) leaves with an errno: it is `return ...-E...;`, or a
    block whose last statement of its own (nested blocks and statements not counted) is that,
    or is a `goto` after one of its own statements set `= -E...`."""
    if not body.startswith("{"):
        return bool(ERRNO_EXIT.match(body))
    flat, depth = [], 0
    for ch in body[1:-1]:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            flat.append(";")  # a nested block ends a statement of its own
            continue
        flat.append(ch if depth == 0 else " ")
    stmts = [x.strip() for x in "".join(flat).split(";") if x.strip()]
    if not stmts:
        return False
    last = stmts[-1]
    if ERRNO_EXIT.match(last):
        return True
    return bool(re.match(r"goto\b", last)) and any(ERRNO_SET.search(x) and not re.match(r"(if|for|while|switch)\b", x)
                                                     for x in stmts[:-1])


def structural(src, b):
    """[(operator, start, end, replacement, rule)] edits of the source."""
    edits = []
    for m in re.finditer(r"\b(if|while)\s*\(", b):
        kw = m.group(1)
        po = m.end() - 1
        pc = match_close(b, po, "(", ")")
        if pc < 0:
            continue
        cond = src[po + 1:pc - 1]
        if not re.fullmatch(r"\s*[0-9]+\s*", cond):
            edits.append(("condition-negated", po + 1, pc - 1, "!(" + cond + ")", kw + " (C) -> " + kw + " (!(C))"))
        if kw != "if" or prev_token(b, m.start()) not in (";", "{", "}", ":"):
            continue
        body = skip_ws(b, pc)
        end = statement_end(b, body)
        if end < 0:
            continue
        after = skip_ws(b, end)
        if re.match(r"else\b", b[after:]):
            continue
        if leaves_with_errno(b[body:end]):
            edits.append(("check-dropped", m.start(), end, newlines_of(src[m.start():end]),
                          "if (C) <errno exit> -> (deleted)"))
    for m in re.finditer(r"\b(%s)\s*\(" % "|".join(STORE_CALLS), b):
        name = m.group(1)
        before = prev_token(b, m.start())
        if (before[0].isalnum() or before[0] == "_") and before not in ("return", "else"):
            continue  # a declaration or definition, not a call
        end = match_close(b, m.end() - 1, "(", ")")
        if end < 0:
            continue
        nxt = skip_ws(b, end)
        if before in (";", "{", "}", ":", ")", "else") and b[nxt:nxt + 1] == ";":
            edits.append(("store-deleted", m.start(), end, newlines_of(src[m.start():end]),
                          name + "(...); -> ;"))
        elif before != "return":
            edits.append(("store-deleted", m.start(), end, "0" + newlines_of(src[m.start():end]),
                          name + "(...) in an expression -> 0"))
    return edits


# --- line-local operators (universalmutator) ---------------------------------------------------

def rule_operators():
    """rule line text -> operator, from the `# operator:` sections of zcrx.rules."""
    op, out = None, {}
    with open(RULES) as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"# operator: (\S+)", line)
            if m:
                op = m.group(1)
            elif " ==> " in line and not line.startswith("#"):
                out[line] = op
    return out


def line_local(lines):
    """[(operator, line, new line text, rule)] from universalmutator's regexp engine."""
    try:
        from universalmutator import mutator
    except ImportError:
        die("universalmutator is not installed (pip install -r requirements.txt)")
    ops = rule_operators()
    devnull = open(os.devnull, "w")
    saved = sys.stdout
    sys.stdout = devnull  # universalmutator prints progress
    try:
        found = mutator.mutants_regexp(lines, [RULES], ignorePatterns=[], ignoreStringOnly=True)
    finally:
        sys.stdout = saved
        devnull.close()
    out = []
    for lineno, text, rule_used, _ in found:
        rule = rule_used[0]
        op = ops.get(rule)
        if op is None:
            die("rule %r has no operator section in zcrx.rules" % rule)
        out.append((op, lineno, text, rule))
    return out


# --- enumeration ------------------------------------------------------------------------------

def enumerate_all(tree):
    """Every mutant as a dict, in a fixed order; identical results are kept once."""
    mutants = []
    seen = set()
    meta = []
    for path, wanted in TARGETS:
        full = os.path.join(tree, path)
        try:
            with open(full) as f:
                src = f.read()
        except OSError as e:
            die("%s: %s" % (full, e))
        lines = src.splitlines(keepends=True)
        funcs = functions(lines)
        if wanted:
            ranges = [(n, a, z) for n, a, z in funcs if n in wanted]
            if sorted(n for n, _, _ in ranges) != sorted(wanted):
                die("%s: functions %s not all found" % (path, wanted))
        else:
            ranges = [("(whole file)", 1, len(lines))]
        meta.append((path, hashlib.sha256(src.encode()).hexdigest(), ranges))
        b = blank(src)
        starts = [0]
        for ln in lines:
            starts.append(starts[-1] + len(ln))
        found = []
        for op, s, e, rep, rule in structural(src, b):
            found.append((op, line_of(src, s), s, e, rep, rule))
        for op, lineno, text, rule in line_local(lines):
            s, e = starts[lineno - 1], starts[lineno]
            found.append((op, lineno, s, e, text, rule))
        file_mutants = []
        for op, lineno, s, e, rep, rule in found:
            if not any(a <= lineno <= z for _, a, z in ranges):
                continue
            new = src[:s] + rep + src[e:]
            if new == src or new.count("\n") != src.count("\n"):
                continue
            file_mutants.append((OPERATORS.index(op), lineno, s, rule, op, new))
        file_mutants.sort(key=lambda t: t[:4])
        for _, lineno, s, rule, op, new in file_mutants:
            h = hashlib.sha256(new.encode()).hexdigest()
            if h in seen:
                continue
            seen.add(h)
            mutants.append({"file": path, "line": lineno, "operator": op, "rule": rule,
                            "function": function_at(funcs, lineno), "src": src, "new": new})
    base = {}
    for m in mutants:
        stem = "%s-L%d-%s" % (os.path.basename(m["file"]).replace(".c", ""), m["line"], m["operator"])
        base[stem] = base.get(stem, 0) + 1
        m["id"] = "%s-%d" % (stem, base[stem])
    return mutants, meta


def changed_lines(m):
    a, b = m["src"].splitlines(), m["new"].splitlines()
    return [(i + 1, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]


def show(text):
    return re.sub(r"\s+", " ", text).strip()


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def cmd_enumerate(tree):
    mutants, meta = enumerate_all(tree)
    rows = ["id\tfile\tfunction\tline\toperator\trule\tbefore\tafter"]
    for m in mutants:
        ch = changed_lines(m)
        before = " | ".join(show(x) for _, x, _ in ch)
        after = " | ".join(show(y) for _, _, y in ch)
        rows.append("\t".join([m["id"], m["file"], m["function"], str(m["line"]), m["operator"],
                               m["rule"], before, after]))
    write(os.path.join(HERE, "all.tsv"), "\n".join(rows) + "\n")
    write(os.path.join(HERE, "counts.md"), counts_md(mutants, meta))
    print("generate.py: %d mutants" % len(mutants))


def counts_md(mutants, meta):
    o = ["# Generated mutants: the population", "",
         "Made by `generate.py enumerate` (operators: operators.md; line-local rules: zcrx.rules run by",
         "universalmutator %s). Sources (Debian linux 7.3.4):" % um_version(), ""]
    for path, sha, ranges in meta:
        r = ", ".join("%s lines %d-%d" % (n, a, z) for n, a, z in ranges)
        o.append("- `%s` sha256 `%s`: %s" % (path, sha[:16], r))
    o += ["", "**%d mutants.**" % len(mutants), "", "## Per operator", "", "| operator | mutants |", "|---|---:|"]
    for op in OPERATORS:
        o.append("| %s | %d |" % (op, sum(1 for m in mutants if m["operator"] == op)))
    o += ["", "## Per function (and operator)", "",
          "| file | function | " + " | ".join(OPERATORS) + " | all |",
          "|---|---|" + "---:|" * (len(OPERATORS) + 1)]
    keys = []
    for m in sorted(mutants, key=lambda m: ([t[0] for t in TARGETS].index(m["file"]), m["line"])):
        k = (m["file"], m["function"])
        if k not in keys:
            keys.append(k)
    for f, fn in keys:
        ms = [m for m in mutants if (m["file"], m["function"]) == (f, fn)]
        cells = [str(sum(1 for m in ms if m["operator"] == op)) for op in OPERATORS]
        o.append("| %s | %s | %s | %d |" % (os.path.basename(f), fn, " | ".join(cells), len(ms)))
    return "\n".join(o) + "\n"


def um_version():
    try:
        from importlib.metadata import version
        return version("universalmutator")
    except Exception:  # noqa: BLE001 - only for the report line
        return "?"


# --- samples ----------------------------------------------------------------------------------

def seeds():
    out = {}
    with open(os.path.join(HERE, "seeds.txt")) as f:
        for line in f:
            k, _, v = line.partition(" ")
            if k.startswith("seed-"):
                out[int(k[5:])] = int(v)
    return out


def draw(ids):
    """{sample: [ids in draw order]}: the sample's own candidates, then its RESERVE. Sample 1
    is the seed-1 shuffle of all ids; sample 2 the seed-2 shuffle of the ids not among sample 1's
    candidates and reserve, so the two are disjoint whatever the compile check replaces."""
    s = seeds()
    order1 = sorted(ids)
    random.Random(s[1]).shuffle(order1)
    one = order1[:SAMPLES[1] + RESERVE]
    rest = sorted(set(ids) - set(one))
    random.Random(s[2]).shuffle(rest)
    two = rest[:SAMPLES[2] + RESERVE]
    return {1: one, 2: two}


def patch_text(m, sample, pos):
    ch = changed_lines(m)
    line = m["line"]
    before = " | ".join(show(x) for _, x, _ in ch)
    after = " | ".join(show(y) for _, _, y in ch if y.strip())
    diff = difflib.unified_diff(m["src"].splitlines(keepends=True), m["new"].splitlines(keepends=True),
                                "a/" + m["file"], "b/" + m["file"], n=3)
    body = "".join(diff)
    return ("Mutant: %s\nArea: sample-%d\nKind: %s\nOperator: %s\nFunction: %s\nFile: %s\nLine: %d\n"
            "Draw: sample %d position %d\nRule: %s\nBase: Debian linux 7.3.4 (%s)\n"
            "Breaks: made by rule, not by hand: %s %s line %d: `%s` -> `%s`\n---\n%s") % (
        m["id"], sample, m["operator"], m["operator"], m["function"], m["file"], line, sample, pos,
        m["rule"], m["file"], m["file"], m["function"], line, show(before), show(after) or "(deleted)", body)


def cmd_draw(tree):
    mutants, _ = enumerate_all(tree)
    by_id = {m["id"]: m for m in mutants}
    d = draw(list(by_id))
    rows = ["sample\tposition\tid\toperator\tfunction\trole"]
    for sample, order in d.items():
        outdir = os.path.join(HERE, "sample-%d" % sample)
        os.makedirs(outdir, exist_ok=True)
        for pos, mid in enumerate(order, 1):
            role = "drawn" if pos <= SAMPLES[sample] else "reserve"
            m = by_id[mid]
            rows.append("%d\t%d\t%s\t%s\t%s\t%s" % (sample, pos, mid, m["operator"], m["function"], role))
            write(os.path.join(outdir, "%03d-%s.patch" % (pos, mid)), patch_text(m, sample, pos))
    write(os.path.join(HERE, "draw.tsv"), "\n".join(rows) + "\n")
    print("generate.py: drew %s" % ", ".join("sample %d: %d + %d reserve" % (k, SAMPLES[k], RESERVE) for k in d))


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    cmd, tree = argv[1], os.path.abspath(argv[2])
    if cmd == "enumerate":
        cmd_enumerate(tree)
    elif cmd == "draw":
        cmd_draw(tree)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
