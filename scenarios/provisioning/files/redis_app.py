"""A WSGI app that asks Redis for PONG on every request, the way many apps reach their cache:
socket.create_connection with no timeout, which tries each address of the name in turn (AAAA
first where the host has IPv6)."""
import socket


def app(environ, start_response):
    with socket.create_connection(("cache.lab.test", 6379)) as s:
        s.sendall(b"PING\r\n")
        reply = s.recv(64).decode().strip()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"redis says {reply}\n".encode()]
