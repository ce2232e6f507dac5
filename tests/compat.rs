//! Behaviours runc users and the tools that drive runc rely on (issue 12: what runc's own
//! integration tests and the OCI validation programs check), each asserted by its effect.
//! Where runc 1.1 behaves otherwise, `is_runc()` marks berth's expectation.

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A network namespace of our own, bind-mounted on a file in the test's dir (as
/// `ip netns add` and podman/netavark's /run/netns/<name> are); unmounted on drop.
struct NetNs(PathBuf);

impl NetNs {
    fn new(c: &Ctx, name: &str) -> NetNs {
        let file = c.dir.join(name);
        std::fs::write(&file, "").unwrap();
        let out = output_of(
            std::process::Command::new("unshare")
                .arg(format!("--net={}", file.display()))
                .arg("true"),
        );
        assert!(
            out.status.success(),
            "unshare --net: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        NetNs(file)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The config's namespaces with `typ` replaced by one joined at `path`.
fn join_ns(v: &mut serde_json::Value, typ: &str, path: &str) {
    let mut ns: Vec<serde_json::Value> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != typ)
        .cloned()
        .collect();
    ns.push(json!({"type": typ, "path": path}));
    v["linux"]["namespaces"] = json!(ns);
}

fn host_sysctl(name: &str) -> String {
    std::fs::read_to_string(Path::new("/proc/sys").join(name.replace('.', "/")))
        .unwrap()
        .trim()
        .to_string()
}

/// podman with netavark joins a network namespace by path and sets
/// net.ipv4.ping_group_range: allowed in any network namespace but the runtime's own.
#[test]
fn net_sysctls_in_a_network_namespace_joined_by_path() {
    let c = Ctx::new("netsysctl");
    let netns = NetNs::new(&c, "netns");
    let before = host_sysctl("net.ipv4.ping_group_range");
    let out = c.probe(
        "joined",
        &["sh", "-c", "cat /proc/sys/net/ipv4/ping_group_range"],
        |v| {
            join_ns(v, "network", netns.path());
            v["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "0 2147483647"});
        },
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "2147483647"]
    );
    assert_eq!(host_sysctl("net.ipv4.ping_group_range"), before);

    // The runtime's own namespace, by path: refused, nothing left behind.
    let id = c.id("host");
    let mut b = c.bundle_for(&id, &["true"]);
    join_ns(
        &mut b.config,
        "network",
        &format!("/proc/{}/ns/net", std::process::id()),
    );
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "0 1"});
    c.run(&b, &id)
        .fails_with("not allowed in host network namespace");
    assert_eq!(host_sysctl("net.ipv4.ping_group_range"), before);
    drop(netns);
    c.finish();
}

/// A process holding new namespaces (`unshare --<flags> --fork sleep`), killed on drop.
struct Holder(std::process::Child);

