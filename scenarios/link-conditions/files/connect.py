"""One HTTP request with http.client, the connection class urllib uses: socket.create_connection
tries each getaddrinfo address in turn (no Happy Eyeballs). Prints the time connect() took (the
program's own clock), the address it connected to and the answer."""
import http.client
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
conn = http.client.HTTPConnection(host, port, timeout=10)
t0 = time.monotonic()
conn.connect()
print(f"connected {int((time.monotonic() - t0) * 1000)} ms {conn.sock.getpeername()[0]}", flush=True)
conn.request("GET", "/")
print("answer", conn.getresponse().read().decode().strip(), flush=True)
