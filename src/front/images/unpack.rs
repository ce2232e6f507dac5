//! Unpacking one layer into its own directory: a security boundary. Every entry is
//! created relative to a directory fd resolved inside the layer's root (openat2
//! RESOLVE_IN_ROOT through `rootfs::resolve`), the last component is never followed,
//! `..` and absolute names are confined lexically, hardlinks point only at entries of this
//! layer (or are copies of files of the image's lower layers), and a layer cannot forge
//! overlay metadata (`*.overlay.*` xattrs from the tar are dropped). OCI whiteouts become
//! the overlay's own: a 0:0 character device and `trusted.overlay.opaque=y` as root; a
//! zero-size file with `user.overlay.whiteout` in a directory marked
//! `user.overlay.opaque=x`, and `user.overlay.opaque=y`, rootless (overlayfs `userxattr`).

use std::ffi::{CString, OsStr};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::compress;
use super::tar::{Header, Kind, Reader};
use crate::front::digest::{Digest, Hashing};
use crate::rootfs::resolve;
use crate::sys::files as xf;

/// How container ids become ids on disk: `container..container+size` -> `host..`. Empty
/// means identity (root, or already inside the user namespace).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdMap {
    pub(crate) uids: Vec<IdRange>,
    pub(crate) gids: Vec<IdRange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdRange {
    pub(crate) container: u32,
    pub(crate) host: u32,
    pub(crate) size: u32,
}

impl IdMap {
    fn map(ranges: &[IdRange], id: u64) -> Option<u32> {
        if ranges.is_empty() {
            return u32::try_from(id).ok();
        }
        ranges.iter().find_map(|r| {
            let off = id.checked_sub(r.container as u64)?;
            (off < r.size as u64).then(|| r.host + off as u32)
        })
    }
    pub(crate) fn uid(&self, id: u64) -> Option<u32> {
        Self::map(&self.uids, id)
    }
    pub(crate) fn gid(&self, id: u64) -> Option<u32> {
        Self::map(&self.gids, id)
    }
}

/// How whiteouts and opaque directories are written, and what is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Privilege {
    /// 0:0 character devices and `trusted.overlay.*`; device nodes created.
    Root,
    /// `user.overlay.*` xattrs (overlayfs `userxattr`); device nodes skipped.
    Rootless,
}

pub(crate) struct Options<'a> {
    pub(crate) privilege: Privilege,
    pub(crate) ids: &'a IdMap,
    /// Diff directories of the image's lower layers, nearest first: hardlinks to their
    /// files become copies.
    pub(crate) lowers: &'a [PathBuf],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unpacked {
    /// sha256 and length of the uncompressed tar stream.
    pub(crate) diff_id: Digest,
    pub(crate) tar_size: u64,
    /// Bytes of regular file content.
    pub(crate) size: u64,
    pub(crate) skipped_devices: u32,
}

/// Unpacks the (compressed or not) layer `src` into the existing empty directory `dest`,
/// verifying the uncompressed stream against `expect` (the diff id) when given. On error
/// `dest` holds a partial tree: the caller removes it (it lives in a staging directory).
pub(crate) fn unpack(
    src: impl Read,
    dest: &Path,
    expect: Option<&Digest>,
    opts: &Options,
) -> Result<Unpacked> {
    let (_, plain) = compress::decompress(src)?;
    unpack_plain(plain, dest, expect, opts)
}