impl Holder {
    fn new(flags: &[&str]) -> Holder {
        let child = std::process::Command::new("unshare")
            .args(flags)
            .args(["--fork", "sleep", "1000"])
            .spawn()
            .unwrap();
        let h = Holder(child);
        // unshare has switched once its namespace differs from ours.
        let ns = if flags.contains(&"--mount") {
            "mnt"
        } else {
            "uts"
        };
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::read_link(h.ns(ns)).ok().as_ref() == Some(&ours) {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare never switched"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        h
    }
    fn ns(&self, name: &str) -> String {
        format!("/proc/{}/ns/{name}", self.0.id())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Its sleep is in the group unshare leads only with --fork: kill both by pid.
        if let Ok(kids) =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.0.id()))
        {
            for k in kids.split_whitespace() {
                let _ = std::process::Command::new("kill").args(["-9", k]).status();
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Namespaces joined by path are the container's own: a uts namespace allows `hostname`,
/// a mount namespace takes the config's mounts (validation linux_ns_path).
#[test]
fn namespaces_joined_by_path_count_as_the_containers_own() {
    let c = Ctx::new("nspath");
    let host_name = nix::unistd::gethostname().unwrap();
    let uts = Holder::new(&["--uts"]);
    let uts_ns = uts.ns("uts");
    let want = std::fs::read_link(&uts_ns).unwrap();
    let out = c.probe(
        "uts",
        &["sh", "-c", "hostname; readlink /proc/self/ns/uts"],
        |v| join_ns(v, "uts", &uts_ns),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["testbox", want.to_str().unwrap()]);
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
    // Our own uts namespace by path is the host's: no hostname there.
    let id = c.id("hostuts");
    let mut b = c.bundle_for(&id, &["true"]);
    join_ns(
        &mut b.config,
        "uts",
        &format!("/proc/{}/ns/uts", std::process::id()),
    );
    if is_runc() {
        // runc 1.1 sets it: the host's hostname would change. Not run.
    } else {
        c.run(&b, &id)
            .fails_with("unable to set hostname without a private UTS namespace");
        assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
    }
    drop(uts);

    let mnt = Holder::new(&["--mount", "--propagation", "private"]);
    let mnt_ns = mnt.ns("mnt");
    let want = std::fs::read_link(&mnt_ns).unwrap();
    let out = c.probe(
        "mnt",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; grep -c '^proc /proc proc ' /proc/self/mounts; ls /dev/null",
        ],
        |v| join_ns(v, "mount", &mnt_ns),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [want.to_str().unwrap(), "1", "/dev/null"]);
    drop(mnt);
    c.finish();
}

/// No namespaces listed at all (validation linux_ns_itype): the container is created in
/// the runtime's namespaces. berth mounts nothing there (it would be on the host) and says
/// so; runc 1.1 refuses the default masked paths without a mount namespace.
#[test]
fn no_namespaces_listed_inherits_the_runtimes() {
    let c = Ctx::new("itype");
    let id = c.id("i");
    let mut b = c.bundle_for(&id, &["sleep", "100"]);
    b.config["linux"]["namespaces"] = json!([]);
    b.config.as_object_mut().unwrap().remove("hostname");
    b.write();
    let out = c.rt(&["create", "--bundle", b.path(), &id]);
    if is_runc() {
        out.fails_with("unable to restrict sys entries without a private MNT namespace");
        c.finish();
        return;
    }
    out.ok();
    assert!(
        out.stderr.contains("mounts, maskedPaths, readonlyPaths"),
        "{}",
        out.stderr
    );
    let pid = c.state(&id)["pid"].as_i64().unwrap() as i32;
    c.track_pid(pid);
    for ns in ["mnt", "uts", "ipc", "net", "pid", "cgroup"] {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap(),
            std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap(),
            "{ns}"
        );
    }
    // Its root is the rootfs, with nothing mounted in it.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        b.rootfs()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(b.rootfs().to_str().unwrap()), "{mounts}");
    c.rt(&["delete", "--force", &id]).ok();
    c.finish();
}

/// A seccomp profile that makes getcwd fail (validation linux_seccomp) does not break
/// create: the cwd is checked before the filter is loaded.
#[test]
fn a_filter_denying_getcwd_does_not_break_create() {
    let c = Ctx::new("getcwd");
    let id = c.id("g");
    let mut b = c.bundle_for(&id, &["sh", "-c", "echo started in $PWD"]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
    });
    let out = c.run(&b, &id);
    if is_runc() {
        // Debian's runc 1.1.5 checks its cwd with getcwd after loading the filter.
        out.fails_with("failed to verify if current working directory is safe");
        c.finish();
        return;
    }
    let out = &out.ok().stdout;
    // The shell could not learn its cwd: the filter is in force.
    assert_eq!(out.trim(), "started in");
    c.finish();
}

