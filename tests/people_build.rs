//! `build` and `commit`, offline, from the fixture busybox image (`make-images.sh`'s
//! docker-archive, `load`ed into each test's own `--root`): the tutorial's shape run by id
//! and by tag, every instruction's effect in `inspect` and in the filesystem, multi-stage
//! builds, whiteouts in `run` and in `save`d tars, the cache (hits and misses exactly),
//! sources that try to leave the context, bad input (one line, exit 1, nothing tagged,
//! nothing left behind), and `commit`. Each test ends with an audit: no container, no
//! runtime record, no staging directory, no mount of it left.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use common::netns::{self, in_netns, sh};
use common::Out;

static N: AtomicUsize = AtomicUsize::new(0);

fn fixture_scripts() -> PathBuf {
    [
        std::env::var_os("BERTH_FIXTURE_SCRIPTS").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")),
        Some(PathBuf::from("/work/shared/fixtures")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.join("make-images.sh").is_file())
    .expect(
        "fixture scripts not found: set BERTH_FIXTURE_SCRIPTS to the directory of make-images.sh",
    )
}

/// The fixture images (made once, under a lock shared with the other people tests).
fn fixtures() -> &'static PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = std::env::var_os("BERTH_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/berth-fixtures/out"));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/berth-fixtures.lock")
            .expect("open the fixtures lock");
        let _l = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .expect("flock the fixtures lock");
        if !out.join("busybox.docker.tar").is_file() {
            let st = Command::new("bash")
                .arg(fixture_scripts().join("make-images.sh"))
                .arg(&out)
                .stdout(Stdio::null())
                .status()
                .expect("run make-images.sh");
            assert!(st.success(), "make-images.sh failed");
        }
        out
    })
}

/// One test's world: storage, runtime state, a build context.
struct W {
    dir: PathBuf,
    root: PathBuf,
    runroot: PathBuf,
    ctx: PathBuf,
}

impl W {
    fn new(name: &str) -> W {
        common::private_netns();
        let fx = fixtures().clone();
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-pb-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ctx")).unwrap();
        std::fs::write(
            dir.join("registries.conf"),
            "unqualified-search-registries = []\nshort-name-mode = \"permissive\"\n",
        )
        .unwrap();
        let w = W {
            root: dir.join("root"),
            runroot: dir.join("run"),
            ctx: dir.join("ctx"),
            dir,
        };
        w.b(&[
            "load",
            "-i",
            fx.join("busybox.docker.tar").to_str().unwrap(),
        ])
        .ok();
        w
    }

