#!/usr/bin/env bash
# The tenant CA's rollover (review r8 H1; docs/operations.md, "The tenant CA's lifetime"), with the
# service, the agents, the CLI, curl and openssl under one faked clock (libfaketime, at_clock) moved
# across two years. Tenant acme is in use all along: at two thirds of its CA's life a successor is
# made and published (ca_chain, GET .../ca, EST cacerts, the CRLs) while the first one still signs;
# a month on, the successor signs, and a certificate of the first one is still accepted until it
# ends, and a block revokes it in the first CA's CRL. Tenant globex is unused from its CA's making
# to an hour before that CA's end: the certificate issued then ends with its CA, not after it; past
# that end the successor signs.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${RAMPART_SERVER:?set RAMPART_SERVER}"
srv=$E2E_DIR/srv
SERVER_BIN=$RAMPART_SERVER

# at WHEN: the service started again with its clock at WHEN (restart_at); what follows runs at
# WHEN too: run (a Rampart program), faked (curl, openssl).
at() { restart_at "$1" "$srv"; }
run() { run_at "$@"; }
faked() { faked_at "$@"; }

attest() {
  expect 0 run "$AGENT" attest --state-dir "$E2E_DIR/$1" --server "$SERVER_URL" \
    --server-ca "$SERVER_CA"
}
# device_api DEVICE [CERT]: the status the device API answers the device's certificate (or CERT).
device_api() {
  faked curl -s -o "$E2E_DIR/body" -w '%{http_code}' --cacert "$SERVER_CA" \
    --cert "${2:-$E2E_DIR/$1/agent/device.crt}" --key "$E2E_DIR/$1/identity.pem" \
    "$SERVER_URL/api/v1/device/targets"
}
# verifies CERT TRUST: openssl (as a broker given TRUST) accepts CERT now.
verifies() { faked openssl verify -CAfile "$2" "$1" >/dev/null 2>&1; }
certs_in() { grep -c -- '-----BEGIN CERTIFICATE-----' "$1"; }
issuer() { openssl x509 -in "$1" -noout -issuer -nameopt RFC2253; }
subject() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=/issuer=/'; }
enddate() { openssl x509 -in "$1" -noout -enddate; }
# first_cert FILE OUT: the first certificate of a PEM bundle.
first_cert() { openssl x509 -in "$1" -out "$2"; }

at +0d
expect 0 run "$RAMPART" tenant create acme; acme=$(cat "$E2E_DIR/out")
expect 0 run "$RAMPART" tenant create globex; globex=$(cat "$E2E_DIR/out")
for t in "$acme" "$globex"; do
  expect 0 run "$RAMPART" tenant policy --tenant "$t" --allow-debug yes --require-components no
done
for d in a b c; do
  expect 0 run "$AGENT" provision --state-dir "$E2E_DIR/$d" --rot soft
  id=$(tail -n1 "$E2E_DIR/out")
  expect 0 run "$RAMPART" device claim --tenant "$([ $d = c ] && echo "$globex" || echo "$acme")" "$id"
  attest $d
done
eq "$(certs_in "$E2E_DIR/a/agent/ca-chain.pem")" 1 "one CA at first"
cp "$E2E_DIR/a/agent/ca-chain.pem" "$E2E_DIR/acme-ca0.pem"
cp "$E2E_DIR/c/agent/ca-chain.pem" "$E2E_DIR/globex-ca0.pem"

# Two thirds of the CA's life (487 days) passed: the successor is made and published, the first
# CA still signs.
at +500d
attest a
eq "$(certs_in "$E2E_DIR/a/agent/ca-chain.pem")" 2 "ca_chain during the rollover"
eq "$(issuer "$E2E_DIR/a/agent/device.crt")" "$(subject "$E2E_DIR/acme-ca0.pem")" \
  "the first CA signs during the publication month"
