#!/usr/bin/env bash
# End to end on the emulated microcontroller (QEMU mps2-an505, Cortex-M33 with TrustZone-M): the
# sample app signed by the real `rampart image sign` boots through the secure boot stage; a
# tampered image, an image signed by another key, an image below the security counter kept in
# secure storage, a truncated one and one of another type are each refused with their reason; the
# non-secure app cannot read secure storage; the flash file keeps the counter between runs, in two
# copies: a raise cut short by a power loss does not count, and a corrupt copy refuses everything.
# The secure attestation service: the app's evidence over a nonce verifies with the key the boot
# stage printed and carries its measurement; the non-secure app cannot read the device secret,
# and the service refuses memory that is not the caller's, nor can the app call the service's code
# but through its veneer; a service changed by one byte does not start. docs/mcu.md.
. "$(dirname "$0")/lib.sh"
: "${MCU_BUILD:?set MCU_BUILD to the microcontroller build}" "${MCU_RUN:?set MCU_RUN to scripts/mcu-run}"
: "${MCU_KEYS:?set MCU_KEYS to mcu/keys}" "${EAT_CHECK:?set EAT_CHECK to tests/eat-check}"
d=$E2E_DIR
[ -f "$MCU_BUILD/boot.elf" ] && [ -f "$MCU_BUILD/app.bin" ] ||
  fail "no microcontroller build in $MCU_BUILD (arm-none-eabi-gcc and Mbed TLS's source: scripts/install-deps)"
export MCU_BUILD
key=$MCU_KEYS/dev-p256.pem
flash=$d/flash.bin
sign() { # sign OUT VERSION COUNTER [KEY [TYPE]]
  expect 0 "$RAMPART" image sign --type "${5:-firmware}" --key "${4:-$key}" --version "$2" \
    --security-counter "$3" "$MCU_BUILD/app.bin" "$1"
}
run() { # run STATUS ARGS...: mcu-run on the test's flash file
  local want=$1
  shift
  expect "$want" "$MCU_RUN" --flash "$flash" --timeout 30 "$@"
}

# --- usage: no emulator ---------------------------------------------------------------------
expect 2 "$MCU_RUN";                                  err_has "usage: mcu-run"
expect 2 "$MCU_RUN" --flash "$flash" --timeout 0;     err_has "--timeout"
# (review r12 L1) The whole run stays under the agent's 120 s bound on a relay's run.
expect 2 "$MCU_RUN" --flash "$flash" --timeout 101;   err_has "--timeout wants whole seconds (1-100)"
expect 2 "$MCU_RUN" --flash "$flash" --slot0 "$d/none"; err_has "no image"
[ ! -e "$flash" ] || fail "a refused command created the flash file"

# --- an erased flash boots nothing ------------------------------------------------------------
run 1
eq "$(cat "$d/out")" "boot: refused: slot0 is empty (erased flash)" "empty slot"
err_has "boot: stack high-water " # on a refusal too, on standard error (the verdict stays one line)

# --- a good image boots, and the app runs non-secure ---------------------------------------
sign "$d/v1.img" 1.0.0 2
expect 0 "$RAMPART" image verify --key "$key" "$d/v1.img"
digest=$(sed -n 's/.*sha256 \([0-9a-f]\{64\}\).*/\1/p' "$E2E_DIR/out")
[ -n "$digest" ] || fail "no digest from image verify"
run 0 --slot0 "$d/v1.img"
cp "$d/err" "$d/boot1.err"
eq "$(head -1 "$d/out")" "boot: slot0 version 1.0.0+0 counter 2: booting" "verdict line"
out_has "app: hello from the non-secure world"
out_has "app: LED0 on"; out_has "app: LED0 off"; out_has "app: done"
err_has "trusts the DEVELOPMENT key"
err_has "boot: measured slot0 sha256 $digest"
eq "$(stat -c %s "$flash")" 16777216 "flash file size"
# The secure stack's high-water mark (the reset paints it): some of it used, far from all of it;
# then deeper (or as deep) once the attestation service has run on it too.
stack() { sed -n "s/^boot: stack high-water \([0-9]*\) of \([0-9]*\) bytes$1\$/\1 \2/p" "$d/err"; }
read -r used room <<<"$(stack '')"
[ "${used:-0}" -gt 256 ] && [ "$used" -lt $((room / 8)) ] || fail "stack high-water '$used' of '$room'"
read -r used2 room2 <<<"$(stack ', with the attestation service')"
[ "${used2:-0}" -ge "$used" ] && [ "$room2" -eq "$room" ] || fail "attestation stack '$used2' of '$room2'"

