//! How a container's network looks in `inspect`, `ps` and `port`.

use serde_json::{json, Value};

use super::{endpoint_of, is_bridge_mode, Endpoint, Networks};
use crate::front::containers::{Record, Store};

/// `NetworkSettings`, as Docker's: ports and addresses while the container runs.
pub(crate) fn settings(store: &Store, rec: &Record, running: bool) -> Value {
    let ep = running.then(|| endpoint_of(store, &rec.id)).flatten();
    let mut ports = serde_json::Map::new();
    if let Some(e) = &ep {
        for k in rec.config.exposed_ports.keys() {
            ports.insert(k.clone(), Value::Null);
        }
        for b in &e.ports {
            let k = format!("{}/{}", b.container_port, b.proto);
            let v = ports.entry(k).or_insert_with(|| json!([]));
            if !v.is_array() {
                *v = json!([]);
            }
            if let Some(a) = v.as_array_mut() {
                a.push(json!({"HostIp": b.host_ip.to_string(), "HostPort": b.port_text()}));
            }
        }
    }
    let mode = &rec.host_config.network_mode;
    let mut networks = serde_json::Map::new();
    if is_bridge_mode(mode) {
        let nets = Networks::new(&store.root);
        let all: Vec<Endpoint> = if running {
            nets.ipam()
                .endpoints
                .into_iter()
                .filter(|e| e.container == rec.id)
                .collect()
        } else {
            Vec::new()
        };
        let r = &rec.net_request;
        let names = std::iter::once((
            mode.clone(),
            r.aliases.clone(),
            (r.ipv4_address.clone(), r.ipv6_address.clone()),
        ))
        .chain(r.connected.iter().map(|c| {
            (
                c.network.clone(),
                c.aliases.clone(),
                (c.ipv4_address.clone(), c.ipv6_address.clone()),
            )
        }));
        for (name, aliases, ip) in names {
            let n = nets.get(&name).ok();
            let e = all.iter().find(|e| e.network == name);
            let links = if name == *mode {
                rec.host_config.links.as_slice()
            } else {
                r.connected
                    .iter()
                    .find(|c| c.network == name)
                    .map_or(&[][..], |c| c.links.as_slice())
            };
            networks.insert(name, endpoint_json(e, n.map(|n| n.id), &aliases, ip, links));
        }
    }
    let (ip6, prefix6, gw6) = v6_texts(ep.as_ref());
    let (ip, gw, mac, prefix) = match &ep {
        Some(e) => (
            addr_text(e.ip),
            addr_text(e.gateway),
            e.mac.clone(),
            e.prefix,
        ),
        None => (String::new(), String::new(), String::new(), 0),
    };
    json!({
        "Bridge": "",
        "SandboxID": "",
        "Ports": ports,
        "SandboxKey": if running && !mode.starts_with("container:") && mode != "host" {
            format!("/proc/{}/ns/net", rec_pid(store, rec))
        } else { String::new() },
        "Gateway": gw,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "MacAddress": mac,
        "GlobalIPv6Address": ip6,
        "GlobalIPv6PrefixLen": prefix6,
        "IPv6Gateway": gw6,
        "Networks": networks,
    })
}

/// An endpoint's address; none (pasta's: the host's own) shows empty, as Podman's.
fn addr_text(a: std::net::Ipv4Addr) -> String {
    if a.is_unspecified() {
        String::new()
    } else {
        a.to_string()
    }
}

/// An endpoint's IPv6 address, prefix length and gateway (empty without IPv6).
fn v6_texts(ep: Option<&Endpoint>) -> (String, u8, String) {
    match ep.and_then(|e| e.ip6) {
        Some((a, n, g)) => (a.to_string(), n, g.to_string()),
        None => (String::new(), 0, String::new()),
    }
}

fn rec_pid(store: &Store, rec: &Record) -> i32 {
    store.load(&rec.id).map(|c| c.state.pid).unwrap_or(0)
}

