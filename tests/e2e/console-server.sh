#!/usr/bin/env bash
# End to end: the web console's server side (server/api/console.c). Its static files (the page, a
# script with its type, a page's own address) with every security header, and nothing outside its
# directory (.., encoded .., any symbolic link - out or in -, a kind it does not serve, a missing file),
# and a file cut short while it is sent does not bring the service down;
# sessions opened with a token (the cookie's flags exactly) or a one-time login link (once, not
# once expired, none made in a session outliving it, none once its maker is revoked, nor the
# session a used one opened; a link's session makes no tokens), which authenticate operator routes (CSRF on
# every change), never device routes, end on DELETE and with their token, and outlive a restart;
# the fleet page's counts and histogram for real devices that attested; a claim past
# --max-devices-per-tenant is refused.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR
bin=$RAMPART_SERVER

# A console directory: a page, scripts, a stylesheet linked from inside, links out.
c=$d/console
mkdir -p "$c/vendor"
echo '<!doctype html><title>console</title><script src="app.js"></script>' >"$c/index.html"
echo 'console.log("app")' >"$c/app.js"
echo 'export const x = 1;' >"$c/vendor/lib.mjs"
echo 'body {}' >"$c/vendor/real.css"
ln -s vendor/real.css "$c/in.css"
ln -s vendor "$c/lib"
echo 'SECRET' >"$d/outside.js"
ln -s "$d/outside.js" "$c/out.js"
ln -s "$d" "$c/up"
echo 'x' >"$c/tool.exe"
echo 'HIDDEN' >"$c/.hidden.js"
mkfifo "$c/pipe.js" # no writer ever: opening it to read would wait for one, and hold a worker
start_server "$d/srv" --threads 2 --console-dir "$c" --max-devices-per-tenant 4
cli() { RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN "$RAMPART" "$@"; }

# req METHOD PATH [CURL ARGS...]: status in $status, headers in $d/headers, body in $d/body.
req() {
  local m=(-X "$1") p=$2
  [ "$1" = HEAD ] && m=(-I)
  shift 2
  status=$(curl -s --path-as-is -o "$d/body" -D "$d/headers" -w '%{http_code}' \
    --cacert "$SERVER_CA" "${m[@]}" "$@" "$SERVER_URL$p")
  E2E_CHECKS=$((E2E_CHECKS + 1))
}
header() { sed -n "s/^$1: //Ip" "$d/headers" | tr -d '\r'; }
csp="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
headers_ok() { # the headers every console answer carries
  eq "$(header Content-Security-Policy)" "$csp" "CSP of $1"
  eq "$(header X-Content-Type-Options)" nosniff "nosniff of $1"
  eq "$(header Referrer-Policy)" no-referrer "Referrer-Policy of $1"
  eq "$(header X-Frame-Options)" DENY "X-Frame-Options of $1"
}

