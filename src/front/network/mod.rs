//! Networks (rootful bridge networks, Docker's `bridge` driver), with no daemon:
//!
//! - `ROOT/networks/<name>.json`: a network's definition (`network create`); the default
//!   network `bridge` is built in. `ROOT/networks/ipam.json`: who holds which address (and
//!   published ports) now, one endpoint per running container. Both change only under
//!   `ROOT/networks/lock` (flock), taken after a container's lock, never before.
//! - Kernel objects are derived from the IPAM record and belong to one `--root`: bridge
//!   names and the nftables table are named after a hash of the root (`bth<tag>-<n>`,
//!   `berth-<tag>`), so two roots never touch each other's. A bridge exists while one of
//!   its containers runs; the table while any does.
//! - The container's network namespace is made by the runtime; its monitor configures it
//!   between the runtime's create and start (OCI's way), and releases everything when
//!   the container ends; a command that finds a dead monitor releases it (reconcile).
//! - Names between containers: each running container's /etc/hosts (a file berth owns,
//!   bind-mounted) is rewritten in place whenever a container of its network comes or
//!   goes. Daemonless: nothing has to keep running to answer names, and the containers'
//!   own resolvers read the file on every lookup.

pub(crate) mod args;
mod bind;
pub(crate) mod nft;
mod nft6;
mod nftnl;
pub(crate) mod ports;
mod rootless;
mod rootless_netns;
mod rootless_ports;
mod setup;
pub(crate) mod show;
pub(crate) mod v6;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

pub(crate) use ports::{Binding, HostPort};
pub(crate) use rootless_netns::{
    enter as enter_shared_netns, join as join_shared_netns, on_shared_netns, settle_on_drop,
};
pub(crate) use setup::{
    attach, check_link, connect_running, detach, detach_in_background, disconnect_running,
    prepare_spec, release, spec_changes, Attached,
};

use crate::front::containers::{Record, Store};

/// The default network's name.
pub(crate) const DEFAULT: &str = "bridge";

/// A network as `network create` made it.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Network {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) created: String,
    pub(crate) driver: String,
    /// `a.b.c.d/n`; empty for the default network (chosen when its bridge is made).
    pub(crate) subnet: String,
    pub(crate) gateway: String,
    /// `--ip-range`: addresses are handed out from it only (`a.b.c.d/n`, in the subnet).
    pub(crate) ip_range: String,
    pub(crate) internal: bool,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) options: BTreeMap<String, String>,
    pub(crate) mtu: u32,
    /// Numbers the bridge: `bth<tag>-<index>`.
    pub(crate) index: u32,
    /// `--ipv6`: dual-stack, with `subnet6` (given or a ULA /64) and `gateway6`.
    #[serde(rename = "EnableIPv6")]
    pub(crate) enable_ipv6: bool,
    pub(crate) subnet6: String,
    pub(crate) gateway6: String,
}

/// What `run`/`create` asked of the container's network, beyond its HostConfig.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct NetRequest {
    pub(crate) aliases: Vec<String>,
    #[serde(rename = "IPv4Address")]
    pub(crate) ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub(crate) ipv6_address: String,
    pub(crate) mac_address: String,
    /// `network connect`: more networks, each another interface (eth1, eth2, ...).
    pub(crate) connected: Vec<Connected>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Connected {
    pub(crate) network: String,
    pub(crate) aliases: Vec<String>,
    /// `network connect --link CTR[:ALIAS]`: as `run --link` on a user network.
    pub(crate) links: Vec<String>,
    #[serde(rename = "IPv4Address")]
    pub(crate) ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub(crate) ipv6_address: String,
}

/// Whether the container uses network `name` (its main one or a connected one).
pub(crate) fn uses(rec: &Record, name: &str) -> bool {
    rec.host_config.network_mode == name
        || rec.net_request.connected.iter().any(|c| c.network == name)
}

