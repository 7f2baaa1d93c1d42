#!/usr/bin/env bash
# End to end, the device agent's state directory: a state directory others can write to, or owned
# by another user, and a soft identity key others can read, are refused by every command with the
# path, the mode found and the fix; provision makes what it creates private; every file the agent
# keeps, made corrupt, truncated or oversized in turn, gives a message that names that file and
# says what is wrong (never another file's, nor "malformed TLV area"); the measured list is
# versioned JSON, and the earlier line format is converted once, keeping the register consistent;
# the JSON root, targets and capability an older version kept are migrated once by the monitor
# (a cut at any step leaves one form usable), and a tampered root is refused, not migrated; and by
# the agent itself in single-process mode, which keeps its own targets.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}"
[ "$(id -u)" = 0 ] || fail "runs as root (the monitor does, as CI does)"
d=$E2E_DIR

start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
start_swtpm "$d/swtpm"

# --- a device with one of everything the agent keeps ------------------------------------------
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/root.key"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/img.key"
expect 0 "$RAMPART" key public --key "$d/img.key" --out "$d/img.pub"
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/img.pub" --name release
expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/root.key" --out "$d/root.json"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$d/app.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.1.0 --security-counter 1 --type app "$d/app.sh" "$d/app.img"
expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/app.img"; img=$(cat "$d/out")
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat

S=$d/dev
expect 0 "$AGENT" provision --state-dir "$S" --rot soft; id=$(tail -n1 "$d/out")
expect 0 "$AGENT" trust --state-dir "$S" --update-root "$d/root.json"
expect 0 "$RAMPART" device claim --tenant "$acme" "$id"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$id"
expect 0 "$AGENT" attest --state-dir "$S" --server "$SERVER_URL" --server-ca "$SERVER_CA"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$img"
expect 0 "$AGENT" check-now --state-dir "$S" --health-seconds 1; out_has "app: installed"
expect 0 "$AGENT" evidence --state-dir "$S" --nonce 00112233445566778899aabbccddeeff --out "$d/ev.cbor"
# the daemon's record of the app (then stopped: it says so)
"$AGENT" run --state-dir "$S" --server "$SERVER_URL" --server-ca "$SERVER_CA" --health-seconds 1 --start-jitter 0 >"$d/run.log" 2>&1 &
runner=$!; E2E_PIDS+=("$runner")
for _ in $(seq 1 150); do jq -e '.status == "ready"' "$S/components/app/run.json" >/dev/null 2>&1 && break; sleep 0.2; done
jq -e '.status == "ready"' "$S/components/app/run.json" >/dev/null || fail "the app did not get ready: $(cat "$d/run.log")"
kill "$runner"; wait "$runner" 2>/dev/null || true
for f in rot identity.pem counter.boot seccnt.0 measurements boot_id measured agent/device.crt agent/ca-chain.pem \
  agent/attestation.json agent/service.json update/root.bin agent/update/targets.json components/app/state \
  components/app/run.json components/app/a.img; do
  [ -f "$S/$f" ] || fail "the device lacks $f"
done
# and a device with a TPM (through swtpm)
T=$d/tpm
expect 0 "$AGENT" provision --state-dir "$T" --rot tpm2 --tcti "$TCTI"
for f in rot identity.tss2 tcti; do [ -f "$T/$f" ] || fail "the TPM device lacks $f"; done

# Each case works on a copy of a device (modes kept), so that one case cannot spoil the next.
fresh() { rm -rf "$d/case"; cp -a "$1" "$d/case"; C=$d/case; }

