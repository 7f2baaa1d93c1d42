#!/usr/bin/env bash
# End to end, what the `rampart` CLI gives an operator besides its commands, against a real
# server: --output json|table|yaml (each read back by jq and PyYAML and compared), the progress
# bar of uploads and downloads (on a terminal only, never beside JSON), the bash and zsh
# completion made from the command table, --version on every program, and the man pages made from
# --help (rendered by man, each naming every command and flag its --help names).
. "$(dirname "$0")/lib.sh"
: "${AGENT:?set AGENT}" "${MONITOR:?set MONITOR}" "${MAN_DIR:?set MAN_DIR to build/share/man/man1}"
d=$E2E_DIR
PY=/usr/bin/python3 # Debian's, with python3-yaml
server_bin=$RAMPART_SERVER # the service's variables below name the running one

# --- --version on every program -----------------------------------------------------------------
for b in "$RAMPART" "$RAMPART_SERVER" "$AGENT" "$MONITOR"; do
  expect 0 "$b" --version
  name=$(basename "$b")
  grep -q "^$name [0-9]" "$d/out" || fail "$name --version: $(cat "$d/out")"
done

# --- output formats -----------------------------------------------------------------------------
# formats WHAT ARGS...: the command in json, yaml and table; JSON parses, and a table was printed
# (PyYAML reads each YAML back at the end, in one go: it must be the same data as the JSON).
# Leaves the JSON in $d/json and the table in $d/table.
n_formats=0
formats() {
  local what=$1
  shift
  n_formats=$((n_formats + 1))
  expect 0 "$@" --output json; jq -e . "$d/out" >/dev/null || fail "$what: not JSON"; cp "$d/out" "$d/json"
  cp "$d/out" "$d/f$n_formats.json"
  expect 0 "$@" --output yaml; cp "$d/out" "$d/yaml"; cp "$d/out" "$d/f$n_formats.yaml"
  echo "$what" >"$d/f$n_formats.what"
  expect 0 "$@" --output table; cp "$d/out" "$d/table"
  [ -s "$d/table" ] || [ "$(jq '[.[] | arrays | length] | add' "$d/json")" = 0 ] ||
    fail "$what: an empty table of a list that is not empty"
}
yaml_is_json() {
  "$PY" -c 'import sys, json, yaml
for i in range(1, int(sys.argv[2]) + 1):
    f = "%s/f%d." % (sys.argv[1], i)
    y, j = yaml.safe_load(open(f + "yaml")), json.load(open(f + "json"))
    if y != j:
        sys.exit("%s: yaml %r\n!= json %r" % (open(f + "what").read().strip(), y, j))' "$d" "$n_formats" ||
    fail "YAML differs from JSON"
  E2E_CHECKS=$((E2E_CHECKS + n_formats))
}
# table_has_column TABLE HEADER: the first line names that column.
table_has_column() { head -1 "$1" | grep -qE "(^|  )$2(  |$)" || fail "no column $2 in: $(head -1 "$1")"; }

expect 2 "$RAMPART" image show --output xml x; err_has "--output must be text|json|table|yaml"

# Offline: an image's details.
expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/img.key"
hash=$(sed -n 's/.*key hash //p' "$d/out")
expect 0 "$RAMPART" key public --key "$d/img.key" --out "$d/img.pub"
formats "key public" "$RAMPART" key public --key "$d/img.key"
eq "$(jq -r .key_hash "$d/json")" "$hash" "key public's key hash"
eq "$(jq -r .public_key "$d/json")" "$(cat "$d/img.pub")" "key public's PEM"
head -c 700000 /dev/urandom >"$d/payload"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.2.3 --security-counter 7 "$d/payload" "$d/fw.img"
formats "image show" "$RAMPART" image show "$d/fw.img"
jq -e '.type == null' "$d/json" >/dev/null || fail "image show: an image without a type TLV: $(jq -c .type "$d/json")"
grep -q '^TYPE  *-$' "$d/table" || fail "image show table: no type is not '-': $(grep '^TYPE' "$d/table")"
# an object with a list inside: a row per key, the list as compact JSON
grep -q '^VERSION  *1\.2\.3+0$' "$d/table" || fail "image show table: $(cat "$d/table")"
grep -q '^TLVS  *\[{' "$d/table" || fail "image show table: the TLVs"
eq "$(jq -r .version "$d/json")" 1.2.3+0 "image show json"

