//! A container's endpoint: made by its monitor between the runtime's create and start,
//! released when it ends (or by whoever reconciles a dead monitor).

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{anyhow, bail, Result};

use super::nft::{self, BridgeRules};
use super::ports::split_key;
use super::{mac_of, mac_text, parse_cidr, Endpoint, Ipam, Network, Networks, DEFAULT};
use crate::front::containers::{short, Record, Store};
use crate::sys::netlink::{Netlink, Peer};

/// What a started container holds of its network: the published ports stay bound here
/// (TCP ones listening: DNAT sends their traffic on before it could reach them) so that no
/// other process, nor another container, takes them.
pub(crate) struct Attached {
    _reserved: Vec<super::bind::Held>,
    /// Rootless: pasta, killed when this goes.
    _pasta: Option<super::rootless::Pasta>,
    /// Rootless on a user network: the published ports' forwarder.
    pub(super) _forward: Option<super::rootless_ports::Forwarder>,
    /// What the user should hear (said by whoever started the container).
    pub(crate) warnings: Vec<String>,
}

/// A published port held: the bound socket (its fd is all that matters).
type Reserved = std::os::fd::OwnedFd;

fn ne(what: &str) -> impl FnOnce(nix::errno::Errno) -> anyhow::Error + '_ {
    move |e| anyhow!("{what}: {}", e.desc())
}

/// Whether [`prepare_spec`] has anything to change in this container's spec.
pub(crate) fn spec_changes(rec: &Record) -> bool {
    let mode = &rec.host_config.network_mode;
    mode.starts_with("container:")
        || (!rec.host_config.links.is_empty() && !super::rootless_netns::is_user_network(mode))
}

/// Before the runtime's create: `container:CTR` joins that container's namespace; links
/// add Docker's legacy environment.
pub(crate) fn prepare_spec(
    store: &Store,
    rec: &Record,
    spec: &mut serde_json::Value,
) -> Result<()> {
    let mode = &rec.host_config.network_mode;
    if let Some(other) = mode.strip_prefix("container:") {
        let o = store
            .get(other)
            .map_err(|_| anyhow!("--network container:{other}: no such container"))?;
        if !store.derive(&o).is_active() || o.state.pid <= 0 {
            bail!("--network container:{other}: container {other} is not running");
        }
        let path = format!("/proc/{}/ns/net", o.state.pid);
        if let Some(ns) = spec
            .pointer_mut("/linux/namespaces")
            .and_then(|v| v.as_array_mut())
        {
            ns.retain(|n| n["type"] != "network");
            ns.push(serde_json::json!({"type": "network", "path": path}));
        }
    }
    let mut env = Vec::new();
    // Legacy links (the default bridge) only: on a user network a link is a name in the
    // hosts file, kept current, without Docker's environment (which a later start of
    // the target could not update either).
    let legacy = !super::rootless_netns::is_user_network(mode);
    for l in rec.host_config.links.iter().filter(|_| legacy) {
        let (target, alias) = link_parts(l);
        let o = store
            .get(target)
            .map_err(|_| anyhow!("--link {l}: no such container: {target}"))?;
        if !store.derive(&o).is_active() {
            bail!("--link {l}: cannot link to a non running container: {target}");
        }
        let Some(ep) = super::endpoint_of(store, &o.rec.id) else {
            bail!("--link {l}: container {target} is not on the default bridge network");
        };
        // Docker's legacy link variables (daemon/links): the lowest port as ALIAS_PORT,
        // each port's parts, the link's name, and the target's own environment.
        let a = alias.to_ascii_uppercase().replace('-', "_");
        let mut ports: Vec<(u16, String)> = o
            .rec
            .config
            .exposed_ports
            .keys()
            .filter_map(|k| split_key(k))
            .collect();
        ports.sort();
        if let Some((p, pr)) = ports.first() {
            env.push(format!("{a}_PORT={pr}://{}:{p}", ep.ip));
        }
        for (p, pr) in &ports {
            let base = format!("{a}_PORT_{p}_{}", pr.to_ascii_uppercase());
            env.push(format!("{base}={pr}://{}:{p}", ep.ip));
            env.push(format!("{base}_ADDR={}", ep.ip));
            env.push(format!("{base}_PORT={p}"));
            env.push(format!("{base}_PROTO={pr}"));
        }
        for v in &o.rec.config.env {
            if let Some((k, val)) = v.split_once('=') {
                if k != "HOME" && k != "PATH" {
                    env.push(format!("{a}_ENV_{k}={val}"));
                }
            }
        }
        env.push(format!("{a}_NAME=/{}/{alias}", rec.name));
    }
    if !env.is_empty() {
        if let Some(e) = spec
            .pointer_mut("/process/env")
            .and_then(|v| v.as_array_mut())
        {
            e.extend(env.into_iter().map(serde_json::Value::String));
        }
    }
    Ok(())
}

