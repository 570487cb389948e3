#!/usr/bin/env bash
# openssh.sh: Debian's OpenSSH server for a simulated lab's remote peer, without installing it.
#
#   openssh.sh [fetch]
#       Downloads this machine's suite's openssh-server .deb, and libwrap0 (its sshd links it; a
#       machine without openssh-server lacks it), with the machine's own apt lists (`apt-get
#       download`: nothing is installed, no service started), extracts them under
#       <cache>/openssh/<version>/, and prints the path of a wrapper as the LAST stdout line (all
#       else: stderr): it runs that sshd by its absolute path (sshd re-executes itself and
#       needs one) with LD_LIBRARY_PATH on the extracted libraries. Cached: a second call prints
#       the path at once. The harness starts it only for `simulate:` topologies with
#       `remote.ssh` (topologies/examples/nic-netdevsim-ssh.yaml), in the peer's namespace.
#
# Environment: ZCRX_CACHE (default <repo>/.cache), ZCRX_OPENSSH_VERSION (an exact package
# version; default: the candidate of the machine's lists).
set -euo pipefail

export ZCRX_LOG_NAME=openssh.sh # log prefix of lib.sh's log/die
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ODIR=$CACHE/openssh

# The wrapper of a prepared version (the wanted one, else the newest); fail if none.
cached_sshd() { cached_ready "$ODIR" "${ZCRX_OPENSSH_VERSION:-}"; }

# Loads its libraries? (sshd -t with no host key fails later, for another reason.)
loads() { ! "$1" -t -f /dev/null 2>&1 | grep -q 'error while loading shared libraries'; }

cmd_fetch() {
    local path
    if path=$(cached_sshd); then
        log "cached: $path"
        printf '%s\n' "$path"
        return 0
    fi
    need apt-get apt-cache dpkg-deb flock
    mkdir -p "$ODIR"
    exec 9>"$CACHE/.openssh.lock"
    flock 9
    local ver wver
    ver=${ZCRX_OPENSSH_VERSION:-$(apt-cache policy openssh-server 2>/dev/null | awk '/Candidate:/ {print $2}')}
    [[ -n $ver && $ver != "(none)" ]] || die "no openssh-server in this machine's apt lists (apt-get update?)"
    wver=$(apt-cache policy libwrap0 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $wver && $wver != "(none)" ]] || die "no libwrap0 in this machine's apt lists"
    log "openssh-server $ver, libwrap0 $wver"
    local dir=$ODIR/${ver#*:} tmp
    tmp=$(mktemp -d "$ODIR/.x.XXXXXX")
    # shellcheck disable=SC2064  # expand tmp now
    trap "rm -rf '$tmp'" EXIT
    (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "openssh-server=$ver" "libwrap0=$wver" >&2) ||
        die "apt-get download openssh-server=$ver libwrap0=$wver failed"
    mkdir "$tmp/root"
    local deb
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
    rm -f "$tmp"/*.deb
    [[ -x $tmp/root/usr/sbin/sshd ]] || die "no usr/sbin/sshd in openssh-server_$ver"
    lib_wrapper "$tmp/sshd" "$dir/root/usr/lib/x86_64-linux-gnu" "$dir/root/usr/sbin/sshd"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    trap - EXIT
    path=$dir/sshd
    loads "$path" || die "sshd $ver does not load its libraries: $("$path" -t -f /dev/null 2>&1 | head -n1)"
    printf '%s\n' "$path" >"$dir/.ready"
    log "extracted to $dir"
    printf '%s\n' "$path"
}

case ${1:-fetch} in
    fetch) cmd_fetch ;;
    *)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
