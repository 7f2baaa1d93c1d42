#!/usr/bin/env bash
# End to end, the service's side of the device's status report (server/device/status.c): a device posts
# the apps it runs and its security events over mutual TLS with its certificate; the service keeps
# the newest app list and each event once by (device, seq), the newest 1000 with the rest counted;
# `rampart device show` (text and JSON) and GET .../devices/D/events (paged) show them; malformed,
# oversized and unauthenticated reports are refused and change nothing; another tenant sees none;
# a proven failed attestation revokes the certificate (the CRL lists it, EST refuses it; its status,
# reports and update still take it, unless it is blocked or quarantined) until the device passes;
# the agent's daemon on a failing device posts its status after each verdict, and a blocked one
# does not, after its attestations nor after its update checks.
# (The device's side, through a real monitor: e2e.monitor_report.)
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
server_bin=$RAMPART_SERVER

start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant create globex; globex=$(cat "$d/out")
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$RAMPART" token create --tenant "$globex" --role admin; cp "$d/out" "$d/globex.token"
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft; id=$(tail -n1 "$d/out")
expect 0 "$RAMPART" device claim --tenant "$acme" "$id"
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"

# post FILE [--no-cert]: the device's status report (with the certificate $CERT, by default the
# agent's); the status in $status, the answer in body.
post() {
  local cert=(--cert "${CERT:-$d/dev/agent/device.crt}" --key "$d/dev/identity.pem")
  [ "${2:-}" = --no-cert ] && cert=()
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" "${cert[@]}" \
    -H 'Content-Type: application/json' --data-binary "@$1" "$SERVER_URL/api/v1/device/status")
}
shown() { # JQ: a fact of `rampart device show --output json`
  expect 0 "$RAMPART" device show --tenant "$acme" "$id" --output json
  jq -e "$1" "$d/out" >/dev/null || fail "device show: $1: $(head -c 1500 "$d/out")"
}
ev() { printf '{"seq": %s, "at": 1764300000, "kind": "%s", "app": "%s", "reason": "%s"}' "$@"; }

# Before any report: the device shows none.
shown '.report == null'
expect 0 "$RAMPART" device show --tenant "$acme" "$id"; out_has "status report:     never"

# --- a report: two apps, three events ------------------------------------------------------------
cat >"$d/r1.json" <<EOF
{"apps": [{"component": "sensor", "version": "1.0.0+0", "state": "running", "restarts": 2},
          {"component": "relay", "version": "2.1.0+0", "state": "ready", "restarts": 0}],
 "events": [$(ev 0 syscall sensor "ptrace (101)"), $(ev 1 connection sensor "10.0.0.9:80"),
            $(ev 2 oom "" "memory 1024 KB")],
 "events_dropped": 0}
EOF
post "$d/r1.json" --no-cert; [ "$status" = 401 ] || [ "$status" = 403 ] || fail "a report without a certificate: HTTP $status"
shown '.report == null'
post "$d/r1.json"; is_status 200; body_has '.apps == 2 and .events == 3 and .new_events == 3'
shown '.report.apps | length == 2'
shown '.report.apps | map(select(.component == "sensor" and .version == "1.0.0+0" and .state == "running" and .restarts == 2)) | length == 1'
shown '.report.events_kept == 3 and .report.events_dropped.device == 0 and .report.events_dropped.service == 0'
shown '[.report.recent_events[].seq] == [2, 1, 0]'
shown '.report.recent_events[2] | .kind == "syscall" and .app == "sensor" and .reason == "ptrace (101)" and (.at | startswith("2025-11-28T"))'
expect 0 "$RAMPART" device show --tenant "$acme" "$id"
out_has "apps:              relay 2.1.0+0: ready, 0 restart(s)"
out_has "                   sensor 1.0.0+0: running, 2 restart(s)"
out_has "security events:   3 kept, 0 dropped by the device, 0 by the service"
out_has " syscall        sensor           ptrace (101)"
out_has " oom            -                memory 1024 KB"

