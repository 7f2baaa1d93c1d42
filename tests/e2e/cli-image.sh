#!/usr/bin/env bash
# End to end: the real `rampart` binary on real files. Keys, signing, verifying, showing, every
# kind of refusal, MCUboot's own imgtool vectors, and an independent check of our signatures
# with the openssl command.
. "$(dirname "$0")/lib.sh"
: "${VECTORS:?set VECTORS to tests/vectors/mcuboot}"
d=$E2E_DIR

# --- usage and help ---------------------------------------------------------------------------
expect 0 "$RAMPART" --help;          out_has "image sign"
expect 0 "$RAMPART" --version;       out_has "rampart "; out_has "crypto: OpenSSL"
expect 0 "$RAMPART" image --help;    out_has "image verify"
expect 0 "$RAMPART" key --help;      out_has "key generate"
expect 0 "$RAMPART" image sign --help
expect 2 "$RAMPART"
expect 2 "$RAMPART" frobnicate;      err_has "unknown command"
expect 2 "$RAMPART" --bogus
expect 2 "$RAMPART" image
expect 2 "$RAMPART" image frob
expect 2 "$RAMPART" image verify "$VECTORS/payload.bin";  err_has "needs --key"
expect 2 "$RAMPART" image sign --key k --version 1.0.0 only-one-arg
expect 2 "$RAMPART" image sign --key k --version 1.2.300000 a b; err_has "bad --version"
expect 2 "$RAMPART" image sign --key k --version 1 --header-size 16 a b
expect 2 "$RAMPART" image sign --key k --version 1 --type firmwear a b
expect 2 "$RAMPART" image sign --key k --version 1 --security-counter -1 a b
expect 2 "$RAMPART" image show
expect 2 "$RAMPART" image show --output xml x
expect 2 "$RAMPART" key generate --type rsa --out "$d/x.pem"
expect 2 "$RAMPART" key generate --type ed25519

# --- keys --------------------------------------------------------------------------------------
for t in ecdsa-p256 ed25519; do
  expect 0 "$RAMPART" key generate --type $t --out "$d/$t.pem"
  out_has "$t key, key hash "
  eq "$(stat -c %a "$d/$t.pem")" 600 "private key mode"
  grep -q 'BEGIN PRIVATE KEY' "$d/$t.pem" || fail "not PKCS#8 PEM"
  # an existing key is never silently replaced
  cp "$d/$t.pem" "$d/$t.orig"
  expect 1 "$RAMPART" key generate --type $t --out "$d/$t.pem"; err_has "already exists"
  cmp -s "$d/$t.pem" "$d/$t.orig" || fail "existing key was modified"
  expect 0 "$RAMPART" key public --key "$d/$t.pem" --out "$d/$t.pub"
  openssl pkey -pubin -in "$d/$t.pub" -noout || fail "public key unreadable by openssl"
  ! grep -q PRIVATE "$d/$t.pub" || fail "public file holds a private key"
  expect 0 "$RAMPART" key public --key "$d/$t.pem"; out_has "BEGIN PUBLIC KEY"
done
expect 1 "$RAMPART" key public --key "$d/absent.pem"; err_has "not found"
expect 1 "$RAMPART" key public --key "$VECTORS/payload.bin"; err_has "unusable key"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa.pem" 2>/dev/null
expect 1 "$RAMPART" key public --key "$d/rsa.pem"; err_has "keys must be ecdsa-p256 or ed25519"

