//! Every path that comes from a bundle is resolved here, inside the rootfs: openat2 with
//! RESOLVE_IN_ROOT treats the rootfs as "/", so symlinks and ".." cannot climb out of it
//! (CVE-2021-30465, CVE-2024-45310). Directories are created one component at a time,
//! each step re-resolved in the root. Where openat2 is missing (ENOSYS: kernels before
//! 5.6) or refused (EPERM: an outer seccomp profile that predates it), the same lookup is
//! done in userspace, one component at a time (`walk_in_root`).

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Set once openat2 answered ENOSYS or EPERM: every later lookup walks in userspace.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// Tests force the userspace walk on their own thread.
    static FORCE_WALK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn use_walk() -> bool {
    #[cfg(test)]
    if FORCE_WALK.with(|f| f.get()) {
        return true;
    }
    NO_OPENAT2.load(Ordering::Relaxed)
}

/// Opens `path` inside `root`.
pub(crate) fn open_in_root(root: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = clean(path);
    if !use_walk() {
        let p = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel.clone()
        };
        match sys::openat2(root, &cstr(&p), flags.bits(), 0, RESOLVE) {
            // Silently: this runs in the container's init too, which never logs.
            Err(Errno::ENOSYS | Errno::EPERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
    walk_in_root(root, &rel, flags)
}

/// Symlinks followed in one lookup before ELOOP, as the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

/// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) in userspace: each component opened
/// O_PATH|O_NOFOLLOW relative to the directory fd before it, symlinks read and their
/// targets spliced into the rest of the walk (absolute ones from the root), ".." popping
/// the stack of directory fds and never above the root. A concurrent rename cannot move
/// the walk out: every step is relative to an fd already verified to be inside. The
/// result is reopened with the caller's flags and checked to be the object the walk found.
fn walk_in_root(root: BorrowedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    for _ in 0..8 {
        match walk_once(root, rel, flags) {
            Err(Errno::EAGAIN) => continue,
            other => return other,
        }
    }
    Err(Errno::EAGAIN)
}

fn walk_once(root: BorrowedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    let o_path = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut rest: VecDeque<OsString> = VecDeque::new();
    push_front(&mut rest, rel);
    // Directories from the root down to where the walk is; empty = at the root.
    let mut stack: Vec<OwnedFd> = Vec::new();
    // The last component found that is not a directory (it must end the walk).
    let mut leaf: Option<(OwnedFd, OsString)> = None;
    let mut links = 0;
    while let Some(name) = rest.pop_front() {
        if leaf.is_some() {
            return Err(Errno::ENOTDIR);
        }
        if name == ".." {
            stack.pop();
            continue;
        }
        let cur = stack.last().map_or(root, |f| f.as_fd());
        let fd = nix::fcntl::openat(cur, name.as_os_str(), o_path, Mode::empty())?;
        let st = nix::sys::stat::fstat(&fd)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                if rest.is_empty() && flags.contains(OFlag::O_NOFOLLOW) {
                    if flags.contains(OFlag::O_PATH) {
                        return Ok(fd);
                    }
                    return Err(Errno::ELOOP);
                }
                if is_magic_link_dir(cur)? {
                    return Err(Errno::ELOOP);
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = nix::fcntl::readlinkat(&fd, "")?;
                let target = Path::new(&target);
                if target.as_os_str().is_empty() {
                    return Err(Errno::ENOENT);
                }
                if target.is_absolute() {
                    stack.clear();
                }
                push_front(&mut rest, target);
            }
            libc::S_IFDIR => stack.push(fd),
            _ => leaf = Some((fd, name)),
        }
    }
    let (found, fresh) = match &leaf {
        Some((fd, name)) => {
            if flags.contains(OFlag::O_DIRECTORY) {
                return Err(Errno::ENOTDIR);
            }
            let parent = stack.last().map_or(root, |f| f.as_fd());
            let fresh = nix::fcntl::openat(
                parent,
                name.as_os_str(),
                flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| if e == Errno::ELOOP { Errno::EAGAIN } else { e })?;
            (fd.as_fd(), fresh)
        }
        None => {
            let dir = stack.last().map_or(root, |f| f.as_fd());
            let fresh = nix::fcntl::openat(dir, ".", flags | OFlag::O_CLOEXEC, Mode::empty())?;
            (dir, fresh)
        }
    };
    let (a, b) = (
        nix::sys::stat::fstat(found)?,
        nix::sys::stat::fstat(&fresh)?,
    );
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
        return Err(Errno::EAGAIN); // swapped under us: walk again
    }
    Ok(fresh)
}

/// The components of `p` (no "." or "/"), put before those still to walk.
fn push_front(rest: &mut std::collections::VecDeque<std::ffi::OsString>, p: &Path) {
    for c in p.components().rev() {
        match c {
            Component::Normal(n) => rest.push_front(n.to_os_string()),
            Component::ParentDir => rest.push_front("..".into()),
            _ => {}
        }
    }
}

