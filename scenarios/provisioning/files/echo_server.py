"""A TCP server on [::]:PORT that answers each line with "pong" and prints, for every
connection it accepts, its local and peer addresses."""
import socket
import sys
import threading

port = int(sys.argv[1])
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::", port))
srv.listen(16)
print(f"listening on [::]:{port}", flush=True)


def serve(conn, peer):
    f = conn.makefile("rwb", buffering=0)
    for _ in f:
        f.write(b"pong\n")
    print(f"closed connection from {peer[0]}", flush=True)


while True:
    conn, peer = srv.accept()
    print(f"accepted {conn.getsockname()[0]} <- {peer[0]}", flush=True)
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
