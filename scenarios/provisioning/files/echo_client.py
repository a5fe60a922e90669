"""A client that connects to NAME:PORT over IPv6, prints the source address the kernel chose,
then sends "ping" every half second on the same connection for as long as it lives, printing
each answer with that source address."""
import socket
import sys
import time

name, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((name, port), timeout=10)
src = s.getsockname()[0]
print(f"connected from {src} to {s.getpeername()[0]}", flush=True)
f = s.makefile("rwb", buffering=0)
while True:
    f.write(b"ping\n")
    reply = f.readline().decode().strip()
    if not reply:
        print(f"connection from {src} closed", flush=True)
        sys.exit(1)
    print(f"{reply} on the connection from {src}", flush=True)
    time.sleep(0.5)
