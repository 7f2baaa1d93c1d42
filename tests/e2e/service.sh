#!/usr/bin/env bash
# End to end: a real rampart-server on loopback, real agents (soft and TPM through swtpm), the
# operator CLI. Attestation passes and every way it must fail; tenant isolation; tokens and roles;
# bad requests; certificates checked with the openssl command; EST; the agent's daemon.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)

server_bin=$RAMPART_SERVER
client=$(dirname "$0")/conn-client.py
# The block race below re-enrolls one device hundreds of times a round from this one address:
# both of its limits lifted (e2e.est_limit tests them; the address limit is tested further down).
start_server "$d/srv" --reenroll-per-hour 0 --rate-limit 0
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
# Names are checked at creation against everywhere they go: a tenant's name is its CA's O (at most
# 64 characters), so 65 is refused and 64 makes a CA, a CRL and certificates.
long=$(printf 'n%.0s' $(seq 1 65))
expect 1 "$RAMPART" tenant create "$long"; err_has "at most 64 characters"
expect 0 "$RAMPART" tenant create "${long:1}"; t64=$(cat "$d/out")
http GET "/api/v1/tenants/$t64/ca" "$ADMIN_TOKEN"; is_status 200
openssl x509 -in "$d/body" -noout -subject -nameopt RFC2253 | grep -q "O=${long:1}\$" || fail "CA subject of a 64-character name"
http GET "/api/v1/tenants/$t64/crl?format=pem" -; is_status 200
openssl crl -in "$d/body" -noout -issuer -nameopt RFC2253 | grep -q "O=${long:1}\$" || fail "CRL of a 64-character name"
# Look-alikes: letter case, spaces at the ends, invisible and direction characters, and mixed
# scripts do not make a new name; whole-script look-alikes collide on their key.
expect 1 "$RAMPART" tenant create ACME; err_has "looks the same"
expect 1 "$RAMPART" tenant create "acme "; err_has "must not end with a space"
expect 1 "$RAMPART" tenant create " acme"; err_has "must not start with a space"
expect 1 "$RAMPART" tenant create "ac  me"; err_has "two spaces in a row"
expect 1 "$RAMPART" tenant create "$(printf 'ac\u202eme')"; err_has "format characters"
expect 1 "$RAMPART" tenant create "$(printf 'ac\u200bme')"; err_has "format characters"
expect 1 "$RAMPART" tenant create "$(printf '\u0430cme')"; err_has "must not mix scripts"
expect 1 "$RAMPART" tenant create "$(printf '\uff41\uff43\uff4d\uff45')"; err_has "looks the same"   # fullwidth
expect 0 "$RAMPART" tenant create ace
expect 1 "$RAMPART" tenant create "$(printf '\u0430\u0441\u0435')"; err_has "looks the same"          # Cyrillic
printf '{"name":"acme\\u0000x"}' >"$d/nul.json"
http POST /api/v1/tenants "$ADMIN_TOKEN" "$d/nul.json"; is_status 400; body_has '.message | test("NUL")'
printf '{"name":"ac\\u00e9"}' >"$d/nfd.json"   # stored as given when already NFC
http POST /api/v1/tenants "$ADMIN_TOKEN" "$d/nfd.json"; is_status 201; body_has '.name == "ac\u00e9"'
printf '{"name":"ace\\u0301"}' >"$d/nfd.json"  # the same name in NFD: the same key
http POST /api/v1/tenants "$ADMIN_TOKEN" "$d/nfd.json"; is_status 409
# the same rule for products, groups and image keys, within their scope
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
expect 1 "$RAMPART" product create --tenant "$acme" THERMOSTAT; err_has "product of that name"
expect 0 "$RAMPART" product create --tenant "$globex" thermostat
expect 1 "$RAMPART" device-group create --tenant "$acme" --product Thermostat "field test"
expect 1 "$RAMPART" device-group create --tenant "$acme" --product Thermostat "$(printf 'Beta\u202e')"
err_has "format characters"
printf '{"name":"release\\u200b","public_key":"x"}' >"$d/ik.json"
http POST "/api/v1/tenants/$acme/image-keys" "$ADMIN_TOKEN" "$d/ik.json"; is_status 400
body_has '.message | test("format characters")'
expect 0 "$RAMPART" tenant list --output json
jq -e '.tenants | length == 5' "$d/out" >/dev/null || fail "tenants after the refusals: $(cat "$d/out")"
for spec in acme:admin acme:reader acme:contributor globex:admin; do
  t=${spec%%:*} role=${spec##*:} tid=$acme
  [ "$t" = globex ] && tid=$globex
  expect 0 "$RAMPART" token create --tenant "$tid" --role "$role"
  grep -q '^rpt_[0-9a-f]\{64\}$' "$d/out" || fail "token format"
  cp "$d/out" "$d/$t-$role.token"
done
# The agents here measure no components, and a test machine may have no kernel lockdown (debug
# "enabled"): acme and globex allow both. The default is strict (tested below, with tenant strict).
for tid in "$acme" "$globex"; do
  expect 0 "$RAMPART" tenant policy --tenant "$tid" --allow-debug yes --require-components no
done
expect 2 "$RAMPART" token create --tenant "$acme"
expect 1 "$RAMPART" token create --tenant "$acme" --role system; err_has "must be admin, contributor or reader"
# a tenant token sees only its tenant, and cannot make a more powerful token
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 0 "$RAMPART" tenant list --output json
jq -e '.tenants | map(.name) == ["acme"]' "$d/out" >/dev/null || fail "scoped tenant list"
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 1 "$RAMPART" tenant create evil
err_has "only a system token may do this"
RAMPART_TOKEN_FILE=$d/acme-reader.token expect 1 "$RAMPART" token create --tenant "$acme" --role admin
err_has "needs the admin role"
# tokens are stored hashed: no secret in the database. stored_anywhere: in the database's files,
# its write-ahead log too (journal_mode=WAL: what was written since the last checkpoint, as every
# token here, is only there; the main file alone could never show it).
stored_anywhere() { cat "$d/srv/rampart.db" "$d/srv/rampart.db-wal" 2>/dev/null | grep -qaF -- "$1"; }
[ -s "$d/srv/rampart.db-wal" ] || [ -s "$d/srv/rampart.db" ] || fail "no database to look in"
for f in "$d"/*.token; do
  ! stored_anywhere "$(cat "$f")" || fail "a token is stored in the clear"
done

# --- tokens expire, show their use, and can be revoked ------------------------------------------
# One token that outlives the test (it works, and shows its use), one that expires in 2 s (waited
# for as a state: no assumption on how fast the machine is).
expect 0 "$RAMPART" token create --tenant "$acme" --role reader --expires-in 1h --output json
jq -r .token "$d/out" >"$d/hour.token"
hour=$(jq -r .id "$d/out")
jq -e '.status == "active" and (.expires | test("^20[0-9-]+T[0-9:]+Z$"))' "$d/out" >/dev/null || fail "expiring token: $(cat "$d/out")"
http GET "/api/v1/tenants/$acme" "$d/hour.token"; is_status 200
expect 0 "$RAMPART" token list --tenant "$acme" --output json
jq -e --arg id "$hour" '.tokens[] | select(.id == $id) | .last_used != null' "$d/out" >/dev/null ||
  fail "last use not shown: $(cat "$d/out")"
expect 0 "$RAMPART" token create --tenant "$acme" --role reader --expires-in 2s --output json
jq -r .token "$d/out" >"$d/short.token"
short=$(jq -r .id "$d/out")
for i in $(seq 1 600); do   # wait for the state: expired (2 s from its making; 60 s at most)
  http GET "/api/v1/tenants/$acme" "$d/short.token"
  [ "$status" = 401 ] && break
  sleep 0.1
done
is_status 401; body_has '.error == "token_expired" and (.message | test("expired at 20"))'
expect 0 "$RAMPART" token list --tenant "$acme"; grep -q "^$short .* expired " "$d/out" || fail "not listed as expired: $(cat "$d/out")"
expect 1 "$RAMPART" token create --tenant "$acme" --role reader --expires-at 2001-01-01T00:00:00Z
err_has "in the next ten years"
expect 2 "$RAMPART" token create --tenant "$acme" --role reader --expires-in 5x
http POST "/api/v1/tenants/$acme/tokens" "$ADMIN_TOKEN" <(printf '{"role":"reader","expires_in":0}'); is_status 400
# revoked by an admin, by itself; not by a reader, nor by another tenant
for n in 1 2; do
  expect 0 "$RAMPART" token create --tenant "$acme" --role reader --output json
  jq -r .token "$d/out" >"$d/rev$n.token"; eval "rev$n=$(jq -r .id "$d/out")"
done
RAMPART_TOKEN_FILE=$d/rev1.token expect 1 "$RAMPART" token revoke --tenant "$acme" "$rev2"; err_has "needs the admin role"
RAMPART_TOKEN_FILE=$d/globex-admin.token expect 1 "$RAMPART" token revoke --tenant "$acme" "$rev2"
RAMPART_TOKEN_FILE=$d/globex-admin.token expect 1 "$RAMPART" token revoke --tenant "$globex" "$rev2"; err_has "no such token"
http GET "/api/v1/tenants/$acme" "$d/rev2.token"; is_status 200
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 0 "$RAMPART" token revoke --tenant "$acme" "$rev2"; out_has "revoked $rev2"
http GET "/api/v1/tenants/$acme" "$d/rev2.token"; is_status 401; body_has '.error == "unauthorized"'
RAMPART_TOKEN_FILE=$d/rev1.token expect 0 "$RAMPART" token revoke --tenant "$acme" self; out_has "revoked $rev1"
http GET "/api/v1/tenants/$acme" "$d/rev1.token"; is_status 401
expect 0 "$RAMPART" token list --tenant "$acme" --output json
jq -e --arg a "$rev1" --arg b "$rev2" '[.tokens[].id] | index($a) == null and index($b) == null' "$d/out" >/dev/null ||
  fail "revoked tokens still listed"
# the system tokens: one, listed to system tokens only
expect 0 "$RAMPART" token list --output json
jq -e '.tokens | length == 1 and .[0].role == "system"' "$d/out" >/dev/null || fail "system tokens: $(cat "$d/out")"
system0=$(jq -r '.tokens[0].id' "$d/out")
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 1 "$RAMPART" token list; err_has "only a system token may do this"
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 1 "$RAMPART" token revoke "$system0"
err_has "needs the system role"

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
[ ! -e "$d/a/agent/device.crt" ] || fail "an unclaimed device got a certificate"

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
  openssl verify -CAfile "$ca" "$d/$dev/agent/device.crt" >/dev/null || fail "$dev: openssl verify"
  cmp -s "$ca" "$d/$dev/agent/ca-chain.pem" || fail "$dev: ca-chain.pem is not the tenant CA"
  nb=$(date -d "$(openssl x509 -in "$d/$dev/agent/device.crt" -noout -startdate | cut -d= -f2)" +%s)
  na=$(date -d "$(openssl x509 -in "$d/$dev/agent/device.crt" -noout -enddate | cut -d= -f2)" +%s)
  eq $((na - nb)) $((86400 + 300)) "$dev: certificate lifetime (from 5 minutes before its issue)"
  id_var=$dev; [ $dev = t ] && id_var=t
  eq "$(openssl x509 -in "$d/$dev/agent/device.crt" -noout -subject -nameopt RFC2253)" "subject=CN=${!id_var}" "$dev: subject"
  openssl x509 -in "$d/$dev/agent/device.crt" -noout -ext extendedKeyUsage | grep -q 'Client Authentication, TLS Web Server Authentication' ||
    fail "$dev: extended key usage"
done
# the tenant CA: ECDSA P-256, two years, a CA
openssl x509 -in "$d/acme-ca.pem" -noout -text | grep -q 'ASN1 OID: prime256v1' || fail "CA key type"
openssl x509 -in "$d/acme-ca.pem" -noout -text | grep -q 'CA:TRUE' || fail "CA basic constraints"
! openssl verify -CAfile "$d/globex-ca.pem" "$d/a/agent/device.crt" >/dev/null 2>&1 || fail "acme's device verifies under globex"
# the CA keys are encrypted at rest
eq "$(sqlite3 "$d/srv/rampart.db" 'select count(*) from cas')" 3 "tenant CAs"   # acme, globex, the 64-character one
eq "$(sqlite3 "$d/srv/rampart.db" "select count(*) from cas where key_pem like '-----BEGIN ENCRYPTED PRIVATE KEY-----%'")" 3 \
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
history_of() {
  RAMPART_TOKEN_FILE=$ADMIN_TOKEN "$RAMPART" device attestations --tenant "$acme" "$1" >"$d/hist"
  jq -c '[.attestations[] | {id, result, reason}]' "$d/hist"
}
# refused_with REASON [DEVICE]: the request in $d/req.json is refused for REASON. With DEVICE: the
# refusal proves nothing about the device (anyone who knows its public key could have sent it), so
# its history is unchanged and the refusal is counted for the address it came from instead.
refused_with() {
  [ -z "${2:-}" ] || history_of "$2" >"$d/hist.before"
  http POST /api/v1/attest - "$d/req.json"; is_status 403
  body_has ".reason == \"$1\""
  if [ -n "${2:-}" ]; then
    eq "$(history_of "$2")" "$(cat "$d/hist.before")" "$1: the device's history"
    http GET /api/v1/unproven-attestations "$ADMIN_TOKEN"; is_status 200
    body_has ".sources[0].address == \"127.0.0.1\" and .sources[0].last_reason == \"$1\"
      and .sources[0].last_device_id == \"$2\""
  fi
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

# Evidence forged with a real device's public key, many times: the device's record is what it was
# (its last attestation passed, its history), and so its EST re-enrollment still works.
history_of "$a" >"$d/hist.a"
http GET /api/v1/unproven-attestations "$ADMIN_TOKEN"; is_status 200
count_before=$(jq '.sources[0].count' "$d/body")
for i in 1 2 3 4 5; do
  make_request b a a; http POST /api/v1/attest - "$d/req.json"; is_status 403
  body_has '.reason == "bad_signature"'
done
eq "$(history_of "$a")" "$(cat "$d/hist.a")" "a's history after forged evidence"
expect 0 "$RAMPART" device show --tenant "$acme" "$a" --output json
jq -e '.last_attestation.result == "pass" and .certificate != null' "$d/out" >/dev/null ||
  fail "a's record after forged evidence: $(cat "$d/out")"
http GET /api/v1/unproven-attestations "$ADMIN_TOKEN"; is_status 200
body_has ".sources | length == 1"
body_has ".sources[0].count == $((count_before + 5)) and .sources[0].last_device_id == \"$a\""
http GET /api/v1/unproven-attestations "$d/acme-admin.token"; is_status 403   # system tokens only
openssl req -new -key "$d/a/identity.pem" -subj "/CN=$a" -outform DER | base64 -w0 >"$d/csr-a.b64"
status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" --cert "$d/a/agent/device.crt" \
  --key "$d/a/identity.pem" -H 'Content-Type: application/pkcs10' --data-binary "@$d/csr-a.b64" \
  "$SERVER_URL/.well-known/est/$acme/simplereenroll")
is_status 200   # not attestation_required
http GET /metrics -; is_status 200
grep -Eq '^rampart_attestations_unproven_total ([1-9][0-9]+)$' "$d/body" || fail "metrics: unproven"

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
serial=$(openssl x509 -in "$d/a/agent/device.crt" -noout -serial | cut -d= -f2)
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
! openssl verify -crl_check -CAfile "$d/ca+crl.pem" "$d/a/agent/device.crt" >/dev/null 2>&1 || fail "revoked certificate verifies"
openssl verify -crl_check -CAfile "$d/ca+crl.pem" "$d/b/agent/device.crt" >/dev/null || fail "b's certificate should verify"
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 0 "$RAMPART" device unblock --tenant "$acme" "$a"
expect 0 attest a

# --- a kept-alive device connection: its chain is verified once, its revocation on every request --
# One curl: a's request (200), then a's block by its admin (a connection of its own: no client
# certificate), then a's request again on a's first connection (num_connects 0): refused, not
# answered from what the connection's first request verified.
a_roots=(--cacert "$SERVER_CA" --cert "$d/a/agent/device.crt" --key "$d/a/identity.pem"
  -o /dev/null -w '%{http_code} %{num_connects}\n' "$SERVER_URL/api/v1/device/roots")
curl -s "${a_roots[@]}" --next -s --cacert "$SERVER_CA" -o /dev/null -w '%{http_code} block\n' -X POST \
  -H "Authorization: Bearer $(cat "$d/acme-admin.token")" "$SERVER_URL/api/v1/tenants/$acme/devices/$a/block" \
  --next -s "${a_roots[@]}" >"$d/kept" || true
eq "$(tr '\n' ' ' <"$d/kept")" "200 1 200 block 403 0 " "a's kept-alive connection across its block"
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
reenroll --cert "$d/b/agent/device.crt" --key "$d/b/identity.pem"; is_status 200
base64 -d "$d/body" | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -subject |
  grep -q "$b" || fail "re-enrolled certificate"
reenroll; is_status 401                                          # no client certificate
reenroll --cert "$d/c/agent/device.crt" --key "$d/c/identity.pem"; is_status 401   # another tenant's
openssl req -new -key "$d/a/identity.pem" -subj "/CN=$b" -outform DER | base64 -w0 >"$d/csr.b64"
reenroll --cert "$d/b/agent/device.crt" --key "$d/b/identity.pem"; is_status 403   # another key

# --- a block racing with re-enrollments leaves no certificate unrevoked --------------------------
# Four clients re-enroll b back to back on kept-alive connections; once certificates are being
# recorded, b is blocked, and they go on until they are refused. Every certificate recorded before the block is revoked by it, and
# none may be recorded after it (before the fix: a renewal checked before the block and recorded
# after it stayed valid).
openssl req -new -key "$d/b/identity.pem" -subj "/CN=$b" -outform DER | base64 -w0 >"$d/csr-b.b64"
renew_until_refused() { # FILE: re-enrollments on kept-alive connections, 50 at a time, until one
  local args=() i                                  # is refused; each answer's status a line in FILE
  for i in $(seq 1 50); do args+=(-o /dev/null "$SERVER_URL/.well-known/est/$acme/simplereenroll"); done
  : >"$1"
  for i in $(seq 1 60); do
    curl -s -w '%{http_code}\n' --cacert "$SERVER_CA" --cert "$d/b/agent/device.crt" --key "$d/b/identity.pem" \
      -H 'Content-Type: application/pkcs10' --data-binary "@$d/csr-b.b64" "${args[@]}" >>"$1" || true
    grep -qv '^200$' "$1" && return 0
  done
}
certs_of_b() { sqlite3 "$d/srv/rampart.db" "select count(*) from certificates where device_id = '$b' $1"; }
for round in 1 2 3 4 5; do
  expect 0 attest b
  before=$(certs_of_b "")
  renewers=()
  for j in 1 2 3 4; do
    renew_until_refused "$d/renew.$j" &
    renewers+=($!)
    E2E_PIDS+=($!)
  done
  for i in $(seq 1 400); do [ "$(certs_of_b "")" -ge $((before + 4)) ] && break; sleep 0.02; done
  RAMPART_TOKEN_FILE=$d/acme-admin.token expect 0 "$RAMPART" device block --tenant "$acme" "$b"
  for p in "${renewers[@]}"; do wait "$p"; done
  grep -q '^200$' "$d"/renew.* || fail "round $round: no re-enrollment was served before the block"
  eq "$(cat "$d"/renew.* | grep -v '^200$' | sort -u)" 403 "round $round: refusals after the block"
  eq "$(certs_of_b "and revoked_at = 0")" 0 "round $round: certificates of the blocked device left unrevoked"
  RAMPART_TOKEN_FILE=$d/acme-admin.token expect 0 "$RAMPART" device unblock --tenant "$acme" "$b"
done
expect 0 attest b

# --- appraisal policy: explicit, per tenant, strict by default; security counters appraised -------
expect 0 "$RAMPART" tenant create strict; strict=$(cat "$d/out")
expect 0 "$RAMPART" tenant policy --tenant "$strict" --output json
jq -e '.require_components and .require_measurement_register and (.allow_debug | not) and .updated == null' \
  "$d/out" >/dev/null || fail "the default policy: $(cat "$d/out")"
expect 0 "$RAMPART" token create --tenant "$strict" --role reader; cp "$d/out" "$d/strict-reader.token"
expect 0 "$RAMPART" token create --tenant "$strict" --role admin; cp "$d/out" "$d/strict-admin.token"
expect 0 "$AGENT" provision --state-dir "$d/s" --rot soft
s=$("$AGENT" id --state-dir "$d/s" 2>/dev/null | sed -n 's/^device id: //p')
expect 0 "$RAMPART" device claim --tenant "$strict" "$s"
# two of the tenant's images: one with security counter 5, one with none
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/img.key"
expect 0 "$RAMPART" key public --key "$d/img.key" --out "$d/img.pub"
expect 0 "$RAMPART" image-key add --tenant "$strict" --key "$d/img.pub" --name release
head -c 4096 /dev/urandom >"$d/payload"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --security-counter 5 "$d/payload" "$d/c5.img"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.1 "$d/payload" "$d/cnone.img"
for i in c5 cnone; do expect 0 "$RAMPART" image upload --tenant "$strict" --component app "$d/$i.img"; done
expect 0 "$RAMPART" image list --tenant "$strict" --output json
h5=$(jq -r '.images[] | select(.security_counter == 5) | .image_hash' "$d/out")
hnone=$(jq -r '.images[] | select(.security_counter == null) | .image_hash' "$d/out")
[[ $h5 =~ ^[0-9a-f]{64}$ && $hnone =~ ^[0-9a-f]{64}$ ]] || fail "image hashes: $(cat "$d/out")"
# shaped ARGS...: evidence by s for a fresh nonce, with the claims ARGS give make-eat.py
shaped() {
  printf '{"device_id":"%s"}' "$s" >"$d/nreq.json"
  http POST /api/v1/attest/nonce - "$d/nreq.json"; is_status 200
  "$TOOLS/make-eat.py" --key "$d/s/identity.pem" --nonce "$(jq -r .nonce "$d/body")" --out "$d/ev.cbor" "$@" ||
    fail "make-eat.py $*"
  jq -n --arg ev "$(base64 -w0 "$d/ev.cbor")" \
    --arg key "$(openssl pkey -in "$d/s/identity.pem" -pubout -outform DER 2>/dev/null | base64 -w0)" \
    '{evidence: $ev, public_key: $key}' >"$d/req.json"
  http POST /api/v1/attest - "$d/req.json"
}
strict_verdict() { # REASON: the last answer, and s's newest recorded attestation
  if [ "$1" = pass ]; then is_status 200; else is_status 403; body_has ".reason == \"$1\""; fi
  RAMPART_TOKEN_FILE=$d/strict-reader.token expect 0 "$RAMPART" device attestations --tenant "$strict" "$s"
  eq "$(jq -r '.attestations[0].reason' "$d/out")" "$1" "recorded verdict"
}
app5=app:1.0.0+0:$h5
shaped;                                        strict_verdict no_components
shaped --debug 0 --component "$app5:5";        strict_verdict debug_enabled
shaped --component "$app5:5" --no-register;    strict_verdict no_measurement_register
shaped --component "$app5:5" --register "$(openssl rand -hex 32)"; strict_verdict measurements_inconsistent
shaped --component "$app5:5";                  strict_verdict pass
shaped --component "$app5:4";                  strict_verdict security_counter_mismatch
shaped --component "$app5:6";                  strict_verdict security_counter_mismatch
shaped --component "$app5";                    strict_verdict security_counter_mismatch   # claims none
shaped --component "app:1.0.1+0:$hnone:0";     strict_verdict security_counter_mismatch   # it has none
shaped --component "app:1.0.1+0:$hnone";       strict_verdict pass
shaped --component "app:1.0.0+0:$(openssl rand -hex 32)"; strict_verdict unknown_image
# read by the tenant's readers, set by its admins, not seen by other tenants
RAMPART_TOKEN_FILE=$d/strict-reader.token expect 0 "$RAMPART" tenant policy --tenant "$strict"
out_has "allow debug:                  no"; out_has "never (the default)"
RAMPART_TOKEN_FILE=$d/strict-reader.token expect 1 "$RAMPART" tenant policy --tenant "$strict" --allow-debug yes
err_has "needs the admin role"
RAMPART_TOKEN_FILE=$d/acme-admin.token expect 1 "$RAMPART" tenant policy --tenant "$strict"; err_has "no such tenant"
expect 2 "$RAMPART" tenant policy --tenant "$strict" --allow-debug maybe
printf '{"allow_debug":"yes"}' >"$d/pol.json"
http PUT "/api/v1/tenants/$strict/policy" "$d/strict-admin.token" "$d/pol.json"; is_status 400
printf '{"allow_debug":true,"allow_everything":true}' >"$d/pol.json"
http PUT "/api/v1/tenants/$strict/policy" "$d/strict-admin.token" "$d/pol.json"; is_status 400
body_has '.message | test("allow_everything")'
RAMPART_TOKEN_FILE=$d/strict-admin.token expect 0 "$RAMPART" tenant policy --tenant "$strict" --allow-debug yes --output json
jq -e '.allow_debug and .require_components and .updated != null' "$d/out" >/dev/null || fail "policy set: $(cat "$d/out")"
shaped --debug 0 --component "$app5:5";        strict_verdict pass
shaped --debug 0;                              strict_verdict no_components
RAMPART_TOKEN_FILE=$d/strict-admin.token expect 0 "$RAMPART" tenant policy --tenant "$strict" --require-components no
shaped --debug 0;                              strict_verdict pass
shaped --debug 0 --no-register;                strict_verdict no_measurement_register
http GET /metrics -; is_status 200
for reason in no_components debug_enabled no_measurement_register security_counter_mismatch; do
  grep -Eq "^rampart_attestations_total\{result=\"fail\",reason=\"$reason\"\} [1-9]" "$d/body" || fail "metrics: no $reason"
done

# --- the agent as a daemon: attests at start and renews --------------------------------------------
# ...and tells its service manager (a notification socket read here): ready, watchdog, stopping.
first=$(openssl x509 -in "$d/t/agent/device.crt" -noout -serial)
python3 "$(dirname "$0")/notify-listen.py" "$d/agent-notify.sock" "$d/agent-notes" &
E2E_PIDS+=("$!")
wait_until 30 test -S "$d/agent-notify.sock" || fail "the notification socket did not appear"
NOTIFY_SOCKET=$d/agent-notify.sock WATCHDOG_USEC=2000000 \
  "$AGENT" run --state-dir "$d/t" --server "$SERVER_URL" --server-ca "$SERVER_CA" --renew-after 1 --start-jitter 0 \
  >"$d/run.log" 2>&1 &
run_pid=$!
E2E_PIDS+=("$run_pid")
renewed() { [ "$(grep -c '^attested' "$d/run.log" 2>/dev/null)" -ge 2 ] 2>/dev/null; }
wait_until 60 renewed || fail "the daemon did not renew: $(cat "$d/run.log")"
agent_watchdogs() { [ "$(grep -c '^WATCHDOG=1$' "$d/agent-notes")" -ge 2 ]; }
wait_until 30 agent_watchdogs || fail "the daemon fed no watchdog: $(cat "$d/agent-notes")"
grep -q '^READY=1 | STATUS=running for device ' "$d/agent-notes" || fail "no READY=1: $(cat "$d/agent-notes")"
kill -TERM "$run_pid"; wait "$run_pid" || fail "the daemon did not stop cleanly"
grep -q '^STOPPING=1$' "$d/agent-notes" || fail "no STOPPING=1: $(cat "$d/agent-notes")"
E2E_CHECKS=$((E2E_CHECKS + 3))
[ "$(openssl x509 -in "$d/t/agent/device.crt" -noout -serial)" != "$first" ] || fail "certificate not renewed"

# --- metrics count what happened ----------------------------------------------------------------------
http GET /metrics -; is_status 200
for reason in pass nonce_replayed nonce_expired nonce_wrong_device bad_signature unclaimed blocked malformed_evidence nonce_unknown; do
  grep -Eq "^rampart_attestations_total\{result=\"(pass|fail)\",reason=\"$reason\"\} [1-9]" "$d/body" ||
    fail "metrics: no $reason"
done
grep -Eq '^rampart_certificates_issued_total [1-9]' "$d/body" || fail "metrics: certificates"

# --- the system token: rotated explicitly, never doubled by accident ------------------------------
cp "$ADMIN_TOKEN" "$d/system-1.token"
expect 0 "$RAMPART" token list --output json; system1=$(jq -r '.tokens[0].id' "$d/out")
expect 0 "$server_bin" --data-dir "$d/srv" --rotate-admin-token    # while the service runs
err_has "1 other system token(s) revoked"
! cmp -s "$ADMIN_TOKEN" "$d/system-1.token" || fail "rotation kept the old token"
eq "$(stat -c %a "$ADMIN_TOKEN")" 600 "rotated token's mode"
http GET /api/v1/tokens "$d/system-1.token"; is_status 401
expect 0 "$RAMPART" token list --output json
jq -e --arg old "$system1" '.tokens | length == 1 and .[0].id != $old' "$d/out" >/dev/null ||
  fail "after rotation: $(cat "$d/out")"
! stored_anywhere "$(cat "$ADMIN_TOKEN")" || fail "the rotated token is stored in the clear"
# Deleting admin.token and restarting does not make a second system token.
mv "$ADMIN_TOKEN" "$d/system-2.token"

# --- the requests anyone may make are limited per address ---------------------------------------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
# A burst of 1, then 1 in 1000 s: no token comes back while the test runs, however slowly.
RAMPART_SERVER=$server_bin start_server "$d/srv" --rate-limit 0.001
[ ! -e "$ADMIN_TOKEN" ] || fail "a restart without admin.token made another system token"
grep -q "no new system token is made" "$d/srv.log" || fail "no word about the missing admin.token"
http GET /api/v1/tokens "$d/system-2.token"; is_status 200; body_has '.tokens | length == 1'
mv "$d/system-2.token" "$ADMIN_TOKEN"
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
# stranger_plans JITTER PLAN: the daemon for the unclaimed device, with --start-jitter JITTER,
# until it has logged "PLAN in N s" (then stopped); N in $planned.
stranger_plans() {
  : >"$d/stranger.log"
  "$AGENT" run --state-dir "$d/stranger" --server "$SERVER_URL" --server-ca "$SERVER_CA" --start-jitter "$1" \
    >"$d/stranger.log" 2>&1 &
  stranger=$!
  E2E_PIDS+=("$stranger")
  wait_until 60 grep -q "$2 in" "$d/stranger.log" ||
    fail "the daemon did not plan its $2: $(cat "$d/stranger.log")"
  kill "$stranger"; wait "$stranger" 2>/dev/null || true
  planned=$(sed -n "s/.*$2 in \([0-9]*\) s.*/\1/p" "$d/stranger.log" | head -1)
}
stranger_plans 0 "next attestation"; waited=$planned
grep -q "HTTP 429" "$d/stranger.log" || fail "the daemon was not limited: $(cat "$d/stranger.log")"
grep -q "no tenant has claimed.*asks to wait 1000 s" "$d/stranger.log" ||
  fail "the daemon lost the service's reason: $(cat "$d/stranger.log")"