first_cert "$E2E_DIR/a/agent/ca-chain.pem" "$E2E_DIR/first.pem"
eq "$(subject "$E2E_DIR/first.pem")" "$(subject "$E2E_DIR/acme-ca0.pem")" "the signer first in ca_chain"
verifies "$E2E_DIR/a/agent/device.crt" "$E2E_DIR/a/agent/ca-chain.pem" || fail "openssl verify"
expect 0 run "$RAMPART" ca download --tenant "$acme" --out "$E2E_DIR/bundle.pem"
eq "$(certs_in "$E2E_DIR/bundle.pem")" 2 "rampart ca download during the rollover"
# a download never replaces a private key (review r15tool M1: one rule for every file the CLI writes)
openssl genpkey -algorithm ed25519 -out "$E2E_DIR/mine.key" 2>/dev/null; cp "$E2E_DIR/mine.key" "$E2E_DIR/mine.orig"
expect 1 run "$RAMPART" ca download --tenant "$acme" --out "$E2E_DIR/mine.key"; err_has "holds a private key"
cmp -s "$E2E_DIR/mine.key" "$E2E_DIR/mine.orig" || fail "ca download replaced a private key"
faked curl -sf --cacert "$SERVER_CA" "$SERVER_URL/.well-known/est/$acme/cacerts" |
  base64 -d | openssl pkcs7 -inform DER -print_certs >"$E2E_DIR/est.pem"
eq "$(certs_in "$E2E_DIR/est.pem")" 2 "EST cacerts during the rollover"
expect 0 run "$RAMPART" ca crl --tenant "$acme" --out "$E2E_DIR/crls.pem"
eq "$(grep -c -- '-----BEGIN X509 CRL-----' "$E2E_DIR/crls.pem")" 2 "one CRL per CA"
# (a broker given the bundle and both CRLs, as mosquitto's cafile and crlfile)
cat "$E2E_DIR/bundle.pem" "$E2E_DIR/crls.pem" >"$E2E_DIR/trust+crls.pem"
faked openssl verify -crl_check -CAfile "$E2E_DIR/trust+crls.pem" "$E2E_DIR/a/agent/device.crt" \
  >/dev/null 2>&1 || fail "openssl verify -crl_check with the bundle and the CRLs"
# the CRLs are made once for the set of CAs, not again by each worker (each has its own CA cache)
metric() {
  faked curl -sf --cacert "$SERVER_CA" "$SERVER_URL/metrics" | sed -n "s/^$1 //p"
}
builds=$(metric rampart_crl_builds_total)
for i in 1 2 3 4 5 6; do
  faked curl -sf --cacert "$SERVER_CA" -o /dev/null "$SERVER_URL/api/v1/tenants/$acme/crl"
done
eq "$(metric rampart_crl_builds_total)" "$builds" "CRLs made again for the same CAs"
# the soonest end of a tenant's newest CA: globex's first, 230 days on
metric=$(metric rampart_tenant_ca_expires_seconds)
[ "$metric" -gt $((229 * 86400)) ] && [ "$metric" -lt $((231 * 86400)) ] ||
  fail "rampart_tenant_ca_expires_seconds $metric"
E2E_CHECKS=$((E2E_CHECKS + 1))

# Just before the month ends: a certificate of the first CA (a's, for 24 hours).
at +12716h # 529 days 20 hours
attest a
eq "$(issuer "$E2E_DIR/a/agent/device.crt")" "$(subject "$E2E_DIR/acme-ca0.pem")" "still the first CA"
cp "$E2E_DIR/a/agent/device.crt" "$E2E_DIR/a-ca0.crt"

# The month passed: the successor signs; the first CA's certificate still works until it ends.
at +12722h # 530 days 2 hours
attest b
issuer "$E2E_DIR/b/agent/device.crt" | grep -q "tenant CA [^,]* G1," || fail "b's certificate is not the successor's"
first_cert "$E2E_DIR/b/agent/ca-chain.pem" "$E2E_DIR/first.pem"
eq "$(subject "$E2E_DIR/first.pem")" "$(issuer "$E2E_DIR/b/agent/device.crt")" "the signer first"
eq "$(device_api b)" 200 "the device API, the successor's certificate"
verifies "$E2E_DIR/b/agent/device.crt" "$E2E_DIR/b/agent/ca-chain.pem" ||
  fail "openssl verify of the successor's certificate against the published chain"
eq "$(device_api a "$E2E_DIR/a-ca0.crt")" 200 "the device API, the first CA's certificate"
verifies "$E2E_DIR/a-ca0.crt" "$E2E_DIR/b/agent/ca-chain.pem" ||
  fail "openssl verify of the first CA's certificate against the published chain"
