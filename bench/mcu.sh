#!/usr/bin/env bash
# bench/mcu.sh MCU_BUILD RAMPART: the microcontroller's figures (issue 14, docs/mcu.md "Size"),
# from the build and the emulator:
#   size          the secure boot stage's flash (code and read-only data, with its crypto) and RAM
#                 (data, bss) from arm-none-eabi-size, against the goal of 24 KiB of flash; then
#                 what takes the space: the code of each object file linked (its .text sections
#                 in the link map), largest first; and the same of the secure attestation service,
#                 a partition linked apart (attest.elf), which the boot stage measures and starts
#   instructions  a 256 KiB image verified by the boot stage on QEMU's mps2-an505, each instruction
#                 traced (-singlestep -d exec: QEMU names the function of each): those executed
#                 inside rp_image_verify, against those of them in the SHA-256 functions (the hash
#                 of the same image in the same run): the ratio is what the signature check, the
#                 parsing and the rest cost beyond the hash
# (the function counts run on to the attestation service's start, a few instructions past the
# verification's last)
#   stack         the secure stack's high-water mark (the boot stage paints it at reset and prints
#                 the deepest word written: mcu/boot/startup.c) at the jump to the app, after the
#                 256 KiB image's verification, and after the app's call to the attestation service
# Skipped when there is no microcontroller build or no qemu-system-arm. Takes about a minute
# (the trace runs the emulator an instruction at a time).
set -euo pipefail
mcu=${1:?usage: bench/mcu.sh MCU_BUILD RAMPART}
rampart=${2:?usage: bench/mcu.sh MCU_BUILD RAMPART}
top=$(cd "$(dirname "$0")/.." && pwd)
for t in arm-none-eabi-size qemu-system-arm; do
  command -v "$t" >/dev/null || { echo "bench/mcu: no $t (scripts/install-deps): skipped"; exit 0; }
done
[ -f "$mcu/boot.elf" ] && [ -f "$mcu/boot.map" ] && [ -f "$mcu/attest.map" ] && [ -f "$mcu/app.bin" ] ||
  { echo "bench/mcu: no microcontroller build in $mcu (make mcu): skipped"; exit 0; }
d=$(mktemp -d /tmp/rampart-bench-mcu.XXXXXX)
trap 'rm -rf "$d"' EXIT

