#!/bin/sh
# The monitor's own CPU (its threads' schedstat, ns) while a 1 s healthcheck runs, over
# SECONDS, for one berth binary: tools/bench/monitor_health_cpu.sh BERTH [SECONDS] [strace|perf]
# Runs as root; everything under a temporary directory, removed at the end.
# 2026-12-06, two binaries side by side over 90 s (load 2.4-2.7, 2 CPUs): before the
# probe changes 0.0752% of a core (0.75 ms per probe), after 0.0731%; syscalls of the
# monitor per probe (strace -c) 60.5 -> 43.5. The rest is mostly clone3 (copying the
# monitor's mm) and the write faults after it.
set -eu
BERTH=$(readlink -f "$1"); SECS=${2:-60}; MODE=${3:-}
W=$(mktemp -d /tmp/mhc.XXXXXX)
mkdir -p "$W/run" "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp" "$W/rootfs/proc" "$W/rootfs/dev" "$W/rootfs/sys"
mount -t tmpfs -o mode=0700 tmpfs "$W/run"
cp /bin/busybox "$W/rootfs/bin/busybox"
for a in sh true sleep; do ln -s busybox "$W/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/rootfs/etc/passwd"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
B="$BERTH --root $W/root --runroot $W/run/berth"
cleanup() { $B rm -f "$CID" >/dev/null 2>&1 || true; umount "$W/run"; rm -rf "$W"; }
$B import "$W/rootfs.tar" localhost/mhc:1 >/dev/null
CID=$($B run -d --network none --health-cmd true --health-interval 1s --health-timeout 5s localhost/mhc:1 sleep 100000)
trap cleanup EXIT
MPID=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"pid\"])" "$W/run/berth/containers/$CID/monitor.json")
cpu() { cat /proc/$MPID/task/*/schedstat | awk '{s+=$1} END {print s}'; }
sleep 3
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
c0=$(cpu); t0=$(date +%s.%N)
case "$MODE" in
  strace) timeout "$SECS" strace -c -p "$MPID" -o "$W/strace.txt" || true; cat "$W/strace.txt" ;;
  perf) perf record -q -g -o /tmp/mhc-perf.data -p "$MPID" -- sleep "$SECS" >/dev/null 2>&1 || true ;;
  *) sleep "$SECS" ;;
esac
c1=$(cpu); t1=$(date +%s.%N)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
$B inspect --format '{{.State.Health.Status}} streak={{.State.Health.FailingStreak}}' "$CID"
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" 'BEGIN {
  printf "monitor own CPU: %.1f ms over %.1f s = %.4f%% of a core (%.3f ms per probe at 1/s)\n",
    (c1-c0)/1e6, t1-t0, (c1-c0)/1e9/(t1-t0)*100, (c1-c0)/1e6/(t1-t0) }'
