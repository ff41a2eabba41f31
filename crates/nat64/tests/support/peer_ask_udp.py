# Asks peer_echo.py over UDP where each source appears to come from.
# usage: peer_ask_udp.py DST PORT COUNT SRC [SRC ...]
# For every SRC, COUNT sockets bound to (SRC, ephemeral port) each send a
# datagram (up to 3 tries, 1 s apart) and print "SRC udp ADDR:PORT", or
# "SRC udp FAIL" when no answer came. Exits 0 when every one was answered.
import socket
import sys

dst, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bad = 0
for src in sys.argv[4:]:
    for _ in range(count):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.settimeout(1.0)
        answer = "FAIL"
        for _ in range(3):
            s.sendto(b"where am i", (dst, port))
            try:
                answer = s.recv(2048).decode()
                break
            except socket.timeout:
                pass
        if answer == "FAIL":
            bad += 1
        print(src, "udp", answer, flush=True)
        s.close()
sys.exit(1 if bad else 0)
