#!/usr/bin/env bash
# The service CA's rollover (docs/operations.md, "The service CA's lifetime"), with the service,
# the agents and curl under one faked clock (libfaketime, at_clock) moved across the service CA's
# ten years. At two thirds of its life /readyz and the log warn; the operator makes the successor
# (rampart-server service-ca next) and reloads the service (SIGHUP), which publishes it in the
# attestation answer (service_ca). Device a attests then and keeps it; device b does not. In the
# old CA's last 30 days the server certificate is the successor's: a, given the old CA alone, still
# connects (and after the old CA's end too, its daemon's status report as well); b, which never
# took the successor, cannot. After the old CA's end the operator promotes the successor
# (rampart-server service-ca promote, the service running) and reloads: a still attests, and
# `service-ca next` makes the next generation, which a takes too (rampart-agent status shows it).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${RAMPART_SERVER:?set RAMPART_SERVER}"
srv=$E2E_DIR/srv
SERVER_BIN=$RAMPART_SERVER # (restart_at: the service, run with its clock moved)

# attest DEVICE: with the CA the devices were given at the start ($E2E_DIR/ca0.pem), always.
attest() {
  run_at "$AGENT" attest --state-dir "$E2E_DIR/$1" --server "$SERVER_URL" --server-ca "$E2E_DIR/ca0.pem"
}
certs_in() { grep -c -- '-----BEGIN CERTIFICATE-----' "$1"; }
issuer() { openssl x509 -in "$1" -noout -issuer -nameopt RFC2253; }
readyz() { faked_at curl -sf --cacert "$1" "$SERVER_URL/readyz"; }
# days_left CA: rampart_service_ca_expires_seconds, in whole days (the service checked against CA).
days_left() {
  faked_at curl -sf --cacert "$1" "$SERVER_URL/metrics" |
    sed -n 's/^rampart_service_ca_expires_seconds //p' | awk '{ print int($1 / 86400) }'
}

restart_at +0d "$srv"
cp "$SERVER_CA" "$E2E_DIR/ca0.pem"
expect 0 run_at "$RAMPART" tenant create acme; acme=$(cat "$E2E_DIR/out")
expect 0 run_at "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
for d in a b; do
  expect 0 run_at "$AGENT" provision --state-dir "$E2E_DIR/$d" --rot soft
  expect 0 run_at "$RAMPART" device claim --tenant "$acme" "$(tail -n1 "$E2E_DIR/out")"
  expect 0 attest $d
done
eq "$(certs_in "$E2E_DIR/a/agent/service-ca.pem")" 2 "the given CA and the published one"
readyz "$E2E_DIR/ca0.pem" >"$E2E_DIR/ready" || fail "/readyz"
! grep -q warning "$E2E_DIR/ready" || fail "a warning at the start: $(cat "$E2E_DIR/ready")"
# Not due yet: refused without --force (one made now would end with the old one).
expect 1 run_at "$SERVER_BIN" service-ca next --data-dir "$srv"
err_has "not due"
[ ! -e "$srv/server-ca-next.key" ] || fail "a successor made before it was due"

# Two thirds of the service CA's life (2433 days) passed: the warning; the successor made.
restart_at +2440d "$srv"
readyz "$E2E_DIR/ca0.pem" >"$E2E_DIR/ready" || fail "/readyz"
grep -q "no successor" "$E2E_DIR/ready" || fail "no warning: $(cat "$E2E_DIR/ready")"
grep -q "service-ca next" "$srv.log" || fail "the log does not say what to do"
left=$(days_left "$E2E_DIR/ca0.pem")
[ "$left" -ge 1209 ] && [ "$left" -le 1210 ] || fail "rampart_service_ca_expires_seconds: $left days"
expect 0 run_at "$SERVER_BIN" service-ca next --data-dir "$srv"
expect 1 run_at "$SERVER_BIN" service-ca next --data-dir "$srv"
err_has "there already"
# (a reload publishes it: no restart needed)
kill -HUP "$SERVER_PID"
no_warning() { readyz "$E2E_DIR/ca0.pem" >"$E2E_DIR/ready" && ! grep -q warning "$E2E_DIR/ready"; }
wait_until 30 no_warning || fail "still a warning after the reload: $(cat "$E2E_DIR/ready")"
left=$(days_left "$E2E_DIR/ca0.pem") # (ten years less the seconds since it was made)
[ "$left" -ge 3649 ] && [ "$left" -le 3650 ] || fail "rampart_service_ca_expires_seconds: $left days"
fp=$(openssl x509 -in "$srv/server-ca-next.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' |
  tr A-F a-f)
