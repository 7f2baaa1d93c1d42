#!/usr/bin/env bash
# End to end: the emulated microcontroller attests to a real rampart-server through the Linux relay
# (scripts/mcu-relay): the service's nonce goes to the board, the secure attestation service's
# evidence comes back, and the service appraises it with its own rules and, when it passes, issues
# the board's device certificate for its attestation key. docs/mcu.md.
. "$(dirname "$0")/lib.sh"
: "${MCU_BUILD:?set MCU_BUILD to the microcontroller build}" "${MCU_RUN:?set MCU_RUN to scripts/mcu-run}"
: "${MCU_KEYS:?set MCU_KEYS to mcu/keys}" "${RAMPART_SERVER:?set RAMPART_SERVER}"
d=$E2E_DIR
[ -f "$MCU_BUILD/boot.elf" ] && [ -f "$MCU_BUILD/app.bin" ] ||
  fail "no microcontroller build in $MCU_BUILD (arm-none-eabi-gcc and Mbed TLS's source: scripts/install-deps)"
export MCU_BUILD
relay=$(dirname "$MCU_RUN")/mcu-relay
flash=$d/board.bin

# --- a board with the signed sample app ---------------------------------------------------------
expect 0 "$RAMPART" image sign --type firmware --key "$MCU_KEYS/dev-p256.pem" --version 1.2.0 \
  --security-counter 4 "$MCU_BUILD/app.bin" "$d/fw.img"
digest=$(sed -n 's/.*sha256 \([0-9a-f]\{64\}\).*/\1/p' "$d/out")
expect 0 "$MCU_RUN" --flash "$flash" --slot0 "$d/fw.img"
key_hex=$(sed -n 's/^boot: attestation key //p' "$d/err")
[ -n "$key_hex" ] || fail "the board printed no attestation key"
device=$(printf '%s' "$key_hex" | xxd -r -p | sha256sum | cut -c1-64)
# a nonce given must be one: an empty or short one is refused, never replaced by the sample one
expect 2 "$MCU_RUN" --flash "$flash" --nonce '';     err_has "8 to 64 bytes in hex"
expect 2 "$MCU_RUN" --flash "$flash" --nonce 00112233445566;  err_has "8 to 64 bytes in hex"

# --- the service: a tenant that claimed the board --------------------------------------------
start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
expect 0 "$RAMPART" device claim --tenant "$acme" "$device"
expect 2 "$relay" --flash "$flash";                 err_has "usage: mcu-relay"

# The board does not lock debug, and says so: the tenant's strict policy refuses that.
expect 1 "$relay" --flash "$flash" --server "$SERVER_URL" --server-ca "$SERVER_CA"
out_has "mcu-relay: refused: debug_enabled"
# Allowed debug, the firmware is not one of the tenant's images yet.
expect 0 "$RAMPART" tenant policy --tenant "$acme" --allow-debug yes
expect 1 "$relay" --flash "$flash" --server "$SERVER_URL" --server-ca "$SERVER_CA"
out_has "mcu-relay: refused: unknown_image"
# Its signing key and image uploaded: the evidence passes, and the board has its certificate.
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$MCU_KEYS/dev-p256.pub.pem" --name mcu
expect 0 "$RAMPART" image upload --tenant "$acme" --component firmware "$d/fw.img"
expect 0 "$relay" --flash "$flash" --server "$SERVER_URL" --server-ca "$SERVER_CA" --cert "$d/board.pem"
out_has "mcu-relay: pass: device $device serial "
eq "$(openssl x509 -in "$d/board.pem" -noout -pubkey | openssl pkey -pubin -outform DER | xxd -p | tr -d '\n')" \
  "$key_hex" "the certificate's key is the board's attestation key"
expect 0 "$RAMPART" device attestations --tenant "$acme" "$device"
jq -e --arg dg "$digest" '.attestations[0].result == "pass" and
  (.attestations[0].claims.components | length == 1) and
  .attestations[0].claims.components[0].name == "firmware" and
  .attestations[0].claims.components[0].digest == $dg and
  .attestations[0].claims.components[0].security_counter == 4' "$d/out" >/dev/null ||
  fail "the recorded attestation: $(cat "$d/out")"
done_ok
