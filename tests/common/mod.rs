//! Integration test harness: bundles in temp dirs, the runtime under test with a private
//! `--root`, and a leak audit after every test. `BERTH_TEST_RUNTIME=/usr/sbin/runc` runs
//! the same tests against runc, to tell a test bug from a runtime bug.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static SUBREAPER: Once = Once::new();
static TESTINIT: Once = Once::new();

pub const APPLETS: &[&str] = &[
    "sh", "true", "false", "cat", "echo", "sleep", "ls", "id", "hostname", "env", "pwd", "mount",
    "ps", "stat", "grep", "touch", "mkdir", "kill", "stty", "tty", "readlink", "head", "wc",
    "umask", "ulimit", "test", "cut", "tr", "uname", "nc", "mknod", "rm", "dd", "unshare",
    "chroot", "ln", "printf", "sysctl", "ip", "ifconfig", "df", "find", "sed",
];

/// The runtime under test: `BERTH_TEST_RUNTIME`, else berth's runc face, `berth-runc` (a
/// link to the built berth, made here when cargo built berth without it).
pub fn runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_TEST_RUNTIME") {
        return PathBuf::from(p);
    }
    let berth = Path::new(env!("CARGO_BIN_EXE_berth"));
    let link = berth.with_file_name("berth-runc");
    if std::fs::read_link(&link).is_err() {
        // Several test binaries, and several threads of one, may race here: each makes its
        // own temporary name (pid and thread alone are not unique: a thread could remove
        // another's), and rename(2) over the link is atomic, so every racer ends with it.
        static LINKS: AtomicUsize = AtomicUsize::new(0);
        let tmp = berth.with_file_name(format!(
            "berth-runc.{}.{}",
            std::process::id(),
            LINKS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&tmp);
        symlink("berth", &tmp).expect("symlink berth-runc");
        std::fs::rename(&tmp, &link).expect("rename berth-runc link");
    }
    link
}

/// berth's people face (the built binary under its own name).
pub fn berth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// Whether the runtime under test is the control (runc or crun), not berth.
pub fn is_runc() -> bool {
    !runtime()
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("berth"))
}

