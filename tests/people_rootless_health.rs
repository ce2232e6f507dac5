//! Restart policies and healthchecks of rootless containers: berth run by an ordinary user
//! (a test user with subordinate ranges, through `setpriv`), whose monitor restarts the
//! container in place and runs its healthcheck probes with no systemd and no privilege.
//! A probe of a rootless container cannot take the short path into the container's pid
//! namespace (entering it and coming back needs CAP_SYS_ADMIN over the monitor's own), so
//! these tests are what shows the other path runs. Each test has its own user, roots and
//! busybox root filesystem, and ends with the people face's leak audit.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::people::{audit, remove_all, TestUser, World};
use common::Out;
use serde_json::Value;

/// A world whose berth commands run as a test user of their own.
struct Rootless {
    w: World,
    u: TestUser,
    berth: PathBuf,
}

impl Rootless {
    /// `prefix`: the test user's name before the pid, different for every test of this
    /// binary (they run in parallel).
    fn new(name: &str, prefix: &str) -> Rootless {
        let w = World::new(name);
        let u = TestUser::create(prefix);
        // A copy the user may run (the build tree's directories may not be open to it).
        let berth = w.dir.join("berth");
        std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
        std::fs::create_dir_all(w.dir.join("xdg")).unwrap();
        u.own(&w.dir);
        Rootless { w, u, berth }
    }

    fn b(&self, args: &[&str]) -> Out {
        let dirs = (
            self.w.root.as_path(),
            self.w.runroot.as_path(),
            self.w.dir.as_path(),
        );
        // A child the other test's thread forked while we copied our berth holds the copy
        // open for writing until it executes, and executing the copy meanwhile fails with
        // ETXTBSY: that lasts only as long as such a fork, so a few tries get past it.
        for _ in 0..100 {
            let out = self
                .u
                .berth(&self.berth, dirs, args, Duration::from_secs(120));
            if !(out.code == 126 && out.stderr.contains("Text file busy")) {
                return out;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} stays busy", self.berth.display());
    }

    /// `run -d [flags] --rootfs ROOTFS cmd...`
    fn run_d(&self, flags: &[&str], cmd: &[&str]) {
        let mut a = flags.to_vec();
        a.extend_from_slice(&["--rootfs", self.w.rootfs()]);
        a.extend_from_slice(cmd);
        self.detach(&a);
    }

    /// `run -d ARGS...` (an image among them).
    fn detach(&self, args: &[&str]) {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        let out = self.b(&a);
        out.ok();
        assert_eq!(out.stdout.trim().len(), 64, "run -d prints the id: {out:?}");
    }

    /// The busybox root filesystem imported by the user as image `name`: a container of
    /// an image has its monitor run in the user's namespace (the layers are owned through
    /// it), one of `--rootfs --network none` outside it; both must restart and probe.
    fn import_busybox(&self, name: &str) {
        let tar = self.w.dir.join("bb.tar");
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&self.w.rootfs)
            .args(["-cf", tar.to_str().unwrap(), "."])
            .status()
            .unwrap();
        assert!(st.success(), "tar of the busybox rootfs");
        self.u.own(&tar);
        self.b(&["import", tar.to_str().unwrap(), name]).ok();
        std::fs::remove_file(&tar).unwrap();
    }

    fn inspect(&self, q: &str) -> Value {
        let out = self.b(&["inspect", q]);
        out.ok();
        out.json()[0].clone()
    }

    /// `ps -a`'s status of the container named `name`.
    fn ps_status(&self, name: &str) -> String {
        let out = self.b(&["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"]);
        out.ok();
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} not in ps -a: {}", out.stdout))
            .to_string()
    }

    /// Waits (bounded, generously: every look is a berth command on a loaded machine)
    /// until `f` holds.
    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !f() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Processes of the test user (a monitor, a container's, a probe's) still there.
    fn users_processes(&self) -> Vec<String> {
        let mut left = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            if e.file_name().to_string_lossy().parse::<i32>().is_err() {
                continue;
            }
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|u| u.parse::<u32>().ok());
            if uid == Some(self.u.uid) {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                left.push(format!(
                    "{} {}",
                    e.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                ));
            }
        }
        left
    }

    /// Every container removed with `rm -f`; then nothing of them anywhere (records,
    /// runtime state, cgroups, mounts, monitors) and no process of the user left.
    fn finish(&self) {
        let ids = remove_all(|a| self.b(a));
        audit(&self.w.dir, &self.w.root, &self.w.runroot, &ids);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = self.users_processes();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "left behind: {left:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rootless {
    /// A test that failed half-way still removes its containers (best effort), or they
    /// would run on and keep its user from being deleted; its directory stays to be looked
    /// at. The user goes after this.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.w.dir);
            return;
        }
        let out = self.b(&["ps", "-a", "-q", "--no-trunc"]);
        let mut rm = vec!["rm", "-f"];
        rm.extend(out.stdout.lines());
        if rm.len() > 2 {
            let _ = self.b(&rm);
        }
    }
}

