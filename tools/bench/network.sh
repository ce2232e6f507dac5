#!/usr/bin/env bash
# make bench-net: what a network costs berth, measured inside a private network namespace
# (never the machine's own network):
#   - `run --rm --rootfs R true` on the default bridge against `--network none`
#   - throughput through a published port (host -> 127.0.0.1:PORT -> container) against
#     the namespace's own loopback, with busybox nc and dd
#
#   tools/bench/network.sh [BERTH] [RUNS]        (as root; BERTH defaults to target/berth)
set -euo pipefail

if [ -z "${BENCH_NET_INNER:-}" ]; then
	exec env BENCH_NET_INNER=1 unshare --net -- "$0" "$@"
fi
ip link set lo up

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
berth=${1:-$repo/target/berth}
runs=${2:-20}
work=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,proc,dev,sys,etc,tmp}
cp /bin/busybox "$rootfs/bin/"
for a in sh true nc cat; do ln -s busybox "$rootfs/bin/$a"; done
b() { "$berth" --root "$work/root" --runroot "$work/run" "$@"; }

ms() { echo $(( ($2 - $1) / 1000000 )); }
per_run() {
	b run --rm "$@" --rootfs "$rootfs" true
	local s e
	s=$(date +%s%N)
	for _ in $(seq "$runs"); do b run --rm "$@" --rootfs "$rootfs" true; done
	e=$(date +%s%N)
	echo $(( (e - s) / runs / 1000000 ))
}
none=$(per_run --network none)
bridge=$(per_run)
echo "run --rm true, mean of $runs: --network none ${none} ms, default (the bridge) ${bridge} ms (+$((bridge - none)) ms)"

mb=2000
through() { # port: MB/s of $mb MB sent to a busybox nc listener, until it closed
	python3 - "$1" "$mb" <<'PY'
import socket, sys, time
port, mb = int(sys.argv[1]), int(sys.argv[2])
buf = b"\0" * (1 << 20)
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        time.sleep(0.05)
t = time.monotonic()
for _ in range(mb):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(4096):
    pass
print(int(mb / (time.monotonic() - t)))
PY
}
busybox nc -l -p 9000 >/dev/null &
lo=$(through 9000)
wait
b run -d --name sink -p 9001:9000 --rootfs "$rootfs" sh -c 'nc -l -p 9000 >/dev/null' >/dev/null
pub=$(through 9001)
b rm -f sink >/dev/null
echo "throughput of ${mb} MB: loopback ${lo} MB/s, published port ${pub} MB/s ($((pub * 100 / lo))%)"