/// `--link CTR[:ALIAS]` (`run`/`create` and `network connect`): well formed.
pub(crate) fn check_link(l: &str) -> Result<()> {
    let (t, a) = link_parts(l);
    if t.is_empty() || a.is_empty() {
        bail!("--link {l}: expected CONTAINER[:ALIAS]");
    }
    Ok(())
}

fn link_parts(l: &str) -> (&str, &str) {
    match l.split_once(':') {
        Some((t, a)) => (t, a),
        None => (l, l),
    }
}

/// Drops the endpoints of containers whose monitor is gone (they no longer run, or are
/// about to be killed by whoever reconciles them). Returns the networks touched.
fn sweep(store: &Store, ipam: &mut Ipam, nl: &mut Netlink) -> Vec<String> {
    let mut touched = Vec::new();
    ipam.endpoints.retain(|e| {
        if store.monitor_alive(&e.container) {
            return true;
        }
        if let Ok(Some(i)) = nl.index(&e.veth) {
            let _ = Netlink::delete_in_background(&[i]);
        }
        touched.push(e.network.clone());
        false
    });
    touched
}

/// Takes network `n`'s bridge (index `i`) out of service at once, its name free for a
/// new bridge, and deletes it in the background (see [`Netlink::delete_in_background`]).
fn retire_bridge(nets: &Networks, n: &Network, nl: &mut Netlink, i: u32) {
    let name = nets.retired_name(n);
    let mut r = nl.retire(i, &name);
    if r == Err(nix::errno::Errno::EEXIST) {
        // An older one is still there (its deleter not through yet, or killed): it goes
        // first, here.
        if let Ok(Some(old)) = nl.index(&name) {
            let _ = nl.delete(old);
        }
        r = nl.retire(i, &name);
    }
    if r.is_err() || Netlink::delete_in_background(&[i]).is_err() {
        let _ = nl.delete(i);
    }
}

/// After the runtime's create: connects the container (init `pid`) to its network.
/// Nothing is left behind on failure.
pub(crate) fn attach(store: &Store, rec: &Record, pid: i32) -> Result<Option<Attached>> {
    let mode = rec.host_config.network_mode.as_str();
    if !super::is_bridge_mode(mode) {
        return Ok(None);
    }
    if super::rootless_netns::on_shared_netns(rec) {
        return super::rootless_netns::attach(store, rec, pid).map(Some);
    }
    if crate::front::userns::rootless() {
        let (pasta, fwd) = super::rootless::attach(store, rec, pid, &wanted_ports(rec))?;
        return Ok(Some(Attached {
            _reserved: Vec::new(),
            _pasta: Some(pasta),
            _forward: Some(fwd),
            warnings: Vec::new(),
        }));
    }
    attach_bridge(store, rec, pid, wanted_ports(rec)).map(Some)
}

