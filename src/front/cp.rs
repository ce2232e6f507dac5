//! A container's filesystem from the outside: `cp` in both directions, `export`, `diff`.
//!
//! The container's root is a directory fd; every path in it is resolved with the
//! symlink-safe resolver (`rootfs::resolve`: openat2 RESOLVE_IN_ROOT), so a symlink the
//! container made can only ever lead to another place inside the container, never to a
//! host path. Trees are walked by fd, never following a symlink below the top, and copied
//! as a tar stream (what `-` reads and writes); the extractor creates every entry with
//! `*at` calls in a parent directory resolved inside its root, and never follows the last
//! component.
//!
//! Where the root comes from: for `cp`, a running container's root is its init's
//! (`/proc/<init>/root`: its volumes and binds mounted, as its processes see them); for
//! `export`, its overlay alone, mounted only in its monitor's private mount namespace and
//! reached through `/proc/<monitor>/root`. A stopped one's is mounted here (with its
//! volumes and binds, for `cp`), in a mount namespace this process makes private to
//! itself first (the host's never sees it, and it is gone when this process ends), under
//! the container's lock so that a start waits; `--rootfs` containers are their directory.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use crate::front::containers::{Container, Live, Lock, OverlayDirs, Store};
use crate::front::images::tar::{self, Header, Kind};
use crate::front::monitor::rootfs::Mounted;
use crate::rootfs::resolve;

/// A container's root filesystem, open for the length of one command.
pub(crate) struct Rootfs {
    pub(crate) fd: OwnedFd,
    _mounted: Option<Mounted>,
    _lock: Option<Lock>,
}

fn open_dir(p: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| anyhow!("{}: {}", p.display(), crate::error::errno_desc(e)))
}

/// Opens the container's root filesystem (see the module's note for how). For a stopped
/// container the value holds its lock (and its mount) until dropped. `mounts`: of a
/// running container, its root as its own processes see it (volumes, binds, tmpfs
/// mounted on it), as `cp` needs; else the image's filesystem and its changes alone.
pub(crate) fn open_rootfs(store: &Store, c: &Container, mounts: bool) -> Result<Rootfs> {
    let id = &c.rec.id;
    if mounts && store.derive(c).is_active() {
        let rt = &store.rt;
        if let Some(pid) = crate::front::containers::runtime::init_pid(rt, id) {
            let fd = open_dir(Path::new(&format!("/proc/{pid}/root")));
            // The pid could have been reused between reading the state and the open: the
            // state checks the init's identity, not just its number.
            if crate::front::containers::runtime::init_pid(rt, id) == Some(pid) {
                return Ok(Rootfs {
                    fd: fd?,
                    _mounted: None,
                    _lock: None,
                });
            }
        }
    }
    let private = nix::unistd::geteuid().is_root();
    let binds = mounts && private && !c.rec.mounts.is_empty();
    if c.rec.image_id.is_empty() && !binds {
        return Ok(Rootfs {
            fd: open_dir(&c.rec.rootfs)?,
            _mounted: None,
            _lock: None,
        });
    }
    let merged = OverlayDirs::of(store, id).merged;
    if let Some(m) = store.monitor(id).filter(|_| store.derive(c).is_active()) {
        let rel = merged.strip_prefix("/").unwrap_or(&merged);
        let fd = open_dir(&Path::new(&format!("/proc/{}/root", m.pid)).join(rel))?;
        // The pid could have been reused between reading monitor.json and the open.
        if store.monitor_alive(id) {
            return Ok(Rootfs {
                fd,
                _mounted: None,
                _lock: None,
            });
        }
    }
    let lock = store.lock(id)?;
    let c = store.load(id)?;
    if store.monitor_alive(id) {
        bail!("container {} started meanwhile: try again", c.rec.name);
    }
    if private {
        // A mount namespace of this process's own before anything is mounted, whoever we
        // are: the monitor's mount skips it when it counts as rootless (root in a user
        // namespace), and then the overlay would land in the caller's namespace.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| {
            anyhow!(
                "a mount namespace for the container's root filesystem: {}",
                crate::error::errno_desc(e)
            )
        })?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| anyhow!("make / a slave mount: {}", crate::error::errno_desc(e)))?;
    }
    let mounted = crate::front::monitor::rootfs::mount(store, &c.rec)?;
    let fd = if c.rec.image_id.is_empty() {
        open_dir(&c.rec.rootfs)?
    } else {
        open_dir(&merged)?
    };
    if binds {
        mount_binds(fd.as_fd(), &c.rec)?;
    }
    Ok(Rootfs {
        fd,
        _mounted: mounted,
        _lock: Some(lock),
    })
}

