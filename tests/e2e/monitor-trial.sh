#!/usr/bin/env bash
# End to end, the other apps and the trial app while an install's trial runs (found by the attack
# pass): the trial app's log (S/apps/C/log) stays bounded at every moment, as a running app's does,
# so that an app writing without end cannot fill the state directory's file system (it grew to
# 470 MB: the app wrote the file itself; now the monitor writes it from a pipe, at most 1 MiB a
# second, cut back past 1 MiB); and another app that exits meanwhile is restarted at
# its backoff, not when the install ends (its channel is made again while the install child holds
# the root of trust; it stayed down for the whole window). Runs as root (the monitor does).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}"
[ "$(id -u)" = 0 ] || fail "the app log test runs as root (as CI does)"
d=$E2E_DIR
chmod 755 "$d"
S=$d/S SOCK=$d/S/monitor.sock LOG=$d/monitor.log
APP=tr-noisy$$ OTHER=tr-other$$
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k.key"
expect 0 "$RAMPART" key public --key "$d/k.key" --out "$d/k.pub"
expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/k.pub"
# 6 MiB on stdout, then a line saying so; it never says it is ready, so its trial lasts the
# whole health window.
mkdir -p "$d/$APP/bin"
printf '#!/bin/sh\ndd if=/dev/zero bs=1M count=6 2>/dev/null\necho wrote-it-all\nexec sleep 3600\n' \
  >"$d/$APP/bin/run"
chmod 755 "$d/$APP" "$d/$APP/bin" "$d/$APP/bin/run"
cat >"$d/$APP/app_manifest.json" <<EOF2
{"SchemaVersion": 1, "Name": "$APP", "ComponentId": "$APP", "EntryPoint": "bin/run"}
EOF2
expect 0 "$RAMPART" image sign --key "$d/k.key" --version 1.0.0 --type app "$d/$APP" "$d/$APP.img"
mkdir -p "$d/$OTHER/bin"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$d/$OTHER/bin/run"
chmod 755 "$d/$OTHER" "$d/$OTHER/bin" "$d/$OTHER/bin/run"
cat >"$d/$OTHER/app_manifest.json" <<EOF2
{"SchemaVersion": 1, "Name": "$OTHER", "ComponentId": "$OTHER", "EntryPoint": "bin/run"}
EOF2
expect 0 "$RAMPART" image sign --key "$d/k.key" --version 1.0.0 --type app "$d/$OTHER" \
  "$d/$OTHER.img"

start_monitor "$S" "$SOCK" "$LOG"
app_field() {
  "$AGENT" app list --state-dir "$S" --output json 2>/dev/null |
    jq -r --arg c "$1" ".[] | select(.component == \$c) | $2"
}
expect 0 "$MONITOR_CALL" "$SOCK" install "$OTHER" "$d/$OTHER.img" 30
out_has "installed: started and said it is ready"

# The install waits out the health window (the app never says ready): the trial runs meanwhile.
"$MONITOR_CALL" "$SOCK" install "$APP" "$d/$APP.img" 25 >"$d/install.out" 2>&1 &
INSTALL=$!
E2E_PIDS+=("$INSTALL")
L=$S/apps/$APP/log
# The log is never past RP_COMPARTMENT_LOG_MAX (1 MiB) and one read (64 KiB) while the app writes,
# ends with the app's last line, and took the app at least 5 s (1 MiB a second).
biggest=0 began=$(date +%s)
trimmed() {
  local size
  size=$(stat -c %s "$L" 2>/dev/null || echo 0)
  [ "$size" -gt "$biggest" ] && biggest=$size
  [ "$size" -le $((1024 * 1024)) ] && tail -c 64 "$L" 2>/dev/null | grep -q wrote-it-all
}
wait_until 50 trimmed || {
  cat "$LOG" >&2
  fail "the trial app's log was not cut back: $(stat -c %s "$L" 2>/dev/null) bytes"
}
[ "$biggest" -le $((1024 * 1024 + 64 * 1024)) ] || fail "the log reached $biggest bytes"
[ $(($(date +%s) - began)) -ge 4 ] || fail "6 MiB went through in less than 4 s: not rate-limited"
E2E_CHECKS=$((E2E_CHECKS + 3))
# Still on trial when it was: the install had not answered yet.
kill -0 "$INSTALL" 2>/dev/null || fail "the install ended before the log was checked: $(cat "$d/install.out")"

# The other app, killed during the trial, is ready again before the install ends.
pid=$(app_field "$OTHER" .pid)
[ -n "$pid" ] && [ "$pid" -gt 0 ] || fail "no pid for $OTHER"
# Its init writes its log, and no file past the log's bound and one read (RLIMIT_FSIZE).
grep -Eq '^Max file size +1114112 +1114112 ' "/proc/$pid/limits" ||
  fail "its init's file size limit: $(grep 'Max file size' "/proc/$pid/limits")"
E2E_CHECKS=$((E2E_CHECKS + 1))
kill -KILL "$pid"
back() { [ "$(app_field "$OTHER" .restarts)" -ge 1 ] && [ "$(app_field "$OTHER" .state)" = ready ]; }
wait_until 50 back || { cat "$LOG" >&2; fail "$OTHER was not restarted during the trial"; }
kill -0 "$INSTALL" 2>/dev/null || fail "$OTHER came back only when the install ended"
E2E_CHECKS=$((E2E_CHECKS + 1))
wait "$INSTALL" || fail "the install failed: $(cat "$d/install.out")"
grep -q "installed: stayed up" "$d/install.out" || fail "not installed: $(cat "$d/install.out")"
done_ok
