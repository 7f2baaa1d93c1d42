#!/usr/bin/env bash
# End to end: operators' names through the real server, CLI and agent. Look-alikes collide in
# every scope (whole-script capitals: Cyrillic "АСМЕ" beside "acme"; capital I for l); a name
# given in other bytes (NFD) finds what was made (paths and JSON bodies); a tenant made before the
# name rule, with a 100-character name, is named at start and keeps working: its CA, its CRL and
# its devices' attestations.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
export LC_ALL=C.UTF-8 # (printf '\u...' writes UTF-8 only in a UTF-8 locale)
d=$E2E_DIR
server_bin=$RAMPART_SERVER
start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN

# --- look-alikes: each pair's second name is refused beside its first ----------------------------
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 1 "$RAMPART" tenant create "$(printf '\u0410\u0421\u041c\u0415')"; err_has "looks the same" # АСМЕ
expect 0 "$RAMPART" tenant create acne   # a name that only resembles one is another
expect 0 "$RAMPART" product create --tenant "$acme" Thermostat
pairs=(
  "BETA" "$(printf '\u0412\u0415\u0422\u0410')"  # Cyrillic ВЕТА
  "HOME" "$(printf '\u041d\u041e\u041c\u0415')"  # Cyrillic НОМЕ
  "KEY" "$(printf '\u039a\u0395\u03a5')"          # Greek ΚΕΥ
  "MAX" "$(printf '\u041c\u0410\u0425')"          # Cyrillic МАХ
  "Alice" "AIice"                                 # capital I for l
  "login" "Iogin"
  "P0RT" "PORT"                                   # zero for O
)
for ((i = 0; i < ${#pairs[@]}; i += 2)); do
  first=${pairs[i]} second=${pairs[i + 1]}
  expect 0 "$RAMPART" tenant create "$first"
  expect 1 "$RAMPART" tenant create "$second"; err_has "looks the same"
  expect 0 "$RAMPART" device-group create --tenant "$acme" --product Thermostat "$second"
  expect 1 "$RAMPART" device-group create --tenant "$acme" --product Thermostat "$first"
  err_has "group of that name"
done
expect 0 "$RAMPART" device-group create --tenant "$acme" --product Thermostat delta   # not BETA

# --- a name in other bytes finds what was made --------------------------------------------------
nfd=$(printf 'Caf\u0065\u0301')   # "Café" with e and a combining acute: kept in NFC
expect 0 "$RAMPART" product create --tenant "$acme" "$nfd" --output json
jq -e '.name == "Caf\u00e9"' "$d/out" >/dev/null || fail "product name not in NFC: $(cat "$d/out")"
expect 0 "$RAMPART" device-group create --tenant "$acme" --product "$nfd" "$(printf 'e\u0301t\u0065\u0301')"
expect 0 "$RAMPART" device-group list --tenant "$acme" --product "$(printf 'Caf\u00e9')" --output json
jq -e '.groups | map(.name) | index("\u00e9t\u00e9") != null' "$d/out" >/dev/null ||
  fail "group under the NFD product: $(cat "$d/out")"
# in a body too: the deployment's product and group are found (its image is what is missing)
printf '{"product":"Cafe\\u0301","group":"e\\u0301te\\u0301","images":["%064d"]}' 0 >"$d/deploy.json"
http POST "/api/v1/tenants/$acme/deployments" "$ADMIN_TOKEN" "$d/deploy.json"
is_status 404; body_has '.message | test("no image")'
printf '{"product":"Cafe\\u0301","group":"nothing","images":["%064d"]}' 0 >"$d/deploy.json"
http POST "/api/v1/tenants/$acme/deployments" "$ADMIN_TOKEN" "$d/deploy.json"
is_status 404; body_has '.message | test("no such device group")'

# --- a tenant made before the name rule -----------------------------------------------------------
# 100 characters, the 64th two bytes long: its CA's O holds the first 64 characters, cut whole.
long=$(printf 'a%.0s' $(seq 1 63))$(printf '\u00e9')$(printf 'b%.0s' $(seq 1 36))
legacy=t_$(openssl rand -hex 12)
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
# Beside it, a look-alike of the tenant BETA made before it was refused (no keys): both stay.
twin=t_$(openssl rand -hex 12)
sqlite3 "$d/srv/rampart.db" "INSERT INTO tenants (id, name, created) VALUES
  ('$legacy', '$long', strftime('%s', 'now')),
  ('$twin', '$(printf '\u0412\u0415\u0422\u0410')', strftime('%s', 'now'))"
RAMPART_SERVER=$server_bin start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL
grep -q "the tenant $legacy has a name from before today's rule.*at most 64 characters" "$d/srv.log" ||
  fail "no word at start about the tenant's name: $(cat "$d/srv.log")"
grep -q "the tenant $twin has a name that looks like another's" "$d/srv.log" ||
  fail "no word at start about the look-alike: $(cat "$d/srv.log")"
expect 0 "$RAMPART" tenant list --output json
jq -e --arg id "$twin" '.tenants | map(select(.id == $id)) | length == 1' "$d/out" >/dev/null ||
  fail "the look-alike made before is gone: $(cat "$d/out")"
jq -e --arg id "$legacy" --arg name "$long" '.tenants | map(select(.id == $id and .name == $name)) | length == 1' \
  "$d/out" >/dev/null || fail "the old tenant is not listed: $(cat "$d/out")"
http GET "/api/v1/tenants/$legacy/ca" "$ADMIN_TOKEN"; is_status 200
cp "$d/body" "$d/legacy-ca.pem"
subject=$(openssl x509 -in "$d/legacy-ca.pem" -noout -subject -nameopt RFC2253,-esc_msb)
case "$subject" in
  *"O=${long:0:64}") ;;
  *) fail "the old tenant's CA subject: $subject" ;;
esac
http GET "/api/v1/tenants/$legacy/crl?format=pem" -; is_status 200
openssl crl -in "$d/body" -noout -CAfile "$d/legacy-ca.pem" 2>&1 | grep -q "verify OK" ||
  fail "the old tenant's CRL does not verify"
expect 0 "$RAMPART" tenant policy --tenant "$legacy" --allow-debug yes --require-components no
expect 0 "$AGENT" provision --state-dir "$d/dev" --rot soft
dev=$("$AGENT" id --state-dir "$d/dev" 2>/dev/null | sed -n 's/^device id: //p')
expect 0 "$RAMPART" device claim --tenant "$legacy" "$dev"
expect 0 "$AGENT" attest --state-dir "$d/dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"
out_has "attested: device"
openssl verify -CAfile "$d/legacy-ca.pem" "$d/dev/agent/device.crt" >/dev/null ||
  fail "the old tenant's device certificate does not verify"
# its name is kept whole, and no new tenant may take it or look like it
expect 1 "$RAMPART" tenant create "$long"; err_has "at most 64 characters"
done_ok
