//! What listings read of each container, kept cheap without losing the truth: a monitor's
//! liveness is the lock it holds (`RUNROOT/containers/<id>/monitor.lock`), a paused
//! container is marked by `pause` in its runtime directory. Each test checks that the
//! cheap look still tells what runs, across kills and crashes between two steps.

mod common;

use std::path::Path;

use common::gone;
use common::people::{line_of, World};

#[test]
fn a_monitor_holds_its_lock_and_a_killed_one_is_seen_by_ps() {
    let w = World::new("lk");
    let a = w.run_d(&["--name", "lk-a"], &["sleep", "1000"]);
    let b = w.run_d(&["--name", "lk-b"], &["sleep", "1000"]);
    let lock = w.runroot.join("containers").join(&a).join("monitor.lock");
    assert!(lock.exists(), "{}", lock.display());
    let out = w.names_and_statuses();
    assert!(line_of(&out, "lk-a").starts_with("lk-a Up "), "{out}");
    assert!(line_of(&out, "lk-b").starts_with("lk-b Up "), "{out}");
    // kill -9 of one monitor: ps says so at once, the other is untouched.
    let mon = w.monitor_pid(&a);
    let init = w.inspect("lk-a")["State"]["Pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mon), nix::sys::signal::SIGKILL).unwrap();
    w.until("monitor gone", || gone(mon));
    let out = w.names_and_statuses();
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
    assert!(line_of(&w.names_and_statuses(), "lkold").starts_with("lkold Up "));
    let mon = w.monitor_pid(&id);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mon), nix::sys::signal::SIGKILL).unwrap();
    w.until("monitor gone", || gone(mon));
    let out = w.names_and_statuses();
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
    assert!(line_of(&w.names_and_statuses(), "pm").ends_with("(Paused)"));
    assert_eq!(w.status("pm"), "paused");
    w.b(&["unpause", "pm"]).ok();
    assert!(!mark.exists());
    assert_eq!(w.status("pm"), "running");
    // A `pause` killed between its mark and the freeze: the cgroup decides.
    std::fs::write(&mark, b"").unwrap();
    let out = w.names_and_statuses();
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
    cpuset_children_come_filled("cpuset", false);
}

/// A cpuset parent someone else made and filled, without `cgroup.clone_children`: its
/// first child is filled by the runtime and the parent gets the flag, so the next ones
/// come filled from the kernel too.
#[test]
fn a_cpuset_parent_filled_by_someone_else_gets_clone_children() {
    cpuset_children_come_filled("cpuset2", true);
}

fn cpuset_children_come_filled(name: &str, made_by_someone_else: bool) {
    let cpuset = Path::new("/sys/fs/cgroup/cpuset");
    if !cpuset.join("cpuset.cpus").exists() {
        eprintln!("no v1 cpuset hierarchy here: nothing to check");
        return;
    }
    let c = common::Ctx::new(name);
    let parent = cpuset.join(format!("berth-it-{}", c.name));
    assert!(!parent.exists());
    let want_cpus = std::fs::read_to_string(cpuset.join("cpuset.cpus")).unwrap();
    let want_mems = std::fs::read_to_string(cpuset.join("cpuset.mems")).unwrap();
    let flag = || {
        std::fs::read_to_string(parent.join("cgroup.clone_children"))
            .unwrap()
            .trim()
            .to_string()
    };
    if made_by_someone_else {
        std::fs::create_dir(&parent).unwrap();
        std::fs::write(parent.join("cpuset.cpus"), want_cpus.trim()).unwrap();
        std::fs::write(parent.join("cpuset.mems"), want_mems.trim()).unwrap();
        assert_eq!(flag(), "0");
    }
    for n in ["a", "b"] {
        let id = c.id(n);
        let b = c.bundle_for(&id, &["sleep", "1000"]);
        let pid = c.create(&b, &id);
        let leaf = parent.join(&id);
        assert_eq!(
            std::fs::read_to_string(leaf.join("cpuset.cpus")).unwrap(),
            want_cpus
        );
        assert_eq!(
            std::fs::read_to_string(leaf.join("cpuset.mems")).unwrap(),
            want_mems
        );
        assert_eq!(flag(), "1");
        // The init is in it.
        let procs = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == pid.to_string()));
    }
    c.finish();
}

/// Everything `ps` shows of the records, without the times (which move between two runs).
const ALL: &str = "{{.ID}}|{{.Image}}|{{.Command}}|{{.Names}}|{{.Labels}}|{{.State}}|{{.Mounts}}|{{.Networks}}|{{.Ports}}|{{.LocalVolumes}}|{{.CreatedAt}}";

fn ps_all(w: &World) -> String {
    let out = w.b(&["ps", "-a", "--no-trunc", "--format", ALL]);
    out.ok();
    out.stdout.clone()
}

fn listings(w: &World) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(w.root.join("containers"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().len() == 64)
        .map(|e| e.path().join("listing.json"))
        .collect();
    v.sort();
    v
}

/// What `ps` prints from the listings equals what it prints from the full records (the
/// listings moved away for one run, then put back), and every container has one.
fn same_as_full_records(w: &World) -> String {
    let fast = ps_all(w);
    let files = listings(w);
    for f in &files {
        assert!(f.exists(), "no listing: {}", f.display());
        std::fs::rename(f, f.with_extension("aside")).unwrap();
    }
    let full = ps_all(w);
    for f in &files {
        std::fs::rename(f.with_extension("aside"), f).unwrap();
    }
    assert_eq!(fast, full, "listings and records disagree");
    fast
}

