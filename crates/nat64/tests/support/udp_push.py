#!/usr/bin/env python3
"""A flow where only the server speaks after the first datagram.

server PORT SECONDS EVERY_MS: waits for one datagram (any peer), then sends
that peer a numbered datagram every EVERY_MS for SECONDS, then exits.

client BIND_ADDR SERVER PORT SECONDS: sends one datagram, then only receives
for SECONDS + 2; prints JSON: received, first and last number, the longest
gap between arrivals in ms.
"""
import json
import socket
import sys
import time


def server(port, seconds, every_ms):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    _, peer = s.recvfrom(2048)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        s.sendto(n.to_bytes(4, "big") + b"x" * 60, peer)
        n += 1
        time.sleep(every_ms / 1000)
    print(json.dumps({"sent": n, "peer": "%s:%d" % peer}), flush=True)


def client(bind, srv, port, seconds):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((bind, 0))
    s.sendto(b"start", (srv, port))
    s.settimeout(0.2)
    end = time.monotonic() + seconds + 2
    got, first, last, gap, prev = 0, None, None, 0.0, None
    while time.monotonic() < end:
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            continue
        now = time.monotonic()
        n = int.from_bytes(data[:4], "big")
        got += 1
        first = n if first is None else first
        last = n
        if prev is not None:
            gap = max(gap, (now - prev) * 1000)
        prev = now
    print(json.dumps({"received": got, "first": first, "last": last,
                      "max_gap_ms": round(gap, 1)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    else:
        client(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
