//! berth under systemd (issue 19): foreground `run` as a `Type=notify` unit's main
//! process, `--sdnotify`, generated units and Quadlet files. The unit tests run systemd
//! 252 as PID 1 of private namespaces (tests/common/systemd.rs); the others use a fake
//! NOTIFY_SOCKET listener in a plain shell.

mod common;
#[path = "common/systemd.rs"]
mod systemd;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{run_with_timeout, Out, APPLETS};
use systemd::Systemd;

static N: AtomicUsize = AtomicUsize::new(0);

/// A test's own --root/--runroot and busybox rootfs (with testinit), outside /run.
struct World {
    dir: PathBuf,
    root: PathBuf,
    runroot: PathBuf,
    rootfs: PathBuf,
    /// systemd's pid when the test has one: berth's commands then run in its namespaces,
    /// where the monitors' pids mean what they say.
    ns: std::cell::Cell<i32>,
}

impl World {
    fn new(name: &str) -> World {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-ps-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "dev", "sys", "run", "shared"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("/bin/busybox");
        for a in APPLETS.iter().chain(["trap"].iter()) {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
        }
        std::fs::copy(common::testinit(), rootfs.join("bin/testinit")).unwrap();
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        World {
            root: dir.join("root"),
            runroot: dir.join("runroot"),
            rootfs,
            dir,
            ns: std::cell::Cell::new(0),
        }
    }

    fn berth(&self) -> String {
        env!("CARGO_BIN_EXE_berth").to_string()
    }