# --- the same report again (its answer lost): one of each event, nothing new ---------------------
post "$d/r1.json"; is_status 200; body_has '.events == 3 and .new_events == 0'
shown '.report.events_kept == 3'
# A report without apps keeps the list; one with an empty list empties it.
printf '{"events": [%s], "events_dropped": 5}\n' "$(ev 3 file sensor "/etc/shadow")" >"$d/r2.json"
post "$d/r2.json"; is_status 200; body_has '.apps == null and .new_events == 1'
shown '.report.apps | length == 2'
shown '.report.events_kept == 4 and .report.events_dropped.device == 5'
echo '{"apps": []}' >"$d/r3.json"
post "$d/r3.json"; is_status 200
shown '.report.apps == [] and .report.events_kept == 4'
post "$d/r1.json"; is_status 200 # the apps back

# --- refused: each malformed report is a 400 with its reason, and changes nothing ----------------
bad() { # REASON-FRAGMENT JSON
  printf '%s\n' "$2" >"$d/bad.json"
  post "$d/bad.json"; is_status 400
  jq -e --arg m "$1" '.message | contains($m)' "$d/body" >/dev/null || fail "$2: $(head -c 400 "$d/body")"
}
bad "an unknown key" '{"crashes": []}'
bad "an unknown key" '{"events": [], "extra": 1}'
bad '"apps" is not a list' '{"apps": {}}'
bad '"events" is not a list of at most 100' "{\"events\": [$(for i in $(seq 10 110); do ev "$i" syscall a x; [ "$i" -lt 110 ] && printf ,; done)]}"
bad '"events_dropped" is not a count' '{"events_dropped": -1}'
bad "an app is not" '{"apps": [{"component": "../x", "version": "1", "state": "running", "restarts": 0}]}'
bad "an app is not" '{"apps": [{"component": ".hidden", "version": "1", "state": "running", "restarts": 0}]}'
bad "an app is not" '{"apps": [{"component": "a", "version": "1", "state": "Running", "restarts": 0}]}'
bad "an app is not" "{\"apps\": [{\"component\": \"a\", \"version\": \"$(printf '%048d' 0)\", \"state\": \"running\", \"restarts\": 0}]}"
bad "an app is not" '{"apps": [{"component": "a", "version": "1", "state": "running", "restarts": -1}]}'
bad "an app is not" '{"apps": [{"component": "a", "version": "1", "state": "running", "restarts": 0, "pid": 3}]}'
bad "an event is not" "{\"events\": [$(ev -1 syscall a x)]}"
bad "an event is not" "{\"events\": [$(ev 9 Bad-Kind a x)]}"
bad "an event is not" "{\"events\": [$(ev 9 syscall a/b x)]}"
bad "an event is not" "{\"events\": [$(ev 9 syscall a "$(printf '%0256d' 0)")]}"
bad "not valid JSON" '{"events": [{"seq": 9, "at": 1, "kind": "syscall", "app": "a", "reason": "a\u0000b"}]}'
bad "an event is not" '{"events": [{"seq": "9", "at": 1, "kind": "syscall", "app": "a", "reason": "x"}]}'
# A good event beside a bad one: the whole report is refused, the good one not kept.
bad "an event is not" "{\"events\": [$(ev 50 syscall a ok), $(ev 51 syscall a "$(printf '%0256d' 0)")]}"
echo '[1, 2]' >"$d/bad.json"; post "$d/bad.json"; is_status 400
{ printf '{"events": [], "pad": "'; head -c 70000 /dev/zero | tr '\0' x; printf '"}'; } >"$d/big.json"
post "$d/big.json"; is_status 413
shown '.report.events_kept == 4 and (.report.apps | length == 2)'

# --- pages: newest first, ?before= the last one seen -----------------------------------------------
http GET "/api/v1/tenants/$acme/devices/$id/events?limit=3" "$ADMIN_TOKEN"; is_status 200
body_has '[.events[].seq] == [3, 2, 1] and .next_before == 1'
body_has '.events[0] | .kind == "file" and .reason == "/etc/shadow" and (.received | type == "string")'
http GET "/api/v1/tenants/$acme/devices/$id/events?limit=3&before=1" "$ADMIN_TOKEN"; is_status 200
body_has '[.events[].seq] == [0] and .next_before == null'
for q in limit=0 limit=1001 before=0 before=x other=1; do
  http GET "/api/v1/tenants/$acme/devices/$id/events?$q" "$ADMIN_TOKEN"; is_status 400
