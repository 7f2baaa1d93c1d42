# Shared by the end-to-end tests: a scratch directory, and assertions on exit codes and output.
# Each test sources this, then calls the helpers; the first failed assertion ends the test.
set -euo pipefail

: "${RAMPART:?set RAMPART to the rampart binary}"
E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rampart-e2e.XXXXXX")
trap 'rm -rf "$E2E_DIR"' EXIT
E2E_CHECKS=0

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect CODE CMD...: run CMD, require exit status CODE; its stdout and stderr are kept in
# $E2E_DIR/out and $E2E_DIR/err for the checks that follow.
expect() {
  local want=$1 got=0
  shift
  "$@" >"$E2E_DIR/out" 2>"$E2E_DIR/err" || got=$?
  E2E_CHECKS=$((E2E_CHECKS + 1))
  if [ "$got" != "$want" ]; then
    echo "--- stdout" >&2; cat "$E2E_DIR/out" >&2
    echo "--- stderr" >&2; cat "$E2E_DIR/err" >&2
    fail "exit $got, wanted $want: $*"
  fi
}

# out_has / err_has TEXT: the last command's stdout / stderr contains TEXT.
out_has() { grep -qF -- "$1" "$E2E_DIR/out" || { cat "$E2E_DIR/out" >&2; fail "stdout lacks '$1'"; }; }
err_has() { grep -qF -- "$1" "$E2E_DIR/err" || { cat "$E2E_DIR/err" >&2; fail "stderr lacks '$1'"; }; }
out_lines() { [ "$(wc -l <"$E2E_DIR/out")" -eq "$1" ] || { cat "$E2E_DIR/out" >&2; fail "stdout is not $1 line(s)"; }; }

# eq A B WHAT
eq() { [ "$1" = "$2" ] || fail "$3: '$1' != '$2'"; E2E_CHECKS=$((E2E_CHECKS + 1)); }

# le16_at FILE OFFSET: the little-endian 16-bit value at OFFSET.
le16_at() { od -An -tu2 -j "$2" -N2 --endian=little "$1" | tr -d ' '; }
# put_bytes FILE OFFSET HEX: overwrite bytes in place.
put_bytes() { printf '%s' "$3" | xxd -r -p | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# flip FILE OFFSET: invert one byte.
flip() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  put_bytes "$1" "$2" "$(printf '%02x' $((b ^ 0xff)))"
}

done_ok() { echo "ok: $E2E_CHECKS checks"; }
