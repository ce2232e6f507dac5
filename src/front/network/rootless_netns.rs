//! Rootless user-defined networks: one network namespace shared by the user's containers
//! on user networks (Podman's rootless-netns), in which the rootful code runs unchanged:
//! a bridge per network, a veth pair per container, IPAM and hosts files (names, short
//! ids and aliases, kept current as containers come and go), and berth's nftables table
//! (masquerade, DNAT of published ports), all in a namespace that is the user's own.
//!
//! - The namespace is made by the first container that needs it (its command, before the
//!   container exists) and held by a process that only waits to be killed (`berth-netns`,
//!   reparented as an orphan). Rootless, a bind mount can pin it only in a mount namespace
//!   no later command could see without a pause process: the holder is the pin, recorded
//!   (pid and start time) in RUNROOT/rootless-netns/state.json.
//! - Its owner is the user namespace of that first command; every later command and
//!   monitor of a container on a user network joins that user namespace (the user owns it,
//!   so joining needs no privilege) instead of making its own, so the monitor holds
//!   CAP_NET_ADMIN over both the shared namespace and the container's (nested in it).
//! - One pasta connects it to the host: outbound traffic leaves through the host's
//!   sockets (masqueraded by the rootful rules from the bridges to pasta's tap).
//!   Published ports are forwarded by each container's monitor (see rootless_ports), so
//!   the namespace needs no DNAT and pasta no port of its own.
//! - Torn down (holder and pasta killed: the namespace, its bridges and rules go with
//!   them) when the last container using it stops, by its monitor, or by the next command
//!   that reconciles a killed monitor. Everything under the networks lock.

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::rootless::{check_tun, kill_helper, pasta_error, pasta_path, Helper, PASTA};
use super::setup::Attached;
use super::{is_bridge_mode, Networks, DEFAULT};
use crate::front::containers::{Record, Store};

/// How long pasta may take to start.
const WITHIN: Duration = Duration::from_secs(30);

/// What runs for the shared namespace.
#[derive(Serialize, Deserialize, Debug, Default)]
struct Stack {
    holder: Option<Helper>,
    pasta: Option<Helper>,
    /// Commands and monitors between their claim and their endpoint's record (or their
    /// end): not torn down under them.
    #[serde(default)]
    pending: Vec<Helper>,
}

/// A network mode naming a user-defined network.
pub(super) fn is_user_network(mode: &str) -> bool {
    is_bridge_mode(mode) && mode != DEFAULT && mode != PASTA
}

/// Whether the container is rootless on a user network (in the shared namespace).
pub(crate) fn on_shared_netns(rec: &Record) -> bool {
    is_user_network(&rec.host_config.network_mode) && crate::front::userns::rootless()
}

/// `run`/`create` of a rootless container on a user network: what it cannot have (the
/// rest is checked as rootful).
pub(super) fn check(rec: &Record) -> Result<()> {
    let published = rec.host_config.port_bindings.keys().chain(
        rec.config
            .exposed_ports
            .keys()
            .filter(|_| rec.host_config.publish_all_ports),
    );
    for k in published {
        if k.ends_with("/sctp") {
            bail!("--publish {k}: rootless containers on user networks publish tcp and udp ports only (sctp needs root)");
        }
    }
    Ok(())
}

fn dir(store: &Store) -> PathBuf {
    store.runroot.join("rootless-netns")
}

