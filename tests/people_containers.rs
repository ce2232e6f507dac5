//! The people face's containers, driven through the built binary as a user would: each
//! test has its own `--root`/`--runroot` and busybox root filesystem (`run --rootfs DIR`),
//! checks effects inside the container and what the commands print, and ends with a leak
//! audit (processes, cgroups, mounts, runtime state, records).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::people::{code_msg, TestUser, World};
use common::Out;

#[test]
fn foreground_run_output_and_exit_codes() {
    let w = World::new("fg");
    let out = w.run(&[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.code, 3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    // Killed by a signal: 128 + signal.
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| w.run(&["--rm", "--name", "victim"], &["sleep", "1000"]));
        w.until("victim runs", || {
            w.b(&["inspect", "victim"]).stdout.contains("\"running\"")
        });
        w.b(&["kill", "victim"]).ok();
        h.join().unwrap()
    });
    assert_eq!(out.code, 137, "{}", out.stderr);
    // Cannot run: 127 not found, 126 not executable; the container stays, Created.
    let out = w.run(&["--name", "nf"], &["/bin/nope"]);
    code_msg(&out, 127, "/bin/nope");
    let out = w.run(&["--name", "nx"], &["/etc/passwd"]);
    code_msg(&out, 126, "permission denied");
    let ps = w.b(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.stdout.contains("nf Created"), "{}", ps.stdout);
    assert_eq!(w.inspect("nf")["State"]["ExitCode"], 127);
    // --rm leaves nothing of a container that ran.
    let out = w.run(&["--rm", "--name", "gone"], &["true"]);
    out.ok();
    assert_ne!(w.b(&["container", "exists", "gone"]).code, 0);
    // The log has what the foreground run printed.
    let logs = w.b(&["logs", "nf"]);
    logs.ok();
    w.finish();
}

#[test]
fn docker_defaults_inside_the_container() {
    let w = World::new("defaults");
    let out = w.run(
        &["--name", "d1"],
        &[
            "sh",
            "-c",
            "hostname; echo $HOSTNAME; env | grep -c ^TERM=; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; cat /proc/net/dev | grep -c :; id -u; pwd; df -k /dev/shm | tail -1",
        ],
    );
    out.ok();
    let id = w.inspect("d1")["Id"].as_str().unwrap().to_string();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], &id[..12], "hostname is the short id");
    assert_eq!(lines[1], &id[..12]);
    assert_eq!(lines[2], "0", "no TERM without -t");
    // Docker's 14 default capabilities.
    assert_eq!(lines[3].split_whitespace().nth(1), Some("00000000a80425fb"));
    assert!(lines[4].starts_with("NoNewPrivs:") && lines[4].ends_with('0'));
    assert!(
        lines[5].starts_with("Seccomp:") && lines[5].ends_with('2'),
        "seccomp filter: {}",
        lines[5]
    );
    assert_eq!(
        lines[6], "2",
        "lo and eth0: on the default bridge, as Docker's"
    );
    assert_eq!(w.inspect("d1")["HostConfig"]["NetworkMode"], "bridge");
    // --network none: a namespace of its own with only lo.
    let none = w.run(
        &["--rm", "--network", "none"],
        &[
            "sh",
            "-c",
            "cat /proc/net/dev | grep -c :; ip -o link | cut -d: -f2",
        ],
    );
    none.ok();
    assert_eq!(none.stdout, "1\n lo\n", "{}", none.stdout);
    assert_eq!(lines[7], "0");
    assert_eq!(lines[8], "/");
    assert_eq!(
        lines[9].split_whitespace().nth(1),
        Some("65536"),
        "/dev/shm is 64 MiB"
    );

    // Flags by their effect.
    let envfile = w.dir.join("env.list");
    std::fs::write(&envfile, "# comment\nFROMFILE=a b\nOVER=file\n").unwrap();
    let out = w.run(
        &[
            "--rm", "-e", "X=1", "-e", "OVER=flag", "--env-file", envfile.to_str().unwrap(), "-w", "/tmp",
            "-u", "web", "-h", "box", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN",
            "--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined",
            "--read-only", "--ulimit", "nofile=100:200", "--shm-size", "32m",
            "--sysctl", "net.ipv4.ip_forward=1", "--oom-score-adj", "123", "--group-add", "7",
        ],
        &[
            "sh",
            "-c",
            "echo $X $OVER $FROMFILE; pwd; id; hostname; grep -E '^(CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; touch /x 2>&1 | grep -c Read-only; ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1; cat /proc/sys/net/ipv4/ip_forward; cat /proc/self/oom_score_adj",
        ],
    );
    out.ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0], "1 flag a b");
    assert_eq!(l[1], "/tmp");
    assert_eq!(l[2], "uid=33(web) gid=34(www) groups=7,50(extra)");
    assert_eq!(l[3], "box");
    assert_eq!(
        l[4].split_whitespace().nth(1),
        Some("0000000000001000"),
        "NET_ADMIN only (bounding: the user is not root)"
    );
    assert!(l[5].ends_with('1'), "no-new-privileges: {}", l[5]);
    assert!(l[6].ends_with('0'), "unconfined: {}", l[6]);
    assert_eq!(l[7], "1", "read-only root: {}", out.stdout);
    assert_eq!((l[8], l[9]), ("100", "200"));
    assert_eq!(l[10].split_whitespace().nth(1), Some("32768"));
    assert_eq!(l[11], "1");
    assert_eq!(l[12], "123");

    // -t without a terminal on stdin: a pty, TERM=xterm.
    let out = w.run(&["--rm", "-t"], &["sh", "-c", "tty; echo $TERM"]);
    out.ok();
    assert!(out.stdout.contains("/dev/pts/0"), "{}", out.stdout);
    assert!(out.stdout.contains("xterm"));
    // --privileged: every capability berth holds, no seccomp, no masked paths.
    let out = w.run(&["--rm", "--privileged"], &["sh", "-c", "grep -E '^(CapEff|Seccomp):' /proc/self/status; mount | grep -c ' /proc/kcore '; exit 0"]);
    out.ok();
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = own
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0].split_whitespace().nth(1), Some(bnd.as_str()));
    assert!(l[1].ends_with('0'), "{}", l[1]);
    assert_eq!(l[2], "0", "/proc/kcore is not masked");
    // --network host: the host's network namespace; by default, one of its own.
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = w.run(
        &["--rm", "--network", "host"],
        &["readlink", "/proc/self/ns/net"],
    );
    out.ok();
    assert_eq!(out.stdout.trim(), host.to_str().unwrap());
    let out = w.run(&["--rm"], &["readlink", "/proc/self/ns/net"]);
    assert_ne!(out.stdout.trim(), host.to_str().unwrap());
    w.finish();
}