# --- a security counter a TPM cannot hold: signed, with a warning ----------------------------------
echo "counter payload" >"$d/small"
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/cnt.pem"
expect 0 "$RAMPART" image sign --key "$d/cnt.pem" --version 1.0.0 --security-counter 64 "$d/small" "$d/c64.img"
[ ! -s "$d/err" ] || fail "a counter a TPM holds warned: $(cat "$d/err")"
expect 0 "$RAMPART" image sign --key "$d/cnt.pem" --version 1.0.0 --security-counter 65 "$d/small" "$d/c65.img"
out_has "security counter 65"
err_has "warning: security counter 65 is more than a TPM root of trust can hold (64)"
expect 0 "$RAMPART" image sign --key "$d/cnt.pem" --version 0.1.0 --security-counter auto "$d/small" "$d/cauto.img"
out_has "security counter 65536"; err_has "more than a TPM root of trust can hold (64)"
err_has "--security-counter auto packs the version"
expect 0 "$RAMPART" image sign --key "$d/cnt.pem" --version 0.0.9 --security-counter auto "$d/small" "$d/cauto9.img"
[ ! -s "$d/err" ] || fail "auto within what a TPM holds warned: $(cat "$d/err")"
expect 0 "$RAMPART" image sign --key "$d/cnt.pem" --version 9.0.0 "$d/small" "$d/cnone.img"
[ ! -s "$d/err" ] || fail "an image without a counter warned: $(cat "$d/err")"

# --- sign, verify, show, both key types ----------------------------------------------------------
head -c 100000 /dev/urandom >"$d/payload"
for t in ecdsa-p256 ed25519; do
  img="$d/$t.img"
  expect 0 "$RAMPART" image sign --key "$d/$t.pem" --version 1.2.3+4 --security-counter 7 \
    --type app "$d/payload" "$img"
  out_has "valid: version 1.2.3+4, security counter 7, type app"
  expect 0 "$RAMPART" image verify --key "$d/$t.pub" "$img"
  out_lines 1; out_has "$img: valid: version 1.2.3+4"
  # a private key works as the trusted key too (its public half is used)
  expect 0 "$RAMPART" image verify --key "$d/$t.pem" "$img"
  # the payload is in the image, untouched, right after the 0x200 header area
  cmp -s <(tail -c +513 "$img" | head -c 100000) "$d/payload" || fail "payload not at 0x200"

  expect 0 "$RAMPART" image show --output json "$img"
  jq -e '.version == "1.2.3+4" and .security_counter == 7 and .type == "app"
         and .header_size == 512 and .payload_size == 100000 and .digest_matches == true
         and .magic == "0x96f3b83d" and (.tlvs | map(.name)) ==
             ["SEC_CNT","RAMPART_TYPE","SHA256","KEYHASH",
              (if "'$t'" == "ed25519" then "ED25519" else "ECDSA_SIG" end)]' \
     "$d/out" >/dev/null || fail "show json: $(cat "$d/out")"
  # the digest is SHA-256 over header, payload and protected TLVs, computed independently
  signed_len=$((512 + 100000 + $(jq .protected_tlv_size "$d/out")))
  want=$(head -c $signed_len "$img" | sha256sum | cut -d' ' -f1)
  eq "$(jq -r .digest "$d/out")" "$want" "digest"
  eq "$(jq -r '.tlvs[] | select(.name=="SHA256") | .value' "$d/out")" "$want" "SHA256 TLV"
  # the key hash is SHA-256 of the DER public key, as MCUboot computes it
  kh=$(openssl pkey -pubin -in "$d/$t.pub" -outform DER | sha256sum | cut -d' ' -f1)
  eq "$(jq -r '.tlvs[] | select(.name=="KEYHASH") | .value' "$d/out")" "$kh" "KEYHASH TLV"
  # the signature verifies with the openssl command: ECDSA over the digest, Ed25519 over it too
  sig=$(jq -r '.tlvs[] | select(.name=="ECDSA_SIG" or .name=="ED25519") | .value' "$d/out")
  printf '%s' "$sig" | xxd -r -p >"$d/sig"
  printf '%s' "$want" | xxd -r -p >"$d/digest"
  if [ $t = ed25519 ]; then
    openssl pkeyutl -verify -pubin -inkey "$d/$t.pub" -rawin -in "$d/digest" -sigfile "$d/sig" \
      >/dev/null || fail "openssl does not accept our Ed25519 signature"
  else
    openssl pkeyutl -verify -pubin -inkey "$d/$t.pub" -in "$d/digest" -sigfile "$d/sig" \
      -pkeyopt digest:sha256 >/dev/null || fail "openssl does not accept our ECDSA signature"
  fi
  expect 0 "$RAMPART" image show "$img"; out_has "matches the SHA256 TLV"
  expect 0 "$RAMPART" image verify --output json --key "$d/$t.pub" "$img"
  jq -e '.valid == true and .security_counter == 7' "$d/out" >/dev/null || fail "verify json"
