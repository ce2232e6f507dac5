//! exec into running containers: namespaces, cgroup, process settings, fds, exit codes,
//! runc's error phrases, detached exec, a terminal, signal forwarding.

mod common;
use common::*;
use serde_json::{json, Value};
use std::process::Command;

/// A running container (`sleep 1000`) with a writable root; returns its init's host pid.
fn running(c: &Ctx, id: &str) -> (Bundle, i32) {
    let mut b = c.bundle_for(id, &["sleep", "1000"]);
    b.config["root"]["readonly"] = json!(false);
    let pid = c.create(&b, id);
    c.rt(&["start", id]).ok();
    (b, pid)
}

fn ns_links(pid: &str) -> Vec<String> {
    ["pid", "net", "ipc", "uts", "mnt"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn exec_joins_the_container_and_applies_the_flags() {
    let c = Ctx::new("exec");
    let id = c.id("e");
    let (_b, init) = running(&c, &id);

    // Same namespaces as the init.
    let out = c
        .rt(&[
            "exec",
            &id,
            "sh",
            "-c",
            "for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done",
        ])
        .ok()
        .stdout
        .clone();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ns_links(&init.to_string()),
        "exec did not join every namespace"
    );

    // The flags become the process's settings; the config's process is the base.
    let out = c.rt(&[
        "exec",
        "--user",
        "1000:1001",
        "--additional-gids",
        "5",
        "--additional-gids",
        "7",
        "--cwd",
        "/tmp",
        "-e",
        "FOO=bar",
        "-e",
        "TERM=dumb",
        "--cap",
        "CAP_SYS_ADMIN",
        &id,
        "/bin/testinit",
    ]);
    let v: Value = out.ok().json();
    assert_ne!(v["pid"], 1);
    assert_eq!(v["hostname"], "testbox");
    assert_eq!(v["uid"], json!([1000, 1000, 1000, 1000]));
    assert_eq!(v["gid"], json!([1001, 1001, 1001, 1001]));
    assert_eq!(v["groups"], json!([5, 7]));
    assert_eq!(v["cwd"], "/tmp");
    let env: Vec<&str> = v["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"FOO=bar"), "{env:?}");
    assert!(env.contains(&"TERM=dumb") && !env.contains(&"TERM=xterm"));
    // CAP_SYS_ADMIN (bit 21) joins the bounding set; a non-root uid has no effective caps.
    let bounding = u64::from_str_radix(v["caps"]["bounding"].as_str().unwrap(), 16).unwrap();
    assert_ne!(bounding & (1 << 21), 0, "{}", v["caps"]);
    assert_eq!(v["caps"]["effective"], "0000000000000000");
    assert_eq!(v["no_new_privs"], "1");
    // Same cgroups as the init (no cgroup namespace: the paths are the host's).
    let mut host_cg: Vec<String> = std::fs::read_to_string(format!("/proc/{init}/cgroup"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut exec_cg: Vec<String> = v["cgroup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    host_cg.sort();
    exec_cg.sort();
    assert_eq!(exec_cg, host_cg);

    // --process FILE replaces the config's process entirely.
    let pfile = c.dir.join("process.json");
    std::fs::write(
        &pfile,
        json!({"args": ["/bin/testinit"], "cwd": "/bin", "user": {"uid": 7, "gid": 8},
               "env": ["ONLY=this"]})
        .to_string(),
    )
    .unwrap();
    let v = c
        .rt(&["exec", "--process", pfile.to_str().unwrap(), &id])
        .ok()
        .json();
    assert_eq!(v["uid"][0], 7);
    assert_eq!(v["gid"][0], 8);
    assert_eq!(v["cwd"], "/bin");
    assert_eq!(v["env"][0], "ONLY=this");
    c.finish();
}

#[test]
fn exec_closes_every_fd_but_the_preserved_ones() {
    let c = Ctx::new("execfd");
    let id = c.id("e");
    running(&c, &id);
    // The caller holds fds 3 and 5 open (not close-on-exec) when it runs the runtime.
    let shell = |extra: &str| {
        let script = format!(
            "exec 3</etc/hostname 5</etc/hostname; exec {} --root {} exec {extra} {id} /bin/testinit",
            runtime().display(),
            c.root.display()
        );
        let out = run_with_timeout(
            Command::new("sh").args(["-c", &script]),
            std::time::Duration::from_secs(30),
        );
        out.ok();
        let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let mut fds: Vec<String> = v["fds"].as_object().unwrap().keys().cloned().collect();
        fds.sort();
        fds
    };
    assert_eq!(shell(""), ["0", "1", "2"]);
    assert_eq!(shell("--preserve-fds 1"), ["0", "1", "2", "3"]);
    c.finish();
}

#[test]
fn exec_exit_codes_and_runc_phrases() {
    let c = Ctx::new("execerr");
    let id = c.id("e");
    let (b, _) = running(&c, &id);
    std::fs::write(b.rootfs().join("tmp/notexec"), "#!/bin/sh\n").unwrap();
    assert_eq!(c.rt(&["exec", &id, "sh", "-c", "exit 7"]).code, 7);
    assert_eq!(c.rt(&["exec", &id, "sh", "-c", "kill -9 $$"]).code, 137);
    for (args, phrase) in [
        (vec!["nosuchprog"], "executable file not found in $PATH"),
        (vec!["/nosuch"], "no such file or directory"),
        (vec!["/tmp/notexec"], "permission denied"),
        (vec!["/tmp"], "permission denied"),
        (vec!["--cwd", "/nosuchdir", "true"], "/nosuchdir"),
        (vec!["--user", "bob", "true"], "bob"),
    ] {
        let mut argv = vec!["exec"];
        let (flags, cmd): (Vec<&str>, Vec<&str>) = if args[0].starts_with("--") {
            (args[..2].to_vec(), args[2..].to_vec())
        } else {
            (vec![], args.clone())
        };
        argv.extend(flags);
        argv.push(&id);
        argv.extend(cmd);
        let out = c.rt(&argv);
        out.fails_with(phrase);
        // runc's exit code for a failed exec, distinct from any exit status.
        assert_eq!(out.code, 255, "{argv:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
    let bad = c.dir.join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    // runc does not name the file; berth does.
    let phrase = if is_runc() {
        "invalid character"
    } else {
        "bad.json"
    };
    c.rt(&["exec", "--process", bad.to_str().unwrap(), &id])
        .fails_with(phrase);
    c.rt(&["exec", &id]).fails_with("");

    c.rt(&["pause", &id]).ok();
    c.rt(&["exec", &id, "true"])
        .fails_with("cannot exec in a paused container");
    c.rt(&["resume", &id]).ok();
    c.rt(&["kill", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    c.rt(&["exec", &id, "true"])
        .fails_with("cannot exec in a stopped container");

    // A created container takes an exec, as with runc: the process runs in its
    // namespaces beside the init, which still waits for `start`.
    let id2 = c.id("created");
    let b2 = c.bundle_for(&id2, &["sleep", "1000"]);
    let init2 = c.create(&b2, &id2);
    let out = c.rt(&[
        "exec",
        &id2,
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/pid",
    ]);
    let pidns = std::fs::read_link(format!("/proc/{init2}/ns/pid")).unwrap();
    assert_eq!(
        out.ok().stdout.lines().collect::<Vec<_>>(),
        ["testbox", pidns.to_str().unwrap()]
    );
    assert_eq!(c.status(&id2), "created");
    c.rt(&["start", &id2]).ok();
    assert_eq!(c.status(&id2), "running");
    c.rt(&["exec", "nosuchcontainer", "true"])
        .fails_with("does not exist");
    c.finish();
}

#[test]
fn detached_exec_writes_the_pid_file_and_is_reparented_to_the_caller() {
    let c = Ctx::new("execd");
    let id = c.id("e");
    let (_b, init) = running(&c, &id);
    let pidfile = c.dir.join("exec.pid");
    let t = std::time::Instant::now();
    c.rt(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ])
    .ok();
    // Not waiting for the sleep (the harness's 30 s deadline would catch that too).
    assert!(t.elapsed() < std::time::Duration::from_secs(25));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track_pid(pid);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .to_string();
    // We are a subreaper (as conmon and containerd's shim are): the process is ours.
    assert_eq!(ppid, std::process::id().to_string());
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap()
    );
    let pids = c.rt(&["ps", "--format", "json", &id]).ok().json();
    assert!(pids.as_array().unwrap().contains(&json!(pid)), "{pids}");
    c.finish();
}

#[test]
fn exec_with_a_terminal_through_a_console_socket() {
    let c = Ctx::new("exectty");
    let id = c.id("e");
    running(&c, &id);
    let sock = c.dir.join("exec-console.sock");
    let accept = console_socket(&sock, "done", None);
    let pidfile = c.dir.join("exec.pid");
    let out = c.rt(&[
        "exec",
        "-t",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; test -t 0 && echo stdin-is-a-tty; echo done",
    ]);
    out.ok();
    c.track_pid(
        std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
    );
    let got = accept.join().unwrap();
    assert!(got.contains("/dev/pts/"), "{got}");
    assert!(got.contains("stdin-is-a-tty"), "{got}");
    c.rt(&["exec", "-t", "-d", &id, "true"])
        .fails_with("console socket");
    c.finish();
}

#[test]
fn foreground_exec_forwards_signals() {
    let c = Ctx::new("execsig");
    let id = c.id("e");
    let (b, _) = running(&c, &id);
    let mut child = Command::new(runtime())
        .args([
            "--root",
            c.root.to_str().unwrap(),
            "exec",
            &id,
            "sh",
            "-c",
            "trap 'exit 42' TERM; touch /tmp/exec-ready; while true; do sleep 0.05; done",
        ])
        .spawn()
        .unwrap();
    c.wait_file(&b.rootfs().join("tmp/exec-ready"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "exec ignored SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(42));
    c.finish();
}

/// An exec'd process gets the container's seccomp filter, the rlimits of its process
/// spec, and no_new_privs only when the config or --no-new-privs asks.
#[test]
fn exec_applies_seccomp_rlimits_and_no_new_privs() {
    let c = Ctx::new("execsec");
    let id = c.id("s");
    let mut b = c.bundle_for(&id, &["sleep", "1000"]);
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    });
    c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    let script = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
                  mkdir /made 2>&1; echo mkdir=$?; ulimit -n";
    let out = c.rt(&["exec", &id, "sh", "-c", script]).ok().stdout.clone();
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(
        out.contains("Permission denied") && out.contains("mkdir=1"),
        "{out}"
    );
    let out = c
        .rt(&[
            "exec",
            "--no-new-privs",
            &id,
            "grep",
            "NoNewPrivs:",
            "/proc/self/status",
        ])
        .ok()
        .stdout
        .clone();
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // rlimits from a process spec (under this machine's hard limit).
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let soft = 333.min(hard);
    let process = c.dir.join("process.json");
    let mut p = b.config["process"].clone();
    p["args"] = json!(["sh", "-c", "ulimit -n; ulimit -Hn"]);
    p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}]);
    std::fs::write(&process, p.to_string()).unwrap();
    let out = c
        .rt(&["exec", "--process", process.to_str().unwrap(), &id])
        .ok()
        .stdout
        .clone();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], soft.to_string(), "{out}");
    c.rt(&["kill", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    c.finish();
}
