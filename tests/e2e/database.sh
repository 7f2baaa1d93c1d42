#!/usr/bin/env bash
# End to end, --database: rampart-server on a real PostgreSQL (tests/tools/pg) instead of the
# SQLite file in its data directory. A claimed device attests and gets its certificate; the
# records are in PostgreSQL (read with psql; the data directory holds no rampart.db) and survive
# a restart of the server; the log names the database without its password; a reload that
# changes the database is refused and the service carries on; PostgreSQL is restarted under the
# running server, which answers again without a restart of its own (the driver reconnects, and
# the server's hold that refuses a blobs move beside it is taken again); a
# path that is not UTF-8 is 400; PostgreSQL stopped: 503 with Retry-After, /readyz not ready, the
# CLI waits and succeeds once it is back; the server started before PostgreSQL waits for it
# (--database-wait). A blobs move in the gap a restart of PostgreSQL opens leaves the replica
# serving no blob (503), not blobs gone (review r16 M4).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
PSQL=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql
bin=$RAMPART_SERVER # (RAMPART_SERVER becomes the CLI's URL)

start_pg
# A password in the target (the socket trusts any: it is there to be kept out of the log).
db="$PG_URI&password=s3cret-not-logged"
# The first start from the config file's key (a reload reads the file again), the second with
# the flag.
printf 'database = %s\n' "$db" >"$d/srv.conf"
start_server "$d/srv" --config "$d/srv.conf"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
[ ! -e "$d/srv/rampart.db" ] || fail "--database given, yet a SQLite file was made in the data dir"
grep -q "database: PostgreSQL database postgres on $PG_DIR as rampart" "$d/srv.log" ||
  fail "the log does not name the database: $(grep database "$d/srv.log")"
if grep -q s3cret "$d/srv.log"; then fail "the database's password is in the log"; fi

expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft
dev=$("$AGENT" id --state-dir "$d/dev" 2>/dev/null | sed -n 's/^device id: //p')
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev"

# attest: a nonce, the agent's evidence on it, the verdict (status in $status, body in $d/body)
attest() {
  attestation_request "$d/dev" "$d/req.json" || return 1
  http POST /api/v1/attest - "$d/req.json"
  [ "$status" = 200 ]
}
attest || fail "attestation: $status $(head -c 300 "$d/body")"
body_has '.result == "pass" and (.certificate | startswith("-----BEGIN CERTIFICATE"))'

# In PostgreSQL, not anywhere else.
sql() { "$PSQL" -X -At "$PG_URI" -c "$1"; }
eq "$(sql "SELECT count(*) FROM certificates WHERE device_id = '$dev'")" 1 "certificates in PostgreSQL"
eq "$(sql "SELECT count(*) FROM tenants WHERE id = '$acme'")" 1 "the tenant in PostgreSQL"

# A reload that changes the database is refused; the running one is kept.
printf 'database = %s/other.db\n' "$d" >"$d/srv.conf"
kill -HUP "$SERVER_PID"
refused() { grep -q "reload refused, nothing changed: database changed" "$d/srv.log"; }
wait_until 20 refused || fail "a changed database was not refused at reload: $(tail -5 "$d/srv.log")"
attest || fail "attestation after a refused reload: $status"

# The server restarted (with the flag): the device's record and certificate are still there.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
RAMPART_SERVER=$bin start_server "$d/srv" --database "$db"
export RAMPART_SERVER=$SERVER_URL
http GET "/api/v1/tenants/$acme/devices/$dev" "$ADMIN_TOKEN"; is_status 200
body_has ".device_id == \"$dev\""
eq "$(sql "SELECT count(*) FROM certificates WHERE device_id = '$dev'")" 2 "certificates after a restart"

# --rotate-admin-token on the same database: the new token works, the old one no longer.
cp "$ADMIN_TOKEN" "$d/old.token"
expect 0 "$bin" --data-dir "$d/srv" --database "$db" --rotate-admin-token
http GET /api/v1/tenants "$ADMIN_TOKEN"; is_status 200
http GET /api/v1/tenants "$d/old.token"; is_status 401

# After a pg_restore (docs/operations.md, "Backing up and restoring"): backup and restore are
# SQLite's, and say so; `restored` raises the nonce epoch and rotates the system token.
expect 1 "$bin" --data-dir "$d/srv" --database "$db" backup "$d/copy.db"
err_has "the database is PostgreSQL's: use pg_dump"; [ ! -e "$d/copy.db" ] || fail "a copy was made"
expect 1 "$bin" --data-dir "$d/srv" --database "$db" restore "$d/srv.conf"
err_has "pg_restore and then \`rampart-server restored\`"
cp "$ADMIN_TOKEN" "$d/old.token"
epoch=$(sql "SELECT epoch FROM spent_nonces_purged")
expect 0 "$bin" --data-dir "$d/srv" --database "$db" restored
err_has "NOT redone"
[ "$(sql "SELECT epoch FROM spent_nonces_purged")" -gt "$epoch" ] || fail "restored left the nonce epoch"
http GET /api/v1/tenants "$ADMIN_TOKEN"; is_status 200
http GET /api/v1/tenants "$d/old.token"; is_status 401