    fn cmd(&self, args: &[&str]) -> Command {
        // A build's RUN steps are on the default bridge (Docker's default): never made in
        // the machine's own network namespace. Each build gets a namespace of its own,
        // gone with it, unless the test runs in a private one already (`in_netns`).
        let mut c = if args.first() == Some(&"build") && !netns::inside() {
            let mut c = Command::new("unshare");
            c.args(["--net", "--"]).arg(env!("CARGO_BIN_EXE_berth"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_berth"))
        };
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args)
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
            .env("HOME", &self.dir)
            .current_dir(&self.dir);
        c
    }

    fn b(&self, args: &[&str]) -> Out {
        common::run_with_timeout(&mut self.cmd(args), Duration::from_secs(300))
    }

    fn file(&self, rel: &str, text: &str) {
        let p = self.ctx.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// `build` of the context with `dockerfile` and `extra` flags.
    fn build(&self, dockerfile: &str, extra: &[&str]) -> Out {
        self.file("Dockerfile", dockerfile);
        let mut a = vec!["build"];
        a.extend_from_slice(extra);
        let ctx = self.ctx.to_str().unwrap().to_string();
        a.push(&ctx);
        self.b(&a)
    }

    fn sh(&self, image: &str, script: &str) -> String {
        let out = self.b(&["run", "--rm", "--entrypoint", "", image, "sh", "-c", script]);
        out.ok();
        out.stdout
    }

    /// The output of `run --rm IMAGE` (its default command), which must succeed.
    fn run(&self, image: &str) -> String {
        let out = self.b(&["run", "--rm", image]);
        out.ok();
        out.stdout
    }

    /// The image's layers (their diff ids), as `inspect` says.
    fn layers(&self, image: &str) -> Vec<String> {
        self.inspect(image)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.b(&["image", "inspect", image]);
        out.ok();
        out.json()[0].clone()
    }

    fn tags(&self) -> Vec<String> {
        self.b(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .stdout
            .lines()
            .map(String::from)
            .collect()
    }

    /// `args` with `stdin` from a file.
    fn b_in(&self, args: &[&str], stdin: &Path) -> Out {
        let o = self
            .cmd(args)
            .stdin(std::fs::File::open(stdin).unwrap())
            .output()
            .expect("run berth");
        Out {
            code: o.status.code().unwrap_or(128),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Nothing of a build or a container left: containers, runtime records, staging
    /// directories, mounts, processes.
    fn audit(&self) {
        let ps = self.b(&["ps", "-a", "-q"]);
        assert_eq!(ps.stdout, "", "containers left");
        for d in [
            self.root.join("containers"),
            self.runroot.join("containers"),
            self.runroot.join("runtime"),
            self.root.join("images/tmp"),
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
        // No step's endpoint is left in the network record.
        let eps = common::ipam_endpoints(&self.root);
        assert!(
            eps.is_null() || eps == serde_json::json!([]),
            "IPAM entries left: {eps}"
        );
        let dir = self.dir.to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&dir), "mounts left behind under {dir}");
        for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
            if e.file_name().to_string_lossy().parse::<i32>().is_err() {
                continue;
            }
            if let Ok(t) = std::fs::read_link(e.path().join("root")) {
                assert!(!t.starts_with(&self.dir), "process left in {}", t.display());
            }
        }
    }

    fn finish(self) {
        self.audit();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One error line naming `phrase`, exit 1.
fn one_error(out: &Out, phrase: &str) {
    assert_eq!(
        out.code, 1,
        "exit 1 expected: {} {}",
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

fn short(id: &str) -> String {
    id.trim().trim_start_matches("sha256:")[..12].to_string()
}

/// The entries of a `save`d docker-archive's layers: (layer index, name, type char, link).
fn saved_entries(w: &W, image: &str) -> Vec<(usize, String, char, String)> {
    let tar = w.dir.join("saved.tar");
    let _ = std::fs::remove_file(&tar);
    w.b(&["save", "-o", tar.to_str().unwrap(), image]).ok();
    let x = w.dir.join("saved");
    let _ = std::fs::remove_dir_all(&x);
    std::fs::create_dir_all(&x).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&x)
        .arg("-xf")
        .arg(&tar)
        .status()
        .unwrap();
    assert!(st.success());
    let man: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.join("manifest.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for (i, l) in man[0]["Layers"].as_array().unwrap().iter().enumerate() {
        let o = Command::new("tar")
            .arg("-tvf")
            .arg(x.join(l.as_str().unwrap()))
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let kind = line.chars().next().unwrap();
            let f: Vec<&str> = line.split_whitespace().collect();
            let (name, link) = match f.iter().position(|x| *x == "->" || *x == "link") {
                Some(p) => (f[p - 1].to_string(), f.last().unwrap().to_string()),
                None => (f.last().unwrap().to_string(), String::new()),
            };
            out.push((i, name, kind, link));
        }
    }
    out
}

#[test]
fn tutorial_shape_built_then_run_by_id_and_by_tag() {
    let w = W::new("tutorial");
    let df = "FROM busybox\nRUN echo 'hello from a build' > /greeting && mkdir -p /srv && echo data > /srv/f\nCMD [\"cat\", \"/greeting\"]\n";
    let iid = w.dir.join("iid");
    let out = w.build(df, &["-t", "hello-img", "--iidfile", iid.to_str().unwrap()]);
    out.ok();
    let id = std::fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71, "iidfile: {id}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "Step 1/3 : FROM busybox");
    assert!(
        lines[1].starts_with(" ---> ") && lines[1].len() == 18,
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "Step 2/3 : RUN echo 'hello from a build' > /greeting && mkdir -p /srv && echo data > /srv/f");
    assert!(lines[3].starts_with(" ---> Running in "), "{}", lines[3]);
    assert!(out
        .stdout
        .contains("Step 3/3 : CMD [\"cat\", \"/greeting\"]"));
    assert!(out
        .stdout
        .contains(&format!("Successfully built {}\n", short(&id))));
    assert!(
        out.stdout
            .ends_with("Successfully tagged hello-img:latest\n"),
        "{}",
        out.stdout
    );
    // Run by id (full and short) and by tag.
    for r in [id.as_str(), &short(&id), "hello-img"] {
        assert_eq!(w.run(r), "hello from a build\n");
    }
    assert_eq!(w.sh("hello-img", "cat /srv/f"), "data\n");
    // The step's command is what history shows.
    let h = w.b(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "hello-img",
    ]);
    h.ok();
    let hl: Vec<&str> = h.stdout.lines().collect();
    assert_eq!(hl[0], "/bin/sh -c #(nop)  CMD [\"cat\", \"/greeting\"]");
    assert_eq!(
        hl[1],
        "/bin/sh -c echo 'hello from a build' > /greeting && mkdir -p /srv && echo data > /srv/f"
    );
    // -q: the id alone, from the cache this time.
    let q = w.build(df, &["-q"]);
    q.ok();
    assert_eq!(q.stdout, format!("{id}\n"));
    w.finish();
}

#[test]
fn every_instruction_in_config_and_filesystem() {
    let w = W::new("instr");
    w.file("app/main.sh", "#!/bin/sh\necho main\n");
    w.file("app/lib/util", "util\n");
    w.file("app/debug.log", "secret log\n");
    w.file("app/keep.log", "kept\n");
    w.file(".dockerignore", "**/*.log\n!app/keep.log\n");
    w.file("one.txt", "one\n");
    // A tar that ADD unpacks.
    let t = w.dir.join("t");
    std::fs::create_dir_all(t.join("inner")).unwrap();
    std::fs::write(t.join("inner/x"), "from tar\n").unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&t)
        .arg("-czf")
        .arg(w.ctx.join("bundle.tar.gz"))
        .arg("inner")
        .status()
        .unwrap();
    assert!(st.success());
    let df = r#"# syntax=docker/dockerfile:1
FROM busybox
ARG VERSION=1.0
ARG FLAVOR
ENV APP_HOME=/opt/app \
    GREETING="hello world"
LABEL version=$VERSION description="a ${FLAVOR:-plain} build"
MAINTAINER someone <s@example.com>
WORKDIR $APP_HOME
COPY app/ ./
COPY --chown=1000:100 --chmod=600 one.txt /owned.txt
ADD bundle.tar.gz /unpacked/
RUN <<EOF
echo "v=$VERSION f=$FLAVOR" > /args
id -u > /who
EOF
SHELL ["/bin/sh", "-e", "-c"]
RUN echo "$GREETING" > greeting && echo "$no_proxy" > /proxy
EXPOSE 8080 53/udp
VOLUME ["/data", "/cache"]
USER 1000:100
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD wget -q localhost || exit 1
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING"]
"#;
    let out = w.build(
        df,
        &[
            "-t",
            "instr",
            "--build-arg",
            "FLAVOR=spicy",
            "--build-arg",
            "NOPE=1",
            "--build-arg",
            "no_proxy=example.com",
            "--label",
            "extra=yes",
        ],
    );
    out.ok();
    assert!(
        out.stdout
            .contains("[Warning] One or more build-args [NOPE] were not consumed"),
        "{}",
        out.stdout
    );
    let i = w.inspect("instr");
    let c = &i["Config"];
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"APP_HOME=/opt/app"), "{env:?}");
    assert!(env.contains(&"GREETING=hello world"), "{env:?}");
    assert!(
        !env.iter()
            .any(|e| e.starts_with("VERSION=") || e.starts_with("FLAVOR=")),
        "build args leaked: {env:?}"
    );
    assert_eq!(c["Labels"]["version"], "1.0");
    assert_eq!(c["Labels"]["description"], "a spicy build");
    assert_eq!(c["Labels"]["extra"], "yes");
    assert_eq!(i["Author"], "someone <s@example.com>");
    assert_eq!(c["WorkingDir"], "/opt/app");
    assert_eq!(c["User"], "1000:100");
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert!(
        c["ExposedPorts"].get("8080/tcp").is_some() && c["ExposedPorts"].get("53/udp").is_some()
    );
    assert!(c["Volumes"].get("/data").is_some() && c["Volumes"].get("/cache").is_some());
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["echo $GREETING"]));
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "wget -q localhost || exit 1"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo child"]));
    // The image's default process.
    assert_eq!(w.run("instr"), "hello world\n");
    // The filesystem.
    let fs = w.sh(
        "instr",
        "cd /opt/app; ls -A . lib; cat greeting /args /who /unpacked/inner/x /proxy; stat -c '%u:%g %a' /owned.txt; cat /owned.txt; id -u",
    );
    assert_eq!(
        fs,
        ".:\ngreeting\nkeep.log\nlib\nmain.sh\n\nlib:\nutil\nhello world\nv=1.0 f=spicy\n0\nfrom tar\nexample.com\n1000:100 600\none\n1000\n"
    );
    // ONBUILD triggers run in a child image.
    let child = w.build("FROM instr\n", &["-t", "child"]);
    child.ok();
    assert!(child.stdout.contains("child\n"), "{}", child.stdout);
    w.finish();
}

