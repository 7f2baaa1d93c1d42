#!/usr/bin/env bash
# The escape suite (issue 10, section 6): a hostile app in C (tests/e2e/escape-app.c, built here)
# tries every way out of its compartment we know of, one app per case (the system calls the
# seccomp allow-list refuses: four apps, by theme, each call told apart by its event's reason). Each attempt must fail,
# and be recorded as a security event wherever the kernel or the monitor can see it; where a
# refusal is by design invisible to them (a path that is simply not in the compartment, a
# read-only mount), the case says why and is counted apart. Landlock's refusals are events
# ("landlock", from the kernel's audit records) where the app's missing layers do not say
# "Landlock refusals are not seen" (a kernel below Landlock ABI 7). Each allowed path must work.
# The summary says how many were tried, refused and recorded.
#
# The apps run the way a device runs apps: each case's app is an app image (a directory with its
# app_manifest.json and the escape-app binary, signed with `rampart image sign --type app`),
# installed by `rampart-agent install` (as the unprivileged agent's user) into a provisioned
# device served by the real rampart-monitor, which tries it in its compartment, confirms it and
# runs it under its app supervisor with the manifest's network policy. Everything is read back as
# an operator would: `rampart-agent app logs` (what the app said), `rampart-agent events --output
# json` (app, kind, reason), `rampart-agent app list --output json` (state, restarts, the limits
# in force). Each app tries its escape, says "result: N" and that it is ready, then stays up:
# the install's trial and the confirmed version each try it once (escape-app.c, "stay"). Two apps
# talk over the app channel the monitor serves them, and a third, not listed, is refused.
#
# A device holds at most 16 components (RP_COMPONENTS_MAX, device/monitor/slots.h) and nothing
# removes one, so the cases are spread over several devices (state directories), one after the
# other, each with its own monitor; a device is checked when it is stopped (every expected event
# there, none where none was, every app still up and never restarted, nothing left behind).
#
# The network is a small internet of network namespaces on this machine, never any outside
# address:
#   NET (10.98.0.0/24, the "internet"): allowed.test 10.98.0.10 (:8080, :8081), an IP-only host
#       10.98.0.12 (:9999), forbidden.test 10.98.0.20 (:8080), dnsmasq 10.98.0.53 (every name)
#   MON (10.98.0.2): the device's network side, where rampart-monitor runs (its network policy:
#       the table inet rampart, the apps' links), resolving names via dnsmasq
#
# One function, launch, starts every case. Run as root. Everything made (namespaces, mounts, loop
# devices, cgroups, nftables tables, device nodes, monitor processes) is removed also on failure,
# and the end checks that nothing is left.
[ "$(id -u)" = 0 ] || { echo "FAIL: escape.sh runs rampart-monitor, which builds namespaces, mounts and cgroups: run it as root" >&2; exit 1; }
: "${RAMPART:?set RAMPART to the rampart binary}"
: "${AGENT:?set AGENT to the rampart-agent binary}"
: "${MONITOR:?set MONITOR to the rampart-monitor binary}"
: "${DRIVER:?set DRIVER to the netpolicy-driver binary: the servers of the test internet}"
: "${APP_PEER:?set APP_PEER to the app-peer test app (with the app channel client library)}"
. "$(dirname "$0")/lib.sh"
for tool in ip nsenter unshare dnsmasq nft jq gcc losetup setpriv python3; do
  command -v "$tool" >/dev/null || fail "escape.sh needs $tool"
done
U=daemon # the agent's user: rampart-agent runs unprivileged, as on a device
getent passwd "$U" >/dev/null || fail "escape.sh needs the user $U (the agent's)"
AS_U=(setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups)
d=$E2E_DIR
chmod 755 "$d"
mkdir -m 755 "$d/pub" "$d/apps" # what the agent's user reads: the images
NET=rpesc-net-$$ MON=rpesc-mon-$$
testdev=/dev/rampart-esc-$$ otherdev=/dev/rampart-esc-other-$$
APPS_MAX=16 # RP_COMPONENTS_MAX: the components one device holds
START=$SECONDS

MON_PID= S= DEV=0 NAPPS=0 TAGS=()
# The tag in the names of a device's cgroups (rampart.COMPONENT.TAG): FNV-1a of its state
# directory's real path, as compartment.c's state_tag makes it (checked against a running app's
# own cgroups when the device stops). By it, this test's cgroups are told from those of other
# tests on the machine, which may run apps of the same names.
cg_tag() {
  python3 -c 'import os, sys
h = 2166136261
for b in os.fsencode(os.path.realpath(sys.argv[1])):
    h = ((h ^ b) * 16777619) & 0xffffffff
print("%08x" % h)' "$1"
}
cgroups_of() { find /sys/fs/cgroup -maxdepth 6 -type d -name "rampart.*.$1" 2>/dev/null || true; }
# Stop the device's monitor: SIGTERM stops every app and removes the network policy; one that
# does not stop in time is killed (its app supervisor and compartments die with it).
monitor_stop() {
  [ -n "$MON_PID" ] || return 0
  kill -TERM "$MON_PID" 2>/dev/null || true
  local end=$((SECONDS + 60))
  while kill -0 "$MON_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
  kill -KILL "$MON_PID" 2>/dev/null || true
  MON_RC=0
  wait "$MON_PID" 2>/dev/null || MON_RC=$?
  MON_PID=
}
full_cleanup() {
  local pid g t
  monitor_stop
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  E2E_PIDS=()
  ip netns del "$MON" 2>/dev/null || true # the policy's table and the apps' links go with it
  ip netns del "$NET" 2>/dev/null || true
  # After a monitor killed outright: its apps' cgroups and loop devices
  for t in "${TAGS[@]}"; do
    for g in $(cgroups_of "$t"); do rmdir "$g" 2>/dev/null || true; done
  done
  for l in $(losetup -a 2>/dev/null | grep -F "$d/" | cut -d: -f1 || true); do losetup -d "$l" 2>/dev/null || true; done
  rm -f "$testdev" "$otherdev"
  cleanup
}
trap full_cleanup EXIT

