#!/usr/bin/env bash
# The per-app network policy (device/monitor/netpolicy.c) end to end, in a small internet of
# network namespaces on this machine, never any outside address:
#
#   NET (10.99.0.0/24, the "internet"): allowed.test 10.99.0.10 (:8080, :8081; later .11),
#       an IP-only host 10.99.0.12, wide.test 10.99.0.13, forbidden.test 10.99.0.20, and a
#       DNS server (dnsmasq) at 10.99.0.53 that knows every name, and lies about hostile.test
#       (10.99.0.13, but also the app's gateway, the device's address, 169.254.169.254)
#   MON (10.99.0.2): the monitor's side, with its own resolver pointed at that dnsmasq; the names
#       are resolved there by rampart-unpack (confined, unprivileged), never by the driver itself
#   APP: a child of the monitor in new network and mount namespaces, set up by netpolicy
#
# The host's own namespaces, links and nftables are never touched, and everything made is
# removed even when a check fails (and checked gone at the end).
set -Eeuo pipefail
trap 'echo "FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND exited $?" >&2' ERR

: "${DRIVER:?set DRIVER to the netpolicy-driver binary}"
: "${UNPACK:?set UNPACK to the rampart-unpack binary, the resolver of the names}"
DRIVER=$(realpath "$DRIVER") # nsenter -m starts in the app's root and working directory
[ "$(id -u)" = 0 ] || { echo "FAIL: netpolicy.sh needs root (network namespaces, nftables)" >&2; exit 1; }
for tool in ip nsenter unshare dnsmasq nft; do
  command -v "$tool" >/dev/null || { echo "FAIL: netpolicy.sh needs $tool" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/rampart-netpolicy.XXXXXX")
NET=rpnp-net-$$
MON=rpnp-mon-$$
PIDS=()
CHECKS=0
MONITOR_PID=
DNS_PID=
# Only our own kind of table is compared: other tests on this machine may change the host's rules.
host_tables_before=$(nft list tables | grep -c rampart || true)

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$MON" 2>/dev/null || true
  ip netns del "$NET" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); }

# wait_for WHAT CMD...: poll until CMD succeeds (bounded: 20 s).
wait_for() {
  local what=$1 i
  shift
  for i in $(seq 200); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for $what"
}

innet() { ip netns exec "$NET" "$@"; }
inmon() { ip netns exec "$MON" "$@"; }
inapp() { nsenter -t "$APP" -n -m -- "$@"; }

# expect CODE WANT_TEXT CMD...: CMD exits CODE, and (when WANT_TEXT is not empty) prints it.
expect() {
  local code=$1 want=$2 got=0
  shift 2
  "$@" >"$T/out" 2>"$T/err" || got=$?
  if [ "$got" != "$code" ]; then
    cat "$T/out" "$T/err" >&2
    fail "exit $got, wanted $code: $*"
  fi
  if [ -n "$want" ] && ! grep -qF -- "$want" "$T/out"; then
    cat "$T/out" "$T/err" >&2
    fail "output lacks '$want': $*"
  fi
  ok
}

# event KIND APP REASON: the monitor recorded this security event (waits for it).
has_event() { "$DRIVER" events "$S" | grep -qxF "$(printf '%s\t%s\t%s' "$1" "$2" "$3")"; }
event() { wait_for "event $1 $2 '$3'" has_event "$@"; ok; }

# ---- the small internet ----
ip netns add "$NET"
ip netns add "$MON"
innet ip link set lo up
inmon ip link set lo up
ip link add "np$$a" netns "$NET" type veth peer name "np$$b" netns "$MON"
innet ip link set "np$$a" name vmon
inmon ip link set "np$$b" name up0
for a in 1 10 11 12 13 20 53; do innet ip addr add "10.99.0.$a/24" dev vmon; done
innet ip link set vmon up
inmon ip addr add 10.99.0.2/24 dev up0
inmon ip link set up0 up
inmon ip route add default via 10.99.0.1
# Other hosts may route to the apps' range through the device (the "reached directly" checks).
innet ip route add 100.127.0.0/16 via 10.99.0.2