/// The kill of a container's init from the host (its crash, as the monitor sees it).
fn crash(pid: i64) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
}

#[test]
fn rootless_restart_policies_restart_in_place_and_stop_for_good() {
    let r = Rootless::new("rlrestart", "berthrr");

    // on-failure:2: two restarts by the monitor, then it stays down with the last code.
    // Without a network (no pasta), the monitor runs as the plain user.
    r.run_d(
        &[
            "--name",
            "of2",
            "--network",
            "none",
            "--restart",
            "on-failure:2",
        ],
        &["sh", "-c", "echo ran; exit 7"],
    );
    r.until("of2 restarted twice and stayed exited", || {
        let j = r.inspect("of2");
        j["State"]["Status"] == "exited" && j["RestartCount"] == 2
    });
    let j = r.inspect("of2");
    assert_eq!(j["State"]["ExitCode"], 7, "{j}");
    assert_eq!(j["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(j["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    let logs = r.b(&["logs", "of2"]);
    logs.ok();
    assert_eq!(logs.stdout.matches("ran").count(), 3, "{}", logs.stdout);
    let st = r.ps_status("of2");
    assert!(st.starts_with("Exited (7) "), "{st}");

    // always, in a loop of failures: the count rises, `ps -a` says so.
    r.run_d(
        &["--name", "loop", "--restart", "always"],
        &["sh", "-c", "sleep 0.2; exit 3"],
    );
    r.until("loop restarted at least twice", || {
        r.inspect("loop")["RestartCount"].as_i64().unwrap() >= 2
    });
    let st = r.ps_status("loop");
    assert!(
        st.starts_with("Restarting (3) ") || st.starts_with("Up "),
        "{st}"
    );
    let before = r.inspect("loop")["RestartCount"].as_i64().unwrap();
    r.until("loop restarted once more", || {
        r.inspect("loop")["RestartCount"].as_i64().unwrap() > before
    });

    // always: back after a crash with a new process, in place; not after `stop`. Of an
    // image, so that its monitor works in the user's namespace.
    r.import_busybox("bb:1");
    r.detach(&[
        "--name",
        "al",
        "--restart",
        "always",
        "bb:1",
        "sleep",
        "4343",
    ]);
    let j = r.inspect("al");
    let (id, pid) = (j["Id"].clone(), j["State"]["Pid"].as_i64().unwrap());
    assert!(pid > 0, "{j}");
    crash(pid);
    r.until("al back with a new process", || {
        let j = r.inspect("al");
        j["State"]["Status"] == "running"
            && j["State"]["Pid"].as_i64() != Some(pid)
            && j["RestartCount"] == 1
    });
    assert_eq!(r.inspect("al")["Id"], id);
    let st = r.ps_status("al");
    assert!(st.starts_with("Up "), "{st}");
    r.b(&["stop", "-t", "1", "al"]).ok();
    let j = r.inspect("al");
    assert_eq!(j["State"]["Status"], "exited", "{j}");
    // Nothing may bring it back: a restart would come within Docker's backoff (well under
    // this on any machine), so a wrong one is seen here.
    std::thread::sleep(Duration::from_secs(3));
    let j = r.inspect("al");
    assert_eq!(j["State"]["Status"], "exited", "{j}");
    assert_eq!(j["RestartCount"], 1, "{j}");
    let st = r.ps_status("al");
    assert!(
        st.starts_with("Exited (137) ") || st.starts_with("Exited (143) "),
        "{st}"
    );

    // rm -f of the container restarting in a loop: it goes, and (at finish) nothing of it
    // or of its monitor is left.
    r.b(&["rm", "-f", "loop"]).ok();
    let gone = r.b(&["inspect", "loop"]);
    assert_eq!(gone.code, 1, "{gone:?}");
    r.finish();
}

#[test]
fn rootless_healthchecks_run_in_the_container() {
    let r = Rootless::new("rlhealth", "berthrh");
    // The probe reads the container's /tmp (its mount namespace), its own /proc/self (the
    // container's pid namespace: its /proc has no entry for a process of another one) and
    // says who it is (root of the user's namespace). A long start period keeps the
    // container `starting` however the first probes fail.
    r.run_d(
        &[
            "--name",
            "hc",
            "--health-cmd",
            "read s </proc/self/stat && cat /tmp/ok && id -u",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--health-start-period",
            "10m",
        ],
        &["sleep", "4343"],
    );
    let j = r.inspect("hc");
    assert_eq!(j["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(j["Config"]["Healthcheck"]["Retries"], 2);
    assert_eq!(j["State"]["Health"]["Status"], "starting", "{j}");
    // The probes run (and fail: no /tmp/ok yet) while it is starting.
    r.until("a failing probe logged", || {
        let h = r.inspect("hc")["State"]["Health"].clone();
        h["Log"].as_array().is_some_and(|l| !l.is_empty())
    });
    let h = r.inspect("hc")["State"]["Health"].clone();
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let first = &h["Log"][0];
    assert_eq!(first["ExitCode"], 1, "{h}");
    assert!(
        first["Output"].as_str().unwrap().contains("/tmp/ok"),
        "the probe's own error: {h}"
    );
    let st = r.ps_status("hc");
    assert!(st.ends_with("(health: starting)"), "{st}");

    // Passing: healthy, with the probe's output.
    r.b(&["exec", "hc", "sh", "-c", "echo fine >/tmp/ok"]).ok();
    r.until("hc healthy", || {
        r.inspect("hc")["State"]["Health"]["Status"] == "healthy"
    });
    let out = r.b(&["inspect", "--format", "{{.State.Health.Status}}", "hc"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "healthy");
    let h = r.inspect("hc")["State"]["Health"].clone();
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "fine\n0\n", "{h}");
    let st = r.ps_status("hc");
    assert!(st.starts_with("Up ") && st.ends_with("(healthy)"), "{st}");
    let ps = r.b(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]);
    ps.ok();
    assert_eq!(ps.stdout.trim(), "hc");
    // One probe now, from the user's own shell.
    let run = r.b(&["healthcheck", "run", "hc"]);
    assert_eq!(run.code, 0, "{run:?}");

    // Failing from now on: unhealthy after --health-retries probes in a row.
    r.b(&["exec", "hc", "rm", "/tmp/ok"]).ok();
    r.until("hc unhealthy", || {
        r.inspect("hc")["State"]["Health"]["Status"] == "unhealthy"
    });
    let h = r.inspect("hc")["State"]["Health"].clone();
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 1, "{h}");
    let st = r.ps_status("hc");
    assert!(st.ends_with("(unhealthy)"), "{st}");
    let run = r.b(&["healthcheck", "run", "hc"]);
    assert_eq!((run.code, run.stdout.trim()), (1, "unhealthy"), "{run:?}");

    // The same probe of an image's container (its monitor in the user's namespace) and
    // of one without a network (its monitor the plain user).
    r.import_busybox("bb:1");
    // Each probe leaves a process behind, which goes with it.
    let probe = "sleep 9763 & read s </proc/self/stat && cat /etc/passwd >/dev/null && id -u";
    r.detach(&[
        "--name",
        "img",
        "--health-cmd",
        probe,
        "--health-interval",
        "1s",
        "bb:1",
        "sleep",
        "4343",
    ]);
    r.run_d(
        &[
            "--name",
            "nonet",
            "--network",
            "none",
            "--health-cmd",
            probe,
            "--health-interval",
            "1s",
        ],
        &["sleep", "4343"],
    );
    for name in ["img", "nonet"] {
        r.until(&format!("{name} healthy"), || {
            r.inspect(name)["State"]["Health"]["Status"] == "healthy"
        });
        let h = r.inspect(name)["State"]["Health"].clone();
        assert_eq!(h["Log"][0]["ExitCode"], 0, "{name}: {h}");
        assert_eq!(h["Log"][0]["Output"], "0\n", "{name}: {h}");
        let run = r.b(&["healthcheck", "run", name]);
        assert_eq!(run.code, 0, "{name}: {run:?}");
        r.until(&format!("{name}: three probes logged"), || {
            r.inspect(name)["State"]["Health"]["Log"]
                .as_array()
                .is_some_and(|l| l.len() >= 3)
        });
    }
    // At most the probes under way right now have theirs (a probe's are killed when it is
    // reaped, before the next starts); the 6 and more made so far are not all there.
    r.until("the probes' leftovers killed", || {
        r.users_processes()
            .iter()
            .filter(|p| p.contains("sleep 9763"))
            .count()
            <= 2
    });

    // A probe that hangs, leaving a process behind, is killed at its timeout with what it
    // left.
    r.run_d(
        &[
            "--name",
            "hang",
            "--health-cmd",
            "sleep 9761 & sleep 9762",
            "--health-timeout",
            "500ms",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        &["sleep", "4343"],
    );
    r.until("hang unhealthy", || {
        r.inspect("hang")["State"]["Health"]["Status"] == "unhealthy"
    });
    let h = r.inspect("hang")["State"]["Health"].clone();
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    assert_eq!(
        h["Log"][0]["Output"], "Health check exceeded timeout (500ms)",
        "{h}"
    );
    // Container root is the user: what a probe left runs as the user until killed. Once
    // three probes have timed out, at most the one under way has its `sleep 9761` (each
    // is killed with its probe, before the next starts), not the three made so far.
    r.until("three probes of hang logged", || {
        r.inspect("hang")["State"]["Health"]["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 3)
    });
    r.until("the hanging probes' leftovers killed", || {
        r.users_processes()
            .iter()
            .filter(|p| p.contains("sleep 9761"))
            .count()
            <= 1
    });
    r.finish();
}
