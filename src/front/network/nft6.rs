//! The ip6 half of berth's nftables rules (same table name, family ip6), for networks with
//! IPv6: DNAT of IPv6 published ports, masquerade of the containers' outbound IPv6 (Docker
//! does the same with ip6tables on, its default since 27.0), hairpin, isolation between
//! networks. Replaced in the same nf_tables transaction as the ip table; the rules are
//! written by nft.rs's writer, this file says what differs for IPv6.

use std::net::{IpAddr, Ipv6Addr};

use super::nft::{family_ruleset, Bridge, Family};
use super::nftnl::{Match, Table};

/// One bridge with IPv6 and its running endpoints.
pub(crate) type Bridge6<'a> = Bridge<'a, Ipv6Addr>;

impl Family for Ipv6Addr {
    const V6: bool = true;
    // ::1 is never routed off the loopback device: the monitor's relay takes it instead.
    fn loopback() -> Option<(IpAddr, u8)> {
        None
    }
    fn output() -> Vec<Match> {
        vec![Match::Daddr(Ipv6Addr::LOCALHOST.into(), false)]
    }
    fn owns(a: &IpAddr) -> bool {
        a.is_ipv6()
    }
}

/// The ip6 table; none when no bridge has IPv6.
pub(crate) fn ruleset6(table: &str, bridges: &[Bridge6], all: &[&str]) -> Option<Table> {
    (!bridges.is_empty()).then(|| family_ruleset(table, bridges, all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::network::ports::Binding;

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
        )
        .unwrap()
        .to_string();
        assert!(t.starts_with("table ip6 berth-abc {"));
        assert_eq!(t.matches("dnat to").count(), 1, "{t}");
        assert!(t.contains("tcp dport 8080 dnat to [fd00:1::2]:80"), "{t}");
        assert!(t.contains("ip6 saddr fd00:1::/64 oifname != \"bth1-1\" masquerade"));
        assert!(ruleset6("t", &[], &[]).is_none());
    }
}
