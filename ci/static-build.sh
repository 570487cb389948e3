#!/usr/bin/env bash
# One file to copy to a lab machine: a statically linked, stripped zcrx-conform release build
# that carries the catalogue (cases/), the topology files and the vm/ scripts inside itself.
#
#   bash ci/static-build.sh [OUT_DIR]         # default OUT_DIR: out/static
#   bash ci/static-build.sh --check [OUT_DIR] # build, then prove it: no dynamic dependencies, and
#                                             # `validate` + `run --topology host` from an empty
#                                             # directory with nothing else in it
#
# musl when its Rust target is installed (`rustup target add x86_64-unknown-linux-musl`), else
# glibc with +crt-static. Its own target directory (target/<triple>/), so the ordinary release
# build is not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
out=${1:-out/static}
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    triple=x86_64-unknown-linux-musl
else
    triple=x86_64-unknown-linux-gnu
fi
# Only the target gets +crt-static (with --target, build scripts and proc macros stay dynamic).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --target "$triple"
mkdir -p "$out"
cp "target/$triple/release/zcrx-conform" "$out/zcrx-conform"
bin=$(cd "$out" && pwd)/zcrx-conform
bytes=$(stat -c %s "$bin")
echo "static-build: $bin ($triple, $bytes bytes, $(numfmt --to=iec-i --suffix=B "$bytes"))"
[ "$check" = 1 ] || exit 0

# No dynamic dependencies: `ldd` says "not a dynamic executable" or "statically linked", and the
# ELF file has no interpreter and no NEEDED library.
deps=$(ldd "$bin" 2>&1 || true)
echo "ldd: $deps"
if ! printf '%s' "$deps" | grep -Eq 'not a dynamic executable|statically linked'; then
    echo "static-build: $bin has dynamic dependencies" >&2
    exit 1
fi
if readelf -ld "$bin" | grep -Eq 'NEEDED|Requesting program interpreter'; then
    echo "static-build: $bin names an interpreter or a shared library" >&2
    exit 1
fi
# Nothing else in the directory it runs from, and nothing of the checkout it can find: the
# binary is copied alone into an empty directory outside the repository.
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
cp "$bin" "$empty/zcrx-conform"
cd "$empty"
env -u ZCRX_CONFORM_ROOT ./zcrx-conform validate
env -u ZCRX_CONFORM_ROOT ./zcrx-conform run --topology host -q --out out --allow-empty
test -s out/report.json && test -s out/junit.xml
# The cases came from the binary itself.
grep -q '"file": "builtin:/cases/' out/report.json
echo "static-build: the static binary validated and ran the built-in catalogue alone in $empty"
