#!/usr/bin/env bash
# e2e.packages: the Debian packages (debian/, scripts/package) built from this build directory
# (no second compile: `cmake --build` finds the programs up to date), their programs hardened
# (PIE, RELRO, BIND_NOW, stack protector, fortified calls), installed into a fresh Debian 12 root
# booted under systemd (systemd-nspawn --boot): rampart-server started by installing it, from its
# unit (Type=notify), and checked there (files, modes, users, libraries, `systemd-analyze verify`
# of the installed units, its privileges, its journal, the watchdog, reload, stop),
# rampart-monitor started from its unit on a device provisioned with the soft root of trust,
# an upgrade over itself, then removed and purged, leaving nothing of ours behind.
#
# The fresh root is made once with mmdebstrap from the Debian archive (minbase, systemd and the
# packages' Depends; the host's apt cache spares most downloads) and cached in $RAMPART_TEST_CACHE
# (default /var/cache/rampart-test), keyed by the Depends, so a new dependency makes a new one.
# Each run boots an overlay of it in a tmpfs, in mount, network and pid namespaces of its own and
# a cgroup of its own: every run starts from the same fresh root, nothing it does reaches the
# cache or the host, and everything (processes, cgroups, mounts) is gone when it ends, passed or
# failed. Runs as root.
#
# Env: RAMPART (lib.sh), BUILD_DIR (the CMake build directory), RAMPART_DEBIAN_MIRROR.
set -Eeuo pipefail
: "${BUILD_DIR:?set BUILD_DIR to the CMake build directory}"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${RAMPART_TEST_CACHE:-/var/cache/rampart-test}
MIRROR=${RAMPART_DEBIAN_MIRROR:-http://deb.debian.org/debian}
OURS=(rampart-server rampart-agent rampart-tools)

if [ "${1:-}" != inside ]; then
  [ "$(id -u)" = 0 ] || { echo "FAIL: e2e.packages runs as root (mmdebstrap, chroot, overlay)" >&2; exit 1; }
  t0=$(date +%s)
  # 1. The packages, from the build directory as it is.
  DEB_BUILD_OPTIONS="noddebs ${DEB_BUILD_OPTIONS:-}" "$SRC/scripts/package" "$BUILD_DIR" >/dev/null
  debs=()
  for p in "${OURS[@]}"; do
    f=$(ls "$BUILD_DIR"/packages/"${p}"_*.deb)
    [ -f "$f" ] || { echo "FAIL: no $p package in $BUILD_DIR/packages" >&2; exit 1; }
    debs+=("$f")
  done
  echo "packages built in $(($(date +%s) - t0)) s"

  # 2. The fresh root: minbase and our Depends (the first of each alternative), made once.
  deps=$(for f in "${debs[@]}"; do dpkg-deb -f "$f" Depends; done | tr ',' '\n' |
    sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | grep -v '^$' | sort -u | tr '\n' ',')
  # systemd: its units (sysinit.target...) for `systemd-analyze verify --root`, and what a
  # real host has when the maintainer scripts run.
  deps="systemd,${deps%,}"
  key=$(printf '%s %s' "$MIRROR" "$deps" | sha256sum | cut -c1-12)
  root=$CACHE/bookworm-$key
  mkdir -p "$CACHE"
  # Made under an exclusive lock (it removes roots for other Depends); used under a shared one,
  # held by descriptor 9 until the run ends, so no run removes the root another one uses.
  exec 9>"$CACHE/.lock"
  flock -x 9
  if [ ! -e "$root/.rampart-complete" ]; then
    echo "e2e.packages: making a fresh Debian 12 root in $root (once: mmdebstrap from $MIRROR," \
      "a few minutes; later runs reuse it)" >&2
    t1=$SECONDS
    rm -rf "$CACHE"/bookworm-* # roots for other Depends
    # The host's apt cache holds most of these packages when it runs Debian 12 too (install-deps
    # put them there): hard links to them (nothing is copied, and apt checks each one's hash
    # against the archive's index) spare most of the download.
    # mmdebstrap starts with no descriptor but 0-2: apt runs its hook `cat >&N` with /bin/sh, and
    # dash takes one digit only ("Bad fd number" once the lock above and ctest's push N past 9).
    (
      for fd in "/proc/$BASHPID/fd/"*; do
        fd=${fd##*/}
        [ "$fd" -le 2 ] || eval "exec $fd>&-"
      done
      # shellcheck disable=SC2016 # the hook's $1 is the root, given to it by mmdebstrap
      exec mmdebstrap --variant=minbase --include="$deps" --skip=download/empty \
      --setup-hook='mkdir -p "$1/var/cache/apt/archives" &&
        { cp -al /var/cache/apt/archives/*.deb "$1/var/cache/apt/archives/" 2>/dev/null || true; }' \
      bookworm "$root" \
      "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
      "deb ${MIRROR%/debian}/debian-security bookworm-security main"
    ) </dev/null >"$CACHE/mmdebstrap.log" 2>&1 ||
      { tail -20 "$CACHE/mmdebstrap.log" >&2; rm -rf "$root"; echo "FAIL: mmdebstrap failed" >&2; exit 1; }
    touch "$root/.rampart-complete"
    echo "fresh root made in $((SECONDS - t1)) s"
  fi
  flock -s 9
  export PKG_ROOT=$root PKG_DEBS="${debs[*]}" PKG_T0=$t0
  # 3. The rest in namespaces of its own: mounts, the loopback interface, processes.
  exec unshare --mount --net --pid --fork --mount-proc --propagation private "$0" inside
fi

# ---- inside the namespaces
: "${RAMPART:=$BUILD_DIR/bin/rampart}"
export RAMPART
# shellcheck source=lib.sh
source "$SRC/tests/e2e/lib.sh"
ip link set lo up
read -r -a debs <<<"$PKG_DEBS"

# The programs are built hardened, as Debian's dpkg-buildflags (hardening=+all) would: PIE,
# full RELRO (BIND_NOW), the stack protector, and _FORTIFY_SOURCE's checked functions
# (CMakeLists.txt, RP_HARDEN). What hardening-check (devscripts) looks at, read with readelf.
X=$E2E_DIR/debs
for f in "${debs[@]}"; do dpkg-deb -x "$f" "$X"; done
for p in rampart rampart-server rampart-symbolize rampart-agent rampart-monitor rampart-unpack \
  rampart-launcher; do
  b=$X/usr/bin/$p
  # Each readelf's output whole first: grep -q leaving a pipe early fails it under pipefail.
  h=$(readelf -hW "$b") l=$(readelf -lW "$b") d=$(readelf -dW "$b") s=$(readelf --dyn-syms -W "$b")
  grep -q 'Type: *DYN' <<<"$h" || fail "$p is not a position-independent executable"
  grep -q GNU_RELRO <<<"$l" || fail "$p has no RELRO segment"
  grep -qE 'BIND_NOW|FLAGS_1.*NOW' <<<"$d" || fail "$p is not linked with -z now"
  grep -q ' __stack_chk_fail@' <<<"$s" || fail "$p has no stack protector"
  grep -qE ' __[a-z0-9_]+_chk@' <<<"$s" || fail "$p calls no fortified function"
  E2E_CHECKS=$((E2E_CHECKS + 1))
done
rm -rf "$X"

# The overlay lives outside E2E_DIR (lib.sh's cleanup removes that recursively), and is unmounted
# before it: nothing of the host is ever mounted under it.
T=$(mktemp -d /tmp/rampart-pkgroot.XXXXXX)
# The booted root's cgroup, one per run, in each hierarchy systemd-nspawn uses: name=systemd and
# the unified one beside it (a cgroup v1 or hybrid host, like the test VM), or the unified one
# alone (a cgroup v2 host). systemd-nspawn --keep-unit makes payload/ and supervisor/ in it,
# and leaves them behind: removed here, whatever happens.
CG=rampart-e2e-${T##*/}
cgdirs=()
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
  case $(stat -f -c %T "$h" 2>/dev/null) in
  cgroup2fs) cgdirs+=("$h/$CG") ;;
  cgroupfs) [ "$h" != /sys/fs/cgroup/systemd ] || cgdirs+=("$h/$CG") ;;
  esac
done
nspawn=
stop_root() {
  # Every process in the booted root's cgroup is killed (systemd-nspawn first: it would restart
  # nothing, but would report each death), the cgroups, then the mounts, are removed.
  local d f pid found
  [ -z "$nspawn" ] || kill -KILL "$nspawn" 2>/dev/null || true
  for _ in $(seq 100); do # 10 s at most
    found=
    for d in "${cgdirs[@]}"; do
      [ -d "$d" ] || continue
      while read -r f; do
        while read -r pid; do
          found=1
          kill -KILL "$pid" 2>/dev/null || true
        done 2>/dev/null <"$f" || true # a cgroup gone meanwhile
      done < <(find "$d" -name cgroup.procs 2>/dev/null)
    done
    [ -n "$found" ] || break
    sleep 0.1
  done
  [ -z "$nspawn" ] || wait "$nspawn" 2>/dev/null || true
  for d in "${cgdirs[@]}"; do
    [ ! -d "$d" ] || find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rmdir "/run/systemd/nspawn/propagate/$CG" 2>/dev/null || true
  umount -R "$T" 2>/dev/null || true
  rmdir "$T" 2>/dev/null || true
}
trap 'stop_root; cleanup' EXIT
mount -t tmpfs -o mode=0755 tmpfs "$T"
mkdir "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=$PKG_ROOT,upperdir=$T/upper,workdir=$T/work" "$T/root"
R=$T/root
mkdir "$R/root/pkgs"
cp "${debs[@]}" "$R/root/pkgs/"
in_debs=()
for f in "${debs[@]}"; do in_debs+=("/root/pkgs/${f##*/}"); done

# 1. The root booted under systemd (systemd-nspawn --boot), sharing this network namespace (the
# server is reached on its loopback from here). Its console goes to $E2E_DIR/console.log.
for d in "${cgdirs[@]}"; do mkdir "$d"; done
(
  for d in "${cgdirs[@]}"; do echo "$BASHPID" >"$d/cgroup.procs"; done
  exec systemd-nspawn --quiet --directory="$R" --machine="$CG" --boot --register=no --keep-unit \
    --console=pipe
) </dev/null >"$E2E_DIR/console.log" 2>&1 &
nspawn=$!
leader=
find_leader() {
  kill -0 "$nspawn" 2>/dev/null || { cat "$E2E_DIR/console.log" >&2; fail "systemd-nspawn exited"; }
  leader=$(ps -o pid= --ppid "$nspawn" | tr -d ' ' | head -1)
  [ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ]
}
wait_until 30 find_leader || { cat "$E2E_DIR/console.log" >&2; fail "systemd does not run in the booted root"; }
# in_c CMD...: CMD in the booted root, as its services see it, with a clean environment.
in_c() {
  nsenter --target="$leader" --mount --uts --ipc --pid --root --wd -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
booted() {
  state=$(in_c systemctl is-system-running 2>/dev/null) || true
  case $state in running | degraded) return 0 ;; *) return 1 ;; esac
}
wait_until 60 booted || { cat "$E2E_DIR/console.log" >&2; fail "the root did not boot: '$state'"; }
[ "$state" = running ] || { in_c systemctl --failed --no-pager >&2; fail "the root booted degraded"; }
echo "booted under systemd in $(($(date +%s) - PKG_T0)) s since the start"

