//! The attack battery: what a hostile image or caller tries, each case followed by the
//! leak audit. Every case would fail on a runtime without the defence it names.

mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::time::Duration;

/// The runtime with `root`, from any thread (Ctx is single-threaded).
fn rt_at(root: &Path, args: &[&str]) -> Out {
    run_with_timeout(
        std::process::Command::new(runtime())
            .arg("--root")
            .arg(root)
            .args(args),
        Duration::from_secs(60),
    )
}

/// CVE-2019-16884 class: an image whose /proc or /sys is a symlink is refused.
#[test]
fn symlinked_proc_and_sys_are_refused() {
    let c = Ctx::new("symproc");
    for (dir, target) in [
        ("proc", "/etc"),
        ("proc", "tmp"),
        ("sys", "/tmp"),
        ("sys", "../../tmp"),
    ] {
        let id = c.id(&format!("{dir}{}", target.len()));
        let b = c.bundle_for(&id, &["true"]);
        let p = b.rootfs().join(dir);
        std::fs::remove_dir(&p).unwrap();
        symlink(target, &p).unwrap();
        b.write();
        let out = c.rt(&["create", "--bundle", b.path(), &id]);
        out.fails_with(&format!("/{dir}"));
        assert!(out.stderr.contains("symlink"), "{}", out.stderr);
        c.rt(&["state", &id]).fails_with("does not exist");
        c.audit();
    }
    c.finish();
}

/// CVE-2021-30465 / CVE-2024-45310 class: mount destinations through `..` and through
/// symlinks (absolute and relative) land inside the rootfs, never on the host.
#[test]
fn mount_destinations_never_escape_the_rootfs() {
    let c = Ctx::new("escape");
    let vol = c.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("marker"), "inside").unwrap();
    // Unique names under the host's /tmp: a vulnerable runtime would create them there.
    let tag = format!("berth-escape-{}", std::process::id());
    let id = c.id("e");
    let mut b = c.bundle_for(
        &id,
        &[
            "sh",
            "-c",
            &format!("cat /tmp/{tag}-dd/marker /tmp/{tag}-abs/marker /tmp/{tag}-rel/marker"),
        ],
    );
    // /etc/abs -> /tmp (absolute: resolved in the rootfs), /etc/rel -> ../tmp.
    symlink("/tmp", b.rootfs().join("etc/abs")).unwrap();
    symlink("../tmp", b.rootfs().join("etc/rel")).unwrap();
    let v = vol.to_str().unwrap();
    for dest in [
        format!("/../../../../../../tmp/{tag}-dd"),
        format!("/etc/abs/{tag}-abs"),
        format!("/etc/rel/{tag}-rel"),
    ] {
        b.config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": dest, "type": "bind", "source": v, "options": ["rbind", "ro"]}),
        );
    }
    b.config["root"]["readonly"] = json!(false);
    let out = c.run(&b, &id);
    out.ok();
    assert_eq!(out.stdout, "insideinsideinside");
    for suffix in ["dd", "abs", "rel"] {
        let host = Path::new("/tmp").join(format!("{tag}-{suffix}"));
        assert!(!host.exists(), "a mount escaped to {}", host.display());
        assert!(b.rootfs().join(format!("tmp/{tag}-{suffix}")).is_dir());
    }
    // Through a dangling absolute symlink: refused, nothing made on either side.
    let id = c.id("dangling");
    let mut b = c.bundle_for(&id, &["true"]);
    let host_target = c.dir.join("host-target");
    symlink(&host_target, b.rootfs().join("etc/dangling")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/etc/dangling/sub", "type": "bind", "source": v, "options": ["rbind"]}),
    );
    b.write();
    c.rt(&["create", "--bundle", b.path(), &id])
        .fails_with("/etc/dangling/sub");
    assert!(!host_target.exists());
    c.rt(&["state", &id]).fails_with("does not exist");
    c.finish();
}

