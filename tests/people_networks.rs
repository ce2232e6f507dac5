//! Networks, driven through the built binary with real traffic. Every test runs inside a
//! private network namespace standing for the host (the test re-execs itself under
//! `unshare --net`), with its own `--root`/`--runroot` and a busybox root filesystem; a
//! second namespace joined by a veth pair stands for another host (and the internet).
//! After each test: no container, no berth link, no nftables table, no IPAM entry.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::people::World;
use common::{run_with_timeout, Out};

use common::netns::{in_netns, no_links_tables_or_endpoints, sh, wget, NetWorld as Net};

impl Net {
    /// The world with what these tests serve: httpd's /www, the `app` CGI script (the
    /// tutorials' application) besides `ip`, and the network applets.
    fn new(name: &str) -> Net {
        let applets = ["httpd", "wget", "ping", "nslookup", "timeout", "env"];
        let n = Net::with(name, &applets, "hello from berth\n");
        // The tutorials' application: answers with what it fetched from its database.
        let app = n.rootfs.join("www/cgi-bin/app");
        std::fs::write(
            &app,
            "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"app sees: $(wget -qO- http://mysql/)\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
        n
    }

    /// Another host: a network namespace joined to ours by a veth pair, ours
    /// 10.99.0.1/24, its 10.99.0.2/24.
    fn peer(&mut self) -> i32 {
        let pid = self.spawn_peer();
        sh(&format!(
            "ip link add pn0 type veth peer name pn1 netns {pid} && ip addr add 10.99.0.1/24 dev pn0 && ip link set pn0 up && nsenter --net=/proc/{pid}/ns/net sh -c 'ip link set lo up; ip addr add 10.99.0.2/24 dev pn1; ip link set pn1 up; ip route add default via 10.99.0.1'"
        ))
        .ok();
        pid
    }

    /// Removes every container (and the networks given), then checks nothing is left.
    fn finish(self, networks: &[&str]) {
        self.finish_with(networks, no_network_leftovers)
    }
}

/// berth with a `--root`/`--runroot` pair other than the world's.
fn b_root(root: &Path, runroot: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.arg("--root")
        .arg(root)
        .arg("--runroot")
        .arg(runroot)
        .args(args);
    run_with_timeout(&mut c, Duration::from_secs(120))
}

/// The namespace is as it was: only `lo` (and a peer's veth), no nftables table, no IPAM
/// endpoint.
fn no_network_leftovers(root: &Path) {
    no_links_tables_or_endpoints(root)
}

#[test]
fn published_ports_in_every_form() {
    in_netns("published_ports_in_every_form", || {
        let mut w = Net::new("publish");
        let peer = w.peer();
        let id = w.run_d(
            &[
                "--name",
                "web",
                "-p",
                "8080:80",
                "-p",
                "127.0.0.1:8081:80",
                "-p",
                "127.0.0.1::80",
                "-p",
                "9000-9001:80-81",
            ],
            &[
                "sh",
                "-c",
                "httpd -p 81 -h /www; exec httpd -f -p 80 -h /www",
            ],
        );
        // From the host itself (localhost and its own address) and from another host.
        w.until("httpd answers", || wget("http://127.0.0.1:8080/").code == 0);
        assert_eq!(wget("http://127.0.0.1:8080/").stdout, "hello from berth\n");
        assert_eq!(wget("http://127.0.0.1:8081/").stdout, "hello from berth\n");
        assert_eq!(wget("http://10.99.0.1:8080/").stdout, "hello from berth\n");
        assert_eq!(wget("http://127.0.0.1:9001/").stdout, "hello from berth\n");
        let far = w.on_peer(peer, "timeout 10 busybox wget -qO- http://10.99.0.1:9000/");
        assert_eq!(far.stdout, "hello from berth\n", "{}", far.stderr);
        // 127.0.0.1-only bindings are not reachable from another host.
        let far = w.on_peer(peer, "timeout 3 busybox wget -qO- http://10.99.0.1:8081/");
        assert_ne!(far.code, 0, "a 127.0.0.1 binding answered another host");

        // port, as Docker prints it; the random port works.
        let port = w.b(&["port", "web"]);
        port.ok();
        let lines: Vec<&str> = port.stdout.lines().collect();
        assert!(lines.contains(&"80/tcp -> 0.0.0.0:8080"), "{lines:?}");
        assert!(lines.contains(&"80/tcp -> 127.0.0.1:8081"), "{lines:?}");
        assert!(lines.contains(&"81/tcp -> 0.0.0.0:9001"), "{lines:?}");
        let random = lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("80/tcp -> 127.0.0.1:")
                    .filter(|p| *p != "8081")
            })
            .expect("the random port");
        assert_eq!(
            wget(&format!("http://127.0.0.1:{random}/")).stdout,
            "hello from berth\n"
        );
        let p80 = w.b(&["port", "web", "80"]);
        assert!(
            p80.stdout.lines().any(|l| l == "0.0.0.0:8080"),
            "{}",
            p80.stdout
        );
        let none = w.b(&["port", "web", "443"]);
        assert_eq!(none.code, 1);
        assert!(
            none.stderr.contains("no public port '443/tcp'"),
            "{}",
            none.stderr
        );

        // ps and inspect.
        let ps = w.b(&["ps", "--format", "{{.Ports}}"]);
        assert!(
            ps.stdout.contains("0.0.0.0:9000-9001->80-81/tcp"),
            "{}",
            ps.stdout
        );
        assert!(ps.stdout.contains("0.0.0.0:8080->80/tcp"), "{}", ps.stdout);
        let q = |f: &str| w.b(&["ps", "-q", "--filter", f]).stdout.trim().to_string();
        assert_eq!(q("publish=80"), id[..12]);
        assert_eq!(q("publish=80-81/tcp"), id[..12]);
        assert_eq!(q("publish=443"), "");
        assert_eq!(q("expose=81"), id[..12]);
        assert_eq!(q("network=bridge"), id[..12]);
        assert_eq!(q("network=none"), "");
        let v = w.inspect(&id);
        let ns = &v["NetworkSettings"];
        let ports = ns["Ports"]["80/tcp"].as_array().unwrap();
        assert!(ports
            .iter()
            .any(|p| p["HostIp"] == "0.0.0.0" && p["HostPort"] == "8080"));
        let br = &ns["Networks"]["bridge"];
        let ip = br["IPAddress"].as_str().unwrap();
        assert!(ip.starts_with("172.17.0."), "{ip}");
        assert_eq!(br["Gateway"], "172.17.0.1");
        assert!(br["MacAddress"]
            .as_str()
            .unwrap()
            .starts_with("02:42:ac:11:00:"));
        assert_eq!(
            v["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            "8080"
        );

        // Hairpin: the container reaches its own published port through the host.
        let hair = w.b(&[
            "exec",
            "web",
            "timeout",
            "10",
            "wget",
            "-qO-",
            "http://10.99.0.1:8080/",
        ]);
        assert_eq!(hair.stdout, "hello from berth\n", "{}", hair.stderr);

        // A published port already taken fails the start, naming it.
        let clash = w.run(&["--rm", "-p", "8080:80"], &["sleep", "1"]);
        assert_eq!(clash.code, 125);
        assert!(
            clash
                .stderr
                .contains("0.0.0.0:8080/tcp failed: port is already allocated"),
            "{}",
            clash.stderr
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:7777").unwrap();
        let clash = w.run(&["--rm", "-p", "127.0.0.1:7777:80"], &["sleep", "1"]);
        assert_eq!(clash.code, 125, "{}", clash.stderr);
        assert!(
            clash.stderr.contains("127.0.0.1:7777/tcp"),
            "{}",
            clash.stderr
        );
        drop(listener);

        w.b(&["stop", "-t", "1", "web"]).ok();
        // Stopped: its ports are free again and nothing of its network is left.
        no_network_leftovers(&w.root);
        std::net::TcpListener::bind("0.0.0.0:8080").expect("port 8080 released");
        assert_eq!(
            w.inspect(&id)["NetworkSettings"]["Ports"],
            serde_json::json!({})
        );
        w.finish(&[]);
    });
}

#[test]
fn udp_and_outbound_traffic() {
    in_netns("udp_and_outbound_traffic", || {
        let mut w = Net::new("udp");
        let peer = w.peer();
        // UDP through a published port, both ways (an echo server in the container).
        std::fs::copy(common::testinit(), w.rootfs.join("bin/testinit")).unwrap();
        w.run_d(
            &["--name", "u", "-p", "5353:53/udp"],
            &["testinit", "udp-echo", "53"],
        );
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        w.until("the udp echo answers", || {
            sock.send_to(b"udp-hello", "127.0.0.1:5353").unwrap();
            matches!(sock.recv_from(&mut buf), Ok((9, _))) && &buf[..9] == b"udp-hello"
        });
        assert_eq!(w.b(&["port", "u"]).stdout, "53/udp -> 0.0.0.0:5353\n");
        // Outbound: a server on "the internet" sees the host's address, not the
        // container's (masquerade).
        let www = w.dir.join("peerwww");
        std::fs::create_dir_all(www.join("cgi-bin")).unwrap();
        std::fs::copy(w.rootfs.join("www/cgi-bin/ip"), www.join("cgi-bin/ip")).unwrap();
        w.on_peer(peer, &format!("busybox httpd -p 8000 -h {}", www.display()))
            .ok();
        let out = w.run(
            &["--rm", "--network", "bridge"],
            &[
                "sh",
                "-c",
                "timeout 10 wget -qO- http://10.99.0.2:8000/cgi-bin/ip || exit 1",
            ],
        );
        out.ok();
        // busybox httpd shows a v4-mapped address.
        assert!(
            out.stdout
                .trim()
                .trim_matches(['[', ']'])
                .trim_start_matches("::ffff:")
                == "10.99.0.1",
            "{}",
            out.stdout
        );
        w.on_peer(peer, "kill $(pidof busybox) 2>/dev/null; true");
        w.finish(&[]);
    });
}

#[test]
fn names_on_a_user_network_and_link_aliases() {
    in_netns("names_on_a_user_network_and_link_aliases", || {
        let w = Net::new("names");
        w.b(&["network", "create", "appnet"]).ok();
        let db = w.httpd(&[
            "--name",
            "db",
            "--network",
            "appnet",
            "--network-alias",
            "database",
        ]);
        let web = w.httpd(&["--name", "web", "--network", "appnet"]);
        for target in ["db", "database", &db[..12]] {
            let out = w.b(&[
                "exec",
                "web",
                "timeout",
                "10",
                "wget",
                "-qO-",
                &format!("http://{target}/"),
            ]);
            assert_eq!(out.stdout, "hello from berth\n", "{target}: {}", out.stderr);
        }
        // The one started first learns of the later one.
        let out = w.b(&["exec", "db", "timeout", "10", "wget", "-qO-", "http://web/"]);
        assert_eq!(out.stdout, "hello from berth\n", "{}", out.stderr);
        let v = w.inspect(&web);
        let ip = v["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!ip.is_empty() && !ip.starts_with("172.17."), "{ip}");
        // Removing a network in use is refused, naming its containers.
        let rm = w.b(&["network", "rm", "appnet"]);
        assert_eq!(rm.code, 1);
        assert!(
            rm.stderr.contains("db") && rm.stderr.contains("web"),
            "{}",
            rm.stderr
        );
        // Gone from the others' hosts when it stops; back after a restart.
        w.b(&["stop", "-t", "1", "web"]).ok();
        let hosts = w.b(&["exec", "db", "cat", "/etc/hosts"]).stdout;
        assert!(!hosts.contains("web"), "{hosts}");
        w.b(&["start", "web"]).ok();
        let out = w.b(&["exec", "db", "timeout", "10", "wget", "-qO-", "http://web/"]);
        assert_eq!(out.stdout, "hello from berth\n", "{}", out.stderr);
        // Containers on the default bridge do not see user networks.
        let out = w.run(
            &["--rm", "--network", "bridge"],
            &[
                "sh",
                "-c",
                &format!("timeout 3 wget -qO- http://{ip}/ || exit 1"),
            ],
        );
        assert_ne!(out.code, 0, "the default bridge reached a user network");
        // A link on a user network (Docker's there): the alias is the linking container's
        // own, without the legacy environment; its target need not exist yet.
        let out = w.run(
            &[
                "--rm",
                "--network",
                "appnet",
                "--link",
                "web:site",
                "--link",
                "later:x",
            ],
            &[
                "sh",
                "-c",
                "timeout 10 wget -qO- http://site/ && env | grep -c ^SITE_ ; true",
            ],
        );
        out.ok();
        assert_eq!(out.stdout, "hello from berth\n0\n", "{}", out.stderr);
        let hosts = w.b(&["exec", "db", "cat", "/etc/hosts"]).stdout;
        assert!(!hosts.contains("site"), "{hosts}");
        for c in ["db", "web"] {
            w.b(&["rm", "-f", c]).ok();
        }

        // The tutorials' shape: an application reaching its database by the alias
        // `mysql` (--link on the default bridge), answering on a published port.
        std::fs::write(w.rootfs.join("www/index.html"), "rows from the database\n").unwrap();
        // (berth's default is still a namespace of its own: the database asks for the bridge)
        w.httpd(&[
            "--name",
            "wordpressdb",
            "--network",
            "bridge",
            "--expose",
            "80",
            "-e",
            "MYSQL_ROOT_PASSWORD=example",
        ]);
        w.httpd(&[
            "--name",
            "wordpress",
            "--link",
            "wordpressdb:mysql",
            "-p",
            "8080:80",
        ]);
        w.until("the application answers", || {
            wget("http://127.0.0.1:8080/cgi-bin/app").code == 0
        });
        assert_eq!(
            wget("http://127.0.0.1:8080/cgi-bin/app").stdout,
            "app sees: rows from the database\n"
        );
        let env = w.b(&["exec", "wordpress", "env"]).stdout;
        assert!(env.contains("MYSQL_PORT_80_TCP_ADDR=172.17.0."), "{env}");
        assert!(env.contains("MYSQL_PORT=tcp://172.17.0."), "{env}");
        assert!(
            env.contains("MYSQL_ENV_MYSQL_ROOT_PASSWORD=example\n"),
            "{env}"
        );
        assert!(env.contains("MYSQL_NAME=/wordpress/mysql\n"), "{env}");
        // A link to a missing container fails as Docker's.
        let bad = w.run(&["--rm", "--link", "nothere:x"], &["true"]);
        assert_eq!(bad.code, 125);
        assert!(bad.stderr.contains("nothere"), "{}", bad.stderr);
        w.finish(&["appnet"]);
    });
}

#[test]
fn a_killed_monitor_is_reconciled() {
    in_netns("a_killed_monitor_is_reconciled", || {
        let w = Net::new("kill9");
        let id = w.httpd(&["-p", "8080:80"]);
        w.until("httpd answers", || wget("http://127.0.0.1:8080/").code == 0);
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(w.runroot.join("containers").join(&id).join("monitor.json")).unwrap(),
        )
        .unwrap();
        let pid = m["pid"].as_i64().unwrap() as i32;
        sh(&format!("kill -9 {pid}")).ok();
        // Gone, or a zombie its reaper (the machine's pid 1) has not got to yet.
        w.until("the monitor is gone", || common::gone(pid));
        // The next command releases its address, veth, bridge and rules.
        let ps = w.b(&["ps", "-a"]);
        ps.ok();
        assert!(ps.stdout.contains("Exited (255)"), "{}", ps.stdout);
        no_network_leftovers(&w.root);
        std::net::TcpListener::bind("0.0.0.0:8080").expect("port released");
        // And the same address can be had again.
        let id2 = w.httpd(&["-p", "8080:80"]);
        assert_eq!(
            w.inspect(&id2)["NetworkSettings"]["IPAddress"],
            "172.17.0.2"
        );
        // Reconciled from another network namespace: nothing is made there, the record
        // is put right, and the next change here clears what stayed here.
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(w.runroot.join("containers").join(&id2).join("monitor.json")).unwrap(),
        )
        .unwrap();
        let pid = m["pid"].as_i64().unwrap() as i32;
        sh(&format!("kill -9 {pid}")).ok();
        // Gone, or a zombie its reaper (the machine's pid 1) has not got to yet.
        w.until("the monitor is gone", || common::gone(pid));
        let other = sh(&format!(
            "unshare --net -- sh -c '{} --root {} --runroot {} ps -a >/dev/null; nft list tables; ip -o link | grep -v lo:'",
            env!("CARGO_BIN_EXE_berth"),
            w.root.display(),
            w.runroot.display()
        ));
        assert_eq!(
            other.stdout, "",
            "made in another namespace: {}",
            other.stdout
        );
        let ipam: serde_json::Value =
            serde_json::from_slice(&std::fs::read(w.root.join("networks/ipam.json")).unwrap())
                .unwrap();
        assert_eq!(ipam["endpoints"], serde_json::json!([]));
        w.httpd(&["--name", "after", "-p", "8080:80"]);
        w.until("httpd answers", || wget("http://127.0.0.1:8080/").code == 0);
        w.finish(&[]);
    });
}

#[test]
fn twenty_containers_at_once_on_one_network() {
    in_netns("twenty_containers_at_once_on_one_network", || {
        let w = Net::new("twenty");
        w.b(&["network", "create", "--subnet", "10.77.0.0/24", "crowd"])
            .ok();
        let ids: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..20)
                .map(|i| {
                    let w = &w;
                    s.spawn(move || w.httpd(&["--name", &format!("c{i}"), "--network", "crowd"]))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ips: Vec<String> = ids
            .iter()
            .map(|id| {
                w.inspect(id)["NetworkSettings"]["Networks"]["crowd"]["IPAddress"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 20, "addresses not distinct: {ips:?}");
        assert!(ips.iter().all(|i| i.starts_with("10.77.0.")));
        let script: String = (0..20)
            .map(|i| {
                format!("timeout 10 wget -qO- http://c{i}/ >/dev/null || echo unreachable c{i}; ")
            })
            .collect();
        let out = w.run(&["--rm", "--network", "crowd"], &["sh", "-c", &script]);
        out.ok();
        assert!(!out.stdout.contains("unreachable"), "{}", out.stdout);
        w.finish(&["crowd"]);
    });
}

#[test]
fn two_roots_keep_to_their_own() {
    in_netns("two_roots_keep_to_their_own", || {
        let w = Net::new("roots");
        let (root2, run2) = (w.dir.join("root2"), w.dir.join("run2"));
        let a = w.httpd(&["-p", "8080:80"]);
        let out = b_root(
            &root2,
            &run2,
            &[
                "run",
                "-d",
                "-p",
                "8081:80",
                "--rootfs",
                w.rootfs.to_str().unwrap(),
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/www",
            ],
        );
        out.ok();
        let b = out.stdout.trim().to_string();
        let ip_a = w.inspect(&a)["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
        let vb = b_root(&root2, &run2, &["inspect", &b]).json()[0].clone();
        let ip_b = vb["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(ip_a.starts_with("172.17."), "{ip_a}");
        // The default subnet was taken by the other root's bridge: the next one.
        assert!(ip_b.starts_with("172.18."), "{ip_b}");
        assert_eq!(sh("nft list tables").stdout.lines().count(), 2);
        w.until("both answer", || {
            wget("http://127.0.0.1:8080/").code == 0 && wget("http://127.0.0.1:8081/").code == 0
        });
        // One root's containers ending leaves the other's alone.
        w.b(&["rm", "-f", &a]).ok();
        assert_eq!(sh("nft list tables").stdout.lines().count(), 1);
        assert_eq!(wget("http://127.0.0.1:8081/").stdout, "hello from berth\n");
        b_root(&root2, &run2, &["rm", "-f", &b]).ok();
        no_network_leftovers(&root2);
        w.finish(&[]);
    });
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

#[test]
fn ip_range_hands_out_only_its_addresses() {
    in_netns("ip_range_hands_out_only_its_addresses", || {
        let w = Net::new("iprange");
        for (args, phrase) in [
            (
                vec!["--subnet", "10.77.0.0/24", "--ip-range", "10.78.0.0/28"],
                "--ip-range 10.78.0.0/28: not in subnet 10.77.0.0/24",
            ),
            (
                vec!["--ip-range", "10.77.0.0/28"],
                "--ip-range: needs --subnet",
            ),
            (
                vec!["--subnet", "10.77.0.0/24", "--ip-range", "nope"],
                "--ip-range nope: not an IPv4 CIDR",
            ),
        ] {
            let mut a = vec!["network", "create"];
            a.extend(args);
            a.push("bad");
            let out = w.b(&a);
            assert_eq!(out.code, 1, "{}", out.stderr);
            assert!(out.stderr.contains(phrase), "{}", out.stderr);
            assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        }
        assert!(!w
            .b(&["network", "ls", "-q", "--filter", "name=bad"])
            .stdout
            .contains(|c: char| c.is_ascii_hexdigit()));
        w.b(&[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--ip-range",
            "10.77.0.128/31",
            "ranged",
        ])
        .ok();
        let cfg = &w.b(&["network", "inspect", "ranged"]).json()[0]["IPAM"]["Config"][0];
        assert_eq!(cfg["IPRange"], "10.77.0.128/31", "{cfg}");
        // The range's two addresses, in order; a third container finds none left.
        let a = w.run_d(&["--network", "ranged"], &["sleep", "600"]);
        let b = w.run_d(&["--network", "ranged"], &["sleep", "600"]);
        let ip = |id: &str| {
            w.inspect(id)["NetworkSettings"]["Networks"]["ranged"]["IPAddress"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(ip(&a), "10.77.0.128");
        assert_eq!(ip(&b), "10.77.0.129");
        let out = w.run(&["-d", "--network", "ranged"], &["sleep", "600"]);
        assert_eq!(out.code, 125, "{}", out.stderr);
        assert!(
            out.stderr.contains("no free address left"),
            "{}",
            out.stderr
        );
        // --ip may still name any address of the subnet.
        let c = w.run_d(
            &["--network", "ranged", "--ip", "10.77.0.7"],
            &["sleep", "600"],
        );
        assert_eq!(ip(&c), "10.77.0.7");
        w.finish(&["ranged"]);
    });
}

#[test]
fn sctp_ports_are_dnated() {
    in_netns("sctp_ports_are_dnated", || {
        let w = Net::new("sctp");
        // This kernel may have no SCTP sockets to send with: the rule is what is checked.
        let id = w.run_d(
            &["--name", "sc", "-p", "5000:5000/sctp", "-p", "5001/sctp"],
            &["sleep", "600"],
        );
        let port = w.b(&["port", "sc", "5000/sctp"]);
        assert_eq!(port.stdout, "0.0.0.0:5000\n", "{}", port.stderr);
        let random = w.b(&["port", "sc", "5001/sctp"]).stdout;
        let random = random
            .trim()
            .strip_prefix("0.0.0.0:")
            .expect("a random sctp port");
        let ip = w.inspect(&id)["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
        let rules = sh("nft list ruleset").stdout;
        assert!(
            rules.contains(&format!("sctp dport 5000 dnat to {ip}:5000")),
            "{rules}"
        );
        assert!(
            rules.contains(&format!("sctp dport {random} dnat to {ip}:5001")),
            "{rules}"
        );
        let ps = w.b(&["ps", "--format", "{{.Ports}}"]).stdout;
        assert!(ps.contains("0.0.0.0:5000->5000/sctp"), "{ps}");
        // Another container cannot have it.
        let out = w.run(&["-d", "-p", "5000:80/sctp"], &["sleep", "600"]);
        assert_eq!(out.code, 125, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("bind for 0.0.0.0:5000/sctp failed: port is already allocated"),
            "{}",
            out.stderr
        );
        w.finish(&[]);
    });
}

#[test]
fn bad_network_input() {
    in_netns("bad_network_input", || {
        let w = Net::new("bad");
        w.b(&["network", "create", "--subnet", "10.5.0.0/24", "five"])
            .ok();
        for (flags, phrase) in [
            (
                vec!["-p", "70000:80"],
                "--publish 70000:80: invalid host port",
            ),
            (vec!["-p", "abc"], "--publish abc: invalid container port"),
            (vec!["-p", "8000-8001:80-82"], "ranges differ"),
            (
                vec!["--network", "five", "--ip", "10.6.0.9"],
                "--ip 10.6.0.9: not in network five",
            ),
            (vec!["--network", "nosuch"], "network nosuch not found"),
            (
                vec!["--network", "pasta"],
                "--network pasta: for rootless containers",
            ),
            (
                vec!["--network", "container:missing"],
                "--network container:missing: no such container",
            ),
            (
                vec!["--link", "missing:alias"],
                "--link missing:alias: no such container",
            ),
            (
                vec!["--network", "none", "-p", "80:80"],
                "conflicting options",
            ),
            (vec!["--add-host", "x:notanip"], "--add-host x:notanip"),
            (
                vec!["--network-alias", "a", "-p", "80"],
                "only on user defined networks",
            ),
        ] {
            let out = w.run(&flags, &["true"]);
            refused(&w, &out, 125, phrase);
        }
        let out = w.b(&["network", "create", "--subnet", "10.5.0.128/25", "six"]);
        refused(&w, &out, 1, "overlaps with network five");
        assert_eq!(w.b(&["network", "exists", "six"]).code, 1);
        let out = w.b(&["network", "create", "five"]);
        refused(&w, &out, 1, "already exists");
        let out = w.b(&["network", "rm", "bridge"]);
        refused(&w, &out, 1, "pre-defined");
        w.finish(&["five"]);
    });
}

#[test]
fn network_commands() {
    in_netns("network_commands", || {
        let w = Net::new("cmds");
        let id = w.b(&[
            "network",
            "create",
            "--subnet",
            "10.40.0.0/16",
            "--gateway",
            "10.40.0.254",
            "--label",
            "team=a",
            "-o",
            "mtu=1400",
            "--internal",
            "back",
        ]);
        id.ok();
        let id = id.stdout.trim().to_string();
        assert_eq!(id.len(), 64);
        w.b(&["network", "exists", "back"]).ok();
        let ls = w.b(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
        assert_eq!(
            ls.stdout,
            "bridge bridge\nnone null\nhost host\nback bridge\n"
        );
        assert_eq!(
            w.b(&["network", "ls", "-q", "--filter", "name=back"])
                .stdout,
            format!("{}\n", &id[..12])
        );
        let v = w.b(&["network", "inspect", "back"]).json()[0].clone();
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.40.0.0/16");
        assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.40.0.254");
        assert_eq!(v["Labels"]["team"], "a");
        assert_eq!(v["Internal"], true);
        // An internal network: address, MTU, no way out, no default route.
        let out = w.run(&["--rm", "--network", "back", "--dns", "10.40.0.53", "--add-host", "db.local:10.40.9.9"], &["sh", "-c", "ip -o -4 addr show eth0; cat /sys/class/net/eth0/mtu; ip route; cat /etc/resolv.conf /etc/hosts"]);
        out.ok();
        assert!(out.stdout.contains("inet 10.40.0.1/16"), "{}", out.stdout);
        assert!(out.stdout.contains("\n1400\n"), "{}", out.stdout);
        assert!(!out.stdout.contains("default"), "{}", out.stdout);
        assert!(
            out.stdout.contains("nameserver 10.40.0.53"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("10.40.9.9\tdb.local"), "{}", out.stdout);
        // prune keeps networks in use and the default one.
        w.b(&[
            "create",
            "--name",
            "holder",
            "--network",
            "back",
            "--rootfs",
            w.rootfs.to_str().unwrap(),
            "true",
        ])
        .ok();
        w.b(&["network", "create", "spare"]).ok();
        let p = w.b(&["network", "prune", "-f"]);
        assert_eq!(p.stdout, "Deleted Networks:\nspare\n");
        w.b(&["rm", "holder"]).ok();
        assert_eq!(w.b(&["network", "rm", "back"]).stdout, "back\n");
        assert_eq!(w.b(&["network", "exists", "back"]).code, 1);
        w.finish(&[]);
    });
}

#[test]
fn publish_all_and_a_shared_namespace() {
    in_netns("publish_all_and_a_shared_namespace", || {
        let w = Net::new("pall");
        w.httpd(&[
            "--name", "web", "-P", "--expose", "80", "--expose", "81/udp",
        ]);
        let port = w.b(&["port", "web"]);
        port.ok();
        let lines: Vec<&str> = port.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let tcp = lines[0]
            .strip_prefix("80/tcp -> 0.0.0.0:")
            .expect("80/tcp on a random port");
        assert!(lines[1].starts_with("81/udp -> 0.0.0.0:"), "{lines:?}");
        w.until("httpd answers", || {
            wget(&format!("http://127.0.0.1:{tcp}/")).code == 0
        });
        // container:web: the same namespace, its address and its localhost.
        let out = w.run(
            &["--rm", "--network", "container:web"],
            &[
                "sh",
                "-c",
                "ip -o -4 addr show eth0; timeout 10 wget -qO- http://127.0.0.1/",
            ],
        );
        out.ok();
        assert!(out.stdout.contains("inet 172.17.0.2/16"), "{}", out.stdout);
        assert!(out.stdout.ends_with("hello from berth\n"), "{}", out.stdout);
        w.finish(&[]);
    });
}

#[test]
fn connect_and_disconnect() {
    in_netns("connect_and_disconnect", || {
        let w = Net::new("connect");
        w.b(&["network", "create", "front"]).ok();
        w.b(&["network", "create", "back"]).ok();
        w.httpd(&["--name", "db", "--network", "back"]);
        w.httpd(&["--name", "app", "--network", "front"]);
        let reach = |from: &str, to: &str| {
            w.b(&[
                "exec",
                from,
                "sh",
                "-c",
                &format!("timeout 5 wget -qO- http://{to}/ || exit 1"),
            ])
        };
        assert_ne!(reach("app", "db").code, 0, "networks are apart");
        w.b(&["network", "connect", "--alias", "appx", "back", "app"])
            .ok();
        assert_eq!(reach("app", "db").stdout, "hello from berth\n");
        assert_eq!(reach("db", "appx").stdout, "hello from berth\n");
        let v = w.inspect("app");
        let nets = &v["NetworkSettings"]["Networks"];
        assert!(nets["front"]["IPAddress"].as_str().unwrap().len() > 6);
        assert!(nets["back"]["IPAddress"].as_str().unwrap().len() > 6);
        let dup = w.b(&["network", "connect", "back", "app"]);
        assert_eq!(dup.code, 1);
        assert!(dup.stderr.contains("already connected"), "{}", dup.stderr);
        // Kept across a restart.
        w.b(&["restart", "-t", "1", "app"]).ok();
        assert_eq!(reach("app", "db").stdout, "hello from berth\n");
        w.b(&["network", "disconnect", "back", "app"]).ok();
        assert_ne!(reach("app", "db").code, 0, "still on back after disconnect");
        let ifaces = w.b(&["exec", "app", "ip", "-o", "link"]).stdout;
        assert!(!ifaces.contains("eth1"), "{ifaces}");
        let bad = w.b(&["network", "disconnect", "front", "app"]);
        assert_eq!(bad.code, 1);
        assert!(bad.stderr.contains("main network"), "{}", bad.stderr);
        w.finish(&["front", "back"]);
    });
}

/// Rootless networking is not built: asking for it as an ordinary user is refused at
/// create, with one line and nothing made.
#[test]
fn rootless_asks_are_refused_cleanly() {
    in_netns("rootless_asks_are_refused_cleanly", || {
        let w = Net::new("rootless");
        // Removed when dropped, even when an assertion below fails.
        let u = common::people::TestUser::create("berthpn");
        let berth = w.dir.join("berth");
        std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
        std::fs::create_dir_all(w.dir.join("xdg")).unwrap();
        u.own(&w.dir);
        let as_user = |args: &[&str]| -> Out {
            u.berth(
                &berth,
                (&w.root, &w.runroot, &w.dir),
                args,
                Duration::from_secs(60),
            )
        };
        let rootfs = w.rootfs.to_str().unwrap().to_string();
        // Rootless -p and --network bridge are pasta's, user networks are in a namespace
        // the user's containers share (tests/people_rootless_net.rs): a missing one is
        // said before anything is made.
        for flags in [
            &["--network", "appnet"][..],
            &["-p", "8080:80", "--network", "appnet"][..],
        ] {
            let mut a = vec!["run", "--rm"];
            a.extend_from_slice(flags);
            a.extend_from_slice(&["--rootfs", &rootfs, "true"]);
            let out = as_user(&a);
            assert_eq!(out.code, 125, "{}", out.stderr);
            assert!(
                out.stderr.contains("network appnet not found"),
                "{}",
                out.stderr
            );
            assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
            assert_eq!(as_user(&["ps", "-aq"]).stdout, "");
        }
        // Its own network namespace with lo still works.
        as_user(&["run", "--rm", "--rootfs", &rootfs, "true"]).ok();
        w.finish(&[]);
    });
}

#[test]
fn a_last_containers_bridge_is_retired_at_once_and_deleted_after() {
    in_netns(
        "a_last_containers_bridge_is_retired_at_once_and_deleted_after",
        || {
            let w = Net::new("retire");
            let v = w.b(&["network", "inspect", "bridge"]).json();
            let br = v[0]["Options"]["com.docker.network.bridge.name"]
                .as_str()
                .unwrap()
                .to_string();
            let tag = br.trim_start_matches("bth").split('-').next().unwrap();
            let retired = format!("bx{tag}-0");
            for rm in [false, true, false, true] {
                let out = if rm {
                    w.run(
                        &["--rm", "--network", "bridge"],
                        &["sh", "-c", "ip -o -4 addr show eth0"],
                    )
                } else {
                    let id = w.run_d(&["--network", "bridge"], &["sleep", "100"]);
                    let out = w.b(&["exec", &id, "ip", "-o", "-4", "addr", "show", "eth0"]);
                    w.b(&["rm", "-f", &id]).ok();
                    // A stop that is waited for: its name is free the moment rm returns.
                    assert_ne!(sh(&format!("ip link show {br}")).code, 0);
                    out
                };
                out.ok();
                // The same first address each time, right after a --rm run too (whose
                // release finishes in the background; the next start waits for it): the
                // bridge on its way out holds no route that would make its subnet look
                // taken.
                assert!(out.stdout.contains("172.17.0.2/16"), "{}", out.stdout);
            }
            w.until("the --rm run's bridge is gone", || {
                sh(&format!("ip link show {br}")).code != 0
            });
            // A retired bridge whose deleter was killed is deleted by the next first
            // container of its network.
            sh(&format!("ip link add {retired} type bridge")).ok();
            w.run(&["--rm", "--network", "bridge"], &["true"]).ok();
            w.until("the leftover is deleted", || {
                sh(&format!("ip link show {retired}")).code != 0
            });
            w.finish(&[]);
        },
    );
}
