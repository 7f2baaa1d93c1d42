#!/usr/bin/env bash
# End to end: README.md's 5-minute tour, exactly as written there (its sh blocks after the first,
# on a free port instead of 8443), must do what the README says it does: the image verifies, the
# unclaimed device is refused and the claimed one attested, the blocked one refused again, the
# update installed on the second device, the third device quarantined by the tenant's policy and
# released. The tour is what a newcomer runs first.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
readme="$(dirname "$0")/../../README.md"
bin=$(dirname "$RAMPART")

# The blocks, as the README has them; the tour's own commands run in a scratch directory. Its
# server cannot take port 0 (the tour names its port): one line of the test's own, after the
# server's start, ends the tour (exit 75) when the server dies before it is ready (the port free
# when picked was taken), and says when it is ready; serve_on_free_port runs the tour again, on
# another port, after such an end. (Its curl is bounded: the port's thief may never answer, and
# the tour's own wait would then never end.)
tour_start() {
  /usr/bin/python3 - "$readme" "$d/tour.sh" "$PORT" <<'PY' || fail "README.md's tour is not as this test expects"
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```sh\n(.*?)```", text, re.S)[1:]
script = "\n".join(blocks).replace("127.0.0.1:8443", "127.0.0.1:" + sys.argv[3])
script = re.sub(r"^make\b.*$", "", script, flags=re.M)   # the tour builds first; we have
guard = ("until curl -sf --max-time 5 --cacert svc/server-ca.pem https://127.0.0.1:%s/readyz >/dev/null 2>&1; "
         "do kill -0 $! 2>/dev/null || exit 75; sleep 0.2; done; echo TOUR-SERVER-READY" % sys.argv[3])
script, n = re.subn(r"^(rampart-server .*&)[ \t]*$", lambda m: m.group(1) + "\n" + guard, script,
                    count=1, flags=re.M)
if n != 1:
    sys.exit("no line starting rampart-server in the background")
open(sys.argv[2], "w").write(script + "\nkill %1; wait\n")
PY
  rm -rf "$d/tour" "$d/tour.out"
  mkdir "$d/tour"
  (cd "$d/tour" && PATH="$bin:$PATH" exec timeout 600 bash -x "$d/tour.sh") >"$d/tour.out" 2>&1 &
}
tour_ready() { grep -qx TOUR-SERVER-READY "$d/tour.out"; }
serve_on_free_port "$d/tour.out" tour_start tour_ready
wait "$SERVE_PID" || { tail -50 "$d/tour.out" >&2; fail "the tour did not run to its end"; }

# what each step says it does
has() { grep -qF -- "$1" "$d/tour.out" || { tail -80 "$d/tour.out" >&2; fail "the tour: no '$1'"; }; }
has "firmware.img: valid: version 1.2.3+4"
has '"1.2.3+4"'
has "attestation refused (HTTP 403): unclaimed"
has "dev1/agent/device.crt: OK"                          # openssl verify of the issued certificate
has "attestation refused (HTTP 403): blocked"
has "root version 1 signed and uploaded"
has "app: installed: started and said it is ready"
grep -Eq '^app +1\.1\.0\+0 +[ab] +1 +1 +installed' "$d/tour.out" || fail "the tour: status of dev2"
grep -Eq '^installed +1$' "$d/tour.out" || fail "the tour: the deployment does not count dev2 installed"
# failure reporting: three refused attestations quarantine dev3, and `device show` says why;
# quarantined, it is refused even once the appraisal would pass; released, it attests again
has "attestation refused (HTTP 403): no_components"
has "status:            quarantined"
grep -Eq '^quarantined: +since .*: 3 signals of attestation_failed within 600s' "$d/tour.out" ||
  fail "the tour: device show does not say why dev3 is quarantined"
has "attestation refused (HTTP 403): quarantined"
awk '/ released$/ {r = 1} r && /^attested: device/ {ok = 1} END {exit !ok}' "$d/tour.out" ||
  fail "the tour: dev3 did not attest again after its release"
eq "$(grep -c "ERROR\|Segmentation\|AddressSanitizer" "$d/tour.out" || true)" 0 "crashes in the tour"
done_ok
