# Probes a range of hosts at once (the EAM tests: one mapping, many hosts).
#   sweep.py ping4 FIRST COUNT
#       IPv4 side: an ICMP echo request to each of COUNT addresses from
#       FIRST; an answer counts when it comes from the address it was sent
#       to, with its sequence number and payload.
#   sweep.py udp6 DST PORT FIRST COUNT
#       IPv6 side: from each of COUNT source addresses from FIRST, a UDP
#       datagram to [DST]:PORT (an echo); an answer counts when it comes
#       back to that source's socket from DST, unchanged.
# Both retry what is missing (up to 4 rounds, 2 s each) and print
# "answered N of COUNT; wrong source W" and "missing: ..." when some are.
import ipaddress
import os
import select
import socket
import struct
import sys
import time

ROUNDS = 4
WAIT = 2.0


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ping4(first, count):
    first = ipaddress.IPv4Address(first)
    addrs = [str(first + i) for i in range(count)]
    ident = os.getpid() & 0xFFFF
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    answered = set()
    wrong = 0

    def request(i):
        data = ("sweep %d|" % i).encode() * 2
        h = struct.pack("!BBHHH", 8, 0, 0, ident, i) + data
        return struct.pack("!BBHHH", 8, 0, checksum(h), ident, i) + data, data

    for _ in range(ROUNDS):
        todo = [i for i in range(count) if i not in answered]
        if not todo:
            break
        for i in todo:
            s.sendto(request(i)[0], (addrs[i], 0))
        deadline = time.time() + WAIT
        while len(answered) < count:
            left = deadline - time.time()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            pkt, peer = s.recvfrom(65535)
            icmp = pkt[(pkt[0] & 0x0F) * 4:]
            if len(icmp) < 8:
                continue
            typ, _, _, pid, seq = struct.unpack("!BBHHH", icmp[:8])
            if typ != 0 or pid != ident or seq >= count:
                continue
            if icmp[8:] != request(seq)[1]:
                continue
            if peer[0] != addrs[seq]:
                wrong += 1
                print("echo %d to %s answered from %s" % (seq, addrs[seq], peer[0]))
                continue
            answered.add(seq)
    report(count, answered, wrong, addrs)


def udp6(dst, port, first, count):
    first = ipaddress.IPv6Address(first)
    srcs = [str(first + i) for i in range(count)]
    socks = []
    for a in srcs:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((a, 0))
        s.setblocking(False)
        socks.append(s)
    index = {s.fileno(): i for i, s in enumerate(socks)}
    answered = set()
    wrong = 0
    msg = lambda i: ("%s|%d" % (srcs[i], i)).encode()
    for _ in range(ROUNDS):
        todo = [i for i in range(count) if i not in answered]
        if not todo:
            break
        for i in todo:
            socks[i].sendto(msg(i), (dst, port))
        deadline = time.time() + WAIT
        while len(answered) < count:
            left = deadline - time.time()
            if left <= 0:
                break
            ready = select.select(socks, [], [], left)[0]
            if not ready:
                break
            for s in ready:
                i = index[s.fileno()]
                try:
                    data, peer = s.recvfrom(65535)
                except OSError as e:
                    print("%s: %s" % (srcs[i], e))
                    continue
                if data != msg(i):
                    continue
                if ipaddress.IPv6Address(peer[0]) != ipaddress.IPv6Address(dst):
                    wrong += 1
                    print("%s answered from %s" % (srcs[i], peer[0]))
                    continue
                answered.add(i)
    report(count, answered, wrong, srcs)


def report(count, answered, wrong, names):
    print("answered %d of %d; wrong source %d" % (len(answered), count, wrong))
    missing = [names[i] for i in range(count) if i not in answered]
    if missing:
        print("missing: " + " ".join(missing))


mode = sys.argv[1]
if mode == "ping4":
    ping4(sys.argv[2], int(sys.argv[3]))
elif mode == "udp6":
    udp6(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
else:
    sys.exit("usage: sweep.py ping4 FIRST COUNT | udp6 DST PORT FIRST COUNT")
