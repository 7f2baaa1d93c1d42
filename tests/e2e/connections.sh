#!/usr/bin/env bash
# End to end, the service's connections: a request must arrive whole within --request-deadline
# (a slowloris and a silent connection are cut; a kept-alive connection used now and then, and a
# long download sent slowly, are not); a connection idle for longer than --idle-timeout is closed
# (one idle for less is not, nor a slow download); one address holds at most --max-connections-per-address
# connections (the next is closed at once, other addresses are served); and a port is shared only
# by the processes of one data directory (another data directory's server refuses to start on it,
# a replica joins it and both serve).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
client=$(dirname "$0")/conn-client.py
server_bin=$RAMPART_SERVER

# cut_after FILE: the seconds after which conn-client.py saw its connection cut ("" if not cut).
cut_after() { sed -n 's/^cut after \([0-9.]*\) s$/\1/p' "$1"; }
# at_least A B: A >= B, for decimals
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
metric() { sed -n "s/^$1 //p" "$d/body"; }
# was_cut FILE S WHAT: conn-client.py saw its connection cut, and not before it was due at S s
# (a loaded machine can only make it later).
was_cut() {
  local t
  t=$(cut_after "$1")
  [ -n "$t" ] || fail "$3 was not cut: $(cat "$1")"
  at_least "$t" $(($2 - 1)) || fail "$3 was cut after $t s, before it was due ($2 s)"
  E2E_CHECKS=$((E2E_CHECKS + 1))
}
# kept FILE WHAT: a keepalive client's three answers, all on its one connection.
kept() {
  eq "$(head -n 3 "$1" | tr '\n' ' ')" "200 200 200 " "$2's answers ($(cat "$1"))"
  ! grep -q reconnected "$1" || fail "$2 was cut"
}

# --- the request deadline --------------------------------------------------------------------------
# 6 s: long enough that a loaded machine cannot stretch the kept-alive client's pauses of 2.5 s
# past it, short enough to keep the test quick.
D=6
start_server "$d/srv" --request-deadline $D
port=$(cat "$d/srv.port")
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN

# --- a small answer in one TLS record ----------------------------------------------------------------
# Its headers and body leave as one record (one write, one segment), not evhttp's headers in one
# and the body in another: the records the client reads after the session ticket, to the end of
# the connection (Connection: close), as OpenSSL's client traces them.
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
  openssl s_client -connect "127.0.0.1:$port" -CAfile "$SERVER_CA" -msg -quiet -ign_eof \
    >"$d/records" 2>&1 || true
grep -qF '{"status":"ok"}' "$d/records" || fail "no answer through openssl s_client: $(cat "$d/records")"
eq "$(sed -n '/NewSessionTicket/,$p' "$d/records" | grep -c '^<<< .*RecordHeader')" 1 \
  "TLS records of a small answer"

# A download that takes longer than the deadline to send is not cut: the deadline is for the
# request to arrive, not for the answer to leave; nor by evhttp's read timeout (--idle-timeout),
# which ran while an answer was written, the client sending nothing meanwhile. A device that
# attested, in a group with a deployment, fetches a 16 MiB image at 1.5 MB/s with a small receive
# buffer from a replica whose idle timeout is I = 3 s (so that I s in, 11 MB are still on the
# service's side, and the download lasts over 3 I); it is checked at the end, the rest of the test
# runs meanwhile.
I=3
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
# This machine's kernel is not locked down: its agents say debug is enabled.
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/root.key"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/img.key"
expect 0 "$RAMPART" key public --key "$d/img.key" --out "$d/img.pub"
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/img.pub" --name release
expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/root.key" --out "$d/root.json"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$d/payload"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --security-counter 1 --type app \
  "$d/payload" "$d/app.img"
expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/app.img"; image=$(cat "$d/out")
device_with_image "$image"
# It runs while the clients below do (the test takes the download's time, not the download's and
# then a deadline's), served by a replica of the same data directory with the same deadline and
# the idle timeout I: the connection counts checked below are the first process's, the clients'
# only.
"$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0 --port-file "$d/dl.port" --request-deadline $D \
  --idle-timeout $I >"$d/dl.log" 2>&1 &
dl_server=$!
E2E_PIDS+=("$dl_server")
wait_until 60 test -s "$d/dl.port" || fail "the replica did not start: $(cat "$d/dl.log")"
dl_port=$(cat "$d/dl.port")
python3 "$client" slowread "$dl_port" "$SERVER_CA" "/api/v1/device/images/$image" 1500000 \
  "$d/dev/agent/device.crt" "$d/dev/identity.pem" "$d/downloaded" >"$d/took" 2>&1 &
download=$!
E2E_PIDS+=("$download")

