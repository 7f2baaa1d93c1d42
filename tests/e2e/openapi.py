#!/usr/bin/python3
"""
The API description (docs/openapi.yaml) held against the server, by the two tests that run this:

  openapi.py check DOC RAMPART_SERVER
      the document alone: its schemas valid JSON Schema 2020-12 (the metaschema), every $ref
      resolving, every operation well formed; and its paths both ways against the route table
      (`rampart-server --routes`): a route the document lacks, or a path or method the server does
      not have, fails; so does an operation whose security differs from the route's caller
      (public, a bearer token of a role and the console's session cookie, the cookie alone, a
      device certificate). A route's "{name+}" (the rest of the path) is the document's "{name}".

  openapi.py exercise DOC   (environment: see main())
      a real rampart-server on loopback: every route called at least once, as an operator with
      tokens and as a real device over mutual TLS, and each answer (status, Content-Type, JSON
      body, required headers, and the headers every answer carries: x-rampart-every-answer)
      validated against the document; each request's query and JSON body
      too. Fails listing every mismatch, and every route the run did not reach.

HTTP is the standard library's (http.client, ssl); schemas are validated by python3-jsonschema.
"""
import base64
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.parse

import jsonschema
import yaml

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def load_doc(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def segments(path):
    return [s for s in path.split("/") if s]


def is_param(seg):
    return len(seg) >= 2 and seg[0] == "{" and seg[-1] == "}"


class Doc:
    """The document, with the lookups both tests need."""

    def __init__(self, doc):
        self.doc = doc
        self.resolver = jsonschema.RefResolver.from_schema(doc)

    def deref(self, node):
        """A Reference Object's target (components/responses, parameters...), else node."""
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            _, node = self.resolver.resolve(node["$ref"])
        return node

    def operations(self):
        for path, item in self.doc.get("paths", {}).items():
            for m in METHODS:
                if m in item:
                    yield path, m, item, item[m]

    def match(self, method, path):
        """The template and operation the request path fits: a literal segment before a
        parameter (OpenAPI: concrete paths match first), among the templates with this method."""
        want = segments(path)
        best = None
        for tmpl, item in self.doc.get("paths", {}).items():
            if method.lower() not in item:
                continue
            segs = segments(tmpl)
            if len(segs) != len(want):
                continue
            if all(is_param(s) or s == w for s, w in zip(segs, want)):
                literal = sum(1 for s in segs if not is_param(s))
                if best is None or literal > best[0]:
                    best = (literal, tmpl, item)
        if best is None:
            return None, None, None
        return best[1], best[2], best[2][method.lower()]

    def parameters(self, item, op):
        out = {}
        for p in item.get("parameters", []) + op.get("parameters", []):
            p = self.deref(p)
            out[(p["in"], p["name"])] = p
        return out

    def validate(self, schema, instance):
        """The errors, as texts (none: valid)."""
        v = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        return ["%s at %s" % (e.message[:300], "/".join(str(p) for p in e.absolute_path) or "the top")
                for e in sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))]


# ---- check: the document alone, and against the route table ----------------------------------

def route_as_document(route_path):
    """The document's path for a route's: the route table's "{name+}" (the rest of the path, one
    segment or more) is OpenAPI's "{name}", which has no such form."""
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\+\}", r"{\1}", route_path)


def scheme_kind(s):
    """What a security scheme is, as the route table says who calls: a bearer token, a device
    certificate, the console's session cookie (anything else: None)."""
    if s.get("type") == "http" and s.get("scheme") == "bearer":
        return "bearer"
    if s.get("type") == "mutualTLS":
        return "device"
    if s.get("type") == "apiKey" and s.get("in") == "cookie" and s.get("name") == "__Host-rampart_session":
        return "cookie"
    return None


def security_of(op, doc):
    sec = op.get("security", doc.get("security"))
    if sec is None:
        return None
    return sorted(k for req in sec for k in req)