/// Mounts a stopped container's volumes and host directories on its root, in this
/// process's own mount namespace, where its processes would see them (Docker's copy
/// mounts them too); a missing mount point is made as the runtime would make it.
fn mount_binds(root: BorrowedFd, rec: &crate::front::containers::Record) -> Result<()> {
    use nix::mount::MsFlags;
    let ours: Vec<&str> = rec.mounts.iter().map(|m| m.destination.as_str()).collect();
    // The spec lists them parents first, with their sources and options resolved.
    for m in rec.spec["mounts"].as_array().into_iter().flatten() {
        let (Some(dst), Some(src)) = (m["destination"].as_str(), m["source"].as_str()) else {
            continue;
        };
        if m["type"] != "bind" || !ours.contains(&dst) {
            continue;
        }
        let opts: Vec<&str> = m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.as_str())
            .collect();
        let shown = |e: Errno| anyhow!("mount {src} on {dst}: {}", crate::error::errno_desc(e));
        let at = match resolve::open_in_root(root, Path::new(dst), OFlag::O_PATH | OFlag::O_CLOEXEC)
        {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if Path::new(src).is_dir() => {
                resolve::mkdir_all_in_root(root, Path::new(dst), 0o755).map_err(shown)?
            }
            Err(Errno::ENOENT) => {
                resolve::create_file_in_root(root, Path::new(dst)).map_err(shown)?
            }
            Err(e) => return Err(shown(e)),
        };
        let mut flags = MsFlags::MS_BIND;
        if opts.contains(&"rbind") {
            flags |= MsFlags::MS_REC;
        }
        let target = resolve::proc_fd_path(at.as_fd());
        nix::mount::mount(Some(src), &target, None::<&str>, flags, None::<&str>).map_err(shown)?;
        if opts.contains(&"ro") {
            // Through the new mount (a fresh lookup crosses onto it; the old fd does not).
            let top = resolve::open_in_root(root, Path::new(dst), OFlag::O_PATH | OFlag::O_CLOEXEC)
                .map_err(shown)?;
            nix::mount::mount(
                None::<&str>,
                &resolve::proc_fd_path(top.as_fd()),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(shown)?;
        }
    }
    Ok(())
}

impl Rootfs {
    /// The filesystems `cp` reads from the container: its root's and those of its own
    /// mounts (volumes, binds, tmpfs), not the kernel's (/proc, /sys) nor the runtime's
    /// /dev, which Docker's copy never sees either.
    pub(crate) fn devices(&self, c: &Container) -> Result<Vec<u64>> {
        let mut out = vec![nix::sys::stat::fstat(&self.fd)?.st_dev];
        for m in &c.rec.mounts {
            let fd = resolve::open_in_root(
                self.fd.as_fd(),
                Path::new(&m.destination),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
            );
            if let Ok(st) = fd.and_then(|fd| nix::sys::stat::fstat(&fd)) {
                out.push(st.st_dev);
            }
        }
        Ok(out)
    }
}

