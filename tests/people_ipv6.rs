//! IPv6 on bridge networks (`network create --ipv6`), driven through the built binary with
//! real traffic inside a private network namespace standing for the host (the test re-execs
//! itself under `unshare --net`); a second namespace joined by a veth pair stands for
//! another host. After each test: no container, no berth link or address, no nftables
//! table, no IPAM entry.

mod common;

use std::process::Command;

use common::netns::{no_links_tables_or_endpoints, sh, wget, NetWorld as Net};
use common::people::World;
use common::Out;

/// Runs the test `name` again inside a new network namespace; IPv6 is expected of this
/// kernel: its absence fails the test, saying why.
fn in_netns(name: &str, f: impl FnOnce()) {
    assert!(
        std::path::Path::new("/proc/sys/net/ipv6").exists(),
        "this kernel has no IPv6 (/proc/sys/net/ipv6 is missing): these tests need it"
    );
    common::netns::in_netns(name, f)
}

impl Net {
    fn new(name: &str) -> Net {
        Net::with(
            name,
            &["httpd", "wget", "ping", "timeout"],
            "hello over v6\n",
        )
    }

    /// Another host joined by a veth pair: ours fd99::1/64, its fd99::2/64; it serves the
    /// world's /www (the `ip` CGI says who asked) on [::]:8080.
    fn peer(&mut self) -> i32 {
        let pid = self.spawn_peer();
        sh(&format!(
            "ip link add pn0 type veth peer name pn1 netns {pid} && ip addr add fd99::1/64 dev pn0 nodad && ip link set pn0 up && nsenter --net=/proc/{pid}/ns/net sh -c 'ip link set lo up; ip addr add fd99::2/64 dev pn1 nodad; ip link set pn1 up'"
        ))
        .ok();
        let www = self.rootfs.join("www");
        let httpd = Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["busybox", "httpd", "-f", "-p", "[::]:8080", "-h"])
            .arg(&www)
            .spawn()
            .unwrap();
        self.peers.push(httpd);
        pid
    }

    /// The network's IPv6 subnet and gateway, as `network inspect` gives them.
    fn subnet6(&self, net: &str) -> (String, String) {
        let out = self.b(&["network", "inspect", net]);
        out.ok();
        let v = out.json()[0].clone();
        assert_eq!(v["EnableIPv6"], true, "{v}");
        let cfg = v["IPAM"]["Config"].as_array().unwrap().clone();
        assert_eq!(cfg.len(), 2, "an IPv4 and an IPv6 subnet: {cfg:?}");
        let c6 = cfg
            .iter()
            .find(|c| c["Subnet"].as_str().unwrap().contains(':'))
            .unwrap();
        (
            c6["Subnet"].as_str().unwrap().to_string(),
            c6["Gateway"].as_str().unwrap().to_string(),
        )
    }

    fn finish(self, networks: &[&str]) {
        self.finish_with(networks, no_network_leftovers)
    }
}

/// The namespace is as it was: only `lo` (and a peer's veth) with only their own
/// addresses, no nftables table, no IPAM endpoint.
fn no_network_leftovers(root: &std::path::Path) {
    no_links_tables_or_endpoints(root);
    let addrs = sh("ip -o addr show").stdout;
    for l in addrs.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let ok = match f[1] {
            "lo" => f[3] == "127.0.0.1/8" || f[3] == "::1/128",
            _ => f[3] == "fd99::1/64" || f[3].starts_with("fe80::"),
        };
        assert!(ok, "address left behind: {l}");
    }
}