#[test]
fn memory_limit_is_the_cgroups() {
    let w = World::new("mem");
    let id = w.run_d(
        &[
            "-m",
            "64m",
            "--pids-limit",
            "50",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
        ],
        &["sleep", "1000"],
    );
    let cg = |ctrl: &str, file: &str| common::people::cgroup_v1(&id, ctrl, file);
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(cg("pids", "pids.max"), "50");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpu", "cpu.shares"), "512");
    // And the container itself sees its limit.
    let out = w.b(&[
        "exec",
        &id,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    out.ok();
    assert_eq!(out.stdout.trim(), (64u64 << 20).to_string());
    assert_eq!(w.inspect(&id)["HostConfig"]["Memory"], 64 << 20);
    w.finish();
}

#[test]
fn detached_lifecycle() {
    let w = World::new("life");
    let id = w.run_d(
        &["--name", "web", "-l", "app=demo"],
        &[
            "sh",
            "-c",
            "trap 'echo got term; exit 7' TERM; echo started; while true; do sleep 0.1; done",
        ],
    );
    w.until("started in the log", || {
        w.b(&["logs", "web"]).stdout.contains("started")
    });
    let ps = w.b(&["ps"]);
    ps.ok();
    let lines: Vec<&str> = ps.stdout.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID   IMAGE"),
        "{}",
        ps.stdout
    );
    assert!(
        lines[1].starts_with(&id[..12]) && lines[1].contains("Up ") && lines[1].ends_with("web")
    );
    let ps = w.b(&[
        "ps",
        "--filter",
        "label=app=demo",
        "--format",
        "{{.ID}}|{{.State}}|{{.Names}}",
    ]);
    assert_eq!(ps.stdout.trim(), format!("{}|running|web", &id[..12]));
    // inspect: Docker's shape.
    let j = w.inspect("web");
    assert_eq!(j["Id"], id.as_str());
    assert_eq!(j["Name"], "/web");
    assert_eq!(j["State"]["Running"], true);
    let pid = j["State"]["Pid"].as_i64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(j["Config"]["Labels"]["app"], "demo");
    assert_eq!(j["Path"], "sh");
    assert!(j["State"]["StartedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(j["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    // json-file, byte for byte Docker's shape.
    let log = std::fs::read_to_string(j["LogPath"].as_str().unwrap()).unwrap();
    let first = log.lines().next().unwrap();
    assert!(
        first.starts_with(r#"{"log":"started\n","stream":"stdout","time":""#),
        "{first}"
    );
    // exec: the process's status is ours; 126/127.
    let out = w.b(&["exec", "web", "sh", "-c", "echo in; exit 5"]);
    assert_eq!((out.code, out.stdout.as_str()), (5, "in\n"));
    let out = w.b(&[
        "exec",
        "-e",
        "A=b",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "web",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u)",
    ]);
    assert_eq!(out.stdout, "b /tmp 65534\n");
    code_msg(
        &w.b(&["exec", "web", "nope"]),
        127,
        "executable file not found",
    );
    // stop: the trap runs, the status is the container's.
    let out = w.b(&["stop", "web"]);
    out.ok();
    assert_eq!(out.stdout, "web\n");
    let j = w.inspect(&id[..6]);
    assert_eq!(j["State"]["Status"], "exited");
    assert_eq!(j["State"]["ExitCode"], 7);
    assert!(w.b(&["logs", "web"]).stdout.contains("got term"));
    let ps = w.b(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(ps.stdout.starts_with("Exited (7) "), "{}", ps.stdout);
    assert_eq!(w.b(&["wait", "web"]).stdout, "7\n");
    // Stopping a stopped container succeeds; exec into it fails (125).
    w.b(&["stop", "web"]).ok();
    code_msg(&w.b(&["exec", "web", "true"]), 125, "is not running");
    // start again, restart, kill.
    w.b(&["start", "web"]).ok();
    assert_eq!(w.status("web"), "running");
    w.b(&["restart", "-t", "1", "web"]).ok();
    assert_eq!(w.status("web"), "running");
    // The shell is PID 1: a TERM before its trap is set would be ignored (as Docker's),
    // so the signal waits for the third start's line (run, start, restart).
    w.until("the restarted shell set its trap", || {
        w.b(&["logs", "web"]).stdout.matches("started").count() >= 3
    });
    let out = w.b(&["kill", "-s", "TERM", "web"]);
    out.ok();
    assert_eq!(w.b(&["wait", "web"]).stdout, "7\n");
    w.finish();
}

#[test]
fn stop_of_a_process_ignoring_term_takes_the_timeout_then_kills() {
    let w = World::new("stopkill");
    let id = w.run_d(
        &[],
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    w.until("ready", || w.b(&["logs", &id]).stdout.contains("ready"));
    let t = Instant::now();
    w.b(&["stop", "-t", "2", &id]).ok();
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "stop waited the timeout"
    );
    let j = w.inspect(&id);
    assert_eq!(j["State"]["ExitCode"], 137);
    assert_eq!(j["State"]["Status"], "exited");
    w.finish();
}

#[test]
fn rm_rules() {
    let w = World::new("rm");
    let id = w.run_d(&["--name", "busy"], &["sleep", "1000"]);
    let out = w.b(&["rm", "busy"]);
    code_msg(
        &out,
        1,
        "stop the container before removing or force remove",
    );
    assert_eq!(w.status("busy"), "running");
    w.run(&["--name", "done"], &["true"]).ok();
    // Several arguments: each is tried, the command fails if one did.
    let out = w.b(&["rm", "done", "nosuch", "busy"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "done\n");
    assert!(out.stderr.contains("No such container: nosuch"));
    let pid = w.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    let out = w.b(&["rm", "-f", "busy"]);
    out.ok();
    assert_eq!(out.stdout, "busy\n");
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(w.b(&["rm", "--ignore", "busy"]).code, 0);
    w.finish();
}

#[test]
fn a_killed_monitor_is_reconciled_by_the_next_command() {
    let w = World::new("k9");
    let id = w.run_d(&["--name", "k9"], &["sleep", "1000"]);
    let pid = w.inspect("k9")["State"]["Pid"].as_i64().unwrap() as i32;
    let mon = w.monitor_pid(&id);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mon), nix::sys::signal::SIGKILL).unwrap();
    w.until("monitor gone", || common::gone(mon));
    let ps = w.b(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.stdout.starts_with("k9 Exited (255)"), "{}", ps.stdout);
    let j = w.inspect("k9");
    assert_eq!(j["State"]["Error"], "monitor died");
    // The container's processes went with the reconcile, and its runtime state.
    w.until("init gone", || common::gone(pid));
    for ctrl in ["memory", "pids"] {
        assert!(!Path::new(&format!("/sys/fs/cgroup/{ctrl}/berth/{id}")).exists());
    }
    assert!(!w.runroot.join("containers").join(&id).exists());
    assert!(!w.runroot.join("runtime").join(&id).exists());
    // It starts again.
    w.b(&["start", "k9"]).ok();
    assert_eq!(w.status("k9"), "running");
    w.finish();
}

#[test]
fn after_a_reboot_running_containers_read_as_exited() {
    let w = World::new("reboot");
    let id = w.run_d(&[], &["sleep", "1000"]);
    // A reboot, simulated: the monitor and the container are gone, the boot id changed.
    let mon = w.monitor_pid(&id);
    let pid = w.inspect(&id)["State"]["Pid"].as_i64().unwrap() as i32;
    for p in [mon, pid] {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
    }
    let st = w.root.join("containers").join(&id).join("state.json");
    let text = std::fs::read_to_string(&st).unwrap();
    std::fs::write(&st, text.replace(r#""BootId": ""#, r#""BootId": "0ld"#)).unwrap();
    let j = w.inspect(&id);
    assert_eq!(j["State"]["Status"], "exited");
    assert_eq!(j["State"]["ExitCode"], 255);
    assert!(j["State"]["Error"].as_str().unwrap().contains("reboot"));
    w.finish();
}

#[test]
fn ten_parallel_runs_with_one_name() {
    let w = World::new("race");
    let outs: Vec<Out> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..10)
            .map(|_| s.spawn(|| w.run(&["--name", "x"], &["true"])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = outs.iter().filter(|o| o.code == 0).count();
    assert_eq!(won, 1, "{outs:?}");
    for o in outs.iter().filter(|o| o.code != 0) {
        code_msg(o, 125, "the container name \"x\" is already in use");
    }
    assert_eq!(w.all_ids().len(), 1);
    w.finish();
}

#[test]
fn names_ids_and_prefixes() {
    let w = World::new("names");
    let a = w.b(&["create", "--rootfs", w.rootfs(), "true"]);
    a.ok();
    let a = a.stdout.trim().to_string();
    let gen = w.inspect(&a)["Name"].as_str().unwrap().to_string();
    assert!(
        gen.starts_with('/') && gen.contains('_'),
        "generated name {gen}"
    );
    // A name that is also a prefix of the first id: the exact name wins.
    let prefix = &a[..3];
    let b = w.b(&["create", "--name", prefix, "--rootfs", w.rootfs(), "true"]);
    b.ok();
    let b = b.stdout.trim().to_string();
    assert_eq!(w.inspect(prefix)["Id"], b.as_str());
    assert_eq!(w.inspect(&a[..5])["Id"], a.as_str());
    assert_eq!(w.inspect(&gen[1..])["Id"], a.as_str());
    // Ambiguous prefixes name their candidates (make ids share a first digit).
    let mut ids = vec![a.clone(), b.clone()];
    while !ids.iter().any(|x| {
        ids.iter()
            .filter(|y| y.as_bytes()[0] == x.as_bytes()[0])
            .count()
            > 1
    }) {
        let o = w.b(&["create", "--rootfs", w.rootfs(), "true"]);
        o.ok();
        ids.push(o.stdout.trim().to_string());
    }
    let c = ids
        .iter()
        .find(|x| {
            ids.iter()
                .filter(|y| y.as_bytes()[0] == x.as_bytes()[0])
                .count()
                > 1
        })
        .unwrap();
    let out = w.b(&["inspect", &c[..1]]);
    code_msg(&out, 1, "multiple containers match");
    // rename; exists.
    w.b(&["rename", prefix, "renamed"]).ok();
    assert_eq!(w.inspect("renamed")["Name"], "/renamed");
    assert_eq!(w.b(&["container", "exists", "renamed"]).code, 0);
    let out = w.b(&["container", "exists", "nosuchname"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, ""));
    code_msg(&w.b(&["rename", "renamed", &gen[1..]]), 1, "already in use");
    code_msg(
        &w.b(&[
            "create",
            "--name",
            "bad name",
            "--rootfs",
            w.rootfs(),
            "true",
        ]),
        125,
        "invalid container name",
    );
    w.finish();
}

#[test]
fn bad_input_one_line_right_code_nothing_left() {
    let w = World::new("bad");
    for (args, code, phrase) in [
        (vec!["stop", "ghost"], 1, "No such container: ghost"),
        (vec!["kill", "ghost"], 1, "No such container: ghost"),
        (vec!["rm", "ghost"], 1, "No such container: ghost"),
        (vec!["logs", "ghost"], 1, "No such container: ghost"),
        (vec!["wait", "ghost"], 1, "No such container: ghost"),
        (vec!["inspect", "ghost"], 1, "No such object: ghost"),
        (
            vec!["container", "inspect", "ghost"],
            1,
            "No such container: ghost",
        ),
        (vec!["start", "ghost"], 125, "No such container: ghost"),
        (
            vec!["exec", "ghost", "true"],
            125,
            "No such container: ghost",
        ),
        (
            vec!["run", "-m", "1x", "--rootfs", "/", "true"],
            125,
            "for \"-m, --memory\" flag: invalid suffix: 'x'",
        ),
        (
            vec!["run", "-e", "=x", "--rootfs", "/", "true"],
            125,
            "invalid environment variable: =x",
        ),
        (
            vec!["run", "--cap-add", "BOGUS", "--rootfs", "/", "true"],
            125,
            "unknown capability",
        ),
        (
            vec!["run", "--rootfs", "/nonexistent-dir", "true"],
            125,
            "no such file or directory",
        ),
        (
            vec![
                "run",
                "--sysctl",
                "vm.swappiness=1",
                "--rootfs",
                "/",
                "true",
            ],
            125,
            "not allowed",
        ),
        (
            vec!["run", "-u", "nouser", "--rootfs", "/nonexistent", "true"],
            125,
            "nonexistent",
        ),
    ] {
        let out = w.b(&args);
        code_msg(&out, code, phrase);
    }
    let out = w.run(&["-u", "nouser"], &["true"]);
    code_msg(&out, 125, "unable to find user nouser");
    let out = w.run(&["--stop-signal", "SIGNOPE"], &["true"]);
    code_msg(&out, 125, "invalid signal");
    let id = w.run_d(&[], &["sleep", "1000"]);
    code_msg(&w.b(&["kill", "-s", "BOGUS", &id]), 1, "invalid signal");
    assert_eq!(w.status(&id), "running");
    assert_eq!(w.all_ids().len(), 1, "no failed run left a container");
    w.finish();
}

#[test]
fn attach_start_a_and_pause() {
    let w = World::new("attach");
    // start -a: the output and the status of a created container.
    let c = w.b(&[
        "create",
        "--name",
        "c1",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "echo from-c1; exit 4",
    ]);
    c.ok();
    let out = w.b(&["start", "-a", "c1"]);
    assert_eq!((out.code, out.stdout.as_str()), (4, "from-c1\n"));
    // attach to a running container streams what it prints from then on. The monitor
    // streams to a client from when it has read its request, a moment after the
    // connection: the container ticks until the attach has shown one tick, then ends.
    w.run_d(
        &["--name", "talker"],
        &[
            "sh",
            "-c",
            "while [ ! -e /tmp/stop ]; do echo tick; sleep 0.05; done; echo after-attach; exit 9",
        ],
    );
    let mut att = w.cmd(&["attach", "talker"]);
    att.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = att.spawn().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first = lines.next().expect("attach output").unwrap();
    assert_eq!(first, "tick");
    // From the host (an exec'd `touch` could be killed with the container it ends).
    std::fs::write(w.rootfs.join("tmp/stop"), "").unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(9));
    assert_eq!(
        rest.last().map(String::as_str),
        Some("after-attach"),
        "{rest:?}"
    );
    assert!(
        rest[..rest.len() - 1].iter().all(|l| l == "tick"),
        "{rest:?}"
    );
    // --sig-proxy (the default): a signal to the attached command reaches the container.
    w.run_d(
        &["--name", "sigs"],
        &[
            "sh",
            "-c",
            "trap 'echo usr1; exit 3' USR1; echo ready; while true; do sleep 0.05; done",
        ],
    );
    // USR1 before the trap is in place would kill the shell (a loaded machine can be that
    // slow); "ready" comes before the attach, so its output is still only what follows.
    w.until("sigs ready", || {
        w.b(&["logs", "sigs"]).stdout.contains("ready")
    });
    let mut att = w.cmd(&["attach", "sigs"]);
    att.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let child = att.spawn().unwrap();
    let apid = child.id();
    // Once it holds USR1 blocked, it takes it through its signalfd.
    w.until("the attach proxies signals", || {
        std::fs::read_to_string(format!("/proc/{apid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigBlk:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .is_some_and(|m| m & (1 << (libc::SIGUSR1 - 1)) != 0)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(apid as i32),
        nix::sys::signal::SIGUSR1,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "usr1\n");
    // pause / unpause.
    let id = w.run_d(&["--name", "p"], &["sleep", "1000"]);
    w.b(&["pause", "p"]).ok();
    assert_eq!(w.status("p"), "paused");
    let ps = w.b(&["ps", "--format", "{{.Status}}", "--filter", "name=p"]);
    assert!(ps.stdout.contains("(Paused)"), "{}", ps.stdout);
    w.b(&["unpause", "p"]).ok();
    assert_eq!(w.status(&id), "running");
    w.finish();
}

#[test]
fn logs_rotation_k8s_file_and_filters() {
    let w = World::new("logs");
    let id = w.run_d(
        &["--log-opt", "max-size=2k", "--log-opt", "max-file=3"],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done; echo oops >&2",
        ],
    );
    assert_eq!(w.b(&["wait", &id]).stdout, "0\n");
    let out = w.b(&["logs", &id]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    // Rotated by size: older lines are gone with the oldest file, the rest is in order.
    assert!(
        lines.len() < 200 && lines.len() > 10,
        "{} lines",
        lines.len()
    );
    assert_eq!(*lines.last().unwrap(), "line-199");
    for p in lines.windows(2) {
        let n = |s: &str| s.trim_start_matches("line-").parse::<u32>().unwrap();
        assert_eq!(n(p[0]) + 1, n(p[1]));
    }
    assert_eq!(out.stderr, "oops\n");
    let log = PathBuf::from(w.inspect(&id)["LogPath"].as_str().unwrap());
    assert!(log
        .with_file_name(format!("{}.1", log.file_name().unwrap().to_string_lossy()))
        .exists());
    let out = w.b(&["logs", "-n", "2", "-t", &id]);
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l.len(), 1, "stderr's line is the other one: {}", out.stdout);
    assert!(
        l[0].ends_with("Z line-199") && l[0].len() == 30 + 1 + 8,
        "{}",
        l[0]
    );
    assert!(w
        .b(&["logs", "--since", "1h", &id])
        .stdout
        .contains("line-199"));
    assert_eq!(w.b(&["logs", "--until", "1h", &id]).stdout, "");
    // k8s-file, Podman's format.
    let id = w.run_d(
        &["--log-driver", "k8s-file"],
        &["sh", "-c", "echo one; printf two"],
    );
    w.b(&["wait", &id]).ok();
    let log = std::fs::read_to_string(w.inspect(&id)["LogPath"].as_str().unwrap()).unwrap();
    let l: Vec<&str> = log.lines().collect();
    assert!(
        l[0].ends_with(" stdout F one") && l[1].ends_with(" stdout P two"),
        "{log}"
    );
    assert_eq!(w.b(&["logs", &id]).stdout, "one\ntwo");
    // logs -f ends when the container stops.
    let id = w.run_d(&[], &["sh", "-c", "echo a; sleep 1; echo b"]);
    let out = w.b(&["logs", "-f", &id]);
    assert_eq!(out.stdout, "a\nb\n");
    w.finish();
}

#[test]
fn run_it_at_a_terminal_and_detach_keys() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "these terminal tests need tmux (.ci/run installs it)"
    );
    let w = World::new("tty");
    let sock = w.dir.join("tmux.sock");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap()
    };
    let berth = format!(
        "{} --root {} --runroot {}",
        env!("CARGO_BIN_EXE_berth"),
        w.root.display(),
        w.runroot.display()
    );
    tmux(&["new-session", "-d", "-x", "120", "-y", "40", "sh"]);
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
    let cmd = format!(
        "{berth} run -it --name t1 --rootfs {} sh; echo rc=$?",
        w.rootfs()
    );
    tmux(&["send-keys", &cmd, "Enter"]);
    w.until("a shell prompt", || screen().contains("/ #"));
    tmux(&["send-keys", "stty size; tty", "Enter"]);
    w.until("the window size", || screen().contains("40 120"));
    // `tty` prints after `stty size`: the screen may not show it yet.
    w.until("the terminal", || screen().contains("/dev/pts/0"));
    // Ctrl-P Ctrl-Q: detached, the container runs on.
    tmux(&["send-keys", "C-p", "C-q"]);
    w.until("detached", || screen().contains("rc=0"));
    assert_eq!(w.status("t1"), "running");
    // attach again with keys of its own: they detach, Ctrl-P Ctrl-Q no longer does.
    tmux(&[
        "send-keys",
        &format!("clear; {berth} attach --detach-keys ctrl-x,x t1; echo rc=$?"),
        "Enter",
    ]);
    let id = w.inspect("t1")["Id"].as_str().unwrap().to_string();
    w.until("the attach connected", || w.clients(&id) == 1);
    tmux(&["send-keys", "echo back-$((40+2))", "Enter"]);
    w.until("attached", || screen().contains("back-42"));
    tmux(&["send-keys", "C-x", "x"]);
    w.until("detached by its own keys", || screen().contains("rc=0"));
    assert_eq!(w.status("t1"), "running");
    w.until("the attach gone", || w.clients(&id) == 0);
    // attach again, and exit the shell with a status.
    tmux(&[
        "send-keys",
        &format!("clear; {berth} attach t1; echo rc=$?"),
        "Enter",
    ]);
    w.until("the attach connected", || w.clients(&id) == 1);
    tmux(&["send-keys", "echo again-$((40+3))", "Enter"]);
    w.until("attached", || screen().contains("again-43"));
    tmux(&["send-keys", "exit 3", "Enter"]);
    w.until("the status", || screen().contains("rc=3"));
    assert_eq!(w.status("t1"), "exited");
    // run -it with keys of its own.
    tmux(&[
        "send-keys",
        &format!(
            "clear; {berth} run -it --detach-keys ctrl-x,x --name t2 --rootfs {} sh; echo rc=$?",
            w.rootfs()
        ),
        "Enter",
    ]);
    w.until("a shell prompt", || screen().contains("/ #"));
    tmux(&["send-keys", "C-x", "x"]);
    w.until("detached by its own keys", || screen().contains("rc=0"));
    assert_eq!(w.status("t2"), "running");
    tmux(&["kill-server"]);
    w.finish();
}

#[test]
fn rootless_user_namespace_from_subuid_ranges() {
    let w = World::new("rootless");
    let u = TestUser::create("berthpc");
    let sub = std::fs::read_to_string("/etc/subuid").unwrap();
    let start: String = sub
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{}:", u.name)))
        .expect("a subuid range")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    // The user's own copy of berth and of the rootfs, in a dir it owns.
    let berth = w.dir.join("berth");
    std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
    std::fs::create_dir_all(w.dir.join("xdg")).unwrap();
    u.own(&w.dir);
    let as_user = |args: &[&str]| -> Out {
        let dirs = (w.root.as_path(), w.runroot.as_path(), w.dir.as_path());
        u.berth(&berth, dirs, args, Duration::from_secs(60))
    };
    let out = as_user(&[
        "run",
        "--rm",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    out.ok();
    assert_eq!(out.stderr, "", "no warning when no limit was asked for");
    let maps: Vec<Vec<String>> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(out.stdout.lines().next(), Some("0"));
    assert_eq!(maps[0], ["0", &u.uid.to_string(), "1"], "root is the user");
    assert_eq!(
        maps[1][..2],
        ["1".to_string(), start],
        "the rest is the subuid range"
    );
    // Detached, exec'd into, stopped, removed: the same code path.
    let out = as_user(&[
        "run",
        "-d",
        "--name",
        "r1",
        "-m",
        "64m",
        "--rootfs",
        w.rootfs(),
        "sleep",
        "1000",
    ]);
    out.ok();
    let v1 = !Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v1 {
        assert_eq!(
            out.stderr.matches("WARNING").count(),
            1,
            "one warning: {}",
            out.stderr
        );
    }
    let out = as_user(&["exec", "r1", "id", "-u"]);
    assert_eq!(out.stdout, "0\n");
    as_user(&["stop", "-t", "1", "r1"]).ok();
    assert_eq!(
        as_user(&["inspect", "--format", "{{.State.Status}}", "r1"]).stdout,
        "exited\n"
    );
    as_user(&["rm", "r1"]).ok();
    w.audit(&[]);
    drop(u);
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// The libraries a dynamically linked berth needs (a debug build), copied into `rootfs`.
fn copy_berth_libraries(rootfs: &Path) {
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_berth"))
        .output()
        .unwrap();
    for lib in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dst = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dst).unwrap();
    }
}

#[test]
fn init_is_pid_1_forwards_signals_and_reaps() {
    let w = World::new("init");
    copy_berth_libraries(&w.rootfs);
    let out = w.run(
        &["--rm", "--init"],
        &[
            "sh",
            "-c",
            // The orphan is waited for until it is gone from /proc (reaped), bounded: a
            // fixed sleep could look while it is a zombie not reaped yet on a loaded machine.
            "cat /proc/1/comm; o=$(sh -c 'sleep 0.2 >/dev/null & echo $!'); n=0; \
             while [ -e /proc/$o ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; \
             ps -o stat | grep -c Z; exit 4",
        ],
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(
        out.stdout, "berth-init\n0\n",
        "PID 1 is berth and the orphan was reaped"
    );
    let id = w.run_d(
        &["--init"],
        &[
            "sh",
            "-c",
            "trap 'echo term; exit 9' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    w.until("ready", || w.b(&["logs", &id]).stdout.contains("ready"));
    w.b(&["stop", &id]).ok();
    assert_eq!(
        w.inspect(&id)["State"]["ExitCode"],
        9,
        "SIGTERM reached the command"
    );
    assert_eq!(
        w.inspect(&id)["Path"],
        "sh",
        "inspect shows the command, not the init"
    );
    let out = w.run(&["--rm", "--init"], &["nope"]);
    assert_eq!(out.code, 127, "{}", out.stderr);
    w.finish();
}

#[test]
fn foreground_run_is_the_monitor() {
    let w = World::new("fgmon");
    // stdin with -i: forwarded, closed at EOF.
    let mut c = w.cmd(&[
        "run",
        "--rm",
        "-i",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "cat; echo done",
    ]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"line one\nline two\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line one\nline two\ndone\n"
    );
    // Without -i, stdin is /dev/null.
    let mut c = w.cmd(&[
        "run",
        "--rm",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "cat; echo eof",
    ]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "eof\n");
    // SIGTERM to the foreground run (systemd stopping a unit) runs the stop sequence.
    let mut c = w.cmd(&[
        "run",
        "--name",
        "unit",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "trap 'echo stopping; exit 7' TERM; echo up; while true; do sleep 0.1; done",
    ]);
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let child = c.spawn().unwrap();
    w.until("up", || w.b(&["logs", "unit"]).stdout.contains("up"));
    // Other commands see it running, through the monitor that the foreground run is.
    assert_eq!(w.status("unit"), "running");
    assert_eq!(
        w.monitor_pid(w.inspect("unit")["Id"].as_str().unwrap()),
        child.id() as i32
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "up\nstopping\n");
    // And `stop` from another shell ends a foreground run the same way.
    let mut c = w.cmd(&[
        "run",
        "--name",
        "unit2",
        "--rootfs",
        w.rootfs(),
        "sleep",
        "1000",
    ]);
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    w.until("unit2 runs", || {
        w.b(&["inspect", "unit2"]).stdout.contains("\"running\"")
    });
    w.b(&["stop", "-t", "1", "unit2"]).ok();
    assert_eq!(child.wait().unwrap().code(), Some(137));
    w.finish();
}

#[test]
fn exec_it_at_a_terminal() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "these terminal tests need tmux (.ci/run installs it)"
    );
    let w = World::new("execit");
    let id = w.run_d(&["--name", "e1"], &["sleep", "1000"]);
    let sock = w.dir.join("tmux.sock");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap()
    };
    tmux(&["new-session", "-d", "-x", "90", "-y", "25", "sh"]);
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
    let berth = format!(
        "{} --root {} --runroot {}",
        env!("CARGO_BIN_EXE_berth"),
        w.root.display(),
        w.runroot.display()
    );
    tmux(&[
        "send-keys",
        &format!("{berth} exec -it e1 sh; echo rc=$?"),
        "Enter",
    ]);
    w.until("a prompt", || screen().contains("/ #"));
    tmux(&["send-keys", "stty size; tty; exit 6", "Enter"]);
    w.until("the status", || screen().contains("rc=6"));
    let s = screen();
    assert!(s.contains("25 90") && s.contains("/dev/pts/"), "{s}");
    tmux(&["kill-server"]);
    assert_eq!(w.status(&id), "running");
    w.finish();
}

/// `kill -9` of `run -d` at each stage of making the container: afterwards the container
/// exists whole (record, name) or not at all, and its name is free again in the latter case.
#[test]
fn a_killed_run_leaves_no_half_container() {
    let w = World::new("halfrun");
    for cp in [
        "people:tmp-dir",
        "people:name-claimed",
        "people:record-written",
        "people:created",
    ] {
        let mut c = w.cmd(&[
            "run",
            "-d",
            "--name",
            "x",
            "--rootfs",
            w.rootfs(),
            "sleep",
            "1000",
        ]);
        c.env("BERTH_TEST_CHECKPOINT", cp)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let pid = child.id();
        w.until(&format!("stopped at {cp}"), || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('T')
            })
        });
        child.kill().unwrap();
        child.wait().unwrap();
        let ps = w.b(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
        ps.ok();
        let whole = match ps.stdout.as_str() {
            "" => false,
            "x Created\n" => true,
            other => panic!("at {cp}: half a container: {other:?}"),
        };
        assert_eq!(whole, cp == "people:created", "at {cp}");
        // The name is free when nothing was made, taken when the container is whole.
        let out = w.b(&["create", "--name", "x", "--rootfs", w.rootfs(), "true"]);
        assert_eq!(out.code == 0, !whole, "at {cp}: {}", out.stderr);
        let ids = w.all_ids();
        let mut a = vec!["rm", "-f"];
        a.extend(ids.iter().map(String::as_str));
        w.b(&a).ok();
        // Nothing of the killed attempt is left either (its temporary dir is cleared by
        // the next listing or the next claim of its name).
        w.all_ids();
        w.audit(&ids);
    }
    w.finish();
}
