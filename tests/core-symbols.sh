#!/usr/bin/env bash
# The portable core must stay freestanding: its own object files (not the crypto port's) may
# call nothing but the port and a few <string.h> functions. A call to malloc, printf, open... in
# core/src fails this test. Arguments: the core static libraries.
set -euo pipefail
allowed='^(memcpy|memset|memcmp|memmove|rp_sha256_init|rp_sha256_update|rp_sha256_final|rp_sig_verify|rp_pubkey_alg|rp_sha256|rp_wipe|rp_ct_memcmp|_GLOBAL_OFFSET_TABLE_|__stack_chk_fail)$'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for lib in "$@"; do
  rm -f "$work"/*.o
  lib=$(realpath "$lib")
  (cd "$work" && ar x "$lib")
  for obj in error.c.o image.c.o crypto_common.c.o; do
    [ -f "$work/$obj" ] || { echo "FAIL: $lib has no $obj" >&2; status=1; continue; }
    for s in $(nm -u --format=just-symbols "$work/$obj"); do
      if ! [[ $s =~ $allowed ]]; then
        echo "FAIL: $lib($obj) calls $s: the core may not use the OS or allocate" >&2
        status=1
      fi
    done
  done
  # The check is not vacuous: image.c.o does call the port.
  nm -u --format=just-symbols "$work/image.c.o" | grep -qx rp_sha256_init ||
    { echo "FAIL: $lib: image.c.o does not call the port" >&2; status=1; }
done
[ $status -eq 0 ] && echo "core objects call only the port and <string.h>"
exit $status
