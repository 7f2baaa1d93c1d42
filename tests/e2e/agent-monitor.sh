#!/usr/bin/env bash
# End to end, the two-process device: rampart-monitor as root with --agent-user, rampart-agent as
# that unprivileged user for every command. Provision (as root, before the monitor), the refusal
# with no monitor, a local install, the first root only from root, attestation, an update check
# from a real rampart-server over mutual TLS 1.3 with the key behind the monitor, root rotation
# through TRUST_ROOT (a forged root refused), `run` under the agent's own seccomp filter, an app
# removed once a deployment drops it (never while its targets name it), and kill
# -9 of either process during installs: the device always holds a bootable verified image, and
# its security counter never falls.
# Runs as root (the monitor does; the agent is started as the user with setpriv).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${RAMPART_SERVER:?set RAMPART_SERVER}"
: "${MONITOR_CALL:?set MONITOR_CALL}"
[ "$(id -u)" = 0 ] || fail "the two-process test runs as root (as CI does)"
command -v setpriv >/dev/null || fail "needs setpriv (util-linux)"
U=daemon
getent passwd "$U" >/dev/null || fail "needs the user $U"
d=$E2E_DIR
chmod 711 "$d"
mkdir -m 755 "$d/pub" # what the agent's user may read: images, roots, the service's CA
AS_U=(setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups)
as_agent() { "${AS_U[@]}" "$AGENT" "$@"; }
# a compromised agent: its user, the monitor's socket, a raw client of the protocol (no agent code)
as_call() { "${AS_U[@]}" "$MONITOR_CALL" "$S/monitor.sock" "$@"; }
# in the background: "${AS_U[@]}" "$AGENT" ... & (setpriv execs the agent: $! is the agent's pid)

