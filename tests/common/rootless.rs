//! The rootless network tests' shared world (tests/people_rootless_net.rs,
//! tests/people_netlink.rs): each test re-execs itself under `unshare --net --mount`,
//! where a private network namespace stands for the host (an address 10.99.0.1/24 and a
//! default route through a peer namespace, 10.99.0.2, that stands for the internet and
//! answers on 10.98.0.1), and in the private mount namespace a character device 10:200 of
//! mode 0666 is bind-mounted over /dev/net/tun; an ordinary user made by the test runs
//! its own copy of berth.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use std::time::{Duration, Instant};

use super::people::{TestUser, World};
use super::Out;

pub const INNER: &str = "BERTH_RLNET_TEST_INNER";

pub use super::netns::sh;

/// Runs the test `name` again inside new network and mount namespaces, where `f` runs
/// with the host's stand-in set up (see the module's note).
pub fn in_netns(name: &str, tun_mode: u32, f: impl FnOnce(&Host)) {
    in_netns_routed(name, tun_mode, true, f)
}

/// [`in_netns`], the host's stand-in with (`route`) or without a default route.
pub fn in_netns_routed(name: &str, tun_mode: u32, route: bool, f: impl FnOnce(&Host)) {
    if std::env::var_os(INNER).is_some() {
        let host = Host::new(tun_mode, route);
        f(&host);
        return;
    }
    super::netns::rerun_in(
        name,
        &["--net", "--mount", "--propagation", "private"],
        INNER,
    );
}

/// The host's stand-in: its peer (the internet) and the tun device it offers.
pub struct Host {
    pub peer: std::process::Child,
    pub dir: PathBuf,
}

