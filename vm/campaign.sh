#!/usr/bin/env bash
# campaign.sh: the file work of a kernel campaign (`zcrx-conform mutate` / `coverage`), on a
# campaign copy of a kernel tree that lives under <cache>/mutate/ (never the user's own tree).
#
#   campaign.sh prepare SRC          copy SRC (a Linux tree) to <cache>/mutate/<name>-<hash>:
#                                    `git worktree add --detach` when SRC is a git checkout, else
#                                    `cp -a`; then apply the netdevsim-zcrx series (next to this
#                                    script) so netdevsim, built in, gives true zero copy. A SRC
#                                    that already is a campaign copy is used as it is. Prints the
#                                    copy's path as the LAST stdout line.
#   campaign.sh apply TREE PATCH     apply one mutant (patch -p1) to a campaign copy; a mutant
#                                    still applied from an interrupted run is reverted first.
#   campaign.sh revert TREE          revert the applied mutant, if any.
#   campaign.sh save-gcno TREE       keep the unmutated build's io_uring/zcrx.gcno as
#                                    TREE/.zcrx-conform-baseline.gcno (each mutant's build
#                                    rewrites zcrx.gcno; the baseline's counters need the
#                                    baseline's notes).
#   campaign.sh gcov TREE GCDA OUT   read GCDA (a guest's io_uring/zcrx.gcda) with the saved
#                                    baseline notes (else io_uring/zcrx.gcno) in a scratch
#                                    directory and write gcov's JSON for io_uring/zcrx.c to OUT.
#   campaign.sh diff TREE RANGE      `git diff -U0 RANGE -- io_uring/zcrx.c` in TREE (a git
#                                    checkout; read only), for `coverage --diff`.
#
# Exits non-zero with "campaign.sh: ERROR: ..." on failure; everything but the printed path
# goes to stderr. Environment: ZCRX_CACHE (default <repo>/.cache).
set -euo pipefail

export ZCRX_LOG_NAME=campaign.sh # log prefix of lib.sh's log/die
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CAMPAIGNS=$CACHE/mutate
MARK_NSIM=.zcrx-conform-netdevsim-zcrx
MARK_MUTANT=.zcrx-conform-mutant.patch
MARK_GCNO=.zcrx-conform-baseline.gcno

is_tree() { [[ -f $1/Makefile && -f $1/Kconfig && -f $1/io_uring/zcrx.c ]]; }