# --- permissions ---------------------------------------------------------------------------------
# Whoever can write the state directory can be the device (swap its certificate, trust their own
# image key, lower a security counter): every command refuses, naming the path, mode and fix.
every_command() { # TEXT: every command refuses (exit 1), its stderr saying TEXT
  local cmd
  for cmd in id status recover evidence attest check-now install trust run peer provision; do
    case $cmd in
      evidence) expect 1 "$AGENT" evidence --state-dir "$C" --nonce 00112233445566778899aabbccddeeff --out "$d/x.cbor" ;;
      attest | run) expect 1 "$AGENT" "$cmd" --state-dir "$C" --server "$SERVER_URL" --server-ca "$SERVER_CA" ;;
      install) expect 1 "$AGENT" install --state-dir "$C" --component app "$d/app.img" ;;
      trust) expect 1 "$AGENT" trust --state-dir "$C" --image-key "$d/img.pub" ;;
      peer) expect 1 "$AGENT" peer connect --state-dir "$C" --peer 127.0.0.1:9 ;;
      provision) expect 1 "$AGENT" provision --state-dir "$C" --rot soft ;;
      *) expect 1 "$AGENT" "$cmd" --state-dir "$C" ;;
    esac
    grep -qF -- "$1" "$E2E_DIR/err" || fail "$cmd: no '$1' in: $(cat "$E2E_DIR/err")"
  done
}
for mode in 777 770 707 1777; do
  fresh "$S"; chmod "$mode" "$C"
  every_command "$C is mode $(printf '%04o' "0$mode"): group or others can write to it"
  err_has "Fix: chmod 700 $C"
done
for sub in components image-keys update components/app; do
  fresh "$S"; mkdir -p "$C/$sub"; chmod 777 "$C/$sub"
  expect 1 "$AGENT" status --state-dir "$C"; err_has "$C/$sub is mode 0777"; err_has "Fix: chmod 700 $C/$sub"
done
if [ "$(id -u)" = 0 ]; then   # another owner can be made only by root
  fresh "$S"; chown 65534 "$C"
  every_command "$C is owned by uid 65534, not by this user (uid 0)"
  chown 0 "$C"
fi
# the soft identity key is a secret: readable by group or others, refused
for mode in 644 640 604 660 606; do
  fresh "$S"; chmod "$mode" "$C/identity.pem"
  case $mode in 6[0-9]6 | 66?) says="can write it" ;; *) says="can read it, and it is a secret" ;; esac
  for cmd in id status evidence attest; do
    case $cmd in
      evidence) expect 1 "$AGENT" evidence --state-dir "$C" --nonce 00112233445566778899aabbccddeeff --out "$d/x.cbor" ;;
      attest) expect 1 "$AGENT" attest --state-dir "$C" --server "$SERVER_URL" --server-ca "$SERVER_CA" ;;
      *) expect 1 "$AGENT" "$cmd" --state-dir "$C" ;;
    esac
    err_has "$C/identity.pem is mode 0$mode: group or others $says"
    err_has "Fix: chmod 600 $C/identity.pem"
  done
done
# ... what is safe is used: 0755 state directory (others may list it), 0400 key, a TPM key blob
fresh "$S"; chmod 755 "$C"; chmod 400 "$C/identity.pem"
expect 0 "$AGENT" id --state-dir "$C"
fresh "$T"; chmod 644 "$C/identity.tss2"; expect 0 "$AGENT" id --state-dir "$C"
# provision makes what it creates private, whatever the umask
(umask 000; "$AGENT" provision --state-dir "$d/new" --rot soft >/dev/null 2>&1) || fail "provision under umask 000"
eq "$(stat -c %a "$d/new")" 700 "a state directory provision made"
eq "$(stat -c %a "$d/new/identity.pem")" 600 "a soft key provision made"

