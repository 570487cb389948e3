#!/usr/bin/env bash
# netdevsim-smoke.sh: check a netdevsim.ko built by netdevsim.sh inside a VM guest.
#
#   netdevsim-smoke.sh MODULE ETHTOOL [ZCRX_RX]     (in the guest, as root)
#
# Loads psample and MODULE, creates netdevsim device 1 with 2 ports and 4 queues, moves the
# ports into netns nsa and nsb, links them (/sys/bus/netdevsim/link_device), gives them
# 192.0.2.1/24 and 192.0.2.2/24, pings across, sends 4 MiB over TCP, and with ETHTOOL (7.x)
# sets tcp-data-split on + hds-thresh 0 and shows the result of -g, then -L combined 1.
# With ZCRX_RX (a binary built from vm/zcrx-nsim-rx.c; zcrx variant only), it then also
# registers io_uring zcrx on rx queue 0 of the receiving port, receives 16 MiB through it,
# checks the bytes and shows the port's hds/ debugfs counters (patch 0004), which say how
# many skbs were split into zcrx buffers (zero copy) and how many fell back; then again with
# hds/netmem_budget = 1000 and hds/on_empty = copy (4 MiB zero copy, the rest by copy fallback).
# Prints "SMOKE: PASS" as its last line when everything worked; exits non-zero otherwise.
#
# From the host (see vm/README.md):
#   vng --run "$VMLINUZ" --disable-kvm --force-9p --user root -m 2G -p 2 --append "$BLACKLIST" \
#       -- vm/netdevsim-smoke.sh "$KO" "$ETHTOOL" | cat
set -euo pipefail

KO=${1:?usage: netdevsim-smoke.sh MODULE ETHTOOL}
ETHTOOL=${2:?usage: netdevsim-smoke.sh MODULE ETHTOOL}
ZCRX_RX=${3:-}
PY=/usr/bin/python3

step() { printf '== %s\n' "$*"; }
fail() { printf 'SMOKE: FAIL: %s\n' "$*"; dmesg | grep -iE 'netdevsim|page_pool|psample' | tail -n 20 || true; exit 1; }
t() { date +%s.%N; }

step "kernel $(uname -r)"
t0=$(t)
modprobe psample || fail "modprobe psample"
insmod "$KO" || fail "insmod $KO"
t1=$(t)
step "modprobe psample + insmod: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f s", b - a }')"
grep -E '^(netdevsim|psample) ' /proc/modules
printf 'taint: %s\n' "$(cat /proc/sys/kernel/tainted)"

