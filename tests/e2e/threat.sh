#!/usr/bin/env bash
# End to end, threat detection and automatic quarantine (server/api/threat.c): real devices (soft
# root of trust, real certificates) post status reports with security events over mutual TLS, as
# e2e.device_status does. One device's flood raises no alert (the distinct-device rule); a storm
# from three raises one alert, seen on `rampart alert list`, on /metrics and at a webhook receiver
# on loopback that checks the HMAC signature (its first answer is a 500: the delivery is retried);
# with the quarantine policy on, the three are quarantined: `rampart device show` says why, their
# certificates are in the CRL, attestation refuses them (reason quarantined), their reports are
# refused; repeated proven attestation failures quarantine a fourth; release restores them.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
tools=$(dirname "$0")/../tools

# --webhook-allow-private: the receiver is on loopback (refused without it: see the end).
server_bin=$RAMPART_SERVER
start_server "$d/srv" --webhook-allow-private
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$RAMPART" token create --tenant "$acme" --role reader; cp "$d/out" "$d/reader.token"

# The webhook receiver (its secret file is written once the service has shown the secret).
python3 "$tools/webhook-receiver.py" "$d/hook.port" "$d/hook.secret" "$d/hook.out" --fail-first 1 \
  --down-file "$d/hook.down" &
E2E_PIDS+=("$!")
wait_until 30 test -s "$d/hook.port" || fail "the webhook receiver did not start"
# Its URL holds a credential, as many receivers' do (a token in the path or query): never logged.
hook_url="http://127.0.0.1:$(cat "$d/hook.port")/hook?token=url-credential-4f1e"

# --- settings: defaults, the webhook (its secret shown once), a reader cannot set ------------------
expect 0 "$RAMPART" threat show --tenant "$acme" --output json
jq -e '.factor == 5 and .baseline_days == 7 and .window == 3600 and .min_devices == 3 and .floor == 1 and .updated == null' "$d/out" >/dev/null || fail "defaults: $(cat "$d/out")"
expect 0 "$RAMPART" quarantine policy show --tenant "$acme"; out_has "enabled:    no"
expect 1 "$RAMPART" webhook set --tenant "$acme" --url "ftp://127.0.0.1/x"; err_has "http or https URL"
expect 1 "$RAMPART" webhook set --tenant "$acme" --url "$hook_url" --token-file "$d/reader.token"; err_has "admin"
expect 0 "$RAMPART" webhook set --tenant "$acme" --url "$hook_url" --output json
secret=$(jq -r .secret "$d/out"); [ "${#secret}" = 64 ] || fail "no secret: $(cat "$d/out")"
printf '%s' "$secret" >"$d/hook.secret"
expect 0 "$RAMPART" webhook show --tenant "$acme" --output json
jq -e --arg u "$hook_url" '.url == $u and (has("secret") | not) and .pending == 0 and .dropped == 0 and .deliveries == []' "$d/out" >/dev/null || fail "webhook show: $(cat "$d/out")"
expect 0 "$RAMPART" webhook set --tenant "$acme" --url "$hook_url"; out_has "secret:  unchanged"
# A reader sees where alerts go, not the URL's credential (its path and query, a user's password).
expect 0 "$RAMPART" webhook show --tenant "$acme" --output json --token-file "$d/reader.token"
jq -e --arg u "http://127.0.0.1:$(cat "$d/hook.port")/..." '.url == $u' "$d/out" >/dev/null || fail "webhook show, a reader: $(cat "$d/out")"
expect 0 "$RAMPART" quarantine policy set --tenant "$acme" --kinds syscall,attestation_failed --threshold 3 --window 600
out_has "enabled:    yes"; out_has "kinds:      syscall,attestation_failed"
expect 2 "$RAMPART" quarantine policy set --tenant "$acme" --kinds syscall --threshold 0 --window 600
expect 1 "$RAMPART" quarantine policy set --tenant "$acme" --kinds Bad-Kind --threshold 3 --window 600
err_has "a kind is not"

