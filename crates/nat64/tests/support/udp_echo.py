# UDP echo server that records who it heard from (e2e tests).
# usage: udp_echo.py BIND PORT LOGFILE
# Each datagram: one log line "PEER_IP PEER_PORT TAG LEN" (TAG = payload up
# to the first '|'), then the datagram is sent back to the peer.
import socket
import sys

bind, port, logf = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((bind, port))
with open(logf, "a", buffering=1) as f:
    f.write("ready\n")
    while True:
        data, peer = s.recvfrom(65535)
        tag = data.split(b"|", 1)[0][:80].decode("latin1")
        f.write("%s %d %s %d\n" % (peer[0], peer[1], tag, len(data)))
        s.sendto(data, peer)
