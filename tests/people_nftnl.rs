//! berth's nftables tables, which berth sends over netlink itself, checked against `nft`
//! as the oracle: the rules a reader expects, written as nft text from what `inspect`
//! says, are loaded by `nft -f` into a scratch table of the same namespace, and both
//! listings must be the same (table name aside). Every test runs inside a private network
//! namespace standing for the host; after each, no container, link, table or IPAM entry.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{in_netns, no_links_tables_or_endpoints, sh, wget, NetWorld as Net};

/// The scratch table the expected text is loaded into.
const ORACLE: &str = "oracle";

fn net(name: &str) -> Net {
    let n = Net::with(name, &["httpd", "wget", "timeout"], "hello from berth\n");
    // Addresses of the host's own to publish on, gone with the namespace.
    sh("ip addr add 10.99.0.1/32 dev lo && ip addr add fd99::1/128 dev lo nodad").ok();
    n
}

/// berth's table of this namespace (there is one root here): its name.
fn berth_table() -> String {
    let tables = sh("nft list tables").stdout;
    let names: Vec<&str> = tables
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|n| n.starts_with("berth-"))
        .collect();
    assert!(!names.is_empty(), "no berth table: {tables}");
    names[0].to_string()
}

/// `nft list table FAMILY NAME` with the name replaced by `T` and the rules of each chain
/// sorted: the order of networks and endpoints in a chain is berth's to choose, and
/// these rules do not depend on it (each ends in a verdict and no two match one packet).
fn listing(family: &str, name: &str) -> String {
    let out = sh(&format!("nft list table {family} {name}"));
    out.ok();
    normalize(&out.stdout, name)
}

fn normalize(text: &str, name: &str) -> String {
    let mut out = Vec::new();
    let mut rules: Vec<String> = Vec::new();
    let mut in_chain = false;
    for l in text.lines() {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with("chain ") {
            in_chain = true;
            out.push(t.to_string());
        } else if t == "}" {
            if in_chain {
                rules.sort();
                out.append(&mut rules);
            }
            in_chain = false;
            out.push(t.to_string());
        } else if in_chain && !t.starts_with("type ") {
            rules.push(t.to_string());
        } else {
            out.push(t.replace(&format!(" {name} "), " T "));
        }
    }
    out.join("\n")
}

/// What `nft` itself makes of `text` (a table named `T`), listed the same way.
fn oracle(family: &str, text: &str) -> String {
    let file = std::env::temp_dir().join(format!("berth-nftnl-{}.nft", std::process::id()));
    std::fs::write(
        &file,
        text.replace("table ip T {", &format!("table ip {ORACLE} {{"))
            .replace("table ip6 T {", &format!("table ip6 {ORACLE} {{")),
    )
    .unwrap();
    let load = sh(&format!("nft -f {}", file.display()));
    let _ = std::fs::remove_file(&file);
    assert_eq!(load.code, 0, "nft -f of the expected text: {}", load.stderr);
    let got = listing(family, ORACLE);
    sh(&format!("nft delete table {family} {ORACLE}")).ok();
    got
}

/// The bridge that holds `gateway`.
fn bridge_of(gateway: &str) -> String {
    let addrs = sh("ip -o addr show").stdout;
    let l = addrs
        .lines()
        .find(|l| l.contains(&format!(" {gateway}/")))
        .unwrap_or_else(|| panic!("no link has {gateway}: {addrs}"));
    l.split_whitespace().nth(1).unwrap().to_string()
}

fn gateway(w: &Net, network: &str) -> String {
    let v = w.b(&["network", "inspect", network]).json()[0].clone();
    v["IPAM"]["Config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Gateway"].as_str().unwrap().to_string())
        .find(|g| !g.contains(':'))
        .unwrap()
}

/// The container's (IPv4, IPv6) addresses on `network`.
fn addrs(w: &Net, id: &str, network: &str) -> (String, String) {
    let v = &w.inspect(id)["NetworkSettings"]["Networks"][network];
    (
        v["IPAddress"].as_str().unwrap_or("").to_string(),
        v["GlobalIPv6Address"].as_str().unwrap_or("").to_string(),
    )
}

fn nat_chains(ports: &str, output6: &str) -> String {
    format!(
        "  chain ports {{\n{ports}  }}\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }}\n  chain output {{\n    type nat hook output priority -100; policy accept;\n    {output6}fib daddr type local jump ports\n  }}\n"
    )
}

