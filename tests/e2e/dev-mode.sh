#!/usr/bin/env bash
# End to end, development mode on the two-process device (docs/compartments.md, "Development
# mode"): rampart-monitor as root, rampart-agent as an unprivileged user. A managed device (one
# with an update root) refuses `rampart-agent app install IMAGE` until it holds a development
# capability signed for it; with one, the app is sideloaded (its component from its manifest),
# runs, and may ptrace its own processes (a debugger), never its compartment's init; the start is
# an event. After `capability remove`, the app's next start refuses ptrace again, as an event.
# Runs as root (the monitor does). The app's log and the events are read as root: the agent's
# user reads them through the monitor once it serves them (EVENTS, APP_LOG).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${RAMPART_SERVER:?set RAMPART_SERVER}"
: "${MONITOR_CALL:?set MONITOR_CALL}"
[ "$(id -u)" = 0 ] || fail "the development-mode test runs as root (as CI does)"
for tool in setpriv gcc jq; do command -v "$tool" >/dev/null || fail "needs $tool"; done
U=daemon
getent passwd "$U" >/dev/null || fail "needs the user $U"
d=$E2E_DIR
chmod 711 "$d"
mkdir -m 755 "$d/pub" # what the agent's user may read
as_agent() { setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups "$AGENT" "$@"; }
APP=devdbg$$ # a component name of its own: cgroups are named after it

if [ -r /proc/sys/kernel/yama/ptrace_scope ]; then
  scope=$(cat /proc/sys/kernel/yama/ptrace_scope)
  # 0 and 1 let a process trace its own child; 2 and 3 refuse every app, in any mode
  [ "$scope" -le 1 ] || fail "kernel.yama.ptrace_scope is $scope: no app can be debugged on this host"
fi

# --- the service, the keys, the images ------------------------------------------------------------
start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/root.key"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/img.key"
expect 0 "$RAMPART" key public --key "$d/img.key" --out "$d/img.pub"
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/img.pub" --name release
expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/root.key" --out "$d/pub/root.json"
mkdir -p "$d/tree"
gcc -O1 -Wall -Werror -o "$d/tree/ptrace-app" "$(dirname "$0")/ptrace-app.c"
cat >"$d/tree/app_manifest.json" <<JSON
{"SchemaVersion": 1, "Name": "debuggable", "ComponentId": "$APP", "EntryPoint": "ptrace-app",
 "Memory": {"LimitKB": 32768}, "Pids": {"Max": 8}}
