//! The people face rootless with images, as a person at a shell: a real unprivileged user
//! made by the test (useradd gives it /etc/subuid and /etc/subgid ranges), its own copy of
//! berth, storage in a directory it owns. Images are loaded, imported and pulled (from the
//! fixture registries of `local-registry.sh`), run in the foreground and detached, exec'd
//! into, stopped, removed, saved and removed from the store; what the containers write is
//! checked on disk through the mapping (container root is the user, container uid N is
//! the user's subordinate uid N-1); and nothing is left: no process of the user, no mount,
//! no container state, an empty store.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{run_with_timeout, Out};

static N: AtomicUsize = AtomicUsize::new(0);
static STARTED_REGISTRIES: AtomicBool = AtomicBool::new(false);

const NOAUTH: &str = "127.0.0.1:5000";

fn fixture_scripts() -> PathBuf {
    [
        std::env::var_os("BERTH_FIXTURE_SCRIPTS").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")),
        Some(PathBuf::from("/work/shared/fixtures")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.join("local-registry.sh").is_file())
    .expect("fixture scripts not found: set BERTH_FIXTURE_SCRIPTS to the directory of make-images.sh and local-registry.sh")
}

extern "C" fn stop_registries() {
    if STARTED_REGISTRIES.load(Ordering::SeqCst) {
        let _ = Command::new("bash")
            .arg(fixture_scripts().join("local-registry.sh"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn script(name: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("bash")
        .arg(fixture_scripts().join(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn catalog_has(repo: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "http://127.0.0.1:5000/v2/_catalog"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("\"{repo}\"")))
}

/// The fixtures built and the registries up and seeded (once per test process, under the
/// fixtures lock the other test binaries take too), as tests/people_images.rs does.
fn setup() -> &'static PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/berth-fixtures.lock")
            .expect("open the fixtures lock");
        let _l = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .expect("flock the fixtures lock");
        let out = std::env::var_os("BERTH_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/berth-fixtures/out"));
        let complete = [
            "busybox.docker.tar",
            "expected/layers.present",
            "oci/index.json",
            "rootfs/busybox/bin/busybox",
        ]
        .iter()
        .all(|p| out.join(p).exists());
        if !complete {
            script("make-images.sh", &[out.to_str().unwrap()]);
        }
        let status = script("local-registry.sh", &["status"]);
        let status = String::from_utf8_lossy(&status.stdout).into_owned();
        let running = status.matches(": running").count();
        if running == 0 {
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe { libc::atexit(stop_registries) };
            STARTED_REGISTRIES.store(true, Ordering::SeqCst);
            script("local-registry.sh", &["start"]);
        } else {
            assert_eq!(
                running, 4,
                "the fixture registries are half running (local-registry.sh status): {status}"
            );
        }
        if !["test/busybox", "test/layers"]
            .iter()
            .all(|r| catalog_has(r))
        {
            script(
                "local-registry.sh",
                &["seed", out.join("oci").to_str().unwrap()],
            );
        }
        out
    })
}

/// A user made for the test; with `ranges`, useradd's /etc/subuid and /etc/subgid ones.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(tag: &str, ranges: bool) -> TestUser {
        let name = format!("berthr{tag}{}", std::process::id());
        let mut args = vec!["-M", "-s", "/bin/false"];
        if !ranges {
            args.extend(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]);
        }
        args.push(&name);
        // Other test binaries add users at the same time: /etc/passwd's lock is retried.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new("useradd").args(&args).output().unwrap();
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

    /// The first id of the user's range in /etc/subuid or /etc/subgid.
    fn sub_start(&self, file: &str) -> u32 {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 3 && f[0] == self.name).then(|| f[1].parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no range for {} in {file}", self.name))
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

/// One test's world, owned by its user: berth's copy, --root, --runroot, auth file,
/// registries.conf.
struct W {
    dir: PathBuf,
    root: PathBuf,
    runroot: PathBuf,
    fixtures: PathBuf,
    u: TestUser,
}

impl W {
    fn new(tag: &str, ranges: bool) -> W {
        let fixtures = setup().clone();
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-pr-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("xdg")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_berth"), dir.join("berth")).unwrap();
        std::fs::write(
            dir.join("registries.conf"),
            format!("unqualified-search-registries = [\"{NOAUTH}\"]\n"),
        )
        .unwrap();
        std::fs::copy(
            fixtures.join("busybox.docker.tar"),
            dir.join("busybox.docker.tar"),
        )
        .unwrap();
        let u = TestUser::create(tag, ranges);
        let w = W {
            root: dir.join("root"),
            runroot: dir.join("xdg/berth"),
            dir,
            fixtures,
            u,
        };
        w.chown_r(&w.dir);
        w
    }

    fn chown_r(&self, p: &Path) {
        let st = Command::new("chown")
            .args([
                "-R",
                &format!("{}:{}", self.u.uid, self.u.gid),
                p.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// `berth --root R --runroot RR args...` as the user, in a clean environment.
    fn b(&self, args: &[&str]) -> Out {
        let mut a: Vec<&str> = vec![
            "--root",
            self.root.to_str().unwrap(),
            "--runroot",
            self.runroot.to_str().unwrap(),
        ];
        a.extend(args);
        self.b_plain(&a)
    }

    /// `berth args...` as the user, in a clean environment (HOME and XDG_RUNTIME_DIR
    /// in the test's directory).
    fn b_plain(&self, args: &[&str]) -> Out {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &self.u.uid.to_string(),
            "--regid",
            &self.u.gid.to_string(),
            "--init-groups",
        ])
        .arg(self.dir.join("berth"))
        .args(args)
        .current_dir(&self.dir)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", &self.dir)
        .env("XDG_RUNTIME_DIR", self.dir.join("xdg"))
        .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
        .env(
            "CONTAINERS_REGISTRIES_CONF",
            self.dir.join("registries.conf"),
        );
        run_with_timeout(&mut c, Duration::from_secs(180))
    }

    fn count(&self, sub: &str) -> usize {
        std::fs::read_dir(self.root.join("images").join(sub))
            .map(|d| d.filter_map(|e| e.ok()).count())
            .unwrap_or(0)
    }

    fn assert_store_empty(&self, why: &str) {
        for sub in ["records", "blobs/sha256", "layers", "tmp", "l"] {
            assert_eq!(self.count(sub), 0, "{why}: images/{sub} is not empty");
        }
        assert_eq!(self.b(&["images", "-q"]).ok().stdout, "", "{why}");
    }

    /// The unpacked diff directories of the store's layers.
    fn layer_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.root.join("images/layers"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("diff"))
            .collect()
    }

    /// `run --rm IMAGE sh -c SCRIPT`, which must succeed: its stdout.
    fn sh(&self, image: &str, script: &str) -> String {
        let out = self.b(&["run", "--rm", image, "sh", "-c", script]);
        out.ok();
        out.stdout.clone()
    }

    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Nothing of the user's left: no container state, no mount under the test's
    /// directory, no process (zombies aside: the machine's init reaps them when it will).
    fn audit(&self) {
        for d in [
            self.root.join("containers"),
            self.root.join("names"),
            self.runroot.join("containers"),
            self.runroot.join("runtime"),
        ] {
            let left: Vec<String> = std::fs::read_dir(&d)
                .map(|r| {
                    r.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            assert!(left.is_empty(), "left behind in {}: {left:?}", d.display());
        }
        let dir = self.dir.to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&dir), "mounts left behind under {dir}");
        let mut left = Vec::new();
        self.until("the user's processes to end", || {
            left = self.processes();
            left.is_empty()
        });
    }

    /// The user's live processes (host uid or subordinate uids: any not root's).
    fn processes(&self) -> Vec<String> {
        let sub = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
        let range = sub.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && f[0] == self.u.name)
                .then(|| (f[1].parse::<u32>().unwrap(), f[2].parse::<u32>().unwrap()))
        });
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
            if e.file_name().to_string_lossy().parse::<i32>().is_err() {
                continue;
            }
            let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap_or("")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string()
            };
            if field("State:") == "Z" {
                continue;
            }
            let uid: u32 = field("Uid:").parse().unwrap_or(0);
            let ours = uid == self.u.uid || range.is_some_and(|(s, n)| uid >= s && uid < s + n);
            if ours {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                out.push(format!(
                    "{}: {}",
                    e.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ));
            }
        }
        out
    }

    fn finish(self) {
        let out = self.b(&["ps", "-a", "-q", "--no-trunc"]);
        let ids: Vec<String> = out.stdout.lines().map(String::from).collect();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(ids.iter().map(String::as_str));
            self.b(&a).ok();
        }
        self.audit();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn one_error_line(out: &Out, code: i32, phrase: &str) {
    assert_eq!(
        out.code, code,
        "expected exit {code}: stdout {} stderr {}",
        out.stdout, out.stderr
    );
    let errors: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(errors.len(), 1, "one error line: {}", out.stderr);
    assert!(
        errors[0].contains(phrase),
        "expected {phrase:?} in {:?}",
        errors[0]
    );
}

