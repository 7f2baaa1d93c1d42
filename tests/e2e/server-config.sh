#!/usr/bin/env bash
# End to end, rampart-server's config file, SIGHUP reload and service manager notifications:
# - flags override the file; refusals name file:line and the reason (every key, derived from
#   --help, and every refusal: unit.server_config);
# - SIGHUP: a connection open before keeps working over its certificate, a new one gets the new
#   certificate; an unusable certificate or a bad config file is refused and changes nothing;
#   what needs a restart is said so; a new idle-timeout reaches the connections made after the
#   reload; without --config, the default file gone at a reload is refused too (the running
#   configuration stays);
# - sd_notify (NOTIFY_SOCKET, a socket this test reads): READY=1, WATCHDOG=1 (WATCHDOG_USEC),
#   RELOADING=1 then READY=1 around a reload, STOPPING=1; and log lines with the journal's
#   priority prefix when stderr is the journal (JOURNAL_STREAM).
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR
srvbin=$RAMPART_SERVER
here=$(dirname "$0")

# --- refusals, as the binary says them (every key and refusal: unit.server_config) --------------
printf 'data-dir = %s\n\ncolour = blue\n' "$d/unused" >"$d/r.conf"
expect 2 timeout 20 "$srvbin" --config "$d/r.conf"; err_has "r.conf:3: colour: unknown key"
expect 2 timeout 20 "$srvbin" --config "$d/none.conf"; err_has "none.conf: no such file"
expect 2 timeout 20 "$srvbin" --threads 0 --data-dir "$d/unused"; err_has "--threads 0: must be 1 to 64"
[ ! -e "$d/unused" ] || fail "a refused setting made the data directory"

# --- a data directory others may write is refused (review r15ops L2) -----------------------------------
mkdir -m 777 "$d/open"; chmod 777 "$d/open"
expect 1 timeout 20 "$srvbin" --data-dir "$d/open" --listen 127.0.0.1:0
err_has "$d/open is mode 0777: group or others can write to it"
[ -z "$(ls -A "$d/open")" ] || fail "a refused data directory was written: $(ls -A "$d/open")"

# --- the database password (review r15ops M4): libpq's keyword form is PostgreSQL (no SQLite file
# named with it), a password on the command line or in a file others read is warned of, and a
# libpq message that quotes the target has it scrubbed --------------------------------------------
kw="host=127.0.0.1 port=1 user=rampart password=S3cretPw dbname=rampart"
(cd "$d" && expect 1 timeout 20 "$srvbin" --data-dir "$d/pw" --listen 127.0.0.1:0 --database "$kw" \
  --database-wait 0)
err_has "--database holds a password, which every local user can read"
err_has "database: PostgreSQL database rampart on 127.0.0.1:1 as rampart"
! grep -q S3cret "$d/err" || fail "the password reached the log: $(grep S3cret "$d/err")"
[ -z "$(find "$d" -maxdepth 1 -name 'host=*')" ] || fail "the keyword form was taken for a SQLite file"
expect 1 timeout 20 "$srvbin" --data-dir "$d/pw" --listen 127.0.0.1:0 --database-wait 0 \
  --database "postgresql://rampart:S3c%zzPw@127.0.0.1:1/rampart"
err_has "cannot connect: invalid percent-encoded token: \"***\""
! grep -q S3c "$d/err" || fail "the password reached the log: $(grep S3c "$d/err")"
printf 'data-dir = %s\ndatabase = postgresql://rampart:S3cretPw@127.0.0.1:1/rampart\n' "$d/pw" >"$d/pw.conf"
chmod 644 "$d/pw.conf"
expect 1 timeout 20 "$srvbin" --config "$d/pw.conf" --listen 127.0.0.1:0 --database-wait 0
err_has "$d/pw.conf holds the database password, and users other than the service's can read it (mode 0644)"
chmod 600 "$d/pw.conf"
expect 1 timeout 20 "$srvbin" --config "$d/pw.conf" --listen 127.0.0.1:0 --database-wait 0
! grep -q "holds the database password\|holds a password" "$d/err" || fail "a warning for a 0600 file: $(cat "$d/err")"
err_has "cannot connect"
expect 2 timeout 20 "$srvbin" --data-dir "$d/pw" --database "postgresql://u:S3cretPw@h/x?$(printf 'a%.0s' {1..1100})"
err_has "--database PostgreSQL (a target libpq cannot parse): is too long"
! grep -q S3c "$d/err" || fail "a refused --database was echoed with its password"

