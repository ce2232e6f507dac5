//! The people face's test helpers, shared by `tests/people_*.rs`: a test's world (its own
//! `--root`/`--runroot` and a busybox root filesystem), commands run with a deadline, the
//! one-error-line check, a busybox image imported into the store, and the leak audit
//! (processes, cgroups, mounts, runtime state, records) every test ends with.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{run_with_timeout, Out, APPLETS};

static N: AtomicUsize = AtomicUsize::new(0);

pub struct World {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub rootfs: PathBuf,
    /// How long one berth command may take (`b`).
    deadline: Duration,
    /// How long `until` waits, and how often it looks.
    patience: (Duration, Duration),
}

impl World {
    pub fn new(name: &str) -> World {
        super::private_netns();
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-pc-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "dev", "sys"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("/bin/busybox");
        for a in APPLETS.iter().chain(["trap", "nproc"].iter()) {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nweb:x:33:34:web:/var/www:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nwww:x:34:\nextra:x:50:web\nnogroup:x:65534:\n",
        )
        .unwrap();
        World {
            root: dir.join("root"),
            runroot: dir.join("run"),
            rootfs,
            dir,
            deadline: Duration::from_secs(60),
            patience: (Duration::from_secs(20), Duration::from_millis(20)),
        }
    }

    /// A longer deadline for each berth command, for tests whose commands pull, build or
    /// copy much on a loaded machine.
    pub fn deadline(mut self, d: Duration) -> World {
        self.deadline = d;
        self
    }

