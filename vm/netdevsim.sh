#!/usr/bin/env bash
# netdevsim.sh: build netdevsim.ko out of tree for a Debian 7.x kernel (Debian's config has
# "# CONFIG_NETDEVSIM is not set").
#
#   netdevsim.sh build KVER [--variant stock|zcrx]
#       KVER is a kernel release as `kernel.sh fetch` extracts it, e.g. 7.3.4+deb13-amd64 or
#       7.3.4+deb13-rt-amd64 or 7.3.4+deb13-arm64-16k; its flavour (the suffix) picks the
#       header packages. arm64 flavours are cross-built (aarch64-linux-gnu-gcc, see below).
#       stock: the netdevsim sources of that exact Debian version, unchanged (the default).
#       zcrx:  the same plus the patch series in vm/netdevsim-zcrx/ (series file), which lets
#              io_uring zcrx register on and receive into netdevsim rx queues.
#       Prints the absolute path of the stripped netdevsim.ko as the LAST stdout line; all else
#       goes to stderr. The module depends on psample, which is in Debian's modules tree
#       (`modprobe psample` in the guest, then `insmod <path>`).
#   netdevsim.sh rebase KVER OUTDIR
#       Writes the series as it is applied to KVER (rebased onto that version when it is not
#       the series' base, see rebase_series) to OUTDIR, one patch a file.
#
# What it does, once per KVER (cached under <cache>/netdevsim/KVER/, serialised with flock;
# prepared in a temp directory and renamed into place whole):
#   - apt-get download (private apt config of kernel.sh, nothing installed on the host) of
#     linux-headers-KVER, linux-headers-<kv>-common, linux-kbuild-<kv> and linux-source-<M.m>,
#     all of the same package version;
#   - extracts the three header packages into the cache (not into /usr/src) and points the
#     headers' Makefile, which hard-codes /usr/src/..., at the cached copies;
#   - extracts from the source tarball only what the host tools and netdevsim need, runs
#     `make olddefconfig modules_prepare` there with the host's gcc, and puts the rebuilt
#     modpost and objtool in place of Debian's (built on trixie: they need GLIBC 2.38);
#   - keeps drivers/net/netdevsim/ and drops the rest of the source tree.
#   arm64 (cross): the same with ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- and arch/arm64/ of
#   the whole source tree (its modules_prepare also builds the vDSO); Debian's arm64 kbuild package carries arm64 host tools (fixdep, modpost, ...),
#   so every aarch64 executable in it is replaced with the x86-64 one modules_prepare built.
# Then per variant: copy the sources, apply the patches (zcrx), `make M=...` with the host's
# gcc, strip debug info, in a temp directory renamed into place whole as KVER/stock/ or
# KVER/zcrx-<hash of the patches>/. A second call with the same KVER, variant and patches
# prints the path at once (also after waiting for another run's build of it); another patch
# series builds a module of its own beside it. A build killed at any point leaves only its temp
# directories, which the next build removes (the test hook of lib.sh's test_kill_at names the
# phases: download, extract, prepare, build, install).
#
# Build dependencies (gcc make flex bison libelf-dev libssl-dev bc xz-utils binutils patch)
# are installed with apt-get when missing (needs root then).
#
# Environment: ZCRX_CACHE (default <repo>/.cache), and those of kernel.sh.
set -euo pipefail

export ZCRX_LOG_NAME=netdevsim.sh # log prefix of lib.sh's log/die
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NDIR=$CACHE/netdevsim
PATCH_DIR=$SCRIPT_DIR/netdevsim-zcrx
BUILD_DEPS=(gcc make flex bison libelf-dev libssl-dev bc xz-utils binutils patch python3)
# Make variables for building against Debian's headers with bookworm's gcc-12 (Debian builds
# with gcc-14): skip Debian's compiler check, and drop the two options gcc-12 lacks.
KMAKE_VARS=(
    DEBIAN_KERNEL_NO_CC_VERSION_CHECK=1
    CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=
    CONFIG_DEBUG_INFO_BTF_MODULES=
)
# What a cross build adds (cmd_build sets it for arm64), the module compiler and its strip.
CROSS_VARS=()
MODCC=gcc
STRIP="strip"

