#!/usr/bin/env bash
# kernel.sh: find and fetch Debian's prebuilt kernels for VM runs.
#
#   kernel.sh list [PATTERN]   kernels the Debian mirror offers (sid, trixie-backports,
#                              experimental), newest first: debian:<version> lines
#   kernel.sh fetch SPEC       SPEC = debian:7.3.4 (exact) | debian:7.3 (newest 7.3.x)
#                              | debian:latest (newest outside experimental)
#                              | debian:<kernel release, e.g. 7.3.4+deb13-amd64>
#                              Downloads linux-{binary,modules,base}-<kver> with apt-get download,
#                              extracts them under <cache>/kernels/<kver>/root, runs depmod and
#                              prints the vmlinuz path as the LAST stdout line (all else: stderr).
#   kernel.sh update           force a refresh of the private apt lists
#
# The host is never changed: a private apt config (lists, cache, empty dpkg status) under the
# cache dir points at the mirror and keyring that the host's own apt sources use.
#
# Environment:
#   ZCRX_CACHE             cache dir (default: <repo root>/.cache)
#   ZCRX_APT_MAX_AGE       seconds before the private lists are refreshed (default 21600 = 6 h)
#   ZCRX_DEBIAN_MIRROR     override the mirror URI derived from the host's apt sources
#   ZCRX_DEBIAN_KEYRING    override the keyring (Signed-By) derived from the host's apt sources
#   ZCRX_DEBIAN_SUITES     override the suites (default: "sid trixie-backports experimental")
#   ZCRX_KERNEL_FLAVOUR    kernel flavour (default amd64)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPT_DIR")
CACHE=$(realpath -m "${ZCRX_CACHE:-$REPO_ROOT/.cache}")
APTDIR=$CACHE/apt
DEBDIR=$CACHE/debs
KDIR=$CACHE/kernels
MAX_AGE=${ZCRX_APT_MAX_AGE:-21600}
read -r -a SUITES <<<"${ZCRX_DEBIAN_SUITES:-sid trixie-backports experimental}"
ARCH=amd64
FLAVOUR=${ZCRX_KERNEL_FLAVOUR:-amd64}

# Other vm/ scripts source this file for its apt functions and set ZCRX_LOG_NAME.
log() { printf '%s: %s\n' "${ZCRX_LOG_NAME:-kernel.sh}" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "${ZCRX_LOG_NAME:-kernel.sh}" "$*" >&2; exit 1; }

# ensure_packages PKG...: installs the host packages that are missing (bookworm's apt, never the
# private config), --no-install-recommends; `apt-get update` only when the first try fails.
# apt's output goes to stderr only when it fails (stdout is reserved for the scripts' result).
ensure_packages() {
    local p missing=() st l
    for p in "$@"; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [[ $st == installed ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ ${EUID:-$(id -u)} -eq 0 ]] || die "missing packages (${missing[*]}); run as root or install them"
    log "installing: ${missing[*]}"
    l=$(mktemp)
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; }; } >"$l" 2>&1; then
        cat "$l" >&2
        rm -f "$l"
        die "apt-get install ${missing[*]} failed (log above)"
    fi
    rm -f "$l"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run vm/provision.sh; needs apt, dpkg, kmod)"
    done
}

# --- private apt configuration ----------------------------------------------