[ -n "$waited" ] && [ "$waited" -ge 1000 ] && [ "$waited" -le 1501 ] ||
  fail "after Retry-After: 1000 the daemon waits '$waited' s"
E2E_CHECKS=$((E2E_CHECKS + 1))
# After a power cut a fleet's devices start together: the first attestation waits a random second
# of --start-jitter (30 by default), not 0. Its plan is said at once; nothing is sent meanwhile.
expect 2 "$AGENT" run --state-dir "$d/stranger" --server "$SERVER_URL" --server-ca "$SERVER_CA" --start-jitter 3601
grep -q -- "--start-jitter is 0 to 3600 seconds" "$d/err" || fail "--start-jitter 3601: $(cat "$d/err")"
stranger_plans 3600 "first attestation"; first_in=$planned
[ -n "$first_in" ] && [ "$first_in" -ge 1 ] && [ "$first_in" -le 3600 ] ||
  fail "--start-jitter 3600: first attestation in '$first_in' s"
! grep -q "HTTP\|attested" "$d/stranger.log" || fail "the daemon attested at once: $(cat "$d/stranger.log")"
E2E_CHECKS=$((E2E_CHECKS + 2))
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
# Two more at once, each writing how its curl ended (35: the server's alert) into over.N. A state,
# not a time: each one refused, or waiting unaccepted in the kernel's backlog (the listening
# sockets' queues hold as many as are still waiting) - and so, a second later, when every worker
# has looked again ten times (pause_accepting: every 100 ms). Nothing over the limit was served.
over() {
  local rc=0
  curl -s -o /dev/null --max-time 60 --cacert "$SERVER_CA" "$SERVER_URL/healthz" || rc=$?
  echo "$rc" >"$d/over.$1"
}
rm -f "$d/over.1" "$d/over.2"
over 1 & u1=$!
over 2 & u2=$!
E2E_PIDS+=("$u1" "$u2")
queued() { ss -Hltn "sport = :$port" | awk '{ n += $2 } END { print n + 0 }'; }
ended() { cat "$d/over.1" "$d/over.2" 2>/dev/null | grep -c "${1:-.}" || true; }
held_off() { # served is curl's 0; refused is any other end (35: the server's alert; a loaded
  # machine may see the refusal as a reset instead: 56, 52)
  [ "$(ended '^0$')" = 0 ] || fail "a connection over the limit was served (curl ended: $(cat "$d/over.1" "$d/over.2" 2>/dev/null))"
  [ "$(queued)" -ge $((2 - $(ended))) ]
}
wait_until 60 held_off || fail "over the limit: $(ended) refused, $(queued) waiting, of 2"
sleep 1
held_off || fail "a connection over the limit left the backlog: $(ended) refused, $(queued) waiting, of 2"
E2E_CHECKS=$((E2E_CHECKS + 2))
grep -q "not accepting more until some close" "$d/srv.log" || fail "no warning about the limit"
waiting=$((2 - $(ended)))
kill "${held[1]}"
# A slot freed: what waited is accepted now, not dropped - served, or refused if two workers took
# one each in the same instant (the second over the limit again): at least one served.
wait "$u1" "$u2" 2>/dev/null || true
[ "$(ended)" = 2 ] || fail "over the limit, once a slot freed: curl ended $(cat "$d/over.1" "$d/over.2")"
[ "$waiting" = 0 ] || [ "$(ended '^0$')" -ge 1 ] || fail "none of the $waiting waiting was served once a slot freed"
# Served again, and then the count comes down to the one held and the one asking (the
# connections over the limit have been answered, and closed, meanwhile).
open_now() {
  status=$(curl -s -o "$d/body" -w '%{http_code}' --max-time 3 --cacert "$SERVER_CA" \
    "$SERVER_URL/metrics" || true)
  [ "$status" = 200 ] && grep -q '^rampart_connections_open 2$' "$d/body"
}
wait_until 60 open_now || fail "metrics: $status $(grep connections "$d/body")"
kill "${held[2]}"

done_ok
