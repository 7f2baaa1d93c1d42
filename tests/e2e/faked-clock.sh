#!/usr/bin/env bash
# libfaketime preloaded into each Rampart program, as the tests that move a program's clock do
# (at_clock, tests/e2e/lib.sh): every one starts, and a program run so sees the moved clock (date,
# as the control). Its point is the ASan build, where Debian 12's libfaketime deadlocks a program
# as it starts unless FAKED_ENV keeps ASan's allocator off the clock (docs/development.md, "Faked
# clocks"). Whether it does depends on the lengths of strings
# such as the program's path: each runs here through a link in a directory with a long name, where
# without FAKED_ENV's option every one of them hung, so that this fails (in faked_ok's 30 s) rather
# than the tests that move a clock hanging in some worktrees and not in others.
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${RAMPART_SERVER:?set RAMPART_SERVER}" "${MONITOR:?set MONITOR}"
long=$E2E_DIR/$(printf 'x%.0s' $(seq 100))
mkdir "$long"
# The preload itself (review r9dev L3: --version reads no clock, and a library ld.so cannot preload
# is only warned about): a program run with FAKED_ENV sees its clock a day on, one without does not.
now=$(date +%s)
faked=$(env "${FAKED_ENV[@]}" FAKETIME=+1d date +%s 2>"$E2E_DIR/faked.err") ||
  fail "date under libfaketime failed: $(cat "$E2E_DIR/faked.err")"
[ ! -s "$E2E_DIR/faked.err" ] || fail "libfaketime was not preloaded cleanly: $(cat "$E2E_DIR/faked.err")"
[ "$faked" -ge $((now + 86400 - 60)) ] && [ "$faked" -le $((now + 86400 + 600)) ] ||
  fail "under FAKED_ENV with FAKETIME=+1d the clock says $faked, not a day after $now"
[ "$(date +%s)" -lt $((now + 600)) ] || fail "the clock outside moved too"
E2E_CHECKS=$((E2E_CHECKS + 1))
for bin in "$RAMPART" "$AGENT" "$RAMPART_SERVER" "$MONITOR"; do
  ln -s "$bin" "$long/${bin##*/}"
  expect 0 at_clock +1d "$long/${bin##*/}" --version
done
done_ok
