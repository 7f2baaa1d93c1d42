#!/usr/bin/env bash
# End to end: the API description (docs/openapi.yaml) against a real rampart-server on loopback.
# Every route is called at least once (as an operator with tokens of each role, and as a real
# soft-RoT device over mutual TLS with the certificate it attested for), and every answer is
# validated against the document as the server serves it (/api/v1/openapi.json): its status,
# Content-Type, JSON body and required headers. The console's routes too, with a real session
# (opened with a token and with a login link; its cookie and CSRF value on operator routes).
# The work is openapi.py's; this makes what it needs: the server, a console directory, an image
# key and signed images, a root key, a provisioned device, a debug file.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
here=$(cd "$(dirname "$0")" && pwd)

# A console directory of its own (the test does not need the built console): a page, a script,
# a file of a kind the console does not serve.
mkdir -p "$d/console"
echo '<!doctype html><title>console</title><script src="app.js"></script>' >"$d/console/index.html"
echo 'console.log("app")' >"$d/console/app.js"
echo 'x' >"$d/console/tool.exe"
# (the webhook the test sets points at loopback)
start_server "$d/srv" --webhook-allow-private --console-dir "$d/console"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/img.key"
expect 0 "$RAMPART" key public --key "$d/img.key" --out "$d/img.pub"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/root.key"
printf '#!/bin/sh\nexec sleep 60\n' >"$d/app.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.0.0 --type app "$d/app.sh" "$d/app.img"
# (more than a TPM can hold: a deployment of it to a device that said so is refused)
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.1.0 --security-counter 65 --type app "$d/app.sh" "$d/app-65.img"
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft
tail -n1 "$d/out" >"$d/dev.id"
printf 'int main(void) { return 0; }\n' >"$d/app.c"
gcc -g -O1 -Wl,--build-id -o "$d/app" "$d/app.c" || fail "cannot build the test app"
objcopy --only-keep-debug "$d/app" "$d/app.debug"
readelf -n "$d/app" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p' >"$d/debug.build-id"

SERVER_URL=$SERVER_URL SERVER_CA=$SERVER_CA ADMIN_TOKEN=$ADMIN_TOKEN E2E_DIR=$d \
  /usr/bin/python3 "$here/openapi.py" exercise "${OPENAPI_DOC:-$here/../../docs/openapi.yaml}" ||
  fail "the server's answers and docs/openapi.yaml differ (above)"
done_ok
