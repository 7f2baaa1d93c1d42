#!/usr/bin/env bash
# End to end, removed apps' tombstones do not count towards the device's 16 components
# (docs/monitor.md, APP_REMOVE): an app whose security counter was raised is installed and
# removed, then 17 others in turn, each installed and removed, then one more installs. The 16
# counters of the root of trust bound live components and tombstones together: with none free,
# the oldest tombstone whose counter was never raised is forgotten (t01, t02, t03 here); the one
# whose counter was raised stays, and its floor still refuses an older image. Runs as root.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}"
[ "$(id -u)" = 0 ] || fail "the monitor's tombstone test runs as root (as CI does)"
d=$E2E_DIR
chmod 755 "$d"
S=$d/S SOCK=$d/S/monitor.sock LOG=$d/monitor.log
P=tb$$- # component names of their own: their cgroups are named after them

expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k.key"
expect 0 "$RAMPART" key public --key "$d/k.key" --out "$d/k.pub"
expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/k.pub"
# image NAME VERSION COUNTER: an app that says it is ready and waits
image() {
  rm -rf "$d/tree" && mkdir -p "$d/tree/bin"
  printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$d/tree/bin/app"
  chmod 755 "$d/tree/bin/app"
  printf '{"SchemaVersion": 1, "Name": "%s", "ComponentId": "%s", "EntryPoint": "bin/app"}\n' \
    "$1" "$1" >"$d/tree/app_manifest.json"
  expect 0 "$RAMPART" image sign --key "$d/k.key" --version "$2" --security-counter "$3" \
    --type app --force "$d/tree" "$d/$1-$2.img" # the same version again, another counter
}
cycle() { # install and remove NAME
  image "$1" 1.0.0 0
  expect 0 "$MONITOR_CALL" "$SOCK" install "$1" "$d/$1-1.0.0.img" 30
  out_has "installed: started and said it is ready"
  expect 0 "$AGENT" app remove --state-dir "$S" "$1"; out_has "$1: removed"
}
tomb() { jq -e '.active == null and .trial == null' "$S/components/$1/state" >/dev/null; }

start_monitor "$S" "$SOCK" "$LOG"
image "${P}raised" 2.0.0 3
expect 0 "$MONITOR_CALL" "$SOCK" install "${P}raised" "$d/${P}raised-2.0.0.img" 30
out_has "installed: started and said it is ready"
index=$(jq .security_counter_index "$S/components/${P}raised/state")
expect 0 "$AGENT" app remove --state-dir "$S" "${P}raised"
for i in $(seq -w 1 17); do cycle "${P}t$i"; done
image "${P}last" 1.0.0 0
expect 0 "$MONITOR_CALL" "$SOCK" install "${P}last" "$d/${P}last-1.0.0.img" 30
out_has "installed: started and said it is ready"

# 16 states at most (one counter each); the oldest tombstones with a counter at 0 forgotten
eq "$(ls "$S/components" | wc -l)" 16 "the components' states"
for i in 01 02 03; do [ ! -e "$S/components/${P}t$i" ] || fail "t$i's tombstone is still there"; done
for i in $(seq -w 4 17); do tomb "${P}t$i" || fail "t$i is no tombstone"; done
grep -q "${P}t01: its tombstone forgotten (counter [0-9]* never raised), the counter reused" "$LOG" ||
  fail "no log of the forgotten tombstone: $(cat "$LOG")"
# the raised counter's tombstone stays, with its counter and its floor
tomb "${P}raised" || fail "the raised app's tombstone is gone"
eq "$(jq .security_counter_index "$S/components/${P}raised/state")" "$index" "its counter index"
image "${P}raised" 2.0.0 1
expect 0 "$MONITOR_CALL" "$SOCK" install "${P}raised" "$d/${P}raised-2.0.0.img" 30
out_has "refused: its security counter is below the device's (rollback refused)"
image "${P}raised" 1.0.0 3
expect 0 "$MONITOR_CALL" "$SOCK" install "${P}raised" "$d/${P}raised-1.0.0.img" 30
out_has "refused: version 1.0.0+0 is older than 2.0.0+0, confirmed before (rollback refused)"
kill -TERM "$MON_PID"; wait "$MON_PID" 2>/dev/null || true
done_ok
