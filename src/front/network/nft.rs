//! berth's own nftables table, generated whole from the IPAM record and replaced in one
//! transaction by `nft -f -` (so a failed update leaves the previous table): rules of other
//! tables are never read, flushed or edited.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Result};

use super::ports::Binding;

/// One bridge with its running endpoints, as the rules of one address family need it.
pub(crate) struct Bridge<'a, A> {
    pub(crate) bridge: &'a str,
    pub(crate) subnet: (A, u8),
    pub(crate) internal: bool,
    /// (container address, its published ports)
    pub(crate) endpoints: Vec<(A, &'a [Binding])>,
}

pub(crate) type BridgeRules<'a> = Bridge<'a, Ipv4Addr>;

/// What the ip and ip6 tables do not share: the rules are otherwise the same.
pub(crate) trait Family: Copy + std::fmt::Display + Into<IpAddr> {
    /// nft's name of the family, also its address match (`ip saddr`, `ip6 saddr`).
    const NAME: &'static str;
    /// Where the host's loopback addresses may be DNATed to a container, whose replies
    /// must then come back through the host.
    const LOOPBACK: Option<&'static str>;
    /// The output chain's match before the jump to the published ports.
    const OUTPUT: &'static str;
    fn owns(a: &IpAddr) -> bool;
}

impl Family for Ipv4Addr {
    const NAME: &'static str = "ip";
    const LOOPBACK: Option<&'static str> = Some("127.0.0.0/8");
    const OUTPUT: &'static str = "";
    fn owns(a: &IpAddr) -> bool {
        a.is_ipv4()
    }
}

/// The ip table's text (without the delete that precedes it).
pub(crate) fn ruleset(table: &str, bridges: &[BridgeRules]) -> String {
    let all: Vec<&str> = bridges.iter().map(|b| b.bridge).collect();
    family_ruleset(table, bridges, &all)
}

/// One family's table: DNAT of the published ports of that family, masquerade of the
/// containers' outbound traffic, hairpin, and isolation from the networks in `all`.
pub(crate) fn family_ruleset<A: Family>(
    table: &str,
    bridges: &[Bridge<A>],
    all: &[&str],
) -> String {
    let fam = A::NAME;
    let mut ports = String::new();
    let mut post = String::new();
    let mut fwd = String::new();
    for b in bridges {
        let net = format!("{}/{}", b.subnet.0, b.subnet.1);
        let br = b.bridge;
        if b.internal {
            fwd.push_str(&format!(
                "    iifname \"{br}\" oifname != \"{br}\" drop\n    oifname \"{br}\" iifname != \"{br}\" drop\n"
            ));
            // Nothing is published on it, so no DNATed traffic needs the hairpin.
            continue;
        }
        // Outbound: the container's address hidden behind the host's.
        post.push_str(&format!(
            "    {fam} saddr {net} oifname != \"{br}\" masquerade\n"
        ));
        // Hairpin (a container reaching a published port of its own network) and the
        // host's own loopback: replies must come back through the host.
        for src in std::iter::once(net.as_str()).chain(A::LOOPBACK) {
            post.push_str(&format!(
                "    ct status dnat {fam} saddr {src} oifname \"{br}\" masquerade\n"
            ));
        }
        // Networks do not reach each other (Docker's isolation).
        for other in all.iter().filter(|o| **o != br) {
            fwd.push_str(&format!("    iifname \"{br}\" oifname \"{other}\" drop\n"));
        }
        for (ip, binds) in &b.endpoints {
            // The other family's bindings are the other table's.
            for x in binds.iter().filter(|x| A::owns(&x.host_ip)) {
                let dst = if x.host_ip.is_unspecified() {
                    String::new()
                } else {
                    format!("{fam} daddr {} ", x.host_ip)
                };
                ports.push_str(&format!(
                    "    {dst}{p} dport {hp} dnat to {to}\n",
                    p = x.proto,
                    hp = x.host_port,
                    to = SocketAddr::new((*ip).into(), x.container_port)
                ));
            }
        }
    }
    let out = A::OUTPUT;
    format!(
        "table {fam} {table} {{\n  chain ports {{\n{ports}  }}\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }}\n  chain output {{\n    type nat hook output priority -100; policy accept;\n    {out}fib daddr type local jump ports\n  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{fwd}  }}\n}}\n"
    )
}

fn nft_binary() -> Result<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    for d in path.split(':').chain(["/usr/sbin", "/sbin"]) {
        let p = std::path::Path::new(d).join("nft");
        if p.is_file() {
            return Ok(p.to_string_lossy().into_owned());
        }
    }
    bail!("nft not found: bridge networks need nftables (apt-get install nftables)")
}

