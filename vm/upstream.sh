#!/usr/bin/env bash
# upstream.sh: the kernel's own zcrx selftests (tools/testing/selftests/drivers/net/hw/
# iou-zcrx.py, nk_qlease.py), unmodified, against two linked netdevsim-zcrx ports in a VM
# (docs/upstream-selftests.md). `zcrx-conform upstream --kernel SPEC` runs both halves.
#
#   upstream.sh prepare KVER LIBURING_DIR
#       Host side. From linux-source-<M.m> of KVER's package version (kernel.sh's info file;
#       the .deb netdevsim.sh downloads, fetched the same way when missing) extracts only what
#       the tests read: tools/testing/selftests/{drivers/net,net/lib}, tools/net/ynl and
#       Documentation/netlink/specs (the YNL library and its specs, "running in tree"), and
#       builds the C helper drivers/net/hw/iou-zcrx with the host's gcc against the liburing
#       that liburing.sh built (LIBURING_DIR: its source tree with src/liburing.a), next to
#       the test, where iou-zcrx.py looks for it. Builds the BPF objects nk_qlease.py's
#       environment (NetDrvContEnv) loads, as the selftests' bpf.mk does (clang -O2 -g
#       --target=bpf): drivers/net/hw/nk_forward.bpf.o and nk_primary_rx_redirect.bpf.o, and
#       net/lib/xdp_dummy.bpf.o, against that kernel's uapi headers (linux-libc-dev of the same
#       package version, from kernel.sh's private lists) and libbpf's bpf_helpers.h. The
#       compiler, libbpf-dev and bpftool are this machine's suite's Debian packages (clang-N as
#       the `clang` package names it, its libraries, libbpf-dev, bpftool), fetched with
#       `apt-get download` and extracted under <cache>/bpf-tools/<clang version>/ (nothing
#       installed); bpftool, which the tests run in the guest, is put in <prepared>/bin/.
#       Nothing in the extracted files is changed. Prints the extracted tree (the KSRC of
#       the tests) as the LAST stdout line. Cached under
#       <cache>/upstream/<pkgver>+liburing-<liburing version>+clang-<version>/; built in a
#       temp directory renamed into place whole; serialised with flock.
#   upstream.sh guest KSRC NETDEVSIM_KO ETHTOOL ZCRX_T TEST...
#       Guest side (inside the VM, as root). Loads NETDEVSIM_KO (netdevsim-zcrx), makes
#       netdevsim devices 1 and 2 (one port, 4 queues each), moves device 2's port into the
#       namespace nsim-peer, links the two, addresses them (2001:db8:1::1/64, ::2/64) and runs
#       each TEST (a file under drivers/net/hw, e.g. iou-zcrx.py) once per subtest it lists
#       (`-l`, then `-t NAME`: the test's own selection), with NETIF, LOCAL_V6, REMOTE_V6,
#       REMOTE_TYPE=netns, REMOTE_ARGS=nsim-peer and LOCAL_PREFIX_V6=2001:db8:2::/64 (nk_qlease's
#       netkit addresses) in the environment (no net.config is
#       written) and ETHTOOL's directory, then KSRC/../bin (bpftool), first in PATH. The
#       peer routes LOCAL_PREFIX_V6 via the DUT (the README's "DUT must be reachable using
#       these addresses from the endpoint"). Before each subtest the port's hds/
#       counters are set to 0; after it they are read. Then liburing's ZCRX_T (test/zcrx.t,
#       from its own directory), beside them. Output, on stdout, one record a line:
#         @upstream kernel RELEASE               uname -r
#         @upstream file NAME                    a test file starts
#         @upstream missing NAME                 the source has no such test
#         @upstream list-exit NAME N             its `-l` failed (exit N; its output follows)
#         @upstream begin NAME SUBTEST           a subtest starts; its KTAP/stdout+stderr follows
#         @upstream end NAME SUBTEST EXIT MS split=N fallback=N dropped=N
#         @upstream liburing-begin               zcrx.t starts; its output follows
#         @upstream liburing-end EXIT MS
#       (MS: wall milliseconds; a counter the module lacks reads `missing`.) Any other line is
#       the tests' own output. Exit 0 when every record was written (the results are in the
#       records), 1 when the set-up failed.
#
# Environment: ZCRX_CACHE and those of kernel.sh (prepare only).
set -euo pipefail

