# A paced UDP flow with sequence numbers against udp_echo.py (the HA test):
# one datagram every INTERVAL_MS for SECONDS from one socket (one flow, one
# source port), then waits DRAIN seconds for the last echoes.
# usage: udp_stream.py SRC SPORT DST DPORT SECONDS INTERVAL_MS [DRAIN]
# Prints one JSON line: sent, received (distinct sequence numbers echoed),
# lost, max_gap_ms (the longest time between two consecutive echoes, or
# from the start to the first one) and first_lost / last_lost (sequence
# numbers, -1 when none was lost). Unconnected socket: ICMP errors from a
# dead gateway do not end the flow.
import json
import select
import socket
import sys
import time

src, sport, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
seconds, interval = float(sys.argv[5]), float(sys.argv[6]) / 1000.0
drain = float(sys.argv[7]) if len(sys.argv) > 7 else 1.5

s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((src, sport))
s.setblocking(False)
peer = (dst, dport)

sent = 0
got = set()
last_rx = None
max_gap = 0.0
t0 = time.monotonic()
end = t0 + seconds
stop = end + drain
next_tx = t0


def receive():
    global last_rx, max_gap
    while True:
        try:
            data = s.recv(2048)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            continue
        now = time.monotonic()
        try:
            seq = int(data.split(b"|", 1)[0])
        except ValueError:
            continue
        if seq in got:
            continue
        got.add(seq)
        max_gap = max(max_gap, now - (last_rx if last_rx is not None else t0))
        last_rx = now


while True:
    now = time.monotonic()
    if now >= stop:
        break
    if now < end and now >= next_tx:
        try:
            s.sendto(b"%d|ha-stream" % sent, peer)
        except OSError:
            pass  # an ICMP error reported on send: the datagram is lost
        sent += 1
        next_tx += interval
        if next_tx < now:  # the machine stalled: do not burst to catch up
            next_tx = now + interval
    wait = (next_tx if now < end else stop) - time.monotonic()
    r, _, _ = select.select([s], [], [], max(0.0, min(wait, stop - time.monotonic())))
    if r:
        receive()
receive()

lost = [i for i in range(sent) if i not in got]
print(
    json.dumps(
        {
            "sent": sent,
            "received": len(got),
            "lost": len(lost),
            "max_gap_ms": round(max_gap * 1000.0, 1),
            "first_lost": lost[0] if lost else -1,
            "last_lost": lost[-1] if lost else -1,
        }
    ),
    flush=True,
)