grep -q "successor .*SHA-256 $fp" "$srv.log" || fail "the log does not name the successor's fingerprint"
expect 0 attest a
eq "$(certs_in "$E2E_DIR/a/agent/service-ca.pem")" 3 "the given CA, the current one, the successor"
issuer "$srv/server.pem" | grep -q "CN=Rampart service CA$" || fail "the switch came early"

# The old CA's last 30 days: the server certificate is the successor's.
restart_at +3630d "$srv"
issuer "$srv/server.pem" | grep -q "CN=Rampart service CA 20" || fail "no switch: $(issuer "$srv/server.pem")"
! faked_at curl -sf --cacert "$E2E_DIR/ca0.pem" -o /dev/null "$SERVER_URL/readyz" ||
  fail "the old CA alone still verifies the service"
expect 0 attest a
expect 1 attest b
grep -qi "certificate" "$E2E_DIR/out" "$E2E_DIR/err" || fail "b's failure is not the service's certificate"

# Past the old CA's end: a still attests, with the old CA as its given file.
restart_at +3655d "$srv"
expect 0 attest a
eq "$(certs_in "$E2E_DIR/a/agent/service-ca.pem")" 2 "the given CA and the successor (the old one ended)"
# the daemon too: its attestation and the status report after it (which trust the kept file)
env "${FAKED_ENV[@]}" FAKETIME="$WHEN" "$AGENT" run --state-dir "$E2E_DIR/a" --server "$SERVER_URL" \
  --server-ca "$E2E_DIR/ca0.pem" --start-jitter 0 >"$E2E_DIR/daemon.log" 2>&1 &
daemon=$!
E2E_PIDS+=("$daemon")
wait_until 30 grep -qs "status report: .* taken by the service" "$E2E_DIR/daemon.log" ||
  { cat "$E2E_DIR/daemon.log" >&2; fail "the daemon's status report"; }
kill "$daemon"
wait "$daemon" 2>/dev/null || true
# b re-provisioned with the successor (its kept file does not begin with it: the new one alone)
expect 0 run_at "$AGENT" attest --state-dir "$E2E_DIR/b" --server "$SERVER_URL" \
  --server-ca "$srv/server-ca-next.pem"

# The successor made the service CA while the service runs (refused before, then done once).
fp_next=$(openssl x509 -in "$srv/server-ca-next.pem" -noout -fingerprint -sha256)
expect 0 run_at "$SERVER_BIN" service-ca promote --data-dir "$srv"
eq "$(openssl x509 -in "$srv/server-ca.pem" -noout -fingerprint -sha256)" "$fp_next" "the promoted CA"
[ ! -e "$srv/server-ca-next.pem" ] && [ ! -e "$srv/server-ca-next.key" ] && [ -e "$srv/server-ca-old.pem" ] ||
  fail "the files after promote: $(ls "$srv")"
expect 1 run_at "$SERVER_BIN" service-ca promote --data-dir "$srv"
err_has "no successor"
kill -HUP "$SERVER_PID"
expect 0 attest a
eq "$(certs_in "$E2E_DIR/a/agent/service-ca.pem")" 2 "the given CA and the promoted one"
# the next generation (forced: the promoted CA is not due for years), published at the reload
expect 1 run_at "$SERVER_BIN" service-ca next --data-dir "$srv"
err_has "not due"
expect 0 run_at "$SERVER_BIN" service-ca next --data-dir "$srv" --force
kill -HUP "$SERVER_PID"
published_next() { attest a >/dev/null 2>&1 && [ "$(certs_in "$E2E_DIR/a/agent/service-ca.pem")" = 3 ]; }
wait_until 30 published_next || fail "the next generation is not published: $(certs_in "$E2E_DIR/a/agent/service-ca.pem")"
expect 0 run_at "$AGENT" status --state-dir "$E2E_DIR/a" --output json
eq "$(jq '.service_cas | length' "$E2E_DIR/out")" 3 "rampart-agent status: the service CAs kept"
eq "$(jq -r '.service_cas[2].sha256' "$E2E_DIR/out")" \
  "$(openssl x509 -in "$srv/server-ca-next.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)" \
  "rampart-agent status: the next generation's fingerprint"
expect 0 run_at "$AGENT" status --state-dir "$E2E_DIR/a"
grep -q "service CA .*Rampart service CA 20" "$E2E_DIR/out" || { cat "$E2E_DIR/out" >&2; fail "status text: no service CA"; }
E2E_CHECKS=$((E2E_CHECKS + 2))
done_ok
