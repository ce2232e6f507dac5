//! User namespaces: id maps (single and multi-range), exec into them, idmapped mounts, and
//! clear errors for bad maps with nothing left behind.

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;

fn map(c: u32, h: u32, n: u32) -> Value {
    json!({"containerID": c, "hostID": h, "size": n})
}

fn with_userns(v: &mut Value, uid: Value, gid: Value) {
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    v["linux"]["uidMappings"] = uid;
    v["linux"]["gidMappings"] = gid;
}

#[test]
fn maps_are_written_and_exec_joins_the_user_namespace() {
    let c = Ctx::new("userns");
    let out = c.probe(
        "multi",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox",
        ],
        |v| {
            with_userns(
                v,
                json!([map(0, 100000, 1000), map(1000, 300000, 1000)]),
                json!([map(0, 100000, 65536)]),
            )
        },
    );
    let words: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(words[0], ["0", "100000", "1000"], "{out}");
    assert_eq!(words[1], ["1000", "300000", "1000"], "{out}");
    assert_eq!(words[2], ["0", "100000", "65536"], "{out}");
    assert_eq!(words[3], ["0"], "{out}");
    // The rootfs belongs to host root, which is not mapped: the overflow uid.
    assert_eq!(words[4], ["65534"], "{out}");

    let id = c.id("exec");
    let mut b = c.bundle_for(&id, &["sleep", "1000"]);
    with_userns(
        &mut b.config,
        json!([map(0, 200000, 65536)]),
        json!([map(0, 200000, 65536)]),
    );
    let pid = c.create(&b, &id);
    c.rt(&["start", &id]).ok();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("200000")),
        "{status}"
    );
    let out = c
        .rt(&[
            "exec",
            &id,
            "sh",
            "-c",
            "id -u; readlink /proc/self/ns/user",
        ])
        .ok()
        .stdout
        .clone();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(
        lines[1],
        std::fs::read_link(format!("/proc/{pid}/ns/user"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    let v = c
        .rt(&["exec", "--user", "1000", &id, "/bin/testinit"])
        .ok()
        .json();
    assert_eq!(v["uid"][0], 1000);
    c.finish();
}

#[test]
fn idmapped_mounts() {
    let c = Ctx::new("idmap");
    let vol = c.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("rootfile"), "r").unwrap();
    std::fs::write(vol.join("userfile"), "u").unwrap();
    nix::unistd::chown(&vol.join("userfile"), Some(1000.into()), Some(1000.into())).unwrap();
    let vol_s = vol.to_str().unwrap().to_string();
    let stat = "stat -c %u /vol/rootfile /vol/userfile";

    // In a user namespace, `idmap` with the container's maps: host files keep their owners
    // as the container sees them, and what container root writes belongs to host root.
    let out = c.probe(
        "ns",
        &["sh", "-c", &format!("{stat}; echo x > /vol/written")],
        |v| {
            with_userns(v, json!([map(0, 100000, 65536)]), json!([map(0, 100000, 65536)]));
            v["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/vol", "type": "bind", "source": vol_s, "options": ["bind", "idmap"]}),
            );
        },
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "1000"]);
    assert_eq!(std::fs::metadata(vol.join("written")).unwrap().uid(), 0);
    // Without idmap the same files are unmapped in the container.
    let out = c.probe("plain", &["sh", "-c", stat], |v| {
        with_userns(
            v,
            json!([map(0, 100000, 65536)]),
            json!([map(0, 100000, 65536)]),
        );
        v["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/vol", "type": "bind", "source": vol_s, "options": ["bind"]}),
        );
    });
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["65534", "65534"]
    );
    // A mount's own maps, without a user namespace: on-disk 0 shows as 5000, 1000 as 6000.
    let out = c.probe("own", &["sh", "-c", stat], |v| {
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/vol", "type": "bind", "source": vol_s, "options": ["rbind", "idmap"],
            "uidMappings": [map(0, 5000, 1), map(1000, 6000, 1)],
            "gidMappings": [map(0, 5000, 1), map(1000, 6000, 1)]
        }));
    });
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["5000", "6000"]);

    // A submount of the volume: `idmap` maps only the top mount, `ridmap` the submounts too.
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
    std::fs::write(sub.join("subfile"), "s").unwrap();
    let mut seen = Vec::new();
    for opt in ["idmap", "ridmap"] {
        let out = c.probe(opt, &["stat", "-c", "%u", "/vol/sub/subfile"], |v| {
            v["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/vol", "type": "bind", "source": vol_s, "options": ["rbind", opt],
                "uidMappings": [map(0, 5000, 1)], "gidMappings": [map(0, 5000, 1)]
            }));
        });
        seen.push(out.trim().to_string());
    }
    nix::mount::umount2(&sub, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(seen, ["0", "5000"], "idmap, ridmap on a submount");
    c.finish();
}

#[test]
fn bad_maps_are_clear_errors_and_leave_nothing() {
    let c = Ctx::new("usernsbad");
    type Tweak = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Tweak, &str)> = vec![
        (
            "overlap",
            Box::new(|v| {
                with_userns(
                    v,
                    json!([map(0, 100000, 1000), map(500, 200000, 10)]),
                    json!([map(0, 100000, 1000)]),
                )
            }),
            "linux.uidMappings[1]",
        ),
        (
            "empty",
            Box::new(|v| with_userns(v, json!([map(0, 100000, 0)]), json!([map(0, 100000, 1)]))),
            "linux.uidMappings[0].size",
        ),
        (
            "nouserns",
            Box::new(|v| v["linux"]["uidMappings"] = json!([map(0, 100000, 1)])),
            "linux.uidMappings",
        ),
        (
            "nomaps",
            Box::new(|v| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
            "linux.uidMappings",
        ),
        (
            "idmap-tmpfs",
            Box::new(|v| {
                v["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
                )
            }),
            "only supported on bind mounts",
        ),
        (
            "idmap-nomaps",
            Box::new(|v| {
                v["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]}),
                )
            }),
            "needs uidMappings",
        ),
    ];
    for (name, tweak, phrase) in cases {
        let id = c.id(name);
        let mut b = c.bundle_for(&id, &["true"]);
        tweak(&mut b.config);
        b.write();
        let out = c.rt(&["create", "--bundle", b.path(), &id]);
        out.fails_with(phrase);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{name}: {}",
            out.stderr
        );
        c.rt(&["state", &id]).fails_with("does not exist");
        c.audit();
    }
    c.finish();
}
