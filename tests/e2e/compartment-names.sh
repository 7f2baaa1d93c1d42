#!/usr/bin/env bash
# A running app sees the monitor's re-resolution of the names its manifest allows: the monitor
# hands the new addresses to the app's launcher, whose hosts keeper replaces the app's /etc/hosts
# whole (a rename), so that the app's next lookup reads the new file, never a half-written one;
# the app itself cannot change the file. A keeper that dies is named in the app's missing layers.
# The monitor's side resolves with this test's own
# /etc/hosts, in a mount namespace of its own, so no DNS server is needed. Runs as root.
: "${COMPARTMENT_RUN:?set COMPARTMENT_RUN to the compartment-run test driver}"
RAMPART=$COMPARTMENT_RUN
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "the compartment names test runs as root (as CI does)"
d=$E2E_DIR
chmod 755 "$d"
cr=$COMPARTMENT_RUN
tree=$d/tree state=$d/S run=$d/run
mkdir -p "$tree" "$state" "$run"
full_cleanup() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$cr" --cleanup --state-dir "$state" --run-dir "$run" >/dev/null 2>&1 || true
  cleanup
}
trap full_cleanup EXIT

# The app looks its allowed name up every 100 ms and says what it got when it changes.
cat >"$tree/lookup.sh" <<'EOF'
#!/bin/sh
# Its /etc is read-only to it: the hosts file can be neither added to nor replaced.
{ echo 10.98.0.66 svc.test >>/etc/hosts || mv /tmp/x /etc/hosts || rm /etc/hosts; } 2>/dev/null &&
  echo "it changed its hosts file"
echo ready >&"$RAMPART_READY_FD"
last=
while :; do
  now=$(getent hosts svc.test | cut -d' ' -f1)
  [ "$now" != "$last" ] && echo "svc.test is ${now:-unknown}" && last=$now
  sleep 0.1
done
EOF
chmod 755 "$tree" "$tree/lookup.sh"
cat >"$d/manifest.json" <<'EOF'
{"SchemaVersion": 1, "Name": "names", "ComponentId": "names", "EntryPoint": "lookup.sh",
 "AllowedConnections": ["svc.test:8080"]}
EOF
# The monitor's resolver: this file, bound on /etc/hosts in the driver's mount namespace. Changed
# in place below (the bind shows this inode: a file renamed over it would not be seen), by
# put_hosts: not truncated first (">" would: a re-resolution every 200 ms could read it empty,
# and find no svc.test), and never shorter than before, so that no old byte is left at its end.
printf '127.0.0.1 localhost\n10.98.0.7 svc.test\n' >"$d/hosts"
put_hosts() { # ADDRESS
  local text
  text=$(printf '127.0.0.1 localhost\n%s svc.test\n_' "$1") text=${text%_}
  [ "${#text}" -ge "$(stat -c %s "$d/hosts")" ] || fail "put_hosts: $1 is shorter than what it replaces"
  printf '%s' "$text" 1<>"$d/hosts"
}

unshare -m sh -c "mount --make-rprivate / && mount --bind '$d/hosts' /etc/hosts &&
  exec '$cr' --state-dir '$state' --run-dir '$run' --tree '$tree' --manifest '$d/manifest.json' \
    --uid 61235 --gid 61235 --log '$d/app.log' --refresh-ms 200 --timeout-ms 120000" \
  >"$d/driver.out" 2>&1 &
E2E_PIDS+=($!)
saw() { grep -qx "svc.test is $1" "$d/app.log" 2>/dev/null; }
wait_until 60 saw 10.98.0.7 || { cat "$d/driver.out" "$d/app.log" >&2; fail "the app never resolved svc.test"; }
grep -q "^net: " "$d/driver.out" || fail "the network policy was not set up: $(cat "$d/driver.out")"

# The name moves: the monitor's next resolution replaces the app's hosts file, and the running app
# reads the new address.
put_hosts 10.98.0.8
wait_until 60 saw 10.98.0.8 || { cat "$d/driver.out" "$d/app.log" >&2; fail "the running app still sees the old address"; }
grep -q "svc.test is unknown" "$d/app.log" && fail "a lookup failed while the file was replaced"
grep -q "it changed its hosts file" "$d/app.log" && fail "the app changed its own hosts file"

# The hosts keeper runs under a seccomp filter of its own (review r6, L2). Stopped, it does not
# take the next change, and the change after it (that one still unread) names it in the app's
# missing layers (review r7, M1): the test, root, stops it (an app may, below Landlock ABI 6).
keeper=
find_keeper() { # the app's uid, pid 2 in its namespace
  local p
  for p in $(pgrep -u 61235); do
    [ "$(awk '/^NSpid:/ {print $NF}' "/proc/$p/status" 2>/dev/null)" = 2 ] && keeper=$p && return 0
  done
  return 1
}
find_keeper || fail "no hosts keeper found"
grep -q "^Seccomp:[[:space:]]*2" "/proc/$keeper/status" || fail "the hosts keeper has no seccomp filter"
changes() { grep -c "allowed addresses changed" "$d/driver.out" || true; }
changed() { [ "$(changes)" -gt "$n" ]; }
# address N: svc.test moves to 10.98.0.N, and the driver's next re-resolution sees it.
address() {
  n=$(changes)
  put_hosts "10.98.0.$1"
  wait_until 60 changed || { cat "$d/driver.out" >&2; fail "the driver did not see the change"; }
}
# A keeper that cannot write (here a directory in the way of its new file, made in its /etc by
# the test, as the app's user) answers so, and the monitor names it at the next update (review
# r7, M1).
etc=
for f in /proc/"$keeper"/fd/*; do [ -d "$f" ] && etc=$f; done # its /etc: its one directory
[ -n "$etc" ] || fail "the hosts keeper holds no directory"
(exec 9<"$etc" && setpriv --reuid 61235 --regid 61235 --clear-groups \
  mkdir /proc/self/fd/9/.hosts.new) || fail "cannot put a directory in the keeper's /etc"
failed() { grep -q "^missing: .*its hosts keeper cannot write it: Is a directory" "$d/driver.out"; }
address 9
failed && fail "a failed write was named before the monitor read the answer"
address 10
wait_until 60 failed || { cat "$d/driver.out" >&2; fail "a hosts keeper that cannot write is not shown"; }
kill -STOP "$keeper"
lost() { grep -q "^missing: .*its hosts keeper is gone or stopped" "$d/driver.out"; }
address 11
lost && fail "a stopped hosts keeper was named before a second update"
address 12
wait_until 60 lost || { cat "$d/driver.out" >&2; fail "a stopped hosts keeper is not shown"; }
kill -9 "$keeper"
E2E_CHECKS=$((E2E_CHECKS + 9))
done_ok
