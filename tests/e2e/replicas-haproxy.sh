#!/usr/bin/env bash
# End to end, replicas for real: two rampart-server replicas on loopback, each with a data
# directory of its own (the master key and the service CA copied into the second, as
# docs/operations.md says a new replica needs), sharing one real PostgreSQL, behind a real HAProxy
# forwarding TCP (TLS passed through: the replicas terminate it, devices pin the service CA) with
# the configuration docs/operations.md shows ("Behind a load balancer"), which checks each
# replica's /readyz over TLS.
#
# A device attests through the balancer while it sends everything to r1, and takes an update
# while it sends everything to r2 (HAProxy's admin socket puts the other in maintenance; each
# replica's /metrics shows which one served). It re-enrolls (EST) at both: the two together give it no
# more than --reenroll-per-hour, however each replica's own bucket counts. Then a storm: $N devices (the real agent, one loop
# each) attest again and again through the balancer and send a failure report after each pass;
# r1 is killed with -9 mid-storm and they carry on through r2; PostgreSQL is restarted under it
# and they carry on. A device tries an attestation again after a 5xx or a cut connection, and a
# report after any answer but 200 or 400 (as the agent does), its backoff shortened; any other
# answer fails the test. Checked against what the clients received: every certificate serial a
# device was given is in PostgreSQL, recorded with a passed attestation of that device, and
# every report the service acknowledged is there; the agents' attestations, bound to their TLS
# connections through the balancer (it passes TLS through), spent no nonce, the one made with the
# nonce flow spent its own, and that evidence, answered before the database restart, is refused as
# a replay after it.
# What the devices saw at the kill and the restart is printed.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
bin=$RAMPART_SERVER # (RAMPART_SERVER becomes the CLI's URL)
PSQL=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql
here=$(cd "$(dirname "$0")" && pwd)
N=${REPLICAS_DEVICES:-24}
command -v haproxy >/dev/null || fail "no haproxy (scripts/install-deps)"

start_pg
sql() { "$PSQL" -X -At "$PG_URI" -c "$1"; }

# Uploads, images and deltas in the shared database (--blobs database), so that an image uploaded
# through one replica is downloaded from the other.
blob_args=(--blobs database)
# Per-address limits lifted on the replicas: behind the balancer every client has the balancer's
# address (docs/operations.md: kept at the balancer instead).
# Nonces that outlive the test: evidence replayed at its end is refused as a replay, not as
# expired, and no spent nonce is purged before the end (5 minutes after it expires).
replica_args=(--database "$PG_URI" --hostname rampart.example.com --rate-limit 0
  --max-connections-per-address 0 --nonce-lifetime 600 "${blob_args[@]}")

# --- r1, the first replica: it makes the service CA, the master key and the system token --------
RAMPART_SERVER=$bin start_server "$d/r1" "${replica_args[@]}"
R1=$SERVER_URL R1_PID=$SERVER_PID CA=$SERVER_CA TOKEN=$ADMIN_TOKEN
# --- r2: a data directory of its own, with the three secrets a new replica needs -----------------
mkdir -m 700 "$d/r2"
for f in master.key server-ca.pem server-ca.key; do install -m 600 "$d/r1/$f" "$d/r2/$f"; done
RAMPART_SERVER=$bin start_server "$d/r2" "${replica_args[@]}"
R2=$SERVER_URL R2_PID=$SERVER_PID
[ ! -e "$d/r2/admin.token" ] || fail "r2 made a system token of its own"
[ ! -e "$d/r1/rampart.db" ] && [ ! -e "$d/r2/rampart.db" ] || fail "a replica made a SQLite database"