/// process.cwd is entered with the runtime's privileges, before the switch to the user
/// (bats cwd.bats): the process runs in a directory its user cannot enter.
#[test]
fn cwd_is_entered_before_dropping_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let c = Ctx::new("cwd");
    // create: uid 42 in /root (0700, root's).
    let id = c.id("create");
    let mut b = c.bundle_for(&id, &["sh", "-c", "echo in-$PWD; ls . || echo ls-denied"]);
    let root = b.rootfs().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    b.config["process"]["user"] = json!({"uid": 42, "gid": 42});
    b.config["process"]["cwd"] = json!("/root");
    let out = c.run(&b, &id);
    let out = &out.ok().stdout;
    assert!(
        out.contains("in-/root") && out.contains("ls-denied"),
        "{out}"
    );

    // exec --user 0 (without CAP_DAC_OVERRIDE) into a cwd only uid 42 may enter.
    let id = c.id("exec");
    let mut b = c.bundle_for(&id, &["sleep", "100"]);
    let root = b.rootfs().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::chown(&root, Some(42), Some(42)).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    b.config["process"]["user"] = json!({"uid": 42, "gid": 42});
    b.config["process"]["cwd"] = json!("/root");
    c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    let out = c.rt(&["exec", "--user", "0", &id, "sh", "-c", "id -u; echo $PWD"]);
    assert_eq!(out.ok().stdout.lines().collect::<Vec<_>>(), ["0", "/root"]);
    c.finish();
}

/// The console belongs to the process's user, its group left to devpts (gid=5 in the
/// default config), for the init and for exec (bats tty.bats "tty owner").
#[test]
fn the_console_belongs_to_the_process_user() {
    let c = Ctx::new("ttyowner");
    let probe = "stat -c %u:%g $(tty); echo done";
    for (suffix, user, want) in [("root", (0, 0), "0:5"), ("user", (1000, 100), "1000:5")] {
        let id = c.id(suffix);
        let mut b = c.bundle_for(&id, &["sh", "-c", probe]);
        b.config["process"]["terminal"] = json!(true);
        b.config["process"]["user"] = json!({"uid": user.0, "gid": user.1});
        b.write();
        let (out, accept) = c.create_with_console(&b, &id, "done");
        out.ok();
        c.track_pid(c.state(&id)["pid"].as_i64().unwrap() as i32);
        c.rt(&["start", &id]).ok();
        let seen = accept.join().unwrap();
        assert!(seen.contains(want), "{suffix}: {seen}");
        c.wait_status(&id, "stopped");
    }

    // exec -t, and exec --process with a process that has no `user` (runc: root).
    let id = c.id("exec");
    let b = c.bundle_for(&id, &["sleep", "100"]);
    c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    let sock = c.dir.join("exec.sock");
    let accept = console_socket(&sock, "done", None);
    let s = sock.to_str().unwrap();
    // Detached exec processes are ours by subreaping: tracked by pid, to be reaped.
    let pid_file = c.dir.join("exec.pid");
    let p = pid_file.to_str().unwrap();
    c.rt(&[
        "exec",
        "-d",
        "-t",
        "--pid-file",
        p,
        "--console-socket",
        s,
        "--user",
        "1000:100",
        &id,
        "sh",
        "-c",
        probe,
    ])
    .ok();
    c.track_pid(std::fs::read_to_string(&pid_file).unwrap().parse().unwrap());
    let seen = accept.join().unwrap();
    assert!(seen.contains("1000:5"), "exec: {seen}");

    let pfile = c.dir.join("process.json");
    std::fs::write(
        &pfile,
        json!({
            "terminal": true,
            "consoleSize": {"height": 10, "width": 110},
            "args": ["/bin/sh", "-c", "stty size; id -u; echo done"],
            "cwd": "/"
        })
        .to_string(),
    )
    .unwrap();
    let sock = c.dir.join("proc.sock");
    let accept = console_socket(&sock, "done", None);
    let s = sock.to_str().unwrap();
    c.rt(&[
        "exec",
        "-d",
        "--pid-file",
        p,
        "--process",
        pfile.to_str().unwrap(),
        "--console-socket",
        s,
        &id,
    ])
    .ok();
    c.track_pid(std::fs::read_to_string(&pid_file).unwrap().parse().unwrap());
    let seen = accept.join().unwrap();
    let lines: Vec<&str> = seen.lines().map(str::trim).collect();
    assert!(
        lines.starts_with(&["10 110", "0"]),
        "exec --process: {seen:?}"
    );
    c.finish();
}

