#!/usr/bin/env python3
"""A service manager's notification socket for the tests: binds a Unix datagram socket at PATH
and appends each message to OUT, one line each (newlines inside a message shown as " | ").

  notify-listen.py PATH OUT"""
import socket
import sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " | ") + "\n")
