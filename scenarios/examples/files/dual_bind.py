"""Binds TCP port PORT on 0.0.0.0 and on [::], like gunicorn -b 0.0.0.0:PORT -b [::]:PORT.

With net.ipv6.bindv6only=0 (Linux's default) the [::] socket also takes IPv4, so the second
bind fails with EADDRINUSE; with bindv6only=1 both bind.
"""
import signal
import socket
import sys

port = int(sys.argv[1])
socks = []
for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((addr, port))
    except OSError as e:
        print(f"bind {addr} port {port} failed: [Errno {e.errno}] {e.strerror}", file=sys.stderr, flush=True)
        sys.exit(1)
    s.listen()
    socks.append(s)
print(f"listening on 0.0.0.0:{port} and [::]:{port}", flush=True)
signal.pause()