#[test]
fn multi_stage_copy_from_a_builder_and_target() {
    let w = W::new("multi");
    let df = "FROM busybox AS builder\n\
              RUN mkdir /out && printf '#!/bin/sh\\necho built tool\\n' > /out/tool && chmod 755 /out/tool\n\
              FROM busybox AS unused\n\
              RUN echo never-runs && exit 9\n\
              FROM busybox\n\
              COPY --from=builder /out/tool /usr/local/bin/tool\n\
              COPY --from=0 /out /copied\n\
              CMD [\"/usr/local/bin/tool\"]\n";
    let out = w.build(df, &["-t", "final"]);
    out.ok();
    assert!(
        !out.stdout.contains("never-runs"),
        "an unneeded stage ran: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Step 1/6 : FROM busybox AS builder"),
        "{}",
        out.stdout
    );
    assert_eq!(w.run("final"), "built tool\n");
    assert_eq!(
        w.sh(
            "final",
            "ls -l /usr/local/bin/tool | cut -c1-10; cat /copied/tool | tail -1"
        ),
        "-rwxr-xr-x\necho built tool\n"
    );
    // --target: that stage only.
    let t = w.build(df, &["--target", "builder", "-t", "stage1"]);
    t.ok();
    assert!(t.stdout.contains("Step 2/2 :"), "{}", t.stdout);
    assert_eq!(
        w.sh(
            "stage1",
            "ls /out; test -e /usr/local/bin/tool || echo no-final-stage"
        ),
        "tool\nno-final-stage\n"
    );
    let bad = w.build(df, &["--target", "nope"]);
    one_error(&bad, "nope");
    // A --from naming a later stage: circular.
    // --from of an image of the store, reading one directory of it.
    w.build("FROM scratch\nCOPY --from=busybox /bin/busybox /bin/\nCOPY --from=busybox /etc/pass* /etc/\nCMD [\"/bin/busybox\", \"cat\", \"/etc/passwd\"]\n", &["-t", "fromimg"]).ok();
    let r = w.run("fromimg");
    assert!(r.starts_with("root:"), "{r}");
    let circ = w.build(
        "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nFROM a\n",
        &["-t", "circ"],
    );
    one_error(&circ, "Dockerfile:2: COPY --from=b: circular dependency");
    assert!(!w.tags().contains(&"circ:latest".to_string()));
    w.finish();
}

#[test]
fn deletion_in_a_later_run_is_a_whiteout_in_run_and_in_save() {
    let w = W::new("whiteout");
    let df = "FROM busybox\n\
              RUN mkdir -p /data/dir && echo a > /data/f && echo b > /data/dir/old && ln /data/f /data/hard\n\
              RUN rm /data/f && rm -rf /data/dir && mkdir /data/dir && echo new > /data/dir/new\n";
    w.build(df, &["-t", "wh"]).ok();
    assert_eq!(
        w.sh("wh", "ls -A /data /data/dir; cat /data/hard"),
        "/data:\ndir\nhard\n\n/data/dir:\nnew\na\n"
    );
    let e = saved_entries(&w, "wh");
    let layers = e.iter().map(|x| x.0).max().unwrap() + 1;
    let top: Vec<(String, char, String)> = e
        .iter()
        .filter(|x| x.0 == layers - 1)
        .map(|x| (x.1.clone(), x.2, x.3.clone()))
        .collect();
    let names: Vec<&str> = top.iter().map(|x| x.0.as_str()).collect();
    assert!(names.contains(&"data/.wh.f"), "{top:?}");
    assert!(names.contains(&"data/dir/.wh..wh..opq"), "{top:?}");
    assert!(names.contains(&"data/dir/new"), "{top:?}");
    // The hard link of the layer before is one file and a link to it.
    let mid: Vec<&(usize, String, char, String)> = e.iter().filter(|x| x.0 == layers - 2).collect();
    let hard = mid
        .iter()
        .find(|x| x.1 == "data/hard" || x.1 == "data/f")
        .unwrap();
    let other = mid
        .iter()
        .find(|x| (x.1 == "data/hard" || x.1 == "data/f") && x.1 != hard.1)
        .unwrap();
    assert_eq!((hard.2, other.2), ('-', 'h'), "{mid:?}");
    // No mount point the runtime made (/etc/hosts...) is content of a RUN layer.
    assert!(
        !e.iter()
            .any(|x| x.0 >= layers - 2 && x.1.starts_with("etc/")),
        "{e:?}"
    );
    // A step writes its own upper directory only: the image below is untouched.
    w.build(
        "FROM busybox\nRUN rm /bin/ls && echo x > /etc/issue\n",
        &["-t", "rm-ls"],
    )
    .ok();
    assert_eq!(
        w.sh(
            "busybox",
            "ls /bin/ls; cat /etc/issue; test -e /data || echo clean"
        ),
        "/bin/ls\ntest image\nclean\n"
    );
    // The saved tar loads into another store with the same content.
    let w2 = W::new("whiteout-load");
    w2.b(&["load", "-i", w.dir.join("saved.tar").to_str().unwrap()])
        .ok();
    assert_eq!(
        w2.sh("wh", "ls -A /data/dir; test -e /data/f || echo gone"),
        "new\ngone\n"
    );
    w2.finish();
    w.finish();
}

