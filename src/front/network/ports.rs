//! `-p/--publish`, `--expose` and the way Docker prints bindings.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

/// Docker's `PortBindings` entry.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct HostPort {
    pub(crate) host_ip: String,
    /// Empty: a port chosen at start.
    pub(crate) host_port: String,
}

/// One published port as bound at start.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    pub(crate) proto: String,
    pub(crate) container_port: u16,
    /// 0.0.0.0 (or `::`) for every address of the host (of that family).
    pub(crate) host_ip: IpAddr,
    pub(crate) host_port: u16,
}

impl Binding {
    pub(crate) fn port_text(&self) -> String {
        self.host_port.to_string()
    }

    /// The host address as Docker prints it beside a port (`[::]` for IPv6).
    pub(crate) fn host_text(&self) -> String {
        match self.host_ip {
            IpAddr::V6(a) => format!("[{a}]"),
            IpAddr::V4(a) => a.to_string(),
        }
    }
}

fn port(s: &str, what: &str, spec: &str) -> Result<u16> {
    match s.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => bail!("{spec}: invalid {what} port {s:?}"),
    }
}

/// `N` or `N-M`.
fn range(s: &str, what: &str, spec: &str) -> Result<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (port(a, what, spec)?, port(b, what, spec)?),
        None => {
            let p = port(s, what, spec)?;
            (p, p)
        }
    };
    if b < a {
        bail!("{spec}: invalid {what} port range {s:?}");
    }
    Ok((a, b))
}

fn proto(p: &str, spec: &str) -> Result<String> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" | "udp" | "sctp" => Ok(p.to_ascii_lowercase()),
        _ => bail!("{spec}: invalid protocol {p:?}"),
    }
}

/// `[IP:][HOSTPORT:]CONTAINERPORT[/PROTO]` (ports may be ranges) into `PortBindings`
/// entries (`"80/tcp" -> [{HostIp, HostPort}]`), added to `out`.
pub(crate) fn parse_publish(spec: &str, out: &mut BTreeMap<String, Vec<HostPort>>) -> Result<()> {
    publish(spec, out).map_err(|e| anyhow!("--publish {e}"))
}

fn publish(spec: &str, out: &mut BTreeMap<String, Vec<HostPort>>) -> Result<()> {
    let (addr, pr) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, proto(p, spec)?),
        None => (spec, "tcp".to_string()),
    };
    // `[v6]:HOST:CTR` (Docker's form for IPv6), or an address with colons of its own.
    let (ip, rest) = match addr.strip_prefix('[') {
        Some(r) => match r.split_once("]:") {
            Some((i, rest)) => (i, rest),
            None => bail!("{spec}: expected [IPV6]:[HOSTPORT:]CONTAINERPORT"),
        },
        None => ("", addr),
    };
    let parts: Vec<&str> = if ip.is_empty() {
        let mut v: Vec<&str> = rest.rsplitn(3, ':').collect();
        v.reverse();
        v
    } else {
        let mut v = vec![ip];
        v.extend(rest.split(':'));
        v
    };
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => bail!("{spec}: expected [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]"),
    };
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        bail!("{spec}: invalid IP address {ip:?}");
    }
    if ctr.is_empty() {
        bail!("{spec}: no container port");
    }
    let (c0, c1) = range(ctr, "container", spec)?;
    let hosts: Vec<String> = if host.is_empty() {
        vec![String::new(); (c1 - c0 + 1) as usize]
    } else {
        let (h0, h1) = range(host, "host", spec)?;
        if c0 == c1 && h1 > h0 {
            // One container port, a host range: Docker's "any port of the range".
            vec![format!("{h0}-{h1}")]
        } else if h1 - h0 != c1 - c0 {
            bail!("{spec}: host and container port ranges differ in size");
        } else {
            (h0..=h1).map(|p| p.to_string()).collect()
        }
    };
    for (i, h) in hosts.into_iter().enumerate() {
        out.entry(format!("{}/{pr}", c0 as usize + i))
            .or_default()
            .push(HostPort {
                host_ip: ip.to_string(),
                host_port: h,
            });
    }
    Ok(())
}

/// `--expose PORT[-PORT][/PROTO]` into `ExposedPorts` keys.
pub(crate) fn parse_expose(spec: &str) -> Result<Vec<String>> {
    let (p, pr) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, proto(p, spec).map_err(|e| anyhow!("--expose {e}"))?),
        None => (spec, "tcp".to_string()),
    };
    let (a, b) = range(p, "exposed", spec).map_err(|e| anyhow!("--expose {e}"))?;
    Ok((a..=b).map(|n| format!("{n}/{pr}")).collect())
}

