#!/usr/bin/env python3
"""Sends FILE over one TCP connection at about RATE bytes a second.

usage: tcp_send.py connect HOST PORT FILE RATE
       tcp_send.py listen ADDR PORT FILE RATE   (sends to the first client,
                                                 printing its address)

Paced by the sender itself, so that a test can change the path while the
transfer runs (the fast-path PMTU tests lower an MTU mid-flow); a receiver
that reads slowly would not do: the data would sit in its socket buffer,
already across. After the last byte the sender shuts its side down and
waits for the receiver to close: exit status 0 means the receiver read
everything (a sink such as `socat -u TCP:... CREATE:` closes only at EOF).
"""
import socket
import sys
import time

CHUNK = 16384


def send(s, data, rate):
    t0 = time.monotonic()
    sent = 0
    while sent < len(data):
        # Ahead of the pace: wait until the byte count is due.
        due = t0 + sent / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        chunk = data[sent:sent + CHUNK]
        s.sendall(chunk)
        sent += len(chunk)
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass
    s.close()


def main():
    mode, host, port, path, rate = sys.argv[1:6]
    with open(path, "rb") as f:
        data = f.read()
    if mode == "connect":
        s = socket.create_connection((host, int(port)), timeout=30)
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        ls = socket.socket(family, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, int(port)))
        ls.listen(1)
        print("listening", flush=True)
        s, peer = ls.accept()
        s.settimeout(30)
        print("peer %s" % peer[0], flush=True)
    send(s, data, int(rate))


main()
