#!/usr/bin/env bash
# build-tree.sh: configure and build a kernel source tree (a developer's own checkout) so that it
# boots under virtme-ng with io_uring zcrx, netdevsim (built in) and friends.
#
#   build-tree.sh PATH [--kasan] [--gcov] [--debug] [--jobs N] [--reconfigure] [--configure-only]
#
#   PATH           a Linux source tree (x86_64; built in place, no O=)
#   --kasan        also CONFIG_KASAN=y + CONFIG_KASAN_INLINE=y (generic KASAN)
#   --gcov         also CONFIG_GCOV_KERNEL=y, and profile io_uring/zcrx.c only: appends
#                  `GCOV_PROFILE_zcrx.o := y` to PATH/io_uring/Makefile when it is not there
#                  (the one edit this script makes to a tree's sources; the rest of the kernel is
#                  built as without --gcov). The guest then has /sys/kernel/debug/gcov/.../zcrx.gcda.
#   --debug        the debug kernel: --kasan + --gcov + vm/debug.config (kmemleak, lockdep,
#                  DEBUG_ATOMIC_SLEEP, DEBUG_NET, DEBUG_LIST, KFENCE, PAGE_POOL_STATS, failslab,
#                  fail_page_alloc, fail_usercopy, fail_function with their debugfs knobs and
#                  stack-trace filter; no DWARF, no drm/wireless, to keep the build short)
#   --jobs N       make -jN (default: nproc)
#   --reconfigure  throw the tree's .config away and start again from virtme-ng's minimal config
#   --configure-only  configure and check the options, do not build; prints the .config path
#
# Prints the absolute path of the tree as the LAST stdout line: `vng --run <that dir>` boots
# arch/x86/boot/bzImage and finds the tree's modules (vng --run <tree>/arch/x86/boot/bzImage is
# treated the same way, because the tree has a .config). Everything else goes to stderr.
# Exits non-zero with "build-tree.sh: ERROR: ..." on failure.
#
# Configuration (only when needed; the applied fragment is kept in PATH/.config.zcrx-conform):
#   - no .config yet, or --reconfigure, or a .config that this script did not configure:
#     `vng --kconfig --config <fragment>` run in the tree (virtme-ng's minimal config: x86_64
#     defconfig + virtme's options + the fragment, then make olddefconfig). A foreign .config is
#     kept as PATH/.config.zcrx-conform.orig first. Without vng: make x86_64_defconfig + the
#     fragment + make olddefconfig (it may then lack what virtme-ng needs to boot).
#   - fragment changed (e.g. --kasan added or dropped), or an option of the fragment is no longer
#     as wanted (the developer edited .config): the fragment is appended to .config and
#     make olddefconfig runs, so the developer's other changes stay.
#   Then every option of the fragment is checked in .config: all CONFIG_X=y must be =y, all
#   CONFIG_X=<value> exactly that, and all "# CONFIG_X is not set" must not be y/m. A missing dependency silently drops an option;
#   the error lists those that did not end up right.
# Build: make -jN (vmlinux, bzImage, modules), output on stderr and in PATH/.zcrx-conform-build.log;
# nothing to do -> make only walks the tree. When CONFIG_MODULES=y, virtme-prep-kdir-mods then
# refreshes PATH/.virtme_mods (what vng would otherwise do at boot).
#
# Writes nothing outside PATH, except apt-get install of missing build dependencies
# (gcc make flex bison libelf-dev libssl-dev bc, --no-install-recommends; needs root then).
# Serialised per tree with flock PATH/.zcrx-conform.lock.
set -euo pipefail

export ZCRX_LOG_NAME=build-tree.sh # log prefix of lib.sh's log/die
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

BUILD_DEPS=(gcc make flex bison libelf-dev libssl-dev bc)

# --- arguments -------------------------------------------------------------------------

TREE="" KASAN=0 GCOV=0 DEBUG=0 JOBS="" RECONF=0 CONFONLY=0
while (($#)); do
    case $1 in
        --kasan) KASAN=1 ;;
        --gcov) GCOV=1 ;;
        --debug) DEBUG=1 KASAN=1 GCOV=1 ;;
        --jobs | -j)
            [[ $# -ge 2 ]] || die "--jobs needs a number"
            JOBS=$2
            shift
            ;;
        --jobs=*) JOBS=${1#--jobs=} ;;
        --reconfigure) RECONF=1 ;;
        --configure-only) CONFONLY=1 ;;
        -h | --help) usage ;;
        -*) die "unknown option '$1' (usage: build-tree.sh PATH [--kasan] [--gcov] [--debug] [--jobs N] [--reconfigure] [--configure-only])" ;;
        *)
            [[ -z $TREE ]] || die "only one PATH, got '$TREE' and '$1'"
            TREE=$1
            ;;
    esac
    shift
