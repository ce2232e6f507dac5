//! The systemd cgroup driver (issue 19): `--systemd-cgroup` with a `slice:prefix:name`
//! cgroupsPath (runc's face, with runc as the control) and `--cgroup-manager systemd` (the
//! people face) put the container in a transient scope with Delegate=yes, whose limits are
//! in effect, and delete removes it. The scenarios run inside systemd 252 as PID 1 of
//! private namespaces (tests/common/systemd.rs), where berth reaches systemd through its
//! private socket; without systemd the driver fails with one line and leaves nothing.

mod common;
#[path = "common/systemd.rs"]
mod systemd;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{run_with_timeout, Out, APPLETS};
use systemd::Systemd;

static N: AtomicUsize = AtomicUsize::new(0);

/// A test's own dir (outside /run, which the harness replaces) with a busybox rootfs.
struct World {
    dir: PathBuf,
    rootfs: PathBuf,
}

impl World {
    fn new(name: &str) -> World {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("berth-sdcg-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "etc", "tmp", "proc", "dev", "sys", "run"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("/bin/busybox");
        for a in APPLETS {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        World { dir, rootfs }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    /// A runc-style config.json: `sleep`, no terminal, the given cgroupsPath and resources.
    fn write_config(&self, cgroups_path: &str, resources: serde_json::Value) {
        let _ = std::fs::remove_file(self.bundle().join("config.json"));
        let o = run_with_timeout(
            Command::new(common::runtime())
                .args(["spec", "--bundle"])
                .arg(self.bundle()),
            Duration::from_secs(30),
        );
        o.ok();
        let p = self.bundle().join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!(["sleep", "1000"]);
        c["root"]["readonly"] = false.into();
        c["linux"]["cgroupsPath"] = cgroups_path.into();
        c["linux"]["resources"] = resources;
        std::fs::write(&p, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `sh -c SCRIPT` inside systemd's namespaces, its output to files (a detached container
/// keeps the stdio it was given: never our pipes).
fn sh_in(sd: &Systemd, dir: &Path, script: &str) -> Out {
    let (out, err) = (dir.join("sh.out"), dir.join("sh.err"));
    let o = sd.exec(&[
        "sh",
        "-c",
        &format!("{script} </dev/null >{} 2>{}", out.display(), err.display()),
    ]);
    Out {
        code: o.code,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default() + &o.stderr,
    }
}

/// The controllers the harness's cgroup2 subtree can hand down (the host's unified
/// hierarchy's): on a hybrid host only what v1 does not hold.
fn controllers() -> Vec<String> {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A 2 MB huge page size the kernel offers, for a hugetlb limit.
fn has_2mb_pages() -> bool {
    Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
}

/// systemd's root cgroup in the harness holds only systemd's own subtree once the
/// `unshare` that made the namespaces (its parent, in the root cgroup of the harness) is
/// moved back to where the test runs: then controllers can be handed down to the scope.
fn free_the_root(sd: &Systemd) {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", sd.pid)).unwrap();
    let ppid = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    let unified = if Path::new("/sys/fs/cgroup/unified").is_dir() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    let procs = Path::new(unified)
        .join(own.trim_start_matches('/'))
        .join("cgroup.procs");
    std::fs::write(&procs, ppid).unwrap();
}

/// The limits the test can check here, and how each shows in the scope's cgroup.
fn limits() -> (serde_json::Value, Vec<(&'static str, &'static str)>) {
    let ctrls = controllers();
    let mut r = serde_json::json!({});
    let mut want = Vec::new();
    if ctrls.iter().any(|c| c == "memory") {
        r["memory"] = serde_json::json!({"limit": 33554432});
        want.push(("memory.max", "33554432"));
    }
    if ctrls.iter().any(|c| c == "pids") {
        r["pids"] = serde_json::json!({"limit": 50});
        want.push(("pids.max", "50"));
    }
    if ctrls.iter().any(|c| c == "hugetlb") && has_2mb_pages() {
        r["hugepageLimits"] = serde_json::json!([{"pageSize": "2MB", "limit": 4194304}]);
        want.push(("hugetlb.2MB.max", "4194304"));
    }
    (r, want)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One runtime's round: run -d in `system.slice:berth:NAME`, the init in the scope, the
/// scope delegated and limited, delete removes it.
fn scope_round(sd: &Systemd, w: &World, runtime: &Path, tag: &str) {
    let name = format!("sdcg-{tag}-{}", std::process::id());
    let unit = format!("berth-{name}.scope");
    let (resources, want) = limits();
    w.write_config(&format!("system.slice:berth:{name}"), resources);
    let root = w.dir.join(format!("state-{tag}"));
    let rt = format!(
        "{} --root {} --systemd-cgroup",
        runtime.display(),
        root.display()
    );
    let o = sh_in(
        sd,
        &w.dir,
        &format!("{rt} run -d --bundle {} {name}", w.bundle().display()),
    );
    assert_eq!(o.code, 0, "{tag}: run: {o:?}");
    let state = sh_in(sd, &w.dir, &format!("{rt} state {name}"));
    assert_eq!(state.code, 0, "{tag}: {state:?}");
    let state: serde_json::Value = serde_json::from_str(&state.stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0);

    // The init is in the scope (pids and paths as systemd's namespaces see them).
    let cg = sd.exec(&["cat", &format!("/proc/{pid}/cgroup")]);
    assert!(
        cg.stdout.contains(&format!("0::/system.slice/{unit}")),
        "{tag}: the init's cgroup: {cg:?}"
    );
    assert_eq!(sd.prop(&unit, "ActiveState"), "active", "{tag}");
    assert_eq!(sd.prop(&unit, "Delegate"), "yes", "{tag}");
    assert_eq!(sd.prop(&unit, "Slice"), "system.slice", "{tag}");
    let dir = format!("/sys/fs/cgroup/system.slice/{unit}");
    for (file, value) in &want {
        let o = sd.exec(&["cat", &format!("{dir}/{file}")]);
        assert_eq!(o.stdout.trim(), *value, "{tag}: {file}: {o:?}");
    }

    // A process exec adds joins the container in its scope.
    let o = sh_in(
        sd,
        &w.dir,
        &format!("{rt} exec {name} cat /proc/self/cgroup"),
    );
    assert_eq!(o.code, 0, "{tag}: exec: {o:?}");
    let seen = sd.exec(&["cat", &format!("{dir}/cgroup.procs")]);
    assert!(
        seen.stdout.lines().any(|p| p.trim() == pid.to_string()),
        "{tag}: {seen:?}"
    );

    // update: the new limit is the scope's property and in its cgroup (where the pids
    // controller reaches the harness: not on a hybrid host, whose v1 holds it).
    if want.iter().any(|(f, _)| *f == "pids.max") {
        let o = sh_in(sd, &w.dir, &format!("{rt} update --pids-limit 77 {name}"));
        assert_eq!(o.code, 0, "{tag}: update: {o:?}");
        assert_eq!(sd.prop(&unit, "TasksMax"), "77", "{tag}");
        let o = sd.exec(&["cat", &format!("{dir}/pids.max")]);
        assert_eq!(o.stdout.trim(), "77", "{tag}: {o:?}");
    }

    // Stopped by a signal, then deleted: the scope and its cgroup are gone.
    sh_in(sd, &w.dir, &format!("{rt} kill {name} KILL")).ok();
    wait_until("the container to stop", || {
        sh_in(sd, &w.dir, &format!("{rt} state {name}"))
            .stdout
            .contains("\"stopped\"")
    });
    let o = sh_in(sd, &w.dir, &format!("{rt} delete {name}"));
    assert_eq!(o.code, 0, "{tag}: delete: {o:?}");
    wait_until("the scope to be gone", || {
        sd.prop(&unit, "LoadState") == "not-found"
    });
    assert_ne!(
        sd.exec(&["test", "-e", &dir]).code,
        0,
        "{tag}: {dir} is left"
    );
    assert!(
        sh_in(sd, &w.dir, &format!("{rt} list -q"))
            .stdout
            .trim()
            .is_empty(),
        "{tag}"
    );
}

#[test]
fn systemd_cgroup_puts_the_container_in_a_delegated_scope_removed_at_delete() {
    let w = World::new("runc-face");
    let sd = Systemd::start("sdcg-runc");
    free_the_root(&sd);
    scope_round(&sd, &w, &common::runtime(), "berth");
    // runc as the control: the same round gives the same answers.
    if Path::new("/usr/sbin/runc").exists() {
        scope_round(&sd, &w, Path::new("/usr/sbin/runc"), "runc");
    }
}

/// A scope already there (another container's, or one a crash left) is one clear error,
/// and nothing of the refused container is left.
#[test]
fn a_scope_that_exists_is_refused_and_nothing_is_left() {
    let w = World::new("exists");
    let sd = Systemd::start("sdcg-exists");
    let name = format!("sdcg-taken-{}", std::process::id());
    let unit = format!("berth-{name}.scope");
    w.write_config(&format!("system.slice:berth:{name}"), serde_json::json!({}));
    let root = w.dir.join("state");
    let rt = format!(
        "{} --root {} --systemd-cgroup",
        common::runtime().display(),
        root.display()
    );
    // The first container takes the name; a second one with the same scope is refused.
    let o = sh_in(
        &sd,
        &w.dir,
        &format!("{rt} run -d --bundle {} {name}", w.bundle().display()),
    );
    assert_eq!(o.code, 0, "{o:?}");
    let o = sh_in(
        &sd,
        &w.dir,
        &format!("{rt} run -d --bundle {} {name}-2", w.bundle().display()),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr.trim().lines().count(), 1, "{o:?}");
    assert!(o.stderr.contains(&unit), "{o:?}");
    let list = sh_in(&sd, &w.dir, &format!("{rt} list -q"));
    assert_eq!(list.stdout.trim(), name, "{list:?}");
    // The first container is untouched by the refusal.
    assert_eq!(sd.prop(&unit, "ActiveState"), "active");
    sh_in(&sd, &w.dir, &format!("{rt} delete -f {name}")).ok();
    wait_until("the scope to be gone", || {
        sd.prop(&unit, "LoadState") == "not-found"
    });

    // A cgroupsPath that is not slice:prefix:name, or names a bad slice: one line naming
    // the field, nothing made.
    for bad in ["/berth/x", "nope:berth:x", "system.slice:berth:x.slice"] {
        w.write_config(bad, serde_json::json!({}));
        let o = sh_in(
            &sd,
            &w.dir,
            &format!("{rt} run -d --bundle {} bad", w.bundle().display()),
        );
        assert_eq!(o.code, 1, "{bad}: {o:?}");
        assert_eq!(o.stderr.trim().lines().count(), 1, "{bad}: {o:?}");
        assert!(
            o.stderr.contains(&format!("cgroupsPath \\\"{bad}\\\"")),
            "{bad}: {o:?}"
        );
    }
    let list = sh_in(&sd, &w.dir, &format!("{rt} list -q"));
    assert_eq!(list.stdout.trim(), "", "{list:?}");
    assert_eq!(
        sd.ctl(&["list-units", "--all", "--no-legend", "berth-*"])
            .stdout
            .trim(),
        ""
    );
}

#[test]
fn cgroup_manager_systemd_puts_a_people_container_in_a_scope_and_rm_removes_it() {
    let w = World::new("people");
    let sd = Systemd::start("sdcg-people");
    let name = format!("sdcg-p-{}", std::process::id());
    let berth = format!(
        "{} --root {} --runroot {}",
        env!("CARGO_BIN_EXE_berth"),
        w.dir.join("root").display(),
        w.dir.join("runroot").display()
    );
    let o = sh_in(
        &sd,
        &w.dir,
        &format!(
            "{berth} --cgroup-manager systemd run -d --name {name} --rootfs {} sleep 1000",
            w.rootfs.display()
        ),
    );
    assert_eq!(o.code, 0, "{o:?}");
    let id = o.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{o:?}");
    let unit = format!("berth-{id}.scope");
    let pid = sh_in(
        &sd,
        &w.dir,
        &format!("{berth} inspect --format {{{{.State.Pid}}}} {name}"),
    );
    let pid = pid.stdout.trim().to_string();
    let cg = sd.exec(&["cat", &format!("/proc/{pid}/cgroup")]);
    assert!(
        cg.stdout.contains(&format!("0::/machine.slice/{unit}")),
        "{cg:?}"
    );
    assert_eq!(sd.prop(&unit, "Delegate"), "yes");
    // rm, without the flag: the container's record says which driver made it.
    let o = sh_in(&sd, &w.dir, &format!("{berth} rm -f {name}"));
    assert_eq!(o.code, 0, "{o:?}");
    wait_until("the scope to be gone", || {
        sd.prop(&unit, "LoadState") == "not-found"
    });
    assert_ne!(
        sd.exec(&[
            "test",
            "-e",
            &format!("/sys/fs/cgroup/machine.slice/{unit}")
        ])
        .code,
        0
    );

    // systemd is the init here: without the flag the driver is systemd (podman's
    // default, which `info` says), `--cgroup-manager cgroupfs` keeps berth's /berth/ID.
    let info = sh_in(
        &sd,
        &w.dir,
        &format!("{berth} info --format {{{{.CgroupDriver}}}}"),
    );
    assert_eq!(info.stdout.trim(), "systemd", "{info:?}");
    for (flag, want) in [
        ("", "0::/machine.slice/berth-"),
        ("--cgroup-manager cgroupfs", "0::/berth/"),
    ] {
        let o = sh_in(
            &sd,
            &w.dir,
            &format!(
                "{berth} {flag} run -d --rootfs {} sleep 1000",
                w.rootfs.display()
            ),
        );
        assert_eq!(o.code, 0, "{flag}: {o:?}");
        let id = o.stdout.trim().to_string();
        let pid = sh_in(
            &sd,
            &w.dir,
            &format!("{berth} inspect --format {{{{.State.Pid}}}} {id}"),
        );
        let cg = sd.exec(&["cat", &format!("/proc/{}/cgroup", pid.stdout.trim())]);
        assert!(cg.stdout.contains(&format!("{want}{id}")), "{flag}: {cg:?}");
        sh_in(&sd, &w.dir, &format!("{berth} rm -f {id}")).ok();
        wait_until("no berth scope left", || {
            sd.ctl(&["list-units", "--all", "--no-legend", "berth-*"])
                .stdout
                .trim()
                .is_empty()
        });
    }
}

/// No systemd here (a plain shell on this machine): one line, the face's exit code, and no
/// container, state or cgroup left.
#[test]
fn without_systemd_the_driver_fails_with_one_line_and_leaves_nothing() {
    if Path::new("/run/systemd/system").exists() {
        return; // systemd runs here: the scenarios above cover it
    }
    let w = World::new("nosd");
    let name = format!("sdcg-none-{}", std::process::id());
    w.write_config(&format!("system.slice:berth:{name}"), serde_json::json!({}));
    let root = w.dir.join("state");
    let o = run_with_timeout(
        Command::new(common::runtime())
            .arg("--root")
            .arg(&root)
            .args(["--systemd-cgroup", "run", "-d", "--bundle"])
            .arg(w.bundle())
            .arg(&name)
            .stdin(std::process::Stdio::null()),
        Duration::from_secs(60),
    );
    assert_eq!(o.code, 1, "{o:?}");
    if !common::is_runc() {
        assert_eq!(o.stderr.trim().lines().count(), 1, "{o:?}");
        assert!(
            o.stderr
                .contains("--systemd-cgroup: the systemd cgroup driver is not available"),
            "{o:?}"
        );
    }
    assert!(!root.join(&name).exists());
    for d in [
        format!("/sys/fs/cgroup/unified/system.slice/berth-{name}.scope"),
        format!("/sys/fs/cgroup/memory/system.slice/berth-{name}.scope"),
        format!("/sys/fs/cgroup/system.slice/berth-{name}.scope"),
    ] {
        assert!(!Path::new(&d).exists(), "{d}");
    }

    let (r, rr) = (w.dir.join("root"), w.dir.join("runroot"));
    let berth = |args: &[&str]| {
        run_with_timeout(
            Command::new(env!("CARGO_BIN_EXE_berth"))
                .arg("--root")
                .arg(&r)
                .arg("--runroot")
                .arg(&rr)
                .args(args),
            Duration::from_secs(60),
        )
    };
    let rootfs = w.rootfs.display().to_string();
    for cmd in ["run", "create"] {
        let o = berth(&[
            "--cgroup-manager",
            "systemd",
            cmd,
            "--name",
            &name,
            "--rootfs",
            &rootfs,
            "true",
        ]);
        assert_eq!(o.code, 125, "{cmd}: {o:?}");
        assert_eq!(o.stderr.trim().lines().count(), 1, "{cmd}: {o:?}");
        assert!(
            o.stderr
                .contains("--cgroup-manager systemd: the systemd cgroup driver is not available"),
            "{cmd}: {o:?}"
        );
    }
    assert_eq!(berth(&["ps", "-aq"]).stdout.trim(), "");
    // Commands that make nothing do not need systemd.
    berth(&["--cgroup-manager", "systemd", "ps", "-a"]).ok();
}

/// `sh -c SCRIPT` as `u` inside systemd's namespaces, with the user's runtime dir, its
/// output to files. It runs in a cgroup of the user manager's delegated subtree, as a
/// user's shell in a session would be in one of theirs: the user manager can move only
/// processes of cgroups it owns into a scope (from elsewhere it asks PID 1, over a system
/// bus the harness does not have).
fn sh_as(sd: &Systemd, u: &common::people::TestUser, dir: &Path, script: &str) -> Out {
    let (out, err) = (dir.join("user.out"), dir.join("user.err"));
    let cg = "/sys/fs/cgroup/system.slice/user-test.service/sdcg-shell";
    let inner = format!("{script} </dev/null >{} 2>{}", out.display(), err.display());
    let outer = format!(
        "mkdir -p {cg} && chown {uid}:{gid} {cg} && echo $$ > {cg}/cgroup.procs && \
         exec setpriv --reuid {uid} --regid {gid} --init-groups sh -c '{q}'",
        uid = u.uid,
        gid = u.gid,
        q = inner.replace('\'', "'\\''"),
    );
    let mut c = Command::new("nsenter");
    c.arg("-t")
        .arg(sd.pid.to_string())
        .arg("-a")
        .arg("sh")
        .arg("-c")
        .arg(outer)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("XDG_RUNTIME_DIR", dir.join("xdg"));
    let o = run_with_timeout(&mut c, Duration::from_secs(120));
    Out {
        code: o.code,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default() + &o.stderr,
    }
}

/// Rootless: the scope is made by the user's own manager (systemd --user, reached from
/// inside berth's user namespace), in its user.slice.
#[test]
fn rootless_the_scope_is_the_user_managers() {
    rootless_round(false);
}

/// The same through the user's session bus (a dbus-daemon the user manager runs, as on a
/// desktop), with the manager's private socket gone: Hello, AddMatch and the job's
/// signal through the daemon.
#[test]
fn rootless_through_the_session_bus() {
    rootless_round(true);
}

fn rootless_round(session_bus: bool) {
    let w = World::new(if session_bus { "user-bus" } else { "user" });
    let u = common::people::TestUser::create(if session_bus { "sdcgb" } else { "sdcgp" });
    let sd = Systemd::start("sdcg-user");
    let berth = w.dir.join("berth");
    std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
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
    u.own(&w.dir);
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
    if session_bus {
        std::fs::write(units.join("dbus.socket"), "[Socket]\nListenStream=%t/bus\n").unwrap();
        std::fs::write(
            units.join("dbus.service"),
            "[Unit]\nRequires=dbus.socket\n\n[Service]\nType=notify\nNotifyAccess=main\n\
             ExecStart=/usr/bin/dbus-daemon --session --address=systemd: --nofork \
             --nopidfile --systemd-activation --syslog-only\n",
        )
        .unwrap();
        u.own(&units);
    }
    let o = sd.ctl(&["start", "user-test.service"]);
    assert_eq!(o.code, 0, "{o:?}");
    wait_until("the user manager's socket", || {
        xdg.join("systemd/private").exists()
    });
    if session_bus {
        let o = sh_as(
            &sd,
            &u,
            &w.dir,
            "systemctl --user start dbus.socket dbus.service",
        );
        assert_eq!(o.code, 0, "{o:?}");
        // Once systemd is on the bus, its private socket is put out of the way.
        wait_until("systemd on the session bus", || {
            sh_as(
                &sd,
                &u,
                &w.dir,
                &format!(
                    "DBUS_SESSION_BUS_ADDRESS=unix:path={}/bus dbus-send --session \
                     --print-reply --dest=org.freedesktop.systemd1 /org/freedesktop/systemd1 \
                     org.freedesktop.DBus.Peer.Ping",
                    xdg.display()
                ),
            )
            .code
                == 0
        });
        std::fs::rename(xdg.join("systemd/private"), xdg.join("systemd/private.off")).unwrap();
    }
    let b = format!(
        "{} --root {} --runroot {}",
        berth.display(),
        w.dir.join("root").display(),
        w.dir.join("runroot").display()
    );
    let o = sh_as(
        &sd,
        &u,
        &w.dir,
        &format!(
            "{b} --cgroup-manager systemd run -d --rootfs {} sleep 1000",
            w.rootfs.display()
        ),
    );
    assert_eq!(o.code, 0, "{o:?}");
    let id = o.stdout.trim().to_string();
    let unit = format!("berth-{id}.scope");
    let pid = sh_as(
        &sd,
        &u,
        &w.dir,
        &format!("{b} inspect --format {{{{.State.Pid}}}} {id}"),
    );
    let cg = sd.exec(&["cat", &format!("/proc/{}/cgroup", pid.stdout.trim())]);
    assert!(
        cg.stdout
            .contains(&format!("/user-test.service/user.slice/{unit}")),
        "{cg:?}"
    );
    let show = |p: &str| {
        sh_as(
            &sd,
            &u,
            &w.dir,
            &format!("systemctl --user show -P {p} {unit}"),
        )
        .stdout
        .trim()
        .to_string()
    };
    assert_eq!(show("Delegate"), "yes");
    let o = sh_as(&sd, &u, &w.dir, &format!("{b} rm -f {id}"));
    assert_eq!(o.code, 0, "{o:?}");
    wait_until("the user's scope to be gone", || {
        show("LoadState") == "not-found"
    });
}