fn cached_steps(out: &Out) -> Vec<usize> {
    let mut step = 0;
    let mut v = Vec::new();
    for l in out.stdout.lines() {
        if let Some(rest) = l.strip_prefix("Step ") {
            step = rest.split('/').next().unwrap().parse().unwrap();
        }
        if l == " ---> Using cache" {
            v.push(step);
        }
    }
    v
}

#[test]
fn cache_hits_and_misses_exactly() {
    let w = W::new("cache");
    w.file("a.txt", "a1\n");
    w.file("b.txt", "b1\n");
    let df = "FROM busybox\nENV X=1\nRUN echo first > /first\nCOPY a.txt /a.txt\nRUN cat /a.txt > /seen-a\nCOPY b.txt /b.txt\nRUN cat /b.txt > /seen-b\n";
    let first = w.build(df, &["-t", "c"]);
    first.ok();
    assert_eq!(cached_steps(&first), Vec::<usize>::new());
    let id1 = w.inspect("c")["Id"].as_str().unwrap().to_string();
    let again = w.build(df, &["-t", "c"]);
    again.ok();
    assert_eq!(cached_steps(&again), vec![2, 3, 4, 5, 6, 7]);
    assert_eq!(
        w.inspect("c")["Id"].as_str().unwrap(),
        id1,
        "a fully cached build is the same image"
    );
    // Only what follows the COPY of the changed file runs again.
    w.file("b.txt", "b2\n");
    let changed = w.build(df, &["-t", "c"]);
    changed.ok();
    assert_eq!(cached_steps(&changed), vec![2, 3, 4, 5]);
    assert_eq!(w.sh("c", "cat /seen-a /seen-b"), "a1\nb2\n");
    w.file("a.txt", "a2\n");
    let changed = w.build(df, &["-t", "c"]);
    changed.ok();
    assert_eq!(cached_steps(&changed), vec![2, 3]);
    // A changed build arg in scope misses from the step that sees it.
    let df2 = "FROM busybox\nARG V=1\nRUN echo $V > /v\n";
    w.build(df2, &["-t", "d"]).ok();
    assert_eq!(cached_steps(&w.build(df2, &["-t", "d"])), vec![3]);
    assert_eq!(
        cached_steps(&w.build(df2, &["-t", "d", "--build-arg", "V=2"])),
        Vec::<usize>::new()
    );
    assert_eq!(w.sh("d", "cat /v"), "2\n");
    // Removing the image takes its layers: the cache does not hand out what is gone.
    w.b(&["rmi", "d"]).ok();
    let rebuilt = w.build(df2, &["-t", "d", "--build-arg", "V=2"]);
    rebuilt.ok();
    assert_eq!(cached_steps(&rebuilt), Vec::<usize>::new());
    assert_eq!(w.sh("d", "cat /v"), "2\n");
    // --no-cache uses nothing.
    let nc = w.build(df, &["-t", "c", "--no-cache"]);
    nc.ok();
    assert_eq!(cached_steps(&nc), Vec::<usize>::new());
    w.finish();
}

#[test]
fn sources_never_leave_the_context() {
    let w = W::new("escape");
    std::fs::write(w.dir.join("outside"), "outside secret\n").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", w.ctx.join("shadow")).unwrap();
    std::os::unix::fs::symlink("/etc", w.ctx.join("etclink")).unwrap();
    std::os::unix::fs::symlink("../outside", w.ctx.join("up")).unwrap();
    let out = w.build("FROM busybox\nCOPY ../outside /x\n", &["-t", "esc"]);
    one_error(
        &out,
        "Dockerfile:2: COPY failed: forbidden path outside the build context: ../outside",
    );
    let out = w.build("FROM busybox\nCOPY etclink/passwd /x\n", &["-t", "esc"]);
    one_error(
        &out,
        "Dockerfile:2: COPY failed: file not found in build context",
    );
    // Absolute sources are the context's own.
    let out = w.build("FROM busybox\nCOPY /etc/passwd /x\n", &["-t", "esc"]);
    one_error(&out, "file not found in build context");
    // Symlinks are copied as symlinks: their targets are never read.
    w.build("FROM busybox\nCOPY shadow up /links/\n", &["-t", "links"])
        .ok();
    assert_eq!(
        w.sh(
            "links",
            "readlink /links/shadow; readlink /links/up; cat /links/up 2>&1 || true"
        ),
        "/etc/shadow\n../outside\ncat: can't open '/links/up': No such file or directory\n"
    );
    let e = saved_entries(&w, "links");
    let shadow = e.iter().find(|x| x.1 == "links/shadow").unwrap();
    assert_eq!((shadow.2, shadow.3.as_str()), ('l', "/etc/shadow"));
    assert!(!w.tags().contains(&"esc:latest".to_string()));
    w.finish();
}