# PostgreSQL restarted under the running server: its connections break; it answers again, without
# a restart of its own, and what it acknowledges is in PostgreSQL.
restart_pg >/dev/null
attest_noting() { attest || { echo "$status" >>"$d/seen"; false; }; }
wait_until 30 attest_noting || fail "no attestation after PostgreSQL's restart: $status $(head -c 300 "$d/body")"
kill -0 "$SERVER_PID" || fail "the server died when PostgreSQL restarted"
# its hold on the database (review r15ops M1) ended with the session and is taken again: a blobs
# move beside it is still refused
wait_until 30 grep -q "hold on the database is taken again" "$d/srv.log" ||
  fail "the hold was not taken again: $(grep hold "$d/srv.log")"
expect 1 "$bin" blobs move --from dir --to database --data-dir "$d/srv" --database "$db"
err_has "refused, nothing was moved: a rampart-server serves this database"
eq "$(sql "SELECT count(*) FROM certificates WHERE device_id = '$dev'")" 3 "certificates after PostgreSQL's restart"
if grep -q s3cret "$d/srv.log"; then fail "the database's password is in the log"; fi
# What a request that found its connection broken got: an error answer (the server's own, not a
# dropped connection), 503 (to be retried), and the log says the driver reconnected.
while read -r st; do
  case $st in 503) ;; *) fail "a request during PostgreSQL's restart got $st" ;; esac
done < <(cat "$d/seen" 2>/dev/null || true) # (none when the first attestation after it passed)
grep -q "database: reconnected" "$d/srv.log" || fail "no reconnection logged"

# A path segment that is not UTF-8 (which PostgreSQL cannot hold) is the request's error, refused
# before the store: 400, as on SQLite (unit.server's "bad_path" case).
http GET "/api/v1/tenants/$acme/devices/%FF%FE" "$ADMIN_TOKEN"; is_status 400
body_has '.error == "bad_path"'
http GET "/api/v1/tenants/%C0%AF/products" "$ADMIN_TOKEN"; is_status 400

# PostgreSQL down under the running server: requests get 503 with a Retry-After, never 500, and
# /readyz says the database is the trouble. The CLI and the agent wait as asked and try again;
# PostgreSQL back, the same calls succeed, with no restart of the server.
tools=$(dirname "$0")/../tools
"$tools/pg" stop "$PG_DIR"
retry_after=$(curl -s -o "$d/body" -D - --cacert "$SERVER_CA" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")" \
  "$SERVER_URL/api/v1/tenants/$acme/devices/$dev" | tr -d '\r' | sed -n 's/^[Rr]etry-[Aa]fter: //p')
eq "$(jq -r .error "$d/body")" unavailable "the error while PostgreSQL is down ($(head -c 300 "$d/body"))"
[ "${retry_after:-0}" -ge 1 ] && [ "$retry_after" -le 30 ] || fail "Retry-After: '$retry_after'"
http GET /api/v1/tenants "$ADMIN_TOKEN"; is_status 503
# (issuing a nonce reads the nonce epoch: none is issued in an epoch not read)
! attestation_request "$d/dev" "$d/req.json" || fail "a nonce while PostgreSQL is down"
is_status 503; body_has '.error == "unavailable"'
not_ready() { http GET /readyz -; [ "$status" = 503 ] && grep -q "database: it is out of reach" "$d/body"; }
wait_until 20 not_ready || fail "/readyz while PostgreSQL is down: $status $(head -c 300 "$d/body")"
"$RAMPART" device show --tenant "$acme" "$dev" >"$d/cli.out" 2>"$d/cli.err" &
cli=$!
E2E_PIDS+=("$cli")
"$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA" \
  >"$d/agent.out" 2>"$d/agent.err" &
agent=$!
E2E_PIDS+=("$agent")
cli_waits() { grep -q "busy (503): trying again" "$d/cli.err"; }
wait_until 30 cli_waits || fail "the CLI did not wait for a 503: $(cat "$d/cli.err")"
agent_waits() { grep -q "busy (503): trying again" "$d/agent.err"; }
wait_until 30 agent_waits || fail "the agent did not wait for a 503: $(cat "$d/agent.err")"
"$tools/pg" start "$PG_DIR" >/dev/null
wait "$cli" || fail "the CLI's call after PostgreSQL came back: $(cat "$d/cli.err")"
grep -q "$dev" "$d/cli.out" || fail "the CLI's answer: $(cat "$d/cli.out")"
wait "$agent" || fail "the agent's attestation after PostgreSQL came back: $(cat "$d/agent.err")"
eq "$(sql "SELECT count(*) FROM certificates WHERE device_id = '$dev'")" 4 "certificates after the agent's retry"
ready() { http GET /readyz -; [ "$status" = 200 ]; }
wait_until 20 ready || fail "/readyz after PostgreSQL came back: $status"

