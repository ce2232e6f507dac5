//! The people face: Docker's language over berth's own runtime. A client of `runtime`
//! exactly as podman is a client of runc, but in-process: images, containers and their
//! monitor, logs, volumes, networks, build. Nothing here is reached by the runc face.

pub(crate) mod build;
pub(crate) mod containers;
pub(crate) mod cp;
pub(crate) mod digest;
pub(crate) mod events;
pub(crate) mod format;
pub(crate) mod images;
pub(crate) mod logs;
pub(crate) mod monitor;
pub(crate) mod network;
pub(crate) mod reference;
pub(crate) mod registry;
pub(crate) mod specgen;
pub(crate) mod stats;
pub(crate) mod systemd;
pub(crate) mod units;
pub(crate) mod userns;
pub(crate) mod volumes;

use std::path::{Path, PathBuf};

/// The people face's globals (Podman's): where durable storage and runtime state live.
#[derive(Clone, Debug)]
pub(crate) struct Globals {
    /// Durable storage: images, container records, volumes, networks.
    pub(crate) root: PathBuf,
    /// Runtime state: what a reboot must forget (monitors, sockets, the runtime's records).
    pub(crate) runroot: PathBuf,
    pub(crate) cgroup_manager: CgroupManager,
    /// Not root in the initial user namespace: containers get a user namespace of their own.
    pub(crate) rootless: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CgroupManager {
    Cgroupfs,
    Systemd,
}

impl CgroupManager {
    /// Podman's default: systemd when it is the init (and its manager, the user's when
    /// rootless, answers on a socket), cgroupfs otherwise. Under a unit (INVOCATION_ID)
    /// cgroupfs, so that a unit with Delegate=yes gets its container in its own cgroup.
    fn default_for(rootless: bool) -> CgroupManager {
        if std::env::var_os("INVOCATION_ID").is_none()
            && std::path::Path::new("/run/systemd/system").is_dir()
            && crate::runtime::systemd_cgroup_check(rootless).is_ok()
        {
            CgroupManager::Systemd
        } else {
            CgroupManager::Cgroupfs
        }
    }
}

impl Globals {
    pub(crate) fn new(
        root: Option<PathBuf>,
        runroot: Option<PathBuf>,
        cgroup_manager: Option<CgroupManager>,
    ) -> Globals {
        let rootless = !nix::unistd::geteuid().is_root() || crate::state::in_user_namespace();
        // Relative paths are taken from the directory the command ran in: the monitor, the
        // runtime and a unit's ExecStart all run elsewhere (a bundle, /).
        let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        Globals {
            root: abs(root.unwrap_or_else(|| default_root(rootless))),
            runroot: abs(runroot.unwrap_or_else(|| default_runroot(rootless))),
            cgroup_manager: cgroup_manager.unwrap_or_else(|| CgroupManager::default_for(rootless)),
            rootless,
        }
    }

    /// `--cgroup-manager systemd` needs a systemd to talk to: said before anything is made.
    pub(crate) fn check_cgroup_manager(&self) -> anyhow::Result<()> {
        if self.cgroup_manager == CgroupManager::Systemd {
            crate::runtime::systemd_cgroup_check(self.rootless)
                .map_err(|e| anyhow::anyhow!("--cgroup-manager systemd: {e}"))?;
        }
        Ok(())
    }

    /// The runtime's own records of this face's containers live inside the runroot, so
    /// `berth-runc list` never shows them and neither face can remove the other's.
    pub(crate) fn runtime(&self) -> crate::runtime::Globals {
        crate::runtime::Globals {
            root: self.runroot.join("runtime"),
            systemd_cgroup: self.cgroup_manager == CgroupManager::Systemd,
            rootless: None,
        }
    }
}

/// `/var/lib/berth`, or `${XDG_DATA_HOME:-~/.local/share}/berth` rootless (Podman's rule).
fn default_root(rootless: bool) -> PathBuf {
    if !rootless {
        return PathBuf::from("/var/lib/berth");
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Path::new(&d).join("berth");
    }
    home_dir().join(".local/share/berth")
}

/// `/run/berth`, or `$XDG_RUNTIME_DIR/berth` rootless (`/run/user/UID/berth` without it).
fn default_runroot(rootless: bool) -> PathBuf {
    if !rootless {
        return PathBuf::from("/run/berth");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_absolute()) {
        Some(d) => Path::new(&d).join("berth"),
        // The user's own uid, also once inside berth's user namespace (where it is 0).
        None => PathBuf::from(format!("/run/user/{}/berth", userns::host_euid())),
    }
}

fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("HOME").filter(|h| Path::new(h).is_absolute()) {
        return PathBuf::from(h);
    }
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(userns::host_euid()))
        .ok()
        .flatten()
        .map(|u| u.dir)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// An error that decides the people face's exit status itself (Docker's 125/126/127 for
/// `run`/`exec`, 1 for `container exists` of a missing container, ...). main prints the
/// message once and exits with `code`; an empty message prints nothing.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub(crate) struct Exit {
    pub(crate) code: i32,
    pub(crate) msg: String,
}
