#!/usr/bin/env python3
"""The build part of `make bench` alone, plus what RUN on the default bridge costs.

    tools/bench/build_only.py --berth PATH [--samples N]     (as root)

Prints bench.py's build figures (berth and podman, both `--network none`, medians in ms),
then berth's uncached build of the same Dockerfile on the default bridge (its rootful
default) against `--network none`, run inside a network namespace of its own so that the
machine's network is never touched. Writes nothing but temp directories it removes."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def bridge_cost(berth, work, samples):
    d = os.path.join(work, "net")
    os.makedirs(d)
    rootfs = os.path.join(d, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for sub in ("tmp", "etc", "proc", "sys", "dev"):
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for tool in ("sh", "echo", "cat", "ls", "true"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    image_tar = os.path.join(d, "busybox.tar")
    bench.sh("tar", "-C", rootfs, "-cf", image_tar, ".")
    ctx = os.path.join(d, "ctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM localhost/bench-busybox:latest\n"
                "RUN echo one > /one\nRUN echo two > /two\nRUN echo three > /three\n")
    people = os.path.join(d, "berth")
    os.symlink(os.path.realpath(berth), people)
    b = [people, "--root", os.path.join(d, "root"), "--runroot", os.path.join(d, "run")]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench.sh(*b, "import", image_tar, "localhost/bench-busybox:latest", **quiet)
    out = {"bridge": [], "none": []}
    for _ in range(samples):
        for net in out:
            t0 = time.monotonic()
            bench.sh("unshare", "--net", "--", *b, "build", "-q", "--no-cache", "--network",
                     "bridge" if net == "bridge" else "none", ctx, **quiet)
            out[net].append((time.monotonic() - t0) * 1000)
    subprocess.run([*b, "rmi", "-a", "-f"], **quiet)
    return {k: statistics.median(v) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--samples", type=int, default=5)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="berth-build-bench-")
    try:
        builds = bench.build_bench(a.berth, work, a.samples)
        if builds:
            for k in ("uncached", "cached"):
                m = builds[k]
                print(f"{k}: berth {m['berth']:.0f} ms, podman {m['podman']:.0f} ms, "
                      f"{m['berth'] / m['podman']:.2f}x", flush=True)
        else:
            print("podman not found: no comparison", flush=True)
        c = bridge_cost(a.berth, work, a.samples)
        print(f"3 RUN steps uncached: default bridge {c['bridge']:.0f} ms, "
              f"--network none {c['none']:.0f} ms", flush=True)
    finally:
        subprocess.run(["umount", "-R", work], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