/// [`attach`] to a bridge network of this network namespace, publishing `wanted`.
pub(super) fn attach_bridge(
    store: &Store,
    rec: &Record,
    pid: i32,
    wanted: Vec<(String, super::HostPort)>,
) -> Result<Attached> {
    let mode = rec.host_config.network_mode.as_str();
    let nets = Networks::new(&store.root);
    let lock = nets.lock()?;
    let net = nets.get(mode).map_err(|e| anyhow!("--network: {e:#}"))?;
    let mut ipam = nets.ipam();
    refuse_foreign(&ipam)?;
    let mut nl = Netlink::open().map_err(ne("netlink"))?;
    let mut touched = sweep(store, &mut ipam, &mut nl);
    ipam.endpoints.retain(|e| e.container != rec.id);
    // Before anything is made: a failure here leaves nothing to undo.
    let mut warnings = Vec::new();
    let routed = !net.internal
        || rec
            .net_request
            .connected
            .iter()
            .any(|c| nets.get(&c.network).is_ok_and(|n| !n.internal));
    if routed {
        warnings.extend(enable_forwarding()?);
        let any6 = net.enable_ipv6
            || rec
                .net_request
                .connected
                .iter()
                .any(|c| nets.get(&c.network).is_ok_and(|n| n.enable_ipv6));
        if any6 {
            warnings.extend(super::v6::enable_forwarding6()?);
        }
    }
    let primary = EpReq {
        pid,
        k: 0,
        ip: rec.net_request.ipv4_address.clone(),
        ip6: rec.net_request.ipv6_address.clone(),
        mac: rec.net_request.mac_address.clone(),
        aliases: rec.net_request.aliases.clone(),
        links: rec.host_config.links.clone(),
        ports: wanted,
    };
    let mut made = connect(store, &nets, &net, rec, &mut ipam, &mut nl, &primary);
    touched.push(net.name.clone());
    for (i, c) in rec.net_request.connected.iter().enumerate() {
        if made.is_err() {
            break;
        }
        let req = EpReq {
            pid,
            k: i + 1,
            ip: c.ipv4_address.clone(),
            ip6: c.ipv6_address.clone(),
            mac: String::new(),
            aliases: c.aliases.clone(),
            links: c.links.clone(),
            ports: Vec::new(),
        };
        touched.push(c.network.clone());
        if let Err(e) = nets
            .get(&c.network)
            .and_then(|n| connect(store, &nets, &n, rec, &mut ipam, &mut nl, &req))
        {
            made = Err(e.context(format!("network {}", c.network)));
        }
    }
    let r = match made {
        Ok(reserved) => match refresh(&nets, &ipam, &mut nl, &touched) {
            Ok(()) => nets.save_ipam(&ipam).map(|_| reserved),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match r {
        Ok(reserved) => {
            drop(lock);
            Ok(Attached {
                _reserved: reserved,
                _pasta: None,
                _forward: None,
                warnings,
            })
        }
        Err(e) => {
            // Undo: the endpoint out, the kernel brought back to the record.
            let mut ipam = nets.ipam();
            let _ = sweep(store, &mut ipam, &mut nl);
            for k in 0..=rec.net_request.connected.len() {
                if let Ok(Some(i)) = nl.index(&veth_name(&nets, &rec.id, k)) {
                    let _ = nl.delete(i);
                }
            }
            let _ = refresh(&nets, &ipam, &mut nl, &touched);
            let _ = nets.save_ipam(&ipam);
            Err(e)
        }
    }
}

/// Our end of the container's k-th veth (k = 0: its main network).
fn veth_name(nets: &Networks, id: &str, k: usize) -> String {
    if k == 0 {
        format!("vb{}{}", &nets.tag[..4], &id[..8.min(id.len())])
    } else {
        // `x` is no hex digit: an id whose 8th digit is k's never makes eth0's name again,
        // and the name keeps within IFNAMSIZ (15) for any k.
        let k = k.to_string();
        let n = 15usize.saturating_sub(7 + k.len()).min(id.len());
        format!("vb{}{}x{k}", &nets.tag[..4], &id[..n])
    }
}

/// One endpoint asked for: the k-th interface (eth<k>), its address, MAC and aliases.
pub(crate) struct EpReq {
    /// The container's init.
    pid: i32,
    k: usize,
    ip: String,
    ip6: String,
    mac: String,
    aliases: Vec<String>,
    /// `--link CTR[:ALIAS]` on this network (`run`'s on the main one, `network connect`'s).
    links: Vec<String>,
    /// The ports it publishes (its main interface only).
    ports: Vec<(String, super::HostPort)>,
}

/// Bridges and rules are made and removed only in the network namespace they are in.
fn refuse_foreign(ipam: &Ipam) -> Result<()> {
    if ipam.foreign() {
        bail!(
            "this root's containers run in network namespace {}: run berth there",
            ipam.netns
        );
    }
    Ok(())
}

/// Turns on IPv4 forwarding where it is off; says so.
fn enable_forwarding() -> Result<Option<String>> {
    let fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    if fwd.trim() == "1" {
        return Ok(None);
    }
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    Ok(Some(
        "net.ipv4.ip_forward turned on for bridge networks".to_string(),
    ))
}

fn write_sysctl(path: &str, v: &str) -> Result<()> {
    std::fs::write(path, v).map_err(|e| anyhow!("{path}: {}", crate::error::errno_text(&e)))
}

/// Makes the container's endpoint and adds it to `ipam` (not saved).
fn connect(
    store: &Store,
    nets: &Networks,
    net: &Network,
    rec: &Record,
    ipam: &mut Ipam,
    nl: &mut Netlink,
    req: &EpReq,
) -> Result<Vec<super::bind::Held>> {
    let pid = req.pid;
    if ipam
        .endpoints
        .iter()
        .any(|e| e.container == rec.id && e.network == net.name)
    {
        bail!(
            "container {} is already connected to network {}",
            rec.name,
            net.name
        );
    }
    let primary = req.k == 0;
    let on_net = ipam.endpoints.iter().any(|e| e.network == net.name);
    if !on_net {
        // A bridge of ours with no container in the record is a leftover (a release made
        // from another namespace, a crash): made again from scratch. A retired one still
        // there had its deleter killed.
        if let Ok(Some(i)) = nl.index(&nets.bridge_name(net)) {
            retire_bridge(nets, net, nl, i);
        } else if let Ok(Some(i)) = nl.index(&nets.retired_name(net)) {
            let _ = Netlink::delete_in_background(&[i]);
        }
    }
    if net.name == DEFAULT && !on_net {
        // The default network's subnet is chosen each time its bridge is made: 172.17/16
        // unless a route (another root's bridge, the host's LAN) or a network has it.
        let routes = super::host_routes();
        let taken: Vec<(Ipv4Addr, u8)> = nets
            .list()
            .iter()
            .filter_map(|x| parse_cidr(&x.subnet))
            .chain(routes)
            .collect();
        let s = super::candidates()
            .find(|c| !taken.iter().any(|t| super::overlaps(*c, *t)))
            .ok_or_else(|| anyhow!("no free private subnet for the default network"))?;
        ipam.default_subnet = format!("{}/{}", s.0, s.1);
    }
    let Some((subnet, gw)) = nets.addressing(net, ipam) else {
        bail!("network {}: no subnet", net.name);
    };
    let br = nets.bridge_name(net);
    // The bridge (made by the first container of the network).
    let bidx = match nl.index(&br).map_err(ne("netlink"))? {
        Some(i) => i,
        None => {
            nl.add_bridge(&br, net.mtu)
                .map_err(|e| anyhow!("creating bridge {br}: {}", e.desc()))?;
            let i = nl
                .index(&br)
                .map_err(ne("netlink"))?
                .ok_or_else(|| anyhow!("bridge {br} vanished"))?;
            let bcast = Ipv4Addr::from(u32::from(subnet.0) | !super::mask(subnet.1));
            match nl.add_address(i, gw, subnet.1, bcast) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => {
                    let _ = nl.delete(i);
                    bail!("bridge {br}: address {gw}: {}", e.desc());
                }
            }
            if let Some((s6, gw6)) = super::v6::addressing6(net) {
                if let Err(e) = nl.add_address6(i, gw6, s6.1) {
                    let _ = nl.delete(i);
                    bail!("bridge {br}: address {gw6}: {}", e.desc());
                }
            }
            if let Err(e) = nl.set_up(i, None) {
                let _ = nl.delete(i);
                bail!("bridge {br}: {}", e.desc());
            }
            i
        }
    };
    if !net.internal {
        // 127.0.0.1:PORT from the host itself is DNATed out of the bridge.
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{br}/route_localnet"), "1")?;
    }
    // The address: --ip, else the lowest free one.
    let used: Vec<Ipv4Addr> = ipam
        .endpoints
        .iter()
        .filter(|e| e.network == net.name)
        .map(|e| e.ip)
        .collect();
    let first = u32::from(subnet.0) + 1;
    let last = (u32::from(subnet.0) | !super::mask(subnet.1)) - 1;
    let ip = if req.ip.is_empty() {
        let (lo, hi) = super::pool(subnet, &net.ip_range);
        (lo..=hi)
            .map(Ipv4Addr::from)
            .find(|a| *a != gw && !used.contains(a))
            .ok_or_else(|| anyhow!("network {}: no free address left", net.name))?
    } else {
        let a: Ipv4Addr =
            rec.net_request.ipv4_address.parse().map_err(|_| {
                anyhow!("--ip {}: not an IPv4 address", rec.net_request.ipv4_address)
            })?;
        if !super::contains(subnet, a) || a == gw || !(first..=last).contains(&u32::from(a)) {
            bail!(
                "--ip {a}: not a usable address of network {} ({}/{})",
                net.name,
                subnet.0,
                subnet.1
            );
        }
        if let Some(e) = ipam
            .endpoints
            .iter()
            .find(|e| e.network == net.name && e.ip == a)
        {
            bail!("--ip {a}: address already in use by container {}", e.name);
        }
        a
    };
    let mac = if req.mac.is_empty() {
        mac_of(ip)
    } else {
        parse_mac(&req.mac)?
    };
    // Ports: bound here first, so that a port in use fails before anything else is made.
    let wanted = &req.ports;
    if !wanted.is_empty() && net.internal {
        bail!("--publish: network {} is internal", net.name);
    }
    let used6: Vec<std::net::Ipv6Addr> = ipam
        .endpoints
        .iter()
        .filter(|e| e.network == net.name)
        .filter_map(|e| e.ip6.map(|a| a.0))
        .collect();
    let ip6 = super::v6::pick(net, &req.ip6, &used6)?;
    let (reserved, bindings) = super::bind::publish(
        ipam,
        wanted.clone(),
        net.enable_ipv6,
        (ip, ip6.map(|a| a.0)),
    )?;

    // The veth pair: our end on the bridge, the container's made in its namespace.
    let veth = veth_name(nets, &rec.id, req.k);
    let iface = format!("eth{}", req.k);
    let ns = File::open(format!("/proc/{pid}/ns/net")).map_err(|e| {
        anyhow!(
            "the container's network namespace: {}",
            crate::error::errno_text(&e)
        )
    })?;
    nl.add_veth(
        &veth,
        net.mtu,
        &Peer {
            name: &iface,
            netns: ns.as_fd(),
            mac,
        },
    )
    .map_err(|e| anyhow!("creating veth {veth}: {}", e.desc()))?;
    let vidx = nl
        .index(&veth)
        .map_err(ne("netlink"))?
        .ok_or_else(|| anyhow!("veth {veth} vanished"))?;
    nl.set_up(vidx, Some(bidx))
        .map_err(|e| anyhow!("veth {veth}: {}", e.desc()))?;
    nl.set_hairpin(vidx)
        .map_err(|e| anyhow!("veth {veth}: hairpin: {}", e.desc()))?;
    let mut inner = Netlink::open_in(ns.as_fd()).map_err(ne("the container's netlink"))?;
    let eth = inner
        .index(&iface)
        .map_err(ne("netlink"))?
        .ok_or_else(|| anyhow!("{iface} missing in the container"))?;
    let bcast = Ipv4Addr::from(u32::from(subnet.0) | !super::mask(subnet.1));
    inner
        .add_address(eth, ip, subnet.1, bcast)
        .map_err(|e| anyhow!("{iface}: address {ip}: {}", e.desc()))?;
    if let Some((a, n, _)) = ip6 {
        inner
            .add_address6(eth, a, n)
            .map_err(|e| anyhow!("{iface}: address {a}: {}", e.desc()))?;
    }
    inner
        .set_up(eth, None)
        .map_err(|e| anyhow!("{iface}: {}", e.desc()))?;
    if let Ok(Some(lo)) = inner.index("lo") {
        let _ = inner.set_up(lo, None);
    }
    if primary && !net.internal {
        inner
            .add_default_route(eth, gw)
            .map_err(|e| anyhow!("{iface}: default route: {}", e.desc()))?;
        if let Some((_, _, gw6)) = ip6 {
            inner
                .add_default_route6(eth, gw6)
                .map_err(|e| anyhow!("{iface}: IPv6 default route: {}", e.desc()))?;
        }
    }
    let mut links = Vec::new();
    for l in &req.links {
        let (t, a) = link_parts(l);
        if net.name != DEFAULT {
            // By name: whichever container has it when the hosts file is written.
            links.push((t.to_string(), a.to_string()));
        } else if let Ok(id) = store.resolve(t) {
            links.push((id, a.to_string()));
        }
    }
    ipam.endpoints.push(Endpoint {
        container: rec.id.clone(),
        name: rec.name.clone(),
        hostname: rec.config.hostname.clone(),
        network: net.name.clone(),
        ip,
        prefix: subnet.1,
        gateway: gw,
        mac: mac_text(&mac),
        ip6,
        veth,
        ports: bindings,
        aliases: req.aliases.clone(),
        links,
        extra_hosts: rec.host_config.extra_hosts.clone(),
        hosts_path: rec.hosts_path.clone(),
        helper: None,
    });
    Ok(reserved)
}

/// The ports the container publishes: `-p`, and with `-P` every exposed one not given.
pub(super) fn wanted_ports(rec: &Record) -> Vec<(String, super::HostPort)> {
    let mut wanted = Vec::new();
    for (k, v) in &rec.host_config.port_bindings {
        for h in v {
            wanted.push((k.clone(), h.clone()));
        }
    }
    if rec.host_config.publish_all_ports {
        for k in rec.config.exposed_ports.keys() {
            if !rec.host_config.port_bindings.contains_key(k) {
                wanted.push((k.clone(), super::HostPort::default()));
            }
        }
    }
    wanted
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let p: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| anyhow!("--mac-address {s}: invalid"))?;
    let m: [u8; 6] = p
        .try_into()
        .map_err(|_| anyhow!("--mac-address {s}: invalid"))?;
    if m[0] & 1 == 1 {
        bail!("--mac-address {s}: a multicast address");
    }
    Ok(m)
}

