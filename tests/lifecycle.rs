//! The OCI lifecycle as a caller drives it: create, start, state, kill, delete, run, list.

mod common;
use common::*;
use serde_json::json;

#[test]
fn create_start_state_kill_delete() {
    let c = Ctx::new("life");
    let id = c.id("c");
    let b = c.bundle_for(&id, &["sleep", "30"]);
    b.write();
    let pidfile = c.dir.join("init.pid");
    c.rt(&[
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ])
    .ok();
    let st = c.state(&id);
    let pid = st["pid"].as_i64().unwrap() as i32;
    c.track_pid(pid);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["bundle"], json!(b.path()));
    assert!(st["ociVersion"].is_string());
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );
    if !is_runc() {
        assert_eq!(st["rootfs"], json!(b.rootfs().to_str().unwrap()));
        assert!(st["created"].as_str().unwrap().ends_with('Z'));
        assert_eq!(st["owner"], "root");
    }
    // The init must not run the user's program before start: it is blocked.
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .unwrap()
            .contains("berth")
            || is_runc()
    );
    c.rt(&["start", &id]).ok();
    c.wait_status(&id, "running");
    c.rt(&["start", &id]).fails_with("");
    c.rt(&["delete", &id]).fails_with("not stopped");
    c.rt(&["kill", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    c.rt(&["kill", &id, "TERM"])
        .fails_with("container not running");
    c.rt(&["start", &id])
        .fails_with("cannot start a container that has stopped");
    c.rt(&["delete", &id]).ok();
    c.rt(&["state", &id]).fails_with("does not exist");
    c.finish();
}

#[test]
fn run_foreground_exit_codes() {
    let c = Ctx::new("exit");
    for (args, want) in [(vec!["true"], 0), (vec!["sh", "-c", "exit 7"], 7)] {
        let id = c.id(&format!("e{want}"));
        let b = c.bundle_for(&id, &args);
        let out = c.run(&b, &id);
        assert_eq!(out.code, want, "{args:?}: {}", out.stderr);
        c.rt(&["state", &id]).fails_with("does not exist");
    }
    c.finish();
}

#[test]
fn run_prints_the_container_output_and_passes_stdin() {
    let c = Ctx::new("stdio");
    let id = c.id("a");
    let b = c.bundle_for(
        &id,
        &["sh", "-c", "echo out; echo err >&2; read x; echo got $x"],
    );
    b.write();
    let mut cmd = std::process::Command::new(runtime());
    cmd.args([
        "--root",
        c.root.to_str().unwrap(),
        "run",
        "--bundle",
        b.path(),
        &id,
    ]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\ngot hello\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    c.finish();
}

#[test]
fn run_detached_list_and_force_delete() {
    let c = Ctx::new("detach");
    let id = c.id("d");
    let b = c.bundle_for(&id, &["sleep", "30"]);
    b.write();
    c.rt(&["run", "-d", "--bundle", b.path(), &id]).ok();
    let pid = c.state(&id)["pid"].as_i64().unwrap() as i32;
    c.track_pid(pid);
    assert_eq!(c.status(&id), "running");
    assert_eq!(c.rt(&["list", "-q"]).ok().stdout.trim(), id);
    let list = c.rt(&["list", "--format", "json"]).ok().json();
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[0]["status"], "running");
    let table = c.rt(&["list"]).ok().stdout.clone();
    assert!(table.starts_with("ID") && table.contains(&id) && table.contains("running"));
    c.rt(&["delete", "--force", &id]).ok();
    c.rt(&["state", &id]).fails_with("does not exist");
    c.finish();
}

#[test]
fn kill_by_name_number_and_all() {
    let c = Ctx::new("kill");
    for (i, sig) in ["SIGUSR1", "USR1", "10"].iter().enumerate() {
        let id = c.id(&format!("k{i}"));
        let b = c.bundle_for(
            &id,
            &[
                "sh",
                "-c",
                "trap 'echo usr1 > /tmp/got; exit 3' USR1; touch /tmp/ready; while true; do sleep 0.05; done",
            ],
        );
        let mut b = b;
        b.config["root"]["readonly"] = json!(false);
        c.create(&b, &id);
        c.rt(&["start", &id]).ok();
        // A pid-namespace init drops signals it has no handler for, so the
        // signal must not be sent before the trap is in place.
        c.wait_file(&b.rootfs().join("tmp/ready"));
        c.rt(&["kill", &id, sig]).ok();
        c.wait_status(&id, "stopped");
        assert_eq!(
            std::fs::read_to_string(b.rootfs().join("tmp/got")).unwrap(),
            "usr1\n"
        );
        c.rt(&["delete", &id]).ok();
    }
    // --all reaches processes that are not the init.
    let id = c.id("all");
    let b = c.bundle_for(&id, &["sh", "-c", "sleep 30 & sleep 30 & wait"]);
    c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    // The shell forks its two sleeps after start returns: wait for them (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pids = c.rt(&["ps", "--format", "json", &id]).ok().json();
        if pids.as_array().unwrap().len() == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{pids}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    c.rt(&["kill", "--all", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    c.rt(&["kill", &id, "NOTASIGNAL"]).fails_with("");
    c.finish();
}

#[test]
fn unknown_ids() {
    let c = Ctx::new("unknown");
    for cmd in ["state", "start", "kill", "delete", "pause", "resume"] {
        c.rt(&[cmd, "nosuchcontainer"]).fails_with("does not exist");
    }
    c.rt(&["delete", "--force", "nosuchcontainer"]).ok();
    c.finish();
}

#[test]
fn duplicate_id_is_refused_and_nothing_is_touched() {
    let c = Ctx::new("dup");
    let id = c.id("x");
    let b = c.bundle_for(&id, &["sleep", "30"]);
    let pid = c.create(&b, &id);
    c.rt(&["create", "--bundle", b.path(), &id])
        .fails_with("container with given ID already exists");
    assert_eq!(c.state(&id)["pid"], json!(pid));
    assert_eq!(c.status(&id), "created");
    c.finish();
}

#[test]
fn json_log_has_exactly_one_error_line() {
    let c = Ctx::new("log");
    let log = c.dir.join("log.json");
    let out = c.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nosuchcontainer",
    ]);
    assert_ne!(out.code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let errors: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("each line is JSON"))
        .filter(|v| v["level"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(errors[0]["msg"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    assert!(errors[0]["time"].is_string());
    // --flag=value works as well as --flag value.
    let log2 = c.dir.join("log2.json");
    let out = c.rt(&[
        &format!("--log={}", log2.display()),
        "--log-format=json",
        "state",
        "nosuchcontainer",
    ]);
    assert_ne!(out.code, 0);
    assert!(std::fs::read_to_string(&log2)
        .unwrap()
        .contains("\"level\":\"error\""));
    c.finish();
}

#[test]
fn spec_features_and_version() {
    let c = Ctx::new("spec");
    let d = c.dir.join("specb");
    std::fs::create_dir_all(&d).unwrap();
    c.rt(&["spec", "--bundle", d.to_str().unwrap()]).ok();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["process"]["args"], json!(["sh"]));
    c.rt(&["spec", "--bundle", d.to_str().unwrap()])
        .fails_with("exists");
    let r = c.dir.join("specr");
    std::fs::create_dir_all(&r).unwrap();
    c.rt(&["spec", "--rootless", "--bundle", r.to_str().unwrap()])
        .ok();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join("config.json")).unwrap()).unwrap();
    assert!(spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
    assert_eq!(spec["linux"]["uidMappings"][0]["containerID"], 0);
    let f = c.rt(&["features"]).ok().json();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["ociVersionMax"].as_str().unwrap().starts_with("1."));
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "pid"));
    let v = c.rt(&["--version"]).ok().stdout.clone();
    assert!(v.contains("version") && v.contains("spec"), "{v}");
    c.finish();
}

