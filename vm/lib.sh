# shellcheck shell=bash
# lib.sh: helpers shared by the vm/ scripts (kernel.sh, ethtool.sh, netdevsim.sh, liburing.sh,
# build-tree.sh). Not a command: only sourced, after the caller's own `set -euo pipefail`:
#
#   export ZCRX_LOG_NAME=foo.sh # log prefix
#   # shellcheck source=lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sourcing it defines functions and the variables below, and nothing else: it sets no shell
# options, traps, file descriptors or locks and does not touch the disk (the helpers do, when
# called). The caller's `set -euo pipefail` applies to the helpers too.
#
# Functions:
#   log MSG...           "<ZCRX_LOG_NAME>: MSG" on stderr
#   die MSG...           "<ZCRX_LOG_NAME>: ERROR: MSG" on stderr, then exit 1
#   need CMD...          die unless every CMD is on PATH
#   ensure_packages PKG...  apt-get install (host apt, --no-install-recommends) of the PKGs that
#                        are not installed; dies when that fails or when not root
#   setup_apt            the private apt config under $APTDIR: sources.list for $SUITES on the
#                        mirror and keyring of the host's own Debian archive entry (host_mirror),
#                        empty dpkg status; fills APT_OPTS; creates $APTDIR, $DEBDIR, $KDIR
#   apt_private CMD...   run CMD (apt-get, apt-cache) with APT_OPTS appended
#   update_lists [1]     private `apt-get update` when the lists are older than $MAX_AGE (or 1:
#                        always); keeps going with old lists when the update fails
#   download NAME VER    `apt-get download NAME=VER` into $DEBDIR (kept; skipped when present)
#   indexed NAME VER     true when the private lists carry NAME at version VER
#   download_pool NAME VER SRC   NAME_VER_<arch|all>.deb straight from the mirror's pool directory
#                        of source package SRC (for packages the archive keeps in the pool but no
#                        longer indexes, e.g. linux-modules-7.1.13+deb13-amd64); NOT verified by
#                        any signed index, so it checks the control fields and the member names
#   fetch_deb NAME VER SRC       download if indexed, else download_pool (logs which)
#   deb_file NAME VER    path of that .deb
#   temp_dir DIR NAME    a new temp directory DIR/.NAME.<pid>.XXXXXX (the pid of the script)
#   clean_stale DIR NAME remove DIR/.NAME.<pid>.* whose script is gone (killed before its own
#                        cleanup ran); safe while other scripts work there (theirs are alive)
#   FLAVOURS             the Debian kernel flavours the scripts know, one word each
#   use_flavour FLAV     select Debian flavour FLAV (one of FLAVOURS): sets FLAVOUR, ARCH and
#                        APTDIR (amd64: $CACHE/apt; another architecture: $CACHE/apt-<arch>, so
#                        one architecture's lists never replace another's); dies on an unknown one
#   flavour_of_release KVER  the flavour a kernel release ends in (7.3.4+deb13-rt-amd64 ->
#                        rt-amd64, the longest match); exit 2 when it ends in none
#   test_kill_at PHASE   the test hook of tests/cache_faults.rs: with
#                        ZCRX_CONFORM_TEST_KILL_AT=PHASE, SIGKILL to the script's whole process
#                        group there, as a power cut would (kernel.sh: download, extract,
#                        install; netdevsim.sh: download, extract, prepare, build, install;
#                        liburing.sh: download, build, install)
#   host_mirror, lists_fresh   used by the above
# stdout is left to the caller (the scripts print their result path as the LAST stdout line);
# every helper logs and runs apt with its output on stderr.
#
# Variables set (the caller may read them):
#   SCRIPT_DIR  the vm/ directory          REPO_ROOT  its parent
#   CACHE       cache dir (absolute)       APTDIR=$CACHE/apt  DEBDIR=$CACHE/debs  KDIR=$CACHE/kernels
#   MAX_AGE     seconds before the private lists are refreshed
#   SUITES      array of Debian suites     ARCH=amd64 (Debian architecture, set by use_flavour)
#   FLAVOUR     kernel flavour (amd64; use_flavour sets it)   APT_OPTS   array, filled by setup_apt
#   MIRROR_URI  the mirror (no trailing /), set by setup_apt
#
# Environment read:
#   ZCRX_LOG_NAME          log prefix (default: the script's file name)
#   ZCRX_CACHE             cache dir (default: <repo root>/.cache)
#   ZCRX_APT_MAX_AGE       default 21600 (6 h)
#   ZCRX_DEBIAN_MIRROR     override the mirror URI derived from the host's apt sources
#   ZCRX_DEBIAN_KEYRING    override the keyring (Signed-By) derived from the host's apt sources
#   ZCRX_DEBIAN_SUITES     default "sid trixie-backports experimental"
#   ZCRX_CONFORM_TEST_KILL_AT  tests only: see test_kill_at

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    printf '%s: a library for the vm/ scripts; source it, do not run it\n' "${0##*/}" >&2
    exit 2
