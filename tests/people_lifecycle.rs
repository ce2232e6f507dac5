//! The monitor's half of the people face's lifecycle: restart policies (in place, with
//! Docker's backoff), healthchecks on the monitor's own timer (no systemd anywhere), and
//! the events journal, driven through the built binary as a user would. Each test has its
//! own `--root`/`--runroot` and busybox root filesystem and ends with a leak audit.
//! Timing is only ever checked against generous bounds.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::people::World;
use common::Out;
use serde_json::Value;

/// A world whose waits allow for Docker's restart backoff on a loaded machine.
fn world(name: &str) -> World {
    World::new(name).patience(Duration::from_secs(60), Duration::from_millis(50))
}

/// The journal's events of one container, in order (`events --since 0 --until now`).
fn events_of(w: &World, name: &str) -> Vec<Value> {
    let until = soon();
    let out = w.b(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{json .}}",
    ]);
    out.ok();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// A second from now, in Unix seconds (an `--until` that has passed once all is written).
fn soon() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (t.as_secs() + 1).to_string()
}

fn one_line(out: &Out, code: i32, phrase: &str) {
    assert_eq!(out.code, code, "exit {code} expected: {out:?}");
    assert!(
        out.stderr.contains(phrase),
        "{phrase:?} expected: {}",
        out.stderr
    );
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one line: {}",
        out.stderr
    );
}

fn actions(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["Action"].as_str().unwrap().to_string())
        .collect()
}

