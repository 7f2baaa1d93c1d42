#!/usr/bin/env bash
# End to end, --blobs database: two rampart-server replicas with data directories of their own
# (the same master key and service CA copied into both, as docs/operations.md says a new replica
# gets them) on one PostgreSQL, keeping uploads and images in it. An image uploaded through A is
# not in A's data directory, and a device that attests and checks for updates at B downloads and
# installs it from B; an upload's first chunk sent to A and its second to B make one image, taken
# at B and read at A; the delta to it, asked for at B, is made once and served by A. A debug file
# uploaded through A names the frames of a crash B is asked about (it is in the database too). B,
# killed with -9 while it makes another delta, leaves its lease to lapse within seconds (a
# heartbeat renews a maker's lease, RP_DELTAS_LEASE): A then makes that delta. B, stopped
# (SIGSTOP) past its lease while it makes a delta that A then makes, gives up when woken.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
server=${RAMPART_SERVER:?} # (tenant_with_root points RAMPART_SERVER, for the CLI, at the server)

start_pg
start_server "$d/a" --database "$PG_URI" --blobs database
A=$SERVER_URL
mkdir -m 700 "$d/b"
cp -p "$d/a/master.key" "$d/a/server-ca.pem" "$d/a/server-ca.key" "$d/b/"
start_server "$d/b" --database "$PG_URI" --blobs database
B=$SERVER_URL B_PID=$SERVER_PID
SERVER_URL=$A SERVER_CA=$d/a/server-ca.pem ADMIN_TOKEN=$d/a/admin.token
grep -q "blobs: database" "$d/b.log" || fail "B does not say where its blobs are: $(head -20 "$d/b.log")"

tenant_with_root "$d/root.json"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 60\n' >"$d/good.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.1.0 --security-counter 1 --type app \
  "$d/good.sh" "$d/app.img"
expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/app.img"; v110=$(cat "$d/out")
[ ! -e "$d/a/images/$v110" ] && [ ! -e "$d/b/images/$v110" ] ||
  fail "--blobs database, yet the image is in a data directory"

expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft; dev=$(tail -n1 "$d/out")
expect 0 "$AGENT" trust --state-dir "$d/dev" --update-root "$d/root.json"
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$dev"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v110"
# the device knows B only: its targets, and the image, come from B
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$B" --server-ca "$d/b/server-ca.pem"
expect 0 "$AGENT" check-now --state-dir "$d/dev" --health-seconds 1
out_has "1 installed"
expect 0 "$AGENT" status --state-dir "$d/dev" --output json
jq -e '.components[0].version == "1.1.0+0"' "$d/out" >/dev/null || fail "not installed: $(cat "$d/out")"
sent() { curl -s --cacert "$d/a/server-ca.pem" "$1/metrics" | sed -n 's/^rampart_image_bytes_sent_total //p'; }
eq "$(sent "$B")" "$(stat -c %s "$d/app.img")" "image bytes B sent"
eq "$(sent "$A")" 0 "image bytes A sent"

# one upload, its chunks at two replicas
{ printf '#!/bin/sh\nexit 0\n# '; head -c 1200000 /dev/urandom | base64 -w0; echo; } >"$d/big.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.2.0 --security-counter 1 --type app \
  "$d/big.sh" "$d/big.img"
size=$(stat -c %s "$d/big.img")
printf '{"size": %s}' "$size" >"$d/up.json"
http POST "/api/v1/tenants/$acme/uploads" "$ADMIN_TOKEN" "$d/up.json"; is_status 201
up=$(jq -r .id "$d/body"); max=$(jq -r .chunk_max "$d/body")
head -c "$max" "$d/big.img" >"$d/chunk1"; tail -c +$((max + 1)) "$d/big.img" >"$d/chunk2"
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=0" "$ADMIN_TOKEN" "$d/chunk1" application/octet-stream
is_status 200
SERVER_URL=$B http PUT "/api/v1/tenants/$acme/uploads/$up?offset=$max" "$ADMIN_TOKEN" "$d/chunk2" \
  application/octet-stream
