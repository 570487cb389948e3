"""Keeps the BUDGET inputs that cover the most coverage features (greedy: most new features
first, then the smaller file), from a libFuzzer merge control file:

    $BIN -merge=1 -use_counters=0 -merge_control_file=CTL OUT_DIR CORPUS_DIR
    python3 pick-corpus.py CTL PICKED_DIR BUDGET
"""
import sys, os, shutil
ctl, outdir, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(ctl).read().splitlines()
n = int(lines[0]); paths = lines[2:2+n]
cov = {}; size = {}
for l in lines[2+n:]:
    p = l.split()
    if p[0] == 'STARTED': size[int(p[1])] = int(p[2])
    elif p[0] == 'FT': cov[int(p[1])] = set(p[2:])
total = set().union(*cov.values())
chosen = []; have = set()
while len(chosen) < budget:
    # most new features, ties: smaller file
    best = max(cov, key=lambda i: (len(cov[i] - have), -size.get(i, 0)))
    gain = len(cov[best] - have)
    if gain == 0: break
    chosen.append(best); have |= cov[best]
os.makedirs(outdir, exist_ok=True)
for i in chosen: shutil.copy(paths[i], outdir)
print(f"{len(chosen)} files cover {len(have)}/{len(total)} features, {sum(size[i] for i in chosen)} bytes")
