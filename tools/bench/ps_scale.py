#!/usr/bin/env python3
"""`ps -a` wall time as containers are added, for one or more berth binaries side by side.

    ps_scale.py WORK BERTH [BERTH2 ...] [--counts 100,1000] [--running 0] [--runs 21]

WORK holds the durable root (on the disk, as the people bench); the runroot is a tmpfs
mounted under it. The same containers serve every binary (created with the first), so
records made by it are what the others read. `--running N` starts N of them (`sleep`)
for the monitor-liveness path. Medians of --runs, binaries alternating run by run.
Every container is `--network none`: the default network (rootful) is the bridge, which
takes at most 1024 ports (BR_MAX_PORTS), and a listing's cost is not the network's.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


class Popen(subprocess.Popen):
    """Keeps the child's rusage (its CPU time) from the wait that reaps it."""

    def _try_wait(self, wait_flags):
        pid, sts, self.ru = os.wait4(self.pid, wait_flags)
        return pid, sts


subprocess.Popen = Popen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("berth", nargs="+")
    ap.add_argument("--counts", default="100,1000")
    ap.add_argument("--running", type=int, default=0)
    ap.add_argument("--runs", type=int, default=21)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    run = os.path.join(a.work, "run")
    os.makedirs(run, exist_ok=True)
    if not os.path.ismount(run):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", run], check=True)
    base = ["--root", f"{a.work}/root", "--runroot", f"{run}/berth"]
    first = a.berth[0]

    def ok(*args):
        r = subprocess.run([first, *base, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            sys.exit(f"{' '.join(args)}: {r.stderr.decode().strip()}")
        return r.stdout.decode()

    image = "localhost/ps-bench:1"
    if image.split("/")[1] not in ok("images", "--format", "{{.Repository}}:{{.Tag}}"):
        rootfs = os.path.join(a.work, "rootfs")
        shutil.rmtree(rootfs, ignore_errors=True)
        for d in ["bin", "etc", "tmp", "proc", "dev", "sys"]:
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
        for x in ["sh", "sleep", "true"]:
            os.symlink("busybox", os.path.join(rootfs, "bin", x))
        tar = os.path.join(a.work, "rootfs.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
        ok("import", tar, image)

    have = len(ok("ps", "-a", "-q").split())
    running = len(ok("ps", "-q").split())
    for _ in range(max(0, a.running - running)):
        ok("run", "-d", "--network", "none", image, "sleep", "100000")
        have += 1
    print(f"uptime: {os.popen('uptime').read().strip()}")
    for n in [int(x) for x in a.counts.split(",")]:
        for _ in range(n - have):
            ok("create", "--network", "none", image, "true")
        have = max(have, n)
        times = {b: [] for b in a.berth}
        cpu = {b: [] for b in a.berth}
        outs = {}
        for i in range(a.runs):
            order = a.berth if i % 2 == 0 else list(reversed(a.berth))
            for b in order:
                t0 = time.perf_counter()
                p = subprocess.Popen([b, *base, "ps", "-a"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
                out, err = p.communicate()
                times[b].append(time.perf_counter() - t0)
                cpu[b].append(p.ru.ru_utime + p.ru.ru_stime)
                if p.returncode != 0:
                    sys.exit(f"{b} ps -a: {err.decode().strip()}")
                outs[b] = out
        for b in a.berth:
            same = "" if outs[b] == outs[first] else "  (OUTPUT DIFFERS from the first)"
            print(f"{have:5} containers  {b:40} median {statistics.median(times[b]) * 1000:6.2f} ms"
                  f"  min {min(times[b]) * 1000:6.2f}  cpu {statistics.median(cpu[b]) * 1000:6.2f}{same}")
    print(f"uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
