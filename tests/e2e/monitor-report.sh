#!/usr/bin/env bash
# End to end, what runs as the unprivileged agent and the service see it (issue 10, section 5):
# rampart-monitor as root runs an app deployed by the service; the app makes a security event (a
# system call its compartment refuses); the agent, as its own user (who cannot read root's event
# log nor the app's log), lists the event with `rampart-agent events` and shows the app's log with
# `app logs` (both through the monitor: EVENTS, APP_LOG); its update check sends the status
# report, and `rampart device show` shows the app and the event; a second report, and one sent
# again from the start, keep one of each event. Runs as root (the monitor does).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${RAMPART_SERVER:?set RAMPART_SERVER}"
[ "$(id -u)" = 0 ] || fail "the status report test runs as root (as CI does)"
command -v setpriv >/dev/null || fail "needs setpriv (util-linux)"
command -v unshare >/dev/null || fail "needs unshare (util-linux): the app's refused call"
U=daemon
getent passwd "$U" >/dev/null || fail "needs the user $U"
d=$E2E_DIR
chmod 711 "$d"
mkdir -m 755 "$d/pub"
AS_U=(setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups)
as_agent() { "${AS_U[@]}" "$AGENT" "$@"; }
APP=rep$$ # a component name of its own: cgroups are named after it

MON_PID=
full_cleanup() {
  [ -n "$MON_PID" ] && kill -TERM "$MON_PID" 2>/dev/null && wait "$MON_PID" 2>/dev/null
  cleanup
}
trap full_cleanup EXIT

