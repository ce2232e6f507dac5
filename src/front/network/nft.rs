//! berth's own nftables table, generated whole from the IPAM record and replaced in one
//! nf_tables transaction over netlink (so a failed update leaves the previous table): rules
//! of other tables are never read, flushed or edited. The rules are data (nftnl.rs), sent
//! by berth itself: no `nft` process per container start and stop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{anyhow, Result};
use nix::errno::Errno;

use super::nftnl::{Chain, Hook, Match, Rule, Table, Verdict};
use super::ports::Binding;
use crate::sys::nfnetlink::{self, Batch, BatchError};

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
    const V6: bool;
    /// Where the host's loopback addresses may be DNATed to a container, whose replies
    /// must then come back through the host.
    fn loopback() -> Option<(IpAddr, u8)>;
    /// The output chain's matches before the jump to the published ports.
    fn output() -> Vec<Match>;
    fn owns(a: &IpAddr) -> bool;
}

impl Family for Ipv4Addr {
    const V6: bool = false;
    fn loopback() -> Option<(IpAddr, u8)> {
        Some((Ipv4Addr::new(127, 0, 0, 0).into(), 8))
    }
    fn output() -> Vec<Match> {
        Vec::new()
    }
    fn owns(a: &IpAddr) -> bool {
        a.is_ipv4()
    }
}

/// The ip table.
pub(crate) fn ruleset(table: &str, bridges: &[BridgeRules]) -> Table {
    let all: Vec<&str> = bridges.iter().map(|b| b.bridge).collect();
    family_ruleset(table, bridges, &all)
}

fn rule(matches: Vec<Match>, verdict: Verdict) -> Rule {
    Rule { matches, verdict }
}

/// One family's table: DNAT of the published ports of that family, masquerade of the
/// containers' outbound traffic, hairpin, and isolation from the networks in `all`.
pub(crate) fn family_ruleset<A: Family>(table: &str, bridges: &[Bridge<A>], all: &[&str]) -> Table {
    use Match::{CtDnat, Daddr, Dport, FibLocal, Iif, Oif, Saddr};
    let mut ports = Vec::new();
    let mut post = Vec::new();
    let mut fwd = Vec::new();
    for b in bridges {
        let net = Saddr(b.subnet.0.into(), b.subnet.1);
        let br = || b.bridge.to_string();
        if b.internal {
            fwd.push(rule(vec![Iif(br(), true), Oif(br(), false)], Verdict::Drop));
            fwd.push(rule(vec![Oif(br(), true), Iif(br(), false)], Verdict::Drop));
            // Nothing is published on it, so no DNATed traffic needs the hairpin.
            continue;
        }
        // Outbound: the container's address hidden behind the host's.
        post.push(rule(
            vec![net.clone(), Oif(br(), false)],
            Verdict::Masquerade,
        ));
        // Hairpin (a container reaching a published port of its own network) and the
        // host's own loopback: replies must come back through the host.
        let lo = A::loopback().map(|(a, l)| Saddr(a, l));
        for src in std::iter::once(net).chain(lo) {
            post.push(rule(
                vec![CtDnat, src, Oif(br(), true)],
                Verdict::Masquerade,
            ));
        }
        // Networks do not reach each other (Docker's isolation).
        for other in all.iter().filter(|o| **o != b.bridge) {
            fwd.push(rule(
                vec![Iif(br(), true), Oif(other.to_string(), true)],
                Verdict::Drop,
            ));
        }
        for (ip, binds) in &b.endpoints {
            // The other family's bindings are the other table's.
            for x in binds.iter().filter(|x| A::owns(&x.host_ip)) {
                let mut m = Vec::new();
                if !x.host_ip.is_unspecified() {
                    m.push(Daddr(x.host_ip, true));
                }
                m.push(Dport(x.proto.clone(), x.host_port));
                let to = SocketAddr::new((*ip).into(), x.container_port);
                ports.push(rule(m, Verdict::Dnat(to)));
            }
        }
    }
    let jump = |mut m: Vec<Match>| {
        m.push(FibLocal);
        vec![rule(m, Verdict::Jump("ports"))]
    };
    let hook = |kind, hooknum, priority| {
        Some(Hook {
            kind,
            hooknum,
            priority,
        })
    };
    let chains = vec![
        Chain {
            name: "ports",
            hook: None,
            rules: ports,
        },
        Chain {
            name: "prerouting",
            hook: hook("nat", 0, -100),
            rules: jump(Vec::new()),
        },
        Chain {
            name: "output",
            hook: hook("nat", 3, -100),
            rules: jump(A::output()),
        },
        Chain {
            name: "postrouting",
            hook: hook("nat", 4, 100),
            rules: post,
        },
        Chain {
            name: "forward",
            hook: hook("filter", 2, 0),
            rules: fwd,
        },
    ];
    Table {
        v6: A::V6,
        name: table.to_string(),
        chains,
    }
}

