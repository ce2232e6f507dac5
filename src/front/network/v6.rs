//! IPv6 on bridge networks (`network create --ipv6`), as Docker's: a network is
//! dual-stack (IPv4 stays), its IPv6 subnet given or a ULA /64 derived from the root
//! (Docker derives its ULA prefix from the host's id), addresses handed out in order
//! from `::2` (the gateway, on the bridge, is `::1` unless `--gateway` says otherwise).

use std::net::Ipv6Addr;

use anyhow::{anyhow, bail, Result};

use super::Network;

/// `a:b::/n` -> (network address, n); None when not an IPv6 CIDR.
pub(crate) fn parse_cidr6(s: &str) -> Option<(Ipv6Addr, u8)> {
    let (a, n) = s.split_once('/')?;
    let a: Ipv6Addr = a.parse().ok()?;
    let n: u8 = n.parse().ok()?;
    if n > 128 {
        return None;
    }
    Some((Ipv6Addr::from(u128::from(a) & mask(n)), n))
}

fn mask(n: u8) -> u128 {
    if n == 0 {
        0
    } else {
        u128::MAX << (128 - n)
    }
}

pub(crate) fn contains6(net: (Ipv6Addr, u8), ip: Ipv6Addr) -> bool {
    u128::from(ip) & mask(net.1) == u128::from(net.0)
}

fn overlaps6(a: (Ipv6Addr, u8), b: (Ipv6Addr, u8)) -> bool {
    let n = a.1.min(b.1);
    u128::from(a.0) & mask(n) == u128::from(b.0) & mask(n)
}

/// Whether this kernel has IPv6 (a kernel built without it, or booted `ipv6.disable=1`,
/// has no /proc/sys/net/ipv6).
pub(crate) fn kernel_has_ipv6() -> bool {
    std::path::Path::new("/proc/sys/net/ipv6").exists()
}

/// The host's IPv6 routes (other than default and link-local ones).
fn host_routes6() -> Vec<(Ipv6Addr, u8)> {
    let text = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = u128::from_str_radix(f.first()?, 16).ok()?;
            let len = u8::from_str_radix(f.get(1)?, 16).ok()?;
            let a = Ipv6Addr::from(dst);
            let special =
                len == 0 || a.segments()[0] & 0xffc0 == 0xfe80 || a.segments()[0] >> 8 == 0xff;
            (!special && !a.is_loopback()).then_some((a, len))
        })
        .collect()
}

/// The root's ULA /48 (`fdXX:XXXX:XXXX::/48`, RFC 4193's 40-bit global id, from the root's
/// tag) and the network's /64 in it, numbered by the network's index.
fn ula(tag: &str, index: u32, attempt: u16) -> (Ipv6Addr, u8) {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("berth-ula-{tag}").as_bytes());
    let mut o = [0u8; 16];
    o[0] = 0xfd;
    o[1..6].copy_from_slice(&h[..5]);
    let sub = (index as u16).wrapping_add(attempt.wrapping_mul(0x100));
    o[6..8].copy_from_slice(&sub.to_be_bytes());
    (Ipv6Addr::from(o), 64)
}

