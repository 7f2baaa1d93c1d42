#!/usr/bin/env bash
# e2e.packages: the Debian packages (debian/, scripts/package) built from this build directory
# (no second compile: `cmake --build` finds the programs up to date), installed into a fresh
# Debian 12 root, checked (files, modes, users, libraries, `systemd-analyze verify` of the
# installed units), rampart-server started from its unit's ExecStart line in that root and
# answering /healthz over TLS, then removed and purged, leaving nothing of ours behind.
#
# The fresh root is made once with mmdebstrap from the Debian archive (minbase, systemd and the
# packages' Depends) and cached in $RAMPART_TEST_CACHE (default /var/cache/rampart-test), keyed
# by the Depends, so a new dependency makes a new one. Each run works on an overlay of it in a
# tmpfs, in mount, network and pid namespaces of its own: every run starts from the same fresh
# root, and nothing it does reaches the cache or the host. Runs as root.
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
    mmdebstrap --variant=minbase --include="$deps" bookworm "$root" \
      "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
      "deb ${MIRROR%/debian}/debian-security bookworm-security main" >"$CACHE/mmdebstrap.log" 2>&1 ||
      { tail -20 "$CACHE/mmdebstrap.log" >&2; rm -rf "$root"; echo "FAIL: mmdebstrap failed" >&2; exit 1; }
    touch "$root/.rampart-complete"
    echo "fresh root made in $((SECONDS - t1)) s"
  fi
  flock -s 9
  export PKG_ROOT=$root PKG_DEBS="${debs[*]}" PKG_T0=$t0
  # 3. The rest in namespaces of its own: mounts, the loopback interface, processes.
  exec unshare --mount --net --pid --fork --propagation private "$0" inside
fi

# ---- inside the namespaces
: "${RAMPART:=$BUILD_DIR/bin/rampart}"
export RAMPART
# shellcheck source=lib.sh
source "$SRC/tests/e2e/lib.sh"
ip link set lo up

# The overlay lives outside E2E_DIR (lib.sh's cleanup removes that recursively), and is unmounted
# before it: nothing of the host is ever mounted under it.
T=$(mktemp -d /tmp/rampart-pkgroot.XXXXXX)
trap 'umount -R "$T" 2>/dev/null; rmdir "$T" 2>/dev/null; cleanup' EXIT
mount -t tmpfs -o mode=0755 tmpfs "$T"
mkdir "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=$PKG_ROOT,upperdir=$T/upper,workdir=$T/work" "$T/root"
R=$T/root
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for n in null:3 zero:5 full:7 random:8 urandom:9; do mknod -m 666 "$R/dev/${n%:*}" c 1 "${n#*:}"; done
in_root() { chroot "$R" "$@"; }
mkdir "$R/tmp/pkgs"
read -r -a debs <<<"$PKG_DEBS"
cp "${debs[@]}" "$R/tmp/pkgs/"
in_debs=()
for f in "${debs[@]}"; do in_debs+=("/tmp/pkgs/${f##*/}"); done

