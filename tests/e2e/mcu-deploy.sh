#!/usr/bin/env bash
# End to end: MCU firmware deployed through the update path (docs/mcu.md, "Deploying firmware").
# A Linux device (rampart-agent) sits beside the emulated microcontroller, its component
# "firmware" attached to the board through scripts/mcu-run (the relay). The operator uploads
# firmware images and deploys them to the device's group; the agent downloads and checks each as
# any component, and hands it to the board, whose boot stage verifies it with its own key and
# counter, swaps it in on trial, and confirms it at the next boot (the counter rises only then).
# The deployment shows what the board runs, or the boot stage's reason for refusing an image.
# With MONITOR set (e2e.mcu_deploy_monitor; root, the monitor's lock), the same deployments run on
# a device under rampart-monitor, the agent as an unprivileged user: the monitor verifies the
# image and puts it on trial, hands the trial slot to the agent, whose relay runner relays it to
# the board, and ends the install on the agent's verdict (MCU_VERDICT), "installed" only with the
# board's evidence over the monitor's nonce, checked with the board's key pinned at attach; then a
# raw client of the protocol, as a dead or lying agent, has its verdicts refused (a forged detail
# too; a forged "installed" without the board's evidence, with its evidence of another image, over
# an earlier nonce: the floor stays), status shows the handed trial, and its silence times out, and a handed trial cut by the monitor's kill -9 is rolled back at its next start; the
# relay runner: a dead one makes run exit, one dies with its agent, a bad copy ends the trial at
# once, run stopped as systemd stops the shipped unit (KillMode=mixed: the rest of the unit
# SIGKILLed the moment run exits) while it relays finishes the relay and gives its verdict
# before it exits, nothing cut; and two components' handed trials each keep their own deadline. Both modes: one relay per
# board (scripts/mcu-run waits for the board's lock); and run, given a 2 s watchdog, goes on
# feeding it while its relay waits for the board (review r13 M4).
. "$(dirname "$0")/lib.sh"
: "${MCU_BUILD:?set MCU_BUILD to the microcontroller build}" "${MCU_RUN:?set MCU_RUN to scripts/mcu-run}"
: "${MCU_KEYS:?set MCU_KEYS to mcu/keys}" "${RAMPART_SERVER:?set RAMPART_SERVER}"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
AG=("$AGENT") # the agent as the device runs it (under the monitor: its own user)
if [ -n "${MONITOR-}" ]; then
  : "${MONITOR_CALL:?set MONITOR_CALL}"
  [ "$(id -u)" = 0 ] || fail "the monitor runs as root"
  U=daemon
  AS_U=(setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups)
  AG=("${AS_U[@]}" "$AGENT")
  chmod 711 "$d"
fi
[ -f "$MCU_BUILD/boot.elf" ] && [ -f "$MCU_BUILD/app.bin" ] ||
  fail "no microcontroller build in $MCU_BUILD (arm-none-eabi-gcc and Mbed TLS's source: scripts/install-deps)"
export MCU_BUILD
flash=$d/board.bin
verdict() { grep -m1 '^boot: \(slot0 version\|refused\)' "$d/out"; }
stored() { sed -n 's/^boot: .*security counter \([0-9]*\)$/\1/p' "$d/err" | tail -1; }

# --- the service: a tenant whose images are signed by the MCU's key or by its release key ---------
start_server "$d/srv"
tenant_with_root "$d/root.json" # the release key, $d/img.key: one the board does not trust
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$MCU_KEYS/dev-p256.pub.pem" --name mcu
expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/root.key" --out "$d/root.json"
fw() { # fw NAME KEY VERSION COUNTER: sign and upload; the image's ID in $d/NAME.id
  expect 0 "$RAMPART" image sign --type firmware --key "$2" --version "$3" --security-counter "$4" \
    "$MCU_BUILD/app.bin" "$d/$1.img"
  expect 0 "$RAMPART" image upload --tenant "$acme" --component firmware "$d/$1.img"
  cp "$d/out" "$d/$1.id"
}
fw v1 "$MCU_KEYS/dev-p256.pem" 1.0.0 2
fw old "$MCU_KEYS/dev-p256.pem" 1.5.0 1
fw v2 "$MCU_KEYS/dev-p256.pem" 2.0.0 3
fw other "$d/img.key" 3.0.0 4

