#!/usr/bin/env bash
# End to end, rampart-monitor on a soft and a swtpm root of trust: every request through a small
# client (tests/tools/monitor-call), who may connect (SO_PEERCRED), one monitor per state
# directory, bad packets refused while it keeps serving, installs good and refused, a client
# killed mid-install, the counter binding tampered with, SIGTERM, and its seccomp filter.
# Runs as root (the monitor does).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MONITOR_CALL:?set MONITOR_CALL}"
[ "$(id -u)" = 0 ] || fail "the monitor's test runs as root (as CI does)"
d=$E2E_DIR
chmod 711 "$d" # the agent's user and nobody reach the socket's directory (not S)
AGENT_USER=daemon
getent passwd "$AGENT_USER" nobody >/dev/null || fail "needs the users $AGENT_USER and nobody"

expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k.key"
expect 0 "$RAMPART" key public --key "$d/k.key" --out "$d/k.pub"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/rogue.key"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$d/good.sh"
printf '#!/bin/sh\nexec sleep 3600\n' >"$d/quiet.sh" # never says ready: its trial lasts
printf '#!/bin/sh\nexit 3\n' >"$d/crash.sh"
sign() { expect 0 "$RAMPART" image sign --key "$1" --version "$2" --security-counter "$3" --type app "$4" "$d/$5"; }
sign "$d/k.key" 1.1.0 2 "$d/good.sh" v110.img
sign "$d/k.key" 1.2.0 3 "$d/quiet.sh" v120.img
sign "$d/k.key" 1.3.0 4 "$d/good.sh" v130.img
sign "$d/rogue.key" 9.0.0 9 "$d/good.sh" rogue.img
sign "$d/k.key" 1.0.1 2 "$d/crash.sh" crash.img

stop_monitor() { # SOCK: SIGTERM, a clean exit, the socket removed
  kill -TERM "$MON_PID"
  local rc=0
  wait "$MON_PID" || rc=$?
  eq "$rc" 0 "the monitor's exit status after SIGTERM"
  [ ! -e "$1" ] || fail "the socket $1 is left behind"
}
call() { expect "$1" "$MONITOR_CALL" "$SOCK" "${@:2}"; }
state_of() { jq -r "$1" "$S/components/app/state" 2>/dev/null; }

