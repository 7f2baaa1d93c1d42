#!/usr/bin/env python3
"""One request sent as it is given, over TLS, for tests/e2e/http-errors.sh: the requests the
service must refuse are ones no HTTP library writes (a header line without a colon, a
Content-Length that is not a number, a chunk size past the limit, an unknown method).

  raw-request.py PORT CA < REQUEST
      sends REQUEST's bytes in one write, reads the answer with Python's http.client and prints
      it as JSON: {"status", "version", "headers": {lower-case name: value}, "body"}.
"""
import http.client
import json
import socket
import ssl
import sys


def main():
    port, ca = int(sys.argv[1]), sys.argv[2]
    request = sys.stdin.buffer.read()
    ctx = ssl.create_default_context(cafile=ca)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                         server_hostname="127.0.0.1") as s:
        s.sendall(request)
        answer = http.client.HTTPResponse(s)
        answer.begin()
        body = answer.read()
    print(json.dumps({
        "status": answer.status,
        "version": answer.version,
        "headers": {k.lower(): v for k, v in answer.getheaders()},
        "body": body.decode("utf-8", "replace"),
    }))


main()
