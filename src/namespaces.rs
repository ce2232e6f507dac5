//! Namespace types, clone flags, and checks on namespace paths to join.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use crate::spec::plan::Plan;

#[derive(Debug, thiserror::Error)]
pub(crate) enum NsError {
    #[error("linux.namespaces: {typ} namespace path {}: {msg}", path.display())]
    Path {
        typ: &'static str,
        path: PathBuf,
        msg: String,
    },
}

pub(crate) fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => {
            CloneFlags::from_bits_retain(crate::sys::CLONE_NEWTIME as libc::c_int)
        }
    }
}

const ALL: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Time,
];

/// The name the kernel uses in /proc/<pid>/ns links ("net:[4026531840]").
pub(crate) fn kernel_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// What the container gets: new namespaces (as clone flags) and namespaces to join
/// (opened and type-checked here, in the parent, so that errors come before any clone).
pub(crate) struct NsPlan {
    pub(crate) new: CloneFlags,
    /// In the order they must be joined: user first, mount last.
    pub(crate) join: Vec<(LinuxNamespaceType, OwnedFd)>,
}

pub(crate) fn plan(p: &Plan) -> Result<NsPlan, NsError> {
    let mut new = CloneFlags::empty();
    let mut join = Vec::new();
    for (t, path) in &p.namespaces {
        match path {
            None => new |= flag(*t),
            // Joining the namespace we are in changes nothing (and setns refuses our own
            // user namespace): the container inherits it.
            Some(path) => {
                if let Some(fd) = open_ns(*t, path)? {
                    join.push((*t, fd));
                }
            }
        }
    }
    let rank = |t: &LinuxNamespaceType| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    };
    join.sort_by_key(|(t, _)| rank(t));
    Ok(NsPlan { new, join })
}

/// The namespace at `path`, checked to be of type `t`; None when it is berth's own.
fn open_ns(t: LinuxNamespaceType, path: &Path) -> Result<Option<OwnedFd>, NsError> {
    let typ = kernel_name(t);
    let e = |msg: String| NsError::Path {
        typ,
        path: path.to_path_buf(),
        msg,
    };
    let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|x| e(crate::error::errno_desc(x)))?;
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    let st = nix::sys::statfs::fstatfs(fd.as_fd()).map_err(|x| e(crate::error::errno_desc(x)))?;
    if st.filesystem_type().0 as i64 != NSFS_MAGIC {
        return Err(e("not a namespace file".into()));
    }
    let actual = crate::sys::ns_type(fd.as_fd()).map_err(|x| e(crate::error::errno_desc(x)))?;
    if actual != flag(t).bits() {
        let name = ALL
            .iter()
            .find(|n| flag(**n).bits() == actual)
            .map_or("another", |n| kernel_name(*n));
        return Err(e(format!("is a {name} namespace, not {typ}")));
    }
    let theirs = nix::sys::stat::fstat(fd.as_fd()).map_err(|x| e(crate::error::errno_desc(x)))?;
    let ours = nix::sys::stat::stat(format!("/proc/self/ns/{typ}").as_str())
        .map_err(|x| e(crate::error::errno_desc(x)))?;
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino) {
        return Ok(None);
    }
    Ok(Some(fd))
}
