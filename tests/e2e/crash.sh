#!/usr/bin/env bash
# End to end, crash capture on the device (docs/failure-reporting.md, "Crash capture on the
# device"): apps installed as signed images through the real rampart-monitor crash in their
# compartments; the compartment's init captures each crash (registers, a bounded stack window, the
# module list), the app supervisor keeps it in S/crashes/, and the unprivileged agent reads it
# through the monitor (CRASHES) and unwinds it with libdw. Checked: the signal and the fault
# address; the top frame names the app's module and build ID at an offset eu-addr2line turns into
# the known function; abort() is a SIGABRT crash; a huge stack is cut at the window; an app that
# makes every kind of stop (threads, a child, a handled SIGSEGV, a stop and a continue) lives on
# and is no crash; kill -9 of an app is an exit, not a capture. Then the abnormal ends as reports
# in the agent's queue (`rampart-agent reports`): an app that exits with status 3 is an `exit`
# (nonzero_status) and, restarting, a `restart_loop` (once); one killed at its memory limit an
# `oom` and no exit; the kill -9 an `exit` (signal); each crash one `crash` report, once, however
# often the queue is fed. A watchdog (manifest WatchdogSeconds 2): an app that hangs after "ready"
# is killed and restarted, a `health` report (watchdog) each time, no exit report; one that writes
# on its ready descriptor every 500 ms lives on, never restarted. Last, with crash capture off (the agent's setting for its group) a kept
# crash is passed over, never queued. Runs as root (the monitor does).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}"
[ "$(id -u)" = 0 ] || fail "the crash test runs as root (as CI does)"
for tool in gcc jq eu-addr2line eu-readelf setpriv; do
  command -v "$tool" >/dev/null || fail "needs $tool (scripts/install-deps)"
done
d=$E2E_DIR
chmod 755 "$d"
S=$d/S SOCK=$d/S/monitor.sock LOG=$d/monitor.log
U=daemon # the agent's user: it unwinds unprivileged
AS_U=(setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups)
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k.key"
expect 0 "$RAMPART" key public --key "$d/k.key" --out "$d/k.pub"
expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/k.pub"

# The app, with debug information and a build ID; the image carries it as built.
gcc -g -O0 -Wl,--build-id=sha1 -pthread -o "$d/crash-app" "$(dirname "$0")/crasher.c" ||
  fail "cannot build the crash app"
BUILD_ID=$(eu-readelf -n "$d/crash-app" | awk '/Build ID:/ {print $3}')
[ -n "$BUILD_ID" ] || fail "the app has no build ID"
P=cr$$
app_image() { # NAME MODE [MANIFEST KEYS]
  mkdir -p "$d/$1/bin"
  cp "$d/crash-app" "$d/$1/bin/crash-app"
  chmod 755 "$d/$1" "$d/$1/bin" "$d/$1/bin/crash-app"
  cat >"$d/$1/app_manifest.json" <<EOF2
{"SchemaVersion": 1, "Name": "$1", "ComponentId": "$1", "EntryPoint": "bin/crash-app",
 "Cmdline": ["$2"]${3:+, $3}}
EOF2
  expect 0 "$RAMPART" image sign --key "$d/k.key" --version 1.0.0 --type app "$d/$1" "$d/$1.img"
}
app_image "$P-segv" segv
app_image "$P-abort" abort
app_image "$P-big" bigstack
app_image "$P-live" live
app_image "$P-exit" exit3
app_image "$P-oom" oom '"Memory": {"LimitKB": 16384}'
app_image "$P-hang" hang '"WatchdogSeconds": 2'
app_image "$P-beat" heartbeat '"WatchdogSeconds": 2'
expect 0 "$RAMPART" app check "$d/$P-hang" --output json
eq "$(jq -r .manifest.WatchdogSeconds "$E2E_DIR/out")" 2 "the watchdog app check shows"
sed -i 's/"WatchdogSeconds": 2/"WatchdogSeconds": 0/' "$d/$P-hang/app_manifest.json"
expect 1 "$RAMPART" app check "$d/$P-hang"
err_has "WatchdogSeconds: 0 is under the minimum of 1"

