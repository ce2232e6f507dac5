//! The network flags of `run`/`create`, checked and turned into what the record keeps.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde_json::Value;

use super::ports::{parse_expose, parse_publish, HostPort};
use super::NetRequest;
use crate::cli::front::RunArgs;

/// What the record keeps of the network flags.
#[derive(Default)]
pub(crate) struct Parsed {
    pub(crate) mode: String,
    pub(crate) port_bindings: BTreeMap<String, Vec<HostPort>>,
    pub(crate) publish_all: bool,
    /// Added to the image's ExposedPorts (--expose, and every published port).
    pub(crate) exposed: Vec<String>,
    pub(crate) links: Vec<String>,
    pub(crate) extra_hosts: Vec<String>,
    pub(crate) request: NetRequest,
}

/// Whether a container without `--network` is on the default bridge (Docker's default).
/// Rootful: yes. Rootless: no, a namespace of its own with only `lo` (unless it publishes
/// ports or links): there the network is a pasta per container, which fails where the
/// user cannot open `/dev/net/tun` (0600 on some hosts) or the host has no default route
/// (a plain `run` must not fail for a network it did not ask for), and costs a rootless
/// `run --rm` about 60 ms more than `lo` alone (20 ms).
fn bridge_by_default() -> bool {
    !crate::front::userns::rootless()
}

/// Whether the flags ask for a network endpoint (rootless: pasta). Says nothing.
pub(crate) fn asks_network(a: &RunArgs) -> bool {
    let wants_bridge =
        bridge_by_default() || !a.publish.is_empty() || a.publish_all || !a.link.is_empty();
    mode(a, wants_bridge).is_ok_and(|m| super::is_bridge_mode(&m))
}

/// The user-defined network the flags put the container on. Says nothing.
pub(crate) fn user_network(a: &RunArgs) -> Option<String> {
    mode(a, false)
        .ok()
        .filter(|m| super::rootless_netns::is_user_network(m))
}

/// The network mode the flags give.
fn mode(a: &RunArgs, wants_bridge: bool) -> Result<String> {
    Ok(match a.network.as_slice() {
        [] if wants_bridge => super::DEFAULT.into(),
        [] => "default".into(),
        [n] => match n.as_str() {
            "none" | "host" => n.clone(),
            "default" | "private" if wants_bridge => super::DEFAULT.into(),
            "default" | "private" => "default".into(),
            "" => bail!("--network: empty name"),
            _ if n.starts_with("container:") => {
                if n.len() == "container:".len() {
                    bail!("--network {n}: no container named");
                }
                n.clone()
            }
            _ => n.clone(),
        },
        _ => bail!("--network: one network at most"),
    })
}

/// `--network` and the flags that go with it.
pub(crate) fn parse(a: &RunArgs) -> Result<Parsed> {
    let mut p = Parsed::default();
    for s in &a.publish {
        parse_publish(s, &mut p.port_bindings)?;
    }
    for e in &a.expose {
        p.exposed.extend(parse_expose(e)?);
    }
    p.exposed.extend(p.port_bindings.keys().cloned());
    p.publish_all = a.publish_all;
    for h in &a.add_host {
        super::check_add_host(h)?;
        p.extra_hosts.push(h.clone());
    }
    for l in &a.link {
        super::setup::check_link(l)?;
        p.links.push(l.clone());
    }
    let wants_bridge =
        bridge_by_default() || !p.port_bindings.is_empty() || p.publish_all || !p.links.is_empty();
    p.mode = mode(a, wants_bridge)?;
    if p.mode == "host" && (!p.port_bindings.is_empty() || p.publish_all) {
        // Docker's: the ports are the host's already.
        crate::logging::warn("Published ports are discarded when using host network mode");
        p.port_bindings.clear();
        p.publish_all = false;
    }
    let bridge = super::is_bridge_mode(&p.mode);
    if !bridge {
        let what = if !p.port_bindings.is_empty() || p.publish_all {
            Some("--publish")
        } else if !p.links.is_empty() {
            Some("--link")
        } else if a.ip.is_some() {
            Some("--ip")
        } else if a.ip6.is_some() {
            Some("--ip6")
        } else if !a.network_alias.is_empty() {
            Some("--network-alias")
        } else if a.mac_address.is_some() {
            Some("--mac-address")
        } else {
            None
        };
        if let Some(w) = what {
            bail!(
                "{w}: conflicting options: {w} and the {} network mode",
                p.mode
            );
        }
    }
    if p.mode.starts_with("container:") && (!a.dns.is_empty() || !a.add_host.is_empty()) {
        bail!(
            "--dns/--add-host: conflicting options: they and the {} network mode",
            p.mode
        );
    }
    if let Some(ip) = &a.ip {
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            bail!("--ip {ip}: not an IPv4 address");
        }
        p.request.ipv4_address = ip.clone();
    }
    if let Some(ip) = &a.ip6 {
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            bail!("--ip6 {ip}: not an IPv6 address");
        }
        p.request.ipv6_address = ip.clone();
    }
    if let Some(m) = &a.mac_address {
        p.request.mac_address = m.clone();
    }
    for al in &a.network_alias {
        if !super::valid_host_name(al) {
            bail!("--network-alias {al:?}: not a valid host name");
        }
    }
    p.request.aliases = a.network_alias.clone();
    for d in &a.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            bail!("--dns {d}: not an IP address");
        }
    }
    Ok(p)
}

/// The image's exposed ports plus ours, as Docker's `ExposedPorts`.
pub(crate) fn exposed(image: &BTreeMap<String, Value>, ours: &[String]) -> BTreeMap<String, Value> {
    let mut m = image.clone();
    for k in ours {
        m.entry(k.clone())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    m
}
