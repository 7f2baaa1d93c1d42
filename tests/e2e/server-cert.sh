#!/usr/bin/env bash
# The service's own TLS certificate renewed while it runs (review r8 M4): two processes sharing one
# data directory (as replicas on one machine do), their wall clocks moved together by libfaketime
# reading its offset from a file while they run. At +400 days, past the 397-day certificate's end,
# a client whose clock agrees gets a valid certificate with no restart and no SIGHUP, made once
# (DATA_DIR/server.lock) and served by both; the metric says its end; a renewal that fails is
# said in the log and by /readyz; a SIGHUP renews too; the clock put back, one that begins ahead
# of it is made again (review r13 L3). And the agent plans its renewal from the
# service's answer, not from its own wall clock (review r8 L4): an agent 13 hours ahead still waits
# two thirds of 24 hours.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}"
d=$E2E_DIR
server_bin=$RAMPART_SERVER
faked_ok "$server_bin" || fail "the server cannot run with its clock moved"
move_clock "$d/offset" "+0"
declare -A PIDS=()
# (the wall clock only: a monotonic clock never goes back, as the wall clock does below)
start_shared() { # LOG: a process on the data directory $d/srv, its clock read from $d/offset
  env "${FAKED_ENV[@]}" FAKETIME_TIMESTAMP_FILE="$d/offset" FAKETIME_NO_CACHE=1 \
    FAKETIME_DONT_FAKE_MONOTONIC=1 \
    "$server_bin" --data-dir "$d/srv" --listen "127.0.0.1:${port:-0}" --port-file "$d/$1.port" \
    >"$d/$1.log" 2>&1 &
  E2E_PIDS+=("$!")
  PIDS[$1]=$!
  wait_until 60 test -s "$d/$1.port" || { cat "$d/$1.log" >&2; fail "$1 did not start"; }
}
start_shared a
port=$(cat "$d/a.port")
start_shared b # beside a, on its port
url="https://127.0.0.1:$port"
served() { # OFFSET: the serial of the certificate a client whose clock is OFFSET accepts
  at_clock "$1" curl -sS -o /dev/null --cacert "$d/srv/server-ca.pem" -w '%{certs}' "$url/readyz" \
    2>"$d/curl.err" | openssl x509 -noout -serial 2>/dev/null
}
expires() { curl -sS --cacert "$d/srv/server-ca.pem" "$url/metrics" |
  sed -n 's/^rampart_server_certificate_expires_seconds //p'; }
first=$(served +0)
[ -n "$first" ] || fail "no certificate at start: $(cat "$d/curl.err")"
left=$(expires)
[ "$left" -gt $((396 * 86400)) ] && [ "$left" -le $((397 * 86400)) ] || fail "expires_seconds at start: $left"
E2E_CHECKS=$((E2E_CHECKS + 2))

# --- the agent: 13 hours ahead, it still renews at two thirds of the certificate's 24 hours -------
export RAMPART_SERVER=$url RAMPART_CA_FILE=$d/srv/server-ca.pem RAMPART_TOKEN_FILE=$d/srv/admin.token
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$AGENT" provision --state-dir "$d/t" --rot soft
dev=$("$AGENT" id --state-dir "$d/t" 2>/dev/null | sed -n 's/^device id: //p')
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev"
faked_ok "$AGENT" || fail "the agent cannot run with its clock moved"
env "${FAKED_ENV[@]}" FAKETIME=+13h "$AGENT" run --state-dir "$d/t" --server "$url" \
  --server-ca "$d/srv/server-ca.pem" --start-jitter 0 >"$d/agent.log" 2>&1 &
agent=$!
E2E_PIDS+=("$agent")
planned() { grep -q 'next attestation in [0-9]* s' "$d/agent.log"; }
wait_until 60 planned || fail "the agent planned nothing: $(cat "$d/agent.log")"
kill -TERM "$agent"
wait "$agent" || fail "the agent did not stop cleanly: $(cat "$d/agent.log")"
wait_s=$(sed -n 's/.*next attestation in \([0-9]*\) s.*/\1/p' "$d/agent.log" | head -1)
grep -q '^attested' "$d/agent.log" || fail "the agent did not attest: $(cat "$d/agent.log")"
# two thirds of 86400 s, -10%: 51840..57600 (from its own clock it would plan 23760..26400)
[ "$wait_s" -ge 51840 ] && [ "$wait_s" -le 57601 ] || fail "the agent plans its renewal in $wait_s s"
E2E_CHECKS=$((E2E_CHECKS + 2))