# --- corrupt, truncated, oversized: each file named ---------------------------------------------
# corrupt DEVICE FILE HOW EXIT WANT COMMAND [ARGS...]: on a copy of DEVICE, FILE made garbage,
# empty or huge; COMMAND exits EXIT and its stderr names DEVICE-copy/FILE and says WANT.
corrupt() {
  local dev=$1 f=$2 how=$3 want=$4 what=$5 cmd=$6
  shift 6
  fresh "$dev"
  case $how in
    garbage) printf 'garbage\001\n' >"$C/$f" ;;
    empty) : >"$C/$f" ;;
    huge) head -c 200000 /dev/zero | tr '\0' 7 >"$C/$f" ;;
  esac
  expect "$want" "$AGENT" "$cmd" --state-dir "$C" "$@"
  grep -qF -- "$C/$f" "$E2E_DIR/err" || fail "$f ($how): $cmd does not name the file: $(cat "$E2E_DIR/err")"
  grep -qF -- "$what" "$E2E_DIR/err" || fail "$f ($how): $cmd does not say '$what': $(cat "$E2E_DIR/err")"
  ! grep -q "TLV" "$E2E_DIR/err" || fail "$f ($how): a message about TLVs: $(cat "$E2E_DIR/err")"
  cases=$((cases + 1))
}
cases=0
ev=(--nonce 00112233445566778899aabbccddeeff --out "$d/x.cbor")
for how in garbage empty huge; do
  corrupt "$S" rot "$how" 1 "is corrupt" id
  corrupt "$S" identity.pem "$how" 1 "is corrupt" id
  corrupt "$S" counter.boot "$how" 1 "it should hold the boot counter" evidence "${ev[@]}"
  corrupt "$S" seccnt.0 "$how" 1 "a component's security counter" status
  corrupt "$S" measurements "$how" 1 "it should hold the measurement register" evidence "${ev[@]}"
  corrupt "$S" boot_id "$how" 0 "counting this as a new boot" evidence "${ev[@]}"
  corrupt "$S" measured "$how" 0 "What this boot measured is lost" evidence "${ev[@]}"
  corrupt "$S" components/app/state "$how" 1 "is corrupt" status
  corrupt "$S" components/app/run.json "$how" 0 "is corrupt" status
  corrupt "$S" agent/device.crt "$how" 1 "attest again" check-now
  corrupt "$S" agent/ca-chain.pem "$how" 1 "attest again" check-now
  corrupt "$S" agent/service.json "$how" 1 "give --server URL --server-ca FILE" check-now
  corrupt "$S" update/root.bin "$how" 1 "rampart-agent trust --update-root" status
  corrupt "$S" agent/update/targets.json "$how" 1 "is corrupt" check-now
  corrupt "$S" agent/reports/state.json "$how" 0 "the report queue's counters start again" reports
  corrupt "$S" agent/reports/00000000000000000001.json "$how" 0 "a corrupt report" reports
  corrupt "$S" components/app/a.img "$how" 1 "does not verify" recover
  corrupt "$T" tcti "$how" 1 "is corrupt" id
  corrupt "$T" identity.tss2 "$how" 1 "identity.tss2" id
done
# a root an older version kept as JSON: refused (never taken as "no root"), until given again
fresh "$S"; mv "$C/update/root.bin" "$C/update/root.json"
expect 1 "$AGENT" status --state-dir "$C"; err_has "$C/update/root.json"
err_has "kept in the JSON form of an older version"; err_has "rampart-agent trust --update-root"
expect 0 "$AGENT" trust --state-dir "$C" --update-root "$d/root.json"
[ ! -e "$C/update/root.json" ] || fail "the root an older version kept is still there"
expect 0 "$AGENT" status --state-dir "$C"

# --- upgrading: what the previous version kept as JSON, migrated once by the monitor -------------
# The previous version kept the root as given (S/update/root.json: trust --update-root), the
# monitor's copy of the targets as the service signed them (S/update/targets.json) and the
# capability as applied (S/capability.json). The monitor migrates each, checked again, with no
# operator step; a cut at any point leaves one form usable; a tampered root is refused, never "none".
old_layout() { # [CAPABILITY]: a copy of S as the previous version left it
  fresh "$S"; rm "$C/update/root.bin"; cp "$d/root.json" "$C/update/root.json"
  install -m 600 "$C/agent/update/targets.json" "$C/update/targets.json"
  [ -z "${1:-}" ] || install -m 644 "$1" "$C/capability.json"
}
mon_lock_free() { flock -n "$C/monitor.lock" true; }
mon_start() { # [ENV...]: the monitor on $C, serving
  env "$@" "$MONITOR" --state-dir "$C" >>"$d/monitor.log" 2>&1 &
  mon=$!; E2E_PIDS+=("$mon")
  mon_serving() { "$MONITOR_CALL" "$C/monitor.sock" hello >/dev/null 2>&1; }
  wait_until 60 mon_serving || { cat "$d/monitor.log" >&2; fail "the monitor did not serve $C"; }
}
mon_stop() { kill -TERM "$mon"; wait "$mon" 2>/dev/null || true; wait_until 60 mon_lock_free || fail "the monitor's lock stays"; }
migrated() { # FILE...: each kept in its binary form, its JSON form gone
  for f in "$@"; do
    [ -f "$C/$f.bin" ] || fail "$f.bin was not made: $(tail -n 20 "$d/monitor.log")"
    [ ! -e "$C/$f.json" ] || fail "$f.json is still there"
  done
}
expect 0 "$RAMPART" device capability create --tenant "$acme" --device "$id" --kind development \
  --expires-in 2h --out "$d/cap.json"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.2.0 --security-counter 1 --type app "$d/app.sh" "$d/other.img"