/// One line on stderr, the exit code, and nothing made.
fn refused(w: &World, out: &Out, code: i32, phrase: &str) {
    assert_eq!(out.code, code, "{phrase}: {}", out.stderr);
    assert!(
        out.stderr.contains(phrase),
        "expected {phrase:?}: {}",
        out.stderr
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert_eq!(w.b(&["ps", "-a", "-q"]).stdout, "", "a container was left");
    no_network_leftovers(&w.root);
}

/// `fdXX:...::/64` with `::N` put in the host part.
fn host_in(subnet: &str, n: u32) -> String {
    let base: std::net::Ipv6Addr = subnet.split('/').next().unwrap().parse().unwrap();
    std::net::Ipv6Addr::from(u128::from(base) + n as u128).to_string()
}

#[test]
fn containers_talk_over_ipv6_by_address_and_name() {
    in_netns("containers_talk_over_ipv6_by_address_and_name", || {
        let mut w = Net::new("v6names");
        let peer = w.peer();
        w.b(&["network", "create", "--ipv6", "v6net"]).ok();
        let (subnet, gw) = w.subnet6("v6net");
        assert!(
            subnet.starts_with("fd") && subnet.ends_with("/64"),
            "a ULA /64: {subnet}"
        );
        assert_eq!(gw, host_in(&subnet, 1));
        let want = host_in(&subnet, 0x10);
        let srv = w.httpd(&["--name", "srv", "--network", "v6net", "--ip6", &want]);
        w.httpd(&["--name", "cli", "--network", "v6net"]);

        // inspect: both families.
        let v = w.inspect(&srv);
        let n = &v["NetworkSettings"]["Networks"]["v6net"];
        assert_eq!(n["GlobalIPv6Address"], want.as_str(), "{n}");
        assert_eq!(n["GlobalIPv6PrefixLen"], 64);
        assert_eq!(n["IPv6Gateway"], gw.as_str());
        assert_eq!(n["IPAMConfig"]["IPv6Address"], want.as_str());
        let ip4 = n["IPAddress"].as_str().unwrap().to_string();
        assert!(!ip4.is_empty(), "dual-stack: {n}");
        let cli6 = w.inspect("cli")["NetworkSettings"]["Networks"]["v6net"]["GlobalIPv6Address"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(cli6, host_in(&subnet, 2), "the lowest free address");
        let net = w.b(&["network", "inspect", "v6net"]).json()[0].clone();
        let c = &net["Containers"][&srv];
        assert_eq!(c["IPv6Address"], format!("{want}/64"));

        // By address: the server sees the client's own IPv6 address (no NAT inside).
        let exec = |args: &[&str]| {
            let mut a = vec!["exec", "cli", "timeout", "10"];
            a.extend_from_slice(args);
            w.b(&a)
        };
        w.until("srv answers over IPv6", || {
            exec(&["wget", "-qO-", &format!("http://[{want}]/")]).stdout == "hello over v6\n"
        });
        let out = exec(&["wget", "-qO-", &format!("http://[{want}]/cgi-bin/ip")]);
        // busybox httpd gives an IPv6 peer in brackets.
        assert_eq!(out.stdout.trim(), format!("[{cli6}]"), "{}", out.stderr);
        // By name: the hosts file has both addresses; IPv6 by name works.
        let hosts = w.b(&["exec", "cli", "cat", "/etc/hosts"]).stdout;
        assert!(
            hosts
                .lines()
                .any(|l| l.starts_with(&format!("{want}\tsrv "))),
            "{hosts}"
        );
        assert!(
            hosts
                .lines()
                .any(|l| l.starts_with(&format!("{ip4}\tsrv "))),
            "{hosts}"
        );
        let out = exec(&["ping", "-6", "-c", "1", "-W", "5", "srv"]);
        assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains(&want),
            "srv resolves to {want}: {}",
            out.stdout
        );
        let out = exec(&["wget", "-qO-", "http://srv/"]);
        assert_eq!(out.stdout, "hello over v6\n", "{}", out.stderr);

        // Outbound over IPv6: masqueraded behind the host's address, as Docker's.
        w.until("the other host's httpd answers", || {
            wget("http://[fd99::2]:8080/").code == 0
        });
        let out = exec(&["wget", "-qO-", "http://[fd99::2]:8080/cgi-bin/ip"]);
        assert_eq!(out.stdout.trim(), "[fd99::1]", "{}", out.stderr);
        let far = w.on_peer(
            peer,
            &format!("timeout 3 busybox wget -qO- http://[{want}]/"),
        );
        assert_ne!(
            far.code, 0,
            "another host reached a container's address directly"
        );

        // Networks do not reach each other over IPv6 either; two ULA /64s of one root.
        w.b(&["network", "create", "--ipv6", "other"]).ok();
        let (other, _) = w.subnet6("other");
        assert_ne!(other, subnet);
        let top48 = |s: &str| {
            let a: std::net::Ipv6Addr = s.split('/').next().unwrap().parse().unwrap();
            u128::from(a) >> 80
        };
        assert_eq!(
            top48(&other),
            top48(&subnet),
            "one /48 per root: {other} {subnet}"
        );
        let out = w.run(
            &["--rm", "--network", "other"],
            &[
                "sh",
                "-c",
                &format!("timeout 3 wget -qO- http://[{want}]/ || exit 1"),
            ],
        );
        assert_ne!(out.code, 0, "another network reached srv over IPv6");

        // The default bridge stays IPv4-only (Docker's default).
        let b = w.b(&["network", "inspect", "bridge"]).json()[0].clone();
        assert_eq!(b["EnableIPv6"], false);
        w.b(&["rm", "-f", "srv", "cli"]).ok();
        no_network_leftovers(&w.root);
        w.finish(&["v6net", "other"]);
    });
}

#[test]
fn ports_published_over_ipv6() {
    in_netns("ports_published_over_ipv6", || {
        let mut w = Net::new("v6ports");
        let peer = w.peer();
        w.b(&[
            "network",
            "create",
            "--subnet",
            "10.66.0.0/24",
            "--ipv6",
            "--subnet",
            "fd66::/64",
            "dual",
        ])
        .ok();
        let (subnet, _) = w.subnet6("dual");
        assert_eq!(subnet, "fd66::/64");
        let (p1, p2) = (free_port6(), free_port6());
        let id = w.httpd(&[
            "--name",
            "web",
            "--network",
            "dual",
            "-p",
            &format!("[::1]:{p1}:80"),
            "-p",
            &format!("{p2}:80"),
        ]);
        w.until("httpd answers on [::1]", || {
            wget(&format!("http://[::1]:{p1}/")).code == 0
        });
        w.until("the other host's httpd answers", || {
            w.on_peer(peer, "busybox wget -qO- http://[fd99::2]:8080/")
                .code
                == 0
        });
        for url in [
            format!("http://[::1]:{p1}/"),
            format!("http://[::1]:{p2}/"),
            format!("http://127.0.0.1:{p2}/"),
            format!("http://[fd99::1]:{p2}/"),
        ] {
            let out = wget(&url);
            assert_eq!(out.stdout, "hello over v6\n", "{url}: {}", out.stderr);
        }
        // From another host, through the host's IPv6 address (DNAT); the [::1] binding
        // is the host's own.
        let far = w.on_peer(
            peer,
            &format!("timeout 10 busybox wget -qO- http://[fd99::1]:{p2}/"),
        );
        assert_eq!(far.stdout, "hello over v6\n", "{}", far.stderr);
        let far = w.on_peer(
            peer,
            &format!("timeout 3 busybox wget -qO- http://[fd99::1]:{p1}/"),
        );
        assert_ne!(far.code, 0, "a [::1] binding answered another host");
        // Hairpin over IPv6.
        // The relay is the monitor's child: no thread of the monitor's, no fd of the
        // container's (its stdio is /dev/null, beyond it only the two listeners).
        let relay = relay_of(monitor_pid(&w, &id));
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{relay}/fd"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|t| t.to_string_lossy().into_owned())
            .collect();
        let null = fds.iter().filter(|t| *t == "/dev/null").count();
        let sockets = fds.iter().filter(|t| t.starts_with("socket:")).count();
        assert!(
            null == 3 && sockets == fds.len() - 3,
            "relay {relay}'s fds: {fds:?}"
        );
        let hair = w.b(&[
            "exec",
            "web",
            "timeout",
            "10",
            "wget",
            "-qO-",
            &format!("http://[fd99::1]:{p2}/"),
        ]);
        assert_eq!(hair.stdout, "hello over v6\n", "{}", hair.stderr);

        // port and inspect, as Docker prints them.
        let port = w.b(&["port", "web"]);
        port.ok();
        let lines: Vec<&str> = port.stdout.lines().collect();
        for l in [
            format!("80/tcp -> [::1]:{p1}"),
            format!("80/tcp -> 0.0.0.0:{p2}"),
            format!("80/tcp -> [::]:{p2}"),
        ] {
            assert!(lines.contains(&l.as_str()), "{l}: {lines:?}");
        }
        let ps = w.b(&["ps", "--format", "{{.Ports}}"]).stdout;
        assert!(ps.contains(&format!("[::]:{p2}->80/tcp")), "{ps}");
        let v = w.inspect(&id);
        let (s1, s2) = (p1.to_string(), p2.to_string());
        let ports = v["NetworkSettings"]["Ports"]["80/tcp"]
            .as_array()
            .unwrap()
            .clone();
        assert!(ports
            .iter()
            .any(|p| p["HostIp"] == "::" && p["HostPort"] == s2.as_str()));
        assert!(ports
            .iter()
            .any(|p| p["HostIp"] == "::1" && p["HostPort"] == s1.as_str()));

        // A taken IPv6 port fails the start, naming it; nothing is left of that attempt.
        let clash = w.run(
            &["--rm", "--network", "dual", "-p", &format!("[::1]:{p1}:80")],
            &["sleep", "1"],
        );
        assert_eq!(clash.code, 125, "{}", clash.stderr);
        assert!(
            clash
                .stderr
                .contains(&format!("[::1]:{p1}/tcp failed: port is already allocated")),
            "{}",
            clash.stderr
        );

        // On an IPv4-only network (the default bridge), an IPv6 binding is relayed to the
        // container's IPv4 address, as Docker's userland proxy does; `-p PORT:80` there
        // stays IPv4.
        let p3 = free_port6();
        w.httpd(&[
            "--name",
            "v4only",
            "-p",
            &format!("[::1]:{p3}:80"),
            "-p",
            "80",
        ]);
        w.until("the IPv4-only container answers on [::1]", || {
            wget(&format!("http://[::1]:{p3}/")).stdout == "hello over v6\n"
        });
        let port = w.b(&["port", "v4only", "80"]).stdout;
        assert!(port.lines().any(|l| l == format!("[::1]:{p3}")), "{port}");
        assert!(!port.contains("[::]"), "{port}");
        assert!(port.lines().any(|l| l.starts_with("0.0.0.0:")), "{port}");
        w.b(&["rm", "-f", "v4only"]).ok();

        w.b(&["stop", "-t", "1", "web"]).ok();
        no_network_leftovers(&w.root);
        std::net::TcpListener::bind(format!("[::1]:{p1}")).expect("[::1] port released");
        std::net::TcpListener::bind(format!("[::]:{p2}")).expect("[::] port released");
        w.finish(&["dual"]);
    });
}

/// The pid of container `id`'s monitor.
fn monitor_pid(w: &World, id: &str) -> i32 {
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.runroot.join("containers").join(id).join("monitor.json")).unwrap(),
    )
    .unwrap();
    m["pid"].as_i64().unwrap() as i32
}

