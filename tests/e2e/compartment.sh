#!/usr/bin/env bash
# End to end, an app's compartment (device/monitor/compartment.c) through its test driver
# (tests/tools/compartment-run.c): a hostile app, built here, tries one escape per case, each in a
# compartment of its own; each must fail, and be recorded as a security event where the monitor
# can see it (seccomp notifications, cgroup counters, the storage's fill); the allowed paths must
# work. Run as root (namespaces, loop devices, cgroups). Everything made is removed, also on
# failure, and the end checks that no loop device, cgroup or mount is left.
[ "$(id -u)" = 0 ] || { echo "FAIL: compartment.sh builds namespaces and mounts: run it as root" >&2; exit 1; }
: "${COMPARTMENT_RUN:?set COMPARTMENT_RUN to the compartment-run test driver}"
: "${AGENT:?set AGENT to the rampart-agent binary}"
RAMPART=$COMPARTMENT_RUN
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR
chmod 755 "$d"
cr=$COMPARTMENT_RUN
app_uid=61234
tree=$d/tree state=$d/S run=$d/run other=$d/S/apps/other
testdev=/dev/rampart-test-$$
mkdir -p "$tree" "$state" "$run" "$other" "$d/run-holder"
echo "other app's secret" >"$other/storage.img"

# Whatever happens: the driver's own cleanup of leftovers, the test device, then lib.sh's.
full_cleanup() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$cr" --cleanup --state-dir "$state" --run-dir "$run" >/dev/null 2>&1 || true
  rm -f "$testdev"
  cleanup
}
trap full_cleanup EXIT

gcc -O1 -Wall -Werror -o "$tree/hostile" "$(dirname "$0")/escape-app.c" -lresolv # the escape suite's hostile app
echo "tree data" >"$tree/data.txt"
printf '#!/bin/sh\necho "script as $(id -u) in $(pwd)"; echo ready >&"$RAMPART_READY_FD"\n' >"$tree/script.sh"
chmod 755 "$tree" "$tree/hostile" "$tree/script.sh"
chmod 644 "$tree/data.txt"
mknod -m 666 "$testdev" c 1 3 # a device of our own (it behaves as /dev/null)

# run_case CASE [driver flags...] [-- hostile arg]: the hostile app in a compartment of its own;
# its output in $d/CASE.log, the driver's (layers, exit, events) in $E2E_DIR/out.
run_case() {
  local case=$1 arg=()
  shift
  local flags=()
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then arg=(--arg "$2"); shift 2; continue; fi
    flags+=("$1"); shift
  done
  : >"$d/$case.log"
  expect 0 "$cr" --state-dir "$state" --run-dir "$run" --tree "$tree" --entry hostile \
    --component hostile --version 1.2.3 --uid $app_uid --gid $app_uid --storage-kb 1024 \
    --memory-kb 32768 --pids 16 --log "$d/$case.log" --timeout-ms 60000 --arg "$case" \
    "${arg[@]}" "${flags[@]}"
  sed -n 's/^cgroup: //p' "$E2E_DIR/out" >>"$d/all.cgroups"
  grep -q '^cgroup: ' "$E2E_DIR/out" || grep -q '^start failed' "$E2E_DIR/out" || fail "$case: no cgroup named"
}
log_has() { grep -qF -- "$2" "$d/$1.log" || { cat "$d/$1.log" >&2; fail "$1's log lacks '$2'"; }; E2E_CHECKS=$((E2E_CHECKS + 1)); }
# refused CASE SYSCALL: the app saw it fail, and the monitor recorded the refused call.
refused_event() {
  run_case "$1"
  log_has "$1" "$1: refused"
  out_has "exit: 0"
  out_has "event: syscall hostile $2 ("
}

# Every layer this kernel offers is in force, and the driver says which.
run_case allowed -- "$testdev" --device "$testdev"
out_has "layers: user-ns mount-ns pid-ns ipc-ns uts-ns net-ns cgroup-ns no-new-privs no-caps seccomp seccomp-notify"
out_has "storage-quota rlimits"
out_has "ready"
out_has "exit: 0"
log_has allowed "allowed: ok kept=1 env=hostile,1.2.3,3,/data,/data cwd=/data"
grep -q "^missing: none" "$d/out" || echo "note: layers missing on this host: $(grep '^missing:' "$d/out")" >&2
# /data is kept across runs
run_case allowed
log_has allowed "allowed: ok kept=2"
# a /bin/sh script from the tree runs (the base system is there, read-only)
expect 0 "$cr" --state-dir "$state" --run-dir "$run" --tree "$tree" --entry script.sh \
  --component script --uid $app_uid --gid $app_uid --log "$d/script.log"
