#!/usr/bin/env python3
"""Clients that use a connection slowly, for tests/e2e/connections.sh.

  slowloris PORT CA SECONDS  one TLS connection that sends a request's first line, then a header
                             line every 0.3 s for up to SECONDS; prints "cut after T s" when the
                             service closes it, "not cut" otherwise
  silent PORT CA SECONDS     one TCP connection that sends nothing; "cut after T s" or "not cut"
  keepalive PORT CA N PAUSE  N requests to /healthz on one kept-alive connection (Python's
                             http.client), PAUSE seconds apart; prints each status, then the
                             seconds from the first request to the last answer
  idle PORT CA SECONDS       one request to /healthz on a kept-alive connection, then nothing
                             sent or read until the service closes it (at most SECONDS); prints
                             "cut after T s" (from the answer) or "not cut"
  hold PORT CA [SOURCE]      one kept-alive connection (from address SOURCE) that asks for
                             /healthz every second until it is killed or cut; prints "held" once
                             the first answer came. Never idle for long, so no timeout ends it:
                             what a test holds stays held.
  stall PORT CA PATH FLAG [CERT KEY]
                             GET PATH on a connection with a small receive buffer (with the client
                             certificate CERT and its KEY, if given), read the first 64 KiB of the
                             body, print "stalled", read nothing more until the file FLAG exists
                             (at most 60 s), then the rest; prints "read N bytes", or "cut after N
                             bytes" when the answer ends early. While it stalls, most of a large
                             answer is still on the service's side.
  slowread PORT CA PATH RATE CERT KEY OUT
                             GET PATH with the client certificate CERT and its KEY, on a connection
                             with a small receive buffer, read at RATE bytes a second into the file
                             OUT, sending nothing meanwhile; prints "read N bytes in T s", or "cut
                             after N bytes" when the answer ends early.

A slowloris is an attacker: it writes its request by hand on purpose, a byte at a time.
"""
import http.client
import os
import socket
import ssl
import sys
import time


def context(ca):
    return ssl.create_default_context(cafile=ca)


def slowloris(port, ca, seconds):
    s = context(ca).wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                server_hostname="localhost")
    start = time.monotonic()
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        i = 0
        while time.monotonic() - start < seconds:
            s.sendall(b"X-Slow-%d: y\r\n" % i)
            i += 1
            time.sleep(0.3)
    except (OSError, ssl.SSLError):
        print("cut after %.1f s" % (time.monotonic() - start))
        return
    print("not cut")


def silent(port, ca, seconds):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(seconds)
    start = time.monotonic()
    try:
        data = s.recv(1)  # the service sends nothing first: only its end of the stream comes
        if data == b"":
            print("cut after %.1f s" % (time.monotonic() - start))
            return
    except ConnectionResetError:
        print("cut after %.1f s" % (time.monotonic() - start))
        return
    except socket.timeout:
        pass
    print("not cut")


def keepalive(port, ca, n, pause):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=context(ca))
    c.connect()
    local = c.sock.getsockname()
    start = time.monotonic()
    for i in range(n):
        if i > 0:
            time.sleep(pause)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        if c.sock is None or c.sock.getsockname() != local:
            print("reconnected")
        print(r.status)
    c.close()
    print("%.1f" % (time.monotonic() - start))


def idle(port, ca, seconds):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=context(ca))
    c.request("GET", "/healthz")
    r = c.getresponse()
    r.read()
    if r.status != 200 or c.sock is None:
        sys.exit("idle: the request was answered %d, its connection %s" %
                 (r.status, "kept" if c.sock else "closed"))
    start = time.monotonic()
    c.sock.settimeout(seconds)
    try:
        data = c.sock.recv(1)  # nothing comes but the end of the stream
        if data == b"":
            print("cut after %.1f s" % (time.monotonic() - start))
            return
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        print("cut after %.1f s" % (time.monotonic() - start))
        return
    except socket.timeout:
        print("not cut")
        return
    sys.exit("idle: the service sent %r unasked" % data)


def hold(port, ca, source):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=context(ca),
                                    source_address=(source, 0) if source else None)
    first = True
    while True:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        if first:
            print("held", r.status, flush=True)
            first = False
        time.sleep(1)


def stall(port, ca, path, flag, cert=None, key=None):
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # (before connect: no autotuning)
    raw.connect(("127.0.0.1", port))
    ctx = context(ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
    c.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    c.request("GET", path)
    r = c.getresponse()
    got = len(r.read(65536))
    print("stalled", r.status, flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        while True:
            b = r.read(65536)
            if not b:
                break
            got += len(b)
    except (OSError, http.client.HTTPException):
        print("cut after %d bytes" % got)
        return
    if r.length:  # (http.client ends a read short of Content-Length quietly)
        print("cut after %d bytes" % got)
        return
    print("read %d bytes" % got)


def slowread(port, ca, path, rate, cert, key, out_path):
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # (before connect: no autotuning)
    raw.connect(("127.0.0.1", port))
    ctx = context(ca)
    ctx.load_cert_chain(cert, key)
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
    c.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    start = time.monotonic()
    c.request("GET", path)
    r = c.getresponse()
    got = 0
    with open(out_path, "wb") as out:
        try:
            while True:
                b = r.read(16384)
                if not b:
                    break
                out.write(b)
                got += len(b)
                ahead = got / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        except (OSError, http.client.HTTPException):
            r.length = 1
    if r.status != 200 or r.length:
        print("cut after %d bytes" % got)
        return
    print("read %d bytes in %.1f s" % (got, time.monotonic() - start))


if __name__ == "__main__":
    what, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if what == "slowloris":
        slowloris(port, ca, float(sys.argv[4]))
    elif what == "silent":
        silent(port, ca, float(sys.argv[4]))
    elif what == "hold":
        hold(port, ca, sys.argv[4] if len(sys.argv) > 4 else None)
    elif what == "idle":
        idle(port, ca, float(sys.argv[4]))
    elif what == "keepalive":
        keepalive(port, ca, int(sys.argv[4]), float(sys.argv[5]))
    elif what == "slowread":
        slowread(port, ca, sys.argv[4], float(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8])
    elif what == "stall":
        stall(port, ca, sys.argv[4], sys.argv[5], *sys.argv[6:8])
    else:
        sys.exit("unknown client " + what)
