#!/usr/bin/env bash
# End to end, failure reporting from a crash to its bucket (issue 11, "Done when"): an app deployed
# by the service crashes with SIGSEGV in a known function on two devices, each under its real
# rampart-monitor; each device's unprivileged agent unwinds the crash the monitor captured, queues
# it and uploads it at its next check; the service gives one bucket with count 2 and, once the
# debug file is uploaded, names the function and its line; a different crash (an abort, deployed
# as a new version) makes a second bucket. Then the operator turns crash capture off for the
# devices' group: the device learns it at its next check, deletes what it kept, and an app that
# crashes in a loop is neither captured nor reported; turned on again, its next crash is. The
# devices run one after the other: one monitor per host (docs/monitor.md). Runs as root (the
# monitor does).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}"
: "${RAMPART_SERVER:?set RAMPART_SERVER}"
[ "$(id -u)" = 0 ] || fail "the failure flow test runs as root (as CI does)"
command -v setpriv >/dev/null || fail "needs setpriv (util-linux)"
command -v eu-addr2line >/dev/null || fail "needs eu-addr2line (elfutils)"
U=daemon
getent passwd "$U" >/dev/null || fail "needs the user $U"
d=$E2E_DIR
chmod 711 "$d"
mkdir -m 755 "$d/pub"
AS_U=(setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups)
as_agent() { "${AS_U[@]}" "$AGENT" "$@"; }
APP=ff$$ # a component name of its own: cgroups are named after it
trap cleanup EXIT

# --- the service, the app: version 1.0.0 crashes once with SIGSEGV, 1.1.0 aborts once ------------
start_server "$d/srv"
cp "$SERVER_CA" "$d/pub/server-ca.pem"
CA=$d/pub/server-ca.pem
tenant_with_root "$d/pub/root.json"
gcc -g -O0 -Wl,--build-id=sha1 -pthread -o "$d/crash-app" "$(dirname "$0")/crasher.c" ||
  fail "cannot build the crash app"
app_image() { # VERSION MODE [once|always]
  local t=$d/tree-$1
  mkdir -p "$t/bin"
  cp "$d/crash-app" "$t/bin/crash-app"
  chmod 755 "$t" "$t/bin" "$t/bin/crash-app"
  cat >"$t/app_manifest.json" <<EOF
{"SchemaVersion": 1, "Name": "crashing app", "ComponentId": "$APP", "EntryPoint": "bin/crash-app",
 "Cmdline": ["$2", "${3:-once}"], "MutableStorage": {"SizeKB": 1024}}
EOF
  expect 0 "$RAMPART" image sign --key "$d/img.key" --version "$1" --type app "$t" "$d/pub/$1.img"
  expect 0 "$RAMPART" image upload --tenant "$acme" --component "$APP" "$d/pub/$1.img"
}
app_image 1.0.0 segv; img1=$(cat "$d/out")
app_image 1.1.0 abort; img2=$(cat "$d/out")
app_image 1.2.0 segv always; img3=$(cat "$d/out") # crashes at every run
chmod 644 "$d"/pub/*
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$img1"

# device NAME: provisioned, its monitor started for the agent's user, claimed, attested. Sets S.
device() {
  S=$d/$1
  expect 0 "$AGENT" provision --state-dir "$S" --rot soft; local id; id=$(tail -n1 "$d/out")
  start_monitor "$S" "$S/monitor.sock" "$d/$1-monitor.log" --agent-user "$U"
  expect 0 "$AGENT" trust --state-dir "$S" --update-root "$d/pub/root.json"
  expect 0 "$RAMPART" device claim --tenant "$acme" "$id"
  expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$id"
  expect 0 as_agent attest --state-dir "$S" --server "$SERVER_URL" --server-ca "$CA"
}
# The crash the device's agent has unwound, of version $1, with a frame in the app's own code
# (an abort's top frames are libc's).
crash_of() {
  as_agent crashes --state-dir "$S" --output json 2>"$d/crashes.err" |
    jq -c --arg c "$APP" --arg v "$1" \
      '[.crashes[] | select(.component == $c and .version == $v and any(.frames[]; .module == "crash-app"))] | last // empty'
}
has_crash() { [ -n "$(crash_of "$1")" ]; }
# take VERSION: the device's check installs the deployed version; its crash is captured, then
# sent by the next check (the agent's queue, then POST /api/v1/device/reports).
take() {
  expect 0 as_agent check-now --state-dir "$S" --health-seconds 1; out_has "1 installed"
  wait_until 60 has_crash "$1" || {
    cat "$d/crashes.err" >&2
    fail "no crash of $APP $1 unwound on $S"
  }
  expect 0 as_agent check-now --state-dir "$S"
  err_has "reports: 1 sent (1 stored, 0 known already, 0 refused)"
  # The queue is empty, and the next check sends nothing again.
  expect 0 as_agent reports --state-dir "$S" --output json
  jq -e '.reports | length == 0' "$d/out" >/dev/null || fail "the queue kept a sent report: $(cat "$d/out")"
}
stop_monitor() { kill -TERM "$MON_PID" && wait "$MON_PID" 2>/dev/null; MON_PID=; }

# --- two devices crash the same way ---------------------------------------------------------------
device a; take 1.0.0+0; stop_monitor
device b; take 1.0.0+0
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '.buckets | length == 1' "$d/out" >/dev/null || fail "not one bucket: $(cat "$d/out")"
jq -e --arg c "$APP" '.buckets[0] | .count == 2 and .component == $c and .signal_name == "SIGSEGV"' "$d/out" >/dev/null ||
  fail "the bucket: $(cat "$d/out")"
bucket=$(jq -r '.buckets[0].id' "$d/out")
expect 0 "$RAMPART" failure show --tenant "$acme" "$bucket" --output json
jq -e '(.samples | length == 2) and ([.samples[].device] | unique | length == 2)' "$d/out" >/dev/null ||
  fail "the samples are not one per device: $(cat "$d/out")"

# --- its debug file: the function and its line ----------------------------------------------------
off=$(jq -r '.samples[0].report.crash.frames[0].offset' "$d/out")
objcopy --only-keep-debug "$d/crash-app" "$d/crash-app.debug"
expect 0 "$RAMPART" symbols upload --tenant "$acme" "$d/crash-app.debug"
want=$(eu-addr2line -e "$d/crash-app" "$off") # FILE:LINE[:COLUMN]
line=$(sed -E 's/^[^:]*:([0-9]+).*/\1/' <<<"$want")
[[ $want == */crasher.c:* && $line =~ ^[0-9]+$ ]] || fail "eu-addr2line gave $want for $off"
expect 0 "$RAMPART" failure show --tenant "$acme" "$bucket" --output json
jq -e --arg l "$line" '.symbolicated and .frames[0].function == "rampart_test_crash_here" and .frames[0].line == ($l | tonumber)' "$d/out" >/dev/null ||
  fail "the bucket is not symbolicated: $(cat "$d/out")"
