//! What listings read of each container, kept cheap without losing the truth: a monitor's
//! liveness is the lock it holds (`RUNROOT/containers/<id>/monitor.lock`), a paused
//! container is marked by `pause` in its runtime directory. Each test checks that the
//! cheap look still tells what runs, across kills and crashes between two steps.

mod common;

use std::path::Path;

use common::people::World;

fn gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

fn ps(w: &World) -> String {
    w.b(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
        .ok()
        .stdout
        .clone()
}

fn line_of<'a>(ps: &'a str, name: &str) -> &'a str {
    ps.lines()
        .find(|l| l.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not listed: {ps}"))
}

#[test]
fn a_monitor_holds_its_lock_and_a_killed_one_is_seen_by_ps() {
    let w = World::new("lk");
    let a = w.run_d(&["--name", "lk-a"], &["sleep", "1000"]);
    let b = w.run_d(&["--name", "lk-b"], &["sleep", "1000"]);
    let lock = w.runroot.join("containers").join(&a).join("monitor.lock");
    assert!(lock.exists(), "{}", lock.display());
    let out = ps(&w);
    assert!(line_of(&out, "lk-a").starts_with("lk-a Up "), "{out}");
    assert!(line_of(&out, "lk-b").starts_with("lk-b Up "), "{out}");
    // kill -9 of one monitor: ps says so at once, the other is untouched.
    let mon = w.monitor_pid(&a);
    let init = w.inspect("lk-a")["State"]["Pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mon), nix::sys::signal::SIGKILL).unwrap();
    w.until("monitor gone", || gone(mon));
    let out = ps(&w);
    assert!(
        line_of(&out, "lk-a").starts_with("lk-a Exited (255)"),
        "{out}"
    );
    assert!(line_of(&out, "lk-b").starts_with("lk-b Up "), "{out}");
    assert_eq!(w.inspect("lk-a")["State"]["Error"], "monitor died");
    w.until("init gone", || gone(init));
    assert!(!w.runroot.join("containers").join(&a).exists());
    // Started again, it has a monitor (and a lock) of its own.
    w.b(&["start", "lk-a"]).ok();
    assert_eq!(w.status("lk-a"), "running");
    assert!(lock.exists());
    assert_eq!(w.status(&b), "running");
    w.finish();
}

#[test]
fn a_monitor_of_an_older_berth_without_a_lock_is_judged_by_its_record() {
    let w = World::new("lkold");
    let id = w.run_d(&["--name", "lkold"], &["sleep", "1000"]);
    // As a monitor of a berth without locks leaves it: only monitor.json.
    let lock = w.runroot.join("containers").join(&id).join("monitor.lock");
    std::fs::remove_file(&lock).unwrap();
    assert!(line_of(&ps(&w), "lkold").starts_with("lkold Up "));
    let mon = w.monitor_pid(&id);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mon), nix::sys::signal::SIGKILL).unwrap();
    w.until("monitor gone", || gone(mon));
    let out = ps(&w);
    assert!(
        line_of(&out, "lkold").starts_with("lkold Exited (255)"),
        "{out}"
    );
    w.finish();
}

#[test]
fn the_pause_mark_follows_pause_and_unpause_and_a_stray_one_is_not_believed() {
    let w = World::new("pm");
    let id = w.run_d(&["--name", "pm"], &["sleep", "1000"]);
    let mark = w.runroot.join("runtime").join(&id).join("people-paused");
    w.b(&["pause", "pm"]).ok();
    assert!(mark.exists());
    assert!(line_of(&ps(&w), "pm").ends_with("(Paused)"));
    assert_eq!(w.status("pm"), "paused");
    w.b(&["unpause", "pm"]).ok();
    assert!(!mark.exists());
    assert_eq!(w.status("pm"), "running");
    // A `pause` killed between its mark and the freeze: the cgroup decides.
    std::fs::write(&mark, b"").unwrap();
    let out = ps(&w);
    assert!(line_of(&out, "pm").starts_with("pm Up "), "{out}");
    assert!(!out.contains("Paused"), "{out}");
    assert_eq!(w.status("pm"), "running");
    // And pause still works over it; stop of the paused container clears everything.
    w.b(&["pause", "pm"]).ok();
    assert_eq!(w.status("pm"), "paused");
    w.b(&["stop", "-t", "1", "pm"]).ok();
    assert_eq!(w.status("pm"), "exited");
    assert!(!mark.exists());
    w.finish();
}

/// v1 cpuset: the parent the runtime fills itself gets `cgroup.clone_children`, so its
/// next children are filled by the kernel at mkdir (no write checked against every
/// sibling), with the same values as before.
#[test]
fn a_cpuset_parent_filled_by_the_runtime_fills_its_next_children() {
    let cpuset = Path::new("/sys/fs/cgroup/cpuset");
    if !cpuset.join("cpuset.cpus").exists() {
        eprintln!("no v1 cpuset hierarchy here: nothing to check");
        return;
    }
    let c = common::Ctx::new("cpuset");
    let parent = cpuset.join(format!("berth-it-{}", c.name));
    assert!(!parent.exists());
    let want_cpus = std::fs::read_to_string(cpuset.join("cpuset.cpus")).unwrap();
    let want_mems = std::fs::read_to_string(cpuset.join("cpuset.mems")).unwrap();
    let mut pids = Vec::new();
    for n in ["a", "b"] {
        let id = c.id(n);
        let b = c.bundle_for(&id, &["sleep", "1000"]);
        pids.push(c.create(&b, &id));
        let leaf = parent.join(&id);
        assert_eq!(
            std::fs::read_to_string(leaf.join("cpuset.cpus")).unwrap(),
            want_cpus
        );
        assert_eq!(
            std::fs::read_to_string(leaf.join("cpuset.mems")).unwrap(),
            want_mems
        );
        assert_eq!(
            std::fs::read_to_string(parent.join("cgroup.clone_children"))
                .unwrap()
                .trim(),
            "1"
        );
        // The init is in it.
        let procs = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == pids.last().unwrap().to_string()));
    }
    c.finish();
}