# --- static files ---------------------------------------------------------------------------------
req GET /console/; eq "$status" 200 "the page"; headers_ok /console/
eq "$(header Content-Type)" "text/html; charset=utf-8" "the page's type"
eq "$(header Cache-Control)" no-cache "the page's Cache-Control"
grep -q 'src="app.js"' "$d/body" || fail "the page's body: $(cat "$d/body")"
req GET /console; eq "$status" 308 "/console without its slash"; eq "$(header Location)" /console/ "its Location"
req GET /console/app.js; eq "$status" 200 "a script"; headers_ok app.js
eq "$(header Content-Type)" "text/javascript; charset=utf-8" "a script's type"
eq "$(cat "$d/body")" 'console.log("app")' "a script's body"
req GET /console/vendor/lib.mjs; eq "$status" 200 "a module in a folder"
eq "$(header Content-Type)" "text/javascript; charset=utf-8" "a module's type"
req GET /console/vendor/real.css; eq "$status" 200 "a stylesheet"
eq "$(header Content-Type)" "text/css; charset=utf-8" "a stylesheet's type"
req GET /console/login; eq "$status" 200 "a page's own address"; grep -q '<title>console' "$d/body" || fail "login is not the page"
req HEAD /console/app.js; eq "$status" 200 "HEAD of a script"
# Every way out of the console's directory is refused (how: ARG, for the messages).
refused_out() {
  for p in /console/../srv/admin.token /console/vendor/../../outside.js /console/%2e%2e/outside.js \
    /console/vendor%2f..%2f..%2foutside.js /console/.%2e/outside.js /console/out.js \
    /console/up/outside.js /console/up/srv/admin.token /console/tool.exe /console/nope.js \
    /console/.hidden.js /console/vendor/../app.js /console/vendor/%2e%2e/app.js \
    /console/in.css /console/lib/lib.mjs /console/lib%2flib.mjs /console/%2fetc/passwd; do
    req GET "$p"; eq "$status" 404 "$p is refused$1"
    grep -q 'SECRET\|HIDDEN\|console.log' "$d/body" && fail "$p: a file was served$1"
    headers_ok "$p"
  done
}
refused_out ""
req POST /console/app.js; eq "$status" 405 "POST a file"
# A named pipe is no file: refused at once, on every worker (the bound only turns a hang into a
# failure; the answer comes in milliseconds).
for i in 1 2 3 4; do
  req GET /console/pipe.js --max-time 20; eq "$status" 404 "a named pipe in the console's directory ($i)"
done
req GET /console/app.js --max-time 20; eq "$status" 200 "a script after the pipe"
# A file cut short while it is sent (an operator's cp over it): the answer is the file as it was
# when asked for, and the service goes on (a file mapped and sent as the client reads would fault
# it with SIGBUS). The client stalls with most of the answer still on the service's side.
head -c 8000000 /dev/zero >"$c/big.js"
"$(dirname "$0")/conn-client.py" stall "${SERVER_URL##*:}" "$SERVER_CA" /console/big.js "$d/go" >"$d/stall" 2>&1 &
stall_pid=$!
stalled() { grep -qs '^stalled 200' "$d/stall"; }
wait_until 60 stalled || fail "the stalled download: $(cat "$d/stall")"
: >"$c/big.js"
touch "$d/go"
wait "$stall_pid" || fail "the stalled client: $(cat "$d/stall")"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died while a console file it sent was cut short"
eq "$(tail -1 "$d/stall")" "read 8000000 bytes" "a console file cut short while sent"
rm "$c/big.js"

# --- sessions -------------------------------------------------------------------------------------
# login JSON: POST /console/session; the cookie's value in $cookie, the CSRF value in $csrf.
login() {
  printf '%s' "$1" >"$d/login.json"
  req POST /console/session -H 'Content-Type: application/json' --data-binary "@$d/login.json"
  cookie=$(header Set-Cookie | sed -n 's/^__Host-rampart_session=\([^;]*\);.*/\1/p')
  csrf=$(jq -r '.csrf // empty' "$d/body" 2>/dev/null || true)
}
login "{\"token\": \"$(cat "$ADMIN_TOKEN")\"}"; eq "$status" 200 "login with the system token"
headers_ok "the session"
[[ $cookie =~ ^rps_[0-9a-f]{64}$ ]] || fail "the cookie: $(header Set-Cookie)"
eq "$(header Set-Cookie)" "__Host-rampart_session=$cookie; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=28800" "the cookie's flags"
[[ $csrf =~ ^[0-9a-f]{64}$ ]] || fail "the CSRF value: $(cat "$d/body")"
jq -e '.role == "system" and .tenant == null and (.expires | type) == "number"' "$d/body" >/dev/null ||
  fail "the session: $(cat "$d/body")"
