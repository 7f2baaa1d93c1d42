#!/usr/bin/env bash
# End to end, --blobs changed across a restart (issue 12): a server started with --blobs database
# on a data directory whose images are files refuses to start, naming the command that moves
# them; `rampart-server blobs move --from dir --to database` moves them (a second run moves
# nothing), and the device downloads its image from the database; moved back the same way, it
# downloads it from the directory again. A download whose blob is gone is a 500 JSON error.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
s=$d/srv
server=${RAMPART_SERVER:?} # (tenant_with_root points RAMPART_SERVER, for the CLI, at the server)

start_server "$s"
tenant_with_root "$d/root.json"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 60\n' >"$d/good.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.1.0 --security-counter 1 --type app \
  "$d/good.sh" "$d/app.img"
expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/app.img"; v=$(cat "$d/out")
device_with_image "$v"
download() { curl -s -o "$d/got" -w '%{http_code}' --cacert "$SERVER_CA" --cert "$d/dev/agent/device.crt" \
  --key "$d/dev/identity.pem" "$SERVER_URL/api/v1/device/images/$v"; }
downloads() { eq "$(download)" 200 "download ($1)"; cmp -s "$d/got" "$d/app.img" || fail "other bytes ($1)"; }
downloads "dir"
[ -f "$s/images/$v" ] || fail "no file for the image"

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }
stop_server
# another --blobs: refused, naming the fix
expect 1 "$server" --data-dir "$s" --listen 127.0.0.1:0 --blobs database
err_has "rampart-server blobs move --from dir --to database"
err_has "1 blob(s) (images/$v among them) are kept with --blobs dir"
expect 0 "$server" blobs move --from dir --to database --data-dir "$s"
err_has "1 blob(s) moved from dir to database (0 there already)"
[ ! -e "$s/images/$v" ] || fail "the file is still there"
expect 0 "$server" blobs move --data-dir "$s" --from dir --to database
err_has "0 blob(s) moved from dir to database (0 there already)"
expect 2 "$server" blobs move --from dir --to dir --data-dir "$s"
expect 2 "$server" blobs move --from dir --data-dir "$s"
RAMPART_SERVER=$server start_server "$s" --blobs database
downloads "database"

stop_server
expect 1 "$server" --data-dir "$s" --listen 127.0.0.1:0
err_has "rampart-server blobs move --from database --to dir"
expect 0 "$server" blobs move --from database --to dir --data-dir "$s"
err_has "1 blob(s) moved from database to dir"
RAMPART_SERVER=$server start_server "$s"
downloads "dir again"

# the blob lost (a restore gone wrong): a clear 500 in JSON, and the server serves on
rm "$s/images/$v"
eq "$(download)" 500 "download of a lost blob"
jq -e '.error == "blob_missing"' "$d/got" >/dev/null || fail "not a JSON error: $(head -c 300 "$d/got")"
http GET "/api/v1/tenants/$acme/images/$v" "$ADMIN_TOKEN"; is_status 200
echo PASS
