//! The people face's images against real registries (Debian's docker-registry on
//! 127.0.0.1:5000 no auth, :5001 Basic, :5002 Bearer tokens from :5003), seeded with the
//! fixture images of `make-images.sh`: pull, run, the tree file by file, auth, errors,
//! archives, rmi, images, push, concurrent pulls. Each test has its own `--root`/`--runroot`,
//! auth file and registries.conf, and ends with an audit (no container, no mount, no
//! process of it left). The registries are started (and seeded) when not running, and
//! stopped at exit only if this process started them. Nothing is skipped: a missing tool
//! or fixture fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::people::{free_port, one_error_line, run};
use common::Out;

static N: AtomicUsize = AtomicUsize::new(0);
static STARTED_REGISTRIES: AtomicBool = AtomicBool::new(false);

const NOAUTH: &str = "127.0.0.1:5000";
const BASIC: &str = "127.0.0.1:5001";
const BEARER: &str = "127.0.0.1:5002";

fn fixture_scripts() -> PathBuf {
    let candidates = [
        std::env::var_os("BERTH_FIXTURE_SCRIPTS").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")),
        Some(PathBuf::from("/work/shared/fixtures")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("local-registry.sh").is_file())
        .expect("fixture scripts not found: set BERTH_FIXTURE_SCRIPTS to the directory of make-images.sh and local-registry.sh")
}

fn fixtures_out() -> PathBuf {
    std::env::var_os("BERTH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/berth-fixtures/out"))
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
    let out = Command::new("curl")
        .args(["-sf", "http://127.0.0.1:5000/v2/_catalog"])
        .output();
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("\"{repo}\"")))
}

