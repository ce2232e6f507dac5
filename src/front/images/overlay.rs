//! A container's root filesystem: an overlay of the image's layers (top first) under the
//! container's own upper and work directories. The new mount API passes each layer as its
//! own `lowerdir+` (no option-length limit, no escaping of `:` and `,`); kernels before
//! 6.8 get the classic option string with the store's short `l/` links. Where overlay
//! cannot be mounted at all (a backing filesystem it refuses) the layers are copied into
//! the target instead, with one warning.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::store::{short_link, ImageRecord, Store};
use super::unpack::remove_tree_at;
use crate::front::digest::Digest;
use crate::sys::files::{self as xf, FsParam};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootfsKind {
    Overlay,
    /// The layers were copied into the target (overlay could not be mounted).
    Copy,
}

fn lowers(store: &Store, image: &ImageRecord) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = image
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_dir(&l.diff_id))
        .collect();
    for p in &v {
        if !p.is_dir() {
            bail!(
                "layer {} of image {} is missing from the store",
                p.display(),
                image.id.short()
            );
        }
    }
    if v.is_empty() {
        v.push(empty_dir(store)?);
    }
    Ok(v)
}

fn empty_dir(store: &Store) -> Result<PathBuf> {
    let p = store.dir().join("empty");
    match std::fs::create_dir(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).context("create the empty layer"),
    }
    Ok(p)
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| anyhow!("path {} contains NUL", p.display()))
}

/// Mounts an overlay of `lowers` (top first) with optional upper/work at `target`.
fn mount_overlay(
    store: &Store,
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
    readonly: bool,
    volatile: bool,
) -> Result<()> {
    let lower_c = lowers
        .iter()
        .map(|p| cpath(p))
        .collect::<Result<Vec<_>>>()?;
    let (up_c, work_c) = match upper {
        Some((u, w)) => (Some(cpath(u)?), Some(cpath(w)?)),
        None => (None, None),
    };
    let mut params: Vec<FsParam> = lower_c
        .iter()
        .map(|l| FsParam::String(c"lowerdir+", l))
        .collect();
    if let (Some(u), Some(w)) = (&up_c, &work_c) {
        params.push(FsParam::String(c"upperdir", u));
        params.push(FsParam::String(c"workdir", w));
    }
    if store.rootless() {
        params.push(FsParam::Flag(c"userxattr"));
    }
    if volatile {
        params.push(FsParam::Flag(c"volatile"));
    }
    let attr = if readonly {
        crate::sys::MOUNT_ATTR_RDONLY
    } else {
        0
    };
    let new_api = match new_api_refused() {
        Some(e) => e,
        None => match xf::fs_mount(c"overlay", &params, attr) {
            Ok(fd) => {
                let t = nix::fcntl::open(
                    target,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .with_context(|| format!("open {}", target.display()))?;
                crate::sys::move_mount_fd(fd.as_fd(), t.as_fd())
                    .with_context(|| format!("mount overlay on {}", target.display()))?;
                return Ok(());
            }
            // Kernels before 6.8 know no `lowerdir+`; without fsopen (before 5.2, or
            // refused by a seccomp profile) only mount(2) is left.
            Err((e, msg))
                if e == Errno::ENOSYS || e == Errno::EPERM || msg.contains("lowerdir+") =>
            {
                (e, msg)
            }
            Err(e) => bail!("mount overlay on {}: {}", target.display(), fs_error(e)),
        },
    };
    // The classic option string names each layer by its short link relative to the
    // store (as containers-storage does), so that about 130 layers fit in the one page
    // the kernel accepts. Relative paths resolve against the cwd: a thread of our own
    // with a private cwd makes the call, so no other thread's cwd changes.
    let mut data = String::from("lowerdir=");
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            data.push(':');
        }
        let short = l
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(Digest::from_hex)
            .filter(|_| l.starts_with(store.dir()))
            .map(|d| format!("l/{}", short_link(&d)))
            .unwrap_or_else(|| l.to_string_lossy().into_owned());
        data.push_str(&short);
    }
    if let Some((u, w)) = upper {
        let (u, w) = (std::path::absolute(u)?, std::path::absolute(w)?);
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    if store.rootless() {
        data.push_str(",userxattr");
    }
    if volatile {
        data.push_str(",volatile");
    }
    if data.len() >= 4096 {
        bail!(
            "overlay: {} (and the mount options for {} layers exceed one page)",
            fs_error(new_api),
            lowers.len()
        );
    }
    let flags = if readonly {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    let target_abs = std::path::absolute(target)?;
    let dir = store.dir().to_path_buf();
    let r = std::thread::scope(|sc| {
        sc.spawn(|| -> nix::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
            nix::unistd::chdir(&dir)?;
            nix::mount::mount(
                Some("overlay"),
                &target_abs,
                Some("overlay"),
                flags,
                Some(data.as_str()),
            )
        })
        .join()
        .unwrap_or(Err(Errno::EINTR))
    });
    r.map_err(|e| {
        anyhow!(
            "mount overlay on {}: {e} ({})",
            target.display(),
            fs_error(new_api)
        )
    })
}