def check(doc_path, server):
    raw = load_doc(doc_path)
    d = Doc(raw)
    errors = []

    if raw.get("openapi") != "3.1.0":
        errors.append("openapi is %r, not 3.1.0" % raw.get("openapi"))
    if raw.get("jsonSchemaDialect", "https://spec.openapis.org/oas/3.1/dialect/base") not in (
            "https://spec.openapis.org/oas/3.1/dialect/base", "https://json-schema.org/draft/2020-12/schema"):
        errors.append("jsonSchemaDialect is not 2020-12's")
    for k in ("title", "version"):
        if not raw.get("info", {}).get(k):
            errors.append("info has no " + k)
    schemes = raw.get("components", {}).get("securitySchemes", {})

    # Every schema: valid against the 2020-12 metaschema; every $ref anywhere resolves.
    def walk(node, where):
        if isinstance(node, dict):
            if "$ref" in node and isinstance(node["$ref"], str):
                try:
                    d.resolver.resolve(node["$ref"])
                except jsonschema.RefResolutionError as e:
                    errors.append("%s: $ref %s does not resolve (%s)" % (where, node["$ref"], e))
            for k, v in node.items():
                if k == "schema" and isinstance(v, dict):
                    try:
                        jsonschema.Draft202012Validator.check_schema(v)
                    except jsonschema.SchemaError as e:
                        errors.append("%s/schema: not a valid JSON Schema: %s" % (where, e.message))
                walk(v, where + "/" + str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, "%s/%d" % (where, i))
    walk(raw, "#")
    for name, s in raw.get("components", {}).get("schemas", {}).items():
        try:
            jsonschema.Draft202012Validator.check_schema(s)
        except jsonschema.SchemaError as e:
            errors.append("components/schemas/%s: not a valid JSON Schema: %s" % (name, e.message))

    # Every operation well formed.
    ids = set()
    for path, m, item, op in d.operations():
        where = "%s %s" % (m.upper(), path)
        if not path.startswith("/"):
            errors.append(where + ": a path starts with /")
        oid = op.get("operationId")
        if not oid or oid in ids:
            errors.append(where + ": operationId missing or used twice: %r" % oid)
        ids.add(oid)
        if not op.get("summary"):
            errors.append(where + ": no summary")
        if not op.get("responses"):
            errors.append(where + ": no responses")
        for code, resp in op.get("responses", {}).items():
            resp = d.deref(resp)
            if not re.fullmatch(r"[1-5][0-9][0-9]|[1-5]XX|default", str(code)):
                errors.append("%s: response %r is not a status" % (where, code))
            if "description" not in resp:
                errors.append("%s: response %s has no description" % (where, code))
        params = d.parameters(item, op)
        for seg in segments(path):
            if is_param(seg) and ("path", seg[1:-1]) not in params:
                errors.append("%s: path parameter %s is not declared" % (where, seg))
        for (where_in, name), p in params.items():
            if where_in == "path" and ("{%s}" % name not in path or p.get("required") is not True):
                errors.append("%s: path parameter %s is not in the path, or not required" % (where, name))
            if "schema" not in p:
                errors.append("%s: parameter %s has no schema" % (where, name))
        for k in security_of(op, raw) or []:
            if k not in schemes:
                errors.append("%s: security scheme %s is not in components" % (where, k))

    # Both ways against the route table, with who may call each route.
    routes = {}
    table = subprocess.run([server, "--routes"], check=True, capture_output=True, text=True).stdout
    for line in table.splitlines():
        r = json.loads(line)
        routes[(r["method"], route_as_document(r["path"]))] = r
    if len(routes) < 40:
        errors.append("%s --routes printed %d routes" % (server, len(routes)))
    described = {(m.upper(), path): op for path, m, _, op in d.operations()}
    for key, r in sorted(routes.items()):
        if key not in described:
            errors.append("the route %s %s (%s) is not in the document" % (key[0], key[1], r["summary"]))
            continue
        op = described[key]
        sec = security_of(op, raw)
        # The schemes the route's caller may use: a token's route takes the console's session
        # cookie too where the table says so (each scheme one alternative).
        want = {"public": [], "device": ["device"], "token": ["bearer"], "session": ["cookie"]}.get(r["auth"])
        if r["auth"] == "token" and r.get("session_cookie"):
            want = ["bearer", "cookie"]
        alternatives = op.get("security", raw.get("security")) or []
        ok = sec is not None and all(len(req) == 1 for req in alternatives) and \
            sorted(scheme_kind(schemes.get(k, {})) or "?" for k in sec) == want
        if not ok:
            errors.append("%s %s: the route's caller is %s, the document's security %s" % (key + (r["auth"], sec)))
        if r["auth"] == "token" and op.get("x-rampart-role") != r["role"]:
            errors.append("%s %s: the route needs role %s, the document says %r" % (key + (r["role"], op.get("x-rampart-role"))))
        if r["auth"] != "token" and "x-rampart-role" in op:
            errors.append("%s %s: x-rampart-role on a route without a token" % key)
        if r["rate_limited"] and "429" not in op.get("responses", {}):
            errors.append("%s %s: rate limited, but no 429 in the document" % key)
    for key in sorted(described):
        if key not in routes:
            errors.append("the document describes %s %s, which the server does not have" % key)

    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    if errors:
        sys.exit(1)
    print("ok: %d operations, %d routes, %d schemas" % (len(described), len(routes),
                                                         len(raw.get("components", {}).get("schemas", {}))))


# ---- exercise: a real server, every route ----------------------------------------------------