done

# the other key type, and another key of the same type, are refused
expect 1 "$RAMPART" image verify --key "$d/ed25519.pub" "$d/ecdsa-p256.img"
err_has "not signed by a trusted key"
"$RAMPART" key generate --type ecdsa-p256 --out "$d/other.pem" >/dev/null
expect 1 "$RAMPART" image verify --key "$d/other.pem" "$d/ecdsa-p256.img"
err_has "not signed by a trusted key"
expect 1 "$RAMPART" image verify --output json --key "$d/other.pem" "$d/ecdsa-p256.img"
jq -e '.valid == false and .error == "not signed by a trusted key"' "$d/out" >/dev/null ||
  fail "verify json on refusal"
# several trusted keys: any one may have signed
expect 0 "$RAMPART" image verify --key "$d/other.pem" --key "$d/ecdsa-p256.pub" "$d/ecdsa-p256.img"
# a public key cannot sign
expect 1 "$RAMPART" image sign --key "$d/ecdsa-p256.pub" --version 1 "$d/payload" "$d/x.img"
err_has "a public key cannot sign"
[ ! -e "$d/x.img" ] || fail "a failed sign left an output file"
# numbers are decimal or 0x hex, never octal
expect 0 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 --security-counter 0100 \
  "$d/payload" "$d/n.img"
out_has "security counter 100,"
expect 0 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 --security-counter 0x10 \
  --force "$d/payload" "$d/n.img"
out_has "security counter 16,"
expect 2 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 --security-counter 0x \
  "$d/payload" "$d/n.img"
# the output is never the key or the payload
cp "$d/ed25519.pem" "$d/k2.pem"
expect 1 "$RAMPART" image sign --key "$d/k2.pem" --version 1 "$d/payload" "$d/k2.pem"
err_has "refusing to overwrite"
cmp -s "$d/k2.pem" "$d/ed25519.pem" || fail "the key was overwritten"
expect 1 "$RAMPART" image sign --key "$d/k2.pem" --version 1 "$d/payload" "$d/payload"
expect 1 "$RAMPART" key public --key "$d/k2.pem" --out "$d/k2.pem"
err_has "refusing to overwrite"
cmp -s "$d/k2.pem" "$d/ed25519.pem" || fail "the key was overwritten"
# a FIFO is refused, not waited on; an encrypted key is refused, not prompted for
mkfifo "$d/fifo"
expect 1 timeout 60 "$RAMPART" image show "$d/fifo"
expect 1 timeout 60 "$RAMPART" image verify --key "$d/ed25519.pub" "$d/fifo"
openssl genpkey -algorithm ed25519 -aes256 -pass pass:secret -out "$d/enc.pem" 2>/dev/null
expect 1 timeout 60 "$RAMPART" key public --key "$d/enc.pem" </dev/null
err_has "an encrypted private key: encrypted keys are not supported"; err_has "openssl pkey -in"
# --security-counter auto packs the version, as imgtool does
expect 0 "$RAMPART" image sign --key "$d/ed25519.pem" --version 2.1.3 --security-counter auto \
  "$d/payload" "$d/auto.img"
out_has "security counter 33619971"
# header size and the full public key instead of its hash
expect 0 "$RAMPART" image sign --key "$d/ecdsa-p256.pem" --version 3.0.0+1 --header-size 0x400 \
  --public-key-format full "$d/payload" "$d/full.img"
