#!/usr/bin/env python3
"""One request sent as it is given, over TLS, for tests/e2e/http-errors.sh: the requests the
service must refuse are ones no HTTP library writes (a header line without a colon, a
Content-Length that is not a number, a chunk size past the limit, an unknown method).

  raw-request.py PORT CA < REQUEST
      sends REQUEST's bytes in one write, reads the answer with Python's http.client and prints
      it as JSON: {"status", "version", "headers": {lower-case name: value}, "body"}.
  raw-request.py PORT CA --all < REQUEST
      the same, every answer read until the server ends the connection: a JSON list of them (a
      connection the server keeps open fails at the timeout).
  raw-request.py PORT CA --flood MIB < REQUEST
      sends REQUEST, then '0' bytes until MIB MiB went or the server ended the connection;
      prints {"sent": bytes after REQUEST, "ended": whether the server ended it}.
"""
import http.client
import io
import json
import socket
import ssl
import sys


def read_answer(s, method=None):
    answer = http.client.HTTPResponse(s, method=method)
    answer.begin()
    body = answer.read()
    return {
        "status": answer.status,
        "version": answer.version,
        "headers": {k.lower(): v for k, v in answer.getheaders()},
        "body": body.decode("utf-8", "replace"),
    }


class Unclosed(io.BytesIO):
    def close(self):
        pass


class Stream:
    """Bytes already read, for http.client to read answer after answer from."""

    def __init__(self, data):
        self.file = Unclosed(data)

    def makefile(self, mode):
        return self.file


def flood(s, mib):
    sent, block = 0, b"0" * 65536
    try:
        while sent < mib << 20:
            s.sendall(block)
            sent += len(block)
        ended = s.recv(1) == b""
    except (OSError, ssl.SSLError):
        ended = True
    return {"sent": sent, "ended": ended}


def main():
    port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    request = sys.stdin.buffer.read()
    ctx = ssl.create_default_context(cafile=ca)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                         server_hostname="127.0.0.1") as s:
        s.sendall(request)
        if mode[:1] == ["--flood"]:
            out = flood(s, int(mode[1]))
        elif mode == ["--all"]:
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            stream, out = Stream(data), []
            while stream.file.tell() < len(data):
                out.append(read_answer(stream, request.split(b" ", 1)[0].decode()))
        else:
            out = read_answer(s)
    print(json.dumps(out))


main()
