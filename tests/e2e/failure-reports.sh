#!/usr/bin/env bash
# End to end, the service's side of failure reports (server/device/reports.c): devices post batches over
# mutual TLS with their certificates; the same crash on two devices is one bucket of count 2;
# after `rampart symbols upload` of the crashing binary's debug file, `rampart failure show` names
# the function and its source line (as eu-addr2line does); another top frame is another bucket;
# malformed, oversized, replayed, flooding and other-tenant reports are refused, deduplicated or
# kept apart, and counted on /metrics. (The device's side: H1's crash capture, H2's queue.)
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

# A real debuginfod server (Debian's, on loopback; it has no option to bind one address) for
# build IDs no tenant uploaded: it scans $d/dfs, empty until a second build of the test app is
# put there below.
mkdir -p "$d/dfs"
dfs_start() {
  /usr/bin/debuginfod -F -p "$PORT" -d "$d/dfs.sqlite" -t 1 -g 0 -c 1 "$d/dfs" >"$d/dfs.log" 2>&1 &
}
dfs_up() { listens "$SERVE_PID" "$PORT" && curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null; }
serve_on_free_port "$d/dfs.log" dfs_start dfs_up
dport=$PORT
start_server "$d/srv" --debuginfod-url "http://127.0.0.1:$dport"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant create globex; globex=$(cat "$d/out")
for t in "$acme" "$globex"; do
  expect 0 "$RAMPART" tenant policy --tenant "$t" --allow-debug yes --require-components no
done
expect 0 "$RAMPART" token create --tenant "$globex" --role admin; cp "$d/out" "$d/globex.token"
# device NAME TENANT: a provisioned, claimed, attested device with its certificate in $d/NAME.
device() {
  expect 0 "$AGENT" provision --state-dir "$d/$1" --rot soft; tail -n1 "$d/out" >"$d/$1.id"
  expect 0 "$RAMPART" device claim --tenant "$2" "$(cat "$d/$1.id")"
  expect 0 "$AGENT" attest --state-dir "$d/$1" --server "$SERVER_URL" --server-ca "$SERVER_CA"
}
device one "$acme"; device two "$acme"; device flood "$acme"; device other "$globex"
one=$(cat "$d/one.id"); two=$(cat "$d/two.id")
# Device two is in a group, device one in none: the buckets count per group.
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$two"
expect 0 "$RAMPART" device-group list --tenant "$acme" --product Thermostat --output json
field=$(jq -r '(if type == "array" then . else .groups end)[] | select(.name == "Field Test") | .id' "$d/out")
[ -n "$field" ] || fail "no Field Test group: $(cat "$d/out")"

# post DEVICE FILE: a batch; the status in $status, the answer in body, headers in $d/headers.
post() {
  status=$(curl -s -o "$d/body" -D "$d/headers" -w '%{http_code}' --cacert "$SERVER_CA" \
    --cert "$d/$1/agent/device.crt" --key "$d/$1/identity.pem" \
    -H 'Content-Type: application/json' --data-binary "@$2" "$SERVER_URL/api/v1/device/reports")
}

