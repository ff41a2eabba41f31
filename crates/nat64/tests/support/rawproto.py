# Raw IP protocol peers for the "every IP protocol" tests (no ports).
#   rawproto.py echo4 BIND PROTO LOG   IPv4 side: answer every packet of
#                                      PROTO with the same payload, log it
#   rawproto.py send6 DST PROTO COUNT  IPv6 side: send COUNT packets of
#                                      PROTO to DST, print how many answers
#                                      with the same payload came back
import socket
import sys
import time

mode = sys.argv[1]
if mode == "echo4":
    bind, proto, logf = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    s.bind((bind, 0))
    with open(logf, "a", buffering=1) as f:
        f.write("ready\n")
        while True:
            data, peer = s.recvfrom(65535)
            hl = (data[0] & 0x0F) * 4
            payload = data[hl:]
            f.write("%s %d\n" % (peer[0], len(payload)))
            s.sendto(payload, (peer[0], 0))
elif mode == "send6":
    dst, proto, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
    s.settimeout(2)
    got = 0
    for i in range(count):
        payload = ("proto %d packet %d|" % (proto, i)).encode() * 4
        s.sendto(payload, (dst, 0))
        deadline = time.time() + 2
        while time.time() < deadline:
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                break
            if data == payload:
                got += 1
                break
    print("answered %d of %d" % (got, count))