campaign_copy() { # TREE: refuse anything that is not a campaign copy
    local t
    t=$(cd "$1" && pwd -P) || die "$1: not a directory"
    mkdir -p "$CAMPAIGNS"
    [[ $t == "$(cd "$CAMPAIGNS" && pwd -P)"/* ]] || die "$t is not a campaign copy under $CAMPAIGNS (run 'campaign.sh prepare' first)"
    is_tree "$t" || die "$t is not a Linux tree with io_uring/zcrx.c"
    printf '%s\n' "$t"
}

apply_series() { # TREE: the netdevsim-zcrx series, once (recorded with its checksum)
    local tree=$1 sum p patches
    mapfile -t patches <"$SCRIPT_DIR/netdevsim-zcrx/series"
    sum=$(cd "$SCRIPT_DIR/netdevsim-zcrx" && cat series "${patches[@]}" | sha256sum | cut -c1-16)
    if [[ -f $tree/$MARK_NSIM ]]; then
        [[ $(cat "$tree/$MARK_NSIM") == "$sum" ]] ||
            log "note: $tree carries an earlier netdevsim-zcrx series ($(cat "$tree/$MARK_NSIM"), now $sum); a fresh copy gets the current one"
        return 0
    fi
    while IFS= read -r p; do
        [[ -n $p ]] || continue
        patch -d "$tree" -p1 --forward --batch -s <"$SCRIPT_DIR/netdevsim-zcrx/$p" >&2 ||
            die "netdevsim-zcrx patch $p does not apply to $tree"
    done <"$SCRIPT_DIR/netdevsim-zcrx/series"
    printf '%s\n' "$sum" >"$tree/$MARK_NSIM"
    log "applied the netdevsim-zcrx series to $tree"
}

cmd_prepare() {
    local src=$1 real dest name
    [[ -d $src ]] || die "$src is not a directory"
    real=$(cd "$src" && pwd -P)
    is_tree "$real" || die "$real is not a Linux tree with io_uring/zcrx.c"
    mkdir -p "$CAMPAIGNS"
    if [[ $real == "$(cd "$CAMPAIGNS" && pwd -P)"/* ]]; then
        dest=$real
    else
        name=$(basename "$real")-$(printf '%s' "$real" | sha256sum | cut -c1-8)
        dest=$CAMPAIGNS/$name
        if [[ ! -d $dest ]]; then
            if git -C "$real" rev-parse --git-dir >/dev/null 2>&1; then
                log "git worktree add --detach $dest (from $real, HEAD)"
                git -C "$real" worktree add --detach "$dest" HEAD >&2 || die "git worktree add failed"
            else
                log "copying $real to $dest"
                cp -a "$real" "$dest.tmp" || die "copying $real failed"
                mv "$dest.tmp" "$dest"
            fi
        fi
    fi
    apply_series "$dest"
    printf '%s\n' "$dest"
}

cmd_revert() {
    local tree
    tree=$(campaign_copy "$1")
    [[ -f $tree/$MARK_MUTANT ]] || return 0
    patch -d "$tree" -p1 -R --batch -s <"$tree/$MARK_MUTANT" >&2 || die "reverting the mutant in $tree failed"
    rm -f "$tree/$MARK_MUTANT"
}

cmd_apply() {
    local tree patch=$2
    tree=$(campaign_copy "$1")
    [[ -f $patch ]] || die "$patch: no such mutant"
    cmd_revert "$tree"
    cp "$patch" "$tree/$MARK_MUTANT"
    if ! patch -d "$tree" -p1 --forward --batch -s <"$patch" >&2; then
        rm -f "$tree/$MARK_MUTANT"
        die "mutant $(basename "$patch") does not apply to $tree"
    fi
}

cmd_save_gcno() {
    local tree
    tree=$(campaign_copy "$1")
    [[ -f $tree/io_uring/zcrx.gcno ]] || die "$tree/io_uring/zcrx.gcno missing: build the tree with --gcov"
    cp "$tree/io_uring/zcrx.gcno" "$tree/$MARK_GCNO.tmp" && mv "$tree/$MARK_GCNO.tmp" "$tree/$MARK_GCNO"
}

cmd_gcov() {
    local tree gcda=$2 out=$3 tmp notes
    tree=$(campaign_copy "$1")
    need gcov gzip
    notes=$tree/$MARK_GCNO
    [[ -f $notes ]] || notes=$tree/io_uring/zcrx.gcno
    [[ -f $notes ]] || die "$tree/io_uring/zcrx.gcno missing: build the tree with --gcov"
    tmp=$(mktemp -d)
    cp "$notes" "$tmp/zcrx.gcno"
    cp "$gcda" "$tmp/zcrx.gcda"
    (cd "$tmp" && gcov --json-format -o "$tmp" "$tree/io_uring/zcrx.c" >&2) || die "gcov failed"
    # gcov names it zcrx.c.gcov.json.gz or zcrx.gcov.json.gz depending on how it found the notes.
    local json
    json=$(find "$tmp" -maxdepth 1 -name 'zcrx*.gcov.json.gz' | head -n 1)
    [[ -n $json ]] || die "gcov wrote no JSON"
    gzip -dc "$json" >"$out" || die "gcov's JSON is unreadable"
    rm -rf "$tmp"
}

cmd_diff() {
    local tree=$1 range=$2
    [[ $range =~ ^[A-Za-z0-9._/~^@-]+\.\.[A-Za-z0-9._/~^@-]+$ ]] || die "'$range' is not a BASE..HEAD range"
    git -C "$tree" diff -U0 "$range" -- io_uring/zcrx.c
}

case ${1:-} in
    prepare) [[ $# -eq 2 ]] || die "usage: campaign.sh prepare SRC"; cmd_prepare "$2" ;;
    apply) [[ $# -eq 3 ]] || die "usage: campaign.sh apply TREE PATCH"; cmd_apply "$2" "$3" ;;
    revert) [[ $# -eq 2 ]] || die "usage: campaign.sh revert TREE"; cmd_revert "$2" ;;
    save-gcno) [[ $# -eq 2 ]] || die "usage: campaign.sh save-gcno TREE"; cmd_save_gcno "$2" ;;
    gcov) [[ $# -eq 4 ]] || die "usage: campaign.sh gcov TREE GCDA OUT"; cmd_gcov "$2" "$3" "$4" ;;
    diff) [[ $# -eq 3 ]] || die "usage: campaign.sh diff TREE BASE..HEAD"; cmd_diff "$2" "$3" ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