/// Detached inits (create, run -d) are reparented to the nearest subreaper: make it us, and
/// reap them by pid (never waitpid(-1): other tests' children are ours too).
pub fn subreaper() {
    SUBREAPER.call_once(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
}

/// Reaps `pid` when it is a zombie child of this process; whether it did.
pub fn reap_if_our_zombie(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(str::trim);
    let ours =
        ppid == Some(std::process::id().to_string().as_str()) && status.contains("State:\tZ");
    if ours {
        reap(pid);
    }
    ours
}

/// Whether process `pid` has ended: gone, or a zombie its reaper has not got to yet (a
/// monitor killed here is reaped by the machine's pid 1 or a subreaper, in its own time).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the last ')': a command name may hold ") Z" itself.
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

pub fn reap(pid: i32) {
    if pid > 0 {
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
}

/// When `pid` started (clock ticks after boot, /proc/PID/stat's 22nd field); None once no
/// process has that pid (reaped). A zombie keeps its start time until it is reaped.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split(' ')
        .nth(19)?
        .parse()
        .ok()
}

/// A process a test owns: its pid and when it started. pid_max is 32768 on small
/// machines and a test suite forks a lot: once reaped, the pid may name another test's
/// process (a container init, or a berth command it waits for with `Child::try_wait`),
/// which must be neither reaped nor counted as a leak of ours.
#[derive(Clone, Copy, Debug)]
pub struct Tracked {
    pub pid: i32,
    start: Option<u64>,
}

impl Tracked {
    pub fn new(pid: i32) -> Tracked {
        Tracked {
            pid,
            start: start_time(pid),
        }
    }

    /// Whether this process (not another with its pid) still exists, maybe as a zombie.
    pub fn exists(&self) -> bool {
        self.start.is_some() && start_time(self.pid) == self.start
    }

    /// Reaps it if it is our child and has exited; never waits on a reused pid.
    pub fn reap(&self) {
        if self.exists() {
            reap(self.pid);
        }
    }
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success, stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        self
    }
    pub fn fails_with(&self, phrase: &str) -> &Self {
        assert_ne!(
            self.code, 0,
            "expected failure with {phrase:?}, got success; stdout: {}",
            self.stdout
        );
        assert!(
            self.stderr.contains(phrase),
            "expected {phrase:?} in stderr: {}",
            self.stderr
        );
        self
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs a command with a deadline: no test may hang. Output goes to files, not pipes: a
/// detached container init inherits them and would keep a pipe open forever.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Out {
    run_reaping(cmd, timeout, &[])
}

/// As [`run_with_timeout`], reaping `pids` (our children by subreaping) meanwhile: a pid
/// namespace's init cannot finish exiting while a process of its namespace that is our
/// child is an unreaped zombie, so a runtime waiting for it would wait for us (conmon and
/// containerd's shim reap the same way).
pub fn run_reaping(cmd: &mut Command, timeout: Duration, pids: &[Tracked]) -> Out {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let base = std::env::temp_dir().join(format!("berth-it-out-{}-{n}", std::process::id()));
    let (po, pe) = (base.with_extension("out"), base.with_extension("err"));
    cmd.stdout(std::fs::File::create(&po).unwrap())
        .stderr(std::fs::File::create(&pe).unwrap());
    cmd.stdin(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        for p in pids {
            p.reap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {timeout:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
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

/// One test's world: a temp dir with bundles, a private state root, the ids it made.
pub struct Ctx {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub name: String,
    ids: std::cell::RefCell<Vec<String>>,
    pids: std::cell::RefCell<Vec<Tracked>>,
    mounts_before: usize,
}

fn mount_lines_with(s: &str) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(s))
        .count()
}

impl Ctx {
    pub fn new(name: &str) -> Ctx {
        subreaper();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-it-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("state");
        let name = format!("{name}-{}-{n}", std::process::id());
        let mounts_before = mount_lines_with(dir.to_str().unwrap());
        Ctx {
            dir,
            root,
            name,
            ids: Default::default(),
            pids: Default::default(),
            mounts_before,
        }
    }

    /// A unique container id (also used as its cgroup leaf).
    pub fn id(&self, suffix: &str) -> String {
        let id = format!("{}-{suffix}", self.name);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    pub fn cgroup_path(&self, id: &str) -> String {
        format!("/berth-it-{}/{id}", self.name)
    }

    /// A busybox bundle with the runtime's default config, adjusted for tests.
    pub fn bundle(&self, name: &str, args: &[&str]) -> Bundle {
        let b = self.dir.join(name);
        let rootfs = b.join("rootfs");
        // Mountpoints exist up front: root in a user namespace may not own the rootfs.
        for d in ["bin", "etc", "tmp", "proc", "dev", "sys", "vol"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("/bin/busybox (busybox-static)");
        for a in APPLETS {
            let _ = symlink("busybox", rootfs.join("bin").join(a));
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        std::fs::copy(testinit(), rootfs.join("bin/testinit")).unwrap();
        let mut config = default_config();
        config["process"]["args"] = json!(args);
        Bundle { dir: b, config }
    }

    /// The runtime with this test's root.
    pub fn rt(&self, args: &[&str]) -> Out {
        self.rt_env(args, &[])
    }

    pub fn rt_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = Command::new(runtime());
        c.arg("--root").arg(&self.root).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let pids = self.pids.borrow().clone();
        run_reaping(&mut c, Duration::from_secs(30), &pids)
    }

    /// `create` with a terminal: the pty master goes to a listener at `<dir>/<id>.sock`,
    /// whose thread returns what the container printed up to `until`.
    pub fn create_with_console(
        &self,
        b: &Bundle,
        id: &str,
        until: &'static str,
    ) -> (Out, std::thread::JoinHandle<String>) {
        let sock = self.dir.join(format!("{id}.sock"));
        let accept = console_socket(&sock, until, None);
        let out = self.rt(&[
            "create",
            "--bundle",
            b.path(),
            "--console-socket",
            sock.to_str().unwrap(),
            id,
        ]);
        (out, accept)
    }

    pub fn state(&self, id: &str) -> Value {
        self.rt(&["state", id]).ok().json()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    /// Creates a container from the bundle and remembers its init for reaping.
    pub fn create(&self, b: &Bundle, id: &str) -> i32 {
        b.write();
        self.rt(&["create", "--bundle", b.dir.to_str().unwrap(), id])
            .ok();
        let pid = self.state(id)["pid"].as_i64().unwrap() as i32;
        self.track_pid(pid);
        pid
    }

    pub fn run(&self, b: &Bundle, id: &str) -> Out {
        b.write();
        self.rt(&["run", "--bundle", b.dir.to_str().unwrap(), id])
    }

    pub fn track_pid(&self, pid: i32) {
        // A pid of 0 would make the cleanup's `kill -9` signal our own process group.
        assert!(pid > 0, "tracking pid {pid}");
        self.pids.borrow_mut().push(Tracked::new(pid));
    }

    /// Waits until the container's status is `want` (bounded).
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.rt(&["state", id]);
            if out.code == 0 && out.json()["status"] == want {
                return;
            }
            for p in self.pids.borrow().iter() {
                p.reap();
            }
            assert!(
                Instant::now() < deadline,
                "{id} never reached {want}: {}",
                out.stdout
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) until `path` exists: how a container says it got
    /// somewhere, e.g. that a signal trap is in place.
    pub fn wait_file(&self, path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until a container wrote a whole line to `path` and returns it trimmed: a shell's
    /// `echo x >file` creates the file before it writes, so existence alone is a race.
    pub fn wait_line(&self, path: &Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.ends_with('\n') {
                return text.trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "{} never got a line (has {text:?})",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reaps every tracked init that has exited or is exiting (bounded: 30 s in all, as
    /// a SIGKILLed process on a loaded machine can take a while to finish exiting).
    pub fn reap_tracked(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in self.pids.borrow().iter() {
            loop {
                p.reap();
                if !p.exists() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Deletes what the test made and checks nothing is left behind.
    pub fn finish(self) {
        for id in self.ids.borrow().iter() {
            let _ = self.rt(&["delete", "--force", id]);
        }
        self.reap_tracked();
        self.audit();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// What is left of this test's processes (maybe zombies), reaping those that are our
    /// exited children: its tracked pids, and processes we never learnt the pid of (a
    /// failed create): anything in this test's cgroups, or rooted or working under its dir.
    fn left_processes(&self) -> Vec<String> {
        let mut left = Vec::new();
        for p in self.pids.borrow().iter() {
            p.reap();
            if p.exists() {
                left.push(format!("process {} left behind", p.pid));
            }
        }
        let dir = self.dir.to_string_lossy().into_owned();
        for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            if cg.contains(&format!("/berth-it-{}/", self.name)) {
                // A zombie keeps its cgroup: in this test's, and ours to reap, it is this
                // test's (never another's, whose cgroups are named after them).
                if reap_if_our_zombie(pid) {
                    continue;
                }
                left.push(format!("process {pid} left behind in the test's cgroup"));
            }
            // Before pivot_root, a process's root still names the bundle.
            for link in ["root", "cwd"] {
                if let Ok(t) = std::fs::read_link(e.path().join(link)) {
                    if t.starts_with(&dir) {
                        left.push(format!(
                            "process {pid} left behind ({link} {})",
                            t.display()
                        ));
                    }
                }
            }
        }
        left
    }

    /// No state dir, no process, no cgroup dir, no new mount.
    pub fn audit(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.root)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "state left behind in {}: {left:?}",
            self.root.display()
        );
        // A killed process finishes exiting asynchronously (and, as our child, stays a
        // zombie until reaped): wait for what is ours to go, bounded; a leak stays.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = self.left_processes();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{}", left.join("; "));
            std::thread::sleep(Duration::from_millis(50));
        }
        for ctrl in std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .filter_map(|e| e.ok())
        {
            let d = ctrl.path().join(format!("berth-it-{}", self.name));
            for id in self.ids.borrow().iter() {
                assert!(
                    !d.join(id).exists(),
                    "cgroup left behind: {}",
                    d.join(id).display()
                );
            }
            // The parent is the harness's (it may have been made for the test's own
            // cgroupsPath); anything below it was made by the runtime or the container.
            let left: Vec<_> = std::fs::read_dir(&d)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "cgroups left behind: {left:?}");
            let _ = std::fs::remove_dir(&d);
        }
        let mounts = mount_lines_with(self.dir.to_str().unwrap());
        assert_eq!(
            mounts,
            self.mounts_before,
            "mounts left behind under {}",
            self.dir.display()
        );
    }
}

/// A failed test still cleans up after itself: the machine is shared, and a
/// panicking test must not leave containers, cgroups or state behind.
impl Drop for Ctx {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for id in self.ids.borrow().iter() {
            let _ = self.rt(&["delete", "--force", id]);
        }
        for p in self.pids.borrow().iter().filter(|p| p.exists()) {
            let _ = Command::new("kill")
                .args(["-9", &p.pid.to_string()])
                .status();
            p.reap();
        }
        for ctrl in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
        {
            // Children first: whatever the test or the runtime made below its parent.
            remove_cgroup_tree(&ctrl.path().join(format!("berth-it-{}", self.name)));
        }
        // Mounts a test made itself under its directory (a bind-mounted namespace file).
        let dir = self.dir.to_string_lossy().to_string();
        let mut mine: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&dir))
            .collect();
        mine.reverse();
        for m in mine {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes a cgroup directory and every cgroup below it, children first.
pub fn remove_cgroup_tree(d: &Path) {
    for e in std::fs::read_dir(d)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
    {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(d);
}

pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn write(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// runc's `spec` defaults, with a terminal off and a per-test cgroup (set by callers).
pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "testbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

impl Ctx {
    /// A bundle whose cgroup is this test's own.
    pub fn bundle_for(&self, id: &str, args: &[&str]) -> Bundle {
        let mut b = self.bundle(id, args);
        b.config["linux"]["cgroupsPath"] = json!(self.cgroup_path(id));
        b
    }

    /// Runs `args` in a fresh container and returns its output (must exit 0).
    pub fn probe(&self, suffix: &str, args: &[&str], tweak: impl FnOnce(&mut Value)) -> String {
        let id = self.id(suffix);
        let mut b = self.bundle_for(&id, args);
        tweak(&mut b.config);
        let out = self.run(&b, &id);
        assert_eq!(
            out.code, 0,
            "container failed: {}\n{}",
            out.stderr, out.stdout
        );
        out.stdout
    }
}

/// The static testinit probe (tools/testinit), built once per test binary in its own
/// target dir so that it does not wait on the cargo lock of the running `cargo test`.
pub fn testinit() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target/testinit");
    TESTINIT.call_once(|| {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &target)
            .args(["rustc", "-q", "-p", "testinit", "--release", "--"])
            .args(["-C", "target-feature=+crt-static"])
            .output()
            .expect("cargo");
        assert!(
            out.status.success(),
            "building testinit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    target.join("release/testinit")
}

impl Ctx {
    /// Runs testinit (with `args` after it) in a fresh container and parses its JSON.
    pub fn probe_json(&self, suffix: &str, args: &[&str], tweak: impl FnOnce(&mut Value)) -> Value {
        let mut argv = vec!["/bin/testinit"];
        argv.extend_from_slice(args);
        let out = self.probe(suffix, &argv, tweak);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("testinit output: {e}: {out}"))
    }
}

pub fn output_of(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

/// One message from `conn` with the fd it carries (SCM_RIGHTS): a console socket's pty
/// master, a seccomp listener. Returns the payload and the fd.
pub fn recv_with_fd(conn: &std::os::unix::net::UnixStream) -> (Vec<u8>, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut buf = vec![0u8; 65536];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let raw = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::ScmRights(f) => f.first().copied(),
            _ => None,
        })
        .expect("an fd with the message");
    let n = msg.bytes;
    buf.truncate(n);
    // SAFETY: SCM_RIGHTS just installed `raw` in this process and nothing else owns it.
    (buf, unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A console socket as conmon or runc's recvtty: accepts one connection, takes the pty
/// master sent with SCM_RIGHTS and collects what the container writes until `until`
/// appears or the pty closes. Optionally writes `input` to the terminal first.
pub fn console_socket(
    path: &Path,
    until: &'static str,
    input: Option<&'static str>,
) -> std::thread::JoinHandle<String> {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        // Reopening the master through /proc/self/fd would open a new pty instead.
        let mut f = std::fs::File::from(recv_with_fd(&conn).1);
        if let Some(input) = input {
            f.write_all(input.as_bytes()).unwrap();
        }
        let mut out = String::new();
        let mut chunk = [0u8; 1024];
        while !out.contains(until) {
            match f.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
        out
    })
}
/// Panics, saying how to run the tests, when this process is in the machine's own network
/// namespace: berth puts a rootful container without `--network` on the default bridge,
/// which would make bridges, nftables tables and turn on ip_forward there. The machine's
/// namespace is the one `tools/in-netns.sh` (what `make test` runs the suite under) was
/// started in, or PID 1's where that is readable; unknown (no wrapper, PID 1's namespace
/// hidden) counts as the machine's.
pub fn private_netns() {
    let own = std::fs::read_link("/proc/self/ns/net").expect("/proc/self/ns/net");
    let private = match std::env::var_os("BERTH_HOST_NETNS") {
        Some(host) => own.as_os_str() != host,
        None => std::fs::read_link("/proc/1/ns/net").is_ok_and(|init| init != own),
    };
    assert!(
        private,
        "these tests run containers on berth's default bridge, which must not touch this \
         machine's network: run them in a private network namespace, as `make test` does \
         (tools/in-netns.sh cargo test --test NAME)"
    );
}

/// The endpoints of `root`'s IPAM record as berth's commands see it: read under the
/// networks lock, which a `--rm` container's release (finished by a copy of its monitor
/// after the run returns) holds until it is done. Null without a record.
pub fn ipam_endpoints(root: &Path) -> Value {
    let lock = root.join("networks/lock");
    let Ok(f) = std::fs::File::open(&lock) else {
        return Value::Null;
    };
    let _held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockShared)
        .unwrap_or_else(|(_, e)| panic!("{}: {e}", lock.display()));
    match std::fs::read(root.join("networks/ipam.json")) {
        Ok(b) => serde_json::from_slice::<Value>(&b).unwrap()["endpoints"].clone(),
        Err(_) => Value::Null,
    }
}

pub mod netns;
pub mod people;
pub mod rootless;
