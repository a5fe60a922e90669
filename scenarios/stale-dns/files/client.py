"""A Python client for the stale-DNS scenarios (Debian's python3-requests, run with /usr/bin/python3).

Usage: /usr/bin/python3 client.py MODE URL COUNT INTERVAL_MS

MODE "fresh":  a new requests.Session for every request, closed after it: a new connection, so a
               fresh getaddrinfo() (Python and urllib3 cache no names).
MODE "pooled": one requests.Session for the whole run: urllib3 keeps the connection alive and
               reuses it for as long as the server keeps it open.

Prints one line per request: the body ("blue", "green") or "error <exception>: <message>".
"""

import sys
import time

try:
    import requests
except ImportError:
    print("error: the requests module is missing (Debian: apt-get install python3-requests; "
          "run /usr/bin/python3, not a pyenv or venv python)", file=sys.stderr, flush=True)
    sys.exit(3)


def main():
    mode, url, count, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) / 1000
    if mode not in ("fresh", "pooled"):
        sys.exit(f"unknown mode {mode!r}: expected fresh or pooled")
    pooled = requests.Session() if mode == "pooled" else None
    for _ in range(count):
        start = time.monotonic()
        try:
            if pooled is not None:
                r = pooled.get(url, timeout=(2, 2))
            else:
                with requests.Session() as s:
                    r = s.get(url, timeout=(2, 2))
            line = r.text.strip()
        except requests.RequestException as e:
            line = f"error {type(e).__name__}: {e}".replace("\n", " ")
        print(line, flush=True)
        time.sleep(max(0.0, interval - (time.monotonic() - start)))


if __name__ == "__main__":
    main()
