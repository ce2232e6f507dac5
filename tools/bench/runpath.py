#!/usr/bin/env python3
"""The people face's run path, two berth binaries side by side (a before and an after):
`run --rm --network none IMG true` and `run -d --network none IMG sleep 1000` until it
returns, interleaved run by run (A B, B A, ...), medians. Each binary has its own
private --root on the disk (/var/tmp, as people.py) and --runroot on a tmpfs, the same
busybox image imported into each. The -d containers are removed after each timed run
(not timed). Wall time, and CPU time (user + system) of the command and every process
it waited for (a foreground run's container; not a detached monitor). A benchmark,
never a test: nothing here asserts a figure.

    tools/bench/runpath.py --a OLD_BERTH --b NEW_BERTH [--runs 30]   (as root)
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

from rootfs import busybox_tar

APPLETS = ["sh", "true", "sleep"]


def make_tar(work):
    return busybox_tar(work, APPLETS)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd):
    """Wall time, and the CPU time of the command and of every process it waited for."""
    c0 = children_cpu()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    cpu = children_cpu() - c0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode().strip()}")
    return (dt, cpu), r.stdout.decode().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--only", default="rm,d")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="berth-runpath-", dir="/var/tmp")
    run_tmp = os.path.join(work, "run")
    os.makedirs(run_tmp)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", run_tmp], check=True)
    try:
        tar = make_tar(work)
        image = "localhost/bench-busybox:1"
        base = {}
        for k, b in (("a", args.a), ("b", args.b)):
            base[k] = [b, "--root", f"{work}/{k}-root", "--runroot", f"{run_tmp}/{k}"]
            subprocess.run(base[k] + ["import", tar, image], check=True, stdout=subprocess.DEVNULL)
        load0 = os.getloadavg()
        rows = []
        only = args.only.split(",")
        if "rm" in only:
            res = {"a": [], "b": []}
            for i in range(args.runs + 1):
                for k in (("a", "b") if i % 2 == 0 else ("b", "a")):
                    dt, _ = timed(base[k] + ["run", "--rm", "--network", "none", image, "true"])
                    if i:
                        res[k].append(dt)
            rows.append(("run --rm --network none IMG true", res))
        if "d" in only:
            res = {"a": [], "b": []}
            for i in range(args.runs + 1):
                for k in (("a", "b") if i % 2 == 0 else ("b", "a")):
                    dt, cid = timed(base[k] + ["run", "-d", "--network", "none", image, "sleep", "1000"])
                    subprocess.run(base[k] + ["rm", "-f", cid], check=True, stdout=subprocess.DEVNULL)
                    if i:
                        res[k].append(dt)
            rows.append(("run -d --network none IMG sleep", res))
        load1 = os.getloadavg()
        print(f"load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end; medians of {args.runs}")
        for name, res in rows:
            for i, what in ((0, "wall"), (1, "CPU")):
                a = [x[i] for x in res["a"]]
                b = [x[i] for x in res["b"]]
                ma, mb = statistics.median(a), statistics.median(b)
                ratios = [y / x for x, y in zip(a, b) if x > 0]
                print(f"{name}, {what}: a {ma * 1000:.2f} ms  b {mb * 1000:.2f} ms  b/a median of "
                      f"pairs {statistics.median(ratios):.3f}  (min a {min(a) * 1000:.2f}, "
                      f"b {min(b) * 1000:.2f})")
    finally:
        subprocess.run(["umount", "-l", run_tmp])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
