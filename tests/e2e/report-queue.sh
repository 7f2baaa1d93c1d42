#!/usr/bin/env bash
# End to end, the device's report queue (device/agent/reportq.c) and its upload: a blocked device's
# failed attestations, refused by the real rampart-server, land in S/agent/reports/ with the
# service's code (`rampart-agent reports`); `rampart-agent report` sends them over mutual TLS with
# the device certificate to a small receiver (tests/tools/report-receiver.py) that gives the
# answers the real service cannot be made to give: a dropped connection keeps the batch and backs
# off, a 429's Retry-After is waited out, also by the next process; 413 splits the batch; 400 and
# a single report too large are dropped and counted, the count travelling in the next batch; 200
# removes; every report arrives, once, in order. Then `run`'s own events: a clock jump, and the
# certificate near its end while renewal fails; and a root-of-trust error.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
here=$(cd "$(dirname "$0")" && pwd)

start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft; id=$(tail -n1 "$d/out")
expect 0 "$RAMPART" device claim --tenant "$acme" "$id"
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"

queue() { # JQ: a fact of `rampart-agent reports --output json`
  expect 0 "$AGENT" reports --state-dir "$d/dev" --output json
  jq -e "$1" "$d/out" >/dev/null || fail "reports: $1: $(head -c 1500 "$d/out")"
}
queue '.reports == [] and .dropped == 0'

# --- a real event: the service refuses a blocked device; the refusal is queued with its code -----
expect 0 "$RAMPART" device block --tenant "$acme" "$id"
for i in 1 2 3 4; do
  expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
  err_has "attestation refused (HTTP 403): blocked"
done
queue '.reports | length == 4'
queue '[.reports[] | select(.kind == "attestation_failed" and .code == "blocked")] | length == 4'
queue '[.reports[].seq] as $s | $s == ($s | sort) and ($s | unique | length) == 4'
queue '.reports[0].reason | contains("blocked")'
expect 0 "$AGENT" reports --state-dir "$d/dev"
out_has "attestation_failed blocked"
out_has "4 report(s) queued"
expect 0 "$AGENT" reports --state-dir "$d/dev" --output json
first4=$(jq -c '[.reports[].seq]' "$d/out")

# A root-of-trust error (a copy of the device whose soft measurement register is corrupt): the
# evidence is not made, and that is a report too.
cp -a "$d/dev" "$d/dev-rot"
printf 'garbage\001\n' >"$d/dev-rot/measurements"
expect 1 "$AGENT" attest --state-dir "$d/dev-rot" --server "$SERVER_URL" --server-ca "$SERVER_CA"
expect 0 "$AGENT" reports --state-dir "$d/dev-rot" --output json
jq -e '.reports[-1] | .kind == "rot_error" and .code == "evidence"' "$d/out" >/dev/null ||
  fail "no rot_error: $(cat "$d/out")"

# --- the receiver: mutual TLS, its certificate from a CA of the test's own ------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=test-ca \
  -keyout "$d/rca.key" -out "$d/rca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$d/rcv.key" -out "$d/rcv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
openssl x509 -req -in "$d/rcv.csr" -CA "$d/rca.pem" -CAkey "$d/rca.key" -CAcreateserial -days 1 \
  -extfile "$d/ext" -out "$d/rcv.pem" 2>/dev/null
echo drop >"$d/mode"
: >"$d/log"
python3 "$here/../tools/report-receiver.py" "$d/rcv.pem" "$d/rcv.key" "$d/dev/agent/ca-chain.pem" \
  "$d/mode" "$d/log" "$d/rport" 2>"$d/rcv.err" &
