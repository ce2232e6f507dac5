//! cgroups on this host's layout: limits written before the init runs, device rules,
//! update, pause/resume, ps, events, and nothing left behind at delete.

mod common;
use common::*;
use serde_json::json;

fn with_mknod(v: &mut serde_json::Value) {
    let caps = json!(["CAP_MKNOD", "CAP_KILL"]);
    v["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
}

#[test]
fn device_rules_are_enforced() {
    let c = Ctx::new("devrules");
    let script = "mknod /dev/k c 10 229 && echo mknod-ok; (true </dev/k) 2>/dev/null && echo open-ok || echo open-denied; \
        true </dev/null && echo null-ok";
    // Deny-all plus the defaults (what podman sends): mknod yes, open no.
    let out = c.probe("deny", &["sh", "-c", script], with_mknod);
    assert!(
        out.contains("mknod-ok") && out.contains("open-denied") && out.contains("null-ok"),
        "{out}"
    );
    // An explicit allow after the deny-all opens it.
    let out = c.probe("allow", &["sh", "-c", script], |v| {
        with_mknod(v);
        v["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
        ]);
    });
    assert!(out.contains("open-ok"), "{out}");
    c.finish();
}
