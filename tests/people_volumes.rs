//! Volumes, driven through the built binary as a user would (Docker's tutorials: a
//! database kept on the host, named volumes, `--volumes-from`), each test with its own
//! `--root`/`--runroot` and busybox root filesystem (`run --rootfs DIR`, or an image made
//! from it with `import --change VOLUME`), asserting by effect: what the container sees,
//! what the host sees, what is left behind.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::people::{entries, TestUser, World};
use common::Out;

/// A world whose commands may take two minutes (volume copies on a loaded machine).
fn world(name: &str) -> World {
    World::new(name).deadline(Duration::from_secs(120))
}

/// `run --rm [flags] --rootfs ROOTFS sh -c SCRIPT`.
fn sh(w: &World, flags: &[&str], script: &str) -> Out {
    let mut f = vec!["--rm"];
    f.extend_from_slice(flags);
    w.run(&f, &["sh", "-c", script])
}

/// `run [flags] --rootfs ROOTFS sh -c SCRIPT` (the container stays).
fn keep(w: &World, flags: &[&str], script: &str) -> Out {
    w.run(flags, &["sh", "-c", script])
}

/// Where volume `name` keeps its files.
fn data(w: &World, name: &str) -> PathBuf {
    w.root.join("volumes").join(name).join("_data")
}

/// Failed with `code`, one line on stderr naming `phrase`.
fn one_line(out: &Out, code: i32, phrase: &str) {
    assert_eq!(
        out.code, code,
        "expected exit {code}; stdout: {} stderr: {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains(phrase),
        "expected {phrase:?} in: {}",
        out.stderr
    );
    assert_eq!(
        out.stderr.trim_end().lines().count(),
        1,
        "one line: {}",
        out.stderr
    );
}