fn row<'a>(ps: &'a str, id: &str) -> Vec<&'a str> {
    ps.lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} not listed: {ps}"))
        .split('|')
        .collect()
}

#[test]
fn the_listing_follows_every_change_of_the_record() {
    let w = World::new("lst");
    let mut a = vec!["create", "--name", "lst-a", "-l", "tier=web", "-l", "x=1=2"];
    a.extend_from_slice(&["--expose", "8080", "--rootfs", w.rootfs(), "sleep", "1000"]);
    let out = w.b(&a);
    out.ok();
    let id = out.stdout.trim().to_string();
    let other = w.run_d(&["--name", "lst-b"], &["sh", "-c", "exit 3"]);
    // Settled before any comparison: its state would change between the two looks.
    w.until("lst-b exited", || w.status(&other) == "exited");
    let ps = same_as_full_records(&w);
    let r = row(&ps, &id);
    assert_eq!(r[3], "lst-a", "{ps}");
    assert_eq!(r[4], "tier=web,x=1=2", "{ps}");
    assert_eq!(r[5], "created", "{ps}");
    // rename: the new name at once, in both.
    w.b(&["rename", "lst-a", "lst-renamed"]).ok();
    let ps = same_as_full_records(&w);
    assert_eq!(row(&ps, &id)[3], "lst-renamed", "{ps}");
    // start, pause, unpause, restart, update, stop: the state and the record as they go.
    w.b(&["start", "lst-renamed"]).ok();
    assert_eq!(row(&same_as_full_records(&w), &id)[5], "running");
    w.b(&["pause", "lst-renamed"]).ok();
    assert_eq!(row(&same_as_full_records(&w), &id)[5], "paused");
    w.b(&["unpause", "lst-renamed"]).ok();
    w.b(&["restart", "-t", "0", "lst-renamed"]).ok();
    assert_eq!(row(&same_as_full_records(&w), &id)[5], "running");
    w.b(&["update", "--cpu-shares", "512", "lst-renamed"]).ok();
    assert_eq!(w.inspect(&id)["HostConfig"]["CpuShares"], 512);
    let ps = same_as_full_records(&w);
    assert_eq!(row(&ps, &id)[3], "lst-renamed", "{ps}");
    w.b(&["stop", "-t", "0", "lst-renamed"]).ok();
    let ps = same_as_full_records(&w);
    assert_eq!(row(&ps, &id)[5], "exited", "{ps}");
    assert_eq!(row(&ps, &other)[5], "exited", "{ps}");
    // Filters on what the listing holds.
    let f = w.b(&["ps", "-a", "-q", "--no-trunc", "--filter", "label=tier=web"]);
    assert_eq!(f.ok().stdout.trim(), id);
    let f = w.b(&["ps", "-a", "-q", "--no-trunc", "--filter", "expose=8080"]);
    assert_eq!(f.ok().stdout.trim(), id);
    let f = w.b(&["ps", "-a", "-q", "--no-trunc", "--filter", "name=renamed"]);
    assert_eq!(f.ok().stdout.trim(), id);
    w.finish();
}

#[test]
fn a_listing_is_used_only_for_the_record_it_was_made_from() {
    let w = World::new("lsf");
    let out = w.b(&["create", "--name", "lsf", "--rootfs", w.rootfs(), "true"]);
    out.ok();
    let id = out.stdout.trim().to_string();
    let dir = w.root.join("containers").join(&id);
    let listing = dir.join("listing.json");
    let config = dir.join("config.json");
    let name = |w: &World| row(&ps_all(w), &id)[3].to_string();
    assert_eq!(name(&w), "lsf");
    // ps reads the listing: a name changed in it (nothing else) shows.
    let good = std::fs::read_to_string(&listing).unwrap();
    assert!(good.contains("\"Name\":\"lsf\""), "{good}");
    std::fs::write(
        &listing,
        good.replace("\"Name\":\"lsf\"", "\"Name\":\"elsewhere\""),
    )
    .unwrap();
    assert_eq!(name(&w), "elsewhere");
    // config.json replaced by another berth (same bytes, a new file): the listing no
    // longer names it, the record is read.
    let bytes = std::fs::read(&config).unwrap();
    let tmp = dir.join("config.json.new");
    std::fs::write(&tmp, &bytes).unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    assert_eq!(name(&w), "lsf");
    // Gone (a record of an older berth), torn, or of another container: the record.
    std::fs::remove_file(&listing).unwrap();
    assert_eq!(name(&w), "lsf");
    std::fs::write(&listing, &good.as_bytes()[..good.len() / 2]).unwrap();
    assert_eq!(name(&w), "lsf");
    std::fs::write(&listing, b"").unwrap();
    assert_eq!(name(&w), "lsf");
    // The next write of the record makes a good one again.
    w.b(&["rename", "lsf", "lsf2"]).ok();
    let now = std::fs::read_to_string(&listing).unwrap();
    assert!(now.contains("\"Name\":\"lsf2\""), "{now}");
    assert_eq!(name(&w), "lsf2");
    same_as_full_records(&w);
    w.finish();
}