expect 0 "$RAMPART" image show --output json "$d/full.img"
jq -e '.header_size == 1024 and (.tlvs | map(.name) | index("PUBKEY")) != null' "$d/out" \
  >/dev/null || fail "full key image"
expect 0 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/full.img"

# --- refusals, each with its reason ----------------------------------------------------------------
img="$d/ecdsa-p256.img"
cp "$img" "$d/t"; flip "$d/t" 60000
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/t"; err_has "hash mismatch"
expect 0 "$RAMPART" image show "$d/t"; out_has "DOES NOT MATCH"
cp "$img" "$d/t"; flip "$d/t" 20            # the version, in the header
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/t"; err_has "hash mismatch"
cp "$img" "$d/t"; flip "$d/t" 0
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/t"; err_has "bad magic"
expect 1 "$RAMPART" image show "$d/t"; err_has "bad magic"
head -c 50000 "$img" >"$d/t"
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/t"; err_has "truncated"
head -c 10 "$img" >"$d/t"
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/t"; err_has "truncated"
: >"$d/t"
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/t"; err_has "truncated"
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/absent"; err_has "not found"
# the last byte of the signature
size=$(stat -c %s "$img")
cp "$img" "$d/t"; flip "$d/t" $((size - 1))
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/t"; err_has "bad signature"

# CVE-2024-32883: a SEC_CNT appended to the unprotected area after signing
unprot=$((512 + 100000 + $(le16_at "$img" 10)))
tot=$(le16_at "$img" $((unprot + 2)))
cp "$img" "$d/t"
printf '5000040000000080' | xxd -r -p >>"$d/t"     # SEC_CNT = 0x80000000
put_bytes "$d/t" $((unprot + 2)) "$(printf '%02x%02x' $(((tot + 8) & 255)) $(((tot + 8) >> 8)))"
expect 1 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/t"
err_has "forbidden TLV in the unprotected area"; err_has "SEC_CNT (0x0050) must be in the protected area"
expect 0 "$RAMPART" image show "$d/t"; out_has "FORBIDDEN here"

# --- MCUboot's imgtool vectors: each verifies with its key and is refused with the other ---------
for v in ecdsa-p256-v1.2.3+4-sc7 ecdsa-p256-fullkey-hdr400-v3.0.0+1 ed25519-v0.9.0; do
  case $v in ecdsa*) good=ecdsa-p256 bad=ed25519 ;; *) good=ed25519 bad=ecdsa-p256 ;; esac
  expect 0 "$RAMPART" image verify --key "$VECTORS/$good-pub.pem" "$VECTORS/$v.bin"; out_has valid
  expect 1 "$RAMPART" image verify --key "$VECTORS/$bad-pub.pem" "$VECTORS/$v.bin"
  err_has "not signed by a trusted key"
done
expect 0 "$RAMPART" image show --output json "$VECTORS/ecdsa-p256-v1.2.3+4-sc7.bin"
jq -e '.version == "1.2.3+4" and .security_counter == 7' "$d/out" >/dev/null || fail "vector show"

# Ed25519 is deterministic: signing imgtool's payload as imgtool did gives imgtool's bytes.
install -m 600 "$VECTORS/ed25519-key.pem" "$d/vector-key.pem" # a checkout leaves it 0644
expect 0 "$RAMPART" image sign --key "$d/vector-key.pem" --version 0.9.0 \
  "$VECTORS/payload.bin" "$d/same.bin"
cmp "$d/same.bin" "$VECTORS/ed25519-v0.9.0.bin" || fail "not byte-identical to imgtool"

# --- apps: a directory packed and signed; `app check` on trees, images and legacy images --------
mkdir -p "$d/app/bin" "$d/app/share"
cat >"$d/app/app_manifest.json" <<'JSON'
{"SchemaVersion": 1, "Name": "Demo app", "ComponentId": "demo", "EntryPoint": "bin/demo",
 "Cmdline": ["--fast"], "AllowedConnections": ["Broker.Example:8883", "[fd00::1]:443"],
 "AllowedTcpServerPorts": [8080], "Memory": {"LimitKB": 2048}, "DeviceAuthentication": true}
