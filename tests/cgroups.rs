//! cgroups on this host's layout: limits written before the init runs, device rules,
//! update, pause/resume, ps, events, and nothing left behind at delete.

mod common;
use common::*;
use serde_json::json;

fn with_mknod(v: &mut serde_json::Value) {
    let caps = json!(["CAP_MKNOD", "CAP_KILL"]);
    v["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
}

#[test]
fn device_rules_are_enforced() {
    let c = Ctx::new("devrules");
    let script = "mknod /dev/k c 10 229 && echo mknod-ok; (true </dev/k) 2>/dev/null && echo open-ok || echo open-denied; \
        true </dev/null && echo null-ok";
    // Deny-all plus the defaults (what podman sends): mknod yes, open no.
    let out = c.probe("deny", &["sh", "-c", script], with_mknod);
    assert!(
        out.contains("mknod-ok") && out.contains("open-denied") && out.contains("null-ok"),
        "{out}"
    );
    // An explicit allow after the deny-all opens it.
    let out = c.probe("allow", &["sh", "-c", script], |v| {
        with_mknod(v);
        v["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
        ]);
    });
    assert!(out.contains("open-ok"), "{out}");
    c.finish();
}

fn cg_file(c: &Ctx, id: &str, ctrl: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}{}/{file}", c.cgroup_path(id)))
        .unwrap_or_else(|e| panic!("{ctrl}/{file}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn limits_are_in_place_before_the_init_runs() {
    let c = Ctx::new("limits");
    let out = c.probe(
        "l",
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
             /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares",
        ],
        |v| {
            v["linux"]["resources"]["memory"] = json!({"limit": 67108864});
            v["linux"]["resources"]["pids"] = json!({"limit": 32});
            v["linux"]["resources"]["cpu"] =
                json!({"quota": 20000, "period": 100000, "shares": 512});
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["67108864", "32", "20000", "512"], "{out}");
    c.finish();
}

#[test]
fn memory_limit_oom_kills_with_137() {
    let c = Ctx::new("oom");
    let id = c.id("o");
    let mut b = c.bundle_for(
        &id,
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
    );
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 67108864});
    let out = c.run(&b, &id);
    assert_eq!(out.code, 137, "{}", out.stderr);
    c.finish();
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let c = Ctx::new("pids");
    let id = c.id("p");
    // busybox sh gives up at the first failed fork; the sleeps die with the init.
    let script = "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo all-forked";
    let mut b = c.bundle_for(&id, &["sh", "-c", script]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 10});
    let out = c.run(&b, &id);
    assert!(
        out.stderr.contains("can't fork") && !out.stdout.contains("all-forked"),
        "forks were not refused: {out:?}"
    );
    c.finish();
}

#[test]
fn unmounted_controller_is_a_clear_error() {
    let c = Ctx::new("noctrl");
    let id = c.id("n");
    let mut b = c.bundle_for(&id, &["true"]);
    b.config["linux"]["resources"]["network"] = json!({"classID": 1048577});
    b.write();
    let out = c.rt(&["create", "--bundle", b.path(), &id]);
    assert_ne!(out.code, 0);
    if !is_runc() && !std::path::Path::new("/sys/fs/cgroup/net_cls").exists() {
        assert!(
            out.stderr
                .contains("linux.resources.network: the net_cls cgroup controller is not mounted"),
            "{}",
            out.stderr
        );
    }
    c.audit();
    c.finish();
}

