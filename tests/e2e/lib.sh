# Shared by the end-to-end tests: a scratch directory, and assertions on exit codes and output.
# Each test sources this, then calls the helpers; the first failed assertion ends the test.
set -Eeuo pipefail
# A command that fails outside the helpers below still says where, not just a bare exit status.
trap 'echo "FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND exited $?" >&2' ERR

: "${RAMPART:?set RAMPART to the rampart binary}"
E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rampart-e2e.XXXXXX")
E2E_PIDS=()
E2E_CHECKS=0
cleanup() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${PG_DIR-}" ]; then "$(dirname "${BASH_SOURCE[0]}")/../tools/pg" stop "$PG_DIR" || true; rm -rf "$PG_DIR"; fi
  rm -rf "$E2E_DIR"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect CODE CMD...: run CMD, require exit status CODE; its stdout and stderr are kept in
# $E2E_DIR/out and $E2E_DIR/err for the checks that follow.
expect() {
  local want=$1 got=0
  shift
  "$@" >"$E2E_DIR/out" 2>"$E2E_DIR/err" || got=$?
  E2E_CHECKS=$((E2E_CHECKS + 1))
  if [ "$got" != "$want" ]; then
    echo "--- stdout" >&2; cat "$E2E_DIR/out" >&2
    echo "--- stderr" >&2; cat "$E2E_DIR/err" >&2
    fail "exit $got, wanted $want: $*"
  fi
}

# expect_fail CMD...: CMD must fail (any nonzero status: other tools have their own codes).
expect_fail() {
  local got=0
  "$@" >"$E2E_DIR/out" 2>"$E2E_DIR/err" || got=$?
  E2E_CHECKS=$((E2E_CHECKS + 1))
  [ "$got" != 0 ] || fail "succeeded, should have failed: $*"
}

# out_has / err_has TEXT: the last command's stdout / stderr contains TEXT.
out_has() { grep -qF -- "$1" "$E2E_DIR/out" || { cat "$E2E_DIR/out" >&2; fail "stdout lacks '$1'"; }; }
err_has() { grep -qF -- "$1" "$E2E_DIR/err" || { cat "$E2E_DIR/err" >&2; fail "stderr lacks '$1'"; }; }
out_lines() { [ "$(wc -l <"$E2E_DIR/out")" -eq "$1" ] || { cat "$E2E_DIR/out" >&2; fail "stdout is not $1 line(s)"; }; }

# eq A B WHAT
eq() { [ "$1" = "$2" ] || fail "$3: '$1' != '$2'"; E2E_CHECKS=$((E2E_CHECKS + 1)); }

# le16_at FILE OFFSET: the little-endian 16-bit value at OFFSET.
le16_at() { od -An -tu2 -j "$2" -N2 --endian=little "$1" | tr -d ' '; }
# put_bytes FILE OFFSET HEX: overwrite bytes in place.
put_bytes() { printf '%s' "$3" | xxd -r -p | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# flip FILE OFFSET: invert one byte.
flip() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  put_bytes "$1" "$2" "$(printf '%02x' $((b ^ 0xff)))"
}

# wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds; false once SECONDS have passed.
# Tests wait for a state, never for a time: SECONDS is a bound for a loaded machine, not how long
# anything is expected to take.
wait_until() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}

# The agent's watchdog (review r13 M4): a service manager's notification socket (notify-listen.py)
# that any user may send to (the agent's too), $E2E_DIR/notify.sock, its messages in
# $E2E_DIR/notes; WATCHDOG, the environment that gives a daemon it and a 2 s watchdog, as systemd's
# WatchdogSec does: `"${WATCHDOG[@]}" CMD` (env execs CMD, so $! is CMD's).
watchdog_listen() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/notify-listen.py" "$E2E_DIR/notify.sock" "$E2E_DIR/notes" &
  E2E_PIDS+=("$!")
  wait_until 30 test -S "$E2E_DIR/notify.sock" || fail "the notification socket did not appear"
  chmod 666 "$E2E_DIR/notify.sock"
  touch "$E2E_DIR/notes"
  WATCHDOG=(env "NOTIFY_SOCKET=$E2E_DIR/notify.sock" WATCHDOG_USEC=2000000)
}
# watchdog_pings: how many WATCHDOG=1 have come.
watchdog_pings() { grep -c '^WATCHDOG=1$' "$E2E_DIR/notes" || true; }
# watchdog_fed WHAT LOG: three more WATCHDOG=1 come from here on (the daemon, pinging at half of
# the 2 s, goes on while it waits on WHAT); else the test fails, showing LOG.
watchdog_fed() {
  local base
  base=$(watchdog_pings)
  more_pings() { [ "$(watchdog_pings)" -ge $((base + 3)) ]; }
  wait_until 30 more_pings ||
    fail "no watchdog fed while $1 ($(watchdog_pings) pings, $base before): $(cat "$2")"
}

