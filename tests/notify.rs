//! NOTIFY_SOCKET: a fake systemd listener gets READY=1 and MAINPID from start and run.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

fn listener(c: &Ctx, name: &str) -> (UnixDatagram, String) {
    let path = c.dir.join(name);
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (sock, path.to_string_lossy().into_owned())
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a message on the notify socket");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Waits a little, reports where its socket is mounted and how, then says it is ready.
const READY_LATER: &str = "sleep 0.5; echo $NOTIFY_SOCKET > /tmp/sock; \
     grep ' /run/notify ' /proc/self/mounts > /tmp/mount; \
     /bin/testinit notify READY=1 >/dev/null; sleep 1000";

#[test]
fn start_waits_for_ready_and_forwards_ready_and_mainpid() {
    let c = Ctx::new("notify");
    let id = c.id("n");
    let (sock, path) = listener(&c, "host-notify.sock");
    let mut b = c.bundle_for(&id, &["sh", "-c", READY_LATER]);
    b.config["root"]["readonly"] = serde_json::json!(false);
    b.write();
    let env = [("NOTIFY_SOCKET", path.as_str())];
    // A create that waited for READY=1 would hang (the process runs only at start): the
    // harness's deadline catches that, with no timing assertion on a loaded machine.
    c.rt_env(&["create", "--bundle", b.path(), &id], &env).ok();
    let pid = c.state(&id)["pid"].as_i64().unwrap();
    c.track_pid(pid as i32);
    // Nothing is forwarded before the container says so.
    sock.set_nonblocking(true).unwrap();
    assert!(sock.recv(&mut [0u8; 16]).is_err());
    sock.set_nonblocking(false).unwrap();

    let t = Instant::now();
    c.rt_env(&["start", &id], &env).ok();
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "start returned before READY=1 ({:?})",
        t.elapsed()
    );
    let msg = recv(&sock);
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(
        msg.lines().any(|l| l == format!("MAINPID={pid}")),
        "{msg:?}"
    );
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/sock"))
            .unwrap()
            .trim(),
        "/run/notify/notify.sock"
    );
    let mount = std::fs::read_to_string(b.rootfs().join("tmp/mount")).unwrap();
    assert!(mount.contains(" ro,") || mount.contains(" ro "), "{mount}");
    c.finish();
}

#[test]
fn foreground_run_forwards_readiness_and_a_dead_init_does_not_hang_start() {
    let c = Ctx::new("notifyrun");
    let id = c.id("r");
    let (sock, path) = listener(&c, "host-notify.sock");
    let mut b = c.bundle_for(
        &id,
        &[
            "sh",
            "-c",
            "/bin/testinit notify READY=1 >/dev/null; echo served",
        ],
    );
    b.write();
    let pid_file = c.dir.join("run.pid");
    let out = c.rt_env(
        &[
            "run",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--bundle",
            b.path(),
            &id,
        ],
        &[("NOTIFY_SOCKET", &path)],
    );
    out.ok();
    assert!(out.stdout.contains("served"), "{}", out.stdout);
    let msg = recv(&sock);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(
        msg.lines().any(|l| l == format!("MAINPID={}", pid.trim())),
        "{msg:?}"
    );

    // The init exits without ever saying READY=1: start returns, nothing forwarded.
    let id = c.id("never");
    b = c.bundle_for(&id, &["true"]);
    b.write();
    let env = [("NOTIFY_SOCKET", path.as_str())];
    c.rt_env(&["create", "--bundle", b.path(), &id], &env).ok();
    c.track_pid(c.state(&id)["pid"].as_i64().unwrap() as i32);
    c.rt_env(&["start", &id], &env);
    sock.set_nonblocking(true).unwrap();
    assert!(
        sock.recv(&mut [0u8; 64]).is_err(),
        "READY forwarded for nothing"
    );
    c.finish();
}

/// start waits for READY=1 and for startContainer hooks without the container's lock:
/// while it waits for a container that never says it is ready (or a hook that never
/// ends), `kill` and `delete --force` from other processes go through (each bounded by
/// the harness's deadline), and start then fails: the container it was starting is gone.
#[test]
fn kill_and_delete_go_through_while_start_waits() {
    if is_runc() {
        return; // runc holds its container lock for the whole of start
    }
    let c = Ctx::new("notifywait");
    let (sock, path) = listener(&c, "host-notify.sock");
    for hook in [false, true] {
        let id = c.id(if hook { "hook" } else { "ready" });
        // TERM is ignored: only delete --force ends it.
        let mut b = c.bundle_for(
            &id,
            &["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
        );
        let env: Vec<(&str, &str)> = if hook {
            b.config["hooks"] = serde_json::json!({"startContainer": [
                {"path": "/bin/sh", "args": ["sh", "-c", "trap '' TERM; sleep 1000"]}
            ]});
            vec![]
        } else {
            vec![("NOTIFY_SOCKET", path.as_str())]
        };
        b.write();
        c.rt_env(&["create", "--bundle", b.path(), &id], &env).ok();
        c.track_pid(c.state(&id)["pid"].as_i64().unwrap() as i32);

        let err = c.dir.join(format!("{id}.err"));
        let mut start = std::process::Command::new(runtime());
        start
            .arg("--root")
            .arg(&c.root)
            .args(["start", &id])
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut start = start.spawn().unwrap();
        // Released: start is waiting.
        c.wait_status(&id, "running");
        assert!(start.try_wait().unwrap().is_none(), "start did not wait");

        c.rt(&["kill", &id, "TERM"]).ok();
        assert_eq!(c.status(&id), "running");
        c.rt(&["delete", "--force", &id]).ok();
        c.rt(&["state", &id]).fails_with("does not exist");

        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = start.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = start.kill();
                let _ = start.wait();
                panic!("start still waiting after its container was deleted");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = std::fs::read_to_string(&err).unwrap();
        assert!(!status.success(), "start succeeded: {stderr}");
        assert!(stderr.contains("container does not exist"), "{stderr}");
        // The killed init is our zombie (we subreap) until we reap it; nothing above
        // reaped it once it exited, so reap before auditing.
        c.reap_tracked();
        c.audit();
    }
    sock.set_nonblocking(true).unwrap();
    assert!(
        sock.recv(&mut [0u8; 64]).is_err(),
        "READY forwarded for nothing"
    );
    c.finish();
}
