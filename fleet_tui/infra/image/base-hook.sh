#!/bin/sh
# mmdebstrap customize hook for fleet-debian-slim: the non-root agent user (uid 1000, as
# runtime.docker_user expects) and the mount points the runtime binds.
set -e
root=$1
echo 'agent:x:1000:1000:fleet agent:/tmp:/bin/sh' >>"$root/etc/passwd"
echo 'agent:x:1000:' >>"$root/etc/group"
mkdir -p "$root/workspace" "$root/fleet" "$root/opt/fleet-launcher" "$root/run/fleet-egress"
chown 1000:1000 "$root/workspace"
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
