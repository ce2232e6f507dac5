//! Mounting the config's `mounts` inside the rootfs. Destinations are resolved in the root
//! (resolve.rs) and mounted through the resolved fd, never by re-walking a path.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;

use super::resolve::{create_file_in_root, mkdir_all_in_root, open_in_root, proc_fd_path};
use super::RootfsError;
use crate::cgroups::manager::Hierarchy;
use crate::spec::mountopts::ParsedMountOptions;
use crate::spec::plan::{MountKind, MountPlan};

fn err(m: &MountPlan, what: &str, e: Errno) -> RootfsError {
    RootfsError::Mount {
        index: m.index,
        destination: m.destination.clone(),
        msg: format!("{what}: {}", crate::error::errno_desc(e)),
    }
}

fn flags(bits: u64) -> MsFlags {
    MsFlags::from_bits_truncate(bits as libc::c_ulong)
}

pub(crate) struct MountCtx<'a> {
    pub(crate) root: BorrowedFd<'a>,
    pub(crate) cgroups: &'a [(Hierarchy, PathBuf)],
    pub(crate) new_cgroupns: bool,
    /// Idmapped trees the parent made (by mount index), attached instead of a bind.
    pub(crate) premade: &'a [(usize, std::os::fd::OwnedFd)],
}

pub(crate) fn mount_all(ctx: &MountCtx, mounts: &[MountPlan]) -> Result<(), RootfsError> {
    for m in mounts {
        mount_one(ctx, m)?;
    }
    Ok(())
}

