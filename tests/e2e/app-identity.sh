#!/usr/bin/env bash
# End to end, the device identity for apps and app-to-app channels (device/monitor/appchan.c,
# device/app): a device whose key is inside swtpm gets its certificate from a real rampart-server;
# the sample app examples/mqtt-publisher, in a real compartment with its channel to the monitor
# (tests/tools/compartment-run.c --channel), publishes to mosquitto over mutual TLS with that
# identity (the broker requires a certificate of the tenant's CA), and a subscriber receives it;
# the same app without DeviceAuthentication is refused and the refusal is a security event. Then
# two apps in two compartments: a socket between them when both manifests allow it, refused (and
# recorded) when one does not, or when the peer does not run.
#
# The broker runs in the app's own network namespace (nsenter): the network policy that would
# let the app reach a broker elsewhere is e2e.netpolicy's; here the identity is what is tested.
# Run as root (namespaces, mounts, cgroups). Everything made is removed, also on failure.
[ "$(id -u)" = 0 ] || { echo "FAIL: app-identity.sh builds compartments: run it as root" >&2; exit 1; }
: "${COMPARTMENT_RUN:?set COMPARTMENT_RUN to the compartment-run test driver}"
: "${AGENT:?set AGENT to the rampart-agent binary}"
: "${PUBLISHER:?set PUBLISHER to the mqtt-publisher sample app}"
: "${APP_PEER:?set APP_PEER to the app-peer test app}"
for tool in mosquitto mosquitto_sub nsenter; do
  command -v "$tool" >/dev/null || { echo "FAIL: app-identity.sh needs $tool" >&2; exit 1; }
done
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR
chmod 755 "$d"
cr=$COMPARTMENT_RUN
app_uid=61236
S=$d/S run=$d/run tree=$d/tree
mkdir -p "$run" "$tree"

full_cleanup() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$cr" --cleanup --state-dir "$S" --run-dir "$run" >/dev/null 2>&1 || true
  cleanup
}
trap full_cleanup EXIT

# --- the device: its key in swtpm, its certificate from the service ---------------------------
start_server "$d/srv"
start_swtpm "$d/tpm"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
acme=$("$RAMPART" tenant create acme)
# No components are measured here, and a test machine may have no kernel lockdown.
"$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no >/dev/null
id_of() { "$AGENT" id --state-dir "$1" 2>/dev/null | sed -n 's/^device id: //p'; }
"$AGENT" provision --state-dir "$S" --rot tpm2 --tcti "$TCTI" >/dev/null 2>&1
"$AGENT" provision --state-dir "$d/sub" --rot soft >/dev/null 2>&1 # the subscriber's identity
dev=$(id_of "$S")
"$RAMPART" device claim --tenant "$acme" "$dev" "$(id_of "$d/sub")" >/dev/null
for s in "$S" "$d/sub"; do
  expect 0 "$AGENT" attest --state-dir "$s" --server "$SERVER_URL" --server-ca "$SERVER_CA"
done
crt=$S/agent/device.crt
[ -f "$crt" ] || crt=$S/device.crt
[ -f "$crt" ] || fail "the agent stored no device certificate"
sub_crt=$d/sub/agent/device.crt
[ -f "$sub_crt" ] || sub_crt=$d/sub/device.crt
sub_key=$d/sub/agent/identity.pem
[ -f "$sub_key" ] || sub_key=$d/sub/identity.pem

# --- the broker: trusts only acme's CA and requires a client certificate -----------------------
"$RAMPART" ca download --tenant "$acme" --out "$d/acme-ca.pem" >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/bca.key" \
  -out "$d/bca.pem" -subj /CN=broker-ca -days 1 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/broker.key" \
  -out "$d/broker.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/ext"
openssl x509 -req -in "$d/broker.csr" -CA "$d/bca.pem" -CAkey "$d/bca.key" -CAcreateserial \
  -out "$d/broker.pem" -days 1 -extfile "$d/ext" 2>/dev/null
