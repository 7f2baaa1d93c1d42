#!/usr/bin/env bash
# Upgrades on the emulated microcontroller (docs/mcu.md): an image written into the secondary slot
# is verified by the boot stage and swapped into the primary slot on trial; the app confirms it
# (the security counter rises only then) or the next boot swaps the previous image back; a refused
# slot1 image is named and the old image keeps booting; a relay cut mid-swap and a new hand-over
# still end with the old image booting; a corrupt swap status boots nothing; and
# power cuts walked through the install, the confirmation and the revert (scripts/mcu-powercut,
# a cut in every step of each) always end with the expected image booting and the counter never
# ahead of the confirmed image.
. "$(dirname "$0")/lib.sh"
: "${MCU_BUILD:?set MCU_BUILD to the microcontroller build}" "${MCU_RUN:?set MCU_RUN to scripts/mcu-run}"
: "${MCU_KEYS:?set MCU_KEYS to mcu/keys}"
d=$E2E_DIR
for f in boot.elf boot-cut.elf app.bin noconfirm.bin; do
  [ -f "$MCU_BUILD/$f" ] || fail "no $MCU_BUILD/$f (make builds build/mcu; scripts/install-deps)"
done
export MCU_BUILD
key=$MCU_KEYS/dev-p256.pem
flash=$d/flash.bin
powercut=$(dirname "$MCU_RUN")/mcu-powercut
sign() { # sign OUT VERSION COUNTER PAYLOAD
  expect 0 "$RAMPART" image sign --type firmware --key "$key" --version "$2" \
    --security-counter "$3" "$4" "$1"
}
run() { # run STATUS ARGS...: mcu-run on the test's flash file
  local want=$1
  shift
  expect "$want" "$MCU_RUN" --flash "$flash" --timeout 30 "$@"
}
verdict() { grep -m1 '^boot: \(slot0 version\|refused\)' "$d/out"; }
stored() { sed -n 's/^boot: .*security counter \([0-9]*\)$/\1/p' "$d/err" | tail -1; }

# The new images span two flash sectors (the app, padded), so the swap moves more than one.
{ cat "$MCU_BUILD/app.bin"; head -c 3000 /dev/zero; } >"$d/big.bin"
{ cat "$MCU_BUILD/noconfirm.bin"; head -c 3000 /dev/zero; } >"$d/nc.bin"
sign "$d/v1.img" 1.0.0 2 "$MCU_BUILD/app.bin"
sign "$d/v2.img" 2.0.0 3 "$d/big.bin"
sign "$d/nc.img" 2.1.0 3 "$d/nc.bin"
sign "$d/nc2.img" 2.2.0 3 "$d/nc.bin"
sign "$d/old.img" 0.9.0 1 "$MCU_BUILD/app.bin"
cp "$d/v2.img" "$d/tampered.img"
flip "$d/tampered.img" 1024

expect 2 "$MCU_RUN" --flash "$flash" --cut 0; err_has "--cut"
run 0 --slot0 "$d/v1.img"
eq "$(verdict)" "boot: slot0 version 1.0.0+0 counter 2: booting" "the first image"
eq "$(stored)" 2 "the counter of the first image"

# --- a refused slot1 image is named, erased, and the old image keeps booting --------------------
run 0 --slot1 "$d/tampered.img"
eq "$(head -1 "$d/out")" "boot: slot1 refused: hash mismatch: the image was modified" "tampered slot1"
eq "$(verdict)" "boot: slot0 version 1.0.0+0 counter 2: booting" "the old image after a refusal"
run 0 --slot1 "$d/old.img"
eq "$(head -1 "$d/out")" "boot: slot1 refused: rollback: security counter 1 is below the device's 2" \
  "slot1 below the counter"
run 0
eq "$(head -1 "$d/out")" "boot: slot0 version 1.0.0+0 counter 2: booting" "a refused slot1 is not retried"
cp "$flash" "$d/base-install.bin"

# --- an upgrade boots on trial, without raising the counter; the app confirms it ---------------
run 0 --slot1 "$d/v2.img"
err_has "boot: slot1 verified: installing version 2.0.0+0"
eq "$(verdict)" "boot: slot0 version 2.0.0+0 counter 3: booting" "the new image on trial"
err_has "boot: slot0 is on trial (it must confirm itself); security counter 2"
out_has "app: confirmed this image"
cp "$flash" "$d/base-confirm.bin"
run 0
err_has "boot: slot0 confirmed by the image: the security counter is raised"
eq "$(verdict)" "boot: slot0 version 2.0.0+0 counter 3: booting" "the confirmed image"
eq "$(stored)" 3 "the counter after the confirmation"
run 0
eq "$(verdict)" "boot: slot0 version 2.0.0+0 counter 3: booting" "the confirmed image again"
run 0 --slot1 "$d/v1.img"
eq "$(head -1 "$d/out")" "boot: slot1 refused: rollback: security counter 2 is below the device's 3" \
  "the previous image after the confirmation"