#[test]
fn immediate_exit_never_hangs() {
    let c = Ctx::new("fast");
    for i in 0..50 {
        let id = c.id(&format!("f{i}"));
        let b = c.bundle_for(&id, &["true"]);
        assert_eq!(c.run(&b, &id).code, 0);
    }
    c.finish();
}

/// A container killed by a signal makes foreground `run` exit with 128+signal.
#[test]
fn run_exits_128_plus_signal() {
    let c = Ctx::new("sig");
    for (sig, want, pidns) in [("KILL", 137, true), ("TERM", 143, false)] {
        let id = c.id(&format!("s{want}"));
        let mut b = c.bundle_for(&id, &["sleep", "30"]);
        if !pidns {
            // A pid namespace's init ignores SIGTERM without a handler.
            let ns: Vec<serde_json::Value> = b.config["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["type"] != "pid")
                .cloned()
                .collect();
            b.config["linux"]["namespaces"] = json!(ns);
        }
        b.write();
        let mut cmd = std::process::Command::new(runtime());
        cmd.args([
            "--root",
            c.root.to_str().unwrap(),
            "run",
            "--bundle",
            b.path(),
            &id,
        ]);
        let mut child = cmd.spawn().unwrap();
        c.wait_status(&id, "running");
        c.rt(&["kill", &id, sig]).ok();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run did not exit after {sig}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(want), "{sig}");
        c.rt(&["state", &id]).fails_with("does not exist");
    }
    c.finish();
}