/// Whether the container's state lets its files be read or written now.
pub(crate) fn usable(live: Live) -> Result<()> {
    if live == Live::Removing {
        bail!("container is marked for removal and cannot be used");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Looking paths up

/// What a path names, found without following its last component (unless asked).
pub(crate) struct Found {
    /// The directory holding it, resolved inside the root.
    pub(crate) parent: OwnedFd,
    pub(crate) name: OsString,
    pub(crate) stat: Option<FileStat>,
    /// With `follow`, the final symlink's target (opened O_PATH inside the root).
    pub(crate) target: Option<OwnedFd>,
}

/// Where an entry's inode is reached: by name in a directory (never following it), or
/// through an fd already resolved.
#[derive(Clone, Copy)]
enum At<'a> {
    Name(BorrowedFd<'a>, &'a OsStr),
    Fd(BorrowedFd<'a>),
}

impl At<'_> {
    fn open(self, flags: OFlag) -> nix::Result<OwnedFd> {
        match self {
            At::Name(d, n) => nix::fcntl::openat(d, n, flags | OFlag::O_NOFOLLOW, Mode::empty()),
            // The fd's own inode (the magic link names exactly it).
            At::Fd(fd) => {
                nix::fcntl::open(resolve::proc_fd_path(fd).as_path(), flags, Mode::empty())
            }
        }
    }
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Resolves `path` (absolute in the root) inside `root`: its parent through the resolver,
/// its last component by name. `follow` follows a final symlink, inside the root too.
/// The root itself comes back as `.` of itself.
pub(crate) fn lookup(root: BorrowedFd, path: &str, follow: bool) -> Result<Found> {
    let rel = resolve::clean(Path::new(path));
    let (parent_rel, name) = match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => (p.to_path_buf(), n.to_os_string()),
        _ => (PathBuf::new(), OsString::from(".")),
    };
    let parent = resolve::open_in_root(
        root,
        &parent_rel,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
    )
    .map_err(|e| {
        anyhow!(
            "{}: {}",
            parent_rel_display(&parent_rel),
            crate::error::errno_desc(e)
        )
    })?;
    let st = match nix::sys::stat::fstatat(&parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        Ok(st) => Some(st),
        Err(Errno::ENOENT) => None,
        Err(e) => bail!("{path}: {}", crate::error::errno_desc(e)),
    };
    let is_link = st.is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFLNK);
    if follow && is_link {
        // The link's target, resolved inside the root (never outside it).
        let fd = resolve::open_in_root(root, &rel, OFlag::O_PATH | OFlag::O_CLOEXEC)
            .map_err(|e| anyhow!("{path}: {}", crate::error::errno_desc(e)))?;
        let st = nix::sys::stat::fstat(&fd)?;
        return Ok(Found {
            parent,
            name,
            stat: Some(st),
            target: Some(fd),
        });
    }
    Ok(Found {
        parent,
        name,
        stat: st,
        target: None,
    })
}

fn parent_rel_display(p: &Path) -> String {
    format!("/{}", p.display())
}

// ---------------------------------------------------------------------------------------
// Tar out

/// Who owns what a copy writes: the entries' own owners (`-a`), one owner for all, or the
/// caller on the host: theirs, without the entries' device nodes (skipped) and setuid and
/// setgid bits (cleared), which would be powers the container never had on the host.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Owner {
    Keep,
    All(u32, u32),
    Caller(u32, u32),
}

