//! The container record's layout for cheap listings: the OCI spec lives in `spec.json`
//! beside `config.json`, so `ps` and `inspect` parse only what they show; records written
//! before the split (the spec inside config.json) still list, inspect, start and, once
//! saved again, move to the new layout.

mod common;

use std::path::PathBuf;

use common::people::World;
use serde_json::Value;

fn record_dir(w: &World, id: &str) -> PathBuf {
    w.root.join("containers").join(id)
}

fn read(p: &PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn spec_apart_and_old_records_still_work() {
    let w = World::new("specfile");
    let id = w.b(&[
        "create",
        "--name",
        "fresh",
        "--rootfs",
        w.rootfs(),
        "echo",
        "hi",
    ]);
    id.ok();
    let id = id.stdout.trim().to_string();
    let d = record_dir(&w, &id);
    let cfg = read(&d.join("config.json"));
    assert!(cfg.get("Spec").is_none(), "config.json keeps no spec");
    let spec = read(&d.join("spec.json"));
    assert_eq!(spec["process"]["args"], serde_json::json!(["echo", "hi"]));
    let out = w.b(&["start", "-a", "fresh"]);
    out.ok();
    assert_eq!(out.stdout, "hi\n");

    // An old record: the spec inside config.json, no spec.json.
    let old = w.b(&[
        "create",
        "--name",
        "old",
        "--rootfs",
        w.rootfs(),
        "echo",
        "old",
    ]);
    old.ok();
    let old = old.stdout.trim().to_string();
    let d = record_dir(&w, &old);
    let mut cfg = read(&d.join("config.json"));
    cfg["Spec"] = read(&d.join("spec.json"));
    std::fs::write(
        d.join("config.json"),
        serde_json::to_vec_pretty(&cfg).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(d.join("spec.json")).unwrap();
    let ps = w.b(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    ps.ok();
    assert!(ps.stdout.contains("old Created"), "{}", ps.stdout);
    assert_eq!(w.inspect("old")["Path"], "echo");
    let out = w.b(&["start", "-a", "old"]);
    out.ok();
    assert_eq!(out.stdout, "old\n");
    // Saved again (a rename rewrites the record): the spec moves to spec.json.
    w.b(&["rename", "old", "renamed"]).ok();
    assert!(read(&d.join("config.json")).get("Spec").is_none());
    assert_eq!(read(&d.join("spec.json"))["process"]["args"][1], "old");
    let out = w.b(&["start", "-a", "renamed"]);
    out.ok();
    assert_eq!(out.stdout, "old\n");
    // A listing never loses the spec of what it lists (it saves nothing without it).
    w.b(&["ps", "-a"]).ok();
    w.b(&["inspect", "renamed", "fresh"]).ok();
    assert!(d.join("spec.json").exists());
    assert!(record_dir(&w, &id).join("spec.json").exists());
    w.b(&["rm", "fresh", "renamed"]).ok();
    assert!(!d.exists());
    w.finish();
}
