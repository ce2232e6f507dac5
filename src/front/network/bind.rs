//! Publishing a container's ports on the host: each port held by a bound socket while the
//! container runs (traffic itself is DNATed by berth's nftables tables). On a network with
//! IPv6, a port published without an address is bound on `0.0.0.0` and `[::]`, one port
//! for both, as Docker's. IPv6 listeners also relay what DNAT cannot take (Docker's
//! userland proxy): the kernel never routes `::1` off the loopback device, so
//! `[::1]:PORT` reaches the container through this relay, a child of the monitor.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use nix::sys::signal::Signal;
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn6};
use nix::sys::wait::{waitid, Id, WaitPidFlag};

use super::ports::{split_key, Binding};
use super::{HostPort, Ipam};

/// What holds a published port while the container runs.
pub(crate) enum Held {
    Fd { _fd: OwnedFd },
    Relay(Relay),
}

/// The process relaying the IPv6 listeners' connections to the container: a child of
/// the monitor, which must stay single-threaded (it clones for health probes and
/// restarts, and a clone taken while one of its threads held musl's malloc lock would
/// leave the child deadlocked). It owns the listening sockets and dies with the monitor.
pub(crate) struct Relay {
    pidfd: OwnedFd,
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Waited for: its sockets are closed, so the ports are free, when we return.
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), Signal::SIGKILL as i32);
        let _ = waitid(Id::PIDFd(self.pidfd.as_fd()), WaitPidFlag::WEXITED);
    }
}

/// Starts the relay of `listeners` (each with where its connections go).
fn relay(listeners: Vec<(OwnedFd, SocketAddr)>) -> Result<Relay> {
    let fds: Vec<_> = listeners.iter().map(|(fd, _)| fd.as_fd()).collect();
    let targets: Vec<SocketAddr> = listeners.iter().map(|(_, t)| *t).collect();
    let (_, pidfd) = crate::sys::fork_tied(&fds, move |fds| {
        let _ = nix::sys::prctl::set_name(c"berth-relay");
        let _ = std::env::set_current_dir("/");
        let threads: Vec<_> = fds
            .into_iter()
            .zip(targets)
            .filter_map(|(fd, to)| {
                let l = TcpListener::from(fd);
                std::thread::Builder::new().spawn(move || serve(l, to)).ok()
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        0
    })
    .map_err(|e| anyhow!("--publish: the IPv6 relay: {}", e.desc()))?;
    Ok(Relay { pidfd })
}

/// Relays each connection `l` accepts to `target`, for as long as the process lives.
fn serve(l: TcpListener, target: SocketAddr) {
    loop {
        match l.accept() {
            Ok((down, _)) => {
                let _ = std::thread::Builder::new().spawn(move || {
                    if let Ok(up) = TcpStream::connect_timeout(&target, Duration::from_secs(10)) {
                        pipe(down, up);
                    }
                });
            }
            // Out of fds or memory for a while: the port stays held, later ones may pass.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Copies both ways until each side has said all it had.
fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(mut a2), Ok(mut b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let t = std::thread::spawn(move || {
        let (mut a, mut b) = (a, b);
        let _ = std::io::copy(&mut a, &mut b);
        let _ = b.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut b2, &mut a2);
    let _ = a2.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

/// Binds `ip:port` of `proto` (port 0: one the kernel picks); IPv6 sockets are IPv6-only
/// (`[::]` and `0.0.0.0` are two bindings, as Docker's). None for sctp.
fn reserve(proto: &str, ip: IpAddr, port: u16) -> std::io::Result<(Option<OwnedFd>, u16)> {
    match ip {
        IpAddr::V4(a) => super::setup::reserve(proto, a, port),
        IpAddr::V6(a) => reserve6(proto, a, port),
    }
}

fn reserve6(proto: &str, ip: Ipv6Addr, port: u16) -> std::io::Result<(Option<OwnedFd>, u16)> {
    let ty = match proto {
        "udp" => SockType::Datagram,
        _ => SockType::Stream,
    };
    let fd = socket::socket(AddressFamily::Inet6, ty, SockFlag::SOCK_CLOEXEC, None)?;
    socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    if ty == SockType::Stream {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    let a = SockaddrIn6::from(std::net::SocketAddrV6::new(ip, port, 0, 0));
    socket::bind(fd.as_raw_fd(), &a)?;
    let got: SockaddrIn6 = socket::getsockname(fd.as_raw_fd())?;
    if proto == "sctp" {
        // As for IPv4: no socket holds an sctp port; this one only picked it.
        return Ok((None, got.port()));
    }
    if ty == SockType::Stream {
        socket::listen(
            &fd,
            socket::Backlog::new(128).unwrap_or(socket::Backlog::MAXCONN),
        )?;
    }
    Ok((Some(fd), got.port()))
}

fn text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(a) => format!("[{a}]"),
        IpAddr::V4(a) => a.to_string(),
    }
}

/// One published port bound: the container's port and protocol, the host port, and each
/// host address it is bound on with the socket holding it (None for sctp).
pub(super) struct Bound {
    pub(super) container_port: u16,
    pub(super) proto: String,
    pub(super) host_port: u16,
    pub(super) fds: Vec<(IpAddr, Option<OwnedFd>)>,
}

impl Bound {
    pub(super) fn binding(&self, host_ip: IpAddr) -> Binding {
        Binding {
            proto: self.proto.clone(),
            container_port: self.container_port,
            host_ip,
            host_port: self.host_port,
        }
    }
}

/// Binds the host port of the published port `k` (`80/tcp`) asked as `h`: the given one,
/// the first free one of a range, or one the kernel picks; on every address asked, one
/// port for all (no address: `0.0.0.0`, and `[::]` too when `dual`). `taken(proto, ip,
/// port)` says a port is held where no socket tells (sctp). A port in use fails naming it.
pub(super) fn bind_port(
    k: &str,
    h: &HostPort,
    dual: bool,
    taken: impl Fn(&str, IpAddr, u16) -> bool,
) -> Result<Bound> {
    let (cport, proto) = split_key(k).ok_or_else(|| anyhow!("port {k}: invalid"))?;
    let hips: Vec<IpAddr> = if h.host_ip.is_empty() {
        let mut v = vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
        if dual {
            v.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        }
        v
    } else {
        vec![h
            .host_ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| anyhow!("--publish: invalid host address {}", h.host_ip))?]
    };
    let candidates: Vec<u16> = match h.host_port.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse()?, b.parse()?);
            (a..=b).collect()
        }
        // A kernel-picked port may be taken in the other family: a few tries.
        None if h.host_port.is_empty() => vec![0; if hips.len() > 1 { 8 } else { 1 }],
        None => vec![h.host_port.parse()?],
    };
    let mut last_err = None;
    'ports: for p in candidates {
        let mut fds = Vec::new();
        let mut port = p;
        for hip in &hips {
            if port != 0 && taken(&proto, *hip, port) {
                last_err = Some((*hip, port, std::io::ErrorKind::AddrInUse.into()));
                continue 'ports;
            }
            match reserve(&proto, *hip, port) {
                Ok((fd, q)) => {
                    port = q;
                    fds.push((*hip, fd));
                }
                Err(e) => {
                    last_err = Some((*hip, port, e));
                    continue 'ports;
                }
            }
        }
        return Ok(Bound {
            container_port: cport,
            proto,
            host_port: port,
            fds,
        });
    }
    let (ip, p, e) = last_err.unwrap_or((hips[0], 0, std::io::Error::other("no port")));
    let ip = text(ip);
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            bail!("--publish: bind for {ip}:{p}/{proto} failed: port is already allocated")
        }
        std::io::ErrorKind::PermissionDenied => bail!(
            "--publish: bind for {ip}:{p}/{proto} failed: permission denied (rootless: host ports below {} need root)",
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                .unwrap_or_default()
                .trim()
        ),
        _ => bail!(
            "--publish: bind for {ip}:{p}/{proto} failed: {}",
            crate::error::errno_text(&e)
        ),
    }
}

