"""A tiny local daemon and its client, meeting through a unix socket under /run.

    kv.py serve   creates /run/kvd/kvd.sock (and a pid file beside it, refusing to start when
                  one exists, as daemons do), keeps its data in /srv/kvd, answers "get" with it
    kv.py get     connects to /run/kvd/kvd.sock and prints "reply: <answer>", or
                  "connect /run/kvd/kvd.sock: <errno name>" and exits 2
"""

import errno
import os
import socket
import sys

RUN = "/run/kvd"
SOCK = RUN + "/kvd.sock"


def serve():
    os.makedirs(RUN, exist_ok=True)
    # O_EXCL: a second daemon sharing this /run (another lab, the machine) would stop here.
    fd = os.open(RUN + "/kvd.pid", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"%d\n" % os.getpid())
    os.close(fd)
    os.makedirs("/srv/kvd", exist_ok=True)
    with open("/srv/kvd/data", "w") as f:
        f.write("stored on " + socket.gethostname())
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(SOCK)
    srv.listen(8)
    print("listening on " + SOCK, flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            if conn.recv(64).strip() == b"get":
                with open("/srv/kvd/data", "rb") as f:
                    conn.sendall(f.read())


def get():
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(SOCK)
    except OSError as e:
        print("connect %s: %s" % (SOCK, errno.errorcode.get(e.errno, e.errno)), flush=True)
        sys.exit(2)
    c.sendall(b"get\n")
    c.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        chunk = c.recv(4096)
        if not chunk:
            break
        answer += chunk
    print("reply: " + answer.decode(), flush=True)


if __name__ == "__main__":
    {"serve": serve, "get": get}[sys.argv[1]]()
