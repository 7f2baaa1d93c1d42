#!/usr/bin/env bash
# End to end, the device's side of an update: install into the inactive slot, health check,
# confirm or roll back, every refusal, recovery at start, security counters in the root of trust
# (soft and TPM), and the power-loss walk: the install is cut at every write step, the device
# "reboots", and a verified image must be running with a consistent state.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k.key"
expect 0 "$RAMPART" key public --key "$d/k.key" --out "$d/k.pub"
expect 0 "$RAMPART" key generate --type ed25519 --out "$d/rogue.key"

# apps: v1 says it is ready; the broken one exits at start; v3 just stays up
printf '#!/bin/sh\necho "v1 up"\necho ready >&"$RAMPART_READY_FD"\nexec sleep 60\n' >"$d/good.sh"
printf '#!/bin/sh\necho "crashing"\nexit 3\n' >"$d/crash.sh"
printf '#!/bin/sh\nexec sleep 60\n' >"$d/quiet.sh"
sign() { expect 0 "$RAMPART" image sign --key "$1" --version "$2" --security-counter "$3" --type app "$4" "$d/$5"; }
sign "$d/k.key" 1.1.0 2 "$d/good.sh" v110.img
sign "$d/k.key" 1.2.0 3 "$d/crash.sh" v120.img
sign "$d/k.key" 1.0.0 2 "$d/good.sh" v100.img
sign "$d/k.key" 1.0.5 1 "$d/good.sh" low.img
sign "$d/rogue.key" 9.0.0 9 "$d/good.sh" rogue.img
sign "$d/k.key" 1.3.0 3 "$d/quiet.sh" v130.img; cp "$d/out" "$d/v130.sign"

S=$d/dev
expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/k.pub"
install() { "$AGENT" install --state-dir "$S" --health-seconds 1 --component app "$@"; }
status_is() { # VERSION SLOT COUNTER RESULT (the running image's counter, and the root of trust's)
  expect 0 "$AGENT" status --state-dir "$S" --output json
  jq -e --arg v "$1" --arg s "$2" --argjson c "$3" --arg r "$4" '.components[0] |
    .version == $v and .active_slot == $s and .security_counter == $c and
    .security_counter_floor == $c and .verified and
    .last_update.result == $r and .trial_slot == null' "$d/out" >/dev/null || fail "status: $(cat "$d/out")"
}

# --- install, roll back, refuse -----------------------------------------------------------------
expect 0 install "$d/v110.img"; out_has "app: installed: started and said it is ready"
status_is 1.1.0+0 a 2 installed
cmp <(tail -c +513 "$d/v110.img" | head -c "$(stat -c %s "$d/good.sh")") "$d/good.sh" || fail "payload"
expect 1 install "$d/v120.img"; out_has "rolled_back: exited with status 3 at start; 1.1.0+0 is still running"
status_is 1.1.0+0 a 2 rolled_back
expect 1 install "$d/v100.img"; out_has "version 1.0.0+0 is older than the running 1.1.0+0 (rollback refused)"
expect 1 install "$d/low.img"; out_has "security counter is below the device's"
expect 1 install "$d/rogue.img"; out_has "refused: not signed by a trusted key"
cp "$d/v110.img" "$d/tampered.img"; flip "$d/tampered.img" 520
expect 1 install "$d/tampered.img"; out_has "refused"
expect 1 install "$d/does-not-exist.img"; out_has "refused"
status_is 1.1.0+0 a 2 refused
expect 0 install "$d/v110.img"; out_has "app: unchanged: 1.1.0+0 is running already"
expect 0 install "$d/v130.img"; out_has "app: installed: stayed up for 1 s"
status_is 1.3.0+0 b 3 installed
# security counter 3 now: 1.1.0 (counter 2) is refused forever, even as a "newer" re-sign
sign "$d/k.key" 1.4.0 2 "$d/good.sh" v140-low.img
expect 1 install "$d/v140-low.img"; out_has "security counter is below the device's"
expect 2 "$AGENT" install --state-dir "$S" --component ../evil "$d/v130.img"
expect 2 "$AGENT" install --state-dir "$S" --component app