/// `network create`: splits `--subnet`/`--gateway` by family (a second `--subnet` of the
/// other family is allowed) and settles the IPv6 side. An IPv6 `--subnet` enables IPv6 by
/// itself (Docker's since 25.0: moby#46455).
pub(crate) fn split_flags(
    ipv6: bool,
    subnets: &[String],
    gateways: &[String],
) -> Result<(bool, [String; 2], [String; 2])> {
    let mut s: [Vec<&String>; 2] = [Vec::new(), Vec::new()];
    let mut g: [Vec<&String>; 2] = [Vec::new(), Vec::new()];
    for x in subnets {
        s[usize::from(x.contains(':'))].push(x);
    }
    for x in gateways {
        g[usize::from(x.contains(':'))].push(x);
    }
    if s[0].len() > 1 || s[1].len() > 1 {
        bail!("--subnet: one IPv4 and one IPv6 subnet per network at most");
    }
    if g[0].len() > 1 || g[1].len() > 1 {
        bail!("--gateway: one IPv4 and one IPv6 gateway per network at most");
    }
    for f in [0, 1] {
        if !g[f].is_empty() && s[f].is_empty() {
            let fam = if f == 1 { "IPv6" } else { "IPv4" };
            bail!("--gateway {}: needs an {fam} --subnet", g[f][0]);
        }
    }
    let one = |v: &Vec<&String>| v.first().map(|x| x.to_string()).unwrap_or_default();
    let enable = ipv6 || !s[1].is_empty();
    Ok((enable, [one(&s[0]), one(&s[1])], [one(&g[0]), one(&g[1])]))
}

/// Fills in the IPv6 subnet and gateway of a new network with IPv6 (checked against the
/// root's other networks and the host's routes).
pub(crate) fn settle(n: &mut Network, all: &[Network], tag: &str) -> Result<()> {
    if !n.enable_ipv6 {
        return Ok(());
    }
    if !kernel_has_ipv6() {
        bail!("--ipv6: this kernel has no IPv6 (/proc/sys/net/ipv6 is missing)");
    }
    let taken: Vec<(Ipv6Addr, u8)> = all.iter().filter_map(|x| parse_cidr6(&x.subnet6)).collect();
    let subnet = if n.subnet6.is_empty() {
        let routes = host_routes6();
        (0..64)
            .map(|a| ula(tag, n.index, a))
            .find(|c| !taken.iter().chain(routes.iter()).any(|t| overlaps6(*c, *t)))
            .ok_or_else(|| anyhow!("no free IPv6 subnet left for network {}", n.name))?
    } else {
        let s = parse_cidr6(&n.subnet6)
            .ok_or_else(|| anyhow!("--subnet {}: not an IPv6 CIDR", n.subnet6))?;
        if s.1 > 126 {
            bail!("--subnet {}: too small", n.subnet6);
        }
        if let Some(t) = all
            .iter()
            .find(|x| parse_cidr6(&x.subnet6).is_some_and(|t| overlaps6(s, t)))
        {
            bail!(
                "--subnet {}: overlaps with network {} ({})",
                n.subnet6,
                t.name,
                t.subnet6
            );
        }
        s
    };
    n.subnet6 = format!("{}/{}", subnet.0, subnet.1);
    let gw = if n.gateway6.is_empty() {
        Ipv6Addr::from(u128::from(subnet.0) + 1)
    } else {
        let g: Ipv6Addr = n
            .gateway6
            .parse()
            .map_err(|_| anyhow!("--gateway {}: not an IPv6 address", n.gateway6))?;
        if !contains6(subnet, g) || g == subnet.0 {
            bail!("--gateway {}: not in subnet {}", n.gateway6, n.subnet6);
        }
        g
    };
    n.gateway6 = gw.to_string();
    Ok(())
}

/// The network's IPv6 subnet and gateway (None: an IPv4-only network).
pub(crate) fn addressing6(n: &Network) -> Option<((Ipv6Addr, u8), Ipv6Addr)> {
    if !n.enable_ipv6 {
        return None;
    }
    let s = parse_cidr6(&n.subnet6)?;
    let gw = n
        .gateway6
        .parse()
        .unwrap_or(Ipv6Addr::from(u128::from(s.0) + 1));
    Some((s, gw))
}

/// `--ip6` at create: an IPv6 address of the network's IPv6 subnet.
pub(crate) fn check_ip6(n: &Network, ip: &str) -> Result<()> {
    if ip.is_empty() {
        return Ok(());
    }
    let a: Ipv6Addr = ip
        .parse()
        .map_err(|_| anyhow!("--ip6 {ip}: not an IPv6 address"))?;
    let Some((s, gw)) = addressing6(n) else {
        bail!(
            "--ip6 {ip}: network {} has no IPv6 (create it with --ipv6)",
            n.name
        );
    };
    if !contains6(s, a) || a == s.0 || a == gw {
        bail!(
            "--ip6 {ip}: not a usable address of network {} ({})",
            n.name,
            n.subnet6
        );
    }
    Ok(())
}

