# UDP client for the e2e tests: one datagram per source, waits for the echo.
# usage: udp_client.py DST DPORT SIZE TIMEOUT SRC,SPORT [SRC,SPORT ...]
# Prints "SRC,SPORT ok" or "SRC,SPORT timeout|mismatch" per source; exits 0
# when every echo came back intact.
import os
import socket
import sys

dst, dport, size, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
bad = 0
for spec in sys.argv[5:]:
    src, sport = spec.split(",")
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, int(sport)))
    s.settimeout(timeout)
    head = (spec + "|").encode()
    payload = head + os.urandom(max(0, size - len(head)))
    s.sendto(payload, (dst, dport))
    try:
        data, _ = s.recvfrom(65535)
        res = "ok" if data == payload else "mismatch(%d)" % len(data)
    except socket.timeout:
        res = "timeout"
    if res != "ok":
        bad += 1
    print(spec, res, flush=True)
    s.close()
sys.exit(1 if bad else 0)