: >"$d/monitor.log"
# the root and the targets: the monitor holds the targets (they name app 1.1.0, not this image); a
# state directory from before S/agent/ kept the agent's own targets at S/update/targets.json too:
# the migration keeps them the agent's (S/agent/update/targets.json), not only the monitor's
old_layout; rm -r "$C/agent/update"; mon_start
migrated update/root update/targets
cmp -s "$C/agent/update/targets.json" "$S/agent/update/targets.json" ||
  fail "the agent's own targets were not kept under the monitor: $(tail -n 20 "$d/monitor.log")"
eq "$(stat -c '%a' "$C/agent/update/targets.json")" 600 "the agent's copy's mode"
grep -qF "$C/update/root.json, kept by an older version, migrated to $C/update/root.bin" "$d/monitor.log" ||
  fail "the migration is not said: $(cat "$d/monitor.log")"
eq "$(stat -c '%a %U' "$C/update/root.bin") $(stat -c '%a' "$C/update/targets.bin")" "644 root 600" "the migrated files' modes"
expect 0 "$AGENT" status --state-dir "$C"
expect 0 "$MONITOR_CALL" "$C/monitor.sock" install app "$d/other.img" 1
out_has "refused: not an image the device's signed targets name (version"; out_has "names app 1.1.0"
mon_stop
# the capability too, and a cut (kill -9 as a power cut would) at each step of the root's migration:
# the next start finds the old form or the new, and finishes
old_layout "$d/cap.json"
for n in 1 2 4 5 6; do
  env RAMPART_FAILPOINT_FROM=migrate RAMPART_FAILPOINT=$n "$MONITOR" --state-dir "$C" >>"$d/monitor.log" 2>&1 &
  cut=$!; st=0; wait "$cut" || st=$?
  eq "$st" 99 "the monitor cut at the migration's step $n"
  wait_until 60 mon_lock_free || fail "the monitor's lock stays after the cut"
  [ -f "$C/update/root.json" ] || [ -f "$C/update/root.bin" ] || fail "cut at $n: no root left"
done
mon_start
migrated update/root update/targets capability
expect 0 "$AGENT" capability show --state-dir "$C"; out_has "development capability from tenant $acme"
expect 0 "$AGENT" status --state-dir "$C"
mon_stop
# once only: a second start finds nothing to migrate
mon_start; mon_stop
eq "$(grep -c "$C/capability.json, kept by an older version, migrated" "$d/monitor.log")" 1 "the capability migrated once"
# a tampered root: refused, named, not migrated, never taken as no root (the monitor does not
# serve: its recovery cannot read the root); nor are its targets and capability
old_layout "$d/cap.json"
jq '.signatures[0].sig |= (if .[0:1] == "A" then "B" else "A" end) + .[1:]' "$d/root.json" >"$C/update/root.json"
: >"$d/monitor.log"; st=0; "$MONITOR" --state-dir "$C" >>"$d/monitor.log" 2>&1 || st=$?
[ "$st" != 0 ] || fail "the monitor served a tampered root: $(cat "$d/monitor.log")"
wait_until 60 mon_lock_free || fail "the monitor's lock stays"
grep -qF "$C/update/root.json, kept by an older version, is refused and not migrated" "$d/monitor.log" ||
  fail "the refusal is not said: $(cat "$d/monitor.log")"