start_monitor "$S" "$SOCK" "$LOG" --agent-user "$U"
# Two installs at once: the second waits its turn and succeeds (it was refused as "the slots are
# busy", which also hit one install sent right after another's answer, before its child was reaped).
"$MONITOR_CALL" "$SOCK" install "$P-exit" "$d/$P-exit.img" 30 >"$d/i1.out" 2>&1 &
i1=$!
"$MONITOR_CALL" "$SOCK" install "$P-oom" "$d/$P-oom.img" 30 >"$d/i2.out" 2>&1 &
i2=$!
E2E_PIDS+=("$i1" "$i2")
wait "$i1" || fail "the first of two installs at once: $(cat "$d/i1.out")"
wait "$i2" || fail "the second of two installs at once: $(cat "$d/i2.out")"
E2E_CHECKS=$((E2E_CHECKS + 2))
for m in hang beat segv abort big live; do
  expect 0 "$MONITOR_CALL" "$SOCK" install "$P-$m" "$d/$P-$m.img" 30
done
crashes() { "${AS_U[@]}" "$AGENT" crashes --state-dir "$S" --output json 2>"$d/crashes.err"; }
# The newest crash of component $1 whose top frame is in the app's own module.
crash_of() {
  crashes | jq -c --arg c "$1" \
    '[.crashes[] | select(.component == $c and .frames[0].module == "crash-app")] | last // empty'
}
have_crash() { [ -n "$(crash_of "$1")" ]; }

# SIGSEGV in the known function: signal, address, module, build ID, offset.
wait_until 25 have_crash "$P-segv" || {
  cat "$LOG" "$d/crashes.err" >&2
  crashes >&2
  fail "no crash of $P-segv unwound into its own module"
}
c=$(crash_of "$P-segv")
eq "$(jq -r .signal <<<"$c")" 11 "the signal"
eq "$(jq -r .signal_name <<<"$c")" SIGSEGV "the signal's name"
eq "$(jq -r .address <<<"$c")" 0x10 "the fault address"
eq "$(jq -r .version <<<"$c")" 1.0.0+0 "the version"
eq "$(jq -r '.frames[0].build_id' <<<"$c")" "$BUILD_ID" "the top frame's build ID"
off=$(jq -r '.frames[0].offset' <<<"$c")
fn=$(eu-addr2line -f -e "$d/crash-app" "$off" | head -1)
eq "$fn" rampart_test_crash_here "the function at the top frame's offset $off"
# and its caller, main, one frame out
fn=$(eu-addr2line -f -e "$d/crash-app" "$(jq -r '.frames[1].offset' <<<"$c")" | head -1)
eq "$fn" main "the function one frame out"
jq -e '.stderr | contains("crash-app: segv now")' <<<"$c" >/dev/null ||
  fail "the crash lacks the app's last words: $(jq .stderr <<<"$c")"
jq -e '.uptime_ms >= 900' <<<"$c" >/dev/null || fail "uptime: $(jq .uptime_ms <<<"$c")"
E2E_CHECKS=$((E2E_CHECKS + 2))
# The app was still killed by it, and it restarts as before.
grep -q "killed by signal 11" "$S/apps/$P-segv/exits" || fail "the exit was not recorded"

# abort(): SIGABRT, through libc, out to the app's main.
any_crash() { crashes | jq -e --arg c "$1" 'any(.crashes[]; .component == $c)' >/dev/null; }
wait_until 25 any_crash "$P-abort" || { cat "$LOG" >&2; fail "no crash of $P-abort"; }
c=$(crashes | jq -c --arg c "$P-abort" '[.crashes[] | select(.component == $c)] | last')
eq "$(jq -r .signal_name <<<"$c")" SIGABRT "abort's signal"
off=$(jq -r '[.frames[] | select(.module == "crash-app")][0].offset // empty' <<<"$c")
[ -n "$off" ] || fail "abort's frames do not reach the app: $(jq -c .frames <<<"$c")"
eq "$(eu-addr2line -f -e "$d/crash-app" "$off" | head -1)" main "abort's caller"
jq -e '[.frames[] | select(.module | test("^libc"))] | length > 0' <<<"$c" >/dev/null ||
  fail "abort's frames name no libc: $(jq -c .frames <<<"$c")"
E2E_CHECKS=$((E2E_CHECKS + 1))

# A huge stack is cut at the window (32 KiB), and the top frame is still found.
wait_until 25 have_crash "$P-big" || { cat "$LOG" >&2; fail "no crash of $P-big"; }
c=$(crash_of "$P-big")
eq "$(jq -r .stack_bytes <<<"$c")" 32768 "the stack window"
eq "$(eu-addr2line -f -e "$d/crash-app" "$(jq -r '.frames[0].offset' <<<"$c")" | head -1)" \
  rampart_test_crash_here "the top frame under a huge stack"
