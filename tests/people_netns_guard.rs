//! The suite's guard: a rootful container without `--network` is on the default bridge,
//! so the people tests run in a network namespace of their own (`make test`:
//! tools/in-netns.sh) and refuse to start in the machine's, loudly, before making anything.

mod common;

use std::process::Command;
use std::time::Duration;

use common::run_with_timeout;

const PROBE: &str = "BERTH_NETNS_GUARD_PROBE";

/// Run by the test below only (as its probe): a world where the namespace is said to be
/// the machine's.
#[test]
fn probe_a_world_in_the_machines_network_namespace() {
    if std::env::var_os(PROBE).is_none() {
        return;
    }
    let w = common::people::World::new("guardprobe");
    // Not reached: the guard panics first.
    println!("world made at {}", w.dir.display());
}

#[test]
fn people_tests_refuse_the_machines_network_namespace() {
    // This very test runs where the suite does: a private namespace.
    common::private_netns();
    let here = std::fs::read_link("/proc/self/ns/net").unwrap();
    // The probe test of this binary, alone, told it is the probe.
    let probe = || {
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.args([
            "probe_a_world_in_the_machines_network_namespace",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(PROBE, "1");
        c
    };
    let out = run_with_timeout(
        probe().env("BERTH_HOST_NETNS", &here),
        Duration::from_secs(120),
    );
    assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "must not touch this machine's network: run them in a private network namespace"
        ) && out.stderr.contains("tools/in-netns.sh"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("world made at"), "{}", out.stdout);
    // Inside the wrapper's namespace (or a deeper one) the same world is allowed.
    let out = run_with_timeout(&mut probe(), Duration::from_secs(120));
    assert!(
        out.code == 0 && out.stdout.contains("world made at"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let dir = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("world made at ").map(|(_, d)| d))
        .unwrap()
        .to_string();
    let _ = std::fs::remove_dir_all(dir);
}
