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
    hide_full_proc_sys(rootfs)?;
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

/// Without pivot_root the host's mounts stay in the container's mount namespace, under
/// its root: a whole (unmasked) procfs or sysfs among them would let the container mount
/// a fresh one in a user namespace of its own (the kernel allows that when a full
/// instance is visible in the namespace) and see through its masked paths. Each such
/// mount outside the rootfs is detached, or covered by an empty tmpfs where it cannot be,
/// as runc does.
fn hide_full_proc_sys(rootfs: &Path) -> Result<(), RootfsError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|err| {
        path_err(
            "read mountinfo",
            "/proc/self/mountinfo",
            nix::errno::Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    for mp in full_proc_sys(&info, rootfs) {
        let e = |what: &'static str| {
            let mp = mp.clone();
            move |e| path_err(what, mp, e)
        };
        // Our unmount must not propagate to the host.
        match mount(
            None::<&str>,
            &mp,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // Gone with a parent detached before it.
            Err(nix::errno::Errno::ENOENT) => continue,
            r => r.map_err(e("make slave"))?,
        }
        match umount2(&mp, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                &mp,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(e("cover"))?,
            Err(err) => return Err(e("detach")(err)),
        }
    }
    Ok(())
}

/// The mount points, from mountinfo's text, of whole procfs and sysfs instances (their
/// root is "/") outside `rootfs`.
fn full_proc_sys(info: &str, rootfs: &Path) -> Vec<std::path::PathBuf> {
    info.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let (root, mp, fstype) = (fields.get(3)?, fields.get(4)?, fields.get(sep + 1)?);
            let mp = std::path::PathBuf::from(unescape(mp));
            (*root == "/" && (*fstype == "proc" || *fstype == "sysfs") && !mp.starts_with(rootfs))
                .then_some(mp)
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_procfs_and_sysfs_outside_the_rootfs() {
        let info = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
23 1 0:22 / /sys rw - sysfs sysfs rw
24 22 0:23 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
25 1 0:21 /sys /mnt/procsys rw - proc proc rw
26 1 0:24 / /b/rootfs/proc rw - proc proc rw
27 1 0:21 / /with\\040space rw - proc proc rw
";
        let got = full_proc_sys(info, Path::new("/b/rootfs"));
        assert_eq!(
            got,
            [
                std::path::PathBuf::from("/proc"),
                "/sys".into(),
                "/with space".into()
            ]
        );
    }
}