#[test]
fn bad_input_is_one_line_and_leaves_nothing() {
    let w = W::new("bad");
    let before = w.b(&["images", "-q", "--no-trunc"]).stdout;
    let out = w.b(&["build", "-t", "x", w.ctx.to_str().unwrap()]);
    one_error(&out, "cannot find Dockerfile");
    let out = w.b(&[
        "build",
        "-t",
        "x",
        "-f",
        "nope/Dockerfile",
        w.ctx.to_str().unwrap(),
    ]);
    one_error(&out, "nope/Dockerfile");
    let out = w.build("FROM busybox\n\nRUN true\nFROOM x\n", &["-t", "x"]);
    one_error(&out, "Dockerfile:4: unknown instruction: FROOM");
    let out = w.build("FROM no-such-image-here\n", &["-t", "x", "--pull=never"]);
    one_error(&out, "Dockerfile:1: FROM no-such-image-here: no such image");
    let out = w.build("FROM busybox\nCOPY missing.txt /x\n", &["-t", "x"]);
    one_error(
        &out,
        "Dockerfile:2: COPY failed: file not found in build context",
    );
    let out = w.build(
        "FROM busybox\nRUN echo created > /f\nRUN echo step output; echo to stderr >&2; exit 7\n",
        &["-t", "x"],
    );
    one_error(&out, "The command '/bin/sh -c echo step output; echo to stderr >&2; exit 7' returned a non-zero code: 7");
    assert!(out.stdout.contains("step output\n"), "{}", out.stdout);
    assert!(out.stderr.contains("to stderr\n"), "{}", out.stderr);
    let out = w.build("FROM busybox\nUSER nosuchuser\nRUN true\n", &["-t", "x"]);
    one_error(&out, "Dockerfile:3: RUN: ");
    assert!(out.stderr.contains("nosuchuser"), "{}", out.stderr);
    let out = w.build("FROM busybox\nEXPOSE notaport\n", &["-t", "x"]);
    one_error(&out, "Dockerfile:2: EXPOSE notaport: invalid port");
    let out = w.build("FROM busybox\nCOPY --nope=1 a /b\n", &["-t", "x"]);
    one_error(&out, "Dockerfile:2: COPY: unknown flag: --nope");
    // Nothing tagged, no image added.
    assert!(!w.tags().contains(&"x:latest".to_string()));
    assert_eq!(w.b(&["images", "-q", "--no-trunc"]).stdout, before);
    w.finish();
}

#[test]
fn dockerfile_on_stdin_and_context_tar_on_stdin() {
    let w = W::new("stdin");
    let df = w.dir.join("df");
    std::fs::write(&df, "FROM busybox\nRUN echo piped > /p\n").unwrap();
    w.b_in(&["build", "-t", "piped", "-"], &df).ok();
    assert_eq!(w.sh("piped", "cat /p"), "piped\n");
    w.file("Dockerfile", "FROM busybox\nCOPY f /f\n");
    w.file("f", "in tar\n");
    let tar = w.dir.join("ctx.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&w.ctx)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    w.b_in(&["build", "-t", "fromtar", "-"], &tar).ok();
    assert_eq!(w.sh("fromtar", "cat /f"), "in tar\n");
    w.finish();
}

#[test]
fn commit_a_container_with_changes() {
    let w = W::new("commit");
    let name = format!("c{}", std::process::id());
    w.b(&[
        "run",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo committed > /c && rm /etc/issue 2>/dev/null; true",
    ])
    .ok();
    let out = w.b(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/c\"]",
        "-c",
        "ENV K=v",
        "-m",
        "a message",
        "-a",
        "me",
        &name,
        "committed:1",
    ]);
    out.ok();
    let id = out.stdout.trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(w.run("committed:1"), "committed\n");
    assert_eq!(
        w.sh(
            "committed:1",
            "echo $K; test -e /etc/issue && echo still || echo gone"
        ),
        "v\ngone\n"
    );
    let i = w.inspect("committed:1");
    assert_eq!(i["Author"], "me");
    let h = w.b(&["history", "--format", "{{.Comment}}", "committed:1"]);
    assert_eq!(h.stdout.lines().next(), Some("a message"));
    let e = saved_entries(&w, "committed:1");
    let top = e.iter().map(|x| x.0).max().unwrap();
    let names: Vec<&str> = e
        .iter()
        .filter(|x| x.0 == top)
        .map(|x| x.1.as_str())
        .collect();
    assert!(names.contains(&"c"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("etc/host") || n.starts_with("etc/resolv")),
        "{names:?}"
    );
    // A running container: paused for the diff, running again after.
    let run = format!("r{}", std::process::id());
    w.b(&[
        "run",
        "-d",
        "--name",
        &run,
        "busybox",
        "sh",
        "-c",
        "echo live > /live; sleep 600",
    ])
    .ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while w.b(&["exec", &run, "cat", "/live"]).stdout != "live\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never wrote /live"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    w.b(&["commit", &run, "live:1"]).ok();
    let st = w.b(&["inspect", "--format", "{{.State.Status}}", &run]);
    assert_eq!(st.stdout.trim(), "running");
    assert_eq!(w.sh("live:1", "cat /live"), "live\n");
    w.b(&["rm", "-f", &run]).ok();
    let bad = w.b(&["commit", "no-such-container"]);
    one_error(&bad, "no-such-container");
    w.b(&["rm", &name]).ok();
    w.finish();
}

#[test]
fn build_output_is_streamed_through_unread_stdin() {
    // RUN's stdin is /dev/null: a step reading stdin ends at once.
    let w = W::new("stdin-null");
    let mut c = w.cmd(&["build", "-t", "s", w.ctx.to_str().unwrap()]);
    w.file("Dockerfile", "FROM busybox\nRUN cat; echo after-cat\n");
    c.stdin(Stdio::piped());
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut s = String::new();
    child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(s.contains("after-cat\n"), "{s}");
    w.finish();
}

