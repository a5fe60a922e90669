"""Binds one TCP socket to the address given (numeric, `%scope` allowed) and port, then listens.

On failure prints the errno and, for an IPv6 address, the address's flags from /proc/net/if_inet6
(tentative = duplicate address detection still running), then exits 1.
"""
import ipaddress
import signal
import socket
import sys

IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08


def flags_of(addr):
    """The kernel's flags for `addr` on this host, as words, or None if it is not configured."""
    want = ipaddress.IPv6Address(addr.split("%")[0]).exploded.replace(":", "")
    with open("/proc/net/if_inet6") as f:
        for line in f:
            fields = line.split()
            if fields[0] == want:
                flags = int(fields[4], 16)
                words = [w for bit, w in ((IFA_F_TENTATIVE, "tentative"), (IFA_F_DADFAILED, "dadfailed")) if flags & bit]
                return " ".join(words) or "usable"
    return None


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    family, kind, proto, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)[0]
    s = socket.socket(family, kind, proto)
    try:
        s.bind(sockaddr)
    except OSError as e:
        state = ""
        if family == socket.AF_INET6:
            flags = flags_of(host)
            state = "; the address is " + (flags if flags else "not on this host")
        print(f"bind to {host} port {port} failed: [Errno {e.errno}] {e.strerror}{state}", flush=True)
        sys.exit(1)
    s.listen()
    print(f"listening on {host} port {port}", flush=True)
    signal.pause()


main()