# Shown from now on under its symbolic key when all its top frames name a line (else its own ID),
# made of the one build-level bucket it was.
jq -e --arg b "$bucket" '.builds | map(.id) == [$b]' "$d/out" >/dev/null || fail "the bucket's builds: $(cat "$d/out")"
bucket=$(jq -r .id "$d/out")

# --- a different crash, by a new version: a second bucket -----------------------------------------
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$img2"
take 1.1.0+0
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '.buckets | length == 2' "$d/out" >/dev/null || fail "not two buckets: $(cat "$d/out")"
jq -e --arg b "$bucket" '[.buckets[] | select(.id == $b) | .count] == [2]' "$d/out" >/dev/null ||
  fail "the first bucket changed: $(cat "$d/out")"
jq -e --arg b "$bucket" '[.buckets[] | select(.id != $b)][0] | .signal_name == "SIGABRT" and .count == 1' "$d/out" >/dev/null ||
  fail "the second bucket: $(cat "$d/out")"

# --- the operator turns crash capture off for the group (docs/failure-reporting.md) ---------------
expect 0 "$RAMPART" device-group set --tenant "$acme" --product Thermostat "Field Test" --crash-capture off
out_has "crash capture: off"
# The device learns it in its status report's answer: kept by the agent and the monitor, whose
# kept crashes are deleted.
expect 0 as_agent check-now --state-dir "$S"
jq -e '.crash_capture == false' "$S/agent/settings.json" >/dev/null || fail "the agent did not keep it: $(cat "$S/agent/settings.json")"
eq "$(cat "$S/crashes/capture")" off "the monitor's switch"
expect 0 as_agent crashes --state-dir "$S" --output json
jq -e '.crashes == []' "$d/out" >/dev/null || fail "kept crashes not deleted: $(cat "$d/out")"
# A version that crashes at every run: started untraced, crashes kept nowhere, nothing sent.
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$img3"
expect 0 as_agent check-now --state-dir "$S" --health-seconds 1; out_has "1 installed"
crashed() { [ "$(grep -c "1.2.0+0 killed by signal 11" "$S/apps/$APP/exits" 2>/dev/null)" -ge "$1" ]; }
wait_until 30 crashed 2 || fail "1.2.0 did not crash twice: $(cat "$S/apps/$APP/exits")"
"$AGENT" app list --state-dir "$S" --output json >"$d/apps.json"
jq -e --arg c "$APP" '.[] | select(.component == $c) | .missing | contains("no crash capture (turned off")' "$d/apps.json" >/dev/null ||
  fail "the app was started traced: $(cat "$d/apps.json")"
[ -z "$(ls "$S/crashes" | grep -E '^[0-9a-f]{16}$')" ] || fail "a crash was kept: $(ls "$S/crashes")"
expect 0 as_agent check-now --state-dir "$S"
expect 0 as_agent reports --state-dir "$S" --output json
jq -e '.reports == []' "$d/out" >/dev/null || fail "a report was queued: $(cat "$d/out")"
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e --arg b "$bucket" '[.buckets[] | select(.id == $b) | .count] == [2]' "$d/out" >/dev/null ||
  fail "a crash reached the service with capture off: $(cat "$d/out")"
# --- on again: the app's next start is traced, its crash captured and bucketed ----------------------
expect 0 "$RAMPART" device-group set --tenant "$acme" --product Thermostat "Field Test" --crash-capture on
expect 0 as_agent check-now --state-dir "$S"
eq "$(cat "$S/crashes/capture")" on "the monitor's switch, on again"
# Its next start now, by an operator: at its backoff, it could be a minute away (1 s doubling to
# 60 s: a loaded machine's slow steps since its first crash let it grow that far).
expect 0 as_agent app restart --state-dir "$S" "$APP"
wait_until 60 has_crash 1.2.0+0 || fail "no crash of 1.2.0 captured with capture on again"
expect 0 as_agent check-now --state-dir "$S"
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e --arg b "$bucket" '[.buckets[] | select(.id == $b) | .count][0] >= 3' "$d/out" >/dev/null ||
  fail "the crash with capture on again did not reach its bucket: $(cat "$d/out")"
stop_monitor
done_ok