#[test]
fn host_directories_both_ways_and_read_only() {
    let w = world("bind");
    let db = w.dir.join("wordpress_db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("from-host"), "host data\n").unwrap();
    let logs = w.dir.join("not/yet/there");
    // Several -v at once, the second's host directory made as Docker does.
    let out = sh(
        &w,
        &[
            "-v",
            &format!("{}:/var/lib/mysql", db.display()),
            "-v",
            &format!("{}:/logs", logs.display()),
        ],
        "cat /var/lib/mysql/from-host; echo written > /var/lib/mysql/from-ctr; echo l > /logs/l",
    );
    out.ok();
    assert_eq!(out.stdout, "host data\n");
    assert_eq!(
        std::fs::read_to_string(db.join("from-ctr")).unwrap(),
        "written\n"
    );
    assert_eq!(std::fs::read_to_string(logs.join("l")).unwrap(), "l\n");

    // ro refuses writes, also in a mount under the bind's source (recursively read-only).
    let sub = db.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "berth-pv",
            sub.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let out = sh(
        &w,
        &["-v", &format!("{}:/db:ro", db.display())],
        "cat /db/from-host; touch /db/x 2>&1; touch /db/sub/y 2>&1; echo end",
    );
    let _ = Command::new("umount").arg(&sub).status();
    out.ok();
    assert_eq!(
        out.stdout.matches("Read-only file system").count(),
        2,
        "EROFS in the mount and its submount: {}",
        out.stdout
    );
    assert!(!db.join("x").exists());
    // --mount type=bind with readonly, the same.
    let out = sh(
        &w,
        &[
            "--mount",
            &format!("type=bind,source={},target=/db,readonly", db.display()),
        ],
        "touch /db/z 2>&1; cat /db/from-ctr",
    );
    out.ok();
    assert!(
        out.stdout.contains("Read-only file system"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("written"));
    // Propagation: rprivate by default, rshared when asked.
    let info = "grep ' /db ' /proc/self/mountinfo";
    let out = sh(&w, &["-v", &format!("{}:/db", db.display())], info);
    out.ok();
    assert!(!out.stdout.contains("shared:"), "{}", out.stdout);
    let out = sh(&w, &["-v", &format!("{}:/db:rshared", db.display())], info);
    out.ok();
    assert!(out.stdout.contains("shared:"), "{}", out.stdout);
    // inspect shows the binds as Docker does.
    keep(
        &w,
        &["--name", "b1", "-v", &format!("{}:/db:ro", db.display())],
        "true",
    )
    .ok();
    let out = w.b(&["inspect", "b1"]);
    out.ok();
    let m = &out.json()[0]["Mounts"][0];
    assert_eq!(m["Type"], "bind");
    assert_eq!(m["Source"], db.to_str().unwrap());
    assert_eq!(m["Destination"], "/db");
    assert_eq!(m["RW"], false);
    assert_eq!(m["Mode"], "ro");
    assert_eq!(m["Propagation"], "rprivate");
    assert_eq!(
        out.json()[0]["HostConfig"]["Binds"],
        serde_json::json!([format!("{}:/db:ro", db.display())])
    );
    w.finish_with_volumes();
}

#[test]
fn named_volume_outlives_its_container() {
    let w = world("named");
    // The tutorial's database: write, remove the container, run again, read.
    keep(
        &w,
        &["--name", "db1", "-v", "dbdata:/var/lib/mysql"],
        "echo 'CREATE TABLE t' > /var/lib/mysql/ibdata",
    )
    .ok();
    assert_eq!(w.volumes(), ["dbdata"]);
    let out = w.b(&["volume", "rm", "dbdata"]);
    one_line(&out, 1, "volume is in use");
    assert!(
        out.stderr.contains("db1"),
        "names the container: {}",
        out.stderr
    );
    let out = w.b(&["inspect", "db1", "--format", "{{json .Mounts}}"]);
    out.ok();
    let m: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(m[0]["Type"], "volume");
    assert_eq!(m[0]["Name"], "dbdata");
    assert_eq!(m[0]["Driver"], "local");
    assert_eq!(m[0]["RW"], true);
    assert_eq!(m[0]["Destination"], "/var/lib/mysql");
    let out = w.b(&[
        "ps",
        "-a",
        "--filter",
        "volume=dbdata",
        "--format",
        "{{.Names}} {{.Mounts}}",
    ]);
    out.ok();
    assert_eq!(out.stdout, "db1 dbdata\n");
    let out = w.b(&["ps", "-a", "-q", "--filter", "volume=/var/lib/mysql"]);
    assert_eq!(out.stdout.lines().count(), 1);
    let out = w.b(&["ps", "-a", "-q", "--filter", "volume=other"]);
    assert_eq!(out.stdout, "");
    w.b(&["rm", "-v", "db1"]).ok();
    assert_eq!(
        w.volumes(),
        ["dbdata"],
        "rm -v never removes a named volume"
    );
    let out = sh(
        &w,
        &["-v", "dbdata:/var/lib/mysql"],
        "cat /var/lib/mysql/ibdata",
    );
    out.ok();
    assert_eq!(out.stdout, "CREATE TABLE t\n");
    assert_eq!(
        std::fs::read_to_string(data(&w, "dbdata").join("ibdata")).unwrap(),
        "CREATE TABLE t\n"
    );

    // volume create / ls / inspect / exists, Docker's shapes.
    let out = w.b(&[
        "volume", "create", "--name", "myvolume", "--label", "tier=db",
    ]);
    out.ok();
    assert_eq!(out.stdout, "myvolume\n");
    w.b(&["volume", "create", "myvolume"]).ok();
    let out = w.b(&["volume", "ls"]);
    out.ok();
    assert_eq!(
        out.stdout,
        "DRIVER    VOLUME NAME\nlocal     dbdata\nlocal     myvolume\n"
    );
    let out = w.b(&["volume", "ls", "-q", "--filter", "label=tier=db"]);
    assert_eq!(out.stdout, "myvolume\n");
    let out = w.b(&[
        "volume",
        "ls",
        "--filter",
        "name=db",
        "--format",
        "{{.Name}}:{{.Driver}}",
    ]);
    assert_eq!(out.stdout, "dbdata:local\n");
    let out = w.b(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(out.stdout, "dbdata\nmyvolume\n");
    let out = w.b(&["inspect", "--type", "volume", "myvolume"]);
    out.ok();
    let v = &out.json()[0];
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    assert_eq!(v["Name"], "myvolume");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["tier"], "db");
    assert_eq!(v["Mountpoint"], data(&w, "myvolume").to_str().unwrap());
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'));
    let out = w.b(&["volume", "inspect", "--format", "{{.Mountpoint}}", "dbdata"]);
    assert_eq!(out.stdout.trim(), data(&w, "dbdata").to_str().unwrap());
    assert_eq!(w.b(&["volume", "exists", "myvolume"]).code, 0);
    assert_eq!(w.b(&["volume", "exists", "nope"]).code, 1);
    one_line(
        &w.b(&["volume", "inspect", "nope"]),
        1,
        "No such volume: nope",
    );
    one_line(&w.b(&["volume", "rm", "nope"]), 1, "No such volume: nope");
    w.b(&["volume", "rm", "-f", "nope"]).ok();
    let out = w.b(&["volume", "rm", "myvolume"]);
    out.ok();
    assert_eq!(out.stdout, "myvolume\n");
    assert!(!w.root.join("volumes/myvolume").exists());
    w.finish_with_volumes();
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_run_rm() {
    let w = world("anon");
    keep(&w, &["--name", "a1", "-v", "/data"], "echo x > /data/f").ok();
    let anon = w.volumes();
    assert_eq!(anon.len(), 1);
    assert_eq!(
        anon[0].len(),
        64,
        "an anonymous volume has an id for a name"
    );
    let out = w.b(&["volume", "inspect", &anon[0]]);
    assert_eq!(out.json()[0]["Labels"]["com.docker.volume.anonymous"], "");
    assert_eq!(
        std::fs::read_to_string(data(&w, &anon[0]).join("f")).unwrap(),
        "x\n"
    );
    // rm without -v keeps it (Docker), rm -v removes it.
    keep(&w, &["--name", "a2", "-v", "/data"], "true").ok();
    let out = w.b(&["inspect", "a2", "--format", "{{(index .Mounts 0).Name}}"]);
    let a2vol = out.stdout.trim().to_string();
    w.b(&["rm", "a2"]).ok();
    assert!(w.volumes().contains(&a2vol));
    w.b(&["rm", "-v", "a1"]).ok();
    assert!(!w.volumes().contains(&anon[0]));
    // run --rm: the anonymous volume goes, the named one stays.
    sh(
        &w,
        &["-v", "/scratch", "-v", "kept:/kept"],
        "echo k > /kept/k; echo s > /scratch/s",
    )
    .ok();
    let left = w.volumes();
    assert!(left.contains(&"kept".to_string()), "{left:?}");
    assert_eq!(left.len(), 2, "the earlier a2 volume and kept: {left:?}");
    // volume prune: anonymous unused ones; -a every unused one.
    let out = w.b(&["volume", "prune", "-f"]);
    out.ok();
    assert!(
        out.stdout.starts_with("Deleted Volumes:\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&a2vol));
    assert!(out.stdout.contains("Total reclaimed space:"));
    assert_eq!(w.volumes(), ["kept"]);
    keep(&w, &["--name", "user", "-v", "kept:/kept"], "true").ok();
    let out = w.b(&["volume", "prune", "-f", "-a"]);
    out.ok();
    assert_eq!(w.volumes(), ["kept"], "in use: not pruned");
    w.b(&["rm", "user"]).ok();
    w.b(&["volume", "prune", "-f", "-a"]).ok();
    assert!(w.volumes().is_empty());
    w.finish_with_volumes();
}

#[test]
fn volumes_from_another_container() {
    let w = world("from");
    let shared = w.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    // The tutorial's "volume_overide": a container that only holds volumes, never run.
    let out = w.b(&[
        "create",
        "--name",
        "volume_overide",
        "-v",
        "appdata:/app",
        "-v",
        &format!("{}:/shared", shared.display()),
        "-v",
        "/anon",
        "--rootfs",
        w.rootfs(),
        "true",
    ]);
    out.ok();
    let out = sh(
        &w,
        &["--volumes-from", "volume_overide"],
        "echo a > /app/a; echo s > /shared/s; echo n > /anon/n; ls /app /shared /anon",
    );
    out.ok();
    assert_eq!(std::fs::read_to_string(shared.join("s")).unwrap(), "s\n");
    assert_eq!(
        std::fs::read_to_string(data(&w, "appdata").join("a")).unwrap(),
        "a\n"
    );
    // The anonymous volume is the holder's: --rm of the borrower left it.
    let out = w.b(&[
        "inspect",
        "volume_overide",
        "--format",
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
    ]);
    let anon = out.stdout.trim().to_string();
    assert_eq!(
        std::fs::read_to_string(data(&w, &anon).join("n")).unwrap(),
        "n\n"
    );
    // :ro makes every borrowed mount read-only.
    let out = sh(
        &w,
        &["--volumes-from", "volume_overide:ro"],
        "cat /app/a; touch /app/b 2>&1; touch /shared/t 2>&1; true",
    );
    out.ok();
    assert!(out.stdout.starts_with("a\n"));
    assert_eq!(
        out.stdout.matches("Read-only file system").count(),
        2,
        "{}",
        out.stdout
    );
    keep(
        &w,
        &["--name", "borrower", "--volumes-from", "volume_overide:ro"],
        "true",
    )
    .ok();
    let out = w.b(&[
        "inspect",
        "--format",
        "{{json .HostConfig.VolumesFrom}} {{len .Mounts}}",
        "borrower",
    ]);
    assert_eq!(out.stdout, "[\"volume_overide:ro\"] 3\n");
    w.b(&["rm", "borrower"]).ok();
    // A missing container: 125, nothing made.
    let before = w.volumes();
    let out = sh(&w, &["--volumes-from", "nosuch", "-v", "new1:/n"], "true");
    one_line(&out, 125, "No such container: nosuch");
    assert_eq!(w.volumes(), before);
    w.finish_with_volumes();
}

/// An image made from the test's root filesystem with `VOLUME /data`, whose /data holds
/// a file of uid 33 gid 34 mode 0640 and a directory of mode 0750.
fn image_with_volume(w: &World) -> &'static str {
    let data = w.rootfs.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("seed"), "seeded\n").unwrap();
    std::os::unix::fs::chown(data.join("seed"), Some(33), Some(34)).unwrap();
    std::fs::set_permissions(data.join("seed"), PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::set_permissions(data.join("sub"), PermissionsExt::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(&data, Some(33), Some(34)).unwrap();
    let tarball = w.dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&w.rootfs)
        .args(["--numeric-owner", "-cf", tarball.to_str().unwrap(), "."])
        .status()
        .unwrap();
    assert!(st.success());
    w.b(&[
        "import",
        "--change",
        "VOLUME /data",
        tarball.to_str().unwrap(),
        "voltest:1",
    ])
    .ok();
    "voltest:1"
}

#[test]
fn image_content_fills_a_fresh_volume_once() {
    let w = world("copyup");
    let img = image_with_volume(&w);
    // The image's VOLUME: an anonymous volume, filled from the image.
    let out = w.b(&[
        "run",
        "--name",
        "c1",
        img,
        "sh",
        "-c",
        "cat /data/seed; echo mine > /data/mine",
    ]);
    out.ok();
    assert_eq!(out.stdout, "seeded\n");
    let out = w.b(&[
        "inspect",
        "c1",
        "--format",
        "{{(index .Mounts 0).Name}} {{(index .Mounts 0).Destination}}",
    ]);
    let (anon, dst) = out.stdout.trim().split_once(' ').unwrap();
    assert_eq!(dst, "/data");
    let d = data(&w, anon);
    let m = std::fs::metadata(d.join("seed")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (33, 34, 0o640),
        "owners and modes kept"
    );
    assert_eq!(
        std::fs::metadata(d.join("sub")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(
        std::fs::metadata(&d).unwrap().uid(),
        33,
        "the directory's owner too"
    );
    assert_eq!(std::fs::read_to_string(d.join("mine")).unwrap(), "mine\n");

    // A fresh named volume: filled by its first container, never again.
    w.b(&["run", "--rm", "-v", "seeded:/data", img, "rm", "/data/seed"])
        .ok();
    let out = w.b(&["run", "--rm", "-v", "seeded:/data", img, "ls", "/data"]);
    out.ok();
    assert_eq!(out.stdout, "sub\n", "not copied a second time");
    // nocopy: a fresh volume stays empty.
    let out = w.b(&[
        "run",
        "--rm",
        "-v",
        "empty:/data:nocopy",
        img,
        "ls",
        "-A",
        "/data",
    ]);
    out.ok();
    assert_eq!(out.stdout, "");
    let out = w.b(&[
        "run",
        "--rm",
        "--mount",
        "source=empty2,target=/data,volume-nocopy",
        img,
        "ls",
        "-A",
        "/data",
    ]);
    out.ok();
    assert_eq!(out.stdout, "");
    // A host directory is never filled (Docker's rule for binds).
    let h = w.dir.join("bindhere");
    std::fs::create_dir_all(&h).unwrap();
    w.b(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/data", h.display()),
        img,
        "true",
    ])
    .ok();
    assert!(entries(&h).is_empty());
    // run --rm of an image container: its anonymous volume goes with it.
    let before = w.volumes().len();
    w.b(&["run", "--rm", img, "true"]).ok();
    assert_eq!(w.volumes().len(), before);
    w.b(&["rm", "-v", "c1"]).ok();
    w.b(&["rmi", img]).ok();
    w.finish_with_volumes();
}

#[test]
fn tmpfs_size_limit_is_enforced() {
    let w = world("tmpfs");
    for flags in [
        vec!["--tmpfs", "/t:size=1m,mode=1770"],
        vec![
            "--mount",
            "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770",
        ],
    ] {
        let out = sh(
            &w,
            &flags,
            "stat -c %a /t; dd if=/dev/zero of=/t/big bs=1024 count=2048 2>&1; ls -l /t/big",
        );
        out.ok();
        assert!(out.stdout.starts_with("1770\n"), "{}", out.stdout);
        assert!(
            out.stdout.contains("No space left on device"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains(" 1048576 "),
            "1 MiB and no more: {}",
            out.stdout
        );
    }
    // Docker's defaults: noexec, nosuid, nodev (exec when asked).
    let out = sh(&w, &["--tmpfs", "/t"], "grep ' /t ' /proc/self/mounts");
    out.ok();
    assert!(
        out.stdout.contains("noexec") && out.stdout.contains("nosuid"),
        "{}",
        out.stdout
    );
    let out = sh(&w, &["--tmpfs", "/t:exec"], "grep ' /t ' /proc/self/mounts");
    assert!(!out.stdout.contains("noexec"), "{}", out.stdout);
    w.b(&[
        "create",
        "--name",
        "t1",
        "--tmpfs",
        "/t:size=1m",
        "--mount",
        "type=tmpfs,dst=/u",
        "--rootfs",
        w.rootfs(),
        "true",
    ])
    .ok();
    let out = w.b(&["inspect", "t1"]);
    out.ok();
    let c = &out.json()[0];
    assert_eq!(
        c["HostConfig"]["Tmpfs"],
        serde_json::json!({"/t": "size=1m"})
    );
    assert_eq!(
        c["Mounts"].as_array().unwrap().len(),
        1,
        "--tmpfs is not in Mounts: {}",
        c["Mounts"]
    );
    assert_eq!(c["Mounts"][0]["Type"], "tmpfs");
    assert_eq!(c["Mounts"][0]["Destination"], "/u");
    w.finish_with_volumes();
}

#[test]
fn two_creators_of_one_volume_get_one() {
    let w = world("race");
    // Two containers naming the same new volume, started at once.
    let mut kids: Vec<std::process::Child> = (0..2)
        .map(|i| {
            w.cmd(&[
                "run",
                "--rm",
                "-v",
                "together:/d",
                "--rootfs",
                w.rootfs(),
                "sh",
                "-c",
                &format!("echo {i} > /d/w{i}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let creators: Vec<std::process::Child> = (0..4)
        .map(|_| {
            w.cmd(&["volume", "create", "solo"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    kids.extend(creators);
    for k in kids {
        let out = k.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(w.volumes(), ["solo", "together"]);
    let mut files = entries(&data(&w, "together"));
    files.sort();
    assert_eq!(files, ["w0", "w1"], "both wrote into the one volume");
    let left: Vec<String> = entries(&w.root.join("volumes"))
        .into_iter()
        .filter(|n| n.starts_with('.') && n != ".lock")
        .collect();
    assert!(left.is_empty(), "no staging left: {left:?}");
    w.finish_with_volumes();
}

#[test]
fn bad_input_is_one_line_and_leaves_nothing() {
    let w = world("bad");
    let made = w.dir.join("must-not-exist");
    let good = format!("{}:/ok", made.display());
    for (bad, phrase) in [
        ("relative/path:/x", "includes invalid characters"),
        (":/x", "the source is empty"),
        ("/tmp:x", "must be absolute"),
        ("vol:relative", "must be absolute"),
        ("/tmp:/x:bogus", "invalid mode"),
        ("/tmp:/x:ro,rw", "ro and rw"),
        ("vol:/x/../y", "'..'"),
        ("/tmp:/", "can't be '/'"),
        ("/:/host", "read-write bind of the host's /"),
    ] {
        // A good -v first: its host directory must not be made either.
        let out = sh(&w, &["-v", &good, "-v", "named1:/n", "-v", bad], "true");
        one_line(&out, 125, bad);
        assert!(out.stderr.contains(phrase), "{bad}: {}", out.stderr);
    }
    for (bad, phrase) in [
        (
            "type=bind,source=/nonexistent/berth-pv,target=/x",
            "bind source path does not exist",
        ),
        ("type=bind,target=/x", "Source must not be empty"),
        (
            "type=volume,source=v,target=/x,colour=red",
            "unexpected key",
        ),
        ("type=volume,source=v", "target is required"),
        ("type=nfs,target=/x", "invalid type"),
    ] {
        let out = sh(&w, &["-v", &good, "--mount", bad], "true");
        one_line(&out, 125, phrase);
    }
    one_line(
        &sh(&w, &["--tmpfs", "/t:size=lots"], "true"),
        125,
        "--tmpfs /t:size=lots",
    );
    one_line(
        &sh(&w, &["-v", "/a:/x", "--tmpfs", "/x"], "true"),
        125,
        "Duplicate mount point: /x",
    );
    // berth's own state cannot be bound in.
    let out = sh(&w, &["-v", &format!("{}:/state", w.root.display())], "true");
    one_line(&out, 125, "berth's own state");
    // create exits 125 as run does.
    let out = w.b(&["create", "-v", "a/b:/x", "--rootfs", w.rootfs(), "true"]);
    one_line(&out, 125, "invalid characters");
    assert!(!made.exists(), "no host directory made");
    assert!(w.volumes().is_empty(), "no volume made: {:?}", w.volumes());
    assert!(entries(&w.root.join("containers")).is_empty());
    // volume create: exit 1, the rule named.
    for bad in ["a/b", "..", "../x", "_x", ".hidden", "a b"] {
        let out = w.b(&["volume", "create", bad]);
        one_line(&out, 1, "[a-zA-Z0-9][a-zA-Z0-9_.-]");
    }
    one_line(
        &w.b(&["volume", "create", "-o", "type=none", "vv"]),
        1,
        "device",
    );
    one_line(
        &w.b(&["volume", "create", "-d", "nfs", "vv"]),
        1,
        "local driver",
    );
    let state = format!("device={}", w.root.display());
    for dev in ["device=/", state.as_str()] {
        let out = w.b(&[
            "volume",
            "create",
            "-o",
            "type=none",
            "-o",
            dev,
            "-o",
            "o=bind",
            "vv",
        ]);
        one_line(&out, 1, "berth's own state");
    }
    assert!(w.volumes().is_empty());
    w.finish_with_volumes();
}

#[test]
fn symlinks_never_send_a_mount_or_a_removal_to_the_host() {
    let w = world("symlink");
    let target = w.dir.join("host-target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("precious"), "keep me\n").unwrap();
    // (1) The image plants /evil -> the host directory: the destination resolves inside
    // the container's own tree (where the same path is made), never on the host.
    std::os::unix::fs::symlink(&target, w.rootfs.join("evil")).unwrap();
    let inside = w.rootfs.join(target.strip_prefix("/").unwrap());
    let out = sh(&w, &["-v", "v1:/evil"], "echo in > /evil/written");
    // Where the path does not exist in the container the runtime refuses (125).
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        !target.join("written").exists(),
        "the bind followed the image's symlink to the host"
    );
    std::fs::create_dir_all(&inside).unwrap();
    sh(&w, &["-v", "v1:/evil"], "echo in > /evil/written").ok();
    assert!(
        !target.join("written").exists(),
        "the bind followed the image's symlink to the host"
    );
    assert_eq!(
        std::fs::read_to_string(data(&w, "v1").join("written")).unwrap(),
        "in\n"
    );
    std::fs::remove_file(w.rootfs.join("evil")).unwrap();
    // (2) A container plants symlinks in its volume (absolute, and relative climbing out);
    // the next container's bind below them stays inside that container.
    let t = target.to_str().unwrap();
    sh(
        &w,
        &["-v", "v2:/d"],
        &format!("ln -s {t} /d/link; ln -s ../../../../../../../{t} /d/rel"),
    )
    .ok();
    let src = w.dir.join("bind-src");
    std::fs::create_dir_all(&src).unwrap();
    for dst in ["/d/link", "/d/rel"] {
        sh(
            &w,
            &["-v", "v2:/d", "-v", &format!("{}:{dst}", src.display())],
            &format!("echo through > {dst}/x; cat {t}/x"),
        )
        .ok();
        assert!(
            !target.join("x").exists(),
            "{dst}: a bind sent onto the host"
        );
        assert_eq!(std::fs::read_to_string(src.join("x")).unwrap(), "through\n");
        std::fs::remove_file(src.join("x")).unwrap();
    }
    assert_eq!(entries(&target), ["precious"]);
    // (3) Removing the volume removes the links, not what they point at.
    w.b(&["volume", "rm", "v2"]).ok();
    assert_eq!(
        std::fs::read_to_string(target.join("precious")).unwrap(),
        "keep me\n"
    );
    assert!(!w.root.join("volumes/v2").exists());
    w.finish_with_volumes();
}

#[test]
fn rootless_volumes_belong_to_the_user() {
    let w = world("rootless");
    let u = TestUser::create("berthpv");
    let berth = w.dir.join("berth");
    std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
    std::fs::create_dir_all(w.dir.join("xdg")).unwrap();
    let hostdir = w.dir.join("mine");
    std::fs::create_dir_all(&hostdir).unwrap();
    u.own(&w.dir);
    let as_user = |args: &[&str]| -> Out {
        let dirs = (w.root.as_path(), w.runroot.as_path(), w.dir.as_path());
        u.berth(&berth, dirs, args, Duration::from_secs(120))
    };
    let out = as_user(&[
        "run",
        "--rm",
        "-v",
        "userdata:/data",
        "-v",
        &format!("{}:/host", hostdir.display()),
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "id -u; echo v > /data/f; echo h > /host/f",
    ]);
    out.ok();
    assert_eq!(out.stdout, "0\n");
    for f in [
        data(&w, "userdata").join("f"),
        hostdir.join("f"),
        data(&w, "userdata"),
    ] {
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (u.uid, u.gid),
            "{} is the user's",
            f.display()
        );
    }
    let out = as_user(&[
        "run",
        "--rm",
        "-v",
        "userdata:/data",
        "--rootfs",
        w.rootfs(),
        "cat",
        "/data/f",
    ]);
    out.ok();
    assert_eq!(out.stdout, "v\n");
    // The overlay option and an anonymous volume, rootless too.
    let out = as_user(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/o:O", hostdir.display()),
        "-v",
        "/anon",
        "--rootfs",
        w.rootfs(),
        "sh",
        "-c",
        "echo o > /o/f; echo a > /anon/a; cat /o/f",
    ]);
    out.ok();
    assert_eq!(out.stdout, "o\n");
    assert_eq!(std::fs::read_to_string(hostdir.join("f")).unwrap(), "h\n");
    let out = as_user(&["volume", "ls", "-q"]);
    assert_eq!(out.stdout, "userdata\n", "--rm took the anonymous volume");
    as_user(&["volume", "rm", "userdata"]).ok();
    assert!(!w.root.join("volumes/userdata").exists());
    w.finish_with_volumes();
}

#[test]
fn volume_rm_racing_run_never_leaves_a_half_volume() {
    let w = world("rmrace");
    for round in 0..4 {
        let run = w
            .cmd(&[
                "run",
                "--name",
                &format!("r{round}"),
                "-v",
                "contested:/d",
                "--rootfs",
                w.rootfs(),
                "sh",
                "-c",
                "echo alive > /d/f && cat /d/f",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let rm = w.b(&["volume", "rm", "contested"]);
        let out = run.wait_with_output().unwrap();
        // Whichever came first, the container had a whole volume.
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "alive\n");
        if rm.code != 0 {
            assert!(
                rm.stderr.contains("volume is in use") || rm.stderr.contains("No such volume"),
                "{}",
                rm.stderr
            );
        }
        assert!(data(&w, "contested").join("f").exists());
        w.b(&["rm", &format!("r{round}")]).ok();
        w.b(&["volume", "rm", "contested"]).ok();
    }
    w.finish_with_volumes();
}

#[test]
fn volume_options_chown_and_inspect_fallback() {
    let w = world("opts");
    // -o type=tmpfs: the volume mounts as a tmpfs of that size.
    w.b(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "ram",
    ])
    .ok();
    let out = sh(&w, &["-v", "ram:/t"], "grep ' /t ' /proc/self/mounts");
    out.ok();
    assert!(
        out.stdout.starts_with("tmpfs /t tmpfs ") && out.stdout.contains("size=1024k"),
        "{}",
        out.stdout
    );
    // -o type=none,o=bind,device=DIR: the directory.
    let dev = w.dir.join("device");
    std::fs::create_dir_all(&dev).unwrap();
    w.b(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        &format!("device={}", dev.display()),
        "-o",
        "o=bind",
        "bound",
    ])
    .ok();
    sh(&w, &["-v", "bound:/b"], "echo b > /b/x").ok();
    assert_eq!(std::fs::read_to_string(dev.join("x")).unwrap(), "b\n");
    // --mount volume-opt/volume-label: what a volume made by the mount gets.
    let out = sh(
        &w,
        &["--mount", "src=ram2,dst=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m,volume-label=made=bymount"],
        "grep ' /t ' /proc/self/mounts",
    );
    out.ok();
    assert!(out.stdout.contains("size=2048k"), "{}", out.stdout);
    let out = w.b(&[
        "volume",
        "inspect",
        "--format",
        "{{.Labels.made}} {{.Options.type}}",
        "ram2",
    ]);
    assert_eq!(out.stdout, "bymount tmpfs\n");
    let out = sh(
        &w,
        &[
            "--mount",
            "src=bad,dst=/t,volume-opt=type=none,volume-opt=device=/,volume-opt=o=bind",
        ],
        "true",
    );
    one_line(&out, 125, "berth's own state");
    // O: the container writes into an overlay of the directory; the host's copy never
    // changes and each start sees it afresh.
    let lower = w.dir.join("lower");
    std::fs::create_dir_all(&lower).unwrap();
    std::fs::write(lower.join("base"), "base\n").unwrap();
    let o = format!("{}:/o:O", lower.display());
    let script = "cat /o/base; echo changed > /o/base; echo new > /o/new; cat /o/base";
    let out = keep(&w, &["--name", "ov", "-v", &o], script);
    out.ok();
    assert_eq!(out.stdout, "base\nchanged\n");
    assert_eq!(entries(&lower), ["base"]);
    assert_eq!(
        std::fs::read_to_string(lower.join("base")).unwrap(),
        "base\n"
    );
    let out = w.b(&["start", "-a", "ov"]);
    out.ok();
    assert_eq!(
        out.stdout, "base\nchanged\n",
        "a new start sees the source afresh"
    );
    w.b(&["rm", "ov"]).ok();
    // U: the source is chowned to the container's user, never what a link in it names.
    let hostfile = w.dir.join("hostfile");
    std::fs::write(&hostfile, "x").unwrap();
    sh(
        &w,
        &["-v", "owned:/o"],
        &format!("mkdir /o/sub; ln -s {} /o/sub/link", hostfile.display()),
    )
    .ok();
    let out = sh(
        &w,
        &["-v", "owned:/o:U", "--user", "33:34"],
        "touch /o/f && id -u",
    );
    out.ok();
    for p in [data(&w, "owned"), data(&w, "owned").join("sub")] {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!((m.uid(), m.gid()), (33, 34));
    }
    let m = std::fs::symlink_metadata(data(&w, "owned").join("sub/link")).unwrap();
    assert_eq!(m.uid(), 33, "the link itself");
    assert_eq!(
        std::fs::metadata(&hostfile).unwrap().uid(),
        0,
        "not its target"
    );
    // Plain inspect finds a volume when no container or image has the name.
    let out = w.b(&["inspect", "--format", "{{.Name}} {{.Driver}}", "owned"]);
    out.ok();
    assert_eq!(out.stdout, "owned local\n");
    one_line(
        &w.b(&["inspect", "--type", "volume", "nope"]),
        1,
        "No such volume: nope",
    );
    w.finish_with_volumes();
}

/// `U` chowns what the volume holds, never what a container's link in it names: a link
/// to a host file and one to a host directory are changed themselves, their targets not.
#[test]
fn chown_never_follows_a_containers_link_out_of_the_volume() {
    use std::os::unix::fs::MetadataExt;
    let w = world("chownlink");
    let target = w.dir.join("host-target");
    std::fs::create_dir_all(target.join("sub")).unwrap();
    std::fs::write(target.join("file"), "host\n").unwrap();
    let t = target.to_str().unwrap();
    sh(
        &w,
        &["-v", "cv:/d"],
        &format!("ln -s {t}/file /d/flink; ln -s {t} /d/dlink; mkdir /d/own; echo x > /d/own/f"),
    )
    .ok();
    sh(&w, &["-v", "cv:/d:U", "--user", "33:34"], "true").ok();
    for p in [target.clone(), target.join("file"), target.join("sub")] {
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{} chowned", p.display());
    }
    let m = std::fs::metadata(data(&w, "cv").join("own/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (33, 34));
    let m = std::fs::symlink_metadata(data(&w, "cv").join("flink")).unwrap();
    assert_eq!((m.uid(), m.gid()), (33, 34));
    w.finish_with_volumes();
}

/// Docker's longest volume name (255 characters) makes a volume and removes it, leaving
/// nothing behind.
#[test]
fn the_longest_volume_name_works() {
    let w = world("longname");
    let name = format!("v{}", "x".repeat(254));
    let out = w.b(&["volume", "create", &name]);
    out.ok();
    assert_eq!(out.stdout.trim(), name);
    sh(&w, &["-v", &format!("{name}:/d")], "echo in > /d/f").ok();
    assert_eq!(
        std::fs::read_to_string(data(&w, &name).join("f")).unwrap(),
        "in\n"
    );
    w.b(&["volume", "rm", &name]).ok();
    assert!(w.volumes().is_empty());
    w.finish_with_volumes();
}

/// Two `O` mounts each get their own upper layer, whatever their destinations look like
/// (`/a_` and `/a/5f` once shared one).
#[test]
fn overlay_mounts_never_share_an_upper_layer() {
    let w = world("ovnames");
    let (l1, l2) = (w.dir.join("l1"), w.dir.join("l2"));
    std::fs::create_dir_all(&l1).unwrap();
    std::fs::create_dir_all(&l2).unwrap();
    let out = sh(
        &w,
        &[
            "-v",
            &format!("{}:/a_:O", l1.display()),
            "-v",
            &format!("{}:/a/5f:O", l2.display()),
        ],
        "echo one > /a_/x; test -e /a/5f/x && echo shared; true",
    );
    out.ok();
    assert_eq!(out.stdout, "");
    assert!(entries(&l1).is_empty() && entries(&l2).is_empty());
    w.finish_with_volumes();
}

/// A volume whose removal fails (an immutable file in it) says so in one line and never
/// stands in the way of removing the next one.
#[test]
fn a_failed_removal_never_blocks_the_next() {
    let w = world("stuckrm");
    w.b(&["volume", "create", "stuck"]).ok();
    w.b(&["volume", "create", "other"]).ok();
    let f = data(&w, "stuck").join("f");
    std::fs::write(&f, "x").unwrap();
    let chattr = |flag: &str, p: &Path| {
        let st = Command::new("chattr").arg(flag).arg(p).status().unwrap();
        assert!(st.success(), "chattr {flag} {}", p.display());
    };
    chattr("+i", &f);
    let out = w.b(&["volume", "rm", "stuck"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    w.b(&["volume", "rm", "other"]).ok();
    // Wherever the stuck one was left, it can be freed and removed by hand.
    for e in std::fs::read_dir(w.root.join("volumes")).unwrap().flatten() {
        let p = e.path().join("_data/f");
        if p.exists() {
            chattr("-i", &p);
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
    w.finish_with_volumes();
}

/// Docker's local driver wants names of two characters at least: `a` is refused by
/// `volume create` (1) and `run -v` (125), in one line, leaving nothing.
#[test]
fn one_character_volume_names_are_refused() {
    let w = world("shortname");
    one_line(
        &w.b(&["volume", "create", "a"]),
        1,
        "volume name is too short",
    );
    one_line(
        &sh(&w, &["-v", "a:/d"], "true"),
        125,
        "volume name is too short",
    );
    assert!(w.volumes().is_empty());
    w.b(&["volume", "create", "ab"]).ok();
    assert_eq!(w.volumes(), ["ab"]);
    w.finish_with_volumes();
}

/// berth's own state cannot be bound in through a symlink to it either (with `U` that
/// handed the whole store to the container's user), nor the host's `/` read-write.
#[test]
fn a_symlink_never_binds_berths_state_in() {
    let w = world("statelink");
    std::fs::create_dir_all(&w.root).unwrap();
    let link = w.dir.join("to-state");
    std::os::unix::fs::symlink(&w.root, &link).unwrap();
    let out = sh(
        &w,
        &["-v", &format!("{}:/s:U", link.display()), "--user", "33:34"],
        "true",
    );
    one_line(&out, 125, "berth's own state");
    let rootlink = w.dir.join("to-root");
    std::os::unix::fs::symlink("/", &rootlink).unwrap();
    let out = sh(&w, &["-v", &format!("{}:/h", rootlink.display())], "true");
    one_line(&out, 125, "add :ro");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&w.root).unwrap().uid(), 0);
    w.finish_with_volumes();
}