sys_cookie=$cookie sys_csrf=$csrf sys_expires=$(jq .expires "$d/body")
login "{\"token\": \"rpt_$(openssl rand -hex 32)\"}"; eq "$status" 401 "login with a wrong token"
[ -z "$(header Set-Cookie)" ] || fail "a wrong token got a cookie"
printf '{"token": "%s"}' "$(cat "$ADMIN_TOKEN")" >"$d/login.json"
req POST /console/session --data-binary "@$d/login.json" -H 'Content-Type: application/x-www-form-urlencoded'
eq "$status" 415 "login posted as a form (another site's page could)"
login '{"token": "a", "code": "b"}'; eq "$status" 400 "a token and a code"

ck=(-H "Cookie: __Host-rampart_session=$sys_cookie")
req GET /console/session "${ck[@]}"; eq "$status" 200 "the session, by its cookie"
jq -e --arg c "$sys_csrf" '.csrf == $c and .role == "system"' "$d/body" >/dev/null || fail "GET session: $(cat "$d/body")"
req GET /console/session; eq "$status" 401 "no cookie, no session"
req GET /console/session -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")"; eq "$status" 401 "a bearer token is no session"
req GET /api/v1/tenants "${ck[@]}"; eq "$status" 200 "the cookie authenticates an operator route"
req GET /api/v1/tenants -H "Cookie: __Host-rampart_session=rps_$(openssl rand -hex 32)"; eq "$status" 401 "an unknown cookie"
req GET /api/v1/tenants -H "Cookie: __Host-rampart_session=$sys_cookie; __Host-rampart_session=$sys_cookie"; eq "$status" 401 "the cookie twice"
req GET /api/v1/tenants -H "Cookie: __Host-rampart_session=$sys_cookie" -H "Cookie: __Host-rampart_session=rps_$(openssl rand -hex 32)"
eq "$status" 401 "the cookie in two Cookie headers"
# Without its __Host- prefix (a name a sibling site or a plain-HTTP page could set): no session.
req GET /api/v1/tenants -H "Cookie: rampart_session=$sys_cookie"; eq "$status" 401 "the cookie without __Host-"
# CSRF: every change made with the cookie carries the session's value.
j=(-H 'Content-Type: application/json')
req POST /api/v1/tenants "${ck[@]}" "${j[@]}" --data-binary '{"name": "acme"}'
eq "$status" 403 "POST with the cookie, no X-CSRF-Token"; body_has '.message == "csrf token missing or wrong"'
# (its last hex digit changed: a substitution of some digit would leave a value without it as it was)
last=${sys_csrf: -1}
wrong_csrf=${sys_csrf%?}$([ "$last" = 0 ] && echo 1 || echo 0)
[ "$wrong_csrf" != "$sys_csrf" ] || fail "the wrong CSRF value is the right one"
req POST /api/v1/tenants "${ck[@]}" "${j[@]}" -H "X-CSRF-Token: $wrong_csrf" --data-binary '{"name": "acme"}'
eq "$status" 403 "POST with the cookie and a wrong X-CSRF-Token"
req POST /api/v1/tenants "${ck[@]}" "${j[@]}" -H "X-CSRF-Token: $sys_csrf" --data-binary '{"name": "acme"}'
eq "$status" 201 "POST with the cookie and its X-CSRF-Token"; acme=$(jq -r .id "$d/body")
req POST /api/v1/tenants "${j[@]}" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")" --data-binary '{"name": "globex"}'
eq "$status" 201 "a bearer POST needs no CSRF"; globex=$(jq -r .id "$d/body")
# Never a device route.
req GET /api/v1/device/targets "${ck[@]}"; eq "$status" 401 "the cookie on a device route"

