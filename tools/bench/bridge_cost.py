#!/usr/bin/env python3
"""What the default bridge adds to `run --rm IMG true`: N runs on `--network bridge` against
N on `--network none` (interleaved, so that the machine's noise falls on both alike), and the
monitor's network phases from BERTH_TIMELINE (monitor:create, from monitor:rootfs, holds the
bridge's setup; monitor:save-state, from monitor:umount, its release; network:nftables is
one replacement of berth's tables, two a run). Runs itself again
inside a private network namespace (`unshare -n`, lo up): the host's network is never touched.

    tools/bench/bridge_cost.py BERTH [N]
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rootfs import busybox_tar  # noqa: E402


def phases(path):
    """{phase: [seconds]} of the monitor's marks, each from the monitor's mark before it."""
    out = {}
    lines = [l.split() for l in open(path) if l.startswith("berth-timeline")]
    by_pid = {}
    for _, pid, t, phase in lines:
        by_pid.setdefault(pid, []).append((float(t), phase))
    for marks in by_pid.values():
        prev = last = None
        for t, phase in marks:
            if phase == "network:nftables" and last is not None:
                out.setdefault(phase, []).append(t - last)
            last = t
            if not phase.startswith("monitor:"):
                continue
            if prev is not None:
                out.setdefault(phase, []).append(t - prev)
            prev = t
    return out


def inner(berth, n):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = tempfile.mkdtemp(prefix="berth-bridge-cost-")
    try:
        base = [berth, "--root", os.path.join(work, "root"), "--runroot", os.path.join(work, "run")]
        tar = busybox_tar(work, ["true", "sh"])
        subprocess.run(base + ["import", tar, "bb"], check=True, stdout=subprocess.DEVNULL)
        times = {"bridge": [], "none": []}
        timeline = os.path.join(work, "timeline")
        for net in ["bridge", "none"]:  # warm-up: the bridge and the page cache
            subprocess.run(base + ["run", "--rm", "--network", net, "bb", "true"], check=True)
        for _ in range(n):
            for net in ["bridge", "none"]:
                t = time.monotonic()
                subprocess.run(base + ["run", "--rm", "--network", net, "bb", "true"], check=True)
                times[net].append(time.monotonic() - t)
        env = dict(os.environ, BERTH_TIMELINE=timeline)
        for _ in range(n):
            subprocess.run(base + ["run", "--rm", "--network", "bridge", "bb", "true"],
                           check=True, env=env)
        ph = phases(timeline)
        ms = lambda xs: "median %.1f ms, mean %.1f ms" % (
            1000 * statistics.median(xs), 1000 * statistics.mean(xs))
        print(f"berth: {berth}")
        for net in ["bridge", "none"]:
            print(f"run --rm --network {net:6} IMG true ({n} runs): {ms(times[net])}")
        d = [a - b for a, b in zip(sorted(times["bridge"]), sorted(times["none"]))]
        print(f"bridge - none: {1000 * statistics.median(d):.1f} ms (median of sorted pairs)")
        for p in ["monitor:create", "monitor:save-state", "network:nftables"]:
            print(f"{p} on the bridge ({len(ph.get(p, []))} samples): {ms(ph.get(p, [0]))}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    berth = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    if os.environ.get("BERTH_BRIDGE_COST_INNER"):
        inner(berth, n)
        return
    env = dict(os.environ, BERTH_BRIDGE_COST_INNER="1")
    sys.exit(subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                             berth, str(n)], env=env).returncode)


if __name__ == "__main__":
    main()