/// Binds every port the container publishes (`dual`: its network has IPv6). `target`:
/// the container's addresses, where IPv6 listeners relay to (its IPv6 one if it has one).
pub(crate) fn publish(
    ipam: &Ipam,
    wanted: Vec<(String, HostPort)>,
    dual: bool,
    target: (Ipv4Addr, Option<Ipv6Addr>),
) -> Result<(Vec<Held>, Vec<Binding>)> {
    let mut held = Vec::new();
    let mut bindings = Vec::new();
    let mut relayed = Vec::new();
    // What no socket tells for sctp: another container of this root holds it.
    let taken = |proto: &str, hip: IpAddr, port: u16| {
        ipam.endpoints.iter().flat_map(|e| &e.ports).any(|b| {
            b.proto == proto
                && b.host_port == port
                && b.host_ip.is_ipv6() == hip.is_ipv6()
                && (b.host_ip == hip || b.host_ip.is_unspecified() || hip.is_unspecified())
        })
    };
    for (k, h) in wanted {
        let mut b = bind_port(&k, &h, dual, taken)?;
        for (hip, fd) in std::mem::take(&mut b.fds) {
            bindings.push(b.binding(hip));
            let Some(fd) = fd else { continue };
            if hip.is_ipv6() && b.proto == "tcp" {
                let to = match target.1 {
                    Some(a) => SocketAddr::new(IpAddr::V6(a), b.container_port),
                    None => SocketAddr::new(IpAddr::V4(target.0), b.container_port),
                };
                relayed.push((fd, to));
            } else {
                held.push(Held::Fd { _fd: fd });
            }
        }
    }
    if !relayed.is_empty() {
        // One process for all: started once every port is bound, it holds no other fd.
        held.push(Held::Relay(relay(relayed)?));
    }
    Ok((held, bindings))
}

/// Rootless: binds the host addresses of the published port `k` asked as `h` (no
/// address: `0.0.0.0`, and `[::]` too when `dual`); each socket that holds one (None for
/// sctp) with its binding. The monitor's forwarder serves them (rootless_ports).
pub(super) fn publish_rootless(
    k: &str,
    h: &HostPort,
    dual: bool,
) -> Result<Vec<(Option<OwnedFd>, Binding)>> {
    let mut b = bind_port(k, h, dual, |_, _, _| false)?;
    Ok(std::mem::take(&mut b.fds)
        .into_iter()
        .map(|(hip, fd)| (fd, b.binding(hip)))
        .collect())
}
