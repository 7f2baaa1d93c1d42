#!/usr/bin/env python3
"""The TLS side of e2e/server-config.sh: a connection kept open across a SIGHUP that changes the
server's certificate.

  reload-client.py PORT DATA_DIR PID LOG

Opens a kept-alive HTTPS connection and asks /healthz; replaces DATA_DIR/server.pem and
server.key with a new self-signed identity (openssl); sends SIGHUP to PID; waits (bounded) until a
new connection is served the new certificate; then asks /healthz again on the first connection,
which must still answer, over its first certificate. Then an unusable certificate: the reload is
refused (LOG says so) and new connections still get the second identity. Prints what it checked;
exits nonzero on the first failure."""
import http.client
import os
import signal
import ssl
import subprocess
import sys
import time

port, data, pid, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]


def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the certificate is what is compared, not trusted
    return ctx


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def healthz(conn):
    conn.request("GET", "/healthz")
    resp = conn.getresponse()
    resp.read()
    return resp.status


def served_cert():
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context(), timeout=20)
    conn.connect()
    der = conn.sock.getpeercert(binary_form=True)
    conn.close()
    return der


def wait_for(what, pred, bound=60):
    end = time.monotonic() + bound
    while not pred():
        if time.monotonic() > end:
            fail(what + " within %d s" % bound)
        time.sleep(0.1)


def pem_der(path):
    return subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"], check=True,
                          capture_output=True).stdout


# The first connection, kept alive.
old = http.client.HTTPSConnection("127.0.0.1", port, context=context(), timeout=20)
old.connect()
first = old.sock.getpeercert(binary_form=True)
if healthz(old) != 200:
    fail("the first connection is not served")
if first != pem_der(os.path.join(data, "server.pem")):
    fail("the server does not serve DIR/server.pem")

# A new identity, put in place as a certificate manager would (each file replaced at once).
tmp = os.path.join(data, "new")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", tmp + ".key", "-out", tmp + ".pem", "-days", "2",
                "-subj", "/CN=reloaded"], check=True, capture_output=True)
new = pem_der(tmp + ".pem")
os.chmod(tmp + ".key", 0o600)
os.rename(tmp + ".key", os.path.join(data, "server.key"))
os.rename(tmp + ".pem", os.path.join(data, "server.pem"))
if served_cert() != first:
    fail("a new connection got the new certificate before SIGHUP")
os.kill(pid, signal.SIGHUP)
wait_for("a new connection was not served the new certificate", lambda: served_cert() == new)
print("ok: a new connection gets the new certificate")

# The connection made before the reload goes on, over what it began with.
if healthz(old) != 200 or healthz(old) != 200:
    fail("the connection opened before the reload is not served after it")
if old.sock.getpeercert(binary_form=True) != first:
    fail("the old connection's certificate changed")
old.close()
print("ok: the connection opened before the reload is still served")

# An unusable certificate: the reload is refused, the identity in use stays.
with open(os.path.join(data, "server.pem"), "w") as f:
    f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
refusals = open(log).read().count("reload refused")
os.kill(pid, signal.SIGHUP)
wait_for("the log did not say the reload was refused",
         lambda: open(log).read().count("reload refused") > refusals)
if served_cert() != new:
    fail("after a refused reload, new connections do not get the identity in use")
print("ok: an unusable certificate is refused and the identity in use stays")