suite() { # KIND: soft or tpm2
  local kind=$1 log=$d/$1.log
  S=$d/$kind
  if [ "$kind" = tpm2 ]; then
    start_swtpm "$d/tpm"
    expect 0 "$AGENT" provision --state-dir "$S" --rot tpm2 --tcti "$TCTI" --image-key "$d/k.pub"
    SOCK=$S/monitor.sock # the default: in S, root's only
    start_monitor "$S" "$SOCK" "$log"
  else
    expect 0 "$AGENT" provision --state-dir "$S" --rot soft --image-key "$d/k.pub"
    mkdir -m 755 "$d/run"
    # A careless operator: the agent as root (or an app's uid) is refused, not run weakened.
    expect 2 timeout 60 "$MONITOR" --state-dir "$S" --agent-user root
    err_has "--agent-user root: uid 0 is root"
    SOCK=$d/run/monitor.sock
    start_monitor "$S" "$SOCK" "$log" --socket "$SOCK" --agent-user "$AGENT_USER"
    # the socket: 0660, the agent's user's
    eq "$(stat -c '%a %U' "$SOCK")" "660 $AGENT_USER" "the socket's mode and owner"
  fi

  # --- every request ---------------------------------------------------------------------------
  call 0 hello; out_has "version 2 packet_max"
  call 0 id
  read -r id kind_no spki <"$d/out"
  printf '%s' "$spki" | xxd -r -p >"$d/dev.der"
  eq "$(sha256sum <"$d/dev.der" | cut -d' ' -f1)" "$id" "the device ID is the key's hash"
  [ "$kind" = tpm2 ] || { expect 0 "$AGENT" id --state-dir "$S"; out_has "device id: $id"; }
  # SIGN_TLS13: the monitor signs RFC 8446's CertificateVerify content around the hash, and
  # nothing else: the signature verifies over SHA-256 of that content, never over the hash itself
  # taken as a digest (what the retired SIGN signed, and what forged evidence or a CSR would need).
  local who alg n
  for args in "client sha256 32" "server sha384 48"; do
    read -r who alg n <<<"$args"
    printf 'transcript %s' "$who" | openssl dgst "-$alg" -binary >"$d/hash"
    call 0 sign-tls13 "$who" "$(xxd -p -c 64 "$d/hash")"
    xxd -r -p "$d/out" >"$d/sig.der"
    { head -c 64 /dev/zero | tr '\0' ' '; printf 'TLS 1.3, %s CertificateVerify\0' "$who"
      cat "$d/hash"; } >"$d/content"
    eq "$(stat -c %s "$d/content")" "$((98 + n))" "the CertificateVerify content's length"
    expect 0 openssl dgst -sha256 -verify "$d/dev.der" -keyform DER -signature "$d/sig.der" \
      "$d/content"
    head -c 32 "$d/hash" >"$d/digest"
    expect 1 openssl pkeyutl -verify -pubin -keyform DER -inkey "$d/dev.der" -in "$d/digest" \
      -sigfile "$d/sig.der"
  done
  # the retired SIGN (type 4, a bare digest) is an unknown type; a side other than client/server
  # and a hash of neither length are refused
  call 1 raw "52504d4e000200040000000100000022""0020$(xxd -p -c 64 "$d/digest")"
  out_has "error 14"; out_has closed
  call 1 sign-tls13 neither "$(xxd -p -c 64 "$d/digest")"; out_has "error 22"
  call 1 sign-tls13 client "$(xxd -p -c 64 "$d/digest")00"; out_has "error 22"
  call 0 install app "$d/v110.img" 1; out_has "installed: started and said it is ready"
  call 0 status; out_has "app 1.1.0+0 a 2 installed"
  call 0 evidence 00112233445566778899aabbccddeeff "$d/token.cbor"
  expect 0 "$(dirname "$0")/../tools/check-eat.py" "$d/token.cbor" "$d/dev.der"
  jq -e '."-70001"[0]."1" == "app" and ."-70001"[0]."2" == "1.1.0+0"' "$d/out" >/dev/null \
    || fail "the evidence does not measure app 1.1.0: $(cat "$d/out")"
  call 0 recover; out_has "unbootable 0"

  # --- refusals: the image ----------------------------------------------------------------------
  call 0 install app "$d/rogue.img" 1; out_has "refused: not signed by a trusted key"
  call 1 install app /dev/null 1; out_has "must be a regular file"
  call 0 status; out_has "app 1.1.0+0 a 2 refused"

  # --- bad packets: an error reply, the connection closed, the monitor serving on --------------
  call 1 junk 20000; out_has "error 18: request refused: too large"; out_has closed
  call 1 raw 00; out_has "error 3: request refused: truncated"; out_has closed
  call 1 raw 52504d4f000100020000000100000000; out_has "error 4"      # magic
  call 1 raw 52504d4e000300020000000100000000; out_has "error 17"     # version
  call 1 raw 52504d4e000200630000000100000000; out_has "error 14"     # type
  call 1 raw 52504d4e00020002000000010000000100; out_has "error 18"   # STATUS has no body
  call 1 raw 52504d4e0002000200000001000000ff; out_has "error 3"      # body shorter than said
  call 0 hello; out_has "version 2"

  # --- the slots' lock: an agent changing the slots itself holds S/update.lock; never waited for
  exec 9>"$S/update.lock"
  flock 9
  call 1 install app "$d/v110.img" 1; out_has "the slots are busy"
  call 0 hello
  exec 9>&-

  # --- one monitor per state directory ---------------------------------------------------------
  expect 1 "$MONITOR" --state-dir "$S" --socket "$d/other.sock"
  err_has "another rampart-monitor (pid $MON_PID) serves $S already"
  call 0 hello

  # --- a client killed mid-install: the monitor finishes; the component stays bootable ---------
  "$MONITOR_CALL" "$SOCK" install app "$d/v120.img" 3 >/dev/null 2>&1 &
  local client=$!
  on_trial() { [ "$(state_of .trial)" = b ]; }
  wait_until 60 on_trial || fail "the install never reached its trial"
  kill -9 "$client"
  wait "$client" 2>/dev/null || true
  done_trial() { [ "$(state_of .trial)" = null ] && [ "$(state_of .last_update.result)" = installed ]; }
  wait_until 60 done_trial || fail "the install did not finish: $(cat "$S/components/app/state")"
  call 0 recover; out_has "unbootable 0"
  call 0 status; out_has "app 1.2.0+0 b 3 installed"

  # --- the counter binding: a state moved to another counter is refused ------------------------
  stop_monitor "$SOCK"
  cp "$S/components/app/state" "$d/state.good"
  jq '.security_counter_index = 9' "$d/state.good" >"$S/components/app/state"
  if [ "$kind" = tpm2 ]; then start_monitor "$S" "$SOCK" "$log"
  else start_monitor "$S" "$SOCK" "$log" --socket "$SOCK" --agent-user "$AGENT_USER"; fi
  grep -q "counter_binding does not match security counter 9: TAMPERED" "$log" \
    || fail "the tampered binding was not said at start"
  call 1 install app "$d/v130.img" 1; out_has "its state's counter binding is tampered"
  call 0 recover; out_has "unbootable 1" # tampered: counted, its counter and slots untouched
  jq 'del(.counter_binding)' "$d/state.good" >"$S/components/app/state"
  call 1 install app "$d/v130.img" 1; out_has "counter binding is tampered"
  cp "$d/state.good" "$S/components/app/state"
  call 0 install app "$d/v130.img" 1; out_has "installed"
  call 0 status; out_has "app 1.3.0+0 a 4 installed"

  stop_monitor "$SOCK"
}