is_status 200; body_has ".received == $size"
http GET "/api/v1/tenants/$acme/uploads/$up" "$ADMIN_TOKEN"; is_status 200; body_has ".received == $size"
printf '{"upload": "%s", "component": "app"}' "$up" >"$d/img.json"
SERVER_URL=$B http POST "/api/v1/tenants/$acme/images" "$ADMIN_TOKEN" "$d/img.json"; is_status 201
eq "$(jq -r .id "$d/body")" "$(sha256sum "$d/big.img" | cut -c1-64)" "the image's ID"
v120=$(jq -r .id "$d/body")
http GET "/api/v1/tenants/$acme/images/$v120" "$ADMIN_TOKEN"; is_status 200

# a delta asked for at B (the device's targets) is made once, and served by A too
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$B" --server-ca "$d/b/server-ca.pem"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v120"
as_dev() { curl -s -o "$d/got" -w '%{http_code}' --cacert "$d/b/server-ca.pem" --cert "$d/dev/agent/device.crt" \
  --key "$d/dev/identity.pem" "$1/api/v1/device/$2"; }
eq "$(as_dev "$B" targets)" 200 "targets at B"
delta_at_a() { [ "$(as_dev "$A" "deltas/$v110/$v120")" = 200 ]; }
wait_until 60 delta_at_a || fail "A does not serve the delta B made"
made() { curl -s --cacert "$d/a/server-ca.pem" "$1/metrics" | sed -n 's/^rampart_deltas_total{result="made"} //p'; }
eq "$(( $(made "$A") + $(made "$B") ))" 1 "deltas made by both replicas"
eq "$(as_dev "$A" targets)" 200 "targets at A"
eq "$(( $(made "$A") + $(made "$B") ))" 1 "deltas made by both replicas, asked at A too"