/// The fixtures built and the registries up and seeded (once per test process, under the
/// fixtures lock that other test binaries take too).
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
        let out = fixtures_out();
        let complete = [
            "busybox.oci.tar",
            "busybox.docker.tar",
            "multilayer.docker.tar",
            "expected/layers.present",
            "expected/multilayer.present",
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
            // Ours: stopped when this process exits.
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
        if ![
            "test/busybox",
            "test/layers",
            "test/multilayer",
            "test/no-eof",
            "test/multiarch",
        ]
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

/// One test's world: its own storage, runtime state, auth file and registries.conf.
struct W {
    dir: PathBuf,
    root: PathBuf,
    runroot: PathBuf,
    fixtures: PathBuf,
}

impl W {
    fn new(name: &str) -> W {
        common::private_netns();
        let fixtures = setup().clone();
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-pi-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("registries.conf"),
            "unqualified-search-registries = [\"127.0.0.1:5000\"]\nshort-name-mode = \"permissive\"\n",
        )
        .unwrap();
        W {
            root: dir.join("root"),
            runroot: dir.join("run"),
            dir,
            fixtures,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args)
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("HOME", &self.dir);
        c
    }

    fn b(&self, args: &[&str]) -> Out {
        run(&mut self.cmd(args), None)
    }

    fn b_in(&self, args: &[&str], stdin: &Path) -> Out {
        run(&mut self.cmd(args), Some(stdin))
    }

    fn pull(&self, image: &str) -> Out {
        let out = self.b(&["pull", image]);
        out.ok();
        out
    }

    fn id_of(&self, image: &str) -> String {
        let out = self.b(&["image", "inspect", "--format", "{{.Id}}", image]);
        out.ok();
        out.stdout.trim().to_string()
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn count(&self, sub: &str) -> usize {
        std::fs::read_dir(self.images_dir().join(sub))
            .map(|d| d.filter_map(|e| e.ok()).count())
            .unwrap_or(0)
    }

    /// Nothing of any image in the store: no record, blob, layer or staging left.
    fn assert_store_empty(&self, why: &str) {
        for sub in ["records", "blobs/sha256", "layers", "tmp", "l"] {
            assert_eq!(self.count(sub), 0, "{why}: images/{sub} is not empty");
        }
        assert_eq!(self.b(&["images", "-q"]).stdout, "", "{why}: images listed");
    }

    /// `run --rm IMAGE sh -c SCRIPT`: its stdout.
    fn sh(&self, image: &str, script: &str) -> String {
        let out = self.b(&["run", "--rm", image, "sh", "-c", script]);
        out.ok();
        out.stdout
    }

    /// Every container removed, then nothing of them left anywhere.
    fn finish(self) {
        let ids = common::people::remove_all(|a| self.b(a));
        common::people::audit(&self.dir, &self.root, &self.runroot, &ids);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `present:F` / `absent:F` for every name of `expected/<tag>.present|absent`, as the
/// container sees its root.
fn check_expected(w: &W, image: &str, tag: &str) {
    let read = |suffix: &str| -> Vec<String> {
        std::fs::read_to_string(w.fixtures.join(format!("expected/{tag}.{suffix}")))
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    let present = read("present");
    let absent = read("absent");
    assert!(!present.is_empty() && !absent.is_empty());
    let all: Vec<String> = present.iter().chain(&absent).cloned().collect();
    let script = format!(
        "for f in {}; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then echo \"present:$f\"; else echo \"absent:$f\"; fi; done",
        all.join(" ")
    );
    let out = w.sh(image, &script);
    for f in &present {
        assert!(
            out.contains(&format!("present:{f}\n")),
            "{image}: {f} missing: {out}"
        );
    }
    for f in &absent {
        assert!(
            out.contains(&format!("absent:{f}\n")),
            "{image}: {f} is there: {out}"
        );
    }
}

#[test]
fn pull_every_fixture_and_check_the_tree_file_by_file() {
    let w = W::new("tree");
    for tag in [
        "busybox",
        "busybox-docker",
        "multilayer",
        "layers",
        "no-eof",
    ] {
        let out = w.pull(&format!("{NOAUTH}/test/{tag}"));
        assert!(
            out.stdout
                .ends_with(&format!("{NOAUTH}/test/{tag}:latest\n")),
            "pull prints the reference last: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("Status: Downloaded newer image for"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("Digest: sha256:"), "{}", out.stdout);
        assert!(
            out.stdout.contains(": Pull complete") || out.stdout.contains(": Already exists"),
            "{}",
            out.stdout
        );
    }
    // multilayer: umoci's whiteouts of a file and of a directory.
    check_expected(&w, "test/multilayer", "multilayer");
    // layers: uncompressed, gzip, zstd layers; whiteouts, an opaque dir, a hardlink whose
    // other name was whited out, a symlink, setuid, a uid 1000 file, a fifo, a name
    // deleted then re-created as a directory.
    check_expected(&w, "test/layers", "layers");
    let out = w.sh(
        "test/layers",
        "cat /data/hello.txt /data/zstd.txt /data/opq/new.txt /etc/issue/now-a-dir.txt; \
         stat -c '%a %u:%g' /usr/local/bin/suid /home/user/owned-by-1000.txt; \
         [ -p /data/fifo ] && echo fifo; readlink /data/symlink.txt; wc -c < /data/4k.txt; \
         ls -A /data/opq; pwd; echo $PATH",
    );
    assert_eq!(
        out,
        "v2\nzstd\nnew\nback\n4755 0:0\n644 1000:1000\nfifo\nhello.txt\n4096\nnew.txt\n/data\n\
         /usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    // no-eof: a layer tar without end-of-archive blocks.
    assert_eq!(w.sh("test/no-eof", "cat /etc/issue"), "test image\n");
    // Docker's schema 2 media types.
    assert_eq!(w.sh("test/busybox-docker", "echo docker"), "docker\n");
    // The same tree through `image mount`, read from the host.
    let out = w.b(&["image", "mount", "test/layers"]);
    out.ok();
    let mnt = PathBuf::from(out.stdout.trim());
    assert_eq!(
        std::fs::read_to_string(mnt.join("data/hello.txt")).unwrap(),
        "v2\n"
    );
    assert!(!mnt.join("data/hardlink.txt").exists());
    assert!(!mnt.join("data/opq/old.txt").exists());
    assert!(std::fs::symlink_metadata(mnt.join("data/dangling"))
        .unwrap()
        .file_type()
        .is_symlink());
    let rmi = w.b(&["rmi", "test/layers"]);
    rmi.fails_with("mounted");
    w.b(&["image", "unmount", "test/layers"]).ok();
    assert!(!mnt.join("data").exists());
    // Pulled again: nothing downloaded, up to date.
    let out = w.pull("test/layers");
    assert!(
        out.stdout.contains("Status: Image is up to date for"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("Downloading"), "{}", out.stdout);
    // A layer shared with busybox is not fetched again.
    w.b(&["rmi", "test/multilayer"]).ok();
    let out = w.pull("test/multilayer");
    assert!(out.stdout.contains(": Already exists"), "{}", out.stdout);
    assert!(
        out.stdout.contains("Downloaded newer image"),
        "{}",
        out.stdout
    );
    w.finish();
}

#[test]
fn pull_by_digest_and_by_platform() {
    let w = W::new("digest");
    w.pull("test/busybox");
    let rd = w.b(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoDigests 0}}",
        "test/busybox",
    ]);
    rd.ok();
    let rd = rd.stdout.trim().to_string();
    assert!(
        rd.starts_with(&format!("{NOAUTH}/test/busybox@sha256:")),
        "{rd}"
    );
    let id = w.id_of("test/busybox");
    w.b(&["rmi", "test/busybox"]).ok();
    w.assert_store_empty("after rmi");
    let out = w.pull(&rd);
    assert!(out.stdout.ends_with(&format!("{rd}\n")), "{}", out.stdout);
    assert_eq!(w.id_of(&rd), id, "the same image by digest");
    let again = w.pull(&rd);
    assert!(
        again.stdout.contains("Status: Image is up to date for"),
        "{}",
        again.stdout
    );
    let ls = w.b(&["images", "--digests", "--format", "{{.Tag}} {{.Digest}}"]);
    assert_eq!(
        ls.stdout,
        format!("<none> {}\n", rd.split('@').nth(1).unwrap())
    );
    assert_eq!(w.sh(&rd, "echo by-digest"), "by-digest\n");
    // A wrong digest: the registry does not have it.
    let bad = format!("{NOAUTH}/test/busybox@sha256:{}", "0".repeat(64));
    let out = w.b(&["pull", &bad]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // An index: the machine's platform by default, another one with --platform.
    w.pull("test/multiarch");
    let arch = w.b(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        "test/multiarch",
    ]);
    assert_eq!(arch.stdout, "linux/amd64\n");
    let out = w.b(&["pull", "--platform", "linux/arm64", "test/multiarch"]);
    out.ok();
    let arch = w.b(&[
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}",
        "test/multiarch",
    ]);
    assert_eq!(arch.stdout, "arm64\n");
    let out = w.b(&["pull", "--platform", "linux/s390x", "test/multiarch"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("s390x"),
        "names the platform: {}",
        out.stderr
    );
    let out = w.b(&["pull", "--platform", "nonsense", "test/multiarch"]);
    one_error_line(&out, 1, "--platform");
    // run --platform picks the matching image, pulling it when the local one differs.
    let out = w.b(&[
        "run",
        "--rm",
        "--platform",
        "linux/amd64",
        "test/multiarch",
        "echo",
        "amd",
    ]);
    out.ok();
    assert_eq!(out.stdout, "amd\n");
    let arch = w.b(&[
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}",
        "test/multiarch",
    ]);
    assert_eq!(arch.stdout, "amd64\n");
    w.finish();
}

#[test]
fn basic_and_bearer_auth_with_login_and_logout() {
    let w = W::new("auth");
    let image = format!("{BASIC}/test/busybox");
    let out = w.b(&["pull", &image]);
    one_error_line(&out, 1, &format!("berth login {BASIC}"));
    w.assert_store_empty("after a refused pull");
    // Wrong password: refused, nothing stored.
    let pw = w.dir.join("pw");
    std::fs::write(&pw, "wrong\n").unwrap();
    let out = w.b_in(&["login", "-u", "testuser", "--password-stdin", BASIC], &pw);
    one_error_line(&out, 1, "wrong username or password");
    assert!(!w.dir.join("auth.json").exists());
    std::fs::write(&pw, "testpassword\n").unwrap();
    let out = w.b_in(&["login", "-u", "testuser", "--password-stdin", BASIC], &pw);
    out.ok();
    assert_eq!(out.stdout, "Login Succeeded\n");
    assert!(!out.stdout.contains("testpassword") && !out.stderr.contains("testpassword"));
    let meta = std::fs::metadata(w.dir.join("auth.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let auth = std::fs::read_to_string(w.dir.join("auth.json")).unwrap();
    assert!(
        auth.contains(BASIC) && !auth.contains("testpassword"),
        "{auth}"
    );
    w.pull(&image);
    assert_eq!(w.sh(&image, "echo basic"), "basic\n");
    let out = w.b(&["logout", BASIC]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("Removed login credentials for {BASIC}\n")
    );
    w.b(&["rmi", &image]).ok();
    w.b(&["pull", &image]).fails_with("berth login");
    let out = w.b(&["logout", BASIC]);
    one_error_line(&out, 1, "not logged into");
    // Bearer: an anonymous token pulls; pushing needs a login.
    let image = format!("{BEARER}/test/layers");
    w.pull(&image);
    assert_eq!(w.sh(&image, "cat /data/hello.txt"), "v2\n");
    let target = format!("{BEARER}/test/pushed-bearer-{}", std::process::id());
    w.b(&["tag", &image, &target]).ok();
    let out = w.b(&["push", &target]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("berth login") || out.stderr.contains("denied"),
        "{}",
        out.stderr
    );
    let out = w.b_in(
        &["login", "-u", "testuser", "--password-stdin", BEARER],
        &pw,
    );
    out.ok();
    w.b(&["push", &target]).ok();
    w.b(&["rmi", &target, &image]).ok();
    w.assert_store_empty("after rmi of both names");
    w.pull(&target);
    assert_eq!(w.sh(&target, "cat /data/zstd.txt"), "zstd\n");
    w.b(&["logout", "--all"]).ok();
    w.finish();
}

#[test]
fn registry_down_unknown_tag_and_bad_references() {
    let w = W::new("errors");
    let port = free_port();
    let out = w.b(&["pull", &format!("127.0.0.1:{port}/test/busybox")]);
    one_error_line(&out, 1, &format!("127.0.0.1:{port}"));
    let out = w.b(&["pull", &format!("{NOAUTH}/test/busybox:no-such-tag")]);
    one_error_line(&out, 1, "manifest unknown");
    assert!(
        out.stderr.contains("no-such-tag"),
        "names the reference: {}",
        out.stderr
    );
    let out = w.b(&["pull", &format!("{NOAUTH}/test/no-such-repo")]);
    assert_eq!(out.code, 1);
    // Invalid references: 1 from pull, 125 from run and create, nothing made.
    for bad in ["Redis", "a:b:c", "@sha256:abc", "busybox@sha256:12"] {
        let out = w.b(&["pull", bad]);
        assert_eq!(out.code, 1, "pull {bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("invalid reference"),
            "{bad}: {}",
            out.stderr
        );
        let out = w.b(&["run", "--rm", bad, "true"]);
        assert_eq!(out.code, 125, "run {bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("invalid reference"),
            "{bad}: {}",
            out.stderr
        );
        let out = w.b(&["create", bad]);
        assert_eq!(out.code, 125, "create {bad}: {}", out.stderr);
    }
    let long = format!("{}/x", "a".repeat(256));
    w.b(&["pull", &long]).fails_with("invalid reference format");
    // run of an unknown image: Docker's line, the pull's error, 125.
    let out = w.b(&[
        "run",
        "--rm",
        &format!("{NOAUTH}/test/busybox:nope"),
        "true",
    ]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains(&format!(
        "Unable to find image '{NOAUTH}/test/busybox:nope' locally"
    )));
    assert!(out.stderr.contains("manifest unknown"), "{}", out.stderr);
    let out = w.b(&["run", "--rm", "--pull", "never", "test/busybox", "true"]);
    one_error_line(&out, 125, "test/busybox");
    assert_eq!(w.b(&["ps", "-a", "-q"]).stdout, "");
    w.assert_store_empty("after failed pulls");
    // A store with nothing: every image command says so, exit 1.
    for args in [
        vec!["rmi", "nothing"],
        vec!["image", "inspect", "nothing"],
        vec!["history", "nothing"],
        vec!["tag", "nothing", "other"],
        vec!["save", "-o", "/dev/null", "nothing"],
    ] {
        let out = w.b(&args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.to_lowercase().contains("no such image"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(w.b(&["image", "exists", "nothing"]).code, 1);
    w.finish();
}

#[test]
fn load_save_round_trips_of_both_archive_formats() {
    let w = W::new("archives");
    let fx = w.fixtures.clone();
    let out = w.b(&[
        "load",
        "-i",
        fx.join("busybox.docker.tar").to_str().unwrap(),
    ]);
    out.ok();
    assert_eq!(out.stdout, "Loaded image: localhost/busybox:latest\n");
    let docker_id = w.id_of("localhost/busybox");
    // A short name finds localhost/ first, as Podman.
    assert_eq!(w.sh("busybox", "cat /etc/issue"), "test image\n");
    let out = w.b_in(&["load"], &fx.join("multilayer.docker.tar"));
    out.ok();
    assert_eq!(out.stdout, "Loaded image: localhost/multilayer:latest\n");
    check_expected(&w, "localhost/multilayer", "multilayer");
    let out = w.b(&["load", "-i", fx.join("busybox.oci.tar").to_str().unwrap()]);
    out.ok();
    assert!(out.stdout.starts_with("Loaded image"), "{}", out.stdout);
    // docker-archive of two images, removed, loaded back: the same ids.
    let both = w.dir.join("both.tar");
    w.b(&[
        "save",
        "-o",
        both.to_str().unwrap(),
        "localhost/busybox",
        "localhost/multilayer",
    ])
    .ok();
    let ml_id = w.id_of("localhost/multilayer");
    w.b(&["rmi", "-f", "localhost/busybox", "localhost/multilayer"])
        .ok();
    let out = w.b(&["load", "-i", both.to_str().unwrap()]);
    out.ok();
    assert!(
        out.stdout
            .contains("Loaded image: localhost/busybox:latest"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Loaded image: localhost/multilayer:latest"),
        "{}",
        out.stdout
    );
    assert_eq!(w.id_of("localhost/busybox"), docker_id);
    assert_eq!(w.id_of("localhost/multilayer"), ml_id);
    // oci-archive through stdout and stdin.
    let oci = w.dir.join("ml.oci.tar");
    let mut c = w.cmd(&["save", "--format", "oci-archive", "localhost/multilayer"]);
    c.stdout(std::fs::File::create(&oci).unwrap())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    assert!(c.status().unwrap().success());
    w.b(&["rmi", "localhost/multilayer"]).ok();
    let out = w.b_in(&["load"], &oci);
    out.ok();
    assert_eq!(out.stdout, "Loaded image: localhost/multilayer:latest\n");
    assert_eq!(w.id_of("localhost/multilayer"), ml_id);
    check_expected(&w, "localhost/multilayer", "multilayer");
    // Saving to a terminal-less stdout works; a corrupt archive loads nothing.
    let corrupt = w.dir.join("corrupt.tar");
    let mut data = std::fs::read(&both).unwrap();
    data.truncate(data.len() / 2);
    std::fs::write(&corrupt, &data).unwrap();
    let before = w.count("records");
    let out = w.b(&["load", "-i", corrupt.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(w.count("records"), before);
    assert_eq!(w.count("tmp"), 0, "no staging left");
    let out = w.b(&["load", "-i", w.dir.join("nope.tar").to_str().unwrap()]);
    one_error_line(&out, 1, "nope.tar");
    w.finish();
}

#[test]
fn rmi_untags_deletes_and_refuses_an_image_in_use() {
    let w = W::new("rmi");
    w.pull("test/busybox");
    let id = w.id_of("test/busybox");
    w.b(&["tag", "test/busybox", "mine:1"]).ok();
    w.b(&["tag", "test/busybox", "localhost/other:2"]).ok();
    let out = w.b(&["rmi", "mine:1"]);
    out.ok();
    assert_eq!(out.stdout, "Untagged: mine:1\n");
    assert_eq!(w.id_of("test/busybox"), id);
    // In use by a container: refused, naming it; -f untags only.
    let cid = w.b(&[
        "run",
        "-d",
        "--name",
        "user1",
        "test/busybox",
        "sleep",
        "1000",
    ]);
    cid.ok();
    let short = &cid.stdout.trim()[..12];
    let out = w.b(&["rmi", "-f", &id[7..19]]);
    one_error_line(&out, 1, short);
    let out = w.b(&["rmi", "test/busybox"]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("Untagged: {NOAUTH}/test/busybox:latest\n")
    );
    let out = w.b(&["rmi", "localhost/other:2"]);
    one_error_line(&out, 1, short);
    assert!(out.stderr.contains("must force"), "{}", out.stderr);
    // Forced, the last name goes; the image stays while the container uses it.
    let out = w.b(&["rmi", "-f", "localhost/other:2"]);
    out.ok();
    assert_eq!(out.stdout, "Untagged: localhost/other:2\n");
    assert_eq!(w.id_of(&id), id);
    let ps = w.b(&["ps", "--format", "{{.Image}} {{.Names}}"]);
    assert_eq!(ps.stdout, "test/busybox user1\n");
    let img = w.b(&[
        "inspect",
        "--format",
        "{{.Image}} {{.Config.Image}}",
        "user1",
    ]);
    assert_eq!(img.stdout, format!("{id} test/busybox\n"));
    w.b(&["rm", "-f", "user1"]).ok();
    let out = w.b(&["rmi", &id[7..19]]);
    out.ok();
    assert!(
        out.stdout
            .contains(&format!("Untagged: {NOAUTH}/test/busybox@sha256:")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with(&format!("Deleted: {id}\n")),
        "{}",
        out.stdout
    );
    w.assert_store_empty("after the last name went");
    w.finish();
}

#[test]
fn images_listing_filters_and_format() {
    let w = W::new("images");
    w.pull("test/busybox");
    w.pull("test/layers");
    let out = w.b(&["images"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let header: Vec<&str> = lines[0]
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    assert!(
        out.stdout.contains(&format!("{NOAUTH}/test/layers ")),
        "{}",
        out.stdout
    );
    let fmt = w.b(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
    ]);
    let layers_id = w.id_of("test/layers");
    assert!(
        fmt.stdout.contains(&format!(
            "{NOAUTH}/test/layers:latest {} ",
            &layers_id[7..19]
        )),
        "{}",
        fmt.stdout
    );
    let q = w.b(&["images", "-q"]);
    assert_eq!(q.stdout.lines().count(), 2);
    assert!(q.stdout.lines().all(|l| l.len() == 12));
    let q = w.b(&["images", "-q", "--no-trunc"]);
    assert!(q
        .stdout
        .lines()
        .all(|l| l.starts_with("sha256:") && l.len() == 71));
    let d = w.b(&["images", "--digests"]);
    assert!(d.stdout.lines().next().unwrap().contains("DIGEST"));
    let f = w.b(&[
        "images",
        "--filter",
        "reference=*/test/lay*",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(f.stdout, format!("{NOAUTH}/test/layers\n"));
    let f = w.b(&[
        "images",
        "--filter",
        "label=org.example.fixture=layers",
        "-q",
    ]);
    assert_eq!(f.stdout.trim(), &layers_id[7..19]);
    let f = w.b(&[
        "images",
        &format!("{NOAUTH}/test/busybox"),
        "--format",
        "{{.Tag}}",
    ]);
    assert_eq!(f.stdout, "latest\n");
    let j = w.b(&["images", "--format", "json"]);
    for l in j.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["ID"].is_string() && v["Repository"].is_string());
    }
    // Dangling after its tag moved away; prune removes it.
    w.b(&["tag", "test/layers", &format!("{NOAUTH}/test/busybox")])
        .ok();
    let f = w.b(&["images", "--filter", "dangling=true", "-q"]);
    assert_eq!(f.stdout.lines().count(), 1);
    w.b(&["images", "--filter", "nonsense=1"])
        .fails_with("invalid filter");
    let p = w.b(&["image", "prune", "-f"]);
    p.ok();
    assert!(p.stdout.contains("deleted: sha256:"), "{}", p.stdout);
    assert!(p.stdout.contains("Total reclaimed space:"), "{}", p.stdout);
    assert_eq!(w.b(&["images", "-q"]).stdout.lines().count(), 1);
    assert_eq!(w.b(&["image", "exists", "test/layers"]).code, 0);
    // History, newest first, with the fixture's comments.
    let h = w.b(&["history", "test/layers"]);
    h.ok();
    let lines: Vec<&str> = h.stdout.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{}", h.stdout);
    assert!(lines[1].contains("recreate (gzip)") && lines[1].starts_with(&layers_id[7..19]));
    assert!(
        lines[4].contains("busybox rootfs (uncompressed tar)") && lines[4].starts_with("<missing>")
    );
    // prune -a without -f asks; "n" keeps everything.
    let no = w.dir.join("no");
    std::fs::write(&no, "n\n").unwrap();
    w.b_in(&["image", "prune", "-a"], &no).ok();
    assert_eq!(w.b(&["images", "-q"]).stdout.lines().count(), 1);
    w.b(&["image", "prune", "-a", "-f"]).ok();
    w.assert_store_empty("after prune -a");
    w.finish();
}

#[test]
fn push_to_a_registry_and_pull_back() {
    let w = W::new("push");
    w.pull("test/layers");
    let id = w.id_of("test/layers");
    let target = format!("{NOAUTH}/test/pushed-{}:v1", std::process::id());
    w.b(&["tag", "test/layers", &target]).ok();
    let out = w.b(&["push", &target]);
    out.ok();
    assert!(
        out.stdout.starts_with(&format!(
            "The push refers to repository [{}]",
            target.trim_end_matches(":v1")
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("v1: digest: sha256:"), "{}", out.stdout);
    let out = w.b(&["push", &target]);
    out.ok();
    assert!(
        out.stdout.contains("Layer already exists"),
        "{}",
        out.stdout
    );
    w.b(&["rmi", &target, "test/layers"]).ok();
    w.assert_store_empty("before pulling back");
    w.pull(&target);
    assert_eq!(w.id_of(&target), id, "the same image came back");
    check_expected(&w, &target, "layers");
    // Pushing to a registry that is not there names it.
    let port = free_port();
    let out = w.b(&["push", &target, &format!("127.0.0.1:{port}/x/y:1")]);
    one_error_line(&out, 1, &format!("127.0.0.1:{port}"));
    w.finish();
}

/// `run`/`create --pull`: `missing` (the default) and `never` take the local image of the
/// name, `always` the registry's, which then is the local one of that name too.
#[test]
fn pull_policies_of_create_and_run() {
    let w = W::new("pullpol");
    w.pull("test/busybox");
    w.pull("test/layers");
    let (busybox, layers) = (w.id_of("test/busybox"), w.id_of("test/layers"));
    assert_ne!(busybox, layers);
    // The registry has busybox under the name; the store has layers under it.
    let target = format!("{NOAUTH}/test/pullpol-{}:v1", std::process::id());
    w.b(&["tag", "test/busybox", &target]).ok();
    w.b(&["push", &target]).ok();
    w.b(&["tag", "test/layers", &target]).ok();
    let image_of = |policy: &[&str]| -> String {
        let mut a = vec!["create"];
        a.extend_from_slice(policy);
        a.push(&target);
        let out = w.b(&a);
        out.ok();
        let id = out.stdout.trim().to_string();
        let o = w.b(&["inspect", "--format", "{{.Image}}", &id]);
        o.ok();
        o.stdout.trim().to_string()
    };
    assert_eq!(image_of(&[]), layers, "missing, the default");
    assert_eq!(image_of(&["--pull", "missing"]), layers);
    assert_eq!(image_of(&["--pull", "never"]), layers);
    assert_eq!(image_of(&["--pull", "always"]), busybox);
    assert_eq!(
        w.id_of(&target),
        busybox,
        "the name now is the registry's image"
    );
    // And run: the pulled image's own command runs.
    let out = w.b(&[
        "run", "--rm", "--pull", "always", &target, "sh", "-c", "echo ran",
    ]);
    out.ok();
    assert!(out.stdout.ends_with("ran\n"), "{}", out.stdout);
    w.finish();
}

#[test]
fn two_concurrent_pulls_of_one_image() {
    let w = W::new("concurrent");
    let outs: Vec<Out> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| w.b(&["pull", "-q", "test/layers"])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        o.ok();
        assert_eq!(o.stdout, format!("{NOAUTH}/test/layers:latest\n"));
    }
    assert_eq!(w.count("records"), 1);
    assert_eq!(w.count("layers"), 4, "each layer once");
    assert_eq!(w.count("tmp"), 0, "no staging left");
    check_expected(&w, "test/layers", "layers");
    w.finish();
}

#[test]
fn run_rm_pulls_then_runs_with_the_image_config() {
    let w = W::new("run");
    let image = format!("{NOAUTH}/test/busybox");
    let out = w.b(&["run", "--rm", &image, "echo", "hi"]);
    out.ok();
    assert_eq!(out.stdout, "hi\n");
    assert!(
        out.stderr
            .starts_with(&format!("Unable to find image '{image}:latest' locally\n")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Status: Downloaded newer image"),
        "{}",
        out.stderr
    );
    let out = w.b(&["run", "--rm", &image, "echo", "again"]);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("again\n", ""));
    // The image's config: Cmd, Env, WorkingDir, ExposedPorts; users from its /etc/passwd.
    let out = w.b(&["run", "--name", "cfg", "test/layers"]);
    out.ok();
    let v = w.b(&["inspect", "cfg"]).json()[0].clone();
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(v["Config"]["WorkingDir"], "/data");
    assert_eq!(v["Config"]["Labels"]["org.example.fixture"], "layers");
    assert!(
        v["Config"]["ExposedPorts"]["80/tcp"].is_object(),
        "{}",
        v["Config"]
    );
    assert_eq!(v["Image"], w.id_of("test/layers"));
    assert_eq!(v["Driver"], "overlay");
    w.b(&["rm", "cfg"]).ok();
    let out = w.b(&[
        "run",
        "--rm",
        "-u",
        "user",
        "test/busybox",
        "sh",
        "-c",
        "id -u; id -g; echo $HOME",
    ]);
    assert_eq!(out.stdout, "1000\n1000\n/home/user\n");
    // The container's writes stay in its own upper directory, across restarts.
    w.b(&[
        "run",
        "--name",
        "keep",
        "test/busybox",
        "sh",
        "-c",
        "echo kept > /etc/issue",
    ])
    .ok();
    let out = w.b(&["start", "-a", "keep"]);
    out.ok();
    let out = w.b(&["run", "--rm", "test/busybox", "cat", "/etc/issue"]);
    assert_eq!(out.stdout, "test image\n", "the image is unchanged");
    let upper = w.root.join("containers");
    let keep = std::fs::read_dir(&upper)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read_to_string(keep.join("overlay/diff/etc/issue")).unwrap(),
        "kept\n"
    );
    w.b(&["rm", "keep"]).ok();
    // Detached: the overlay lives in the monitor's namespace, the host sees no mount; a
    // killed monitor is reconciled and rm leaves nothing.
    let out = w.b(&["run", "-d", "--name", "bg", "test/busybox", "sleep", "1000"]);
    out.ok();
    let id = out.stdout.trim().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(w.dir.to_str().unwrap()),
        "no mount on the host"
    );
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.runroot.join("containers").join(&id).join("monitor.json")).unwrap(),
    )
    .unwrap();
    let pid = m["pid"].as_i64().unwrap() as i32;
    assert!(std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .contains(&format!("{id}/overlay/merged")));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !common::gone(pid) {
        assert!(Instant::now() < deadline, "the monitor never died");
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = w.b(&["inspect", "--format", "{{.State.Status}}", "bg"]);
    assert_eq!(st.stdout, "exited\n");
    w.b(&["rm", "bg"]).ok();
    w.finish();
}

#[test]
fn import_with_changes_and_history() {
    let w = W::new("import");
    let tarball = w.dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(w.fixtures.join("rootfs/busybox"))
        .args(["-czf", tarball.to_str().unwrap(), "."])
        .status()
        .unwrap();
    assert!(st.success());
    let out = w.b(&[
        "import",
        "--change",
        "CMD [\"/bin/sh\", \"-c\", \"echo imported $A\"]",
        "--change",
        "ENV A=b",
        "--change",
        "WORKDIR /tmp",
        "-m",
        "from a tarball",
        tarball.to_str().unwrap(),
        "my/imported:1",
    ]);
    out.ok();
    let id = out.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(w.id_of("my/imported:1"), id);
    let out = w.b(&["run", "--rm", "my/imported:1"]);
    assert_eq!(out.stdout, "imported b\n");
    assert_eq!(w.sh("my/imported:1", "pwd"), "/tmp\n");
    let h = w.b(&[
        "history",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "my/imported:1",
    ]);
    assert_eq!(h.stdout, "berth import|from a tarball\n");
    let out = w.b(&["import", "--change", "BOGUS x", tarball.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("BOGUS"), "{}", out.stderr);
    assert_eq!(
        w.b(&["images", "-q"]).stdout.lines().count(),
        1,
        "nothing more stored"
    );
    w.finish();
}

#[test]
fn pull_progress_on_a_terminal_and_inspect_falls_back_to_images() {
    let w = W::new("tty");
    // script(1) gives the pull a terminal: the layer lines are redrawn in place.
    let berth = env!("CARGO_BIN_EXE_berth");
    let line = format!(
        "{berth} --root {} --runroot {} pull {NOAUTH}/test/layers",
        w.root.display(),
        w.runroot.display()
    );
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .env("REGISTRY_AUTH_FILE", w.dir.join("auth.json"))
        .env("CONTAINERS_REGISTRIES_CONF", w.dir.join("registries.conf"));
    let out = run(&mut c, None);
    out.ok();
    assert!(
        out.stdout.contains("\x1b[4A"),
        "cursor moved up over the 4 layers: {:?}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\x1b[2K"),
        "lines cleared: {:?}",
        out.stdout
    );
    assert!(out.stdout.contains("Pull complete"), "{:?}", out.stdout);
    // Not a terminal, -q: the reference alone.
    w.b(&["rmi", "test/layers"]).ok();
    let out = w.b(&["pull", "-q", "test/layers"]);
    assert_eq!(out.stdout, format!("{NOAUTH}/test/layers:latest\n"));
    assert!(!out.stdout.contains('\x1b'));
    // inspect NAME: a container of that name first, else the image (Docker's order).
    let v = w.b(&["inspect", "test/layers"]).json();
    assert_eq!(v[0]["Id"], w.id_of("test/layers"));
    assert_eq!(v[0]["RootFS"]["Layers"].as_array().unwrap().len(), 4);
    assert_eq!(v[0]["Config"]["WorkingDir"], "/data");
    w.b(&["create", "--name", "test-layers", "test/layers"])
        .ok();
    let v = w.b(&["inspect", "--format", "{{.Name}}", "test-layers"]);
    assert_eq!(v.stdout, "/test-layers\n");
    let v = w.b(&[
        "inspect",
        "--type",
        "image",
        "--format",
        "{{.Os}}",
        "test/layers",
    ]);
    assert_eq!(v.stdout, "linux\n");
    w.b(&["inspect", "--type", "container", "test/layers"])
        .fails_with("No such container");
    w.b(&["inspect", "nothing-at-all"])
        .fails_with("No such object");
    w.finish();
}