# --- the app contract: one for the trial and for every start under the daemon --------------------
# README.md's app, byte for byte: it says it is ready on $RAMPART_READY_FD, then stays up. Under
# `rampart-agent run` it must stay up (one process, no restarts), not only install.
R=$d/contract
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$d/readme-app.sh"
# A probe records what it was given (environment, working directory, umask, descriptors 0-9,
# stdin) each time it starts: the trial's record and the daemon's must be the same.
cat >"$d/probe.sh" <<'PROBE'
#!/bin/sh
log=$(readlink /proc/$$/fd/1 | sed 's|.*/components/|components/|')
{
  env | sort; pwd; umask
  for i in 0 1 2 3 4 5 6 7 8 9; do [ -e /proc/$$/fd/$i ] && printf '%s ' "$i"; done; echo
  readlink /proc/$$/fd/0; echo "$log"
  echo --
} >>"$RAMPART_DATA_DIR/contract"
echo ready >&"$RAMPART_READY_FD"
exec sleep 3600
PROBE
sign "$d/k.key" 1.1.0 1 "$d/readme-app.sh" readme.img
sign "$d/k.key" 2.0.0 1 "$d/probe.sh" probe.img
expect 0 "$AGENT" provision --state-dir "$R" --rot soft --image-key "$d/k.pub"
expect 0 "$AGENT" install --state-dir "$R" --component app "$d/readme.img"; out_has "app: installed: started and said it is ready"
expect 0 "$AGENT" install --state-dir "$R" --component probe "$d/probe.img"; out_has "probe: installed: started and said it is ready"
RUNNER_CA=$d/no-such-ca.pem   # no service: attestation fails and backs off; the apps run anyway
"$AGENT" run --state-dir "$R" --server https://127.0.0.1:9 --server-ca "$RUNNER_CA" --health-seconds 1 --start-jitter 0 \
  >"$d/contract-run.log" 2>&1 &
runner=$!; E2E_PIDS+=("$runner")
app_pid() { jq -r 'select(.status == "ready") | .pid' "$R/components/$1/run.json" 2>/dev/null || true; }
age_of() { ps -o etimes= -p "$1" 2>/dev/null | tr -d ' '; }
child_of_runner() { # COMPONENT: the daemon's child that runs it, found by its environment
  local p
  for p in $(pgrep -P "$runner" || true); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "RAMPART_COMPONENT=$1" && { echo "$p"; return; }
  done
}
# Wait for a state, not a time: the app's one process has been up well past its health window
# (the supervisor looks every second: several of its cycles), or it exited.
pid=""
for _ in $(seq 1 400); do
  [ -s "$R/components/app/exits" ] && break
  pid=$(child_of_runner app)
  [ -n "$pid" ] && [ "${pid:+$(age_of "$pid")}" -ge 5 ] 2>/dev/null && break
  sleep 0.2
done
[ ! -s "$R/components/app/exits" ] ||
  fail "README's app exited under the daemon: $(cat "$R/components/app/exits"); its log: $(cat "$R/components/app/app.log")"
[ -n "$pid" ] && [ "$(age_of "$pid")" -ge 5 ] || fail "README's app did not stay up: $(cat "$d/contract-run.log")"
eq "$(app_pid app)" "$pid" "the supervisor's record names the app's one process, ready"
jq -e '.restarts == 0 and .last_exit == null and .version == "1.1.0+0"' "$R/components/app/run.json" >/dev/null ||
  fail "run.json: $(cat "$R/components/app/run.json")"
expect 0 "$AGENT" status --state-dir "$R" --output json
jq -e '.components | map(select(.name == "app"))[0].app | .status == "ready" and .alive and .restarts == 0' \
  "$d/out" >/dev/null || fail "status: $(cat "$d/out")"
expect 0 "$AGENT" status --state-dir "$R"; out_has "app 1.1.0+0: ready, pid $pid, 0 restart(s)"
! grep -q "Bad fd number" "$R/components/app/app.log" || fail "the app was not given its ready descriptor"
# the trial and the daemon's start gave the probe the same contract
for _ in $(seq 1 100); do [ "$(grep -c -- '^--$' "$R/components/probe/data/contract" 2>/dev/null)" -ge 2 ] && break; sleep 0.2; done
awk 'BEGIN{RS="--\n"} NR==1{t=$0} NR==2{r=$0} END{exit !(NR>=2 && t==r)}' "$R/components/probe/data/contract" ||
  fail "the trial and the daemon gave different contracts: $(cat "$R/components/probe/data/contract")"
head -n "$(grep -n -- '^--$' "$R/components/probe/data/contract" | head -n1 | cut -d: -f1)" \
  "$R/components/probe/data/contract" >"$d/contract.txt"
for want in "RAMPART_COMPONENT=probe" "RAMPART_VERSION=2.0.0+0" "RAMPART_READY_FD=3" \
  "RAMPART_DATA_DIR=$(realpath "$R")/components/probe/data" "PATH=/usr/local/bin:/usr/bin:/bin" \
  "$(realpath "$R")/components/probe/data" "0077" "0 1 2 3 " "/dev/null" "components/probe/app.log"; do
  grep -qxF -- "$want" "$d/contract.txt" || fail "the contract lacks '$want': $(cat "$d/contract.txt")"