/// Writes the tree at `found` as a tar stream, its top entry named `top` (entries below
/// it `top/...`; an empty `top` names the entries below the root without a prefix, as
/// `export` does). `only`: the filesystems (devices) to descend into; the directories of
/// others (other mounts) are written without what they hold.
pub(crate) fn archive(
    found: &Found,
    top: &str,
    only: Option<&[u64]>,
    out: &mut dyn Write,
) -> Result<()> {
    let mut w = tar::Writer::new(out);
    let mut links = HashMap::new();
    let st = found
        .stat
        .ok_or_else(|| anyhow!("{}: no such file or directory", top))?;
    let at = match &found.target {
        Some(fd) => At::Fd(fd.as_fd()),
        None => At::Name(found.parent.as_fd(), &found.name),
    };
    if top.is_empty() {
        let dir = at.open(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)?;
        walk_dir(&mut w, dir, "", only, &mut links)?;
    } else {
        entry(&mut w, at, &st, top, only, &mut links)?;
    }
    w.finish()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn entry(
    w: &mut tar::Writer<&mut dyn Write>,
    at: At,
    st: &FileStat,
    path: &str,
    only: Option<&[u64]>,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    // Deeper than any path can name (a container can nest directories without bound
    // through relative moves): refused before the recursion outgrows the stack.
    if path.len() > libc::PATH_MAX as usize {
        let head: String = path.chars().take(64).collect();
        bail!("{head}...: file name too long");
    }
    let fmt = st.st_mode & libc::S_IFMT;
    let entry = |kind: Kind| {
        let mut h = Header::new(path, kind);
        h.mode = st.st_mode & 0o7777;
        h.uid = st.st_uid as u64;
        h.gid = st.st_gid as u64;
        h.mtime = st.st_mtime;
        h
    };
    if fmt != libc::S_IFDIR && st.st_nlink > 1 {
        if let Some(first) = links.get(&(st.st_dev, st.st_ino)) {
            let mut m = entry(Kind::HardLink);
            m.link = first.clone().into_bytes();
            return w.entry(&m, None);
        }
        links.insert((st.st_dev, st.st_ino), path.to_string());
    }
    match fmt {
        libc::S_IFREG => {
            let f = at
                .open(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                .map_err(|e| anyhow!("{path}: {}", crate::error::errno_desc(e)))?;
            // What was stat'ed is what is read: not a file swapped in meanwhile.
            let now = nix::sys::stat::fstat(&f)?;
            if now.st_ino != st.st_ino || now.st_dev != st.st_dev {
                bail!("{path}: changed while being copied");
            }
            let mut m = entry(Kind::File);
            m.size = now.st_size as u64;
            let mut file = std::fs::File::from(f);
            w.entry(&m, Some(&mut file))
        }
        libc::S_IFDIR => {
            w.entry(&entry(Kind::Dir), None)?;
            if only.is_some_and(|d| !d.contains(&st.st_dev)) {
                return Ok(());
            }
            let d = at
                .open(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .map_err(|e| anyhow!("{path}: {}", crate::error::errno_desc(e)))?;
            walk_dir(w, d, path, only, links)
        }
        libc::S_IFLNK => {
            let At::Name(dir, name) = at else {
                bail!("{path}: a followed link is not a link");
            };
            let mut m = entry(Kind::Symlink);
            m.link = nix::fcntl::readlinkat(dir, name)?.into_vec();
            w.entry(&m, None)
        }
        libc::S_IFCHR | libc::S_IFBLK => {
            let mut m = entry(if fmt == libc::S_IFCHR {
                Kind::Char
            } else {
                Kind::Block
            });
            m.devmajor = nix::sys::stat::major(st.st_rdev) as u32;
            m.devminor = nix::sys::stat::minor(st.st_rdev) as u32;
            w.entry(&m, None)
        }
        libc::S_IFIFO => w.entry(&entry(Kind::Fifo), None),
        // Sockets have no tar form (Docker skips them too).
        _ => Ok(()),
    }
}

fn walk_dir(
    w: &mut tar::Writer<&mut dyn Write>,
    d: OwnedFd,
    prefix: &str,
    only: Option<&[u64]>,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let mut names: Vec<OsString> = Vec::new();
    for e in nix::dir::Dir::from_fd(d.try_clone()?)?.into_iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    names.sort();
    for n in names {
        let st = match nix::sys::stat::fstatat(&d, n.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed meanwhile (a running container).
            Err(Errno::ENOENT) => continue,
            Err(e) => bail!(
                "{prefix}/{}: {}",
                n.to_string_lossy(),
                crate::error::errno_desc(e)
            ),
        };
        let path = if prefix.is_empty() {
            n.to_string_lossy().into_owned()
        } else {
            format!("{prefix}/{}", n.to_string_lossy())
        };
        entry(w, At::Name(d.as_fd(), &n), &st, &path, only, links)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tar in

struct DirMeta {
    rel: PathBuf,
    mode: u32,
    mtime: i64,
}

/// Extracts a tar stream below `dest` (a directory, absolute in `root`), every entry
/// created inside `root`: names are confined lexically, parents resolved with the
/// resolver, the last component never followed. Returns the bytes of file content.
pub(crate) fn extract(root: BorrowedFd, dest: &str, input: impl Read, owner: Owner) -> Result<u64> {
    let dest = resolve::clean(Path::new(dest));
    let mut r = tar::Reader::new(input);
    let mut dirs: Vec<DirMeta> = Vec::new();
    let mut size = 0u64;
    let mut skipped: Vec<PathBuf> = Vec::new();
    while let Some(h) = r.next()? {
        let rel = crate::front::images::unpack::confine(&h.path)?;
        let Some(name) = rel.file_name().map(|n| n.to_os_string()) else {
            continue;
        };
        let full = dest.join(&rel);
        let parent_rel = full.parent().map(Path::to_path_buf).unwrap_or_default();
        let parent = match resolve::open_in_root(
            root,
            &parent_rel,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        ) {
            // A stream need not list the directories above its entries: made (inside
            // the root), as Docker's extraction makes them.
            Err(Errno::ENOENT) => resolve::mkdir_all_in_root(root, &parent_rel, 0o755),
            r => r,
        }
        .map_err(|e| {
            anyhow!(
                "{}: {}",
                parent_rel_display(&parent_rel),
                crate::error::errno_desc(e)
            )
        })?;
        let shown = parent_rel_display(&full);
        let (uid, gid) = match owner {
            Owner::Keep => (h.uid as u32, h.gid as u32),
            Owner::All(u, g) | Owner::Caller(u, g) => (u, g),
        };
        let caller = matches!(owner, Owner::Caller(..));
        if caller && matches!(h.kind, Kind::Char | Kind::Block) {
            crate::logging::warn(&format!("{shown}: a device node is not copied without -a"));
            skipped.push(rel);
            continue;
        }
        // Another name of a device node skipped above: skipped with it.
        if h.kind == Kind::HardLink && !skipped.is_empty() {
            let target = crate::front::images::unpack::confine(&h.link)?;
            if skipped.contains(&target) {
                continue;
            }
        }
        let mode = if caller && h.kind != Kind::Dir {
            h.mode & !0o6000
        } else {
            h.mode
        };
        let existing = match nix::sys::stat::fstatat(
            &parent,
            name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => Some(st),
            Err(Errno::ENOENT) => None,
            Err(e) => bail!("{shown}: {}", crate::error::errno_desc(e)),
        };
        if let Some(st) = existing {
            match (is_dir(&st), h.kind == Kind::Dir) {
                (true, true) => {
                    dirs.push(DirMeta {
                        rel: full.clone(),
                        mode: h.mode,
                        mtime: h.mtime,
                    });
                    continue;
                }
                (true, false) => {
                    bail!("cannot overwrite directory {shown:?} with non-directory")
                }
                (false, true) => {
                    bail!("cannot overwrite non-directory {shown:?} with directory")
                }
                (false, false) => {
                    nix::unistd::unlinkat(
                        &parent,
                        name.as_os_str(),
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    )
                    .map_err(|e| anyhow!("{shown}: {}", crate::error::errno_desc(e)))?;
                }
            }
        }
        let chown_at = |flags: AtFlags| {
            nix::unistd::fchownat(
                &parent,
                name.as_os_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                flags,
            )
        };
        let t = TimeSpec::new(h.mtime, 0);
        let res: Result<()> = (|| {
            match h.kind {
                Kind::Dir => {
                    nix::sys::stat::mkdirat(
                        &parent,
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )?;
                    chown_at(AtFlags::AT_SYMLINK_NOFOLLOW)?;
                    dirs.push(DirMeta {
                        rel: full.clone(),
                        mode: h.mode,
                        mtime: h.mtime,
                    });
                }
                Kind::File => {
                    let f = nix::fcntl::openat(
                        &parent,
                        name.as_os_str(),
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )?;
                    let mut file = std::fs::File::from(f);
                    size += io::copy(&mut r.data(), &mut file)?;
                    nix::unistd::fchown(&file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
                    // After chown, which clears setuid/setgid.
                    nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode & 0o7777))?;
                    nix::sys::stat::futimens(&file, &t, &t)?;
                }
                Kind::Symlink => {
                    nix::unistd::symlinkat(OsStr::from_bytes(&h.link), &parent, name.as_os_str())?;
                    chown_at(AtFlags::AT_SYMLINK_NOFOLLOW)?;
                }
                Kind::HardLink => {
                    // Only to an entry of this same copy, resolved inside the root.
                    let target = dest.join(crate::front::images::unpack::confine(&h.link)?);
                    let fd = resolve::open_in_root(
                        root,
                        &target,
                        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    )?;
                    if is_dir(&nix::sys::stat::fstat(&fd)?) {
                        bail!("hardlink to a directory");
                    }
                    nix::unistd::linkat(
                        nix::fcntl::AT_FDCWD,
                        resolve::proc_fd_path(fd.as_fd()).as_path(),
                        &parent,
                        name.as_os_str(),
                        AtFlags::AT_SYMLINK_FOLLOW,
                    )?;
                }
                Kind::Fifo | Kind::Char | Kind::Block => {
                    let (kind, dev) = match h.kind {
                        Kind::Fifo => (SFlag::S_IFIFO, 0),
                        Kind::Char => (
                            SFlag::S_IFCHR,
                            nix::sys::stat::makedev(h.devmajor as u64, h.devminor as u64),
                        ),
                        _ => (
                            SFlag::S_IFBLK,
                            nix::sys::stat::makedev(h.devmajor as u64, h.devminor as u64),
                        ),
                    };
                    nix::sys::stat::mknodat(
                        &parent,
                        name.as_os_str(),
                        kind,
                        Mode::from_bits_truncate(0o600),
                        dev,
                    )?;
                    chown_at(AtFlags::AT_SYMLINK_NOFOLLOW)?;
                    // Not a symlink (just made): fchmodat cannot be redirected.
                    nix::sys::stat::fchmodat(
                        &parent,
                        name.as_os_str(),
                        Mode::from_bits_truncate(mode & 0o7777),
                        nix::sys::stat::FchmodatFlags::FollowSymlink,
                    )?;
                }
            }
            if h.kind != Kind::Dir && h.kind != Kind::File && h.kind != Kind::HardLink {
                nix::sys::stat::utimensat(
                    &parent,
                    name.as_os_str(),
                    &t,
                    &t,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )?;
            }
            Ok(())
        })();
        res.with_context(|| shown.clone())?;
    }
    // Directories last: their mode may forbid writing, and entries change their mtime.
    for d in dirs.iter().rev() {
        let fd = resolve::open_in_root(
            root,
            &d.rel,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        )?;
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(d.mode & 0o7777))?;
        let t = TimeSpec::new(d.mtime, 0);
        nix::sys::stat::futimens(&fd, &t, &t)?;
    }
    Ok(size)
}

/// Whether an error is a write to a reader that went away.
pub(crate) fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A tree walk recurses once per level: a container's deepest tree (a path can name
/// PATH_MAX/2 levels) needs more than a thread's default stack (reserved, touched only
/// as deep as it goes).
const WALK_STACK: usize = 64 << 20;

/// Runs `f` (a tree walk) on a thread with a stack deep enough for any tree.
pub(crate) fn deep<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(WALK_STACK)
            .spawn_scoped(s, f)?
            .join()
            .map_err(|_| anyhow!("copy thread panicked"))?
    })
}