done
# Another tenant's token sees no such device, nor its events.
http GET "/api/v1/tenants/$acme/devices/$id/events" "$d/globex.token"; is_status 404
http GET "/api/v1/tenants/$globex/devices/$id/events" "$d/globex.token"; is_status 404
http GET "/api/v1/tenants/$globex/devices/$id" "$d/globex.token"; is_status 404

# --- the bound: the newest 1000 kept, the rest counted -----------------------------------------
seq=4
for batch in $(seq 1 11); do
  { printf '{"events": ['
    for i in $(seq 1 100); do ev "$seq" syscall sensor "call $seq"; seq=$((seq + 1)); [ "$i" -lt 100 ] && printf ,; done
    printf ']}'; } >"$d/batch.json"
  post "$d/batch.json"; is_status 200; body_has '.new_events == 100'
done
shown ".report.events_kept == 1000 and .report.events_dropped.service == $((seq - 1000))"
shown ".report.recent_events[0].seq == $((seq - 1)) and (.report.recent_events | length == 10)"
http GET "/api/v1/tenants/$acme/devices/$id/events?limit=1000" "$ADMIN_TOKEN"; is_status 200
body_has ".events | length == 1000 and .[999].seq == $((seq - 1000))"
# Events dropped by the service, sent again: not taken again, not counted twice.
post "$d/r1.json"; is_status 200; body_has '.new_events == 0'
shown ".report.events_kept == 1000 and .report.events_dropped.service == $((seq - 1000))"

# --- the agent's own report (single-process mode: no monitor, so no app list) -------------------
expect 0 "$AGENT" events --state-dir "$d/dev"; out_lines 0
expect 1 "$AGENT" check-now --state-dir "$d/dev" # no update root: the check refuses; the report goes
err_has "status report: 0 event(s) taken by the service"
shown '.report.apps | length == 2'

# --- a proven failed attestation takes the device's certificate (docs/protocol.md "Verdicts") ---
# Its own fresh evidence now fails appraisal (the policy refuses debug): its certificate is revoked
# with the verdict, the tenant's CRL lists it, EST refuses it and says why, but its recovery routes
# (status, reports, update) still take it; it has a certificate again, and the whole device API
# back, when it next passes.
cp "$d/dev/agent/device.crt" "$d/old.crt"
old=$(openssl x509 -in "$d/old.crt" -noout -serial | cut -d= -f2)
crl_has() { # SERIAL: whether the tenant's CRL lists it
  "$RAMPART" ca crl --tenant "$acme" --out "$d/crl.pem" >/dev/null || fail "no CRL"
  openssl crl -in "$d/crl.pem" -noout -text | grep -qi "Serial Number: $1"
}
crl_has "$old" && fail "the certificate is revoked already"
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug no --require-components no
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
jq -e '.passed == false and .reason == "debug_enabled"' "$d/dev/agent/attestation.json" >/dev/null ||
  fail "not refused for debug: $(cat "$d/dev/agent/attestation.json")"
crl_has "$old" || fail "the CRL does not list the failed device's certificate"
# ... but its recovery routes stay open to the certificate the failure revoked: it still says why
# (its status, its failure reports) and fetches its update (roots, targets); what grants trust
# does not: EST re-enrollment refuses it, and says why.
old_dev() { # METHOD PATH [CURL_ARGS...]: the device API with the revoked certificate
  local m=$1 p=$2
  shift 2
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" --cert "$d/old.crt" \
    --key "$d/dev/identity.pem" -X "$m" "$@" "$SERVER_URL$p")
}
recovers() { # the recovery routes answer the revoked certificate
  CERT=$d/old.crt post "$d/r1.json"; is_status 200; body_has '.apps == 2'
  old_dev POST /api/v1/device/reports -H 'Content-Type: application/json' --data-binary '{"reports": []}'
  is_status 200; body_has '.stored == 0'
  old_dev GET /api/v1/device/targets; is_status 200
  old_dev GET "/api/v1/device/roots?after=0"; is_status 200
}
recovers
# The same a day later, its certificate ended (offline for a day: review r10 M2): the recovery
# routes still take it, for a week after its end; nothing else does.
at_server() { # OFFSET: the service again, its clock at OFFSET ("" for the real one)
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  RAMPART_SERVER=$server_bin SERVER_CLOCK=$1 start_server "$d/srv"
  export RAMPART_SERVER=$SERVER_URL
}
at_server +25h
old_dev GET /api/v1/device/targets; is_status 200
CERT=$d/old.crt post "$d/r1.json"; is_status 200; body_has '.apps == 2'
old_dev POST "/.well-known/est/$acme/simplereenroll" -H 'Content-Type: application/pkcs10' \
  --data-binary "@$d/r1.json"