/// The container's IPv6 address: `--ip6`, else the lowest free one (`used`: the
/// network's addresses in use).
pub(crate) fn pick(
    n: &Network,
    want: &str,
    used: &[Ipv6Addr],
) -> Result<Option<(Ipv6Addr, u8, Ipv6Addr)>> {
    let Some((s, gw)) = addressing6(n) else {
        if !want.is_empty() {
            check_ip6(n, want)?;
        }
        return Ok(None);
    };
    let a = if want.is_empty() {
        let first = u128::from(s.0) + 1;
        let last = u128::from(s.0) | !mask(s.1);
        // A /64 is never exhausted by containers; a small subnet may be.
        (first..=last)
            .take(1 << 20)
            .map(Ipv6Addr::from)
            .find(|a| *a != gw && !used.contains(a))
            .ok_or_else(|| anyhow!("network {}: no free IPv6 address left", n.name))?
    } else {
        check_ip6(n, want)?;
        let a: Ipv6Addr = want.parse()?;
        if used.contains(&a) {
            bail!("--ip6 {a}: address already in use on network {}", n.name);
        }
        a
    };
    Ok(Some((a, s.1, gw)))
}

/// Turns on IPv6 forwarding where it is off; says so (Docker does the same for networks
/// with IPv6).
pub(crate) fn enable_forwarding6() -> Result<Option<String>> {
    let p = "/proc/sys/net/ipv6/conf/all/forwarding";
    let fwd = std::fs::read_to_string(p).unwrap_or_default();
    if fwd.trim() == "1" {
        return Ok(None);
    }
    std::fs::write(p, "1").map_err(|e| anyhow!("{p}: {}", crate::error::errno_text(&e)))?;
    Ok(Some(
        "net.ipv6.conf.all.forwarding turned on for IPv6 networks".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr6_math() {
        let s = parse_cidr6("fd00:1:2:3::5/64").unwrap();
        assert_eq!(s.0, "fd00:1:2:3::".parse::<Ipv6Addr>().unwrap());
        assert!(contains6(s, "fd00:1:2:3::77".parse().unwrap()));
        assert!(!contains6(s, "fd00:1:2:4::1".parse().unwrap()));
        assert!(overlaps6(s, parse_cidr6("fd00:1::/32").unwrap()));
        assert!(parse_cidr6("10.0.0.0/8").is_none());
        assert!(parse_cidr6("fd00::/129").is_none());
    }

    #[test]
    fn ula_is_a_stable_64_of_fd00_8() {
        let (a, n) = ula("abc123", 3, 0);
        assert_eq!(n, 64);
        assert_eq!(a.octets()[0], 0xfd);
        assert_eq!(a.segments()[3], 3);
        assert_eq!(ula("abc123", 3, 0), (a, n));
        assert_ne!(ula("abc124", 3, 0).0, a);
    }

    #[test]
    fn flags_split_by_family() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (on, sub, gw) = split_flags(
            false,
            &s(&["10.5.0.0/24", "fd00:5::/64"]),
            &s(&["fd00:5::1"]),
        )
        .unwrap();
        assert!(on, "an IPv6 subnet enables IPv6");
        assert_eq!(sub, ["10.5.0.0/24".to_string(), "fd00:5::/64".to_string()]);
        assert_eq!(gw, [String::new(), "fd00:5::1".to_string()]);
        assert!(split_flags(true, &s(&["fd00::/64", "fd01::/64"]), &[]).is_err());
        assert!(split_flags(true, &[], &s(&["fd00::1"])).is_err());
    }
}