# ---- the hostile app, the signing key, the manifests
gcc -O1 -Wall -Werror -o "$d/escape-app" "$(dirname "$0")/escape-app.c" -lresolv
echo "tree data" >"$d/data.txt"
chmod 755 "$d/escape-app"
chmod 644 "$d/data.txt"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/img.key"
expect 0 "$RAMPART" key public --key "$d/img.key" --out "$d/img.pub"
# The hostile app's manifest: an allowed name on one port and an address on every port (so that
# Landlock leaves TCP connects to the network policy, the layer under test here), storage, small
# limits. launch sets ComponentId, Name and Cmdline per case.
jq -n '{SchemaVersion: 1, Name: "hostile", ComponentId: "hostile", EntryPoint: "escape-app",
  AllowedConnections: ["allowed.test:8080", "10.98.0.12"], MutableStorage: {SizeKB: 1024},
  Memory: {LimitKB: 32768}, Pids: {Max: 16}}' >"$d/hostile.json"
# The same with only a host and port listed: Landlock then handles TCP connects too.
jq '.AllowedConnections = ["allowed.test:8080"]' "$d/hostile.json" >"$d/hostile-port.json"
# The listener: its server ports and its device.
jq -n --arg dev "$testdev" '{SchemaVersion: 1, Name: "listener", ComponentId: "listener",
  EntryPoint: "escape-app", AllowedTcpServerPorts: [8080], AllowedUdpServerPorts: [5683],
  Devices: [$dev], MutableStorage: {SizeKB: 1024}}' >"$d/listener.json"
# The apps that talk to each other over the app channel (descriptor 4): app-peer, linked with the
# client library (device/app/), run by a script that says it is ready and stays up like the
# hostile app. Each manifest lists the apps it may talk to; the answerer lists the caller, not the
# stranger.
mkdir -m 755 "$d/peer"
cp "$APP_PEER" "$d/peer/app-peer"
cat >"$d/peer/peer.sh" <<'EOF'
#!/bin/sh
# app-peer as an app the monitor supervises: its answers, or its call; then it stays up
echo started
trap 'exit 0' TERM
if [ "$1" = answer ]; then
  echo ready >&"$RAMPART_READY_FD"
  while :; do /app/app-peer answer 3600000 & wait $!; done
fi
/app/app-peer "$@"
echo "result: $?"
echo ready >&"$RAMPART_READY_FD"
while :; do sleep 3600 & wait $!; done
EOF
chmod 755 "$d/peer/app-peer" "$d/peer/peer.sh"
peer_manifest() { # NAME PEER...
  jq -n --arg n "$1" '{SchemaVersion: 1, Name: $n, ComponentId: $n, EntryPoint: "peer.sh",
    AllowedApplicationConnections: $ARGS.positional}' --args "${@:2}" >"$d/$1.json"
}
peer_manifest answerer esc-caller
peer_manifest caller esc-answerer
peer_manifest stranger esc-answerer
mknod -m 666 "$testdev" c 1 3 # devices of our own (they behave as /dev/null)
mknod -m 666 "$otherdev" c 1 3

# ---- the small internet
ip netns add "$NET"
ip netns add "$MON"
innet() { ip netns exec "$NET" "$@"; }
inmon() { ip netns exec "$MON" "$@"; }
innet ip link set lo up
inmon ip link set lo up
ip link add "esc$$a" netns "$NET" type veth peer name "esc$$b" netns "$MON"
innet ip link set "esc$$a" name vmon
inmon ip link set "esc$$b" name up0
for a in 1 10 12 20 53; do innet ip addr add "10.98.0.$a/24" dev vmon; done
innet ip link set vmon up
inmon ip addr add 10.98.0.2/24 dev up0
inmon ip link set up0 up
inmon ip route add default via 10.98.0.1
innet ip route add 100.127.0.0/16 via 10.98.0.2 # the apps' links, reached through the device
serve() { ip netns exec "$NET" "$DRIVER" serve "$@" >/dev/null & E2E_PIDS+=($!); }
serve tcp 10.98.0.10 8080 allowed-8080
serve tcp 10.98.0.10 8081 allowed-8081
serve tcp 10.98.0.12 9999 by-ip
serve tcp 10.98.0.20 8080 forbidden
innet dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --listen-address=10.98.0.53 --user=root --pid-file= \
  --address=/allowed.test/10.98.0.10 --address=/forbidden.test/10.98.0.20 2>"$d/dnsmasq.log" &
E2E_PIDS+=($!)
printf 'nameserver 10.98.0.53\n' >"$d/resolv.conf"
for hp in 10.98.0.10:8080 10.98.0.10:8081 10.98.0.12:9999 10.98.0.20:8080; do
  wait_until 30 innet "$DRIVER" connect "${hp%:*}" "${hp#*:}" >/dev/null 2>&1 || fail "the server at $hp did not start"