# Package version of the kernel KVER: from kernel.sh's info file when the kernel was fetched,
# else the newest linux-headers-KVER on the mirror.
pkgver_of() {
    local kver=$1 v
    v=$(sed -n 's/^pkgver=//p' "$KDIR/$kver/info" 2>/dev/null || true)
    if [[ -z $v ]]; then
        update_lists
        v=$(apt_private apt-cache madison "linux-headers-$kver" 2>/dev/null |
            awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -Vr | head -n1)
    fi
    [[ -n $v ]] || die "no linux-headers-$kver on the mirror (is $kver a kernel release like 7.3.4+deb13-amd64?)"
    printf '%s\n' "$v"
}

run_logged() { # LOGFILE CMD...: run, keep output in LOGFILE, show its tail on failure
    local logf=$1
    shift
    if ! "$@" >"$logf" 2>&1; then
        tail -n 40 "$logf" >&2
        die "failed: $* (full log: $logf)"
    fi
}

# The headers' Makefile says KBUILD_OUTPUT=/usr/src/linux-headers-KVER and includes
# /usr/src/linux-headers-<kv>-common/Makefile. Point both at ROOT/usr/src/... (ROOT = the
# final kbuild dir in the cache), so nothing is written to the host's /usr/src. The scripts/
# and tools/ symlinks are relative (../../lib/linux-kbuild-<kv>/...) and resolve inside the
# cache as they are. Idempotent; run on every build, so a moved cache still works.
repoint_makefile() { # MAKEFILE ROOT KVER
    local mk=$1 root=$2 kver=$3 kv=${3%-"$FLAVOUR"} # FLAVOUR: cmd_build's use_flavour
    sed -i \
        -e "s|^KBUILD_OUTPUT=.*|KBUILD_OUTPUT=$root/usr/src/linux-headers-$kver|" \
        -e "s|^include .*-common/Makefile\$|include $root/usr/src/linux-headers-$kv-common/Makefile|" \
        "$mk"
    if ! grep -qxF "include $root/usr/src/linux-headers-$kv-common/Makefile" "$mk" ||
        ! grep -qxF "KBUILD_OUTPUT=$root/usr/src/linux-headers-$kver" "$mk"; then
        die "could not repoint $mk (its content: $(tr '\n' ' ' <"$mk"))"
    fi
}

