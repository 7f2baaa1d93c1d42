#!/usr/bin/env bash
# End to end: the route table (server/routes.c), route by route, as the server prints it with
# --routes: every route answers only its methods (405 with Allow otherwise), token routes refuse
# a missing or wrong token (401), a token of another tenant (404) and one whose role is too low
# (403), and reach their handler with the role they name; device routes refuse a caller without
# a certificate. Then what the router itself refuses (a NUL hidden in a path segment), and the
# public CRL served from a cache that a block refreshes at once.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

"$RAMPART_SERVER" --routes >"$d/routes.jsonl"
[ "$(wc -l <"$d/routes.jsonl")" -ge 40 ] || fail "the route table is short: $(wc -l <"$d/routes.jsonl")"
start_server "$d/srv" --threads 2
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
# role_rank NAME: reader 1 .. system 4
role_rank() { case $1 in reader) echo 1 ;; contributor) echo 2 ;; admin) echo 3 ;; system) echo 4 ;; esac; }
# token_of RANK: a token of tenant acme with exactly that role (system: the bootstrap token).
token_of() { case $1 in 1) echo "$d/acme-reader.token" ;; 2) echo "$d/acme-contributor.token" ;; 3) echo "$d/acme-admin.token" ;; 4) echo "$ADMIN_TOKEN" ;; esac; }

# The table as "METHOD PATH AUTH ROLE ESCALATES" lines.
jq -r '[.method, .path, .auth, (.role // "-"), .escalates] | @tsv' "$d/routes.jsonl" >"$d/routes.tsv"
# methods_for PATH: the methods of every route whose path PATH fits ("{x}" is any one segment).
methods_for() {
  local m p rest
  while IFS=$'\t' read -r m p rest; do
    p=${p//\{tenant\}/$acme}
    while [[ $p =~ \{[a-z_]+\+\} ]]; do p=${p/"${BASH_REMATCH[0]}"/.+}; done
    while [[ $p =~ \{[a-z_]+\} ]]; do p=${p/"${BASH_REMATCH[0]}"/[^/]+}; done
    if [[ $1 =~ ^${p}$ ]]; then printf '%s ' "$m"; fi
  done <"$d/routes.tsv"
  return 0
}

routes=0
declare -A seen
while IFS=$'\t' read -r method pattern auth role escalates; do
  routes=$((routes + 1))
  path=${pattern//\{tenant\}/$acme}
  while [[ $path =~ \{[a-z_]+\+?\} ]]; do path=${path/"${BASH_REMATCH[0]}"/nosuchthing}; done
  allowed=" $(methods_for "$path")"
  want_allow=""
  for m in GET HEAD POST PUT DELETE PATCH; do
    if [[ $allowed == *" $m "* ]] || { [ $m = HEAD ] && [[ $allowed == *" GET "* ]]; }; then
      want_allow+="${want_allow:+, }$m"
    fi
  done
  # Every other method: 405, and Allow names exactly the table's (once a path).
  [ -n "${seen[$pattern]:-}" ] && want_allow=""
  seen[$pattern]=1
  for m in GET POST PUT DELETE PATCH; do
    [ -z "$want_allow" ] && break
    [[ $allowed == *" $m "* ]] && continue
    call "$m" "$path" "$ADMIN_TOKEN"
    eq "$status" 405 "$m $pattern (the table has:$allowed)"
    eq "$(header Allow)" "$want_allow" "Allow of $pattern"
  done
  case $auth in
  token)
    need=$(role_rank "$role")
    call "$method" "$path" -; eq "$status" 401 "$method $pattern without a token"
    call "$method" "$path" "$d/wrong.token"; eq "$status" 401 "$method $pattern with a wrong token"
    if [[ $pattern == *"{tenant}"* ]]; then
      call "$method" "$path" "$d/globex-admin.token"
      eq "$status" 404 "$method $pattern with another tenant's admin token"
    fi
    if [ "$need" -gt 1 ]; then
      call "$method" "$path" "$(token_of $((need - 1)))"
      eq "$status" 403 "$method $pattern with a role below $role"
    fi
    # With its role, the handler answers (a route that escalates may ask for more, depending on
    # the request: the most its path allows then).
    if [ "$escalates" = true ]; then
      if [[ $pattern == *"{tenant}"* ]]; then need=3; else need=4; fi
    fi
    call "$method" "$path" "$(token_of "$need")"
    case $status in 401 | 403 | 405) fail "$method $pattern with its own role: $status $(cat "$d/body")" ;; esac
    ;;
  session)
    call "$method" "$path" "$ADMIN_TOKEN"   # a token is no session (tests/e2e/console-server.sh)
    eq "$status" 401 "$method $pattern without a session cookie"
    ;;
  device)
    call "$method" "$path" "$ADMIN_TOKEN"   # a token is no certificate
    eq "$status" 401 "$method $pattern without a device certificate"
    ;;
  public)
    call "$method" "$path" -
    case $status in 401 | 403 | 405) fail "$method $pattern is public: $status $(cat "$d/body")" ;; esac
    ;;
  *) fail "route $pattern: unknown auth '$auth'" ;;
  esac
done <"$d/routes.tsv"
echo "checked $routes routes"

# What the router refuses before any route: a NUL hidden in a segment would have cut the tenant's
# ID short of the "x" (and answered for the tenant).
call GET "/api/v1/tenants/$acme%00x" "$ADMIN_TOKEN"; eq "$status" 400 "a NUL in a path segment"
jq -e '.error == "bad_path"' "$d/body" >/dev/null || fail "NUL: $(cat "$d/body")"
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
for i in $(seq 1 40); do crl; done
eq "$etag" "$first" "the CRL's ETag while nothing is revoked"
cmp -s "$d/crl.der" "$d/crl.first" || fail "the cached CRL changed"
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
for i in $(seq 1 40); do "$RAMPART" tenant create "many-$i" >>"$d/many.ids"; done
for round in 1 2; do
  while read -r t; do curl -s -o /dev/null --cacert "$SERVER_CA" "$SERVER_URL/api/v1/tenants/$t/crl"; done <"$d/many.ids"
  [ $round = 1 ] && b1=$(builds)
done
eq "$(($(builds) - b1))" 0 "CRLs made again on a second round over 40 tenants"

done_ok
