//! Issue 13's remainders, against servers each test starts for itself: a registry
//! (Debian's docker-registry) with a self-signed TLS certificate trusted through
//! `--cert-dir`, through `certs.d` (`/etc/containers`, `/etc/docker`, rootless
//! `~/.config/containers`; the /etc ones inside a private mount namespace whose /etc is an
//! overlay, so the host's is never written) and refused without it, `pull --all-tags`, `image prune --filter`, and
//! `import` from an http URL served by a tiny server in the test. Each test has its own
//! `--root`/`--runroot` (a [`World`]), stops what it started by pid, and ends with the
//! leak audit.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::people::{free_port, one_error_line, TestUser, World};

/// A docker-registry serving HTTPS on a free loopback port with a certificate of its own
/// CA; stopped (by pid) when dropped.
struct TlsRegistry {
    child: Child,
    host: String,
    /// The directory `--cert-dir` takes: the CA's `ca.crt`.
    certs: PathBuf,
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TlsRegistry {
    fn start(dir: &Path) -> TlsRegistry {
        let d = dir.join("tls-registry");
        let certs = d.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let p = |n: &str| d.join(n).to_str().unwrap().to_string();
        // A CA, and the server's certificate for 127.0.0.1 signed by it.
        sh(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=berth test CA",
                "-keyout",
                &p("ca.key"),
                "-out",
            ])
            .arg(certs.join("ca.crt")));
        sh(Command::new("openssl").args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ]));
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        sh(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in", &p("server.csr"), "-CA"])
            .arg(certs.join("ca.crt"))
            .args([
                "-CAkey",
                &p("ca.key"),
                "-CAcreateserial",
                "-out",
                &p("server.crt"),
            ])
            .args(["-extfile", &p("ext.cnf")]));
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        std::fs::write(
            d.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  tls:\n    certificate: {}\n    key: {}\n",
                p("data"),
                p("server.crt"),
                p("server.key")
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("registry.log")).unwrap())
            .stderr(std::fs::File::create(d.join("registry.err")).unwrap())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(Instant::now() < deadline, "the TLS registry never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsRegistry { child, host, certs }
    }

    fn cert_dir(&self) -> &str {
        self.certs.to_str().unwrap()
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_tls_registry_trusted_through_cert_dir_and_refused_without() {
    let w = World::new("tls");
    let reg = TlsRegistry::start(&w.dir);
    let id = w.busybox_image("local/bb:1");
    let remote = format!("{}/test/bb:1", reg.host);
    // Not trusted: a loopback registry over HTTPS whose CA berth does not know is
    // refused, naming the registry (no silent fall back to plain HTTP or no check).
    let out = w.b(&["push", "local/bb:1", &remote]);
    one_error_line(&out, 1, &reg.host);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    // Trusted through --cert-dir: push, then pull it back under its remote name.
    let out = w.b(&["push", "--cert-dir", reg.cert_dir(), "local/bb:1", &remote]);
    out.ok();
    let out = w.b(&["pull", &remote]);
    one_error_line(&out, 1, &reg.host);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    assert_eq!(w.b(&["images", "-q", &remote]).stdout, "", "nothing stored");
    let out = w.b(&["pull", "--cert-dir", reg.cert_dir(), &remote]);
    out.ok();
    let pulled = w.b(&["image", "inspect", "--format", "{{.Id}}", &remote]);
    assert_eq!(pulled.stdout.trim(), id, "the same image came back");
    let out = w.b(&["run", "--rm", &remote, "echo", "over tls"]);
    assert_eq!(out.stdout, "over tls\n", "{}", out.stderr);
    // --tls-verify=false takes it without the CA too.
    w.b(&["rmi", &remote]).ok();
    w.b(&["pull", "--tls-verify=false", &remote]).ok();
    // A --cert-dir with another CA is refused like none.
    let other = w.dir.join("other-ca");
    std::fs::create_dir_all(&other).unwrap();
    sh(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=other",
        ])
        .arg("-keyout")
        .arg(other.join("ca.key"))
        .arg("-out")
        .arg(other.join("ca.crt")));
    std::fs::remove_file(other.join("ca.key")).unwrap();
    w.b(&["rmi", &remote]).ok();
    let out = w.b(&["pull", "--cert-dir", other.to_str().unwrap(), &remote]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains(&reg.host), "{}", out.stderr);
    drop(reg);
    w.finish();
}