# --- the board, as the factory leaves it: v1 ------------------------------------------------------
expect 0 "$MCU_RUN" --flash "$flash" --slot0 "$d/v1.img"
eq "$(verdict)" "boot: slot0 version 1.0.0+0 counter 2: booting" "the factory's image"
# The board's attestation key, as its boot stage prints it: pinned when the component is attached.
board_key=$(sed -n 's/^boot: attestation key \([0-9a-f]*\)$/\1/p' "$d/err")
[ -n "$board_key" ] || fail "no attestation key printed: $(cat "$d/err")"
[ -z "${MONITOR-}" ] || chown "$U" "$flash" # the relay runs as the agent's user

# --- the Linux device beside it ---------------------------------------------------------------------
expect 0 "$RAMPART" product create --tenant "$acme" Sensor
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft; dev=$(tail -n1 "$d/out")
expect 0 "$AGENT" trust --state-dir "$d/dev" --update-root "$d/root.json"
expect 2 "$AGENT" mcu attach --state-dir "$d/dev" --component firmware -- scripts/mcu-run
err_has "absolute path"
expect 2 "$AGENT" mcu attach --state-dir "$d/dev" --component firmware --attestation-key 3059zz -- \
  /bin/true
err_has "attestation-key is the board's key in hex"
expect 0 "$AGENT" mcu attach --state-dir "$d/dev" --component firmware --attestation-key "$board_key" -- \
  /usr/bin/env "MCU_BUILD=$MCU_BUILD" "$MCU_RUN" --flash "$flash" --timeout 30
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev"
expect 0 "$RAMPART" device assign --tenant "$acme" --product Sensor --group "Field Test" "$dev"
ca=$SERVER_CA
if [ -n "${MONITOR-}" ]; then
  eq "$(stat -c '%a' "$d/dev/mcu" "$d/dev/mcu/firmware.json" "$d/dev/mcu/firmware.key" |
    tr '\n' ' ')" "755 644 644 " "S/mcu: the relay and the board's key, root's, readable by all"
  cp "$SERVER_CA" "$d/ca.pem" && chmod 644 "$d/ca.pem" && ca=$d/ca.pem
  start_monitor() {
    "$MONITOR" --state-dir "$d/dev" --agent-user "$U" >>"$d/monitor.log" 2>&1 &
    E2E_PIDS+=("$!")
    serving() { "${AG[@]}" id --state-dir "$d/dev" >/dev/null 2>&1; }
    wait_until 60 serving || { cat "$d/monitor.log" >&2; fail "the monitor did not serve"; }
  }
  start_monitor
fi
expect 0 "${AG[@]}" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$ca"
deploy() { # deploy NAME: a deployment of that image to Field Test; its ID in $dep
  expect 0 "$RAMPART" deployment create --tenant "$acme" --product Sensor --group "Field Test" \
    "$(cat "$d/$1.id")"
  dep=$(cat "$d/out")
}
shown() { # shown JQ: the deployment $dep, as the service shows it, satisfies JQ
  expect 0 "$RAMPART" deployment show --tenant "$acme" "$dep" --output json
  jq -e "$1" "$d/out" >/dev/null || fail "deployment $dep: $1: $(cat "$d/out")"
}
fw_status() { # the agent's record of the component, as JSON
  expect 0 "${AG[@]}" status --state-dir "$d/dev" --output json
  jq -c '.components[] | select(.name == "firmware")' "$d/out"
}

# --- an image below the board's counter: the agent has no floor yet, the boot stage refuses it ----
deploy old
expect 1 "${AG[@]}" check-now --state-dir "$d/dev"
out_has "firmware: refused: the MCU's boot stage refused it: rollback: security counter 1 is below the device's 2; the MCU runs 1.0.0+0 (boot: slot0 version 1.0.0+0 counter 2: booting)"
shown '.states.refused == 1 and .states.installed == 0 and
  (.devices[0].detail | contains("refused it: rollback: security counter 1 is below"))'