fn table(family: &str, ports: &str, post: &str, fwd: &str) -> String {
    let out6 = if family == "ip6" {
        "ip6 daddr != ::1 "
    } else {
        ""
    };
    format!(
        "table {family} T {{\n{}  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{fwd}  }}\n}}\n",
        nat_chains(ports, out6)
    )
}

#[test]
fn tables_are_what_nft_makes_of_the_same_rules() {
    in_netns("tables_are_what_nft_makes_of_the_same_rules", || {
        let w = net("nftnl-oracle");
        w.b(&["network", "create", "--subnet", "10.77.0.0/20", "users"])
            .ok();
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
        w.b(&[
            "network",
            "create",
            "--internal",
            "--subnet",
            "10.88.0.0/24",
            "hidden",
        ])
        .ok();
        let sleep = ["sleep", "600"];
        let web = w.run_d(
            &[
                "--network",
                "bridge",
                "-p",
                "127.0.0.1:8080:80",
                "-p",
                "8000-8001:80-81",
                "-p",
                "5353:53/udp",
                "-p",
                "10.99.0.1:9090:90",
            ],
            &sleep,
        );
        let app = w.run_d(
            &[
                "--network",
                "users",
                "-p",
                "8081:80",
                "-p",
                "7000:7000/sctp",
            ],
            &sleep,
        );
        let dual = w.run_d(
            &[
                "--network",
                "dual",
                "-p",
                "8082:80",
                "-p",
                "[fd99::1]:8443:443",
            ],
            &sleep,
        );
        let hid = w.run_d(&["--network", "hidden"], &sleep);

        let (web4, _) = addrs(&w, &web, "bridge");
        let (app4, _) = addrs(&w, &app, "users");
        let (dual4, dual6) = addrs(&w, &dual, "dual");
        assert!(!dual6.is_empty(), "dual has an IPv6 address");
        let br = bridge_of(&gateway(&w, "bridge"));
        let bu = bridge_of(&gateway(&w, "users"));
        let bd = bridge_of(&gateway(&w, "dual"));
        let bh = bridge_of(&gateway(&w, "hidden"));
        let name = berth_table();

        let masq = |net: &str, b: &str, lo: bool| {
            let mut s = format!(
                "    ip saddr {net} oifname != \"{b}\" masquerade\n    ct status dnat ip saddr {net} oifname \"{b}\" masquerade\n"
            );
            if lo {
                s += &format!(
                    "    ct status dnat ip saddr 127.0.0.0/8 oifname \"{b}\" masquerade\n"
                );
            }
            s
        };
        let isolate = |from: &str| {
            [&br, &bu, &bd, &bh]
                .iter()
                .filter(|b| b.as_str() != from)
                .map(|b| format!("    iifname \"{from}\" oifname \"{b}\" drop\n"))
                .collect::<String>()
        };
        let internal = format!(
            "    iifname \"{bh}\" oifname != \"{bh}\" drop\n    oifname \"{bh}\" iifname != \"{bh}\" drop\n"
        );
        let ports4 = format!(
            "    ip daddr 127.0.0.1 tcp dport 8080 dnat to {web4}:80\n    tcp dport 8000 dnat to {web4}:80\n    tcp dport 8001 dnat to {web4}:81\n    udp dport 5353 dnat to {web4}:53\n    ip daddr 10.99.0.1 tcp dport 9090 dnat to {web4}:90\n    tcp dport 8081 dnat to {app4}:80\n    sctp dport 7000 dnat to {app4}:7000\n    tcp dport 8082 dnat to {dual4}:80\n"
        );
        let post4 = masq("172.17.0.0/16", &br, true)
            + &masq("10.77.0.0/20", &bu, true)
            + &masq("10.66.0.0/24", &bd, true);
        let fwd4 = isolate(&br) + &isolate(&bu) + &isolate(&bd) + &internal;
        let want4 = oracle("ip", &table("ip", &ports4, &post4, &fwd4));
        assert_eq!(listing("ip", &name), want4);

        let ports6 = format!(
            "    tcp dport 8082 dnat to [{dual6}]:80\n    ip6 daddr fd99::1 tcp dport 8443 dnat to [{dual6}]:443\n"
        );
        let post6 = format!(
            "    ip6 saddr fd66::/64 oifname != \"{bd}\" masquerade\n    ct status dnat ip6 saddr fd66::/64 oifname \"{bd}\" masquerade\n"
        );
        let want6 = oracle("ip6", &table("ip6", &ports6, &post6, &isolate(&bd)));
        assert_eq!(listing("ip6", &name), want6);

        // Without IPv6 endpoints, no ip6 table; the ip table loses dual's rules.
        w.b(&["rm", "-f", &dual]).ok();
        assert!(
            !sh("nft list tables").stdout.contains("table ip6"),
            "{}",
            sh("nft list tables").stdout
        );
        let ports4: String = ports4
            .lines()
            .filter(|l| !l.contains("8082"))
            .map(|l| format!("{l}\n"))
            .collect();
        let post4 = masq("172.17.0.0/16", &br, true) + &masq("10.77.0.0/20", &bu, true);
        let only = |from: &str| {
            [&br, &bu, &bh]
                .iter()
                .filter(|b| b.as_str() != from)
                .map(|b| format!("    iifname \"{from}\" oifname \"{b}\" drop\n"))
                .collect::<String>()
        };
        let fwd4 = only(&br) + &only(&bu) + &internal;
        let want4 = oracle("ip", &table("ip", &ports4, &post4, &fwd4));
        assert_eq!(listing("ip", &name), want4);

        // The last container gone, berth's tables are too.
        for id in [&web, &app, &hid] {
            w.b(&["rm", "-f", id]).ok();
        }
        let tables = sh("nft list tables").stdout;
        assert!(tables.trim().is_empty(), "tables left: {tables}");
        w.finish_with(&["users", "dual", "hidden"], no_links_tables_or_endpoints);
    });
}

