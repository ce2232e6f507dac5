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
