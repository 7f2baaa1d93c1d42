#!/usr/bin/env bash
# End to end: the route table (server/http/routes.c), route by route, as the server prints it with
# --routes: every route answers only its methods (405 with Allow otherwise), token routes refuse
# a missing or wrong token (401), a token of another tenant (404) and one whose role is too low
# (403), and reach their handler with the role they name; device routes refuse a caller without
# a certificate. Then what the router itself refuses (a NUL hidden in a path segment), and the
# public CRL served from a cache that a block refreshes at once. The loops of requests run in
# routes.py (kept-alive connections, one per token); the setup and the one-off checks stay here.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

"$RAMPART_SERVER" --routes >"$d/routes.jsonl"
[ "$(wc -l <"$d/routes.jsonl")" -ge 40 ] || fail "the route table is short: $(wc -l <"$d/routes.jsonl")"
# (--auth-fail-rate 0: the loop sends a wrong token to every token route, more than the budget of
# wrong tokens an address has; e2e.console_server checks that budget)
start_server "$d/srv" --threads 2 --auth-fail-rate 0
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN

expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant create globex; globex=$(cat "$d/out")
# This machine's kernel is not locked down: its agents say debug is enabled.
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes --require-components no
for spec in acme:admin acme:contributor acme:reader globex:admin; do
  t=${spec%%:*} role=${spec##*:} tid=$acme
  [ "$t" = globex ] && tid=$globex
  expect 0 "$RAMPART" token create --tenant "$tid" --role "$role"
  cp "$d/out" "$d/$t-$role.token"
done
echo "rpt_$(openssl rand -hex 32)" >"$d/wrong.token"
echo '{}' >"$d/empty.json"

# call METHOD PATH TOKEN_FILE|-: status in $status, response headers in $d/headers.
call() {
  local auth=()
  [ "$3" != "-" ] && auth=(-H "Authorization: Bearer $(cat "$3")")
  status=$(curl -s -o "$d/body" -D "$d/headers" -w '%{http_code}' --cacert "$SERVER_CA" \
    -X "$1" "${auth[@]}" --data-binary "@$d/empty.json" -H 'Content-Type: application/json' \
    "$SERVER_URL$2")
  E2E_CHECKS=$((E2E_CHECKS + 1))
}
header() { sed -n "s/^$1: //Ip" "$d/headers" | tr -d '\r'; }
# The route loop: every route x every method x every role, in routes.py over kept-alive
# connections (a curl process per request took minutes). It prints how many requests it checked.
routes_py() { /usr/bin/python3 "$(dirname "$0")/routes.py" "$SERVER_URL" "$SERVER_CA" "$@"; }
n=$(routes_py table "$d/routes.jsonl" "$acme" "$ADMIN_TOKEN" "$d") || fail "the route table (routes.py, above)"
E2E_CHECKS=$((E2E_CHECKS + n))

# What the router refuses before any route: a NUL hidden in a segment would have cut the tenant's
# ID short of the "x" (and answered for the tenant).
call GET "/api/v1/tenants/$acme%00x" "$ADMIN_TOKEN"; eq "$status" 400 "a NUL in a path segment"
jq -e '.error == "bad_path"' "$d/body" >/dev/null || fail "NUL: $(cat "$d/body")"
# Nor is anything named by text that is not UTF-8: 400 here on SQLite as on PostgreSQL
# (e2e.database), where such text cannot even be compared.
call GET "/api/v1/tenants/$acme/devices/%FF%FE" "$ADMIN_TOKEN"; eq "$status" 400 "a path segment not UTF-8"
jq -e '.error == "bad_path"' "$d/body" >/dev/null || fail "not UTF-8: $(cat "$d/body")"
call DELETE "/api/v1/tenants/$acme" "$ADMIN_TOKEN"; eq "$status" 405 "DELETE a tenant"
eq "$(header Allow)" "GET, HEAD" "Allow of a tenant"
call GET "/api/v1/no/such/thing" "$ADMIN_TOKEN"; eq "$status" 404 "an unknown path"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$SERVER_CA" -I \
  -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")" "$SERVER_URL/api/v1/tenants/$acme")
eq "$status" 200 "HEAD of a GET route"
# A HEAD answer has no body, so that the next response on the same connection is read as such
# (and says how long the GET's body is).
/usr/bin/python3 - "$SERVER_URL" "$SERVER_CA" "$(cat "$ADMIN_TOKEN")" "/api/v1/tenants/$acme" <<'PY' ||
import socket, ssl, sys, urllib.parse
url, ca, token, path = sys.argv[1:]
u = urllib.parse.urlparse(url)
s = ssl.create_default_context(cafile=ca).wrap_socket(
    socket.create_connection((u.hostname, u.port), timeout=30), server_hostname=u.hostname)