/// Holds `ip:port` of `proto` (port 0: one the kernel picks) so that no other process
/// takes it; None for sctp.
pub(super) fn reserve(
    proto: &str,
    ip: Ipv4Addr,
    port: u16,
) -> std::io::Result<(Option<Reserved>, u16)> {
    let a = SocketAddrV4::new(ip, port);
    match proto {
        "udp" => {
            let s = UdpSocket::bind(a)?;
            let p = s.local_addr()?.port();
            Ok((Some(Reserved::from(s)), p))
        }
        "sctp" => reserve_sctp(a),
        _ => {
            // Bound and listening: the port is ours; traffic is DNATed before it reaches us.
            let s = TcpListener::bind(a)?;
            let p = s.local_addr()?.port();
            Ok((Some(Reserved::from(s)), p))
        }
    }
}

/// sctp: no socket holds the port (berth keeps no SCTP socket, and kernels may have none;
/// DNAT takes the traffic before a local socket would see it), so a port is free when no
/// other container of the root has it, which the caller checks.
fn reserve_sctp(a: SocketAddrV4) -> std::io::Result<(Option<Reserved>, u16)> {
    let p = if a.port() == 0 {
        TcpListener::bind(a)?.local_addr()?.port()
    } else {
        a.port()
    };
    Ok((None, p))
}