# --- a real binary, built with -g: its build ID and two functions' offsets -------------------
cat >"$d/app.c" <<'EOF'
#include <stdio.h>
volatile int *target;
__attribute__((noinline)) int crash_here(int x)
{
    return *target + x; /* the fault */
}
__attribute__((noinline)) int other_place(int x)
{
    return *target - x;
}
int main(int argc, char **argv)
{
    (void)argv;
    printf("%d\n", argc > 5 ? other_place(argc) : crash_here(argc));
    return 0;
}
EOF
gcc -g -O1 -Wl,--build-id -o "$d/app" "$d/app.c" || fail "cannot build the test app"
objcopy --only-keep-debug "$d/app" "$d/app.debug"
build_id=$(readelf -n "$d/app" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
[ ${#build_id} -eq 40 ] || fail "no build ID in the test app"
# offset_of FUNCTION: the first instruction's offset past the function's start that a source
# line holds (what a fault there would report), as 0x hex.
offset_of() {
  local start
  start=$(nm "$d/app" | awk -v f="$1" '$3 == f { print $1 }')
  [ -n "$start" ] || fail "no $1 in the test app"
  printf '0x%x' $((16#$start))
}
crash_off=$(offset_of crash_here); other_off=$(offset_of other_place); main_off=$(offset_of main)
# What elfutils says of them, independently of the service.
# FILE:LINE[:COLUMN] (the test directory has no colon)
want_line=$(eu-addr2line -e "$d/app" "$crash_off" | sed -E 's/^([^:]*):([0-9]+).*/\2/')
want_file=$(eu-addr2line -e "$d/app" "$crash_off" | sed -E 's/^([^:]*):([0-9]+).*/\1/')
eu-addr2line -f -e "$d/app" "$crash_off" | head -n1 | grep -qx crash_here || fail "eu-addr2line does not name crash_here"
[ -n "$want_line" ] && [ "$want_line" -gt 0 ] || fail "eu-addr2line gave no line"

# crash SEQ TOP_OFFSET [VERSION]: a crash report as the device sends it.
crash() {
  printf '{"seq": %s, "at": 1764300000, "kind": "crash", "component": "sensor", "version": "%s",
   "reason": "killed by SIGSEGV", "code": "",
   "crash": {"signal": 11, "signal_name": "SIGSEGV", "code": 1, "address": "0x0", "uptime_ms": 1500,
    "frames": [{"build_id": "%s", "module": "app", "offset": "%s"},
               {"build_id": "%s", "module": "app", "offset": "0x%x"}],
    "stderr": "about to crash\\n"}}' "$1" "${3:-1.0.0+0}" "$build_id" "$2" "$build_id" $((main_off + 8))
}
event() { printf '{"seq": %s, "at": 1764300000, "kind": "%s", "component": "", "version": "", "reason": "%s", "code": "%s"}' "$@"; }
batch() { local IFS=,; printf '{"reports": [%s], "dropped": 0}\n' "$*"; }

# --- the same crash on two devices: one bucket, count 2 --------------------------------------
batch "$(crash 1 "$crash_off")" "$(event 2 image_refused "signed by an unknown key" unknown_key)" >"$d/b1.json"
post one "$d/b1.json"; is_status 200; body_has '.stored == 2 and .duplicates == 0 and .refused == []'
batch "$(crash 7 "$crash_off" 1.1.0+0)" >"$d/b2.json"
post two "$d/b2.json"; is_status 200; body_has '.stored == 1'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '.buckets | length == 1' "$d/out" >/dev/null || fail "not one bucket: $(cat "$d/out")"
jq -e '.buckets[0] | .count == 2 and .device_failed == 0 and .component == "sensor" and .signal_name == "SIGSEGV"' "$d/out" >/dev/null || fail "bucket: $(cat "$d/out")"
jq -e '.buckets[0].counts.version == {"1.0.0+0": 1, "1.1.0+0": 1}' "$d/out" >/dev/null || fail "versions: $(cat "$d/out")"
jq -e --arg g "$field" '.buckets[0].counts.group == {"": 1, ($g): 1} and (.buckets[0].counts.day | add == 2)' "$d/out" >/dev/null || fail "groups, days: $(cat "$d/out")"
bucket=$(jq -r '.buckets[0].id' "$d/out")
expect 0 "$RAMPART" failure list --tenant "$acme"
out_has "$bucket       2       0  sensor       SIGSEGV" # COUNT, FAILED (from failed devices)
out_has "1.0.0+0 (1), 1.1.0+0 (1)"
# Before the symbols: frames by build ID and offset, no names.
expect 0 "$RAMPART" failure show --tenant "$acme" "$bucket" --output json
jq -e '.symbolicated == false and (.frames[0] | has("function") | not) and (.samples | length == 2)' "$d/out" >/dev/null || fail "show before symbols: $(cat "$d/out")"

# --- the debug file names the function and its line ------------------------------------------
# One request body (raw ELF, at most 1 MiB) is one form of the route...
http POST "/api/v1/tenants/$acme/symbols" "$ADMIN_TOKEN" "$d/app.debug" application/octet-stream
is_status 201; body_has ".build_id == \"$build_id\""
# ...and the CLI sends any debug file as a chunked upload: this one is 3 MiB (real ones are tens).
head -c 3M /dev/urandom >"$d/pad"
objcopy --add-section .note.pad="$d/pad" "$d/app.debug" "$d/big.debug" || fail "cannot pad"
[ "$(stat -c %s "$d/big.debug")" -gt 3145728 ] || fail "the padded debug file is not over 3 MiB"
expect 0 "$RAMPART" symbols upload --tenant "$acme" "$d/big.debug"; out_has "$build_id"
cmp -s "$d/srv/symbols/$acme/$build_id.debug" "$d/big.debug" || fail "the kept debug file is not the uploaded one"
# Past the bound (RP_SYMBOLS_MAX, 256 MiB): refused before a byte is sent.
http POST "/api/v1/tenants/$acme/uploads" "$ADMIN_TOKEN" <(echo '{"size": 268435457, "for": "symbols"}')
is_status 413
# An upload may be that large for a debug file ("for": "symbols"); an image's stays at most
# 128 MiB (the default), and the image route refuses a larger upload before its bytes are looked
# at; a debug file whose upload is missing bytes waits for them.
http POST "/api/v1/tenants/$acme/uploads" "$ADMIN_TOKEN" <(echo '{"size": 134217729}'); is_status 413
http POST "/api/v1/tenants/$acme/uploads" "$ADMIN_TOKEN" <(echo '{"size": 1, "for": "firmware"}'); is_status 400
http POST "/api/v1/tenants/$acme/uploads" "$ADMIN_TOKEN" <(echo '{"size": 134217729, "for": "symbols"}'); is_status 201
big_upload=$(jq -r .id "$d/body")
http POST "/api/v1/tenants/$acme/images" "$ADMIN_TOKEN" <(printf '{"upload": "%s", "component": "app"}' "$big_upload")
is_status 413
http POST "/api/v1/tenants/$acme/uploads" "$ADMIN_TOKEN" <(echo '{"size": 100, "for": "symbols"}'); is_status 201
http POST "/api/v1/tenants/$acme/symbols" "$ADMIN_TOKEN" <(printf '{"upload": "%s"}' "$(jq -r .id "$d/body")")
is_status 409
expect 1 "$RAMPART" symbols upload --tenant "$acme" "$d/app.c"; err_has "not a debug file"
# A debug file whose sections claim far more once decompressed (a compressed .debug_info whose
# header says 1 GiB; a few KiB of zlib can claim that): refused, never inflated by libdw.
objcopy --compress-debug-sections=zlib "$d/app.debug" "$d/bomb.debug" || fail "cannot compress"
info_off=$(readelf -S -W "$d/bomb.debug" 2>/dev/null | sed -n 's/.*\] \.debug_info  *[A-Z]*  *[0-9a-f]* \([0-9a-f]*\) .*/\1/p')
[ -n "$info_off" ] || fail "no .debug_info in the compressed copy"
# Elf64_Chdr: ch_type, ch_reserved, then ch_size (little-endian): 0x40000000.
printf '\000\000\000\100\000\000\000\000' | dd of="$d/bomb.debug" bs=1 seek=$((16#$info_off + 8)) conv=notrunc status=none
expect 1 "$RAMPART" symbols upload --tenant "$acme" "$d/bomb.debug"; err_has "decompressed"
expect 0 "$RAMPART" failure show --tenant "$acme" "$bucket" --output json
jq -e --arg l "$want_line" '.symbolicated == true and .frames[0].function == "crash_here" and .frames[0].line == ($l | tonumber)' "$d/out" >/dev/null || fail "show after symbols: $(cat "$d/out")"
# Its top frames all name a function and line now: it is shown under its symbolic key, made of
# the one build-level bucket it was; that ID still finds it.
shown=$(jq -r .id "$d/out")
jq -e --arg b "$bucket" '.key == "symbolic" and .id != $b and (.builds | map(.id)) == [$b] and .count == 2' "$d/out" >/dev/null || fail "show after symbols: $(cat "$d/out")"
jq -e '.frames[1].function == "main" and .stack[0].function == "crash_here"' "$d/out" >/dev/null || fail "outer frame: $(cat "$d/out")"
expect 0 "$RAMPART" failure show --tenant "$acme" "$bucket"
out_has "crash_here ($want_file:$want_line)"
out_has "versions:      1.0.0+0: 1 1.1.0+0: 1"
expect 0 "$RAMPART" failure list --tenant "$acme"
out_has "app+$crash_off  crash_here ($want_file:$want_line)"
# Another tenant's symbols do not name acme's frames, nor do its operators see acme's buckets.
http GET "/api/v1/tenants/$acme/failures/$bucket" "$d/globex.token"; is_status 404
http GET "/api/v1/tenants/$globex/failures/$bucket" "$d/globex.token"; is_status 404

# --- another top frame: another bucket ----------------------------------------------------------
batch "$(crash 8 "$other_off")" >"$d/b3.json"
post two "$d/b3.json"; is_status 200; body_has '.stored == 1'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '.buckets | length == 2' "$d/out" >/dev/null || fail "not two buckets: $(cat "$d/out")"
jq -e --arg b "$shown" '[.buckets[] | select(.id == $b) | .count] == [2]' "$d/out" >/dev/null || fail "first bucket changed: $(cat "$d/out")"
other=$(jq -r --arg b "$shown" '.buckets[] | select(.id != $b) | .id' "$d/out")
# Two buckets of one build ID: a list opens its debug file once (a device can make any number of
# buckets of a build ID; each must not cost a worker another libdw open).
opened() { http GET /metrics -; sed -n 's/^rampart_symbols_files_opened_total //p' "$d/body"; }
before=$(opened); [ -n "$before" ] || fail "no rampart_symbols_files_opened_total on /metrics"
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '[.buckets[] | .frames[0].function] | sort == ["crash_here", "other_place"]' "$d/out" >/dev/null || fail "both buckets named: $(cat "$d/out")"
eq "$(opened)" $((before + 1)) "debug files opened by one list of two buckets of one build ID"
# Named once by the confined reader (rampart-symbolize), then from the service's cache: listing
# again starts no reader.
runs() { http GET /metrics -; sed -n 's/^rampart_symbols_runs_total{result="ok"} //p' "$d/body"; }
runs_before=$(runs); [ -n "$runs_before" ] || fail "no rampart_symbols_runs_total on /metrics"
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '[.buckets[] | .frames[0].function] | sort == ["crash_here", "other_place"]' "$d/out" >/dev/null || fail "named from the cache: $(cat "$d/out")"
eq "$(runs)" "$runs_before" "readers started by listing buckets already named"
expect 0 "$RAMPART" failure show --tenant "$acme" "$other" --output json
jq -e '.frames[0].function == "other_place" and .count == 1' "$d/out" >/dev/null || fail "second bucket: $(cat "$d/out")"
expect 0 "$RAMPART" failure list --tenant "$acme" --limit 1 --output json
jq -e '(.buckets | length == 1) and .next_offset == 1' "$d/out" >/dev/null || fail "page: $(cat "$d/out")"

# --- replayed: acknowledged, not stored twice, counted ----------------------------------------
post one "$d/b1.json"; is_status 200; body_has '.stored == 0 and .duplicates == 2'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e --arg b "$shown" '[.buckets[] | select(.id == $b) | .count] == [2]' "$d/out" >/dev/null || fail "a replay counted: $(cat "$d/out")"

# --- the events: every stored report, by device and kind -----------------------------------------
expect 0 "$RAMPART" event list --tenant "$acme" --output json
jq -e '.reports | length == 4' "$d/out" >/dev/null || fail "event list: $(cat "$d/out")"
expect 0 "$RAMPART" event list --tenant "$acme" --device "$one" --kind image_refused --output json
jq -e '.reports | length == 1 and .[0].code == "unknown_key" and .[0].report.reason == "signed by an unknown key"' "$d/out" >/dev/null || fail "event list --kind: $(cat "$d/out")"
expect 0 "$RAMPART" event list --tenant "$acme" --device "$two"
out_has "crash"; out_has "bucket $bucket"
# What the device's queue dropped is kept with what the service kept of it.
printf '{"reports": [%s], "dropped": 7}\n' "$(event 3 cert_expiring "renewal fails" "")" >"$d/b5.json"
post one "$d/b5.json"; is_status 200; body_has '.stored == 1'
expect 0 "$RAMPART" event list --tenant "$acme" --device "$one" --output json
jq -e '.device == {"kept": 3, "pruned": 0, "dropped": 7} and (.reports | length == 3)' "$d/out" >/dev/null || fail "device counts: $(cat "$d/out")"
expect 0 "$RAMPART" event list --tenant "$acme" --device "$one"
out_has "device: 3 report(s) kept, 0 pruned by the service, 7 dropped by the device"
# Another tenant's token learns nothing of acme's device.
http GET "/api/v1/tenants/$globex/reports?device=$one" "$d/globex.token"; is_status 200
body_has '.reports == [] and .device == {"kept": 0, "pruned": 0, "dropped": 0}'
expect 1 "$RAMPART" event list --tenant "$acme" --kind nonsense
expect 1 "$RAMPART" failure show --tenant "$acme" "../devices"; err_has "no such bucket"

# --- other tenants: a report is about the calling device, in its tenant only ----------------------
batch "$(crash 1 "$crash_off")" >"$d/g1.json"
post other "$d/g1.json"; is_status 200; body_has '.stored == 1'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e --arg b "$shown" '[.buckets[] | select(.id == $b) | .count] == [2]' "$d/out" >/dev/null || fail "globex's crash counted in acme: $(cat "$d/out")"
RAMPART_TOKEN_FILE=$d/globex.token expect 0 "$RAMPART" failure list --tenant "$globex" --output json
jq -e --arg b "$bucket" '.buckets | length == 1 and .[0].id == $b and .[0].count == 1' "$d/out" >/dev/null || fail "globex: $(cat "$d/out")"
# Globex has no debug file: its bucket stays unnamed.
RAMPART_TOKEN_FILE=$d/globex.token expect 0 "$RAMPART" failure show --tenant "$globex" "$bucket" --output json
jq -e '.symbolicated == false' "$d/out" >/dev/null || fail "acme's symbols named globex's frames"
# A report cannot say whose it is: a tenant or device key is refused.
printf '{"reports": [%s], "tenant": "%s"}\n' "$(event 40 clock_jump x "")" "$acme" >"$d/bad.json"
post other "$d/bad.json"; is_status 400
printf '{"reports": [{"seq": 41, "at": 1, "kind": "clock_jump", "component": "", "version": "", "reason": "", "code": "", "device": "%s"}]}\n' "$one" >"$d/bad.json"
post other "$d/bad.json"; is_status 200; body_has '.stored == 0 and .refused[0].seq == 41'
expect 0 "$RAMPART" event list --tenant "$acme" --output json
jq -e '.reports | length == 5' "$d/out" >/dev/null || fail "globex's device wrote into acme: $(cat "$d/out")"
# Without a certificate, nothing.
status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" --data-binary "@$d/b1.json" "$SERVER_URL/api/v1/device/reports")
[ "$status" = 401 ] || [ "$status" = 403 ] || fail "a batch without a certificate: HTTP $status"

# --- the same source rebuilt: one bucket by function and line across builds --------------------
# Build 2 (another build ID, version 2.0.0+0) crashes at the same place before its debug file is
# uploaded: a bucket of its own (its frames name nothing yet); once uploaded, it joins the first:
# one bucket, its counts per version holding both builds'. Build 3's debug file is uploaded before
# its first crash: the new bucket joins at once. The other crash (other_place) stays apart.
# build N: the test app again, with build ID N (20 bytes); its debug file and offsets.
build() {
  gcc -g -O1 "-Wl,--build-id=0x$(printf '%040x' "$1")" -o "$d/app$1" "$d/app.c" || fail "cannot build app $1"
  objcopy --only-keep-debug "$d/app$1" "$d/app$1.debug"
  bid[$1]=$(readelf -n "$d/app$1" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
  [ "${bid[$1]}" != "$build_id" ] && [ ${#bid[$1]} -eq 40 ] || fail "app $1's build ID: ${bid[$1]}"
  boff[$1]=$(printf '0x%x' $((16#$(nm "$d/app$1" | awk '$3 == "crash_here" { print $1 }'))))
  bmain[$1]=$(printf '0x%x' $((16#$(nm "$d/app$1" | awk '$3 == "main" { print $1 }') + 8)))
}
# crash_of N SEQ VERSION: a crash of build N at crash_here.
crash_of() {
  printf '{"seq": %s, "at": 1764300000, "kind": "crash", "component": "sensor", "version": "%s",
   "reason": "killed by SIGSEGV", "code": "",
   "crash": {"signal": 11, "signal_name": "SIGSEGV", "code": 1, "address": "0x0", "uptime_ms": 1500,
    "frames": [{"build_id": "%s", "module": "app", "offset": "%s"},
               {"build_id": "%s", "module": "app", "offset": "%s"}], "stderr": ""}}' "$2" "$3" "${bid[$1]}" "${boff[$1]}" "${bid[$1]}" "${bmain[$1]}"
}
build 2; build 3
batch "$(crash_of 2 20 2.0.0+0)" >"$d/r2.json"
post one "$d/r2.json"; is_status 200; body_has '.stored == 1'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '.buckets | length == 3' "$d/out" >/dev/null || fail "build 2 before its symbols: $(cat "$d/out")"
bucket2=$(jq -r --arg a "$shown" --arg b "$other" '.buckets[] | select(.id != $a and .id != $b) | .id' "$d/out")
jq -e --arg b "$bucket2" '.buckets[] | select(.id == $b) | .key == "build" and .counts.version == {"2.0.0+0": 1}' "$d/out" >/dev/null || fail "build 2's own bucket: $(cat "$d/out")"
expect 0 "$RAMPART" symbols upload --tenant "$acme" "$d/app2.debug"; out_has "${bid[2]}"
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '.buckets | length == 2' "$d/out" >/dev/null || fail "build 2 did not join: $(cat "$d/out")"
jq -e --arg a "$shown" --arg b "$bucket" --arg b2 "$bucket2" '.buckets[] | select(.id == $a) | .count == 3 and .key == "symbolic" and .counts.version == {"1.0.0+0": 1, "1.1.0+0": 1, "2.0.0+0": 1} and ((.builds | map(.id) | sort) == ([$b, $b2] | sort))' "$d/out" >/dev/null || fail "the merged bucket: $(cat "$d/out")"
jq -e --arg o "$other" '[.buckets[] | select(.id == $o) | .count] == [1]' "$d/out" >/dev/null || fail "the other crash joined: $(cat "$d/out")"
# Build 3: symbols first, then its crash (a new bucket, keyed as it comes).
expect 0 "$RAMPART" symbols upload --tenant "$acme" "$d/app3.debug"; out_has "${bid[3]}"
batch "$(crash_of 3 21 3.0.0+0)" "$(crash_of 2 22 2.0.0+0)" >"$d/r3.json"
post two "$d/r3.json"; is_status 200; body_has '.stored == 2'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e '.buckets | length == 2' "$d/out" >/dev/null || fail "build 3 did not join: $(cat "$d/out")"
jq -e --arg a "$shown" '.buckets[] | select(.id == $a) | .count == 5 and (.builds | length == 3) and .counts.version == {"1.0.0+0": 1, "1.1.0+0": 1, "2.0.0+0": 2, "3.0.0+0": 1}' "$d/out" >/dev/null || fail "the merged bucket: $(cat "$d/out")"
# Every ID finds it: its own, and each build-level bucket's.
for b in "$shown" "$bucket" "$bucket2"; do
  expect 0 "$RAMPART" failure show --tenant "$acme" "$b" --output json
  jq -e --arg a "$shown" '.id == $a and .count == 5 and (.samples | length == 5) and .frames[0].function == "crash_here"' "$d/out" >/dev/null || fail "show $b: $(cat "$d/out")"
done
expect 0 "$RAMPART" failure show --tenant "$acme" "$bucket2"
out_has "key:           symbolic"; out_has "$bucket2  2"
out_has "versions:      1.0.0+0: 1 1.1.0+0: 1 2.0.0+0: 2 3.0.0+0: 1"

# --- malformed and oversized: refused with the reason -------------------------------------------
bad() { # STATUS REASON-FRAGMENT JSON
  printf '%s\n' "$3" >"$d/bad.json"; post one "$d/bad.json"; is_status "$1"
  jq -e --arg m "$2" '.message | contains($m)' "$d/body" >/dev/null || fail "$3: $(head -c 300 "$d/body")"
}
bad 400 "not a JSON object" '[1, 2]'
bad 400 "not a JSON object" '{"reports": ['
bad 400 "and nothing else" '{"reports": [], "extra": 1}'
bad 400 "and nothing else" '{"reports": {}}'
bad 400 '"dropped" is not a count' '{"reports": [], "dropped": -1}'
many=(); for i in $(seq 100 164); do many+=("$(event "$i" clock_jump x "")"); done
bad 413 "at most 64 reports" "$(batch "${many[@]}")"
{ printf '{"reports": [], "pad": "'; head -c 270000 /dev/zero | tr '\0' x; printf '"}'; } >"$d/big.json"
post one "$d/big.json"; is_status 413
# A bad report in a good batch: refused by itself, with its number and reason; the rest stored.
batch "$(event 50 clock_jump "jumped" "")" "$(event 51 no_such_kind x "")" \
  "$(crash 52 "$crash_off" | jq -c '.crash.signal = 99')" \
  "$(event 53 clock_jump "$(printf '%0256d' 0)" "")" \
  "$(crash 54 "$crash_off" | jq -c '.crash.frames[0].offset = "12"')" \
  "$(event 55 exit x "" | jq -c '.crash = {}')" >"$d/b4.json"
post one "$d/b4.json"; is_status 200
body_has '.stored == 1 and ([.refused[].seq] == [51, 52, 53, 54, 55])'
body_has '.refused[0].reason | contains("kind")'
body_has '.refused[1].reason | contains("signal")'

# --- flooding: one device's batches are limited; the others go on ---------------------------------
batch >"$d/empty.json"
# 60 batches on one connection, faster than 1 a second: the burst of 30 passes, then 429s.
urls=(); for i in $(seq 1 60); do urls+=(-o /dev/null "$SERVER_URL/api/v1/device/reports"); done
curl -s -D "$d/headers" -w '%{http_code}\n' --cacert "$SERVER_CA" \
  --cert "$d/flood/agent/device.crt" --key "$d/flood/identity.pem" \
  -H 'Content-Type: application/json' --data-binary "@$d/empty.json" "${urls[@]}" >"$d/codes"
ok=$(grep -c "^200$" "$d/codes" || true); limited=$(grep -c "^429$" "$d/codes" || true)
[ "$ok" -ge 30 ] && [ "$limited" -ge 1 ] && [ $((ok + limited)) -eq 60 ] || fail "flood: $ok passed, $limited limited: $(sort "$d/codes" | uniq -c)"
grep -qi '^retry-after: [0-9]' "$d/headers" || fail "429 without Retry-After"
post two "$d/empty.json"; is_status 200

# --- crash capture off for a group (the operator's privacy switch, docs/failure-reporting.md) -------
# The group's devices learn it in the status report's answer; a crash report from one of them is
# refused, counted, whatever the device believes; other reports, and other groups' crashes, go on.
status_of() { # DEVICE: the status report's answer in body
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" \
    --cert "$d/$1/agent/device.crt" --key "$d/$1/identity.pem" \
    -H 'Content-Type: application/json' --data-binary '{}' "$SERVER_URL/api/v1/device/status")
}
status_of two; is_status 200; body_has '.settings == {"crash_capture": true}'
expect 0 "$RAMPART" device-group set --tenant "$acme" --product Thermostat "Field Test" --crash-capture off --output json
jq -e '.crash_capture == false and .name == "Field Test"' "$d/out" >/dev/null || fail "set: $(cat "$d/out")"
expect 0 "$RAMPART" device-group show --tenant "$acme" --product Thermostat "Field Test"
out_has "crash capture: off"
expect 0 "$RAMPART" device-group list --tenant "$acme" --product Thermostat --output json
jq -e '[.groups[] | select(.crash_capture == false) | .name] == ["Field Test"]' "$d/out" >/dev/null || fail "list: $(cat "$d/out")"
status_of two; is_status 200; body_has '.settings.crash_capture == false'
status_of one; is_status 200; body_has '.settings.crash_capture == true' # in no group
batch "$(crash 60 "$crash_off")" "$(event 61 clock_jump "jumped" "")" >"$d/b6.json"
post two "$d/b6.json"; is_status 200
body_has '.stored == 1 and ([.refused[].seq] == [60]) and (.refused[0].reason | contains("crash capture is off"))'
post one "$d/b6.json"; is_status 200; body_has '.stored == 2'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
jq -e --arg b "$shown" '[.buckets[] | select(.id == $b) | .count] == [6]' "$d/out" >/dev/null || fail "capture off: $(cat "$d/out")"
# Only an admin turns it; on again, the group's crashes are taken.
expect 0 "$RAMPART" token create --tenant "$acme" --role contributor; cp "$d/out" "$d/contrib.token"
RAMPART_TOKEN_FILE=$d/contrib.token expect 1 "$RAMPART" device-group set --tenant "$acme" --product Thermostat "Field Test" --crash-capture on
expect 2 "$RAMPART" device-group set --tenant "$acme" --product Thermostat "Field Test" --crash-capture maybe
printf '{"crash_capture": "no"}' >"$d/bad.json"
http PUT "/api/v1/tenants/$acme/products/Thermostat/groups/$field/settings" "$ADMIN_TOKEN" "$d/bad.json"; is_status 400
expect 0 "$RAMPART" device-group set --tenant "$acme" --product Thermostat "Field Test" --crash-capture on
out_has "crash capture: on"
batch "$(crash 62 "$crash_off")" >"$d/b7.json"
post two "$d/b7.json"; is_status 200; body_has '.stored == 1 and .refused == []'
status_of two; is_status 200; body_has '.settings.crash_capture == true'
# A group made with it off.
expect 0 "$RAMPART" device-group create --tenant "$acme" --product Thermostat Quiet --crash-capture off --output json
jq -e '.crash_capture == false' "$d/out" >/dev/null || fail "create off: $(cat "$d/out")"

# --- debuginfod: a build nobody uploaded symbols for is named from the operator's server ------
# Another build of the app (-O2: another build ID), unstripped, where debuginfod serves it. Built
# outside the scanned directory and renamed into it: debuginfod rescans every second, and a scan
# of a half-written file counts as scanned, indexes nothing, and makes the server's first question
# a remembered "missing" (seen once in CI).
gcc -g -O2 -Wl,--build-id -o "$d/app2.full" "$d/app.c" || fail "cannot build the second app"
mv "$d/app2.full" "$d/dfs/app2"
build_id2=$(readelf -n "$d/dfs/app2" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
[ ${#build_id2} -eq 40 ] && [ "$build_id2" != "$build_id" ] || fail "no second build ID"
crash2_off=$(printf '0x%x' $((16#$(nm "$d/dfs/app2" | awk '$3 == "crash_here" { print $1 }'))))
want2_line=$(eu-addr2line -e "$d/dfs/app2" "$crash2_off" | sed -E 's/^([^:]*):([0-9]+).*/\2/')
# Until debuginfod itself serves it, never a sleep (its scan counter is not enough: the server
# remembers a "missing" answer, so its one question must come after the index has the file).
dfs_serves() { curl -sf -o /dev/null "http://127.0.0.1:$dport/buildid/$1/debuginfo"; }
wait_until 30 dfs_serves "$build_id2" || fail "debuginfod did not index the second app: $(cat "$d/dfs.log")"
crash 9 "$crash2_off" | jq -c --arg b "$build_id2" '.crash.frames |= map(.build_id = $b)' >"$d/c2.json"
batch "$(cat "$d/c2.json")" >"$d/b6.json"
post two "$d/b6.json"; is_status 200; body_has '.stored == 1'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
b2=$(jq -r --arg b "$build_id2" '.buckets[] | select(.frames[0].build_id == $b) | .id' "$d/out")
[ -n "$b2" ] || fail "no bucket of the second build: $(cat "$d/out")"
# The request does not wait for debuginfod: the fetch runs in the background; then it is named.
dfs_metric() { http GET /metrics -; sed -n "s/^rampart_debuginfod_fetches_total{result=\"$1\"} //p" "$d/body"; }
dfs_fetched() { [ "$(dfs_metric ok)" = 1 ]; }
wait_until 60 dfs_fetched || fail "debuginfod: nothing fetched: $(grep -v migrated "$d/srv.log" | tail -30)"
expect 0 "$RAMPART" failure show --tenant "$acme" "$b2" --output json
jq -e --arg l "$want2_line" '.symbolicated == true and .frames[0].function == "crash_here" and .frames[0].line == ($l | tonumber)' "$d/out" >/dev/null || fail "not named through debuginfod: $(cat "$d/out")"
[ -s "$d/srv/debuginfod/$build_id2.debug" ] || fail "the fetched debug file is not kept"
# A build ID the server lacks: asked once, in the background, then remembered for a while.
missing=$(dfs_metric missing)
crash 10 "$crash_off" | jq -c '.crash.frames |= map(.build_id = "ab00ab00ab00ab00ab00ab00ab00ab00ab00ab00")' >"$d/c3.json"
batch "$(cat "$d/c3.json")" >"$d/b7.json"
post two "$d/b7.json"; is_status 200; body_has '.stored == 1'
expect 0 "$RAMPART" failure list --tenant "$acme" --output json
b3=$(jq -r '.buckets[] | select(.frames[0].build_id == "ab00ab00ab00ab00ab00ab00ab00ab00ab00ab00") | .id' "$d/out")
[ -n "$b3" ] || fail "no bucket of the unknown build: $(cat "$d/out")"
dfs_missing() { [ "$(dfs_metric missing)" -gt "$missing" ]; }
wait_until 30 dfs_missing || fail "debuginfod: the unknown build ID was not asked"
missing=$(dfs_metric missing)
expect 0 "$RAMPART" failure show --tenant "$acme" "$b3" --output json
jq -e '.symbolicated == false' "$d/out" >/dev/null || fail "an unknown build named: $(cat "$d/out")"
eq "$(dfs_metric missing)" "$missing" "debuginfod asked again for a build ID it lacks"
eq "$(dfs_metric ok)" 1 "debuginfod fetches"
# A build whose debug file only debuginfod serves (build 4: -O1 like builds 1 to 3, another build
# ID), crashing where they did: its new bucket is keyed "" (no file yet; the keying asks for it),
# and once the file is fetched the keyer keys again the buckets that name its build ID: it joins
# the shown bucket (key "symbolic"), with no upload. Polled, never slept.
build 4
cp "$d/app4" "$d/app4.copy" && mv "$d/app4.copy" "$d/dfs/app4" # whole, as app 2
wait_until 30 dfs_serves "${bid[4]}" || fail "debuginfod did not index app 4: $(cat "$d/dfs.log")"
batch "$(crash_of 4 23 4.0.0+0)" >"$d/r4.json"
post two "$d/r4.json"; is_status 200; body_has '.stored == 1'
dfs_fetched2() { [ "$(dfs_metric ok)" = 2 ]; }
wait_until 60 dfs_fetched2 || fail "debuginfod: app 4 not fetched: $(grep -v migrated "$d/srv.log" | tail -30)"
joined4() {
  "$RAMPART" failure list --tenant "$acme" --output json >"$d/out" 2>/dev/null &&
    jq -e --arg a "$shown" --arg b4 "${bid[4]}" '(.buckets[] | select(.id == $a) | .key == "symbolic" and .counts.version["4.0.0+0"] == 1 and (.builds | map(.build_ids[0]) | index($b4) != null)) and ([.buckets[] | select(.frames[0].build_id == $b4 and .key == "build")] | length == 0)' "$d/out" >/dev/null
}
wait_until 30 joined4 || fail "build 4 (named through debuginfod) did not join the shown bucket: $(cat "$d/out")"

# --- the metrics count all of it ------------------------------------------------------------------
curl -s --cacert "$SERVER_CA" "$SERVER_URL/metrics" >"$d/metrics"
metric() { awk -v m="$1" '$1 == m { print $2 }' "$d/metrics"; }
[ "$(metric 'rampart_report_batches_total{result="malformed"}')" -ge 5 ] || fail "malformed not counted: $(grep report "$d/metrics")"
[ "$(metric 'rampart_report_batches_total{result="too_large"}')" -ge 2 ] || fail "oversized not counted"
[ "$(metric 'rampart_report_batches_total{result="rate_limited"}')" -ge 1 ] || fail "limited not counted"
[ "$(metric 'rampart_reports_total{result="duplicate"}')" -ge 2 ] || fail "replays not counted"
[ "$(metric 'rampart_reports_total{result="refused"}')" -ge 7 ] || fail "refused not counted"
[ "$(metric 'rampart_reports_total{result="stored"}')" -eq 17 ] || fail "stored: $(grep report "$d/metrics")"
[ "$(metric 'rampart_reports_crash_capture_off_total')" -eq 1 ] || fail "capture off not counted: $(grep report "$d/metrics")"
done_ok
