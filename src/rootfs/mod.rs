//! The container's filesystem view: mounts, /dev, pivot_root, masked and read-only paths.

pub(crate) mod dev;
pub(crate) mod idmap;
pub(crate) mod mounts;
pub(crate) mod paths;
pub(crate) mod pivot;
pub(crate) mod resolve;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RootfsError {
    #[error("mounts[{index}] ({}): {msg}", destination.display())]
    Mount {
        index: usize,
        destination: PathBuf,
        msg: String,
    },
    #[error("{what} {}: {msg}", path.display())]
    Path {
        what: &'static str,
        path: PathBuf,
        msg: String,
    },
}

pub(crate) fn path_err(
    what: &'static str,
    path: impl Into<PathBuf>,
    e: nix::errno::Errno,
) -> RootfsError {
    RootfsError::Path {
        what,
        path: path.into(),
        msg: crate::error::errno_desc(e),
    }
}
