#!/bin/sh
# gunicorn bound to the host's IPv6 address as its instance metadata would list it on a host
# whose only IPv6 address so far is the link-local one (no scope: gunicorn issue 1628).
addr=$(ip -6 -o addr show dev eth0 scope link | awk '{ split($4, a, "/"); print a[1]; exit }')
echo "binding [$addr]:8002"
exec gunicorn --bind "[$addr]:8002" --workers 1 --chdir "$1" app:app