class Client:
    """Calls the server and holds each exchange against the document."""

    def __init__(self, doc, base, ca):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.ca = ca
        self.doc = doc
        self.ctx = ssl.create_default_context(cafile=ca)
        self.errors = []
        self.reached = set()
        self.calls = 0

    def device_context(self, cert, key):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(cert, key)
        return ctx

    def call(self, method, path, token=None, device=None, body=None, raw=None, ctype=None,
             headers=None, want=None, bad=False):
        """One request; the answer's (status, headers, bytes, JSON or None). want: the status
        the test needs to go on (a different one is an error of the test's own). bad: a request
        the document must refuse too (its query or body breaks the document's schema)."""
        hdrs = dict(headers or {})
        data = None
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif raw is not None:
            data = raw
            hdrs["Content-Type"] = ctype or "application/octet-stream"
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=60,
                                           context=device if device is not None else self.ctx)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            status, rh = resp.status, resp.headers
        finally:
            conn.close()
        self.calls += 1
        parsed = None
        if (rh.get("Content-Type") or "").split(";")[0].strip() == "application/json" and payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                pass
        if os.environ.get("OPENAPI_RECORD"):   # a developer's aid: every exchange, as JSON lines
            with open(os.environ["OPENAPI_RECORD"], "a") as f:
                f.write(json.dumps({"method": method, "path": path, "status": status,
                                    "type": rh.get("Content-Type"),
                                    "body": parsed if parsed is not None else payload[:120].decode("latin-1")}) + "\n")
        self.hold(method, path, hdrs.get("Content-Type"), data, body, status, rh, payload, parsed, bad)
        if want is not None and status != want:
            for e in self.errors:
                print("FAIL: " + e, file=sys.stderr)
            fail("%s %s: %d, the test needs %d: %s" % (method, path, status, want, payload[:400]))
        return status, rh, payload, parsed

    def err(self, what, msg):
        self.errors.append("%s: %s" % (what, msg))

    def hold(self, method, full, req_ctype, data, req_json, status, rh, payload, parsed, bad):
        """The exchange against the document."""
        d = self.doc
        refusals = []   # what the document says is wrong with the request
        u = urllib.parse.urlsplit(full)
        what = "%s %s -> %d" % (method, u.path, status)
        # What every answer carries, whatever its route or status (x-rampart-every-answer).
        for name, h in d.doc.get("x-rampart-every-answer", {}).get("headers", {}).items():
            h = d.deref(h)
            if rh.get(name) is None:
                self.err(what, "no %s header (every answer carries it)" % name)
                continue
            for e in d.validate(h.get("schema", {}), rh.get(name)):
                self.err(what, "%s: %s" % (name, e))
        tmpl, item, op = d.match(method, urllib.parse.unquote(u.path))
        if op is None:
            self.err(what, "the document has no such operation")
            return
        self.reached.add((method.upper(), tmpl))
        what = "%s %s (%s) -> %d" % (method, tmpl, u.path, status)
        params = d.parameters(item, op)
        # The path's parameters, each of its schema.
        for seg, val in zip(segments(tmpl), segments(urllib.parse.unquote(u.path))):
            p = params.get(("path", seg[1:-1])) if is_param(seg) else None
            for e in d.validate(p.get("schema", {}), val) if p is not None else []:
                refusals.append("path parameter %s=%s: %s" % (seg, val, e))
        # The query: every parameter declared, each value of its schema.
        for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True):
            p = params.get(("query", k))
            if p is None:
                self.err(what, "query parameter %s is not in the document" % k)
                continue
            s = d.deref(p.get("schema", {}))
            val = int(v) if s.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", v) else v
            for e in d.validate(p.get("schema", {}), val):
                refusals.append("query %s=%s: %s" % (k, v, e))
        # The request body: one the document takes, of its schema.
        if data is not None:
            rb = d.deref(op.get("requestBody"))
            media = (req_ctype or "").split(";")[0].strip()
            if rb is None:
                self.err(what, "a request body the document does not describe")
            elif media not in rb.get("content", {}):
                refusals.append("request Content-Type %s is not one of %s" % (media, list(rb["content"])))
            elif req_json is not None and "schema" in rb["content"][media]:
                for e in d.validate(rb["content"][media]["schema"], req_json):
                    refusals.append("request body: " + e)
        if bad and not refusals:
            self.err(what, "the server refused a request the document allows")
        elif not bad:
            for e in refusals:
                self.err(what, e)
        # The answer: its status documented, its Content-Type, its body's schema, its headers.
        resp = op.get("responses", {}).get(str(status)) or op.get("responses", {}).get("%dXX" % (status // 100))
        if resp is None:
            self.err(what, "status %d is not documented (%s)" % (status, payload[:200]))
            return
        resp = d.deref(resp)
        content = resp.get("content")
        got = (rh.get("Content-Type") or "").split(";")[0].strip()
        if not content:
            if payload and method != "HEAD":
                self.err(what, "a body where the document says none: %r" % payload[:100])
        elif method != "HEAD":
            if got not in content:
                self.err(what, "Content-Type %r is not one of %s" % (got, list(content)))
            elif "schema" in content[got]:
                if got == "application/json":
                    if parsed is None:
                        self.err(what, "the body is not JSON: %r" % payload[:100])
                    else:
                        for e in d.validate(content[got]["schema"], parsed):
                            self.err(what, "body: " + e)
                elif d.deref(content[got]["schema"]).get("type") == "string" and \
                        d.deref(content[got]["schema"]).get("minLength", 0) > len(payload):
                    self.err(what, "a body shorter than the document's minimum")
        for name, h in resp.get("headers", {}).items():
            h = d.deref(h)
            if h.get("required") and rh.get(name) is None:
                self.err(what, "no %s header" % name)


def upload(c, T, token, data, component, want):
    """An upload of data in one chunk, made an image: the image's answer."""
    _, _, _, up = c.call("POST", T + "/uploads", token=token, body={"size": len(data)}, want=201)
    c.call("PUT", "%s/uploads/%s?offset=0" % (T, up["id"]), token=token, raw=data, want=200)
    return c.call("POST", T + "/images", token=token, body={"upload": up["id"], "component": component},
                  want=want)[3]


def exercise(doc_path):
    env = os.environ
    base, ca = env["SERVER_URL"], env["SERVER_CA"]
    work = env["E2E_DIR"]
    rampart, agent = env["RAMPART"], env["AGENT"]
    with open(env["ADMIN_TOKEN"]) as f:
        system = f.read().strip()
    started = time.monotonic()

    # The document the server serves is the one in the tree, converted as it was written.
    source = load_doc(doc_path)
    probe = Client(Doc(source), base, ca)
    status, rh, payload, served = probe.call("GET", "/api/v1/openapi.json", want=200)
    if served != source:
        fail("/api/v1/openapi.json is not docs/openapi.yaml as JSON (a stale build?)")
    c = Client(Doc(served), base, ca)
    c.reached |= probe.reached
    c.errors += probe.errors
    etag = rh.get("ETag")
    if not etag:
        c.err("GET /api/v1/openapi.json", "no ETag")
    c.call("GET", "/api/v1/openapi.json", headers={"If-None-Match": etag or "x"}, want=304)

    # --- liveness, and refusals every operator route shares ------------------------------------
    c.call("GET", "/healthz", want=200)
    c.call("GET", "/readyz", want=200)
    c.call("GET", "/metrics", want=200)
    c.call("GET", "/api/v1/tenants", want=401)
    c.call("GET", "/api/v1/tenants", token="rpt_" + "0" * 64, want=401)

    # --- tenants and tokens --------------------------------------------------------------------
    _, _, _, t = c.call("POST", "/api/v1/tenants", token=system, body={"name": "acme"}, want=201)
    acme = t["id"]
    T = "/api/v1/tenants/" + acme
    c.call("POST", "/api/v1/tenants", token=system, body={"name": "ACME"}, want=409)
    c.call("POST", "/api/v1/tenants", token=system, body={"name": ""}, want=400, bad=True)
    c.call("GET", "/api/v1/tenants", token=system, want=200)
    c.call("GET", T, token=system, want=200)
    c.call("GET", "/api/v1/tenants/t_" + "0" * 24, token=system, want=404)
    tok = {}
    for role in ("admin", "contributor", "reader"):
        _, _, _, j = c.call("POST", T + "/tokens", token=system, body={"role": role}, want=201)
        tok[role] = j["token"]
    _, _, _, j = c.call("POST", T + "/tokens", token=tok["admin"],
                        body={"role": "reader", "expires_in": 3600}, want=201)
    c.call("DELETE", T + "/tokens/" + j["id"], token=tok["admin"], want=200)
    c.call("DELETE", T + "/tokens/" + j["id"], token=tok["admin"], want=404)
    c.call("POST", T + "/tokens", token=tok["reader"], body={"role": "reader"}, want=403)
    c.call("GET", T + "/tokens", token=tok["admin"], want=200)
    _, _, _, j = c.call("GET", T + "/tokens?limit=1", token=tok["admin"], want=200)
    if len(j["tokens"]) != 1 or j["next_after"] != j["tokens"][0]["id"]:
        fail("a page of one token: %s" % j)
    c.call("GET", T + "/tokens?limit=1001", token=tok["admin"], want=400, bad=True)
    c.call("GET", "/api/v1/tokens", token=system, want=200)
    c.call("GET", "/api/v1/tokens/self", token=tok["reader"], want=200)
    c.call("GET", "/api/v1/tokens/self", token=system, want=200)
    _, _, _, j = c.call("POST", T + "/tokens", token=tok["admin"], body={"role": "reader"}, want=201)
    c.call("DELETE", "/api/v1/tokens/self", token=j["token"], want=200)
    c.call("DELETE", "/api/v1/tokens/self", token=j["token"], want=401)
    c.call("GET", "/api/v1/unproven-attestations", token=system, want=200)
    c.call("GET", "/api/v1/unproven-attestations", token=tok["admin"], want=403)
    c.call("GET", T + "/policy", token=tok["reader"], want=200)
    c.call("PUT", T + "/policy", token=tok["admin"],
           body={"allow_debug": True, "require_components": False}, want=200)
    c.call("PUT", T + "/policy", token=tok["admin"], body={"allow_debug": 1}, want=400, bad=True)
    c.call("GET", T + "/ca", token=tok["reader"], want=200)
    c.call("GET", "/.well-known/est/%s/cacerts" % acme, want=200)
    c.call("GET", T + "/crl", want=200)
    _, rh, _, _ = c.call("GET", T + "/crl?format=pem", want=200)
    c.call("GET", T + "/crl?format=pem", headers={"If-None-Match": rh.get("ETag") or "x"}, want=304)

    # --- image keys, uploads, images ---------------------------------------------------------
    with open(os.path.join(work, "img.pub")) as f:
        pub = f.read()
    c.call("GET", T + "/image-keys", token=tok["reader"], want=200)
    c.call("GET", T + "/image-keys?limit=5&prefix=rel", token=tok["reader"], want=200)
    c.call("POST", T + "/image-keys", token=tok["admin"], body={"name": "release", "public_key": pub}, want=201)
    c.call("POST", T + "/image-keys", token=tok["admin"], body={"name": "again", "public_key": pub}, want=409)
    with open(os.path.join(work, "app.img"), "rb") as f:
        img = f.read()
    _, _, _, up = c.call("POST", T + "/uploads", token=tok["contributor"], body={"size": len(img)}, want=201)
    U = T + "/uploads/" + up["id"]
    c.call("PUT", U + "?offset=100", token=tok["contributor"], raw=img[100:], want=409)
    c.call("PUT", U + "?offset=0", token=tok["contributor"], raw=img[:100], want=200)
    c.call("GET", U, token=tok["contributor"], want=200)
    c.call("POST", T + "/images", token=tok["contributor"], body={"upload": up["id"], "component": "app"}, want=409)
    c.call("PUT", U + "?offset=100", token=tok["contributor"], raw=img[100:], want=200)
    _, _, _, im = c.call("POST", T + "/images", token=tok["contributor"],
                         body={"upload": up["id"], "component": "app"}, want=201)
    image = im["id"]
    # the upload names the image it became; the same POST again answers it (200)
    _, _, _, again = c.call("GET", U, token=tok["contributor"], want=200)
    assert again["image"] == image, again
    _, _, _, again = c.call("POST", T + "/images", token=tok["contributor"],
                            body={"upload": up["id"], "component": "app"}, want=200)
    assert again["id"] == image, again
    c.call("GET", T + "/images", token=tok["reader"], want=200)
    _, _, _, j = c.call("GET", T + "/images?limit=1000&prefix=app", token=tok["reader"], want=200)
    if [x["id"] for x in j["images"]] != [image] or j["next_after"] is not None:
        fail("the images' page by component: %s" % j)
    c.call("GET", T + "/images/" + image, token=tok["reader"], want=200)
    c.call("GET", T + "/images/" + "0" * 64, token=tok["reader"], want=404)
    c.call("POST", T + "/uploads", token=tok["contributor"], body={"size": 200 * 1024 * 1024}, want=413)
    upload(c, T, tok["contributor"], b"not an image" * 10, "app", 422)
    with open(os.path.join(work, "app-65.img"), "rb") as f:
        big = upload(c, T, tok["contributor"], f.read(), "app", 201)
    if not big["warnings"]:
        fail("no warning for a security counter of 65")

    # --- products, groups, the root of update trust --------------------------------------------
    c.call("POST", T + "/products", token=tok["contributor"], body={"name": "Thermostat"}, want=201)
    c.call("POST", T + "/products", token=tok["contributor"], body={"name": "Thermostat"}, want=409)
    c.call("GET", T + "/products", token=tok["reader"], want=200)
    _, _, _, j = c.call("GET", T + "/products?prefix=Thermo&limit=1", token=tok["reader"], want=200)
    if [x["name"] for x in j["products"]] != ["Thermostat"]:
        fail("the products' page by name: %s" % j)
    c.call("GET", T + "/products?limit=0", token=tok["reader"], want=400, bad=True)
    P = T + "/products/Thermostat"
    c.call("GET", P, token=tok["reader"], want=200)
    c.call("GET", P + "/groups", token=tok["reader"], want=200)
    _, _, _, j = c.call("GET", P + "/groups?limit=2", token=tok["reader"], want=200)
    _, _, _, k = c.call("GET", P + "/groups?limit=2&after=" + j["next_after"], token=tok["reader"], want=200)
    ids = [x["id"] for x in j["groups"] + k["groups"]]
    if len(j["groups"]) != 2 or ids != sorted(ids) or len(set(ids)) != len(ids) or k["next_after"] is not None:
        fail("the groups' pages (three default groups): %s then %s" % (j, k))
    c.call("POST", P + "/groups", token=tok["contributor"], body={"name": "Beta", "crash_capture": False}, want=201)
    c.call("POST", P + "/groups", token=tok["contributor"],
           body={"name": "Lab", "allow_unknown_images": True}, want=403)
    G = P + "/groups/Field%20Test"
    c.call("GET", G, token=tok["reader"], want=200)
    c.call("GET", P + "/groups/Nope", token=tok["reader"], want=404)
    c.call("PUT", G + "/settings", token=tok["admin"], body={"crash_capture": True}, want=200)
    c.call("GET", T + "/update/online-key", token=tok["reader"], want=200)
    c.call("GET", T + "/update/roots", token=tok["reader"], want=200)
    cli_env = dict(env, RAMPART_SERVER=base, RAMPART_CA_FILE=ca, RAMPART_TOKEN_FILE=env["ADMIN_TOKEN"])
    root_json = os.path.join(work, "root.json")
    subprocess.run([rampart, "update-root", "sign", "--tenant", acme, "--root-key",
                    os.path.join(work, "root.key"), "--out", root_json], env=cli_env, check=True,
                   stdout=subprocess.DEVNULL)
    with open(root_json) as f:
        root = json.load(f)
    # The CLI has uploaded version 1: the same again is out of turn.
    c.call("POST", T + "/update/roots", token=tok["admin"], body=root, want=409)
    c.call("POST", T + "/update/roots", token=tok["admin"], body={"signed": {}, "signatures": []}, want=400, bad=True)

    # --- a device: claimed, grouped, deployed to, attested -------------------------------------
    dev_dir = os.path.join(work, "dev")
    with open(os.path.join(work, "dev.id")) as f:
        device = f.read().strip()
    D = T + "/devices/" + device
    c.call("POST", T + "/devices", token=tok["contributor"], body={"device_ids": [device]}, want=201)
    c.call("POST", T + "/devices", token=tok["contributor"], body={"device_ids": ["x"]}, want=400, bad=True)
    c.call("POST", G + "/devices", token=tok["contributor"], body={"device_ids": [device]}, want=200)
    c.call("POST", G + "/devices", token=tok["contributor"], body={"device_ids": ["f" * 64]}, want=404)
    c.call("GET", G + "/devices", token=tok["reader"], want=200)
    _, _, _, dep = c.call("POST", T + "/deployments", token=tok["contributor"],
                          body={"product": "Thermostat", "group": "Field Test", "images": [image]}, want=201)
    c.call("GET", T + "/deployments", token=tok["reader"], want=200)
    _, _, _, j = c.call("GET", T + "/deployments?limit=100&prefix=d_", token=tok["reader"], want=200)
    if [x["id"] for x in j["deployments"]] != [dep["id"]] or j["next_after"] is not None:
        fail("the deployments' page: %s" % j)
    c.call("GET", T + "/deployments/" + dep["id"], token=tok["reader"], want=200)
    c.call("GET", T + "/deployments/" + dep["id"] + "?after=", token=tok["reader"], want=400, bad=True)
    c.call("GET", T + "/devices", token=tok["reader"], want=200)
    c.call("GET", T + "/devices?prefix=XYZ", token=tok["reader"], want=400, bad=True)
    c.call("GET", D, token=tok["reader"], want=200)

    _, _, _, n = c.call("POST", "/api/v1/attest/nonce", body={"device_id": device}, want=200)
    c.call("POST", "/api/v1/attest/nonce", body={"device_id": "XYZ"}, want=400, bad=True)
    evidence = os.path.join(work, "evidence.cbor")
    subprocess.run([agent, "evidence", "--state-dir", dev_dir, "--nonce", n["nonce"], "--out", evidence],
                   check=True, stdout=subprocess.DEVNULL)
    spki = subprocess.run(["openssl", "pkey", "-in", os.path.join(dev_dir, "identity.pem"), "-pubout",
                           "-outform", "DER"], check=True, capture_output=True).stdout
    with open(evidence, "rb") as f:
        att = {"evidence": base64.b64encode(f.read()).decode(), "public_key": base64.b64encode(spki).decode()}
    _, _, _, a = c.call("POST", "/api/v1/attest", body=att, want=200)
    c.call("POST", "/api/v1/attest", body=att, want=403)   # the nonce is spent
    c.call("POST", "/api/v1/attest", body={"evidence": "!", "public_key": "!"}, want=400, bad=True)
    cert = os.path.join(work, "device.crt")
    with open(cert, "w") as f:
        f.write(a["certificate"])
    dev = c.device_context(cert, os.path.join(dev_dir, "identity.pem"))
    c.call("GET", D + "/attestations", token=tok["reader"], want=200)

    # --- the device's own routes, over mutual TLS -----------------------------------------------
    c.call("GET", "/api/v1/device/targets", want=401)
    c.call("GET", "/api/v1/device/roots?after=0", device=dev, want=200)
    c.call("GET", "/api/v1/device/targets?security_counter_max=64", device=dev, want=200)
    c.call("GET", "/api/v1/device/targets?security_counter_max=64&targets_version=7", device=dev, want=200)
    c.call("GET", "/api/v1/device/targets?targets_version=-1", device=dev, want=400, bad=True)
    c.call("POST", T + "/deployments", token=tok["contributor"], want=409,
           body={"product": "Thermostat", "group": "Field Test", "images": [big["id"]]})
    c.call("GET", "/api/v1/device/images/" + image, device=dev, want=200)
    c.call("GET", "/api/v1/device/images/" + image, device=dev, headers={"Range": "bytes=0-99"}, want=206)
    c.call("GET", "/api/v1/device/images/" + image, device=dev, headers={"Range": "bytes=99999999-"}, want=416)
    c.call("GET", "/api/v1/device/images/" + "0" * 64, device=dev, want=404)
    c.call("GET", "/api/v1/device/deltas/%s/%s" % ("0" * 64, image), device=dev, want=404)
    c.call("POST", "/api/v1/device/updates", device=dev,
           body={"deployment": dep["id"], "state": "installed", "detail": ""}, want=200)
    c.call("POST", "/api/v1/device/updates", device=dev, body={"state": "nonsense"}, want=400, bad=True)
    c.call("POST", "/api/v1/device/status", device=dev,
           body={"apps": [{"component": "app", "version": "1.0.0+0", "state": "running", "restarts": 0}],
                 "events": [{"seq": 1, "at": 1764300000, "kind": "syscall", "app": "app", "reason": "ptrace refused"}],
                 "events_dropped": 0}, want=200)
    c.call("POST", "/api/v1/device/status", device=dev, body={"nonsense": 1}, want=400, bad=True)
    with open(os.path.join(work, "debug.build-id")) as f:
        build_id = f.read().strip()
    crash = {"seq": 1, "at": 1764300000, "kind": "crash", "component": "app", "version": "1.0.0+0",
             "reason": "killed by SIGSEGV", "code": "",
             "crash": {"signal": 11, "signal_name": "SIGSEGV", "code": 1, "address": "0x0", "uptime_ms": 1500,
                       "frames": [{"build_id": build_id, "module": "app", "offset": "0x10"}], "stderr": "oops\n"}}
    event = {"seq": 2, "at": 1764300000, "kind": "image_refused", "component": "", "version": "",
             "reason": "signed by an unknown key", "code": "unknown_key"}
    c.call("POST", "/api/v1/device/reports", device=dev, body={"reports": [crash, event], "dropped": 0}, want=200)
    c.call("POST", "/api/v1/device/reports", device=dev, body={"reports": {}}, want=400, bad=True)
    csr = subprocess.run(["openssl", "req", "-new", "-key", os.path.join(dev_dir, "identity.pem"),
                          "-subj", "/CN=" + device, "-outform", "DER"], check=True, capture_output=True).stdout
    c.call("POST", "/.well-known/est/%s/simplereenroll" % acme, device=dev,
           raw=base64.b64encode(csr), ctype="application/pkcs10", want=200)
    c.call("POST", "/.well-known/est/%s/simplereenroll" % acme, device=dev,
           raw=b"not a csr", ctype="application/pkcs10", want=400)

    # --- what the operator sees of it ---------------------------------------------------------
    c.call("GET", D, token=tok["reader"], want=200)
    _, _, _, j = c.call("GET", T + "/devices?limit=1&state=attested&prefix=" + device[:4], token=tok["reader"], want=200)
    if [x["device_id"] for x in j["devices"]] != [device] or j["next_after"] != device:
        fail("the attested device's page: %s" % j)
    _, _, _, j = c.call("GET", T + "/devices?limit=1&after=" + device, token=tok["reader"], want=200)
    if j != {"devices": [], "next_after": None}:
        fail("the page after the last device: %s" % j)
    _, _, _, j = c.call("GET", T + "/deployments/" + dep["id"], token=tok["reader"], want=200)
    if j["progress"] != {"selected": 1, "left": 0, "reached": 1, "installed": 1, "failed": 0, "rolled_back": 0}:
        fail("the deployment's progress after the device installed it: %s" % j["progress"])
    # A page of its devices past the only one: none listed, the counts still whole.
    _, _, _, k = c.call("GET", T + "/deployments/%s?limit=1&after=%s" % (dep["id"], device),
                        token=tok["reader"], want=200)
    if k["devices"] != [] or k["next_after"] is not None or k["progress"] != j["progress"]:
        fail("the deployment's page after its last device: %s" % k)
    _, _, _, k = c.call("GET", T + "/deployments/%s?limit=1" % dep["id"], token=tok["reader"], want=200)
    if [x["device_id"] for x in k["devices"]] != [device] or k["next_after"] != device:
        fail("the deployment's first page of devices: %s" % k)
    # pause, resume, stop (final: resuming it is refused); the device it reached keeps it
    for verb, status in (("pause", "paused"), ("resume", "active"), ("stop", "stopped")):
        _, _, _, j = c.call("POST", T + "/deployments/%s/%s" % (dep["id"], verb), token=tok["contributor"], want=200)
        if j["status"] != status:
            fail("the deployment after %s: %s" % (verb, j))
    c.call("POST", T + "/deployments/%s/resume" % dep["id"], token=tok["contributor"], want=409)
    c.call("POST", T + "/deployments/%s/pause" % dep["id"], token=tok["reader"], want=403)
    c.call("POST", T + "/deployments/d_%s/stop" % ("0" * 24), token=tok["contributor"], want=404)
    _, _, _, j = c.call("GET", T + "/fleet", token=tok["reader"], want=200)
    if j["devices"]["total"] != 1 or j["devices"]["attested"] != 1 or \
            [(v["component"], v["version"], v["devices"]) for v in j["versions"]] != [("app", "1.0.0+0", 1)]:
        fail("the fleet: %s" % j)
    _, _, _, j = c.call("GET", T + "/attestations/histogram?since=%d&step=60" % (time.time() - 3600),
                        token=tok["reader"], want=200)
    if sum(j["pass"]) != 1 or sum(j["fail"]) != 0 or len(j["pass"]) != 61:
        fail("the attestations' histogram: %s" % j)
    c.call("GET", T + "/attestations/histogram?step=0", token=tok["reader"], want=400, bad=True)
    c.call("GET", T + "/attestations/histogram?since=%d" % (time.time() + 86400), token=tok["reader"], want=400)
    c.call("GET", D + "/events?limit=10", token=tok["reader"], want=200)
    c.call("GET", D + "/events?limit=0", token=tok["reader"], want=400, bad=True)
    _, _, _, fl = c.call("GET", T + "/failures?offset=0&limit=10", token=tok["reader"], want=200)
    if not fl["buckets"]:
        fail("the crash made no bucket")
    c.call("GET", T + "/reports?device=%s&kind=crash" % device, token=tok["reader"], want=200)
    c.call("GET", T + "/reports?kind=nonsense", token=tok["reader"], want=400)
    with open(os.path.join(work, "app.debug"), "rb") as f:
        c.call("POST", T + "/symbols", token=tok["contributor"], raw=f.read(), want=201)
    c.call("POST", T + "/symbols", token=tok["contributor"], raw=b"not an ELF file", want=400)
    c.call("GET", T + "/failures/" + fl["buckets"][0]["id"], token=tok["reader"], want=200)
    c.call("GET", T + "/failures/nosuchbucket", token=tok["reader"], want=404)
    _, _, _, _ = c.call("POST", D + "/capabilities", token=tok["admin"],
                        body={"kind": "development", "expires_in": 3600}, want=201)
    c.call("POST", D + "/capabilities", token=tok["admin"], body={"kind": "root"}, want=400, bad=True)

    # --- threat detection: the rule, the webhook, a quarantine and its release -----------------
    c.call("GET", T + "/threat", token=tok["reader"], want=200)
    c.call("PUT", T + "/threat", token=tok["admin"], body={"factor": 2, "min_devices": 1, "floor": 1}, want=200)
    c.call("PUT", T + "/threat", token=tok["admin"], body={"factor": 1}, want=400, bad=True)
    c.call("POST", "/api/v1/device/status", device=dev, want=200, body={"events": [
        {"seq": n, "at": 1764300000, "kind": "syscall", "app": "app", "reason": "ptrace"} for n in (10, 11, 12)]})
    c.call("GET", T + "/webhook", token=tok["reader"], want=404)
    c.call("PUT", T + "/webhook", token=tok["admin"], body={"url": "http://127.0.0.1:9/hook"}, want=200)
    c.call("PUT", T + "/webhook", token=tok["admin"], body={"url": "ftp://x"}, want=400, bad=True)
    c.call("GET", T + "/quarantine/policy", token=tok["reader"], want=200)
    c.call("PUT", T + "/quarantine/policy", token=tok["admin"],
           body={"enabled": True, "kinds": ["tamper"], "threshold": 1, "window": 3600}, want=200)
    c.call("PUT", T + "/quarantine/policy", token=tok["admin"], body={"enabled": True, "kinds": []}, want=400, bad=True)
    c.call("POST", D + "/release", token=tok["admin"], body={"reason": "test"}, want=409)
    c.call("POST", "/api/v1/device/status", device=dev, want=200, body={
        "events": [{"seq": 2, "at": 1764300000, "kind": "tamper", "app": "", "reason": "case opened"}]})
    deadline = time.monotonic() + 30
    while True:   # the quarantine is the detector's, after the report's commit: waited for
        _, _, _, j = c.call("GET", D, token=tok["reader"], want=200)
        if j["status"] == "quarantined":
            break
        if time.monotonic() > deadline:
            fail("the device was not quarantined: %s" % j)
        time.sleep(0.05)
    c.call("GET", "/api/v1/device/targets", device=dev, want=403)
    c.call("GET", T + "/webhook", token=tok["reader"], want=200)
    _, _, _, j = c.call("GET", T + "/alerts?limit=10", token=tok["reader"], want=200)
    if not j["alerts"]:
        fail("three syscall events with min_devices 1 raised no alert")
    c.call("GET", T + "/quarantine/actions?limit=10", token=tok["reader"], want=200)
    c.call("POST", D + "/release", token=tok["admin"], body={"reason": "checked"}, want=200)
    c.call("DELETE", T + "/webhook", token=tok["admin"], want=200)
    c.call("DELETE", T + "/webhook", token=tok["admin"], want=404)
    c.call("POST", D + "/block", token=tok["admin"], want=200)
    c.call("POST", D + "/unblock", token=tok["admin"], want=200)
    c.call("POST", T + "/update/online-key", token=tok["admin"], want=201)

    # --- the web console: its files; a session opened with a token, then with a login link ------
    c.call("GET", "/console", want=308)
    c.call("GET", "/console/", want=200)
    c.call("GET", "/console/app.js", want=200)
    c.call("GET", "/console/login", want=200)   # a page's own address: the page
    c.call("GET", "/console/tool.exe", want=404)
    c.call("POST", "/console/session", raw=b"token=" + tok["admin"].encode(),
           ctype="application/x-www-form-urlencoded", want=415, bad=True)
    c.call("POST", "/console/session", body={"token": "rpt_" + "0" * 64}, want=401)
    c.call("POST", "/console/session", body={"token": tok["admin"], "code": "x"}, want=400, bad=True)
    _, rh, _, s = c.call("POST", "/console/session", body={"token": tok["admin"]}, want=200)
    if (s["tenant"], s["role"]) != (acme, "admin"):
        fail("the admin token's session: %s" % s)
    jar = {"Cookie": (rh.get("Set-Cookie") or "").split(";")[0]}
    csrf = dict(jar, **{"X-CSRF-Token": s["csrf"]})
    c.call("GET", "/console/session", headers=jar, want=200)
    c.call("GET", "/console/session", want=401)
    c.call("GET", T + "/devices?limit=10", headers=jar, want=200)    # an operator route, by the cookie
    c.call("POST", "/api/v1/console/links", headers=jar, body={}, want=403)   # no CSRF value
    c.call("POST", "/api/v1/console/links", headers=csrf, body={}, want=400)   # in a session: a tenant's only
    _, _, _, link = c.call("POST", "/api/v1/console/links", headers=csrf, body={"tenant": acme}, want=201)
    c.call("POST", "/api/v1/console/links", token=tok["reader"], want=403)
    c.call("POST", "/api/v1/console/links", token=system, body={"tenant": "t_" + "0" * 24}, want=404)
    c.call("POST", "/api/v1/console/links", token=tok["admin"], body={"tenant": 5}, want=400, bad=True)
    _, _, _, j = c.call("POST", "/api/v1/console/links", token=system, body={"tenant": acme}, want=201)
    code = j["url"].split("#code=", 1)[1]
    _, _, _, s2 = c.call("POST", "/console/session", body={"code": code}, want=200)
    if (s2["tenant"], s2["role"]) != (acme, "admin"):
        fail("the login link's session: %s" % s2)
    c.call("POST", "/console/session", body={"code": code}, want=401)   # once only
    c.call("DELETE", "/console/session", headers=jar, want=403)
    c.call("DELETE", "/console/session", headers=csrf, want=204)
    c.call("GET", "/console/session", headers=jar, want=401)
    # The link made in the session logs in as a new admin token of its tenant.
    _, _, _, s3 = c.call("POST", "/console/session", body={"code": link["url"].split("#code=", 1)[1]}, want=200)
    if (s3["tenant"], s3["role"]) != (acme, "admin"):
        fail("the session's own login link: %s" % s3)

    missing = sorted(set((m.upper(), p) for p, m, _, _ in c.doc.operations()) - c.reached)
    for m, p in missing:
        c.err("%s %s" % (m, p), "never called by this test")
    for e in c.errors:
        print("FAIL: " + e, file=sys.stderr)
    if c.errors:
        sys.exit(1)
    print("ok: %d calls, %d operations reached and validated in %.1f s" % (
        c.calls, len(c.reached), time.monotonic() - started))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "exercise":
        # SERVER_URL, SERVER_CA, ADMIN_TOKEN (a file), E2E_DIR (img.pub, app.img, app-65.img, root.key,
        # dev/ and dev.id, app.debug and debug.build-id), RAMPART, AGENT
        exercise(sys.argv[2])
    else:
        fail("usage: openapi.py check DOC RAMPART_SERVER | exercise DOC")


if __name__ == "__main__":
    main()
