#!/usr/bin/env bash
# bench/footprint.sh BIN_DIR: the memory of the device's processes (goal: <= 4 MiB each), beside
# a reference measured in the same run: a bare `sleep` (what any process costs).
#   rampart-monitor       its core (the root of trust, the slots), idle and after 21 requests
#   its app supervisor    (a process of its own, forked at start), idle with no app
#   rampart-agent run     the unprivileged agent, attached to the monitor, its update loop going
#   rampart-agent         the peak of one `evidence` command (through the monitor)
# Three figures per process (KiB, from /proc/PID/smaps_rollup): RSS, every page mapped in (the
# shared libraries' pages count whole in every process that maps them); PSS, each shared page
# divided by the processes sharing it (what the process costs the device); private, the pages
# no other process has. The goal is read against PSS.
# Run as root (the monitor is root's), on a soft root of trust in a scratch directory.
set -euo pipefail
bin=${1:?usage: bench/footprint.sh BIN_DIR}
[ "$(id -u)" = 0 ] || { echo "bench/footprint.sh: run as root (the monitor is): skipped"; exit 0; }
d=$(mktemp -d /tmp/rampart-footprint.XXXXXX)
mon= agent= ref=
trap 'for p in $agent $mon $ref; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$d"' EXIT
# mem PID: "RSS PSS PRIVATE" in KiB.
mem() {
  awk '$1 == "Rss:" {r = $2} $1 == "Pss:" {p = $2} $1 ~ /^Private_(Clean|Dirty):$/ {v += $2}
       END {print r, p, v}' "/proc/$1/smaps_rollup"
}
# The peak resident memory of a command (GNU time: its child's maxrss, in KiB).
peak_kib() { /usr/bin/time -f %M -o "$d/peak" "$@" >/dev/null 2>&1; cat "$d/peak"; }
row() { # LABEL "RSS PSS PRIVATE" REF_PSS
  set -- "$1" $2 "$3"
  printf '  %-30s RSS %6s  PSS %6s  private %6s  (PSS %.1fx a bare process)\n' "$1" "$2" "$3" "$4" \
    "$(echo "$3 / $5" | bc -l)"
}

"$bin/rampart-agent" provision --state-dir "$d/S" --rot soft >/dev/null 2>&1
"$bin/rampart-monitor" --state-dir "$d/S" >"$d/monitor.log" 2>&1 &
mon=$!
for _ in $(seq 1 200); do [ -S "$d/S/monitor.sock" ] && break; sleep 0.05; done
[ -S "$d/S/monitor.sock" ] || { cat "$d/monitor.log"; echo "the monitor did not start"; exit 1; }
sup=$(pgrep -P "$mon" | head -1)
sleep 30 &
ref=$!
ref_mem=$(mem "$ref")
set -- $ref_mem
ref_pss=$2
idle=$(mem "$mon")
sup_idle=$(mem "$sup")
one=$(peak_kib "$bin/rampart-agent" evidence --state-dir "$d/S" --nonce 00112233445566778899aabbccddeeff --out "$d/ev.cbor")
for _ in $(seq 1 20); do "$bin/rampart-agent" id --state-dir "$d/S" >/dev/null 2>&1; done
busy=$(mem "$mon")
# The agent's daemon: attached to the monitor, trying a service that does not answer (its loop
# and backoff running); measured once it has said so.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench -days 1 \
  -keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1
"$bin/rampart-agent" run --state-dir "$d/S" --server https://127.0.0.1:9 --server-ca "$d/ca.pem" --start-jitter 0 \
  >"$d/agent.log" 2>&1 &
agent=$!
for _ in $(seq 1 200); do grep -q "rampart-monitor serves" "$d/agent.log" 2>/dev/null && break; sleep 0.05; done
sleep 1
agent_mem=$(mem "$agent")
printf 'memory, KiB (goal: PSS <= 4096 each; a bare process: %s)\n' "$(echo "$ref_mem" | awk '{print "RSS " $1 ", PSS " $2}')"
row "rampart-monitor, idle" "$idle" "$ref_pss"
row "rampart-monitor, 21 requests" "$busy" "$ref_pss"
row "its app supervisor, no app" "$sup_idle" "$ref_pss"
row "rampart-agent run" "$agent_mem" "$ref_pss"
printf '  %-30s peak RSS %s\n' "rampart-agent evidence" "$one"