done
wait_until 30 inmon "$DRIVER" dns 10.98.0.53 forbidden.test >/dev/null 2>&1 || fail "dnsmasq did not start"

# ---- the checks, and what the summary counts
TRIED=0 REFUSED=0 RECORDED=0 UNSEEN=0 ALLOWED=0
UNSEEN_LIST=()
EXPECTED=() NONE=() STAYING=()
# The checks read what the operator's commands said into files, then look with the shell's own
# matching: on a loaded machine, a process per look is what would make the suite slow.
# text FILE: the file's text in $TEXT (no process).
text() { TEXT=; [ -f "$1" ] && IFS= read -r -d '' TEXT <"$1" || true; }
# logs LABEL: the app's log as the operator reads it, into $d/LABEL.log (and $TEXT).
logs() { "$AGENT" app logs --state-dir "$S" "esc-$1" >"$d/$1.log" 2>"$d/$1.logerr" && text "$d/$1.log"; }
# in_text TEXT: $TEXT has a line starting with TEXT (AT=line), or TEXT anywhere (AT=any).
AT=any
in_text() {
  if [ "$AT" = line ]; then
    [[ $'\n'$TEXT == *$'\n'"$1"* ]]
  else
    [[ $TEXT == *"$1"* ]]
  fi
}
# What was read last is looked at first (a log only grows), then read again until it says it.
log_now_has() { { text "$d/$1.log" && in_text "$2"; } || { logs "$1" && in_text "$2"; }; }
# log_has LABEL TEXT: the app said TEXT (waited for: a run may still be saying it). AT=line: a
# line starts with TEXT.
log_has() {
  wait_until 30 log_now_has "$1" "$2" || {
    cat "$d/$1.log" "$d/$1.logerr" "$d/$1.out" >&2
    tail -20 "$d/monitor$DEV.log" >&2
    fail "$1: its log lacks '$2'"
  }
  E2E_CHECKS=$((E2E_CHECKS + 1))
}
# out_of LABEL TEXT: what `rampart-agent install` said.
out_of() { grep -qF -- "$2" "$d/$1.out" || { cat "$d/$1.out" >&2; fail "$1: the install's output lacks '$2'"; }; E2E_CHECKS=$((E2E_CHECKS + 1)); }
# no_escape LABEL: nothing in its log escaped, nor failed where it should have worked.
no_escape() {
  logs "$1" || fail "$1: no log: $(cat "$d/$1.logerr")"
  if [[ $TEXT == *ESCAPED* || $TEXT == *FAILED* ]]; then
    cat "$d/$1.log" >&2
    fail "$1: $(grep -m3 'ESCAPED\|FAILED' "$d/$1.log" | tr '\n' ' ')"
  fi
}
# refused LABEL APPCASE: the app saw its attempt fail (and nothing escaped).
refused() {
  TRIED=$((TRIED + 1))
  AT=line log_has "$1" "$2: " # its verdict, whichever it is
  no_escape "$1"
  AT=line log_has "$1" "$2: refused"
  REFUSED=$((REFUSED + 1))
}
# events_json: the events as `rampart-agent events --output json` gives them; $d/events.lines has
# one "app|kind|reason" line per event whose time is a number, and "dropped N" first.
events_json() {
  "$AGENT" events --state-dir "$S" --output json >"$d/events.json" 2>"$d/events.err" &&
    jq -r '"dropped \(.dropped)", (.events[] | select(.at | type == "number") | "\(.app)|\(.kind)|\(.reason)")' \
      "$d/events.json" >"$d/events.lines" 2>>"$d/events.err"
}
# event_in LABEL KIND REASON: an event of app esc-LABEL, kind KIND, whose reason starts with
# REASON, in what was read last. event_in LABEL: any event of esc-LABEL.
event_in() { text "$d/events.lines" && AT=line in_text "esc-$1|${2:-}${2:+|}${3:-}"; }
# has_event LABEL KIND REASON: the event log, as the operator reads it, holds that event.
has_event() { event_in "$@" || { events_json && event_in "$@"; }; }
# event LABEL KIND REASON: recorded (waited for), and checked again when the device stops.
event() {
  wait_until 30 has_event "$@" || { cat "$d/events.err" >&2; tail -10 "$d/events.lines" >&2; fail "$1: no $2 event '$3' for esc-$1"; }
  EXPECTED+=("$1|$2|$3")
  RECORDED=$((RECORDED + 1))
  E2E_CHECKS=$((E2E_CHECKS + 1))
}
no_event_of() { # no_event_of LABEL: its runs recorded nothing (checked again when the device stops)
  events_json || fail "rampart-agent events: $(cat "$d/events.err")"
  ! event_in "$1" || fail "$1: an event where none was expected: $(grep "^esc-$1|" "$d/events.lines")"
  NONE+=("$1")
  E2E_CHECKS=$((E2E_CHECKS + 1))
}
no_event() { # no_event LABEL WHY: refused where neither the kernel nor the monitor can see it
  no_event_of "$1"
  UNSEEN=$((UNSEEN + 1))
  UNSEEN_LIST+=("$1 ($2)")
}
allowed() { ALLOWED=$((ALLOWED + 1)); }
# app_field LABEL JQ: a field of esc-LABEL's entry in `rampart-agent app list --output json`.
app_field() {
  "$AGENT" app list --state-dir "$S" --output json 2>/dev/null |
    jq -r --arg c "esc-$1" ".[] | select(.component == \$c) | $2"
}
app_ready() { [ "$(app_field "$1" .state)" = ready ]; }
wait_ready() {
  wait_until 60 app_ready "$1" || { "$AGENT" app list --state-dir "$S" >&2; cat "$d/monitor$DEV.log" >&2; fail "esc-$1 never got ready"; }
}
# The app's address and gateway, as the newest of its "net: ADDRESS GATEWAY" lines says.
net_of() { logs "$1" && sed -n 's/^net: //p' "$d/$1.log" | tail -1; }