port=18883
cat >"$d/mosquitto.conf" <<CONF
user root
allow_anonymous false
persistence false
listener $port 127.0.0.1
cafile $d/acme-ca.pem
certfile $d/broker.pem
keyfile $d/broker.key
require_certificate true
use_identity_as_username true
CONF

# --- the app's tree: the sample app and the broker's CA -----------------------------------------
cp "$PUBLISHER" "$tree/mqtt-publisher"
cp "$APP_PEER" "$tree/app-peer"
cp "$d/bca.pem" "$tree/broker-ca.pem"
chmod 755 "$tree" "$tree/mqtt-publisher" "$tree/app-peer"
chmod 644 "$tree/broker-ca.pem"
# The sample's own manifest is a valid one (DeviceAuthentication, the broker in AllowedConnections).
cp "$(dirname "$0")/../../examples/mqtt-publisher/app_manifest.json" "$tree/"
expect 0 "$RAMPART" app check "$tree"
out_has 'device authentication   yes'
publisher_args=(--connection "127.0.0.1:$port" --arg --host --arg 127.0.0.1 --arg --port --arg "$port" --arg --cafile
  --arg /app/broker-ca.pem --arg --topic --arg telemetry/app --arg --message
  --arg "hello from an app" --arg --retain --arg --wait-ms --arg 60000)

# --- allowed: DeviceAuthentication ----------------------------------------------------------------
"$cr" --state-dir "$S" --run-dir "$run" --tree "$tree" --entry mqtt-publisher \
  --component mqtt-publisher --uid $app_uid --gid $app_uid --log "$d/publisher.log" \
  --channel --device-auth --loopback --timeout-ms 120000 "${publisher_args[@]}" \
  >"$d/run.out" 2>"$d/run.err" &
run_pid=$!
E2E_PIDS+=("$run_pid")
started() { grep -q '^started: ' "$d/run.out" || grep -q '^start failed' "$d/run.out"; }
wait_until 60 started || fail "the compartment did not start: $(cat "$d/run.out" "$d/run.err")"
grep -q '^started: ' "$d/run.out" || fail "$(cat "$d/run.out")"
app_pid=$(sed -n 's/^started: //p' "$d/run.out")
# The broker in the app's network namespace; it outlives the app there.
nsenter -t "$app_pid" -n mosquitto -c "$d/mosquitto.conf" >"$d/mosquitto.log" 2>&1 &
broker_pid=$!
E2E_PIDS+=("$broker_pid")
rc=0
wait "$run_pid" || rc=$?
cp "$d/run.out" "$d/out"
[ "$rc" = 0 ] || { cat "$d/run.out" "$d/run.err" "$d/publisher.log" "$d/mosquitto.log" >&2; fail "compartment-run exited $rc"; }
grep -q "^exit: 0" "$d/out" ||
  { cat "$d/run.out" "$d/run.err" "$d/publisher.log" "$d/mosquitto.log" >&2; fail "the app failed"; }
out_has "ready"
grep -q "published to telemetry/app" "$d/publisher.log" ||
  fail "the app did not publish: $(cat "$d/publisher.log")"
E2E_CHECKS=$((E2E_CHECKS + 1))
grep -q '^event: ' "$d/out" && fail "an allowed run recorded events: $(grep '^event: ' "$d/out")"
# The broker saw the device's identity (its certificate's CN is the device ID).
grep -q "u'$dev'" "$d/mosquitto.log" || fail "the broker did not see device $dev: $(cat "$d/mosquitto.log")"
E2E_CHECKS=$((E2E_CHECKS + 1))
# A subscriber (another device of the tenant) receives it: retained, so no race with the publish.
nsenter -t "$broker_pid" -n timeout 60 mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$d/bca.pem" \
  --cert "$sub_crt" --key "$sub_key" -t 'telemetry/#' -C 1 -W 50 >"$d/received" 2>"$d/sub.err" ||
  fail "the subscriber got nothing: $(cat "$d/sub.err")"