/// Runs `produce` (writing a tar stream) and `consume` (reading it) at once, through a
/// pipe, so that a copy never holds a whole tree in memory.
pub(crate) fn pipe_through<T: Send>(
    produce: impl FnOnce(&mut dyn Write) -> Result<()> + Send,
    consume: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    let (mut rd, mut wr) = io::pipe()?;
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .stack_size(WALK_STACK)
            .spawn_scoped(s, move || {
                let mut wr = io::BufWriter::with_capacity(128 * 1024, &mut wr);
                let r = produce(&mut wr);
                let r = r.and_then(|_| wr.flush().map_err(Into::into));
                drop(wr);
                r
            })?;
        let got = consume(&mut rd);
        // Whatever the consumer left unread: let the producer finish (or fail) now.
        drop(rd);
        let produced = h.join().map_err(|_| anyhow!("copy thread panicked"))?;
        // Whichever side failed first names the cause: a producer cut off by a consumer
        // that gave up sees only a broken pipe; a consumer of a producer that failed sees
        // only a truncated stream.
        match (produced, got) {
            (Ok(()), got) => got,
            (Err(p), Err(g)) if broken_pipe(&p) => Err(g),
            (Err(p), _) => Err(p),
        }
    })
}

// ---------------------------------------------------------------------------------------
// Changes against the image (`diff`)

