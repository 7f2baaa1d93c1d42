#!/usr/bin/env bash
# End to end, the service's side of updates: image signing keys, uploads verified against them
# (chunked, resumable, content-addressed), products and their groups, assigning devices,
# deployments with a staged rollout, and each tenant kept to its own objects.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT to the rampart-agent binary}"
d=$E2E_DIR

server_bin=$RAMPART_SERVER
start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" tenant create globex; globex=$(cat "$d/out")
# A device attests before anything is installed, and a test machine may have no kernel lockdown
# (debug "enabled"): the policies allow both (the default refuses them).
for t in "$acme" "$globex"; do
  expect 0 "$RAMPART" tenant policy --tenant "$t" --allow-debug yes --require-components no
done
for spec in acme:admin acme:contributor acme:reader globex:admin; do
  t=${spec%%:*} role=${spec##*:} tid=$acme
  [ "$t" = globex ] && tid=$globex
  expect 0 "$RAMPART" token create --tenant "$tid" --role "$role"
  cp "$d/out" "$d/$t-$role.token"
done
as() { local who=$1; shift; RAMPART_TOKEN_FILE=$d/$who.token "$@"; }

# --- image signing keys ------------------------------------------------------------------------
for k in k1:ecdsa-p256 k2:ed25519 rogue:ecdsa-p256; do
  expect 0 "$RAMPART" key generate --type "${k##*:}" --out "$d/${k%%:*}.key"
  expect 0 "$RAMPART" key public --key "$d/${k%%:*}.key" --out "$d/${k%%:*}.pub"
done
expect 1 as acme-contributor "$RAMPART" image-key add --tenant "$acme" --key "$d/k1.pub" --name release
err_has "needs the admin role"
expect 0 as acme-admin "$RAMPART" image-key add --tenant "$acme" --key "$d/k1.pub" --name release
grep -q '^i_[0-9a-f]\{24\}$' "$d/out" || fail "image key ID"
k1_id=$(cat "$d/out")
expect 0 as acme-admin "$RAMPART" image-key add --tenant "$acme" --key "$d/k2.pub" --name release-ed
expect 1 as acme-admin "$RAMPART" image-key add --tenant "$acme" --key "$d/k1.pub" --name again
err_has "the tenant has this key"
expect 1 as acme-admin "$RAMPART" image-key add --tenant "$acme" --key "$d/rogue.pub" --name release
err_has "a key of that name"
expect 1 as acme-admin "$RAMPART" image-key add --tenant "$acme" --key "$d/rogue.key" --name priv
err_has "must be a PEM public key"
expect 2 "$RAMPART" image-key add --tenant "$acme" --key "$d/k1.pub"
expect 0 as acme-reader "$RAMPART" image-key list --tenant "$acme" --output json
jq -e '.image_keys | map(.type) | sort == ["ecdsa-p256","ed25519"]' "$d/out" >/dev/null || fail "key list"
jq -e --arg h "$(openssl pkey -pubin -in "$d/k1.pub" -outform DER | sha256sum | cut -c1-64)" \
  '.image_keys | map(.keyhash) | index($h) != null' "$d/out" >/dev/null || fail "keyhash is SHA-256 of the SPKI"

# --- uploads: verified, content-addressed, immutable ------------------------------------------
head -c 200000 /dev/urandom >"$d/app.bin"
expect 0 "$RAMPART" image sign --key "$d/k1.key" --version 1.1.0 --security-counter 3 --type app "$d/app.bin" "$d/app-1.1.0.img"
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app "$d/app-1.1.0.img"
app11=$(cat "$d/out")
eq "$app11" "$(sha256sum "$d/app-1.1.0.img" | cut -c1-64)" "an image's ID is the SHA-256 of its bytes"
cmp "$d/app-1.1.0.img" "$d/srv/images/$app11" || fail "the stored image differs"
expect 0 as acme-reader "$RAMPART" image list --tenant "$acme" --output json
jq -e --arg id "$app11" --arg k "$k1_id" '.images[] | select(.id == $id) | .component == "app" and
  .version == "1.1.0+0" and .security_counter == 3 and .type == "app" and .key_id == $k' "$d/out" >/dev/null \
  || fail "image record"
# an upload's answer warns of a security counter a TPM cannot hold (still accepted), and says
# nothing of one it can
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app --output json "$d/app-1.1.0.img"
jq -e '.warnings == []' "$d/out" >/dev/null || fail "warnings: $(cat "$d/out")"
expect 0 "$RAMPART" image sign --key "$d/k1.key" --version 1.1.1 --security-counter 65 --type app "$d/app.bin" "$d/app-big.img"
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app "$d/app-big.img"
err_has "app-big.img: security counter 65 is more than a TPM root of trust can hold (64)"
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app --output json "$d/app-big.img"
jq -e '.warnings | length == 1 and (.[0] | contains("more than a TPM root of trust can hold (64)"))' "$d/out" >/dev/null \
  || fail "warnings: $(cat "$d/out")"
# the same bytes again: the same image; as another component: refused
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app "$d/app-1.1.0.img"
eq "$(cat "$d/out")" "$app11" "re-upload"
expect 1 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component other "$d/app-1.1.0.img"
err_has "was uploaded as component app"
# Ed25519, by the tenant's second key; the default component is the file's name up to a dot
expect 0 "$RAMPART" image sign --key "$d/k2.key" --version 2.0.0 --type system "$d/app.bin" "$d/system.img"
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" "$d/system.img"
sys=$(cat "$d/out")
expect 0 as acme-reader "$RAMPART" image list --tenant "$acme" --output json
jq -e --arg id "$sys" '.images[] | select(.id == $id) | .component == "system"' "$d/out" >/dev/null || fail "default component"
# refused: a key the tenant does not have, a tampered image, bytes after the TLVs, not an image
expect 0 "$RAMPART" image sign --key "$d/rogue.key" --version 9.0.0 "$d/app.bin" "$d/rogue.img"
expect 1 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app "$d/rogue.img"
err_has "does not verify against the tenant's image keys"
cp "$d/app-1.1.0.img" "$d/tampered.img"; flip "$d/tampered.img" 5000
expect 1 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app "$d/tampered.img"
err_has "does not verify"
{ cat "$d/app-1.1.0.img"; printf 'trailing'; } >"$d/trailing.img"
expect 1 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app "$d/trailing.img"
err_has "bytes follow the image's TLVs"
expect 1 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component app "$d/app.bin"
err_has "does not verify"
expect 1 as acme-reader "$RAMPART" image upload --tenant "$acme" --component app "$d/app-1.1.0.img"
err_has "needs the contributor role"
# a tenant without image keys accepts no image
expect 1 as globex-admin "$RAMPART" image upload --tenant "$globex" --component app "$d/app-1.1.0.img"
err_has "the tenant has no image keys"

# a large image goes in many chunks and arrives whole
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$d/big.bin"
expect 0 "$RAMPART" image sign --key "$d/k1.key" --version 1.0.0 --type firmware "$d/big.bin" "$d/big.img"
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component mcu "$d/big.img"
big=$(cat "$d/out")
cmp "$d/big.img" "$d/srv/images/$big" || fail "the large image differs"

# --- the upload protocol: gaps, retries, resumption, limits -----------------------------------
expect 0 "$RAMPART" image sign --key "$d/k1.key" --version 1.1.1 --type app "$d/app.bin" "$d/app-1.1.1.img"
size=$(stat -c %s "$d/app-1.1.1.img")
printf '{"size": %d}' "$size" >"$d/req.json"
http POST "/api/v1/tenants/$acme/uploads" "$d/acme-contributor.token" "$d/req.json"; is_status 201
body_has '.received == 0 and .chunk_max == 1048576'
up=$(jq -r .id "$d/body")
head -c 100000 "$d/app-1.1.1.img" >"$d/c1"
tail -c +100001 "$d/app-1.1.1.img" >"$d/c2"
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=100000" "$d/acme-contributor.token" "$d/c2" application/octet-stream
is_status 409; body_has '.error == "gap" and .received == 0'
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=0&offset=100000" "$d/acme-contributor.token" "$d/c1" application/octet-stream
is_status 400; body_has '.error == "invalid"'   # which offset? none is taken
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=0" "$d/acme-contributor.token" "$d/c1" application/octet-stream
is_status 200; body_has '.received == 100000'
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=0" "$d/acme-contributor.token" "$d/c1" application/octet-stream
is_status 200; body_has '.received == 100000'   # a retried chunk changes nothing
http GET "/api/v1/tenants/$acme/uploads/$up" "$d/acme-contributor.token"; is_status 200; body_has '.received == 100000'
printf '{"upload": "%s", "component": "app"}' "$up" >"$d/commit.json"
http POST "/api/v1/tenants/$acme/images" "$d/acme-contributor.token" "$d/commit.json"
is_status 409; body_has '.error == "incomplete"'
{ cat "$d/c2"; printf 'x'; } >"$d/c2x"
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=100000" "$d/acme-contributor.token" "$d/c2x" application/octet-stream
is_status 400; body_has '.error == "too_long"'
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=100000" "$d/acme-contributor.token" "$d/c2" application/octet-stream
is_status 200; body_has ".received == $size"
http GET "/api/v1/tenants/$acme/uploads/$up" "$d/globex-admin.token"; is_status 404   # another tenant's
http POST "/api/v1/tenants/$acme/images" "$d/acme-contributor.token" "$d/commit.json"; is_status 201
body_has ".id == \"$(sha256sum "$d/app-1.1.1.img" | cut -c1-64)\" and .version == \"1.1.1+0\""
app111=$(jq -r .id "$d/body")
# the upload names the image it became, and the same POST again answers it (issue 12)
http GET "/api/v1/tenants/$acme/uploads/$up" "$d/acme-contributor.token"; is_status 200
body_has ".image == \"$app111\""
http POST "/api/v1/tenants/$acme/images" "$d/acme-contributor.token" "$d/commit.json"; is_status 200
body_has ".id == \"$app111\""
[ -z "$(ls -A "$d/srv/uploads")" ] || fail "an upload's file was left behind"

# --- app trees: the manifest checked at upload (read, never extracted); legacy apps still pass ---
# upload_raw IMAGE COMPONENT: the upload protocol by hand, so that the status and error are seen.
upload_raw() {
  printf '{"size": %d}' "$(stat -c %s "$1")" >"$d/req.json"
  http POST "/api/v1/tenants/$acme/uploads" "$d/acme-contributor.token" "$d/req.json"; is_status 201
  local id; id=$(jq -r .id "$d/body")
  http PUT "/api/v1/tenants/$acme/uploads/$id?offset=0" "$d/acme-contributor.token" "$1" application/octet-stream
  is_status 200
  printf '{"upload": "%s", "component": "%s"}' "$id" "$2" >"$d/commit.json"
  http POST "/api/v1/tenants/$acme/images" "$d/acme-contributor.token" "$d/commit.json"
}
images_now() { as acme-reader "$RAMPART" image list --tenant "$acme" --output json >"$d/imgs" && jq '.images | length' "$d/imgs"; }
mkdir -p "$d/sensor/bin"
printf '{"SchemaVersion": 1, "Name": "Sensor", "ComponentId": "sensor", "EntryPoint": "bin/sensor",
  "AllowedConnections": ["broker.example:8883"], "Memory": {"LimitKB": 4096}}' >"$d/sensor/app_manifest.json"
