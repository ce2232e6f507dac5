//! Rootless networking (pasta), driven through the built binary as an ordinary user made
//! by the test, with real traffic. Every test re-execs itself under `unshare --net --mount`:
//! a private network namespace stands for the host (an address 10.99.0.1/24 and a default
//! route through a peer namespace, 10.99.0.2, that stands for the internet and answers
//! on 10.98.0.1), and in the private mount namespace a character device 10:200 of mode
//! 0666 is bind-mounted over /dev/net/tun (the machine's is 0600; most distributions ship
//! it 0666, which pasta needs): the machine's own device and network are never touched,
//! and nothing has to be restored. After each test: no container, no pasta, no process of
//! the user, no IPAM entry.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::people::{code_msg, free_port};
use common::rootless::{http_get, httpd_cmd, in_netns, in_netns_routed, udp_ask, until, U};
use common::Out;

#[test]
fn rootless_http_through_published_ports() {
    in_netns("rootless_http_through_published_ports", 0o666, |host| {
        let u = U::new("rlhttp");
        let (p1, p2) = (free_port(), free_port());
        let id = u.run_d(
            &[
                "--name",
                "web",
                "-p",
                &format!("{p1}:80"),
                "-p",
                &format!("127.0.0.1:{p2}:80"),
                "-p",
                "127.0.0.1::80",
            ],
            &httpd_cmd(),
        );
        let a1 = format!("127.0.0.1:{p1}");
        until("httpd answers through pasta", || http_get(&a1).is_some());
        assert_eq!(http_get(&a1).unwrap(), "hello from rootless\n");
        // The host's own address, and a 127.0.0.1 binding.
        assert_eq!(
            http_get(&format!("10.99.0.1:{p1}")).unwrap(),
            "hello from rootless\n"
        );
        assert_eq!(
            http_get(&format!("127.0.0.1:{p2}")).unwrap(),
            "hello from rootless\n"
        );
        // Another host reaches the 0.0.0.0 binding, not the 127.0.0.1 one.
        let far = host.on_peer(&format!(
            "timeout 10 busybox wget -qO- http://10.99.0.1:{p1}/"
        ));
        assert_eq!(far.stdout, "hello from rootless\n", "{}", far.stderr);
        let far = host.on_peer(&format!(
            "timeout 5 busybox wget -qO- http://10.99.0.1:{p2}/"
        ));
        assert_ne!(far.code, 0, "a 127.0.0.1 binding answered another host");

        // port, ps and inspect show the bindings; the random one works.
        let port = u.b(&["port", "web"]);
        port.ok();
        let lines: Vec<&str> = port.stdout.lines().collect();
        assert!(
            lines.contains(&format!("80/tcp -> 0.0.0.0:{p1}").as_str()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&format!("80/tcp -> 127.0.0.1:{p2}").as_str()),
            "{lines:?}"
        );
        let random = lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("80/tcp -> 127.0.0.1:")
                    .filter(|p| *p != p2.to_string())
            })
            .expect("the random port");
        assert_eq!(
            http_get(&format!("127.0.0.1:{random}")).unwrap(),
            "hello from rootless\n"
        );
        let ps = u.b(&["ps", "--format", "{{.Ports}}"]);
        ps.ok();
        assert!(
            ps.stdout.contains(&format!("0.0.0.0:{p1}->80/tcp")),
            "{}",
            ps.stdout
        );
        let inspect = u.b(&["inspect", "web"]);
        inspect.ok();
        let ports = &inspect.json()[0]["NetworkSettings"]["Ports"]["80/tcp"];
        assert!(
            ports
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["HostIp"] == "0.0.0.0"
                    && b["HostPort"].as_str() == Some(&*p1.to_string())),
            "{ports}"
        );
        // One pasta, the user's, for the container; gone with it, and its ports free.
        assert_eq!(u.pastas().len(), 1, "{:?}", u.pastas());
        let fwd = u.check_forwarder(&id);
        u.b(&["rm", "-f", &id]).ok();
        until("pasta gone", || u.pastas().is_empty());
        // Killed and waited for by its monitor before rm returned.
        assert!(u.forwarders().is_empty(), "{:?}", u.forwarders());
        u.until_gone("the forwarder gone", fwd);
        TcpListener::bind(&a1).expect("the published port is free again");
        u.finish();
    });
}