/// Whether an upper-dir entry is an overlay whiteout: a 0:0 character device (root), or
/// a zero-size file marked `user.overlay.whiteout` (rootless `userxattr`).
fn is_whiteout(dir: BorrowedFd, name: &OsStr, st: &FileStat) -> bool {
    let fmt = st.st_mode & libc::S_IFMT;
    if fmt == libc::S_IFCHR && st.st_rdev == 0 {
        return true;
    }
    fmt == libc::S_IFREG && st.st_size == 0 && xattr(dir, name, c"user.overlay.whiteout").is_some()
}

fn xattr(dir: BorrowedFd, name: &OsStr, key: &std::ffi::CStr) -> Option<Vec<u8>> {
    let mut p = resolve::proc_fd_path(dir).into_os_string().into_vec();
    p.push(b'/');
    p.extend_from_slice(name.as_bytes());
    let p = std::ffi::CString::new(p).ok()?;
    crate::sys::files::lgetxattr(&p, key).ok()
}

fn is_opaque(dir: BorrowedFd, name: &OsStr) -> bool {
    [c"trusted.overlay.opaque", c"user.overlay.opaque"]
        .iter()
        .any(|k| xattr(dir, name, k).is_some_and(|v| v == b"y"))
}

/// The entry `rel` as the image's layers (top first) show it; None when absent or
/// whited out above.
fn in_lower(lowers: &[OwnedFd], rel: &Path) -> Option<FileStat> {
    for l in lowers {
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return None;
        };
        let Ok(p) = resolve::open_in_root(
            l.as_fd(),
            parent,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        ) else {
            continue;
        };
        if let Ok(st) = nix::sys::stat::fstatat(&p, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            if is_whiteout(p.as_fd(), name, &st) {
                return None;
            }
            return Some(st);
        }
        if is_opaque(l.as_fd(), parent.as_os_str()) && !parent.as_os_str().is_empty() {
            return None;
        }
    }
    None
}

