//! What a listing of many running containers reads of each, kept cheap without losing the
//! truth: the pause mark of a running container is the mode of its monitor's lock file
//! (`RUNROOT/containers/<id>/monitor.lock`: 0640, 0440 while marked), read from the file
//! the liveness probe has open; a lock file of an older berth (another mode) leaves the
//! runtime's mark to decide. Each test checks the cheap look against what runs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::gone;
use common::people::{line_of, World};

fn lock(w: &World, id: &str) -> PathBuf {
    w.runroot.join("containers").join(id).join("monitor.lock")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn pause_and_unpause_mark_the_lock_file_and_ps_reads_it() {
    let w = World::new("pz");
    let a = w.run_d(&["--name", "pz-a"], &["sleep", "1000"]);
    let b = w.run_d(&["--name", "pz-b"], &["sleep", "1000"]);
    // A monitor's lock file says "not paused" from the start.
    assert_eq!(mode(&lock(&w, &a)), 0o640);
    w.b(&["pause", "pz-a"]).ok();
    assert_eq!(mode(&lock(&w, &a)), 0o440);
    assert_eq!(mode(&lock(&w, &b)), 0o640);
    let out = w.names_and_statuses();
    assert!(line_of(&out, "pz-a").starts_with("pz-a Up "), "{out}");
    assert!(line_of(&out, "pz-a").ends_with(" (Paused)"), "{out}");
    assert!(!line_of(&out, "pz-b").contains("Paused"), "{out}");
    let paused = w.b(&["ps", "-q", "--no-trunc", "--filter", "status=paused"]);
    assert_eq!(paused.ok().stdout.trim(), a);
    // ps and inspect agree (inspect reads the runtime's mark, ps the lock file's).
    assert_eq!(w.status("pz-a"), "paused");
    w.b(&["unpause", "pz-a"]).ok();
    assert_eq!(mode(&lock(&w, &a)), 0o640);
    let out = w.names_and_statuses();
    assert!(!out.contains("Paused"), "{out}");
    assert_eq!(w.status("pz-a"), "running");
    // A mark left on a thawed container (a `pause` killed before its freeze): the cgroup
    // decides, and pause and unpause work over it.
    chmod(&lock(&w, &b), 0o440);
    let out = w.names_and_statuses();
    assert!(!out.contains("Paused"), "{out}");
    assert_eq!(w.status("pz-b"), "running");
    w.b(&["pause", "pz-b"]).ok();
    assert!(line_of(&w.names_and_statuses(), "pz-b").ends_with(" (Paused)"));
    w.b(&["unpause", "pz-b"]).ok();
    assert_eq!(mode(&lock(&w, &b)), 0o640);
    assert!(!w.names_and_statuses().contains("Paused"));
    w.finish();
}

#[test]
fn a_lock_file_of_an_older_berth_leaves_the_runtimes_mark_to_decide() {
    let w = World::new("pzold");
    let id = w.run_d(&["--name", "pzold"], &["sleep", "1000"]);
    let l = lock(&w, &id);
    // An older berth's monitor made its lock file 0600 and paused by the runtime's mark
    // alone: the container still lists as paused, and unpauses.
    chmod(&l, 0o600);
    w.b(&["pause", "pzold"]).ok();
    chmod(&l, 0o600);
    let out = w.names_and_statuses();
    assert!(line_of(&out, "pzold").ends_with(" (Paused)"), "{out}");
    w.b(&["unpause", "pzold"]).ok();
    let out = w.names_and_statuses();
    assert!(!out.contains("Paused"), "{out}");
    assert_eq!(w.status("pzold"), "running");
    w.finish();
}

/// Many containers, most of them running (each monitor probed), a few created and exited,
/// two with a monitor killed, then most of them created (the run directories read first):
/// every status reads as it is, the dead monitors' containers are reconciled once, and the
/// rest is untouched.
#[test]
fn a_long_listing_tells_every_status_and_reconciles_dead_monitors() {
    let w = World::new("many");
    let mut running = Vec::new();
    for i in 0..24 {
        running.push(w.run_d(&["--name", &format!("many-r{i}")], &["sleep", "1000"]));
    }
    for i in 0..8 {
        w.b(&[
            "create",
            "--name",
            &format!("many-c{i}"),
            "--rootfs",
            w.rootfs(),
            "true",
        ])
        .ok();
    }
    let ex = w.run_d(&["--name", "many-x"], &["sh", "-c", "exit 7"]);
    w.until("many-x exited", || w.status(&ex) == "exited");
    w.b(&["pause", "many-r5"]).ok();
    let mut killed = Vec::new();
    for i in [3usize, 17] {
        let mon = w.monitor_pid(&running[i]);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(mon), nix::sys::signal::SIGKILL).unwrap();
        killed.push(mon);
    }
    for m in &killed {
        w.until("monitor gone", || gone(*m));
    }
    let out = w.names_and_statuses();
    assert_eq!(out.lines().count(), 24 + 8 + 1, "{out}");
    for i in 0..24 {
        let name = format!("many-r{i}");
        let l = line_of(&out, &name);
        match i {
            3 | 17 => assert!(l.starts_with(&format!("{name} Exited (255)")), "{out}"),
            5 => assert!(l.ends_with(" (Paused)"), "{out}"),
            _ => assert!(l.starts_with(&format!("{name} Up ")) && !l.contains("Paused")),
        }
    }
    for i in 0..8 {
        assert_eq!(
            line_of(&out, &format!("many-c{i}")),
            format!("many-c{i} Created")
        );
    }
    assert!(
        line_of(&out, "many-x").starts_with("many-x Exited (7)"),
        "{out}"
    );
    for i in [3usize, 17] {
        let c = w.inspect(&running[i]);
        assert_eq!(c["State"]["Error"], "monitor died", "{c}");
        assert!(!w.runroot.join("containers").join(&running[i]).exists());
    }
    // The same listing again: nothing more to reconcile, the same statuses.
    let again = w.names_and_statuses();
    let words = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .lines()
            .map(|l| {
                let mut p = l.split(' ');
                format!("{} {}", p.next().unwrap(), p.next().unwrap_or(""))
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(words(&out), words(&again));
    // Most of them created now, enough for the listing to be read by several threads
    // (one per CPU, at least 64 containers each): the run directories are read first,
    // the statuses are the same for the same containers, and a monitor killed now is
    // reconciled once, after the threads' reads.
    for i in 8..140 {
        w.b(&[
            "create",
            "--name",
            &format!("many-c{i}"),
            "--rootfs",
            w.rootfs(),
            "true",
        ])
        .ok();
    }
    let mon = w.monitor_pid(&running[9]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mon), nix::sys::signal::SIGKILL).unwrap();
    w.until("monitor gone", || gone(mon));
    let most = w.names_and_statuses();
    assert_eq!(most.lines().count(), 24 + 140 + 1, "{most}");
    assert!(
        line_of(&most, "many-r9").starts_with("many-r9 Exited (255)"),
        "{most}"
    );
    let c = w.inspect(&running[9]);
    assert_eq!(c["State"]["Error"], "monitor died", "{c}");
    assert!(!w.runroot.join("containers").join(&running[9]).exists());
    let mut created: Vec<String> = (8..140).map(|i| format!("many-c{i} Created")).collect();
    created.extend(
        words(&out)
            .into_iter()
            .filter(|l| !l.starts_with("many-r9 ")),
    );
    created.push("many-r9 Exited".to_string());
    created.sort();
    assert_eq!(words(&most), created);
    // Newest first, across the threads' parts.
    let table = w.b(&["ps", "-a", "--no-trunc"]).ok().stdout.clone();
    let created_at = |id: &str| w.inspect(id)["Created"].as_str().unwrap().to_string();
    let times: Vec<String> = ids_of(&table).iter().map(|id| created_at(id)).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "{table}");
    w.b(&["unpause", "many-r5"]).ok();
    w.finish();
}

