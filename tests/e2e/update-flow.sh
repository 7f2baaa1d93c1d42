#!/usr/bin/env bash
# End to end, an update from the operator to the devices: signed root metadata, a deployment to a
# group, devices fetching their signed targets over mutual TLS, downloading (resuming), installing,
# rolling back a broken version, refusing a downgrade and a tampered or overlong image on the
# service, and reporting each outcome; a staged rollout reaching only its share; devices outside
# the group untouched.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

start_server "$d/srv"
# Devices start with nothing installed, and a test machine may have no kernel lockdown (debug
# "enabled"): acme's appraisal policy allows both (the default refuses them). The operator's
# offline keys: the root of update trust, and the image signing key.
tenant_with_root "$d/root.json"
out_has "root version 1 signed and uploaded"

# Apps: a good one (says it is ready), a broken one (exits at start).
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 60\n' >"$d/good.sh"
printf '#!/bin/sh\nexit 7\n' >"$d/crash.sh"
sign() { expect 0 "$RAMPART" image sign --key "$d/img.key" --version "$1" --security-counter "$2" --type app "$3" "$d/app-$1.img"; }
upload() { expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/app-$1.img"; cat "$d/out"; }
sign 1.1.0 1 "$d/good.sh"; v110=$(upload 1.1.0)
sign 1.2.0 2 "$d/crash.sh"; v120=$(upload 1.2.0)
sign 1.0.0 1 "$d/good.sh"; v100=$(upload 1.0.0)

# Devices: four in Field Test, one in Production; each trusts the root and has attested.
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
ids=()
for i in 1 2 3 4 5; do
  expect 0 "$AGENT" provision --state-dir "$d/dev$i" --rot soft
  ids+=("$(tail -n1 "$d/out")")
  expect 0 "$AGENT" trust --state-dir "$d/dev$i" --update-root "$d/root.json"
done
expect 0 "$RAMPART" device claim --tenant "$acme" "${ids[@]}"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "${ids[@]:0:4}"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Production "${ids[4]}"
for i in 1 2 3 4 5; do
  expect 0 "$AGENT" attest --state-dir "$d/dev$i" --server "$SERVER_URL" --server-ca "$SERVER_CA"
done
check() { "$AGENT" check-now --state-dir "$d/dev$1" --health-seconds 1; }
version_of() { "$AGENT" status --state-dir "$d/dev$1" --output json 2>/dev/null | jq -r '.components[0].version // "none"'; }
shown() { expect 0 "$RAMPART" deployment show --tenant "$acme" "$1" --output json; jq -e "$2" "$d/out" >/dev/null || fail "deployment $1: $2: $(cat "$d/out")"; }

# Nothing deployed yet: a check finds nothing to do.
expect 0 check 1; out_has "update check: 0 installed, 0 up to date, 0 refused, 0 rolled back, 0 failed"

# --- 1.1.0 to Field Test: its devices install it; Production is untouched -----------------------
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v110"
dep1=$(cat "$d/out")
for i in 1 2 3 4 5; do expect 0 check "$i"; done
for i in 1 2 3 4; do eq "$(version_of "$i")" 1.1.0+0 "dev$i runs 1.1.0"; done
eq "$(version_of 5)" none "the Production device is untouched"
shown "$dep1" '.states.installed == 4 and .devices_selected == 4 and .progress.reached == 4 and .progress.installed == 4'
# Every state a device can be in keeps its key, counted or not (scripts rely on them): the
# service's answer, the CLI's JSON and its text.
all_states='["downloading","failed","installed","pending","refused","rolled_back"]'
http GET "/api/v1/tenants/$acme/deployments/$dep1" "$ADMIN_TOKEN"; is_status 200
body_has "(.states | keys) == $all_states and .states.refused == 0 and .states.rolled_back == 0"
shown "$dep1" "(.states | keys) == $all_states and .states.refused == 0"
expect 0 "$RAMPART" deployment show --tenant "$acme" "$dep1"
for s in pending downloading installed failed rolled_back refused; do out_has "$s "; done
# A device reports only those states, spelt exactly (one table: lib/src/update_state.c).
report_as() { # DEVICE-NUMBER DEPLOYMENT STATE
  printf '{"deployment": "%s", "state": "%s", "detail": "test"}' "$2" "$3" >"$d/report.json"
  status=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' --cacert "$SERVER_CA" --cert "$d/dev$1/agent/device.crt" \
    --key "$d/dev$1/identity.pem" -H 'Content-Type: application/json' --data-binary "@$d/report.json" \
    "$SERVER_URL/api/v1/device/updates")
}
report() { report_as 4 "$dep1" "$1"; }
for bad in Installed "installed " unchanged fell_back bogus ""; do
  report "$bad"; is_status 400
  body_has '.message | contains("pending|downloading|installed|failed|rolled_back|refused")'
done
report installed; is_status 200
expect 0 check 1; out_has "0 installed, 1 up to date"

# --- a broken 1.2.0: tried, rolled back, reported ------------------------------------------------
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v120"
dep2=$(cat "$d/out")
expect 1 check 1; out_has "app: rolled_back: exited with status 7 at start"
expect 1 check 2
eq "$(version_of 1)" 1.1.0+0 "dev1 still runs 1.1.0"
shown "$dep2" '.states.rolled_back == 2 and .states.pending == 2'
# The console's live view: reached is every device served targets naming it or that reported (the
# pending ones have not fetched them).
shown "$dep2" '.progress == {"selected": 4, "left": 0, "reached": 2, "installed": 0, "failed": 0, "rolled_back": 2}'
shown "$dep2" "[.devices[] | select(.state == \"rolled_back\") | .detail] | all(contains(\"exited with status 7\"))"
# The progress is over the devices it targets now: one that reported and then left the group
# counts apart, as left (listed, flagged), never above selected; its reports are no longer taken
# (judged where they are recorded); back in the group, it counts as before.
rb=$(jq -r '[.devices[] | select(.state == "rolled_back")][0].device_id' "$d/out")
for n in 1 2 3 4; do [ "${ids[$((n - 1))]}" != "$rb" ] || rbn=$n; done
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Production "$rb"
shown "$dep2" '.progress == {"selected": 3, "left": 1, "reached": 1, "installed": 0, "failed": 0, "rolled_back": 1}'
shown "$dep2" "[.devices[] | select(.left) | .device_id] == [\"$rb\"] and .states.rolled_back == 1"
expect 0 "$RAMPART" deployment show --tenant "$acme" "$dep2"
out_has "reached:     1 of 3"; out_has "left:        1 "
report_as "$rbn" "$dep2" installed; is_status 404
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$rb"
shown "$dep2" '.progress == {"selected": 4, "left": 0, "reached": 2, "installed": 0, "failed": 0, "rolled_back": 2}'

# --- a downgrade to 1.0.0: refused by the devices ----------------------------------------------
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v100"
dep3=$(cat "$d/out")
expect 1 check 1; out_has "app: refused: version 1.0.0+0 is older than the running 1.1.0+0"
shown "$dep3" '.states.refused == 1'

# --- a compromised service: the stored image changed, then made endless ------------------------
sign 1.3.0 2 "$d/good.sh"; v130=$(upload 1.3.0)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v130"
dep4=$(cat "$d/out")
cp "$d/srv/images/$v130" "$d/v130.orig"
flip "$d/srv/images/$v130" 600
expect 1 check 1; err_has "the download is not the image the metadata names"
expect 0 "$AGENT" status --state-dir "$d/dev1" --output json
jq -e '.components[0].last_update | .result == "refused" and .version == "1.3.0+0" and
  (.detail | contains("not the image the metadata names"))' "$d/out" >/dev/null || fail "refusal recorded: $(cat "$d/out")"
{ cat "$d/v130.orig"; head -c 100000 /dev/zero; } >"$d/srv/images/$v130"
expect 1 check 1; err_has "the server sent more than the announced"
eq "$(version_of 1)" 1.1.0+0 "dev1 still runs 1.1.0"
[ -z "$(ls -A "$d/dev1/agent/update/downloads")" ] || fail "a refused download was kept"
shown "$dep4" '[.devices[] | select(.state == "refused")] | length == 1'
cp "$d/v130.orig" "$d/srv/images/$v130"

# --- an interrupted download resumes where it stopped --------------------------------------------
# The service answers ranges...
size=$(stat -c %s "$d/v130.orig")
curl -s --cacert "$SERVER_CA" --cert "$d/dev2/agent/device.crt" --key "$d/dev2/identity.pem" \
  -r 100-199 -o "$d/range" -D "$d/headers" "$SERVER_URL/api/v1/device/images/$v130"
grep -qi "^content-range: bytes 100-199/$size" "$d/headers" || fail "no Content-Range: $(cat "$d/headers")"
cmp "$d/range" <(tail -c +101 "$d/v130.orig" | head -c 100) || fail "the range's bytes"
# ... but only images the device's own targets name: not another group's release (dev5 is in
# Production, which has none), not an older release of its own group, not a made-up ID
fetch_as() { curl -s -o /dev/null -w '%{http_code}' --cacert "$SERVER_CA" --cert "$d/dev$1/agent/device.crt" \
  --key "$d/dev$1/identity.pem" "$SERVER_URL/api/v1/device/$2"; }
eq "$(fetch_as 5 "images/$v130")" 404 "a device fetching another group's image"
eq "$(fetch_as 2 "images/$v110")" 404 "a device fetching an image its targets do not name"
eq "$(fetch_as 2 "images/$(printf '0%.0s' $(seq 64))")" 404 "a device fetching an image that does not exist"
eq "$(fetch_as 2 "images/$v130")" 200 "a device fetching its target"
# ... and a device with half the image already downloaded fetches only the rest (the service
# counts the image bytes it sends).
sent() { curl -s --cacert "$SERVER_CA" "$SERVER_URL/metrics" | sed -n 's/^rampart_image_bytes_sent_total //p'; }
dl=$d/dev2/agent/update/downloads
mkdir -p "$dl"
head -c $((size / 2)) "$d/v130.orig" >"$dl/$v130"
# What the device keeps there is only what its targets may resume: a kill -9 and a later
# deployment left the partial of an image no target names, its delta, a delta rebuild's
# temporary, the kept targets' temporary; and a link (removed, never followed).
head -c 5000 "$d/app-1.1.0.img" >"$dl/$v110"; head -c 100 /dev/zero >"$dl/$v110.delta"
head -c 3000 "$d/v130.orig" >"$dl/$v130.tmpQx81Za"
echo keep >"$d/outside"; ln -s "$d/outside" "$dl/link"
echo '{}' >"$d/dev2/agent/update/targets.json.tmpW3e4R5" # the kept targets' write, cut
before=$(sent)
expect 0 check 2; out_has "app: installed"; err_has "/agent/update: 5 entries removed"
eq "$(( $(sent) - before ))" "$((size - size / 2))" "image bytes sent to resume the download"
eq "$(ls -A "$dl")" "" "what the downloads hold once the target is installed"
eq "$(cat "$d/outside")" keep "what a link in the downloads named"
[ ! -e "$d/dev2/agent/update/targets.json.tmpW3e4R5" ] || fail "a cut write of the targets was kept"
eq "$(version_of 2)" 1.3.0+0 "dev2 runs 1.3.0"
expect 0 check 1; eq "$(version_of 1)" 1.3.0+0 "dev1 runs 1.3.0 once the service is sound again"

# --- a staged rollout reaches only its share -------------------------------------------------------
sign 1.4.0 2 "$d/good.sh"; v140=$(upload 1.4.0)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" --rollout 50 "$v140"
dep5=$(cat "$d/out")
for i in 1 2 3 4; do expect 0 check "$i"; done
want=0 got=0
for i in 1 2 3 4; do
  v=$(printf '%s/%s' "$dep5" "${ids[$((i - 1))]}" | sha256sum | cut -c1-8)
  if [ $((16#$v % 10000)) -lt 5000 ]; then
    want=$((want + 1)); eq "$(version_of "$i")" 1.4.0+0 "dev$i is in the rollout"
  else
    [ "$(version_of "$i")" != 1.4.0+0 ] || fail "dev$i is outside the rollout but runs 1.4.0"
  fi
done
shown "$dep5" ".devices_selected == $want and .states.installed == $want"
eq "$(version_of 5)" none "the Production device is still untouched"

# --- pause, resume, stop: offered only to the devices a paused or stopped deployment reached -----
# (reached: served targets naming it). The others keep what they had; no targets version goes
# back (the agent would refuse it as a rollback).
targets_of() { jq -r ".signed | @base64d | fromjson | .$2" "$d/dev$1/agent/update/targets.json"; }
sign 1.4.1 2 "$d/good.sh"; v141=$(upload 1.4.1)
# (a group with a deployment older than the next one, for a move below)
expect 0 "$RAMPART" device-group create --tenant "$acme" --product Thermostat Canary
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Canary "$v141"
depc=$(cat "$d/out")
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v141"
depp=$(cat "$d/out")
expect 0 check 1; out_has "app: installed"; eq "$(version_of 1)" 1.4.1+0 "dev1 runs 1.4.1"
had2=$(version_of 2) was2=$(targets_of 2 deployment) ver2=$(targets_of 2 version)
expect 0 "$RAMPART" deployment pause --tenant "$acme" "$depp"; out_has "$depp paused"
shown "$depp" '.status == "paused" and .progress.reached == 1 and .progress.installed == 1'
expect 0 check 2; out_has "0 installed"
eq "$(version_of 2)" "$had2" "dev2, not reached, does not get the paused deployment"
eq "$(targets_of 2 deployment)" "$was2" "dev2's targets name what they named before"
eq "$(targets_of 2 version)" "$ver2" "dev2's targets version"
expect 0 check 1; out_has "1 up to date"             # dev1 keeps it (not a rollback)
eq "$(targets_of 1 deployment)" "$depp" "dev1's targets still name the paused deployment"
expect 0 "$RAMPART" deployment list --tenant "$acme" --output json
jq -e --arg id "$depp" '.deployments[] | select(.id == $id) | .status == "paused"' "$d/out" >/dev/null \
  || fail "deployment list: $(cat "$d/out")"
expect 0 "$RAMPART" deployment resume --tenant "$acme" "$depp"; out_has "$depp active"
expect 0 check 2; out_has "app: installed"; eq "$(version_of 2)" 1.4.1+0 "dev2 gets it once resumed"
# stopped: never offered to a device it had not reached, and final
sign 1.4.2 2 "$d/good.sh"; v142=$(upload 1.4.2)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v142"
deps=$(cat "$d/out")
expect 0 "$RAMPART" deployment stop --tenant "$acme" "$deps"; out_has "$deps stopped"
expect 1 "$RAMPART" deployment resume --tenant "$acme" "$deps"; err_has "(HTTP 409)"; err_has "stopped"
shown "$deps" '.status == "stopped" and .progress.reached == 0'
expect 0 check 2; out_has "0 installed"; eq "$(version_of 2)" 1.4.1+0 "a stopped deployment is not offered"
eq "$(targets_of 2 deployment)" "$depp" "dev2's targets name the one before the stopped one"
# stopping the one dev1 has: it keeps it
expect 0 "$RAMPART" deployment stop --tenant "$acme" "$depp"
expect 0 check 1; out_has "1 up to date"; eq "$(targets_of 1 deployment)" "$depp" "dev1 keeps the stopped one"
# Moving a device to a group whose deployment is older (deployment numbers are global) does not
# lower its targets version (it would refuse them as a rollback and be stuck), nor does moving it
# back.
ver1=$(targets_of 1 version)
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Canary "${ids[0]}"
expect 0 check 1; out_has "1 up to date"
eq "$(targets_of 1 deployment)" "$depc" "dev1's targets name Canary's deployment"
[ "$(targets_of 1 version)" -gt "$ver1" ] || fail "dev1's targets version went from $ver1 to $(targets_of 1 version)"
ver1=$(targets_of 1 version)
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "${ids[0]}"
expect 0 check 1; out_has "1 up to date"; eq "$(targets_of 1 deployment)" "$depp" "dev1 back in Field Test"
[ "$(targets_of 1 version)" -gt "$ver1" ] || fail "dev1's targets version went from $ver1 to $(targets_of 1 version)"

# --- root rotation: a second image key, trusted once the operator signs root version 2 -----------
expect 0 "$RAMPART" key generate --type ed25519 --out "$d/img2.key"
expect 0 "$RAMPART" key public --key "$d/img2.key" --out "$d/img2.pub"
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/img2.pub" --name release-2
expect 0 "$RAMPART" image sign --key "$d/img2.key" --version 1.5.0 --security-counter 2 --type app "$d/good.sh" "$d/app-1.5.0.img"
v150=$(upload 1.5.0)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v150"
expect 1 check 1; out_has "refused: not signed by a trusted key"    # root 1 does not name img2
expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/root.key"
expect 0 check 1; out_has "app: installed"; eq "$(version_of 1)" 1.5.0+0 "dev1 runs 1.5.0 under root 2"
# the service takes only the next root, signed by the keys of the one before as well as its own
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/other-root.key"
expect 1 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/other-root.key"
err_has "(HTTP 400): the root is not signed by the keys of version 2" # checked before it is read
http POST "/api/v1/tenants/$acme/update/roots" "$ADMIN_TOKEN" "$d/root.json"
is_status 409; body_has '.message == "the next root is version 3"'
printf '{"signed": "e30=", "signatures": []}' >"$d/not-a-root.json"
http POST "/api/v1/tenants/$acme/update/roots" "$ADMIN_TOKEN" "$d/not-a-root.json"
is_status 400; body_has '.error == "bad_signature"' # unsigned: refused before its payload is read

# --- a compromised service cannot make a device run what the operator did not sign --------------
# an image key added on the service alone (a stolen admin token) is not in the devices' root
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/rogue.key"
expect 0 "$RAMPART" key public --key "$d/rogue.key" --out "$d/rogue.pub"
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/rogue.pub" --name rogue
expect 0 "$RAMPART" image sign --key "$d/rogue.key" --version 9.0.0 --security-counter 2 --type app "$d/good.sh" "$d/app-9.0.0.img"
v900=$(upload 9.0.0)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v900"
dep9=$(cat "$d/out")
expect 1 check 1; out_has "refused: not signed by a trusted key"
eq "$(version_of 1)" 1.5.0+0 "dev1 still runs 1.5.0"
shown "$dep9" '[.devices[] | select(.state == "refused")] | length == 1'
# a root the service forged (written into its own database) is refused: not signed by root 2's keys
expect 0 "$RAMPART" tenant create evil; evil=$(cat "$d/out")
expect 0 "$RAMPART" image-key add --tenant "$evil" --key "$d/rogue.pub" --name rogue
expect 0 "$RAMPART" update-root sign --tenant "$evil" --root-key "$d/rogue.key" --out "$d/evil-root.json"
sqlite3 "$d/srv/rampart.db" "INSERT INTO update_roots VALUES ('$acme', 3, readfile('$d/evil-root.json'), 4000000000, 0)"
expect 1 check 1; err_has "the root is not signed by the keys of version 2"
sqlite3 "$d/srv/rampart.db" "DELETE FROM update_roots WHERE tenant_id = '$acme' AND version = 3"
# a freeze: targets past their expiry are refused (the device's clock two days ahead: what it is
# given is then as old as a replay of two-day-old metadata would be)
expect 1 at_clock '+2d' "$AGENT" check-now --state-dir "$d/dev1" --health-seconds 1
err_has "the targets have expired (freeze)"
# the service's database gone back (a backup restored: the newest deployment and the device's
# targets version gone): the device says the version it holds, and is served one above it, not
# a rollback it would refuse (review r15ops H1: it heals; the device's own refusal of older
# targets, which a service that ignored what it says would meet, is unit.update's)
held=$(sqlite3 "$d/srv/rampart.db" "SELECT version FROM device_targets WHERE device_id = '${ids[0]}'")
sqlite3 "$d/srv/rampart.db" "DELETE FROM device_updates WHERE deployment_id = '$dep9';
  DELETE FROM deployment_reached WHERE deployment_id = '$dep9';
  DELETE FROM deployment_images WHERE deployment_id = '$dep9'; DELETE FROM deployments WHERE id = '$dep9';
  DELETE FROM device_targets WHERE device_id = '${ids[0]}'"
expect 0 check 1; out_has "1 up to date"
eq "$(sqlite3 "$d/srv/rampart.db" "SELECT version FROM device_targets WHERE device_id = '${ids[0]}'")" \
  $((held + 1)) "dev1's targets version after the database went back"
eq "$(version_of 1)" 1.5.0+0 "dev1 still runs 1.5.0"
# each refusal above is a report with its reason code (docs/failure-reporting.md): the service has
# it (each check uploads the queue) or dev1's queue still does
expect 0 "$AGENT" reports --state-dir "$d/dev1" --output json; cp "$d/out" "$d/queued.json"
expect 0 "$RAMPART" event list --tenant "$acme" --device "${ids[0]}" --limit 500 --output json
jq -s '[.[0].reports[] | [.kind, .code]] + [.[1].reports[] | [.kind, .code]]' "$d/queued.json" "$d/out" >"$d/refusals.json"
for kc in image_refused:rollback image_refused:hash_mismatch image_refused:too_large \
  image_refused:unknown_key metadata_refused:bad_signature metadata_refused:expired; do
  jq -e --arg k "${kc%%:*}" --arg c "${kc#*:}" 'index([[$k, $c]]) != null' "$d/refusals.json" >/dev/null ||
    fail "no $kc report: $(jq -c . "$d/refusals.json")"
done

# --- the daemon: checks at start and on its interval; an update window holds installs back -------
sign 1.6.0 2 "$d/good.sh"; v160=$(upload 1.6.0)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v160"
h=$(date +%H); win=$(printf '%02d:00-%02d:00' $(( (10#$h + 2) % 24 )) $(( (10#$h + 3) % 24 )))
"$AGENT" run --state-dir "$d/dev3" --server "$SERVER_URL" --server-ca "$SERVER_CA" --health-seconds 1 --start-jitter 0 \
  --update-interval 2 >"$d/run3.log" 2>&1 &
run3=$!; E2E_PIDS+=("$run3")
"$AGENT" run --state-dir "$d/dev4" --server "$SERVER_URL" --server-ca "$SERVER_CA" --health-seconds 1 --start-jitter 0 \
  --update-interval 2 --update-window "$win" >"$d/run4.log" 2>&1 &
run4=$!; E2E_PIDS+=("$run4")
runs_160() { [ "$(version_of 3)" = 1.6.0+0 ]; }
wait_until 120 runs_160 || fail "the daemon did not install 1.6.0: $(cat "$d/run3.log")"
kill -USR1 "$run4"
wait_until 120 grep -q "outside the update window" "$d/run4.log" ||
  fail "dev4 does not say why: $(cat "$d/run4.log")"
[ "$(version_of 4)" != 1.6.0+0 ] || fail "dev4 installed outside its update window"
# the daemon supervises the app: an app that exits is restarted, and each exit is recorded (it
# stays up until the test has seen 1.7.0 installed, past its health window whatever the load)
printf '#!/bin/sh\necho "flaky up"\nwhile [ ! -e "%s/flaky.go" ]; do sleep 0.1; done\nexit 5\n' "$d" >"$d/flaky.sh"
sign 1.7.0 2 "$d/flaky.sh"; v170=$(upload 1.7.0)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v170"
kill -USR1 "$run3"
runs_170() { [ "$(version_of 3)" = 1.7.0+0 ]; }
wait_until 120 runs_170 || fail "the daemon did not install 1.7.0: $(tail -n 20 "$d/run3.log")"
touch "$d/flaky.go"
exited_twice() { [ "$(cat "$d/dev3/components/app/exits" 2>/dev/null | grep -c 'exited with status 5')" -ge 2 ]; }
wait_until 120 exited_twice || true # the checks below say what is missing
eq "$(version_of 3)" 1.7.0+0 "the daemon kept 1.7.0 (it stayed up for its health window)"
[ "$(grep -c '1.7.0+0 exited with status 5' "$d/dev3/components/app/exits")" -ge 2 ] ||
  fail "exits not recorded: $(cat "$d/dev3/components/app/exits" 2>&1)"
[ "$(grep -c 'flaky up' "$d/dev3/components/app/app.log")" -ge 3 ] || fail "the app was not restarted"
kill "$run3" "$run4"; wait "$run3" "$run4" 2>/dev/null || true
! pgrep -f "$d/dev3/components/app/.\.run" >/dev/null || fail "the daemon left its app running"

# --- delta updates: a 1% change travels as a small zstd patch; a broken delta falls back ------
head -c 1048576 /dev/urandom >"$d/sys1.bin"
cp "$d/sys1.bin" "$d/sys2.bin"
for k in $(seq 0 99); do   # 1% of the bytes: 100 runs of 105 new bytes
  head -c 105 /dev/urandom | dd of="$d/sys2.bin" bs=1 seek=$((k * 10485 + 77)) conv=notrunc status=none
done
cp "$d/sys2.bin" "$d/sys3.bin"; printf 'THIRD' | dd of="$d/sys3.bin" bs=1 seek=5000 conv=notrunc status=none
for v in 1 2 3; do
  expect 0 "$RAMPART" image sign --key "$d/img.key" --version "2.$v.0" --security-counter 1 --type system "$d/sys$v.bin" "$d/sys$v.img"
  expect 0 "$RAMPART" image upload --tenant "$acme" --component system "$d/sys$v.img"; cp "$d/out" "$d/sys$v.id"
done
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v150" "$(cat "$d/sys1.id")"
expect 0 check 2                                  # the first system image: whole
expect 0 "$AGENT" attest --state-dir "$d/dev2" --server "$SERVER_URL" --server-ca "$SERVER_CA"   # the service learns it
made() { curl -s --cacert "$SERVER_CA" "$SERVER_URL/metrics" | sed -n 's/^rampart_deltas_total{result="made"} //p'; }
made_before=$(made)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v150" "$(cat "$d/sys2.id")"
# the first targets that need the delta ask for it, made off the service's loops; then it is
# offered (and made once: asked again meanwhile, it is not made again)
delta_ready() { [ "$(fetch_as 2 "deltas/$(cat "$d/sys$1.id")/$(cat "$d/sys$2.id")")" = 200 ]; }
eq "$(fetch_as 2 targets)" 200 "targets asking for the delta"
eq "$(fetch_as 2 targets)" 200 "targets asking for the delta again"
wait_until 60 delta_ready 1 2 || fail "the delta 2.1.0 -> 2.2.0 was not made"
eq "$(made)" $((made_before + 1)) "deltas made (once, though asked twice)"
before=$(sent)
expect 0 check 2; out_has "system: installed"; err_has "rebuilt from a"
# the delta is dev2's: another device is not offered it, nor is dev2 once it runs the target
eq "$(fetch_as 5 "deltas/$(cat "$d/sys1.id")/$(cat "$d/sys2.id")")" 404 "another device fetching a delta"
delta=$(( $(sent) - before )); full=$(stat -c %s "$d/sys2.img")
echo "delta for a 1% change: $delta of $full bytes ($(( delta * 1000 / full ))/1000)"
[ "$delta" -lt $(( full / 20 )) ] || fail "the delta ($delta bytes) is not under 5% of the image ($full)"
expect 0 "$AGENT" status --state-dir "$d/dev2" --output json
jq -e '.components | map(select(.name == "system"))[0].version == "2.2.0+0"' "$d/out" >/dev/null || fail "system 2.2.0"
# a delta the service holds corrupted: the device falls back to the whole image
expect 0 "$AGENT" attest --state-dir "$d/dev2" --server "$SERVER_URL" --server-ca "$SERVER_CA"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v150" "$(cat "$d/sys3.id")"
eq "$(fetch_as 2 targets)" 200 "targets asking for the delta"
wait_until 60 delta_ready 2 3 || fail "the delta 2.2.0 -> 2.3.0 was not made"
head -c 3000 /dev/urandom >"$d/srv/deltas/$(cat "$d/sys2.id")-$(cat "$d/sys3.id").zst"
expect 0 check 2; out_has "system: installed"; err_has "the delta failed"
expect 0 "$AGENT" status --state-dir "$d/dev2" --output json
jq -e '.components | map(select(.name == "system"))[0].version == "2.3.0+0"' "$d/out" >/dev/null || fail "system 2.3.0"

# --- the online key rotates: used once a root names it; devices forget what the old one signed --
old_keyid=$(jq -r '.signatures[0].keyid' "$d/dev1/agent/update/targets.json")
expect 0 "$RAMPART" update-root rotate-online-key --tenant "$acme"
openssl pkey -pubin -in "$d/out" -outform DER | sha256sum | cut -c1-64 >"$d/new.keyid"
expect 0 check 1                                 # still signed with the key root 2 names
eq "$(jq -r '.signatures[0].keyid' "$d/dev1/agent/update/targets.json")" "$old_keyid" "the old key signs until a root names the new one"
expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/root.key"
expect 0 check 1
eq "$(jq -r '.signatures[0].keyid' "$d/dev1/agent/update/targets.json")" "$(cat "$d/new.keyid")" "the new online key signs"
[ "$(cat "$d/new.keyid")" != "$old_keyid" ] || fail "the online key did not change"

# --- what attestation sees is what runs, and the device's status says how the last update went ---
expect 0 "$AGENT" attest --state-dir "$d/dev1" --server "$SERVER_URL" --server-ca "$SERVER_CA"
expect 0 "$AGENT" status --state-dir "$d/dev1" --output json
jq -e '.components | map(select(.name == "app"))[0] | .security_counter == 2 and .version == "1.5.0+0"' "$d/out" >/dev/null \
  || fail "status: $(cat "$d/out")"

# --- an image without a security counter is "none" all the way, never 0 -------------------------
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --type system "$d/sys1.bin" "$d/sensor.img"
expect 0 "$RAMPART" image upload --tenant "$acme" --component sensor "$d/sensor.img"; sensor=$(cat "$d/out")
expect 0 "$RAMPART" image list --tenant "$acme" --output json
jq -e --arg id "$sensor" '.images[] | select(.id == $id) | .security_counter == null' "$d/out" >/dev/null \
  || fail "the image record: $(cat "$d/out")"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$v150" "$sensor"
expect 0 check 1; out_has "sensor: installed"
jq -e '.signed | @base64d | fromjson | .targets[] | select(.component == "sensor") |
  has("security_counter") and .security_counter == null' "$d/dev1/agent/update/targets.json" >/dev/null \
  || fail "the targets: $(jq -r '.signed | @base64d' "$d/dev1/agent/update/targets.json")"
expect 0 "$AGENT" status --state-dir "$d/dev1" --output json
jq -e '.components | map(select(.name == "sensor"))[0] | .security_counter == null and
  .security_counter_floor == 0 and .version == "1.0.0+0"' "$d/out" >/dev/null || fail "status: $(cat "$d/out")"
expect 0 "$AGENT" status --state-dir "$d/dev1"
grep -E '^sensor +1\.0\.0\+0 +[ab] +none ' "$d/out" >/dev/null || fail "status text: $(cat "$d/out")"

# --- a deployment some of the group's devices could never install is refused -------------------
# Each device says what its root of trust accepts when it fetches its targets: a soft one any
# 32-bit counter, a TPM one at most 64.
eq "$(sqlite3 "$d/srv/rampart.db" "SELECT security_counter_max FROM device_counter_max WHERE device_id = '${ids[0]}'")" \
  4294967295 "what a soft device accepts"
start_swtpm "$d/tpm"
expect 0 "$AGENT" provision --state-dir "$d/dev6" --rot tpm2 --tcti "$TCTI"; dev6=$(tail -n1 "$d/out")
expect 0 "$AGENT" trust --state-dir "$d/dev6" --update-root "$d/root.json"
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev6"
expect 0 "$RAMPART" device-group create --tenant "$acme" --product Thermostat Lab
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Lab "$dev6"
expect 0 "$AGENT" attest --state-dir "$d/dev6" --server "$SERVER_URL" --server-ca "$SERVER_CA"
expect 0 check 6; out_has "0 installed"           # nothing for Lab yet; it said what it accepts
sign 1.8.0 65 "$d/good.sh"; v180=$(upload 1.8.0)
expect 1 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Lab "$v180"
err_has "app 1.8.0+0 has security counter 65, more than 1 device(s) of the group can ever install"
err_has "device $dev6 accepts security counters up to 64"
printf '{"product": "Thermostat", "group": "Lab", "images": ["%s"]}' "$v180" >"$d/lab.json"
http POST "/api/v1/tenants/$acme/deployments" "$ADMIN_TOKEN" "$d/lab.json"
is_status 409
body_has ".error == \"counter_too_high\" and .security_counter == 65 and
  .devices == [{\"device_id\": \"$dev6\", \"security_counter_max\": 64}]"
# Past the limits anyway: an admin's decision (one device's wrong report must not hold a whole
# group's updates back for good); a contributor may not.
expect 0 "$RAMPART" token create --tenant "$acme" --role contributor; cp "$d/out" "$d/contrib.token"
RAMPART_TOKEN_FILE=$d/contrib.token expect 1 "$RAMPART" deployment create --tenant "$acme" \
  --product Thermostat --group Lab --ignore-counter-limits "$v180"
err_has "deploying past devices' security counter limits needs the admin role"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Lab \
  --ignore-counter-limits "$v180"
# A blocked device gets no updates: what it said it accepts holds nothing back.
expect 0 "$RAMPART" device block --tenant "$acme" "$dev6"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Lab "$v180"
expect 0 "$RAMPART" device unblock --tenant "$acme" "$dev6"
expect 0 "$AGENT" attest --state-dir "$d/dev6" --server "$SERVER_URL" --server-ca "$SERVER_CA"
# what it can hold deploys, and installs
sign 1.8.1 64 "$d/good.sh"; v181=$(upload 1.8.1)
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Lab "$v181"
expect 0 check 6; out_has "app: installed"
expect 0 "$AGENT" status --state-dir "$d/dev6" --output json
jq -e '.components[0] | .version == "1.8.1+0" and .security_counter_floor == 64' "$d/out" >/dev/null \
  || fail "the TPM device: $(cat "$d/out")"
done_ok
