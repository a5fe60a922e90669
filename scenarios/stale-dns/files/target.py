"""A blue/green target: answers every GET with its own name and logs who asked.

Usage: python3 target.py NAME PORT

It listens on [::]:PORT (IPV6_V6ONLY off, so IPv4 peers arrive as ::ffff:a.b.c.d) and speaks
HTTP/1.1 with keep-alive, like the load balancers of the incident: a client that pools connections
can keep one open for as long as it likes. Every request is logged on stdout as one line

    request from [ADDRESS]:PORT GET /id

and every new TCP connection as

    connection from [ADDRESS]:PORT

so requests that came on a connection opened before a DNS change (a pinned client) can be told
apart from new connections (a client that resolved again, or a stale resolver cache). The old
environment's access log was how the incident was found.
"""

import http.server
import socket
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says "Connection: close"

    def handle(self):
        host, port = self.client_address[:2]
        print(f"connection from [{host}]:{port}", flush=True)
        super().handle()  # every request on this connection, until either side closes it

    def do_GET(self):
        # Logged before the answer goes out: the client's next request (perhaps to the other
        # target) can only follow the answer, so the two targets' lines come in the order the
        # requests did. Logged after it, a thread descheduled between the two (a busy machine)
        # printed its line after the other target's, and the client seemed to go back to blue.
        host, port = self.client_address[:2]
        print(f"request from [{host}]:{port} {self.command} {self.path}", flush=True)
        body = (self.server.name + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass  # one line per request is printed above, nothing else


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    name, port = sys.argv[1], int(sys.argv[2])
    srv = Server(("::", port), Handler)
    srv.name = name
    print(f"{name} serving on [::]:{port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