printf '#!/bin/sh\necho ready >&3\nexec sleep 3600\n' >"$d/sensor/bin/sensor"; chmod 755 "$d/sensor/bin/sensor"
expect 0 "$RAMPART" image sign --type app --key "$d/k1.key" --version 1.0.0 "$d/sensor" "$d/sensor.img"
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component sensor "$d/sensor.img"
sensor=$(cat "$d/out")
cmp "$d/sensor.img" "$d/srv/images/$sensor" || fail "the stored tree image differs"
[ -z "$(find "$d/srv" -name sensor -o -name app_manifest.json)" ] || fail "the service extracted the tree"
# the same tree uploaded as another component: refused (422), nothing kept
n_before=$(images_now)
upload_raw "$d/sensor.img" other
is_status 422; body_has '.error == "component_mismatch"'
body_has '.message == "the app'"'"'s manifest says ComponentId sensor, the upload is for component other"'
# a tree whose manifest is refused: packed by hand (the CLI would not pack it), signed as a file
mkdir -p "$d/badapp/bin"; cp "$d/sensor/bin/sensor" "$d/badapp/bin/"
printf '{"SchemaVersion": 1, "Name": "Bad", "ComponentId": "sensor", "EntryPoint": "bin/sensor",
  "MutableStorage": {"SizKB": 64}}' >"$d/badapp/app_manifest.json"
tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@0 --no-recursion -C "$d/badapp" \
  -cf "$d/badapp.tar" app_manifest.json bin bin/sensor
expect 1 "$RAMPART" image sign --type app --key "$d/k1.key" --version 1.0.1 "$d/badapp.tar" "$d/badapp.img"
err_has "MutableStorage.SizKB: unknown key"; [ ! -e "$d/badapp.img" ] || fail "a refused tree was signed"
# signed by another tool (no check of the tree), it is still refused by app check and the upload
"$SIGN_UNCHECKED" "$d/k1.key" 1.0.1 "$d/badapp.tar" "$d/badapp.img" || fail "sign-unchecked"
expect 1 "$RAMPART" app check "$d/badapp.img"; err_has "MutableStorage.SizKB: unknown key"
upload_raw "$d/badapp.img" sensor
is_status 422; body_has '.error == "invalid_manifest"'
body_has '.message == "MutableStorage.SizKB: unknown key (MutableStorage takes only SizeKB)"'
expect 1 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component sensor "$d/badapp.img"
err_has "MutableStorage.SizKB: unknown key"
eq "$(images_now)" "$n_before" "refused app images were not kept"
[ -z "$(ls -A "$d/srv/uploads")" ] || fail "a refused app upload's file was left behind"
[ ! -e "$d/srv/images/$(sha256sum "$d/badapp.img" | cut -c1-64)" ] || fail "a refused app image was stored"
# a valid manifest, but a tree the device's extractor refuses (review r15tool M2): an entry that
# climbs out, and an EntryPoint missing from the tree; refused at upload with the reason (422)
mkdir -p "$d/esc/bin"; cp "$d/sensor/app_manifest.json" "$d/esc/"; printf 'x' >"$d/esc/bin/other"
tar --format=ustar --no-recursion -C "$d/esc" -cf "$d/esc.tar" app_manifest.json bin bin/other
"$SIGN_UNCHECKED" "$d/k1.key" 1.0.2 "$d/esc.tar" "$d/esc.img" || fail "sign-unchecked"
expect 1 "$RAMPART" app check "$d/esc.img"; err_has "EntryPoint bin/sensor: not in the tree"
upload_raw "$d/esc.img" sensor
is_status 422; body_has '.error == "invalid_manifest"'
body_has '.message == "EntryPoint bin/sensor: not in the tree"'
cp "$d/sensor/bin/sensor" "$d/esc/bin/"
tar --format=ustar --no-recursion -P -C "$d/esc" --transform 's|^bin/other$|../escape|' \
  -cf "$d/esc2.tar" app_manifest.json bin bin/sensor bin/other
