#!/usr/bin/env bash
# End to end: rampart-server backup, restore and restored (review r15ops H1, L5). The backup is a
# new 0600 file; a restore is refused while the service runs, and for a file that is not a whole
# Rampart database or is of a newer schema, and a start is refused while a restore runs; a
# restore of a backup older than a rotation, a block and a token revocation leaves the rotated
# (exposed) system token refused and the new one in admin.token working, and says what it could
# not redo; a restore that did not finish keeps the service from starting until `restored` ran,
# and so does a backup put back by hand.
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR
server_bin=$RAMPART_SERVER

start_server "$d/srv"
old_admin=$(cat "$ADMIN_TOKEN")
echo '{"name":"acme"}' >"$d/t.json"
http POST /api/v1/tenants "$ADMIN_TOKEN" "$d/t.json"; is_status 201
tenant=$(jq -r .id "$d/body")
dev=$(head -c 32 /dev/urandom | xxd -p -c 64)
echo "{\"device_ids\":[\"$dev\"]}" >"$d/dev.json"
http POST "/api/v1/tenants/$tenant/devices" "$ADMIN_TOKEN" "$d/dev.json"
echo '{"role":"admin"}' >"$d/tok.json"
http POST "/api/v1/tenants/$tenant/tokens" "$ADMIN_TOKEN" "$d/tok.json"
jq -r .token "$d/body" >"$d/tenant.token"; tok_id=$(jq -r .id "$d/body")

# --- the backup: a new file, 0600 (L5), taken while the service runs ---------------------------
expect 1 "$server_bin" --data-dir "$d/typo" backup "$d/b.db"
err_has "holds no Rampart database"; [ ! -e "$d/typo" ] || fail "a backup made the directory"
(umask 022; expect 0 "$server_bin" --data-dir "$d/srv" backup "$d/backup.db")
eq "$(stat -c %a "$d/backup.db")" 600 "the backup's mode"
expect 1 "$server_bin" --data-dir "$d/srv" backup "$d/backup.db"
err_has "exists: name a new file"

# --- after it: the system token rotated, the device blocked, the tenant token revoked ----------
expect 0 "$server_bin" --data-dir "$d/srv" --rotate-admin-token
http POST "/api/v1/tenants/$tenant/devices/$dev/block" "$ADMIN_TOKEN"; is_status 200
http DELETE "/api/v1/tenants/$tenant/tokens/$tok_id" "$ADMIN_TOKEN"; is_status 200
printf '%s\n' "$old_admin" >"$d/old.token"
http GET /api/v1/tenants "$d/old.token"; is_status 401

# --- refused: while the service runs; a file that is no Rampart database; a newer schema -------
expect 1 "$server_bin" --data-dir "$d/srv" restore "$d/backup.db"
err_has "a rampart-server serves this data directory"
http GET /api/v1/tenants "$d/old.token"; is_status 401
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
head -c 8192 /dev/urandom >"$d/junk.db"
expect 1 "$server_bin" --data-dir "$d/srv" restore "$d/junk.db"
err_has "refused"; err_has "nothing was changed"
sqlite3 "$d/other.db" "CREATE TABLE t (x INTEGER);"
expect 1 "$server_bin" --data-dir "$d/srv" restore "$d/other.db"
err_has "not a Rampart database"
cp "$d/backup.db" "$d/newer.db"; sqlite3 "$d/newer.db" "INSERT INTO schema_version VALUES (9999);"
expect 1 "$server_bin" --data-dir "$d/srv" restore "$d/newer.db"
err_has "schema version 9999 is newer than this server's"
[ -z "$(ls "$d/srv" | grep -e replaced -e pending -e tmp)" ] || fail "a refused restore left: $(ls "$d/srv")"