#[test]
fn pull_all_tags_pulls_every_tag_the_registry_lists() {
    let w = World::new("alltags");
    let reg = TlsRegistry::start(&w.dir);
    w.busybox_image("local/bb:1");
    let repo = format!("{}/test/all", reg.host);
    for t in ["a", "b", "c"] {
        w.b(&[
            "push",
            "--cert-dir",
            reg.cert_dir(),
            "local/bb:1",
            &format!("{repo}:{t}"),
        ])
        .ok();
    }
    w.b(&["rmi", "local/bb:1"]).ok();
    let out = w.b(&["pull", "-a", "--cert-dir", reg.cert_dir(), &repo]);
    out.ok();
    assert!(out.stdout.ends_with(&format!("{repo}\n")), "{}", out.stdout);
    for t in ["a", "b", "c"] {
        assert!(
            out.stdout.contains(&format!("{t}: Pulling from test/all")),
            "{}",
            out.stdout
        );
    }
    let tags = w.b(&["images", "--format", "{{.Repository}}:{{.Tag}}", &repo]);
    let mut got: Vec<&str> = tags.stdout.lines().collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            format!("{repo}:a").as_str(),
            format!("{repo}:b").as_str(),
            format!("{repo}:c").as_str()
        ]
    );
    // A tag or digest with -a is Docker's error; an unknown repository names itself.
    let out = w.b(&[
        "pull",
        "-a",
        "--cert-dir",
        reg.cert_dir(),
        &format!("{repo}:a"),
    ]);
    one_error_line(&out, 1, "tag can't be used with --all-tags/-a");
    let out = w.b(&[
        "pull",
        "-a",
        "--cert-dir",
        reg.cert_dir(),
        &format!("{}/test/nothing", reg.host),
    ]);
    one_error_line(&out, 1, "test/nothing");
    drop(reg);
    w.finish();
}

#[test]
fn image_prune_filters_until_and_labels() {
    let w = World::new("prunef");
    let tar = w.dir.join("rootfs.tar");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&w.rootfs)
        .args(["-cf", tar.to_str().unwrap(), "."]));
    let import = |changes: &[&str]| -> String {
        let mut a = vec!["import"];
        for c in changes {
            a.extend(["--change", c]);
        }
        a.push(tar.to_str().unwrap());
        let out = w.b(&a);
        out.ok();
        out.stdout.trim().to_string()
    };
    // Dangling (untagged) images, distinct by their config.
    let keep = import(&["LABEL keep=yes", "ENV N=1"]);
    let drop_me = import(&["LABEL tier=scratch", "ENV N=2"]);
    let plain = import(&["ENV N=3"]);
    let ids = || w.b(&["images", "-q", "--no-trunc"]).stdout;
    assert_eq!(ids().lines().count(), 3);
    // until: only images created before; these are all newer than an hour ago.
    let out = w.b(&["image", "prune", "-f", "--filter", "until=1h"]);
    out.ok();
    assert_eq!(ids().lines().count(), 3, "{}", out.stdout);
    // label=: only the labelled one.
    let out = w.b(&["image", "prune", "-f", "--filter", "label=tier=scratch"]);
    out.ok();
    assert!(
        out.stdout.contains(&format!("deleted: {drop_me}")),
        "{}",
        out.stdout
    );
    let left = ids();
    assert!(!left.contains(&drop_me) && left.contains(&keep) && left.contains(&plain));
    // label!=: all but those with it; until in the future takes every one left.
    let future = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60)
        .to_string();
    let until = format!("until={future}");
    let out = w.b(&[
        "image",
        "prune",
        "-f",
        "--filter",
        "label!=keep",
        "--filter",
        &until,
    ]);
    out.ok();
    assert_eq!(ids().trim(), keep, "{}", out.stdout);
    // Bad filters: one line, nothing removed.
    for bad in ["until=soon", "reference=x", "label="] {
        let out = w.b(&["image", "prune", "-f", "--filter", bad]);
        one_error_line(&out, 1, bad.split('=').next().unwrap());
        assert_eq!(ids().trim(), keep);
    }
    w.finish();
}

