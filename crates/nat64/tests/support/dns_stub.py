#!/usr/bin/env python3
"""A minimal DNS64-like responder for one name, for the RFC 7050 test.

    dns_stub.py BIND_ADDR PREFIX_V6 LOGFILE

Answers UDP queries on BIND_ADDR:53 for `ipv4only.arpa`: A with
192.0.0.170 and 192.0.0.171 (RFC 7050 §2.2), AAAA with those addresses
synthesized into PREFIX_V6 (a /96), as a DNS64 would (RFC 6147 §5.1.7).
Any other name gets NXDOMAIN. Writes "ready" to LOGFILE once bound, then
one line per query. Only the test's namespaces reach it.
"""
import ipaddress
import socket
import struct
import sys

bind, prefix, logfile = sys.argv[1], sys.argv[2], sys.argv[3]
net = ipaddress.IPv6Network(prefix)
assert net.prefixlen == 96, "the stub synthesizes into a /96 only"
WKAS = [ipaddress.IPv4Address("192.0.0.170"), ipaddress.IPv4Address("192.0.0.171")]
family = socket.AF_INET6 if ":" in bind else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind((bind, 53))
log = open(logfile, "a", buffering=1)
log.write("ready\n")


def qname(msg, off):
    labels = []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels).lower(), off
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n


while True:
    msg, peer = s.recvfrom(512)
    if len(msg) < 12:
        continue
    ident, flags, qd = struct.unpack("!HHH", msg[:6])
    try:
        name, end = qname(msg, 12)
        qtype, qclass = struct.unpack("!HH", msg[end:end + 4])
    except (IndexError, struct.error):
        continue
    question = msg[12:end + 4]
    answers = []
    if name == "ipv4only.arpa" and qtype == 1:
        answers = [(1, w.packed) for w in WKAS]
    elif name == "ipv4only.arpa" and qtype == 28:
        answers = [(28, (net.network_address + int(w)).packed) for w in WKAS]
    rcode = 0 if name == "ipv4only.arpa" else 3
    log.write(f"{peer[0]} {name} type {qtype} -> {len(answers)} answers\n")
    head = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(answers), 0, 0)
    body = b"".join(
        struct.pack("!HHHIH", 0xC00C, t, 1, 60, len(rdata)) + rdata for t, rdata in answers
    )
    s.sendto(head + question + body, peer)
