//! Idmapped bind mounts (mount options `idmap`/`ridmap`, or a mount's own `uidMappings`/
//! `gidMappings`). The parent makes them before clone, in the host's namespaces, where it
//! can create the mapping user namespace and has the privilege mount_setattr wants; the
//! container's child only attaches the detached tree it inherits.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use crate::spec::mountopts::parse_mount_options;
use crate::sys;

/// Detached, idmapped trees by index in `mounts`.
pub(crate) type Premade = Vec<(usize, OwnedFd)>;

fn maps_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace that exists only to carry the maps: a child that unshares it and
/// waits, its maps written from here, its ns file opened, then the child killed.
fn mapping_userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd, String> {
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let forked = sys::clone3(libc::CLONE_NEWUSER as u64, None)
        .map_err(|e| format!("creating a user namespace: {}", e.desc().to_lowercase()))?;
    let (pid, pidfd) = match forked {
        sys::Forked::Child => {
            drop(wr);
            // Until the parent is done with our namespace (EOF when it closes the pipe).
            let _ = nix::unistd::read(&rd, &mut [0u8; 1]);
            sys::exit_now(0);
        }
        sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(rd);
    let result = (|| {
        for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
            let p = format!("/proc/{pid}/{file}");
            std::fs::write(&p, maps_text(maps))
                .map_err(|e| format!("writing {p}: {}", crate::error::errno_text(&e)))?;
        }
        nix::fcntl::open(
            format!("/proc/{pid}/ns/user").as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            format!(
                "opening the mapping user namespace: {}",
                e.desc().to_lowercase()
            )
        })
    })();
    drop(wr);
    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    result
}

fn wants_idmap(m: &Mount) -> bool {
    let o = parse_mount_options(m.options().as_deref().unwrap_or(&[]));
    o.idmap
        || o.ridmap
        || m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
        || m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty())
}

/// Makes every idmapped mount the config asks for. Errors name `mounts[i]`.
pub(crate) fn prepare(spec: &Spec, bundle: &Path) -> Result<Premade, String> {
    let mut out = Vec::new();
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let linux = spec.linux().as_ref();
    for (i, m) in mounts.iter().enumerate().filter(|(_, m)| wants_idmap(m)) {
        let field = format!("mounts[{i}] ({})", m.destination().display());
        let opts = parse_mount_options(m.options().as_deref().unwrap_or(&[]));
        let is_bind = opts.flags & libc::MS_BIND != 0 || m.typ().as_deref() == Some("bind");
        if !is_bind {
            return Err(format!("{field}: idmap is only supported on bind mounts"));
        }
        // The mount's own maps, else the container's user namespace maps (as runc).
        let pick = |own: &Option<Vec<LinuxIdMapping>>, ctr: Option<&Vec<LinuxIdMapping>>| {
            own.clone()
                .filter(|v| !v.is_empty())
                .or_else(|| ctr.cloned())
                .unwrap_or_default()
        };
        let uid = pick(
            m.uid_mappings(),
            linux.and_then(|l| l.uid_mappings().as_ref()),
        );
        let gid = pick(
            m.gid_mappings(),
            linux.and_then(|l| l.gid_mappings().as_ref()),
        );
        if uid.is_empty() || gid.is_empty() {
            return Err(format!(
                "{field}: an idmapped mount needs uidMappings and gidMappings (on the mount or in linux)"
            ));
        }
        crate::spec::check_id_maps(&format!("mounts[{i}].uidMappings"), Some(&uid))
            .map_err(|e| e.to_string())?;
        crate::spec::check_id_maps(&format!("mounts[{i}].gidMappings"), Some(&gid))
            .map_err(|e| e.to_string())?;
        let userns = mapping_userns(&uid, &gid).map_err(|e| format!("{field}: {e}"))?;
        let source = m.source().clone().unwrap_or_default();
        let src = if source.is_absolute() {
            source
        } else {
            bundle.join(source)
        };
        let recursive = opts.flags & libc::MS_REC != 0;
        let csrc = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{field}: source contains a NUL byte"))?;
        let mut tflags = sys::OPEN_TREE_CLONE;
        if recursive {
            tflags |= libc::AT_RECURSIVE as u32;
        }
        let cwd = nix::fcntl::open(".", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| format!("{field}: {e}"))?;
        let tree = sys::open_tree(cwd.as_fd(), &csrc, tflags).map_err(|e| {
            format!(
                "{field}: source {}: {}",
                src.display(),
                e.desc().to_lowercase()
            )
        })?;
        // `ridmap` maps the submounts too; `idmap` only the top mount (runtime-spec).
        sys::mount_setattr_idmap(tree.as_fd(), opts.ridmap, userns.as_fd()).map_err(|e| {
            format!(
                "{field}: idmapping {}: {}",
                src.display(),
                e.desc().to_lowercase()
            )
        })?;
        out.push((i, tree));
    }
    Ok(out)
}