# replace_host_tools KB SRC: every aarch64 executable of the kbuild package KB (Debian's arm64
# host tools) by the x86-64 one SRC's cross modules_prepare built at the same path; Debian's
# modpost wrapper and its modpost.real-* by the one modpost (the build's is for this host).
replace_host_tools() {
    local kb=$1 src=$2 f rel from n=0
    while IFS= read -r -d '' f; do
        file -b "$f" | grep -q '^ELF.*aarch64' || continue
        rel=${f#"$kb"/}
        from=$src/$rel
        [[ $rel == scripts/mod/modpost* ]] && from=$src/scripts/mod/modpost
        if [[ -x $from ]]; then
            cp "$from" "$f"
            n=$((n + 1))
        else
            log "no x86-64 build of $rel (not used by a module build): removed"
            rm -f "$f"
        fi
    done < <(find "$kb" -type f -print0)
    ((n)) || die "no arm64 host tool of $kb was replaced"
    log "replaced $n arm64 host tools of $kb with x86-64 builds"
}

# Prepare <NDIR>/KVER/{kbuild,netdevsim-src}: header packages with rebuilt host tools, and
# the pristine netdevsim sources of the same version.
prepare_tree() {
    local kver=$1 top=$NDIR/$1
    [[ -f $top/.ready ]] && return 0

    local kv=${kver%-"$FLAVOUR"} mm
    [[ $kv != "$kver" ]] || die "KVER must end in -$FLAVOUR: $kver"
    mm=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$kv")
    update_lists
    local pkgver
    pkgver=$(pkgver_of "$kver")
    local pkgs=("linux-headers-$kver" "linux-headers-$kv-common" "linux-kbuild-$kv" "linux-source-$mm") p
    log "$kver: package version $pkgver"
    # From the index, or (6.19-7.1: Debian's index no longer lists the headers and sources of an
    # older `linux` upload) from the pool, unverified (lib.sh's fetch_deb says which).
    for p in "${pkgs[@]}"; do
        fetch_deb "$p" "$pkgver" linux >/dev/null ||
            die "$p=$pkgver is not on the mirror; the index has: $(apt_private apt-cache madison "$p" 2>/dev/null |
                awk -F'|' '{gsub(/ /, "", $2); printf "%s ", $2}')"
    done

    local tmp root src
    tmp=$(temp_dir "$NDIR" prep)
    # shellcheck disable=SC2064  # expand tmp now
    trap "rm -rf '$tmp'" EXIT
    root=$tmp/kbuild
    src=$tmp/src
    mkdir -p "$root" "$src"
    for p in "${pkgs[@]:0:3}"; do
        log "extracting $p"
        dpkg-deb -x "$(deb_file "$p" "$pkgver")" "$root"
    done
    local hdr=$root/usr/src/linux-headers-$kver kb=$root/usr/lib/linux-kbuild-$kv
    [[ -f $hdr/Makefile && -d $kb/scripts ]] || die "unexpected layout in linux-headers-$kver / linux-kbuild-$kv"
    repoint_makefile "$hdr/Makefile" "$top/kbuild" "$kver"

    # Source: only what `make olddefconfig modules_prepare` reads (measured with atime on a full
    # tree: top-level Makefiles, every Kconfig, include/, arch/x86/, scripts/, tools/, parts of
    # kernel/ and security/selinux/include/) and drivers/net/netdevsim/.
    local tarname=linux-source-$mm tmember members
    tmember=./usr/src/$tarname.tar.xz
    members=("$tarname/Makefile" "$tarname/Kbuild" "$tarname/Kconfig" "$tarname/*/Kconfig*"
        "$tarname/include" "$tarname/arch/x86" "$tarname/scripts" "$tarname/tools"
        "$tarname/kernel" "$tarname/security/selinux/include" "$tarname/drivers/net/netdevsim")
    # A cross build's modules_prepare reaches further (arm64: the vDSO under lib/vdso, ...):
    # the whole tree then.
    ((${#CROSS_VARS[@]})) && members=("$tarname")
    log "extracting $( ((${#CROSS_VARS[@]})) && echo all || echo "the needed parts") of $tarname.tar.xz"
    local t0=$SECONDS
    if ! dpkg-deb --fsys-tarfile "$(deb_file "linux-source-$mm" "$pkgver")" | tar -xOf - "$tmember" |
        xz -dc -T2 | tar -x -C "$src" --strip-components=1 --wildcards --wildcards-match-slash "${members[@]}"; then
        die "extracting $tmember from linux-source-$mm failed"
    fi
    [[ -f $src/drivers/net/netdevsim/netdev.c ]] || die "no drivers/net/netdevsim in $tarname.tar.xz"
    log "extracted in $((SECONDS - t0)) s ($(du -sh "$src" | cut -f1))"
    test_kill_at extract

    # Host tools: modpost (scripts/mod) and objtool, built by modules_prepare with the host's
    # gcc against the host's glibc, from Debian's config.
    cp "$hdr/.config" "$src/.config"
    log "building modpost and objtool (make olddefconfig modules_prepare)"
    t0=$SECONDS
    run_logged "$tmp/olddefconfig.log" make -C "$src" "${CROSS_VARS[@]}" "${KMAKE_VARS[@]}" olddefconfig
    run_logged "$tmp/modules_prepare.log" make -C "$src" -j"$(nproc)" "${CROSS_VARS[@]}" "${KMAKE_VARS[@]}" modules_prepare
    log "host tools built in $((SECONDS - t0)) s"
    local pair from to
    if ((${#CROSS_VARS[@]})); then
        replace_host_tools "$kb" "$src"
    else
        for pair in "scripts/mod/modpost:scripts/mod/modpost.real-lsb-64" "tools/objtool/objtool:tools/objtool/objtool.real-x86"; do
            from=$src/${pair%%:*}
            to=$kb/${pair#*:}
            [[ -x $from ]] || die "modules_prepare did not build ${pair%%:*}"
            [[ -e $to ]] || to=$kb/${pair%%:*} # no Debian wrapper: replace the tool itself
            cp "$from" "$to"
            log "replaced ${to#"$root"/} with the rebuilt ${pair%%:*}"
        done
    fi

    mkdir -p "$tmp/netdevsim-src/drivers/net"
    cp -a "$src/drivers/net/netdevsim" "$tmp/netdevsim-src/drivers/net/"
    rm -rf "$src"
    printf 'kver=%s\npkgver=%s\nprepared=%s\n' "$kver" "$pkgver" "$(date -u +%FT%TZ)" >"$tmp/info"
    test_kill_at prepare
    # Whole or not at all: .ready is in the tree before it is renamed into place. A $top without
    # it (an older netdevsim.sh killed before its touch) holds no module: replaced.
    touch "$tmp/.ready"
    rm -rf "$top"
    mv "$tmp" "$top"
    trap - EXIT
    log "prepared $top ($(du -sh "$top" | cut -f1))"
}

# The series is written against one source: vm/netdevsim-zcrx/base names it (a package and its
# version, e.g. "linux-source-7.3 7.3.4-1~bpo13+1"). A kernel of that major.minor gets the
# series as it is. Any other kernel gets it rebased by rebase_series: each patch is applied to
# the base's pristine netdevsim sources, and the change it made is merged into the kernel's own
# sources by merge3.py (each change of the base placed by aligning the whole base file with the
# target), so context that differs between versions (a debugfs file 7.3 has and 6.19 lacks,
# right next to lines a patch adds) does not need a hand-made copy. What a version needs beyond that is recorded in vm/netdevsim-zcrx/compat/<M.m>/:
#   drop      patches of the series left out on that version, one file name a line, each with
#             the reason after a '#' (an API the version does not have)
#   fixups    patches applied after the rebased series (API differences), one file name a line
# A merge conflict stops the build and names the patch and file. `netdevsim.sh rebase KVER DIR`
# writes the rebased patches to DIR (the copies for that version, for review or a backport).

# major.minor of a kernel release
mm_of() { sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$1"; }

# The series' base: "PACKAGE VERSION" from vm/netdevsim-zcrx/base.
read_base() {
    local pkg ver rest
    [[ -f $PATCH_DIR/base ]] || die "no $PATCH_DIR/base"
    read -r pkg ver rest <"$PATCH_DIR/base"
    [[ $pkg =~ ^linux-source-[0-9]+\.[0-9]+$ && -n $ver && -z $rest ]] ||
        die "$PATCH_DIR/base: expected 'linux-source-M.m VERSION', got '$(head -n1 "$PATCH_DIR/base")'"
    BASE_PKG=$pkg
    BASE_VER=$ver
    BASE_MM=${pkg#linux-source-}
}

# Series patches for major.minor $1 (without those its compat/<M.m>/drop lists), one name a line;
# with a second argument `all`, every patch of the series (what rebase_series applies to the base).
series_names() {
    local mm=$1 f drop=$PATCH_DIR/compat/$1/drop
    [[ ${2:-} == all ]] && drop=""
    [[ -f $PATCH_DIR/series ]] || die "no $PATCH_DIR/series"
    while read -r f; do
        [[ -z $f || $f == \#* ]] && continue
        [[ -f $PATCH_DIR/$f ]] || die "series names $f, which is not in $PATCH_DIR"
        if [[ -f $drop ]] && sed 's/#.*//; s/[[:space:]]*$//' "$drop" | grep -qxF "$f"; then
            continue
        fi
        printf '%s\n' "$f"
    done <"$PATCH_DIR/series"
}

# Fix-up patches of major.minor $1, one path a line.
fixups_of() {
    local f list=$PATCH_DIR/compat/$1/fixups
    [[ -f $list ]] || return 0
    while read -r f; do
        [[ -z $f || $f == \#* ]] && continue
        [[ -f $PATCH_DIR/compat/$1/$f ]] || die "compat/$1/fixups names $f, which is not there"
        printf '%s\n' "$PATCH_DIR/compat/$1/$f"
    done <"$list"
}

# Hash of what the zcrx variant of kernel release $1 is built from (rebuilt when it changes).
series_hash() {
    local mm f names
    mm=$(mm_of "$1")
    names=$(series_names "$mm")
    {
        cat "$PATCH_DIR/series" "$PATCH_DIR/base"
        for f in "$PATCH_DIR/compat/$mm"/*; do [[ -f $f ]] && cat "$f"; done
        while read -r f; do cat "$PATCH_DIR/$f"; done <<<"$names"
    } | sha256sum | cut -c1-16
}

# The files a patch touches (its "+++ b/..." and "--- a/..." paths), one a line.
patch_files() {
    sed -n -E 's@^(\+\+\+ b|--- a)/([^[:space:]]+).*@\2@p' "$1" | sort -u
}

# Pristine netdevsim sources of the series' base, extracted once from its linux-source package:
# prints the directory that holds drivers/net/netdevsim.
base_src() {
    read_base
    local dir=$NDIR/base-$BASE_VER tmp tarname=$BASE_PKG
    if [[ ! -f $dir/.ready ]]; then
        fetch_deb "$BASE_PKG" "$BASE_VER" linux >/dev/null
        tmp=$(temp_dir "$NDIR" base)
        log "extracting drivers/net/netdevsim of $BASE_PKG $BASE_VER (the series' base)"
        if ! dpkg-deb --fsys-tarfile "$(deb_file "$BASE_PKG" "$BASE_VER")" |
            tar -xOf - "./usr/src/$tarname.tar.xz" | xz -dc -T2 |
            tar -x -C "$tmp" --strip-components=1 "$tarname/drivers/net/netdevsim"; then
            rm -rf "$tmp"
            die "extracting drivers/net/netdevsim from $BASE_PKG $BASE_VER failed"
        fi
        rm -rf "$dir"
        mv "$tmp" "$dir"
        touch "$dir/.ready"
    fi
    printf '%s\n' "$dir"
}

# rebase_series MM TARGET [OUTDIR]: apply the series (minus compat/MM/drop) to the netdevsim
# sources under TARGET (a directory holding drivers/net/netdevsim) by three-way merges from the
# base, then compat/MM's fixups; with OUTDIR, write each rebased patch there (its header, then
# the diff it made to TARGET). A dropped patch is still applied to the base, so that the
# patches after it (written on top of it) apply there; only its own change stays out of TARGET.
rebase_series() {
    local mm=$1 target=$2 out=${3:-} base work f p rel conflicts names all fixups
    read_base
    base=$(base_src)
    names=$(series_names "$mm")
    all=$(series_names "$mm" all)
    fixups=$(fixups_of "$mm")
    work=$(temp_dir "$NDIR" rebase)
    # shellcheck disable=SC2064  # expand work now
    trap "rm -rf '$work'" RETURN
    mkdir -p "$work/b0" "$work/b1" "$work/t0"
    cp -a "$base/drivers" "$work/b1/"
    [[ -z $out ]] || mkdir -p "$out"
    while read -r p; do
        rm -rf "$work/b0/drivers" "$work/t0/drivers"
        cp -a "$work/b1/drivers" "$work/b0/"
        cp -a "$target/drivers" "$work/t0/"
        patch -p1 -N -F0 -s --no-backup-if-mismatch -d "$work/b1" -i "$PATCH_DIR/$p" >&2 ||
            die "$p does not apply to its base ($BASE_PKG $BASE_VER)"
        if ! grep -qxF "$p" <<<"$names"; then
            log "left out $p on $mm (compat/$mm/drop); applied to the base only"
            continue
        fi
        conflicts=()
        while read -r rel; do
            if [[ ! -e $work/b0/$rel ]]; then # created by the patch
                [[ ! -e $target/$rel ]] || die "$p creates $rel, which $mm already has"
                mkdir -p "$(dirname "$target/$rel")"
                cp "$work/b1/$rel" "$target/$rel"
            elif [[ ! -e $work/b1/$rel ]]; then # deleted by the patch
                rm -f "$target/$rel"
            else
                [[ -f $target/$rel ]] || die "$p changes $rel, which $mm does not have"
                python3 "$SCRIPT_DIR/merge3.py" "$target/$rel" "$work/b0/$rel" "$work/b1/$rel" ||
                    conflicts+=("$rel")
            fi
        done < <(patch_files "$PATCH_DIR/$p")
        ((${#conflicts[@]} == 0)) ||
            die "$p does not merge onto $mm: conflict in ${conflicts[*]} (record what $mm needs in compat/$mm/: drop it, or a fixup)"
        if [[ -n $out ]]; then
            rm -rf "$work/a" "$work/b"
            mv "$work/t0" "$work/a"
            mkdir -p "$work/b" "$work/t0"
            cp -a "$target/drivers" "$work/b/"
            sed '/^---$/q' "$PATCH_DIR/$p" >"$out/$p"
            printf '[rebased onto %s by netdevsim.sh from %s %s]\n\n' "$mm" "$BASE_PKG" "$BASE_VER" >>"$out/$p"
            (cd "$work" && diff -ruN a b || true) |
                sed -E -e 's@^(---|\+\+\+) ([^\t]+)\t.*@\1 \2@' -e 's@^diff -ruN a/(.*) b/.*@diff --git a/\1 b/\1@' >>"$out/$p"
        fi
        log "rebased $p onto $mm"
    done <<<"$all"
    while read -r f; do
        [[ -n $f ]] || continue
        log "applying ${f#"$PATCH_DIR"/}"
        patch -p1 -N -F0 -s --no-backup-if-mismatch -d "$target" -i "$f" >&2 ||
            die "${f#"$PATCH_DIR"/} does not apply after the rebased series"
        [[ -z $out ]] || cp "$f" "$out/"
    done <<<"$fixups"
}

# The module of each variant and patch series is in a directory of its own, <kver>/<key>/ (key:
# stock, or zcrx-<hash of the series>), built in a temp directory and renamed into place whole:
# a netdevsim.ko there is complete, and is never rebuilt or replaced under a run that was given
# its path (by a second run that waited for the lock, or by a checkout with another series).
cmd_build() {
    local kver=$1 variant=$2
    [[ $kver =~ ^[0-9]+\.[0-9]+ ]] || die "KVER must be a kernel release like 7.3.4+deb13-amd64, got '$kver'"
    local flav
    flav=$(flavour_of_release "$kver")
    use_flavour "$flav"
    case $ARCH in
        amd64) ;;
        arm64)
            CROSS_VARS=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
            MODCC=aarch64-linux-gnu-gcc
            STRIP=aarch64-linux-gnu-strip
            BUILD_DEPS+=(gcc-aarch64-linux-gnu file)
            ;;
        *) refuse "$kver: netdevsim for $ARCH is not supported" ;;
    esac
    local key
    case $variant in
        stock) key=stock ;;
        zcrx) key=zcrx-$(series_hash "$kver") ;;
        *) die "--variant must be stock or zcrx, got '$variant'" ;;
    esac
    local top=$NDIR/$kver vdir=$NDIR/$kver/$key out=$NDIR/$kver/$key/netdevsim.ko
    if [[ -f $out ]]; then
        log "cached: $out"
        printf '%s\n' "$out"
        return 0
    fi

    need apt-get apt-cache dpkg-deb flock
    ensure_packages "${BUILD_DEPS[@]}"
    setup_apt
    mkdir -p "$NDIR"
    exec 8>"$CACHE/.netdevsim.lock"
    flock 8
    # What a killed build left (its trap never ran): only the dead scripts' temp directories.
    clean_stale "$DEBDIR" dl
    clean_stale "$NDIR" prep
    clean_stale "$top" build
    if [[ -f $out ]]; then
        log "built by another run while this one waited: $out"
        printf '%s\n' "$out"
        return 0
    fi
    prepare_tree "$kver"

    local tmp
    tmp=$(temp_dir "$top" build)
    trap 'rm -rf "$tmp"' EXIT
    cp -a "$top/netdevsim-src" "$tmp/src"
    if [[ $variant == zcrx ]]; then
        local p names
        read_base
        if [[ $(mm_of "$kver") == "$BASE_MM" ]]; then
            names=$(series_names "$BASE_MM")
            while read -r p; do
                log "applying $p"
                # At most one line of fuzz (patch's default is 2): a hunk whose context changed
                # must not land elsewhere (fuzz 3 put 0004's debugfs lines into another function
                # on 6.19).
                run_logged "$tmp/patch.log" patch -p1 -N -F1 --no-backup-if-mismatch -d "$tmp/src" -i "$PATCH_DIR/$p"
            done <<<"$names"
        else
            rebase_series "$(mm_of "$kver")" "$tmp/src" "$tmp/series"
            log "the series as rebased onto $kver: $vdir/series/"
        fi
    fi
    repoint_makefile "$top/kbuild/usr/src/linux-headers-$kver/Makefile" "$top/kbuild" "$kver"
    local m=$tmp/src/drivers/net/netdevsim t0=$SECONDS
    log "building netdevsim.ko ($variant) with $MODCC $($MODCC -dumpfullversion 2>/dev/null)"
    run_logged "$tmp/build.log" make -C "$top/kbuild/usr/src/linux-headers-$kver" M="$m" \
        "${CROSS_VARS[@]}" CC="$MODCC" HOSTCC=gcc CONFIG_NETDEVSIM=m "${KMAKE_VARS[@]}" -j"$(nproc)" modules
    [[ -f $m/netdevsim.ko ]] || die "make succeeded but there is no $m/netdevsim.ko"
    test_kill_at build
    "$STRIP" --strip-debug -o "$tmp/netdevsim.ko" "$m/netdevsim.ko"
    printf '%s\n' "$key" >"$tmp/key"
    test_kill_at install
    # No netdevsim.ko in $vdir (checked under the lock): at most an older netdevsim.sh's half build.
    rm -rf "$vdir"
    mv "$tmp" "$vdir"
    trap - EXIT
    log "built $variant in $((SECONDS - t0)) s: $(du -h "$out" | cut -f1), $(modinfo -F vermagic "$out" 2>/dev/null | xargs), depends: $(modinfo -F depends "$out" 2>/dev/null)"
    printf '%s\n' "$out"
}

# netdevsim.sh rebase KVER OUTDIR: the series as rebase_series makes it for KVER, written to OUTDIR.
cmd_rebase() {
    local kver=$1 out=$2 tmp
    [[ $kver =~ ^[0-9]+\.[0-9]+ ]] || die "KVER must be a kernel release like 7.1.13+deb13-amd64, got '$kver'"
    need apt-get apt-cache dpkg-deb flock python3
    setup_apt
    mkdir -p "$NDIR" "$out"
    exec 8>"$CACHE/.netdevsim.lock"
    flock 8
    prepare_tree "$kver"
    tmp=$(temp_dir "$NDIR" rebase-src)
    cp -a "$NDIR/$kver/netdevsim-src/drivers" "$tmp/"
    rebase_series "$(mm_of "$kver")" "$tmp" "$(realpath -m "$out")"
    rm -rf "$tmp"
    log "wrote the series rebased onto $kver to $out"
}

nsim_usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

case ${1:-} in
    build)
        shift
        [[ $# -ge 1 ]] || nsim_usage
        kv=$1 variant=stock
        shift
        while (($#)); do
            case $1 in
                --variant) [[ $# -ge 2 ]] || nsim_usage; variant=$2; shift 2 ;;
                --variant=*) variant=${1#--variant=}; shift ;;
                *) nsim_usage ;;
            esac
        done
        cmd_build "$kv" "$variant"
        ;;
    rebase)
        [[ $# -eq 3 ]] || nsim_usage
        cmd_rebase "$2" "$3"
        ;;
    *) nsim_usage ;;
esac