out_has "ready"
out_has "exit: 0"
log_has script "script as $app_uid in /tmp"
sed -n 's/^cgroup: //p' "$E2E_DIR/out" >>"$d/all.cgroups"

# Refused system calls: EPERM to the app, an event with the call's name and number.
refused_event ptrace ptrace
refused_event mount mount
refused_event unshare unshare
refused_event setns setns
refused_event keyctl keyctl
refused_event bpf bpf
refused_event perf_event_open perf_event_open
refused_event setuid setuid
refused_event module finit_module
refused_event settimeofday settimeofday
refused_event clock_settime clock_settime
refused_event reboot reboot
refused_event mknod mknodat
refused_event chroot chroot
# raising a hard limit goes to the monitor, which refuses and records it; lowering is the app's
refused_event rlimit prlimit64
out_has "raise a hard limit"
run_case rlimit-lower
log_has rlimit-lower "rlimit-lower: ok"
if grep -q "event: " "$d/out"; then cat "$d/out" >&2; fail "lowering a limit made an event"; fi

# A host without the optional layers (turned off here, as a host without them would be): each is
# named, and the remaining layers still hold (no capability, the read-only mounts, the filter).
run_case mount --without user-ns --without landlock-fs --without seccomp-notify --without memory \
  --without cgroup-ns
out_has "no user namespace (turned off"
out_has "no Landlock (turned off"
out_has "seccomp refusals are not seen (turned off"
out_has "no memory limit (turned off"
out_has "no cgroup namespace (turned off"
out_has "layers: mount-ns pid-ns ipc-ns uts-ns net-ns no-new-privs no-caps seccomp pids cpu storage-quota rlimits"
log_has mount "mount: refused (Operation not permitted)"
if grep -q "event: " "$d/out"; then cat "$d/out" >&2; fail "an event without notification?"; fi
run_case write-tree --without user-ns --without landlock-fs --without seccomp-notify
log_has write-tree "write-tree: refused"
run_case setuid --without user-ns --without landlock-fs --without seccomp-notify
log_has setuid "setuid: refused"

# Its own tree is read-only (EROFS: the kernel does not tell the monitor: no event to expect).
run_case write-tree
log_has write-tree "write-tree: refused"
[ ! -e "$tree/planted" ] || fail "the app wrote into its tree"
# The device's state, another app's storage and /dev/mem are not there at all.
run_case absent -- "$state"
log_has absent "absent: refused"
run_case absent -- "$other/storage.img"
log_has absent "absent: refused"
run_case absent -- /dev/mem
log_has absent "absent: refused"
# a device the manifest does not list is absent too
run_case absent -- "$testdev"
log_has absent "absent: refused"
# No other process in /proc.
run_case proc
log_has proc "proc: refused (0 other processes visible)"

# Fork bomb: held by pids.max, recorded from the pids counter.
run_case forkbomb
log_has forkbomb "forkbomb: refused after"
out_has "event: pids hostile refused"
# Memory: the app dies at its limit (SIGKILL from the OOM killer), the driver lives; recorded.
run_case memory
out_has "signal: 9"
out_has "event: oom hostile 1.2.3: killed at its memory limit"
# The run's event budget (100) spent on refused calls, then a log flood: the log's quota event is
# recorded all the same (once a run, outside the budget), and so is what the budget left out.
run_case logmask
out_has "exit: 0"
out_has "event: quota hostile its log dropped "
out_has "event: syscall hostile 10 further refusals in this run not recorded"

# Storage quota: ENOSPC at SizeKB, recorded.
run_case quota
log_has quota "quota: refused after"
out_has "event: quota hostile storage full"
size_kb=$(sed -n 's/^quota: refused after \([0-9]*\) KB.*/\1/p' "$d/quota.log")
[ "$size_kb" -le 1024 ] || fail "wrote $size_kb KB into a 1024 KB quota"