# --- the restore: the old system token stays refused, the new one works; what it cannot redo ---
expect 0 "$server_bin" --data-dir "$d/srv" restore "$d/backup.db"
err_has "restored: the database is the backup of 20"; err_has "NOT redone"
err_has "rampart device block"
eq "$(stat -c %a "$d/srv/rampart.db")" 600 "the restored database's mode"
ls "$d/srv"/rampart.db.replaced-* >/dev/null || fail "the database replaced is not kept"

# --- a start while a restore runs: refused, naming the restore (the servers' hold: hold.h) -----
# The restore is kept running by its file, locked by sqlite3: its copy retries until it can read.
cp "$d/backup.db" "$d/held.db"; mkfifo "$d/held.cmd"
sqlite3 "$d/held.db" <"$d/held.cmd" >/dev/null & locker=$!
exec 7>"$d/held.cmd"
printf '.timeout 20000\nBEGIN EXCLUSIVE;\n' >&7 # (waits out the checks' reads below)
held() { ! sqlite3 "$d/held.db" "SELECT count(*) FROM sqlite_master" >/dev/null 2>&1; }
wait_until 20 held || fail "sqlite3 did not lock the file"
"$server_bin" --data-dir "$d/srv" restore "$d/held.db" 2>"$d/restore.err" & restoring=$!
copying() { ls "$d/srv" | grep -q tmp; } # (made once the restore holds the database)
wait_until 20 copying || fail "the restore did not start: $(cat "$d/restore.err")"
expect 1 timeout 60 "$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0 # (one that served: 124)
err_has "\`rampart-server restore\` runs on this database"
echo "COMMIT;" >&7; exec 7>&-; wait "$locker"
wait "$restoring" || fail "the restore held by sqlite3 failed: $(cat "$d/restore.err")"
start_server "$d/srv"
http GET /api/v1/tenants "$d/old.token"; is_status 401
http GET /api/v1/tenants "$ADMIN_TOKEN"; is_status 200
# (the block and the tenant token's revocation are the backup's: undone, as the restore said)
http GET "/api/v1/tenants/$tenant/devices/$dev" "$ADMIN_TOKEN"; is_status 200
eq "$(jq -r .status "$d/body")" active "the device (the block is undone by the restore)"

# --- a restore that did not finish: the service refuses to start until `restored` ------------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
printf 'a restore has not finished\n' >"$d/srv/restore.pending"
before=$(cat "$ADMIN_TOKEN")
expect 1 "$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0
err_has "a restore of the database has not finished"; err_has "rampart-server restored --data-dir"
expect 0 "$server_bin" --data-dir "$d/srv" restored
[ ! -e "$d/srv/restore.pending" ] || fail "restored left the marker"
[ "$(cat "$ADMIN_TOKEN")" != "$before" ] || fail "restored did not rotate the system token"
start_server "$d/srv"
http GET /api/v1/tenants "$ADMIN_TOKEN"; is_status 200

# --- the backup put back by hand (stop, copy, start: review r15ops 05): refused at start ------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
cp "$ADMIN_TOKEN" "$d/before-hand.token"
rm -f "$d/srv/rampart.db-wal" "$d/srv/rampart.db-shm"; cp "$d/backup.db" "$d/srv/rampart.db"
expect 1 "$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0
err_has "the database is older than the one $d/srv served last"
err_has "rampart-server restored --data-dir"
expect 0 "$server_bin" --data-dir "$d/srv" restored
start_server "$d/srv"
http GET /api/v1/tenants "$d/old.token"; is_status 401
http GET /api/v1/tenants "$d/before-hand.token"; is_status 401
http GET /api/v1/tenants "$ADMIN_TOKEN"; is_status 200