#[test]
fn rootless_load_run_detach_exec_stop_rm_save_rmi() {
    let w = W::new("life", true);
    let (su, sg) = (w.u.sub_start("/etc/subuid"), w.u.sub_start("/etc/subgid"));

    // load: into the test's --root, owned through the mapping (busybox's files are
    // root's: the user's own on disk).
    let out = w.b(&["load", "-i", "busybox.docker.tar"]);
    out.ok();
    assert!(out.stdout.contains("Loaded image:"), "{}", out.stdout);
    let out = w.b(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(out.ok().stdout.contains("busybox:latest"), "{}", out.stdout);
    let layers = w.layer_dirs();
    assert_eq!(layers.len(), 1);
    let bb = std::fs::symlink_metadata(layers[0].join("bin/busybox")).unwrap();
    assert_eq!((bb.uid(), bb.gid()), (w.u.uid, w.u.gid));

    // run --rm in the foreground: output, stderr and exit code passed on; root inside is
    // the user, the rest of the ids the ranges.
    let out = w.b(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "id -u; echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(out.stdout, "0\nout\n");
    assert_eq!(out.stderr, "err\n", "nothing but the container's stderr");
    assert_eq!(w.b(&["ps", "-a", "-q"]).ok().stdout, "", "--rm removed it");

    // run -d, ps, logs, exec, stop, rm.
    let out = w.b(&[
        "run",
        "-d",
        "--name",
        "d1",
        "busybox",
        "sh",
        "-c",
        "echo by-root > /by-root && touch /by-1000 && chown 1000:1000 /by-1000 && echo started && exec sleep 1000",
    ]);
    out.ok();
    let id = out.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{}", out.stdout);
    w.until("the container's log", || {
        w.b(&["logs", "d1"]).stdout == "started\n"
    });
    let ps = w.b(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.ok().stdout.starts_with("d1 Up"), "{}", ps.stdout);
    let out = w.b(&[
        "exec",
        "d1",
        "sh",
        "-c",
        "id -u; cat /by-root; stat -c %u:%g /by-1000",
    ]);
    assert_eq!(out.ok().stdout, "0\nby-root\n1000:1000\n");
    let out = w.b(&["exec", "-u", "1000", "d1", "id", "-u"]);
    assert_eq!(out.ok().stdout, "1000\n");
    assert_eq!(w.b(&["exec", "d1", "sh", "-c", "exit 5"]).code, 5);
    // On the host, the container's upper directory: root's file is the user's, uid
    // 1000's is the user's subordinate uid 999.
    let upper = w.root.join("containers").join(&id).join("overlay/diff");
    let m = std::fs::metadata(upper.join("by-root")).unwrap();
    assert_eq!((m.uid(), m.gid()), (w.u.uid, w.u.gid));
    let m = std::fs::metadata(upper.join("by-1000")).unwrap();
    assert_eq!((m.uid(), m.gid()), (su + 999, sg + 999));
    // The overlay is in the monitor's own mount namespace, not the host's.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(w.dir.to_str().unwrap()));
    w.b(&["stop", "-t", "1", "d1"]).ok();
    let st = w.b(&["inspect", "--format", "{{.State.Status}}", "d1"]);
    assert_eq!(st.ok().stdout, "exited\n");
    // rm removes the upper directory whose files belong to subordinate ids.
    w.b(&["rm", "d1"]).ok();
    assert!(!w.root.join("containers").join(&id).exists());
    w.audit();

    // rm -f of a running one.
    w.b(&["run", "-d", "--name", "d2", "busybox", "sleep", "1000"])
        .ok();
    w.b(&["exec", "d2", "touch", "/x"]).ok();
    w.b(&["rm", "-f", "d2"]).ok();
    w.audit();

    // --rootfs keeps working beside images (the directory is the user's).
    let rootfs = w.dir.join("rootfs");
    let st = Command::new("cp")
        .arg("-a")
        .arg(w.fixtures.join("rootfs/busybox"))
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(st.success());
    w.chown_r(&rootfs);
    let out = w.b(&[
        "run",
        "--rm",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "sh",
        "-c",
        "id -u; head -n 1 /proc/self/uid_map",
    ]);
    let lines: Vec<Vec<String>> = out
        .ok()
        .stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(lines[0], ["0"]);
    assert_eq!(lines[1], ["0", &w.u.uid.to_string(), "1"]);

    // save, rmi, and the archive loads back.
    w.b(&["save", "-o", "saved.tar", "busybox"]).ok();
    assert!(std::fs::metadata(w.dir.join("saved.tar")).unwrap().len() > 1 << 20);
    let out = w.b(&["rmi", "busybox"]);
    assert!(
        out.ok().stdout.contains("Deleted: sha256:"),
        "{}",
        out.stdout
    );
    w.assert_store_empty("after rmi");
    w.b(&["load", "-i", "saved.tar"]).ok();
    assert_eq!(w.sh("busybox", "echo again"), "again\n");
    w.b(&["rmi", "busybox"]).ok();
    w.assert_store_empty("after the second rmi");
    w.finish();
}

#[test]
fn rootless_pull_import_and_the_tree_through_the_mapping() {
    let w = W::new("pull", true);
    let (su, sg) = (w.u.sub_start("/etc/subuid"), w.u.sub_start("/etc/subgid"));
    // Two pulls at once, each in a user namespace of its own with the same maps: both
    // succeed, one copy in the store.
    let image = format!("{NOAUTH}/test/layers");
    let outs: Vec<Out> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| sc.spawn(|| w.b(&["pull", &image])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        out.ok();
        assert!(
            out.stdout.ends_with(&format!("{image}:latest\n")),
            "{}",
            out.stdout
        );
    }
    assert_eq!(w.count("records"), 1);
    assert_eq!(w.count("tmp"), 0);
    // Every name of the fixture's expected lists, as the container sees its root.
    let read = |suffix: &str| -> Vec<String> {
        std::fs::read_to_string(w.fixtures.join(format!("expected/layers.{suffix}")))
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    let (present, absent) = (read("present"), read("absent"));
    let all: Vec<String> = present.iter().chain(&absent).cloned().collect();
    let seen = w.sh(
        "test/layers",
        &format!(
            "for f in {}; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then echo \"present:$f\"; else echo \"absent:$f\"; fi; done",
            all.join(" ")
        ),
    );
    for f in &present {
        assert!(seen.contains(&format!("present:{f}\n")), "{f}: {seen}");
    }
    for f in &absent {
        assert!(seen.contains(&format!("absent:{f}\n")), "{f}: {seen}");
    }
    let out = w.sh(
        "test/layers",
        "cat /data/hello.txt; stat -c '%a %u:%g' /usr/local/bin/suid /home/user/owned-by-1000.txt; [ -p /data/fifo ] && echo fifo",
    );
    assert_eq!(out, "v2\n4755 0:0\n644 1000:1000\nfifo\n");
    // On disk: uid 1000 of the layer is the user's subordinate uid 999; setuid kept.
    let f = w
        .layer_dirs()
        .into_iter()
        .map(|d| d.join("home/user/owned-by-1000.txt"))
        .find(|p| p.exists())
        .expect("the layer holding owned-by-1000.txt");
    let m = std::fs::metadata(&f).unwrap();
    assert_eq!((m.uid(), m.gid()), (su + 999, sg + 999));
    let s = w
        .layer_dirs()
        .into_iter()
        .map(|d| d.join("usr/local/bin/suid"))
        .find(|p| p.exists())
        .unwrap();
    let m = std::fs::symlink_metadata(&s).unwrap();
    assert_eq!(m.uid(), w.u.uid);
    assert_eq!(m.mode() & 0o7777, 0o4755);

    // run of a missing short name pulls it (registries.conf's search registry).
    let out = w.b(&["run", "--rm", "test/busybox", "echo", "pulled"]);
    out.ok();
    assert!(
        out.stderr
            .contains("Unable to find image 'test/busybox:latest' locally"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "pulled\n");

    // import of a root filesystem tarball.
    let tarball = w.dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(w.fixtures.join("rootfs/busybox"))
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    w.chown_r(&tarball);
    w.b(&["import", "rootfs.tar", "imported:1"]).ok();
    assert_eq!(w.sh("imported:1", "echo imported; id -u"), "imported\n0\n");

    // Hostile and special tarballs, unpacked as root of berth's namespace: a file
    // written through an absolute symlink and a `../` name are refused with one line,
    // nothing written outside the store and nothing left in it; a device node is skipped
    // with one warning (root of a user namespace cannot make one).
    let sentinel = w.dir.join("target");
    std::fs::create_dir(&sentinel).unwrap();
    w.chown_r(&sentinel);
    let py = format!(
        r#"
import tarfile, io
def add(t, name, data=b"x"):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
with tarfile.open("sym.tar", "w") as t:
    i = tarfile.TarInfo("escape"); i.type = tarfile.SYMTYPE; i.linkname = "{t}"; t.addfile(i)
    add(t, "escape/pwned")
with tarfile.open("dotdot.tar", "w") as t:
    add(t, "../../../../../../{t}/pwned")
with tarfile.open("dev.tar", "w") as t:
    add(t, "hello", b"hi")
    i = tarfile.TarInfo("mydev"); i.type = tarfile.CHRTYPE; i.devmajor = 1; i.devminor = 3; t.addfile(i)
"#,
        t = sentinel.display()
    );
    let st = Command::new("python3")
        .args(["-c", &py])
        .current_dir(&w.dir)
        .status()
        .unwrap();
    assert!(st.success());
    w.chown_r(&w.dir);
    let records = w.count("records");
    let out = w.b(&["import", "sym.tar", "hostile:sym"]);
    one_error_line(&out, 1, "is a symlink: refusing to write through it");
    let out = w.b(&["import", "dotdot.tar", "hostile:dotdot"]);
    one_error_line(&out, 1, "points outside its root");
    assert_eq!(std::fs::read_dir(&sentinel).unwrap().count(), 0);
    assert_eq!(w.count("records"), records);
    assert_eq!(w.count("tmp"), 0);
    let out = w.b(&["import", "dev.tar", "special:dev"]);
    out.ok();
    assert_eq!(
        out.stderr
            .matches("device node(s) skipped (rootless)")
            .count(),
        1,
        "{}",
        out.stderr
    );
    w.b(&["rmi", "special:dev"]).ok();

    for img in ["imported:1", "test/busybox", "test/layers"] {
        w.b(&["rmi", img]).ok();
    }
    w.assert_store_empty("after rmi of all three");
    w.finish();
}

#[test]
fn rootless_default_locations_are_the_users() {
    let w = W::new("defaults", true);
    w.b_plain(&["load", "-i", "busybox.docker.tar"]).ok();
    let data = w.dir.join(".local/share/berth");
    assert_eq!(
        std::fs::read_dir(data.join("images/records"))
            .unwrap()
            .count(),
        1,
        "the image is in ~/.local/share/berth"
    );
    let out = w.b_plain(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo in-default; exit 3",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (3, "in-default\n"),
        "{}",
        out.stderr
    );
    assert!(
        w.dir.join("xdg/berth").is_dir(),
        "runtime state in $XDG_RUNTIME_DIR/berth"
    );
    w.b_plain(&["run", "-d", "--name", "dd", "busybox", "sleep", "1000"])
        .ok();
    assert_eq!(w.b_plain(&["exec", "dd", "echo", "x"]).ok().stdout, "x\n");
    w.b_plain(&["rm", "-f", "dd"]).ok();
    w.b_plain(&["rmi", "busybox"]).ok();
    assert_eq!(
        std::fs::read_dir(data.join("images/layers"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(data.join("containers")).unwrap().count(),
        0
    );
    w.finish();
}

/// The pid of the monitor of container `id` (its command line names it).
fn monitor_pid(id: &str) -> i32 {
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("\0monitor\0") && cmd.contains(id) {
            return pid;
        }
    }
    panic!("no monitor for {id}");
}

#[test]
fn rootless_create_start_limits_and_a_killed_monitor() {
    let w = W::new("mon", true);
    w.b(&["load", "-i", "busybox.docker.tar"]).ok();
    // create, then start from the user's own namespace: the monitor is executed in
    // berth's; a limit asked for on cgroup v1 is one warning, not a failure.
    let out = w.b(&[
        "create",
        "--name",
        "c1",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "echo up; touch /by-root; exec sleep 1000",
    ]);
    out.ok();
    let id = out.stdout.trim().to_string();
    let out = w.b(&["start", "c1"]);
    out.ok();
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(
            out.stderr.matches("WARNING").count(),
            1,
            "one warning: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("without resource limits"),
            "{}",
            out.stderr
        );
    }
    w.until("the log", || w.b(&["logs", "c1"]).stdout == "up\n");
    assert_eq!(w.b(&["exec", "c1", "id", "-u"]).ok().stdout, "0\n");
    // The monitor killed: the next command reconciles (monitor died), rm cleans up.
    let mon = monitor_pid(&id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mon),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    w.until("the container to read as exited", || {
        w.b(&["inspect", "--format", "{{.State.Status}}", "c1"])
            .stdout
            == "exited\n"
    });
    w.b(&["rm", "c1"]).ok();
    assert!(!w.root.join("containers").join(&id).exists());
    w.audit();

    // --rm with a killed monitor: the next listing removes it, upper directory included.
    let out = w.b(&[
        "run",
        "-d",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "touch /a && chown 1000 /a && exec sleep 1000",
    ]);
    out.ok();
    let id = out.stdout.trim().to_string();
    let upper = w.root.join("containers").join(&id).join("overlay/diff");
    w.until("the container's file", || upper.join("a").exists());
    let mon = monitor_pid(&id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mon),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    w.until("the --rm container to go", || {
        w.b(&["ps", "-a", "-q"]).stdout.is_empty()
    });
    assert!(!w.root.join("containers").join(&id).exists());
    w.b(&["rmi", "busybox"]).ok();
    w.assert_store_empty("after rmi");
    w.finish();
}

#[test]
fn rootless_without_subordinate_ids_says_so_in_one_line() {
    let w = W::new("noranges", false);
    let text = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with(&format!("{}:", w.u.name))),
        "useradd gave the user a range"
    );
    let out = w.b(&["load", "-i", "busybox.docker.tar"]);
    one_error_line(&out, 1, "no subordinate ids for user");
    let out = w.b(&["run", "--rm", "busybox", "true"]);
    one_error_line(&out, 125, "no subordinate ids for user");
    let out = w.b(&["pull", &format!("{NOAUTH}/test/busybox")]);
    one_error_line(&out, 1, "no subordinate ids for user");
    assert_eq!(w.count("records"), 0);
    assert_eq!(w.count("layers"), 0);
    assert_eq!(w.count("blobs/sha256"), 0);
    // What needs no user namespace still answers.
    assert_eq!(w.b(&["images", "-q"]).ok().stdout, "");
    assert_eq!(w.b(&["ps", "-a", "-q"]).ok().stdout, "");
    // A root filesystem directory of the user's runs with the one id the user has (no
    // gid 5 for devpts then).
    let rootfs = w.dir.join("rootfs");
    let st = Command::new("cp")
        .arg("-a")
        .arg(w.fixtures.join("rootfs/busybox"))
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(st.success());
    w.chown_r(&rootfs);
    let out = w.b(&[
        "run",
        "--rm",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    let lines: Vec<Vec<String>> = out
        .ok()
        .stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["0".to_string()],
            vec!["0".into(), w.u.uid.to_string(), "1".into()]
        ]
    );
    w.finish();
}

#[test]
fn rootless_build_runs_steps_in_the_users_namespace_and_keeps_owners() {
    let w = W::new("build", true);
    w.b(&["load", "-i", "busybox.docker.tar"]).ok();
    let ctx = w.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN mkdir /data && echo hi > /data/f && chown 1000:1001 /data/f && echo x > /data/g\n\
         COPY hello.txt /app/\n\
         CMD [\"cat\", \"/app/hello.txt\"]\n",
    )
    .unwrap();
    w.chown_r(&ctx);
    let out = w.b(&["build", "-t", "rb", "ctx"]);
    out.ok();
    assert!(
        out.stdout.contains("Successfully tagged rb:latest"),
        "{}",
        out.stdout
    );
    // The image's CMD, by tag.
    assert_eq!(w.b(&["run", "--rm", "rb"]).ok().stdout, "hello\n");
    // What RUN made keeps the owners it gave; the copied file is root's (the user's).
    assert_eq!(
        w.sh(
            "rb",
            "stat -c '%n %u:%g' /data /data/f /data/g /app/hello.txt; cat /data/f"
        ),
        "/data 0:0\n/data/f 1000:1001\n/data/g 0:0\n/app/hello.txt 0:0\nhi\n"
    );
    // On disk, through the mapping: container uid N is the user's subordinate uid N-1.
    let f = w
        .layer_dirs()
        .into_iter()
        .map(|d| d.join("data/f"))
        .find(|p| p.exists())
        .expect("a layer holds data/f");
    let m = std::fs::symlink_metadata(&f).unwrap();
    assert_eq!(m.uid(), w.u.sub_start("/etc/subuid") + 999);
    assert_eq!(m.gid(), w.u.sub_start("/etc/subgid") + 1000);
    // A failing RUN: Docker's line, nothing tagged, no container or staging area left.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    let out = w.b(&["build", "-t", "bad", "ctx"]);
    assert_eq!(out.code, 1, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{}",
        out.stderr
    );
    assert!(!w.b(&["images"]).ok().stdout.contains("bad"));
    // --squash rootless: the built layers merged, deletions kept.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo a > /a && echo b > /b\nRUN rm /a /bin/ls\n",
    )
    .unwrap();
    w.b(&["build", "--squash", "-t", "rsq", "ctx"]).ok();
    assert_eq!(
        w.sh(
            "rsq",
            "cat /b; test -e /a || echo no-a; test -e /bin/ls || echo no-ls"
        ),
        "b\nno-a\nno-ls\n"
    );
    // RUN's network rootless: run's default (a namespace with only lo); bridges need root.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /ifaces\n",
    )
    .unwrap();
    w.b(&["build", "-t", "rnet", "ctx"]).ok();
    assert_eq!(w.sh("rnet", "cat /ifaces"), "lo\n");
    let out = w.b(&["build", "--network", "bridge", "-t", "bad", "ctx"]);
    assert_eq!(out.code, 1, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("--network bridge: bridge networks need root"),
        "{}",
        out.stderr
    );
    assert_eq!(w.count("tmp"), 0, "images/tmp is not empty");
    w.b(&["rmi", "rb", "rnet", "rsq", "busybox"]).ok();
    w.finish();
}
