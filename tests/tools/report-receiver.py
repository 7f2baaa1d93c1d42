#!/usr/bin/env python3
"""A tiny receiver for POST /api/v1/device/reports (docs/failure-reporting.md), for the answers the
real rampart-server cannot be made to give: 429 and 503 with Retry-After, 400, 413, a dropped
connection. Mutual TLS: the server's certificate from the test's CA, the client's checked against
the device's tenant CA. What it answers comes from a mode file, read at each request:

  200            {"stored": n, "duplicates": 0, "refused": []}
  429 N | 503 N  with Retry-After: N
  400 | 500      an error
  413>K          413 when the batch has more than K reports, otherwise 200
  drop           the connection closed with no answer

Each request is appended to LOG as one JSON line: {"n", "seqs", "dropped", "answer"}.
Usage: report-receiver.py CERT KEY CLIENT_CA MODE_FILE LOG PORT_FILE
"""
import http.server
import json
import os
import ssl
import sys

cert, key, client_ca, mode_file, log_file, port_file = sys.argv[1:7]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        with open(mode_file) as f:
            mode = f.read().split()
        reports = body.get("reports", []) if isinstance(body, dict) else []
        if self.path != "/api/v1/device/reports":
            mode = ["404"]
        if mode[0].startswith("413>"):
            mode = ["413"] if len(reports) > int(mode[0][4:]) else ["200"]
        with open(log_file, "a") as f:
            f.write(json.dumps({"n": len(reports), "seqs": [r.get("seq") for r in reports],
                                "kinds": [r.get("kind") for r in reports],
                                "dropped": body.get("dropped"), "answer": mode[0]}) + "\n")
        if mode[0] == "drop":
            self.close_connection = True
            return
        if mode[0] == "200":
            self.answer(200, {"stored": len(reports), "duplicates": 0, "refused": []})
        elif mode[0] in ("429", "503"):
            self.answer(int(mode[0]), {"error": "busy", "message": "later"},
                        [("Retry-After", mode[1])])
        else:
            self.answer(int(mode[0]), {"error": "test", "message": "the receiver's " + mode[0]})


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(client_ca)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
