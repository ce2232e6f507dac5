//! The six hook kinds at their phases: order, namespace, state on stdin, failures, timeouts.
//!
//! These follow the runtime-spec, where runc 1.1 (Debian 12) does not: it runs poststart
//! at create, fails `delete` on a failing poststop hook and `start` on a failing poststart,
//! and its errors do not name the hook kind. So these tests are berth's alone.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;

/// A hook that records its kind, the state it got and the mount namespace it ran in.
/// `log` is the directory as the hook sees it (host or container path).
fn recorder(kind: &str, log: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c",
            format!("cat > {log}/{kind}.json; echo {kind} >> {log}/order; \
                     readlink /proc/self/ns/mnt > {log}/{kind}.mnt; echo \"$0 $1 $HOOKVAR\" > {log}/{kind}.args"),
            "argzero", "argone"],
        "env": [format!("HOOKVAR={kind}")],
        "timeout": 10
    })
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn hooks_run_in_order_at_their_phase_and_namespace_with_the_state() {
    let c = Ctx::new("hooks");
    let id = c.id("h");
    let log = c.dir.join("log");
    std::fs::create_dir_all(&log).unwrap();
    let l = log.to_str().unwrap();
    let mut b = c.bundle_for(&id, &["sleep", "1000"]);
    b.config["annotations"] = json!({"org.example.test": "yes"});
    // startContainer runs inside the container, after pivot_root: its program and log
    // directory are the container's (the host log dir is bind-mounted at /log).
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/log", "type": "bind", "source": l, "options": ["rbind", "rw"]}),
    );
    std::fs::create_dir_all(b.rootfs().join("log")).unwrap();
    b.config["hooks"] = json!({
        "prestart": [recorder("prestart", l)],
        "createRuntime": [recorder("createRuntime", l)],
        "createContainer": [recorder("createContainer", l)],
        "startContainer": [recorder("startContainer", "/log")],
        "poststart": [recorder("poststart", l)],
        "poststop": [recorder("poststop", l)],
    });
    let pid = c.create(&b, &id);
    let order = |o: &[&str]| assert_eq!(read(&log.join("order")).lines().collect::<Vec<_>>(), o);
    order(&["prestart", "createRuntime", "createContainer"]);
    c.rt(&["start", &id]).ok();
    c.wait_file(&log.join("poststart.args"));
    order(&[
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ]);
    c.rt(&["kill", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    c.rt(&["delete", &id]).ok();
    order(&[
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]);

    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let host_mnt = host_mnt.to_str().unwrap();
    // The container's mount namespace, as recorded by the hook that runs in it for sure.
    let ctr_mnt = read(&log.join("startContainer.mnt"));
    assert_ne!(ctr_mnt.trim(), host_mnt);
    for (kind, status, in_container) in [
        ("prestart", "creating", false),
        ("createRuntime", "creating", false),
        ("createContainer", "creating", true),
        ("startContainer", "created", true),
        ("poststart", "running", false),
        ("poststop", "stopped", false),
    ] {
        let st: Value = serde_json::from_str(&read(&log.join(format!("{kind}.json"))))
            .unwrap_or_else(|e| panic!("{kind}: state is not JSON: {e}"));
        assert_eq!(st["id"], id.as_str(), "{kind}: {st}");
        assert_eq!(st["status"], status, "{kind}: {st}");
        assert_eq!(st["bundle"], b.path(), "{kind}: {st}");
        assert_eq!(st["annotations"]["org.example.test"], "yes", "{kind}: {st}");
        assert!(st["ociVersion"].is_string(), "{kind}: {st}");
        if kind != "poststop" {
            assert_eq!(st["pid"], pid, "{kind}: {st}");
        }
        let mnt = read(&log.join(format!("{kind}.mnt")));
        if in_container {
            assert_eq!(mnt, ctr_mnt, "{kind} ran outside the container's mount ns");
        } else {
            assert_eq!(
                mnt.trim(),
                host_mnt,
                "{kind} ran outside the runtime's mount ns"
            );
        }
        // args and env are exactly the hook's.
        assert_eq!(
            read(&log.join(format!("{kind}.args"))).trim(),
            format!("argzero argone {kind}")
        );
    }
    c.finish();
}

fn failing(kind: &str, script: &str, timeout: Option<i64>) -> Value {
    let mut h = json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
    if let Some(t) = timeout {
        h["timeout"] = json!(t);
    }
    json!({ kind: [h] })
}

#[test]
fn a_failing_setup_hook_destroys_the_container_and_poststop_still_runs() {
    let c = Ctx::new("hookfail");
    let marker = c.dir.join("poststop-ran");
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let _ = std::fs::remove_file(&marker);
        let id = c.id(kind);
        let mut b = c.bundle_for(&id, &["sleep", "1000"]);
        let mut hooks = failing(kind, "echo hook-said-no >&2; exit 3", None);
        hooks["poststop"] = json!([{"path": "/bin/sh",
            "args": ["sh", "-c", format!("cat >/dev/null; touch {}", marker.display())]}]);
        b.config["hooks"] = hooks;
        b.write();
        let out = c.rt(&["create", "--bundle", b.path(), &id]);
        out.fails_with(kind).fails_with("hook-said-no");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        c.rt(&["state", &id]).fails_with("does not exist");
        assert!(marker.exists(), "{kind} failed but poststop did not run");
        c.audit();
    }
    // startContainer fails at start (and at a detached run): the container is destroyed
    // too, and poststop runs.
    for detached_run in [false, true] {
        let _ = std::fs::remove_file(&marker);
        let id = c.id(if detached_run {
            "run-startContainer"
        } else {
            "startContainer"
        });
        let mut b = c.bundle_for(&id, &["sleep", "1000"]);
        let mut hooks = failing("startContainer", "exit 4", None);
        hooks["poststop"] = json!([{"path": "/bin/sh",
            "args": ["sh", "-c", format!("cat >/dev/null; touch {}", marker.display())]}]);
        b.config["hooks"] = hooks;
        if detached_run {
            b.write();
            let pid_file = c.dir.join("run.pid");
            c.rt(&[
                "run",
                "-d",
                "--pid-file",
                pid_file.to_str().unwrap(),
                "--bundle",
                b.path(),
                &id,
            ])
            .fails_with("startContainer");
            // Written at create, before the start failed: the init to reap.
            c.track_pid(
                std::fs::read_to_string(&pid_file)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap(),
            );
        } else {
            c.create(&b, &id);
            c.rt(&["start", &id]).fails_with("startContainer");
        }
        c.rt(&["state", &id]).fails_with("does not exist");
        assert!(
            marker.exists(),
            "startContainer failed but poststop did not run"
        );
        c.reap_tracked();
        c.rt(&["delete", "--force", &id]).ok();
        c.audit();
    }
    c.finish();
}

