#!/usr/bin/env bash
# End to end, removing an app through rampart-monitor (APP_REMOVE, `rampart-agent app remove`) on
# an unmanaged device (no update root: a sideload, which the device always allows): the app stops,
# its tree, storage image, log and slots are deleted, its cgroups are gone, its state stays as a
# tombstone that keeps its security counter, a "removed" event is recorded; it installs again.
# Then a cut (the monitor ended dead, as kill -9 would) at each step of a removal
# (RAMPART_FAILPOINT_FROM="remove:"): the next start finishes it. Runs as root (the monitor does).
# The refusals (a managed device whose targets still name the app) and the removal of an app a
# deployment drops are e2e.agent_monitor's.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}"
[ "$(id -u)" = 0 ] || fail "the monitor's removal test runs as root (as CI does)"
d=$E2E_DIR
chmod 755 "$d"
S=$d/S SOCK=$d/S/monitor.sock LOG=$d/monitor.log
APP=rm-app$$ # a component name of its own: its cgroups are named after it

expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k.key"
expect 0 "$RAMPART" key public --key "$d/k.key" --out "$d/k.pub"
expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/k.pub"
mkdir -p "$d/tree/bin"
printf '#!/bin/sh\necho hello > /data/kept\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' \
  >"$d/tree/bin/app"
chmod 755 "$d/tree/bin/app"
cat >"$d/tree/app_manifest.json" <<EOF
{"SchemaVersion": 1, "Name": "removed app", "ComponentId": "$APP", "EntryPoint": "bin/app",
 "MutableStorage": {"SizeKB": 1024}}
EOF
expect 0 "$RAMPART" image sign --key "$d/k.key" --version 1.0.0 --type app "$d/tree" "$d/app.img"

state_of() { "$AGENT" app list --state-dir "$S" --output json 2>/dev/null | jq -r --arg c "$APP" '.[] | select(.component == $c) | .state'; }
ready() { [ "$(state_of)" = ready ]; }
listed() { [ -n "$(state_of)" ]; }
install() {
  expect 0 "$MONITOR_CALL" "$SOCK" install "$APP" "$d/app.img" 30
  out_has "installed: started and said it is ready"
  wait_until 60 ready || { cat "$LOG" >&2; fail "$APP is not ready"; }
}
cgroups() { find /sys/fs/cgroup -maxdepth 4 -type d -name "rampart.$APP.*" 2>/dev/null; }
stop_monitor() {
  kill -TERM "$MON_PID"
  wait "$MON_PID" 2>/dev/null || true
}
# gone WHEN: nothing of the app is left but its tombstone
gone() {
  [ ! -e "$S/apps/$APP" ] || fail "$1: S/apps/$APP is still there: $(ls -la "$S/apps/$APP")"
  eq "$(ls "$S/components/$APP")" state "$1: what is left of S/components/$APP"
  jq -e '.active == null and .trial == null and .confirmed == {"a": null, "b": null} and
    (.security_counter_index | type) == "number" and (.counter_binding | length) == 64' \
    "$S/components/$APP/state" >/dev/null || fail "$1: not a tombstone: $(cat "$S/components/$APP/state")"
  ! listed || fail "$1: $APP is still listed: $("$AGENT" app list --state-dir "$S")"
  [ -z "$(cgroups)" ] || fail "$1: cgroups left: $(cgroups)"
}

start_monitor "$S" "$SOCK" "$LOG"
install
[ -f "$S/apps/$APP/storage.img" ] && [ -d "$S/apps/$APP/tree" ] || fail "no tree or storage"
[ -n "$(cgroups)" ] || fail "no cgroups for $APP while it runs"
index=$(jq .security_counter_index "$S/components/$APP/state")

# --- removed ---------------------------------------------------------------------------------------
# What the agent leaves when it ran the app without a monitor (its data directory, not empty): a
# removal deletes it too (it once stopped at the first directory, unfinished).
mkdir -p "$S/components/$APP/data/sub" && echo x >"$S/components/$APP/data/sub/f"
expect 0 "$AGENT" app remove --state-dir "$S" "$APP"; out_has "$APP: removed"
gone "after app remove"
eq "$(jq .security_counter_index "$S/components/$APP/state")" "$index" "its counter index, kept"
expect 0 "$AGENT" events --state-dir "$S" --output json
jq -e --arg c "$APP" '[.events[] | select(.kind == "removed" and .app == $c and
  .reason == "1.0.0+0 removed: a sideload the device allows (no targets to check it against)")] |
  length == 1' \
  "$d/out" >/dev/null || fail "no removed event: $(cat "$d/out")"
expect 1 "$AGENT" app remove --state-dir "$S" "$APP"; err_has "no app $APP is installed on this device"
expect 1 "$AGENT" app remove --state-dir "$S" nope; err_has "no app nope is installed on this device"
expect 1 "$AGENT" app remove --state-dir "$S" ../etc; err_has "not a component name"
# installed again: from nothing (its storage is new), with the counter it had
install
eq "$(jq .security_counter_index "$S/components/$APP/state")" "$index" "its counter index after a reinstall"
stop_monitor

# --- a cut at each step of a removal: the next start finishes it -----------------------------------
rm -rf "$S.snap"; cp -a "$S" "$S.snap"
rm -f "$d/trace"
RAMPART_FAILPOINT_TRACE=$d/trace RAMPART_FAILPOINT_FROM=remove: start_monitor "$S" "$SOCK" "$LOG"
wait_until 60 ready || fail "$APP is not ready after a restart"
expect 0 "$AGENT" app remove --state-dir "$S" "$APP"
stop_monitor
steps=$(wc -l <"$d/trace")
[ "$steps" -ge 4 ] || fail "only $steps steps traced: $(cat "$d/trace")"
head -n1 "$d/trace" | grep -q "^1 remove: marked$" || fail "the trace: $(cat "$d/trace")"
for k in $(seq 1 "$steps"); do
  rm -rf "$S"; cp -a "$S.snap" "$S"
  RAMPART_FAILPOINT=$k RAMPART_FAILPOINT_FROM=remove: start_monitor "$S" "$SOCK" "$LOG"
  wait_until 60 ready || fail "step $k: $APP is not ready"
  expect 1 "$AGENT" app remove --state-dir "$S" "$APP" # the monitor ends before it answers
  rc=0; wait "$MON_PID" 2>/dev/null || rc=$?
  eq "$rc" 99 "step $k ($(sed -n "${k}p" "$d/trace")): the monitor's exit"
  [ -e "$S/components/$APP/removing" ] || fail "step $k: no mark of the removal under way"
  start_monitor "$S" "$SOCK" "$LOG"
  grep -q "$APP: a removal a cut left is finished" "$LOG" || fail "step $k: not finished at start"
  gone "step $k"
  stop_monitor
  : >"$LOG"
done
done_ok
