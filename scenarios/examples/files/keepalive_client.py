"""Requests http://app.example.test:8080/ every 0.2 s over one persistent HTTP/1.1 connection
(as a pooled client does), printing which target answered. Bounded: at most N requests."""
import http.client
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
conn = http.client.HTTPConnection("app.example.test", 8080, timeout=2)
for _ in range(n):
    try:
        conn.request("GET", "/")
        print(conn.getresponse().read().decode().strip(), flush=True)
    except (OSError, http.client.HTTPException) as e:
        print(f"error {e}", flush=True)
        conn.close()
        conn = http.client.HTTPConnection("app.example.test", 8080, timeout=2)
    time.sleep(0.2)