# --- an image that does not confirm itself is reverted at the next boot -------------------------
cp "$d/base-install.bin" "$flash"
run 0 --slot1 "$d/nc.img"
eq "$(verdict)" "boot: slot0 version 2.1.0+0 counter 3: booting" "the unconfirmed image on trial"
eq "$(stored)" 2 "no raise on trial"
cp "$flash" "$d/base-revert.bin"
run 0
err_has "boot: slot0 was not confirmed: reverting to the previous image"
eq "$(verdict)" "boot: slot0 version 1.0.0+0 counter 2: booting" "reverted"
eq "$(stored)" 2 "the counter after a revert"
run 0
eq "$(head -1 "$d/out")" "boot: slot0 version 1.0.0+0 counter 2: booting" "the reverted image is not retried"

# --- a relay cut mid-swap, then a new hand-over: slot 1 is written only once the board ended it ---
# (review r11 L4) The install of nc.img cut half-way through its swap (sector 0 swapped, slot1's
# sector 0 holding what the revert needs), then another image that does not confirm itself handed
# over: mcu-run first boots the board until the cut upgrade ended (the install resumed, the trial
# reverted), then writes slot1; the new image boots on trial, is reverted, and the old one boots.
cp "$d/base-install.bin" "$flash"
run 1 --slot1 "$d/nc.img" --cut 30
out_has "boot: power cut at cut point 30"
run 0 --slot1 "$d/nc2.img"
err_has "mcu-run: settling the board: boot: resuming the install at step 3"
err_has "mcu-run: settling the board: boot: slot0 was not confirmed: reverting to the previous image"
err_has "boot: slot1 verified: installing version 2.2.0+0"
eq "$(verdict)" "boot: slot0 version 2.2.0+0 counter 3: booting" "the new image on trial after the cut"
run 0
eq "$(verdict)" "boot: slot0 version 1.0.0+0 counter 2: booting" "the old image after a cut and a revert"
eq "$(stored)" 2 "the counter after a cut and a revert"

# --- a swap status no power cut can make boots nothing ------------------------------------------
status=$(($(sed -n 's/^RP_MCU_STATUS_OFF=//p' "$MCU_BUILD/layout.env")))
cp "$d/base-revert.bin" "$flash"
put_bytes "$flash" $((status + 4 * 8)) 00000000 # the first step's mark
run 1
eq "$(cat "$d/out")" "boot: refused: the swap status is corrupt" "a corrupt swap status"
# (review r12 L1) A hand-over settles such a board at most twice, as documented, then writes
# nothing: slot 1 keeps what the status names.
run 1 --slot1 "$d/nc2.img"
err_has "an upgrade under way on the board did not end (its swap status is not erased): slot 1 not written"
eq "$(grep -c '^mcu-run: settling the board: boot: refused: the swap status is corrupt$' "$d/err")" 2 \
  "settling boots of a board whose upgrade does not end"

# --- power cuts: through the install, the confirmation and the revert ---------------------------
# After any cut the next boot must boot the expected image with the counter of the confirmed one
# (the counter never falls, so the cut itself left it no higher). Cut point 2n+1 is just before
# flash operation n, 2n+2 half-way through it (docs/mcu.md). The points below cut every step of
# each once, at a different place within each swap step, and end at the last write (mcu-powercut
# checks that the next point is past it, so a change to the writes shows here); the full walks
# are in docs/mcu.md.
# The install (50 points): the log's header (erase the revert log 1-2, the install log 3-4, the
# sector count 5-6, its check 7-8, the magic 9-10), six swap steps of six points from 11 (erase
# 0-1, program 2-3, mark 4-5), the trailer's erase 47-48, the TRIAL mark 49-50.
expect 0 "$powercut" --base "$d/base-install.bin" --slot1 "$d/v2.img" --version 2.0.0+0 \
  --counter 2 --points "2 9 11 20 24 33 37 46 48 50"
out_has "10 cut points walked"
# The confirmation (18 points): the counter's raise (erase its copy 1-2, sequence 3-4, counter 5-6,
# check 7-8, magic 9-10), the CONFIRMED mark 11-12, erasing slot1's first sector 13-14, the
# install log 15-16, the revert log 17-18.
expect 0 "$powercut" --base "$d/base-confirm.bin" --version 2.0.0+0 --counter 3 \
  --points "2 7 9 11 14 16 18"
out_has "7 cut points walked"
# The revert (46 points): its magic 1-2, six swap steps of six points from 3, the REVERTED mark
# 39-40, erasing slot1's first sector 41-42, the install log 43-44, the revert log 45-46.
expect 0 "$powercut" --base "$d/base-revert.bin" --version 1.0.0+0 --counter 2 \
  --points "1 3 12 16 25 29 38 39 42 44 46"
out_has "11 cut points walked"
done_ok
