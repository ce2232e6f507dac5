//! `--sdnotify` for a foreground `run` that is a `Type=notify` unit's main process: the
//! monitor says READY=1 once the container has started (`monitor`), or once its
//! healthcheck first passes (`healthy`), or relays what the container says on a socket of
//! its own (`container`), or says nothing (`ignore`).
//! berth stays the unit's main process, so MAINPID is never sent (and never relayed:
//! a container must not be able to make systemd watch another process).

use std::os::fd::AsRawFd;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::{anyhow, bail, Result};

/// Where the container finds its socket (bind-mounted read-only from the run dir).
const CONTAINER_DIR: &str = "/run/notify";
const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";

/// The messages a container may pass to systemd (never MAINPID, FDSTORE, BARRIER...).
const RELAYED: &[&str] = &[
    "READY",
    "STATUS",
    "STOPPING",
    "RELOADING",
    "MONOTONIC_USEC",
    "WATCHDOG",
    "WATCHDOG_USEC",
    "EXTEND_TIMEOUT_USEC",
    "ERRNO",
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No --sdnotify: `Monitor` when NOTIFY_SOCKET is set.
    #[default]
    Default,
    Monitor,
    Container,
    /// READY=1 at the first passing probe; STATUS= follows the health status.
    Healthy,
    Ignore,
}

/// `--sdnotify`'s value.
pub(crate) fn parse_mode(v: Option<&str>) -> Result<Mode> {
    Ok(match v {
        None => Mode::Default,
        Some("monitor") | Some("conmon") => Mode::Monitor,
        Some("container") => Mode::Container,
        Some("healthy") => Mode::Healthy,
        Some("ignore") => Mode::Ignore,
        Some(o) => bail!("--sdnotify: {o:?} is not one of container, monitor, healthy, ignore"),
    })
}

/// Podman's rule: `healthy` without a healthcheck would never be ready.
pub(crate) fn check_healthy(mode: Mode, has_healthcheck: bool) -> Result<()> {
    if mode == Mode::Healthy && !has_healthcheck {
        bail!("--sdnotify=healthy: the container has no healthcheck (add --health-cmd)");
    }
    Ok(())
}

/// What the monitor tells systemd; inert without NOTIFY_SOCKET.
pub(crate) struct Notifier {
    host: Option<String>,
    mode: Mode,
    /// The container's end (`container` mode), bound before the container is created.
    sock: Option<UnixDatagram>,
    /// The directory holding it, bind-mounted into the container.
    dir: Option<PathBuf>,
    /// READY=1 went out (`healthy`: once, at the first passing probe).
    ready: bool,
    /// The last health status told in STATUS= (`healthy`).
    told: String,
}

