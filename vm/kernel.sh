#!/usr/bin/env bash
# kernel.sh: find and fetch Debian's prebuilt kernels for VM runs.
#
#   kernel.sh list [PATTERN]   kernels the Debian mirror offers (sid, trixie-backports,
#                              experimental), newest first, one line each, starting with its
#                              spec: debian:7.3.4, debian+rt:7.3.4, debian@arm64:7.3.4,
#                              debian+16k@arm64:7.3.4, debian+rt@arm64:7.3.4. PATTERN: a
#                              version prefix (7.3) over every flavour, or HEAD:[PREFIX]
#                              (debian+rt:, debian@arm64:7.3) for one flavour
#   kernel.sh fetch SPEC       SPEC = HEAD:VERSION, HEAD = debian[+rt|+16k][@amd64|@arm64]
#                              (the flavours above; @x86_64 and @aarch64 are accepted too),
#                              VERSION = 7.3.4 (exact) | 7.3 (newest 7.3.x)
#                              | latest (newest outside experimental)
#                              | a kernel release, e.g. 7.3.4+deb13-amd64 (its flavour is the
#                                release's: debian:7.3.4+deb13-rt-amd64 is the rt kernel)
#                              Downloads linux-{binary,modules,base}-<kver> with apt-get download,
#                              extracts them under <cache>/kernels/<kver>/root (kver names the
#                              flavour, so flavours never share a directory), runs depmod and
#                              prints the vmlinuz path as the LAST stdout line (all else: stderr).
#                              arm64 flavours use their own private apt lists (<cache>/apt-arm64).
#   kernel.sh update           force a refresh of the private apt lists (amd64)
#   kernel.sh dbg KVER         the debug symbols of a fetched kernel (KVER as under <cache>/kernels,
#                              e.g. 7.3.4+deb13-amd64): downloads linux-image-<KVER>-dbg of the same
#                              package version (about 1.2 GB; the index, else the pool), extracts
#                              only vmlinux (io_uring, net and mm are built in) to
#                              <cache>/kernels/<KVER>/dbg/vmlinux, deletes the .deb,
#                              and prints the vmlinux path as the LAST stdout line. Backtraces in
#                              reports are symbolized from it (report/symbolize.rs).

# The host is never changed: a private apt config (lists, cache, empty dpkg status) under the
# cache dir points at the mirror and keyring that the host's own apt sources use.
#
# Environment:
#   ZCRX_CACHE             cache dir (default: <repo root>/.cache)
#   ZCRX_APT_MAX_AGE       seconds before the private lists are refreshed (default 21600 = 6 h)
#   ZCRX_DEBIAN_MIRROR     override the mirror URI derived from the host's apt sources
#   ZCRX_DEBIAN_KEYRING    override the keyring (Signed-By) derived from the host's apt sources
#   ZCRX_DEBIAN_SUITES     override the suites (default: "sid trixie-backports experimental")
set -euo pipefail

# A command, not a library: the helpers shared by the vm/ scripts are in lib.sh.
if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
    printf 'kernel.sh: run it, do not source it (source vm/lib.sh for the shared helpers)\n' >&2
    return 2
fi

ZCRX_LOG_NAME=${ZCRX_LOG_NAME:-kernel.sh} # log prefix of lib.sh's log/die
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# --- flavours -----------------------------------------------------------------

# The Debian flavour a spec's HEAD names (debian+rt@amd64 -> rt-amd64); exit 2 when none.
flavour_of_head() {
    local head=$1 arch=amd64 mods flav=""
    if [[ $head == *@* ]]; then
        arch=${head#*@}
        head=${head%%@*}
    fi
    case $arch in
        amd64 | x86_64) arch=amd64 ;;
        arm64 | aarch64) arch=arm64 ;;
        *) refuse "unknown architecture '$arch' in '$1' (amd64, arm64)" ;;
    esac
    [[ $head == debian || $head == debian+* ]] || refuse "'$1' is not a Debian kernel (debian[+rt|+16k][@ARCH])"
    mods=${head#debian}
    case $mods in
        "") flav=$arch ;;
        +rt) flav=rt-$arch ;;
        +16k) [[ $arch == arm64 ]] && flav=arm64-16k ;;
    esac
    [[ -n $flav ]] || refuse "Debian has no kernel flavour '$1' (debian, debian+rt, debian@arm64, debian+16k@arm64, debian+rt@arm64)"
    printf '%s\n' "$flav"
}