# The idle timeout, on the replica (I = 3 s, under its deadline of 6 s): a kept-alive connection
# left idle after its answer is closed I s later; one whose requests come 1 s apart is not.
python3 "$client" idle "$dl_port" "$SERVER_CA" 60 >"$d/idle" 2>&1 &
idle=$!
python3 "$client" keepalive "$dl_port" "$SERVER_CA" 3 1 >"$d/busy" 2>&1 &
busy=$!
E2E_PIDS+=("$idle" "$busy")

# The clients at once: their times overlap, the test takes one deadline, not three.
python3 "$client" slowloris "$port" "$SERVER_CA" 120 >"$d/slowloris" 2>&1 &
slow=$!
python3 "$client" silent "$port" "$SERVER_CA" 120 >"$d/silent" 2>&1 &
quiet=$!
python3 "$client" keepalive "$port" "$SERVER_CA" 3 2.5 >"$d/keepalive" 2>&1 &
kept=$!
E2E_PIDS+=("$slow" "$quiet" "$kept")
for pid in "$slow" "$quiet" "$kept" "$idle" "$busy"; do
  wait "$pid" || fail "a client failed: $(cat "$d/slowloris" "$d/silent" "$d/keepalive" "$d/idle" "$d/busy")"
done
# A header line every 0.3 s keeps evhttp's per-read timeout from ever firing: the deadline cuts
# it; and a connection that sends nothing.
was_cut "$d/slowloris" $D "a slowloris"
was_cut "$d/silent" $D "a connection that sends nothing"
# Three requests 2.5 s apart on one connection: 5 s and more in all, each within the deadline of
# the previous answer; none cut, no new connection.
kept "$d/keepalive" "a kept-alive connection"
http GET /metrics -; is_status 200
eq "$(metric 'rampart_connections_closed_total{reason="request_deadline"}')" 2 "connections cut at the deadline"
# The idle connection was cut by the idle timeout: not before it, and not by the deadline, which
# the replica counts (and which would have come 3 s later); the one used every second was not.
was_cut "$d/idle" $I "a connection idle past --idle-timeout"
kept "$d/busy" "a connection idle for less than --idle-timeout"
status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" "https://127.0.0.1:$dl_port/metrics")
is_status 200
eq "$(metric 'rampart_connections_closed_total{reason="request_deadline"}')" 0 "the replica's connections cut at the deadline"

# --- connections per address -------------------------------------------------------------------------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
RAMPART_SERVER=$server_bin start_server "$d/srv" --max-connections-per-address 3 --request-deadline 600
port=$(cat "$d/srv.port")
held=()
# hold &: a connection kept busy (a request a second), so that nothing but the cap can end it.
# Only ever run in the background: it execs, so that $! is the client itself.
hold() { exec python3 "$client" hold "$port" "$SERVER_CA" "$@"; }
for i in 1 2 3; do
  hold >"$d/held.$i" 2>&1 &
  held[$i]=$!
  E2E_PIDS+=("${held[$i]}")
done
for i in 1 2 3; do
  wait_until 60 grep -q "^held 200" "$d/held.$i" || fail "connection $i: $(cat "$d/held.$i")"
done
# The fourth from 127.0.0.1 is closed at once: an error, not a wait in the backlog (28).
rc=0
curl -s -o /dev/null --max-time 30 --cacert "$SERVER_CA" "$SERVER_URL/healthz" || rc=$?
[ "$rc" != 0 ] || fail "a connection over the per-address cap was served"
[ "$rc" != 28 ] || fail "a connection over the per-address cap waited instead of being closed"
E2E_CHECKS=$((E2E_CHECKS + 1))
# Another address is served meanwhile, and the refusal was counted.
status=$(curl -s -o "$d/body" -w '%{http_code}' --interface 127.0.0.2 --cacert "$SERVER_CA" \
  "$SERVER_URL/metrics")
is_status 200
eq "$(metric 'rampart_connections_closed_total{reason="per_address_cap"}')" 1 "connections refused at the per-address cap"
# One held connection goes: 127.0.0.1 is served again.
kill "${held[1]}"
served() { curl -sf -o /dev/null --max-time 30 --cacert "$SERVER_CA" "$SERVER_URL/healthz"; }
wait_until 60 served || fail "no connection was served once a held one had gone"
kill "${held[2]}" "${held[3]}"

# --- one port, one data directory --------------------------------------------------------------------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
RAMPART_SERVER=$server_bin start_server "$d/srv"
first=$SERVER_PID
port=$(cat "$d/srv.port")
# Another data directory (another CA, another database) on the same port: refused, clearly (a
# server that started instead would run until the bound).
expect 1 timeout 60 "$server_bin" --data-dir "$d/other" --listen "127.0.0.1:$port"
err_has "port $port on 127.0.0.1 is in use by another program, or by a rampart-server with another data directory"
http GET /healthz -; is_status 200
# A replica of the same data directory joins the port, and both serve it.
"$server_bin" --data-dir "$d/srv" --listen "127.0.0.1:$port" --port-file "$d/replica.port" \
  >"$d/replica.log" 2>&1 &