/// The first column of each line of a table (the header's aside).
fn ids_of(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

/// The default table, made line by line as containers are read, lists what the same
/// template through the template engine lists (a copy of it that differs only in its
/// spacing inside the braces), in the same order, with every option that picks lines:
/// -a or not, -n, -l, --filter; -q and -n as well.
#[test]
fn the_default_table_lists_what_its_template_lists_with_every_option() {
    let w = World::new("dt");
    let same = "table {{ .ID }}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
    let mut made = Vec::new();
    for i in 0..4 {
        made.push(w.run_d(
            &["--name", &format!("dt-r{i}"), "-l", "k=r"],
            &["sleep", "1000"],
        ));
        let out = w.b(&[
            "create",
            "--name",
            &format!("dt-c{i}"),
            "--rootfs",
            w.rootfs(),
            "true",
        ]);
        made.push(out.ok().stdout.trim().to_string());
    }
    let x = w.run_d(&["--name", "dt-x"], &["sh", "-c", "exit 2"]);
    w.until("dt-x exited", || w.status(&x) == "exited");
    made.push(x);
    // Newest first: the reverse of the order they were made in.
    let short: Vec<String> = made.iter().rev().map(|id| id[..12].to_string()).collect();
    let table = w.b(&["ps", "-a"]).ok().stdout.clone();
    assert_eq!(ids_of(&table), short, "{table}");
    assert!(table.starts_with("CONTAINER ID   IMAGE"), "{table}");
    for opts in [
        &[][..],
        &["-a"][..],
        &["-a", "-n", "3"][..],
        &["-n", "2"][..],
        &["-l"][..],
        &["-a", "--filter", "status=created"][..],
        &["--filter", "label=k=r", "-n", "3"][..],
        &["-a", "--filter", "exited=2"][..],
        &["-a", "--no-trunc"][..],
    ] {
        let mut fast = vec!["ps"];
        fast.extend_from_slice(opts);
        let mut engine = fast.clone();
        engine.extend_from_slice(&["--format", same]);
        let (fast, engine) = (
            w.b(&fast).ok().stdout.clone(),
            w.b(&engine).ok().stdout.clone(),
        );
        assert_eq!(ids_of(&fast), ids_of(&engine), "{opts:?}\n{fast}\n{engine}");
        assert_eq!(fast.lines().next(), engine.lines().next(), "{opts:?}");
    }
    // The limits: -n N lines, -l one, whatever the format.
    let n = |args: &[&str]| {
        let mut a = vec!["ps"];
        a.extend_from_slice(args);
        w.b(&a).ok().stdout.lines().count()
    };
    assert_eq!(n(&["-n", "3"]), 4);
    assert_eq!(n(&["-l"]), 2);
    assert_eq!(n(&["-n", "3", "-q"]), 3);
    assert_eq!(n(&["-l", "-q"]), 1);
    assert_eq!(n(&["-a", "-q"]), 9);
    assert_eq!(n(&["-q"]), 4);
    let latest = w.b(&["ps", "-l", "-q", "--no-trunc"]).ok().stdout.clone();
    assert_eq!(latest.trim(), made.last().unwrap());
    w.finish();
}