done
[[ -n $TREE ]] || die "no kernel tree given (usage: build-tree.sh PATH [--kasan] [--gcov] [--debug] [--jobs N] [--reconfigure] [--configure-only])"
JOBS=${JOBS:-$(nproc)}
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs wants a positive number, got '$JOBS'"
[[ $(uname -m) == x86_64 ]] || die "only x86_64 hosts are supported (this is $(uname -m))"

[[ -d $TREE ]] || die "$TREE is not a directory"
TREE=$(cd "$TREE" && pwd -P)
[[ -f $TREE/Makefile && -f $TREE/Kconfig && -d $TREE/arch/x86 && -f $TREE/scripts/kconfig/merge_config.sh ]] ||
    die "$TREE does not look like a Linux source tree (no Makefile, Kconfig, arch/x86 or scripts/kconfig/)"
[[ -w $TREE ]] || die "$TREE is not writable (the kernel is built in place)"
KVERSION=$(awk -F' *= *' '$1 == "VERSION" {v = $2} $1 == "PATCHLEVEL" {p = $2} $1 == "SUBLEVEL" {s = $2}
    END {if (v != "") print v "." p "." s}' "$TREE/Makefile")
[[ -n $KVERSION ]] || die "cannot read VERSION/PATCHLEVEL from $TREE/Makefile"

# In-tree build for x86: no inherited ARCH/O=/cross settings.
unset ARCH CROSS_COMPILE KBUILD_OUTPUT O
MAKE=(make --no-print-directory -C "$TREE" ARCH=x86)

CONFIG=$TREE/.config
STAMP=$TREE/.config.zcrx-conform
BUILDLOG=$TREE/.zcrx-conform-build.log
DEBUG_CONFIG=$SCRIPT_DIR/debug.config
if ((DEBUG)); then
    [[ -f $DEBUG_CONFIG ]] || die "--debug: $DEBUG_CONFIG not found (it ships next to this script)"
fi

# --- the fragment ---------------------------------------------------------------------------
# Options without a prompt (def_bool or only selected) are listed too: setting them does nothing,
# but the check below then proves that their dependencies hold.
fragment() {
    cat <<'EOF'
# zcrx-conform kernel config fragment (vm/build-tree.sh), v1
# io_uring and zero-copy receive (IO_URING_ZCRX: IO_URING, PAGE_POOL, INET, NET_RX_BUSY_POLL)
CONFIG_IO_URING=y
CONFIG_NET=y
CONFIG_INET=y
CONFIG_IPV6=y
CONFIG_NET_RX_BUSY_POLL=y
CONFIG_PAGE_POOL=y
CONFIG_IO_URING_ZCRX=y
# dma-buf areas (NET_DEVMEM: DMA_SHARED_BUFFER, PAGE_POOL; SYNC_FILE selects DMA_SHARED_BUFFER)
CONFIG_SYNC_FILE=y
CONFIG_DMA_SHARED_BUFFER=y
CONFIG_UDMABUF=y
CONFIG_NET_DEVMEM=y
# netdevsim built in (DEBUG_FS, INET; PSAMPLE built in too so that netdevsim may use it)
CONFIG_DEBUG_FS=y
CONFIG_PSAMPLE=y
CONFIG_NETDEVSIM=y
# topologies: namespaces, veth, tun
CONFIG_NAMESPACES=y
CONFIG_NET_NS=y
CONFIG_USER_NS=y
CONFIG_VETH=y
CONFIG_TUN=y
# userfaultfd (Debian's kernels have it): register.traffic_before_copy_out holds the kernel's
# copy-out of a registration with it
CONFIG_USERFAULTFD=y
# /proc/config.gz, so a guest can tell what it runs
CONFIG_IKCONFIG=y
CONFIG_IKCONFIG_PROC=y
EOF
    if ((KASAN)); then
        cat <<'EOF'
# --kasan
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
CONFIG_KASAN_INLINE=y
EOF
    else
        echo '# CONFIG_KASAN is not set'
    fi
    if ((GCOV)); then
        cat <<'EOF'
# --gcov (only the objects marked GCOV_PROFILE_<obj> := y are profiled)
CONFIG_GCOV_KERNEL=y
# CONFIG_GCOV_PROFILE_ALL is not set
EOF
    fi
    if ((DEBUG)); then
        echo '# --debug (vm/debug.config)'
        grep -E '^(CONFIG_|# CONFIG_.* is not set$)' "$DEBUG_CONFIG"
    fi
}

# --gcov: mark io_uring/zcrx.o for profiling (kbuild's per-object switch).
gcov_mark() {
    local mk=$TREE/io_uring/Makefile
    [[ -f $mk ]] || die "--gcov: $mk not found (a tree without io_uring?)"
    if ! grep -qx 'GCOV_PROFILE_zcrx.o := y' "$mk"; then
        printf '\n# added by zcrx-conform build-tree.sh --gcov\nGCOV_PROFILE_zcrx.o := y\n' >>"$mk"
        log "--gcov: appended 'GCOV_PROFILE_zcrx.o := y' to $mk"
    fi
}

# Print "CONFIG_X: <state>" for every fragment option that is not as wanted in .config.
unmet() {
    local line opt cur
    while IFS= read -r line; do
        if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=y$ ]]; then
            opt=${BASH_REMATCH[1]}
            grep -qx "$opt=y" "$CONFIG" && continue
            cur=$(grep -E "^($opt=|# $opt is not set)" "$CONFIG" | head -n1 || true)
            printf '  %s (wanted =y; .config has: %s)\n' "$opt" "${cur:-nothing, its dependencies are not met}"
        elif [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.+)$ ]]; then
            opt=${BASH_REMATCH[1]}
            grep -qxF "$line" "$CONFIG" && continue
            cur=$(grep -E "^($opt=|# $opt is not set)" "$CONFIG" | head -n1 || true)
            printf '  %s (wanted %s; .config has: %s)\n' "$opt" "${BASH_REMATCH[2]}" "${cur:-nothing, its dependencies are not met}"
        elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
            opt=${BASH_REMATCH[1]}
            cur=$(grep -E "^$opt=[ym]$" "$CONFIG" | head -n1 || true)
            [[ -z $cur ]] || printf '  %s (wanted off; .config has: %s)\n' "$opt" "$cur"
        fi
    done < <(fragment)
}

