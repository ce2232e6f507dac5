//! Rootless, as a person at a shell: a real unprivileged user made by the test (useradd,
//! with its /etc/subuid and /etc/subgid ranges), berth and the bundle copied where that user
//! can read them, state in $XDG_RUNTIME_DIR/berth-runc. Also uid 0 in a user namespace someone
//! else made (podman rootless), where host mounts are locked.

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    fn create() -> User {
        let name = format!("berthit{}", std::process::id());
        let out = output_of(Command::new("useradd").args(["-M", "-s", "/bin/false", &name]));
        assert!(
            out.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let u = nix::unistd::User::from_name(&name).unwrap().unwrap();
        User {
            name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }
    }

    /// The user's first range in /etc/subuid or /etc/subgid.
    fn sub_range(&self, file: &str) -> (u32, u32) {
        let text = std::fs::read_to_string(file).unwrap();
        text.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 3 && f[0] == self.name)
                    .then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
            })
            .unwrap_or_else(|| panic!("no range for {} in {file}", self.name))
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// Runs `berth args...` as the user (no --root: the default location is under test).
fn as_user(u: &User, home: &Path, prefix: &[&str], args: &[&str]) -> Out {
    let berth = home.join("berth-runc");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        &u.uid.to_string(),
        "--regid",
        &u.gid.to_string(),
        "--init-groups",
    ])
    .args(prefix)
    .arg(&berth)
    .args(args)
    .current_dir(home)
    .env_clear()
    .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    .env("XDG_RUNTIME_DIR", home.join("xdg"))
    .env("HOME", home);
    run_with_timeout(&mut cmd, Duration::from_secs(30))
}

fn chown_r(p: &Path, uid: u32, gid: u32) {
    let out =
        output_of(Command::new("chown").args(["-R", &format!("{uid}:{gid}"), p.to_str().unwrap()]));
    assert!(out.status.success());
}

fn write_config(b: &Bundle, v: &Value) {
    std::fs::write(b.dir.join("config.json"), v.to_string()).unwrap();
}

