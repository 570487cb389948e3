#!/usr/bin/env bash
# Validates the LAVA job templates under ci/lava/ with LAVA's own job schema (lava_common.schemas
# from Debian bookworm's `lava-common` package, strict mode, as lava-server checks a submission).
#
#   bash ci/lava/validate.sh [JOB.yaml...]      # default: ci/lava/*.yaml
#
# Each @NAME@ placeholder is replaced by a sample value first (a template is not a job until a lab
# fills them in). The packages are fetched with `apt-get download` (nothing is installed) and
# unpacked under ${ZCRX_CACHE:-<repo>/.cache}/ci-tools/lava, so a warm run needs no network.
# Exit 0: all valid; 1: a job is invalid; 2: the schema could not be had.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cache=$(realpath -m "${ZCRX_CACHE:-$root/.cache}")
dir=$cache/ci-tools/lava
site=$dir/root/usr/lib/python3/dist-packages
die() {
    echo "lava/validate.sh: $*" >&2
    exit 2
}
command -v python3 >/dev/null 2>&1 || die "python3 not found"
pkgs=(lava-common python3-voluptuous)
python3 -c 'import yaml' 2>/dev/null || pkgs+=(python3-yaml)
have() { [[ -f $site/lava_common/schemas/__init__.py && -d $site/voluptuous ]] &&
    { python3 -c 'import yaml' 2>/dev/null || [[ -d $site/yaml ]]; }; }
if ! have; then
    mkdir -p "$dir/debs"
    echo "lava/validate.sh: apt-get download ${pkgs[*]} into $dir"
    (cd "$dir/debs" && apt-get download "${pkgs[@]}" >/dev/null 2>&1) ||
        die "apt-get download ${pkgs[*]} failed (apt-get update? Debian bookworm sources?)"
    for d in "$dir"/debs/*.deb; do
        dpkg-deb -x "$d" "$dir/root"
    done
fi
debs=("$dir"/debs/lava-common_*.deb)
version=$(dpkg-deb -f "${debs[0]}" Version 2>/dev/null || echo unknown)
jobs=("$@")
if ((${#jobs[@]} == 0)); then
    jobs=(ci/lava/*.yaml)
fi
PYTHONPATH=$site python3 - "$version" "${jobs[@]}" <<'PY'
import re, sys
import yaml
from lava_common.schemas import validate

version, paths = sys.argv[1], sys.argv[2:]
failed = False
for p in paths:
    text = open(p, encoding="utf-8").read()
    names = sorted(set(re.findall(r"@([A-Z][A-Z0-9_]*)@", text)))
    job = re.sub(r"@([A-Z][A-Z0-9_]*)@", lambda m: "sample-" + m.group(1).lower().replace("_", "-"), text)
    try:
        validate(yaml.safe_load(job), strict=True)
        print(f"lava/validate.sh: ok    {p} (lava-common {version}; placeholders {', '.join(names)})")
    except Exception as e:  # voluptuous.Invalid and YAML errors: say which file
        print(f"lava/validate.sh: FAIL  {p}: {e}")
        failed = True
sys.exit(1 if failed else 0)
PY