start_server "$d/srv"
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
# Names that a careless YAML writer would let a reader take for a boolean, a number or a date.
for p in no 1.0 2026-11-28; do expect 0 "$RAMPART" product create --tenant "$acme" "$p"; done

formats "tenant list" "$RAMPART" tenant list
eq "$(jq '.tenants | length' "$d/json")" 1 "tenants"
table_has_column "$d/table" ID; table_has_column "$d/table" NAME
eq "$(wc -l <"$d/table")" 2 "tenant list table: a header and a row per tenant"
grep -q "^$acme  .*acme" "$d/table" || fail "tenant list table: $(cat "$d/table")"

formats "product list" "$RAMPART" product list --tenant "$acme"
eq "$(jq -r '[.products[].name] | sort | join(",")' "$d/json")" "1.0,2026-11-28,no" "product names"
eq "$(wc -l <"$d/table")" 4 "product list table rows"
grep -q "'no'\|\"no\"" "$d/yaml" || fail "the product named no is not quoted: $(cat "$d/yaml")"

formats "tenant policy" "$RAMPART" tenant policy --tenant "$acme"
grep -q '^ALLOW DEBUG  *false$' "$d/table" || fail "tenant policy table: $(cat "$d/table")"
expect 0 "$RAMPART" tenant policy --tenant "$acme" # the text form, as before
out_has "allow debug:                  no"

expect 0 "$RAMPART" device-group create --tenant "$acme" --product no canary
formats "device-group show" "$RAMPART" device-group show --tenant "$acme" --product no canary
formats "token list" "$RAMPART" token list
formats "alert list" "$RAMPART" alert list --tenant "$acme"
formats "failure list" "$RAMPART" failure list --tenant "$acme"
yaml_is_json

# --- progress: drawn on a terminal, and only there ----------------------------------------------
expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/img.pub" --name release
# not a terminal: nothing on stderr
expect 0 "$RAMPART" image upload --tenant "$acme" "$d/fw.img"
[ ! -s "$d/err" ] || fail "progress drawn into a pipe: $(cat -A "$d/err" | head -3)"
# a terminal (script gives the command one): the bar, to 100%
expect 0 script -qefc "'$RAMPART' image upload --tenant '$acme' '$d/fw.img'" /dev/null
grep -qE "fw.img \[#{30}\] 0.7 of 0.7 MiB \(100%\)" "$d/out" || fail "no progress bar: $(cat -A "$d/out" | head -5)"
# ... never beside JSON
expect 0 script -qefc "'$RAMPART' image upload --tenant '$acme' '$d/fw.img' --output json" /dev/null
! grep -q "MiB" "$d/out" || fail "a progress bar beside JSON: $(cat -A "$d/out" | head -5)"
# a download on a terminal: the bar ends the line
expect 0 script -qefc "'$RAMPART' ca download --tenant '$acme' --out '$d/ca.pem'" /dev/null
grep -q "ca.pem \[##############################\] .*(100%)" "$d/out" || fail "no download bar: $(cat -A "$d/out")"
openssl x509 -in "$d/ca.pem" -noout || fail "the downloaded CA"