/// Whether symlinks in `dir` are procfs magic links (RESOLVE_NO_MAGICLINKS refuses them):
/// every procfs symlink outside the procfs root (/proc/<pid>/{exe,cwd,root,fd/*,ns/*,
/// map_files/*}, and the same under task/) is one; those in its root (self,
/// thread-self, mounts, net, ...) are plain.
fn is_magic_link_dir(dir: BorrowedFd) -> nix::Result<bool> {
    const PROC_ROOT_INO: u64 = 1;
    let fs = nix::sys::statfs::fstatfs(dir)?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Ok(false);
    }
    Ok(nix::sys::stat::fstat(dir)?.st_ino != PROC_ROOT_INO)
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
    Ok((reopen_dir(dir.as_fd())?, name))
}

/// An O_PATH directory fd reopened for *at calls (no path resolved: ".").
pub(crate) fn reopen_dir(dir: BorrowedFd) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
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

    /// Runs `f` with the userspace walk forced on this thread.
    fn walking<T>(f: impl FnOnce() -> T) -> T {
        FORCE_WALK.with(|w| w.set(true));
        let r = f();
        FORCE_WALK.with(|w| w.set(false));
        r
    }

    #[test]
    fn symlinks_stay_inside_root() {
        symlinks_stay_inside_root_case("sym");
    }

    #[test]
    fn symlinks_stay_inside_root_walking() {
        walking(|| symlinks_stay_inside_root_case("symwalk"));
    }

    /// The userspace walk answers as openat2 does: same object (dev, ino) or same errno,
    /// over absolute and relative symlinks, `..` escapes, loops, chains, dangling links,
    /// files in the middle of a path, O_NOFOLLOW and O_DIRECTORY, and procfs magic links.
    #[test]
    fn walk_agrees_with_openat2() {
        let d = tmp("agree");
        let r = d.join("root");
        fs::create_dir_all(r.join("a/b/c")).unwrap();
        fs::create_dir_all(d.join("outside")).unwrap();
        fs::write(r.join("a/file"), "x").unwrap();
        fs::write(d.join("outside/secret"), "host").unwrap();
        symlink("/a/b", r.join("abs")).unwrap();
        symlink("a/b/../b/c", r.join("rel")).unwrap();
        symlink("../../../../outside", r.join("up")).unwrap();
        symlink("/../../outside/secret", r.join("a/b/upabs")).unwrap();
        symlink("../../file", r.join("a/b/c/tofile")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("self", r.join("self")).unwrap();
        symlink("abs", r.join("chain1")).unwrap();
        symlink("chain1/c", r.join("chain2")).unwrap();
        symlink("/nowhere", r.join("dangling")).unwrap();
        symlink("/", r.join("toroot")).unwrap();
        symlink("..", r.join("a/dotdot")).unwrap();
        symlink("/a/b", r.join("a/b/c/toabs")).unwrap();
        // A procfs inside the root is not possible without mounting; the host's /proc
        // stands in for it, opened as a root of its own.
        let paths = [
            "",
            ".",
            "/",
            "..",
            "../..",
            "a",
            "a/b/c",
            "a/../a/b",
            "abs",
            "abs/c",
            "abs/..",
            "rel",
            "rel/../..",
            "up",
            "up/secret",
            "a/b/upabs",
            "a/b/c/tofile",
            "a/b/c/tofile/x",
            "loop1",
            "loop1/x",
            "self",
            "chain2",
            "chain2/..",
            "dangling",
            "dangling/x",
            "toroot",
            "toroot/a/b",
            "a/dotdot/a/dotdot/abs",
            "a/file",
            "a/file/x",
            "a/file/..",
            "missing",
            "missing/x",
            "a/b/c/toabs/c",
            "a/b/c/toabs",
        ];
        let flagsets = [
            OFlag::O_PATH,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            OFlag::O_PATH | OFlag::O_NOFOLLOW,
            OFlag::O_RDONLY,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
        ];
        let id = |r: nix::Result<OwnedFd>| {
            r.map(|fd| {
                let st = nix::sys::stat::fstat(&fd).unwrap();
                (st.st_dev, st.st_ino)
            })
        };
        let root = rootfd(&d);
        let proc_root = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let proc_paths = [
            "self",
            "self/status",
            "self/fd/0",
            "self/exe",
            "self/cwd/x",
            "mounts",
        ];
        let mut checked = 0;
        for (root, paths) in [
            (root.as_fd(), &paths[..]),
            (proc_root.as_fd(), &proc_paths[..]),
        ] {
            for p in paths {
                for flags in flagsets {
                    let p = Path::new(p);
                    let c = clean(p);
                    let c = if c.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        c
                    };
                    let want = id(sys::openat2(root, &cstr(&c), flags.bits(), 0, RESOLVE));
                    let got = id(walking(|| open_in_root(root, p, flags)));
                    assert_eq!(got, want, "{} with {flags:?}", p.display());
                    checked += 1;
                }
            }
        }
        assert!(checked > 200);
        fs::remove_dir_all(&d).unwrap();
    }

    fn symlinks_stay_inside_root_case(name: &str) {
        let d = tmp(name);
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
