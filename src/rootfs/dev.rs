//! /dev inside the container: the planned device nodes (see spec::plan), the stdio and fd
//! symlinks, and /dev/ptmx pointing at the container's devpts.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{makedev, mknodat, Mode};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::resolve::{fresh_file_in_root, mkdir_all_in_root, open_in_root};
use super::{path_err, RootfsError};
use crate::spec::mountopts::ParsedMountOptions;
use crate::spec::plan::DevicePlan;

/// Creates a device node in the rootfs; in a user namespace mknod is not allowed, so the
/// host's node is bind-mounted instead (as runc).
pub(crate) fn create(root: BorrowedFd, d: &DevicePlan, bind: bool) -> Result<(), RootfsError> {
    let parent = d.rel.parent().unwrap_or(Path::new("dev"));
    let name = d
        .rel
        .file_name()
        .ok_or_else(|| path_err("device", d.path.clone(), Errno::EINVAL))?;
    let dir = mkdir_all_in_root(root, parent, 0o755)
        .map_err(|e| path_err("creating parent of device", d.path.clone(), e))?;
    let dir = super::resolve::reopen_dir(dir.as_fd())
        .map_err(|e| path_err("opening parent of device", d.path.clone(), e))?;
    if bind {
        let target = fresh_file_in_root(root, &d.path)
            .map_err(|e| path_err("creating device mount point", d.path.clone(), e))?;
        let opts = ParsedMountOptions {
            flags: libc::MS_BIND,
            ..Default::default()
        };
        return super::mounts::bind(&d.path, target.as_fd(), &opts)
            .map_err(|e| path_err("bind-mounting device", d.path.clone(), e));
    }
    match unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(path_err("replacing device", d.path.clone(), e)),
    }
    mknodat(
        dir.as_fd(),
        name,
        d.kind,
        Mode::from_bits_truncate(d.mode),
        makedev(d.major, d.minor),
    )
    .map_err(|e| path_err("mknod", d.path.clone(), e))?;
    // mknod applies the umask; the config's mode is what the container must see.
    nix::sys::stat::fchmodat(
        dir.as_fd(),
        name,
        Mode::from_bits_truncate(d.mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .map_err(|e| path_err("chmod device", d.path.clone(), e))?;
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| path_err("chown device", d.path.clone(), e))
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx -> pts/ptmx.
pub(crate) fn symlinks(root: BorrowedFd) -> Result<(), RootfsError> {
    let dev = open_in_root(
        root,
        Path::new("/dev"),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    )
    .map_err(|e| path_err("opening", "/dev", e))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(path_err("symlink", Path::new("/dev").join(name), e)),
        }
    }
    match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(path_err("removing", "/dev/ptmx", e)),
    }
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx").map_err(|e| path_err("symlink", "/dev/ptmx", e))
}
