//! Rootless networking through pasta (passt's user-mode stack, `apt install passt`).
//!
//! A rootless container on the default network (`--network bridge`, `-p`, `-P`) gets, in
//! the network namespace the runtime made for it, a tap interface `eth0` that pasta (a
//! process of the user's, no privilege) connects to the host's network: the container
//! has the host's address and gateway, its connections leave from the host's sockets,
//! the gateway's address reaches the host itself (pasta maps it to the host's loopback),
//! and each published port is a socket pasta binds on the host and splices into the
//! container. pasta is spawned by the container's monitor between the runtime's create
//! and start (pasta joins the container's user and network namespaces by its init's
//! pid), dies with the monitor (parent-death signal) and is killed when the container
//! ends; a command reconciling a killed monitor kills a pasta still recorded.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use super::ports::{Binding, HostPort};
use super::{Endpoint, Ipam, Networks};
use crate::front::containers::{Record, Store};

/// `--network pasta`, Podman's name for what rootless `bridge` is here.
pub(crate) const PASTA: &str = "pasta";

/// How long pasta may take to set the namespace up (a busy 2-core machine).
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The helper as recorded in the IPAM record: enough to kill it after its monitor died.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Helper {
    pub(crate) pid: i32,
    pub(crate) start_time: u64,
}

/// A running pasta, the monitor's child: killed (and reaped) when dropped.
pub(crate) struct Pasta {
    pidfd: OwnedFd,
}

impl Drop for Pasta {
    fn drop(&mut self) {
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        // Already reaped by the monitor's SIGCHLD loop if it died first: ECHILD.
        let _ = nix::sys::wait::waitid(
            nix::sys::wait::Id::PIDFd(self.pidfd.as_fd()),
            nix::sys::wait::WaitPidFlag::WEXITED,
        );
    }
}

/// `run`/`create` of a rootless container: what pasta can give.
pub(crate) fn check(rec: &Record) -> Result<()> {
    if !rec.host_config.links.is_empty() {
        bail!(
            "--link: needs root (rootless containers reach each other by name on a user network)"
        );
    }
    if let Some(k) = rec
        .host_config
        .port_bindings
        .keys()
        .chain(
            rec.config
                .exposed_ports
                .keys()
                .filter(|_| rec.host_config.publish_all_ports),
        )
        .find(|k| k.ends_with("/sctp"))
    {
        bail!("--publish {k}: rootless (pasta) publishes tcp and udp ports only");
    }
    if !rec.net_request.ipv4_address.is_empty() {
        bail!("--ip: user specified IP address is supported on user defined networks only");
    }
    if !rec.net_request.ipv6_address.is_empty() {
        bail!("--ip6: user specified IP address is supported on user defined networks only");
    }
    Ok(())
}

/// The pasta binary: PATH, then where distributions put it.
pub(super) fn pasta_path() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/bin".into()])
        .map(|d| d.join("pasta"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("rootless networking needs pasta, not found in PATH (Debian, Ubuntu: apt install passt)")
        })
}

/// pasta opens /dev/net/tun as the user (root of the container's namespace is the user):
/// said in one line rather than pasta's.
pub(super) fn check_tun() -> Result<()> {
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => Ok(()),
        Err(e) => bail!(
            "/dev/net/tun: {}: rootless networking needs it usable by the user (mode 0666, as most distributions ship it)",
            crate::error::errno_text(&e)
        ),
    }
}

/// Binds the host port of each published port (a free one of a range, the kernel's
/// choice when none is given), so that a port in use fails the start naming it. The TCP
/// ones stay bound: the monitor forwards them to the container's loopback (see
/// rootless_ports: blocking splice with a large pipe, measurably faster than pasta's own
/// splice loop); so do UDP ones on an IPv6 address (pasta's `-u` takes IPv4 addresses
/// here); the other UDP ones are released for pasta to bind just after.
fn choose_ports(
    wanted: &[(String, HostPort)],
) -> Result<(Vec<super::rootless_ports::Listener>, Vec<Binding>)> {
    // Held until all are chosen: two random ports never come out the same.
    let mut held = Vec::new();
    let mut forwarded = Vec::new();
    let mut out = Vec::new();
    for (k, h) in wanted {
        for (fd, b) in super::bind::publish_rootless(k, h, false)? {
            match fd {
                Some(fd) if by_monitor(&b) => {
                    let dst = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), b.container_port);
                    forwarded.push((fd, dst))
                }
                fd => held.extend(fd),
            }
            out.push(b);
        }
    }
    Ok((forwarded, out))
}

/// Whether the monitor's forwarder serves the published port (else pasta does).
fn by_monitor(b: &Binding) -> bool {
    b.proto == "tcp" || b.host_ip.is_ipv6()
}

