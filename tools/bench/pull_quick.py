#!/usr/bin/env python3
"""A quick look at the cold-pull figures of pull.py, for working on the pull path: the
images are built and pushed once into WORK (kept between runs), the registry is started
again on the port it had, and berth, the floor and (with --podman) podman pull cold,
interleaved, N times each. Prints the medians and every run. Not part of `make bench`.

  tools/bench/pull_quick.py --berth target/berth --work /var/tmp/pull-quick [--runs 5]
      [--image multi|big|both] [--podman] [--only berth]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import resource
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pull  # noqa: E402


class Kept(pull.Pulls):
    """pull.Pulls over a work directory that outlives the run."""

    def __init__(self, berth, work, runs):
        state = f"{work}/state.json"
        if not os.path.exists(state):
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            super().__init__(berth, work, runs)
            with open(state, "w") as f:
                json.dump({"port": self.reg.port, "multi": self.man_multi, "big": self.man_big,
                           "sizes": self.sizes}, f)
            return
        with open(state) as f:
            st = json.load(f)
        self.work, self.runs = work, runs
        self.podman = shutil.which("podman")
        self.run_tmp = os.path.join(work, "run")
        os.makedirs(self.run_tmp, exist_ok=True)
        if subprocess.run(["mountpoint", "-q", self.run_tmp]).returncode != 0:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", self.run_tmp], check=True)
        self.base = {
            "berth": [berth, "--root", f"{work}/berth-root", "--runroot", f"{self.run_tmp}/berth"],
            "podman": [self.podman, "--root", f"{work}/podman-root", "--runroot",
                       f"{self.run_tmp}/podman", "--tmpdir", f"{self.run_tmp}/libpod",
                       "--cgroup-manager", "cgroupfs",
                       "--events-backend", "file", "--storage-driver", "overlay"],
        }
        self.man_multi, self.man_big, self.sizes = st["multi"], st["big"], st["sizes"]
        reg = pull.Registry.__new__(pull.Registry)
        reg.port = st["port"]
        reg.host = f"127.0.0.1:{reg.port}"
        d = f"{work}/registry"
        reg.log = open(f"{d}/registry.log", "ab")
        reg.proc = subprocess.Popen(["docker-registry", "serve", f"{d}/config.yml"],
                                    stdin=subprocess.DEVNULL, stdout=reg.log, stderr=reg.log)
        end = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", reg.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > end or reg.proc.poll() is not None:
                    raise SystemExit(f"pull_quick: docker-registry did not listen on {reg.host}")
                time.sleep(0.05)
        self.reg = reg
        self.ref = {"multi": f"{reg.host}/bench/multi:1", "big": f"{reg.host}/bench/big:1"}
        self.env = dict(os.environ, CONTAINERS_REGISTRIES_CONF=f"{work}/registries.conf")

    def close(self):
        if self.reg:
            self.reg.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--work", default="/var/tmp/berth-pull-quick")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--image", default="both", choices=["multi", "big", "both"])
    ap.add_argument("--podman", action="store_true")
    ap.add_argument("--no-floor", action="store_true")
    a = ap.parse_args()
    b = Kept(os.path.abspath(a.berth), a.work, a.runs)
    try:
        for name in (["multi", "big"] if a.image == "both" else [a.image]):
            for rt in b.base:
                if rt == "berth" or a.podman:
                    b.remove(rt, "big")
            out = {"berth": [], "floor": []}
            cpu = {}
            if a.podman:
                out["podman"] = []
            if a.no_floor:
                del out["floor"]
            rts = list(out)
            dest = f"{a.work}/floor"
            for i in range(a.runs):
                for rt in rts[i % len(rts):] + rts[:i % len(rts)]:
                    if rt == "floor":
                        shutil.rmtree(dest, ignore_errors=True)
                        os.makedirs(dest)
                        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        t0 = time.perf_counter()
                        b.floor(name, dest)
                        out[rt].append(time.perf_counter() - t0)
                        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        cpu.setdefault(rt, []).append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
                        shutil.rmtree(dest)
                    else:
                        b.remove(rt, name)
                        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        out[rt].append(b.timed(rt, "pull", b.ref[name]))
                        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        cpu.setdefault(rt, []).append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
            med = {k: statistics.median(v) for k, v in out.items()}
            line = f"{name}: " + "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in med.items())
            if "floor" in med:
                line += f"  berth/floor {med['berth'] / med['floor']:.2f}"
            if "podman" in med:
                line += f"  berth/podman {med['berth'] / med['podman']:.2f}"
            print(line)
            for k, v in out.items():
                print(f"  {k}: " + " ".join(f"{x * 1000:.0f}" for x in v))
            print("  cpu (user+sys, median ms): " + "  ".join(
                f"{k} {statistics.median(v) * 1000:.0f}" for k, v in cpu.items()))
    finally:
        b.close()


if __name__ == "__main__":
    main()