/// One running container on one network.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) container: String,
    pub(crate) name: String,
    pub(crate) hostname: String,
    pub(crate) network: String,
    pub(crate) ip: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) gateway: Ipv4Addr,
    pub(crate) mac: String,
    /// On a network with IPv6: the container's IPv6 address, prefix and gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ip6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    pub(crate) veth: String,
    pub(crate) ports: Vec<Binding>,
    pub(crate) aliases: Vec<String>,
    /// `--link`: (the linked container's id on the default bridge, its name or id as given
    /// on a user network; the alias)
    #[serde(default)]
    pub(crate) links: Vec<(String, String)>,
    #[serde(default)]
    pub(crate) extra_hosts: Vec<String>,
    pub(crate) hosts_path: PathBuf,
    /// Rootless: the pasta process that connects the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) helper: Option<rootless::Helper>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub(crate) struct Ipam {
    /// The default network's subnet while its bridge exists.
    #[serde(default)]
    pub(crate) default_subnet: String,
    /// The network namespace the bridges and rules are in while containers run (berth
    /// run from another namespace must not make or remove them there).
    #[serde(default)]
    pub(crate) netns: String,
    #[serde(default)]
    pub(crate) endpoints: Vec<Endpoint>,
}

/// The networks of one `--root`.
pub(crate) struct Networks {
    dir: PathBuf,
    tag: String,
}

/// Which network namespace this process is in (`net:[INODE]`).
pub(crate) fn current_netns() -> String {
    fs::read_link("/proc/self/ns/net")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Ipam {
    /// Its bridges and rules are in another network namespace than ours.
    pub(crate) fn foreign(&self) -> bool {
        !self.netns.is_empty() && !self.endpoints.is_empty() && self.netns != current_netns()
    }
}

/// `a.b.c.d/n` -> (network address, n).
pub(crate) fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, n) = s.split_once('/')?;
    let a: Ipv4Addr = a.parse().ok()?;
    let n: u8 = n.parse().ok()?;
    if n > 32 {
        return None;
    }
    Some((Ipv4Addr::from(u32::from(a) & mask(n)), n))
}

fn mask(n: u8) -> u32 {
    if n == 0 {
        0
    } else {
        u32::MAX << (32 - n)
    }
}

pub(crate) fn contains(net: (Ipv4Addr, u8), ip: Ipv4Addr) -> bool {
    u32::from(ip) & mask(net.1) == u32::from(net.0)
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let n = a.1.min(b.1);
    u32::from(a.0) & mask(n) == u32::from(b.0) & mask(n)
}

/// The host's routes (other than default routes) in our network namespace.
fn host_routes() -> Vec<(Ipv4Addr, u8)> {
    let text = fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let m = u32::from_str_radix(f.get(7)?, 16).ok()?;
            let m = u32::from_be_bytes(m.to_le_bytes());
            (m != 0).then(|| (Ipv4Addr::from(dst.to_le_bytes()), m.leading_ones() as u8))
        })
        .collect()
}

/// Docker's pools, in order: 172.17-31.0.0/16, then 192.168.N.0/20.
fn candidates() -> impl Iterator<Item = (Ipv4Addr, u8)> {
    (17..=31)
        .map(|b| (Ipv4Addr::new(172, b, 0, 0), 16))
        .chain((0..16).map(|k| (Ipv4Addr::new(192, 168, k * 16, 0), 20)))
}

