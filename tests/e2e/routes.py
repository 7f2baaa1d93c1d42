#!/usr/bin/python3
"""
The request loops of tests/e2e/routes.sh, over kept-alive connections (one per token) rather than
a curl process and a TLS handshake per request. routes.sh starts the server and makes the tokens;
this script makes the requests and holds each answer:

  routes.py URL CA table ROUTES_JSONL ACME SYSTEM_TOKEN_FILE DIR
      every route of the table (`rampart-server --routes`), as routes.sh describes: each path
      answers 405 to the methods the table lacks, with an Allow naming exactly those it has; a
      token route refuses no token and a wrong one (401), another tenant's admin (404), the role
      just below its own (403), and lets its own role reach the handler; a device route refuses a
      token (401); a public route answers without one. DIR holds acme-reader.token,
      acme-contributor.token, acme-admin.token, globex-admin.token and wrong.token.
  routes.py URL CA crl-repeat TENANT N ETAG FILE
      tenant TENANT's CRL N times: each 200, with ETag ETAG and FILE's bytes.
  routes.py URL CA tenants SYSTEM_TOKEN_FILE N PREFIX
      N new tenants PREFIX-1..PREFIX-N (each 201); prints their IDs, one a line.
  routes.py URL CA crls IDS_FILE
      each tenant's CRL in IDS_FILE once: each 200.

Prints the number of requests it checked (routes.sh adds them to its count); a failed check is
printed as FAIL: ... and the script exits 1 after the loop, listing every failure.
HTTP is the standard library's (http.client, ssl): nothing here writes HTTP by hand.
"""
import http.client
import json
import re
import ssl
import sys
import urllib.parse

METHODS_405 = ("GET", "POST", "PUT", "DELETE", "PATCH")
ALLOW_ORDER = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
# What routes.sh's curl sent with every request of the route loop: an empty JSON object.
BODY = b"{}\n"
RANKS = {"reader": 1, "contributor": 2, "admin": 3, "system": 4}
# What a device whose only bar is a proven failed attestation may still call: its account of why,
# and its update; never what grants trust (EST re-enrollment).
RECOVERY = ("GET /api/v1/device/roots", "GET /api/v1/device/targets",
            "GET /api/v1/device/images/{image}", "GET /api/v1/device/deltas/{from}/{to}",
            "POST /api/v1/device/updates", "POST /api/v1/device/status",
            "POST /api/v1/device/reports")
PARAM = re.compile(r"\{[a-z_]+\+?\}")  # {x}: one segment; {x+}: the rest of the path


