#!/usr/bin/env bash
# End to end, liveness and readiness: /healthz answers 200 while the process serves; /readyz only
# while it can write. In a private mount namespace (unshare -m, as root), the data directory is
# on a small tmpfs of its own, filled to ENOSPC and then freed; then on an ext4 file system that
# the kernel remounts read-only after an error. /readyz must follow each change, /healthz stay
# 200 throughout.
if [ -z "${RP_READINESS_NS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "FAIL: readiness.sh mounts file systems: run it as root" >&2; exit 1; }
  RP_READINESS_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR
mnt=$d/mnt
mkdir "$mnt"
mount -t tmpfs -o size=32m,mode=0700 rampart-readiness "$mnt"
mounts=("$mnt")
# The server goes first (lib.sh's cleanup), then the file system.
trap 'cleanup_mount' EXIT
cleanup_mount() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$d"
}

# wait_status PATH CODE: poll until PATH answers CODE (the check runs at most once a second, so
# a change shows within about a second; the bound is for a loaded machine).
wait_status() {
  local end=$((SECONDS + 60))
  while :; do
    http GET "$1" -
    [ "$status" = "$2" ] && break
    [ "$SECONDS" -lt "$end" ] || fail "$1 did not answer $2 within 60 s (last: $status $(cat "$d/body"))"
    sleep 0.1
  done
  E2E_CHECKS=$((E2E_CHECKS + 1))
}

# The data directory on the tmpfs; its log and port file off it (a full or read-only disk must
# not silence the server's log).
mkdir -m 0700 "$mnt/srv"
ln -s "$mnt/srv" "$d/srv"
start_server "$d/srv"
http GET /readyz -; is_status 200; body_has '.status == "ready"'
http GET /healthz -; is_status 200

# A full disk: nothing more can be written, though the process serves. As on a service that has
# been busy a while, the database has free pages and a write-ahead log that has been checkpointed:
# SQLite reuses both, and its writes still succeed on the full disk - only a new file's block
# shows that nothing more can be written.
sqlite3 "$d/srv/rampart.db" "PRAGMA busy_timeout = 10000; CREATE TABLE scratch (x);
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
  INSERT INTO scratch SELECT randomblob(3000) FROM n; DROP TABLE scratch;
  PRAGMA wal_checkpoint(RESTART);" >/dev/null
dd if=/dev/zero of="$mnt/fill" bs=64k 2>/dev/null || true
[ "$(df --output=avail "$mnt" | tail -n1 | tr -d ' ')" -lt 64 ] || fail "the file system is not full"
wait_status /readyz 503
body_has '.error == "not_ready" and (.message | contains("No space left on device"))'
http GET /healthz -; is_status 200
rm "$mnt/fill"
wait_status /readyz 200

# What it said along the way, once a change.
grep -q "not ready: cannot write a file in the data directory: No space left" "$d/srv.log" || fail "no warning in the log: $(cat "$d/srv.log")"
grep -q "ready: the data directory can be written" "$d/srv.log" || fail "no recovery in the log"

# Something else under the probe's name - a FIFO would block the write check, and the worker
# running it, for good: refused at once, not ready, and the worker goes on serving.
mkfifo -m 0600 "$d/srv/ready.probe"
wait_status /readyz 503
body_has '.message | contains("is not a regular file")'
for i in 1 2 3 4; do http GET /healthz -; is_status 200; done
rm "$d/srv/ready.probe"
wait_status /readyz 200
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

# A data directory the kernel turns read-only under the running service: ext4 mounted with
# errors=remount-ro, and an error (ext4's own trigger_fs_error). Writes through files already open
# fail too; it stays so until an fsck and a new mount, so only the way down is checked here.
truncate -s 32M "$d/ext4.img"
mkfs.ext4 -q -F -m 0 "$d/ext4.img"
mkdir "$d/ext4"
mount -o loop,errors=remount-ro "$d/ext4.img" "$d/ext4"
mounts+=("$d/ext4")
dev=$(basename "$(findmnt -no SOURCE "$d/ext4")")
[ -w "/sys/fs/ext4/$dev/trigger_fs_error" ] || fail "no /sys/fs/ext4/$dev/trigger_fs_error"
mkdir -m 0700 "$d/ext4/srv"
ln -s "$d/ext4/srv" "$d/ro"
start_server "$d/ro"
http GET /readyz -; is_status 200
echo 1 >"/sys/fs/ext4/$dev/trigger_fs_error"
touch "$d/ext4/probe" 2>/dev/null && fail "the file system is still writable"
wait_status /readyz 503
body_has '.error == "not_ready" and (.message | test("Read-only file system|Input/output error"))'
http GET /healthz -; is_status 200

done_ok