replica=$!
E2E_PIDS+=("$replica")
wait_until 60 test -s "$d/replica.port" || fail "the replica did not start: $(cat "$d/replica.log")"
grep -q "beside the processes of the same data directory" "$d/replica.log" ||
  fail "the replica did not say it joined: $(cat "$d/replica.log")"
listeners() { ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | sort -u | tr '\n' ' '; }
eq "$(listeners)" "$(printf 'pid=%s\n' "$first" "$replica" | sort | tr '\n' ' ')" "processes listening on the port"
# The kernel spreads connections over both processes' sockets: held connections land in both.
for i in $(seq 1 16); do
  hold >"$d/spread.$i" 2>&1 &
  E2E_PIDS+=($!)
done
for i in $(seq 1 16); do
  wait_until 60 grep -q "^held 200" "$d/spread.$i" || fail "connection $i: $(cat "$d/spread.$i")"
done
owners=$(ss -Htnp state established "sport = :$port" | grep -o 'pid=[0-9]*' | sort -u | wc -l)
eq "$owners" 2 "processes holding the connections"
# The first one stops: the replica serves on; a stranger still may not take the port.
kill "$first"; wait "$first" 2>/dev/null || true
wait_until 60 served || fail "the replica does not serve alone"
expect 1 timeout 60 "$server_bin" --data-dir "$d/other" --listen "127.0.0.1:$port"
err_has "is in use by another program"
# Once nothing of ours serves the port, it is anyone's.
kill "$replica"; wait "$replica" 2>/dev/null || true
RAMPART_SERVER=$server_bin start_server "$d/other" --listen "127.0.0.1:$port"
eq "$(cat "$d/other.port")" "$port" "the other data directory's port"

# --- the slow download, begun at the start ----------------------------------------------------------
wait "$download" || fail "the slow download failed: $(cat "$d/took")"
took=$(sed -n 's/^read [0-9]* bytes in \([0-9.]*\) s$/\1/p' "$d/took")
[ -n "$took" ] || fail "the slow download was cut: $(cat "$d/took")"
cmp -s "$d/app.img" "$d/downloaded" || fail "the slow download is not the image"
at_least "$took" $((3 * I)) || fail "the download took $took s: too fast to show that neither the deadline nor the idle timeout cuts it"
E2E_CHECKS=$((E2E_CHECKS + 2))
# (Once the service has sent its last byte, the connection waits for a next request like any
# other: the socket buffers may take longer than the deadline to drain at 380 kB/s, and it may be
# cut then, with every byte delivered. So the count is not checked here.)

# --- an image cut short while it is sent -----------------------------------------------------------
# Images are sent a chunk at a time as the client reads, never mapped: an image truncated in place
# in the data directory while a device downloads it (a mapped file would fault the service with
# SIGBUS) ends that download early - fewer bytes than its Content-Length, none that are not the
# image's - and the service goes on. The client stalls with most of the image on the service's side,
# on a replica with the default idle timeout (30 s): the stall, however long a loaded machine makes
# it, is not what ends the download.
kill "$dl_server"; wait "$dl_server" 2>/dev/null || true
"$server_bin" --data-dir "$d/srv" --listen 127.0.0.1:0 --port-file "$d/st.port" >"$d/st.log" 2>&1 &
dl_server=$!
E2E_PIDS+=("$dl_server")
wait_until 60 test -s "$d/st.port" || fail "the replica did not start: $(cat "$d/st.log")"
python3 "$client" stall "$(cat "$d/st.port")" "$d/srv/server-ca.pem" "/api/v1/device/images/$image" "$d/go" \
  "$d/dev/agent/device.crt" "$d/dev/identity.pem" >"$d/stall" 2>&1 &
stall_pid=$!
E2E_PIDS+=("$stall_pid")
stalled() { grep -qs '^stalled 200' "$d/stall"; }
wait_until 60 stalled || fail "the stalled image download: $(cat "$d/stall")"
truncate -s 100000 "$d/srv/images/$image"
touch "$d/go"
wait "$stall_pid" || fail "the stalled client: $(cat "$d/stall")"
kill -0 "$dl_server" 2>/dev/null || fail "the server died while an image it sent was cut short"
got=$(sed -n 's/^cut after \([0-9]*\) bytes$/\1/p' "$d/stall")
[ -n "$got" ] || fail "an image cut short while sent was not cut: $(cat "$d/stall")"
[ "$got" -lt "$(stat -c %s "$d/app.img")" ] || fail "more bytes than the image had: $got"
E2E_CHECKS=$((E2E_CHECKS + 2))
grep -q "a file being sent ended at byte" "$d/st.log" || fail "the cut was not logged: $(tail -3 "$d/st.log")"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$d/srv/server-ca.pem" "https://127.0.0.1:$(cat "$d/st.port")/healthz")
is_status 200
kill "$dl_server"; wait "$dl_server" 2>/dev/null || true

done_ok