# --- 05's own way: sqlite3's .backup while serving, then a block (each revocation raises the
# generation), then the copy put back by hand: refused at start ---------------------------------
sqlite3 "$d/srv/rampart.db" ".backup $d/by-sqlite3.db"
http POST "/api/v1/tenants/$tenant/devices/$dev/block" "$ADMIN_TOKEN"; is_status 200
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
rm -f "$d/srv/rampart.db-wal" "$d/srv/rampart.db-shm"; cp "$d/by-sqlite3.db" "$d/srv/rampart.db"
expect 1 "$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0
err_has "the database is older than the one $d/srv served last"
# (r16 H1: a backup, or a rotation, on the refused directory does not lift the refusal)
expect 0 "$server_bin" --data-dir "$d/srv" backup "$d/safety.db"
err_has "the database is older than"; err_has "still does not serve until"
touch "$d/srv/admin.token.tmpAbC123" # (r16 L2: what a cut rotation left goes at the next)
expect 0 "$server_bin" --data-dir "$d/srv" --rotate-admin-token
err_has "the database is older than"
[ ! -e "$d/srv/admin.token.tmpAbC123" ] || fail "a rotation left a cut one's temporary"
expect 1 "$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0
err_has "the database is older than the one $d/srv served last"

# --- a restore cut dead at each step, then run again: the service's database is whole at each
# step, and the service refuses to start while the restore has not finished ---------------------
cp -a "$d/srv" "$d/snap"
restore() { env "${FP:-RAMPART_FAILPOINT=0}" "$server_bin" --data-dir "$d/srv" restore "$d/backup.db"; }
whole() { [ "$(sqlite3 "$d/srv/rampart.db" 'PRAGMA integrity_check')" = ok ] || fail "$1: not whole"; }
rm -f "$d/trace"; FP=RAMPART_FAILPOINT_TRACE=$d/trace expect 0 restore
steps=$(wc -l <"$d/trace")
[ "$steps" -ge 8 ] || fail "a restore passes $steps failpoints"
for ((k = 1; k <= steps; k++)); do
  rm -rf "$d/srv"; cp -a "$d/snap" "$d/srv"
  FP=RAMPART_FAILPOINT=$k expect 99 restore
  if [ ! -e "$d/srv/restore.pending" ]; then whole "cut at step $k, no marker"; fi
  if [ -e "$d/srv/restore.pending" ] && [ ! -e "$d/srv/rampart.db" ]; then # (r16 L1)
    expect 1 "$server_bin" --data-dir "$d/srv" restored
    err_has "restore FILE --data-dir $d/srv\` again"; err_has "rampart.db.replaced-TIME"
    [ -n "${aside_seen-}" ] || expect 1 "$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0
    err_has "restore FILE --data-dir $d/srv\` again"; aside_seen=1
  fi
  expect 0 restore
  [ ! -e "$d/srv/restore.pending" ] || fail "cut at step $k: the marker is left after the restore"
  whole "cut at step $k, restored again"
  left=$(ls "$d/srv" | grep tmp) && fail "cut at step $k: temporaries left: $left" # (r16 L2)
done
[ -n "${aside_seen-}" ] || fail "no cut left the database set aside"
start_server "$d/srv"
http GET /api/v1/tenants "$d/old.token"; is_status 401
http GET /api/v1/tenants "$ADMIN_TOKEN"; is_status 200
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

# --- r16 M3: two data directories of one database (replicas). B raises the generation past A's;
# the database is put back; `restored` on A lets B start too, and on B it redoes nothing ---------
mkdir -m 700 "$d/ra"; db=(--database "$d/m3.db")
start_server "$d/ra" "${db[@]}"; kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
cp -a "$d/ra" "$d/rb"; sqlite3 "$d/m3.db" ".backup $d/m3-back.db"
expect 0 "$server_bin" --data-dir "$d/rb" "${db[@]}" --rotate-admin-token
expect 0 "$server_bin" --data-dir "$d/rb" "${db[@]}" --rotate-admin-token
rm -f "$d/m3.db-wal" "$d/m3.db-shm"; cp "$d/m3-back.db" "$d/m3.db"
expect 1 "$server_bin" --data-dir "$d/rb" "${db[@]}" --listen 127.0.0.1:0
err_has "the database is older than the one $d/rb served last"
expect 0 "$server_bin" --data-dir "$d/ra" "${db[@]}" restored
b_token=$(cat "$d/rb/admin.token")
expect 0 "$server_bin" --data-dir "$d/rb" "${db[@]}" restored
err_has "which acknowledged that restore for every replica"
eq "$(cat "$d/rb/admin.token")" "$b_token" "B's admin.token after restored on B"
start_server "$d/rb" "${db[@]}"
http GET /api/v1/tenants "$d/ra/admin.token"; is_status 200
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