JSON
printf '#!/bin/sh\necho ready >&3\nexec sleep 3600\n' >"$d/app/bin/demo"; chmod 755 "$d/app/bin/demo"
echo "some data" >"$d/app/share/data"; ln -s ../share/data "$d/app/bin/data"
expect 0 "$RAMPART" app --help; out_has "app check DIR|IMAGE"
expect 2 "$RAMPART" app;  expect 2 "$RAMPART" app frob; expect 2 "$RAMPART" app check
expect 2 "$RAMPART" app check --output xml "$d/app"
expect 0 "$RAMPART" app check "$d/app"
out_has "valid: app tree"; out_has "broker.example:8883, [fd00::1]:443"; out_has "memory limit            2048 KB"
out_has "device authentication   yes"; out_has "processes (pids) limit  32"
# a directory needs --type app; then it is packed, signed, and verifies like any image
expect 2 "$RAMPART" image sign --key "$d/ecdsa-p256.pem" --version 1.0.0 "$d/app" "$d/app.img"
err_has "is a directory: an app's tree, signed with --type app"
[ ! -e "$d/app.img" ] || fail "a refused sign left an image"
mkdir "$d/tmp"
TMPDIR=$d/tmp expect 0 "$RAMPART" image sign --type app --key "$d/ecdsa-p256.pem" --version 1.0.0 "$d/app" "$d/app.img"
out_has "valid: version 1.0.0+0, type app"
[ -z "$(ls -A "$d/tmp")" ] || fail "the packed tree's temporary file went to TMPDIR"
[ -z "$(find "$d" -maxdepth 1 -name '.rampart-app-tree.*')" ] || fail "the packed tree's temporary file was left behind"
expect 0 "$RAMPART" image verify --key "$d/ecdsa-p256.pub" "$d/app.img"
# reproducible: other times and permission bits, the same image (ECDSA signatures differ, so
# compare the payloads: same digest)
touch -d @123456 "$d/app/bin/demo" "$d/app/share"; chmod 700 "$d/app/bin/demo"; chmod 600 "$d/app/share/data"
expect 0 "$RAMPART" image sign --type app --key "$d/ed25519.pem" --version 1.0.0 "$d/app" "$d/app-a.img"
touch -d @999999 "$d/app/bin/demo" "$d/app/share/data"; chmod 755 "$d/app/bin/demo"; chmod 644 "$d/app/share/data"
expect 0 "$RAMPART" image sign --type app --key "$d/ed25519.pem" --version 1.0.0 "$d/app" "$d/app-b.img"
cmp "$d/app-a.img" "$d/app-b.img" || fail "packing the same app twice gave different images"
expect 0 "$RAMPART" app check --output json "$d/app.img"
jq -e '.valid and .kind == "tree" and .manifest.ComponentId == "demo" and .in_force.Pids.Max == 32
       and .manifest.AllowedConnections == ["broker.example:8883", "[fd00::1]:443"]' "$d/out" >/dev/null ||
  fail "app check json: $(cat "$d/out")"
# a legacy single-file app image: valid, no capabilities
expect 0 "$RAMPART" image sign --type app --key "$d/ecdsa-p256.pem" --version 1.0.0 "$d/app/bin/demo" "$d/legacy.img"
expect 0 "$RAMPART" app check "$d/legacy.img"; out_has "single-file app made before manifests"
expect 0 "$RAMPART" app check --output json "$d/legacy.img"
jq -e '.kind == "legacy" and .manifest == null and .in_force.DeviceAuthentication == false
       and .in_force.AllowedConnections == []' "$d/out" >/dev/null || fail "legacy json: $(cat "$d/out")"
