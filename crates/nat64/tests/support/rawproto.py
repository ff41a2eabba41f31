# Raw IP protocol peers for the "every IP protocol" tests (no ports).
#   rawproto.py echo4 BIND PROTO LOG   IPv4 side: answer every packet of
#                                      PROTO with the same payload, log it
#   rawproto.py echo6 BIND PROTO LOG   the same on the IPv6 side
#   rawproto.py send6 DST PROTO COUNT  IPv6 side: send COUNT packets of
#                                      PROTO to DST, print how many answers
#                                      with the same payload came back
#   rawproto.py send4 DST PROTO COUNT  the same from the IPv4 side
#   (send4/send6 take an optional 5th argument, the source address)
# The log has "ready", then one line "PEER LEN" per packet echoed. The
# senders print "answered N of COUNT; from DST: M" (M: those whose source
# was DST, i.e. translated back to the address the packet was sent to).
#
# Payloads look like the protocol, so that stateful middleboxes (the kernel
# NAPT's conntrack and masquerade) handle them as such and echo them
# untouched:
#   47 (GRE)   an RFC 2784 header (no checksum, version 0) carrying an
#              experimental EtherType, then text;
#   132 (SCTP) an RFC 9260 packet with one INIT chunk, verification tag 0
#              and a valid CRC32c; source port = destination port, so the
#              unchanged echo is the reply direction of the same
#              association to conntrack (INIT in both directions);
#   others     text.
import socket
import struct
import sys
import time


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def payload(proto, i):
    text = ("proto %d packet %d|" % (proto, i)).encode() * 4
    if proto == 47:
        return struct.pack("!HH", 0, 0x88B5) + text
    if proto == 132:
        text += b"\0" * (-len(text) % 4)
        # An unrecognised optional parameter (type 0xC00F: skip, report)
        # carries the text.
        param = struct.pack("!HH", 0xC00F, 4 + len(text)) + text
        init = struct.pack("!IIHHI", 0x1000 + i, 65535, 1, 1, 1000 + i) + param
        chunk = struct.pack("!BBH", 1, 0, 4 + len(init)) + init
        head = struct.pack("!HHII", 9899, 9899, 0, 0)
        crc = crc32c(head + chunk)
        # The CRC32c is stored little-endian (RFC 9260 appendix A).
        return head[:8] + struct.pack("<I", crc) + chunk
    return text


def echo(family, bind, proto, logf):
    s = socket.socket(family, socket.SOCK_RAW, proto)
    s.bind((bind, 0))
    with open(logf, "a", buffering=1) as f:
        f.write("ready\n")
        while True:
            data, peer = s.recvfrom(65535)
            if family == socket.AF_INET:
                # IPv4 raw sockets see the IP header, IPv6 ones do not.
                data = data[(data[0] & 0x0F) * 4:]
            f.write("%s %d\n" % (peer[0], len(data)))
            try:
                s.sendto(data, (peer[0], 0))
            except OSError as e:
                f.write("send to %s failed: %s\n" % (peer[0], e))


def send(family, dst, proto, count, src=None):
    s = socket.socket(family, socket.SOCK_RAW, proto)
    if src:
        s.bind((src, 0))
    s.settimeout(2)
    got = 0
    from_dst = 0
    for i in range(count):
        p = payload(proto, i)
        s.sendto(p, (dst, 0))
        deadline = time.time() + 2
        answered = False
        while time.time() < deadline:
            try:
                data, peer = s.recvfrom(65535)
            except socket.timeout:
                break
            if family == socket.AF_INET:
                data = data[(data[0] & 0x0F) * 4:]
            if data == p:
                got += 1
                if socket.inet_pton(family, peer[0]) == socket.inet_pton(family, dst):
                    from_dst += 1
                else:
                    print("packet %d answered from %s" % (i, peer[0]))
                answered = True
                break
        if not answered:
            print("packet %d unanswered" % i)
    print("answered %d of %d; from %s: %d" % (got, count, dst, from_dst))


mode = sys.argv[1]
if mode in ("echo4", "echo6"):
    fam = socket.AF_INET if mode == "echo4" else socket.AF_INET6
    echo(fam, sys.argv[2], int(sys.argv[3]), sys.argv[4])
elif mode in ("send4", "send6"):
    fam = socket.AF_INET if mode == "send4" else socket.AF_INET6
    src = sys.argv[5] if len(sys.argv) > 5 else None
    send(fam, sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), src)
else:
    sys.exit("usage: rawproto.py echo4|echo6 BIND PROTO LOG | send4|send6 DST PROTO COUNT")