# ---- the devices
# A new device: provisioned (a soft root of trust, trusting the test's image key), served by
# rampart-monitor in the MON namespace (its network side), its resolver pointed at dnsmasq.
device_start() {
  DEV=$((DEV + 1)) NAPPS=0 EXPECTED=() NONE=() STAYING=() DEV_START=$SECONDS
  S=$d/dev$DEV
  expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/img.pub"
  TAG=$(cg_tag "$S")
  TAGS+=("$TAG")
  # nsenter, not `ip netns exec`: that one mounts a sysfs of the namespace over /sys, hiding the
  # cgroup hierarchies from the monitor (its apps would get no cgroup limits)
  nsenter --net="/run/netns/$MON" unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' \
    "$d/resolv.conf" "$MONITOR" --state-dir "$S" --agent-user "$U" >"$d/monitor$DEV.log" 2>&1 &
  MON_PID=$!
  serving() {
    kill -0 "$MON_PID" 2>/dev/null || { cat "$d/monitor$DEV.log" >&2; fail "the monitor died at start"; }
    "${AS_U[@]}" "$AGENT" app list --state-dir "$S" >/dev/null 2>&1
  }
  wait_until 60 serving || { cat "$d/monitor$DEV.log" >&2; fail "the monitor did not serve $S"; }
}
# The device's checks, then it stops: every app that stayed is up and was never restarted, and its
# log has both its runs (trial, confirmed) with nothing escaped; every expected event is in the
# log, none where none was, none dropped; after SIGTERM, nothing of its apps is left.
device_stop() {
  local e label kind reason pid pids=() cgs started
  # app list, one line per app: "component state restarts pid"
  all_ready() {
    "$AGENT" app list --state-dir "$S" --output json >"$d/list.json" 2>/dev/null &&
      jq -r '.[] | "\(.component) \(.state) \(.restarts) \(.pid)"' "$d/list.json" >"$d/list.lines" || return 1
    text "$d/list.lines"
    for label in "${STAYING[@]}"; do AT=line in_text "esc-$label ready " || return 1; done
  }
  wait_until 60 all_ready || { cat "$d/list.json" "$d/monitor$DEV.log" >&2; fail "device $DEV: not every app is up"; }
  for label in "${STAYING[@]}"; do
    AT=line in_text "esc-$label ready 0 " || fail "esc-$label was restarted (killed, not refused): $(cat "$d/list.lines")"
    no_escape "$label"
    started=$(grep -c '^started$' "$d/$label.log")
    [ "$started" -ge 2 ] || { cat "$d/$label.log" >&2; fail "$label: not both runs (trial, confirmed) in its log"; }
    text "$d/list.lines"
    E2E_CHECKS=$((E2E_CHECKS + 2))
  done
  events_json || fail "rampart-agent events: $(cat "$d/events.err")"
  text "$d/events.lines"
  AT=line in_text "dropped 0"$'\n' || fail "events dropped: $(head -1 "$d/events.lines")"
  for e in "${EXPECTED[@]}"; do
    IFS='|' read -r label kind reason <<<"$e"
    AT=line in_text "esc-$label|$kind|$reason" || fail "rampart-agent events lacks esc-$label's $kind event '$reason'"
    E2E_CHECKS=$((E2E_CHECKS + 1))
  done
  for label in "${NONE[@]}"; do
    ! AT=line in_text "esc-$label|" || fail "rampart-agent events has an event of esc-$label, where none was expected"
    E2E_CHECKS=$((E2E_CHECKS + 1))
  done
  # the apps' processes: each compartment's init (app list's pid) and what runs under it (app uids
  # are not this test's alone: other monitors on the machine allocate from the same range)
  for pid in $(jq -r '.[].pid' "$d/list.json"); do
    pids+=("$pid" $(pgrep -P "$pid" || true))
  done
  cgs=$(cgroups_of "$TAG")
  if [ -n "$cgs" ]; then
    pid=$(jq -r '.[0].pid' "$d/list.json")
    grep -q "/rampart\.esc-[^/]*\.$TAG\$" "/proc/$pid/cgroup" || fail "the apps' cgroups are not named as this test expects: $(cat "/proc/$pid/cgroup")"
  else
    echo "note: no cgroup of the apps found (no cgroup controller for the monitor here)" >&2
  fi
  monitor_stop
  eq "$MON_RC" 0 "the monitor's exit status after SIGTERM"
  for pid in "${pids[@]}"; do
    ! kill -0 "$pid" 2>/dev/null || fail "an app's process ($(ps -o pid=,args= -p "$pid")) outlived the monitor"
  done
  [ -z "$(cgroups_of "$TAG")" ] || fail "cgroups outlived the monitor: $(cgroups_of "$TAG")"
  ! losetup -a | grep -qF "$S/" || fail "a loop device outlived the monitor: $(losetup -a)"
  ! inmon nft list tables | grep -q rampart || fail "the network policy's table outlived the monitor"
  ! inmon ip -o link show | grep -q ' rpv' || fail "an app's link outlived the monitor"
  E2E_CHECKS=$((E2E_CHECKS + 6))
  echo "device $DEV: $NAPPS apps, checked and stopped ($((SECONDS - DEV_START)) s)"
}
# room N: the next N apps go on one device (a new one when the current one has no room).
room() {
  if [ -z "$MON_PID" ]; then
    device_start
  elif [ $((NAPPS + $1)) -gt $APPS_MAX ]; then
    device_stop
    device_start
  fi
}

