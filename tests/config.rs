//! What the container sees: namespaces, mounts, /dev, process settings.

mod common;
use common::*;
use serde_json::json;

fn set_ns(v: &mut serde_json::Value, types: &[&str]) {
    v["linux"]["namespaces"] = json!(types.iter().map(|t| json!({"type": t})).collect::<Vec<_>>());
}

#[test]
fn namespaces_new_and_inherited() {
    let c = Ctx::new("ns");
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = c.probe(
        "new",
        &[
            "sh",
            "-c",
            "echo $$; hostname; readlink /proc/self/ns/net; ls /sys/class/net",
        ],
        |_| {},
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    assert_eq!(lines[1], "testbox");
    assert_ne!(lines[2], host_net.to_str().unwrap());
    assert_eq!(lines[3..], ["lo"]);
    // In a new network namespace lo is up (runc and crun do the same), so loopback works.
    let out = c.probe("lo", &["cat", "/sys/class/net/lo/flags"], |_| {});
    let flags = u32::from_str_radix(out.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: flags {out}");
    // Not listed = inherited (a mount namespace is still needed for the rootfs).
    let out = c.probe(
        "inh",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
        ],
        |v| {
            set_ns(v, &["mount"]);
            v.as_object_mut().unwrap().remove("hostname");
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], host_net.to_str().unwrap());
    assert_eq!(
        lines[1],
        std::fs::read_link("/proc/self/ns/uts")
            .unwrap()
            .to_str()
            .unwrap()
    );
    // domainname and time namespaces need runc >= 1.2 (Debian 12 ships 1.1.5).
    let out = c.probe(
        "dom",
        &["sh", "-c", "cat /proc/sys/kernel/domainname"],
        |v| v["domainname"] = json!("example.org"),
    );
    assert_eq!(out.trim(), "example.org");
    c.finish();
}

#[test]
fn join_network_namespace_by_path() {
    let c = Ctx::new("join");
    let holder = c.id("holder");
    let b = c.bundle_for(&holder, &["sleep", "30"]);
    let pid = c.create(&b, &holder);
    let nspath = format!("/proc/{pid}/ns/net");
    let want = std::fs::read_link(&nspath).unwrap();
    let out = c.probe("joiner", &["readlink", "/proc/self/ns/net"], |v| {
        let mut ns: Vec<serde_json::Value> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != "network")
            .cloned()
            .collect();
        ns.push(json!({"type": "network", "path": nspath}));
        v["linux"]["namespaces"] = json!(ns);
    });
    assert_eq!(out.trim(), want.to_str().unwrap());
    // A path that is not a namespace, and one of the wrong type.
    for (path, phrase) in [("/etc/hostname", ""), (&*format!("/proc/{pid}/ns/ipc"), "")] {
        let id = c.id(&format!("bad{}", path.len()));
        let mut b = c.bundle_for(&id, &["true"]);
        let mut ns: Vec<serde_json::Value> = b.config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != "network")
            .cloned()
            .collect();
        ns.push(json!({"type": "network", "path": path}));
        b.config["linux"]["namespaces"] = json!(ns);
        let out = c.run(&b, &id);
        out.fails_with(phrase);
        assert!(
            out.stderr.contains("network")
                || out.stderr.contains("net")
                || out.stderr.contains("namespace"),
            "{}",
            out.stderr
        );
    }
    c.finish();
}