# A device's own requests (mutual TLS) while PostgreSQL is down: its certificate cannot be looked
# up, which is the service's trouble, not the device's: 503 with Retry-After, never 401 "not a
# device certificate" or 403 "revoked or unknown" (rp_device_auth); 200 once it is back.
device_get() {
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" --cert "$d/dev/agent/device.crt" \
    --key "$d/dev/identity.pem" "$SERVER_URL/api/v1/device/roots")
}
device_get; eq "$status" 200 "a device request with PostgreSQL up ($(head -c 300 "$d/body"))"
"$tools/pg" stop "$PG_DIR"
device_get; eq "$status" 503 "a device request with PostgreSQL down ($(head -c 300 "$d/body"))"
eq "$(jq -r .error "$d/body")" unavailable "the error of a device request with PostgreSQL down"
"$tools/pg" start "$PG_DIR" >/dev/null
device_ok() { device_get; [ "$status" = 200 ]; }
wait_until 20 device_ok || fail "a device request after PostgreSQL came back: $status"

# The server started while PostgreSQL is down: it waits (no port, so nothing ready), logging each
# attempt without the password, and serves once PostgreSQL is there. With --database-wait 0 it
# gives up at once.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
"$tools/pg" stop "$PG_DIR"
expect 1 "$bin" --data-dir "$d/srv" --listen 127.0.0.1:0 --database "$db" --database-wait 0
rm -f "$d/srv.port"
"$bin" --data-dir "$d/srv" --listen 127.0.0.1:0 --port-file "$d/srv.port" --database "$db" \
  --database-wait 120 >"$d/wait.log" 2>&1 &
SERVER_PID=$!
E2E_PIDS+=("$SERVER_PID")
waiting() { grep -q "out of reach (attempt 2)" "$d/wait.log"; }
wait_until 30 waiting || fail "the server does not wait for PostgreSQL: $(cat "$d/wait.log")"
[ ! -s "$d/srv.port" ] || fail "the server serves before its database is there"
if grep -q s3cret "$d/wait.log"; then fail "the database's password is in the log"; fi
"$tools/pg" start "$PG_DIR" >/dev/null
serving() { kill -0 "$SERVER_PID" 2>/dev/null && [ -s "$d/srv.port" ]; }
wait_until 60 serving || fail "the server did not start once PostgreSQL did: $(tail -5 "$d/wait.log")"
SERVER_URL="https://127.0.0.1:$(cat "$d/srv.port")"
http GET "/api/v1/tenants/$acme/devices/$dev" "$ADMIN_TOKEN"; is_status 200

# Review r16 M4: a blobs move in the gap a restart of PostgreSQL opens (the replica's hold ended
# with its session and is not taken again yet: here the replica is stopped through it) moves its
# blobs; the replica, its hold taken again, finds them moved and serves no blob (503), never 500.
printf '{"size": %s}' 1000 >"$d/up.json"
http POST "/api/v1/tenants/$acme/uploads" "$ADMIN_TOKEN" "$d/up.json"; is_status 201
up=$(jq -r .id "$d/body"); head -c 600 /dev/urandom >"$d/part"
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=0" "$ADMIN_TOKEN" "$d/part" application/octet-stream
is_status 200
kill -STOP "$SERVER_PID"
restart_pg >/dev/null
expect 0 "$bin" blobs move --from dir --to database --data-dir "$d/srv" --database "$db"
kill -CONT "$SERVER_PID"
wait_until 30 grep -q "serves no blob until it is restarted" "$d/wait.log" ||
  fail "the replica did not see its blobs moved: $(grep -i hold "$d/wait.log")"
tenants_ok() { http GET /api/v1/tenants "$ADMIN_TOKEN"; [ "$status" = 200 ]; }
wait_until 20 tenants_ok || fail "no answer after PostgreSQL's restart: $status"
head -c 400 "$d/part" >"$d/rest"
# Review r17 M2: final, not "busy": no Retry-After (clients would retry for ever), and says why.
status=$(curl -s -D "$d/headers" -o "$E2E_DIR/body" -w '%{http_code}' --cacert "$SERVER_CA" -X PUT \
  -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")" -H "Content-Type: application/octet-stream" \
  --data-binary "@$d/rest" "$SERVER_URL/api/v1/tenants/$acme/uploads/$up?offset=600")
is_status 503; body_has '.error == "blobs_moved"'; body_has '.message | test("restarted")'
if grep -qi '^retry-after' "$d/headers"; then fail "a moved replica's 503 asks for a retry"; fi
# (a readiness check made while PostgreSQL restarted may stand until its next turn: its answer
# is waited for)
moved_unready() { http GET /readyz -; [ "$status" = 503 ] && jq -e '.message | test("moved")' "$E2E_DIR/body" >/dev/null; }
wait_until 20 moved_unready || fail "/readyz does not say the blobs were moved: $status $(head -c 300 "$E2E_DIR/body")"
body_has '.error == "not_ready"'
done_ok