/// Replaces berth's table `table` by `tables` (None: removes it), in one transaction.
pub(crate) fn apply(table: &str, tables: Option<&[Table]>) -> Result<()> {
    let mut families = vec![false];
    if super::v6::kernel_has_ipv6() {
        families.push(true);
    }
    crate::timeline::mark("network:before-nftables");
    let mut b = Batch::new();
    let what = super::nftnl::encode(&mut b, table, &families, tables.unwrap_or_default());
    let sent = nfnetlink::send(b).map_err(|e| anyhow!(describe(&e, &what)));
    crate::timeline::mark("network:nftables");
    sent
}

/// One line for a refused transaction: what the kernel said, and of which message.
fn describe(e: &BatchError, what: &[String]) -> String {
    let text = crate::error::errno_desc(e.errno);
    let absent = matches!(
        e.errno,
        Errno::EPROTONOSUPPORT | Errno::EAFNOSUPPORT | Errno::EOPNOTSUPP
    ) || (e.errno == Errno::ENOENT && e.msg.is_none_or(|i| i == 0));
    match e.msg.and_then(|i| what.get(i)) {
        _ if absent => format!(
            "nftables: {text}: bridge networks need the kernel's nf_tables (modprobe nf_tables)"
        ),
        Some(w) if e.errno == Errno::ENOENT && w.starts_with("adding") => format!(
            "nftables: {w}: {text}: the kernel lacks one of its expressions (nft_nat, nft_masq, nft_fib, nft_ct modules)"
        ),
        Some(w) => format!("nftables: {w}: {text}"),
        None => format!("nftables: {text}"),
    }
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
        )
        .to_string();
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
        let text = ruleset("berth-abc", &v4).to_string()
            + &super::super::nft6::ruleset6("berth-abc", &v6, &all)
                .unwrap()
                .to_string();
        assert_eq!(text, PINNED, "{text}");
    }

    #[test]
    fn refusals_say_what_failed_in_one_line() {
        let what = vec![
            "committing the transaction".to_string(),
            "deleting table ip6 berth-abc".to_string(),
            "adding `masquerade` to chain postrouting of table ip".to_string(),
        ];
        let e = |errno, msg| describe(&BatchError { errno, msg }, &what);
        assert_eq!(
            e(Errno::EPERM, Some(1)),
            "nftables: deleting table ip6 berth-abc: operation not permitted"
        );
        for (errno, msg) in [
            (Errno::EPROTONOSUPPORT, None),
            (Errno::EOPNOTSUPP, Some(0)),
            (Errno::ENOENT, Some(0)),
        ] {
            let m = e(errno, msg);
            assert!(
                m.contains("bridge networks need the kernel's nf_tables"),
                "{m}"
            );
        }
        let m = e(Errno::ENOENT, Some(2));
        assert!(
            m.contains("chain postrouting") && m.contains("nft_masq"),
            "{m}"
        );
        assert_eq!(
            e(Errno::ENOBUFS, None),
            "nftables: no buffer space available"
        );
        assert!(what
            .iter()
            .chain([&e(Errno::EINVAL, Some(9))])
            .all(|l| !l.contains('\n')));
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