/// A build of the context's Dockerfile (as `never`), once it has printed the line
/// `wanted`; its output in `out` and `err`.
fn build_until(w: &W, wanted: &str) -> std::process::Child {
    let out_path = w.dir.join("out");
    let mut child = w
        .cmd(&["build", "-t", "never", w.ctx.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(w.dir.join("err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .any(|l| l == wanted)
    {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the build never printed {wanted:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn an_interrupted_build_kills_and_removes_its_step_container() {
    let w = W::new("interrupt");
    w.file("Dockerfile", "FROM busybox\nRUN echo started; sleep 600\n");
    // The signal lands while the step's container runs (its own output line), then as
    // soon as the step is announced (while its container is being made).
    for wanted in ["started", "Step 2/2 : RUN echo started; sleep 600"] {
        let mut child = build_until(&w, wanted);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::SIGINT,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let st = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the build did not end"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // Ended by berth itself (exit 1, one line), not by the signal.
        assert_eq!(st.code(), Some(1), "{st:?}");
        let err = std::fs::read_to_string(w.dir.join("err")).unwrap();
        assert!(err.contains("interrupted by signal 2"), "{err}");
        assert!(!w.tags().contains(&"never:latest".to_string()));
        w.audit();
    }
    w.finish();
}

#[test]
fn copy_semantics_of_directories_files_and_globs() {
    let w = W::new("copysem");
    w.file("private/tool", "t\n");
    std::fs::set_permissions(
        w.ctx.join("private"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    w.file("src/a.c", "a\n");
    w.file("src/b.c", "b\n");
    w.file("src/b.h", "h\n");
    w.file("single", "s\n");
    let df = "FROM busybox\n\
              COPY private/ /usr/\n\
              COPY src/*.c /globbed/\n\
              COPY single /renamed\n\
              COPY single /etc/\n\
              COPY src /whole\n";
    w.build(df, &["-t", "cs"]).ok();
    assert_eq!(
        w.sh(
            "cs",
            "stat -c %a /usr; cat /usr/tool; ls /globbed; cat /renamed /etc/single; ls /whole"
        ),
        "755\nt\na.c\nb.c\ns\ns\na.c\nb.c\nb.h\n"
    );
    // BuildKit's platform arguments, in FROM --platform and in a stage.
    w.build(
        "FROM --platform=$BUILDPLATFORM busybox\nARG TARGETOS\nARG TARGETARCH\nRUN echo $TARGETOS/$TARGETARCH > /p\n",
        &["-t", "plat"],
    )
    .ok();
    let p = w.sh("plat", "cat /p");
    assert!(p.starts_with("linux/") && p.len() > 7, "{p}");
    // Several sources need a directory destination.
    let out = w.build("FROM busybox\nCOPY single src/a.c /nodir\n", &["-t", "cs2"]);
    one_error(&out, "the destination must be a directory and end with a /");
    w.finish();
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (a thread of the test): `GET PATH` answers the
/// body set for PATH (with its headers), else 404. One request per connection.
/// Path -> (body, extra header lines).
type Served =
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, (Vec<u8>, String)>>>;

struct Http {
    port: u16,
    files: Served,
    hits: std::sync::Arc<AtomicUsize>,
}

impl Http {
    fn start() -> Http {
        Http::start_on("127.0.0.1:0")
    }

    fn start_on(addr: &str) -> Http {
        use std::io::{BufRead, Write};
        let l = std::net::TcpListener::bind(addr).unwrap();
        let port = l.local_addr().unwrap().port();
        let files: Served = Default::default();
        let hits = std::sync::Arc::new(AtomicUsize::new(0));
        let (f, h) = (files.clone(), hits.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut hl = String::new();
                    if r.read_line(&mut hl).is_err() || hl.trim().is_empty() {
                        break;
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let found = f.lock().unwrap().get(&path).cloned();
                let _ = match found {
                    Some((body, headers)) => {
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
                            body.len()
                        );
                        s.write_all(&body)
                    }
                    None => s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        Http { port, files, hits }
    }

    fn serve(&self, path: &str, body: &[u8], headers: &str) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), (body.to_vec(), headers.to_string()));
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A port nothing listens on (bound, then closed).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn add_of_a_url_fetches_the_file_as_docker_does() {
    // The server and the builds in one network namespace (see `W::cmd`).
    in_netns("add_of_a_url_fetches_the_file_as_docker_does", add_url);
}

fn add_url() {
    let w = W::new("addurl");
    let h = Http::start();
    h.serve(
        "/files/hello.txt",
        b"hello over http\n",
        "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
    );
    // A tar stays a file: ADD unpacks local archives only.
    let tar = {
        let d = w.dir.join("tarsrc");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("inner"), "x").unwrap();
        let out = w.dir.join("t.tar");
        assert!(Command::new("tar")
            .arg("-C")
            .arg(&d)
            .arg("-cf")
            .arg(&out)
            .arg("inner")
            .status()
            .unwrap()
            .success());
        std::fs::read(out).unwrap()
    };
    h.serve("/data.tar", &tar, "");
    h.serve(
        "/gen/?id=7",
        b"named by the server\n",
        "Content-Disposition: attachment; filename=\"report.txt\"\r\n",
    );
    let df = format!(
        "FROM busybox\n\
         ADD {} /srv/\n\
         ADD {} /opt/data.tar\n\
         ADD --chown=1:2 --chmod=644 {} /owned\n\
         ADD {} /dl/\n\
         RUN cat /srv/hello.txt > /copy\n",
        h.url("/files/hello.txt"),
        h.url("/data.tar"),
        h.url("/files/hello.txt"),
        h.url("/gen/?id=7"),
    );
    w.build(&df, &["-t", "fetched"]).ok();
    assert_eq!(
        w.sh(
            "fetched",
            "cat /srv/hello.txt /copy; stat -c '%a %u:%g %Y' /srv/hello.txt /owned; \
             test -f /opt/data.tar && test ! -e /opt/inner && echo not-unpacked; \
             stat -c '%a %Y' /opt/data.tar; cat /dl/report.txt"
        ),
        "hello over http\nhello over http\n600 0:0 784111777\n644 1:2 784111777\nnot-unpacked\n600 0\nnamed by the server\n"
    );
    // Fetched again on every build: the same content is a cache hit, a changed one reruns
    // exactly the steps from its ADD on.
    let hits = h.hits.load(Ordering::SeqCst);
    let again = w.build(&df, &["-t", "fetched"]);
    again.ok();
    assert_eq!(
        cached_steps(&again),
        vec![2, 3, 4, 5, 6],
        "{}",
        again.stdout
    );
    assert_eq!(h.hits.load(Ordering::SeqCst), hits + 4);
    h.serve(
        "/data.tar",
        b"not a tar any more\n",
        "Last-Modified: Mon, 07 Nov 1994 08:49:37 GMT\r\n",
    );
    let changed = w.build(&df, &["-t", "fetched"]);
    changed.ok();
    assert_eq!(cached_steps(&changed), vec![2], "{}", changed.stdout);
    assert_eq!(w.sh("fetched", "cat /opt/data.tar"), "not a tar any more\n");
    // No context at all: a Dockerfile on stdin can still ADD a URL.
    let df_path = w.dir.join("stdin.Dockerfile");
    std::fs::write(
        &df_path,
        format!("FROM busybox\nADD {} /\n", h.url("/files/hello.txt")),
    )
    .unwrap();
    w.b_in(&["build", "-t", "nocontext", "-"], &df_path).ok();
    assert_eq!(w.sh("nocontext", "cat /hello.txt"), "hello over http\n");

    // Errors: one line naming the Dockerfile line and the URL, nothing tagged.
    let missing = h.url("/missing");
    let out = w.build(&format!("FROM busybox\nADD {missing} /x\n"), &["-t", "bad"]);
    one_error(
        &out,
        &format!("Dockerfile:2: ADD {missing}: failed to GET: the server answered 404"),
    );
    let refused = format!("http://127.0.0.1:{}/f", dead_port());
    let out = w.build(
        &format!("FROM busybox\nRUN true\nADD {refused} /x\n"),
        &["-t", "bad"],
    );
    one_error(
        &out,
        &format!("Dockerfile:3: ADD {refused}: cannot connect"),
    );
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
    h.serve("/files/", b"an index\n", "");
    let out = w.build(
        &format!("FROM busybox\nADD {} /d/\n", h.url("/files/")),
        &["-t", "bad"],
    );
    one_error(&out, "cannot determine filename from url");
    let out = w.build(
        &format!("FROM busybox\nCOPY {} /x\n", h.url("/files/hello.txt")),
        &["-t", "bad"],
    );
    one_error(&out, "Dockerfile:2: COPY http://");
    assert!(!w.tags().contains(&"bad:latest".to_string()));
    w.finish();
}

#[test]
fn run_mount_is_refused_in_one_line_before_any_step() {
    let w = W::new("runmount");
    let before = w.b(&["images", "-q", "--no-trunc"]).stdout;
    for (df, line, flag) in [
        (
            "FROM busybox\nRUN echo first > /f\nRUN --mount=type=cache,target=/root/.cache echo hi\n",
            3,
            "type=cache,target=/root/.cache",
        ),
        (
            "FROM busybox AS a\nRUN true\nFROM busybox\nRUN --mount=type=secret,id=tok \\\n  cat /run/secrets/tok\n",
            4,
            "type=secret,id=tok",
        ),
    ] {
        let out = w.build(df, &["-t", "m"]);
        one_error(
            &out,
            &format!("Dockerfile:{line}: RUN --mount={flag}: not supported: --mount needs BuildKit"),
        );
        assert!(!out.stdout.contains("Running in"), "{}", out.stdout);
    }
    assert!(!w.tags().contains(&"m:latest".to_string()));
    assert_eq!(w.b(&["images", "-q", "--no-trunc"]).stdout, before);
    w.finish();
}

#[test]
fn squash_merges_the_built_layers_over_the_base() {
    let w = W::new("squash");
    w.file("f", "from the context\n");
    let df = "FROM busybox\n\
              RUN echo one > /one && echo tmp > /tmp/gone && mkdir -p /d/sub && echo x > /d/sub/x && echo h > /one-h && ln /one-h /two-h\n\
              RUN echo two > /two && rm /tmp/gone && rm /bin/ls\n\
              COPY f /f\n\
              RUN rm -r /d && mkdir /d && echo y > /d/y\n\
              ENV SQUASHED=yes\n\
              CMD [\"cat\", \"/one\"]\n";
    let out = w.build(df, &["-t", "sq", "--squash"]);
    out.ok();
    let base = w.layers("busybox");
    let layers = w.layers("sq");
    // The base's layers, then one.
    assert_eq!(layers.len(), base.len() + 1, "{layers:?}");
    assert_eq!(layers[..base.len()], base[..]);
    // Run as built: files of every step, the deletions done, the config kept.
    assert_eq!(w.run("sq"), "one\n");
    assert_eq!(
        w.sh(
            "sq",
            "cat /two /f /d/y; test -e /tmp/gone || echo no-gone; test -e /bin/ls || echo no-ls; \
             test -e /d/sub || echo no-sub; echo $SQUASHED; stat -c %h /two-h"
        ),
        "two\nfrom the context\ny\nno-gone\nno-ls\nno-sub\nyes\n2\n"
    );
    // The one layer: a whiteout for what the base had, nothing for what a step made and
    // a later one removed.
    let e = saved_entries(&w, "sq");
    let top: Vec<&str> = e
        .iter()
        .filter(|x| x.0 == base.len())
        .map(|x| x.1.as_str())
        .collect();
    assert!(top.contains(&"bin/.wh.ls"), "{top:?}");
    assert!(top.contains(&"one"), "{top:?}");
    assert!(top.contains(&"f"), "{top:?}");
    assert!(
        !top.iter().any(|n| n.contains("gone") || n.contains("sub")),
        "{top:?}"
    );
    // History keeps every step; the merged layer is the last entry.
    let h = w.b(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "sq",
    ]);
    h.ok();
    let hl: Vec<&str> = h.stdout.lines().collect();
    assert!(hl[0].starts_with("|merge sha256:"), "{hl:?}");
    assert!(
        hl.iter()
            .any(|l| l.starts_with("/bin/sh -c echo two > /two")),
        "{hl:?}"
    );
    let base_hist = w.b(&["history", "-q", "busybox"]).stdout.lines().count();
    assert_eq!(hl.len(), base_hist + 7, "{hl:?}");
    // Without --squash the same Dockerfile comes from the cache, one layer per step.
    let plain = w.build(df, &["-t", "unsquashed"]);
    plain.ok();
    assert_eq!(cached_steps(&plain), vec![2, 3, 4, 5, 6, 7]);
    assert_eq!(w.layers("unsquashed").len(), base.len() + 4);
    // On scratch: one layer in all; a stage's built layers are that stage's base.
    w.build(
        "FROM scratch\nCOPY f /f\nCOPY f /g\n",
        &["-t", "sq-scratch", "--squash"],
    )
    .ok();
    let l = w.layers("sq-scratch");
    assert_eq!(l.len(), 1, "{l:?}");
    w.build(
        "FROM busybox AS one\nRUN echo 1 > /1\nFROM one\nRUN echo 2 > /2\nRUN echo 3 > /3\n",
        &["-t", "sq-stage", "--squash"],
    )
    .ok();
    let l = w.layers("sq-stage");
    assert_eq!(l.len(), base.len() + 2, "{l:?}");
    assert_eq!(w.sh("sq-stage", "cat /1 /2 /3"), "1\n2\n3\n");
    w.finish();
}

/// Ends a child the test started (by pid).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_steps_reach_out_through_the_default_bridge_and_none_sees_only_lo() {
    in_netns(
        "run_steps_reach_out_through_the_default_bridge_and_none_sees_only_lo",
        || {
            let w = W::new("bridge");
            // Another host (the internet): a namespace joined by a veth pair, ours
            // 10.98.0.1, its 10.98.0.2, serving a page.
            let peer = Reaped(netns::peer());
            let pid = peer.0.id();
            sh(&format!(
                "ip link add pb0 type veth peer name pb1 netns {pid} && ip addr add 10.98.0.1/24 dev pb0 && ip link set pb0 up && nsenter --net=/proc/{pid}/ns/net sh -c 'ip link set lo up; ip addr add 10.98.0.2/24 dev pb1; ip link set pb1 up; ip route add default via 10.98.0.1'"
            ))
            .ok();
            let www = w.dir.join("www");
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("index.html"), "from another host\n").unwrap();
            let _httpd = Reaped(
                Command::new("nsenter")
                    .arg(format!("--net=/proc/{pid}/ns/net"))
                    .args(["busybox", "httpd", "-f", "-p", "8000", "-h"])
                    .arg(&www)
                    .spawn()
                    .unwrap(),
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while sh("timeout 5 busybox wget -qO- http://10.98.0.2:8000/").code != 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "peer httpd never came"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            // A listener on the host side.
            let host = Http::start_on("0.0.0.0:0");
            host.serve("/hello", b"from the host\n", "");
            let ifaces = "awk 'NR>2 {sub(\":\", \"\", $1); print $1}' /proc/net/dev | sort | tr '\\n' ' ' > /ifaces";
            let df = format!(
                "FROM busybox\n\
                 RUN {ifaces} && gw=$(ip route | awk '/^default/ {{print $3}}') && wget -qO- http://$gw:{}/hello > /from-host && wget -qO- http://10.98.0.2:8000/ > /from-far\n\
                 COPY Dockerfile /\n\
                 RUN wget -qO- http://10.98.0.2:8000/ >> /from-far\n",
                host.port
            );
            let out = w.build(&df, &["-t", "bridged"]);
            out.ok();
            assert_eq!(
                w.sh("bridged", "cat /ifaces; echo; cat /from-host /from-far"),
                "eth0 lo \nfrom the host\nfrom another host\nfrom another host\n"
            );
            // --network none: only lo, nothing reachable.
            let df = format!(
                "FROM busybox\nRUN {ifaces}; timeout 5 wget -qO- http://10.98.0.2:8000/ > /r || echo unreachable > /r\n"
            );
            w.build(&df, &["-t", "isolated", "--network", "none"]).ok();
            assert_eq!(
                w.sh("isolated", "cat /ifaces; echo; cat /r"),
                "lo \nunreachable\n"
            );
            // --network host: the host's own interfaces.
            w.build(&df, &["-t", "hostnet", "--network", "host", "--no-cache"])
                .ok();
            assert_eq!(
                w.sh("hostnet", "cat /ifaces; echo; cat /r"),
                "lo pb0 \nfrom another host\n"
            );
            // A user network: the step's address is in its subnet.
            w.b(&["network", "create", "--subnet", "10.97.0.0/24", "buildnet"])
                .ok();
            w.build(
                "FROM busybox\nRUN ip -4 -o addr show eth0 | awk '{print $4}' > /addr\n",
                &["-t", "usernet", "--network", "buildnet"],
            )
            .ok();
            assert_eq!(w.sh("usernet", "cat /addr"), "10.97.0.2/24\n");
            // A failing step on the bridge releases its endpoint too.
            let out = w.build("FROM busybox\nRUN exit 4\n", &["-t", "never"]);
            assert_eq!(out.code, 1, "{}", out.stderr);
            // Interrupted while its step runs on the bridge: released all the same.
            w.file("Dockerfile", "FROM busybox\nRUN echo started; sleep 600\n");
            let mut child = build_until(&w, "started");
            assert!(
                sh("nft list tables").stdout.contains("berth-"),
                "no table while the step runs"
            );
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::SIGINT,
            )
            .unwrap();
            assert_eq!(child.wait().unwrap().code(), Some(1));
            // Killed outright: the next build finishes what it left (its step's
            // container and endpoint).
            let mut child = build_until(&w, "started");
            child.kill().unwrap();
            child.wait().unwrap();
            assert!(sh("nft list tables").stdout.contains("berth-"));
            let left: Vec<String> = std::fs::read_dir(w.runroot.join("containers"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(left.len(), 1, "{left:?}");
            w.build(
                "FROM busybox\nRUN true\n",
                &["--network", "none", "-t", "after"],
            )
            .ok();
            w.b(&["rmi", "after"]).ok();
            w.b(&["network", "rm", "buildnet"]).ok();
            drop(peer);
            // Nothing of the steps' endpoints is left: links, nftables, the record.
            netns::no_links_tables_or_endpoints_but(&w.root, "pb0");
            w.finish();
        },
    );
}
