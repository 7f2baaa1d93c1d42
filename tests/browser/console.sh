#!/usr/bin/env bash
# The web console in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by
# puppeteer-core (console/package-lock.json) against rampart-server on loopback, with a real
# rampart-agent (soft root of trust) attesting and updating. The steps are in console.js; this
# sets up what it needs: the server, a tenant with its root of update trust and image key, a
# signed image, a provisioned device.
# Chromium drops every request in flight with ERR_NETWORK_CHANGED when a network interface comes
# or goes, and other tests running beside this one (the compartments' veth pairs) do exactly that.
# So the whole test (server, agent, browser: all on loopback) runs in a network namespace of its
# own, where nothing else changes the links. Root only; elsewhere it runs as it is.
if [ -z "${RP_BROWSER_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
  RP_BROWSER_NETNS=1 exec unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
. "$(dirname "$0")/../e2e/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
: "${CONSOLE_NODE_MODULES:?set CONSOLE_NODE_MODULES to console/node_modules (scripts/install-deps)}"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "no Chromium at $CHROMIUM (scripts/install-deps installs Debian's chromium)"
[ -d "$CONSOLE_NODE_MODULES/puppeteer-core" ] || fail "no puppeteer-core in $CONSOLE_NODE_MODULES: run scripts/install-deps"
d=$E2E_DIR

start_server "$d/srv"
tenant_with_root "$d/root.json"
expect 0 "$RAMPART" token create --tenant "$acme" --role admin; cp "$d/out" "$d/acme.token"
printf '#!/bin/sh\necho ready >&"$RAMPART_READY_FD"\nexec sleep 60\n' >"$d/good.sh"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.1.0 --security-counter 1 --type app "$d/good.sh" "$d/app-1.1.0.img"
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft; device=$(tail -n1 "$d/out")
expect 0 "$AGENT" trust --state-dir "$d/dev" --update-root "$d/root.json"
expect 0 "$RAMPART" device claim --tenant "$acme" "$device"

# Chromium trusts the server's certificate, and only it, by its public key's SHA-256 (never
# --ignore-certificate-errors for every origin): the server's own leaf, on loopback.
spki=$(openssl x509 -in "$d/srv/server.pem" -pubkey -noout | openssl pkey -pubin -outform DER |
  openssl dgst -sha256 -binary | base64)

export SERVER_URL SERVER_CA ACME="$acme" DEVICE="$device" STATE_DIR="$d/dev" IMAGE="$d/app-1.1.0.img" \
  ACME_TOKEN="$d/acme.token" SYSTEM_TOKEN="$ADMIN_TOKEN" CHROMIUM SPKI="$spki" WORK="$d" AGENT RAMPART \
  RAMPART_SCREENSHOTS="${RAMPART_SCREENSHOTS:-${RAMPART_SCREENSHOTS_DEFAULT:-$PWD/console-screenshots}}"
mkdir -p "$RAMPART_SCREENSHOTS"
node "$(dirname "$0")/console.js" || { tail -n 30 "$d/srv.log" >&2; fail "the browser test failed"; }
# Blocked in the console: the device's next attestation fails.
expect 1 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
err_has "blocked"
E2E_CHECKS=$((E2E_CHECKS + $(cat "$d/browser-checks")))
done_ok
