//! Switching the root: pivot_root(".", ".") with the old root stacked underneath and then
//! detached (no temporary directory in the rootfs), or MS_MOVE + chroot for --no-pivot.

use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use super::{path_err, RootfsError};

pub(crate) fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    let e = |what: &'static str| move |e| path_err(what, rootfs.to_path_buf(), e);
    let old = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(e("open old root"))?;
    let new = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(e("open rootfs"))?;
    fchdir(&new).map_err(e("chdir to rootfs"))?;
    pivot_root(".", ".").map_err(e("pivot_root"))?;
    fchdir(&old).map_err(e("chdir to old root"))?;
    // The old root must not propagate its unmount back to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(e("make old root slave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(e("detach old root"))?;
    chdir("/").map_err(e("chdir /"))
}

pub(crate) fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let e = |what: &'static str| move |e| path_err(what, rootfs.to_path_buf(), e);
    chdir(rootfs).map_err(e("chdir to rootfs"))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(e("move rootfs to /"))?;
    chroot(".").map_err(e("chroot"))?;
    chdir("/").map_err(e("chdir /"))
}