#[test]
fn rootless_image_container_restarts_with_its_ports() {
    in_netns(
        "rootless_image_container_restarts_with_its_ports",
        0o666,
        |_host| {
            let u = U::new("rlimg");
            // An image container: its monitor runs in berth's user namespace.
            let tar = u.w.dir.join("bb.tar");
            let st = Command::new("tar")
                .arg("-C")
                .arg(&u.w.rootfs)
                .args(["-cf", tar.to_str().unwrap(), "."])
                .status()
                .unwrap();
            assert!(st.success());
            u.u.own(&tar);
            u.b(&["import", tar.to_str().unwrap(), "rlimg"]).ok();
            let port = free_port();
            let mut a = vec!["run", "-d", "--name", "web"];
            let p = format!("{port}:80");
            a.extend(["-p", &p, "rlimg"]);
            a.extend(httpd_cmd());
            let out = u.b(&a);
            out.ok();
            let id = out.stdout.trim().to_string();
            let addr = format!("127.0.0.1:{port}");
            until("httpd answers", || http_get(&addr).is_some());
            let first = u.pastas();
            assert_eq!(first.len(), 1, "{first:?}");
            let fwd1 = u.check_forwarder(&id);
            // A restart gets a new namespace and a new pasta; the old one is gone.
            u.b(&["restart", "-t", "1", "web"]).ok();
            until("httpd answers after the restart", || {
                http_get(&addr).is_some()
            });
            let second = u.pastas();
            assert_eq!(second.len(), 1, "{second:?}");
            assert_ne!(first[0].0, second[0].0);
            // And a new forwarder, the old one killed and waited for.
            let fwd2 = u.check_forwarder(&id);
            assert_ne!(fwd1, fwd2);
            u.until_gone("the first forwarder gone", fwd1);
            // Stopped: no pasta, the port is free; started again: served again.
            u.b(&["stop", "-t", "1", "web"]).ok();
            until("pasta gone", || u.pastas().is_empty());
            u.until_gone("the forwarder gone with the stop", fwd2);
            TcpListener::bind(&addr).expect("the published port is free while stopped");
            let port_out = u.b(&["port", "web"]);
            assert_eq!(port_out.stdout, "", "a stopped container publishes nothing");
            u.b(&["start", "web"]).ok();
            until("httpd answers after start", || http_get(&addr).is_some());
            u.b(&["rm", "-f", "web"]).ok();
            u.b(&["rmi", "rlimg"]).ok();
            u.finish();
        },
    );
}

#[test]
fn rootless_outbound_to_internet_and_host() {
    in_netns("rootless_outbound_to_internet_and_host", 0o666, |host| {
        let u = U::new("rlout");
        // The internet: an HTTP server on 10.98.0.1 in the peer's namespace.
        let www = u.w.dir.join("internet");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "from the internet\n").unwrap();
        let mut server = Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", host.peer_pid()))
            .args(["busybox", "httpd", "-f", "-p", "10.98.0.1:8088", "-h"])
            .arg(&www)
            .spawn()
            .unwrap();
        // The host itself: a listener on its loopback only.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let hport = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let mut s = s;
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfrom the host\n",
                );
            }
        });
        // Podman's name for it works too.
        let out = u.run(
            &["--rm", "--network", "pasta"],
            &[
                "sh",
                "-c",
                &format!(
                    "ip -o -4 addr show eth0; wget -qO- http://10.98.0.1:8088/ && wget -qO- http://10.99.0.2:{hport}/"
                ),
            ],
        );
        let _ = server.kill();
        let _ = server.wait();
        out.ok();
        // pasta gives the container the host's address; its gateway's address is the host.
        assert!(out.stdout.contains("10.99.0.1/24"), "{}", out.stdout);
        assert!(out.stdout.contains("from the internet\n"), "{}", out.stdout);
        assert!(out.stdout.contains("from the host\n"), "{}", out.stdout);
        u.finish();
    });
}

