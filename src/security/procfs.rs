//! Writes to procfs that a container cannot redirect (CVE-2025-52881): the path is resolved
//! from the root of a real proc filesystem (procfs magic, root inode) without crossing a
//! mount or following any symlink, so a file bind-mounted over /proc/sys/... or
//! /proc/self/attr/... (from a shared mount, or an image) fails with EXDEV instead of
//! receiving the write.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// The inode of every procfs root (PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;
const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

/// Why a procfs path could not be opened safely.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProcError {
    #[error("/proc is not the root of a proc filesystem")]
    NotProc,
    #[error("/proc/{0}: crosses a mount (something is mounted over it)")]
    Overmounted(String),
    #[error("/proc/{0}: {1}")]
    Sys(String, String),
}

/// The container's /proc, verified to be a procfs root.
pub(crate) fn root() -> Result<OwnedFd, ProcError> {
    let fd = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| ProcError::Sys(String::new(), crate::error::errno_desc(e)))?;
    let fs = nix::sys::statfs::fstatfs(fd.as_fd())
        .map_err(|e| ProcError::Sys(String::new(), crate::error::errno_desc(e)))?;
    let st = nix::sys::stat::fstat(fd.as_fd())
        .map_err(|e| ProcError::Sys(String::new(), crate::error::errno_desc(e)))?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO {
        return Err(ProcError::NotProc);
    }
    Ok(fd)
}

/// Opens `rel` (relative to /proc) for writing through `root`.
pub(crate) fn open_write(root: &OwnedFd, rel: &str) -> Result<OwnedFd, ProcError> {
    let c = CString::new(rel).map_err(|_| ProcError::Sys(rel.into(), "invalid path".into()))?;
    crate::sys::openat2(
        root.as_fd(),
        &c,
        (OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_CLOEXEC).bits(),
        0,
        RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | crate::sys::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        Errno::EXDEV => ProcError::Overmounted(rel.into()),
        e => ProcError::Sys(rel.into(), crate::error::errno_desc(e)),
    })
}

/// Writes `value` to /proc/`rel` in one write(2), as procfs files expect.
pub(crate) fn write(root: &OwnedFd, rel: &str, value: &[u8]) -> Result<(), ProcError> {
    let fd = open_write(root, rel)?;
    nix::unistd::write(&fd, value)
        .map(drop)
        .map_err(|e| ProcError::Sys(rel.into(), crate::error::errno_desc(e)))
}