fi

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPT_DIR")
CACHE=$(realpath -m "${ZCRX_CACHE:-$REPO_ROOT/.cache}")
APTDIR=$CACHE/apt
DEBDIR=$CACHE/debs
KDIR=$CACHE/kernels
MAX_AGE=${ZCRX_APT_MAX_AGE:-21600}
read -r -a SUITES <<<"${ZCRX_DEBIAN_SUITES:-sid trixie-backports experimental}"
ARCH=amd64
# shellcheck disable=SC2034  # read by the scripts (kernel.sh, netdevsim.sh)
FLAVOUR=amd64
# Debian's kernel flavours of 7.x that the kernel spec names (debian, debian+rt, debian@arm64,
# debian+16k@arm64, debian+rt@arm64); harness/src/vm/spec.rs has the same list.
FLAVOURS=(amd64 rt-amd64 arm64 arm64-16k rt-arm64)

log() { printf '%s: %s\n' "${ZCRX_LOG_NAME:-${0##*/}}" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "${ZCRX_LOG_NAME:-${0##*/}}" "$*" >&2; exit 1; }
# refuse MSG: like die, for input that names nothing usable (a version not on the mirror): exit 2,
# which the harness reports as the user's bad input; die's 1 is the machine's (exit 4).
refuse() { printf '%s: ERROR: %s\n' "${ZCRX_LOG_NAME:-${0##*/}}" "$*" >&2; exit 2; }

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

