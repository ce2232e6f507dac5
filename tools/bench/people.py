#!/usr/bin/env python3
"""make bench, the people face: berth and podman (with conmon) side by side, interleaved run
by run, on the same busybox image imported into each one's private storage.

Run by tools/bench/bench.sh after bench.py (which rewrites BENCHMARKS.md): this script
replaces the section from PEOPLE_MARK to the end of the file. Every figure is a median of
the interleaved runs; ratios are berth/podman. A benchmark, never a test: nothing here
asserts a figure.

We are a subreaper: conmon (and the `podman container cleanup` it runs) double-fork away
from the podman CLI; they are reaped here, so their CPU time counts in the per-run CPU
figure, as berth's monitor's does.
"""
import argparse
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36
PEOPLE_MARK = "## The people face: berth and podman"
APPLETS = ["sh", "true", "sleep", "echo", "seq", "cat", "ls"]


def reap_all(timeout=10.0):
    """Reaps our children (orphans reparented to us too) until none is left or timeout."""
    end = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > end:
                return
            time.sleep(0.005)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class People:
    def __init__(self, berth, work, runs):
        self.work, self.runs = work, runs
        self.berth = berth
        self.podman = shutil.which("podman")
        # A tmpfs for the runtime state of both (as /run is on most distributions), the
        # durable roots on the disk under the work dir.
        self.run_tmp = os.path.join(work, "run")
        os.makedirs(self.run_tmp)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", self.run_tmp], check=True)
        self.base = {
            "berth": [berth, "--root", f"{work}/berth-root", "--runroot", f"{self.run_tmp}/berth"],
            "podman": [self.podman, "--root", f"{work}/podman-root", "--runroot", f"{self.run_tmp}/podman",
                       "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                       "--storage-driver", "overlay", "--runtime", "runc"],
        }
        # podman's default RLIMIT_NOFILE (1048576) is over this machine's hard limit (no
        # CAP_SYS_RESOURCE here), so the runtime cannot set it: podman's containers get the
        # limits berth's inherit, given explicitly.
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # (nproc: podman's own default, 32768, when under the hard limit.)
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        self.run_opts = {"berth": [], "podman": ["--ulimit", f"nofile={nofile}:{nofile}",
                                                 "--ulimit", f"nproc={nproc}:{nproc}"]}
        # Docker's `rm -f` kills at once; podman's waits out the stop timeout (10 s for a
        # `sleep` that ignores SIGTERM as PID 1) unless told `-t 0`.
        self.rm_f = {"berth": ["-f"], "podman": ["-f", "-t", "0"]}
        self.image = "localhost/bench-busybox:1"
        tar = self.make_rootfs_tar()
        for rt in self.base:
            self.ok(rt, "import", tar, self.image)

    def make_rootfs_tar(self):
        root = os.path.join(self.work, "rootfs")
        for d in ["bin", "etc", "tmp", "proc", "dev", "sys"]:
            os.makedirs(os.path.join(root, d))
        shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
        for a in APPLETS:
            os.symlink("busybox", os.path.join(root, "bin", a))
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        tar = os.path.join(self.work, "rootfs.tar")
        subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
        return tar

    def cmd(self, rt, *args):
        return self.base[rt] + list(args)

    def ok(self, rt, *args, stdout=subprocess.DEVNULL):
        r = subprocess.run(self.cmd(rt, *args), stdout=stdout, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise SystemExit(f"{rt} {' '.join(args)}: {r.stderr.decode().strip()}")
        return r.stdout.decode() if stdout == subprocess.PIPE else ""

    def timed(self, rt, *args, stdout=subprocess.DEVNULL):
        """Wall time of one command and the peak RSS (KiB) of it and what it waited for."""
        t0 = time.perf_counter()
        p = subprocess.Popen(self.cmd(rt, *args), stdout=stdout, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode().strip()
        if p.stdout:
            p.stdout.read()
        if p.returncode != 0:
            raise SystemExit(f"{rt} {' '.join(args)}: exit {p.returncode}: {err}")
        return dt, ru.ru_maxrss

    def remove_all(self, rt):
        ids = self.ok(rt, "ps", "-a", "-q", stdout=subprocess.PIPE).split()
        for i in range(0, len(ids), 50):
            self.ok(rt, "rm", *self.rm_f[rt], *ids[i:i + 50])
        reap_all(2)

    def interleaved(self, one, n=None):
        """{rt: [result of one(rt)]}, runtimes alternating run by run."""
        out = {"berth": [], "podman": []}
        for i in range(n or self.runs):
            order = ["berth", "podman"] if i % 2 == 0 else ["podman", "berth"]
            for rt in order:
                out[rt].append(one(rt))
        return out

    def run_rm(self):
        """run --rm --network none IMG true: time, CLI peak RSS, CPU of every process."""
        def one(rt):
            cpu0 = children_cpu()
            dt, rss = self.timed(rt, "run", "--rm", "--network", "none", *self.run_opts[rt],
                                 self.image, "true")
            reap_all(5)
            return dt, rss, children_cpu() - cpu0
        return self.interleaved(one)

    def peak_rss(self, n=5):
        """Peak RSS (KiB) of `run --rm` by /usr/bin/time: wait4's ru_maxrss counts the
        address space a process had before its exec, so measured from this Python process
        every figure would start at Python's own size; time(1)'s fork is small."""
        def one(rt):
            r = subprocess.run(["/usr/bin/time", "-f", "%M"] + self.cmd(
                rt, "run", "--rm", "--network", "none", *self.run_opts[rt], self.image, "true"),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            reap_all(5)
            return int(r.stderr.decode().strip().splitlines()[-1])
        return self.interleaved(one, n=n)

    def run_d(self):
        def one(rt):
            dt, _ = self.timed(rt, "run", "-d", "--network", "none", *self.run_opts[rt],
                               self.image, "sleep", "1000")
            return dt
        r = self.interleaved(one)
        for rt in self.base:
            self.remove_all(rt)
        return r

    def create_start_rm(self):
        def one(rt):
            t0 = time.perf_counter()
            cid = self.ok(rt, "create", "--network", "none", *self.run_opts[rt], self.image,
                          "sleep", "1000", stdout=subprocess.PIPE).strip()
            self.ok(rt, "start", cid)
            self.ok(rt, "rm", *self.rm_f[rt], cid)
            dt = time.perf_counter() - t0
            reap_all(2)
            return dt
        return self.interleaved(one)

    def ps_a(self, counts=(10, 100)):
        """ps -a with N created containers, for each N (the same containers grow)."""
        res = {}
        have = 0
        for n in counts:
            for rt in self.base:
                for _ in range(n - have):
                    self.ok(rt, "create", "--network", "none", *self.run_opts[rt], self.image, "true")
            have = n
            res[n] = self.interleaved(lambda rt: self.timed(rt, "ps", "-a")[0])
        for rt in self.base:
            self.remove_all(rt)
        return res

    def logs(self, lines=100_000):
        ids = {}
        for rt in self.base:
            cid = self.ok(rt, "run", "-d", "--network", "none", *self.run_opts[rt], self.image,
                          "seq", "1", str(lines), stdout=subprocess.PIPE).strip()
            self.ok(rt, "wait", cid)
            out = self.ok(rt, "logs", cid, stdout=subprocess.PIPE)
            assert out.count("\n") == lines, f"{rt} logs: {out.count(chr(10))} lines"
            ids[rt] = cid
        r = self.interleaved(lambda rt: self.timed(rt, "logs", ids[rt])[0], n=max(5, self.runs // 2))
        for rt in self.base:
            self.remove_all(rt)
        return r

    def exec_(self):
        ids = {rt: self.ok(rt, "run", "-d", "--network", "none", *self.run_opts[rt], self.image,
                           "sleep", "1000", stdout=subprocess.PIPE).strip() for rt in self.base}
        r = self.interleaved(lambda rt: self.timed(rt, "exec", ids[rt], "true")[0])
        # The monitor's and conmon's resident size, with a container running and exec'd.
        rss = {}
        for rt, cid in ids.items():
            if rt == "berth":
                with open(f"{self.run_tmp}/berth/containers/{cid}/monitor.json") as f:
                    pid = json.load(f)["pid"]
            else:
                pid = int(self.ok(rt, "inspect", "--format", "{{.State.ConmonPid}}", cid,
                                  stdout=subprocess.PIPE).strip())
            rss[rt] = vm_rss_kib(pid)
        for rt in self.base:
            self.remove_all(rt)
        return r, rss

    def close(self):
        for rt in self.base:
            try:
                self.remove_all(rt)
            except SystemExit:
                pass
        subprocess.run(self.cmd("podman", "system", "reset", "--force"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        reap_all(5)
        subprocess.run(["umount", "-l", self.run_tmp], stderr=subprocess.DEVNULL)


READING = """
Reading these figures (what the table cannot say):

- `ps -a` costs berth about 0.3 ms of CPU per container: each container's `config.json`
  (about 20 KB, most of it the generated OCI spec) is parsed whole to list it. Keeping
  the spec in a file of its own, read only by the commands that need it, is the change
  that would make the listing flat; it is not made yet.
- berth's `run --rm` takes about 16 ms of CPU for all its processes; its wall time is
  several times that here mostly by waiting for a CPU on this shared machine (an strace
  of one run shows no wait longer than 4 ms in its path).
- `logs` spends its CPU (about 110 ms for the 100k lines) decoding the json-file lines;
  its output is buffered since 2026-12-06 (it made one write syscall per line: 125 ms of
  CPU to /dev/null then, more to a pipe or a terminal). Its wall time swings with the
  machine's load from run to run (100-400 ms here today).
- The monitor is a re-exec of the static berth binary; its resident size is mostly the
  binary's own pages it touched, against conmon's small C binary.
"""


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ms(x):
    return f"{x * 1000:.1f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True, help="the berth binary (the people face)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.runs = 6
    if not shutil.which("podman"):
        raise SystemExit("people bench: podman is not installed (apt-get install podman)")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    load0 = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="berth-people-bench-", dir="/var/tmp")
    b = People(a.berth, work, a.runs)
    try:
        rr = b.run_rm()
        rss = b.peak_rss()
        rd = b.run_d()
        csr = b.create_start_rm()
        ps = b.ps_a()
        lg = b.logs()
        ex, mon = b.exec_()
    finally:
        b.close()
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]

    med = statistics.median
    rows = []

    def row(name, f, x, target=None):
        ratio = x["berth"] / x["podman"] if x["podman"] else float("nan")
        t = "" if target is None else f"≤ {target}×: {'met' if ratio <= target else 'not met'}"
        rows.append(f"| {name} | {f(x['berth'])} | {f(x['podman'])} | {ratio:.3f}× | {t} |")

    row("`run --rm --network none IMG true`", ms, {k: med(v[0] for v in rr[k]) for k in rr}, 0.05)
    row("CPU of all processes per `run --rm`", ms, {k: med(v[2] for v in rr[k]) for k in rr}, 0.1)
    row("`run -d IMG sleep` until it returns", ms, {k: med(v) for k, v in rd.items()}, 0.1)
    row("`create` + `start` + `rm -f` (podman: `rm -f -t 0`)", ms, {k: med(v) for k, v in csr.items()})
    for n, r in ps.items():
        row(f"`ps -a` with {n} containers", ms, {k: med(v) for k, v in r.items()}, 0.05 if n == 100 else None)
    row("`logs` of 100k lines", ms, {k: med(v) for k, v in lg.items()}, 0.2)
    row("`exec CTR true`", ms, {k: med(v) for k, v in ex.items()}, 0.1)
    kib = lambda x: f"{x / 1024:.1f} MiB"  # noqa: E731
    row("peak RSS of the CLI (`run --rm`, with what it waited for)", kib,
        {k: med(v) for k, v in rss.items()}, 0.2)
    row("RSS of the monitor vs conmon (one running container)", kib, mon, 1.0)

    ver = subprocess.run([shutil.which("podman"), "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
    bver = subprocess.run([a.berth, "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
    text = f"""{PEOPLE_MARK}

Generated by `make bench` (tools/bench/people.py) on {time.strftime('%Y-%m-%d')}: {bver}; {ver}
with conmon and runc (`--runtime runc`: crun refuses this machine's hybrid cgroup layout;
the runc face's table above has runc a few ms slower than crun per container),
`--cgroup-manager cgroupfs --events-backend file`, overlay storage.
Both use the same busybox image (a static busybox rootfs tarball `import`ed into each one's
private `--root`), runtime state on a tmpfs, `--network none`. Medians of {a.runs} runs
(logs: {max(5, a.runs // 2)}), berth and podman alternating run by run. podman's
containers get `--ulimit nofile=..,nproc=..` with this machine's hard limits (what berth's
inherit): its default RLIMIT_NOFILE is over them and cannot be set here. Peak RSS is
time(1)'s `%M` for the CLI (the largest of it and the processes it waited for; 5 runs);
CPU per run is the user+system time of every process of the run,
conmon and its `podman container cleanup` included (the bench is their subreaper).
Load average {load0:.1f} at the start, {load1:.1f} at the end ({os.cpu_count()} CPUs): on a
shared machine wall times stretch with the load, the CPU row and the ratios (each pair run
back to back) less so.

| measure | berth | podman | berth/podman | target |
|---|---:|---:|---:|---|
""" + "\n".join(rows) + "\n" + READING
    out = open(a.out).read() if os.path.exists(a.out) else ""
    i = out.find(PEOPLE_MARK)
    if i >= 0:
        out = out[:i]
    out = out.rstrip("\n") + "\n\n" + text if out else text
    with open(a.out, "w") as f:
        f.write(out)
    print(text)


if __name__ == "__main__":
    main()
