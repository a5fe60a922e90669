"""A server that binds each global address its host has when it starts (as servers configured
to bind interface addresses do), serving "enumerated" on each. It prints what it bound, then
serves forever: an address that arrives later is not served."""
import socket
import subprocess
import sys
import threading

port = int(sys.argv[1])
out = subprocess.run(["ip", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True, check=True).stdout
addrs = [line.split()[3].split("/")[0] for line in out.splitlines()]


def serve(sock):
    while True:
        conn, _ = sock.accept()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nenumerated\n")
        conn.close()


threads = []
for a in addrs:
    fam = socket.AF_INET6 if ":" in a else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, port))
    s.listen(16)
    print(f"bound {a} port {port}", flush=True)
    t = threading.Thread(target=serve, args=(s,), daemon=True)
    t.start()
    threads.append(t)
print(f"serving {len(addrs)} addresses", flush=True)
for t in threads:
    t.join()