is_status 401
at_server +200h # ended 7 days and 8 hours ago
old_dev GET /api/v1/device/targets; is_status 401
at_server ""
# What it reports now is marked as sent while its last attestation had failed.
printf '{"reports": [{"seq": 7, "at": 1764300000, "kind": "clock_jump", "component": "", "version": "", "reason": "failed", "code": ""}]}' >"$d/rep.json"
old_dev POST /api/v1/device/reports -H 'Content-Type: application/json' --data-binary "@$d/rep.json"
is_status 200; body_has '.stored == 1'
http GET "/api/v1/tenants/$acme/reports?device=$id" "$ADMIN_TOKEN"; is_status 200
body_has '[.reports[] | select(.seq == 7)] | length == 1 and .[0].device_failed == true'
# A crash it reports counts in its bucket, told apart (review r10 L4; its bucket is checked below,
# once the device has passed again and sent the same crash).
crash() { # SEQ: a crash report of seq SEQ, always the same crash
  printf '{"reports": [{"seq": %d, "at": 1764300000, "kind": "crash", "component": "app", "version": "1.0", "reason": "killed by SIGSEGV", "code": "", "crash": {"signal": 11, "signal_name": "SIGSEGV", "code": 1, "address": "0x0", "uptime_ms": 10, "frames": [{"build_id": "%s", "module": "app", "offset": "0x10"}], "stderr": ""}}], "dropped": 0}' "$1" "$(printf 'ab%.0s' $(seq 20))"
}
crash 9 >"$d/crash9.json"
old_dev POST /api/v1/device/reports -H 'Content-Type: application/json' --data-binary "@$d/crash9.json"
is_status 200; body_has '.stored == 1'
openssl req -new -key "$d/dev/identity.pem" -subj "/CN=$id" -outform DER | base64 -w64 >"$d/csr.b64"
old_dev POST "/.well-known/est/$acme/simplereenroll" -H 'Content-Type: application/pkcs10' \
  --data-binary "@$d/csr.b64"