# --- an image signed without --type: no type, said so, never "(null)" -------------------------------
formats "image list" "$RAMPART" image list --tenant "$acme"
jq -e '[.images[].type] == [null]' "$d/json" >/dev/null || fail "image list: the type: $(jq -c '[.images[].type]' "$d/json")"
! grep -q '(null)' "$d/json" "$d/yaml" "$d/table" || fail "(null) in image list: $(cat "$d/table")"
grep -qE '^[0-9a-f]{64}  +fw  +1\.2\.3\+0  +7  +-  ' "$d/table" || fail "image list table: no type is not '-': $(cat "$d/table")"
expect 0 "$RAMPART" image list --tenant "$acme" # the text form
grep -qE '^[0-9a-f]{64} +fw +1\.2\.3\+0 +- +[0-9]+$' "$d/out" || fail "image list text: $(cat "$d/out")"
expect 0 "$RAMPART" image show "$d/fw.img"; out_has "type:               none (no type TLV)"
# stored as no type ("", not the "(null)" snprintf made of a NULL name) ...
eq "$(sqlite3 -cmd ".timeout 10000" "$d/srv/rampart.db" "SELECT DISTINCT quote(type) FROM images")" "''" "the stored type"
# ... and one stored by a service before this fix, as "(null)", read as none too
sqlite3 -cmd ".timeout 10000" "$d/srv/rampart.db" "UPDATE images SET type = '(null)'" || fail "sqlite3"
expect 0 "$RAMPART" image list --tenant "$acme" --output json
jq -e '[.images[].type] == [null]' "$d/out" >/dev/null || fail "a stored (null): $(cat "$d/out")"
expect 0 "$RAMPART" image sign --key "$d/img.key" --version 1.2.3 --output json "$d/payload" "$d/fw2.img"
jq -e '.valid == true and .type == null and .version == "1.2.3+0"' "$d/out" >/dev/null || fail "image sign --output json: $(cat "$d/out")"
# written files, said as data
expect 0 "$RAMPART" ca download --tenant "$acme" --out "$d/ca2.pem" --output json
jq -e --arg f "$d/ca2.pem" '.file == $f' "$d/out" >/dev/null || fail "ca download --output json: $(cat "$d/out")"
expect 0 "$RAMPART" update-root rotate-online-key --tenant "$acme" --output yaml
"$PY" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d["public_key"].startswith("-----BEGIN PUBLIC KEY-----"), d' "$d/out" ||
  fail "rotate-online-key --output yaml: $(cat "$d/out")"

# --- every list whole past one page (review r16 M2) -----------------------------------------------
# The service refuses a list of more than 10,000 asked for whole (400 paging_required); the CLI then
# reads it a page at a time. RAMPART_PAGE_SIZE=2 (a test's) makes it page lists of three, so each
# list is read in two pages or more (--verbose names each page) and must be the whole list.
expect 0 "$RAMPART" tenant create beta; expect 0 "$RAMPART" tenant create gamma
for g in two three; do expect 0 "$RAMPART" device-group create --tenant "$acme" --product no "$g"; done
for r in reader reader contributor; do expect 0 "$RAMPART" token create --tenant "$acme" --role "$r"; done
for n in 2 3; do
  expect 0 "$RAMPART" key generate --type ecdsa-p256 --out "$d/k$n.key"
  expect 0 "$RAMPART" key public --key "$d/k$n.key" --out "$d/k$n.pub"
  expect 0 "$RAMPART" image-key add --tenant "$acme" --key "$d/k$n.pub" --name "k$n"
  mkdir -p "$d/v$n"
  expect 0 "$RAMPART" image sign --key "$d/img.key" --version "1.3.$n" "$d/payload" "$d/v$n/fw.img"
  expect 0 "$RAMPART" image upload --tenant "$acme" "$d/v$n/fw.img"
  img=$(cat "$d/out")
done
for n in 1 2 3; do expect 0 "$RAMPART" deployment create --tenant "$acme" --product no --group canary "$img"; done
# paged KEY ARGS...: the list 2 at a time is the whole list's rows (three or more), with no cursor left
paged() {
  local key=$1
  shift
  expect 0 "$RAMPART" "$@" --output json
  jq -c "[.${key}[].id] | sort" "$d/out" >"$d/whole"
  [ "$(jq length "$d/whole")" -ge 3 ] || fail "$*: fewer than 3 rows: $(cat "$d/out")"
  expect 0 env RAMPART_PAGE_SIZE=2 "$RAMPART" --verbose "$@" --output json
  eq "$(jq -c "[.${key}[].id] | sort" "$d/out")" "$(cat "$d/whole")" "$* read 2 at a time"
  ! jq -e 'has("next_after")' "$d/out" >/dev/null || fail "$*: a cursor in the whole list"
  [ "$(grep -c "a page: GET .*limit=2" "$d/err")" -ge 2 ] || fail "$*: not read in pages: $(cat "$d/err")"
}
paged tenants tenant list
paged tokens token list --tenant "$acme"
paged image_keys image-key list --tenant "$acme"
paged images image list --tenant "$acme"
cp "$d/whole" "$d/images"
paged products product list --tenant "$acme"
paged groups device-group list --tenant "$acme" --product no
paged deployments deployment list --tenant "$acme"
expect 0 env RAMPART_PAGE_SIZE=1 "$RAMPART" token list # the system's (one): a page and an empty one
eq "$(wc -l <"$d/out")" 2 "token list 1 at a time: a header and the system token"
# --limit N: the first N rows in ID order, asking for no more than N
expect 0 "$RAMPART" --verbose deployment list --tenant "$acme" --limit 2 --output json
eq "$(jq -c '[.deployments[].id]' "$d/out")" "$(jq -c '.[:2]' "$d/whole")" "deployment list --limit 2"
eq "$(grep -c "a page: GET" "$d/err")" 1 "deployment list --limit 2: one page"
grep -q "a page: GET .*deployments?limit=2$" "$d/err" || fail "--limit 2: not 2 asked for: $(cat "$d/err")"
expect 0 "$RAMPART" image list --tenant "$acme" --limit 1
eq "$(wc -l <"$d/out")" 2 "image list --limit 1: a header and a row"
expect 2 "$RAMPART" tenant list --limit 0; err_has "--limit is a number of rows"
expect 0 env RAMPART_PAGE_SIZE=2 "$RAMPART" image list --tenant "$acme" # the text form
eq "$(grep -cE '^[0-9a-f]{64} +fw ' "$d/out")" "$(jq length "$d/images")" "image list text 2 at a time: $(cat "$d/out")"

