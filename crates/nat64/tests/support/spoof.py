# Sends COUNT UDP datagrams with a spoofed source address through a raw
# socket (IPPROTO_RAW: the header is ours), for the hostile tests.
# usage: spoof.py SRC DST SPORT DPORT COUNT [PAYLOAD]
# SRC and DST are both IPv6 or both IPv4.
import socket
import struct
import sys

src, dst, sport, dport, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
payload = (sys.argv[6] if len(sys.argv) > 6 else "spoof").encode()


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


v6 = ":" in src
fam = socket.AF_INET6 if v6 else socket.AF_INET
s6, d6 = socket.inet_pton(fam, src), socket.inet_pton(fam, dst)
ulen = 8 + len(payload)
udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
if v6:
    pseudo = s6 + d6 + struct.pack("!IxxxB", ulen, 17)
else:
    pseudo = s6 + d6 + struct.pack("!xBH", 17, ulen)
c = csum(pseudo + udp) or 0xFFFF
udp = udp[:6] + struct.pack("!H", c) + udp[8:]
if v6:
    hdr = struct.pack("!IHBB", 6 << 28, ulen, 17, 64) + s6 + d6
else:
    hdr = struct.pack("!BBHHHBBH", 0x45, 0, 20 + ulen, 0x1234, 0, 64, 17, 0) + s6 + d6
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(count):
    s.sendto(hdr + udp, (dst, 0))
print(count)