is_status 403; body_has '.error == "attestation_failed" and (.message | contains("debug_enabled"))'
crl_has "$old" || fail "the CRL no longer lists the failed device's certificate"
# A blocked device, and a quarantined one, get nothing; released, the failed one recovers again.
expect 0 "$RAMPART" device block --tenant "$acme" "$id"
CERT=$d/old.crt post "$d/r1.json"; is_status 403; body_has '.error == "forbidden"' # revoked
old_dev GET /api/v1/device/targets; is_status 403; body_has '.error == "forbidden"'
expect 0 "$RAMPART" device unblock --tenant "$acme" "$id"
recovers
expect 0 "$RAMPART" quarantine policy set --tenant "$acme" --kinds attestation_failed --threshold 1 --window 600
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
shown '.status == "quarantined"'
CERT=$d/old.crt post "$d/r1.json"; is_status 403; body_has '.error == "quarantined"'
old_dev GET /api/v1/device/targets; is_status 403; body_has '.error == "quarantined"'
old_dev POST /api/v1/device/reports -H 'Content-Type: application/json' --data-binary '{"reports": []}'
is_status 403; body_has '.error == "quarantined"'
expect 0 "$RAMPART" device release --tenant "$acme" "$id" --reason "reflashed"
recovers
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
new=$(openssl x509 -in "$d/dev/agent/device.crt" -noout -serial | cut -d= -f2)
[ "$new" != "$old" ] || fail "no new certificate"
post "$d/r1.json"; is_status 200
CERT=$d/old.crt post "$d/r1.json"; is_status 403; body_has '.error == "forbidden"'
sed 's/"seq": 7/"seq": 8/' "$d/rep.json" >"$d/rep8.json"
new_reports() { # FILE: a batch of reports with the device's new certificate
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" --cert "$d/dev/agent/device.crt" \
    --key "$d/dev/identity.pem" -H 'Content-Type: application/json' --data-binary "@$1" \
    "$SERVER_URL/api/v1/device/reports")
}
new_reports "$d/rep8.json"; is_status 200; body_has '.stored == 1'
http GET "/api/v1/tenants/$acme/reports?device=$id" "$ADMIN_TOKEN"; is_status 200
body_has '[.reports[] | select(.seq == 8)] | length == 1 and .[0].device_failed == false'
crash 10 >"$d/crash10.json"
new_reports "$d/crash10.json"; is_status 200; body_has '.stored == 1'
http GET "/api/v1/tenants/$acme/failures" "$ADMIN_TOKEN"; is_status 200
body_has '.buckets | length == 1 and .[0].count == 2 and .[0].device_failed == 1'
bucket=$(jq -r '.buckets[0].id' "$d/body")
# Each sample marked as it was sent (9 while failed, 10 after it passed), not as the device is now.
body_has '.buckets[0].sample | .seq == 9 and .device_failed == true'
http GET "/api/v1/tenants/$acme/failures/$bucket" "$ADMIN_TOKEN"; is_status 200
body_has '[.samples[] | [.seq, .device_failed]] == [[9, true], [10, false]]'
expect 0 "$RAMPART" failure show --tenant "$acme" "$bucket"
out_has "count:         2 (1 from failed devices)"
grep -q "^  device $id seq 9 at .*, from a failed device$" "$d/out" || fail "failure show: $(cat "$d/out")"
grep -q "^  device $id seq 10 at .*, version 1.0$" "$d/out" || fail "failure show: $(cat "$d/out")"
expect 0 "$RAMPART" failure list --tenant "$acme"
out_has "  sample: device $id seq 9, from a failed device"
# The other order (review r10 L3): blocked (its certificate revoked for the block), unblocked, and
# only then its attestation fails: it recovers as one that failed first; blocked again, nothing.
expect 0 "$RAMPART" quarantine policy off --tenant "$acme"
cp "$d/dev/agent/device.crt" "$d/old.crt"
expect 0 "$RAMPART" device block --tenant "$acme" "$id"
expect 0 "$RAMPART" device unblock --tenant "$acme" "$id"
old_dev GET /api/v1/device/targets; is_status 403; body_has '.error == "forbidden"'
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug no --require-components no
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
recovers
expect 0 "$RAMPART" device block --tenant "$acme" "$id"
old_dev GET /api/v1/device/targets; is_status 403; body_has '.error == "forbidden"'
expect 0 "$RAMPART" device unblock --tenant "$acme" "$id"
recovers
# The same released from a quarantine another signal set (a security event), then failed.
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
cp "$d/dev/agent/device.crt" "$d/old.crt"
expect 0 "$RAMPART" quarantine policy set --tenant "$acme" --kinds syscall --threshold 1 --window 600
printf '{"events": [%s]}' "$(ev 5000 syscall a denied)" >"$d/q.json"
post "$d/q.json"; is_status 200
shown '.status == "quarantined"'
expect 0 "$RAMPART" quarantine policy off --tenant "$acme"
expect 0 "$RAMPART" device release --tenant "$acme" "$id" --reason "checked"
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug no --require-components no
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
recovers