# refusals: a firmware image, a damaged image, a bad manifest (named key and reason), a bad tree
expect 0 "$RAMPART" image sign --type firmware --key "$d/ecdsa-p256.pem" --version 1.0.0 "$d/small" "$d/fw.img"
expect 1 "$RAMPART" app check "$d/fw.img"; err_has "an image of type firmware, not an app"
cp "$d/app.img" "$d/bad.img"; flip "$d/bad.img" 600
expect 1 "$RAMPART" app check "$d/bad.img"; err_has "not a valid image"
expect 1 "$RAMPART" app check "$d/small"; err_has "not a valid image"
sed -i 's/"LimitKB": 2048/"LimitKB": 9000000/' "$d/app/app_manifest.json"
expect 1 "$RAMPART" app check "$d/app"; err_has "Memory.LimitKB: 9000000 is over the limit of 4194304"
expect 1 "$RAMPART" app check --output json "$d/app"
jq -e '.valid == false and (.error | test("Memory.LimitKB"))' "$d/out" >/dev/null || fail "refusal json"
expect 1 "$RAMPART" image sign --type app --key "$d/ecdsa-p256.pem" --version 1.0.0 "$d/app" "$d/app2.img"
err_has "Memory.LimitKB: 9000000 is over the limit"; [ ! -e "$d/app2.img" ] || fail "refused app signed"
sed -i 's/"LimitKB": 9000000/"LimitKB": 2048/' "$d/app/app_manifest.json"
ln -s /etc/passwd "$d/app/share/passwd"
expect 1 "$RAMPART" app check "$d/app"; err_has "share/passwd: a link to /etc/passwd, which is absolute"
rm "$d/app/share/passwd"; chmod 644 "$d/app/bin/demo"
expect 1 "$RAMPART" app check "$d/app"; err_has "EntryPoint bin/demo: not executable"
chmod 755 "$d/app/bin/demo"; expect 0 "$RAMPART" app check "$d/app"

# --- review r15tool: what the tools do to files already there, and to hand-made trees ---------
# M1: an existing OUT is kept unless --force; a private key is never replaced, even with --force
echo "keep me" >"$d/keep"; cp "$d/keep" "$d/keep.orig"
expect 1 "$RAMPART" key public --key "$d/ed25519.pem" --out "$d/keep"; err_has "already exists"
cmp -s "$d/keep" "$d/keep.orig" || fail "key public replaced an existing file"
expect 1 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 "$d/small" "$d/keep"
err_has "already exists"; cmp -s "$d/keep" "$d/keep.orig" || fail "image sign replaced an existing file"
expect 0 "$RAMPART" key public --key "$d/ed25519.pem" --out "$d/keep" --force
grep -q 'BEGIN PUBLIC KEY' "$d/keep" || fail "--force did not replace the file"
expect 0 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 --force "$d/small" "$d/keep"
expect 0 "$RAMPART" image verify --key "$d/ed25519.pub" "$d/keep"
cp "$d/ecdsa-p256.pem" "$d/root.key"
expect 1 "$RAMPART" key public --key "$d/ed25519.pem" --out "$d/root.key" --force
err_has "holds a private key: refusing to replace it, even with --force"
expect 1 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 --force "$d/small" "$d/root.key"
err_has "holds a private key"; cmp -s "$d/root.key" "$d/ecdsa-p256.pem" || fail "a private key was replaced"
cp "$d/enc.pem" "$d/enc.keep"
expect 1 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 --force "$d/small" "$d/enc.keep"
err_has "holds a private key"
# r16 L3: a DER private key (PKCS#8, EC's own form, encrypted PKCS#8) and a PEM bundle over 64 KiB
# that ends in a key are never replaced; nor what cannot be read through (a block that does not
# read, a file over 1 GiB); an image or a public key still is, with --force
openssl pkey -in "$d/ed25519.pem" -outform DER -out "$d/k8.der"
openssl ec -in "$d/ecdsa-p256.pem" -outform DER -out "$d/ec.der" 2>/dev/null
openssl pkcs8 -topk8 -in "$d/ed25519.pem" -passout pass:x -outform DER -out "$d/enc.der"
{ for _ in $(seq 700); do cat "$d/ed25519.pub"; done; cat "$d/ed25519.pem"; } >"$d/bundle.pem"
{ head -n 2 "$d/ed25519.pub"; cat "$d/ed25519.pem"; } >"$d/broken.pem"
truncate -s $(((1 << 30) + 1)) "$d/huge"
for f in k8.der ec.der enc.der bundle.pem broken.pem huge; do
  cp --sparse=always "$d/$f" "$d/x"
  expect 1 "$RAMPART" key public --key "$d/ed25519.pem" --out "$d/x" --force; err_has "private key"
  cmp -s "$d/$f" "$d/x" || fail "key public --force replaced $f"