# ---- launching a case
# launch [--manifest M] [--device DEV]... [--fails] [--peer] LABEL -- APP ARGS...
# makes the app image of the case: a tree with the escape-app binary, a file of data and its
# manifest (M, default the hostile one; component esc-LABEL; Cmdline "stay" APP ARGS...; DEV added
# to its Devices), or with --peer the app-peer tree (Cmdline ARGS...), signed; then installs it on the device as the agent's user, which returns once
# the monitor's trial of it is over (the app said it is ready). --fails: the install must be
# refused (the trial failed). What the install said is $d/LABEL.out.
launch() {
  local manifest=$d/hostile.json fails=0 devs=() rc=0 peer=0
  while :; do
    case $1 in
      --manifest) manifest=$2; shift 2 ;;
      --peer) peer=1; shift ;;
      --device) devs+=("$2"); shift 2 ;;
      --fails) fails=1; shift ;;
      *) break ;;
    esac
  done
  local label=$1 tree=$d/apps/$1
  shift
  [ "${1:-}" = -- ] && shift
  room 1
  mkdir -m 755 "$tree"
  if [ $peer = 1 ]; then
    cp -p "$d/peer/app-peer" "$d/peer/peer.sh" "$tree/"
  else
    cp -p "$d/escape-app" "$d/data.txt" "$tree/"
    set -- stay "$@"
  fi
  jq --arg c "esc-$label" --arg devs "$(IFS=,; echo "${devs[*]}")" \
    '.ComponentId = $c | .Name = $c | .Cmdline = $ARGS.positional
     | if $devs == "" then . else .Devices = ((.Devices // []) + ($devs | split(","))) end' \
    "$manifest" --args "$@" >"$tree/app_manifest.json"
  "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --type app "$tree" "$d/pub/$label.img" \
    >"$d/$label.sign" 2>&1 || { cat "$d/$label.sign" >&2; fail "$label: the image could not be signed"; }
  chmod 644 "$d/pub/$label.img"
  NAPPS=$((NAPPS + 1))
  "${AS_U[@]}" "$AGENT" install --state-dir "$S" --component "esc-$label" --health-seconds 30 \
    "$d/pub/$label.img" >"$d/$label.out" 2>&1 || rc=$?
  E2E_CHECKS=$((E2E_CHECKS + 1))
  if [ $fails = 1 ]; then
    [ $rc != 0 ] || { cat "$d/$label.out" >&2; fail "$label: installed, where its trial should have failed"; }
  else
    [ $rc = 0 ] || { cat "$d/$label.out" "$d/monitor$DEV.log" >&2; fail "$label: the install failed ($rc)"; }
    STAYING+=("$label")
  fi
}

# syscall LABEL CALL [APPCASE]: refused by the seccomp allow-list; the monitor, notified, answers
# EPERM and records "CALL (NR)".
syscall() {
  launch "$1" -- "${3:-$1}"
  refused "$1" "${3:-$1}"
  log_has "$1" "result: 0"
  event "$1" syscall "$2 ("
}
# syscalls LABEL CASE:CALL...: one app tries each case in turn, each in a process of its own; each
# is refused by the seccomp allow-list and recorded with its own call ("CALL (NR)").
syscalls() {
  local label=$1 list="" c
  shift
  for c in "$@"; do list+="${list:+,}${c%%:*}"; done
  launch "$label" -- "$list"
  for c in "$@"; do
    refused "$label" "${c%%:*}"
    log_has "$label" "result: ${c%%:*} 0"
    event "$label" syscall "${c#*:} ("
  done
}

# ==== the allowed paths
launch --device "$testdev" allowed -- allowed "$testdev"
log_has allowed "allowed: ok kept=1 env=esc-allowed,1.0.0+0,3,/data,/data cwd=/data"
allowed # its own device, /data, /tmp, its tree, the contract
# The layers in force, as `app list` tells them: what is missing may only be an optional layer the
# host lacks (said here), never the user, cgroup or seccomp notification ones the suite counts on;
# the storage quota is the manifest's.
wait_ready allowed
"$AGENT" app list --state-dir "$S" --output json >"$d/list.json"
missing=$(jq -r '.[] | select(.component == "esc-allowed") | .missing' "$d/list.json")
for layer in "user namespace" "cgroup namespace" "seccomp refusals"; do
  case $missing in *"$layer"*) fail "allowed: not in force: $missing" ;; esac
