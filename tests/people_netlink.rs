//! `network connect --link CTR[:ALIAS] NET CTR` (Docker's link on a user network: an
//! alias only the connected container resolves, followed by name across restarts) and
//! IPv6 on rootless networks, driven through the built binary with real traffic. The
//! rootful tests run in a private network namespace standing for the host
//! (tests/common/netns.rs), the rootless ones as an ordinary user in private network and
//! mount namespaces (tests/common/rootless.rs).

mod common;

use common::netns::{in_netns, no_links_tables_or_endpoints, NetWorld};
use common::people::{code_msg, free_port};
use common::rootless;
use common::Out;

fn net(name: &str) -> NetWorld {
    NetWorld::with(
        name,
        &["httpd", "wget", "ping", "timeout"],
        "hello from berth\n",
    )
}

/// `exec CTR sh -c SCRIPT`.
fn exec_sh(w: &NetWorld, ctr: &str, script: &str) -> Out {
    w.b(&["exec", ctr, "sh", "-c", script])
}

/// The container's networks as `inspect` shows them.
fn networks(w: &NetWorld, ctr: &str) -> serde_json::Value {
    w.inspect(ctr)["NetworkSettings"]["Networks"].clone()
}

#[test]
fn connect_with_a_link_on_a_user_network() {
    in_netns("connect_with_a_link_on_a_user_network", || {
        let w = net("netlink");
        w.b(&["network", "create", "front"]).ok();
        w.b(&["network", "create", "back"]).ok();
        w.httpd(&["--name", "web", "--network", "back"]);
        w.run_d(&["--name", "cli", "--network", "front"], &["sleep", "600"]);
        w.run_d(&["--name", "other", "--network", "back"], &["sleep", "600"]);
        w.b(&["network", "connect", "--link", "web:weblink", "back", "cli"])
            .ok();
        // cli resolves the alias (and the name) on back; ping proves the address answers.
        let hosts = exec_sh(&w, "cli", "cat /etc/hosts").stdout;
        assert!(hosts.contains("\tweblink web "), "{hosts}");
        exec_sh(&w, "cli", "ping -c1 -W5 weblink").ok();
        w.until("cli reaches web by its link alias", || {
            exec_sh(&w, "cli", "timeout 10 wget -qO- http://weblink/").stdout
                == "hello from berth\n"
        });
        // The alias is cli's own: another container of back has the name only.
        let theirs = exec_sh(&w, "other", "cat /etc/hosts").stdout;
        assert!(
            theirs.contains(" web") || theirs.contains("\tweb"),
            "{theirs}"
        );
        assert!(!theirs.contains("weblink"), "{theirs}");
        let nets = networks(&w, "cli");
        assert_eq!(nets["back"]["Links"], serde_json::json!(["web:weblink"]));
        assert!(nets["front"]["Links"].is_null(), "{nets}");

        // Followed across restarts: the target's (new address or not, by name) and cli's.
        w.b(&["restart", "-t", "1", "web"]).ok();
        w.until("weblink after web's restart", || {
            exec_sh(&w, "cli", "timeout 10 wget -qO- http://weblink/").stdout
                == "hello from berth\n"
        });
        w.b(&["restart", "-t", "1", "cli"]).ok();
        w.until("weblink after cli's restart", || {
            exec_sh(&w, "cli", "timeout 10 wget -qO- http://weblink/").stdout
                == "hello from berth\n"
        });
        // A stopped container connected with a link: its start resolves it.
        w.b(&[
            "create",
            "--name",
            "late",
            "--network",
            "front",
            "--rootfs",
            w.rootfs(),
            "sleep",
            "600",
        ])
        .ok();
        w.b(&["network", "connect", "--link", "web:w2", "back", "late"])
            .ok();
        w.b(&["start", "late"]).ok();
        w.until("late reaches web by its link alias", || {
            exec_sh(&w, "late", "timeout 10 wget -qO- http://w2/").stdout == "hello from berth\n"
        });
        // No legacy environment on a user network.
        let env = exec_sh(&w, "cli", "env").stdout;
        assert!(!env.contains("WEBLINK_"), "{env}");
        // Gone when cli leaves back.
        w.b(&["network", "disconnect", "back", "cli"]).ok();
        let hosts = exec_sh(&w, "cli", "cat /etc/hosts").stdout;
        assert!(!hosts.contains("weblink"), "{hosts}");
        w.finish_with(&["front", "back"], no_links_tables_or_endpoints);
    });
}