# 2. Installed with dpkg while systemd runs: the maintainer scripts enable rampart-server and
# start it (dh_installsystemd); dpkg waits for the start job, so the unit is up when it returns.
expect 0 in_c dpkg -i "${in_debs[@]}"
for f in usr/bin/rampart usr/bin/rampart-server usr/bin/rampart-symbolize usr/bin/rampart-agent \
  usr/bin/rampart-monitor usr/bin/rampart-unpack usr/bin/rampart-launcher; do
  [ -x "$R/$f" ] || fail "/$f is not installed"
done
# Beside them: the console the server serves (../share/rampart/console from /usr/bin), the man
# pages, the shell completion.
for f in usr/share/rampart/console/index.html usr/share/man/man1/rampart.1.gz \
  usr/share/man/man1/rampart-server.1.gz usr/share/man/man1/rampart-agent.1.gz \
  usr/share/man/man1/rampart-monitor.1.gz usr/share/bash-completion/completions/rampart \
  usr/share/zsh/vendor-completions/_rampart; do
  [ -f "$R/$f" ] || fail "/$f is not installed"
done
for u in rampart-server rampart-monitor rampart-agent; do
  [ -f "$R/lib/systemd/system/$u.service" ] || fail "$u.service is not installed"
done
# Every library each program needs is there (Depends from dpkg-shlibdeps): each one runs.
expect 0 in_c rampart --version
expect 0 in_c rampart-server --version
expect 0 in_c rampart-agent --version
expect 0 in_c rampart-monitor --help
expect 2 in_c rampart-symbolize
err_has "usage: rampart-symbolize"
# The users, system users without a login.
for u in rampart rampart-agent; do
  expect 0 in_c getent passwd "$u"
  uid=$(cut -d: -f3 "$E2E_DIR/out")
  [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "$u is not a system user (uid $uid)"
  eq "$(cut -d: -f7 "$E2E_DIR/out")" /usr/sbin/nologin "$u's shell"
done
eq "$(in_c stat -c '%U:%G %a' /etc/rampart/server.conf)" "root:rampart 640" \
  "server.conf's owner and mode"
eq "$(in_c stat -c '%U:%G %a' /etc/rampart/agent.conf)" "root:root 644" "agent.conf's owner and mode"
# The server is enabled and started; the device's units wait for the operator (provisioning).
eq "$(in_c systemctl is-enabled rampart-server.service)" enabled "rampart-server.service enabled"
eq "$(in_c systemctl is-enabled rampart-agent.service rampart-monitor.service | tr '\n' ' ' || true)" \
  "disabled disabled " "the device's units before the device is provisioned"

# The installed units, as systemd reads them in that root (binaries at their paths, users).
units=(/lib/systemd/system/rampart-server.service /lib/systemd/system/rampart-monitor.service
  /lib/systemd/system/rampart-agent.service)
expect 0 systemd-analyze verify --root="$R" "${units[@]}"
[ ! -s "$E2E_DIR/err" ] || { cat "$E2E_DIR/err" >&2; fail "systemd-analyze verify has something to say"; }

# 3. rampart-server under systemd, with every hardening option of its unit: Type=notify reached
# "active" only on its READY=1, and its STATUS= is systemd's status text.
show() { in_c systemctl show -P "$1" rampart-server.service; }
active() { in_c systemctl is-active rampart-server.service || true; }
eq "$(active)" active "rampart-server after installation"
eq "$(show Type) $(show NRestarts)" "notify 0" "the unit's type and restarts"
unit=$R/lib/systemd/system/rampart-server.service
state=/var/lib/$(sed -n 's/^StateDirectory=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
conf=$R/etc/rampart/server.conf
eq "$(sed -n 's/^data-dir *= *//p' "$conf")" "$state" "the config's data-dir and the unit's StateDirectory"
listen=$(sed -n 's/^listen *= *//p' "$conf")
case $(show StatusText) in "serving https://$listen/ "*) ;; *) fail "rampart-server's STATUS= is '$(show StatusText)'" ;; esac
healthz() {
  curl -sS --max-time 5 --cacert "$R$state/server-ca.pem" "https://$listen/healthz" \
    -o "$E2E_DIR/body" 2>/dev/null && jq -e '.status == "ok"' "$E2E_DIR/body" >/dev/null
}
wait_until 30 healthz || { in_c journalctl -u rampart-server --no-pager >&2; fail "rampart-server does not answer /healthz on $listen"; }
E2E_CHECKS=$((E2E_CHECKS + 1))
curl -sS --max-time 5 --cacert "$R$state/server-ca.pem" "https://$listen/console/" -o "$E2E_DIR/body" ||
  fail "the installed server does not serve its console"