# Background commands are started directly (not through a shell function), so that $! is the
# process itself and cleanup's kill reaches it.
serve() { ip netns exec "$NET" "$DRIVER" serve "$@" & PIDS+=($!); }
app_serve() { nsenter -t "$APP" -n -m -- "$DRIVER" serve "$@" >/dev/null & PIDS+=($!); }
serve tcp 10.99.0.10 8080 allowed-8080
serve tcp 10.99.0.10 8081 allowed-8081
ip netns exec "$NET" "$DRIVER" serve udp 10.99.0.10 8080 allowed-udp >"$T/udp-8080.log" &
PIDS+=($!)
serve tcp 10.99.0.11 8080 allowed-moved
serve tcp 10.99.0.12 9999 by-ip
serve tcp 10.99.0.13 7000 wide
serve tcp 10.99.0.20 8080 forbidden
# The device's own private service (the monitor's namespace, every address), no app's to reach.
ip netns exec "$MON" "$DRIVER" serve tcp 0.0.0.0 2222 device-private & PIDS+=($!)

start_dns() { # start_dns ALLOWED_ADDRESS
  ip netns exec "$NET" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=10.99.0.53 --user=root --pid-file= \
    --address="/allowed.test/$1" --address=/wide.test/10.99.0.13 \
    --address=/forbidden.test/10.99.0.20 --address=/hostile.test/10.99.0.13 \
    --address=/hostile.test/100.127.0.21 --address=/hostile.test/10.99.0.2 \
    --address=/hostile.test/169.254.169.254 2>"$T/dnsmasq.log" &
  DNS_PID=$!
  PIDS+=("$DNS_PID")
}
start_dns 10.99.0.10
printf 'nameserver 10.99.0.53\n' >"$T/resolv.conf"
for hp in 10.99.0.10:8080 10.99.0.10:8081 10.99.0.11:8080 10.99.0.12:9999 10.99.0.13:7000 \
  10.99.0.20:8080; do
  wait_for "the server at $hp" innet "$DRIVER" connect "${hp%:*}" "${hp#*:}"
done
wait_for "the device's private service" inmon "$DRIVER" connect 10.99.0.2 2222
wait_for "the UDP server" innet "$DRIVER" udp 10.99.0.10 8080
wait_for "dnsmasq" inmon "$DRIVER" dns 10.99.0.53 allowed.test

# ---- the app ----
S=$T/state
mkdir -p "$S"
start_monitor() { # start_monitor COMPONENT SLOT ARGS...: the monitor's side, resolving via dnsmasq
  local comp=$1 slot=$2
  shift 2
  rm -f "$S/app.pid" "$S/app.addr"
  ip netns exec "$MON" unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$T/resolv.conf" \
    "$DRIVER" monitor --state-dir "$S" --component "$comp" --slot "$slot" "$@" \
    2>>"$T/monitor.log" &
  MONITOR_PID=$!
  PIDS+=("$MONITOR_PID")
  wait_for "the app to be set up" test -s "$S/app.pid"
  APP=$(cat "$S/app.pid")
  APP_ADDR=$(cat "$S/app.addr")
}
stop_monitor() {
  kill -TERM "$MONITOR_PID"
  local got=0
  wait "$MONITOR_PID" || got=$?
  [ "$got" = 0 ] || { cat "$T/monitor.log" >&2; fail "the monitor exited $got"; }
}

start_monitor sensor 5 --allow allowed.test:8080 --allow 10.99.0.12 --allow wide.test \
  --allow hostile.test --tcp 8080 --udp 5683 --rival-slot 7
[ "$APP_ADDR" = 100.127.0.22 ] || fail "slot 5's address is $APP_ADDR"
# A second app asking for the same server port is refused, and takes nothing of the first's (its
# port forward is checked working below) and leaves nothing of its own.
[ "$(cat "$S/rival")" = refused ] || fail "a second app got the same server port: $(cat "$S/rival")"
inmon ip -o link show | grep -q rpv7 && fail "the refused app's link is left"
ok

