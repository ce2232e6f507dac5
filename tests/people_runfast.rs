//! The people face's quick paths keep their guarantees: a `run -d` skips its own seal
//! re-execution but the monitor it starts (which creates the container) still executes
//! from a read-only copy of berth (CVE-2019-5736), and so does a foreground `run` whose
//! command line only looked detached before the parse.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::people::World;
use nix::sys::statvfs::{statvfs, FsFlags};

/// Whether the binary `pid` executes cannot be written: on a read-only mount (the
/// detached read-only clone berth makes of itself) or a sealed memfd (rootless).
fn runs_sealed(pid: i32) -> bool {
    let exe = format!("/proc/{pid}/exe");
    let ro = statvfs(exe.as_str()).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY));
    ro || std::fs::read_link(&exe).is_ok_and(|l| l.to_string_lossy().starts_with("/memfd:"))
}

#[test]
fn the_build_under_test_is_writable() {
    // Otherwise the checks below would hold whatever berth did.
    let st = statvfs(env!("CARGO_BIN_EXE_berth")).unwrap();
    assert!(!st.flags().contains(FsFlags::ST_RDONLY));
}

#[test]
fn detached_monitors_run_from_a_sealed_copy() {
    let w = World::new("rfseal");
    let id = w.run_d(&[], &["sleep", "1000"]);
    assert!(
        runs_sealed(w.monitor_pid(&id)),
        "run -d: monitor not sealed"
    );
    // `start` of a created container spawns its monitor the same way.
    let out = w.b(&["create", "--rootfs", w.rootfs(), "sleep", "1000"]);
    out.ok();
    let id2 = out.stdout.trim().to_string();
    w.b(&["start", &id2]).ok();
    assert!(
        runs_sealed(w.monitor_pid(&id2)),
        "start: monitor not sealed"
    );
    w.finish();
}

/// Starts a foreground `run` and checks the CLI (the container's parent and monitor)
/// executes from a sealed copy once the container runs.
fn foreground_is_sealed(w: &World, name: &str, cmd: &[&str]) {
    let mut args = vec!["run", "--rm", "--name", name, "--rootfs", w.rootfs()];
    args.extend_from_slice(cmd);
    let mut child = w
        .cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    w.until("the foreground container runs", || {
        w.b(&["inspect", "--format", "{{.State.Status}}", name])
            .stdout
            .trim()
            == "running"
    });
    let sealed = runs_sealed(pid);
    // Stopped and reaped before any assertion: the child is ours.
    let _ = w.b(&["rm", "-f", name]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the foreground run did not end after rm -f");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sealed, "foreground run {cmd:?}: the CLI is not sealed");
}

#[test]
fn foreground_runs_are_sealed_even_when_they_look_detached() {
    let w = World::new("rffg");
    foreground_is_sealed(&w, "rf-plain", &["sleep", "1000"]);
    // `-d` only in the container's own arguments: the guess before the parse says
    // detached, the parse says foreground, and the seal happens then.
    foreground_is_sealed(&w, "rf-looks", &["sh", "-c", "sleep 1000", "-d"]);
    w.finish();
}

/// The files berth bind-mounts in /etc (hostname, hosts, resolv.conf) find their mount
/// points in a layer of the container's own, not in its upper directory: /etc is not
/// copied up for them (the container's changes stay its own), it keeps the image's mode
/// and owner, and the files still read as the container's.
#[test]
fn etc_mount_points_leave_the_upper_directory_alone() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new("rfetc");
    let etc = std::path::Path::new(w.rootfs()).join("etc");
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o751)).unwrap();
    std::os::unix::fs::chown(&etc, Some(0), Some(50)).unwrap();
    w.busybox_image("rfetc:1");

    let out = w.b(&[
        "run",
        "--rm",
        "--hostname",
        "h-rm",
        "rfetc:1",
        "sh",
        "-c",
        "cat /etc/hostname; stat -c '%a %u %g' /etc; grep -c localhost /etc/hosts; grep -c nameserver /etc/resolv.conf",
    ]);
    out.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["h-rm", "751 0 50", "2", "1"],
        "{}",
        out.stdout
    );

    let id = w.detach(&[
        "--name",
        "rf-kept",
        "--hostname",
        "h-kept",
        "rfetc:1",
        "sh",
        "-c",
        "cat /etc/hostname > /tmp/seen",
    ]);
    w.until("rf-kept exits", || w.status(&id) == "exited");
    let upper = w.root.join("containers").join(&id).join("overlay/diff");
    let top: Vec<String> = common::people::entries(&upper);
    assert_eq!(
        top,
        ["tmp"],
        "only the container's own change in {}",
        upper.display()
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("tmp/seen")).unwrap(),
        "h-kept\n"
    );
    let diff = w.b(&["diff", "rf-kept"]);
    diff.ok();
    assert!(
        !diff.stdout.lines().any(|l| l.ends_with(" /etc")),
        "{}",
        diff.stdout
    );
    // Started again, the layer is made anew and the container still reads its files.
    let out = w.b(&["start", "-a", "rf-kept"]);
    out.ok();
    assert_eq!(
        std::fs::read_to_string(upper.join("tmp/seen")).unwrap(),
        "h-kept\n"
    );
    w.finish();
}