/// CVE-2024-21626 class: fds the caller leaks never reach the container.
#[test]
fn fds_leaked_by_the_caller_are_closed() {
    let c = Ctx::new("leakfd");
    let id = c.id("l");
    let b = c.bundle_for(&id, &["/bin/testinit"]);
    b.write();
    let script = format!(
        "exec 5</etc/hostname 7<{}; exec {} --root {} run --bundle {} {id}",
        b.dir.display(),
        runtime().display(),
        c.root.display(),
        b.path()
    );
    let out = run_with_timeout(
        std::process::Command::new("sh").args(["-c", &script]),
        Duration::from_secs(30),
    );
    out.ok();
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let mut fds: Vec<&String> = v["fds"].as_object().unwrap().keys().collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "{}", v["fds"]);
    c.finish();
}

/// Ten creates of one id at once: exactly one wins, the others fail cleanly.
#[test]
fn parallel_creates_of_one_id() {
    let c = Ctx::new("race");
    let id = c.id("same");
    let b = c.bundle_for(&id, &["sleep", "1000"]);
    b.write();
    let (root, bundle) = (c.root.clone(), b.path().to_string());
    let outs: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| s.spawn(|| rt_at(&root, &["create", "--bundle", &bundle, &id])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners = outs.iter().filter(|o| o.code == 0).count();
    assert_eq!(winners, 1, "{outs:#?}");
    for o in outs.iter().filter(|o| o.code != 0) {
        assert!(o.stderr.contains("already exists"), "{}", o.stderr);
    }
    let pid = c.state(&id)["pid"].as_i64().unwrap() as i32;
    c.track_pid(pid);
    // Exactly one init in the container's cgroup.
    let procs = c.rt(&["ps", "--format", "json", &id]).ok().json();
    assert_eq!(procs, json!([pid]));
    c.finish();
}

/// Host settings a container must not reach; each write puts back the current value,
/// so even a runtime that let it through would change nothing.
fn harmless_writes() -> String {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .find(|w| w.starts_with('['))
                .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        });
    let rl = std::fs::read_to_string("/proc/sys/kernel/printk_ratelimit").unwrap();
    let mut s = format!(
        "if echo {} > /proc/sys/kernel/printk_ratelimit; then echo WROTE-proc-sys; fi; ",
        rl.trim()
    );
    if let Some(t) = thp {
        s += &format!(
            "if echo {t} > /sys/kernel/mm/transparent_hugepage/enabled; then echo WROTE-sys; fi; "
        );
    }
    s
}

/// Escapes from inside under the default config: mount, unshare, mknod, a block device
/// read, writes to /proc/sys and /sys all fail; under the Docker-like default seccomp
/// profile, user namespaces (`unshare -U`, `unshare -Ur`) too.
#[test]
fn escapes_from_inside_fail() {
    let c = Ctx::new("inside");
    let disk = std::fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with("loop") && !n.starts_with("zram") && !n.starts_with("ram"))
        .map(|n| std::fs::metadata(format!("/dev/{n}")).unwrap().rdev());
    let (maj, min) = disk
        .map(|r| (nix::sys::stat::major(r), nix::sys::stat::minor(r)))
        .unwrap_or((7, 0));
    let script = format!(
        "mkdir -p /tmp/m; \
         if mount -t tmpfs none /tmp/m 2>/dev/null; then echo MOUNTED; fi; \
         if unshare -m true 2>/dev/null; then echo UNSHARED; fi; \
         if unshare -U true 2>/dev/null; then echo USERNS; fi; \
         if unshare -Ur true 2>/dev/null; then echo USERNS-ROOT; fi; \
         if mknod /tmp/blk b {maj} {min} 2>/dev/null; then echo MKNOD; fi; \
         if head -c 1 /tmp/blk >/dev/null 2>&1; then echo READ-BLOCK; fi; \
         {} \
         if cat /proc/kcore | head -c 1 | grep -q .; then echo KCORE; fi; \
         echo done",
        harmless_writes()
    );
    let profile: serde_json::Value =
        serde_json::from_str(include_str!("../src/seccomp/testdata/default.json")).unwrap();
    let run = |suffix: &str, caps: &[&str], seccomp: bool| {
        c.probe(suffix, &["sh", "-c", &script], |v| {
            v["root"]["readonly"] = json!(false);
            if seccomp {
                v["linux"]["seccomp"] = profile.clone();
            }
            if !caps.is_empty() {
                for set in ["bounding", "effective", "permitted"] {
                    let list = v["process"]["capabilities"][set].as_array_mut().unwrap();
                    list.extend(caps.iter().map(|c| json!(c)));
                }
            }
        })
    };
    // Without seccomp a plain `unshare -U` may work, as on any Linux host (runc's too): a
    // user namespace of its own gives no power over the host's resources. The rest fails.
    let no_userns = |out: &str| {
        out.lines()
            .filter(|l| *l != "USERNS")
            .collect::<Vec<_>>()
            .join("\n")
    };
    let out = run("default", &[], false);
    assert_eq!(
        no_userns(&out),
        "done",
        "an escape worked under the default config"
    );
    // Under the Docker-like default profile (the test fixture): everything fails, user
    // namespaces included (unshare is not allowed, clone only without namespace flags).
    let out = run("seccomp", &[], true);
    assert_eq!(
        out.trim(),
        "done",
        "an escape worked under the default profile"
    );
    // With CAP_MKNOD the node can be made, but the device cgroup still refuses reading.
    let out = run("mknod", &["CAP_MKNOD"], false);
    assert_eq!(no_userns(&out), "MKNOD\ndone", "{out}");
    c.finish();
}

