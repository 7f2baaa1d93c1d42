#!/usr/bin/env bash
# End to end, device to cloud and device to device: a real mosquitto broker that trusts only the
# tenant CA and requires client certificates (with the tenant's CRL), and devices talking mutual
# TLS to each other with the certificates Rampart issued - soft keys and a key inside swtpm.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

start_server "$d/srv"
start_swtpm "$d/tpm"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
acme=$("$RAMPART" tenant create acme)
globex=$("$RAMPART" tenant create globex)
# These devices measure no components, and a test machine may have no kernel lockdown (debug
# "enabled"): their tenants' policies allow both (the default refuses them).
for t in "$acme" "$globex"; do
  "$RAMPART" tenant policy --tenant "$t" --allow-debug yes --require-components no >/dev/null
done

id_of() { "$AGENT" id --state-dir "$d/$1" 2>/dev/null | sed -n 's/^device id: //p'; }
for dev in a b x u; do "$AGENT" provision --state-dir "$d/$dev" --rot soft >/dev/null 2>&1; done
"$AGENT" provision --state-dir "$d/c" --rot soft >/dev/null 2>&1
"$AGENT" provision --state-dir "$d/t" --rot tpm2 --tcti "$TCTI" >/dev/null 2>&1
"$RAMPART" device claim --tenant "$acme" "$(id_of a)" "$(id_of b)" "$(id_of x)" "$(id_of t)" >/dev/null
"$RAMPART" device claim --tenant "$globex" "$(id_of c)" >/dev/null
for dev in a b x t c; do
  expect 0 "$AGENT" attest --state-dir "$d/$dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
done
# u never attests: the best it has is a certificate it made itself
openssl req -x509 -new -key "$d/u/identity.pem" -subj "/CN=$(id_of u)" -days 1 -out "$d/u/agent/device.crt" 2>/dev/null

# --- the broker: trusts only acme's CA, requires a client certificate, checks acme's CRL ---------
"$RAMPART" ca download --tenant "$acme" --out "$d/acme-ca.pem" >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/bca.key" \
  -out "$d/bca.pem" -subj /CN=broker-ca -days 1 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/broker.key" \
  -out "$d/broker.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/ext"
openssl x509 -req -in "$d/broker.csr" -CA "$d/bca.pem" -CAkey "$d/bca.key" -CAcreateserial \
  -out "$d/broker.pem" -days 1 -extfile "$d/ext" 2>/dev/null
# start_broker: mosquitto (it cannot bind port 0) with acme's CRL as it is now, on a free port:
# $port, $broker_pid.
broker_start() {
  cat >"$d/mosquitto.conf" <<CONF
user root
per_listener_settings false
allow_anonymous false
persistence false
listener $PORT 127.0.0.1
cafile $d/acme-ca.pem
certfile $d/broker.pem
keyfile $d/broker.key
require_certificate true
use_identity_as_username true
crlfile $d/crl.pem
CONF
  mosquitto -c "$d/mosquitto.conf" >"$d/mosquitto.log" 2>&1 &
}
broker_up() { listens "$SERVE_PID" "$PORT"; }
start_broker() {
  "$RAMPART" ca crl --tenant "$acme" --out "$d/crl.pem" >/dev/null
  serve_on_free_port "$d/mosquitto.log" broker_start broker_up
  port=$PORT broker_pid=$SERVE_PID
}
mq() { # mq pub|sub DEVICE ARGS...
  local tool=mosquitto_$1 dev=$2
  shift 2
  timeout 90 "$tool" -h localhost -p "$port" --cafile "$d/bca.pem" \
    --cert "$d/$dev/agent/device.crt" --key "$d/$dev/identity.pem" -i "client-$dev-$RANDOM" "$@"
}
start_broker

# an attested device publishes, and another attested device receives it: retained, so that it
# reaches the subscriber whenever its subscription is in place (no waiting for it)
expect 0 mq pub a -t telemetry/a -m "hello from a" -q 1 -r
mq sub b -t 'telemetry/#' -C 1 -W 60 >"$d/received" 2>"$d/sub.err" ||
  fail "the subscriber got nothing: $(cat "$d/sub.err")"
