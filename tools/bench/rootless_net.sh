#!/usr/bin/env bash
# Throughput through a rootless published port (berth's pasta), against the host's own
# loopback and Podman's rootless port forwarding, measured inside private network and
# mount namespaces (never the machine's own network or /dev/net/tun): a veth to a peer
# namespace gives the "host" its default route, a 0666 node of 10:200 is bind-mounted over
# /dev/net/tun, and a user made for the run (useradd, subordinate ranges) runs the
# containers.
#
#   tools/bench/rootless_net.sh [BERTH] [MB] [RUNS]  (as root; BERTH defaults to target/berth,
#                                                    MB to 2000, RUNS to 6)
#   BERTH_BASE=/path/to/other/berth ...              (adds that binary's two columns, to
#                                                    compare a change in the same rounds)
#
# The machine is shared and noisy: every round measures each path once, in an order that
# rotates from round to round, so load that comes and goes falls on all of them; each run
# is printed, then the medians.
set -euo pipefail

if [ -z "${BENCH_RLNET_INNER:-}" ]; then
	exec env BENCH_RLNET_INNER=1 unshare --net --mount --propagation private -- "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
berth_src=${1:-$repo/target/berth}
mb=${2:-2000}
runs=${3:-6}
base_src=${BERTH_BASE:-}

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
for a in sh true nc cat dd; do ln -s busybox "$rootfs/bin/$a"; done
cp "$berth_src" "$work/berth"
[ -z "$base_src" ] || cp "$base_src" "$work/berth-base"
chown -R "$user:" "$work"
as_user() {
	setpriv --reuid "$(id -u "$user")" --regid "$(id -g "$user")" --init-groups \
		env -i PATH=/usr/bin:/bin HOME="$work" XDG_RUNTIME_DIR="$work/xdg" "$@"
}
b() { as_user "$work/berth" --root "$work/root" --runroot "$work/run" "$@"; }
bb() { as_user "$work/berth-base" --root "$work/root-base" --runroot "$work/run-base" "$@"; }

through() { # port: MB/s of $mb MB sent to a busybox nc listener, until it closed
	python3 - "$1" "$mb" <<'PY'
import socket, sys, time
port, mb = int(sys.argv[1]), int(sys.argv[2])
buf = b"\0" * (1 << 20)
# The sinks listen again after each transfer (a shell loop): a forwarder may accept before
# the container's nc listens and then close the connection, so a transfer that fails in
# its first megabytes is started again.
for attempt in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"\0")
        t = time.monotonic()
        for i in range(mb):
            s.sendall(buf)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
        print(int(mb / (time.monotonic() - t)))
        break
    except OSError:
        s.close()
        time.sleep(0.2)
else:
    print(0)
PY
}
# Each sink accepts one connection at a time, forever (nc exits at the sender's end). The
# sink reads with dd's 1 MiB reads from the socket itself (nc -e), not through busybox nc's
# 1 KiB read-poll-write loop, which alone held every path, the loopback too, near 450 MB/s
# on this machine and hid the forwarders' own costs; SINK=nc measures with that loop.
if [ "${SINK:-dd}" = nc ]; then
	sink='while :; do nc -l -p 9000 >/dev/null; done'
	lo_sink() { busybox nc -l -p 9000 >/dev/null; }
else
	sink='while :; do nc -l -p 9000 -e dd of=/dev/null bs=1M 2>/dev/null; done'
	lo_sink() { busybox nc -l -p 9000 -e busybox dd of=/dev/null bs=1M 2>/dev/null; }
fi
b run -d --name sink -p 9001:9000 --rootfs "$rootfs" sh -c "$sink" >/dev/null
# A user network: the shared rootless network namespace, the port forwarded by the monitor.
# NET_OPTS: more flags of network create (e.g. "-o mtu=65520"), split on spaces.
# shellcheck disable=SC2086
b network create ${NET_OPTS:-} benchnet >/dev/null
b run -d --name usink --network benchnet -p 9003:9000 --rootfs "$rootfs" sh -c "$sink" >/dev/null
paths="lo def user"
if [ -n "$base_src" ]; then
	bb run -d --name sink -p 9004:9000 --rootfs "$rootfs" sh -c "$sink" >/dev/null
	# shellcheck disable=SC2086
	bb network create ${NET_OPTS:-} benchnet >/dev/null
	bb run -d --name usink --network benchnet -p 9005:9000 --rootfs "$rootfs" sh -c "$sink" >/dev/null
	paths="$paths bdef buser"
fi
pm() { as_user podman --root "$work/pm-root" --runroot "$work/pm-run" --tmpdir "$work/pm-tmp" "$@"; }
if command -v podman >/dev/null; then
	if pm --runtime /usr/sbin/runc --cgroup-manager cgroupfs run -d --name sink -p 9002:9000 --rootfs "$rootfs" sh -c "$sink" >/dev/null 2>"$work/pm.err"; then
		paths="$paths podman"
	else
		echo "podman rootless could not run here: $(tail -1 "$work/pm.err")"
	fi
fi
sleep 1
declare -A port=([def]=9001 [user]=9003 [bdef]=9004 [buser]=9005 [podman]=9002)
declare -A all
set -- $paths
n=$#
for r in $(seq 1 "$runs"); do
	line="run $r:"
	# Rotate the order: round r starts at path (r-1) mod n.
	order=("${@:$(((r - 1) % n + 1))}" "${@:1:$(((r - 1) % n))}")
	for p in "${order[@]}"; do
		if [ "$p" = lo ]; then
			lo_sink &
			v=$(through 9000)
			wait $!
		else
			v=$(through "${port[$p]}")
		fi
		all[$p]="${all[$p]:-} $v"
		line="$line $p $v"
	done
	echo "$line"
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
declare -A label=(
	[lo]="loopback"
	[def]="berth default network (pasta; the monitor's forwarder into the container's namespace)"
	[user]="berth user network (shared namespace; the monitor's forwarder to the container's address)"
	[bdef]="BERTH_BASE default network"
	[buser]="BERTH_BASE user network"
	[podman]="podman $(podman --version 2>/dev/null | awk '{print $3}') rootless (slirp4netns + rootlessport)"
)
lo=$(median "${all[lo]}")
echo "rootless throughput of ${mb} MB into a ${SINK:-dd} sink, medians of ${runs} interleaved runs (MB/s):"
for p in $paths; do
	m=$(median "${all[$p]}")
	echo "  ${label[$p]}: $m ($((m * 100 / (lo > 0 ? lo : 1)))% of loopback;$(echo ${all[$p]} | sed 's/^/ runs /'))"
done
b rm -f sink usink >/dev/null
b network rm benchnet >/dev/null
if [ -n "$base_src" ]; then
	bb rm -f sink usink >/dev/null
	bb network rm benchnet >/dev/null
fi
case " $paths " in *" podman "*) pm --runtime /usr/sbin/runc rm -f sink >/dev/null 2>&1 || true ;; esac