done
jq -e '.[] | select(.component == "esc-allowed") | .limits.storage_kb == 1024 and .pid > 0' "$d/list.json" >/dev/null ||
  fail "allowed: its storage quota is not in force: $(cat "$d/list.json")"
E2E_CHECKS=$((E2E_CHECKS + 2))
case $missing in "" | "Landlock leaves TCP connect ports open"*) ;; *) echo "note: layers missing on this host: $missing" >&2 ;; esac
# Landlock's refusals seen (audit.h): its cases then expect a landlock event, none otherwise.
LL_SEEN=1
case $missing in *"no Landlock"* | *"Landlock refusals are not seen"*) LL_SEEN= ;; esac
# its storage kept across runs: the confirmed version finds what its trial wrote
log_has allowed "allowed: ok kept=2"
allowed
launch rlimit-lower -- rlimit-lower
log_has rlimit-lower "rlimit-lower: ok"
no_event_of rlimit-lower
allowed # lowering its own limit, without an event
launch net-name-ok -- connect allowed.test 8080
log_has net-name-ok "connect: ok (allowed.test:8080 said allowed-8080)"
allowed # a listed host by name
launch net-ip-ok -- connect 10.98.0.12 9999
log_has net-ip-ok "connect: ok (10.98.0.12:9999 said by-ip)"
allowed # a listed host by IP (every port)
slot_net=$(net_of net-ip-ok)
[ -n "$slot_net" ] && [ "${slot_net#* }" != "-" ] || fail "the monitor did not set up the app's link: $(cat "$d/net-ip-ok.log")"

# ==== the reader of the kernel's refusals (docs/monitor.md, evreader.h): a confined child of the
# app supervisor (rampart-unpack read). Killed with -9, it is restarted (said once in the log) and
# every network and Landlock event below still comes through the new one.
reader_pid() {
  ps -eo pid=,ppid=,args= | awk -v m="$MON_PID" '{ pp[$1] = $2; exe[$1] = $3; mode[$1] = $4 }
    END { for (i in pp) if (mode[i] == "read" && exe[i] ~ /rampart-unpack$/ && pp[pp[i]] == m) print i }'
}
READER=$(reader_pid)
[ -n "$READER" ] || fail "no event reader (rampart-unpack read) runs under the app supervisor"
kill -KILL "$READER"
reader_back() { local now; now=$(reader_pid); [ -n "$now" ] && [ "$now" != "$READER" ]; }
wait_until 30 reader_back || { tail -20 "$d/monitor$DEV.log" >&2; fail "the event reader killed with -9 was not restarted"; }
grep -q "the event reader died (status 9" "$d/monitor$DEV.log" || fail "the reader's death was not said in the log"
# the kernel's count of lost audit records is read every tick on the supervisor's own socket (made
# in the initial network namespace, this monitor being in another)
! grep -q "count of lost audit records cannot be read" "$d/monitor$DEV.log" || fail "AUDIT_GET failed: $(grep 'lost audit' "$d/monitor$DEV.log")"
E2E_CHECKS=$((E2E_CHECKS + 3))