/// [`unpack`] of a tar stream already decompressed.
pub(crate) fn unpack_plain(
    plain: impl Read,
    dest: &Path,
    expect: Option<&Digest>,
    opts: &Options,
) -> Result<Unpacked> {
    let mut hashing = Hashing::new(plain);
    let root = nix::fcntl::open(
        dest,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", dest.display()))?;
    let lowers = opts
        .lowers
        .iter()
        .map(|p| {
            nix::fcntl::open(
                p.as_path(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut u = Unpacker {
        root: root.as_fd(),
        lowers: &lowers,
        opts,
        dirs: Vec::new(),
        size: 0,
        skipped_devices: 0,
        buf: vec![0u8; 128 * 1024],
        last_dir: None,
    };
    // The root's defaults until the tar's "./" entry (if any) says otherwise.
    let (ru, rg) = u.root_ids()?;
    let rootdir = resolve::reopen_dir(u.root)?;
    nix::unistd::fchown(&rootdir, Some(Uid::from_raw(ru)), Some(Gid::from_raw(rg)))?;
    nix::sys::stat::fchmod(&rootdir, Mode::from_bits_truncate(0o755))?;
    let mut tar = Reader::new(&mut hashing);
    while let Some(h) = tar.next()? {
        u.entry(&h, &mut tar.data())
            .with_context(|| format!("layer entry {:?}", h.path_lossy()))?;
    }
    // Whatever follows the end-of-archive block (the second block, record padding) is part
    // of the diff id.
    io::copy(&mut tar.into_inner(), &mut io::sink())?;
    let (diff_id, tar_size, _) = hashing.finish();
    if let Some(want) = expect {
        if &diff_id != want {
            bail!("layer content does not match its diff id: expected {want}, got {diff_id}");
        }
    }
    u.finish_dirs()?;
    Ok(Unpacked {
        diff_id,
        tar_size,
        size: u.size,
        skipped_devices: u.skipped_devices,
    })
}

struct DirMeta {
    rel: PathBuf,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, u32),
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    lowers: &'a [OwnedFd],
    opts: &'a Options<'a>,
    /// Directory metadata applied once everything below exists (mode may forbid writes,
    /// and creating entries changes the mtime).
    dirs: Vec<DirMeta>,
    size: u64,
    skipped_devices: u32,
    buf: Vec<u8>,
    /// The directory of the previous entry (entries come grouped by directory).
    last_dir: Option<(PathBuf, OwnedFd)>,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

impl Unpacker<'_> {
    fn ids(&self, h: &Header) -> Result<(u32, u32)> {
        let uid = self.opts.ids.uid(h.uid);
        let gid = self.opts.ids.gid(h.gid);
        match (uid, gid) {
            (Some(u), Some(g)) => Ok((u, g)),
            _ => bail!(
                "owner {}:{} is not mapped in the user namespace (not enough subordinate ids)",
                h.uid,
                h.gid
            ),
        }
    }

    fn root_ids(&self) -> Result<(u32, u32)> {
        match (self.opts.ids.uid(0), self.opts.ids.gid(0)) {
            (Some(u), Some(g)) => Ok((u, g)),
            _ => bail!("root is not mapped in the user namespace"),
        }
    }

    /// The directory `rel` of the layer opened for *at calls, walked one component at a
    /// time with O_NOFOLLOW from the root: a symlink (or a file) on the way is an error,
    /// never followed, and missing directories are created with root's mapped ownership.
    fn dir(&mut self, rel: &Path) -> Result<OwnedFd> {
        if let Some((p, fd)) = &self.last_dir {
            if p == rel {
                return Ok(fd.try_clone()?);
            }
        }
        let fd = walk(self.root, rel, Some(self.root_ids()?))?;
        self.last_dir = Some((rel.to_path_buf(), fd.try_clone()?));
        Ok(fd)
    }

    fn entry(&mut self, h: &Header, data: &mut dyn Read) -> Result<()> {
        let rel = confine(&h.path)?;
        let Some(name) = rel.file_name().map(|n| n.to_os_string()) else {
            // "./": the layer's root directory itself.
            if h.kind == Kind::Dir {
                let (uid, gid) = self.ids(h)?;
                self.dirs.push(DirMeta {
                    rel,
                    mode: h.mode,
                    uid,
                    gid,
                    mtime: (h.mtime, h.mtime_nsec),
                });
            }
            return Ok(());
        };
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let nb = name.as_bytes();
        if nb == OPAQUE {
            let dir = self.dir(&parent_rel)?;
            return self.mark_opaque(dir.as_fd(), b"y");
        }
        if let Some(target) = nb.strip_prefix(WHITEOUT_PREFIX) {
            if target.starts_with(WHITEOUT_PREFIX) || target.is_empty() {
                // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): no meaning for overlay.
                return Ok(());
            }
            let dir = self.dir(&parent_rel)?;
            return self.whiteout(dir.as_fd(), OsStr::from_bytes(target));
        }
        let parent = self.dir(&parent_rel)?;
        let pfd = parent.as_fd();
        let name = name.as_os_str();
        // A later entry replaces an earlier one of the same name, as tar does; an existing
        // directory stays when the new entry is a directory too.
        if self.clear(pfd, name, h.kind == Kind::Dir)? {
            let (uid, gid) = self.ids(h)?;
            self.dirs.push(DirMeta {
                rel,
                mode: h.mode,
                uid,
                gid,
                mtime: (h.mtime, h.mtime_nsec),
            });
            return self.xattrs(pfd, name, h);
        }
        match h.kind {
            Kind::Dir => {
                nix::sys::stat::mkdirat(pfd, name, Mode::from_bits_truncate(0o700))?;
                let (uid, gid) = self.ids(h)?;
                nix::unistd::fchownat(
                    pfd,
                    name,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
                self.xattrs(pfd, name, h)?;
                self.dirs.push(DirMeta {
                    rel,
                    mode: h.mode,
                    uid,
                    gid,
                    mtime: (h.mtime, h.mtime_nsec),
                });
            }
            Kind::File => {
                let f = nix::fcntl::openat(
                    pfd,
                    name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )?;
                let mut file = std::fs::File::from(f);
                let mut n = 0u64;
                loop {
                    let k = match data.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(k) => k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e.into()),
                    };
                    file.write_all(&self.buf[..k])?;
                    n += k as u64;
                }
                self.size += n;
                let (uid, gid) = self.ids(h)?;
                nix::unistd::fchown(&file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
                // After chown, which clears setuid/setgid.
                nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(h.mode))?;
                self.xattrs(pfd, name, h)?;
                let t = ts(h.mtime, h.mtime_nsec);
                nix::sys::stat::futimens(&file, &t, &t)?;
            }
            Kind::Symlink => {
                nix::unistd::symlinkat(OsStr::from_bytes(&h.link), pfd, name)?;
                self.meta_at(pfd, name, h, false)?;
            }
            Kind::HardLink => self.hardlink(pfd, name, h)?,
            Kind::Fifo => {
                nix::sys::stat::mknodat(
                    pfd,
                    name,
                    SFlag::S_IFIFO,
                    Mode::from_bits_truncate(0o600),
                    0,
                )?;
                self.meta_at(pfd, name, h, true)?;
            }
            Kind::Char | Kind::Block => {
                if self.opts.privilege == Privilege::Rootless {
                    self.skipped_devices += 1;
                    return Ok(());
                }
                let kind = if h.kind == Kind::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let dev = nix::sys::stat::makedev(h.devmajor as u64, h.devminor as u64);
                nix::sys::stat::mknodat(pfd, name, kind, Mode::from_bits_truncate(0o600), dev)?;
                self.meta_at(pfd, name, h, true)?;
            }
        }
        Ok(())
    }

    /// Owner, mode (not for symlinks), xattrs and mtime of a non-regular entry, by name.
    fn meta_at(&self, dir: BorrowedFd, name: &OsStr, h: &Header, chmod: bool) -> Result<()> {
        let (uid, gid) = self.ids(h)?;
        nix::unistd::fchownat(
            dir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if chmod {
            // Not a symlink (we just made it): fchmodat cannot be redirected.
            nix::sys::stat::fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(h.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )?;
        }
        self.xattrs(dir, name, h)?;
        let t = ts(h.mtime, h.mtime_nsec);
        nix::sys::stat::utimensat(
            dir,
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )?;
        Ok(())
    }

    fn xattrs(&self, dir: BorrowedFd, name: &OsStr, h: &Header) -> Result<()> {
        if h.xattrs.is_empty() {
            return Ok(());
        }
        let path = at_path(dir, name);
        for (k, v) in &h.xattrs {
            // A layer must not forge overlay metadata (redirects, metacopy, whiteouts).
            if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
                continue;
            }
            let Ok(key) = CString::new(k.clone()) else {
                continue;
            };
            match xf::lsetxattr(&path, &key, v) {
                Ok(()) => {}
                // user.* is not allowed on symlinks and special files; a filesystem may lack
                // xattrs; rootless cannot set trusted.* (podman ignores these too).
                Err(Errno::EPERM | Errno::EOPNOTSUPP)
                    if h.kind != Kind::File && h.kind != Kind::Dir
                        || self.opts.privilege == Privilege::Rootless
                        || !k.starts_with(b"security.") =>
                {
                    crate::logging::debug(&format!(
                        "xattr {} on {} not kept",
                        String::from_utf8_lossy(k),
                        h.path_lossy()
                    ));
                }
                Err(e) => bail!("set xattr {}: {e}", String::from_utf8_lossy(k)),
            }
        }
        Ok(())
    }

    /// Removes whatever is at `name` in `dir`; true if it is a directory that was kept.
    fn clear(&mut self, dir: BorrowedFd, name: &OsStr, keep_dir: bool) -> Result<bool> {
        let st = match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(false),
            r => r?,
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            if keep_dir {
                return Ok(true);
            }
            // The cached directory may be the one removed, or below it.
            self.last_dir = None;
            remove_tree_at(dir, name)?;
        } else {
            nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
        }
        Ok(false)
    }

    fn hardlink(&mut self, dir: BorrowedFd, name: &OsStr, h: &Header) -> Result<()> {
        let target = confine(&h.link)?;
        if target.as_os_str().is_empty() {
            bail!("hardlink to the layer's root");
        }
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match open_nofollow(self.root, &target, flags) {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(&fd)?;
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    bail!("hardlink to a directory {:?}", target);
                }
                // The fd was resolved inside the layer; linking through its /proc path
                // links exactly that inode (a symlink itself, never its target), and needs
                // no CAP_DAC_READ_SEARCH as AT_EMPTY_PATH would.
                let src = resolve::proc_fd_path(fd.as_fd());
                nix::unistd::linkat(
                    nix::fcntl::AT_FDCWD,
                    src.as_path(),
                    dir,
                    name,
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
                .with_context(|| format!("hardlink to {}", target.display()))?;
                return Ok(());
            }
            Err(Errno::ENOENT) => {}
            Err(e) => bail!("hardlink target {}: {e}", target.display()),
        }
        for lower in self.lowers {
            match open_nofollow(
                lower.as_fd(),
                &target,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            ) {
                Ok(fd) => return self.copy_from_lower(fd, dir, name, &target),
                Err(Errno::ENOENT) => continue,
                Err(e) => bail!("hardlink target {} in a lower layer: {e}", target.display()),
            }
        }
        bail!(
            "hardlink target {} is not in this layer or a lower layer of the image",
            target.display()
        )
    }

    fn copy_from_lower(
        &mut self,
        src: OwnedFd,
        dir: BorrowedFd,
        name: &OsStr,
        target: &Path,
    ) -> Result<()> {
        let st = nix::sys::stat::fstat(&src)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            bail!(
                "hardlink target {} in a lower layer is not a regular file",
                target.display()
            );
        }
        let f = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        let mut out = std::fs::File::from(f);
        let mut input = std::fs::File::from(src);
        self.size += io::copy(&mut input, &mut out)?;
        nix::unistd::fchown(
            &out,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        )?;
        nix::sys::stat::fchmod(&out, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
        let t = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
        nix::sys::stat::futimens(&out, &t, &t)?;
        Ok(())
    }

    fn whiteout(&mut self, dir: BorrowedFd, name: &OsStr) -> Result<()> {
        self.clear(dir, name, false)?;
        let (uid, gid) = self.root_ids()?;
        match self.opts.privilege {
            Privilege::Root => {
                nix::sys::stat::mknodat(dir, name, SFlag::S_IFCHR, Mode::empty(), 0)
                    .context("create whiteout")?;
            }
            Privilege::Rootless => {
                let f = nix::fcntl::openat(
                    dir,
                    name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                drop(f);
                xf::lsetxattr(&at_path(dir, name), c"user.overlay.whiteout", b"y")
                    .context("set user.overlay.whiteout")?;
                // overlayfs only looks for xattr whiteouts in directories marked so.
                let here = at_path(dir, OsStr::new("."));
                if xf::lgetxattr(&here, c"user.overlay.opaque").ok().as_deref() != Some(b"y") {
                    xf::lsetxattr(&here, c"user.overlay.opaque", b"x")
                        .context("set user.overlay.opaque")?;
                }
            }
        }
        nix::unistd::fchownat(
            dir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }

    fn mark_opaque(&self, dir: BorrowedFd, value: &[u8]) -> Result<()> {
        let key = match self.opts.privilege {
            Privilege::Root => c"trusted.overlay.opaque",
            Privilege::Rootless => c"user.overlay.opaque",
        };
        xf::lsetxattr(&at_path(dir, OsStr::new(".")), key, value)
            .with_context(|| format!("set {}", key.to_string_lossy()))
    }

    fn finish_dirs(&mut self) -> Result<()> {
        // Deepest first, so that setting a parent's mtime comes after its children changed.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.components().count()));
        for d in dirs {
            let fd = match walk(self.root, &d.rel, None) {
                Ok(fd) => fd,
                // Replaced by a later entry or removed by a whiteout of the same layer.
                Err(_) => continue,
            };
            nix::unistd::fchown(&fd, Some(Uid::from_raw(d.uid)), Some(Gid::from_raw(d.gid)))?;
            nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(d.mode))?;
            let t = ts(d.mtime.0, d.mtime.1);
            nix::sys::stat::futimens(&fd, &t, &t)?;
        }
        Ok(())
    }
}

/// An entry's name relative to the layer root: absolute names are taken as relative,
/// `.` and `..` resolved lexically; a name climbing above the root is refused (Docker's
/// "breakout" error) rather than silently moved.
pub(crate) fn confine(name: &[u8]) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(name)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            // The guard pops: a ".." that has nothing left to pop climbs out.
            Component::ParentDir if !out.pop() => {
                bail!(
                    "{:?} points outside its root",
                    String::from_utf8_lossy(name)
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Opens directory `rel` below `root` one component at a time, never following a
/// symlink; creates missing components owned by `create` (uid, gid) when given.
fn walk(root: BorrowedFd, rel: &Path, create: Option<(u32, u32)>) -> Result<OwnedFd> {
    walk_raw(root, rel, create).map_err(|(e, at)| match e {
        Errno::ELOOP => anyhow!(
            "{} is a symlink: refusing to write through it",
            at.display()
        ),
        Errno::ENOTDIR => anyhow!("{} is not a directory", at.display()),
        e => anyhow!("open {}: {e}", at.display()),
    })
}

fn walk_raw(
    root: BorrowedFd,
    rel: &Path,
    create: Option<(u32, u32)>,
) -> std::result::Result<OwnedFd, (Errno, PathBuf)> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut sofar = PathBuf::new();
    let mut fd =
        nix::fcntl::openat(root, ".", flags, Mode::empty()).map_err(|e| (e, sofar.clone()))?;
    for c in rel.components() {
        let Component::Normal(n) = c else { continue };
        sofar.push(n);
        let mut next = nix::fcntl::openat(&fd, n, flags, Mode::empty());
        if let (Err(Errno::ENOENT), Some((u, g))) = (next.as_ref().map(|_| ()), create) {
            match nix::sys::stat::mkdirat(&fd, n, Mode::from_bits_truncate(0o755)) {
                Ok(()) => nix::unistd::fchownat(
                    &fd,
                    n,
                    Some(Uid::from_raw(u)),
                    Some(Gid::from_raw(g)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| (e, sofar.clone()))?,
                // A dangling symlink: the open below refuses it.
                Err(Errno::EEXIST) => {}
                Err(e) => return Err((e, sofar)),
            }
            next = nix::fcntl::openat(&fd, n, flags, Mode::empty());
        }
        fd = match next {
            Ok(f) => f,
            // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: tell the two apart.
            Err(Errno::ENOTDIR)
                if nix::sys::stat::fstatat(&fd, n, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK) =>
            {
                return Err((Errno::ELOOP, sofar))
            }
            Err(e) => return Err((e, sofar)),
        };
    }
    Ok(fd)
}

/// Opens `rel` below `root` (directories walked without following symlinks; the last
/// component as `flags` say).
fn open_nofollow(root: BorrowedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(Errno::ENOENT);
    };
    let dir = walk_raw(root, parent, None).map_err(|(e, _)| e)?;
    nix::fcntl::openat(&dir, name, flags | OFlag::O_NOFOLLOW, Mode::empty())
}

fn ts(secs: i64, nsec: u32) -> TimeSpec {
    TimeSpec::new(secs, nsec as i64)
}

/// `/proc/self/fd/<dir>/<name>`: a path whose only symlink is the magic link to a
/// directory we resolved ourselves; the last component is not followed by l*xattr.
fn at_path(dir: BorrowedFd, name: &OsStr) -> CString {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    CString::new(p).unwrap_or_else(|_| CString::from(c"/nonexistent"))
}

/// rm -r of `name` in `dir`, every step by fd (no path is ever followed).
pub(crate) fn remove_tree_at(dir: BorrowedFd, name: &OsStr) -> Result<()> {
    match nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // A directory we cannot write (mode 0555 from a layer) still has to go.
    let _ = nix::sys::stat::fchmod(&sub, Mode::from_bits_truncate(0o700));
    let names: Vec<std::ffi::OsString> = {
        let d = nix::dir::Dir::from_fd(sub.try_clone()?)?;
        let mut v = Vec::new();
        for e in d.into_iter() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                v.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        v
    };
    for n in names {
        remove_tree_at(sub.as_fd(), &n)?;
    }
    nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::RemoveDir)?;
    Ok(())
}

/// rm -rf of a path we own (a staging directory, a layer being deleted).
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("refusing to remove {}", path.display());
    };
    let dir = match nix::fcntl::open(
        parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r?,
    };
    remove_tree_at(dir.as_fd(), name).with_context(|| format!("remove {}", path.display()))
}
