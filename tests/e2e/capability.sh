#!/usr/bin/env bash
# End to end, development mode as a signed, per-device capability: the service signs one for one
# device (admin only, with the online key the tenant's root names); the device checks it with its
# own update root and keeps it; a managed device (one with an update root) installs an image
# locally only while it holds one; its evidence says so; the tenant's policy decides whether a
# device in development mode attests. Refused: another device's capability, a tampered one, an
# expired one, one signed by a key the root does not name, one after it was removed.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
expect 0 "$RAMPART" tenant policy --tenant "$acme"; out_has "allow development mode:       no"
expect 0 "$RAMPART" token create --tenant "$acme" --role contributor; echo "$(cat "$d/out")" >"$d/contrib.token"

for i in 1 2; do
  expect 0 "$AGENT" provision --state-dir "$d/dev$i" --rot soft
  eval "dev$i=$(tail -n1 "$d/out")"
done
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev1" "$dev2"

# No root yet: nothing a device could check a capability with.
expect 1 "$RAMPART" device capability create --tenant "$acme" --device "$dev1" --kind development --out "$d/cap.json"
err_has "HTTP 409"; err_has "no update root"

expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/root.key"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/img.key"
expect 0 "$RAMPART" key public --key "$d/img.key" --out "$d/img.pub"
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/img.pub" --name release
expect 0 "$RAMPART" update-root sign --tenant "$acme" --root-key "$d/root.key" --out "$d/root.json"
for i in 1 2; do expect 0 "$AGENT" trust --state-dir "$d/dev$i" --update-root "$d/root.json"; done
printf '#!/bin/sh\necho "hello from the app"\necho ready >&"$RAMPART_READY_FD"\nexec sleep 60\n' >"$d/app.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --type app "$d/app.sh" "$d/app.img"
# (uploaded: a device running an image its tenant never saw fails appraisal, in any mode)
expect 0 "$RAMPART" image upload --tenant "$acme" --component app "$d/app.img"

# A managed device refuses to sideload without the capability.
expect 1 "$AGENT" install --state-dir "$d/dev1" --component app --health-seconds 1 "$d/app.img"
err_has "this device is managed"; err_has "development capability"
expect 1 "$AGENT" app install --state-dir "$d/dev1" --component app --health-seconds 1 "$d/app.img"
err_has "this device is managed"
expect 0 "$AGENT" capability show --state-dir "$d/dev1"; out_has "no capability in force"
expect 0 "$AGENT" capability show --state-dir "$d/dev1" --output json
jq -e '.kind == null and .reason == ""' "$d/out" >/dev/null || fail "show, none held: $(cat "$d/out")"

# Who may ask for one: an admin of the device's tenant, for a device it holds; a known kind.
expect 1 env RAMPART_TOKEN_FILE="$d/contrib.token" "$RAMPART" device capability create --tenant "$acme" --device "$dev1" --kind development --out "$d/cap.json"
err_has "HTTP 403"
expect 1 "$RAMPART" device capability create --tenant "$acme" --device "$(printf 'f%.0s' {1..64})" --kind development --out "$d/cap.json"
err_has "HTTP 404"
expect 1 "$RAMPART" device capability create --tenant "$acme" --device "$dev1" --kind root --out "$d/cap.json"
err_has "HTTP 400"
expect 1 "$RAMPART" device capability create --tenant "$acme" --device "$dev1" --kind development --expires-in 100d --out "$d/cap.json"
err_has "expires_in is"
[ ! -e "$d/cap.json" ] || fail "a refused capability left a file"

expect 0 "$RAMPART" device capability create --tenant "$acme" --device "$dev1" --kind development --expires-in 2h --out "$d/cap.json"
out_has "a development capability for device $dev1"
jq -e '.signed and (.signatures | length == 1)' "$d/cap.json" >/dev/null || fail "not an envelope"
payload=$(jq -r .signed "$d/cap.json" | base64 -d)
eq "$(jq -r .device <<<"$payload")" "$dev1" "the capability names the device"
eq "$(jq -r '.expires - .issued' <<<"$payload")" 7200 "lifetime as asked"

# Another device's capability, and a tampered one, are refused and change nothing.
expect 1 "$AGENT" capability apply --state-dir "$d/dev2" "$d/cap.json"; err_has "for another device"
jq --arg p "$(jq -c '.expires += 1000000' <<<"$payload" | base64 -w0)" '.signed = $p' "$d/cap.json" >"$d/tampered.json"
expect 1 "$AGENT" capability apply --state-dir "$d/dev1" "$d/tampered.json"; err_has "not signed by the service's online key"
expect 0 "$AGENT" capability show --state-dir "$d/dev1"; out_has "no capability in force"
# Signed by a key the root does not name (an image key, here) is refused the same way.
python3 - "$d/cap.json" "$d/img.key" "$d/forged.json" <<'PY'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
env = json.load(open(sys.argv[1]))
key = serialization.load_pem_private_key(open(sys.argv[2], 'rb').read(), None)
payload = base64.b64decode(env['signed'])
spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
sig = key.sign(payload, ec.ECDSA(hashes.SHA256()))
env['signatures'] = [{'keyid': hashlib.sha256(spki).hexdigest(), 'sig': base64.b64encode(sig).decode()}]
json.dump(env, open(sys.argv[3], 'w'))
PY
expect 1 "$AGENT" capability apply --state-dir "$d/dev1" "$d/forged.json"; err_has "not signed by the service's online key"

