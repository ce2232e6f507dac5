//! `network create|ls|inspect|rm|prune|exists`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use crate::cli::front::{
    ListArgs, NameArg, NamesFormatArgs, NetworkConnectArgs, NetworkCreateArgs,
    NetworkDisconnectArgs, NetworkRmArgs, PruneArgs,
};
use crate::front::containers::{short, Store};
use crate::front::format::Formatter;
use crate::front::network::{Connected, Network, Networks};
use crate::front::{Exit, Globals};

fn pairs(list: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                bail!("{flag} {l}: expected KEY=VALUE");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

pub(crate) fn create(g: &Globals, a: &NetworkCreateArgs) -> Result<i32> {
    let (ipv6, [subnet, subnet6], [gateway, gateway6]) =
        crate::front::network::v6::split_flags(a.ipv6, &a.subnet, &a.gateway)?;
    if a.ip_range.len() > 1 {
        bail!("--ip-range: one range per network");
    }
    if a.ip_range.iter().any(|r| r.contains(':')) {
        bail!("--ip-range: IPv4 ranges only");
    }
    if !a.ip_range.is_empty() && subnet.is_empty() {
        bail!("--ip-range: needs --subnet");
    }
    let options = pairs(&a.opt, "-o/--opt")?;
    let mut mtu = 0;
    for (k, v) in &options {
        match k.as_str() {
            "mtu" | "com.docker.network.driver.mtu" => {
                mtu = v.parse().map_err(|_| anyhow!("-o {k}={v}: not a number"))?
            }
            _ => bail!("-o {k}: unknown option for the bridge driver"),
        }
    }
    let nets = Networks::new(&g.root);
    if a.ignore && nets.get(&a.name).is_ok_and(|n| n.name == a.name) {
        println!("{}", nets.get(&a.name)?.id);
        return Ok(0);
    }
    let n = nets.create(Network {
        name: a.name.clone(),
        driver: a.driver.clone(),
        subnet,
        gateway,
        enable_ipv6: ipv6,
        subnet6,
        gateway6,
        ip_range: a.ip_range.first().cloned().unwrap_or_default(),
        internal: a.internal,
        labels: pairs(&a.label, "--label")?,
        options,
        mtu,
        ..Default::default()
    })?;
    println!("{}", n.id);
    Ok(0)
}

/// Docker's `network inspect` object.
fn to_json(nets: &Networks, store: &Store, n: &Network) -> Value {
    let ipam = nets.ipam();
    let subnet = if n.name == crate::front::network::DEFAULT {
        ipam.default_subnet.clone()
    } else {
        n.subnet.clone()
    };
    let mut containers = serde_json::Map::new();
    for e in ipam.endpoints.iter().filter(|e| e.network == n.name) {
        if !store.monitor_alive(&e.container) {
            continue;
        }
        containers.insert(
            e.container.clone(),
            json!({
                "Name": e.name,
                "EndpointID": e.veth,
                "MacAddress": e.mac,
                // Rootless (pasta): the container has the host's address, not one of ours.
                "IPv4Address": if e.ip.is_unspecified() { String::new() } else { format!("{}/{}", e.ip, e.prefix) },
                "IPv6Address": e.ip6.map(|(a, n, _)| format!("{a}/{n}")).unwrap_or_default(),
            }),
        );
    }
    let config = if subnet.is_empty() {
        json!([])
    } else {
        let gw = if n.gateway.is_empty() {
            crate::front::network::parse_cidr(&subnet)
                .map(|(a, _)| std::net::Ipv4Addr::from(u32::from(a) + 1).to_string())
                .unwrap_or_default()
        } else {
            n.gateway.clone()
        };
        if n.ip_range.is_empty() {
            json!([{"Subnet": subnet, "Gateway": gw}])
        } else {
            json!([{"Subnet": subnet, "IPRange": n.ip_range, "Gateway": gw}])
        }
    };
    let mut config = config;
    if let (Some(c), Some((s6, gw6))) = (
        config.as_array_mut(),
        crate::front::network::v6::addressing6(n),
    ) {
        c.push(json!({"Subnet": format!("{}/{}", s6.0, s6.1), "Gateway": gw6.to_string()}));
    }
    let mut options = n.options.clone();
    options.insert("com.docker.network.bridge.name".into(), nets.bridge_name(n));
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": if n.created.is_empty() { crate::front::containers::ZERO_TIME.to_string() } else { n.created.clone() },
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

/// Docker's list: bridge, host, none, then the user's networks.
fn all(nets: &Networks) -> Vec<Network> {
    let mut v = nets.list();
    for (name, driver) in [("host", "host"), ("none", "null")] {
        use sha2::Digest;
        let h = sha2::Sha256::digest(format!("berth-{name}-{}", nets.table()).as_bytes());
        v.insert(
            1.min(v.len()),
            Network {
                name: name.into(),
                id: h.iter().map(|b| format!("{b:02x}")).collect(),
                driver: driver.into(),
                ..Default::default()
            },
        );
    }
    v
}

pub(crate) fn inspect(g: &Globals, a: &NamesFormatArgs) -> Result<i32> {
    let nets = Networks::new(&g.root);
    let store = Store::new(g);
    let mut objs = Vec::new();
    let mut failed = false;
    for q in &a.names {
        match all(&nets)
            .into_iter()
            .find(|n| &n.name == q)
            .map(Ok)
            .unwrap_or_else(|| nets.get(q))
        {
            Ok(n) => objs.push(to_json(&nets, &store, &n)),
            Err(e) => {
                failed = true;
                crate::logging::error(&format!("{e:#}"));
            }
        }
    }
    match &a.format {
        Some(f) => print!(
            "{}",
            Formatter::new(Some(f), "")?.render(&objs, &json!({}))?
        ),
        None => println!(
            "{}",
            crate::front::format::go_json_indent(&Value::Array(objs), "    ", true)
        ),
    }
    if failed {
        return Err(Exit {
            code: 1,
            msg: String::new(),
        }
        .into());
    }
    Ok(0)
}

pub(crate) fn ls(g: &Globals, a: &ListArgs) -> Result<i32> {
    let nets = Networks::new(&g.root);
    let mut names: Vec<String> = Vec::new();
    let mut drivers: Vec<String> = Vec::new();
    for f in &a.filter {
        match f.split_once('=') {
            Some(("name", v)) => names.push(v.to_string()),
            Some(("driver", v)) => drivers.push(v.to_string()),
            _ => bail!("--filter {f}: expected name=... or driver=..."),
        }
    }
    let rows: Vec<Value> = all(&nets)
        .into_iter()
        .filter(|n| names.is_empty() || names.iter().any(|x| n.name.contains(x.as_str())))
        .filter(|n| drivers.is_empty() || drivers.contains(&n.driver))
        .map(|n| {
            json!({
                "ID": if a.no_trunc { n.id.clone() } else { short(&n.id).to_string() },
                "Name": n.name,
                "Driver": n.driver,
                "Scope": "local",
                "Internal": n.internal,
                "IPv6": false,
                "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            })
        })
        .collect();
    if a.quiet && a.format.is_none() {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let fmt = Formatter::new(
        a.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    )?;
    let headers = json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "Internal": "INTERNAL", "IPv6": "IPV6", "Labels": "LABELS"});
    print!("{}", fmt.render(&rows, &headers)?);
    Ok(0)
}

pub(crate) fn rm(g: &Globals, a: &NetworkRmArgs) -> Result<i32> {
    let nets = Networks::new(&g.root);
    let store = Store::new(g);
    let mut failed = false;
    for q in &a.names {
        if matches!(q.as_str(), "host" | "none") {
            failed = true;
            crate::logging::error(&format!(
                "{q} is a pre-defined network and cannot be removed"
            ));
            continue;
        }
        match nets.remove(&store, q) {
            Ok(_) => println!("{q}"),
            Err(e) if a.force && e.to_string().ends_with("not found") => {}
            Err(e) => {
                failed = true;
                crate::logging::error(&format!("{e:#}"));
            }
        }
    }
    if failed {
        return Err(Exit {
            code: 1,
            msg: String::new(),
        }
        .into());
    }
    Ok(0)
}

pub(crate) fn prune(g: &Globals, a: &PruneArgs) -> Result<i32> {
    if !a.filter.is_empty() {
        bail!("--filter: not available yet for network prune");
    }
    if !a.force {
        use std::io::BufRead;
        eprint!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    let nets = Networks::new(&g.root);
    let store = Store::new(g);
    let all = store.list();
    let mut removed = Vec::new();
    for n in nets.list() {
        if n.name == crate::front::network::DEFAULT
            || all
                .iter()
                .any(|c| crate::front::network::uses(&c.rec, &n.name))
        {
            continue;
        }
        if nets.remove(&store, &n.name).is_ok() {
            removed.push(n.name);
        }
    }
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(0)
}

pub(crate) fn exists(g: &Globals, a: &NameArg) -> Result<i32> {
    let nets = Networks::new(&g.root);
    if all(&nets).iter().any(|n| n.name == a.name) || nets.get(&a.name).is_ok() {
        return Ok(0);
    }
    Err(Exit {
        code: 1,
        msg: String::new(),
    }
    .into())
}

/// `network connect [--alias A] [--ip IP] NET CTR`: recorded in the container (its next
/// starts connect it too) and, while it runs, connected now.
pub(crate) fn connect(g: &Globals, a: &NetworkConnectArgs) -> Result<i32> {
    let store = Store::new(g);
    let nets = Networks::new(&g.root);
    let id = store.get(&a.container)?.rec.id;
    let _lock = store.lock(&id)?;
    let c = store.load(&id)?;
    let n = nets.get(&a.network)?;
    let mode = c.rec.host_config.network_mode.clone();
    if !crate::front::network::is_bridge_mode(&mode) {
        bail!(
            "container {} cannot be connected to a network: its network mode is {mode}",
            c.rec.name
        );
    }
    // Docker's: legacy links are made by `run` only; on a user network a link is an alias
    // the container alone resolves, followed by name (as `run --network NET --link`).
    if !a.link.is_empty() && n.name == crate::front::network::DEFAULT {
        bail!("--link: links are only supported for user-defined networks");
    }
    for l in &a.link {
        crate::front::network::check_link(l)?;
        let target = l.split_once(':').map_or(l.as_str(), |(t, _)| t);
        let t = store
            .get(target)
            .map_err(|_| anyhow!("--link {l}: no such container: {target}"))?;
        if !store.derive(&t).is_active() {
            bail!("--link {l}: cannot link to a non running container: {target}");
        }
    }
    // Rootless, the user networks share one network namespace; the default network is
    // pasta's, one namespace per container: the two do not mix.
    if g.rootless && !crate::front::network::on_shared_netns(&c.rec) {
        bail!(
            "network connect: rootless, container {} is on the default network (pasta): only a container on a user network (--network NAME) can be connected to another",
            c.rec.name
        );
    }
    if g.rootless && n.name == crate::front::network::DEFAULT {
        bail!("network connect: rootless, the default network is pasta's, one per container: connect to a user network");
    }
    if crate::front::network::uses(&c.rec, &n.name) {
        bail!(
            "container {} is already connected to network {}",
            c.rec.name,
            n.name
        );
    }
    if c.rec.net_request.connected.len() >= 9 {
        bail!("container {}: too many networks", c.rec.name);
    }
    if let Some(ip) = &a.ip {
        let s = crate::front::network::parse_cidr(&n.subnet);
        let ok = ip
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|x| s.is_some_and(|s| crate::front::network::contains(s, x)));
        if !ok {
            bail!(
                "--ip {ip}: not an address of network {} ({})",
                n.name,
                n.subnet
            );
        }
    }
    if let Some(ip6) = &a.ip6 {
        crate::front::network::v6::check_ip6(&n, ip6)?;
    }
    let mut rec = c.rec.clone();
    rec.net_request.connected.push(Connected {
        network: n.name.clone(),
        aliases: a.alias.clone(),
        links: a.link.clone(),
        ipv4_address: a.ip.clone().unwrap_or_default(),
        ipv6_address: a.ip6.clone().unwrap_or_default(),
    });
    let k = rec.net_request.connected.len();
    let running = store.derive(&c).is_active() && c.state.pid > 0;
    let _settle = crate::front::network::settle_on_drop(&store, g.rootless && running);
    if running && g.rootless && !crate::front::network::join_shared_netns(&store)? {
        bail!(
            "network connect: the rootless network namespace of running container {} is gone",
            c.rec.name
        );
    }
    if running {
        crate::front::network::connect_running(
            &store,
            &rec,
            c.state.pid,
            &n,
            k,
            (
                a.ip.as_deref().unwrap_or(""),
                a.ip6.as_deref().unwrap_or(""),
            ),
            (&a.alias, &a.link),
        )?;
    }
    store.save_record(&rec)?;
    Ok(0)
}

/// `network disconnect NET CTR`.
pub(crate) fn disconnect(g: &Globals, a: &NetworkDisconnectArgs) -> Result<i32> {
    let store = Store::new(g);
    let nets = Networks::new(&g.root);
    let id = store.get(&a.container)?.rec.id;
    let _lock = store.lock(&id)?;
    let c = store.load(&id)?;
    let n = nets.get(&a.network)?;
    if c.rec.host_config.network_mode == n.name {
        bail!(
            "container {}: {} is its main network (set at create) and cannot be disconnected",
            c.rec.name,
            n.name
        );
    }
    if !c
        .rec
        .net_request
        .connected
        .iter()
        .any(|x| x.network == n.name)
    {
        bail!(
            "container {} is not connected to network {}",
            c.rec.name,
            n.name
        );
    }
    let running = store.derive(&c).is_active();
    let _settle = crate::front::network::settle_on_drop(&store, g.rootless && running);
    // Rootless, the namespace may be gone with the container (nothing left to undo).
    if running && (!g.rootless || crate::front::network::join_shared_netns(&store)?) {
        crate::front::network::disconnect_running(&store, &id, &n.name)?;
    }
    let mut rec = c.rec.clone();
    rec.net_request.connected.retain(|x| x.network != n.name);
    store.save_record(&rec)?;
    Ok(0)
}
