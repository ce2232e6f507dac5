//! systemd's readiness protocol for callers that give a notify socket (`CreateOpts`'s
//! `notify_socket`, NOTIFY_SOCKET to the commands): the container gets a socket of its own (bind-mounted read-only at /run/notify), and `start`/`run` wait for
//! READY=1 on it, then forward READY=1 and MAINPID=<init host pid> to the caller's socket.

use std::os::fd::AsFd;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

pub(crate) const CONTAINER_DIR: &str = "/run/notify";
pub(crate) const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";

pub(crate) fn state_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("notify")
}

/// The mount that exposes the state dir's notify directory in the container.
pub(crate) fn mount(container_dir: &Path) -> Result<oci_spec::runtime::Mount> {
    let dir = state_dir(container_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    // Any uid in the container may notify.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    oci_spec::runtime::MountBuilder::default()
        .destination(CONTAINER_DIR)
        .typ("bind")
        .source(dir)
        .options(
            ["bind", "nosuid", "nodev", "noexec", "ro"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .map_err(|e| anyhow!("notify mount: {e}"))
}

/// Binds the container-side socket; done by start/run just before releasing the init so
/// that no message is lost and create never blocks.
pub(crate) fn listen(container_dir: &Path) -> Result<UnixDatagram> {
    let path = state_dir(container_dir).join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).map_err(|e| {
        anyhow!(
            "notify socket {}: {}",
            path.display(),
            crate::error::errno_text(&e)
        )
    })?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    Ok(sock)
}

/// Waits for READY=1 (or the init's exit) and forwards readiness to the caller.
pub(crate) fn wait_and_forward(
    sock: &UnixDatagram,
    pidfd: &impl AsFd,
    pid: i32,
    host: &str,
) -> Result<()> {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(anyhow!("notify socket: {}", crate::error::errno_desc(e))),
        }
        let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let exited = fds[1].revents().is_some_and(|r| !r.is_empty());
        if sock_ready {
            let n = sock.recv(&mut buf).context("notify socket")?;
            let msg = String::from_utf8_lossy(&buf[..n]);
            if msg.lines().any(|l| l.trim() == "READY=1") {
                return send(host, &format!("READY=1\nMAINPID={pid}\n"));
            }
        } else if exited {
            return Ok(());
        }
    }
}

fn send(host: &str, msg: &str) -> Result<()> {
    let out = UnixDatagram::unbound()?;
    let res = if let Some(name) = host.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        out.send_to_addr(msg.as_bytes(), &addr)
    } else {
        out.send_to(msg.as_bytes(), host)
    };
    res.map(drop)
        .map_err(|e| anyhow!("NOTIFY_SOCKET {host}: {}", crate::error::errno_text(&e)))
}
