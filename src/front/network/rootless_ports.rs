//! Published ports of rootless containers, forwarded by a child of their monitor
//! (what Podman's rootlessport does): the monitor binds the listening socket on the host
//! (when the container starts, so a port in use fails the start naming it, and exactly
//! on the address asked), and each connection its forwarder child accepts is joined to one it
//! opens from inside a network namespace (the shared one of user networks, to the
//! container's address; the container's own with pasta, to its loopback, as pasta's
//! splice does), the bytes moved by a thread per direction through a buffer of up to 1 MiB (see
//! copy_through for why not splice(2)). UDP ports (user networks; with pasta, pasta's own) are
//! relayed per client as docker-proxy does: one socket to the container per client
//! address, forgotten after 90 s without an answer.
//!
//! Why not pasta's own forwarding: the namespace's pasta is shared and cannot be told a
//! new port once started (its `-t auto` scan did not pick up ports bound later with the
//! pasta shipped here), and restarting it would cut every container's connections.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, Id, WaitPidFlag};

/// The process serving one container's listening sockets: a child of the monitor, which
/// must stay single-threaded (it clones for health probes and restarts, and a clone taken
/// while one of its threads held musl's malloc lock would leave the child deadlocked). It
/// alone holds the sockets, and dies with the monitor; dropping this kills it (connections
/// in progress end with it, as they would when the container stops).
pub(crate) struct Forwarder {
    /// None: no TCP port to serve, so no process (a build's RUN step publishes none).
    pidfd: Option<OwnedFd>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(pidfd) = &self.pidfd {
            // Waited for: its sockets are closed, so a restart binds the ports again.
            let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL as i32);
            let _ = waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED);
        }
    }
}

/// A listening TCP (or bound UDP) socket on the host, and where in the namespace its
/// connections (datagrams) go: the container's address (IPv6 or IPv4, whichever the host
/// side is, as rootful's relay) and port.
pub(crate) type Listener = (OwnedFd, SocketAddr);

/// Serves `ports` (a socket on the host, its destination) into the network namespace
/// `netns`. The caller's copies of the sockets are closed on return: the forwarder holds
/// the ports.
pub(crate) fn start(netns: &File, ports: Vec<Listener>) -> Result<Forwarder> {
    if ports.is_empty() {
        return Ok(Forwarder { pidfd: None });
    }
    let mut keep = vec![netns.as_fd()];
    keep.extend(ports.iter().map(|(fd, _)| fd.as_fd()));
    let dsts: Vec<SocketAddr> = ports.iter().map(|(_, dst)| *dst).collect();
    let (_, pidfd) = crate::sys::fork_tied(&keep, move |fds| {
        let _ = nix::sys::prctl::set_name(c"berth-ports");
        let _ = std::env::set_current_dir("/");
        let mut fds = fds.into_iter();
        let Some(ns) = fds.next() else {
            return 1;
        };
        let threads: Vec<_> = fds
            .zip(dsts)
            .filter_map(|(fd, dst)| {
                let ns = ns.try_clone().ok()?;
                let udp = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SockType)
                    .is_ok_and(|t| t == nix::sys::socket::SockType::Datagram);
                std::thread::Builder::new()
                    .name("berth-ports".into())
                    .spawn(move || {
                        if udp {
                            serve_udp(File::from(ns), UdpSocket::from(fd), dst)
                        } else {
                            serve(File::from(ns), TcpListener::from(fd), dst)
                        }
                    })
                    .ok()
            })
            .collect();
        drop(ns);
        for t in threads {
            let _ = t.join();
        }
        0
    })
    .map_err(|e| anyhow!("--publish: the port forwarder: {}", e.desc()))?;
    Ok(Forwarder { pidfd: Some(pidfd) })
}

/// Accepts on the host's socket; connects, from the namespace, to `dst`.
fn serve(ns: File, l: TcpListener, dst: SocketAddr) {
    // This thread, and the ones it starts, open their sockets in the namespace; the
    // listening socket stays in the host's, where it was made.
    if nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
        return;
    }
    drop(ns);
    loop {
        match l.accept() {
            Ok((c, _)) => {
                let _ = std::thread::Builder::new()
                    .name("berth-relay".into())
                    .spawn(move || relay(c, dst));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            // Out of fds or memory for a moment: the connection waits in the backlog.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// How long a UDP client's flow lives without an answer from the container (what
/// docker-proxy waits, its UDPConnTrackTimeout); the next datagram starts a new one.
const UDP_IDLE: Duration = Duration::from_secs(90);

/// At most this many UDP clients at once per port: datagrams of more are dropped, as a
/// full conntrack table would.
const UDP_FLOWS: usize = 1024;

type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>;

/// Receives datagrams on the host's socket; each client (address and port) gets a socket
/// of its own in the namespace, connected to `dst`, whose answers go back to that client
/// from the published port (docker-proxy's UDP proxy: the container sees one peer per
/// client, and replies reach the right one).
fn serve_udp(ns: File, l: UdpSocket, dst: SocketAddr) {
    // The sockets to the container are made by this thread, in the namespace.
    if nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
        return;
    }
    drop(ns);
    let l = Arc::new(l);
    let flows: Flows = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = match l.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let known = flows.lock().ok().and_then(|f| f.get(&from).cloned());
        let up = match known {
            Some(up) => up,
            None => match open_flow(&l, &flows, from, dst) {
                Some(up) => up,
                None => continue,
            },
        };
        let _ = up.send(&buf[..n]);
    }
}

/// A new client's socket to the container, and the thread that sends its answers back.
fn open_flow(
    l: &Arc<UdpSocket>,
    flows: &Flows,
    client: SocketAddr,
    dst: SocketAddr,
) -> Option<Arc<UdpSocket>> {
    if flows.lock().ok()?.len() >= UDP_FLOWS {
        return None;
    }
    let any: SocketAddr = if dst.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let up = UdpSocket::bind(any).ok()?;
    up.connect(dst).ok()?;
    up.set_read_timeout(Some(UDP_IDLE)).ok()?;
    let up = Arc::new(up);
    let (l2, up2, flows2) = (Arc::clone(l), Arc::clone(&up), Arc::clone(flows));
    std::thread::Builder::new()
        .name("berth-udp".into())
        .spawn(move || answer(&l2, up2, client, &flows2))
        .ok()?;
    flows.lock().ok()?.insert(client, Arc::clone(&up));
    Some(up)
}

/// Sends what the container answers on `up` to `client`, until the flow is idle.
fn answer(l: &UdpSocket, up: Arc<UdpSocket>, client: SocketAddr, flows: &Flows) {
    let mut buf = vec![0u8; 65536];
    loop {
        match up.recv(&mut buf) {
            Ok(n) => {
                let _ = l.send_to(&buf[..n], client);
            }
            // Nothing listened when a datagram came (the ICMP error is reported here):
            // the client may try again.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::Interrupted
                ) => {}
            // Idle for UDP_IDLE (or the socket failed): the flow ends.
            Err(_) => break,
        }
    }
    if let Ok(mut f) = flows.lock() {
        if f.get(&client).is_some_and(|x| Arc::ptr_eq(x, &up)) {
            f.remove(&client);
        }
    }
}