/// Many immediate exits: never a hang, never a leak.
#[test]
fn a_thousand_immediate_exits() {
    let c = Ctx::new("thousand");
    let b = c.bundle("shared", &["true"]);
    b.write();
    let (root, bundle, name) = (c.root.clone(), b.path().to_string(), c.name.clone());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (root, bundle, name) = (&root, &bundle, &name);
            s.spawn(move || {
                for i in 0..250 {
                    let id = format!("{name}-t{t}-{i}");
                    let out = rt_at(root, &["run", "--bundle", bundle, &id]);
                    assert_eq!(out.code, 0, "{id}: {}", out.stderr);
                }
            });
        }
    });
    c.finish();
}

/// CVE-2019-5736: a process inside the container that opens /proc/<pid>/exe of a runtime
/// process there, and reopens it for writing once that process is gone, must not reach
/// the runtime binary on the host. Runs a copy of the runtime so that a vulnerable one
/// overwrites the copy, never the build.
#[test]
fn runtime_binary_cannot_be_overwritten_through_proc_exe() {
    use std::os::fd::AsRawFd;
    let c = Ctx::new("exe");
    // Under the runtime's own name: berth speaks runc's language only as *-runc.
    std::fs::create_dir_all(c.dir.join("copy")).unwrap();
    let copy = c.dir.join("copy").join(runtime().file_name().unwrap());
    std::fs::copy(runtime(), &copy).unwrap();
    let original = std::fs::read(&copy).unwrap();
    let rtc = |args: &[&str]| {
        run_with_timeout(
            std::process::Command::new(&copy)
                .arg("--root")
                .arg(&c.root)
                .args(args),
            Duration::from_secs(60),
        )
    };
    // What the attacker does with a handle once the runtime process has gone.
    let try_overwrite = |exe: &std::fs::File| {
        let path = format!("/proc/self/fd/{}", exe.as_raw_fd());
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(mut f) => {
                use std::io::Write;
                let _ = f.write_all(b"#!/bin/sh\necho pwned\n");
                panic!("the runtime binary was opened for writing through /proc/<pid>/exe");
            }
            Err(e) => e,
        }
    };

    // The init of a created container: what a startContainer hook would see as pid 1.
    let id = c.id("c");
    let b = c.bundle_for(&id, &["sleep", "1000"]);
    b.write();
    let out = rtc(&["create", "--bundle", b.path(), &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pid = c.state(&id)["pid"].as_i64().unwrap() as i32;
    c.track_pid(pid);
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    rtc(&["start", &id]).ok();
    // `start` returns once the init is released, not once it has executed the command
    // (runc's too): until then the binary is still mapped and a write open says ETXTBSY
    // whatever the defence.
    let comm = format!("/proc/{pid}/comm");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
        assert!(
            std::time::Instant::now() < deadline,
            "the init never ran sleep"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let e = try_overwrite(&exe);
    assert_ne!(e.raw_os_error(), Some(libc::ETXTBSY), "{e}: still mapped");
    drop(exe);

    // A foreground exec: berth's exec child, visible in the container, is its fork.
    if !is_runc() {
        let mut child = std::process::Command::new(&copy)
            .arg("--root")
            .arg(&c.root)
            .args(["exec", &id, "sleep", "1"])
            .spawn()
            .unwrap();
        let procs = format!("/sys/fs/cgroup/pids{}/cgroup.procs", c.cgroup_path(&id));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&procs)
            .unwrap_or_default()
            .lines()
            .count()
            < 2
        {
            assert!(std::time::Instant::now() < deadline, "exec never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        let exe = std::fs::File::open(format!("/proc/{}/exe", child.id())).unwrap();
        assert!(child.wait().unwrap().success());
        let e = try_overwrite(&exe);
        assert_ne!(e.raw_os_error(), Some(libc::ETXTBSY), "{e}: still mapped");
    }
    assert!(
        std::fs::read(&copy).unwrap() == original,
        "the runtime copy changed"
    );
    c.finish();
}

/// CVE-2025-52565 and CVE-2025-31133 class: an image whose /dev/console and /dev/null are
/// symlinks (here with no /dev tmpfs, so the image's /dev is used) gets real nodes; the
/// pty and the null device are never mounted over whatever the symlinks named.
#[test]
fn symlinked_dev_console_and_null_are_replaced_not_followed() {
    let c = Ctx::new("devswap");
    let check = "stat -c '%F %t' /dev/console /dev/null; \
                 stat -c '%F' /etc/target-console /etc/target-null; cat /etc/target-console; echo done";
    for userns in [false, true] {
        let id = c.id(if userns { "u" } else { "r" });
        let mut b = c.bundle_for(&id, &["sh", "-c", check]);
        b.config["process"]["terminal"] = json!(true);
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev");
        b.config["root"]["readonly"] = json!(false);
        if userns {
            // Devices are bind-mounted from the host inside a user namespace.
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            let m = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
            b.config["linux"]["uidMappings"] = m.clone();
            b.config["linux"]["gidMappings"] = m;
        }
        b.write();
        let dev = b.rootfs().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(b.rootfs().join("etc/target-console"), "image file\n").unwrap();
        std::fs::write(b.rootfs().join("etc/target-null"), "image file\n").unwrap();
        symlink("/etc/target-console", dev.join("console")).unwrap();
        symlink("../etc/target-null", dev.join("null")).unwrap();
        let (out, accept) = c.create_with_console(&b, &id, "done");
        assert_eq!(out.code, 0, "{}", out.stderr);
        c.track_pid(c.state(&id)["pid"].as_i64().unwrap() as i32);
        c.rt(&["start", &id]).ok();
        let seen = accept.join().unwrap();
        let lines: Vec<&str> = seen.lines().map(|l| l.trim()).collect();
        // pty major 136, null 1.
        assert!(lines.contains(&"character special file 88"), "{seen}");
        assert!(lines.contains(&"character special file 1"), "{seen}");
        assert_eq!(
            lines.iter().filter(|l| **l == "regular file").count(),
            2,
            "a symlink target was mounted over: {seen}"
        );
        assert!(lines.contains(&"image file"), "{seen}");
        c.wait_status(&id, "stopped");
        assert_eq!(
            std::fs::read_to_string(b.rootfs().join("etc/target-console")).unwrap(),
            "image file\n"
        );
        c.rt(&["delete", &id]).ok();
    }
    c.finish();
}

/// CVE-2025-52881 class: a procfs file mounted over the sysctl berth writes (here the
/// host's kernel/hostname over net/ipv4/ip_forward) must not receive the value. The mount
/// itself is now refused (inside /proc, not allow-listed, as runc's checkProcMount); the
/// sysctl write's own check (its path crossing a mount) stays behind it as a second wall.
#[test]
fn sysctl_write_through_an_overmounted_procfs_file_is_refused() {
    let c = Ctx::new("sysctlredir");
    let id = c.id("s");
    let mut b = c.bundle_for(&id, &["hostname"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/proc/sys/net/ipv4/ip_forward",
        "type": "bind",
        "source": "/proc/sys/kernel/hostname",
        "options": ["bind"]
    }));
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "pwned"});
    b.write();
    let out = c.rt(&["run", "--bundle", b.path(), &id]);
    assert!(
        !out.stdout.contains("pwned"),
        "the write was redirected: {}",
        out.stdout
    );
    assert_ne!(out.code, 0, "{}", out.stdout);
    if !is_runc() {
        assert!(
            out.stderr.contains("(/proc/sys/net/ipv4/ip_forward)")
                && out.stderr.contains("inside /proc"),
            "{}",
            out.stderr
        );
    }
    c.audit();
    c.finish();
}