/// Replaces berth's table with `text` (None: removes it).
pub(crate) fn apply(table: &str, text: Option<&str>) -> Result<()> {
    // `table` first so that the delete never fails on a missing table.
    let mut script = format!("table ip {table}\ndelete table ip {table}\n");
    if super::v6::kernel_has_ipv6() {
        script.push_str(&format!("table ip6 {table}\ndelete table ip6 {table}\n"));
    }
    if let Some(t) = text {
        script.push_str(t);
    }
    let mut child = Command::new(nft_binary()?)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("nft: {}", crate::error::errno_text(&e)))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| anyhow!("nft: {}", crate::error::errno_text(&e)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!("nft: {}", first.trim_start_matches("Error: "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_only_our_table_and_bridges() {
        let b = [Binding {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: Ipv4Addr::new(127, 0, 0, 1).into(),
            host_port: 8080,
        }];
        let t = ruleset(
            "berth-abc",
            &[BridgeRules {
                bridge: "bth1-0",
                subnet: (Ipv4Addr::new(172, 17, 0, 0), 16),
                internal: false,
                endpoints: vec![(Ipv4Addr::new(172, 17, 0, 2), &b)],
            }],
        );
        assert!(t.starts_with("table ip berth-abc {"));
        assert!(t.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80"));
        assert!(t.contains("ip saddr 172.17.0.0/16 oifname != \"bth1-0\" masquerade"));
    }
    fn bind(proto: &str, host_ip: &str, host_port: u16, container_port: u16) -> Binding {
        Binding {
            proto: proto.into(),
            container_port,
            host_ip: host_ip.parse().unwrap(),
            host_port,
        }
    }

    /// The whole text `refresh` in setup.rs hands to nft, for two published networks (one
    /// with IPv6) and an internal one: pinned so that the writer's shape cannot drift.
    #[test]
    fn ruleset_text_is_pinned_for_v4_and_v6() {
        let web = [
            bind("tcp", "0.0.0.0", 8080, 80),
            bind("tcp", "::", 8080, 80),
            bind("udp", "127.0.0.1", 5353, 53),
            bind("tcp", "fd00:9::1", 8443, 443),
        ];
        let db = [bind("tcp", "10.0.0.1", 5432, 5432)];
        let hidden = [
            bind("tcp", "0.0.0.0", 9000, 9000),
            bind("tcp", "::", 9000, 9000),
        ];
        let v4 = [
            BridgeRules {
                bridge: "bth1-0",
                subnet: (Ipv4Addr::new(172, 17, 0, 0), 16),
                internal: false,
                endpoints: vec![
                    (Ipv4Addr::new(172, 17, 0, 2), &web),
                    (Ipv4Addr::new(172, 17, 0, 3), &db),
                ],
            },
            BridgeRules {
                bridge: "bth1-1",
                subnet: (Ipv4Addr::new(10, 89, 0, 0), 24),
                internal: false,
                endpoints: vec![(Ipv4Addr::new(10, 89, 0, 2), &web)],
            },
            BridgeRules {
                bridge: "bth1-2",
                subnet: (Ipv4Addr::new(10, 90, 0, 0), 24),
                internal: true,
                endpoints: vec![(Ipv4Addr::new(10, 90, 0, 2), &hidden)],
            },
        ];
        let v6 = [
            super::super::nft6::Bridge6 {
                bridge: "bth1-1",
                subnet: ("fd00:89::".parse().unwrap(), 64),
                internal: false,
                endpoints: vec![("fd00:89::2".parse().unwrap(), &web)],
            },
            super::super::nft6::Bridge6 {
                bridge: "bth1-2",
                subnet: ("fd00:90::".parse().unwrap(), 64),
                internal: true,
                endpoints: vec![("fd00:90::2".parse().unwrap(), &hidden)],
            },
        ];
        let all = ["bth1-0", "bth1-1", "bth1-2"];
        let text =
            ruleset("berth-abc", &v4) + &super::super::nft6::ruleset6("berth-abc", &v6, &all);
        assert_eq!(text, PINNED, "{text}");
    }

    const PINNED: &str = r#"table ip berth-abc {
  chain ports {
    tcp dport 8080 dnat to 172.17.0.2:80
    ip daddr 127.0.0.1 udp dport 5353 dnat to 172.17.0.2:53
    ip daddr 10.0.0.1 tcp dport 5432 dnat to 172.17.0.3:5432
    tcp dport 8080 dnat to 10.89.0.2:80
    ip daddr 127.0.0.1 udp dport 5353 dnat to 10.89.0.2:53
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump ports
  }
  chain output {
    type nat hook output priority -100; policy accept;
    fib daddr type local jump ports
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 172.17.0.0/16 oifname != "bth1-0" masquerade
    ct status dnat ip saddr 172.17.0.0/16 oifname "bth1-0" masquerade
    ct status dnat ip saddr 127.0.0.0/8 oifname "bth1-0" masquerade
    ip saddr 10.89.0.0/24 oifname != "bth1-1" masquerade
    ct status dnat ip saddr 10.89.0.0/24 oifname "bth1-1" masquerade
    ct status dnat ip saddr 127.0.0.0/8 oifname "bth1-1" masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "bth1-0" oifname "bth1-1" drop
    iifname "bth1-0" oifname "bth1-2" drop
    iifname "bth1-1" oifname "bth1-0" drop
    iifname "bth1-1" oifname "bth1-2" drop
    iifname "bth1-2" oifname != "bth1-2" drop
    oifname "bth1-2" iifname != "bth1-2" drop
  }
}
table ip6 berth-abc {
  chain ports {
    tcp dport 8080 dnat to [fd00:89::2]:80
    ip6 daddr fd00:9::1 tcp dport 8443 dnat to [fd00:89::2]:443
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump ports
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip6 daddr != ::1 fib daddr type local jump ports
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip6 saddr fd00:89::/64 oifname != "bth1-1" masquerade
    ct status dnat ip6 saddr fd00:89::/64 oifname "bth1-1" masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "bth1-1" oifname "bth1-0" drop
    iifname "bth1-1" oifname "bth1-2" drop
    iifname "bth1-2" oifname != "bth1-2" drop
    oifname "bth1-2" iifname != "bth1-2" drop
  }
}
"#;
}
