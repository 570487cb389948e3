#!/usr/bin/env bash
# campaign-tree.sh: the campaign tree of the generated samples, from nothing, on a fresh machine.
#
#   PATH/TO/campaign-tree.sh SRC     run from the root of the checkout whose vm/ scripts and
#                                    netdevsim-zcrx series the campaign uses (for sample 2 the
#                                    worktree campaign-2.sh makes, which predates this script:
#                                    call main's copy of it from there). Its vm/build-tree.sh is
#                                    the one the campaign's `mutate` runs again, so the two agree
#                                    on the config (sample 2's has no CONFIG_USERFAULTFD).
#
# 1. Debian's linux-source-7.3 7.3.4-1~bpo13+1 (the sources the samples were drawn from; counts.md
#    has their checksums) through kernel.sh's private apt config, its tarball extracted to SRC.
#    An existing SRC is used as it is (it must be that tree: io_uring/zcrx.c is checked).
# 2. `vm/campaign.sh prepare SRC`: the campaign copy under <cache>/mutate/, with the series.
# 3. `vm/build-tree.sh --gcov --configure-only`, then the subsystems no case touches switched off
#    (README.md of this folder lists them and says why), then the build.
# Prints the campaign copy's path as the LAST stdout line; `zcrx-conform mutate --kernel
# tree:<that path>` uses it as it is. Measured: 17.5 min of build on 2 cores beside two cargo
# builds (2026-12-07). Environment: ZCRX_CACHE, as for the other vm/ scripts.
set -euo pipefail

export ZCRX_LOG_NAME=campaign-tree.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm=$PWD/vm
[[ -f $vm/campaign.sh && -f $vm/build-tree.sh && -f $vm/lib.sh ]] ||
    { echo "campaign-tree.sh: ERROR: run it from a checkout's root (no vm/campaign.sh under $PWD)" >&2; exit 2; }
# shellcheck source=../../lib.sh
source "$vm/lib.sh"

[[ $# -eq 1 ]] || die "usage: campaign-tree.sh SRC"
src=$(realpath -m "$1")
pkg=linux-source-7.3
ver=7.3.4-1~bpo13+1
# counts.md names each sampled file with the first 16 hex digits of its sha256
# shellcheck disable=SC2016  # the backticks are counts.md's own, not a command
want_sum=$(sed -n 's/^- `io_uring\/zcrx\.c` sha256 `\([0-9a-f]\{16\}\)`.*/\1/p' "$here/counts.md" | head -n1)

if [[ ! -e $src ]]; then
    setup_apt
    update_lists
    fetch_deb "$pkg" "$ver" linux >/dev/null
    tmp=$(temp_dir "$(dirname "$src")" src)
    # shellcheck disable=SC2064  # expand tmp now
    trap "rm -rf '$tmp'" EXIT
    log "extracting $pkg's tarball to $src"
    dpkg-deb --fsys-tarfile "$(deb_file "$pkg" "$ver")" | tar -xOf - "./usr/src/$pkg.tar.xz" | tar -xJf - -C "$tmp"
    [[ -d $tmp/$pkg ]] || die "$pkg's tarball has no $pkg/ directory"
    mv "$tmp/$pkg" "$src"
    rm -rf "$tmp"
    trap - EXIT
fi
[[ -f $src/io_uring/zcrx.c ]] || die "$src is not a Linux tree with io_uring/zcrx.c"
if [[ -n $want_sum ]]; then
    have=$(sha256sum "$src/io_uring/zcrx.c" | cut -c1-16)
    [[ $have == "$want_sum" ]] || die "$src/io_uring/zcrx.c is not the sampled source (sha256 $have, counts.md has $want_sum)"
fi

tree=$(bash "$vm/campaign.sh" prepare "$src" | tail -n1)
bash "$vm/build-tree.sh" "$tree" --gcov --configure-only >/dev/null
off=(DRM SOUND USB_SUPPORT WLAN WIRELESS CFG80211 MAC80211 AGP MEDIA_SUPPORT NFS_FS NFSD ETHERNET ATA MD
    INPUT_JOYSTICK INPUT_TABLET INPUT_TOUCHSCREEN PCCARD MACINTOSH_DRIVERS FUSION EDAC WATCHDOG)
args=()
for x in "${off[@]}"; do args+=(--disable "$x"); done
(cd "$tree" && scripts/config "${args[@]}" && make olddefconfig >/dev/null)
bash "$vm/build-tree.sh" "$tree" --gcov >&2
printf '%s\n' "$tree"
