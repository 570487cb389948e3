#!/usr/bin/env bash
# campaign-2.sh: recreate the source of sample 2's campaign binary from main's history.
#
#   vm/mutants/generated/campaign-2.sh DIR     (run from the repository root)
#
# Sample 2 runs with the suite as it was when the sample started (main's 020286e), so that every
# mutant of the sample meets the same cases. Three changes ride on top, neither touching a case:
#   - main's 12a3209: a guest that hangs whole keeps the cases it finished (the end lines), so a
#     killed-by-crash record names every case that changed before the hang;
#   - vm/build-tree.sh without CONFIG_USERFAULTFD (and its comment), as the campaign tree of
#     sample 2 was configured: nic.copy_out_fault_in_flight skips there, in the baseline too.
#   - main's a900e5b (from the tenth sitting on): a case that ends with a splat beside another
#     tells the host at once, so a guest that then hangs whole still names it.
# A campaign branch lives only on the machine that made it (the ninth sitting's was lost with its
# machine); this script makes it again on any clone of main: `git worktree add` of 020286e at DIR
# on a new branch campaign-2, the cherry-pick, the edit, one commit. Then:
#   cd DIR && cargo build --release
# An existing DIR or branch campaign-2 is refused, never reused or overwritten.
set -euo pipefail

die() { printf 'campaign-2.sh: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: campaign-2.sh DIR"
dir=$1
base=020286e
hangs=12a3209
suspects=a900e5b
git rev-parse --verify -q "$base^{commit}" >/dev/null || die "$base is not in this clone's history"
git rev-parse --verify -q "$hangs^{commit}" >/dev/null || die "$hangs is not in this clone's history"
git rev-parse --verify -q "$suspects^{commit}" >/dev/null || die "$suspects is not in this clone's history"
! git rev-parse --verify -q refs/heads/campaign-2 >/dev/null || die "branch campaign-2 exists already"
[[ ! -e $dir ]] || die "$dir exists already"

git worktree add -q -b campaign-2 "$dir" "$base"
git -C "$dir" cherry-pick "$hangs" >/dev/null
f=$dir/vm/build-tree.sh
before=$(grep -c 'USERFAULTFD\|^# userfaultfd\|^# copy-out of a registration with it' "$f" || true)
[[ $before -eq 3 ]] || die "expected the three USERFAULTFD lines in $f, found $before"
sed -i '/^# userfaultfd (Debian/d; /^# copy-out of a registration with it/d; /^CONFIG_USERFAULTFD=y$/d' "$f"
! grep -q USERFAULTFD "$f" || die "USERFAULTFD still in $f"
git -C "$dir" commit -q -am "campaign-2: vm/build-tree.sh without CONFIG_USERFAULTFD, as sample 2's campaign tree was built"
git -C "$dir" cherry-pick "$suspects" >/dev/null
git -C "$dir" log --oneline -4 >&2
printf '%s\n' "$dir"