fn hex_tag(root: &Path) -> String {
    use sha2::Digest;
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let h = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    h.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

/// A MAC address from the IPv4 address, as Docker's (02:42:a:b:c:d).
pub(crate) fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub(crate) fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether the network mode makes a bridge endpoint.
pub(crate) fn is_bridge_mode(mode: &str) -> bool {
    !matches!(mode, "none" | "host" | "default" | "private" | "") && !mode.starts_with("container:")
}

/// Whether a rootless container is connected by pasta (its monitor must run in berth's
/// user namespace to open the container's namespaces).
pub(crate) fn uses_pasta(rec: &Record) -> bool {
    is_bridge_mode(&rec.host_config.network_mode) && crate::front::userns::rootless()
}

/// A name that may go into a hosts file (it is read by every container of a network).
pub(crate) fn valid_host_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

/// Docker's rule for a network name.
fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && n.chars()
            .all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

impl Networks {
    pub(crate) fn new(root: &Path) -> Networks {
        Networks {
            dir: root.join("networks"),
            tag: hex_tag(root),
        }
    }

    pub(crate) fn table(&self) -> String {
        format!("berth-{}", self.tag)
    }

    pub(crate) fn bridge_name(&self, n: &Network) -> String {
        format!("bth{}-{}", self.tag, n.index)
    }

    /// The name a bridge of `n` takes when it is retired (down, renamed, deleted in the
    /// background), so that the network's own name is free for a new bridge at once.
    pub(crate) fn retired_name(&self, n: &Network) -> String {
        format!("bx{}-{}", self.tag, n.index)
    }

    pub(crate) fn lock(&self) -> Result<nix::fcntl::Flock<File>> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| anyhow!("{}: {}", self.dir.display(), crate::error::errno_text(&e)))?;
        let p = self.dir.join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| anyhow!("{}: {}", p.display(), crate::error::errno_text(&e)))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow!("{}: {}", p.display(), e.desc()))
    }

    pub(crate) fn ipam(&self) -> Ipam {
        fs::read(self.dir.join("ipam.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub(crate) fn save_ipam(&self, i: &Ipam) -> Result<()> {
        let mut i = i.clone();
        if i.endpoints.is_empty() {
            i.netns.clear();
            i.default_subnet.clear();
        } else if i.netns.is_empty() {
            i.netns = current_netns();
        }
        // The record holds only running containers' endpoints: no fsync (a journal commit,
        // several ms on a busy disk, on every start and stop).
        crate::front::containers::write_volatile(
            &self.dir.join("ipam.json"),
            &crate::sys::json::to_vec_pretty(&i)?,
        )
    }

    fn default_network(&self) -> Network {
        // Docker's: its id is stable for the root.
        use sha2::Digest;
        let h = sha2::Sha256::digest(format!("berth-bridge-{}", self.tag).as_bytes());
        Network {
            name: DEFAULT.into(),
            id: h.iter().map(|b| format!("{b:02x}")).collect(),
            created: String::new(),
            driver: "bridge".into(),
            mtu: 1500,
            index: 0,
            ..Default::default()
        }
    }

    /// The network named `q` (or whose id starts with `q`).
    pub(crate) fn get(&self, q: &str) -> Result<Network> {
        if q == DEFAULT {
            return Ok(self.default_network());
        }
        let all = self.list();
        if let Some(n) = all.iter().find(|n| n.name == q) {
            return Ok(n.clone());
        }
        let by_id: Vec<&Network> = all
            .iter()
            .filter(|n| !q.is_empty() && n.id.starts_with(q))
            .collect();
        match by_id.as_slice() {
            [n] => Ok((*n).clone()),
            [] => bail!("network {q} not found"),
            _ => bail!("network {q} is ambiguous"),
        }
    }

    /// Every network, the default one first.
    pub(crate) fn list(&self) -> Vec<Network> {
        let mut out = vec![self.default_network()];
        let mut own: Vec<Network> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .filter(|e| e.file_name() != "ipam.json")
                    .filter_map(|e| fs::read(e.path()).ok())
                    .filter_map(|b| serde_json::from_slice(&b).ok())
                    .collect()
            })
            .unwrap_or_default();
        own.sort_by(|a: &Network, b| a.name.cmp(&b.name));
        out.extend(own);
        out
    }

    /// `network create`.
    pub(crate) fn create(&self, mut n: Network) -> Result<Network> {
        if !valid_name(&n.name) {
            bail!(
                "network name {:?}: invalid (letters, digits, '_', '.', '-')",
                n.name
            );
        }
        if matches!(n.name.as_str(), "bridge" | "host" | "none" | "default") {
            bail!("network name {}: reserved", n.name);
        }
        if n.driver != "bridge" {
            bail!("--driver {}: only the bridge driver is available", n.driver);
        }
        let _lock = self.lock()?;
        let all = self.list();
        if all.iter().any(|x| x.name == n.name) {
            bail!("network with name {} already exists", n.name);
        }
        let ipam = self.ipam();
        let taken: Vec<(Ipv4Addr, u8)> = all
            .iter()
            .filter_map(|x| parse_cidr(&x.subnet))
            .chain(parse_cidr(&ipam.default_subnet))
            .collect();
        let subnet = if n.subnet.is_empty() {
            let routes = host_routes();
            candidates()
                .find(|c| {
                    // 172.17/16 is the default network's, even while its bridge is down.
                    *c != (Ipv4Addr::new(172, 17, 0, 0), 16)
                        && !taken.iter().chain(routes.iter()).any(|t| overlaps(*c, *t))
                })
                .ok_or_else(|| anyhow!("no free private subnet left for network {}", n.name))?
        } else {
            let s = parse_cidr(&n.subnet)
                .ok_or_else(|| anyhow!("--subnet {}: not an IPv4 CIDR", n.subnet))?;
            if s.1 > 30 {
                bail!("--subnet {}: too small", n.subnet);
            }
            if let Some(t) = all
                .iter()
                .find(|x| parse_cidr(&x.subnet).is_some_and(|t| overlaps(s, t)))
            {
                bail!(
                    "--subnet {}: overlaps with network {} ({})",
                    n.subnet,
                    t.name,
                    t.subnet
                );
            }
            s
        };
        n.subnet = format!("{}/{}", subnet.0, subnet.1);
        let gw = if n.gateway.is_empty() {
            Ipv4Addr::from(u32::from(subnet.0) + 1)
        } else {
            let g: Ipv4Addr = n
                .gateway
                .parse()
                .map_err(|_| anyhow!("--gateway {}: not an IPv4 address", n.gateway))?;
            if !contains(subnet, g) {
                bail!("--gateway {}: not in subnet {}", n.gateway, n.subnet);
            }
            g
        };
        n.gateway = gw.to_string();
        if !n.ip_range.is_empty() {
            let r = parse_cidr(&n.ip_range)
                .ok_or_else(|| anyhow!("--ip-range {}: not an IPv4 CIDR", n.ip_range))?;
            if r.1 < subnet.1 || !contains(subnet, r.0) {
                bail!("--ip-range {}: not in subnet {}", n.ip_range, n.subnet);
            }
            n.ip_range = format!("{}/{}", r.0, r.1);
        }
        if n.mtu == 0 {
            // Rootless, the network lives in the shared namespace, whose way out is pasta's
            // tap (65520, pasta's default, as the default network's containers get): pasta
            // ends every flow there and sends from the host's own sockets, so the host's MTU
            // does not apply, and the monitor's port forwarder reaches a container at 1500
            // with segments 45 times smaller (982 MB/s where 65520 moves 1291,
            // tools/bench/rootless_net.sh).
            n.mtu = if crate::front::userns::rootless() {
                65520
            } else {
                1500
            };
        }
        if !(68..=65535).contains(&n.mtu) {
            bail!("-o mtu={}: out of range", n.mtu);
        }
        n.index = (1..)
            .find(|i| !all.iter().any(|x| x.index == *i))
            .unwrap_or(1);
        v6::settle(&mut n, &all, &self.tag)?;
        n.id = crate::front::containers::new_id();
        n.created = crate::front::containers::now();
        crate::front::containers::write_atomic(
            &self.dir.join(format!("{}.json", n.name)),
            &crate::sys::json::to_vec_pretty(&n)?,
        )?;
        Ok(n)
    }

    /// `network rm`: refused while a container uses the network.
    pub(crate) fn remove(&self, store: &Store, q: &str) -> Result<Network> {
        let n = self.get(q)?;
        if n.name == DEFAULT {
            bail!("bridge is a pre-defined network and cannot be removed");
        }
        let users: Vec<String> = store
            .list()
            .into_iter()
            .filter(|c| uses(&c.rec, &n.name))
            .map(|c| c.rec.name)
            .collect();
        if !users.is_empty() {
            bail!(
                "network {} is in use by container(s): {}",
                n.name,
                users.join(", ")
            );
        }
        let _lock = self.lock()?;
        let p = self.dir.join(format!("{}.json", n.name));
        fs::remove_file(&p)
            .map_err(|e| anyhow!("{}: {}", p.display(), crate::error::errno_text(&e)))?;
        Ok(n)
    }

    /// The subnet and gateway a network has now (the default one's when its bridge is up).
    fn addressing(&self, n: &Network, ipam: &Ipam) -> Option<((Ipv4Addr, u8), Ipv4Addr)> {
        let s = if n.name == DEFAULT {
            parse_cidr(&ipam.default_subnet)?
        } else {
            parse_cidr(&n.subnet)?
        };
        let gw = n
            .gateway
            .parse()
            .unwrap_or(Ipv4Addr::from(u32::from(s.0) + 1));
        Some((s, gw))
    }
}

