# Writes COUNT copies of one malformed packet into a TUN through an
# AF_PACKET socket (ops e2e test: one named drop counter moves by COUNT).
# usage: inject_one.py IFNAME KIND COUNT    KIND: bad-ihl
import socket
import sys

ifname, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "bad-ihl":
    # IPv4 header with IHL 2 (8 bytes): below the 5-word minimum
    pkt, proto = bytes([0x42, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0]) + bytes(8), 0x0800
else:
    sys.exit("unknown kind " + kind)
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
for _ in range(count):
    s.sendto(pkt, (ifname, proto))
print(count)