echo "1 2 4" >/sys/bus/netdevsim/new_device || fail "new_device"
udevadm settle 2>/dev/null || true
mapfile -t ports < <(ls /sys/bus/netdevsim/devices/netdevsim1/net/)
[[ ${#ports[@]} -eq 2 ]] || fail "expected 2 ports, got: ${ports[*]:-none}"
A=${ports[0]} B=${ports[1]}
step "ports: $A $B"

ip netns add nsa
ip netns add nsb
ip link set "$A" netns nsa
ip link set "$B" netns nsb
ia=$(ip netns exec nsa cat "/sys/class/net/$A/ifindex")
ib=$(ip netns exec nsb cat "/sys/class/net/$B/ifindex")
exec 3</run/netns/nsa 4</run/netns/nsb
echo "3:$ia 4:$ib" >/sys/bus/netdevsim/link_device || fail "link_device 3:$ia 4:$ib"
exec 3<&- 4<&-
step "linked nsa/$A (ifindex $ia) <-> nsb/$B (ifindex $ib)"
ip -n nsa addr add 192.0.2.1/24 dev "$A"
ip -n nsb addr add 192.0.2.2/24 dev "$B"
ip -n nsa link set "$A" up
ip -n nsb link set "$B" up
ip -n nsa link set lo up
ip -n nsb link set lo up

step "ping nsa -> nsb"
ip netns exec nsa busybox ping -c 3 -W 2 192.0.2.2 || fail "ping"

tcp_check() { # 4 MiB from nsa to nsb, byte-compared
    ip netns exec nsb "$PY" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.2", 5201)); s.listen(1); open("/tmp/ready", "w").close()
c, _ = s.accept(); n = 0; ok = True
while True:
    d = c.recv(65536)
    if not d: break
    ok = ok and all(d[i] == (n + i) % 256 for i in range(0, len(d), 997))
    n += len(d)
print("received", n, "bytes,", "pattern ok" if ok else "PATTERN MISMATCH"); sys.exit(0 if ok and n == 4 << 20 else 1)
' &
    local srv=$!
    for _ in $(seq 50); do [[ -e /tmp/ready ]] && break; sleep 0.1; done
    ip netns exec nsa "$PY" -c '
import socket
s = socket.create_connection(("192.0.2.2", 5201))
buf = bytes(range(256)) * 4096
for _ in range(4): s.sendall(buf)
s.close()'
    wait "$srv"
    rm -f /tmp/ready
}
step "TCP 4 MiB nsa -> nsb"
tcp_check || fail "TCP transfer"

step "ethtool: $("$ETHTOOL" --version)"
ip netns exec nsb "$ETHTOOL" -G "$B" tcp-data-split on hds-thresh 0 || fail "ethtool -G $B tcp-data-split on hds-thresh 0"
ip netns exec nsb "$ETHTOOL" -g "$B"
ip netns exec nsb "$ETHTOOL" -g "$B" | grep -q 'TCP data split:[[:space:]]*on' || fail "tcp-data-split is not on"
ip netns exec nsb "$ETHTOOL" -g "$B" | grep -qE 'HDS thresh:[[:space:]]*0$' || fail "hds-thresh is not 0"
step "ethtool -L $A combined 1 (sender) and -l"
ip netns exec nsa "$ETHTOOL" -L "$A" combined 1 || fail "ethtool -L $A combined 1"
ip netns exec nsa "$ETHTOOL" -l "$A"
step "TCP 4 MiB again (header split on, 1 sender queue)"
tcp_check || fail "TCP transfer after ethtool -G/-L"
hds=/sys/kernel/debug/netdevsim/netdevsim1/ports/1/hds
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
if [[ -d $hds ]]; then # zcrx variant with patch 0004: counters stay 0 without a memory provider
    step "zcrx variant: $hds: split=$(cat "$hds/split") fallback=$(cat "$hds/fallback") netmem_budget=$(cat "$hds/netmem_budget")"
fi
if [[ -n $ZCRX_RX ]]; then
    step "zcrx: register on $B rxq 99 (expect ERANGE)"
    ip netns exec nsb "$ZCRX_RX" "$B" 99 5202 0 && fail "registration on rxq 99 succeeded"
    zcrx_run() { # BUDGET: 16 MiB through a zcrx area on rxq 0 of $B, hds/netmem_budget = BUDGET
        step "zcrx: 16 MiB into a zcrx area on $B rxq 0, netmem_budget $1"
        if [[ -d $hds ]]; then
            echo "$1" >"$hds/netmem_budget"
            echo 0 >"$hds/split"
            echo 0 >"$hds/fallback"
        fi
        local rx try
        for try in 1 2 3 4 5 6 7 8 9 10; do # the previous run's queue may still be restarting
            ip netns exec nsb "$ZCRX_RX" "$B" 0 5202 $((16 << 20)) >/tmp/zrx.out 2>&1 &
            rx=$!
            for _ in $(seq 100); do grep -q listening /tmp/zrx.out 2>/dev/null && break; kill -0 "$rx" 2>/dev/null || break; sleep 0.1; done
            grep -q listening /tmp/zrx.out && break
            wait "$rx" || true
            cat /tmp/zrx.out
            grep -q 'busy' /tmp/zrx.out || break
            sleep 0.5
        done
        [[ $try -eq 1 ]] || echo "(registered at try $try)"
        grep -q listening /tmp/zrx.out || fail "zcrx-nsim-rx did not start"
        local t2 t3
        t2=$(t)
        ip netns exec nsa "$PY" -c '
import socket
s = socket.create_connection(("192.0.2.2", 5202))
buf = bytes(range(251)) * 4096
left = 16 << 20
while left:
    n = min(left, len(buf))
    s.sendall(buf[:n]); left -= n
s.close()' || fail "zcrx client"
        wait "$rx" || { cat /tmp/zrx.out; fail "zcrx-nsim-rx"; }
        t3=$(t)
        cat /tmp/zrx.out
        step "zcrx: 16 MiB in $(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.2f s", b - a }')"
        if [[ -d $hds ]]; then
            split=$(cat "$hds/split") fallback=$(cat "$hds/fallback")
            step "zcrx: hds counters: split=$split fallback=$fallback netmem_budget=$(cat "$hds/netmem_budget")"
        fi
    }
    zcrx_run -1
    if [[ -d $hds ]]; then
        [[ $split -gt 0 && $fallback -eq 0 ]] || fail "expected only split skbs"
        # patch 0005: an empty pool drops by default (like a NIC); the fallback needs on_empty copy
        [[ -f $hds/on_empty ]] && echo copy >"$hds/on_empty"
        zcrx_run 1000
        [[ -f $hds/on_empty ]] && echo drop >"$hds/on_empty"
        [[ $split -gt 0 && $fallback -gt 0 ]] || fail "expected split and fallback skbs with a budget of 1000"
        echo -1 >"$hds/netmem_budget"
    fi
fi
step "dmesg (netdevsim, page_pool)"
dmesg | grep -iE 'netdevsim|page_pool' | tail -n 10 || true
echo "SMOKE: PASS"