#[test]
fn mounts_and_options() {
    let c = Ctx::new("mnt");
    let host = c.dir.join("hostdir");
    std::fs::create_dir_all(host.join("sub")).unwrap();
    std::fs::write(host.join("file"), "from host\n").unwrap();
    let script = "cat /data/file; touch /data/new && echo rw-ok; touch /ro/x 2>/dev/null || echo ro-ok; \
        grep ' /t ' /proc/self/mountinfo; stat -c %a /t; touch / 2>/dev/null || echo root-ro; \
        grep -c cgroup /proc/self/mountinfo; ls /sys/fs/cgroup | head -3; cat /proc/mounts | grep ' /noexec '";
    let out = c.probe("m", &["sh", "-c", script], |v| {
        let mounts = v["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data", "type": "bind", "source": host, "options": ["rbind", "rw"]}));
        mounts.push(json!({"destination": "/ro", "type": "bind", "source": host, "options": ["bind", "ro"]}));
        mounts.push(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=711", "size=1m"]}));
        mounts.push(json!({"destination": "/noexec", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]}));
    });
    assert!(out.contains("from host"), "{out}");
    assert!(
        out.contains("rw-ok") && out.contains("ro-ok") && out.contains("root-ro"),
        "{out}"
    );
    assert!(host.join("new").exists());
    assert!(
        out.contains("nosuid,nodev") && out.contains("size=1024k"),
        "{out}"
    );
    assert!(out.contains("\n711\n"), "{out}");
    assert!(
        out.lines().any(|l| l.parse::<u32>().is_ok_and(|n| n >= 2)),
        "cgroup mounts: {out}"
    );
    assert!(out.contains("noexec"), "{out}");
    c.finish();
}

#[test]
fn masked_and_readonly_paths() {
    let c = Ctx::new("mask");
    // Several masked directories (they share one empty tmpfs): each empty and read-only.
    let out = c.probe("m", &["sh", "-c", "cat /proc/kcore | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro; \
        for d in /sys/kernel /sys/class; do ls $d | wc -l; mkdir $d/x 2>/dev/null || echo $d-ro; done"], |v| {
        v["linux"]["maskedPaths"].as_array_mut().unwrap().extend([json!("/sys/kernel"), json!("/sys/class")]);
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "{out}");
    assert_eq!(lines[1].trim(), "0", "{out}");
    assert_eq!(lines[2], "sys-ro", "{out}");
    assert_eq!(
        lines[3..],
        ["0", "/sys/kernel-ro", "0", "/sys/class-ro"],
        "{out}"
    );
    c.finish();
}

#[test]
fn tmpcopyup_and_rootfs_propagation() {
    let c = Ctx::new("copyup");
    let id = c.id("t");
    let mut b = c.bundle_for(
        &id,
        &[
            "sh",
            "-c",
            "cat /etc/passwd | head -1; awk '$5 == \"/\"' /proc/self/mountinfo",
        ],
    );
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    b.config["linux"]["rootfsPropagation"] = json!("private");
    let out = c.run(&b, &id);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("root:x:0:0"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("shared:") && !out.stdout.contains("master:"),
        "{}",
        out.stdout
    );
    c.finish();
}

#[test]
fn dev_defaults_symlinks_and_devices() {
    let c = Ctx::new("dev");
    let script = "for d in null zero full random urandom tty; do stat -c '%n %t:%T %a' /dev/$d; done; \
        for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; stat -c '%n %t:%T %a %u %g' /dev/mydev";
    let out = c.probe("d", &["sh", "-c", script], |v| {
        v["linux"]["devices"] = json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 7, "gid": 8}]);
    });
    for want in [
        "/dev/null 1:3 666",
        "/dev/zero 1:5 666",
        "/dev/full 1:7 666",
        "/dev/random 1:8 666",
        "/dev/urandom 1:9 666",
        "/dev/tty 5:0 666",
    ] {
        assert!(out.contains(want), "{want} missing in {out}");
    }
    for want in [
        "/proc/self/fd\n",
        "/proc/self/fd/0\n",
        "/proc/self/fd/1\n",
        "/proc/self/fd/2\n",
        "pts/ptmx\n",
        "/dev/mydev 1:5 640 7 8",
    ] {
        assert!(out.contains(want), "{want} missing in {out}");
    }
    c.finish();
}