impl Host {
    pub fn new(tun_mode: u32, route: bool) -> Host {
        sh("ip link set lo up").ok();
        let peer = super::netns::peer();
        let pid = peer.id();
        sh(&format!(
            "ip link add pn0 type veth peer name pn1 netns {pid} && ip addr add 10.99.0.1/24 dev pn0 && ip link set pn0 up && {route} nsenter --net=/proc/{pid}/ns/net sh -c 'ip link set lo up; ip addr add 10.99.0.2/24 dev pn1; ip addr add 10.98.0.1/32 dev lo; ip link set pn1 up; ip route add default via 10.99.0.1'",
            route = if route {
                "ip route add default via 10.99.0.2 &&"
            } else {
                ""
            }
        ))
        .ok();
        let dir = std::env::temp_dir().join(format!("berth-rlnet-tun-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tun = dir.join("tun");
        let _ = std::fs::remove_file(&tun);
        sh(&format!(
            "mknod {t} c 10 200 && chmod {tun_mode:o} {t} && mount --bind {t} /dev/net/tun",
            t = tun.display()
        ))
        .ok();
        Host { peer, dir }
    }

    pub fn peer_pid(&self) -> u32 {
        self.peer.id()
    }

    /// Runs `script` in the internet's namespace.
    pub fn on_peer(&self, script: &str) -> Out {
        sh(&format!(
            "nsenter --net=/proc/{}/ns/net sh -c '{script}'",
            self.peer_pid()
        ))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.peer.kill();
        let _ = self.peer.wait();
        let _ = sh("umount /dev/net/tun");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test's user, its copy of berth and its world (roots and a busybox rootfs it owns).
pub struct U {
    pub w: World,
    pub u: TestUser,
    pub berth: PathBuf,
}

impl U {
    pub fn new(name: &str) -> U {
        let w = World::new(name);
        let bin = w.rootfs.join("bin");
        for a in ["httpd", "wget", "timeout"] {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(a));
        }
        std::fs::create_dir_all(w.rootfs.join("www")).unwrap();
        std::fs::create_dir_all(w.rootfs.join("usr")).unwrap();
        std::fs::write(w.rootfs.join("www/index.html"), "hello from rootless\n").unwrap();
        // The host's /usr is mounted in where a test needs perl.
        for l in ["lib", "lib64"] {
            let _ = std::os::unix::fs::symlink(format!("usr/{l}"), w.rootfs.join(l));
        }
        let berth = w.dir.join("berth");
        std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
        std::fs::create_dir_all(w.dir.join("xdg")).unwrap();
        let u = TestUser::create("berthrn");
        u.own(&w.dir);
        U { w, u, berth }
    }

    pub fn b(&self, args: &[&str]) -> Out {
        let dirs = (
            self.w.root.as_path(),
            self.w.runroot.as_path(),
            self.w.dir.as_path(),
        );
        self.u
            .berth(&self.berth, dirs, args, Duration::from_secs(120))
    }

    /// `run -d FLAGS --rootfs ROOTFS CMD`: the full id.
    pub fn run_d(&self, flags: &[&str], cmd: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&["--rootfs", self.w.rootfs()]);
        a.extend_from_slice(cmd);
        let out = self.b(&a);
        out.ok();
        out.stdout.trim().to_string()
    }

    pub fn run(&self, flags: &[&str], cmd: &[&str]) -> Out {
        let mut a = vec!["run"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&["--rootfs", self.w.rootfs()]);
        a.extend_from_slice(cmd);
        self.b(&a)
    }

    /// The pids of the user's processes now.
    pub fn processes(&self) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(String::from))
                .unwrap_or_default();
            if uid == self.u.uid.to_string() {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                out.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
            }
        }
        out
    }

    pub fn pastas(&self) -> Vec<(i32, String)> {
        self.processes()
            .into_iter()
            .filter(|(_, c)| c.contains("pasta") || c.contains("passt"))
            .collect()
    }

    /// The user's port forwarders (children of monitors, named berth-ports).
    pub fn forwarders(&self) -> Vec<i32> {
        self.processes()
            .into_iter()
            .map(|(pid, _)| pid)
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|n| n.trim() == "berth-ports")
            })
            .collect()
    }

    /// The monitor of `id` serves its published ports through exactly one forwarder child
    /// and stays single-threaded itself (it clones for probes and restarts). Returns the
    /// forwarder's pid.
    pub fn check_forwarder(&self, id: &str) -> i32 {
        let monitor = self.w.monitor_pid(id);
        let status = std::fs::read_to_string(format!("/proc/{monitor}/status")).unwrap();
        assert!(
            status.lines().any(|l| l == "Threads:\t1"),
            "the monitor is threaded: {status}"
        );
        let mine: Vec<i32> = self
            .forwarders()
            .into_iter()
            .filter(|pid| ppid(*pid) == Some(monitor))
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "forwarders of {monitor}: {:?}",
            self.forwarders()
        );
        mine[0]
    }

    /// Waits (bounded) until process `pid` is gone, reaping it if it is ours (a monitor
    /// killed with -9 leaves its forwarder to the nearest subreaper).
    pub fn until_gone(&self, what: &str, pid: i32) {
        until(what, || {
            super::reap(pid);
            std::fs::metadata(format!("/proc/{pid}")).is_err()
        });
    }

    pub fn ipam(&self) -> serde_json::Value {
        std::fs::read(self.w.root.join("networks/ipam.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::json!({"endpoints": []}))
    }

    /// Removes every container, then checks nothing is left: no process of the user (no
    /// pasta), no IPAM entry, no container state or mount.
    pub fn finish(self) {
        let ids: Vec<String> = self
            .b(&["ps", "-a", "-q", "--no-trunc"])
            .stdout
            .lines()
            .map(String::from)
            .collect();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(ids.iter().map(String::as_str));
            self.b(&a).ok();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.processes().is_empty() {
            assert!(
                Instant::now() < deadline,
                "processes of the user left: {:?}",
                self.processes()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            self.ipam()["endpoints"],
            serde_json::json!([]),
            "IPAM entries left"
        );
        assert!(
            !self.w.runroot.join("rootless-netns").exists(),
            "the rootless network namespace's state left"
        );
        super::people::audit(&self.w.dir, &self.w.root, &self.w.runroot, &ids);
        let _ = std::fs::remove_dir_all(&self.w.dir);
    }
}

impl Drop for U {
    /// A failed test still ends the user's processes (by pid: they are this test's), and
    /// waits (bounded) for them to be gone, so that the user can be deleted after.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (pid, _) in self.processes() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let left = self.processes();
                if left.is_empty() {
                    break;
                }
                for (pid, _) in left {
                    super::reap(pid);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

pub fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

pub fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until each of `addrs` answers HTTP, then checks each answers `body`.
pub fn serves(addrs: &[String], body: &str) {
    for a in addrs {
        until(&format!("httpd answers at {a}"), || http_get(a).is_some());
        assert_eq!(http_get(a).unwrap(), body, "{a}");
    }
}

/// `GET /` over TCP from this namespace; the body (None when it does not answer).
pub fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    let (head, body) = r.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

pub fn httpd_cmd() -> Vec<&'static str> {
    vec!["httpd", "-f", "-p", "80", "-h", "/www"]
}

/// Sends `msg` from `s` to `to` until an answer comes (bounded): the answer.
pub fn udp_ask(s: &std::net::UdpSocket, to: &str, msg: &str) -> String {
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = s.send_to(msg.as_bytes(), to);
        let mut buf = [0u8; 256];
        if let Ok(n) = s.recv(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(Instant::now() < deadline, "no UDP answer from {to}");
    }
}
