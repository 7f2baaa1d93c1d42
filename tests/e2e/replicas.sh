#!/usr/bin/env bash
# End to end, two replicas: two rampart-server processes on one data directory (one SQLite
# database, one master key), each on a loopback port of its own. What one replica issues the other
# accepts, and what one spends the other refuses: a nonce issued by A is accepted by B and the same
# evidence replayed at A is refused, and the same evidence sent to both at once passes once; a TLS
# session ticket issued by A resumes at B; a certificate a device got from A verifies against the
# CRL B serves, and once the device is blocked through A, B's CRL lists it at once; evidence that
# passed at B stays spent there after a replica whose clock runs ahead purged it, and B's new nonces
# still pass; evidence captured under a clock a day ahead and purged there is not spendable again
# after `nonces reset-watermark` (the nonce epoch: review r10 M1), and a replica that has written
# nothing since issues nonces that pass right after it (review r11 L1); a process with
# another master key does not start on the database, nor one without master.key, even before any
# tenant has a CA (review r15ops M2). (Nonce and ticket keys derive from the master
# key; the spent nonces and the revocations are in the database: docs/operations.md, "Running
# several replicas".)
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
race=()
RAMPART_SERVER_BIN=$RAMPART_SERVER

start_server "$d/srv"
A=$SERVER_URL A_PID=$SERVER_PID
# The second replica: the same data directory, another port (it takes the identity, the master key
# and the database the first one made).
start_server "$d/srv"
B=$SERVER_URL B_PID=$SERVER_PID
[ "$A" != "$B" ] || fail "both replicas on one port"
# A replica of its own data directory given the service CA but not master.key, before any tenant
# has a CA: it refuses to make a key (the database holds the check value of A's: review r15ops M2).
mkdir -m 700 "$d/c"; cp -p "$d/srv/server-ca.pem" "$d/srv/server-ca.key" "$d/c/"
expect 1 timeout 60 "$RAMPART_SERVER_BIN" --data-dir "$d/c" --listen 127.0.0.1:0 --database "$d/srv/rampart.db"
err_has "$d/c/master.key is missing, and this database already has a master key (its check value)"
[ ! -e "$d/c/master.key" ] || fail "a replica not given master.key made one"
export RAMPART_SERVER=$A RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN

expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
# A test machine may have no kernel lockdown (debug status enabled) and its agent measures no
# components: the policy allows both.
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft
dev=$("$AGENT" id --state-dir "$d/dev" 2>/dev/null | sed -n 's/^device id: //p')
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev"

# --- a nonce from A, evidence to B; the same evidence again to A ----------------------------------
SERVER_URL=$A attestation_request "$d/dev" "$d/req.json" || fail "no nonce from A: $status"
SERVER_URL=$B http POST /api/v1/attest - "$d/req.json"; is_status 200
body_has '.result == "pass" and (.certificate | startswith("-----BEGIN CERTIFICATE"))'
SERVER_URL=$A http POST /api/v1/attest - "$d/req.json"; is_status 403
body_has '.reason == "nonce_replayed"'
SERVER_URL=$B http POST /api/v1/attest - "$d/req.json"; is_status 403
body_has '.reason == "nonce_replayed"'