E2E_PIDS+=($!)
wait_until 20 test -s "$d/rport" || { cat "$d/rcv.err" >&2; fail "the receiver did not start"; }
url="https://127.0.0.1:$(cat "$d/rport")"
send() { "$AGENT" report --state-dir "$d/dev" --server "$url" --server-ca "$d/rca.pem"; }
requests() { wc -l <"$d/log"; }
answered() { [ "$(grep -c "\"answer\": \"$1\"" "$d/log")" -ge "$2" ]; }
# send_in_window: a new process sends while the queue's retry_at still holds. Its clock is set to
# a minute before retry_at (libfaketime): the window is 2 to 6 s, and a loaded machine (ASan,
# stress-ng) can take longer than that to start the process and read the queue. Not one second
# before: libfaketime's "@" clock starts there and runs from the process's start, so a start
# slower than a second (ASan under stress-ng) read retry_at itself, and sent.
send_in_window() {
  local retry
  expect 0 "$AGENT" reports --state-dir "$d/dev" --output json
  retry=$(jq -e .retry_at "$d/out") || fail "the queue has no retry_at"
  expect 1 at_clock "@$(date -d "@$((retry - 60))" '+%Y-%m-%d %H:%M:%S')" \
    "$AGENT" report --state-dir "$d/dev" --server "$url" --server-ca "$d/rca.pem"
}

# A dropped connection: all kept, and a backoff that the next process keeps too (no request).
t0=$(date +%s)
expect 1 send
out_has "4 left"
out_has "stopped:"
eq "$(requests)" 1 "requests after a dropped connection"
queue '.reports | length == 4'
queue ".retry_at >= $((t0 + 2)) and .backoff > 0" # the first backoff: 2 to 6 s
send_in_window
out_has "not sent: waiting"
eq "$(requests)" 1 "requests during the backoff"

# 429 with Retry-After: kept, and no request before it is over, also from a new process.
# t429: the clock before the send that got the 429, so no later than the agent's own reading
# when it kept the Retry-After (read after it, a slow exit could put it 2 s past that reading,
# beyond the 2 s waited).
echo "429 2" >"$d/mode"
try_send() { t429=$(date +%s); send >/dev/null 2>&1 || true; answered 429 1; }
wait_until 20 try_send || fail "no 429 was asked for after the backoff"
queue '.reports | length == 4'
queue ".retry_at >= $((t429 + 2))"
send_in_window
out_has "not sent: waiting"
eq "$(requests)" 2 "requests while the service's Retry-After holds"

# 413 for batches of more than 2: the batch is split; each half goes with 200; all removed.
echo "413>2" >"$d/mode"
try_send() { send >"$d/out" 2>&1; }
wait_until 20 try_send || { cat "$d/out" >&2; fail "the queue did not empty after the Retry-After"; }
out_has "4 sent in 2 batch(es) (4 stored, 0 known already, 0 refused), 0 dropped, 0 left"
answered 413 1 || fail "no 413"
sent=$(jq -sc '[.[] | select(.answer == "200") | .seqs[]]' "$d/log")
eq "$sent" "$first4" "the reports the receiver stored, in order, once each"
jq -se '[.[] | select(.answer == "200") | .n <= 2] | all' "$d/log" >/dev/null || fail "a batch > 2"
queue '.reports == [] and .dropped == 0 and .backoff == 0 and .retry_at == 0'

# 400: the batch is dropped and counted; a single report too large (413) too; the count travels.
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
echo 400 >"$d/mode"
expect 0 send
out_has "1 dropped, 0 left"
queue '.reports == [] and .dropped == 1'
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
echo "413>0" >"$d/mode"
expect 0 send
out_has "1 dropped, 0 left"
queue '.reports == [] and .dropped == 2'
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
echo 200 >"$d/mode"
expect 0 send
out_has "1 sent in 1 batch(es)"
tail -n1 "$d/log" | jq -e '.dropped == 2 and .n == 1 and .kinds == ["attestation_failed"]' >/dev/null ||
  fail "the last batch: $(tail -n1 "$d/log")"
# Numbers keep rising across all of it.
jq -se '[.[] | .seqs[]] as $s | ($s | length) > 0' "$d/log" >/dev/null || fail "no seqs"
last=$(jq -s '[.[] | .seqs[]] | max' "$d/log")
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
queue ".reports[0].seq > $last"

# The real service refuses a blocked device's reports as it refuses the device everything (403):
# kept, backing off. (Its 200, the queue emptied, is e2e.failure_flow's.)
rc=0
"$AGENT" report --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA" >"$d/out" \
  2>"$d/err" || rc=$?
eq "$rc" 1 "report by a blocked device: $(cat "$d/out")"
out_has "HTTP 403"
queue '(.reports | length) == 1 and .backoff > 0'

# --- the daemon's own events: a clock jump, and the certificate near its end while renewal fails --
# `run` under libfaketime, its wall clock read from a file at each call (the monotonic clock left
# alone): 23 hours on, the 24-hour certificate has 1 left and the blocked device cannot renew it.
# (Under ASan too: FAKED_ENV, tests/e2e/lib.sh.)
move_clock "$d/faketime" "+0"
faked=(env "${FAKED_ENV[@]}" FAKETIME_TIMESTAMP_FILE="$d/faketime" FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1)
if faked_ok "$AGENT"; then
  # --start-jitter is planned on the boot clock: NTP stepping the wall clock 2 hours forward (a
  # device without a battery-backed clock, after a power cut) does not fire the first attestation
  # at the step, as it would for every device of a fleet at once. SIGUSR1 turns the loop. (A copy
  # of the device's state: the clock_jump it reports stays out of the queue checked below.)
  cp -a "$d/dev" "$d/jit"
  # A simple command, not a function: $! is then the agent itself (env execs it), which the
  # kill below and the cleanup reach (a function's subshell would leave it running).
  "${faked[@]}" "$AGENT" run --state-dir "$d/jit" --server "$SERVER_URL" \
    --server-ca "$SERVER_CA" --start-jitter 3600 >"$d/jit.log" 2>&1 &
  run_pid=$!
  E2E_PIDS+=("$run_pid")
  wait_until 20 grep -q "first attestation in" "$d/jit.log" || fail "no plan: $(cat "$d/jit.log")"
  first_in=$(sed -n 's/.*first attestation in \([0-9]*\) s.*/\1/p' "$d/jit.log")
  move_clock "$d/faketime" "+2h"
  kill -USR1 "$run_pid"
  wait_until 20 grep -q "jumped 7[0-9]* s forward" "$d/jit.log" || fail "no jump: $(cat "$d/jit.log")"
  if [ "$first_in" -gt 60 ]; then # (else it may be due already: 1 chance in 60)
    wait_until 20 grep -q "next attestation stays in" "$d/jit.log" || fail "$(cat "$d/jit.log")"
    ! grep -q "attestation refused\|attested\|HTTP" "$d/jit.log" ||
      fail "the first attestation was sent at the clock's step: $(cat "$d/jit.log")"
  fi
  kill "$run_pid"
  wait "$run_pid" 2>/dev/null || true
  move_clock "$d/faketime" "+0"
  "${faked[@]}" "$AGENT" run --state-dir "$d/dev" --server "$SERVER_URL" \
    --server-ca "$SERVER_CA" --renew-after 1 --start-jitter 0 >"$d/run.log" 2>&1 &
  run_pid=$!
  E2E_PIDS+=("$run_pid")
  refused_again() { grep -q "attestation refused" "$d/run.log"; }
  wait_until 20 refused_again || { cat "$d/run.log" >&2; fail "run did not attest"; }
  queue '[.reports[] | select(.kind == "cert_expiring" or .kind == "clock_jump")] == []'
  move_clock "$d/faketime" "+23h"
  both() {
    "$AGENT" reports --state-dir "$d/dev" --output json >"$d/q.json" 2>/dev/null &&
      jq -e '[.reports[].kind] | index("clock_jump") and index("cert_expiring")' "$d/q.json" >/dev/null
  }
  wait_until 30 both || { cat "$d/run.log" "$d/q.json" >&2; fail "no clock_jump and cert_expiring"; }
  kill "$run_pid"
  queue '[.reports[] | select(.kind == "clock_jump" and .code == "forward")] | length == 1'
  queue '[.reports[] | select(.kind == "cert_expiring" and .code == "renewal_fails")] | length == 1'
  queue '.reports[] | select(.kind == "cert_expiring") | .reason | contains("blocked")'
else
  fail "the agent cannot run with its clock moved"
fi
done_ok