# Allowed: a name with its port, an IP with every port, a name with every port.
expect 0 allowed-8080 inapp "$DRIVER" connect allowed.test 8080
expect 0 by-ip inapp "$DRIVER" connect 10.99.0.12 9999
expect 0 wide inapp "$DRIVER" connect wide.test 7000
# The allowed name on another port: refused, and an event names it.
expect 1 "" inapp "$DRIVER" connect allowed.test 8081
event connection sensor 10.99.0.10:8081
# The forbidden host: its name does not resolve in the app, its address is refused.
expect 3 "" inapp "$DRIVER" resolve forbidden.test
expect 3 "" inapp "$DRIVER" connect forbidden.test 8080
expect 1 "" inapp "$DRIVER" connect 10.99.0.20 8080
event connection sensor 10.99.0.20:8080
# The forbidden server is up (the refusal is the policy's, not a dead server).
expect 0 forbidden inmon "$DRIVER" connect 10.99.0.20 8080
# No DNS: the app's resolver files list no server, and dnsmasq itself is refused (UDP and TCP),
# while the monitor's side gets answers from it.
grep -q nameserver "$S/etc/resolv.conf" && fail "the app's resolv.conf names a server"
grep -qx 'hosts: files' "$S/etc/nsswitch.conf" || fail "the app's nsswitch.conf asks more than files"
expect 1 "" inapp "$DRIVER" dns 10.99.0.53 forbidden.test
event connection sensor "udp 10.99.0.53:53"
expect 1 "" inapp "$DRIVER" connect 10.99.0.53 53
event connection sensor 10.99.0.53:53
expect 0 answered inmon "$DRIVER" dns 10.99.0.53 forbidden.test
# The monitor's namespace itself (the app's gateway) is not a way out.
expect 1 "" inapp "$DRIVER" connect 100.127.0.21 22
event connection sensor 100.127.0.21:22
# A lying resolver cannot make an allowed name (every port) the device itself: of hostile.test's
# answers only the outside one is kept; the gateway, the device's address and 169.254/16 are not,
# and the device's private service stays out of reach by each.
grep -qx '10.99.0.13 hostile.test' "$S/etc/hosts" || fail "hostile.test's outside address is not kept"
[ "$(grep -c hostile.test "$S/etc/hosts")" = 1 ] || { cat "$S/etc/hosts" >&2; fail "hostile.test kept an address of the device"; }
expect 0 wide inapp "$DRIVER" connect hostile.test 7000
for a in 100.127.0.21 10.99.0.2 169.254.169.254; do
  expect 1 "" inapp "$DRIVER" connect "$a" 2222
done
event connection sensor 100.127.0.21:2222
event connection sensor 10.99.0.2:2222
grep -q "hostile.test resolved to 10.99.0.2, the device's own: refused" "$T/monitor.log" ||
  { cat "$T/monitor.log" >&2; fail "the device's address in an answer was not refused"; }
# An app that renumbers its end (it may, inside its own namespace) cannot pass for another: only
# its own address gets out, even to an allowed destination. (Over UDP, which needs no answer to
# get through: the server counts what arrives.)
datagrams() { grep -c 'datagram from 10.99.0.2$' "$T/udp-8080.log" || true; }
expect 0 answered inapp "$DRIVER" udp allowed.test 8080
[ "$(datagrams)" = 1 ] || fail "the allowed UDP server saw $(datagrams) datagrams, not 1"
inapp ip addr add 100.127.0.30/32 dev eth0
inapp ip route replace default via 100.127.0.21 src 100.127.0.30
expect 2 "" inapp "$DRIVER" udp allowed.test 8080
inapp ip route replace default via 100.127.0.21 src "$APP_ADDR"
inapp ip addr del 100.127.0.30/32 dev eth0
[ "$(datagrams)" = 1 ] || fail "a datagram from a renumbered app got out"
expect 0 answered inapp "$DRIVER" udp allowed.test 8080
ok
# The app's /etc is read-only to it.
inapp sh -c 'echo 10.99.0.20 forbidden.test >>/etc/hosts' 2>/dev/null && fail "the app wrote its hosts file"
ok