# Print "URI<TAB>KEYRING" of the host's main Debian archive entry: a deb source with
# component main whose suite is the host's codename (so not -security, not third-party
# repos that use their own components).
host_mirror() {
    local codename
    codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null | tr -d '"')
    [[ -n $codename ]] || die "cannot tell the host's Debian codename from /etc/os-release"
    local f found=""
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        found=$(awk -v cn="$codename" '
            function flush(   n, s, i, ok, u) {
                if (!done && types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) !~ /^no/ &&
                    (" " comps " ") ~ /[ \t]main[ \t]/) {
                    n = split(suites, s, /[ \t]+/); ok = 0
                    for (i = 1; i <= n; i++) if (s[i] == cn) ok = 1
                    if (ok) { split(uris, u, /[ \t]+/); print u[1] "\t" signed; done = 1 }
                }
                types = uris = suites = comps = signed = enabled = ""; last = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { if (last == "signed-by") signed = "inline"; next }
            {
                k = tolower($0); sub(/:.*/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
                last = k
                if (k == "types") types = v; else if (k == "uris") uris = v
                else if (k == "suites") suites = v; else if (k == "components") comps = v
                else if (k == "enabled") enabled = v
                else if (k == "signed-by") signed = (v == "" ? "inline" : v)
            }
            END { flush() }' "$f")
        [[ -n $found ]] && break
    done
    if [[ -z $found ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -r $f ]] || continue
            found=$(awk -v cn="$codename" '
                /^[ \t]*deb[ \t]/ && !done {
                    signed = ""; i = 2
                    if ($2 ~ /^\[/) {
                        for (; i <= NF; i++) {
                            o = $i; gsub(/[][]/, "", o)
                            if (o ~ /^signed-by=/) { sub(/^signed-by=/, "", o); signed = o }
                            if ($i ~ /\]$/) { i++; break }
                        }
                    }
                    uri = $i; suite = $(i + 1); main = 0
                    for (j = i + 2; j <= NF; j++) if ($j == "main") main = 1
                    if (suite == cn && main) { print uri "\t" signed; done = 1 }
                }' "$f")
            [[ -n $found ]] && break
        done
    fi
    shopt -u nullglob
    printf '%s\n' "$found"
}

APT_OPTS=()
setup_apt() {
    local uri key found
    found=$(host_mirror)
    uri=${found%%$'\t'*}
    key=${found#*$'\t'}
    [[ $found == *$'\t'* ]] || key=""
    uri=${ZCRX_DEBIAN_MIRROR:-$uri}
    key=${ZCRX_DEBIAN_KEYRING:-$key}
    [[ -n $uri ]] || die "no Debian archive entry (suite = host codename, component main) in /etc/apt/sources.list{,.d/*}; set ZCRX_DEBIAN_MIRROR"
    if [[ -z $key || $key == inline ]]; then
        key=/usr/share/keyrings/debian-archive-keyring.gpg
        [[ -r $key ]] || key=""
    fi
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/preferences.d" "$DEBDIR" "$KDIR"
    [[ -e $APTDIR/status ]] || : >"$APTDIR/status"
    local opt="" s content=""
    [[ -n $key ]] && opt="[signed-by=$key] "
    for s in "${SUITES[@]}"; do content+="deb ${opt}${uri} ${s} main"$'\n'; done
    if [[ ! -f $APTDIR/sources.list ]] || [[ $(<"$APTDIR/sources.list")$'\n' != "$content" ]]; then
        printf '%s' "$content" >"$APTDIR/sources.list"
        rm -f "$APTDIR/updated"
    fi
    APT_OPTS=(
        -o "Dir::Etc::sourcelist=$APTDIR/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State=$APTDIR"
        -o "Dir::State::Lists=$APTDIR/lists"
        -o "Dir::State::status=$APTDIR/status"
        -o "Dir::State::extended_states=$APTDIR/extended_states"
        -o "Dir::Cache=$APTDIR/cache"
        -o "Dir::Cache::archives=$APTDIR/cache/archives"
        -o "Dir::Cache::pkgcache=$APTDIR/cache/pkgcache.bin"
        -o "Dir::Cache::srcpkgcache=$APTDIR/cache/srcpkgcache.bin"
        -o "Dir::Etc::preferences=$APTDIR/preferences"
        -o "Dir::Etc::preferencesparts=$APTDIR/preferences.d"
        -o "APT::Architecture=$ARCH"
        -o "APT::Architectures=$ARCH"
        -o "APT::Sandbox::User=root"
        -o "Acquire::Languages=none"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
    )
}

apt_private() { "$@" "${APT_OPTS[@]}"; }

lists_fresh() {
    [[ -f $APTDIR/updated ]] || return 1
    local now mtime
    now=$(date +%s)
    mtime=$(stat -c %Y "$APTDIR/updated")
    ((now - mtime < MAX_AGE))
}

# Refresh the private lists if older than MAX_AGE (or forced). On failure with old lists
# present, warn and go on with them.
update_lists() {
    local force=${1:-0}
    if ((!force)) && lists_fresh; then return 0; fi
    log "apt-get update (private lists in $APTDIR/lists; suites: ${SUITES[*]})"
    if apt_private apt-get update -q >&2; then
        touch "$APTDIR/updated"
    elif compgen -G "$APTDIR/lists/*Packages*" >/dev/null; then
        log "WARNING: apt-get update failed; using the lists from $(stat -c %y "$APTDIR/lists" | cut -d. -f1)"
    else
        die "apt-get update for the private Debian lists failed and there are no older lists"
    fi
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

# Does upstream version $1 match pattern $2 (exact, or a dotted prefix: 7.3 matches 7.3.4)?
matches() {
    local up=$1 pat=${2#debian:}
    [[ -z $pat || $pat == latest || $up == "$pat" || $up == "$pat".* || $up == "$pat"~* ]]
}

cmd_list() {
    local pat=${1:-} up pkgver suite kver mark n=0
    need apt-get apt-cache
    setup_apt
    update_lists
    while read -r up pkgver suite kver; do
        matches "$up" "$pat" || continue
        mark=""
        is_extracted "$kver" && mark="  [cached]"
        printf 'debian:%-14s %-22s %-18s linux-binary-%s%s\n' "$up" "$pkgver" "$suite" "$kver" "$mark"
        n=$((n + 1))
    done < <(catalogue)
    ((n)) || die "no kernels${pat:+ matching \"$pat\"} on the mirror (suites: ${SUITES[*]})"
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
        [[ $kver == *"-$FLAVOUR" ]] || continue
        if [[ $kver == "$spec" ]]; then printf '%s\n' "$kver"; return 0; fi
        up=$(sed -n 's/^upstream=//p' "$d/info" 2>/dev/null || true)
        if [[ $up == "$spec" ]]; then printf '%s\n' "$kver"; return 0; fi
    done
    return 1
}

# .deb file name apt-get download gives NAME=VERSION (epoch colon encoded as %3a).
deb_file() { printf '%s/%s_%s_%s.deb' "$DEBDIR" "$1" "${2//:/%3a}" "$ARCH"; }

download() {
    local name=$1 ver=$2 f tmp
    f=$(deb_file "$name" "$ver")
    if [[ -s $f ]]; then
        log "have $(basename "$f") ($(du -h "$f" | cut -f1))"
        return 0
    fi
    tmp=$(mktemp -d "$DEBDIR/.dl.XXXXXX")
    log "downloading $name=$ver"
    if ! (cd "$tmp" && apt_private apt-get download -q "$name=$ver" >&2); then
        rm -rf "$tmp"
        die "apt-get download $name=$ver failed"
    fi
    mv "$tmp"/*.deb "$f"
    rmdir "$tmp"
    log "got $(basename "$f") ($(du -h "$f" | cut -f1))"
}

cmd_fetch() {
    local spec=${1:-}
    [[ $spec == debian:?* ]] || die "SPEC must be debian:<version>|debian:<major.minor>|debian:latest, got '${spec}'"
    local want=${spec#debian:} kver
    mkdir -p "$KDIR"

    # An exact version (7.3.4, 7.3.4+deb13-amd64) already extracted: no apt, no network.
    if [[ $want =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] && kver=$(cached_exact "$want"); then
        log "debian:$want is cached as $kver"
        vmlinuz_of "$kver"; echo
        return 0
    fi

    need apt-get apt-cache dpkg-deb depmod flock
    setup_apt
    exec 9>"$CACHE/.kernel.lock"
    flock 9

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
        die "debian:$want is not on the mirror. Available:
$(awk '{printf "  debian:%-14s %-22s %s\n", $1, $2, $3}' <<<"$cat")"
    fi
    read -r up pkgver suite kver <<<"$best"
    log "debian:$want -> $kver (package version $pkgver, $suite)"

    if is_extracted "$kver"; then
        log "already extracted in $KDIR/$kver"
        vmlinuz_of "$kver"; echo
        return 0
    fi

    local pkgs=("linux-binary-$kver" "linux-modules-$kver" "linux-base-$kver") p
    for p in "${pkgs[@]}"; do
        apt_private apt-cache madison "$p" 2>/dev/null | awk -F'|' -v v="$pkgver" '{gsub(/ /,"",$2)} $2 == v {f=1} END {exit !f}' \
            || die "package $p=$pkgver is not on the mirror (the layout before 7.x had linux-image-*; not supported)"
    done
    for p in "${pkgs[@]}"; do download "$p" "$pkgver"; done

    local tmp root
    tmp=$(mktemp -d "$KDIR/.extract.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    root=$tmp/root
    mkdir -p "$root"
    for p in "${pkgs[@]}"; do
        log "extracting $p"
        dpkg-deb -x "$(deb_file "$p" "$pkgver")" "$root"
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
    printf 'spec=%s\nupstream=%s\npkgver=%s\nsuite=%s\nkver=%s\nrelease=%s\nfetched=%s\n' \
        "$spec" "$up" "$pkgver" "$suite" "$kver" "$rel" "$(date -u +%FT%TZ)" >"$tmp/info"

    mkdir -p "$KDIR/$kver"
    rm -rf "$KDIR/$kver/root"
    mv "$root" "$KDIR/$kver/root"
    mv "$tmp/info" "$KDIR/$kver/info"
    rm -rf "$tmp"
    trap - EXIT
    log "extracted to $KDIR/$kver/root ($(du -sh "$KDIR/$kver/root" | cut -f1))"
    vmlinuz_of "$kver"; echo
}

# Sourced (by netdevsim.sh, ethtool.sh): define the functions only.
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

case ${1:-} in
    list) shift; [[ $# -le 1 ]] || usage; cmd_list "${1:-}" ;;
    fetch) shift; [[ $# -eq 1 ]] || usage; cmd_fetch "$1" ;;
    update) need apt-get; setup_apt; update_lists 1 ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