fn mount_one(ctx: &MountCtx, m: &MountPlan) -> Result<(), RootfsError> {
    let opts = &m.opts;
    let typ = m.fstype.as_str();
    let is_bind = m.kind == MountKind::Bind;
    // The destination as written was checked when planning; what it resolves to is checked
    // below, once it exists.
    let dest = m.dest.as_path();
    let src = m.source.as_path();
    if m.kind == MountKind::Cgroup {
        return mount_cgroup(ctx, m);
    }
    if is_bind {
        let premade = ctx.premade.iter().find(|(j, _)| *j == m.index);
        // A tree the parent made is what its source was; the source itself may be out of
        // our reach (a user namespace of our own).
        let is_dir = match premade {
            Some((_, tree)) => nix::sys::stat::fstat(tree)
                .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                .map_err(|e| err(m, "source", e))?,
            None => std::fs::metadata(src)
                .map_err(|e| RootfsError::Mount {
                    index: m.index,
                    destination: m.destination.clone(),
                    msg: format!("source {}: {}", src.display(), crate::error::errno_text(&e)),
                })?
                .is_dir(),
        };
        let target = if is_dir {
            mkdir_all_in_root(ctx.root, dest, 0o755)
        } else {
            create_file_in_root(ctx.root, dest)
        }
        .map_err(|e| err(m, "creating destination", e))?;
        check_resolved(ctx.root, target.as_fd(), dest, typ, is_bind, src)
            .map_err(|msg| refused(m, msg))?;
        match premade {
            Some((_, tree)) => attach(tree.as_fd(), target.as_fd(), opts),
            None => bind(src, target.as_fd(), opts),
        }
        .map_err(|e| err(m, "bind mount", e))?;
        return Ok(());
    }
    if typ == "proc" || typ == "sysfs" {
        match refuse_symlink(ctx.root, dest) {
            // runc's words, which callers look for.
            Err(Errno::ELOOP) => {
                return Err(refused(
                    m,
                    format!(
                        "filesystem {typ:?} must be mounted on ordinary directory, not a symlink"
                    ),
                ))
            }
            r => r.map_err(|e| err(m, "checking the destination", e))?,
        }
    }
    let target =
        mkdir_all_in_root(ctx.root, dest, 0o755).map_err(|e| err(m, "creating destination", e))?;
    check_resolved(ctx.root, target.as_fd(), dest, typ, is_bind, src)
        .map_err(|msg| refused(m, msg))?;
    let mflags = opts.flags & !opts.clear;
    // A read-only tmpfs is mounted writable for what goes into it (tmpcopyup, the nodes
    // and submount points of /dev) and made read-only after, as runc does.
    let late_ro = typ == "tmpfs" && mflags & libc::MS_RDONLY != 0;
    let first_flags = if late_ro {
        mflags & !libc::MS_RDONLY
    } else {
        mflags
    };
    let tpath = proc_fd_path(target.as_fd());
    // tmpcopyup: the fd we hold still names the directory under the new tmpfs, so its
    // contents can be copied up after mounting over it.
    let under = if opts.tmpcopyup && typ == "tmpfs" {
        Some(
            open_in_root(ctx.root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(|e| err(m, "tmpcopyup", e))?,
        )
    } else {
        None
    };
    let res = mount(
        Some(src),
        &tpath,
        Some(typ),
        flags(first_flags),
        if m.data.is_empty() {
            None
        } else {
            Some(m.data.as_str())
        },
    );
    match res {
        Ok(()) => {}
        // mqueue and sysfs can be refused when the namespace is not ours (rootless with a
        // host network namespace): fall back to a read-only bind of the host's, as runc.
        Err(Errno::EPERM) if typ == "sysfs" || typ == "mqueue" => {
            let host = if typ == "sysfs" {
                "/sys"
            } else {
                "/dev/mqueue"
            };
            let o = ParsedMountOptions {
                flags: mflags | libc::MS_REC,
                ..opts.clone()
            };
            bind(Path::new(host), target.as_fd(), &o).map_err(|e| err(m, "mount", e))?;
            return Ok(());
        }
        Err(e) => return Err(err(m, &format!("mount {typ}"), e)),
    }
    let mounted = open_in_root(ctx.root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| err(m, "reopen", e))?;
    if typ == "proc" || typ == "sysfs" {
        verify_fs(mounted.as_fd(), typ).map_err(|e| err(m, "verify", e))?;
    }
    if let Some(under) = under {
        let top = open_in_root(ctx.root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|e| err(m, "tmpcopyup", e))?;
        copy_tree(under.as_fd(), top.as_fd()).map_err(|e| err(m, "tmpcopyup", e))?;
    }
    propagate(mounted.as_fd(), opts).map_err(|e| err(m, "propagation", e))?;
    if late_ro && dest != Path::new("dev") {
        remount_ro(mounted.as_fd(), mflags).map_err(|e| err(m, "remount read-only", e))?;
    }
    Ok(())
}

/// The per-mount flags kept by a read-only bind remount (the kernel would clear the
/// others, and refuses to clear locked ones).
const KEEP_ON_REMOUNT: u64 = libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME;

fn remount_ro(fd: BorrowedFd, mflags: u64) -> nix::Result<()> {
    let bits = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | (mflags & KEEP_ON_REMOUNT);
    mount(
        None::<&str>,
        &proc_fd_path(fd),
        None::<&str>,
        flags(bits),
        None::<&str>,
    )
}

/// Makes a read-only tmpfs /dev read-only once the container's root is complete (its
/// nodes, symlinks, submounts and console made): runc's finalizeRootfs. `root` is the
/// container's root as the init now sees it.
pub(crate) fn finish_dev(root: BorrowedFd, mounts: &[MountPlan]) -> Result<(), RootfsError> {
    let Some(m) = mounts.iter().rfind(|m| m.dest == Path::new("dev")) else {
        return Ok(());
    };
    let mflags = m.opts.flags & !m.opts.clear;
    if m.fstype != "tmpfs" || m.kind != MountKind::Fs || mflags & libc::MS_RDONLY == 0 {
        return Ok(());
    }
    let dev = open_in_root(root, &m.dest, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| err(m, "reopen", e))?;
    remount_ro(dev.as_fd(), mflags).map_err(|e| err(m, "remount read-only", e))
}

fn refused(m: &MountPlan, msg: String) -> RootfsError {
    RootfsError::Mount {
        index: m.index,
        destination: m.destination.clone(),
        msg,
    }
}

/// The /proc files a mount may cover, as runc's checkProcMount allows: those lxcfs
/// emulates.
const PROC_ALLOWED: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// Whether `path` (on the host) is on a filesystem with this magic.
fn is_fs(path: &Path, magic: nix::sys::statfs::FsType) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|st| st.filesystem_type() == magic)
}