s.sendall(("HEAD %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
           "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (path, token)).encode())
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, sep, rest = data.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200"), head
length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
assert length and int(length[0].split(b":")[1]) > 0, head
assert rest.startswith(b"HTTP/1.1 200"), "a body after the HEAD answer: %r" % rest[:80]
assert rest.rstrip().endswith(b'{"status":"ok"}'), rest
PY
  fail "HEAD then GET on one connection"

# --- what is refused rather than read loosely ---------------------------------------------------
call GET "/api/v1/tenants/$acme/devices?x=1%00y" "$ADMIN_TOKEN"; eq "$status" 400 "a NUL in the query"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$SERVER_CA" \
  -H "Authorization: bearer $(cat "$ADMIN_TOKEN")" "$SERVER_URL/api/v1/tenants/$acme")
eq "$status" 200 "the bearer scheme in lower case (RFC 7235: any case)"
# Two Content-Lengths (a request smuggled past a proxy that takes the other one): 400.
/usr/bin/python3 - "$SERVER_URL" "$SERVER_CA" <<'PY' || fail "two Content-Length headers"
import socket, ssl, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = ssl.create_default_context(cafile=sys.argv[2]).wrap_socket(
    socket.create_connection((u.hostname, u.port), timeout=30), server_hostname=u.hostname)
s.sendall(b"POST /api/v1/attest/nonce HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
          b"Content-Length: 40\r\nConnection: close\r\n\r\n{}")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
assert data.startswith(b"HTTP/1.1 400"), data[:200]
PY
printf '{"name": "g1", "allow_unknown_images": "true"}' >"$d/g.json"
expect 0 "$RAMPART" product create --tenant "$acme" Widget
http POST "/api/v1/tenants/$acme/products/Widget/groups" "$ADMIN_TOKEN" "$d/g.json"; is_status 400
printf '{"role": "reader", "expires_at": "2027-02-30T23:59:60Z"}' >"$d/t.json"
http POST "/api/v1/tenants/$acme/tokens" "$ADMIN_TOKEN" "$d/t.json"; is_status 400
body_has '.message | contains("not a time that exists")'
printf '{"allow_debug": 1}' >"$d/p.json"
http PUT "/api/v1/tenants/$acme/policy" "$ADMIN_TOKEN" "$d/p.json"; is_status 400
body_has '.message == "\"allow_debug\" is true or false"'

# --- the CRL: cached, revalidated, and fresh at once after a block -----------------------------
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft; dev=$(cat "$d/out")
expect 0 "$RAMPART" device claim --tenant "$acme" "$dev"
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
serial=$(openssl x509 -in "$d/dev/agent/device.crt" -noout -serial | cut -d= -f2 | tr A-F a-f)
builds() { curl -s --cacert "$SERVER_CA" "$SERVER_URL/metrics" | sed -n 's/^rampart_crl_builds_total //p'; }
crl() { # crl [IF_NONE_MATCH]: status, ETag, body in $d/crl.der
  local inm=()
  [ $# -ge 1 ] && inm=(-H "If-None-Match: $1")
  status=$(curl -s -o "$d/crl.der" -D "$d/headers" -w '%{http_code}' --cacert "$SERVER_CA" "${inm[@]}" \
    "$SERVER_URL/api/v1/tenants/$acme/crl")
  etag=$(header ETag)
}
crl; eq "$status" 200 "CRL"; first=$etag
[ -n "$first" ] || fail "the CRL has no ETag"
header Cache-Control | grep -q no-cache || fail "CRL Cache-Control: $(header Cache-Control)"
[ -n "$(header Expires)" ] || fail "the CRL has no Expires (its nextUpdate)"
cp "$d/crl.der" "$d/crl.first"
b0=$(builds)
# 40 requests, each the same ETag and bytes as the first.
n=$(routes_py crl-repeat "$acme" 40 "$first" "$d/crl.first") || fail "the cached CRL (above)"
E2E_CHECKS=$((E2E_CHECKS + n))
eq "$(($(builds) - b0))" 0 "CRLs made for 40 requests (the first one's is served)"
crl "$first"; eq "$status" 304 "If-None-Match with the current ETag"
# A block is in the very next CRL.
expect 0 "$RAMPART" device block --tenant "$acme" "$dev"
crl "$first"; eq "$status" 200 "If-None-Match after a block"
[ "$etag" != "$first" ] || fail "the ETag did not change with a revocation"
openssl crl -inform DER -in "$d/crl.der" -noout -text | grep -qi "Serial Number: $serial" ||
  fail "the CRL right after the block lacks the revoked certificate"
status=$(curl -s -o "$d/crl.pem" -D "$d/headers" -w '%{http_code}' --cacert "$SERVER_CA" \
  "$SERVER_URL/api/v1/tenants/$acme/crl?format=pem")
eq "$status" 200 "PEM CRL"
[ "$(header ETag)" != "$etag" ] || fail "the PEM and DER CRLs share an ETag"
openssl crl -in "$d/crl.pem" -noout -text | grep -qi "Serial Number: $serial" || fail "PEM CRL"
status=$(curl -s -o "$d/crl.PEM" -w '%{http_code}' --cacert "$SERVER_CA" "$SERVER_URL/api/v1/tenants/$acme/crl?format=PEM")
eq "$status" 200 "?format=PEM"; grep -q "BEGIN X509 CRL" "$d/crl.PEM" || fail "?format=PEM gave no PEM"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$SERVER_CA" "$SERVER_URL/api/v1/tenants/$acme/crl?format=pem&x=1")
eq "$status" 400 "a CRL query with something else in it"
# The cache holds every tenant's CRL: a flood cycling over more tenants than a fixed cache would
# hold makes each CRL once.
routes_py tenants "$ADMIN_TOKEN" 40 many >"$d/many.ids" || fail "40 tenants"
for round in 1 2; do
  n=$(routes_py crls "$d/many.ids") || fail "the CRLs of 40 tenants (above)"
  E2E_CHECKS=$((E2E_CHECKS + n))
  [ $round = 1 ] && b1=$(builds)
done
eq "$(($(builds) - b1))" 0 "CRLs made again on a second round over 40 tenants"

done_ok