# --- r17 H1: `restored` on a replica down since an earlier restore, after a later copy was put
# back: the database has served since that restore's `restored` (its count), so the whole step is
# done again: the system token exposed and rotated after the copy is refused on every replica ---
mkdir -m 700 "$d/ha"; db=(--database "$d/h1.db")
start_server "$d/ha" "${db[@]}"; kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
cp -a "$d/ha" "$d/hb"                                  # B: down from here (maintenance)
expect 0 "$server_bin" --data-dir "$d/ha" "${db[@]}" restored # restore #1, acknowledged on A
start_server "$d/ha" "${db[@]}"; kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
cp "$d/ha/admin.token" "$d/exposed.token"
sqlite3 "$d/h1.db" ".backup $d/h1-nightly.db"        # the nightly copy
expect 0 "$server_bin" --data-dir "$d/ha" "${db[@]}" --rotate-admin-token # (it was exposed)
rm -f "$d/h1.db-wal" "$d/h1.db-shm"; cp "$d/h1-nightly.db" "$d/h1.db" # restore #2
b_token=$(cat "$d/hb/admin.token")
expect 0 "$server_bin" --data-dir "$d/hb" "${db[@]}" restored
err_has "has served since that \`restored\`"; err_has "done again"
if grep -q "Nothing was redone" "$E2E_DIR/err"; then fail "restored on B redid nothing"; fi
[ "$(cat "$d/hb/admin.token")" != "$b_token" ] || fail "restored on B did not rotate the token"
for r in hb ha; do # (A starts: the new epoch is above what it saw)
  start_server "$d/$r" "${db[@]}"
  http GET /api/v1/tenants "$d/exposed.token"; is_status 401
  http GET /api/v1/tenants "$d/hb/admin.token"; is_status 200
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
done

# --- r17 M1: one copy put back twice; `restored` on B, which then serves (a revocation), and the
# second time on A, which has not started since: the new epoch is above B's too, so both start --
mkdir -m 700 "$d/sa"; db=(--database "$d/m1.db")
start_server "$d/sa" "${db[@]}"; kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
cp -a "$d/sa" "$d/sb"; sqlite3 "$d/m1.db" ".backup $d/m1-x.db"
rm -f "$d/m1.db-wal" "$d/m1.db-shm"; cp "$d/m1-x.db" "$d/m1.db"
expect 0 "$server_bin" --data-dir "$d/sb" "${db[@]}" restored
for i in 1 2; do # (B serves: revocations)
  expect 0 "$server_bin" --data-dir "$d/sb" "${db[@]}" --rotate-admin-token
done
# (a restore redone is minutes later in life; here the clock must pass B's epoch, its floor)
clock_past() { [ "$(date +%s)" -gt "$(($(cat "$d/sb/generation") >> 31))" ]; }
wait_until 5 clock_past || fail "the clock is not past B's restore epoch"
rm -f "$d/m1.db-wal" "$d/m1.db-shm"; cp "$d/m1-x.db" "$d/m1.db"
expect 0 "$server_bin" --data-dir "$d/sa" "${db[@]}" restored
for r in sb sa; do
  start_server "$d/$r" "${db[@]}"
  http GET /api/v1/tenants "$d/sa/admin.token"; is_status 200
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
done
done_ok
