#!/usr/bin/env bash
# The portable core must stay freestanding: its own object files may call only each other, the
# crypto port, a few <string.h> functions and libcbor's allocation-free encoder and streaming
# decoder. A call to malloc, printf, open... in core/src fails this test.
# Arguments: the core static libraries (core/src objects plus one crypto port).
set -euo pipefail
core_objects="error.c.o image.c.o crypto_common.c.o cbor.c.o eat.c.o component.c.o"
external='^(memcpy|memset|memcmp|memmove|strlen|cbor_encode_[a-z0-9_]+|cbor_stream_decode|_GLOBAL_OFFSET_TABLE_|__stack_chk_fail)$'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for lib in "$@"; do
  rm -f "$work"/*.o
  lib=$(realpath "$lib")
  (cd "$work" && ar x "$lib")
  # what the archive defines (core and port) may be called freely
  defined=$(nm --defined-only --format=just-symbols "$work"/*.o | sort -u)
  for obj in $core_objects; do
    [ -f "$work/$obj" ] || { echo "FAIL: $lib has no $obj" >&2; status=1; continue; }
    for s in $(nm -u --format=just-symbols "$work/$obj"); do
      grep -qxF "$s" <<<"$defined" && continue
      [[ $s =~ $external ]] && continue
      echo "FAIL: $lib($obj) calls $s: the core may not use the OS or allocate" >&2
      status=1
    done
  done
  # The check is not vacuous: image.c.o does call the port.
  nm -u --format=just-symbols "$work/image.c.o" | grep -qx rp_sha256_init ||
    { echo "FAIL: $lib: image.c.o does not call the port" >&2; status=1; }
done
[ $status -eq 0 ] && echo "core objects call only the core, the port, <string.h> and libcbor's encoder/decoder"
exit $status
