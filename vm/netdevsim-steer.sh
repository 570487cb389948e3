#!/usr/bin/env bash
# netdevsim-steer.sh: check the steering, reconfiguration and fault knobs of the zcrx netdevsim
# (vm/netdevsim-zcrx/ patches 0005-0008) inside a VM guest, with sid's ethtool.
#
#   netdevsim-steer.sh MODULE ETHTOOL ZCRX_RX     (in the guest, as root)
#
# MODULE is the zcrx variant of netdevsim.ko, ETHTOOL an ethtool 7.x binary (vm/ethtool.sh),
# ZCRX_RX a binary built from vm/zcrx-nsim-rx.c. Creates netdevsim device 1 with 2 ports and
# 4 queues, the sender A in netns nsa and the receiver B in nsb (192.0.2.1/2, 2001:db8::1/2),
# B with tcp-data-split on and hds-thresh 0; the sender keeps its 4 channels, so without
# steering a flow lands on whichever rx queue its tx queue numbers.
# A flow counts as steered to queue Q when a zcrx receiver bound to B's rx queue Q gets it by
# zero copy (hds/split > 0, no fallback and no drop): a flow on another queue reaches the same
# socket only through the copy fallback (split stays 0).
# Checks, each printing what it measured:
#   1. ntuple tcp4 rule to queue 2: zero copy on queue 2, the rule's ntuple_hits > 0
#   2. a rule with action -1 drops the SYN: connect times out, B's rx_dropped grows
#   3. RSS table (-X weight 0 0 1 0): zero copy on queue 2; -X default restores the table
#   4. RSS context (context new, weight 0 0 0 1) + rule with context: zero copy on queue 3
#   5. ntuple tcp6 rule: ntuple_hits of that rule > 0 after an IPv6 transfer
#   6. reconfiguration while a zcrx area is bound on queue 0, between the first 16 MiB and the
#      last 48 MiB of one connection: ethtool -G rx 1024, MTU 4000 and back, -L combined 3 and 4:
#      hds/rx_restarts grows by 4 per change (3 for combined 3), tcp-data-split off is refused,
#      every byte arrives, and zero copy continues after the restarts
#   7. pp_fail_interval 5: bytes exact, pp_injected > 0 and alloc_fail > 0, drops retransmitted
#   8. on_empty copy + netmem_budget 500: bytes exact by fallback; back to drop
# Last line "STEER: PASS" when everything worked; exits non-zero at the first failure.
#
# From the host (see vm/README.md):
#   vng --run "$VMLINUZ" --disable-kvm --force-9p --user root -m 2G -p 2 --append "$BLACKLIST" \
#       -- vm/netdevsim-steer.sh "$KO" "$ETHTOOL" "$ZCRX_RX" | cat
set -euo pipefail

KO=${1:?usage: netdevsim-steer.sh MODULE ETHTOOL ZCRX_RX}
ET=${2:?usage: netdevsim-steer.sh MODULE ETHTOOL ZCRX_RX}
ZRX=${3:?usage: netdevsim-steer.sh MODULE ETHTOOL ZCRX_RX}
PY=/usr/bin/python3

step() { printf '== %s\n' "$*"; }
fail() { printf 'STEER: FAIL: %s\n' "$*"; dmesg | grep -iE 'netdevsim|page_pool|warn|bug' | tail -n 20 || true; exit 1; }
t() { date +%s.%N; }