# --- v2: handed over, swapped in on trial, confirmed; the counter rises after the confirmation ----
deploy v2
expect 0 "${AG[@]}" check-now --state-dir "$d/dev"
out_has "firmware: installed: confirmed on the MCU, its security counter now 3; the MCU runs 2.0.0+0 (boot: slot0 version 2.0.0+0 counter 3: booting)"
shown '.states.installed == 1 and .progress.installed == 1 and
  (.devices[0].detail | contains("the MCU runs 2.0.0+0 (boot: slot0 version 2.0.0+0 counter 3: booting)"))'
fw_status >"$d/fw.json"
counter3='(.security_counter // .security_counter_floor) == 3' # the agent's, or the monitor's floor
jq -e ".version == \"2.0.0+0\" and $counter3 and .last_update.result == \"installed\"" \
  "$d/fw.json" >/dev/null || fail "the agent's record: $(cat "$d/fw.json")"
expect 0 "$MCU_RUN" --flash "$flash"
eq "$(verdict)" "boot: slot0 version 2.0.0+0 counter 3: booting" "the board runs v2"
eq "$(stored)" 3 "the board's counter after the confirmation"
# Running already: nothing is handed over again.
expect 0 "${AG[@]}" check-now --state-dir "$d/dev"
out_has "update check: 0 installed, 1 up to date"

# --- an image signed by a key the tenant trusts and the board does not: refused, v2 still runs ---
deploy other
expect 1 "${AG[@]}" check-now --state-dir "$d/dev"
out_has "firmware: refused: the MCU's boot stage refused it: not signed by a trusted key; the MCU runs 2.0.0+0 (boot: slot0 version 2.0.0+0 counter 3: booting)"
shown '.states.refused == 1 and .states.installed == 0 and
  (.devices[0].detail | contains("refused it: not signed by a trusted key; the MCU runs 2.0.0+0"))'