# One app owns each device: a second compartment listing a device in use is refused, recorded.
"$cr" --state-dir "$state" --run-dir "$d/run-holder" --tree "$tree" --entry hostile \
  --component holder --uid $app_uid --gid $app_uid --device "$testdev" --arg wait \
  --timeout-ms 120000 >"$d/holder.out" 2>&1 &
holder=$!
E2E_PIDS+=("$holder")
wait_until 60 grep -q '^ready' "$d/holder.out" || { cat "$d/holder.out" >&2; fail "the holder never got ready"; }
expect 2 "$cr" --state-dir "$state" --run-dir "$run" --tree "$tree" --entry hostile \
  --component taker --uid $app_uid --gid $app_uid --device "$testdev" --arg allowed
out_has "start failed: device $testdev is owned by another running app"
out_has "event: device taker $testdev: owned by another running app"
kill "$holder"
wait "$holder" || true
E2E_PIDS=()
grep -q "^signal: 15" "$d/holder.out" || { cat "$d/holder.out" >&2; fail "the holder was not stopped by its SIGTERM"; }

# A monitor that dies (kill -9) takes its compartment with it; what it leaves (its cgroups) the
# next start's cleanup removes.
"$cr" --state-dir "$state" --run-dir "$d/run-holder" --tree "$tree" --entry hostile \
  --component crashed --uid $app_uid --gid $app_uid --storage-kb 1024 --arg wait \
  --timeout-ms 120000 >"$d/crashed.out" 2>&1 &
crashed=$!
E2E_PIDS+=("$crashed")
wait_until 60 grep -q '^ready' "$d/crashed.out" || { cat "$d/crashed.out" >&2; fail "the crashed app never got ready"; }
app_pid=$(sed -n 's/^started: //p' "$d/crashed.out")
{ kill -9 "$crashed"; wait "$crashed"; } 2>/dev/null || true
E2E_PIDS=()
wait_until 30 sh -c "! kill -0 $app_pid 2>/dev/null" || fail "the compartment outlived its monitor"
cg_left=$(sed -n 's/^cgroup: //p' "$d/crashed.out")
[ -n "$cg_left" ] || fail "the driver named no cgroup"
for g in $cg_left; do [ -d "$g" ] || fail "expected the crash to leave $g"; done
expect 0 "$cr" --cleanup --state-dir "$state" --run-dir "$run"
out_has "leftovers: $(echo "$cg_left" | wc -w)"
for g in $cg_left; do [ ! -d "$g" ] || fail "cleanup left $g"; done

# The same events, as the device's operator reads them (rampart-agent events: the contract).
expect 0 "$AGENT" events --state-dir "$state" --output json
for want in 'syscall|hostile|ptrace (' 'syscall|hostile|mount (' 'oom|hostile|' 'pids|hostile|' \
  'quota|hostile|' 'device|taker|'; do
  IFS='|' read -r kind app reason <<<"$want"
  jq -e --arg k "$kind" --arg a "$app" --arg r "$reason" \
    '[.events[] | select(.kind == $k and .app == $a and (.reason | startswith($r)) and (.at | type == "number"))] | length > 0' \
    "$d/out" >/dev/null || fail "rampart-agent events lacks a $want event: $(head -c 800 "$d/out")"
  E2E_CHECKS=$((E2E_CHECKS + 1))
done
jq -e '.dropped == 0' "$d/out" >/dev/null || fail "events dropped"
expect 0 "$AGENT" events --state-dir "$state"
out_has " syscall        hostile          ptrace ("
expect 2 "$AGENT" events --state-dir "$state" --output yaml

# Nothing is left: no cgroup any run named, no loop device on a storage image, no mount under
# the test's directory.
cgroups_named() { cat "$d"/*.cgroups 2>/dev/null; sed -n 's/^cgroup: //p' "$d"/*.out 2>/dev/null; }
no_leftovers() {
  for g in $(cgroups_named); do [ ! -d "$g" ] || return 1; done
  ! losetup -a 2>/dev/null | grep -qF "$d" && ! grep -qF "$d" /proc/self/mountinfo
}
wait_until 30 no_leftovers || {
  for g in $(cgroups_named); do [ ! -d "$g" ] || echo "left: $g" >&2; done
  losetup -a >&2
  fail "a compartment left something behind"
}
expect 0 "$cr" --cleanup --state-dir "$state" --run-dir "$run"
out_has "leftovers: 0"
echo "PASS: compartment ($E2E_CHECKS checks)"
