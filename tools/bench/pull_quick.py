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
import statistics
import sys

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
        self.stores(berth, work, runs)
        self.man_multi, self.man_big, self.sizes = st["multi"], st["big"], st["sizes"]
        self.reg = None
        self.serve(pull.Registry(work, port=st["port"]))

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
            rts = ["berth"] + ([] if a.no_floor else ["floor"]) + (["podman"] if a.podman else [])
            cpu = {}
            out = b.cold(name, a.runs, rts, cpu)
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
