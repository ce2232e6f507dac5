//! Idmapped bind mounts (mount options `idmap`/`ridmap`, or a mount's own `uidMappings`/
//! `gidMappings`). The parent makes them before clone, in the host's namespaces, where it
//! can create the mapping user namespace and has the privilege mount_setattr wants; the
//! container's child only attaches the detached tree it inherits.

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::spec::plan::{IdMapPlan, Plan};
use crate::sys;

/// Detached, idmapped trees by index in `mounts`.
pub(crate) type Premade = Vec<(usize, OwnedFd)>;

/// A user namespace that exists only to carry the maps: a child that unshares it and
/// waits, its maps written from here, its ns file opened, then the child killed.
fn mapping_userns(maps: &IdMapPlan) -> Result<OwnedFd, String> {
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
        for (file, maps) in [("uid_map", &maps.uid), ("gid_map", &maps.gid)] {
            let p = format!("/proc/{pid}/{file}");
            std::fs::write(&p, IdMapPlan::text(maps))
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

/// Makes every idmapped mount the plan has (checked when planning), and, for a container
/// in a user namespace of its own (`in_userns`), every other bind mount's tree too: its
/// source is then reached with our privileges, not the container root's, which may not
/// get there (a 0700 parent directory; runc opens the sources before joining the user
/// namespace too). Errors name `mounts[i]`.
pub(crate) fn prepare(plan: &Plan, in_userns: bool) -> Result<Premade, String> {
    let mut out = Vec::new();
    for m in &plan.mounts {
        let bind = m.kind == crate::spec::plan::MountKind::Bind;
        if m.idmap.is_none() && !(in_userns && bind) {
            continue;
        }
        let i = m.index;
        let field = format!("mounts[{i}] ({})", m.destination.display());
        let opts = &m.opts;
        let src = &m.source;
        let recursive = opts.flags & libc::MS_REC != 0;
        let csrc = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{field}: source contains a NUL byte"))?;
        let mut tflags = sys::OPEN_TREE_CLONE;
        if recursive {
            tflags |= libc::AT_RECURSIVE as u32;
        }
        let cwd = nix::fcntl::open(".", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| format!("{field}: {e}"))?;
        let tree = match sys::open_tree(cwd.as_fd(), &csrc, tflags) {
            Ok(t) => t,
            // Unprivileged (rootless): we reach no more than the container's root does;
            // its init binds the source itself.
            Err(nix::errno::Errno::EPERM) if m.idmap.is_none() => continue,
            Err(e) => {
                return Err(format!(
                    "{field}: source {}: {}",
                    src.display(),
                    e.desc().to_lowercase()
                ))
            }
        };
        let Some(maps) = &m.idmap else {
            out.push((i, tree));
            continue;
        };
        let userns = mapping_userns(maps).map_err(|e| format!("{field}: {e}"))?;
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
