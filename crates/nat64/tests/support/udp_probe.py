# Sends one datagram from a connected UDP socket and reports what came back:
# "reply", "errno N NAME" (an ICMP error the kernel mapped to the socket),
# or "timeout". usage: udp_probe.py SRC SPORT DST DPORT
import errno
import socket
import sys

src, sport, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# Soft errors (Address Unreachable) reach the socket only with IPV6_RECVERR.
s.setsockopt(socket.IPPROTO_IPV6, 25, 1)
s.bind((src, sport))
s.connect((dst, dport))
s.settimeout(3)
s.send(b"probe")
try:
    s.recv(100)
    print("reply")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("errno", e.errno, errno.errorcode.get(e.errno, "?"))