# Installed, from the archive's Depends only (the root has them, nothing else of ours).
expect 0 in_root dpkg -i "${in_debs[@]}"
for f in usr/bin/rampart usr/bin/rampart-server usr/bin/rampart-symbolize usr/bin/rampart-agent \
  usr/bin/rampart-monitor usr/bin/rampart-unpack; do
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
expect 0 in_root rampart --version
expect 0 in_root rampart-server --version
expect 0 in_root rampart-agent --version
expect 0 in_root rampart-monitor --help
expect 2 in_root rampart-symbolize
err_has "usage: rampart-symbolize"
# The users, system users without a login.
for u in rampart rampart-agent; do
  expect 0 in_root getent passwd "$u"
  uid=$(cut -d: -f3 "$E2E_DIR/out")
  [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "$u is not a system user (uid $uid)"
  eq "$(cut -d: -f7 "$E2E_DIR/out")" /usr/sbin/nologin "$u's shell"
done
eq "$(in_root stat -c '%U:%G %a' /etc/rampart/server.conf)" "root:rampart 640" \
  "server.conf's owner and mode"
eq "$(in_root stat -c '%U:%G %a' /etc/rampart/agent.conf)" "root:root 644" "agent.conf's owner and mode"
# The server is enabled (it starts on installation where systemd runs); the device's units wait
# for the operator (provisioning first).
[ -L "$R/etc/systemd/system/multi-user.target.wants/rampart-server.service" ] ||
  fail "rampart-server.service is not enabled"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/rampart-agent.service" ] ||
  fail "rampart-agent.service is enabled before the device is provisioned"

# The installed units, as systemd reads them in that root (binaries at their paths, users).
units=(/lib/systemd/system/rampart-server.service /lib/systemd/system/rampart-monitor.service
  /lib/systemd/system/rampart-agent.service)
expect 0 systemd-analyze verify --root="$R" "${units[@]}"
[ ! -s "$E2E_DIR/err" ] || { cat "$E2E_DIR/err" >&2; fail "systemd-analyze verify has something to say"; }

# rampart-server from its unit: ExecStart as written, as User= with no capability and no new
# privileges (CapabilityBoundingSet=, NoNewPrivileges=), in the StateDirectory= systemd makes.
unit=$R/lib/systemd/system/rampart-server.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
state=/var/lib/$(sed -n 's/^StateDirectory=//p' "$unit")
conf=$(sed -n 's/.*--config \([^ ]*\).*/\1/p' <<<"$exec_start")
[ -n "$conf" ] && [ -f "$R$conf" ] || fail "ExecStart ($exec_start) names no config file that is installed"
eq "$(sed -n 's/^data-dir *= *//p' "$R$conf")" "$state" "the config's data-dir and the unit's StateDirectory"
listen=$(sed -n 's/^listen *= *//p' "$R$conf")
install -d -m 0700 "$R$state"
in_root chown "$user:$user" "$state"
read -r -a cmd <<<"$exec_start"
ids=$(in_root getent passwd "$user" | cut -d: -f3,4)
(umask 0077 && exec chroot "$R" setpriv --reuid="${ids%:*}" --regid="${ids#*:}" --clear-groups \
  --bounding-set=-all --inh-caps=-all --no-new-privs -- "${cmd[@]}") >"$E2E_DIR/server.log" 2>&1 &
server=$!
E2E_PIDS+=("$server")
healthz() {
  kill -0 "$server" 2>/dev/null || { cat "$E2E_DIR/server.log" >&2; fail "rampart-server exited"; }
  curl -sS --max-time 5 --cacert "$R$state/server-ca.pem" "https://$listen/healthz" \
    -o "$E2E_DIR/body" 2>/dev/null && jq -e '.status == "ok"' "$E2E_DIR/body" >/dev/null
}
wait_until 60 healthz || { cat "$E2E_DIR/server.log" >&2; fail "rampart-server does not answer /healthz on $listen"; }
E2E_CHECKS=$((E2E_CHECKS + 1))
curl -sS --max-time 5 --cacert "$R$state/server-ca.pem" "https://$listen/console/" -o "$E2E_DIR/body" ||
  fail "the installed server does not serve its console"
grep -q "<html" "$E2E_DIR/body" || fail "the installed server's /console/ is not its page: $(head -c 300 "$E2E_DIR/body")"
eq "$(in_root stat -c '%U %a' "$state" "$state/admin.token" "$state/master.key" | tr '\n' ' ')" \
  "$user 700 $user 600 $user 600 " "the state directory's owner and modes"
kill -TERM "$server"
wait "$server" || fail "rampart-server did not stop cleanly on SIGTERM"

# Installed again over itself (an upgrade's path through the maintainer scripts): the users
# and the state stay.
expect 0 in_root dpkg -i "${in_debs[@]:0:2}"
[ -f "$R$state/master.key" ] || fail "reinstalling lost $state"

# Removed: the configuration and the state stay, the programs go.
expect 0 in_root dpkg --remove "${OURS[@]}"
[ ! -e "$R/usr/bin/rampart-server" ] || fail "rampart-server is left after dpkg --remove"
[ -f "$R/etc/rampart/server.conf" ] && [ -f "$R$state/master.key" ] ||
  fail "dpkg --remove took the configuration or the state"
# Purged: nothing of ours is left. What the overlay holds now is all the root changed for good:
# only dpkg's own records and logs, the system users (Debian keeps them) and adduser's lock
# in /run (a tmpfs on a running system) may be there.
mkdir -p "$R/var/lib/rampart-agent" && touch "$R/var/lib/rampart-agent/rot" # a provisioned device
expect 0 in_root dpkg --purge "${OURS[@]}"
rm -rf "$R/tmp/pkgs"
left=$(cd "$T/upper" && find . -mindepth 1 \( -type f -o -type l -o -type c \) |
  grep -vE '^\./(run/adduser$|var/lib/dpkg/|var/log/|var/cache/debconf/|etc/(passwd|group|shadow|gshadow)-?$|etc/\.pwd\.lock$|proc$|dev$)' || true)
[ -z "$left" ] || fail "purge left these behind: $(echo "$left" | tr '\n' ' ')"
E2E_CHECKS=$((E2E_CHECKS + 1))
for d in etc/rampart var/lib/rampart var/lib/rampart-agent; do
  [ ! -e "$R/$d" ] || fail "purge left /$d"
done
echo "e2e.packages: $(($(date +%s) - PKG_T0)) s in all"
done_ok