/// Signals sent to a foreground `run` reach the container.
#[test]
fn run_forwards_signals() {
    let c = Ctx::new("fwd");
    let id = c.id("f");
    let b = c.bundle_for(
        &id,
        &[
            "sh",
            "-c",
            "trap 'exit 42' USR1; touch /tmp/ready; while true; do sleep 0.05; done",
        ],
    );
    let mut b = b;
    b.config["root"]["readonly"] = json!(false);
    b.write();
    let mut child = std::process::Command::new(runtime())
        .args([
            "--root",
            c.root.to_str().unwrap(),
            "run",
            "--bundle",
            b.path(),
            &id,
        ])
        .spawn()
        .unwrap();
    c.wait_file(&b.rootfs().join("tmp/ready"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not exit after USR1"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(42));
    c.finish();
}

/// BERTH_TIMELINE=1 prints one mark per phase, from berth and from the container's init, in
/// time order; without it nothing of the kind reaches stderr.
#[test]
fn timeline_marks_only_when_asked() {
    if is_runc() {
        return;
    }
    let c = Ctx::new("timeline");
    let id = c.id("t");
    let b = c.bundle_for(&id, &["true"]);
    b.write();
    let out = c.rt_env(
        &["run", "--bundle", b.path(), &id],
        &[("BERTH_TIMELINE", "1")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let marks: Vec<(i32, f64, String)> = out
        .stderr
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() == 4 && f[0] == "berth-timeline").then(|| {
                (
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].to_string(),
                )
            })
        })
        .collect();
    let names: Vec<&str> = marks.iter().map(|m| m.2.as_str()).collect();
    for want in [
        "parse-args",
        "load-config",
        "create-cgroups",
        "clone",
        "init:mounts",
        "init:ready",
        "wait-exit",
        "delete",
    ] {
        assert!(names.contains(&want), "no {want} mark in {names:?}");
    }
    // The init's marks come from pid 1 (its own PID namespace), the others from berth.
    assert!(
        marks
            .iter()
            .filter(|m| m.2.starts_with("init:"))
            .all(|m| m.0 == 1),
        "{marks:?}"
    );
    assert!(
        marks
            .iter()
            .filter(|m| !m.2.starts_with("init:"))
            .all(|m| m.0 > 1),
        "{marks:?}"
    );
    // Each process's marks are in the order its phases run.
    let berth: Vec<f64> = marks.iter().filter(|m| m.0 > 1).map(|m| m.1).collect();
    assert!(berth.windows(2).all(|w| w[0] <= w[1]), "{marks:?}");

    let id2 = c.id("q");
    let b2 = c.bundle_for(&id2, &["true"]);
    let quiet = c.run(&b2, &id2);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(!quiet.stderr.contains("berth-timeline"), "{}", quiet.stderr);
    c.finish();
}