/// runc's checkProcMount, for a destination `rel` relative to the root (no leading "/"):
/// only procfs at /proc (a proc mount, or a bind of a procfs source), and under /proc
/// only the allow-listed files (CVE-2019-16884, CVE-2023-27561: anything else over
/// /proc/self/attr, /proc/sys, ... would turn the LSM and sysctl writes berth makes later
/// into writes to a file of the image's choosing). /sys itself likewise takes only sysfs
/// (runc does not check it); under /sys anything goes, as runc (/sys/fs/cgroup, ...).
pub(crate) fn check_proc_sys(
    rel: &Path,
    typ: &str,
    is_bind: bool,
    src: &Path,
) -> Result<(), String> {
    use nix::sys::statfs::{PROC_SUPER_MAGIC, SYSFS_MAGIC};
    let shown = Path::new("/").join(rel);
    for (top, fstype, magic) in [
        ("proc", "proc", PROC_SUPER_MAGIC),
        ("sys", "sysfs", SYSFS_MAGIC),
    ] {
        if rel == Path::new(top) {
            let ok = if is_bind {
                is_fs(src, magic)
            } else {
                typ == fstype
            };
            if !ok {
                return Err(format!(
                    "{} cannot be mounted because it is not of type {fstype}",
                    shown.display()
                ));
            }
            return Ok(());
        }
    }
    if rel.starts_with("proc") && !PROC_ALLOWED.iter().any(|a| rel == Path::new(a)) {
        return Err(format!(
            "{} cannot be mounted because it is inside /proc",
            shown.display()
        ));
    }
    Ok(())
}

/// check_proc_sys on where `target` really is: its path under the root, read back from
/// the fd the mount will go onto.
fn check_resolved(
    root: BorrowedFd,
    target: BorrowedFd,
    dest: &Path,
    typ: &str,
    is_bind: bool,
    src: &Path,
) -> Result<(), String> {
    let link = |fd: BorrowedFd| {
        std::fs::read_link(proc_fd_path(fd)).map_err(|e| {
            format!(
                "reading back the resolved destination: {}",
                crate::error::errno_text(&e)
            )
        })
    };
    let (root_path, target_path) = (link(root)?, link(target)?);
    let rel = target_path
        .strip_prefix(&root_path)
        .map_err(|_| format!("resolves to {}, outside the rootfs", target_path.display()))?;
    if rel == dest {
        return Ok(()); // checked as written already (when planning)
    }
    check_proc_sys(rel, typ, is_bind, src)
        .map_err(|msg| format!("resolves to /{}: {msg}", rel.display()))
}