# The spec HEAD of a flavour (the inverse of flavour_of_head).
head_of_flavour() {
    case $1 in
        amd64) echo debian ;;
        rt-amd64) echo debian+rt ;;
        arm64) echo debian@arm64 ;;
        arm64-16k) echo debian+16k@arm64 ;;
        rt-arm64) echo debian+rt@arm64 ;;
        *) die "no spec for flavour '$1'" ;;
    esac
}

# --- catalogue ----------------------------------------------------------------

# Print "upstream pkgver suite kver" for every linux-binary-<kver> (flavour $FLAVOUR), one
# line per package version, newest first.
catalogue() {
    local names
    names=$(apt_private apt-cache pkgnames linux-binary- 2>/dev/null |
        grep -E "^linux-binary-[0-9]+\.[0-9]+(\.[0-9]+)?(\+deb[0-9]+)?-${FLAVOUR}\$" || true)
    [[ -n $names ]] || return 0
    # shellcheck disable=SC2086  # word splitting of the name list is intended
    apt_private apt-cache madison $names 2>/dev/null | awk -F'|' '
        $3 ~ /Packages/ {
            gsub(/^[ \t]+|[ \t]+$/, "", $1); gsub(/^[ \t]+|[ \t]+$/, "", $2)
            n = split($3, w, /[ \t]+/); if (w[n] == "") n--
            suite = w[n - 2]; sub(/\/.*/, "", suite)
            kver = $1; sub(/^linux-binary-/, "", kver)
            up = $2; sub(/^[0-9]+:/, "", up); sub(/-[^-]*$/, "", up)
            print up, $2, suite, kver
        }' | sort -u | sort -k2,2Vr
}