/// pasta's `-t`/`-u` specs for the bindings of `proto` (`none`: nothing forwarded, not
/// pasta's default of every port the container happens to bind).
fn port_specs(bindings: &[Binding], proto: &str) -> Vec<String> {
    let v: Vec<String> = bindings
        .iter()
        .filter(|b| b.proto == proto)
        .map(|b| {
            if b.host_ip.is_unspecified() {
                format!("{}:{}", b.host_port, b.container_port)
            } else {
                format!("{}/{}:{}", b.host_ip, b.host_port, b.container_port)
            }
        })
        .collect();
    if v.is_empty() {
        vec!["none".into()]
    } else {
        v
    }
}

/// The arguments pasta gets for the container whose init is `pid`.
fn pasta_args(rec: &Record, bindings: &[Binding], pidfile: &Path, pid: i32) -> Vec<String> {
    let mut a: Vec<String> = ["--config-net", "--foreground", "--quiet", "-I", "eth0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for s in port_specs(bindings, "tcp") {
        a.extend(["-t".into(), s]);
    }
    for s in port_specs(bindings, "udp") {
        a.extend(["-u".into(), s]);
    }
    if nix::unistd::geteuid().is_root() {
        // Root of berth's user namespace (the only root that may open the namespaces of
        // the container's init before it executes), not pasta's default of nobody.
        a.extend(["--runas".into(), "0:0".into()]);
    }
    // The container's own loopback stays its own: no host port is forwarded into it.
    a.extend(["-T", "none", "-U", "none"].iter().map(|s| s.to_string()));
    if !rec.net_request.mac_address.is_empty() {
        a.extend(["--ns-mac-addr".into(), rec.net_request.mac_address.clone()]);
    }
    a.extend(["-P".into(), pidfile.display().to_string()]);
    // The fds spawn_tied gives it (see attach); `pid` names the container in `ps`.
    let _ = pid;
    a.extend(
        ["--userns", "/proc/self/fd/3", "--netns", "/proc/self/fd/4"]
            .iter()
            .map(|s| s.to_string()),
    );
    a
}

/// What pasta said before it failed: its last line that is not noise.
pub(super) fn pasta_error(err_path: &Path) -> String {
    let mut s = String::new();
    let _ = fs::File::open(err_path).and_then(|mut f| f.read_to_string(&mut s));
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.contains("syslog") && !l.contains("IPv6"))
        .unwrap_or("no message")
        .to_string()
}