# --- attestation: evidence over the nonce, with the boot record's measurement, by the device key --
nonce=00112233445566778899aabbccddeeff0102030405060708
run 0 --slot0 "$d/v1.img" --nonce "$nonce"
key_hex=$(sed -n 's/^boot: attestation key \([0-9a-f]*\)$/\1/p' "$d/err")
ev=$(sed -n 's/^app: evidence \([0-9a-f]*\)$/\1/p' "$d/out")
[ -n "$key_hex" ] || { cat "$d/err" >&2; fail "the boot stage printed no attestation key"; }
[ -n "$ev" ] || { cat "$d/out" >&2; fail "the app printed no evidence"; }
out_has "app: done"
device=$(printf '%s' "$key_hex" | xxd -r -p | sha256sum | cut -c1-64)
expect 0 "$EAT_CHECK" "$key_hex" "$nonce" "$ev"
eq "$(cat "$d/out")" "device $device debug 0 bootcount 0
component firmware 1.0.0+0 $digest 2" "the evidence's claims"
# The same evidence read by third-party code (python3-cbor2, python3-cryptography).
printf '%s' "$ev" | xxd -r -p >"$d/ev.cbor"
printf '%s' "$key_hex" | xxd -r -p >"$d/key.der"
expect 0 /usr/bin/python3 "$(dirname "$0")/../tools/check-eat.py" "$d/ev.cbor" "$d/key.der"
out_has '"10": "'"$nonce"'"'
# A changed byte anywhere fails: in the claims (the nonce's first byte), in the signature.
expect 1 "$EAT_CHECK" "$key_hex" "$nonce" "${ev/00112233/01112233}"
out_has "refused: "
expect 1 "$EAT_CHECK" "$key_hex" "$nonce" "${ev%??}$(printf '%02x' $((0x${ev: -2} ^ 1)))"
out_has "refused: "
expect 1 "$EAT_CHECK" "$key_hex" "ffeeddccbbaa99887766554433221100" "$ev"
eq "$(cat "$d/out")" "refused: another nonce" "evidence for another nonce"
# The key is derived from the board's secret: the same at every boot (the boot above printed it
# too), another on another board.
eq "$(sed -n 's/^boot: attestation key //p' "$d/boot1.err")" "$key_hex" "the key at the next boot"
expect 0 "$MCU_RUN" --flash "$d/other-board.bin" --slot0 "$d/v1.img" --timeout 30
grep -q "^boot: attestation key " "$d/err" || fail "no key on the other board"
! grep -q "^boot: attestation key $key_hex\$" "$d/err" || fail "two boards, one attestation key"
# A board whose secret was never written (flash erased whole) boots with the service off.
head -c 16777216 /dev/zero | tr '\0' '\377' >"$d/no-secret.bin"
expect 0 "$MCU_RUN" --flash "$d/no-secret.bin" --slot0 "$d/v1.img" --timeout 30
err_has "boot: no device secret provisioned: the attestation service is off"
out_has "app: no evidence: error 21"
out_has "app: done"
# The attestation service is an image of its own beside the boot stage, which measures it before
# it starts it: one changed byte of it (its last) and nothing boots.
mkdir "$d/tampered-build"
for f in "$MCU_BUILD"/*.elf "$MCU_BUILD/layout.env"; do ln -s "$f" "$d/tampered-build/"; done
cp "$MCU_BUILD/attest.bin" "$d/attest.bin"
last=$(($(stat -c %s "$d/attest.bin") - 1))
printf "$(printf '\\x%02x' $((0x$(xxd -s "$last" -l 1 -p "$d/attest.bin") ^ 1)))" |
  dd of="$d/attest.bin" bs=1 seek="$last" conv=notrunc status=none
cmp -s "$d/attest.bin" "$MCU_BUILD/attest.bin" && fail "the tampered attestation service is unchanged"
cp "$d/attest.bin" "$d/tampered-build/attest.bin"
MCU_BUILD=$d/tampered-build run 1 --slot0 "$d/v1.img"
eq "$(cat "$d/out")" \
  "boot: refused: the attestation service is not the one this boot stage was built with" "tampered service"
! grep -q "^boot: attestation key" "$d/err" || fail "the tampered attestation service ran"
# The non-secure app cannot make the service read or write secure memory for it, nor pass it a bad
# length: each call is refused with its error (25 denied, 1 invalid argument, 16 buffer too small)
# and *len kept; nor can it read the device secret itself (the SAU faults it before a byte is read).
expect 0 "$RAMPART" image sign --type firmware --key "$key" --version 1.0.1 --security-counter 2 \
  "$MCU_BUILD/probe-key.bin" "$d/probe-key.img"
run 0 --slot0 "$d/probe-key.img"
full=$(sed -n 's/^app: attest ok: error 0 len \([0-9]*\)$/\1/p' "$d/out")
[ -n "$full" ] && [ "$full" -gt 64 ] || { cat "$d/out" >&2; fail "the probe's good call failed"; }
eq "$(grep '^app: attest ' "$d/out")" "app: attest out-secure-ram: error 25 len 1024
app: attest out-past-ns-ram: error 25 len 64
app: attest nonce-secret: error 25 len 1024
app: attest len-secure: error 25 len 0
app: attest nonce-long: error 1 len 1024
app: attest nonce-short: error 1 len 1024
app: attest out-small: error 16 len $full
app: attest ok: error 0 len $full" "the service's checks of what the caller hands it"
out_has "app: reading secure memory"
! grep -q "app: read secure memory" "$d/out" || fail "the non-secure app read the device secret"
err_has "boot: the non-secure image faulted: SFSR 0x00000008"

# --- refusals, each with its reason; the stored counter is 2 from the boot above ----------------
cp "$d/v1.img" "$d/tampered.img"
flip "$d/tampered.img" 1024 # a payload byte
run 1 --slot0 "$d/tampered.img"
eq "$(cat "$d/out")" "boot: refused: hash mismatch: the image was modified" "tampered"

expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/other.pem"
sign "$d/other.img" 1.0.0 2 "$d/other.pem"
run 1 --slot0 "$d/other.img"
eq "$(cat "$d/out")" "boot: refused: not signed by a trusted key" "another key"

sign "$d/old.img" 0.9.0 1
run 1 --slot0 "$d/old.img"
eq "$(cat "$d/out")" "boot: refused: rollback: security counter 1 is below the device's 2" \
  "below the counter"

head -c $(($(stat -c %s "$d/v1.img") - 40)) "$d/v1.img" >"$d/truncated.img"
run 1 --slot0 "$d/truncated.img"
out_has "boot: refused: "; out_lines 1

sign "$d/app.img" 1.0.0 2 "$key" app
run 1 --slot0 "$d/app.img"
eq "$(cat "$d/out")" "boot: refused: not a firmware image (--type firmware)" "another type"

# --- the non-secure app sees only its memory: reading secure storage faults (the SAU) ----------
# probe NAME TRYING DONE WHAT SFSR: the probe app NAME says TRYING, faults with SFSR, never DONE
probe() {
  expect 0 "$RAMPART" image sign --type firmware --key "$key" --version 1.0.1 --security-counter 2 \
    "$MCU_BUILD/$1.bin" "$d/$1.img"
  run 0 --slot0 "$d/$1.img"
  out_has "app: $2"
  ! grep -q "app: $3" "$d/out" || fail "the non-secure app $4"
  err_has "boot: the non-secure image faulted: SFSR $5"
}
probe probe "reading secure memory" "read secure memory" "read secure storage" 0x00000008
# nor call the attestation service's code but through its veneer: an invalid entry point (INVEP)
probe probe-call "calling secure code" "called secure code" "called past the veneer" 0x00000001

# --- the good image boots again, and a newer counter is kept in secure storage -----------------
sign "$d/v2.img" 1.1.0 3
run 0 --slot0 "$d/v2.img"
eq "$(head -1 "$d/out")" "boot: slot0 version 1.1.0+0 counter 3: booting" "newer image"
run 1 --slot0 "$d/v1.img" # counter 2 is now below the stored 3
eq "$(cat "$d/out")" "boot: refused: rollback: security counter 2 is below the device's 3" \
  "the counter survived in the flash file"

# --- secure storage: two copies of the counter; a raise cut short is ignored, corruption refuses --
store=$(($(sed -n 's/^RP_MCU_SECSTORE_OFF=//p' "$MCU_BUILD/layout.env")))
half=$(($(sed -n 's/^RP_MCU_SECSTORE_SIZE=//p' "$MCU_BUILD/layout.env") / 2))
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# The counter is 3 in copy 1 (sequence 2). Copy 0 now holds a raise to 9 that lost power before
# its magic was written (sequence 3, counter 9, a right check): it must not count.
put_bytes "$flash" "$store" "ffffffff$(le32 3)$(le32 9)$(le32 $(((~(9 ^ (3 * 0x9E3779B9))) & 0xffffffff)))"
run 0 --slot0 "$d/v2.img"
out_has "counter 3: booting"
run 1 --slot0 "$d/v1.img"
eq "$(cat "$d/out")" "boot: refused: rollback: security counter 2 is below the device's 3" \
  "a raise cut short does not count"
flip "$flash" $((store + half + 8)) # a byte of copy 1's counter: no power cut does that
run 1 --slot0 "$d/v2.img"
eq "$(cat "$d/out")" "boot: refused: secure storage is corrupt" "a corrupt counter refuses"
done_ok