/// Bind sources the container's root cannot reach (under a 0700 directory of host root)
/// are opened with the runtime's privileges before the user namespace (bats userns.bats,
/// "inaccessible mount source"); the mount's flags still apply.
#[test]
fn bind_sources_out_of_reach_of_the_user_namespace() {
    use std::os::unix::fs::PermissionsExt;
    let c = Ctx::new("usernsmnt");
    let private = c.dir.join("private");
    std::fs::create_dir_all(private.join("src")).unwrap();
    std::fs::write(private.join("src/f"), "behind a locked door\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let src = private.join("src");
    let out = c.probe(
        "m",
        &["sh", "-c", "cat /vol/f; touch /vol/new 2>/dev/null || echo read-only"],
        |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/vol", "type": "bind", "source": src, "options": ["rbind", "ro"]}),
            );
        },
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["behind a locked door", "read-only"]
    );
    c.finish();
}

/// `kill -a ID 0` and `kill ID 0` ask whether the container is there; `ps` of a stopped
/// container lists nothing and succeeds; `update --memory -1 --cpu-quota -1` lifts the
/// limits (bats kill.bats, ps.bats, update.bats).
#[test]
fn kill_zero_ps_of_a_stopped_container_and_unlimited_updates() {
    let c = Ctx::new("killps");
    let id = c.id("k");
    let mut b = c.bundle_for(&id, &["sleep", "100"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 33554432});
    b.config["linux"]["resources"]["cpu"] = json!({"quota": 10000, "period": 100000});
    let pid = c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    c.rt(&["kill", "-a", &id, "0"]).ok();
    c.rt(&["kill", &id, "0"]).ok();
    assert_eq!(c.status(&id), "running");

    let cg = |ctrl: &str, file: &str| {
        let line = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let path = line
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrls, p) = (f.next()?, f.next()?, f.next()?);
                ctrls.split(',').any(|c| c == ctrl).then(|| p.to_string())
            })
            .unwrap();
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}{path}/{file}"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(cg("memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "10000");
    c.rt(&["update", "--memory", "-1", "--cpu-quota", "-1", &id])
        .ok();
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "-1");
    // The kernel's "no limit": the largest page-aligned value.
    assert!(
        cg("memory", "memory.limit_in_bytes")
            .parse::<u64>()
            .unwrap()
            > 1 << 62,
        "memory limit kept"
    );

    c.rt(&["kill", &id, "KILL"]).ok();
    c.wait_status(&id, "stopped");
    let out = c.rt(&["ps", &id]);
    assert_eq!(
        out.ok().stdout.lines().count(),
        1,
        "only the header: {}",
        out.stdout
    );
    let out = c.rt(&["ps", "--format", "json", &id]);
    let want = if is_runc() { "null" } else { "[]" };
    assert_eq!(out.ok().stdout.trim(), want);
    c.rt(&["kill", &id, "0"])
        .fails_with("container not running");
    c.finish();
}

