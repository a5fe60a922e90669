"""One HTTP request with urllib, as many Python programs make it: getaddrinfo, then each address
in turn with the given connect timeout (no Happy Eyeballs). Prints the answer or the error."""
import sys
import urllib.request

url, timeout = sys.argv[1], float(sys.argv[2])
try:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        print("answer", r.read().decode().strip(), flush=True)
except OSError as e:
    print("error", e, flush=True)
    sys.exit(1)