"$SIGN_UNCHECKED" "$d/k1.key" 1.0.3 "$d/esc2.tar" "$d/esc2.img" || fail "sign-unchecked"
upload_raw "$d/esc2.img" sensor
is_status 422; body_has '.error == "invalid_manifest"'; body_has '.message | startswith("../escape: not a clean")'
# a tar that is not a tree (no manifest first) is refused, not taken for a single file (r16 M1)
tar -C "$d/esc" -cf "$d/notree.tar" bin
"$SIGN_UNCHECKED" "$d/k1.key" 1.0.4 "$d/notree.tar" "$d/notree.img" || fail "sign-unchecked"
upload_raw "$d/notree.img" sensor
is_status 422; body_has '.message == "not an app tree: its first entry is bin, not the file app_manifest.json"'
eq "$(images_now)" "$n_before" "refused trees were not kept"
# a legacy single-file app (no manifest) is still accepted, as app-1.1.0.img was above; and a
# firmware image whose payload happens to be a tree is not an app: no manifest check
expect 0 "$RAMPART" image sign --type app --key "$d/k1.key" --version 1.0.0 "$d/sensor/bin/sensor" "$d/legacy.img"
upload_raw "$d/legacy.img" legacy; is_status 201
expect 0 "$RAMPART" image sign --type firmware --key "$d/k1.key" --version 1.0.0 "$d/badapp.tar" "$d/fwtar.img"
upload_raw "$d/fwtar.img" mcu2; is_status 201
printf '{"size": %d}' $((128 * 1024 * 1024 + 1)) >"$d/req.json"
http POST "/api/v1/tenants/$acme/uploads" "$d/acme-contributor.token" "$d/req.json"; is_status 413
printf '{"size": 0}' >"$d/req.json"
http POST "/api/v1/tenants/$acme/uploads" "$d/acme-contributor.token" "$d/req.json"; is_status 400
printf '{"size": 4000000}' >"$d/req.json"
http POST "/api/v1/tenants/$acme/uploads" "$d/acme-contributor.token" "$d/req.json"; is_status 201
up=$(jq -r .id "$d/body")
head -c $((1024 * 1024 + 1)) /dev/zero >"$d/toobig"
http PUT "/api/v1/tenants/$acme/uploads/$up?offset=0" "$d/acme-contributor.token" "$d/toobig" application/octet-stream
is_status 413
http PUT "/api/v1/tenants/$acme/uploads/$up" "$d/acme-contributor.token" "$d/c1" application/octet-stream
is_status 400; body_has '.error == "invalid"'
# other requests still take at most 64 KiB
head -c 70000 /dev/zero | tr '\0' ' ' >"$d/big.json"
http POST "/api/v1/tenants/$acme/products" "$d/acme-admin.token" "$d/big.json"; is_status 413
# another tenant's images are not there
http GET "/api/v1/tenants/$acme/images/$app11" "$d/globex-admin.token"; is_status 404
http GET "/api/v1/tenants/$globex/images/$app11" "$d/globex-admin.token"; is_status 404
http GET "/api/v1/tenants/$acme/images/$app11" -; is_status 401