/// `kill --all` of a stopped container is no error (bats kill.bats) and still reaches what
/// its init left in the cgroup: without a pid namespace of its own, an init's background
/// process outlives it. Without `--all`, a stopped container is "not running".
#[test]
fn kill_all_of_a_stopped_container_reaches_what_it_left() {
    let c = Ctx::new("killall");
    let id = c.id("k");
    let mut b = c.bundle_for(&id, &["sh", "-c", "sleep 1000 & echo $! >/tmp/left"]);
    b.config["root"]["readonly"] = json!(false);
    let ns: Vec<serde_json::Value> = b.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "pid")
        .cloned()
        .collect();
    b.config["linux"]["namespaces"] = json!(ns);
    c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    c.wait_status(&id, "stopped");
    let left: i32 = c.wait_line(&b.rootfs().join("tmp/left")).parse().unwrap();
    c.track_pid(left);
    assert!(Path::new(&format!("/proc/{left}")).exists());

    c.rt(&["kill", "-a", &id, "0"]).ok();
    c.rt(&["kill", &id, "KILL"])
        .fails_with("container not running");
    c.rt(&["kill", "-a", &id, "KILL"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while Path::new(&format!("/proc/{left}")).exists() {
        reap(left);
        assert!(
            std::time::Instant::now() < deadline,
            "kill --all left {left} running"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    c.rt(&["delete", &id]).ok();
    c.finish();
}

/// A pre-existing parent cgroup with empty cpuset.cpus/mems (made by a bare mkdir) is
/// filled from its own parent, as runc does on cgroup v1; without it no task could join.
#[test]
fn an_empty_cpuset_parent_is_filled() {
    let c = Ctx::new("cpuset");
    let root = Path::new("/sys/fs/cgroup/cpuset");
    if !root.join("cpuset.cpus").exists() {
        eprintln!("no cgroup v1 cpuset hierarchy here");
        return;
    }
    let parent = root.join(format!("berth-it-{}", c.name));
    std::fs::create_dir_all(&parent).unwrap();
    assert_eq!(
        std::fs::read_to_string(parent.join("cpuset.cpus"))
            .unwrap()
            .trim(),
        ""
    );
    let out = c.probe("c", &["cat", "/sys/fs/cgroup/cpuset/cpuset.cpus"], |_| {});
    let want = std::fs::read_to_string(root.join("cpuset.cpus")).unwrap();
    assert_eq!(out.trim(), want.trim());
    assert_eq!(
        std::fs::read_to_string(parent.join("cpuset.cpus"))
            .unwrap()
            .trim(),
        want.trim()
    );
    c.finish();
}

/// Device access letters other than r, w and m are ignored with a warning, as runc
/// ignores them ("rwa" is "rw").
#[test]
fn unknown_device_access_letters_are_ignored() {
    let c = Ctx::new("devacc");
    let id = c.id("d");
    let mut b = c.bundle_for(
        &id,
        &[
            "sh",
            "-c",
            "echo x > /dev/null && head -c 3 /dev/zero | wc -c",
        ],
    );
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwa"}
    ]);
    let out = c.run(&b, &id);
    assert_eq!(out.ok().stdout.trim(), "3");
    if !is_runc() {
        assert!(
            out.stderr.contains("devices[1].access") && out.stderr.contains("ignoring"),
            "{}",
            out.stderr
        );
    }
    c.finish();
}

/// A read-only tmpfs /dev is made read-only after its nodes and submounts (runc's
/// finalizeRootfs); another read-only tmpfs at once.
#[test]
fn a_read_only_tmpfs_dev_is_made_read_only_last() {
    let c = Ctx::new("rodev");
    let out = c.probe(
        "r",
        &[
            "sh",
            "-c",
            "grep -E ' /dev | /ro ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1; \
             touch /dev/x 2>/dev/null || echo dev-ro; touch /ro/x 2>/dev/null || echo ro-ro; \
             echo ok > /dev/null && ls -d /dev/pts/ptmx /dev/shm",
        ],
        |v| {
            for m in v["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev" {
                    m["options"].as_array_mut().unwrap().push(json!("ro"));
                }
            }
            v["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/ro", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "mode=755"]}),
            );
        },
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "/dev ro",
            "/ro ro",
            "dev-ro",
            "ro-ro",
            "/dev/pts/ptmx",
            "/dev/shm"
        ]
    );
    c.finish();
}

/// `--no-pivot` leaves the host's mounts under the container's root: no whole procfs or
/// sysfs may stay among them, or a user namespace in the container could mount a fresh,
/// unmasked proc (bats no_pivot.bats).
#[test]
fn no_pivot_leaves_no_bare_proc_to_mount() {
    let c = Ctx::new("nopivotproc");
    let id = c.id("n");
    let mut b = c.bundle_for(
        &id,
        &[
            "unshare",
            "-mrpf",
            "sh",
            "-c",
            "mount -t proc none /proc && echo MOUNTED || echo refused",
        ],
    );
    // Mapping root in the new user namespace takes CAP_SETFCAP (Linux 5.12).
    for set in ["bounding", "permitted", "effective"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SETFCAP"));
    }
    b.write();
    let out = c.rt(&["run", "--no-pivot", "--bundle", b.path(), &id]);
    assert!(out.stdout.contains("refused"), "{out:?}");
    assert!(!out.stdout.contains("MOUNTED"), "{out:?}");
    // The host's own /proc and /sys are untouched.
    assert!(Path::new("/proc/self/status").exists());
    assert!(Path::new("/sys/kernel").is_dir());
    c.finish();
}