/// Brings bridges, rules and hosts files in line with `ipam` for the networks `touched`.
fn refresh(nets: &Networks, ipam: &Ipam, nl: &mut Netlink, touched: &[String]) -> Result<()> {
    let all = nets.list();
    for name in touched {
        if ipam.endpoints.iter().any(|e| &e.network == name) {
            continue;
        }
        if let Some(n) = all.iter().find(|n| &n.name == name) {
            if let Ok(Some(i)) = nl.index(&nets.bridge_name(n)) {
                retire_bridge(nets, n, nl, i);
            }
        }
    }
    let mut bridges = Vec::new();
    let names: Vec<String> = all.iter().map(|n| nets.bridge_name(n)).collect();
    for (n, br) in all.iter().zip(&names) {
        let eps: Vec<&Endpoint> = ipam
            .endpoints
            .iter()
            .filter(|e| e.network == n.name)
            .collect();
        if eps.is_empty() {
            continue;
        }
        let Some((subnet, _)) = nets.addressing(n, ipam) else {
            continue;
        };
        bridges.push(BridgeRules {
            bridge: br,
            subnet,
            internal: n.internal,
            endpoints: eps.iter().map(|e| (e.ip, e.ports.as_slice())).collect(),
        });
    }
    let table = nets.table();
    let bridges6 = bridges6(ipam, &all, &names);
    if bridges.is_empty() {
        nft::apply(&table, None)?;
    } else {
        let all_br: Vec<&str> = bridges.iter().map(|b| b.bridge).collect();
        let rules: Vec<_> = std::iter::once(nft::ruleset(&table, &bridges))
            .chain(super::nft6::ruleset6(&table, &bridges6, &all_br))
            .collect();
        nft::apply(&table, Some(&rules))?;
    }
    for name in touched {
        write_hosts(ipam, name);
    }
    Ok(())
}