# --- the service, the operator's keys, the images ----------------------------------------------
start_server "$d/srv"
cp "$SERVER_CA" "$d/pub/server-ca.pem"
CA=$d/pub/server-ca.pem
tenant_with_root "$d/pub/root.json"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$d/good.sh"
printf '#!/bin/sh\nexec sleep 3600\n' >"$d/quiet.sh" # never says ready: its trial lasts
# a large app: its copy into the monitor takes long enough to be cut
{ printf '#!/bin/sh\nexec sleep 3600\nexit 0\n'; head -c $((48 * 1024 * 1024)) /dev/urandom; } >"$d/big.sh"
sign() { # VERSION COUNTER SCRIPT [KEY]
  expect 0 "$RAMPART" image sign --key "${4:-$d/img.key}" --version "$1" --security-counter "$2" \
    --type app "$3" "$d/pub/app-$1.img"
}
sign 1.0.0 1 "$d/good.sh"
sign 1.0.1 2 "$d/quiet.sh"
sign 1.0.2 3 "$d/big.sh"
sign 1.0.3 4 "$d/quiet.sh"
sign 1.0.4 5 "$d/big.sh"
sign 1.0.6 5 "$d/quiet.sh"
sign 1.0.7 6 "$d/good.sh"
sign 1.0.8 6 "$d/good.sh" # signed by the tenant, never deployed to the device
chmod 644 "$d"/pub/*

# --- provision: as root, before the monitor's first start ---------------------------------------
S=$d/dev
expect 1 as_agent provision --state-dir "$S" --rot soft
err_has "provision runs as root, before the monitor's first start"
expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/img.pub"
id=$(tail -n1 "$d/out")
eq "$(stat -c '%a %U' "$S/agent")" "700 root" "S/agent before the monitor"

# --- no monitor: the unprivileged agent refuses, saying how to start it --------------------------
for cmd in status attest recover; do
  expect 1 as_agent "$cmd" --state-dir "$S" --server "$SERVER_URL" --server-ca "$CA"
  err_has "no rampart-monitor serves $S: start it with rampart-monitor --state-dir $S --agent-user $U"
done
# root, with no monitor: single-process mode (development), said once
expect 0 "$AGENT" status --state-dir "$S"; err_has "single-process mode"

# What single-process mode leaves in S/agent as root's (the agent's files: targets, downloads),
# and what must not be reached through it: a link out, and a hard link to a file elsewhere.
mkdir -m 700 "$S/agent/update"
install -m 600 /dev/null "$S/agent/update/targets.json"
install -m 600 /dev/null "$d/outside"; install -m 600 /dev/null "$d/outside2"
ln -s "$d/outside" "$S/agent/link-out"
ln "$d/outside2" "$S/agent/hard-link"

# --- the monitor: as root, for the agent's user ------------------------------------------------
MON_PID=
start_monitor() { # [CMD...]: what runs the monitor (at_clock OFFSET)
  "$@" "$MONITOR" --state-dir "$S" --agent-user "$U" >>"$d/monitor.log" 2>&1 &
  E2E_PIDS+=("$!")
  serving() { as_agent id --state-dir "$S" >/dev/null 2>&1; }
  wait_until 60 serving || { cat "$d/monitor.log" >&2; fail "the monitor did not serve $S"; }
  MON_PID=$(head -n1 "$S/monitor.lock") # the monitor's own pid ($! may be a wrapper's)
  E2E_PIDS+=("$MON_PID")
}
stop_monitor() {
  kill -TERM "$MON_PID"; wait "$MON_PID" 2>/dev/null || true
  stopped() { ! kill -0 "$MON_PID" 2>/dev/null; }
  wait_until 60 stopped || fail "the monitor did not stop"
}
start_monitor
eq "$(stat -c '%a %U' "$S/agent")" "700 $U" "S/agent: the agent's user's, private"
eq "$(stat -c '%a %U' "$S")" "711 root" "S: root's, passable"
eq "$(stat -c '%U' "$S/monitor.sock")" "$U" "the socket's owner"
for f in update update/targets.json; do
  eq "$(stat -c %U "$S/agent/$f")" "$U" "S/agent/$f (single-process mode's), handed over with S/agent"
done
for f in outside outside2; do eq "$(stat -c %U "$d/$f")" root "$f, reached through a link, untouched"; done
rm "$S/agent/link-out" "$S/agent/hard-link" "$S/agent/update/targets.json"
# the agent's user cannot read the identity key: whatever it signs, the monitor signs
expect_fail "${AS_U[@]}" cat "$S/identity.pem"
expect 0 as_agent provision --state-dir "$S" --rot soft; out_has "$id"
expect 0 as_agent id --state-dir "$S"; out_has "device id: $id"

# --- a local install through the monitor (INSTALL, the image as a descriptor) -------------------
expect 0 as_agent install --state-dir "$S" --component app --health-seconds 1 "$d/pub/app-1.0.0.img"
out_has "app: installed"
expect 0 as_agent status --state-dir "$S"
grep -Eq '^app +1\.0\.0\+0 +a +none +1 +installed' "$d/out" || fail "status: $(cat "$d/out")"
expect 0 as_agent recover --state-dir "$S"

# --- a component attached to an MCU: the monitor verifies the image and puts it on trial, and
# hands the trial to the agent (it runs no relay itself), whose relay runner runs the relay (here
# one that boots nothing): failed, never active, no longer on trial (docs/mcu.md;
# e2e.mcu_deploy_monitor deploys to the emulated board).
# Without the board's attestation key pinned the monitor would confirm nothing: not relayed.
expect 0 "$AGENT" mcu attach --state-dir "$S" --component fw -- /bin/true
expect 1 as_agent install --state-dir "$S" --component fw "$d/pub/app-1.0.0.img"
out_has "fw: failed: no attestation key of the board is pinned"
openssl ecparam -name prime256v1 -genkey -noout -out "$d/board.key" 2>/dev/null
board_key=$(openssl ec -in "$d/board.key" -pubout -outform DER 2>/dev/null | xxd -p | tr -d '\n')
expect 0 "$AGENT" mcu attach --state-dir "$S" --component fw --attestation-key "$board_key" -- \
  /bin/true
expect 1 as_agent install --state-dir "$S" --component fw "$d/pub/app-1.0.0.img"
out_has "fw: failed: the MCU's relay said nothing of a boot"
eq "$(jq -r '.active, .trial' "$S/components/fw/state" | tr '\n' ' ')" "null null " \
  "firmware the board never took: not active, not on trial"
rm "$S/mcu/fw.json" "$S/mcu/fw.key"

# --- kill -9 across the two processes during installs -------------------------------------------
state_of() { jq -r "$1" "$S/components/app/state" 2>/dev/null; }
floor=1
# holds: a bootable verified image, the security counter never below what it was
holds() {
  expect 0 as_agent status --state-dir "$S" --output json
  local v f
  v=$(jq -r '.components[] | select(.name == "app") | .version' "$d/out")
  f=$(jq -r '.components[] | select(.name == "app") | .security_counter_floor' "$d/out")
  [ -n "$v" ] && [ "$v" != null ] || fail "$1: no verified image runs: $(cat "$d/out")"
  [ "$f" -ge "$floor" ] || fail "$1: the security counter fell from $floor to $f"
  floor=$f
  expect 0 as_agent recover --state-dir "$S"
  echo "$1: runs $v, counter $f"
}
copying() { [ -e "$S/monitor-tmp/install.img" ]; }
on_trial() { [ "$(state_of .trial)" = b ] || [ "$(state_of .trial)" = a ]; }
settled() { [ "$(state_of .trial)" = null ] && ! copying && "$AGENT" recover --state-dir "$S" >/dev/null 2>&1; }
fast_wait() { # CMD: poll without sleeping (the window is short), bounded
  local end=$((SECONDS + 60))
  until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; done
}
# kill_agent_at POINT VERSION: the agent is killed once the install reaches POINT; the monitor
# finishes it, and the next status shows it.
kill_agent_at() {
  "${AS_U[@]}" "$AGENT" install --state-dir "$S" --component app --health-seconds 2 "$d/pub/app-$2.img" \
    >"$d/agent.out" 2>&1 &
  local pid=$!
  E2E_PIDS+=("$pid")
  fast_wait "$1" || fail "the install of $2 never reached '$1'"
  eq "$(cat "/proc/$pid/comm" 2>/dev/null)" rampart-agent "the process killed"
  kill -9 "$pid"
  local rc=0; wait "$pid" 2>/dev/null || rc=$?
  eq "$rc" 137 "the agent's end (SIGKILL, mid-install)"
  wait_until 120 settled || { cat "$S/components/app/state" "$d/monitor.log" >&2; ls -la "$S/monitor-tmp" >&2; fail "the monitor did not finish the install of $2"; }
  eq "$(state_of .last_update.version)" "$2+0" "the install the agent left"
  eq "$(state_of .last_update.result)" installed "the install the agent left, finished"
  holds "agent killed while $1 ($2)"
}
kill_agent_at copying 1.0.2
kill_agent_at on_trial 1.0.3
# kill_monitor_at POINT VERSION: the monitor is killed mid-install; its recovery at the next start
# puts the device right (the old image, or the new one if it was confirmed).
kill_monitor_at() {
  local before
  before=$(state_of .active)
  "${AS_U[@]}" "$AGENT" install --state-dir "$S" --component app --health-seconds 3 "$d/pub/app-$2.img" \
    >"$d/agent.out" 2>&1 &
  local pid=$!
  E2E_PIDS+=("$pid")
  fast_wait "$1" || fail "the install of $2 never reached '$1'"
  local kids
  kids=$(pgrep -P "$MON_PID" || true) # an app on trial: started by the monitor, gone with it
  kill -9 "$MON_PID"; wait "$MON_PID" 2>/dev/null || true
  for k in $kids; do kill -9 "$k" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
  # a process killed is gone only once the kernel has ended it: until then a child of the monitor
  # (its supervisor, its install) holds the monitor's lock, and a new monitor would refuse to start
  lock_free() { flock -n "$S/monitor.lock" true; }
  wait_until 30 lock_free || fail "the killed monitor's processes still hold $S/monitor.lock"
  # what a kill -9 mid-write of the component's state leaves: removed at the next start
  printf '{}' >"$S/components/app/state.tmpK9l8M7"
  start_monitor
  [ ! -e "$S/components/app/state.tmpK9l8M7" ] || fail "a cut write of the state was kept"
  holds "monitor killed while $1 ($2)"
  [ "$(state_of .trial)" = null ] || fail "a trial is left after recovery: $(cat "$S/components/app/state")"
  eq "$(state_of .active)" "$before" "the active slot after a cut install (recovery rolled back)"
}
kill_monitor_at copying 1.0.4
kill_monitor_at on_trial 1.0.6
rm -rf "$S/monitor-tmp"

# --- the first root only from root; root rotation through TRUST_ROOT ----------------------------
expect 1 as_agent trust --state-dir "$S" --update-root "$d/pub/root.json"
err_has "its first is given by root"
expect 0 "$AGENT" trust --state-dir "$S" --update-root "$d/pub/root.json"; out_has "kept by rampart-monitor"
eq "$(stat -c '%a %U' "$S/update/root.bin")" "644 root" "the root: the monitor's, public"
# a managed device takes images through deployments: a local install needs a development capability
expect 1 as_agent install --state-dir "$S" --component app "$d/pub/app-1.0.7.img"
err_has "this device is managed"
# ...and the monitor holds to it when the agent is bypassed: no targets yet, no capability
expect 0 as_call install app "$d/pub/app-1.0.7.img" 1
out_has "refused: not an image the device's signed targets name (none kept), and no development capability is in force"

# --- attestation through the monitor -------------------------------------------------------------
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
expect 0 "$RAMPART" device claim --tenant "$acme" "$id"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$id"
# the service knows what the device runs (its appraisal refuses unknown images)
upload() { expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/pub/app-$1.img"; cat "$d/out"; }
for v in 1.0.0 1.0.2 1.0.3; do upload "$v" >/dev/null; done
expect 0 as_agent attest --state-dir "$S" --server "$SERVER_URL" --server-ca "$CA"
out_has "attested: device $id"; out_has "$S/agent/device.crt"
eq "$(stat -c '%U' "$S/agent/device.crt")" "$U" "the certificate: the agent's file"
expect 0 "$RAMPART" ca download --tenant "$acme" --out "$d/acme-ca.pem"
expect 0 openssl verify -CAfile "$d/acme-ca.pem" "$S/agent/device.crt"
cmp -s "$d/acme-ca.pem" "$S/agent/ca-chain.pem" || fail "ca-chain.pem is not the tenant CA"

# --- device-to-device TLS through the monitor (TLS 1.3: it signs each CertificateVerify) ------
"${AS_U[@]}" "$AGENT" peer serve --state-dir "$S" --listen 127.0.0.1:0 >"$d/peer.out" 2>&1 &
peer=$!
E2E_PIDS+=("$peer")
peer_listens() { grep -q "^listening on" "$d/peer.out"; }
wait_until 60 peer_listens || fail "peer serve: $(cat "$d/peer.out")"
expect 0 as_agent peer connect --state-dir "$S" --peer "$(sed -n 's/^listening on //p' "$d/peer.out")"
out_has "peer device $id authenticated"
rc=0; wait "$peer" || rc=$?
eq "$rc" 0 "peer serve's exit status"
grep -q "peer device $id authenticated" "$d/peer.out" || fail "peer serve: $(cat "$d/peer.out")"

# --- an update check over mutual TLS 1.3, the key behind the monitor -----------------------------
v107=$(upload 1.0.7)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v107"
dep=$(cat "$d/out")
expect 0 as_agent check-now --state-dir "$S" --health-seconds 1
out_has "app: installed"; out_has "1 installed"
holds "after the update check"
expect 0 "$RAMPART" deployment show --tenant "$acme" "$dep" --output json
jq -e '.states.installed == 1' "$d/out" >/dev/null || fail "the service's record: $(cat "$d/out")"
[ -z "$(ls -A "$S/agent/update/downloads")" ] || fail "a download was left"
expect 0 as_agent check-now --state-dir "$S" --health-seconds 1; out_has "1 up to date"

# --- the monitor installs only what the device's signed targets name ----------------------------
# The agent handed the targets to the monitor (TARGETS), which keeps its own copy, root's.
# It keeps them in their binary form: what it took is never parsed again (no JSON in the file).
eq "$(stat -c '%a %U' "$S/update/targets.bin")" "600 root" "the monitor's targets"
grep -q "targets version [0-9]* kept" "$d/monitor.log" || fail "the monitor kept no targets"
head -c 4 "$S/update/targets.bin" | grep -q RPKP || fail "the monitor's targets are not in the kept form"
cp "$S/update/targets.bin" "$d/targets.kept"
install -m 644 "$S/agent/update/targets.json" "$d/pub/targets-old.json" # the agent's: JSON
# a compromised agent asks for images the tenant signed that the service did not deploy here:
# a version never deployed, and the deployed image as another component. Refused, nothing changes.
expect 0 as_call install app "$d/pub/app-1.0.8.img" 1
out_has "refused: not an image the device's signed targets name (version "
out_has "names app 1.0.7+0, image "
expect 0 as_call install other "$d/pub/app-1.0.7.img" 1
out_has "refused: not an image the device's signed targets name (version "; out_has "names no other)"
[ ! -e "$S/components/other" ] || fail "a refused image of a component the device lacks left state"
expect 0 as_agent status --state-dir "$S" --output json
jq -e '[.components[] | select(.name == "app")][0] | .version == "1.0.7+0"' "$d/out" >/dev/null \
  || fail "a refused install changed what runs: $(cat "$d/out")"
# what the targets name installs (unchanged: it runs), whoever asks
expect 0 as_call install app "$d/pub/app-1.0.7.img" 1; out_has "unchanged: 1.0.7+0 is running already"
# targets the monitor cannot take (not a document; too large) are refused and change nothing
printf 'garbage' >"$d/pub/garbage.json"; chmod 644 "$d/pub/garbage.json"
expect 1 as_call targets "$d/pub/garbage.json" json; out_has "targets metadata refused"
head -c $((64 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$d/pub/huge-targets.json"; chmod 644 "$d/pub/huge-targets.json"
expect 1 as_call targets "$d/pub/huge-targets.json" json; out_has "the targets metadata is larger than 65536 bytes"
# the monitor parses no JSON it has not verified: the envelope comes unpacked, in its binary form
# (the agent unpacks it), and every bound of that form holds; each refusal says why
expect 1 as_call targets "$d/pub/targets-old.json" json
out_has "targets metadata refused: not a signed document in its binary form"
expect 1 as_call targets "$d/pub/targets-old.json" truncated; out_has "the document ends in signature 1"
expect 1 as_call targets "$d/pub/targets-old.json" many; out_has "17 signatures (at most 16)"
expect 1 as_call targets "$d/pub/targets-old.json" bigsig; out_has "signature 1 is 129 bytes (1 to 128)"
expect 1 as_call targets "$d/pub/targets-old.json" dup
out_has "not signed by the root's online key (key "; out_has "... signs twice)"
expect 1 as_call targets "$d/pub/targets-old.json" other
out_has "not signed by the root's online key (0 of the 1 signatures needed verify)"
cmp -s "$S/update/targets.bin" "$d/targets.kept" || fail "a refused targets changed the kept ones"
expect 0 as_call targets "$d/pub/targets-old.json"; out_has "targets version "
cmp -s "$S/update/targets.bin" "$d/targets.kept" || fail "the same targets, kept again, changed"
# expired targets: the monitor's own clock says so (two days on; targets live one)
stop_monitor
start_monitor at_clock '+2d'
expect 1 as_call targets "$d/pub/targets-old.json"; out_has "targets metadata refused: the targets have expired (freeze)"
expect 0 as_call install app "$d/pub/app-1.0.7.img" 1
out_has "refused: not an image the device's signed targets name (the targets have expired (freeze))"
stop_monitor
start_monitor
# the device-to-service connection is TLS 1.3 only: a service that stops at TLS 1.2 is refused
# (what the monitor signs is a TLS 1.3 CertificateVerify, and nothing else)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/t12.key" \
  -out "$d/pub/t12.pem" -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 2>/dev/null
chmod 644 "$d/pub/t12.pem"
# on a port the kernel picks (its ACCEPT line names it)
openssl s_server -accept 127.0.0.1:0 -tls1_2 -cert "$d/pub/t12.pem" -key "$d/t12.key" -www \
  -Verify 1 >"$d/s_server.log" 2>&1 &
E2E_PIDS+=("$!")
wait_until 60 grep -q '^ACCEPT ' "$d/s_server.log" || fail "openssl s_server did not start: $(cat "$d/s_server.log")"
port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$d/s_server.log")
[ -n "$port" ] || fail "openssl s_server: $(cat "$d/s_server.log")"
expect 1 as_agent check-now --state-dir "$S" --server "https://127.0.0.1:$port" --server-ca "$d/pub/t12.pem"
err_has "127.0.0.1:$port"; err_has "protocol version" # the agent ends a TLS 1.2 handshake

# --- root rotation: the agent fetches root 2 and hands it to the monitor (TRUST_ROOT) -----------
expect 0 "$RAMPART" key generate --type ed25519 --out "$d/img2.key"
expect 0 "$RAMPART" key public --key "$d/img2.key" --out "$d/img2.pub"
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/img2.pub" --name release-2
sign 1.1.0 7 "$d/good.sh" "$d/img2.key"; chmod 644 "$d/pub/app-1.1.0.img"
v110=$(upload 1.1.0)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v110"
expect 1 as_agent check-now --state-dir "$S" --health-seconds 1
out_has "refused: not signed by a trusted key" # root 1 does not name img2
expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/root.key" --out "$d/pub/root2.json"
expect 0 as_agent check-now --state-dir "$S" --health-seconds 1; out_has "app: installed"
grep -q "update root version 2 kept" "$d/monitor.log" || fail "the monitor did not keep root 2"
holds "after root rotation"
# the targets of the first deployment, handed back by a compromised agent: a rollback, refused
expect 1 as_call targets "$d/pub/targets-old.json"
out_has "targets metadata refused: targets version "; out_has "(rollback)"
# a root the agent hands over that the kept root did not sign is refused, and changes nothing
expect 0 "$RAMPART" tenant create evil; evil=$(cat "$d/out")
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/rogue.key"
expect 0 "$RAMPART" key public --key "$d/rogue.key" --out "$d/rogue.pub"
expect 0 "$RAMPART" image-key add --tenant "$evil" --key "$d/rogue.pub" --name rogue
# version 3, one past the device's 2, but signed by its own keys only (a chain of its own)
for _ in 1 2 3; do
  expect 0 "$RAMPART" update-root sign --tenant "$evil" --root-key "$d/rogue.key" --out "$d/pub/evil.json"
done
jq -e '.signed | @base64d | fromjson | .version == 3' "$d/pub/evil.json" >/dev/null \
  || fail "the forged root is not version 3: $(cat "$d/pub/evil.json")"
chmod 644 "$d/pub/evil.json"
cp "$S/update/root.bin" "$d/root.kept"
expect 1 as_agent trust --state-dir "$S" --update-root "$d/pub/evil.json"; err_has "root metadata refused"
expect 1 as_agent trust --state-dir "$S" --update-root "$d/pub/root.json"; err_has "root metadata refused"
cmp -s "$S/update/root.bin" "$d/root.kept" || fail "a refused root changed the kept one"
# more than 64 KiB: refused whole
head -c $((64 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$d/pub/huge.json"; chmod 644 "$d/pub/huge.json"
expect 1 as_agent trust --state-dir "$S" --update-root "$d/pub/huge.json"; err_has "larger than 65536 bytes"
# The payload's JSON is read by rampart-unpack (confined), which answers the document's binary form
# ("d", "RPMD"...); a payload that is not the kind asked is refused with the reason.
UNPACK=$(dirname "$MONITOR")/rampart-unpack
jq -r '.signed | @base64d' "$d/pub/root.json" >"$d/root.payload"
expect 0 "$UNPACK" metadata root "$(stat -c %s "$d/root.payload")" <"$d/root.payload"
eq "$(head -c 5 "$E2E_DIR/out")" dRPMD "rampart-unpack's answer to a root"
expect 1 "$UNPACK" metadata targets "$(stat -c %s "$d/root.payload")" <"$d/root.payload"
err_has "not targets (type rampart-targets)"

# --- run: the daemon as the agent's user, under its own seccomp filter ---------------------------
"${AS_U[@]}" "$AGENT" run --state-dir "$S" --server "$SERVER_URL" --server-ca "$CA" --health-seconds 1 --start-jitter 0 \
  >"$d/run.log" 2>&1 &
runner=$!
E2E_PIDS+=("$runner")
checked() { grep -q "update check:" "$d/run.log"; }
wait_until 120 checked || { cat "$d/run.log" >&2; fail "run did no update check"; }
grep -q "through rampart-monitor" "$d/run.log" || fail "run: not through the monitor: $(cat "$d/run.log")"
grep -q "attested: device $id" "$d/run.log" || fail "run did not attest: $(cat "$d/run.log")"
kill -USR1 "$runner" # check now: a second check, still under the filter
twice() { [ "$(grep -c "update check:" "$d/run.log")" -ge 2 ]; }
wait_until 120 twice || { cat "$d/run.log" >&2; fail "run did not check again on SIGUSR1"; }
kill -TERM "$runner"
rc=0; wait "$runner" || rc=$?
eq "$rc" 0 "run's exit status after SIGTERM (a seccomp kill would be 159)"
expect 159 "$AGENT" --seccomp-selftest # 128 + SIGSYS

# --- SIGTERM to run while its install waits out a trial: it stops at once (its call to the ------
# monitor is shut down), the monitor finishes the trial on its own, and the next run finds the
# confirmed version. The app says it is ready only when told (SIGUSR1): told once run has gone.
told_app "$d/told.sh"
sign 1.1.1 7 "$d/told.sh" "$d/img2.key"; chmod 644 "$d/pub/app-1.1.1.img"
v111=$(upload 1.1.1)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v111"
# the app on trial (app_shell), ready to be told once its trap for SIGUSR1 is set (catches), not
# once its log says "waiting to be told": the log's bucket can cut a run's first line (lib.sh)
told_shell() { app_shell app 1.1.1+0; }
told_waits() { local p; p=$(told_shell) && catches "$p" "$(kill -l USR1)"; }
# run is given a 2 s watchdog (review r13 M4): it goes on feeding it while INSTALL's answer waits
# for the trial (120 s here), as the unit's WatchdogSec=60s needs with a health window above it.
watchdog_listen
"${WATCHDOG[@]}" "${AS_U[@]}" "$AGENT" run --state-dir "$S" --server "$SERVER_URL" --server-ca "$CA" \
  --health-seconds 120 --start-jitter 0 >"$d/run.log" 2>&1 &
runner=$!
E2E_PIDS+=("$runner")
wait_until 120 told_waits || { cat "$d/run.log" >&2; fail "run's install of 1.1.1 never reached its trial"; }
watchdog_fed "run's INSTALL waited for the monitor's trial" "$d/run.log"
on_trial || fail "1.1.1's app runs, and no trial: $(cat "$S/components/app/state")"
kill -TERM "$runner"
run_gone() { ! kill -0 "$runner" 2>/dev/null; }
# (at once: its trial has 120 s; 60 s bounds a loaded machine's, or ASan's, stop)
wait_until 60 run_gone || fail "run did not stop at SIGTERM while its install was on trial: $(cat "$d/run.log")"
rc=0; wait "$runner" || rc=$?
eq "$rc" 0 "run's exit status after SIGTERM during a trial"
grep -q "stopping: the monitor's answer to install is not awaited" "$d/run.log" ||
  fail "run's stop is not said: $(cat "$d/run.log")"
grep -q "update check: ended by the stop" "$d/run.log" || fail "run's check, cut: $(cat "$d/run.log")"
on_trial || fail "the trial ended with run: $(cat "$S/components/app/state")"
kill -USR1 "$(told_shell)" # the monitor's trial goes on without run, and confirms
wait_until 60 settled || fail "the monitor did not finish the install run left: $(cat "$S/components/app/state")"
eq "$(state_of .last_update.version)" 1.1.1+0 "the install run left"
eq "$(state_of .last_update.result)" installed "the install run left, finished"
# emptied here: the run below opens its log only once it has started, and until then `checked`
# would read the stopped run's "update check: ended by the stop"
: >"$d/run.log"
"${AS_U[@]}" "$AGENT" run --state-dir "$S" --server "$SERVER_URL" --server-ca "$CA" --health-seconds 1 --start-jitter 0 \
  >"$d/run.log" 2>&1 &
runner=$!
E2E_PIDS+=("$runner")
wait_until 120 checked || { cat "$d/run.log" >&2; fail "run did no update check after its stop"; }
grep -q "update check: 0 installed, 1 up to date" "$d/run.log" || fail "run's check after its stop: $(cat "$d/run.log")"
kill -TERM "$runner"
rc=0; wait "$runner" || rc=$?
eq "$rc" 0 "run's exit status after SIGTERM"
expect 0 as_agent status --state-dir "$S" --output json
eq "$(jq -r '.components[] | select(.name == "app") | .version' "$d/out")" 1.1.1+0 "the confirmed version after run's stop"

# --- removing an app (APP_REMOVE): not while the device's targets name it; once a deployment -----
# drops it (here: the device moved to a group with none), the agent's next check removes it
expect 1 as_agent app remove --state-dir "$S" app
err_has "not removed: the device's signed targets still name it"
[ -e "$S/apps/app/tree" ] || fail "a refused removal deleted the app's files"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Production "$id"
expect 0 as_agent check-now --state-dir "$S" --health-seconds 1
err_has "app: removed (the device's targets no longer name it)"
[ ! -e "$S/apps/app" ] || fail "the removed app's files are left: $(ls -la "$S/apps/app")"
eq "$(ls "$S/components/app")" state "what is left of the removed app: its tombstone"
expect 0 as_agent events --state-dir "$S" --output json
jq -e '[.events[] | select(.kind == "removed" and .app == "app" and
  (.reason | test(" removed: the signed targets version [0-9]+ does not name app$")))] | length == 1' \
  "$d/out" >/dev/null || fail "no removed event: $(cat "$d/out")"
expect 0 as_agent check-now --state-dir "$S" --health-seconds 1 # nothing more to remove
! grep -q "app: removed\|was not removed" "$d/err" || fail "a second check removed again: $(cat "$d/err")"

kill -TERM "$MON_PID"; wait "$MON_PID" || true

# --- a symlink planted at S/agent: the monitor refuses it, and chowns nothing through it ----------
S2=$d/dev2
expect 0 "$AGENT" provision --state-dir "$S2" --rot soft
mkdir -m 700 "$d/elsewhere"
rmdir "$S2/agent"; ln -s "$d/elsewhere" "$S2/agent"
expect 1 timeout 60 "$MONITOR" --state-dir "$S2" --agent-user "$U" # a monitor that took it would serve on
err_has "is not a directory (a symlink?)"
eq "$(stat -c '%a %U' "$d/elsewhere")" "700 root" "the symlink's target, untouched"
echo "PASS: agent-monitor ($E2E_CHECKS checks)"