fn load(store: &Store) -> Stack {
    fs::read(dir(store).join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save(store: &Store, st: &Stack) -> Result<()> {
    let d = dir(store);
    fs::create_dir_all(&d)
        .map_err(|e| anyhow!("{}: {}", d.display(), crate::error::errno_text(&e)))?;
    crate::front::containers::write_atomic(&d.join("state.json"), &crate::sys::json::to_vec(st)?)
}

fn alive(h: &Helper) -> bool {
    h.pid > 0 && crate::state::process_start_time(h.pid) == Some(h.start_time)
}

fn helper(pid: i32) -> Helper {
    Helper {
        pid,
        start_time: crate::state::process_start_time(pid).unwrap_or(0),
    }
}

/// The holder of a running stack (holder and pasta alive).
fn running(st: &Stack) -> Option<Helper> {
    let h = st.holder.as_ref().filter(|h| alive(h))?;
    st.pasta.as_ref().filter(|p| alive(p))?;
    Some(h.clone())
}

/// Whether this process is in the user namespace that owns the holder's.
fn same_userns(h: &Helper) -> bool {
    let ours = fs::read_link("/proc/self/ns/user").ok();
    ours.is_some() && ours == fs::read_link(format!("/proc/{}/ns/user", h.pid)).ok()
}

/// The command of a container on a user network, rootless and single-threaded: moves
/// into the user namespace of the shared network namespace, making both if none runs.
pub(crate) fn enter(store: &Store, network: &str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let nets = Networks::new(&store.root);
    if nets.get(network).is_err() {
        // Nothing to share: `run`/`start` says the network is missing.
        return crate::front::userns::enter();
    }
    let _lock = nets.lock()?;
    let st = load(store);
    if let Some(h) = running(&st) {
        join_user_ns_of(h.pid)?;
        return claim(store, st);
    }
    crate::front::userns::enter()?;
    let st = make(store)?;
    claim(store, st)
}

/// Moves this (single-threaded) process into the user namespace of the holder `pid`,
/// with a mount namespace of its own there.
fn join_user_ns_of(pid: i32) -> Result<()> {
    let ns = File::open(format!("/proc/{pid}/ns/user")).map_err(|e| {
        anyhow!(
            "the rootless network namespace's user namespace: {}",
            crate::error::errno_text(&e)
        )
    })?;
    crate::sys::userns::join_user_and_unshare_mount(ns.as_fd())
        .map_err(|e| anyhow!("joining the rootless network namespace: {e}"))
}

/// `network connect`/`disconnect` of a running rootless container: this command, still
/// single-threaded, moves into the user namespace that owns the shared network namespace
/// (and claims it until [`settle`], so that it is not torn down under the change).
/// False when the namespace does not run (no container of a user network runs).
pub(crate) fn join(store: &Store) -> Result<bool> {
    if nix::unistd::geteuid().is_root() {
        return Ok(true);
    }
    let nets = Networks::new(&store.root);
    let _lock = nets.lock()?;
    let st = load(store);
    let Some(h) = running(&st) else {
        return Ok(false);
    };
    join_user_ns_of(h.pid)?;
    claim(store, st)?;
    Ok(true)
}

/// Runs `f` in the shared network namespace (this process in its owner, see [`join`]).
pub(super) fn in_shared<T: Send>(store: &Store, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let h = running(&load(store))
        .filter(same_userns)
        .ok_or_else(|| anyhow!("the rootless network namespace is not running"))?;
    in_netns(&h, f)
}

/// This process uses the namespace until [`settle`] (or its end): recorded.
fn claim(store: &Store, mut st: Stack) -> Result<()> {
    st.pending.retain(alive);
    st.pending.push(helper(std::process::id() as i32));
    save(store, &st)
}

/// Calls [`settle`] when dropped, if `on`: held by the commands that may [`enter`].
pub(crate) struct SettleOnDrop<'a> {
    store: &'a Store,
    on: bool,
}

pub(crate) fn settle_on_drop(store: &Store, on: bool) -> SettleOnDrop<'_> {
    SettleOnDrop { store, on }
}

impl Drop for SettleOnDrop<'_> {
    fn drop(&mut self) {
        if self.on {
            settle(self.store);
        }
    }
}

