#!/usr/bin/env bash
# End to end: the requests libevent's evhttp refuses by itself, before any route sees them
# (server/http/http.c, "libevent's own answers"), are answered with the service's JSON error
# ({"error","message"}, the transport's headers, the connection closed): a body over 1 MiB (with
# Content-Length, with Expect: 100-continue, chunked), a chunk coding it cannot read, headers over
# 16 KiB, a header line it cannot parse, a Content-Length that is not a number (or one it reads its
# own way: "+5", past 2^63-1), an Expect it does not know, a method it does not know (with no header
# line too); a target in absolute form is answered as one in origin form (Connection: close said). curl sends what it can write; raw-request.py (one write over
# TLS, the answer read with Python's http.client) what no HTTP library writes. The CLI shows the
# message. A request line evhttp cannot parse (or a failing first header line) still gets
# libevent's HTML page (docs/api.md says why): checked too, so that the day it changes, the
# documentation does.
. "$(dirname "$0")/lib.sh"
d=$E2E_DIR
raw=$(dirname "$0")/raw-request.py

start_server "$d/srv"
port=$(cat "$d/srv.port")
export RAMPART_SERVER=$SERVER_URL RAMPART_CA_FILE=$SERVER_CA RAMPART_TOKEN_FILE=$ADMIN_TOKEN

# raw REQUEST: send REQUEST (printf %b: \r\n written as such); the answer in $d/answer.json.
raw() { printf '%b' "$1" | python3 "$raw" "$port" "$SERVER_CA" >"$d/answer.json"; }
# curl_answer ARGS...: curl with ARGS; the answer in $d/answer.json, as raw() writes it.
curl_answer() {
  curl -s -o "$d/answer.body" -w '{"status":%{http_code},"headers":%{header_json}}' \
    --cacert "$SERVER_CA" "$@" >"$d/answer.meta"
  jq --rawfile body "$d/answer.body" '.headers |= map_values(.[0]) | .body = $body' \
    "$d/answer.meta" >"$d/answer.json"
}
answer() { jq -r "$1" "$d/answer.json"; }
# json_error STATUS CODE TEXT: the answer is STATUS with the documented JSON error, its code CODE
# and a message holding TEXT; with the headers every answer of the service carries, and
# Connection: close (evhttp cannot read on after such a request).
json_error() {
  eq "$(answer .status)" "$1" "status of a request evhttp refused"
  eq "$(answer '.headers["content-type"]')" application/json "Content-Type of the $1"
  eq "$(answer '.headers["x-content-type-options"]')" nosniff "X-Content-Type-Options of the $1"
  eq "$(answer '.headers["strict-transport-security"]')" max-age=31536000 "HSTS of the $1"
  eq "$(answer '.headers.connection')" close "Connection of the $1"
  answer .body >"$d/body"
  body_has "(keys == [\"error\", \"message\"]) and .error == \"$2\""
  body_has ".message | contains(\"$3\")"
}

# --- a body over 1 MiB ----------------------------------------------------------------------------
head -c $((2 * 1024 * 1024)) /dev/zero >"$d/big"
curl_answer -X POST -H 'Expect:' -H 'Content-Type: application/json' --data-binary "@$d/big" \
  "$SERVER_URL/api/v1/attest"
json_error 413 too_large "the request body is over 1 MiB"
json_error 413 too_large "images go through the chunked upload API"
# The upload client's form: no 100 Continue, the 413 at once, before the body is sent.
curl_answer -X PUT -H 'Expect: 100-continue' --data-binary "@$d/big" "$SERVER_URL/api/v1/attest"
json_error 413 too_large "the request body is over 1 MiB"
# A client that waits for the 100 Continue (curl gives up after a second) is answered all the same,
# and its connection ended: one answer, then the end of it.
raws() { printf '%b' "$1" | python3 "$raw" "$port" "$SERVER_CA" --all >"$d/answers.json"; }
raws 'POST /api/v1/attest HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\nExpect: 100-continue\r\n\r\n'
eq "$(jq -c 'map([.status, .headers.connection, (.body | fromjson | .error)])' "$d/answers.json")" \
  '[[413,"close","too_large"]]' "a body over 1 MiB, its client waiting for 100 Continue: a 413"
jq -r '.[0].body' "$d/answers.json" >"$d/body"
body_has '.message | contains("refused before it was sent (Expect: 100-continue)")'
# Chunked: refused at the chunk size that takes it past 1 MiB, and at one that is not a number.
raw 'POST /api/v1/attest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n'
json_error 413 too_large "the request's chunked body is over 1 MiB"
raw 'POST /api/v1/attest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'
json_error 413 too_large "or a chunk-size line is not a bare hexadecimal number"
raw 'POST /api/v1/attest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n'
json_error 413 too_large "a chunk extension is not read either"