# a broker with both CAs and both CRLs accepts both; a's block revokes its first-CA certificate
# in the first CA's CRL
crl_check() {
  expect 0 run "$RAMPART" ca download --tenant "$acme" --out "$E2E_DIR/bundle.pem"
  expect 0 run "$RAMPART" ca crl --tenant "$acme" --out "$E2E_DIR/crls.pem"
  cat "$E2E_DIR/bundle.pem" "$E2E_DIR/crls.pem" >"$E2E_DIR/trust+crls.pem"
  faked openssl verify -crl_check -CAfile "$E2E_DIR/trust+crls.pem" "$1" >"$E2E_DIR/out" 2>&1
}
crl_check "$E2E_DIR/b/agent/device.crt" || fail "openssl verify -crl_check, the successor's"
crl_check "$E2E_DIR/a-ca0.crt" || fail "openssl verify -crl_check, the first CA's"
# a DER client: the default CRL is the signer's only; the first CA's is fetched by its generation
crl_url="$SERVER_URL/api/v1/tenants/$acme/crl"
faked curl -sf --cacert "$SERVER_CA" -o "$E2E_DIR/g0.crl" "$crl_url?generation=0" ||
  fail "GET crl?generation=0"
openssl crl -inform DER -in "$E2E_DIR/g0.crl" -out "$E2E_DIR/g0.pem" || fail "a DER CRL"
cat "$E2E_DIR/bundle.pem" "$E2E_DIR/g0.pem" >"$E2E_DIR/trust+g0.pem"
faked openssl verify -crl_check -CAfile "$E2E_DIR/trust+g0.pem" "$E2E_DIR/a-ca0.crt" \
  >/dev/null 2>&1 || fail "openssl verify -crl_check with the first CA's DER CRL"
eq "$(faked curl -s --cacert "$SERVER_CA" -o /dev/null -w '%{http_code}' "$crl_url?generation=9")" \
  404 "the CRL of a generation the tenant has not"
expect 0 run "$RAMPART" device block --tenant "$acme" "$("$AGENT" id --state-dir "$E2E_DIR/a" |
  sed -n 's/^device id: //p')"
! crl_check "$E2E_DIR/a-ca0.crt" || fail "a blocked device's first-CA certificate still verifies"
out_has "certificate revoked"
eq "$(device_api a "$E2E_DIR/a-ca0.crt")" 403 "the device API, a blocked device's certificate"
crl_check "$E2E_DIR/b/agent/device.crt" || fail "openssl verify -crl_check, b after a's block"

# globex, unused since its CA was made, an hour before that CA's end: the successor is made now,
# too young to sign; the first CA signs a certificate that ends with it.
at +17519h # 729 days 23 hours
attest c
eq "$(issuer "$E2E_DIR/c/agent/device.crt")" "$(subject "$E2E_DIR/globex-ca0.pem")" "globex's first CA"
eq "$(enddate "$E2E_DIR/c/agent/device.crt")" "$(enddate "$E2E_DIR/globex-ca0.pem")" \
  "the last day's certificate ends with its CA"
eq "$(certs_in "$E2E_DIR/c/agent/ca-chain.pem")" 2 "globex's successor published"
eq "$(device_api c)" 200 "the device API, the last day's certificate"
cp "$E2E_DIR/c/agent/device.crt" "$E2E_DIR/c-last.crt"

# Past globex's first CA's end: its certificates are refused, the successor signs.
at +17521h # 730 days 1 hour
eq "$(device_api c "$E2E_DIR/c-last.crt")" 401 "the device API, a certificate of an ended CA"
attest c
issuer "$E2E_DIR/c/agent/device.crt" | grep -q "tenant CA [^,]* G1," || fail "c's certificate is not the successor's"
eq "$(certs_in "$E2E_DIR/c/agent/ca-chain.pem")" 1 "an ended CA is not published"
eq "$(device_api c)" 200 "the device API, after the first CA's end"
verifies "$E2E_DIR/c/agent/device.crt" "$E2E_DIR/c/agent/ca-chain.pem" ||
  fail "openssl verify after the first CA's end"
E2E_CHECKS=$((E2E_CHECKS + 6))
done_ok