/// Compiled seccomp filters are kept (RUNROOT/seccomp), yet a profile changed between two
/// runs is what the second container gets, and a kept file that was tampered with or
/// broken is not what a container gets either.
#[test]
fn a_changed_seccomp_profile_is_never_served_from_the_cache() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new("rfsc");
    let profile = w.dir.join("profile.json");
    let deny = |name: &str| {
        std::fs::write(
            &profile,
            format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["{name}"],"action":"SCMP_ACT_ERRNO"}}]}}"#
            ),
        )
        .unwrap();
    };
    let opt = format!("seccomp={}", profile.display());
    let probe = |w: &World| {
        // An image: each --rm container starts from the same /tmp.
        let out = w.b(&[
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "rfsc:1",
            "sh",
            "-c",
            "mkdir /tmp/d && echo made; rmdir /tmp/d && echo removed; true",
        ]);
        out.ok();
        out.stdout
    };
    w.busybox_image("rfsc:1");
    deny("mkdir");
    assert_eq!(probe(&w), "");
    let cache = w.runroot.join("seccomp");
    let kept = common::people::entries(&cache);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(probe(&w), "", "the kept program, still denying mkdir");
    deny("rmdir");
    assert_eq!(probe(&w), "made\n");
    let a = cache.join(&kept[0]);
    let b = common::people::entries(&cache)
        .into_iter()
        .find(|n| n != &kept[0])
        .map(|n| cache.join(n))
        .unwrap();
    // The "deny mkdir" file now holds the whole, valid "deny rmdir" program: the file is
    // not the profile's (its key says so) and is never loaded.
    let b_bytes = std::fs::read(&b).unwrap();
    std::fs::write(&a, &b_bytes).unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();
    deny("mkdir");
    assert_eq!(probe(&w), "");
    assert_ne!(
        std::fs::read(&a).unwrap(),
        b_bytes,
        "replaced by the right program"
    );
    w.finish();
}

/// A created `--rm` container's root is mounted volatile by a `cp` into it; the kernel's
/// marker of that mount (with a `dirty` file in it) must not make the start's mount fail:
/// the container runs on its image with the copied file, then is gone.
#[test]
fn cp_into_a_created_rm_container_then_start() {
    let w = World::new("rfcprm");
    let img = "test/rfcprm";
    w.busybox_image(img);
    w.b(&["create", "--rm", "--name", "c1", img, "cat", "/given"])
        .ok();
    let src = w.dir.join("given");
    std::fs::write(&src, "given\n").unwrap();
    w.b(&["cp", src.to_str().unwrap(), "c1:/given"]).ok();
    let out = w.b(&["start", "-a", "c1"]);
    out.ok();
    assert_eq!(out.stdout, "given\n");
    assert!(!out.stderr.contains("copying"), "{}", out.stderr);
    assert_eq!(w.b(&["ps", "-a", "-q"]).ok().stdout, "");
    w.finish();
}

/// `--root run/x --runroot r` from a shell's directory: the monitor and the runtime work
/// elsewhere, so the store's paths must not be read relative to them.
#[test]
fn relative_root_and_runroot_are_taken_from_the_callers_directory() {
    let w = World::new("rfrel");
    w.busybox_image("rfrel:1");
    let rel = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
        c.current_dir(&w.dir)
            .args(["--root", "root", "--runroot", "run"])
            .args(args);
        common::people::run(&mut c, None)
    };
    let out = rel(&["run", "--rm", "--network", "none", "rfrel:1", "echo", "hi"]);
    out.ok();
    assert_eq!(out.stdout, "hi\n");
    let id = rel(&["run", "-d", "--name", "rf-rel", "rfrel:1", "sleep", "100"]);
    id.ok();
    let ps = rel(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.stdout.starts_with("rf-rel Up"), "{}", ps.stdout);
    rel(&["rm", "-f", "rf-rel"]).ok();
    w.finish();
}