eq "$(cat "$d/received")" "hello from a" "the message through the broker"
# refused: a certificate the device made itself, another tenant's device, no certificate at all
expect_fail mq pub u -t telemetry/u -m "from u" -q 1
expect_fail mq pub c -t telemetry/c -m "from c" -q 1
expect_fail timeout 15 mosquitto_pub -h localhost -p "$port" --cafile "$d/bca.pem" -t t -m m -q 1
# a blocked device: refused as soon as the broker has the new CRL
expect 0 mq pub x -t telemetry/x -m "x before" -q 1
"$RAMPART" device block --tenant "$acme" "$(id_of x)" >/dev/null
kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
start_broker
expect_fail mq pub x -t telemetry/x -m "x after" -q 1
cat "$d/acme-ca.pem" "$d/crl.pem" >"$d/ca+crl.pem"
openssl verify -crl_check -CAfile "$d/ca+crl.pem" "$d/x/agent/device.crt" >"$d/verify.out" 2>&1 || true
grep -q "certificate revoked" "$d/verify.out" || fail "the broker's CRL does not revoke x's certificate"
expect 1 "$AGENT" attest --state-dir "$d/x" --server "$SERVER_URL" --server-ca "$SERVER_CA"
err_has "blocked"
expect 0 mq pub a -t telemetry/a -m "a still" -q 1

# --- device to device: mutual TLS with the tenant CA, soft and TPM keys -------------------------------
# peer_serve DEVICE: its agent serves one peer, on a port the kernel picks: $sp, its pid $pid.
# (serve.out removed first: the last serve's "listening" line is not this one's.)
peer_serve() {
  rm -f "$d/serve.out"
  "$AGENT" peer serve --state-dir "$d/$1" --listen 127.0.0.1:0 >"$d/serve.out" 2>"$d/serve.err" &
  pid=$!
  wait_until 60 grep -q listening "$d/serve.out" || fail "peer serve did not listen: $(cat "$d/serve.err")"
  sp=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$d/serve.out")
  [ -n "$sp" ] || fail "peer serve: $(cat "$d/serve.out")"
}
peer_pair() { # peer_pair SERVER CLIENT: the exit codes of both sides, "S C"
  local sp pid s_rc=0 c_rc=0
  peer_serve "$1"
  "$AGENT" peer connect --state-dir "$d/$2" --peer "127.0.0.1:$sp" >"$d/connect.out" 2>"$d/connect.err" || c_rc=$?
  wait "$pid" || s_rc=$?
  echo "$s_rc $c_rc"
  { echo "--- peer $1 serving $2"; cat "$d/serve.err" "$d/connect.err"; } >>"$d/peers.log"
}
pair=$(peer_pair a t)
[ "$pair" = "0 0" ] || fail "soft server, TPM client: $pair: $(cat "$d/peers.log")"
grep -q "peer device $(id_of t) authenticated" "$d/serve.out" || fail "a did not see t"
grep -q "peer device $(id_of a) authenticated" "$d/connect.out" || fail "t did not see a"
eq "$(peer_pair t b)" "0 0" "TPM server, soft client"
grep -q "peer device $(id_of b) authenticated" "$d/serve.out" || fail "t did not see b"
[ "$(peer_pair a c)" = "1 1" ] || fail "a device of another tenant was accepted"
[ "$(peer_pair c a)" = "1 1" ] || fail "a device accepted another tenant's server"
E2E_CHECKS=$((E2E_CHECKS + 2))
# A self-made certificate: u's own agent will not present it (it has no tenant CA: it fails before
# it connects), and a device it is presented to (by openssl s_client) refuses it. (peer_pair a u
# timed out: a waited its 30 s for a peer that never came, and never saw the certificate.)
expect 1 "$AGENT" peer connect --state-dir "$d/u" --peer 127.0.0.1:9
err_has "ca-chain.pem is corrupt (not found): it should hold the tenant CA that issued device.crt"
s_rc=0
peer_serve a
openssl s_client -connect "127.0.0.1:$sp" -cert "$d/u/agent/device.crt" -key "$d/u/identity.pem" \
  -CAfile "$d/acme-ca.pem" </dev/null >"$d/sclient.out" 2>&1 || true
wait "$pid" || s_rc=$?
eq "$s_rc" 1 "a, shown a self-made certificate ($(cat "$d/serve.err"))"
grep -q "peer: refused: self-signed certificate" "$d/serve.err" ||
  fail "a did not refuse the self-made certificate: $(cat "$d/serve.err")"
! grep -q "authenticated" "$d/serve.out" || fail "a authenticated a self-made certificate"

done_ok
