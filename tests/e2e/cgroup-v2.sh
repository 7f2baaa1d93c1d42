#!/usr/bin/env bash
# cgroup v2 for the compartments, on a host whose memory, pids and cpu controllers are v1's: the
# compartment driver runs in a private mount namespace where those v1 hierarchies are unmounted, so
# it takes the v2 path on the host's cgroup2 hierarchy (mounted here if the host has none), from a
# cgroup of this test's own (as systemd gives a service one). It must move itself into the leaf
# "rampart-monitor" (cgroup v2 allows no process in a cgroup whose children have controllers),
# make the app's cgroup beside it, and name each controller it could not have and why. What this
# host cannot show: the limits themselves in force under v2 (its cgroup2 has none of the three
# controllers; docs/compartments.md says so). Runs as root.
: "${COMPARTMENT_RUN:?set COMPARTMENT_RUN to the compartment-run test driver}"
RAMPART=$COMPARTMENT_RUN
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "the cgroup v2 test runs as root (as CI does)"
d=$E2E_DIR
chmod 755 "$d"
cr=$COMPARTMENT_RUN
tree=$d/tree state=$d/S run=$d/run
mkdir -p "$tree" "$state" "$run" "$d/cg2"
CG2=$(findmnt -n -t cgroup2 -o TARGET | head -n1)
mounted=
if [ -z "$CG2" ]; then
  mount -t cgroup2 none "$d/cg2" || fail "cannot mount a cgroup2 hierarchy"
  CG2=$d/cg2 mounted=1
fi
T=$CG2/rp-v2test.$$
mkdir "$T"
full_cleanup() {
  local pid dir
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$cr" --cleanup --state-dir "$state" --run-dir "$run" >/dev/null 2>&1 || true
  for dir in "$T"/*/ "$T"; do
    [ -d "$dir" ] || continue
    for pid in $(cat "$dir/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    rmdir "$dir" 2>/dev/null || true
  done
  [ -z "$mounted" ] || umount "$d/cg2"
  cleanup
}
trap full_cleanup EXIT

printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 3600\n' >"$tree/app.sh"
chmod 755 "$tree" "$tree/app.sh"
v1=()
for c in memory pids cpu; do
  m=$(findmnt -n -t cgroup -O "$c" -o TARGET | head -n1)
  [ -z "$m" ] || v1+=("$m")
done
# The driver: put in the test's cgroup, then run with no v1 hierarchy for the three controllers.
unshare -m sh -c "mount --make-rprivate / && for m in ${v1[*]}; do umount \"\$m\" || exit 9; done &&
  echo \$\$ >'$T/cgroup.procs' &&
  exec '$cr' --state-dir '$state' --run-dir '$run' --tree '$tree' --entry app.sh \
    --component v2app --uid 61236 --gid 61236 --log '$d/app.log' --timeout-ms 120000" \
  >"$d/driver.out" 2>&1 &
drv=$!
E2E_PIDS+=("$drv")
ready() { grep -qx "ready" "$d/driver.out" 2>/dev/null; }
wait_until 60 ready || { cat "$d/driver.out" >&2; fail "the app never said it was ready"; }

# the layout: nothing left in the test's cgroup itself; the driver in the leaf; the app beside it
eq "$(cat "$T/cgroup.procs")" "" "processes left in the cgroup whose children have controllers"
grep -qx "$drv" "$T/rampart-monitor/cgroup.procs" || fail "the driver ($drv) is not in its leaf: $(cat "$T/rampart-monitor/cgroup.procs")"
app_cg=$(find "$T" -mindepth 1 -maxdepth 1 -type d -name 'rampart.v2app.*')
[ -n "$app_cg" ] || fail "no cgroup for the app beside the leaf: $(ls "$T")"
[ -n "$(cat "$app_cg/cgroup.procs")" ] || fail "the app is not in its cgroup $app_cg"
grep -q "cgroup v2: moved into $T/rampart-monitor" "$d/driver.out" || fail "the move is not said: $(cat "$d/driver.out")"
# each controller missing is named, with the v2 reason (not "no cgroup at all")
avail=$(cat "$T/cgroup.controllers")
missing=$(sed -n 's/^missing: //p' "$d/driver.out")
for c in memory pids cpu; do
  case " $avail " in
    *" $c "*) echo "this host's cgroup2 delegates $c: its limit is not checked as missing" ;;
    *) case "$missing" in
         *"no $c limit (cgroup v2: \"$c\" not delegated to /rp-v2test.$$: Delegate=yes)"*) ;;
         *) fail "the missing $c controller is not named as cgroup v2's: $missing" ;;
       esac ;;
  esac
done
E2E_CHECKS=$((E2E_CHECKS + 3))

# stopped: the app's cgroup goes; the leaf empties with the driver
kill -TERM "$drv"
rc=0; wait "$drv" || rc=$?
gone() { [ ! -d "$app_cg" ]; }
wait_until 30 gone || fail "the app's cgroup is left: $app_cg"
eq "$(cat "$T/rampart-monitor/cgroup.procs")" "" "processes left in the leaf"

# a process of someone else's in the monitor's cgroup (a login shell, run by hand): not moved;
# the limits are named missing, saying why
sleep 600 &
other=$!
E2E_PIDS+=("$other")
echo "$other" >"$T/cgroup.procs"
rm "$d/driver.out" # (the first driver's "ready" is not this one's)
unshare -m sh -c "mount --make-rprivate / && for m in ${v1[*]}; do umount \"\$m\" || exit 9; done &&
  echo \$\$ >'$T/cgroup.procs' &&
  exec '$cr' --state-dir '$state' --run-dir '$run' --tree '$tree' --entry app.sh \
    --component v2app --uid 61236 --gid 61236 --log '$d/app.log' --timeout-ms 120000" \
  >"$d/driver.out" 2>&1 &
drv=$!
E2E_PIDS+=("$drv")
wait_until 60 ready || { cat "$d/driver.out" >&2; fail "the app never said it was ready"; }
grep -q "^missing: no memory limit (cgroup v2: $T holds other processes (pid $other): the monitor needs a cgroup of its own (systemd: Delegate=yes))" \
  "$d/driver.out" || fail "the other process is not named: $(cat "$d/driver.out")"
grep -qx "$other" "$T/cgroup.procs" || fail "someone else's process was moved"
kill -TERM "$drv"; wait "$drv" || true
kill "$other"; wait "$other" 2>/dev/null || true
E2E_CHECKS=$((E2E_CHECKS + 2))
done_ok