done
! grep -q "AGENT\|RAMPART_SERVER\|ASAN_OPTIONS" "$d/contract.txt" || fail "the agent's environment leaked: $(cat "$d/contract.txt")"
# an app that exits is restarted (backoff from 1 s), the exit recorded, the new run ready again
kill "$pid"
for _ in $(seq 1 150); do
  p2=$(app_pid app); [ -n "$p2" ] && [ "$p2" != "$pid" ] && break; sleep 0.2
done
[ -n "$p2" ] && [ "$p2" != "$pid" ] || fail "the app was not restarted: $(cat "$R/components/app/run.json")"
grep -q "1.1.0+0 killed by signal 15" "$R/components/app/exits" || fail "exit not recorded"
jq -e '.restarts == 1 and .last_exit == "killed by signal 15"' "$R/components/app/run.json" >/dev/null ||
  fail "run.json: $(cat "$R/components/app/run.json")"
kill "$runner"; wait "$runner" 2>/dev/null || true
! kill -0 "$p2" 2>/dev/null || fail "the daemon left its app running"
jq -e '.status == "stopped" and .pid == null' "$R/components/app/run.json" >/dev/null ||
  fail "run.json after the daemon: $(cat "$R/components/app/run.json")"

# --- recovery at start -------------------------------------------------------------------------
# an unconfirmed trial (the device stopped during the health check) is rolled back
jq '.trial = "a"' "$S/components/app/state" >"$d/state" && cp "$d/state" "$S/components/app/state"
expect 0 "$AGENT" recover --state-dir "$S"
status_is 1.3.0+0 b 3 rolled_back
# an active slot that no longer verifies falls back to the other one, if that one verifies,
# passes the security counter and was confirmed there: slot a holds 1.1.0 (counter 2 < 3)
flip "$S/components/app/b.img" 520
expect 1 "$AGENT" recover --state-dir "$S"; err_has "neither slot holds a verified, confirmed image"
cp "$d/v130.img" "$S/components/app/b.img"        # the bytes confirmed in b: good again
expect 0 "$AGENT" recover --state-dir "$S"
sign "$d/k.key" 1.4.0 3 "$d/quiet.sh" v140.img
expect 0 install "$d/v140.img"; status_is 1.4.0+0 a 3 installed
flip "$S/components/app/a.img" 520
expect 0 "$AGENT" recover --state-dir "$S"
status_is 1.3.0+0 b 3 fell_back
# a version below one confirmed before is refused, even once what runs is older
sign "$d/k.key" 1.3.5 3 "$d/quiet.sh" v135.img
expect 1 install "$d/v135.img"; out_has "older than 1.4.0+0, confirmed before (rollback refused)"
# never to a slot whose image was not confirmed there (a trial that failed its health check)
sign "$d/k.key" 1.5.0 3 "$d/crash.sh" v150.img
expect 1 install "$d/v150.img"; out_has "rolled_back"
flip "$S/components/app/b.img" 520
expect 1 "$AGENT" recover --state-dir "$S"; err_has "never confirmed: not falling back"
cp "$d/v130.img" "$S/components/app/b.img"
expect 0 "$AGENT" recover --state-dir "$S"
status_is 1.3.0+0 b 3 rolled_back

# --- the evidence measures the active slots -----------------------------------------------------
expect 0 "$AGENT" evidence --state-dir "$S" --nonce 00112233445566778899aabbccddeeff --out "$d/token.cbor"
"$AGENT" id --state-dir "$S" 2>/dev/null | openssl pkey -pubin -outform DER -out "$d/dev.der"
expect 0 "$(dirname "$0")/../tools/check-eat.py" "$d/token.cbor" "$d/dev.der"
jq -e --arg h "$(sed -n 's/.*sha256 \([0-9a-f]*\)$/\1/p' "$d/v130.sign")" \
  '."-70001" == [{"1": "app", "2": "1.3.0+0", "3": $h, "4": ."-70001"[0]."4", "5": 3}]' "$d/out" >/dev/null \
  || fail "the evidence does not measure app 1.3.0 in its active slot: $(cat "$d/out")"