/// The addresses a network hands out by itself: its subnet's usable ones, within its
/// `--ip-range` when it has one (Docker's: the range's own first and last addresses are
/// usable, the subnet's network and broadcast addresses never).
pub(crate) fn pool(subnet: (Ipv4Addr, u8), ip_range: &str) -> (u32, u32) {
    let first = u32::from(subnet.0) + 1;
    let last = (u32::from(subnet.0) | !mask(subnet.1)) - 1;
    match parse_cidr(ip_range) {
        Some(r) if contains(subnet, r.0) => {
            let lo = u32::from(r.0);
            let hi = lo | !mask(r.1);
            (lo.max(first), hi.min(last))
        }
        _ => (first, last),
    }
}

/// Checks a new container's network request (before anything is made): the network
/// exists, `--ip` is inside it, `container:CTR` names a container.
pub(crate) fn check(store: &Store, rec: &Record) -> Result<()> {
    let mode = &rec.host_config.network_mode;
    if let Some(other) = mode.strip_prefix("container:") {
        store
            .resolve(other)
            .map_err(|_| anyhow!("--network container:{other}: no such container"))?;
        return Ok(());
    }
    if !is_bridge_mode(mode) {
        return Ok(());
    }
    if crate::front::userns::rootless() {
        if !rootless_netns::is_user_network(mode) {
            return rootless::check(rec);
        }
        rootless_netns::check(rec)?;
    }
    if mode == rootless::PASTA {
        bail!("--network pasta: for rootless containers (root's get bridge networks)");
    }
    let nets = Networks::new(&store.root);
    let n = nets.get(mode).map_err(|e| anyhow!("--network: {e:#}"))?;
    if n.name == DEFAULT && !rec.net_request.aliases.is_empty() {
        bail!(
            "--network-alias: network-scoped aliases are supported only on user defined networks"
        );
    }
    let ip = &rec.net_request.ipv4_address;
    if !ip.is_empty() {
        let a: Ipv4Addr = ip
            .parse()
            .map_err(|_| anyhow!("--ip {ip}: not an IPv4 address"))?;
        if n.name == DEFAULT {
            bail!("--ip: user specified IP address is supported on user defined networks only");
        }
        let s = parse_cidr(&n.subnet).unwrap_or((Ipv4Addr::UNSPECIFIED, 32));
        if !contains(s, a) {
            bail!("--ip {ip}: not in network {}'s subnet {}", n.name, n.subnet);
        }
    }
    v6::check_ip6(&n, &rec.net_request.ipv6_address)?;
    // On a user network a link is a name only the linking container resolves, to
    // whichever container has that name on the network at the time (Docker's: it need
    // not exist yet); on the default bridge, a legacy link to a container that exists.
    for l in rec.host_config.links.iter().filter(|_| n.name == DEFAULT) {
        let target = l.split(':').next().unwrap_or("");
        store
            .resolve(target)
            .map_err(|_| anyhow!("--link {l}: no such container: {target}"))?;
    }
    Ok(())
}