/// Host processes whose command line holds `word` and that are not zombies.
fn processes_with(word: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(word) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn on_failure_3_restarts_exactly_three_times_with_dockers_backoff() {
    let w = world("onfail");
    w.run_d(
        &["--name", "of3", "--restart", "on-failure:3"],
        &["sh", "-c", "echo ran; exit 7"],
    );
    w.until("of3 stays exited", || {
        let j = w.inspect("of3");
        j["State"]["Status"] == "exited" && j["RestartCount"] == 3
    });
    // No fourth run comes after a while either.
    std::thread::sleep(Duration::from_secs(2));
    let j = w.inspect("of3");
    assert_eq!(j["State"]["Status"], "exited");
    assert_eq!(j["State"]["ExitCode"], 7);
    assert_eq!(j["RestartCount"], 3);
    assert_eq!(j["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(j["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 3);
    let logs = w.b(&["logs", "of3"]);
    assert_eq!(logs.stdout.matches("ran").count(), 4, "{}", logs.stdout);
    let ev = events_of(&w, "of3");
    let acts = actions(&ev);
    assert_eq!(
        acts,
        ["create", "start", "die", "start", "die", "start", "die", "start", "die"],
        "{acts:?}"
    );
    for e in ev.iter().filter(|e| e["Action"] == "die") {
        assert_eq!(e["Actor"]["Attributes"]["exitCode"], "7");
    }
    // Docker's backoff: 100 ms, then doubling; never sooner (only lower bounds are safe on
    // a noisy machine, with a generous upper one).
    let t = |e: &Value| e["timeNano"].as_i64().unwrap();
    let mut want = 100_000_000i64;
    for pair in ev[2..].chunks(2) {
        if pair.len() < 2 {
            break;
        }
        let gap = t(&pair[1]) - t(&pair[0]);
        assert!(gap >= want, "restart after {gap} ns, backoff {want} ns");
        assert!(gap < 30_000_000_000, "restart after {gap} ns");
        want *= 2;
    }
    // A start by the user begins anew.
    w.b(&["start", "of3"]).ok();
    w.until("of3 restarted by its policy", || {
        let j = w.inspect("of3");
        j["State"]["Status"] == "exited" && j["RestartCount"] == 3
    });
    assert_eq!(w.b(&["logs", "of3"]).stdout.matches("ran").count(), 8);
    w.finish();
}

#[test]
fn always_comes_back_after_a_crash_and_not_after_stop_or_kill() {
    let w = world("always");
    let id = w.run_d(&["--name", "al", "--restart", "always"], &["sleep", "1000"]);
    let pid = w.inspect("al")["State"]["Pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    w.until("al back with a new process", || {
        let j = w.inspect("al");
        j["State"]["Status"] == "running"
            && j["State"]["Pid"].as_i64() != Some(pid as i64)
            && j["RestartCount"] == 1
    });
    let ps = w.b(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.stdout.starts_with("al Up "), "{}", ps.stdout);
    // The container was made again in place: same id, same monitor.
    assert_eq!(w.inspect("al")["Id"], id.as_str());
    w.b(&["stop", "-t", "1", "al"]).ok();
    std::thread::sleep(Duration::from_secs(2));
    let j = w.inspect("al");
    assert_eq!(j["State"]["Status"], "exited");
    assert_eq!(j["RestartCount"], 1);

    // kill by the user ends it too; unless-stopped as well.
    for policy in ["always", "unless-stopped"] {
        let name = format!("k-{policy}");
        w.run_d(&["--name", &name, "--restart", policy], &["sleep", "1000"]);
        w.b(&["kill", &name]).ok();
        w.until("killed", || w.inspect(&name)["State"]["Status"] == "exited");
        std::thread::sleep(Duration::from_secs(2));
        let j = w.inspect(&name);
        assert_eq!(j["State"]["Status"], "exited", "{policy}");
        assert_eq!(j["State"]["ExitCode"], 137, "{policy}");
        assert_eq!(j["RestartCount"], 0, "{policy}");
    }
    // update --restart reaches a running container's monitor.
    w.run_d(&["--name", "up"], &["sleep", "1000"]);
    w.b(&["update", "--restart", "always", "up"]).ok();
    assert_eq!(
        w.inspect("up")["HostConfig"]["RestartPolicy"]["Name"],
        "always"
    );
    let pid = w.inspect("up")["State"]["Pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    w.until("up restarted", || w.inspect("up")["RestartCount"] == 1);
    w.finish();
}

#[test]
fn rm_f_of_a_container_restarting_in_a_loop_leaves_nothing() {
    let w = world("loop");
    let id = w.run_d(
        &["--name", "lp", "--restart", "always"],
        &["sh", "-c", "exit 3"],
    );
    w.until("a few restarts", || {
        w.inspect("lp")["RestartCount"].as_i64().unwrap() >= 3
    });
    let ps = w.b(&["ps", "-a", "--format", "{{.Status}}", "--filter", "name=lp"]);
    assert!(
        ps.stdout.starts_with("Restarting (3)") || ps.stdout.starts_with("Up "),
        "{}",
        ps.stdout
    );
    // Docker's wait ends at the next exit though the container comes back.
    let wait = w.b(&["wait", "lp"]);
    wait.ok();
    assert_eq!(wait.stdout.trim(), "3");
    w.b(&["rm", "-f", "lp"]).ok();
    let gone = w.b(&["inspect", "lp"]);
    assert_eq!(gone.code, 1);
    let ev = events_of(&w, &id);
    assert_eq!(actions(&ev).last().map(String::as_str), Some("destroy"));
    w.finish();
}

#[test]
fn a_monitor_killed_in_a_restart_loop_is_reconciled() {
    let w = world("mondie");
    let id = w.run_d(
        &["--name", "md", "--restart", "always"],
        &["sh", "-c", "sleep 0.3; exit 6"],
    );
    w.until("restarting", || {
        w.inspect("md")["RestartCount"].as_i64().unwrap() >= 2
    });
    let m: Value = serde_json::from_slice(
        &std::fs::read(w.runroot.join("containers").join(&id).join("monitor.json")).unwrap(),
    )
    .unwrap();
    let mon = m["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mon), nix::sys::signal::SIGKILL).unwrap();
    w.until("monitor gone", || common::gone(mon));
    // Nothing brings it back without its monitor; the next command finalizes it.
    let j = w.inspect("md");
    assert_eq!(j["State"]["Status"], "exited", "{j}");
    assert!(!w.runroot.join("containers").join(&id).exists());
    assert!(!w.runroot.join("runtime").join(&id).exists());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(w.inspect("md")["State"]["Status"], "exited");
    // And it starts again under its policy.
    w.b(&["start", "md"]).ok();
    w.until("md restarting again", || {
        w.inspect("md")["RestartCount"].as_i64().unwrap() >= 1
    });
    w.finish();
}

#[test]
fn healthchecks_without_systemd() {
    let w = world("health");
    // Passing; the probe runs in the container's pid namespace (its /proc, mounted for
    // that namespace, has no /proc/self for a process of another one).
    w.run_d(
        &[
            "--name",
            "ok",
            "--health-cmd",
            "read s </proc/self/stat && echo fine",
            "--health-interval",
            "300ms",
        ],
        &["sleep", "1000"],
    );
    w.until("ok healthy", || {
        w.inspect("ok")["State"]["Health"]["Status"] == "healthy"
    });
    let j = w.inspect("ok");
    let h = &j["State"]["Health"];
    assert_eq!(h["FailingStreak"], 0);
    assert_eq!(h["Log"][0]["ExitCode"], 0);
    assert_eq!(h["Log"][0]["Output"], "fine\n");
    assert_eq!(j["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(j["Config"]["Healthcheck"]["Interval"], 300_000_000);
    let ps = w.b(&[
        "ps",
        "--format",
        "{{.Names}} {{.Status}}",
        "--filter",
        "health=healthy",
    ]);
    assert!(
        ps.stdout.trim().starts_with("ok Up ") && ps.stdout.trim().ends_with("(healthy)"),
        "{}",
        ps.stdout
    );
    assert_eq!(w.b(&["healthcheck", "run", "ok"]).code, 0);

    // Failing: unhealthy after --health-retries; the log keeps the last 5.
    w.run_d(
        &[
            "--name",
            "bad",
            "--health-cmd",
            "echo no; exit 2",
            "--health-interval",
            "200ms",
            "--health-retries",
            "3",
        ],
        &["sleep", "1000"],
    );
    w.until("bad unhealthy", || {
        w.inspect("bad")["State"]["Health"]["Status"] == "unhealthy"
    });
    let h = w.inspect("bad")["State"]["Health"].clone();
    assert!(h["FailingStreak"].as_i64().unwrap() >= 3, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 2);
    w.until("five probes logged", || {
        w.inspect("bad")["State"]["Health"]["Log"]
            .as_array()
            .unwrap()
            .len()
            == 5
    });
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        w.inspect("bad")["State"]["Health"]["Log"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let ps = w.b(&[
        "ps",
        "--format",
        "{{.Names}}",
        "--filter",
        "health=unhealthy",
    ]);
    assert_eq!(ps.stdout.trim(), "bad");
    let run = w.b(&["healthcheck", "run", "bad"]);
    assert_eq!((run.code, run.stdout.trim()), (1, "unhealthy"));
    let ev = events_of(&w, "bad");
    assert!(
        actions(&ev).contains(&"health_status: unhealthy".to_string()),
        "{ev:?}"
    );

    // A probe that hangs (leaving a process behind) is killed at its timeout, with what it
    // left.
    w.run_d(
        &[
            "--name",
            "hang",
            "--health-cmd",
            "sleep 9771 & sleep 9772",
            "--health-timeout",
            "300ms",
            "--health-interval",
            "3s",
            "--health-retries",
            "1",
        ],
        &["sh", "-c", "while :; do sleep 1; done"],
    );
    w.until("hang unhealthy", || {
        w.inspect("hang")["State"]["Health"]["Status"] == "unhealthy"
    });
    let h = w.inspect("hang")["State"]["Health"].clone();
    assert_eq!(h["Log"][0]["ExitCode"], -1);
    assert_eq!(
        h["Log"][0]["Output"],
        "Health check exceeded timeout (300ms)"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_with("sleep\u{0}977").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        processes_with("sleep\u{0}977"),
        Vec::<i32>::new(),
        "probe leftovers"
    );

    // A probe that ends but leaves a process behind: the process goes with it.
    w.run_d(
        &[
            "--name",
            "left",
            "--health-cmd",
            "sleep 9773 & echo started",
            "--health-interval",
            "3s",
        ],
        &["sh", "-c", "while :; do sleep 1; done"],
    );
    w.until("left healthy", || {
        w.inspect("left")["State"]["Health"]["Status"] == "healthy"
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_with("sleep\u{0}9773").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        processes_with("sleep\u{0}9773"),
        Vec::<i32>::new(),
        "probe leftovers"
    );

    // No healthcheck: healthcheck run says so; --no-healthcheck records NONE.
    w.run_d(&["--name", "none", "--no-healthcheck"], &["sleep", "1000"]);
    assert_eq!(
        w.inspect("none")["Config"]["Healthcheck"]["Test"][0],
        "NONE"
    );
    assert!(w.inspect("none")["State"]["Health"].is_null());
    one_line(
        &w.b(&["healthcheck", "run", "none"]),
        125,
        "has no defined healthcheck",
    );
    w.finish();
}

fn sha256_of(p: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A docker-archive of the busybox root filesystem whose config has a HEALTHCHECK, loaded
/// into the world's store as `localhost/hc:1`.
fn load_image_with_healthcheck(w: &World) {
    let d = w.dir.join("img");
    std::fs::create_dir_all(&d).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&w.rootfs)
        .arg("-cf")
        .arg(d.join("layer.tar"))
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let diff = sha256_of(&d.join("layer.tar"));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Cmd": ["sleep", "1000"],
            "Healthcheck": {"Test": ["CMD-SHELL", "echo from-image"], "Interval": 300_000_000i64, "Retries": 2},
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]},
    });
    std::fs::write(d.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let cfg = format!("{}.json", sha256_of(&d.join("config.json")));
    std::fs::rename(d.join("config.json"), d.join(&cfg)).unwrap();
    let manifest = serde_json::json!([{"Config": cfg, "RepoTags": ["localhost/hc:1"], "Layers": ["layer.tar"]}]);
    std::fs::write(
        d.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&d)
        .arg("-cf")
        .arg(w.dir.join("hc.tar"))
        .args(["manifest.json", &cfg, "layer.tar"])
        .status()
        .unwrap();
    assert!(st.success());
    w.b(&["load", "-i", w.dir.join("hc.tar").to_str().unwrap()])
        .ok();
}

#[test]
fn the_images_healthcheck_with_flags_over_it() {
    let w = world("imghc");
    load_image_with_healthcheck(&w);
    w.b(&["run", "-d", "--name", "img", "localhost/hc:1"]).ok();
    w.until("img healthy", || {
        w.inspect("img")["State"]["Health"]["Status"] == "healthy"
    });
    let j = w.inspect("img");
    assert_eq!(j["Config"]["Healthcheck"]["Test"][1], "echo from-image");
    assert_eq!(j["State"]["Health"]["Log"][0]["Output"], "from-image\n");
    // A flag replaces what it names and keeps the rest (Retries 2 from the image).
    w.b(&[
        "run",
        "-d",
        "--name",
        "over",
        "--health-cmd",
        "exit 1",
        "localhost/hc:1",
    ])
    .ok();
    w.until("over unhealthy", || {
        w.inspect("over")["State"]["Health"]["Status"] == "unhealthy"
    });
    let j = w.inspect("over");
    assert_eq!(j["Config"]["Healthcheck"]["Retries"], 2);
    assert_eq!(j["Config"]["Healthcheck"]["Interval"], 300_000_000);
    assert!(j["State"]["Health"]["FailingStreak"].as_i64().unwrap() >= 2);
    w.b(&[
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "localhost/hc:1",
    ])
    .ok();
    std::thread::sleep(Duration::from_secs(1));
    let j = w.inspect("off");
    assert!(j["State"]["Health"].is_null(), "{j}");
    let ps = w.b(&[
        "ps",
        "--format",
        "{{.Names}} {{.Status}}",
        "--filter",
        "name=off",
    ]);
    assert!(!ps.stdout.contains('('), "{}", ps.stdout);
    // Image events: load, tag, untag, delete.
    w.b(&["rm", "-f", "img", "over", "off"]).ok();
    w.b(&["tag", "localhost/hc:1", "localhost/hc:2"]).ok();
    w.b(&["rmi", "localhost/hc:2"]).ok();
    w.b(&["rmi", "localhost/hc:1"]).ok();
    let until = soon();
    let ev = w.b(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    ev.ok();
    let lines: Vec<&str> = ev.stdout.lines().collect();
    // The last name's rmi untags, then deletes (Docker's two lines, two events).
    let id = lines[0].strip_prefix("load ").unwrap_or_default();
    assert!(id.starts_with("sha256:"), "{}", ev.stdout);
    let want = [
        format!("load {id}"),
        "tag localhost/hc:2".to_string(),
        format!("untag {id}"),
        format!("untag {id}"),
        format!("delete {id}"),
    ];
    assert_eq!(lines, want, "{}", ev.stdout);
    w.finish();
}

#[test]
fn events_sees_a_lifecycle_driven_by_another_process() {
    let w = world("events");
    let mut follower = w
        .cmd(&[
            "events",
            // From the journal's start, then following: the same lines however late the
            // follower opens the journal on a loaded machine (this world's are all ours).
            "--since",
            "0",
            "--filter",
            "container=ev1",
            "--filter",
            "container=ev2",
            "--format",
            "{{json .}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = w.run_d(
        &["--name", "ev1"],
        &[
            "sh",
            "-c",
            "trap 'exit 5' TERM; while :; do sleep 0.2; done",
        ],
    );
    w.b(&["pause", "ev1"]).ok();
    w.b(&["unpause", "ev1"]).ok();
    w.b(&["rename", "ev1", "ev2"]).ok();
    w.b(&["stop", "-t", "20", "ev2"]).ok();
    w.b(&["rm", "ev2"]).ok();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let want = [
        "create", "start", "pause", "unpause", "rename", "kill", "die", "stop", "destroy",
    ];
    let mut got: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < want.len() && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(serde_json::from_str(&l).unwrap());
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(actions(&got), want);
    for e in &got {
        assert_eq!(e["Type"], "container");
        assert_eq!(e["Actor"]["ID"], id.as_str());
        assert_eq!(e["scope"], "local");
        assert!(e["timeNano"].as_i64().unwrap() / 1_000_000_000 == e["time"].as_i64().unwrap());
    }
    assert_eq!(got[5]["Actor"]["Attributes"]["signal"], "15");
    assert_eq!(got[6]["Actor"]["Attributes"]["exitCode"], "5");
    assert_eq!(got[4]["Actor"]["Attributes"]["oldName"], "/ev1");

    // Docker's default line; --until ends by itself; filters narrow.
    let until = soon();
    let out = w.b(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=die",
    ]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let l = lines[0];
    assert_eq!(&l[29..30], "Z", "{l}");
    let rest = format!(
        " container die {id} (exitCode=5, image={}, name=ev2)",
        w.rootfs.display()
    );
    assert!(l.ends_with(&rest), "{l}");
    let none = w.b(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
    ]);
    assert_eq!(none.stdout, "");
    w.finish();
}

#[test]
fn bad_inputs_one_line_right_code_nothing_left() {
    let w = world("bad");
    let rootfs = w.rootfs.to_str().unwrap().to_string();
    for (flags, phrase) in [
        (vec!["--restart", "sometimes"], "--restart sometimes"),
        (vec!["--restart", "on-failure:-1"], "cannot be negative"),
        (
            vec!["--health-cmd", "true", "--health-interval", "0"],
            "--health-interval 0",
        ),
        (vec!["--restart", "always", "--rm"], "--rm"),
    ] {
        for cmd in ["run", "create"] {
            let mut a = vec![cmd, "--name", "x"];
            a.extend(flags.iter().copied());
            a.extend(["--rootfs", rootfs.as_str(), "true"]);
            one_line(&w.b(&a), 125, phrase);
        }
    }
    one_line(
        &w.b(&["events", "--since", "garbage"]),
        1,
        "--since garbage",
    );
    one_line(&w.b(&["events", "--until", "later"]), 1, "--until later");
    one_line(
        &w.b(&["events", "--filter", "color=red"]),
        1,
        "invalid filter 'color'",
    );
    w.run_d(&["--name", "u"], &["true"]);
    one_line(
        &w.b(&["update", "--restart", "sometimes", "u"]),
        1,
        "--restart sometimes",
    );
    // A bad resource next to a good policy: nothing of either is applied.
    one_line(
        &w.b(&["update", "--restart", "always", "--memory", "64x", "u"]),
        1,
        "--memory 64x",
    );
    assert_eq!(w.inspect("u")["HostConfig"]["RestartPolicy"]["Name"], "no");
    let ps = w.b(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ps.stdout.trim(), "u");
    assert!(!Path::new(&w.root.join("names/x")).exists());
    w.finish();
}