# --- configure ------------------------------------------------------------------------------

FRAG_TMP=""
cleanup() { [[ -z $FRAG_TMP ]] || rm -f "$FRAG_TMP"; }
trap cleanup EXIT

run_make() { # make output goes to stderr
    "${MAKE[@]}" "$@" </dev/null >&2
}

fresh_config() {
    if [[ -f $CONFIG ]]; then
        if [[ -f $STAMP ]]; then
            log "--reconfigure: replacing .config (kconfig keeps the previous one as .config.old)"
        else
            cp -p "$CONFIG" "$TREE/.config.zcrx-conform.orig"
            log "$CONFIG was not made by this script: saved as .config.zcrx-conform.orig, configuring afresh"
        fi
    fi
    rm -f "$STAMP"
    if command -v vng >/dev/null 2>&1; then
        log "configuring: vng --kconfig --config <fragment> (virtme-ng's minimal config), in $TREE"
        if ! (cd "$TREE" && vng --kconfig --config "$FRAG_TMP" </dev/null >&2); then
            die "vng --kconfig failed in $TREE (output above)"
        fi
    else
        log "WARNING: vng not found (run vm/provision.sh): using make x86_64_defconfig + the fragment; the result may lack virtme-ng's options"
        run_make x86_64_defconfig || die "make x86_64_defconfig failed"
        cat "$FRAG_TMP" >>"$CONFIG"
        run_make olddefconfig || die "make olddefconfig failed"
    fi
}

apply_fragment() { # keep .config, re-apply the fragment on top (later lines win in kconfig)
    log "applying the fragment on top of the existing .config + make olddefconfig"
    { echo; cat "$FRAG_TMP"; } >>"$CONFIG"
    run_make olddefconfig || die "make olddefconfig failed in $TREE"
}

