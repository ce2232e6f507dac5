//! Every path that comes from a bundle is resolved here, inside the rootfs: openat2 with
//! RESOLVE_IN_ROOT treats the rootfs as "/", so symlinks and ".." cannot climb out of it
//! (CVE-2021-30465, CVE-2024-45310). Directories are created one component at a time,
//! each step re-resolved in the root.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::sys;

const RESOLVE: u64 = sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS;

/// `path` relative to the root, normalised lexically (".." at the top stays at the top,
/// as the kernel does for RESOLVE_IN_ROOT).
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| CString::from(c"\u{1}invalid"))
}

/// Opens `path` inside `root`.
pub(crate) fn open_in_root(root: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = clean(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    sys::openat2(root, &cstr(&rel), flags.bits(), 0, RESOLVE)
}

/// mkdir -p inside `root`; returns an O_PATH fd of the final directory.
pub(crate) fn mkdir_all_in_root(root: BorrowedFd, path: &Path, mode: u32) -> nix::Result<OwnedFd> {
    let rel = clean(path);
    // Most destinations already exist: one lookup instead of one per component; a missing
    // one usually lacks only its last component (parent found in one more lookup).
    match open_in_root(root, &rel, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(Errno::ENOENT);
    };
    let dir = mkdir_all_in_root(root, parent, mode)?;
    // The parent fd was itself resolved in the root, so creating the entry relative to it
    // cannot land outside. EEXIST with the lookup above failing is a dangling symlink:
    // the lookup below fails the same way, and nothing is created through it.
    match nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, &rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// The parent directory of `rel` (created if missing) opened for *at calls, and the last
/// component's name.
fn parent_in_root<'p>(
    root: BorrowedFd,
    rel: &'p Path,
) -> nix::Result<(OwnedFd, &'p std::ffi::OsStr)> {
    let name = rel.file_name().ok_or(Errno::EINVAL)?;
    let dir = mkdir_all_in_root(root, rel.parent().unwrap_or(Path::new("")), 0o755)?;
    let dir = sys::openat2(
        dir.as_fd(),
        c".",
        (OFlag::O_DIRECTORY | OFlag::O_RDONLY).bits(),
        0,
        0,
    )?;
    Ok((dir, name))
}

/// Creates an empty regular file (and its parents) inside `root` if nothing is there yet;
/// returns an O_PATH fd of whatever is there (a mount target for a file bind).
pub(crate) fn create_file_in_root(root: BorrowedFd, path: &Path) -> nix::Result<OwnedFd> {
    let rel = clean(path);
    match open_in_root(root, &rel, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let (dir, name) = parent_in_root(root, &rel)?;
    match nix::fcntl::openat(
        dir.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, &rel, OFlag::O_PATH)
}

/// Replaces whatever non-directory sits at `path` inside `root` (an image's symlink, a
/// stale node) with a new empty regular file and returns an fd of exactly that file: a
/// mount target that no symlink planted in the image can redirect (CVE-2025-52565).
pub(crate) fn fresh_file_in_root(root: BorrowedFd, path: &Path) -> nix::Result<OwnedFd> {
    let rel = clean(path);
    let (dir, name) = parent_in_root(root, &rel)?;
    match nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    nix::fcntl::openat(
        dir.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
}

/// The `/proc/self/fd/N` path of an fd, for the old mount API (the kernel follows the
/// magic link to the exact dentry we resolved, not to whatever the path says now).
pub(crate) fn proc_fd_path(fd: BorrowedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-resolve-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("root")).unwrap();
        d
    }

    fn rootfd(d: &Path) -> OwnedFd {
        nix::fcntl::open(
            &d.join("root"),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("/a/../../b/./c")), PathBuf::from("b/c"));
        assert_eq!(clean(Path::new("../../etc")), PathBuf::from("etc"));
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let d = tmp("sym");
        fs::create_dir_all(d.join("outside")).unwrap();
        fs::create_dir_all(d.join("root/outside")).unwrap();
        symlink("/outside-target", d.join("root/abs")).unwrap();
        symlink("../../../outside", d.join("root/rel")).unwrap();
        let root = rootfd(&d);
        // A dangling symlink is refused rather than followed by a create.
        assert_eq!(
            mkdir_all_in_root(root.as_fd(), Path::new("/abs/x"), 0o755).unwrap_err(),
            Errno::ENOENT
        );
        fs::create_dir(d.join("root/outside-target")).unwrap();
        mkdir_all_in_root(root.as_fd(), Path::new("/abs/x"), 0o755).unwrap();
        mkdir_all_in_root(root.as_fd(), Path::new("/rel/y"), 0o755).unwrap();
        mkdir_all_in_root(root.as_fd(), Path::new("/../../z"), 0o755).unwrap();
        assert!(d.join("root/outside-target/x").is_dir());
        assert!(d.join("root/outside/y").is_dir());
        assert!(d.join("root/z").is_dir());
        assert!(!d.join("outside/y").exists());
        assert!(!Path::new("/outside-target").exists());
        create_file_in_root(root.as_fd(), Path::new("/rel/f")).unwrap();
        assert!(d.join("root/outside/f").is_file());
        fs::remove_dir_all(&d).unwrap();
    }
}
