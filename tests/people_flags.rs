//! The people face's `run`/`create` flags and command options that other suites leave
//! out, each checked by its effect: in the container's cgroup, inside the container (the
//! `--rootfs` directory is the container's own root, so what it writes is seen here),
//! in what the commands print, and in how long a stop takes.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::people::{code_msg, World};
use common::Out;

/// `cmd` with `input` on its stdin.
fn with_stdin(mut cmd: Command, input: &str) -> Out {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// How long `f` takes.
fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// A shell loop that ignores SIGTERM (only SIGKILL ends it).
const DEAF: &str = "trap '' TERM; while :; do sleep 0.1; done";

#[test]
fn memory_and_cpuset_flags_reach_the_cgroup_and_update_changes_them() {
    let w = World::new("fl-cg");
    let id = w.run_d(
        &[
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--memory-reservation",
            "32m",
            "--cpuset-cpus",
            "0",
        ],
        &["sleep", "1000"],
    );
    let cg = |ctrl: &str, file: &str| common::people::cgroup_v1(&id, ctrl, file);
    assert_eq!(
        cg("memory", "memory.memsw.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        cg("memory", "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(cg("cpuset", "cpuset.cpus"), "0");
    let hc = &w.inspect(&id)["HostConfig"];
    assert_eq!(hc["MemorySwap"], 128 << 20, "{hc}");
    assert_eq!(hc["MemoryReservation"], 32 << 20, "{hc}");
    assert_eq!(hc["CpusetCpus"], "0", "{hc}");
    // Every CPU this machine has online: valid on one CPU as on many.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let online = online.trim();
    w.b(&[
        "update",
        "--memory-reservation",
        "16m",
        "--memory-swap",
        "256m",
        "--cpuset-cpus",
        online,
        &id,
    ])
    .ok();
    assert_eq!(
        cg("memory", "memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    assert_eq!(
        cg("memory", "memory.memsw.limit_in_bytes"),
        (256u64 << 20).to_string()
    );
    assert_eq!(cg("cpuset", "cpuset.cpus"), online);
    let hc = &w.inspect(&id)["HostConfig"];
    assert_eq!(hc["MemoryReservation"], 16 << 20, "{hc}");
    assert_eq!(hc["CpusetCpus"], online, "{hc}");
    w.finish();
}

#[test]
fn run_flags_take_effect_inside_the_container() {
    let w = World::new("fl-run");
    // --label-file: key=value lines, comments and blank lines skipped, as Docker's.
    let labels = w.rootfs.parent().unwrap().join("labels");
    std::fs::write(&labels, "# team labels\nteam=core\n\ntier=db\n").unwrap();
    w.run(
        &["--name", "lf", "--label-file", labels.to_str().unwrap()],
        &["true"],
    )
    .ok();
    let l = &w.inspect("lf")["Config"]["Labels"];
    assert_eq!(l["team"], "core", "{l}");
    assert_eq!(l["tier"], "db", "{l}");
    assert_eq!(l.as_object().unwrap().len(), 2, "{l}");
    // --entrypoint: the program, the command its arguments.
    let o = w.run(
        &["--name", "ep", "--entrypoint", "/bin/echo"],
        &["hi", "there"],
    );
    o.ok();
    assert_eq!(o.stdout, "hi there\n");
    let c = w.inspect("ep");
    assert_eq!(c["Path"], "/bin/echo", "{c}");
    assert_eq!(c["Args"], serde_json::json!(["hi", "there"]), "{c}");
    // -e NAME without a value: the value of the caller's environment, or nothing at all.
    let mut cmd = w.cmd(&[
        "run",
        "--rm",
        "-e",
        "FROM_CALLER",
        "-e",
        "NOT_IN_CALLER",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "echo \"$FROM_CALLER\"; env | grep -c NOT_IN_CALLER",
    ]);
    cmd.env("FROM_CALLER", "from the caller")
        .env_remove("NOT_IN_CALLER");
    let o = common::run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert_eq!(o.stdout, "from the caller\n0\n", "{}", o.stderr);
    // -u user:group, both names, from the container's own /etc/passwd and /etc/group.
    let o = w.run(&["--rm", "-u", "web:extra"], &["sh", "-c", "id -u; id -g"]);
    o.ok();
    assert_eq!(o.stdout, "33\n50\n");
    // --device HOST:CONTAINER: the same device node, usable.
    let o = w.run(
        &["--rm", "--device", "/dev/null:/dev/mynull"],
        &[
            "sh",
            "-c",
            "stat -c '%F %t,%T' /dev/mynull; echo x > /dev/mynull && echo written",
        ],
    );
    o.ok();
    assert_eq!(o.stdout, "character special file 1,3\nwritten\n");
    // -a stdout: only stdout is attached.
    let o = w.run(
        &["--rm", "-a", "stdout"],
        &["sh", "-c", "echo to-out; echo to-err >&2"],
    );
    o.ok();
    assert_eq!(o.stdout, "to-out\n");
    assert!(!o.stderr.contains("to-err"), "{}", o.stderr);
    w.finish();
}

#[test]
fn log_drivers_none_and_json_file_and_logs_options() {
    let w = World::new("fl-log");
    // none: nothing written, nothing to read.
    let id = w.run_d(
        &["--name", "quiet", "--log-driver", "none"],
        &["sh", "-c", "echo unseen"],
    );
    w.until("quiet exited", || w.status(&id) == "exited");
    let o = w.b(&["logs", "quiet"]);
    code_msg(&o, 1, "configured logging driver does not support reading");
    let files: Vec<_> = std::fs::read_dir(w.root.join("containers").join(&id))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("log"))
        .collect();
    assert!(files.is_empty(), "{files:?}");
    // json-file named explicitly, with labels and env as attributes: --tail, --details.
    let id = w.run_d(
        &[
            "--name",
            "loud",
            "--log-driver",
            "json-file",
            "-l",
            "team=core",
            "-e",
            "STAGE=a b",
            "--log-opt",
            "labels=team",
            "--log-opt",
            "env=STAGE",
        ],
        &["sh", "-c", "echo one; echo two; echo three"],
    );
    w.until("loud exited", || w.status(&id) == "exited");
    let o = w.b(&["logs", "--tail", "1", "loud"]);
    o.ok();
    assert_eq!(o.stdout, "three\n");
    let o = w.b(&["logs", "--details", "--tail", "2", "loud"]);
    o.ok();
    assert_eq!(
        o.stdout,
        "STAGE=a+b,team=core two\nSTAGE=a+b,team=core three\n"
    );
    // Without attributes, --details leaves a space before each line (as Docker).
    w.run(&["--name", "plain"], &["sh", "-c", "echo bare"]).ok();
    let o = w.b(&["logs", "--details", "plain"]);
    assert_eq!(o.stdout, " bare\n");
    // --since/--until in RFC 3339, taken from the lines' own times (-t).
    let id = w.run_d(
        &["--name", "timed"],
        &["sh", "-c", "echo first; sleep 1.2; echo second"],
    );
    w.until("timed exited", || w.status(&id) == "exited");
    let stamped = w.b(&["logs", "-t", "timed"]).stdout.clone();
    let stamp = |word: &str| -> String {
        stamped
            .lines()
            .find(|l| l.ends_with(word))
            .unwrap_or_else(|| panic!("{word} not in {stamped}"))
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    let (first, second) = (stamp("first"), stamp("second"));
    let o = w.b(&["logs", "--since", &second, "timed"]);
    assert_eq!(o.stdout, "second\n", "{stamped}");
    let o = w.b(&["logs", "--until", &first, "timed"]);
    assert_eq!(o.stdout, "first\n", "{stamped}");
    w.finish();
}

#[test]
fn cidfile_holds_the_id_and_refuses_to_be_reused() {
    let w = World::new("fl-cid");
    let cidfile = w.rootfs.parent().unwrap().join("cid");
    let f = cidfile.to_str().unwrap();
    let id = w.run_d(&["--cidfile", f], &["sleep", "1000"]);
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    assert_eq!(w.inspect(&id)["HostConfig"]["ContainerIDFile"], f);
    let o = w.run(&["--cidfile", f], &["true"]);
    code_msg(&o, 125, "container ID file found");
    assert_eq!(w.all_ids(), vec![id], "a refused run made nothing");
    w.finish();
}

#[test]
fn stop_signal_stop_timeout_restart_and_rm_timeouts() {
    let w = World::new("fl-stop");
    let tmp = w.rootfs.join("tmp");
    // --stop-signal: what `stop` sends first.
    let id = w.run_d(
        &["--stop-signal", "USR1"],
        &[
            "sh",
            "-c",
            "trap 'echo usr1 > /tmp/stopsig; exit 0' USR1; touch /tmp/ready-usr1; while :; do sleep 0.1; done",
        ],
    );
    w.until("the trap is set", || tmp.join("ready-usr1").exists());
    w.b(&["stop", &id]).ok();
    assert_eq!(
        std::fs::read_to_string(tmp.join("stopsig")).unwrap(),
        "usr1\n"
    );
    assert_eq!(w.inspect(&id)["State"]["ExitCode"], 0);
    // --stop-timeout: how long `stop` waits before SIGKILL when -t is not given.
    let deaf = w.run_d(&["--stop-timeout", "1"], &["sh", "-c", DEAF]);
    let took = timed(|| {
        w.b(&["stop", &deaf]).ok();
    });
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "stop took {took:?}"
    );
    assert_eq!(w.inspect(&deaf)["State"]["ExitCode"], 137);
    // restart -t: the same wait, then a new start.
    w.b(&["start", &deaf]).ok();
    let before = w.inspect(&deaf)["State"]["StartedAt"].clone();
    let took = timed(|| {
        w.b(&["restart", "-t", "1", &deaf]).ok();
    });
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "restart took {took:?}"
    );
    let st = &w.inspect(&deaf)["State"];
    assert_eq!(st["Status"], "running", "{st}");
    assert_ne!(st["StartedAt"], before, "{st}");
    // rm -f -t N (Podman): a graceful stop first; plain rm -f kills at once.
    let trapping = |ready: &str| {
        w.run_d(
            &[],
            &[
                "sh",
                "-c",
                &format!(
                    "trap 'echo term > /tmp/rmterm; exit 0' TERM; touch /tmp/{ready}; while :; do sleep 0.1; done"
                ),
            ],
        )
    };
    let graceful = trapping("ready-graceful");
    w.until("the trap is set", || tmp.join("ready-graceful").exists());
    w.b(&["rm", "-f", "-t", "5", &graceful]).ok();
    assert_eq!(
        std::fs::read_to_string(tmp.join("rmterm")).unwrap(),
        "term\n"
    );
    std::fs::remove_file(tmp.join("rmterm")).unwrap();
    let killed = trapping("ready-killed");
    w.until("the trap is set", || tmp.join("ready-killed").exists());
    w.b(&["rm", "-f", &killed]).ok();
    assert!(!tmp.join("rmterm").exists(), "rm -f sent TERM");
    w.finish();
}

#[test]
fn all_on_start_stop_kill_rm_and_ignore_on_stop_rm() {
    let w = World::new("fl-all");
    let a = w.run_d(&["--name", "all-a"], &["sleep", "1000"]);
    let b = w.run_d(&["--name", "all-b"], &["sleep", "1000"]);
    w.b(&["stop", "--all", "-t", "0"]).ok();
    assert_eq!(
        (w.status(&a), w.status(&b)),
        ("exited".into(), "exited".into())
    );
    w.b(&["start", "--all"]).ok();
    assert_eq!(
        (w.status(&a), w.status(&b)),
        ("running".into(), "running".into())
    );
    w.b(&["kill", "--all"]).ok();
    w.until("both killed", || {
        w.status(&a) == "exited" && w.status(&b) == "exited"
    });
    assert_eq!(w.inspect(&a)["State"]["ExitCode"], 137);
    // --ignore (Podman's, on stop and rm): an unknown container is no error; without it,
    // and for start and kill, which have no such flag, it is.
    for cmd in ["stop", "rm"] {
        w.b(&[cmd, "--ignore", "no-such-ctr"]).ok();
    }
    // start fails before any process runs: 125, as run, create and exec.
    for (cmd, code) in [("start", 125), ("stop", 1), ("kill", 1), ("rm", 1)] {
        code_msg(
            &w.b(&[cmd, "no-such-ctr"]),
            code,
            "No such container: no-such-ctr",
        );
    }
    w.b(&["rm", "--all"]).ok();
    assert!(w.all_ids().is_empty());
    w.finish();
}

#[test]
fn ps_size_and_the_filters_that_compare_containers() {
    let w = World::new("fl-ps");
    let image = "localhost/fl-ps:1";
    let image_id = w.busybox_image(image);
    let first = w.detach(&["--name", "ps-1", image, "sleep", "1000"]);
    let second = w.detach(&[
        "--name",
        "ps-2",
        image,
        "sh",
        "-c",
        "dd if=/dev/zero of=/written bs=1000 count=1500 2>/dev/null; touch /done; sleep 1000",
    ]);
    w.run_d(&["--name", "ps-3"], &["sleep", "1000"]);
    w.until("ps-2 wrote", || {
        w.b(&["exec", &second, "test", "-f", "/done"]).code == 0
    });
    // -s: the writable layer, and that plus the image, in Docker's units.
    let image_size = w
        .b(&["images", "--format", "{{.Size}}", image])
        .stdout
        .trim()
        .to_string();
    let table = w.b(&["ps", "-s"]).stdout.clone();
    assert!(
        table.lines().next().unwrap().trim_end().ends_with("SIZE"),
        "{table}"
    );
    let sizes = w
        .b(&["ps", "--format", "{{.Names}} {{.Size}}"])
        .stdout
        .clone();
    assert!(
        sizes
            .lines()
            .any(|l| l.starts_with("ps-2 1.5MB (virtual ") && !l.ends_with("(virtual 1.5MB)")),
        "{sizes}"
    );
    assert!(
        sizes
            .lines()
            .any(|l| l == format!("ps-1 0B (virtual {image_size})")),
        "{sizes} (image {image_size})"
    );
    assert!(
        sizes.lines().any(|l| l == "ps-3 0B (virtual 0B)"),
        "{sizes}"
    );
    // inspect -s: the same sizes in bytes; without -s, none.
    let c = &w.b(&["inspect", "-s", "ps-2"]).json()[0];
    let (rw, root) = (
        c["SizeRw"].as_u64().unwrap(),
        c["SizeRootFs"].as_u64().unwrap(),
    );
    assert!((1_500_000..1_600_000).contains(&rw), "{rw}");
    let c1 = &w.b(&["inspect", "-s", "ps-1"]).json()[0];
    assert_eq!(c1["SizeRw"], 0, "{c1}");
    let image_bytes = c1["SizeRootFs"].as_u64().unwrap();
    assert!(image_bytes > 0);
    assert_eq!(root, rw + image_bytes);
    assert!(w.inspect("ps-2").get("SizeRw").is_none());
    let names = |filter: &str| -> String {
        let o = w.b(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
        o.ok();
        o.stdout.lines().collect::<Vec<_>>().join(" ")
    };
    assert_eq!(names("before=ps-3"), "ps-2 ps-1");
    assert_eq!(names("since=ps-1"), "ps-3 ps-2");
    assert_eq!(names(&format!("ancestor={image}")), "ps-2 ps-1");
    assert_eq!(names(&format!("ancestor={image_id}")), "ps-2 ps-1");
    let short = &image_id.trim_start_matches("sha256:")[..12];
    assert_eq!(names(&format!("ancestor={short}")), "ps-2 ps-1");
    assert_eq!(names("ancestor=localhost/not-an-image"), "");
    assert_eq!(names(&format!("id={}", &first[..10])), "ps-1");
    w.finish();
}

#[test]
fn exec_detached_stdin_env_file_and_privileged() {
    let w = World::new("fl-exec");
    let id = w.run_d(&[], &["sleep", "1000"]);
    // -d: returns at once, the command runs on.
    w.b(&[
        "exec",
        "-d",
        &id,
        "sh",
        "-c",
        "sleep 0.3; echo later > /tmp/exec-d",
    ])
    .ok();
    let f = w.rootfs.join("tmp/exec-d");
    w.until("the detached exec wrote", || {
        std::fs::read_to_string(&f).is_ok_and(|s| s == "later\n")
    });
    // -i without -t: stdin is passed on.
    let o = with_stdin(w.cmd(&["exec", "-i", &id, "cat"]), "through stdin\n");
    assert_eq!(o.stdout, "through stdin\n", "{}", o.stderr);
    // --env-file.
    let env = w.rootfs.parent().unwrap().join("exec.env");
    std::fs::write(&env, "# exec's\nFROM_FILE=yes\n").unwrap();
    let o = w.b(&[
        "exec",
        "--env-file",
        env.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "echo $FROM_FILE",
    ]);
    assert_eq!(o.stdout, "yes\n", "{}", o.stderr);
    // --privileged: every capability, where a plain exec has Docker's default set.
    let caps = |extra: &[&str]| -> String {
        let mut a = vec!["exec"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[&id, "grep", "CapEff", "/proc/self/status"]);
        let o = w.b(&a);
        o.ok();
        o.stdout.split_whitespace().nth(1).unwrap().to_string()
    };
    let plain = u64::from_str_radix(&caps(&[]), 16).unwrap();
    let all = u64::from_str_radix(&caps(&["--privileged"]), 16).unwrap();
    assert_eq!(plain & !all, 0);
    assert!(
        all.count_ones() > plain.count_ones() + 20,
        "{all:x} vs {plain:x}"
    );
    assert_ne!(all & (1 << 21), 0, "CAP_SYS_ADMIN: {all:x}");
    w.finish();
}

#[test]
fn start_interactive_and_the_container_management_forms() {
    let w = World::new("fl-mgmt");
    w.b(&[
        "container",
        "create",
        "-i",
        "--name",
        "reader",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "read l; echo got $l",
    ])
    .ok();
    let o = with_stdin(w.cmd(&["start", "-a", "-i", "reader"]), "a line\n");
    assert_eq!(o.stdout, "got a line\n", "{}", o.stderr);
    let o = w.b(&[
        "container",
        "run",
        "--rm",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "echo managed",
    ]);
    o.ok();
    assert_eq!(o.stdout, "managed\n");
    w.b(&[
        "container",
        "run",
        "-d",
        "--name",
        "svc",
        "--rootfs",
        w.rootfs(),
        "sleep",
        "1000",
    ])
    .ok();
    let ls = w.b(&["container", "ls", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ls.stdout, "svc running\n");
    w.b(&["container", "stop", "-t", "0", "svc"]).ok();
    let ls = w.b(&["container", "ls", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ls.stdout, "svc exited\nreader exited\n");
    w.b(&["container", "rm", "svc", "reader"]).ok();
    assert!(w.all_ids().is_empty());
    w.finish();
}

#[test]
fn templates_use_every_function_on_real_records() {
    let w = World::new("fl-tmpl");
    w.run(
        &["--name", "tmpl", "-l", "b=2", "-l", "a=1"],
        &["sh", "-c", "exit 3"],
    );
    let f = |t: &str| -> String {
        let o = w.b(&["inspect", "--format", t, "tmpl"]);
        o.ok();
        o.stdout.trim_end().to_string()
    };
    assert_eq!(f("{{upper .Name}} {{lower \"AbC\"}}"), "/TMPL abc");
    assert_eq!(f("{{join .Args \",\"}}"), "-c,exit 3");
    assert_eq!(f("{{printf \"%s=%d\" .Path .State.ExitCode}}"), "sh=3");
    assert_eq!(
        f("{{if gt (len .Args) 1}}many{{else}}few{{end}} {{if lt .State.ExitCode 1}}ok{{else}}failed{{end}}"),
        "many failed"
    );
    assert_eq!(
        f("{{and .State.Running true}} {{or .State.Running \"x\"}} {{not .State.Running}}"),
        "false x true"
    );
    assert_eq!(
        f("{{ne .State.ExitCode 0}} {{le .State.ExitCode 3}} {{ge .State.ExitCode 4}} {{eq .State.Status \"exited\"}}"),
        "true true false true"
    );
    assert_eq!(
        f("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}} {{index .Config.Labels \"b\"}}"),
        "a=1;b=2; 2"
    );
    let o = w.b(&["ps", "-a", "--format", "table {{.Names}}\t{{json .Labels}}"]);
    o.ok();
    assert_eq!(o.stdout, "NAMES     LABELS\ntmpl      \"a=1,b=2\"\n");
    w.finish();
}

/// `--sig-proxy` (the default): a signal to a foreground `run` reaches the container; with
/// `--sig-proxy=false` it does not, and the container runs on.
#[test]
fn sig_proxy_forwards_signals_of_a_foreground_run() {
    let w = World::new("fl-sig");
    let tmp = w.rootfs.join("tmp");
    let start = |name: &str, proxy: &str| {
        let mut c = w.cmd(&[
            "run",
            "--name",
            name,
            &format!("--sig-proxy={proxy}"),
            "--rootfs",
            w.rootfs(),
            "sh",
            "-c",
            &format!(
                "trap 'echo usr1 > /tmp/{name}.sig; exit 0' USR1; touch /tmp/{name}.ready; while :; do sleep 0.1; done"
            ),
        ]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let child = c.spawn().unwrap();
        w.until("the trap is set", || {
            tmp.join(format!("{name}.ready")).exists()
        });
        child
    };
    let usr1 = |child: &std::process::Child| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::SIGUSR1,
        )
        .unwrap();
    };
    let mut proxied = start("proxied", "true");
    usr1(&proxied);
    assert_eq!(proxied.wait().unwrap().code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(tmp.join("proxied.sig")).unwrap(),
        "usr1\n"
    );
    let mut kept = start("kept", "false");
    usr1(&kept);
    // The monitor got it and kept it: give a forwarded signal time to land, then look.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!tmp.join("kept.sig").exists());
    assert_eq!(w.status("kept"), "running");
    assert!(kept.try_wait().unwrap().is_none(), "the run ended");
    w.b(&["kill", "kept"]).ok();
    assert_eq!(kept.wait().unwrap().code(), Some(137));
    w.finish();
}

/// `attach --no-stdin`: the container's input is not the attaching terminal's; without
/// it, it is.
#[test]
fn attach_with_and_without_stdin() {
    let w = World::new("fl-att");
    let reader = |name: &str| {
        w.run_d(
            &["-i", "--name", name],
            &["sh", "-c", "read l; echo got $l"],
        )
    };
    let id = reader("with");
    let o = with_stdin(w.cmd(&["attach", "with"]), "a line\n");
    assert_eq!(o.stdout, "got a line\n", "{}", o.stderr);
    assert_eq!(w.status(&id), "exited");
    let id = reader("without");
    let mut c = w.cmd(&["attach", "--no-stdin", "without"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"a line\n").unwrap();
    w.until("the attach connected", || w.clients(&id) == 1);
    // Given time, a line sent on would have been read and answered.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.status(&id), "running");
    w.b(&["kill", "without"]).ok();
    let o = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("got"),
        "{:?}",
        o
    );
    w.finish();
}

/// `attach --sig-proxy` (the default): a signal to the attached client reaches the
/// container; with `--sig-proxy=false` the client dies of it, as Docker's, and the
/// container runs on.
#[test]
fn attach_passes_signals_on_unless_told_not_to() {
    let w = World::new("fl-asig");
    let tmp = w.rootfs.join("tmp");
    let trapping = |name: &str| {
        let id = w.run_d(
            &["--name", name],
            &[
                "sh",
                "-c",
                &format!(
                    "trap 'echo usr1 > /tmp/{name}.sig; exit 0' USR1; touch /tmp/{name}.ready; while :; do sleep 0.1; done"
                ),
            ],
        );
        w.until("the trap is set", || {
            tmp.join(format!("{name}.ready")).exists()
        });
        id
    };
    let attach = |id: &str, flags: &[&str]| {
        let mut a = vec!["attach"];
        a.extend_from_slice(flags);
        a.push(id);
        let mut c = w.cmd(&a);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = c.spawn().unwrap();
        w.until("the attach connected", || w.clients(id) == 1);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::SIGUSR1,
        )
        .unwrap();
        child
    };
    let id = trapping("passed");
    let mut child = attach(&id, &[]);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(tmp.join("passed.sig")).unwrap(),
        "usr1\n"
    );
    let id = trapping("kept");
    let mut child = attach(&id, &["--sig-proxy=false"]);
    let st = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(libc::SIGUSR1),
        "{st:?}"
    );
    assert!(!tmp.join("kept.sig").exists());
    assert_eq!(w.status(&id), "running");
    w.finish();
}

/// `system df -v`: each container's LOCAL VOLUMES is how many volumes it mounts.
#[test]
fn system_df_verbose_counts_each_containers_volumes() {
    let w = World::new("fl-df");
    let image = "localhost/fl-df:1";
    w.busybox_image(image);
    w.detach(&[
        "--name",
        "df-vols",
        "-v",
        "fl-df-named:/named",
        "-v",
        "/anonymous",
        image,
        "sleep",
        "1000",
    ]);
    w.detach(&["--name", "df-none", image, "sleep", "1000"]);
    let out = w.b(&["system", "df", "-v"]);
    out.ok();
    let columns = |name: &str| -> Vec<String> {
        let line = out
            .stdout
            .lines()
            .find(|l| l.trim_end().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in {}", out.stdout));
        line.split("   ")
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(columns("df-vols")[3], "2", "{}", out.stdout);
    assert_eq!(columns("df-none")[3], "0", "{}", out.stdout);
    w.finish_with_volumes();
}
