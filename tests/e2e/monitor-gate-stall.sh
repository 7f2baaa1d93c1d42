#!/usr/bin/env bash
# End to end, a compromised app broker that floods its gate with requests and reads no answer
# (review r5, finding 2): the monitor never waits on it. A broker only slow to read its answers is
# waited for (review r7, L5: gate-flood is that first). One that leaves them unread for
# RP_APPGATE_STALL_SECONDS is taken as lost; the monitor starts another
# at its backoff (which kills the last), goes on answering its clients, and stops on SIGTERM.
# tools/gate-flood runs in the broker's place: a copy of the monitor finds, beside itself, a
# rampart-unpack that runs it for `broker` and the real one for the rest. Runs as root.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}"
: "${GATE_FLOOD:?set GATE_FLOOD}"
[ "$(id -u)" = 0 ] || fail "the gate stall test runs as root (as CI does)"
d=$E2E_DIR
chmod 755 "$d"
S=$d/S SOCK=$d/S/monitor.sock LOG=$d/monitor.log bin=$d/bin
mkdir -p "$bin"
here=$(dirname "$MONITOR")
cp "$MONITOR" "$here/rampart-launcher" "$GATE_FLOOD" "$bin/"
cp "$here/rampart-unpack" "$bin/rampart-unpack.real"
printf '#!/bin/sh\n[ "$1" = broker ] && exec %s/gate-flood\nexec %s/rampart-unpack.real "$@"\n' \
  "$bin" "$bin" >"$bin/rampart-unpack"
chmod 755 "$bin" "$bin"/*

expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k.key"
expect 0 "$RAMPART" key public --key "$d/k.key" --out "$d/k.pub"
expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/k.pub"
MONITOR=$bin/rampart-monitor start_monitor "$S" "$SOCK" "$LOG"

# First only slow (review r7, L5): the monitor waits for room for its answers, and loses none.
slow() { grep -q "gate-flood: .* answered after its socket was full" "$LOG"; }
wait_until 60 slow || { cat "$LOG" >&2; fail "the slow broker did not read its answers"; }
grep -q "gate-flood: \([0-9]*\) of \1 requests answered" "$LOG" ||
  { cat "$LOG" >&2; fail "the slow broker was not answered every request"; }
lost() { grep -q "it is not reading its gate, and is taken as lost" "$LOG"; }
wait_until 60 lost || { cat "$LOG" >&2; fail "the flooding broker was not taken as lost"; }
shut() { grep -q "gate-flood: .* the gate was shut" "$LOG"; }
wait_until 30 shut || { cat "$LOG" >&2; fail "the flooding broker's gate was not shut"; }
again() { [ "$(grep -c "the app broker started" "$LOG")" -ge 2 ]; }
wait_until 60 again || { cat "$LOG" >&2; fail "no broker started after the lost one"; }
expect 0 timeout 20 "$MONITOR_CALL" "$SOCK" hello
grep -q "the app broker stopped: it starts again" "$LOG" || fail "the lost broker was not said"
grep -q "left its answers unread for 5 s" "$LOG" || fail "the lost broker was not lost for its bound"
first_slow=$(grep -n "answered after its socket was full" "$LOG" | head -1 | cut -d: -f1)
first_lost=$(grep -n "taken as lost" "$LOG" | head -1 | cut -d: -f1)
[ "$first_slow" -lt "$first_lost" ] || fail "the slow broker was taken as lost"

kill -TERM "$MON_PID"
gone() { ! kill -0 "$MON_PID" 2>/dev/null || grep -q '^State:.*Z' "/proc/$MON_PID/status" 2>/dev/null; }
wait_until 30 gone || { cat "$LOG" >&2; fail "the monitor did not stop on SIGTERM"; }
grep -q "stopping (signal)" "$LOG" || fail "the monitor did not say it stopped for the signal"
rc=0; wait "$MON_PID" || rc=$?
eq "$rc" 0 "the monitor's exit status after SIGTERM"
! grep -q "Sanitizer" "$LOG" || { cat "$LOG" >&2; fail "a sanitizer report in the monitor's log"; }
done_ok
