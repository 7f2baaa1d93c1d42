#!/usr/bin/env bash
# End to end, rampart-monitor running apps in their compartments (device/monitor/apps.c): two apps
# installed through the monitor (one app tree with a manifest, one legacy single-file image), each
# in its compartment as its own uid (its own processes only, /app read-only); `rampart-agent app
# list` with states, restarts and the limits in force; a killed app restarted (its count rises); a
# new version replacing the running one; SIGTERM during a trial cutting the install after its
# grace (its client told, the confirmed version run at the next start); kill -9 of the monitor,
# then a restart that removes the leftovers and runs the apps again without extracting them again;
# SIGTERM leaving no process, cgroup, mount, loop device, nftables table or veth; audit, turned on
# by the monitor, off again after its SIGTERM (even with a kill -9 between). Runs as root (the
# monitor does).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}" "${DRIVER:?set DRIVER}"
[ "$(id -u)" = 0 ] || fail "the monitor's apps test runs as root (as CI does)"
d=$E2E_DIR
chmod 755 "$d"
S=$d/S SOCK=$d/S/monitor.sock LOG=$d/monitor.log
TREE=ma-tree$$ LEG=ma-leg$$ # component names of their own: cgroups are named after them

expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k.key"
expect 0 "$RAMPART" key public --key "$d/k.key" --out "$d/k.pub"
expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/k.pub"

# What each app reports in its log: its processes as it sees them, whether /app is writable, its
# uid; then it says it is ready and stays up until a SIGTERM, which it notes.
probe='n=$(ls /proc | grep -c "^[0-9]"); echo "procs $n"
if touch /app/x 2>/dev/null; then echo "app writable"; else echo "app read-only"; fi
echo "uid $(id -u)"; echo ready >&"$RAMPART_READY_FD"
trap "echo stopped by SIGTERM; exit 0" TERM
sleep 3600 & wait'
mkdir -p "$d/tree/bin"
printf '#!/bin/sh\necho "tree app $RAMPART_VERSION"\n%s\n' "$probe" >"$d/tree/bin/app"
chmod 755 "$d/tree/bin/app"
cat >"$d/tree/app_manifest.json" <<EOF
{"SchemaVersion": 1, "Name": "tree app", "ComponentId": "$TREE", "EntryPoint": "bin/app",
 "Memory": {"LimitKB": 49152}, "Pids": {"Max": 24}, "CpuPercent": 50,
 "MutableStorage": {"SizeKB": 2048}, "AllowedTcpServerPorts": [18080]}
EOF
printf '#!/bin/sh\necho "legacy app"\n%s\n' "$probe" >"$d/legacy.sh"
sign() { expect 0 "$RAMPART" image sign --key "$d/k.key" --version "$1" --type app "$2" "$d/$3"; }
sign 1.0.0 "$d/tree" tree1.img
sign 2.0.0 "$d/tree" tree2.img
sign 1.0.0 "$d/legacy.sh" leg1.img
printf '#!/bin/sh\necho quiet\ntrap "echo stopped by SIGTERM; exit 0" TERM\nsleep 3600 & wait\n' \
  >"$d/quiet.sh" # never says ready: its trial lasts the health window
# says it is ready only when told (SIGUSR1): its trial lasts until the checks during it are done
printf '#!/bin/sh\ntrap "echo stopped by SIGTERM; exit 0" TERM\ntrap "echo ready >&\\"\\$RAMPART_READY_FD\\"" USR1\necho "waiting to be told"\nwhile :; do sleep 3600 & wait; done\n' \
  >"$d/told.sh"
sign 1.1.0 "$d/told.sh" leg11.img
sign 1.2.0 "$d/quiet.sh" leg12.img

# No monitor: app list says so.
expect 1 "$AGENT" app list --state-dir "$S"
err_has "no rampart-monitor serves $S"

# app_field NAME JQ: a field of NAME's entry in `app list --output json`.
app_field() {
  "$AGENT" app list --state-dir "$S" --output json 2>/dev/null |
    jq -r --arg c "$1" ".[] | select(.component == \$c) | $2"
}
is_state() { # NAME VERSION STATE...: its version, and one of the states
  local v st
  v=$(app_field "$1" .version) st=$(app_field "$1" .state)
  [ "$v" = "$2" ] || return 1
  shift 2
  for s in "$@"; do [ "$st" = "$s" ] && return 0; done
  return 1
}
wait_state() {
  wait_until 90 is_state "$@" || {
    cat "$LOG" >&2
    "$AGENT" app list --state-dir "$S" >&2
    fail "$1 never reached $2 ${*:3}"
  }
}
log_of() { "$AGENT" app logs --state-dir "$S" "$1" 2>/dev/null; }

