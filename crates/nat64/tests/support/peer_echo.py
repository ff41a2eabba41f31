# Tells each peer the address and port it came from, as this host sees
# them (behind a NAT64: the pool address and port of the binding).
# usage: peer_echo.py BIND PORT
# TCP PORT: HTTP/1.1; every GET is answered "ADDR:PORT\n" (Content-Length
# set, so the client closes first and no TIME_WAIT stays here).
# UDP PORT: every datagram is answered "ADDR:PORT".
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

bind, port = sys.argv[1], int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("%s:%d\n" % self.client_address[:2]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    # Many clients connect at once: room for all their SYNs.
    request_queue_size = 256
    daemon_threads = True


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, port))
    while True:
        _, peer = s.recvfrom(2048)
        s.sendto(("%s:%d" % peer).encode(), peer)


threading.Thread(target=udp, daemon=True).start()
Server((bind, port), Handler).serve_forever()