# --- 400 days later, still running: a new certificate, made once, served by both ----------------
made_before=$(cat "$d/a.log" "$d/b.log" | grep -c 'made the server certificate' || true)
move_clock "$d/offset" "+400d"
renewed() { s=$(served +400d) && [ -n "$s" ] && [ "$s" != "$first" ]; }
wait_until 60 renewed || fail "a client at +400 d gets no valid certificate: $(cat "$d/curl.err")"
new=$(openssl x509 -in "$d/srv/server.pem" -noout -serial)
both() { s=$(served +400d) && [ "$s" = "$new" ]; }
for _ in 1 2 3 4 5 6 7 8; do # each connection lands on either process (SO_REUSEPORT)
  wait_until 30 both || fail "a process serves $(served +400d), not server.pem's $new"
done
made=$(cat "$d/a.log" "$d/b.log" | grep -c 'made the server certificate' || true)
eq "$((made - made_before))" 1 "server certificates made while running (two processes, one data directory)"
left=$(at_clock +400d curl -sS --cacert "$d/srv/server-ca.pem" "$url/metrics" |
  sed -n 's/^rampart_server_certificate_expires_seconds //p')
[ "$left" -gt $((396 * 86400)) ] || fail "expires_seconds after renewal: $left"
openssl verify -CAfile "$d/srv/server-ca.pem" -attime $(($(date +%s) + 400 * 86400)) "$d/srv/server.pem" \
  >/dev/null || fail "server.pem does not verify at +400 d"
E2E_CHECKS=$((E2E_CHECKS + 3))

# --- a renewal that fails is said: in the log, and by /readyz (still 200: not every replica out
# of the balancer at once, while the certificate is still good) ------------------------------------
mv "$d/srv/server-ca.key" "$d/server-ca.key.away"
move_clock "$d/offset" "+780d" # within the last 30 days of the certificate made at +400 d
said() { grep -q 'and was not renewed' "$d/a.log" && grep -q 'and was not renewed' "$d/b.log"; }
wait_until 60 said || fail "the failed renewal is not in the logs: $(tail -5 "$d/a.log")"
at_clock +780d curl -sS --cacert "$d/srv/server-ca.pem" "$url/readyz" >"$d/ready" ||
  fail "/readyz at +780 d: $(cat "$d/ready")"
jq -e '.status == "ready" and (.warning | test("^the TLS certificate ends in 1[0-9] day"))' "$d/ready" \
  >/dev/null || fail "/readyz does not say the certificate ends: $(cat "$d/ready")"
mv "$d/server-ca.key.away" "$d/srv/server-ca.key"
E2E_CHECKS=$((E2E_CHECKS + 2))

# --- a SIGHUP renews it too (the heartbeat would wait an hour before it tried again) -------------
made_before=$(grep -c 'made the server certificate' "$d/a.log" || true)
kill -HUP "${PIDS[a]}"
remade() { [ "$(grep -c 'made the server certificate' "$d/a.log" || true)" -gt "$made_before" ]; }
wait_until 30 remade || fail "SIGHUP did not renew the certificate: $(tail -3 "$d/a.log")"
openssl verify -CAfile "$d/srv/server-ca.pem" -attime $(($(date +%s) + 1100 * 86400)) "$d/srv/server.pem" \
  >/dev/null || fail "server.pem renewed at SIGHUP does not verify at +1100 d"
E2E_CHECKS=$((E2E_CHECKS + 2))

# --- the clock put right (review r13 L3): the certificate made at +780 d begins ahead of it, which
# clients refuse; the running service makes it again at its next look, with no restart ------------
ahead=$(openssl x509 -in "$d/srv/server.pem" -noout -serial)
move_clock "$d/offset" "+0"
put_right() { s=$(served +0) && [ -n "$s" ] && [ "$s" != "$ahead" ]; }
for _ in 1 2 3 4 5 6 7 8; do # each connection lands on either process (SO_REUSEPORT)
  wait_until 30 put_right ||
    fail "a client at +0 gets no valid certificate: $(cat "$d/curl.err" "$d/a.log")"
done
E2E_CHECKS=$((E2E_CHECKS + 1))
done_ok