/// Serves `routes` (path -> status, headers, body) on a free loopback port, one
/// connection at a time, until the test ends (the thread is left with the listener).
type Route = (&'static str, u16, Vec<(String, String)>, Vec<u8>);

fn serve(routes: Vec<Route>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            if r.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
            }
            let path = first.split(' ').nth(1).unwrap_or("").to_string();
            let (status, headers, body) = routes
                .iter()
                .find(|(p, ..)| *p == path)
                .map(|(_, s, h, b)| (*s, h.clone(), b.clone()))
                .unwrap_or((404, vec![], b"not here".to_vec()));
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

#[test]
fn import_from_an_http_url() {
    let w = World::new("importurl");
    let tgz = w.dir.join("rootfs.tgz");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&w.rootfs)
        .args(["-czf", tgz.to_str().unwrap(), "."]));
    let bytes = std::fs::read(&tgz).unwrap();
    let mut half = bytes.clone();
    half.truncate(bytes.len() / 2);
    let port = serve(vec![
        ("/rootfs.tgz", 200, vec![], bytes),
        (
            "/moved",
            302,
            vec![("Location".into(), "/rootfs.tgz".into())],
            vec![],
        ),
        ("/half.tgz", 200, vec![], half),
    ]);
    let base = format!("http://127.0.0.1:{port}");
    let out = w.b(&[
        "import",
        "--change",
        "CMD [\"echo\", \"from a url\"]",
        &format!("{base}/moved"),
        "url/imported:1",
    ]);
    out.ok();
    assert!(out.stdout.starts_with("sha256:"), "{}", out.stdout);
    let out = w.b(&["run", "--rm", "url/imported:1"]);
    assert_eq!(out.stdout, "from a url\n", "{}", out.stderr);
    // What fails says which URL and why, and stores nothing.
    let before = w.b(&["images", "-q"]).stdout;
    let out = w.b(&["import", &format!("{base}/missing.tgz")]);
    one_error_line(&out, 1, "404");
    let out = w.b(&["import", &format!("{base}/half.tgz")]);
    assert_ne!(out.code, 0, "a truncated tarball is refused");
    let dead = free_port();
    let out = w.b(&["import", &format!("http://127.0.0.1:{dead}/x.tgz")]);
    one_error_line(&out, 1, &format!("127.0.0.1:{dead}"));
    let out = w.b(&["import", "ftp://127.0.0.1/x.tgz"]);
    one_error_line(&out, 1, "only http:// and https://");
    assert_eq!(w.b(&["images", "-q"]).stdout, before);
    w.finish();
}

/// Nothing of any pull under the store: no blob, no layer, no record, no staging.
fn store_is_empty(root: &Path) {
    let images = root.join("images");
    for d in ["blobs/sha256", "layers", "l", "records", "tmp"] {
        let left = common::people::entries(&images.join(d));
        assert!(left.is_empty(), "left in {d}: {left:?}");
    }
    let names = std::fs::read_to_string(images.join("names.json")).unwrap_or_default();
    assert!(!names.contains("test/"), "names.json: {names}");
}

/// `berth ARGS` with `--root`/`--runroot` of `w`, inside a private mount namespace whose
/// /etc is an overlay (upper dir in the test's directory) holding `cert` as `etc_file`:
/// the certs.d file exists for this berth only, the host's /etc is never written.
fn b_with_etc_file(
    w: &World,
    tag: &str,
    etc_file: &str,
    cert: &Path,
    args: &[&str],
) -> common::Out {
    let upper = w.dir.join(format!("etc-{tag}/upper"));
    let work = w.dir.join(format!("etc-{tag}/work"));
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let script =
        "set -e; mount -t overlay overlay -o \"lowerdir=/etc,upperdir=$1,workdir=$2\" /etc; \
                  mkdir -p \"$(dirname \"$3\")\"; cp \"$4\" \"$3\"; shift 4; exec \"$@\"";
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(&upper)
    .arg(&work)
    .arg(etc_file)
    .arg(cert)
    .arg(env!("CARGO_BIN_EXE_berth"))
    .arg("--root")
    .arg(&w.root)
    .arg("--runroot")
    .arg(&w.runroot)
    .args(args);
    common::run_with_timeout(&mut c, Duration::from_secs(120))
}