/// A /proc or /sys the image made a symlink is refused, as runc does (CVE-2019-16884):
/// following it would put procfs or sysfs where the image chose, with the masked and
/// read-only paths then applied to the wrong place.
fn refuse_symlink(root: BorrowedFd, dest: &Path) -> nix::Result<()> {
    match open_in_root(root, dest, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
        Ok(fd) => {
            let st = nix::sys::stat::fstat(&fd)?;
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(Errno::ELOOP);
            }
            Ok(())
        }
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// procfs and sysfs must really be what they claim: a container that made its /proc a
/// symlink or another filesystem could redirect writes runc-style runtimes make there
/// (CVE-2019-16884, CVE-2023-27561).
fn verify_fs(fd: BorrowedFd, typ: &str) -> nix::Result<()> {
    let st = nix::sys::statfs::fstatfs(fd)?;
    let want = if typ == "proc" {
        nix::sys::statfs::PROC_SUPER_MAGIC
    } else {
        nix::sys::statfs::SYSFS_MAGIC
    };
    if st.filesystem_type() == want {
        Ok(())
    } else {
        Err(Errno::EXDEV)
    }
}

fn propagate(target: BorrowedFd<'_>, opts: &ParsedMountOptions) -> nix::Result<()> {
    let p = proc_fd_path(target);
    for prop in &opts.propagation {
        mount(None::<&str>, &p, None::<&str>, flags(*prop), None::<&str>)?;
    }
    Ok(())
}

/// MS_* flags that have a MOUNT_ATTR_* equivalent: (MS flag, attribute).
const ATTRS: &[(u64, u64)] = &[
    (libc::MS_RDONLY, 0x01),
    (libc::MS_NOSUID, 0x02),
    (libc::MS_NODEV, 0x04),
    (libc::MS_NOEXEC, 0x08),
    (libc::MS_NOATIME, 0x10),
    (libc::MS_STRICTATIME, 0x20),
    (libc::MS_NODIRATIME, 0x80),
];

/// Bind `src` onto `target` with the new mount API: the tree is cloned, given its flags
/// while still detached (no remount through a path), then attached by fd. An rbind's
/// flags apply to the whole tree, as "rro" would (runc only changes the top mount; a
/// read-only volume with writable submounts is a surprise, not a feature).
pub(crate) fn bind(src: &Path, target: BorrowedFd, opts: &ParsedMountOptions) -> nix::Result<()> {
    let recursive = opts.flags & libc::MS_REC != 0;
    let csrc = CString::new(src.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut tflags = crate::sys::OPEN_TREE_CLONE;
    if recursive {
        tflags |= libc::AT_RECURSIVE as u32;
    }
    let tree = crate::sys::open_tree(nix::fcntl::AT_FDCWD, &csrc, tflags)?;
    attach(tree.as_fd(), target, opts)
}

/// Gives the detached `tree` the bind's flags, attaches it onto `target`, then applies
/// propagation.
fn attach(tree: BorrowedFd, target: BorrowedFd, opts: &ParsedMountOptions) -> nix::Result<()> {
    let recursive = opts.flags & libc::MS_REC != 0;
    let (mut set, mut clr) = (0u64, 0u64);
    let want = opts.flags & !opts.clear;
    for (ms, attr) in ATTRS {
        if want & ms != 0 {
            set |= attr;
        } else if opts.clear & ms != 0 {
            clr |= attr;
        }
    }
    // The atime modes are one field (MOUNT_ATTR__ATIME): setting any of them replaces it.
    if want & libc::MS_RELATIME != 0 || set & 0x30 != 0 {
        clr |= 0x70;
    }
    set |= opts.rec_attr_set;
    clr |= opts.rec_attr_clr;
    // Attached first: a tree the parent made belongs to its (anonymous) mount namespace
    // until then, where a container in a user namespace of its own may not change it.
    crate::sys::move_mount_fd(tree.as_fd(), target)?;
    if set != 0 || clr != 0 {
        crate::sys::mount_setattr(
            tree.as_fd(),
            recursive || opts.rec_attr_set | opts.rec_attr_clr != 0,
            set,
            clr,
            0,
        )?;
    }
    for prop in &opts.propagation {
        let rec = prop & libc::MS_REC != 0;
        crate::sys::mount_setattr(tree.as_fd(), rec, 0, 0, prop & !libc::MS_REC)?;
    }
    Ok(())
}

/// The `cgroup` mount type. cgroup v2 with a private cgroup namespace gets a real cgroup2
/// mount; otherwise (v1, hybrid, host cgroupns) the container's own cgroup directories are
/// bind-mounted read-only, one per hierarchy, under a tmpfs, as runc does.
fn mount_cgroup(ctx: &MountCtx, m: &MountPlan) -> Result<(), RootfsError> {
    let (dest, opts) = (m.dest.as_path(), &m.opts);
    let target =
        mkdir_all_in_root(ctx.root, dest, 0o755).map_err(|e| err(m, "creating destination", e))?;
    let ro = (opts.flags & !opts.clear) & libc::MS_RDONLY != 0;
    let base = opts.flags & !opts.clear & !(libc::MS_RDONLY | libc::MS_BIND | libc::MS_REC);
    let only_v2 = ctx.cgroups.len() == 1 && matches!(ctx.cgroups[0].0, Hierarchy::Unified);
    if only_v2 {
        let tpath = proc_fd_path(target.as_fd());
        if ctx.new_cgroupns {
            mount(
                Some("cgroup2"),
                &tpath,
                Some("cgroup2"),
                flags(base | (opts.flags & !opts.clear & libc::MS_RDONLY)),
                None::<&str>,
            )
            .map_err(|e| err(m, "mount cgroup2", e))?;
        } else {
            let o = ParsedMountOptions {
                flags: base | libc::MS_REC | if ro { libc::MS_RDONLY } else { 0 },
                clear: 0,
                propagation: vec![],
                ..opts.clone()
            };
            bind(&ctx.cgroups[0].1, target.as_fd(), &o).map_err(|e| err(m, "bind cgroup", e))?;
        }
        return Ok(());
    }
    let tpath = proc_fd_path(target.as_fd());
    mount(
        Some("tmpfs"),
        &tpath,
        Some("tmpfs"),
        flags(base),
        Some("mode=755"),
    )
    .map_err(|e| err(m, "mount cgroup tmpfs", e))?;
    // The tmpfs is ours and empty: its directories are made relative to its root, with
    // nothing of the image's in the way.
    let top = open_in_root(ctx.root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| err(m, "reopen", e))?;
    for (h, dir) in ctx.cgroups {
        let name = match h {
            Hierarchy::V1 { mountpoint, .. } => mountpoint
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default(),
            Hierarchy::Unified => "unified".into(),
        };
        let t = nix::sys::stat::mkdirat(
            top.as_fd(),
            name.as_os_str(),
            Mode::from_bits_truncate(0o755),
        )
        .and_then(|()| {
            nix::fcntl::openat(
                top.as_fd(),
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        })
        .map_err(|e| err(m, "creating cgroup dir", e))?;
        let o = ParsedMountOptions {
            flags: base | libc::MS_REC | if ro { libc::MS_RDONLY } else { 0 },
            clear: 0,
            propagation: vec![],
            data: vec![],
            ..opts.clone()
        };
        bind(dir, t.as_fd(), &o)
            .map_err(|e| err(m, &format!("bind cgroup {}", dir.display()), e))?;
        // Comounted v1 controllers (cpu,cpuacct) are also reachable under each name.
        if let Hierarchy::V1 { controllers, .. } = h {
            for c in controllers
                .iter()
                .filter(|c| c.as_str() != name.to_string_lossy())
            {
                let _ = nix::unistd::symlinkat(name.as_os_str(), top.as_fd(), c.as_str());
            }
        }
    }
    if ro {
        mount(
            None::<&str>,
            &proc_fd_path(top.as_fd()),
            None::<&str>,
            flags(libc::MS_REMOUNT | libc::MS_RDONLY | base),
            None::<&str>,
        )
        .map_err(|e| err(m, "remount cgroup tmpfs read-only", e))?;
    }
    Ok(())
}

/// Copies a directory tree (contents, modes, owners, symlinks) for tmpcopyup.
fn copy_tree(from: BorrowedFd, to: BorrowedFd) -> nix::Result<()> {
    use nix::dir::Dir;
    use nix::fcntl::AtFlags;
    use nix::sys::stat::{fstatat, SFlag};
    let mut dir = Dir::openat(
        from,
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let names: Vec<CString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let st = fstatat(from, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
        if kind == SFlag::S_IFDIR {
            nix::sys::stat::mkdirat(to, name.as_c_str(), mode)?;
            let s = nix::fcntl::openat(
                from,
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let d = nix::fcntl::openat(
                to,
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            copy_tree(s.as_fd(), d.as_fd())?;
        } else if kind == SFlag::S_IFLNK {
            let t = nix::fcntl::readlinkat(from, name.as_c_str())?;
            nix::unistd::symlinkat(t.as_os_str(), to, name.as_c_str())?;
        } else if kind == SFlag::S_IFREG {
            let s = nix::fcntl::openat(
                from,
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let d = nix::fcntl::openat(
                to,
                name.as_c_str(),
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
                mode,
            )?;
            let mut sf = std::fs::File::from(s);
            let mut df = std::fs::File::from(d);
            std::io::copy(&mut sf, &mut df)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        } else {
            continue;
        }
        let _ = nix::unistd::fchownat(
            to,
            name.as_c_str(),
            Some(nix::unistd::Uid::from_raw(st.st_uid)),
            Some(nix::unistd::Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if kind != SFlag::S_IFLNK {
            let _ = nix::sys::stat::fchmodat(
                to,
                name.as_c_str(),
                mode,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            );
        }
    }
    Ok(())
}
