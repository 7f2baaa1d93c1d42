#!/usr/bin/env bash
# bench/paging: how long a page of the operator's lists takes with N devices in one tenant (all in
# one group, all selected by one deployment, a third of them reported): the devices list (first
# page, a page from the middle, a filtered page), the group's devices, and a deployment's page of
# devices, whose counts cover every device. The devices are inserted straight into the store with
# sqlite3 (claiming 100,000 through the API would time the claim, not the page). Prints the median
# of R calls of each, in milliseconds, and each as a ratio to the reference measured in the same
# run: the devices list's first page of 100 (a page read straight from an index, over the same
# HTTPS, token check and JSON).
# Usage: bench/paging.sh BIN_DIR [--devices N] [--rounds R]
set -euo pipefail
bin=$(cd "${1:?usage: bench/paging.sh BIN_DIR}" && pwd)
shift
devices=100000 rounds=9
while [ $# -gt 0 ]; do
  case $1 in
    --devices) devices=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "bench/paging: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v sqlite3 >/dev/null || { echo "bench/paging: sqlite3 is missing" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench-paging.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
rampart=$bin/rampart
quiet() { "$@" >/dev/null 2>&1; }

"$bin/rampart-server" --data-dir "$work/srv" --listen 127.0.0.1:0 --port-file "$work/port" \
  >"$work/srv.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -s "$work/port" ] && break; sleep 0.1; done
export RAMPART_SERVER="https://127.0.0.1:$(cat "$work/port")"
export RAMPART_CA_FILE=$work/srv/server-ca.pem RAMPART_TOKEN_FILE=$work/srv/admin.token
tenant=$("$rampart" tenant create bench)
quiet "$rampart" key generate --type ecdsa-p256 --out "$work/img.key"
quiet "$rampart" key public --key "$work/img.key" --out "$work/img.pub"
quiet "$rampart" key generate --type ecdsa-p256 --out "$work/root.key"
quiet "$rampart" image-key add --tenant "$tenant" --key "$work/img.pub" --name bench
quiet "$rampart" update-root sign --tenant "$tenant" --root-key "$work/root.key" --out "$work/root.json"
head -c 4096 /dev/urandom >"$work/v1.bin"
quiet "$rampart" image sign --key "$work/img.key" --version 1.0.0 --type system "$work/v1.bin" "$work/v1.img"
v1=$("$rampart" image upload --tenant "$tenant" --component system "$work/v1.img" 2>/dev/null)
quiet "$rampart" product create --tenant "$tenant" Bench

# N devices (IDs: 64 hex digits, the SHA-256 of their number) in the group "Field Test".
sqlite3 "$work/srv/rampart.db" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
CREATE TEMP TABLE n(i INTEGER PRIMARY KEY);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $devices)
INSERT INTO n SELECT i FROM c;
INSERT INTO devices (id, tenant_id, claimed_at)
  SELECT lower(hex(randomblob(32))), '$tenant', strftime('%s','now') FROM n;
INSERT INTO group_members (device_id, group_id, assigned)
  SELECT d.id, g.id, strftime('%s','now') FROM devices d, device_groups g, products p
  WHERE d.tenant_id = '$tenant' AND g.product_id = p.id AND p.tenant_id = '$tenant'
    AND p.name = 'Bench' AND g.name = 'Field Test';
COMMIT;
SQL
dep=$("$rampart" deployment create --tenant "$tenant" --product Bench --group "Field Test" "$v1" |
  grep -o 'd_[0-9a-f]*' | head -1)
[ -n "$dep" ] || { echo "bench/paging: no deployment" >&2; exit 1; }
# A rollout under way: a third of the devices reached it and reported (1 in 10 failed).
sqlite3 "$work/srv/rampart.db" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
INSERT INTO deployment_reached (deployment_id, device_id, at)
  SELECT '$dep', device_id, strftime('%s','now') FROM group_members WHERE rowid % 3 = 0;
INSERT INTO device_updates (device_id, deployment_id, state, detail, at)
  SELECT device_id, '$dep', CASE WHEN rowid % 10 = 0 THEN 'failed' ELSE 'installed' END, '',
    strftime('%s','now') FROM group_members WHERE rowid % 3 = 0;
COMMIT;
SQL
group=$(sqlite3 "$work/srv/rampart.db" "SELECT g.id FROM device_groups g JOIN products p ON p.id = g.product_id WHERE p.name = 'Bench' AND g.name = 'Field Test'")
product=$(sqlite3 "$work/srv/rampart.db" "SELECT id FROM products WHERE name = 'Bench'")
mid=$(sqlite3 "$work/srv/rampart.db" "SELECT id FROM devices ORDER BY id LIMIT 1 OFFSET $((devices / 2))")
T="$RAMPART_SERVER/api/v1/tenants/$tenant"
ms() { # ms PATH: the median time of the calls, in ms; checks each answers 200
  local i t=()
  for i in $(seq 1 "$rounds"); do
    t+=("$(curl -sS -o "$work/body" -w '%{http_code} %{time_total}' --cacert "$RAMPART_CA_FILE" \
      -H "Authorization: Bearer $(cat "$RAMPART_TOKEN_FILE")" "$T$1")")
    case ${t[-1]} in 200\ *) ;; *) echo "bench/paging: $1: ${t[-1]}" >&2; exit 1 ;; esac
  done
  printf '%s\n' "${t[@]}" | awk '{print $2 * 1000}' | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR + 1) / 2)]}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
row() { # row LABEL PATH
  local t
  t=$(ms "$2")
  printf '%-56s %8s ms  ratio %s\n' "$1" "$t" "$(ratio "$t" "$ref")"
}
echo "devices: $devices"
ref=$(ms "/devices?limit=100")
printf '%-56s %8s ms  (reference)\n' "GET devices?limit=100 (first page)" "$ref"
row "GET devices?limit=100&after=<middle>" "/devices?limit=100&after=$mid"
row "GET devices?limit=100&prefix=abc" "/devices?limit=100&prefix=abc"
row "GET devices?limit=1000" "/devices?limit=1000"
row "GET products/P/groups/G/devices (every device, as before)" "/products/$product/groups/$group/devices"
row "GET products/P/groups/G/devices?limit=100" "/products/$product/groups/$group/devices?limit=100"
row "GET deployments/D?limit=100 (counts over all)" "/deployments/$dep?limit=100"
row "GET deployments/D (every device listed, as before)" "/deployments/$dep"