#[test]
fn rootless_udp_through_a_published_port() {
    in_netns("rootless_udp_through_a_published_port", 0o666, |_host| {
        let u = U::new("rludp");
        let port = free_port();
        // A UDP echo server in the container: the host's perl, its /usr mounted in.
        let id = u.run_d(
            &["-v", "/usr:/usr:ro", "-p", &format!("{port}:53/udp")],
            &[
                "perl",
                "-MIO::Socket::INET",
                "-e",
                "$s=IO::Socket::INET->new(LocalPort=>53,Proto=>'udp') or die $!; while($s->recv($m,1500)){ $s->send(\"pong:$m\") }",
            ],
        );
        let s = UdpSocket::bind("10.99.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut got = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut answered = || {
            let _ = s.send_to(b"ping", format!("10.99.0.1:{port}"));
            let mut buf = [0u8; 64];
            match s.recv(&mut buf) {
                Ok(n) => {
                    got = String::from_utf8_lossy(&buf[..n]).into_owned();
                    true
                }
                Err(_) => false,
            }
        };
        while !answered() {
            if Instant::now() > deadline {
                let logs = u.b(&["logs", &id]);
                panic!(
                    "no UDP answer through the published port; the server's logs: {}{}",
                    logs.stdout, logs.stderr
                );
            }
        }
        assert_eq!(got, "pong:ping");
        let port_out = u.b(&["port", &id]);
        assert_eq!(port_out.stdout, format!("53/udp -> 0.0.0.0:{port}\n"));
        u.finish();
    });
}

#[test]
fn rootless_monitor_killed_leaves_no_pasta() {
    in_netns("rootless_monitor_killed_leaves_no_pasta", 0o666, |_host| {
        let u = U::new("rlkill");
        let port = free_port();
        // create, then start: the monitor a start spawns opens the namespaces too.
        let p = format!("{port}:80");
        let mut args = vec!["create", "-p", &p, "--rootfs", u.w.rootfs()];
        args.extend(httpd_cmd());
        let out = u.b(&args);
        out.ok();
        let id = out.stdout.trim().to_string();
        u.b(&["start", &id]).ok();
        let a = format!("127.0.0.1:{port}");
        until("httpd answers", || http_get(&a).is_some());
        let helper = u.ipam()["endpoints"][0]["helper"]["pid"].as_i64().unwrap() as i32;
        assert!(u.pastas().iter().any(|(p, _)| *p == helper));
        let fwd = u.check_forwarder(&id);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(u.w.monitor_pid(&id)),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        // The forwarder dies with its monitor too, before any berth command.
        u.until_gone("the forwarder gone with its monitor", fwd);
        // pasta dies with its monitor, before any berth command.
        until("pasta gone with its monitor", || {
            !u.pastas().iter().any(|(p, _)| *p == helper)
        });
        // The next command reconciles: the container is exited, its ports released.
        let out = u.b(&["ps", "-a", "--format", "{{.Status}}"]);
        out.ok();
        assert!(out.stdout.starts_with("Exited"), "{}", out.stdout);
        assert_eq!(u.ipam()["endpoints"], serde_json::json!([]));
        // A dying process has lost its command line before it closes its fds.
        until("the published port is free again", || {
            TcpListener::bind(&a).is_ok()
        });
        u.finish();
    });
}