fw_status >"$d/fw.json"
jq -e ".version == \"2.0.0+0\" and $counter3 and .last_update.result == \"refused\" and
  (.last_update.detail | contains(\"not signed by a trusted key\"))" "$d/fw.json" >/dev/null ||
  fail "the agent's record: $(cat "$d/fw.json")"
expect 0 "$MCU_RUN" --flash "$flash"
eq "$(verdict)" "boot: slot0 version 2.0.0+0 counter 3: booting" "the board still runs v2"
eq "$(stored)" 3 "the board's counter after the refusal"
# One relay per board: a run waits while another holds the board's lock (FLASH.lock).
exec 8>>"$flash.lock"
flock 8 # held, as another relay would
"$MCU_RUN" --flash "$flash" >"$d/locked.out" 2>&1 8>&- &
held=$!
waiting() { pgrep -P "$held" -x flock >/dev/null; }
wait_until 30 waiting || fail "mcu-run did not wait for the board's lock: $(cat "$d/locked.out")"
! pgrep -f "qemu-system-arm.*$flash" >/dev/null || fail "the emulator ran while the board was locked"
exec 8>&-
wait "$held" || fail "mcu-run after the lock: $(cat "$d/locked.out")"

# --- run's watchdog while it relays (review r13 M4) -------------------------------------------------
# run is given a notification socket and a 2 s watchdog (WATCHDOG_USEC), as systemd does with the
# unit's WatchdogSec; its pings (WATCHDOG=1, at half of it) must go on while a relay waits for the
# board (the test holds the board's lock), not stop until the relay ends: systemd would abort run
# and kill the rest of the unit, the relay mid-flash.
eq "$(sed -n 's/^WatchdogSec=//p' "$(dirname "$0")/../../dist/systemd/rampart-agent.service")" 60s \
  "the agent unit's watchdog (a relay may take longer)"
watchdog_listen
board_waited() { # the relay's mcu-run waits for the board's lock (its flock, a child of mcu-run)
  local p
  for p in $(pgrep -x flock); do
    tr '\0' ' ' <"/proc/$(ps -o ppid= -p "$p" | tr -d ' ')/cmdline" 2>/dev/null | grep -qF -- "$flash" &&
      return 0
  done
  return 1
}
fed_while_relaying() { # the relay waits for the board: three more pings come meanwhile
  watchdog_fed "run's relay waited for the board" "$d/run.log"
  board_waited || fail "the relay ended while the board was held: $(cat "$d/run.log")"
}
if [ -z "${MONITOR-}" ]; then
  # Single-process mode: run relays itself (rp_mcu_install: its boot's wait).
  fw v3 "$MCU_KEYS/dev-p256.pem" 3.0.0 4
  deploy v3
  exec 8>>"$flash.lock"
  flock 8
  "${WATCHDOG[@]}" "$AGENT" run --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$ca" \
    --start-jitter 0 >"$d/run.log" 2>&1 8>&- &
  ag=$!
  E2E_PIDS+=("$ag")
  wait_until 120 board_waited || fail "run did not relay: $(cat "$d/run.log")"
  fed_while_relaying
  exec 8>&-
  installed() { grep -q "update check: 1 installed" "$d/run.log"; }
  wait_until 60 installed || fail "run: $(cat "$d/run.log")"
  kill -TERM "$ag"
  wait "$ag" || fail "run did not stop cleanly: $(cat "$d/run.log")"
  done_ok
  exit 0
fi

# --- under the monitor: a dead or lying agent (a raw client, the agent's user) ---------------------
call() { "${AS_U[@]}" "$MONITOR_CALL" "$d/dev/monitor.sock" "$@"; }
# INSTALL answers handed: the image verified (the targets name it) and on trial, its trial slot as
# a read-only descriptor and its digest in the detail; nothing is confirmed without a verdict.
expect 0 call install firmware "$d/other.img" 600
handed() { # the handed answer: the image's digest and the monitor's nonce
  digest=$(sed -n 's/^handed: \([0-9a-f]\{64\}\) [0-9a-f]\{64\}$/\1/p' "$d/out")
  nonce=$(sed -n 's/^handed: [0-9a-f]\{64\} \([0-9a-f]\{64\}\)$/\1/p' "$d/out")
  [ -n "$digest" ] && [ -n "$nonce" ] || fail "the handed answer: $(cat "$d/out")"
}
handed
# status shows the trial waiting for its verdict: its slot, digest and deadline; the last update's
# version and time as without the monitor.
fw_status >"$d/fw.json"
jq -e --arg d "$digest" --argjson now "$(date +%s)" '.trial_slot != null and
  .handed.digest == $d and .handed.deadline > $now and .handed.deadline <= $now + 600 and
  .last_update.version == "3.0.0+0" and .last_update.at > 0' "$d/fw.json" >/dev/null ||
  fail "status of a handed trial: $(cat "$d/fw.json")"
expect 0 "${AG[@]}" status --state-dir "$d/dev"
out_has "handed to the MCU's relay: $digest, its verdict due by"
expect 1 call mcu-verdict firmware "$(printf '%064d' 0)" installed "lies"
out_has "not the image on trial for an MCU" # another digest
expect 1 call mcu-verdict app "$digest" installed "lies"
out_has "app: not the image on trial for an MCU" # not attached
expect 1 call mcu-verdict firmware "$digest" unchanged "lies"
out_has "error 22: request refused" # no outcome that ends an install: malformed
# A detail with control characters (a newline that would forge a line in root's log, an escape):
# malformed, refused by the protocol's decoder.
expect 1 call mcu-verdict firmware "$digest" refused "$(printf 'ok\nrampart-monitor: forged\033[2J')"
out_has "error 22: request refused"
expect 0 call mcu-verdict firmware "$digest" rolled_back "the board reverted it"
out_has "rolled_back: the board reverted it"
expect 1 call mcu-verdict firmware "$digest" installed "again"
out_has "not the image on trial for an MCU" # ended already
fw_status >"$d/fw.json"
jq -e ".version == \"2.0.0+0\" and $counter3 and .last_update.result == \"rolled_back\" and
  .trial_slot == null and .handed == null" \
  "$d/fw.json" >/dev/null || fail "after the verdict: $(cat "$d/fw.json")"
# A forged "installed" (review r1, F1: an image the board refused, its key the tenant's and not the
# board's): without the board's evidence it is refused, the trial rolled back, the floor stays.
expect 0 call install firmware "$d/other.img" 600
handed
expect 1 call mcu-verdict firmware "$digest" installed "forged"
out_has "installed, said without proof: no evidence from the board"
# The board's own evidence over the monitor's nonce, genuine, but of what it runs (v2): refused.
expect 0 call install firmware "$d/other.img" 600
handed
expect 0 "$MCU_RUN" --flash "$flash" --nonce "$nonce"
evidence=$(sed -n 's/^app: evidence \([0-9a-f]*\)$/\1/p' "$d/out")
[ -n "$evidence" ] || fail "no evidence from the board: $(cat "$d/out")"
expect 1 call mcu-verdict firmware "$digest" installed "forged" "$evidence"
out_has "installed, said without proof: the board runs another image (its evidence says firmware 2.0.0+0)"
fw_status >"$d/fw.json"
jq -e ".version == \"2.0.0+0\" and $counter3 and .last_update.result == \"rolled_back\" and
  (.last_update.detail | contains(\"said without proof\"))" "$d/fw.json" >/dev/null ||
  fail "after a forged verdict: $(cat "$d/fw.json")"
# Evidence over an earlier trial's nonce: refused too.
expect 0 call install firmware "$d/other.img" 600
handed
expect 1 call mcu-verdict firmware "$digest" installed "replayed" "$evidence"
out_has "installed, said without proof: the board's evidence is not over the nonce handed with the trial"
# A dead agent: no verdict by INSTALL's health_seconds (2 s here): the trial is rolled back.
expect 0 call install firmware "$d/other.img" 2
no_verdict() {
  fw_status >"$d/fw.json"
  jq -e '.last_update.result == "rolled_back" and (.last_update.detail | contains("no verdict"))' \
    "$d/fw.json" >/dev/null
}
wait_until 30 no_verdict || fail "no verdict, yet: $(cat "$d/fw.json")"
jq -e ".version == \"2.0.0+0\" and $counter3" "$d/fw.json" >/dev/null ||
  fail "after the deadline: $(cat "$d/fw.json")"
expect 1 call mcu-verdict firmware "$digest" installed "too late"
out_has "not the image on trial for an MCU"
# The monitor killed (-9) while the firmware is handed over: its next start rolls the trial back,
# and the verdict that comes after is refused.
expect 0 call install firmware "$d/other.img" 600
mon=$(head -n1 "$d/dev/monitor.lock")
kill -9 "$mon"
gone() { ! kill -0 "$mon" 2>/dev/null; }
wait_until 30 gone || fail "the monitor outlived kill -9"
start_monitor
fw_status >"$d/fw.json"
jq -e ".version == \"2.0.0+0\" and $counter3 and .last_update.result == \"rolled_back\" and
  (.last_update.detail | contains(\"restarted\"))" "$d/fw.json" >/dev/null ||
  fail "after the monitor's restart: $(cat "$d/fw.json")"
expect 1 call mcu-verdict firmware "$digest" installed "after the cut"
out_has "not the image on trial for an MCU"

# --- the relay runner: a dead one, an agent killed while it relays ------------------------------
fw v4 "$MCU_KEYS/dev-p256.pem" 4.0.0 5
# run's runner killed: run cannot fork another (its seccomp filter): the next relay fails saying
# so, and run exits non-zero for its service manager to restart it (with a new runner).
"${AG[@]}" run --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$ca" --start-jitter 0 \
  >"$d/run.log" 2>&1 &
ag=$!
E2E_PIDS+=("$ag")
checked() { grep -q "update check:" "$d/run.log"; }
wait_until 120 checked || fail "run did no update check: $(cat "$d/run.log")"
kill -9 "$(pgrep -P "$ag")"
deploy v4
kill -USR1 "$ag"
stopped() { ! kill -0 "$ag" 2>/dev/null; }
wait_until 120 stopped || fail "run outlived its relay runner: $(cat "$d/run.log")"
rc=0; wait "$ag" || rc=$?
[ "$rc" -ne 0 ] || fail "run exited 0 without its relay runner"
grep -q "the MCU's relay runner died: exiting" "$d/run.log" || fail "run: $(cat "$d/run.log")"
fw_status >"$d/fw.json"
jq -e '.version == "2.0.0+0" and .last_update.result == "failed" and
  (.last_update.detail | contains("relay runner died"))' "$d/fw.json" >/dev/null ||
  fail "after the runner's death: $(cat "$d/fw.json")"
# A copy that fails (a directory where the agent's copy goes): the verdict names the image the
# monitor handed, which ends the trial at once (failed), not at its deadline.
mkdir "$d/dev/agent/mcu/firmware.img"
expect 1 "${AG[@]}" check-now --state-dir "$d/dev"
out_has "firmware: failed: cannot copy the image handed over"
fw_status >"$d/fw.json"
jq -e '.version == "2.0.0+0" and .last_update.result == "failed" and
  (.last_update.detail | contains("cannot copy"))' "$d/fw.json" >/dev/null ||
  fail "after the bad copy: $(cat "$d/fw.json")"
rmdir "$d/dev/agent/mcu/firmware.img"
# The agent killed (-9) while its runner relays: the runner dies with it.
"${AG[@]}" check-now --state-dir "$d/dev" >"$d/cn.log" 2>&1 &
ag=$!
E2E_PIDS+=("$ag")
relaying() { pgrep -f "qemu-system-arm.*$flash" >/dev/null; }
wait_until 60 relaying || fail "no relay: $(cat "$d/cn.log")"
run=$(pgrep -P "$ag") || fail "no relay runner"
kill -9 "$ag"
run_gone() { ! kill -0 "$run" 2>/dev/null; }
wait_until 30 run_gone || fail "the relay runner outlived its agent"
# The next check's relay waits for the orphaned relay's boot, which holds the board's lock, and
# boots after it: the board runs v4 on trial, which the orphan swapped in and the app confirmed.
# Before it writes slot 1 the relay boots the board until that trial ended (confirmed: counter
# 5), then hands v4 again, which the board takes again: the two agree (docs/mcu.md, "A dead or
# silent agent").
expect 0 "${AG[@]}" check-now --state-dir "$d/dev"
out_has "firmware: installed: confirmed on the MCU, its security counter now 5"

# --- run stopped as systemd stops its unit while it relays (review r12 M1) ----------------------
# systemd cannot run here, so this does what it does with the shipped unit (KillMode=mixed, which
# this reads): SIGTERM to run alone, and the moment run has exited, SIGKILL to every process left
# in the unit. The unit here is run's session (setsid): the runner and the relay (mcu-run, in its
# own process group, and its emulator) are in it, as in the unit's cgroup. The board is held (its
# lock, as another relay would) from before the stop until run says it waits, so that the relay
# writes the board only after the stop. run must wait for the relay to finish, give its verdict,
# and exit within the unit's TimeoutStopSec; the board then boots the image confirmed, nothing cut.
unit=$(dirname "$0")/../../dist/systemd/rampart-agent.service
eq "$(sed -n 's/^KillMode=//p' "$unit")" mixed "the agent unit's KillMode"
stop_timeout=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
[ -n "$stop_timeout" ] || fail "the agent unit sets no TimeoutStopSec"
fw v48 "$MCU_KEYS/dev-p256.pem" 4.8.0 5
deploy v48
exec 8>>"$flash.lock"
flock 8
setsid "${WATCHDOG[@]}" "${AG[@]}" run --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$ca" --start-jitter 0 \
  >"$d/run.log" 2>&1 8>&- & # (the lock's descriptor not inherited: the test alone holds it)
ag=$!
E2E_PIDS+=("$ag")
leads() { [ "$(ps -o sid= -p "$ag" | tr -d ' ')" = "$ag" ]; }
wait_until 30 leads || fail "run does not lead a session of its own (the unit)"
wait_until 120 board_waited || fail "run did not relay: $(cat "$d/run.log")"
fed_while_relaying # run's watchdog (review r13 M4): its relay runner's answer waited for
fw_status >"$d/fw.json"
jq -e '.handed != null' "$d/fw.json" >/dev/null || fail "not handed: $(cat "$d/fw.json")"
unit_rest() { ps -e -o pid=,sid= | awk -v s="$ag" '$2 == s && $1 != s { print $1 }'; }
unit_rest | grep -qxF "$(pgrep -f "mcu-run --flash $flash" | head -n1)" ||
  fail "the relay is not in run's session: $(unit_rest | tr '\n' ' ')"
kill -TERM "$ag" # KillMode=mixed: the main process only
waits() { grep -q "stopping: the MCU's relay of firmware is finished first" "$d/run.log"; }
wait_until 30 waits || fail "run did not wait for its relay: $(cat "$d/run.log")"
kill -0 "$ag" 2>/dev/null || fail "run exited before its relay ended: $(cat "$d/run.log")"
exec 8>&- # the board free: the relay hands v4.8 over and boots it twice
wait_until "$stop_timeout" stopped || fail "run outlived the unit's stop timeout: $(cat "$d/run.log")"
for p in $(unit_rest); do kill -9 "$p" 2>/dev/null || true; done # systemd's SIGKILL of the rest
rc=0; wait "$ag" || rc=$?
[ "$rc" -eq 0 ] || fail "run exited $rc after a stop: $(cat "$d/run.log")"
grep -q "update check: 1 installed" "$d/run.log" || fail "run: $(cat "$d/run.log")"
# The relay finished before run exited: the board boots 4.8.0 confirmed (counter 5), resuming no
# swap and reverting no trial (a relay cut half-way leaves one or the other: docs/mcu.md
# "Upgrades"), and the monitor took its verdict: installed, nothing handed any more.
expect 0 "$MCU_RUN" --flash "$flash"
eq "$(verdict)" "boot: slot0 version 4.8.0+0 counter 5: booting" "the board after the stop"
! grep -q 'is on trial\|reverting\|power cut' "$d/err" || fail "the relay was cut: $(cat "$d/err")"
fw_status >"$d/fw.json"
jq -e '.version == "4.8.0+0" and .handed == null and .last_update.result == "installed"' "$d/fw.json" \
  >/dev/null || fail "after the stop mid-relay: $(cat "$d/fw.json")"

# --- each handed install its own deadline: a second component attached to a second board -------
expect 0 "$MCU_RUN" --flash "$d/board2.bin" --slot0 "$d/v1.img"
board2_key=$(sed -n 's/^boot: attestation key \([0-9a-f]*\)$/\1/p' "$d/err")
chown "$U" "$d/board2.bin"
expect 0 "$AGENT" mcu attach --state-dir "$d/dev" --component fw2 --attestation-key "$board2_key" -- \
  /usr/bin/env "MCU_BUILD=$MCU_BUILD" "$MCU_RUN" --flash "$d/board2.bin" --timeout 30
fw other5 "$d/img.key" 5.0.0 6 # above the floor; the board refuses it (another key)
expect 0 "$RAMPART" image sign --type firmware --key "$d/img.key" --version 3.0.0 \
  --security-counter 4 "$MCU_BUILD/app.bin" "$d/fw2.img"
expect 0 "$RAMPART" image upload --tenant "$acme" --component fw2 "$d/fw2.img"
cp "$d/out" "$d/fw2.id"
expect 0 "$RAMPART" deployment create --tenant "$acme" --product Sensor --group "Field Test" \
  "$(cat "$d/other5.id")" "$(cat "$d/fw2.id")"
expect 1 "${AG[@]}" check-now --state-dir "$d/dev" # the targets name both; each board refuses its
out_has "fw2: refused: the MCU's boot stage refused it: not signed by a trusted key"
# firmware handed with 600 s, then fw2 with 2 s: fw2's deadline rolls fw2's trial back alone.
expect 0 call install firmware "$d/other5.img" 600
handed
expect 0 call install fw2 "$d/fw2.img" 2
out_has "handed: "
fw2_late() {
  expect 0 "${AG[@]}" status --state-dir "$d/dev" --output json
  jq -e '.components[] | select(.name == "fw2") | .last_update.result == "rolled_back" and
    (.last_update.detail | contains("no verdict"))' "$d/out" >/dev/null
}
wait_until 30 fw2_late || fail "fw2: no verdict, yet: $(cat "$d/out")"
expect 0 call mcu-verdict firmware "$digest" rolled_back "firmware's trial still on"
out_has "rolled_back: firmware's trial still on"
done_ok
