"""The worker (an RQ worker's part in the incident): asks Redis for PONG by name every half
second and prints each answer."""
import socket
import time

while True:
    try:
        with socket.create_connection(("cache.lab.test", 6379), timeout=5) as s:
            s.sendall(b"PING\r\n")
            print("worker: redis says", s.recv(64).decode().strip(), flush=True)
    except OSError as e:
        print("worker: redis unreachable:", e, flush=True)
    time.sleep(0.5)
