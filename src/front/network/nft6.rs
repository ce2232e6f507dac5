//! The ip6 half of berth's nftables rules (same table name, family ip6), for networks with
//! IPv6: DNAT of IPv6 published ports, masquerade of the containers' outbound IPv6 (Docker
//! does the same with ip6tables on, its default since 27.0), hairpin, isolation between
//! networks. Replaced in the same `nft -f` transaction as the ip table.

use std::net::Ipv6Addr;

use super::ports::Binding;

/// One bridge with IPv6 and its running endpoints.
pub(crate) struct Bridge6<'a> {
    pub(crate) bridge: &'a str,
    pub(crate) subnet: (Ipv6Addr, u8),
    pub(crate) internal: bool,
    /// (container IPv6 address, its published ports)
    pub(crate) endpoints: Vec<(Ipv6Addr, &'a [Binding])>,
}

/// The ip6 table's text; empty when no bridge has IPv6.
pub(crate) fn ruleset6(table: &str, bridges: &[Bridge6], all: &[&str]) -> String {
    if bridges.is_empty() {
        return String::new();
    }
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
            continue;
        }
        post.push_str(&format!(
            "    ip6 saddr {net} oifname != \"{br}\" masquerade\n    ct status dnat ip6 saddr {net} oifname \"{br}\" masquerade\n"
        ));
        for other in all.iter().filter(|o| **o != br) {
            fwd.push_str(&format!("    iifname \"{br}\" oifname \"{other}\" drop\n"));
        }
        for (ip, binds) in &b.endpoints {
            for x in binds.iter().filter(|x| x.host_ip.is_ipv6()) {
                let dst = if x.host_ip.is_unspecified() {
                    String::new()
                } else {
                    format!("ip6 daddr {} ", x.host_ip)
                };
                ports.push_str(&format!(
                    "    {dst}{p} dport {hp} dnat to [{ip}]:{cp}\n",
                    p = x.proto,
                    hp = x.host_port,
                    cp = x.container_port
                ));
            }
        }
    }
    // ::1 is never routed off the loopback device: the monitor's relay takes it instead.
    format!(
        "table ip6 {table} {{\n  chain ports {{\n{ports}  }}\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }}\n  chain output {{\n    type nat hook output priority -100; policy accept;\n    ip6 daddr != ::1 fib daddr type local jump ports\n  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{fwd}  }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ipv6_bindings_and_our_bridges() {
        let b = [
            Binding {
                proto: "tcp".into(),
                container_port: 80,
                host_ip: "::".parse().unwrap(),
                host_port: 8080,
            },
            Binding {
                proto: "tcp".into(),
                container_port: 80,
                host_ip: "0.0.0.0".parse().unwrap(),
                host_port: 8080,
            },
        ];
        let t = ruleset6(
            "berth-abc",
            &[Bridge6 {
                bridge: "bth1-1",
                subnet: ("fd00:1::".parse().unwrap(), 64),
                internal: false,
                endpoints: vec![("fd00:1::2".parse().unwrap(), &b)],
            }],
            &["bth1-1"],
        );
        assert!(t.starts_with("table ip6 berth-abc {"));
        assert_eq!(t.matches("dnat to").count(), 1, "{t}");
        assert!(t.contains("tcp dport 8080 dnat to [fd00:1::2]:80"), "{t}");
        assert!(t.contains("ip6 saddr fd00:1::/64 oifname != \"bth1-1\" masquerade"));
        assert!(ruleset6("t", &[], &[]).is_empty());
    }
}
