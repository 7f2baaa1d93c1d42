#!/usr/bin/env bash
# The server's seams (docs/layout.md): the transport (http.c) reaches the handlers only through
# the route table (routes.c), and a handler sees of the transport only the request/reply
# interface (req.h). Checked on the sources and on the objects of the server's library:
#   - http.c names no handler, includes no handler group's header, and its object calls nothing
#     a handler's object defines;
#   - no handler file includes http.h (the transport's internals), and no handler object calls a
#     function of http.c's that req.h does not declare.
# The handlers are the functions the route table names; their files, the ones defining them.
# Arguments: the source tree, the server's static library.
set -euo pipefail
src=$1
lib=$(realpath "$2")
server=$src/server
status=0
fail() { echo "FAIL: $*" >&2; status=1; }

# The handlers: the table's rows are {METHOD, "path", AUTH, FLAGS, handler, "summary"}.
handlers=$(sed -n '/^const rp_route_t rp_routes\[\] = {/,/^};/p' "$server/http/routes.c" |
  grep -oE ', rp_[a-z0-9_]+, "' | sed -E 's/^, (rp_[a-z0-9_]+), "$/\1/' | sort -u)
[ "$(wc -l <<<"$handlers")" -ge 50 ] || fail "found only $(wc -l <<<"$handlers") handlers in routes.c"

# The files that define them, and the headers that declare them.
alt=$(paste -sd'|' <<<"$handlers")
defs=$(grep -oE "^(void|bool) ($alt)\(" $(find "$server" -name '*.c') | sed -E 's/^(.*):(void|bool) (rp_[a-z0-9_]+)\($/\1 \3/')
for h in $(comm -23 <(echo "$handlers") <(cut -d' ' -f2 <<<"$defs" | sort -u)); do
  fail "no file defines $h"
done
handler_files=$(cut -d' ' -f1 <<<"$defs" | sort -u)
handler_headers=$(grep -lwE "$alt" $(find "$server" -name '*.h') || true)
[ "$(wc -l <<<"$handler_files")" -ge 8 ] || fail "found only: $handler_files"

# http.c names no handler and includes none of their headers.
for h in $(grep -owE "$alt" "$server/http/http.c" | sort -u); do
  fail "http.c names the handler $h: dispatch through routes.c"
done
for hdr in $handler_headers; do
  grep -qE "^#include \"$(basename "$hdr")\"" "$server/http/http.c" &&
    fail "http.c includes $(basename "$hdr"), a handler group's header"
done
grep -qE '^#include "routes.h"' "$server/http/http.c" || fail "http.c does not include routes.h"

# No handler file includes the transport's internals.
for f in $handler_files; do
  [ "$(basename "$f")" = http.c ] && fail "http.c defines a handler"
  grep -qE '^#include "http.h"' "$f" && fail "$(basename "$f") includes http.h: handlers use req.h"
done

# The objects: what each member of the library defines and calls (nm -A: "lib:member: ...").
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nm -A --defined-only --extern-only "$lib" 2>/dev/null | awk '$2 ~ /^[TDBR]$/ { split($1, p, ":"); print p[2], $3 }' >"$work/defined"
nm -A --undefined-only "$lib" 2>/dev/null | awk '{ split($1, p, ":"); print p[2], $NF }' >"$work/called"
defined() { awk -v m="$1" '$1 == m { print $2 }' "$work/defined" | sort -u; }
called() { awk -v m="$1" '$1 == m { print $2 }' "$work/called" | sort -u; }

http_defines=$(defined http.c.o)
grep -qx rp_reply_json <<<"$http_defines" || fail "http.c.o does not define rp_reply_json (no such member?)"
http_calls=$(called http.c.o)
grep -qx rp_route_dispatch <<<"$http_calls" || fail "http.c.o does not call rp_route_dispatch"
# What req.h declares: the transport's only face to handlers.
req_api=$(grep -oE '\brp_[a-z0-9_]+\(' "$server/http/req.h" | tr -d '(' | sort -u)
# What the handler groups' headers declare (declarations start in the first column).
group_api=$(grep -hoE '^[a-z][^(]*\brp_[a-z0-9_]+\(' $handler_headers | grep -oE 'rp_[a-z0-9_]+\($' |
  tr -d '(' | sort -u)
for s in $(comm -12 <(echo "$http_calls") <(echo "$group_api")); do
  fail "http.c calls $s, a handler group's function"
done
# Members by their file's name: two files of one name (in different folders) cannot be told apart
# in the archive, so those are left to the checks above.
twins=$(ar t "$lib" | sort | uniq -d)
for f in $handler_files; do
  m=$(basename "$f").o
  grep -qxF "$m" <<<"$twins" && continue
  d=$(defined "$m")
  [ -n "$d" ] || { fail "$m: not in $lib"; continue; }
  for s in $(comm -12 <(echo "$http_calls") <(echo "$d")); do
    fail "http.c calls $s, which $(basename "$f") defines"
  done
  for s in $(comm -12 <(called "$m") <(echo "$http_defines") | comm -23 - <(echo "$req_api")); do
    fail "$(basename "$f") calls $s of http.c, which req.h does not offer"
  done
done

[ $status -eq 0 ] && echo "seams hold: $(wc -l <<<"$handlers") handlers in $(wc -l <<<"$handler_files") files"
exit $status
