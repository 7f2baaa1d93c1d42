#!/usr/bin/env python3
"""A tiny webhook receiver on loopback for the threat e2e test (tests/e2e/threat.sh).

It checks each POST the way a tenant's receiver should: X-Rampart-Signature must be
"sha256=" and the hex HMAC-SHA256 of the exact body under the tenant's webhook secret (read from
SECRET_FILE at each request, since the secret is shown only once the URL, which holds this
receiver's port, has been set). A verified body is appended, one JSON line each, to OUT; a
refused one is answered 401 and appended to OUT.rejected. The first --fail-first requests are
answered 500 (after being checked), so that the service's retries are exercised. The delivery's
X-Rampart-Delivery ID of each body taken is appended to OUT.ids (a receiver de-duplicates by
it). While --down-file's file exists, the receiver is down: each connection is closed unanswered,
nothing read, nothing recorded (a receiver down that keeps its port: one stopped and started
again would bind the port again, which another process may have taken meanwhile).

Usage: webhook-receiver.py PORT_FILE SECRET_FILE OUT [--fail-first N] [--down-file PATH]
"""
import hashlib
import hmac
import http.server
import json
import os
import sys

port_file, secret_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
fail_first = int(opts.get("--fail-first", "0"))
down_file = opts.get("--down-file")
seen = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        if down_file is not None and os.path.exists(down_file):
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            with open(secret_file, "rb") as f:
                secret = f.read().strip()
        except OSError:
            secret = b""
        want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        got = self.headers.get("X-Rampart-Signature", "")
        ok = bool(secret) and hmac.compare_digest(want, got)
        if ok:
            json.loads(body)  # the body is JSON, or this request fails loudly
        seen += 1
        if ok and seen <= fail_first:
            self.send_response(500)
            self.end_headers()
            return
        with open(out if ok else out + ".rejected", "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        if ok:
            with open(out + ".ids", "a") as f:
                f.write(self.headers.get("X-Rampart-Delivery", "") + "\n")
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