# A tenant's admin token: its session sees its tenant only, and ends when the token is revoked.
expect 0 cli token create --tenant "$acme" --role admin; acme_admin=$(cat "$d/out")
req GET /api/v1/tokens/self -H "Authorization: Bearer $acme_admin"; acme_admin_id=$(jq -r .id "$d/body")
login "{\"token\": \"$acme_admin\"}"; eq "$status" 200 "login with a tenant's admin token"
jq -e --arg t "$acme" '.role == "admin" and .tenant == $t' "$d/body" >/dev/null || fail "tenant session: $(cat "$d/body")"
ack=(-H "Cookie: __Host-rampart_session=$cookie"); acsrf=$csrf
req GET "/api/v1/tenants/$acme/devices" "${ack[@]}"; eq "$status" 200 "the tenant's devices by cookie"
req GET "/api/v1/tenants/$globex" "${ack[@]}"; eq "$status" 404 "another tenant by cookie"
req DELETE "/api/v1/tenants/$acme/tokens/$acme_admin_id" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")"
eq "$status" 200 "revoke the tenant's admin token"
req GET "/api/v1/tenants/$acme/devices" "${ack[@]}"; eq "$status" 401 "a revoked token's session"
req GET /console/session "${ack[@]}"; eq "$status" 401 "a revoked token's session, itself"