grep -q "<html" "$E2E_DIR/body" || fail "the installed server's /console/ is not its page: $(head -c 300 "$E2E_DIR/body")"
eq "$(in_c stat -c '%U %a' "$state" "$state/admin.token" "$state/master.key" | tr '\n' ' ')" \
  "$user 700 $user 600 $user 600 " "the state directory's owner and modes"
# It runs as its user, with no capability and no new privileges.
pid=$(show MainPID)
eq "$(in_c ps -o user= -p "$pid")" "$user" "the server's user"
eq "$(in_c grep -E '^(CapEff|CapBnd|NoNewPrivs):' "/proc/$pid/status" | tr -s '\t ' ' ' | tr '\n' ' ')" \
  "CapEff: 0000000000000000 CapBnd: 0000000000000000 NoNewPrivs: 1 " "the server's privileges"
# Its log is in the journal, one entry per line, at the level it logged (syslog's 6, info).
in_c journalctl -u rampart-server.service -o json --no-pager >"$E2E_DIR/journal"
eq "$(jq -r 'select(.MESSAGE | tostring | contains("info: serving https://'"$listen"'/ ")) | .PRIORITY' \
  "$E2E_DIR/journal")" 6 "the journal's entry of the server's start, and its priority"

# 4. The watchdog. With WatchdogSec=2s (a drop-in in /run: the unit's 30 s is too long to watch
# here) the server feeds it: it outlives several periods, one process, no restart. Stopped
# (SIGSTOP), it feeds nothing: systemd ends it and starts another (Restart=on-failure).
in_c sh -c 'mkdir -p /run/systemd/system/rampart-server.service.d &&
  printf "[Service]\nWatchdogSec=2s\n" >/run/systemd/system/rampart-server.service.d/watchdog.conf'