# --- four devices with certificates ---------------------------------------------------------------
for n in 1 2 3 4; do
  expect 0 "$AGENT" provision --state-dir "$d/dev$n" --rot soft; id[$n]=$(tail -n1 "$d/out")
  expect 0 "$RAMPART" device claim --tenant "$acme" "${id[$n]}"
  expect 0 "$AGENT" attest --state-dir "$d/dev$n" --server "$SERVER_URL" --server-ca "$SERVER_CA"
  serial[$n]=$(openssl x509 -in "$d/dev$n/agent/device.crt" -noout -serial | cut -d= -f2)
done

# post N FILE: device N's status report; the status in $status, the answer in $d/body.
post() {
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" \
    --cert "$d/dev$1/agent/device.crt" --key "$d/dev$1/identity.pem" \
    -H 'Content-Type: application/json' --data-binary "@$2" "$SERVER_URL/api/v1/device/status")
}
# events KIND FROM COUNT: a report of COUNT events numbered from FROM.
events() {
  printf '{"events": ['
  for i in $(seq "$2" $(($2 + $3 - 1))); do
    printf '{"seq": %d, "at": 1764300000, "kind": "%s", "app": "sensor", "reason": "ptrace (%d)"}' "$i" "$1" "$i"
    [ "$i" -lt $(($2 + $3 - 1)) ] && printf ,
  done
  printf ']}\n'
}
alerts() { expect 0 "$RAMPART" alert list --tenant "$acme" --output json; }

# --- one device's flood: no alert (fewer than 3 devices), and "file" is not in the policy ---------
events file 0 40 >"$d/flood.json"
post 4 "$d/flood.json"; is_status 200; body_has '.new_events == 40'
alerts; jq -e '.alerts == []' "$d/out" >/dev/null || fail "an alert from one device: $(cat "$d/out")"
# Sent again (its answer lost): nothing new is counted either.
post 4 "$d/flood.json"; is_status 200; body_has '.new_events == 0'
# An event's reason is the device's (it may quote a path an app chose): shown to an operator, its
# escape sequences and newlines are neutralised, never sent to the terminal.
printf '{"events": [{"seq": 500, "at": 1764300000, "kind": "file", "app": "sensor", "reason": "open \\u001b]0;owned\\u0007\\u001b[2J\\nforged line \\u009b"}]}\n' >"$d/escape.json"
post 4 "$d/escape.json"; is_status 200; body_has '.new_events == 1'
expect 0 "$RAMPART" device show --tenant "$acme" "${id[4]}"
out_has "open ?]0;owned??[2J?forged line ??"
! grep -q $'\e' "$d/out" || fail "an escape sequence reached the terminal: $(od -c "$d/out" | grep -m1 033)"
! grep -q '^forged line' "$d/out" || fail "a device forged a line of device show"
# ... and in the forms for people and for YAML readers (YAML escapes it; a table shows '?')
for f in table yaml; do
  expect 0 "$RAMPART" device show --tenant "$acme" "${id[4]}" --output $f
  ! LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$d/out" ||
    fail "a control character reached the terminal in --output $f: $(od -c "$d/out" | grep -m1 033)"
  ! grep -q '^forged line' "$d/out" || fail "a device forged a line of device show --output $f"
done