eq "$(cat "$d/received")" "hello from an app" "the message through the broker"

# --- refused: the same app without DeviceAuthentication --------------------------------------------
expect 0 "$cr" --state-dir "$S" --run-dir "$run" --tree "$tree" --entry mqtt-publisher \
  --component mqtt-plain --uid $app_uid --gid $app_uid --log "$d/plain.log" \
  --channel --loopback --timeout-ms 60000 "${publisher_args[@]}"
out_has "exit: 2"
out_has "event: identity mqtt-plain app-identity refused: no DeviceAuthentication"
grep -q "identity refused: app-identity: the app's manifest has no DeviceAuthentication" "$d/plain.log" ||
  fail "the app was not told why: $(cat "$d/plain.log")"
E2E_CHECKS=$((E2E_CHECKS + 1))
# The agent lists it among the device's security events.
expect 0 "$AGENT" events --state-dir "$S"
out_has "mqtt-plain"
out_has "no DeviceAuthentication"
# No channel at all (an app started without one): it says so and does not run.
expect 0 "$cr" --state-dir "$S" --run-dir "$run" --tree "$tree" --entry mqtt-publisher \
  --component mqtt-nochan --uid $app_uid --gid $app_uid --log "$d/nochan.log" --timeout-ms 60000 \
  "${publisher_args[@]}"
out_has "exit: 1"
grep -q "RAMPART_MONITOR_FD is not set" "$d/nochan.log" || fail "$(cat "$d/nochan.log")"
E2E_CHECKS=$((E2E_CHECKS + 1))

# --- app to app -----------------------------------------------------------------------------------
# pair CALLEE_FLAGS... -- CALLER_FLAGS...: the callee (first app) answers, the caller calls it.
pair() {
  local callee=() caller=()
  while [ "$1" != -- ]; do callee+=("$1"); shift; done
  shift
  caller=("$@")
  expect 0 "$cr" --state-dir "$S" --run-dir "$run" --tree "$tree" --uid $app_uid --gid $app_uid \
    --channel --timeout-ms 60000 --entry app-peer --component sink --log "$d/sink.log" \
    "${callee[@]}" \
    --app --entry app-peer --component source --log "$d/source.log" "${caller[@]}"
}
: >"$d/sink.log"; : >"$d/source.log"
pair --app-connection source --arg answer --arg 60000 -- \
  --app-connection sink --arg call --arg sink --arg hello
out_has "exit: 0"
out_has "app source exit: 0"
grep -q "answer: got hello from source" "$d/source.log" || fail "$(cat "$d/source.log" "$d/sink.log")"
E2E_CHECKS=$((E2E_CHECKS + 1))
grep -q '^event: ' "$d/out" && fail "an allowed pair recorded events: $(grep '^event: ' "$d/out")"
# One way only: sink does not list source. Refused, recorded; sink never hears of it (it gives up).
: >"$d/sink.log"; : >"$d/source.log"
pair --arg answer --arg 3000 -- --app-connection sink --arg call --arg sink --arg hello
out_has "app source exit: 2"
out_has "exit: 3"
out_has "event: app_connection source source -> sink refused: sink's manifest does not list source"
grep -q "refused: sink does not list this app" "$d/source.log" || fail "$(cat "$d/source.log")"
E2E_CHECKS=$((E2E_CHECKS + 1))
# The peer does not run: refused, recorded.
expect 0 "$cr" --state-dir "$S" --run-dir "$run" --tree "$tree" --uid $app_uid --gid $app_uid \
  --channel --timeout-ms 60000 --entry app-peer --component source --log "$d/source.log" \
  --app-connection sink --arg call --arg sink --arg hello
out_has "exit: 2"
out_has "event: app_connection source source -> sink refused: no such app"

done_ok