    /// `berth --root R --runroot RR`, as a unit's command line starts.
    fn prefix(&self) -> String {
        format!(
            "{} --root {} --runroot {}",
            self.berth(),
            self.root.display(),
            self.runroot.display()
        )
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = if self.ns.get() > 0 {
            let mut c = Command::new("nsenter");
            c.arg("-t")
                .arg(self.ns.get().to_string())
                .arg("-a")
                .arg(self.berth());
            c
        } else {
            Command::new(self.berth())
        };
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args);
        c
    }

    fn systemd(&self, name: &str) -> Systemd {
        let sd = Systemd::start(name);
        self.ns.set(sd.pid);
        sd
    }

    fn b(&self, args: &[&str]) -> Out {
        run_with_timeout(&mut self.cmd(args), Duration::from_secs(120))
    }

    fn rootfs(&self) -> String {
        self.rootfs.display().to_string()
    }

    /// The rootfs's /shared, seen from the host (--rootfs uses the dir itself).
    fn shared(&self) -> PathBuf {
        self.rootfs.join("shared")
    }

    /// The names of the containers berth knows.
    fn names(&self) -> Vec<String> {
        let o = self.b(&["ps", "-a", "--format", "{{.Names}}"]);
        o.ok();
        o.stdout.lines().map(String::from).collect()
    }

    /// A `Type=notify` service running `run ARGS` in the foreground, with the `[Service]`
    /// lines `service`.
    fn notify_unit(&self, run_args: &str, service: &str) -> String {
        format!(
            "[Unit]\nDefaultDependencies=no\n\n[Service]\nType=notify\nNotifyAccess=main\n\
             ExecStart={p} run {run_args}\nTimeoutStartSec=90\n{service}",
            p = self.prefix(),
        )
    }

    /// The `[Service]` line that removes the container `name` once the unit has stopped.
    fn rm_after(&self, name: &str) -> String {
        format!("ExecStopPost=-{} rm -f --ignore {name}\n", self.prefix())
    }

    /// A [`World::notify_unit`] that removes its container once stopped, its output in
    /// `NAME.log` and how its main process ended in `NAME.exit`.
    fn unit(&self, name: &str, run_args: &str, service: &str) -> String {
        self.notify_unit(
            run_args,
            &format!(
                "{rm}ExecStopPost=/bin/sh -c 'echo $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS > {d}/{name}.exit'\n\
                 SuccessExitStatus=143\nTimeoutStopSec=90\n\
                 StandardOutput=append:{d}/{name}.log\nStandardError=append:{d}/{name}.log\n{service}",
                rm = self.rm_after(name),
                d = self.dir.display(),
            ),
        )
    }

    /// `systemctl start`, which returns once the unit is ready.
    fn start(&self, sd: &Systemd, unit: &str, name: &str) {
        let o = sd.ctl(&["start", unit]);
        assert_eq!(o.code, 0, "{o:?}\nthe unit's output: {}", self.log(name));
    }

    /// How the unit's main process ended, as its ExecStopPost saw it (the unit itself
    /// is unloaded once inactive).
    fn exit(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.exit")))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Until the unit has ended, failed or not.
    fn until_ended(&self, sd: &Systemd, unit: &str) {
        self.until("the unit to end", || {
            matches!(sd.prop(unit, "ActiveState").as_str(), "failed" | "inactive")
        });
    }

    /// `systemctl stop`, then until berth knows no container (the unit's is gone).
    fn stop_until_removed(&self, sd: &Systemd, unit: &str) {
        sd.ctl(&["stop", unit]).ok();
        self.until("the container removed", || self.names().is_empty());
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Whatever a failed test left running (systemd, dropped first, is gone).
        self.ns.set(0);
        let ids = self.b(&["ps", "-aq"]).stdout;
        for id in ids.lines() {
            let _ = self.b(&["rm", "-f", id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn name(tag: &str) -> String {
    format!("sd-{tag}-{}", std::process::id())
}

/// A test's world under its own systemd, with the name of its container and of the
/// unit that runs it (systemd, declared after the world, is dropped first).
fn unit_world(tag: &str) -> (World, Systemd, String, String) {
    let w = World::new(tag);
    let sd = w.systemd(tag);
    let n = name(tag);
    let unit = format!("{n}.service");
    (w, sd, n, unit)
}

/// The unit's main process, as systemd says.
fn main_pid(sd: &Systemd, unit: &str) -> i32 {
    let main: i32 = sd.prop(unit, "MainPID").parse().unwrap();
    assert!(main > 0, "{unit} has no main process");
    main
}

/// The command line's first word of a process inside the harness.
fn argv0(sd: &Systemd, pid: i32) -> String {
    let cmdline = sd.exec(&["cat", &format!("/proc/{pid}/cmdline")]).stdout;
    cmdline.split('\0').next().unwrap_or("").to_string()
}

/// The journal's lines of `unit`.
fn journal(sd: &Systemd, unit: &str) -> String {
    sd.exec(&["journalctl", "-u", unit, "-o", "cat", "--no-pager"])
        .stdout
}

/// A long-running container that exits 143 on SIGTERM, as a well-behaved service does.
const SERVICE: &str = "'echo out-line; echo err-line >&2; trap \"exit 143\" TERM; \
                       while :; do sleep 0.2; done'";

#[test]
fn a_notify_unit_is_active_on_ready_with_berth_as_main_pid_and_stops_gracefully() {
    let (w, sd, n, unit) = unit_world("ready");
    // No SuccessExitStatus=143: berth dies of the SIGTERM its container died of, which
    // systemd counts as clean.
    sd.write_unit(
        &unit,
        &w.unit(
            &n,
            &format!(
                "--rm --name {n} --stop-timeout 60 --rootfs {} sh -c {SERVICE}",
                w.rootfs()
            ),
            "",
        )
        .replace("SuccessExitStatus=143\n", ""),
    );
    // start returns once systemd has READY=1 (Type=notify).
    w.start(&sd, &unit, &n);
    assert_eq!(sd.prop(&unit, "ActiveState"), "active");
    assert_eq!(
        argv0(&sd, main_pid(&sd, &unit)),
        w.berth(),
        "MainPID is not berth"
    );
    assert_eq!(w.names(), vec![n.clone()]);
    // The unit's stdio and the container's log both have the output.
    w.until("the output in the unit's stdout", || {
        let l = w.log(&n);
        l.contains("out-line") && l.contains("err-line")
    });
    let logs = w.b(&["logs", &n]);
    logs.ok();
    assert!(logs.stdout.contains("out-line"), "{logs:?}");
    assert!(logs.stderr.contains("err-line"), "{logs:?}");

    sd.ctl(&["stop", &unit]).ok();
    assert_eq!(sd.prop(&unit, "ActiveState"), "inactive");
    // The container's own end after its StopSignal (not a SIGKILL after the timeout).
    assert_eq!(w.exit(&n), "success killed TERM");
    assert!(w.names().is_empty(), "--rm left {:?}", w.names());
}

#[test]
fn kill_9_of_berth_leaves_nothing_after_exec_stop_post() {
    let (w, sd, n, unit) = unit_world("kill9");
    sd.write_unit(
        &unit,
        &w.unit(
            &n,
            &format!("--rm --name {n} --rootfs {} sleep 1000", w.rootfs()),
            "",
        ),
    );
    w.start(&sd, &unit, &n);
    let pid = w.pid(&n);
    let main = main_pid(&sd, &unit);
    sd.exec(&["kill", "-9", &main.to_string()]).ok();
    w.until_ended(&sd, &unit);
    // ExecStopPost ran (berth's rm -f, then the test's record of the end) before the unit
    // left deactivating; nothing of berth has run since to clean up for it.
    assert_eq!(w.exit(&n), "signal killed KILL");
    let comm = sd.exec(&["cat", &format!("/proc/{pid}/comm")]).stdout;
    assert_ne!(comm.trim(), "sleep", "the container's process survived");
    assert!(w.names().is_empty(), "left behind: {:?}", w.names());
}

#[test]
fn restart_on_failure_brings_a_crashing_container_back() {
    let (w, sd, n, unit) = unit_world("restart");
    let shared = w.shared();
    sd.write_unit(
        &unit,
        &w.unit(
            &n,
            &format!(
                "--replace --rm --name {n} --rootfs {} sh -c 'echo up >> /shared/starts; sleep 1; exit 3'",
                w.rootfs()
            ),
            "Restart=on-failure\nRestartSec=1\n",
        ),
    );
    w.start(&sd, &unit, &n);
    w.until("a third start", || {
        std::fs::read_to_string(shared.join("starts"))
            .unwrap_or_default()
            .lines()
            .count()
            >= 3
    });
    let restarts: u32 = sd.prop(&unit, "NRestarts").parse().unwrap();
    assert!(restarts >= 2, "NRestarts={restarts}");
    sd.ctl(&["stop", &unit]).ok();
    assert!(w.names().is_empty(), "left behind: {:?}", w.names());
}

#[test]
fn sdnotify_ignore_sends_nothing_so_a_notify_unit_never_gets_ready() {
    let (w, sd, n, unit) = unit_world("ignore");
    let text = w
        .unit(
            &n,
            &format!(
                "--rm --name {n} --sdnotify=ignore --rootfs {} sleep 1000",
                w.rootfs()
            ),
            "",
        )
        .replace("TimeoutStartSec=90", "TimeoutStartSec=3");
    sd.write_unit(&unit, &text);
    let o = sd.ctl(&["start", &unit]);
    assert_ne!(o.code, 0, "started without READY: {o:?}");
    assert_eq!(sd.prop(&unit, "Result"), "timeout");
    w.until("the container removed", || w.names().is_empty());
}

#[test]
fn sdnotify_container_relays_the_containers_ready() {
    let (w, sd, n, unit) = unit_world("relay");
    let shared = w.shared();
    sd.write_unit(
        &unit,
        &w.unit(
            &n,
            &format!(
                "--rm --name {n} --sdnotify=container --rootfs {} sh -c 'while [ ! -e /shared/go ]; do sleep 0.1; done; /bin/testinit notify \"STATUS=serving\\nREADY=1\" >/dev/null; exec sleep 1000'",
                w.rootfs()
            ),
            "",
        ),
    );
    sd.ctl(&["start", &unit, "--no-block"]).ok();
    w.until("the container running", || w.names() == vec![n.clone()]);
    // Started but not ready: the container has not said so.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sd.prop(&unit, "ActiveState"), "activating");
    std::fs::write(shared.join("go"), "").unwrap();
    sd.wait_prop(&unit, "ActiveState", "active");
    assert_eq!(sd.prop(&unit, "StatusText"), "serving");
    w.stop_until_removed(&sd, &unit);
}

#[test]
fn sdnotify_healthy_is_ready_only_once_the_healthcheck_passes() {
    let (w, sd, n, unit) = unit_world("healthy");
    let shared = w.shared();
    // The probe passes once the container has made /tmp/ready, which it does when the
    // test says so.
    sd.write_unit(
        &unit,
        &w.unit(
            &n,
            &format!(
                "--rm --name {n} --sdnotify=healthy --health-cmd 'test -e /tmp/ready' \
                 --health-interval 1s --health-retries 1000 --rootfs {} sh -c 'while [ ! -e /shared/go ]; \
                 do sleep 0.1; done; touch /tmp/ready; exec sleep 1000'",
                w.rootfs()
            ),
            "",
        ),
    );
    sd.ctl(&["start", &unit, "--no-block"]).ok();
    w.until("the container running", || w.names() == vec![n.clone()]);
    // Probes have failed: the container started, yet the unit is not ready.
    w.until("two failed probes", || {
        let o = w.b(&["inspect", "-f", "{{.State.Health.FailingStreak}}", &n]);
        o.stdout.trim().parse::<i64>().unwrap_or(0) >= 2
    });
    assert_eq!(sd.prop(&unit, "ActiveState"), "activating");
    assert_eq!(sd.prop(&unit, "StatusText"), "health: starting");
    std::fs::write(shared.join("go"), "").unwrap();
    sd.wait_prop(&unit, "ActiveState", "active");
    assert_eq!(sd.prop(&unit, "StatusText"), "health: healthy");
    let o = w.b(&["inspect", "-f", "{{.State.Health.Status}}", &n]);
    assert_eq!(o.stdout.trim(), "healthy", "{o:?}");
    assert_eq!(argv0(&sd, main_pid(&sd, &unit)), w.berth());
    w.stop_until_removed(&sd, &unit);
}

/// A fake systemd: the messages NOTIFY_SOCKET receives during `run`.
fn notifications(w: &World, args: &[&str]) -> (Out, Vec<String>) {
    let sock = w.dir.join("notify.sock");
    let _ = std::fs::remove_file(&sock);
    let l = UnixDatagram::bind(&sock).unwrap();
    l.set_nonblocking(true).unwrap();
    let mut c = w.cmd(args);
    c.env("NOTIFY_SOCKET", &sock);
    let o = run_with_timeout(&mut c, Duration::from_secs(120));
    let mut msgs = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = l.recv(&mut buf) {
        msgs.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    (o, msgs)
}

#[test]
fn plain_shell_monitor_sends_ready_only_and_container_mode_filters_mainpid() {
    let w = World::new("fake");
    let r = w.rootfs();
    // The default with NOTIFY_SOCKET set: READY=1 from berth, no MAINPID (berth is main).
    let (o, msgs) = notifications(
        &w,
        &[
            "run",
            "--rm",
            "--rootfs",
            &r,
            "sh",
            "-c",
            "echo $NOTIFY_SOCKET",
        ],
    );
    o.ok();
    assert_eq!(msgs, vec!["READY=1\n".to_string()]);
    // The caller's socket is not the container's.
    assert_eq!(o.stdout.trim(), "");
    let (o, msgs) = notifications(
        &w,
        &["run", "--rm", "--sdnotify=ignore", "--rootfs", &r, "true"],
    );
    o.ok();
    assert!(msgs.is_empty(), "{msgs:?}");
    let (o, msgs) = notifications(
        &w,
        &[
            "run",
            "--rm",
            "--sdnotify=container",
            "--rootfs",
            &r,
            "/bin/testinit",
            "notify",
            "MAINPID=1\nREADY=1\nSTATUS=hi\nFDSTORE=1",
        ],
    );
    o.ok();
    assert_eq!(msgs, vec!["READY=1\nSTATUS=hi\n".to_string()]);
    // Without NOTIFY_SOCKET the container gets none, whatever --sdnotify says.
    let o = w.b(&[
        "run",
        "--rm",
        "--sdnotify=container",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo x${NOTIFY_SOCKET}x",
    ]);
    o.ok();
    assert_eq!(o.stdout.trim(), "xx");
    // Stopped by SIGTERM under a unit (NOTIFY_SOCKET set), berth dies of the SIGTERM its
    // container died of; the shell sees 143 either way.
    let sock = w.dir.join("term.sock");
    let _l = UnixDatagram::bind(&sock).unwrap();
    let mut c = w.cmd(&[
        "run",
        "--rm",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "trap 'exit 143' TERM; echo up; while :; do sleep 0.1; done",
    ]);
    let out = w.dir.join("term.out");
    c.env("NOTIFY_SOCKET", &sock)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    w.until("the container up", || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("up")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(nix::sys::signal::Signal::SIGTERM as i32),
        "{st:?}"
    );
    // The exit status is the container's.
    let (o, _) = notifications(&w, &["run", "--rm", "--rootfs", &r, "sh", "-c", "exit 7"]);
    assert_eq!(o.code, 7);
    // healthy without a healthcheck would never be ready: refused before anything is made.
    for extra in [&[][..], &["--no-healthcheck"][..]] {
        let mut args = vec!["run", "--rm", "--name", "nohc", "--sdnotify=healthy"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--rootfs", &r, "true"]);
        let o = w.b(&args);
        o.fails_with("--sdnotify=healthy: the container has no healthcheck");
        assert_eq!(o.code, 125, "{o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    }
    w.b(&["run", "-d", "--sdnotify=container", "--rootfs", &r, "true"])
        .fails_with("--sdnotify: a detached container does not notify systemd");
    w.b(&["create", "--sdnotify=monitor", "--rootfs", &r, "true"])
        .fails_with("--sdnotify: only for a foreground run");
    assert!(w.names().is_empty(), "left behind: {:?}", w.names());
}

/// Adds lines to a unit's [Service] (the test's view of its output, as the journal is not
/// running in the harness).
fn with_service_lines(unit: &str, lines: &str) -> String {
    let (head, tail) = unit.split_once("\n[Install]").unwrap_or((unit, ""));
    let tail = if tail.is_empty() {
        String::new()
    } else {
        format!("\n[Install]{tail}")
    };
    format!("{head}\n{lines}\n{tail}")
}

const MARKED: &str = "echo started-$MARK; trap 'exit 143' TERM; while :; do sleep 0.2; done";

#[test]
fn a_generated_unit_runs_the_container_as_created() {
    let w = World::new("gen");
    let sd = w.systemd("gen");
    let n = name("gen");
    let r = w.rootfs();
    w.b(&[
        "create",
        "--name",
        &n,
        "-e",
        "MARK=gen 1",
        "--stop-timeout",
        "20",
        "--rootfs",
        &r,
        "sh",
        "-c",
        MARKED,
    ])
    .ok();
    let o = w.b(&["generate", "systemd", "--new", "--name", &n]);
    o.ok();
    assert!(o.stdout.contains("TimeoutStopSec=80"), "{}", o.stdout);
    let unit = format!("container-{n}.service");
    let log = w.dir.join(format!("{n}.log"));
    sd.write_unit(
        &unit,
        &with_service_lines(
            &o.stdout,
            &format!(
                "StandardOutput=append:{l}\nStandardError=append:{l}",
                l = log.display()
            ),
        ),
    );
    // --replace: the unit's container took the name of the created one.
    runs_marked_in_its_cgroup(&w, &sd, &unit, &n, "gen 1");
}

/// `unit`, whose container `n` runs [`MARKED`] with `MARK` set to `mark`: ready once
/// started, the only container, in the unit's cgroup (the unit has Delegate=yes), its
/// output in `n.log`, and removed once the unit is stopped.
fn runs_marked_in_its_cgroup(w: &World, sd: &Systemd, unit: &str, n: &str, mark: &str) {
    w.start(sd, unit, n);
    assert_eq!(sd.prop(unit, "ActiveState"), "active");
    assert_eq!(w.names(), vec![n.to_string()]);
    assert_eq!(
        cgroup_of(sd, w.pid(n)),
        format!("{}/container", sd.prop(unit, "ControlGroup"))
    );
    w.until("the container's output", || {
        w.log(n).contains(&format!("started-{mark}"))
    });
    w.stop_until_removed(sd, unit);
}

#[test]
fn a_quadlet_file_becomes_a_unit_that_runs_the_container() {
    let w = World::new("quadlet");
    let sd = w.systemd("quadlet");
    let n = name("quadlet");
    let qdir = w.dir.join("quadlet");
    let out = w.dir.join("generated");
    std::fs::create_dir_all(&qdir).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let log = w.dir.join(format!("{n}.log"));
    std::fs::write(
        qdir.join(format!("{n}.container")),
        format!(
            "[Unit]\nDescription=a quadlet test\n\n[Container]\nRootfs={r}\nContainerName={n}\n\
             GlobalArgs=--root {root} --runroot {runroot}\nEnvironment=\"MARK=quad let\"\n\
             Exec=sh -c \"{MARKED}\"\n\n[Service]\nStandardOutput=append:{l}\n\
             StandardError=append:{l}\n\n[Install]\nWantedBy=multi-user.target\n",
            r = w.rootfs(),
            root = w.root.display(),
            runroot = w.runroot.display(),
            l = log.display(),
        ),
    )
    .unwrap();
    // A bad file next to it: one line naming it and the key, no unit; the good one is made.
    std::fs::write(
        qdir.join("bad.container"),
        "[Container]\nImage=x\nBogus=1\n",
    )
    .unwrap();
    let gen = w.dir.join("berth-generator");
    std::os::unix::fs::symlink(w.berth(), &gen).unwrap();
    let o = run_with_timeout(
        Command::new(&gen)
            .args([&out, &w.dir, &w.dir])
            .env("QUADLET_UNIT_DIRS", &qdir),
        Duration::from_secs(60),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    assert!(
        o.stderr.contains("bad.container: [Container] Bogus"),
        "{o:?}"
    );
    assert!(!out.join("bad.service").exists());
    let unit = format!("{n}.service");
    let link = out.join("multi-user.target.wants").join(&unit);
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        PathBuf::from(format!("../{unit}"))
    );
    let text = std::fs::read_to_string(out.join(&unit)).unwrap();
    sd.write_unit(&unit, &text);
    runs_marked_in_its_cgroup(&w, &sd, &unit, &n, "quad let");
}

#[test]
fn generate_systemd_bad_input() {
    let w = World::new("genbad");
    let r = w.rootfs();
    let n = name("genbad");
    w.b(&["generate", "systemd", "--new", "nosuchctr"])
        .fails_with("nosuchctr");
    w.b(&["create", "--name", &n, "--rootfs", &r, "true"]).ok();
    w.b(&["generate", "systemd", &n]).fails_with("add --new");
    w.b(&[
        "generate",
        "systemd",
        "--new",
        "--restart-policy",
        "sometimes",
        &n,
    ])
    .fails_with("--restart-policy");
    let o = w.b(&[
        "generate",
        "systemd",
        "--new",
        "--restart-policy",
        "always",
        "-t",
        "5",
        &n,
    ]);
    o.ok();
    assert!(
        o.stdout.lines().any(|l| l == "Restart=always"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.lines().any(|l| l == "TimeoutStopSec=65"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("--stop-timeout=5"), "{}", o.stdout);
    w.b(&["rm", &n]).ok();
}

#[test]
fn the_journal_holds_the_containers_output() {
    let (w, sd, n, unit) = unit_world("journal");
    sd.journal();
    let text = w.notify_unit(
        &format!(
            "--rm --name {n} --rootfs {r} sh -c 'echo to-journal-out; \
             echo to-journal-err >&2; exec sleep 1000'",
            r = w.rootfs()
        ),
        &w.rm_after(&n),
    );
    sd.write_unit(&unit, &text);
    w.start(&sd, &unit, &n);
    w.until("the output in the journal", || {
        let j = journal(&sd, &unit);
        j.contains("to-journal-out") && j.contains("to-journal-err")
    });
    w.stop_until_removed(&sd, &unit);
}

/// `--log-driver journald`: without a journal the run is refused before anything is made
/// (one line naming the flag, 125, no container); with one, each line reaches it as
/// conmon sends it (`CONTAINER_NAME`, `CONTAINER_ID_FULL`, stdout at priority 6, stderr at
/// 3), and `logs` says the driver cannot be read, as Docker does.
#[test]
fn the_journald_log_driver_sends_each_line_to_the_journal() {
    let (w, sd, n, _) = unit_world("jd");
    let run = |cmd: &str| {
        w.b(&[
            "run",
            "-d",
            "--log-driver",
            "journald",
            "--name",
            &n,
            "--rootfs",
            &w.rootfs(),
            "sh",
            "-c",
            cmd,
        ])
    };
    let o = run("true");
    assert_eq!(o.code, 125, "{}", o.stderr);
    assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.stderr);
    assert!(o.stderr.contains("--log-driver journald"), "{}", o.stderr);
    assert!(w.names().is_empty(), "{:?}", w.names());
    sd.journal();
    w.until("the journal's socket", || {
        sd.exec(&["test", "-S", "/run/systemd/journal/socket"]).code == 0
    });
    let o = run("echo jd-out; echo jd-err >&2");
    o.ok();
    let id = o.stdout.trim().to_string();
    w.until("the container to exit", || {
        w.b(&["inspect", "--format", "{{.State.Status}}", &n])
            .stdout
            .trim()
            == "exited"
    });
    let entries = || -> Vec<serde_json::Value> {
        sd.exec(&[
            "journalctl",
            &format!("CONTAINER_NAME={n}"),
            "-o",
            "json",
            "--no-pager",
        ])
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
    };
    w.until("both lines in the journal", || entries().len() >= 2);
    let got = entries();
    let find = |msg: &str| {
        got.iter()
            .find(|e| e["MESSAGE"] == msg)
            .unwrap_or_else(|| panic!("{msg} not in the journal: {got:?}"))
            .clone()
    };
    let (out, err) = (find("jd-out"), find("jd-err"));
    assert_eq!(out["PRIORITY"], "6", "{out}");
    assert_eq!(err["PRIORITY"], "3", "{err}");
    for e in [&out, &err] {
        assert_eq!(e["CONTAINER_ID_FULL"], id.as_str(), "{e}");
        assert_eq!(e["CONTAINER_ID"], &id[..12], "{e}");
    }
    let logs = w.b(&["logs", &n]);
    assert_eq!(logs.code, 1, "{}", logs.stderr);
    logs.fails_with("configured logging driver does not support reading");
    w.b(&["rm", &n]).ok();
}

/// A container that ends at SIGTERM as a well-behaved service does.
const TRAPPING: &str = "trap 'exit 143' TERM; while :; do sleep 0.2; done";

/// berth-restart.service's ExecStart, with the test's berth, root and runroot.
fn boot_command(w: &World) -> Vec<String> {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/berth-restart.service"),
    )
    .unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line")
        .trim_start_matches('-');
    line.replace("@BERTH@", &w.prefix())
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The restart-service unit as `make install` writes it, naming the test's berth.
fn restart_unit(w: &World) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/berth-restart.service"),
    )
    .unwrap()
    .replace("@BERTH@", &w.prefix())
}

impl World {
    fn status(&self, n: &str) -> String {
        let o = self.b(&["inspect", "-f", "{{.State.Status}}", n]);
        o.ok();
        o.stdout.trim().to_string()
    }

    fn id(&self, n: &str) -> String {
        let o = self.b(&["inspect", "-f", "{{.Id}}", n]);
        o.ok();
        o.stdout.trim().to_string()
    }

    /// The container's init, as `inspect` says.
    fn pid(&self, n: &str) -> i32 {
        let o = self.b(&["inspect", "-f", "{{.State.Pid}}", n]);
        o.ok();
        o.stdout.trim().parse().unwrap()
    }

    fn monitor_pid(&self, n: &str) -> i32 {
        let mj = self
            .runroot
            .join("containers")
            .join(self.id(n))
            .join("monitor.json");
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(mj).unwrap()).unwrap();
        m["pid"].as_i64().unwrap() as i32
    }

    /// `VERB... --name n --restart policy` of a [`TRAPPING`] container, which must succeed.
    fn trapping(&self, verb: &[&str], n: &str, policy: &str) {
        let r = self.rootfs();
        let mut a = verb.to_vec();
        a.extend_from_slice(&["--name", n, "--restart", policy, "--rootfs", &r]);
        a.extend_from_slice(&["sh", "-c", TRAPPING]);
        self.b(&a).ok();
    }

    /// The names of the running containers, sorted.
    fn running(&self) -> Vec<String> {
        let o = self.b(&["ps", "--format", "{{.Names}}"]);
        o.ok();
        let mut v: Vec<String> = o.stdout.lines().map(String::from).collect();
        v.sort();
        v
    }
}

#[test]
fn after_a_reboot_the_restart_service_starts_always_and_unless_stopped_containers() {
    let w = World::new("reboot");
    for (n, p) in [
        ("always", "always"),
        ("always-stopped", "always"),
        ("unless", "unless-stopped"),
        ("unless-shutdown", "unless-stopped"),
        ("unless-stopped", "unless-stopped"),
        ("no", "no"),
        ("on-failure", "on-failure"),
    ] {
        w.trapping(&["run", "-d"], n, p);
    }
    // The user stops two of them; a shutdown's SIGTERM reaches the monitor of another.
    w.b(&["stop", "always-stopped", "unless-stopped"]).ok();
    let m = w.monitor_pid("unless-shutdown");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(m),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    w.until("the shutdown's stop", || {
        w.status("unless-shutdown") == "exited"
    });
    assert_eq!(
        w.b(&["inspect", "-f", "{{.State.ExitCode}}", "unless-shutdown"])
            .stdout
            .trim(),
        "143",
        "stopped by its StopSignal"
    );
    // The reboot: every process of the running ones gone, and the boot id recorded in
    // their state no longer this boot's.
    let up = w.running();
    assert_eq!(up, ["always", "no", "on-failure", "unless"]);
    for n in &up {
        let pid = w.pid(n);
        let mon = w.monitor_pid(n);
        let id = w.id(n);
        for p in [mon, pid] {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        w.until("the monitor gone", || common::gone(mon));
        for f in [
            w.root.join("containers").join(&id).join("state.json"),
            w.runroot.join("containers").join(&id).join("monitor.json"),
        ] {
            let text =
                std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let mut j: serde_json::Value = serde_json::from_str(&text).unwrap();
            for k in ["BootId", "boot_id"] {
                if j.get(k).is_some() {
                    j[k] = "00000000-0000-0000-0000-000000000000".into();
                }
            }
            std::fs::write(&f, serde_json::to_vec(&j).unwrap()).unwrap();
        }
    }
    assert!(w.running().is_empty(), "{:?}", w.running());
    // What berth-restart.service runs at boot.
    let cmd = boot_command(&w);
    assert!(cmd.contains(&"restart-policy=unless-stopped".to_string()));
    let o = run_with_timeout(
        Command::new(&cmd[0]).args(&cmd[1..]),
        Duration::from_secs(120),
    );
    o.ok();
    assert_eq!(
        w.running(),
        ["always", "always-stopped", "unless", "unless-shutdown"]
    );
    for n in ["unless-stopped", "no", "on-failure"] {
        assert_eq!(w.status(n), "exited", "{n}");
    }
    // Started at boot, they are ordinary containers again (a user's stop sticks).
    w.b(&["stop", "unless"]).ok();
    run_with_timeout(
        Command::new(&cmd[0]).args(&cmd[1..]),
        Duration::from_secs(120),
    )
    .ok();
    assert_eq!(w.running(), ["always", "always-stopped", "unless-shutdown"]);
}

#[test]
fn start_filter_bad_input() {
    let w = World::new("startbad");
    let r = w.rootfs();
    w.b(&[
        "create",
        "--name",
        "c",
        "--restart",
        "always",
        "--rootfs",
        &r,
        "true",
    ])
    .ok();
    for (args, msg) in [
        (
            &["start", "--filter", "restart-policy=always", "c"][..],
            "--filter: only with --all",
        ),
        (
            &["start", "--all", "--filter", "restart-policy=sometimes"][..],
            "--filter restart-policy=sometimes: not one of",
        ),
        (
            &["start", "--all", "--filter", "status=exited"][..],
            "--filter status: start filters on",
        ),
        (
            &["start", "--all", "--filter", "restart-policy"][..],
            "--filter restart-policy: expected KEY=VALUE",
        ),
    ] {
        let o = w.b(args);
        o.fails_with(msg);
        assert_eq!(o.code, 125, "{o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    }
    assert_eq!(w.status("c"), "created");
    // A filter that matches nothing starts nothing.
    w.b(&["start", "--all", "--filter", "restart-policy=no"])
        .ok();
    assert_eq!(w.status("c"), "created");
}

#[test]
fn berth_restart_service_starts_and_stops_the_containers_with_a_policy() {
    let w = World::new("restartsvc");
    let sd = w.systemd("restartsvc");
    let r = w.rootfs();
    for (n, p) in [("a", "always"), ("u", "unless-stopped"), ("n", "no")] {
        w.trapping(&["create"], n, p);
    }
    // One that cannot start must not take the others down with the unit.
    w.b(&[
        "create",
        "--name",
        "bad",
        "--restart",
        "always",
        "--rootfs",
        &r,
        "/no/such/program",
    ])
    .ok();
    let unit = "berth-restart.service";
    sd.write_unit(unit, &restart_unit(&w));
    // The [Install] section's target exists in the harness: enabling it works.
    sd.ctl(&["enable", unit]).ok();
    sd.ctl(&["start", unit]).ok();
    assert_eq!(sd.prop(unit, "ActiveState"), "active");
    assert_eq!(w.running(), ["a", "u"]);
    assert_eq!(w.status("n"), "created");
    // The monitors live in the unit's cgroup.
    let cg = sd.prop(unit, "ControlGroup");
    let mon = w.monitor_pid("a");
    let mine = sd.exec(&["cat", &format!("/proc/{mon}/cgroup")]).stdout;
    assert!(mine.lines().any(|l| l == format!("0::{cg}")), "{mine}");
    // The shutdown: systemd's SIGTERM to the monitors runs each container's stop.
    sd.ctl(&["stop", unit]).ok();
    assert_eq!(sd.prop(unit, "ActiveState"), "inactive");
    assert!(w.running().is_empty(), "{:?}", w.running());
    for n in ["a", "u"] {
        let o = w.b(&["inspect", "-f", "{{.State.ExitCode}}", n]);
        assert_eq!(o.stdout.trim(), "143", "{n}: stopped by its StopSignal");
    }
    // The next boot: both come back (a shutdown is no user's stop).
    sd.ctl(&["start", unit]).ok();
    assert_eq!(w.running(), ["a", "u"]);
    // The user stops u: at the next boot it stays stopped.
    w.b(&["stop", "u"]).ok();
    sd.ctl(&["restart", unit]).ok();
    assert_eq!(w.running(), ["a"]);
    sd.ctl(&["stop", unit]).ok();
    assert!(w.running().is_empty(), "{:?}", w.running());
}

/// The unified-hierarchy line of a process's /proc/PID/cgroup, seen inside the harness.
fn cgroup_of(sd: &Systemd, pid: i32) -> String {
    let o = sd.exec(&["cat", &format!("/proc/{pid}/cgroup")]);
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup2 line: {o:?}"))
        .to_string()
}

#[test]
fn under_delegate_yes_the_container_lives_in_the_units_cgroup() {
    let (w, sd, n, unit) = unit_world("delegate");
    sd.write_unit(
        &unit,
        &w.unit(
            &n,
            &format!(
                "--rm --name {n} --rootfs {} sh -c \"{TRAPPING}\"",
                w.rootfs()
            ),
            "Delegate=yes\n",
        ),
    );
    w.start(&sd, &unit, &n);
    let cg = sd.prop(&unit, "ControlGroup");
    assert!(cg.ends_with(&unit), "{cg}");
    let pid = w.pid(&n);
    assert_eq!(cgroup_of(&sd, pid), format!("{cg}/container"));
    let main = main_pid(&sd, &unit);
    assert_eq!(cgroup_of(&sd, main), format!("{cg}/supervisor"));
    // The container's processes are in the unit's subtree (systemd kills them with it).
    let procs = sd
        .exec(&["cat", &format!("/sys/fs/cgroup{cg}/container/cgroup.procs")])
        .stdout;
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    // No warning: the unit delegated its cgroup.
    assert!(!w.log(&n).contains("not delegated"), "{}", w.log(&n));
    sd.ctl(&["stop", &unit]).ok();
    assert_eq!(sd.prop(&unit, "ActiveState"), "inactive");
    assert_eq!(w.exit(&n), "success killed TERM");
    w.until("the container removed", || w.names().is_empty());
    let left = sd.exec(&["test", "-e", &format!("/sys/fs/cgroup{cg}")]);
    assert_ne!(left.code, 0, "the unit's cgroup is left");
}

#[test]
fn without_delegate_the_container_runs_and_the_journal_says_why_once() {
    let (w, sd, n, unit) = unit_world("nodelegate");
    sd.journal();
    // A restart in place creates the container again: still one warning.
    let text = w.notify_unit(
        &format!(
            "--restart on-failure:1 --name {n} --rootfs {r} sh -c \
             'echo ran >> /shared/runs; [ $(wc -l < /shared/runs) -ge 2 ] || exit 3; exec sleep 1000'",
            r = w.rootfs()
        ),
        &w.rm_after(&n),
    );
    sd.write_unit(&unit, &text);
    w.start(&sd, &unit, &n);
    assert_eq!(sd.prop(&unit, "ActiveState"), "active");
    w.until("the restart in place", || {
        std::fs::read_to_string(w.shared().join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
            >= 2
            && w.status(&n) == "running"
    });
    let pid = w.pid(&n);
    let id = w.id(&n);
    assert_eq!(cgroup_of(&sd, pid), format!("/berth/{id}"));
    w.until("the warning in the journal", || {
        journal(&sd, &unit).contains("not delegated")
    });
    let j = journal(&sd, &unit);
    let lines: Vec<&str> = j.lines().filter(|l| l.contains("not delegated")).collect();
    assert_eq!(lines.len(), 1, "{j}");
    assert!(lines[0].contains("Delegate=yes"), "{j}");
    w.stop_until_removed(&sd, &unit);
}

/// `systemctl --user ARGS` as `u`, inside the harness, for the user manager whose
/// runtime dir is `xdg`.
fn user_ctl(
    sd: &Systemd,
    u: &common::people::TestUser,
    xdg: &std::path::Path,
    args: &[&str],
) -> Out {
    let mut c = Command::new("nsenter");
    c.arg("-t")
        .arg(sd.pid.to_string())
        .arg("-a")
        .arg("setpriv")
        .args([
            "--reuid",
            &u.uid.to_string(),
            "--regid",
            &u.gid.to_string(),
            "--init-groups",
        ])
        .arg("env")
        .arg(format!("XDG_RUNTIME_DIR={}", xdg.display()))
        .arg("systemctl")
        .arg("--user")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    run_with_timeout(&mut c, Duration::from_secs(120))
}

#[test]
fn rootless_under_a_user_manager() {
    let w = World::new("user");
    let u = common::people::TestUser::create("berthsd");
    let sd = w.systemd("user");
    // The user's own copy of berth, its units and runtime dir, in a dir it owns.
    let berth = w.dir.join("berth");
    std::fs::copy(w.berth(), &berth).unwrap();
    let xdg = w.dir.join("xdg");
    let units = w.dir.join("userunits");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::create_dir_all(&units).unwrap();
    std::fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for t in [
        "default.target",
        "basic.target",
        "sockets.target",
        "timers.target",
        "paths.target",
        "shutdown.target",
        "exit.target",
    ] {
        std::fs::write(units.join(t), "[Unit]\nDescription=test\n").unwrap();
    }
    let n = name("user");
    let prefix = format!(
        "{} --root {} --runroot {}",
        berth.display(),
        w.root.display(),
        w.runroot.display()
    );
    let log = w.dir.join(format!("{n}.log"));
    std::fs::write(
        units.join(format!("{n}.service")),
        format!(
            "[Service]\nType=notify\nNotifyAccess=main\n\
             ExecStart={prefix} run --rm --name {n} --rootfs {r} sh -c \"cat /proc/self/uid_map; {TRAPPING}\"\n\
             ExecStopPost=-{prefix} rm -f --ignore {n}\nTimeoutStartSec=90\nTimeoutStopSec=90\n\
             StandardOutput=append:{l}\nStandardError=append:{l}\n",
            r = w.rootfs(),
            l = log.display(),
        ),
    )
    .unwrap();
    u.own(&w.dir);
    // The user manager, as user@.service runs it (without PAM, absent here).
    sd.write_unit(
        "user-test.service",
        &format!(
            "[Unit]\nDefaultDependencies=no\n\n[Service]\nUser={uid}\nGroup={gid}\nType=notify\n\
             ExecStart=/lib/systemd/systemd --user\nDelegate=yes\nKillMode=mixed\n\
             Environment=XDG_RUNTIME_DIR={x} HOME={h} SYSTEMD_UNIT_PATH={units}\n",
            uid = u.uid,
            gid = u.gid,
            x = xdg.display(),
            h = w.dir.display(),
            units = units.display(),
        ),
    );
    let o = sd.ctl(&["start", "user-test.service"]);
    assert_eq!(
        o.code,
        0,
        "{o:?}\n{}",
        sd.ctl(&["status", "--no-pager", "user-test.service"])
            .stdout
    );
    let unit = format!("{n}.service");
    let o = user_ctl(&sd, &u, &xdg, &["start", &unit]);
    assert_eq!(
        o.code,
        0,
        "{o:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let show = |p: &str| {
        user_ctl(&sd, &u, &xdg, &["show", "-P", p, &unit])
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(show("ActiveState"), "active");
    let main: i32 = show("MainPID").parse().unwrap();
    let cmdline = sd.exec(&["cat", &format!("/proc/{main}/cmdline")]);
    assert_eq!(
        cmdline.stdout.split('\0').next(),
        berth.to_str(),
        "{cmdline:?} {}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        user_ctl(&sd, &u, &xdg, &["status", "--no-pager", &unit]).stdout
    );
    // The container's root is the user.
    w.until("the container's uid map", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.split_whitespace().take(3).collect::<Vec<_>>() == ["0", &u.uid.to_string(), "1"]
            })
    });
    // The unit has no Delegate=yes: one line says where the container's cgroup is.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(text.matches("is not delegated").count(), 1, "{text}");
    let o = user_ctl(&sd, &u, &xdg, &["stop", &unit]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(show("ActiveState"), "inactive");
    let o = u.berth(
        &berth,
        (&w.root, &w.runroot, &w.dir),
        &["ps", "-aq"],
        Duration::from_secs(60),
    );
    o.ok();
    assert_eq!(o.stdout, "", "--rm left a container");
    // systemd, then the user manager with it, end before the user is removed.
    drop(sd);
}

#[test]
fn under_delegate_yes_kill_9_of_berth_takes_the_container_with_the_unit() {
    let (w, sd, n, unit) = unit_world("delegate9");
    // No ExecStopPost: systemd alone ends what is left in the unit's cgroup.
    sd.write_unit(
        &unit,
        &w.notify_unit(
            &format!("--name {n} --rootfs {} sleep 1000", w.rootfs()),
            "Delegate=yes\nKillMode=mixed\n",
        ),
    );
    w.start(&sd, &unit, &n);
    let pid = w.pid(&n);
    let cg = sd.prop(&unit, "ControlGroup");
    assert_eq!(cgroup_of(&sd, pid), format!("{cg}/container"));
    let main = main_pid(&sd, &unit);
    sd.exec(&["kill", "-9", &main.to_string()]).ok();
    w.until_ended(&sd, &unit);
    w.until("the container's process gone", || {
        let comm = sd.exec(&["cat", &format!("/proc/{pid}/comm")]).stdout;
        comm.trim() != "sleep"
    });
    // berth notices its monitor died: the container reads as exited.
    assert_eq!(w.status(&n), "exited");
    w.b(&["rm", &n]).ok();
    assert!(w.names().is_empty());
}