# "package version installed-size(KiB)" of every indexed version of the packages NAMES.
index_table() {
    (($#)) || return 0
    apt_private apt-cache show "$@" 2>/dev/null | awk '
        /^Package:/ {p = $2} /^Version:/ {v = $2} /^Installed-Size:/ {z = $2}
        /^$/ { if (p != "") print p, v, z + 0; p = v = z = "" }
        END { if (p != "") print p, v, z + 0 }'
}

# Where the modules of kver $1 at package version $2 come from, given index_table output $3
# for linux-modules-* and linux-image-*:
#   modules  linux-modules-<kver> is indexed (7.2 on)
#   image    linux-image-<kver> is a real image package (modules inside; the pre-7.x layout)
#   pool     neither: only linux-binary (signed vmlinuz) and the linux-image meta package are
#            indexed; linux-modules/linux-base are fetched from the pool, unverified
layout_of() {
    local kver=$1 pkgver=$2 table=$3
    if awk -v p="linux-modules-$kver" -v v="$pkgver" '$1 == p && $2 == v {f = 1} END {exit !f}' <<<"$table"; then
        echo modules
    elif awk -v p="linux-image-$kver" -v v="$pkgver" '$1 == p && $2 == v && $3 > 4096 {f = 1} END {exit !f}' <<<"$table"; then
        echo image
    else
        echo pool
    fi
}

# index_table of the modules/image packages of every kver in catalogue output $1.
layout_table() {
    local k names=()
    while read -r _ _ _ k; do names+=("linux-modules-$k" "linux-image-$k"); done <<<"$1"
    local have=()
    mapfile -t have < <(apt_private apt-cache pkgnames linux- 2>/dev/null | grep -Fx -f <(printf '%s\n' "${names[@]}") || true)
    index_table "${have[@]}"
}

# Does upstream version $1 match pattern $2 (exact, or a dotted prefix: 7.3 matches 7.3.4)?
matches() {
    local up=$1 pat=${2#debian:}
    [[ -z $pat || $pat == latest || $up == "$pat" || $up == "$pat".* || $up == "$pat"~* ]]
}

cmd_list() {
    local pat=${1:-} up pkgver suite kver mark n=0 flavours f head
    need apt-get apt-cache
    if [[ $pat == *:* ]]; then
        f=$(flavour_of_head "${pat%%:*}")
        flavours=("$f")
        pat=${pat#*:}
    else
        flavours=("${FLAVOURS[@]}")
    fi
    for f in "${flavours[@]}"; do
        use_flavour "$f"
        head=$(head_of_flavour "$f")
        setup_apt
        update_lists
        local cat table
        cat=$(catalogue)
        table=$(layout_table "$cat")
        while read -r up pkgver suite kver; do
            [[ -n $up ]] || continue
            matches "$up" "$pat" || continue
            mark=""
            [[ $(layout_of "$kver" "$pkgver" "$table") == pool ]] &&
                mark="  [modules unindexed: fetched from the pool, unverified]"
            is_extracted "$kver" && mark+="  [cached]"
            printf '%-26s %-22s %-18s linux-binary-%s%s\n' "$head:$up" "$pkgver" "$suite" "$kver" "$mark"
            n=$((n + 1))
        done <<<"$cat"
    done
    ((n)) || die "no kernels${pat:+ matching \"$pat\"} on the mirror (flavours: ${flavours[*]}; suites: ${SUITES[*]})"
}

# --- fetch ----------------------------------------------------------------------

# Kernel release (uname -r, the modules dir name) of an extracted package kver: usually the
# same; recorded in info as release= when it differs (experimental rc packages).
release_of() {
    local r
    r=$(sed -n 's/^release=//p' "$KDIR/$1/info" 2>/dev/null || true)
    printf '%s' "${r:-$1}"
}
vmlinuz_of() { printf '%s/%s/root/usr/lib/modules/%s/vmlinuz' "$KDIR" "$1" "$(release_of "$1")"; }
is_extracted() { [[ -f $(vmlinuz_of "$1") && -f $KDIR/$1/root/usr/lib/modules/$(release_of "$1")/modules.dep ]]; }

# An already extracted kernel for an exact spec (7.3.4 or 7.3.4+deb13-amd64): print its kver.
cached_exact() {
    local spec=$1 d kver up
    for d in "$KDIR"/*/; do
        [[ -d $d ]] || continue
        kver=$(basename "$d")
        is_extracted "$kver" || continue
        # Exactly this flavour: 7.3.4+deb13-rt-amd64 ends in -amd64 too.
        [[ $(flavour_of_release "$kver" 2>/dev/null) == "$FLAVOUR" ]] || continue
        if [[ $kver == "$spec" ]]; then printf '%s\n' "$kver"; return 0; fi
        up=$(sed -n 's/^upstream=//p' "$d/info" 2>/dev/null || true)
        if [[ $up == "$spec" ]]; then printf '%s\n' "$kver"; return 0; fi
    done
    return 1
}

# apt_locked TOOL...: the tools needed, the private apt config, and the cache's kernel lock
# (held on fd 9 until the script exits): what every download of kernel packages starts with.
apt_locked() {
    need "$@"
    setup_apt
    exec 9>"$CACHE/.kernel.lock"
    flock 9
}

cmd_fetch() {
    local spec=${1:-}
    [[ $spec == debian*:?* ]] || refuse "SPEC must be debian[+FLAVOUR][@ARCH]:<version>|<major.minor>|latest, got '${spec}'"
    local head=${spec%%:*} want=${spec#*:} kver flav
    flav=$(flavour_of_head "$head")
    # A kernel release names its flavour: debian:7.3.4+deb13-rt-amd64 is the rt kernel.
    if [[ $head == debian && $want =~ ^[0-9]+\.[0-9]+.*- ]]; then
        flav=$(flavour_of_release "$want")
    fi
    use_flavour "$flav"
    mkdir -p "$KDIR"

    # An exact version (7.3.4, 7.3.4+deb13-amd64) already extracted: no apt, no network.
    if [[ $want =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] && kver=$(cached_exact "$want"); then
        log "$spec is cached as $kver"
        vmlinuz_of "$kver"; echo
        return 0
    fi

    apt_locked apt-get apt-cache dpkg-deb depmod flock
    # What a killed fetch left (its trap never ran): only the dead scripts' temp directories.
    clean_stale "$KDIR" extract
    clean_stale "$DEBDIR" dl

    update_lists
    local cat up pkgver suite k best=""
    cat=$(catalogue)
    [[ -n $cat ]] || die "the mirror lists no linux-binary-*-$FLAVOUR packages (suites: ${SUITES[*]})"
    while read -r up pkgver suite k; do
        if [[ $want == latest ]]; then
            [[ $suite == experimental ]] && continue
        elif [[ $want == *+deb* ]]; then
            [[ $k == "$want" || $k == "$want-$FLAVOUR" ]] || continue
        else
            matches "$up" "$want" || continue
        fi
        best="$up $pkgver $suite $k"
        break
    done <<<"$cat"
    if [[ -z $best ]]; then
        refuse "$spec is not on the mirror. Available:
$(awk -v h="$(head_of_flavour "$FLAVOUR")" '{printf "  %s:%-14s %-22s %s\n", h, $1, $2, $3}' <<<"$cat")"
    fi
    read -r up pkgver suite kver <<<"$best"
    log "$spec -> $kver (package version $pkgver, $suite)"

    if is_extracted "$kver"; then
        log "already extracted in $KDIR/$kver"
        vmlinuz_of "$kver"; echo
        return 0
    fi

    local layout pkgs p from source=index
    layout=$(layout_of "$kver" "$pkgver" "$(layout_table "$best")")
    case $layout in
        modules) pkgs=("linux-binary-$kver" "linux-modules-$kver" "linux-base-$kver") ;;
        image) pkgs=("linux-binary-$kver" "linux-image-$kver") ;;
        pool) pkgs=("linux-binary-$kver" "linux-modules-$kver" "linux-base-$kver")
            log "$spec: the index has linux-binary-$kver but not its modules (Debian keeps only the newest 'linux' upload's binaries in the index); linux-modules/linux-base come from the pool, unverified by any signed index" ;;
    esac
    log "package layout: $layout (${pkgs[*]})"
    for p in "${pkgs[@]}"; do
        from=$(fetch_deb "$p" "$pkgver" linux)
        [[ $from == index ]] || source=pool
    done

    local tmp root
    tmp=$(temp_dir "$KDIR" extract)
    trap 'rm -rf "$tmp"' EXIT
    root=$tmp/root
    mkdir -p "$root"
    for p in "${pkgs[@]}"; do
        log "extracting $p"
        dpkg-deb -x "$(deb_file "$p" "$pkgver")" "$root"
        test_kill_at extract
    done
    # usrmerge layout: <root>/lib -> usr/lib (depmod -b and virtme look under lib/modules).
    if [[ -d $root/lib && ! -L $root/lib ]]; then
        mkdir -p "$root/usr/lib"
        cp -a "$root/lib/." "$root/usr/lib/"
        rm -rf "${root:?}/lib"
    fi
    [[ -e $root/lib ]] || ln -s usr/lib "$root/lib"
    local rel=$kver mdirs
    if [[ ! -d $root/usr/lib/modules/$rel ]]; then
        mdirs=("$root"/usr/lib/modules/*/)
        [[ ${#mdirs[@]} -eq 1 && -d ${mdirs[0]} ]] || die "cannot tell the kernel release: usr/lib/modules has ${#mdirs[@]} entries"
        rel=$(basename "${mdirs[0]}")
        log "kernel release is $rel"
    fi
    local mdir=$root/usr/lib/modules/$rel
    if [[ ! -f $mdir/vmlinuz ]]; then
        if [[ -f $root/boot/vmlinuz-$rel ]]; then
            ln -s "../../../../boot/vmlinuz-$rel" "$mdir/vmlinuz"
        else
            die "no vmlinuz in linux-binary-$kver (looked in usr/lib/modules/$rel and boot/)"
        fi
    fi
    log "depmod -b <root> $rel"
    depmod -b "$root" "$rel"
    [[ -s $mdir/modules.dep ]] || die "depmod produced no modules.dep in $mdir"
    printf 'spec=%s\nupstream=%s\npkgver=%s\nsuite=%s\nkver=%s\nrelease=%s\nlayout=%s\nsource=%s\nfetched=%s\n' \
        "$spec" "$up" "$pkgver" "$suite" "$kver" "$rel" "$layout" "$source" "$(date -u +%FT%TZ)" >"$tmp/info"

    # info first: a kill between the two moves leaves no tree (fetched again), never a tree
    # without the info that names its release.
    mkdir -p "$KDIR/$kver"
    rm -rf "$KDIR/$kver/root"
    mv "$tmp/info" "$KDIR/$kver/info"
    test_kill_at install
    mv "$root" "$KDIR/$kver/root"
    rm -rf "$tmp"
    trap - EXIT
    log "extracted to $KDIR/$kver/root ($(du -sh "$KDIR/$kver/root" | cut -f1))"
    vmlinuz_of "$kver"; echo
}

cmd_dbg() {
    local kver=${1:-} info pkgver rel flav p dir tmp
    [[ $kver =~ ^[0-9]+\.[0-9]+[0-9A-Za-z.+~-]*$ ]] || refuse "KVER must be a kernel release such as 7.3.4+deb13-amd64, got '$kver'"
    flav=$(flavour_of_release "$kver")
    use_flavour "$flav"
    info=$KDIR/$kver/info
    [[ -f $info ]] || refuse "$kver is not fetched (kernel.sh fetch debian:$kver first)"
    pkgver=$(sed -n 's/^pkgver=//p' "$info")
    rel=$(sed -n 's/^release=//p' "$info")
    [[ -n $pkgver && -n $rel ]] || die "$info names no package version or release"
    dir=$KDIR/$kver/dbg
    if [[ -s $dir/vmlinux ]]; then
        log "debug symbols of $kver are cached"
        printf '%s\n' "$dir/vmlinux"
        return 0
    fi
    apt_locked apt-get apt-cache dpkg-deb tar flock
    clean_stale "$KDIR/$kver" dbg
    update_lists
    p=linux-image-$kver-dbg
    fetch_deb "$p" "$pkgver" linux >/dev/null
    tmp=$(temp_dir "$KDIR/$kver" dbg)
    # Expanded now: the trap may run after this function's locals are gone.
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    # Only the kernel: what a zcrx backtrace runs through is built in (io_uring, net, mm). The
    # member name is fixed here, never taken from the package.
    # (usr/lib/debug/boot/vmlinux-<rel> is a link to it.)
    local member=usr/lib/debug/lib/modules/$rel/vmlinux
    log "extracting $member from $p"
    dpkg-deb --fsys-tarfile "$(deb_file "$p" "$pkgver")" | tar -x -C "$tmp" --no-same-owner "./$member"
    [[ -s $tmp/$member && ! -L $tmp/$member ]] || die "$p has no regular file $member"
    mkdir -p "$tmp/out"
    mv "$tmp/$member" "$tmp/out/vmlinux"
    rm -rf "$dir"
    mv "$tmp/out" "$dir"
    rm -rf "$tmp"
    trap - EXIT
    rm -f "$(deb_file "$p" "$pkgver")"
    log "debug symbols in $dir ($(du -sh "$dir" | cut -f1)); the .deb is deleted"
    printf '%s\n' "$dir/vmlinux"
}

case ${1:-} in
    list) shift; [[ $# -le 1 ]] || usage; cmd_list "${1:-}" ;;
    fetch) shift; [[ $# -eq 1 ]] || usage; cmd_fetch "$1" ;;
    update) need apt-get; setup_apt; update_lists 1 ;;
    dbg) shift; [[ $# -eq 1 ]] || usage; cmd_dbg "$1" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
