#!/usr/bin/env bash
# bench/footprint.sh BIN_DIR: the resident memory of the device's two processes (goal: <= 4 MiB
# each), beside a reference measured in the same run: a bare `sleep` (what any process costs).
#   rampart-monitor  idle after start and after serving requests (VmRSS and its peak VmHWM)
#   rampart-agent    the peak of one `evidence` command (through the monitor)
# Run as root (the monitor is root's), on a soft root of trust in a scratch directory.
set -euo pipefail
bin=${1:?usage: bench/footprint.sh BIN_DIR}
[ "$(id -u)" = 0 ] || { echo "bench/footprint.sh: run as root (the monitor is): skipped"; exit 0; }
d=$(mktemp -d /tmp/rampart-footprint.XXXXXX)
mon=
trap '[ -n "$mon" ] && kill "$mon" 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# The peak resident memory of a command (GNU time: its child's maxrss, in KiB).
peak_kib() { /usr/bin/time -f %M -o "$d/peak" "$@" >/dev/null 2>&1; cat "$d/peak"; }

"$bin/rampart-agent" provision --state-dir "$d/S" --rot soft >/dev/null 2>&1
"$bin/rampart-monitor" --state-dir "$d/S" >"$d/monitor.log" 2>&1 &
mon=$!
for _ in $(seq 1 200); do [ -S "$d/S/monitor.sock" ] && break; sleep 0.05; done
[ -S "$d/S/monitor.sock" ] || { cat "$d/monitor.log"; echo "the monitor did not start"; exit 1; }
idle=$(kib "$mon" VmRSS)
agent=$(peak_kib "$bin/rampart-agent" evidence --state-dir "$d/S" --nonce 00112233445566778899aabbccddeeff --out "$d/ev.cbor")
for _ in $(seq 1 20); do "$bin/rampart-agent" id --state-dir "$d/S" >/dev/null 2>&1; done
busy=$(kib "$mon" VmRSS) peak=$(kib "$mon" VmHWM)
ref=$(peak_kib true)
printf 'resident memory, KiB (goal <= 4096 each; a bare process: %s KiB peak)\n' "$ref"
printf '  rampart-monitor  idle %s, after 21 requests %s, peak %s  (%.1fx a bare process)\n' \
  "$idle" "$busy" "$peak" "$(echo "$peak / $ref" | bc -l)"
printf '  rampart-agent    one evidence command, peak %s  (%.1fx a bare process)\n' \
  "$agent" "$(echo "$agent / $ref" | bc -l)"