#[test]
fn rootless_user_at_a_shell() {
    let c = Ctx::new("rootless");
    let u = User::create();
    let home = c.dir.clone();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(runtime(), home.join("berth-runc")).unwrap();
    std::fs::create_dir_all(home.join("xdg")).unwrap();
    let id = c.id("r");
    let b = c.bundle(&id, &["true"]);
    chown_r(&home, u.uid, u.gid);
    let bundle = b.dir.to_str().unwrap().to_string();

    // `spec --rootless` gives a config that runs as is.
    as_user(&u, &home, &[], &["spec", "--rootless", "--bundle", &bundle]).ok();
    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(b.dir.join("config.json")).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!([
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; ls /sys/class/net | grep -c lo; echo ok > /tmp/w"
    ]);
    spec["root"]["readonly"] = json!(false);
    write_config(&b, &spec);
    let out = as_user(&u, &home, &[], &["run", "--bundle", &bundle, &id]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{}", out.stdout);
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", &u.uid.to_string(), "1"]
    );
    // The host's /sys (bound, the network namespace is not ours): its lo is listed.
    assert_eq!(lines[2], "1", "{}", out.stdout);
    // A config asking for no limits runs without a word about them.
    assert!(
        !out.stderr.contains("limit"),
        "warned though no limit was asked for: {}",
        out.stderr
    );
    // What container root wrote belongs to the user on the host.
    let w = b.rootfs().join("tmp/w");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&w).unwrap()),
        u.uid
    );

    // cgroup v1 is never delegated: limits asked for are a warning for berth, never a
    // failure (runc 1.1 refuses: "cannot set pids limit: container could not join or
    // create cgroup").
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let mut limited = spec.clone();
        limited["linux"]["resources"] = json!({"pids": {"limit": 100}});
        limited["process"]["args"] = json!(["true"]);
        write_config(&b, &limited);
        let out = as_user(&u, &home, &[], &["run", "--bundle", &bundle, &id]);
        if is_runc() {
            out.fails_with("pids limit");
        } else {
            out.ok();
            assert_eq!(
                out.stderr.matches("without resource limits").count(),
                1,
                "{}",
                out.stderr
            );
        }
    }

    // State lives in $XDG_RUNTIME_DIR/berth-runc; exec works as the user too.
    spec["process"]["args"] = json!(["sleep", "1000"]);
    write_config(&b, &spec);
    as_user(&u, &home, &[], &["create", "--bundle", &bundle, &id]).ok();
    // (runc keeps its own in $XDG_RUNTIME_DIR/runc.)
    let state_root = home.join(if is_runc() {
        "xdg/runc"
    } else {
        "xdg/berth-runc"
    });
    let state_dir: PathBuf = state_root.join(&id);
    assert!(state_dir.join("state.json").exists());
    let st: Value =
        serde_json::from_str(&as_user(&u, &home, &[], &["state", &id]).ok().stdout).unwrap();
    c.track_pid(st["pid"].as_i64().unwrap() as i32);
    as_user(&u, &home, &[], &["start", &id]).ok();
    let out = as_user(&u, &home, &[], &["exec", &id, "id", "-u"]);
    assert_eq!(out.ok().stdout.trim(), "0");
    as_user(&u, &home, &[], &["delete", "--force", &id]).ok();
    assert!(!state_dir.exists());

    // subuid/subgid ranges: a multi-range map through newuidmap/newgidmap.
    let (su, sn) = u.sub_range("/etc/subuid");
    let (sg, gn) = u.sub_range("/etc/subgid");
    spec["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"]);
    spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1},
                                          {"containerID": 1, "hostID": su, "size": sn}]);
    spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1},
                                          {"containerID": 1, "hostID": sg, "size": gn}]);
    write_config(&b, &spec);
    let out = as_user(&u, &home, &[], &["run", "--bundle", &bundle, &id]);
    out.ok();
    let maps: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps.len(), 4, "{}", out.stdout);
    assert_eq!(maps[1], ["1", &su.to_string(), &sn.to_string()]);
    assert_eq!(maps[3], ["1", &sg.to_string(), &gn.to_string()]);
    assert!(std::fs::read_dir(&state_root).unwrap().next().is_none());

    // uid 0 in a user namespace someone else made, with the host's mounts locked (podman
    // rootless runs its runtime so): no user namespace in the config; a nosuid,nodev,noexec
    // host mount (locked in that namespace) bound read-only keeps its locked flags instead
    // of failing.
    spec["linux"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "uidMappings" && k != "gidMappings");
    let ns: Vec<Value> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "user")
        .cloned()
        .collect();
    spec["linux"]["namespaces"] = json!(ns);
    let locked = home.join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &locked,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some("size=64k"),
    )
    .unwrap();
    spec["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/shm", "type": "bind", "source": locked, "options": ["rbind", "ro"]}),
    );
    std::fs::create_dir_all(b.rootfs().join("shm")).unwrap();
    spec["process"]["args"] = json!(["sh", "-c", "id -u; grep ' /shm ' /proc/self/mounts"]);
    write_config(&b, &spec);
    let out = as_user(
        &u,
        &home,
        &["unshare", "--user", "--map-root-user", "--mount"],
        &["run", "--bundle", &bundle, &id],
    );
    nix::mount::umount2(&locked, nix::mount::MntFlags::MNT_DETACH).unwrap();
    if is_runc() {
        // runc 1.1 remounts without the locked flags and fails.
        out.fails_with("operation not permitted");
        c.finish();
        return;
    }
    out.ok();
    assert!(out.stdout.starts_with("0\n"), "{}", out.stdout);
    let shm = out.stdout.lines().nth(1).unwrap_or("");
    for flag in ["ro,", "nosuid", "nodev", "noexec"] {
        assert!(shm.contains(flag), "{flag} missing: {shm}");
    }
    c.finish();
}