#[test]
fn update_pause_resume_ps_events() {
    let c = Ctx::new("upd");
    let id = c.id("u");
    let mut b = c.bundle_for(&id, &["sleep", "60"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 32});
    let pid = c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    c.wait_status(&id, "running");

    c.rt(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "-1",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "100000",
        "--cpu-share",
        "256",
        &id,
    ])
    .ok();
    assert_eq!(
        cg_file(&c, &id, "memory", "memory.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(cg_file(&c, &id, "pids", "pids.max"), "20");
    assert_eq!(cg_file(&c, &id, "cpu", "cpu.cfs_quota_us"), "30000");
    assert_eq!(cg_file(&c, &id, "cpu", "cpu.shares"), "256");
    // --resources from a file, merged with what is in force.
    let res = c.dir.join("res.json");
    std::fs::write(
        &res,
        r#"{"pids": {"limit": 12}, "memory": {"limit": 100663296}}"#,
    )
    .unwrap();
    c.rt(&["update", "--resources", res.to_str().unwrap(), &id])
        .ok();
    assert_eq!(cg_file(&c, &id, "pids", "pids.max"), "12");
    assert_eq!(
        cg_file(&c, &id, "memory", "memory.limit_in_bytes"),
        "100663296"
    );
    assert_eq!(cg_file(&c, &id, "cpu", "cpu.cfs_quota_us"), "30000");
    // A bad value is refused with the flag named, and changes nothing.
    let out = c.rt(&["update", "--memory", "lots", &id]);
    assert_ne!(out.code, 0);
    if !is_runc() {
        assert!(
            out.stderr.contains("--memory: invalid size"),
            "{}",
            out.stderr
        );
    }

    c.rt(&["pause", &id]).ok();
    assert_eq!(c.status(&id), "paused");
    assert_eq!(cg_file(&c, &id, "freezer", "freezer.state"), "FROZEN");
    c.rt(&["resume", &id]).ok();
    assert_eq!(c.status(&id), "running");
    assert_eq!(cg_file(&c, &id, "freezer", "freezer.state"), "THAWED");

    let ps = c.rt(&["ps", "--format", "json", &id]).ok().json();
    assert_eq!(ps, json!([pid]));
    let ev = c.rt(&["events", "--stats", &id]).ok().json();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["current"], 1);
    assert!(
        ev["data"]["memory"]["usage"]["limit"].as_u64() == Some(100663296),
        "{ev}"
    );

    c.rt(&["kill", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    let out = c.rt(&["update", "--pids-limit", "5", &id]);
    assert_ne!(out.code, 0, "update of a stopped container");
    c.rt(&["delete", &id]).ok();
    c.finish();
}

/// A private mount namespace where the v1 hierarchies are gone and the cgroup2 hierarchy
/// is mounted at /sys/fs/cgroup: a pure cgroup v2 host, as most users have.
struct V2View {
    holder: std::process::Child,
}

impl V2View {
    fn available() -> bool {
        std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
            || std::path::Path::new("/sys/fs/cgroup/cgroup.procs").exists()
    }

    fn new() -> V2View {
        let setup = "set -e; for m in $(awk '$5 ~ \"^/sys/fs/cgroup/\" {print $5}' /proc/self/mountinfo | sort -r); do umount $m; done; \
            if ! grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts; then umount /sys/fs/cgroup 2>/dev/null || true; mount -t cgroup2 none /sys/fs/cgroup; fi; \
            echo ready; exec sleep 600";
        let mut holder = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", setup])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        V2View { holder }
    }

    /// The runtime, run in the view.
    fn rt(&self, c: &Ctx, args: &[&str]) -> Out {
        let mut cmd = std::process::Command::new("nsenter");
        cmd.args(["-t", &self.holder.id().to_string(), "-m", "--"])
            .arg(runtime());
        cmd.arg("--root").arg(&c.root).args(args);
        run_with_timeout(&mut cmd, std::time::Duration::from_secs(30))
    }
}

impl Drop for V2View {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A pure cgroup v2 host, seen from a private mount namespace where the v1 hierarchies are
/// gone and the cgroup2 hierarchy is mounted at /sys/fs/cgroup: freeze, kill and the eBPF
/// device program are then berth's only means, as on most users' machines.
#[test]
fn pure_v2_view() {
    if !V2View::available() {
        return;
    }
    let c = Ctx::new("v2view");
    let view = V2View::new();
    let rt = |args: &[&str]| view.rt(&c, args);
    let id = c.id("c");
    let outdir = c.dir.join("out");
    std::fs::create_dir_all(&outdir).unwrap();
    let mut b = c.bundle_for(&id, &["sh", "-c", "mknod /dev/k c 10 229; (true </dev/k) 2>/dev/null && echo open-ok >/out/r || echo open-denied >/out/r; sleep 60"]);
    with_mknod(&mut b.config);
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/out", "type": "bind", "source": outdir, "options": ["rbind", "rw"]}));
    b.write();
    let out = rt(&["create", "--bundle", b.path(), &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let state: serde_json::Value = serde_json::from_str(&rt(&["state", &id]).stdout).unwrap();
    c.track_pid(state["pid"].as_i64().unwrap() as i32);
    let v2dir = format!("/sys/fs/cgroup/unified{}", c.cgroup_path(&id));
    // Before start the init sits in the cgroup2 directory, alone (after start its shell forks).
    let procs = std::fs::read_to_string(format!("{v2dir}/cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), state["pid"].to_string());
    rt(&["start", &id]).ok();
    // Only the eBPF device program stands between the container and /dev/fuse here.
    assert_eq!(c.wait_line(&outdir.join("r")), "open-denied");
    if !is_runc() {
        rt(&["pause", &id]).ok();
        assert_eq!(
            std::fs::read_to_string(format!("{v2dir}/cgroup.freeze"))
                .unwrap()
                .trim(),
            "1"
        );
        let st: serde_json::Value = serde_json::from_str(&rt(&["state", &id]).stdout).unwrap();
        assert_eq!(st["status"], "paused");
        rt(&["resume", &id]).ok();
        assert_eq!(
            std::fs::read_to_string(format!("{v2dir}/cgroup.freeze"))
                .unwrap()
                .trim(),
            "0"
        );
        let ev: serde_json::Value =
            serde_json::from_str(&rt(&["events", "--stats", &id]).stdout).unwrap();
        assert_eq!(ev["type"], "stats");
        rt(&["kill", "--all", &id, "KILL"]).ok();
    } else {
        rt(&["kill", &id, "KILL"]).ok();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let st: serde_json::Value = serde_json::from_str(&rt(&["state", &id]).stdout).unwrap();
        if st["status"] == "stopped" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not stopped: {st}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rt(&["delete", &id]).ok();
    assert!(
        !std::path::Path::new(&v2dir).exists(),
        "{v2dir} left behind"
    );
    drop(view);
    c.finish();
}

/// `exec` into a container whose cgroup has controllers enabled for its children (the
/// container moved its init to a child and wrote `cgroup.subtree_control`, as systemd or
/// docker-in-docker do) lands in a `berth-exec` leaf; delete removes that leaf and the
/// container's own child before the container's cgroup.
#[test]
fn delete_removes_the_exec_leaf_below_a_subtree_control_cgroup() {
    if !V2View::available() {
        return;
    }
    let c = Ctx::new("v2exec");
    let view = V2View::new();
    let rt = |args: &[&str]| view.rt(&c, args);
    let id = c.id("c");
    let mut b = c.bundle_for(&id, &["sleep", "60"]);
    // A hugetlb limit makes the runtime enable hugetlb down to the container's cgroup.
    b.config["linux"]["resources"]["hugepageLimits"] =
        json!([{"pageSize": "2MB", "limit": 4194304}]);
    b.write();
    let out = rt(&["create", "--bundle", b.path(), &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let state: serde_json::Value = serde_json::from_str(&rt(&["state", &id]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    c.track_pid(pid);
    rt(&["start", &id]).ok();
    let v2dir = format!("/sys/fs/cgroup/unified{}", c.cgroup_path(&id));
    std::fs::create_dir(format!("{v2dir}/init")).unwrap();
    std::fs::write(format!("{v2dir}/init/cgroup.procs"), pid.to_string()).unwrap();
    std::fs::write(format!("{v2dir}/cgroup.subtree_control"), "+hugetlb").unwrap();
    let out = rt(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    if !is_runc() {
        assert!(out.stdout.contains("/berth-exec"), "{}", out.stdout);
    }
    rt(&["kill", &id, "KILL"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    }) {
        assert!(std::time::Instant::now() < deadline, "init not killed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = rt(&["delete", &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !std::path::Path::new(&v2dir).exists(),
        "{v2dir} left behind"
    );
    drop(view);
    c.finish();
}

/// `events` streams an "oom" record when the kernel OOM-kills a process of the container
/// (here a child of the init, which lives on), as runc's events do.
#[test]
fn events_report_oom_kills() {
    use std::io::BufRead;
    let c = Ctx::new("oomev");
    let id = c.id("e");
    let ready = "/tmp/oom-armed";
    let script = format!(
        "while [ ! -e {ready} ]; do sleep 0.05; done; \
         dd if=/dev/zero of=/dev/null bs=200M count=1; sleep 30"
    );
    let mut b = c.bundle_for(&id, &["sh", "-c", &script]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 67108864});
    b.config["root"]["readonly"] = json!(false);
    let pid = c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    let mut ev = std::process::Command::new(runtime())
        .arg("--root")
        .arg(&c.root)
        .args(["events", "--interval", "100ms", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(ev.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // The stream counts OOM kills from before its first record: the OOM must come after
    // that record, not after a guess at how long a loaded machine takes to get there.
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("events printed nothing");
    let mut seen = vec![first];
    std::fs::write(b.rootfs().join(ready.trim_start_matches('/')), "").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let got = loop {
        match rx.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(l) => {
                let v: serde_json::Value = serde_json::from_str(&l).unwrap();
                if v["type"] == "oom" {
                    assert_eq!(v["id"], id.as_str());
                    break true;
                }
                seen.push(l);
            }
            Err(_) if std::time::Instant::now() > deadline => break false,
            Err(_) => {}
        }
    };
    // The init survived its child's OOM kill.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    c.rt(&["kill", &id, "KILL"]).ok();
    let _ = ev.kill();
    let _ = ev.wait();
    c.wait_status(&id, "stopped");
    c.rt(&["delete", &id]).ok();
    assert!(got, "no oom event in {seen:?}");
    c.finish();
}

/// Bad `linux.resources` values: one clear line naming the field, a non-zero exit, and no
/// cgroup or state left behind.
#[test]
fn bad_resources_are_refused_naming_the_field() {
    let c = Ctx::new("badres");
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "cpus",
            json!({"cpu": {"cpus": "0,1000"}}),
            "linux.resources.cpu.cpus: ",
        ),
        (
            "cpusyn",
            json!({"cpu": {"cpus": "0-x"}}),
            "linux.resources.cpu.cpus: ",
        ),
        (
            "mems",
            json!({"cpu": {"mems": "7"}}),
            "linux.resources.cpu.mems: ",
        ),
        (
            "pidsneg",
            json!({"pids": {"limit": -5}}),
            "linux.resources.pids.limit: ",
        ),
        (
            "memneg",
            json!({"memory": {"limit": -2}}),
            "linux.resources.memory.limit: ",
        ),
        (
            "pidsbig",
            json!({"pids": {"limit": 9223372036854775808u64}}),
            "pids.limit",
        ),
        (
            "shares",
            json!({"cpu": {"shares": 18446744073709551616.0}}),
            "cpu.shares",
        ),
        (
            "hugeneg",
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": -3}]}),
            "linux.resources.hugepageLimits.limit: ",
        ),
        (
            "unified",
            json!({"unified": {"foo.bar": "1"}}),
            "linux.resources.unified.foo.bar: ",
        ),
        (
            "unesc",
            json!({"unified": {"../cgroup.procs": "1"}}),
            "linux.resources.unified.../cgroup.procs: ",
        ),
    ];
    for (name, res, want) in cases {
        if is_runc() && name == "pidsneg" {
            continue; // runc makes it max (a deliberate difference, README)
        }
        let id = c.id(name);
        let mut b = c.bundle_for(&id, &["true"]);
        b.config["linux"]["resources"] = res;
        b.write();
        let out = c.rt(&["create", "--bundle", b.path(), &id]);
        assert_ne!(out.code, 0, "{name}");
        if !is_runc() {
            assert!(out.stderr.contains(want), "{name}: {}", out.stderr);
            assert_eq!(
                out.stderr.trim().lines().count(),
                1,
                "{name}: {}",
                out.stderr
            );
        }
        c.audit();
    }
    c.finish();
}

/// On cgroup v2 a `unified` key must name an interface file of the container's cgroup.
#[test]
fn unknown_unified_key_is_refused_on_v2() {
    if !V2View::available() {
        return;
    }
    let c = Ctx::new("v2unified");
    let view = V2View::new();
    for (name, key) in [("foo", "foo.bar"), ("esc", "../cgroup.procs")] {
        let id = c.id(name);
        let mut b = c.bundle_for(&id, &["true"]);
        b.config["linux"]["resources"]["unified"] = json!({ key: "1" });
        b.write();
        let out = view.rt(&c, &["create", "--bundle", b.path(), &id]);
        assert_ne!(out.code, 0, "{name}");
        if !is_runc() {
            let want = format!("linux.resources.unified.{key}: ");
            assert!(out.stderr.contains(&want), "{name}: {}", out.stderr);
            assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        }
        c.audit();
    }
    drop(view);
    c.finish();
}

/// `create` refuses a cgroup that already has processes or is frozen, and leaves that
/// cgroup (which it did not create) in place; an empty pre-existing cgroup is used and,
/// as with runc, removed by `delete` with the container (bats update.bats prepares the
/// container's cgroup and counts on it).
#[test]
fn create_refuses_busy_or_frozen_cgroups_and_delete_removes_a_prepared_one() {
    let c = Ctx::new("precg");
    let pre = |id: &str, ctrl: &str| {
        let d = std::path::PathBuf::from(format!("/sys/fs/cgroup/{ctrl}{}", c.cgroup_path(id)));
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let try_create = |id: &str| {
        let b = c.bundle_for(id, &["sleep", "60"]);
        b.write();
        let out = c.rt(&["create", "--bundle", b.path(), id]);
        if out.code == 0 {
            c.track_pid(c.state(id)["pid"].as_i64().unwrap() as i32);
            c.rt(&["delete", "--force", id]);
            c.reap_tracked();
        }
        out
    };

    // Processes: a sleep of the test's own in the container's pids cgroup.
    let id = c.id("busy");
    let busy = pre(&id, "pids");
    let mut sleep = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::write(busy.join("cgroup.procs"), sleep.id().to_string()).unwrap();
    let out = try_create(&id);
    let _ = sleep.kill();
    let _ = sleep.wait();
    // runc 1.1 creates the container there (a deliberate difference, README).
    if !is_runc() {
        assert_ne!(out.code, 0, "created in a cgroup with processes");
        assert!(
            out.stderr
                .contains("container's cgroup is not empty: 1 process(es) found"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(busy.to_str().unwrap()),
            "{}",
            out.stderr
        );
    }
    assert!(busy.exists(), "the pre-existing cgroup was removed");
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/memory{}", c.cgroup_path(&id))).exists(),
        "the cgroups berth made were left"
    );
    std::fs::remove_dir(&busy).unwrap();

    // Frozen: a v1 freezer cgroup set FROZEN before the create, refused in runc's words
    // (bats cgroups.bats "should refuse pre-existing frozen cgroup").
    {
        let id = c.id("frozen");
        let frozen = pre(&id, "freezer");
        std::fs::write(frozen.join("freezer.state"), "FROZEN").unwrap();
        let out = try_create(&id);
        assert_ne!(out.code, 0, "created in a frozen cgroup");
        assert!(
            out.stderr
                .contains("container's cgroup unexpectedly frozen"),
            "{}",
            out.stderr
        );
        assert!(
            frozen.exists(),
            "the pre-existing frozen cgroup was removed"
        );
        std::fs::write(frozen.join("freezer.state"), "THAWED").unwrap();
        // The pre-existing one (and anything a refused create may have left for the id).
        for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ =
                std::fs::remove_dir(ctrl.path().join(c.cgroup_path(&id).trim_start_matches('/')));
        }
    }
    c.audit();

    // Empty: used, and gone with the container.
    let id = c.id("empty");
    let empty = pre(&id, "memory");
    let b = c.bundle_for(&id, &["sleep", "60"]);
    let pid = c.create(&b, &id);
    let procs = std::fs::read_to_string(empty.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    c.rt(&["kill", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    c.rt(&["delete", &id]).ok();
    assert!(!empty.exists(), "delete left the container's cgroup");
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/pids{}", c.cgroup_path(&id))).exists(),
        "delete left the cgroups berth made"
    );
    let _ = std::fs::remove_dir(&empty);
    c.finish();
}

/// The leak audit fails on any cgroup left below the test's parent, not only on the
/// containers' own leaves.
#[test]
fn audit_fails_on_a_leftover_child_cgroup() {
    let c = Ctx::new("auditcg");
    let parent = std::path::PathBuf::from(format!("/sys/fs/cgroup/pids/berth-it-{}", c.name));
    let stray = parent.join("stray");
    std::fs::create_dir_all(&stray).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.audit()));
    let _ = std::fs::remove_dir(&stray);
    let msg = r
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("cgroups left behind"), "audit passed: {msg:?}");
    c.finish();
    assert!(!parent.exists());
}

/// runc's other update flags and stdin resources, pause of a created container (runc
/// allows it: the status is paused, then created again), and ps in table form with
/// arguments passed to ps(1).
#[test]
fn update_flags_stdin_pause_created_and_ps_table() {
    let c = Ctx::new("upd2");
    let id = c.id("u");
    let mut b = c.bundle_for(&id, &["sleep", "60"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    let pid = c.create(&b, &id);

    c.rt(&["pause", &id]).ok();
    assert_eq!(c.status(&id), "paused");
    assert_eq!(cg_file(&c, &id, "freezer", "freezer.state"), "FROZEN");
    c.rt(&["start", &id]).fails_with("paused");
    c.rt(&["resume", &id]).ok();
    assert_eq!(c.status(&id), "created");
    c.rt(&["start", &id]).ok();
    c.wait_status(&id, "running");

    c.rt(&[
        "update",
        "--memory-reservation",
        "32m",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        // runc spells it --cpu-share; berth takes both.
        if is_runc() {
            "--cpu-share"
        } else {
            "--cpu-shares"
        },
        "512",
        &id,
    ])
    .ok();
    assert_eq!(
        cg_file(&c, &id, "memory", "memory.soft_limit_in_bytes"),
        "33554432"
    );
    assert_eq!(cg_file(&c, &id, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg_file(&c, &id, "cpuset", "cpuset.mems"), "0");
    assert_eq!(cg_file(&c, &id, "cpu", "cpu.shares"), "512");
    // `--resources -` reads the JSON from stdin.
    let mut child = std::process::Command::new(runtime())
        .arg("--root")
        .arg(&c.root)
        .args(["update", "--resources", "-", &id])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(br#"{"memory": {"limit": 83886080}, "pids": {"limit": 7}}"#)
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(
        cg_file(&c, &id, "memory", "memory.limit_in_bytes"),
        "83886080"
    );
    assert_eq!(cg_file(&c, &id, "pids", "pids.max"), "7");

    // Table: ps(1)'s header and the init's line; extra arguments go to ps(1).
    let table = c.rt(&["ps", &id]).ok().stdout.clone();
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    assert!(
        table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().any(|w| w == pid.to_string())),
        "{table}"
    );
    let custom = c.rt(&["ps", &id, "-o", "pid,comm"]).ok().stdout.clone();
    let rows: Vec<Vec<&str>> = custom
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["PID", "COMMAND"], "{custom}");
    assert_eq!(
        rows[1..],
        [vec![pid.to_string().as_str(), "sleep"]],
        "{custom}"
    );

    c.rt(&["kill", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    c.finish();
}