# r17 L1: a service (or a proxy) whose pages do not move on is refused, not followed for ever: a
# cursor repeated, one that goes back, one on a page with no rows; exit 1, no row printed
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=hostile -days 1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$d/hostile.key" -out "$d/hostile.pem" 2>/dev/null
declare -A said=([repeat]="next_after t_0001 after t_0001" [back]="next_after t_0002 after t_0005"
  [empty]="next_after t_0009 after the start, on a page of 0 rows")
for mode in repeat back empty; do
  python3 "$(dirname "$0")/../tools/hostile-pages.py" "$d/hp-$mode.port" "$d/hostile.pem" \
    "$d/hostile.key" "$mode" &
  E2E_PIDS+=("$!")
  wait_until 30 test -s "$d/hp-$mode.port" || fail "the hostile service ($mode) did not start"
  expect 1 timeout 60 "$RAMPART" tenant list --server "https://127.0.0.1:$(cat "$d/hp-$mode.port")" \
    --ca-file "$d/hostile.pem"
  err_has "the server's paging did not advance (${said[$mode]}"
  [ ! -s "$d/out" ] || fail "$mode: rows printed from a list that did not advance: $(cat "$d/out")"
  [ "$(cat "$d/hp-$mode.port.pages")" -le 2 ] || fail "$mode: $(cat "$d/hp-$mode.port.pages") pages read"
done

# --- completion ---------------------------------------------------------------------------------
expect 0 "$RAMPART" completion bash; cp "$d/out" "$d/rampart.bash"
bash -n "$d/rampart.bash" || fail "the bash completion does not parse"
# complete WORDS...: what the bash completion offers for the last word (may be empty)
complete_words() {
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _rampart; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$d/rampart.bash" "$@"
}
eq "$(complete_words rampart dev | sort | tr '\n' ' ')" "device device-group " "completing dev"
eq "$(complete_words rampart device-group "" | sort | tr '\n' ' ')" "--help create list set show " "device-group's subcommands"
eq "$(complete_words rampart tenant list --ten)" "--tenant" "a flag"
eq "$(complete_words rampart image show --output y)" "yaml" "an --output value"
eq "$(complete_words rampart key generate --ty)" "--type" "key generate's flag"
eq "$(complete_words rampart key generate --ro)" "" "no flag of another command"
eq "$(complete_words rampart --ver | sort | tr '\n' ' ')" "--verbose --version " "the options before the command"
eq "$(complete_words rampart comp)" "completion" "completion itself"
# Every command word completes, and each answers --help (so the table is what dispatch uses).
for w in $(complete_words rampart ""); do
  case $w in -*) continue ;; esac
  expect 0 "$RAMPART" "$w" --help
done
# Every command that prints takes --output (walked from the command table, through the completion
# made from it): all but completion and help, which print a script or help, not data.
pairs=0
while read -r group verb flags; do
  pairs=$((pairs + 1))
  case $group in completion | help) continue ;; esac
  [[ " $flags " == *" --output "* ]] || fail "rampart $group $verb takes no --output: $flags"