for f in "$S"/crashes/*; do
  [ "$(stat -c %s "$f")" -le $((96 * 1024)) ] || fail "$f is larger than its bound"
done

# The live app: every stop passed on, nothing captured, still ready.
app_field() {
  "$AGENT" app list --state-dir "$S" --output json 2>/dev/null |
    jq -r --arg c "$1" ".[] | select(.component == \$c) | $2"
}
live_said() { grep -q "all-good handled=1" "$S/apps/$P-live/log" 2>/dev/null; }
wait_until 25 live_said || { cat "$S/apps/$P-live/log" "$LOG" >&2; fail "the live app did not get through"; }
eq "$(app_field "$P-live" .state)" ready "the live app's state"
eq "$(app_field "$P-live" .restarts)" 0 "the live app's restarts"
eq "$(crashes | jq --arg c "$P-live" '[.crashes[] | select(.component == $c)] | length')" 0 \
  "crashes of the live app"

# kill -9 of the app (the init's child): an exit, no capture.
init=$(app_field "$P-live" .pid)
app=$(pgrep -P "$init" | head -1)
[ -n "$app" ] || fail "no app process under the init $init"
kill -KILL "$app"
killed() { grep -q "killed by signal 9" "$S/apps/$P-live/exits" 2>/dev/null; }
wait_until 20 killed || { cat "$LOG" >&2; fail "the kill was not recorded as an exit"; }
eq "$(crashes | jq --arg c "$P-live" '[.crashes[] | select(.component == $c)] | length')" 0 \
  "crashes after kill -9"
# The unwinding ran under the agent's own seccomp filter (libdw reads what the app's author made).
"${AS_U[@]}" "$AGENT" crashes --state-dir "$S" --verbose >/dev/null 2>"$d/verbose.err" ||
  fail "crashes failed: $(cat "$d/verbose.err")"
grep -q "seccomp: the agent's allow-list is in force" "$d/verbose.err" ||
  fail "crashes did not run under the agent's filter: $(cat "$d/verbose.err")"
# The agent's user reads none of S/crashes/ itself: only through the monitor.
"${AS_U[@]}" ls "$S/crashes" >/dev/null 2>&1 && fail "the agent's user can list S/crashes/"
E2E_CHECKS=$((E2E_CHECKS + 1))

# --- the abnormal ends, as reports: the agent queues them before each upload (here `report`,
# to a service that is not there: the upload fails, the queue keeps them)
feed() { "${AS_U[@]}" "$AGENT" report --state-dir "$S" --server https://127.0.0.1:9 --server-ca "$d/k.pub" >/dev/null 2>&1 || true; }
queue() { feed; "${AS_U[@]}" "$AGENT" reports --state-dir "$S" --output json >"$d/q.json" 2>"$d/q.err"; }
# of KIND COMPONENT: the queued reports of that kind about that component
of() { jq -c --arg k "$1" --arg c "$2" '[.reports[] | select(.kind == $k and .component == $c)]' "$d/q.json"; }
has_reports() { queue && [ "$(of exit "$P-exit" | jq length)" -ge 1 ] && [ "$(of oom "$P-oom" | jq length)" -ge 1 ] &&
  [ "$(of restart_loop "$P-exit" | jq length)" -ge 1 ] && [ "$(of exit "$P-live" | jq length)" -ge 1 ]; }
wait_until 60 has_reports || { cat "$d/q.json" "$d/q.err" >&2; "$AGENT" events --state-dir "$S" >&2; fail "the abnormal ends are not all reported"; }
r=$(of exit "$P-exit" | jq -c '.[0]')
eq "$(jq -r .code <<<"$r")" nonzero_status "an exit's code"
eq "$(jq -r .version <<<"$r")" 1.0.0+0 "an exit's version"
eq "$(jq -r .reason <<<"$r")" "$P-exit 1.0.0+0: exited with status 3" "an exit's reason"
r=$(of exit "$P-live" | jq -c '.[0]')
eq "$(jq -r .code <<<"$r")" signal "kill -9's code"
jq -e '.reason | endswith(": killed by signal 9")' <<<"$r" >/dev/null || fail "kill -9's reason: $r"
r=$(of oom "$P-oom" | jq -c '.[0]')
eq "$(jq -r .code <<<"$r")" memory_limit "an OOM kill's code"
eq "$(jq -r .version <<<"$r")" 1.0.0+0 "an OOM kill's version"
jq -e --arg p "$P-oom 1.0.0+0: killed at its memory limit" '.reason | startswith($p)' <<<"$r" >/dev/null ||
  fail "an OOM kill's reason: $r"
r=$(of restart_loop "$P-exit" | jq -c '.[0]')
eq "$(jq -r .code <<<"$r")" too_many_exits "a restart loop's code"
eq "$(jq -r .reason <<<"$r")" "$P-exit 1.0.0+0: 5 exits within 600 s" "a restart loop's reason"
# An OOM kill and a captured crash are not exits too; a loop is said once.
eq "$(of exit "$P-oom" | jq length)" 0 "exit reports of the OOM-killed app"
eq "$(of exit "$P-segv" | jq length)" 0 "exit reports of the crashing app"
queue
eq "$(of restart_loop "$P-exit" | jq length)" 1 "restart_loop reports of one loop"
# Each crash once, however often the queue was fed: as many crash reports as crashes numbered
# below the queue's crash cursor, none twice.
jq -e '[.reports[] | select(.kind == "crash") | [.component, .at, .crash.uptime_ms, .crash.address]] | length > 0 and length == (unique | length)' \
  "$d/q.json" >/dev/null || fail "a crash queued twice: $(jq -c '[.reports[] | select(.kind == "crash") | [.component, .at, .crash.uptime_ms]]' "$d/q.json")"
# The security events stay out of the queue (the status report carries them).
jq -e 'all(.reports[]; .kind | IN("crash", "exit", "oom", "restart_loop", "health"))' "$d/q.json" >/dev/null ||
  fail "the queue holds another kind: $(jq -c '[.reports[].kind] | unique' "$d/q.json")"
E2E_CHECKS=$((E2E_CHECKS + 4))

# The watchdog: the app that hangs after "ready" is killed at its deadline and restarted (a second
# miss is of its next run), each miss a `health` report, never an exit; the one that heartbeats
# lives through 20 heartbeats (5 periods) in its first run.
missed() { [ "$(grep -c " missed its watchdog (2 s)$" "$S/apps/$P-hang/exits" 2>/dev/null)" -ge 2 ]; }
wait_until 30 missed || { cat "$LOG" >&2; fail "the hanging app was not killed and restarted by its watchdog"; }
has_health() { queue && [ "$(of health "$P-hang" | jq length)" -ge 2 ]; }
wait_until 20 has_health || { cat "$d/q.json" >&2; fail "no health report of each watchdog miss"; }
r=$(of health "$P-hang" | jq -c '.[0]')
eq "$(jq -r .code <<<"$r")" watchdog "a missed watchdog's code"
eq "$(jq -r .version <<<"$r")" 1.0.0+0 "a missed watchdog's version"
eq "$(jq -r .reason <<<"$r")" "$P-hang 1.0.0+0: missed its watchdog (2 s)" "a missed watchdog's reason"
eq "$(of exit "$P-hang" | jq length)" 0 "exit reports of the app its watchdog killed"
beat_lived() { grep -q "crash-app: 20 heartbeats" "$S/apps/$P-beat/log" 2>/dev/null; }
wait_until 30 beat_lived || { cat "$S/apps/$P-beat/log" "$LOG" >&2; fail "the heartbeating app did not live 20 heartbeats"; }
eq "$(app_field "$P-beat" .state)" ready "the heartbeating app's state"
eq "$(app_field "$P-beat" .restarts)" 0 "the heartbeating app's restarts"
queue
eq "$(of health "$P-beat" | jq length)" 0 "health reports of the heartbeating app"

# Crash capture off for the device's group, as the agent keeps it (S/agent/settings.json, learned
# from the service: e2e.failure_flow): a crash kept after the queued ones is passed over for good,
# never queued, and the queue's crash cursor moves past it. The crashing apps crash again at their
# backoff (at most 60 s).
cursor() { jq '.cursors.crashes.next // 0' "$S/agent/reports/state.json"; }
ncrash() { jq '[.reports[] | select(.kind == "crash")] | length' "$d/q.json"; }
queue
before=$(ncrash)
newer() { crashes >"$d/c.json" && [ "$(jq '[.crashes[].seq] | max // -1' "$d/c.json")" -ge "$(cursor)" ]; }
wait_until 75 newer || fail "no crash was kept after the queued ones"
echo '{"crash_capture": false}' | "${AS_U[@]}" tee "$S/agent/settings.json" >/dev/null
# (the upload fails: no service; the queue keeps what it holds)
expect 1 "${AS_U[@]}" "$AGENT" report --state-dir "$S" --server https://127.0.0.1:9 --server-ca "$d/k.pub"
err_has "not queued: crash capture is off"
queue
eq "$(ncrash)" "$before" "crash reports after crash capture was turned off"
[ "$(cursor)" -gt "$(jq '[.crashes[].seq] | max' "$d/c.json")" ] ||
  fail "the crash cursor did not move past the passed-over crash: $(cat "$S/agent/reports/state.json")"
E2E_CHECKS=$((E2E_CHECKS + 1))
done_ok