class Server:
    """Requests over one kept-alive connection per token (None: no Authorization header)."""

    def __init__(self, url, ca):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.conns = {}
        self.calls = 0
        self.opened = 0
        self.failures = []

    def call(self, method, path, token=None, body=None):
        """(status, headers, body bytes) of one request."""
        hdrs = {}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            conn = self.conns.get(token)
            if conn is None:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=60, context=self.ctx)
                self.conns[token] = conn
            if conn.sock is None:
                self.opened += 1
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server may close a kept-alive connection between two requests (its idle
                # deadline): once, on a connection that had served before, try a fresh one.
                conn.close()
                del self.conns[token]
                if attempt or not reused:
                    raise
        self.calls += 1
        return resp.status, resp.headers, data

    def fail(self, msg):
        print("FAIL: " + msg, file=sys.stderr)
        self.failures.append(msg)

    def eq(self, got, want, what):
        if got != want:
            self.fail("%s: '%s' != '%s'" % (what, got, want))

    def done(self):
        for c in self.conns.values():
            c.close()
        if self.failures:
            sys.exit("routes.py: %d check(s) failed" % len(self.failures))
        print(self.calls)


def read_token(path):
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def fill(pattern, tenant, rest):
    """The pattern's {tenant} as TENANT and every other {x} as REST (a string, or a regex)."""
    return PARAM.sub(lambda m: tenant if m.group(0) == "{tenant}" else rest, pattern)


def path_regex(pattern, acme):
    lits, names = PARAM.split(pattern), PARAM.findall(pattern)
    rx = re.escape(lits[0])
    for name, lit in zip(names, lits[1:]):
        rx += (re.escape(acme) if name == "{tenant}" else ".+" if name.endswith("+}") else "[^/]+")
        rx += re.escape(lit)
    return re.compile(rx)


def table(srv, routes_file, acme, system_token_file, tokdir):
    with open(routes_file, encoding="utf-8") as f:
        routes = [json.loads(line) for line in f if line.strip()]
    tok = {n: read_token("%s/%s.token" % (tokdir, n))
           for n in ("acme-reader", "acme-contributor", "acme-admin", "globex-admin", "wrong")}
    system = read_token(system_token_file)
    # A token of tenant acme with exactly that rank (system: the bootstrap token).
    token_of = {1: tok["acme-reader"], 2: tok["acme-contributor"], 3: tok["acme-admin"], 4: system}
    # Each route's path as a regex: "{x}" is any one segment, {tenant} is acme.
    matchers = [(r["method"], path_regex(r["path"], acme)) for r in routes]
    seen = set()
    for r in routes:
        method, pattern, auth = r["method"], r["path"], r["auth"]
        path = fill(pattern, acme, "nosuchthing")
        # The methods of every route whose path this one fits.
        allowed = [m for m, rx in matchers if rx.fullmatch(path)]
        want_allow = ", ".join(m for m in ALLOW_ORDER
                               if m in allowed or (m == "HEAD" and "GET" in allowed))
        # Every other method: 405, and Allow names exactly the table's (once a path).
        if pattern not in seen:
            for m in METHODS_405:
                if m in allowed:
                    continue
                status, hdrs, _ = srv.call(m, path, system, BODY)
                srv.eq(status, 405, "%s %s (the table has: %s)" % (m, pattern, " ".join(allowed)))
                srv.eq(", ".join(hdrs.get_all("Allow") or []), want_allow, "Allow of " + pattern)
        seen.add(pattern)
        what = "%s %s" % (method, pattern)
        if auth == "token":
            need = RANKS.get(r["role"])
            if need is None:
                srv.fail("route %s: unknown role '%s'" % (pattern, r["role"]))
                continue
            srv.eq(srv.call(method, path, None, BODY)[0], 401, what + " without a token")
            srv.eq(srv.call(method, path, tok["wrong"], BODY)[0], 401, what + " with a wrong token")
            if "{tenant}" in pattern:
                srv.eq(srv.call(method, path, tok["globex-admin"], BODY)[0], 404,
                       what + " with another tenant's admin token")
            if need > 1:
                srv.eq(srv.call(method, path, token_of[need - 1], BODY)[0], 403,
                       what + " with a role below " + r["role"])
            # With its role, the handler answers (a route that escalates may ask for more,
            # depending on the request: the most its path allows then).
            if r.get("escalates") is True:
                need = 3 if "{tenant}" in pattern else 4
            status, _, body = srv.call(method, path, token_of[need], BODY)
            if status in (401, 403, 405):
                srv.fail("%s with its own role: %d %s" % (what, status, body[:300]))
        elif auth == "session":
            # A token is no session (tests/e2e/console-server.sh checks the cookie itself).
            srv.eq(srv.call(method, path, system, BODY)[0], 401,
                   what + " without a session cookie")
        elif auth == "device":
            # A token is no certificate.
            srv.eq(srv.call(method, path, system, BODY)[0], 401,
                   what + " without a device certificate")
        elif auth == "public":
            status, _, body = srv.call(method, path, None, BODY)
            if status in (401, 403, 405):
                srv.fail("%s is public: %d %s" % (what, status, body[:300]))
        else:
            srv.fail("route %s: unknown auth '%s'" % (pattern, auth))
    # The recovery routes (docs/protocol.md "Verdicts"): exactly this fixed set, device routes
    # all; a new one is a decision about what a failed device may reach, made here too.
    recovery = sorted("%s %s" % (r["method"], r["path"]) for r in routes if r.get("recovery"))
    srv.eq(recovery, sorted(RECOVERY), "the recovery routes")
    for r in routes:
        if r.get("recovery") and r["auth"] != "device":
            srv.fail("route %s is a recovery route but not a device route" % r["path"])
    print("checked %d routes: %d requests over %d connections" % (len(routes), srv.calls, srv.opened),
          file=sys.stderr)


def crl_path(tenant):
    return "/api/v1/tenants/%s/crl" % tenant


def crl_repeat(srv, tenant, n, etag, file):
    with open(file, "rb") as f:
        first = f.read()
    for i in range(int(n)):
        status, hdrs, body = srv.call("GET", crl_path(tenant))
        srv.eq(status, 200, "CRL request %d" % (i + 1))
        srv.eq(hdrs.get("ETag"), etag, "the CRL's ETag while nothing is revoked (request %d)" % (i + 1))
        if body != first:
            srv.fail("the cached CRL changed (request %d)" % (i + 1))


def tenants(srv, system_token_file, n, prefix):
    token = read_token(system_token_file)
    for i in range(1, int(n) + 1):
        status, _, body = srv.call("POST", "/api/v1/tenants", token,
                                   json.dumps({"name": "%s-%d" % (prefix, i)}).encode())
        if status != 201:
            sys.exit("FAIL: tenant %s-%d: %d %s" % (prefix, i, status, body[:300]))
        print(json.loads(body)["id"])


def crls(srv, ids_file):
    with open(ids_file, encoding="ascii") as f:
        ids = [line.strip() for line in f if line.strip()]
    for t in ids:
        srv.eq(srv.call("GET", crl_path(t))[0], 200, "the CRL of tenant " + t)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    srv = Server(sys.argv[1], sys.argv[2])
    cmd, args = sys.argv[3], sys.argv[4:]
    if cmd == "table" and len(args) == 4:
        table(srv, *args)
    elif cmd == "crl-repeat" and len(args) == 4:
        crl_repeat(srv, *args)
    elif cmd == "tenants" and len(args) == 3:
        tenants(srv, *args)
        for c in srv.conns.values():
            c.close()
        return
    elif cmd == "crls" and len(args) == 1:
        crls(srv, *args)
    else:
        sys.exit(__doc__)
    srv.done()


if __name__ == "__main__":
    main()
