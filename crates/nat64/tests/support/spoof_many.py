# Sends one UDP datagram from each of COUNT consecutive spoofed IPv6
# sources starting at FIRST (hostile tests: lease / session floods).
# usage: spoof_many.py FIRST COUNT DST PORT
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


s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
payload = b"flood"
ulen = 8 + len(payload)
for i in range(count):
    s6 = (first + i).packed
    udp = struct.pack("!HHHH", 40000, port, ulen, 0) + payload
    c = csum(s6 + d6 + struct.pack("!IxxxB", ulen, 17) + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    s.sendto(struct.pack("!IHBB", 6 << 28, ulen, 17, 64) + s6 + d6 + udp, (dst, 0))
print(count)
