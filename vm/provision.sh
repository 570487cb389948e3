#!/usr/bin/env bash
# provision.sh: install what the VM runs need, only what is missing.
#
# Debian packages: qemu-system-x86 busybox-static kmod udev iproute2
# PyPI:            virtme-ng (the `vng` command)
#
# Prints one line per thing found or done. Idempotent; fast (<1 s) when
# everything is already there. Must run as root on Debian (bookworm or newer).
set -euo pipefail

APT_PKGS=(qemu-system-x86 busybox-static kmod udev iproute2)
PIP_PKG=virtme-ng

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: ERROR: %s\n' "$*" >&2; exit 1; }

[[ ${EUID:-$(id -u)} -eq 0 ]] || die "must run as root (apt-get install / pip install)"
command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script needs a Debian system"

export DEBIAN_FRONTEND=noninteractive
log_file=$(mktemp /tmp/zcrx-provision.XXXXXX)
trap 'rm -f "$log_file"' EXIT
apt_updated=0
apt_update_once() {
    ((apt_updated)) && return 0
    say "running apt-get update"
    if ! apt-get update -qq >"$log_file" 2>&1; then
        cat "$log_file" >&2
        die "apt-get update failed (log above)"
    fi
    apt_updated=1
}
apt_install() {
    apt_update_once
    say "installing Debian packages: $*"
    if ! apt-get install -y -qq --no-install-recommends "$@" >"$log_file" 2>&1; then
        cat "$log_file" >&2
        die "apt-get install $* failed (log above)"
    fi
}

# --- Debian packages ------------------------------------------------------
declare -A have=()
while read -r name status version; do
    [[ $status == installed ]] && have[$name]=$version
done < <(dpkg-query -W -f='${Package} ${db:Status-Status} ${Version}\n' "${APT_PKGS[@]}" 2>/dev/null || true)

missing=()
for p in "${APT_PKGS[@]}"; do
    if [[ -n ${have[$p]:-} ]]; then
        say "found $p ${have[$p]}"
    else
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
    for p in "${missing[@]}"; do
        v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$p" 2>/dev/null || true)
        [[ $v == installed\ * ]] || die "$p is still not installed after apt-get install"
        say "installed $p ${v#installed }"
    done
fi

# --- virtme-ng ------------------------------------------------------------
vng_version() { "$1" --version 2>/dev/null | head -n1 || true; }

if vng_path=$(command -v vng 2>/dev/null); then
    say "found vng $(vng_version "$vng_path") at $vng_path"
    exit 0
fi

command -v python3 >/dev/null 2>&1 || apt_install python3
if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
    python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip still unusable after installing python3-pip"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
pip_log=$log_file
say "installing $PIP_PKG with $(python3 -m pip --version | cut -d' ' -f1-2) ($(command -v python3))"
if ! python3 -m pip install -q "$PIP_PKG" >"$pip_log" 2>&1; then
    if grep -q externally-managed-environment "$pip_log"; then
        # Debian's own python3 (PEP 668): vng is a leaf tool, install it anyway.
        say "python is externally managed: retrying with --break-system-packages"
        python3 -m pip install -q --break-system-packages "$PIP_PKG" >"$pip_log" 2>&1 \
            || { cat "$pip_log" >&2; die "pip install $PIP_PKG failed (log above)"; }
    else
        cat "$pip_log" >&2
        die "pip install $PIP_PKG failed (log above)"
    fi
fi

# pyenv needs its shims regenerated; other pythons may put scripts off PATH.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
hash -r
if ! vng_path=$(command -v vng 2>/dev/null); then
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    [[ -x $scripts/vng ]] || die "pip installed $PIP_PKG but no vng executable found (looked on PATH and in $scripts)"
    ln -sf "$scripts/vng" /usr/local/bin/vng
    say "linked /usr/local/bin/vng -> $scripts/vng (was not on PATH)"
    vng_path=/usr/local/bin/vng
fi
v=$(vng_version "$vng_path")
[[ -n $v ]] || die "vng at $vng_path does not run (vng --version printed nothing)"
say "installed vng $v at $vng_path"
