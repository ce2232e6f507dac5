//! maskedPaths and readonlyPaths, applied after pivot_root so that every path resolves in the
//! container's own root. Mounts are made by fd with the new mount API: the /dev/null used
//! for masking is verified to be the real 1:3 character device first (CVE-2025-31133).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor, Mode, SFlag};

use super::resolve::open_in_root;
use super::{path_err, RootfsError};
use crate::sys;

const TREE_FLAGS: u32 =
    sys::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32 | libc::AT_RECURSIVE as u32;

fn root() -> Result<OwnedFd, RootfsError> {
    nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| path_err("opening", "/", e))
}

/// The container's /dev/null, refused unless it is the real null device.
fn verified_devnull(root: &OwnedFd) -> Result<OwnedFd, RootfsError> {
    let fd = open_in_root(
        root.as_fd(),
        Path::new("/dev/null"),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
    )
    .map_err(|e| path_err("opening", "/dev/null", e))?;
    let st = fstat(&fd).map_err(|e| path_err("stat", "/dev/null", e))?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFCHR;
    if !is_chr || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(path_err(
            "refusing to mask with",
            "/dev/null (not the 1:3 character device)",
            Errno::EPERM,
        ));
    }
    Ok(fd)
}

pub(crate) fn mask(paths: &[String]) -> Result<(), RootfsError> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = root()?;
    let mut devnull = None;
    // Masked directories get clones of one detached, empty, read-only tmpfs: one
    // superblock for all, and no path through /proc to mount by.
    let mut empty = None;
    for p in paths {
        let target = match open_in_root(root.as_fd(), Path::new(p), OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(path_err("masking", p.as_str(), e)),
        };
        let st = fstat(&target).map_err(|e| path_err("masking", p.as_str(), e))?;
        let source = if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFDIR {
            match &empty {
                Some(e) => e,
                None => {
                    // The first goes on as it is; the others are clones of it once it is
                    // attached (older kernels clone only attached mounts).
                    let e = sys::empty_readonly_tmpfs()
                        .and_then(|e| sys::move_mount_fd(e.as_fd(), target.as_fd()).map(|()| e))
                        .map_err(|e| path_err("masking", p.as_str(), e))?;
                    empty = Some(e);
                    continue;
                }
            }
        } else {
            if devnull.is_none() {
                devnull = Some(verified_devnull(&root)?);
            }
            devnull.as_ref().expect("set above")
        };
        let tree = sys::open_tree(
            source.as_fd(),
            c"",
            sys::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32,
        )
        .map_err(|e| path_err("masking", p.as_str(), e))?;
        sys::move_mount_fd(tree.as_fd(), target.as_fd())
            .map_err(|e| path_err("masking", p.as_str(), e))?;
    }
    Ok(())
}

pub(crate) fn readonly(paths: &[String]) -> Result<(), RootfsError> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = root()?;
    for p in paths {
        let target = match open_in_root(root.as_fd(), Path::new(p), OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(path_err("making read-only", p.as_str(), e)),
        };
        let tree = sys::open_tree(target.as_fd(), c"", TREE_FLAGS)
            .map_err(|e| path_err("making read-only", p.as_str(), e))?;
        sys::mount_setattr(tree.as_fd(), true, sys::MOUNT_ATTR_RDONLY, 0, 0)
            .map_err(|e| path_err("making read-only", p.as_str(), e))?;
        sys::move_mount_fd(tree.as_fd(), target.as_fd())
            .map_err(|e| path_err("making read-only", p.as_str(), e))?;
    }
    Ok(())
}

/// root.readonly: remount / read-only, keeping the flags the kernel may have locked.
pub(crate) fn readonly_root() -> Result<(), RootfsError> {
    let locked = nix::sys::statvfs::statvfs("/")
        .map(|s| s.flags())
        .map_err(|e| path_err("statvfs", "/", e))?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    use nix::sys::statvfs::FsFlags;
    for (f, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if locked.contains(f) {
            flags |= m;
        }
    }
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(|e| path_err("remounting read-only", "/", e))
}
