#!/bin/sh
# in-netns.sh CMD [ARG...]: runs CMD in a new network namespace with only `lo` (up), so
# that what the tests do to a network (bridges, veths, berth's nftables tables,
# ip_forward, route_localnet) stays there, never in the machine's own namespace.
# `make test` runs the suite this way, as does any single test binary run by hand:
#   tools/in-netns.sh cargo test --test people_containers -- --test-threads=4
# Only the network namespace is new: files, processes, /dev and systemd are the
# machine's, and the tests make their own deeper namespaces where they need them.
# The fixture registries (127.0.0.1:5000-5003, started by the image tests when not
# running) must answer in this namespace: they get a state directory of its own, so that
# ones running in the machine's namespace (seen by their pid files) are not taken for
# them; the test process that starts them stops them when it exits.
set -eu
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }
# The namespace it was started in, the machine's: the tests' guard (tests/common,
# private_netns) refuses to run containers there.
here=$(readlink /proc/self/ns/net)
if [ -n "${BERTH_HOST_NETNS:-}" ] && [ "$BERTH_HOST_NETNS" != "$here" ]; then
    exec "$@"
fi
export BERTH_HOST_NETNS="$here"
exec unshare --net -- sh -c '
    set -e
    ip link set lo up
    export REG_DIR="${TMPDIR:-/tmp}/berth-fixtures/registry-netns-$$"
    status=0
    "$@" || status=$?
    rm -rf "$REG_DIR"
    exit $status
' in-netns "$@"
