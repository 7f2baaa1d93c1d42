#!/usr/bin/env python3
"""A service whose paging does not move on, for the e2e test of the CLI's paging guard
(tests/e2e/cli-output.sh, review r17 L1): a list asked for whole is "too long" (400
paging_required); every page asked for then has one row, and MODE says its cursor:

  repeat  the same next_after every page (a proxy or cache repeating one answer)
  back    a next_after before the last one
  empty   no rows, with a next_after

It serves TLS on loopback with CERT and KEY, on a port the system picks (written to PORT_FILE),
and counts the pages it answers in PORT_FILE.pages.

Usage: hostile-pages.py PORT_FILE CERT KEY MODE
"""
import http.server
import json
import os
import ssl
import sys
import urllib.parse

port_file, cert, key, mode = sys.argv[1:5]
pages = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        global pages
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        if "limit" not in query:
            code, body = 400, {"error": "paging_required", "message": "page it"}
        else:
            pages += 1
            with open(port_file + ".pages", "w") as f:
                f.write(str(pages))
            after = query.get("after", [""])[0]
            row = {"id": "t_%04d" % pages, "name": "row%d" % pages, "created_at": "2026-01-01T00:00:00Z"}
            if mode == "repeat":
                code, body = 200, {"tenants": [row], "next_after": "t_0001"}
            elif mode == "back":
                code, body = 200, {"tenants": [row], "next_after": "t_0005" if not after else "t_0002"}
            else:
                code, body = 200, {"tenants": [], "next_after": "t_0009"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