done < <(sed -n 's/^ *"\([a-z-]*\) \([a-z-]*\)") flags="\([^"]*\)".*/\1 \2 \3/p' "$d/rampart.bash")
[ "$pairs" -gt 40 ] || fail "only $pairs commands in the completion: the walk read nothing"
E2E_CHECKS=$((E2E_CHECKS + 1))
expect 2 "$RAMPART" completion fish; err_has "bash or zsh"
expect 0 "$RAMPART" completion zsh; cp "$d/out" "$d/_rampart"
if command -v zsh >/dev/null; then
  zsh -n "$d/_rampart" || fail "the zsh completion does not parse"
  # Loaded (compinit's compdef and compadd stand-ins: compinit itself takes seconds): it
  # registers _rampart, which offers the command words, then a command's subcommands.
  zcomplete() {
    zsh -fc 'compdef() { print -r -- "compdef $*"; }; compadd() { print -r -- "$@"; }
_files() { print files; }; . "$1"; shift; words=("$@"); CURRENT=$#; _rampart' _ "$d/_rampart" "$@"
  }
  zcomplete rampart dev >"$d/z"
  eq "$(sed -n 1p "$d/z")" "compdef _rampart rampart" "zsh: the function registered"
  grep -q -- "^-- key image .* device .* device-group " "$d/z" || fail "zsh: the commands: $(cat "$d/z")"
  zcomplete rampart device-group "" >"$d/z"
  grep -q -- "^-- create list show set --help$" "$d/z" || fail "zsh: subcommands: $(cat "$d/z")"
  zcomplete rampart tenant list --ten >"$d/z"
  grep -q -- "^-- .*--tenant " "$d/z" || fail "zsh: the flags: $(cat "$d/z")"
  E2E_CHECKS=$((E2E_CHECKS + 3))
fi

# --- man pages ----------------------------------------------------------------------------------
# render PAGE: man's plain-text rendering, wide, in ASCII.
render() { MANWIDTH=250 LC_ALL=C man -l "$1" 2>"$d/man.err" | col -bx; }
# documents PAGE HELPFILE: the page names every --flag the help names.
documents() {
  local flag missing=
  for flag in $(grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' "$2" | sort -u); do
    grep -qF -- "$flag" "$1" || missing="$missing $flag"
  done
  [ -z "$missing" ] || fail "$1 lacks$missing"
  E2E_CHECKS=$((E2E_CHECKS + 1))
}
for b in "$RAMPART" "$server_bin" "$AGENT" "$MONITOR"; do
  name=$(basename "$b")
  [ -s "$MAN_DIR/$name.1" ] || fail "no man page $MAN_DIR/$name.1 (is help2man installed?)"
  render "$MAN_DIR/$name.1" >"$d/$name.txt"
  [ ! -s "$d/man.err" ] || fail "man -l $name.1: $(cat "$d/man.err")"
  grep -q "^NAME" "$d/$name.txt" && grep -q "$name - " "$d/$name.txt" || fail "$name.1 has no NAME"
  "$b" --help >"$d/$name.help"
  documents "$d/$name.txt" "$d/$name.help"
done
"$RAMPART" help --all >"$d/all.help"
documents "$d/rampart.txt" "$d/all.help"
# Every flag's text is two spaces or a line after it (help2man takes a flag and its text parted by
# one space for one long flag, and runs them together in the man page): on each line that starts
# with a flag, at most one word (its value: N, FILE, a|b) before two spaces.
"$PY" - "$d/rampart-server.help" "$d/rampart-agent.help" "$d/rampart-monitor.help" "$d/all.help" <<'PY' ||
import re, sys
bad, seen = [], 0
for f in sys.argv[1:]:
    for line in open(f):
        m = re.match(r"^ +(-[A-Za-z], )?--[a-z][a-z0-9-]*(.*)$", line.rstrip("\n"))
        if m:
            seen += 1
            if len(m.group(2).split("  ", 1)[0].split()) > 1:
                bad.append("%s: %s" % (f.rsplit("/", 1)[1], line.strip()))
if seen < 30:
    bad.append("only %d flag lines: the check reads no help" % seen)
sys.exit("\n".join(bad) if bad else 0)
PY
  fail "a flag and its text one space apart"
E2E_CHECKS=$((E2E_CHECKS + 1))
for w in $(complete_words rampart ""); do
  case $w in -*) continue ;; esac
  grep -qE "(^| )$w( |$)" "$d/rampart.txt" || fail "rampart.1 lacks the command $w"
done
done_ok
