# Writes malformed packets into a TUN through an AF_PACKET socket, so the
# translator reads them (e2e test: dropped, counted, daemon keeps serving).
# usage: inject.py IFNAME SRC6 DST6
import socket
import sys

ifname, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
s6 = socket.inet_pton(socket.AF_INET6, src)
d6 = socket.inet_pton(socket.AF_INET6, dst)
pkts = [
    # IPv6 header claiming TCP, with a 4-byte "TCP header"
    bytes([0x60, 0, 0, 0, 0, 4, 6, 64]) + s6 + d6 + b"\x00\x01\x02\x03",
    # payload length beyond the packet
    bytes([0x60, 0, 0, 0, 0x05, 0xDC, 17, 64]) + s6 + d6 + b"\x00" * 8,
    # version nibble 7
    bytes([0x70, 0, 0, 0, 0, 8, 17, 64]) + s6 + d6 + b"\x00" * 8,
    # truncated IPv6 header
    bytes([0x60, 0, 0, 0, 0, 0]),
    # IPv4 header with a bad IHL
    bytes([0x42, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0]) + bytes(8),
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
n = 0
for p in pkts:
    proto = 0x0800 if (p[0] >> 4) == 4 else 0x86DD
    s.sendto(p, (ifname, proto))
    n += 1
print(n)
