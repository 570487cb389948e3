#!/usr/bin/env bash
# guest-harness.sh: the harness built for arm64 guests (aarch64, statically linked), from this
# checkout, with the host's own rustc: Debian's `rust-src` of exactly the host rustc's version
# (trixie-backports) gives the standard library's source, and cargo's -Zbuild-std builds it for
# aarch64-unknown-linux-gnu; Debian's cross gcc links (docs/flavours.md says why this way).
#
#   vm/guest-harness.sh build    build (or bring up to date) and print the binary's path as the
#                                LAST stdout line; everything else goes to stderr
#   vm/guest-harness.sh path     print the path of the last build; exit 1 when there is none
#
# Run it from the checkout whose code the guests should run (not from the harness: the harness
# only reads the result). Once per checkout change: `run --kernel debian+16k@arm64:V` warns when
# the binary was built from another commit. Output, under the cache dir:
#   <cache>/guest-harness/aarch64/zcrx-conform        the binary
#   <cache>/guest-harness/aarch64/zcrx-conform.built  commit=<short hash>[-dirty], rustc=, built=
#   <cache>/guest-harness/aarch64/target/             cargo's target dir (incremental rebuilds)
#   <cache>/rust-src/<version>/                       the extracted rust-src package
# Costs (docs/flavours.md): the first build compiles std and every dependency (4-5 min of CPU
# on 2 cores); a rebuild after a change to the harness only the harness crate.
#
# Host packages it installs when missing (bookworm's apt): gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross. Environment: ZCRX_CACHE and the private apt settings of kernel.sh.
set -euo pipefail

export ZCRX_LOG_NAME=guest-harness.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGET=aarch64-unknown-linux-gnu
OUT=$CACHE/guest-harness/aarch64

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# The Debian version of rust-src whose upstream is the host rustc's (1.95.0 -> 1.95.0+dfsg1-...).
rust_src_version() {
    local want=$1
    apt_private apt-cache madison rust-src 2>/dev/null |
        awk -F'|' -v w="$want" '{gsub(/ /, "", $2)} {v = $2; u = v; sub(/^[0-9]+:/, "", u); sub(/[+~-].*/, "", u)} u == w {print v; exit}'
}

# Extracts rust-src VER under $CACHE/rust-src/VER once (a temp dir renamed into place); prints
# the library directory.
rust_src() {
    local ver=$1 up=$2 dir=$CACHE/rust-src/${1#*:} tmp
    if [[ ! -f $dir/.ready ]]; then
        download rust-src "$ver"
        mkdir -p "$CACHE/rust-src"
        clean_stale "$CACHE/rust-src" x
        tmp=$(temp_dir "$CACHE/rust-src" x)
        dpkg-deb -x "$(deb_file rust-src "$ver")" "$tmp"
        : >"$tmp/.ready"
        rm -rf "$dir"
        mv "$tmp" "$dir"
    fi
    [[ -d $dir/usr/src/rustc-$up/library ]] || die "$dir has no usr/src/rustc-$up/library"
    printf '%s\n' "$dir/usr/src/rustc-$up/library"
}

build() {
    [[ -f $REPO_ROOT/Cargo.toml && -d $REPO_ROOT/harness/src ]] ||
        die "run it from a checkout of zcrx-conform ($REPO_ROOT is not one)"
    need cargo rustc dpkg-deb apt-get flock
    ensure_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    local up ver lib commit
    up=$(rustc --version | awk '{print $2}')
    [[ $up =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cannot read the host rustc's version ($(rustc --version))"
    setup_apt
    update_lists
    ver=$(rust_src_version "$up")
    [[ -n $ver ]] || die "the mirror has no rust-src for rustc $up (apt-cache madison rust-src); the host toolchain and Debian's must match"
    lib=$(rust_src "$ver" "$up")
    mkdir -p "$OUT"
    exec 9>"$OUT/.lock"
    flock 9
    commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$REPO_ROOT" status --porcelain --untracked-files=no -- harness Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        commit+=-dirty
    fi
    log "building the harness for $TARGET (rust-src $ver; std from source) from $REPO_ROOT at $commit"
    local t0=$SECONDS
    (cd "$REPO_ROOT" &&
        RUSTC_BOOTSTRAP=1 __CARGO_TESTS_ONLY_SRC_ROOT=$lib \
            CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
            CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
            CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
            cargo build --release --locked -Zbuild-std=std,panic_abort --target "$TARGET" \
            --target-dir "$OUT/target" --bin zcrx-conform >&2)
    local bin=$OUT/target/$TARGET/release/zcrx-conform
    file "$bin" 2>/dev/null | grep -q 'ARM aarch64.*statically linked' || die "$bin is not a static aarch64 executable"
    cp "$bin" "$OUT/.zcrx-conform.$$"
    mv "$OUT/.zcrx-conform.$$" "$OUT/zcrx-conform"
    printf 'commit=%s\nrustc=%s\nbuilt=%s\n' "$commit" "$up" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$OUT/.built.$$"
    mv "$OUT/.built.$$" "$OUT/zcrx-conform.built"
    log "built in $((SECONDS - t0)) s: $OUT/zcrx-conform ($(du -h "$OUT/zcrx-conform" | cut -f1))"
    printf '%s\n' "$OUT/zcrx-conform"
}

case ${1:-} in
    build) build ;;
    path)
        [[ -x $OUT/zcrx-conform && -f $OUT/zcrx-conform.built ]] || die "not built yet: run vm/guest-harness.sh build"
        printf '%s\n' "$OUT/zcrx-conform"
        ;;
    *) usage ;;
esac