# The flash and RAM of one image (NAME ELF MAP), then its code by object file: a kept section is
# its name, then (on the same line, or the next when the name is long) its address, its size and
# the object it came from.
measure() {
  local text data bss
  echo "bench/mcu: $1 ($2)"
  read -r text data bss _ < <(arm-none-eabi-size "$2" | tail -1)
  printf '  flash %d bytes (%.1f KiB%s): code and read-only data %d, initialised data %d\n' \
    $((text + data)) "$(echo "($text + $data) / 1024" | bc -l)" "$4" "$text" "$data"
  printf '  RAM   %d bytes of static data (data %d, bss %d: Mbed TLS'"'"'s pool, buffers)\n' \
    $((data + bss)) "$data" "$bss"
  echo "  code by object file (the .text sections the link kept; $(basename "$3")):"
  awk '
    /^ \.text/ { if (NF >= 4) { add($2, $3, $4) } else { pending = 1 }; next }
    pending && NF >= 3 && $1 ~ /^0x/ { add($1, $2, $3) }
    { pending = 0 }
    function hex(h,   i, v) { v = 0; h = tolower(substr(h, 3))
      for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
      return v }
    # A section at address 0 is one the link discarded (the map lists those first).
    function add(addr, size, obj) { n = hex(size)
      if (n > 0 && hex(addr) > 0) { sub(/.*\//, "", obj); bytes[obj] += n } }
    END { for (o in bytes) printf "%8d  %s\n", bytes[o], o }' "$3" |
    sort -rn | head -15 | sed 's/^/  /'
}
measure "the secure boot stage, with its crypto (the stack has the rest of its secure RAM)" \
  "$mcu/boot.elf" "$mcu/boot.map" "; goal 24 KiB"
measure "the secure attestation service, a partition linked apart (with its own crypto)" \
  "$mcu/attest.elf" "$mcu/attest.map" ""

echo "bench/mcu: instructions to verify a 256 KiB image (traced on the emulator)"
pad=$((256 * 1024 - 0x200 - 1024 - $(stat -c %s "$mcu/app.bin")))
{ cat "$mcu/app.bin"; head -c "$pad" /dev/zero; } >"$d/big.bin"
install -m 600 "$top/mcu/keys/dev-p256.pem" "$d/dev-p256.pem" # rampart wants a 0600 key
"$rampart" image sign --type firmware --key "$d/dev-p256.pem" --version 1.0.0 \
  --security-counter 1 "$d/big.bin" "$d/big.img" >/dev/null
MCU_BUILD=$mcu "$top/scripts/mcu-run" --flash "$d/flash.bin" --slot0 "$d/big.img" >"$d/run" 2>&1 ||
  { cat "$d/run" >&2; echo "bench/mcu: the image does not boot" >&2; exit 1; }
size=$(stat -c %s "$d/big.img")
eval "$(grep -E '^RP_MCU_FLASH_SIZE=' "$mcu/layout.env")"
mkfifo "$d/trace"
# The boot stage verifies slot 0 once (no upgrade waiting); counted from rp_image_verify's first
# instruction to its last, stopped when the attestation service starts (after the verification).
# The service is loaded from its ELF here (the bytes of attest.bin, at the same addresses) so that
# the trace names its functions.
timeout 600 qemu-system-arm -M mps2-an505,memory-backend=flash -m "$((RP_MCU_FLASH_SIZE))"B \
  -object memory-backend-file,id=flash,mem-path="$d/flash.bin",size="$((RP_MCU_FLASH_SIZE))"B,share=on \
  -display none -serial null -monitor none -semihosting-config enable=on,target=native \
  -kernel "$mcu/boot.elf" -device loader,file="$mcu/attest.elf" -singlestep -d exec,nochain -D "$d/trace" </dev/null >/dev/null 2>&1 &
qemu=$!
awk -v size="$size" '
  $1 == "Trace" {
    fn = $NF
    if (fn == "rp_attest_init") exit # past the verification: the service starts
    if (fn ~ /^rp_image_verify(\.|$)/) inside = 1 # under LTO: rp_image_verify.constprop.0
    if (!inside) next
    total++
    by[fn]++
    if (fn ~ /sha256/) sha++
    if (fn ~ /^rp_image_verify(\.|$)/) { n = total; s = sha } # up to its last instruction
  }
  END {
    if (s == 0) { print "  no SHA-256 instructions traced"; exit 1 }
    printf "  image %d bytes: %d instructions in rp_image_verify, %d of them in SHA-256 (%.1f per byte)\n", size, n, s, s / size
    printf "  verification / SHA-256 alone: %.3f\n", n / s
    print "  the functions that executed the most of them:"
    for (f in by) printf "%10d  %s\n", by[f], f | "sort -rn | head -10"
  }' "$d/trace"
kill "$qemu" 2>/dev/null || true
wait "$qemu" 2>/dev/null || true
echo "bench/mcu: the secure stack's high-water mark (painted at reset; the deepest word written)"
awk '
  /^boot: stack high-water [0-9]+ of [0-9]+ bytes$/ { print "  at the jump to the app (the 256 KiB image verified): " $4 " of " $6 " bytes"; n++ }
  /^boot: stack high-water [0-9]+ of [0-9]+ bytes, with the attestation service$/ { print "  after the app'"'"'s call to the attestation service:  " $4 " of " $6 " bytes"; n++ }
  END { if (n != 2) { print "bench/mcu: the boot stage printed no stack high-water" > "/dev/stderr"; exit 1 } }' "$d/run"