/// `"80/tcp"` -> (80, "tcp").
pub(crate) fn split_key(k: &str) -> Option<(u16, String)> {
    let (p, pr) = k.split_once('/').unwrap_or((k, "tcp"));
    Some((p.parse().ok()?, pr.to_string()))
}

/// `ps`'s PORTS: `0.0.0.0:8080->80/tcp`, consecutive ports grouped
/// (`0.0.0.0:8000-8002->80-82/tcp`), exposed but unpublished ports as `80/tcp`.
pub(crate) fn ps_text(bindings: &[Binding], exposed: &[String]) -> String {
    let mut b: Vec<&Binding> = bindings.iter().collect();
    b.sort_by_key(|x| (x.host_ip, x.proto.clone(), x.container_port, x.host_port));
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let mut j = i;
        while j + 1 < b.len()
            && b[j + 1].host_ip == b[i].host_ip
            && b[j + 1].proto == b[i].proto
            && b[j + 1].container_port == b[j].container_port + 1
            && b[j + 1].host_port == b[j].host_port + 1
        {
            j += 1;
        }
        let (s, e) = (b[i], b[j]);
        if i == j {
            out.push(format!(
                "{}:{}->{}/{}",
                s.host_text(),
                s.host_port,
                s.container_port,
                s.proto
            ));
        } else {
            out.push(format!(
                "{}:{}-{}->{}-{}/{}",
                s.host_text(),
                s.host_port,
                e.host_port,
                s.container_port,
                e.container_port,
                s.proto
            ));
        }
        i = j + 1;
    }
    for k in exposed {
        if let Some((p, pr)) = split_key(k) {
            if !bindings
                .iter()
                .any(|x| x.container_port == p && x.proto == pr)
            {
                out.push(k.clone());
            }
        }
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<BTreeMap<String, Vec<HostPort>>> {
        let mut m = BTreeMap::new();
        parse_publish(s, &mut m)?;
        Ok(m)
    }

    #[test]
    fn publish_forms() {
        let m = p("8080:80").unwrap();
        assert_eq!(m["80/tcp"][0].host_port, "8080");
        let m = p("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(m["80/udp"][0].host_ip, "127.0.0.1");
        let m = p("127.0.0.1::80").unwrap();
        assert_eq!(m["80/tcp"][0].host_port, "");
        let m = p("80").unwrap();
        assert_eq!(m["80/tcp"][0].host_port, "");
        let m = p("8000-8002:80-82").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["82/tcp"][0].host_port, "8002");
        let m = p("5000:5000/SCTP").unwrap();
        assert_eq!(m["5000/sctp"][0].host_port, "5000");
        let m = p("[::1]:8080:80").unwrap();
        assert_eq!(m["80/tcp"][0].host_ip, "::1");
        assert_eq!(m["80/tcp"][0].host_port, "8080");
        let m = p("[::]::80/udp").unwrap();
        assert_eq!(m["80/udp"][0].host_ip, "::");
        assert_eq!(m["80/udp"][0].host_port, "");
        let m = p("fd00::5:8080:80").unwrap();
        assert_eq!(m["80/tcp"][0].host_ip, "fd00::5");
        assert!(p("[::1:8080:80").is_err());
        assert!(p("[nope]:8080:80").is_err());
        let m = p("8000-8010:80").unwrap();
        assert_eq!(m["80/tcp"][0].host_port, "8000-8010");
        for bad in [
            "70000:80",
            "abc",
            "80:abc",
            "8000-8001:80-82",
            "1.2.3:80:80",
            "80/icmp",
            ":",
            "0:80",
            "a:b:c:d",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert!(format!("{:#}", p("70000:80").unwrap_err()).contains("70000"));
    }

    #[test]
    fn expose_forms() {
        assert_eq!(parse_expose("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_expose("53/udp").unwrap(), vec!["53/udp"]);
        assert_eq!(parse_expose("80-81").unwrap(), vec!["80/tcp", "81/tcp"]);
        assert!(parse_expose("x").is_err());
    }

    #[test]
    fn ps_groups_ranges() {
        let b = |c, h| Binding {
            proto: "tcp".into(),
            container_port: c,
            host_ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
            host_port: h,
        };
        assert_eq!(
            ps_text(
                &[b(80, 8000), b(81, 8001), b(90, 9000)],
                &["443/tcp".into()]
            ),
            "0.0.0.0:8000-8001->80-81/tcp, 0.0.0.0:9000->90/tcp, 443/tcp"
        );
    }
}