/// CVE-2024-21626 itself: a cwd of /proc/self/fd/N, where N is a directory fd the caller
/// (or berth) holds on the host, must never leave the process working outside the rootfs.
#[test]
fn cwd_through_a_leaked_fd_never_lands_on_the_host() {
    let c = Ctx::new("leakcwd");
    let host = c.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("host-marker"), "").unwrap();
    for n in ["7", "3", "4", "5"] {
        let id = c.id(&format!("c{n}"));
        let mut b = c.bundle_for(&id, &["sh", "-c", "ls -a"]);
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.write();
        // fd 7: a host directory the caller leaks; 3-5: whatever berth itself holds.
        let script = format!(
            "exec 7<{}; exec {} --root {} run --bundle {} {id}",
            host.display(),
            runtime().display(),
            c.root.display(),
            b.path()
        );
        let out = run_with_timeout(
            std::process::Command::new("sh").args(["-c", &script]),
            Duration::from_secs(30),
        );
        // Refused, or a cwd inside the container: never a host directory.
        assert!(
            out.code != 0 || !out.stdout.contains("host-marker"),
            "fd {n}: the container's cwd is on the host: {}",
            out.stdout
        );
        if !is_runc() && n == "7" {
            assert!(out.stderr.contains("process.cwd"), "{}", out.stderr);
        }
        c.audit();
    }
    c.finish();
}

