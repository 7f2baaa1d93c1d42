#!/usr/bin/env bash
# End to end: EST re-enrollment (docs/protocol.md, "EST") is limited per device, and takes the
# device's own key however its CSR encodes it (review r8, M5 and L2).
# - a CSR of the device's key with a compressed point: 200, a certificate for that key (it was
#   500 `internal`);
# - one device re-enrolling in a loop on one connection: the first --reenroll-per-hour (6 by
#   default, the bucket's burst) are served, then 429 `rate_limited` with Retry-After (600 s: the
#   time one comes back), counted in rampart_rate_limited_total{limit="reenroll"}; nothing more
#   is signed or recorded for it;
# - another device from the same address is not slowed (per device, not per address);
# - the limited device still renews as the agent does (attestation) and its new certificate is
#   served;
# - a reload (SIGHUP) takes a new limit: 0 lifts it (served at once), 2 an hour asks for 1800 s.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

: >"$d/srv.conf"
start_server "$d/srv" --config "$d/srv.conf"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
# This machine's kernel is not locked down (debug enabled) and the devices measure nothing.
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
for n in a b; do
  expect 0 "$AGENT" provision --state-dir "$d/$n" --rot soft
  "$AGENT" id --state-dir "$d/$n" 2>/dev/null | sed -n 's/^device id: //p' >"$d/$n.id"
  expect 0 "$RAMPART" device claim --tenant "$acme" "$(cat "$d/$n.id")"
  expect 0 "$AGENT" attest --state-dir "$d/$n" --server "$SERVER_URL" --server-ca "$SERVER_CA"
done
a=$(cat "$d/a.id")

# reenroll DEVICE CSR_DER [CURL_ARGS...]: one re-enrollment with DEVICE's current certificate;
# $status, the body in $d/body, the headers in $d/headers.
reenroll() {
  local n=$1 csr=$2
  shift 2
  base64 -w64 "$csr" >"$d/csr.b64"
  status=$(curl -s -o "$d/body" -D "$d/headers" -w '%{http_code}' --cacert "$SERVER_CA" \
    --cert "$d/$n/agent/device.crt" --key "$d/$n/identity.pem" -H 'Content-Type: application/pkcs10' \
    --data-binary "@$d/csr.b64" "$@" "$SERVER_URL/.well-known/est/$acme/simplereenroll")
}
certs_of() { sqlite3 "$d/srv/rampart.db" "select count(*) from certificates where device_id = '$1'"; }
limited() { curl -s --cacert "$SERVER_CA" "$SERVER_URL/metrics" | sed -n 's/^rampart_rate_limited_total{limit="reenroll"} //p'; }
for n in a b; do
  openssl req -new -key "$d/$n/identity.pem" -subj "/CN=$(cat "$d/$n.id")" -outform DER -out "$d/$n.csr" 2>/dev/null ||
    fail "a CSR for $n"
done

# --- L2: the device's own key, its point compressed ---------------------------------------------
openssl ec -in "$d/a/identity.pem" -conv_form compressed -out "$d/a-compressed.pem" 2>/dev/null ||
  fail "the compressed key"
openssl req -new -key "$d/a-compressed.pem" -subj "/CN=$a" -outform DER -out "$d/a-compressed.csr" 2>/dev/null ||
  fail "the compressed CSR"
openssl req -in "$d/a-compressed.csr" -inform DER -noout -text | grep -A1 'pub:' | tail -1 | grep -Eq '^ *0[23]:' ||
  fail "the CSR's point is not compressed: $(openssl req -in "$d/a-compressed.csr" -inform DER -noout -text | grep -A1 'pub:')"
reenroll a "$d/a-compressed.csr"; is_status 200
base64 -d "$d/body" | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -pubkey >"$d/issued.pub"
openssl pkey -in "$d/a/identity.pem" -pubout >"$d/a.pub"
cmp -s "$d/issued.pub" "$d/a.pub" || fail "the certificate for the compressed CSR is not for a's key"
openssl x509 -in "$d/a/agent/device.crt" -noout -pubkey | cmp -s - "$d/issued.pub" ||
  fail "the certificate is not for the key as a's certificate encodes it"

# --- M5: one device, one connection, re-enrolling in a loop -------------------------------------
# a spent one of its 6 above; 20 more on one kept-alive connection: 5 served, then refused.
before=$(certs_of "$a")
args=()
for i in $(seq 1 20); do args+=(-o /dev/null "$SERVER_URL/.well-known/est/$acme/simplereenroll"); done
base64 -w64 "$d/a.csr" >"$d/csr.b64"
curl -s -w '%{http_code}\n' --cacert "$SERVER_CA" --cert "$d/a/agent/device.crt" --key "$d/a/identity.pem" \
  -H 'Content-Type: application/pkcs10' --data-binary "@$d/csr.b64" "${args[@]}" >"$d/loop" || true
eq "$(uniq -c "$d/loop" | awk '{printf "%s×%s ", $1, $2}')" "5×200 15×429 " "the loop's answers"
eq "$(certs_of "$a")" $((before + 5)) "a's certificates after the loop"
eq "$(limited)" 15 "rampart_rate_limited_total{limit=\"reenroll\"}"
reenroll a "$d/a.csr"; is_status 429
body_has '.error == "rate_limited"'
eq "$(retry_after)" 600 "Retry-After"
eq "$(certs_of "$a")" $((before + 5)) "a's certificates after a refusal"

# Another device, from the same address: its own budget.
reenroll b "$d/b.csr"; is_status 200

# The agent's renewal (attestation) is not EST's budget: it passes, and its certificate serves.
expect 0 "$AGENT" attest --state-dir "$d/a" --server "$SERVER_URL" --server-ca "$SERVER_CA"
status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" --cert "$d/a/agent/device.crt" \
  --key "$d/a/identity.pem" "$SERVER_URL/api/v1/device/roots")
is_status 200
reenroll a "$d/a.csr"; is_status 429   # a new certificate is the same device

# --- a reload takes a new limit: 0 lifts it, 2 an hour asks for 1800 s -----------------------------
printf 'reenroll-per-hour = 0\n' >"$d/srv.conf"
kill -HUP "$SERVER_PID"
served() { reenroll a "$d/a.csr"; [ "$status" = 200 ]; }
wait_until 30 served || fail "no re-enrollment after a reload lifting the limit: $status $(head -c 300 "$d/body")"
printf 'reenroll-per-hour = 2\n' >"$d/srv.conf"
kill -HUP "$SERVER_PID"
refused_1800() { reenroll a "$d/a.csr"; [ "$status" = 429 ] && [ "$(retry_after)" = 1800 ]; }
wait_until 30 refused_1800 || fail "after a reload to 2 an hour: $status, Retry-After $(retry_after)"
done_ok