# --- flags override the file; the file's own settings apply ------------------------------------------
cat >"$d/server.conf" <<CONF
# what the flags below override
data-dir = $d/wrong
listen = 127.0.0.1:1
port-file = $d/wrong.port
[server]
verbose = true
threads = 2
CONF
# The service manager's side: a notification socket, a watchdog, stderr as "the journal".
python3 "$here/notify-listen.py" "$d/notify.sock" "$d/notes" &
E2E_PIDS+=("$!")
wait_until 30 test -S "$d/notify.sock" || fail "the notification socket did not appear"
: >"$d/srv.log"
export NOTIFY_SOCKET=$d/notify.sock WATCHDOG_USEC=1000000
JOURNAL_STREAM=$(stat -c '%d:%i' "$d/srv.log")
export JOURNAL_STREAM
start_server "$d/srv" --config "$d/server.conf"
unset NOTIFY_SOCKET WATCHDOG_USEC JOURNAL_STREAM
[ ! -e "$d/wrong" ] && [ ! -e "$d/wrong.port" ] || fail "the file's data-dir or port-file won over the flags"
grep -q '^<7>rampart-server: debug: settings from' "$d/srv.log" ||
  fail "verbose = true from the file, with journal priorities: no '<7>...debug' line: $(head -5 "$d/srv.log")"
grep -q '^<6>rampart-server: info: serving https://127.0.0.1:.* with 2 workers' "$d/srv.log" ||
  fail "threads = 2 from the file: $(grep serving "$d/srv.log")"
E2E_CHECKS=$((E2E_CHECKS + 3))

# --- readiness and the watchdog ------------------------------------------------------------------------
wait_until 30 grep -q '^READY=1 | STATUS=serving https://' "$d/notes" || fail "no READY=1: $(cat "$d/notes")"
# WATCHDOG_USEC=1 s: a ping every half second; three prove they repeat.
watchdogs() { [ "$(grep -c '^WATCHDOG=1$' "$d/notes")" -ge 3 ]; }
wait_until 30 watchdogs || fail "no repeated WATCHDOG=1: $(cat "$d/notes")"
E2E_CHECKS=$((E2E_CHECKS + 2))

# --- SIGHUP: the TLS identity, connections kept ----------------------------------------------------------
python3 "$here/reload-client.py" "$(cat "$d/srv.port")" "$d/srv" "$SERVER_PID" "$d/srv.log" >"$d/client" 2>&1 ||
  { cat "$d/client" "$d/srv.log" >&2; fail "reload-client.py"; }
cat "$d/client"
E2E_CHECKS=$((E2E_CHECKS + 3))
# Around each reload: RELOADING=1, then READY=1 again.
grep -A1 '^RELOADING=1' "$d/notes" | grep -q '^READY=1' || fail "no READY=1 after RELOADING=1: $(cat "$d/notes")"
E2E_CHECKS=$((E2E_CHECKS + 1))

# --- SIGHUP: the config file ------------------------------------------------------------------------------
# Put the certificate right again (the last reload was refused for it), then: a setting a running
# service takes, one it cannot (said so), and a bad file (refused, nothing changes).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/srv/server.key" \
  -out "$d/srv/server.pem" -days 2 -subj /CN=again 2>/dev/null
sed -i 's/^verbose = true/verbose = false\nrate-limit = 7\nidle-timeout = 2/; s/^threads = 2/threads = 3/' "$d/server.conf"
reloaded() { [ "$(grep -c "reloaded: $d/server.conf" "$d/srv.log")" -ge "$1" ]; }
n=$(grep -c "reloaded: " "$d/srv.log" || true)
kill -HUP "$SERVER_PID"
wait_until 30 reloaded $((n + 1)) || fail "no reload: $(tail -5 "$d/srv.log")"
grep -q "reloaded: $d/server.conf: 3 setting(s) changed" "$d/srv.log" || fail "$(tail -3 "$d/srv.log")"
grep -q "reload: threads changed, which needs a restart" "$d/srv.log" || fail "threads: $(tail -3 "$d/srv.log")"
E2E_CHECKS=$((E2E_CHECKS + 3))
# idle-timeout = 2 took: a new connection that sends nothing is closed about 2 s in (the default,
# 30 s, would outlast the client's 20; the request deadline is 60 s).
python3 "$here/conn-client.py" silent "$(cat "$d/srv.port")" "$d/srv/server-ca.pem" 20 >"$d/idle" 2>&1 ||
  fail "the silent client: $(cat "$d/idle")"
