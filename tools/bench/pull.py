#!/usr/bin/env python3
"""make bench, pulls: berth against podman and against the floor (curl | gzip -dc | tar -x,
one pipe per layer in parallel), from a docker-registry on 127.0.0.1 this script starts on
a free port of its own, with images it builds offline from this machine's /usr.

Run by tools/bench/bench.sh after people.py (which cuts BENCHMARKS.md at its own section):
this script replaces the section from PULL_MARK to the end of the file. Every figure is a
median of interleaved runs. A benchmark, never a test: nothing here asserts a figure.

Images (pushed with skopeo, digests kept):
  bench/multi:1   4 gzip layers of /usr files, about 50 MB of blobs
  bench/big:1     1 gzip layer of about 200 MB (random bytes and /usr files): the peak
                  RSS of a pull must not grow with the layer
"""
import argparse
import hashlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

PULL_MARK = "## Pulls: berth, podman and the floor"
MiB = 1024 * 1024


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def usr_files(roots, budget, skip):
    """Regular files under ROOTS (sorted walk) until BUDGET bytes, none of SKIP (paths
    already in another layer): a deterministic slice of this machine's /usr."""
    out, total = [], 0
    for root in roots:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(d, f)
                if p in skip or os.path.islink(p) or not os.path.isfile(p):
                    continue
                try:
                    n = os.path.getsize(p)
                except OSError:
                    continue
                if n > 32 * MiB or not os.access(p, os.R_OK):
                    continue
                out.append(p)
                total += n
                if total >= budget:
                    return out
    return out


class Layout:
    """An OCI image layout written by hand: tar, gzip -n, sha256."""

    def __init__(self, path):
        self.path = path
        os.makedirs(f"{path}/blobs/sha256")
        with open(f"{path}/oci-layout", "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        self.index = {"schemaVersion": 2, "manifests": []}

    def blob(self, src):
        """Moves SRC into the layout; returns its descriptor fields (digest, size)."""
        h = sha256_file(src)
        size = os.path.getsize(src)
        os.rename(src, f"{self.path}/blobs/sha256/{h}")
        return f"sha256:{h}", size

    def blob_bytes(self, data):
        tmp = f"{self.path}/tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        return self.blob(tmp)

    def layer(self, filelist, extra_dir=None):
        """A gzip layer of the files in FILELIST (absolute paths, stored as relative) and
        of EXTRA_DIR's content; returns (descriptor, diff id)."""
        lst = f"{self.path}/list"
        with open(lst, "w") as f:
            f.write("\0".join(p.lstrip("/") for p in filelist))
        tar = f"{self.path}/layer.tar"
        cmd = ["tar", "--numeric-owner", "-cf", tar, "-C", "/", "--no-recursion", "--null",
               "-T", lst]
        if extra_dir:
            cmd += ["-C", extra_dir, "--recursion", "."]
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        diff = "sha256:" + sha256_file(tar)
        subprocess.run(["gzip", "-n", "-6", tar], check=True)
        digest, size = self.blob(tar + ".gz")
        os.unlink(lst)
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest, "size": size}, diff

    def image(self, tag, layers):
        config = {"architecture": "amd64", "os": "linux",
                  "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
                  "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
                  "history": [{"created_by": f"bench layer {i}"} for i in range(len(layers))]}
        cd, cs = self.blob_bytes(json.dumps(config).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": cd, "size": cs},
               "layers": [l for l, _ in layers]}
        md, ms = self.blob_bytes(json.dumps(man).encode())
        self.index["manifests"].append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": ms, "annotations": {"org.opencontainers.image.ref.name": tag}})
        with open(f"{self.path}/index.json", "w") as f:
            json.dump(self.index, f)
        return man