# --- products, groups, membership --------------------------------------------------------------
expect 0 as acme-contributor "$RAMPART" product create --tenant "$acme" Thermostat
prod=$(cat "$d/out")
expect 1 as acme-contributor "$RAMPART" product create --tenant "$acme" Thermostat; err_has "product of that name"
expect 1 as acme-reader "$RAMPART" product create --tenant "$acme" Other; err_has "needs the contributor role"
expect 0 as acme-reader "$RAMPART" device-group list --tenant "$acme" --product Thermostat --output json
jq -e '.groups | map([.name, .allow_unknown_images]) == [["Development",true],["Field Test",false],["Production",false]]' \
  "$d/out" >/dev/null || fail "default groups"
expect 0 as acme-contributor "$RAMPART" device-group create --tenant "$acme" --product "$prod" Canary
canary=$(cat "$d/out")
expect 1 as acme-contributor "$RAMPART" device-group create --tenant "$acme" --product "$prod" Canary
err_has "group of that name"
expect 1 as acme-contributor "$RAMPART" device-group create --tenant "$acme" --product "$prod" Lab --allow-unknown-images
err_has "needs the admin role"
expect 0 as acme-admin "$RAMPART" device-group create --tenant "$acme" --product "$prod" Lab --allow-unknown-images
expect 1 as globex-admin "$RAMPART" device-group list --tenant "$globex" --product "$prod"; err_has "no such product"

ids=()
for i in $(seq 1 12); do
  expect 0 "$AGENT" provision --state-dir "$d/dev$i" --rot soft
  ids+=("$(tail -n1 "$d/out")")
done
expect 0 "$AGENT" provision --state-dir "$d/gdev" --rot soft; gdev=$(tail -n1 "$d/out")
expect 0 "$RAMPART" device claim --tenant "$acme" "${ids[@]}"
expect 0 "$RAMPART" device claim --tenant "$globex" "$gdev"
expect 0 as acme-contributor "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "${ids[@]:0:10}"
out_lines 10
expect 0 as acme-contributor "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Production "${ids[@]:10:2}"
# another tenant's device, or one nobody claimed, cannot be put in a group
expect 1 as acme-contributor "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Production "$gdev"
err_has "not this tenant's"
expect 1 as acme-contributor "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Production \
  0000000000000000000000000000000000000000000000000000000000000000
expect 0 as acme-reader "$RAMPART" device-group list --tenant "$acme" --product Thermostat --output json
jq -e '.groups | map([.name, .devices]) == [["Development",0],["Field Test",10],["Production",2],["Canary",0],["Lab",0]]' \
  "$d/out" >/dev/null || fail "group sizes"