done
rm -f "$d/huge" "$d/x"
# r17 L2: a PEM block that is never ended is refused in memory bounded whatever the file (the scan
# used to hold it whole, about twice: some 200 MB for this 96 MiB file; now a 1 MiB block at most)
{ echo "-----BEGIN CERTIFICATE-----"; head -c $((96 << 20)) /dev/zero | tr '\0' A; } >"$d/open.pem"
sum=$(sha256sum <"$d/open.pem")
maxrss() { # CMD...: CMD run with its stderr in $d/err; prints its exit and its peak RSS in KiB
  python3 -c 'import resource, subprocess, sys
with open(sys.argv[1], "w") as err:
    rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$d/err" "$@"
}
read -r rc rss < <(maxrss "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 --force "$d/small" "$d/open.pem")
eq "$rc" 1 "image sign --force over an unended PEM block"; err_has "a PEM block in it does not read"
eq "$(sha256sum <"$d/open.pem")" "$sum" "a file whose PEM block does not read, kept"
[ "$rss" -lt 65536 ] || fail "the key scan of a 96 MiB unended PEM block took $rss KiB"
rm -f "$d/open.pem"
expect 0 "$RAMPART" image sign --key "$d/ed25519.pem" --version 2 --force "$d/small" "$d/keep"
# key generate --force still replaces its own kind
expect 0 "$RAMPART" key generate --type ed25519 --out "$d/root.key" --force
# L4: a private key others can read is refused, as ssh does
cp "$d/ed25519.pem" "$d/open.pem"; chmod 644 "$d/open.pem"
expect 1 "$RAMPART" image sign --key "$d/open.pem" --version 1 "$d/small" "$d/open.img"
err_has "group or others can read it"; err_has "chmod 600"; [ ! -e "$d/open.img" ] || fail "signed with a 0644 key"
# L5: OUT a directory, a name too long for its temporary
mkdir "$d/outdir"
expect 1 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 "$d/small" "$d/outdir"; err_has "is a directory"
long=$(printf 'a%.0s' $(seq 250))
expect 1 "$RAMPART" image sign --key "$d/ed25519.pem" --version 1 "$d/small" "$d/$long"; err_has "is too long"
expect 1 "$RAMPART" key generate --type ed25519 --out "$d/$long"; err_has "is too long"
expect 1 "$RAMPART" key public --key "$d/outdir"; err_has "a directory, a FIFO or a device"
# L8: a P-256 key with explicit curve parameters: refused at load, nothing written
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:explicit \
  -out "$d/explicit.pem" 2>/dev/null
expect 1 "$RAMPART" key public --key "$d/explicit.pem" --out "$d/explicit.pub"
err_has "explicit curve parameters"; err_has "-ec_param_enc named_curve"
[ ! -e "$d/explicit.pub" ] || fail "key public wrote a file for a refused key"
expect 1 "$RAMPART" image sign --key "$d/explicit.pem" --version 1 "$d/small" "$d/explicit.img"
err_has "explicit curve parameters"
# L2: OUT inside DIR is refused; a TMPDIR inside DIR is not packed (Ed25519: the same bytes)
expect 1 "$RAMPART" image sign --type app --key "$d/ed25519.pem" --version 1.0.0 "$d/app" "$d/app/in.img"
err_has "inside the app directory"; [ ! -e "$d/app/in.img" ] || fail "an image was written inside DIR"
mkdir "$d/app/tmpd"
expect 0 "$RAMPART" image sign --type app --key "$d/ed25519.pem" --version 1.0.0 "$d/app" "$d/app-t1.img"
TMPDIR=$d/app/tmpd expect 0 "$RAMPART" image sign --type app --key "$d/ed25519.pem" --version 1.0.0 \
  "$d/app" "$d/app-t2.img"
cmp "$d/app-t1.img" "$d/app-t2.img" || fail "a TMPDIR inside DIR changed the image"
[ -z "$(ls -A "$d/app/tmpd")" ] || fail "the packer wrote into TMPDIR inside DIR"
rmdir "$d/app/tmpd"
# M2: a hand-made tar signed as an app FILE must pass the device's rules (one walk, apptree.c)
mkdir -p "$d/hand/bin"; cp "$d/app/app_manifest.json" "$d/hand/"; cp "$d/app/bin/demo" "$d/hand/bin/"
tar -C "$d/hand" -cf "$d/gnu.tar" app_manifest.json bin # GNU tar's defaults: real times, owners
expect 0 "$RAMPART" image sign --type app --key "$d/ed25519.pem" --version 1.0.0 "$d/gnu.tar" "$d/gnu.img"
expect 0 "$RAMPART" app check "$d/gnu.img"; out_has "valid: app tree"
tar --format=ustar --no-recursion -P -C "$d/hand" --transform 's|^bin/demo$|../demo|' \
  -cf "$d/dotdot.tar" app_manifest.json bin bin/demo
chmod 4755 "$d/hand/bin/demo"
tar --format=ustar --no-recursion -C "$d/hand" -cf "$d/suid.tar" app_manifest.json bin bin/demo
chmod 755 "$d/hand/bin/demo"
tar --format=ustar --no-recursion -C "$d/hand" -cf "$d/noentry.tar" app_manifest.json bin
tar --format=ustar --no-recursion -P -C / --transform 's|^dev/null$|bin/null|' -cf "$d/dev.tar" \
  -C "$d/hand" app_manifest.json bin bin/demo -C / dev/null
# r16 M1: a tar made the usual way (`-C DIR .`: "./", "./app_manifest.json", ...) is a tree, and
# any tar that is not a valid tree is refused with the walk's reason, never signed as a single file
tar --sort=name -C "$d/hand" -cf "$d/dot.tar" .
expect 0 "$RAMPART" image sign --type app --key "$d/ed25519.pem" --version 1.0.0 "$d/dot.tar" "$d/dot.img"
expect 0 "$RAMPART" app check "$d/dot.img"; out_has "valid: app tree"
cp -a "$d/hand" "$d/hand2"; ln -s /etc/shadow "$d/hand2/bin/evil"
tar --sort=name -C "$d/hand2" -cf "$d/dotlink.tar" .
tar -C "$d/hand" -cf "$d/nomanifest.tar" bin
for t in "dotdot:../demo: not a clean relative name" "suid:bin/demo: setuid, setgid or sticky bit" \
         "noentry:EntryPoint bin/demo: not in the tree" "dev:bin/null: a character device" \
         "dotlink:bin/evil: a link to /etc/shadow" \
         "nomanifest:not an app tree: its first entry is bin, not the file app_manifest.json"; do
  n=${t%%:*}; why=${t#*:}
  expect 1 "$RAMPART" image sign --type app --key "$d/ed25519.pem" --version 1.0.0 "$d/$n.tar" "$d/$n.img"
  err_has "not an app tree a device accepts: $why"; [ ! -e "$d/$n.img" ] || fail "$n: signed"
  "$SIGN_UNCHECKED" "$d/ed25519.pem" 1.0.0 "$d/$n.tar" "$d/$n.img" || fail "$n: sign-unchecked"
  expect 1 "$RAMPART" app check "$d/$n.img"; err_has "$why"
done

done_ok