/// An image whose /dev is a symlink out of the rootfs is refused (the symlink dangles once
/// resolved inside the rootfs) with nothing made on the host, and a masked path that is a
/// symlink climbing out masks the file it names inside the rootfs.
#[test]
fn symlinked_dev_and_masked_path_stay_in_the_rootfs() {
    let c = Ctx::new("symdev");
    let outside = c.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "host file\n").unwrap();

    let id = c.id("d");
    let b = c.bundle_for(&id, &["true"]);
    b.write();
    std::fs::remove_dir_all(b.rootfs().join("dev")).ok();
    symlink(&outside, b.rootfs().join("dev")).unwrap();
    let out = c.rt(&["run", "--bundle", b.path(), &id]);
    // runc 1.1.5 runs it, and fails the check below: it writes its /dev symlinks (fd,
    // stdin, stdout, stderr, ptmx) into the host directory this /dev points at.
    if !is_runc() {
        assert_ne!(out.code, 0, "a /dev symlinked out of the rootfs was used");
        assert!(out.stderr.contains("(/dev)"), "{}", out.stderr);
    }
    let names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["secret"], "something was made on the host");
    c.audit();

    let id = c.id("m");
    let mut b = c.bundle_for(&id, &["sh", "-c", "cat /etc/hidden; echo end"]);
    b.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/hidden"));
    b.write();
    std::fs::write(b.rootfs().join("etc/image-file"), "image file\n").unwrap();
    symlink(
        "../../../../../../../etc/image-file",
        b.rootfs().join("etc/hidden"),
    )
    .unwrap();
    let out = c.rt(&["run", "--bundle", b.path(), &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "end\n", "the masked path still reads");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("etc/image-file")).unwrap(),
        "image file\n"
    );
    c.finish();
}

