#!/usr/bin/env python3
"""`ps -a` of several berth binaries on the same containers, run by run in turn.

    ps_compare.py --root R --runroot RR BERTH [BERTH2 ...] [--runs 41] [-- PS-ARGS...]

For before/after figures of a change on a root whose containers are already there (say
1000 idle ones started with `run -d`, kept for a whole investigation): each run runs
every binary once, in turn, so the machine's noise falls on all of them alike. Prints
the median and minimum wall time and the median CPU (user + system, and user alone) of
each, from the rusage of the reaped child. Starts nothing and changes nothing (a
listing may reconcile a container whose monitor died, as any `ps` does).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--runroot", required=True)
    ap.add_argument("--runs", type=int, default=41)
    ap.add_argument("berth", nargs="+")
    argv = sys.argv[1:]
    extra = ["-a"]
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    a = ap.parse_args(argv)
    base = ["--root", a.root, "--runroot", a.runroot, "ps", *extra]
    wall = {b: [] for b in a.berth}
    cpu = {b: [] for b in a.berth}
    user = {b: [] for b in a.berth}
    for _ in range(a.runs):
        for b in a.berth:
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run([b, *base], stdout=subprocess.DEVNULL, check=True)
            t1 = time.perf_counter()
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall[b].append(t1 - t0)
            u = r1.ru_utime - r0.ru_utime
            user[b].append(u)
            cpu[b].append(u + r1.ru_stime - r0.ru_stime)
    med = statistics.median
    print(f"ps {' '.join(extra)}: {a.runs} runs each, in turn; load {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} CPUs)")
    for b in a.berth:
        print(f"{b:40} wall median {med(wall[b]) * 1000:6.2f} ms  min {min(wall[b]) * 1000:6.2f}"
              f"  cpu median {med(cpu[b]) * 1000:6.2f} ms (user {med(user[b]) * 1000:5.2f})")


if __name__ == "__main__":
    main()