/// The container's endpoint now (while it runs), for inspect, ps and port.
pub(crate) fn endpoint_of(store: &Store, id: &str) -> Option<Endpoint> {
    let nets = Networks::new(&store.root);
    nets.ipam()
        .endpoints
        .into_iter()
        .find(|e| e.container == id)
}

/// `/etc/hosts` extras from the record (`--add-host`), as lines.
pub(crate) fn extra_host_lines(extra: &[String]) -> String {
    extra
        .iter()
        .filter_map(|h| {
            let (name, ip) = h.split_once(':').or_else(|| h.split_once('='))?;
            Some(format!("{ip}\t{name}\n"))
        })
        .collect()
}

/// `--add-host NAME:IP`: checked at create.
pub(crate) fn check_add_host(h: &str) -> Result<()> {
    let Some((name, ip)) = h.split_once(':').or_else(|| h.split_once('=')) else {
        bail!("--add-host {h}: expected HOST:IP");
    };
    if !valid_host_name(name) {
        bail!("--add-host {h}: {name:?} is not a valid host name");
    }
    if ip.parse::<std::net::IpAddr>().is_err() && ip != "host-gateway" {
        bail!("--add-host {h}: invalid IP address {ip:?}");
    }
    if ip == "host-gateway" {
        bail!("--add-host {h}: host-gateway is not supported");
    }
    Ok(())
}

