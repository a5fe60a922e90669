#!/bin/sh
# Starts gunicorn bound to the host's SLAAC address the moment it exists, as a service that
# binds its instance's own IPv6 address does (the address as the kernel lists it now,
# whatever its state). `dynamic`: the address the router's advertisement made (it has
# lifetimes), not a static one the host's profile may also give it.
addr=$(ip -6 -o addr show dev eth0 scope global dynamic | awk '{ split($4, a, "/"); print a[1]; exit }')
echo "binding [$addr]:8000"
exec gunicorn --bind "[$addr]:8000" --workers 1 --chdir "$1" app:app