class Registry:
    """Debian's docker-registry on a free loopback port, plain HTTP, storage in WORK; with
    PORT, the one WORK already has (its config and blobs kept) served again on its port."""

    def __init__(self, work, port=None):
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        d = f"{work}/registry"
        if port is None:
            os.makedirs(f"{d}/data")
            with open(f"{d}/config.yml", "w") as f:
                f.write(f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                        f"storage:\n  filesystem:\n    rootdirectory: {d}/data\n"
                        f"  delete:\n    enabled: true\nhttp:\n  addr: {self.host}\n")
        self.log = open(f"{d}/registry.log", "ab" if port else "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", f"{d}/config.yml"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        end = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise SystemExit(f"pull bench: docker-registry did not listen on {self.host}")
                time.sleep(0.05)

    def push(self, layout, tag, repo):
        subprocess.run(["skopeo", "copy", "--quiet", "--preserve-digests",
                        "--dest-tls-verify=false", f"oci:{layout}:{tag}",
                        f"docker://{self.host}/{repo}"], check=True)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Pulls:
    def __init__(self, berth, work, runs):
        self.stores(berth, work, runs)
        self.reg = None
        self.sizes = {}
        try:
            self.build_images()
        except BaseException:
            self.close()
            raise

    def stores(self, berth, work, runs):
        """The runtimes' stores in WORK (their run dirs on a tmpfs, mounted unless it is)
        and the registries.conf they read."""
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
        self.env = dict(os.environ, CONTAINERS_REGISTRIES_CONF=f"{work}/registries.conf")

    def serve(self, reg):
        """Pulls from REG, which has the bench images."""
        self.reg = reg
        self.ref = {"multi": f"{reg.host}/bench/multi:1", "big": f"{reg.host}/bench/big:1"}

    def build_images(self):
        t0 = time.monotonic()
        lay = Layout(f"{self.work}/oci")
        # Four layers of /usr, from the bottom: libraries, more libraries, programs, data;
        # each a different slice (the budgets are uncompressed bytes, ~2.7:1 under gzip).
        used = set()
        layers = []
        for roots, budget in ((["/usr/lib/x86_64-linux-gnu"], 45 * MiB),
                              (["/usr/lib/x86_64-linux-gnu", "/usr/lib"], 35 * MiB),
                              (["/usr/bin", "/usr/sbin", "/usr/libexec"], 22 * MiB),
                              (["/usr/share"], 16 * MiB)):
            files = usr_files(roots, budget, used)
            used.update(files)
            layers.append(lay.layer(files))
        self.man_multi = lay.image("multi", layers)
        # One big layer: incompressible bytes (gzip keeps their size) and /usr files.
        rnd = f"{self.work}/random"
        os.makedirs(f"{rnd}/data")
        with open(f"{rnd}/data/random.bin", "wb") as f:
            for _ in range(150):
                f.write(os.urandom(MiB))
        files = usr_files(["/usr/share", "/usr/lib"], 70 * MiB, used)
        self.man_big = lay.image("big", [lay.layer(files, extra_dir=rnd)])
        shutil.rmtree(rnd)
        for name, man in (("multi", self.man_multi), ("big", self.man_big)):
            self.sizes[name] = [l["size"] for l in man["layers"]]
        self.serve(Registry(self.work))
        for name in ("multi", "big"):
            self.reg.push(lay.path, name, f"bench/{name}:1")
        shutil.rmtree(lay.path)
        with open(self.env["CONTAINERS_REGISTRIES_CONF"], "w") as f:
            f.write(f'unqualified-search-registries = []\n\n[[registry]]\n'
                    f'location = "{self.reg.host}"\ninsecure = true\n')
        print(f"pull bench: images built and pushed in {time.monotonic() - t0:.0f} s", file=sys.stderr)

    def cmd(self, rt, *args):
        extra = ["--tls-verify=false"] if rt == "podman" and args[0] == "pull" else []
        return self.base[rt] + [args[0]] + extra + list(args[1:])

    def ok(self, rt, *args, stdout=subprocess.DEVNULL):
        r = subprocess.run(self.cmd(rt, *args), stdout=stdout, stderr=subprocess.PIPE, env=self.env)
        if r.returncode != 0:
            raise SystemExit(f"{rt} {' '.join(args)}: {r.stderr.decode().strip()}")
        return r.stdout.decode() if stdout == subprocess.PIPE else ""

    def timed(self, rt, *args):
        t0 = time.perf_counter()
        r = subprocess.run(self.cmd(rt, *args), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=self.env)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{rt} {' '.join(args)}: exit {r.returncode}: {r.stderr.decode().strip()}")
        return dt

    def remove(self, rt, name):
        """The image and every layer of it gone from RT's store (a cold pull next)."""
        # (Not there yet on the first run: rmi's error is not one.)
        subprocess.run(self.cmd(rt, "rmi", "-f", self.ref[name]), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=self.env)
        left = self.ok(rt, "images", "-a", "-q", stdout=subprocess.PIPE).split()
        if left and name == "multi":
            raise SystemExit(f"{rt}: images left after rmi: {left}")

    def floor(self, name, dest):
        """curl | gzip -dc | tar -x, one pipe per layer, all at once."""
        man = self.man_multi if name == "multi" else self.man_big
        repo = f"http://{self.reg.host}/v2/bench/{name}/blobs"
        procs = []
        for i, l in enumerate(man["layers"]):
            d = f"{dest}/{i}"
            os.makedirs(d)
            procs.append(subprocess.Popen(
                f"curl -sSf {repo}/{l['digest']} | gzip -dc | tar -x -C {d}", shell=True))
        bad = [p.wait() for p in procs]
        if any(bad):
            raise SystemExit(f"floor: a pipe failed: {bad}")

    def cold(self, name="multi", n=None, rts=("berth", "podman", "floor"), cpu=None):
        """{rt: [seconds]} for each of RTS: a pull into an empty store, interleaved (the
        order turns by one each run). With CPU, a dict: {rt: [user+sys seconds]} too."""
        out = {rt: [] for rt in rts}
        dest = f"{self.work}/floor"
        for i in range(n or self.runs):
            k = i % len(rts)
            for rt in rts[k:] + rts[:k]:
                if rt == "floor":
                    shutil.rmtree(dest, ignore_errors=True)
                    os.makedirs(dest)
                else:
                    self.remove(rt, name)
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                if rt == "floor":
                    t0 = time.perf_counter()
                    self.floor(name, dest)
                    out[rt].append(time.perf_counter() - t0)
                    shutil.rmtree(dest)
                else:
                    out[rt].append(self.timed(rt, "pull", self.ref[name]))
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                if cpu is not None:
                    cpu.setdefault(rt, []).append(
                        r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
        return out

    def peak_rss(self, name, n=3):
        """Peak RSS (KiB) of a cold pull, by time(1)'s %M (see people.py: wait4 from this
        Python process would count Python's own size)."""
        out = {"berth": [], "podman": []}
        for i in range(n):
            for rt in (["berth", "podman"] if i % 2 == 0 else ["podman", "berth"]):
                self.remove(rt, name)
                r = subprocess.run(["/usr/bin/time", "-f", "%M"] + self.cmd(rt, "pull", self.ref[name]),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env)
                if r.returncode != 0:
                    raise SystemExit(f"{rt} pull {name}: {r.stderr.decode().strip()}")
                out[rt].append(int(r.stderr.decode().strip().splitlines()[-1]))
        return out

    def warm(self):
        """A pull of the image already present."""
        for rt in self.base:
            self.ok(rt, "pull", self.ref["multi"])
        out = {"berth": [], "podman": []}
        for i in range(self.runs):
            for rt in (["berth", "podman"] if i % 2 == 0 else ["podman", "berth"]):
                out[rt].append(self.timed(rt, "pull", self.ref["multi"]))
        return out

    def images(self, n=100):
        """`images` with N images (distinct one-file layers, imported)."""
        d = os.path.join(self.work, "img-tars")
        os.makedirs(d)
        names = [f"localhost/bench-img-{i}:1" for i in range(n)]
        for i, name in enumerate(names):
            src = os.path.join(d, f"src{i}")
            os.makedirs(src)
            with open(os.path.join(src, "id"), "w") as f:
                f.write(f"{i}\n")
            tar = os.path.join(d, f"{i}.tar")
            subprocess.run(["tar", "-C", src, "-cf", tar, "."], check=True)
            for rt in self.base:
                self.ok(rt, "import", tar, name)
        for rt in self.base:
            got = len(self.ok(rt, "images", "-q", stdout=subprocess.PIPE).split())
            if got < n:
                raise SystemExit(f"{rt} images: {got} listed, not {n} or more")
        out = {"berth": [], "podman": []}
        for i in range(self.runs):
            for rt in (["berth", "podman"] if i % 2 == 0 else ["podman", "berth"]):
                out[rt].append(self.timed(rt, "images"))
        shutil.rmtree(d)
        return out

    def close(self):
        for rt in self.base:
            try:
                ids = self.ok(rt, "images", "-a", "-q", stdout=subprocess.PIPE).split()
                for i in range(0, len(ids), 50):
                    self.ok(rt, "rmi", "-f", *ids[i:i + 50])
            except SystemExit as e:
                print(f"pull bench: cleanup of {rt}: {e}", file=sys.stderr)
        if self.reg:
            self.reg.close()
        subprocess.run(["umount", "-l", self.run_tmp])


def ms(x):
    return f"{x * 1000:.0f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True, help="the berth binary (the people face)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    # people.py's options (bench.sh hands both the same arguments).
    a, _ = ap.parse_known_args()
    runs = 3 if a.quick else min(a.runs, 7)
    for tool in ("podman", "skopeo", "docker-registry", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"pull bench: {tool} is not installed")
    load0 = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="berth-pull-bench-", dir="/var/tmp")
    b = None
    try:
        b = Pulls(a.berth, work, runs)
        cold = b.cold()
        rss = b.peak_rss("multi")
        rss_big = b.peak_rss("big")
        cold_big = b.cold("big", n=max(3, runs // 2))
        warm = b.warm()
        imgs = b.images()
        sizes = b.sizes
    finally:
        if b:
            b.close()
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]

    med = statistics.median
    rows = []

    def row(what, f, x, y, target, ref="podman"):
        ratio = x / y if y else float("nan")
        t = "" if target is None else f"≤ {target}× {ref}: {'met' if ratio <= target else 'not met'}"
        rows.append(f"| {what} | {f(x)} | {f(y)} ({ref}) | {ratio:.2f}× | {t} |")

    m = {k: med(v) for k, v in cold.items()}
    mb = {k: med(v) for k, v in cold_big.items()}
    multi_mb = sum(sizes["multi"]) / 1e6
    big_mb = sum(sizes["big"]) / 1e6
    row(f"cold pull, {len(sizes['multi'])} gzip layers, {multi_mb:.0f} MB", ms, m["berth"], m["podman"], 0.4)
    row(f"cold pull, {len(sizes['multi'])} gzip layers, {multi_mb:.0f} MB", ms, m["berth"], m["floor"], 1.0, "floor")
    row(f"cold pull, 1 gzip layer, {big_mb:.0f} MB", ms, mb["berth"], mb["podman"], 0.4)
    row(f"cold pull, 1 gzip layer, {big_mb:.0f} MB", ms, mb["berth"], mb["floor"], 1.0, "floor")
    kib = lambda x: f"{x / 1024:.1f} MiB"  # noqa: E731
    for what, r in ((f"{multi_mb:.0f} MB, {len(sizes['multi'])} layers", rss),
                    (f"{big_mb:.0f} MB, 1 layer", rss_big)):
        x = {k: max(v) for k, v in r.items()}
        rows.append(f"| peak RSS of a cold pull ({what}; largest of {len(r['berth'])}) | "
                    f"{kib(x['berth'])} | {kib(x['podman'])} (podman) | "
                    f"{x['berth'] / x['podman']:.2f}× | ≤ 30 MiB: "
                    f"{'met' if x['berth'] <= 30 * 1024 else 'not met'} |")
    w = {k: med(v) for k, v in warm.items()}
    row("pull of an image already present", ms, w["berth"], w["podman"], 0.2)
    i = {k: med(v) for k, v in imgs.items()}
    row("`images` with 100 images", ms, i["berth"], i["podman"], 0.1)

    ver = subprocess.run([shutil.which("podman"), "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
    bver = subprocess.run([a.berth, "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
    layer_list = lambda s: ", ".join(f"{x / 1e6:.1f}" for x in s)  # noqa: E731
    text = f"""{PULL_MARK}

Generated by `make bench` (tools/bench/pull.py) on {time.strftime('%Y-%m-%d')}: {bver}; {ver}
(overlay storage). A docker-registry (Debian's, plain HTTP) on a free port of 127.0.0.1
serves two images built for the run from this machine's /usr and pushed with skopeo:
`multi`, gzip layers of {layer_list(sizes['multi'])} MB, and `big`, one gzip layer of
{layer_list(sizes['big'])} MB (150 MiB of random bytes and /usr files). podman pulls with
`--tls-verify=false` and a registries.conf (`CONTAINERS_REGISTRIES_CONF`) marking the
registry insecure; berth takes plain HTTP from a loopback registry by itself. A cold pull
starts from an empty store (`rmi -f` first, not timed); the floor fetches and unpacks the
same layers with `curl | gzip -dc | tar -x`, one pipe per layer, all at once, and checks
no digest. berth, podman and the floor alternate run by run (medians of {runs}; the big
layer: {max(3, runs // 2)}); the registry's files are in the page cache for all of them.
Peak RSS is time(1)'s `%M` (the largest of the process and what it waited for).
`images` lists 100 images, each a distinct one-file layer `import`ed.
Load average {load0:.1f} at the start, {load1:.1f} at the end ({os.cpu_count()} CPUs).

| measure | berth | podman or floor | ratio | target |
|---|---:|---:|---:|---|
""" + "\n".join(rows) + "\n"
    out = open(a.out).read() if os.path.exists(a.out) else ""
    i = out.find(PULL_MARK)
    if i >= 0:
        out = out[:i]
    out = out.rstrip("\n") + "\n\n" + text if out else text
    with open(a.out, "w") as f:
        f.write(out)
    print(text)
    for k, v in (("cold", cold), ("cold-big", cold_big), ("warm", warm), ("images", imgs),
                 ("rss", rss), ("rss-big", rss_big)):
        print(f"pull bench: {k}: " + "; ".join(
            f"{rt} " + " ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in xs)
            for rt, xs in v.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