expect 0 in_c systemctl daemon-reload
expect 0 in_c systemctl restart rampart-server.service
eq "$(show WatchdogUSec)" 2s "the watchdog's timeout"
pid=$(show MainPID)
since=$(show ActiveEnterTimestampMonotonic)
fed_for_3_periods() { [ "$(show WatchdogTimestampMonotonic)" -gt $((since + 6000000)) ]; }
wait_until 30 fed_for_3_periods || fail "rampart-server did not feed the watchdog for 6 s"
eq "$(active) $(show MainPID) $(show NRestarts)" "active $pid 0" \
  "rampart-server after three watchdog periods"
expect 0 in_c kill -STOP "$pid"
restarted() { [ "$(show NRestarts)" = 1 ] && [ "$(active)" = active ]; }
wait_until 30 restarted || fail "systemd did not restart a stopped rampart-server (watchdog)"
[ "$(show MainPID)" != "$pid" ] || fail "the watchdog's restart left the same process"
in_c journalctl -u rampart-server.service --no-pager >"$E2E_DIR/journal"
grep -q "Watchdog timeout" "$E2E_DIR/journal" || { cat "$E2E_DIR/journal" >&2; fail "systemd's journal does not name the watchdog"; }
wait_until 30 healthz || fail "the restarted rampart-server does not answer /healthz"
in_c rm -r /run/systemd/system/rampart-server.service.d
expect 0 in_c systemctl daemon-reload