[ -f "$C/update/root.json" ] && [ ! -e "$C/update/root.bin" ] || fail "the tampered root was migrated"
[ ! -e "$C/update/targets.bin" ] && [ ! -e "$C/capability.bin" ] || fail "targets or capability migrated without a root"
expect 1 "$AGENT" status --state-dir "$C"; err_has "$C/update/root.json"; err_has "not migrated"
# single-process mode (no monitor: the agent is the one process, and reads the JSON itself):
# `run` migrates the same files once at its start, by the same steps; a state directory from
# before S/agent/ kept the agent's own targets at S/update/targets.json: it keeps them
old_layout "$d/cap.json"; rm -r "$C/agent/update"
single_migrated() { grep -qF "$C/capability.json, kept by an older version, migrated" "$d/run1.log"; }
# (a service that does not answer: the targets stay as migrated)
"$AGENT" run --state-dir "$C" --server https://127.0.0.1:1 --server-ca "$SERVER_CA" --start-jitter 0 >"$d/run1.log" 2>&1 &
runner=$!; E2E_PIDS+=("$runner")
wait_until 60 single_migrated || fail "run did not migrate: $(cat "$d/run1.log")"
kill "$runner"; wait "$runner" 2>/dev/null || true
migrated update/root update/targets capability
grep -qF "$C/update/root.json, kept by an older version, migrated to $C/update/root.bin" "$d/run1.log" ||
  fail "the root's migration is not said: $(cat "$d/run1.log")"
cmp -s "$C/agent/update/targets.json" "$S/agent/update/targets.json" || fail "the agent's own targets were not kept"
expect 0 "$AGENT" status --state-dir "$C"
expect 0 "$AGENT" capability show --state-dir "$C"; out_has "development capability from tenant $acme"
expect 0 "$AGENT" check-now --state-dir "$C" --server "$SERVER_URL" --server-ca "$SERVER_CA" --health-seconds 1
# and a tampered root: refused, named, left; nor are its targets and capability migrated
old_layout "$d/cap.json"
jq '.signatures[0].sig |= (if .[0:1] == "A" then "B" else "A" end) + .[1:]' "$d/root.json" >"$C/update/root.json"
single_refused() { grep -qF "$C/update/root.json, kept by an older version, is refused and not migrated" "$d/run1.log"; }
"$AGENT" run --state-dir "$C" --server https://127.0.0.1:1 --server-ca "$SERVER_CA" --start-jitter 0 >"$d/run1.log" 2>&1 &
runner=$!; E2E_PIDS+=("$runner")
wait_until 60 single_refused || fail "run did not refuse the tampered root: $(cat "$d/run1.log")"
kill "$runner"; wait "$runner" 2>/dev/null || true
[ -f "$C/update/root.json" ] && [ ! -e "$C/update/root.bin" ] || fail "the tampered root was migrated"
[ ! -e "$C/update/targets.bin" ] && [ ! -e "$C/capability.bin" ] || fail "targets or capability migrated without a root"
# a corrupt rot file says which word to write back (the key file tells)
corrupt "$S" rot garbage 1 "Fix: echo soft > $d/case/rot" id
corrupt "$T" rot garbage 1 "Fix: echo tpm2 > $d/case/rot" id
# a soft device's rot file saying tpm2: the TPM is looked for, and the message says so (it once
# printed a path it never set)
fresh "$S"; echo tpm2 >"$C/rot"
expect 1 "$AGENT" id --state-dir "$C"; err_has "tpm2"; ! grep -q "error:  " "$E2E_DIR/err" || fail "an empty path: $(cat "$E2E_DIR/err")"
# a corrupt device certificate is replaced by attesting again (the daemon attests at start)
fresh "$S"; printf 'garbage\n' >"$C/agent/device.crt"
expect 0 "$AGENT" attest --state-dir "$C" --server "$SERVER_URL" --server-ca "$SERVER_CA"
expect 0 "$AGENT" check-now --state-dir "$C" --health-seconds 1
# a corrupt targets file refuses the update (the device could not refuse older targets), changes nothing
fresh "$S"; printf 'garbage\n' >"$C/agent/update/targets.json"
expect 1 "$AGENT" check-now --state-dir "$C" --health-seconds 1
err_has "update refused: $C/agent/update/targets.json is not usable"
eq "$(cat "$C/agent/update/targets.json")" garbage "the corrupt targets file, left for the operator"
echo "corrupt state files: $cases cases, each named"