suite soft

# --- who may connect (soft: the socket is outside S, 0660, the agent user's) --------------------
S=$d/soft SOCK=$d/run/monitor.sock
start_monitor "$S" "$SOCK" "$d/soft.log" --socket "$SOCK" --agent-user "$AGENT_USER"
expect 0 setpriv --reuid="$AGENT_USER" --regid="$AGENT_USER" --clear-groups "$MONITOR_CALL" "$SOCK" hello
out_has "version 2"
# nobody in the agent's group passes the file's mode: SO_PEERCRED refuses it
expect 3 setpriv --reuid=nobody --regid="$(id -g "$AGENT_USER")" --clear-groups "$MONITOR_CALL" "$SOCK" hello
out_has closed
grep -q "refused a connection from uid $(id -u nobody)" "$d/soft.log" || fail "the refusal is not logged"
expect 3 setpriv --reuid=nobody --regid=nogroup --clear-groups "$MONITOR_CALL" "$SOCK" hello
call 0 hello # still serving
stop_monitor "$SOCK"

# --- the agent asks the monitor when it serves S (S/monitor.sock): `id` and `evidence` ---------
# The soft key file is moved away while the monitor (which read it at start) runs: only a command
# that goes through the monitor still works.
S=$d/soft SOCK=$S/monitor.sock
start_monitor "$S" "$SOCK" "$d/soft.log"
expect 0 "$MONITOR_CALL" "$SOCK" id
read -r id _ <"$d/out"
mv "$S/identity.pem" "$d/identity.pem"
expect 0 "$AGENT" id --state-dir "$S"; out_has "device id: $id"; out_has "BEGIN PUBLIC KEY"
expect 0 "$AGENT" evidence --state-dir "$S" --nonce 00112233445566778899aabbccddeeff --out "$d/t2.cbor"
out_has "made by rampart-monitor"
expect 0 "$(dirname "$0")/../tools/check-eat.py" "$d/t2.cbor" "$d/dev.der"
mv "$d/identity.pem" "$S/identity.pem"
stop_monitor "$SOCK"
# no monitor: the agent opens the root of trust itself, as before
expect 0 "$AGENT" id --state-dir "$S"; out_has "device id: $id"

suite tpm2

# --- a TPM without a resource manager (swtpm): what a process loaded stays after it.
T=$d/tpm2-first SOCK=$d/tpm2-first/monitor.sock
start_swtpm "$d/tpm-first" # a TPM of its own: the counters are the TPM's
expect 0 "$AGENT" provision --state-dir "$T" --rot tpm2 --tcti "$TCTI" --image-key "$d/k.pub"
# Monitors killed -9 with their key loaded (OOM, a crash, the watchdog) leave it in the TPM: after
# two the next one had no room to load its key, and blamed the key file. Each flushes what the
# dead left as it starts.
for k in 1 2 3; do
  start_monitor "$T" "$SOCK" "$d/tpm2-first.log"
  call 0 sign-tls13 client "$(xxd -p -c 64 "$d/hash")"
  [ "$k" = 3 ] && break
  kids=$(pgrep -P "$MON_PID" || true) # its app supervisor
  kill -9 "$MON_PID"; wait "$MON_PID" 2>/dev/null || true
  for p in $kids; do kill -9 "$p" 2>/dev/null || true; done
  lock_free() { flock -n "$T/monitor.lock" true; }
  wait_until 30 lock_free || fail "the killed monitor's processes still hold $T/monitor.lock"
done
# A device's first install fails its trial (no app left): the monitor signs on after it. (Its
# install child once released the connection it inherited from the monitor, which flushed the
# monitor's key from the TPM: error 15 at the next SIGN_TLS13. The monitor now lets go of its
# connection before the fork, rp_rot_idle: /dev/tpm0 admits one open connection. That part cannot
# be seen here: the swtpm TCTI connects per command, and the cmd TCTI that holds a connection, as
# unit.rot uses, needs an exec the monitor's seccomp filter forbids.)
call 0 install app "$d/crash.img" 1; out_has "rolled_back"
call 0 sign-tls13 client "$(xxd -p -c 64 "$d/hash")"
stop_monitor "$SOCK"

# --- its own seccomp filter: a forbidden call kills it -----------------------------------------
expect 159 "$MONITOR" --state-dir "$d/soft" --seccomp-selftest # 128 + SIGSYS

echo "PASS: monitor ($E2E_CHECKS checks)"
