#!/usr/bin/env bash
# End to end: attestation bound to its TLS connection (docs/protocol.md, "The evidence's nonce"),
# against a real rampart-server. The agent attests in one request with no nonce
# asked for (nonces_issued stays 0) and its evidence's eat_nonce is its connection's exporter;
# then, driven by tests/tools/bound-attest.c, every way bound evidence must be refused: bound to
# another open connection, to a closed previous one (the next connection resumes its session, and
# the service counts it resumed: a fresh exporter all the same), sent twice on one connection,
# over TLS 1.2, and on a connection older than a nonce's lifetime; each refusal proves nothing
# about the device (its history is unchanged); and the nonce flow still works beside it. Behind a
# proxy that ends TLS the agent falls back to the nonce flow: refused as channel_mismatch when the
# proxy speaks TLS 1.3, and before sending anything when it speaks only TLS 1.2 (no binding).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}" "${BOUND_ATTEST:?set BOUND_ATTEST}"
d=$E2E_DIR
server_bin=$RAMPART_SERVER

start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
# This machine's kernel is not locked down (debug enabled) and the devices measure nothing.
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
port=${SERVER_URL##*:}

# --- the agent: one request, no nonce -----------------------------------------------------------
expect 0 "$AGENT" provision --state-dir "$d/a" --rot soft
a=$("$AGENT" id --state-dir "$d/a" 2>/dev/null | sed -n 's/^device id: //p')
expect 0 "$RAMPART" device claim --tenant "$acme" "$a"
expect 0 "$AGENT" attest --state-dir "$d/a" --server "$SERVER_URL" --server-ca "$SERVER_CA"
jq -e '.passed == true and .reason == "pass"' "$d/a/agent/attestation.json" >/dev/null ||
  fail "the agent's attestation: $(cat "$d/a/agent/attestation.json")"
http GET /metrics -; is_status 200
grep -q '^rampart_nonces_issued_total 0$' "$d/body" || fail "the agent asked for a nonce"
grep -q '^rampart_attestations_total{result="pass",reason="pass"} 1$' "$d/body" || fail "metrics: pass"
# its evidence, as the service recorded it: no nonce was spent for it
eq "$(sqlite3 "$d/srv/rampart.db" 'select count(*) from spent_nonces')" 0 "spent nonces"

# --- bound evidence from a device that misbehaves -----------------------------------------------
b=$("$BOUND_ATTEST" --key "$d/b.pem" id)
expect 0 "$RAMPART" device claim --tenant "$acme" "$b"
history_of() {
  "$RAMPART" device attestations --tenant "$acme" "$1" >"$d/hist"
  jq -c '[.attestations[] | {id, result, reason}]' "$d/hist"
}
bound() { "$BOUND_ATTEST" --key "$d/b.pem" --port "$port" --ca "$SERVER_CA" "$@" >"$d/steps" 2>"$d/steps.err" ||
  fail "bound-attest: $(cat "$d/steps.err")"; }
resumed() { http GET /metrics -; sed -n 's/^rampart_http_requests_resumed_total //p' "$d/body"; }
resumed_before=$(resumed)
# A and B open at once: A's evidence on B is refused, and spends neither; then A's own passes,
# once: again on A it is refused; A closed, C resumes A's session (its ticket) with a binding of
# its own, on which A's evidence is refused; C's own passes.
bound open A open B post B A post A A post A A close A open C session C same A C post C A post C C
eq "$(tr '\n' ' ' <"$d/steps")" \
  "403 channel_mismatch 200 pass 403 channel_reused reused A differs 403 channel_mismatch 200 pass " \
  "bound steps"
# the service saw it resumed too: C's three requests (GET /healthz and two posts), no other
eq "$(($(resumed) - resumed_before))" 3 "requests over a resumed session"
history_of "$b" >"$d/hist.b"
eq "$(jq length "$d/hist.b")" 2 "b's history: only the passes ($(cat "$d/hist.b"))"
# TLS 1.2 has no binding Rampart accepts, even with its exporter computed the same way
bound open12 D post D D
eq "$(cat "$d/steps")" "403 channel_mismatch" "TLS 1.2"
# the refusals are counted for the address, not in the device's history
eq "$(history_of "$b")" "$(cat "$d/hist.b")" "b's history after the refusals"
http GET /api/v1/unproven-attestations "$ADMIN_TOKEN"; is_status 200
body_has ".sources[0].address == \"127.0.0.1\" and .sources[0].count == 4
  and .sources[0].last_reason == \"channel_mismatch\" and .sources[0].last_device_id == \"$b\""

# A connection older than a nonce's lifetime binds nothing: a replica of the service (the same
# data directory) whose nonces live 3 s, and a connection left to age 4.5 s (the service counts
# whole seconds: 4 > 3 whatever the rounding) - waiting here is for that state; a slow machine
# only waits longer. A young connection (opened and used at once: well under 3 s, even under load)
# still passes there, so the refusal is the age's.
"$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0 --port-file "$d/short.port" \
  --nonce-lifetime 3 >"$d/short.log" 2>&1 &
short=$!
E2E_PIDS+=("$short")
wait_until 60 test -s "$d/short.port" || fail "the replica did not start: $(cat "$d/short.log")"
port=$(cat "$d/short.port")
bound open E age E 4.5 post E E
eq "$(cat "$d/steps")" "403 channel_expired" "an old connection"
bound open F post F F
eq "$(cat "$d/steps")" "200 pass" "a young connection on the same replica"
kill "$short"; wait "$short" 2>/dev/null || true

# --- the nonce flow, beside it ------------------------------------------------------------------
attestation_request "$d/a" "$d/req.json" || fail "no nonce"
http POST /api/v1/attest - "$d/req.json"; is_status 200; body_has '.result == "pass"'
http POST /api/v1/attest - "$d/req.json"; is_status 403; body_has '.reason == "nonce_replayed"'
# --- behind a proxy that ends TLS, the agent falls back to the nonce flow ------------------------
# HAProxy holding the service's own certificate, opening its own TLS connection to the service:
# the agent's binding is the agent-proxy connection's, the service sees the proxy's. (The proxy's
# own leg is not what is tested: it does not verify the service.)
cat "$d/srv/server.pem" "$d/srv/server.key" >"$d/proxy.pem"
# Two frontends: one speaking TLS 1.3 to devices, one capped at TLS 1.2.
hap_start() {
  printf '%s\n' "defaults" "  mode tcp" "  timeout connect 5s" "  timeout client 30s" \
    "  timeout server 30s" "frontend devices" "  bind 127.0.0.1:$PORT ssl crt $d/proxy.pem" \
    "  default_backend service" "frontend devices12" \
    "  bind 127.0.0.1:$PORT2 ssl crt $d/proxy.pem ssl-max-ver TLSv1.2" \
    "  default_backend service" "backend service" \
    "  server s1 ${SERVER_URL#https://} ssl verify none" \
    >"$d/haproxy.cfg"
  haproxy -db -f "$d/haproxy.cfg" >"$d/haproxy.log" 2>&1 &
}
hap_up() { listens "$SERVE_PID" "$PORT" && listens "$SERVE_PID" "$PORT2"; }
serve_on_free_port "$d/haproxy.log" hap_start hap_up
pport=$PORT pport12=$PORT2
http GET /metrics -; nonces_before=$(sed -n 's/^rampart_nonces_issued_total //p' "$d/body")
expect 0 "$AGENT" attest --state-dir "$d/a" --server "https://127.0.0.1:$pport" --server-ca "$SERVER_CA"
err_has "refused evidence bound to the TLS connection (channel_mismatch): attesting with a nonce"
jq -e '.passed == true' "$d/a/agent/attestation.json" >/dev/null ||
  fail "the agent behind the proxy: $(cat "$d/a/agent/attestation.json")"
http GET /metrics -; is_status 200
[ "$(sed -n 's/^rampart_nonces_issued_total //p' "$d/body")" -gt "$nonces_before" ] ||
  fail "the agent behind the proxy asked for no nonce"
for reason in channel_mismatch channel_reused; do   # channel_expired: the replica counted it
  grep -Eq "^rampart_attestations_total\{result=\"fail\",reason=\"$reason\"\} [1-9]" "$d/body" ||
    fail "metrics: no $reason"
done
# A proxy that speaks only TLS 1.2 to devices: the agent's connection has no binding, so it sends
# no bound evidence at all (the service counts no channel_mismatch more) and attests with a nonce.
mismatches() { sed -n 's/^rampart_attestations_total{result="fail",reason="channel_mismatch"} //p' "$d/body"; }
mismatches_before=$(mismatches); nonces_before=$(sed -n 's/^rampart_nonces_issued_total //p' "$d/body")
rm -f "$d/a/agent/attestation.json"
expect 0 "$AGENT" attest --state-dir "$d/a" --server "https://127.0.0.1:$pport12" --server-ca "$SERVER_CA"
err_has "the connection (TLSv1.2) has no binding: only TLS 1.3 through OpenSSL has one; attesting with a nonce"
jq -e '.passed == true' "$d/a/agent/attestation.json" >/dev/null ||
  fail "the agent behind the TLS 1.2 proxy: $(cat "$d/a/agent/attestation.json")"
http GET /metrics -; is_status 200
eq "$(sed -n 's/^rampart_nonces_issued_total //p' "$d/body")" "$((nonces_before + 1))" \
  "nonces the agent behind the TLS 1.2 proxy asked for"
eq "$(mismatches)" "$mismatches_before" "channel_mismatch after the TLS 1.2 proxy"
done_ok
