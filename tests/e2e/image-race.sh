#!/usr/bin/env bash
# End to end, POST images is idempotent per upload (issue 12): many POSTs of one finished upload
# at once all learn the one image - one 201 (the POST that recorded it), every other 200, the
# same ID - and none is a 500 or a 409; a retry afterwards is 200 with it too, and GET of the
# upload names it. Run on SQLite with the blobs in the data directory (no argument), and with
# "pg" on a real PostgreSQL with --blobs database.
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR

if [ "${1-}" = pg ]; then
  start_pg
  start_server "$d/srv" --database "$PG_URI" --blobs database --threads 4
else
  start_server "$d/srv" --threads 4
fi
tenant_with_root "$d/root.json"
# an image of a few chunks, so that each POST reads a while
{ printf '#!/bin/sh\nexit 0\n# '; head -c 1500000 /dev/urandom | base64 -w0; echo; } >"$d/big.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 2.0.0 --security-counter 1 --type app \
  "$d/big.sh" "$d/big.img"
size=$(stat -c %s "$d/big.img"); want=$(sha256sum "$d/big.img" | cut -c1-64)
printf '{"size": %s}' "$size" >"$d/up.json"
http POST "/api/v1/tenants/$acme/uploads" "$ADMIN_TOKEN" "$d/up.json"; is_status 201
up=$(jq -r .id "$d/body"); max=$(jq -r .chunk_max "$d/body")
for ((off = 0; off < size; off += max)); do
  dd if="$d/big.img" of="$d/chunk" bs="$max" skip=$((off / max)) count=1 status=none
  http PUT "/api/v1/tenants/$acme/uploads/$up?offset=$off" "$ADMIN_TOKEN" "$d/chunk" application/octet-stream
  is_status 200
done
body_has ".received == $size"

printf '{"upload": "%s", "component": "app"}' "$up" >"$d/img.json"
n=16 posts=()
for ((i = 0; i < n; i++)); do
  curl -s -o "$d/post$i.json" -w '%{http_code}' --cacert "$SERVER_CA" -X POST \
    -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")" -H "Content-Type: application/json" \
    --data-binary "@$d/img.json" "$SERVER_URL/api/v1/tenants/$acme/images" >"$d/post$i.code" &
  posts+=($!)
done
wait "${posts[@]}" # (the curls only: the server runs in the background too)
created=0
for ((i = 0; i < n; i++)); do
  code=$(cat "$d/post$i.code")
  case $code in
  201) created=$((created + 1)) ;;
  200) ;;
  *) fail "POST $i of $n at once: $code $(head -c 300 "$d/post$i.json")" ;;
  esac
  eq "$(jq -r .id "$d/post$i.json")" "$want" "the image POST $i learnt"
done
eq "$created" 1 "POSTs answered 201"

# a retry of a POST that succeeded (its answer lost): the same image, 200
http POST "/api/v1/tenants/$acme/images" "$ADMIN_TOKEN" "$d/img.json"; is_status 200
body_has ".id == \"$want\""
# as another component: refused, as for bytes the tenant uploaded as another component
printf '{"upload": "%s", "component": "other"}' "$up" >"$d/other.json"
http POST "/api/v1/tenants/$acme/images" "$ADMIN_TOKEN" "$d/other.json"; is_status 409
http GET "/api/v1/tenants/$acme/uploads/$up" "$ADMIN_TOKEN"; is_status 200
body_has ".image == \"$want\" and .received == $size"
http GET "/api/v1/tenants/$acme/images" "$ADMIN_TOKEN"; is_status 200
body_has '.images | length == 1'
if [ "${1-}" != pg ]; then
  [ -f "$d/srv/images/$want" ] && [ ! -e "$d/srv/uploads/$up" ] ||
    fail "the image's blob is not where it belongs: $(ls -R "$d/srv/images" "$d/srv/uploads")"
fi
echo PASS