# The real one: kept, shown, and the device may now sideload.
expect 0 "$AGENT" capability apply --state-dir "$d/dev1" "$d/cap.json"; out_has "development capability from tenant $acme"
expect 0 "$AGENT" capability show --state-dir "$d/dev1" --output json
jq -e --arg t "$acme" '.kind == "development" and .tenant == $t' "$d/out" >/dev/null || fail "show: $(cat "$d/out")"
expect 0 "$AGENT" install --state-dir "$d/dev1" --component app --health-seconds 1 "$d/app.img"; out_has "app: installed"
# app install is the same install, single-process here (e2e.dev_mode: through the monitor)
expect 0 "$AGENT" app install --state-dir "$d/dev1" --component app --health-seconds 1 "$d/app.img"; out_has "app: unchanged"
# What the app wrote (rampart-agent app logs: the contract), only the end of a long log.
expect 0 "$AGENT" app logs --state-dir "$d/dev1" app; out_has "hello from the app"
head -c 100000 /dev/zero | tr '\0' x >>"$d/dev1/components/app/app.log"; echo "last line" >>"$d/dev1/components/app/app.log"
expect 0 "$AGENT" app logs --state-dir "$d/dev1" app; out_has "earlier bytes not shown]"; out_has "last line"
[ "$(wc -c <"$d/out")" -le 66000 ] || fail "app logs printed more than its bound"
expect 1 "$AGENT" app logs --state-dir "$d/dev1" other; err_has "the app never ran"
expect 2 "$AGENT" app logs --state-dir "$d/dev1" ../app

# Its evidence says so; the tenant's policy refuses development mode until it allows it.
expect 1 "$AGENT" attest --state-dir "$d/dev1" --server "$SERVER_URL" --server-ca "$SERVER_CA"
err_has "development_mode"
expect 0 "$RAMPART" device attestations --tenant "$acme" "$dev1"
jq -e '.attestations[0].reason == "development_mode" and (.attestations[0].claims.development_until | type == "number")' "$d/out" >/dev/null \
  || fail "the attestation record: $(head -c 600 "$d/out")"
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-development yes; out_has "allow development mode:       yes"
expect 0 "$AGENT" attest --state-dir "$d/dev1" --server "$SERVER_URL" --server-ca "$SERVER_CA"
# A device without the capability says nothing of development mode.
expect 0 "$AGENT" attest --state-dir "$d/dev2" --server "$SERVER_URL" --server-ca "$SERVER_CA"
expect 0 "$RAMPART" device attestations --tenant "$acme" "$dev2"
jq -e '.attestations[0].reason == "pass" and (.attestations[0].claims | has("development_until") | not)' "$d/out" >/dev/null \
  || fail "dev2's attestation: $(head -c 600 "$d/out")"

# Expired: the device stops counting it, by its own clock.
expect 0 at_clock '+3h' "$AGENT" capability show --state-dir "$d/dev1"; out_has "no capability in force: the capability has expired"
expect 0 at_clock '+3h' "$AGENT" capability show --state-dir "$d/dev1" --output json
jq -e '.kind == null and .reason == "the capability has expired"' "$d/out" >/dev/null || fail "show, expired: $(cat "$d/out")"
expect 1 at_clock '+3h' "$AGENT" install --state-dir "$d/dev1" --component app --health-seconds 1 "$d/app.img"
err_has "the capability has expired"

# Removed: gone, and sideloading with it.
expect 0 "$AGENT" capability remove --state-dir "$d/dev1"
expect 1 "$AGENT" install --state-dir "$d/dev1" --component app --health-seconds 1 "$d/app.img"; err_has "this device is managed"
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-development no
expect 0 "$AGENT" attest --state-dir "$d/dev1" --server "$SERVER_URL" --server-ca "$SERVER_CA"

# A device without an update root (a board on a bench) installs locally as before.
expect 0 "$AGENT" provision --state-dir "$d/bench" --rot soft
expect 0 "$AGENT" trust --state-dir "$d/bench" --image-key "$d/img.pub"
expect 0 "$AGENT" install --state-dir "$d/bench" --component app --health-seconds 1 "$d/app.img"; out_has "app: installed"
expect 1 "$AGENT" capability apply --state-dir "$d/bench" "$d/cap.json"; err_has "no update root"
done_ok