    /// How long `until` waits (`limit`) and how often it looks (`every`): a slower poll
    /// for conditions that are themselves a berth command (which loads the machine).
    pub fn patience(mut self, limit: Duration, every: Duration) -> World {
        self.patience = (limit, every);
        self
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args);
        c
    }

    pub fn b(&self, args: &[&str]) -> Out {
        run_with_timeout(&mut self.cmd(args), self.deadline)
    }

    pub fn rootfs(&self) -> &str {
        self.rootfs.to_str().unwrap()
    }

    /// `run [flags] --rootfs ROOTFS cmd...`
    pub fn run(&self, flags: &[&str], cmd: &[&str]) -> Out {
        let mut a = vec!["run"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&["--rootfs", self.rootfs()]);
        a.extend_from_slice(cmd);
        self.b(&a)
    }

    /// `run -d [flags] --rootfs ROOTFS cmd...`: the full id.
    pub fn run_d(&self, flags: &[&str], cmd: &[&str]) -> String {
        let mut a = flags.to_vec();
        a.extend_from_slice(&["--rootfs", self.rootfs()]);
        a.extend_from_slice(cmd);
        self.detach(&a)
    }

    /// `run -d ARGS...` (an image, or `--rootfs`, among them): the full id.
    pub fn detach(&self, args: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        let out = self.b(&a);
        out.ok();
        let id = out.stdout.trim().to_string();
        assert_eq!(id.len(), 64, "run -d prints the full id: {id:?}");
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
        id
    }

    pub fn inspect(&self, q: &str) -> serde_json::Value {
        let out = self.b(&["inspect", q]);
        out.ok();
        out.json()[0].clone()
    }

    pub fn status(&self, q: &str) -> String {
        self.inspect(q)["State"]["Status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `ps -a` as `NAME STATUS` lines, for [`line_of`].
    pub fn names_and_statuses(&self) -> String {
        self.b(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
            .ok()
            .stdout
            .clone()
    }

    /// How many clients (attach, logs -f, wait...) are connected to container `id`'s
    /// monitor: its sockets that /proc/net/unix lists as connected (state 03) under the
    /// name of its listening socket (accepted ends carry the listener's name; the
    /// monitor's other sockets are unnamed).
    pub fn clients(&self, id: &str) -> usize {
        let mon = self.monitor_pid(id);
        let mine: Vec<String> = std::fs::read_dir(format!("/proc/{mon}/fd"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter_map(|t| {
                        let t = t.to_string_lossy().into_owned();
                        Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let table = std::fs::read_to_string("/proc/net/unix").unwrap();
        // (state, name) of each of the monitor's named sockets.
        let named: Vec<(String, String)> = table
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 8 && mine.iter().any(|i| i == f[6]))
                    .then(|| (f[5].to_string(), f[7].to_string()))
            })
            .collect();
        let Some((_, listener)) = named.iter().find(|(st, _)| st == "01") else {
            return 0;
        };
        named
            .iter()
            .filter(|(st, name)| st == "03" && name == listener)
            .count()
    }

    pub fn monitor_pid(&self, id: &str) -> i32 {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                self.runroot
                    .join("containers")
                    .join(id)
                    .join("monitor.json"),
            )
            .unwrap(),
        )
        .unwrap();
        m["pid"].as_i64().unwrap() as i32
    }

    /// Waits (bounded) until `f` holds.
    pub fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let (limit, every) = self.patience;
        let deadline = Instant::now() + limit;
        while !f() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(every);
        }
    }

    /// Removes every container, then checks nothing of them is left anywhere.
    pub fn finish(self) {
        let ids = self.remove_containers(&["rm", "-f"]);
        self.audit(&ids);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// `finish` for tests that make volumes: the containers go with their anonymous
    /// volumes (`rm -f -v`), then every volume, and no volume may be left in the store.
    pub fn finish_with_volumes(self) {
        let ids = self.remove_containers(&["rm", "-f", "-v"]);
        let vols = self.volumes();
        if !vols.is_empty() {
            let mut a = vec!["volume", "rm"];
            a.extend(vols.iter().map(String::as_str));
            self.b(&a).ok();
        }
        let left: Vec<String> = entries(&self.root.join("volumes"))
            .into_iter()
            .filter(|n| n != ".lock")
            .collect();
        assert!(left.is_empty(), "volumes left behind: {left:?}");
        self.audit(&ids);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Every container removed with `rm` (`-f`, maybe `-v`); their full ids.
    fn remove_containers(&self, rm: &[&str]) -> Vec<String> {
        let ids = self.all_ids();
        if !ids.is_empty() {
            let mut a = rm.to_vec();
            a.extend(ids.iter().map(String::as_str));
            self.b(&a).ok();
        }
        ids
    }

    /// The names `volume ls -q` lists.
    pub fn volumes(&self) -> Vec<String> {
        let out = self.b(&["volume", "ls", "-q"]);
        out.ok();
        out.stdout.lines().map(String::from).collect()
    }

    pub fn all_ids(&self) -> Vec<String> {
        let out = self.b(&["ps", "-a", "-q", "--no-trunc"]);
        out.ok();
        out.stdout.lines().map(String::from).collect()
    }

    pub fn audit(&self, ids: &[String]) {
        audit(&self.dir, &self.root, &self.runroot, ids);
    }

    /// The world's busybox root filesystem imported as image `name` (`berth import` of a
    /// tar of it): for tests and benches that want `run IMAGE` without a registry.
    pub fn busybox_image(&self, name: &str) -> String {
        let tar = self
            .dir
            .join(format!("{}.tar", name.replace(['/', ':'], "_")));
        let st = Command::new("tar")
            .arg("-C")
            .arg(&self.rootfs)
            .args(["-cf", tar.to_str().unwrap(), "."])
            .status()
            .unwrap();
        assert!(st.success(), "tar of the busybox rootfs");
        let out = self.b(&["import", tar.to_str().unwrap(), name]);
        out.ok();
        let _ = std::fs::remove_file(&tar);
        out.stdout.trim().to_string()
    }
}

/// A file of container `id`'s cgroup in v1 hierarchy `ctrl` (berth's `berth/ID`), trimmed.
pub fn cgroup_v1(id: &str, ctrl: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/berth/{id}/{file}"))
        .unwrap_or_else(|e| panic!("{ctrl}/{file} of {id}: {e}"))
        .trim()
        .to_string()
}

/// How many sockets a process holds (the monitor: its listener plus one per client).
pub fn sockets(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

pub fn code_msg(out: &Out, code: i32, phrase: &str) {
    assert_eq!(
        out.code, code,
        "expected exit {code}; stdout: {} stderr: {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains(phrase),
        "expected {phrase:?} in stderr: {}",
        out.stderr
    );
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one error line: {}",
        out.stderr
    );
}

/// Runs with a deadline (180 s); stdout and stderr to files (a container may inherit
/// them), stdin from a file or /dev/null.
pub fn run(cmd: &mut Command, stdin: Option<&Path>) -> Out {
    let n = N.fetch_add(1, Ordering::SeqCst);
    let base = std::env::temp_dir().join(format!("berth-pp-out-{}-{n}", std::process::id()));
    let (po, pe) = (base.with_extension("out"), base.with_extension("err"));
    cmd.stdout(std::fs::File::create(&po).unwrap())
        .stderr(std::fs::File::create(&pe).unwrap());
    match stdin {
        Some(p) => cmd.stdin(std::fs::File::open(p).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    let mut child = cmd.spawn().expect("spawn berth");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let read = |p: &Path| {
        let mut s = String::new();
        let _ = std::fs::File::open(p).and_then(|mut f| f.read_to_string(&mut s));
        let _ = std::fs::remove_file(p);
        s
    };
    Out {
        code,
        stdout: read(&po),
        stderr: read(&pe),
    }
}

/// The exit code, and exactly one line starting `Error`/`berth:` that contains `phrase`
/// (other lines, a pull's progress say, may come before it).
pub fn one_error_line(out: &Out, code: i32, phrase: &str) {
    assert_eq!(
        out.code, code,
        "expected exit {code}: stdout {} stderr {}",
        out.stdout, out.stderr
    );
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Error") || l.starts_with("berth:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", out.stderr);
    assert!(
        errors[0].contains(phrase),
        "expected {phrase:?} in {:?}",
        errors[0]
    );
}

/// A free loopback port (nothing listens there once the listener is dropped), never one
/// handed out before in this process: the kernel may give a port it just freed to the next
/// bind, so two calls (one test's pair of ports, or two tests running in parallel) could
/// otherwise get the same port before anyone binds it for good.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Names left in a directory (none when it does not exist).
pub fn entries(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing of any container left under `root`/`runroot` (records, names, runtime state),
/// no mount and no process (a monitor, or anything rooted or working) under `dir`, and no
/// cgroup of `ids`.
pub fn audit(dir: &Path, root: &Path, runroot: &Path, ids: &[String]) {
    for d in [
        root.join("containers"),
        root.join("names"),
        runroot.join("containers"),
        runroot.join("runtime"),
    ] {
        let left = entries(&d);
        assert!(left.is_empty(), "left behind in {}: {left:?}", d.display());
    }
    for ctrl in std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(|e| e.ok())
    {
        for id in ids {
            let d = ctrl.path().join("berth").join(id);
            assert!(!d.exists(), "cgroup left behind: {}", d.display());
        }
    }
    // A process killed just before (a test's SIGKILL, a stop's) finishes exiting
    // asynchronously: wait for it to go, bounded; a leak stays.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = left_processes(dir);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", left.join("; "));
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir_s = dir.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&dir_s), "mounts left behind under {dir_s}");
}

/// Processes rooted or working under `dir`, and monitors of its roots.
fn left_processes(dir: &Path) -> Vec<String> {
    let dir_s = dir.to_string_lossy().into_owned();
    let mut left = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().parse::<i32>().is_err() {
            continue;
        }
        for link in ["root", "cwd"] {
            if let Ok(t) = std::fs::read_link(e.path().join(link)) {
                if t.starts_with(dir) {
                    left.push(format!(
                        "process {} left behind ({link} {})",
                        e.file_name().to_string_lossy(),
                        t.display()
                    ));
                }
            }
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("monitor") && cmdline.contains(&dir_s) {
            left.push(format!("monitor left behind: {cmdline}"));
        }
    }
    left
}

/// Every container of a `--root`/`--runroot` pair removed with `rm -f`; their full ids.
pub fn remove_all(cmd: impl Fn(&[&str]) -> Out) -> Vec<String> {
    let out = cmd(&["ps", "-a", "-q", "--no-trunc"]);
    out.ok();
    let ids: Vec<String> = out.stdout.lines().map(String::from).collect();
    if !ids.is_empty() {
        let mut a = vec!["rm", "-f"];
        a.extend(ids.iter().map(String::as_str));
        cmd(&a).ok();
    }
    ids
}

/// A user made for the test, with /etc/subuid and /etc/subgid ranges (useradd's), named
/// `PREFIX<pid>`; removed when dropped.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    pub fn create(prefix: &str) -> TestUser {
        let name = format!("{prefix}{}", std::process::id());
        // Parallel tests (and other test binaries) add users at the same time: useradd
        // refuses while another holds /etc/passwd's lock, so that is retried.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new("useradd")
                .args(["-M", "-s", "/bin/false", &name])
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                err.contains("lock") && Instant::now() < deadline,
                "useradd: {err}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let u = nix::unistd::User::from_name(&name).unwrap().unwrap();
        TestUser {
            name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }
    }
}

impl TestUser {
    /// Gives `dir` (the test's directory: its roots and home) to the user.
    pub fn own(&self, dir: &Path) {
        let st = Command::new("chown")
            .args([
                "-R",
                &format!("{}:{}", self.uid, self.gid),
                dir.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Runs `berth --root ROOT --runroot RUNROOT ARGS` as the user, with `home` as HOME
    /// and `home/xdg` as XDG_RUNTIME_DIR, and nothing else of the caller's environment.
    pub fn berth(
        &self,
        berth: &Path,
        (root, runroot, home): (&Path, &Path, &Path),
        args: &[&str],
        timeout: Duration,
    ) -> Out {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--init-groups",
        ])
        .arg(berth)
        .arg("--root")
        .arg(root)
        .arg("--runroot")
        .arg(runroot)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("xdg"));
        run_with_timeout(&mut c, timeout)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // As useradd, userdel fails while another holds the lock (bounded retry).
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(out) = Command::new("userdel").arg(&self.name).output() {
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() || !err.contains("lock") || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The line of container `name` in a `NAME ...` listing ([`World::names_and_statuses`]).
pub fn line_of<'a>(list: &'a str, name: &str) -> &'a str {
    list.lines()
        .find(|l| l.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not listed: {list}"))
}