/// `exec --cgroup` runs the process in a sub-cgroup of the container's, and refuses one
/// outside it as runc does ("not a sub cgroup path").
#[test]
fn exec_into_a_sub_cgroup() {
    let c = Ctx::new("execcg");
    let id = c.id("e");
    let b = c.bundle_for(&id, &["sleep", "100"]);
    let pid = c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    let out = c.rt(&["exec", "--cgroup", "..", &id, "true"]);
    out.fails_with("not a sub cgroup path");
    // A sub-cgroup that is not there, for every controller or one, and a controller
    // that is not there, in runc's words (bats exec.bats).
    for sub in ["nonexistent", "memory:nonexistent"] {
        let out = c.rt(&["exec", "--cgroup", sub, &id, "true"]);
        out.fails_with("adding pid ");
        out.fails_with("/nonexistent/cgroup.procs: no such file or directory");
    }
    c.rt(&["exec", "--cgroup", "whaaat:/", &id, "true"])
        .fails_with("unknown controller ");
    let memory = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .expect("a v1 memory cgroup");
    std::fs::create_dir(format!("/sys/fs/cgroup/memory{memory}/sub")).unwrap();
    let out = c.rt(&[
        "exec",
        "--cgroup",
        "memory:sub",
        &id,
        "cat",
        "/proc/self/cgroup",
    ]);
    let line = out
        .ok()
        .stdout
        .lines()
        .find(|l| l.contains(":memory:"))
        .unwrap_or_default()
        .to_string();
    assert!(line.ends_with("/sub"), "{}", out.stdout);
    c.finish();
}

/// `unified` resources on cgroup v1 are an "invalid configuration", in runc's words
/// (bats cgroups.bats); nothing is left behind.
#[test]
fn unified_resources_on_cgroup_v1_are_an_invalid_configuration() {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("cgroup v2 host: unified resources are valid here");
        return;
    }
    let c = Ctx::new("unifiedv1");
    let id = c.id("u");
    let mut b = c.bundle_for(&id, &["true"]);
    b.config["linux"]["resources"]["unified"] = json!({"memory.min": "131072"});
    c.run(&b, &id).fails_with("invalid configuration");
    c.finish();
}

/// A failing hook is reported in runc's words, "error running hook", which callers look
/// for (bats hooks.bats); nothing is left behind.
#[test]
fn failing_hooks_say_error_running_hook() {
    let c = Ctx::new("hookmsg");
    for kind in ["prestart", "createRuntime"] {
        let id = c.id(kind);
        let mut b = c.bundle_for(&id, &["true"]);
        b.config["hooks"] =
            json!({kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo no-way >&2; exit 3"]}]});
        c.run(&b, &id).fails_with("error running hook");
    }
    c.finish();
}

/// Hooks start where runc starts them, for hooks written with relative paths: prestart
/// and createRuntime in the bundle, createContainer in the rootfs (bats hooks.bats binds a
/// library onto `./lib/...` from a createContainer hook).
#[test]
fn hooks_start_in_the_bundle_and_the_rootfs() {
    let c = Ctx::new("hookcwd");
    let id = c.id("h");
    let mut b = c.bundle_for(&id, &["cat", "/hooked"]);
    let seen = c.dir.join("seen");
    std::fs::create_dir(&seen).unwrap();
    let pwd_to = |kind: &str| json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("pwd >{}/{kind}", seen.display())]}]);
    b.config["hooks"] = json!({
        "prestart": pwd_to("prestart"),
        "createRuntime": pwd_to("createRuntime"),
        "createContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("pwd >{}/createContainer", seen.display())]},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo from-the-hook >./hooked"]}
        ]
    });
    let out = c.run(&b, &id);
    out.ok();
    assert_eq!(out.stdout.trim(), "from-the-hook");
    let cwd = |kind: &str| {
        std::fs::read_to_string(seen.join(kind))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(cwd("prestart"), b.path());
    assert_eq!(cwd("createRuntime"), b.path());
    assert_eq!(cwd("createContainer"), b.rootfs().to_str().unwrap());
    c.finish();
}