# a debug file uploaded through A; a crash in it reported to B, and asked about at B
printf '__attribute__((noinline)) int crash_here(volatile int *p) { return *p; }\nint main(void) { return crash_here(0); }\n' >"$d/app.c"
gcc -g -O1 -Wl,--build-id -o "$d/app" "$d/app.c" || fail "cannot build the test app"
objcopy --only-keep-debug "$d/app" "$d/app.debug"
build_id=$(readelf -n "$d/app" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
off=$(printf '0x%x' $((16#$(nm "$d/app" | awk '$3 == "crash_here" { print $1 }'))))
http POST "/api/v1/tenants/$acme/symbols" "$ADMIN_TOKEN" "$d/app.debug" application/octet-stream
is_status 201
[ -f "$d/a/symbols/$acme/$build_id.debug" ] && [ ! -e "$d/b/symbols/$acme/$build_id.debug" ] ||
  fail "the debug file is not in A's data directory only"
printf '{"reports": [{"seq": 1, "at": 1764300000, "kind": "crash", "component": "app", "version": "1.2.0",
  "reason": "killed by SIGSEGV", "code": "", "crash": {"signal": 11, "signal_name": "SIGSEGV", "code": 1,
  "address": "0x0", "uptime_ms": 10, "frames": [{"build_id": "%s", "module": "app", "offset": "%s"}],
  "stderr": ""}}], "dropped": 0}' "$build_id" "$off" >"$d/batch.json"
eq "$(curl -s -o "$d/got" -w '%{http_code}' --cacert "$d/b/server-ca.pem" --cert "$d/dev/agent/device.crt" \
  --key "$d/dev/identity.pem" -H 'Content-Type: application/json' --data-binary "@$d/batch.json" \
  "$B/api/v1/device/reports")" 200 "the crash report at B"
SERVER_URL=$B http GET "/api/v1/tenants/$acme/failures" "$ADMIN_TOKEN"; is_status 200
bucket=$(jq -r '.buckets[0].id' "$d/body")
SERVER_URL=$B http GET "/api/v1/tenants/$acme/failures/$bucket" "$ADMIN_TOKEN"; is_status 200
body_has '.symbolicated == true and .frames[0].function == "crash_here"'
cmp -s "$d/b/symbols/$acme/$build_id.debug" "$d/app.debug" || fail "B keeps no copy of the debug file"

# B killed with -9 while it makes a delta: held mid-making (the blob chunks locked by a psql
# session, so that its maker waits on reading the images with its lease taken), then killed.
PSQL=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql
sql() { "$PSQL" -X -At "$PG_URI" -c "$1"; }
# new_image VERSION N: a big image of its own (its exit status N), uploaded; its ID in $img
new_image() {
  sed "s/^exit 0\$/exit $2/" "$d/big.sh" >"$d/big-$1.sh"
  expect 0 "$RAMPART" image sign --key "$d/img.key" --version "$1" --security-counter 1 --type app \
    "$d/big-$1.sh" "$d/big-$1.img"
  expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/big-$1.img"; img=$(cat "$d/out")
}
# B_leases TO: TO deployed, the device's targets asked at B, whose maker takes the lease on the
# delta to it and is held there (blob_chunks locked by a psql session until chunks_free)
B_leases() {
  to=$1
  rm -f "$d/lock.sql"; mkfifo "$d/lock.sql"
  "$PSQL" -X -q "$PG_URI" <"$d/lock.sql" >"$d/lock.out" 2>&1 &
  locker=$!; E2E_PIDS+=("$locker")
  exec 7>"$d/lock.sql"
  echo "BEGIN; LOCK TABLE blob_chunks IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&7
  wait_until 30 grep -q locked "$d/lock.out" || fail "psql did not lock: $(cat "$d/lock.out")"
  expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$1"
  eq "$(as_dev "$B" targets)" 200 "targets at B"
  leased() { [ "$(sql "SELECT count(*) FROM deltas WHERE from_image = '$v110' AND to_image = '$to' AND sha256 IS NULL AND holder IS NOT NULL")" = 1 ]; }
  wait_until 30 leased || fail "B took no lease on the delta: $(sql "SELECT * FROM deltas")"
}
chunks_free() { echo "COMMIT;" >&7; exec 7>&-; wait "$locker" || fail "psql: $(cat "$d/lock.out")"; }
# A_makes TO: A, asked, makes the delta to TO (and only that one)
A_makes() {
  local before
  to=$1 before=$(made "$A")
  rebuilt() { as_dev "$A" targets >/dev/null; [ "$(as_dev "$A" "deltas/$v110/$to")" = 200 ]; }
  wait_until 60 rebuilt || fail "A does not make the delta: $(sql "SELECT * FROM deltas")"
  eq "$(made "$A")" "$((before + 1))" "deltas made by A"
}
new_image 1.3.0 1; v130=$img
B_leases "$v130"
kill -9 "$B_PID"; wait "$B_PID" 2>/dev/null || true
chunks_free
A_makes "$v130"

# B (started again) stopped (SIGSTOP) while it makes a delta, past its lease (here made to end in
# the database, as 15 s stopped would), which A takes over and makes. B, woken, gives up: it
# commits nothing over A's delta (whose blob a device may be downloading) and A's row stays.
RAMPART_SERVER=$server start_server "$d/b" --database "$PG_URI" --blobs database
B=$SERVER_URL B_PID=$SERVER_PID
SERVER_URL=$A SERVER_CA=$d/a/server-ca.pem ADMIN_TOKEN=$d/a/admin.token
new_image 1.4.0 4; v140=$img
B_leases "$v140"
kill -STOP "$B_PID"
chunks_free
sql "UPDATE deltas SET lease_until = 0 WHERE from_image = '$v110' AND to_image = '$v140'" >/dev/null
A_makes "$v140"
row() { sql "SELECT d.sha256, d.size, b.id FROM deltas d JOIN blobs b ON b.name = 'deltas/' || d.from_image || '-' || d.to_image || '.zst' WHERE d.from_image = '$v110' AND d.to_image = '$v140'"; }
before=$(row)
kill -CONT "$B_PID"
abandoned() { grep -q "its lease was taken over.*abandoned" "$d/b.log"; }
wait_until 60 abandoned || fail "B did not give up: $(tail -5 "$d/b.log")"
eq "$(made "$B")" 0 "deltas made by B, woken past its lease"
eq "$(row)" "$before" "the delta's row and blob after B woke"
echo "PASS"