# --- headers --------------------------------------------------------------------------------------
curl_answer -H "X-Padding: $(head -c 17000 /dev/zero | tr '\0' a)" "$SERVER_URL/healthz"
json_error 400 bad_request "headers over 16 KiB"
raw 'GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'
json_error 400 bad_request "a malformed header line"
# Not a number, and numbers libevent reads its own way: "+5" as 5, one past 2^63-1 as 2^63-1 (a
# body it would wait for until the idle timeout, no answer): refused at once, all of them.
for len in ten +5 99999999999999999999 9223372036854775808; do
  raw "POST /api/v1/attest HTTP/1.1\r\nHost: x\r\nContent-Length: $len\r\n\r\n"
  json_error 400 bad_request "the request's Content-Length is not a number"
done
# A transfer coding but chunked: libevent refuses it beside a Content-Length, and would take it
# alone as no body (what follows read as the next request).
for len in 'Content-Length: 2\r\n' ''; do
  raw "POST /api/v1/attest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n$len\r\nab"
  json_error 400 bad_request "the service reads no Transfer-Encoding but chunked"
done
raw 'POST /api/v1/attest HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 200-ok\r\n\r\n'
json_error 417 expectation_failed "no Expect header but 100-continue"

raw 'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n'
json_error 501 unknown_method "the service knows no such method"
# without a header line (HTTP/1.0 needs no Host), and in absolute form (Connection: close said)
raw 'BREW / HTTP/1.0\r\n\r\n'
json_error 501 unknown_method "the service knows no such method"
raw 'BREW https://x/pot HTTP/1.1\r\nHost: x\r\n\r\n'
json_error 501 unknown_method "the service knows no such method"
raw 'GET https://x/healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'
json_error 400 bad_request "a malformed header line"

# --- what stays libevent's: a request line it cannot parse ----------------------------------------
raw 'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n'
eq "$(answer .status)" 400 "status of a request line with HTTP/2.0"
eq "$(answer '.headers["content-type"]')" text/html "Content-Type of an unparsed request line"
# and a first header line that fails: no header read, which is how the request line's case is told
raw 'GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n'
eq "$(answer .status) $(answer '.headers["content-type"]')" "400 text/html" \
  "a failing first header line"

# --- what a connection may hold unread, and a refusal ends its connection --------------------------
# A chunk-size line that never ends (libevent reads it without a bound of its own): the connection
# is shut once it holds more than a request can (1 MiB and the next line), not at its deadline
# with every byte the client sent in memory.
printf 'POST /api/v1/attest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' |
  python3 "$raw" "$port" "$SERVER_CA" --flood 64 >"$d/flood.json"
eq "$(jq -c '[.ended, .sent < 64 * 1048576]' "$d/flood.json")" '[true,true]' \
  "a chunk-size line past the bound ends its connection"
# After an answer that says Connection: close nothing more is read, whatever the method: a CONNECT
# (libevent 2.1 keeps its connection open) refused for two Content-Length, with a GET behind it.
raws 'CONNECT x:1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 48\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
eq "$(jq -c 'map([.status, .headers.connection])' "$d/answers.json")" '[[400,"close"]]' \
  "a CONNECT refused: one answer, then the end of the connection"
raws 'CONNECT x:1 HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
eq "$(jq -c 'map(.status)' "$d/answers.json")" '[400]' "a CONNECT evhttp refused: one answer"
# A request in absolute form is one in origin form: refused, it says Connection: close and ends
# its connection; served, its connection is kept (libevent 2.1 alone reads it as a proxy's).
raws 'CONNECT https://x/ HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
eq "$(jq -c 'map([.status, .headers.connection])' "$d/answers.json")" '[[400,"close"]]' \
  "a CONNECT in absolute form refused: one answer, then the end of the connection"
raws 'GET https://x/healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
eq "$(jq -c 'map([.status, .headers.connection])' "$d/answers.json")" '[[200,null],[200,"close"]]' \
  "a GET in absolute form served, its connection kept for the next request"
# HEAD and TRACE: evhttp reads no body for them; one announced is refused, never read as a request.
for m in HEAD TRACE; do
  raws "$m /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 36\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
  eq "$(jq -c 'map([.status, .headers.connection])' "$d/answers.json")" '[[400,"close"]]' \
    "$m with a Content-Length: one answer, then the end of the connection"
done
raw 'TRACE /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
json_error 400 bad_request "a HEAD or TRACE request has no body"

# The service serves on, and counted the refusals with the rest.
http GET /healthz -; is_status 200
http GET /metrics -; is_status 200
eq "$(sed -n 's/^rampart_http_requests_total{code="4xx"} //p' "$d/body")" 22 \
  "4xx answers counted (the 22 JSON refusals above; libevent's page is not the service's)"
eq "$(sed -n 's/^rampart_connections_closed_total{reason="unread_input"} //p' "$d/body")" 1 \
  "the connection past the bound counted"

# --- the CLI shows the message --------------------------------------------------------------------
expect 0 "$RAMPART" tenant create acme; acme=$(cat "$d/out")
ids=()
for i in $(seq 20); do ids+=("$(head -c 60000 /dev/zero | tr '\0' 'd')$i"); done
expect_fail "$RAMPART" device assign --tenant "$acme" --product p --group g "${ids[@]}"
err_has "the service refused (HTTP 413): the request body is over 1 MiB"
done_ok