/// Connects the rootless container (init `pid`) to the host through pasta and records
/// its published ports. Nothing is left behind on failure.
pub(crate) fn attach(
    store: &Store,
    rec: &Record,
    pid: i32,
    wanted: &[(String, HostPort)],
) -> Result<(Pasta, super::rootless_ports::Forwarder)> {
    check(rec)?;
    let nets = Networks::new(&store.root);
    let _lock = nets.lock()?;
    let mut ipam = nets.ipam();
    sweep(store, &mut ipam);
    ipam.endpoints.retain(|e| e.container != rec.id);
    let pasta = pasta_path()?;
    check_tun()?;
    let (tcp, bindings) = choose_ports(wanted)?;
    let udp: Vec<Binding> = bindings
        .iter()
        .filter(|b| b.proto == "udp" && !by_monitor(b))
        .cloned()
        .collect();
    let run_dir = store.run_dir(&rec.id);
    let pidfile = run_dir.join("pasta.pid");
    let err_path = run_dir.join("pasta.err");
    let _ = fs::remove_file(&pidfile);
    let err = fs::File::create(&err_path)
        .map_err(|e| anyhow!("{}: {}", err_path.display(), crate::error::errno_text(&e)))?;
    // pasta drops CAP_SYS_PTRACE before it opens the namespaces, and the init is not
    // dumpable until it executes: opened here, pasta gets them as fds 3 and 4.
    let ns = |t: &str| {
        fs::File::open(format!("/proc/{pid}/ns/{t}")).map_err(|e| {
            anyhow!(
                "the container's {t} namespace: {}",
                crate::error::errno_text(&e)
            )
        })
    };
    let (userns, netns) = (ns("user")?, ns("net")?);
    let mut cmd = Command::new(&pasta);
    cmd.args(pasta_args(rec, &udp, &pidfile, pid))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin");
    let (child, pidfd) = crate::sys::spawn_tied(&mut cmd, &[userns.as_fd(), netns.as_fd()])
        .map_err(|e| anyhow!("{}: {}", pasta.display(), crate::error::errno_text(&e)))?;
    let helper = Pasta { pidfd };
    let hpid = child.id() as i32;
    // Ready once it has written its pid file (pasta does so when the namespace is
    // configured and the ports are bound, just before it serves).
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if fs::read_to_string(&pidfile).is_ok_and(|s| !s.trim().is_empty()) {
            break;
        }
        let exited = nix::sys::wait::waitid(
            nix::sys::wait::Id::PIDFd(helper.pidfd.as_fd()),
            nix::sys::wait::WaitPidFlag::WEXITED
                | nix::sys::wait::WaitPidFlag::WNOHANG
                | nix::sys::wait::WaitPidFlag::WNOWAIT,
        )
        .is_ok_and(|s| s != nix::sys::wait::WaitStatus::StillAlive);
        if exited {
            let e = pasta_error(&err_path);
            if e.contains("External interface not usable") {
                // pasta copies the host's addresses and routes from its default route.
                bail!("pasta: {e}: rootless networking needs a default route on the host");
            }
            bail!("pasta: {e}");
        }
        if Instant::now() > deadline {
            bail!("pasta: not ready after {}s", READY_WITHIN.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ipam.endpoints.push(Endpoint {
        container: rec.id.clone(),
        name: rec.name.clone(),
        hostname: rec.config.hostname.clone(),
        network: rec.host_config.network_mode.clone(),
        ip: Ipv4Addr::UNSPECIFIED,
        prefix: 0,
        gateway: Ipv4Addr::UNSPECIFIED,
        mac: String::new(),
        ip6: None,
        veth: String::new(),
        ports: bindings,
        aliases: Vec::new(),
        links: Vec::new(),
        extra_hosts: rec.host_config.extra_hosts.clone(),
        hosts_path: rec.hosts_path.clone(),
        helper: Some(Helper {
            pid: hpid,
            start_time: crate::state::process_start_time(hpid).unwrap_or(0),
        }),
    });
    // From the host's sockets to the container's loopback, as pasta's splice goes.
    let fwd = super::rootless_ports::start(&netns, tcp)?;
    nets.save_ipam(&ipam)?;
    Ok((helper, fwd))
}

/// Kills a recorded pasta if it is still the process recorded.
pub(super) fn kill_helper(h: &Helper) {
    if h.pid > 0 && crate::state::process_start_time(h.pid) == Some(h.start_time) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(h.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Drops the endpoints of containers whose monitor is gone, killing their pasta (those
/// in the shared network namespace, without a pasta of their own, are its module's).
fn sweep(store: &Store, ipam: &mut Ipam) {
    ipam.endpoints.retain(|e| {
        if e.helper.is_none() || store.monitor_alive(&e.container) {
            return true;
        }
        if let Some(h) = &e.helper {
            kill_helper(h);
        }
        false
    });
}

/// The container has ended (or its monitor was killed): its pasta killed, its ports out
/// of the record.
pub(crate) fn detach(nets: &Networks, store: &Store, id: &str) -> Result<()> {
    let _lock = nets.lock()?;
    let mut ipam = nets.ipam();
    let own = |e: &Endpoint| e.container == id && e.helper.is_some();
    if !ipam.endpoints.iter().any(own) {
        return Ok(());
    }
    ipam.endpoints.retain(|e| {
        if !own(e) {
            return true;
        }
        if let Some(h) = &e.helper {
            kill_helper(h);
        }
        false
    });
    sweep(store, &mut ipam);
    nets.save_ipam(&ipam)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(proto: &str, ip: Ipv4Addr, h: u16, c: u16) -> Binding {
        Binding {
            proto: proto.into(),
            container_port: c,
            host_ip: ip.into(),
            host_port: h,
        }
    }

    #[test]
    fn specs_name_every_binding_and_none_otherwise() {
        let v = [
            b("tcp", Ipv4Addr::UNSPECIFIED, 8080, 80),
            b("tcp", Ipv4Addr::LOCALHOST, 8443, 443),
            b("udp", Ipv4Addr::UNSPECIFIED, 5353, 53),
        ];
        assert_eq!(port_specs(&v, "tcp"), ["8080:80", "127.0.0.1/8443:443"]);
        assert_eq!(port_specs(&v, "udp"), ["5353:53"]);
        assert_eq!(port_specs(&v[..2], "udp"), ["none"]);
    }

    #[test]
    fn pasta_error_skips_noise() {
        let d = std::env::temp_dir().join(format!("berth-pasta-err-{}", std::process::id()));
        fs::write(
            &d,
            "Failed to send 46 bytes to syslog\nNo external routable interface for IPv6\nExternal interface not usable\nFailed to send 30 bytes to syslog\n",
        )
        .unwrap();
        assert_eq!(pasta_error(&d), "External interface not usable");
        let _ = fs::remove_file(&d);
    }
}