# --- the storm: three devices, three syscall denials each ----------------------------------------
# The third's own evidence has just failed (a recovery route takes its status): its events count,
# as one device's, and the alert says how many of its devices had failed (review r10 L4).
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug no --require-components no
expect 1 "$AGENT" attest --state-dir "$d/dev3" --server "$SERVER_URL" --server-ca "$SERVER_CA"
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
events syscall 0 3 >"$d/storm.json"
for n in 1 2 3; do post "$n" "$d/storm.json"; is_status 200; body_has '.new_events == 3'; done
alerts
jq -e '.alerts | length == 1' "$d/out" >/dev/null || fail "alerts: $(cat "$d/out")"
jq -e '.alerts[0] | .subject == "kind:syscall" and .kind == "syscall" and .state == "open" and .devices == 3 and .failed_devices == 1 and .count == 9 and .baseline == 1 and .reason == "ptrace (2)"' "$d/out" >/dev/null || fail "the alert: $(cat "$d/out")"
expect 0 "$RAMPART" alert list --tenant "$acme"; out_has "kind:syscall"
grep -Eq "kind:syscall .* 9 +3 +1 +1\.00$" "$d/out" || fail "alert list: $(cat "$d/out")"
http GET /metrics -; is_status 200
grep -q "^rampart_threat_alert_open{tenant=\"$acme\",kind=\"syscall\",alert=\"[0-9]*\"} 9$" "$d/body" || fail "/metrics: $(grep threat "$d/body")"
# Its devices split on /metrics too: two that passed, one that had failed.
grep -q "^rampart_threat_alert_devices{tenant=\"$acme\",kind=\"syscall\",alert=\"[0-9]*\",failed=\"false\"} 2$" "$d/body" || fail "/metrics: $(grep threat "$d/body")"
grep -q "^rampart_threat_alert_devices{tenant=\"$acme\",kind=\"syscall\",alert=\"[0-9]*\",failed=\"true\"} 1$" "$d/body" || fail "/metrics: $(grep threat "$d/body")"
grep -q "^rampart_threat_alerts_total{tenant=\"$acme\"} 1$" "$d/body" || fail "/metrics: total"
# The storm goes on (a fourth device, and its report sent again): the same alert, extended, not
# another; an event counts once however often it is sent (2, not 4: the device stays under the
# policy's threshold of 3).
events syscall 100 2 >"$d/more.json"
post 4 "$d/more.json"; is_status 200; body_has '.new_events == 2'
post 4 "$d/more.json"; is_status 200; body_has '.new_events == 0'
alerts
jq -e '.alerts | length == 1 and .[0].count == 11 and .[0].devices == 4 and .[0].failed_devices == 1 and .[0].signals == 5' "$d/out" >/dev/null || fail "alerts: $(cat "$d/out")"
# At the receiver, signed: the alert, and the three quarantines (the first try was answered 500).
hooked() { [ "$(jq -s "map(select(.type == \"$1\")) | length" "$d/hook.out" 2>/dev/null)" = "$2" ]; }
wait_until 30 hooked alert 1 || fail "the webhook did not get the alert: $(cat "$d/hook.out" 2>/dev/null)"
wait_until 30 hooked quarantine 3 || fail "the webhook did not get 3 quarantines: $(cat "$d/hook.out")"
jq -s -e --arg t "$acme" 'map(select(.type == "alert"))[0] | .tenant == $t and .alert.subject == "kind:syscall" and .alert.devices == 3 and .alert.failed_devices == 1' "$d/hook.out" >/dev/null || fail "the webhook's alert: $(cat "$d/hook.out")"
[ ! -e "$d/hook.out.rejected" ] || fail "the receiver refused a signature: $(cat "$d/hook.out.rejected")"
# Each delivery has its own ID, the same at every try: 4 taken, 4 IDs (the retried one once).
[ "$(sort -u "$d/hook.out.ids" | grep -c '^[0-9a-f]\{32\}$')" = 4 ] || fail "delivery IDs: $(cat "$d/hook.out.ids")"
grep -q "try 1 failed" "$d/srv.log" || fail "the failed first try was not logged"
! grep -q "url-credential" "$d/srv.log" || fail "the webhook's URL (its credential) was logged: $(grep -m1 url-credential "$d/srv.log")"
http GET /metrics -
grep -q '^rampart_threat_webhook_deliveries_total{result="retried"} [1-9]' "$d/body" || fail "no retry counted"
grep -q '^rampart_threat_quarantines_total 3$' "$d/body" || fail "quarantines: $(grep quarantines "$d/body")"
# The receiver does check: a body signed with another secret is refused.
forged='{"type":"alert","tenant":"'"$acme"'"}'
sig=$(printf '%s' "$forged" | openssl dgst -sha256 -hmac "not-the-secret" | sed 's/.*= //')
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Rampart-Signature: sha256=$sig" --data-binary "$forged" "$hook_url")
eq "$code" 401 "a forged webhook at the receiver"

# --- the three are quarantined -------------------------------------------------------------------
expect 0 "$RAMPART" ca crl --tenant "$acme" --out "$d/crl.pem"
openssl crl -in "$d/crl.pem" -noout -text >"$d/crl.txt"
for n in 1 2 3; do
  expect 0 "$RAMPART" device show --tenant "$acme" "${id[$n]}" --output json
  jq -e '.status == "quarantined" and (.quarantine.reason | contains("3 signals of syscall,attestation_failed within 600s")) and (.quarantine.since | type == "string") and .certificate == null' "$d/out" >/dev/null || fail "device $n: $(cat "$d/out")"
  grep -qi "Serial Number: ${serial[$n]}" "$d/crl.txt" || fail "device $n's certificate ${serial[$n]} is not in the CRL"
  expect 1 "$AGENT" attest --state-dir "$d/dev$n" --server "$SERVER_URL" --server-ca "$SERVER_CA"
  err_has "quarantined"
done
expect 0 "$RAMPART" device show --tenant "$acme" "${id[1]}"; out_has "status:            quarantined"
expect 0 "$RAMPART" device attestations --tenant "$acme" "${id[1]}"
jq -e '.attestations[0].reason == "quarantined"' "$d/out" >/dev/null || fail "attestations: $(head -c 600 "$d/out")"
# Its old certificate no longer reports, renews (EST) nor fetches updates, and says why.
events syscall 10 1 >"$d/late.json"
post 1 "$d/late.json"; is_status 403; body_has '.error == "quarantined"'
for path in "/.well-known/est/$acme/simplereenroll" /api/v1/device/targets; do
  method=GET; [ "${path#*simplereenroll}" != "$path" ] && method=POST
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" -X "$method" \
    --cert "$d/dev2/agent/device.crt" --key "$d/dev2/identity.pem" "$SERVER_URL$path")
  is_status 403; body_has '.error == "quarantined"'
done
grep -qi "Serial Number: ${serial[4]}" "$d/crl.txt" && fail "the bystander's certificate is in the CRL"
expect 0 "$RAMPART" device show --tenant "$acme" "${id[4]}" --output json
jq -e '.status == "active" and .quarantine == null' "$d/out" >/dev/null || fail "device 4: $(cat "$d/out")"
expect 0 "$RAMPART" quarantine actions --tenant "$acme" --output json
jq -e '[.actions[] | select(.action == "quarantine" and .actor == "policy")] | length == 3' "$d/out" >/dev/null || fail "actions: $(cat "$d/out")"

# --- proven attestation failures are signals too: the fourth device (2 syscall denials counted)
# is quarantined at its first refusal -----------------------------------------------------------
expect 0 "$RAMPART" tenant policy --tenant "$acme" --require-components yes
for i in 1 2 3; do
  expect 1 "$AGENT" attest --state-dir "$d/dev4" --server "$SERVER_URL" --server-ca "$SERVER_CA"
done
expect 0 "$RAMPART" device show --tenant "$acme" "${id[4]}" --output json
jq -e '.status == "quarantined" and (.quarantine.reason | contains("attestation_failed: no_components"))' "$d/out" >/dev/null || fail "device 4: $(cat "$d/out")"
expect 0 "$RAMPART" tenant policy --tenant "$acme" --require-components no
expect 1 "$AGENT" attest --state-dir "$d/dev4" --server "$SERVER_URL" --server-ca "$SERVER_CA"
err_has "quarantined"

# --- release: a reader cannot; an admin can, recorded; the device attests again ---------------------
expect 1 "$RAMPART" device release --tenant "$acme" "${id[1]}" --token-file "$d/reader.token"; err_has "admin"
# a reason follows the rule a device's reasons follow: no control character (a terminal's escape)
expect 1 "$RAMPART" device release --tenant "$acme" "${id[1]}" --reason $'ok\e[31m\nreleased by token k_admin'
err_has "control character"
expect 0 "$RAMPART" device release --tenant "$acme" "${id[1]}" --reason "reflashed"
out_has "${id[1]} released"
expect 1 "$RAMPART" device release --tenant "$acme" "${id[1]}"; err_has "not quarantined"
expect 0 "$RAMPART" device release --tenant "$acme" "${id[4]}" --output json
jq -e '.released == true' "$d/out" >/dev/null || fail "release: $(cat "$d/out")"
for n in 1 4; do
  expect 0 "$AGENT" attest --state-dir "$d/dev$n" --server "$SERVER_URL" --server-ca "$SERVER_CA"
  expect 0 "$RAMPART" device show --tenant "$acme" "${id[$n]}" --output json
  jq -e '.status == "active" and .quarantine == null and (.certificate | type == "object")' "$d/out" >/dev/null || fail "device $n: $(cat "$d/out")"
done
expect 1 "$AGENT" attest --state-dir "$d/dev2" --server "$SERVER_URL" --server-ca "$SERVER_CA"
err_has "quarantined"
expect 0 "$RAMPART" quarantine actions --tenant "$acme" --output json
jq -e '.actions[0] | .action == "release" and (.actor | startswith("token:")) and .reason == "released by an operator"' "$d/out" >/dev/null || fail "actions: $(cat "$d/out")"
jq -e '[.actions[] | select(.action == "release" and .reason == "reflashed")] | length == 1' "$d/out" >/dev/null || fail "actions: $(cat "$d/out")"
expect 0 "$RAMPART" quarantine policy off --tenant "$acme"; out_has "enabled:    no"

# --- a delivery outlives the service: the receiver down, an alert, kill -9; restarted, the same
# delivery (its ID) arrives once. In between, a service without --webhook-allow-private refuses
# loopback, link-local (the metadata address) and private webhook URLs, and delivers nothing there.
# The receiver is down on its port (it closes every connection unanswered), which it keeps: one
# stopped and started again would bind it again, and another process may have taken it meanwhile.
touch "$d/hook.down"
hook_port=$(cat "$d/hook.port")
expect 0 "$RAMPART" threat set --tenant "$acme" --min-devices 1
events connection 1000 10 >"$d/conn.json"
post 1 "$d/conn.json"; is_status 200; body_has '.new_events == 10'
# waiting N: the webhook's outbox holds N deliveries, the oldest tried at least once.
waiting() {
  http GET "/api/v1/tenants/$acme/webhook" "$ADMIN_TOKEN"
  [ "$status" = 200 ] && jq -e --argjson n "$1" '.pending == $n and ($n == 0 or .deliveries[0].attempts >= 1)' "$d/body" >/dev/null
}
wait_until 30 waiting 1 || fail "no delivery waiting: $(cat "$d/body")"
did=$(jq -r '.deliveries[0].id' "$d/body")
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
RAMPART_SERVER=$server_bin start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL
for url in "$hook_url" "http://localhost:$hook_port/" "http://169.254.169.254/latest/meta-data/" \
  "http://[::ffff:127.0.0.1]:$hook_port/" "http://10.1.2.3/" "http://0.0.0.0:$hook_port/"; do
  expect 1 "$RAMPART" webhook set --tenant "$acme" --url "$url"
  err_has "a loopback, link-local, private or unspecified address: refused"; err_has "--webhook-allow-private"
done
# plain http, even to a public address: refused (https only, but for tests and labs)
expect 1 "$RAMPART" webhook set --tenant "$acme" --url "http://8.8.8.8/hook"
err_has "plain http: refused, use https"; err_has "--webhook-allow-private"
! grep -q "url-credential" "$d/out" "$d/err" 2>/dev/null || fail "the refusal quoted the URL's credential"
expect 0 "$RAMPART" webhook show --tenant "$acme" --output json
jq -e --arg u "$hook_url" --arg id "$did" '.url == $u and .pending == 1 and .deliveries[0].id == $id' "$d/out" >/dev/null || fail "after kill -9: $(cat "$d/out")"
# This service tries it at its start, and refuses the address: nothing leaves, it stays waiting.
refused() { http GET /metrics -; grep -q '^rampart_threat_webhook_deliveries_total{result="refused"} [1-9]' "$d/body"; }
wait_until 30 refused || fail "the loopback delivery was not refused: $(grep webhook "$d/body")"
waiting 1 || fail "the refused delivery is gone: $(cat "$d/body")"
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
# The receiver back, then the service (with the flag): it tries the waiting delivery at its start.
rm "$d/hook.down"
RAMPART_SERVER=$server_bin start_server "$d/srv" --webhook-allow-private
export RAMPART_SERVER=$SERVER_URL
wait_until 30 waiting 0 || fail "the delivery did not arrive: $(cat "$d/body")"
eq "$(grep -c "^$did\$" "$d/hook.out.ids")" 1 "deliveries of $did at the receiver"
hooked alert 2 || fail "the alert after the restart: $(cat "$d/hook.out")"
jq -s -e 'map(select(.type == "alert")) | last | .alert.subject == "kind:connection"' "$d/hook.out" >/dev/null || fail "the delivered alert: $(tail -n1 "$d/hook.out")"
done_ok
