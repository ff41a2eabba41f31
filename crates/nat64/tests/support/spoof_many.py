# Sends one UDP datagram (or, with `syn` as 5th argument, one TCP SYN) from
# each of COUNT consecutive spoofed IPv6 sources starting at FIRST (hostile
# tests: lease / session / SYN floods).
# usage: spoof_many.py FIRST COUNT DST PORT [syn|udp] [PER_10MS]
# PER_10MS paces the flood (that many packets, then 10 ms of sleep).
import ipaddress
import socket
import struct
import sys

first, count, dst, port = ipaddress.IPv6Address(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
d6 = socket.inet_pton(socket.AF_INET6, dst)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


import time

syn = len(sys.argv) > 5 and sys.argv[5] == "syn"
pace = int(sys.argv[6]) if len(sys.argv) > 6 else 0
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
payload = b"flood"
for i in range(count):
    s6 = (first + i).packed
    if syn:
        # seq, ack 0, data offset 5, SYN, window 65535
        l4 = struct.pack("!HHIIBBHHH", 40000 + i % 20000, port, i, 0, 5 << 4, 0x02, 65535, 0, 0)
        proto = 6
        c = csum(s6 + d6 + struct.pack("!IxxxB", len(l4), proto) + l4)
        l4 = l4[:16] + struct.pack("!H", c) + l4[18:]
    else:
        ulen = 8 + len(payload)
        l4 = struct.pack("!HHHH", 40000, port, ulen, 0) + payload
        proto = 17
        c = csum(s6 + d6 + struct.pack("!IxxxB", ulen, proto) + l4) or 0xFFFF
        l4 = l4[:6] + struct.pack("!H", c) + l4[8:]
    s.sendto(struct.pack("!IHBB", 6 << 28, len(l4), proto, 64) + s6 + d6 + l4, (dst, 0))
    if pace and i % pace == pace - 1:
        time.sleep(0.01)
print(count)
