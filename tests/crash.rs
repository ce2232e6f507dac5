//! kill -9 of berth at every stage of create (through the debug-build checkpoint knob,
//! BERTH_TEST_CHECKPOINT): the state is readable or "does not exist", `delete --force`
//! exits 0, nothing is left behind, and the id can be used again.
//!
//! One test in its own binary: it reaps our zombie children by scanning /proc, which would
//! race with other tests' children in the same process.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHECKPOINTS: &[&str] = &[
    "claimed",
    "state-written",
    "cgroup-created",
    "cloned",
    "ready",
    "saved",
];

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Reaps every zombie that is our child (the killed runtime's orphans come to us).
fn reap_our_zombies() {
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
            reap_if_our_zombie(pid);
        }
    }
}

#[test]
fn kill_9_at_every_stage_of_create() {
    if is_runc() {
        // The checkpoint knob is berth's own (debug builds); runc has no equivalent.
        return;
    }
    let c = Ctx::new("crash");
    for cp in CHECKPOINTS {
        let id = c.id(cp);
        let b = c.bundle_for(&id, &["sleep", "1000"]);
        b.write();
        let mut child = Command::new(runtime())
            .args([
                "--root",
                c.root.to_str().unwrap(),
                "create",
                "--bundle",
                b.path(),
                &id,
            ])
            .env("BERTH_TEST_CHECKPOINT", cp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while proc_state(child.id()) != Some('T') {
            assert!(
                Instant::now() < deadline,
                "{cp}: berth never stopped at the checkpoint"
            );
            assert!(child.try_wait().unwrap().is_none(), "{cp}: berth exited");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let st = c.rt(&["state", &id]);
        assert!(
            st.code == 0 || st.stderr.contains("does not exist"),
            "{cp}: state neither readable nor absent: {}",
            st.stderr
        );
        let del = c.rt(&["delete", "--force", &id]);
        assert_eq!(del.code, 0, "{cp}: delete --force: {}", del.stderr);
        // The init (if any) was killed by delete or by its parent-death signal; its
        // zombie is ours to reap.
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            reap_our_zombies();
            std::thread::sleep(Duration::from_millis(20));
        }
        c.audit();
        c.rt(&["state", &id]).fails_with("does not exist");

        // The id is usable again.
        let b = c.bundle_for(&id, &["true"]);
        let out = c.run(&b, &id);
        assert_eq!(out.code, 0, "{cp}: id not reusable: {}", out.stderr);
    }
    c.finish();
}