modprobe psample || fail "modprobe psample"
insmod "$KO" || fail "insmod $KO"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
echo "1 2 4" >/sys/bus/netdevsim/new_device || fail "new_device"
udevadm settle 2>/dev/null || true
mapfile -t ports < <(ls /sys/bus/netdevsim/devices/netdevsim1/net/)
[[ ${#ports[@]} -eq 2 ]] || fail "expected 2 ports, got: ${ports[*]:-none}"
A=${ports[0]} B=${ports[1]}
ip netns add nsa
ip netns add nsb
ip link set "$A" netns nsa
ip link set "$B" netns nsb
ia=$(ip netns exec nsa cat "/sys/class/net/$A/ifindex")
ib=$(ip netns exec nsb cat "/sys/class/net/$B/ifindex")
exec 3</run/netns/nsa 4</run/netns/nsb
echo "3:$ia 4:$ib" >/sys/bus/netdevsim/link_device || fail "link_device"
exec 3<&- 4<&-
ip -n nsa addr add 192.0.2.1/24 dev "$A"
ip -n nsb addr add 192.0.2.2/24 dev "$B"
ip -n nsa addr add 2001:db8::1/64 dev "$A" nodad
ip -n nsb addr add 2001:db8::2/64 dev "$B" nodad
for n in nsa nsb; do ip -n $n link set lo up; done
ip -n nsa link set "$A" up
ip -n nsb link set "$B" up
etb() { ip netns exec nsb "$ET" "$@"; }
etb -G "$B" tcp-data-split on hds-thresh 0 || fail "ethtool -G tcp-data-split on hds-thresh 0"
hds=/sys/kernel/debug/netdevsim/netdevsim1/ports/1/hds
hits=/sys/kernel/debug/netdevsim/netdevsim1/ports/1/ntuple_hits
[[ -d $hds && -f $hds/on_empty && -f $hits ]] || fail "no hds/on_empty or ntuple_hits: not the patched module?"
step "kernel $(uname -r), $("$ET" --version), ports nsa/$A -> nsb/$B, on_empty=$(cat $hds/on_empty)"
step "features: $(etb -k "$B" | grep ntuple)"
ip netns exec nsa busybox ping -c 2 -W 2 192.0.2.2 >/dev/null || fail "ping"

reset_counters() { for f in split fallback dropped pp_injected; do echo 0 >"$hds/$f"; done; }
counters() { printf 'split=%s fallback=%s dropped=%s alloc_fail=%s pp_injected=%s rx_restarts=%s' \
    "$(cat $hds/split)" "$(cat $hds/fallback)" "$(cat $hds/dropped)" "$(cat $hds/alloc_fail)" \
    "$(cat $hds/pp_injected)" "$(cat $hds/rx_restarts)"; }

# send PORT BYTES [ADDR]: BYTES of the pattern i % 251 from nsa
send() {
    ip netns exec nsa "$PY" -c '
import socket, sys
port, left, addr = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((addr, port), timeout=30)
buf = bytes(range(251)) * 4096
while left:
    n = min(left, len(buf)); s.sendall(buf[:n]); left -= n
s.close()' "$1" "$2" "${3:-192.0.2.2}"
}

# zrx_start RXQ PORT BYTES: zcrx receiver on B's rx queue RXQ (retries while the queue is busy)
zrx_start() {
    local _
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        ip netns exec nsb "$ZRX" "$B" "$1" "$2" "$3" >/tmp/zrx.out 2>&1 &
        zpid=$!
        for _ in $(seq 100); do grep -q listening /tmp/zrx.out 2>/dev/null && break; kill -0 "$zpid" 2>/dev/null || break; sleep 0.1; done
        grep -q listening /tmp/zrx.out && return 0
        wait "$zpid" || true
        grep -q busy /tmp/zrx.out || break
        sleep 0.5
    done
    cat /tmp/zrx.out
    fail "zcrx-nsim-rx did not start on rxq $1"
}
zrx_wait() { wait "$zpid" || { cat /tmp/zrx.out; fail "zcrx-nsim-rx: $1"; }; }

# zc_on RXQ PORT BYTES WHAT: the flow to PORT must arrive by zero copy on RXQ
zc_on() {
    reset_counters
    zrx_start "$1" "$2" "$3"
    local t0 t1
    t0=$(t)
    send "$2" "$3" || fail "send to $2"
    zrx_wait "$4"
    t1=$(t)
    grep -E 'received|bytes' /tmp/zrx.out | tail -n 2
    local sp fb dr
    sp=$(cat $hds/split) fb=$(cat $hds/fallback) dr=$(cat $hds/dropped)
    step "$4: $3 bytes in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f s", b - a }'), $(counters)"
    [[ $sp -gt 0 && $fb -eq 0 ]] || fail "$4: not zero copy on rxq $1 (split=$sp fallback=$fb dropped=$dr)"
}

rule_id() { sed -n 's/^Added rule with ID \([0-9]*\)$/\1/p'; }
hits_of() { awk -v l="$1" '$1 == l { print $2 }' "$hits"; }

step "1. ntuple: tcp4 dst-port 5301 -> queue 2"
id=$(etb -N "$B" flow-type tcp4 dst-port 5301 action 2 | rule_id)
[[ -n $id ]] || fail "ethtool -N did not add a rule"
etb -n "$B" rule "$id" | sed 's/^/   /'
zc_on 2 5301 $((4 << 20)) "ntuple rule $id to queue 2"
step "rule $id hits: $(hits_of "$id")"
[[ $(hits_of "$id") -gt 0 ]] || fail "rule $id has no hits"
etb -N "$B" delete "$id" || fail "delete rule $id"
[[ -z $(hits_of "$id") ]] || fail "rule $id still listed after delete"
etb -N "$B" delete "$id" 2>/dev/null && fail "deleting rule $id twice succeeded"
step "   rule $id deleted; deleting it again fails"
etb -N "$B" flow-type ether dst 00:11:22:33:44:55 action 1 2>/dev/null && fail "ether rule accepted"
etb -N "$B" flow-type tcp4 dst-port 5301 action 9 2>/dev/null && fail "rule to queue 9 accepted"
step "   ether rule and rule to queue 9 refused"

step "2. ntuple: tcp4 dst-port 5309 action -1 (drop)"
id=$(etb -N "$B" flow-type tcp4 dst-port 5309 action -1 | rule_id)
drop0=$(ip netns exec nsb cat "/sys/class/net/$B/statistics/rx_dropped")
ip netns exec nsb "$PY" -c '
import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.2", 5309)); s.listen(1); s.settimeout(4); open("/tmp/ready9", "w").close()
try: s.accept()
except socket.timeout: pass' &
lpid=$!
for _ in $(seq 100); do [[ -e /tmp/ready9 ]] && break; sleep 0.1; done
if ip netns exec nsa "$PY" -c '
import socket; socket.create_connection(("192.0.2.2", 5309), timeout=2)' 2>/dev/null; then
    fail "connect through a drop rule succeeded"
fi
wait "$lpid" || true
drop1=$(ip netns exec nsb cat "/sys/class/net/$B/statistics/rx_dropped")
step "   connect timed out; rule hits $(hits_of "$id"), rx_dropped $drop0 -> $drop1"
[[ $drop1 -gt $drop0 && $(hits_of "$id") -gt 0 ]] || fail "drop rule did not drop"
etb -N "$B" delete "$id"

step "3. RSS: ethtool -X weight 0 0 1 0 (all to queue 2)"
etb -X "$B" weight 0 0 1 0 || fail "ethtool -X weight"
etb -x "$B" | sed -n '1,4p;/RSS hash key/,+1p;/hash function/,+3p' | sed 's/^/   /'
zc_on 2 5303 $((4 << 20)) "RSS table to queue 2"
etb -X "$B" default || fail "ethtool -X default"
etb -x "$B" | grep -E '^ +0:' | sed 's/^/   /'
etb -x "$B" | grep -qE '^ +0: +0 +1 +2 +3 +0 +1 +2 +3$' || fail "-X default did not restore the spread"

step "4. RSS context: context new weight 0 0 0 1, rule tcp4 dst-port 5304 context C"
out=$(etb -X "$B" context new weight 0 0 0 1) || fail "ethtool -X context new"
echo "   $out"
ctx=$(sed -n 's/^New RSS context is \([0-9]*\)$/\1/p' <<<"$out")
[[ -n $ctx ]] || fail "no context id in: $out"
id=$(etb -N "$B" flow-type tcp4 dst-port 5304 context "$ctx" action 0 | rule_id)
[[ -n $id ]] || fail "rule with context $ctx not added"
etb -n "$B" rule "$id" | sed 's/^/   /'
zc_on 3 5304 $((4 << 20)) "rule $id via context $ctx to queue 3"
etb -N "$B" delete "$id"
etb -X "$B" context "$ctx" delete || fail "delete context $ctx"
step "   rule and context deleted"

step "5. ntuple tcp6: tcp6 dst-port 5305 -> queue 1, IPv6 transfer"
id=$(etb -N "$B" flow-type tcp6 dst-port 5305 action 1 | rule_id)
ip netns exec nsb "$PY" -c '
import socket; s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("2001:db8::2", 5305)); s.listen(1); open("/tmp/ready6", "w").close(); c, _ = s.accept(); n = 0
while True:
    d = c.recv(65536)
    if not d: break
    n += len(d)
print("   ipv6 received", n)' &
lpid=$!
for _ in $(seq 100); do [[ -e /tmp/ready6 ]] && break; sleep 0.1; done
send 5305 $((1 << 20)) 2001:db8::2 || fail "ipv6 send"
wait "$lpid" || fail "ipv6 receiver"
step "   rule $id hits: $(hits_of "$id")"
[[ $(hits_of "$id") -gt 0 ]] || fail "tcp6 rule has no hits"
etb -N "$B" delete "$id"

step "6. reconfiguration while zcrx is bound on queue 0: 16 MiB, the changes, then 48 MiB more"
id=$(etb -N "$B" flow-type tcp4 dst-port 5306 action 0 | rule_id)
reset_counters
rm -f /tmp/go
r0=$(cat $hds/rx_restarts)
zrx_start 0 5306 $((64 << 20))
ip netns exec nsa "$PY" -c '
import os, socket, time
s = socket.create_connection(("192.0.2.2", 5306), timeout=60)
buf = bytes(range(251)) * 4096
def send(left):
    global buf
    while left:
        n = min(left, len(buf)); s.sendall(buf[:n]); left -= n
        buf = buf[n:] + buf[:n]   # keep the i % 251 pattern across calls
send(16 << 20)
open("/tmp/sent1", "w").close()
while not os.path.exists("/tmp/go"): time.sleep(0.05)
send(48 << 20)
s.close()' &
spid=$!
for _ in $(seq 600); do [[ -e /tmp/sent1 ]] && break; sleep 0.1; done
[[ -e /tmp/sent1 ]] || fail "first 16 MiB not sent"
sleep 1
sp0=$(cat $hds/split)
etb -G "$B" rx 1024 || fail "ethtool -G rx 1024 while bound"
r1=$(cat $hds/rx_restarts)
ip -n nsb link set "$B" mtu 4000 || fail "mtu 4000 while bound"
ip -n nsb link set "$B" mtu 1500 || fail "mtu 1500 while bound"
r2=$(cat $hds/rx_restarts)
etb -L "$B" combined 3 || fail "ethtool -L combined 3 while bound"
etb -L "$B" combined 4 || fail "ethtool -L combined 4 while bound"
r3=$(cat $hds/rx_restarts)
etb -G "$B" tcp-data-split off 2>/tmp/g.err && fail "tcp-data-split off accepted while bound"
step "   tcp-data-split off refused while bound: $(tr '\n' ' ' </tmp/g.err)"
sp_mid=$(cat $hds/split)
touch /tmp/go
wait "$spid" || fail "sender during reconfiguration"
zrx_wait "reconfiguration"
grep -E 'received|bytes' /tmp/zrx.out | tail -n 2
sp_end=$(cat $hds/split)
step "   rx_restarts $r0 -> $r1 (-G rx) -> $r2 (mtu 4000, 1500) -> $r3 (-L 3, 4); split $sp0 before, $sp_mid after the changes, $sp_end at the end; $(counters)"
[[ $((r1 - r0)) -eq 4 && $((r2 - r1)) -eq 8 && $((r3 - r2)) -eq 7 ]] || fail "expected 4 restarts per change (3 for combined 3)"
[[ $sp_end -gt $sp_mid ]] || fail "no zero copy after the restarts"
etb -N "$B" delete "$id"

step "7. pp_fail_interval 5: every 5th buffer allocation fails (dropped, retransmitted)"
id=$(etb -N "$B" flow-type tcp4 dst-port 5307 action 2 | rule_id)
af0=$(cat $hds/alloc_fail)
echo 5 >"$hds/pp_fail_interval"
zc_on 2 5307 $((4 << 20)) "with injected failures"
echo 0 >"$hds/pp_fail_interval"
step "   alloc_fail $af0 -> $(cat $hds/alloc_fail), pp_injected $(cat $hds/pp_injected), dropped $(cat $hds/dropped)"
[[ $(cat $hds/pp_injected) -gt 0 && $(cat $hds/dropped) -gt 0 && $(cat $hds/alloc_fail) -gt $af0 ]] || fail "no injected failures"

step "8. on_empty copy with netmem_budget 500"
echo copy >"$hds/on_empty"
[[ $(cat $hds/on_empty) == copy ]] || fail "on_empty did not read back copy"
echo bogus >"$hds/on_empty" 2>/dev/null && fail "on_empty accepted bogus"
reset_counters
echo 500 >"$hds/netmem_budget"
zrx_start 2 5307 $((4 << 20))
send 5307 $((4 << 20)) || fail "send with budget"
zrx_wait "budget copy"
grep -E 'received|bytes' /tmp/zrx.out | tail -n 2
step "   $(counters)"
[[ $(cat $hds/split) -gt 0 && $(cat $hds/fallback) -gt 0 && $(cat $hds/dropped) -eq 0 ]] || fail "expected split and fallback, no drops"
echo -1 >"$hds/netmem_budget"
echo drop >"$hds/on_empty"
etb -N "$B" delete "$id"

step "dmesg (netdevsim, page_pool, warnings)"
dmesg | grep -iE 'netdevsim|page_pool|WARNING|BUG' | tail -n 10 || true
dmesg | grep -qE 'WARNING:|BUG:' && fail "kernel warning"
echo "STEER: PASS"