#[test]
fn process_settings() {
    let c = Ctx::new("proc");
    let script = "id; pwd; umask; echo $FOO; ulimit -n; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status; \
        grep CapEff /proc/self/status; sysctl -n kernel.shmmax; sysctl -n net.ipv4.ip_forward";
    let out = c.probe("p", &["sh", "-c", script], |v| {
        v["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [1002, 1003], "umask": 63});
        v["process"]["cwd"] = json!("/work/dir");
        v["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]);
        v["process"]["oomScoreAdj"] = json!(123);
        v["linux"]["sysctl"] = json!({"kernel.shmmax": "123456", "net.ipv4.ip_forward": "1"});
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "uid=1000 gid=1001 groups=1002,1003");
    assert_eq!(lines[1], "/work/dir");
    assert_eq!(lines[2], "0077");
    assert_eq!(lines[3], "bar");
    assert_eq!(lines[4], "256");
    assert_eq!(lines[5], "123");
    assert_eq!(lines[6], "NoNewPrivs:\t1");
    assert_eq!(
        lines[7], "CapEff:\t0000000000000000",
        "a non-root user keeps no effective caps"
    );
    assert_eq!(lines[8], "123456");
    assert_eq!(lines[9], "1");
    // Root keeps exactly the configured capabilities (kill, net_bind_service, audit_write).
    let out = c.probe(
        "caps",
        &["grep", "-E", "Cap(Eff|Bnd|Inh|Amb)", "/proc/self/status"],
        |_| {},
    );
    assert!(out.contains("CapEff:\t0000000020000420"), "{out}");
    assert!(out.contains("CapBnd:\t0000000020000420"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    c.finish();
}

#[test]
fn fds_only_stdio_preserved_and_listen_fds() {
    let c = Ctx::new("fds");
    let id = c.id("f");
    let b = c.bundle_for(
        &id,
        &[
            "sh",
            "-c",
            "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; echo $LISTEN_FDS",
        ],
    );
    b.write();
    // fd 3 and 4 are passed on purpose (preserve-fds 1 + LISTEN_FDS 1), fd 5 leaked.
    let script = format!(
        "exec 3</etc/hostname 4</etc/hostname 5</etc/hostname; LISTEN_FDS=1 exec {} --root {} run --preserve-fds 1 --bundle {} {}",
        runtime().display(), c.root.display(), b.path(), id
    );
    let out = run_with_timeout(
        std::process::Command::new("sh").args(["-c", &script]),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    // ls itself opens one fd for the directory it lists.
    let fds: Vec<u32> = lines[0]
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert!(fds.starts_with(&[0, 1, 2, 3, 4]), "{fds:?}");
    assert!(fds.len() <= 6, "a leaked fd reached the container: {fds:?}");
    if !is_runc() {
        assert_eq!(lines[1], "1");
    }
    c.finish();
}

#[test]
fn terminal_through_console_socket() {
    let c = Ctx::new("tty");
    let id = c.id("t");
    let mut b = c.bundle_for(&id, &["sh", "-c", "stty size; tty; echo done"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    b.write();
    let (out, accept) = c.create_with_console(&b, &id, "done");
    out.ok();
    c.track_pid(c.state(&id)["pid"].as_i64().unwrap() as i32);
    c.rt(&["start", &id]).ok();
    let out = accept.join().unwrap();
    assert!(out.contains("30 100"), "{out}");
    assert!(
        out.contains("/dev/pts/0") || out.contains("/dev/console"),
        "{out}"
    );
    c.wait_status(&id, "stopped");
    c.finish();
}

#[test]
fn no_pivot_and_time_namespace() {
    let c = Ctx::new("nopivot");
    let id = c.id("np");
    let b = c.bundle_for(&id, &["sh", "-c", "ls / | head -1"]);
    b.write();
    let out = c.rt(&["run", "--no-pivot", "--bundle", b.path(), &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "bin");
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = c.probe("time", &["cat", "/proc/uptime"], |v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        v["linux"]["timeOffsets"] =
            json!({"boottime": {"secs": 86400}, "monotonic": {"secs": 3600}});
    });
    let up: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(up > host_up + 86000.0, "uptime {up} vs host {host_up}");
    // The monotonic offset, seen by clock_gettime(CLOCK_MONOTONIC) in the container.
    let host_mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap()
        .tv_sec();
    let v = c.probe_json("mono", &[], |v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        v["linux"]["timeOffsets"] =
            json!({"boottime": {"secs": 86400}, "monotonic": {"secs": 3600}});
    });
    let mono = v["monotonic"].as_i64().unwrap();
    assert!(
        (host_mono + 3590..host_mono + 3700).contains(&mono),
        "monotonic {mono} vs host {host_mono}"
    );
    c.finish();
}

#[test]
fn testinit_sees_the_configured_process() {
    let c = Ctx::new("probe");
    let v = c.probe_json("p", &[], |v| {
        v["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [4], "umask": 18});
        v["process"]["cwd"] = json!("/tmp");
        v["process"]["env"] = json!(["PATH=/bin", "A=1"]);
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]);
        let caps = json!(["CAP_NET_RAW", "CAP_KILL"]);
        v["process"]["capabilities"] = json!({"bounding": caps, "effective": caps,
            "permitted": caps, "inheritable": caps, "ambient": ["CAP_NET_RAW"]});
        v["domainname"] = json!("probe.test");
    });
    assert_eq!(v["pid"], 1);
    assert_eq!(v["hostname"], "testbox");
    if !is_runc() {
        assert_eq!(v["domainname"], "probe.test");
    }
    assert_eq!(v["uid"], json!([0, 0, 0, 0]));
    assert_eq!(v["groups"], json!([4]));
    assert_eq!(v["umask"], "0022");
    assert_eq!(v["cwd"], "/tmp");
    // HOME is added from /etc/passwd when the config has none, as runc.
    assert_eq!(v["env"], json!(["PATH=/bin", "A=1", "HOME=/root"]));
    assert_eq!(v["rlimits"]["RLIMIT_NOFILE"], json!([100, 200]));
    // CAP_KILL (5) and CAP_NET_RAW (13) = 0x2020.
    for set in ["effective", "permitted", "bounding", "inheritable"] {
        assert_eq!(v["caps"][set], "0000000000002020", "{set}");
    }
    assert_eq!(v["caps"]["ambient"], "0000000000002000");
    assert_eq!(v["no_new_privs"], "1");
    assert_eq!(v["seccomp"], "0");
    assert_eq!(
        v["fds"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["0", "1", "2"],
        "{}",
        v["fds"]
    );
    let mounts: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for dest in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
    ] {
        assert!(
            mounts.iter().any(|m| m.split(' ').nth(4) == Some(dest)),
            "{dest} not mounted: {mounts:?}"
        );
    }
    c.finish();
}

/// Joining a namespace bind-mounted outside /proc (as `ip netns` and podman's
/// /run/netns/<name> are): its type comes from the namespace, not the path's name.
#[test]
fn join_a_bind_mounted_network_namespace() {
    let c = Ctx::new("netnsfile");
    let file = c.dir.join("netns-file");
    std::fs::write(&file, "").unwrap();
    let out = output_of(
        std::process::Command::new("unshare")
            .arg(format!("--net={}", file.display()))
            .arg("true"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
    let f = file.to_str().unwrap().to_string();
    let seen = c.probe("join", &["readlink", "/proc/self/ns/net"], |v| {
        v["linux"]["namespaces"] =
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "network", "path": f}]);
    });
    nix::mount::umount2(&file, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(seen.trim(), format!("net:[{ino}]"));
    c.finish();
}

/// Mount flags the kernel enforces, per-mount and rootfs propagation, and the namespaces
/// the other tests leave out (cgroup, ipc, none listed at all).
#[test]
fn mount_flags_propagation_and_more_namespaces() {
    let c = Ctx::new("mntflags");
    // noexec: a copy of busybox on the noexec tmpfs cannot run; the same copy on an
    // exec tmpfs can. strictatime: no relatime/noatime in the mount's options.
    let script = "cp /bin/busybox /noexec/true; cp /bin/busybox /exec/true; \
        /noexec/true 2>/dev/null && echo noexec-ran || echo noexec-refused; \
        /exec/true && echo exec-ran; \
        awk '$5 == \"/sa\" {print \"sa \" $6}' /proc/self/mountinfo; \
        awk '$5 == \"/shared\" {print \"shared-mnt \" $7}' /proc/self/mountinfo; \
        awk '$5 == \"/unbind\" {print \"unbind-mnt \" $7}' /proc/self/mountinfo; \
        touch /sys/fs/cgroup/x 2>/dev/null || echo cgroup-ro";
    let host = c.dir.join("prop");
    std::fs::create_dir_all(&host).unwrap();
    let out = c.probe("flags", &["sh", "-c", script], |v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/noexec", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]}));
        m.push(json!({"destination": "/exec", "type": "tmpfs", "source": "tmpfs", "options": ["exec"]}));
        m.push(json!({"destination": "/sa", "type": "tmpfs", "source": "tmpfs", "options": ["strictatime"]}));
        m.push(json!({"destination": "/shared", "type": "bind", "source": host, "options": ["rbind", "rshared"]}));
        m.push(json!({"destination": "/unbind", "type": "bind", "source": host, "options": ["rbind", "runbindable"]}));
    });
    assert!(
        out.contains("noexec-refused") && out.contains("exec-ran"),
        "{out}"
    );
    let sa = out
        .lines()
        .find(|l| l.starts_with("sa "))
        .expect("/sa mounted");
    assert!(!sa.contains("relatime") && !sa.contains("noatime"), "{sa}");
    let shared = out
        .lines()
        .find(|l| l.starts_with("shared-mnt "))
        .expect("/shared");
    assert!(shared.contains("shared:"), "{shared}");
    let unbind = out
        .lines()
        .find(|l| l.starts_with("unbind-mnt "))
        .expect("/unbind");
    assert!(unbind.contains("unbindable"), "{unbind}");
    assert!(out.contains("cgroup-ro"), "{out}");

    // rootfsPropagation applies to the container's / (mountinfo optional fields).
    for (prop, want) in [("unbindable", "unbindable"), ("shared", "shared:")] {
        let out = c.probe(
            &format!("rootprop-{prop}"),
            &[
                "sh",
                "-c",
                "awk '$5 == \"/\" {print $7}' /proc/self/mountinfo",
            ],
            |v| v["linux"]["rootfsPropagation"] = json!(prop),
        );
        assert!(out.contains(want), "rootfsPropagation {prop}: {out}");
    }

    // A new cgroup namespace roots the container at its own cgroup; ipc differs from ours.
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let host_cg = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    let out = c.probe(
        "cgns",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/ipc; readlink /proc/self/ns/cgroup; cat /proc/self/cgroup",
        ],
        |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}))
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], host_ipc.to_str().unwrap());
    assert_ne!(lines[1], host_cg.to_str().unwrap());
    for l in &lines[2..] {
        assert!(l.ends_with(":/"), "not rooted at its cgroup: {out}");
    }

    // No namespaces listed at all: every one is the host's. Without a mount namespace
    // there is no /proc to read them from (mounts would land on the host: none are asked
    // for), so the shell's pid and the hostname tell.
    let out = c.probe("nons", &["sh", "-c", "echo $$; hostname"], |v| {
        v["linux"]["namespaces"] = json!([]);
        v.as_object_mut().unwrap().remove("hostname");
        v["mounts"] = json!([]);
        v["linux"]["maskedPaths"] = json!([]);
        v["linux"]["readonlyPaths"] = json!([]);
    });
    let lines: Vec<&str> = out.lines().collect();
    let pid: i32 = lines[0].parse().unwrap();
    assert!(pid > 1, "a new pid namespace: {out}");
    assert_eq!(
        lines[1],
        nix::unistd::gethostname().unwrap().to_str().unwrap(),
        "{out}"
    );
    c.finish();
}