/// The monitor `pid` runs single-threaded (it clones: a thread holding musl's malloc
/// lock would deadlock its children) and relays IPv6 in a child of its own: returns it.
fn relay_of(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains("\nThreads:\t1\n"),
        "monitor {pid}: {status}"
    );
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let relays: Vec<i32> = children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|n| n == "berth-relay\n")
        })
        .collect();
    assert_eq!(relays.len(), 1, "monitor {pid}'s relays: {children}");
    relays[0]
}

/// A port free on both families' loopback and wildcard addresses.
fn free_port6() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("[::]:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        if std::net::TcpListener::bind(("0.0.0.0", p)).is_ok() {
            return p;
        }
    }
}

#[test]
fn bad_ipv6_input() {
    in_netns("bad_ipv6_input", || {
        let w = Net::new("v6bad");
        w.b(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "fd77::/64",
            "six",
        ])
        .ok();
        w.b(&["network", "create", "four"]).ok();
        for (flags, phrase) in [
            (
                vec!["--network", "six", "--ip6", "fd78::5"],
                "--ip6 fd78::5: not a usable address of network six",
            ),
            (
                vec!["--network", "six", "--ip6", "fd77::1"],
                "--ip6 fd77::1: not a usable address",
            ),
            (
                vec!["--network", "four", "--ip6", "fd77::5"],
                "network four has no IPv6",
            ),
            (
                vec!["--ip6", "fd77::5", "-p", "80"],
                "network bridge has no IPv6",
            ),
            (
                vec!["--network", "six", "--ip6", "10.0.0.1"],
                "--ip6 10.0.0.1: not an IPv6 address",
            ),
            (
                vec!["--network", "none", "--ip6", "fd77::5"],
                "conflicting options",
            ),
            (vec!["-p", "[::1:8080:80"], "--publish [::1:8080:80"),
            (vec!["-p", "[nope]:8080:80"], "invalid IP address"),
        ] {
            let out = w.run(&flags, &["true"]);
            refused(&w, &out, 125, phrase);
        }
        let out = w.b(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "fd77:0:0:0:8000::/65",
            "seven",
        ]);
        refused(&w, &out, 1, "overlaps with network six");
        let out = w.b(&[
            "network",
            "create",
            "--subnet",
            "fd00::/64",
            "--subnet",
            "fd01::/64",
            "two",
        ]);
        refused(&w, &out, 1, "one IPv4 and one IPv6 subnet");
        let out = w.b(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "fd88::/64",
            "--gateway",
            "fd89::1",
            "gw",
        ]);
        refused(&w, &out, 1, "--gateway fd89::1: not in subnet fd88::/64");
        let out = w.b(&["network", "create", "--ipv6", "--subnet", "nope::/x", "bad"]);
        refused(&w, &out, 1, "not an IPv6 CIDR");
        for n in ["seven", "two", "gw", "bad"] {
            assert_eq!(w.b(&["network", "exists", n]).code, 1, "{n} was made");
        }
        // An IPv6 --subnet alone enables IPv6 (Docker's since 25.0).
        w.b(&["network", "create", "--subnet", "fd55::/64", "implied"])
            .ok();
        let (s, gw) = w.subnet6("implied");
        assert_eq!((s.as_str(), gw.as_str()), ("fd55::/64", "fd55::1"));
        // network connect --ip6 outside the subnet.
        w.run_d(&["--name", "c", "--network", "four"], &["sleep", "600"]);
        let out = w.b(&["network", "connect", "--ip6", "fd78::5", "six", "c"]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("--ip6 fd78::5: not a usable address"),
            "{}",
            out.stderr
        );
        w.b(&["network", "connect", "--ip6", "fd77::9", "six", "c"])
            .ok();
        let n = w.inspect("c")["NetworkSettings"]["Networks"]["six"].clone();
        assert_eq!(n["GlobalIPv6Address"], "fd77::9", "{n}");
        let a = w
            .b(&["exec", "c", "ip", "-6", "addr", "show", "eth1"])
            .stdout;
        assert!(a.contains("fd77::9/64"), "{a}");
        w.finish(&["six", "four", "implied"]);
    });
}