fn endpoint_json(
    ep: Option<&Endpoint>,
    net_id: Option<String>,
    aliases: &[String],
    (ip, ip6): (String, String),
    links: &[String],
) -> Value {
    let (g6, p6, gw6) = v6_texts(ep);
    let mut ipam = serde_json::Map::new();
    if !ip.is_empty() {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if !ip6.is_empty() {
        ipam.insert("IPv6Address".into(), json!(ip6));
    }
    json!({
        "IPAMConfig": if ipam.is_empty() { Value::Null } else { Value::Object(ipam) },
        "Links": if links.is_empty() { Value::Null } else { json!(links) },
        "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
        "NetworkID": net_id.unwrap_or_default(),
        "EndpointID": ep.map(|e| e.veth.clone()).unwrap_or_default(),
        "Gateway": ep.map(|e| addr_text(e.gateway)).unwrap_or_default(),
        "IPAddress": ep.map(|e| addr_text(e.ip)).unwrap_or_default(),
        "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
        "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
        "GlobalIPv6Address": g6,
        "GlobalIPv6PrefixLen": p6,
        "IPv6Gateway": gw6,
        "DNSNames": ep.map(|e| {
            let mut v = vec![e.name.clone(), crate::front::containers::short(&e.container).to_string()];
            v.extend(e.aliases.iter().cloned());
            v
        }),
    })
}

/// What inspect's HostConfig adds for networks.
pub(crate) fn host_config(rec: &Record) -> Value {
    let h = &rec.host_config;
    json!({
        "PortBindings": h.port_bindings,
        "PublishAllPorts": h.publish_all_ports,
        "Links": if h.links.is_empty() { Value::Null } else { json!(h.links) },
        "ExtraHosts": if h.extra_hosts.is_empty() { Value::Null } else { json!(h.extra_hosts) },
        "Dns": h.dns,
        "DnsSearch": h.dns_search,
        "DnsOptions": h.dns_options,
    })
}

/// `ps`'s PORTS column.
/// `ps`'s PORTS column for every container of one listing, from one read of the
/// endpoints (made at the first running container).
pub(crate) struct PsPorts<'a> {
    store: &'a Store,
    /// Read at the first running container: a listing's threads share it.
    endpoints: std::sync::OnceLock<Vec<Endpoint>>,
}

impl<'a> PsPorts<'a> {
    pub(crate) fn new(store: &'a Store) -> PsPorts<'a> {
        PsPorts {
            store,
            endpoints: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn text(&self, rec: &Record, running: bool) -> String {
        if !running {
            return String::new();
        }
        let store = self.store;
        let eps = self
            .endpoints
            .get_or_init(|| Networks::new(&store.root).ipam().endpoints);
        let bindings = eps
            .iter()
            .find(|e| e.container == rec.id)
            .map(|e| e.ports.clone())
            .unwrap_or_default();
        let exposed: Vec<String> = rec.config.exposed_ports.keys().cloned().collect();
        super::ports::ps_text(&bindings, &exposed)
    }
}

/// `port CTR [PORT[/PROTO]]`: Docker's lines.
pub(crate) fn port_lines(
    store: &Store,
    rec: &Record,
    filter: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let Some(e) = endpoint_of(store, &rec.id) else {
        if let Some(f) = filter {
            anyhow::bail!(
                "no public port '{}' published for {}",
                with_proto(f),
                rec.name
            );
        }
        return Ok(Vec::new());
    };
    let mut b = e.ports.clone();
    b.sort_by_key(|x| (x.container_port, x.proto.clone(), x.host_ip, x.host_port));
    let mut out = Vec::new();
    match filter {
        None => {
            for x in &b {
                out.push(format!(
                    "{}/{} -> {}:{}",
                    x.container_port,
                    x.proto,
                    x.host_text(),
                    x.host_port
                ));
            }
        }
        Some(f) => {
            let want = with_proto(f);
            for x in b
                .iter()
                .filter(|x| format!("{}/{}", x.container_port, x.proto) == want)
            {
                out.push(format!("{}:{}", x.host_text(), x.host_port));
            }
            if out.is_empty() {
                anyhow::bail!("no public port '{want}' published for {}", rec.name);
            }
        }
    }
    Ok(out)
}

fn with_proto(p: &str) -> String {
    if p.contains('/') {
        p.to_string()
    } else {
        format!("{p}/tcp")
    }
}

/// `ps --filter network=NAME|publish=PORT[-PORT][/PROTO]|expose=...`, as Docker's:
/// publish and expose name container ports (published: bound now, or asked for).
pub(crate) fn filter_matches(store: &Store, rec: &Record, key: &str, value: &str) -> bool {
    let mode = &rec.host_config.network_mode;
    if key == "network" {
        if mode == value {
            return true;
        }
        return Networks::new(&store.root)
            .get(value)
            .is_ok_and(|n| &n.name == mode || (n.name == super::DEFAULT && mode == "bridge"));
    }
    let (ports, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a.parse().unwrap_or(1u16), b.parse().unwrap_or(0u16)),
        None => {
            let p = ports.parse().unwrap_or(0u16);
            (p, p)
        }
    };
    let hit = |k: &str| {
        super::ports::split_key(k).is_some_and(|(p, pr)| pr == proto && (lo..=hi).contains(&p))
    };
    match key {
        "expose" => rec.config.exposed_ports.keys().any(|k| hit(k)),
        _ => {
            rec.host_config.port_bindings.keys().any(|k| hit(k))
                || endpoint_of(store, &rec.id).is_some_and(|e| {
                    e.ports
                        .iter()
                        .any(|b| hit(&format!("{}/{}", b.container_port, b.proto)))
                })
        }
    }
}
