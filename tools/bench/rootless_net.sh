#!/usr/bin/env bash
# Throughput through a rootless published port (berth's pasta), against the host's own
# loopback and Podman's rootless port forwarding, measured inside private network and
# mount namespaces (never the machine's own network or /dev/net/tun): a veth to a peer
# namespace gives the "host" its default route, a 0666 node of 10:200 is bind-mounted over
# /dev/net/tun, and a user made for the run (useradd, subordinate ranges) runs the
# containers.
#
#   tools/bench/rootless_net.sh [BERTH] [MB]        (as root; BERTH defaults to target/berth)
set -euo pipefail

if [ -z "${BENCH_RLNET_INNER:-}" ]; then
	exec env BENCH_RLNET_INNER=1 unshare --net --mount --propagation private -- "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
berth_src=${1:-$repo/target/berth}
mb=${2:-2000}

ip link set lo up
unshare --net -- sleep 3600 &
peer=$!
sleep 0.3
ip link add bn0 type veth peer name bn1 netns "$peer"
ip addr add 10.97.0.1/24 dev bn0
ip link set bn0 up
ip route add default via 10.97.0.2
nsenter --net=/proc/$peer/ns/net sh -c 'ip link set lo up; ip addr add 10.97.0.2/24 dev bn1; ip link set bn1 up'

work=$(mktemp -d /tmp/berth-bench-rlnet.XXXXXX)
chmod 755 "$work"
user=bbrl$$
useradd -M -s /bin/false "$user"
cleanup() {
	for p in $(pgrep -u "$user" || true); do kill -9 "$p" 2>/dev/null || true; done
	kill "$peer" 2>/dev/null || true
	sleep 0.5
	userdel "$user" 2>/dev/null || true
	umount /dev/net/tun 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mknod "$work/tun" c 10 200
chmod 666 "$work/tun"
mount --bind "$work/tun" /dev/net/tun

rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,proc,dev,sys,etc,tmp} "$work/xdg"
cp /bin/busybox "$rootfs/bin/"
for a in sh true nc cat; do ln -s busybox "$rootfs/bin/$a"; done
cp "$berth_src" "$work/berth"
chown -R "$user:" "$work"
as_user() {
	setpriv --reuid "$(id -u "$user")" --regid "$(id -g "$user")" --init-groups \
		env -i PATH=/usr/bin:/bin HOME="$work" XDG_RUNTIME_DIR="$work/xdg" "$@"
}
b() { as_user "$work/berth" --root "$work/root" --runroot "$work/run" "$@"; }

through() { # port: MB/s of $mb MB sent to a busybox nc listener, until it closed
	python3 - "$1" "$mb" <<'PY'
import socket, sys, time
port, mb = int(sys.argv[1]), int(sys.argv[2])
buf = b"\0" * (1 << 20)
for _ in range(200):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"\0")
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
wait $!
b run -d --name sink -p 9001:9000 --rootfs "$rootfs" sh -c 'nc -l -p 9000 >/dev/null' >/dev/null
sleep 0.5
pub=$(through 9001)
b rm -f sink >/dev/null
echo "rootless throughput of ${mb} MB: loopback ${lo} MB/s, berth (pasta) published port ${pub} MB/s ($((pub * 100 / lo))%)"
# A user network: the shared rootless network namespace, the port forwarded by the monitor.
b network create benchnet >/dev/null
b run -d --name sink --network benchnet -p 9003:9000 --rootfs "$rootfs" sh -c 'nc -l -p 9000 >/dev/null' >/dev/null
sleep 0.5
unet=$(through 9003)
b rm -f sink >/dev/null
b network rm benchnet >/dev/null
echo "berth user network (shared namespace, monitor's splice forwarder) published port ${unet} MB/s ($((unet * 100 / lo))%)"

if command -v podman >/dev/null; then
	pm() { as_user podman --root "$work/pm-root" --runroot "$work/pm-run" --tmpdir "$work/pm-tmp" "$@"; }
	if pm --runtime /usr/sbin/runc --cgroup-manager cgroupfs run -d --name sink -p 9002:9000 --rootfs "$rootfs" sh -c 'nc -l -p 9000 >/dev/null' >/dev/null 2>"$work/pm.err"; then
		sleep 1
		pod=$(through 9002)
		pm --runtime /usr/sbin/runc rm -f sink >/dev/null 2>&1 || true
		echo "podman $(podman --version | awk '{print $3}') rootless (its default: slirp4netns + rootlessport) published port ${pod} MB/s ($((pod * 100 / lo))%)"
	else
		echo "podman rootless could not run here: $(tail -1 "$work/pm.err")"
	fi
fi