#[test]
fn connect_link_refusals_leave_nothing() {
    in_netns("connect_link_refusals_leave_nothing", || {
        let w = net("netlinkbad");
        w.b(&["network", "create", "back"]).ok();
        w.httpd(&["--name", "web", "--network", "back"]);
        w.b(&[
            "create",
            "--name",
            "idle",
            "--network",
            "back",
            "--rootfs",
            w.rootfs(),
            "true",
        ])
        .ok();
        w.run_d(&["--name", "cli", "--network", "bridge"], &["sleep", "600"]);
        let before = w.inspect("cli");
        for (args, phrase) in [
            (
                &["network", "connect", "--link", "web:x", "bridge", "idle"][..],
                "--link: links are only supported for user-defined networks",
            ),
            (
                &["network", "connect", "--link", "nothere:x", "back", "cli"][..],
                "--link nothere:x: no such container: nothere",
            ),
            (
                &["network", "connect", "--link", "idle:x", "back", "cli"][..],
                "--link idle:x: cannot link to a non running container: idle",
            ),
            (
                &["network", "connect", "--link", ":x", "back", "cli"][..],
                "--link :x: expected CONTAINER[:ALIAS]",
            ),
        ] {
            code_msg(&w.b(args), 1, phrase);
        }
        // Nothing changed: cli is still on bridge only, without an eth1.
        let after = w.inspect("cli");
        assert_eq!(
            before["NetworkSettings"]["Networks"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            after["NetworkSettings"]["Networks"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>()
        );
        let ifaces = w.b(&["exec", "cli", "ip", "-o", "link"]).stdout;
        assert!(!ifaces.contains("eth1"), "{ifaces}");
        w.finish_with(&["back"], no_links_tables_or_endpoints);
    });
}

#[test]
fn rootless_connect_with_a_link() {
    rootless::in_netns("rootless_connect_with_a_link", 0o666, |_host| {
        let u = rootless::U::new("rlnetlink");
        u.b(&["network", "create", "front"]).ok();
        u.b(&["network", "create", "back"]).ok();
        u.run_d(
            &["--name", "web", "--network", "back"],
            &rootless::httpd_cmd(),
        );
        u.run_d(&["--name", "cli", "--network", "front"], &["sleep", "600"]);
        // Refused on the default network, and to a missing target: nothing changes.
        code_msg(
            &u.b(&["network", "connect", "--link", "web:x", "bridge", "cli"]),
            1,
            "--link: links are only supported for user-defined networks",
        );
        code_msg(
            &u.b(&["network", "connect", "--link", "gone:x", "back", "cli"]),
            1,
            "--link gone:x: no such container: gone",
        );
        let sh = |ctr: &str, script: &str| u.b(&["exec", ctr, "sh", "-c", script]);
        assert!(!sh("cli", "cat /etc/hosts").stdout.contains("web"));
        u.b(&["network", "connect", "--link", "web:weblink", "back", "cli"])
            .ok();
        rootless::until("cli reaches web by its link alias", || {
            sh("cli", "timeout 10 wget -qO- http://weblink/").stdout == "hello from rootless\n"
        });
        // Another container of back has the name only.
        let other = u.run(&["--rm", "--network", "back"], &["cat", "/etc/hosts"]);
        other.ok();
        assert!(!other.stdout.contains("weblink"), "{}", other.stdout);
        // Followed across a restart of each.
        u.b(&["restart", "-t", "1", "web"]).ok();
        u.b(&["restart", "-t", "1", "cli"]).ok();
        rootless::until("weblink after the restarts", || {
            sh("cli", "timeout 10 wget -qO- http://weblink/").stdout == "hello from rootless\n"
        });
        u.b(&["rm", "-f", "web", "cli"]).ok();
        u.b(&["network", "rm", "front", "back"]).ok();
        u.finish();
    });
}

/// Gives the host's stand-in IPv6: fd99::1/64 towards the peer (fd99::2), its default
/// route through it, and the internet's address fd98::1 on the peer.
fn host_ipv6(host: &rootless::Host) {
    rootless::sh("ip -6 addr add fd99::1/64 dev pn0 nodad && ip -6 route add default via fd99::2")
        .ok();
    host.on_peer(
        "ip -6 addr add fd99::2/64 dev pn1 nodad && ip -6 addr add fd98::1/128 dev lo && ip -6 route add default via fd99::1",
    )
    .ok();
}

#[test]
fn rootless_dual_stack_user_network() {
    rootless::in_netns("rootless_dual_stack_user_network", 0o666, |host| {
        host_ipv6(host);
        let u = rootless::U::new("rlv6");
        // The internet, on IPv6 only.
        let www = u.w.dir.join("internet");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "from the v6 internet\n").unwrap();
        let mut server = std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", host.peer_pid()))
            .args(["busybox", "httpd", "-f", "-p", "[fd98::1]:8088", "-h"])
            .arg(&www)
            .spawn()
            .unwrap();
        rootless::until("the v6 internet answers the host", || {
            rootless::sh("timeout 5 busybox wget -qO- 'http://[fd98::1]:8088/'").stdout
                == "from the v6 internet\n"
        });
        u.b(&["network", "create", "--ipv6", "v6net"]).ok();
        let inspect = u.b(&["network", "inspect", "v6net"]);
        inspect.ok();
        assert_eq!(inspect.json()[0]["EnableIPv6"], true, "{}", inspect.stdout);
        let (p1, p2) = (free_port(), free_port());
        let web = u.run_d(
            &[
                "--name",
                "web",
                "--network",
                "v6net",
                "-p",
                &format!("{p1}:80"),
                "-p",
                &format!("[::1]:{p2}:80"),
            ],
            &rootless::httpd_cmd(),
        );
        // Published on 0.0.0.0 and [::] (one port), and on [::1] alone.
        rootless::serves(
            &[
                format!("127.0.0.1:{p1}"),
                format!("[::1]:{p1}"),
                format!("[fd99::1]:{p1}"),
                format!("[::1]:{p2}"),
            ],
            "hello from rootless\n",
        );
        assert!(rootless::http_get(&format!("127.0.0.1:{p2}")).is_none());
        let port = u.b(&["port", "web"]);
        port.ok();
        for l in [
            format!("80/tcp -> 0.0.0.0:{p1}"),
            format!("80/tcp -> [::]:{p1}"),
            format!("80/tcp -> [::1]:{p2}"),
        ] {
            assert!(port.stdout.lines().any(|x| x == l), "{l}: {}", port.stdout);
        }
        // Both addresses, and the name resolving to both in another container.
        let v = u.b(&["inspect", "web"]);
        v.ok();
        let n = &v.json()[0]["NetworkSettings"]["Networks"]["v6net"];
        let ip6 = n["GlobalIPv6Address"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(ip6.starts_with("fd"), "{n}");
        assert!(
            !n["IPAddress"].as_str().unwrap_or_default().is_empty(),
            "{n}"
        );
        let out = u.run(
            &["--rm", "--network", "v6net"],
            &[
                "sh",
                "-c",
                &format!(
                    "grep -c \"web\" /etc/hosts; grep -q \"^{ip6}\\s.*web\" /etc/hosts && wget -qO- 'http://[{ip6}]/' && wget -qO- http://[fd98::1]:8088/"
                ),
            ],
        );
        let _ = server.kill();
        let _ = server.wait();
        out.ok();
        assert_eq!(
            out.stdout, "2\nhello from rootless\nfrom the v6 internet\n",
            "{}",
            out.stderr
        );
        // Connected while it runs to a second dual-stack network: reached there over IPv6.
        u.b(&["network", "create", "--ipv6", "v6b"]).ok();
        u.b(&["network", "connect", "v6b", "web"]).ok();
        let v = u.b(&["inspect", "web"]);
        v.ok();
        let ip6b = v.json()[0]["NetworkSettings"]["Networks"]["v6b"]["GlobalIPv6Address"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(ip6b.starts_with("fd") && ip6b != ip6, "{ip6b} {ip6}");
        let out = u.run(
            &["--rm", "--network", "v6b"],
            &[
                "sh",
                "-c",
                &format!("grep -q \"^{ip6b}\\s.*web\" /etc/hosts && wget -qO- 'http://[{ip6b}]/'"),
            ],
        );
        out.ok();
        assert_eq!(out.stdout, "hello from rootless\n", "{}", out.stderr);
        u.b(&["rm", "-f", &web]).ok();
        u.b(&["network", "rm", "v6net", "v6b"]).ok();
        u.finish();
    });
}

#[test]
fn rootless_ipv6_ports_on_the_default_and_an_ipv4_network() {
    rootless::in_netns(
        "rootless_ipv6_ports_on_the_default_and_an_ipv4_network",
        0o666,
        |host| {
            host_ipv6(host);
            let u = rootless::U::new("rlv6p");
            let (p1, p2, p3, p4) = (free_port(), free_port(), free_port(), free_port());
            // The default network (pasta): TCP and UDP on IPv6 host addresses, served by
            // the monitor into the container's loopback. UDP: an echo server (the host's
            // perl, its /usr mounted in).
            u.run_d(
                &[
                    "--name",
                    "web",
                    "-v",
                    "/usr:/usr:ro",
                    "-p",
                    &format!("[::1]:{p1}:80"),
                    "-p",
                    &format!("[::]:{p2}:80"),
                    "-p",
                    &format!("[::1]:{p3}:53/udp"),
                ],
                &[
                    "sh",
                    "-c",
                    "httpd -p 80 -h /www; exec perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>53,Proto=>q(udp)) or die $!; while($s->recv($m,1500)){ $s->send(qq(pong:$m)) }'",
                ],
            );
            rootless::serves(
                &[
                    format!("[::1]:{p1}"),
                    format!("[::1]:{p2}"),
                    format!("[fd99::1]:{p2}"),
                ],
                "hello from rootless\n",
            );
            // Only where asked: not on IPv4, nor p1 beyond [::1].
            assert!(rootless::http_get(&format!("127.0.0.1:{p2}")).is_none());
            assert!(rootless::http_get(&format!("[fd99::1]:{p1}")).is_none());
            let s = std::net::UdpSocket::bind("[::1]:0").unwrap();
            assert_eq!(
                rootless::udp_ask(&s, &format!("[::1]:{p3}"), "ping"),
                "pong:ping"
            );
            let port = u.b(&["port", "web"]);
            port.ok();
            for l in [
                format!("80/tcp -> [::1]:{p1}"),
                format!("80/tcp -> [::]:{p2}"),
                format!("53/udp -> [::1]:{p3}"),
            ] {
                assert!(port.stdout.lines().any(|x| x == l), "{l}: {}", port.stdout);
            }
            // An address of the container's own needs a user network: one line, nothing made.
            let bad = u.run(
                &["--rm", "--network", "bridge", "--ip6", "fd00::5"],
                &["true"],
            );
            code_msg(
                &bad,
                125,
                "--ip6: user specified IP address is supported on user defined networks only",
            );
            assert_eq!(u.b(&["ps", "-aq"]).stdout.lines().count(), 1);
            // An IPv4-only user network: [::1] relayed to the container's IPv4 address.
            u.b(&["network", "create", "v4net"]).ok();
            u.run_d(
                &[
                    "--name",
                    "web4",
                    "--network",
                    "v4net",
                    "-p",
                    &format!("[::1]:{p4}:80"),
                ],
                &rootless::httpd_cmd(),
            );
            let a = format!("[::1]:{p4}");
            rootless::until("httpd answers on [::1] from an IPv4 network", || {
                rootless::http_get(&a).is_some()
            });
            assert_eq!(rootless::http_get(&a).unwrap(), "hello from rootless\n");
            u.b(&["rm", "-f", "web", "web4"]).ok();
            u.b(&["network", "rm", "v4net"]).ok();
            u.finish();
        },
    );
}