/// The command that [`enter`]ed is done with the namespace (its container's monitor has
/// its own claim, or the command failed): its claim dropped, the namespace ended if no
/// one uses it.
fn settle(store: &Store) {
    let nets = Networks::new(&store.root);
    {
        let Ok(_lock) = nets.lock() else {
            return;
        };
        let mut st = load(store);
        if st.holder.is_none() {
            return;
        }
        let me = helper(std::process::id() as i32);
        st.pending.retain(|p| *p != me && alive(p));
        let _ = save(store, &st);
    }
    let _ = teardown_if_unused(&nets, store);
}

/// Makes the shared namespace and its pasta (the lock held, root of a user namespace).
fn make(store: &Store) -> Result<Stack> {
    stop(store, &load(store));
    let pasta = pasta_path()?;
    check_tun()?;
    let d = dir(store);
    fs::create_dir_all(&d)
        .map_err(|e| anyhow!("{}: {}", d.display(), crate::error::errno_text(&e)))?;
    let hpid = crate::sys::spawn_netns_holder()
        .map_err(|e| anyhow!("making the rootless network namespace: {}", e.desc()))?;
    let holder = helper(hpid);
    let r = start_pasta(&pasta, &d, hpid);
    let p = match r {
        Ok(p) => p,
        Err(e) => {
            kill_helper(&holder);
            return Err(e);
        }
    };
    let st = Stack {
        holder: Some(holder),
        pasta: Some(p),
        pending: Vec::new(),
    };
    save(store, &st)?;
    Ok(st)
}

