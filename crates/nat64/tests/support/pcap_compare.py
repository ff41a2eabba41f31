# Independent check of `nat64 replay` (ops e2e test): the IPv4 packets the
# replay wrote must be the IPv4 packets tcpdump saw on the server-side veth,
# in the same order (up to local swaps, see below), compared on: source and destination address, protocol,
# ports (ICMP: type, code, identifier, sequence), TCP sequence/ack/flags/
# window and options, and the L4 payload bytes. TTL: the capture's is the
# replay's minus two (the xlat host's kernel forwards veth -> TUN, which
# decrements the hop limit the replay starts from, and TUN -> veth, which
# decrements the TTL once more); checked too. With --fast-path (nat64 ran
# with fast-path = "tc-bpf") a packet may instead have the replay's TTL: an
# established flow's packets are translated by the tc-BPF program at the
# veth's ingress, which decrements once, as the translator (and the
# replay) does, and no kernel forwarding hop follows. Not compared: IPv4
# ID, checksums, timestamps.
# usage: pcap_compare.py REPLAY_OUT.pcap SERVER_SIDE.pcap DST_ADDR [--fast-path]
import socket
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit("%s: not a classic pcap file" % path)
    link = struct.unpack(e + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if link == 1:  # Ethernet
            et = struct.unpack("!H", frame[12:14])[0]
            p = frame[14:]
            if et == 0x8100:
                et = struct.unpack("!H", frame[16:18])[0]
                p = frame[18:]
            if et != 0x0800:
                continue
        elif link in (101, 228):  # RAW / IPv4
            p = frame
        else:
            sys.exit("%s: link type %d not handled" % (path, link))
        if p and p[0] >> 4 == 4:
            yield p


def key(p):
    ihl = (p[0] & 15) * 4
    total = struct.unpack("!H", p[2:4])[0]
    ttl, proto = p[8], p[9]
    src, dst = socket.inet_ntoa(p[12:16]), socket.inet_ntoa(p[16:20])
    l4 = p[ihl:total]
    if proto == 6:
        sp, dp, seq, ack = struct.unpack("!HHII", l4[:12])
        doff = (l4[12] >> 4) * 4
        flags, win = l4[13], struct.unpack("!H", l4[14:16])[0]
        head = ("tcp", sp, dp, seq, ack, flags, win, l4[20:doff].hex())
        payload = l4[doff:]
    elif proto == 17:
        sp, dp = struct.unpack("!HH", l4[:4])
        head, payload = ("udp", sp, dp), l4[8:]
    elif proto == 1:
        t, c = l4[0], l4[1]
        ident, sq = struct.unpack("!HH", l4[4:8])
        head, payload = ("icmp", t, c, ident, sq), l4[8:]
    else:
        head, payload = ("proto%d" % proto,), l4
    return (src, dst) + head + (payload.hex(),), ttl


replay_path, capture_path, dst = sys.argv[1], sys.argv[2], sys.argv[3]
# TTL lost between the replay and the capture: the TUN path's two kernel
# forwarding hops, or (fast path) none.
TTL_DROPS = (2, 0) if "--fast-path" in sys.argv[4:] else (2,)
rep = [key(p) for p in packets(replay_path)]
rep = [k for k in rep if k[0][1] == dst]
cap = [key(p) for p in packets(capture_path)]
cap = [k for k in cap if k[0][1] == dst]
bad = 0
if len(rep) != len(cap):
    print("count differs: replay %d, capture %d" % (len(rep), len(cap)))
    bad += 1
# Order: the replay is in file order; the capture may swap packets that
# were sent back to back, because a multi-queue TUN can hand two packets of
# one flow to two workers (ADR 0005). Each replayed packet must therefore
# match a capture packet at most WINDOW positions away, each used once.
WINDOW = 2
used = set()
reordered = 0
for i, (a, ttl_a) in enumerate(rep):
    match = None
    for j in sorted(range(max(0, i - WINDOW), min(len(cap), i + WINDOW + 1)), key=lambda j: abs(j - i)):
        if j not in used and cap[j][0] == a:
            match = j
            break
    if match is None:
        b = cap[i][0] if i < len(cap) else None
        print("packet %d differs:\n  replay  %s\n  capture %s" % (i, a[:10], b[:10] if b else None))
        bad += 1
        continue
    used.add(match)
    reordered += match != i
    ttl_b = cap[match][1]
    if ttl_a - ttl_b not in TTL_DROPS:
        print("packet %d: replay TTL %d, capture TTL %d" % (i, ttl_a, ttl_b))
        bad += 1
if reordered:
    print("%d packets matched out of order (within %d positions)" % (reordered, WINDOW))
protos = sorted(set(k[0][2] for k in rep))
print("compared %d packets (%s), %d differences" % (len(rep), ",".join(protos), bad))
sys.exit(1 if bad else 0)