# --- security counters in a TPM -----------------------------------------------------------------
start_swtpm "$d/tpm"
T=$d/tpmdev
expect 0 "$AGENT" provision --state-dir "$T" --rot tpm2 --tcti "$TCTI" --image-key "$d/k.pub"
expect 0 "$AGENT" install --state-dir "$T" --health-seconds 1 --component app "$d/v110.img"
expect 0 "$AGENT" install --state-dir "$T" --health-seconds 1 --component app "$d/v130.img"
expect 0 "$AGENT" status --state-dir "$T" --output json
jq -e '.components[0].security_counter_floor == 3' "$d/out" >/dev/null || fail "TPM security counter"
expect 1 "$AGENT" install --state-dir "$T" --health-seconds 1 --component app "$d/v140-low.img"
out_has "security counter is below the device's"
# the counter is in the TPM, not in a file of the state directory
! ls "$T"/seccnt.* >/dev/null 2>&1 || fail "a TPM device keeps its security counter in a file"
sign "$d/k.key" 2.0.0 65 "$d/good.sh" huge.img
expect 1 "$AGENT" install --state-dir "$T" --health-seconds 1 --component app "$d/huge.img"
out_has "more than this device's root of trust can hold (64)"
expect 0 "$AGENT" status --state-dir "$T" --output json
jq -e '.components[0].security_counter_floor == 3 and .components[0].version == "1.3.0+0"' "$d/out" >/dev/null \
  || fail "a counter the TPM cannot hold must leave the device as it was: $(cat "$d/out")"

# --- power loss at every write step -------------------------------------------------------------
# cut_walk NAME SETUP_IMAGE|- IMAGE OLD_VERSION OLD_COUNTER NEW_VERSION NEW_COUNTER
cuts=0 unbootable=0
cut_walk() {
  local name=$1 setup=$2 img=$3 v0=$4 c0=$5 v1=$6 c1=$7 base=$d/walk-$1 steps k ver cnt
  rm -rf "$base"
  expect 0 "$AGENT" provision --state-dir "$base" --rot soft --image-key "$d/k.pub"
  if [ "$setup" != - ]; then
    expect 0 "$AGENT" install --state-dir "$base" --health-seconds 1 --component app "$setup"
  fi
  rm -rf "$base.snap" "$base.trace"; cp -a "$base" "$base.snap"; cp -a "$base" "$base.trace"
  rm -f "$d/trace"
  expect 0 env RAMPART_FAILPOINT_TRACE="$d/trace" "$AGENT" install --state-dir "$base.trace" --health-seconds 1 --component app "$img"
  steps=$(wc -l <"$d/trace")
  [ "$steps" -ge 8 ] || fail "$name: only $steps write steps traced"
  for k in $(seq 1 "$steps"); do
    rm -rf "$base.cut"; cp -a "$base.snap" "$base.cut"
    expect 99 env RAMPART_FAILPOINT="$k" "$AGENT" install --state-dir "$base.cut" --health-seconds 1 --component app "$img"
    cuts=$((cuts + 1))
    # the reboot: recovery, then what runs must verify with the trusted key
    if ! "$AGENT" recover --state-dir "$base.cut" 2>"$d/err"; then
      unbootable=$((unbootable + 1)); echo "step $k ($(sed -n "${k}p" "$d/trace")): unbootable" >&2; continue
    fi
    expect 0 "$AGENT" status --state-dir "$base.cut" --output json
    cp "$d/out" "$d/status.json"
    jq -e '.components[0].trial_slot == null' "$d/status.json" >/dev/null || fail "step $k: a trial survived recovery"
    ver=$(jq -r '.components[0].version // "none"' "$d/status.json")
    cnt=$(jq -r '.components[0].security_counter_floor // 0' "$d/status.json")
    if [ "$ver" = none ]; then
      [ "$v0" = none ] || { unbootable=$((unbootable + 1)); echo "step $k: lost its image" >&2; continue; }
    else
      slot=$(jq -r '.components[0].active_slot' "$d/status.json")
      expect 0 "$RAMPART" image verify --key "$d/k.pub" "$base.cut/components/app/$slot.img"
    fi
    # either the old version with its counter, or the new one with the new counter: never the
    # new counter without the new version (the old image would then be refused)
    if [ "$ver" = "$v0" ]; then eq "$cnt" "$c0" "step $k: counter with $ver"
    elif [ "$ver" = "$v1" ]; then eq "$cnt" "$c1" "step $k: counter with $ver"
    else fail "step $k: runs $ver"; fi
  done
  # and the device can still be updated afterwards
  expect 0 "$AGENT" install --state-dir "$base.cut" --health-seconds 1 --component app "$img"
}
cut_walk first - "$d/v110.img" none 0 1.1.0+0 2
# The upgrade's 1.3.0 says it is ready: the same write steps as the quiet one's (traced: 19), and
# each cut past the trial's start no longer waits out a health window (1 s each, a dozen steps).
sign "$d/k.key" 1.3.0 3 "$d/good.sh" v130-ready.img
cut_walk upgrade "$d/v110.img" "$d/v130-ready.img" 1.1.0+0 2 1.3.0+0 3
echo "power loss: $cuts write steps cut, $unbootable device(s) left without a verified image"
eq "$unbootable" 0 "devices left without a verified image"
done_ok