/// The bridges with IPv6 and their running endpoints, for the ip6 table.
fn bridges6<'a>(
    ipam: &'a Ipam,
    all: &'a [Network],
    names: &'a [String],
) -> Vec<super::nft6::Bridge6<'a>> {
    all.iter()
        .zip(names)
        .filter_map(|(n, br)| {
            let (subnet, _) = super::v6::addressing6(n)?;
            let endpoints: Vec<_> = ipam
                .endpoints
                .iter()
                .filter(|e| e.network == n.name)
                .filter_map(|e| e.ip6.map(|a| (a.0, e.ports.as_slice())))
                .collect();
            (!endpoints.is_empty()).then_some(super::nft6::Bridge6 {
                bridge: br,
                subnet,
                internal: n.internal,
                endpoints,
            })
        })
        .collect()
}

/// Rewrites, in place (the file is bind-mounted: its inode must stay), the hosts file of
/// every container on `network`: itself, and on user networks every other container by
/// name, short id and aliases (on every network it is on); `--link` targets by alias.
fn write_hosts(ipam: &Ipam, network: &str) {
    let mut done: Vec<&str> = Vec::new();
    for e in ipam.endpoints.iter().filter(|e| e.network == network) {
        if done.contains(&e.container.as_str()) {
            continue;
        }
        done.push(&e.container);
        let own: Vec<&Endpoint> = ipam
            .endpoints
            .iter()
            .filter(|o| o.container == e.container)
            .collect();
        let main = own[0];
        let mut t = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{}\t{}\n",
            main.ip, main.hostname
        );
        if let Some((a, _, _)) = main.ip6 {
            t.push_str(&format!("{a}\t{}\n", main.hostname));
        }
        t.push_str(&super::extra_host_lines(&main.extra_hosts));
        // A link names its target on the network it was made on (by id on the default
        // bridge, by name or id on a user network).
        for (mine, (to, alias)) in own.iter().flat_map(|m| m.links.iter().map(move |l| (m, l))) {
            if let Some(o) = ipam.endpoints.iter().find(|o| {
                o.network == mine.network
                    && o.container != mine.container
                    && (o.name == *to || o.container.starts_with(to.as_str()))
            }) {
                let names = format!("{alias} {} {}", o.name, short(&o.container));
                t.push_str(&format!("{}\t{names}\n", o.ip));
                if let Some((a, _, _)) = o.ip6 {
                    t.push_str(&format!("{a}\t{names}\n"));
                }
            }
        }
        for mine in own.iter().filter(|m| m.network != DEFAULT) {
            for o in ipam
                .endpoints
                .iter()
                .filter(|o| o.network == mine.network && o.container != e.container)
            {
                let mut names = vec![o.name.clone(), short(&o.container).to_string()];
                names.extend(o.aliases.iter().cloned());
                t.push_str(&format!("{}\t{}\n", o.ip, names.join(" ")));
                if let Some((a, _, _)) = o.ip6 {
                    t.push_str(&format!("{a}\t{}\n", names.join(" ")));
                }
            }
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&main.hosts_path)
        {
            use std::io::Write;
            let _ = f.write_all(t.as_bytes());
        }
    }
}