# --- HAProxy, configured as docs/operations.md shows, on loopback addresses ------------------------
sock=$d/haproxy.sock
awk '/^```haproxy$/ { on = 1; next } on && /^```$/ { exit } on' "$here/../../docs/operations.md" >"$d/haproxy.doc"
[ -s "$d/haproxy.doc" ] || fail "no haproxy block in docs/operations.md"
hap_start() {
  sed -e "s|/run/haproxy/admin.sock|$sock|" -e "s|bind :8443|bind 127.0.0.1:$PORT|" \
    -e "s|10.0.0.11:8443|${R1#https://}|" -e "s|10.0.0.12:8443|${R2#https://}|" \
    -e "s|/etc/rampart/server-ca.pem|$CA|" "$d/haproxy.doc" >"$d/haproxy.cfg"
  grep -q "bind 127.0.0.1:$PORT" "$d/haproxy.cfg" && grep -q "${R2#https://}" "$d/haproxy.cfg" ||
    fail "the documented configuration no longer has the lines the test replaces"
  haproxy -c -q -f "$d/haproxy.cfg" || fail "haproxy refuses the documented configuration"
  rm -f "$sock"
  haproxy -db -f "$d/haproxy.cfg" >"$d/haproxy.log" 2>&1 &
}
hap_up() { listens "$SERVE_PID" "$PORT" && [ -S "$sock" ]; }
serve_on_free_port "$d/haproxy.log" hap_start hap_up
port=$PORT
LB=https://127.0.0.1:$port
# hap COMMAND: a command on HAProxy's admin socket; its answer on stdout.
hap() {
  /usr/bin/python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    b = s.recv(65536)
    if not b: break
    out += b
sys.stdout.write(out.decode())' "$sock" "$1"
}
# state SERVER: its status as HAProxy's statistics say (UP, DOWN, MAINT, "UP 1/2"...).
state() { hap "show stat" | awk -F, -v s="$1" '$1 == "replicas" && $2 == s { print $18 }'; }
is_up() { [ "$(state "$1")" = UP ]; }
wait_until 30 is_up r1 && wait_until 30 is_up r2 ||
  fail "HAProxy does not see both replicas ready: r1 $(state r1), r2 $(state r2) $(tail -5 "$d/haproxy.log")"

# metric URL NAME: a replica's counter (0 when absent).
metric() {
  curl -sf --cacert "$CA" "$1/metrics" | awk -v n="$2" 'index($0, n) == 1 { s += $NF } END { print s + 0 }'
}
passes() { metric "$1" 'rampart_attestations_total{result="pass"'; }

# --- an operator through the balancer; a device attests through r1, updates through r2 ------------
SERVER_URL=$LB SERVER_CA=$CA ADMIN_TOKEN=$TOKEN
tenant_with_root "$d/root.json"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$d/app.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.1.0 --security-counter 1 --type app "$d/app.sh" "$d/app.img"
expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/app.img"; img=$(cat "$d/out")
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
expect 0 "$AGENT" provision --state-dir "$d/upd" --rot soft; upd=$(tail -n1 "$d/out")
expect 0 "$AGENT" trust --state-dir "$d/upd" --update-root "$d/root.json"
expect 0 "$RAMPART" device claim --tenant "$acme" "$upd"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "$upd"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group "Field Test" "$img"

p1=$(passes "$R1") p2=$(passes "$R2")
hap "set server replicas/r2 state maint" >/dev/null
expect 0 "$AGENT" attest --state-dir "$d/upd" --server "$LB" --server-ca "$CA"; out_has "attested: device $upd"
eq "$(passes "$R1") $(passes "$R2")" "$((p1 + 1)) $p2" "attestations passed at r1 and r2 (r2 in maintenance)"

hap "set server replicas/r1 state maint" >/dev/null
hap "set server replicas/r2 state ready" >/dev/null
wait_until 30 is_up r2 || fail "r2 did not come back: $(state r2)"
b1=$(metric "$R1" rampart_image_bytes_sent_total)
expect 0 "$AGENT" check-now --state-dir "$d/upd" --health-seconds 1 # the service it attested with
out_has "1 installed"
[ "$(metric "$R1" rampart_image_bytes_sent_total)" = "$b1" ] || fail "r1 (in maintenance) sent image bytes"
[ "$(metric "$R2" rampart_image_bytes_sent_total)" -ge "$(stat -c %s "$d/app.img")" ] ||
  fail "r2 did not send the image: $(metric "$R2" rampart_image_bytes_sent_total) bytes"
hap "set server replicas/r1 state ready" >/dev/null
wait_until 30 is_up r1 || fail "r1 did not come back: $(state r1)"
eq "$(sql "SELECT state FROM device_updates WHERE device_id = '$upd'")" installed "the update's state in PostgreSQL"

# --- EST re-enrollments: --reenroll-per-hour (6) holds across the replicas ------------------------
# Each replica's bucket would give the device 6; the transaction that records a certificate
# counts the device's re-enrollments of the last hour in PostgreSQL: 4 at r1 and 2 at r2 spend
# them, and the next is refused at r2 (whose bucket has 4 left), at r1 and through the balancer,
# 429 with Retry-After the time until the first leaves the hour; nothing more is recorded.
reissued() { sql "SELECT count(*) FROM certificates WHERE device_id = '$upd' AND reissued <> 0"; }
for url in "$R1" "$R1" "$R1" "$R1" "$R2" "$R2"; do est_reenroll "$d/upd" "$url"; is_status 200; done
for url in "$R2" "$R1" "$LB"; do
  est_reenroll "$d/upd" "$url"; is_status 429
  body_has '.error == "rate_limited"'
  ra=$(retry_after)
  [ "${ra:-0}" -gt 3000 ] && [ "$ra" -le 3600 ] || fail "Retry-After $ra at $url: not until the first leaves the hour"
