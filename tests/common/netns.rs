//! The network tests' shared world: each test re-execs itself inside a private network
//! namespace standing for the host, with the people face's [`World`], a busybox root that
//! serves `/www` (an `ip` CGI script says who asked), and peers (other hosts' network
//! namespaces, joined by a veth pair) that go with it.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::people::World;
use super::{run_with_timeout, Out};

const INNER: &str = "BERTH_NETNS_TEST_INNER";

/// Whether this is a test re-executed by [`in_netns`] in a network namespace of its own.
pub fn inside() -> bool {
    std::env::var_os(INNER).is_some()
}

/// Runs the test `name` again inside a new network namespace (with `lo` up), where `f`
/// runs; outside, checks that it ran there and passed.
pub fn in_netns(name: &str, f: impl FnOnce()) {
    if inside() {
        sh("ip link set lo up").ok();
        f();
        return;
    }
    rerun_in(name, &["--net"], INNER);
}

/// Runs the test `name` of this binary again under `unshare UNSHARE...`, with `inner`
/// set in its environment (so that it knows it is the inner run), and checks it passed.
pub fn rerun_in(name: &str, unshare: &[&str], inner: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = run_with_timeout(
        Command::new("unshare")
            .args(unshare)
            .arg("--")
            .arg(exe)
            .args([name, "--exact", "--test-threads=1", "--nocapture"])
            .env(inner, "1"),
        Duration::from_secs(600),
    );
    assert!(
        out.code == 0 && out.stdout.contains("1 passed"),
        "{name} in its namespaces failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

pub fn sh(script: &str) -> Out {
    run_with_timeout(
        Command::new("sh").arg("-c").arg(script),
        Duration::from_secs(60),
    )
}

/// The host's busybox wget (URLs quoted: IPv6 ones have brackets).
pub fn wget(url: &str) -> Out {
    sh(&format!("timeout 10 busybox wget -qO- '{url}'"))
}

/// Another host's network namespace: a sleeping process's (the caller ends and reaps
/// it), returned once the namespace is its own.
pub fn peer() -> Child {
    let child = Command::new("unshare")
        .args(["--net", "--", "sleep", "600"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
        == std::fs::read_link("/proc/self/ns/net").ok()
    {
        assert!(Instant::now() < deadline, "peer namespace never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// A test's world, what it serves, and the other hosts' processes.
pub struct NetWorld {
    pub w: World,
    pub peers: Vec<Child>,
}

impl std::ops::Deref for NetWorld {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

impl NetWorld {
    /// A world whose root has busybox `applets` linked, `index` as `/www/index.html` and
    /// the `ip` CGI script.
    pub fn with(name: &str, applets: &[&str], index: &str) -> NetWorld {
        let w = World::new(name)
            .deadline(Duration::from_secs(120))
            .patience(Duration::from_secs(30), Duration::from_millis(50));
        let rootfs = &w.rootfs;
        std::fs::create_dir_all(rootfs.join("www/cgi-bin")).unwrap();
        for a in applets {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
        }
        std::fs::write(rootfs.join("www/index.html"), index).unwrap();
        let ip = rootfs.join("www/cgi-bin/ip");
        std::fs::write(
            &ip,
            "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"$REMOTE_ADDR\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ip, std::fs::Permissions::from_mode(0o755)).unwrap();
        NetWorld {
            w,
            peers: Vec::new(),
        }
    }

    pub fn httpd(&self, flags: &[&str]) -> String {
        self.run_d(flags, &["httpd", "-f", "-p", "80", "-h", "/www"])
    }

    /// Another host's network namespace (a [`peer`], ended with the world): its pid. The
    /// caller joins it with a veth pair.
    pub fn spawn_peer(&mut self) -> i32 {
        let child = peer();
        let pid = child.id() as i32;
        self.peers.push(child);
        pid
    }

    /// Runs `script` in the peer's namespace.
    pub fn on_peer(&self, pid: i32, script: &str) -> Out {
        sh(&format!(
            "nsenter --net=/proc/{pid}/ns/net sh -c '{script}'"
        ))
    }

    /// Removes every container (and the networks given), ends the peers (the last
    /// started first), then checks with `leftovers` and the world's audit that nothing
    /// is left.
    pub fn finish_with(mut self, networks: &[&str], leftovers: impl FnOnce(&Path)) {
        let ids = self.all_ids();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(ids.iter().map(String::as_str));
            self.b(&a).ok();
        }
        for n in networks {
            self.b(&["network", "rm", n]).ok();
        }
        for mut p in std::mem::take(&mut self.peers).into_iter().rev() {
            let _ = p.kill();
            let _ = p.wait();
        }
        leftovers(&self.root);
        self.audit(&ids);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for NetWorld {
    /// A failed test still ends what it started: its containers (whose monitors would
    /// outlive the namespace's first process) and its peers.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let ids = self.b(&["ps", "-a", "-q", "--no-trunc"]).stdout;
        let mut a = vec!["rm", "-f"];
        a.extend(ids.lines());
        if a.len() > 2 {
            let _ = self.b(&a);
        }
        for p in &mut self.peers {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

/// The namespace has only `lo` and a peer's veth (named `pn0`), no nftables table, and
/// `root`'s IPAM record no endpoint.
pub fn no_links_tables_or_endpoints(root: &Path) {
    no_links_tables_or_endpoints_but(root, "pn0");
}

/// [`no_links_tables_or_endpoints`] where the peer's veth is named `veth*`.
/// A `--rm` container's release and a bridge's deletion finish in the background (the
/// kernel makes a link's deleter wait ~20-50 ms): all must be gone within a bounded time.
pub fn no_links_tables_or_endpoints_but(root: &Path, veth: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let links = sh("ip -o link show").stdout;
        let mut left: Vec<String> = links
            .lines()
            .filter(|l| {
                let name = l.split(':').nth(1).unwrap_or("").trim();
                name != "lo" && !name.starts_with(veth)
            })
            .map(|l| format!("link {l}"))
            .collect();
        let tables = sh("nft list tables").stdout;
        if !tables.trim().is_empty() {
            left.push(format!("nftables {tables}"));
        }
        let eps = super::ipam_endpoints(root);
        if !eps.is_null() && eps != serde_json::json!([]) {
            left.push(format!("IPAM entries {eps}"));
        }
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
