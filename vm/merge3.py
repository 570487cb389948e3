#!/usr/bin/env python3
"""merge3.py TARGET BASE_BEFORE BASE_AFTER: carry the change BASE_BEFORE -> BASE_AFTER into TARGET.

netdevsim.sh's rebase_series uses it to move a patch of the series, written against one kernel
version (the base), onto another version's file. Unlike a line-based three-way merge (git
merge-file, diff3), a change next to lines the target does not have is not a conflict: each
change of the base is placed by aligning the whole base file with the target (difflib), so a
line the patch inserts after a line that the target lacks lands after the nearest line before it
that the target has, as long as that place is unambiguous.

A change conflicts, and nothing is written, when a line it replaces or removes is not in the
target unchanged and in one piece, or an insertion has no unambiguous place (the target has lines
of its own between the nearest surviving neighbours). Exit status: 0 merged (TARGET rewritten),
1 conflict (each on stderr with the base line numbers), 2 bad usage or unreadable input.
"""

import difflib
import sys


def read(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read().splitlines(keepends=True)


def merge(target, base0, base1):
    """The merged lines, or (None, conflicts)."""
    b2t = {}
    for blk in difflib.SequenceMatcher(None, base0, target, autojunk=False).get_matching_blocks():
        for k in range(blk.size):
            b2t[blk.a + k] = blk.b + k
    edits, conflicts = [], []
    ops = difflib.SequenceMatcher(None, base0, base1, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            continue
        where = f"base lines {i1 + 1}-{max(i2, i1 + 1)}"
        if i2 > i1:
            span = [b2t.get(k) for k in range(i1, i2)]
            if None in span or span != list(range(span[0], span[0] + len(span))):
                conflicts.append(f"{where}: the lines this change replaces are not in the target unchanged")
                continue
            start, end = span[0], span[-1] + 1
        else:
            back = next((b2t[k] + 1 for k in range(i1 - 1, -1, -1) if k in b2t), 0)
            fwd = next((b2t[k] for k in range(i1, len(base0)) if k in b2t), len(target))
            if back == fwd or (i1 - 1) in b2t:
                start = back
            elif i1 in b2t:
                start = fwd
            else:
                conflicts.append(f"{where}: no unambiguous place for the inserted lines (target lines {back + 1}-{fwd})")
                continue
            end = start
        edits.append((start, end, base1[j1:j2]))
    edits.sort(key=lambda e: (e[0], e[1]))
    for (s0, e0, _), (s1, _, _) in zip(edits, edits[1:]):
        if s1 < e0:
            conflicts.append(f"target lines {s0 + 1}-{e0}: two changes overlap")
    if conflicts:
        return None, conflicts
    out = list(target)
    for start, end, lines in reversed(edits):
        out[start:end] = lines
    return out, []


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    try:
        target, base0, base1 = (read(p) for p in argv[1:])
    except OSError as e:
        print(f"merge3.py: {e}", file=sys.stderr)
        return 2
    merged, conflicts = merge(target, base0, base1)
    if merged is None:
        for c in conflicts:
            print(f"merge3.py: {argv[1]}: {c}", file=sys.stderr)
        return 1
    with open(argv[1], "w", encoding="utf-8", errors="surrogateescape") as f:
        f.writelines(merged)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