done
eq "$(reissued)" 6 "re-enrollments recorded for the device across both replicas"
eq "$(($(metric "$R1" 'rampart_rate_limited_total{limit="reenroll"}') + $(metric "$R2" 'rampart_rate_limited_total{limit="reenroll"}')))" \
  3 "re-enrollments refused, both replicas' metrics"

# Evidence answered before the database's restart, kept to be replayed after it.
attestation_request "$d/upd" "$d/replay.json" || fail "no nonce: $status"
http POST /api/v1/attest - "$d/replay.json"; is_status 200

# --- the storm --------------------------------------------------------------------------------
ids=()
for i in $(seq "$N"); do
  expect 0 "$AGENT" provision --state-dir "$d/dev$i" --rot soft; ids+=("$(tail -n1 "$d/out")")
done
expect 0 "$RAMPART" device claim --tenant "$acme" "${ids[@]}"

# report ID SEQ: the device's failure report SEQ, sent until the service answers it (a 5xx or a
# cut connection is tried again); acknowledged (stored or known already) into ID.acked.
report() {
  local i=$1 seq=$2 s="$d/dev$1" st began
  jq -nc --argjson seq "$seq" --argjson at "$(date +%s)" '{reports: [{seq: $seq, at: $at,
    kind: "health", component: "", version: "", reason: "storm", code: ""}], dropped: 0}' >"$s.rep"
  while [ ! -e "$d/stop" ]; do
    began=$(cat "$d/phase")
    st=$(curl -s -o "$s.ack" -w '%{http_code}' --cacert "$CA" --cert "$s/agent/device.crt" \
      --key "$s/identity.pem" -H 'Content-Type: application/json' --data-binary "@$s.rep" \
      "$LB/api/v1/device/reports") || true
    echo "$began $(cat "$d/phase") report ${st/#000/cut}" >>"$s.seen"
    if [ "$st" = 200 ]; then
      jq -e '.refused == [] and .stored + .duplicates == 1' "$s.ack" >/dev/null ||
        { echo "dev$i: report $seq answered $(cat "$s.ack")" >>"$d/wrong"; return; }
      echo "${ids[$((i - 1))]} $seq" >>"$s.acked"
      return
    fi
    # as the agent does: a malformed batch (400) is dropped; any other answer is tried again
    [ "$st" != 400 ] || { echo "dev$i: report $seq refused: $(cat "$s.ack")" >>"$d/wrong"; return; }
    sleep 0.2
  done
}
# device I: attest through the balancer until $d/stop; each certificate received goes into
# I.serials, each outcome (200, the HTTP status, or "cut": no answer) into I.seen with the phase
# the attempt began in and the one it ended in.
device() {
  local i=$1 s="$d/dev$1" seq=0 began st serial
  while [ ! -e "$d/stop" ]; do
    began=$(cat "$d/phase")
    if "$AGENT" attest --state-dir "$s" --server "$LB" --server-ca "$CA" >"$s.out" 2>"$s.err"; then
      serial=$(sed -n 's/^attested: device [0-9a-f]*, certificate \([0-9A-Fa-f]*\) valid .*/\1/p' "$s.out")
      [ -n "$serial" ] || { echo "dev$i: $(cat "$s.out")" >>"$d/wrong"; return; }
      echo "${ids[$((i - 1))]} $serial" >>"$s.serials"
      echo "$began $(cat "$d/phase") attest 200" >>"$s.seen"
      seq=$((seq + 1))
      report "$i" "$seq"
    else
      st=$(sed -n 's/.*(HTTP \([0-9]*\)).*/\1/p; s/.*the service answered \([0-9]*\) .*/\1/p' "$s.err" | head -1)
      echo "$began $(cat "$d/phase") attest ${st:-cut}" >>"$s.seen"
      [ -n "$st" ] || echo "$(cat "$d/phase") $(tail -1 "$s.err")" >>"$d/cuts"
      case $st in '' | 5??) ;; *) echo "dev$i: $(cat "$s.err")" >>"$d/wrong"; return ;; esac
      sleep 0.2 # the agent's own backoff, shortened
    fi
  done
}
# in_phase P: every device has received a certificate on an attempt begun in phase P.
in_phase() {
  local i
  for i in $(seq "$N"); do grep -q "^$1 [a-z]* attest 200" "$d/dev$i.seen" 2>/dev/null || return 1; done
}
phase() { echo "$1" >"$d/phase.new" && mv "$d/phase.new" "$d/phase"; }
healthy() { [ ! -e "$d/wrong" ] || { cat "$d/wrong" >&2; fail "a device got an answer it should not have"; }; }