export ZCRX_LOG_NAME=upstream.sh # log prefix of lib.sh's log/die
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UDIR=$CACHE/upstream
# What the tests read of the source tree, relative to its top.
PARTS=(
    tools/testing/selftests/drivers/net
    tools/testing/selftests/net/lib
    tools/net/ynl
    Documentation/netlink/specs
)
HW=tools/testing/selftests/drivers/net/hw

BDIR=$CACHE/bpf-tools
# The BPF objects the tests load, by their path under the source tree (each from its .c).
BPF_OBJS=(
    tools/testing/selftests/drivers/net/hw/nk_forward.bpf.o
    tools/testing/selftests/drivers/net/hw/nk_primary_rx_redirect.bpf.o
    tools/testing/selftests/net/lib/xdp_dummy.bpf.o
)

# The candidate version of PKG in this machine's own apt lists; dies when there is none.
candidate() {
    local v
    v=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $v && $v != "(none)" ]] || die "no $1 in this machine's apt lists (apt-get update?)"
    printf '%s\n' "$v"
}

# The versioned clang package (clang-14) the `clang` package of this machine's suite depends on.
clang_package() {
    local p
    p=$(apt-cache depends clang 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^clang-[0-9]+$/ {print $2; exit}')
    [[ -n $p ]] || die "this machine's apt lists name no clang-N (apt-cache depends clang)"
    printf '%s\n' "$p"
}

# bpf_tools: prints the directory of an extracted clang + libbpf-dev + bpftool (root/ holds the
# packages' trees; clang and bpftool are wrappers there that set LD_LIBRARY_PATH). This machine's
# suite's packages (they run on its libc), never installed. Cached by clang's version. Called
# with the upstream lock held.
bpf_tools() {
    local clang_pkg cver
    clang_pkg=$(clang_package)
    cver=$(candidate "$clang_pkg")
    local n=${clang_pkg#clang-} dir=$BDIR/${cver#*:}
    if [[ -f $dir/.ready ]]; then
        printf '%s\n' "$dir"
        return 0
    fi
    local pkgs=("$clang_pkg" "libclang-common-$n-dev" "libclang-cpp$n" "libllvm$n" libbpf-dev bpftool)
    local p specs=()
    for p in "${pkgs[@]}"; do specs+=("$p=$(candidate "$p")"); done
    log "BPF tool chain: ${specs[*]}"
    mkdir -p "$BDIR"
    clean_stale "$BDIR" x
    local tmp
    tmp=$(temp_dir "$BDIR" x)
    (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${specs[@]}" >&2) ||
        { rm -rf "$tmp"; die "apt-get download ${specs[*]} failed"; }
    mkdir "$tmp/root"
    local deb
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
    rm -f "$tmp"/*.deb
    local libs=$dir/root/usr/lib/x86_64-linux-gnu:$dir/root/usr/lib/llvm-$n/lib
    [[ -x $tmp/root/usr/lib/llvm-$n/bin/clang ]] || { rm -rf "$tmp"; die "no usr/lib/llvm-$n/bin/clang in $clang_pkg"; }
    [[ -x $tmp/root/usr/sbin/bpftool && -f $tmp/root/usr/include/bpf/bpf_helpers.h ]] ||
        { rm -rf "$tmp"; die "no usr/sbin/bpftool or usr/include/bpf/bpf_helpers.h in bpftool / libbpf-dev"; }
    mkdir "$tmp/bin"
    lib_wrapper "$tmp/bin/clang" "$libs" "$dir/root/usr/lib/llvm-$n/bin/clang"
    # shellcheck disable=SC2016  # $@ is for the wrapper
    printf '#!/bin/sh\nexec %s "$@"\n' "$dir/root/usr/sbin/bpftool" >"$tmp/bin/bpftool"
    chmod +x "$tmp/bin/bpftool"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    "$dir/bin/clang" --version >/dev/null 2>&1 || die "$clang_pkg does not run: $("$dir/bin/clang" --version 2>&1 | head -n1)"
    "$dir/bin/bpftool" version >/dev/null 2>&1 || die "bpftool does not run: $("$dir/bin/bpftool" version 2>&1 | head -n1)"
    printf '%s\n' "${specs[*]}" >"$dir/.ready"
    log "BPF tool chain in $dir"
    printf '%s\n' "$dir"
}

# build_bpf TREE TOOLS UAPI: the BPF_OBJS under TREE, as bpf.mk builds them, with TOOLS' clang
# and libbpf headers and UAPI's usr/include (the kernel's headers, x86_64-linux-gnu's asm/).
build_bpf() {
    local tree=$1 tools=$2 uapi=$3 o res
    res=$("$tools/bin/clang" -print-resource-dir)
    for o in "${BPF_OBJS[@]}"; do
        log "building $o"
        "$tools/bin/clang" -O2 -g --target=bpf -nostdinc -isystem "$res/include" \
            -isystem "$uapi/usr/include" -isystem "$uapi/usr/include/x86_64-linux-gnu" \
            -isystem "$tools/root/usr/include" -c "$tree/${o%.o}.c" -o "$tree/$o" ||
            die "building $o failed"
    done
}

cmd_prepare() {
    local kver=${1:-} lib=${2:-}
    [[ -n $kver && -n $lib ]] || refuse "usage: upstream.sh prepare KVER LIBURING_DIR"
    [[ -f $lib/src/liburing.a && -f $lib/src/include/liburing.h ]] ||
        refuse "$lib: no src/liburing.a and src/include/liburing.h (a tree liburing.sh built)"
    local flav
    flav=$(flavour_of_release "$kver") || refuse "$kver: not a Debian kernel release"
    use_flavour "$flav"
    local kv=${kver%-"$FLAVOUR"} mm pkgver
    mm=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$kv")
    pkgver=$(sed -n 's/^pkgver=//p' "$KDIR/$kver/info" 2>/dev/null || true)
    [[ -n $pkgver ]] || refuse "$kver: not fetched (no $KDIR/$kver/info; kernel.sh fetch first)"
    local lver
    lver=$(basename "$(dirname "$(realpath "$lib")")")
    need dpkg-deb tar xz gcc flock apt-get apt-cache
    local cpkg cver
    cpkg=$(clang_package)
    cver=$(candidate "$cpkg")
    local dir=$UDIR/$pkgver+liburing-$lver+clang-${cver#*:}
    if [[ -f $dir/.ready ]]; then
        log "cached: $dir/src"
        printf '%s\n' "$dir/src"
        return 0
    fi
    mkdir -p "$UDIR"
    exec 9>"$CACHE/.upstream.lock"
    flock 9
    clean_stale "$UDIR" build
    if [[ -f $dir/.ready ]]; then
        log "prepared by another run while this one waited: $dir/src"
        printf '%s\n' "$dir/src"
        return 0
    fi
    setup_apt
    local deb
    deb=$(deb_file "linux-source-$mm" "$pkgver")
    if [[ ! -s $deb ]]; then
        update_lists
        fetch_deb "linux-source-$mm" "$pkgver" linux >/dev/null
    fi
    local tmp t0=$SECONDS tarname=linux-source-$mm
    tmp=$(temp_dir "$UDIR" build)
    # shellcheck disable=SC2064  # expand tmp now
    trap "rm -rf '$tmp'" EXIT
    mkdir -p "$tmp/out/src"
    log "extracting ${PARTS[*]} from $tarname.tar.xz ($pkgver)"
    local members=() p
    for p in "${PARTS[@]}"; do members+=("$tarname/$p"); done
    if ! dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./usr/src/$tarname.tar.xz" |
        xz -dc -T2 | tar -x -C "$tmp/out/src" --strip-components=1 "${members[@]}"; then
        die "extracting from $deb failed"
    fi
    [[ -f $tmp/out/src/$HW/iou-zcrx.py && -f $tmp/out/src/$HW/iou-zcrx.c ]] ||
        die "$tarname $pkgver has no $HW/iou-zcrx.py and iou-zcrx.c"
    log "extracted in $((SECONDS - t0)) s"
    test_kill_at extract
    # The helper, as the selftests' Makefile builds it (lib.mk's -O2 -g -Wall, liburing linked
    # in statically so the guest needs no liburing.so), next to the test.
    log "building $HW/iou-zcrx against $lib ($(gcc --version | head -n1))"
    if ! gcc -O2 -g -Wall -I"$lib/src/include" -o "$tmp/out/src/$HW/iou-zcrx" \
        "$tmp/out/src/$HW/iou-zcrx.c" "$lib/src/liburing.a" >"$tmp/out/build.log" 2>&1; then
        cat "$tmp/out/build.log" >&2
        die "building iou-zcrx failed"
    fi
    local tools
    tools=$(bpf_tools)
    if [[ ! -s $(deb_file linux-libc-dev "$pkgver") ]]; then
        update_lists
        fetch_deb linux-libc-dev "$pkgver" linux >/dev/null
    fi
    mkdir "$tmp/uapi"
    dpkg-deb -x "$(deb_file linux-libc-dev "$pkgver")" "$tmp/uapi"
    build_bpf "$tmp/out/src" "$tools" "$tmp/uapi"
    mkdir "$tmp/out/bin"
    ln -s "$tools/bin/bpftool" "$tmp/out/bin/bpftool"
    test_kill_at build
    printf 'kver=%s\npkgver=%s\nliburing=%s\nbpf-tools=%s\n' "$kver" "$pkgver" "$lib" "$(cat "$tools/.ready")" >"$tmp/out/info"
    : >"$tmp/out/.ready"
    rm -rf "$dir"
    mv "$tmp/out" "$dir"
    rm -rf "$tmp"
    trap - EXIT
    log "prepared $dir/src"
    printf '%s\n' "$dir/src"
}

# Guest side -------------------------------------------------------------------------------

PEER_NS=nsim-peer
DUT_ID=1
PEER_ID=2
DUT_V6=2001:db8:1::1
PEER_V6=2001:db8:1::2
NK_PREFIX=2001:db8:2::/64

# The name of the one port of netdevsim device ID (waits for it; udev may rename it).
port_of() {
    local id=$1 i n
    for i in $(seq 1 100); do
        for n in /sys/bus/netdevsim/devices/netdevsim"$id"/net/*; do
            [[ -e $n ]] && { basename "$n"; return 0; }
        done
        sleep 0.1
    done
    die "netdevsim$id has no port"
}

ms() { local t=${EPOCHREALTIME/./}; printf '%s' "$((t / 1000))"; }

counters() { # DIR: split=N fallback=N dropped=N
    local f out=()
    for f in split fallback dropped; do
        out+=("$f=$(cat "$1/$f" 2>/dev/null || printf 'missing')")
    done
    printf '%s' "${out[*]}"
}

cmd_guest() {
    local ksrc=${1:-} ko=${2:-} eth=${3:-} zt=${4:-}
    local usage="usage: upstream.sh guest KSRC NETDEVSIM_KO ETHTOOL ZCRX_T TEST..."
    shift 4 || refuse "$usage"
    (($# > 0)) || refuse "$usage"
    [[ -d $ksrc/$HW && -f $ko && -x $eth && -x $zt ]] || refuse "guest: $ksrc/$HW, $ko, $eth or $zt missing"
    local t
    for t in "$@"; do
        [[ $t =~ ^[A-Za-z0-9_.-]+\.py$ ]] || refuse "guest: $t is not a test file name"
    done
    modprobe psample
    if [[ ! -d /sys/bus/netdevsim ]]; then
        insmod "$ko"
    fi
    local id
    for id in $DUT_ID $PEER_ID; do
        printf '%s 1 4\n' "$id" >/sys/bus/netdevsim/new_device
    done
    # udev renames the ports (eth1 -> eni2np1) at its own pace: let it finish, then move the
    # peer by the name it has at that moment, again if a late rename got in between.
    if command -v udevadm >/dev/null; then
        udevadm settle --timeout=60 || log "udevadm settle timed out; going on"
    fi
    ip netns add "$PEER_NS"
    local dut peer i
    for i in $(seq 1 50); do
        peer=$(port_of $PEER_ID)
        ip link set dev "$peer" netns "$PEER_NS" 2>/dev/null && break
        ((i < 50)) || die "could not move netdevsim$PEER_ID's port $peer into $PEER_NS"
        sleep 0.2
    done
    dut=$(port_of $DUT_ID)
    local ifi_d ifi_p fd_d fd_p
    ifi_d=$(cat "/sys/class/net/$dut/ifindex")
    ifi_p=$(ip netns exec "$PEER_NS" cat "/sys/class/net/$peer/ifindex")
    exec {fd_d}</proc/self/ns/net {fd_p}<"/run/netns/$PEER_NS"
    printf '%s:%s %s:%s\n' "$fd_d" "$ifi_d" "$fd_p" "$ifi_p" >/sys/bus/netdevsim/link_device
    exec {fd_d}<&- {fd_p}<&-
    ip -6 addr add "$DUT_V6/64" dev "$dut" nodad
    ip link set dev "$dut" up
    ip netns exec "$PEER_NS" ip -6 addr add "$PEER_V6/64" dev "$peer" nodad
    ip netns exec "$PEER_NS" ip link set dev "$peer" up
    ip netns exec "$PEER_NS" ip link set dev lo up
    # nk_qlease.py's netkit guest is in LOCAL_PREFIX_V6, behind the DUT
    ip netns exec "$PEER_NS" ip -6 route add "$NK_PREFIX" via "$DUT_V6" dev "$peer"
    local hds=/sys/kernel/debug/netdevsim/netdevsim$DUT_ID/ports/0/hds
    [[ -d $hds ]] || die "$hds missing: not a netdevsim-zcrx module"
    log "NETIF=$dut (netdevsim$DUT_ID), peer $peer in $PEER_NS, linked; $($eth --version | head -n1)"

    printf '@upstream kernel %s\n' "$(uname -r)"
    local py=/usr/bin/python3
    local envs=(
        "PATH=$(dirname "$eth"):$(dirname "$ksrc")/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        NETIF="$dut" LOCAL_V6="$DUT_V6" REMOTE_V6="$PEER_V6"
        REMOTE_TYPE=netns REMOTE_ARGS="$PEER_NS"
        # nk_qlease.py's netkit side (NetDrvContEnv), outside LOCAL_V6's prefix
        LOCAL_PREFIX_V6="$NK_PREFIX"
        PYTHONDONTWRITEBYTECODE=1 NO_COLOR=1 TERM=dumb
    )
    local list rc sub f t0
    for t in "$@"; do
        printf '@upstream file %s\n' "$t"
        if [[ ! -f $ksrc/$HW/$t ]]; then
            printf '@upstream missing %s\n' "$t"
            continue
        fi
        rc=0
        list=$(cd "$ksrc/$HW" && env -i "${envs[@]}" "$py" "./$t" -l 2>&1) || rc=$?
        if ((rc != 0)); then
            printf '@upstream list-exit %s %s\n' "$t" "$rc"
            printf '%s\n' "$list"
            continue
        fi
        while read -r sub; do
            [[ $sub =~ ^[A-Za-z0-9_.]+$ ]] || continue
            for f in split fallback dropped; do
                [[ -f $hds/$f ]] && echo 0 >"$hds/$f"
            done
            printf '@upstream begin %s %s\n' "$t" "$sub"
            rc=0
            t0=$(ms)
            (cd "$ksrc/$HW" && env -i "${envs[@]}" "$py" "./$t" -t "$sub" 2>&1) || rc=$?
            printf '@upstream end %s %s %s %s %s\n' "$t" "$sub" "$rc" "$(($(ms) - t0))" "$(counters "$hds")"
        done <<<"$list"
    done
    printf '@upstream liburing-begin\n'
    rc=0
    t0=$(ms)
    (cd "$(dirname "$zt")" && "./$(basename "$zt")" 2>&1) || rc=$?
    printf '@upstream liburing-end %s %s\n' "$rc" "$(($(ms) - t0))"
}

case ${1:-} in
prepare) cmd_prepare "${@:2}" ;;
guest) cmd_guest "${@:2}" ;;
*)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
