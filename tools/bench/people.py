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
import calendar
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

from rootfs import busybox_tar

PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNET = 0x40000000
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
        return busybox_tar(self.work, APPLETS)

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

    def stats(self, n=20):
        """stats --no-stream with N running containers."""
        for rt in self.base:
            for _ in range(n):
                self.ok(rt, "run", "-d", "--network", "none", *self.run_opts[rt], self.image,
                        "sleep", "1000")
        try:
            def one(rt):
                cpu0 = children_cpu()
                dt, _ = self.timed(rt, "stats", "--no-stream", stdout=subprocess.PIPE)
                return dt, children_cpu() - cpu0
            # The listing must hold every container (a header and N lines) for the figure to
            # mean anything.
            for rt in self.base:
                out = self.ok(rt, "stats", "--no-stream", stdout=subprocess.PIPE)
                got = len([x for x in out.splitlines() if x.strip()]) - 1
                if got != n:
                    raise SystemExit(f"{rt} stats --no-stream: {got} containers listed, not {n}")
            return self.interleaved(one, n=max(5, self.runs // 2))
        finally:
            for rt in self.base:
                self.remove_all(rt)

    def system_df(self, n=100):
        """system df with N images (distinct one-file layers) and N created containers."""
        tars = []
        d = os.path.join(self.work, "df-tars")
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            src = os.path.join(d, f"src{i}")
            os.makedirs(src)
            with open(os.path.join(src, "id"), "w") as f:
                f.write(f"{i}\n")
            tar = os.path.join(d, f"{i}.tar")
            subprocess.run(["tar", "-C", src, "-cf", tar, "."], check=True)
            tars.append(tar)
        names = [f"localhost/bench-df-{i}:1" for i in range(n)]
        try:
            for rt in self.base:
                for tar, name in zip(tars, names):
                    self.ok(rt, "import", tar, name)
                for _ in range(n):
                    self.ok(rt, "create", "--network", "none", *self.run_opts[rt], self.image, "true")
            return self.interleaved(lambda rt: self.timed(rt, "system", "df")[0],
                                    n=max(5, self.runs // 2))
        finally:
            for rt in self.base:
                try:
                    self.remove_all(rt)
                    for i in range(0, n, 50):
                        self.ok(rt, "rmi", "-f", *names[i:i + 50])
                except SystemExit as e:
                    print(f"people bench: system df cleanup: {e}", file=sys.stderr)
            shutil.rmtree(d, ignore_errors=True)

    def health(self, seconds=180):
        """CPU of the monitor (and of conmon) over SECONDS while a 1 s healthcheck runs.

        "own": the process's own CPU time in nanoseconds (/proc/PID/task/*/schedstat, every
        thread), not the 10 ms ticks of utime+stime. "all": that plus the CPU of the children
        it reaped (cutime+cstime: ticks, but cumulative, so the window's figure is off by one
        tick at most): each probe process whole, the work of starting it (clone, namespaces,
        cgroups, seccomp, capabilities, exec) and the probe's command itself. "setup": "all"
        less the command's own CPU, measured alone on the host (the same busybox `sh -c
        true`, exec included, times the probes run in the window)."""
        opts = ["--health-cmd", "true", "--health-interval", "1s", "--health-timeout", "5s"]
        ids = {rt: self.ok(rt, "run", "-d", "--network", "none", *self.run_opts[rt], *opts,
                           self.image, "sleep", "100000", stdout=subprocess.PIPE).strip()
               for rt in self.base}
        try:
            pids = {rt: self.monitor_pid(rt, cid) for rt, cid in ids.items()}
            time.sleep(3)  # past the first probe and the start-up
            n0 = {rt: self.health_probes_started(rt, ids[rt]) for rt in self.base}
            c0 = {rt: proc_cpu(pid) for rt, pid in pids.items()}
            t0 = time.monotonic()
            time.sleep(seconds)
            c1 = {rt: proc_cpu(pid) for rt, pid in pids.items()}
            dt = time.monotonic() - t0
            n1 = {rt: self.health_probes_started(rt, ids[rt]) for rt in self.base}
            cmd = self.probe_command_cpu()
            res = {}
            for rt in self.base:
                own = c1[rt][0] - c0[rt][0]
                withkids = c1[rt][1] - c0[rt][1]
                # The last probe's start time moved by the window, one probe a second.
                probes = round(n1[rt] - n0[rt]) if n1[rt] and n0[rt] else 0
                setup = max(0.0, withkids - probes * cmd)
                # % of one core, the same whether over the window or extrapolated to an hour.
                res[rt] = {"own": own / dt * 100, "all": withkids / dt * 100,
                           "setup": setup / dt * 100, "cmd_ms": cmd * 1000,
                           "own_hour": own / dt * 3600, "probes": self.health_log_count(rt, ids[rt]),
                           "probes_in_window": probes, "window": dt}
            return res
        finally:
            for rt in self.base:
                self.remove_all(rt)

    def monitor_pid(self, rt, cid):
        if rt == "berth":
            with open(f"{self.run_tmp}/berth/containers/{cid}/monitor.json") as f:
                return json.load(f)["pid"]
        return int(self.ok(rt, "inspect", "--format", "{{.State.ConmonPid}}", cid,
                           stdout=subprocess.PIPE).strip())

    def health_probes_started(self, rt, cid):
        """Seconds since the epoch of the last logged probe's start (0 when none)."""
        out = self.ok(rt, "inspect", cid, stdout=subprocess.PIPE)
        st = json.loads(out)[0].get("State", {})
        log = (st.get("Health") or st.get("Healthcheck") or {}).get("Log") or []
        if not log:
            return 0
        t = log[-1].get("Start", "")
        try:
            day, frac = t.rstrip("Z").split(".") if "." in t else (t.rstrip("Z"), "0")
            base = calendar.timegm(time.strptime(day[:19], "%Y-%m-%dT%H:%M:%S"))
            return base + float("0." + "".join(c for c in frac if c.isdigit()))
        except ValueError:
            return 0

    def probe_command_cpu(self, n=200):
        """CPU seconds of the probe's command alone (busybox `sh -c true`, its exec
        included), spawned from here N times without a fork of this process."""
        sh = os.path.join(self.work, "rootfs", "bin", "busybox")
        c0 = children_cpu()
        for _ in range(n):
            pid = os.posix_spawn(sh, [sh, "sh", "-c", "true"], {})
            os.waitpid(pid, 0)
        return (children_cpu() - c0) / n

    def health_log_count(self, rt, cid):
        """Whether the probes ran at all: the status and the number of logged probes."""
        out = self.ok(rt, "inspect", cid, stdout=subprocess.PIPE)
        st = json.loads(out)[0].get("State", {})
        h = st.get("Health") or st.get("Healthcheck") or {}
        return f"{h.get('Status', 'none')}, {len(h.get('Log') or [])} probes logged"

    def network(self):
        """run --rm true on the default bridge, with --network none, and podman on its
        default network, inside a private network namespace this process enters for good
        (it is the last section): bridges, veths and packet rules die with it."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            raise SystemExit(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        variants = {"berth-default": ("berth", []), "berth-none": ("berth", ["--network", "none"]),
                    "podman-default": ("podman", [])}
        out = {k: [] for k in variants}
        keys = list(variants)
        # Both on their default network, no --network given: berth's is the bridge (root)
        # as Docker's. Each lone run makes the bridge and its rules and removes them when
        # it ends (no berth link or table is left on a host without running containers).
        # One warm-up each.
        for k in keys:
            rt, net = variants[k]
            self.timed(rt, "run", "--rm", *net, *self.run_opts[rt], self.image, "true")
            reap_all(5)
        for i in range(self.runs):
            order = keys[i % len(keys):] + keys[:i % len(keys)]
            for k in order:
                rt, net = variants[k]
                dt, _ = self.timed(rt, "run", "--rm", *net, *self.run_opts[rt], self.image, "true")
                reap_all(5)
                out[k].append(dt)
        return out

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

- `ps -a` costs berth about 0.1 ms of CPU per container: its `config.json` (the OCI spec
  is in a `spec.json` of its own, read only by the commands that need it), its monitor's
  record and a look at /proc.
- Where berth's `run --rm` waits (scheduler switches of its processes, 2026-12-06): this
  machine's root filesystem is ext4 without a journal, mounted with `discard`, so every
  directory removed waits for a discard of its block by the disk. A container frees
  eight: its record's, `overlay/`, `diff`, `merged`, `work` and the three the kernel
  makes in a volatile overlay's work directory (`work`, `incompat`, `incompat/volatile`).
  The umount of the overlay and the end of the container's mount namespace each wait
  for an expedited RCU grace period. Regular files written and removed within a `run`
  never get blocks (delayed allocation), so they free none. berth's own CPU in a run is
  mostly the kernel's: the namespaces, mounts and cgroup directories of the tables above.
- `logs` decodes berth's (and Docker's) own json-file layout directly, without serde, and
  parses the times only for `--since`/`--until`/`-t`: about 25 ms of CPU for the 100k
  lines (110 ms before 2026-12-06); its wall time swings with the machine's load.
- `stats --no-stream` answers from one reading in both (Docker's CLI waits a second for a
  second sample): podman 4.3 prints the CPU % averaged since the container started; berth
  the CPU % since the last `stats` sampled the container (a small record it keeps in the
  runroot) when that is 0.1-60 s old, otherwise the same lifetime average. Streaming
  `stats` keeps Docker's two samples a second apart.
- `system df` reads each image's layer sizes from the records written at unpack, and
  lists the containers once without their OCI specs; the containers' sizes are their
  upper directories, walked at each call as Docker does.
- podman's healthcheck probes run from systemd timers (`podman healthcheck run`), so
  without systemd as PID 1, as here, they never run: conmon's row is an idle conmon. berth's
  monitor runs the probes itself, each an `exec` into the container, its own process (the
  monitor's child: the second and third healthcheck rows), prepared once per container
  start (config, process, seccomp filter, the init's pidfd, the v1 `tasks` files and the
  freezer's state kept open) so that a probe costs the monitor one clone, straight into
  the container's cgroup2 directory and pid namespace (the monitor enters the latter for
  that clone and comes back), the handshake with the child, a look at what the probe
  left running, and one small write to the runroot (state.json on the disk only when the
  status changes). Of the rest, in the child, the most is the kernel's: copying and
  tearing down the monitor's address space around the exec, faulting in the code the
  child runs, and compiling the container's seccomp filter.
- The monitor is a re-exec of the static berth binary. Every page fault on the binary
  maps the 16 pages around it (the kernel's fault-around), so a process that ran parsing,
  the spec and the runtime has most of the 6 MB text resident; the monitor unmaps the
  binary's clean read-only pages when it starts waiting (they stay in the page cache) and
  keeps what its loop touches. conmon's figure includes the shared pages of its libraries.
"""


def proc_cpu(pid):
    """(own, own + reaped children) CPU seconds of a process: its own from schedstat (ns,
    every thread), its children's from cutime+cstime (clock ticks)."""
    own = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                own += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cut, cst = (int(x) for x in fields[13:15])
    return own / 1e9, own / 1e9 + (cut + cst) / tick


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ms(x):
    return f"{x * 1000:.1f} ms"


SECTIONS = ["run-rm", "rss", "run-d", "create", "ps", "logs", "exec", "stats", "df", "health",
            "net"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True, help="the berth binary (the people face)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip", default="", help=f"comma-separated sections to skip: {','.join(SECTIONS)}")
    ap.add_argument("--only", default="", help="comma-separated sections to run (default: all)")
    ap.add_argument("--health-seconds", type=int, default=180)
    a = ap.parse_args()
    if a.quick:
        a.runs = 6
    only = [x for x in a.only.split(",") if x] or SECTIONS
    skip = [x for x in a.skip.split(",") if x]
    for x in only + skip:
        if x not in SECTIONS:
            raise SystemExit(f"people bench: unknown section {x!r} (sections: {', '.join(SECTIONS)})")
    want = [x for x in SECTIONS if x in only and x not in skip]
    if not shutil.which("podman"):
        raise SystemExit("people bench: podman is not installed (apt-get install podman)")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    load0 = os.getloadavg()[0]
    uptime0 = subprocess.run(["uptime"], stdout=subprocess.PIPE).stdout.decode().strip()
    work = tempfile.mkdtemp(prefix="berth-people-bench-", dir="/var/tmp")
    b = People(a.berth, work, a.runs)
    runners = {
        "run-rm": b.run_rm, "rss": b.peak_rss, "run-d": b.run_d, "create": b.create_start_rm,
        "ps": b.ps_a, "logs": b.logs, "exec": b.exec_, "stats": b.stats, "df": b.system_df,
        "health": lambda: b.health(a.health_seconds), "net": b.network,
    }
    got, failed = {}, {}
    try:
        for name in want:
            t0 = time.monotonic()
            # One section failing (a peer refusing a flag, say) is reported in the table and
            # cleaned up after; the others still run.
            try:
                got[name] = runners[name]()
            except (SystemExit, subprocess.CalledProcessError, OSError, ValueError, KeyError) as e:
                failed[name] = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                print(f"people bench: section {name} failed: {failed[name]}", file=sys.stderr)
                for rt in b.base:
                    try:
                        b.remove_all(rt)
                    except SystemExit:
                        pass
            print(f"people bench: {name} {time.monotonic() - t0:.0f} s", file=sys.stderr)
    finally:
        b.close()
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]
    uptime1 = subprocess.run(["uptime"], stdout=subprocess.PIPE).stdout.decode().strip()

    med = statistics.median
    rows = []

    def row(name, f, x, target=None):
        ratio = x["berth"] / x["podman"] if x["podman"] else float("nan")
        t = "" if target is None else f"≤ {target}×: {'met' if ratio <= target else 'not met'}"
        rows.append(f"| {name} | {f(x['berth'])} | {f(x['podman'])} | {ratio:.3f}× | {t} |")

    kib = lambda x: f"{x / 1024:.1f} MiB"  # noqa: E731
    if "run-rm" in got:
        rr = got["run-rm"]
        row("`run --rm --network none IMG true`", ms, {k: med(v[0] for v in rr[k]) for k in rr}, 0.05)
        row("CPU of all processes per `run --rm`", ms, {k: med(v[2] for v in rr[k]) for k in rr}, 0.1)
    if "run-d" in got:
        row("`run -d IMG sleep` until it returns", ms, {k: med(v) for k, v in got["run-d"].items()}, 0.1)
    if "create" in got:
        row("`create` + `start` + `rm -f` (podman: `rm -f -t 0`)", ms,
            {k: med(v) for k, v in got["create"].items()})
    if "ps" in got:
        for n, r in got["ps"].items():
            row(f"`ps -a` with {n} containers", ms, {k: med(v) for k, v in r.items()},
                0.05 if n == 100 else None)
    if "logs" in got:
        row("`logs` of 100k lines", ms, {k: med(v) for k, v in got["logs"].items()}, 0.2)
    if "exec" in got:
        ex, mon = got["exec"]
        row("`exec CTR true`", ms, {k: med(v) for k, v in ex.items()}, 0.1)
    if "stats" in got:
        row("`stats --no-stream` with 20 running containers", ms,
            {k: med(v[0] for v in r) for k, r in got["stats"].items()}, 0.2)
        row("CPU of `stats --no-stream` with 20 running containers", ms,
            {k: med(v[1] for v in r) for k, r in got["stats"].items()})
    if "df" in got:
        row("`system df` with 100 images and 100 containers", ms,
            {k: med(v) for k, v in got["df"].items()}, 0.2)
    if "rss" in got:
        row("peak RSS of the CLI (`run --rm`, with what it waited for)", kib,
            {k: med(v) for k, v in got["rss"].items()}, 0.2)
    if "exec" in got:
        row("RSS of the monitor vs conmon (one running container)", kib, mon, 1.0)
    if "health" in got:
        h = got["health"]
        pct = lambda x: f"{x:.3f}% of a core"  # noqa: E731
        for key, what, target in (
                ("own", "its own CPU, schedstat", 0.1),
                ("setup", "with the probes' setup: clone, setns, cgroups, exec; "
                          "the probe command's own CPU taken out", None),
                ("all", "with the probes it reaped whole, their command included", None)):
            x = {rt: h[rt][key] for rt in h}
            # An idle conmon can read 0 ticks over the window: no ratio then.
            ratio = f"{x['berth'] / x['podman']:.2f}×" if x["podman"] else "–"
            t = "" if target is None else \
                f"< {target}% of a core: {'met' if x['berth'] < target else 'not met'}"
            rows.append(f"| monitor vs conmon CPU, 1 s healthcheck ({what}) | {pct(x['berth'])} "
                        f"| {pct(x['podman'])} | {ratio} | {t} |")
    if "net" in got:
        n = {k: med(v) for k, v in got["net"].items()}
        d = n["berth-default"] - n["berth-none"]
        rows.append(f"| `run --rm IMG true` on the default network, the bridge (a lone container: the bridge and its rules made and removed each run) vs `--network none` (berth both) | "
                    f"{ms(n['berth-default'])} | {ms(n['berth-none'])} | {d * 1000:+.1f} ms | "
                    f"≤ +3 ms: {'met' if d <= 0.003 else 'not met'} |")
        row("`run --rm IMG true` on the default network (berth: the bridge; podman: netavark's bridge)", ms,
            {"berth": n["berth-default"], "podman": n["podman-default"]}, 0.05)
    for name, why in failed.items():
        rows.append(f"| section `{name}` failed: {why} | | | | |")

    health_note = ""
    if "health" in got:
        h = got["health"]
        health_note = (f"Probe state at the end of the window: berth {h['berth']['probes']} "
                       f"({h['berth']['probes_in_window']} probes in the window); "
                       f"podman {h['podman']['probes']} (podman 4.3 runs its probes from systemd "
                       "timers, so without systemd as PID 1 they may not run at all). The probe "
                       f"command alone (busybox `sh -c true`, exec included) costs "
                       f"{h['berth']['cmd_ms']:.2f} ms of CPU here.")
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
`stats --no-stream` lists 20 running `sleep` containers; `system df` counts 100 images (each
a distinct one-file layer, `import`ed) and 100 created containers (medians of
{max(5, a.runs // 2)}). The healthcheck rows run one container each with `--health-cmd true
--health-interval 1s` and read the monitor's (conmon's) own CPU time in nanoseconds
(/proc/PID/task/*/schedstat) over {a.health_seconds} s, as % of one core (the same figure
per hour: 0.1% is 3.6 s of CPU an hour). The probes are processes of their own (the
monitor's children), not in that figure: "with the probes" adds the CPU of the children it
reaped (cutime+cstime), each probe whole; "with the probes' setup" takes out of that the
probe command's own CPU (measured alone, exec included, times the probes in the window),
leaving what starting each probe costs. {health_note}
The last rows run inside a private network namespace (`unshare(CLONE_NEWNET)`, loopback
up, as tools/bench/network.sh): `run --rm IMG true` without `--network` (berth's default
network is the bridge, as Docker's), berth's with `--network none`, and podman's on its
default network (netavark, iptables), interleaved,
after one warm-up each; medians of {a.runs}.
Load average {load0:.1f} at the start, {load1:.1f} at the end ({os.cpu_count()} CPUs): on a
shared machine wall times stretch with the load, the CPU row and the ratios (each pair run
back to back) less so. `uptime` at the start: `{uptime0}`; at the end: `{uptime1}`.

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