# ==== the network: only what the manifest lists
# an unlisted host by IP: refused by the monitor's filter, recorded with the destination
launch net-ip -- connect-refused 10.98.0.20 8080
refused net-ip connect-refused
event net-ip connection "10.98.0.20:8080"
# a listed host on an unlisted port
launch net-port -- connect-refused allowed.test 8081
refused net-port connect-refused
event net-port connection "10.98.0.10:8081"
# the DNS server, to resolve other names or tunnel through it
launch net-dns -- dns 10.98.0.53 forbidden.test
refused net-dns dns
event net-dns connection "udp 10.98.0.53:53"
# the device itself, through the app's gateway (its own services)
launch net-gateway -- connect-refused gateway 22
refused net-gateway connect-refused
gateway=$(net_of net-gateway)
gateway=${gateway#* }
[ -n "$gateway" ] && [ "$gateway" != "-" ] || fail "net-gateway: no gateway: $(cat "$d/net-gateway.log")"
event net-gateway connection "$gateway:22"
# with only host:port entries, Landlock's connect rule (ABI >= 4) is a second fence for ports: the
# listed one works, another port is refused by Landlock (EACCES) before any packet leaves, so the
# network policy never sees it: the event is Landlock's (without Landlock's network rules, the
# policy refuses it and records it)
launch --manifest "$d/hostile-port.json" net-port-ll-ok -- connect allowed.test 8080
log_has net-port-ll-ok "connect: ok (allowed.test:8080 said allowed-8080)"
allowed # a listed host and port, under Landlock's connect rule
launch --manifest "$d/hostile-port.json" net-port-ll -- connect-refused allowed.test 8081
refused net-port-ll connect-refused
if [ -z "$(app_field net-port-ll .missing | grep -iE 'no Landlock|Landlock TCP rules')" ]; then # Landlock's TCP rules in force
  log_has net-port-ll "Permission denied"
  if [ -n "$LL_SEEN" ]; then
    event net-port-ll landlock "TCP connect to port 8081 (10.98.0.10) refused by Landlock"
  else
    no_event net-port-ll "Landlock refuses the connect before any packet"
  fi
else
  event net-port-ll connection "10.98.0.10:8081"
fi
# an unlisted host by name: it does not resolve (the app has no DNS server, and the monitor put
# only the listed names in its hosts file); no packet leaves, so there is nothing to record
launch net-name -- connect-refused forbidden.test 8080
refused net-name connect-refused
log_has net-name "Name or service not known"
no_event net-name "the name does not resolve: no packet"
# changing its own routes (rtnetlink): its network namespace belongs to the monitor's user
# namespace, so the kernel refuses (EPERM) without asking anyone; the filter is not in it anyway
launch route -- route
refused route route
no_event route "the kernel's EPERM, in the app's own namespace"
# sockets below IP or outside every network namespace (raw, packet, vsock: the hypervisor; the
# kernel's device events): only AF_UNIX, TCP/UDP over IP and rtnetlink are an app's
syscall vsock socket
syscall uevent socket
syscall raw-socket socket
syscall packet-socket socket

# ==== escapes the seccomp allow-list refuses, each seen by the monitor (one app per theme, each
# call's event told apart by its reason)
# other processes, mounts and namespaces
syscalls ns ptrace:ptrace process_vm_readv:process_vm_readv mount:mount fsopen:fsopen \
  unshare:unshare clone-newuser:clone setns:setns chroot:chroot pivot_root:pivot_root mknod:mknodat
# the kernel's own: keys, BPF, perf, modules, kexec, io_uring, userfaultfd, handles, raw ports,
# its log, accounting, swap, address randomisation
syscalls kernel keyctl:keyctl add_key:add_key bpf:bpf perf_event_open:perf_event_open \
  module:finit_module init_module:init_module kexec_load:kexec_load io_uring_setup:io_uring_setup \
  userfaultfd:userfaultfd open_by_handle_at:open_by_handle_at iopl:iopl syslog:syslog acct:acct \
  swapon:swapon personality:personality
# the device's clock, its name, its power
syscalls device settimeofday:settimeofday clock_settime:clock_settime \
  adjtimex:clock_adjtime reboot:reboot sethostname:sethostname # glibc's adjtimex is clock_adjtime
# another identity, more resources: raising a hard limit goes to the monitor, which refuses and
# records it
syscalls ids setuid:setuid rlimit:prlimit64
jq -e '[.events[] | select(.app == "esc-ids" and (.reason | startswith("prlimit64 (")) and (.reason | contains("raise a hard limit")))] | length > 0' \
  "$d/events.json" >/dev/null || fail "rlimit: the event does not say it was a raise"

# ==== files: what is not in the compartment at all (ENOENT: nothing to see), or read-only (on one
# device: the cases name its state directory)
room 10
launch devmem -- absent /dev/mem /dev/kmem /dev/port
refused devmem absent
no_event devmem "not in its /dev"
launch otherdev -- absent "$otherdev" "$testdev"
refused otherdev absent
no_event otherdev "an unlisted device is not in its /dev"
launch rot -- absent "$S" "$S/identity.pem" "$S/mac.key" "$S/rot" "$S/agent" /var /root
refused rot absent
no_event rot "the device's state is not in its tree"
launch monitor-socket -- absent "$S/monitor.sock"
refused monitor-socket absent
no_event monitor-socket "not in its tree"
launch procsys -- absent /proc/sys/kernel/core_pattern /proc/sysrq-trigger /proc/kcore
refused procsys absent
no_event procsys "its /proc holds pids only (subset=pid)"
launch sysfs -- absent /sys/kernel/uevent_helper /sys/class /sys
refused sysfs absent
no_event sysfs "no /sys"
launch write-tree -- write-tree
refused write-tree write-tree
[ ! -e "$S/apps/esc-write-tree/tree/planted" ] && [ ! -e "$d/apps/write-tree/planted" ] || fail "the app wrote into its tree"
no_event write-tree "EROFS from a read-only mount"
# its own memory for writing (/proc/self/mem: past its read-only mappings): /proc is mounted
# read-write and the file is the app's own; only Landlock's read-only rule for /proc refuses it
launch proc-mem -- proc-mem
refused proc-mem proc-mem
if [ -n "$LL_SEEN" ]; then
  event proc-mem landlock "write to /proc/"
else
  no_event proc-mem "Landlock's refusals are not seen on this host"
fi
launch proc -- proc
refused proc proc
log_has proc "proc: refused (0 other processes visible)"
no_event proc "its own pid namespace"
launch kill -- kill "$$"
refused kill kill
no_event kill "ESRCH: no process of the device is in its pid namespace"

# ==== resources
launch forkbomb -- forkbomb
refused forkbomb forkbomb
event forkbomb pids "refused "
launch quota -- quota
refused quota quota
event quota quota "storage full"
size_kb=$(sed -n 's/^quota: refused after \([0-9]*\) KB.*/\1/p' "$d/quota.log" | sort -n | tail -1)
[ -n "$size_kb" ] && [ "$size_kb" -le 1024 ] || fail "wrote ${size_kb:-?} KB into a 1024 KB quota"

# ==== another app beside them: the listener, with its device, storage and server ports; the
# cases that need it run on its device (and the apps that talk to each other)
room 7
launch --manifest "$d/listener.json" listener -- serve 8080 9001 5683 5684 "$testdev"
wait_ready listener
log_has listener "device: ok ($testdev written)"
allowed # its own device
log_has listener "storage: ok"
log_has listener "listen: ok (tcp 8080)"
app_addr=$(net_of listener)
app_addr=${app_addr%% *}
[ -n "$app_addr" ] && [ "$app_addr" != "-" ] || fail "the listener has no address: $(cat "$d/listener.log")"
listener_pid=$(app_field listener .pid)
expect 0 innet "$DRIVER" connect 10.98.0.2 8080 # through the device's address
out_has listener-ok
expect 0 innet "$DRIVER" connect "$app_addr" 8080 # and directly
out_has listener-ok
allowed # a listed TCP port, reachable
# an unlisted TCP port: Landlock refuses the bind (EACCES: a landlock event); without Landlock's
# network rules, the bind works and the monitor's filter must refuse what comes in
TRIED=$((TRIED + 1))
if grep -q '^listen-tcp: refused (bind 9001' "$d/listener.log"; then
  REFUSED=$((REFUSED + 1))
  if [ -n "$LL_SEEN" ]; then
    event listener landlock "TCP bind to port 9001 refused by Landlock"
  else
    UNSEEN=$((UNSEEN + 1))
    UNSEEN_LIST+=("listen-tcp (Landlock refuses the bind; its refusals are not seen here)")
  fi
else
  expect 1 innet "$DRIVER" connect "$app_addr" 9001
  REFUSED=$((REFUSED + 1))
  event listener listen "tcp 9001 from 10.98.0.1"
fi
# an unlisted UDP port (Landlock does not cover UDP): the filter drops it and records it; the app
# then says, on its listed port, that nothing arrived
expect 1 innet "$DRIVER" udp "$app_addr" 5684
event listener listen "udp 5684 from 10.98.0.1"
expect 0 innet "$DRIVER" udp "$app_addr" 5683
out_has "answered 6 bytes"
allowed # a listed UDP port
TRIED=$((TRIED + 1))
log_has listener "listen-udp: refused (nothing arrived on 5684)"
REFUSED=$((REFUSED + 1))
no_escape listener

# another app's storage and device are not there...
launch otherstorage -- absent "$S/apps/esc-listener/storage.img" /dev/loop-control /dev/loop0
refused otherstorage absent
no_event otherstorage "not in its tree, no loop device in its /dev"
# ...taking the device the listener owns is refused at start (its install's trial), and recorded
launch --fails --device "$testdev" device-taken -- allowed "$testdev"
TRIED=$((TRIED + 1))
out_of device-taken "device $testdev is owned by another running app"
REFUSED=$((REFUSED + 1))
event device-taken device "$testdev: owned by another running app"
# ...and past its memory limit, it dies (the OOM killer in its cgroup: its install's trial fails);
# the monitor and the listener live on
launch --fails memory -- memory
TRIED=$((TRIED + 1))
out_of memory "killed by signal 9"
REFUSED=$((REFUSED + 1))
event memory oom "1.0.0+0: killed at its memory limit"
kill -0 "$MON_PID" || fail "the monitor died with the hostile app"
wait_ready listener
eq "$(app_field listener .pid)" "$listener_pid" "the listener's pid after the hostile app died"
expect 0 innet "$DRIVER" connect "$app_addr" 8080
out_has listener-ok
allowed # another app lives on

# ==== app to app, over the app channel the monitor gives each app: a socket to another app only
# when both manifests list each other
launch --peer --manifest "$d/answerer.json" answerer -- answer
wait_ready answerer
launch --peer --manifest "$d/caller.json" caller -- call esc-answerer hello
log_has caller "answer: got hello from esc-caller"
log_has answerer "got hello from esc-caller"
no_event_of caller
no_event_of answerer
allowed # an allowed pair talks
# talking to an app that did not allow it: refused by the monitor, recorded; the app never hears
# of it
launch --peer --manifest "$d/stranger.json" stranger -- call esc-answerer hello
TRIED=$((TRIED + 1))
log_has stranger "refused: esc-answerer does not list this app"
log_has stranger "result: 2"
REFUSED=$((REFUSED + 1))
event stranger app_connection "esc-stranger -> esc-answerer refused: esc-answerer's manifest does not list esc-stranger"
logs answerer
! grep -q "from esc-stranger" "$d/answerer.log" || fail "the answerer heard from the stranger: $(cat "$d/answerer.log")"

device_stop

# ==== nothing is left: no cgroup, loop device, table or link of any device's apps
for t in "${TAGS[@]}"; do
  [ -z "$(cgroups_of "$t")" ] || fail "cgroups left: $(cgroups_of "$t")"
done
! losetup -a | grep -qF "$d/" || fail "loop devices left: $(losetup -a)"
E2E_CHECKS=$((E2E_CHECKS + 2))

echo "escape suite: $TRIED escapes tried, $REFUSED refused, $RECORDED recorded as security events," \
  "$UNSEEN refused where no event can be seen by design; allowed paths working: $ALLOWED"
for u in "${UNSEEN_LIST[@]}"; do echo "  no event: $u"; done
echo "  $DEV devices, $((SECONDS - START)) s"
[ "$TRIED" = "$REFUSED" ] || fail "$((TRIED - REFUSED)) escapes not refused"
[ "$TRIED" -ge 25 ] || fail "only $TRIED escapes tried"
[ $((RECORDED + UNSEEN)) = "$TRIED" ] || fail "recorded $RECORDED + unseen $UNSEEN != tried $TRIED"
full_cleanup
trap - EXIT
for ns in "$NET" "$MON"; do ip netns list | grep -qw "$ns" && fail "namespace $ns left"; done
ip -o link show | grep -q "esc$$" && fail "a link was left on the host"
echo "PASS: escape ($E2E_CHECKS checks)"