impl Notifier {
    /// Takes NOTIFY_SOCKET from the environment (the caller removes it from its own).
    /// `fg` is false for a detached monitor, which never notifies.
    pub(crate) fn from_env(fg: bool, mode: Mode) -> Notifier {
        let host = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| fg && !s.is_empty());
        if fg && (host.is_some() || std::env::var_os("INVOCATION_ID").is_some()) {
            UNDER_UNIT.store(true, Ordering::SeqCst);
        }
        let mode = match (mode, &host) {
            (_, None) => Mode::Ignore,
            (Mode::Default, Some(_)) => Mode::Monitor,
            (m, Some(_)) => m,
        };
        Notifier {
            host,
            mode,
            sock: None,
            dir: None,
            ready: false,
            told: String::new(),
        }
    }

    /// In `container` mode: binds the container's socket in `run_dir` and gives the
    /// container a read-only mount of it and NOTIFY_SOCKET.
    pub(crate) fn prepare(&mut self, run_dir: &Path) -> Result<()> {
        if self.mode != Mode::Container {
            return Ok(());
        }
        let dir = run_dir.join("notify");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow!("{}: {}", dir.display(), crate::error::errno_text(&e)))?;
        // Any uid in the container may notify; the run dir above stays private.
        let mode = |p: &PathBuf, m| {
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m))
                .map_err(|e| anyhow!("{}: {}", p.display(), crate::error::errno_text(&e)))
        };
        mode(&dir, 0o755)?;
        // Through the dir's fd: the run dir's path may be longer than a socket address.
        let d = std::fs::File::open(&dir)
            .map_err(|e| anyhow!("{}: {}", dir.display(), crate::error::errno_text(&e)))?;
        let short = format!("/proc/self/fd/{}/notify.sock", d.as_raw_fd());
        let sock = UnixDatagram::bind(&short)
            .map_err(|e| anyhow!("{}: {}", path.display(), crate::error::errno_text(&e)))?;
        drop(d);
        mode(&path, 0o777)?;
        sock.set_nonblocking(true)?;
        self.sock = Some(sock);
        self.dir = Some(dir);
        Ok(())
    }

    /// Gives the container (each time one is created from the spec: restarts too) a
    /// read-only mount of the socket's directory and NOTIFY_SOCKET.
    pub(crate) fn apply(&self, spec: &mut oci_spec::runtime::Spec) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let m = oci_spec::runtime::MountBuilder::default()
            .destination(CONTAINER_DIR)
            .typ("bind")
            .source(dir)
            .options(
                ["bind", "nosuid", "nodev", "noexec", "ro"]
                    .map(String::from)
                    .to_vec(),
            )
            .build()
            .map_err(|e| anyhow!("--sdnotify=container: {e}"))?;
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        mounts.push(m);
        spec.set_mounts(Some(mounts));
        if let Some(p) = spec.process_mut() {
            let mut env = p.env().clone().unwrap_or_default();
            env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
            env.push(format!("NOTIFY_SOCKET={CONTAINER_SOCKET}"));
            p.set_env(Some(env));
        }
        Ok(())
    }

    /// The container's socket, for the monitor's poll set.
    pub(crate) fn socket(&self) -> Option<&UnixDatagram> {
        self.sock.as_ref()
    }

    /// The container has started.
    pub(crate) fn started(&mut self) {
        match self.mode {
            Mode::Monitor => self.send("READY=1\n"),
            Mode::Healthy => self.health("starting"),
            _ => {}
        }
    }

    /// `healthy`: the container's health status after a probe. READY=1 once, with the
    /// first `healthy`; a later `unhealthy` is only told in STATUS= (systemd has no way
    /// back from ready, as with Podman).
    pub(crate) fn health(&mut self, status: &str) {
        if self.mode != Mode::Healthy || self.told == status {
            return;
        }
        self.told = status.to_string();
        let mut msg = format!("STATUS=health: {status}\n");
        if status == "healthy" && !self.ready {
            self.ready = true;
            msg.push_str("READY=1\n");
        }
        self.send(&msg);
    }

    /// Relays what the container said, minus what it may not say. A bounded batch per
    /// call: a container flooding its socket must not starve the monitor's other work.
    pub(crate) fn relay(&self) {
        let Some(sock) = &self.sock else { return };
        let mut buf = vec![0u8; 4096];
        for _ in 0..64 {
            let Ok(n) = sock.recv(&mut buf) else { break };
            let msg = filter(&String::from_utf8_lossy(&buf[..n]));
            if !msg.is_empty() {
                self.send(&msg);
            }
        }
    }

    /// A lost notification is systemd's timeout to report, not a reason to stop the
    /// container.
    fn send(&self, msg: &str) {
        if let Some(host) = &self.host {
            let _ = send(host, msg);
        }
    }
}

/// While alive, asks systemd for more start time every `every` (Podman's 30 s, at most 10
/// times): an image pull can outlast `TimeoutStartSec=`. Inert without NOTIFY_SOCKET or
/// with `--sdnotify=ignore`. Dropping it stops and joins the thread, so that the monitor
/// is single-threaded again when it creates the container.
pub(crate) struct ExtendTimeout {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ExtendTimeout {
    pub(crate) fn start(mode: Mode, detached: bool, every: std::time::Duration) -> ExtendTimeout {
        let host = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty() && !detached && mode != Mode::Ignore);
        Self::to(host, every)
    }