p1=$(passes "$R1") p2=$(passes "$R2")
phase warm
pids=()
for i in $(seq "$N"); do device "$i" & pids+=($!); done
E2E_PIDS+=("${pids[@]}")
# Both replicas serving the storm, then r1 killed.
serving() { healthy; in_phase warm && [ "$(passes "$R1")" -gt "$p1" ] && [ "$(passes "$R2")" -gt "$p2" ]; }
wait_until 120 serving || fail "the storm did not reach both replicas"
phase kill
kill -9 "$R1_PID"
wait "$R1_PID" 2>/dev/null || true
after_kill() { healthy; in_phase kill; }
wait_until 120 after_kill || fail "the devices did not carry on through r2 after r1 was killed"
down() { [ "$(state r1)" != UP ]; }
wait_until 30 down || fail "HAProxy still sends to the killed r1"

# PostgreSQL restarted under the storm.
phase restart
restart_pg >/dev/null
phase after
after_restart() { healthy; in_phase after; }
wait_until 120 after_restart || fail "the devices did not carry on after PostgreSQL's restart"
touch "$d/stop"
wait "${pids[@]}"
healthy
kill -0 "$R2_PID" || fail "r2 died"
# The evidence answered before the restart: its nonce is still spent.
http POST /api/v1/attest - "$d/replay.json"; is_status 403
body_has '.reason == "nonce_replayed"'

# --- what the devices saw ---------------------------------------------------------------------
cut -d' ' -f2- "$d"/dev*.seen | sort | uniq -c | sort -k2,2 -k3,3 -k1,1nr >"$d/seen"
echo "outcomes by the phase they ended in (count, phase, request, HTTP status or cut):"
sed 's/^/  /' "$d/seen"
[ ! -e "$d/cuts" ] || { echo "connections cut (agent's words):"; sort "$d/cuts" | uniq -c | sort -rn | head -5 | sed 's/^/  /'; }
hap "show stat" | awk -F, '$1 == "replicas" && ($2 == "r1" || $2 == "r2") {
  printf "HAProxy %s: %s connections, %s connection errors, %s retries, %s redispatched, now %s\n", $2, $8, $14, $16, $17, $18 }'
# Before the kill, nothing but answers.
if grep -E ' warm (attest|report) ' "$d/seen" | grep -vq ' 200$'; then fail "failures before anything was killed"; fi

# --- checked against what the clients received ------------------------------------------------
cat "$d"/dev*.serials | sort >"$d/received"
cat "$d"/dev*.acked | sort >"$d/acked"
received=$(wc -l <"$d/received")
[ "$received" -ge $((3 * N)) ] || fail "only $received certificates received"
eq "$(cut -d' ' -f2 "$d/received" | sort | uniq -d)" "" "a serial received twice"
sql "SELECT c.device_id || ' ' || c.serial FROM certificates c JOIN attestations a ON
       a.cert_serial = c.serial AND a.device_id = c.device_id AND a.passed = 1" | sort >"$d/db.certs"
lost=$(comm -23 "$d/received" "$d/db.certs")
[ -z "$lost" ] || fail "certificates received but not in PostgreSQL: $(echo "$lost" | head -5)"
sql "SELECT device_id || ' ' || seq FROM reports" | sort >"$d/db.reports"
lost=$(comm -23 "$d/acked" "$d/db.reports")
[ -z "$lost" ] || fail "reports acknowledged but not in PostgreSQL: $(echo "$lost" | head -5)"
[ "$(wc -l <"$d/acked")" -ge $((2 * N)) ] || fail "only $(wc -l <"$d/acked") reports acknowledged"
# The agents attest with evidence bound to their connections (HAProxy in mode tcp passes TLS
# through): no nonce spent for any of them; the one attestation made with a nonce spent it, in the
# transaction that recorded it (none purged yet: --nonce-lifetime). No certificate was recorded
# twice.
eq "$(sql "SELECT count(*) FROM spent_nonces")" 1 "spent nonces: the nonce flow's one attestation"
eq "$(sql "SELECT count(*) - count(DISTINCT cert_serial) FROM attestations")" 0 "a serial recorded twice"
echo "received $received certificates and $(wc -l <"$d/acked") report acknowledgements; PostgreSQL has $(wc -l <"$d/db.certs") certificates"
done_ok