# 5. systemctl reload: SIGHUP (ExecReload); the same process reloads and answers.
pid=$(show MainPID)
expect 0 in_c systemctl reload rampart-server.service
reloaded() { in_c journalctl -u rampart-server.service -o cat --no-pager | grep -q ': info: reloaded: '; }
wait_until 30 reloaded || { in_c journalctl -u rampart-server --no-pager >&2; fail "rampart-server did not log its reload"; }
eq "$(active) $(show MainPID)" "active $pid" "rampart-server after a reload"
wait_until 30 healthz || fail "rampart-server does not answer after a reload"
E2E_CHECKS=$((E2E_CHECKS + 1))

# 6. systemctl stop: SIGTERM, a clean exit.
expect 0 in_c systemctl stop rampart-server.service
eq "$(active) $(show Result) $(show ExecMainStatus)" \
  "inactive success 0" "rampart-server after systemctl stop"

# 7. The device's monitor under systemd: provisioned with the soft root of trust (no TPM here),
# its unit's condition holds, and it starts (Type=notify: ready once it serves its socket). In
# this root the kernel's settings are read-only: its network policy does not start, and says so.
expect 0 in_c rampart-agent provision --state-dir /var/lib/rampart-agent --rot soft
expect 0 in_c systemctl start rampart-monitor.service
eq "$(in_c systemctl is-active rampart-monitor.service || true)" active "rampart-monitor under systemd"
[ -S "$R/var/lib/rampart-agent/monitor.sock" ] || fail "rampart-monitor does not serve its socket"
expect 0 in_c systemctl stop rampart-monitor.service
eq "$(in_c systemctl show -P Result rampart-monitor.service)" success "rampart-monitor after systemctl stop"

