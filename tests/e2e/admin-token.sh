#!/usr/bin/env bash
# End to end: rotating the system token with rampart-server --rotate-admin-token. Refused, with
# nothing made or changed, where there is no token to replace (a data directory that is a typo, a
# database whose system tokens were all revoked); rotations at the same moment leave in
# admin.token the one token that works.
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR
server_bin=$RAMPART_SERVER

# --- nothing to replace: refused, and nothing is made --------------------------------------------
expect 1 "$server_bin" --data-dir "$d/typo" --rotate-admin-token
err_has "no Rampart database at SQLite file $d/typo/rampart.db"; err_has "nothing was done"
[ ! -e "$d/typo" ] || fail "a rotation made the data directory it was given by mistake"
mkdir "$d/empty"
expect 1 "$server_bin" --data-dir "$d/empty" --rotate-admin-token
err_has "no Rampart database at SQLite file $d/empty/rampart.db"
[ -z "$(ls -A "$d/empty")" ] || fail "a rotation made files in a directory without a database: $(ls -A "$d/empty")"

start_server "$d/srv"
expect 0 "$server_bin" --data-dir "$d/srv" --rotate-admin-token
err_has "1 other system token(s) revoked"
http GET /api/v1/tokens "$ADMIN_TOKEN"; is_status 200
# every system token revoked (a token may revoke itself): no token to replace
id=$(jq -r '.tokens[0].id' "$d/body")
http DELETE "/api/v1/tokens/$id" "$ADMIN_TOKEN"; is_status 200
http GET /api/v1/tokens "$ADMIN_TOKEN"; is_status 401
cp "$ADMIN_TOKEN" "$d/revoked.token"
expect 1 "$server_bin" --data-dir "$d/srv" --rotate-admin-token
err_has "the database in $d/srv has no system token to replace"
cmp -s "$ADMIN_TOKEN" "$d/revoked.token" || fail "a refused rotation changed admin.token"
# the next start makes one, as on the first start
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server "$d/srv"
grep -q "made the bootstrap system token" "$d/srv.log" || fail "no bootstrap token: $(cat "$d/srv.log")"
http GET /api/v1/tokens "$ADMIN_TOKEN"; is_status 200; body_has '.tokens | length == 1'

# --- rotations at the same moment take turns ------------------------------------------------------
# Each writes admin.token and then revokes every other system token; interleaved, the file could
# be left with a token the other revoked. Four at once, twenty rounds: after each, the file's
# token is the one system token, and it works.
for round in $(seq 1 20); do
  pids=()
  for i in 1 2 3 4; do
    "$server_bin" --data-dir "$d/srv" --rotate-admin-token 2>"$d/rotate.$i" &
    pids+=($!)
  done
  for i in 1 2 3 4; do
    wait "${pids[i - 1]}" || fail "round $round: rotation $i failed: $(cat "$d/rotate.$i")"
  done
  http GET /api/v1/tokens "$ADMIN_TOKEN"
  [ "$status" = 200 ] || fail "round $round: admin.token holds a token that does not work ($status)"
  body_has '.tokens | length == 1'
done
done_ok