/// `nft -i` holding `table FAMILY NAME { flags owner; }`: nobody else may change or
/// delete that table while it runs.
fn owned_table(family: &str, name: &str) -> Child {
    let mut c = Command::new("nft")
        .arg("-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(
        c.stdin.as_mut().unwrap(),
        "add table {family} {name} {{ flags owner; }}"
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sh("nft list tables")
        .stdout
        .contains(&format!("table {family} {name}"))
    {
        assert!(Instant::now() < deadline, "nft -i never made its table");
        std::thread::sleep(Duration::from_millis(20));
    }
    c
}

#[test]
fn a_failed_transaction_leaves_the_previous_table() {
    in_netns("a_failed_transaction_leaves_the_previous_table", || {
        let w = net("nftnl-fail");
        let a = w.httpd(&["--network", "bridge", "-p", "8080:80"]);
        w.until("a answers", || wget("http://127.0.0.1:8080/").code == 0);
        let name = berth_table();
        let before = listing("ip", &name);
        // Another program owns berth's ip6 table: the next transaction, which replaces
        // both families, is refused whole.
        let mut owner = owned_table("ip6", &name);
        let out = w.b(&[
            "run",
            "-d",
            "--network",
            "bridge",
            "-p",
            "8081:80",
            "--rootfs",
            w.rootfs(),
            "sleep",
            "600",
        ]);
        assert_eq!(out.code, 125, "{}", out.stderr);
        let err = out.stderr.trim();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "nftables: making table ip6 {name}: operation not permitted"
            )),
            "{err}"
        );
        // The ip table is as it was, and a still answers through it.
        assert_eq!(listing("ip", &name), before);
        assert_eq!(wget("http://127.0.0.1:8080/").stdout, "hello from berth\n");
        // As Docker, the container whose start failed stays created, holding nothing.
        let ids = w.all_ids();
        assert_eq!(ids.len(), 2, "{ids:?}");
        let failed = ids.iter().find(|i| **i != a).unwrap();
        assert_eq!(w.status(failed), "created");
        let ipam: serde_json::Value =
            serde_json::from_slice(&std::fs::read(w.root.join("networks/ipam.json")).unwrap())
                .unwrap();
        let eps = ipam["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 1, "only a's endpoint: {eps:?}");
        let links = sh("ip -o link show").stdout;
        assert_eq!(
            links.lines().count(),
            3,
            "lo, the bridge, a's veth: {links}"
        );
        drop(owner.stdin.take());
        owner.wait().unwrap();
        // Unowned again: berth updates its tables as before.
        w.httpd(&["--network", "bridge", "-p", "8081:80"]);
        w.until("b answers", || wget("http://127.0.0.1:8081/").code == 0);
        w.finish_with(&[], no_links_tables_or_endpoints);
    });
}