# --- the agent's daemon on a device that fails: its status still goes, after each verdict --------
# (device/agent/daemon.c) A device that passed once, then fails appraisal under `rampart-agent
# run`: each refused attestation is followed by its status report, on the recovery route, with the
# certificate the failure revoked, so the operator sees a status newer than the failure beside it;
# the failure is not taken as a pass (no new certificate) and attestation is tried again on the
# backoff's schedule (a second refusal, a second report).
expect 0 "$RAMPART" quarantine policy off --tenant "$acme" # (a failure alone, not a quarantine)
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$AGENT" provision --state-dir "$d/dev2" --rot soft; id2=$(tail -n1 "$d/out")
expect 0 "$RAMPART" device claim --tenant "$acme" "$id2"
expect 0 "$AGENT" attest --state-dir "$d/dev2" --server "$SERVER_URL" --server-ca "$SERVER_CA"
serial2=$(openssl x509 -in "$d/dev2/agent/device.crt" -noout -serial)
expect 0 "$RAMPART" device show --tenant "$acme" "$id2" --output json
jq -e '.report == null' "$d/out" >/dev/null || fail "a status before the daemon: $(cat "$d/out")"
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug no --require-components no
# dev2's daemon (more options: "$@"), its log in run.log; stopped with SIGTERM, it must exit 0
run_dev2() {
  "$AGENT" run --state-dir "$d/dev2" --server "$SERVER_URL" --server-ca "$SERVER_CA" \
    --start-jitter 0 "$@" >"$d/run.log" 2>&1 &
  run=$!
  E2E_PIDS+=("$run")
}
stop_dev2() {
  kill -TERM "$run"
  rc=0; wait "$run" || rc=$?
  [ "$rc" = 0 ] || fail "run exited $rc: $(cat "$d/run.log")"
}
run_dev2
reported_twice() {
  [ "$(grep -c 'attestation refused (HTTP 403): debug_enabled' "$d/run.log")" -ge 2 ] &&
    [ "$(grep -c 'status report: 0 event(s) taken by the service' "$d/run.log")" -ge 2 ]
}
wait_until 60 reported_twice || fail "run on a failed device: $(cat "$d/run.log")"
grep -q "attested:" "$d/run.log" && fail "run took the failure for a pass: $(cat "$d/run.log")"
eq "$(openssl x509 -in "$d/dev2/agent/device.crt" -noout -serial)" "$serial2" "the certificate kept"
expect 0 "$RAMPART" device show --tenant "$acme" "$id2" --output json
jq -e '.last_attestation.result == "fail" and .report != null and .report.reported_at >= .last_attestation.at' \
  "$d/out" >/dev/null || fail "the operator's view of the failed device: $(cat "$d/out")"
expect 0 "$RAMPART" device show --tenant "$acme" "$id2"
out_has "failed: debug_enabled"
! grep -q "status report:     never" "$d/out" || fail "no status shown: $(cat "$d/out")"
stop_dev2
# Blocked, the same device's run posts no status after its refusals (review r11 L5), nor its status
# and reports after its update checks (review r12 L3: it has an update root here, and checks every
# second): the service refuses a blocked device's every route, so each post would be one more
# refused request. The agent logs each status post, taken or not; the service counts each 4xx.
root_for_tenant "$d/root.json"
expect 0 "$AGENT" trust --state-dir "$d/dev2" --update-root "$d/root.json"
expect 0 "$RAMPART" device block --tenant "$acme" "$id2"
http GET /metrics -; is_status 200
refused_before=$(sed -n 's/^rampart_http_requests_total{code="4xx"} //p' "$d/body")
run_dev2 --update-interval 1
refused_twice() {
  [ "$(grep -c 'attestation refused (HTTP 403): blocked' "$d/run.log")" -ge 2 ] &&
    [ "$(grep -c 'update check: ' "$d/run.log")" -ge 3 ]
}
wait_until 60 refused_twice || fail "run on a blocked device: $(cat "$d/run.log")"
stop_dev2
! grep -q 'status report' "$d/run.log" || fail "a blocked device posted its status: $(cat "$d/run.log")"
http GET /metrics -; is_status 200
refused=$(($(sed -n 's/^rampart_http_requests_total{code="4xx"} //p' "$d/body") - refused_before))
cycles=$(grep -c 'attestation refused (HTTP 403): blocked' "$d/run.log")
checks=$(grep -c 'update check: ' "$d/run.log")
# Two refused requests an attestation (itself and its reports), not three (with the status); one an
# update check (itself), not three (with the status and the reports).
[ "$refused" -le $((2 * cycles + checks)) ] ||
  fail "blocked: $refused requests refused in $cycles attestations and $checks update checks: $(cat "$d/run.log")"
done_ok