#[test]
fn a_tls_registry_trusted_through_certs_d_of_containers_and_docker() {
    // The image is pushed from one store, pulled into another that starts empty.
    let src = World::new("certsd-src");
    let reg = TlsRegistry::start(&src.dir);
    let id = src.busybox_image("local/bb:1");
    let remote = format!("{}/test/certsd:1", reg.host);
    src.b(&["push", "--cert-dir", reg.cert_dir(), "local/bb:1", &remote])
        .ok();
    let ca = reg.certs.join("ca.crt");

    let w = World::new("certsd");
    // Without the CA anywhere: one line naming the registry and the certificate problem,
    // and nothing in the store.
    let out = w.b(&["pull", &remote]);
    one_error_line(&out, 1, &reg.host);
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("certificate signed by unknown authority"),
        "names the untrusted certificate: {}",
        out.stderr
    );
    store_is_empty(&w.root);
    // The same without the CA but in the namespace with another registry's certs.d
    // entry: a CA for another host:port is not used.
    let other_host = format!("127.0.0.1:{}", free_port());
    let out = b_with_etc_file(
        &w,
        "other",
        &format!("/etc/containers/certs.d/{other_host}/ca.crt"),
        &ca,
        &["pull", &remote],
    );
    one_error_line(&out, 1, &reg.host);
    store_is_empty(&w.root);

    // Trusted through each certs.d: containers' (any *.crt) and Docker's (ca.crt).
    for (tag, file) in [
        (
            "containers",
            format!("/etc/containers/certs.d/{}/registry.crt", reg.host),
        ),
        ("docker", format!("/etc/docker/certs.d/{}/ca.crt", reg.host)),
    ] {
        let out = b_with_etc_file(&w, tag, &file, &ca, &["pull", &remote]);
        out.ok();
        let pulled = w.b(&["image", "inspect", "--format", "{{.Id}}", &remote]);
        pulled.ok();
        assert_eq!(
            pulled.stdout.trim(),
            id,
            "{tag}: the pushed image came back"
        );
        let out = w.b(&["run", "--rm", &remote, "cat", "/etc/passwd"]);
        assert!(
            out.stdout.starts_with("root:x:0:0:"),
            "{tag}: {}",
            out.stderr
        );
        // The file lived only in the namespace's /etc.
        assert!(!Path::new(&file).exists(), "{file} on the host");
        assert!(w
            .dir
            .join(format!("etc-{tag}/upper"))
            .join(&file[5..])
            .is_file());
        w.b(&["rmi", &remote]).ok();
        store_is_empty(&w.root);
    }
    drop(reg);
    w.finish();
    src.finish();
}

#[test]
fn rootless_trusts_the_users_own_certs_d() {
    let src = World::new("certsd-rl-src");
    let reg = TlsRegistry::start(&src.dir);
    src.busybox_image("local/bb:1");
    let remote = format!("{}/test/certsd-rl:1", reg.host);
    src.b(&["push", "--cert-dir", reg.cert_dir(), "local/bb:1", &remote])
        .ok();

    let w = World::new("certsd-rl");
    let u = TestUser::create("berthpg");
    let berth = w.dir.join("berth");
    std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
    std::fs::create_dir_all(w.dir.join("xdg")).unwrap();
    u.own(&w.dir);
    let as_user = |args: &[&str]| -> common::Out {
        let dirs = (w.root.as_path(), w.runroot.as_path(), w.dir.as_path());
        u.berth(&berth, dirs, args, Duration::from_secs(120))
    };
    let out = as_user(&["pull", &remote]);
    one_error_line(&out, 1, &reg.host);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    store_is_empty(&w.root);
    // ~/.config/containers/certs.d/HOST:PORT/ca.crt (HOME is the test's directory).
    let d = w.dir.join(".config/containers/certs.d").join(&reg.host);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(reg.certs.join("ca.crt"), d.join("ca.crt")).unwrap();
    u.own(&w.dir.join(".config"));
    as_user(&["pull", &remote]).ok();
    let out = as_user(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    out.ok();
    assert_eq!(out.stdout.trim(), remote);
    // XDG_CONFIG_HOME moves it: elsewhere, the CA is not found.
    as_user(&["rmi", &remote]).ok();
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        &u.uid.to_string(),
        "--regid",
        &u.gid.to_string(),
        "--init-groups",
    ])
    .arg(&berth)
    .arg("--root")
    .arg(&w.root)
    .arg("--runroot")
    .arg(&w.runroot)
    .args(["pull", &remote])
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .env("HOME", &w.dir)
    .env("XDG_RUNTIME_DIR", w.dir.join("xdg"))
    .env("XDG_CONFIG_HOME", w.dir.join("elsewhere"));
    let out = common::run_with_timeout(&mut c, Duration::from_secs(120));
    one_error_line(&out, 1, &reg.host);
    store_is_empty(&w.root);
    drop(reg);
    w.finish();
    src.finish();
}
