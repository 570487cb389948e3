#!/usr/bin/env bash
# liburing.sh: liburing's own zcrx test (test/zcrx.t), built from Debian's liburing source
# package, for a side-by-side comparison with our catalogue (reports/liburing-comparison.md).
#
#   liburing.sh build
#       Downloads the source package of sid's liburing (`apt-get source --download-only`) with
#       kernel.sh's private apt configuration plus a deb-src list of its own (kept apart from
#       kernel.sh's lists, under <cache>/apt-src/), unpacks it, builds src/ (liburing.a) and
#       test/zcrx.t with the host's gcc, and prints the absolute path of zcrx.t as the LAST
#       stdout line (all else: stderr). Output: <cache>/liburing/<version>/. Cached: a second
#       call prints the path at once, also after waiting for another run's build. Built in a
#       temp directory (.build.<pid>.*) renamed into place whole; a build killed at any point
#       leaves only that, which the next build removes (test hook phases, lib.sh's
#       test_kill_at: download, build, install).
#
# Run it in a VM like anything else on the host (the host root is mounted read-only):
#   VMLINUZ=$(vm/kernel.sh fetch debian:7.3.4 | tail -n1)
#   ZT=$(vm/liburing.sh build | tail -n1)
#   vng --run "$VMLINUZ" --disable-kvm --force-9p --user root -m 2G -p 2 -- "cd $(dirname "$ZT") && ./zcrx.t" | cat
#
# Environment: ZCRX_LIBURING_VERSION (an exact source version, e.g. 2.15-1; default: the newest
# in sid), and those of kernel.sh (ZCRX_CACHE, ZCRX_DEBIAN_MIRROR, ZCRX_DEBIAN_KEYRING, ...).
set -euo pipefail

export ZCRX_LOG_NAME=liburing.sh # log prefix of lib.sh's log/die
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LDIR=$CACHE/liburing
SRCAPT=$CACHE/apt-src
SRC_OPTS=()
tmp="" # the build's temporary dir (removed on exit)

# The private apt options of lib.sh (setup_apt, shared with kernel.sh), with a sources list of
# deb-src lines for the same mirror, keyring and sid, and lists of their own (the freshness stamp
# of the shared lists, $APTDIR/updated, is not touched).
setup_src_apt() {
    setup_apt
    mkdir -p "$SRCAPT/lists/partial"
    local content
    content=$(sed -n 's/^deb \(.*\) sid main$/deb-src \1 sid main/p' "$APTDIR/sources.list")
    [[ -n $content ]] || die "no sid entry in $APTDIR/sources.list"
    if [[ ! -f $SRCAPT/sources.list ]] || [[ $(<"$SRCAPT/sources.list") != "$content" ]]; then
        printf '%s\n' "$content" >"$SRCAPT/sources.list"
        rm -f "$SRCAPT/updated"
    fi
    SRC_OPTS=(
        "${APT_OPTS[@]}"
        -o "Dir::Etc::sourcelist=$SRCAPT/sources.list"
        -o "Dir::State::Lists=$SRCAPT/lists"
        -o "Dir::Cache::pkgcache=$SRCAPT/pkgcache.bin"
        -o "Dir::Cache::srcpkgcache=$SRCAPT/srcpkgcache.bin"
    )
}

src_apt() { "$@" "${SRC_OPTS[@]}"; }

update_src_lists() {
    if [[ -f $SRCAPT/updated ]] && (($(date +%s) - $(stat -c %Y "$SRCAPT/updated") < MAX_AGE)); then
        return 0
    fi
    log "apt-get update (deb-src lists in $SRCAPT/lists)"
    if src_apt apt-get update -q >&2; then
        touch "$SRCAPT/updated"
    elif compgen -G "$SRCAPT/lists/*Sources*" >/dev/null; then
        log "WARNING: apt-get update failed; using the older source lists"
    else
        die "apt-get update of the deb-src lists failed"
    fi
}

cached() {
    local d
    [[ -d $LDIR ]] || return 1
    for d in $(find "$LDIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' | sort -Vr); do
        [[ -z ${ZCRX_LIBURING_VERSION:-} || $d == "${ZCRX_LIBURING_VERSION#*:}" ]] || continue
        if [[ -f $LDIR/$d/.ready ]]; then
            cat "$LDIR/$d/.ready"
            return 0
        fi
    done
    return 1
}

cmd_build() {
    local path
    if path=$(cached) && [[ -x $path ]]; then
        log "cached: $path"
        printf '%s\n' "$path"
        return 0
    fi
    need apt-get apt-cache dpkg-source gcc make flock
    setup_src_apt
    mkdir -p "$LDIR"
    exec 9>"$CACHE/.liburing.lock"
    flock 9
    # What a killed build left (its trap never ran): only the dead scripts' temp directories.
    clean_stale "$LDIR" build
    # Built by another run while this one waited for the lock: rebuilding would remove the
    # zcrx.t that run was given.
    if path=$(cached) && [[ -x $path ]]; then
        log "built by another run while this one waited: $path"
        printf '%s\n' "$path"
        return 0
    fi
    update_src_lists
    local ver
    ver=${ZCRX_LIBURING_VERSION:-$(src_apt apt-cache showsrc liburing 2>/dev/null |
        awk '/^Version:/ {print $2}' | sort -Vr | head -n1)}
    [[ -n $ver ]] || die "no liburing source package in sid's Sources"
    log "liburing source $ver"
    local dir=$LDIR/${ver#*:}
    tmp=$(temp_dir "$LDIR" build)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && src_apt apt-get source -q --download-only "liburing=$ver" >&2) ||
        die "apt-get source --download-only liburing=$ver failed"
    local dsc
    dsc=$(find "$tmp" -maxdepth 1 -name '*.dsc' | head -n1)
    [[ -n $dsc ]] || die "no .dsc downloaded"
    test_kill_at download
    mkdir -p "$tmp/dl"
    cp "$tmp"/liburing_* "$tmp/dl/"
    dpkg-source --no-check -x "$dsc" "$tmp/src" >&2
    log "building liburing (src/) and test/zcrx.t with $(gcc --version | head -n1)"
    (
        cd "$tmp/src"
        ./configure --cc=gcc --cxx=g++ >"$tmp/configure.log" 2>&1
        make -C src -j2 >"$tmp/build.log" 2>&1
        make -C test zcrx.t >>"$tmp/build.log" 2>&1
    ) || {
        tail -n 30 "$tmp/configure.log" "$tmp/build.log" >&2 || true
        die "build failed (logs above)"
    }
    test_kill_at build
    # Put together in the temp directory, .ready included, and renamed into place whole.
    mkdir "$tmp/out"
    mv "$tmp/dl" "$tmp/out/source"
    mv "$tmp/src" "$tmp/out/liburing"
    mv "$tmp/configure.log" "$tmp/build.log" "$tmp/out/"
    [[ -x $tmp/out/liburing/test/zcrx.t ]] || die "no test/zcrx.t after the build"
    path=$dir/liburing/test/zcrx.t
    printf '%s\n' "$path" >"$tmp/out/.ready"
    test_kill_at install
    # No .ready in $dir (cached() above found none): at most an older liburing.sh's half build.
    rm -rf "$dir"
    mv "$tmp/out" "$dir"
    log "built $path ($(du -h "$path" | cut -f1))"
    printf '%s\n' "$path"
}

case ${1:-} in
build) cmd_build ;;
*)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