#[test]
fn a_killed_monitor_releases_its_ipv6() {
    in_netns("a_killed_monitor_releases_its_ipv6", || {
        let w = Net::new("v6kill9");
        w.b(&["network", "create", "--ipv6", "--subnet", "fd44::/64", "k"])
            .ok();
        let p = free_port6();
        let id = w.httpd(&["--network", "k", "-p", &format!("{p}:80")]);
        w.until("httpd answers on [::1]", || {
            wget(&format!("http://[::1]:{p}/")).code == 0
        });
        let pid = monitor_pid(&w, &id);
        let relay = common::Tracked::new(relay_of(pid));
        sh(&format!("kill -9 {pid}")).ok();
        w.until("the monitor is gone", || {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        // Its relay dies with it (reparented to us, the subreaper, and reaped here).
        w.until("the relay is gone", || {
            relay.reap();
            !relay.exists()
        });
        // The next command releases its addresses, veth, bridge and both tables.
        w.b(&["ps", "-a"]).ok();
        no_network_leftovers(&w.root);
        std::net::TcpListener::bind(format!("[::]:{p}")).expect("[::] port released");
        // And the same IPv6 address can be had again.
        let id2 = w.httpd(&["--network", "k", "-p", &format!("{p}:80")]);
        assert_eq!(
            w.inspect(&id2)["NetworkSettings"]["Networks"]["k"]["GlobalIPv6Address"],
            "fd44::2"
        );
        w.until("the new one answers on [::1]", || {
            wget(&format!("http://[::1]:{p}/")).code == 0
        });
        w.finish(&["k"]);
    });
}