    fn to(host: Option<String>, every: std::time::Duration) -> ExtendTimeout {
        let Some(host) = host else {
            return ExtendTimeout {
                stop: None,
                thread: None,
            };
        };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let usec = (every.as_micros() as u64).saturating_mul(3) / 2;
        let thread = std::thread::spawn(move || {
            for _ in 0..10 {
                let _ = send(&host, &format!("EXTEND_TIMEOUT_USEC={usec}\n"));
                if !matches!(
                    rx.recv_timeout(every),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
        });
        ExtendTimeout {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for ExtendTimeout {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether berth runs as a unit's process (NOTIFY_SOCKET or INVOCATION_ID at its start).
static UNDER_UNIT: AtomicBool = AtomicBool::new(false);
/// The signal (SIGTERM, SIGINT, SIGHUP) that asked the foreground monitor to stop.
static STOPPED_BY: AtomicI32 = AtomicI32::new(0);

/// Whether this foreground `run` is a unit's process.
pub(crate) fn under_unit() -> bool {
    UNDER_UNIT.load(Ordering::SeqCst)
}

/// The monitor was asked to stop by `sig`.
pub(crate) fn stop_requested(sig: i32) {
    let _ = STOPPED_BY.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Under a unit, a container that died of the very signal berth was stopped with makes
/// berth die of it too, so that systemd counts a `systemctl stop` as clean without
/// `SuccessExitStatus=143` (a shell still sees 128+N). Returns otherwise.
pub(crate) fn die_like_the_container(code: i32) {
    let sig = STOPPED_BY.load(Ordering::SeqCst);
    if !UNDER_UNIT.load(Ordering::SeqCst)
        || !matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGHUP)
        || code != 128 + sig
    {
        return;
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    crate::sys::die_of_signal(sig, code);
}

/// The lines of `msg` a container may pass on.
fn filter(msg: &str) -> String {
    let mut out = String::new();
    for l in msg.lines() {
        let key = l.split_once('=').map_or("", |(k, _)| k);
        if RELAYED.contains(&key) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn send(host: &str, msg: &str) -> Result<()> {
    let out = UnixDatagram::unbound()?;
    // The monitor never waits on systemd's queue (a flooding container fills it).
    out.set_nonblocking(true)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainpid_and_unknown_keys_are_not_relayed() {
        assert_eq!(
            filter("READY=1\nMAINPID=1\nSTATUS=up\nFDSTORE=1\nBARRIER=1\n"),
            "READY=1\nSTATUS=up\n"
        );
        assert_eq!(filter("MAINPID=42"), "");
    }

    #[test]
    fn extend_timeout_repeats_until_dropped() {
        let dir = std::env::temp_dir().join(format!("berth-extend-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let l = UnixDatagram::bind(&path).unwrap();
        let every = std::time::Duration::from_millis(50);
        let g = ExtendTimeout::to(Some(path.display().to_string()), every);
        let mut buf = [0u8; 128];
        for _ in 0..2 {
            let n = l.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"EXTEND_TIMEOUT_USEC=75000\n");
        }
        drop(g);
        l.set_nonblocking(true).unwrap();
        while l.recv(&mut buf).is_ok() {}
        std::thread::sleep(every * 3);
        assert!(l.recv(&mut buf).is_err(), "sent after drop");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode(None).unwrap(), Mode::Default);
        assert_eq!(parse_mode(Some("conmon")).unwrap(), Mode::Monitor);
        assert_eq!(parse_mode(Some("healthy")).unwrap(), Mode::Healthy);
        assert!(parse_mode(Some("sometimes")).is_err());
        assert!(check_healthy(Mode::Healthy, false).is_err());
        assert!(check_healthy(Mode::Healthy, true).is_ok());
        assert!(check_healthy(Mode::Monitor, false).is_ok());
    }
}