grep -q '^cut after [1-9]' "$d/idle" || fail "a connection idle past the reloaded idle-timeout: $(cat "$d/idle")"
E2E_CHECKS=$((E2E_CHECKS + 1))
# verbose = false took: no debug line after the reload
n=$(wc -l <"$d/srv.log")
printf 'rate-limit = 7\nbogus = 1\n' >>"$d/server.conf"
kill -HUP "$SERVER_PID"
wait_until 30 grep -q "reload refused, nothing changed: $d/server.conf:[0-9]*: rate-limit: given twice" "$d/srv.log" ||
  fail "a bad config file at reload: $(tail -3 "$d/srv.log")"
tail -n +"$((n + 1))" "$d/srv.log" | grep -q 'debug:' && fail "debug lines after verbose = false"
# (still serving: -k, the identity is the test's self-signed one now)
eq "$(curl -sk -o /dev/null -w '%{http_code}' "$SERVER_URL/healthz")" 200 "served after a refused reload"
E2E_CHECKS=$((E2E_CHECKS + 1))

# --- stopping --------------------------------------------------------------------------------------------
kill -TERM "$SERVER_PID"
wait_until 30 grep -q '^STOPPING=1' "$d/notes" || fail "no STOPPING=1: $(cat "$d/notes")"
E2E_CHECKS=$((E2E_CHECKS + 1))

# --- SIGHUP without --config: the default file gone ---------------------------------------------------
# Started without --config, the service reads /etc/rampart/server.conf. Deleted before a reload, it
# is refused like a file that no longer parses: the running configuration stays (verbose, here),
# with an error saying so; it does not fall back to the defaults. Put back, it reloads. Run in a
# private mount namespace where /etc is an overlay and /etc/rampart this test's directory (as root:
# nothing of the host's /etc is touched).
mkdir -p "$d/etc-up/rampart" "$d/etc-work" "$d/etc-rampart"
printf 'verbose = true\n' >"$d/etc-rampart/server.conf"
unshare --mount --propagation private sh -c 'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc &&
  mount --bind "$3" /etc/rampart && shift 3 && exec "$@"' sh "$d/etc-up" "$d/etc-work" "$d/etc-rampart" \
  "$srvbin" --data-dir "$d/def" --listen 127.0.0.1:0 --port-file "$d/def.port" >"$d/def.log" 2>&1 &
def_pid=$!
E2E_PIDS+=("$def_pid")
wait_until 60 test -s "$d/def.port" || fail "the server without --config did not start: $(cat "$d/def.log")"
grep -q "debug: settings from /etc/rampart/server.conf" "$d/def.log" ||
  fail "the default config file was not read: $(head -5 "$d/def.log")"
rm "$d/etc-rampart/server.conf"
kill -HUP "$def_pid"
wait_until 30 grep -q "reload refused, nothing changed: /etc/rampart/server.conf: no such file (the service started with it" "$d/def.log" ||
  fail "a reload without the default file it started with: $(tail -3 "$d/def.log")"
! grep -q "reloaded: " "$d/def.log" || fail "reloaded without the default file: $(grep reloaded "$d/def.log")"
E2E_CHECKS=$((E2E_CHECKS + 3))
printf 'verbose = true\n' >"$d/etc-rampart/server.conf"
kill -HUP "$def_pid"
wait_until 30 grep -q "reloaded: /etc/rampart/server.conf: 0 setting(s) changed" "$d/def.log" ||
  fail "a reload with the default file put back: $(tail -3 "$d/def.log")"
E2E_CHECKS=$((E2E_CHECKS + 1))
done_ok
