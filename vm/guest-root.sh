#!/usr/bin/env bash
# guest-root.sh: what a guest of another architecture needs from Debian besides its kernel (the
# harness builds the guest's initramfs itself: harness/src/vm/initramfs.rs).
#
#   guest-root.sh busybox ARCH   Debian's busybox-static for ARCH (arm64), downloaded through
#                                ARCH's private apt lists (<cache>/apt-ARCH, as kernel.sh's
#                                arm64 kernels) and extracted once; prints the path of the
#                                static busybox as the LAST stdout line (all else: stderr).
#                                Also installs the host's qemu-system-arm (qemu-system-aarch64)
#                                when it is missing.
#
# Output: <cache>/guest-root/busybox/<version>_<arch>/busybox. Environment: ZCRX_CACHE and the
# private apt settings of kernel.sh.
set -euo pipefail

export ZCRX_LOG_NAME=guest-root.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

busybox() {
    local arch=$1 ver dir tmp
    case $arch in
        arm64) use_flavour arm64 ;;
        *) refuse "no guest root for architecture '$arch' (arm64)" ;;
    esac
    ensure_packages qemu-system-arm
    need apt-get dpkg-deb
    setup_apt
    update_lists
    ver=$(apt_private apt-cache madison busybox-static 2>/dev/null | awk -F'|' 'NR == 1 {gsub(/ /, "", $2); print $2}')
    [[ -n $ver ]] || die "the private $arch lists have no busybox-static"
    dir=$CACHE/guest-root/busybox/${ver#*:}_$arch
    if [[ ! -x $dir/busybox ]]; then
        download busybox-static "$ver"
        mkdir -p "$CACHE/guest-root/busybox"
        clean_stale "$CACHE/guest-root/busybox" x
        tmp=$(temp_dir "$CACHE/guest-root/busybox" x)
        dpkg-deb -x "$(deb_file busybox-static "$ver")" "$tmp/root"
        local b=$tmp/root/usr/bin/busybox
        [[ -f $b && ! -L $b ]] || b=$tmp/root/bin/busybox
        [[ -f $b && ! -L $b ]] || die "busybox-static $ver has no usr/bin/busybox"
        mv "$b" "$tmp/busybox"
        rm -rf "$tmp/root"
        rm -rf "$dir"
        mv "$tmp" "$dir"
        log "busybox-static $ver ($arch) in $dir"
    fi
    printf '%s\n' "$dir/busybox"
}

case ${1:-} in
    busybox) [[ $# -eq 2 ]] || usage; busybox "$2" ;;
    *) usage ;;
esac