# moving a device takes it out of its old group
expect 0 as acme-contributor "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Canary "${ids[11]}"
http GET "/api/v1/tenants/$acme/products/Thermostat/groups/Production/devices" "$d/acme-reader.token"
is_status 200; body_has ".devices == [\"${ids[10]}\"]"
# a group's devices in pages (ID order, a prefix of the ID: an index range), walked by next_after
http GET "/api/v1/tenants/$acme/products/Thermostat/groups/Field%20Test/devices" "$d/acme-reader.token"
is_status 200; all=$(jq -c .devices "$d/body")
http GET "/api/v1/tenants/$acme/products/Thermostat/groups/Field%20Test/devices?limit=4" "$d/acme-reader.token"
is_status 200; body_has '(.devices | length) == 4 and .next_after == .devices[3]'
p1=$(jq -c .devices "$d/body"); next=$(jq -r .next_after "$d/body")
http GET "/api/v1/tenants/$acme/products/Thermostat/groups/Field%20Test/devices?limit=6&after=$next" "$d/acme-reader.token"
is_status 200; body_has '(.devices | length) == 6 and .next_after != null'
eq "$(jq -c --argjson a "$p1" '$a + .devices' "$d/body")" "$(jq -c 'sort' <<<"$all")" "the group's pages"
next=$(jq -r .next_after "$d/body")
http GET "/api/v1/tenants/$acme/products/Thermostat/groups/Field%20Test/devices?after=$next" "$d/acme-reader.token"
is_status 200; body_has '.devices == [] and .next_after == null'
pre=${ids[3]:0:2}
http GET "/api/v1/tenants/$acme/products/Thermostat/groups/Field%20Test/devices?prefix=$pre" "$d/acme-reader.token"
is_status 200
eq "$(jq -c .devices "$d/body")" "$(jq -c --arg p "$pre" 'map(select(startswith($p))) | sort' <<<"$all")" "prefix $pre"
http GET "/api/v1/tenants/$acme/products/Thermostat/groups/Field%20Test/devices?limit=0" "$d/acme-reader.token"
is_status 400
# the system tokens page too
http GET "/api/v1/tokens?limit=1" "$ADMIN_TOKEN"; is_status 200
body_has '(.tokens | length) == 1 and .next_after == .tokens[0].id'
http GET "/api/v1/tokens?limit=1&after=$(jq -r .next_after "$d/body")" "$ADMIN_TOKEN"; is_status 200
body_has '.tokens == [] and .next_after == null'
http GET "/api/v1/tokens?other=1" "$ADMIN_TOKEN"; is_status 400

# --- deployments and staged rollout ------------------------------------------------------------
expect 0 as acme-contributor "$RAMPART" deployment create --tenant "$acme" --product Thermostat \
  --group "Field Test" --rollout 50 "$app11" "$big"