JSON
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --type app "$d/tree" "$d/pub/app.img"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$d/single.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --type app "$d/single.sh" "$d/pub/single.img"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --type firmware "$d/single.sh" "$d/pub/fw.img"
chmod 644 "$d"/pub/*

# --- a managed device: provisioned, its monitor, its update root ---------------------------------
S=$d/dev
expect 0 "$AGENT" provision --state-dir "$S" --rot soft
id=$(tail -n1 "$d/out")
"$MONITOR" --state-dir "$S" --agent-user "$U" >>"$d/monitor.log" 2>&1 &
E2E_PIDS+=("$!")
serving() { as_agent id --state-dir "$S" >/dev/null 2>&1; }
wait_until 60 serving || { cat "$d/monitor.log" >&2; fail "the monitor did not serve $S"; }
expect 0 "$AGENT" trust --state-dir "$S" --update-root "$d/pub/root.json"
expect 0 "$RAMPART" device claim --tenant "$acme" "$id"

# --- app install: the component is the image's own; what is not an app is refused ---------------
expect 1 as_agent app install --state-dir "$S" "$d/pub/single.img"
err_has "a single-file app image has no manifest to name its component: give --component NAME"
expect 1 as_agent app install --state-dir "$S" --component other "$d/pub/app.img"
err_has "its manifest says ComponentId $APP, not other"
expect 1 as_agent app install --state-dir "$S" --component fw "$d/pub/fw.img"
err_has "an image of type firmware, not an app"
expect 2 as_agent app install --state-dir "$S"

# --- without a development capability: refused ---------------------------------------------------
expect 1 as_agent app install --state-dir "$S" --health-seconds 1 "$d/pub/app.img"
err_has "this device is managed"; err_has "development capability"
expect 1 as_agent app install --state-dir "$S" --component single --health-seconds 1 "$d/pub/single.img"
err_has "this device is managed"
[ ! -e "$S/components/$APP" ] || fail "a refused sideload left component $APP"

# --- with one: sideloaded, running, and its processes may be debugged ----------------------------
expect 0 "$RAMPART" device capability create --tenant "$acme" --device "$id" --kind development \
  --expires-in 2h --out "$d/cap.json"
expect 0 "$AGENT" capability apply --state-dir "$S" "$d/cap.json"
expect 0 as_agent capability show --state-dir "$S"; out_has "development capability from tenant $acme"
expect 0 as_agent app install --state-dir "$S" --health-seconds 1 "$d/pub/app.img"
out_has "$APP: installed"
app_field() { as_agent app list --state-dir "$S" --output json 2>/dev/null | jq -r --arg c "$APP" ".[] | select(.component == \$c) | $1"; }
runs() { [ "$(app_field .state)" = ready ] || [ "$(app_field .state)" = running ]; }
wait_until 60 runs || { cat "$d/monitor.log" >&2; fail "$APP does not run"; }
expect 0 as_agent app list --state-dir "$S"; out_has "$APP"
reports() { [ "$("$AGENT" app logs --state-dir "$S" "$APP" 2>/dev/null | grep -c '^ptrace init: ')" -ge "$1" ]; }
# its trial and its confirmed run each report
wait_until 60 reports 2 || fail "$APP never reported: $("$AGENT" app logs --state-dir "$S" "$APP" 2>&1)"
"$AGENT" app logs --state-dir "$S" "$APP" >"$d/log"
eq "$(grep '^ptrace child: ' "$d/log" | tail -1)" "ptrace child: ok, read 0x5241" "ptrace of its own child, with the capability"
eq "$(grep '^ptrace init: ' "$d/log" | tail -1)" "ptrace init: Operation not permitted" "ptrace of the compartment's init"
app_field .missing | grep -qF "ptrace allowed among its processes (development capability)" \
  || fail "app list does not say the debugger is allowed: $(app_field .missing)"
expect 0 "$AGENT" events --state-dir "$S" --output json
jq -e --arg c "$APP" 'any(.events[]; .kind == "capability" and .app == $c and (.reason | test("ptrace allowed")))' \
  "$d/out" >/dev/null || fail "no capability event for the debuggable start: $(cat "$d/out")"

# --- the capability removed: the next start refuses ptrace again, as an event ---------------------
expect 0 "$AGENT" capability remove --state-dir "$S"
before=$(grep -c '^ptrace init: ' "$d/log")
restarts=$(app_field .restarts)
init=$(app_field .pid)
victim=$(pgrep -P "$init" | head -1)
[ -n "$victim" ] || fail "no app process under its compartment's init $init"
kill -9 "$victim"
restarted() { [ "$(app_field .restarts)" -gt "$restarts" ] && reports $((before + 1)); }
wait_until 90 restarted || { cat "$d/monitor.log" >&2; fail "$APP was not restarted"; }
"$AGENT" app logs --state-dir "$S" "$APP" >"$d/log"
eq "$(grep '^ptrace child: ' "$d/log" | tail -1)" "ptrace child: refused: Operation not permitted" "ptrace of its own child, without the capability"
app_field .missing | grep -qF "ptrace allowed" && fail "app list still says the debugger is allowed"
expect 0 "$AGENT" events --state-dir "$S" --output json
jq -e --arg c "$APP" 'any(.events[]; .kind == "syscall" and .app == $c and (.reason | test("ptrace")))' \
  "$d/out" >/dev/null || fail "no syscall event for the refused ptrace: $(cat "$d/out")"
# and sideloading with it
expect 1 as_agent app install --state-dir "$S" --health-seconds 1 "$d/pub/app.img"
err_has "this device is managed"
# the monitor's own check, the agent bypassed (its user, a raw client): no targets name it, and no
# capability is in force now
expect 0 setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups "$MONITOR_CALL" "$S/monitor.sock" \
  install single "$d/pub/single.img" 1
out_has "refused: not an image the device's signed targets name (none kept), and no development capability is in force"
[ ! -e "$S/components/single" ] || fail "a refused sideload left component single"
done_ok