# The same fresh evidence at A and B at once: one passes, the other is refused as a replay (the
# spent nonce is inserted in the transaction that records the verdict, in the one database).
SERVER_URL=$A attestation_request "$d/dev" "$d/race.json" || fail "no nonce from A: $status"
for r in A B; do
  url=$A; [ $r = B ] && url=$B
  curl -s -o "$d/race.$r" -w '%{http_code}' --cacert "$SERVER_CA" --data-binary "@$d/race.json" \
    -H "Content-Type: application/json" "$url/api/v1/attest" >"$d/race.$r.status" &
  race[${#race[@]}]=$!
done
wait "${race[@]}"
eq "$(printf '%s\n' "$(cat "$d/race.A.status")" "$(cat "$d/race.B.status")" | sort | tr '\n' ' ')" "200 403 " "racing replicas: one pass, one refusal"
cat "$d/race.A" "$d/race.B" | jq -se 'map(.reason) | sort == [null, "nonce_replayed"]' >/dev/null ||
  fail "racing replicas: $(cat "$d/race.A" "$d/race.B")"

# --- a TLS 1.3 session ticket from A resumes at B -------------------------------------------------
# s_client reads until the server closes (-ign_eof), so the ticket, sent after the handshake, is
# in the session it saves.
tls() { # tls URL [s_client options...]
  local hp=${1#https://}
  shift
  printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$hp" |
    openssl s_client -connect "$hp" -tls1_3 -CAfile "$SERVER_CA" -verify_return_error -ign_eof "$@" \
      >"$d/out" 2>"$d/err" || true
}
tls "$A" -sess_out "$d/sess.pem"
grep -q '^New, ' "$d/out" || fail "A: no full handshake: $(head -c 400 "$d/out")"
openssl sess_id -in "$d/sess.pem" -noout -text | grep -q 'TLS session ticket' || fail "A sent no session ticket"
tls "$B" -sess_in "$d/sess.pem"
grep -q '^Reused, ' "$d/out" || fail "B did not resume A's session: $(grep -E '^(New|Reused),' "$d/out")"
grep -q "^HTTP/1.1 200" "$d/out" || fail "B: no answer over the resumed session"
E2E_CHECKS=$((E2E_CHECKS + 3))

# --- a certificate from A, checked against the CRL B serves ---------------------------------------
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$A" --server-ca "$SERVER_CA"; out_has "attested: device"
expect 0 "$RAMPART" ca download --tenant "$acme" --out "$d/ca.pem"
crl_from() { SERVER_URL=$1 http GET "/api/v1/tenants/$acme/crl?format=pem" -; is_status 200; cp "$d/body" "$d/crl.pem"; }
crl_from "$B"
expect 0 openssl verify -crl_check -CAfile "$d/ca.pem" -CRLfile "$d/crl.pem" "$d/dev/agent/device.crt"
# Blocked through A: B's CRL (made and cached by B a moment ago) lists it at the next request.
expect 0 "$RAMPART" device block --tenant "$acme" "$dev"
crl_from "$B"
expect 2 openssl verify -crl_check -CAfile "$d/ca.pem" -CRLfile "$d/crl.pem" "$d/dev/agent/device.crt"
grep -q "certificate revoked" "$d/out" "$d/err" || fail "openssl verify: not revoked: $(cat "$d/out" "$d/err")"

# --- a replica whose clock runs ten minutes ahead purges spent nonces early ------------------------
# Evidence that passed at B stays spent there (review r8 M2): C's purge raised the watermark to the
# latest expiry it deleted, below which every replica refuses a nonce as spent, whatever its clock.
# And B's own new nonces pass (review r9srv M1): the watermark is no later than what C deleted,
# never C's clock (docs/operations.md, "Clocks").
expect 0 "$AGENT" provision --state-dir "$d/dev2" --rot soft
dev2=$("$AGENT" id --state-dir "$d/dev2" 2>/dev/null | sed -n 's/^device id: //p')
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev2"
SERVER_URL=$B attestation_request "$d/dev2" "$d/req2.json" || fail "no nonce from B: $status"
SERVER_URL=$B http POST /api/v1/attest - "$d/req2.json"; is_status 200
issued=$(date +%s) # (req2's nonce was issued no later: a nonce issued a second after expires later)
spent() { sqlite3 "$d/srv/rampart.db" 'SELECT count(*) FROM spent_nonces'; }
purged() { [ "$(spent)" = 0 ]; }
[ "$(spent)" -gt 0 ] || fail "no spent nonce"
SERVER_CLOCK=+10m RAMPART_SERVER=$RAMPART_SERVER_BIN start_server "$d/srv"
C=$SERVER_URL
# (a write at C, however unproven, runs its first purge)
SERVER_URL=$C http POST /api/v1/attest - "$d/req2.json"; is_status 403; body_has '.reason == "nonce_expired"'
wait_until 30 purged || fail "C did not purge the spent nonces"
SERVER_URL=$B http POST /api/v1/attest - "$d/req2.json"; is_status 403
body_has '.reason == "nonce_replayed"'
later() { [ "$(date +%s)" -gt "$issued" ]; }
wait_until 5 later
SERVER_URL=$B attestation_request "$d/dev2" "$d/req3.json" || fail "no nonce from B: $status"
SERVER_URL=$B http POST /api/v1/attest - "$d/req3.json"; is_status 200
body_has '.result == "pass"'
expect 0 "$RAMPART" device attestations --tenant "$acme" "$dev2"
jq -e '[.attestations[] | select(.result == "pass")] | length == 2' "$d/out" >/dev/null ||
  fail "not two passes: $(cat "$d/out")"

# --- a clock a day ahead, put right, and `nonces reset-watermark` (review r10 M1) -----------------
# D runs a day ahead (its nonces live 10 minutes, so that the test has time): evidence for its
# nonce passes and is captured. E, further ahead, purges the spent row (on SQLite the database's
# clock is the stepped host's) and raises the watermark to the nonce's expiry. Once the clocks are
# right, the reset lowers the watermark and raises the nonce epoch: the captured evidence replayed
# at D (whose clock still takes the nonce) is refused (nonce_unknown), where it passed before the
# epoch; so is A's nonce issued before the reset and never spent. Nonces issued after pass.
SERVER_CLOCK=+1d RAMPART_SERVER=$RAMPART_SERVER_BIN start_server "$d/srv" --nonce-lifetime 600
D=$SERVER_URL D_PID=$SERVER_PID
SERVER_URL=$D attestation_request "$d/dev2" "$d/captured.json" || fail "no nonce from D: $status"
SERVER_URL=$D http POST /api/v1/attest - "$d/captured.json"; is_status 200
SERVER_CLOCK=+88000 RAMPART_SERVER=$RAMPART_SERVER_BIN start_server "$d/srv"
E=$SERVER_URL E_PID=$SERVER_PID
# (a write at E runs its first purge: the nonce is expired on E's clock, and so not spent)
SERVER_URL=$E http POST /api/v1/attest - "$d/captured.json"; is_status 403; body_has '.reason == "nonce_expired"'
watermark() { sqlite3 "$d/srv/rampart.db" 'SELECT below FROM spent_nonces_purged'; }
watermark_ahead() { [ "$(watermark)" -gt $(($(date +%s) + 86400)) ]; }
wait_until 30 purged || fail "E did not purge the spent nonces"
watermark_ahead || fail "E's purge left the watermark at $(watermark)"
kill "$E_PID"; wait "$E_PID" 2>/dev/null || true
SERVER_URL=$A attestation_request "$d/dev2" "$d/before.json" || fail "no nonce from A: $status"
reset_at=$(date +%s)
expect 0 "$RAMPART_SERVER_BIN" nonces reset-watermark --data-dir "$d/srv"
# (the epoch is the database's clock at the reset: review r11 L2)
epoch=$(sqlite3 "$d/srv/rampart.db" 'SELECT epoch FROM spent_nonces_purged')
[ "$epoch" -ge "$reset_at" ] && [ "$epoch" -le "$(date +%s)" ] || fail "the nonce epoch after the reset: $epoch"
err_has "nonce epoch $epoch"
! watermark_ahead || fail "the reset left the watermark ahead"
# Right after the reset, B, which has written nothing since, issues nonces of the new epoch: they
# pass at A (review r11 L1: B issued the epoch it last read, refused until it wrote something)
SERVER_URL=$B attestation_request "$d/dev2" "$d/fromB.json" || fail "no nonce from B: $status"
SERVER_URL=$A http POST /api/v1/attest - "$d/fromB.json"; is_status 200
SERVER_URL=$D http POST /api/v1/attest - "$d/captured.json"; is_status 403
body_has '.reason == "nonce_unknown"'
SERVER_URL=$A http POST /api/v1/attest - "$d/before.json"; is_status 403
body_has '.reason == "nonce_unknown"'
SERVER_URL=$A attestation_request "$d/dev2" "$d/after.json" || fail "no nonce from A: $status"
SERVER_URL=$A http POST /api/v1/attest - "$d/after.json"; is_status 200
SERVER_URL=$B http POST /api/v1/attest - "$d/after.json"; is_status 403
body_has '.reason == "nonce_replayed"'
kill "$D_PID"; wait "$D_PID" 2>/dev/null || true

# --- a replica with another master key does not start ---------------------------------------------
# (Its nonces and tickets would be refused everywhere else, and it could not read a tenant CA.)
openssl rand -hex 32 >"$d/other.key"; chmod 600 "$d/other.key"
expect 1 timeout 60 "$RAMPART_SERVER_BIN" --data-dir "$d/srv" --listen 127.0.0.1:0 --master-key "$d/other.key"
err_has "is not the master key this database's tenant CAs were made with"

{ kill -0 "$A_PID" && kill -0 "$B_PID"; } || fail "a replica died"
done_ok