/// `network connect` of a running container (init `pid`): one more interface.
pub(crate) fn connect_running(
    store: &Store,
    rec: &Record,
    pid: i32,
    net: &Network,
    k: usize,
    (ip, ip6): (&str, &str),
    (aliases, links): (&[String], &[String]),
) -> Result<()> {
    if crate::front::userns::rootless() {
        return super::rootless_netns::in_shared(store, || {
            super::rootless_netns::forwarding(net.enable_ipv6)?;
            connect_here(store, rec, pid, net, k, (ip, ip6), (aliases, links))
        });
    }
    connect_here(store, rec, pid, net, k, (ip, ip6), (aliases, links))
}

/// [`connect_running`] in this network namespace.
fn connect_here(
    store: &Store,
    rec: &Record,
    pid: i32,
    net: &Network,
    k: usize,
    (ip, ip6): (&str, &str),
    (aliases, links): (&[String], &[String]),
) -> Result<()> {
    let nets = Networks::new(&store.root);
    let _lock = nets.lock()?;
    let mut ipam = nets.ipam();
    refuse_foreign(&ipam)?;
    let mut nl = Netlink::open().map_err(ne("netlink"))?;
    let mut touched = sweep(store, &mut ipam, &mut nl);
    let req = EpReq {
        pid,
        k,
        ip: ip.to_string(),
        ip6: ip6.to_string(),
        mac: String::new(),
        aliases: aliases.to_vec(),
        links: links.to_vec(),
        ports: Vec::new(),
    };
    touched.push(net.name.clone());
    if !net.internal {
        if let Some(w) = enable_forwarding()? {
            crate::logging::warn(&w);
        }
        if net.enable_ipv6 {
            if let Some(w) = super::v6::enable_forwarding6()? {
                crate::logging::warn(&w);
            }
        }
    }
    let r = connect(store, &nets, net, rec, &mut ipam, &mut nl, &req)
        .and_then(|_| refresh(&nets, &ipam, &mut nl, &touched));
    if r.is_err() {
        if let Ok(Some(i)) = nl.index(&veth_name(&nets, &rec.id, k)) {
            let _ = nl.delete(i);
        }
        let ipam = nets.ipam();
        let _ = refresh(&nets, &ipam, &mut nl, &touched);
        return r;
    }
    nets.save_ipam(&ipam)
}

/// `network disconnect` of a running container: that interface and its address go.
pub(crate) fn disconnect_running(store: &Store, id: &str, network: &str) -> Result<()> {
    if crate::front::userns::rootless() {
        return super::rootless_netns::in_shared(store, || disconnect_here(store, id, network));
    }
    disconnect_here(store, id, network)
}

/// [`disconnect_running`] in this network namespace.
fn disconnect_here(store: &Store, id: &str, network: &str) -> Result<()> {
    let nets = Networks::new(&store.root);
    let _lock = nets.lock()?;
    let mut ipam = nets.ipam();
    refuse_foreign(&ipam)?;
    let mut nl = Netlink::open().map_err(ne("netlink"))?;
    let mut touched = sweep(store, &mut ipam, &mut nl);
    ipam.endpoints.retain(|e| {
        if e.container != id || e.network != network {
            return true;
        }
        if let Ok(Some(i)) = nl.index(&e.veth) {
            let _ = nl.delete(i);
        }
        false
    });
    touched.push(network.to_string());
    // Its hosts file loses that network's names too.
    if let Some(e) = ipam.endpoints.iter().find(|e| e.container == id) {
        touched.push(e.network.clone());
    }
    let r = refresh(&nets, &ipam, &mut nl, &touched);
    nets.save_ipam(&ipam)?;
    r
}