# --- one-time login links ---------------------------------------------------------------------------
expect 0 cli console link --tenant "$acme"
url=$(cat "$d/out")
[[ $url == "$SERVER_URL/console/login#code=rpl_"* ]] || fail "the link: $url"
code=${url#*#code=}
login "{\"code\": \"$code\"}"; eq "$status" 200 "the link, once"
jq -e --arg t "$acme" '.role == "admin" and .tenant == $t' "$d/body" >/dev/null || fail "link session: $(cat "$d/body")"
link_cookie=$cookie
req GET "/api/v1/tenants/$acme" -H "Cookie: __Host-rampart_session=$link_cookie"; eq "$status" 200 "the link's session"
login "{\"code\": \"$code\"}"; eq "$status" 401 "the link, twice"
[ -z "$(header Set-Cookie)" ] || fail "a used link got a cookie"
login "{\"code\": \"rpl_$(openssl rand -hex 32)\"}"; eq "$status" 401 "a made-up link"
# A tenant's admin may make one for its own tenant only; a reader none.
expect 0 cli token create --tenant "$acme" --role reader; acme_reader=$(cat "$d/out")
req POST /api/v1/console/links -H "Authorization: Bearer $acme_reader" "${j[@]}" --data-binary '{}'
eq "$status" 403 "a reader makes no link"
# A link made with the cookie (and its CSRF value): for a tenant, whose new token ends with the
# session. Not for the session's own token: its session would outlive this one, and a session
# could renew itself for ever without the token's secret.
sck=(-H "Cookie: __Host-rampart_session=$sys_cookie" -H "X-CSRF-Token: $sys_csrf")
req POST /api/v1/console/links "${sck[@]}" "${j[@]}" --data-binary '{}'
eq "$status" 400 "a link for the session's own token, made in the session"
req POST /api/v1/console/links "${sck[@]}" "${j[@]}" --data-binary "{\"tenant\": \"$acme\"}"
eq "$status" 201 "a tenant's link made in a session"
code=$(jq -r .url "$d/body"); code=${code#*#code=}
login "{\"code\": \"$code\"}"; eq "$status" 200 "the session's link"
jq -e --argjson e "$sys_expires" '.expires <= $e' "$d/body" >/dev/null ||
  fail "a link's session outlives the session it was made in (ends by $sys_expires): $(cat "$d/body")"
req POST /api/v1/console/links "${sck[@]}" "${j[@]}" --data-binary "{\"tenant\": \"$acme\"}"
eq "$status" 201 "another link made in a session"
late_code=$(jq -r .url "$d/body"); late_code=${late_code#*#code=}
# A link made with a token that ends within the hour: the link, the token it makes and the session
# it opens all end by then, not 8 hours on.
expect 0 cli token create --tenant "$acme" --role admin --expires-in 1h; short=$(cat "$d/out")
short_end=$(($(date +%s) + 3600)) # (read after the token was made: its expiry is no later)
for body in "{\"tenant\": \"$acme\"}" '{}'; do
  req POST /api/v1/console/links -H "Authorization: Bearer $short" "${j[@]}" --data-binary "$body"
  eq "$status" 201 "a link made with a token ending within the hour ($body)"
  jq -e --argjson e $short_end '.expires <= $e' "$d/body" >/dev/null || fail "the short link: $(cat "$d/body")"
  made=$(jq -r .token "$d/body"); code=$(jq -r .url "$d/body"); code=${code#*#code=}
  login "{\"code\": \"$code\"}"; eq "$status" 200 "the short token's link"
  jq -e --argjson e $short_end '.expires <= $e' "$d/body" >/dev/null ||
    fail "a session past its link's token ($body): $(cat "$d/body"), the token ends by $short_end"
  max_age=$(header Set-Cookie | sed -n 's/.*Max-Age=\([0-9]*\).*/\1/p')
  [ -n "$max_age" ] && [ "$max_age" -le 3600 ] || fail "the short session's cookie: $(header Set-Cookie)"
  req GET "/api/v1/tenants/$acme/tokens" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")"
  jq -e --arg id "$made" --argjson e $short_end '.tokens[] | select(.id == $id) |
    .expires != null and (.expires | fromdateiso8601) <= $e' "$d/body" >/dev/null ||
    fail "the link's token outlives the token it was made with: $(jq -c --arg id "$made" '.tokens[] | select(.id == $id)' "$d/body")"
done
# Nor does a link outlive the token that made it: revoked, its links log no one in, a tenant's
# link (which logs in as a new admin token, not as its maker) as much as one for the token itself.
expect 0 cli token create --tenant "$acme" --role admin; maker=$(cat "$d/out")
req GET /api/v1/tokens/self -H "Authorization: Bearer $maker"; maker_id=$(jq -r .id "$d/body")
codes=()
for body in "{\"tenant\": \"$acme\"}" '{}'; do
  req POST /api/v1/console/links -H "Authorization: Bearer $maker" "${j[@]}" --data-binary "$body"
  eq "$status" 201 "a link ($body) made with a token revoked below"
  lc=$(jq -r .url "$d/body"); codes+=("${lc#*#code=}")
done
# A tenant's link used before: its session makes no tokens (they would outlive the maker), and
# ends with its maker (review r15web M2), its token with it.
req POST /api/v1/console/links -H "Authorization: Bearer $maker" "${j[@]}" --data-binary "{\"tenant\": \"$acme\"}"
eq "$status" 201 "a tenant's link used before its maker is revoked"
used_token=$(jq -r .token "$d/body"); lc=$(jq -r .url "$d/body")
login "{\"code\": \"${lc#*#code=}\"}"; eq "$status" 200 "the link used before its maker is revoked"
uck=(-H "Cookie: __Host-rampart_session=$cookie" -H "X-CSRF-Token: $csrf")
req POST "/api/v1/tenants/$acme/tokens" "${uck[@]}" "${j[@]}" --data-binary '{"role": "admin"}'
eq "$status" 403 "a token made in a link's session"
jq -e '.error == "link_token"' "$d/body" >/dev/null || fail "a token made in a link's session: $(cat "$d/body")"
req DELETE "/api/v1/tenants/$acme/tokens/$maker_id" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")"
eq "$status" 200 "revoke the links' maker"
for lc in "${codes[@]}"; do
  login "{\"code\": \"$lc\"}"; eq "$status" 401 "a link whose maker was revoked"
done
req GET "/api/v1/tenants/$acme" "${uck[@]}"; eq "$status" 401 "the session of a used link whose maker was revoked"
req GET "/api/v1/tenants/$acme/tokens?prefix=$used_token" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")"
eq "$status" 200 "the tenant's tokens"
jq -e '.tokens == []' "$d/body" >/dev/null || fail "a used link's token outlives its maker: $(cat "$d/body")"

# --- sessions end: DELETE ---------------------------------------------------------------------------
login "{\"token\": \"$(cat "$ADMIN_TOKEN")\"}"; gone=$cookie gone_csrf=$csrf
req DELETE /console/session -H "Cookie: __Host-rampart_session=$gone"; eq "$status" 403 "DELETE the session without CSRF"
req DELETE /console/session -H "Cookie: __Host-rampart_session=$gone" -H "X-CSRF-Token: $gone_csrf"
eq "$status" 204 "DELETE the session"
eq "$(header Set-Cookie)" "__Host-rampart_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0" "the cookie cleared"
req GET /api/v1/tenants -H "Cookie: __Host-rampart_session=$gone"; eq "$status" 401 "an ended session"

# --- the fleet page: real devices -----------------------------------------------------------------
# dev4 attests under the strict default policy (this machine's agents say debug is enabled):
# it fails. Then the policy allows it: dev1 and dev2 pass; dev2 is blocked; dev3 never attests.
for i in 1 2 3 4 5; do
  expect 0 "$AGENT" provision --state-dir "$d/dev$i" --rot soft; eval "dev$i=$(cat "$d/out")"
done
expect 0 cli device claim --tenant "$acme" "$dev1" "$dev2" "$dev3" "$dev4"
attest() { "$AGENT" attest --state-dir "$d/$1" --server "$SERVER_URL" --server-ca "$SERVER_CA" >"$d/out" 2>"$d/err"; }
attest dev4 && fail "dev4 passed under the strict policy"
# dev5 is another tenant's, and fails there too: counted there only.
expect 0 cli device claim --tenant "$globex" "$dev5"
attest dev5 && fail "dev5 passed under the strict policy"
# acme holds 4, its limit (--max-devices-per-tenant 4): one it holds may be claimed again, no new one.
new_dev=$(printf 'e%.0s' $(seq 64))
req POST "/api/v1/tenants/$acme/devices" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")" "${j[@]}" \
  --data-binary "{\"device_ids\": [\"$dev1\", \"$new_dev\"]}"
eq "$status" 409 "a claim past the tenant's device limit"
jq -e --arg d1 "$dev1" '.error == "device_limit" and .claimed == [$d1] and .refused == []' "$d/body" >/dev/null ||
  fail "a claim past the tenant's device limit: $(cat "$d/body")"
req GET "/api/v1/tenants/$acme/devices/$new_dev" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")"
eq "$status" 404 "the device refused by the limit"
expect 0 cli tenant policy --tenant "$acme" --allow-debug yes --require-components no
attest dev1 || { cat "$d/err"; fail "dev1 did not attest"; }
attest dev2 || { cat "$d/err"; fail "dev2 did not attest"; }
expect 0 cli device block --tenant "$acme" "$dev2"
req GET "/api/v1/tenants/$acme/fleet" -H "Cookie: __Host-rampart_session=$link_cookie"; eq "$status" 200 "the fleet"
jq -e '.devices == {"total": 4, "attested": 1, "cert_expiring": 0, "failed": 1, "blocked": 1,
  "quarantined": 0, "never_seen": 1} and (.versions | type) == "array"' "$d/body" >/dev/null ||
  fail "the fleet's counts: $(cat "$d/body")"
req GET "/api/v1/tenants/$globex/fleet" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")"
jq -e '.devices.total == 1 and .devices.failed == 1 and .devices.attested == 0' "$d/body" >/dev/null ||
  fail "another tenant's fleet: $(cat "$d/body")"
# A page of devices, in ID order, by state or by the start of an ID; without a query, all of them.
sorted=$(printf '%s\n' "$dev1" "$dev2" "$dev3" "$dev4" | sort | tr '\n' ' ')
ack=(-H "Cookie: __Host-rampart_session=$link_cookie")
req GET "/api/v1/tenants/$acme/devices?limit=3" "${ack[@]}"; eq "$status" 200 "a page of devices"
p1=$(jq -r '[.devices[].device_id] | join(" ")' "$d/body"); next=$(jq -r .next_after "$d/body")
eq "$next" "$(echo $sorted | cut -d' ' -f3)" "the next page's start"
req GET "/api/v1/tenants/$acme/devices?limit=3&after=$next" "${ack[@]}"
p2=$(jq -r '[.devices[].device_id] | join(" ")' "$d/body")
eq "$p1 $p2 " "$sorted" "two pages, every device once, in order"
body_has '.next_after == null'
for spec in blocked:$dev2 never_seen:$dev3 failed:$dev4 attested:$dev1; do
  req GET "/api/v1/tenants/$acme/devices?state=${spec%%:*}" "${ack[@]}"
  eq "$(jq -r '[.devices[].device_id] | join(" ")' "$d/body")" "${spec##*:}" "the ${spec%%:*} devices"
done
req GET "/api/v1/tenants/$acme/devices?prefix=${dev1:0:12}&limit=1000" "${ack[@]}"
eq "$(jq -r '.devices[0].device_id' "$d/body")" "$dev1" "devices by the start of an ID"
req GET "/api/v1/tenants/$acme/devices" "${ack[@]}"
body_has '(.devices | length) == 4 and (has("next_after") | not)'
for q in state=bogus limit=0 limit=1001 after=xyz prefix=XYZ other=1; do
  req GET "/api/v1/tenants/$acme/devices?$q" "${ack[@]}"; eq "$status" 400 "devices?$q"
done

now=$(date +%s)
req GET "/api/v1/tenants/$acme/attestations/histogram?since=$((now - 3600))&step=600" -H "Cookie: __Host-rampart_session=$link_cookie"
eq "$status" 200 "the histogram"
jq -e --argjson s $((now - 3600)) '.since == $s and .step == 600 and (.pass | length) == 7 and
  (.fail | length) == 7 and (.pass | add) == 2 and (.fail | add) == 1' "$d/body" >/dev/null ||
  fail "the histogram: $(cat "$d/body")"
req GET "/api/v1/tenants/$acme/attestations/histogram?since=0&step=1" -H "Cookie: __Host-rampart_session=$link_cookie"
eq "$status" 400 "a histogram of too many buckets"
req GET "/api/v1/tenants/$acme/attestations/histogram?since=$((now + 100))" -H "Cookie: __Host-rampart_session=$link_cookie"
eq "$status" 400 "a histogram from the future"

# --- a restart, eleven minutes on: sessions outlive it, the unused link has expired --------------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
# (--login-rate 0.001, --auth-fail-rate 0.001: a try comes back in 1000 s, so the bursts below
# are counted exactly however slow the machine)
SERVER_CLOCK=+11m RAMPART_SERVER=$bin start_server "$d/srv" --threads 2 --console-dir "$c" --login-rate 0.001 \
  --auth-fail-rate 0.001
req GET /api/v1/tenants -H "Cookie: __Host-rampart_session=$sys_cookie"; eq "$status" 200 "a session after a restart"
req GET /console/session -H "Cookie: __Host-rampart_session=$link_cookie"; eq "$status" 200 "the link's session after a restart"
login "{\"code\": \"$late_code\"}"; eq "$status" 401 "a link eleven minutes old"

# --- what another site's page can send costs the address nothing ---------------------------------
# A page anywhere can post a simple request (text/plain, no preflight) to the login route: it is
# refused before any credential is checked, and spends none of the address's budget of failed
# logins (found by review: 10 of these locked the operator out). Nor does a browser's cross-site
# post, whatever its type. The operator's right token still logs in (then the burst below counts
# from the one try the old link spent, as before).
printf '{"token": "rpt_%s"}' "$(openssl rand -hex 32)" >"$d/login.json"
for i in $(seq 20); do
  req POST /console/session --data-binary "@$d/login.json" -H 'Content-Type: text/plain'
  eq "$status" 415 "a text/plain login ($i), as another site's page posts it"
done
req POST /console/session --data-binary "@$d/login.json" -H 'Content-Type: application/json' -H 'Sec-Fetch-Site: cross-site'
eq "$status" 403 "a login from another site's page (Sec-Fetch-Site)"
login "{\"token\": \"$(cat "$ADMIN_TOKEN")\"}"; eq "$status" 200 "the right token, after 21 refused posts"

# --- failed logins: a bucket of their own (bursts of 10) -------------------------------------------
# A burst of wrong tokens is refused with 429 and Retry-After past the burst (one try is spent
# above), right or wrong from then on; attestation, another bucket, is served as before.
n=0
while [ $n -lt 12 ]; do
  n=$((n + 1))
  login "{\"token\": \"rpt_$(openssl rand -hex 32)\"}"
  [ "$status" = 401 ] || break
done
eq "$status" 429 "wrong token $n of a burst"
eq "$n" 10 "the wrong token refused: the bucket holds 10, one spent on the old link"
body_has '.error == "rate_limited"'
eq "$(header Retry-After)" 1000 "a refused login's Retry-After (the time a try takes to come back)"
login "{\"token\": \"$(cat "$ADMIN_TOKEN")\"}"; eq "$status" 429 "a right token, while the address is over"
printf '{"device_id":"%s"}' "$dev1" >"$d/nreq.json"
for i in 1 2 3; do
  req POST /api/v1/attest/nonce -H 'Content-Type: application/json' --data-binary "@$d/nreq.json"
  eq "$status" 200 "an attestation nonce ($i) while logins are refused"
done
req GET /metrics
grep -q '^rampart_rate_limited_total{limit="login"} [1-9]' "$d/body" || fail "the login limit's count: $(grep rate_limited "$d/body")"
grep -q '^rampart_rate_limited_total{limit="address"} 0$' "$d/body" || fail "logins counted as attestation: $(grep rate_limited "$d/body")"

# --- wrong bearer tokens: a bucket of their own (bursts of 20) ---------------------------------------
# Guessing tokens on the API: past 20 wrong ones the address's token requests are answered 429,
# unchecked (a right guess would be told from a wrong one), with Retry-After; a good token from
# another address is served as before, and so is a session (no token checked).
n=0
while [ $n -lt 22 ]; do
  n=$((n + 1))
  req GET /api/v1/tenants -H "Authorization: Bearer rpt_$(openssl rand -hex 32)"
  [ "$status" = 401 ] || break
done
eq "$status" 429 "wrong bearer token $n of a burst"
eq "$n" 21 "the wrong bearer token refused: the bucket holds 20"
body_has '.error == "rate_limited"'
eq "$(header Retry-After)" 1000 "a refused token's Retry-After (the time a try takes to come back)"
req GET /api/v1/tenants -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")"; eq "$status" 429 "a right token, from the address over"
status=$(curl -s -o "$d/body" -w '%{http_code}' --interface 127.0.0.2 --cacert "$SERVER_CA" \
  -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")" "$SERVER_URL/api/v1/tenants")
eq "$status" 200 "a right token from another address"
req GET /api/v1/tenants -H "Cookie: __Host-rampart_session=$sys_cookie"; eq "$status" 200 "a session, from the address over"
req GET /metrics
grep -q '^rampart_rate_limited_total{limit="token"} 2$' "$d/body" || fail "the token limit's count: $(grep rate_limited "$d/body")"

# --- without openat2 (an old kernel, or a filter that does not know it: systemd-nspawn's) ---------
# The files are opened one component at a time, following no link: the same answers.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "${NO_OPENAT2:?set NO_OPENAT2}" "$bin" >"$d/no-openat2-server"
chmod +x "$d/no-openat2-server"
RAMPART_SERVER=$d/no-openat2-server start_server "$d/srv" --threads 2 --console-dir "$c"
req GET /console/vendor/lib.mjs; eq "$status" 200 "a module in a folder, without openat2"
eq "$(cat "$d/body")" 'export const x = 1;' "its body, without openat2"
req GET /console/login; eq "$status" 200 "the page, without openat2"
refused_out " (without openat2)"
req GET /console/pipe.js --max-time 20; eq "$status" 404 "a named pipe, without openat2"
grep -q "no openat2() here" "$d/srv.log" || fail "the fallback was not taken (no log line)"
done_ok
