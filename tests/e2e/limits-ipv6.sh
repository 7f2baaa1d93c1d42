#!/usr/bin/env bash
# The per-address limits count an IPv6 client by its /64, as the connection cap does (found by
# review: the login, wrong-token and attestation limits keyed each IPv6 address apart, so a client
# with a /64 had 2^64 budgets). In a network namespace of its own (root only: ctest skips it
# elsewhere, exit 77), with three addresses on its loopback: two in one /64, one in the next.
if [ -z "${RP_LIMITS_NETNS:-}" ]; then
  { [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; } || { echo "skipped: needs root and unshare"; exit 77; }
  RP_LIMITS_NETNS=1 exec unshare --net sh -c 'ip link set lo up &&
    ip -6 addr add 2001:db8:1:2::1/64 dev lo nodad && ip -6 addr add 2001:db8:1:2::2/64 dev lo nodad &&
    ip -6 addr add 2001:db8:1:3::1/64 dev lo nodad && exec "$0" "$@"' "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR

# (--login-rate 0.001: a try comes back in 1000 s, so the burst is counted exactly however slow
# the machine; the last --listen is the one taken)
start_server "$d/srv" --listen '[::]:0' --login-rate 0.001
port=$(cat "$d/srv.port")
printf '{"token": "rpt_%s"}' "$(openssl rand -hex 32)" >"$d/wrong.json"
# login FROM: a wrong token from the address FROM (the certificate's name kept: --connect-to)
login() {
  status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" --interface "$1" \
    --connect-to "127.0.0.1:$port:[$1]:$port" -H 'Content-Type: application/json' \
    --data-binary "@$d/wrong.json" "https://127.0.0.1:$port/console/session")
}
for i in $(seq 10); do
  login 2001:db8:1:2::1; eq "$status" 401 "wrong token $i of the burst, from 2001:db8:1:2::1"
done
login 2001:db8:1:2::1; eq "$status" 429 "the burst spent, from 2001:db8:1:2::1"
login 2001:db8:1:2::2; eq "$status" 429 "another address of the same /64"
login 2001:db8:1:3::1; eq "$status" 401 "an address of the next /64"
done_ok