/// The status comes from the process, not from what state.json says: a recorded pid that
/// now names another process (reuse: same pid, other start time) or a record from another
/// boot means stopped, and kill never reaches that other process.
#[test]
fn status_is_derived_never_trusted() {
    if is_runc() {
        return; // berth's state.json layout
    }
    let c = Ctx::new("derived");
    let id = c.id("c");
    let b = c.bundle_for(&id, &["sleep", "1000"]);
    c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    assert_eq!(c.status(&id), "running");
    // A bystander that must survive: stands in for a process that reused the pid.
    let mut bystander = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let state_file = c.root.join(&id).join("state.json");
    let original = std::fs::read_to_string(&state_file).unwrap();
    let mut rec: serde_json::Value = serde_json::from_str(&original).unwrap();
    rec["pid"] = serde_json::json!(bystander.id());
    std::fs::write(&state_file, rec.to_string()).unwrap();
    assert_eq!(c.status(&id), "stopped");
    c.rt(&["kill", &id, "KILL"])
        .fails_with("container not running");
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "kill reached a process that is not the container's"
    );
    // Our init, but the record says another boot.
    let mut rec: serde_json::Value = serde_json::from_str(&original).unwrap();
    rec["boot_id"] = serde_json::json!("00000000-0000-0000-0000-000000000000");
    std::fs::write(&state_file, rec.to_string()).unwrap();
    assert_eq!(c.status(&id), "stopped");
    // Put right, it is running again, and goes away as usual.
    std::fs::write(&state_file, &original).unwrap();
    assert_eq!(c.status(&id), "running");
    c.rt(&["delete", "--force", &id]).ok();
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    c.finish();
}

/// --debug adds debug records (here: an ambient capability that cannot be raised), none
/// without it; --systemd-cgroup is a clear error that leaves nothing; --rootless takes
/// runc's values and no other.
#[test]
fn global_debug_systemd_cgroup_and_rootless_flags() {
    if is_runc() {
        return; // runc's debug output and systemd driver differ by design
    }
    let c = Ctx::new("globals");
    for debug in [false, true] {
        let id = c.id(if debug { "dbg" } else { "nodbg" });
        let mut b = c.bundle_for(&id, &["true"]);
        b.config["process"]["capabilities"]["ambient"] = json!(["CAP_SYS_ADMIN"]);
        b.config["process"]["capabilities"]["inheritable"] = json!([]);
        b.write();
        let log = c.dir.join(format!("{id}.log"));
        let mut args = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
        if debug {
            args.push("--debug");
        }
        args.extend(["run", "--bundle", b.path(), &id]);
        c.rt(&args).ok();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let debug_lines = text
            .lines()
            .filter(|l| l.contains("\"level\":\"debug\"") && l.contains("CAP_SYS_ADMIN"))
            .count();
        assert_eq!(debug_lines, usize::from(debug), "--debug {debug}: {text}");
    }
    let id = c.id("systemd");
    let b = c.bundle_for(&id, &["true"]);
    b.write();
    c.rt(&["--systemd-cgroup", "create", "--bundle", b.path(), &id])
        .fails_with("systemd cgroup driver is not available");
    c.rt(&["state", &id]).fails_with("does not exist");
    c.audit();
    c.rt(&["--rootless", "maybe", "list"])
        .fails_with("--rootless");
    let id = c.id("rootless-true");
    let b = c.bundle_for(&id, &["true"]);
    b.write();
    c.rt(&["--rootless=true", "run", "--bundle", b.path(), &id])
        .ok();
    c.rt(&["--rootless", "false", "list"]).ok();
    c.finish();
}