#[test]
fn rootless_refusals_leave_nothing() {
    in_netns("rootless_refusals_leave_nothing", 0o666, |_host| {
        let u = U::new("rlbad");
        code_msg(
            &u.run(&["--network", "appnet"], &["true"]),
            125,
            "network appnet not found",
        );
        // On a user network: no sctp port, no address outside the subnet, no connect of
        // a missing container or to a missing network.
        u.b(&["network", "create", "appnet"]).ok();
        code_msg(
            &u.run(&["--network", "appnet", "-p", "5353:53/sctp"], &["true"]),
            125,
            "--publish 53/sctp: rootless containers on user networks publish tcp and udp ports only",
        );
        code_msg(
            &u.run(&["--network", "appnet", "--ip", "10.0.0.1"], &["true"]),
            125,
            "--ip 10.0.0.1",
        );
        code_msg(
            &u.b(&["network", "connect", "appnet", "nosuch"]),
            1,
            "No such container: nosuch",
        );
        // A container of the default network (pasta's) joins no user network.
        let p = format!("{}:80", free_port());
        let out = u.b(&[
            "create",
            "--name",
            "onpasta",
            "-p",
            &p,
            "--rootfs",
            u.w.rootfs(),
            "true",
        ]);
        out.ok();
        code_msg(
            &u.b(&["network", "connect", "appnet", "onpasta"]),
            1,
            "network connect: rootless, container onpasta is on the default network (pasta)",
        );
        code_msg(
            &u.b(&["network", "connect", "nonet", "onpasta"]),
            1,
            "nonet",
        );
        u.b(&["rm", "onpasta"]).ok();
        // A port in use on a user network: said, and the shared namespace made for the
        // start is gone with it.
        let busy = TcpListener::bind("0.0.0.0:0").unwrap();
        let bp = busy.local_addr().unwrap().port();
        let out = u.run(
            &["--rm", "--network", "appnet", "-p", &format!("{bp}:80")],
            &["true"],
        );
        assert_eq!(out.code, 125, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "bind for 0.0.0.0:{bp}/tcp failed: port is already allocated"
            )),
            "{}",
            out.stderr
        );
        drop(busy);
        until("no shared namespace left", || stack(&u).is_empty());
        assert!(!u.w.runroot.join("rootless-netns").exists());
        u.b(&["network", "rm", "appnet"]).ok();
        code_msg(
            &u.run(&["--link", "other:db", "-p", "8080:80"], &["true"]),
            125,
            "--link",
        );
        code_msg(
            &u.run(&["-p", "5000:5000/sctp"], &["true"]),
            125,
            "tcp and udp ports only",
        );
        // A port in use: the start fails naming it.
        let busy = TcpListener::bind("0.0.0.0:0").unwrap();
        let bp = busy.local_addr().unwrap().port();
        let out = u.run(&["--rm", "-p", &format!("{bp}:80")], &["true"]);
        assert_eq!(out.code, 125, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "bind for 0.0.0.0:{bp}/tcp failed: port is already allocated"
            )),
            "{}",
            out.stderr
        );
        // A privileged host port: said, not pasta's message.
        let out = u.run(&["--rm", "-p", "80:80"], &["true"]);
        assert_eq!(out.code, 125, "{}", out.stderr);
        assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
        assert!(u.pastas().is_empty(), "{:?}", u.pastas());
        assert_eq!(u.ipam()["endpoints"], serde_json::json!([]));
        drop(busy);
        u.finish();
    });
}

#[test]
fn rootless_without_a_default_route_says_so() {
    in_netns_routed(
        "rootless_without_a_default_route_says_so",
        0o666,
        false,
        |_host| {
            let u = U::new("rlnoroute");
            let out = u.run(&["--rm", "--network", "bridge"], &["true"]);
            assert_eq!(out.code, 125, "{}", out.stderr);
            assert!(
                out.stderr.contains("needs a default route on the host"),
                "{}",
                out.stderr
            );
            assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
            assert!(u.pastas().is_empty());
            u.finish();
        },
    );
}

