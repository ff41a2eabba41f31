#!/usr/bin/env python3
"""Records the Router Advertisements arriving on an interface, for the
PREF64 test (RFC 8781), and decodes their options.

    pref64_listen.py IFACE SECONDS

Listens on a raw ICMPv6 socket bound to IFACE for SECONDS, then exits.
Prints "ready" once the socket is open, then one JSON object per Router
Advertisement (type 134):

    {"t": seconds since ready, "src": "fe80::...", "hop_limit": 255,
     "router_lifetime": 0, "options": [38], "pref64": [{"prefix":
     "2001:db8:64::/96", "lifetime": 16, "plc": 0}], "malformed": null}

A PREF64 option (RFC 8781 §4) is type 38, length 2 (16 bytes): a 13-bit
scaled lifetime (units of 8 s) and a 3-bit Prefix Length Code (0..5 =
/96, /64, /56, /48, /40, /32) in one 16-bit word, then the prefix's
first 96 bits. A PREF64 option of another length, an unknown PLC or set
bits past the prefix length are reported in "malformed" (the receiver
ignores such an option, §4). Only receives: sends nothing.
"""
import ipaddress
import json
import socket
import struct
import sys
import time

iface, seconds = sys.argv[1], float(sys.argv[2])
PLC_LEN = {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}

s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
t0 = time.monotonic()
deadline = t0 + seconds
print("ready", flush=True)


def decode(msg):
    """The RA's fields, or None when MSG is not a Router Advertisement."""
    if len(msg) < 16 or msg[0] != 134 or msg[1] != 0:
        return None
    ra = {"router_lifetime": struct.unpack("!H", msg[6:8])[0], "options": [],
          "pref64": [], "malformed": None}
    off = 16
    while off < len(msg):
        if off + 2 > len(msg) or msg[off + 1] == 0 or off + 8 * msg[off + 1] > len(msg):
            ra["malformed"] = f"option at offset {off} overruns the message"
            break
        typ, units = msg[off], msg[off + 1]
        body = msg[off:off + 8 * units]
        ra["options"].append(typ)
        if typ == 38:
            if units != 2:
                ra["malformed"] = f"PREF64 option of length {units} (want 2)"
            else:
                word = struct.unpack("!H", body[2:4])[0]
                plc = word & 7
                if plc not in PLC_LEN:
                    ra["malformed"] = f"PREF64 PLC {plc}"
                else:
                    plen = PLC_LEN[plc]
                    addr = int.from_bytes(body[4:16] + bytes(4), "big")
                    if addr & ((1 << (128 - plen)) - 1):
                        ra["malformed"] = f"PREF64 bits set past /{plen}"
                    net = ipaddress.IPv6Network((addr & ~((1 << (128 - plen)) - 1), plen))
                    ra["pref64"].append({"prefix": str(net), "lifetime": (word >> 3) * 8,
                                         "plc": plc})
        off += 8 * units
    return ra


while True:
    left = deadline - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        msg, anc, _flags, peer = s.recvmsg(65535, socket.CMSG_SPACE(4))
    except socket.timeout:
        break
    ra = decode(msg)
    if ra is None:
        continue
    hop = None
    for level, typ, data in anc:
        if level == socket.IPPROTO_IPV6 and typ == socket.IPV6_HOPLIMIT:
            hop = struct.unpack("i", data[:4])[0]
    ra = {"t": round(time.monotonic() - t0, 3), "src": peer[0].split("%")[0],
          "hop_limit": hop, **ra}
    print(json.dumps(ra), flush=True)
