//! What the fast paths of `stats --no-stream`, the monitor's healthcheck probes and
//! `system df` must still get right, driven through the built binary: CPU % from one
//! reading (the kept sample or the container's lifetime), probes that follow a container
//! restarted in place, and sizes of what containers wrote. Each test has its own
//! `--root`/`--runroot` and ends with a leak audit.

mod common;

use std::time::Duration;

use common::people::World;
use serde_json::Value;

/// A world with room for a loaded machine: each command may take two minutes, and `until`
/// looks every 100 ms (its conditions are berth commands) for up to 90 s.
fn world(name: &str) -> World {
    World::new(name)
        .deadline(Duration::from_secs(120))
        .patience(Duration::from_secs(90), Duration::from_millis(100))
}

/// `stats --no-stream` CPU % of one container.
fn cpu(w: &World, name: &str) -> f64 {
    let out = w.b(&["stats", "--no-stream", "--format", "{{.CPUPerc}}", name]);
    out.ok();
    out.stdout
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("CPU %: {:?}", out.stdout))
}

#[test]
fn stats_no_stream_answers_from_one_reading() {
    let w = world("stats");
    let busy = w.run_d(&["--name", "busy"], &["sh", "-c", "while :; do :; done"]);
    let idle = w.run_d(&["--name", "idle"], &["sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(300));
    // The first reading of a container: its CPU time over its life so far.
    let first = cpu(&w, "busy");
    assert!(first > 1.0, "a busy loop, averaged over its life: {first}%");
    // What the next one measures against, kept in the runroot beside the monitor's files.
    let kept = |id: &str| {
        std::fs::read_to_string(w.runroot.join("containers").join(id).join("stats.last"))
            .unwrap_or_default()
    };
    let fields: Vec<u64> = kept(&busy)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(fields.len(), 4, "pid cpu system at: {:?}", kept(&busy));
    // Both listed at once (one reading each), the idle one kept too.
    let out = w.b(&["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}"]);
    out.ok();
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert!(!kept(&idle).is_empty());
    // Later readings measure since the kept sample: a sleeping process has used nothing
    // since (its start-up would show in a lifetime average), the loop still burns.
    std::thread::sleep(Duration::from_millis(400));
    let out = w.b(&["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}"]);
    out.ok();
    assert!(
        out.stdout.lines().any(|l| l == "idle 0.00%"),
        "{}",
        out.stdout
    );
    std::thread::sleep(Duration::from_millis(400));
    let again = cpu(&w, "busy");
    assert!(again > 1.0, "the loop since the last reading: {again}%");
    // A kept sample that is not one (damaged, or another process's) is not used: the
    // lifetime average, and a good one written in its place.
    std::fs::write(
        w.runroot.join("containers").join(&busy).join("stats.last"),
        "garbage\n",
    )
    .unwrap();
    assert!(cpu(&w, "busy") > 1.0);
    assert_eq!(kept(&busy).split_whitespace().count(), 4);
    // Stopped: zeros, and nothing kept once it is removed (the audit checks the runroot).
    w.b(&["stop", "-t", "0", "idle"]).ok();
    let out = w.b(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.PIDs}}",
    ]);
    out.ok();
    assert!(
        out.stdout.lines().any(|l| l == "idle 0.00% 0"),
        "{}",
        out.stdout
    );
    w.finish();
}

#[test]
fn probes_follow_a_container_restarted_in_place() {
    let w = world("probe");
    // Each init writes its own marker; the probe passes only where it finds one, so a
    // probe sent into the first (dead) init's namespaces would fail.
    w.run_d(
        &[
            "--name",
            "again",
            "--restart",
            "always",
            "--health-cmd",
            "test -e /tmp/up && echo up",
            "--health-interval",
            "300ms",
        ],
        &["sh", "-c", "touch /tmp/up; sleep 2; rm /tmp/up; exit 3"],
    );
    w.until("healthy", || {
        w.inspect("again")["State"]["Health"]["Status"] == "healthy"
    });
    w.until("restarted", || {
        w.inspect("again")["RestartCount"].as_i64() >= Some(1)
    });
    let started = |j: &Value| j["State"]["StartedAt"].as_str().unwrap_or("").to_string();
    // A probe that started after the current (restarted) init did, and passed. Each init
    // is up for 2 s: on a loaded machine one may go by without a passing probe, so the
    // init is whichever runs when a snapshot shows one, not the first seen after a restart.
    w.until("a passing probe of a restarted init", || {
        let j = w.inspect("again");
        let since = started(&j);
        j["RestartCount"].as_i64() >= Some(1)
            && j["State"]["Health"]["Log"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| {
                    e["Start"].as_str().unwrap_or("") > since.as_str()
                        && e["ExitCode"] == 0
                        && e["Output"] == "up\n"
                })
    });
    w.finish();
}

#[test]
fn system_df_counts_what_containers_wrote() {
    let w = world("df");
    w.busybox_image("localhost/pq:1");
    let id = w.detach(&[
        "--name",
        "writer",
        "localhost/pq:1",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /tmp/blob; sleep 1000",
    ]);
    w.b(&["create", "--name", "made", "localhost/pq:1", "true"])
        .ok();
    let upper = |n: &str| -> u64 {
        let out = w.b(&["system", "df", "-v"]);
        out.ok();
        let line = out
            .stdout
            .lines()
            .find(|l| l.trim_end().ends_with(n))
            .unwrap_or_else(|| panic!("{n} in {}", out.stdout))
            .to_string();
        // SIZE is the column before CREATED ("N units ago").
        let cols: Vec<&str> = line
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let size = cols[cols.len() - 4];
        let (num, unit) = size.split_at(size.find(|c: char| c.is_ascii_alphabetic()).unwrap());
        let mult = match unit {
            "B" => 1.0,
            "kB" => 1e3,
            "MB" => 1e6,
            u => panic!("unit {u} in {line}"),
        };
        (num.parse::<f64>().unwrap() * mult) as u64
    };
    w.until("the blob written", || upper("writer") >= 300_000);
    assert_eq!(upper("made"), 0);
    let out = w.b(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}",
    ]);
    out.ok();
    let containers = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Containers "))
        .unwrap()
        .to_string();
    assert!(containers.starts_with("Containers 2 1 "), "{containers}");
    assert!(
        containers.ends_with("kB") || containers.ends_with("MB"),
        "{containers}"
    );
    let images = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Images "))
        .unwrap();
    assert!(images.starts_with("Images 1 1 "), "{images}");
    let _ = id;
    w.finish();
}
