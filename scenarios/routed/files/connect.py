"""Connects over one family to a name and prints what happened: `connected <addr>` or the errno.

Usage: connect.py ipv4|ipv6 NAME PORT TIMEOUT_SECONDS. No Happy Eyeballs, no fallback: one
address of that family, as a client pinned to a family would do.
"""
import socket
import sys

family = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[sys.argv[1]]
name, port, timeout = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
addr = socket.getaddrinfo(name, port, family, socket.SOCK_STREAM)[0][4]
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(timeout)
try:
    s.connect(addr)
    print(f"connected {addr[0]}", flush=True)
except socket.timeout:
    print(f"timed out after {timeout:g} s connecting to {addr[0]}", flush=True)
    sys.exit(2)
except OSError as e:
    print(f"[Errno {e.errno}] {e.strerror} connecting to {addr[0]}", flush=True)
    sys.exit(1)