dep=$(cat "$d/out")
grep -q '^d_[0-9a-f]\{24\}$' "$d/out" || fail "deployment ID"
expect 0 as acme-reader "$RAMPART" deployment show --tenant "$acme" "$dep" --output json
cp "$d/out" "$d/dep.json"
# the rollout's choice, computed here independently: SHA-256("<deployment>/<device>") < 50%
want=0
for id in "${ids[@]:0:10}"; do
  v=$(printf '%s/%s' "$dep" "$id" | sha256sum | cut -c1-8)
  [ $((16#$v % 10000)) -lt 5000 ] && want=$((want + 1))
done
jq -e ".devices_in_group == 10 and .devices_selected == $want and .states.pending == $want and
  .progress == {\"selected\": $want, \"left\": 0, \"reached\": 0, \"installed\": 0, \"failed\": 0, \"rolled_back\": 0} and
  .group_name == \"Field Test\" and .product == \"Thermostat\" and
  (.devices | length) == $want and .rollout == 50 and (.images | map(.component) | sort) == [\"app\",\"mcu\"]" \
  "$d/dep.json" >/dev/null || fail "deployment show: $(cat "$d/dep.json")"
# a page of its devices: the counts stay the whole deployment's (counted in SQL)
http GET "/api/v1/tenants/$acme/deployments/$dep?limit=1" "$d/acme-reader.token"; is_status 200
jq -e --slurpfile dep "$d/dep.json" "(.devices | length) == ([$want, 1] | min) and
  .devices_selected == $want and .states.pending == $want and .progress.selected == $want and
  (.next_after == null) == ($want == 0) and
  .devices[0].device_id == (\$dep[0].devices | map(.device_id) | sort | .[0])" "$d/body" >/dev/null ||
  fail "a page of the deployment: $(head -c 500 "$d/body")"
expect 0 as acme-reader "$RAMPART" deployment show --tenant "$acme" "$dep"
out_has "rollout:     50% ($want of 10 devices in the group)"
out_has "pending      $want"
# a stable choice: asked again, the same devices
expect 0 as acme-reader "$RAMPART" deployment show --tenant "$acme" "$dep" --output json
eq "$(jq -c '.devices | map(.device_id) | sort' "$d/out")" "$(jq -c '.devices | map(.device_id) | sort' "$d/dep.json")" "stable rollout"
expect 0 as acme-contributor "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Production "$app111"
expect 0 as acme-reader "$RAMPART" deployment list --tenant "$acme" --output json
jq -e '.deployments | length == 2' "$d/out" >/dev/null || fail "deployment list"
# refused: two images of one component, an image the tenant lacks, a bad rollout, a reader
expect 1 as acme-contributor "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Production "$app11" "$app111"
err_has "two images for component app"
expect 1 as acme-contributor "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Production \
  "$(printf x | sha256sum | cut -c1-64)"
err_has "no image"
expect 2 as acme-contributor "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Production --rollout 101 "$app11"
expect 1 as acme-reader "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Production "$app11"
err_has "needs the contributor role"
expect 1 as acme-contributor "$RAMPART" deployment create --tenant "$acme" --product Thermostat --group Nowhere "$app11"
err_has "no such device group"
# another tenant sees none of it
expect 1 as globex-admin "$RAMPART" deployment show --tenant "$acme" "$dep"; err_has "no such tenant"
expect 1 as globex-admin "$RAMPART" deployment show --tenant "$globex" "$dep"; err_has "no such deployment"
expect 1 as globex-admin "$RAMPART" deployment create --tenant "$globex" --product Thermostat --group Production "$app11"
err_has "no such product"

# --- attestation appraises what a device runs against the tenant's images ---------------------
dev=$d/dev1
expect 0 "$AGENT" trust --state-dir "$dev" --image-key "$d/k2.pub"
attest() { "$AGENT" attest --state-dir "$dev" --server "$SERVER_URL" --server-ca "$SERVER_CA"; }
expect 0 attest                                    # runs nothing yet
expect 0 "$AGENT" install --state-dir "$dev" --component system "$d/system.img"
expect 0 attest                                    # runs an uploaded image
expect 0 "$RAMPART" image sign --key "$d/k2.key" --version 2.1.0 --type system "$d/app.bin" "$d/system-2.1.0.img"
expect 0 "$AGENT" install --state-dir "$dev" --component system "$d/system-2.1.0.img"
expect 1 attest; err_has "unknown_image"        # signed by the tenant's key, but never uploaded
expect 0 as acme-reader "$RAMPART" device show --tenant "$acme" "${ids[0]}" --output json
jq -e '.last_attestation.reason == "unknown_image"' "$d/out" >/dev/null || fail "recorded reason"
expect 1 as acme-contributor "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Development "${ids[0]}"
err_has "needs the admin role"                     # a group that allows unknown images: admin's
expect 0 as acme-admin "$RAMPART" device assign --tenant "$acme" --product Thermostat --group Development "${ids[0]}"
expect 0 attest                                    # a Development group allows it
expect 0 as acme-contributor "$RAMPART" device assign --tenant "$acme" --product Thermostat --group "Field Test" "${ids[0]}"
expect 0 as acme-contributor "$RAMPART" image upload --tenant "$acme" --component system "$d/system-2.1.0.img"
expect 0 attest                                    # uploaded now

# --- it all survives a restart ----------------------------------------------------------------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
RAMPART_SERVER=$server_bin start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL
expect 0 as acme-reader "$RAMPART" deployment show --tenant "$acme" "$dep" --output json
eq "$(jq -c '.devices | map(.device_id) | sort' "$d/out")" "$(jq -c '.devices | map(.device_id) | sort' "$d/dep.json")" "after a restart"
expect 0 as acme-reader "$RAMPART" image list --tenant "$acme" --output json
jq -e '.images | length == 9' "$d/out" >/dev/null || fail "images after a restart"

# --- the CLI reads a long list a page at a time (1000 a page), through next_after ------------------
http GET "/api/v1/tenants/$acme/devices" "$d/acme-reader.token"; is_status 200
had=$(jq -c '.devices | map(.device_id)' "$d/body")
mapfile -t many < <(printf 'aa%062x\n' $(seq 1 1001))
expect 0 "$RAMPART" device claim --tenant "$acme" "${many[@]:0:500}"
expect 0 "$RAMPART" device claim --tenant "$acme" "${many[@]:500}"
expect 0 as acme-reader "$RAMPART" device list --tenant "$acme" --output json
jq -e --argjson had "$had" --arg many "${many[*]}" '(has("next_after") | not) and
  (.devices | map(.device_id)) == ($had + ($many | split(" ")) | sort)' "$d/out" >/dev/null ||
  fail "device list over two pages: $(jq -c '.devices | length' "$d/out")"
# two requests, not one: the 2xx answers counted around it, less those of the counting alone
ok2xx() { http GET /metrics -; sed -n 's/^rampart_http_requests_total{code="2xx"} //p' "$d/body"; }
m0=$(ok2xx); m1=$(ok2xx)
expect 0 as acme-reader "$RAMPART" device list --tenant "$acme" --output json
m2=$(ok2xx)
eq "$(( (m2 - m1) - (m1 - m0) ))" 2 "the device list's pages"

# --- a tenant's open uploads are limited; abandoned ones are swept without a new upload ----------
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
RAMPART_SERVER=$server_bin start_server "$d/srv" --upload-max-open 2 --upload-max-bytes 2000000
export RAMPART_SERVER=$SERVER_URL
expect 0 "$RAMPART" tenant create initech; initech=$(cat "$d/out")   # none open yet
open_upload() { printf '{"size": %d}' "$1" >"$d/req.json"; http POST "/api/v1/tenants/$initech/uploads" "$ADMIN_TOKEN" "$d/req.json"; }
open_upload 1000; is_status 201; u1=$(jq -r .id "$d/body")
head -c 10 /dev/urandom >"$d/c10"
http PUT "/api/v1/tenants/$initech/uploads/$u1?offset=0" "$ADMIN_TOKEN" "$d/c10" application/octet-stream
is_status 200; [ -e "$d/srv/uploads/$u1" ] || fail "the chunk is not in the data directory"
# a chunk sent with chunked transfer coding (no Content-Length) and Expect: 100-continue is taken
status=$(curl -s -o "$d/body" -w '%{http_code}' --cacert "$SERVER_CA" -X PUT -H "Authorization: Bearer $(cat "$ADMIN_TOKEN")" \
  -H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' -H 'Content-Type: application/octet-stream' \
  --data-binary "@$d/c10" "$SERVER_URL/api/v1/tenants/$initech/uploads/$u1?offset=10")
is_status 200; body_has '.received == 20'
open_upload 1999001; is_status 413; body_has '.error == "uploads_too_large"'
open_upload 1000; is_status 201; u2=$(jq -r .id "$d/body")
open_upload 1; is_status 429; body_has '.error == "too_many_uploads" and (.message | test("--upload-max-open"))'
open_upload 1; is_status 429
printf '{"size": 1}' >"$d/req.json"
http POST "/api/v1/tenants/$globex/uploads" "$d/globex-admin.token" "$d/req.json"; is_status 201 # its own
# A day later (the server's clock moved on), nobody creating an upload: its loop sweeps them.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
SERVER_CLOCK=+25h RAMPART_SERVER=$server_bin start_server "$d/srv"
swept() { grep -Eq "uploads: [0-9]+ left unwritten for a day dropped" "$d/srv.log"; }
wait_until 30 swept || fail "the abandoned uploads were not swept: $(grep -i upload "$d/srv.log")"
http GET "/api/v1/tenants/$initech/uploads/$u1" "$ADMIN_TOKEN"; is_status 404
http GET "/api/v1/tenants/$initech/uploads/$u2" "$ADMIN_TOKEN"; is_status 404
[ ! -e "$d/srv/uploads/$u1" ] || fail "a swept upload's bytes were left behind"
done_ok
