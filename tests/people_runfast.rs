//! The people face's quick paths keep their guarantees: a `run -d` skips its own seal
//! re-execution but the monitor it starts (which creates the container) still executes
//! from a read-only copy of berth (CVE-2019-5736), and so does a foreground `run` whose
//! command line only looked detached before the parse.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::people::World;
use nix::sys::statvfs::{statvfs, FsFlags};

/// Whether the binary `pid` executes cannot be written: on a read-only mount (the
/// detached read-only clone berth makes of itself) or a sealed memfd (rootless).
fn runs_sealed(pid: i32) -> bool {
    let exe = format!("/proc/{pid}/exe");
    let ro = statvfs(exe.as_str()).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY));
    ro || std::fs::read_link(&exe).is_ok_and(|l| l.to_string_lossy().starts_with("/memfd:"))
}

#[test]
fn the_build_under_test_is_writable() {
    // Otherwise the checks below would hold whatever berth did.
    let st = statvfs(env!("CARGO_BIN_EXE_berth")).unwrap();
    assert!(!st.flags().contains(FsFlags::ST_RDONLY));
}

#[test]
fn detached_monitors_run_from_a_sealed_copy() {
    let w = World::new("rfseal");
    let id = w.run_d(&[], &["sleep", "1000"]);
    assert!(
        runs_sealed(w.monitor_pid(&id)),
        "run -d: monitor not sealed"
    );
    // `start` of a created container spawns its monitor the same way.
    let out = w.b(&["create", "--rootfs", w.rootfs(), "sleep", "1000"]);
    out.ok();
    let id2 = out.stdout.trim().to_string();
    w.b(&["start", &id2]).ok();
    assert!(
        runs_sealed(w.monitor_pid(&id2)),
        "start: monitor not sealed"
    );
    w.finish();
}

/// Starts a foreground `run` and checks the CLI (the container's parent and monitor)
/// executes from a sealed copy once the container runs.
fn foreground_is_sealed(w: &World, name: &str, cmd: &[&str]) {
    let mut args = vec!["run", "--rm", "--name", name, "--rootfs", w.rootfs()];
    args.extend_from_slice(cmd);
    let mut child = w
        .cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    w.until("the foreground container runs", || {
        w.b(&["inspect", "--format", "{{.State.Status}}", name])
            .stdout
            .trim()
            == "running"
    });
    let sealed = runs_sealed(pid);
    // Stopped and reaped before any assertion: the child is ours.
    let _ = w.b(&["rm", "-f", name]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the foreground run did not end after rm -f");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sealed, "foreground run {cmd:?}: the CLI is not sealed");
}

#[test]
fn foreground_runs_are_sealed_even_when_they_look_detached() {
    let w = World::new("rffg");
    foreground_is_sealed(&w, "rf-plain", &["sleep", "1000"]);
    // `-d` only in the container's own arguments: the guess before the parse says
    // detached, the parse says foreground, and the seal happens then.
    foreground_is_sealed(&w, "rf-looks", &["sh", "-c", "sleep 1000", "-d"]);
    w.finish();
}
