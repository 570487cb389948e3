#!/usr/bin/env bash
# ethtool.sh: a recent ethtool (sid's 7.x) for VM runs, without installing it.
#
#   ethtool.sh [fetch]
#       Downloads sid's ethtool .deb with the private apt config of kernel.sh, extracts it under
#       <cache>/ethtool/<version>/, and prints the path of the ethtool binary as the LAST stdout
#       line (all else: stderr). Cached: a second call prints the path at once.
#       bookworm's ethtool 6.1 cannot set tcp-data-split / hds-thresh
#       (`ethtool -G DEV tcp-data-split on hds-thresh 0`), which zcrx needs.
#       If the host's libmnl0 is too old for it, sid's libmnl0 is extracted too and the
#       printed path is a wrapper script that sets LD_LIBRARY_PATH.
#
# Environment: ZCRX_CACHE (default <repo>/.cache), ZCRX_ETHTOOL_VERSION (an exact package
# version; default: the newest in the private lists), and those of kernel.sh.
set -euo pipefail

export ZCRX_LOG_NAME=ethtool.sh # log prefix of lib.sh's log/die
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EDIR=$CACHE/ethtool

# Print the cached binary (or wrapper) of a prepared version, newest first; fail if none.
cached_ethtool() { cached_ready "$EDIR" "${ZCRX_ETHTOOL_VERSION:-}"; }

# Does BIN run with the libraries it finds (prints its version)?
runs() { "$@" --version >/dev/null 2>&1; }

cmd_fetch() {
    local path
    if path=$(cached_ethtool); then
        log "cached: $path ($("$path" --version 2>/dev/null | head -n1))"
        printf '%s\n' "$path"
        return 0
    fi
    need apt-get apt-cache dpkg-deb flock
    setup_apt
    mkdir -p "$EDIR"
    exec 9>"$CACHE/.ethtool.lock"
    flock 9
    update_lists
    local ver
    ver=${ZCRX_ETHTOOL_VERSION:-$(apt_private apt-cache madison ethtool 2>/dev/null |
        awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -Vr | head -n1)}
    [[ -n $ver ]] || die "no ethtool in the private lists (suites: ${SUITES[*]})"
    log "ethtool $ver"
    download ethtool "$ver"
    local dir=$EDIR/${ver#*:} tmp
    tmp=$(mktemp -d "$EDIR/.x.XXXXXX")
    # shellcheck disable=SC2064  # expand tmp now
    trap "rm -rf '$tmp'" EXIT
    dpkg-deb -x "$(deb_file ethtool "$ver")" "$tmp"
    local bin=$tmp/usr/sbin/ethtool
    [[ -x $bin ]] || die "no usr/sbin/ethtool in ethtool_$ver"
    path=$dir/usr/sbin/ethtool
    if ! runs "$bin"; then
        # Most likely libmnl0 (or libc): take sid's libmnl0 next to it.
        log "ethtool $ver does not run with the host's libraries ($("$bin" --version 2>&1 | head -n1)); adding sid's libmnl0"
        local mver
        mver=$(apt_private apt-cache madison libmnl0 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -Vr | head -n1)
        [[ -n $mver ]] || die "no libmnl0 in the private lists"
        download libmnl0 "$mver"
        dpkg-deb -x "$(deb_file libmnl0 "$mver")" "$tmp"
        LD_LIBRARY_PATH=$tmp/usr/lib/x86_64-linux-gnu runs "$bin" ||
            die "ethtool $ver does not run even with sid's libmnl0: $(LD_LIBRARY_PATH=$tmp/usr/lib/x86_64-linux-gnu "$bin" --version 2>&1 | head -n1)"
        lib_wrapper "$tmp/ethtool" "$dir/usr/lib/x86_64-linux-gnu" "$dir/usr/sbin/ethtool"
        path=$dir/ethtool
    fi
    rm -rf "$dir"
    mv "$tmp" "$dir"
    trap - EXIT
    printf '%s\n' "$path" >"$dir/.ready"
    log "extracted to $dir: $("$path" --version | head -n1)"
    printf '%s\n' "$path"
}

case ${1:-fetch} in
    fetch) cmd_fetch ;;
    *)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
