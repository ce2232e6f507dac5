#!/usr/bin/env python3
"""make bench: berth, crun and runc side by side, interleaved, with the same config.json.

Run by tools/bench/bench.sh (which installs the peers and builds berth). Every timed command
goes through the same static launcher (nsexec) so that crun can run in a private mount
namespace where /sys/fs/cgroup/unified is unmounted (crun refuses this machine's hybrid
layout) while berth and runc pay the same launcher cost in the host's namespace.

We are a subreaper: containers that outlive the command that made them (create, run -d)
are reaped here, never left to a PID 1 that does not reap.
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Bench:
    def __init__(self, berth, rounds, runs, work):
        self.rounds, self.runs, self.work = rounds, runs, work
        self.bin = {"berth": berth, "crun": shutil.which("crun"), "runc": shutil.which("runc")}
        self.nsexec = os.path.join(work, "nsexec")
        self.floor = os.path.join(work, "floor")
        for name in ("nsexec", "floor"):
            sh("gcc", "-O2", "-static", "-o", os.path.join(work, name), os.path.join(HERE, name + ".c"))
        # State where it lives in real use: /run is a tmpfs on most distributions (not on
        # every VM: this one's /run is on the root disk). Mounted before the holder's mount
        # namespace is made, so crun's state is on it too.
        self.state_root = f"/run/berth-bench-{os.getpid()}"
        os.makedirs(self.state_root)
        sh("mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", self.state_root)
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             "umount /sys/fs/cgroup/unified 2>/dev/null; echo ready; exec sleep 100000"],
            stdout=subprocess.PIPE)
        assert self.holder.stdout.readline().strip() == b"ready"
        self.ns = {"crun": f"/proc/{self.holder.pid}/ns/mnt"}
        self.host_ns = f"/proc/{os.getpid()}/ns/mnt"
        self.roots = {rt: f"{self.state_root}/{rt}" for rt in self.bin}
        self.bundle = self.make_bundle("bundle", net=True)
        self.bundle_nonet = self.make_bundle("bundle-nonet", net=False)
        self.bundle_sleep = self.make_bundle("bundle-sleep", net=True, args=["sleep", "100000"])
        self.seq = 0

    def close(self):
        # Whatever an interrupted run left: every container in our roots goes.
        for rt in self.bin:
            if os.path.isdir(self.roots[rt]):
                ls = subprocess.run(self.cmd(rt, "list", "-q"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                for i in ls.stdout.decode().split():
                    subprocess.run(self.cmd(rt, "delete", "--force", i), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                    reap()
        self.holder.kill()
        self.holder.wait()
        subprocess.run(["umount", self.state_root])
        os.rmdir(self.state_root)

    def make_bundle(self, name, net, args=("/bin/true",)):
        b = os.path.join(self.work, name)
        rootfs = os.path.join(b, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        for d in ("proc", "dev", "sys", "tmp", "etc"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
        for a in ("true", "sh", "sleep"):
            os.symlink("busybox", os.path.join(rootfs, "bin", a))
        sh(self.bin["berth"], "spec", "--bundle", b)
        with open(os.path.join(b, "config.json")) as f:
            cfg = json.load(f)
        cfg["ociVersion"] = "1.0.2"  # crun 1.8 (Debian 12) knows no later version
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args)
        # The same limits for everyone: the cgroup work is part of the job.
        cfg["linux"]["resources"]["memory"] = {"limit": 256 << 20}
        cfg["linux"]["resources"]["pids"] = {"limit": 128}
        if not net:
            cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f)
        return b

    def cmd(self, rt, *args):
        ns = self.ns.get(rt, self.host_ns)
        return [self.nsexec, ns, self.bin[rt], "--root", self.roots[rt], *args]

    def cid(self, rt):
        self.seq += 1
        return f"berth-bench-{os.getpid()}-{rt}-{self.seq}"

    @staticmethod
    def timed(argv, cwd=None):
        # stderr to a file, not a pipe: a created container's init holds it open.
        with tempfile.TemporaryFile() as err:
            t = time.perf_counter_ns()
            p = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
            dt = (time.perf_counter_ns() - t) / 1e6
            if p.returncode != 0:
                err.seek(0)
                raise SystemExit(f"bench: {' '.join(argv)} failed ({p.returncode}): {err.read().decode().strip()}")
        return dt

    def interleaved(self, name, one, targets):
        """`one(target)` returns ms for one sample; rounds x runs, targets alternating."""
        samples = {t: [] for t in targets}
        for t in targets:  # warm-up: page cache, first cgroup creation
            for _ in range(3):
                one(t)
                reap()
        for _ in range(self.rounds):
            for _ in range(self.runs):
                for t in targets:
                    samples[t].append(one(t))
                reap()
        med = {t: statistics.median(v) for t, v in samples.items()}
        print(f"  {name:<28}" + "  ".join(f"{t} {med[t]:8.2f} ms" for t in targets), flush=True)
        return med

    def run_once(self, rt, bundle):
        if rt == "floor":
            flags = [] if bundle == self.bundle else ["-N"]
            return self.timed([self.nsexec, self.host_ns, self.floor, *flags, os.path.join(bundle, "rootfs")])
        return self.timed(self.cmd(rt, "run", "--bundle", bundle, self.cid(rt)))

    def split(self, rt):
        i = self.cid(rt)
        c = self.timed(self.cmd(rt, "create", "--bundle", self.bundle, i))
        s = self.timed(self.cmd(rt, "start", i))
        # The init exits at once; delete when the runtime says it has stopped.
        for _ in range(500):
            st = subprocess.run(self.cmd(rt, "state", i), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            if b'"stopped"' in st.stdout:
                break
            reap()
            time.sleep(0.001)
        d = self.timed(self.cmd(rt, "delete", i))
        return c, s, d

    def sequence(self, rt, n=100):
        t = time.perf_counter_ns()
        for _ in range(n):
            argv = (self.cmd(rt, "run", "--bundle", self.bundle, self.cid(rt)) if rt != "floor"
                    else [self.nsexec, self.host_ns, self.floor, os.path.join(self.bundle, "rootfs")])
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        return (time.perf_counter_ns() - t) / 1e6

    def parallel(self, rt, n=10):
        t = time.perf_counter_ns()
        procs = [subprocess.Popen(
            self.cmd(rt, "run", "--bundle", self.bundle, self.cid(rt)) if rt != "floor"
            else [self.nsexec, self.host_ns, self.floor, os.path.join(self.bundle, "rootfs")],
            stdout=subprocess.DEVNULL) for _ in range(n)]
        for p in procs:
            if p.wait() != 0:
                raise SystemExit(f"bench: parallel run on {rt} failed")
        return (time.perf_counter_ns() - t) / 1e6

    def peak_rss_kib(self, rt):
        argv = self.cmd(rt, "run", "--bundle", self.bundle, self.cid(rt))
        out = subprocess.run([argv[0], "-r", *argv[1:]], check=True, stdout=subprocess.PIPE)
        return int(out.stdout.split()[-1])

    def exec_bench(self, targets):
        ids, pids = {}, {}
        for rt in targets:
            if rt == "floor":
                pf = os.path.join(self.work, "floor.pid")
                sh(self.nsexec, self.host_ns, self.floor, "-d", pf, os.path.join(self.bundle_sleep, "rootfs"),
                   "/bin/sleep", "100000")
                pids[rt] = int(open(pf).read())
                continue
            ids[rt] = self.cid(rt)
            sh(*self.cmd(rt, "run", "-d", "--bundle", self.bundle_sleep, ids[rt]), stdout=subprocess.DEVNULL)
        try:
            def one(rt):
                if rt == "floor":
                    return self.timed([self.nsexec, self.host_ns, self.floor, "-e", str(pids[rt])])
                return self.timed(self.cmd(rt, "exec", ids[rt], "/bin/true"))
            return self.interleaved("exec /bin/true", one, targets)
        finally:
            for rt, i in ids.items():
                subprocess.run(self.cmd(rt, "delete", "--force", i), stdout=subprocess.DEVNULL)
            for p in pids.values():
                os.kill(p, signal.SIGKILL)
            time.sleep(0.1)
            reap()


# What each BERTH_TIMELINE phase covers (src/timeline.rs); "init:" phases are the container's
# init, the others the berth process.
PHASES = {
    "exec": "re-exec of berth from its sealed read-only mount (the first exec is before the marks)",
    "parse-args": "command line parsed",
    "check-sealed": "check that /proc/self/exe is read-only",
    "load-config": "config.json read, parsed, validated",
    "compile-seccomp": "seccomp profile compiled (none in this config)",
    "plan-cgroups": "cgroup layout from /proc/self/mountinfo, paths planned",
    "claim-id": "state directory claimed and locked",
    "write-state": "state.json written",
    "create-cgroups": "cgroup directories made, limits and device rules written",
    "prepare-clone": "exec fifo, v1 `tasks` fds, sync socket",
    "init:clone": "clone3 into the new namespaces (and the unified cgroup)",
    "clone": "clone3 returns in the parent",
    "init:join-cgroups": "init moves itself into the v1 cgroups",
    "join-cgroups": "parent: nothing left to join",
    "copy-config": "parent: config copy for exec, while the init works",
    "init:wait-go": "init: parent checked alive",
    "init:namespaces": "init: setsid, session keyring",
    "init:loopback": "init: lo up",
    "init:mounts": "init: config mounts (proc, dev, sys, cgroup view...)",
    "init:devices": "init: device nodes and /dev symlinks",
    "init:pivot-root": "init: pivot_root, old root detached",
    "init:masked-readonly-paths": "init: masked and read-only paths",
    "init:rlimits-fds": "init: rlimits, fds closed",
    "init:user-caps": "init: bounding set, user, capabilities",
    "init:cwd-env-lookup": "init: cwd, environment, executable lookup",
    "init:ready": "init: Ready sent",
    "wait-init": "parent receives Ready",
    "write-state#2": "state.json with the init's pid",
    "init:wait-start": "init: released through the exec fifo",
    "start": "parent: start done",
    "wait-exit": "init execs /bin/true, it exits, namespaces torn down, parent reaps",
    "delete:check-empty": "cgroup checked empty",
    "delete:cgroups": "cgroup directories removed",
    "delete:state": "state directory removed",
    "delete": "delete done",
}


def timeline(b, n):
    """Medians of each BERTH_TIMELINE phase over n runs, in the order they happen."""
    phases, totals = {}, []
    for _ in range(n):
        cid = b.cid("berth")
        env = dict(os.environ, BERTH_TIMELINE="1")
        p = subprocess.run(b.cmd("berth", "run", "--bundle", b.bundle, cid), env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
        marks = sorted((float(f[2]), f[3]) for f in (l.split() for l in p.stderr.decode().splitlines())
                       if len(f) == 4 and f[0] == "berth-timeline")
        seen = {}
        for (t0, _), (t1, name) in zip(marks, marks[1:]):
            seen[name] = seen.get(name, 0) + 1
            key = name if seen[name] == 1 else f"{name}#{seen[name]}"
            phases.setdefault(key, []).append((t1 - t0) * 1000)
        totals.append((marks[-1][0] - marks[0][0]) * 1000)
        reap()
    rows = [(k, statistics.median(v)) for k, v in phases.items()]
    return rows, statistics.median(totals)


def hyperfine_run(b, rt):
    out = os.path.join(b.work, f"hf-{rt}.json")
    sh("hyperfine", "-N", "--warmup", "5", "--runs", str(b.rounds * b.runs), "--export-json", out, "--style", "none",
       " ".join(b.cmd(rt, "run", "--bundle", b.bundle, f"berth-bench-hf-{rt}")),
       stdout=subprocess.DEVNULL)
    reap()
    with open(out) as f:
        return statistics.median(json.load(f)["results"][0]["times"]) * 1000


def build_bench(berth, work, samples):
    """`berth build` against `podman build` (runc: crun refuses the hybrid layout) of one
    Dockerfile: three RUN steps and a COPY of a 10 MB context, uncached (--no-cache) and
    fully cached, interleaved; both from one busybox image imported into private stores
    under `work`. Returns {"uncached"|"cached": {"berth": ms, "podman": ms}}, or None
    without podman."""
    podman = shutil.which("podman")
    if not podman:
        return None
    d = os.path.join(work, "build")
    rootfs = os.path.join(d, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for sub in ("tmp", "etc", "proc", "sys", "dev"):
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for tool in ("sh", "echo", "cat", "ls", "true"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    image_tar = os.path.join(d, "busybox.tar")
    sh("tar", "-C", rootfs, "-cf", image_tar, ".")
    ctx = os.path.join(d, "ctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "data"), "wb") as f:
        f.write(os.urandom(10 * 1024 * 1024))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM localhost/bench-busybox:latest\n"
                "RUN echo one > /one\n"
                "COPY data /data\n"
                "RUN ls -l /data > /listing\n"
                "RUN echo three > /three\n"
                'CMD ["sh"]\n')
    # The people face answers to the name `berth` (the release binary is also berth-runc).
    people = os.path.join(d, "berth")
    os.symlink(os.path.realpath(berth), people)
    bargs = [people, "--root", os.path.join(d, "broot"), "--runroot", os.path.join(d, "brun")]
    pargs = [podman, "--root", os.path.join(d, "proot"), "--runroot", os.path.join(d, "prun"),
             "--storage-driver", "overlay", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
             "--events-backend", "none"]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sh(*bargs, "import", image_tar, "localhost/bench-busybox:latest", **quiet)
    sh(*pargs, "import", image_tar, "localhost/bench-busybox:latest", **quiet)
    cmds = {
        "berth": lambda *x: bargs + ["build", "-q", "--network", "none", *x, ctx],
        "podman": lambda *x: pargs + ["build", "-q", "--network", "none", "--layers", *x, ctx],
    }
    out = {"uncached": {t: [] for t in cmds}, "cached": {t: [] for t in cmds}}
    for t, c in cmds.items():
        sh(*c("-t", "bench-img"), **quiet)
    for _ in range(samples):
        for t, c in cmds.items():
            t0 = time.monotonic()
            sh(*c("--no-cache", "-t", "bench-img"), **quiet)
            out["uncached"][t].append((time.monotonic() - t0) * 1000)
            t0 = time.monotonic()
            sh(*c("-t", "bench-img"), **quiet)
            out["cached"][t].append((time.monotonic() - t0) * 1000)
    # podman's storage keeps its overlay directory bind-mounted: reset unmounts it.
    subprocess.run(pargs + ["system", "reset", "-f"], **quiet)
    subprocess.run(["umount", "-R", os.path.join(d, "proot", "overlay")], **quiet)
    return {k: {t: statistics.median(v) for t, v in m.items()} for k, m in out.items()}


def fmt_ratio(x, y):
    return f"{x / y:.2f}×" if y else "–"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    a = ap.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("bench: PR_SET_CHILD_SUBREAPER failed")
    rounds, runs = (1, 5) if a.quick else (5, 20)
    work = tempfile.mkdtemp(prefix="berth-bench-")
    b = Bench(a.berth, rounds, runs, work)
    rts = ["berth", "crun", "runc"]
    rows = []
    try:
        print(f"bench: {rounds} rounds x {runs} runs, interleaved; crun runs in a private mount namespace "
              "without /sys/fs/cgroup/unified (it refuses the hybrid layout)", flush=True)
        m = b.interleaved("run /bin/true", lambda t: b.run_once(t, b.bundle), rts + ["floor"])
        rows.append(("`run` /bin/true (new netns)", m))
        m = b.interleaved("run /bin/true, no netns", lambda t: b.run_once(t, b.bundle_nonet), rts + ["floor"])
        rows.append(("`run` /bin/true (host netns)", m))
        parts = {rt: ([], [], []) for rt in rts}
        for _ in range(rounds * runs // 2 or 1):
            for rt in rts:
                for lst, v in zip(parts[rt], b.split(rt)):
                    lst.append(v)
            reap()
        for k, name in enumerate(("`create`", "`start`", "`delete`")):
            rows.append((name, {rt: statistics.median(parts[rt][k]) for rt in rts}))
        rows.append(("create+start+delete", {rt: sum(statistics.median(parts[rt][k]) for k in range(3)) for rt in rts}))
        seq = {t: [] for t in rts + ["floor"]}
        par = {t: [] for t in rts + ["floor"]}
        for _ in range(1 if a.quick else 3):
            for t in rts + ["floor"]:
                seq[t].append(b.sequence(t))
                reap()
                par[t].append(b.parallel(t))
                reap()
        rows.append(("100 `run` in sequence (total)", {t: statistics.median(v) for t, v in seq.items()}))
        rows.append(("10 `run` in parallel (total)", {t: statistics.median(v) for t, v in par.items()}))
        print("  100 sequential / 10 parallel: " + ", ".join(
            f"{t} {statistics.median(seq[t]):.0f}/{statistics.median(par[t]):.0f} ms" for t in seq), flush=True)
        rows.append(("`exec` /bin/true", b.exec_bench(rts + ["floor"])))
        hf = {rt: hyperfine_run(b, rt) for rt in rts}
        rows.append(("`run` via hyperfine -N (cross-check)", hf))
        rss = {rt: max(b.peak_rss_kib(rt) for _ in range(3)) for rt in rts}
        reap()
        tl_rows, tl_total = timeline(b, rounds * runs)
        builds = build_bench(a.berth, work, 3 if a.quick else 10)
        if builds:
            print("  build uncached/cached: " + ", ".join(
                f"{t} {builds['uncached'][t]:.0f}/{builds['cached'][t]:.0f} ms" for t in builds["uncached"]), flush=True)
    finally:
        b.close()
        shutil.rmtree(work, ignore_errors=True)

    size = {"berth": os.path.getsize(a.berth), "crun": os.path.getsize(b.bin["crun"]),
            "runc": os.path.getsize(b.bin["runc"])}
    ver = {rt: subprocess.run([b.bin[rt], "--version"], capture_output=True, text=True).stdout.splitlines()[0]
           for rt in rts}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {datetime.date.today().isoformat()}: one run, all figures from it.",
        f"Machine: {cpu}, {os.cpu_count()} CPUs, kernel {platform.release()}, cgroup v1 hybrid layout.",
        f"Peers: {ver['crun']}, {ver['runc']}; berth: {ver['berth']}.",
        "",
        f"Medians of {rounds} rounds × {runs} runs, runtimes interleaved run by run, after warm-up. Same",
        "bundle and config.json for all (berth's `spec`: pid, ipc, uts, mount, network namespaces,",
        "masked and read-only paths, devices, a cgroup with memory and pids limits, `/bin/true` from",
        "busybox). Every command goes through the same static launcher (`tools/bench/nsexec.c`):",
        "**crun runs in a private mount namespace where /sys/fs/cgroup/unified is unmounted**, because",
        "it refuses this machine's hybrid cgroup layout; berth and runc run in the host's. `floor` is",
        "`tools/bench/floor.c`: clone into the same namespaces, pivot_root, exec `/bin/true` — no",
        "cgroup, no /proc, /dev or state, the least any runtime must do. State roots are on a tmpfs",
        "mounted for the run (as /run is on most distributions; this VM's /run is on disk).",
        "",
        "| measure | berth | crun | runc | floor | berth/crun | berth/runc |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in rows:
        cell = lambda t: f"{m[t]:.2f} ms" if t in m else "–"
        lines.append(f"| {name} | {cell('berth')} | {cell('crun')} | {cell('runc')} | {cell('floor')} | "
                     f"{fmt_ratio(m['berth'], m['crun'])} | {fmt_ratio(m['berth'], m['runc'])} |")
    lines.append(f"| peak RSS of `run` (KiB, incl. children) | {rss['berth']} | {rss['crun']} | {rss['runc']} | – | "
                 f"{fmt_ratio(rss['berth'], rss['crun'])} | {fmt_ratio(rss['berth'], rss['runc'])} |")
    lines.append(f"| binary size | {size['berth'] / 1e6:.2f} MB | {size['crun'] / 1e6:.2f} MB | "
                 f"{size['runc'] / 1e6:.2f} MB | – | {fmt_ratio(size['berth'], size['crun'])} | "
                 f"{fmt_ratio(size['berth'], size['runc'])} |")
    by_name = dict(rows)
    targets = [
        ("`run` ≤ 0.5× crun", by_name["`run` /bin/true (new netns)"], 0.5),
        ("100 in sequence ≤ 0.5× crun", by_name["100 `run` in sequence (total)"], 0.5),
        ("10 in parallel ≤ 0.5× crun", by_name["10 `run` in parallel (total)"], 0.5),
        ("`exec` ≤ 0.7× crun", by_name["`exec` /bin/true"], 0.7),
    ]
    lines += ["", "Targets in this run:", ""]
    for what, m, limit in targets:
        ratio = m["berth"] / m["crun"]
        lines.append(f"- {what}: {ratio:.2f}×, {'met' if ratio <= limit else 'not met'}")
    mb = size["berth"] / 1e6
    lines.append(f"- binary ≤ 5 MB: {mb:.2f} MB, {'met' if mb <= 5 else 'not met'}")
    if builds:
        lines += [
            "",
            "## `build` against `podman build`",
            "",
            "One Dockerfile (FROM an imported busybox, three RUN steps, COPY of a 10 MB file, CMD),",
            "private stores on the same disk, medians of interleaved runs; podman with runc (crun",
            "refuses the hybrid layout), `--network none`, `--layers`.",
            "",
            "| measure | berth | podman | berth/podman |",
            "|---|---:|---:|---:|",
        ]
        for k, what in (("uncached", "`build --no-cache`"), ("cached", "`build`, every step cached")):
            m = builds[k]
            lines.append(f"| {what} | {m['berth']:.0f} ms | {m['podman']:.0f} ms | {fmt_ratio(m['berth'], m['podman'])} |")
        lines += ["", "Targets in this run:", ""]
        for k, limit in (("uncached", 0.5), ("cached", 0.1)):
            ratio = builds[k]["berth"] / builds[k]["podman"]
            lines.append(f"- {k} build ≤ {limit}× podman: {ratio:.2f}×, {'met' if ratio <= limit else 'not met'}")
    lines += [
        "",
        "## One berth `run`, phase by phase",
        "",
        f"`BERTH_TIMELINE=1` (src/timeline.rs) marks the end of each phase in the berth process and in",
        f"the container's init; medians of {rounds * runs} runs of the bundle above, in the order the phases",
        "end. The first exec of berth and its final exit are outside the marks; `exec` is the",
        f"re-exec. Median from first to last mark: {tl_total:.2f} ms.",
        "",
        "| phase | ms | what |",
        "|---|---:|---|",
    ]
    for k, v in tl_rows:
        lines.append(f"| `{k}` | {v:.3f} | {PHASES.get(k, PHASES.get(k.split('#')[0], ''))} |")
    lines.append("")
    notes = os.path.join(HERE, "NOTES.md")
    if os.path.exists(notes):
        lines.append(open(notes).read().rstrip())
        lines.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(lines))
    print(f"bench: wrote {a.out}")


if __name__ == "__main__":
    main()