# 8. Installed again over itself (an upgrade's path through the maintainer scripts): the users
# and the state stay, and the service runs again.
expect 0 in_c dpkg -i "${in_debs[@]:0:2}"
[ -f "$R$state/master.key" ] || fail "reinstalling lost $state"
eq "$(active)" active "rampart-server after an upgrade"

# 9. Removed: the service stops, the programs go, the configuration and the state stay.
expect 0 in_c dpkg --remove "${OURS[@]}"
[ ! -e "$R/usr/bin/rampart-server" ] || fail "rampart-server is left after dpkg --remove"
[ -f "$R/etc/rampart/server.conf" ] && [ -f "$R$state/master.key" ] ||
  fail "dpkg --remove took the configuration or the state"
eq "$(active)" inactive "rampart-server after dpkg --remove"
# Purged: nothing of ours is left, the provisioned device's state neither. What the overlay holds now is all the root changed for good:
# only dpkg's, apt's and systemd's own records and logs, the system users (Debian keeps them),
# and what booting left (machine-id, resolv.conf, /run, /tmp, /var/tmp) may be there.
# (rampart-tools has no configuration: dpkg --remove left nothing of it to purge.)
expect 1 in_c dpkg-query -W rampart-tools
expect 0 in_c apt-get purge -y "${OURS[@]:0:2}"
in_c rm -rf /root/pkgs
left=$(cd "$T/upper" && find . -mindepth 1 \( -type f -o -type l -o -type c \) |
  grep -vE '^\./(run/|tmp/|var/tmp/|var/lib/dpkg/|var/lib/apt/|var/lib/systemd/|var/log/|var/cache/(debconf|apt)/|etc/(passwd|group|shadow|gshadow)-?$|etc/(\.pwd\.lock|machine-id|resolv\.conf|ld\.so\.cache)$|proc$|dev$)' || true)
[ -z "$left" ] || fail "purge left these behind: $(echo "$left" | tr '\n' ' ')"
E2E_CHECKS=$((E2E_CHECKS + 1))
for d in etc/rampart var/lib/rampart var/lib/rampart-agent; do
  [ ! -e "$R/$d" ] || fail "purge left /$d"
done
eq "$(in_c systemctl show -P LoadState rampart-server.service)" not-found "rampart-server.service after purge"

# 10. Shut down: systemd stops everything and systemd-nspawn exits with it.
# (What `systemctl poweroff` does once logind, which it asks first, is not there: this root has
# no D-Bus.)
in_c systemctl start --job-mode=replace-irreversibly --no-block poweroff.target
down() { ! kill -0 "$nspawn" 2>/dev/null; }
wait_until 30 down || fail "the booted root did not power off"
wait "$nspawn" || fail "systemd-nspawn exited $?: $(tail -5 "$E2E_DIR/console.log")"
nspawn=
echo "e2e.packages: $(($(date +%s) - PKG_T0)) s in all"
done_ok