/// Docker's `diff`: `A`dded, `C`hanged and `D`eleted paths of a container's upper dir
/// against its image's layers (`lowers`, top first), sorted by path. `hidden`: the
/// runtime's mount points (`/etc/hosts`, `/proc`, ...) that Docker's init layer hides
/// when the container created them.
pub(crate) fn changes(
    upper: &Path,
    lowers: &[PathBuf],
    hidden: &[String],
) -> Result<Vec<(char, String)>> {
    let up = match nix::fcntl::open(
        upper,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // Never started: no changes yet.
        Err(Errno::ENOENT) => return Ok(Vec::new()),
        Err(e) => bail!("{}: {}", upper.display(), crate::error::errno_desc(e)),
    };
    let lowers: Vec<OwnedFd> = lowers.iter().map(|p| open_dir(p)).collect::<Result<_>>()?;
    let mut out = Vec::new();
    walk_changes(up, Path::new(""), &lowers, hidden, &mut out)?;
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Returns whether anything at or below `rel` was reported.
fn walk_changes(
    dir: OwnedFd,
    rel: &Path,
    lowers: &[OwnedFd],
    hidden: &[String],
    out: &mut Vec<(char, String)>,
) -> Result<bool> {
    let mut names: Vec<OsString> = Vec::new();
    for e in nix::dir::Dir::from_fd(dir.try_clone()?)?.into_iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    let mut any = false;
    for n in &names {
        let Ok(st) = nix::sys::stat::fstatat(&dir, n.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        else {
            continue;
        };
        let r = rel.join(n);
        let shown = format!("/{}", r.display());
        if is_whiteout(dir.as_fd(), n, &st) {
            out.push(('D', shown));
            any = true;
            continue;
        }
        let lower = in_lower(lowers, &r);
        let mut below = false;
        if is_dir(&st) {
            let sub = nix::fcntl::openat(
                &dir,
                n.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            if is_opaque(dir.as_fd(), n) && lower.is_some_and(|l| is_dir(&l)) {
                // Everything the layers had below an opaque directory is gone.
                below |= deleted_below(lowers, &r, sub.as_fd(), out)?;
            }
            below |= walk_changes(sub, &r, lowers, hidden, out)?;
        }
        let hide = hidden
            .iter()
            .any(|h| h == &shown || h.starts_with(&format!("{shown}/")));
        match lower {
            None if hide && (is_dir(&st) && !below || st.st_size == 0) => {}
            None => {
                out.push(('A', shown));
                any = true;
            }
            Some(l) => {
                let meta_same =
                    l.st_mode == st.st_mode && l.st_uid == st.st_uid && l.st_gid == st.st_gid;
                let changed = if is_dir(&st) {
                    below || !meta_same
                } else {
                    !(meta_same
                        && l.st_size == st.st_size
                        && l.st_mtime == st.st_mtime
                        && l.st_mtime_nsec == st.st_mtime_nsec)
                };
                if changed {
                    out.push(('C', shown));
                    any = true;
                }
            }
        }
        any |= below;
    }
    Ok(any)
}

/// `D` for every entry the layers have directly below `rel` that the upper directory
/// `upper` does not.
fn deleted_below(
    lowers: &[OwnedFd],
    rel: &Path,
    upper: BorrowedFd,
    out: &mut Vec<(char, String)>,
) -> Result<bool> {
    let mut seen = std::collections::BTreeSet::new();
    let mut any = false;
    for l in lowers {
        let Ok(d) = resolve::open_in_root(
            l.as_fd(),
            rel,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        ) else {
            continue;
        };
        for e in nix::dir::Dir::from_fd(d)?.into_iter() {
            let e = e?;
            let n = OsStr::from_bytes(e.file_name().to_bytes()).to_os_string();
            if n == "." || n == ".." || !seen.insert(n.clone()) {
                continue;
            }
            if nix::sys::stat::fstatat(upper, n.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).is_err()
            {
                out.push(('D', format!("/{}", rel.join(&n).display())));
                any = true;
            }
        }
    }
    Ok(any)
}

/// Bytes of regular file content below `path` (each inode once), walked by fd without
/// following symlinks: a container's writable layer as `ps -s`, `system df` and the
/// prunes count it (Docker's SizeRw).
pub(crate) fn tree_size(path: &Path) -> u64 {
    fn walk(d: OwnedFd, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        let Ok(dir) = d
            .try_clone()
            .map_err(|_| ())
            .and_then(|fd| nix::dir::Dir::from_fd(fd).map_err(|_| ()))
        else {
            return 0;
        };
        let mut total = 0;
        let names: Vec<OsString> = dir
            .into_iter()
            .filter_map(|e| e.ok())
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .filter(|n| n != "." && n != "..")
            .collect();
        for n in names {
            let Ok(st) = nix::sys::stat::fstatat(&d, n.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            match st.st_mode & libc::S_IFMT {
                libc::S_IFREG if seen.insert((st.st_dev, st.st_ino)) => total += st.st_size as u64,
                libc::S_IFDIR => {
                    if let Ok(sub) = nix::fcntl::openat(
                        &d,
                        n.as_os_str(),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        total += walk(sub, seen);
                    }
                }
                _ => {}
            }
        }
        total
    }
    match nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => walk(fd, &mut Default::default()),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_of_an_upper_dir() {
        let d = std::env::temp_dir().join(format!("berth-cp-diff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let (lower, upper) = (d.join("lower"), d.join("upper"));
        for p in ["etc", "bin", "var/lib"] {
            std::fs::create_dir_all(lower.join(p)).unwrap();
        }
        std::fs::write(lower.join("etc/motd"), "hi").unwrap();
        std::fs::write(lower.join("bin/tool"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("bin")).unwrap();
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::write(upper.join("etc/motd"), "changed!").unwrap();
        std::fs::write(upper.join("etc/new"), "n").unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        nix::sys::stat::mknod(&upper.join("bin/tool"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        let hidden = vec!["/etc/hosts".to_string(), "/proc".to_string()];
        let got = changes(&upper, std::slice::from_ref(&lower), &hidden).unwrap();
        let got: Vec<String> = got.iter().map(|(k, p)| format!("{k} {p}")).collect();
        assert_eq!(
            got,
            [
                "C /bin",
                "D /bin/tool",
                "C /etc",
                "C /etc/motd",
                "A /etc/new"
            ]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