#[cfg(test)]
thread_local! {
    /// Tests take the mount(2) path on their own thread, as on a kernel before 6.8.
    pub(crate) static FORCE_LEGACY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn new_api_refused() -> Option<(Errno, String)> {
    #[cfg(test)]
    if FORCE_LEGACY.with(|f| f.get()) {
        return Some((
            Errno::EINVAL,
            "overlay: Unknown parameter 'lowerdir+'".into(),
        ));
    }
    None
}

fn fs_error((e, msg): (Errno, String)) -> String {
    if msg.is_empty() {
        e.to_string()
    } else {
        format!("{e}: {msg}")
    }
}

/// The container's root filesystem at `target`: an overlay of the image's layers with
/// `upper` and `work` (empty directories on one filesystem), or a copy of the layers
/// when overlay cannot be mounted (one warning).
pub(crate) fn mount_rootfs(
    store: &Store,
    image: &ImageRecord,
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<RootfsKind> {
    mount_rootfs_with(store, image, None, upper, work, target, false)
}

/// [`mount_rootfs`], `volatile` for a root filesystem thrown away with its container
/// (`--rm`): overlay then never syncs the upper filesystem, which it otherwise does
/// whole (every dirty page of the disk under the store, not only the container's) when
/// the last mount of it goes. A volatile mount leaves `work/incompat/volatile` behind,
/// which makes any later mount of the same directories fail; such a container's content
/// does not outlive a crash anyway, so the marker of an earlier mount is removed first.
/// Kernels without the option (before 5.10) mount as before. `top`: a layer of the
/// container's own above the image's (overlay only: a copy leaves it out).
pub(crate) fn mount_rootfs_with(
    store: &Store,
    image: &ImageRecord,
    top: Option<&Path>,
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<RootfsKind> {
    let image_lowers = lowers(store, image)?;
    let lowers: Vec<PathBuf> = top
        .map(Path::to_path_buf)
        .into_iter()
        .chain(image_lowers.iter().cloned())
        .collect();
    // No error made up front: with RUST_BACKTRACE set, each anyhow error made costs a
    // backtrace (about a millisecond here) even when it is thrown away.
    let volatile_mounted = volatile && {
        // The marker holds a `dirty` file: an earlier volatile mount (a `cp` into a
        // created container) would otherwise make every later mount fail.
        let marker = work.join("work/incompat/volatile");
        let _ = std::fs::remove_file(marker.join("dirty"));
        let _ = std::fs::remove_dir(&marker);
        mount_overlay(store, &lowers, Some((upper, work)), target, false, true).is_ok()
    };
    let r = if volatile_mounted {
        Ok(())
    } else {
        mount_overlay(store, &lowers, Some((upper, work)), target, false, false)
    };
    match r {
        Ok(()) => Ok(RootfsKind::Overlay),
        Err(e) => {
            crate::logging::warn(&format!(
                "{e:#}: copying the image's layers into {} instead",
                target.display()
            ));
            copy_layers(&image_lowers, target)?;
            Ok(RootfsKind::Copy)
        }
    }
}

/// Copies layers (top first, as overlay takes them) into `target` applying whiteouts and
/// opaque directories: what the overlay would show. Every step is by fd; nothing in a
/// layer or in the target is followed.
pub(crate) fn copy_layers(lowers: &[PathBuf], target: &Path) -> Result<()> {
    let dst = open_dir(None, target.as_os_str())?;
    for layer in lowers.iter().rev() {
        let src = open_dir(None, layer.as_os_str())?;
        copy_dir(src.as_fd(), dst.as_fd()).with_context(|| format!("copy {}", layer.display()))?;
    }
    Ok(())
}

fn open_dir(at: Option<BorrowedFd>, name: &OsStr) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let r = match at {
        Some(d) => nix::fcntl::openat(d, name, flags, Mode::empty()),
        None => nix::fcntl::open(Path::new(name), flags, Mode::empty()),
    };
    r.with_context(|| format!("open {}", Path::new(name).display()))
}

fn at_path(dir: BorrowedFd, name: &OsStr) -> CString {
    use std::os::fd::AsRawFd;
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    CString::new(p).unwrap_or_else(|_| CString::from(c"/nonexistent"))
}

fn xattr_is(dir: BorrowedFd, name: &OsStr, key: &str, want: &[u8]) -> bool {
    [
        format!("trusted.overlay.{key}"),
        format!("user.overlay.{key}"),
    ]
    .iter()
    .any(|k| {
        CString::new(k.as_str())
            .ok()
            .and_then(|k| xf::lgetxattr(&at_path(dir, name), &k).ok())
            .is_some_and(|v| want.is_empty() || v == want)
    })
}

fn entries(dir: BorrowedFd) -> Result<Vec<std::ffi::OsString>> {
    let d = nix::dir::Dir::from_fd(nix::unistd::dup(dir)?)?;
    let mut v = Vec::new();
    for e in d.into_iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            v.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(v)
}

pub(crate) fn copy_dir(src: BorrowedFd, dst: BorrowedFd) -> Result<()> {
    for name in entries(src)? {
        let name = name.as_os_str();
        let st = nix::sys::stat::fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let fmt = st.st_mode & libc::S_IFMT;
        let whiteout = (fmt == libc::S_IFCHR && st.st_rdev == 0)
            || (fmt == libc::S_IFREG && st.st_size == 0 && xattr_is(src, name, "whiteout", b""));
        if whiteout {
            remove_tree_at(dst, name)?;
            continue;
        }
        let existing = nix::sys::stat::fstatat(dst, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        if fmt == libc::S_IFDIR {
            let keep = existing.is_some_and(|e| e.st_mode & libc::S_IFMT == libc::S_IFDIR)
                && !xattr_is(src, name, "opaque", b"y");
            if !keep {
                remove_tree_at(dst, name)?;
                nix::sys::stat::mkdirat(dst, name, Mode::from_bits_truncate(0o700))?;
            }
            let s = open_dir(Some(src), name)?;
            let d = open_dir(Some(dst), name)?;
            copy_dir(s.as_fd(), d.as_fd())?;
            set_meta(src, dst, name, &st, true)?;
            continue;
        }
        if existing.is_some() {
            remove_tree_at(dst, name)?;
        }
        match fmt {
            libc::S_IFREG => {
                let s = nix::fcntl::openat(
                    src,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                let d = nix::fcntl::openat(
                    dst,
                    name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )?;
                std::io::copy(&mut std::fs::File::from(s), &mut std::fs::File::from(d))?;
            }
            libc::S_IFLNK => {
                let t = nix::fcntl::readlinkat(src, name)?;
                nix::unistd::symlinkat(t.as_os_str(), dst, name)?;
            }
            libc::S_IFIFO | libc::S_IFCHR | libc::S_IFBLK | libc::S_IFSOCK => {
                let kind = SFlag::from_bits_truncate(fmt);
                nix::sys::stat::mknodat(
                    dst,
                    name,
                    kind,
                    Mode::from_bits_truncate(0o600),
                    st.st_rdev,
                )?;
            }
            _ => continue,
        }
        set_meta(src, dst, name, &st, fmt != libc::S_IFLNK)?;
    }
    Ok(())
}

fn set_meta(
    src: BorrowedFd,
    dir: BorrowedFd,
    name: &OsStr,
    st: &libc::stat,
    not_symlink: bool,
) -> Result<()> {
    nix::unistd::fchownat(
        dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if not_symlink {
        // After chown (which clears setuid), and before xattrs: security.capability is
        // also cleared by chown.
        nix::sys::stat::fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(st.st_mode & 0o7777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
        let (from, to) = (at_path(src, name), at_path(dir, name));
        for key in xf::llistxattr(&from).unwrap_or_default() {
            let k = key.as_bytes();
            if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
                continue;
            }
            if let Ok(v) = xf::lgetxattr(&from, &key) {
                xf::lsetxattr(&to, &key, &v)
                    .with_context(|| format!("copy xattr {}", key.to_string_lossy()))?;
            }
        }
    }
    let t = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    nix::sys::stat::utimensat(
        dir,
        name,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

/// Whether the mount table lists `path` as a mount point (this thread's view: a thread
/// may have its own mount namespace).
fn is_mounted(path: &Path) -> bool {
    let Ok(mi) = std::fs::read_to_string("/proc/thread-self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    mi.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mountinfo(m) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mount_point(store: &Store, id: &Digest) -> PathBuf {
    store.dir().join("mounts").join(id.hex()).join("merged")
}

/// `image mount` (Podman): the image's layers mounted read-only; returns the path (the
/// same path again when already mounted).
pub(crate) fn image_mount(store: &Store, image: &ImageRecord) -> Result<PathBuf> {
    let target = mount_point(store, &image.id);
    if is_mounted(&target) {
        return Ok(target);
    }
    std::fs::create_dir_all(&target).with_context(|| format!("create {}", target.display()))?;
    let mut lowers = lowers(store, image)?;
    // Without an upper directory overlay wants two lower layers.
    if lowers.len() == 1 {
        lowers.push(empty_dir(store)?);
    }
    if let Err(e) = mount_overlay(store, &lowers, None, &target, true, false) {
        let _ = std::fs::remove_dir(&target);
        let _ = std::fs::remove_dir(target.parent().unwrap_or(&target));
        return Err(e);
    }
    Ok(target)
}

/// `image unmount`: false when the image was not mounted.
pub(crate) fn image_unmount(store: &Store, id: &Digest) -> Result<bool> {
    let target = mount_point(store, id);
    if !is_mounted(&target) {
        return Ok(false);
    }
    nix::mount::umount2(&target, MntFlags::empty())
        .with_context(|| format!("unmount {}", target.display()))?;
    let _ = std::fs::remove_dir(&target);
    let _ = std::fs::remove_dir(target.parent().unwrap_or(&target));
    Ok(true)
}

/// The images mounted with `image mount`, by id.
pub(crate) fn mounted_images(store: &Store) -> Vec<(Digest, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(store.dir().join("mounts")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let id = Digest::from_hex(e.file_name().to_str()?)?;
            let p = e.path().join("merged");
            is_mounted(&p).then_some((id, p))
        })
        .collect()
}

/// Reads the file `rel` (e.g. `etc/passwd`) as the overlay of `layers` (top first) would
/// show it, without mounting anything: the topmost layer that has it wins; a whiteout, or
/// an opaque directory above it, hides it. Up to `limit` bytes. Symlinks are followed only
/// inside the layer that holds the name (through the in-root resolver); a name reached
/// through a symlinked directory is not found.
pub(crate) fn read_layered(layers: &[PathBuf], rel: &str, limit: u64) -> Option<Vec<u8>> {
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    if comps.is_empty() || comps.iter().any(|c| *c == "." || *c == "..") {
        return None;
    }
    for layer in layers {
        match read_in_layer(layer, rel, &comps, limit) {
            Layered::Found(b) => return Some(b),
            Layered::Hidden => return None,
            Layered::Absent => {}
        }
    }
    None
}

enum Layered {
    Found(Vec<u8>),
    /// A whiteout or an opaque directory: lower layers do not count.
    Hidden,
    Absent,
}

fn read_in_layer(layer: &Path, rel: &str, comps: &[&str], limit: u64) -> Layered {
    use std::io::Read;
    let path_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(root) = nix::fcntl::open(layer, path_flags, Mode::empty()) else {
        return Layered::Absent;
    };
    let mut dir: Option<OwnedFd> = None;
    let mut opaque_above = false;
    for (i, c) in comps.iter().enumerate() {
        let at = dir.as_ref().map_or(root.as_fd(), |d| d.as_fd());
        let st = match nix::sys::stat::fstatat(at, *c, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(_) if opaque_above => return Layered::Hidden,
            Err(_) => return Layered::Absent,
        };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if is_whiteout_entry(at, OsStr::new(c), kind, st.st_rdev, st.st_size) {
            return Layered::Hidden;
        }
        if i + 1 == comps.len() {
            if kind != SFlag::S_IFREG && kind != SFlag::S_IFLNK {
                return Layered::Hidden;
            }
            let fd = match crate::rootfs::resolve::open_in_root(
                root.as_fd(),
                Path::new(rel),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            ) {
                Ok(fd) => fd,
                Err(_) => return Layered::Hidden,
            };
            let mut b = Vec::new();
            return match std::fs::File::from(fd).take(limit).read_to_end(&mut b) {
                Ok(_) => Layered::Found(b),
                Err(_) => Layered::Hidden,
            };
        }
        if kind != SFlag::S_IFDIR {
            // A file (or a symlink) where a directory is wanted hides what lies below.
            return Layered::Hidden;
        }
        let Ok(next) = nix::fcntl::openat(at, *c, path_flags, Mode::empty()) else {
            return Layered::Hidden;
        };
        let here = at_fd_path(next.as_fd());
        for attr in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
            if xf::lgetxattr(&here, attr).ok().as_deref() == Some(b"y") {
                opaque_above = true;
            }
        }
        dir = Some(next);
    }
    Layered::Absent
}

fn at_fd_path(fd: BorrowedFd) -> CString {
    use std::os::fd::AsRawFd;
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// Root's whiteout (a 0:0 character device) or the rootless one (an empty file marked
/// `user.overlay.whiteout`).
fn is_whiteout_entry(dir: BorrowedFd, name: &OsStr, kind: SFlag, rdev: u64, size: i64) -> bool {
    use std::os::fd::AsRawFd;
    if kind == SFlag::S_IFCHR && rdev == 0 {
        return true;
    }
    if kind == SFlag::S_IFREG && size == 0 {
        let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        p.extend_from_slice(name.as_bytes());
        if let Ok(p) = CString::new(p) {
            return xf::lgetxattr(&p, c"user.overlay.whiteout").is_ok();
        }
    }
    false
}