# Faked clocks: libfaketime, preloaded directly, not through the `faketime` wrapper (the wrapper
# makes a named semaphore per pid and refuses to run when one is left over from a killed run whose
# pid has come round again). Every preload of it takes FAKED_ENV, as `env "${FAKED_ENV[@]}"
# FAKETIME=... CMD` (a simple command: $! of one started with & is then CMD itself, env execs it).
# Its ASAN_OPTIONS keeps a binary of the ASan build from deadlocking as it starts: ASan's allocator
# reads the clock while it holds a size class's lock, Debian 12's libfaketime (0.9.10) sets itself
# up on that first call and allocates, and when that allocation falls in the same size class (it
# depends on the lengths of paths) the process waits on itself for ever. With the allocator never
# returning memory to the system (-1), it never reads the clock (docs/development.md, "Faked
# clocks"). The option means nothing to a binary built without ASan.
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
FAKED_ENV=(LD_PRELOAD="$FAKETIME_LIB"
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_release_to_os_interval_ms=-1")

# faked_ok BIN: libfaketime is there, and BIN (a Rampart program) starts under it: its --version
# answers within 30 s. Else it says why on stderr and returns 125, so that a test that would hang in a deadlock at
# a binary's start fails within a bounded time, naming it. Asked once per binary.
declare -A E2E_FAKED_OK=()
faked_ok() {
  [ -z "${E2E_FAKED_OK[$1]-}" ] || return 0
  if [ ! -r "$FAKETIME_LIB" ]; then # (ld.so would only warn, and the clock would not move)
    echo "no libfaketime at $FAKETIME_LIB (the faketime package, scripts/install-deps)" >&2
    return 125
  fi
  if ! timeout 30 env "${FAKED_ENV[@]}" FAKETIME=+1h "$1" --version >/dev/null 2>&1; then
    echo "$1 does not start under libfaketime (its --version did not answer within 30 s): a" \
      "deadlock between ASan's allocator and libfaketime? (docs/development.md, \"Faked clocks\")" >&2
    return 125
  fi
  E2E_FAKED_OK[$1]=1
}

# move_clock FILE OFFSET: the clock of programs started with FAKETIME_TIMESTAMP_FILE=FILE and
# FAKETIME_NO_CACHE=1 (libfaketime reads FILE at each call) moved to OFFSET, by a rename: written
# in place, a call between the truncation and the write would find FILE empty.
move_clock() { printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"; }

# at_clock OFFSET CMD...: run CMD (a Rampart program and its arguments) with its wall clock moved
# by OFFSET (libfaketime's form: '+3h', '+2d', '@2026-11-29 10:00:00').
at_clock() {
  local offset=$1
  shift
  faked_ok "$1" || return
  env "${FAKED_ENV[@]}" FAKETIME="$offset" "$@"
}

# A free TCP port on loopback (the kernel picks it; another process could take it before use, so
# servers here bind to port 0 where they can, and serve_on_free_port starts the others).
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# free_port_pair: a free port whose next one is free too (swtpm takes both). After a benchmark,
# thousands of ports linger in TIME_WAIT, and swtpm, without SO_REUSEADDR, cannot bind those.
free_port_pair() { "$(dirname "${BASH_SOURCE[0]}")/../../scripts/free-port-pair"; }
# port_open PORT: something accepts connections on loopback PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# listening PORT: a socket listens on loopback PORT (seen in the kernel's table, without connecting).
listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
# listens PID PORT: process PID itself listens on PORT (not another that took the port first).
listens() { ss -Hltnp "sport = :$2" 2>/dev/null | grep -q "pid=$1,"; }

# serve_on_free_port [--pair] LOG START UP: a server that cannot bind port 0, on loopback ports
# free_port picked, started again on others while it loses the race for them (a port free when
# picked can be taken before the server binds it: the server then dies). At each try, PORT and
# PORT2 are two free ports (--pair: PORT2 is PORT + 1, both free, as swtpm needs); START starts
# the server in the background (the last command it starts with &, writing to LOG); UP says it
# serves (it may use $SERVE_PID: `listens "$SERVE_PID" "$PORT"`, not `listening "$PORT"`, which
# the port's thief would satisfy). Sets SERVE_PID, stopped with the others at exit. A server that
# lives but does not serve within 120 s (a bound for a loaded machine: the README tour's server
# starts after the tour's first steps) has lost no race: the test fails then, as after 5 lost
# races, showing LOG.
serve_on_free_port() {
  local pair= try
  [ "$1" != --pair ] || { pair=1; shift; }
  local log=$1 start=$2 up=$3
  serve_settled() { ! kill -0 "$SERVE_PID" 2>/dev/null || "$up"; }
  for try in 1 2 3 4 5; do
    if [ -n "$pair" ]; then
      PORT=$(free_port_pair) PORT2=$((PORT + 1))
    else
      PORT=$(free_port) PORT2=$(free_port) # the same twice: the server dies, and tries again
    fi
    "$start"
    SERVE_PID=$!
    E2E_PIDS+=("$SERVE_PID")
    if ! wait_until 120 serve_settled; then
      kill "$SERVE_PID" 2>/dev/null || true
      cat "$log" >&2
      fail "$start: alive, but not serving on port $PORT within 120 s"
    fi
    kill -0 "$SERVE_PID" 2>/dev/null && "$up" && return 0
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  done
  cat "$log" >&2
  fail "$start: no server started on a free port in 5 tries"
}

# start_pg: a PostgreSQL 15 of the test's own (tests/tools/pg) on a socket in $PG_DIR (beside
# $E2E_DIR, which its unprivileged owner could not enter), stopped and removed when the test ends;
# its URI in PG_URI. restart_pg: stop and start it (its clients' connections break).
start_pg() {
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rampart-pg.XXXXXX")
  PG_URI=$("$(dirname "${BASH_SOURCE[0]}")/../tools/pg" start "$PG_DIR")
}
restart_pg() { "$(dirname "${BASH_SOURCE[0]}")/../tools/pg" restart "$PG_DIR"; }

# start_server DIR [ARGS...]: run rampart-server on a free port; sets SERVER_URL, SERVER_CA,
# SERVER_PID, ADMIN_TOKEN (a file). Its log is DIR.log. SERVER_CLOCK=OFFSET (at_clock's form) runs
# it with its wall clock moved.
start_server() {
  local dir=$1 i bin=${RAMPART_SERVER:?set RAMPART_SERVER} pre=()
  shift
  if [ -n "${SERVER_CLOCK-}" ]; then
    faked_ok "$bin" || fail "the server cannot run with its clock moved"
    pre=(env "${FAKED_ENV[@]}" FAKETIME="$SERVER_CLOCK")
  fi
  rm -f "$dir.port"
  "${pre[@]}" "$bin" --data-dir "$dir" --listen 127.0.0.1:0 \
    --port-file "$dir.port" "$@" >"$dir.log" 2>&1 &
  SERVER_PID=$!
  E2E_PIDS+=("$SERVER_PID")
  server_up() {
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir.log" >&2; fail "the server died"; }
    [ -s "$dir.port" ]
  }
  wait_until 60 server_up || fail "the server did not start"
  SERVER_URL="https://127.0.0.1:$(cat "$dir.port")"
  SERVER_CA="$dir/server-ca.pem"
  ADMIN_TOKEN="$dir/admin.token"
}

# Years crossed under a faked clock (e2e.ca_rollover, e2e.service_ca_rollover): restart_at WHEN DIR
# starts the service of DIR again (stopping the one running, if any) with its clock at WHEN
# (at_clock's form), from the binary SERVER_BIN, and points the CLI at it; run_at (a Rampart
# program) and faked_at (curl, openssl) run a command at WHEN too.
restart_at() {
  if [ -n "${SERVER_PID-}" ]; then
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  WHEN=$1
  RAMPART_SERVER=${SERVER_BIN:?set SERVER_BIN} SERVER_CLOCK=$WHEN start_server "$2"
  export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
}
run_at() { at_clock "$WHEN" "$@"; }
faked_at() { env "${FAKED_ENV[@]}" FAKETIME="$WHEN" "$@"; }

# tenant_with_root ROOT_JSON: after start_server, the operator's side of an update flow: the CLI
# pointed at the server, a tenant ($acme) whose appraisal policy allows devices with debug enabled
# and nothing installed yet (test machines), its offline root key ($E2E_DIR/root.key), an image
# key ($E2E_DIR/img.key, .pub) registered as "release", and its root of update trust signed into
# ROOT_JSON.
tenant_with_root() {
  export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
  expect 0 "$RAMPART" tenant create acme; acme=$(cat "$E2E_DIR/out")
  expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
  root_for_tenant "$1"
}

# root_for_tenant ROOT_JSON: for the tenant $acme (the CLI pointed at the server), the keys and
# the root of update trust of tenant_with_root.
root_for_tenant() {
  expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$E2E_DIR/root.key"
  expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$E2E_DIR/img.key"
  expect 0 "$RAMPART" key public --key "$E2E_DIR/img.key" --out "$E2E_DIR/img.pub"
  expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$E2E_DIR/img.pub" --name release
  expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$E2E_DIR/root.key" --out "$1"
}

# device_with_image IMAGE_ID: after tenant_with_root, a device ($AGENT, state in $E2E_DIR/dev; its
# ID in $dev) provisioned, claimed by $acme, in Thermostat's "Field Test" group (made here), with
# IMAGE_ID deployed to that group, attested at $SERVER_URL.
device_with_image() {
  expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
  expect 0 "$AGENT" provision --state-dir "$E2E_DIR/dev" --rot soft; dev=$(tail -n1 "$E2E_DIR/out")
  expect 0 "$RAMPART" device claim --tenant "$acme" "$dev"
  expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$dev"
  expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$1"
  expect 0 "$AGENT" attest --state-dir "$E2E_DIR/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
}

# start_swtpm DIR: a software TPM on loopback; sets TCTI.
start_swtpm() {
  SWTPM_DIR=$1
  mkdir -p "$SWTPM_DIR"
  swtpm_start() {
    swtpm socket --tpm2 --tpmstate dir="$SWTPM_DIR" --flags not-need-init,startup-clear \
      --server type=tcp,port="$PORT",bindaddr=127.0.0.1 \
      --ctrl type=tcp,port="$PORT2",bindaddr=127.0.0.1 >"$SWTPM_DIR.log" 2>&1 &
  }
  # Looked at, not connected to: swtpm serves one client at a time.
  swtpm_up() { listens "$SERVE_PID" "$PORT" && listens "$SERVE_PID" "$PORT2"; }
  serve_on_free_port --pair "$SWTPM_DIR.log" swtpm_start swtpm_up
  TCTI="swtpm:host=127.0.0.1,port=$PORT"
}

# http METHOD PATH TOKEN_FILE|- [DATA_FILE [CONTENT_TYPE]]: a raw call to the server started by
# start_server; the status in $status, the body in $E2E_DIR/body.
http() {
  local auth=() data=()
  [ "$3" != "-" ] && auth=(-H "Authorization: Bearer $(cat "$3")")
  [ $# -ge 4 ] && data=(--data-binary "@$4" -H "Content-Type: ${5:-application/json}")
  status=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' --cacert "$SERVER_CA" -X "$1" \
    "${auth[@]}" "${data[@]}" "$SERVER_URL$2")
}
# attestation_request STATE_DIR OUT: the body of an attestation (evidence on a fresh nonce from
# the server SERVER_URL names, and the public key) of the agent's ($AGENT) device in STATE_DIR,
# into OUT; false when no nonce was given ($status and $E2E_DIR/body say why).
attestation_request() {
  local id
  id=$("$AGENT" id --state-dir "$1" 2>/dev/null | sed -n 's/^device id: //p')
  printf '{"device_id":"%s"}' "$id" >"$E2E_DIR/nonce-request.json"
  http POST /api/v1/attest/nonce - "$E2E_DIR/nonce-request.json"
  [ "$status" = 200 ] || return 1
  "$AGENT" evidence --state-dir "$1" --nonce "$(jq -r .nonce "$E2E_DIR/body")" \
    --out "$E2E_DIR/evidence.cbor" >/dev/null 2>&1 || fail "evidence"
  jq -n --arg ev "$(base64 -w0 "$E2E_DIR/evidence.cbor")" \
    --arg key "$(openssl pkey -in "$1/identity.pem" -pubout -outform DER 2>/dev/null | base64 -w0)" \
    '{evidence: $ev, public_key: $key}' >"$2"
}
# est_reenroll STATE_DIR [URL]: one EST re-enrollment (docs/protocol.md, "EST") of the device in
# STATE_DIR with its current certificate, a CSR of its own key, at URL ($SERVER_URL) for tenant
# $acme; $status, the body in $E2E_DIR/body, the headers in $E2E_DIR/headers.
est_reenroll() {
  local s=$1 url=${2:-$SERVER_URL}
  [ -s "$s/reenroll.csr.b64" ] ||
    openssl req -new -key "$s/identity.pem" -subj "/CN=rampart" -outform DER 2>/dev/null |
    base64 -w64 >"$s/reenroll.csr.b64" || fail "a CSR for $s"
  status=$(curl -s -o "$E2E_DIR/body" -D "$E2E_DIR/headers" -w '%{http_code}' --cacert "$SERVER_CA" \
    --cert "$s/agent/device.crt" --key "$s/identity.pem" -H 'Content-Type: application/pkcs10' \
    --data-binary "@$s/reenroll.csr.b64" "$url/.well-known/est/$acme/simplereenroll")
}
# retry_after: the Retry-After of the last est_reenroll's answer.
retry_after() { sed -n 's/^Retry-After: *\([0-9]*\).*/\1/ip' "$E2E_DIR/headers"; }
is_status() { eq "$status" "$1" "HTTP status of the last call ($(head -c 300 "$E2E_DIR/body"))"; }
body_has() { jq -e "$1" "$E2E_DIR/body" >/dev/null || fail "body fails $1: $(head -c 500 "$E2E_DIR/body")"; }

# start_monitor S SOCK LOG [ARGS...]: rampart-monitor ($MONITOR) for state directory S, its log
# appended to LOG; waits until it answers HELLO on SOCK ($MONITOR_CALL). Its pid is $MON_PID,
# stopped with the others at exit.
MON_PID=
start_monitor() {
  local s=$1 sock=$2 log=$3
  shift 3
  "$MONITOR" --state-dir "$s" "$@" >>"$log" 2>&1 &
  MON_PID=$!
  E2E_PIDS+=("$MON_PID")
  monitor_answers() { "$MONITOR_CALL" "$sock" hello >/dev/null 2>&1; }
  wait_until 60 monitor_answers || { cat "$log" >&2; fail "the monitor did not answer on $sock"; }
}

# app_shell COMPONENT VERSION: the pid of an app's own process (its shell) of that version, found
# by its environment; not its sleep, nor a child of the shell between fork and exec. False if none.
app_shell() {
  local f p
  of_app() { grep -qxz "RAMPART_VERSION=$2" "/proc/$1/environ" 2>/dev/null &&
    grep -qxz "RAMPART_COMPONENT=$3" "/proc/$1/environ" 2>/dev/null; }
  for f in $(grep -lxz "RAMPART_VERSION=$2" /proc/[0-9]*/environ 2>/dev/null || true); do
    p=${f#/proc/} p=${p%/environ}
    [ "$(cat "/proc/$p/comm" 2>/dev/null || true)" != sleep ] || continue
    of_app "$p" "$2" "$1" || continue
    ! of_app "$(sed -n 's/^PPid:\t//p' "/proc/$p/status" 2>/dev/null)" "$2" "$1" || continue
    echo "$p"
    return 0
  done
  return 1
}
# told_app FILE: an app's program that says it is ready only when told (SIGUSR1), so that its
# install stays on trial until the test tells it (catches, below: its trap is set).
told_app() {
  printf '#!/bin/sh\ntrap "echo ready >&\\"\\$RAMPART_READY_FD\\"" USR1\necho "waiting to be told"\nwhile :; do sleep 3600 & wait; done\n' \
    >"$1"
}
# catches PID SIGNAL: PID has a handler for SIGNAL (a number; a shell's trap for it is set), as
# /proc/PID/status's SigCgt says. An app that waits to be told by a signal is ready for it then:
# the state itself, where a line in its log is only a proxy (the log's bucket can cut a run's
# first line).
catches() {
  local m
  m=$(sed -n 's/^SigCgt:\t//p' "/proc/$1/status" 2>/dev/null)
  [ -n "$m" ] && (((16#$m >> ($2 - 1)) & 1))
}

done_ok() { echo "ok: $E2E_CHECKS checks"; }