/// The container's /etc/resolv.conf: `--dns*`, else the host's without loopback
/// resolvers (unreachable from the container's namespace; Google's as Docker's fallback).
pub(crate) fn resolv_conf(
    host: &str,
    dns: &[String],
    search: &[String],
    opts: &[String],
) -> String {
    let mut servers: Vec<String> = dns.to_vec();
    let mut searches: Vec<String> = search.to_vec();
    let mut options: Vec<String> = opts.to_vec();
    let mut host_servers = Vec::new();
    for l in host.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.first().copied() {
            Some("nameserver") if f.len() > 1 => {
                let ip = f[1];
                let loopback = ip
                    .parse::<std::net::IpAddr>()
                    .map(|a| a.is_loopback())
                    .unwrap_or(false);
                if !loopback {
                    host_servers.push(ip.to_string());
                }
            }
            Some("search") if search.is_empty() => {
                searches.extend(f[1..].iter().map(|s| s.to_string()))
            }
            Some("options") if opts.is_empty() => {
                options.extend(f[1..].iter().map(|s| s.to_string()))
            }
            _ => {}
        }
    }
    if servers.is_empty() {
        servers = host_servers;
    }
    if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut out = String::new();
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_math() {
        let s = parse_cidr("172.17.0.0/16").unwrap();
        assert!(contains(s, Ipv4Addr::new(172, 17, 3, 4)));
        assert!(!contains(s, Ipv4Addr::new(172, 18, 0, 1)));
        assert!(overlaps(s, parse_cidr("172.17.5.0/24").unwrap()));
        assert!(!overlaps(s, parse_cidr("172.18.0.0/16").unwrap()));
        assert_eq!(
            parse_cidr("10.1.2.3/8").unwrap().0,
            Ipv4Addr::new(10, 0, 0, 0)
        );
        assert!(parse_cidr("10.0.0.0/33").is_none());
    }

    #[test]
    fn pool_keeps_to_the_range() {
        let s = parse_cidr("10.77.0.0/24").unwrap();
        let a = |x: u32| Ipv4Addr::from(x);
        let (lo, hi) = pool(s, "10.77.0.128/30");
        assert_eq!(
            (a(lo), a(hi)),
            (Ipv4Addr::new(10, 77, 0, 128), Ipv4Addr::new(10, 77, 0, 131))
        );
        let (lo, hi) = pool(s, "");
        assert_eq!(
            (a(lo), a(hi)),
            (Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 254))
        );
        let (lo, hi) = pool(s, "10.77.0.0/24");
        assert_eq!(
            (a(lo), a(hi)),
            (Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 254))
        );
    }

    #[test]
    fn resolv_drops_loopback() {
        let r = resolv_conf("nameserver 127.0.0.53\nsearch lan\n", &[], &[], &[]);
        assert_eq!(r, "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\n");
        let r = resolv_conf(
            "nameserver 10.0.0.1\n",
            &["1.1.1.1".into()],
            &[],
            &["ndots:2".into()],
        );
        assert_eq!(r, "nameserver 1.1.1.1\noptions ndots:2\n");
    }

    #[test]
    fn tags_differ_by_root() {
        let a = Networks::new(Path::new("/nonexistent/a"));
        let b = Networks::new(Path::new("/nonexistent/b"));
        assert_ne!(a.table(), b.table());
        let n = a.default_network();
        assert!(a.bridge_name(&n).len() <= 15);
    }
}
