#!/usr/bin/env bash
# What Landlock logs of an app (review r4, finding 2): the domains an app nests in its own
# compartment's log nothing (the launcher restricts with LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF:
# an app's own sandboxes are not the device's business, and could otherwise fill the kernel's audit
# queue), while a refusal of its compartment's domain is still logged. The driver
# (tests/tools/compartment-run.c --landlock) reads the kernel's records as the monitor does,
# but takes every domain made as the app's uid, nested or not, so that a nested refusal the kernel
# logged would show. The app refuses the nested one first: the kernel reports in order, so once
# the second is recorded, the first would have been. Run as root; audit is turned on for the run if
# it is off, and off again after (host-wide: the monitors' tests' lock).
[ "$(id -u)" = 0 ] || { echo "FAIL: landlock-log.sh builds compartments: run it as root" >&2; exit 1; }
: "${COMPARTMENT_RUN:?set COMPARTMENT_RUN to the compartment-run test driver}"
RAMPART=$COMPARTMENT_RUN
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR
chmod 755 "$d"
cr=$COMPARTMENT_RUN
tree=$d/tree state=$d/S run=$d/run
mkdir -p "$tree" "$state" "$run"
full_cleanup() {
  "$cr" --cleanup --state-dir "$state" --run-dir "$run" >/dev/null 2>&1 || true
  cleanup
}
trap full_cleanup EXIT

gcc -O1 -Wall -Werror -o "$tree/hostile" "$(dirname "$0")/escape-app.c" -lresolv # the escape suite's hostile app
echo "readable in the compartment" >"$tree/nested-only.txt"
chmod 755 "$tree" "$tree/hostile"
chmod 644 "$tree/nested-only.txt"

expect 0 "$cr" --state-dir "$state" --run-dir "$run" --tree "$tree" --entry hostile \
  --component nester --uid 61236 --gid 61236 --log "$d/app.log" --timeout-ms 60000 \
  --arg landlock-nested --arg /app/nested-only.txt --landlock \
  --wait-event "landlock nester write to /proc/"
grep -qx "landlock-nested: nested: refused" "$d/app.log" || { cat "$d/app.log" >&2; fail "the nested domain did not refuse the read"; }
grep -q "^landlock-nested: refused" "$d/app.log" || { cat "$d/app.log" >&2; fail "the compartment did not refuse the write"; }
out_has "exit: 0"
# the kernel's count of dropped records was read (each tick, as the supervisor does)
if grep -q "lost audit records cannot be read" "$E2E_DIR/err"; then cat "$E2E_DIR/err" >&2; fail "AUDIT_GET failed"; fi
abi=$(sed -n 's/^landlock-abi: //p' "$E2E_DIR/out")
if [ "${abi:-0}" -ge 7 ]; then
  # its compartment's refusal: logged, an event
  out_has "event: landlock nester write to /proc/"
  # its nested domain's: not logged at all
  if grep -q "nested-only" "$E2E_DIR/out"; then cat "$E2E_DIR/out" >&2; fail "the nested domain's refusal was logged"; fi
  E2E_CHECKS=$((E2E_CHECKS + 1))
else
  echo "note: Landlock ABI ${abi:-none} here: its refusals are not logged (ABI 7)" >&2
fi
E2E_CHECKS=$((E2E_CHECKS + 2))
done_ok