/// Starts pasta for the holder's namespace; it puts itself in the background once the
/// namespace is configured (its pid in the pid file), and is no one's child after.
fn start_pasta(pasta: &std::path::Path, d: &std::path::Path, holder: i32) -> Result<Helper> {
    let ns = File::open(format!("/proc/{holder}/ns/net")).map_err(|e| {
        anyhow!(
            "the rootless network namespace: {}",
            crate::error::errno_text(&e)
        )
    })?;
    let mut nl = crate::sys::netlink::Netlink::open_in(ns.as_fd())
        .map_err(|e| anyhow!("the rootless network namespace: netlink: {}", e.desc()))?;
    if let Ok(Some(lo)) = nl.index("lo") {
        nl.set_up(lo, None)
            .map_err(|e| anyhow!("the rootless network namespace: lo: {}", e.desc()))?;
    }
    let pidfile = d.join("pasta.pid");
    let err_path = d.join("pasta.err");
    let _ = fs::remove_file(&pidfile);
    let err = File::create(&err_path)
        .map_err(|e| anyhow!("{}: {}", err_path.display(), crate::error::errno_text(&e)))?;
    let mut cmd = Command::new(pasta);
    // Outbound only: published ports are the monitors' (see rootless_ports); pasta is in
    // the namespace's owner already (no --userns).
    cmd.args([
        "--config-net",
        "--quiet",
        "-I",
        "tap0",
        "-t",
        "none",
        "-u",
        "none",
    ])
    .args(["-T", "none", "-U", "none", "--runas", "0:0"])
    .arg("-P")
    .arg(&pidfile)
    .args(["--netns", "/proc/self/fd/3"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(err)
    .env_clear()
    .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin");
    let (_child, pidfd) = crate::sys::spawn_tied(&mut cmd, &[ns.as_fd()])
        .map_err(|e| anyhow!("{}: {}", pasta.display(), crate::error::errno_text(&e)))?;
    let deadline = Instant::now() + WITHIN;
    let status = loop {
        match nix::sys::wait::waitid(
            nix::sys::wait::Id::PIDFd(pidfd.as_fd()),
            nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOHANG,
        ) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {}
            Ok(s) => break s,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("pasta: {}", e.desc()),
        }
        if Instant::now() > deadline {
            let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            bail!("pasta: not ready after {}s", WITHIN.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let pid: Option<i32> = fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    match (status, pid) {
        (nix::sys::wait::WaitStatus::Exited(_, 0), Some(p)) => Ok(helper(p)),
        _ => {
            let e = pasta_error(&err_path);
            if e.contains("External interface not usable") {
                bail!("pasta: {e}: rootless networking needs a default route on the host");
            }
            bail!("pasta: {e}")
        }
    }
}

/// Kills what runs for the namespace (it goes with its last holder) and forgets it.
fn stop(store: &Store, st: &Stack) {
    for h in st.pasta.iter().chain(&st.holder) {
        kill_helper(h);
    }
    let _ = fs::remove_dir_all(dir(store));
}

/// Runs `f` on a thread of its own that has joined the holder's network namespace: the
/// rootful code then makes its links, sysctls, rules and sockets there (a thread's
/// network namespace is its own, and so are the netlink sockets it opens).
fn in_netns<T: Send>(h: &Helper, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let ns = File::open(format!("/proc/{}/ns/net", h.pid)).map_err(|e| {
        anyhow!(
            "the rootless network namespace: {}",
            crate::error::errno_text(&e)
        )
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| anyhow!("joining the rootless network namespace: {}", e.desc()))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow!("the rootless network namespace: a thread failed")))
    })
}

/// Turns on IPv4 forwarding (and IPv6's, `v6`) in the shared namespace, whose thread
/// this is.
pub(super) fn forwarding(v6: bool) -> Result<()> {
    let mut paths = vec!["/proc/sys/net/ipv4/ip_forward"];
    if v6 {
        paths.push("/proc/sys/net/ipv6/conf/all/forwarding");
    }
    for p in paths {
        fs::write(p, "1").map_err(|e| {
            anyhow!(
                "the rootless network namespace: {p}: {}",
                crate::error::errno_text(&e)
            )
        })?;
    }
    Ok(())
}

/// The monitor of a rootless container on a user network (in the namespace's owner):
/// connects it (init `pid`) and publishes its ports.
pub(super) fn attach(store: &Store, rec: &Record, pid: i32) -> Result<Attached> {
    check(rec)?;
    let nets = Networks::new(&store.root);
    let me = helper(std::process::id() as i32);
    let holder = {
        let _lock = nets.lock()?;
        let mut st = load(store);
        let h = match running(&st) {
            Some(h) if same_userns(&h) => h,
            Some(_) => bail!("the rootless network namespace was made by a command that ran alongside this one: start the container again"),
            None => {
                st = make(store)?;
                st.holder.clone().ok_or_else(|| anyhow!("no holder"))?
            }
        };
        st.pending.retain(alive);
        st.pending.push(me.clone());
        save(store, &st)?;
        h
    };
    let r = attach_in(store, rec, pid, &holder);
    {
        let _lock = nets.lock()?;
        let mut st = load(store);
        if st.holder.is_some() {
            st.pending.retain(|p| *p != me && alive(p));
            save(store, &st)?;
        }
    }
    if r.is_err() {
        let _ = teardown_if_unused(&nets, store);
    }
    r
}

fn attach_in(store: &Store, rec: &Record, pid: i32, h: &Helper) -> Result<Attached> {
    let nets = Networks::new(&store.root);
    let main = nets
        .get(&rec.host_config.network_mode)
        .map_err(|e| anyhow!("--network: {e:#}"))?;
    // The host ports first: bound and held (a port in use fails before anything is made);
    // on a dual-stack network, `-p PORT` binds `[::]` too, as rootful.
    let mut listeners = Vec::new();
    let mut bindings = Vec::new();
    for (k, hp) in super::setup::wanted_ports(rec) {
        for (fd, b) in super::bind::publish_rootless(&k, &hp, main.enable_ipv6)? {
            listeners.extend(fd.map(|fd| (fd, b.clone())));
            bindings.push(b);
        }
    }
    let v6 = main.enable_ipv6
        || rec
            .net_request
            .connected
            .iter()
            .any(|c| nets.get(&c.network).is_ok_and(|n| n.enable_ipv6));
    let mut attached = in_netns(h, || {
        // Routing between the bridges and pasta's tap (the namespace is the user's: said
        // by no warning).
        forwarding(v6)?;
        super::setup::attach_bridge(store, rec, pid, Vec::new())
    })?;
    let forwarded = (|| {
        let (ip, ip6) = {
            let _lock = nets.lock()?;
            let mut ipam = nets.ipam();
            let e = ipam
                .endpoints
                .iter_mut()
                .find(|e| e.container == rec.id && e.helper.is_none())
                .ok_or_else(|| anyhow!("the container's endpoint is not recorded"))?;
            e.ports = bindings;
            let ip = (e.ip, e.ip6.map(|(a, _, _)| a));
            nets.save_ipam(&ipam)?;
            ip
        };
        // IPv6 host sockets to the container's IPv6 address when it has one, else (and
        // IPv4 ones) to its IPv4 address: rootful's relay and DNAT.
        let listeners = listeners
            .into_iter()
            .map(|(fd, b)| {
                let to: std::net::IpAddr = match ip6 {
                    Some(a) if b.host_ip.is_ipv6() => a.into(),
                    _ => ip.into(),
                };
                (fd, std::net::SocketAddr::new(to, b.container_port))
            })
            .collect();
        let ns = File::open(format!("/proc/{}/ns/net", h.pid)).map_err(|e| {
            anyhow!(
                "the rootless network namespace: {}",
                crate::error::errno_text(&e)
            )
        })?;
        super::rootless_ports::start(&ns, listeners)
    })();
    match forwarded {
        Ok(f) => {
            attached._forward = Some(f);
            Ok(attached)
        }
        Err(e) => {
            drop(attached);
            let _ = in_netns(h, || super::setup::detach_bridge(&nets, store, &rec.id));
            Err(e)
        }
    }
}

/// The container has ended (or its monitor was killed): its endpoint released (in the
/// namespace when this process can reach it, else in the record and hosts files: its veth
/// went with its own namespace), and the namespace torn down when no one uses it.
pub(super) fn detach(nets: &Networks, store: &Store, id: &str) -> Result<()> {
    super::rootless::detach(nets, store, id)?;
    let shared = |e: &super::Endpoint| e.helper.is_none();
    let ipam = nets.ipam();
    let mine = ipam
        .endpoints
        .iter()
        .any(|e| shared(e) && (e.container == id || !store.monitor_alive(&e.container)));
    let r = if mine {
        match running(&load(store)).filter(same_userns) {
            Some(h) => in_netns(&h, || super::setup::detach_bridge(nets, store, id)),
            None => {
                let _lock = nets.lock()?;
                let ipam = nets.ipam();
                super::setup::forget(nets, ipam, |e| {
                    shared(e) && (e.container == id || !store.monitor_alive(&e.container))
                })
            }
        }
    } else {
        Ok(())
    };
    let t = teardown_if_unused(nets, store);
    r.and(t)
}

/// Ends the shared namespace when no running container and no starting one uses it.
fn teardown_if_unused(nets: &Networks, store: &Store) -> Result<()> {
    let _lock = nets.lock()?;
    let st = load(store);
    if st.holder.is_none() && st.pasta.is_none() {
        return Ok(());
    }
    let mut ipam = nets.ipam();
    let used = ipam
        .endpoints
        .iter()
        .any(|e| e.helper.is_none() && store.monitor_alive(&e.container));
    if used || st.pending.iter().any(alive) {
        return Ok(());
    }
    stop(store, &st);
    let before = ipam.endpoints.len();
    ipam.endpoints.retain(|e| e.helper.is_some());
    if ipam.endpoints.len() != before {
        nets.save_ipam(&ipam)
            .context("the rootless network namespace's record")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_networks_are_shared() {
        for m in ["appnet", "a1b2c3"] {
            assert!(is_user_network(m), "{m}");
        }
        for m in [
            "bridge",
            "pasta",
            "none",
            "host",
            "default",
            "container:x",
            "",
        ] {
            assert!(!is_user_network(m), "{m}");
        }
    }
}