/// A startContainer hook runs under the container's seccomp filter; one killed by it is
/// reported with the signal's meaning, as runc (bats seccomp.bats: "bad system call").
#[test]
fn a_hook_killed_by_seccomp_says_bad_system_call() {
    let c = Ctx::new("hooksys");
    let id = c.id("s");
    let mut b = c.bundle_for(&id, &["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]
    });
    b.config["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"]}
    ]});
    let out = c.run(&b, &id);
    out.fails_with("error running hook");
    out.fails_with("bad system call");
    c.finish();
}

/// SCMP_ACT_NOTIFY in runc's words (bats seccomp-notify.bats): a listenerPath with no
/// agent behind it "failed to connect with seccomp agent", and `write` cannot be handed to
/// an agent; nothing is left behind either way.
#[test]
fn seccomp_notify_refusals_in_runcs_words() {
    let c = Ctx::new("notifymsg");
    let notify = |names: serde_json::Value| {
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": c.dir.join("no-agent.sock"),
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]
        })
    };
    let id = c.id("noagent");
    let mut b = c.bundle_for(&id, &["true"]);
    b.config["linux"]["seccomp"] = notify(json!(["mkdir"]));
    c.run(&b, &id)
        .fails_with("failed to connect with seccomp agent");
    let id = c.id("write");
    let mut b = c.bundle_for(&id, &["true"]);
    b.config["linux"]["seccomp"] = notify(json!(["write"]));
    c.run(&b, &id)
        .fails_with("SCMP_ACT_NOTIFY cannot be used for the write syscall");
    c.finish();
}

/// An image whose /proc is a symlink is refused in runc's words (bats mask.bats), and no
/// container is left.
#[test]
fn a_symlinked_proc_must_be_an_ordinary_directory() {
    let c = Ctx::new("procsym");
    let id = c.id("p");
    let b = c.bundle_for(&id, &["true"]);
    let proc_dir = b.rootfs().join("proc");
    std::fs::remove_dir(&proc_dir).unwrap();
    std::os::unix::fs::symlink("/symlink", &proc_dir).unwrap();
    c.run(&b, &id)
        .fails_with("must be mounted on ordinary directory");
    c.rt(&["state", &id]).fails_with("does not exist");
    c.finish();
}

/// checkpoint's `--parent-path` is checked as runc checks it (bats checkpoint.bats): it
/// must be relative and name a directory below the image path.
#[test]
fn checkpoint_parent_path_must_be_relative_and_exist() {
    let c = Ctx::new("cpparent");
    let id = c.id("c");
    let b = c.bundle_for(&id, &["sleep", "100"]);
    c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    let image = c.dir.join("image");
    let image = image.to_str().unwrap();
    let abs = c.dir.join("parent");
    for parent in [abs.to_str().unwrap(), "./parent-dir"] {
        c.rt(&[
            "checkpoint",
            "--parent-path",
            parent,
            "--image-path",
            image,
            &id,
        ])
        .fails_with("--parent-path");
    }
    c.finish();
}

fn rt_plain(args: &[&str]) -> Out {
    run_with_timeout(
        std::process::Command::new(runtime()).args(args),
        std::time::Duration::from_secs(30),
    )
}

/// Lines as bats sees them (`$lines` leaves out empty ones).
fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.is_empty()).collect()
}

/// `-v`/`--version`, `-h`/`--help`, `COMMAND -h` and an unknown command in runc's forms
/// (bats version.bats, help.bats): what tools and people match against.
#[test]
fn version_and_help_in_runcs_forms() {
    for flag in ["-v", "--version"] {
        let out = rt_plain(&[flag]);
        let l = lines(&out.ok().stdout);
        let (name, rest) = l[0].split_once(" version ").expect("<name> version X.Y.Z");
        assert!(name.ends_with("runc"), "{}", l[0]);
        let v: Vec<&str> = rest.split(['.', '+', '-', ' ']).take(3).collect();
        assert!(v.iter().all(|n| n.parse::<u32>().is_ok()), "{}", l[0]);
        assert!(l[1].starts_with("commit:"), "{}", out.stdout);
        assert!(l[2].starts_with("spec: 1."), "{}", out.stdout);
    }
    for flag in ["-h", "--help"] {
        let out = rt_plain(&[flag]);
        let l = lines(&out.ok().stdout);
        assert_eq!(l[0], "NAME:");
        assert!(
            l[1].contains("runc - Open Container Initiative runtime"),
            "{}",
            l[1]
        );
    }
    for cmd in [
        "checkpoint",
        "create",
        "delete",
        "events",
        "exec",
        "kill",
        "list",
        "pause",
        "ps",
        "restore",
        "resume",
        "run",
        "spec",
        "start",
        "state",
        "update",
    ] {
        for flag in ["-h", "--help"] {
            let out = rt_plain(&[cmd, flag]);
            let l = lines(&out.ok().stdout);
            assert_eq!(l[0], "NAME:", "{cmd}");
            assert!(l[1].contains(&format!("runc {cmd}")), "{cmd}: {}", l[1]);
        }
    }
    let out = rt_plain(&["foo", "-h"]);
    out.fails_with("No help topic for 'foo'");
}