#[test]
fn rootless_without_tun_says_so() {
    in_netns("rootless_without_tun_says_so", 0o600, |_host| {
        let u = U::new("rltun");
        let out = u.run(&["--rm", "-p", &format!("{}:80", free_port())], &["true"]);
        assert_eq!(out.code, 125, "{}", out.stderr);
        assert!(
            out.stderr.contains("/dev/net/tun") && out.stderr.contains("0666"),
            "{}",
            out.stderr
        );
        assert!(u.pastas().is_empty());
        u.finish();
    });
}

/// The user's processes that hold or connect the shared network namespace.
fn stack(u: &U) -> Vec<(i32, String)> {
    u.processes()
        .into_iter()
        .filter(|(pid, c)| {
            c.contains("pasta")
                || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|n| n.trim() == "berth-netns")
        })
        .collect()
}

#[test]
fn rootless_user_network_names_aliases_and_ports() {
    in_netns(
        "rootless_user_network_names_aliases_and_ports",
        0o666,
        |host| {
            let u = U::new("rlusernet");
            u.b(&["network", "create", "appnet"]).ok();
            let port = free_port();
            let web = u.run_d(
                &[
                    "--name",
                    "web",
                    "--network",
                    "appnet",
                    "--network-alias",
                    "www",
                    "-p",
                    &format!("{port}:80"),
                ],
                &httpd_cmd(),
            );
            // One holder and one pasta for the namespace.
            assert_eq!(stack(&u).len(), 2, "{:?}", stack(&u));
            // The published port, from the host's loopback, its address and another host.
            let a = format!("127.0.0.1:{port}");
            until("httpd answers through the shared namespace", || {
                http_get(&a).is_some()
            });
            assert_eq!(http_get(&a).unwrap(), "hello from rootless\n");
            assert_eq!(
                http_get(&format!("10.99.0.1:{port}")).unwrap(),
                "hello from rootless\n"
            );
            let far = host.on_peer(&format!(
                "timeout 10 busybox wget -qO- http://10.99.0.1:{port}/"
            ));
            assert_eq!(far.stdout, "hello from rootless\n", "{}", far.stderr);
            // A container started later reaches it by name, alias and short id.
            let short = &web[..12];
            let out = u.run(
                &["--rm", "--network", "appnet"],
                &[
                    "sh",
                    "-c",
                    &format!(
                    "wget -qO- http://web/ && wget -qO- http://www/ && wget -qO- http://{short}/"
                ),
                ],
            );
            out.ok();
            assert_eq!(out.stdout, "hello from rootless\n".repeat(3));
            // A container started after it is resolved from it (its hosts file kept current);
            // raw TCP with nc, by the newcomer's alias.
            u.run_d(
                &[
                    "--name",
                    "db",
                    "--network",
                    "appnet",
                    "--network-alias",
                    "mysql",
                ],
                &[
                    "sh",
                    "-c",
                    "while true; do echo db-says-hi | nc -l -p 3306; done",
                ],
            );
            let mut said = String::new();
            until("web reaches db by its alias", || {
                let o = u.b(&["exec", "web", "sh", "-c", "sleep 5 | nc mysql 3306"]);
                said = o.stdout.clone();
                said.contains("db-says-hi")
            });
            let ps = u.b(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
            ps.ok();
            assert!(
                ps.stdout.contains(&format!("web 0.0.0.0:{port}->80/tcp")),
                "{}",
                ps.stdout
            );
            let inspect = u.b(&["inspect", "web"]);
            inspect.ok();
            let ip = inspect.json()[0]["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(!ip.is_empty(), "{}", inspect.stdout);
            // Still one stack; everything gone with the last container.
            assert_eq!(stack(&u).len(), 2, "{:?}", stack(&u));
            let fwd = u.check_forwarder(&web);
            u.b(&["rm", "-f", "web", "db"]).ok();
            assert!(u.forwarders().is_empty(), "{:?}", u.forwarders());
            u.until_gone("the forwarder gone", fwd);
            until("the shared namespace torn down", || stack(&u).is_empty());
            // The monitor closes its listener as it ends.
            until("the published port is free again", || {
                TcpListener::bind(&a).is_ok()
            });
            u.b(&["network", "rm", "appnet"]).ok();
            u.finish();
        },
    );
}

#[test]
fn rootless_user_network_monitor_killed_is_reconciled() {
    in_netns(
        "rootless_user_network_monitor_killed_is_reconciled",
        0o666,
        |_host| {
            let u = U::new("rlunkill");
            u.b(&["network", "create", "killnet"]).ok();
            let id = u.run_d(&["--name", "lone", "--network", "killnet"], &httpd_cmd());
            assert_eq!(stack(&u).len(), 2, "{:?}", stack(&u));
            let monitor = u.w.monitor_pid(&id);
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(monitor),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            // Dead (a zombie at most) before the next command looks.
            until("the monitor dead", || {
                std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                    .map(|s| {
                        let state = s.rsplit(')').next().unwrap_or("").trim_start();
                        state.starts_with('Z') || state.starts_with('X')
                    })
                    .unwrap_or(true)
            });
            // The next command releases the endpoint and ends the namespace.
            let out = u.b(&["ps", "-a", "--format", "{{.Status}}"]);
            out.ok();
            assert!(out.stdout.starts_with("Exited"), "{}", out.stdout);
            until("the shared namespace torn down", || stack(&u).is_empty());
            assert_eq!(u.ipam()["endpoints"], serde_json::json!([]));
            assert!(!u.w.runroot.join("rootless-netns").exists());
            // And a new one is made by the next container.
            let out = u.run(
                &["--rm", "--network", "killnet", "--name", "again"],
                &["ip", "-o", "-4", "addr", "show", "eth0"],
            );
            out.ok();
            assert!(out.stdout.contains("inet "), "{}", out.stdout);
            u.b(&["rm", "lone"]).ok();
            u.b(&["network", "rm", "killnet"]).ok();
            u.finish();
        },
    );
}

/// `exec CTR sh -c SCRIPT` as the user: its output.
fn exec_sh(u: &U, ctr: &str, script: &str) -> Out {
    u.b(&["exec", ctr, "sh", "-c", script])
}

#[test]
fn rootless_user_network_connect_disconnect_and_links() {
    in_netns(
        "rootless_user_network_connect_disconnect_and_links",
        0o666,
        |_host| {
            let u = U::new("rlconnect");
            u.b(&["network", "create", "front"]).ok();
            u.b(&["network", "create", "back"]).ok();
            u.run_d(&["--name", "web", "--network", "front"], &httpd_cmd());
            // A link on a user network to a container not on it yet (Docker's: the alias
            // is the linking container's own, resolved when the target is there).
            u.run_d(
                &[
                    "--name",
                    "cli",
                    "--network",
                    "back",
                    "--link",
                    "web:weblink",
                ],
                &["sleep", "600"],
            );
            assert_eq!(stack(&u).len(), 2, "{:?}", stack(&u));
            let hosts = exec_sh(&u, "cli", "cat /etc/hosts");
            hosts.ok();
            assert!(
                !hosts.stdout.contains("web"),
                "web not on back yet: {}",
                hosts.stdout
            );
            // Bad input first: nothing changes.
            code_msg(
                &u.b(&["network", "connect", "front", "web"]),
                1,
                "container web is already connected to network front",
            );
            code_msg(
                &u.b(&["network", "connect", "nowhere", "web"]),
                1,
                "nowhere",
            );
            code_msg(
                &u.b(&["network", "connect", "--ip", "10.1.2.3", "back", "web"]),
                1,
                "--ip 10.1.2.3",
            );
            code_msg(
                &u.b(&["network", "disconnect", "front", "web"]),
                1,
                "is its main network",
            );
            code_msg(
                &u.b(&["network", "disconnect", "back", "web"]),
                1,
                "container web is not connected to network back",
            );
            // Connected while it runs: reachable from back by name, link alias and the
            // alias given to connect.
            u.b(&["network", "connect", "--alias", "www2", "back", "web"])
                .ok();
            // (httpd may still be starting on this busy machine)
            until("cli reaches web on back", || {
                exec_sh(&u, "cli", "timeout 10 wget -qO- http://web/").code == 0
            });
            let got = exec_sh(
                &u,
                "cli",
                "wget -qO- http://web/ && wget -qO- http://weblink/ && wget -qO- http://www2/",
            );
            got.ok();
            assert_eq!(got.stdout, "hello from rootless\n".repeat(3));
            let inspect = u.b(&["inspect", "web"]);
            inspect.ok();
            let nets = &inspect.json()[0]["NetworkSettings"]["Networks"];
            assert!(
                nets["back"]["IPAddress"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{}",
                inspect.stdout
            );
            // The link alias is cli's own: another container of back has the name only.
            let other = u.run(&["--rm", "--network", "back"], &["cat", "/etc/hosts"]);
            other.ok();
            assert!(
                other.stdout.contains(" web") || other.stdout.contains("\tweb"),
                "{}",
                other.stdout
            );
            assert!(!other.stdout.contains("weblink"), "{}", other.stdout);
            // A stopped container connected, then started: on both networks.
            u.b(&[
                "create",
                "--name",
                "late",
                "--network",
                "front",
                "--rootfs",
                u.w.rootfs(),
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/www",
            ])
            .ok();
            u.b(&["network", "connect", "back", "late"]).ok();
            u.b(&["start", "late"]).ok();
            until("cli reaches late on back", || {
                exec_sh(&u, "cli", "timeout 10 wget -qO- http://late/").code == 0
            });
            let got = exec_sh(&u, "cli", "wget -qO- http://late/");
            got.ok();
            assert_eq!(got.stdout, "hello from rootless\n");
            // Disconnected: cli no longer resolves web by any name; web still serves front.
            u.b(&["network", "disconnect", "back", "web"]).ok();
            let hosts = exec_sh(&u, "cli", "cat /etc/hosts");
            hosts.ok();
            assert!(!hosts.stdout.contains("web"), "{}", hosts.stdout);
            // (the name then goes to the resolvers, unreachable here: a failure or timeout)
            let gone = exec_sh(&u, "cli", "timeout 10 wget -qO- http://weblink/");
            assert_ne!(gone.code, 0, "{}", gone.stdout);
            assert!(!gone.stdout.contains("hello"), "{}", gone.stdout);
            let inspect = u.b(&["inspect", "web"]);
            inspect.ok();
            assert!(
                inspect.json()[0]["NetworkSettings"]["Networks"]["back"].is_null(),
                "{}",
                inspect.stdout
            );
            let got = exec_sh(&u, "late", "wget -qO- http://web/");
            got.ok();
            assert_eq!(got.stdout, "hello from rootless\n");
            // Reconnected after a stop of web: its record keeps back, its start joins it.
            u.b(&["network", "connect", "back", "web"]).ok();
            u.b(&["stop", "-t", "1", "web"]).ok();
            u.b(&["start", "web"]).ok();
            until("cli reaches web again by its link alias", || {
                exec_sh(&u, "cli", "timeout 10 wget -qO- http://weblink/").code == 0
            });
            let got = exec_sh(&u, "cli", "wget -qO- http://weblink/");
            got.ok();
            assert_eq!(got.stdout, "hello from rootless\n");
            assert_eq!(stack(&u).len(), 2, "{:?}", stack(&u));
            u.b(&["rm", "-f", "web", "cli", "late"]).ok();
            until("the shared namespace torn down", || stack(&u).is_empty());
            u.b(&["network", "rm", "front", "back"]).ok();
            u.finish();
        },
    );
}

#[test]
fn rootless_user_network_udp_through_a_published_port() {
    in_netns(
        "rootless_user_network_udp_through_a_published_port",
        0o666,
        |host| {
            let u = U::new("rlunudp");
            u.b(&["network", "create", "udpnet"]).ok();
            let port = free_port();
            // A UDP echo server (the host's perl, its /usr mounted in) that names the
            // peer it saw: each client must get its own flow.
            let id = u.run_d(
                &[
                    "--network", "udpnet", "-v", "/usr:/usr:ro", "-p",
                    &format!("{port}:53/udp"),
                ],
                &[
                    "perl",
                    "-MIO::Socket::INET",
                    "-e",
                    "$s=IO::Socket::INET->new(LocalPort=>53,Proto=>'udp') or die $!; while($s->recv($m,1500)){ $s->send(\"pong:$m\") }",
                ],
            );
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("10.99.0.1:0").unwrap();
            assert_eq!(udp_ask(&a, &format!("127.0.0.1:{port}"), "a1"), "pong:a1");
            assert_eq!(udp_ask(&b, &format!("10.99.0.1:{port}"), "b1"), "pong:b1");
            // Interleaved: answers go back to the client that asked.
            assert_eq!(udp_ask(&a, &format!("127.0.0.1:{port}"), "a2"), "pong:a2");
            assert_eq!(udp_ask(&b, &format!("10.99.0.1:{port}"), "b2"), "pong:b2");
            // From another host.
            let far = host.on_peer(&format!(
                "perl -MIO::Socket::INET -e \"\\$s=IO::Socket::INET->new(PeerAddr=>q(10.99.0.1:{port}),Proto=>q(udp)) or die; for(1..60){{ \\$s->send(q(far)); \\$r=q(); eval {{ local \\$SIG{{ALRM}}=sub{{die}}; alarm 1; \\$s->recv(\\$r,100); alarm 0 }}; if(\\$r){{ print \\$r; exit 0 }} }} exit 1\""
            ));
            assert_eq!(far.stdout, "pong:far", "{}", far.stderr);
            let port_out = u.b(&["port", &id]);
            assert_eq!(port_out.stdout, format!("53/udp -> 0.0.0.0:{port}\n"));
            let fwd = u.check_forwarder(&id);
            u.b(&["rm", "-f", &id]).ok();
            u.until_gone("the forwarder gone", fwd);
            until("the shared namespace torn down", || stack(&u).is_empty());
            until("the published UDP port is free again", || {
                UdpSocket::bind(format!("0.0.0.0:{port}")).is_ok()
            });
            u.b(&["network", "rm", "udpnet"]).ok();
            u.finish();
        },
    );
}

/// Rootless, a container without `--network`, `-p`, `-P` or `--link` gets a namespace with
/// only `lo` and no pasta, even where pasta could run (a usable /dev/net/tun, a default
/// route): the README's difference from Docker, whose rootless default is the network.
/// `--network bridge` asks for pasta's `eth0`.
#[test]
fn rootless_default_is_lo_alone_and_the_bridge_is_asked_for() {
    in_netns(
        "rootless_default_is_lo_alone_and_the_bridge_is_asked_for",
        0o666,
        |_host| {
            let u = U::new("rldef");
            let links = "ip -o link | cut -d: -f2 | tr -d ' '";
            let out = u.run(&["--rm"], &["sh", "-c", links]);
            out.ok();
            assert_eq!(out.stdout, "lo\n", "{}", out.stderr);
            let out = u.run(&["--rm", "--network", "bridge"], &["sh", "-c", links]);
            out.ok();
            let mut got: Vec<&str> = out.stdout.lines().collect();
            got.sort();
            assert_eq!(got, ["eth0", "lo"], "{}", out.stderr);
            assert!(u.pastas().is_empty(), "{:?}", u.pastas());
            assert_eq!(u.ipam()["endpoints"], serde_json::json!([]));
            u.finish();
        },
    );
}