/// The container has ended: its endpoint released, its network's bridge removed if it
/// was the last, rules and the others' hosts files updated.
pub(crate) fn detach(store: &Store, id: &str) -> Result<()> {
    let nets = Networks::new(&store.root);
    if !nets.dir.join("ipam.json").exists() {
        return Ok(());
    }
    if crate::front::userns::rootless() {
        return super::rootless_netns::detach(&nets, store, id);
    }
    detach_bridge(&nets, store, id)
}

/// [`detach`] of a container's last teardown, rootful, finished by a detached copy of this
/// process where it can be made: no one needs to wait for the rules, the record and the
/// bridge going (the kernel's part, ~5 ms even with the bridge's deletion in the
/// background). The networks lock is taken here and handed down, so the next berth
/// command that touches a network waits for the copy to be done.
pub(crate) fn detach_in_background(store: &Store, id: &str) -> Result<()> {
    let nets = Networks::new(&store.root);
    if !nets.dir.join("ipam.json").exists() || crate::front::userns::rootless() {
        return detach(store, id);
    }
    let lock = nets.lock()?;
    if !nets.ipam().endpoints.iter().any(|e| e.container == id) {
        return Ok(());
    }
    match crate::sys::fork_detached(&[lock.as_fd()]) {
        Ok(false) => {
            // An unlock here would be the copy's too (a flock belongs to the open file,
            // which both share): ours closes when this process ends, right after.
            std::mem::forget(lock);
            Ok(())
        }
        Ok(true) => {
            let code = i32::from(detach_locked(&nets, store, id).is_err());
            crate::sys::exit_now(code)
        }
        Err(_) => detach_locked(&nets, store, id),
    }
}

/// [`detach`] from the bridge networks of this network namespace.
pub(super) fn detach_bridge(nets: &Networks, store: &Store, id: &str) -> Result<()> {
    let _lock = nets.lock()?;
    detach_locked(nets, store, id)
}

/// [`detach_bridge`] with the networks lock held.
fn detach_locked(nets: &Networks, store: &Store, id: &str) -> Result<()> {
    let mut ipam = nets.ipam();
    if !ipam.endpoints.iter().any(|e| e.container == id) {
        return Ok(());
    }
    if ipam.foreign() {
        return forget(nets, ipam, |e| e.container == id);
    }
    let mut nl = Netlink::open().map_err(ne("netlink"))?;
    let mut touched = sweep(store, &mut ipam, &mut nl);
    ipam.endpoints.retain(|e| {
        if e.container != id {
            return true;
        }
        // Usually gone with the container's network namespace already.
        if let Ok(Some(i)) = nl.index(&e.veth) {
            let _ = Netlink::delete_in_background(&[i]);
        }
        touched.push(e.network.clone());
        false
    });
    if !ipam.endpoints.iter().any(|e| e.network == DEFAULT) {
        ipam.default_subnet.clear();
    }
    let r = refresh(nets, &ipam, &mut nl, &touched);
    nets.save_ipam(&ipam)?;
    r
}

/// Reconciled from where its network namespace cannot be reached: the record (and the
/// others' hosts files) is all that can be put right (the container's veth went with its
/// namespace). The caller holds the lock.
pub(super) fn forget(
    nets: &Networks,
    mut ipam: Ipam,
    gone: impl Fn(&Endpoint) -> bool,
) -> Result<()> {
    let nets_gone: Vec<String> = ipam
        .endpoints
        .iter()
        .filter(|e| gone(e))
        .map(|e| e.network.clone())
        .collect();
    ipam.endpoints.retain(|e| !gone(e));
    for n in &nets_gone {
        write_hosts(&ipam, n);
    }
    nets.save_ipam(&ipam)
}

/// Reconciling a container whose monitor died: the same release.
pub(crate) fn release(store: &Store, id: &str) -> Result<()> {
    detach(store, id)
}

#[cfg(test)]
mod veth_tests {
    #[test]
    fn veth_names_never_collide_and_fit_ifnamsiz() {
        let nets = super::Networks::new(std::path::Path::new("/nonexistent-berth-root"));
        // The 8th hex digit of the id equal to k: the names used to be the same.
        let id = "a98cb3c1ffffffff";
        let names: Vec<String> = (0..120).map(|k| super::veth_name(&nets, id, k)).collect();
        for (i, a) in names.iter().enumerate() {
            assert!(a.len() <= 15, "{a}");
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