# Listening: the listed ports are reachable from outside (through the device's address, and
# directly), an unlisted one is not, and what reaches it directly becomes an event.
app_serve tcp 0.0.0.0 8080 app-8080
app_serve tcp 0.0.0.0 9001 app-9001
app_serve udp 0.0.0.0 5683 app-coap
app_serve udp 0.0.0.0 5684 app-5684
for p in 8080 9001; do wait_for "the app's server on $p" inapp "$DRIVER" connect 127.0.0.1 "$p"; done
for p in 5683 5684; do wait_for "the app's server on udp $p" inapp "$DRIVER" udp 127.0.0.1 "$p"; done
expect 0 app-8080 innet "$DRIVER" connect 10.99.0.2 8080
expect 0 app-8080 innet "$DRIVER" connect "$APP_ADDR" 8080
expect 0 answered innet "$DRIVER" udp 10.99.0.2 5683
expect 1 "" innet "$DRIVER" connect 10.99.0.2 9001
expect 1 "" innet "$DRIVER" connect "$APP_ADDR" 9001
event listen sensor "tcp 9001 from 10.99.0.1"
expect 1 "" innet "$DRIVER" udp "$APP_ADDR" 5684
event listen sensor "udp 5684 from 10.99.0.1"
# The device's own processes (the monitor's namespace) reach it only on its listed ports too.
expect 0 app-8080 inmon "$DRIVER" connect "$APP_ADDR" 8080
expect 1 "" inmon "$DRIVER" connect "$APP_ADDR" 9001

# A DNS outage does not cut the app off: a name that does not resolve keeps its last addresses.
kill "$DNS_PID"
wait "$DNS_PID" 2>/dev/null || true
rm -f "$S/refreshed"
kill -USR1 "$MONITOR_PID"
wait_for "a refresh without DNS" test -s "$S/refreshed"
grep -q '^10.99.0.10 allowed.test$' "$S/etc/hosts" || fail "a failed resolution emptied the hosts file"
expect 0 allowed-8080 inapp "$DRIVER" connect allowed.test 8080

# Re-resolution: allowed.test moves to 10.99.0.11; on demand, the monitor resolves it again, the
# app's hosts file and the allowed set follow, and the old address is no longer allowed.
start_dns 10.99.0.11
wait_for "dnsmasq's new answer" sh -c "ip netns exec $MON unshare -m sh -c 'mount --bind $T/resolv.conf /etc/resolv.conf && exec getent ahostsv4 allowed.test' | grep -q 10.99.0.11"
grep -q 10.99.0.11 "$S/etc/hosts" && fail "the hosts file changed before re-resolution"
kill -USR1 "$MONITOR_PID"
wait_for "the new address in the app's hosts file" grep -q '^10.99.0.11 allowed.test$' "$S/etc/hosts"
grep -q '^10.99.0.10 ' "$S/etc/hosts" && fail "the old address is still in the hosts file"
expect 0 allowed-moved inapp "$DRIVER" connect allowed.test 8080
expect 1 "" inapp "$DRIVER" connect 10.99.0.10 8080
event connection sensor 10.99.0.10:8080

# Teardown: the table, the link and the app are gone from the monitor's namespace.
stop_monitor
inmon nft list tables | grep -q rampart && fail "the table outlived the monitor"
inmon ip -o link show | grep -q rpv && fail "the app's link outlived the monitor"
kill -0 "$APP" 2>/dev/null && fail "the app outlived the monitor"
ok