use_flavour() {
    local f
    for f in "${FLAVOURS[@]}"; do
        if [[ $f == "$1" ]]; then
            FLAVOUR=$1
            ARCH=${1#rt-}
            ARCH=${ARCH%-16k}
            APTDIR=$CACHE/apt
            [[ $ARCH == amd64 ]] || APTDIR=$CACHE/apt-$ARCH
            return 0
        fi
    done
    die "unknown kernel flavour '$1' (known: ${FLAVOURS[*]})"
}

flavour_of_release() {
    local f best=""
    for f in "${FLAVOURS[@]}"; do
        [[ $1 == *-"$f" && ${#f} -gt ${#best} ]] && best=$f
    done
    [[ -n $best ]] || refuse "kernel release '$1' ends in no known flavour (${FLAVOURS[*]})"
    printf '%s\n' "$best"
}

temp_dir() { mktemp -d "$1/.$2.$$.XXXXXX"; }

# Writes an executable wrapper OUT that runs TARGET with LIBDIR first in LD_LIBRARY_PATH (a
# program extracted from a .deb whose libraries were extracted beside it, nothing installed).
lib_wrapper() {
    local out=$1 libdir=$2 target=$3
    # shellcheck disable=SC2016  # $LD_LIBRARY_PATH and $@ are for the wrapper
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' "$libdir" "$target" >"$out"
    chmod +x "$out"
}

# The contents of the `.ready` file of a prepared version under DIR (cache directories named by
# package version): the version WANT (an epoch is dropped), else the newest; fails if none is ready.
cached_ready() {
    local dir=$1 want=${2:-} d
    local dirs=()
    [[ -d $dir ]] && mapfile -t dirs < <(find "$dir" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' | sort -Vr)
    for d in "${dirs[@]}"; do
        [[ -z $want || $d == "${want#*:}" ]] || continue
        [[ -f $dir/$d/.ready ]] || continue
        cat "$dir/$d/.ready"
        return 0
    done
    return 1
}

clean_stale() {
    local d pid
    for d in "$1/.$2."*; do
        [[ -d $d ]] || continue
        pid=${d#"$1/.$2."}
        pid=${pid%%.*}
        [[ $pid =~ ^[0-9]+$ ]] || continue
        kill -0 "$pid" 2>/dev/null && continue
        log "removing $d (left by a run that was killed)"
        rm -rf "$d"
    done
}

test_kill_at() {
    if [[ ${ZCRX_CONFORM_TEST_KILL_AT:-} == "$1" ]]; then
        log "test hook: SIGKILL at $1"
        kill -KILL 0
    fi
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
    local f found="" nullglob
    nullglob=$(shopt -p nullglob || true) # restored below: the caller's setting stays as it was
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
    eval "$nullglob"
    printf '%s\n' "$found"
}

APT_OPTS=()
MIRROR_URI=""
setup_apt() {
    local uri key found
    found=$(host_mirror)
    uri=${found%%$'\t'*}
    key=${found#*$'\t'}
    [[ $found == *$'\t'* ]] || key=""
    uri=${ZCRX_DEBIAN_MIRROR:-$uri}
    key=${ZCRX_DEBIAN_KEYRING:-$key}
    MIRROR_URI=${uri%/}
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
# present, warn and go on with them. ($1 = 1: force; only kernel.sh's `update` passes it.)
# shellcheck disable=SC2120  # most callers pass no argument
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

# --- downloads -------------------------------------------------------------------

# .deb file name apt-get download gives NAME=VERSION (epoch colon encoded as %3a).
deb_file() { printf '%s/%s_%s_%s.deb' "$DEBDIR" "$1" "${2//:/%3a}" "$ARCH"; }

download() {
    local name=$1 ver=$2 f tmp
    f=$(deb_file "$name" "$ver")
    if [[ -s $f ]]; then
        log "have $(basename "$f") ($(du -h "$f" | cut -f1))"
        return 0
    fi
    tmp=$(temp_dir "$DEBDIR" dl)
    log "downloading $name=$ver"
    if ! (cd "$tmp" && apt_private apt-get download -q "$name=$ver" >&2); then
        rm -rf "$tmp"
        die "apt-get download $name=$ver failed"
    fi
    test_kill_at download
    mv "$tmp"/*.deb "$f"
    rmdir "$tmp"
    log "got $(basename "$f") ($(du -h "$f" | cut -f1))"
}

# Is NAME=VER in the private lists?
indexed() {
    apt_private apt-cache madison "$1" 2>/dev/null |
        awk -F'|' -v v="$2" '{gsub(/ /, "", $2)} $2 == v {f = 1} END {exit !f}'
}

# The pool path of source package SRC: pool/main/<l or libX>/<src>.
pool_dir() {
    local src=$1 pfx=${1:0:1}
    [[ $src == lib?* ]] && pfx=${src:0:4}
    printf '%s/pool/main/%s/%s' "$MIRROR_URI" "$pfx" "$src"
}

# download_pool NAME VER SRC: a .deb the archive still has in its pool but no index lists (Debian
# drops the binaries of an older `linux` upload from trixie-backports' index while the pool
# keeps them). apt's own downloader (apt-helper, so the host's apt proxy settings apply) fetches
# it; no signed index vouches for it, so before it is kept: its control file must name NAME and
# VER, and no member and no link target may leave the package root, and none may be a device or fifo. Kept as deb_file NAME VER.
download_pool() {
    local name=$1 ver=$2 src=$3 f tmp a url got_name got_ver bad
    f=$(deb_file "$name" "$ver")
    if [[ -s $f ]]; then
        log "have $(basename "$f") ($(du -h "$f" | cut -f1); from the pool, unindexed)"
        return 0
    fi
    [[ -n $MIRROR_URI ]] || die "download_pool before setup_apt"
    [[ -x /usr/lib/apt/apt-helper ]] || die "/usr/lib/apt/apt-helper not found (package apt)"
    tmp=$(temp_dir "$DEBDIR" dl)
    for a in "$ARCH" all; do
        url="$(pool_dir "$src")/${name}_${ver#*:}_${a}.deb"
        [[ $ver == *:* ]] || url="$(pool_dir "$src")/${name}_${ver}_${a}.deb"
        log "downloading $name=$ver from the pool (not in any index; unverified): ${url#"$MIRROR_URI"/}"
        if /usr/lib/apt/apt-helper "${APT_OPTS[@]}" download-file "$url" "$tmp/p.deb" >"$tmp/log" 2>&1; then
            break
        fi
        rm -f "$tmp/p.deb"
    done
    if [[ ! -s $tmp/p.deb ]]; then
        sed 's/^/  /' "$tmp/log" >&2
        rm -rf "$tmp"
        return 1
    fi
    got_name=$(dpkg-deb -f "$tmp/p.deb" Package 2>/dev/null || true)
    got_ver=$(dpkg-deb -f "$tmp/p.deb" Version 2>/dev/null || true)
    if [[ $got_name != "$name" || $got_ver != "$ver" ]]; then
        rm -rf "$tmp"
        die "the pool's file for $name=$ver says Package '$got_name' Version '$got_ver'"
    fi
    bad=$(dpkg-deb --fsys-tarfile "$tmp/p.deb" | tar -tvf - | awk '
        # 1 when path p (relative to the package root) climbs above it at any point
        function escapes(p,   c, n, i, d) {
            if (p ~ /^\//) return 1
            n = split(p, c, "/"); d = 0
            for (i = 1; i <= n; i++) {
                if (c[i] == "..") { if (--d < 0) return 1 } else if (c[i] != "." && c[i] != "") d++
            }
            return 0
        }
        $1 !~ /^[-dlh]/ { print; next }
        {
            n = $6; for (i = 7; i <= NF && $i != "->"; i++) n = n " " $i
            if (escapes(n)) { print; next }
            if ($1 ~ /^l/ && i < NF) {
                t = $(i + 1); for (j = i + 2; j <= NF; j++) t = t " " $j
                d = n; sub(/\/[^\/]*$/, "", d)
                if (t ~ /^\// || escapes(d "/" t)) print
            }
        }' | head -n 3)
    if [[ -n $bad ]]; then
        rm -rf "$tmp"
        die "the pool's $name=$ver has members outside its root or special files: $bad"
    fi
    mv "$tmp/p.deb" "$f"
    rm -rf "$tmp"
    log "got $(basename "$f") ($(du -h "$f" | cut -f1)) from the pool"
}

# fetch_deb NAME VER SRC: from the index when it has NAME=VER, else from SRC's pool directory.
# Prints "index" or "pool" (the caller records it).
fetch_deb() {
    if indexed "$1" "$2"; then
        download "$1" "$2"
        printf 'index\n'
    elif download_pool "$1" "$2" "$3"; then
        printf 'pool\n'
    else
        die "$1=$2 is neither in the index nor in the pool ($(pool_dir "$3"))"
    fi
}