# --- the measured list: versioned JSON; the earlier line format converted once ------------------
jq -e '.format == 1 and .boot >= 1 and (.components | length) == 1 and .components[0].name == "app" and
  .components[0].security_counter == 1 and (.components[0].digest | test("^[0-9a-f]{64}$"))' "$S/measured" >/dev/null ||
  fail "measured: $(cat "$S/measured")"
fresh "$S"
jq -r '"boot \(.boot)", (.components[] | "\(.digest) \(.signer) \(.security_counter // "-") \(.version) \(.name)")' \
  "$C/measured" >"$d/measured.lines"
cp "$d/measured.lines" "$C/measured"
register=$(cat "$C/measurements")
expect 0 "$AGENT" evidence --state-dir "$C" "${ev[@]}"
err_has "$C/measured: converted to format 1 (1 component(s)"
! grep -q "measured app" "$E2E_DIR/err" || fail "the conversion measured again: $(cat "$E2E_DIR/err")"
eq "$(jq -S . "$C/measured")" "$(jq -S . "$S/measured")" "the converted list"
eq "$(cat "$C/measurements")" "$register" "the register after the conversion"
expect 0 "$AGENT" evidence --state-dir "$C" "${ev[@]}"
! grep -q "converted" "$E2E_DIR/err" || fail "converted twice"
# the service agrees: the register is the hash chain of the list it was converted to
expect 0 "$AGENT" attest --state-dir "$C" --server "$SERVER_URL" --server-ca "$SERVER_CA"
# a list from a newer agent is not misread: refused with its format, measured afresh
fresh "$S"; jq '.format = 2' "$S/measured" >"$C/measured"
expect 0 "$AGENT" evidence --state-dir "$C" "${ev[@]}"
err_has "$C/measured: corrupt: format 2, and this agent reads format 1"
# a component that is not what a list may hold: refused, named
for bad in '.components[0].digest = "zz"' '.components[0].name = "../x"' '.components[0].security_counter = -1' \
  '.components = [range(17) | {}]' '.boot = "one"'; do
  fresh "$S"; jq "$bad" "$S/measured" >"$C/measured"
  expect 0 "$AGENT" evidence --state-dir "$C" "${ev[@]}"
  err_has "$C/measured: corrupt: "
done

# --- run's watchdog while an install is on trial (review r13 M4), single-process mode: the trial
# (an app told when to say it is ready, --health-seconds 120) is waited for, and run goes on
# feeding its 2 s watchdog meanwhile.
told_app "$d/told.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.2.0 --security-counter 1 --type app "$d/told.sh" \
  "$d/told.img"
expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/told.img"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$(cat "$d/out")"
watchdog_listen
"${WATCHDOG[@]}" "$AGENT" run --state-dir "$S" --server "$SERVER_URL" --server-ca "$SERVER_CA" --health-seconds 120 \
  --start-jitter 0 >"$d/run.log" 2>&1 &
runner=$!; E2E_PIDS+=("$runner")
told_waits() { local p; p=$(app_shell app 1.2.0+0) && catches "$p" "$(kill -l USR1)"; }
wait_until 120 told_waits || fail "run's install of 1.2.0 never reached its trial: $(cat "$d/run.log")"
watchdog_fed "run's install was on trial" "$d/run.log"
kill -USR1 "$(app_shell app 1.2.0+0)"
installed() { grep -q "update check: 1 installed" "$d/run.log"; }
wait_until 60 installed || fail "run: $(cat "$d/run.log")"
kill -TERM "$runner"; wait "$runner" || fail "run did not stop cleanly: $(cat "$d/run.log")"
done_ok