fn relay(client: TcpStream, dst: SocketAddr) {
    let Ok(server) = TcpStream::connect_timeout(&dst, Duration::from_secs(30)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let back = std::thread::Builder::new()
        .name("berth-relay".into())
        .spawn(move || pump(&s2, &c2));
    pump(&client, &server);
    if let Ok(t) = back {
        let _ = t.join();
    }
}

/// Moves bytes from `from` to `to` until the end of `from`, then ends `to`'s writing side
/// (half-close, as the peer did).
fn pump(from: &TcpStream, to: &TcpStream) {
    // A direction that never carries a byte (most answers' way back, a sink's) never
    // touches its buffer.
    if readable(from) {
        copy_through(from, to);
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Waits until `from` has bytes, its end or an error to read; false only if polling failed.
fn readable(from: &TcpStream) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(from.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}

/// How much one read takes at most: all a busy socket holds queued is taken in one call
/// (one ACK, one wakeup of the sender), and written as one, whose segments are built from
/// the kernel's large page fragments.
const COPY_BUF: usize = 1 << 20;

/// The buffer a direction starts with, grown fourfold (up to COPY_BUF) each time a read
/// fills it: a connection of small messages keeps a few pages per direction, where a zeroed
/// 1 MiB buffer would be resident from the first byte.
const FIRST_BUF: usize = 16 << 10;

/// read(2) and write(2) through a buffer. Not splice(2): it moves a pipe's worth a call,
/// one 4 KiB page a slot, and each pipe above the default 16 slots is taken from the user's
/// pipe budget (`fs.pipe-user-pages-soft`, 64 MiB for all of the user's processes), which
/// every pasta fills with its own pool of 1 MiB pipes: with two pastas a forwarder's pipe
/// stayed at 64 KiB, with three it got 8 KiB, and splicing through 8 KiB moved 364 MB/s
/// where this moves over 1000 (tools/bench/rootless_net.sh). Through a 1 MiB pipe it was
/// still slower than this copy, which takes everything queued in one call.
fn copy_through(mut from: &TcpStream, mut to: &TcpStream) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; FIRST_BUF];
    loop {
        let n = match from.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
        if n == buf.len() && n < COPY_BUF {
            buf.resize((n * 4).min(COPY_BUF), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::Shutdown;

    /// Both ends of one loopback TCP connection.
    fn conn() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// A client and a server joined by two pumps moving bytes with `way`, as relay() does:
    /// every byte arrives in order, each side's half-close reaches the other while the
    /// other direction still flows, and the pumps end when both directions have.
    fn through(way: fn(&TcpStream, &TcpStream)) {
        let (client, front) = conn();
        let (back, server) = conn();
        let (front2, back2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
        let up = std::thread::spawn(move || {
            way(&front, &back);
        });
        let down = std::thread::spawn(move || {
            way(&back2, &front2);
        });
        let sent = pattern(6 << 20, 7);
        let answer = pattern(3 << 20, 11);
        let srv = {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut server = server;
                let mut got = Vec::new();
                // Ends only at the client's half-close, forwarded.
                server.read_to_end(&mut got).unwrap();
                server.write_all(&answer).unwrap();
                server.shutdown(Shutdown::Write).unwrap();
                got
            })
        };
        let mut client = client;
        client.write_all(&sent).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut back_got = Vec::new();
        client.read_to_end(&mut back_got).unwrap();
        assert!(
            srv.join().unwrap() == sent,
            "the bytes sent arrived in order"
        );
        assert!(
            back_got == answer,
            "the answer, sent after the half-close, arrived"
        );
        up.join().unwrap();
        down.join().unwrap();
    }

    #[test]
    fn pump_moves_every_byte_and_forwards_half_close() {
        through(pump);
    }

    #[test]
    fn pump_ends_at_a_reset_peer() {
        let (client, front) = conn();
        let (back, server) = conn();
        // The server goes away with unread data: its end is reset, the pump stops.
        drop(server);
        let p = std::thread::spawn(move || pump(&front, &back));
        let mut client = client;
        let _ = client.write_all(&pattern(4 << 20, 1));
        let _ = client.shutdown(Shutdown::Write);
        p.join().unwrap();
    }
}
