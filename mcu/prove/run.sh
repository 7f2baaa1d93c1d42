#!/usr/bin/env bash
# `make prove` and the ctest prove.eva: Frama-C's Eva over the boot stage's verification path
# (mcu/prove/driver.c: the core's rp_image_verify() over an arbitrary slot, the crypto port
# replaced by the contracts of mcu/prove/crypto_contracts.h). Every property Eva cannot prove (an
# alarm: an access out of bounds, an uninitialized read, an overflow, undefined behaviour, or a
# contract's precondition at a call) is compared with mcu/prove/alarms.expected, each of which
# docs/mcu.md ("Proof") explains. Exit 0 only when the analysis ran to the end of the verification
# and found exactly the expected ones; a new alarm (or one that went away: update the list) fails.
#   mcu/prove/run.sh [OUT_DIR]    (default: a temporary directory; eva.log and report.csv in it)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/mcu/prove
command -v frama-c >/dev/null ||
  { echo "prove: no frama-c: run scripts/install-deps --prove (Debian's frama-c-base)" >&2; exit 1; }
mbedtls=$("$root/scripts/install-deps" --mbedtls-dir)
[ -f "$mbedtls/include/mbedtls/sha256.h" ] ||
  { echo "prove: no Mbed TLS headers in $mbedtls: run scripts/install-deps" >&2; exit 1; }
# The slot's size, from the one owner of the memory map.
slot_size=$(sed -n 's/^set(RP_MCU_SLOT_SIZE *\(0x[0-9A-Fa-f]*\)).*/\1/p' "$root/mcu/layout.cmake")
[ -n "$slot_size" ] || { echo "prove: no RP_MCU_SLOT_SIZE in mcu/layout.cmake" >&2; exit 1; }

out=${1:-}
if [ -z "$out" ]; then out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"

# The options (docs/mcu.md explains them): a 32-bit little-endian target like the Cortex-M33;
# -eva-precision 2 with the octagon and equality domains, return values split (an error path
# and a success path are not merged); the helpers whose checks bound a TLV's length are inlined,
# so the check reduces the caller's own copy; small fixed loops (wiping, formatting a number)
# are followed iteration by iteration. Unsigned arithmetic wraps by definition in C and is not an
# alarm; what a wrap could cause (an access out of bounds) is.
cd "$root"
set +e
frama-c -c11 -machdep gcc_x86_32 \
  -cpp-extra-args="-DRP_CRYPTO_MBEDTLS -DMBEDTLS_CONFIG_FILE='\"rp_mbedtls_config.h\"' -DRP_MCU_SLOT_SIZE=${slot_size}u -Icore/include -Imcu/include -I$mbedtls/include -Imcu/prove" \
  mcu/prove/driver.c core/src/image.c core/src/bytes.c core/src/crypto_common.c core/src/error.c \
  -eva -eva-precision 2 -eva-domains cvalue,symbolic-locations,equality,octagon \
  -eva-split-return auto -inline-calls unprot_len_ok,key_tlv_hash \
  -eva-slevel-function rp_wipe:200,append_u32:300,rp_image_version_format:100 \
  -warn-pointer-downcast -eva-no-print -eva-msg-key=-final-states -eva-print-callstacks \
  -then -report-csv "$out/report.csv" >"$out/eva.log" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ] || [ ! -s "$out/report.csv" ]; then
  tail -30 "$out/eva.log" >&2
  echo "prove: frama-c failed (exit $rc); the log: $out/eva.log" >&2
  exit 1
fi

# The analysis must have reached the end of verification: the contracts of the signature check
# and of the digest's end are met somewhere (not dead code, which would prove nothing).
for need in 'rp_sig_verify	precondition	Valid' 'rp_sha256_final	precondition	Valid'; do
  if ! cut -f4,5,6 "$out/report.csv" | grep -qF "$need"; then
    echo "prove: the analysis did not reach the verification's end ($need missing): $out/eva.log" >&2
    exit 1
  fi
done

# Alarms: every property not proven (Unknown or Invalid), keyed by file, function, kind and text
# (not the line, so that an edit elsewhere in a file does not change the list).
awk -F'\t' 'NR > 1 && ($6 == "Unknown" || $6 ~ /^Invalid/) { print $2 "\t" $4 "\t" $5 "\t" $7 }' \
  "$out/report.csv" | LC_ALL=C sort -u >"$out/alarms"
grep -v '^#' "$here/alarms.expected" | grep -v '^$' | LC_ALL=C sort -u >"$out/expected"
summary=$(grep -E '^ +[0-9]+ alarms? generated|No alarm|Preconditions|Assertions' "$out/eva.log" || true)
if ! diff -u "$out/expected" "$out/alarms" >"$out/diff"; then
  cat "$out/diff" >&2
  grep -A8 'eva:alarm' "$out/eva.log" | head -80 >&2 || true
  echo "prove: the alarms differ from mcu/prove/alarms.expected (+ new, - gone); the log: $out/eva.log" >&2
  exit 1
fi
echo "$summary"
echo "prove: $(wc -l <"$out/alarms") property(ies) not proven, exactly those of mcu/prove/alarms.expected (docs/mcu.md explains them)"