# --- the service, the keys, the app ----------------------------------------------------------------
start_server "$d/srv"
cp "$SERVER_CA" "$d/pub/server-ca.pem"
CA=$d/pub/server-ca.pem
tenant_with_root "$d/pub/root.json"
# The app: says hello, tries to make a user namespace (refused by its compartment's filter: a
# security event), says ready, stays up.
mkdir -p "$d/tree/bin"
cat >"$d/tree/bin/app" <<'EOF'
#!/bin/sh
echo "hello from the reported app $RAMPART_VERSION"
if unshare -r true 2>/dev/null; then echo "unshare allowed"; else echo "unshare refused"; fi
echo ready >&"$RAMPART_READY_FD"
trap "exit 0" TERM
sleep 3600 & wait
EOF
chmod 755 "$d/tree/bin/app"
cat >"$d/tree/app_manifest.json" <<EOF
{"SchemaVersion": 1, "Name": "reported app", "ComponentId": "$APP", "EntryPoint": "bin/app"}
EOF
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --type app "$d/tree" "$d/pub/app.img"
chmod 644 "$d"/pub/*
expect 0 "$RAMPART" image upload --tenant "$acme" --component "$APP" "$d/pub/app.img"; img=$(cat "$d/out")

# --- the device: provisioned, the monitor for the agent's user, attested -------------------------
S=$d/dev
expect 0 "$AGENT" provision --state-dir "$S" --rot soft; id=$(tail -n1 "$d/out")
"$MONITOR" --state-dir "$S" --agent-user "$U" >>"$d/monitor.log" 2>&1 &
MON_PID=$!
serving() { as_agent id --state-dir "$S" >/dev/null 2>&1; }
wait_until 60 serving || { cat "$d/monitor.log" >&2; fail "the monitor did not serve $S"; }
expect 0 "$AGENT" trust --state-dir "$S" --update-root "$d/pub/root.json"
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
expect 0 "$RAMPART" device claim --tenant "$acme" "$id"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$id"
expect 0 as_agent attest --state-dir "$S" --server "$SERVER_URL" --server-ca "$CA"
# Nothing runs and nothing happened yet: the first report says so.
expect 0 as_agent check-now --state-dir "$S"
err_has "status report: 0 app(s), 0 event(s) taken by the service"
expect 0 "$RAMPART" device show --tenant "$acme" "$id" --output json
jq -e '.report.apps == [] and .report.events_kept == 0' "$d/out" >/dev/null || fail "first report: $(cat "$d/out")"

# --- the app, by deployment: it runs, and its refused call is an event ----------------------------
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$img"
expect 0 as_agent check-now --state-dir "$S" --health-seconds 1; out_has "1 installed"
app_state() { as_agent app list --state-dir "$S" --output json 2>/dev/null | jq -r --arg c "$APP" '.[] | select(.component == $c) | .state'; }
running() { case $(app_state) in ready | running) return 0 ;; esac; return 1; }
wait_until 90 running || { cat "$d/monitor.log" >&2; fail "$APP never ran"; }
has_event() {
  as_agent events --state-dir "$S" --output json >"$d/events.json" 2>"$d/events.err" &&
    jq -e --arg a "$APP" '[.events[] | select(.app == $a and .kind == "syscall")] | length > 0' "$d/events.json" >/dev/null
}
wait_until 60 has_event || fail "no syscall event of $APP: $(cat "$d/events.json" "$d/events.err")"

# The agent's user cannot read them itself: the monitor reads them for it.
expect_fail "${AS_U[@]}" cat "$S/events/log"
expect_fail "${AS_U[@]}" cat "$S/apps/$APP/log"
jq -e --arg a "$APP" '[.events[] | select(.app == $a)][0] | (.reason | test("unshare")) and (.at | type == "number") and (.seq | type == "number")' \
  "$d/events.json" >/dev/null || fail "the event's fields: $(cat "$d/events.json")"
jq -e '.dropped == 0' "$d/events.json" >/dev/null || fail "events dropped: $(cat "$d/events.json")"
expect 0 as_agent events --state-dir "$S"
grep -Eq "^[0-9T:-]+Z syscall +$APP +unshare" "$d/out" || fail "events (text): $(cat "$d/out")"
# The app's log, through the monitor.
has_hello() { as_agent app logs --state-dir "$S" "$APP" >"$d/log.txt" 2>&1 && grep -q "unshare refused" "$d/log.txt"; }
wait_until 30 has_hello || fail "app logs: $(cat "$d/log.txt")"
grep -q "^hello from the reported app 1.0.0+0$" "$d/log.txt" || fail "app logs: $(cat "$d/log.txt")"
expect 1 as_agent app logs --state-dir "$S" nosuchapp; err_has "the app never ran"
expect 2 as_agent app logs --state-dir "$S" ../events
# A long log: only its end (64 KiB), said.
{ for i in $(seq 1 2000); do printf 'filler line %04d: %s\n' "$i" "$(printf '%060d' 0)"; done; echo "last line"; } >>"$S/apps/$APP/log"
expect 0 as_agent app logs --state-dir "$S" "$APP"
out_has "earlier bytes not shown]"; out_has "last line"
[ "$(wc -c <"$d/out")" -le 66000 ] || fail "app logs printed more than its bound"

# --- the status report: the service sees the app and the event ------------------------------------
expect 0 as_agent check-now --state-dir "$S"; out_has "1 up to date"
err_has "status report: 1 app(s)"
expect 0 "$RAMPART" device show --tenant "$acme" "$id"
grep -Eq "^apps: +$APP 1\.0\.0\+0: (ready|running), [0-9]+ restart" "$d/out" || fail "device show: $(cat "$d/out")"
grep -Eq "^  #[0-9]+ [0-9T:-]+Z syscall +$APP +unshare" "$d/out" || fail "device show lacks the event: $(cat "$d/out")"
# device_events_match: the service keeps exactly the device's security events, one of each (an
# app's abnormal ends, exit, oom, restart_loop and health, go as reports instead).
device_events_match() {
  as_agent events --state-dir "$S" --output json >"$d/events.json" || return 1
  http GET "/api/v1/tenants/$acme/devices/$id/events?limit=1000" "$ADMIN_TOKEN"
  [ "$status" = 200 ] || return 1
  [ "$(jq -c '[.events[] | select(.kind | IN("exit", "oom", "restart_loop", "health") | not) | .seq] | sort' "$d/events.json")" = \
    "$(jq -c '[.events[].seq] | sort' "$d/body")" ] &&
    [ "$(jq '.events | map(.seq) | unique | length' "$d/body")" = "$(jq '.events | length' "$d/body")" ]
}
device_events_match || fail "the service's events are not the device's: $(cat "$d/events.json" "$d/body")"
expect 0 "$RAMPART" device show --tenant "$acme" "$id" --output json
jq -e --arg a "$APP" '.report.apps[0] | .component == $a and .version == "1.0.0+0" and (.restarts | type == "number")' "$d/out" >/dev/null ||
  fail "device show --output json: $(cat "$d/out")"
kept=$(jq '.report.events_kept' "$d/out")
[ "$kept" -ge 1 ] || fail "no event kept: $(cat "$d/out")"
eq "$(stat -c '%U' "$S/agent/report.json")" "$U" "the report's cursor: the agent's file"

# --- a second report: nothing new; from the start again (its cursor lost): none twice -------------
expect 0 as_agent check-now --state-dir "$S"; err_has "status report: 1 app(s), 0 event(s) taken"
"${AS_U[@]}" rm "$S/agent/report.json"
expect 0 as_agent check-now --state-dir "$S"
grep -q "status report: 1 app(s), [1-9][0-9]* event(s) taken" "$d/err" || fail "the events were not sent again: $(cat "$d/err")"
device_events_match || fail "a report sent again duplicated events: $(cat "$d/events.json" "$d/body")"

# --- the same events as root reads the file once no monitor runs: one formatter, the same lines --
for form in text json; do
  expect 0 as_agent events --state-dir "$S" --output "$form"; cp "$d/out" "$d/agent-events.$form"
done
kill -TERM "$MON_PID"; wait "$MON_PID" 2>/dev/null; MON_PID=
for form in text json; do
  expect 0 "$AGENT" events --state-dir "$S" --output "$form"
  cmp -s "$d/out" "$d/agent-events.$form" || fail "the monitor's events ($form) differ from the file's: $(diff "$d/out" "$d/agent-events.$form")"
done
done_ok