#[test]
fn poststart_and_poststop_failures_are_warnings() {
    let c = Ctx::new("hookwarn");
    let id = c.id("w");
    let second = c.dir.join("second-poststop-ran");
    let mut b = c.bundle_for(&id, &["sleep", "1000"]);
    let mut hooks = failing("poststart", "exit 5", None);
    hooks["poststop"] = json!([
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 6"]},
        {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", second.display())]},
    ]);
    b.config["hooks"] = hooks;
    c.create(&b, &id);
    let out = c.rt(&["start", &id]);
    // runc fails start here (and kills the container); the runtime-spec and berth warn.
    if !is_runc() {
        out.ok();
        assert!(out.stderr.contains("poststart"), "{}", out.stderr);
        assert_eq!(c.status(&id), "running");
    }
    c.rt(&["delete", "--force", &id]).ok();
    assert!(
        second.exists(),
        "a failing poststop hook stopped the next one"
    );
    c.finish();
}

#[test]
fn hook_timeout_and_unread_stdin() {
    let c = Ctx::new("hooktime");
    let id = c.id("t");
    let mut b = c.bundle_for(&id, &["sleep", "1000"]);
    b.config["hooks"] = failing("createRuntime", "sleep 30", Some(1));
    b.write();
    let t = std::time::Instant::now();
    c.rt(&["create", "--bundle", b.path(), &id])
        .fails_with("createRuntime");
    assert!(
        // The hook sleeps 30 s: anything well under that is the 1 s timeout at work.
        t.elapsed() < std::time::Duration::from_secs(25),
        "timeout not enforced"
    );
    c.rt(&["state", &id]).fails_with("does not exist");
    c.audit();

    // A hook that never reads its stdin, with a state larger than a pipe buffer.
    let id = c.id("unread");
    let mut b = c.bundle_for(&id, &["true"]);
    b.config["annotations"] = json!({"big": "x".repeat(256 * 1024)});
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/true"}],
                               "poststop": [{"path": "/bin/true"}]});
    c.run(&b, &id).ok();
    c.finish();
}
