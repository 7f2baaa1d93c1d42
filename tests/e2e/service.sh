#!/usr/bin/env bash
# End to end: a real rampart-server on loopback, real agents (soft and TPM through swtpm), the
# operator CLI. Attestation passes and every way it must fail; tenant isolation; tokens and roles;
# bad requests; certificates checked with the openssl command; EST; the agent's daemon.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

server_bin=$RAMPART_SERVER
client=$(dirname "$0")/conn-client.py
start_server "$d/srv"
start_swtpm "$d/tpm"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN


# --- the service is up, and says so ----------------------------------------------------------
http GET /healthz -; is_status 200; body_has '.status == "ok"'
eq "$(stat -c %a "$ADMIN_TOKEN")" 600 "admin token mode"
eq "$(stat -c %a "$d/srv/master.key")" 600 "master key mode"
http GET /metrics -; is_status 200
grep -q '^rampart_certificates_issued_total 0$' "$d/body" || fail "metrics"

# --- tenants and tokens ----------------------------------------------------------------------
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant create globex; globex=$(cat "$d/out")
expect 1 "$RAMPART" tenant create acme; err_has "a tenant with that name exists"
expect 0 "$RAMPART" tenant list --output json
jq -e '.tenants | map(.name) | sort == ["acme","globex"]' "$d/out" >/dev/null || fail "tenant list"
for spec in acme:admin acme:reader acme:contributor globex:admin; do
  t=${spec%%:*} role=${spec##*:} tid=$acme
  [ "$t" = globex ] && tid=$globex
  expect 0 "$RAMPART" token create --tenant "$tid" --role "$role"
  grep -q '^rpt_[0-9a-f]\{64\}$' "$d/out" || fail "token format"
  cp "$d/out" "$d/$t-$role.token"
done
expect 2 "$RAMPART" token create --tenant "$acme"
expect 1 "$RAMPART" token create --tenant "$acme" --role system; err_has "must be admin, contributor or reader"
# a tenant token sees only its tenant, and cannot make a more powerful token
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 0 "$RAMPART" tenant list --output json
jq -e '.tenants | map(.name) == ["acme"]' "$d/out" >/dev/null || fail "scoped tenant list"
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 1 "$RAMPART" tenant create evil
err_has "only a system token creates tenants"
RAMPART_TOKEN_FILE=$d/acme-reader.token expect 1 "$RAMPART" token create --tenant "$acme" --role admin
err_has "needs the admin role"
# tokens are stored hashed: no secret in the database
for f in "$d"/*.token; do
  ! grep -qa "$(cat "$f")" "$d/srv/rampart.db" || fail "a token is stored in the clear"
done

# --- devices: provision, claim ----------------------------------------------------------------
for dev in a b c; do expect 0 "$AGENT" provision --state-dir "$d/$dev" --rot soft; done
a=$("$AGENT" id --state-dir "$d/a" 2>/dev/null | sed -n 's/^device id: //p')
b=$("$AGENT" id --state-dir "$d/b" 2>/dev/null | sed -n 's/^device id: //p')
c=$("$AGENT" id --state-dir "$d/c" 2>/dev/null | sed -n 's/^device id: //p')
expect 0 "$AGENT" provision --state-dir "$d/t" --rot tpm2 --tcti "$TCTI"
t=$(cat "$d/out")
[[ $t =~ ^[0-9a-f]{64}$ ]] || fail "tpm device id '$t'"
# the ID is the hash of the public key
eq "$("$AGENT" id --state-dir "$d/t" 2>/dev/null | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)" "$t" "device ID of the TPM key"
# provisioning again keeps the identity
expect 0 "$AGENT" provision --state-dir "$d/t" --rot tpm2 --tcti "$TCTI"; eq "$(cat "$d/out")" "$t" "kept identity"
grep -q 'TSS2 PRIVATE KEY' "$d/t/identity.tss2" || fail "no TPM key blob"

attest() { "$AGENT" attest --state-dir "$d/$1" --server "$SERVER_URL" --server-ca "$SERVER_CA"; }

# an unclaimed device gets nothing
expect 1 attest a; err_has "unclaimed"
[ ! -e "$d/a/device.crt" ] || fail "an unclaimed device got a certificate"

RAMPART_TOKEN_FILE=$d/acme-reader.token expect 1 "$RAMPART" device claim --tenant "$acme" "$a"
err_has "needs the contributor role"
RAMPART_TOKEN_FILE=$d/acme-contributor.token expect 0 "$RAMPART" device claim --tenant "$acme" "$a" "$b" "$t"
RAMPART_TOKEN_FILE=$d/globex-admin.token expect 0 "$RAMPART" device claim --tenant "$globex" "$c"
# a device belongs to one tenant
RAMPART_TOKEN_FILE=$d/globex-admin.token expect 1 "$RAMPART" device claim --tenant "$globex" "$a"
err_has "another tenant"
expect 2 "$RAMPART" device claim --tenant "$acme"
expect 1 "$RAMPART" device claim --tenant "$acme" not-a-device-id; err_has "64 lowercase hex"

# --- attestation passes: soft and TPM ------------------------------------------------------------
expect 0 "$RAMPART" ca download --tenant "$acme" --out "$d/acme-ca.pem"
expect 0 "$RAMPART" ca download --tenant "$globex" --out "$d/globex-ca.pem"
for dev in a b t c; do
  expect 0 attest $dev; out_has "attested: device"
  ca=$d/acme-ca.pem; [ $dev = c ] && ca=$d/globex-ca.pem
  openssl verify -CAfile "$ca" "$d/$dev/device.crt" >/dev/null || fail "$dev: openssl verify"
  cmp -s "$ca" "$d/$dev/ca-chain.pem" || fail "$dev: ca-chain.pem is not the tenant CA"
  nb=$(date -d "$(openssl x509 -in "$d/$dev/device.crt" -noout -startdate | cut -d= -f2)" +%s)
  na=$(date -d "$(openssl x509 -in "$d/$dev/device.crt" -noout -enddate | cut -d= -f2)" +%s)
  eq $((na - nb)) 86400 "$dev: certificate lifetime"
  id_var=$dev; [ $dev = t ] && id_var=t
  eq "$(openssl x509 -in "$d/$dev/device.crt" -noout -subject -nameopt RFC2253)" "subject=CN=${!id_var}" "$dev: subject"
  openssl x509 -in "$d/$dev/device.crt" -noout -ext extendedKeyUsage | grep -q 'Client Authentication, TLS Web Server Authentication' ||
    fail "$dev: extended key usage"
done
# the tenant CA: ECDSA P-256, two years, a CA
openssl x509 -in "$d/acme-ca.pem" -noout -text | grep -q 'ASN1 OID: prime256v1' || fail "CA key type"
openssl x509 -in "$d/acme-ca.pem" -noout -text | grep -q 'CA:TRUE' || fail "CA basic constraints"
! openssl verify -CAfile "$d/globex-ca.pem" "$d/a/device.crt" >/dev/null 2>&1 || fail "acme's device verifies under globex"
# the CA keys are encrypted at rest
eq "$(sqlite3 "$d/srv/rampart.db" 'select count(*) from cas')" 2 "tenant CAs"
eq "$(sqlite3 "$d/srv/rampart.db" "select count(*) from cas where key_pem like '-----BEGIN ENCRYPTED PRIVATE KEY-----%'")" 2 \
  "encrypted CA keys"

expect 0 "$RAMPART" device show --tenant "$acme" "$t" --output json
jq -e --arg t "$t" '.device_id == $t and .status == "active" and .last_attestation.result == "pass"
  and .certificate.not_after != null' "$d/out" >/dev/null || fail "device show: $(cat "$d/out")"
expect 0 "$RAMPART" device show --tenant "$acme" "$t"; out_has "last attestation:"; out_has "pass"
expect 0 "$RAMPART" device list --tenant "$acme" --output json
jq -e '.devices | length == 3' "$d/out" >/dev/null || fail "device list"
expect 0 "$RAMPART" device attestations --tenant "$acme" "$t"
jq -e '.attestations[0].result == "pass" and .attestations[0].claims.boot_count >= 1' "$d/out" >/dev/null ||
  fail "attestation history"

# --- attestations that must fail, each recorded with its reason ------------------------------------
# make_request DEV NONCE_DEV [KEY_DEV]: evidence by DEV for a nonce issued to NONCE_DEV, presented
# with the public key of KEY_DEV (default DEV), as $d/req.json
make_request() {
  local dev=$1 ndev=$2 cdev=${3:-$1} nid
  nid=$("$AGENT" id --state-dir "$d/$ndev" 2>/dev/null | sed -n 's/^device id: //p')
  printf '{"device_id":"%s"}' "$nid" >"$d/nreq.json"
  http POST /api/v1/attest/nonce - "$d/nreq.json"; is_status 200
  nonce=$(jq -r .nonce "$d/body")
  "$AGENT" evidence --state-dir "$d/$dev" --nonce "$nonce" --out "$d/ev.cbor" >/dev/null 2>&1 || fail "evidence"
  openssl pkey -in "$d/$cdev/identity.pem" -pubout -outform DER 2>/dev/null | base64 -w0 >"$d/key.b64"
  jq -n --arg ev "$(base64 -w0 "$d/ev.cbor")" --arg key "$(cat "$d/key.b64")" \
    '{evidence: $ev, public_key: $key}' >"$d/req.json"
}
last_reason() {
  RAMPART_TOKEN_FILE=$ADMIN_TOKEN "$RAMPART" device attestations --tenant "$acme" "$1" >"$d/hist"
  jq -r '.attestations[0].reason' "$d/hist"
}
refused_with() {
  http POST /api/v1/attest - "$d/req.json"; is_status 403
  body_has ".reason == \"$1\""
  [ -z "${2:-}" ] || eq "$(last_reason "$2")" "$1" "recorded reason"
}

make_request a a; http POST /api/v1/attest - "$d/req.json"; is_status 200
body_has '.result == "pass" and (.certificate | startswith("-----BEGIN CERTIFICATE"))'
refused_with nonce_replayed "$a"                 # the same request again
# An expired nonce: issued by a replica of the service (same data directory, so the same nonce
# key) whose nonces live 1 s, presented to the service once that second has passed - waiting here
# is for that state, and a slow machine only waits longer. (The service's own nonces live 60 s:
# no step of this test comes near that, however loaded the machine.)
"$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0 --port-file "$d/short.port" \
  --nonce-lifetime 1 >"$d/short.log" 2>&1 &
short=$!
E2E_PIDS+=("$short")
wait_until 60 test -s "$d/short.port" || fail "the replica did not start: $(cat "$d/short.log")"
SERVER_URL=https://127.0.0.1:$(cat "$d/short.port") make_request a a
sleep 3 # 1 s of life, rounded up to whole seconds, and one more
refused_with nonce_expired "$a"
kill "$short"; wait "$short" 2>/dev/null || true
make_request a b; refused_with nonce_wrong_device "$a"
make_request b a a; refused_with bad_signature "$a"   # evidence by b, presented with a's key
make_request a a; jq '.evidence |= (.[0:40] + (if .[40:41] == "A" then "B" else "A" end) + .[41:])' \
  "$d/req.json" >"$d/t.json" && mv "$d/t.json" "$d/req.json"
http POST /api/v1/attest - "$d/req.json"; is_status 403
body_has '.reason == "bad_signature" or .reason == "malformed_evidence"'
jq -n --arg key "$(cat "$d/key.b64")" '{evidence: "bm90IGNib3I=", public_key: $key}' >"$d/req.json"
refused_with malformed_evidence "$a"              # base64 of "not cbor"
unknown=$(openssl rand -hex 32)
# a nonce the service never issued: evidence made for a random nonce
"$AGENT" evidence --state-dir "$d/a" --nonce "$unknown" --out "$d/ev.cbor" >/dev/null 2>&1
jq -n --arg ev "$(base64 -w0 "$d/ev.cbor")" --arg key "$(cat "$d/key.b64")" '{evidence: $ev, public_key: $key}' >"$d/req.json"
refused_with nonce_unknown "$a"

# bad requests: 400 with a reason, 413 when too large
printf '{"evidence": "x", "public_key": "not a key"}' >"$d/bad.json"
http POST /api/v1/attest - "$d/bad.json"; is_status 400; body_has '.error == "malformed_evidence" or .error == "malformed_public_key"'
# keys that are not canonical P-256: an Ed25519 key, and a P-256 key with a compressed point
openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout -outform DER | base64 -w0 >"$d/ed.b64"
openssl pkey -in "$d/a/identity.pem" -pubout -outform DER -ec_conv_form compressed 2>/dev/null | base64 -w0 >"$d/comp.b64"
for k in ed comp; do
  jq -n --arg ev "$(base64 -w0 "$d/ev.cbor")" --arg key "$(cat "$d/$k.b64")" '{evidence: $ev, public_key: $key}' >"$d/bad.json"
  http POST /api/v1/attest - "$d/bad.json"; is_status 400; body_has '.error == "malformed_public_key"'
done
printf '{"evidence": "AAAA"}' >"$d/bad.json"
http POST /api/v1/attest - "$d/bad.json"; is_status 400; body_has '.error == "invalid"'
printf '{"evidence": ' >"$d/bad.json"
http POST /api/v1/attest - "$d/bad.json"; is_status 400; body_has '.error == "malformed_json"'
printf '[1,2,3]' >"$d/bad.json"
http POST /api/v1/attest - "$d/bad.json"; is_status 400
printf '{"device_id": "nope"}' >"$d/bad.json"
http POST /api/v1/attest/nonce - "$d/bad.json"; is_status 400
head -c 70000 /dev/zero | tr '\0' 'a' | sed 's/^/{"x":"/; s/$/"}/' >"$d/big.json"
http POST /api/v1/attest - "$d/big.json"; is_status 413
http GET /api/v1/attest -; is_status 405

# --- tokens and tenant isolation ---------------------------------------------------------------
http GET "/api/v1/tenants/$acme/devices" -; is_status 401; body_has '.error == "unauthorized"'
printf 'rpt_%064d' 0 >"$d/wrong.token"
http GET "/api/v1/tenants/$acme/devices" "$d/wrong.token"; is_status 401
http GET "/api/v1/tenants/$acme/devices" "$d/globex-admin.token"; is_status 404
[ "$(jq 'has("devices")' "$d/body")" = false ] || fail "another tenant's token got data"
http GET "/api/v1/tenants/$acme/devices/$a" "$d/globex-admin.token"; is_status 404
http GET "/api/v1/tenants/$globex/devices/$a" "$d/globex-admin.token"; is_status 404
http POST "/api/v1/tenants/$acme/devices/$a/block" "$d/globex-admin.token"; is_status 404
http POST "/api/v1/tenants/$globex/devices/$a/block" "$d/globex-admin.token"; is_status 404
http POST "/api/v1/tenants/$acme/devices/$a/block" "$d/acme-reader.token"; is_status 403
http GET "/api/v1/tenants/$acme/ca" "$d/globex-admin.token"; is_status 404
expect 0 "$RAMPART" device show --tenant "$acme" "$a" --output json
jq -e '.status == "active"' "$d/out" >/dev/null || fail "a device was blocked by someone without the right"

# --- blocking: no more certificates, and the CRL lists the current one --------------------------
serial=$(openssl x509 -in "$d/a/device.crt" -noout -serial | cut -d= -f2)
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 0 "$RAMPART" device block --tenant "$acme" "$a"
expect 1 attest a; err_has "blocked"
eq "$(last_reason "$a")" blocked "recorded reason"
expect 0 "$RAMPART" device show --tenant "$acme" "$a" --output json
jq -e '.status == "blocked" and .certificate == null and .last_attestation.reason == "blocked"' "$d/out" >/dev/null ||
  fail "blocked device: $(cat "$d/out")"
expect 0 "$RAMPART" ca crl --tenant "$acme" --out "$d/crl.pem"
openssl crl -in "$d/crl.pem" -noout -text | grep -qi "Serial Number: $serial" || fail "the CRL lacks the blocked device's certificate"
openssl crl -in "$d/crl.pem" -CAfile "$d/acme-ca.pem" -noout 2>&1 | grep -q 'verify OK' || fail "CRL signature"
cat "$d/acme-ca.pem" "$d/crl.pem" >"$d/ca+crl.pem"
! openssl verify -crl_check -CAfile "$d/ca+crl.pem" "$d/a/device.crt" >/dev/null 2>&1 || fail "revoked certificate verifies"
openssl verify -crl_check -CAfile "$d/ca+crl.pem" "$d/b/device.crt" >/dev/null || fail "b's certificate should verify"
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 0 "$RAMPART" device unblock --tenant "$acme" "$a"
expect 0 attest a

# --- EST (RFC 7030) ----------------------------------------------------------------------------------
curl -sf --cacert "$SERVER_CA" "$SERVER_URL/.well-known/est/$acme/cacerts" | base64 -d >"$d/cacerts.p7" ||
  fail "EST cacerts"
openssl pkcs7 -inform DER -in "$d/cacerts.p7" -print_certs | openssl x509 -noout -fingerprint >"$d/f1"
openssl x509 -in "$d/acme-ca.pem" -noout -fingerprint >"$d/f2"
cmp -s "$d/f1" "$d/f2" || fail "EST cacerts is not the tenant CA"
openssl req -new -key "$d/b/identity.pem" -subj "/CN=$b" -outform DER | base64 -w0 >"$d/csr.b64"
reenroll() {
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" "$@" \
    -H 'Content-Type: application/pkcs10' --data-binary "@$d/csr.b64" \
    "$SERVER_URL/.well-known/est/$acme/simplereenroll")
}
reenroll --cert "$d/b/device.crt" --key "$d/b/identity.pem"; is_status 200
base64 -d "$d/body" | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -subject |
  grep -q "$b" || fail "re-enrolled certificate"
reenroll; is_status 401                                          # no client certificate
reenroll --cert "$d/c/device.crt" --key "$d/c/identity.pem"; is_status 401   # another tenant's
openssl req -new -key "$d/a/identity.pem" -subj "/CN=$b" -outform DER | base64 -w0 >"$d/csr.b64"
reenroll --cert "$d/b/device.crt" --key "$d/b/identity.pem"; is_status 403   # another key

# --- the agent as a daemon: attests at start and renews --------------------------------------------
first=$(openssl x509 -in "$d/t/device.crt" -noout -serial)
"$AGENT" run --state-dir "$d/t" --server "$SERVER_URL" --server-ca "$SERVER_CA" --renew-after 1 \
  >"$d/run.log" 2>&1 &
run_pid=$!
E2E_PIDS+=("$run_pid")
renewed() { [ "$(grep -c '^attested' "$d/run.log")" -ge 2 ]; }
wait_until 60 renewed || fail "the daemon did not renew: $(cat "$d/run.log")"
kill -TERM "$run_pid"; wait "$run_pid" || fail "the daemon did not stop cleanly"
[ "$(openssl x509 -in "$d/t/device.crt" -noout -serial)" != "$first" ] || fail "certificate not renewed"

# --- metrics count what happened ----------------------------------------------------------------------
http GET /metrics -; is_status 200
for reason in pass nonce_replayed nonce_expired nonce_wrong_device bad_signature unclaimed blocked malformed_evidence nonce_unknown; do
  grep -Eq "^rampart_attestations_total\{result=\"(pass|fail)\",reason=\"$reason\"\} [1-9]" "$d/body" ||
    fail "metrics: no $reason"
done
grep -Eq '^rampart_certificates_issued_total [1-9]' "$d/body" || fail "metrics: certificates"

# --- the requests anyone may make are limited per address ---------------------------------------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
# A burst of 1, then 1 in 1000 s: no token comes back while the test runs, however slowly.
RAMPART_SERVER=$server_bin start_server "$d/srv" --rate-limit 0.001
printf '{}' >"$d/empty.json"
codes=""
for i in $(seq 1 14); do http POST /api/v1/attest/nonce - "$d/empty.json"; codes="$codes $status"; done
case "$codes" in
  " 400 429 429 429 429 429 429 429 429 429 429 429 429 429") ;;
  *) fail "rate limit: $codes" ;;
esac
body_has '.error == "rate_limited"'
http GET "/api/v1/tenants/$acme/devices" "$d/acme-admin.token"; is_status 200   # operators are not

# --- limits that hold against many addresses -------------------------------------------------------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
RAMPART_SERVER=$server_bin start_server "$d/srv" --rate-limit 0 --unclaimed-rate 0.001 --max-connections 2
# All unclaimed devices share one budget (a burst of 1 here): keys made up by the million cannot
# fill the records. Each attempt below is a different made-up key; what is over the budget is
# answered 429 before any check, and not recorded.
http GET /metrics -; is_status 200
before=$(sed -n 's/^rampart_attestations_total{result="fail",reason="malformed_evidence"} //p' "$d/body")
for i in $(seq 1 14); do
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout -outform DER 2>/dev/null |
    base64 -w0 | jq -R '{evidence: "eA==", public_key: .}' >"$d/made-up.$i.json"
done
codes=""
for i in $(seq 1 14); do http POST /api/v1/attest - "$d/made-up.$i.json"; codes="$codes $status"; done
case "$codes" in
  " 403 429 429 429 429 429 429 429 429 429 429 429 429 429") ;;   # one every 1000 s refills it
  *) fail "the unclaimed devices' budget: $codes" ;;
esac
limited=$(echo "$codes" | tr ' ' '\n' | grep -c 429)
recorded=$(echo "$codes" | tr ' ' '\n' | grep -c 403)
http POST /api/v1/attest - "$d/made-up.1.json"; is_status 429
body_has '.error == "rate_limited"'
grep -q "no tenant has claimed" "$d/body" || fail "429 without its reason: $(cat "$d/body")"
http POST /api/v1/attest/nonce - "$d/empty.json"; is_status 400   # the rest is not limited by it
http GET /metrics -; is_status 200
after=$(sed -n 's/^rampart_attestations_total{result="fail",reason="malformed_evidence"} //p' "$d/body")
eq "$((after - before))" "$recorded" "refusals recorded: the ones within the budget only"
grep -q "^rampart_rate_limited_total{limit=\"unclaimed\"} $((limited + 1))\$" "$d/body" ||
  fail "metrics: unclaimed limit: $(grep rate_limited "$d/body")"
# The agent's daemon, told 429 with Retry-After: 1000 (the time a token takes to come back), waits
# at least that long, not its usual 1-5 s.
"$AGENT" provision --state-dir "$d/stranger" --rot soft >/dev/null 2>&1
http POST /api/v1/attest - "$d/made-up.1.json"; is_status 429   # still spent
"$AGENT" run --state-dir "$d/stranger" --server "$SERVER_URL" --server-ca "$SERVER_CA" \
  >"$d/stranger.log" 2>&1 &
stranger=$!
E2E_PIDS+=("$stranger")
wait_until 60 grep -q "next attestation in" "$d/stranger.log" ||
  fail "the daemon did not plan its next attestation: $(cat "$d/stranger.log")"
kill "$stranger"; wait "$stranger" 2>/dev/null || true
grep -q "HTTP 429" "$d/stranger.log" || fail "the daemon was not limited: $(cat "$d/stranger.log")"
grep -q "no tenant has claimed.*asks to wait 1000 s" "$d/stranger.log" ||
  fail "the daemon lost the service's reason: $(cat "$d/stranger.log")"
waited=$(sed -n 's/.*next attestation in \([0-9]*\) s.*/\1/p' "$d/stranger.log" | head -1)
[ -n "$waited" ] && [ "$waited" -ge 1000 ] && [ "$waited" -le 1501 ] ||
  fail "after Retry-After: 1000 the daemon waits '$waited' s"
E2E_CHECKS=$((E2E_CHECKS + 1))
# Connections: two held open fill the limit. A third is not served: it waits in the kernel's
# backlog while its worker does not accept, or, accepted by the other worker, is refused right after
# its ClientHello. Once a held one has gone, connections are served again. The held ones ask for
# something every second, so that no timeout of the service's can end them.
port=$(cat "$d/srv.port")
for i in 1 2; do
  python3 "$client" hold "$port" "$SERVER_CA" >"$d/held.$i" 2>&1 &
  held[$i]=$!
  E2E_PIDS+=("${held[$i]}")
done
for i in 1 2; do
  wait_until 60 grep -q "^held 200" "$d/held.$i" || fail "held connection $i: $(cat "$d/held.$i")"
done
unserved() { # curl: 35 is the server's alert, 28 the time it waited in the backlog (10 s: a
  local rc=0  # loaded machine must not pass a slow answer off as a wait)
  curl -s -o /dev/null --max-time 10 --cacert "$SERVER_CA" "$SERVER_URL/healthz" || rc=$?
  [ "$rc" = 35 ] || [ "$rc" = 28 ]
}
unserved || fail "a connection over the limit was served"
unserved || fail "a connection over the limit was served"
grep -q "not accepting more until some close" "$d/srv.log" || fail "no warning about the limit"
kill "${held[1]}"
# Served again, and then the count comes down to the one held and the one asking (connections
# that gave up in the backlog are accepted, and closed, meanwhile).
open_now() {
  status=$(curl -s -o "$d/body" -w '%{http_code}' --max-time 3 --cacert "$SERVER_CA" \
    "$SERVER_URL/metrics" || true)
  [ "$status" = 200 ] && grep -q '^rampart_connections_open 2$' "$d/body"
}
wait_until 60 open_now || fail "metrics: $status $(grep connections "$d/body")"
kill "${held[2]}"

done_ok