/// `--debug` writes debug records to the log (not to stderr when there is a log file),
/// in either format, with the steps of the container's init and of exec's process;
/// `--log FILE` exists after any command (bats debug.bats, exec.bats).
#[test]
fn debug_records_go_to_the_log() {
    let c = Ctx::new("debuglog");
    for (format, debug_mark) in [("text", "level=debug"), ("json", "\"level\":\"debug\"")] {
        let id = c.id(format);
        let b = c.bundle_for(&id, &["true"]);
        b.write();
        let log = c.dir.join(format!("{format}.log"));
        let l = log.to_str().unwrap();
        let out = c.rt(&[
            "--log",
            l,
            "--log-format",
            format,
            "--debug",
            "run",
            "--bundle",
            b.path(),
            &id,
        ]);
        out.ok();
        assert!(!out.stderr.contains("level=debug"), "{}", out.stderr);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains(debug_mark), "{format}: {text}");
        // The init's steps, by runc's names for them, which its users look for.
        for step in [
            "nsexec container setup",
            "child process in init()",
            "init: closing the pipe to signal completion",
        ] {
            assert!(text.contains(step), "{format}: no {step:?} in {text}");
        }
    }
    // exec's process traces its steps too: on stderr, or in the log when there is one.
    let id = c.id("exec");
    let b = c.bundle_for(&id, &["sleep", "100"]);
    c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    let steps = [
        "nsexec container setup",
        "child process in init()",
        "setns_init: about to exec",
    ];
    let out = c.rt(&["--debug", "exec", &id, "true"]);
    out.ok();
    assert!(out.stderr.contains("level=debug"), "{}", out.stderr);
    for step in steps {
        assert!(out.stderr.contains(step), "no {step:?} in {}", out.stderr);
    }
    let log = c.dir.join("exec.log");
    let out = c.rt(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "exec",
        &id,
        "true",
    ]);
    out.ok();
    assert!(!out.stderr.contains("level=debug"), "{}", out.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    for step in steps {
        assert!(text.contains(step), "no {step:?} in {text}");
    }
    // Without --debug, no debug record; the file is there even with nothing in it.
    let log = c.dir.join("quiet.log");
    c.rt(&["--log", log.to_str().unwrap(), "list"]).ok();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    c.finish();
}

/// Deliberate difference (README): `ro` on an `rbind` makes its submounts read-only too
/// (runc 1.1 changes only the top mount, leaving a "read-only" volume writable below).
#[test]
fn ro_on_an_rbind_reaches_its_submounts() {
    let c = Ctx::new("rbindro");
    let vol = c.dir.join("vol");
    let sub = vol.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64k"),
    )
    .unwrap();
    let out = c.probe(
        "r",
        &[
            "sh",
            "-c",
            "touch /vol/top 2>/dev/null && echo top-rw || echo top-ro; \
             touch /vol/sub/x 2>/dev/null && echo sub-rw || echo sub-ro",
        ],
        |v| {
            v["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "ro"]}),
            );
        },
    );
    nix::mount::umount2(&sub, nix::mount::MntFlags::MNT_DETACH).unwrap();
    let want = if is_runc() {
        ["top-ro", "sub-rw"]
    } else {
        ["top-ro", "sub-ro"]
    };
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
    c.finish();
}