configure() {
    FRAG_TMP=$(mktemp "$TREE/.config.zcrx-conform.new.XXXXXX")
    fragment >"$FRAG_TMP"
    local t0=$SECONDS did=0
    if ((RECONF)) || [[ ! -f $CONFIG || ! -f $STAMP ]]; then
        fresh_config
        did=1
        # virtme-ng appends its own options after the fragment (its debug-info choice among
        # them): when those undid fragment lines, append the fragment once more on top.
        if [[ -n $(unmet) ]]; then
            log "virtme-ng's options overrode fragment lines:"
            unmet >&2
            apply_fragment
        fi
    elif ! cmp -s "$FRAG_TMP" "$STAMP"; then
        log "the fragment changed since the last configuration ($(diff <(grep -v '^# [^C]' "$STAMP") <(grep -v '^# [^C]' "$FRAG_TMP") | grep '^[<>]' | tr '\n' ' '))"
        apply_fragment
        did=1
    elif [[ -n $(unmet) ]]; then
        log ".config no longer has all fragment options as wanted (edited?):"
        unmet >&2
        apply_fragment
        did=1
    fi
    local bad
    bad=$(unmet)
    if [[ -n $bad ]]; then
        # Keep the attempted fragment as the stamp: the .config is still ours (a later call
        # re-applies on top of it instead of starting afresh), and the same call fails the same way.
        mv "$FRAG_TMP" "$STAMP"
        FRAG_TMP=""
        die "after make olddefconfig these options of the fragment are not as wanted (a dependency is missing or something selects them off; 'make menuconfig', then / and the name, shows why):
$bad"
    fi
    mv "$FRAG_TMP" "$STAMP"
    FRAG_TMP=""
    if ((did)); then
        log "configured in $((SECONDS - t0)) s; fragment kept in $STAMP; all $(grep -c '^CONFIG_\|^# CONFIG_.* is not set' "$STAMP") fragment options verified"
    else
        log "configuration up to date (fragment unchanged, options verified)"
    fi
}

# --- main ---------------------------------------------------------------------------------

command -v flock >/dev/null 2>&1 || die "'flock' not found (util-linux)"
exec 9>"$TREE/.zcrx-conform.lock"
if ! flock -n 9; then
    log "another build-tree.sh holds $TREE/.zcrx-conform.lock; waiting"
    flock 9
fi

ensure_packages "${BUILD_DEPS[@]}"
((KASAN)) && KASAN_NOTE=", with KASAN"
((DEBUG)) && KASAN_NOTE=", debug kernel (KASAN, kmemleak, lockdep, fault injection: vm/debug.config)"
if ((GCOV)); then
    KASAN_NOTE="${KASAN_NOTE:-}, with gcov on io_uring/zcrx.c"
    gcov_mark
fi
log "tree $TREE (Linux $KVERSION)${KASAN_NOTE:-}"
configure
if ((CONFONLY)); then
    printf '%s\n' "$CONFIG"
    exit 0
fi

log "building: make -j$JOBS (full log: $BUILDLOG)"
t0=$SECONDS
set +e
"${MAKE[@]}" -j"$JOBS" </dev/null 2>&1 | tee "$BUILDLOG" >&2
rc=${PIPESTATUS[0]}
set -e
if ((rc != 0)); then
    errs=$(grep -E '(error|Error [0-9]+)' "$BUILDLOG" | head -n 20 || true)
    die "make -j$JOBS failed (exit $rc) after $((SECONDS - t0)) s in $TREE; first errors:
${errs:-  (none matched 'error'; see $BUILDLOG)}
full log: $BUILDLOG"
fi
IMAGE=$TREE/arch/x86/boot/bzImage
[[ -s $IMAGE ]] || die "make succeeded but $IMAGE is missing"
log "built in $((SECONDS - t0)) s: $IMAGE ($(du -h "$IMAGE" | cut -f1), $(cat "$TREE/include/config/kernel.release" 2>/dev/null || echo '?'))"

# Module tree for vng (what `vng --run` would otherwise prepare at boot, inside the tree).
if grep -qx 'CONFIG_MODULES=y' "$CONFIG" && [[ -f $TREE/modules.order ]]; then
    moddep=$TREE/.virtme_mods/lib/modules/0.0.0/modules.dep
    if [[ ! -f $moddep || $TREE/modules.order -nt $moddep ]]; then
        if command -v virtme-prep-kdir-mods >/dev/null 2>&1; then
            log "virtme-prep-kdir-mods ($(wc -l <"$TREE/modules.order") modules)"
            (cd "$TREE" && PATH=$PATH:/sbin:/usr/sbin virtme-prep-kdir-mods >&2) ||
                die "virtme-prep-kdir-mods failed in $TREE"
        else
            log "WARNING: virtme-prep-kdir-mods not found; vng will prepare the modules at boot"
        fi
    fi
fi

printf '%s\n' "$TREE"