# Audit, host-wide: off before the monitor (as the host had it is put back at the end), so that
# the monitor turns it on, and must turn it off again at its stop.
audit_was=$("$DRIVER" audit status)
if [ "$audit_was" != 2 ]; then expect 0 "$DRIVER" audit off; fi
trap 'if [ "${audit_was:-0}" = 1 ]; then "$DRIVER" audit on || true; fi; cleanup' EXIT
start_monitor "$S" "$SOCK" "$LOG"
if [ "$audit_was" != 2 ]; then
  grep -q "audit was off: turned on" "$LOG" || fail "the monitor did not turn audit on: $(cat "$LOG")"
  eq "$("$DRIVER" audit status)" 1 "audit while the monitor runs"
fi
expect 0 "$MONITOR_CALL" "$SOCK" install "$TREE" "$d/tree1.img" 30
out_has "installed: started and said it is ready" # its trial ran in its compartment
expect 0 "$MONITOR_CALL" "$SOCK" install "$LEG" "$d/leg1.img" 30
out_has "installed: started and said it is ready"
wait_state "$TREE" 1.0.0+0 ready
wait_state "$LEG" 1.0.0+0 ready

# --- each in its compartment, as its own uid ---------------------------------------------------
tuid=$(cat "$S/apps/$TREE/uid") luid=$(cat "$S/apps/$LEG/uid")
[ "$tuid" -ge $((0x7e000000)) ] && [ "$luid" -ge $((0x7e000000)) ] || fail "uids $tuid $luid are not in the apps' range"
[ "$tuid" != "$luid" ] || fail "two apps share uid $tuid"
for c in "$TREE:$tuid" "$LEG:$luid"; do
  name=${c%%:*} uid=${c#*:}
  has_probe() { log_of "$name" | grep -q "^uid "; }
  wait_until 30 has_probe || fail "$name never reported"
  log_of "$name" >"$d/log"
  grep -q "^uid $uid$" "$d/log" || fail "$name does not run as its uid $uid: $(cat "$d/log")"
  grep -q "^app read-only$" "$d/log" || fail "$name could write its /app: $(cat "$d/log")"
  n=$(sed -n 's/^procs //p' "$d/log" | tail -1)
  [ -n "$n" ] && [ "$n" -le 6 ] || fail "$name sees $n processes: not only its own"
  E2E_CHECKS=$((E2E_CHECKS + 4))
done
grep -q "^tree app 1.0.0+0$" "$d/log" && fail "the legacy app's log has the tree app's lines"

# --- app images are read by rampart-unpack, confined, never by the monitor (docs/monitor.md) -----
# Neither the monitor nor its app supervisor has the archive reader mapped; the tree the unpack
# user wrote is root's now, and its staging directory is gone.
for p in "$MON_PID" $(pgrep -P "$MON_PID" || true); do
  if grep -q libarchive "/proc/$p/maps" 2>/dev/null; then fail "process $p of the monitor maps libarchive"; fi
done
owned=$(find "$S/apps/$TREE/tree" ! -user 0 -print -quit)
[ -z "$owned" ] || fail "the extracted tree holds $owned, not root's"
staged=$(find "$S/apps" -maxdepth 2 -name '*.unpack' -print -quit)
[ -z "$staged" ] || fail "a staging directory is left: $staged"
# the manifest came in its binary form, and is kept so beside the tree (no JSON read at a restart)
eq "$(stat -c '%a %U' "$S/apps/$TREE/tree.manifest")" "600 root" "the tree's kept manifest"
E2E_CHECKS=$((E2E_CHECKS + 3))

# --- app list: state, restarts, the limits in force ---------------------------------------------
expect 0 "$AGENT" app list --state-dir "$S" --output json
jq -e --arg c "$TREE" '.[] | select(.component == $c) | .restarts == 0 and .pid > 0
  and .limits.memory_kb == 49152 and .limits.pids == 24 and .limits.cpu_percent == 50
  and .limits.storage_kb == 2048' "$d/out" >/dev/null ||
  jq -e --arg c "$TREE" '.[] | select(.component == $c) | .missing != ""' "$d/out" >/dev/null ||
  fail "the tree app's limits are not its manifest's (and no layer is said missing): $(cat "$d/out")"
jq -e --arg c "$LEG" '.[] | select(.component == $c) | .limits.storage_kb == null
  and (.limits.memory_kb == 65536 or .missing != "")' "$d/out" >/dev/null ||
  fail "the legacy app is not limited by the empty manifest: $(cat "$d/out")"
expect 0 "$AGENT" app list --state-dir "$S"
out_has "$TREE 1.0.0+0: ready, 0 restart(s)"
out_has "$LEG 1.0.0+0: ready, 0 restart(s)"

# --- `rampart-agent run` leaves the apps to the monitor serving S -----------------------------------
pids="$(app_field "$TREE" .pid) $(app_field "$LEG" .pid)"
"$AGENT" run --state-dir "$S" --server https://127.0.0.1:9 --server-ca "$d/k.pub" --start-jitter 0 >"$d/agent.log" 2>&1 &
agent=$!
said() { grep -q "rampart-monitor serves $S: it runs the apps" "$d/agent.log"; }
wait_until 30 said || { kill "$agent"; cat "$d/agent.log" >&2; fail "the agent did not leave the apps to the monitor"; }
kill -TERM "$agent"
wait "$agent" || fail "the agent's exit after SIGTERM: $(cat "$d/agent.log")"
[ ! -e "$S/components/$LEG/run.json" ] || fail "the agent started the apps itself too"
eq "$(app_field "$TREE" .pid) $(app_field "$LEG" .pid)" "$pids" "the apps' pids after the agent ran"

# --- a killed app is restarted, and counted --------------------------------------------------------
init=$(app_field "$LEG" .pid)
victim=$(pgrep -P "$init" | head -1)
[ -n "$victim" ] || fail "no app process under its compartment's init $init"
kill -9 "$victim"
restarted() { [ "$(app_field "$LEG" .restarts)" = 1 ] && is_state "$LEG" 1.0.0+0 ready; }
wait_until 60 restarted || { cat "$LOG" >&2; fail "the killed app was not restarted"; }
grep -q "$LEG 1.0.0+0: killed by signal 9; restarting" "$LOG" || fail "the exit is not logged"
grep -q " 1.0.0+0 killed by signal 9$" "$S/apps/$LEG/exits" || fail "the exit is not recorded"
[ "$(app_field "$LEG" .pid)" != "$init" ] || fail "the restarted app has its old pid"

# --- a new version replaces the running one ---------------------------------------------------------
old=$(app_field "$TREE" .pid)
expect 0 "$MONITOR_CALL" "$SOCK" install "$TREE" "$d/tree2.img" 30
out_has "installed: started and said it is ready"
wait_state "$TREE" 2.0.0+0 ready
gone() { ! kill -0 "$old" 2>/dev/null; }
wait_until 30 gone || fail "the old version's compartment ($old) still runs"
has_v2() { log_of "$TREE" | grep -q "^tree app 2.0.0+0$"; }
wait_until 30 has_v2 || fail "version 2 never ran"

# --- an install does not hold the monitor: during a long trial it answers app list at once, and a
# request that needs the root of trust is answered once the install is done ------------------------
# (The trial app says it is ready when told, once the checks during its trial are done: the test
# no longer waits out a 20 s window. e2e.monitor_trial's install does stay up its whole window.)
"$MONITOR_CALL" "$SOCK" install "$LEG" "$d/leg11.img" 600 >"$d/install.out" 2>&1 &
installer=$!
on_trial() { grep -q "$LEG 1.1.0+0: on trial" "$LOG"; }
wait_until 60 on_trial || fail "the install never reached its trial"
expect 0 timeout 5 "$AGENT" app list --state-dir "$S"
out_has "$TREE 2.0.0+0: ready"
expect 0 timeout 5 "$MONITOR_CALL" "$SOCK" hello
grep -q "installed" "$d/install.out" && fail "the trial ended before the checks during it"
timeout 120 "$MONITOR_CALL" "$SOCK" status >"$d/status.out" 2>&1 & # held until the install is done
status_call=$!
# the trial app, found by its environment (app_shell), told to say it is ready once its trap for
# SIGUSR1 is set (catches). Not by its "waiting to be told" line: the log's bucket can cut a run's
# first line when the run it replaced left no record (seen once: "waiting to be t", then "4 bytes
# dropped").
trial_app() { app_shell "$LEG" 1.1.0+0; }
told_waits() { local p; p=$(trial_app) && catches "$p" "$(kill -l USR1)"; }
wait_until 60 told_waits || fail "the app on trial was not found, or set no trap for SIGUSR1: $(cat "$S/apps/$LEG/log")"
grep -q "installed" "$d/install.out" && fail "the trial ended before the app was told to say it is ready"
kill -USR1 "$(trial_app)"
wait "$installer" || fail "the install failed: $(cat "$d/install.out")"
grep -q "installed: started and said it is ready" "$d/install.out" || fail "the install: $(cat "$d/install.out")"
wait "$status_call" || fail "status during the install: $(cat "$d/status.out")"
grep -q "$LEG 1.1.0+0" "$d/status.out" || fail "status after the install: $(cat "$d/status.out")"
E2E_CHECKS=$((E2E_CHECKS + 2))
wait_state "$LEG" 1.1.0+0 running

# --- the install child killed during its trial: the monitor puts the slots right at once (the
# version on trial rolls back), tells the client, ends the trial and runs the confirmed version
# again; it does not wait for its own next start ---------------------------------------------------
sup=$(pgrep -P "$MON_PID" | head -1) # the app supervisor: the monitor's only child until now
"$MONITOR_CALL" "$SOCK" install "$LEG" "$d/leg12.img" 600 >"$d/install.out" 2>&1 &
installer=$!
on_trial12() { grep -q "$LEG 1.2.0+0: on trial" "$LOG"; }
wait_until 60 on_trial12 || fail "the install of 1.2.0 never reached its trial"
child=$(pgrep -P "$MON_PID" | grep -vx "$sup" | head -1)
[ -n "$child" ] || fail "no install child beside the supervisor $sup"
kill -9 "$child"
rc=0
wait "$installer" || rc=$?
[ "$rc" != 0 ] || fail "the killed install was reported done: $(cat "$d/install.out")"
grep -q "the install stopped before it finished; the slots were put right" "$d/install.out" ||
  fail "the client was not told: $(cat "$d/install.out")"
wait_until 60 is_state "$LEG" 1.1.0+0 running ready starting || fail "1.1.0 did not run again"
expect 0 timeout 60 "$MONITOR_CALL" "$SOCK" status
grep -qF " 1.2.0+0" "$d/out" && fail "1.2.0 is still on trial after its install died: $(cat "$d/out")"
out_has "rolled_back its install stopped before the update was confirmed"
grep -q "$LEG 1.2.0+0: its install stopped: the trial ends" "$LOG" || fail "the trial did not end"
wait_state "$LEG" 1.1.0+0 running

# nothing_left: no app process, cgroup, mount, loop device, nftables table or veth after a stop
nothing_left() {
  for uid in "$tuid" "$luid"; do
    [ -z "$(pgrep -u "$uid")" ] || fail "processes of uid $uid are left: $(ps -o pid=,ppid=,args= -u "$uid")"
  done
  left=$(find /sys/fs/cgroup -maxdepth 4 -type d \( -name "rampart.$TREE.*" -o -name "rampart.$LEG.*" \) 2>/dev/null)
  [ -z "$left" ] || fail "cgroups left: $left"
  real=$(realpath "$S")
  ! grep -qF " $real/" /proc/self/mountinfo || fail "mounts left under $S"
  ! losetup -a | grep -qF "$real/" || fail "loop devices left: $(losetup -a)"
  ! nft list table inet rampart >/dev/null 2>&1 || fail "the nftables table is left"
  ! ip -o link show | grep -q ' rpv[0-9]' || fail "a veth is left: $(ip -o link show | grep rpv)"
  E2E_CHECKS=$((E2E_CHECKS + 6))
}

# --- SIGTERM during a trial: the install has its grace (5 s), then is killed and its client told
# the monitor is stopping; the monitor stops at once, not at the trial's end (600 s); the next
# start rolls the version on trial back and runs the confirmed one ----------------------------------
"$MONITOR_CALL" "$SOCK" install "$LEG" "$d/leg12.img" 600 >"$d/install.out" 2>&1 &
installer=$!
trials=$(grep -c "$LEG 1.2.0+0: on trial" "$LOG")
on_trial12b() { [ "$(grep -c "$LEG 1.2.0+0: on trial" "$LOG")" -gt "$trials" ]; }
wait_until 60 on_trial12b || fail "the second install of 1.2.0 never reached its trial"
kill -TERM "$MON_PID"
mon_ended() { [ ! -e "/proc/$MON_PID" ] || grep -q '^State:.Z' "/proc/$MON_PID/status" 2>/dev/null; }
# (Its grace is 5 s, and stopping its apps may take 5 s each: 60 s on a loaded machine is still
# far from the trial's 600 s.)
wait_until 60 mon_ended || fail "the monitor did not stop within its install's grace: $(tail -5 "$LOG")"
rc=0
wait "$MON_PID" || rc=$?
MON_PID=
eq "$rc" 0 "the monitor's exit status after SIGTERM during a trial"
rc=0
wait "$installer" || rc=$?
[ "$rc" != 0 ] || fail "the cut install was reported done: $(cat "$d/install.out")"
grep -qF "(the monitor is stopping: install again once it is back); the slots were put right" "$d/install.out" ||
  fail "the client was not told the monitor is stopping: $(cat "$d/install.out")"
grep -q "the install under way is not done after 5 s: it is killed" "$LOG" || fail "the install was not killed: $(cat "$LOG")"
nothing_left
start_monitor "$S" "$SOCK" "$LOG"
wait_state "$LEG" 1.1.0+0 running
expect 0 timeout 60 "$MONITOR_CALL" "$SOCK" status
grep -qF " 1.2.0+0" "$d/out" && fail "1.2.0 is still on trial after the monitor's restart: $(cat "$d/out")"
E2E_CHECKS=$((E2E_CHECKS + 2))

# --- kill -9 of the monitor: the apps go with it; a new monitor removes what is left and runs them
# again, without extracting their trees again ------------------------------------------------------
pids="$(app_field "$TREE" .pid) $(app_field "$LEG" .pid)"
kill -9 "$MON_PID"
wait "$MON_PID" 2>/dev/null || true
MON_PID=
all_gone() { for p in $pids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
wait_until 30 all_gone || fail "apps outlived their monitor (killed with -9)"
: >"$LOG"
# the tree app's kept manifest does not decode (as a tree an older monitor extracted has none):
# that tree is extracted again, with its manifest; the legacy app's is not
: >"$S/apps/$TREE/tree.manifest"
start_monitor "$S" "$SOCK" "$LOG"
wait_state "$TREE" 2.0.0+0 ready
wait_state "$LEG" 1.1.0+0 running
grep -q "leftover" "$LOG" || fail "the new monitor did not remove the leftovers: $(cat "$LOG")"
grep -q "$TREE: its kept manifest is missing or of another version: extracted again" "$LOG" ||
  fail "a tree without its kept manifest was not extracted again: $(cat "$LOG")"
grep -q "$LEG .*extracted" "$LOG" && fail "a restart extracted a tree again: $(cat "$LOG")"
[ "$(stat -c %s "$S/apps/$TREE/tree.manifest")" -gt 0 ] || fail "the manifest was not kept again"
E2E_CHECKS=$((E2E_CHECKS + 4))

# --- SIGTERM: every app stops, and nothing is left behind ------------------------------------------
pids="$(app_field "$TREE" .pid) $(app_field "$LEG" .pid)"
kill -TERM "$MON_PID"
rc=0
wait "$MON_PID" || rc=$?
MON_PID=
eq "$rc" 0 "the monitor's exit status after SIGTERM"
all_gone || fail "an app outlived its monitor's SIGTERM"
for c in "$TREE" "$LEG"; do # the stop reached the app itself, not only a SIGKILL after the grace
  log_of "$c" | tail -1 | grep -q "^stopped by SIGTERM$" || fail "$c never saw the SIGTERM: $(log_of "$c")"
  E2E_CHECKS=$((E2E_CHECKS + 1))
done
nothing_left
# Audit off again: the first monitor turned it on, and its mark outlived its kill -9.
if [ "$audit_was" != 2 ]; then
  eq "$("$DRIVER" audit status)" 0 "audit after the monitor's stop"
  grep -q "audit turned off again" "$LOG" || fail "the monitor did not say audit is off again: $(cat "$LOG")"
  [ ! -e "$S/run/audit-turned-on" ] || fail "the audit mark is left"
fi

echo "PASS: monitor-apps ($E2E_CHECKS checks)"