/// CVE-2019-16884 / CVE-2023-27561 class, as runc's checkProcMount: a mount whose
/// destination is /proc (or /sys) but is not procfs (sysfs), or that lands under /proc
/// outside the lxcfs allow-list, directly or through a symlink, is refused by index and
/// destination; the allow-listed files and a bind of the host's sysfs still work.
#[test]
fn mounts_over_proc_and_sys_are_refused() {
    let c = Ctx::new("procmnt");
    let vol = c.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let file = c.dir.join("fake-uptime");
    std::fs::write(&file, "42.00 42.00\n").unwrap();
    let v = vol.to_str().unwrap();
    let f = file.to_str().unwrap();
    let tmpfs = |d: &str| json!({"destination": d, "type": "tmpfs", "source": "tmpfs"});
    let bind = |d: &str, s: &str| json!({"destination": d, "type": "bind", "source": s, "options": ["rbind"]});
    // (case, mount, symlink in the rootfs, phrase berth says, runc refuses it too)
    let cases = [
        ("tmpfs-proc", tmpfs("/proc"), None, "not of type proc", true),
        (
            "bind-proc",
            bind("/proc", v),
            None,
            "not of type proc",
            true,
        ),
        ("tmpfs-sys", tmpfs("/sys"), None, "not of type sysfs", false),
        (
            "attr",
            bind("/proc/self/attr", v),
            None,
            "inside /proc",
            true,
        ),
        (
            "sysrq",
            bind("/proc/sysrq-trigger", f),
            None,
            "inside /proc",
            true,
        ),
        (
            "tmpfs-procsys",
            tmpfs("/proc/sys"),
            None,
            "inside /proc",
            false,
        ),
        (
            "link-attr",
            bind("/evil", v),
            Some(("evil", "/proc/self/attr")),
            "inside /proc",
            true,
        ),
        (
            "link-proc",
            tmpfs("/evil"),
            Some(("evil", "../proc")),
            "not of type proc",
            true,
        ),
    ];
    for (name, mount, link, phrase, runc_refuses) in cases {
        if is_runc() && !runc_refuses {
            continue;
        }
        let id = c.id(name);
        let mut b = c.bundle_for(&id, &["true"]);
        let mounts = b.config["mounts"].as_array_mut().unwrap();
        let index = mounts.len();
        let dest = mount["destination"].as_str().unwrap().to_string();
        mounts.push(mount);
        if let Some((at, to)) = link {
            symlink(to, b.rootfs().join(at)).unwrap();
        }
        b.write();
        let out = c.rt(&["create", "--bundle", b.path(), &id]);
        assert_ne!(out.code, 0, "{name}: accepted");
        if !is_runc() {
            out.fails_with(&format!("mounts[{index}] ({dest})"))
                .fails_with(phrase);
        }
        c.rt(&["state", &id]).fails_with("does not exist");
        c.audit();
    }
    // What podman, containerd and lxcfs do stays allowed: an allow-listed /proc file, a
    // bind of the host's /sys over /sys (rootless with the host's network namespace).
    let id = c.id("allowed");
    let mut b = c.bundle_for(
        &id,
        &[
            "sh",
            "-c",
            "cat /proc/uptime; ls /sys/kernel >/dev/null && echo SYS",
        ],
    );
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/sys" && m["destination"] != "/sys/fs/cgroup");
    mounts.push(json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
    mounts.push(json!({"destination": "/proc/uptime", "type": "bind", "source": f, "options": ["bind", "ro"]}));
    let out = c.run(&b, &id);
    out.ok();
    assert_eq!(out.stdout, "42.00 42.00\nSYS\n");
    c.finish();
}