# Re-resolution on the monitor's period, with no one asking: allowed.test moves back to .10.
start_monitor periodic 6 --allow allowed.test:8080 --refresh-ms 200
expect 0 allowed-moved inapp "$DRIVER" connect allowed.test 8080
kill "$DNS_PID"
wait "$DNS_PID" 2>/dev/null || true
start_dns 10.99.0.10
wait_for "the periodic refresh" grep -q '^10.99.0.10 allowed.test$' "$S/etc/hosts"
expect 0 allowed-8080 inapp "$DRIVER" connect allowed.test 8080
stop_monitor

# An app that lists nothing has loopback only: no link, no route anywhere.
start_monitor bare 8
inapp ip -o link show >"$T/links"
[ "$(wc -l <"$T/links")" = 1 ] && grep -q ': lo:.*UP' "$T/links" || { cat "$T/links" >&2; fail "the bare app has more than loopback"; }
inmon ip -o link show | grep -q rpv && fail "a link was made for an app with no network"
expect 1 "" inapp "$DRIVER" connect 10.99.0.10 8080
app_serve tcp 127.0.0.1 7777 loop
wait_for "the bare app's loopback" inapp "$DRIVER" connect 127.0.0.1 7777
ok
stop_monitor

# The names are resolved by rampart-unpack, confined: its answer, in the addresses' binary form
# ('a', then per name a count and IPv4 addresses), for a name, another, and one dnsmasq lacks.
inmon unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$T/resolv.conf" \
  "$UNPACK" resolve allowed.test forbidden.test nosuch.test >"$T/answer"
[ "$(od -An -tx1 "$T/answer" | tr -d ' \n')" = 61010a63000a010a63001400 ] ||
  fail "rampart-unpack resolve answered $(od -An -tx1 "$T/answer")"
ok
# A resolver that answers garbage, or dies: the app gets no address for its name (and the monitor
# says why), while its IP entry still holds. The child runs as the unpack user: it must reach them.
chmod 711 "$T"
printf '#!/bin/sh\nprintf "a\\011garbage"\n' >"$T/garbage"
printf '#!/bin/sh\nkill -SEGV $$\n' >"$T/dies"
printf '#!/bin/sh\nprintf "a\\001\\251\\376\\251\\376"\n' >"$T/metadata" # 169.254.169.254
chmod 755 "$T/garbage" "$T/dies" "$T/metadata"
for bad in garbage dies metadata; do
  start_monitor "$bad" 9 --allow allowed.test:8080 --allow 10.99.0.12 --resolver "$T/$bad"
  grep -q allowed.test "$S/etc/hosts" && fail "a $bad resolver's answer reached the hosts file"
  expect 3 "" inapp "$DRIVER" connect allowed.test 8080
  expect 1 "" inapp "$DRIVER" connect 10.99.0.10 8080
  expect 0 by-ip inapp "$DRIVER" connect 10.99.0.12 9999
  stop_monitor
done
grep -q "garbage: its allowed names are not resolved (the resolved addresses are refused: a name has more addresses than are kept" "$T/monitor.log" ||
  { cat "$T/monitor.log" >&2; fail "the garbage answer was not refused as such"; }
grep -q "metadata: its allowed names are not resolved (the resolved addresses are refused: a name has an address no app may reach" "$T/monitor.log" ||
  { cat "$T/monitor.log" >&2; fail "the metadata address in an answer was not refused"; }
grep -q "dies: its allowed names are not resolved (rampart-unpack failed)" "$T/monitor.log" ||
  { cat "$T/monitor.log" >&2; fail "the resolver's death was not said"; }
ok

# Nothing is left: our namespaces go, and no link or table of ours is in the host's namespace.
cleanup
trap - EXIT
ip netns list | grep -q "rpnp-.*-$$" && fail "namespaces left"
ip -o link show | grep -q "np$$" && fail "links left on the host"
[ "$(nft list tables | grep -c rampart || true)" = "$host_tables_before" ] || fail "a table was left in the host's nftables"
ok
echo "netpolicy: $CHECKS checks passed"
